"""GPM fit time on 1M comparisons among 1,000 items, against BradleyTerry on the same data.

Data: items on k=1 cyclic embeddings plus BT scores (so the skew part is real),
pairs drawn uniformly. Times include aggregation to pair counts; each model
is timed on the same Comparisons in the same process. Run:

    .venv/bin/python benchmarks/bench_gpm.py [--items 1000] [--comparisons 1000000] [--ks 0 1 2]
    .venv/bin/python benchmarks/bench_gpm.py --arena      # held-out log-loss per k on the shipped arena votes
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
    parser.add_argument("--arena", action="store_true", help="5-fold select_k on the shipped arena data instead")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    if args.arena:
        arena(args.ks, args.folds)
        return
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


def arena(ks: list[int], folds: int) -> None:
    """Held-out log-loss of GPM(k) on the arena votes (ties as half wins), k-fold by games."""
    import pandas as pd

    battles = bradley.datasets.load_arena_140k()
    data = bradley.read_comparisons(battles, drop_self_comparisons=True)
    start = time.perf_counter()
    # a prior on the scalar scores (as bradley.compare_methods uses): some folds leave a rare model without data
    table = GPM.select_k(data, ks=ks, folds=folds, seed=0, prior=10.0)
    elapsed = time.perf_counter() - start
    with pd.option_context("display.width", 200, "display.precision", 5):
        print(f"arena: {data.n_comparisons} comparisons, {data.n_items} models, {folds} folds, {elapsed:.1f} s")
        print(table.to_string(index=False))
    full = {k: GPM(k=k, prior=10.0).fit(data) for k in ks if k > 0}
    for k, model in full.items():
        print(f"GPM(k={k}) on all data: block strengths {np.round(model.block_strengths_, 4).tolist()}, "
              f"converged {model.converged_}")


if __name__ == "__main__":
    main()
