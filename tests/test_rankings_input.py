"""Rankings input: wide layout with ids, rank matrices (R's as.rankings shape), clear errors."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize
from scipy.special import logsumexp

import bradley
from bradley import ComparisonDataError, PlackettLuce, Rankings, read_rankings

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "plackettluce"
needs_data = pytest.mark.skipif(not (DATA / "salad_rankings.csv").exists(), reason="R PlackettLuce data not present")


def entries(r: Rankings):
    """{ranking id position: {item: level}} for comparing readers."""
    out = {}
    for k, i, lv in zip(r.ranking, r.item, r.level):
        out.setdefault(int(k), {})[r.items[i]] = int(lv)
    return out


def test_wide_ranking_column_holds_ids_not_items():
    """Regression (issue 8.3): a `ranking` id column was read as the first-placed item."""
    frame = pd.DataFrame({"ranking": [101, 102], "p1": ["a", "c"], "p2": ["b", "a"], "p3": ["c", None]})
    r = read_rankings(frame, layout="wide")
    assert sorted(r.items.tolist()) == ["a", "b", "c"]
    assert entries(r) == {0: {"a": 1, "b": 2, "c": 3}, 1: {"c": 1, "a": 2}}


def test_wide_explicit_id_column_and_long_id_option(tmp_path):
    frame = pd.DataFrame({"race": ["x1", "x2"], "first": ["a", "b"], "second": ["b", "c"]})
    r = read_rankings(frame, layout="wide", id="race")
    assert entries(r) == {0: {"a": 1, "b": 2}, 1: {"b": 1, "c": 2}}
    # without id= an unnamed id column is refused (it was read as first places); id=False reads it as data
    with pytest.raises(ComparisonDataError, match=r"first column 'race' looks like a ranking id.*id='race'"):
        read_rankings(frame, layout="wide")
    assert "x1" in read_rankings(frame, layout="wide", id=False).items.tolist()
    assert "x1" in read_rankings(frame, layout="wide", id="").items.tolist()
    long = pd.DataFrame({"judge": [1, 1, 2, 2], "item": list("abba"), "rank": [1, 2, 1, 2]})
    assert read_rankings(long, id="judge").n_rankings == 2
    with pytest.raises(ComparisonDataError, match="'judge'"):
        read_rankings(long.drop(columns="judge"), id="judge")


def test_item_twice_in_a_ranking_names_the_ranking_and_row():
    frame = pd.DataFrame({"ranking": ["r1", "r2"], "p1": ["a", "b"], "p2": ["b", "c"], "p3": ["c", "b"]})
    with pytest.raises(ComparisonDataError, match=r"row 1 \(ranking 'r2'\): 'b'"):
        read_rankings(frame, layout="wide")
    with pytest.raises(ComparisonDataError, match=r"ranking 7: item 'a' at rows \[1, 3\]"):
        Rankings.from_long([5, 7, 5, 7], ["a", "a", "b", "a"], [1, 1, 2, 2])
    with pytest.raises(ComparisonDataError, match=r"repeat across rows \(\['r1'\]"):
        read_rankings(pd.DataFrame({"ranking": ["r1", "r1"], "p1": ["a", "b"], "p2": ["b", "a"]}), layout="wide")
    with pytest.raises(ComparisonDataError, match=r"ids \['solo'\]"):
        Rankings.from_long(["solo", "pair", "pair"], ["a", "a", "b"], [1, 1, 2])


def test_rank_matrix_ties_gaps_and_absent_items():
    m = pd.DataFrame({"A": [1, 2, 0, np.nan], "B": [2, 1, 1, 1], "C": [2, 0, 3, 1], "D": [3, 3, 2, 2]})
    r = Rankings.from_rank_matrix(m, weight=[1, 2, 3, 4])
    assert r.items.tolist() == ["A", "B", "C", "D"]
    assert entries(r) == {0: {"A": 1, "B": 2, "C": 2, "D": 3}, 1: {"B": 1, "A": 2, "D": 3},
                          2: {"B": 1, "D": 2, "C": 3}, 3: {"B": 1, "C": 1, "D": 2}}
    assert r.weight.tolist() == [1, 2, 3, 4]
    # a gap (1, 3) orders the items as (1, 2) does: same likelihood
    gap = Rankings.from_rank_matrix([[1, 3, 0], [0, 1, 2]], items=["x", "y", "z"])
    dense = Rankings.from_rank_matrix([[1, 2, 0], [0, 1, 2]], items=["x", "y", "z"])
    from bradley.models.plackett_luce import plackett_luce_log_likelihood

    theta = np.array([0.3, -0.1, 0.5])
    assert plackett_luce_log_likelihood(theta, gap) == pytest.approx(plackett_luce_log_likelihood(theta, dense))
    with pytest.raises(ComparisonDataError, match="positive integers"):
        Rankings.from_rank_matrix([[1, 1.5], [1, 2]])
    with pytest.raises(ComparisonDataError, match="fewer than two"):
        Rankings.from_rank_matrix([[1, 0], [1, 2]])
    with pytest.raises(ComparisonDataError, match="non-numeric"):
        read_rankings(pd.DataFrame({"who": ["ann", "bob"], "A": [1, 2], "B": [2, 1]}), layout="matrix")


def brute_force_pl_matrix(values):
    """MLE of PL from a complete rank matrix without ties, by scipy on an independent likelihood."""
    orderings = np.argsort(values, axis=1)  # items best first

    def negll(free):
        theta = np.append(0.0, free)[orderings]
        log_tail = np.logaddexp.accumulate(theta[:, ::-1], axis=1)[:, ::-1]
        return -(theta[:, :-1] - log_tail[:, :-1]).sum()

    res = optimize.minimize(negll, np.zeros(values.shape[1] - 1), method="BFGS", options={"gtol": 1e-10})
    s = np.append(0.0, res.x)
    return s - s.mean(), -res.fun


@needs_data
def test_salad_rank_matrix_with_judge_id():
    path = DATA / "salad_rankings.csv"
    with pytest.raises(ComparisonDataError, match=r"\['judge'\].*id column"):
        read_rankings(path, layout="matrix")  # judge numbers cannot be ranks of 4 items
    r = read_rankings(path, layout="matrix", id="judge")
    assert r.n_rankings == 32 and r.items.tolist() == ["A", "B", "C", "D"]
    model = PlackettLuce().fit(r)
    values = pd.read_csv(path).drop(columns="judge").to_numpy(float)
    truth, ll = brute_force_pl_matrix(values)
    np.testing.assert_allclose(model.scores_, truth, atol=1e-6)
    assert model.log_likelihood_ == pytest.approx(ll, abs=1e-8)
    assert model.summary()["item"].iloc[0] == "B"  # B ranked first by 23 of 32 judges


@needs_data
def test_beans_rank_matrix_with_ranking_id_column():
    r = read_rankings(DATA / "beans_rankings_matrix.csv", layout="matrix")  # `ranking` column: ids
    assert r.n_rankings == 3368 and r.n_items == 11 and len(r.item) == 842 * 3 + 2526 * 2
    assert "ranking" not in r.items.tolist() and "Local" in r.items.tolist()
    frame = pd.read_csv(DATA / "beans_rankings_matrix.csv").drop(columns="ranking")
    values = frame.to_numpy(float)
    model = PlackettLuce().fit(r)
    assert model.converged_

    # independent likelihood for these 2- and 3-item rankings without ties
    def negll(free):
        theta = np.append(0.0, free)
        total = 0.0
        for size in (2, 3):
            rows = values[(values > 0).sum(axis=1) == size]
            ranked = np.where(rows > 0, rows, np.inf)
            order = np.argsort(ranked, axis=1)[:, :size]
            t = theta[order]
            log_tail = np.logaddexp.accumulate(t[:, ::-1], axis=1)[:, ::-1]
            total += (t[:, :-1] - log_tail[:, :-1]).sum()
        return -total

    res = optimize.minimize(negll, np.zeros(10), method="BFGS", options={"gtol": 1e-8})
    truth = np.append(0.0, res.x)
    np.testing.assert_allclose(model.scores_, truth - truth.mean(), atol=1e-5)
    assert list(frame.columns) == r.items.tolist()


# --------------------------------------------------------------------------- unnamed id columns, rank numbers, labels
def nascar_like(ids):
    """Three races, items best first under positional headers, first column = race ids."""
    return pd.DataFrame({"race": ids, "rank1": [83, 52, 72], "rank2": [18, 72, 34], "rank3": [52, 83, 18]})


def test_wide_unnamed_id_column_is_refused_not_read_as_first_places(tmp_path):
    """Issue 8.3 follow-up: race ids 'R1'.. in the first column were fitted as 119 items, silently."""
    path = tmp_path / "rid.csv"
    nascar_like(["R1", "R2", "R3"]).to_csv(path, index=False)
    with pytest.raises(ComparisonDataError, match=r"'race' looks like a ranking id.*none of them appears.*"
                                                    r"--id-col race.*id=False"):
        read_rankings(path, layout="wide")
    r = read_rankings(path, layout="wide", id="race")
    assert sorted(r.items.tolist()) == [18, 34, 52, 72, 83]
    assert sorted(read_rankings(path, layout="wide", id=False).items.tolist(), key=str)[:3] == [18, 34, 52]
    # integer race ids that are also driver numbers: caught by the headers (rank1.. and 'race')
    with pytest.raises(ComparisonDataError, match=r"named by position \('rank1', 'rank2', \.\.\.\) and it is not"):
        read_rankings(nascar_like([1, 2, 3]), layout="wide")
    # the CLI says the same and fits nothing
    from bradley.cli import main

    assert main(["fit", str(path), "--model", "plackett-luce", "--layout", "wide", "--prior", "10"]) == 2


def test_wide_layout_without_an_id_column_is_not_refused():
    # first places repeat, or share values with the other columns, under positional headers: no id column
    plain = pd.DataFrame({"p1": ["a", "b", "c"], "p2": ["b", "c", "a"], "p3": ["c", "a", "b"]})
    assert read_rankings(plain, layout="wide").n_rankings == 3
    winners = pd.DataFrame({"winner": ["a", "b"], "second": ["b", "c"], "third": ["c", "a"]})
    assert read_rankings(winners, layout="wide").n_items == 3


@needs_data
def test_salad_rank_matrix_read_as_wide_suggests_the_matrix_layout():
    with pytest.raises(ComparisonDataError, match=r"'judge'.*rank numbers 1..4.*layout='matrix', id='judge'"):
        read_rankings(DATA / "salad_rankings.csv", layout="wide")
    with pytest.raises(ComparisonDataError, match=r"hold rank numbers \(1..4\).*--layout matrix --id-col judge"):
        read_rankings(DATA / "salad_rankings.csv", layout="wide", id="judge")
    frame = pd.read_csv(DATA / "salad_rankings.csv").drop(columns="judge")
    with pytest.raises(ComparisonDataError, match=r"rank matrix.*layout='matrix'"):
        read_rankings(frame, layout="wide")


def test_ragged_wide_file_gives_integer_labels(tmp_path):
    """Empty cells made a column float: items_ held 46.0 next to ints (summary showed '75.0')."""
    path = tmp_path / "ragged.csv"
    path.write_text("race,rank1,rank2,rank3\n1,46,75,12\n2,12,46,75\n3,75,12,\n")
    r = read_rankings(path, layout="wide", id="race")
    assert sorted(r.items.tolist()) == [12, 46, 75]
    assert {type(v) for v in r.items} == {int}
    table = PlackettLuce().fit(r).summary()
    assert sorted(table["item"].tolist()) == [12, 46, 75]
