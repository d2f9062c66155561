import gzip
import json

import numpy as np
import pandas as pd
import pytest

import bradley
from bradley import ComparisonDataError, read_comparisons


@pytest.fixture
def battles():
    return pd.DataFrame(
        {
            "model_a": ["gpt", "claude", "gpt", "llama", "claude"],
            "model_b": ["claude", "llama", "llama", "gpt", "gpt"],
            "winner": ["model_a", "model_b", "tie", "tie (bothbad)", "both_bad"],
            "judge": ["u1", "u2", "u3", "u4", "u5"],
        }
    )


def test_arena_format_recognised_without_options(battles):
    c = read_comparisons(battles)
    assert c.items.tolist() == ["claude", "gpt", "llama"]
    assert c.outcome.tolist() == [1.0, 0.0, 0.5, 0.5, 0.5]
    assert c.tie_kind.tolist() == [0, 0, 0, 1, 1]
    assert c.items[c.left].tolist() == battles.model_a.tolist()
    assert c.items[c.right].tolist() == battles.model_b.tolist()


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".jsonl", ".jsonl.gz", ".parquet", ".tsv"])
def test_file_formats_round_trip(tmp_path, battles, suffix):
    path = tmp_path / f"battles{suffix}"
    if suffix.startswith(".csv"):
        battles.to_csv(path, index=False)
    elif suffix == ".tsv":
        battles.to_csv(path, index=False, sep="\t")
    elif suffix.startswith(".jsonl"):
        text = "\n".join(json.dumps(r) for r in battles.to_dict(orient="records")) + "\n"
        if suffix.endswith(".gz"):
            path.write_bytes(gzip.compress(text.encode()))
        else:
            path.write_text(text)
    else:
        battles.to_parquet(path)
    c = read_comparisons(path)
    expected = read_comparisons(battles)
    assert c.items.tolist() == expected.items.tolist()
    np.testing.assert_array_equal(c.left, expected.left)
    np.testing.assert_array_equal(c.outcome, expected.outcome)


def test_polars_and_pyarrow_tables(battles):
    import polars as pl
    import pyarrow as pa

    for table in (pl.from_pandas(battles), pa.Table.from_pandas(battles)):
        c = read_comparisons(table)
        assert c.outcome.tolist() == [1.0, 0.0, 0.5, 0.5, 0.5]
        assert c.items.tolist() == ["claude", "gpt", "llama"]


def test_column_mapping_and_numeric_outcomes():
    frame = pd.DataFrame({"p": ["a", "b", "c"], "q": ["b", "c", "a"], "res": [1, 0.5, 0.25], "w": [1.0, 2.0, 3.0]})
    c = read_comparisons(frame, left="p", right="q", outcome="res", weight="w")
    assert c.outcome.tolist() == [1.0, 0.5, 0.25]
    assert c.weight.tolist() == [1.0, 2.0, 3.0]
    assert c.tie_kind is None


def test_left_right_tie_labels_case_insensitive():
    frame = pd.DataFrame({"left": ["a", "b", "a"], "right": ["b", "c", "c"], "outcome": ["Left", " RIGHT", "tie"]})
    assert read_comparisons(frame).outcome.tolist() == [1.0, 0.0, 0.5]


def test_winner_name_column_with_ties():
    frame = pd.DataFrame({"left": ["a", "b", "a"], "right": ["b", "c", "c"], "winner": ["b", "b", "draw"]})
    c = read_comparisons(frame)
    assert c.outcome.tolist() == [0.0, 1.0, 0.5]


def test_winner_loser_columns_and_whitespace_file(tmp_path):
    path = tmp_path / "matches.txt"
    path.write_text("alice bob\nbob carol\ncarol alice\n")
    c = read_comparisons(path)
    assert c.items[c.left].tolist() == ["alice", "bob", "carol"]
    assert c.outcome.tolist() == [1.0, 1.0, 1.0]
    frame = pd.DataFrame({"winner": ["x", "y"], "loser": ["y", "x"]})
    assert read_comparisons(frame).outcome.tolist() == [1.0, 1.0]


def test_optional_columns_time_annotator():
    frame = pd.DataFrame({"left": ["a", "b"], "right": ["b", "a"], "outcome": [1, 0], "time": [5, 6], "annotator": ["h", "gpt4"]})
    c = read_comparisons(frame)
    assert c.time.tolist() == [5, 6]
    assert c.annotator.tolist() == ["h", "gpt4"]
    assert "annotator" in c.to_frame().columns


def test_unknown_outcome_label_names_rows_and_label(battles):
    battles.loc[3, "winner"] = "model_c"
    with pytest.raises(ComparisonDataError, match=r"unknown outcome label.*'model_c'.*row 3") as err:
        read_comparisons(battles)
    assert err.value.rows == [3]


def test_self_comparison_is_an_error_naming_rows(battles):
    battles.loc[2, "model_b"] = "gpt"
    with pytest.raises(ComparisonDataError, match=r"compared with itself in row 2 .*'gpt'"):
        read_comparisons(battles)


