import json
from pathlib import Path
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import bradley
from bradley.cli import main


@pytest.fixture
def arena_csv(tmp_path):
    path = tmp_path / "battles.csv"
    pd.DataFrame(
        {
            "model_a": ["a", "b", "c", "a", "b", "c", "a"],
            "model_b": ["b", "c", "a", "c", "a", "b", "b"],
            "winner": ["model_a", "model_a", "model_b", "tie", "model_b", "both_bad", "model_b"],
            "extra": range(7),
        }
    ).to_csv(path, index=False)
    return path


def test_fit_json_schema(arena_csv, capsys):
    assert main(["fit", str(arena_csv), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"model", "n_items", "n_comparisons", "log_likelihood", "converged", "iterations", "solver",
                        "identifiability", "items"}
    assert out["model"] == "bradley-terry" and out["n_items"] == 3 and out["n_comparisons"] == 7
    assert out["converged"] is True and isinstance(out["iterations"], int)
    assert [set(item) for item in out["items"]] == [{"name", "score", "se", "elo", "position", "wins", "losses", "ties",
                                                     "comparisons"}] * 3
    model = bradley.BradleyTerry().fit(bradley.read_comparisons(arena_csv))
    by_name = {item["name"]: item for item in out["items"]}
    se = model.standard_errors()
    for name, score in zip(model.items_, model.scores_):
        assert by_name[name]["score"] == pytest.approx(score, abs=1e-12)
        assert by_name[name]["se"] == pytest.approx(se[name], rel=1e-9)
    assert [item["position"] for item in out["items"]] == [1, 2, 3]
    assert out["log_likelihood"] == pytest.approx(model.log_likelihood_)


@pytest.mark.parametrize("fmt", ["table", "csv", "markdown"])
def test_fit_text_formats(arena_csv, capsys, fmt):
    assert main(["fit", str(arena_csv), "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert "score" in out and "a" in out
    if fmt == "csv":
        table = pd.read_csv(pd.io.common.StringIO(out))
        assert list(table.columns)[:4] == ["item", "score", "se", "elo"]
    if fmt == "markdown":
        assert out.splitlines()[1].startswith("|--")


def test_column_options_solver_and_prior(tmp_path, capsys):
    path = tmp_path / "games.csv"
    pd.DataFrame({"p1": ["x", "y", "x"], "p2": ["y", "z", "z"], "res": [1, 1, 1]}).to_csv(path, index=False)
    # x never lost: without a prior this fails with a one-line message ...
    coding = ["--outcome-map", "1=left,0=right"]
    assert main(["fit", str(path), "--left", "p1", "--right", "p2", "--outcome", "res", *coding]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bradley: error: the maximum-likelihood scores do not exist") and err.count("\n") == 1
    assert "'x'" in err and "--prior" in err
    # ... and with one it fits, for every solver.
    for solver in ("newton", "mm", "newman", "lbfgs"):
        code = main(["fit", str(path), "--left", "p1", "--right", "p2", "--outcome", "res", *coding,
                     "--prior", "1", "--solver", solver, "--format", "json"])
        assert code == 0
        assert json.loads(capsys.readouterr().out)["items"][0]["name"] == "x"


def test_bad_input_exit_code_without_traceback(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    pd.DataFrame({"model_a": ["a", "b"], "model_b": ["b", "a"], "winner": ["model_a", "banana"]}).to_csv(path, index=False)
    assert main(["fit", str(path)]) == 2
    err = capsys.readouterr().err
    assert "unknown outcome label(s) ['banana'] in line 3" in err  # file line: the header is line 1 and "Traceback" not in err
    with pytest.raises(bradley.ComparisonDataError):
        main(["fit", str(path), "--debug"])


def test_missing_file(capsys):
    assert main(["fit", "/nonexistent/battles.csv"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_console_script_runs_on_shipped_data():
    result = subprocess.run(
        [sys.executable, "-m", "bradley", "fit", str(bradley.datasets.arena_140k_path()), "--drop-self-comparisons"],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "gemini-2.5-pro " in result.stdout and "dropped 10 of 135634" in result.stderr


def test_fit_tie_models_and_order_effect_json(tmp_path, capsys):
    data, _ = bradley.simulate_bt(6, 2000, seed=4, item_names=True)
    frame = data.to_frame()
    rng = np.random.default_rng(0)
    frame.loc[rng.random(len(frame)) < 0.2, "outcome"] = 0.5
    frame["judge"] = rng.choice(["human", "gpt"], len(frame))
    frame["length_diff"] = rng.normal(size=len(frame))
    path = tmp_path / "games.csv"
    frame.to_csv(path, index=False)
    for model, param in (("davidson", "nu"), ("rao-kupper", "eta"), ("tobt", "alpha")):
        assert main(["fit", str(path), "--model", model, "--order-effect", "--format", "json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["model"] == model and set(out["parameters"]) == {param, "order_effect"}
        assert set(out["parameters"][param]) == {"estimate", "se", "fixed"}
    assert main(["fit", str(path), "--order-effect", "annotator", "--annotator", "judge",
                 "--covariates", "length_diff", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["parameters"]) == {"order_effect[human]", "order_effect[gpt]", "length_diff"}
    assert main(["fit", str(path), "--model", "davidson"]) == 0
    assert "parameters:" in capsys.readouterr().out


def test_fit_plackett_luce_from_long_and_wide_files(tmp_path, capsys):
    wide = tmp_path / "races.csv"
    pd.DataFrame([["x", "y", "z"], ["y", "x", "z"], ["x", "z", "y"], ["z", "y", "x"]]).to_csv(wide, index=False)
    assert main(["fit", str(wide), "--model", "plackett-luce", "--layout", "wide", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "plackett-luce" and out["n_comparisons"] == 4 and out["items"][0]["name"] == "x"
    assert {"se", "first_place"} <= set(out["items"][0])
    long = tmp_path / "long.csv"
    pd.DataFrame({"ranking_id": [1, 1, 1, 2, 2, 2, 3, 3], "item": list("abccabab"), "rank": [1, 2, 3, 1, 2, 2, 2, 1]}).to_csv(long, index=False)
    assert main(["fit", str(long), "--model", "plackett-luce", "--solver", "mm"]) == 0
    assert "plackett-luce: 3 items, 3 rankings" in capsys.readouterr().out


def _home_games(tmp_path, seed=1, n=6, m=1500, gamma=0.5):
    """Games with a home advantage on some rows only: venue names the home item, empty = neutral."""
    rng = np.random.default_rng(seed)
    s = rng.normal(0, 0.7, n)
    left = rng.integers(0, n, m)
    right = (left + rng.integers(1, n, m)) % n
    order = rng.choice([1, 0, -1], m)
    outcome = (rng.random(m) < 1 / (1 + np.exp(-(s[left] - s[right] + gamma * order)))).astype(float)
    names = np.array([f"i{k}" for k in range(n)], dtype=object)
    venue = np.where(order == 1, names[left], np.where(order == -1, names[right], ""))
    path = tmp_path / "home.csv"
    pd.DataFrame({"left": names[left], "right": names[right], "outcome": outcome, "venue": venue}).to_csv(path, index=False)
    return path, left, right, order, outcome


def test_order_column_end_to_end_matches_brute_force(tmp_path, capsys):
    from scipy import optimize
    from scipy.special import log_expit

    path, left, right, order, outcome = _home_games(tmp_path)

    def nll(theta, o):
        s = np.concatenate([[0.0], theta[:-1]])
        d = s[left] - s[right] + theta[-1] * o
        return -float((outcome * log_expit(d) + (1 - outcome) * log_expit(-d)).sum())

    def brute(o):
        return optimize.minimize(nll, np.zeros(6), args=(o,), method="BFGS", options={"gtol": 1e-10}).x

    truth = brute(order)
    assert main(["fit", str(path), "--order-effect", "--order-column", "venue", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["parameters"]["order_effect"]["estimate"] == pytest.approx(truth[-1], abs=1e-5)
    scores = {item["name"]: item["score"] for item in out["items"]}
    fitted = np.array([scores[f"i{k}"] for k in range(6)])
    np.testing.assert_allclose(fitted - fitted[0], np.concatenate([[0.0], truth[:-1]]), atol=1e-5)
    # without the column every row counts as "left at home": a different (wrong) fit
    assert main(["fit", str(path), "--order-effect", "--format", "json"]) == 0
    ignored = json.loads(capsys.readouterr().out)["parameters"]["order_effect"]["estimate"]
    assert ignored == pytest.approx(brute(np.ones_like(order))[-1], abs=1e-5)
    assert abs(ignored - truth[-1]) > 0.2
    # the leaderboard reads the same column
    assert main(["leaderboard", str(path), "--order-effect", "--order-column", "venue", "--format", "json"]) == 0
    board = json.loads(capsys.readouterr().out)
    assert board["parameters"]["order_effect"]["estimate"] == pytest.approx(truth[-1], abs=1e-5)


def test_order_column_needs_order_effect_and_a_valid_column(tmp_path, capsys):
    path, *_ = _home_games(tmp_path, m=60)
    assert main(["fit", str(path), "--order-column", "venue"]) == 2
    assert "needs --order-effect" in capsys.readouterr().err
    assert main(["fit", str(path), "--order-effect", "--order-column", "nope"]) == 2
    assert "missing order column 'nope'" in capsys.readouterr().err
    pd.read_csv(path).assign(pos=lambda f: np.where(f.index == 7, 2, 1)).to_csv(path, index=False)
    assert main(["fit", str(path), "--order-effect", "--order-column", "pos"]) == 2
    assert "order column 'pos' must hold 1 (left had the advantage), -1 (right had it) or 0 (neutral); got [2.0] in" \
        in capsys.readouterr().err


def test_bias_reduction_flag_fits_an_unbeaten_item(tmp_path, capsys):
    # 'a' never lost: the plain MLE does not exist, Firth's estimate is finite
    path = tmp_path / "games.csv"
    pd.DataFrame({"left": ["a", "a", "b", "c", "b"], "right": ["b", "c", "c", "b", "a"],
                  "outcome": [1, 1, 1, 1, 0]}).to_csv(path, index=False)
    assert main(["fit", str(path)]) == 2
    capsys.readouterr()
    assert main(["fit", str(path), "--bias-reduction", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    data = bradley.read_comparisons(path)
    model = bradley.BradleyTerry(bias_reduction=True).fit(data)
    scores = {row["name"]: row["score"] for row in out["items"]}
    np.testing.assert_allclose([scores[i] for i in model.items_], model.scores_, atol=1e-9)
    assert main(["leaderboard", str(path), "--bias-reduction", "--ci", "fisher"]) == 0
    capsys.readouterr()
    assert main(["fit", str(path), "--bias-reduction", "--prior", "10"]) == 2
    assert main(["fit", str(path), "--bias-reduction", "--model", "davidson"]) == 2


def test_fixed_parameters_and_item_features_flags_match_the_api(tmp_path, capsys):
    rng = np.random.default_rng(4)
    size = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 2.5}
    items = list(size)
    rows = []
    for _ in range(300):
        i, j = rng.choice(4, 2, replace=False)
        p = 1 / (1 + np.exp(-0.8 * (size[items[i]] - size[items[j]])))
        u = rng.random()
        rows.append((items[i], items[j], 1.0 if u < 0.8 * p else (0.5 if u < 0.8 * p + 0.2 else 0.0)))
    games = tmp_path / "games.csv"
    pd.DataFrame(rows, columns=["left", "right", "outcome"]).to_csv(games, index=False)
    features = pd.DataFrame({"item": items, "size": list(size.values())})
    feature_file = tmp_path / "features.csv"
    features.to_csv(feature_file, index=False)
    args = ["fit", str(games), "--model", "davidson", "--item-features", str(feature_file), "--fixed", "nu=0.5"]
    assert main(args + ["--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    model = bradley.Davidson(item_features=features.set_index("item"), fixed={"nu": 0.5}).fit(
        bradley.read_comparisons(games))
    scores = {row["name"]: row["score"] for row in out["items"]}
    np.testing.assert_allclose([scores[i] for i in model.items_], model.scores_, atol=1e-8)
    assert model.params_.loc["nu", "estimate"] == 0.5 and bool(model.params_.loc["nu", "fixed"])
    assert main(["fit", str(games), "--fixed", "nu"]) == 2
    assert main(["fit", str(games), "--item-effects", "random"]) == 2


def test_plackett_luce_matrix_layout_and_davidson_luce_ties(tmp_path, capsys):
    # rank matrix with an id column; a tied pair in every ranking makes delta_2 estimable
    matrix = pd.DataFrame({"judge": [1, 2, 3, 4, 5, 6], "A": [1, 1, 2, 1, 3, 1], "B": [2, 1, 1, 3, 1, 2],
                           "C": [3, 2, 1, 2, 2, 2], "D": [0, 3, 3, 3, 2, 3]})
    path = tmp_path / "ranks.csv"
    matrix.to_csv(path, index=False)
    assert main(["fit", str(path), "--model", "plackett-luce", "--layout", "matrix", "--id-col", "judge",
                 "--ties", "davidson-luce", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rankings = bradley.read_rankings(path, layout="matrix", id="judge")
    model = bradley.PlackettLuce(ties="davidson-luce").fit(rankings)
    scores = {row["name"]: row["score"] for row in out["items"]}
    np.testing.assert_allclose([scores[i] for i in model.items_], model.scores_, atol=1e-7)
    assert "delta_2" in model.params_.index


# --------------------------------------------------------------------------- issue 9: a command line that tells the truth

ARENA = str(bradley.datasets.arena_140k_path())


@pytest.fixture
def tie_games(tmp_path):
    """Davidson-like data with ties and a home side that sometimes loses."""
    data, _ = bradley.simulate_bt(5, 600, seed=3, item_names=True)
    frame = data.to_frame()
    rng = np.random.default_rng(1)
    frame.loc[rng.random(len(frame)) < 0.25, "outcome"] = 0.5
    path = tmp_path / "games.csv"
    frame.to_csv(path, index=False)
    return path


def test_debug_works_before_and_after_the_command(capsys):
    missing = "/nonexistent/battles.csv"
    with pytest.raises(bradley.ComparisonDataError):
        main(["--debug", "fit", missing])  # the form `bradley --help` shows (was ignored)
    with pytest.raises(bradley.ComparisonDataError):
        main(["fit", missing, "--debug"])
    assert main(["fit", missing]) == 2
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize(("exc", "code", "words"), [(MemoryError, 1, "out of memory"), (KeyboardInterrupt, 130, "interrupted")])
def test_memory_error_and_ctrl_c_are_one_line(arena_csv, capsys, monkeypatch, exc, code, words):
    def boom(args):
        raise exc()

    monkeypatch.setattr(bradley.cli, "_run_fit", boom)
    assert main(["fit", str(arena_csv)]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and "Traceback" not in err
    with pytest.raises(exc):
        main(["fit", str(arena_csv), "--debug"])


def test_error_messages_use_option_names_not_python_arguments(tmp_path, capsys):
    assert bradley.cli.cli_words("Use a Gaussian prior (prior=10.0), fix it (fixed={...}) or "
                                 "BradleyTerry(bias_reduction=True); family='bt'") == (
        "Use a Gaussian prior (--prior 10), fix it (--fixed NAME=VALUE) or --bias-reduction; --model bt")
    # end to end: x never lost, so the tie model's estimate does not exist; the advice is in CLI words
    path = tmp_path / "games.csv"
    pd.DataFrame({"left": ["x", "x", "y", "z", "y"], "right": ["y", "z", "z", "y", "z"],
                  "outcome": [1, 1, 0.5, 1, 1]}).to_csv(path, index=False)
    assert main(["fit", str(path), "--model", "davidson"]) == 2
    err = capsys.readouterr().err
    assert "--prior" in err and "prior=" not in err and "fixed=" not in err


def _winner_first(tmp_path):
    txt = tmp_path / "matches.txt"
    txt.write_text("a b\nb c\nc a\na c\nb a\nc b\na b\n")
    return txt


def test_order_effect_refused_on_winner_first_files(tmp_path, capsys):
    txt = _winner_first(tmp_path)
    assert main(["fit", str(txt), "--order-effect"]) == 2
    err = capsys.readouterr().err
    assert "won by the item listed first" in err and "winner first" in err and err.count("\n") == 1
    assert main(["leaderboard", str(txt), "--order-effect", "--prior", "10"]) == 2
    assert "listed first" in capsys.readouterr().err
    csv = tmp_path / "wl.csv"
    pd.DataFrame({"w": ["a", "b", "c", "a"], "l": ["b", "c", "a", "c"]}).to_csv(csv, index=False)
    assert main(["fit", str(csv), "--winner", "w", "--loser", "l", "--order-effect", "--prior", "1"]) == 2
    assert "listed first" in capsys.readouterr().err
    # ties aside: a tie does not make the position informative
    ties = tmp_path / "ties.csv"
    pd.DataFrame({"left": ["a", "b", "c", "a"], "right": ["b", "c", "a", "c"],
                  "outcome": [1, 1, 0.5, 1]}).to_csv(ties, index=False)
    assert main(["fit", str(ties), "--order-effect", "--prior", "1"]) == 2
    assert "(3 rows, ties aside)" in capsys.readouterr().err
    # a fixed order effect has nothing to estimate: the fit goes ahead
    assert main(["fit", str(txt), "--order-effect", "--fixed", "order_effect=0.2", "--prior", "10"]) == 0
    capsys.readouterr()


def test_order_effect_check_leaves_identifiable_data_alone(tie_games, capsys):
    assert main(["fit", str(tie_games), "--order-effect", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["converged"] and np.isfinite(out["parameters"]["order_effect"]["estimate"])


def test_order_effect_refused_when_the_home_side_always_won(tmp_path, capsys):
    path = tmp_path / "venues.csv"
    # home (venue) is the winner in every decisive row, whichever column it is in
    pd.DataFrame({"left": ["a", "b", "c", "a", "b"], "right": ["b", "c", "a", "c", "a"],
                  "outcome": [1, 0, 1, 0, 0.5], "venue": ["a", "c", "c", "c", "b"]}).to_csv(path, index=False)
    assert main(["fit", str(path), "--order-effect", "--order-column", "venue", "--prior", "1"]) == 2
    assert "home" in capsys.readouterr().err


def test_anchor_is_an_elo_rating_in_fit_and_leaderboard(arena_csv, capsys):
    assert main(["fit", str(arena_csv), "--format", "json"]) == 0
    free = {i["name"]: i for i in json.loads(capsys.readouterr().out)["items"]}
    assert main(["fit", str(arena_csv), "--anchor", "b=1200", "--format", "json"]) == 0
    fit = {i["name"]: i for i in json.loads(capsys.readouterr().out)["items"]}
    assert main(["leaderboard", str(arena_csv), "--anchor", "b=1200", "--format", "json"]) == 0
    board = {i["name"]: i for i in json.loads(capsys.readouterr().out)["items"]}
    shift = 1200 - free["b"]["elo"]
    for name in "abc":  # one common shift of the unanchored Elo ratings, the same in both commands
        assert fit[name]["elo"] == pytest.approx(free[name]["elo"] + shift, abs=1e-6)
        assert board[name]["elo"] == pytest.approx(free[name]["elo"] + shift, abs=1e-6)
        assert fit[name]["score"] - fit["b"]["score"] == pytest.approx(free[name]["score"] - free["b"]["score"])
    assert fit["b"]["se"] == 0.0  # fit: se relative to the anchor item
    # --anchor ITEM alone means Elo 1000; --anchor-score keeps the natural-log scale
    assert main(["fit", str(arena_csv), "--anchor", "b", "--format", "json"]) == 0
    assert {i["name"]: i for i in json.loads(capsys.readouterr().out)["items"]}["b"]["elo"] == pytest.approx(1000)
    assert main(["fit", str(arena_csv), "--anchor-score", "b=0.5", "--format", "json"]) == 0
    assert {i["name"]: i for i in json.loads(capsys.readouterr().out)["items"]}["b"]["score"] == pytest.approx(0.5)
    # a value that looks like a score is taken as Elo, with a warning naming --anchor-score
    assert main(["fit", str(arena_csv), "--anchor", "b=0.5"]) == 0
    assert "--anchor-score" in capsys.readouterr().err
    assert "ITEM[=ELO]" in bradley.cli.build_parser()._subparsers._group_actions[0].choices["fit"].format_help()


def test_progress_on_at_a_terminal_off_when_piped(arena_csv, capsys, monkeypatch):
    args = ["leaderboard", str(arena_csv), "--ci", "bootstrap", "--rounds", "20"]
    assert main(args) == 0  # capsys: stderr is not a terminal
    assert "20/20" not in capsys.readouterr().err
    monkeypatch.setattr(bradley.cli, "_stderr_is_terminal", lambda: True)
    assert main(args) == 0
    assert "20/20" in capsys.readouterr().err  # the tqdm bar
    assert main([*args, "--no-progress"]) == 0
    assert "20/20" not in capsys.readouterr().err
    assert main(["--no-progress", *args]) == 0
    assert "20/20" not in capsys.readouterr().err


def test_tie_and_order_parameters_in_every_format(tie_games, tmp_path, capsys):
    base = ["fit", str(tie_games), "--model", "davidson", "--order-effect"]
    assert main([*base, "--format", "json"]) == 0
    params = json.loads(capsys.readouterr().out)["parameters"]
    nu, order = params["nu"]["estimate"], params["order_effect"]["estimate"]
    assert main([*base, "--format", "csv"]) == 0
    table = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out))
    assert table["param_nu"].tolist() == pytest.approx([nu] * 5)
    assert table["param_order_effect"].tolist() == pytest.approx([order] * 5)
    assert table["param_nu_se"].iloc[0] == pytest.approx(params["nu"]["se"])
    for fmt in ("table", "markdown"):
        assert main([*base, "--format", fmt]) == 0
        out = capsys.readouterr().out
        assert "order_effect" in out and f"{nu:.4g}" in out
    board = ["leaderboard", str(tie_games), "--model", "davidson", "--order-effect"]
    for fmt in ("table", "markdown", "csv"):
        assert main([*board, "--format", fmt]) == 0
        out = capsys.readouterr().out
        assert "order_effect" in out and "nu" in out
    html = tmp_path / "r.html"
    assert main([*board, "--html", str(html)]) == 0
    page = html.read_text()
    assert "Model parameters" in page and "order_effect" in page and f"{nu:.4g}" in page
    capsys.readouterr()


def test_leaderboard_fits_100_columns_and_columns_option(capsys):
    assert main(["leaderboard", ARENA, "--drop-self-comparisons"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 100  # was ~130
    assert "rank = 1 + the number of items whose interval lies entirely above" in out
    assert main(["leaderboard", ARENA, "--drop-self-comparisons", "--columns", "rank,item,win_rate", "--top", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(k for k, line in enumerate(lines) if line.startswith("rank"))
    assert lines[header].split() == ["rank", "item", "win", "rate"]
    assert len([line for line in lines[header + 2:] if line.strip() and line[0] == " "]) == 4
    assert main(["leaderboard", ARENA, "--drop-self-comparisons", "--columns", "rank,bogus"]) == 2
    assert "--columns" in capsys.readouterr().err


def test_fit_position_and_leaderboard_rank_json_agree_on_shared_fields(arena_csv, capsys):
    assert main(["fit", str(arena_csv), "--format", "json"]) == 0
    fit = json.loads(capsys.readouterr().out)
    assert main(["leaderboard", str(arena_csv), "--ci", "fisher", "--format", "json"]) == 0
    board = json.loads(capsys.readouterr().out)
    shared = {"name", "score", "se", "elo", "position", "wins", "losses", "ties", "comparisons"}
    assert shared <= set(board["items"][0]) and shared == set(fit["items"][0])
    for a, b in zip(fit["items"], board["items"]):
        assert a["name"] == b["name"]
        for key in shared - {"name"}:
            assert a[key] == pytest.approx(b[key], rel=1e-9), key
        assert {"rank", "rank_low", "rank_high", "ci_low", "ci_high"} <= set(b)
    for key in ("model", "n_items", "n_comparisons", "converged", "iterations", "solver"):
        assert fit[key] == board[key]
    assert main(["fit", str(arena_csv)]) == 0
    out = capsys.readouterr().out
    assert "position = order of the point estimates" in out and " rank " not in out


def test_html_title_top_and_provisional(tmp_path, capsys):
    html = tmp_path / "report.html"
    assert main(["leaderboard", ARENA, "--drop-self-comparisons", "--html", str(html), "--title", "Arena & co",
                 "--top", "5", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    page = html.read_text()
    assert "<title>Arena &amp; co</title>" in page and "<h1>Arena &amp; co</h1>" in page
    body = page.split("<tbody>")[1].split("</tbody>")[0]
    assert body.count("<tr") == 5 and "top 5 of 53" in page
    assert len(out["items"]) == 53  # --top never truncates json/csv
    assert main(["leaderboard", ARENA, "--drop-self-comparisons", "--html", str(html), "--min-battles", "1000",
                 "--format", "json"]) == 0
    items = json.loads(capsys.readouterr().out)["items"]
    thin = [i["name"] for i in items if i["comparisons"] < 1000]
    assert thin and [i["name"] for i in items if i["provisional"]] == thin
    body = html.read_text().split("<tbody>")[1]
    assert body.count('<tr class="provisional">') == len(thin)


def test_compare_split_option_reaches_the_folds(tmp_path, capsys):
    # pudding as weighted pair rows: --split games and --split rows give different held-out tables
    source = Path(__file__).resolve().parents[2] / "shared" / "data" / "plackettluce" / "pudding.csv"
    if not source.exists():
        pytest.skip("shared data not available")
    pudding = pd.read_csv(source)
    rows = []
    for r in pudding.itertuples():
        rows += [(r.i, r.j, 1.0, r.w_ij), (r.i, r.j, 0.0, r.w_ji), (r.i, r.j, 0.5, r.t_ij)]
    path = tmp_path / "pudding_rows.csv"
    pd.DataFrame(rows, columns=["left", "right", "outcome", "weight"]).to_csv(path, index=False)
    tables = {}
    for split in ("games", "rows"):
        assert main(["compare", str(path), "--weight", "weight", "--methods", "bt", "--split", split,
                     "--format", "json"]) == 0
        tables[split] = json.loads(capsys.readouterr().out)[0]
    expected = bradley.evaluate.compare_methods(bradley.read_comparisons(path, weight="weight"), methods=["bt"],
                                                split="games")
    assert tables["games"]["log_loss"] == pytest.approx(float(expected["log_loss"].iloc[0]), rel=1e-8)
    assert tables["games"]["log_loss"] != pytest.approx(tables["rows"]["log_loss"], rel=1e-3)
