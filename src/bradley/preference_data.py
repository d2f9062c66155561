"""Building preference data from scored responses (pairs and rankings).

Given several responses per prompt, each with a score (a reward, a judge
rating, or a pass rate on unit tests as in ACECODER), build the chosen /
rejected pairs or best-first rankings that preference losses train on. The
rules are explicit parameters: a minimum score for the chosen response, a
maximum for the rejected one, a minimum gap, and a tie band within which two
responses are treated as equally good (skipped, or emitted as ties).
Vectorised with pandas group-bys; no Python loop over prompts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bradley.errors import ComparisonDataError

__all__ = ["pairs_from_scores", "rankings_from_scores"]


def _check_columns(frame: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ComparisonDataError(f"missing column(s) {missing}: the data have columns {list(frame.columns)[:20]}.")
    bad = frame[columns[-1]].isna().to_numpy()
    if bad.any():
        rows = np.flatnonzero(bad)[:10].tolist()
        raise ComparisonDataError(f"missing (NaN) score in rows {rows}.", rows)


def pairs_from_scores(
    frame: pd.DataFrame,
    prompt: str = "prompt",
    response: str = "response",
    score: str = "score",
    *,
    pairing: str = "all",
    min_chosen: float | None = None,
    max_rejected: float | None = None,
    min_gap: float = 0.0,
    tie_within: float = 0.0,
    keep_ties: bool = False,
) -> pd.DataFrame:
    """Chosen / rejected pairs from scored responses, per prompt.

    Parameters
    ----------
    frame : DataFrame
        One row per response with its prompt id and score.
    pairing : {"all", "best_vs_rest", "best_vs_worst"}
        Which pairs to consider: every pair of responses to a prompt, the best
        response against each other one, or only best against worst.
    min_chosen, max_rejected : float, optional
        The chosen response must score at least ``min_chosen`` and the
        rejected at most ``max_rejected`` (e.g. pass rates: chosen >= 0.8).
    min_gap : float
        Minimum score difference between chosen and rejected.
    tie_within : float
        Pairs whose scores differ by at most this are ties: dropped, or kept
        with ``tie = True`` when ``keep_ties`` (for tie-aware losses).

    Returns
    -------
    DataFrame
        ``prompt, chosen, rejected, chosen_score, rejected_score, margin, tie``.

    Examples
    --------
    >>> df = pd.DataFrame({"prompt": [1, 1, 1, 2, 2], "response": list("abcde"),
    ...                    "score": [1.0, 0.2, 0.6, 0.5, 0.5]})
    >>> pairs_from_scores(df, min_gap=0.3)[["prompt", "chosen", "rejected"]].values.tolist()
    [[1, 'a', 'c'], [1, 'a', 'b'], [1, 'c', 'b']]
    """
    _check_columns(frame, [prompt, response, score])
    if pairing not in ("all", "best_vs_rest", "best_vs_worst"):
        raise ValueError(f"pairing must be 'all', 'best_vs_rest' or 'best_vs_worst'; got {pairing!r}.")
    data = frame[[prompt, response, score]].rename(columns={prompt: "prompt", response: "response", score: "score"})
    data = data.sort_values(["prompt", "score"], ascending=[True, False], kind="stable").reset_index(drop=True)
    data["rank"] = data.groupby("prompt", sort=False).cumcount()
    if pairing == "all":
        left = data.merge(data, on="prompt", suffixes=("_c", "_r"))
        left = left[left["rank_c"] < left["rank_r"]]
    else:
        best = data[data["rank"] == 0]
        others = data[data["rank"] > 0]
        if pairing == "best_vs_worst":
            last = data.groupby("prompt", sort=False)["rank"].transform("max")
            others = data[(data["rank"] == last) & (data["rank"] > 0)]
        left = best.merge(others, on="prompt", suffixes=("_c", "_r"))
    pairs = pd.DataFrame(
        {
            "prompt": left["prompt"].to_numpy(),
            "chosen": left["response_c"].to_numpy(),
            "rejected": left["response_r"].to_numpy(),
            "chosen_score": left["score_c"].to_numpy(),
            "rejected_score": left["score_r"].to_numpy(),
        }
    )
    pairs["margin"] = pairs["chosen_score"] - pairs["rejected_score"]
    pairs["tie"] = pairs["margin"] <= tie_within
    keep = pd.Series(True, index=pairs.index)
    if min_chosen is not None:
        keep &= pairs["chosen_score"] >= min_chosen
    if max_rejected is not None:
        keep &= pairs["rejected_score"] <= max_rejected
    decisive = ~pairs["tie"] & (pairs["margin"] >= min_gap)
    keep &= decisive | (pairs["tie"] & keep_ties)
    return pairs[keep].reset_index(drop=True)


def rankings_from_scores(
    frame: pd.DataFrame,
    prompt: str = "prompt",
    response: str = "response",
    score: str = "score",
    *,
    tie_within: float = 0.0,
    min_size: int = 2,
) -> pd.DataFrame:
    """Best-first rankings of each prompt's responses, in long form.

    Returns ``ranking_id, item, rank`` (rank 1 = best); responses whose scores
    are within ``tie_within`` of the previous one in the order share its rank
    (ties). Prompts with fewer than ``min_size`` responses are dropped.

    Examples
    --------
    >>> df = pd.DataFrame({"prompt": [1, 1, 1], "response": list("abc"), "score": [0.1, 0.9, 0.9]})
    >>> rankings_from_scores(df)[["item", "rank"]].values.tolist()
    [['b', 1], ['c', 1], ['a', 3]]
    """
    _check_columns(frame, [prompt, response, score])
    data = frame[[prompt, response, score]].rename(columns={prompt: "ranking_id", response: "item", score: "score"})
    data = data.sort_values(["ranking_id", "score"], ascending=[True, False], kind="stable").reset_index(drop=True)
    group = data.groupby("ranking_id", sort=False)
    position = group.cumcount() + 1
    gap = group["score"].diff().abs()
    new_level = gap.isna() | (gap > tie_within)
    # competition ranking: a tied response takes the position where its tie group started
    data["rank"] = position.where(new_level).groupby(data["ranking_id"]).ffill().astype(np.int64)
    sizes = group["item"].transform("size")
    return data[sizes >= min_size][["ranking_id", "item", "rank", "score"]].reset_index(drop=True)
