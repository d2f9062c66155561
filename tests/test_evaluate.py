import json

import numpy as np
import pandas as pd
import pytest

import bradley
from bradley.cli import main
from bradley.evaluate import (
    accuracy,
    brier_score,
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
    # favourites: 0.9 (won), 0.8 (won: right side), 0.6 (lost), 0.5 (tie, a coin flip: observed 0.5);
    # each in its own bin on [0.5, 1], gaps 0.1, 0.2, 0.6, 0; ties count, so the total weight is 4
    assert expected_calibration_error(p, o) == pytest.approx((0.1 + 0.2 + 0.6) / 4)
    assert brier_score(p, o) == pytest.approx((0.01 + 0.04 + 0.36 + 0) / 4)


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
    assert len(twice) == 12 and set(zip(twice.left[:6], twice.right[:6], strict=True)) == set(
        zip(twice.right[6:], twice.left[6:], strict=True))


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


# --- eigenvector, PageRank and average win rate (evalica's methods) ---------------------------------

from bradley.evaluate import average_win_rates, eigenvector_ratings, fit_rating_link, pagerank_ratings  # noqa: E402


def _data_with_ties_and_weights(seed=5):
    rng = np.random.default_rng(seed)
    data, truth = bradley.simulate_bt(12, 3000, seed=seed)
    outcome = data.outcome.copy()
    outcome[rng.random(len(outcome)) < 0.15] = 0.5
    weight = rng.choice([0.5, 1.0, 2.0], len(outcome))
    return bradley.Comparisons.from_arrays(data.left, data.right, outcome, weight), truth


def test_eigen_pagerank_average_win_rate_match_evalica():
    evalica = pytest.importorskip("evalica")
    c, truth = _data_with_ties_and_weights()
    W = evalica.Winner
    winners = [W.X if o == 1 else (W.Y if o == 0 else W.Draw) for o in c.outcome]
    swapped = [W.Y if o == 1 else (W.X if o == 0 else W.Draw) for o in c.outcome]
    xs, ys, weights, index = c.left.tolist(), c.right.tolist(), c.weight.tolist(), pd.Index(range(c.n_items))
    tight = dict(index=index, weights=weights, tolerance=1e-13, limit=100_000)  # evalica's iterate near its fixed point

    def scores(result):
        return result.scores.sort_index().to_numpy()

    ours_pr = pagerank_ratings(c)
    np.testing.assert_allclose(ours_pr, scores(evalica.pagerank(xs, ys, winners, damping=0.85, **tight)), atol=1e-9)
    np.testing.assert_allclose(pagerank_ratings(c, damping=0.5),
                               scores(evalica.pagerank(xs, ys, winners, damping=0.5, **tight)), atol=1e-9)
    np.testing.assert_allclose(average_win_rates(c), scores(evalica.average_win_rate(xs, ys, winners, index=index,
                                                                                     weights=weights)), atol=1e-12)
    # evalica's eigen iterates with the transposed win matrix (it rates items by whom they lost to):
    # ours equals it with winners and losers swapped, and orders items like the truth
    ours_eig = eigenvector_ratings(c)
    np.testing.assert_allclose(ours_eig, scores(evalica.eigen(xs, ys, swapped, **tight)), atol=1e-9)
    assert np.corrcoef(truth, ours_eig)[0, 1] > 0.9 and np.corrcoef(truth, ours_pr)[0, 1] > 0.9
    assert np.corrcoef(truth, scores(evalica.eigen(xs, ys, winners, **tight)))[0, 1] < -0.9


def test_closed_forms():
    # 3-cycle i beats i+1 with counts 1, 8, 1: A r = rho r gives rho^3 = 8, r ~ (2, 4, 1). The matrix is
    # cyclic (plain power iteration oscillates forever); the shifted iteration converges.
    cycle = bradley.PairCounts.from_matrix([[0, 1, 0], [0, 0, 8], [1, 0, 0]])
    np.testing.assert_allclose(eigenvector_ratings(cycle), np.array([2.0, 4.0, 1.0]) / np.sqrt(21.0), atol=1e-9)
    # PageRank on the same cycle: item k hands damping x its rating to the item that beat it, so
    # r_k = d r_{k+1} + (1 - d)/3 around the cycle: the uniform vector, whatever the counts
    np.testing.assert_allclose(pagerank_ratings(cycle), np.full(3, 1 / 3), atol=1e-12)
    # two items, 3-1 with 2 ties, tie credit 1/2: a beats b 4 times, b beats a twice
    two = bradley.PairCounts.from_matrix([[0, 3], [1, 0]], ties=[[0, 2], [2, 0]])
    np.testing.assert_allclose(eigenvector_ratings(two), np.array([np.sqrt(2), 1.0]) / np.sqrt(3.0), atol=1e-9)
    d = 0.85  # r_a = d r_b + (1 - d)/2 and r_a + r_b = 1
    r_a = (d + (1 - d) / 2) / (1 + d)
    np.testing.assert_allclose(pagerank_ratings(two, damping=d), [r_a, 1 - r_a], atol=1e-12)
    np.testing.assert_allclose(average_win_rates(two), [4 / 6, 2 / 6], atol=1e-15)
    np.testing.assert_allclose(average_win_rates(two, tie_weight=0.0), [3 / 4, 1 / 4], atol=1e-15)
    with pytest.raises(ValueError, match="damping"):
        pagerank_ratings(two, damping=1.0)


def test_eigen_warns_when_not_converged():
    chain = bradley.PairCounts.from_matrix([[0, 1, 1], [0, 0, 1], [0, 0, 0]])  # transitive: nilpotent win matrix
    with pytest.warns(bradley.ConvergenceWarning, match="did not converge"):
        eigenvector_ratings(chain, max_iter=50)


def test_rating_link_is_the_logistic_mle():
    from scipy import optimize

    c, _ = _data_with_ties_and_weights(seed=7)
    pairs = c.pair_counts()
    z = np.log(pagerank_ratings(pairs))
    x = z[pairs.first] - z[pairs.second]
    win, lose = pairs.wins_first + 0.5 * pairs.ties, pairs.wins_second + 0.5 * pairs.ties

    def nll(a):
        return -float((win * -np.logaddexp(0, -a * x) + lose * -np.logaddexp(0, a * x)).sum())

    truth = optimize.minimize(lambda a: nll(a[0]), [1.0], method="Nelder-Mead",
                              options={"xatol": 1e-10, "fatol": 1e-12}).x[0]
    assert fit_rating_link(z, pairs) == pytest.approx(truth, rel=1e-6)
    assert fit_rating_link(np.zeros(c.n_items), pairs) == 0.0


def test_compare_new_methods_on_simulated_bt_data(tmp_path, capsys):
    data, truth = bradley.simulate_bt(15, 4000, seed=4, item_names=True)
    methods = ["bt", "average_win_rate", "eigen", "pagerank"]
    table = compare_methods(data, methods=methods, folds=3, seed=0).set_index("method")
    assert list(table.index) == methods
    # every rating method predicts better than a coin, and none beats the true model by much
    assert (table["log_loss"] < np.log(2) - 0.02).all()
    assert (table["log_loss"] > table.loc["bt", "log_loss"] - 0.005).all()
    for name in methods[1:]:
        _, scores = fit_method(name, data)
        assert np.corrcoef(scores, truth)[0, 1] > 0.9
    path = tmp_path / "games.csv"
    data.to_frame().to_csv(path, index=False)
    assert main(["compare", str(path), "--methods", "eigen,pagerank,average_win_rate", "--folds", "2",
                 "--format", "json"]) == 0
    assert [r["method"] for r in json.loads(capsys.readouterr().out)] == ["eigen", "pagerank", "average_win_rate"]


def test_evaluate_does_not_import_scipy_stats_at_module_level():
    import ast

    tree = ast.parse(open(bradley.evaluate.__file__).read())
    top = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    names = [alias.name for node in top if isinstance(node, ast.Import) for alias in node.names]
    names += [f"{node.module}.{alias.name}" for node in top if isinstance(node, ast.ImportFrom) for alias in node.names]
    assert not [n for n in names if n.startswith("scipy.stats")], names


# --- weights are frequencies; no metric depends on which side is called left (issue 9, item 4) ------


def _pudding():
    """The pudding data (Davidson 1970) as 45 weighted rows (wins each way and ties per pair), and written out."""
    frame = _PUDDING
    left = np.tile(frame["i"].to_numpy(), 3)
    right = np.tile(frame["j"].to_numpy(), 3)
    n = len(frame)
    outcome = np.repeat([1.0, 0.0, 0.5], n)
    weight = np.concatenate([frame["w_ij"], frame["w_ji"], frame["t_ij"]]).astype(float)
    weighted = bradley.Comparisons.from_arrays(left, right, outcome, weight)
    games = weight.astype(int)
    expanded = bradley.Comparisons.from_arrays(np.repeat(left, games), np.repeat(right, games),
                                               np.repeat(outcome, games))
    return weighted, expanded, games


# /work/shared/data/plackettluce/pudding.csv (PlackettLuce's pudding): columns i, j, w_ij, w_ji, t_ij
_PUDDING = pd.DataFrame(
    [(1, 2, 19, 22, 16), (1, 3, 16, 19, 12), (2, 3, 19, 19, 10), (1, 4, 18, 23, 13), (2, 4, 23, 19, 9),
     (3, 4, 19, 20, 15), (1, 5, 13, 19, 18), (2, 5, 16, 20, 12), (3, 5, 16, 15, 17), (4, 5, 17, 14, 16),
     (1, 6, 18, 21, 12), (2, 6, 22, 20, 12), (3, 6, 13, 18, 10), (4, 6, 14, 19, 18), (5, 6, 11, 21, 12)],
    columns=["i", "j", "w_ij", "w_ji", "t_ij"])

METRIC_COLUMNS = ["log_loss", "log_loss_sd", "accuracy", "accuracy_sd", "brier", "brier_sd", "ece", "ece_sd"]
ALL_METHODS = ["bt", "davidson", "elo", "trueskill", "winrate", "average_win_rate", "eigen", "pagerank"]


def _assert_same_metrics(a, b, atol=1e-9):
    assert list(a["method"]) == list(b["method"])
    np.testing.assert_allclose(a[METRIC_COLUMNS].to_numpy(float), b[METRIC_COLUMNS].to_numpy(float), atol=atol)


def test_weighted_rows_score_like_the_games_written_out():
    weighted, expanded, games = _pudding()
    assert weighted.n_comparisons == 45 and expanded.n_comparisons == games.sum() == 745
    # default split: a whole-number weight is that many games, dealt to folds as the written-out rows are
    a = compare_methods(weighted, methods=ALL_METHODS, folds=5, seed=3)
    b = compare_methods(expanded, methods=ALL_METHODS, folds=5, seed=3)
    assert a.attrs["split"] == "games" and b.attrs["split"] == "rows"
    _assert_same_metrics(a, b)
    # the pudding items are close to indistinguishable: every method near a coin (old code: bt accuracy 0.20)
    assert (a["accuracy"].between(0.4, 0.6)).all() and (a["log_loss"] < 0.75).all()
    # a fixed split that keeps every weighted row whole, given to both as fold labels
    labels = np.arange(45) % 4
    c = compare_methods(weighted, methods=ALL_METHODS, split=labels)
    d = compare_methods(expanded, methods=ALL_METHODS, split=np.repeat(labels, games))
    assert c.attrs["split"] == "given"
    _assert_same_metrics(c, d)


def test_weighted_metrics_equal_repeated_rows():
    rng = np.random.default_rng(0)
    p, o = rng.random(30), rng.choice([0.0, 0.5, 1.0, 0.3], 30)
    w = rng.integers(0, 4, 30)
    p_rep, o_rep = np.repeat(p, w), np.repeat(o, w)
    for metric in (log_loss, accuracy, brier_score, expected_calibration_error):
        assert metric(p, o, weight=w) == pytest.approx(metric(p_rep, o_rep), abs=1e-12), metric.__name__


def test_elo_and_trueskill_weights_are_games():
    weighted, expanded, _ = _pudding()
    np.testing.assert_allclose(elo_ratings(weighted, k=16), elo_ratings(expanded, k=16), atol=1e-9)
    _, mu_w = fit_method("trueskill", weighted)
    _, mu_e = fit_method("trueskill", expanded)
    np.testing.assert_allclose(mu_w, mu_e, atol=1e-9)
    # a fractional weight is a scaled update: weight 0.25 moves a quarter of a game's K
    half = bradley.Comparisons.from_arrays(["a"], ["b"], [1.0], weight=[0.25])
    np.testing.assert_allclose(elo_ratings(half, k=32) - 1000.0, [4.0, -4.0])
    with pytest.raises(ValueError, match="whole-number"):
        fit_method("trueskill", half)
    # weights that add up to more games than a sequential method can play are refused (fit) or skipped (compare)
    huge = bradley.Comparisons.from_arrays(weighted.left, weighted.right, weighted.outcome, weighted.weight * 1e6)
    with pytest.raises(ValueError, match="divide the weights"):
        elo_ratings(huge)
    notes = compare_methods(huge, methods=["bt", "elo", "trueskill"], folds=2).set_index("method")["note"]
    assert notes["bt"] == "" and notes["elo"].startswith("skipped") and notes["trueskill"].startswith("skipped")
    table = compare_methods(bradley.Comparisons.from_arrays(weighted.left, weighted.right, weighted.outcome,
                                                            weighted.weight * 0.5), folds=3)
    assert table.attrs["split"] == "rows"
    note = table.set_index("method").loc["trueskill", "note"]
    assert "fractional" in note and np.isnan(table.set_index("method").loc["trueskill", "log_loss"])


def _swapped(data):
    return bradley.Comparisons.from_arrays(data.items[data.right], data.items[data.left], 1.0 - data.outcome,
                                           data.weight)


def test_relabelling_sides_changes_no_metric():
    # a winner/loser file against the same games as recorded (old code: ECE 0.0097 vs 0.454 on pudding)
    _, expanded, _ = _pudding()
    winner_first = bradley.Comparisons.from_arrays(
        expanded.items[np.where(expanded.outcome == 0.0, expanded.right, expanded.left)],
        expanded.items[np.where(expanded.outcome == 0.0, expanded.left, expanded.right)],
        np.where(expanded.outcome == 0.0, 1.0, expanded.outcome))
    _assert_same_metrics(compare_methods(expanded, methods=ALL_METHODS, seed=1),
                         compare_methods(winner_first, methods=ALL_METHODS, seed=1))


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), tie_share=st.sampled_from([0.0, 0.2]), weighted=st.booleans(),
       flips=st.lists(st.booleans(), min_size=60, max_size=60))
