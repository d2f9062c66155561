"""Tie models, order effects, covariates and label noise: brute force and simulation recovery."""

import numpy as np
import pandas as pd
import pytest
from scipy import optimize
from scipy.special import expit, log_expit

import bradley
from bradley import TOBT, Comparisons, Davidson, MLEDoesNotExistError, PairwiseModel, RaoKupper


def simulate(n_items, n_rows, seed, family="bt", tie=0.0, order=0.0, beta=None, flip=0.0, annotators=None):
    """Row-level simulation written independently of the package's likelihood code."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(0, 1, n_items)
    truth -= truth.mean()
    left = rng.integers(0, n_items, n_rows)
    right = (left + rng.integers(1, n_items, n_rows)) % n_items
    d = truth[left] - truth[right]
    ann = None
    if annotators is not None:
        ann = rng.integers(0, len(annotators), n_rows)
        d = d + np.asarray(annotators)[ann]
    else:
        d = d + order
    features = None
    if beta is not None:
        features = rng.normal(0, 1, (n_rows, len(beta)))
        d = d + features @ np.asarray(beta)
    u = rng.random(n_rows)
    if family == "davidson":
        pl, pr = np.exp(d / 2), np.exp(-d / 2)
        p_win, p_tie = pl / (pl + pr + tie), tie / (pl + pr + tie)
    elif family == "rao-kupper":
        p_win, p_loss = expit(d - tie), expit(-d - tie)
        p_tie = 1 - p_win - p_loss
    else:
        p_win, p_tie = expit(d), np.zeros(n_rows)
    outcome = np.where(u < p_win, 1.0, np.where(u < p_win + p_tie, 0.5, 0.0))
    if flip:
        flipped = (rng.random(n_rows) < flip) & (outcome != 0.5)
        outcome = np.where(flipped, 1.0 - outcome, outcome)
    data = Comparisons.from_arrays(left, right, outcome, items=np.arange(n_items), features=features,
                                   feature_names=None if beta is None else [f"f{k}" for k in range(len(beta))],
                                   annotator=None if ann is None else np.array(["judge-a", "judge-b", "judge-c"])[ann])
    return data, truth, left, right, outcome, features


def row_negll(family, left, right, outcome, n_items):
    def negll(x):
        s = np.append(0.0, x[: n_items - 1])
        gamma, t = x[n_items - 1], x[n_items]
        d = s[left] - s[right] + gamma
        if family == "davidson":
            nu = np.exp(t)
            denom = np.exp(d / 2) + np.exp(-d / 2) + nu
            p = np.where(outcome == 1, np.exp(d / 2), np.where(outcome == 0, np.exp(-d / 2), nu)) / denom
        else:
            alpha = np.exp(t)
            pw, pl = expit(d - alpha), expit(-d - alpha)
            p = np.where(outcome == 1, pw, np.where(outcome == 0, pl, 1 - pw - pl))
        return -np.log(p).sum()

    return negll


@pytest.mark.parametrize("family,cls,tie", [("davidson", Davidson, 0.8), ("rao-kupper", RaoKupper, 0.6)])
def test_tie_models_with_order_effect_match_brute_force(family, cls, tie):
    data, _, left, right, outcome, _ = simulate(5, 1500, 1, family=family, tie=tie, order=0.3)
    model = cls(order_effect=True).fit(data)
    res = optimize.minimize(row_negll(family, left, right, outcome, 5), np.zeros(6), method="BFGS", options={"gtol": 1e-8})
    s = np.append(0.0, res.x[:4])
    np.testing.assert_allclose(model.scores_, s - s.mean(), atol=1e-5)
    assert model.params_.loc["order_effect", "estimate"] == pytest.approx(res.x[4], abs=1e-5)
    assert model.log_likelihood_ == pytest.approx(-res.fun, rel=1e-9)
    name, value = ("nu", np.exp(res.x[5])) if family == "davidson" else ("eta", np.exp(np.exp(res.x[5])))
    assert model.params_.loc[name, "estimate"] == pytest.approx(value, rel=1e-5)
    # standard errors from the observed information, against a numerical Hessian of the brute-force likelihood
    assert model.converged_ and np.all(model.params_["se"] > 0)
    proba = model.predict_proba([0, 1, 2], [3, 4, 0])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_simulation_recovery_of_tie_and_order_parameters():
    data, truth, *_ = simulate(20, 40_000, 2, family="davidson", tie=0.7, order=0.25)
    model = Davidson(order_effect=True).fit(data)
    params = model.params_
    for name, true in (("nu", 0.7), ("order_effect", 0.25)):
        est, se = params.loc[name, "estimate"], params.loc[name, "se"]
        assert abs(est - true) < 4 * se, (name, est, se)
    assert np.corrcoef(model.scores_, truth)[0, 1] > 0.99
    rk_data, rk_truth, *_ = simulate(20, 40_000, 3, family="rao-kupper", tie=0.5)
    rk = RaoKupper().fit(rk_data)
    assert abs(rk.eta_ - np.exp(0.5)) < 4 * rk.params_.loc["eta", "se"]


def test_tobt_is_rao_kupper_in_another_parametrisation():
    data, *_ = simulate(6, 3000, 4, family="rao-kupper", tie=0.4)
    rk, tobt = RaoKupper().fit(data), TOBT().fit(data)
    np.testing.assert_allclose(rk.scores_, tobt.scores_, atol=1e-7)
    assert np.log(rk.eta_) == pytest.approx(tobt.alpha_, rel=1e-6)


def test_per_annotator_position_bias():
    biases = [0.6, 0.0, -0.4]
    data, *_ = simulate(10, 30_000, 5, annotators=biases)
    model = PairwiseModel(order_effect="annotator").fit(data)
    for name, true in zip(["judge-a", "judge-b", "judge-c"], biases):
        row = model.params_.loc[f"order_effect[{name}]"]
        assert abs(row["estimate"] - true) < 4 * row["se"], (name, row["estimate"])


def test_style_control_covariates_recover_coefficients_with_ci():
    data, truth, *_ = simulate(15, 30_000, 6, beta=[0.5, -0.2])
    model = PairwiseModel(covariates=True).fit(data)
    table = model.params_
    assert list(table.columns) == ["estimate", "se", "z", "p_value", "ci_low", "ci_high", "fixed"]
    for name, true in (("f0", 0.5), ("f1", -0.2)):
        assert table.loc[name, "ci_low"] < true < table.loc[name, "ci_high"]
        assert table.loc[name, "p_value"] < 1e-6
    assert np.corrcoef(model.scores_, truth)[0, 1] > 0.99


def test_known_flip_rate_removes_the_attenuation():
    data, truth, *_ = simulate(20, 60_000, 7, flip=0.2)
    naive = bradley.BradleyTerry().fit(data).scores_
    corrected = PairwiseModel(flip_rate=0.2).fit(data).scores_
    slope = lambda s: float(np.polyfit(truth, s, 1)[0])  # noqa: E731
    assert slope(naive) < 0.7  # biased toward zero (about 0.6 expected)
    assert abs(slope(corrected) - 1.0) < 0.05


def test_engine_reproduces_bradley_terry_and_its_errors():
    data, *_ = simulate(12, 5000, 8)
    engine = PairwiseModel().fit(data)
    bt = bradley.BradleyTerry().fit(data)
    np.testing.assert_allclose(engine.scores_, bt.scores_, atol=1e-8)
    fisher = bradley.inference.standard_errors(bradley.inference.fisher_covariance(bt))
    np.testing.assert_allclose(engine.scores_se_, fisher, rtol=1e-5)
    assert list(engine.summary().columns)[:3] == ["item", "score", "se"]


def test_errors():
    data, *_ = simulate(5, 500, 9)
    with pytest.raises(ValueError, match="no ties"):
        Davidson().fit(data)
    with pytest.raises(ValueError, match="annotator"):
        PairwiseModel(order_effect="annotator").fit(data)
    with pytest.raises(ValueError, match="features"):
        PairwiseModel(covariates=True).fit(data)
    with pytest.raises(ValueError, match="flip_rate"):
        PairwiseModel(family="davidson", flip_rate=0.1).fit(data)


def _adversarial(seed, n=50, m=20_000, rate=0.1):
    """10% of the comparisons involving the true top-10 are flipped by an adversary,
    who turns the top items' wins against the weakest opponents into losses."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(0, 1, n)
    truth -= truth.mean()
    left = rng.integers(0, n, m)
    right = (left + rng.integers(1, n, m)) % n
    outcome = (rng.random(m) < expit(truth[left] - truth[right])).astype(float)
    top = np.argsort(-truth)[:10]
    involving = np.isin(left, top) | np.isin(right, top)
    won_by_top = np.flatnonzero((np.isin(left, top) & (outcome == 1)) | (np.isin(right, top) & (outcome == 0)))
    opponent = np.where(np.isin(left[won_by_top], top), right[won_by_top], left[won_by_top])
    flip = won_by_top[np.argsort(truth[opponent])[: int(rate * involving.sum())]]
    outcome[flip] = 1 - outcome[flip]
    return Comparisons.from_arrays(left, right, outcome, items=np.arange(n)), set(top.tolist())


