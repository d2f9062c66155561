"""Reading comparisons from files and data frames.

One entry point, :func:`read_comparisons`, takes a path (CSV, TSV, JSONL,
Parquet, optionally gzip-compressed) or a pandas / polars / pyarrow table and
returns validated :class:`~bradley.data.Comparisons`.

Column roles are found in this order unless given explicitly:

1. the LLM-arena battle format: ``model_a``, ``model_b``, ``winner`` with
   ``winner`` in ``model_a | model_b | tie | tie (bothbad) | both_bad``;
2. ``left``, ``right`` and ``outcome`` (or ``winner``);
3. ``winner`` and ``loser`` columns (one row per decisive game).

Outcomes may be numbers (1 = left wins, 0 = right wins, 0.5 = tie, or a
probability), labels (see :data:`OUTCOME_LABELS`, case-insensitive), or the
name of the winning item (a "winner-name" column); a row whose value is
neither is an error naming the value and the rows.

Aggregated count tables (one row per pair: ``item1, item2, win1, win2`` and
optionally ``tie``, the shape R's BradleyTerry2 takes) are read by
:func:`read_pair_counts` into :class:`~bradley.data.PairCounts`, and by
:func:`read_comparisons` into one comparison row per counted game, so that
resampling and cross-validation see the individual comparisons. An order
(home / first-position) indicator per row is read by :func:`parse_order`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bradley.data import (
    TIE_KIND_BOTH_BAD,
    TIE_KIND_TIE,
    Comparisons,
    PairCounts,
    describe_rows,
    drop_self_comparisons_from,
    encode_items,
    python_values,
)
from bradley.errors import ComparisonDataError, DataWarning

__all__ = [
    "read_comparisons",
    "read_pair_counts",
    "parse_outcomes",
    "parse_order",
    "OUTCOME_LABELS",
    "ORDER_LABELS",
    "COUNT_TABLE_ITEM_COLUMNS",
    "COUNT_TABLE_WIN_COLUMNS",
    "COUNT_TABLE_TIE_COLUMNS",
    "MAX_EXPANDED_ROWS",
    "is_count_table",
    "read_table",
]

#: Outcome labels understood without options (lower-cased, stripped), with
#: their value and tie kind (0 ordinary, 1 "both bad").
OUTCOME_LABELS: dict[str, tuple[float, int]] = {
    **{k: (1.0, TIE_KIND_TIE) for k in ("left", "model_a", "win", "won", "first", "1", "1.0", "1-0")},
    **{k: (0.0, TIE_KIND_TIE) for k in ("right", "model_b", "loss", "lose", "lost", "second", "0", "0.0", "0-1")},
    **{k: (0.5, TIE_KIND_TIE) for k in ("tie", "draw", "0.5", "=", "1/2-1/2", "½-½", "0.5-0.5")},
    **{k: (0.5, TIE_KIND_BOTH_BAD) for k in ("tie (bothbad)", "both_bad", "bothbad", "both bad", "tie(bothbad)")},
}

_SUFFIX_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "whitespace",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def _file_format(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        return fmt
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".bz2", ".xz", ".zst", ".zip"):
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in _SUFFIX_FORMATS:
        return _SUFFIX_FORMATS[suffixes[-1]]
    raise ComparisonDataError(
        f"cannot tell the format of {str(path)!r} from its name; "
        "use .csv, .tsv, .jsonl, .parquet (optionally .gz), or pass format=..."
    )


def read_table(path: str | os.PathLike[str], fmt: str | None = None, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a comparison file into a DataFrame (strings stay Arrow-backed).

    Parameters
    ----------
    path : str or path-like
    fmt : {"csv", "tsv", "whitespace", "jsonl", "json", "parquet"}, optional
        Default: from the file name.
    columns : sequence of str, optional
        Only these columns (Parquet reads only them from disk).
    """
    p = Path(path)
    if not p.exists():
        raise ComparisonDataError(f"no such file: {str(p)!r}.")
    kind = _file_format(p, fmt)
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(p, columns=list(columns) if columns else None)
            return table.to_pandas(types_mapper=pd.ArrowDtype)
        if kind in ("csv", "tsv"):
            return pd.read_csv(p, sep="," if kind == "csv" else "\t", engine="pyarrow", usecols=columns)
        if kind == "whitespace":
            # Plain "winner loser" match lists (no header), as in Newman's data sets.
            frame = pd.read_csv(p, sep=r"\s+", header=None, engine="python", dtype=str)
            if frame.shape[1] < 2:
                raise ComparisonDataError(f"{str(p)!r}: expected 'winner loser' per line.")
            frame = frame.iloc[:, :2]
            frame.columns = ["winner", "loser"]
            return frame
        if kind == "jsonl":
            return pd.read_json(p, lines=True, dtype=False)
        if kind == "json":
            return pd.read_json(p, dtype=False)
    except ComparisonDataError:
        raise
    except Exception as exc:  # parsing errors from pandas/pyarrow: name the file
        raise ComparisonDataError(f"could not read {str(p)!r} as {kind}: {exc}") from exc
    raise ComparisonDataError(f"unknown format {kind!r}.")


