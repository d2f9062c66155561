"""Bias reduction (Firth) against a Gaussian prior (MAP) and plain ML on sparse simulated data.

Makes the table in ``docs/bias-reduction.md``:

    python benchmarks/bench_firth_sparse.py            # 400 replicates per setting
    python benchmarks/bench_firth_sparse.py --reps 50  # quick look

Design: fixed true scores (evenly spaced, standard deviation ~1.2, centred),
each replicate a fresh random comparison design: a random cycle through all
items (so the comparison graph is connected) plus random pairs, and outcomes
drawn from the BT model. Every estimate is compared on the mean-zero scale.

Columns: ``extreme bias``, the average outward error ``sign(truth) *
(estimate - truth)`` of the items in the top and bottom fifth (where the
bias of ML and the shrinkage of a prior show most), with its Monte Carlo
standard error; ``slope``, the regression slope of the
estimates on the true scores (1 = right spread, > 1 inflated, < 1 shrunk);
``RMSE`` over items and replicates; ``coverage``, the share of nominal 95%
Wald intervals (estimate +- 1.96 se, se from ``standard_errors()``) that
contain the true score; ``fits``, the share of replicates each method could
fit (ML needs a finite MLE, and its other columns are over those replicates
only, shown when there are at least 20).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from scipy.special import expit

import bradley
from bradley import BradleyTerry, Comparisons, MLEDoesNotExistError

SETTINGS = [(20, 60), (30, 150), (50, 500)]  # (items, comparisons): 6, 10 and 20 comparisons per item
MIN_FITS = 20  # fewer fits than this (ML where the MLE rarely exists): no summary
METHODS = {
    "ML": lambda: BradleyTerry(),
    "Firth (bias_reduction=True)": lambda: BradleyTerry(bias_reduction=True),
    "MAP, prior=1 (the true variance)": lambda: BradleyTerry(prior=1.0),
    "MAP, prior=10 (vague)": lambda: BradleyTerry(prior=10.0),
}


def simulate(rng: np.random.Generator, truth: np.ndarray, n_rows: int) -> Comparisons:
    n = len(truth)
    cycle = rng.permutation(n)
    left = np.concatenate([cycle, rng.integers(0, n, n_rows - n)])
    right = np.concatenate([np.roll(cycle, -1), np.zeros(n_rows - n, dtype=np.int64)])
    extra = slice(n, None)
    right[extra] = (left[extra] + rng.integers(1, n, n_rows - n)) % n
    outcome = (rng.random(n_rows) < expit(truth[left] - truth[right])).astype(float)
    return Comparisons.from_arrays(left, right, outcome, items=np.arange(n))


def run(n_items: int, n_rows: int, reps: int, seed: int) -> list[dict]:
    truth = np.linspace(-2.0, 2.0, n_items)
    truth -= truth.mean()
    rng = np.random.default_rng(seed)
    extreme = np.abs(truth) >= np.quantile(np.abs(truth), 0.6)
    errors: dict[str, list[np.ndarray]] = {m: [] for m in METHODS}
    covered: dict[str, list[np.ndarray]] = {m: [] for m in METHODS}
    estimates: dict[str, list[np.ndarray]] = {m: [] for m in METHODS}
    seconds = dict.fromkeys(METHODS, 0.0)
    for _ in range(reps):
        data = simulate(rng, truth, n_rows)
        for name, make in METHODS.items():
            start = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error", bradley.ConvergenceWarning)
                    model = make().fit(data)
            except MLEDoesNotExistError:
                continue
            seconds[name] += time.perf_counter() - start
            est = model.scores_ - model.scores_.mean()
            se = model.standard_errors().to_numpy()
            errors[name].append(est - truth)
            estimates[name].append(est)
            covered[name].append(np.abs(est - truth) <= 1.959963984540054 * se)
    rows = []
    for name in METHODS:
        if len(errors[name]) < MIN_FITS:
            rows.append({"method": name, "fits": len(errors[name]) / reps})
            continue
        err = np.array(errors[name])
        est = np.array(estimates[name])
        slope = float(np.polyfit(np.tile(truth, len(est)), est.ravel(), 1)[0])
        outward = (np.sign(truth[extreme]) * err[:, extreme]).mean(axis=1)
        rows.append({
            "method": name,
            "extreme bias": float(outward.mean()),
            "mc se": float(outward.std(ddof=1) / np.sqrt(len(outward))) if len(outward) > 1 else np.nan,
            "slope": slope,
            "RMSE": float(np.sqrt(np.mean(err**2))),
            "coverage": float(np.mean(covered[name])),
            "fits": len(err) / reps,
            "ms/fit": 1000 * seconds[name] / len(err),
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=400)
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()
    print(f"{args.reps} replicates per setting, seed {args.seed}\n")
    print("| items | comparisons | method | extreme bias | slope | RMSE | 95% coverage | fits | ms/fit |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for k, (n_items, n_rows) in enumerate(SETTINGS):
        for row in run(n_items, n_rows, args.reps, args.seed + k):
            if "slope" not in row:
                print(f"| {n_items} | {n_rows} | {row['method']} | - | - | - | - | {100 * row['fits']:.1f}% | - |")
                continue
            print(f"| {n_items} | {n_rows} | {row['method']} | {row['extreme bias']:+.3f} ({row['mc se']:.3f}) | {row['slope']:.3f} | "
                  f"{row['RMSE']:.3f} | {100 * row['coverage']:.1f}% | {100 * row['fits']:.1f}% | "
                  f"{row['ms/fit']:.1f} |")


if __name__ == "__main__":
    main()