def test_trimmed_likelihood_recovers_the_top_10_under_adversarial_flips():
    plain_hits, robust_hits = [], []
    for seed in range(4):
        data, top = _adversarial(seed)
        overlap = lambda s: len(set(np.argsort(-s)[:10].tolist()) & top)  # noqa: E731
        plain_hits.append(overlap(bradley.BradleyTerry(prior=10).fit(data).scores_))
        robust = bradley.RobustBradleyTerry(trim=0.1).fit(data)
        robust_hits.append(overlap(robust.scores_))
        assert robust.n_trimmed_ == pytest.approx(0.1 * data.n_comparisons)
    assert np.mean(robust_hits) >= np.mean(plain_hits) + 1.0, (plain_hits, robust_hits)


def test_trimming_keeps_the_order_on_clean_data():
    from scipy.stats import spearmanr

    data, truth, *_ = simulate(30, 20_000, 11)
    robust = bradley.RobustBradleyTerry(trim=0.05).fit(data)
    assert spearmanr(robust.scores_, truth).statistic > 0.99


def _judged(n_items, n_rows, reliabilities, seed):
    rng = np.random.default_rng(seed)
    truth = rng.normal(0, 1, n_items)
    truth -= truth.mean()
    left = rng.integers(0, n_items, n_rows)
    right = (left + rng.integers(1, n_items, n_rows)) % n_items
    judge = rng.integers(0, len(reliabilities), n_rows)
    judge[: len(reliabilities)] = np.arange(len(reliabilities))  # judge-0 appears first: the reference
    d = np.asarray(reliabilities)[judge] * (truth[left] - truth[right])
    outcome = (rng.random(n_rows) < expit(d)).astype(float)
    names = np.array([f"judge-{k}" for k in range(len(reliabilities))])
    data = Comparisons.from_arrays(left, right, outcome, items=np.arange(n_items), annotator=names[judge])
    return data, truth, left, right, judge, outcome


