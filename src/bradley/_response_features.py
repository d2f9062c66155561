"""Per-response feature tables shared by the surrogate judge and style control (internal helpers).

A feature table has one row per (prompt, system) and numeric feature
columns. These helpers choose the feature columns, check the table (keys
present, numeric finite values, one row per key) and look up each battle's
response row, comparing keys as strings so that ``1`` in the battles finds
``"1"`` in the table, with :class:`~bradley.errors.ComparisonDataError`
naming the offending rows or columns instead of raw pandas errors.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .errors import ComparisonDataError


def _is_numeric(values: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values))


def feature_columns(table: pd.DataFrame, columns: Sequence[str] | None, keys: Sequence[str],
                    preferred: Sequence[str] = ()) -> list[str]:
    """The feature columns: ``columns`` (checked: present and numeric), else ``preferred`` ones present,
    else every numeric non-key column.

    Examples
    --------
    >>> t = pd.DataFrame({"q": [1], "m": ["a"], "x": [1.0], "note": ["hi"]})
    >>> feature_columns(t, None, ["q", "m"])
    ['x']
    """
    if columns is not None:
        cols = [str(c) for c in columns]
        missing = [c for c in cols if c not in table.columns]
        if missing:
            raise ComparisonDataError(f"feature columns {missing} are not in the feature table "
                                      f"(columns: {list(table.columns)}).")
        text = [c for c in cols if not _is_numeric(table[c])]
        if text:
            raise ComparisonDataError(f"feature columns {text} are not numeric (dtypes "
                                      f"{[str(table[c].dtype) for c in text]}); features must be numbers.")
        if not cols:
            raise ComparisonDataError("no feature columns were given.")
        return cols
    chosen = [c for c in preferred if c in table.columns]
    if not chosen:
        chosen = [c for c in table.columns if c not in keys and _is_numeric(table[c])]
    if not chosen:
        raise ComparisonDataError(f"the feature table has no numeric feature columns besides {list(keys)} "
                                  f"(columns: {list(table.columns)}).")
    text = [c for c in chosen if not _is_numeric(table[c])]
    if text:
        raise ComparisonDataError(f"feature columns {text} are not numeric; features must be numbers.")
    return chosen


def check_feature_table(table: pd.DataFrame, keys: Sequence[str], columns: Sequence[str],
                        finite: bool = True) -> None:
    """Keys present, feature values finite (when ``finite``), at most one row per key (keys as strings)."""
    for key in keys:
        if key not in table.columns:
            raise ComparisonDataError(f"the feature table needs a {key!r} column (one row per "
                                      f"({', '.join(keys)})); it has {list(table.columns)}.")
    if finite:
        values = table[list(columns)].to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values).all(axis=1)
        if bad.any():
            rows = np.flatnonzero(bad)[:10].tolist()
            raise ComparisonDataError(f"the feature table has missing or infinite values in rows {rows}.",
                                      rows=rows)
    dup = pd.DataFrame({k: table[k].astype(str).to_numpy() for k in keys}).duplicated()
    if dup.any():
        rows = np.flatnonzero(dup.to_numpy())[:10].tolist()
        raise ComparisonDataError(f"the feature table has more than one row per ({', '.join(keys)}): rows {rows}.",
                                  rows=rows)


def lookup_rows(table: pd.DataFrame, keys: Sequence[str], battles: pd.DataFrame, battle_keys: Sequence[str],
                side: str) -> np.ndarray:
    """Row position in ``table`` of each battle's response (``battle_keys`` matched to ``keys`` as strings).

    Raises ComparisonDataError naming the battles whose response has no feature row.

    Examples
    --------
    >>> t = pd.DataFrame({"q": ["1", "1"], "m": ["a", "b"]})
    >>> b = pd.DataFrame({"q": [1, 1], "model_a": ["b", "a"]})
    >>> lookup_rows(t, ["q", "m"], b, ["q", "model_a"], "model_a").tolist()
    [1, 0]
    """
    for need in battle_keys:
        if need not in battles.columns:
            raise ComparisonDataError(f"the battles need a {need!r} column; they have {list(battles.columns)}.")
    index = pd.MultiIndex.from_arrays([table[k].astype(str).to_numpy() for k in keys])
    wanted = [battles[k].astype(str).to_numpy() for k in battle_keys]
    idx = np.asarray(index.get_indexer(pd.MultiIndex.from_arrays(wanted)), dtype=np.int64)
    if (idx < 0).any():
        rows = np.flatnonzero(idx < 0)[:10].tolist()
        first = tuple(str(w[rows[0]]) for w in wanted)
        raise ComparisonDataError(
            f"{int((idx < 0).sum())} battles have no feature row for their {side!r} response, e.g. rows {rows} "
            f"(first: {dict(zip(keys, first, strict=True))}); give one feature row per ({', '.join(keys)}) "
            "for every response in the battles.", rows=rows)
    return idx


def check_weight(weight: object, n: int) -> np.ndarray:
    """Battle weights: shape (n,), finite, non-negative, not all zero (None: ones).

    Examples
    --------
    >>> check_weight(None, 2).tolist()
    [1.0, 1.0]
    """
    if weight is None:
        return np.ones(n)
    try:
        w = np.asarray(weight, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ComparisonDataError(f"weight must be numbers ({exc}).") from exc
    if w.shape != (n,):
        raise ComparisonDataError(f"weight must have shape ({n},) (one per battle), got {w.shape}.")
    bad = ~(np.isfinite(w) & (w >= 0))
    if bad.any():
        rows = np.flatnonzero(bad)[:10].tolist()
        raise ComparisonDataError(f"weight must be finite and non-negative: rows {rows}.", rows=rows)
    if n and not w.sum() > 0:
        raise ComparisonDataError("weight is zero for every battle.")
    return w
