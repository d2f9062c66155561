"""Online raters (Elo, Glicko-2, Weng-Lin) and the rolling-origin temporal protocol."""

import math

import numpy as np
import pytest

from bradley import Comparisons
from bradley.evaluate import elo_ratings
from bradley.raters import GLICKO2_SCALE, EloRater, Glicko2Rater, WengLinRater, glicko2_update
from bradley.temporal import (
    davidson_draw_link,
    fit_draw_link,
    rolling_origin_splits,
    temporal_evaluation,
)


def _random_games(n_items=6, n=240, seed=0, draws=True, periods=6):
    rng = np.random.default_rng(seed)
    theta = np.linspace(-1.0, 1.0, n_items)
    left = rng.integers(0, n_items, n)
    right = (left + rng.integers(1, n_items, n)) % n_items
    d = theta[left] - theta[right]
    nu = 0.8 if draws else 0.0
    p = np.stack([np.exp(d / 2), np.full(n, nu), np.exp(-d / 2)], 1)
    p /= p.sum(1, keepdims=True)
    u = rng.random(n)
    outcome = np.where(u < p[:, 0], 1.0, np.where(u < p[:, 0] + p[:, 1], 0.5, 0.0))
    time = np.sort(rng.integers(0, periods, n))
    return Comparisons.from_codes(left, right, outcome, items=[f"i{k}" for k in range(n_items)], time=time)


# ------------------------------------------------------------------ Glicko-2


def test_glicko2_paper_example():
    # Glickman (2013), "Example of the Glicko-2 system": mu' = -0.2069, phi' = 0.8722, sigma' = 0.05999,
    # i.e. r' = 1464.06, RD' = 151.52 (the paper rounds mu' before converting back)
    r, rd, vol = glicko2_update(1500, 200, 0.06, [1400, 1550, 1700], [30, 100, 300], [1, 0, 0], tau=0.5)
    assert round((r - 1500) / GLICKO2_SCALE, 4) == -0.2069
    assert round(rd / GLICKO2_SCALE, 4) == 0.8722
    assert abs(vol - 0.05999) < 1e-5  # 0.059996; the paper prints 0.05999
    assert abs(r - 1464.06) < 0.01 and round(rd, 2) == 151.52
    # a period without games only widens the deviation: phi' = sqrt(phi^2 + sigma^2)
    _, rd_idle, vol_idle = glicko2_update(1500, 200, 0.06, [], [], [])
    assert rd_idle == pytest.approx(GLICKO2_SCALE * math.hypot(200 / GLICKO2_SCALE, 0.06)) and vol_idle == 0.06


def test_glicko2_rater_is_one_rating_period():
    # p1 beats p2, loses to p3 and p4 in one period; everyone starts 1500/200/0.06
    data = Comparisons.from_arrays(["p1", "p3", "p1"], ["p2", "p1", "p4"], [1.0, 1.0, 0.0])
    g = Glicko2Rater(initial_rd=200.0).reset(["p1", "p2", "p3", "p4", "idle"]).update(data)
    table = g.ratings_.set_index("item")
    # every game is scored against the states at the start of the period
    expected_p1 = glicko2_update(1500, 200, 0.06, [1500] * 3, [200] * 3, [1, 0, 0])
    expected_p3 = glicko2_update(1500, 200, 0.06, [1500], [200], [1])
    assert table.loc["p1", ["rating", "rd", "volatility"]].tolist() == pytest.approx(expected_p1, abs=1e-9)
    assert table.loc["p3", ["rating", "rd", "volatility"]].tolist() == pytest.approx(expected_p3, abs=1e-9)
    assert table.loc["idle", "rd"] == pytest.approx(min(200.0, GLICKO2_SCALE * math.hypot(200 / GLICKO2_SCALE, .06)))
    # home advantage: the home side's rating is shifted by h in the update and in the prediction
    home = Glicko2Rater(home_advantage=60.0).reset(["a", "b"])
    assert home.predict_proba(["a"], ["b"], [1])[0] > 0.5 > home.predict_proba(["a"], ["b"], [-1])[0]
    one = Comparisons.from_arrays(["a"], ["b"], [1.0])
    home.update(one)
    expected_a = glicko2_update(1500, 350, 0.06, [1500 - 60.0], [350], [1])
    assert home.ratings_.set_index("item").loc["a", "rating"] == pytest.approx(expected_a[0])


