import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import brute_force_bt
from scipy.optimize import brentq
from scipy.special import expit

import bradley
from bradley import BradleyTerry, Comparisons, ConvergenceWarning, MLEDoesNotExistError, PairCounts
from bradley.solvers import bt as kernels

SOLVERS = ["newton", "newton-cg", "mm", "newman", "lbfgs"]


def small_random_data(rng, n_items=6, n_rows=300, soft=False):
    truth = rng.normal(0, 1.2, n_items)
    left = rng.integers(0, n_items, n_rows)
    right = (left + rng.integers(1, n_items, n_rows)) % n_items
    p = expit(truth[left] - truth[right])
    u = rng.random(n_rows)
    outcome = np.where(u < 0.15, 0.5, (u < p).astype(float))
    if soft:
        outcome = np.where(rng.random(n_rows) < 0.3, rng.random(n_rows), outcome)
    weight = rng.uniform(0.2, 3.0, n_rows)
    return left, right, outcome, weight


@pytest.mark.parametrize("solver", SOLVERS)
def test_matches_brute_force_likelihood_maximisation(rng, solver):
    left, right, outcome, weight = small_random_data(rng, soft=True)
    data = Comparisons.from_arrays(left, right, outcome, weight)
    model = BradleyTerry(solver=solver).fit(data)
    theta, ll = brute_force_bt(left, right, outcome, data.n_items, weight)
    np.testing.assert_allclose(model.scores_, theta, atol=1e-6)
    assert model.log_likelihood_ == pytest.approx(ll, rel=1e-9)
    assert model.converged_
    assert abs(model.scores_.mean()) < 1e-12


@pytest.mark.parametrize("solver", SOLVERS)
def test_map_with_prior_matches_brute_force(rng, solver):
    left, right, outcome, weight = small_random_data(rng, n_rows=60)
    data = Comparisons.from_arrays(left, right, outcome, weight)
    model = BradleyTerry(prior=0.7, solver=solver).fit(data)
    theta, _ = brute_force_bt(left, right, outcome, data.n_items, weight, prior_variance=0.7)
    np.testing.assert_allclose(model.scores_, theta, atol=1e-6)


def test_all_solvers_agree_on_real_arena_data():
    battles = bradley.datasets.load_arena_140k()
    battles = battles[battles.model_a != battles.model_b]
    data = bradley.read_comparisons(battles)
    fits = {s: BradleyTerry(solver=s).fit(data) for s in SOLVERS}
    reference = fits["newton"].scores_
    for name, model in fits.items():
        assert model.converged_, name
        np.testing.assert_allclose(model.scores_, reference, atol=1e-6, err_msg=name)
    assert fits["newton"].items_.tolist() == sorted(set(battles.model_a) | set(battles.model_b))


def test_solvers_agree_with_a_prior_on_disconnected_data():
    # Two groups never compared with each other, and an item that never won.
    c = Comparisons.from_arrays(
        ["a", "b", "a", "c", "d", "e", "d"], ["b", "a", "z", "d", "c", "d", "e"], [1, 1, 1, 1, 1, 0, 1]
    )
    with pytest.raises(MLEDoesNotExistError):
        BradleyTerry().fit(c)
    with pytest.warns(UserWarning, match="2 connected components"):
        fits = [BradleyTerry(prior=2.0, solver=s).fit(c) for s in SOLVERS]
    for model in fits:
        assert model.converged_ and np.all(np.isfinite(model.scores_))
        np.testing.assert_allclose(model.scores_, fits[0].scores_, atol=1e-6)


def test_mle_error_names_items_and_suggests_prior():
    c = Comparisons.from_arrays(["top", "top", "x", "y"], ["x", "y", "y", "x"], [1, 1, 1, 1])
    with pytest.raises(MLEDoesNotExistError, match=r"\['top'\] never lost.*prior=") as err:
        BradleyTerry().fit(c)
    assert err.value.never_lost == ["top"]


