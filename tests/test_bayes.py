"""BayesianBT and GradeScaleBT against independent truths: the package's MAP fits, brute-force grids,
hand-written BayesElo likelihoods, Monte Carlo, and simulation recovery."""

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import expit, log_expit

import bradley
from bradley.errors import ComparisonDataError

pytest.importorskip("numpyro")

from bradley.models.bayes import BayesianBT, GradeScaleBT, helmert_scores, outcome_log_probs


@pytest.fixture(scope="module")
def large():
    """8 items, 20,000 games: the posterior is close to Gaussian."""
    data, truth = bradley.simulate_bt(8, 20_000, seed=3)
    model = BayesianBT(prior_sd=1.0, draws=1000, warmup=400, seed=0).fit(data)
    return data, truth, model


def test_helmert_basis_is_orthonormal_and_centred():
    basis = helmert_scores(np.eye(5))  # rows: basis vectors
    assert np.allclose(basis @ basis.T, np.eye(5), atol=1e-12)
    assert np.allclose(basis.sum(axis=1), 0.0, atol=1e-12)


def test_rao_kupper_probabilities_sum_to_one_and_match_formula():
    d = np.linspace(-50, 50, 11)
    for family, tie in ((None, 0.0), ("davidson", np.log(0.7)), ("rao-kupper", 0.4)):
        lw, lt, ll = outcome_log_probs(d, family, tie)
        if family is not None:
            assert np.allclose(np.exp(lw) + np.exp(lt) + np.exp(ll), 1.0, atol=1e-12)
        assert np.isfinite(lw).all() and np.isfinite(ll).all()
    lw, lt, ll = outcome_log_probs(np.array([0.3]), "rao-kupper", 0.4)
    # Rao-Kupper with eta = e^alpha: P(i beats j) = pi_i / (pi_i + eta pi_j)
    pi_i, pi_j, eta = np.exp(0.3), 1.0, np.exp(0.4)
    assert np.exp(lw[0]) == pytest.approx(pi_i / (pi_i + eta * pi_j), rel=1e-12)
    assert np.exp(ll[0]) == pytest.approx(pi_j / (pi_j + eta * pi_i), rel=1e-12)


def test_map_and_laplace_equal_bradley_terry_with_prior():
    data, _ = bradley.simulate_bt(6, 400, seed=5)
    m = BayesianBT(prior_sd=0.8, draws=0).fit(data)
    bt = bradley.BradleyTerry(prior=0.64).fit(data)
    assert np.allclose(m.map_scores_, bt.scores_, atol=1e-6)
    assert np.allclose(m.laplace_sd_, bt.standard_errors().to_numpy(), rtol=1e-4)
    assert m.map_converged_ and m.converged_


@pytest.mark.parametrize("ties, fixed, peer", [
    ("davidson", {"nu": 0.6}, lambda: bradley.Davidson(prior=2.0, fixed={"nu": 0.6})),
    ("rao-kupper", {"alpha": 0.5}, lambda: bradley.RaoKupper(prior=2.0, fixed={"eta": np.exp(0.5)})),
])
def test_tie_model_map_equals_pairwise_model(ties, fixed, peer):
    rng = np.random.default_rng(1)
    n, games = 5, 600
    left, right = rng.integers(0, n, games), rng.integers(0, n, games)
    keep = left != right
    outcome = rng.choice([0.0, 0.5, 1.0], size=keep.sum(), p=[0.35, 0.25, 0.4])
    data = bradley.Comparisons.from_codes(left[keep], right[keep], outcome)
    m = BayesianBT(prior_sd=np.sqrt(2.0), ties=ties, fixed=fixed, draws=0).fit(data)
    ref = peer().fit(data)
    assert np.allclose(m.map_scores_, ref.scores_, atol=1e-5)