def test_judge_reliability_matches_brute_force():
    data, _, left, right, judge, outcome = _judged(4, 1200, [1.0, 0.5, 2.0], seed=12)
    model = PairwiseModel(judge_reliability=True).fit(data)

    def negll(x):
        s = np.append(0.0, x[:3])
        r = np.exp(np.append(0.0, x[3:]))[judge]
        d = r * (s[left] - s[right])
        return -(outcome * np.log(expit(d)) + (1 - outcome) * np.log(expit(-d))).sum()

    res = optimize.minimize(negll, np.zeros(5), method="BFGS", options={"gtol": 1e-9})
    s = np.append(0.0, res.x[:3])
    np.testing.assert_allclose(model.scores_, s - s.mean(), atol=1e-5)
    for k, name in ((3, "judge-1"), (4, "judge-2")):
        assert model.params_.loc[f"reliability[{name}]", "estimate"] == pytest.approx(np.exp(res.x[k]), rel=1e-5)
    assert model.converged_ and model.log_likelihood_ == pytest.approx(-res.fun, rel=1e-9)


def test_judge_reliability_recovery():
    data, truth, *_ = _judged(15, 30_000, [1.0, 0.4, 2.5], seed=13)
    model = PairwiseModel(judge_reliability=True).fit(data)
    for name, true in (("judge-1", 0.4), ("judge-2", 2.5)):
        row = model.params_.loc[f"reliability[{name}]"]
        assert row["ci_low"] < true < row["ci_high"], (name, row["estimate"], row["se"])
    assert np.corrcoef(model.scores_, truth)[0, 1] > 0.99