def test_simulation_recovery_200_items_200k_comparisons():
    data, truth = bradley.simulate_bt(200, 200_000, seed=7)
    model = BradleyTerry().fit(data)
    assert np.corrcoef(model.scores_, truth)[0, 1] > 0.99
    # With ~2000 comparisons per item the standard error is about 0.05.
    assert np.max(np.abs(model.scores_ - truth)) < 0.3


def test_agrees_with_choix_ilsr_and_mm(rng):
    choix = pytest.importorskip("choix")
    data, _ = bradley.simulate_bt(20, 3000, seed=11)
    winners = np.where(data.outcome == 1.0, data.left, data.right)
    losers = np.where(data.outcome == 1.0, data.right, data.left)
    games = list(zip(winners.tolist(), losers.tolist()))
    ours = BradleyTerry().fit(data).scores_
    for fit in (choix.ilsr_pairwise, choix.mm_pairwise):
        theirs = fit(20, games, tol=1e-12, max_iter=10_000)
        np.testing.assert_allclose(ours, theirs - theirs.mean(), atol=1e-6)


def test_agrees_with_evalica_bradley_terry():
    evalica = pytest.importorskip("evalica")
    data, _ = bradley.simulate_bt(15, 2000, seed=5)
    winners = [evalica.Winner.X if o == 1.0 else evalica.Winner.Y for o in data.outcome]
    res = evalica.bradley_terry(data.left, data.right, winners, tolerance=1e-12, limit=100_000)
    theirs = np.log(res.scores.sort_index().to_numpy())
    ours = BradleyTerry().fit(data).scores_
    np.testing.assert_allclose(ours, theirs - theirs.mean(), atol=1e-5)


def test_tie_counts_half_a_win_each_way():
    tied = Comparisons.from_arrays(["a", "a", "b"], ["b", "c", "c"], [0.5, 1.0, 1.0])
    decisive = Comparisons.from_arrays(["a", "a", "b"], ["b", "c", "c"], [1.0, 1.0, 1.0])
    halves = Comparisons.from_arrays(["a", "b", "a", "b"], ["b", "a", "c", "c"], [1, 1, 1, 1], weight=[0.5, 0.5, 1, 1])
    m1 = BradleyTerry(prior=5).fit(tied)
    m3 = BradleyTerry(prior=5).fit(halves)
    np.testing.assert_allclose(m1.scores_, m3.scores_, atol=1e-10)
    assert not np.allclose(m1.scores_, BradleyTerry(prior=5).fit(decisive).scores_)


def test_weights_equal_duplicated_rows(rng):
    left, right, outcome, _ = small_random_data(rng, n_rows=200)
    counts = rng.integers(1, 4, len(left))
    weighted = BradleyTerry().fit(Comparisons.from_arrays(left, right, outcome, counts))
    repeated = BradleyTerry().fit(
        Comparisons.from_arrays(np.repeat(left, counts), np.repeat(right, counts), np.repeat(outcome, counts))
    )
    np.testing.assert_allclose(weighted.scores_, repeated.scores_, atol=1e-9)


def test_two_item_closed_form():
    # a beat b 7 times, lost 3: score difference log(7/3).
    model = BradleyTerry(tol=1e-13).fit(PairCounts.from_matrix([[0, 7], [3, 0]], items=["a", "b"]))
    assert model.scores_[0] - model.scores_[1] == pytest.approx(np.log(7 / 3), abs=1e-10)
    assert model.predict_proba("a", "b")[0] == pytest.approx(0.7, abs=1e-10)
    assert model.log_likelihood_ == pytest.approx(7 * np.log(0.7) + 3 * np.log(0.3), abs=1e-9)


