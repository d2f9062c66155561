"""k-wise rankings: the :class:`Rankings` type, readers, and rank breaking into pairs.

A ranking orders some items of one choice set, best first; equal ranks are
ties, and items present but unranked (NaN rank in long form) count as ranked
below every ranked item (partial / top-k rankings).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bradley.data import Comparisons, encode_items
from bradley.errors import ComparisonDataError
from bradley.io import read_table

__all__ = ["Rankings", "read_rankings", "break_rankings"]

UNRANKED = 2**62  # level of items present but not ranked (exact in float64)


@dataclass(frozen=True, eq=False)
class Rankings:
    """Ragged rankings as flat arrays, one entry per (ranking, item).

    Attributes
    ----------
    ranking : numpy.ndarray of int64
        Ranking index of each entry (0..n_rankings-1), entries grouped by ranking.
    item : numpy.ndarray of int64
        Item codes into ``items``.
    level : numpy.ndarray of int64
        Rank level (1 = best; equal levels are ties; ``UNRANKED`` = present
        but below all ranked items).
    items : numpy.ndarray of object
    weight : numpy.ndarray of float64, shape (n_rankings,)
    """

    ranking: np.ndarray
    item: np.ndarray
    level: np.ndarray
    items: np.ndarray
    weight: np.ndarray

    @property
    def n_rankings(self) -> int:
        return int(len(self.weight))

    @property
    def n_items(self) -> int:
        return int(len(self.items))

    def __repr__(self) -> str:
        return f"Rankings(n_rankings={self.n_rankings}, n_items={self.n_items}, n_entries={len(self.item)})"

    @classmethod
    def from_long(
        cls, ranking_ids: Any, items: Any, ranks: Any, weight: Any | None = None, item_list: Any | None = None
    ) -> "Rankings":
        """Build from long form: one row per (ranking id, item, rank); NaN rank = unranked.

        Examples
        --------
        >>> r = Rankings.from_long([1, 1, 1, 2, 2], ["a", "b", "c", "b", "c"], [1, 2, 2, 1, 2])
        >>> r.n_rankings, r.items.tolist()
        (2, ['a', 'b', 'c'])
        """
        rid, _ = pd.factorize(np.asarray(ranking_ids, dtype=object))
        if (rid < 0).any():
            raise ComparisonDataError("missing ranking id in rows " + str(np.flatnonzero(rid < 0)[:10].tolist()) + ".")
        item_codes, _, names = encode_items(np.asarray(items, dtype=object), np.asarray(items, dtype=object), item_list)
        rank_values = pd.to_numeric(pd.Series(ranks), errors="coerce").to_numpy(np.float64)
        bad = ~np.isnan(rank_values) & ((rank_values < 1) | (rank_values != np.round(rank_values)))
        if bad.any():
            raise ComparisonDataError(f"ranks must be positive integers (or NaN = unranked); rows {np.flatnonzero(bad)[:10].tolist()}.")
        level = np.where(np.isnan(rank_values), UNRANKED, rank_values).astype(np.int64)
        order = np.lexsort((level, rid))
        rid, item_codes, level = rid[order], item_codes[order], level[order]
        dup = pd.DataFrame({"r": rid, "i": item_codes}).duplicated().to_numpy()
        if dup.any():
            raise ComparisonDataError(f"an item appears twice in one ranking ({int(dup.sum())} entries).")
        n_rankings = int(rid.max()) + 1 if len(rid) else 0
        sizes = np.bincount(rid, minlength=n_rankings)
        if (sizes < 2).any():
            raise ComparisonDataError(f"{int((sizes < 2).sum())} ranking(s) have fewer than two items.")
        w = np.ones(n_rankings) if weight is None else np.asarray(weight, dtype=np.float64)
        if len(w) != n_rankings or not (np.isfinite(w).all() and (w >= 0).all()):
            raise ComparisonDataError("ranking weights must be finite, non-negative, one per ranking.")
        return cls(rid, item_codes, level, names, w)

    @classmethod
    def from_orderings(cls, orderings: list[list[Any]], weight: Any | None = None) -> "Rankings":
        """Build from lists of items, best first (no ties).

        Examples
        --------
        >>> Rankings.from_orderings([["a", "b", "c"], ["c", "a"]]).n_rankings
        2
        """
        rid = np.repeat(np.arange(len(orderings)), [len(o) for o in orderings])
        items = [x for o in orderings for x in o]
        ranks = [k + 1 for o in orderings for k in range(len(o))]
        return cls.from_long(rid, items, ranks, weight)


def read_rankings(
    source: Any,
    *,
    layout: str = "long",
    ranking: str = "ranking_id",
    item: str = "item",
    rank: str = "rank",
    format: str | None = None,
) -> Rankings:
    """Read rankings from a file or table.

    ``layout="long"``: columns ``ranking_id, item, rank`` (names configurable;
    equal ranks are ties, empty rank = present but unranked).
    ``layout="wide"``: one row per ranking, items best first across the
    columns (empty cells end a shorter ranking); a column named ``ranking``,
    if present, holds the ranking ids and is not an item column.
    """
    frame = read_table(source, format) if isinstance(source, (str, os.PathLike)) else pd.DataFrame(source)
    if len(frame) == 0:
        raise ComparisonDataError("the data hold no rankings (zero rows).")
    if layout == "long":
        missing = [c for c in (ranking, item, rank) if c not in frame.columns]
        if missing:
            raise ComparisonDataError(f"missing column(s) {missing}: the data have columns {list(frame.columns)[:20]}.")
        return Rankings.from_long(frame[ranking].to_numpy(), frame[item].to_numpy(), frame[rank].to_numpy())
    if layout == "wide":
        if ranking in frame.columns:
            frame = frame.drop(columns=[ranking])
        values = frame.to_numpy(dtype=object)
        present = ~pd.isna(values)
        rows, cols = np.nonzero(present)
        return Rankings.from_long(rows, values[rows, cols], cols + 1)
    raise ValueError(f"layout must be 'long' or 'wide', got {layout!r}.")


def break_rankings(rankings: Rankings, method: str = "full") -> Comparisons:
    """Rank breaking: turn rankings into pairwise comparisons.

    ``"full"``: every pair of items in a ranking whose levels differ (or are
    tied: outcome 0.5), including ranked-versus-unranked pairs; consistent for
    Plackett-Luce data when fitted by Bradley-Terry. ``"adjacent"``: only
    items at consecutive levels (cheaper, but not consistent). Each pair
    carries its ranking's weight.

    Examples
    --------
    >>> r = Rankings.from_orderings([["a", "b", "c"]])
    >>> c = break_rankings(r)
    >>> c.n_comparisons, c.outcome.tolist()
    (3, [1.0, 1.0, 1.0])
    """
    if method not in ("full", "adjacent"):
        raise ValueError(f"method must be 'full' or 'adjacent', got {method!r}.")
    frame = pd.DataFrame({"r": rankings.ranking, "i": rankings.item, "l": rankings.level})
    pairs = frame.merge(frame, on="r", suffixes=("_a", "_b"))
    pairs = pairs[(pairs.l_a < pairs.l_b) | ((pairs.l_a == pairs.l_b) & (pairs.i_a < pairs.i_b))]
    both_unranked = (pairs.l_a == UNRANKED) & (pairs.l_b == UNRANKED)
    pairs = pairs[~both_unranked]
    if method == "adjacent":
        levels = frame.drop_duplicates(["r", "l"]).sort_values(["r", "l"])
        levels["next"] = levels.groupby("r")["l"].shift(-1)
        nxt = levels.set_index(["r", "l"])["next"]
        following = nxt.reindex(pd.MultiIndex.from_arrays([pairs.r, pairs.l_a])).to_numpy()
        pairs = pairs[(pairs.l_a == pairs.l_b) | (pairs.l_b.to_numpy() == following)]
    outcome = np.where(pairs.l_a.to_numpy() == pairs.l_b.to_numpy(), 0.5, 1.0)
    return Comparisons(
        pairs.i_a.to_numpy(np.int64), pairs.i_b.to_numpy(np.int64), outcome, rankings.items,
        rankings.weight[pairs.r.to_numpy()],
    )
