"""One uncertainty API on every model: covariance_, standard_errors(reference), se in summary(), quasi-variances.

The truth is always computed here, independently of the package: the
likelihood of each model is written out in the test, maximised with scipy,
and its Hessian is taken by central finite differences; standard errors under
the reference-item parametrisation (one score fixed at 0, as R's ``refcat``)
are the square roots of the diagonal of its inverse.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import optimize
from scipy.special import log_expit, logsumexp

import bradley
from bradley import BradleyTerry, Comparisons, ComparisonDataError, inference
from bradley.models import bradley_terry as bt_module
from bradley.models.base import ScoreUncertainty


def numerical_hessian(f, x, h=1e-4):
    """Central second differences of a scalar function."""
    x = np.asarray(x, dtype=float)
    k = len(x)
    hess = np.empty((k, k))
    eye = np.eye(k) * h
    for a in range(k):
        for b in range(a, k):
            value = (f(x + eye[a] + eye[b]) - f(x + eye[a] - eye[b]) - f(x - eye[a] + eye[b]) + f(x - eye[a] - eye[b]))
            hess[a, b] = hess[b, a] = value / (4 * h * h)
    return hess


def bt_negloglik(left, right, outcome, weight):
    def f(theta):
        d = theta[left] - theta[right]
        return -np.sum(weight * (outcome * log_expit(d) + (1 - outcome) * log_expit(-d)))

    return f


def reference_ses(negloglik_full, theta_hat, ref):
    """SEs of theta_i - theta_ref: inverse Hessian of the likelihood with theta_ref fixed at 0."""
    base = theta_hat - theta_hat[ref]

    def f(free):
        return negloglik_full(np.insert(free, ref, 0.0))

    cov = np.linalg.inv(numerical_hessian(f, np.delete(base, ref)))
    return np.insert(np.sqrt(np.diag(cov)), ref, 0.0)


def random_rows(seed, n_items=6, n_rows=250):
    rng = np.random.default_rng(seed)
    truth = rng.normal(0, 1.0, n_items)
    left = rng.integers(0, n_items, n_rows)
    right = (left + rng.integers(1, n_items, n_rows)) % n_items
    u = rng.random(n_rows)
    p = 1 / (1 + np.exp(-(truth[left] - truth[right])))
    outcome = np.where(u < 0.1, 0.5, (rng.random(n_rows) < p).astype(float))
    weight = rng.uniform(0.5, 2.0, n_rows)
    names = [f"m{k}" for k in range(n_items)]
    return left, right, outcome, weight, names


def test_bt_standard_errors_match_numerical_hessian_for_every_reference():
    left, right, outcome, weight, names = random_rows(1)
    data = Comparisons.from_arrays(np.array(names)[left], np.array(names)[right], outcome, weight)
    model = BradleyTerry().fit(data)
    f = bt_negloglik(data.left, data.right, data.outcome, data.weight)
    # the truth's own optimum, by scipy (item 0 fixed)
    res = optimize.minimize(lambda free: f(np.insert(free, 0, 0.0)), np.zeros(5), method="BFGS",
                            options={"gtol": 1e-10})
    theta_hat = np.insert(res.x, 0, 0.0)
    np.testing.assert_allclose(model.scores_ - model.scores_[0], theta_hat, atol=1e-6)
    for ref in (0, 3):
        expected = reference_ses(f, theta_hat, ref)
        got = model.standard_errors(reference=names[ref])
        assert list(got.index) == list(model.items_)
        np.testing.assert_allclose(got.to_numpy(), expected, rtol=1e-4, atol=1e-9)
    # mean-zero: the covariance of the centred scores, P C P
    cov = model.covariance_
    np.testing.assert_allclose(cov.sum(axis=0), 0.0, atol=1e-12)
    ref_cov = np.linalg.inv(numerical_hessian(lambda free: f(np.insert(free, 0, 0.0)), theta_hat[1:]))
    full = np.zeros((6, 6))
    full[1:, 1:] = ref_cov
    centring = np.eye(6) - 1 / 6
    np.testing.assert_allclose(cov, centring @ full @ centring.T, rtol=1e-4, atol=1e-8)
    np.testing.assert_allclose(model.standard_errors().to_numpy(), np.sqrt(np.diag(cov)))


def test_summary_has_se_column_matching_standard_errors_and_anchor():
    left, right, outcome, weight, names = random_rows(2)
    data = Comparisons.from_arrays(np.array(names)[left], np.array(names)[right], outcome, weight)
    plain = BradleyTerry().fit(data)
    table = plain.summary().set_index("item")
    np.testing.assert_allclose(table.loc[list(plain.items_), "se"], plain.standard_errors().to_numpy())
    assert table.attrs["se"] == "mean-zero constraint"
    anchored = BradleyTerry(anchor=("m2", 1.5)).fit(data)
    # still the centred covariance; the anchored SEs come from reference=anchor item
    np.testing.assert_allclose(anchored.covariance_, plain.covariance_, atol=1e-12)
    t = anchored.summary().set_index("item")
    assert t.loc["m2", "se"] == 0.0 and t.loc["m2", "score"] == 1.5
    np.testing.assert_allclose(t.loc[list(plain.items_), "se"], plain.standard_errors("m2").to_numpy())
    assert "relative to m2" in anchored.summary().attrs["se"]


def test_prior_covariance_is_of_the_centred_map_scores():
    left, right, outcome, weight, names = random_rows(3, n_rows=40)
    data = Comparisons.from_arrays(left, right, outcome, weight)
    model = BradleyTerry(prior=2.0).fit(data)
    f = bt_negloglik(data.left, data.right, data.outcome, data.weight)

    def posterior(theta):
        return f(theta) + 0.5 * theta @ theta / 2.0

    theta_hat = optimize.minimize(posterior, np.zeros(6), method="BFGS", options={"gtol": 1e-10}).x
    full = np.linalg.inv(numerical_hessian(posterior, theta_hat))
    centring = np.eye(6) - 1 / 6
    np.testing.assert_allclose(model.covariance_, centring @ full @ centring, rtol=1e-4, atol=1e-8)
    # contrasts: identical to those of the uncentred posterior covariance
    ref = model.score_covariance(reference=0)
    np.testing.assert_allclose(ref[3, 3], full[3, 3] + full[0, 0] - 2 * full[0, 3], rtol=1e-4)


def test_robust_bt_covariance_is_fisher_on_the_kept_rows():
    data, _ = bradley.simulate_bt(5, 300, seed=4)
    model = bradley.RobustBradleyTerry(trim=0.1, prior=10.0).fit(data)
    kept = model.kept_weight_
    use = kept > 0
    f = bt_negloglik(data.left[use], data.right[use], data.outcome[use], kept[use])

    def posterior(theta):
        return f(theta) + 0.5 * theta @ theta / 10.0

    theta_hat = optimize.minimize(posterior, np.zeros(5), method="BFGS", options={"gtol": 1e-10}).x
    np.testing.assert_allclose(model.scores_, theta_hat - theta_hat.mean(), atol=1e-5)
    full = np.linalg.inv(numerical_hessian(posterior, theta_hat))
    centring = np.eye(5) - 1 / 5
    np.testing.assert_allclose(model.covariance_, centring @ full @ centring, rtol=1e-4, atol=1e-8)
    assert "se" in model.summary().columns


def test_bias_reduced_fit_reports_fisher_at_its_estimate():
    # item 0 never lost: no MLE, but a finite Firth estimate with finite SEs
    left = np.array([0, 0, 0, 1, 2, 1, 3, 2, 3])
    right = np.array([1, 2, 3, 2, 1, 3, 1, 3, 2])
    outcome = np.ones(9)
    data = Comparisons.from_arrays(left, right, outcome)
    model = BradleyTerry(bias_reduction=True).fit(data)
    f = bt_negloglik(data.left, data.right, data.outcome, np.ones(9))
    expected = reference_ses(f, model.scores_, 2)
    np.testing.assert_allclose(model.standard_errors(2).to_numpy(), expected, rtol=1e-4, atol=1e-9)
    assert np.all(np.isfinite(model.summary()["se"]))


def test_fisher_and_sandwich_covariance_take_item_names():
    data, _ = bradley.simulate_bt(5, 600, seed=5, item_names=True)
    model = BradleyTerry().fit(data)
    by_name = inference.fisher_covariance(model, reference="item3")
    by_code = inference.fisher_covariance(model, reference=3)
    np.testing.assert_allclose(by_name, by_code)
    assert by_name[3, 3] == 0.0 and by_name[0, 0] > 0
    with pytest.raises(ComparisonDataError, match="unknown item"):
        inference.fisher_covariance(model, reference="nobody")
    sandwich = inference.sandwich_covariance(model, data, reference="item3")
    assert sandwich[3, 3] == pytest.approx(0.0, abs=1e-15)
    with pytest.raises(ComparisonDataError, match="unknown item"):
        inference.sandwich_covariance(model, data, reference="nobody")


def test_quasi_variances_exact_where_contrast_variances_are_additive():
    # covariance diag(q) + u 1^T + 1 u^T: var(s_i - s_j) = q_i + q_j exactly
    q = np.array([0.05, 0.2, 0.11, 0.4, 0.07])
    u = np.array([0.3, -0.1, 0.2, 0.0, -0.05])
    cov = np.diag(q) + u[:, None] + u[None, :]
    np.testing.assert_allclose(inference.quasi_variances(cov), q, rtol=1e-7)
    # three items: three contrast variances, three quasi-variances, always exact
    model = BradleyTerry().fit(bradley.PairCounts.from_matrix([[0, 6, 3], [4, 0, 5], [2, 5, 0]], items=["x", "y", "z"]))
    table = model.quasi_variances()
    assert list(table.columns) == ["score", "quasi_var", "quasi_se"]
    cov = model.covariance_
    for a, b in [("x", "y"), ("x", "z"), ("y", "z")]:
        i, j = model._index.codes([a, b])
        exact = cov[i, i] + cov[j, j] - 2 * cov[i, j]
        assert table.loc[a, "quasi_var"] + table.loc[b, "quasi_var"] == pytest.approx(exact, rel=1e-7)


def test_covariance_is_lazy_and_summary_skips_se_when_large(monkeypatch):
    data, _ = bradley.simulate_bt(30, 3000, seed=6)
    model = BradleyTerry().fit(data)
    assert model._covariance is None  # fit builds no n x n matrix
    monkeypatch.setattr(bt_module, "SUMMARY_SE_MAX_ITEMS", 10)
    table = model.summary()
    assert "se" not in table.columns and "standard_errors()" in table.attrs["se"]
    assert model._covariance is None
    se = model.standard_errors()  # asked for: computed and kept
    assert model._covariance is not None
    assert "se" in model.summary().columns  # now cheap
    np.testing.assert_allclose(model.summary().set_index("item").loc[list(model.items_), "se"], se.to_numpy())
    monkeypatch.setattr(bt_module, "COVARIANCE_MAX_ITEMS", 10)
    with pytest.raises(ValueError, match="dense 30 x 30"):
        BradleyTerry().fit(data).covariance_
    with pytest.raises(bradley.NotFittedError):
        BradleyTerry().covariance_


def _tied_data(seed=7):
    rng = np.random.default_rng(seed)
    names = np.array([f"item{k}" for k in range(5)])
    truth = np.array([0.9, 0.3, 0.0, -0.4, -0.8])
    left = rng.integers(0, 5, 800)
    right = (left + rng.integers(1, 5, 800)) % 5
    p = 1 / (1 + np.exp(-(truth[left] - truth[right])))
    outcome = np.where(rng.random(800) < 0.2, 0.5, (rng.random(800) < p).astype(float))
    return Comparisons.from_arrays(names[left], names[right], outcome)


def _fit(name):
    data = _tied_data()
    if name == "BradleyTerry":
        return BradleyTerry().fit(data)
    if name == "BradleyTerry(prior)":
        return BradleyTerry(prior=3.0).fit(data)
    if name == "BradleyTerry(bias_reduction)":
        return BradleyTerry(bias_reduction=True).fit(data)
    if name == "RobustBradleyTerry":
        return bradley.RobustBradleyTerry(trim=0.05).fit(data)
    if name == "PlackettLuce":
        orders = [["item0", "item1", "item2", "item3", "item4"], ["item1", "item0", "item3", "item2", "item4"],
                  ["item4", "item2", "item1", "item0", "item3"], ["item0", "item2", "item4", "item1", "item3"]]
        return bradley.PlackettLuce().fit(bradley.Rankings.from_orderings(orders * 3))
    return getattr(bradley, name)().fit(data)


MODEL_TYPES = ["BradleyTerry", "BradleyTerry(prior)", "BradleyTerry(bias_reduction)", "RobustBradleyTerry",
               "Davidson", "RaoKupper", "PairwiseModel", "PlackettLuce"]


@pytest.mark.parametrize("name", MODEL_TYPES)
def test_every_model_with_the_api_is_consistent(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = _fit(name)
    assert isinstance(model, ScoreUncertainty)
    n = len(model.items_)
    cov = np.asarray(model.covariance_)
    assert cov.shape == (n, n)
    np.testing.assert_allclose(cov, cov.T, atol=1e-12)
    np.testing.assert_allclose(cov.sum(axis=0), 0.0, atol=1e-8)  # mean-zero constraint
    ref = model.items_[1]
    se = model.standard_errors(reference=ref)
    assert se[ref] == pytest.approx(0.0, abs=1e-8)
    contrast = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    assert se.iloc[0] == pytest.approx(np.sqrt(contrast), rel=1e-10)
    assert "se" in model.summary().columns
    qv = model.quasi_variances()
    assert np.all(qv["quasi_var"] > 0)
    # relative to ref: s_i - s_ref, computed here from the centred covariance
    k = int(np.flatnonzero(model.items_ == ref)[0])
    relative = cov - cov[:, [k]] - cov[[k], :] + cov[k, k]
    np.testing.assert_allclose(inference.fisher_covariance(model, reference=ref), relative, atol=1e-10)


def test_davidson_standard_errors_match_numerical_hessian():
    cls = getattr(bradley, "Davidson", None)
    rng = np.random.default_rng(8)
    n_items, n_rows = 4, 400
    left = rng.integers(0, n_items, n_rows)
    right = (left + rng.integers(1, n_items, n_rows)) % n_items
    outcome = rng.choice([1.0, 0.5, 0.0], n_rows, p=[0.45, 0.2, 0.35])
    data = Comparisons.from_arrays(left, right, outcome)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = cls().fit(data)
    assert isinstance(model, ScoreUncertainty)

    def f(params):  # scores (item 0 fixed at 0) then log nu
        theta, log_nu = np.insert(params[:-1], 0, 0.0), params[-1]
        d = theta[left] - theta[right]
        terms = np.stack([d / 2, -d / 2, np.full_like(d, log_nu)])
        log_norm = logsumexp(terms, axis=0)
        chosen = np.where(outcome == 1.0, d / 2, np.where(outcome == 0.0, -d / 2, log_nu))
        return -np.sum(chosen - log_norm)

    res = optimize.minimize(f, np.zeros(n_items), method="BFGS", options={"gtol": 1e-10})
    cov = np.linalg.inv(numerical_hessian(f, res.x))
    expected = np.insert(np.sqrt(np.diag(cov)[:-1]), 0, 0.0)
    np.testing.assert_allclose(model.standard_errors(reference=0).to_numpy(), expected, rtol=1e-4, atol=1e-9)


def test_plackett_luce_standard_errors_match_numerical_hessian():
    assert issubclass(bradley.PlackettLuce, ScoreUncertainty)
    rng = np.random.default_rng(9)
    items = np.array(["a", "b", "c", "d"])
    truth = np.array([0.8, 0.2, -0.3, -0.7])
    orders = []
    for _ in range(60):
        g = truth + rng.gumbel(size=4)
        orders.append(items[np.argsort(-g)].tolist())
    model = bradley.PlackettLuce().fit(bradley.Rankings.from_orderings(orders))
    codes = np.array([model._index.codes(o) for o in orders])  # rankings x positions

    def f(free):
        theta = np.insert(free, 0, 0.0)[codes]
        return -sum(np.sum(theta[:, k] - logsumexp(theta[:, k:], axis=1)) for k in range(3))

    res = optimize.minimize(f, np.zeros(3), method="BFGS", options={"gtol": 1e-10})
    np.testing.assert_allclose(model.scores_ - model.scores_[0], np.insert(res.x, 0, 0.0), atol=1e-5)
    cov = np.linalg.inv(numerical_hessian(f, res.x))
    expected = np.insert(np.sqrt(np.diag(cov)), 0, 0.0)
    np.testing.assert_allclose(model.standard_errors(reference=model.items_[0]).to_numpy(), expected, rtol=1e-4)


def test_leaderboard_takes_fisher_ses_from_the_model():
    data, _ = bradley.simulate_bt(8, 2000, seed=10, item_names=True)
    board = bradley.leaderboard(data, ci="fisher")
    se = board.model.standard_errors()
    t = board.table.set_index("item")
    np.testing.assert_allclose(t.loc[se.index, "se"], se.to_numpy())
    z = 1.959963984540054
    np.testing.assert_allclose(t["ci_high"] - t["score"], z * t["se"], rtol=1e-12)
    assert isinstance(board.table, pd.DataFrame)


def test_bootstrap_of_the_robust_model_refits_the_trimming():
    # Regression: bootstrap replicates of RobustBradleyTerry were refitted as
    # plain BT on all rows, so they were centred on the untrimmed fit.
    data, truth = bradley.simulate_bt(6, 3000, seed=12)
    outcome = data.outcome.copy()
    top = int(np.argmax(truth))
    flip = np.flatnonzero((data.left == top) & (outcome == 1.0))[:150]  # an attacker flips the top item's wins
    outcome[flip] = 0.0
    attacked = Comparisons(data.left, data.right, outcome, data.items)
    robust = bradley.RobustBradleyTerry(trim=0.05).fit(attacked)
    plain = BradleyTerry(prior=10.0).fit(attacked)
    boot = inference.bootstrap_scores(robust, attacked, rounds=8, seed=1)
    centre = boot.scores.mean(axis=0)
    assert abs(centre[top] - robust.scores_[top]) < abs(centre[top] - plain.scores_[top])