def test_extreme_scores_do_not_overflow():
    # Strongly separated but strongly connected: 1e9 wins against 1 loss per
    # pair gives score gaps of about 20 (40 from top to bottom).
    big = 1e9
    # By symmetry the scores are (g, 0, -g); g solves item 0's likelihood equation.
    gap = brentq(lambda g: big * expit(-g) - expit(g) + big * expit(-2 * g) - expit(2 * g), 1, 40, xtol=1e-14)
    wins = np.array([[0, big, big], [1, 0, big], [1, 1, 0]], dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for solver in ("newton", "newton-cg", "newman"):
            model = BradleyTerry(solver=solver).fit(PairCounts.from_matrix(wins))
            assert np.all(np.isfinite(model.scores_)) and model.converged_, solver
            assert model.scores_[0] - model.scores_[2] == pytest.approx(2 * gap, abs=1e-6)
            p = model.predict_proba([0, 2], [2, 0])
            assert p[0] == pytest.approx(1.0) and 0.0 <= p[1] < 1e-16
        pairs = PairCounts.from_matrix(wins)
        theta = np.array([50.0, 0.0, -50.0])
        assert np.isfinite(kernels.bt_log_likelihood(theta, pairs))
        assert np.all(np.isfinite(kernels.bt_gradient(theta, pairs)))


def test_predict_proba_names_codes_and_errors():
    c = Comparisons.from_arrays(["x", "y", "z", "x"], ["y", "z", "x", "z"], [1, 1, 0, 0.5])
    m = BradleyTerry().fit(c)
    np.testing.assert_allclose(m.predict_proba(["x", "y"], ["y", "x"]).sum(), 1.0)
    np.testing.assert_allclose(m.predict_proba([0], [1]), m.predict_proba(["x"], ["y"]))
    with pytest.raises(bradley.ComparisonDataError, match="unknown item"):
        m.predict_proba("nobody", "x")
    with pytest.raises(bradley.NotFittedError):
        BradleyTerry().predict_proba("x", "y")


def test_anchor_shifts_scores_only():
    data, _ = bradley.simulate_bt(5, 500, seed=1, item_names=True)
    free = BradleyTerry().fit(data)
    anchored = BradleyTerry(anchor=("item2", 1.5)).fit(data)
    assert anchored.scores_[2] == pytest.approx(1.5)
    np.testing.assert_allclose(np.diff(anchored.scores_), np.diff(free.scores_), atol=1e-12)


def test_elo_scale():
    m = BradleyTerry().fit(PairCounts.from_matrix([[0, 10], [1, 0]]))
    elo = m.elo_scores_
    assert elo.mean() == pytest.approx(1000.0)
    assert elo[0] - elo[1] == pytest.approx(400.0)  # odds 10:1
    np.testing.assert_allclose(bradley.from_elo(elo), m.scores_)


def test_max_iter_warns_and_reports_non_convergence():
    data, _ = bradley.simulate_bt(30, 3000, seed=2)
    with pytest.warns(ConvergenceWarning, match="stopped after 2 iterations"):
        model = BradleyTerry(solver="mm", max_iter=2).fit(data)
    assert not model.converged_ and model.n_iter_ == 2


def test_summary_table():
    c = Comparisons.from_arrays(["a", "a", "b", "c"], ["b", "c", "c", "a"], [1, 1, 0.5, 1])
    table = BradleyTerry().fit(c).summary()
    assert list(table.columns) == ["item", "score", "se", "elo", "rank", "wins", "losses", "ties", "comparisons"]
    assert table["rank"].tolist() == [1, 2, 3]
    assert table["item"].iloc[0] == "a"
    assert table.set_index("item").loc["b", "ties"] == 1.0


def test_fit_from_dataframe_and_bad_parameters():
    frame = pd.DataFrame({"left": ["a", "b", "c"], "right": ["b", "c", "a"], "outcome": [1, 1, 1]})
    assert BradleyTerry().fit(frame).converged_
    with pytest.raises(ValueError, match="unknown solver"):
        BradleyTerry(solver="magic").fit(frame)
    with pytest.raises(ValueError, match="prior must be a positive"):
        BradleyTerry(prior=-1).fit(frame)


def test_dense_and_sparse_newton_agree_on_large_sparse_graph():
    data, _ = bradley.simulate_bt(2500, 150_000, seed=9)
    pairs = data.pair_counts()
    assert bradley.mle_existence_problem(pairs) is None
    for prior in (None, 4.0):
        sparse_fit = kernels.newton(pairs, dense=False, prior_variance=prior)
        dense_fit = kernels.newton(pairs, dense=True, prior_variance=prior)
        assert sparse_fit.converged and dense_fit.converged
        np.testing.assert_allclose(sparse_fit.scores, dense_fit.scores, atol=1e-6)


def test_kernels_gradient_matches_finite_differences(rng):
    left, right, outcome, weight = small_random_data(rng, n_rows=50)
    pairs = Comparisons.from_arrays(left, right, outcome, weight).pair_counts()
    theta = rng.normal(size=pairs.n_items)
    g = kernels.bt_gradient(theta, pairs, prior_variance=3.0)
    eps = 1e-6
    for k in range(pairs.n_items):
        e = np.zeros_like(theta)
        e[k] = eps
        f = lambda t: kernels.bt_log_likelihood(t, pairs) - 0.5 * t @ t / 3.0  # noqa: E731
        assert g[k] == pytest.approx((f(theta + e) - f(theta - e)) / (2 * eps), abs=1e-5)
    h = kernels.bt_neg_hessian(theta, pairs)
    np.testing.assert_allclose(h.sum(axis=1), 0.0, atol=1e-10)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n_items=st.integers(2, 8))
