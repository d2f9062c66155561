"""The central data types: :class:`Comparisons` and :class:`PairCounts`.

``Comparisons`` holds one row per judged pair as columnar numpy arrays (item
codes into ``items``). ``PairCounts`` reduces them to the sufficient
statistics of every model without row-level covariates: for each unordered pair
that was compared, the weighted wins each way and the ties. Aggregation is
vectorised (``np.bincount`` / hashing), never a Python loop over rows.

Outcome convention, everywhere in bradley: ``1.0`` means *left* won, ``0.0``
means *right* won, exactly ``0.5`` is a tie, and any other value in ``(0, 1)``
is a soft label (the probability that left wins).
"""

from __future__ import annotations

import contextvars
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse import csgraph

from bradley.errors import ComparisonDataError, DataWarning, MLEDoesNotExistError

__all__ = [
    "Comparisons",
    "PairCounts",
    "encode_items",
    "describe_rows",
    "python_values",
    "mle_existence_problem",
    "check_mle_exists",
    "drop_self_comparisons_from",
    "RowSource",
    "rows_from",
    "WEIGHT_RANGE",
]

# Bincount over the n*n pair keys is fastest while the key space is small next
# to the number of rows (and below a memory cap); beyond it keys are sorted.
_DENSE_KEY_LIMIT = 1 << 24
_DENSE_KEY_LIMIT_MIN = 1 << 16

TIE_KIND_TIE = 0
TIE_KIND_BOTH_BAD = 1


@dataclass
class RowSource:
    """Where the rows being validated came from, so that messages can name them.

    Errors and warnings name rows through :func:`describe_rows`. While a
    ``RowSource`` is active (see :func:`rows_from`) the row positions of the
    arrays being checked are translated: through ``positions`` (current row ->
    data row, after a ``where=`` filter or dropped rows) and, for files,
    ``line_of`` (data row -> 1-based line in the file, the header being line 1),
    so a message says ``line 7 of 'votes.csv'``. Without a source, or for a
    data frame, the message says ``row 5 (0-based)``: the position among the
    data rows.

    Attributes
    ----------
    name : str or None
        The file name (None for a data frame or arrays).
    line_of : callable or None
        Returns, when first needed, an array mapping each data row to its
        1-based file line, or None when the format has no lines (Parquet, JSON).
    n_rows : int or None
        Number of data rows read from the source (to check the map still fits).
    positions : numpy.ndarray or None
        The data row of each current row (None = the identity).
    """

    name: str | None = None
    line_of: Callable[[], np.ndarray | None] | None = None
    n_rows: int | None = None
    positions: np.ndarray | None = None
    _lines: Any = field(default=None, repr=False)

    def keep(self, mask_or_rows: np.ndarray) -> None:
        """Rows were filtered or reordered: the current rows are now ``old_rows[mask_or_rows]``."""
        arr = np.asarray(mask_or_rows)
        base = np.arange(len(arr)) if (self.positions is None and arr.dtype == bool) else self.positions
        if base is None:
            self.positions = arr.astype(np.int64)
        else:
            self.positions = np.asarray(base)[arr]

    def data_rows(self, rows: np.ndarray) -> np.ndarray:
        """Data rows (0-based, before filtering) of current row positions."""
        rows = np.asarray(rows, dtype=np.int64)
        return rows if self.positions is None else np.asarray(self.positions)[rows]

    def lines(self) -> np.ndarray | None:
        """The data row -> file line map, computed once (None when unknown or stale)."""
        if self._lines is None:
            found = None
            if self.line_of is not None:
                try:
                    found = self.line_of()
                except Exception:  # line numbers are a courtesy: never fail a message over them
                    found = None
            if found is not None and self.n_rows is not None and len(found) != self.n_rows:
                found = None
            self._lines = (found,)
        return self._lines[0]


_ROW_SOURCE: contextvars.ContextVar[RowSource | None] = contextvars.ContextVar("bradley_row_source", default=None)


@contextmanager
def rows_from(source: RowSource) -> Iterator[RowSource]:
    """Name rows by ``source`` in every message raised or warned inside the block.

    On the way out of the block, a :class:`~bradley.errors.ComparisonDataError`
    gets its ``rows`` translated to data rows (0-based, before any filtering).

    Examples
    --------
    >>> with rows_from(RowSource(name="votes.csv", line_of=lambda: np.array([2, 3, 5]))):
    ...     describe_rows(np.array([False, False, True]))[0]
    "line 5 of 'votes.csv'"
    """
    token = _ROW_SOURCE.set(source)
    try:
        yield source
    except ComparisonDataError as exc:
        if exc.rows:
            exc.rows = [int(r) for r in source.data_rows(np.asarray(exc.rows))]
        raise
    finally:
        _ROW_SOURCE.reset(token)


def describe_rows(mask_or_rows: np.ndarray, limit: int = 10) -> tuple[str, list[int]]:
    """Return a short text naming the first offending rows, and those rows.

    The text counts rows from 0 and says so (``rows 1, 2 (0-based)``); while a
    :class:`RowSource` for a file is active it names file lines instead
    (``lines 3, 4 of 'votes.csv'``, the header being line 1). The returned
    list always holds the positions in the arrays being checked.

    Parameters
    ----------
    mask_or_rows : numpy.ndarray
        A boolean mask over rows, or an array of row positions.
    limit : int
        How many rows to name at most.

    Examples
    --------
    >>> describe_rows(np.array([False, True, True]))
    ('rows 1, 2 (0-based)', [1, 2])
    """
    arr = np.asarray(mask_or_rows)
    rows = np.flatnonzero(arr) if arr.dtype == bool else arr.astype(np.int64)
    shown = [int(r) for r in rows[:limit]]
    more = f" (and {len(rows) - limit} more)" if len(rows) > limit else ""
    source = _ROW_SOURCE.get()
    numbers, unit, where = shown, "row", " (0-based)"
    if source is not None:
        numbers = [int(r) for r in source.data_rows(np.asarray(shown, dtype=np.int64))]
        lines = source.lines() if source.name is not None else None
        if lines is not None:
            numbers, unit, where = [int(x) for x in lines[numbers]], "line", f" of {source.name!r}"
        elif source.name is not None:
            where = f" (0-based data rows of {source.name!r})"
    word = unit if len(rows) == 1 else unit + "s"
    text = f"{word} " + ", ".join(str(r) for r in numbers) + more + where
    return text, shown


def python_values(values: Any) -> list[Any]:
    """Plain Python values (``np.str_('x')`` -> ``'x'``) for readable messages."""
    return [v.item() if isinstance(v, np.generic) else v for v in np.asarray(values, dtype=object).tolist()]


