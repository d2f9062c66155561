"""Aggregated count tables (item1, item2, win1, win2[, tie]), as R's BradleyTerry2 takes them."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import optimize
from scipy.special import log_expit

import bradley
import bradley.io
from bradley.cli import main
from bradley.errors import ComparisonDataError, DataWarning
from bradley.io import is_count_table, read_comparisons, read_pair_counts

# Three items; (a, b) appears twice, once in each orientation; (b, c) has ties.
TABLE = pd.DataFrame(
    {
        "player1": ["a", "b", "a", "c"],
        "player2": ["b", "a", "c", "b"],
        "win1": [3, 2, 4, 1],
        "win2": [1, 2, 1, 2],
        "tie": [0, 1, 0, 2],
    }
)


def rows_of(table: pd.DataFrame) -> pd.DataFrame:
    """The same data as one row per game, in the order read_comparisons expands a count table."""
    records = []
    for r in table.itertuples(index=False):
        records += [(r.player1, r.player2, 1.0)] * r.win1 + [(r.player1, r.player2, 0.0)] * r.win2
        records += [(r.player1, r.player2, 0.5)] * r.tie
    return pd.DataFrame(records, columns=["left", "right", "outcome"])


def test_read_pair_counts_sums_repeated_pairs_in_either_orientation():
    p = read_pair_counts(TABLE)
    assert p.items.tolist() == ["a", "b", "c"]
    assert list(zip(p.first.tolist(), p.second.tolist())) == [(0, 1), (0, 2), (1, 2)]
    # (a, b): 3-1 as given, plus b-a 2-2 with a tie -> a 5, b 3, 1 tie
    # (a, c): 4-1; (b, c) from c-b 1-2 with 2 ties -> b 2, c 1, 2 ties
    assert p.wins_first.tolist() == [5.0, 4.0, 2.0]
    assert p.wins_second.tolist() == [3.0, 1.0, 1.0]
    assert p.ties.tolist() == [1.0, 0.0, 2.0]
    # the same counts as the games one by one
    q = bradley.Comparisons.from_arrays(*(rows_of(TABLE)[c] for c in ("left", "right", "outcome"))).pair_counts()
    for name in ("first", "second", "wins_first", "wins_second", "ties"):
        assert np.array_equal(getattr(p, name), getattr(q, name))


def test_column_names_detected_or_given():
    renamed = TABLE.rename(columns={"player1": "item1", "player2": "item2", "win1": "wins1", "win2": "wins2",
                                    "tie": "ties"})
    assert read_pair_counts(renamed).ties.tolist() == [1.0, 0.0, 2.0]
    custom = TABLE.rename(columns={"player1": "home", "player2": "away", "win1": "hw", "win2": "aw", "tie": "d"})
    p = read_pair_counts(custom, item1="home", item2="away", win1="hw", win2="aw", tie="d")
    assert p.wins_first.tolist() == [5.0, 4.0, 2.0] and p.ties.tolist() == [1.0, 0.0, 2.0]
    # without tie=, a column of another name is not used: no ties
    assert read_pair_counts(custom, item1="home", item2="away", win1="hw", win2="aw").ties.sum() == 0
    assert is_count_table(["item1", "item2", "win1", "win2"]) and not is_count_table(["left", "right", "outcome"])
    assert is_count_table(["x", "y"], win1="x")


def test_items_fixed_and_zero_pairs_left_out():
    table = pd.DataFrame({"item1": ["a", "b"], "item2": ["b", "c"], "win1": [2, 0], "win2": [1, 0]})
    p = read_pair_counts(table, items=["c", "b", "a", "d"])
    assert p.items.tolist() == ["c", "b", "a", "d"]
    assert (p.first.tolist(), p.second.tolist(), p.wins_first.tolist()) == ([1], [2], [1.0])  # b vs a: b won 1
    assert read_pair_counts(table).n_pairs == 1 and read_pair_counts(table).n_items == 3


@pytest.mark.parametrize(
    "change, message, rows",
    [
        ({"win1": [3, -2, 4, 1]}, r"'win1': \[-2\] in row 1", [1]),
        ({"win2": [1, 2, np.nan, 2]}, r"'win2': \[nan\] in row 2", [2]),
        ({"tie": [0, 1, 0, np.inf]}, r"'tie': \[inf\] in row 3", [3]),
        ({"win1": ["3", "x", "4", "1"], "win2": [1, 2, 1, -1]}, r"'win1': \['x'\] in row 1 \(0-based\); 'win2': \[-1\] in row 3",
         [1, 3]),
    ],
)
def test_bad_counts_name_columns_and_rows(change, message, rows):
    bad = TABLE.assign(**change)
    for reader in (read_pair_counts, read_comparisons):
        with pytest.raises(ComparisonDataError, match=message) as info:
            reader(bad)
        assert info.value.rows == rows


def test_self_pairs_missing_columns_and_missing_names():
    bad = TABLE.assign(player2=["b", "b", "c", "b"])
    with pytest.raises(ComparisonDataError, match=r"paired with itself in row 1 \(0-based\) \(first: 'b' vs 'b'\)"):
        read_pair_counts(bad)
    with pytest.warns(DataWarning, match=r"dropped 1 of 4 count-table rows .*row 1"):
        c = read_comparisons(bad, drop_self_comparisons=True)
    assert c.n_comparisons == TABLE.drop(index=1)[["win1", "win2", "tie"]].to_numpy().sum()
    with pytest.raises(ComparisonDataError, match=r"no column for \['win2'\].*Name them"):
        read_pair_counts(TABLE.drop(columns="win2").rename(columns={"win1": "w"}), win1="w")
    with pytest.raises(ComparisonDataError, match=r"missing column\(s\) \['nope'\]"):
        read_pair_counts(TABLE, tie="nope")
    with pytest.raises(ComparisonDataError, match=r"missing item name .* row 2"):
        read_pair_counts(TABLE.assign(player1=["a", "b", None, "c"]))
    with pytest.raises(ComparisonDataError, match="do not apply"):
        read_comparisons(TABLE, outcome="tie")


def test_count_table_equals_the_same_data_as_rows(tmp_path):
    counts_path, rows_path = tmp_path / "counts.csv", tmp_path / "rows.csv"
    TABLE.to_csv(counts_path, index=False)
    rows_of(TABLE).to_csv(rows_path, index=False)
    c, r = read_comparisons(counts_path), read_comparisons(rows_path)
    assert c.weight is None  # frequencies, not weights
    for name in ("left", "right", "outcome"):
        assert np.array_equal(getattr(c, name), getattr(r, name))
    by_counts = bradley.BradleyTerry().fit(counts_path)
    by_pairs = bradley.BradleyTerry().fit(read_pair_counts(counts_path))
    by_rows = bradley.BradleyTerry().fit(rows_path)
    np.testing.assert_allclose(by_counts.scores_, by_rows.scores_, atol=1e-12)
    np.testing.assert_allclose(by_pairs.scores_, by_rows.scores_, atol=1e-12)
    np.testing.assert_allclose(by_counts.standard_errors(), by_rows.standard_errors(), rtol=1e-10)
    assert by_counts.n_comparisons_ == by_rows.n_comparisons_ == 19


def test_count_table_fit_matches_brute_force_likelihood():
    # independent truth: BT log-likelihood of the counts (ties as half a win each way), maximised by scipy
    p = read_pair_counts(TABLE)
    w_f, w_s = p.wins_first + 0.5 * p.ties, p.wins_second + 0.5 * p.ties

    def nll(free):
        s = np.concatenate([[0.0], free])
        d = s[p.first] - s[p.second]
        return -float((w_f * log_expit(d) + w_s * log_expit(-d)).sum())

    best = optimize.minimize(nll, np.zeros(2), method="BFGS", options={"gtol": 1e-12})
    truth = np.concatenate([[0.0], best.x])
    model = bradley.BradleyTerry().fit(TABLE)
    np.testing.assert_allclose(model.scores_ - model.scores_[0], truth, atol=1e-6)


def test_bootstrap_over_a_count_table_resamples_comparisons(tmp_path):
    # Frequencies, not weights: the bootstrap of a count table is the bootstrap of its games. Same
    # seed, same games in the same order -> the same replicates; and the spread matches Fisher.
    rng = np.random.default_rng(0)
    items = [f"t{k}" for k in range(5)]
    strength = np.array([0.8, 0.3, 0.0, -0.4, -0.7])
    records = []
    for i in range(5):
        for j in range(i + 1, 5):
            n = 60
            w = rng.binomial(n, 1 / (1 + np.exp(strength[j] - strength[i])))
            records.append({"player1": items[i], "player2": items[j], "win1": int(w), "win2": int(n - w), "tie": 0})
    table = pd.DataFrame(records)
    counts_path, rows_path = tmp_path / "counts.csv", tmp_path / "rows.csv"
    table.to_csv(counts_path, index=False)
    rows_of(table).to_csv(rows_path, index=False)
    a = bradley.leaderboard(counts_path, ci="bootstrap", rounds=300, seed=4)
    b = bradley.leaderboard(rows_path, ci="bootstrap", rounds=300, seed=4)
    np.testing.assert_allclose(a.bootstrap.scores, b.bootstrap.scores, atol=1e-9)
    fisher = bradley.leaderboard(counts_path, ci="fisher").table.set_index("item")["se"]
    boot = a.table.set_index("item")["se"]
    # 300 replicates: an SE estimate is good to ~4%; resampling the weighted rows (PairCounts.to_comparisons())
    # as units instead gives SEs ~10x too large on these data
    np.testing.assert_allclose(boot.loc[fisher.index], fisher, rtol=0.15)


def test_non_integer_counts_are_weighted_rows_with_a_warning(tmp_path, capsys):
    table = TABLE.assign(win1=[2.5, 2, 4, 1])
    with pytest.warns(DataWarning, match="non-integer counts"):
        c = read_comparisons(table)
    assert c.weight is not None and c.n_comparisons == 10  # one row per table row and outcome with a count
    model = bradley.BradleyTerry().fit(c)
    np.testing.assert_allclose(model.scores_, bradley.BradleyTerry().fit(read_pair_counts(table)).scores_, atol=1e-12)
    path = tmp_path / "weighted.csv"
    table.to_csv(path, index=False)
    assert main(["leaderboard", str(path), "--ci", "bootstrap", "--rounds", "10"]) == 2
    err = capsys.readouterr().err
    assert "non-integer counts" in err and "--ci fisher" in err
    assert main(["leaderboard", str(path), "--ci", "fisher", "--format", "json"]) == 0


def test_expansion_limit(monkeypatch):
    monkeypatch.setattr(bradley.io, "MAX_EXPANDED_ROWS", 10)
    with pytest.raises(ComparisonDataError, match=r"19 games.*read_pair_counts"):
        read_comparisons(TABLE)
    assert read_pair_counts(TABLE).totals.sum() == 19


def test_order_column_applies_to_every_game_of_its_row():
    table = TABLE.assign(home=["a", "a", "", "b"])  # row 1: player2 'a' at home; row 2: neutral
    c = read_comparisons(table, order="home")
    per_table_row = np.repeat(np.arange(4), TABLE[["win1", "win2", "tie"]].sum(axis=1))
    assert c.order.tolist() == np.array([1.0, -1.0, 0.0, -1.0])[per_table_row].tolist()


def test_cli_fit_and_leaderboard_on_count_tables(tmp_path, capsys):
    path = tmp_path / "counts.csv"
    TABLE.to_csv(path, index=False)
    assert main(["fit", str(path), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    model = bradley.BradleyTerry().fit(read_pair_counts(path))
    assert out["n_comparisons"] == 19
    got = {item["name"]: item["score"] for item in out["items"]}
    for name, score in zip(model.items_, model.scores_):
        assert got[name] == pytest.approx(score, abs=1e-10)
    assert main(["leaderboard", str(path), "--ci", "fisher", "--format", "json"]) == 0
    board = json.loads(capsys.readouterr().out)
    se = {item["name"]: item["se"] for item in board["items"]}
    for name, value in model.standard_errors().items():
        assert se[name] == pytest.approx(value, rel=1e-8)
    # other column names, named on the command line (BradleyTerry2's baseball layout)
    other = tmp_path / "baseball.csv"
    TABLE.rename(columns={"player1": "home.team", "player2": "away.team", "win1": "home.wins",
                          "win2": "away.wins", "tie": "draws"}).to_csv(other, index=False)
    assert main(["fit", str(other), "--counts", "--left", "home.team", "--right", "away.team", "--win1",
                 "home.wins", "--win2", "away.wins", "--tie", "draws", "--format", "json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert {i["name"]: i["score"] for i in again["items"]} == pytest.approx(got, abs=1e-12)
    # without --counts the file is not recognised, and the message says what to name
    assert main(["fit", str(other)]) == 2
    assert "missing column(s)" in capsys.readouterr().err


def test_weight_option_refused_for_count_tables():
    with pytest.raises(ComparisonDataError, match="counts are the frequencies"):
        read_comparisons(TABLE, weight="tie")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_comparisons(TABLE.assign(weight=1.0))  # a stray weight column is not used


# Davidson (1970), Example 2: 6 puddings, all 15 pairs (i, j, wins of i, wins of j, ties)
PUDDING = np.array([
    [1, 2, 19, 22, 16], [1, 3, 16, 19, 12], [2, 3, 19, 19, 10], [1, 4, 18, 23, 13], [2, 4, 23, 19, 9],
    [3, 4, 19, 20, 15], [1, 5, 13, 19, 18], [2, 5, 16, 20, 12], [3, 5, 16, 15, 17], [4, 5, 17, 14, 16],
    [1, 6, 18, 21, 12], [2, 6, 22, 20, 12], [3, 6, 13, 18, 10], [4, 6, 14, 19, 18], [5, 6, 11, 21, 12]])


def test_integer_item_ids_in_a_count_table_are_labels(tmp_path, capsys):
    """Issue 9 item 1: brands 1..6 read as codes gave 7 items with a phantom item 0."""
    path = tmp_path / "pudding.csv"
    pd.DataFrame(PUDDING, columns=["item1", "item2", "win1", "win2", "tie"]).to_csv(path, index=False)
    pairs = read_pair_counts(path)
    assert pairs.items.tolist() == [1, 2, 3, 4, 5, 6]
    assert read_comparisons(path).items.tolist() == [1, 2, 3, 4, 5, 6]
    assert main(["fit", str(path), "--model", "davidson", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert sorted(item["name"] for item in out["items"]) == [1, 2, 3, 4, 5, 6]
    # the same fit as from string names
    named = pd.DataFrame(PUDDING, columns=["item1", "item2", "win1", "win2", "tie"]).astype({"item1": str, "item2": str})
    ref = bradley.Davidson().fit(read_pair_counts(named))
    got = {str(item["name"]): item["score"] for item in out["items"]}
    for name, score in zip(ref.items_, ref.scores_):
        assert got[name] == pytest.approx(score, abs=1e-8)


def test_a_misnamed_column_is_named_as_given(tmp_path, capsys):
    """`--counts --win1 nope` reported "no column for ['win2']"; the message names 'nope' and its role."""
    with pytest.raises(ComparisonDataError, match=r"missing column\(s\) \['nope'\] \(given as win1='nope'\)") as err:
        read_comparisons(TABLE, counts=True, win1="nope")
    assert "win2" not in str(err.value).split(":")[1]
    with pytest.raises(ComparisonDataError, match=r"\['nope'\] \(given as win1='nope'\)"):
        read_pair_counts(TABLE, win1="nope")
    path = tmp_path / "counts.csv"
    TABLE.to_csv(path, index=False)
    assert main(["fit", str(path), "--counts", "--win1", "nope"]) == 2
    assert "['nope'] (given as win1='nope')" in capsys.readouterr().err
    with pytest.raises(ComparisonDataError, match=r"\['nope'\] \(given as left='nope'\)"):
        read_comparisons(pd.DataFrame({"left": ["a"], "right": ["b"], "outcome": [1]}), left="nope")