def test_invariant_to_side_swaps_and_item_relabelling(seed, n_items):
    rng = np.random.default_rng(seed)
    m = 60
    left = rng.integers(0, n_items, m)
    right = (left + rng.integers(1, n_items, m)) % n_items
    outcome = rng.choice([0.0, 0.5, 1.0, 0.8], m)
    items = np.arange(n_items)
    base = BradleyTerry(prior=3.0).fit(Comparisons.from_arrays(left, right, outcome, items=items))
    # The same judgments written the other way round.
    swapped = BradleyTerry(prior=3.0).fit(Comparisons.from_arrays(right, left, 1.0 - outcome, items=items))
    np.testing.assert_allclose(swapped.scores_, base.scores_, atol=1e-7)
    # Items renamed by a permutation: scores follow the names.
    perm = rng.permutation(n_items)
    relabelled = BradleyTerry(prior=3.0).fit(
        Comparisons.from_arrays(perm[left], perm[right], outcome, items=items)
    )
    np.testing.assert_allclose(relabelled.scores_[perm], base.scores_, atol=1e-7)


@pytest.mark.parametrize("solver", SOLVERS)
def test_two_items_and_bipartite_designs_converge_for_every_solver(solver):
    # Two items: a simultaneous Newman update would cycle between two gaps.
    two = BradleyTerry(solver=solver).fit(PairCounts.from_matrix([[0, 2], [1, 0]]))
    assert two.converged_ and two.scores_[0] - two.scores_[1] == pytest.approx(np.log(2), abs=1e-7)
    # Bipartite: every comparison is between group A and group B (e.g. models vs baselines).
    rng = np.random.default_rng(3)
    left = rng.integers(0, 4, 400)
    right = rng.integers(4, 9, 400)
    truth = rng.normal(size=9)
    outcome = (rng.random(400) < expit(truth[left] - truth[right])).astype(float)
    data = Comparisons.from_arrays(left, right, outcome)
    model = BradleyTerry(solver=solver).fit(data)
    theta, _ = brute_force_bt(left, right, outcome, 9)
    assert model.converged_
    np.testing.assert_allclose(model.scores_, theta, atol=1e-6)


def test_badly_conditioned_chain_falls_back_to_cholesky():
    # Items compared only with their neighbours in a long chain: the information
    # matrix is a path Laplacian (condition number ~ n^2), where CG stalls.
    n = 1500
    rng = np.random.default_rng(8)
    truth = np.cumsum(rng.normal(0, 0.05, n))
    left = np.repeat(np.arange(n - 1), 30)
    right = left + 1
    outcome = (rng.random(len(left)) < expit(truth[left] - truth[right])).astype(float)
    data = Comparisons.from_arrays(left, right, outcome)
    auto = BradleyTerry().fit(data)
    dense = kernels.newton(data.pair_counts(), dense=True)
    assert auto.converged_ and auto.solver_ == "newton"
    np.testing.assert_allclose(auto.scores_, dense.scores, atol=1e-6)