def _to_pandas(frame: Any) -> pd.DataFrame:
    if isinstance(frame, pd.DataFrame):
        return frame
    mod = type(frame).__module__
    if mod.startswith("polars"):
        return frame.to_pandas(use_pyarrow_extension_array=True)
    if mod.startswith("pyarrow"):
        return frame.to_pandas(types_mapper=pd.ArrowDtype)
    raise ComparisonDataError(
        f"expected a path or a pandas/polars/pyarrow table, got {type(frame).__name__}."
    )


def _resolve_columns(
    columns: Sequence[str],
    left: str | None,
    right: str | None,
    outcome: str | None,
    winner: str | None,
    loser: str | None,
) -> dict[str, str | None]:
    cols = set(columns)
    roles: dict[str, str | None] = {"left": left, "right": right, "outcome": outcome, "winner": winner, "loser": loser}
    _check_given_columns(roles, columns)
    explicit_pair = left is not None or right is not None
    if not explicit_pair and winner is None and loser is None:
        if {"model_a", "model_b"} <= cols:
            roles.update(left="model_a", right="model_b")
            if outcome is None and "winner" in cols:
                roles["outcome"] = "winner"
        elif {"left", "right"} <= cols:
            roles.update(left="left", right="right")
            if outcome is None:
                roles["outcome"] = "outcome" if "outcome" in cols else ("winner" if "winner" in cols else None)
        elif {"winner", "loser"} <= cols:
            roles.update(winner="winner", loser="loser")
    if roles["winner"] is not None and roles["loser"] is not None:
        if roles["left"] is not None or roles["outcome"] is not None:
            raise ComparisonDataError("give either winner/loser columns or left/right/outcome, not both.")
    elif roles["winner"] is not None and roles["outcome"] is None:
        roles["outcome"] = roles["winner"]  # winner-name column
        roles["winner"] = None
    needed = ["winner", "loser"] if roles["winner"] is not None else ["left", "right", "outcome"]
    missing = [r for r in needed if roles[r] is None]
    if missing:
        raise ComparisonDataError(
            f"missing column(s) for {missing}: the data have columns {list(columns)[:20]}. "
            "Name them (left=..., right=..., outcome=...; CLI --left/--right/--outcome), "
            "or use the arena format model_a, model_b, winner."
        )
    absent = [roles[r] for r in needed if roles[r] not in cols]
    if absent:
        raise ComparisonDataError(f"missing column(s) {absent}: the data have columns {list(columns)[:20]}.")
    return roles


def _check_given_columns(roles: dict[str, str | None], columns: Sequence[str], prefix: str = "") -> None:
    """A column the caller named that the data lack is the first thing to report, by the name given."""
    have = set(map(str, columns))
    absent = {role: name for role, name in roles.items() if name is not None and str(name) not in have}
    if absent:
        given = ", ".join(f"{role}={name!r}" for role, name in absent.items())
        raise ComparisonDataError(f"{prefix}missing column(s) {list(absent.values())} (given as {given}): "
                                  f"the data have columns {list(columns)[:20]}.")


