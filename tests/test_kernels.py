"""Fast kernels (aggregation, BT likelihood passes) against brute-force truths."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import log_expit

import bradley
from bradley import Comparisons, PairCounts
from bradley.solvers import bt


def counted(left, right, outcome, n):
    """Pair counts by a Python loop over rows: (first, second) -> [wins first, wins second, ties]."""
    table: dict[tuple[int, int], list[float]] = {}
    for a, b, o in zip(left.tolist(), right.tolist(), outcome.tolist()):
        key = (min(a, b), max(a, b))
        row = table.setdefault(key, [0.0, 0.0, 0.0])
        if o == 0.5:
            row[2] += 1
        elif (o == 1.0) == (a < b):
            row[0] += 1
        else:
            row[1] += 1
    keys = sorted(table)
    return np.array(keys).reshape(-1, 2), np.array([table[k] for k in keys]).reshape(-1, 3)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("path", ["dense", "sorted"])
def test_hard_outcome_aggregation_matches_a_loop(monkeypatch, ties, path):
    rng = np.random.default_rng(7)
    n, m = 30, 4000
    left = rng.integers(0, n, m)
    right = (left + rng.integers(1, n, m)) % n
    outcome = rng.choice([0.0, 1.0, 0.5] if ties else [0.0, 1.0], m)
    if path == "sorted":
        monkeypatch.setattr(bradley.data, "_DENSE_KEY_LIMIT", 10)
    p = Comparisons.from_arrays(left, right, outcome).pair_counts()
    keys, table = counted(left, right, outcome, n)
    np.testing.assert_array_equal(np.c_[p.first, p.second], keys)
    np.testing.assert_array_equal(np.c_[p.wins_first, p.wins_second, p.ties], table)


def test_sorted_aggregation_with_64_bit_codes(monkeypatch):
    # 30,000 items: 3 n^2 codes do not fit 32 bits, so the sort stays in int64.
    rng = np.random.default_rng(3)
    n, m = 30_000, 3000
    left = rng.integers(0, n, m)
    right = (left + rng.integers(1, n, m)) % n
    outcome = rng.choice([0.0, 1.0, 0.5], m)
    p = Comparisons.from_arrays(left, right, outcome, items=np.arange(n)).pair_counts()
    keys, table = counted(left, right, outcome, n)
    np.testing.assert_array_equal(np.c_[p.first, p.second], keys)
    np.testing.assert_array_equal(np.c_[p.wins_first, p.wins_second, p.ties], table)


def random_pairs(n: int, m: int, seed: int, ties: bool = True, spread: float = 1.0) -> tuple[PairCounts, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.normal(0.0, spread, n)
    left = rng.integers(0, n, m)
    right = (left + rng.integers(1, n, m)) % n
    p = 1.0 / (1.0 + np.exp(-(truth[left] - truth[right])))
    outcome = (rng.random(m) < p).astype(float)
    if ties:
        outcome[rng.random(m) < 0.1] = 0.5
    return Comparisons.from_arrays(left, right, outcome, items=np.arange(n)).pair_counts(), truth


def direct_log_likelihood(theta: np.ndarray, pairs: PairCounts) -> float:
    d = theta[pairs.first] - theta[pairs.second]
    a = pairs.wins_first + 0.5 * pairs.ties
    b = pairs.wins_second + 0.5 * pairs.ties
    return float(np.sum(a * log_expit(d) + b * log_expit(-d)))


@pytest.mark.parametrize("ties", [False, True])
def test_probabilities_have_full_relative_precision_at_extreme_scores(ties):
    pairs, _ = random_pairs(40, 2000, 1, ties=ties)
    prob = bt._Problem.build(pairs, None)
    theta = np.linspace(-350.0, 350.0, 40)  # differences up to 700
    p, q = prob.probabilities(theta)
    d = theta[prob.i] - theta[prob.j]
    # each of p and q to full relative precision (a tiny one is never 1 - the other)
    np.testing.assert_allclose(p, np.exp(log_expit(d)), rtol=1e-12, atol=0)
    np.testing.assert_allclose(q, np.exp(log_expit(-d)), rtol=1e-12, atol=0)
    assert bt.bt_log_likelihood(theta, pairs) == pytest.approx(direct_log_likelihood(theta, pairs), rel=1e-12)
    theta = np.linspace(-50.0, 50.0, 40) * 20  # beyond the clipping: still finite and exact
    assert bt.bt_log_likelihood(theta, pairs) == pytest.approx(direct_log_likelihood(theta, pairs), rel=1e-12)


def test_gradient_matches_finite_differences():
    pairs, truth = random_pairs(12, 600, 2)
    theta = truth + 0.3
    grad = bt.bt_gradient(theta, pairs, prior_variance=4.0)

    def post(t: np.ndarray) -> float:
        return direct_log_likelihood(t, pairs) - 0.5 * float(t @ t) / 4.0

    eps = 1e-6
    numeric = np.array([(post(theta + eps * e) - post(theta - eps * e)) / (2 * eps) for e in np.eye(12)])
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-6)


def test_unsorted_pair_counts_give_the_same_fit():
    pairs, _ = random_pairs(30, 3000, 3)
    order = np.random.default_rng(0).permutation(pairs.n_pairs)
    shuffled = PairCounts(pairs.first[order], pairs.second[order], pairs.wins_first[order],
                          pairs.wins_second[order], pairs.ties[order], pairs.items)
    a, b = bt.newton(pairs), bt.newton(shuffled)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-12)
    assert a.log_likelihood == pytest.approx(b.log_likelihood, rel=1e-14)


@pytest.mark.parametrize("n_items", [30, 400])  # dense Cholesky and sparse CG
def test_newton_reports_converged_with_the_reused_information(n_items):
    pairs, truth = random_pairs(n_items, 40 * n_items, 4, spread=2.0)
    r = bt.newton(pairs)
    prob = bt._Problem.build(pairs, None)
    p, q = prob.probabilities(r.scores)
    step = prob.step_size(prob.gradient_from(r.scores, p, q), p, q)
    assert r.converged and step <= bt.DEFAULT_TOL
    assert r.log_likelihood == pytest.approx(direct_log_likelihood(r.scores, pairs), rel=1e-13)
    # every solver lands on the same optimum
    for solver in (bt.mm, bt.newman, bt.lbfgs):
        np.testing.assert_allclose(solver(pairs).scores, r.scores, atol=1e-6)


def test_scores_of_plus_minus_50_fit_without_overflow():
    # Near-deterministic outcomes between far-apart items: no overflow warnings (errors in this suite).
    n = 20
    rng = np.random.default_rng(5)
    left = rng.integers(0, n, 4000)
    right = (left + rng.integers(1, n, 4000)) % n
    outcome = (left > right).astype(float)
    # neighbours in the order play soft (probability) games at a gap of 100 / 19: scores near +-50
    close = np.abs(left - right) == 1
    gap = 100.0 / (n - 1)
    outcome[close] = np.where(left[close] > right[close], 1.0, 0.0) / (1.0 + np.exp(-gap)) + np.where(
        left[close] > right[close], 0.0, 1.0) / (1.0 + np.exp(gap))
    data = Comparisons.from_arrays(left, right, outcome, items=np.arange(n))
    model = bradley.BradleyTerry().fit(data)
    assert model.converged_ and np.all(np.isfinite(model.scores_))
    assert np.all(np.diff(model.scores_) > 0) and model.scores_[-1] > 45 and model.scores_[0] < -45


def lopsided_triangle(D: float) -> PairCounts:
    """a>b e^D vs 1, b>c e^D vs 1, a>c e^(2D) vs 1: the MLE is exactly (D, 0, -D).

    (Every pair's win ratio equals exp of its score gap, so the likelihood
    equations hold pair by pair.) The smoothed win ratios start at about
    (2D, 0, -2D), where every probability is saturated: the Fisher information
    is ~exp(-2D) and the raw Newton step ~exp(2D).
    """
    return PairCounts(np.array([0, 0, 1]), np.array([1, 2, 2]), np.exp([D, 2 * D, D]), np.ones(3), np.zeros(3),
                      np.array(["a", "b", "c"], dtype=object))


@pytest.mark.parametrize("D", [15.0, 30.0, 35.0, 50.0])
@pytest.mark.parametrize("dense", [True, False])
def test_newton_never_steps_downhill_on_saturated_data(D, dense):
    # Regression: Newton accepted steps that shrank the gradient but lowered the
    # log-posterior, ending at scores ~1e41..1e58 (D >= 30), or NaN with CG.
    pairs = lopsided_triangle(D)
    r = bt.newton(pairs, dense=dense)
    assert r.converged
    np.testing.assert_allclose(r.scores, [D, 0.0, -D], atol=1e-7)
    assert r.log_likelihood == pytest.approx(direct_log_likelihood(np.array([D, 0.0, -D]), pairs), rel=1e-12)
    # the k-th iterate (max_iter=k) never has a lower exact log-likelihood than the one before
    path = [direct_log_likelihood(bt.newton(pairs, dense=dense, max_iter=k).scores, pairs)
            for k in range(1, r.n_iter + 1)]
    assert np.all(np.diff(path) >= -1e-12 * np.abs(path[1:]))


@pytest.mark.parametrize("D", [30.0, 50.0])
def test_bradley_terry_default_fit_on_weighted_lopsided_rows(D):
    frame = pd.DataFrame({"winner": ["a", "b", "b", "c", "a", "c"], "loser": ["b", "a", "c", "b", "c", "a"],
                          "w": [np.exp(D), 1.0, np.exp(D), 1.0, np.exp(2 * D), 1.0]})
    data = bradley.read_comparisons(frame, winner="winner", loser="loser", weight="w")
    model = bradley.BradleyTerry().fit(data)
    assert model.converged_
    np.testing.assert_allclose(np.asarray(model.scores_), [D, 0.0, -D], atol=1e-7)


@pytest.mark.parametrize("big", [1e3, 1e8])
@pytest.mark.parametrize("solver", ["newton", "newman"])
def test_count_chain_with_extreme_win_ratios(big, solver):
    # m_{k+1} beats m_k big : 1: the MLE gaps are exactly log(big).
    k = 20
    pairs = PairCounts(np.arange(k - 1), np.arange(1, k), np.ones(k - 1), np.full(k - 1, big), np.zeros(k - 1),
                       np.arange(k).astype(object))
    r = bt.SOLVERS[solver](pairs)
    assert r.converged
    np.testing.assert_allclose(np.diff(r.scores), np.log(big), atol=1e-6)


def test_exact_gain_and_its_cheap_lower_bound():
    # gain() against a direct difference of log-likelihoods (log_expit), at
    # steps from 1e-3 to 300; the curvature bound never exceeds the true gain.
    pairs, truth = random_pairs(25, 1500, 11)
    rng = np.random.default_rng(0)
    for prior in (None, 2.0):
        prob = bt._Problem.build(pairs, prior)
        precision = 0.0 if prior is None else 1.0 / prior
        for scale in (1e-3, 0.1, 1.0, 10.0, 300.0):
            theta = 3.0 * truth
            step = rng.normal(0.0, scale, 25)
            p, q = prob.probabilities(theta)

            def post(t):
                return direct_log_likelihood(t, pairs) - 0.5 * precision * float(t @ t)

            exact = post(theta + step) - post(theta)
            gain = prob.gain(theta, step, p, q)
            assert gain == pytest.approx(exact, rel=1e-9, abs=1e-9 * abs(post(theta)))
            grad, h = prob.gradient_from(theta, p, q), prob.curvature(p, q)
            span = float(step.max() - step.min())
            assert prob.gain_lower_bound(grad, h, step, span) <= gain + 1e-9 * abs(gain)
    # near the optimum the bound is tight enough to certify a Newton step
    r = bt.newton(pairs)
    prob = bt._Problem.build(pairs, None)
    theta = r.scores + rng.normal(0.0, 1e-3, 25)
    p, q = prob.probabilities(theta)
    grad, h = prob.gradient_from(theta, p, q), prob.curvature(p, q)
    step = np.linalg.lstsq(bt._dense_neg_hessian(prob, theta, add_gauge=True), grad, rcond=None)[0]
    assert prob.gain_lower_bound(grad, h, step, float(np.ptp(step))) > 0


def test_from_codes_uses_int64_codes_without_copy_and_keeps_its_errors():
    left, right = np.array([0, 1, 2, 3]), np.array([1, 2, 3, 0])
    c = Comparisons.from_codes(left, right, np.ones(4))
    assert np.shares_memory(c.left, left) and np.shares_memory(c.right, right)  # no per-call copy
    np.testing.assert_array_equal(Comparisons.from_codes(left.astype(np.int32), right, np.ones(4)).left, left)
    with pytest.raises(bradley.ComparisonDataError, match="negative item codes in row 1"):
        Comparisons.from_codes([0, -1, 2], [1, 2, 0], np.ones(3))
    with pytest.raises(bradley.ComparisonDataError, match=r"out of range in row 2.*number of items \(3\)"):
        Comparisons.from_codes([0, 1, 2], [1, 2, 5], np.ones(3), items=3)
    with pytest.raises(bradley.ComparisonDataError, match="whole numbers"):
        Comparisons.from_codes([0, 1.5], [1, 0], np.ones(2))


@pytest.mark.parametrize("solver", ["newton", "newman", "mm", "lbfgs"])
def test_every_solver_handles_tiny_counts_itself(solver):
    # Callers such as the bootstrap use the kernels directly: the rescaling of tiny counts
    # must live in the kernels, with likelihoods reported on the data's own scale.
    data, _ = bradley.simulate_bt(10, 2000, seed=3)
    pairs = data.pair_counts()
    tiny = bradley.PairCounts(pairs.first, pairs.second, pairs.wins_first * 1e-20, pairs.wins_second * 1e-20,
                              pairs.ties * 1e-20, pairs.items)
    base, small = bt.SOLVERS[solver](pairs), bt.SOLVERS[solver](tiny)
    assert small.converged
    np.testing.assert_allclose(small.scores, base.scores, atol=1e-6)
    assert small.log_likelihood == pytest.approx(base.log_likelihood * 1e-20, rel=1e-8)
    assert bt.bt_log_likelihood(small.scores, tiny) == pytest.approx(small.log_likelihood, rel=1e-10)