def test_summary_reports_identifiability():
    data, _ = bradley.simulate_bt(5, 500, seed=1, item_names=True)
    assert BradleyTerry().fit(data).summary().attrs["identifiability"] == "scores centred to mean zero"
    anchored = BradleyTerry(anchor=("item2", 1.0), prior=4.0).fit(data).summary().attrs["identifiability"]
    assert "item2 = 1" in anchored and "prior" in anchored


@pytest.mark.parametrize("solver", SOLVERS)
def test_every_solver_is_right_or_says_so_on_saturated_weighted_data(solver):
    # a>b e^30 : 1, b>c e^30 : 1, a>c e^60 : 1: the exact MLE is (30, 0, -30), and
    # the default start (~(60, 0, -60)) has every probability saturated. Newton
    # used to end at ~1e41 (newton-cg at NaN) and lbfgs near 1e252 with log1p(-1)
    # warnings; a solver that cannot get there must warn, not return a wrong answer.
    D = 30.0
    pairs = PairCounts(np.array([0, 0, 1]), np.array([1, 2, 2]), np.exp([D, 2 * D, D]), np.ones(3), np.zeros(3),
                       np.array(["a", "b", "c"], dtype=object))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = BradleyTerry(solver=solver, max_iter=20_000 if solver == "mm" else None).fit(pairs)
    warned = any(issubclass(w.category, ConvergenceWarning) for w in caught)
    assert not [w for w in caught if not issubclass(w.category, ConvergenceWarning)]
    if model.converged_:
        assert not warned
        np.testing.assert_allclose(np.asarray(model.scores_), [D, 0.0, -D], atol=1e-6)
    else:
        assert warned
    if solver in ("newton", "newton-cg", "newman"):
        assert model.converged_


# --------------------------------------------------------------------------- warm start (init=)

def _arena_like(rng, truth, n_rows):
    n = len(truth)
    left = rng.integers(0, n, n_rows)
    right = (left + rng.integers(1, n, n_rows)) % n
    u = rng.random(n_rows)
    outcome = np.where(u < 0.08, 0.5, (rng.random(n_rows) < expit(truth[left] - truth[right])).astype(float))
    names = np.array([f"m{k:03d}" for k in range(n)], dtype=object)
    return names[left], names[right], outcome


@pytest.mark.parametrize("solver", ["auto", "mm", "newman"])
def test_warm_start_after_a_one_percent_append_same_optimum_fewer_iterations(solver):
    rng = np.random.default_rng(11)
    truth = rng.normal(0, 1.0, 301)
    left, right, outcome = _arena_like(rng, truth[:300], 60_000)  # yesterday: 300 items
    yesterday = BradleyTerry(solver=solver).fit(Comparisons.from_arrays(left, right, outcome))
    new_l, new_r, new_o = _arena_like(rng, truth[:300], 590)  # today: 1% more games, one new item among them
    new_l = np.concatenate([new_l, np.full(10, "m300", dtype=object)])
    new_r = np.concatenate([new_r, np.array([f"m{k:03d}" for k in range(10)], dtype=object)])
    new_o = np.concatenate([new_o, np.tile([1.0, 0.0], 5)])
    data = Comparisons.from_arrays(np.concatenate([left, new_l]), np.concatenate([right, new_r]),
                                   np.concatenate([outcome, new_o]))
    assert data.n_items == 301
    cold = BradleyTerry(solver=solver).fit(data)
    for init in (yesterday, pd.Series(yesterday.scores_, index=yesterday.items_),
                 dict(zip(yesterday.items_, yesterday.scores_))):
        warm = BradleyTerry(solver=solver, init=init).fit(data)
        assert warm.converged_ and cold.converged_
        np.testing.assert_allclose(warm.scores_, cold.scores_, atol=1e-8, rtol=0)
        assert warm.log_likelihood_ == pytest.approx(cold.log_likelihood_, rel=1e-12)
        if solver == "auto":
            # Newton converges quadratically from either start (measured: 4 and 4 iterations here);
            # the warm start must not cost more
            assert warm.n_iter_ <= cold.n_iter_, (warm.n_iter_, cold.n_iter_)
        else:
            assert warm.n_iter_ < cold.n_iter_, (warm.n_iter_, cold.n_iter_)