def read_comparisons(
    source: Any,
    *,
    left: str | None = None,
    right: str | None = None,
    outcome: str | None = None,
    winner: str | None = None,
    loser: str | None = None,
    weight: str | None = None,
    time: str | None = None,
    annotator: str | None = None,
    items: Sequence[Any] | None = None,
    format: str | None = None,
    drop_self_comparisons: bool = False,
    features: Sequence[str] | None = None,
    both_bad: str = "tie",
    order: str | None = None,
    counts: bool | None = None,
    win1: str | None = None,
    win2: str | None = None,
    tie: str | None = None,
) -> Comparisons:
    """Read pairwise comparisons from a file or a table.

    Parameters
    ----------
    source : path or DataFrame
        A CSV / TSV / JSONL / JSON / Parquet file (``.gz`` allowed), a plain
        ``winner loser`` text file (``.txt``), or a pandas, polars or pyarrow table.
    left, right : str, optional
        Columns with the two compared items (for count tables: ``item1``, ``item2``).
    outcome : str, optional
        Column with the outcome: numbers in [0, 1], labels such as
        ``left/right/tie`` or ``model_a/model_b/tie/tie (bothbad)/both_bad``,
        or the name of the winning item.
    winner : str, optional
        A column holding the winner's name. With ``loser`` it describes
        decisive games (one row per game); alone it is a winner-name outcome
        column for ``left``/``right`` (tie labels allowed).
    loser : str, optional
        Column with the loser's name (with ``winner``).
    weight, time, annotator : str, optional
        Optional columns; ``weight``, ``time`` and ``annotator`` are used by
        default when columns of exactly those names exist.
    items : sequence, optional
        Fix the list of items (and their order).
    format : str, optional
        File format when the name does not tell it.
    drop_self_comparisons : bool
        Drop rows that compare an item with itself, warning with their count
        (:class:`~bradley.errors.DataWarning`); by default they are an error.
    features : sequence of str, optional
        Numeric columns of comparison-level covariates (e.g. a length
        difference left - right), for models with covariates.
    both_bad : {"tie", "drop"}
        The arena's ``tie (bothbad)`` / ``both_bad`` votes: ``"tie"`` merges
        them with ordinary ties (their kind stays in ``tie_kind`` = 1);
        ``"drop"`` removes them, warning with the count.
    order : str, optional
        Column saying which side had the order (home / first-position)
        advantage in each row, read by :func:`parse_order`: numbers 1 / 0 / -1
        (left / neutral / right), booleans (True = left, False = right),
        labels (:data:`ORDER_LABELS`), or the name of the home item (one of
        the row's two items; empty = neutral). Used by models fitted with an
        order effect; without it every row counts as "left had it".
    counts : bool, optional
        The source is an aggregated count table (one row per pair with win
        counts each way, as R's BradleyTerry2 takes it). Default: detected
        when ``win1``/``win2`` are given or the columns ``win1, win2`` (or
        ``wins1, wins2``) exist. Each counted game becomes one comparison row
        (left = ``item1``), so that bootstrap resampling and k-fold splits
        resample individual comparisons; non-integer counts cannot be
        expanded and become one weighted row per pair and outcome (with a
        :class:`~bradley.errors.DataWarning`). ``order``, ``time``,
        ``annotator`` and ``features`` columns of a count table apply to
        every game counted in their row.
    win1, win2 : str, optional
        Count-table columns with the wins of ``item1`` and of ``item2``.
    tie : str, optional
        Count-table column with the ties (default: a ``tie`` or ``ties``
        column if there is one).

    Returns
    -------
    Comparisons

    Examples
    --------
    >>> import pandas as pd
    >>> battles = pd.DataFrame({"model_a": ["x", "y"], "model_b": ["y", "z"],
    ...                         "winner": ["model_a", "tie (bothbad)"]})
    >>> c = read_comparisons(battles)
    >>> c.outcome.tolist(), c.tie_kind.tolist()
    ([1.0, 0.5], [0, 1])
    >>> table = pd.DataFrame({"item1": ["x", "y"], "item2": ["y", "x"], "win1": [2, 0], "win2": [1, 1]})
    >>> c = read_comparisons(table)
    >>> c.items[c.left].tolist(), c.outcome.tolist()
    (['x', 'x', 'x', 'y'], [1.0, 1.0, 0.0, 0.0])
    """
    if isinstance(source, (str, os.PathLike)):
        frame = read_table(source, format)
    else:
        frame = _to_pandas(source)
    if len(frame.columns) == 0 or len(frame) == 0:
        raise ComparisonDataError("the data hold no comparisons (zero rows).")
    if both_bad not in ("tie", "drop"):
        raise ValueError(f"both_bad must be 'tie' or 'drop', got {both_bad!r}.")
    columns = [str(c) for c in frame.columns]
    if counts is None:
        counts = is_count_table(columns, win1, win2)
    if counts:
        if outcome is not None or winner is not None or loser is not None or weight is not None:
            raise ComparisonDataError(
                "a count table has win1/win2 (and tie) count columns; outcome=, winner=, loser= and weight= "
                "do not apply to it (the counts are the frequencies)."
            )
        return _read_count_rows(frame, _count_roles(columns, left, right, win1, win2, tie), items=items,
                                time=time, annotator=annotator, features=features, order=order,
                                drop_self_comparisons=drop_self_comparisons)
    if win1 is not None or win2 is not None or tie is not None:
        raise ComparisonDataError("win1=, win2= and tie= name count-table columns; they need counts=True (or None).")
    roles = _resolve_columns(columns, left, right, outcome, winner, loser)

    optional = _optional_columns(frame, time=time, annotator=annotator)
    weights = None
    weight_name = weight if weight is not None else ("weight" if "weight" in frame.columns else None)
    if weight is not None and weight not in frame.columns:
        raise ComparisonDataError(f"missing weight column {weight!r}: the data have columns {list(frame.columns)[:20]}.")
    if weight_name is not None:
        try:
            weights = np.asarray(pd.to_numeric(pd.Series(frame[weight_name].to_numpy()), errors="raise"), dtype=np.float64)
        except (ValueError, TypeError) as exc:
            raise ComparisonDataError(f"weight column is not numeric: {exc}") from exc

    if roles["winner"] is not None:
        left_col, right_col = frame[roles["winner"]], frame[roles["loser"]]
        lc, rc, item_names = encode_items(left_col, right_col, items)
        values, tie_kind = np.ones(len(lc)), None
    else:
        left_col, right_col = frame[roles["left"]], frame[roles["right"]]
        lc, rc, item_names = encode_items(left_col, right_col, items)
        values, tie_kind = parse_outcomes(frame[roles["outcome"]], left_col, right_col, item_names)
    fields = dict(
        left=lc, right=rc, outcome=values, items=item_names, weight=weights,
        time=optional["time"], annotator=optional["annotator"], tie_kind=tie_kind,
        features=_feature_values(frame, features), feature_names=tuple(features) if features else (),
        order=_order_values(frame, order, left_col, right_col),
    )
    if both_bad == "drop" and tie_kind is not None and (tie_kind == TIE_KIND_BOTH_BAD).any():
        keep = tie_kind != TIE_KIND_BOTH_BAD
        n_dropped = int((~keep).sum())
        fields = {k: (v[keep] if isinstance(v, np.ndarray) and k != "items" else v) for k, v in fields.items()}
        warnings.warn(f"dropped {n_dropped} of {len(keep)} 'both bad' votes (both_bad='drop').", DataWarning, stacklevel=2)
    if drop_self_comparisons:
        fields = drop_self_comparisons_from(fields, keep_items=items is not None)
    return Comparisons(**fields)