def _sorted_union(*uniques: np.ndarray) -> np.ndarray:
    """Union of item-name arrays, sorted when the names are mutually comparable."""
    joined = pd.unique(np.concatenate([np.asarray(u, dtype=object) for u in uniques]))
    try:
        return np.asarray(sorted(joined), dtype=object)
    except TypeError:  # mixed, unorderable names: keep first-seen order
        return np.asarray(joined, dtype=object)


def encode_items(
    left: Any, right: Any, items: Any | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Turn two columns of item labels into integer codes into a shared item list.

    Values are always labels, whatever their type: integer ids such as
    ``[17, 3000000000]`` are item names, not positions (codes are taken only by
    :meth:`Comparisons.from_codes`). When one side holds integers and the other
    strings (a file whose left column happens to hold only digits), the
    integers are read as their text, so ``1`` and ``"1"`` are one item.
    Spaces around string labels are removed (``" gpt-4"`` and ``"gpt-4"`` are
    one item, with a :class:`~bradley.errors.DataWarning` naming the labels
    merged that way); a label of spaces only is a missing name.

    Parameters
    ----------
    left, right : array-like
        Item labels (strings, integers or any hashable).
    items : array-like, optional
        The item list to encode against. Labels outside it are an error. When
        omitted, the items are the sorted union of the labels seen.

    Returns
    -------
    left_codes, right_codes : numpy.ndarray of int64
    items : numpy.ndarray of object

    Examples
    --------
    >>> l, r, items = encode_items(["b", "a"], ["a", "c"])
    >>> l.tolist(), r.tolist(), items.tolist()
    ([1, 0], [0, 2], ['a', 'b', 'c'])
    >>> encode_items([7, 3], [3, 3_000_000_000])[2].tolist()  # integer ids are labels
    [3, 7, 3000000000]
    """
    left_arr = _as_1d(left)
    right_arr = _as_1d(right)
    if len(left_arr) != len(right_arr):
        raise ComparisonDataError(
            f"left and right have different lengths ({len(left_arr)} and {len(right_arr)})."
        )
    left_arr, right_arr = _common_label_type(left_arr, right_arr)

    if items is not None:
        item_index = pd.Index(_strip_labels(np.asarray(python_values(items), dtype=object)))
        if not item_index.is_unique:
            dup = item_index[item_index.duplicated()].tolist()[:5]
            raise ComparisonDataError(f"the item list has duplicate names: {dup}.")
        lc = _codes_against(left_arr, item_index)
        rc = _codes_against(right_arr, item_index)
        unknown = (lc < 0) | (rc < 0)
        if unknown.any():
            text, rows = describe_rows(unknown)
            names = pd.unique(np.concatenate([np.asarray(left_arr, dtype=object)[lc < 0],
                                              np.asarray(right_arr, dtype=object)[rc < 0]]))
            raise ComparisonDataError(
                f"items not in the given item list in {text}: {python_values(names[:5])}.", rows
            )
        return lc, rc, np.asarray(item_index, dtype=object)

    # Factorize each side on its own (no 2n concatenation), then merge the
    # small unique sets: hashing the labels once is the whole cost.
    lcodes, luniq = pd.factorize(left_arr)
    rcodes, runiq = pd.factorize(right_arr)
    lnames, rnames = _strip_labels(_label_values(luniq)), _strip_labels(_label_values(runiq))
    # code -1 (NaN) and labels that are only spaces are missing names
    missing = _empty_labels(lnames)[lcodes] | _empty_labels(rnames)[rcodes]
    if missing.any():
        text, rows = describe_rows(missing)
        raise ComparisonDataError(f"missing item name (empty/NaN) in {text}.", rows)
    _warn_merged_labels(np.concatenate([_label_values(luniq), _label_values(runiq)]),
                        np.concatenate([lnames, rnames]))
    all_items = _sorted_union(lnames, rnames)
    index = pd.Index(all_items)
    lmap = index.get_indexer(lnames).astype(np.int64)
    rmap = index.get_indexer(rnames).astype(np.int64)
    return lmap[lcodes], rmap[rcodes], all_items


def _strip_labels(labels: np.ndarray) -> np.ndarray:
    """Unique labels with the spaces around string labels removed (``' gpt-4'`` is ``'gpt-4'``)."""
    return np.asarray([v.strip() if isinstance(v, str) else v for v in labels.tolist()], dtype=object)


def _empty_labels(names: np.ndarray) -> np.ndarray:
    """Per unique label: is it an empty string; one more True at the end for the NaN code -1."""
    return np.asarray([isinstance(v, str) and v == "" for v in names.tolist()] + [True], dtype=bool)


def _warn_merged_labels(raw: np.ndarray, stripped: np.ndarray) -> None:
    """Warn when labels that differ only by surrounding spaces became one item (the data are changed)."""
    raw_unique = pd.unique(raw)
    if len(raw_unique) == len(pd.unique(stripped)):
        return
    groups: dict[Any, set[Any]] = {}
    for before, after in zip(raw.tolist(), stripped.tolist(), strict=True):  # stripped is raw, label by label
        groups.setdefault(after, set()).add(before)
    merged = {k: sorted(v, key=repr) for k, v in groups.items() if len(v) > 1}
    shown = "; ".join(f"{v} -> {k!r}" for k, v in list(merged.items())[:3])
    warnings.warn(
        f"{len(merged)} item name(s) differed only by surrounding spaces and were merged ({shown}): "
        "spaces around item names are removed.", DataWarning, stacklevel=4)


def _label_values(values: Any) -> np.ndarray:
    """Unique labels as an object array of plain Python values (ints stay ints, not numpy scalars)."""
    return np.asarray(python_values(values), dtype=object)


_OBJECT_DTYPE = np.dtype(object)


def _is_string_array(values: Any) -> bool:
    dtype = getattr(values, "dtype", None)
    if dtype is None:
        return False
    # equality, not identity: ``dtype`` is a dtype instance, equal to the object dtype for object arrays
    if pd.api.types.is_string_dtype(dtype) and dtype != _OBJECT_DTYPE:
        return True
    if dtype == _OBJECT_DTYPE:
        sample = pd.Series(values[:1000] if len(values) else values, dtype=object).dropna()
        return bool(len(sample)) and all(isinstance(v, str) for v in sample)
    return False


def _common_label_type(left: Any, right: Any) -> tuple[Any, Any]:
    """Integers on one side and strings on the other: read the integers as text (``1`` and ``"1"`` are one item)."""
    if _is_integer_array(left) and _is_string_array(right):
        return _as_text(left), right
    if _is_integer_array(right) and _is_string_array(left):
        return left, _as_text(right)
    return left, right


def _as_text(values: Any) -> np.ndarray:
    codes, uniq = pd.factorize(values)
    text = np.asarray([str(v) for v in python_values(uniq)] + [None], dtype=object)
    return text[codes]


def _codes_against(values: Any, index: pd.Index) -> np.ndarray:
    codes, uniq = pd.factorize(values)
    mapping = index.get_indexer(_strip_labels(_label_values(uniq))).astype(np.int64)
    out = np.full(len(codes), -1, dtype=np.int64)
    ok = codes >= 0
    out[ok] = mapping[codes[ok]]
    return out


def _as_1d(values: Any) -> Any:
    """Keep pandas/arrow arrays as they are (fast hashing); make the rest numpy."""
    if isinstance(values, (pd.Series, pd.Index, pd.Categorical, pd.api.extensions.ExtensionArray)):
        return values
    mod = type(values).__module__
    if mod.startswith("pyarrow"):
        return pd.Series(values.to_pandas()) if hasattr(values, "to_pandas") else values
    if mod.startswith("polars"):
        return values.to_pandas()
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ComparisonDataError(f"expected a one-dimensional column, got shape {arr.shape}.")
    return arr


def _is_integer_array(values: Any) -> bool:
    dtype = getattr(values, "dtype", None)
    return dtype is not None and pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def _codes(values: Any, name: str) -> np.ndarray:
    """Integer item codes (integer-valued floats accepted); an error names rows that are not codes."""
    arr = np.asarray(_as_1d(values))
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
                                 or (arr.dtype == object and len(arr) == 0)):
        raise ComparisonDataError(
            f"{name}: item codes must be integers, got dtype {arr.dtype}; for item names use Comparisons.from_arrays.")
    with np.errstate(invalid="ignore"):
        as_float = arr.astype(np.float64) if arr.dtype.kind != "i" and arr.dtype.kind != "u" else None
    if as_float is not None:
        bad = ~np.isfinite(as_float) | (as_float != np.round(as_float))
        if bad.any():
            text, rows = describe_rows(bad)
            raise ComparisonDataError(f"{name}: item codes must be whole numbers; not in {text}.", rows)
    codes = arr.astype(np.int64, copy=False)  # int64 input is used as is: no copy, no page faults
    if codes.min(initial=0) < 0:  # a reduction first; the row mask only to name the rows
        text, rows = describe_rows(codes < 0)
        raise ComparisonDataError(f"{name}: negative item codes in {text}.", rows)
    return codes


def _float_column(name: str, values: Any, n: int) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(arr) != n:
        raise ComparisonDataError(f"{name} has {len(arr)} entries but there are {n} comparisons.")
    return arr


#: The fields of :class:`Comparisons` that hold one value per row.
PER_ROW_FIELDS = ("left", "right", "outcome", "weight", "time", "annotator", "tie_kind", "features", "order")


@dataclass(frozen=True, eq=False)
class Comparisons:
    """Pairwise comparisons, one row per judged pair, as columnar arrays.

    Build it with :meth:`from_arrays` (item labels), :meth:`from_codes` (integer codes)
    or :func:`bradley.read_comparisons`.

    Attributes
    ----------
    left, right : numpy.ndarray of int64
        Codes into ``items`` of the two compared items.
    outcome : numpy.ndarray of float64
        1.0 = left won, 0.0 = right won, 0.5 = tie, other values in (0, 1) =
        soft labels (probability that left wins).
    items : numpy.ndarray of object
        Item names; ``items[code]`` is the name of a code.
    weight : numpy.ndarray of float64 or None
        Non-negative row weights (None means 1 for every row).
    time, annotator : numpy.ndarray or None
        Optional per-row time stamps and annotator (judge) labels.
    tie_kind : numpy.ndarray of int8 or None
        For tied rows, 0 = ordinary tie and 1 = "both bad" (the arena's
        ``tie (bothbad)``). None when the input had no such distinction.
    features : numpy.ndarray of float64, shape (n_comparisons, k), or None
        Comparison-level covariates entering the log-odds of left winning
        (e.g. the length difference left - right, for style control).
    feature_names : tuple of str
        Names of the feature columns.
    order : numpy.ndarray of float64 or None
        Per-row position indicator for order (home / first-position) effects:
        1 = left had the advantage (home, shown first), -1 = right had it
        (swapped), 0 = neutral venue. None means every row is ``1`` (left is
        always the first-shown / home item), which is how order effects are
        fitted when no indicator is given.
    """

    left: np.ndarray
    right: np.ndarray
    outcome: np.ndarray
    items: np.ndarray
    weight: np.ndarray | None = None
    time: np.ndarray | None = None
    annotator: np.ndarray | None = None
    tie_kind: np.ndarray | None = None
    features: np.ndarray | None = None
    feature_names: tuple[str, ...] = ()
    order: np.ndarray | None = None

    def __post_init__(self) -> None:
        _validate_comparisons(self)

    @classmethod
    def from_arrays(
        cls,
        left: Any,
        right: Any,
        outcome: Any,
        weight: Any | None = None,
        *,
        items: Any | None = None,
        time: Any | None = None,
        annotator: Any | None = None,
        tie_kind: Any | None = None,
        features: Any | None = None,
        feature_names: Any | None = None,
        order: Any | None = None,
        drop_self_comparisons: bool = False,
    ) -> Comparisons:
        """Build comparisons from arrays of item labels and outcomes.

        ``left`` and ``right`` are labels whatever their type: integer ids
        such as ``[1, 2, 3]`` become the items ``1, 2, 3`` (never positions;
        use :meth:`from_codes` for codes ``0..n-1`` into an item list).

        Parameters
        ----------
        left, right : array-like
            Item labels (strings, integers or any hashable).
        outcome : array-like of float
            1 = left won, 0 = right won, 0.5 = tie, or a probability in (0, 1).
        weight : array-like of float, optional
            Non-negative row weights.
        items : array-like, optional
            Fix the item list (and its order); also lets items appear that were
            never compared. Every label must be in it.
        time, annotator, tie_kind : array-like, optional
            Per-row time stamps, annotator labels, and tie kinds (0/1).
        order : array-like of {1, 0, -1}, optional
            Who had the order (home / first-position) advantage in each row:
            1 = left, -1 = right, 0 = neither (neutral).
        drop_self_comparisons : bool
            Drop rows that compare an item with itself (and warn with their
            count) instead of raising an error.

        Examples
        --------
        >>> c = Comparisons.from_arrays(["a", "a", "b"], ["b", "c", "c"], [1, 1, 0.5])
        >>> c.n_comparisons, c.items.tolist()
        (3, ['a', 'b', 'c'])
        >>> Comparisons.from_arrays([1, 2], [2, 3], [1, 1]).items.tolist()  # integer ids are labels
        [1, 2, 3]
        """
        lc, rc, item_names = encode_items(left, right, items)
        return cls._from_encoded(lc, rc, item_names, outcome, weight, time=time, annotator=annotator,
                                 tie_kind=tie_kind, features=features, feature_names=feature_names, order=order,
                                 drop_self_comparisons=drop_self_comparisons, keep_items=items is not None)

    @classmethod
    def from_codes(
        cls,
        left: Any,
        right: Any,
        outcome: Any,
        weight: Any | None = None,
        *,
        items: Any | None = None,
        time: Any | None = None,
        annotator: Any | None = None,
        tie_kind: Any | None = None,
        features: Any | None = None,
        feature_names: Any | None = None,
        order: Any | None = None,
        drop_self_comparisons: bool = False,
    ) -> Comparisons:
        """Build comparisons from integer codes ``0..n-1`` into an item list.

        The constructor for data already encoded (simulations, arrays built by
        other code); labels from files and frames go through
        :meth:`from_arrays` or :func:`bradley.read_comparisons`.

        Parameters
        ----------
        left, right : array-like of int
            Codes of the compared items, ``0 <= code < n_items``.
        outcome, weight, time, annotator, tie_kind, features, feature_names, order, drop_self_comparisons
            As in :meth:`from_arrays`.
        items : int or array-like, optional
            The item names (``items[code]`` names a code), or the number of
            items (names ``0..n-1``). Default: ``max code + 1`` items named by
            their codes.

        Examples
        --------
        >>> c = Comparisons.from_codes([0, 2], [2, 1], [1, 0], items=["a", "b", "c"])
        >>> c.items[c.left].tolist()
        ['a', 'c']
        >>> Comparisons.from_codes([0, 1], [1, 2], [1, 1], items=4).items.tolist()  # item 3 never compared
        [0, 1, 2, 3]
        """
        lc = _codes(left, "left")
        rc = _codes(right, "right")
        if len(lc) != len(rc):
            raise ComparisonDataError(f"left and right have different lengths ({len(lc)} and {len(rc)}).")
        top = int(max(lc.max(initial=-1), rc.max(initial=-1))) + 1
        if items is None:
            item_names = np.arange(top, dtype=np.int64).astype(object)
        elif isinstance(items, (int, np.integer)) and not isinstance(items, bool):
            item_names = np.arange(int(items), dtype=np.int64).astype(object)
        else:
            item_names = np.asarray(python_values(items), dtype=object)
            if not pd.Index(item_names).is_unique:
                index = pd.Index(item_names)
                raise ComparisonDataError(
                    f"the item list has duplicate names: {index[index.duplicated()].tolist()[:5]}.")
        if top > len(item_names):  # the mask only when some code is out of range
            bad = (lc >= len(item_names)) | (rc >= len(item_names))
            text, rows = describe_rows(bad)
            raise ComparisonDataError(
                f"item codes out of range in {text}: codes must be below the number of items ({len(item_names)}).",
                rows)
        return cls._from_encoded(lc, rc, item_names, outcome, weight, time=time, annotator=annotator,
                                 tie_kind=tie_kind, features=features, feature_names=feature_names, order=order,
                                 drop_self_comparisons=drop_self_comparisons, keep_items=items is not None)

    @classmethod
    def _from_encoded(cls, lc: np.ndarray, rc: np.ndarray, item_names: np.ndarray, outcome: Any, weight: Any,
                      *, time: Any, annotator: Any, tie_kind: Any, features: Any, feature_names: Any, order: Any,
                      drop_self_comparisons: bool, keep_items: bool) -> Comparisons:
        n = len(lc)
        out = _float_column("outcome", outcome, n)
        w = None if weight is None else _float_column("weight", weight, n)
        t = None if time is None else np.asarray(time).reshape(-1)
        a = None if annotator is None else np.asarray(annotator).reshape(-1)
        tk = None if tie_kind is None else np.asarray(tie_kind, dtype=np.int8).reshape(-1)
        feats = None if features is None else np.asarray(features, dtype=np.float64).reshape(n, -1)
        names = tuple(feature_names) if feature_names is not None else (
            tuple(f"x{k}" for k in range(feats.shape[1])) if feats is not None else ()
        )
        o = None if order is None else _float_column("order", order, n)
        comparisons = cls.__new__(cls)
        fields = dict(left=lc, right=rc, outcome=out, items=item_names, weight=w, time=t, annotator=a, tie_kind=tk,
                      features=feats, feature_names=names, order=o)
        if drop_self_comparisons:
            fields = drop_self_comparisons_from(fields, keep_items=keep_items)
        for name, value in fields.items():
            object.__setattr__(comparisons, name, value)
        comparisons.__post_init__()
        return comparisons

    @property
    def n_comparisons(self) -> int:
        """Number of rows."""
        return int(len(self.left))

    @property
    def n_items(self) -> int:
        """Number of items (compared or not)."""
        return int(len(self.items))

    def __len__(self) -> int:
        return self.n_comparisons

    def __repr__(self) -> str:
        return f"Comparisons(n_comparisons={self.n_comparisons}, n_items={self.n_items})"

    def take(self, rows: Any) -> Comparisons:
        """The comparisons at ``rows`` (indices or a boolean mask), every per-row field kept, items unchanged."""
        rows = np.asarray(rows)
        fields: dict[str, Any] = {
            name: (None if getattr(self, name) is None else getattr(self, name)[rows]) for name in PER_ROW_FIELDS}
        return Comparisons(items=self.items, feature_names=self.feature_names, **fields)

    def pair_counts(self) -> PairCounts:
        """Aggregate to :class:`PairCounts` (weighted wins each way and ties per pair)."""
        return PairCounts.from_comparisons(self)

    def to_frame(self) -> pd.DataFrame:
        """Return the comparisons as a DataFrame with item names."""
        frame = pd.DataFrame(
            {"left": self.items[self.left], "right": self.items[self.right], "outcome": self.outcome}
        )
        for name in ("weight", "time", "annotator", "tie_kind", "order"):
            value = getattr(self, name)
            if value is not None:
                frame[name] = value
        if self.features is not None:
            for k, name in enumerate(self.feature_names):
                frame[name] = self.features[:, k]
        return frame


def drop_self_comparisons_from(fields: dict[str, Any], keep_items: bool = False) -> dict[str, Any]:
    """Remove rows with ``left == right`` from a dict of Comparisons fields.

    Warns with :class:`~bradley.errors.DataWarning` giving the count. Items seen
    only in dropped rows are removed too unless ``keep_items``.
    """
    left, right = np.asarray(fields["left"]), np.asarray(fields["right"])
    same = left == right
    n_same = int(same.sum())
    if n_same == 0:
        return fields
    keep = ~same
    out = {k: (v[keep] if (v is not None and k not in ("items", "feature_names")) else v) for k, v in fields.items()}
    text, _ = describe_rows(same)
    message = f"dropped {n_same} of {len(left)} comparisons of an item with itself ({text})"
    if not keep_items:
        used = np.zeros(len(fields["items"]), dtype=bool)
        used[out["left"]] = True
        used[out["right"]] = True
        if not used.all():
            remap = np.cumsum(used) - 1
            out["left"], out["right"] = remap[out["left"]], remap[out["right"]]
            message += f"; {int((~used).sum())} item(s) left without comparisons were removed"
            out["items"] = np.asarray(fields["items"], dtype=object)[used]
    warnings.warn(message + ".", DataWarning, stacklevel=3)
    return out


def _validate_comparisons(c: Comparisons) -> None:
    object.__setattr__(c, "left", np.ascontiguousarray(c.left, dtype=np.int64))
    object.__setattr__(c, "right", np.ascontiguousarray(c.right, dtype=np.int64))
    object.__setattr__(c, "outcome", np.ascontiguousarray(c.outcome, dtype=np.float64))
    object.__setattr__(c, "items", np.asarray(c.items, dtype=object))
    n = len(c.left)
    if n == 0:
        raise ComparisonDataError("the data hold no comparisons (zero rows).")
    for name in ("right", "outcome", "weight", "time", "annotator", "tie_kind", "features", "order"):
        value = getattr(c, name)
        if value is not None and len(value) != n:
            raise ComparisonDataError(f"{name} has {len(value)} entries but left has {n}.")
    n_items = len(c.items)
    # Cheap reductions first; the row masks are built only to report a problem.
    if min(c.left.min(), c.right.min()) < 0 or max(c.left.max(), c.right.max()) >= n_items:
        bad_code = (c.left < 0) | (c.left >= n_items) | (c.right < 0) | (c.right >= n_items)
        text, rows = describe_rows(bad_code)
        raise ComparisonDataError(f"item codes outside 0..{n_items - 1} in {text}.", rows)
    self_pair = c.left == c.right
    if self_pair.any():
        text, rows = describe_rows(self_pair)
        name = c.items[c.left[rows[0]]]
        raise ComparisonDataError(
            f"an item is compared with itself in {text} (first: {name!r} vs {name!r}); "
            "remove these rows, or pass drop_self_comparisons=True (CLI: --drop-self-comparisons).",
            rows,
        )
    lowest, highest = c.outcome.min(), c.outcome.max()  # NaN propagates and fails both tests
    if not (lowest >= 0.0 and highest <= 1.0):
        bad_outcome = ~((c.outcome >= 0.0) & (c.outcome <= 1.0))
        text, rows = describe_rows(bad_outcome)
        shown = c.outcome[rows[:3]].tolist()
        raise ComparisonDataError(
            f"outcomes must lie in [0, 1] (1 = left wins, 0 = right wins, 0.5 = tie); "
            f"got {shown} in {text}.",
            rows,
        )
    if c.weight is not None:
        w = np.ascontiguousarray(c.weight, dtype=np.float64)
        object.__setattr__(c, "weight", w)
        if not (w.min() >= 0.0 and np.isfinite(w.max())):
            bad_weight = ~(np.isfinite(w) & (w >= 0.0))
            text, rows = describe_rows(bad_weight)
            shown = w[rows[:3]].tolist()
            raise ComparisonDataError(
                f"weights must be finite and non-negative; got {shown} in {text}.", rows
            )
        _check_weight_range(w)
    if c.order is not None:
        o = np.ascontiguousarray(c.order, dtype=np.float64)
        object.__setattr__(c, "order", o)
        bad_order = ~np.isin(o, (-1.0, 0.0, 1.0))
        if bad_order.any():
            text, rows = describe_rows(bad_order)
            raise ComparisonDataError(
                f"order must be 1 (left had the advantage), -1 (right had it) or 0 (neutral); "
                f"got {o[rows[:3]].tolist()} in {text}.", rows)
    if c.tie_kind is not None:
        object.__setattr__(c, "tie_kind", np.ascontiguousarray(c.tie_kind, dtype=np.int8))
    if c.features is not None:
        f = np.asarray(c.features, dtype=np.float64)
        f = f.reshape(n, -1)
        object.__setattr__(c, "features", f)
        bad = ~np.isfinite(f).all(axis=1)  # f is 2-d: one flag per row, an array
        if bad.any():
            text, rows = describe_rows(np.asarray(bad))
            raise ComparisonDataError(f"features must be finite; NaN or infinite values in {text}.", rows)
        names = tuple(c.feature_names) if c.feature_names else tuple(f"x{k}" for k in range(f.shape[1]))
        if len(names) != f.shape[1]:
            raise ComparisonDataError(f"{len(names)} feature names for {f.shape[1]} feature columns.")
        object.__setattr__(c, "feature_names", names)


#: Smallest and largest positive row weight. Variances (sandwich, bootstrap)
#: square the weights, and squares of weights outside this range overflow to
#: infinity or sink below float64's normal numbers; zero weights are allowed.
#: Weights far apart inside the range are kept as given: the maximum-likelihood
#: scores of such data are exact (scores +-30 and +-50 at weight ratios e^60 and
#: e^100 are regression tests), however large they are.
WEIGHT_RANGE = (1e-150, 1e150)


def _check_weight_range(w: np.ndarray) -> None:
    """Refuse positive weights outside WEIGHT_RANGE, or whose total overflows."""
    positive = w > 0
    if not positive.any():
        return  # nothing to compare (the models say what is missing)
    lo_limit, hi_limit = WEIGHT_RANGE
    if float(w.max()) > hi_limit or float(w[positive].min()) < lo_limit or not np.isfinite(w.sum()):
        bad = positive & ((w > hi_limit) | (w < lo_limit))
        text, rows = describe_rows(bad)
        raise ComparisonDataError(
            f"weights must lie between {lo_limit:g} and {hi_limit:g} (or be 0): float64 cannot hold the squares that "
            f"variances need; got {w[rows[:3]].tolist()} in {text}. Weights only count comparisons: if they are not "
            "frequencies, divide them all by a common number (e.g. their mean); a value this large is often "
            "a parsing slip.", rows)


@dataclass(frozen=True, eq=False)
class PairCounts:
    """Sufficient statistics of pairwise comparisons: one row per compared pair.

    Pairs are unordered and stored with ``first < second`` (codes into
    ``items``), sorted by ``(first, second)``.

    Attributes
    ----------
    first, second : numpy.ndarray of int64
        Item codes of each pair, ``first < second``.
    wins_first, wins_second : numpy.ndarray of float64
        Weighted wins of ``first`` over ``second`` and vice versa. A soft
        outcome ``p`` adds ``w * p`` to one side and ``w * (1 - p)`` to the other.
    ties : numpy.ndarray of float64
        Weighted ties (outcome exactly 0.5).
    items : numpy.ndarray of object
        Item names.
    """

    first: np.ndarray
    second: np.ndarray
    wins_first: np.ndarray
    wins_second: np.ndarray
    ties: np.ndarray
    items: np.ndarray

    @property
    def n_items(self) -> int:
        """Number of items."""
        return int(len(self.items))

    @property
    def n_pairs(self) -> int:
        """Number of distinct compared pairs."""
        return int(len(self.first))

    @property
    def totals(self) -> np.ndarray:
        """Weighted number of comparisons per pair."""
        return self.wins_first + self.wins_second + self.ties

    def __repr__(self) -> str:
        return f"PairCounts(n_pairs={self.n_pairs}, n_items={self.n_items})"

    @classmethod
    def from_comparisons(cls, comparisons: Comparisons) -> PairCounts:
        """Aggregate comparisons to per-pair counts (vectorised).

        Examples
        --------
        >>> c = Comparisons.from_arrays(["a", "b", "a"], ["b", "a", "b"], [1, 1, 0.5])
        >>> p = PairCounts.from_comparisons(c)
        >>> p.wins_first.tolist(), p.wins_second.tolist(), p.ties.tolist()
        ([1.0], [1.0], [1.0])
        """
        return _aggregate(
            comparisons.left,
            comparisons.right,
            comparisons.outcome,
            comparisons.weight,
            comparisons.items,
        )

    def to_comparisons(self, frequencies: bool = False) -> Comparisons:
        """Comparison rows carrying exactly these counts (no loss for models without row covariates).

        Each pair gives up to three rows (first won, second won, tie) with the
        counts as weights; pairs and kinds with zero count give none. With
        ``frequencies=True`` the counts must be whole numbers and each game
        becomes one unweighted row, which is what resampling (bootstrap) and
        sandwich errors need: a row of weight ``w`` is one observation to them,
        not ``w``.

        Examples
        --------
        >>> p = PairCounts.from_matrix([[0, 3], [1, 0]], items=["x", "y"])
        >>> c = p.to_comparisons()
        >>> c.outcome.tolist(), c.weight.tolist()
        ([1.0, 0.0], [3.0, 1.0])
        """
        k = self.n_pairs
        first = np.concatenate([self.first] * 3)
        second = np.concatenate([self.second] * 3)
        outcome = np.repeat([1.0, 0.0, 0.5], k)
        weight = np.concatenate([self.wins_first, self.wins_second, self.ties])
        keep = weight > 0
        order = np.argsort(np.tile(np.arange(k), 3)[keep], kind="stable")
        first, second = first[keep][order], second[keep][order]
        outcome, weight = outcome[keep][order], weight[keep][order]
        if not frequencies:
            return Comparisons(first, second, outcome, self.items, weight)
        fractional = weight != np.round(weight)
        if fractional.any():
            shown = weight[fractional][:3].tolist()
            raise ComparisonDataError(
                f"counts must be whole numbers to be read as games; {int(fractional.sum())} are not (e.g. {shown}).")
        games = weight.astype(np.int64)
        return Comparisons(np.repeat(first, games), np.repeat(second, games), np.repeat(outcome, games), self.items)

    @classmethod
    def from_matrix(cls, wins: Any, ties: Any | None = None, items: Any | None = None) -> PairCounts:
        """Build pair counts from a square matrix ``wins[i, j]`` = wins of i over j.

        Parameters
        ----------
        wins : array-like, shape (n, n)
            Non-negative (weighted) win counts; the diagonal must be zero.
        ties : array-like, shape (n, n), optional
            Symmetric tie counts (``ties[i, j]`` = ties between i and j).
        items : array-like, optional
            Item names (default ``0..n-1``).

        Examples
        --------
        >>> p = PairCounts.from_matrix([[0, 3], [1, 0]], items=["x", "y"])
        >>> p.wins_first.tolist(), p.wins_second.tolist()
        ([3.0], [1.0])
        """
        w = np.asarray(wins, dtype=np.float64)
        if w.ndim != 2 or w.shape[0] != w.shape[1]:
            raise ComparisonDataError(f"the win matrix must be square, got shape {w.shape}.")
        n = w.shape[0]
        t = np.zeros_like(w) if ties is None else np.asarray(ties, dtype=np.float64)
        if t.shape != w.shape:
            raise ComparisonDataError("ties must have the same shape as wins.")
        if not (np.isfinite(w).all() and (w >= 0).all() and np.isfinite(t).all() and (t >= 0).all()):
            raise ComparisonDataError("win and tie counts must be finite and non-negative.")
        if np.any(np.diag(w) != 0) or np.any(np.diag(t) != 0):
            raise ComparisonDataError("the diagonal of the win/tie matrices must be zero (no self-comparisons).")
        if not np.allclose(t, t.T):
            raise ComparisonDataError("the tie matrix must be symmetric.")
        iu, ju = np.triu_indices(n, k=1)
        total = w[iu, ju] + w[ju, iu] + t[iu, ju]
        keep = total > 0
        names = np.arange(n).astype(object) if items is None else np.asarray(items, dtype=object)
        if len(names) != n:
            raise ComparisonDataError(f"{len(names)} item names for a {n}x{n} matrix.")
        return cls(
            iu[keep].astype(np.int64),
            ju[keep].astype(np.int64),
            w[iu, ju][keep],
            w[ju, iu][keep],
            t[iu, ju][keep],
            names,
        )

    def item_totals(self) -> pd.DataFrame:
        """Per-item weighted wins, losses, ties and comparisons (index: item names)."""
        n = self.n_items
        wins = np.bincount(self.first, self.wins_first, n) + np.bincount(self.second, self.wins_second, n)
        losses = np.bincount(self.first, self.wins_second, n) + np.bincount(self.second, self.wins_first, n)
        ties = np.bincount(self.first, self.ties, n) + np.bincount(self.second, self.ties, n)
        return pd.DataFrame(
            {"wins": wins, "losses": losses, "ties": ties, "comparisons": wins + losses + ties},
            index=pd.Index(self.items, name="item"),
        )

    def win_matrix(self, tie_credit: float = 0.5) -> np.ndarray:
        """Dense matrix ``M[i, j]`` = wins of i over j plus ``tie_credit`` times their ties."""
        n = self.n_items
        m = np.zeros((n, n))
        m[self.first, self.second] = self.wins_first + tie_credit * self.ties
        m[self.second, self.first] = self.wins_second + tie_credit * self.ties
        return m


def _aggregate(
    left: np.ndarray,
    right: np.ndarray,
    outcome: np.ndarray,
    weight: np.ndarray | None,
    items: np.ndarray,
) -> PairCounts:
    n = len(items)
    m = len(left)
    swapped = left > right
    # key = min * n + max, written as min * (n - 1) + left + right: no temporaries
    # (each one costs fresh pages, i.e. page faults, at millions of rows).
    key = np.minimum(left, right)
    key *= n - 1
    key += left
    key += right
    tie = outcome == 0.5
    # Bincount over the n*n key space when it is small next to the data;
    # otherwise sort the keys (O(m log m), memory O(m)).
    dense = n * n <= max(_DENSE_KEY_LIMIT_MIN, 4 * m) and n * n <= _DENSE_KEY_LIMIT
    hard = weight is None and bool(np.all(tie | (outcome == 1.0) | (outcome == 0.0)))

    if hard:  # integer counting: the common case of plain win/loss/tie rows
        # One count per (pair, class) with class 0 = first won, 1 = second won,
        # 2 = tie (only when there are ties): a single bincount or sort.
        classes = 3 if tie.any() else 2
        second_won = (outcome == 1.0) == swapped  # first_won is its negation on decisive rows
        if classes == 3:
            second_won &= ~tie
        if dense:  # class-major codes: each class's counts are one contiguous row
            size = n * n
            code = key  # key is not needed again: build the codes in place
            np.add(code, size, out=code, where=second_won)
            if classes == 3:
                np.add(code, 2 * size, out=code, where=tie)
            counts = np.bincount(code, minlength=size * classes).reshape(classes, size)
            total = counts[0] + counts[1]
            if classes == 3:
                total += counts[2]
            pair_keys = np.flatnonzero(total)
            wf = counts[0].take(pair_keys).astype(np.float64)
            ws = counts[1].take(pair_keys).astype(np.float64)
            wt = counts[2].take(pair_keys).astype(np.float64) if classes == 3 else np.zeros(len(pair_keys))
        else:
            code = key * classes
            code += second_won
            if classes == 3:
                code[tie] += 2
            # Sort (pair, class) codes, in 32 bits when they fit (faster); count runs.
            if n * n * classes < 2**31:
                code = code.astype(np.int32)
            code.sort()
            starts = np.flatnonzero(np.concatenate(([True], code[1:] != code[:-1])))
            run_counts = np.diff(np.append(starts, m)).astype(np.float64)
            run_values = code[starts].astype(np.int64)
            run_pair, run_class = run_values // classes, run_values % classes
            new_pair = np.concatenate(([True], run_pair[1:] != run_pair[:-1]))
            pair_keys = run_pair[new_pair]
            pair_index = np.cumsum(new_pair) - 1
            k = len(pair_keys)
            wf = np.bincount(pair_index, run_counts * (run_class == 0), k)
            ws = np.bincount(pair_index, run_counts * (run_class == 1), k)
            wt = np.bincount(pair_index, run_counts * (run_class == 2), k)
    else:
        p_first = np.where(swapped, 1.0 - outcome, outcome)
        w = np.ones(m) if weight is None else weight
        w_decisive = np.where(tie, 0.0, w)
        win_first_w = w_decisive * p_first
        win_second_w = w_decisive - win_first_w
        tie_w = np.where(tie, w, 0.0)
        if dense:
            size = n * n
            pair_keys = np.flatnonzero(np.bincount(key, minlength=size))
            wf = np.bincount(key, win_first_w, size)[pair_keys]
            ws = np.bincount(key, win_second_w, size)[pair_keys]
            wt = np.bincount(key, tie_w, size)[pair_keys]
        else:
            order = np.argsort(key, kind="stable")
            sorted_keys = key[order]
            starts = np.flatnonzero(np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1])))
            pair_keys = sorted_keys[starts]
            wf = np.add.reduceat(win_first_w[order], starts)
            ws = np.add.reduceat(win_second_w[order], starts)
            wt = np.add.reduceat(tie_w[order], starts)
    return PairCounts(pair_keys // n, pair_keys % n, wf, ws, wt, items)


def _csr_graph(first: np.ndarray, second: np.ndarray, keep: np.ndarray | None, n: int) -> sparse.csr_matrix:
    """CSR adjacency ``first -> second`` of the pairs at positions ``keep`` (all if None).

    PairCounts are sorted by ``(first, second)``, so the kept pairs are already
    in row order: the index pointer is a cumulative count and nothing is
    sorted (a COO -> CSR conversion would sort the pairs again).
    """
    rows = first if keep is None else first.take(keep)
    cols = second if keep is None else second.take(keep)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    index_type = np.int32 if len(cols) < 2**31 and n < 2**31 else np.int64
    return sparse.csr_matrix(
        (np.ones(len(cols)), cols.astype(index_type, copy=False), indptr.astype(index_type, copy=False)),
        shape=(n, n),
    )


def _effective_win_graph(pairs: PairCounts, tie_credit: float = 0.5) -> sparse.csr_matrix:
    """Directed graph with an edge i -> j when i has (tie-credited) wins over j.

    Built in linear time: the forward edges come straight from the sorted
    pairs; the backward edges are the transpose of another such matrix
    (a compiled counting sort).
    """
    forward, backward = _effective_directions(pairs, tie_credit)
    n = pairs.n_items
    down = _csr_graph(pairs.first, pairs.second, np.flatnonzero(forward), n)
    up = _csr_graph(pairs.first, pairs.second, np.flatnonzero(backward), n).T.tocsr()
    return (down + up).tocsr()


def _effective_directions(pairs: PairCounts, tie_credit: float) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the pairs where ``first`` has (tie-credited) wins over ``second``, and vice versa."""
    if tie_credit > 0:
        tied = pairs.ties > 0
        return (pairs.wins_first > 0) | tied, (pairs.wins_second > 0) | tied
    return pairs.wins_first > 0, pairs.wins_second > 0


def _two_way_pairs_connect(pairs: PairCounts, tie_credit: float) -> bool:
    """Fast sufficient test: pairs won both ways already connect every item.

    Items joined by a pair with wins each way reach each other in the win
    graph, so if those pairs connect all items it is strongly connected.
    Linear in the number of pairs (a compiled component search on a CSR
    graph built without sorting).
    """
    forward, backward = _effective_directions(pairs, tie_credit)
    both = np.flatnonzero(forward & backward)
    n = pairs.n_items
    if len(both) < n - 1:
        return False
    graph = _csr_graph(pairs.first, pairs.second, both, n)
    n_components, _ = csgraph.connected_components(graph, directed=True, connection="weak")
    return n_components == 1


def mle_existence_problem(pairs: PairCounts, tie_credit: float = 0.5, *, model: str = "BradleyTerry",
                          subject: str = "the maximum-likelihood scores") -> MLEDoesNotExistError | None:
    """Return an error describing why the BT maximum-likelihood estimate does not exist, or None.

    ``model`` names the estimator whose ``prior=`` the message recommends (and
    only ``BradleyTerry`` is offered ``bias_reduction=True``); ``subject`` is
    what does not exist (e.g. Plackett-Luce scores, checked on the broken pairs).

    The MLE of the Bradley-Terry scores exists (finite, unique up to a shift)
    exactly when the directed win graph (an edge i -> j when i beat j) is
    strongly connected (Zermelo 1929; Ford 1957). Ties credit ``tie_credit``
    of a win to both sides.

    When it is not, the error names the smallest sets of items that cause it.
    In the graph of strongly connected components, a *top* component has no
    edge coming in from outside (its items never lost against the other
    items, scores +infinity relative to them) and a *bottom* component has no
    edge going out (its items never won against the others, scores
    -infinity). In each connected part of the comparison graph the largest
    component is taken as the body the others are measured against and is not
    blamed when it alone is the largest: one item that never won is named
    alone, not the rest as "never lost". Parts of the comparison graph that
    are not connected at all are reported as disconnected groups. Everything
    is linear in the number of pairs.

    Examples
    --------
    >>> p = PairCounts.from_matrix([[0, 2], [0, 0]], items=["a", "b"])
    >>> e = mle_existence_problem(p)
    >>> e.never_lost, e.never_won
    (['a'], ['b'])
    >>> wins = [[0, 1, 1], [1, 0, 1], [0, 0, 0]]  # c never won; a and b won against each other
    >>> mle_existence_problem(PairCounts.from_matrix(wins, items=["a", "b", "c"])).never_won
    ['c']
    """
    n = pairs.n_items
    if n < 2:
        return MLEDoesNotExistError(
            f"need at least two items to rank, got {n}.", components=[list(map(str, pairs.items))]
        )
    if _two_way_pairs_connect(pairs, tie_credit):
        return None
    forward, backward = _effective_directions(pairs, tie_credit)
    graph = _effective_win_graph(pairs, tie_credit)
    n_strong, labels = csgraph.connected_components(graph, directed=True, connection="strong")
    if n_strong == 1:
        return None
    names = np.asarray(pairs.items, dtype=object)
    sizes = np.bincount(labels, minlength=n_strong)
    by_component = np.split(np.argsort(labels, kind="stable"), np.cumsum(sizes)[:-1])
    components = [[str(x) for x in names[members]] for members in by_component]

    # Edges between components: "has_in" = someone outside beat the component,
    # "has_out" = the component beat someone outside.
    winners = np.concatenate([pairs.first[forward], pairs.second[backward]])
    losers = np.concatenate([pairs.second[forward], pairs.first[backward]])
    lw, ll = labels[winners], labels[losers]
    cross = lw != ll
    has_out = np.zeros(n_strong, dtype=bool)
    has_in = np.zeros(n_strong, dtype=bool)
    has_out[lw[cross]] = True
    has_in[ll[cross]] = True

    # Connected parts of the comparison graph (any comparison, either direction).
    n_weak, weak_labels = csgraph.connected_components(
        _csr_graph(pairs.first, pairs.second, None, n), directed=True, connection="weak"
    )
    group = np.empty(n_strong, dtype=np.int64)
    group[labels] = weak_labels
    isolated = ~has_in & ~has_out  # a whole connected part that is strongly connected
    top = ~has_in & ~isolated
    bottom = ~has_out & ~isolated
    # The body of each connected part: its largest component, when strictly largest.
    largest = np.zeros(n_weak, dtype=np.int64)
    np.maximum.at(largest, group, sizes)
    at_max = sizes == largest[group]
    body = at_max & (np.bincount(group[at_max], minlength=n_weak)[group] == 1) & ~isolated
    top &= ~body
    bottom &= ~body
    never_lost = [str(x) for x in names[top[labels]]]
    never_won = [str(x) for x in names[bottom[labels]]]

    parts = []
    if n_weak > 1:
        group_sizes = np.bincount(weak_labels)
        smallest = np.argsort(group_sizes, kind="stable")[: min(3, n_weak - 1)]
        shown = "; ".join(f"{_name_list(names[weak_labels == k])}" for k in smallest)
        parts.append(
            f"the comparison graph falls into {n_weak} disconnected groups "
            f"(sizes {sorted(group_sizes.tolist(), reverse=True)[:6]}; smallest: {shown}), "
            "so scores in different groups cannot be compared"
        )
    # one phrase per offending component: items of a group may have beaten each other
    for flags, verb, limit in ((top, "never lost", "+infinity"), (bottom, "never won", "-infinity")):
        offending = np.flatnonzero(flags)
        for k in offending[:3]:
            members = components[k]
            against = "the other items" if len(members) == 1 else "the items outside their group"
            parts.append(f"{_name_list(members)} {verb} against {against} (score {limit})")
        if len(offending) > 3:
            parts.append(f"{len(offending) - 3} more group(s) {verb} against the items outside them")
    remedy = f". Fit with a Gaussian prior for finite MAP scores, e.g. {model}(prior=10.0) (CLI: --prior 10)"
    if n_weak == 1 and model == "BradleyTerry":
        remedy += ", or with Firth's bias reduction, BradleyTerry(bias_reduction=True) (CLI: --bias-reduction)"
    message = f"{subject} do not exist: " + "; ".join(parts) + remedy + ", or remove these items."
    return MLEDoesNotExistError(message, components, never_lost, never_won)


def check_mle_exists(pairs: PairCounts, tie_credit: float = 0.5) -> None:
    """Raise :class:`MLEDoesNotExistError` unless the BT MLE exists for ``pairs``."""
    problem = mle_existence_problem(pairs, tie_credit)
    if problem is not None:
        raise problem


def _name_list(names: Any, limit: int = 8) -> str:
    names = [str(x) for x in names]
    shown = ", ".join(repr(x) for x in names[:limit])
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    word = "item" if len(names) == 1 else "items"
    return f"{word} [{shown}{more}]"
