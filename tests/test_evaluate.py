import json

import numpy as np
import pandas as pd
import pytest

import bradley
from bradley.cli import main
from bradley.evaluate import (
    accuracy,
    compare_methods,
    elo_order_spread,
    elo_ratings,
    expected_calibration_error,
    fit_method,
    log_loss,
    rank_correlation,
)
from bradley.matchups import schedule_matchups, score_by_matchups


def test_metrics_by_hand():
    p = np.array([0.9, 0.2, 0.6, 0.5])
    o = np.array([1.0, 0.0, 0.0, 0.5])
    expected = -np.mean([np.log(0.9), np.log(0.8), np.log(0.4), np.log(0.5)])
    assert log_loss(p, o) == pytest.approx(expected)
    assert accuracy(p, o) == pytest.approx(2 / 3)
    # bins: 0.9 -> bin 9 (gap 0.1), 0.2 -> bin 2 (gap 0.2), 0.6 -> bin 6 (gap 0.6)
    assert expected_calibration_error(p, o) == pytest.approx((0.1 + 0.2 + 0.6) / 3)


def test_elo_by_hand_and_order_dependence():
    data = bradley.Comparisons.from_arrays(["a", "a", "b"], ["b", "b", "a"], [1.0, 1.0, 1.0])
    r = elo_ratings(data, k=32)
    # first game: equal ratings, a gains 16; second: expected 1/(1+10^(-32/400))
    e2 = 1 / (1 + 10 ** (-32 / 400))
    a2 = 1016 + 32 * (1 - e2)
    e3 = 1 / (1 + 10 ** ((a2 - (2000 - a2)) / 400))
    assert r[0] == pytest.approx(a2 - 32 * (1 - e3))
    spread = elo_order_spread(bradley.simulate_bt(8, 500, seed=1)[0], k=32, shuffles=10)
    assert (spread["max"] - spread["min"]).max() > 1.0


def test_compare_methods_on_simulated_bt_data():
    data, truth = bradley.simulate_bt(30, 6000, seed=2, item_names=True)
    table = compare_methods(data, methods=["bt", "elo", "trueskill", "winrate"], folds=4, seed=1).set_index("method")
    assert table.loc["bt", "log_loss"] < table.loc["elo", "log_loss"]
    assert (table["accuracy"] > 0.6).all() and (table["log_loss"] < np.log(2)).all()
    _, bt_scores = fit_method("bt", data)
    _, ts_mu = fit_method("trueskill", data)
    corr = rank_correlation(pd.Series(bt_scores, index=data.items), pd.Series(ts_mu, index=data.items))
    assert corr["kendall_tau"] > 0.7 and corr["n_items"] == 30
    with pytest.raises(ValueError, match="unknown method"):
        fit_method("magic", data)


def test_cli_compare(tmp_path, capsys):
    data, _ = bradley.simulate_bt(10, 1500, seed=3, item_names=True)
    path = tmp_path / "games.csv"
    data.to_frame().to_csv(path, index=False)
    assert main(["compare", str(path), "--methods", "bt,winrate", "--folds", "3", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["method"] for r in rows] == ["bt", "winrate"]


def test_schedules():
    rr = schedule_matchups(list("abcdef"), design="round_robin")
    assert len(rr) == 15 and not (rr.left == rr.right).any()
    rand = schedule_matchups([f"q{i}" for i in range(40)], k=4, seed=1)
    assert bradley.mle_existence_problem(
        bradley.Comparisons.from_arrays(rand.left, rand.right, np.full(len(rand), 0.5)).pair_counts()
    ) is None  # connected design
    twice = schedule_matchups(list("abcd"), design="round_robin", repeats=2)
    assert len(twice) == 12 and set(zip(twice.left[:6], twice.right[:6])) == set(zip(twice.right[6:], twice.left[6:]))


def test_relative_scoring_recovers_the_judges_order():
    truth = {f"item{i}": 0.4 * i for i in range(10)}

    def judge(a, b):  # deterministic: the stronger item wins unless they are close
        gap = truth[a] - truth[b]
        return 0.5 if abs(gap) < 0.5 else (a if gap > 0 else b)

    board, matchups = score_by_matchups(list(truth), judge, design="round_robin", prior=5.0)
    order = board.table["item"].tolist()
    assert order == sorted(truth, key=truth.get, reverse=True)
    assert set(matchups.outcome.unique()) <= {0.0, 0.5, 1.0}


def test_davidson_matches_brute_force_and_predicts_three_outcomes():
    from scipy import optimize

    rng = np.random.default_rng(4)
    left = rng.integers(0, 5, 400)
    right = (left + rng.integers(1, 5, 400)) % 5
    outcome = rng.choice([0.0, 0.5, 1.0], 400, p=[0.35, 0.3, 0.35])
    data = bradley.Comparisons.from_arrays(left, right, outcome)
    model = bradley.Davidson().fit(data)

    def negll(x):  # independent: row-level probabilities written out here
        s = np.append(0.0, x[:4])
        nu = np.exp(x[4])
        pl, pr = np.exp(s[left]), np.exp(s[right])
        denom = pl + pr + nu * np.sqrt(pl * pr)
        p = np.where(outcome == 1.0, pl, np.where(outcome == 0.0, pr, nu * np.sqrt(pl * pr))) / denom
        return -np.log(p).sum()

    res = optimize.minimize(negll, np.zeros(5), method="BFGS", options={"gtol": 1e-9})
    truth = np.append(0.0, res.x[:4])
    np.testing.assert_allclose(model.scores_, truth - truth.mean(), atol=1e-5)
    assert model.nu_ == pytest.approx(np.exp(res.x[4]), rel=1e-5)
    assert model.log_likelihood_ == pytest.approx(-res.fun, rel=1e-9)
    proba = model.predict_proba([0, 1], [2, 3])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    table = compare_methods(data, methods=["bt", "davidson"], folds=3)
    assert list(table.method) == ["bt", "davidson"]
