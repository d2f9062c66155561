"""k-wise rankings: the :class:`Rankings` type, readers, and rank breaking into pairs.

A ranking orders some items of one choice set, best first; equal ranks are
ties, and items present but unranked (NaN rank in long form) count as ranked
below every ranked item (partial / top-k rankings).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, cast

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
    ) -> Rankings:
        """Build from long form: one row per (ranking id, item, rank); NaN rank = unranked.

        Examples
        --------
        >>> r = Rankings.from_long([1, 1, 1, 2, 2], ["a", "b", "c", "b", "c"], [1, 2, 2, 1, 2])
        >>> r.n_rankings, r.items.tolist()
        (2, ['a', 'b', 'c'])
        """
        rid, ranking_names = pd.factorize(np.asarray(ranking_ids, dtype=object))
        ranking_names = np.asarray(ranking_names, dtype=object)
        if (rid < 0).any():
            raise ComparisonDataError("missing ranking id in rows " + str(np.flatnonzero(rid < 0)[:10].tolist()) + ".")
        item_codes, _, names = encode_items(np.asarray(items, dtype=object), np.asarray(items, dtype=object), item_list)
        rank_values = pd.to_numeric(pd.Series(ranks), errors="coerce").to_numpy(np.float64)
        bad = ~np.isnan(rank_values) & ((rank_values < 1) | (rank_values != np.round(rank_values)))
        if bad.any():
            raise ComparisonDataError(
                f"ranks must be positive integers (or NaN = unranked); rows {np.flatnonzero(bad)[:10].tolist()}."
            )
        level = np.where(np.isnan(rank_values), UNRANKED, rank_values).astype(np.int64)
        order = np.lexsort((level, rid))
        rid, item_codes, level = rid[order], item_codes[order], level[order]
        dup = pd.DataFrame({"r": rid, "i": item_codes}).duplicated(keep=False).to_numpy()
        if dup.any():
            rows = order[dup]  # input rows, grouped by ranking then item
            cases = pd.DataFrame({"id": np.asarray(ranking_ids, dtype=object)[rows], "item": names[item_codes[dup]],
                                  "row": rows}).groupby(["id", "item"], sort=False)["row"].apply(list)
            listed = "; ".join(f"ranking {_plain(k[0])!r}: item {_plain(k[1])!r} at rows {v}"
                               for k, v in list(cases.items())[:5])
            raise ComparisonDataError(f"{len(cases)} item(s) appear more than once in a ranking ({listed}).")
        n_rankings = int(rid.max()) + 1 if len(rid) else 0
        sizes = np.bincount(rid, minlength=n_rankings)
        if (sizes < 2).any():
            short = np.flatnonzero(sizes < 2)
            raise ComparisonDataError(
                f"{len(short)} ranking(s) have fewer than two items "
                f"(ids {[_plain(v) for v in ranking_names[short][:10]]}); "
                "a ranking of one item carries no information: drop it.")
        w = np.ones(n_rankings) if weight is None else np.asarray(weight, dtype=np.float64)
        if len(w) != n_rankings or not (np.isfinite(w).all() and (w >= 0).all()):
            raise ComparisonDataError("ranking weights must be finite, non-negative, one per ranking.")
        return cls(rid, item_codes, level, names, w)

    @classmethod
    def from_rank_matrix(
        cls, matrix: Any, items: Any | None = None, weight: Any | None = None, ids: Any | None = None
    ) -> Rankings:
        """Build from a rank matrix: one row per ranking, one column per item.

        Entries are rank numbers (1 = best, equal numbers = ties; gaps such
        as 1, 3 are allowed and mean the same order as 1, 2), and 0 or
        NaN = the item is not in that ranking, as R's
        ``PlackettLuce::as.rankings`` takes them.

        Parameters
        ----------
        matrix : DataFrame (columns = items) or 2-d array
        items : sequence, optional
            Item names, one per column (default: the DataFrame's columns, or 0..k-1).
        weight : array-like, optional
            One weight (e.g. a count) per row.
        ids : array-like, optional
            One ranking id per row, used in error messages (default: row numbers).

        Examples
        --------
        >>> r = Rankings.from_rank_matrix([[1, 2, 0], [2, 1, 1]], items=["x", "y", "z"])
        >>> r.n_rankings, r.level.tolist()
        (2, [1, 2, 1, 1, 2])
        """
        if isinstance(matrix, pd.DataFrame):
            names = list(matrix.columns) if items is None else list(items)
            columns = [pd.to_numeric(matrix[c], errors="coerce").to_numpy(np.float64) for c in matrix.columns]
            text = [c for c, raw, num in zip(matrix.columns, (matrix[c] for c in matrix.columns), columns, strict=True)
                    if (pd.isna(num) & ~pd.isna(raw.to_numpy())).any()]
            if text:
                raise ComparisonDataError(f"rank matrix column(s) {text[:5]} hold non-numeric values; "
                                          "pass id= for an id column, or use layout='wide' for items best first.")
            values = np.column_stack(columns) if columns else np.zeros((len(matrix), 0))
        else:
            values = np.asarray(matrix, dtype=np.float64)
            if values.ndim != 2:
                raise ComparisonDataError(f"a rank matrix is 2-d (rankings x items); got shape {values.shape}.")
            names = list(range(values.shape[1])) if items is None else list(items)
        n_rows, n_cols = values.shape
        if len(names) != n_cols:
            raise ComparisonDataError(f"{len(names)} item names for a rank matrix with {n_cols} columns.")
        ids = np.arange(n_rows) if ids is None else np.asarray(ids, dtype=object)
        if len(ids) != n_rows:
            raise ComparisonDataError(f"{len(ids)} ranking ids for a rank matrix with {n_rows} rows.")
        present = ~np.isnan(values) & (values != 0)
        bad = present & ((values < 0) | (values != np.round(values)))
        if bad.any():
            rows, cols = np.nonzero(bad)
            raise ComparisonDataError(
                f"rank numbers must be positive integers (0 or empty = not ranked); row(s) {rows[:10].tolist()} "
                f"in column(s) {pd.unique(np.asarray(names, dtype=object)[cols])[:5].tolist()}.")
        # a rank can never exceed the number of items: a column that does is not ranks (an id column?)
        impossible = present & (values > n_cols)
        if impossible.any():
            cols = np.flatnonzero(impossible.any(axis=0))
            raise ComparisonDataError(
                f"column(s) {[names[c] for c in cols[:5]]} hold values up to "
                f"{int(values[:, cols].max())}, more than the {n_cols} columns a rank can reach: an id column? "
                "Pass it as id= (read_rankings) or ids= and leave it out of the item columns.")
        rows, cols = np.nonzero(present)
        sizes = np.bincount(rows, minlength=n_rows)
        if (sizes < 2).any():
            short = np.flatnonzero(sizes < 2)
            raise ComparisonDataError(
                f"{len(short)} row(s) rank fewer than two items (ids {[_plain(v) for v in ids[short][:10]]}, rows "
                f"{short[:10].tolist()}); a ranking of one item carries no information: drop those rows.")
        return cls.from_long(ids[rows], np.asarray(names, dtype=object)[cols], values[rows, cols], weight,
                             item_list=np.asarray(names, dtype=object))

    @classmethod
    def from_orderings(cls, orderings: list[list[Any]], weight: Any | None = None) -> Rankings:
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
    id: str | bool | None = None,
    format: str | None = None,
) -> Rankings:
    """Read rankings from a file or table.

    Parameters
    ----------
    source : path or table (pandas/polars/pyarrow or anything ``pandas.DataFrame`` takes)
    layout : {"long", "wide", "matrix"}
        ``"long"``: columns ``ranking_id, item, rank`` (names configurable;
        equal ranks are ties, empty rank = present but unranked).
        ``"wide"``: one row per ranking, items best first across the columns
        (empty cells end a shorter ranking).
        ``"matrix"``: a rank matrix as R's ``PlackettLuce::as.rankings`` takes
        it: one row per ranking (judge), one column per item, rank numbers
        (1 = best, equal numbers = ties, 0 or empty = not in the ranking);
        see :meth:`Rankings.from_rank_matrix`.
    ranking, item, rank : str
        Column names of the long layout.
    id : str or False, optional
        Column holding the ranking ids (long layout: overrides ``ranking``).
        In the wide and matrix layouts it is not an item column; when not
        given, a column named ``ranking`` or ``ranking_id`` (or ``ranking=``,
        if that column exists) is taken as the id column, and any other
        column is data. Ids must be unique per row in these layouts.
        ``id=False`` (or ``""``) says there is no id column: every column
        is data. In the wide layout without an id column, a first column
        that looks like ids is an error rather than a silent misreading:
        its values all differ and either none of them appears in the other
        columns (which share values), or the other columns are named by
        position (``rank1, rank2, ...``) and it is not. Columns of rank
        numbers (``1..k`` under item-named headers) in the wide layout are
        an error suggesting ``layout="matrix"``.
    format : str, optional
        File format when it cannot be told from the file name.

    Examples
    --------
    >>> import pandas as pd
    >>> wide = pd.DataFrame({"ranking": [10, 11], "p1": ["x", "z"], "p2": ["y", "x"]})
    >>> read_rankings(wide, layout="wide").n_rankings
    2
    >>> matrix = pd.DataFrame({"judge": [1, 2], "A": [1, 2], "B": [2, 1], "C": [2, 0]})
    >>> r = read_rankings(matrix, layout="matrix", id="judge")
    >>> r.items.tolist(), r.level.tolist()
    (['A', 'B', 'C'], [1, 2, 2, 1, 2])
    """
    frame = read_table(source, format) if isinstance(source, (str, os.PathLike)) else pd.DataFrame(source)
    if len(frame) == 0:
        raise ComparisonDataError("the data hold no rankings (zero rows).")
    no_id = id is False or id == ""
    if no_id:
        id = None
    if id is not None and id not in frame.columns:
        raise ComparisonDataError(f"id column {id!r} not found: the data have columns {list(frame.columns)[:20]}.")
    if layout == "long":
        ranking = cast(str, id) if id is not None else ranking  # a column label, found above
        missing = [c for c in (ranking, item, rank) if c not in frame.columns]
        if missing:
            raise ComparisonDataError(f"missing column(s) {missing}: the data have columns {list(frame.columns)[:20]}.")
        return Rankings.from_long(frame[ranking].to_numpy(), frame[item].to_numpy(), frame[rank].to_numpy())
    if layout not in ("wide", "matrix"):
        raise ValueError(f"layout must be 'long', 'wide' or 'matrix', got {layout!r}.")
    guessing = id is None and not no_id
    if guessing:
        id = next((c for c in (ranking, "ranking", "ranking_id") if c in frame.columns), None)
    if id is None:
        ids = np.arange(len(frame))
    else:
        ids = frame[id].to_numpy(dtype=object)
        frame = frame.drop(columns=[id])
        _check_unique_ids(ids, cast(str, id))  # a column label
    if layout == "matrix":
        return Rankings.from_rank_matrix(frame, ids=ids)
    frame = _integer_labels(frame)
    if guessing and id is None:
        _refuse_unnamed_id_column(frame)
    _refuse_rank_numbers(frame, id)
    values = frame.to_numpy(dtype=object)
    present = ~pd.isna(values)
    rows, cols = np.nonzero(present)
    entries = pd.DataFrame({"row": rows, "item": values[rows, cols]})
    twice = entries.duplicated(keep=False).to_numpy()
    if twice.any():
        cases = entries[twice].drop_duplicates()
        listed = "; ".join(
            f"row {r} (ranking {_plain(ids[r])!r}): {_plain(v)!r}"
            for r, v in zip(cases.row[:5], cases["item"][:5], strict=True)
        )
        raise ComparisonDataError(f"an item appears twice in a ranking, {len(cases)} case(s): {listed}.")
    return Rankings.from_long(ids[rows], values[rows, cols], cols + 1)


def _integer_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """Item columns of whole numbers stored as floats (NaN padding of ragged rows) as integer labels.

    A ragged wide file reads a column with empty cells as float (``46.0``); the
    same item in a full column is the integer ``46``. Labels are the integers.
    """
    out = {}
    for name in frame.columns:
        col = frame[name]
        if pd.api.types.is_float_dtype(col.dtype):
            num = col.to_numpy(dtype=np.float64, na_value=np.nan)
            present = ~np.isnan(num)
            if (
                present.any()
                and np.all(num[present] == np.round(num[present]))
                and np.all(np.abs(num[present]) < 2**53)
            ):
                values = np.full(len(num), None, dtype=object)
                values[present] = [int(v) for v in num[present]]
                col = pd.Series(values, index=frame.index, dtype=object)
        out[name] = col
    return pd.DataFrame(out, index=frame.index, columns=frame.columns)


_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")


def _positions(headers: list[Any]) -> list[int] | None:
    """The positions that column headers name (``rank1, rank2``; ``1, 2``; ``first, second``), or None."""
    import re

    found, frame = [], None
    for h in headers:
        text = str(h).strip().lower()
        if text in _ORDINALS:
            found.append(_ORDINALS.index(text) + 1)
            continue
        match = re.fullmatch(r"(\D*?)(\d+)(st|nd|rd|th)?", text)
        if match is None:
            return None
        if frame is None:
            frame = match.group(1)
        elif match.group(1) != frame:
            return None
        found.append(int(match.group(2)))
    return found


def _is_position_sequence(headers: list[Any]) -> bool:
    pos = _positions(headers)
    return pos is not None and len(pos) > 0 and pos[0] in (0, 1) and pos == list(range(pos[0], pos[0] + len(pos)))


def _rank_number_columns(frame: pd.DataFrame) -> bool:
    """Every entry a whole number in 1..(number of columns), under headers that do not name positions."""
    if frame.shape[1] < 2 or _positions(list(frame.columns)) is not None:
        return False
    values = frame.to_numpy(dtype=object)
    present = values[~pd.isna(values)]
    if len(present) == 0:
        return False
    try:
        num = np.asarray(present, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return bool(np.all((num >= 1) & (num <= frame.shape[1]) & (num == np.round(num))))


def _refuse_rank_numbers(frame: pd.DataFrame, id_column: Any) -> None:
    if not _rank_number_columns(frame):
        return
    columns = [str(c) for c in frame.columns]
    id_hint = "" if id_column is None else f", id={str(id_column)!r}"
    cli_hint = "" if id_column is None else f" --id-col {id_column}"
    raise ComparisonDataError(
        f"the columns {columns[:6]} hold rank numbers (1..{frame.shape[1]}), not items best first: this is a rank "
        f"matrix (one column per item). Read it with layout='matrix'{id_hint} (CLI: --layout matrix{cli_hint}). If the "
        "numbers really are item names, name the columns by position (1, 2, ... or rank1, rank2, ...).")


def _refuse_unnamed_id_column(frame: pd.DataFrame) -> None:
    """A wide table whose first column looks like ranking ids: refuse rather than read ids as first places."""
    if frame.shape[1] < 3 or len(frame) < 2:
        return
    first, rest = frame.iloc[:, 0], frame.iloc[:, 1:]
    if first.isna().any() or first.duplicated().any():
        return
    name = frame.columns[0]
    rest_values = rest.to_numpy(dtype=object)
    rest_values = rest_values[~pd.isna(rest_values)]
    first_values = np.asarray(first.to_numpy(dtype=object))
    reasons = []
    if len(rest_values) and not pd.Index(pd.unique(rest_values)).isin(first_values).any() \
            and pd.Series(rest_values).duplicated().any():
        shown = [_plain(v) for v in first_values[:3]]
        reasons.append(f"its values all differ ({', '.join(map(repr, shown))}, ...) and none of them appears in "
                       "the other columns")
    if _is_position_sequence(list(rest.columns)) and _positions([name]) is None:
        reasons.append(f"the other columns are named by position ({rest.columns[0]!r}, {rest.columns[1]!r}, ...) "
                       "and it is not")
    matrix = _rank_number_columns(rest)
    if matrix:
        reasons.append(f"the other columns hold rank numbers 1..{rest.shape[1]}")
    if not reasons:
        return
    what = (f"This is a rank matrix with an id column: read it with layout='matrix', id={str(name)!r} "
            f"(CLI: --layout matrix --id-col {name})" if matrix else
            f"Pass id={str(name)!r} (CLI: --id-col {name}) to read it as the ranking ids")
    raise ComparisonDataError(
        f"the first column {str(name)!r} looks like a ranking id, not the first-placed items: "
        + "; ".join(reasons) + f". {what}; if it really holds the first-placed items, pass "
        "id=False (CLI: --id-col '').")


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (for readable messages)."""
    return value.item() if isinstance(value, np.generic) else value


def _check_unique_ids(ids: np.ndarray, column: str) -> None:
    repeated = pd.Series(ids).duplicated(keep=False).to_numpy()
    if repeated.any():
        first = [_plain(v) for v in pd.unique(ids[repeated])[:5]]
        raise ComparisonDataError(
            f"ranking ids in column {column!r} repeat across rows ({first}, rows "
            f"{np.flatnonzero(repeated)[:10].tolist()}): one row per ranking is expected in this layout.")


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
