"""Whole-history rating: bradley.DynamicBT against the `whole-history-rating` package (whr).

Same synthetic data for both: PLAYERS players whose log-strengths drift as
random walks, GAMES dated games over DAYS days, Bradley-Terry outcomes. Both
fit the same model (w2, one half virtual win and loss at the first day, the
package's default anchor) and are stopped on their own gradient criterion
(whr: auto_iterate precision; DynamicBT: tol). Prints both wall times, the
ratio, and the largest difference between their node ratings.

Run: .venv/bin/python benchmarks/bench_whr.py [--games 100000 --players 5000 --skip-whr]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import pandas as pd


def make_data(games: int, players: int, days: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.normal(0, 0.05, size=(days, players)), axis=0) + rng.normal(0, 1, players)
    day = np.sort(rng.integers(0, days, games))
    left = rng.integers(0, players, games)
    right = (left + rng.integers(1, players, games)) % players
    p = 1 / (1 + np.exp(-(walk[day, left] - walk[day, right])))
    outcome = (rng.random(games) < p).astype(float)
    return pd.DataFrame({"left": [f"p{i}" for i in left], "right": [f"p{i}" for i in right],
                         "outcome": outcome, "time": day})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--games", type=int, default=100_000)
    ap.add_argument("--players", type=int, default=5_000)
    ap.add_argument("--days", type=int, default=1_000)
    ap.add_argument("--w2-elo", type=float, default=30.0)
    ap.add_argument("--whr-precision", type=float, default=1e-3)
    ap.add_argument("--whr-time-limit", type=int, default=600)
    ap.add_argument("--skip-whr", action="store_true")
    args = ap.parse_args()

    from bradley.models.dynamic import DynamicBT

    df = make_data(args.games, args.players, args.days)
    w2 = args.w2_elo * (math.log(10) / 400) ** 2
    t0 = time.perf_counter()
    model = DynamicBT(w2=w2, prior=0.5).fit(df)
    t_ours = time.perf_counter() - t0
    print(f"DynamicBT: {args.games} games, {args.players} players, {model.n_nodes_} nodes: "
          f"{t_ours:.2f} s, {model.n_iter_} Newton steps, converged={model.converged_}")
    if args.skip_whr:
        return
    from whr import WHR

    base = WHR({"w2": args.w2_elo, "initial_prior_wins": 0.5})
    t0 = time.perf_counter()
    for lft, rgt, out, day in zip(df["left"], df["right"], df["outcome"], df["time"], strict=True):
        base.create_game(lft, rgt, "B" if out == 1.0 else "W", int(day), 0)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    n_it, ok = base.auto_iterate(precision=args.whr_precision, time_limit=args.whr_time_limit)
    t_whr = time.perf_counter() - t0
    print(f"whr: load {t_load:.2f} s, fit {t_whr:.2f} s ({n_it} iterations, converged={ok} "
          f"at precision {args.whr_precision:g})")
    print(f"speed-up (whr fit / DynamicBT fit): {t_whr / t_ours:.1f}x")
    lay = model._layout_
    names = model.items_[lay.node_item]
    ref = {(name, d.day): d.r for name, p in base.players.items() for d in p.days}
    diff = max(abs(ref[(nm, int(t))] - r) for nm, t, r in zip(names, lay.node_time, model._node_score_, strict=True))
    print(f"max |rating difference| (natural units): {diff:.2e}")


if __name__ == "__main__":
    main()
