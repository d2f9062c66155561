"""Presentation: parameters in every format, compact leaderboards, HTML options, one JSON vocabulary."""

import json

import numpy as np
import pandas as pd
import pytest

import bradley
from bradley.report import (fit_to_dict, leaderboard_display, leaderboard_html, leaderboard_to_dict, parse_columns,
                            render_fit, render_leaderboard)


@pytest.fixture(scope="module")
def long_names_board():
    """44-character item names (as long as the longest in the shipped arena data) and one thin item."""
    data, _ = bradley.simulate_bt(8, 3000, seed=5)
    names = [f"model-{k}-" + "x" * 36 for k in range(8)]
    frame = data.to_frame()
    frame["left"] = [names[int(c)] for c in frame["left"]]
    frame["right"] = [names[int(c)] for c in frame["right"]]
    thin = pd.DataFrame({"left": ["thin-item", names[0]], "right": [names[1], "thin-item"], "outcome": [1.0, 1.0]})
    comparisons = bradley.read_comparisons(pd.concat([frame, thin], ignore_index=True))
    return bradley.leaderboard(comparisons, ci="fisher", min_battles=10)


def test_compact_leaderboard_fits_100_columns_and_marks_provisional(long_names_board):
    text = render_leaderboard(long_names_board, "table")
    assert max(len(line) for line in text.splitlines()) <= 100
    row = next(line for line in text.splitlines() if line.split()[1:2] == ["thin-item"])
    assert row.rstrip().endswith("*") and "provisional item(s) (marked *)" in text
    # the full set is available on request
    wide = render_leaderboard(long_names_board, "table", columns=parse_columns("all"))
    assert "win rate" in wide and "provisional" in wide


def test_columns_keys_and_errors(long_names_board):
    shown = leaderboard_display(long_names_board, ["item", "elo", "se"])
    assert list(shown.columns) == ["item", "elo", "se"]
    assert shown["se"].tolist() == pytest.approx(long_names_board.table["se"].tolist())
    with pytest.raises(ValueError, match="--columns"):
        parse_columns("rank,nope")
    csv = pd.read_csv(pd.io.common.StringIO(render_leaderboard(long_names_board, "csv", columns=["item", "ci"])))
    assert list(csv.columns) == ["item", "ci_low", "ci_high", "elo_low", "elo_high", "interval"]


def test_top_limits_text_and_html_not_json(long_names_board):
    text = render_leaderboard(long_names_board, "markdown", top=3)
    assert text.count("\n|") == 2 + 3 - 1 and "top 3 of 9 items shown" in text
    page = leaderboard_html(long_names_board, title="T", top=3)
    assert page.split("<tbody>")[1].split("</tbody>")[0].count("<tr") == 3
    assert len(leaderboard_to_dict(long_names_board)["items"]) == 9
    with pytest.raises(ValueError, match="top"):
        leaderboard_html(long_names_board, top=0)


def test_parameters_in_every_format_match_the_model():
    rng = np.random.default_rng(2)
    data, _ = bradley.simulate_bt(4, 800, seed=2, item_names=True)
    frame = data.to_frame()
    frame.loc[rng.random(len(frame)) < 0.3, "outcome"] = 0.5
    model = bradley.Davidson(order_effect=True).fit(bradley.read_comparisons(frame))
    nu, se = float(model.params_.loc["nu", "estimate"]), float(model.params_.loc["nu", "se"])
    as_json = json.loads(render_fit(model, "json", "davidson"))
    assert as_json["parameters"]["nu"] == {"estimate": pytest.approx(nu), "se": pytest.approx(se), "fixed": False}
    csv = pd.read_csv(pd.io.common.StringIO(render_fit(model, "csv")))
    assert csv["param_nu"].tolist() == pytest.approx([nu] * 4) and csv["param_nu_se"].tolist() == pytest.approx([se] * 4)
    for fmt in ("table", "markdown"):
        text = render_fit(model, fmt)
        assert "order_effect" in text and f"{nu:.4g}" in text
    board = bradley.leaderboard(bradley.read_comparisons(frame), model=bradley.Davidson(order_effect=True))
    assert leaderboard_to_dict(board)["parameters"]["nu"]["estimate"] == pytest.approx(nu)
    assert "Model parameters" in leaderboard_html(board)


def test_json_nan_becomes_null_and_fields_match_between_fit_and_leaderboard():
    data, _ = bradley.simulate_bt(5, 500, seed=7, item_names=True)
    fit = fit_to_dict(bradley.BradleyTerry().fit(data))
    board = leaderboard_to_dict(bradley.leaderboard(data, ci="none"))
    assert board["items"][0]["ci_low"] is None  # NaN is not valid JSON
    json.dumps(board, allow_nan=False)
    for a, b in zip(fit["items"], board["items"]):
        assert a["name"] == b["name"] and a["position"] == b["position"]
        assert a["comparisons"] == b["comparisons"] and a["score"] == pytest.approx(b["score"])


def test_python_to_json_is_the_cli_json():
    import json as _json

    import bradley
    from bradley.report import leaderboard_to_dict

    board = bradley.leaderboard(bradley.simulate_bt(4, 400, seed=1, item_names=True)[0])
    assert _json.loads(board.to_json()) == _json.loads(_json.dumps(leaderboard_to_dict(board)))
    assert "position" in _json.loads(board.to_json())["items"][0]
