"""bradley.aggregate: out-of-core pair counts equal the in-memory path; errors, merging, count bootstrap/sandwich."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bradley
from bradley.aggregate import (
    aggregate,
    bootstrap_pair_counts,
    load_pair_counts,
    merge_pair_counts,
    merge_partial_counts,
    pair_counts_from_partial,
    partial_counts,
    sandwich_pair_counts,
    save_pair_counts,
    warm_start_scores,
    where_to_sql,
)
from bradley.data import PairCounts
from bradley.errors import ComparisonDataError
from bradley.io import read_comparisons, select_rows

duckdb = pytest.importorskip("duckdb")
pytest.importorskip("pyarrow")


def arena(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    names = np.array([f"m{k:02d}" for k in range(12)])
    a = rng.integers(0, 12, n)
    b = (a + rng.integers(1, 12, n)) % 12
    return pd.DataFrame({
        "model_a": names[a], "model_b": names[b],
        "winner": rng.choice(["model_a", "model_b", "tie", "tie (bothbad)"], n, p=[0.45, 0.4, 0.1, 0.05]),
        "category": rng.choice(["math", "code", "chat"], n),
        "turns": rng.integers(1, 5, n),
        "time": pd.Timestamp("2024-06-01") + pd.to_timedelta(rng.integers(0, 30 * 24, n), unit="h"),
    })


def same(a: PairCounts, b: PairCounts) -> None:
    assert a.items.tolist() == b.items.tolist()
    for name in ("first", "second", "wins_first", "wins_second", "ties"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return arena()


@pytest.mark.parametrize("suffix", ["csv", "parquet", "jsonl"])
def test_file_equals_in_memory(tmp_path, frame, suffix):
    path = tmp_path / f"votes.{suffix}"
    data = frame.drop(columns="time")
    if suffix == "csv":
        data.to_csv(path, index=False)
    elif suffix == "parquet":
        data.to_parquet(path)
    else:
        data.to_json(path, orient="records", lines=True)
    same(aggregate(path), read_comparisons(path).pair_counts())
    where = "category == 'math' and turns > 1 or category.str.startswith('co')"
    same(aggregate(str(path), where=where), read_comparisons(path, where=where).pair_counts())
    with pytest.warns(bradley.errors.DataWarning):
        expected = read_comparisons(path, both_bad="drop").pair_counts()
    with pytest.warns(bradley.errors.DataWarning):
        same(aggregate(path, both_bad="drop"), expected)


@pytest.mark.parametrize("engine", ["arrow", "duckdb"])
def test_glob_partitioned_dir_and_time_window(tmp_path, frame, engine):
    parts = [frame.iloc[:200], frame.iloc[200:400], frame.iloc[400:]]
    for k, part in enumerate(parts):
        part.to_parquet(tmp_path / f"part{k}.parquet")
    truth = read_comparisons(frame).pair_counts()
    same(aggregate(str(tmp_path / "*.parquet"), engine=engine), truth)
    same(aggregate(tmp_path, engine=engine), truth)  # a directory
    hive = tmp_path / "hive"
    for cat, part in frame.groupby("category"):
        (hive / f"category={cat}").mkdir(parents=True)
        part.drop(columns="category").to_parquet(hive / f"category={cat}" / "data.parquet")
    same(aggregate(hive, where="category in ['math', 'chat']", engine=engine),
         read_comparisons(frame[frame.category.isin(["math", "chat"])].reset_index(drop=True)).pair_counts())
    window = (frame.time >= "2024-06-10") & (frame.time < "2024-06-20")
    same(aggregate(str(tmp_path / "*.parquet"), since="2024-06-10", until="2024-06-20", engine=engine),
         read_comparisons(frame[window].reset_index(drop=True)).pair_counts())


def test_tables_and_relations(frame):
    truth = read_comparisons(frame).pair_counts()
    import polars as pl
    import pyarrow as pa

    same(aggregate(frame), truth)
    same(aggregate(pa.Table.from_pandas(frame)), truth)
    same(aggregate(pl.from_pandas(frame)), truth)
    con = duckdb.connect()
    same(aggregate(con.from_df(frame)), truth)


def test_weights_and_outcome_map(tmp_path):
    rng = np.random.default_rng(3)
    data = pd.DataFrame({"l": rng.choice(list("abcd"), 300), "r": rng.choice(list("efg"), 300),
                         "code": rng.choice([1, 2, 3], 300), "w": rng.integers(1, 4, 300).astype(float)})
    path = tmp_path / "w.parquet"
    data.to_parquet(path)
    args = dict(left="l", right="r", outcome="code", outcome_map="1=left,2=right,3=tie", weight="w")
    want = read_comparisons(path, **args).pair_counts()
    for engine in ("arrow", "duckdb"):
        same(aggregate(path, engine=engine, **args), want)  # whole-number weights: exact sums
    # a label space larger than the dense limit: the sorted-key path
    import importlib

    module = importlib.import_module("bradley.aggregate")

    limit = module._DENSE_GROUPS
    module._DENSE_GROUPS = 10
    try:
        same(aggregate(path, **args), want)
        plain = dict(left="l", right="r", outcome="code", outcome_map="1=left,2=right,3=tie")
        same(aggregate(path, **plain), read_comparisons(path, **plain).pair_counts())
    finally:
        module._DENSE_GROUPS = limit


def test_errors_name_file_and_row(tmp_path, frame):
    bad = frame.drop(columns="time").copy()
    bad.loc[7, "winner"] = "model_c"
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(ComparisonDataError) as expected:
        read_comparisons(path)
    with pytest.raises(ComparisonDataError) as got:
        aggregate(path)
    assert str(got.value) == str(expected.value)
    assert "line 9 of" in str(got.value)
    # Parquet, the bad row in the second file of a glob: named by 0-based data row of that file
    frame.iloc[:300].to_parquet(tmp_path / "a.parquet")
    second = frame.iloc[300:].reset_index(drop=True).copy()
    second.loc[[5, 40], "winner"] = "nobody"
    second.to_parquet(tmp_path / "b.parquet")
    with pytest.raises(ComparisonDataError, match=r"rows 5, 40 \(0-based data rows of 'b\.parquet'\)") as err:
        aggregate(str(tmp_path / "*.parquet"))
    with pytest.raises(ComparisonDataError) as alone:
        read_comparisons(tmp_path / "b.parquet")
    assert str(err.value) == str(alone.value)
    # NaN weight, self-comparison
    weighted = frame.drop(columns="time").assign(weight=1.0)
    weighted.loc[11, "weight"] = np.nan
    weighted.to_parquet(tmp_path / "nan.parquet")
    for engine in ("arrow", "duckdb"):
        with pytest.raises(ComparisonDataError, match=r"row 11 \(0-based data rows of 'nan\.parquet'\)"):
            aggregate(tmp_path / "nan.parquet", engine=engine)
    selfish = frame.drop(columns="time").copy()
    selfish.loc[3, "model_b"] = selfish.loc[3, "model_a"]
    selfish.to_csv(tmp_path / "self.csv", index=False)
    with pytest.raises(ComparisonDataError) as expected:
        read_comparisons(tmp_path / "self.csv")
    with pytest.raises(ComparisonDataError) as got:
        aggregate(tmp_path / "self.csv")
    assert str(got.value) == str(expected.value)
    with pytest.raises(ComparisonDataError, match="matches none"):
        aggregate(frame, where="turns > 100")
    with pytest.raises(ComparisonDataError, match="no column 'nope'"):
        aggregate(frame, where="nope == 1")


def test_where_translation_matches_select_rows():
    rng = np.random.default_rng(5)
    data = pd.DataFrame({"x": rng.normal(size=200), "k": rng.choice(["a", "b", None], 200),
                         "n": rng.integers(0, 10, 200)})
    data.loc[::7, "x"] = np.nan
    con = duckdb.connect()
    con.register("t", data)
    for cond in ["x > 0", "not (x > 0)", "x != 0.5", "k == 'a'", "k != 'a'", "k in ['a', 'b']",
                 "k not in ['a']", "x.isna() | (n % 3 == 1)", "~(k == 'b') and 2 < n <= 7",
                 "k.str.contains('a|b')", "n * 2 - 1 >= 7", "n / 4 > 1", "n // 4 == 1"]:
        mask = con.execute(f"SELECT {where_to_sql(cond, list(data.columns))} FROM t").fetchnumpy()
        got = np.asarray(next(iter(mask.values())), dtype=bool)
        np.testing.assert_array_equal(got, select_rows(data, cond), err_msg=cond)


def test_partials_merge_and_incremental(tmp_path, frame):
    keys = ["model_a", "model_b", "winner"]
    halves = [frame.iloc[:250], frame.iloc[250:]]
    merged = merge_partial_counts([partial_counts(h, keys) for h in halves], keys)
    truth = read_comparisons(frame).pair_counts()
    same(pair_counts_from_partial(merged), truth)
    # yesterday's counts saved, today's merged: equals aggregating both days; items union grows
    day1 = frame.iloc[:400]
    day2 = frame.iloc[400:].assign(model_a=lambda d: d.model_a.where(d.index % 9 != 0, "newcomer"))
    save_pair_counts(aggregate(day1), tmp_path / "counts.parquet")
    stored = load_pair_counts(tmp_path / "counts.parquet")
    same(stored, aggregate(day1))
    same(merge_pair_counts(stored, aggregate(day2)), aggregate(pd.concat([day1, day2], ignore_index=True)))


def test_warm_start_refit_takes_fewer_iterations():
    from bradley.solvers import bt as bt_solvers

    data, _ = bradley.simulate_bt(30, 30000, seed=4)  # yesterday: 90% of the games; today: all
    old, new = data.take(np.arange(27000)).pair_counts(), data.pair_counts()
    previous = bradley.BradleyTerry().fit(old)
    init = warm_start_scores(previous.items_, previous.scores_, new.items)
    assert init is not None
    np.testing.assert_array_equal(init, bradley.BradleyTerry(init=previous)._initial_scores(new))  # one rule
    assert abs(init.mean()) < 1e-12
    cold, warm = bt_solvers.mm(new), bt_solvers.mm(new, init=init)
    np.testing.assert_allclose(warm.scores, cold.scores, atol=1e-6)
    assert warm.n_iter < 0.9 * cold.n_iter


def test_count_bootstrap_matches_row_bootstrap():
    from bradley.inference import bootstrap_scores

    data, _ = bradley.simulate_bt(5, 1500, seed=2)
    pairs = data.pair_counts()
    model = bradley.BradleyTerry().fit(data)
    rows = bootstrap_scores(model, data, rounds=400, seed=1).scores.std(axis=0)
    for method in ("multinomial", "poisson"):
        counts = bootstrap_pair_counts(pairs, rounds=400, seed=7, method=method).scores.std(axis=0)
        np.testing.assert_allclose(counts, rows, rtol=0.15)
    # the bootstrap sd agrees with the count sandwich (no ties: both near the Fisher errors)
    sd = np.sqrt(np.diag(sandwich_pair_counts(pairs, model.scores_)))
    np.testing.assert_allclose(sd, rows, rtol=0.15)


def test_count_sandwich_equals_row_sandwich():
    from bradley.inference import sandwich_covariance

    p = PairCounts.from_matrix([[0, 30, 20, 4], [20, 0, 25, 9], [10, 25, 0, 6], [3, 7, 5, 0]],
                               [[0, 5, 2, 0], [5, 0, 4, 1], [2, 4, 0, 3], [0, 1, 3, 0]], items=list("abcd"))
    games = p.to_comparisons(frequencies=True)
    model = bradley.BradleyTerry().fit(games)
    want = sandwich_covariance(model, games)
    np.testing.assert_allclose(sandwich_pair_counts(p, model.scores_), want, atol=1e-10)


def test_cli_hook_and_leaderboard_on_counts(tmp_path, frame):
    import argparse

    from bradley.aggregate import aggregate_for_cli

    for k in range(2):
        frame.iloc[k * 300:(k + 1) * 300].to_parquet(tmp_path / f"p{k}.parquet")
    args = argparse.Namespace(data=str(tmp_path / "*.parquet"), where="category != 'code'", left=None)
    pairs = aggregate_for_cli(args)
    same(pairs, read_comparisons(frame, where="category != 'code'").pair_counts())
    assert aggregate_for_cli(argparse.Namespace(data=str(tmp_path / "p0.parquet"))) is None  # small: in memory
    with pytest.raises(ComparisonDataError, match="need the rows"):
        aggregate_for_cli(argparse.Namespace(data=str(tmp_path), covariates="len"))
    board = bradley.leaderboard(pairs)
    assert len(board.table) == pairs.n_items


def test_lean_path_counts_codes_and_falls_back(tmp_path, monkeypatch):
    """pairs ~ rows: labels validated once each, groups counted by codes; odd data go the row-by-row way."""
    import importlib

    module = importlib.import_module("bradley.aggregate")
    taken: list[bool] = []
    lean = module._lean_pair_counts

    def spy(*args, **kwargs):
        result = lean(*args, **kwargs)
        taken.append(result is not None)
        return result

    monkeypatch.setattr(module, "_lean_pair_counts", spy)
    rng = np.random.default_rng(3)
    n = 4000
    names = np.array([f"item{k}" for k in range(400)])  # ~80k pairs for 4k rows: one group per row
    a = rng.integers(0, 400, n)
    b = (a + rng.integers(1, 400, n)) % 400
    votes = pd.DataFrame({"model_a": names[a], "model_b": names[b],
                          "winner": rng.choice(["model_a", "model_b", "tie", "tie (bothbad)"], n)})
    votes = pd.concat([votes, votes.iloc[:50]], ignore_index=True)  # a few groups of two rows
    votes.to_parquet(tmp_path / "v.parquet")
    truth = read_comparisons(votes).pair_counts()
    for engine in ("arrow", "duckdb"):
        taken.clear()
        same(aggregate(tmp_path / "v.parquet", engine=engine), truth)
        assert taken == ([] if engine == "arrow" else [True])  # Arrow counts straight from the scan
    # integer labels and numeric outcomes (1 = left won, 0.5 = tie), an items= order with an unused item
    numeric = pd.DataFrame({"l": a, "r": b, "y": rng.choice([1.0, 0.0, 0.5], n)})
    order = list(range(400))[::-1] + [999]
    taken.clear()
    same(aggregate(numeric, left="l", right="r", outcome="y", items=order),
         read_comparisons(numeric, left="l", right="r", outcome="y", items=order).pair_counts())
    assert taken == [True]
    # warnings (dropped rows) and errors go through the full validation: same results and messages
    taken.clear()
    with pytest.warns(bradley.errors.DataWarning):
        same(aggregate(tmp_path / "v.parquet", both_bad="drop"), _quiet_truth(votes))
    assert taken == [False]
    broken = votes.copy()
    broken.loc[17, "model_b"] = broken.loc[17, "model_a"]
    broken.loc[[30, 31], "winner"] = "nobody"
    for frame_ in (broken, broken.assign(model_a=broken.model_a.where(broken.index != 9, None))):
        with pytest.raises(ComparisonDataError) as expected:
            read_comparisons(frame_)
        with pytest.raises(ComparisonDataError) as got:
            aggregate(frame_)
        assert str(got.value) == str(expected.value)


@pytest.mark.parametrize("dense_cells", [None, 0])
def test_arrow_scan_counts_without_a_grouped_table(tmp_path, monkeypatch, dense_cells):
    """Parquet counted from the scan's codes: equal to a brute-force count; odd data fall back with exact errors.

    ``dense_cells``: the label space up to which rows are counted densely (default; 0: one packed word a row).
    """
    import functools
    import importlib

    module = importlib.import_module("bradley.aggregate")
    if dense_cells is not None:
        monkeypatch.setattr(module, "_SCAN_DENSE_CELLS", dense_cells)
    taken: list[bool] = []
    scan = functools.partial(module._arrow_pair_counts, batch_size=700)  # many batches, labels met late

    def spy(*args, **kwargs):
        result = scan(*args, **kwargs)
        taken.append(result is not None)
        return result

    monkeypatch.setattr(module, "_arrow_pair_counts", spy)
    rng = np.random.default_rng(5)
    n = 5000
    names = np.array([f"m{k:03d}" for k in range(300)])
    a = rng.integers(0, 300, n)
    b = (a + rng.integers(1, 300, n)) % 300
    votes = pd.DataFrame({"model_a": names[a], "model_b": names[b],
                          "winner": rng.choice(["model_a", "model_b", "tie", "tie (bothbad)"], n),
                          "lang": rng.choice(["en", "fr"], n)})
    votes.loc[votes.model_a == "m007", "lang"] = "fr"  # m007 only ever plays as left in French rows
    votes.loc[votes.model_b == "m007", "lang"] = "fr"
    for k in range(3):
        votes.iloc[k * 1700:(k + 1) * 1700].to_parquet(tmp_path / f"p{k}.parquet")
    for where in (None, "lang == 'en'"):
        taken.clear()
        got = aggregate(str(tmp_path / "*.parquet"), where=where)
        assert taken == [True]
        kept = votes if where is None else votes[votes.lang == "en"]
        same(got, read_comparisons(kept).pair_counts())
        # brute force: a dictionary of (first, second) -> [wins first, wins second, ties], first < second by name
        tally: dict[tuple[str, str], list[float]] = {}
        for left, right, w in zip(kept.model_a, kept.model_b, kept.winner, strict=True):
            key = (min(left, right), max(left, right))
            cell = 2 if w.startswith("tie") else int((w == "model_a") != (left == key[0]))
            tally.setdefault(key, [0.0, 0.0, 0.0])[cell] += 1
        items = got.items.tolist()
        assert ("m007" in items) == (where is None)
        found = {(items[i], items[j]): [x, y, z] for i, j, x, y, z in zip(
            got.first, got.second, got.wins_first, got.wins_second, got.ties, strict=True)}
        assert found == tally
    # missing labels, self-comparisons, unknown outcomes, soft outcomes: the partial path, same answers
    broken = votes.copy()
    broken.loc[17, "model_b"] = broken.loc[17, "model_a"]
    broken.loc[[30, 31], "winner"] = "nobody"
    for k, frame_ in enumerate((broken, votes.assign(model_a=votes.model_a.where(votes.index != 9, None)))):
        frame_.to_parquet(tmp_path / f"bad{k}.parquet")
        with pytest.raises(ComparisonDataError) as expected:
            read_comparisons(frame_)
        taken.clear()
        with pytest.raises(ComparisonDataError):
            aggregate(tmp_path / f"bad{k}.parquet")
        assert taken == [False]
    numeric = pd.DataFrame({"l": a, "r": b, "y": rng.choice([1.0, 0.0, 0.5], n)})  # integer labels, 1/0/0.5
    numeric.to_parquet(tmp_path / "numeric.parquet")
    taken.clear()
    same(aggregate(tmp_path / "numeric.parquet", left="l", right="r", outcome="y"),
         read_comparisons(numeric, left="l", right="r", outcome="y").pair_counts())
    assert taken == [True]


def test_arrow_scan_dense_counts_spilled_when_labels_grow(tmp_path, monkeypatch):
    """Rows counted densely while the label space is small, then one word a row: the counts add up exactly."""
    import importlib

    module = importlib.import_module("bradley.aggregate")
    monkeypatch.setattr(module, "_SCAN_DENSE_CELLS", 20_000)
    mixed: list[int] = []
    raw = module._count_sorted_codes_raw
    monkeypatch.setattr(module, "_count_sorted_codes_raw", lambda code: (mixed.append(len(code)), raw(code))[1])
    rng = np.random.default_rng(8)
    names = np.array([f"m{k:03d}" for k in range(200)])
    parts = []
    for k, size in enumerate((50, 100, 200)):  # 50 x 50 x 3 cells fit, 100 x 100 x 3 do not
        a = rng.integers(0, size, 3000)
        b = (a + rng.integers(1, size, 3000)) % size
        part = pd.DataFrame({"model_a": names[a], "model_b": names[b],
                             "winner": rng.choice(["model_a", "model_b", "tie"], 3000)})
        part.to_parquet(tmp_path / f"p{k}.parquet")
        parts.append(part)
    got = aggregate(str(tmp_path / "*.parquet"))
    assert mixed == [6000]  # the last two files were counted one word a row, merged with the dense cells
    same(got, read_comparisons(pd.concat(parts, ignore_index=True)).pair_counts())


def _quiet_truth(votes: pd.DataFrame) -> PairCounts:
    with pytest.warns(bradley.errors.DataWarning):
        return read_comparisons(votes, both_bad="drop").pair_counts()


def test_cli_reads_directories_and_globs_like_the_concatenated_file(tmp_path, frame, capsys):
    """`bradley fit DIR` and `bradley leaderboard "glob"` print what the same commands print on one file."""
    import json

    from bradley.cli import main

    data = frame.drop(columns="time")
    (tmp_path / "parts").mkdir()
    for k in range(3):
        data.iloc[k * 200:(k + 1) * 200].to_parquet(tmp_path / "parts" / f"p{k}.parquet")
    data.to_parquet(tmp_path / "all.parquet")

    def run(*argv: str) -> dict:
        capsys.readouterr()
        assert main(list(argv)) == 0
        return json.loads(capsys.readouterr().out)

    one = run("fit", str(tmp_path / "all.parquet"), "--format", "json")
    many = run("fit", str(tmp_path / "parts"), "--format", "json")
    assert (one["n_items"], one["log_likelihood"]) == (many["n_items"], pytest.approx(many["log_likelihood"]))
    assert one["n_comparisons"] == many["n_comparisons"] == len(data)  # games, not pair rows
    for a, b in zip(one["items"], many["items"], strict=True):
        assert (a["name"], a["wins"], a["losses"], a["ties"]) == (b["name"], b["wins"], b["losses"], b["ties"])
        assert a["score"] == pytest.approx(b["score"], abs=1e-9)
        assert a["se"] == pytest.approx(b["se"], abs=1e-9)
    for ci in ("sandwich", "fisher", "bootstrap"):
        argv = ["--format", "json", "--ci", ci, "--rounds", "200", "--where", "category != 'code'"]
        rows = run("leaderboard", str(tmp_path / "all.parquet"), *argv)
        counted = run("leaderboard", str(tmp_path / "parts" / "*.parquet"), *argv)
        assert rows["n_comparisons"] == counted["n_comparisons"]
        assert len(rows["items"]) == len(counted["items"]) == 12
        for a, b in zip(rows["items"], counted["items"], strict=True):
            assert (a["name"], a["comparisons"], a["ties"]) == (b["name"], b["comparisons"], b["ties"])
            assert a["score"] == pytest.approx(b["score"], abs=1e-9)
            # resampling: same law, other draws (rows come back in pair order); the rest to rounding
            tol = 0.2 * a["se"] if ci == "bootstrap" else 1e-9
            assert a["se"] == pytest.approx(b["se"], abs=tol)


@pytest.mark.parametrize("dense_cells", [None, 0])
def test_arrow_scan_counts_winner_loser_columns(tmp_path, monkeypatch, dense_cells):
    """(winner, loser) Parquet counted from the scan equals read_comparisons(...).pair_counts() and a brute force."""
    import functools
    import importlib

    module = importlib.import_module("bradley.aggregate")
    if dense_cells is not None:
        monkeypatch.setattr(module, "_SCAN_DENSE_CELLS", dense_cells)
    taken: list[bool] = []
    scan = functools.partial(module._arrow_pair_counts, batch_size=500)

    def spy(*args, **kwargs):
        result = scan(*args, **kwargs)
        taken.append(result is not None)
        return result

    monkeypatch.setattr(module, "_arrow_pair_counts", spy)
    rng = np.random.default_rng(12)
    n = 3000
    names = np.array([f"p{k:02d}" for k in range(40)])
    a = rng.integers(0, 40, n)
    b = (a + rng.integers(1, 40, n)) % 40
    games = pd.DataFrame({"won": names[a], "lost": names[b], "lang": rng.choice(["en", "fr"], n)})
    for k in range(2):
        games.iloc[k * 1500:(k + 1) * 1500].to_parquet(tmp_path / f"g{k}.parquet")
    for where in (None, "lang == 'fr'"):
        taken.clear()
        got = aggregate(str(tmp_path / "g*.parquet"), winner="won", loser="lost", where=where)
        assert taken == [True]
        kept = games if where is None else games[games.lang == "fr"]
        same(got, read_comparisons(kept, winner="won", loser="lost").pair_counts())
        tally: dict[tuple[str, str], list[float]] = {}
        for w, l_ in zip(kept.won, kept.lost, strict=True):
            key = (min(w, l_), max(w, l_))
            tally.setdefault(key, [0.0, 0.0, 0.0])[int(w != key[0])] += 1
        items = got.items.tolist()
        found = {(items[i], items[j]): [x, y, z] for i, j, x, y, z in zip(
            got.first, got.second, got.wins_first, got.wins_second, got.ties, strict=True)}
        assert found == tally
    # a self-comparison: the partial path and its exact error
    broken = games.copy()
    broken.loc[11, "lost"] = broken.loc[11, "won"]
    broken.to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(ComparisonDataError) as expected:
        read_comparisons(broken, winner="won", loser="lost")
    taken.clear()
    with pytest.raises(ComparisonDataError) as got_error:
        aggregate(tmp_path / "bad.parquet", winner="won", loser="lost")
    assert taken == [False]
    assert "11" in str(got_error.value) and type(got_error.value) is type(expected.value)


def _spy_scan(monkeypatch, batch_size: int) -> tuple[object, list[bool]]:
    """Patch the scan counter to read small batches and record whether it answered (True) or fell back."""
    import functools
    import importlib

    module = importlib.import_module("bradley.aggregate")
    scan = functools.partial(module._arrow_pair_counts, batch_size=batch_size)
    taken: list[bool] = []

    def spy(*args, **kwargs):
        result = scan(*args, **kwargs)
        taken.append(result is not None)
        return result

    monkeypatch.setattr(module, "_arrow_pair_counts", spy)
    return module, taken


def close(a: PairCounts, b: PairCounts, rtol: float = 1e-12) -> None:
    """Same items and pairs; float sums equal to ``rtol`` (summation order differs)."""
    assert a.items.tolist() == b.items.tolist()
    for name in ("first", "second"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for name in ("wins_first", "wins_second", "ties"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=rtol, atol=0, err_msg=name)


def _weighted_tally(first: np.ndarray, second: np.ndarray, cell: np.ndarray, weight: np.ndarray) -> dict:
    """Brute force: (min name, max name) -> [weight first won, weight second won, weight tied], in row order."""
    tally: dict[tuple[str, str], list[float]] = {}
    for a, b, c, w in zip(first, second, cell, weight, strict=True):
        key = (min(a, b), max(a, b))
        k = 2 if c == 2 else int((c == 0) != (a == key[0]))  # c: 0 = a won, 1 = b won, 2 = tie
        tally.setdefault(key, [0.0, 0.0, 0.0])[k] += float(w)
    return tally


def _found(got: PairCounts) -> dict:
    items = got.items.tolist()
    return {(items[i], items[j]): [x, y, z] for i, j, x, y, z in zip(
        got.first, got.second, got.wins_first, got.wins_second, got.ties, strict=True)}


@pytest.mark.parametrize("dense_cells", [None, 0])
def test_arrow_scan_counts_weighted_sources(tmp_path, monkeypatch, dense_cells):
    """Weighted Parquet counted from the scan: equal to read_comparisons(...).pair_counts() and to a brute force.

    Float weights (some 0: their pairs and items stay, with 0 counts), several files, where=;
    (left, right, outcome) and (winner, loser) columns; dense counting (default) and one word a row (0).
    """
    module, taken = _spy_scan(monkeypatch, 700)
    if dense_cells is not None:
        monkeypatch.setattr(module, "_SCAN_DENSE_CELLS", dense_cells)
    rng = np.random.default_rng(21)
    n = 5000
    names = np.array([f"m{k:03d}" for k in range(80)])
    a = rng.integers(0, 80, n)
    b = (a + rng.integers(1, 80, n)) % 80
    votes = pd.DataFrame({"model_a": names[a], "model_b": names[b],
                          "winner": rng.choice(["model_a", "model_b", "tie"], n),
                          "weight": rng.gamma(0.7, 2.0, n), "lang": rng.choice(["en", "fr"], n)})
    votes.loc[rng.random(n) < 0.15, "weight"] = 0.0
    votes.loc[(votes.model_a == "m005") | (votes.model_b == "m005"), "weight"] = 0.0  # m005 only at weight 0
    for k in range(3):
        votes.iloc[k * 1700:(k + 1) * 1700].to_parquet(tmp_path / f"v{k}.parquet")
    cell = votes.winner.map({"model_a": 0, "model_b": 1, "tie": 2}).to_numpy()
    for where in (None, "lang == 'en'"):
        taken.clear()
        got = aggregate(str(tmp_path / "v*.parquet"), where=where)
        assert taken == [True]
        keep = np.ones(n, dtype=bool) if where is None else (votes.lang == "en").to_numpy()
        kept = votes[keep]
        close(got, read_comparisons(kept).pair_counts())
        assert "m005" in got.items.tolist() and not got.totals[(got.first == 5) | (got.second == 5)].any()
        want = _weighted_tally(kept.model_a.to_numpy(), kept.model_b.to_numpy(), cell[keep], kept.weight.to_numpy())
        found = _found(got)
        assert found.keys() == want.keys()
        for key, sums in want.items():
            np.testing.assert_allclose(found[key], sums, rtol=1e-12, atol=0, err_msg=str(key))
    # whole-number weights (an int64 column) are summed exactly
    votes.assign(weight=rng.integers(0, 5, n)).to_parquet(tmp_path / "ints.parquet")
    taken.clear()
    same(aggregate(tmp_path / "ints.parquet", weight="weight"),
         read_comparisons(tmp_path / "ints.parquet", weight="weight").pair_counts())
    assert taken == [True]
    # (winner, loser) with weights
    games = pd.DataFrame({"won": names[a], "lost": names[b], "w": rng.random(n) * 4, "lang": votes.lang})
    for k in range(2):
        games.iloc[k * 2500:(k + 1) * 2500].to_parquet(tmp_path / f"g{k}.parquet")
    for where in (None, "lang == 'fr'"):
        taken.clear()
        got = aggregate(str(tmp_path / "g*.parquet"), winner="won", loser="lost", weight="w", where=where)
        assert taken == [True]
        kept = games if where is None else games[games.lang == "fr"]
        close(got, read_comparisons(kept, winner="won", loser="lost", weight="w").pair_counts())
        want = _weighted_tally(kept.won.to_numpy(), kept.lost.to_numpy(), np.zeros(len(kept)), kept.w.to_numpy())
        found = _found(got)
        assert found.keys() == want.keys()
        for key, sums in want.items():
            np.testing.assert_allclose(found[key], sums, rtol=1e-12, atol=0, err_msg=str(key))


def test_arrow_scan_weighted_dense_to_words_switch(tmp_path, monkeypatch):
    """Weighted rows counted densely, then one word a row once the labels outgrow the dense array: sums add up."""
    module, taken = _spy_scan(monkeypatch, 1000)
    monkeypatch.setattr(module, "_SCAN_DENSE_CELLS", 20_000)
    seen: list[tuple[int, int, int]] = []
    cells = module._weighted_cells

    def spy_cells(chunks, chunk_weights, dense_cells, zero_words, *rest):
        seen.append((sum(len(c) for c in chunks if c is not None), len(dense_cells), len(zero_words)))
        return cells(chunks, chunk_weights, dense_cells, zero_words, *rest)

    monkeypatch.setattr(module, "_weighted_cells", spy_cells)
    rng = np.random.default_rng(9)
    names = np.array([f"m{k:03d}" for k in range(200)])
    parts = []
    for k, size in enumerate((50, 100, 200)):  # 50 x 50 x 3 cells fit in 20k, 100 x 100 x 3 do not
        a = rng.integers(0, size, 3000)
        b = (a + rng.integers(1, size, 3000)) % size
        w = rng.exponential(1.0, 3000)
        w[rng.random(3000) < 0.2] = 0.0
        part = pd.DataFrame({"model_a": names[a], "model_b": names[b],
                             "winner": rng.choice(["model_a", "model_b", "tie"], 3000), "weight": w})
        part.to_parquet(tmp_path / f"p{k}.parquet")
        parts.append(part)
    got = aggregate(str(tmp_path / "*.parquet"))
    assert taken == [True]
    # rows of the last two files as words; one dense spill; weight-0 cells of the three dense batches and
    # of the batch whose new labels ended dense counting
    assert seen == [(6000, 1, 4)]
    close(got, read_comparisons(pd.concat(parts, ignore_index=True)).pair_counts())


def test_arrow_scan_bad_weights_fall_back_with_exact_errors(tmp_path, monkeypatch):
    """NaN, missing, negative, infinite, out-of-range weights: the partial path's error, as read_comparisons says it."""
    module, taken = _spy_scan(monkeypatch, 100)
    rng = np.random.default_rng(4)
    n = 400
    names = np.array([f"m{k:02d}" for k in range(15)])
    a = rng.integers(0, 15, n)
    b = (a + rng.integers(1, 15, n)) % 15
    votes = pd.DataFrame({"model_a": names[a], "model_b": names[b],
                          "winner": rng.choice(["model_a", "model_b", "tie"], n), "weight": rng.random(n) + 0.5,
                          "lang": np.where(np.arange(n) % 2 == 0, "en", "fr")})
    votes.iloc[:200].to_parquet(tmp_path / "a.parquet")
    for bad in (np.nan, None, -1.0, np.inf, 1e200):
        second = votes.iloc[200:].reset_index(drop=True).copy()
        if bad is None:
            second["weight"] = second["weight"].astype(object)
        second.loc[[13, 57], "weight"] = bad  # odd rows: French
        second.to_parquet(tmp_path / "b.parquet")
        taken.clear()
        with pytest.raises(ComparisonDataError) as got:
            aggregate(str(tmp_path / "*.parquet"))
        assert taken == [False]
        with pytest.raises(ComparisonDataError) as alone:
            read_comparisons(tmp_path / "b.parquet")
        assert str(got.value) == str(alone.value)
        assert "rows 13, 57 (0-based data rows of 'b.parquet')" in str(got.value)
        # rows filtered out by where= are not checked (as in read_comparisons(where=...)): the scan answers
        taken.clear()
        close(aggregate(str(tmp_path / "*.parquet"), where="lang == 'en'"),
              read_comparisons(pd.concat([votes.iloc[:200], second], ignore_index=True),
                               where="lang == 'en'").pair_counts())
        assert taken == [True]
