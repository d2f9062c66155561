"""GPM fit time on 1M comparisons among 1,000 items, against BradleyTerry on the same data.

Data: items on k=1 cyclic embeddings plus BT scores (so the skew part is real),
pairs drawn uniformly. Times include aggregation to pair counts; each model
is timed on the same Comparisons in the same process. Run:

    .venv/bin/python benchmarks/bench_gpm.py [--items 1000] [--comparisons 1000000] [--ks 0 1 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.special import expit

import bradley
from bradley.models.gpm import GPM, skew_score


def simulate(n_items: int, n_comparisons: int, seed: int = 0) -> bradley.Comparisons:
    rng = np.random.default_rng(seed)
    scores = rng.normal(0.0, 1.0, n_items)
    angles = rng.uniform(0.0, 2 * np.pi, n_items)
    v = np.stack([np.cos(angles), np.sin(angles)], axis=1) * 1.2
    left = rng.integers(0, n_items, n_comparisons)
    right = (left + rng.integers(1, n_items, n_comparisons)) % n_items
    margin = scores[left] - scores[right] + skew_score(v[left], v[right])
    outcome = (rng.random(n_comparisons) < expit(margin)).astype(np.float64)
    return bradley.Comparisons.from_codes(left, right, outcome, items=n_items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--comparisons", type=int, default=1_000_000)
    parser.add_argument("--ks", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    data = simulate(args.items, args.comparisons)
    start = time.perf_counter()
    bt = bradley.BradleyTerry().fit(data)
    bt_time = time.perf_counter() - start
    print(f"{args.comparisons} comparisons, {args.items} items, {data.pair_counts().n_pairs} distinct pairs")
    print(f"BradleyTerry: {bt_time:.2f} s (converged {bt.converged_}, {bt.n_iter_} iterations)")
    for k in args.ks:
        start = time.perf_counter()
        model = GPM(k=k).fit(data)
        elapsed = time.perf_counter() - start
        print(f"GPM(k={k}): {elapsed:.2f} s = {elapsed / bt_time:.1f} x BradleyTerry (converged {model.converged_}, "
              f"{model.n_iter_} L-BFGS iterations, step {model.step_:.2g}, "
              f"log-lik/comparison {model.log_likelihood_ / args.comparisons:.4f})")


if __name__ == "__main__":
    main()
