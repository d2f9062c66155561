"""Pair counts reduced on Dask (local cluster) and Spark (local mode) equal the in-memory path."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

import bradley
from bradley.errors import ComparisonDataError, DataWarning

pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")

ITEMS = [f"model-{i:02d}" for i in range(15)]


def _battles(m: int = 4000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    strength = np.linspace(-1.5, 1.5, len(ITEMS))
    a = rng.integers(0, len(ITEMS), m)
    b = rng.integers(0, len(ITEMS), m)
    p = 1 / (1 + np.exp(strength[b] - strength[a]))
    u = rng.random(m)
    label = np.where(u < 0.15, "tie", np.where(u < 0.2, "tie (bothbad)",
                     np.where(rng.random(m) < p, "model_a", "model_b")))
    soft = np.where(label == "model_a", 1.0, np.where(label == "model_b", 0.0, 0.5))
    soft = np.where(rng.random(m) < 0.2, np.round(rng.random(m), 3), soft)  # some probabilities
    code = np.select([label == "model_a", label == "model_b"], [1, 2], 3)
    return pd.DataFrame({
        "model_a": np.asarray(ITEMS, dtype=object)[a], "model_b": np.asarray(ITEMS, dtype=object)[b],
        "winner": label, "p_left": soft, "code": code, "weight": np.round(rng.uniform(0.2, 3.0, m), 2),
        "winner_name": np.where(label == "model_a", np.asarray(ITEMS, dtype=object)[a],
                                np.where(label == "model_b", np.asarray(ITEMS, dtype=object)[b], "tie")),
    })


@pytest.fixture(scope="module")
def dask_client():
    pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def spark():
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("Spark needs Java")
    from pyspark.sql import SparkSession
    session = (SparkSession.builder.master("local[1]").appName("bradley-tests")
               .config("spark.sql.shuffle.partitions", "2").config("spark.ui.enabled", "false")
               .config("spark.driver.memory", "1g").config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.default.parallelism", "1").getOrCreate())
    yield session
    session.stop()


@pytest.fixture(scope="module", params=["dask", "spark"])
def engine(request):
    """A function running the engine's aggregate on a pandas frame held by that engine."""
    from bradley.distributed import aggregate_dask, aggregate_spark
    if request.param == "dask":
        request.getfixturevalue("dask_client")
        import dask.dataframe as dd
        return lambda frame, **kw: aggregate_dask(dd.from_pandas(frame, npartitions=3), **kw)
    session = request.getfixturevalue("spark")

    def run(frame, **kw):
        with warnings.catch_warnings():  # pyspark's own pandas deprecation notices
            warnings.filterwarnings("ignore", message=".*copy keyword is deprecated.*")
            return aggregate_spark(session.createDataFrame(frame), **kw)
    return run


def _same(p, q, tol=1e-12):
    assert p.items.tolist() == q.items.tolist()
    np.testing.assert_array_equal(p.first, q.first)
    np.testing.assert_array_equal(p.second, q.second)
    for name in ("wins_first", "wins_second", "ties"):
        np.testing.assert_allclose(getattr(p, name), getattr(q, name), rtol=tol, atol=tol)


