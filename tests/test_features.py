import numpy as np
import pandas as pd
import pytest
from scipy import optimize
from scipy.special import expit, log_expit

import bradley
from bradley import BTProbe, Comparisons, FeatureBT
from bradley.models import probe_layers, select_l2


def simulate_features(n_items=40, n_rows=20_000, seed=0, w=(0.8, -0.5, 0.0), noise=0.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_items, len(w)))
    strength = x @ np.asarray(w) + noise * rng.normal(size=n_items)
    left = rng.integers(0, n_items, n_rows)
    right = (left + rng.integers(1, n_items, n_rows)) % n_items
    outcome = (rng.random(n_rows) < expit(strength[left] - strength[right])).astype(float)
    names = [f"m{k}" for k in range(n_items)]
    feats = pd.DataFrame(x, index=names, columns=[f"f{k}" for k in range(len(w))])
    data = Comparisons.from_arrays(np.array(names, dtype=object)[left], np.array(names, dtype=object)[right], outcome)
    return data, feats, strength


def test_feature_bt_matches_brute_force_and_recovers_weights():
    data, feats, _ = simulate_features()
    model = FeatureBT(feats).fit(data)
    x = feats.loc[list(data.items)].to_numpy()
    d = x[data.left] - x[data.right]

    def negll(w):
        eta = d @ w
        return -(data.outcome @ log_expit(eta) + (1 - data.outcome) @ log_expit(-eta))

    res = optimize.minimize(negll, np.zeros(3), method="BFGS", options={"gtol": 1e-8})
    np.testing.assert_allclose(model.coef_.to_numpy(), res.x, atol=1e-5)
    table = model.params_
    assert list(table.columns) == ["estimate", "se", "z", "p_value", "ci_low", "ci_high", "fixed"]
    for name, true in (("f0", 0.8), ("f1", -0.5), ("f2", 0.0)):
        assert table.loc[name, "ci_low"] < true < table.loc[name, "ci_high"]
    assert table.loc["f0", "p_value"] < 1e-10 and table.loc["f2", "p_value"] > 0.001


def test_free_effects_absorb_what_features_miss():
    data, feats, strength = simulate_features(noise=0.7, seed=1)
    plain = FeatureBT(feats).fit(data)
    free = FeatureBT(feats, free_effects=True, free_effect_variance=1.0).fit(data)
    truth = strength - strength.mean()
    order = [int(x[1:]) for x in data.items]
    assert np.corrcoef(free.scores_, truth[order])[0, 1] > np.corrcoef(plain.scores_, truth[order])[0, 1]
    with pytest.raises(bradley.ComparisonDataError, match="no features"):
        FeatureBT(feats.iloc[:5]).fit(data)


def test_probe_accuracy_antisymmetry_and_layers():
    rng = np.random.default_rng(2)
    n, dim = 3000, 16
    direction = rng.normal(size=dim)
    a, b = rng.normal(size=(n, dim)), rng.normal(size=(n, dim))
    y = (rng.random(n) < expit(2 * (a - b) @ direction / np.sqrt(dim))).astype(float)
    probe = BTProbe(l2=1.0).fit(a[:2000], b[:2000], y[:2000])
    assert probe.score(a[2000:], b[2000:], y[2000:]) > 0.75
    np.testing.assert_allclose(probe.predict_proba(a, b), 1 - probe.predict_proba(b, a))
    noise_a, noise_b = rng.normal(size=(n, dim)), rng.normal(size=(n, dim))
    table = probe_layers({"informative": (a, b), "noise": (noise_a, noise_b)}, y, seed=3)
    best = table.set_index("layer")["test_accuracy"]
    assert best["informative"] > 0.75 and best["noise"] < 0.6


def test_an_item_that_never_lost_is_an_error_not_a_zero_standard_error():
    # lizard L0 has its own effect (an indicator feature) and never lost: its coefficient is +infinity.
    # The old fit reported se ~ 1e-16 with a generic warning.
    rng = np.random.default_rng(4)
    names = [f"L{k}" for k in range(8)]
    size = rng.normal(size=8)
    feats = pd.DataFrame({"size": size, "own_L0": (np.arange(8) == 0).astype(float)}, index=names)
    left = rng.integers(0, 8, 400)
    right = (left + rng.integers(1, 8, 400)) % 8
    outcome = (rng.random(400) < expit(size[left] - size[right])).astype(float)
    outcome[left == 0], outcome[right == 0] = 1.0, 0.0
    data = Comparisons.from_arrays(np.array(names)[left], np.array(names)[right], outcome)
    with pytest.raises(bradley.MLEDoesNotExistError, match="own_L0") as info:
        FeatureBT(feats).fit(data)
    assert info.value.never_lost == ["L0"]
    # a ridge (or free effects with a prior) keeps it finite, with an honest standard error
    ridge = FeatureBT(feats, l2=1.0).fit(data)
    assert ridge.converged_ and ridge.params_.loc["own_L0", "se"] > 0.3


def test_constant_feature_is_reported_as_not_identified():
    data, feats, _ = simulate_features(n_items=10, n_rows=2000)
    feats = feats.assign(const=1.0)
    with pytest.raises(bradley.ComparisonDataError, match="const"):
        FeatureBT(feats).fit(data)
    # free effects beside features need a prior: fixed unpenalised effects are not identified with features
    with pytest.raises(bradley.ComparisonDataError, match="random"):
        bradley.PairwiseModel(item_features=feats.drop(columns="const"), item_effects="fixed").fit(data)


