"""The lean Newton-CG path for ~1e8 pairs (bradley.solvers.bt_lean), checked at a size that runs in a second."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from scipy.special import expit, log_expit

import bradley
from bradley.data import PairCounts
from bradley.solvers import bt, bt_lean

N_ITEMS = 2_500  # above DENSE_NEWTON_MAX_ITEMS, so the lean path is eligible


def _pairs(seed: int = 0, n_pairs: int = 60_000, ties: bool = True, shuffle: bool = False) -> PairCounts:
    rng = np.random.default_rng(seed)
    n = N_ITEMS
    strength = rng.normal(0, 1.5, n)
    a = rng.integers(0, n, 3 * n_pairs)
    b = rng.integers(0, n, 3 * n_pairs)
    keep = a != b
    i, j = np.minimum(a, b)[keep], np.maximum(a, b)[keep]
    key = np.unique(i * n + j)[:n_pairs]
    ring = np.arange(n)  # a cycle won both ways keeps the MLE finite
    ring_key = np.minimum(ring, (ring + 1) % n) * n + np.maximum(ring, (ring + 1) % n)
    key = np.unique(np.concatenate([key, ring_key]))
    i, j = key // n, key % n
    games = rng.poisson(2.0, len(key)) + 1
    p = expit(strength[i] - strength[j])
    t = rng.binomial(games, 0.08) if ties else np.zeros(len(key), dtype=np.int64)
    wf = rng.binomial(games - t, p)
    ws = games - t - wf
    on_ring = np.isin(key, ring_key)
    wf[on_ring] += 1
    ws[on_ring] += 1
    if shuffle:
        order = rng.permutation(len(key))
        i, j, wf, ws, t = i[order], j[order], wf[order], ws[order], t[order]
    items = np.array([f"m{k}" for k in range(n)], dtype=object)
    return PairCounts(i.astype(np.int64), j.astype(np.int64), wf.astype(float), ws.astype(float),
                      t.astype(float), items)


def _solve(pairs: PairCounts, lean: bool, monkeypatch: pytest.MonkeyPatch, **kwargs) -> bt.SolverResult:
    monkeypatch.setattr(bt_lean, "LEAN_MIN_PAIRS", 0 if lean else 10**18)
    return bt.newton(pairs, **kwargs)


def _gradient(scores: np.ndarray, pairs: PairCounts, precision: float = 0.0) -> np.ndarray:
    """Gradient of the BT log-posterior written out independently (ties as half wins)."""
    d = scores[pairs.first] - scores[pairs.second]
    a_ij = pairs.wins_first + pairs.ties / 2
    a_ji = pairs.wins_second + pairs.ties / 2
    r = a_ij * expit(-d) - a_ji * expit(d)
    n = pairs.n_items
    return np.bincount(pairs.first, r, n) - np.bincount(pairs.second, r, n) - precision * scores


@pytest.mark.parametrize("ties", [True, False])
@pytest.mark.parametrize("prior", [None, 4.0])
@pytest.mark.parametrize("chunk", [1 << 18, 5_000])
def test_lean_equals_general_path(ties, prior, chunk, monkeypatch):
    monkeypatch.setattr(bt_lean, "CHUNK", chunk)  # one chunk / 13 chunks, segments straddling their edges
    pairs = _pairs(ties=ties)
    general = _solve(pairs, False, monkeypatch, prior_variance=prior)
    lean = _solve(pairs, True, monkeypatch, prior_variance=prior)
    assert lean.solver == general.solver == "newton-cg"
    assert lean.converged and general.converged
    assert lean.n_iter == general.n_iter
    np.testing.assert_allclose(lean.scores, general.scores, atol=1e-13, rtol=0)
    assert lean.log_likelihood == pytest.approx(general.log_likelihood, rel=1e-12)
    # the iterates before convergence agree too (same steps, not just the same fixed point)
    early_general = _solve(pairs, False, monkeypatch, prior_variance=prior, max_iter=2)
    early_lean = _solve(pairs, True, monkeypatch, prior_variance=prior, max_iter=2)
    assert early_lean.n_iter == early_general.n_iter == 2
    assert not early_lean.converged and not early_general.converged
    np.testing.assert_allclose(early_lean.scores, early_general.scores, atol=1e-13, rtol=0)
    assert np.max(np.abs(early_lean.scores - lean.scores)) > 1e-6  # not yet at the fixed point
    # a warm start (init=) goes through the lean path to the same iterates as the general path
    init = general.scores + np.random.default_rng(9).normal(0, 0.3, pairs.n_items)
    warm_general = _solve(pairs, False, monkeypatch, prior_variance=prior, init=init, max_iter=1)
    warm_lean = _solve(pairs, True, monkeypatch, prior_variance=prior, init=init, max_iter=1)
    np.testing.assert_allclose(warm_lean.scores, warm_general.scores, atol=1e-13, rtol=0)
    warm = _solve(pairs, True, monkeypatch, prior_variance=prior, init=init)
    warm_g = _solve(pairs, False, monkeypatch, prior_variance=prior, init=init)
    assert warm.converged and warm.n_iter == warm_g.n_iter
    np.testing.assert_allclose(warm.scores, warm_g.scores, atol=1e-13, rtol=0)
    np.testing.assert_allclose(warm.scores, general.scores, atol=1e-6, rtol=0)  # same optimum, within tol
    assert lean.log_posterior == pytest.approx(general.log_posterior, rel=1e-12)
    # independent truth: the gradient written in this test vanishes, the likelihood matches log_expit
    precision = 0.0 if prior is None else 1 / prior
    info = pairs.totals.sum() / pairs.n_items
    assert np.max(np.abs(_gradient(lean.scores, pairs, precision))) < 1e-6 * info
    d = lean.scores[pairs.first] - lean.scores[pairs.second]
    ll = (pairs.wins_first + pairs.ties / 2) @ log_expit(d) + (pairs.wins_second + pairs.ties / 2) @ log_expit(-d)
    assert lean.log_likelihood == pytest.approx(ll, rel=1e-12)


def test_lean_gain_matches_general_gain(monkeypatch):
    monkeypatch.setattr(bt_lean, "CHUNK", 7_000)
    pairs = _pairs(seed=3)
    rng = np.random.default_rng(1)
    theta = rng.normal(0, 1, N_ITEMS)
    general = bt._Problem.build(pairs, None)
    lean = bt_lean.LeanProblem(pairs, None)
    p, q = general.probabilities(theta)
    for scale in (1e-9, 1e-3, 0.3, 3.0):  # tiny steps (cancellation) and big ones (|delta| > 1)
        step = rng.normal(0, scale, N_ITEMS)
        assert lean.gain(theta, step) == pytest.approx(general.gain(theta, step, p, q), rel=1e-9, abs=1e-300)
    # and the exact difference of log-likelihoods for a big step
    step = rng.normal(0, 2, N_ITEMS)
    exact = lean.log_likelihood(theta + step) - lean.log_likelihood(theta)
    assert lean.gain(theta, step) == pytest.approx(exact, rel=1e-9)


def test_unsorted_pairs_take_the_general_path(monkeypatch):
    pairs = _pairs(seed=5, shuffle=True)
    assert not bt_lean.pairs_sorted(pairs.first, pairs.second)
    assert bt_lean.lean_problem(pairs, None) is None
    sorted_pairs = _pairs(seed=5)
    assert bt_lean.pairs_sorted(sorted_pairs.first, sorted_pairs.second)
    a = _solve(pairs, True, monkeypatch)
    b = _solve(sorted_pairs, True, monkeypatch)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-8)


def test_pairs_sorted_across_chunks(monkeypatch):
    monkeypatch.setattr(bt_lean, "_CHUNK", 7)
    first = np.repeat(np.arange(10), 5)
    second = np.tile(np.arange(5), 10) + 20
    assert bt_lean.pairs_sorted(first, second)
    for k in (6, 7, 8, 13, 49):  # a repeat or an inversion at and around chunk edges
        bad = second.copy()
        bad[k] = bad[k - 1]
        assert not bt_lean.pairs_sorted(first, bad)


def test_lean_fit_memory_per_pair(monkeypatch):
    """The lean fit allocates ~12 bytes a pair (curvatures and int32 CSR columns); the general path ~80."""
    monkeypatch.setattr(bt_lean, "CHUNK", 1 << 14)  # chunk buffers small next to 300k pairs
    pairs = _pairs(seed=7, n_pairs=300_000)
    peaks = {}
    for lean in (True, False):
        monkeypatch.setattr(bt_lean, "LEAN_MIN_PAIRS", 0 if lean else 10**18)
        tracemalloc.start()
        model = bradley.BradleyTerry().fit(pairs)
        peaks[lean] = tracemalloc.get_traced_memory()[1] / pairs.n_pairs
        tracemalloc.stop()
        assert model.converged_
    assert peaks[True] < 25, peaks  # 12 a pair plus the chunk buffers and per-item arrays
    assert peaks[False] > 3 * peaks[True], peaks


def test_lean_evaluate_huge_weights_at_large_distance():
    """Counts up to 1e150 at d = -550: the lean gradient must equal the general path's (no inf)."""
    n = 4
    first, second = np.array([0, 0, 1, 2]), np.array([1, 3, 2, 3])
    theta = np.array([0.0, 550.0, 1.0, -2.0])  # d(0, 1) = -550
    for ties in (np.zeros(4), np.array([0.0, 2.0, 1e100, 0.0])):
        pairs = PairCounts(first, second, np.array([1e100, 3.0, 1e100, 1.0]), np.array([2.0, 1.0, 5.0, 1e100]),
                           ties, np.array(list("abcd"), dtype=object))
        lean = bt_lean.LeanProblem(pairs, None)
        grad, info = lean.evaluate(theta)
        general = bt._Problem.build(pairs, None)
        p, q = general.probabilities(theta)
        g2 = general.gradient_from(theta, p, q)
        i2 = general.diagonal_information(general.curvature(p, q))
        assert np.all(np.isfinite(grad)) and np.all(np.isfinite(info))
        np.testing.assert_allclose(grad, g2, rtol=1e-12, atol=0)
        np.testing.assert_allclose(info, i2, rtol=1e-12, atol=0)
        # independent truth: the gradient written out in this test
        np.testing.assert_allclose(grad, _gradient(theta, pairs), rtol=1e-12, atol=0)
        assert abs(grad[0]) > 1e99  # the pair (0, 1) contributes ~1e100 * 1, not inf


def test_lean_chunks_at_least_as_long_as_the_item_count(monkeypatch):
    """With many items and short chunks, chunks grow to n_items pairs (bincount per chunk is O(n)); same results."""
    pairs = _pairs(seed=4, n_pairs=20_000)
    monkeypatch.setattr(bt_lean, "CHUNK", 1_000)  # below N_ITEMS = 2,500
    lean = bt_lean.LeanProblem(pairs, 4.0)
    assert lean.chunk == N_ITEMS
    assert len(lean.chunks) == -(-pairs.n_pairs // N_ITEMS)
    rng = np.random.default_rng(2)
    theta = rng.normal(0, 1, N_ITEMS)
    grad, _ = lean.evaluate(theta)
    np.testing.assert_allclose(grad, _gradient(theta, pairs, 0.25), rtol=0, atol=1e-10)
    general = bt._Problem.build(pairs, 4.0)
    assert lean.log_likelihood(theta) == pytest.approx(general.log_likelihood(theta), rel=1e-12)