def test_warm_start_alignment_and_errors():
    pairs = PairCounts.from_matrix([[0, 2, 1], [1, 0, 2], [2, 1, 0]], items=["a", "b", "c"])
    # names are aligned, unknown names ignored, new items start at the mean of the known scores, centred
    start = BradleyTerry(init={"b": 3.0, "a": 1.0, "zz": 9.0})._initial_scores(pairs)
    np.testing.assert_array_equal(start, [-1.0, 1.0, 0.0])
    np.testing.assert_array_equal(BradleyTerry(init=[0.5, 0.0, -0.5])._initial_scores(pairs), [0.5, 0.0, -0.5])
    reference = BradleyTerry().fit(pairs)
    for init in ([1.0, 2.0], pd.Series([1.0, 2.0], index=["a", "a"]), {"a": np.nan}, [0.0, np.inf, 0.0]):
        with pytest.raises(ValueError, match="init"):
            BradleyTerry(init=init).fit(pairs)
    for kwargs in ({}, {"solver": "mm"}, {"prior": 2.0}, {"bias_reduction": True}):
        warm = BradleyTerry(init=[2.0, -2.0, 3.0], **kwargs).fit(pairs)
        cold = BradleyTerry(**kwargs).fit(pairs)
        assert warm.converged_
        np.testing.assert_allclose(warm.scores_, cold.scores_, atol=1e-8)
    np.testing.assert_allclose(BradleyTerry(init=reference).fit(pairs).scores_, reference.scores_, atol=1e-12)
    assert "init=..." in repr(BradleyTerry(init=reference))


def test_warm_start_one_alignment_rule_and_bad_init():
    from bradley.aggregate import warm_start_scores
    from bradley.errors import DataWarning

    pairs = PairCounts.from_matrix([[0, 2, 1], [1, 0, 2], [2, 1, 0]], items=["a", "b", "c"])
    prev = {"a": 1.0, "b": 3.0, "zz": 20.0}
    by_model = BradleyTerry(init=prev)._initial_scores(pairs)
    by_function = warm_start_scores(list(prev), list(prev.values()), pairs.items)
    np.testing.assert_array_equal(by_model, by_function)
    np.testing.assert_array_equal(by_model, [-1.0, 1.0, 0.0])  # c at the mean of a and b; "zz" plays no part
    # an init naming none of the items (here ints against string labels): a warning and the default start
    two = PairCounts.from_matrix([[0, 1], [1, 0]], items=["1", "2"])
    with pytest.warns(DataWarning, match="names none"):
        assert BradleyTerry(init={1: 0.5, 2: 1.0})._initial_scores(two) is None
    with pytest.warns(DataWarning, match="names none"):
        model = BradleyTerry(init={1: 0.5, 2: 1.0}).fit(two)
    np.testing.assert_allclose(model.scores_, BradleyTerry().fit(two).scores_, atol=1e-12)
    # a table or another kind of model is refused with a clear TypeError
    table = pd.DataFrame({"item": ["a", "b", "c"], "score": [1.0, 2.0, 3.0]})
    with pytest.raises(TypeError, match="init takes"):
        BradleyTerry(init=table).fit(pairs)
    class OtherModel:  # a fitted model of another family (its scores are on another scale)
        items_ = np.array(["a", "b", "c"], dtype=object)
        scores_ = np.array([1.0, 2.0, 3.0])

        def fit(self, data):
            return self

    with pytest.raises(TypeError, match="init takes"):
        BradleyTerry(init=OtherModel()).fit(pairs)
