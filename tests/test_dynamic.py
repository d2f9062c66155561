"""DynamicBT (whole-history rating) against independent truths."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from bradley.errors import ComparisonDataError, ConvergenceWarning
from bradley.models.dynamic import DynamicBT
from bradley.solvers.whr import tridiagonal_inverse_band

ELO2 = (math.log(10) / 400) ** 2


def random_games(seed: int, games: int, items: int, days: int, draws: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    left = rng.integers(0, items, games)
    right = (left + rng.integers(1, items, games)) % items
    outcome = rng.integers(0, 2, games).astype(float)
    outcome[rng.random(games) < draws] = 0.5
    return pd.DataFrame({"left": [f"p{i}" for i in left], "right": [f"p{i}" for i in right],
                         "outcome": outcome, "time": rng.integers(0, days, games)})


def whr_reference(df: pd.DataFrame, w2_elo: float, prior_wins: float):
    whr = pytest.importorskip("whr")
    base = whr.WHR({"w2": w2_elo, "initial_prior_wins": prior_wins, "hessian_damping": 0.0})
    code = {1.0: "B", 0.0: "W", 0.5: "D"}
    for lft, rgt, out, day in zip(df.left, df.right, df.outcome, df.time, strict=True):
        base.create_game(lft, rgt, code[out], int(day), 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base.auto_iterate(precision=1e-10)
    return base


@pytest.mark.parametrize("draws", [None, "davidson"])
def test_matches_whole_history_rating_package(draws):
    df = random_games(1, 150, 5, 10, draws=0.2 if draws else 0.0)
    base = whr_reference(df, 100.0, 0.5)
    model = DynamicBT(w2=100.0 * ELO2, prior=0.5, draws=draws).fit(df)
    assert model.converged_
    for name, player in base.players.items():
        hist = model.rating_history(name)
        np.testing.assert_array_equal(hist.time.to_numpy(), [d.day for d in player.days])
        np.testing.assert_allclose(hist.score, [d.r for d in player.days], atol=1e-7)
        np.testing.assert_allclose(hist.se**2, [d.uncertainty for d in player.days], atol=1e-9)
    if draws:
        assert model.params_["nu"] == pytest.approx(base.nu, abs=1e-7)


def brute_force_map(df: pd.DataFrame, w2: float, k: float, *, first_mover: bool, davidson: bool):
    """The posterior written out per node, maximised by scipy.optimize (BFGS)."""
    items = sorted(set(df.left) | set(df.right))
    nodes = sorted({(i, t) for i, t in zip(df.left, df.time, strict=True)}
                   | {(i, t) for i, t in zip(df.right, df.time, strict=True)})
    pos = {nd: j for j, nd in enumerate(nodes)}
    a = np.array([pos[(i, t)] for i, t in zip(df.left, df.time, strict=True)])
    b = np.array([pos[(i, t)] for i, t in zip(df.right, df.time, strict=True)])
    y = df.outcome.to_numpy()
    chains = []
    for it in items:
        mine = [j for j, nd in enumerate(nodes) if nd[0] == it]
        chains.append(mine)
    times = np.array([nd[1] for nd in nodes], dtype=float)
    n = len(nodes)

    def negpost(x):
        r = x[:n]
        d = r[a] - r[b] + (x[n] if first_mover else 0.0)
        if davidson:
            th = x[-1]
            lz = np.log(np.exp(d / 2) + np.exp(-d / 2) + np.exp(th))
            ll = np.where(y == 1, d / 2, np.where(y == 0, -d / 2, th)) - lz
        else:
            ll = y * log_expit(d) + (1 - y) * log_expit(-d)
        lp = ll.sum()
        for mine in chains:
            lp += k * (log_expit(r[mine[0]]) + log_expit(-r[mine[0]]))
            for u, v in zip(mine[:-1], mine[1:], strict=True):
                lp -= (r[v] - r[u]) ** 2 / (2 * w2 * (times[v] - times[u]))
        return -lp

    x0 = np.zeros(n + first_mover + davidson)
    res = minimize(negpost, x0, method="BFGS", jac="3-point", options={"gtol": 1e-9, "maxiter": 5000})
    return {nd: res.x[j] for j, nd in enumerate(nodes)}, res.x


@pytest.mark.parametrize("first_mover,draws", [(False, None), (True, None), (True, "davidson")])
def test_matches_brute_force_map(first_mover, draws):
    df = random_games(3, 60, 4, 5, draws=0.25 if draws else 0.0)
    df.loc[df.index[:30], "outcome"] = np.where(df.outcome[:30] == 0.0, 1.0, df.outcome[:30])  # a first-mover edge
    truth, x = brute_force_map(df, 0.3, 1.0, first_mover=first_mover, davidson=draws == "davidson")
    model = DynamicBT(w2=0.3, prior=1.0, first_mover=first_mover, draws=draws).fit(df)
    for item in model.items_:
        hist = model.rating_history(item)
        expected = [truth[(item, t)] for t in hist.time]
        np.testing.assert_allclose(hist.score, expected, atol=1e-6)
    if first_mover:
        assert model.params_["first_mover"] == pytest.approx(x[len(truth)], abs=1e-6)
    if draws:
        assert math.log(model.params_["nu"]) == pytest.approx(x[-1], abs=1e-6)


def static_bt_map(df: pd.DataFrame, k: float) -> dict[str, float]:
    items = sorted(set(df.left) | set(df.right))
    idx = {it: j for j, it in enumerate(items)}
    a = df.left.map(idx).to_numpy()
    b = df.right.map(idx).to_numpy()
    y = df.outcome.to_numpy()

    def neg(r):
        d = r[a] - r[b]
        return -(np.sum(y * log_expit(d) + (1 - y) * log_expit(-d)) + k * np.sum(log_expit(r) + log_expit(-r)))

    res = minimize(neg, np.zeros(len(items)), method="BFGS", jac="3-point", options={"gtol": 1e-9})
    return dict(zip(items, res.x, strict=True))


def test_small_w2_is_static_bt_and_large_w2_moves():
    df = random_games(5, 120, 5, 8)
    static = static_bt_map(df, 1.0)
    exact = DynamicBT(w2=0.0, prior=1.0).fit(df)
    tiny = DynamicBT(w2=1e-9, prior=1.0).fit(df)
    for j, item in enumerate(exact.items_):
        assert exact.scores_[j] == pytest.approx(static[item], abs=1e-6)
        hist = tiny.rating_history(item)
        np.testing.assert_allclose(hist.score, static[item], atol=1e-5)
    # an item that wins everything early and loses everything late
    rows = [("x", f"p{i % 5}", 1.0, 0) for i in range(20)] + [("x", f"p{i % 5}", 0.0, 10) for i in range(20)]
    swing = pd.concat([df, pd.DataFrame(rows, columns=df.columns)], ignore_index=True)
    spread = {}
    for w2 in (1e-6, 1.0):
        hist = DynamicBT(w2=w2).fit(swing).rating_history("x")
        spread[w2] = hist.score.iloc[0] - hist.score.iloc[-1]
    assert spread[1e-6] < 0.01
    assert spread[1.0] > 2.0


def test_recovers_a_drifting_strength():
    rng = np.random.default_rng(9)
    days = np.arange(40)
    truth = np.cumsum(rng.normal(0, math.sqrt(0.02), len(days)))  # item "x" drifts as the model says
    opp = np.linspace(-1, 1, 8)
    rows = []
    for d in days:
        for j in rng.integers(0, 8, 60):
            rows.append(("x", f"o{j}", float(rng.random() < expit(truth[d] - opp[j])), d))
    for _ in range(3000):  # opponents among themselves, to pin their scores
        i, j = rng.choice(8, 2, replace=False)
        rows.append((f"o{i}", f"o{j}", float(rng.random() < expit(opp[i] - opp[j])), int(rng.integers(0, 40))))
    df = pd.DataFrame(rows, columns=["left", "right", "outcome", "time"])
    model = DynamicBT(w2=0.02, prior=1.0).fit(df)
    hist = model.rating_history("x")
    o_scores = model.score_at([f"o{j}" for j in range(8)], 20)[0]
    shift = float(np.mean(o_scores - opp))  # the anchor fixes the level, not the truth's
    err = hist.score.to_numpy() - shift - truth
    rmse = float(np.sqrt(np.mean(err**2)))
    assert rmse < 0.2  # measured 0.12 (0.09-0.19 over seeds 7-11)
    assert rmse < 0.6 * np.std(truth)  # far better than any constant
    # the se covers the truth at about the nominal rate (measured 95-100%)
    assert np.mean(np.abs(err) < 2 * hist.se.to_numpy()) >= 0.85


def test_select_w2_prefers_the_true_drift():
    rng = np.random.default_rng(11)
    n_items, days = 12, 60
    walk = np.cumsum(rng.normal(0, math.sqrt(0.05), (days, n_items)), axis=0)
    rows = []
    for d in range(days):
        for _ in range(40):
            i, j = rng.choice(n_items, 2, replace=False)
            rows.append((f"p{i}", f"p{j}", float(rng.random() < expit(walk[d, i] - walk[d, j])), d))
    df = pd.DataFrame(rows, columns=["left", "right", "outcome", "time"])
    model = DynamicBT().select_w2(df, [1e-6, 0.05, 5.0])
    path = model.w2_path_.set_index("w2").log_loss
    assert model.w2 == 0.05
    assert path[0.05] < path[1e-6] - 0.01 and path[0.05] < path[5.0] - 0.01
    assert model.converged_


def _static_games(seed: int, n: int = 400, items: int = 8, days: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    s = rng.normal(0, 1, items)
    left = rng.integers(0, items, n)
    right = (left + rng.integers(1, items, n)) % items
    y = (rng.random(n) < expit(s[left] - s[right])).astype(float)
    return pd.DataFrame({"left": left, "right": right, "outcome": y, "time": np.sort(rng.integers(0, days, n))})


def test_select_w2_rolling_origin_finds_static_data():
    # static BT data: the right drift is 0. Rolling origin (4 blocks) picks 0 more often than one cut
    grid = [0.0, 0.01, 0.03, 0.1]
    rolling, single = 0, 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for seed in range(20):
            df = _static_games(seed)
            rolling += DynamicBT().select_w2(df, grid).w2 == 0.0
            single += DynamicBT().select_w2(df, grid, n_folds=1).w2 == 0.0
    assert rolling >= 13  # measured 15 / 20
    assert rolling > single  # measured 15 vs 12 for the single last-20% cut
    assert 0.0 in DynamicBT.W2_GRID


def test_select_w2_warns_at_the_grid_edge_and_keeps_folds():
    df = _static_games(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        model = DynamicBT().select_w2(df)  # default grid with 0: choosing 0 is no edge
    assert model.w2 == 0.0
    assert model.w2_path_.shape == (len(DynamicBT.W2_GRID), 2 + 4)
    with pytest.warns(UserWarning, match="edge of the grid"):
        DynamicBT().select_w2(df, [0.5, 1.0, 2.0])  # static data: the smallest candidate, above 0
    with pytest.raises(ValueError, match="grid"):
        DynamicBT().select_w2(df, [-1.0])


def test_uncertain_prediction_is_the_gaussian_average():
    from scipy.integrate import quad

    df = random_games(2, 80, 4, 6)
    model = DynamicBT(w2=0.2).fit(df)
    mean, var = model.score_at(["p0", "p1"], 15)
    last = model.rating_history("p0").iloc[-1]
    assert var[0] == pytest.approx(last.se**2 + 0.2 * (15 - last.time), rel=1e-12)
    mu, s = mean[0] - mean[1], math.sqrt(var.sum())
    direct = quad(lambda z: expit(mu + s * z) * math.exp(-z * z / 2) / math.sqrt(2 * math.pi), -12, 12)[0]
    assert model.predict_proba("p0", "p1", 15)[0] == pytest.approx(direct, abs=1e-8)
    assert model.predict_proba("p0", "p1", 15, uncertainty=False)[0] == pytest.approx(expit(mu), abs=1e-12)


def test_tridiagonal_inverse_band_and_bridge_against_dense():
    rng = np.random.default_rng(0)
    n = 7
    off = -rng.uniform(0.5, 2, n - 1)
    diag = np.abs(off).sum() * 0 + rng.uniform(0.1, 1, n)
    diag[:-1] += -off
    diag[1:] += -off
    dense = np.diag(diag) + np.diag(off, 1) + np.diag(off, -1)
    inv = np.linalg.inv(dense)
    var, cov = tridiagonal_inverse_band(diag, off)
    np.testing.assert_allclose(var, np.diag(inv), rtol=1e-12)
    np.testing.assert_allclose(cov, np.diag(inv, 1), rtol=1e-12)


def test_datetime_times_match_numeric_days():
    df = random_games(4, 90, 5, 12)
    dated = df.assign(time=pd.Timestamp("2024-01-01") + pd.to_timedelta(df.time, unit="D"))
    a = DynamicBT(w2=0.1).fit(df)
    b = DynamicBT(w2=0.1, time_unit="D").fit(dated)
    np.testing.assert_allclose(a.scores_, b.scores_, atol=1e-12)
    weekly = DynamicBT(w2=0.7, time_unit="7D").fit(dated)
    np.testing.assert_allclose(a.scores_, weekly.scores_, atol=1e-10)
    hist = b.rating_history("p1")
    assert hist.time.iloc[0] >= pd.Timestamp("2024-01-01")


def test_extreme_records_and_errors():
    rows = [("champ", f"p{i % 4}", 1.0, i % 3) for i in range(60)] + [("p0", "p1", 1.0, 0), ("p2", "p3", 0.0, 1)]
    df = pd.DataFrame(rows, columns=["left", "right", "outcome", "time"])
    model = DynamicBT(w2=0.05).fit(df)
    assert model.converged_ and np.isfinite(model.scores_).all()
    assert model.summary().item.iloc[0] == "champ"
    with pytest.raises(ComparisonDataError, match="time"):
        DynamicBT().fit(df.drop(columns="time"))
    with pytest.raises(ComparisonDataError, match="tie"):
        DynamicBT(draws="davidson").fit(df)
    with pytest.warns(ConvergenceWarning):
        DynamicBT(max_iter=1).fit(random_games(0, 50, 4, 4))
    with pytest.raises(ValueError, match="w2"):
        DynamicBT(w2=-1).fit(df)


def test_whr_readme_quickstart():
    """The package README's quickstart (alice/bob, days 1-3), its default w2 = 300 elo^2 and 0.5 prior wins."""
    whr = pytest.importorskip("whr")
    base = whr.WHR()
    base.load_games(["alice bob B 1", "alice bob W 2", "alice bob B 3"])
    base.auto_iterate(precision=1e-10)
    df = pd.DataFrame({"left": ["alice"] * 3, "right": ["bob"] * 3, "outcome": [1.0, 0.0, 1.0], "time": [1, 2, 3]})
    model = DynamicBT(w2=300.0 * ELO2, prior=0.5).fit(df)
    elo = model.rating_history("alice").score * 400 / math.log(10)
    assert [round(e) for e in elo] == [e for _, e, _ in base.ratings_for_player("alice")]
    np.testing.assert_allclose(model.rating_history("alice").score, [d.r for d in base.players["alice"].days],
                               atol=1e-8)
    p = base.probability_future_match("alice", "bob")[0]
    assert model.predict_proba("alice", "bob", uncertainty=False)[0] == pytest.approx(p, abs=1e-8)