def test_large_data_posterior_agrees_with_map_and_laplace(large):
    data, _, m = large
    bt = bradley.BradleyTerry(prior=1.0).fit(data)
    se = bt.standard_errors().to_numpy()
    assert m.converged_ and m.r_hat_max_ < 1.01 and m.divergences_ == 0
    # means within 0.3 posterior sd of the MAP (Monte Carlo error of a mean ~ sd / sqrt(ESS) ~ 0.04 sd)
    assert np.abs(m.scores_ - bt.scores_).max() < 0.3 * se.min()
    # posterior sds within 15% of the Laplace standard errors (MC error of an sd ~ 3%)
    assert np.allclose(m.scores_sd_, se, rtol=0.15)
    table = m.summary()
    assert list(table.columns[:4]) == ["item", "score", "sd", "hdi_low"]
    assert (table["hdi_low"] < table["score"]).all() and (table["score"] < table["hdi_high"]).all()
    assert (table["r_hat"] < 1.01).all()


def test_prob_beats_matches_simulated_games(large):
    _, _, m = large
    s = m.draws_["scores"]
    rng = np.random.default_rng(0)
    # Monte Carlo: one simulated game per draw, many rounds
    wins = rng.random((50, len(s))) < expit(s[:, 0] - s[:, 1])
    assert m.prob_beats(0, 1) == pytest.approx(wins.mean(), abs=0.01)
    matrix = m.prob_beats_matrix()
    assert matrix.iloc[0, 1] == pytest.approx(m.prob_beats(0, 1))
    both = matrix.to_numpy() + matrix.to_numpy().T
    off = ~np.eye(8, dtype=bool)
    assert np.allclose(both[off], 1.0) and np.isnan(np.diag(both)).all()
    assert m.prob_stronger(0, 1) == pytest.approx(np.mean(s[:, 0] > s[:, 1]))
    assert m.predict_proba([0], [1])[0] == pytest.approx(m.prob_beats(0, 1))


def test_rank_distribution_matches_draws(large):
    _, truth, m = large
    dist = m.rank_distribution()
    assert np.allclose(dist.sum(axis=0), 1.0) and np.allclose(dist.sum(axis=1), 1.0)
    first = np.bincount(np.argmax(m.draws_["scores"], axis=1), minlength=8) / len(m.draws_["scores"])
    assert np.allclose(m.prob_rank(1).to_numpy(), first)
    assert np.allclose(m.prob_rank(3, at_most=True), dist.loc[:, :3].sum(axis=1))
    assert int(np.argmax(m.prob_rank(1).to_numpy())) == int(np.argmax(truth))


def test_posterior_predictive_check_passes_on_bt_data(large):
    _, _, m = large
    ppc = m.posterior_predictive_check()
    assert len(ppc) == 28 and (ppc["n"] > 0).all()
    assert ppc.attrs["chi2_p_value"] > 0.01
    assert (ppc["rep_low"] <= ppc["expected"]).all() and (ppc["expected"] <= ppc["rep_high"]).all()


def test_posterior_predictive_check_flags_a_cycle(monkeypatch):
    # a beats b, b beats c, c beats a, each 80 of 100: no BT scores fit this
    wins = np.array([[0, 80, 20], [20, 0, 80], [80, 20, 0]])
    pairs = bradley.PairCounts.from_matrix(wins, items=["a", "b", "c"])
    # an impossible R-hat bound: the fit must say it did not converge (and still give its draws)
    monkeypatch.setattr("bradley.models.bayes.RHAT_MAX", 0.5)
    with pytest.warns(bradley.errors.ConvergenceWarning, match="R-hat"):
        m = BayesianBT(prior_sd=2.0, draws=400, warmup=200, seed=1).fit(pairs)
    assert not m.converged_ and m.r_hat_max_ < 1.05
    ppc = m.posterior_predictive_check()
    assert ppc.attrs["chi2_p_value"] < 0.01
    assert (ppc["p_value"] < 0.01).all()


