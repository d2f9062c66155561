"""Speed of the model family: tie models, order effects, covariates, Plackett-Luce.

Times, in one process, on the shipped arena battles (135k rows, 53 models):
BradleyTerry (reference), Davidson and Rao-Kupper with an order effect; on
simulated data: BT with 5 comparison-level covariates at 1M rows and 100
items (row-level, nothing aggregated), and Plackett-Luce (Newton, MM) on
10,000 rankings of 5 among 200 items against the pairwise-split BT fit.

Run: ``python benchmarks/bench_models.py``
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from scipy.special import expit

import bradley


def timed(label: str, fn, reference: float | None = None) -> float:
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    ratio = "" if reference is None else f"  x{seconds / reference:.1f} of BradleyTerry"
    print(f"{label:<58} {seconds:8.3f} s{ratio}", flush=True)
    return seconds


def main() -> None:
    warnings.simplefilter("ignore", bradley.DataWarning)
    battles = bradley.datasets.load_arena_140k()
    data = bradley.read_comparisons(battles, drop_self_comparisons=True)
    base = timed("arena 135k: BradleyTerry", lambda: bradley.BradleyTerry().fit(data))
    timed("arena 135k: Davidson(order_effect=True)", lambda: bradley.Davidson(order_effect=True).fit(data), base)
    timed("arena 135k: RaoKupper(order_effect=True)", lambda: bradley.RaoKupper(order_effect=True).fit(data), base)

    rng = np.random.default_rng(0)
    n, m, k = 100, 1_000_000, 5
    truth = rng.normal(size=n)
    left = rng.integers(0, n, m)
    right = (left + rng.integers(1, n, m)) % n
    features = rng.normal(size=(m, k))
    beta = rng.normal(0, 0.3, k)
    outcome = (rng.random(m) < expit(truth[left] - truth[right] + features @ beta)).astype(float)
    rows = bradley.Comparisons.from_arrays(left, right, outcome, features=features)
    base = timed("1M rows, 100 items: BradleyTerry (no covariates)", lambda: bradley.BradleyTerry().fit(rows))
    model = bradley.PairwiseModel(covariates=True)
    timed("1M rows, 100 items, 5 covariates: PairwiseModel", lambda: model.fit(rows), base)
    print("   max |beta - truth| / se:", float(np.max(np.abs(model.params_["estimate"].to_numpy() - beta) / model.params_["se"].to_numpy())))

    orderings = []
    strengths = rng.normal(size=200)
    for _ in range(10_000):
        chosen = rng.choice(200, 5, replace=False)
        orderings.append(chosen[np.argsort(-(strengths[chosen] + rng.gumbel(size=5)))].tolist())
    rankings = bradley.Rankings.from_orderings(orderings)
    broken = bradley.break_rankings(rankings)
    base = timed("10k rankings of 5, 200 items: BT on broken pairs", lambda: bradley.BradleyTerry().fit(broken))
    timed("10k rankings of 5, 200 items: PlackettLuce (newton)", lambda: bradley.PlackettLuce().fit(rankings), base)
    timed("10k rankings of 5, 200 items: PlackettLuce (mm)", lambda: bradley.PlackettLuce(solver="mm").fit(rankings), base)


if __name__ == "__main__":
    main()
