import json
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
    assert main(["fit", str(path), "--left", "p1", "--right", "p2", "--outcome", "res"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bradley: error: the maximum-likelihood scores do not exist") and err.count("\n") == 1
    assert "'x'" in err and "--prior" in err
    # ... and with one it fits, for every solver.
    for solver in ("newton", "mm", "newman", "lbfgs"):
        code = main(["fit", str(path), "--left", "p1", "--right", "p2", "--outcome", "res",
                     "--prior", "1", "--solver", solver, "--format", "json"])
        assert code == 0
        assert json.loads(capsys.readouterr().out)["items"][0]["name"] == "x"


def test_bad_input_exit_code_without_traceback(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    pd.DataFrame({"model_a": ["a", "b"], "model_b": ["b", "a"], "winner": ["model_a", "banana"]}).to_csv(path, index=False)
    assert main(["fit", str(path)]) == 2
    err = capsys.readouterr().err
    assert "unknown outcome label(s) ['banana'] in row 1" in err and "Traceback" not in err
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
    assert "order column 'pos' must hold 1 (left had the advantage), -1 (right had it) or 0 (neutral); got [2.0] in row 7" \
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
