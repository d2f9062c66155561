"""Nash solvers: iterations to a duality gap of 1e-6, and the maximal-lottery LP at 1,000 items.

Part 1 runs every iterative method of :func:`bradley.nash.solve_nash` with its
default step on the same games and reports, from ``gap_history_``, the first
iteration at which the *last* iterate and the *average* iterate reach a
duality gap ``max_i (M p)_i`` below 1e-6 (``-`` = not within ``--max-iter``),
the matrix products spent to get there (extragradient pays two per
iteration), the final gaps and the seconds. Games (margins ``M = P - P^T``):

* ``rps-123``: rock-paper-scissors with margins 1, 2, 3 (scaled to [-1, 1]);
* ``cycle-101``: 101 items, each beating the next 50 round a circle with a
  random margin in [0.1, 1] (intransitive throughout);
* ``random-10``, ``random-100``: ``P = expit(S)``, ``S = Z - Z^T``, ``Z`` iid
  N(0, 1) (random skew-symmetric; supports of about half the items);
* ``bt+noise-100``: BT scores N(0, 1) plus half the random skew part
  (near-transitive, small support).

Part 2 times :func:`bradley.maximal_lottery` (HiGHS) on 1,000 items, on a
near-transitive and on a fully random matrix, against one HiGHS LP on the
whole game (no support search) in the same process.

Run: ``python benchmarks/bench_nash.py [--max-iter 20000] [--skip-lp] [--games random-100] [--methods mwu]``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from scipy.special import expit

from bradley.errors import ConvergenceWarning
from bradley.nash import _lp_solve, duality_gap, maximal_lottery, solve_nash

TARGET = 1e-6
METHODS = [("mwu", {}), ("optimistic", {}), ("extragradient", {}), ("inpo", {"anchor_every": 20}),
           ("inpo", {})]


def games(rng: np.random.Generator) -> dict[str, np.ndarray]:
    out = {}
    m = np.array([[0.0, -1.0, 2.0], [1.0, 0.0, -3.0], [-2.0, 3.0, 0.0]]) / 3
    out["rps-123"] = 0.5 * (1 + m)
    n = 101
    m = np.zeros((n, n))
    for i in range(n):
        for k in range(1, 51):
            j = (i + k) % n
            m[i, j] = rng.uniform(0.1, 1.0)
            m[j, i] = -m[i, j]
    out["cycle-101"] = 0.5 * (1 + m)
    for size in (10, 100):
        z = rng.normal(size=(size, size))
        out[f"random-{size}"] = expit(z - z.T)
    theta = rng.normal(size=100)
    z = rng.normal(size=(100, 100))
    out["bt+noise-100"] = expit(theta[:, None] - theta[None, :] + 0.5 * (z - z.T))
    for p in out.values():
        np.fill_diagonal(p, 0.5)
    return out


def first_below(values: np.ndarray) -> int | None:
    hits = np.flatnonzero(values < TARGET)
    return int(hits[0]) if len(hits) else None


def convergence_table(max_iter: int, only: list[str] | None = None, methods: list[str] | None = None) -> None:
    rng = np.random.default_rng(0)
    header = (f"{'game':<13} {'method':<16} {'step':>6} {'it(last)':>9} {'it(avg)':>8} {'calls':>7} "
              f"{'gap last':>9} {'gap avg':>9} {'support':>7} {'s':>6}")
    print(f"Iterations to a duality gap < {TARGET:g} (max_iter={max_iter}):")
    print(header)
    for name, prob in games(rng).items():
        if only and name not in only:
            continue
        support = len(maximal_lottery(prob).attrs["support"])
        for method, kw in METHODS:
            label = method + ("+anchor" if kw else "")
            if methods and label not in methods:
                continue
            t = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                sol = solve_nash(prob, method, max_iter=max_iter, tol=TARGET, iterate="last", **kw)
            seconds = time.perf_counter() - t
            hist = sol.gap_history_
            it_last = first_below(hist["gap_last"].to_numpy())
            it_avg = first_below(hist["gap_average"].to_numpy())
            first = min(x for x in (it_last, it_avg, len(hist) - 1) if x is not None)
            calls = int(hist["operator_calls"].iloc[first])
            assert abs(duality_gap(prob, sol.last_) - hist["gap_last"].iloc[-1]) < 1e-12
            print(f"{name:<13} {label:<16} {sol.step:>6.2g} {it_last if it_last is not None else '-':>9} "
                  f"{it_avg if it_avg is not None else '-':>8} {calls:>7} {hist['gap_last'].iloc[-1]:>9.1e} "
                  f"{hist['gap_average'].iloc[-1]:>9.1e} {support:>7} {seconds:>6.2f}")


def lp_speed() -> None:
    rng = np.random.default_rng(1)
    n = 1000
    theta = rng.normal(size=n)
    z = rng.normal(size=(n, n))
    cases = {"near-transitive": expit(theta[:, None] - theta[None, :] + 0.5 * (z - z.T)), "random": expit(z - z.T)}
    print(f"\nMaximal lottery of a {n}-item matrix (HiGHS via scipy.optimize.linprog):")
    print(f"{'matrix':<16} {'maximal_lottery s':>18} {'one full LP s':>14} {'ratio':>6} {'support':>8} "
          f"{'gap':>9} {'unique':>7}")
    for name, prob in cases.items():
        t = time.perf_counter()
        lottery = maximal_lottery(prob)
        ours = time.perf_counter() - t
        t = time.perf_counter()
        full = _lp_solve(prob - prob.T)
        plain = time.perf_counter() - t
        assert np.abs(full - lottery.to_numpy()).max() < 1e-6
        print(f"{name:<16} {ours:>18.2f} {plain:>14.2f} {plain / ours:>6.1f} {len(lottery.attrs['support']):>8} "
              f"{lottery.attrs['gap']:>9.1e} {lottery.attrs['unique']!s:>7}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-iter", type=int, default=20_000)
    parser.add_argument("--skip-lp", action="store_true")
    parser.add_argument("--games", help="comma-separated game names (default: all)")
    parser.add_argument("--methods", help="comma-separated methods, e.g. optimistic,inpo+anchor (default: all)")
    args = parser.parse_args()
    convergence_table(args.max_iter, args.games.split(",") if args.games else None,
                      args.methods.split(",") if args.methods else None)
    if not args.skip_lp:
        lp_speed()


if __name__ == "__main__":
    main()
