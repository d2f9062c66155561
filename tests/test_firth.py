"""Bias-reduced (Firth) Bradley-Terry: BradleyTerry(bias_reduction=True).

Truths used here, all independent of the package's solver: the penalised
log-likelihood ``l + 1/2 log det I_r`` written out in the test (``I_r`` the
information with one item's row and column deleted) and maximised by scipy;
the closed form for two items (Firth's estimate of one binomial log-odds);
and a simulation of the bias against plain maximum likelihood.
"""

import warnings

import numpy as np
import pytest
from scipy import optimize
from scipy.special import expit, log_expit

import bradley
from bradley import BradleyTerry, Comparisons, ConvergenceWarning, MLEDoesNotExistError, PairCounts


def penalized_negloglik(left, right, outcome, weight, n_items, ref):
    """-(l + 1/2 log det I_r) in the parametrisation with item ``ref`` fixed at 0."""

    def f(free):
        theta = np.insert(free, ref, 0.0)
        d = theta[left] - theta[right]
        ll = np.sum(weight * (outcome * log_expit(d) + (1 - outcome) * log_expit(-d)))
        h = weight * expit(d) * expit(-d)
        info = np.zeros((n_items, n_items))
        np.add.at(info, (left, left), h)
        np.add.at(info, (right, right), h)
        np.add.at(info, (left, right), -h)
        np.add.at(info, (right, left), -h)
        reduced = np.delete(np.delete(info, ref, 0), ref, 1)
        return -(ll + 0.5 * np.linalg.slogdet(reduced)[1])

    return f


def brute_force_firth(left, right, outcome, weight, n_items, ref=0):
    f = penalized_negloglik(left, right, outcome, weight, n_items, ref)
    res = optimize.minimize(f, np.zeros(n_items - 1), method="BFGS", options={"gtol": 1e-11, "maxiter": 10_000})
    theta = np.insert(res.x, ref, 0.0)
    return theta - theta.mean(), -res.fun


def sparse_rows(seed, n_items=7, n_rows=30):
    rng = np.random.default_rng(seed)
    truth = rng.normal(0, 1.0, n_items)
    left = np.concatenate([np.arange(n_items), rng.integers(0, n_items, n_rows - n_items)])
    right = (left + rng.integers(1, n_items, n_rows)) % n_items
    right[:n_items] = (np.arange(n_items) + 1) % n_items  # a cycle: the graph is connected
    p = expit(truth[left] - truth[right])
    outcome = np.where(rng.random(n_rows) < 0.1, 0.5, (rng.random(n_rows) < p).astype(float))
    weight = rng.uniform(0.5, 2.0, n_rows)
    return left, right, outcome, weight


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_maximises_the_penalised_likelihood_written_out(seed):
    left, right, outcome, weight = sparse_rows(seed)
    data = Comparisons.from_arrays(left, right, outcome, weight)
    model = BradleyTerry(bias_reduction=True).fit(data)
    theta, value = brute_force_firth(left, right, outcome, weight, 7)
    assert model.converged_ and model.n_iter_ >= 1
    np.testing.assert_allclose(model.scores_, theta, atol=2e-6)
    assert model.log_posterior_ == pytest.approx(value, rel=1e-9, abs=1e-9)
    d = model.scores_[left] - model.scores_[right]
    ll = np.sum(weight * (outcome * log_expit(d) + (1 - outcome) * log_expit(-d)))
    assert model.log_likelihood_ == pytest.approx(ll, rel=1e-12)
    assert abs(model.scores_.mean()) < 1e-12