# ------------------------------------------------------------------ Elo


def test_elo_hand_computed_and_home_advantage():
    data = Comparisons.from_arrays(["a", "a"], ["b", "b"], [1.0, 0.5])
    elo = EloRater(k=32).fit(data)
    # game 1: expected 0.5 -> a 1516, b 1484; game 2 (draw): expected of a = 1 / (1 + 10^(-32/400))
    e2 = 1.0 / (1.0 + 10 ** (-32 / 400))
    a = 1516 + 32 * (0.5 - e2)
    assert elo.ratings_["rating"].tolist() == pytest.approx([a, 3000 - a])
    # home advantage 100: equal ratings, the home side is expected 1 / (1 + 10^(-1/4)) = 0.6400 and loses
    home = EloRater(k=32, home_advantage=100).fit(Comparisons.from_arrays(["a"], ["b"], [0.0]))
    e = 1.0 / (1.0 + 10 ** (-100 / 400))
    assert home.ratings_["rating"].tolist() == pytest.approx([1500 - 32 * e, 1500 + 32 * e])
    assert home.predict_proba(["b"], ["a"], [0])[0] == pytest.approx(1 / (1 + 10 ** (-64 * e / 400)))
    # no overflow at huge gaps
    assert 0.0 <= EloRater().reset(["x"]).predict_proba(["x"], ["x"], [0])[0] == 0.5
    far = EloRater(initial=0.0, home_advantage=1e6).reset(["x", "y"])
    assert far.predict_proba(["x"], ["y"])[0] == 1.0


def test_elo_matches_the_evaluate_peer():
    data = _random_games(n=300, seed=3)
    ours = EloRater(k=4.0, initial=1000.0).fit(data).ratings_["rating"].to_numpy()
    peer = elo_ratings(data, k=4.0)
    np.testing.assert_allclose(ours, peer, atol=1e-9)


# ------------------------------------------------------------------ Weng-Lin


def test_weng_lin_matches_openskill():
    models = pytest.importorskip("openskill.models")
    data = Comparisons.from_arrays(["a", "b", "a", "c"], ["b", "c", "c", "a"], [1.0, 0.5, 0.0, 1.0])
    for name in ("PlackettLuce", "BradleyTerryFull"):
        ours = WengLinRater(model=name).fit(data)
        model = getattr(models, name)()
        state = {k: model.rating() for k in "abc"}
        for lft, rgt, o in [("a", "b", 1.0), ("b", "c", 0.5), ("a", "c", 0.0), ("c", "a", 1.0)]:
            ranks = [0, 0] if o == 0.5 else ([0, 1] if o == 1 else [1, 0])
            (state[lft],), (state[rgt],) = model.rate([[state[lft]], [state[rgt]]], ranks=ranks)
        table = ours.ratings_.set_index("item")
        for k in "abc":
            assert table.loc[k, "mu"] == pytest.approx(state[k].mu, abs=1e-12)
            assert table.loc[k, "sigma"] == pytest.approx(state[k].sigma, abs=1e-12)
        assert ours.predict_proba(["a"], ["c"])[0] == pytest.approx(model.predict_win([[state["a"]], [state["c"]]])[0])


# ------------------------------------------------------------------ draws


def test_draw_link_and_its_fit():
    p = davidson_draw_link([0.1, 0.5, 0.9], 0.7)
    np.testing.assert_allclose(p.sum(1), 1.0)
    # brute force: P(win) = s/(s + 1/s + nu) with s = sqrt(e / (1 - e))
    s = np.sqrt(0.9 / 0.1)
    assert p[2, 0] == pytest.approx(s / (s + 1 / s + 0.7)) and p[2, 1] == pytest.approx(0.7 / (s + 1 / s + 0.7))
    np.testing.assert_allclose(davidson_draw_link([0.3], 0.0), [[0.3, 0.0, 0.7]])
    assert np.isfinite(davidson_draw_link([1.0, 0.0], 1.0)).all()
    # ML nu against a grid search of the same likelihood
    rng = np.random.default_rng(1)
    e = rng.uniform(0.2, 0.8, 400)
    truth = davidson_draw_link(e, 0.6)
    cls = (rng.random(400)[:, None] > truth.cumsum(1)).sum(1)
    outcome = np.array([1.0, 0.5, 0.0])[cls]
    grid = np.linspace(0.05, 2.0, 3901)
    ll = [np.log(davidson_draw_link(e, g)[np.arange(400), cls]).sum() for g in grid]
    assert fit_draw_link(e, outcome) == pytest.approx(grid[int(np.argmax(ll))], abs=1e-3)
    assert fit_draw_link(e, np.round(e)) == 0.0  # no draws


