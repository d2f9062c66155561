"""Nash solvers: iterations to a duality gap of 1e-6 over a step-size grid, and the maximal-lottery LP at 1,000 items.

Part 1 runs every iterative method of :func:`bradley.nash.solve_nash` on each
game with its step set to ``c`` times the method's default for ``c`` in a grid
(default 0.1, 0.3, 1, 3, 10: a factor 10 each way) and reports, for the best
``c``, the first iteration at which the *last* iterate and (separately, with
its own best ``c``) the *average* iterate reach a duality gap
``max_i (M p)_i`` below 1e-6 (``-`` = no step in the grid gets there within
``--max-iter``). Extragradient makes two products with the matrix per
iteration, the others one. A fixed-anchor INPO solves the tau-regularised game
(tau = 0.05): its gap in the original game stays near tau, so it never reaches
1e-6 and is listed for completeness only. Games (margins ``M = P - P^T``):

* ``rps-weighted``: rock-paper-scissors with margins 1, 2, 3 (scaled to [-1, 1]);
* ``near-transitive-100``: BT scores N(0, 1) plus half a random skew part
  (small support);
* ``random-10``, ``random-100``: ``P = expit(S)``, ``S = Z - Z^T``, ``Z`` iid
  N(0, 1) (random skew-symmetric; supports of about half the items);
* ``cycle-101``: 101 items, each beating the next 50 round a circle with a
  random margin in [0.1, 1] (intransitive throughout).

Part 2 times :func:`bradley.maximal_lottery` (HiGHS) on 1,000 items, on a
near-transitive and on a fully random matrix, against one HiGHS LP on the
whole game in the feasibility form the package uses (no support search) and
against the value-variable form (maximise ``v`` subject to ``M^T p >= v``)
with HiGHS interior point, in the same process.

Run: ``python benchmarks/bench_nash.py [--max-iter 20000] [--grid 0.1,0.3,1,3,10] [--skip-lp] [--skip-sweep]
[--games random-100] [--methods mwu]``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from scipy.special import expit

from bradley.errors import ConvergenceWarning
from bradley.nash import _DEFAULT_STEP, _lp_solve, maximal_lottery, solve_nash

TARGET = 1e-6
METHODS = [("mwu", {}), ("optimistic", {}), ("extragradient", {}), ("inpo", {"anchor_every": 20}),
           ("inpo", {})]


def games(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The five games, drawn in a fixed order from ``rng`` (the order of earlier versions of this script)."""
    out = {}
    m = np.array([[0.0, -1.0, 2.0], [1.0, 0.0, -3.0], [-2.0, 3.0, 0.0]]) / 3
    out["rps-weighted"] = 0.5 * (1 + m)
    n = 101
    m = np.zeros((n, n))
    for i in range(n):
        for k in range(1, 51):
            j = (i + k) % n
            m[i, j] = rng.uniform(0.1, 1.0)
            m[j, i] = -m[i, j]
    cycle = 0.5 * (1 + m)
    for size in (10, 100):
        z = rng.normal(size=(size, size))
        out[f"random-{size}"] = expit(z - z.T)
    theta = rng.normal(size=100)
    z = rng.normal(size=(100, 100))
    out["near-transitive-100"] = expit(theta[:, None] - theta[None, :] + 0.5 * (z - z.T))
    out["cycle-101"] = cycle
    out = {k: out[k] for k in ("rps-weighted", "near-transitive-100", "random-10", "random-100", "cycle-101")}
    for p in out.values():
        np.fill_diagonal(p, 0.5)
    return out


def first_below(values: np.ndarray) -> int | None:
    hits = np.flatnonzero(values < TARGET)
    return int(hits[0]) if len(hits) else None