def test_tiny_posterior_matches_brute_force_grid():
    # 3 items, 7 games, N(0, 1) prior on raw scores: a 3-D grid over the raw scores is the truth
    data = bradley.Comparisons.from_codes([0, 0, 1, 1, 2, 0, 2], [1, 2, 2, 0, 0, 1, 1], [1, 1, 1, 1, 0, 0, 0.5])
    m = BayesianBT(prior_sd=1.0, draws=4000, warmup=500, seed=2).fit(data)
    g = np.linspace(-4.5, 4.5, 61)
    s = np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1).reshape(-1, 3)
    logp = -0.5 * (s ** 2).sum(axis=1)
    o = np.array([1, 1, 1, 1, 0, 0, 0.5])
    lc, rc = np.array([0, 0, 1, 1, 2, 0, 2]), np.array([1, 2, 2, 0, 0, 1, 1])
    d = s[:, lc] - s[:, rc]
    logp += (o * log_expit(d) + (1 - o) * log_expit(-d)).sum(axis=1)
    w = np.exp(logp - logp.max())
    w /= w.sum()
    centred = s - s.mean(axis=1, keepdims=True)
    mean = w @ centred
    sd = np.sqrt(w @ (centred - mean) ** 2)
    tol = 4 * sd / np.sqrt(m.ess_min_)
    assert np.all(np.abs(m.scores_ - mean) < tol)
    assert np.allclose(m.scores_sd_, sd, rtol=0.08)
    p_stronger = w @ (s[:, 0] > s[:, 1])
    assert m.prob_stronger(0, 1) == pytest.approx(p_stronger, abs=0.04)
    p_game = w @ expit(s[:, 0] - s[:, 2])
    assert m.prob_beats(0, 2) == pytest.approx(p_game, abs=0.02)
    p_first = np.array([w @ (np.argmax(s, axis=1) == k) for k in range(3)])
    assert np.allclose(m.prob_rank(1).to_numpy(), p_first, atol=0.04)


def _bayeselo_data(seed=0):
    rng = np.random.default_rng(seed)
    n, games = 6, 3000
    elo = np.array([150.0, 60.0, 0.0, -20.0, -80.0, -110.0])
    white, black = rng.integers(0, n, games), rng.integers(0, n, games)
    keep = white != black
    white, black = white[keep], black[keep]

    def f(delta):
        return 1.0 / (1.0 + 10.0 ** (delta / 400.0))

    p_white = f(elo[black] - elo[white] - 32.8 + 97.3)
    p_black = f(elo[white] - elo[black] + 32.8 + 97.3)
    u = rng.random(len(white))
    outcome = np.where(u < p_white, 1.0, np.where(u < p_white + p_black, 0.0, 0.5))
    return bradley.Comparisons.from_codes(white, black, outcome), elo, (white, black, outcome)


def test_bayeselo_map_matches_hand_written_posterior():
    data, _, (white, black, outcome) = _bayeselo_data()
    m = BayesianBT.bayeselo(draws=0).fit(data)

    def log10_f(delta):  # log of 1 / (1 + 10^(delta/400)), stably
        return -np.logaddexp(0.0, delta * np.log(10) / 400)

    # the prior: each player's 2 virtual draws spread evenly over its opponents (BayesElo's prior)
    pairs = np.unique(np.stack([np.minimum(white, black), np.maximum(white, black)], 1), axis=0)
    deg = np.bincount(pairs.ravel(), minlength=6)
    vd = 0.5 * 2.0 * (1 / deg[pairs[:, 0]] + 1 / deg[pairs[:, 1]])

    def neg_log_post(e):
        pw = log10_f(e[black] - e[white] - 32.8 + 97.3)
        pb = log10_f(e[white] - e[black] + 32.8 + 97.3)
        pd_ = np.log1p(-np.exp(pw) - np.exp(pb))
        ll = np.where(outcome == 1, pw, np.where(outcome == 0, pb, pd_)).sum()
        a, b = e[pairs[:, 0]], e[pairs[:, 1]]
        draw = np.log1p(-np.exp(log10_f(b - a + 97.3)) - np.exp(log10_f(a - b + 97.3)))
        return -(ll + vd @ draw) + 1e-6 * e.sum() ** 2

    ref = minimize(neg_log_post, np.zeros(6), method="BFGS", options={"gtol": 1e-8}).x
    ref -= ref.mean()
    mapped = m.map_scores_ * 400 / np.log(10)
    assert np.allclose(mapped, ref, atol=0.05)  # Elo points


@pytest.mark.slow
def test_bayeselo_sampling_agrees_with_its_map_and_truth():
    data, elo, _ = _bayeselo_data(seed=1)
    m = BayesianBT.bayeselo(draws=1000, warmup=300, seed=0).fit(data)
    assert m.converged_
    assert np.abs(m.scores_ - m.map_scores_).max() < 0.3 * m.scores_sd_.min()
    assert np.allclose(m.scores_sd_, m.laplace_sd_, rtol=0.15)
    table = m.summary().set_index("item").loc[list(range(6))]
    truth = (elo - elo.mean()) * np.log(10) / 400
    # the posterior means sit near the true ratings (4 sds: a check of the model's scale and sign)
    assert (np.abs(table["score"].to_numpy() - truth) < 4 * table["sd"].to_numpy()).all()
    assert set(m.draws_) == {"scores"}  # all other parameters fixed


