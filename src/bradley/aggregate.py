"""Pair counts from sources larger than memory: files, globs, directories and tables.

Every model without row-level covariates depends on the data only through
:class:`~bradley.data.PairCounts`. This module reduces a source to them without
materialising its rows: DuckDB (embedded, streaming, multi-threaded) scans the
files with column projection and the ``where=`` filter pushed down, and groups
the rows by their *distinct* ``(left, right, outcome)`` values. The grouped
table (at most a few rows per compared pair) then goes through the very same
validation as the in-memory path (:func:`bradley.read_comparisons`), with the
group sizes as frequency weights, so that outcome labels, item names, weights
and self-comparisons are checked by one piece of code. When that validation
fails, the offending raw rows are looked up again and the error names their
file and row (file line for CSV/JSONL, 0-based data row for Parquet), as the
in-memory path does.

The building blocks are public so that other engines (Dask, Spark) can use
them: :func:`partial_counts` turns one batch (pandas or Arrow) into a grouped
*partial* table, :func:`merge_partial_counts` adds partials together, and
:func:`pair_counts_from_partial` validates a partial into ``PairCounts``.
:func:`merge_pair_counts` merges finished ``PairCounts`` (item-label union),
for incremental daily updates stored with :func:`save_pair_counts` /
:func:`load_pair_counts`.

Uncertainty without rows: :func:`bootstrap_pair_counts` resamples the counts
(multinomial over all games, or independent Poisson per pair and outcome) and
:func:`sandwich_pair_counts` computes the robust covariance from per-pair score
contributions; both assume battles are independent (within a pair too).
"""

from __future__ import annotations

import ast
import glob as globlib
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bradley.data import PairCounts, _aggregate, _sorted_union
from bradley.errors import ComparisonDataError

__all__ = [
    "aggregate",
    "partial_counts",
    "merge_partial_counts",
    "pair_counts_from_partial",
    "merge_pair_counts",
    "save_pair_counts",
    "load_pair_counts",
    "bootstrap_pair_counts",
    "sandwich_pair_counts",
    "warm_start_scores",
    "where_to_sql",
    "ROWS_COLUMN",
    "WEIGHT_COLUMN",
]

#: Column of a partial table holding the number of raw rows in each group.
ROWS_COLUMN = "_bradley_rows"
#: Column of a partial table holding the summed weights of each group (weighted sources only).
WEIGHT_COLUMN = "_bradley_weight"
#: Number of rows in a group whose weight is missing, not a number, negative or out of range.
BAD_WEIGHT_COLUMN = "_bradley_bad_weights"

_FORMAT_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl",
                    ".ndjson": "jsonl", ".json": "jsonl"}
_GLOB_CHARS = re.compile(r"[*?\[]")


# --------------------------------------------------------------------------- partial tables (engine-neutral)

def _valid_weight(w: pd.Series) -> np.ndarray:
    """True where a weight is a usable frequency: 0, or within WEIGHT_RANGE."""
    from bradley.data import WEIGHT_RANGE

    values = pd.to_numeric(pd.Series(np.asarray(w, dtype=object)), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan)
    return np.asarray((values == 0) | ((values >= WEIGHT_RANGE[0]) & (values <= WEIGHT_RANGE[1])), dtype=bool)


def partial_counts(batch: Any, keys: Sequence[str], weight: str | None = None) -> pd.DataFrame:
    """Group one batch of comparison rows by its distinct key values: a *partial* count table.

    This is the map step of out-of-core and distributed aggregation. Partials
    of different batches are added with :func:`merge_partial_counts` and
    validated once with :func:`pair_counts_from_partial`. No label is parsed
    here, so a batch never fails: errors are found (and traced back to rows)
    when the merged partial is validated.

    Parameters
    ----------
    batch : pandas.DataFrame, pyarrow.Table or pyarrow.RecordBatch
        Rows of comparisons.
    keys : sequence of str
        The columns that decide a row's pair counts, e.g.
        ``["model_a", "model_b", "winner"]`` (left, right, outcome) or
        ``["winner", "loser"]``.
    weight : str, optional
        A frequency-weight column.

    Returns
    -------
    pandas.DataFrame
        One row per distinct key tuple (missing values kept as a group), with
        :data:`ROWS_COLUMN` (number of rows) and, when weighted,
        :data:`WEIGHT_COLUMN` (sum of valid weights) and ``BAD_WEIGHT_COLUMN``
        (rows whose weight is missing, not a number, negative or out of range).

    Examples
    --------
    >>> batch = pd.DataFrame({"a": ["x", "x", "y"], "b": ["y", "y", "x"], "o": [1, 1, 0.5]})
    >>> partial_counts(batch, ["a", "b", "o"])[ROWS_COLUMN].tolist()
    [2, 1]
    """
    frame = batch.to_pandas() if hasattr(batch, "to_pandas") and not isinstance(batch, pd.DataFrame) else batch
    keys = list(keys)
    columns = keys + ([weight] if weight is not None else [])
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ComparisonDataError(f"missing column(s) {missing}: the batch has columns {list(frame.columns)[:20]}.")
    part = frame[keys].copy()
    part[ROWS_COLUMN] = np.int64(1)
    if weight is not None:
        ok = _valid_weight(frame[weight])
        values = pd.to_numeric(pd.Series(np.asarray(frame[weight], dtype=object)), errors="coerce")
        part[WEIGHT_COLUMN] = np.where(ok, values.to_numpy(dtype=np.float64, na_value=np.nan), 0.0)
        part[BAD_WEIGHT_COLUMN] = (~ok).astype(np.int64)
    return merge_partial_counts([part], keys)


def merge_partial_counts(parts: Sequence[pd.DataFrame], keys: Sequence[str]) -> pd.DataFrame:
    """Add partial count tables (from :func:`partial_counts` or an engine's GROUP BY) together.

    Examples
    --------
    >>> a = partial_counts(pd.DataFrame({"l": ["x"], "r": ["y"], "o": [1]}), ["l", "r", "o"])
    >>> merge_partial_counts([a, a], ["l", "r", "o"])[ROWS_COLUMN].tolist()
    [2]
    """
    keys = list(keys)
    frames = [p for p in parts if len(p)]
    if not frames:
        return parts[0].iloc[:0].reset_index(drop=True) if parts else pd.DataFrame(columns=keys + [ROWS_COLUMN])
    joined = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    sums = [c for c in (ROWS_COLUMN, WEIGHT_COLUMN, BAD_WEIGHT_COLUMN) if c in joined.columns]
    grouped = joined.groupby(keys, dropna=False, sort=False, observed=True)[sums].sum().reset_index()
    return grouped


def pair_counts_from_partial(partial: pd.DataFrame, *, left: str | None = None, right: str | None = None,
                             outcome: str | None = None, winner: str | None = None, loser: str | None = None,
                             outcome_map: Mapping[Any, Any] | str | None = None, items: Sequence[Any] | None = None,
                             drop_self_comparisons: bool = False, both_bad: str = "tie") -> PairCounts:
    """Validate a (merged) partial table into :class:`~bradley.data.PairCounts`.

    The groups go through :func:`bradley.read_comparisons` with their row
    counts (or summed weights) as frequency weights: same checks, same
    messages, with rows naming groups of the partial (``error.rows``).

    Examples
    --------
    >>> batch = pd.DataFrame({"model_a": ["x", "y"], "model_b": ["y", "x"], "winner": ["model_a", "tie"]})
    >>> p = pair_counts_from_partial(partial_counts(batch, ["model_a", "model_b", "winner"]))
    >>> p.items.tolist(), p.wins_first.tolist(), p.ties.tolist()
    (['x', 'y'], [1.0], [1.0])
    """
    from bradley.io import read_comparisons

    bad = partial[BAD_WEIGHT_COLUMN].to_numpy() > 0 if BAD_WEIGHT_COLUMN in partial.columns else None
    if bad is not None and bad.any():
        rows = np.flatnonzero(bad)
        raise ComparisonDataError(
            f"weights must be finite numbers, 0 or between 1e-150 and 1e150; {int(partial[BAD_WEIGHT_COLUMN].sum())} "
            f"rows are not (groups {rows[:10].tolist()}).", [int(r) for r in rows[:10]])
    if (bad is None and WEIGHT_COLUMN not in partial.columns and None not in (left, right, outcome)
            and winner is None and loser is None):
        lean = _lean_pair_counts(partial, str(left), str(right), str(outcome), outcome_map=outcome_map,
                                 items=items, drop_self_comparisons=drop_self_comparisons, both_bad=both_bad)
        if lean is not None:
            return lean
    frame = partial.drop(columns=[c for c in (ROWS_COLUMN, WEIGHT_COLUMN, BAD_WEIGHT_COLUMN) if c in partial.columns])
    frame = frame.reset_index(drop=True)
    source = WEIGHT_COLUMN if WEIGHT_COLUMN in partial.columns else ROWS_COLUMN
    weights = partial[source].to_numpy(dtype=np.float64)
    frame[WEIGHT_COLUMN] = weights
    keep = weights > 0
    if not keep.all():  # groups whose weights are all 0 count nothing but their items stay
        frame.loc[~keep, WEIGHT_COLUMN] = 0.0
    comparisons = read_comparisons(frame, left=left, right=right, outcome=outcome, winner=winner, loser=loser,
                                   weight=WEIGHT_COLUMN, outcome_map=outcome_map, items=items,
                                   drop_self_comparisons=drop_self_comparisons, both_bad=both_bad)
    w = np.asarray(comparisons.weight, dtype=np.float64)
    hard = comparisons.outcome
    if (source == ROWS_COLUMN and w.sum() <= 4 * len(w)
            and bool(np.all((hard == 1.0) | (hard == 0.0) | (hard == 0.5)))):
        # about one row per group (pairs ~ rows): back to rows, counted by the integer kernel (one int32 sort)
        games = w.astype(np.int64)
        return _aggregate(np.repeat(comparisons.left, games), np.repeat(comparisons.right, games),
                          np.repeat(hard, games), None, comparisons.items)
    return _weighted_pair_counts(comparisons.left, comparisons.right, comparisons.outcome, w, comparisons.items)