def test_covariates_and_flip_rate_match_brute_force():
    data, _, left, right, outcome, features = simulate(5, 1500, 14, beta=[0.4, -0.3])
    model = PairwiseModel(covariates=True, order_effect=True).fit(data)

    def negll_cov(x):
        s = np.append(0.0, x[:4])
        d = s[left] - s[right] + x[4] + features @ x[5:]
        return -(outcome * np.log(expit(d)) + (1 - outcome) * np.log(expit(-d))).sum()

    res = optimize.minimize(negll_cov, np.zeros(7), method="BFGS", options={"gtol": 1e-9})
    s = np.append(0.0, res.x[:4])
    np.testing.assert_allclose(model.scores_, s - s.mean(), atol=1e-5)
    np.testing.assert_allclose(model.params_.loc[["order_effect", "f0", "f1"], "estimate"], res.x[4:], atol=1e-5)
    # standard errors: inverse of a numerical Hessian of the brute-force likelihood (reference item fixed)
    h = 1e-4
    hess = np.array([[(negll_cov(res.x + h * (np.eye(7)[i] + np.eye(7)[j])) - negll_cov(res.x + h * (np.eye(7)[i] - np.eye(7)[j]))
                       - negll_cov(res.x - h * (np.eye(7)[i] - np.eye(7)[j])) + negll_cov(res.x - h * (np.eye(7)[i] + np.eye(7)[j]))) / (4 * h * h)
                      for j in range(7)] for i in range(7)])
    se_brute = np.sqrt(np.diag(np.linalg.inv(hess)))[4:]
    np.testing.assert_allclose(model.params_.loc[["order_effect", "f0", "f1"], "se"], se_brute, rtol=1e-3)

    noisy, _, l2, r2, o2, _ = simulate(5, 1500, 15, flip=0.15)
    flip_model = PairwiseModel(flip_rate=0.15).fit(noisy)

    def negll_flip(x):
        s = np.append(0.0, x)
        m = 0.85 * expit(s[l2] - s[r2]) + 0.15 * expit(s[r2] - s[l2])
        return -(o2 * np.log(m) + (1 - o2) * np.log(1 - m)).sum()

    res = optimize.minimize(negll_flip, np.zeros(4), method="BFGS", options={"gtol": 1e-9})
    s = np.append(0.0, res.x)
    np.testing.assert_allclose(flip_model.scores_, s - s.mean(), atol=1e-5)


# ---------------------------------------------------------------- issue 8: engine defects and new options
def _rk_many_ties(seed):
    """Rao-Kupper data with ~99% ties (alpha = 5): the old Newton took failed steps anyway and crashed."""
    rng = np.random.default_rng(seed)
    n, m = 8, 300
    truth = rng.normal(0, 2, n)
    left = rng.integers(0, n, m)
    right = (left + rng.integers(1, n, m)) % n
    d = truth[left] - truth[right]
    pw, pl = expit(d - 5.0), expit(-d - 5.0)
    u = rng.random(m)
    y = np.where(u < pw, 1.0, np.where(u < 1 - pl, 0.5, 0.0))
    return Comparisons.from_arrays(left, right, y, items=np.arange(n)), left, right, y