def test_estimate_does_not_depend_on_the_reference_item():
    left, right, outcome, weight = sparse_rows(3)
    # matrix-tree theorem: the penalty is the same whichever item is deleted
    rng = np.random.default_rng(0)
    theta = rng.normal(size=7)
    values = [penalized_negloglik(left, right, outcome, weight, 7, ref)(np.delete(theta - theta[ref], ref))
              for ref in range(7)]
    np.testing.assert_allclose(values, values[0], rtol=1e-12)
    fits = [brute_force_firth(left, right, outcome, weight, 7, ref)[0] for ref in (0, 4)]
    np.testing.assert_allclose(fits[0], fits[1], atol=2e-6)
    model = BradleyTerry(bias_reduction=True).fit(Comparisons.from_arrays(left, right, outcome, weight))
    np.testing.assert_allclose(model.scores_, fits[1], atol=2e-6)
    # anchoring is a shift only
    anchored = BradleyTerry(bias_reduction=True, anchor=3).fit(Comparisons.from_arrays(left, right, outcome, weight))
    np.testing.assert_allclose(anchored.scores_, model.scores_ - model.scores_[3], atol=1e-12)


@pytest.mark.parametrize("wins,games", [(0, 5), (1, 5), (3, 4), (5, 5), (2.5, 6)])
def test_two_items_closed_form(wins, games):
    # Firth's estimate of one binomial log-odds: log((w + 1/2) / (m - w + 1/2))
    pairs = PairCounts.from_matrix([[0, wins], [games - wins, 0]], items=["x", "y"])
    model = BradleyTerry(bias_reduction=True).fit(pairs)
    gap = model.scores_[0] - model.scores_[1]
    assert gap == pytest.approx(np.log((wins + 0.5) / (games - wins + 0.5)), abs=1e-9)
    p = expit(gap)
    assert model.standard_errors("y")["x"] == pytest.approx(1 / np.sqrt(games * p * (1 - p)), rel=1e-9)


def test_finite_where_the_mle_does_not_exist():
    # "top" never lost: the MLE is infinite, the bias-reduced estimate is not
    left = ["top", "top", "top", "a", "b", "a", "c", "b", "c"]
    right = ["a", "b", "c", "b", "a", "c", "a", "c", "b"]
    data = Comparisons.from_arrays(left, right, np.ones(9))
    with pytest.raises(MLEDoesNotExistError):
        BradleyTerry().fit(data)
    model = BradleyTerry(bias_reduction=True).fit(data)
    assert model.converged_ and np.all(np.isfinite(model.scores_))
    assert model.items_[np.argmax(model.scores_)] == "top"
    theta, _ = brute_force_firth(data.left, data.right, data.outcome, np.ones(9), 4)
    np.testing.assert_allclose(model.scores_, theta, atol=2e-6)
    assert np.all(np.isfinite(model.standard_errors()))


def test_a_model_with_two_battles_in_an_arena():
    # a newcomer with two wins, and an item that never won: both finite
    rng = np.random.default_rng(4)
    names = np.array(["a", "b", "c", "d"])
    left = rng.integers(0, 4, 200)
    right = (left + rng.integers(1, 4, 200)) % 4
    outcome = (rng.random(200) < expit(0.5 * (right - left))).astype(float)
    left_n = np.concatenate([names[left], ["new", "new"], ["loser"] * 3])
    right_n = np.concatenate([names[right], ["a", "c"], ["b", "c", "d"]])
    data = Comparisons.from_arrays(left_n, right_n, np.concatenate([outcome, [1, 1], [0, 0, 0]]))
    model = BradleyTerry(bias_reduction=True).fit(data)
    s = dict(zip(model.items_, model.scores_))
    assert np.isfinite(s["new"]) and np.isfinite(s["loser"])
    assert s["loser"] == min(s.values())
    board = bradley.leaderboard(data, model=BradleyTerry(bias_reduction=True), ci="fisher")
    t = board.table.set_index("item")
    assert np.all(np.isfinite(t["se"])) and t.loc["new", "se"] > t.loc["a", "se"]
    assert "bias-reduced" in board.to_text()
    assert board.to_dict()["bias_reduction"] is True
    with pytest.warns(bradley.DataWarning, match="not linked by any comparison"):
        # a replicate that draws neither of the newcomer's two battles cannot place it
        bradley.leaderboard(data, model=BradleyTerry(bias_reduction=True), ci="bootstrap", rounds=20, seed=1)