def _in_memory(frame, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return bradley.read_comparisons(frame, **kw).pair_counts()


def test_labels_weights_ties_match_in_memory_and_fit(engine):
    frame = _battles()
    kw = dict(left="model_a", right="model_b", outcome="winner", weight="weight", drop_self_comparisons=True)
    with pytest.warns(DataWarning, match=r"dropped \d+ of 4000 rows that compare an item with itself"):
        p = engine(frame, **kw)
    q = _in_memory(frame, **kw)
    assert q.n_pairs > 90 and q.ties.sum() > 0
    _same(p, q)
    fit_p, fit_q = bradley.BradleyTerry().fit(p), bradley.BradleyTerry().fit(q)
    np.testing.assert_allclose(fit_p.scores_, fit_q.scores_, rtol=0, atol=1e-12)


def test_self_comparison_count_is_the_source_rows(engine):
    frame = _battles(seed=1)
    n_self = int((frame.model_a == frame.model_b).sum())
    with pytest.warns(DataWarning, match=rf"dropped {n_self} of 4000 rows"):
        engine(frame, drop_self_comparisons=True)
    with pytest.raises(ComparisonDataError):
        engine(frame)


def test_soft_numeric_outcomes_unweighted_and_weighted(engine):
    frame = _battles(seed=2)
    frame = frame[frame.model_a != frame.model_b].reset_index(drop=True)
    for weight in (None, "weight"):
        kw = dict(left="model_a", right="model_b", outcome="p_left", weight=weight)
        if weight is None:
            frame_w = frame.drop(columns="weight")
        else:
            frame_w = frame
        p = engine(frame_w, **kw)
        _same(p, _in_memory(frame_w.rename(columns={"p_left": "outcome"}),
                            **{**kw, "outcome": "outcome"}))
    # brute force: wins of the first item summed row by row
    sub = frame[(frame.model_a == ITEMS[0]) & (frame.model_b == ITEMS[1])]
    sub2 = frame[(frame.model_a == ITEMS[1]) & (frame.model_b == ITEMS[0])]
    dec, dec2 = sub.p_left != 0.5, sub2.p_left != 0.5
    expected = (sub.weight * sub.p_left)[dec].sum() + (sub2.weight * (1 - sub2.p_left))[dec2].sum()
    k = np.flatnonzero((p.first == 0) & (p.second == 1))[0]
    assert p.wins_first[k] == pytest.approx(expected, rel=1e-12)


def test_outcome_map_codes_winner_names_and_winner_loser(engine):
    frame = _battles(seed=3)
    frame = frame[frame.model_a != frame.model_b].reset_index(drop=True)
    codes = dict(left="model_a", right="model_b", outcome="code", outcome_map={1: "left", 2: "right", 3: "tie"})
    _same(engine(frame, **codes), _in_memory(frame, **codes))
    names = dict(left="model_a", right="model_b", outcome="winner_name")
    _same(engine(frame, **names), _in_memory(frame, **names))
    decisive = frame[frame.winner.isin(["model_a", "model_b"])]
    games = pd.DataFrame({"w": np.where(decisive.winner == "model_a", decisive.model_a, decisive.model_b),
                          "l": np.where(decisive.winner == "model_a", decisive.model_b, decisive.model_a)})
    _same(engine(games, winner="w", loser="l"), _in_memory(games, winner="w", loser="l"))


def test_both_bad_drop_and_fixed_items(engine):
    frame = _battles(seed=4)
    frame = frame[frame.model_a != frame.model_b].reset_index(drop=True)
    items = ITEMS[::-1] + ["never-played"]
    kw = dict(both_bad="drop", items=items)
    with pytest.warns(DataWarning, match="both bad"):
        p = engine(frame, **kw)
    q = _in_memory(frame, **kw)
    _same(p, q)
    assert p.items.tolist() == items


def test_bad_labels_weights_and_features_are_errors(engine):
    frame = _battles(seed=5)
    frame = frame[frame.model_a != frame.model_b].reset_index(drop=True)
    bad = frame.copy()
    bad.loc[[3, 10, 11], "winner"] = "model_c"
    with pytest.raises(ComparisonDataError, match=r"model_c.*3 source rows"):
        engine(bad)
    neg = frame.copy()
    neg.loc[[0, 7], "weight"] = -1.0
    with pytest.raises(ComparisonDataError, match="2 of 4000|2 of \\d+ rows have a missing, negative"):
        engine(neg)
    missing = frame.copy()
    missing.loc[[4, 5], "p_left"] = np.nan
    with pytest.raises(ComparisonDataError, match=r"missing \(NaN\) outcome.*2 source rows"):
        engine(missing, outcome="p_left")
    with pytest.raises(ComparisonDataError, match="covariates"):
        engine(frame, features=["p_left"])
    with pytest.raises(ComparisonDataError, match="missing column"):
        engine(frame, outcome="nope")


def test_bradley_aggregate_dispatches_dask_frames_to_the_cluster(dask_client):
    import dask.dataframe as dd

    frame = _battles(seed=3)
    kw = dict(left="model_a", right="model_b", outcome="winner", weight="weight", drop_self_comparisons=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        p = bradley.aggregate(dd.from_pandas(frame, npartitions=2), **kw)
    _same(p, _in_memory(frame, **kw))
    with pytest.raises(ValueError, match="filter a Dask or Spark frame with the engine first"):
        bradley.aggregate(dd.from_pandas(frame, npartitions=2), where="model_a == 'x'", **kw)