# ------------------------------------------------------------------ protocol


def test_splits_never_use_the_future():
    data = _random_games(periods=7)
    splits = rolling_origin_splits(data, min_train_periods=2)
    assert [s.period for s in splits] == [2, 3, 4, 5, 6]
    for s in splits:
        assert data.time[s.train].max() < data.time[s.test].min()
        assert set(s.train) | set(s.test) == set(np.flatnonzero(data.time <= s.period))
        assert not set(s.train) & set(s.test)
    blocks = rolling_origin_splits(data, 50)
    assert [len(s.test) for s in blocks] == [50, 50, 50, 40] and all(len(s.train) % 50 == 0 for s in blocks)


def test_protocol_catches_a_peeking_method():
    # outcomes are fair coins: only a method that has seen a test row can beat log(2) on it
    rng = np.random.default_rng(5)
    n = 200
    left = rng.integers(0, 5, n)
    right = (left + 1 + rng.integers(0, 4, n)) % 5
    data = Comparisons.from_codes(left, right, (rng.random(n) < 0.5).astype(float), items=list("abcde"),
                                  time=np.arange(n))  # unique stamps; periods are blocks of 20 rows
    seen_latest = []

    def oracle(train):
        seen_latest.append(train.time.max())
        memory = dict(zip(train.time.tolist(), train.outcome.tolist(), strict=True))
        return lambda test: np.array([memory.get(t, 0.5) for t in test.time.tolist()])

    result = temporal_evaluation(data, {"oracle": oracle}, period=20)
    assert result.table.loc[0, "log_loss"] == pytest.approx(math.log(2))
    assert seen_latest == [20 * k - 1 for k in range(1, 10)]  # the fit before period k saw periods < k only

    def leaky(train):  # a method that (wrongly) reads the whole data set is caught by the same score
        memory = dict(zip(data.time.tolist(), data.outcome.tolist(), strict=True))
        return lambda test: np.array([memory[t] for t in test.time.tolist()])

    assert temporal_evaluation(data, {"leaky": leaky}, period=20).table.loc[0, "log_loss"] < 1e-6


def test_online_raters_are_updated_only_after_predicting():
    data = _random_games(n=180, periods=5, seed=2)
    result = temporal_evaluation(data, {"elo": EloRater(k=24), "glicko": Glicko2Rater()})
    items = np.asarray(data.items)
    for split in result.splits:
        train, test = data.take(split.train), data.take(split.test)
        direct = EloRater(k=24).fit(train).predict_proba(items[test.left], items[test.right])
        got = result.predictions.query("method == 'elo'").set_index("row").loc[split.test, "expected"]
        np.testing.assert_allclose(got.to_numpy(), direct, atol=1e-12)
        # Glicko-2: one rating period per past period
        g = Glicko2Rater().reset(data.items)
        for k in np.unique(train.time):
            g.update(train.take(train.time == k))
        got = result.predictions.query("method == 'glicko'").set_index("row").loc[split.test, "expected"]
        np.testing.assert_allclose(got.to_numpy(), g.predict_proba(items[test.left], items[test.right]), atol=1e-12)