def test_swapping_any_rows_changes_no_metric(seed, tie_share, weighted, flips):
    rng = np.random.default_rng(seed)
    data, _ = bradley.simulate_bt(5, 60, seed=seed)
    outcome = np.where(rng.random(60) < tie_share, 0.5, data.outcome)
    weight = rng.integers(1, 4, 60).astype(float) if weighted else None
    data = bradley.Comparisons.from_arrays(data.items[data.left], data.items[data.right], outcome, weight)
    flip = np.array(flips)
    relabelled = bradley.Comparisons.from_arrays(
        data.items[np.where(flip, data.right, data.left)], data.items[np.where(flip, data.left, data.right)],
        np.where(flip, 1.0 - data.outcome, data.outcome), weight)
    methods = ["bt", "davidson", "elo", "winrate", "average_win_rate", "pagerank"]
    _assert_same_metrics(compare_methods(data, methods=methods, folds=3, seed=seed),
                         compare_methods(relabelled, methods=methods, folds=3, seed=seed), atol=1e-7)


def test_metrics_are_symmetric_in_the_sides():
    rng = np.random.default_rng(1)
    p = np.concatenate([rng.random(200), [0.5, 0.5, 0.5]])
    o = np.concatenate([rng.choice([0.0, 0.5, 1.0], 200), [1.0, 0.0, 0.5]])
    w = rng.random(203)
    for metric in (log_loss, accuracy, brier_score, expected_calibration_error):
        assert metric(p, o, w) == pytest.approx(metric(1 - p, 1 - o, w), abs=1e-12), metric.__name__
    # a bin edge computed from either side: expit(logit(0.9)) = 0.8999999999999999, 1 - expit(-logit(0.9)) = 0.9
    from scipy.special import expit, logit

    x = logit(0.9)
    assert expected_calibration_error([0.9, expit(x)], [1.0, 0.0]) == pytest.approx(0.4, abs=1e-12)
    assert expected_calibration_error([0.1, expit(-x)], [0.0, 1.0]) == pytest.approx(0.4, abs=1e-12)
    # a coin-flip prediction is half a hit, whichever side won
    assert accuracy([0.5], [1.0]) == accuracy([0.5], [0.0]) == 0.5


