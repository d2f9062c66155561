"""Held-out log-loss of ContextualBT (prompt tags -> leaderboard) vs the global model on 135k arena battles.

Data: ../shared/data/arena_human_preference_140k (the 10 category/criteria tag
columns plus ``if_score``; 10 self-battles dropped). Reports, for ties as a
Davidson class:

* three-way log-loss (model_a / tie-or-both-bad / model_b) and binary log-loss
  on decisive battles (Davidson's conditional probability is the BT one);
* on one fixed 80/20 random split (seed 0), overall and per category, and
  5-fold cross-validated overall (mean and sd over folds);
* the router on the held-out prompts with illustrative costs.

The penalty is chosen by ``penalty="auto"`` (a 20% validation split inside the
training part) on the fixed split; in the cross-validation it is chosen again
inside each fold's training part (``--cv-fixed-penalty`` reuses the fixed
split's choice instead, which was made on battles that overlap the folds'
test parts, a small leak).

Run: ``python benchmarks/bench_contextual.py [--folds 5] [--neural]``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bradley.models.contextual import ContextualBT
from bradley.routing import route

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "arena_human_preference_140k" / \
    "arena_human_preference_140k_battles.csv"
CRITERIA = ["criteria_complexity", "criteria_creativity", "criteria_domain_knowledge", "criteria_problem_solving",
            "criteria_real_world", "criteria_specificity", "criteria_technical_accuracy"]
TAGS = ["creative_writing", *CRITERIA, "if_flag", "if_score", "math"]


def load() -> pd.DataFrame:
    frame = pd.read_csv(DATA)
    frame = frame[frame.model_a != frame.model_b].reset_index(drop=True)
    frame["if_score"] = frame["if_score"].fillna(0.0)  # one row lacks it
    return frame


def categories(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    hard = frame[CRITERIA].sum(axis=1) >= 6
    return {"all": np.ones(len(frame), bool), "creative_writing": frame["creative_writing"].to_numpy(),
            "math": frame["math"].to_numpy(), "instruction_following": frame["if_flag"].to_numpy(),
            "hard_prompts (>=6 criteria)": hard.to_numpy(),
            "no tag": ~(frame["creative_writing"] | frame["math"] | frame["if_flag"] | hard).to_numpy()}


def losses(model: ContextualBT, frame: pd.DataFrame) -> tuple[float, float]:
    return model.log_loss(frame, TAGS, "three-way"), model.log_loss(frame, TAGS, "binary")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--neural", action="store_true")
    parser.add_argument("--routing-only", action="store_true", help="fit penalty 300 and route only")
    parser.add_argument("--cv-only", action="store_true", help="run the cross-validation only")
    parser.add_argument("--cv-fixed-penalty", type=float, default=None,
                        help="reuse this penalty in every fold instead of choosing it inside the fold")
    args = parser.parse_args()
    frame = load()
    print(f"{len(frame)} battles, {pd.unique(frame[['model_a', 'model_b']].values.ravel()).size} models")
    test = np.random.default_rng(0).random(len(frame)) < 0.2
    train, held = frame[~test].reset_index(drop=True), frame[test].reset_index(drop=True)
    if args.routing_only:
        routing(ContextualBT(ties="davidson", penalty=300.0).fit(train, TAGS), held)
        return
    if args.cv_only:
        cross_validate(frame, args.folds, args.cv_fixed_penalty)
        return
    start = time.perf_counter()
    glob = ContextualBT(ties="davidson", penalty=np.inf).fit(train, TAGS)
    t_glob = time.perf_counter() - start
    start = time.perf_counter()
    ctx = ContextualBT(ties="davidson").fit(train, TAGS)
    t_ctx = time.perf_counter() - start
    print(f"fit: global {t_glob:.1f} s; contextual with penalty search {t_ctx:.1f} s "
          f"(chosen penalty {ctx.penalty_:g}, {ctx.n_iter_} trust-region steps, converged={ctx.converged_})")
    print(ctx.penalty_path_.to_string(index=False))
    models = {"global Davidson": glob, "ContextualBT (linear)": ctx}
    start = time.perf_counter()
    tie_ctx = ContextualBT(ties="davidson", tie_context=True, penalty=ctx.penalty_).fit(train, TAGS)
    print(f"tie_context fit {time.perf_counter() - start:.1f} s")
    models["ContextualBT + tie(x)"] = tie_ctx
    if args.neural:
        start = time.perf_counter()
        models["ContextualBT (neural)"] = ContextualBT(ties="davidson", kind="neural", hidden=32, epochs=100,
                                                       patience=8, batch_size=2048).fit(train, TAGS)
        print(f"neural fit {time.perf_counter() - start:.1f} s")
    rows = []
    for name, mask in categories(held).items():
        part = held[mask].reset_index(drop=True)
        row: dict[str, object] = {"category": name, "held-out battles": len(part)}
        for label, model in models.items():
            three, binary = losses(model, part)
            row[f"{label} 3-way"] = round(three, 4)
            row[f"{label} binary"] = round(binary, 4)
        rows.append(row)
    print("\nfixed 80/20 split, held-out log-loss (lower is better)")
    print(pd.DataFrame(rows).to_markdown(index=False))

    if args.folds > 1:
        cross_validate(frame, args.folds, args.cv_fixed_penalty)

    routing(ctx, held)


def cross_validate(frame: pd.DataFrame, folds: int, fixed_penalty: float | None) -> None:
    """K-fold CV (seed 1); the penalty is chosen by 'auto' inside each fold unless ``fixed_penalty``."""
    fold = np.random.default_rng(1).integers(0, folds, len(frame))
    cv, chosen = [], []
    for f in range(folds):
        start = time.perf_counter()
        tr, te = frame[fold != f].reset_index(drop=True), frame[fold == f].reset_index(drop=True)
        g = ContextualBT(ties="davidson", penalty=np.inf).fit(tr, TAGS)
        c = ContextualBT(ties="davidson", penalty="auto" if fixed_penalty is None else fixed_penalty).fit(tr, TAGS)
        chosen.append(c.penalty_)
        cv.append([*losses(g, te), *losses(c, te)])
        print(f"fold {f}: penalty {c.penalty_:g}, {cv[-1]} ({time.perf_counter() - start:.0f} s)", flush=True)
    cv_arr = np.array(cv)
    names = ["global 3-way", "global binary", "contextual 3-way", "contextual binary"]
    table = pd.DataFrame({"metric": names, "mean": cv_arr.mean(axis=0).round(4), "sd": cv_arr.std(axis=0, ddof=1)
                          .round(4)})
    diff = cv_arr[:, 2] - cv_arr[:, 0]
    how = "chosen inside each fold" if fixed_penalty is None else "fixed"
    print(f"\n{folds}-fold CV (penalty {how}: {chosen}); contextual - global 3-way: "
          f"{diff.mean():.4f} (every fold better: {bool((diff < 0).all())})")
    print(table.to_markdown(index=False))


def routing(ctx: ContextualBT, held: pd.DataFrame) -> None:
    """Route the held-out prompts; illustrative costs: global top 10 cost 10, next 10 cost 3, others 1."""
    board = ctx.leaderboard(None)
    costs = pd.Series(1.0, index=board["item"])
    costs.iloc[:10], costs.iloc[10:20] = 10.0, 3.0
    prompts = held[TAGS]
    print("\nrouting held-out prompts (illustrative costs 10 / 3 / 1 by global rank)")
    for label, kwargs in [("no budget", {}), ("max cost 3", {"max_cost": 3.0}), ("max cost 1", {"max_cost": 1.0}),
                          ("average budget 2", {"average_budget": 2.0})]:
        start = time.perf_counter()
        res = route(ctx, prompts, costs, battles=held, **kwargs)
        print(f"{label:>17}: mean cost {res.mean_cost:5.2f}, expected win rate vs field "
              f"{res.mean_expected_win_rate:.3f}, vs always-{res.leader} {res.win_rate_vs_leader:.3f}, "
              f"{res.choices['item'].nunique()} models used ({time.perf_counter() - start:.1f} s); observed in "
              f"{res.n_observed} held-out battles choice vs leader: {res.observed_vs_leader} "
              f"(binomial se {res.observed_se})")


if __name__ == "__main__":
    main()