def _optional_columns(frame: pd.DataFrame, **given: str | None) -> dict[str, np.ndarray | None]:
    """Optional per-row columns (time, annotator): the named column, or one of exactly the role's name."""
    out: dict[str, np.ndarray | None] = {}
    for role, name in given.items():
        if name is not None and name not in frame.columns:
            raise ComparisonDataError(f"missing {role} column {name!r}: the data have columns {list(frame.columns)[:20]}.")
        use = name if name is not None else (role if role in frame.columns else None)
        out[role] = None if use is None else frame[use].to_numpy()
    return out


def _feature_values(frame: pd.DataFrame, features: Sequence[str] | None) -> np.ndarray | None:
    if not features:
        return None
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise ComparisonDataError(f"missing feature column(s) {missing}: the data have columns {list(frame.columns)[:20]}.")
    try:
        return frame[list(features)].apply(pd.to_numeric, errors="raise").to_numpy(np.float64)
    except (ValueError, TypeError) as exc:
        raise ComparisonDataError(f"feature columns must be numeric: {exc}") from exc


def _order_values(frame: pd.DataFrame, order: str | None, left_col: Any, right_col: Any) -> np.ndarray | None:
    if order is None:
        return None
    if order not in frame.columns:
        raise ComparisonDataError(f"missing order column {order!r}: the data have columns {list(frame.columns)[:20]}.")
    return parse_order(frame[order], left_col, right_col, column=order)


#: Order labels understood by :func:`parse_order` (lower-cased, stripped), with
#: their value: 1 = the left item had the order advantage, -1 = the right item
#: had it, 0 = neither (neutral).
ORDER_LABELS: dict[str, float] = {
    **{k: 1.0 for k in ("left", "first", "home", "model_a", "1", "+1", "1.0", "true")},
    **{k: -1.0 for k in ("right", "second", "away", "model_b", "-1", "-1.0", "false")},
    **{k: 0.0 for k in ("neutral", "none", "0", "0.0")},
}