def test_self_comparisons_dropped_on_request_with_count(battles):
    battles.loc[2, "model_b"] = "gpt"
    with pytest.warns(bradley.DataWarning, match="dropped 1 of 5"):
        c = read_comparisons(battles, drop_self_comparisons=True)
    assert c.n_comparisons == 4


def test_items_only_in_dropped_rows_are_removed():
    with pytest.warns(bradley.DataWarning, match="1 item"):
        c = bradley.Comparisons.from_arrays(["a", "z", "b"], ["b", "z", "a"], [1, 1, 0], drop_self_comparisons=True)
    assert c.items.tolist() == ["a", "b"]
    assert c.items[c.left].tolist() == ["a", "b"]


@pytest.mark.parametrize("bad", [np.nan, -1.0, np.inf])
def test_bad_weights(bad):
    frame = pd.DataFrame({"left": ["a", "b", "a"], "right": ["b", "c", "c"], "outcome": [1, 0, 1], "weight": [1.0, bad, 1.0]})
    with pytest.raises(ComparisonDataError, match=r"weights must be finite and non-negative.*row 1"):
        read_comparisons(frame)


def test_empty_data():
    with pytest.raises(ComparisonDataError, match="no comparisons"):
        read_comparisons(pd.DataFrame({"left": [], "right": [], "outcome": []}))
    with pytest.raises(ComparisonDataError, match="no comparisons"):
        bradley.Comparisons.from_arrays([], [], [])


def test_missing_column_lists_available():
    frame = pd.DataFrame({"a": ["x"], "b": ["y"], "c": [1]})
    with pytest.raises(ComparisonDataError, match=r"missing column.*\['a', 'b', 'c'\]"):
        read_comparisons(frame)
    with pytest.raises(ComparisonDataError, match=r"missing column.*'nope'"):
        read_comparisons(frame, left="a", right="b", outcome="nope")


def test_outcome_out_of_range_and_nan():
    with pytest.raises(ComparisonDataError, match=r"outcomes must lie in \[0, 1\].*row 1"):
        bradley.Comparisons.from_arrays(["a", "b"], ["b", "a"], [1.0, 2.0])
    frame = pd.DataFrame({"left": ["a", "b"], "right": ["b", "a"], "outcome": [1.0, np.nan]})
    with pytest.raises(ComparisonDataError, match=r"missing \(NaN\) outcome in row 1"):
        read_comparisons(frame)


def test_missing_item_name():
    frame = pd.DataFrame({"left": ["a", None], "right": ["b", "a"], "outcome": [1, 0]})
    with pytest.raises(ComparisonDataError, match="missing item name.*row 1"):
        read_comparisons(frame)


def test_unknown_item_against_given_list():
    with pytest.raises(ComparisonDataError, match=r"not in the given item list.*\['q'\]"):
        bradley.Comparisons.from_arrays(["a", "q"], ["b", "a"], [1, 0], items=["a", "b"])


def test_unreadable_file_and_unknown_suffix(tmp_path):
    with pytest.raises(ComparisonDataError, match="no such file"):
        read_comparisons(tmp_path / "absent.csv")
    odd = tmp_path / "data.xyz"
    odd.write_text("x")
    with pytest.raises(ComparisonDataError, match="cannot tell the format"):
        read_comparisons(odd)


def test_integer_codes_and_from_arrays_names():
    c = bradley.Comparisons.from_arrays(np.array([0, 2]), np.array([1, 0]), [1, 0])
    assert c.n_items == 3
    c2 = bradley.Comparisons.from_arrays(["b", "a"], ["a", "c"], [1, 0])
    assert c2.items.tolist() == ["a", "b", "c"]


def test_shipped_arena_data_loads():
    battles = bradley.datasets.load_arena_140k()
    assert len(battles) == 135_634
    assert set(battles.winner.unique()) == {"model_a", "model_b", "tie", "both_bad"}


def test_both_bad_votes_merged_or_dropped(battles):
    merged = read_comparisons(battles)
    assert merged.tie_kind.tolist() == [0, 0, 0, 1, 1]
    with pytest.warns(bradley.DataWarning, match="dropped 2 of 5 'both bad'"):
        dropped = read_comparisons(battles, both_bad="drop")
    assert dropped.n_comparisons == 3 and dropped.outcome.tolist() == [1.0, 0.0, 0.5]


def test_chess_result_notation():
    frame = pd.DataFrame({"white": ["a", "b", "a"], "black": ["b", "a", "c"], "result": ["1-0", "0-1", "1/2-1/2"]})
    c = read_comparisons(frame, left="white", right="black", outcome="result")
    assert c.outcome.tolist() == [1.0, 0.0, 0.5]


# --- per-row order (home / first-position) indicator --------------------------------------------------

from bradley.io import parse_order  # noqa: E402

GAMES = pd.DataFrame({"home": ["x", "y", "z", "x"], "away": ["y", "z", "x", "z"], "result": [1, 0, 0.5, 1]})