def test_order_effect_covariate_and_tie_threshold_recovered():
    rng = np.random.default_rng(4)
    n, games = 6, 3000
    s = np.linspace(-1, 1, n)
    left, right = rng.integers(0, n, games), rng.integers(0, n, games)
    keep = left != right
    left, right = left[keep], right[keep]
    x = rng.normal(size=(len(left), 1))
    gamma, beta, alpha = 0.4, -0.7, 0.5
    d = s[left] - s[right] + gamma + beta * x[:, 0]
    p_left, p_right = expit(d - alpha), expit(-d - alpha)
    u = rng.random(len(d))
    outcome = np.where(u < p_left, 1.0, np.where(u < p_left + p_right, 0.0, 0.5))
    data = bradley.Comparisons.from_codes(left, right, outcome, features=x, feature_names=("length",))
    m = BayesianBT(prior_sd=2.0, ties="rao-kupper", order_effect=True, covariates=True, draws=400, warmup=200,
                   seed=3).fit(data)
    params = m.params_
    for name, true in (("order_effect", gamma), ("beta[length]", beta), ("alpha", alpha)):
        assert params.loc[name, "hdi_low"] < true < params.loc[name, "hdi_high"], name
    assert params.loc["eta", "mean"] == pytest.approx(np.exp(m.draws_["alpha"]).mean())
    assert abs(params.loc["order_effect", "mean"] - m.map_params_["order_effect"]) < 0.3 * params.loc[
        "order_effect", "sd"]
    ppc = m.posterior_predictive_check()
    assert len(ppc) == len(left) and "order" in ppc.columns


def test_errors_name_the_problem():
    soft = bradley.Comparisons.from_codes([0, 1], [1, 2], [0.7, 1.0])
    with pytest.raises(ComparisonDataError, match=r"rows \[0\]"):
        BayesianBT(ties="davidson", draws=0).fit(soft)
    with pytest.raises(ValueError, match="fixed accepts"):
        BayesianBT(ties="davidson", fixed={"alpha": 1.0}, draws=0).fit(soft)
    split = bradley.Comparisons.from_codes([0, 1, 2, 3], [1, 0, 3, 2], [1, 1, 1, 1])
    with pytest.raises(ComparisonDataError, match="groups"):
        BayesianBT(prior_sd=None, draws=0).fit(split)
    with pytest.raises(ValueError, match="ties"):
        BayesianBT(ties="thurstone").fit(soft)
    with pytest.raises(ValueError, match="order_effect=True"):  # was silently ignored
        BayesianBT(fixed={"order_effect": 0.3}, draws=0).fit(soft)


@pytest.mark.slow
def test_grade_scale_recovers_the_step_ratio():
    ascents = GradeScaleBT.simulate(n_climbers=20, n_routes=40, n_grades=5, n_periods=2, ascents_per_period=12,
                                    ratio=2.0, seed=0)
    m = GradeScaleBT(draws=300, warmup=300, seed=0).fit(ascents)  # no warning filter: converged_ is asserted
    assert m.step_ratio_["hdi_low"] < 2.0 < m.step_ratio_["hdi_high"]
    assert m.step_ratio_["hdi_high"] / m.step_ratio_["hdi_low"] < 3.0  # informative, not just the prior
    # the model's own criteria (split R-hat < 1.01, ESS >= 100, no divergence) over every parameter,
    # the climbers' strengths included (measured: R-hat 1.009, ESS 115)
    assert m.converged_ and m.r_hat_max_ < 1.01 and m.ess_min_ >= 100
    truth = ascents.attrs["route_difficulty"]
    est = m.route_difficulty_.set_index("route")["mean"]
    order = [int(r[1:]) for r in est.index]
    assert np.corrcoef(est.to_numpy(), truth[order])[0, 1] > 0.8
    hist = m.climber_history("c000")
    assert list(hist.columns) == ["period", "mean", "sd", "hdi_low", "hdi_high"] and len(hist) == 2