def test_bootstrap_of_an_unbeaten_item_needs_no_fallback():
    # "top" never lost in 30 battles: the MLE exists in no replicate (plain BT
    # would fall back to a prior in each), the bias-reduced fit in every one
    rng = np.random.default_rng(6)
    names = np.array(["a", "b", "c"])
    left = rng.integers(0, 3, 150)
    right = (left + rng.integers(1, 3, 150)) % 3
    outcome = (rng.random(150) < 0.5).astype(float)
    data = Comparisons.from_arrays(np.concatenate([names[left], ["top"] * 30]),
                                   np.concatenate([names[right], names[np.arange(30) % 3]]),
                                   np.concatenate([outcome, np.ones(30)]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        board = bradley.leaderboard(data, model=BradleyTerry(bias_reduction=True), ci="bootstrap", rounds=20)
    assert board.ci["fallback_replicates"] == 0
    assert board.table["item"].iloc[0] == "top" and np.isfinite(board.table["ci_high"].iloc[0])


def test_less_biased_than_maximum_likelihood():
    # 4 items, 12 games per pair: the MLE exists in most replicates and
    # overstates the spread; the bias-reduced estimate removes most of that
    rng = np.random.default_rng(5)
    truth = np.array([1.0, 0.3, -0.3, -1.0])
    i, j = np.triu_indices(4, 1)
    ml_err, br_err = [], []
    for _ in range(300):
        wins = rng.binomial(12, expit(truth[i] - truth[j]))
        matrix = np.zeros((4, 4))
        matrix[i, j], matrix[j, i] = wins, 12 - wins
        pairs = PairCounts.from_matrix(matrix)
        br = BradleyTerry(bias_reduction=True).fit(pairs)
        br_err.append(br.scores_ - truth)
        try:
            ml = BradleyTerry().fit(pairs)
        except MLEDoesNotExistError:
            continue
        ml_err.append(ml.scores_ - truth)
    ml_bias = np.abs(np.mean(ml_err, axis=0))
    br_bias = np.abs(np.mean(br_err, axis=0))
    assert len(ml_err) > 250
    # extremes: ML bias ~0.06-0.1 away from zero, bias reduction well under half of it
    assert np.all(br_bias[[0, 3]] < 0.5 * ml_bias[[0, 3]])


def test_disconnected_data_and_bad_options_raise():
    data = Comparisons.from_arrays(["a", "b", "c", "d"], ["b", "a", "d", "c"], [1, 1, 1, 0])
    with pytest.raises(MLEDoesNotExistError, match="2 groups never compared"):
        BradleyTerry(bias_reduction=True).fit(data)
    ok = Comparisons.from_arrays(["a", "b"], ["b", "a"], [1, 1])
    with pytest.raises(ValueError, match="mutually exclusive"):
        BradleyTerry(bias_reduction=True, prior=1.0).fit(ok)
    with pytest.raises(ValueError, match="own solver"):
        BradleyTerry(bias_reduction=True, solver="mm").fit(ok)


def test_stopping_early_warns_and_reports():
    left, right, outcome, weight = sparse_rows(6)
    data = Comparisons.from_arrays(left, right, outcome, weight)
    with pytest.warns(ConvergenceWarning, match="stopped after 1 iterations"):
        model = BradleyTerry(bias_reduction=True, max_iter=1).fit(data)
    assert not model.converged_ and model.n_iter_ == 1
    assert model.solver_ == "firth"


def test_extreme_scores_do_not_overflow():
    # a chain of strong dominance: true gaps of ~25 log units between neighbours
    matrix = np.zeros((4, 4))
    for k in range(3):
        matrix[k, k + 1] = 1e12
        matrix[k + 1, k] = 1.0
    model = BradleyTerry(bias_reduction=True).fit(PairCounts.from_matrix(matrix))
    assert model.converged_ and np.all(np.isfinite(model.scores_))
    assert np.all(np.diff(model.scores_) < -20)