def parse_order(values: Any, left_names: Any | None = None, right_names: Any | None = None,
                column: str = "order") -> np.ndarray:
    """Convert an order (home / first-position) column to 1 / 0 / -1 per row.

    Accepted, exactly:

    * numbers ``1`` (left had the advantage), ``-1`` (right had it), ``0``
      (neutral); any other number, or a missing one, is an error;
    * booleans: ``True`` = left had it, ``False`` = right had it (a boolean
      cannot say "neutral"; use numbers or labels for that);
    * labels (case-insensitive, see :data:`ORDER_LABELS`): ``left``,
      ``first``, ``home``, ``model_a``, ``true`` = 1; ``right``, ``second``,
      ``away``, ``model_b``, ``false`` = -1; ``neutral``, ``none`` = 0 (and
      the numbers written as text). ``home``/``away`` describe the left item;
    * the name of the item that had the advantage: a value equal to the
      row's left item gives 1, equal to its right item gives -1. When the
      column holds item names, an empty (missing) value means neutral (0).
      Item names are matched before labels.

    Anything else (an unknown label, or the name of an item not in that
    row) is a :class:`~bradley.errors.ComparisonDataError` naming the values
    and the rows.

    Parameters
    ----------
    values : array-like
        The order column.
    left_names, right_names : array-like, optional
        The row's item names, needed for a home-item column.
    column : str
        Column name, for messages.

    Returns
    -------
    numpy.ndarray of float64 with values in {1, 0, -1}

    Examples
    --------
    >>> parse_order([1, 0, -1]).tolist()
    [1.0, 0.0, -1.0]
    >>> parse_order(["Left", "neutral", "right"]).tolist()
    [1.0, 0.0, -1.0]
    >>> parse_order(["x", None, "z"], ["x", "x", "y"], ["y", "z", "z"]).tolist()
    [1.0, 0.0, -1.0]
    """
    series = values if isinstance(values, pd.Series) else pd.Series(_plain(values))
    series = series.reset_index(drop=True)
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        if series.isna().any():
            text, rows = describe_rows(series.isna().to_numpy())
            raise ComparisonDataError(
                f"missing value in the order column {column!r} in {text}; use 1 / 0 / -1 or "
                "left / neutral / right to mark neutral rows.", rows)
        return np.where(series.to_numpy(dtype=bool), 1.0, -1.0)
    if pd.api.types.is_numeric_dtype(dtype):
        out = series.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isin(out, (-1.0, 0.0, 1.0))
        if bad.any():
            text, rows = describe_rows(bad)
            raise ComparisonDataError(
                f"the order column {column!r} must hold 1 (left had the advantage), -1 (right had it) or "
                f"0 (neutral); got {out[rows[:3]].tolist()} in {text}.", rows)
        return out

    raw = np.asarray(series.astype(object))
    missing = pd.isna(series).to_numpy() | np.array([isinstance(v, str) and not v.strip() for v in raw], dtype=bool)
    codes, uniques = pd.factorize(series)
    label_values = np.full(len(uniques), np.nan)
    for k, label in enumerate(np.asarray(uniques, dtype=object)):
        found = ORDER_LABELS.get(str(label).strip().lower())
        if found is not None:
            label_values[k] = found
    out = np.where(codes >= 0, label_values[np.maximum(codes, 0)], np.nan)
    if left_names is not None and right_names is not None:
        is_left = raw == np.asarray(_plain_series(left_names).astype(object))
        is_right = raw == np.asarray(_plain_series(right_names).astype(object))
        names_used = bool((is_left | is_right).any())
        out = np.where(is_left, 1.0, np.where(is_right, -1.0, out))
        if names_used:  # a home-item column: empty means a neutral venue
            out = np.where(missing, 0.0, out)
    if missing.any() and np.isnan(out[missing]).any():
        text, rows = describe_rows(missing & np.isnan(out))
        raise ComparisonDataError(
            f"missing value in the order column {column!r} in {text}; use 1 / 0 / -1, left / neutral / right, "
            "or the name of the item that had the advantage (empty = neutral only in such a column).", rows)
    bad = np.isnan(out)
    if bad.any():
        text, rows = describe_rows(bad)
        labels = python_values(pd.unique(raw[bad])[:5])
        raise ComparisonDataError(
            f"unknown value(s) {labels} in the order column {column!r} in {text}: use 1 / 0 / -1, "
            "left / right / neutral (also first / second, home / away, model_a / model_b, none), "
            "True / False, or the name of the row's left or right item.", rows)
    return out


#: Count-table item columns found without options (first pair present wins).
COUNT_TABLE_ITEM_COLUMNS: tuple[tuple[str, str], ...] = (
    ("item1", "item2"), ("player1", "player2"), ("left", "right"), ("model_a", "model_b"))
#: Count-table win columns found without options; their presence marks a count table.
COUNT_TABLE_WIN_COLUMNS: tuple[tuple[str, str], ...] = (("win1", "win2"), ("wins1", "wins2"))
#: Count-table tie columns used when present.
COUNT_TABLE_TIE_COLUMNS: tuple[str, ...] = ("tie", "ties")
#: A count table with more counted games than this is not expanded to rows.
MAX_EXPANDED_ROWS = 100_000_000