def _distinct(column: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Codes of a key column and its distinct values (dtype kept); code -1 = a missing value."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    return np.asarray(codes), pd.Series(uniques)


def _lean_pair_counts(partial: pd.DataFrame, left: str, right: str, outcome: str, *,
                      outcome_map: Mapping[Any, Any] | str | None, items: Sequence[Any] | None,
                      drop_self_comparisons: bool, both_bad: str) -> PairCounts | None:
    """Pair counts of an unweighted partial, validating each distinct label once (None: use the full path).

    Each distinct item label and outcome value goes once through
    :func:`bradley.read_comparisons` (a *probe* table of a few thousand rows,
    every label met as left and as right); the groups are then mapped to item
    codes and outcomes by array lookups and counted by the integer kernel, with
    no per-group table. Whenever the probe raises, warns, drops a row, or the
    data hold something the probe cannot vouch for (missing values,
    self-comparisons, outcomes that depend on which side an item is on), this
    returns None and the caller validates the groups row by row, which gives
    the in-memory path's exact errors and warnings.
    """
    if not {left, right, outcome} <= set(partial.columns) or len({left, right, outcome}) < 3:
        return None
    lc, lu = _distinct(partial[left])
    rc, ru = _distinct(partial[right])
    oc, ou = _distinct(partial[outcome])
    if (lc < 0).any() or (rc < 0).any() or (oc < 0).any():
        return None
    probed = _probe_labels(lu, ru, ou, left, right, outcome, outcome_map=outcome_map, items=items,
                           drop_self_comparisons=drop_self_comparisons, both_bad=both_bad)
    if probed is None:
        return None
    left_item, right_item, outcome_of, item_labels = probed
    li = left_item[lc]
    ri = right_item[rc]
    hard = outcome_of[oc]
    if (li == ri).any():
        return None
    games = partial[ROWS_COLUMN].to_numpy()
    if len(games) and games.min() <= 0:
        return None
    return _count_groups(li, ri, hard, games.astype(np.float64), item_labels)


def _probe_labels(lu: pd.Series, ru: pd.Series, ou: pd.Series, left: str, right: str, outcome: str, *,
                  outcome_map: Mapping[Any, Any] | str | None, items: Sequence[Any] | None,
                  drop_self_comparisons: bool, both_bad: str
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Validate distinct left/right labels and outcome values once through ``read_comparisons`` (a probe).

    Returns the item code of each left label, of each right label, the outcome
    of each outcome value and the items; None when the probe raises, warns,
    drops a row or the labels do not map one to one (the caller then takes
    the row-by-row path, which gives the exact errors and warnings).
    """
    import warnings

    from bradley.io import read_comparisons

    def plain(values: pd.Series) -> pd.Series:
        return values.astype(object) if isinstance(values.dtype, pd.CategoricalDtype) else values

    both = pd.concat([plain(lu), plain(ru)], ignore_index=True)
    bc, union = _distinct(both)
    u, n_out = len(union), len(ou)
    if u < 2 or n_out == 0:
        return None
    size = max(u, n_out)
    step = np.arange(size)
    ahead = (step + 1) % u
    probe = pd.DataFrame({
        left: pd.concat([union.iloc[step % u], union.iloc[ahead]], ignore_index=True),
        right: pd.concat([union.iloc[ahead], union.iloc[step % u]], ignore_index=True),
        outcome: pd.concat([ou.iloc[step % n_out], ou.iloc[step % n_out]], ignore_index=True),
    })
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            checked = read_comparisons(probe, left=left, right=right, outcome=outcome, outcome_map=outcome_map,
                                       items=items, drop_self_comparisons=drop_self_comparisons,
                                       both_bad=both_bad)
    except (ComparisonDataError, ValueError, TypeError):
        return None
    if caught or len(checked) != 2 * size or checked.weight is not None:
        return None
    code = np.asarray(checked.left, dtype=np.int64)
    other = np.asarray(checked.right, dtype=np.int64)
    result = np.asarray(checked.outcome, dtype=np.float64)
    item_of = code[:u]
    if not (np.array_equal(other[:size], item_of[ahead]) and np.array_equal(code[size:], item_of[ahead])
            and np.array_equal(other[size:], code[:size]) and np.array_equal(result[:size], result[size:])):
        return None  # labels or outcomes that do not map one to one
    outcome_of = result[:n_out]
    return item_of[bc[:len(lu)]], item_of[bc[len(lu):]], outcome_of, np.asarray(checked.items)


def _count_groups(left: np.ndarray, right: np.ndarray, outcome: np.ndarray, w: np.ndarray,
                  items: np.ndarray) -> PairCounts:
    """Pair counts of validated groups (item codes, outcome, number of rows or summed weight)."""
    if not bool(np.all((outcome == 1.0) | (outcome == 0.0) | (outcome == 0.5))):
        return _weighted_pair_counts(left, right, outcome, w, items)
    # One int64 code per group: (pair, class) with class 0 = first won, 1 = second won, 2 = tie,
    # sorted in place; counts are run lengths (one row per group) or sums of the group sizes.
    n = len(items)
    low = np.minimum(left, right).astype(np.int64)
    code = low * n
    code += np.maximum(left, right)
    del low
    code *= 3
    second_won = (outcome == 1.0) == (left > right)
    code += np.where(outcome == 0.5, 2, second_won.astype(np.int64))
    del second_won
    if bool(np.all(w == 1.0)):
        code.sort()
        return _count_sorted_codes(code, items)
    cells, inverse = np.unique(code, return_inverse=True)
    cell_counts = np.bincount(inverse.ravel(), w, len(cells))
    del code
    return _cells_to_pair_counts([cells], cell_counts, items)


def _count_sorted_codes_raw(code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct cells and their counts of ``pair * 3 + class`` codes (sorted here in place)."""
    code.sort()
    new = np.empty(len(code), dtype=bool)
    new[:1] = True
    np.not_equal(code[1:], code[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    del new
    return code[starts], np.diff(np.append(starts, len(code))).astype(np.float64)


def _count_sorted_codes(code: np.ndarray, items: np.ndarray) -> PairCounts:
    """Pair counts of one game per entry of sorted ``pair * 3 + class`` codes (run lengths)."""
    new = np.empty(len(code), dtype=bool)
    new[:1] = True
    np.not_equal(code[1:], code[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    del new
    cells = code[starts]
    cell_counts = np.diff(np.append(starts, len(code))).astype(np.float64)
    del starts
    return _cells_to_pair_counts([cells], cell_counts, items)


def _cells_to_pair_counts(cell_store: list[np.ndarray], cell_counts: np.ndarray, items: np.ndarray) -> PairCounts:
    """PairCounts from distinct sorted ``pair * 3 + class`` codes and their counts.

    The codes come in a one-element list that is emptied, so that their
    memory is freed (they are overwritten in place) once the pairs are known.
    """
    n = len(items)
    pair = cell_store.pop()
    kind = (pair % 3).astype(np.int8)
    pair //= 3  # the pair code of each cell, in place
    first_cell = np.empty(len(pair), dtype=bool)
    first_cell[:1] = True
    np.not_equal(pair[1:], pair[:-1], out=first_cell[1:])
    pairs = pair[first_cell]
    del pair
    index = np.cumsum(first_cell, dtype=np.int32 if len(pairs) < 2**31 else np.int64)
    index -= 1
    del first_cell
    k = len(pairs)
    wins = []
    for c in range(3):
        chosen = kind == c
        wins.append(np.bincount(index[chosen], cell_counts[chosen], k))
    del index, kind, chosen
    second = pairs % n
    pairs //= n  # now the first item, in place
    return PairCounts(pairs, second, wins[0], wins[1], wins[2], items)


def _weighted_pair_counts(left: np.ndarray, right: np.ndarray, outcome: np.ndarray, weight: np.ndarray,
                          items: np.ndarray) -> PairCounts:
    """``Comparisons.pair_counts()`` for weighted group rows, by hashing the pair keys (no argsort of rows).

    Same formulas as :func:`bradley.data._aggregate` (a soft outcome ``p`` adds
    ``w p`` and ``w (1 - p)``; ``0.5`` is a tie), summed in row order.
    """
    n = len(items)
    swapped = left > right
    key = np.minimum(left, right) * n + np.maximum(left, right)
    tie = outcome == 0.5
    p_first = np.where(swapped, 1.0 - outcome, outcome)
    w_decisive = np.where(tie, 0.0, weight)
    win_first = w_decisive * p_first
    codes, uniques = pd.factorize(key, sort=True)
    k = len(uniques)
    wf = np.bincount(codes, win_first, k)
    ws = np.bincount(codes, w_decisive - win_first, k)
    wt = np.bincount(codes, np.where(tie, weight, 0.0), k)
    uniques = np.asarray(uniques, dtype=np.int64)
    return PairCounts(uniques // n, uniques % n, wf, ws, wt, items)


# --------------------------------------------------------------------------- where= -> SQL

def _sql_name(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _sql_constant(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not np.isfinite(value):
            return f"'{value}'::DOUBLE"
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise ComparisonDataError(f"cannot use the constant {value!r} in where=.")


def where_to_sql(where: str, columns: Sequence[str]) -> str:
    """Translate the safe ``where=`` syntax of :func:`bradley.io.select_rows` to a SQL condition.

    The result keeps pandas' semantics on missing values: a comparison with a
    missing value is false (``!=`` and ``not in`` are true), so ``not`` and
    the filter agree with the in-memory path.

    Examples
    --------
    >>> where_to_sql("category == 'math' and turns > 1", ["category", "turns"])
    '((coalesce(("category" = \\'math\\'), FALSE)) AND (coalesce(("turns" > 1), FALSE)))'
    """
    from bradley.io import parse_where

    tree, names = parse_where(where)
    have = [str(c) for c in columns]

    def fail(detail: str) -> ComparisonDataError:
        return ComparisonDataError(f"where={where!r}: {detail}.")

    compare = {ast.Eq: "=", ast.NotEq: "<>", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
    arithmetic = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Mod: "%", ast.FloorDiv: "//"}

    def constant(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
            number: Any = node.operand.value
            return -number
        raise fail("lists may hold constants only")

    def boolean(node: ast.AST) -> str:
        if isinstance(node, ast.BoolOp):
            op = " AND " if isinstance(node.op, ast.And) else " OR "
            return "(" + op.join(boolean(v) for v in node.values) + ")"
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.Invert)):
            return f"(NOT {boolean(node.operand)})"
        if isinstance(node, ast.Compare):
            parts, left = [], node.left
            for cmp, comparator in zip(node.ops, node.comparators, strict=True):
                if isinstance(cmp, (ast.In, ast.NotIn)):
                    if not isinstance(comparator, (ast.List, ast.Tuple, ast.Set)):
                        raise fail("'in' needs a list of values, e.g. x in ['a', 'b']")
                    values = [constant(e) for e in comparator.elts]
                    listed = ", ".join(_sql_constant(v) for v in values if v is not None) or "NULL"
                    test = f"coalesce(({value(left)} IN ({listed})), FALSE)"
                    if None in values:
                        test = f"({test} OR {value(left)} IS NULL)"
                    parts.append(f"(NOT {test})" if isinstance(cmp, ast.NotIn) else test)
                elif type(cmp) in compare:
                    missing_result = "TRUE" if isinstance(cmp, ast.NotEq) else "FALSE"
                    sql_op = compare[type(cmp)]
                    parts.append(f"coalesce(({value(left)} {sql_op} {value(comparator)}), {missing_result})")
                else:
                    raise fail(f"the operator {type(cmp).__name__} is not supported")
                left = comparator
            return "(" + " AND ".join(parts) + ")"
        if isinstance(node, ast.Call):
            return call(node)
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            return "TRUE" if node.value else "FALSE"
        if isinstance(node, ast.Name):
            return f"coalesce({value(node)}, FALSE)"
        raise fail("the condition (or a part joined by and / or / not) is not true/false for each row")

    def call(node: ast.Call) -> str:
        if isinstance(node.func, ast.Attribute) and not node.keywords:
            method, owner = node.func.attr, node.func.value
            if method in ("isna", "isnull") and not node.args:
                inner = value(owner)
                return f"({inner} IS NULL OR coalesce(isnan(TRY_CAST({inner} AS DOUBLE)), FALSE))"
            if method in ("notna", "notnull") and not node.args:
                inner = value(owner)
                return f"NOT ({inner} IS NULL OR coalesce(isnan(TRY_CAST({inner} AS DOUBLE)), FALSE))"
            if (method in ("contains", "startswith", "endswith") and isinstance(owner, ast.Attribute)
                    and owner.attr == "str" and len(node.args) == 1 and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)):
                column, arg = f"CAST({value(owner.value)} AS VARCHAR)", _sql_constant(node.args[0].value)
                function = {"contains": "regexp_matches", "startswith": "starts_with", "endswith": "ends_with"}[method]
                return f"coalesce({function}({column}, {arg}), FALSE)"
        raise fail("the only calls allowed are column.isna(), column.notna() and "
                   "column.str.contains / startswith / endswith('text')")

    def value(node: ast.AST) -> str:
        if isinstance(node, ast.Name):
            name = names.get(node.id, node.id)
            if name not in have:
                raise fail(f"no column {name!r}; the data have columns {have[:20]}")
            return _sql_name(name)
        if isinstance(node, ast.Constant):
            return _sql_constant(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return f"(-{value(node.operand)})"
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd):
            return value(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in arithmetic:
            op = arithmetic[type(node.op)]
            if op == "/":
                return f"(CAST({value(node.left)} AS DOUBLE) / {value(node.right)})"
            return f"({value(node.left)} {op} {value(node.right)})"
        if isinstance(node, (ast.BoolOp, ast.Compare, ast.Call)) or (
                isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.Invert))):
            return boolean(node)
        raise fail(f"{type(node).__name__} is not supported")

    return boolean(tree.body)


# --------------------------------------------------------------------------- sources

def _file_format(path: str, fmt: str | None) -> str:
    if fmt is not None:
        return {"ndjson": "jsonl", "json": "jsonl", "pq": "parquet"}.get(fmt, fmt)
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] in (".gz", ".zst"):
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in _FORMAT_SUFFIXES:
        return _FORMAT_SUFFIXES[suffixes[-1]]
    raise ComparisonDataError(f"cannot tell the format of {path!r} from its name; use .parquet, .csv, .tsv, "
                              ".jsonl (optionally .gz) or pass format=...")


def _list_files(source: str | os.PathLike[str], fmt: str | None) -> tuple[list[str], str, bool]:
    """Files of a path, glob or directory (recursively, Hive partitions too), their format, and hive layout."""
    text = os.fspath(source)
    if os.path.isdir(text):
        files = sorted(str(p) for p in Path(text).rglob("*") if p.is_file()
                       and not any(part.startswith((".", "_")) for part in p.relative_to(text).parts)
                       and (fmt is not None or _known_suffix(str(p))))
        root = text
    elif _GLOB_CHARS.search(text):
        files = sorted(f for f in globlib.glob(text, recursive=True) if os.path.isfile(f))
        root = text[:_GLOB_CHARS.search(text).start()]  # type: ignore[union-attr]
    elif os.path.isfile(text):
        files, root = [text], os.path.dirname(text)
    else:
        raise ComparisonDataError(f"no such file or directory: {text!r}.")
    if not files:
        raise ComparisonDataError(f"{text!r} matches no data files (.parquet, .csv, .tsv, .jsonl).")
    formats = {_file_format(f, fmt) for f in files}
    if len(formats) > 1:
        raise ComparisonDataError(f"{text!r} mixes file formats {sorted(formats)}; point it at one format "
                                  "(e.g. a glob such as 'votes/*.parquet').")
    hive = any("=" in part for f in files for part in Path(os.path.relpath(f, root or ".")).parts[:-1])
    return files, formats.pop(), hive


def _known_suffix(path: str) -> bool:
    try:
        _file_format(path, None)
    except ComparisonDataError:
        return False
    return True


def _scan_sql(files: list[str], fmt: str, hive: bool, extra: str = "") -> str:
    listed = "[" + ", ".join(_sql_constant(f) for f in files) + "]"
    flag = str(hive).lower()
    if fmt == "parquet":
        return f"read_parquet({listed}, union_by_name=true, hive_partitioning={str(hive).lower()}{extra})"
    if fmt in ("csv", "tsv"):
        delim = ", delim='\\t'" if fmt == "tsv" else ""
        return f"read_csv({listed}, header=true, union_by_name=true, hive_partitioning={flag}{delim}{extra})"
    return f"read_json({listed}, format='newline_delimited', union_by_name=true, hive_partitioning={flag}{extra})"


class _Source:
    """A DuckDB view of the source, and how to find raw rows again for error messages."""

    def __init__(self, source: Any, fmt: str | None, threads: int | None, memory_limit: str | None):
        import duckdb

        self.files: list[str] = []
        self.format: str | None = None
        self.hive = False
        self.frame: Any = None
        self.relation: Any = None
        if isinstance(source, duckdb.DuckDBPyRelation):
            self.relation = source
            self.con = None
            self.kind = "relation"
            self.columns = list(source.columns)
            return
        self.con = duckdb.connect()
        if threads is not None:
            self.con.execute(f"SET threads = {int(threads)}")
        if memory_limit is not None:
            self.con.execute(f"SET memory_limit = {_sql_constant(memory_limit)}")
        self.con.execute("SET preserve_insertion_order = false")
        if isinstance(source, (str, os.PathLike)):
            self.kind = "files"
            self.files, self.format, self.hive = _list_files(source, fmt)
            self.from_sql = _scan_sql(self.files, self.format, self.hive)
        else:
            mod = type(source).__module__
            if isinstance(source, pd.DataFrame) or mod.startswith(("pyarrow", "polars")):
                self.frame = source
                table = source.to_arrow() if mod.startswith("polars") else source
                self.con.register("_bradley_source", table)
                self.kind = "frame"
                self.from_sql = "_bradley_source"
            else:
                raise ComparisonDataError(
                    f"cannot aggregate a {type(source).__name__}: pass a path, glob or directory, a pandas, polars "
                    "or pyarrow table, or a DuckDB relation (Dask and Spark frames: bradley.distributed).")
        self.columns = [str(r[0]) for r in self.con.execute(f"DESCRIBE SELECT * FROM {self.from_sql}").fetchall()]

    def query(self, select: str) -> pd.DataFrame:
        if self.relation is not None:
            return self.relation.query("_bradley_source", select.replace("{src}", "_bradley_source")).df()
        assert self.con is not None
        return self.con.execute(select.replace("{src}", self.from_sql)).df()

    def close(self) -> None:
        if self.con is not None:
            self.con.close()


def _window_where(where: str | None, time: str | None, since: Any, until: Any) -> str | None:
    """``where`` plus the time window, in the select_rows syntax (so both paths read one condition)."""
    parts = [f"({where})"] if where else []
    for bound, op in ((since, ">="), (until, "<")):
        if bound is None:
            continue
        if time is None:
            raise ComparisonDataError("since=/until= need a time column (time=..., or a column named 'time').")
        literal = repr(bound) if isinstance(bound, (int, float)) else repr(str(pd.Timestamp(bound)))
        parts.append(f"`{time}` {op} {literal}")
    return " and ".join(parts) if parts else None


def aggregate(
    source: Any,
    *,
    left: str | None = None,
    right: str | None = None,
    outcome: str | None = None,
    winner: str | None = None,
    loser: str | None = None,
    weight: str | None = None,
    where: str | None = None,
    time: str | None = None,
    since: Any = None,
    until: Any = None,
    outcome_map: Mapping[Any, Any] | str | None = None,
    items: Sequence[Any] | None = None,
    drop_self_comparisons: bool = False,
    both_bad: str = "tie",
    format: str | None = None,
    engine: str = "auto",
    threads: int | None = None,
    memory_limit: str | None = None,
) -> PairCounts:
    """Reduce comparisons that may not fit in memory to :class:`~bradley.data.PairCounts`.

    The source is scanned by DuckDB in streaming batches (all cores), reading
    only the needed columns and applying ``where`` / the time window inside the
    scan; rows are grouped by their distinct ``(left, right, outcome)`` values,
    and the groups are validated exactly as :func:`bradley.read_comparisons`
    validates rows. The result equals ``read_comparisons(...).pair_counts()``.

    Parameters
    ----------
    source : path, glob, directory, DataFrame or DuckDB relation
        A Parquet / CSV / TSV / JSONL file (``.gz`` allowed), a glob
        (``"votes/*.parquet"``, ``"logs/**/*.parquet"``), a directory (read
        recursively; Hive partitions ``day=2024-06-01/`` become columns usable
        in ``where``), a pandas / polars / pyarrow table, or a
        ``duckdb.DuckDBPyRelation``.
    left, right, outcome, winner, loser, weight, outcome_map, items, drop_self_comparisons, both_bad
        As in :func:`bradley.read_comparisons` (arena columns ``model_a,
        model_b, winner`` and a ``weight`` column are found by name).
    where : str, optional
        Row filter in the safe syntax of :func:`bradley.io.select_rows`,
        translated to SQL and pushed into the scan.
    time, since, until : optional
        Keep rows with ``since <= time < until`` (``time`` defaults to a
        column named ``time``).
    format : str, optional
        ``parquet``, ``csv``, ``tsv`` or ``jsonl`` when file names do not say.
    engine : {"auto", "arrow", "duckdb"}
        ``"arrow"`` scans Parquet with ``pyarrow.dataset`` in batches, coding
        labels through the files' dictionaries (fastest on Parquet, see
        ``docs/scaling.md``); ``"duckdb"`` runs one SQL ``GROUP BY`` (any
        format, spills to disk). ``"auto"``: arrow for Parquet files, DuckDB
        otherwise.
    threads, memory_limit : optional
        DuckDB settings (default: all cores, 80% of RAM; DuckDB spills to disk
        beyond ``memory_limit``).

    Returns
    -------
    PairCounts

    Notes
    -----
    Errors name the offending rows as the in-memory path does: file lines for
    CSV/JSONL (the file holding them is re-read to say so), 0-based data rows
    for Parquet (``file_row_number``), 0-based rows for tables. Warnings about
    dropped rows (``outcome_map`` ``'drop'``, ``both_bad='drop'``,
    ``drop_self_comparisons``) count distinct groups, not rows.

    Examples
    --------
    >>> import pandas as pd
    >>> votes = pd.DataFrame({"model_a": ["x", "y", "x"], "model_b": ["y", "x", "z"],
    ...                       "winner": ["model_a", "tie", "model_b"], "lang": ["en", "en", "de"]})
    >>> pairs = aggregate(votes, where="lang == 'en'")
    >>> pairs.items.tolist(), pairs.wins_first.tolist(), pairs.ties.tolist()
    (['x', 'y'], [1.0], [1.0])
    """
    from bradley import distributed
    from bradley.io import _resolve_columns

    if distributed.is_dask_frame(source) or distributed.is_spark_frame(source):
        # Reduced on the cluster; only the pair counts come back.
        if where is not None or since is not None or until is not None or time is not None:
            raise ValueError(
                "filter a Dask or Spark frame with the engine first (df[df.lang == 'en'], df.filter(...)); "
                "where=, time=, since= and until= apply to files and in-process tables."
            )
        reduce = distributed.aggregate_dask if distributed.is_dask_frame(source) else distributed.aggregate_spark
        return reduce(source, left=left, right=right, outcome=outcome, winner=winner, loser=loser, weight=weight,
                      items=items, outcome_map=outcome_map, both_bad=both_bad,
                      drop_self_comparisons=drop_self_comparisons)

    src = _Source(source, format, threads, memory_limit)
    try:
        columns = src.columns
        roles = _resolve_columns(columns, left, right, outcome, winner, loser, need_outcome=True)
        keys = [str(roles[r]) for r in (("winner", "loser") if roles["winner"] is not None
                                       else ("left", "right", "outcome"))]
        if weight is not None and weight not in columns:
            raise ComparisonDataError(f"missing weight column {weight!r}: the data have columns {columns[:20]}.")
        weight_name = weight if weight is not None else ("weight" if "weight" in columns else None)
        if time is None and (since is not None or until is not None) and "time" in columns:
            time = "time"
        condition = _window_where(where, time, since, until)
        sql_where = f" WHERE {where_to_sql(condition, columns)}" if condition else ""
        select = ", ".join(_sql_name(k) for k in keys)
        aggregates = f"count(*)::BIGINT AS {ROWS_COLUMN}"
        if weight_name is not None:
            wd = f"TRY_CAST({_sql_name(weight_name)} AS DOUBLE)"
            ok = f"coalesce({wd} = 0 OR ({wd} >= 1e-150 AND {wd} <= 1e150), FALSE)"
            aggregates += (f", sum(CASE WHEN {ok} THEN {wd} ELSE 0 END)::DOUBLE AS {WEIGHT_COLUMN}"
                           f", sum(CASE WHEN {ok} THEN 0 ELSE 1 END)::BIGINT AS {BAD_WEIGHT_COLUMN}")
        if engine not in ("auto", "arrow", "duckdb"):
            raise ValueError(f"engine must be 'auto', 'arrow' or 'duckdb', got {engine!r}.")
        use_arrow = src.kind == "files" and src.format == "parquet" and engine in ("auto", "arrow")
        if engine == "arrow" and not use_arrow:
            raise ValueError("engine='arrow' reads Parquet files; use engine='duckdb' for this source.")
        common = dict(left=roles["left"], right=roles["right"], outcome=roles["outcome"], winner=roles["winner"],
                      loser=roles["loser"], outcome_map=outcome_map, items=items,
                      drop_self_comparisons=drop_self_comparisons, both_bad=both_bad)
        if use_arrow and len(set(keys)) == len(keys) and weight_name not in keys:
            counted = _arrow_pair_counts(src.files, src.hive, keys, condition, columns, {
                "outcome_map": outcome_map, "items": items, "drop_self_comparisons": drop_self_comparisons,
                "both_bad": both_bad}, weight=weight_name)
            if counted is not None:
                return counted
        if use_arrow:
            partial = _arrow_partial(src.files, src.hive, keys, weight_name, condition, columns)
        else:
            partial = src.query(f"SELECT {select}, {aggregates} FROM {{src}}{sql_where} GROUP BY ALL")
        if len(partial) == 0:
            raise ComparisonDataError(f"where={condition!r} matches none of the rows." if condition
                                      else "the data hold no comparisons (zero rows).")
        try:
            return pair_counts_from_partial(partial, **common)  # type: ignore[arg-type]
        except ComparisonDataError as error:
            raise _located(error, src, partial, keys, condition, weight_name, common) from None
    finally:
        src.close()


def _located(error: ComparisonDataError, src: _Source, partial: pd.DataFrame, keys: list[str],
             condition: str | None, weight_name: str | None, common: dict[str, Any]) -> ComparisonDataError:
    """The error of the in-memory path, naming the raw rows (file and row) behind the offending groups."""
    from bradley.io import read_comparisons

    if not error.rows:  # a message about the whole column or data: the same for rows and groups
        return error
    if src.kind == "frame":  # in memory already: the in-memory path says it exactly
        try:
            read_comparisons(src.frame, weight=weight_name, where=condition, **common)
        except ComparisonDataError as exact:
            return exact
        return error
    groups = partial.iloc[[r for r in error.rows if 0 <= r < len(partial)]]
    tests = []
    for _, group in groups.iterrows():
        parts = [f"{_sql_name(k)} IS NOT DISTINCT FROM {_sql_literal(group[k])}" for k in keys]
        tests.append("(" + " AND ".join(parts) + ")")
    match = " OR ".join(tests) or "FALSE"
    cond = f"({where_to_sql(condition, src.columns)}) AND " if condition else ""
    if src.kind == "relation":
        return ComparisonDataError(f"{error} (the rows are groups of distinct {keys} values of the DuckDB "
                                   f"relation: {groups[keys].head(5).to_dict('records')})", error.rows)
    assert src.format is not None
    if src.format != "parquet":  # text files: re-read the file that holds the rows, naming its lines
        found = src.con.execute(  # type: ignore[union-attr]
            f"SELECT DISTINCT filename FROM {_scan_sql(src.files, src.format, src.hive, ', filename=true')} "
            f"WHERE {cond}({match})").fetchall()
        for (name,) in sorted(found):
            try:
                read_comparisons(name, weight=weight_name, where=condition, format=src.format, **common)
            except ComparisonDataError as exact:
                return exact
        return error
    extra = ", filename=true, file_row_number=true"
    raw = src.con.execute(  # type: ignore[union-attr]
        f"SELECT * FROM {_scan_sql(src.files, 'parquet', src.hive, extra)} WHERE {cond}({match}) "
        "ORDER BY filename, file_row_number LIMIT 200").df()
    where_from = raw[["filename", "file_row_number"]].to_numpy()
    small = raw.drop(columns=["filename", "file_row_number"])
    try:
        read_comparisons(small, weight=weight_name, **common)
    except ComparisonDataError as exact:
        shown = [r for r in exact.rows if 0 <= r < len(small)][:10]
        if not shown:
            return exact
        by_file: dict[str, list[int]] = {}
        unique_names = len({os.path.basename(f) for f in src.files}) == len(src.files)
        for r in shown:
            name = str(where_from[r][0])
            by_file.setdefault(os.path.basename(name) if unique_names else name, []).append(int(where_from[r][1]))
        named = "; ".join(f"{'row' if len(rs) == 1 else 'rows'} {', '.join(map(str, rs))} (0-based data rows of "
                          f"{name!r})" for name, rs in by_file.items())
        message = re.sub(r"rows? [\d, ]+(?: \(and \d+ more\))? \(0-based\)", lambda _: named, str(exact), count=1)
        return ComparisonDataError(message, [int(where_from[r][1]) for r in shown])
    return error


def _sql_literal(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return "NULL"
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, pd.Timestamp):
        return f"TIMESTAMP '{value}'"
    return _sql_constant(value)


# --------------------------------------------------------------------------- incremental updates

def merge_pair_counts(*counts: PairCounts) -> PairCounts:
    """Add pair counts together over the union of their items (a daily job adds today's counts).

    Items are the sorted union of the labels, as :func:`bradley.data.encode_items`
    orders them, so merging the counts of two batches equals aggregating both.

    Examples
    --------
    >>> a = PairCounts.from_matrix([[0, 2], [1, 0]], items=["x", "y"])
    >>> b = PairCounts.from_matrix([[0, 1], [0, 0]], items=["y", "z"])
    >>> m = merge_pair_counts(a, b)
    >>> m.items.tolist(), m.wins_first.tolist(), m.wins_second.tolist()
    (['x', 'y', 'z'], [2.0, 1.0], [1.0, 0.0])
    """
    if not counts:
        raise ValueError("merge_pair_counts needs at least one PairCounts.")
    items = _sorted_union(*[c.items for c in counts])
    index = pd.Index(items)
    n = len(items)
    firsts, seconds, wf, ws, wt = [], [], [], [], []
    for c in counts:
        codes = index.get_indexer(np.asarray(c.items, dtype=object)).astype(np.int64)
        a, b = codes[c.first], codes[c.second]
        swap = a > b
        firsts.append(np.where(swap, b, a))
        seconds.append(np.where(swap, a, b))
        wf.append(np.where(swap, c.wins_second, c.wins_first))
        ws.append(np.where(swap, c.wins_first, c.wins_second))
        wt.append(c.ties)
    key = np.concatenate(firsts) * n + np.concatenate(seconds)
    unique, inverse = np.unique(key, return_inverse=True)
    k = len(unique)
    return PairCounts(unique // n, unique % n, np.bincount(inverse, np.concatenate(wf), k),
                      np.bincount(inverse, np.concatenate(ws), k), np.bincount(inverse, np.concatenate(wt), k),
                      np.asarray(items, dtype=object))


def save_pair_counts(pairs: PairCounts, path: str | os.PathLike[str]) -> None:
    """Write pair counts to Parquet (``item1, item2, win1, win2, ties``), readable by :func:`load_pair_counts`.

    Item labels are written as they are (strings or integers); items that
    appear in no pair are lost, as in any count table.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = np.asarray(pairs.items, dtype=object)
    table = pa.table({"item1": list(names[pairs.first]), "item2": list(names[pairs.second]),
                      "win1": pairs.wins_first, "win2": pairs.wins_second, "ties": pairs.ties})
    pq.write_table(table, os.fspath(path))


def load_pair_counts(path: str | os.PathLike[str]) -> PairCounts:
    """Read pair counts saved by :func:`save_pair_counts` (through :func:`bradley.io.read_pair_counts`)."""
    from bradley.io import read_pair_counts

    return read_pair_counts(path, item1="item1", item2="item2", win1="win1", win2="win2", tie="ties")


def warm_start_scores(previous_items: Any, previous_scores: Any, items: Any) -> np.ndarray | None:
    """Starting scores for a refit on ``items`` from an earlier fit, or None where it names none of them.

    The one alignment rule (``BradleyTerry(init=...)`` uses it too): items of
    the earlier fit keep their scores, items it does not name start at the
    mean of the matched scores, names not in ``items`` are ignored, and the
    result is centred (the optimum is centred, with or without a prior).
    Where no item matches, a :class:`~bradley.errors.DataWarning` is issued
    and None returned: the solvers' ``init=None`` is their default start.

    Raises
    ------
    ValueError
        Names given twice, non-finite scores, or lengths that differ.

    Examples
    --------
    >>> warm_start_scores(["a", "b", "old"], [1.0, 3.0, 9.0], ["a", "b", "c"]).tolist()
    [-1.0, 1.0, 0.0]
    """
    import warnings

    from bradley.errors import DataWarning

    names = np.asarray(previous_items, dtype=object).reshape(-1)
    scores = np.asarray(previous_scores, dtype=np.float64).reshape(-1)
    if len(names) != len(scores):
        raise ValueError(f"init: {len(names)} item names for {len(scores)} scores.")
    index = pd.Index(names, dtype=object)
    if index.has_duplicates:
        raise ValueError(f"init names items more than once: {index[index.duplicated()].unique().tolist()[:5]}.")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"init scores must be finite; not for {names[~np.isfinite(scores)][:5].tolist()}.")
    target = pd.Index(np.asarray(items, dtype=object).reshape(-1), dtype=object)
    aligned = pd.Series(scores, index=index).reindex(target).to_numpy(dtype=np.float64, na_value=np.nan)
    named = ~np.isnan(aligned)
    if not named.any():
        warnings.warn(
            f"init names none of the {len(target)} items being fitted (e.g. {target[:3].tolist()}; init has "
            f"{index[:3].tolist()}): starting from the default start. Check the item labels and their types.",
            DataWarning, stacklevel=2)
        return None
    start = np.where(named, aligned, float(aligned[named].mean()))
    return start - start.mean()


# --------------------------------------------------------------------------- uncertainty without rows

def _whole(pairs: PairCounts) -> None:
    counts = np.concatenate([pairs.wins_first, pairs.wins_second, pairs.ties])
    if not np.all(counts == np.round(counts)):
        raise ComparisonDataError("resampling needs whole counts (games); these pair counts are weighted.")


def bootstrap_pair_counts(pairs: PairCounts, rounds: int = 1000, seed: int | None = 0, *,
                          method: str = "multinomial", prior: float | None = None,
                          init: np.ndarray | None = None) -> Any:
    """Bootstrap Bradley-Terry scores by resampling the counts, never the rows.

    Assumption: battles are independent, within a pair too (no annotator or
    prompt clustering is visible in counts). ``method="multinomial"`` redraws
    the same total number of games over the (pair, outcome) cells, exactly the
    row bootstrap of the games; ``"poisson"`` draws each cell's count from
    Poisson(count) independently (the Poisson bootstrap: same limit, and each
    cell can be drawn where it lives, e.g. on a cluster). Ties count as half
    a win each way, as in :class:`~bradley.BradleyTerry`. Replicates whose MLE
    does not exist are refitted with ``inference.FALLBACK_PRIOR`` and counted
    in ``n_fallback``.

    Returns
    -------
    bradley.inference.BootstrapResult

    Examples
    --------
    >>> p = PairCounts.from_matrix([[0, 30, 20], [20, 0, 25], [10, 25, 0]], items=["a", "b", "c"])
    >>> bootstrap_pair_counts(p, rounds=20, seed=1).scores.shape
    (20, 3)
    """
    from bradley.data import mle_existence_problem
    from bradley.inference import FALLBACK_PRIOR, BootstrapResult, _warn_fallbacks
    from bradley.solvers import bt as bt_solvers

    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}.")
    if method not in ("multinomial", "poisson"):
        raise ValueError(f"method must be 'multinomial' or 'poisson', got {method!r}.")
    _whole(pairs)
    cells = np.concatenate([pairs.wins_first, pairs.wins_second, pairs.ties])
    total = int(cells.sum())
    probs = cells / cells.sum()
    k = pairs.n_pairs
    rng = np.random.default_rng(seed)
    start = init
    if start is None:
        start = bt_solvers.newton(pairs, prior_variance=prior if prior is not None else (
            FALLBACK_PRIOR if mle_existence_problem(pairs) is not None else None)).scores
    out = np.empty((rounds, pairs.n_items))
    n_fallback = 0
    for b in range(rounds):
        draw = (rng.multinomial(total, probs) if method == "multinomial" else rng.poisson(cells)).astype(np.float64)
        keep = (draw[:k] + draw[k:2 * k] + draw[2 * k:]) > 0
        rep = PairCounts(pairs.first[keep], pairs.second[keep], draw[:k][keep], draw[k:2 * k][keep],
                         draw[2 * k:][keep], pairs.items)
        use = prior
        if use is None and mle_existence_problem(rep) is not None:
            use, n_fallback = FALLBACK_PRIOR, n_fallback + 1
        scores = bt_solvers.newton(rep, init=start, prior_variance=use).scores
        out[b] = scores - scores.mean()
    _warn_fallbacks(n_fallback, rounds)
    return BootstrapResult(out, n_fallback, rounds, seed, f"pair counts ({method})")


def sandwich_pair_counts(pairs: PairCounts, scores: Any) -> np.ndarray:
    """Robust (sandwich) covariance of Bradley-Terry scores from the counts alone (sum-to-zero gauge).

    Each game of a pair ``(i, j)`` with outcome ``y`` (1, 0 or 1/2 for a tie)
    adds ``(y - p_ij)(e_i - e_j)`` to the score; summed over a pair's games the
    squares are ``w_i (1-p)^2 + w_j p^2 + t (1/2-p)^2``, so the "meat" needs
    only the counts. The "bread" is the Fisher information
    ``n_ij p (1-p)``. Games are assumed independent (within a pair too): this
    is the row sandwich (HC0) of the expanded games, computed without them.

    Examples
    --------
    >>> p = PairCounts.from_matrix([[0, 30, 20], [20, 0, 25], [10, 25, 0]], [[0, 5, 0], [5, 0, 0], [0, 0, 0]])
    >>> cov = sandwich_pair_counts(p, [0.2, 0.0, -0.2])
    >>> cov.shape, bool(abs(cov.sum()) < 1e-9)
    ((3, 3), True)
    """
    from scipy.special import expit

    s = np.asarray(scores, dtype=np.float64)
    n = pairs.n_items
    i, j = pairs.first, pairs.second
    p = expit(s[i] - s[j])
    info_w = pairs.totals * p * (1.0 - p)
    meat_w = pairs.wins_first * (1.0 - p) ** 2 + pairs.wins_second * p ** 2 + pairs.ties * (0.5 - p) ** 2

    def laplacian(w: np.ndarray) -> np.ndarray:
        m = np.zeros((n, n))
        np.add.at(m, (i, j), -w)
        np.add.at(m, (j, i), -w)
        m[np.diag_indices(n)] = np.bincount(i, w, n) + np.bincount(j, w, n)
        return m

    ones = np.full((n, n), 1.0 / n)
    bread = np.linalg.pinv(laplacian(info_w) + ones) - ones
    cov = bread @ laplacian(meat_w) @ bread
    centre = np.eye(n) - ones
    return np.asarray(centre @ cov @ centre)


# --------------------------------------------------------------------------- Arrow engine (Parquet)

_DENSE_GROUPS = 1 << 25
#: Label cells (left x right x outcome labels) up to which the scan counts rows densely (a bincount of
#: this size per batch of 1M rows); beyond, one packed word per row.
_SCAN_DENSE_CELLS = 1 << 23


def _row_group_batches(dataset: Any, columns: list[str], batch_size: int) -> Any:
    """Record batches of ``dataset`` read one row group at a time, without read-ahead.

    ``Dataset.to_batches`` reads row groups ahead of a slower consumer
    whatever ``batch_readahead`` says: the Arrow pool peaked at 33 / 206 MiB
    scanning 2M / 32M rows (1M-row groups) with a consumer taking 50 ms a
    batch, against 33 / 33 MiB row group by row group (measured). Partition
    (hive) columns come from each fragment's partition expression.
    """
    for fragment in dataset.get_fragments():
        for group in fragment.split_by_row_group():
            yield from group.to_batches(schema=dataset.schema, columns=columns, batch_size=batch_size,
                                        batch_readahead=0, fragment_readahead=0)



class _LabelCodes:
    """Labels of one key column seen so far, coded consistently across batches (None = a missing value)."""

    def __init__(self) -> None:
        self.index = pd.Index([], dtype=object)
        self.null_code = -1

    def codes(self, column: Any) -> np.ndarray:
        import pyarrow as pa
        import pyarrow.compute as pc

        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        if not isinstance(column, pa.DictionaryArray):
            column = pc.dictionary_encode(column)
        values = np.asarray(column.dictionary.to_pylist(), dtype=object)
        position = self.index.get_indexer(values) if len(self.index) else np.full(len(values), -1)
        new = position < 0
        if new.any():
            self.index = self.index.append(pd.Index(values[new], dtype=object))
            position = self.index.get_indexer(values)
        indices = column.indices
        if indices.null_count:
            if self.null_code < 0:
                self.index = self.index.append(pd.Index([None], dtype=object))
                self.null_code = len(self.index) - 1
            lookup = np.append(position, self.null_code).astype(np.int64)
            raw = np.asarray(indices.fill_null(len(values)).to_numpy(zero_copy_only=False), dtype=np.int64)
            return lookup[raw]
        return position.astype(np.int64)[np.asarray(indices.to_numpy(zero_copy_only=False), dtype=np.int64)]

    @property
    def labels(self) -> np.ndarray:
        return np.asarray(self.index, dtype=object)


def _arrow_partial(files: list[str], hive: bool, keys: list[str], weight: str | None, condition: str | None,
                   columns: list[str], batch_size: int = 1 << 20) -> pd.DataFrame:
    """Scan Parquet with pyarrow.dataset (projection; dictionary-coded labels) into a partial table.

    Labels are coded per batch through their (small) dictionaries; counts
    accumulate in a dense (left, right, outcome) array while the label space
    is small, and as sorted key runs otherwise. Memory: one batch plus the
    groups, whatever the number of rows.
    """
    import pyarrow.dataset as pads

    from bradley.io import select_rows

    fmt = pads.ParquetFileFormat(read_options=pads.ParquetReadOptions(dictionary_columns=keys))
    dataset = pads.dataset(files, format=fmt, partitioning="hive" if hive else None)
    used = _scan_columns(keys, weight, condition, columns)
    coders = [_LabelCodes() for _ in keys]
    dense: np.ndarray | None = np.zeros((0,) * len(keys) + (3 if weight is not None else 1,))
    sparse_parts: list[pd.DataFrame] = []
    raw_keys: list[np.ndarray] = []
    shift = 21
    for batch in _row_group_batches(dataset, used, batch_size):
        if batch.num_rows == 0:
            continue
        keep = None
        if condition:
            keep = select_rows(batch.select(used).to_pandas(), condition)
            if not keep.any():
                continue
        codes = [coder.codes(batch.column(k)) for coder, k in zip(coders, keys, strict=True)]
        if keep is not None:
            codes = [c[keep] for c in codes]
        values = None
        if weight is not None:
            w = batch.column(weight).to_pandas()
            ok = _valid_weight(w)
            numbers = pd.to_numeric(pd.Series(np.asarray(w, dtype=object)), errors="coerce").to_numpy(
                dtype=np.float64, na_value=np.nan)
            values = (np.where(ok, numbers, 0.0), (~ok).astype(np.float64))
            if keep is not None:
                values = (values[0][keep], values[1][keep])
        sizes = [len(c.index) for c in coders]
        if max(sizes) >= 1 << shift:
            raise ComparisonDataError(f"more than {1 << shift} distinct values in a key column; use engine='duckdb'.")
        if dense is not None and int(np.prod(sizes)) <= _DENSE_GROUPS:
            flat = np.ravel_multi_index(tuple(codes), tuple(sizes))
            size = int(np.prod(sizes))
            layers = [np.bincount(flat, minlength=size)]
            if values is not None:
                layers += [np.bincount(flat, values[0], size), np.bincount(flat, values[1], size)]
            if list(dense.shape[:-1]) != sizes:  # new labels: grow the array (rarely, after the first batches)
                grown = np.zeros(tuple(sizes) + (dense.shape[-1],))
                grown[tuple(slice(0, s) for s in dense.shape)] = dense
                dense = grown
            for k, layer in enumerate(layers):
                dense[..., k] += layer.reshape(sizes)
            continue
        if dense is not None:  # the label space outgrew the dense array: move its groups to the sparse parts
            if dense.size:
                sparse_parts.append(_dense_to_frame(dense, shift))
            dense = None
        key = np.zeros(len(codes[0]), dtype=np.int64)
        for c in codes:
            key <<= shift
            key |= c
        if values is None:  # keys only: one sort at the end (pairs ~ rows: no per-batch hashing)
            raw_keys.append(key)
        else:
            part = pd.DataFrame({"key": key, ROWS_COLUMN: 1.0, WEIGHT_COLUMN: values[0], BAD_WEIGHT_COLUMN: values[1]})
            sparse_parts.append(part.groupby("key", sort=False).sum().reset_index())
            if len(sparse_parts) > 8:
                sparse_parts = [pd.concat(sparse_parts, ignore_index=True).groupby("key", sort=False).sum()
                                .reset_index()]
    if raw_keys:
        every = np.concatenate(raw_keys)
        raw_keys.clear()
        every.sort()
        starts = np.flatnonzero(np.concatenate(([True], every[1:] != every[:-1])))
        run = np.diff(np.append(starts, len(every)))
        sparse_parts.append(pd.DataFrame({"key": every[starts], ROWS_COLUMN: run.astype(np.float64)}))
        del every
    if dense is not None and dense.size:
        sparse_parts.append(_dense_to_frame(dense, shift))
    stat_columns = [ROWS_COLUMN] + ([WEIGHT_COLUMN, BAD_WEIGHT_COLUMN] if weight is not None else [])
    if not sparse_parts:
        return pd.DataFrame({**{k: [] for k in keys}, **{c: [] for c in stat_columns}})
    table = (sparse_parts[0] if len(sparse_parts) == 1
             else pd.concat(sparse_parts, ignore_index=True).groupby("key", sort=False).sum().reset_index())
    key = table["key"].to_numpy()
    out: dict[str, np.ndarray] = {}
    for position, (name, coder) in enumerate(zip(keys, coders, strict=True)):
        code = (key >> (shift * (len(keys) - 1 - position))) & ((1 << shift) - 1)
        out[name] = _categorical(code, coder)
    frame = pd.DataFrame(out)
    frame[ROWS_COLUMN] = table[ROWS_COLUMN].to_numpy().astype(np.int64)
    if weight is not None:
        frame[WEIGHT_COLUMN] = table[WEIGHT_COLUMN].to_numpy()
        frame[BAD_WEIGHT_COLUMN] = table[BAD_WEIGHT_COLUMN].to_numpy().astype(np.int64)
    return frame


def _scan_columns(keys: list[str], weight: str | None, condition: str | None, columns: list[str]) -> list[str]:
    """Columns a scan reads: the keys, the weight and the columns the condition names."""
    used = list(keys) + ([weight] if weight is not None else [])
    if condition:
        used += [c for c in columns if c not in used and re.search(r"(?<![\w'\"])" + re.escape(c) + r"(?![\w'\"])",
                                                                  condition)]
    return used


def _scan_weights(column: Any) -> np.ndarray | None:
    """A numeric weight column of one batch as float64, or None unless every value is a usable weight.

    Usable: 0, or within :data:`~bradley.data.WEIGHT_RANGE`, as
    :func:`bradley.read_comparisons` accepts them. Missing, NaN, infinite,
    negative or out-of-range values, and columns that are not integers or
    floats (text to parse, decimals), give None: the caller takes the
    partial-table path, whose errors name the file and row.
    """
    import pyarrow as pa

    from bradley.data import WEIGHT_RANGE

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if column.null_count or not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        return None
    values = np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)
    ok = (values >= WEIGHT_RANGE[0]) & (values <= WEIGHT_RANGE[1])
    ok |= values == 0.0
    return values if bool(ok.all()) else None


def _arrow_pair_counts(files: list[str], hive: bool, keys: list[str], condition: str | None, columns: list[str],
                       common: Mapping[str, Any], batch_size: int = 1 << 20,
                       weight: str | None = None) -> PairCounts | None:
    """``(left, right, outcome)`` or ``(winner, loser)`` Parquet counted from the scan (None: partial path).

    Per batch, the dictionary-coded labels become global label codes (a
    lookup in each batch's small dictionary) packed into one int64 per row;
    no grouped table is built. At the end each distinct label and outcome
    value is validated once (:func:`_probe_labels`), the packed codes are
    rewritten in place as ``pair * 3 + class`` and counted by one in-place
    sort. Memory: 8 bytes a kept row plus one batch. Anything the probe cannot
    vouch for (missing values, self-comparisons, soft outcomes, a probe that
    raises or warns) returns None, and the caller takes the partial-table path
    with its exact errors.

    Weighted (``weight``, a numeric column): each row adds its weight to its
    cell (float64 sums; dense: a weighted bincount, otherwise one packed word
    and one weight a row, summed per cell by hashing at the end). Rows of
    weight 0 count nothing but keep their pair and items, as in
    :func:`bradley.read_comparisons`. A missing, non-finite, negative or
    out-of-range weight returns None (the partial path names its file and row).
    """
    import pyarrow as pa
    import pyarrow.dataset as pads

    from bradley.io import select_rows

    if len(keys) == 2 and common.get("outcome_map") is not None:
        return None  # an outcome map has no outcome column to act on here: the partial path decides
    if len(keys) == 2:  # (winner, loser): every row is a win of the first; a constant outcome code 0 = 1.0
        # the probe's outcome column: a name whose 1 means "left won" (read_comparisons' convention)
        (left, right), outcome = keys, "left_won" if "left_won" not in keys else "left_wins"
    else:
        left, right, outcome = keys
    fmt = pads.ParquetFileFormat(read_options=pads.ParquetReadOptions(dictionary_columns=keys))
    dataset = pads.dataset(files, format=fmt, partitioning="hive" if hive else None)
    used = _scan_columns(keys, weight, condition, columns)
    coders = [_LabelCodes() for _ in range(3)]
    if len(keys) == 2:
        coders[2].index = pd.Index([1.0], dtype=object)
    seen = [np.zeros(0, dtype=bool) for _ in range(3)]
    shift = 21
    chunks: list[np.ndarray | None] = []
    weighted = weight is not None
    count_type = np.float64 if weighted else np.int64
    chunk_weights: list[np.ndarray] = []  # weighted: the weights of the rows of each chunk
    zero_words: list[np.ndarray] = []  # weighted, dense: packed words of rows of weight 0 (pairs to keep)
    # While the label space is small (pairs << rows), rows are counted in a dense (left, right, outcome)
    # array instead of one packed word each; it is spilled to (word, count) cells once it would grow too big.
    dense: np.ndarray | None = np.zeros((0, 0, 0), dtype=count_type)
    dense_cells: list[tuple[np.ndarray, np.ndarray]] = []

    # cell codes of batches counted densely, bincounted together once they reach the dense array's size:
    # a bincount per batch costs O(cells), ~8M for 10k-row batches
    pending: list[np.ndarray] = []
    pending_weights: list[np.ndarray] = []
    pending_rows = 0

    def joined(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def count_pending() -> None:
        nonlocal pending_rows
        if pending and dense is not None:
            cells = dense.reshape(-1)
            if weighted:
                cells += np.bincount(joined(pending), joined(pending_weights), minlength=len(cells))
            else:
                cells += np.bincount(joined(pending), minlength=len(cells))
        pending.clear()
        pending_weights.clear()
        pending_rows = 0

    def spill(counts: np.ndarray) -> None:
        nz = np.nonzero(counts)
        words = nz[0].astype(np.int64) << (2 * shift)
        words |= nz[1].astype(np.int64) << shift
        words |= nz[2].astype(np.int64)
        if len(words):
            dense_cells.append((words, counts[nz].astype(np.float64)))

    for batch in _row_group_batches(dataset, used, batch_size):
        if batch.num_rows == 0:
            continue
        codes = [coder.codes(batch.column(k)) for coder, k in zip(coders, keys, strict=False)]
        if len(keys) == 2:
            codes.append(np.zeros(len(codes[0]), dtype=np.int64))
        w: np.ndarray | None = None
        if condition:
            keep = select_rows(batch.select(used).to_pandas(), condition)
            if not keep.any():
                continue
            codes = [c[keep] for c in codes]
            if weighted:  # only the kept rows' weights are checked, as in read_comparisons(where=...)
                w = _scan_weights(batch.column(weight).filter(pa.array(np.asarray(keep, dtype=bool))))
        elif weighted:
            w = _scan_weights(batch.column(weight))
        if weighted and w is None:
            return None
        if any(coder.null_code >= 0 for coder in coders) or max(len(c.index) for c in coders) >= 1 << shift:
            return None
        if w is not None and dense is not None and not bool(w.all()):  # weight-0 rows: remember their cells
            zero = w == 0.0
            word0 = codes[0][zero] << (2 * shift)
            word0 |= codes[1][zero] << shift
            word0 |= codes[2][zero]
            zero_words.append(np.unique(word0))
        for k, (coder, c) in enumerate(zip(coders, codes, strict=True)):
            if len(seen[k]) < len(coder.index):
                seen[k] = np.concatenate([seen[k], np.zeros(len(coder.index) - len(seen[k]), dtype=bool)])
            seen[k][c] = True
        if dense is not None:
            sizes = tuple(len(coder.index) for coder in coders)
            if sizes != dense.shape:
                count_pending()  # queued codes are in the old shape
                if int(np.prod(sizes)) > _SCAN_DENSE_CELLS:
                    spill(dense)
                    dense = None
                else:
                    grown = np.zeros(sizes, dtype=count_type)
                    grown[:dense.shape[0], :dense.shape[1], :dense.shape[2]] = dense
                    dense = grown
            if dense is not None:
                flat = codes[0] * sizes[1]
                flat += codes[1]
                flat *= sizes[2]
                flat += codes[2]
                pending.append(flat)
                if w is not None:
                    pending_weights.append(w)
                pending_rows += len(flat)
                if pending_rows >= dense.size:  # one bincount per dense-array's worth of rows
                    count_pending()
                continue
        word = codes[0] << (2 * shift)
        word |= codes[1] << shift
        word |= codes[2]
        chunks.append(word)
        if w is not None:
            chunk_weights.append(w)
    if dense is not None:
        count_pending()
        spill(dense)
        dense = None
    if not chunks and not dense_cells and not zero_words:
        return None
    present = [np.flatnonzero(s) for s in seen]
    # the column's own dtype (numbers as numbers: an object 0 could name an item as the winner)
    labels = [pd.Series(coder.labels[p]).infer_objects() for coder, p in zip(coders, present, strict=True)]
    probed = _probe_labels(labels[0], labels[1], labels[2], left, right, outcome, **common)
    if probed is None:
        return None
    left_item, right_item, outcome_of, item_labels = probed
    if not bool(np.all((outcome_of == 1.0) | (outcome_of == 0.0) | (outcome_of == 0.5))):
        return None
    lookups = []
    for coder, p, values in zip(coders, present, (left_item, right_item, outcome_of), strict=True):
        table = np.full(len(coder.index), -1 if values.dtype.kind == "i" else np.nan, dtype=values.dtype)
        table[p] = values
        lookups.append(table)
    n = len(item_labels)
    mask = (1 << shift) - 1

    def cell_codes(packed: np.ndarray, out: np.ndarray) -> bool:
        """``pair * 3 + class`` of packed label words into ``out``; False on a self-comparison."""
        li = lookups[0][packed >> (2 * shift)]
        ri = lookups[1][(packed >> shift) & mask]
        hard = lookups[2][packed & mask]
        if (li == ri).any():
            return False
        np.multiply(np.minimum(li, ri), n, out=out)
        out += np.maximum(li, ri)
        out *= 3
        out += np.where(hard == 0.5, 2, ((hard == 1.0) == (li > ri)).astype(np.int64))
        return True

    if weighted:
        return _weighted_cells(chunks, chunk_weights, dense_cells, zero_words, cell_codes, item_labels)
    dense_cell: np.ndarray | None = None
    dense_count = np.zeros(0)
    for words, counts in dense_cells:  # at most one spill: the dense array never comes back
        cell = np.empty(len(words), dtype=np.int64)
        if not cell_codes(words, cell):
            return None
        # (a, b, a won) and (b, a, b won) are one cell: sort and sum the (few: <= dense size) cells
        order = np.argsort(cell, kind="stable")
        cell, counts = cell[order], counts[order]
        starts = np.flatnonzero(np.concatenate(([True], cell[1:] != cell[:-1])))
        dense_cell, dense_count = cell[starts], np.add.reduceat(counts, starts) if len(cell) else counts
    code = np.empty(sum(len(c) for c in chunks if c is not None), dtype=np.int64)
    if _chunk_cell_codes(chunks, cell_codes, code) is None:
        return None
    del chunks
    if dense_cell is not None:  # cells counted densely: merge with those of the rows (both sorted, distinct)
        if not len(code):
            return _cells_to_pair_counts([dense_cell], dense_count, item_labels)
        row_cell, row_count = _count_sorted_codes_raw(code)
        del code
        at_row = np.searchsorted(row_cell, dense_cell)
        hit = at_row < len(row_cell)
        hit[hit] = row_cell[at_row[hit]] == dense_cell[hit]
        row_count[at_row[hit]] += dense_count[hit]
        miss = ~hit
        if miss.any():  # insertion points are sorted, so the result stays sorted
            row_cell = np.insert(row_cell, at_row[miss], dense_cell[miss])
            row_count = np.insert(row_count, at_row[miss], dense_count[miss])
        return _cells_to_pair_counts([row_cell], row_count, item_labels)
    code.sort()
    new = np.empty(len(code), dtype=bool)
    new[:1] = True
    np.not_equal(code[1:], code[:-1], out=new[1:])
    store = [code[new]]
    np.cumsum(new, out=code)  # the code buffer, reused: 1 + the cell of each row
    del new
    code -= 1
    runs = np.bincount(code, minlength=len(store[0]))
    del code
    cell_counts = runs.astype(np.float64)
    del runs
    return _cells_to_pair_counts(store, cell_counts, item_labels)


def _chunk_cell_codes(chunks: list[np.ndarray | None], cell_codes: Any, code: np.ndarray,
                      chunk_weights: list[np.ndarray] | None = None, weights: np.ndarray | None = None) -> int | None:
    """Cell codes of the stored row chunks into ``code`` (their weights into ``weights``), freeing each chunk.

    Returns the number of rows written, or None on a self-comparison.
    """
    at = 0
    for position, stored in enumerate(chunks):
        if stored is None:
            continue
        if not cell_codes(stored, code[at:at + len(stored)]):
            return None
        if weights is not None and chunk_weights is not None:
            weights[at:at + len(stored)] = chunk_weights[position]
        at += len(stored)
        chunks[position] = None
    return at


def _weighted_cells(chunks: list[np.ndarray | None], chunk_weights: list[np.ndarray],
                    dense_cells: list[tuple[np.ndarray, np.ndarray]], zero_words: list[np.ndarray],
                    cell_codes: Any, item_labels: np.ndarray) -> PairCounts | None:
    """Pair counts of a weighted scan: packed words (rows, dense cells, weight-0 cells) summed per cell.

    Rows and the dense array's cells become ``pair * 3 + class`` codes, and
    their weights are summed per distinct code (hashing, then a weighted
    bincount; no argsort of the rows); cells reached only by rows of weight 0
    are kept with a count of 0. None on a self-comparison or a total weight
    that overflows (the partial path then gives the in-memory path's error).
    """
    parts: list[tuple[np.ndarray, np.ndarray]] = list(dense_cells)
    if zero_words:
        words = np.unique(np.concatenate(zero_words))
        parts.append((words, np.zeros(len(words))))
    total = sum(len(c) for c in chunks if c is not None) + sum(len(wd) for wd, _ in parts)
    code = np.empty(total, dtype=np.int64)
    weights = np.empty(total, dtype=np.float64)
    at = _chunk_cell_codes(chunks, cell_codes, code, chunk_weights, weights)
    if at is None:
        return None
    chunk_weights.clear()
    for words, counts in parts:
        if not cell_codes(words, code[at:at + len(words)]):
            return None
        weights[at:at + len(words)] = counts
        at += len(words)
    inverse, cells = pd.factorize(code, sort=False)
    del code
    sums = np.bincount(inverse, weights, len(cells))
    del inverse, weights
    if not np.isfinite(sums.sum()):
        return None
    order = np.argsort(cells)
    return _cells_to_pair_counts([np.asarray(cells, dtype=np.int64)[order]], sums[order], item_labels)


def _categorical(code: np.ndarray, coder: _LabelCodes) -> Any:
    """Labels as a pandas Categorical over the codes: no per-row Python objects (missing = code -1)."""
    labels = coder.labels
    if coder.null_code >= 0:  # the missing value becomes code -1; later codes shift down by one
        code = np.where(code == coder.null_code, -1, code - (code > coder.null_code))
        labels = np.delete(labels, coder.null_code)
    try:
        return pd.Categorical.from_codes(code, categories=pd.Index(labels, dtype=object))
    except (TypeError, ValueError):  # labels pandas cannot hold as categories (mixed types): plain objects
        return np.concatenate([labels, np.array([None], dtype=object)])[code]


def _dense_to_frame(dense: np.ndarray, shift: int) -> pd.DataFrame:
    index = np.nonzero(dense[..., 0])
    key = np.zeros(len(index[0]), dtype=np.int64)
    for c in index:
        key = (key << shift) | c.astype(np.int64)
    part = pd.DataFrame({"key": key, ROWS_COLUMN: dense[..., 0][index]})
    if dense.shape[-1] == 3:
        part[WEIGHT_COLUMN], part[BAD_WEIGHT_COLUMN] = dense[..., 1][index], dense[..., 2][index]
    return part


#: ``bradley fit`` / ``leaderboard`` aggregate a single Parquet file out of core from this size on.
CLI_PARQUET_BYTES = 256 * 2**20


def aggregate_for_cli(args: Any) -> PairCounts | None:
    """Pair counts for the CLI's DATA argument when it calls for out-of-core reading, else None.

    Out of core: a directory, a glob, or a Parquet file of at least
    :data:`CLI_PARQUET_BYTES`, and no option that needs the rows (covariates,
    order column, clusters/annotators, score columns, count tables, ``.txt``
    reading options). ``args`` is the CLI's parsed namespace (``data``,
    ``left``, ``right``, ``outcome``, ``winner``, ``loser``, ``weight``,
    ``where``, ``outcome_map``, ``both_bad``, ``drop_self_comparisons``,
    ``input_format``; missing attributes count as not given).
    """
    def get(name: str) -> Any:
        return getattr(args, name, None)

    data = str(os.fspath(get("data")))
    many = os.path.isdir(data) or (not os.path.exists(data) and bool(_GLOB_CHARS.search(data)))
    big = (os.path.isfile(data) and _known_suffix(data) and _file_format(data, get("input_format")) == "parquet"
           and os.path.getsize(data) >= CLI_PARQUET_BYTES)
    if not (many or big):
        return None
    row_level = ("covariates", "order_column", "cluster", "annotator", "left_score", "right_score", "counts",
                 "win1", "win2", "tie", "sep", "header", "names")
    needed = [name for name in row_level if get(name)]
    if needed:
        if many:
            raise ComparisonDataError(f"{data!r} is read out of core (pair counts only); the option(s) "
                                      f"{['--' + n.replace('_', '-') for n in needed]} need the rows: point DATA "
                                      "at one file.")
        return None
    return aggregate(data, left=get("left"), right=get("right"), outcome=get("outcome"), winner=get("winner"),
                     loser=get("loser"), weight=get("weight"), where=get("where"), outcome_map=get("outcome_map"),
                     both_bad=get("both_bad") or "tie", drop_self_comparisons=bool(get("drop_self_comparisons")),
                     format=get("input_format"))