def test_compare_without_ties_skips_tie_models(tmp_path, capsys):
    data, _ = bradley.simulate_bt(8, 400, seed=0, item_names=True)
    table = compare_methods(data).set_index("method")  # the default methods include davidson
    assert list(table.index) == ["bt", "davidson", "elo", "trueskill", "winrate"]
    assert table.loc["davidson", "note"].startswith("skipped: no ties")
    assert np.isnan(table.loc["davidson", "log_loss"]) and table.drop(index="davidson")["log_loss"].notna().all()
    path = tmp_path / "games.csv"
    data.to_frame().to_csv(path, index=False)
    assert main(["compare", str(path), "--format", "json"]) == 0  # the old code failed: "use family='bt'"
    rows = json.loads(capsys.readouterr().out)
    assert [r["note"] for r in rows if r["method"] == "davidson"][0].startswith("skipped")


def test_tie_model_on_a_training_fold_without_ties_is_bt(monkeypatch):
    data, _ = bradley.simulate_bt(6, 300, seed=2)
    outcome = data.outcome.copy()
    outcome[0] = 0.5  # one tie: the fold that holds it out trains on no ties
    data = bradley.Comparisons.from_arrays(data.left, data.right, outcome)
    labels = np.arange(300) % 3
    fitted = []
    original = bradley.evaluate.fit_method

    def recording(name, train, **options):
        fitted.append((name, bool(np.any(train.outcome == 0.5))))
        return original(name, train, **options)

    monkeypatch.setattr(bradley.evaluate, "fit_method", recording)
    table = compare_methods(data, methods=["davidson"], split=labels).set_index("method")
    assert "fold(s) 1" in table.loc["davidson", "note"]  # row 0 is in the first fold
    # the fold without ties to train on is fitted by bt, the others by davidson on data with the tie
    assert fitted == [("bt", False), ("davidson", True), ("davidson", True)]


