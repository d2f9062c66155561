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


def _laplace_by_hand(data, z, sigma, w_start):
    """Joint mode of (w, u) for this sigma by scipy, then the Laplace formula with a numerical Hessian."""
    n, p = z.shape

    def neg_penalised(t):
        strength = z @ t[:p] + t[p:]
        d = strength[data.left] - strength[data.right]
        ll = data.outcome @ log_expit(d) + (1 - data.outcome) @ log_expit(-d)
        return -(ll - 0.5 * t[p:] @ t[p:] / sigma ** 2)

    res = optimize.minimize(neg_penalised, np.r_[w_start, np.zeros(n)], method="BFGS", options={"gtol": 1e-10})
    u_hat = res.x[p:]
    strength = z @ res.x[:p] + u_hat
    d = strength[data.left] - strength[data.right]
    c = expit(d) * expit(-d)
    h_uu = np.zeros((n, n))
    np.add.at(h_uu, (data.left, data.left), c)
    np.add.at(h_uu, (data.right, data.right), c)
    np.add.at(h_uu, (data.left, data.right), -c)
    np.add.at(h_uu, (data.right, data.left), -c)
    _, logdet = np.linalg.slogdet(h_uu + np.eye(n) / sigma ** 2)
    return -res.fun - n * np.log(sigma) - 0.5 * logdet


def test_random_item_effects_laplace_objective_by_hand_and_by_integration():
    data, feats, s = simulate(5, 300, 2, w=(0.7,), gamma=0.0, beta=0.0, sigma=0.8)
    plain = Comparisons(data.left, data.right, data.outcome, data.items)
    model = PairwiseModel(item_features=feats, item_effects="random").fit(plain)
    sigma = model.params_.loc["sigma", "estimate"]
    z = feats.loc[list(plain.items)].to_numpy()
    by_hand = _laplace_by_hand(plain, z, sigma, model.params_.loc[["z0"], "estimate"].to_numpy())
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
