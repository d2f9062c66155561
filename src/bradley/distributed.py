"""Pair counts from Dask and Spark DataFrames: the rows reduce on the cluster, only the counts come back.

Everything a model without row-level covariates needs is the table of pair
counts (:class:`~bradley.data.PairCounts`). :func:`aggregate_dask` and
:func:`aggregate_spark` push that reduction to the engine that holds the rows:
one group-by over ``(left, right, outcome key)`` with the number of rows, the
sum of weights, the sum of ``weight * outcome`` (for soft outcomes) and the
number of invalid weights. The outcome key is the outcome value itself when it
is a label (``model_a``, ``tie (bothbad)``, a winner's name, a code mapped by
``outcome_map``) or a hard number (0, 0.5, 1); probabilities strictly between
0 and 1 share one key per pair and side, so the result has at most a few rows
per ordered pair whatever the number of rows.

Only this small table is collected. It is then read by the in-memory reader
(:func:`~bradley.io.read_comparisons`) as a weighted table, so outcome labels,
``outcome_map``, item names (the sorted union of the labels, spaces stripped),
``both_bad`` and ``drop_self_comparisons`` mean exactly what they mean for a
pandas frame, and the items are encoded only after the reduction. Errors name
the offending labels and pairs with the number of source rows behind them
(row positions on a cluster have no meaning).

Models with comparison-level covariates (``PairwiseModel(covariates=True)``,
style control) need every row's features: their likelihood is not a function
of finite per-pair sums, so these functions refuse ``features=``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .data import Comparisons, PairCounts
from .errors import ComparisonDataError, DataWarning

__all__ = ["aggregate_dask", "aggregate_spark", "is_dask_frame", "is_spark_frame"]

# columns of the collected table (names unlikely to clash with user columns)
_N, _W, _WO, _BAD_W, _SOFT, _KEY = "__bradley_n", "__bradley_w", "__bradley_wo", "__bradley_bad_w", \
    "__bradley_soft", "__bradley_okey"


def is_dask_frame(obj: Any) -> bool:
    """True for a Dask DataFrame (checked without importing dask)."""
    return type(obj).__module__.startswith("dask") and hasattr(obj, "npartitions")


def is_spark_frame(obj: Any) -> bool:
    """True for a PySpark DataFrame (checked without importing pyspark)."""
    return type(obj).__module__.startswith("pyspark") and hasattr(obj, "groupBy")


def _default(given: str | None, columns: Sequence[str], *names: str) -> str | None:
    if given is not None:
        return given
    return next((n for n in names if n in columns), None)


def _check_args(columns: Sequence[str], left: str | None, right: str | None, outcome: str | None, winner: str | None,
                loser: str | None, weight: str | None, features: Any) -> tuple[str, str, str | None, str | None]:
    if features:
        raise ComparisonDataError(
            "features= (comparison-level covariates, e.g. style control) cannot be reduced to pair counts: the "
            "likelihood of PairwiseModel(covariates=True) depends on every row's features, not on finite sums per "
            "pair. Fit such a model on a sample collected with df.sample(...), or aggregate without the features.")
    if winner is not None or loser is not None:
        if winner is None or loser is None or outcome is not None:
            raise ComparisonDataError("winner= and loser= go together (decisive games), without outcome=.")
        left, right, outcome = winner, loser, None
    else:
        left, right = _default(left, columns, "model_a", "left"), _default(right, columns, "model_b", "right")
        outcome = _default(outcome, columns, "winner", "outcome")
        if left is None or right is None or outcome is None:
            raise ComparisonDataError(
                "say which columns hold the items and the outcome (left=, right=, outcome=; defaults: model_a, "
                f"model_b, winner or left, right, outcome), or give winner= and loser=; the data have columns "
                f"{list(columns)[:20]}.")
    if left == right:
        raise ComparisonDataError(f"left= and right= name the same column {left!r}.")
    if weight is None and "weight" in columns:
        weight = "weight"
    needed = [left, right] + ([outcome] if outcome else []) + ([weight] if weight else [])
    missing = [c for c in needed if c not in columns]
    if missing:
        raise ComparisonDataError(f"missing column(s) {missing}: the data have columns {list(columns)[:20]}.")
    return left, right, outcome, weight


def _finish(table: pd.DataFrame, *, left: str, right: str, outcome: str | None, numeric: bool,
            items: Sequence[Any] | None, outcome_map: Mapping[Any, Any] | str | None, both_bad: str,
            drop_self_comparisons: bool, engine: str) -> PairCounts:
    """Read the collected per-group table as weighted comparisons and count pairs."""
    if len(table) == 0 or table[_N].sum() == 0:
        raise ComparisonDataError(f"the {engine} data hold no comparisons (zero rows).")
    table = table.reset_index(drop=True)
    n_rows = int(table[_N].sum())
    bad_w = table[_BAD_W].to_numpy(np.float64) > 0
    if bad_w.any():
        raise ComparisonDataError(
            f"{int(table[_BAD_W].sum())} of {n_rows} rows have a missing, negative or infinite weight, e.g. in the "
            f"pairs {_examples(table, bad_w, left, right)}. Weights must be finite and non-negative.")
    out = pd.DataFrame({"left": table[left], "right": table[right], "__w": table[_W].astype(np.float64)})
    if outcome is None:  # winner / loser columns: every row is a win of the left item
        out["outcome"] = 1.0
    elif numeric and outcome_map is None:
        soft = table[_SOFT].fillna(False).astype(bool).to_numpy()
        w = table[_W].to_numpy(np.float64)
        key = pd.to_numeric(table[_KEY], errors="coerce").to_numpy(np.float64)
        # soft outcomes: one weighted row whose outcome is the weighted mean, so w * p = sum(w * outcome)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(w > 0, table[_WO].to_numpy(np.float64) / np.where(w > 0, w, 1.0), 0.25)
        out["outcome"] = np.where(soft, mean, key)
    else:
        out["outcome"] = table[_KEY]
    name = outcome if outcome is not None else "outcome"
    out = out.rename(columns={"outcome": name, "left": "__left", "right": "__right"})
    if drop_self_comparisons:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            from .data import encode_items
            lc, rc, _ = encode_items(out["__left"], out["__right"], items)
        same = lc == rc
        if same.any():
            n_same = int(table.loc[same, _N].sum())
            warnings.warn(f"dropped {n_same} of {n_rows} rows that compare an item with itself "
                          f"(e.g. {_examples(table, same, left, right)}).", DataWarning, stacklevel=3)
            out, table = out.loc[~same].reset_index(drop=True), table.loc[~same].reset_index(drop=True)
            if len(out) == 0:
                raise ComparisonDataError("every row compares an item with itself.")
    from .io import read_comparisons
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            comparisons: Comparisons = read_comparisons(
                out, left="__left", right="__right", outcome=name, weight="__w", items=items,
                outcome_map=outcome_map, both_bad=both_bad)
    except ComparisonDataError as error:
        rows = [r for r in error.rows if 0 <= r < len(table)]
        if not rows:
            raise
        mask = np.zeros(len(table), dtype=bool)
        mask[rows] = True
        raise ComparisonDataError(
            f"{error} (in the table aggregated on {engine}: 'data row' k is the k-th group of equal (left, right, "
            f"outcome); the groups shown hold {int(table.loc[mask, _N].sum())} source rows, e.g. "
            f"{_examples(table, mask, left, right, outcome)}).", []) from None
    for w in caught:
        if issubclass(w.category, DataWarning):
            warnings.warn(f"{w.message} (rows here are groups of the table aggregated on {engine})", DataWarning,
                          stacklevel=3)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return comparisons.pair_counts()


def _examples(table: pd.DataFrame, mask: np.ndarray, left: str, right: str, outcome: str | None = None,
              limit: int = 3) -> str:
    keys = [left, right] + ([_KEY] if outcome is not None else [])
    shown = table.loc[mask].groupby(keys, dropna=False, sort=False)[_N].sum().head(limit)
    parts = []
    for key, count in shown.items():
        values = key if isinstance(key, tuple) else (key,)
        what = f"({values[0]!r}, {values[1]!r}" + (f", outcome {values[2]!r}" if outcome is not None else "")
        parts.append(f"{what}: {int(count)} rows)")
    return ", ".join(parts)


def aggregate_dask(
    df: Any,
    *,
    left: str | None = None,
    right: str | None = None,
    outcome: str | None = None,
    winner: str | None = None,
    loser: str | None = None,
    weight: str | None = None,
    items: Sequence[Any] | None = None,
    outcome_map: Mapping[Any, Any] | str | None = None,
    both_bad: str = "tie",
    drop_self_comparisons: bool = False,
    features: Sequence[str] | None = None,
) -> PairCounts:
    """Pair counts of a Dask DataFrame, reduced on the cluster.

    Parameters
    ----------
    df : dask.dataframe.DataFrame
        One row per judged pair.
    left, right, outcome : str
        Columns of the two items and of the outcome (defaults: the arena's
        ``model_a``, ``model_b``, ``winner``, else ``left``, ``right``, ``outcome``). Outcomes are read as by
        :func:`~bradley.io.read_comparisons`: numbers in [0, 1], labels, or
        the winning item's name.
    winner, loser : str, optional
        Instead of ``left``/``right``/``outcome``: columns of decisive games.
    weight : str, optional
        Frequency weights (default: a ``weight`` column if there is one).
    items, outcome_map, both_bad, drop_self_comparisons
        As in :func:`~bradley.io.read_comparisons`.
    features : sequence of str, optional
        Refused: covariate models need the rows (see the module notes).

    Returns
    -------
    PairCounts
        Identical to ``read_comparisons(df.compute(), ...).pair_counts`` up
        to the rounding of sums taken in another order.

    Examples
    --------
    >>> import dask.dataframe as dd, pandas as pd
    >>> rows = pd.DataFrame({"model_a": ["x", "y", "x"], "model_b": ["y", "x", "y"],
    ...                      "winner": ["model_a", "model_a", "tie"]})
    >>> p = aggregate_dask(dd.from_pandas(rows, npartitions=2))
    >>> p.items.tolist(), p.wins_first.tolist(), p.wins_second.tolist(), p.ties.tolist()
    (['x', 'y'], [1.0], [1.0], [1.0])
    """
    columns = [str(c) for c in df.columns]
    left, right, outcome, weight = _check_args(columns, left, right, outcome, winner, loser, weight, features)
    numeric = outcome is not None and pd.api.types.is_numeric_dtype(df[outcome].dtype) \
        and not pd.api.types.is_bool_dtype(df[outcome].dtype)
    frame = df[[c for c in dict.fromkeys([left, right, outcome, weight]) if c is not None]]
    w = frame[weight].astype("float64") if weight is not None else None
    n = frame[left].isna().astype("int64") * 0 + 1
    parts: dict[str, Any] = {left: frame[left], right: frame[right], _N: n}
    if w is not None:
        bad = w.isna() | (w < 0) | (w == np.inf)
        parts[_W] = w.where(~bad, 0.0)
        parts[_BAD_W] = bad.astype("int64")
    else:
        parts[_W] = n.astype("float64")
        parts[_BAD_W] = n * 0
    if outcome is None:
        parts[_KEY] = n * 0
        parts[_SOFT] = n * 0 == 1
        parts[_WO] = parts[_W] * 0.0
    elif numeric and outcome_map is None:
        o = frame[outcome].astype("float64")
        soft = (o > 0) & (o < 1) & (o != 0.5)
        parts[_SOFT] = soft
        parts[_KEY] = o.where(~soft, 0.25)
        parts[_WO] = (parts[_W] * o).where(soft, 0.0)
    else:
        parts[_KEY] = frame[outcome]
        parts[_SOFT] = n * 0 == 1
        parts[_WO] = parts[_W] * 0.0
    import dask.dataframe as dd
    reduced = dd.concat([parts[k].rename(k) for k in parts], axis=1)
    keys = [left, right, _KEY, _SOFT]
    sums = {_N: "sum", _W: "sum", _WO: "sum", _BAD_W: "sum"}
    table = reduced.groupby(keys, dropna=False, observed=True).agg(sums).compute().reset_index()
    return _finish(table, left=left, right=right, outcome=outcome, numeric=numeric, items=items,
                   outcome_map=outcome_map, both_bad=both_bad, drop_self_comparisons=drop_self_comparisons,
                   engine="Dask")


def aggregate_spark(
    df: Any,
    *,
    left: str | None = None,
    right: str | None = None,
    outcome: str | None = None,
    winner: str | None = None,
    loser: str | None = None,
    weight: str | None = None,
    items: Sequence[Any] | None = None,
    outcome_map: Mapping[Any, Any] | str | None = None,
    both_bad: str = "tie",
    drop_self_comparisons: bool = False,
    features: Sequence[str] | None = None,
) -> PairCounts:
    """Pair counts of a Spark DataFrame, reduced on the cluster.

    Parameters and result as :func:`aggregate_dask`: one ``groupBy`` over
    ``(left, right, outcome key)`` with counts and sums runs on Spark, and
    only the groups (a few per ordered pair) are collected with ``toPandas``.

    Examples
    --------
    >>> from pyspark.sql import SparkSession                          # doctest: +SKIP
    >>> spark = SparkSession.builder.getOrCreate()                    # doctest: +SKIP
    >>> votes = spark.read.parquet("s3://arena/votes/")               # doctest: +SKIP
    >>> pairs = aggregate_spark(votes, left="model_a", right="model_b", outcome="winner")  # doctest: +SKIP
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import BooleanType, NumericType

    columns = [str(c) for c in df.columns]
    left, right, outcome, weight = _check_args(columns, left, right, outcome, winner, loser, weight, features)
    numeric = outcome is not None and isinstance(df.schema[outcome].dataType, NumericType) \
        and not isinstance(df.schema[outcome].dataType, BooleanType)
    if weight is not None:
        w = F.col(weight).cast("double")
        bad = w.isNull() | F.isnan(w) | (w < 0) | (w == float("inf"))
        w_ok = F.when(bad, F.lit(0.0)).otherwise(w)
        bad_n = F.when(bad, F.lit(1)).otherwise(F.lit(0))
    else:
        w_ok, bad_n = F.lit(1.0), F.lit(0)
    if outcome is None:
        key, soft, wo = F.lit(0), F.lit(False), F.lit(0.0)
    elif numeric and outcome_map is None:
        o = F.col(outcome).cast("double")
        soft = F.coalesce((o > 0) & (o < 1) & (o != 0.5), F.lit(False))
        key = F.when(soft, F.lit(0.25)).otherwise(o)
        wo = F.when(soft, w_ok * o).otherwise(F.lit(0.0))
    else:
        key, soft, wo = F.col(outcome), F.lit(False), F.lit(0.0)
    selected = df.select(F.col(left).alias("__l"), F.col(right).alias("__r"), key.alias(_KEY),
                         soft.alias(_SOFT), w_ok.alias("__w"), wo.alias("__wo"), bad_n.alias("__bad"))
    grouped = selected.groupBy("__l", "__r", _KEY, _SOFT).agg(
        F.count(F.lit(1)).alias(_N), F.sum("__w").alias(_W), F.sum("__wo").alias(_WO),
        F.sum("__bad").alias(_BAD_W))
    table = grouped.toPandas().rename(columns={"__l": left, "__r": right})
    return _finish(table, left=left, right=right, outcome=outcome, numeric=numeric, items=items,
                   outcome_map=outcome_map, both_bad=both_bad, drop_self_comparisons=drop_self_comparisons,
                   engine="Spark")