def test_feature_bt_uncertainty_api():
    data, feats, _ = simulate_features(n_items=12, n_rows=3000, seed=5)
    model = FeatureBT(feats).fit(data)
    x = feats.loc[list(data.items)].to_numpy()
    x_c = x - x.mean(axis=0)
    w_cov = model.parameter_covariance_
    np.testing.assert_allclose(model.covariance_, x_c @ w_cov @ x_c.T, atol=1e-12)
    assert "se" in model.summary().columns and (model.standard_errors() > 0).all()


def test_probe_layers_with_held_out_rows_and_an_l2_grid():
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(600, 6)), rng.normal(size=(600, 6))
    y = (rng.random(600) < expit(3 * (a - b)[:, 0])).astype(float)
    test = np.arange(600) >= 450
    validation = np.arange(450) % 4 == 0
    table = probe_layers({"all": (a, b)}, y, l2=[1e-3, 1e-1, 10.0, 1e3], test=test, validation=validation)
    # brute force: the grid value with the best validation log-loss, refitted on all training rows
    losses = {}
    for l2 in [1e-3, 1e-1, 10.0, 1e3]:
        p = BTProbe(l2).fit(a[:450][~validation], b[:450][~validation], y[:450][~validation])
        eta = (a[:450][validation] - b[:450][validation]) @ p.coef_
        yv = y[:450][validation]
        losses[l2] = -np.mean(yv * np.log(expit(eta)) + (1 - yv) * np.log(expit(-eta)))
    chosen = min(losses, key=losses.get)
    row = table.iloc[0]
    assert row["l2"] == chosen and chosen < 1e3
    refit = BTProbe(chosen).fit(a[:450], b[:450], y[:450])
    assert row["test_accuracy"] == refit.score(a[450:], b[450:], y[450:])
    assert row["test_log_loss"] == pytest.approx(refit.log_loss(a[450:], b[450:], y[450:]))
    assert row["n_test"] == 150
    with pytest.raises(ValueError, match="both train and test"):
        probe_layers({"all": (a, b)}, y, test=np.ones(600, dtype=bool))


def test_probe_layers_l2_search_fits_only_the_rows_given():
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=(400, 5)), rng.normal(size=(400, 5))
    y = (rng.random(400) < expit(2 * (a - b)[:, 0])).astype(float)
    y[60:200] = 1 - y[60:200]  # rows that sit out the search carry flipped labels: fitting them changes the choice
    test = np.arange(400) >= 300
    validation = np.arange(300) < 60
    fit_rows = np.arange(300) >= 200  # rows 60-199 sit out the search
    grid = [1e-2, 1.0, 100.0]
    chosen = probe_layers({"x": (a, b)}, y, l2=grid, test=test, validation=validation,
                          validation_fit=fit_rows).loc[0, "l2"]
    losses = [BTProbe(l2).fit(a[200:300], b[200:300], y[200:300]).log_loss(a[:60], b[:60], y[:60]) for l2 in grid]
    assert chosen == grid[int(np.argmin(losses))] == 1.0
    # the default (fit on every non-validation training row, flipped ones included) must choose otherwise
    default = probe_layers({"x": (a, b)}, y, l2=grid, test=test, validation=validation).loc[0, "l2"]
    all_rows = [BTProbe(l2).fit(a[60:300], b[60:300], y[60:300]).log_loss(a[:60], b[:60], y[:60]) for l2 in grid]
    assert default == grid[int(np.argmin(all_rows))] == 100.0 != chosen


def test_l2_search_masks_are_checked():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(100, 3)), rng.normal(size=(100, 3))
    y = ((a - b)[:, 0] > 0).astype(float)
    test = np.arange(100) >= 80
    with pytest.raises(ValueError, match="validation must be a boolean mask over the 80 training rows"):
        probe_layers({"x": (a, b)}, y, l2=[0.1, 1.0], test=test, validation=np.ones(100, dtype=bool))
    with pytest.raises(ValueError, match="validation_fit must be a boolean mask over the 80"):
        probe_layers({"x": (a, b)}, y, l2=[0.1, 1.0], test=test, validation=np.arange(80) < 20,
                     validation_fit=np.ones(79, dtype=bool))
    with pytest.raises(ValueError, match="not indices"):
        select_l2(a, b, y, [0.1, 1.0], validation=np.arange(100) % 7)
    with pytest.raises(ValueError, match="one row per outcome"):
        probe_layers({"x": (a[:90], b[:90])}, y, l2=1.0, test=test)
    with pytest.raises(ValueError, match="validation mask selects no rows"):
        select_l2(a, b, y, [0.1, 1.0], validation=np.zeros(100, dtype=bool))
    with pytest.raises(ValueError, match="no rows to fit on"):
        select_l2(a, b, y, [0.1, 1.0], validation=np.arange(100) < 50, fit_rows=np.zeros(100, dtype=bool))
    # a validation row whose score overflows makes every loss non-finite: an error, not grid[0]
    huge = a.copy()
    huge[0] = 1e308 * np.sign(BTProbe(1.0).fit(a[10:], b[10:], y[10:]).coef_)
    with np.errstate(over="ignore", invalid="ignore"), \
            pytest.raises(ValueError, match="no l2 in the grid has a finite validation log-loss"):
        select_l2(huge, b, y, [0.1, 1.0], validation=np.arange(100) < 10)
    with pytest.raises(bradley.errors.NotFittedError, match="BTProbe is not fitted"):
        BTProbe().log_loss(a, b, y)
