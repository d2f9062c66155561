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

import ast
import functools
import io
import operator
import os
import re
import tokenize
import warnings
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bradley.data import (
    TIE_KIND_BOTH_BAD,
    TIE_KIND_TIE,
    Comparisons,
    PairCounts,
    RowSource,
    describe_rows,
    drop_self_comparisons_from,
    encode_items,
    python_values,
    rows_from,
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
    "map_outcomes",
    "parse_outcome_map",
    "select_rows",
    "CONVENTION_OUTCOME_COLUMNS",
    "HEADER_NAMES",
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


def read_table(
    path: str | os.PathLike[str],
    fmt: str | None = None,
    columns: Sequence[str] | None = None,
    *,
    sep: str | None = None,
    header: bool | None = None,
    names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Read a comparison file into a DataFrame (strings stay Arrow-backed).

    Column names are stripped of surrounding spaces; a header that names a
    column twice is refused (pandas would silently read the second as
    ``name.1``). The frame remembers its file, so that
    :func:`read_comparisons` names file lines (the header is line 1) in its
    messages while the frame is passed on unchanged.

    Plain ``.txt`` match lists are ``winner loser`` per line, whitespace
    separated: blank lines and lines starting with ``#`` are skipped; a first
    line of column names (``winner loser``, ``left right outcome``, ...) is
    taken as a header; lines with more than two fields are refused unless a
    header line or ``names`` names the columns.

    Parameters
    ----------
    path : str or path-like
    fmt : {"csv", "tsv", "whitespace", "jsonl", "json", "parquet"}, optional
        Default: from the file name.
    columns : sequence of str, optional
        Only these columns (Parquet reads only them from disk).
    sep : str, optional
        Field separator for delimited text (``";"``, ``"|"``, ``"\\t"``; more
        than one character is a regular expression). Default: ``,`` for
        ``.csv``, tab for ``.tsv``, runs of spaces for ``.txt``.
    header : bool, optional
        ``.txt`` files only: whether the first line names the columns.
        Default: detected (a first line made only of known column names).
    names : sequence of str, optional
        ``.txt`` files only: names of the fields of each line (e.g.
        ``["winner", "loser", "weight"]``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "games.txt"
    >>> _ = path.write_text("# chess club\\nwinner loser\\nann bob\\nbob cy\\n")
    >>> read_table(path).values.tolist()
    [['ann', 'bob'], ['bob', 'cy']]
    """
    p = Path(path)
    if not p.exists():
        raise ComparisonDataError(f"no such file: {str(p)!r}.")
    kind = _file_format(p, fmt)
    if (header is not None or names is not None) and kind != "whitespace":
        raise ComparisonDataError("header= and names= apply to .txt match lists (format='whitespace'); "
                                  f"{p.name!r} is read as {kind}, whose first line is always the header.")
    sep = _separator(sep)
    if sep is not None and kind not in ("csv", "tsv", "whitespace"):
        raise ComparisonDataError(f"sep= applies to delimited text files; {p.name!r} is read as {kind}.")
    line_of: Any = None
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(p, columns=list(columns) if columns else None)
            _refuse_duplicate_names([str(c) for c in table.column_names], p.name)
            frame = table.to_pandas(types_mapper=pd.ArrowDtype)
        elif kind in ("csv", "tsv"):
            delimiter = sep if sep is not None else ("," if kind == "csv" else "\t")
            header_line = _check_delimited_header(p, delimiter)
            if len(delimiter) == 1:
                frame = pd.read_csv(p, sep=delimiter, engine="pyarrow", usecols=columns)
            else:
                frame = pd.read_csv(p, sep=delimiter, engine="python", usecols=columns)
            frame.columns = [str(c).strip() for c in frame.columns]
            line_of = functools.partial(_delimited_data_lines, str(p), delimiter, header_line)
        elif kind == "whitespace":
            frame, lines = _read_match_list(p, header=header, names=names, sep=sep)
            line_of = functools.partial(_fixed, lines)
        elif kind == "jsonl":
            frame = pd.read_json(p, lines=True, dtype=False)
            line_of = functools.partial(_delimited_data_lines, str(p), None, 0)
        elif kind == "json":
            frame = pd.read_json(p, dtype=False)
        else:
            raise ComparisonDataError(f"unknown format {kind!r}.")
    except ComparisonDataError:
        raise
    except Exception as exc:  # parsing errors from pandas/pyarrow: name the file
        raise ComparisonDataError(f"could not read {str(p)!r} as {kind}: {exc}") from exc
    # the frame itself (weakly): a frame derived from it (sorted, filtered, copied) does not claim its lines
    frame.attrs[_SOURCE_KEY] = (p.name, line_of, len(frame), weakref.ref(frame))
    return frame


_SOURCE_KEY = "bradley.source"

#: Names that make the first line of a ``.txt`` file a header (lower-case).
HEADER_NAMES = frozenset({
    "winner", "loser", "left", "right", "outcome", "result", "weight", "time", "date", "annotator", "judge",
    "item1", "item2", "player1", "player2", "model_a", "model_b", "win1", "win2", "wins1", "wins2", "tie", "ties",
    "home", "away", "score", "scores", "order", "count", "counts", "n",
})


def _separator(sep: str | None) -> str | None:
    if sep is None:
        return None
    if not isinstance(sep, str) or sep == "":
        raise ComparisonDataError(f"sep must be a non-empty string, got {sep!r}.")
    return {"\\t": "\t", "tab": "\t", "TAB": "\t"}.get(sep, sep)


def _fixed(values: np.ndarray) -> np.ndarray:
    return values


def _open_binary(path: Path) -> Any:
    """The file opened for reading bytes, decompressed by suffix (.gz, .bz2, .xz, .zip, .zst)."""
    suffix = path.suffix.lower()
    if suffix == ".gz":
        import gzip

        return gzip.open(path, "rb")
    if suffix == ".bz2":
        import bz2

        return bz2.open(path, "rb")
    if suffix == ".xz":
        import lzma

        return lzma.open(path, "rb")
    if suffix == ".zip":
        import zipfile

        archive = zipfile.ZipFile(path)
        return archive.open(archive.namelist()[0])
    if suffix == ".zst":
        import zstandard  # optional; any failure here only costs line numbers

        return zstandard.ZstdDecompressor().stream_reader(open(path, "rb"))
    return open(path, "rb")


def _read_bytes(path: Path, limit: int = -1) -> bytes:
    with _open_binary(path) as handle:
        return bytes(handle.read(limit))


def _nonblank_lines(data: bytes) -> np.ndarray:
    """1-based numbers of the lines that hold something other than spaces (vectorised)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    breaks = np.flatnonzero(buf == 10)
    starts = np.concatenate(([0], breaks + 1))
    ends = np.concatenate((breaks, [len(buf)]))
    is_solid = np.ones(256, dtype=bool)
    is_solid[list(b" \t\r\x0b\x0c")] = False
    count = np.concatenate(([0], np.cumsum(is_solid[buf], dtype=np.int64)))
    filled = count[ends] - count[starts] > 0
    return np.flatnonzero(filled) + 1


def _delimited_data_lines(path: str, delimiter: str | None, header_lines: int) -> np.ndarray:
    """File line (1-based) of each data record of a delimited or JSON-lines file."""
    data = _read_bytes(Path(path))
    if delimiter is None or b'"' not in data:
        return _nonblank_lines(data)[header_lines:]
    import csv
    import io as _io

    text = _io.StringIO(data.decode("utf-8-sig", errors="replace"), newline="")
    reader = csv.reader(text, delimiter=delimiter) if len(delimiter) == 1 else None
    if reader is None:
        return _nonblank_lines(data)[header_lines:]
    lines, previous = [], 0
    for record in reader:
        if record:
            lines.append(previous + 1)
        previous = reader.line_num
    return np.asarray(lines[header_lines:], dtype=np.int64)


def _check_delimited_header(path: Path, delimiter: str) -> int:
    """Refuse a header naming a column twice; return the number of header records (1)."""
    import csv
    import re

    try:
        data = _read_bytes(path, 1 << 20)
    except Exception:  # an unknown compression: pandas will say what is wrong
        return 1
    first = next((line for line in data.decode("utf-8-sig", errors="replace").splitlines() if line.strip()), "")
    if len(delimiter) == 1:
        names = next(csv.reader([first], delimiter=delimiter), [])
    else:
        names = re.split(delimiter, first.strip())
    _refuse_duplicate_names([n.strip() for n in names], path.name)
    return 1


def _refuse_duplicate_names(names: Sequence[str], where: str) -> None:
    seen: dict[str, list[int]] = {}
    for k, name in enumerate(names, 1):
        seen.setdefault(name, []).append(k)
    dups = {name: cols for name, cols in seen.items() if len(cols) > 1}
    if dups:
        shown = "; ".join(f"{name!r} in columns {', '.join(map(str, cols))}" for name, cols in list(dups.items())[:5])
        raise ComparisonDataError(
            f"the header of {where!r} names a column more than once ({shown}); rename them so that each column "
            "has its own name (pandas would read the second one silently as 'name.1').")


def _read_match_list(path: Path, *, header: bool | None, names: Sequence[str] | None,
                     sep: str | None) -> tuple[pd.DataFrame, np.ndarray]:
    """A ``.txt`` match list as a frame, and the file line of each data row."""
    data = _read_bytes(path)
    if sep is None and b"#" not in data:
        fast = _read_plain_match_list(data, path, header=header, names=names)
        if fast is not None:
            return fast
    # comments, a separator, or lines of different lengths: line by line, to name every bad line
    text = data.decode("utf-8-sig")
    numbers: list[int] = []
    records: list[list[str]] = []
    for i, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        numbers.append(i)
        records.append(stripped.split() if sep is None else [f.strip() for f in stripped.split(sep)])
    if not records:
        raise ComparisonDataError(f"{path.name!r} holds no games (only blank or '#' comment lines).")
    first = records[0]
    header, columns = _match_list_columns(path, first, numbers[0], header, names, len(records),
                                          lambda names: any(f in names for r in records[1:] for f in r[:2]))
    data_start = 1 if header else 0
    body, lines = records[data_start:], np.asarray(numbers[data_start:], dtype=np.int64)
    if not body:
        raise ComparisonDataError(f"{path.name!r} has a header line but no games.")
    widths = np.fromiter((len(r) for r in body), dtype=np.int64, count=len(body))
    bad = widths != len(columns)
    if bad.any():
        rows = np.flatnonzero(bad)
        shown = ", ".join(str(int(x)) for x in lines[rows[:10]])
        shown += f" (and {len(rows) - 10} more)" if len(rows) > 10 else ""
        counts = sorted(set(widths[rows].tolist()))
        if names is None and not header:
            advice = ("a .txt match list is 'winner loser' per line; name extra fields with a header line "
                      "(e.g. 'winner loser weight') or names=[...] (CLI --names), or remove them")
        else:
            advice = f"the columns are {columns}"
        raise ComparisonDataError(
            f"{path.name!r}: line{'s' if len(rows) > 1 else ''} {shown} hold{'' if len(rows) > 1 else 's'} "
            f"{' or '.join(map(str, counts))} fields where {len(columns)} are expected: {advice}.",
            [int(r) for r in rows[:10]])
    return _numbers_where_all_are(pd.DataFrame(body, columns=columns, dtype=object)), lines


def _numbers_where_all_are(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns whose every field is a number become numeric (as a CSV reader would read them)."""
    for name in frame.columns:
        if pd.to_numeric(frame[name].iloc[:100], errors="coerce").isna().any():
            continue  # names, not numbers: no pass over the whole column
        as_number = pd.to_numeric(frame[name], errors="coerce")
        if not as_number.isna().any():
            frame[name] = as_number
    return frame


def _match_list_columns(path: Path, first: list[str], first_line: int, header: bool | None,
                        names: Sequence[str] | None, n_records: int, appears_later: Any) -> tuple[bool, list[str]]:
    """Whether the first record is a header, and the column names."""
    if header is None:
        header = all(f.lower() in HEADER_NAMES for f in first)
        if not header and names is None and n_records >= 3 and len(first) == 2 and not appears_later(first):
            warnings.warn(
                f"line {first_line} of {path.name!r} ({' '.join(first)!r}) is read as a game, but neither name "
                "appears anywhere else in the file: if it is a header, pass header=True (CLI --header), "
                "else header=False to silence this.", DataWarning, stacklevel=5)
    if names is not None:
        columns = [str(n).strip() for n in names]
    elif header:
        columns = list(first)
    else:
        columns = ["winner", "loser"]
    _refuse_duplicate_names(columns, path.name)
    return bool(header), columns


def _read_plain_match_list(data: bytes, path: Path, *, header: bool | None,
                           names: Sequence[str] | None) -> tuple[pd.DataFrame, np.ndarray] | None:
    """A match list without comments through pandas' C reader; None when a line has another length."""
    lines = _nonblank_lines(data)
    if len(lines) == 0:
        return None
    try:
        raw = pd.read_csv(io.BytesIO(data), sep=r"\s+", header=None, dtype=str, engine="c", skip_blank_lines=True,
                          keep_default_na=False, na_filter=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, ValueError, UnicodeDecodeError):
        return None
    if len(raw) != len(lines) or len(raw) == 0:
        return None
    first = [str(v) for v in raw.iloc[0].tolist()]
    if any(v == "" for v in first):
        return None

    def appears_later(names: list[str]) -> bool:
        return bool(raw.iloc[1:, :2].isin(names).to_numpy().any())

    header, columns = _match_list_columns(path, first, int(lines[0]), header, names, len(raw), appears_later)
    body = raw.iloc[1:] if header else raw
    if body.shape[1] != len(columns) or (body == "").to_numpy().any() or len(body) == 0:
        return None  # the line-by-line reader names the lines
    body = body.reset_index(drop=True)
    body.columns = columns
    return _numbers_where_all_are(body), lines[1:] if header else lines


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
    need_outcome: bool = True,
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
    if not need_outcome:  # the outcome comes from score columns
        roles["outcome"] = None
    needed = (["winner", "loser"] if roles["winner"] is not None
              else ["left", "right", "outcome"] if need_outcome else ["left", "right"])
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
    outcome_map: Mapping[Any, Any] | str | None = None,
    left_score: str | None = None,
    right_score: str | None = None,
    where: str | None = None,
    sep: str | None = None,
    header: bool | None = None,
    names: Sequence[str] | None = None,
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
    outcome_map : dict or str, optional
        What each value of the outcome column means, e.g. PRD's
        ``{1: "left", 2: "right", 3: "tie"}`` or Copilot Arena's
        ``{0: "left", 1: "right", "": "drop"}`` (also as text,
        ``"1=left,2=right,3=tie"``). Meanings: ``left``, ``right``, ``tie``,
        ``both_bad``, any label of :data:`OUTCOME_LABELS`, a number in [0, 1],
        or ``drop`` (remove those rows, warning with the count). Keys match
        the column's values as text (``1``, ``1.0`` and ``"1"`` are one key,
        case and surrounding spaces ignored; ``""`` or None is an empty cell).
        Every value present must be mapped. See :func:`map_outcomes`.
    left_score, right_score : str, optional
        Score (goals, points) columns of the left and right item: the row is a
        win for the higher score and a tie when they are equal.
    where : str, optional
        Keep only the rows matching a condition, in pandas query syntax (a
        safe subset: see :func:`select_rows`), e.g. ``"category == 'math'"``
        or ``"reviewer in ['gpt4', 'claude'] and question_id > 10"``.
    sep : str, optional
        Field separator of a delimited text file (see :func:`read_table`).
    header, names : optional
        ``.txt`` files: whether the first line is a header, and the field
        names (see :func:`read_table`).

    Returns
    -------
    Comparisons

    Notes
    -----
    **Numbers in an outcome column.** bradley's convention is ``1`` = left won,
    ``0`` = right won, ``0.5`` = tie, other values in (0, 1) = the probability
    that left won. It is applied without asking to a column named
    ``outcome`` (or ``left_won``/``left_wins``), and to columns holding a value
    other than 0 and 1 in [0, 1]. A column of another name holding only 0 and 1
    (or only 1) is refused: such columns are coded both ways in the wild
    (Copilot Arena's ``acceptedIndex`` is 0 when the *first* model won), so
    say which with ``outcome_map``. Numbers outside [0, 1] (1/2/3 codes) need
    ``outcome_map`` too.

    **Weights** are frequency weights: a row of weight 3 counts as three such
    comparisons. The scores depend on them only up to a common factor, but
    Fisher standard errors shrink as ``1 / sqrt(total weight)`` (doubling
    every weight narrows them by ``sqrt(2)``), and a row bootstrap resamples a
    weighted row as one unit. Weights must be finite and non-negative, and
    positive ones within :data:`~bradley.data.WEIGHT_RANGE` (1e-150 to 1e150).

    **Row numbers in messages.** For files, errors and warnings name file
    lines (the header is line 1; blank and comment lines count); for frames
    and arrays, 0-based data rows, and say so. ``error.rows`` holds 0-based
    data rows (before ``where=`` filtering).

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
    >>> ratings = pd.DataFrame({"model_1": ["a", "a", "b"], "model_2": ["b", "c", "c"], "score": [1, 3, 2]})
    >>> read_comparisons(ratings, left="model_1", right="model_2", outcome="score",
    ...                  outcome_map={1: "left", 2: "right", 3: "tie"}).outcome.tolist()
    [1.0, 0.5, 0.0]
    >>> games = pd.DataFrame({"home": ["x", "y"], "away": ["y", "z"], "goals1": [2, 0], "goals2": [2, 1]})
    >>> read_comparisons(games, left="home", right="away", left_score="goals1", right_score="goals2",
    ...                  where="goals1 + goals2 > 0").outcome.tolist()
    [0.5, 0.0]
    """
    if isinstance(source, (str, os.PathLike)):
        frame = read_table(source, format, sep=sep, header=header, names=names)
    else:
        if sep is not None or header is not None or names is not None:
            raise ComparisonDataError("sep=, header= and names= describe how to read a file; the data given are "
                                      f"already a table ({type(source).__name__}).")
        frame = _to_pandas(source)
    with _row_source(frame) as rows:
        frame = _filtered(frame, where, rows)
        return _comparisons_from_frame(
            frame, rows, left=left, right=right, outcome=outcome, winner=winner, loser=loser, weight=weight,
            time=time, annotator=annotator, items=items, drop_self_comparisons=drop_self_comparisons,
            features=features, both_bad=both_bad, order=order, counts=counts, win1=win1, win2=win2, tie=tie,
            outcome_map=outcome_map, left_score=left_score, right_score=right_score)


def _row_source(frame: pd.DataFrame) -> Any:
    """A context naming rows by the frame's file lines (when it came unchanged from :func:`read_table`)."""
    if frame.columns.duplicated().any():
        _refuse_duplicate_names([str(c) for c in frame.columns], "the data")
    info = frame.attrs.get(_SOURCE_KEY)
    index = frame.index
    fresh = (isinstance(info, tuple) and len(info) == 4 and info[3]() is frame and info[2] == len(frame)
             and isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1)
    return rows_from(RowSource(name=info[0], line_of=info[1], n_rows=info[2]) if fresh else RowSource())


def _filtered(frame: pd.DataFrame, where: str | None, rows: RowSource) -> pd.DataFrame:
    if where is None or len(frame) == 0:
        return frame
    mask = select_rows(frame, where)
    if not mask.any():
        raise ComparisonDataError(f"where={where!r} matches none of the {len(frame)} rows.")
    rows.keep(mask)
    return frame.loc[mask].reset_index(drop=True)


def _comparisons_from_frame(
    frame: pd.DataFrame, rows: RowSource, *, left: str | None, right: str | None, outcome: str | None,
    winner: str | None, loser: str | None, weight: str | None, time: str | None, annotator: str | None,
    items: Sequence[Any] | None, drop_self_comparisons: bool, features: Sequence[str] | None, both_bad: str,
    order: str | None, counts: bool | None, win1: str | None, win2: str | None, tie: str | None,
    outcome_map: Mapping[Any, Any] | str | None, left_score: str | None, right_score: str | None,
) -> Comparisons:
    if len(frame.columns) == 0 or len(frame) == 0:
        raise ComparisonDataError("the data hold no comparisons (zero rows).")
    if both_bad not in ("tie", "drop"):
        raise ValueError(f"both_bad must be 'tie' or 'drop', got {both_bad!r}.")
    columns = [str(c) for c in frame.columns]
    scores = left_score is not None or right_score is not None
    if counts is None:
        counts = is_count_table(columns, win1, win2)
    if counts:
        if (outcome is not None or winner is not None or loser is not None or weight is not None
                or outcome_map is not None or scores):
            raise ComparisonDataError(
                "a count table has win1/win2 (and tie) count columns; outcome=, outcome_map=, left_score=, "
                "right_score=, winner=, loser= and weight= do not apply to it (the counts are the frequencies)."
            )
        return _read_count_rows(frame, _count_roles(columns, left, right, win1, win2, tie), items=items,
                                time=time, annotator=annotator, features=features, order=order,
                                drop_self_comparisons=drop_self_comparisons, rows=rows)
    if win1 is not None or win2 is not None or tie is not None:
        raise ComparisonDataError("win1=, win2= and tie= name count-table columns; they need counts=True (or None).")
    if scores:
        if left_score is None or right_score is None:
            raise ComparisonDataError("left_score= and right_score= go together (the scores of the left and the "
                                      "right item).")
        if outcome is not None or outcome_map is not None or winner is not None or loser is not None:
            raise ComparisonDataError("left_score=/right_score= decide each row from the scores; outcome=, "
                                      "outcome_map=, winner= and loser= do not apply with them.")
        _check_given_columns({"left_score": left_score, "right_score": right_score}, columns)
    roles = _resolve_columns(columns, left, right, outcome, winner, loser, need_outcome=not scores)
    if outcome_map is not None and roles["winner"] is not None:
        raise ComparisonDataError("outcome_map= describes an outcome column; winner/loser columns have none "
                                  "(every row is a win of the winner).")

    if outcome_map is None and not scores and roles["outcome"] is not None:
        _refuse_guessed_codes(frame[roles["outcome"]], str(roles["outcome"]))
    values: np.ndarray
    tie_kind: np.ndarray | None
    mapped = None
    if outcome_map is not None and not scores:
        outcome_name = roles["outcome"]
        # _resolve_columns with need_outcome=True (no scores) and no winner column (refused above) named it
        assert outcome_name is not None
        # rows mapped to 'drop' go first, so that their other cells (often empty too) are not read
        values, tie_kind, drop = map_outcomes(frame[outcome_name], outcome_map, column=outcome_name)
        if drop.all():
            raise ComparisonDataError(f"outcome_map maps every row to 'drop' ({len(drop)} rows).")
        if drop.any():
            text, _ = describe_rows(drop)
            warnings.warn(f"dropped {int(drop.sum())} of {len(drop)} rows whose outcome value outcome_map maps to "
                          f"'drop' ({text}).", DataWarning, stacklevel=3)
            rows.keep(~drop)
            frame = frame.loc[~drop].reset_index(drop=True)
            values, tie_kind = values[~drop], tie_kind[~drop]
        mapped = values, tie_kind
    optional = _optional_columns(frame, time=time, annotator=annotator)
    weights = None
    weight_name = weight if weight is not None else ("weight" if "weight" in frame.columns else None)
    if weight is not None and weight not in frame.columns:
        raise ComparisonDataError(
            f"missing weight column {weight!r}: the data have columns {list(frame.columns)[:20]}.")
    if weight_name is not None:
        weights = _numeric_column(frame, weight_name, "weight")

    if roles["winner"] is not None:
        left_col, right_col = frame[roles["winner"]], frame[roles["loser"]]
        lc, rc, item_names = encode_items(left_col, right_col, items)
        values, tie_kind = np.ones(len(lc)), None
    else:
        left_col, right_col = frame[roles["left"]], frame[roles["right"]]
        lc, rc, item_names = encode_items(left_col, right_col, items)
        if scores:
            values, tie_kind = _score_outcomes(frame, str(left_score), str(right_score)), None
        elif mapped is not None:
            values, tie_kind = mapped
        else:
            values, tie_kind = parse_outcomes(frame[roles["outcome"]], left_col, right_col, item_names)
    fields: dict[str, Any] = dict(
        left=lc, right=rc, outcome=values, items=item_names, weight=weights,
        time=optional["time"], annotator=optional["annotator"], tie_kind=tie_kind,
        features=_feature_values(frame, features), feature_names=tuple(features) if features else (),
        order=_order_values(frame, order, left_col, right_col),
    )
    if both_bad == "drop" and tie_kind is not None and (tie_kind == TIE_KIND_BOTH_BAD).any():
        keep = tie_kind != TIE_KIND_BOTH_BAD
        n_dropped = int((~keep).sum())
        fields = _keep_rows(fields, keep, rows)
        warnings.warn(f"dropped {n_dropped} of {len(keep)} 'both bad' votes (both_bad='drop').",
                      DataWarning, stacklevel=3)
    if drop_self_comparisons:
        same = np.asarray(fields["left"]) == np.asarray(fields["right"])
        fields = drop_self_comparisons_from(fields, keep_items=items is not None)
        if same.any():
            rows.keep(~same)
    return Comparisons(**fields)


def _keep_rows(fields: dict[str, Any], keep: np.ndarray, rows: RowSource) -> dict[str, Any]:
    rows.keep(keep)
    return {k: (v[keep] if isinstance(v, np.ndarray) and k != "items" else v) for k, v in fields.items()}


def _numeric_column(frame: pd.DataFrame, name: str, role: str) -> np.ndarray:
    """A column as float64; an error names the rows whose value is not a number."""
    raw = frame[name]
    values = np.asarray(pd.to_numeric(pd.Series(raw.to_numpy()), errors="coerce")
                        .to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    bad = np.isnan(values) & ~pd.isna(pd.Series(raw.to_numpy())).to_numpy()
    if bad.any():
        text, bad_rows = describe_rows(bad)
        shown = python_values(np.asarray(raw.astype(object))[bad_rows[:5]])
        raise ComparisonDataError(f"the {role} column {name!r} must hold numbers; got {shown} in {text}.", bad_rows)
    return values


#: Outcome columns whose numbers follow bradley's convention (1 = left won) without an outcome_map.
CONVENTION_OUTCOME_COLUMNS = ("outcome", "left_won", "left_wins")
_BINARY_TEXT = frozenset({"0", "1", "0.0", "1.0"})


def _refuse_guessed_codes(series: pd.Series, column: str) -> None:
    """Numbers that could mean either side won (0/1 indices) or that are codes (1/2/3) need an outcome_map."""
    if column.strip().lower() in CONVENTION_OUTCOME_COLUMNS:
        return _refuse_codes_out_of_range(series, column)
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        present = values[~np.isnan(values)]
        binary = len(present) > 0 and bool(np.isin(present, (0.0, 1.0)).all())
    else:
        head = {str(u).strip().lower() for u in np.asarray(series.iloc[:1000].dropna().astype(object)).tolist()}
        if not head <= _BINARY_TEXT:  # labels such as model_a / tie: nothing to guess (and no pass over the column)
            return None
        codes, uniques = pd.factorize(series)
        labels = {str(u).strip().lower() for u in np.asarray(uniques, dtype=object).tolist()}
        binary = bool(labels) and labels <= _BINARY_TEXT
        values = np.full(len(series), np.nan)
        if binary:
            values = pd.to_numeric(pd.Series(np.asarray(series.astype(object))), errors="coerce").to_numpy(np.float64)
    if binary:
        n1, n0 = int((values == 1.0).sum()), int((values == 0.0).sum())
        n_missing = int(np.isnan(values).sum())
        empty = f", {n_missing} empty" if n_missing else ""
        raise ComparisonDataError(
            f"the outcome column {column!r} holds only 0 and 1 ({n0} zeros, {n1} ones{empty}), and data sets code "
            "such columns both ways: bradley's convention is 1 = left won, 0 = right won, but an index of the "
            "winner (Copilot Arena's acceptedIndex) is 0 when the left item won. Say which with "
            "outcome_map={1: 'left', 0: 'right'} or outcome_map={0: 'left', 1: 'right'} "
            "(CLI --outcome-map 1=left,0=right or 0=left,1=right"
            + (", and map the empty cells, e.g. '': 'drop' / =drop" if n_missing else "")
            + f"), or name the column one of {list(CONVENTION_OUTCOME_COLUMNS)}.")
    return _refuse_codes_out_of_range(series, column)


def _refuse_codes_out_of_range(series: pd.Series, column: str) -> None:
    if not pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        return
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    outside = (values < 0.0) | (values > 1.0)
    if not outside.any():
        return
    distinct = np.unique(values[~np.isnan(values)])
    if len(distinct) > 10:
        return  # not a code; the validation names the rows
    text, bad_rows = describe_rows(outside)
    shown = [int(v) if float(v).is_integer() else float(v) for v in distinct]
    # up to 10 codes against three meanings: the example pairs the first three
    example = ",".join(f"{v}={m}" for v, m in zip(shown, ("left", "right", "tie"), strict=False))
    raise ComparisonDataError(
        f"the outcome column {column!r} holds the codes {shown} (outside [0, 1] in {text}); numbers are read as "
        "1 = left won, 0 = right won, 0.5 = tie. Say what each code means with outcome_map, e.g. "
        f"outcome_map={dict(zip(shown, ('left', 'right', 'tie'), strict=False))} (CLI --outcome-map {example}).",
        bad_rows)


def _score_outcomes(frame: pd.DataFrame, left_score: str, right_score: str) -> np.ndarray:
    """Win (1), loss (0) or draw (0.5) of the left item from the two score columns."""
    scores = []
    for name in (left_score, right_score):
        raw = frame[name]
        values = pd.to_numeric(pd.Series(raw.to_numpy()), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(values)
        if bad.any():
            text, bad_rows = describe_rows(bad)
            shown = python_values(np.asarray(raw.astype(object))[bad_rows[:5]])
            raise ComparisonDataError(
                f"the score column {name!r} must hold a finite number in every row (a game not yet played?); "
                f"got {shown} in {text}.", bad_rows)
        scores.append(values)
    home, away = scores
    return np.where(home > away, 1.0, np.where(home < away, 0.0, 0.5))


_DROP = "drop"


def parse_outcome_map(text: str) -> dict[str, str]:
    """Parse the command-line form of an outcome map: ``"1=left,2=right,3=tie"``.

    An empty key (``"=drop"``) stands for empty cells. Keys and meanings are
    stripped of surrounding spaces.

    Examples
    --------
    >>> parse_outcome_map("1=left, 2=right,3=tie")
    {'1': 'left', '2': 'right', '3': 'tie'}
    >>> parse_outcome_map("0=left,1=right,=drop")
    {'0': 'left', '1': 'right', '': 'drop'}
    """
    mapping: dict[str, str] = {}
    for part in str(text).split(","):
        key, found, meaning = part.rpartition("=")
        if not found or not meaning.strip():
            raise ComparisonDataError(
                f"an outcome map is VALUE=MEANING pairs separated by commas (e.g. 1=left,2=right,3=tie); "
                f"got {part.strip()!r}.")
        mapping[key.strip()] = meaning.strip()
    return mapping


def _code_key(value: Any) -> str:
    """The text a value of an outcome column (or a key of an outcome map) is matched by."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
        if np.isnan(number):
            return ""
        return str(int(number)) if number.is_integer() else repr(number)
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text.lower()
    if np.isfinite(number):
        return str(int(number)) if number.is_integer() else repr(number)
    return text.lower()


def _meaning(value: Any) -> tuple[float, int] | str:
    if isinstance(value, str):
        text = value.strip().lower()
        if text == _DROP:
            return _DROP
        if text in OUTCOME_LABELS:
            return OUTCOME_LABELS[text]
    elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        if 0.0 <= float(value) <= 1.0:
            return (float(value), TIE_KIND_TIE)
    raise ComparisonDataError(
        f"unknown meaning {value!r} in outcome_map: use left, right, tie, both_bad, drop, another label of "
        "bradley.io.OUTCOME_LABELS, or a number in [0, 1] (the probability that left won).")


def map_outcomes(values: Any, outcome_map: Mapping[Any, Any] | str, column: str = "outcome",
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Outcomes from a column coded by ``outcome_map`` (each value's meaning given explicitly).

    Parameters
    ----------
    values : array-like
        The outcome column.
    outcome_map : dict or str
        Value -> meaning (``left``, ``right``, ``tie``, ``both_bad``, a label of
        :data:`OUTCOME_LABELS`, a number in [0, 1], or ``drop``), or its text
        form ``"1=left,2=right,3=tie"`` (:func:`parse_outcome_map`). Values are
        matched as text: ``1``, ``1.0`` and ``" 1"`` are one key, letter case
        is ignored, and ``""`` (or None) is an empty cell.
    column : str
        Column name, for messages.

    Returns
    -------
    outcome : numpy.ndarray of float64
        1 = left won, 0 = right won, 0.5 = tie (NaN on dropped rows).
    tie_kind : numpy.ndarray of int8
        1 on rows mapped to ``both_bad``.
    drop : numpy.ndarray of bool
        Rows mapped to ``drop``.

    Raises
    ------
    ComparisonDataError
        A value present in the column that the map does not mention (naming the
        values and rows), an unknown meaning, or two keys that read the same
        with different meanings.

    Examples
    --------
    >>> out, kind, drop = map_outcomes([1, 2, 3, None], {1: "left", 2: "right", 3: "tie", "": "drop"})
    >>> out[~drop].tolist(), drop.tolist()
    ([1.0, 0.0, 0.5], [False, False, False, True])
    """
    mapping = parse_outcome_map(outcome_map) if isinstance(outcome_map, str) else outcome_map
    if not isinstance(mapping, Mapping) or not mapping:
        raise ComparisonDataError(f"outcome_map must be a non-empty mapping of value -> meaning, got {outcome_map!r}.")
    meanings: dict[str, tuple[float, int] | str] = {}
    for key, meaning in mapping.items():
        k, m = _code_key(key), _meaning(meaning)
        if k in meanings and meanings[k] != m:
            raise ComparisonDataError(f"outcome_map gives the value {key!r} two meanings ({meanings[k]} and {m}).")
        meanings[k] = m
    series = values if isinstance(values, pd.Series) else pd.Series(_plain(values))
    codes, uniques = pd.factorize(series.reset_index(drop=True))
    keys = [_code_key(u) for u in python_values(uniques)] + [""]
    n = len(keys)
    value_of, kind_of, drop_of = np.full(n, np.nan), np.zeros(n, dtype=np.int8), np.zeros(n, dtype=bool)
    unknown = []
    for j, key in enumerate(keys):
        found = meanings.get(key)
        if found is None:
            if j < n - 1 or bool((codes < 0).any()):  # the last slot is the empty cell, if there is one
                unknown.append(j)
        elif isinstance(found, tuple):
            value_of[j], kind_of[j] = found
        else:  # "drop"
            drop_of[j] = True
    bad = np.isin(codes, [j if j < n - 1 else -1 for j in unknown])
    if bad.any():
        text, bad_rows = describe_rows(bad)
        shown = [python_values(uniques)[j] if j < n - 1 else "" for j in unknown][:5]
        raise ComparisonDataError(
            f"outcome value(s) {shown} in the column {column!r} ({text}) are not in outcome_map "
            f"(keys {list(meanings)[:10]}); give each value a meaning (left, right, tie, both_bad, drop).", bad_rows)
    return value_of[codes], kind_of[codes], drop_of[codes]


def _optional_columns(frame: pd.DataFrame, **given: str | None) -> dict[str, np.ndarray | None]:
    """Optional per-row columns (time, annotator): the named column, or one of exactly the role's name."""
    out: dict[str, np.ndarray | None] = {}
    for role, name in given.items():
        if name is not None and name not in frame.columns:
            raise ComparisonDataError(
                f"missing {role} column {name!r}: the data have columns {list(frame.columns)[:20]}.")
        use = name if name is not None else (role if role in frame.columns else None)
        out[role] = None if use is None else frame[use].to_numpy()
    return out


def _feature_values(frame: pd.DataFrame, features: Sequence[str] | None) -> np.ndarray | None:
    if not features:
        return None
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise ComparisonDataError(
            f"missing feature column(s) {missing}: the data have columns {list(frame.columns)[:20]}.")
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
    codes, uniques = pd.factorize(series)
    # blank strings count as missing: tested once per distinct value, not per row
    blank = np.array([isinstance(u, str) and not u.strip() for u in np.asarray(uniques, dtype=object)], dtype=bool)
    missing = (codes < 0) | (blank[np.maximum(codes, 0)] if len(blank) else False)
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
    win1, win2, tie = roles["win1"], roles["win2"], roles["tie"]
    assert win1 is not None and win2 is not None  # _count_roles refuses a table without them
    names = [win1, win2] + ([tie] if tie is not None else [])
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
    where: str | None = None,
    sep: str | None = None,
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
    where : str, optional
        Keep only the table rows matching a condition (:func:`select_rows`).
    sep : str, optional
        Field separator of a delimited text file.

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
    frame = read_table(source, format, sep=sep) if isinstance(source, (str, os.PathLike)) else _to_pandas(source)
    if len(frame.columns) == 0 or len(frame) == 0:
        raise ComparisonDataError("the count table is empty (zero rows).")
    with _row_source(frame) as rows:
        frame = _filtered(frame, where, rows)
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
                     order: str | None, drop_self_comparisons: bool, rows: RowSource | None = None) -> Comparisons:
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
    if rows is not None:  # messages about a game name the table row it was counted in
        rows.keep(source_row)
    return Comparisons(
        left=lc[source_row], right=rc[source_row], outcome=outcome, items=item_names, weight=weight,
        tie_kind=None, feature_names=tuple(features) if features else (),
        **{name: (None if value is None else value[source_row]) for name, value in per_row.items()},
    )


_WHERE_COMPARE = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
}
_WHERE_ARITHMETIC = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
                     ast.Mod: operator.mod, ast.FloorDiv: operator.floordiv}


_WHERE_NULL_TESTS = {"isna": pd.Series.isna, "isnull": pd.Series.isna, "notna": pd.Series.notna,
                     "notnull": pd.Series.notna}


def parse_where(where: Any) -> tuple[ast.Expression, dict[str, str]]:
    """The syntax tree of a ``where=`` condition and the backquoted column names it replaced.

    Shared by :func:`select_rows` (pandas) and :func:`bradley.aggregate.where_to_sql` (SQL): ``&``/``|``
    read as ``and``/``or``; a backquoted name becomes a placeholder key of the returned dict.
    """
    if not isinstance(where, str) or not where.strip():
        raise ComparisonDataError(f"where= must be a non-empty condition, got {where!r}.")
    names: dict[str, str] = {}

    def quoted(match: Any) -> str:
        key = f"__bradley_column_{len(names)}"
        names[key] = match.group(1)
        return key

    text = re.sub(r"`([^`]*)`", quoted, where.strip())
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
        text = tokenize.untokenize(
            (tok.type, {"&": " and ", "|": " or "}.get(tok.string, tok.string)) if tok.type == tokenize.OP
            else (tok.type, tok.string) for tok in tokens)
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, tokenize.TokenError) as exc:
        detail = exc.msg if isinstance(exc, SyntaxError) else exc
        raise ComparisonDataError(f"could not parse where={where!r}: {detail}.") from None
    return tree, names


def select_rows(frame: Any, where: str) -> np.ndarray:
    """The rows of ``frame`` that satisfy ``where``, as a boolean mask.

    ``where`` is written in pandas query syntax, restricted to a safe subset
    evaluated here (no function calls, attributes or ``@`` variables): column
    names (between backticks when they are not identifiers, as in pandas),
    numbers, strings, ``True``/``False``, lists; comparisons ``== != < <= > >=``
    (chained too: ``1 < x <= 3``); ``in`` / ``not in`` a list; ``and`` /
    ``or`` / ``not`` (also ``&`` / ``|`` / ``~``, with the precedence of
    ``and`` / ``or`` as in pandas); arithmetic ``+ - * / % //``; and the
    calls ``x.isna()``, ``x.notna()``, ``x.str.contains('text')``,
    ``x.str.startswith('text')``, ``x.str.endswith('text')`` (``contains``
    takes a regular expression, as in pandas). A comparison with a missing
    value is False.

    Parameters
    ----------
    frame : DataFrame
        A pandas, polars or pyarrow table.
    where : str
        The condition.

    Returns
    -------
    numpy.ndarray of bool

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"category": ["math", "code", "math"], "turns": [1, 3, 2]})
    >>> select_rows(frame, "category == 'math' and turns > 1").tolist()
    [False, False, True]
    >>> select_rows(frame, "category in ['code', 'poetry'] | turns == 1").tolist()
    [True, True, False]
    """
    frame = _to_pandas(frame)
    tree, names = parse_where(where)
    columns = {str(c): c for c in frame.columns}

    def fail(detail: str) -> ComparisonDataError:
        return ComparisonDataError(
            f"where={where!r}: {detail}. Conditions may use column names (`in backticks` when they are not "
            "identifiers), constants and lists, == != < <= > >=, in / not in, and / or / not (& | ~), + - * / % //, "
            ".isna(), .notna() and .str.contains / startswith / endswith('text').")

    def mask(value: Any) -> np.ndarray:
        if isinstance(value, (bool, np.bool_)):
            return np.full(len(frame), bool(value))
        series = value if isinstance(value, pd.Series) else pd.Series(value)
        if not (pd.api.types.is_bool_dtype(series.dtype)):
            raise fail("the condition (or a part joined by and / or / not) is not true/false for each row")
        return np.asarray(series.fillna(False).to_numpy(dtype=bool, na_value=False), dtype=bool)

    def constant(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
            value: Any = node.operand.value  # any constant the user wrote; minus on a non-number raises as before
            return -value
        raise fail("lists may hold constants only")

    def evaluate(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return evaluate(node.body)
        if isinstance(node, ast.BoolOp):
            parts = [mask(evaluate(v)) for v in node.values]
            return functools.reduce(np.logical_and if isinstance(node.op, ast.And) else np.logical_or, parts)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, (ast.Not, ast.Invert)):
                return ~mask(evaluate(node.operand))
            if isinstance(node.op, ast.USub):
                return -evaluate(node.operand)
            if isinstance(node.op, ast.UAdd):
                return evaluate(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _WHERE_ARITHMETIC:
            try:
                return _WHERE_ARITHMETIC[type(node.op)](evaluate(node.left), evaluate(node.right))
            except TypeError as exc:
                raise fail(f"arithmetic on non-numbers ({exc})") from None
        if isinstance(node, ast.Compare):
            result, left = None, evaluate(node.left)
            for op, comparator in zip(node.ops, node.comparators, strict=True):  # one comparator per operator
                if isinstance(op, (ast.In, ast.NotIn)):
                    if not isinstance(comparator, (ast.List, ast.Tuple, ast.Set)):
                        raise fail("'in' needs a list of values, e.g. x in ['a', 'b']")
                    choices = [constant(e) for e in comparator.elts]
                    if not isinstance(left, pd.Series):
                        raise fail("'in' tests a column")
                    part = left.isin(choices).to_numpy(dtype=bool)
                    part = ~part if isinstance(op, ast.NotIn) else part
                    right: Any = None
                elif type(op) in _WHERE_COMPARE:
                    right = evaluate(comparator)
                    try:
                        part = mask(_WHERE_COMPARE[type(op)](left, right))
                    except TypeError as exc:
                        raise fail(f"cannot compare these values ({exc})") from None
                else:
                    raise fail(f"the operator {type(op).__name__} is not supported")
                result = part if result is None else result & part
                left = right
            return result
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and not node.keywords:
            method, owner = node.func.attr, node.func.value
            if method in _WHERE_NULL_TESTS and not node.args:
                return _WHERE_NULL_TESTS[method](evaluate(owner))
            if (method in ("contains", "startswith", "endswith") and isinstance(owner, ast.Attribute)
                    and owner.attr == "str" and len(node.args) == 1 and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)):
                column = evaluate(owner.value)
                if not isinstance(column, pd.Series):
                    raise fail(f".str.{method}() applies to a column")
                text_column = column.astype(object).where(column.notna(), None).astype("string")
                if method == "contains":  # a regular expression, as in pandas
                    return text_column.str.contains(node.args[0].value)
                return getattr(text_column.str, method)(node.args[0].value)
            raise fail("the only calls allowed are column.isna(), column.notna() and "
                       "column.str.contains / startswith / endswith('text')")
        if isinstance(node, ast.Name):
            name = names.get(node.id, node.id)
            if name not in columns:
                raise fail(f"no column {name!r}; the data have columns {list(columns)[:20]}")
            column = frame[columns[name]].reset_index(drop=True)
            return column
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            return [constant(e) for e in node.elts]
        raise fail(f"{type(node).__name__} is not supported")

    return mask(evaluate(tree))


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
