"""Active comparison selection: comparisons needed to reach a target rank accuracy, per strategy.

Simulation. True Bradley-Terry scores are drawn per seed, either ``N(0, 1)``
(``normal``) or without replacement from the scores of the Bradley-Terry fit
of the real arena data, :func:`bradley.datasets.load_arena_140k` (53 models,
sd 0.33: ``arena``). Each strategy of :mod:`bradley.active` chooses the pairs
``--batch`` at a time (the sampler is refitted on all votes so far before each
batch), outcomes are drawn from the true model, and at every batch the scores
are estimated by the same MAP Bradley-Terry fit for all strategies (prior
``N(0, 1)``). Recorded: Kendall tau between estimated and true scores and
top-k recall (the share of the true top k among the estimated top k).

The sampler and the outcomes draw from separate generators
(``default_rng([seed, 0])`` and ``default_rng([seed, 1])``), so the
strategies see common random numbers for the outcomes; the true scores come
from ``default_rng(1000 + seed)``, the same for every strategy.

Reported: mean curves over seeds (with standard errors) at a few budgets and
the first budget at which the *mean* curve reaches the targets, ``N(...)``
(``>B`` = not reached within the budget ``B``), and the savings factors
``N(peer) / N(strategy)`` for each model-based strategy against ``uniform``,
``arena`` and ``arena-balanced``, each with a 90 % percentile bootstrap
interval over seeds (seeds resampled jointly for all strategies; a curve that
does not reach a target counts as reaching it one batch after the budget, and
the factor is then marked ``>`` or ``<``).

``--speed`` instead times one ``choose_pairs`` call among 200 items with
4,000 votes (the web service calls it per request), wall and CPU time.

Run: ``python benchmarks/bench_active.py [--speed] [--items 20,50] [--seeds 30] [--per-item 40]
[--batch 0] [--spreads normal,arena] [--strategies uniform,arena,...] [--jobs 2] [--save PREFIX]``
(``--batch 0``: half the number of items per batch).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.special import expit
from scipy.stats import kendalltau

import bradley
from bradley.active import STRATEGIES, ActiveSampler, choose_pairs
from bradley.data import PairCounts
from bradley.solvers import bt


def arena_scores() -> np.ndarray:
    battles = bradley.datasets.load_arena_140k()
    battles = battles[battles["model_a"] != battles["model_b"]]
    return bradley.BradleyTerry().fit(bradley.read_comparisons(battles)).scores_


def counts_from(rows: np.ndarray, n: int) -> PairCounts:
    """PairCounts of (winner, loser) rows over items 0..n-1."""
    wins = np.zeros((n, n))
    np.add.at(wins, (rows[:, 0], rows[:, 1]), 1.0)
    return PairCounts.from_matrix(wins, items=np.arange(n))


def run(strategy: str, truth: np.ndarray, budget: int, batch: int, top_k: int, seed: int,
        neighbours: int = 2, prior: float = 1.0) -> np.ndarray:
    """(checkpoints, 2) array: Kendall tau and top-k recall after each batch.

    The sampler draws from ``default_rng([seed, 0])``, the outcomes from their
    own ``default_rng([seed, 1])``: every strategy sees the same stream of
    outcome uniforms (common random numbers).
    """
    n = len(truth)
    rng = np.random.default_rng([seed, 0])
    outcome_rng = np.random.default_rng([seed, 1])
    if strategy.startswith("information"):
        # information[-top][-neighbours]: top-k target; rank-window targets instead of the closest pairs
        sampler = ActiveSampler("information", seed=rng, neighbours=neighbours, prior=prior,
                                top_k=top_k if "-top" in strategy else None,
                                targets="neighbours" if strategy.endswith("-neighbours") else "close")
    else:
        sampler = ActiveSampler(strategy, seed=rng, neighbours=neighbours, prior=prior)
    rows = np.zeros((0, 2), dtype=np.int64)
    true_top = set(np.argsort(-truth)[:top_k].tolist())
    out = []
    names = np.arange(n)
    while len(rows) < budget:
        data = counts_from(rows, n) if len(rows) else None
        pairs = np.array(sampler.fit(data, names).next_pairs(batch), dtype=np.int64)
        left_wins = outcome_rng.random(len(pairs)) < expit(truth[pairs[:, 0]] - truth[pairs[:, 1]])
        new = np.where(left_wins[:, None], pairs, pairs[:, ::-1])
        rows = np.concatenate([rows, new])
        scores = bt.newton(counts_from(rows, n), prior_variance=1.0).scores
        tau = kendalltau(scores, truth).statistic
        recall = len(true_top & set(np.argsort(-scores)[:top_k].tolist())) / top_k
        out.append((tau, recall))
    return np.array(out)


def first_reaching(curve: np.ndarray, target: float, xs: np.ndarray) -> int | None:
    hit = np.flatnonzero(curve >= target)
    return int(xs[hit[0]]) if len(hit) else None


def speed(n_items: int = 200, n_votes: int = 4000, repeats: int = 10) -> None:
    """Time one ``choose_pairs`` call (fit included) and a batch of 10, per strategy: wall and CPU time."""
    data, _ = bradley.simulate_bt(n_items, n_votes, seed=0, item_names=True)
    pc = data.pair_counts()
    items = list(data.items)
    print(f"\n## speed: {n_items} items, {n_votes} votes (median of {repeats}; CPU time = process time)\n")
    print("| strategy | 1 pair wall ms | 1 pair CPU ms | 10 pairs wall ms | 10 pairs CPU ms |")
    print("|---|---|---|---|---|")
    for strategy in STRATEGIES:
        cells = []
        for n in (1, 10):
            wall, cpu = [], []
            for k in range(repeats):
                w0, c0 = time.perf_counter(), time.process_time()
                choose_pairs(pc, items, n, strategy=strategy, rng=k)
                wall.append(time.perf_counter() - w0)
                cpu.append(time.process_time() - c0)
            cells += [f"{1000 * np.median(wall):.1f}", f"{1000 * np.median(cpu):.1f}"]
        print(f"| {strategy} | " + " | ".join(cells) + " |")
    w0, c0 = time.perf_counter(), time.process_time()
    choose_pairs(None, items, 1, rng=0)
    print(f"\nno votes yet, information, 1 pair: {1000 * (time.perf_counter() - w0):.1f} ms wall, "
          f"{1000 * (time.process_time() - c0):.1f} ms CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", default="20,50")
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--boot", type=int, default=2000, help="bootstrap resamples over seeds")
    parser.add_argument("--per-item", type=int, default=40, help="budget: comparisons per item")
    parser.add_argument("--batch", type=int, default=0)
    parser.add_argument("--spreads", default="normal,arena")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--tau", type=lambda t: [float(x) for x in t.split(",")], default=[0.8, 0.9])
    parser.add_argument("--recall", type=lambda t: [float(x) for x in t.split(",")], default=[0.8, 0.9])
    parser.add_argument("--save", default="", help="save the curves to SAVE-<spread>-<items>.npz")
    parser.add_argument("--neighbours", type=int, default=2, help="information: rank distance of target pairs")
    parser.add_argument("--prior", type=float, default=1.0, help="the samplers' prior variance (not the scoring fit's)")
    parser.add_argument("--speed", action="store_true", help="only time choose_pairs among 200 items")
    args = parser.parse_args()
    if args.speed:
        speed()
        return
    strategies = args.strategies.split(",")
    pool = arena_scores() if "arena" in args.spreads else None
    for spread in args.spreads.split(","):
        for n in map(int, args.items.split(",")):
            if spread == "arena" and pool is not None and n > len(pool):
                print(f"skip arena spread with {n} items (the fit has {len(pool)})")
                continue
            batch = args.batch or max(n // 2, 1)
            budget = args.per_item * n
            top_k = 10 if n >= 40 else 5
            xs = np.arange(batch, budget + batch, batch)[: -(-budget // batch)]
            curves: dict[str, np.ndarray] = {}
            start = time.perf_counter()
            tasks = []
            for strategy in strategies:
                for seed in range(args.seeds):
                    truth_rng = np.random.default_rng(1000 + seed)
                    if spread == "normal":
                        truth = truth_rng.normal(size=n)
                    else:
                        assert pool is not None
                        truth = truth_rng.choice(pool, size=n, replace=False)
                    tasks.append((strategy, truth, budget, batch, top_k, seed, args.neighbours, args.prior))
            if args.jobs > 1:
                from concurrent.futures import ProcessPoolExecutor

                with ProcessPoolExecutor(args.jobs) as pool_ex:
                    results = list(pool_ex.map(_run_task, tasks))
            else:
                results = [_run_task(t) for t in tasks]
            for k, strategy in enumerate(strategies):
                curves[strategy] = np.stack(results[k * args.seeds:(k + 1) * args.seeds])  # (seeds, checkpoints, 2)
            elapsed = time.perf_counter() - start
            print(f"\n## {spread} scores, {n} items, top-{top_k}, batch {batch}, {args.seeds} seeds "
                  f"({elapsed:.0f} s)\n")
            if args.save:
                np.savez(f"{args.save}-{spread}-{n}.npz", xs=xs, **curves)
            report(curves, xs, n, budget, top_k, args.tau, args.recall, args.boot)


def _run_task(task: tuple) -> np.ndarray:
    import warnings

    warnings.simplefilter("ignore")
    return run(*task)


def report(curves: dict[str, np.ndarray], xs: np.ndarray, n: int, budget: int, top_k: int,
           taus: list[float], recalls: list[float], n_boot: int = 2000) -> None:
    """Markdown table of the mean curves at a few budgets, budgets to reach the targets, savings factors."""
    marks = [m for m in (5, 10, 20, 40, 80) if m * n <= budget]
    goals = [(0, t, f"tau {t}") for t in taus] + [(1, r, f"top-{top_k} recall {r}") for r in recalls]
    head = " | ".join(f"tau @{m}n" for m in marks) + " | " + " | ".join(f"recall @{m}n" for m in marks)
    print(f"| strategy | {head} | " + " | ".join(f"N({g[2]})" for g in goals) + " |")
    print("|---" * (1 + 2 * len(marks) + len(goals)) + "|")
    reach: dict[str, list[int | None]] = {}
    for strategy, c in curves.items():
        mean, se = c.mean(0), c.std(0, ddof=1) / np.sqrt(c.shape[0])
        cells = []
        for metric in (0, 1):
            for m in marks:
                k = int(np.searchsorted(xs, m * n))
                cells.append(f"{mean[k, metric]:.3f} ± {se[k, metric]:.3f}")
        reach[strategy] = [first_reaching(mean[:, metric], target, xs) for metric, target, _ in goals]
        shown = [str(r) if r is not None else f">{budget}" for r in reach[strategy]]
        print(f"| {strategy} | " + " | ".join(cells + shown) + " |")
    print()
    # savings factor N(peer) / N(mine) from the mean curves, with a 90 % percentile bootstrap over seeds
    # (seeds resampled jointly for all strategies); a curve that does not reach the target within the
    # budget counts as reaching it one batch later (censored: the factor is then a bound, marked ">" / "<")
    boot_rng = np.random.default_rng(0)
    n_seeds = next(iter(curves.values())).shape[0]
    resamples = boot_rng.integers(n_seeds, size=(n_boot, n_seeds))
    censor = float(xs[-1] + (xs[1] - xs[0] if len(xs) > 1 else xs[0]))

    def needed(c: np.ndarray, metric: int, target: float) -> float:
        hit = np.flatnonzero(c.mean(0)[:, metric] >= target)
        return float(xs[hit[0]]) if len(hit) else censor

    mines = [m for m in ("misorder", "information", "thompson", "uncertainty", "information-top") if m in curves]
    peers = [p for p in ("uniform", "arena", "arena-balanced") if p in curves]
    for mine in mines:
        for peer in peers:
            text = []
            for metric, target, name in goals:
                a, b = needed(curves[peer], metric, target), needed(curves[mine], metric, target)
                boots = np.array([needed(curves[peer][r], metric, target) / needed(curves[mine][r], metric, target)
                                  for r in resamples])
                lo, hi = np.percentile(boots, [5, 95])
                if a == censor and b == censor:
                    text.append(f"{name}: neither reached")
                    continue
                mark = ">" if a == censor else "<" if b == censor else ""
                text.append(f"{name}: {mark}{a / b:.2f}x [{lo:.2f}, {hi:.2f}]")
            print(f"savings {peer} / {mine}: " + "; ".join(text))


if __name__ == "__main__":
    main()
