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
    describe_rows,
    drop_self_comparisons_from,
    encode_items,
    python_values,
)
from bradley.errors import ComparisonDataError, DataWarning

__all__ = ["read_comparisons", "parse_outcomes", "OUTCOME_LABELS", "read_table"]

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
) -> Comparisons:
    """Read pairwise comparisons from a file or a table.

    Parameters
    ----------
    source : path or DataFrame
        A CSV / TSV / JSONL / JSON / Parquet file (``.gz`` allowed), a plain
        ``winner loser`` text file (``.txt``), or a pandas, polars or pyarrow table.
    left, right : str, optional
        Columns with the two compared items.
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
    """
    if isinstance(source, (str, os.PathLike)):
        frame = read_table(source, format)
    else:
        frame = _to_pandas(source)
    if len(frame.columns) == 0 or len(frame) == 0:
        raise ComparisonDataError("the data hold no comparisons (zero rows).")
    roles = _resolve_columns([str(c) for c in frame.columns], left, right, outcome, winner, loser)

    optional: dict[str, np.ndarray | None] = {}
    for role, given in (("weight", weight), ("time", time), ("annotator", annotator)):
        name = given if given is not None else (role if role in frame.columns else None)
        if given is not None and given not in frame.columns:
            raise ComparisonDataError(f"missing {role} column {given!r}: the data have columns {list(frame.columns)[:20]}.")
        optional[role] = None if name is None else frame[name].to_numpy()
    weights = None
    if optional["weight"] is not None:
        try:
            weights = np.asarray(pd.to_numeric(pd.Series(optional["weight"]), errors="raise"), dtype=np.float64)
        except (ValueError, TypeError) as exc:
            raise ComparisonDataError(f"weight column is not numeric: {exc}") from exc

    if roles["winner"] is not None:
        lc, rc, item_names = encode_items(frame[roles["winner"]], frame[roles["loser"]], items)
        values, tie_kind = np.ones(len(lc)), None
    else:
        left_col, right_col = frame[roles["left"]], frame[roles["right"]]
        lc, rc, item_names = encode_items(left_col, right_col, items)
        values, tie_kind = parse_outcomes(frame[roles["outcome"]], left_col, right_col, item_names)
    feature_values = None
    if features:
        missing = [c for c in features if c not in frame.columns]
        if missing:
            raise ComparisonDataError(f"missing feature column(s) {missing}: the data have columns {list(frame.columns)[:20]}.")
        try:
            feature_values = frame[list(features)].apply(pd.to_numeric, errors="raise").to_numpy(np.float64)
        except (ValueError, TypeError) as exc:
            raise ComparisonDataError(f"feature columns must be numeric: {exc}") from exc
    fields = dict(
        left=lc, right=rc, outcome=values, items=item_names, weight=weights,
        time=optional["time"], annotator=optional["annotator"], tie_kind=tie_kind,
        features=feature_values, feature_names=tuple(features) if features else (),
    )
    if both_bad not in ("tie", "drop"):
        raise ValueError(f"both_bad must be 'tie' or 'drop', got {both_bad!r}.")
    if both_bad == "drop" and tie_kind is not None and (tie_kind == TIE_KIND_BOTH_BAD).any():
        keep = tie_kind != TIE_KIND_BOTH_BAD
        n_dropped = int((~keep).sum())
        fields = {k: (v[keep] if isinstance(v, np.ndarray) and k != "items" else v) for k, v in fields.items()}
        warnings.warn(f"dropped {n_dropped} of {len(keep)} 'both bad' votes (both_bad='drop').", DataWarning, stacklevel=2)
    if drop_self_comparisons:
        fields = drop_self_comparisons_from(fields, keep_items=items is not None)
    return Comparisons(**fields)


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