def test_safeguarded_newton_on_a_poor_start_matches_brute_force():
    # old code: LinAlgError (singular matrix) after accepting a step that failed the line search
    data, left, right, y = _rk_many_ties(1)
    model = RaoKupper(order_effect=True).fit(data)

    def negll(x):
        s = np.append(0.0, x[:7])
        d = s[left] - s[right] + x[7]
        a = np.exp(x[8])
        pw, pl = expit(d - a), expit(-d - a)
        return -np.log(np.where(y == 1, pw, np.where(y == 0, pl, 1 - pw - pl))).sum()

    res = optimize.minimize(negll, np.r_[np.zeros(8), np.log(5.0)], method="BFGS", options={"gtol": 1e-9})
    assert model.converged_
    assert model.log_likelihood_ == pytest.approx(-res.fun, abs=1e-7)
    assert model.params_.loc["eta", "estimate"] == pytest.approx(np.exp(np.exp(res.x[8])), rel=1e-4)
    s = np.append(0.0, res.x[:7])
    np.testing.assert_allclose(model.scores_, s - s.mean(), atol=1e-4)


def test_safeguard_never_accepts_a_step_that_lowers_the_objective(monkeypatch):
    import bradley.models.pairwise as pw

    values = []
    original = pw.PairwiseModel._maximise

    def spy(self, x, cells, prior_variance, total):
        out = original(self, x, cells, prior_variance, total)
        return out

    real_objective = pw.PairwiseModel._objective
    accepted = []

    def recording(self, x, cells, prior_variance):
        v, g = real_objective(self, x, cells, prior_variance)
        values.append(v)
        return v, g

    monkeypatch.setattr(pw.PairwiseModel, "_objective", recording)
    data, *_ = _rk_many_ties(1)
    RaoKupper(order_effect=True).fit(data)
    # the accepted sequence is the running maximum: the final value is the best seen
    assert values[-1] >= max(values[:-1]) - 1e-9 * abs(values[-1])
    del spy, accepted