def test_low_ess_warns_and_same_seed_gives_same_draws(monkeypatch):
    # ESS was computed but never checked: a run must not pass as converged on R-hat alone
    data, _ = bradley.simulate_bt(4, 300, seed=1)
    monkeypatch.setattr("bradley.models.bayes.ESS_MIN", 1e9)
    fits = []
    for _ in range(2):
        with pytest.warns(bradley.errors.ConvergenceWarning, match="ESS"):
            fits.append(BayesianBT(prior_sd=2.0, draws=300, warmup=150, seed=7).fit(data))
    a, b = fits
    assert not a.converged_ and a.ess_min_ < 1e9
    assert np.array_equal(a.draws_["scores"], b.draws_["scores"])  # reproducible from the seed
    assert np.allclose(a.draws_["scores"].sum(axis=1), 0.0, atol=1e-10)  # sum-to-zero in every draw


def test_map_that_did_not_converge_warns(monkeypatch):
    import bradley.models.bayes as bayes

    real = bayes._map

    def stopped_early(*args, **kwargs):
        point, value, hess, _, nit = real(*args, **kwargs)
        return point, value, hess, False, nit

    monkeypatch.setattr(bayes, "_map", stopped_early)
    data, _ = bradley.simulate_bt(4, 200, seed=2)
    with pytest.warns(bradley.errors.ConvergenceWarning, match="MAP"):
        m = BayesianBT(prior_sd=1.0, draws=0).fit(data)
    assert not m.converged_


@pytest.mark.parametrize("ties, tie", [("davidson", np.log(0.8)),
                                       pytest.param("rao-kupper", 0.6, marks=pytest.mark.slow)])
def test_tiny_tie_model_posterior_matches_brute_force_grid(ties, tie):
    # 3 items, 9 games with 3 ties, N(0, 1) prior, tie parameter held: a grid over the raw scores is the truth
    lc, rc = np.array([0, 0, 1, 1, 2, 0, 2, 1, 0]), np.array([1, 2, 2, 0, 0, 1, 1, 2, 2])
    o = np.array([1, 1, 0.5, 1, 0, 0.5, 0, 0.5, 1])
    data = bradley.Comparisons.from_codes(lc, rc, o)
    fixed = {"nu": float(np.exp(tie))} if ties == "davidson" else {"alpha": tie}
    m = BayesianBT(prior_sd=1.0, ties=ties, fixed=fixed, draws=3000, warmup=500, seed=4).fit(data)
    g = np.linspace(-4.5, 4.5, 61)
    s = np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1).reshape(-1, 3)
    d = s[:, lc] - s[:, rc]
    if ties == "davidson":  # P(win) : P(tie) : P(loss) = e^{d/2} : nu : e^{-d/2}
        terms = np.stack([d / 2, np.full_like(d, tie), -d / 2], axis=-1)
        logp_cls = terms - np.logaddexp.reduce(terms, axis=-1, keepdims=True)
    else:  # Rao-Kupper: P(win) = 1 / (1 + e^{-d + alpha}), the same for a loss, a tie otherwise
        pw, pl = expit(d - tie), expit(-d - tie)
        logp_cls = np.log(np.stack([pw, 1 - pw - pl, pl], axis=-1))
    cls = np.where(o == 1, 0, np.where(o == 0.5, 1, 2))
    logp = -0.5 * (s ** 2).sum(axis=1) + np.take_along_axis(logp_cls, cls[None, :, None], axis=-1)[..., 0].sum(axis=1)
    w = np.exp(logp - logp.max())
    w /= w.sum()
    centred = s - s.mean(axis=1, keepdims=True)
    mean = w @ centred
    sd = np.sqrt(w @ (centred - mean) ** 2)
    assert m.converged_
    assert np.all(np.abs(m.scores_ - mean) < 4 * sd / np.sqrt(m.ess_min_))
    assert np.allclose(m.scores_sd_, sd, rtol=0.08)
    p_game = w @ np.exp(logp_cls[:, 0, 0])  # P(item 0 beats item 1 outright in a new game)
    assert m.prob_beats(0, 1) == pytest.approx(p_game, abs=0.02)