def is_count_table(columns: Sequence[str], win1: str | None = None, win2: str | None = None) -> bool:
    """Whether a table with these columns is read as an aggregated count table.

    True when ``win1`` or ``win2`` is given, or when the columns include one of
    :data:`COUNT_TABLE_WIN_COLUMNS` (``win1, win2`` or ``wins1, wins2``).

    Examples
    --------
    >>> is_count_table(["item1", "item2", "win1", "win2"]), is_count_table(["model_a", "model_b", "winner"])
    (True, False)
    """
    if win1 is not None or win2 is not None:
        return True
    cols = set(map(str, columns))
    return any({a, b} <= cols for a, b in COUNT_TABLE_WIN_COLUMNS)


def _count_roles(columns: Sequence[str], item1: str | None, item2: str | None, win1: str | None,
                 win2: str | None, tie: str | None) -> dict[str, str | None]:
    cols = list(map(str, columns))
    have = set(cols)
    roles: dict[str, str | None] = {"item1": item1, "item2": item2, "win1": win1, "win2": win2, "tie": tie}
    _check_given_columns(roles, cols, prefix="count table: ")
    if item1 is None and item2 is None:
        for a, b in COUNT_TABLE_ITEM_COLUMNS:
            if {a, b} <= have:
                roles.update(item1=a, item2=b)
                break
    if win1 is None and win2 is None:
        for a, b in COUNT_TABLE_WIN_COLUMNS:
            if {a, b} <= have:
                roles.update(win1=a, win2=b)
                break
    if tie is None:
        roles["tie"] = next((c for c in COUNT_TABLE_TIE_COLUMNS if c in have), None)
    missing = [r for r in ("item1", "item2", "win1", "win2") if roles[r] is None]
    if missing:
        raise ComparisonDataError(
            f"count table: no column for {missing}: the data have columns {cols[:20]}. Name them "
            "(item1=/item2= or left=/right=, win1=, win2=, tie=; CLI --left/--right/--win1/--win2/--tie).")
    absent = [roles[r] for r in roles if roles[r] is not None and roles[r] not in have]
    if absent:
        raise ComparisonDataError(f"count table: missing column(s) {absent}: the data have columns {cols[:20]}.")
    return roles


def _count_columns(frame: pd.DataFrame, names: Sequence[str]) -> list[np.ndarray]:
    """Count columns as float64; an error names every column and row that is not a finite non-negative number."""
    out, problems, bad_rows = [], [], np.zeros(len(frame), dtype=bool)
    for name in names:
        raw = frame[name]
        values = np.asarray(pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan),
                            dtype=np.float64)
        bad = ~(np.isfinite(values) & (values >= 0.0))
        if bad.any():
            text, rows = describe_rows(bad)
            problems.append(f"{name!r}: {python_values(np.asarray(raw.astype(object))[rows[:5]])} in {text}")
            bad_rows |= bad
        out.append(values)
    if problems:
        raise ComparisonDataError(
            "count columns must hold finite non-negative numbers; got " + "; ".join(problems) + ".",
            describe_rows(bad_rows)[1])
    return out


def _count_table(frame: pd.DataFrame, roles: dict[str, str | None], items: Sequence[Any] | None,
                 drop_self_comparisons: bool = False) -> tuple[np.ndarray, ...]:
    """Validated per-table-row codes and counts: (keep, left, right, items, win1, win2, tie)."""
    lc, rc, item_names = encode_items(frame[roles["item1"]], frame[roles["item2"]], items)
    names = [roles["win1"], roles["win2"]] + ([roles["tie"]] if roles["tie"] is not None else [])
    w1, w2, *rest = _count_columns(frame, names)
    t = rest[0] if rest else np.zeros(len(lc))
    keep = np.ones(len(lc), dtype=bool)
    same = lc == rc
    if same.any():
        text, rows = describe_rows(same)
        if not drop_self_comparisons:
            name = item_names[lc[rows[0]]]
            raise ComparisonDataError(
                f"count table: an item is paired with itself in {text} (first: {name!r} vs {name!r}); "
                "remove these rows, or pass drop_self_comparisons=True (CLI: --drop-self-comparisons).", rows)
        keep = ~same
        warnings.warn(f"dropped {int(same.sum())} of {len(lc)} count-table rows pairing an item with itself ({text}).",
                      DataWarning, stacklevel=4)
    return keep, lc, rc, item_names, w1, w2, t