def _run(prob: np.ndarray, method: str, kw: dict, step: float, max_iter: int, iterate: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sol = solve_nash(prob, method, step=step, max_iter=max_iter, tol=TARGET, iterate=iterate, **kw)
    return sol.gap_history_


def sweep(prob: np.ndarray, method: str, kw: dict, grid: list[float], max_iter: int) -> dict:
    """Per step multiplier: first iteration below TARGET for the last and the average iterate."""
    scale = float(np.abs(prob - prob.T).max()) / 2.0
    rows = {}
    for c in grid:
        step = _DEFAULT_STEP[method] * c / scale
        if method == "inpo" and step * 0.05 > 1:
            continue
        hist = _run(prob, method, kw, step, max_iter, "last")
        it_last = first_below(hist["gap_last"].to_numpy())
        it_avg = first_below(hist["gap_average"].to_numpy())
        stopped_early = len(hist) - 1 < max_iter
        if it_avg is None and stopped_early and not (method == "inpo" and not kw):
            it_avg = first_below(_run(prob, method, kw, step, max_iter, "average")["gap_average"].to_numpy())
        rows[c] = (it_last, it_avg, float(hist["gap_last"].min()), float(hist["gap_average"].min()))
    return rows


def _best(rows: dict, k: int) -> tuple[str, str]:
    hit = [(v[k], c) for c, v in rows.items() if v[k] is not None]
    if not hit:
        floor = min(v[k + 2] for v in rows.values())
        return "-", f"(min {floor:.0e})"
    it, c = min(hit)
    return f"{it}", f"x{c:g}"


def convergence_table(max_iter: int, grid: list[float], only: list[str] | None = None,
                      methods: list[str] | None = None) -> None:
    rng = np.random.default_rng(0)
    print(f"Iterations to a duality gap < {TARGET:g} at the best step of the grid (x default: "
          f"{', '.join(f'{c:g}' for c in grid)}; max_iter={max_iter}):")
    print(f"{'game':<20} {'method':<14} {'it(last)':>9} {'step':>11} {'it(avg)':>8} {'step':>11} {'support':>7} "
          f"{'s':>6}")
    for name, prob in games(rng).items():
        if only and name not in only:
            continue
        support = len(maximal_lottery(prob).attrs["support"])
        for method, kw in METHODS:
            label = method + ("+anchor" if kw else "")
            if methods and label not in methods:
                continue
            t = time.perf_counter()
            rows = sweep(prob, method, kw, grid, max_iter)
            seconds = time.perf_counter() - t
            (il, sl), (ia, sa) = _best(rows, 0), _best(rows, 1)
            print(f"{name:<20} {label:<14} {il:>9} {sl:>11} {ia:>8} {sa:>11} {support:>7} {seconds:>6.1f}",
                  flush=True)


def _value_variable_lp(margin: np.ndarray) -> np.ndarray:
    """The LP with the game value as a variable: maximise v s.t. M^T p >= v, sum p = 1 (the former form)."""
    from scipy.optimize import linprog

    n = margin.shape[0]
    c = np.zeros(n + 1)
    c[-1] = -1.0
    a_eq = np.ones((1, n + 1))
    a_eq[0, -1] = 0.0
    res = linprog(c, A_ub=np.hstack([-margin.T, np.ones((n, 1))]), b_ub=np.zeros(n), A_eq=a_eq, b_eq=[1.0],
                  bounds=[(0.0, None)] * n + [(None, None)], method="highs-ipm",
                  options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10})
    p = np.clip(res.x[:n], 0.0, None)
    return p / p.sum()


def lp_speed() -> None:
    rng = np.random.default_rng(1)
    n = 1000
    theta = rng.normal(size=n)
    z = rng.normal(size=(n, n))
    cases = {"near-transitive": expit(theta[:, None] - theta[None, :] + 0.5 * (z - z.T)), "random": expit(z - z.T)}
    print(f"\nMaximal lottery of a {n}-item matrix (HiGHS via scipy.optimize.linprog), seconds:")
    print(f"{'matrix':<16} {'maximal_lottery':>15} {'full LP feas.':>13} {'full LP value-var':>17} {'support':>8} "
          f"{'gap':>9} {'unique':>7}")
    for name, prob in cases.items():
        m = prob - prob.T
        t = time.perf_counter()
        lottery = maximal_lottery(prob)
        ours = time.perf_counter() - t
        t = time.perf_counter()
        full = _lp_solve(m)
        feas = time.perf_counter() - t
        t = time.perf_counter()
        old = _value_variable_lp(m)
        value_var = time.perf_counter() - t
        assert np.abs(full - lottery.to_numpy()).max() < 1e-6 and np.abs(old - full).max() < 1e-6
        print(f"{name:<16} {ours:>15.2f} {feas:>13.2f} {value_var:>17.2f} {len(lottery.attrs['support']):>8} "
              f"{lottery.attrs['gap']:>9.1e} {lottery.attrs['unique']!s:>7}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-iter", type=int, default=20_000)
    parser.add_argument("--grid", default="0.1,0.3,1,3,10", help="step multipliers of each method's default")
    parser.add_argument("--skip-lp", action="store_true")
    parser.add_argument("--skip-sweep", action="store_true")
    parser.add_argument("--games", help="comma-separated game names (default: all)")
    parser.add_argument("--methods", help="comma-separated methods, e.g. optimistic,inpo+anchor (default: all)")
    args = parser.parse_args()
    if not args.skip_sweep:
        convergence_table(args.max_iter, [float(c) for c in args.grid.split(",")],
                          args.games.split(",") if args.games else None,
                          args.methods.split(",") if args.methods else None)
    if not args.skip_lp:
        lp_speed()


if __name__ == "__main__":
    main()
