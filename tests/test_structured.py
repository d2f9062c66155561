"""Structured BT (item features, item effects, contest covariates and an order effect together) and random item effects."""

import numpy as np
import pandas as pd
import pytest
from scipy import optimize
from scipy.special import expit, log_expit

from bradley import Comparisons, PairwiseModel


def simulate(n_items, n_rows, seed, w=(0.8, -0.5), gamma=0.3, beta=0.4, sigma=0.0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n_items, len(w)))
    u = sigma * rng.normal(size=n_items)
    strength = z @ np.asarray(w) + u
    left = rng.integers(0, n_items, n_rows)
    right = (left + rng.integers(1, n_items, n_rows)) % n_items
    order = rng.choice([1.0, 0.0, -1.0], size=n_rows)
    x = rng.normal(size=n_rows)
    d = strength[left] - strength[right] + gamma * order + beta * x
    y = (rng.random(n_rows) < expit(d)).astype(float)
    names = np.array([f"i{k}" for k in range(n_items)], dtype=object)
    feats = pd.DataFrame(z, index=names, columns=[f"z{k}" for k in range(len(w))])
    data = Comparisons.from_arrays(names[left], names[right], y, features=x[:, None], feature_names=["x"], order=order)
    return data, feats, dict(z=z, u=u, left=left, right=right, order=order, x=x, y=y, names=names)


def test_structured_model_recovers_features_order_and_covariate():
    data, feats, _ = simulate(30, 20_000, 0)
    model = PairwiseModel(item_features=feats, order_effect=True, covariates=True).fit(data)
    table = model.params_
    assert list(table.index) == ["z0", "z1", "order_effect", "x"]
    for name, true in (("z0", 0.8), ("z1", -0.5), ("order_effect", 0.3), ("x", 0.4)):
        assert abs(table.loc[name, "estimate"] - true) < 4 * table.loc[name, "se"], name
        assert table.loc[name, "ci_low"] < true < table.loc[name, "ci_high"] or abs(table.loc[name, "estimate"] - true) < 4 * table.loc[name, "se"]
    assert table.loc["z0", "p_value"] < 1e-10
    assert model.converged_


def test_structured_model_matches_brute_force():
    data, feats, s = simulate(6, 600, 1)
    model = PairwiseModel(item_features=feats, order_effect=True, covariates=True).fit(data)
    codes = pd.Index(s["names"]).get_indexer(data.items)
    z = s["z"][codes]

    def negll(p):
        strength = z @ p[:2]
        d = strength[data.left] - strength[data.right] + p[2] * data.order + p[3] * data.features[:, 0]
        return -(data.outcome @ log_expit(d) + (1 - data.outcome) @ log_expit(-d))

    res = optimize.minimize(negll, np.zeros(4), method="BFGS", options={"gtol": 1e-10})
    np.testing.assert_allclose(model.params_["estimate"].to_numpy(), res.x, atol=1e-6)
    assert model.log_likelihood_ == pytest.approx(-res.fun, rel=1e-10)
    h = 1e-4
    eye = np.eye(4)
    hess = np.array([[(negll(res.x + h * (eye[i] + eye[j])) - negll(res.x + h * (eye[i] - eye[j]))
                       - negll(res.x - h * (eye[i] - eye[j])) + negll(res.x - h * (eye[i] + eye[j]))) / (4 * h * h)
                      for j in range(4)] for i in range(4)])
    np.testing.assert_allclose(model.params_["se"].to_numpy(), np.sqrt(np.diag(np.linalg.inv(hess))), rtol=1e-3)


def _laplace_by_hand(left, right, y, z, w, sigma):
    """The Laplace formula written out: mode of u for these (w, sigma) by scipy, then the log-determinant."""
    n = z.shape[0]
    sign = np.where(y == 1, 1.0, -1.0)

    def neg_penalised(u):
        strength = z @ w + u
        d = strength[left] - strength[right]
        r = np.where(y == 1, expit(-d), -expit(d))
        g = np.bincount(left, r, n) - np.bincount(right, r, n)
        return -(log_expit(sign * d).sum() - 0.5 * u @ u / sigma ** 2), -(g - u / sigma ** 2)

    res = optimize.minimize(neg_penalised, np.zeros(n), jac=True, method="BFGS", options={"gtol": 1e-11})
    strength = z @ w + res.x
    d = strength[left] - strength[right]
    c = expit(d) * expit(-d)
    h_uu = np.zeros((n, n))
    np.add.at(h_uu, (left, left), c)
    np.add.at(h_uu, (right, right), c)
    np.add.at(h_uu, (left, right), -c)
    np.add.at(h_uu, (right, left), -c)
    _, logdet = np.linalg.slogdet(h_uu + np.eye(n) / sigma ** 2)
    return -res.fun - n * np.log(sigma) - 0.5 * logdet