@pytest.mark.parametrize(
    "column, expected",
    [
        ([1, -1, 0, 1], [1, -1, 0, 1]),
        ([1.0, -1.0, 0.0, 1.0], [1, -1, 0, 1]),
        ([True, False, True, True], [1, -1, 1, 1]),
        ([" Left", "RIGHT", "neutral", "first"], [1, -1, 0, 1]),
        (["home", "away", "none", "model_b"], [1, -1, 0, -1]),
        (["1", "-1", "0", "+1"], [1, -1, 0, 1]),
        (["x", "z", None, "z"], [1, -1, 0, -1]),  # the home item's name; empty = neutral
    ],
)
def test_order_column_forms(column, expected):
    c = read_comparisons(GAMES.assign(where=column), left="home", right="away", outcome="result", order="where")
    assert c.order.tolist() == [float(v) for v in expected]
    assert c.to_frame()["order"].tolist() == [float(v) for v in expected]


def test_order_column_from_csv_files(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("home,away,result,venue,flag\nx,y,1,x,true\ny,z,0,,false\nz,x,0.5,x,True\n")
    by_name = read_comparisons(path, left="home", right="away", outcome="result", order="venue")
    assert by_name.order.tolist() == [1.0, 0.0, -1.0]
    by_flag = read_comparisons(path, left="home", right="away", outcome="result", order="flag")
    assert by_flag.order.tolist() == [1.0, -1.0, 1.0]


@pytest.mark.parametrize(
    "column, message, rows",
    [
        ([1, 2, 0, -3], r"must hold 1 .* got \[2.0, -3.0\] in rows 1, 3", [1, 3]),
        ([1, None, 0, 1], r"got \[nan\] in row 1", [1]),
        (["left", "up", "down", "right"], r"unknown value\(s\) \['up', 'down'\] .* rows 1, 2", [1, 2]),
        (["x", "x", "z", "y"], r"unknown value\(s\) \['x', 'y'\] .* rows 1, 3", [1, 3]),  # not an item of that row
        (["left", None, "right", "left"], r"missing value in the order column 'where' in row 1", [1]),
        ([True, None, False, True], r"missing value", [1]),
    ],
)
def test_order_column_errors_name_rows(column, message, rows):
    frame = GAMES.assign(where=pd.Series(column, dtype="boolean") if isinstance(column[0], bool) else column)
    with pytest.raises(ComparisonDataError, match=message) as info:
        read_comparisons(frame, left="home", right="away", outcome="result", order="where")
    assert info.value.rows == rows


def test_order_column_missing_and_kept_aligned_when_rows_are_dropped():
    with pytest.raises(ComparisonDataError, match=r"missing order column 'nope'"):
        read_comparisons(GAMES, left="home", right="away", outcome="result", order="nope")
    frame = pd.DataFrame({"model_a": ["a", "b", "c", "a"], "model_b": ["b", "b", "a", "c"],
                          "winner": ["model_a", "model_b", "both_bad", "tie"], "pos": [1, 0, -1, -1]})
    with pytest.warns(bradley.DataWarning):
        c = read_comparisons(frame, order="pos", drop_self_comparisons=True, both_bad="drop")
    assert c.order.tolist() == [1.0, -1.0] and c.items[c.left].tolist() == ["a", "a"]
    # winner/loser files: 'left' is the winner column, so a home-item column works as well
    wl = pd.DataFrame({"winner": ["a", "b"], "loser": ["b", "c"], "venue": ["b", "b"]})
    assert read_comparisons(wl, order="venue").order.tolist() == [-1.0, 1.0]
    assert parse_order(np.array([1, 0, -1])).tolist() == [1.0, 0.0, -1.0]


# --------------------------------------------------------------------------- integer ids in files (issue 9 item 1)
def test_integer_winner_loser_file_fits_without_phantom_items(tmp_path, capsys):
    path = tmp_path / "t.csv"
    path.write_text("winner,loser\n1,2\n2,3\n3,1\n1,3\n")
    c = read_comparisons(path)
    assert c.items.tolist() == [1, 2, 3]
    from bradley.cli import main

    assert main(["fit", str(path), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert sorted(item["name"] for item in out["items"]) == [1, 2, 3]


def test_llmfao_style_integer_model_ids_give_exactly_the_distinct_ids():
    rng = np.random.default_rng(3)
    ids = np.array([4, 17, 101, 59, 230, 8])  # sparse, non-contiguous integer ids
    x, y = rng.choice(ids, 200), rng.choice(ids, 200)
    keep = x != y
    frame = pd.DataFrame({"model_x": x[keep], "model_y": y[keep], "winner": rng.choice(["left", "right", "tie"], keep.sum())})
    c = read_comparisons(frame, left="model_x", right="model_y", outcome="winner")
    assert c.items.tolist() == sorted(ids.tolist())
    assert c.items[c.left].tolist() == frame.model_x.tolist()
    model = bradley.BradleyTerry(prior=10.0).fit(c)
    assert len(model.items_) == 6