def test_win_draw_loss_scores():
    data = _random_games(n=400, periods=8, seed=4)
    result = temporal_evaluation(data, ["bt", "davidson", "elo", "glicko2", "weng_lin"])
    table = result.table.set_index("method")
    assert set(table.index) == {"bt", "davidson", "elo", "glicko2", "weng_lin"}
    assert table.loc["davidson", "draw_model"] == "own" and table.loc["elo", "draw_model"] == "link"
    # the three-class scores recomputed by hand from the per-row predictions
    frame = result.predictions.query("method == 'elo'")
    cls = np.where(frame.outcome > 0.5, 0, np.where(frame.outcome < 0.5, 2, 1))
    probs = frame[["p_win", "p_draw", "p_loss"]].to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0)
    assert table.loc["elo", "log_loss_wdl"] == pytest.approx(-np.log(probs[np.arange(len(cls)), cls]).mean())
    assert table.loc["elo", "brier_wdl"] == pytest.approx(((probs - np.eye(3)[cls]) ** 2).sum(1).mean())
    # draws are predicted at about their rate (simulated draw share ~ 0.3), never dropped
    assert (table["games"] == len(frame)).all()
    for method in table.index:
        assert abs(table.loc[method, "draw_rate_predicted"] - table.loc[method, "draw_rate_observed"]) < 0.06
    # a model of the truth beats always predicting 1/3 each
    assert (table["log_loss_wdl"] < math.log(3)).all()


def test_dynamic_bt_plugs_in():
    pytest.importorskip("bradley.models.dynamic")
    data = _random_games(n=160, periods=4, seed=6)
    result = temporal_evaluation(data, ["dynamic_bt", "elo"], dynamic_w2=0.01)
    assert result.table["log_loss_wdl"].notna().all() and len(result.summary()) == 2


def test_paired_comparison_and_its_standard_errors():
    data = _random_games(n=600, periods=10, seed=8)

    def even(train):  # predicts 1/3 each whatever the teams
        return lambda test: np.full((len(test), 3), 1.0 / 3.0)

    result = temporal_evaluation(data, {"davidson": "davidson", "elo": "elo", "even": even})
    table = result.compare("even").set_index("method")
    frame = result.predictions
    cls = np.where(frame.outcome > 0.5, 0, np.where(frame.outcome < 0.5, 2, 1))
    frame = frame.assign(loss=-np.log(frame[["p_win", "p_draw", "p_loss"]].to_numpy()[np.arange(len(cls)), cls]))
    base = frame.query("method == 'even'").set_index("row")
    dav = frame.query("method == 'davidson'").set_index("row").loc[base.index]
    d = dav.loss.to_numpy() - base.loss.to_numpy()
    # per-game mean, paired difference and its textbook se (unit weights)
    assert table.loc["davidson", "loss"] == pytest.approx(result.table.set_index("method").loc["davidson",
                                                                                             "log_loss_wdl"])
    assert table.loc["even", "loss"] == pytest.approx(math.log(3))
    assert table.loc["davidson", "diff"] == pytest.approx(d.mean())
    assert table.loc["davidson", "se_diff"] == pytest.approx(d.std(ddof=1) / math.sqrt(len(d)))
    # cluster-robust over periods, by hand
    sums = d - d.mean()
    by_p = np.array([sums[base.period.to_numpy() == p].sum() for p in np.unique(base.period)])
    n_p = len(by_p)
    assert table.loc["davidson", "se_diff_period"] == pytest.approx(
        math.sqrt(n_p / (n_p - 1) * np.sum(by_p**2)) / len(d))
    # a model of the truth beats the even guess beyond noise; the baseline against itself is 0
    assert table.loc["davidson", "z"] < -2
    assert table.loc["even", "diff"] == 0 and table.loc["even", "se_diff"] == 0
    with pytest.raises(ValueError, match="baseline"):
        result.compare("nobody")


def test_draw_link_before_any_draw_is_smoothed_not_zero():
    # periods 0-1 have no draw; period 2 holds one. Elo has no draw model: at the first origin its link uses
    # nu = 2r / (1 - r) with r = (0 + 1/2) / (games + 1); after that, with no draw among its past predictions,
    # the same rule on all earlier games (before: nu = 0, so a first draw cost -log(1e-15) = 34.5)
    data = Comparisons.from_arrays(["a", "b", "a", "b", "a", "b"], ["b", "c", "c", "a", "b", "c"],
                                   [1.0, 1.0, 0.0, 1.0, 0.5, 1.0], time=[0, 0, 0, 1, 2, 2])
    result = temporal_evaluation(data, {"elo": EloRater(k=32)}, draws=True)
    pred = result.predictions.set_index("row")
    for row, n_train in ((3, 3), (4, 4), (5, 4)):
        r = 0.5 / (n_train + 1)
        expected = davidson_draw_link([pred.loc[row, "expected"]], 2 * r / (1 - r))[0]
        assert pred.loc[row, ["p_win", "p_draw", "p_loss"]].to_numpy(float) == pytest.approx(expected, rel=1e-12)
    assert pred.loc[4, "p_draw"] > 0.05
    assert result.table["log_loss_wdl"].iloc[0] < 2.0


