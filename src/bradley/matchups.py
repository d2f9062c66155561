"""Relative scoring of items from matchups: schedule comparisons, ask a judge, fit calibrated scores.

Typical use: "which of these two answers are you more confident in?" asked of
an LLM judge for N questions; the answers become Bradley-Terry scores whose
differences are calibrated log-odds of the judge preferring one item.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bradley.io import parse_outcomes
from bradley.leaderboard import Leaderboard, leaderboard
from bradley.models import BradleyTerry

__all__ = ["schedule_matchups", "score_by_matchups"]


def schedule_matchups(
    items: Sequence[Any],
    design: str = "random",
    k: int = 4,
    seed: int | None = 0,
    repeats: int = 1,
) -> pd.DataFrame:
    """Pairs of items to compare.

    Parameters
    ----------
    design : {"random", "round_robin"}
        ``"random"``: every item meets ``k`` distinct random opponents (about
        ``n * k / 2`` matchups, a connected design with high probability for
        ``k >= 3``); ``"round_robin"``: every pair once.
    repeats : int
        Schedule each matchup this many times (alternating sides, which
        balances a position bias of the judge).

    Returns
    -------
    DataFrame with ``left`` and ``right``; sides are randomised.

    Examples
    --------
    >>> len(schedule_matchups(list("abcde"), design="round_robin"))
    10
    """
    names = np.asarray(list(items), dtype=object)
    n = len(names)
    if n < 2 or len(pd.unique(names)) != n:
        raise ValueError("need at least two distinct items.")
    rng = np.random.default_rng(seed)
    if design == "round_robin":
        first, second = np.triu_indices(n, 1)
    elif design == "random":
        if not 1 <= k < n:
            raise ValueError(f"k must lie in 1..{n - 1}, got {k}.")
        # each item draws k distinct opponents; duplicates (a-b and b-a) are merged
        # k distinct draws from the n - 1 others: positions 0..n-2, shifted past the item itself
        picks = np.argsort(rng.random((n, n - 1)), axis=1)[:, :k]
        first = np.repeat(np.arange(n), k)
        second = picks.ravel() + (picks.ravel() >= first)
        key = np.unique(np.minimum(first, second) * n + np.maximum(first, second))
        first, second = key // n, key % n
    else:
        raise ValueError(f"design must be 'random' or 'round_robin', got {design!r}.")
    swap = rng.random(len(first)) < 0.5
    left, right = np.where(swap, second, first), np.where(swap, first, second)
    if repeats > 1:
        left, right = (np.concatenate([left if r % 2 == 0 else right for r in range(repeats)]),
                       np.concatenate([right if r % 2 == 0 else left for r in range(repeats)]))
    return pd.DataFrame({"left": names[left], "right": names[right]})


def score_by_matchups(
    items: Sequence[Any],
    judge: Callable[[Any, Any], Any],
    design: str = "random",
    k: int = 4,
    seed: int | None = 0,
    repeats: int = 1,
    prior: float | None = 1.0,
    ci: str = "fisher",
) -> tuple[Leaderboard, pd.DataFrame]:
    """Schedule matchups, ask ``judge(left, right)`` for each, and fit calibrated BT scores.

    The judge returns the outcome for ``left``: 1/0/0.5, a probability, a
    label (``left``/``right``/``tie``), or the winner itself. A Gaussian
    prior (variance ``prior``, default 1) keeps scores finite when an item
    wins or loses every matchup, which small designs often produce.

    Returns
    -------
    leaderboard : Leaderboard
    matchups : DataFrame
        ``left, right, outcome`` as judged.
    """
    schedule = schedule_matchups(items, design=design, k=k, seed=seed, repeats=repeats)
    verdicts = [judge(a, b) for a, b in zip(schedule["left"], schedule["right"], strict=True)]  # one call per matchup
    outcome, _ = parse_outcomes(pd.Series(verdicts, dtype=object), schedule["left"], schedule["right"])
    schedule["outcome"] = outcome
    board = leaderboard(schedule, model=BradleyTerry(prior=prior), ci=ci)
    return board, schedule
