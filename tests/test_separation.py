"""Existence of the MLE by linear programming, against the win-graph check and against brute force."""

import numpy as np
import pytest
from scipy import sparse

from bradley import Comparisons, MLEDoesNotExistError, PairCounts, mle_existence_problem
from bradley.solvers.separation import design_null_space, find_separation


def _bt_design(pairs: PairCounts) -> sparse.csr_matrix:
    m, n = pairs.n_pairs, pairs.n_items
    rows = np.arange(m)
    return sparse.csr_matrix((np.r_[np.ones(m), -np.ones(m)], (np.r_[rows, rows], np.r_[pairs.first, pairs.second])),
                             shape=(m, n))


def test_lp_check_agrees_with_the_win_graph_on_random_graphs():
    rng = np.random.default_rng(0)
    agree, separated_seen, exists_seen = 0, 0, 0
    for trial in range(150):
        n = int(rng.integers(3, 9))
        k = int(rng.integers(n - 1, 3 * n))
        left = rng.integers(0, n, k)
        right = (left + rng.integers(1, n, k)) % n
        outcome = rng.choice([0.0, 1.0, 0.5], size=k, p=[0.45, 0.45, 0.1] if trial % 3 else [0.5, 0.5, 0.0])
        pairs = Comparisons.from_arrays(left, right, outcome, items=np.arange(n)).pair_counts()
        design = _bt_design(pairs)
        n_comp = n - design_null_space(design).shape[1] == n - 1
        graph_ok = mle_existence_problem(pairs) is None
        lp = find_separation(design, pairs.wins_first, pairs.wins_second, pairs.ties)
        lp_ok = (not lp.separated) and n_comp
        assert graph_ok == lp_ok, (trial, pairs.first, pairs.second, pairs.wins_first, pairs.wins_second, pairs.ties)
        agree += 1
        separated_seen += lp.separated
        exists_seen += lp_ok
    assert agree == 150 and separated_seen > 20 and exists_seen > 20


def test_separated_cells_are_the_links_between_strong_components():
    # a > b > c one-way chain; c and d trade wins: the three one-way pairs diverge, c-d stays finite
    pairs = PairCounts.from_matrix([[0, 2, 1, 0], [0, 0, 3, 0], [0, 0, 0, 2], [0, 0, 1, 0]], items=list("abcd"))
    lp = find_separation(_bt_design(pairs), pairs.wins_first, pairs.wins_second, pairs.ties)
    assert lp.separated and lp.method == "linprog"
    hit = {(pairs.items[f], pairs.items[s]) for f, s in zip(pairs.first[lp.separated_cells], pairs.second[lp.separated_cells])}
    assert hit == {("a", "b"), ("a", "c"), ("b", "c")}
    v = lp.direction
    assert v[0] > v[1] > v[2] and v[2] == pytest.approx(v[3])


def test_certificate_skips_the_programme_and_tie_threshold_directions():
    pairs = PairCounts.from_matrix([[0, 2, 1], [1, 0, 3], [1, 1, 0]], items=list("abc"))
    lp = find_separation(_bt_design(pairs), pairs.wins_first, pairs.wins_second, pairs.ties)
    assert not lp.separated and lp.method == "certificate"
    # Davidson: a-b and b-c always tie, a always beats c: scores spread while nu grows (tau > 0) -- no finite MLE
    design = sparse.csr_matrix(np.array([[1.0, -1.0, 0.0], [0.0, 1.0, -1.0], [1.0, 0.0, -1.0]]))
    win, loss, tie = np.array([0.0, 0.0, 3.0]), np.zeros(3), np.array([2.0, 2.0, 0.0])
    assert find_separation(design, win, loss, tie, tie_scale=2.0).separated
    # ...but not with ties counted as half wins (BT), where ties pin a = b = c
    assert not find_separation(design, win, loss, tie).separated
    # and not once c also beats a
    assert not find_separation(design, win, np.array([0.0, 0.0, 1.0]), tie, tie_scale=2.0).separated


def test_covariate_separation_that_the_win_graph_cannot_see():
    # a and b win both ways, but always when the covariate favours the winner: beta runs to infinity
    from bradley import PairwiseModel

    x = np.array([1.0, -1.0, 2.0, -0.5])
    data = Comparisons.from_arrays(["a", "a", "b", "b"], ["b", "b", "a", "a"], [1, 0, 1, 0], features=x[:, None],
                                   feature_names=["len"])
    assert mle_existence_problem(data.pair_counts()) is None
    with pytest.raises(MLEDoesNotExistError, match="len"):
        PairwiseModel(covariates=True).fit(data)


def test_large_row_level_design_is_checked_at_the_fit():
    # > 200 observed cells with covariates: decided after fitting (positive-weights certificate, else the programme)
    from bradley import PairwiseModel

    rng = np.random.default_rng(3)
    m = 6000
    left = rng.integers(0, 4, m)
    right = (left + rng.integers(1, 4, m)) % 4
    x = rng.normal(size=m)
    finite = Comparisons.from_arrays(left, right, (rng.random(m) < 1 / (1 + np.exp(-x))).astype(float),
                                     items=np.arange(4), features=x[:, None], feature_names=["x"])
    assert PairwiseModel(covariates=True).fit(finite).converged_
    separated = Comparisons.from_arrays(left, right, (x > 0).astype(float), items=np.arange(4),
                                        features=x[:, None], feature_names=["x"])
    with pytest.raises(MLEDoesNotExistError, match="'x'"):
        PairwiseModel(covariates=True).fit(separated)