def read_pair_counts(
    source: Any,
    *,
    item1: str | None = None,
    item2: str | None = None,
    win1: str | None = None,
    win2: str | None = None,
    tie: str | None = None,
    items: Sequence[Any] | None = None,
    format: str | None = None,
) -> PairCounts:
    """Read an aggregated count table (one row per pair) into :class:`~bradley.data.PairCounts`.

    The table shape is the one R's BradleyTerry2 takes: two item columns and
    the wins of each (``item1, item2, win1, win2``), optionally ties. A pair
    may appear in several rows and in either orientation; its counts are
    summed. Counts may be non-integer (weighted); pairs whose counts are all
    zero are left out, but their items stay in ``items``.

    Parameters
    ----------
    source : path or DataFrame
        A file (any format :func:`read_comparisons` reads) or a pandas /
        polars / pyarrow table.
    item1, item2 : str, optional
        Item columns. Default: the first of :data:`COUNT_TABLE_ITEM_COLUMNS`
        present (``item1, item2``, ``player1, player2``, ``left, right``,
        ``model_a, model_b``).
    win1, win2 : str, optional
        Wins of ``item1`` over ``item2`` and of ``item2`` over ``item1``.
        Default ``win1, win2`` (or ``wins1, wins2``).
    tie : str, optional
        Ties; default a ``tie`` or ``ties`` column if present, else none.
    items : sequence, optional
        Fix the item list (and its order).
    format : str, optional
        File format when the name does not tell it.

    Returns
    -------
    PairCounts

    Raises
    ------
    ComparisonDataError
        Missing columns, counts that are not finite non-negative numbers,
        missing item names, or an item paired with itself; the message names
        the rows.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"player1": ["a", "b", "a"], "player2": ["b", "a", "c"],
    ...                       "win1": [3, 1, 2], "win2": [1, 2, 2]})
    >>> p = read_pair_counts(table)
    >>> p.items.tolist(), p.wins_first.tolist(), p.wins_second.tolist()
    (['a', 'b', 'c'], [5.0, 2.0], [2.0, 2.0])
    """
    frame = read_table(source, format) if isinstance(source, (str, os.PathLike)) else _to_pandas(source)
    if len(frame.columns) == 0 or len(frame) == 0:
        raise ComparisonDataError("the count table is empty (zero rows).")
    roles = _count_roles([str(c) for c in frame.columns], item1, item2, win1, win2, tie)
    _, lc, rc, item_names, w1, w2, t = _count_table(frame, roles, items)
    n = len(item_names)
    swap = lc > rc
    first, second = np.where(swap, rc, lc), np.where(swap, lc, rc)
    wins_first, wins_second = np.where(swap, w2, w1), np.where(swap, w1, w2)
    keys, inverse = np.unique(first * n + second, return_inverse=True)
    k = len(keys)
    wf = np.bincount(inverse, wins_first, k)
    ws = np.bincount(inverse, wins_second, k)
    wt = np.bincount(inverse, t, k)
    used = (wf + ws + wt) > 0
    return PairCounts(keys[used] // n, keys[used] % n, wf[used], ws[used], wt[used], item_names)


def _read_count_rows(frame: pd.DataFrame, roles: dict[str, str | None], *, items: Sequence[Any] | None,
                     time: str | None, annotator: str | None, features: Sequence[str] | None,
                     order: str | None, drop_self_comparisons: bool) -> Comparisons:
    """A count table as comparisons: one row per counted game (weighted rows for non-integer counts)."""
    keep, lc, rc, item_names, w1, w2, t = _count_table(frame, roles, items, drop_self_comparisons)
    optional = _optional_columns(frame, time=time, annotator=annotator)
    per_row: dict[str, np.ndarray | None] = {
        "time": optional["time"],
        "annotator": optional["annotator"],
        "features": _feature_values(frame, features),
        "order": _order_values(frame, order, frame[roles["item1"]], frame[roles["item2"]]),
    }
    counts = np.stack([w1, w2, t], axis=1)[keep]
    table_rows = np.flatnonzero(keep)
    kinds = np.tile([1.0, 0.0, 0.5], len(table_rows))
    integer = bool(np.all(counts == np.round(counts)))
    if integer:
        total = float(counts.sum())
        if total > MAX_EXPANDED_ROWS:
            raise ComparisonDataError(
                f"the count table holds {total:.0f} games, more than MAX_EXPANDED_ROWS = {MAX_EXPANDED_ROWS} "
                "comparison rows; fit from bradley.read_pair_counts(...) instead (models accept PairCounts).")
        reps = counts.astype(np.int64).ravel()
        source_row = np.repeat(np.repeat(table_rows, 3), reps)
        outcome, weight = np.repeat(kinds, reps), None
    else:
        flat = counts.ravel()
        nonzero = flat > 0
        source_row = np.repeat(table_rows, 3)[nonzero]
        outcome, weight = kinds[nonzero], flat[nonzero]
        warnings.warn(
            "the count table has non-integer counts, so they cannot be expanded into single comparisons: "
            "each pair and outcome is one row weighted by its count. A row bootstrap or a k-fold split then "
            "resamples these weighted rows, not comparisons; use Fisher or sandwich intervals.",
            DataWarning, stacklevel=3)
    return Comparisons(
        left=lc[source_row], right=rc[source_row], outcome=outcome, items=item_names, weight=weight,
        tie_kind=None, feature_names=tuple(features) if features else (),
        **{name: (None if value is None else value[source_row]) for name, value in per_row.items()},
    )


def parse_outcomes(
    values: Any, left_names: Any | None = None, right_names: Any | None = None, items: Any | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Convert an outcome column to floats in [0, 1] and per-row tie kinds.

    Numbers pass through (validated later); booleans mean "left won"; strings
    are matched first against the row's item names (a winner-name column),
    then against :data:`OUTCOME_LABELS`. Pass ``items`` (all item names) to
    skip the row-wise name comparison when no outcome value is an item name.

    Returns
    -------
    outcome : numpy.ndarray of float64
    tie_kind : numpy.ndarray of int8 or None
        1 where the label was a "both bad" tie, else 0; None for numeric input.

    Examples
    --------
    >>> parse_outcomes(["left", "TIE", "right"])[0].tolist()
    [1.0, 0.5, 0.0]
    >>> parse_outcomes(["x", "y"], ["x", "x"], ["y", "y"])[0].tolist()
    [1.0, 0.0]
    """
    series = values if isinstance(values, pd.Series) else pd.Series(_plain(values))
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        if series.isna().any():
            text, rows = describe_rows(series.isna().to_numpy())
            raise ComparisonDataError(f"missing outcome in {text}.", rows)
        return series.to_numpy(dtype=np.float64), None
    if pd.api.types.is_numeric_dtype(dtype):
        out = series.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isnan(out).any():
            text, rows = describe_rows(np.isnan(out))
            raise ComparisonDataError(f"missing (NaN) outcome in {text}.", rows)
        return out, None

    codes, uniques = pd.factorize(series)
    if (codes < 0).any():
        text, rows = describe_rows(codes < 0)
        raise ComparisonDataError(f"missing outcome in {text}.", rows)
    label_values = np.full(len(uniques), np.nan)
    label_kinds = np.zeros(len(uniques), dtype=np.int8)
    for k, label in enumerate(np.asarray(uniques, dtype=object)):
        found = OUTCOME_LABELS.get(str(label).strip().lower())
        if found is not None:
            label_values[k], label_kinds[k] = found
    out = label_values[codes]
    tie_kind = label_kinds[codes]
    names_possible = left_names is not None and right_names is not None
    if names_possible and items is not None:
        names_possible = bool(pd.Index(np.asarray(items, dtype=object)).isin(np.asarray(uniques, dtype=object)).any())
    if names_possible:
        # Some outcome values are item names: a winner-name column. A value equal to one of the
        # row's two item names decides the row; labels (ties) fill the rest.
        raw = np.asarray(series.astype(object))
        is_left = raw == np.asarray(_plain_series(left_names).astype(object))
        is_right = raw == np.asarray(_plain_series(right_names).astype(object))
        out = np.where(is_left, 1.0, np.where(is_right, 0.0, out))
        tie_kind = np.where(is_left | is_right, TIE_KIND_TIE, tie_kind).astype(np.int8)
    bad = np.isnan(out)
    if bad.any():
        text, rows = describe_rows(bad)
        labels = python_values(pd.unique(np.asarray(series.astype(object))[bad])[:5])
        raise ComparisonDataError(
            f"unknown outcome label(s) {labels} in {text}. Use 1/0/0.5, left/right/tie, "
            "model_a/model_b/tie/tie (bothbad)/both_bad, or the winning item's name.",
            rows,
        )
    return out, tie_kind


def _plain(values: Any) -> Any:
    mod = type(values).__module__
    if mod.startswith("polars") or mod.startswith("pyarrow"):
        return values.to_pandas()
    return values


def _plain_series(values: Any) -> pd.Series:
    values = _plain(values)
    return values if isinstance(values, pd.Series) else pd.Series(values)