def test_split_errors():
    data, _ = bradley.simulate_bt(4, 20, seed=0)
    with pytest.raises(ValueError, match="at least 2"):
        compare_methods(data, folds=1)
    with pytest.raises(ValueError, match="leave folds out"):
        compare_methods(data, split=np.arange(20) % 2, folds=3)
    with pytest.raises(ValueError, match="one fold label per row"):
        compare_methods(data, split=[0, 1])
    fractional = bradley.Comparisons.from_arrays(data.left, data.right, data.outcome, np.full(20, 0.5))
    with pytest.raises(ValueError, match="whole-number weights"):
        compare_methods(fractional, split="games")
    with pytest.raises(ValueError, match="unknown method 'magic'"):
        compare_methods(data, methods=["bt", "magic"])


def test_games_are_dealt_whole_to_folds_on_both_paths(monkeypatch):
    from bradley import evaluate

    weighted, _, games = _pudding()
    for limit in (1 << 25, 10):  # a permutation of all games, then a multinomial draw per row
        monkeypatch.setattr(evaluate, "_GAME_PERMUTATION_LIMIT", limit)
        kind, k, dealt = evaluate._fold_weights(weighted, 5, "auto", 0)
        assert kind == "games" and k == 5 and dealt.shape == (45, 5)
        np.testing.assert_array_equal(dealt.sum(axis=1), games)  # every game in exactly one fold
        assert (dealt == np.round(dealt)).all() and np.abs(dealt.sum(axis=0) - 149).max() < 40