def _smoothed_nu(data, train_rows):
    w = np.ones(len(data)) if data.weight is None else data.weight
    r = (np.sum(w[train_rows] * (data.outcome[train_rows] == 0.5)) + 0.5) / (np.sum(w[train_rows]) + 1.0)
    return 2 * r / (1 - r)


def test_draw_link_is_fitted_only_after_min_link_games():
    # review: nu fitted by ML on 10-20 early predictions handicapped Elo. Rule: ML on the method's own past
    # out-of-sample predictions only once they cover >= min_link_games games; before, the smoothed train rate.
    data = _random_games(n=400, periods=8, seed=4)
    counts = {}
    for min_games in (100, 0):
        result = temporal_evaluation(data, {"elo": EloRater(k=20)}, draws=True, min_link_games=min_games)
        pred = result.predictions.set_index("row")
        ml_used = 0
        for k, split in enumerate(result.splits):
            past = np.concatenate([s.test for s in result.splits[:k]]) if k else np.zeros(0, dtype=int)
            if len(past) >= min_games and np.any(data.outcome[past] == 0.5):
                nu = fit_draw_link(pred.loc[past, "expected"], data.outcome[past])
                ml_used += 1
            else:
                nu = _smoothed_nu(data, split.train)
            want = davidson_draw_link(pred.loc[split.test, "expected"], nu)
            got = pred.loc[split.test, ["p_win", "p_draw", "p_loss"]].to_numpy(float)
            np.testing.assert_allclose(got, want, rtol=1e-9)
        counts[min_games] = ml_used
    # both regimes are exercised: with 100, the first origins (under 100 past predictions) use the train rate
    assert 1 <= counts[100] < counts[0] == len(result.splits) - 1
    with pytest.raises(ValueError, match="min_link_games"):
        temporal_evaluation(data, ["elo"], min_link_games=-1)


def test_draw_link_ignores_draws_of_weight_zero():
    # every past draw has weight 0: the link must not be fitted to "no draws" (nu = 0, a later draw costs 34.5)
    left = ["a", "b", "c", "a", "b", "c"] * 30
    right = ["b", "c", "a", "c", "a", "b"] * 30
    outcome = np.array([1.0, 0.0] * 90)
    time = np.repeat(np.arange(6), 30)
    outcome[35] = outcome[70] = 0.5  # draws in periods 1 and 2 ...
    weight = np.ones(180)
    weight[[35, 70]] = 0.0           # ... with weight 0
    outcome[170] = 0.5               # a counted draw in the last period
    data = Comparisons.from_arrays(left, right, outcome, time=time, weight=weight)
    result = temporal_evaluation(data, ["bt"], draws=True, min_link_games=10)  # online raters refuse weights
    pred = result.predictions.set_index("row")
    last = result.splits[-1]
    want = davidson_draw_link(pred.loc[last.test, "expected"], _smoothed_nu(data, last.train))
    np.testing.assert_allclose(pred.loc[last.test, ["p_win", "p_draw", "p_loss"]].to_numpy(float), want, rtol=1e-9)
    assert pred.loc[170, "p_draw"] > 1e-3


def test_draw_model_column_over_splits():
    data = _random_games(n=240, periods=6, seed=2)

    def sometimes(train):  # own three probabilities only once the past holds 100 games
        if len(train) >= 100:
            return lambda test: np.full((len(test), 3), 1.0 / 3.0)
        return lambda test: np.full(len(test), 0.5)

    def never(train):
        return lambda test: np.full(len(test), 0.5)

    table = temporal_evaluation(data, {"mixed": sometimes, "link": never, "own": "davidson"}).table
    assert table.set_index("method")["draw_model"].to_dict() == {"mixed": "mixed", "link": "link", "own": "own"}
