"""Issue 9 items 6, 11, 12, 14: how the data are coded, .txt match lists, file lines in messages, weights.

Independent truths: the data sets' READMEs and the files themselves (read here with the csv module),
the published final league tables, pandas' own DataFrame.query, closed forms.
"""

import csv
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bradley
from bradley import ComparisonDataError, DataWarning, read_comparisons
from bradley.io import map_outcomes, parse_outcome_map, read_table, select_rows

DATA = Path("/work/shared/data")
needs_data = pytest.mark.skipif(not DATA.exists(), reason="shared data sets not available")


def _records(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


# --------------------------------------------------------------------------- real data sets
@needs_data
def test_copilot_arena_zero_means_the_first_model_won():
    path = DATA / "copilot_arena_examples" / "copilot_arena_examples_v1_outcomes.csv"
    # Old code read acceptedIndex as 1 = left won, so model_a "won" 20 times instead of 92: now refused.
    with pytest.raises(ComparisonDataError, match=r"'acceptedIndex' holds only 0 and 1 \(92 zeros, 20 ones, 1 empty\)"):
        read_comparisons(path, outcome="acceptedIndex")
    lines = path.read_text().splitlines()
    empty_line = next(k for k, line in enumerate(lines, 1) if line.split(",")[3] == "")
    with pytest.warns(DataWarning, match=rf"dropped 1 of 113 rows .*\(line {empty_line} of "):
        c = read_comparisons(path, outcome="acceptedIndex", outcome_map={0: "left", 1: "right", "": "drop"})
    truth = [r for r in _records(path) if r["acceptedIndex"] != ""]
    assert c.n_comparisons == len(truth) == 112
    assert (c.outcome == 1.0).sum() == 92 and (c.outcome == 0.0).sum() == 20  # README: 92 / 20 / 1
    expected = [1.0 if float(r["acceptedIndex"]) == 0 else 0.0 for r in truth]
    assert c.outcome.tolist() == expected
    assert c.items[c.left].tolist() == [r["model_a"] for r in truth]
    # the CLI text form, and a where= filter instead of 'drop', give the same rows
    same = read_comparisons(path, outcome="acceptedIndex", outcome_map="0=left,1=right", where="model_a.notna()")
    assert same.outcome.tolist() == expected


@needs_data
def test_prd_one_two_three_codes_and_a_reviewer_filter():
    path = DATA / "prd_vicuna80" / "vicuna80_pairwise_ratings.csv"
    kw = dict(left="model_1", right="model_2", outcome="score")
    with pytest.raises(ComparisonDataError, match=r"holds the codes \[1, 2, 3\].*--outcome-map 1=left,2=right,3=tie"):
        read_comparisons(path, **kw)
    human = read_comparisons(path, **kw, outcome_map="1=left,2=right,3=tie", where="reviewer == 'human'")
    truth = [r for r in _records(path) if r["reviewer"] == "human"]
    assert human.n_comparisons == len(truth) == 7040 and human.n_items == 9  # README
    counts = Counter(r["score"] for r in truth)
    assert [(human.outcome == v).sum() for v in (1.0, 0.0, 0.5)] == [counts["1"], counts["2"], counts["3"]]
    assert human.items[human.right].tolist() == [r["model_2"] for r in truth]
    llms = read_comparisons(path, **kw, outcome_map={1: "left", 2: "right", 3: "tie"},
                            where="reviewer in ['gpt4', 'claude'] and prompt == 'threeclass'")
    assert llms.n_comparisons == 2 * 1600  # README: 1,600 ratings per LLM reviewer
    # an unmapped code is named with its file lines (header = line 1)
    with pytest.raises(ComparisonDataError, match=r"outcome value\(s\) \[3\] in the column 'score' \(lines ") as err:
        read_comparisons(path, **kw, outcome_map="1=left,2=right")
    first_tie = next(k for k, r in enumerate(_records(path)) if r["score"] == "3")
    assert err.value.rows[0] == first_tie
    assert f"lines {first_tie + 2}," in str(err.value)


@needs_data
@pytest.mark.parametrize("league", ["en1", "es1"])
def test_football_points_from_goal_columns_equal_the_final_table(league):
    folder = DATA / "poprank_fixtures"
    c = read_comparisons(folder / f"football_{league}_2019-20_matches.csv", left="team1", right="team2",
                         left_score="goals1", right_score="goals2")
    points = np.zeros(c.n_items)
    np.add.at(points, c.left, np.select([c.outcome == 1.0, c.outcome == 0.5], [3, 1], 0))
    np.add.at(points, c.right, np.select([c.outcome == 0.0, c.outcome == 0.5], [3, 1], 0))
    table = pd.read_csv(folder / f"football_{league}_final_table.csv").set_index("club")["final_points"]
    assert dict(zip(c.items, points.astype(int).tolist())) == table.to_dict()


@needs_data
def test_newman_match_lists_still_read_as_winner_loser():
    path = DATA / "jerdee_newman_pairwise" / "dogs.txt"
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    c = read_comparisons(path)
    assert c.n_comparisons == len(lines) == 1143  # README
    assert c.items[c.left].tolist() == [w for w, _ in lines] and (c.outcome == 1.0).all()


# --------------------------------------------------------------------------- 0/1 columns and outcome maps
def _frame(outcome, name="res"):
    return pd.DataFrame({"left": ["a", "b", "c", "a"], "right": ["b", "c", "a", "c"], name: outcome})


@pytest.mark.parametrize("values", [[0, 1, 1, 0], [1, 1, 1, 1], [True, False, True, True], ["0", "1", "1", "0"],
                                    [0.0, 1.0, np.nan, 1.0]])
def test_a_zero_one_column_is_not_guessed(values):
    with pytest.raises(ComparisonDataError, match=r"holds only 0 and 1 .*outcome_map=\{1: 'left', 0: 'right'\}"):
        read_comparisons(_frame(values), outcome="res")


def test_documented_convention_and_probabilities_are_read_without_a_map():
    assert read_comparisons(_frame([0, 1, 1, 0], "outcome")).outcome.tolist() == [0.0, 1.0, 1.0, 0.0]
    assert read_comparisons(_frame([0, 1, 1, 0], "left_won"), outcome="left_won").outcome.tolist() == [0, 1, 1, 0]
    assert read_comparisons(_frame([0, 1, 0.5, 0.25]), outcome="res").outcome.tolist() == [0, 1, 0.5, 0.25]
    mapped = read_comparisons(_frame([0, 1, 1, 0]), outcome="res", outcome_map={0: "left", 1: "right"})
    assert mapped.outcome.tolist() == [1.0, 0.0, 0.0, 1.0]


def test_outcome_map_forms():
    assert parse_outcome_map("1=left, 2=right,3=tie") == {"1": "left", "2": "right", "3": "tie"}
    out, kind, drop = map_outcomes(pd.Series([1.0, 2.0, 3.0, 4.0]), {"1": "left", 2: "Right", "3.0": "tie", 4: 0.7})
    assert out.tolist() == [1.0, 0.0, 0.5, 0.7] and not drop.any()
    out, kind, drop = map_outcomes(["A", " b", "Both"], {"a": "model_a", "B": "model_b", "both": "both_bad"})
    assert out.tolist() == [1.0, 0.0, 0.5] and kind.tolist() == [0, 0, 1]
    with pytest.raises(ComparisonDataError, match="two meanings"):
        map_outcomes([1], {1: "left", "1.0": "right"})
    with pytest.raises(ComparisonDataError, match="unknown meaning 'up'"):
        map_outcomes([1], {1: "up"})
    with pytest.raises(ComparisonDataError, match="VALUE=MEANING"):
        parse_outcome_map("1:left")
    with pytest.raises(ComparisonDataError, match="every row to 'drop'"):
        read_comparisons(_frame([1, 1, 1, 1]), outcome="res", outcome_map={1: "drop"})
    with pytest.raises(ComparisonDataError, match="winner/loser columns have none"):
        read_comparisons(pd.DataFrame({"winner": ["a"], "loser": ["b"]}), outcome_map={1: "left"})


def test_score_columns():
    frame = pd.DataFrame({"home": ["x", "y", "z"], "away": ["y", "z", "x"], "g1": [3, 1, 0], "g2": [1, 1, 2]})
    c = read_comparisons(frame, left="home", right="away", left_score="g1", right_score="g2")
    assert c.outcome.tolist() == [1.0, 0.5, 0.0]
    with pytest.raises(ComparisonDataError, match=r"score column 'g2' must hold a finite number .*\['-'\] in row 1 \(0-based\)"):
        read_comparisons(frame.assign(g2=[1, "-", 2]), left="home", right="away", left_score="g1", right_score="g2")
    with pytest.raises(ComparisonDataError, match="go together"):
        read_comparisons(frame, left="home", right="away", left_score="g1")
    with pytest.raises(ComparisonDataError, match="do not apply"):
        read_comparisons(frame.assign(outcome=1), left="home", right="away", left_score="g1", right_score="g2",
                         outcome="outcome")


# --------------------------------------------------------------------------- where=
WHERE_FRAME = pd.DataFrame({
    "category": ["math", "code", "math", None, "chat"], "turns": [1, 3, 2, 5, np.nan],
    "judge id": ["u1", "u2", "u1", "u3", "u2"], "model": ["gpt-4", "claude", "gpt-3.5", "llama", "gpt-4o"]})


@pytest.mark.parametrize("where", [
    "category == 'math'", "category != 'math'", "turns > 1 and category == 'math'", "1 < turns <= 3",
    "category in ['code', 'chat'] or turns >= 5", "category not in ['math']", "not (turns > 2)",
    "category == 'math' & turns == 1 | turns == 5", "`judge id` == 'u1'", "turns * 2 - 1 >= 3",
    "turns.isna()", "category.notna() and ~(category == 'code')", "model.str.startswith('gpt')",
    "model.str.contains('.')",
])
def test_where_agrees_with_pandas_query(where):
    expected = WHERE_FRAME.eval(where, engine="python").fillna(False).to_numpy(dtype=bool)
    np.testing.assert_array_equal(select_rows(WHERE_FRAME, where), expected)


@pytest.mark.parametrize("where, message", [
    ("categroy == 'math'", r"no column 'categroy'"),
    ("category.upper() == 'MATH'", r"only calls allowed"),
    ("__import__('os').system('true')", r"only calls allowed|not supported"),
    ("turns", r"not true/false"),
    ("category ==", r"could not parse"),
])
def test_where_refuses_what_it_cannot_evaluate(where, message):
    with pytest.raises(ComparisonDataError, match=message):
        select_rows(WHERE_FRAME, where)


def test_where_keeps_file_lines_and_data_rows_in_errors(tmp_path):
    path = tmp_path / "v.csv"
    path.write_text("model_a,model_b,winner,cat\nx,y,model_a,m\n\nx,z,model_b,c\ny,z,banana,m\n")
    with pytest.raises(ComparisonDataError, match=r"\['banana'\] in line 5 of 'v.csv'") as err:
        read_comparisons(path, where="cat == 'm'")
    assert err.value.rows == [2]  # 0-based data row in the file, before filtering
    with pytest.raises(ComparisonDataError, match=r"matches none of the 3 rows"):
        read_comparisons(path, where="cat == 'q'")


# --------------------------------------------------------------------------- sep, headers, .txt files
def test_sep_for_delimited_files(tmp_path):
    semi = tmp_path / "games.csv"
    semi.write_text("left;right;outcome\na;b;1\nb;c;0.5\n")
    assert read_comparisons(semi, sep=";").outcome.tolist() == [1.0, 0.5]
    tab = tmp_path / "games.dat"
    tab.write_text("left\tright\toutcome\na\tb\t1\n")
    assert read_comparisons(tab, format="csv", sep="\\t").items.tolist() == ["a", "b"]
    with pytest.raises(ComparisonDataError, match="already a table"):
        read_comparisons(pd.DataFrame({"left": ["a"], "right": ["b"], "outcome": [1]}), sep=";")


def test_duplicate_header_names_are_refused(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("left,right,outcome,left\na,b,1,c\n")
    with pytest.raises(ComparisonDataError, match=r"'left' in columns 1, 4"):
        read_comparisons(path)
    spaced = tmp_path / "spaced.csv"
    spaced.write_text("left, right,outcome,right \na,b,1,c\n")
    with pytest.raises(ComparisonDataError, match=r"'right' in columns 2, 4"):
        read_comparisons(spaced)
    frame = pd.DataFrame([["a", "b", 1, "c"]], columns=["left", "right", "outcome", "left"])
    with pytest.raises(ComparisonDataError, match=r"names a column more than once"):
        read_comparisons(frame)


def test_txt_header_comments_and_blank_lines(tmp_path):
    path = tmp_path / "m.txt"
    path.write_text("# results of the club ladder\nwinner loser\n\nann bob\n  # a note\nbob cy\ncy ann\n")
    c = read_comparisons(path)
    assert c.n_comparisons == 3 and c.items[c.left].tolist() == ["ann", "bob", "cy"]
    other = tmp_path / "o.txt"
    other.write_text("left right outcome\nann bob 0.5\nbob cy 1\n")
    assert read_comparisons(other).outcome.tolist() == [0.5, 1.0]


def test_txt_extra_columns_refused_unless_named(tmp_path):
    path = tmp_path / "w.txt"
    path.write_text("ann bob 2\nbob cy 1\ncy ann 3\n")
    with pytest.raises(ComparisonDataError, match=r"lines 1, 2, 3 hold 3 fields where 2 are expected.*header line"):
        read_comparisons(path)
    c = read_comparisons(path, names=["winner", "loser", "weight"])
    assert c.weight.tolist() == [2.0, 1.0, 3.0]
    ragged = tmp_path / "r.txt"
    ragged.write_text("ann bob\n# comment\nbob cy extra\ncy ann\n")
    with pytest.raises(ComparisonDataError, match=r"line 3 holds 3 fields where 2 are expected"):
        read_comparisons(ragged)


def test_txt_header_detection_and_a_suspicious_first_line(tmp_path):
    path = tmp_path / "h.txt"
    path.write_text("team_a team_b\nann bob\nbob cy\ncy ann\n")
    with pytest.warns(DataWarning, match=r"line 1 of 'h.txt' \('team_a team_b'\) is read as a game"):
        assert read_comparisons(path).n_comparisons == 4
    c = read_comparisons(path, header=True, winner="team_a", loser="team_b")
    assert c.n_comparisons == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_comparisons(path, header=False).n_comparisons == 4


# --------------------------------------------------------------------------- row numbers, spaces
def test_file_messages_name_lines_frames_name_zero_based_rows(tmp_path):
    path = tmp_path / "b.csv"
    path.write_text('model_a,model_b,winner,note\ngpt,claude,model_a,"two\nlines"\n\nclaude,gpt,banana,x\n')
    with pytest.raises(ComparisonDataError, match=r"\['banana'\] in line 5 of 'b.csv'") as err:
        read_comparisons(path)
    assert err.value.rows == [1]
    frame = read_table(path)
    with pytest.raises(ComparisonDataError, match=r"line 5 of 'b.csv'"):  # the frame as read still knows its file
        read_comparisons(frame)
    # a frame derived from it (here sorted: rows in another order) names 0-based rows, not the file's lines
    with pytest.raises(ComparisonDataError, match=r"\['banana'\] in row 0 \(0-based\)"):
        read_comparisons(frame.sort_values("model_a").reset_index(drop=True))
    with pytest.raises(ComparisonDataError, match=r"in row 0 \(0-based\)"):
        read_comparisons(pd.DataFrame({"model_a": ["a"], "model_b": ["b"], "winner": ["banana"]}))


def test_spaces_around_item_and_column_names(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("left, right, outcome\n gpt-4,claude,1\ngpt-4 , claude ,0\n")
    with pytest.warns(DataWarning, match=r"2 item name\(s\) differed only by surrounding spaces"):
        c = read_comparisons(path)
    assert c.items.tolist() == ["claude", "gpt-4"] and c.left.tolist() == [1, 1]
    with pytest.raises(ComparisonDataError, match=r"missing item name .*row 1 \(0-based\)"):
        bradley.Comparisons.from_arrays(["a", "  "], ["b", "a"], [1, 0])


# --------------------------------------------------------------------------- weights (item 6)
def test_absurd_weights_are_refused_naming_rows(tmp_path):
    path = tmp_path / "w.csv"
    path.write_text("left,right,outcome,weight\na,b,1,1\nb,c,1,1e300\nc,a,1,1\na,c,0,1\n")
    # old code: accepted, and BT reported a score of about 690 nats (Elo ~121,000) for the heavy row's winner
    with pytest.raises(ComparisonDataError, match=r"weights must lie between 1e-150 and 1e\+150 .*line 3 of 'w.csv'"):
        read_comparisons(path)
    with pytest.raises(ComparisonDataError, match=r"\[1e-200, 1e-200\] in rows 0, 1 \(0-based\)"):
        bradley.Comparisons.from_arrays(["a", "b"], ["b", "a"], [1, 0], [1e-200, 1e-200])
    with pytest.raises(ComparisonDataError, match=r"weight column 'weight' must hold numbers; got \['x'\] in line 2"):
        path.write_text("left,right,outcome,weight\na,b,1,x\n")
        read_comparisons(path)


@pytest.mark.parametrize("factor", [4.0, 100.0, 1e8, 1e12])
def test_weights_are_frequencies_scores_scale_free_errors_not(factor):
    """The documented meaning: scores depend on weights up to a factor, Fisher SEs scale as 1/sqrt(factor)."""
    data, _ = bradley.simulate_bt(6, 400, seed=2)
    w = np.random.default_rng(0).uniform(0.5, 2.0, data.n_comparisons)
    base, scaled = (bradley.BradleyTerry().fit(bradley.Comparisons.from_codes(data.left, data.right, data.outcome, w * k,
                                                                              items=data.items)) for k in (1.0, factor))
    np.testing.assert_allclose(scaled.scores_, base.scores_, atol=1e-8)
    np.testing.assert_allclose(scaled.summary()["se"].to_numpy(), base.summary()["se"].to_numpy() / np.sqrt(factor),
                               rtol=1e-6)


@pytest.mark.parametrize("factor", [1e8, 1e12])
def test_standard_errors_scale_with_frequency_weights_in_every_model(factor):
    # the gauge-fixing term of each model's pseudo-inverse must follow the information's scale
    data, _ = bradley.simulate_bt(5, 300, seed=4)
    outcome = data.outcome.copy()
    outcome[::7] = 0.5
    w = np.random.default_rng(1).uniform(0.5, 2.0, data.n_comparisons)
    fits = [bradley.Davidson().fit(bradley.Comparisons.from_codes(data.left, data.right, outcome, w * k,
                                                                  items=data.items)) for k in (1.0, factor)]
    np.testing.assert_allclose(fits[1].standard_errors().to_numpy(),
                               fits[0].standard_errors().to_numpy() / np.sqrt(factor), rtol=1e-6)
    rankings = bradley.Rankings.from_orderings([["a", "b", "c"], ["b", "a", "c"], ["c", "a", "b"], ["a", "c", "b"]])
    pl = [bradley.PlackettLuce().fit(bradley.Rankings(rankings.ranking, rankings.item, rankings.level, rankings.items,
                                                      rankings.weight * k)) for k in (1.0, factor)]
    np.testing.assert_allclose(pl[1].standard_errors().to_numpy(), pl[0].standard_errors().to_numpy() / np.sqrt(factor),
                               rtol=1e-6)


@pytest.mark.parametrize("factor", [1e-100, 1e-20, 1e100, 1e140])
def test_bradley_terry_fits_weights_of_any_scale(factor):
    # the MLE is invariant to a common weight factor; the fit must converge to it at any scale
    data, _ = bradley.simulate_bt(6, 400, seed=2)
    outcome = data.outcome.copy()
    outcome[::5] = 0.5
    base = bradley.BradleyTerry().fit(bradley.Comparisons.from_codes(data.left, data.right, outcome, items=data.items))
    scaled = bradley.BradleyTerry().fit(bradley.Comparisons.from_codes(
        data.left, data.right, outcome, np.full(data.n_comparisons, factor), items=data.items))
    assert scaled.converged_
    np.testing.assert_allclose(scaled.scores_, base.scores_, atol=1e-8)
    assert scaled.log_likelihood_ == pytest.approx(base.log_likelihood_ * factor, rel=1e-9)