def test_random_item_effects_maximise_the_laplace_approximation():
    """Regression (reviewer's case): w came from the joint mode (0.944, sigma 0.685, -145.058); the Laplace maximum
    over (w, log sigma), found here by Nelder-Mead on the hand-written formula, is w 0.990, sigma 0.686, -145.028."""
    rng = np.random.default_rng(3)
    n = 15
    items = np.array([f"i{k}" for k in range(n)], dtype=object)
    feats = pd.DataFrame({"x": rng.normal(0, 1, n)}, index=items)
    s = feats["x"].to_numpy() + rng.normal(0, 0.8, n)
    left, right, y = [], [], []
    for _ in range(300):
        a, b = rng.choice(n, 2, replace=False)
        left.append(a)
        right.append(b)
        y.append(float(rng.random() < expit(s[a] - s[b])))
    left, right, y = np.array(left), np.array(right), np.array(y)
    data = Comparisons.from_arrays(items[left], items[right], y, items=items)
    model = PairwiseModel(item_features=feats, item_effects="random").fit(data)
    w, sigma = model.params_.loc["x", "estimate"], model.params_.loc["sigma", "estimate"]
    z = feats.to_numpy()
    assert model.converged_ and model.convergence_criterion_ <= 1e-6
    assert model.log_likelihood_ == pytest.approx(_laplace_by_hand(left, right, y, z, np.array([w]), sigma), abs=1e-7)
    best = optimize.minimize(lambda t: -_laplace_by_hand(left, right, y, z, t[:1], np.exp(t[1])), [0.5, np.log(0.5)],
                             method="Nelder-Mead", options={"xatol": 1e-7, "fatol": 1e-11, "maxiter": 2000})
    assert w == pytest.approx(best.x[0], abs=1e-4) and sigma == pytest.approx(np.exp(best.x[1]), abs=1e-4)
    assert model.log_likelihood_ == pytest.approx(-best.fun, abs=1e-8)
    assert (round(w, 3), round(sigma, 3), round(model.log_likelihood_, 3)) == (0.990, 0.686, -145.028)
    # standard errors: the inverse curvature of the Laplace objective in (w, log sigma), by finite differences here
    h, t0 = 1e-3, np.array([w, np.log(sigma)])
    f = lambda t: _laplace_by_hand(left, right, y, z, t[:1], np.exp(t[1]))  # noqa: E731
    hess = np.empty((2, 2))
    for i in range(2):
        for j in range(2):
            ei, ej = np.eye(2)[i] * h, np.eye(2)[j] * h
            hess[i, j] = (f(t0 + ei + ej) - f(t0 + ei - ej) - f(t0 - ei + ej) + f(t0 - ei - ej)) / (4 * h * h)
    cov = np.linalg.inv(-hess)
    assert model.params_.loc["x", "se"] == pytest.approx(np.sqrt(cov[0, 0]), rel=1e-3)
    assert model.params_.loc["sigma", "se"] == pytest.approx(sigma * np.sqrt(cov[1, 1]), rel=1e-3)


def test_random_item_effects_laplace_objective_by_hand_and_by_integration():
    data, feats, s = simulate(5, 300, 2, w=(0.7,), gamma=0.0, beta=0.0, sigma=0.8)
    plain = Comparisons(data.left, data.right, data.outcome, data.items)
    model = PairwiseModel(item_features=feats, item_effects="random").fit(plain)
    sigma = model.params_.loc["sigma", "estimate"]
    z = feats.loc[list(plain.items)].to_numpy()
    by_hand = _laplace_by_hand(plain.left, plain.right, plain.outcome, z, model.params_.loc[["z0"], "estimate"].to_numpy(),
                               sigma)
    assert model.log_likelihood_ == pytest.approx(by_hand, abs=1e-6)
    # the estimate maximises the Laplace objective: fixing sigma nearby gives less
    for other in (0.8 * sigma, 1.25 * sigma):
        assert PairwiseModel(item_features=feats, item_effects="random", fixed={"sigma": other}).fit(plain).log_likelihood_ < model.log_likelihood_

    # three items, effects only, a fixed sigma: Laplace against Gauss-Hermite integration (error O(1/n) ~ 1e-2 here)
    rng = np.random.default_rng(7)
    u_true = np.array([0.6, 0.0, -0.6])
    left = rng.integers(0, 3, 60)
    right = (left + rng.integers(1, 3, 60)) % 3
    y = (rng.random(60) < expit(u_true[left] - u_true[right])).astype(float)
    tiny = Comparisons.from_arrays(left, right, y, items=np.arange(3))
    sig = 0.9
    fit = PairwiseModel(item_effects="random", fixed={"sigma": sig}).fit(tiny)
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)   # weight exp(-x^2 / 2)
    grid = np.stack(np.meshgrid(nodes, nodes, nodes, indexing="ij"), -1).reshape(-1, 3) * sig
    logw = np.log(np.einsum("i,j,k->ijk", weights, weights, weights).ravel()) - 1.5 * np.log(2 * np.pi)
    d = grid[:, left] - grid[:, right]
    loglik = (y * log_expit(d) + (1 - y) * log_expit(-d)).sum(axis=1)
    exact = np.logaddexp.reduce(loglik + logw)
    assert fit.log_likelihood_ == pytest.approx(exact, abs=0.02)
    assert fit.params_.loc["sigma", "fixed"]


def test_random_effect_sigma_recovery():
    """Simulation recovery: 80 items, sigma 0.7, features explain the rest. Tolerance: |error| < 0.2, CI covers."""
    estimates = []
    for seed in range(3):
        data, feats, _ = simulate(80, 12_000, 10 + seed, w=(0.8, -0.5), gamma=0.3, beta=0.0, sigma=0.7)
        plain = Comparisons(data.left, data.right, data.outcome, data.items, order=data.order)
        model = PairwiseModel(item_features=feats, item_effects="random", order_effect=True).fit(plain)
        row = model.params_.loc["sigma"]
        assert row["ci_low"] < 0.7 < row["ci_high"], row
        estimates.append(row["estimate"])
        assert abs(model.params_.loc["z0", "estimate"] - 0.8) < 4 * model.params_.loc["z0", "se"]
    assert abs(np.mean(estimates) - 0.7) < 0.2, estimates