def _football(seed, n_teams=10, n_games=6000, gamma=0.4, neutral=0.3):
    """Home team drawn at random as left or right; some venues neutral."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(0, 0.8, n_teams)
    truth -= truth.mean()
    home = rng.integers(0, n_teams, n_games)
    away = (home + rng.integers(1, n_teams, n_games)) % n_teams
    venue = np.where(rng.random(n_games) < neutral, 0.0, 1.0)
    swap = rng.random(n_games) < 0.5
    left, right = np.where(swap, away, home), np.where(swap, home, away)
    order = np.where(swap, -venue, venue)
    p = expit(truth[left] - truth[right] + gamma * order)
    y = (rng.random(n_games) < p).astype(float)
    return Comparisons.from_arrays(left, right, y, items=np.arange(n_teams), order=order), truth, left, right, order, y


def test_order_indicator_recovers_home_advantage_and_matches_brute_force():
    data, truth, left, right, order, y = _football(20)
    model = PairwiseModel(order_effect=True).fit(data)
    row = model.params_.loc["order_effect"]
    assert abs(row["estimate"] - 0.4) < 4 * row["se"] and row["se"] < 0.05
    assert np.corrcoef(model.scores_, truth)[0, 1] > 0.98

    small, _, l2, r2, o2, y2 = _football(21, n_teams=5, n_games=800)
    fit = PairwiseModel(order_effect=True).fit(small)

    def negll(x):
        s = np.append(0.0, x[:4])
        d = s[l2] - s[r2] + x[4] * o2
        return -(y2 * np.log(expit(d)) + (1 - y2) * np.log(expit(-d))).sum()

    res = optimize.minimize(negll, np.zeros(5), method="BFGS", options={"gtol": 1e-9})
    s = np.append(0.0, res.x[:4])
    np.testing.assert_allclose(fit.scores_, s - s.mean(), atol=1e-5)
    assert fit.params_.loc["order_effect", "estimate"] == pytest.approx(res.x[4], abs=1e-5)
    # ignoring the indicator (every row "left at home") biases gamma towards zero
    naive = PairwiseModel(order_effect=True).fit(Comparisons.from_arrays(left, right, y, items=np.arange(10)))
    assert abs(naive.params_.loc["order_effect", "estimate"]) < 0.1


def test_fixed_parameters_match_brute_force():
    data, _, left, right, outcome, _ = simulate(5, 1500, 1, family="davidson", tie=0.8, order=0.3)
    model = Davidson(order_effect=True, fixed={"nu": 0.5, "order_effect": 0.1}).fit(data)

    def negll(x):
        s = np.append(0.0, x)
        d = s[left] - s[right] + 0.1
        denom = np.exp(d / 2) + np.exp(-d / 2) + 0.5
        p = np.where(outcome == 1, np.exp(d / 2), np.where(outcome == 0, np.exp(-d / 2), 0.5)) / denom
        return -np.log(p).sum()

    res = optimize.minimize(negll, np.zeros(4), method="BFGS", options={"gtol": 1e-9})
    s = np.append(0.0, res.x)
    np.testing.assert_allclose(model.scores_, s - s.mean(), atol=1e-5)
    assert model.log_likelihood_ == pytest.approx(-res.fun, rel=1e-10)
    table = model.params_
    assert table.loc["nu", "estimate"] == 0.5 and table.loc["order_effect", "estimate"] == 0.1
    assert table["fixed"].all() and table["se"].isna().all()
    # one fixed, one free: the free one matches brute force with the other held
    half = Davidson(order_effect=True, fixed={"nu": 0.5}).fit(data)
    res2 = optimize.minimize(lambda z: negll_free_gamma(z, left, right, outcome), np.zeros(5), method="BFGS",
                             options={"gtol": 1e-9})
    assert half.params_.loc["order_effect", "estimate"] == pytest.approx(res2.x[4], abs=1e-5)
    assert not half.params_.loc["order_effect", "fixed"] and half.params_.loc["order_effect", "se"] > 0
    with pytest.raises(ValueError, match="cannot fix"):
        Davidson(fixed={"gamma": 1.0}).fit(data)


def negll_free_gamma(x, left, right, outcome):
    s = np.append(0.0, x[:4])
    d = s[left] - s[right] + x[4]
    denom = np.exp(d / 2) + np.exp(-d / 2) + 0.5
    p = np.where(outcome == 1, np.exp(d / 2), np.where(outcome == 0, np.exp(-d / 2), 0.5)) / denom
    return -np.log(p).sum()


def test_uncertainty_api_and_pair_counts_input():
    data, *_ = simulate(6, 3000, 30, family="davidson", tie=0.6)
    model = Davidson().fit(data)
    n = 6
    assert model.covariance_.shape == (n, n)
    assert model.parameter_covariance_.shape == (n + 1, n + 1)
    np.testing.assert_allclose(model.covariance_.sum(axis=1), 0.0, atol=1e-10)   # mean-zero constraint
    np.testing.assert_allclose(model.standard_errors().to_numpy(), model.scores_se_)
    ref = model.standard_errors(reference=0)
    assert ref.iloc[0] == 0.0
    # var(s_i - s_0) from the centred covariance
    c = model.covariance_
    np.testing.assert_allclose(ref.to_numpy() ** 2, np.diag(c) + c[0, 0] - 2 * c[:, 0], atol=1e-12)
    assert "se" in model.summary().columns and len(model.quasi_variances()) == n
    # pair counts give the same fit as the rows, for every family without row covariates
    pairs = data.pair_counts()
    for cls in (Davidson, RaoKupper, TOBT):
        a, b = cls().fit(data), cls().fit(pairs)
        np.testing.assert_allclose(a.scores_, b.scores_, atol=1e-8)
        np.testing.assert_allclose(a.scores_se_, b.scores_se_, rtol=1e-6)
    np.testing.assert_allclose(PairwiseModel().fit(pairs).scores_, PairwiseModel().fit(data).scores_, atol=1e-8)


def test_seasons_linked_only_by_home_advantage():
    a, ta, *_ = _football(40, n_teams=6, n_games=3000, neutral=0.0)
    b, tb, *_ = _football(41, n_teams=6, n_games=3000, neutral=0.0)
    left = np.r_[a.left, b.left + 6]
    right = np.r_[a.right, b.right + 6]
    outcome, order = np.r_[a.outcome, b.outcome], np.r_[a.order, b.order]
    data = Comparisons.from_arrays(left, right, outcome, items=np.arange(12), order=order)
    with pytest.raises(MLEDoesNotExistError, match="disconnected"):
        PairwiseModel().fit(data)  # nothing links the seasons: the plain model is still refused
    with pytest.warns(UserWarning, match="2 connected components"):
        joint = PairwiseModel(order_effect=True).fit(data)
    assert joint.n_components_ == 2 and joint.components_.nunique() == 2
    season_a = PairwiseModel(order_effect=True).fit(a)
    season_b = PairwiseModel(order_effect=True).fit(b)
    # each season is centred on its own; gamma pools both (precision-weighted, approximately)
    np.testing.assert_allclose(joint.scores_[:6].sum(), 0.0, atol=1e-10)
    np.testing.assert_allclose(joint.scores_[6:].sum(), 0.0, atol=1e-10)
    ga, gb = (m.params_.loc["order_effect"] for m in (season_a, season_b))
    pooled = (ga["estimate"] / ga["se"] ** 2 + gb["estimate"] / gb["se"] ** 2) / (1 / ga["se"] ** 2 + 1 / gb["se"] ** 2)
    assert joint.params_.loc["order_effect", "estimate"] == pytest.approx(pooled, abs=0.01)
    assert joint.params_.loc["order_effect", "se"] < min(ga["se"], gb["se"])
    summary = joint.summary()
    assert "component" in summary.columns and "within" in summary.attrs["identifiability"]


def test_tie_model_existence_names_the_items_and_non_identified_order_effect():
    # 'a' never lost, with ties elsewhere: Davidson's MLE does not exist
    data = Comparisons.from_arrays(["a", "a", "b", "c", "b", "c"], ["b", "c", "c", "b", "c", "b"],
                                   [1, 1, 0.5, 1, 0, 0.5])
    with pytest.raises(MLEDoesNotExistError, match="'a'") as info:
        Davidson().fit(data)
    assert info.value.never_lost == ["a"]
    neutral = Comparisons.from_arrays(["a", "b", "c", "a"], ["b", "c", "a", "c"], [1, 1, 1, 0], order=[0, 0, 0, 0])
    with pytest.raises(bradley.ComparisonDataError, match="order_effect"):
        PairwiseModel(order_effect=True).fit(neutral)


def test_convergence_criterion_is_scale_free_huge_weights():
    """Regression: the old rule (max|grad| / total weight) stopped at a=14.64 with n_iter_=0 and converged_ True.

    Weights e^15 : 1 on a>b and b>c, e^30 : 1 on a>c: every pair's log-odds are matched exactly by
    a=15, b=0, c=-15, so that is the MLE (log-likelihood computed here in closed form).
    """
    e15, e30 = np.exp(15.0), np.exp(30.0)
    data = Comparisons.from_arrays(["a", "b", "b", "c", "a", "c"], ["b", "a", "c", "b", "c", "a"], [1.0] * 6,
                                   weight=[e15, 1.0, e15, 1.0, e30, 1.0])
    model = PairwiseModel().fit(data)
    np.testing.assert_allclose(model.scores_, [15.0, 0.0, -15.0], atol=1e-7)
    exact = 2 * (e15 * log_expit(15.0) + log_expit(-15.0)) + e30 * log_expit(30.0) + log_expit(-30.0)
    assert model.log_likelihood_ == pytest.approx(exact, abs=1e-6)
    assert model.converged_ and model.convergence_criterion_ <= model.tol and model.n_iter_ > 0


@pytest.mark.parametrize("big", [1e6, 1e8])
def test_convergence_criterion_is_scale_free_count_chain(big):
    """Regression: a 20-item chain with counts big : 1 on every link; the exact MLE has gaps log(big).

    The old rule reported converged_ at gaps off by 0.09 (1e6) and 2.3 (1e8).
    """
    from bradley.io import read_pair_counts

    items = [f"m{k}" for k in range(20)]
    counts = read_pair_counts(pd.DataFrame({"item1": items[1:], "item2": items[:-1], "win1": big, "win2": 1.0}))
    model = PairwiseModel().fit(counts)
    scores = pd.Series(model.scores_, index=list(model.items_))[items].to_numpy()
    np.testing.assert_allclose(np.diff(scores), np.log(big), atol=1e-7)
    assert model.converged_ and model.convergence_criterion_ <= 1e-9


def test_components_contrasts_across_are_not_identified():
    """Regression: two leagues linked only by the home advantage gave a finite SE for a cross-league contrast.

    Within a component, SEs relative to a reference equal sqrt(var_i + var_r - 2 cov_ir) of the centred
    covariance; across components they are NaN, quasi-variances are fitted per component (equal to a fit on
    that component's block alone) and summary ranks within each component.
    """
    from bradley.solvers.quasi_variance import quasi_variances

    a, *_ = _football(40, n_teams=6, n_games=600, neutral=0.0)
    b, *_ = _football(41, n_teams=5, n_games=500, neutral=0.0)
    names = np.array([f"a{k}" for k in range(6)] + [f"b{k}" for k in range(5)])
    data = Comparisons.from_arrays(names[np.r_[a.left, b.left + 6]], names[np.r_[a.right, b.right + 6]],
                                   np.r_[a.outcome, b.outcome], items=names, order=np.r_[a.order, b.order])
    with pytest.warns(UserWarning, match="2 connected components"):
        model = PairwiseModel(order_effect=True).fit(data)
    c = model.covariance_
    with pytest.warns(UserWarning, match="not identified"):
        se = model.standard_errors(reference="a0")
    assert se[[f"b{k}" for k in range(5)]].isna().all()
    np.testing.assert_allclose(se.iloc[:6] ** 2, np.diag(c)[:6] + c[0, 0] - 2 * c[:6, 0], atol=1e-12)
    with pytest.warns(UserWarning, match="not identified"):
        cov = model.score_covariance("b2")
    assert np.isnan(cov[:6]).all() and np.isnan(cov[:, :6]).all() and np.isfinite(cov[6:, 6:]).all()
    assert np.isfinite(model.standard_errors()).all()          # centred within each component: identified

    qv = model.quasi_variances()
    np.testing.assert_allclose(qv["quasi_var"].iloc[6:], quasi_variances(c[6:, 6:]), rtol=1e-8)
    assert qv["component"].tolist() == [0] * 6 + [1] * 5

    table = model.summary()
    for comp, items in ((0, range(6)), (1, range(6, 11))):
        part = table[table["component"] == comp]
        expected = pd.Series(-model.scores_[list(items)]).rank(method="min").astype(int).to_numpy()
        by_item = part.set_index("item").loc[np.asarray(model.items_)[list(items)], "rank"].to_numpy()
        np.testing.assert_array_equal(by_item, expected)
    assert (table["rank"] == 1).sum() == 2 and "within the component" in table.attrs["identifiability"]


def test_fixed_unknown_parameter_messages_say_how_to_get_it():
    data, _ = bradley.simulate_bt(4, 200, seed=0)
    cases = [
        (PairwiseModel(fixed={"nu": 0.5}), r"family='davidson'"),
        (PairwiseModel(fixed={"eta": 1.5}), r"family='rao-kupper'"),
        (Davidson(fixed={"alpha": 0.5}), r"family='tobt'.*whose tie parameter is 'nu'"),
        (PairwiseModel(fixed={"order_effect": 0.1}), r"order_effect=True"),
        (PairwiseModel(fixed={"order_effect[x]": 0.1}), r"order_effect='annotator'"),
        (PairwiseModel(fixed={"reliability[x]": 1.0}), r"judge_reliability=True"),
        (PairwiseModel(fixed={"nonsense": 1.0}), r"no parameter of that name; this model has no parameters"),
    ]
    for model, pattern in cases:
        with pytest.raises(ValueError, match=pattern):
            model.fit(data)


def test_order_effect_on_winner_first_data_is_refused_in_python_too():
    # every row lists the winner first: the position is the outcome
    data = bradley.Comparisons.from_arrays(list("abcab"), list("bcaca"), [1.0] * 5)
    with pytest.raises(bradley.ComparisonDataError, match="was won by the item listed first"):
        bradley.PairwiseModel(order_effect=True).fit(data)
    # with the order effect fixed there is nothing to estimate for it: the fit goes ahead (with a prior)
    model = bradley.PairwiseModel(order_effect=True, fixed={"order_effect": 0.3}, prior=1.0).fit(data)
    assert model.params_.loc["order_effect", "estimate"] == 0.3
