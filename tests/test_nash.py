"""Maximal lotteries (LP) and the iterative Nash solvers against closed forms, brute force and hand updates."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logsumexp, softmax

from bradley import Comparisons, PairCounts
from bradley.errors import ComparisonDataError, ConvergenceWarning
from bradley.nash import (
    _lp_solve,
    duality_gap,
    margin_matrix,
    maximal_lottery,
    maximal_lottery_lp,
    regularized_gap,
    solve_nash,
)

ITERATIVE = ["mwu", "optimistic", "extragradient", "inpo"]


def prob_from_margin(m: np.ndarray) -> np.ndarray:
    """P = (1 + M) / 2, for margins in [-1, 1]."""
    p = 0.5 * (1.0 + np.asarray(m, dtype=float))
    np.fill_diagonal(p, 0.5)
    return p


def generalised_rps(a: float, b: float, c: float) -> np.ndarray:
    """Rock beats scissors by b, paper beats rock by a, scissors beats paper by c (margins)."""
    return np.array([[0.0, -a, b], [a, 0.0, -c], [-b, c, 0.0]])


def random_probabilities(n: int, seed: int, transitive: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(n, n))
    theta = transitive * rng.normal(size=n)
    return expit(theta[:, None] - theta[None, :] + (noise - noise.T))


def support_enumeration(m: np.ndarray) -> list[np.ndarray]:
    """All maximal lotteries found by trying every support S: M_SS p = 0, sum p = 1, p >= 0, M p <= 0."""
    n = m.shape[0]
    found = []
    for k in range(1, n + 1):
        for support in itertools.combinations(range(n), k):
            s = list(support)
            system = np.vstack([m[np.ix_(s, s)], np.ones((1, k))])
            rhs = np.r_[np.zeros(k), 1.0]
            x, *_ = np.linalg.lstsq(system, rhs, rcond=None)
            if np.abs(system @ x - rhs).max() > 1e-10 or (x < -1e-12).any():
                continue
            p = np.zeros(n)
            p[s] = x
            if (m @ p).max() <= 1e-10:
                found.append(p)
    return found


# ---------------------------------------------------------------------------------------------- closed forms

def test_rock_paper_scissors_is_uniform_with_labels():
    names = ["rock", "paper", "scissors"]
    p = pd.DataFrame(prob_from_margin(generalised_rps(1, 1, 1)), index=names, columns=names)
    lottery = maximal_lottery(p)
    assert list(lottery.index) == names
    np.testing.assert_allclose(lottery.to_numpy(), np.full(3, 1 / 3), atol=1e-12)
    assert abs(lottery.attrs["value"]) < 1e-12 and lottery.attrs["unique"] is True
    assert sorted(lottery.attrs["support"]) == sorted(names)


@pytest.mark.parametrize("abc", [(1.0, 2.0, 3.0), (0.1, 0.7, 0.4), (0.9, 0.05, 0.3)])
def test_generalised_rps_closed_form(abc):
    # (M p) = 0 with M = [[0,-a,b],[a,0,-c],[-b,c,0]] gives p proportional to (c, b, a).
    a, b, c = abc
    m = generalised_rps(a, b, c)
    expected = np.array([c, b, a]) / (a + b + c)
    scale = max(abc)
    lottery = maximal_lottery(prob_from_margin(m / scale), items=["r", "p", "s"])
    np.testing.assert_allclose(lottery.to_numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(maximal_lottery(m, kind="margin").to_numpy(), expected, atol=1e-12)


def test_dominated_fourth_item_is_left_out():
    # Hand check: against (c, b, a)/(a+b+c) = (3, 2, 1)/6 the fourth item's margin is (0.5*3 - 0.6*2 - 0.9*1)/6 < 0.
    m = np.zeros((4, 4))
    m[:3, :3] = generalised_rps(1, 2, 3) / 3
    m[3, :3] = [0.5, -0.6, -0.9]
    m[:3, 3] = -m[3, :3]
    lottery = maximal_lottery(prob_from_margin(m))
    np.testing.assert_allclose(lottery.to_numpy(), [0.5, 1 / 3, 1 / 6, 0.0], atol=1e-12)
    assert lottery.attrs["unique"] is True


def test_rock_paper_scissors_lizard_spock_is_uniform():
    # each item beats two and loses to two (a regular tournament): M 1 = 0 by hand, so uniform is optimal,
    # and a tournament's maximal lottery is unique
    m = np.zeros((5, 5))
    for i in range(5):
        m[i, (i + 1) % 5] = m[i, (i + 3) % 5] = -1.0
        m[i, (i + 2) % 5] = m[i, (i + 4) % 5] = 1.0
    assert np.allclose(m, -m.T)
    lottery = maximal_lottery(prob_from_margin(m))
    np.testing.assert_allclose(lottery.to_numpy(), np.full(5, 0.2), atol=1e-12)
    assert lottery.attrs["unique"] is True


def test_clones_make_a_segment_of_lotteries():
    # items 2 and 3 are clones in a unit cycle 0 > 1 > {2, 3} > 0. By hand, (M p) = 0 for every
    # p = (1/3, 1/3, t, 1/3 - t), 0 <= t <= 1/3: the maximal lottery is not unique.
    m = np.array([[0, 1, -1, -1], [-1, 0, 1, 1], [1, -1, 0, 0], [1, -1, 0, 0]], dtype=float)
    lottery = maximal_lottery(m, kind="margin").to_numpy()
    np.testing.assert_allclose(lottery[:2], [1 / 3, 1 / 3], atol=1e-12)
    assert lottery[2] + lottery[3] == pytest.approx(1 / 3, abs=1e-12)
    assert maximal_lottery(m, kind="margin").attrs["unique"] is False
    assert len(support_enumeration(m)) >= 2


def test_condorcet_winner_gets_all_the_mass():
    # counts: "d" beats a 6-4, b 8-2, c 7-3; below it a > b 6-4, b > c 7-3, c > a 6-5 form a cycle
    wins = np.zeros((4, 4))
    for (i, j), (won, lost) in {(3, 0): (6, 4), (3, 1): (8, 2), (3, 2): (7, 3), (0, 1): (6, 4), (1, 2): (7, 3),
                           (2, 0): (6, 5)}.items():
        wins[i, j], wins[j, i] = won, lost
    lottery = maximal_lottery(wins, items=list("abcd"))
    np.testing.assert_allclose(lottery.to_numpy(), [0, 0, 0, 1], atol=1e-12)
    assert lottery.attrs["support"] == ["d"] and lottery.attrs["unique"] is True
    # without d, the cycle's own maximal lottery is mixed: margins a>b 0.2, b>c 0.4, c>a 1/11 -> p ∝ (0.4, 1/11, 0.2)
    cycle = maximal_lottery(wins[:3, :3]).to_numpy()
    np.testing.assert_allclose(cycle, np.array([0.4, 1 / 11, 0.2]) / (0.6 + 1 / 11), atol=1e-12)


def test_two_items_and_one_item():
    np.testing.assert_allclose(maximal_lottery([[0.5, 0.7], [0.3, 0.5]]).to_numpy(), [1, 0], atol=1e-12)
    np.testing.assert_allclose(maximal_lottery([[0.5]]).to_numpy(), [1.0])


# ---------------------------------------------------------------------------------------------- the LP itself

@pytest.mark.parametrize("seed", range(6))
def test_lp_matches_support_enumeration(seed):
    p = random_probabilities(6, seed, transitive=0.3 * seed)
    m = p - p.T
    every = support_enumeration(m)
    assert len(every) == 1  # continuous random margins: unique equilibrium
    lottery = maximal_lottery(p)
    np.testing.assert_allclose(lottery.to_numpy(), every[0], atol=1e-10)
    assert lottery.attrs["unique"] is True


@pytest.mark.parametrize("n", [30, 150])
def test_equilibrium_conditions_hold_to_1e9(n):
    # n = 150 goes through the support search (double oracle) first
    p = random_probabilities(n, n, transitive=1.0)
    m = p - p.T
    q = maximal_lottery(p).to_numpy()
    assert (q >= 0).all() and abs(q.sum() - 1) < 1e-12
    assert (m.T @ q).min() >= -1e-9
    assert duality_gap(p, q) <= 1e-9


def test_support_search_equals_full_lp():
    p = random_probabilities(160, 3, transitive=2.0)
    m = p - p.T
    searched, unique = maximal_lottery_lp(m)
    np.testing.assert_allclose(searched, _lp_solve(m), atol=1e-8)
    assert unique is True


def test_feasibility_form_matches_the_value_variable_lp():
    # independent form: maximise the game value v over M^T p >= v, sum p = 1; its optimum is v = 0 and the
    # same (unique) lottery the feasibility form p >= 0, sum p = 1, M^T p >= 0 finds
    from scipy.optimize import linprog

    for seed, transitive in ((0, 0.0), (1, 1.0)):
        p = random_probabilities(40, seed, transitive=transitive)
        m = p - p.T
        n = len(m)
        res = linprog(np.r_[np.zeros(n), -1.0], A_ub=np.hstack([-m.T, np.ones((n, 1))]), b_ub=np.zeros(n),
                      A_eq=np.r_[np.ones(n), 0.0][None, :], b_eq=[1.0], bounds=[(0, None)] * n + [(None, None)],
                      method="highs")
        assert abs(res.x[-1]) < 1e-9
        np.testing.assert_allclose(_lp_solve(m), res.x[:n], atol=1e-8)
        np.testing.assert_allclose(maximal_lottery(p).to_numpy(), res.x[:n], atol=1e-8)


def test_hard_random_matrix_falls_back_to_the_full_lp():
    p = random_probabilities(120, 1)  # no transitive part: support about half the items
    lottery = maximal_lottery(p)
    assert len(lottery.attrs["support"]) > 36  # beyond the 30% share, so the full LP ran
    assert duality_gap(p, lottery) <= 1e-9


def test_non_unique_lotteries_are_flagged():
    all_ties = maximal_lottery(np.full((4, 4), 0.5))
    assert all_ties.attrs["unique"] is False and abs(all_ties.sum() - 1) < 1e-12
    # even number of voters: every pairwise margin is 0
    even = maximal_lottery(np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]]), kind="counts")
    assert even.attrs["unique"] is False
    # a tie between two losers does not make the winner's point mass non-unique
    m = np.array([[0, 1, 1], [-1, 0, 0], [-1, 0, 0]], dtype=float)
    assert maximal_lottery(m, kind="margin").attrs["unique"] is True
    assert maximal_lottery(m, kind="margin", check_unique=False).attrs["unique"] in (True, None)


# ---------------------------------------------------------------------------------------------- inputs

def test_counts_equal_probabilities():
    wins = np.array([[0, 30, 2, 5], [10, 0, 9, 1], [6, 3, 0, 40], [1, 2, 20, 0]], dtype=float)
    prob = wins / (wins + wins.T + np.eye(4))
    np.fill_diagonal(prob, 0.5)
    by_counts = maximal_lottery(wins)
    by_prob = maximal_lottery(prob)
    np.testing.assert_allclose(by_counts.to_numpy(), by_prob.to_numpy(), atol=1e-12)
    # the same counts as comparison data and as PairCounts
    pairs = PairCounts.from_matrix(wins)
    np.testing.assert_allclose(maximal_lottery(pairs).to_numpy(), by_prob.to_numpy(), atol=1e-12)
    comps = pairs.to_comparisons(frequencies=True)
    assert isinstance(comps, Comparisons)
    np.testing.assert_allclose(maximal_lottery(comps).to_numpy(), by_prob.to_numpy(), atol=1e-12)
    np.testing.assert_allclose(maximal_lottery(comps.to_frame()).to_numpy(), by_prob.to_numpy(), atol=1e-12)


def test_raw_margins_and_ties_from_comparisons():
    wins = np.array([[0, 30, 1], [10, 0, 3], [2, 1, 0]], dtype=float)
    raw = margin_matrix(wins, normalize=False).to_numpy()
    np.testing.assert_allclose(raw, wins - wins.T)
    share = margin_matrix(wins).to_numpy()
    np.testing.assert_allclose(share[0, 1], 20 / 40)
    # a tie is half a win each: a 1-0 plus a tie is a share of 1.5 / 2
    comps = Comparisons.from_arrays(["a", "a"], ["b", "b"], [1.0, 0.5])
    assert margin_matrix(comps).loc["a", "b"] == pytest.approx(0.5)


def test_preference_matrix_input():
    diagnostics = pytest.importorskip("bradley.diagnostics")
    comps = Comparisons.from_arrays(list("aabbcca"), list("bcccaab"), [1, 1, 1, 0, 1, 0, 0.5])
    pm = diagnostics.preference_matrix(comps)
    np.testing.assert_allclose(maximal_lottery(pm).to_numpy(), maximal_lottery(comps).to_numpy(), atol=1e-12)


def test_unobserved_pairs():
    p = prob_from_margin(generalised_rps(1, 1, 1) * 0.5)
    p[0, 1] = p[1, 0] = np.nan
    lottery = maximal_lottery(p)
    assert lottery.attrs["unobserved_pairs"] == 1
    assert duality_gap(np.nan_to_num(p, nan=0.5), lottery) < 1e-12  # the NaN pair read as a tie
    with pytest.raises(ComparisonDataError, match=r"\[0, 1\]"):
        maximal_lottery(p, unobserved="error")
    wins = np.array([[0, 2, 0], [1, 0, 4], [0, 3, 0]], dtype=float)
    assert margin_matrix(wins, kind="counts").attrs["unobserved_pairs"] == 1


def test_errors_name_the_entries():
    with pytest.raises(ComparisonDataError, match="square"):
        maximal_lottery(np.ones((2, 3)))
    bad = np.array([[0.5, 0.7, 0.4], [0.3, 0.5, 0.2], [0.6, 0.9, 0.5]])
    with pytest.raises(ComparisonDataError, match=r"\['x', 'z'\]|\['y', 'z'\]") as err:
        maximal_lottery(bad, items=["x", "y", "z"])
    assert "['x', 'y']" not in str(err.value)  # that pair is consistent
    with pytest.raises(ComparisonDataError, match=r"P\[i, j\] \+ P\[j, i\] = 1"):
        maximal_lottery(bad, kind="probability")
    with pytest.raises(ComparisonDataError, match="non-negative"):
        maximal_lottery([[0, -1], [2, 0]], kind="counts")
    with pytest.raises(ComparisonDataError, match="skew-symmetric"):
        maximal_lottery([[0, -1], [2, 0]])
    with pytest.raises(ComparisonDataError, match="one direction only"):
        maximal_lottery([[0.5, np.nan], [0.5, 0.5]])
    with pytest.raises(ComparisonDataError, match="finite"):
        maximal_lottery([[0, np.inf], [1, 0]])
    with pytest.raises(ComparisonDataError, match="2 item names"):
        maximal_lottery(np.full((3, 3), 0.5), items=["a", "b"])


def test_duality_gap_by_hand():
    rps = prob_from_margin(generalised_rps(1, 1, 1))
    assert duality_gap(rps, [1, 0, 0]) == pytest.approx(1.0)  # paper beats pure rock with margin 1
    assert duality_gap(rps, [0.5, 0.5, 0]) == pytest.approx(0.5)  # paper: +1 vs the rock half, 0 vs the paper half
    assert duality_gap(rps, pd.Series({"2": 1.0, "0": 1.0, "1": 1.0}).set_axis([2, 0, 1])) == pytest.approx(0)


# ---------------------------------------------------------------------------------------------- iterative solvers

def hand_step(method: str, p0: np.ndarray, prob: np.ndarray, step: float, tau: float = 0.0) -> np.ndarray:
    """One update of each method written from the papers' formulas, independently of the module."""
    win = prob @ p0  # P(y beats p0), with P_ii = 1/2
    if method == "mwu":  # SPPO: p exp(eta (P(y > p) - 1/2))
        return softmax(np.log(p0) + step * (win - 0.5))
    if method == "optimistic":  # first ONPO step from pi'_1 = pi_1 = p0: both anchors move by r_1
        anchor = softmax(np.log(p0) + step * win)
        return softmax(np.log(anchor) + step * win)
    if method == "extragradient":
        half = softmax(np.log(p0) + step * win)
        return softmax(np.log(p0) + step * (prob @ half))
    eta = 1.0 / step  # INPO closed form with reference = p0: exp(P/eta) ref^(tau/eta) p0^(1 - tau/eta)
    return softmax(win / eta + (tau / eta) * np.log(p0) + (1 - tau / eta) * np.log(p0))


@pytest.mark.parametrize("method", ITERATIVE)
def test_one_step_matches_the_papers_update(method):
    prob = random_probabilities(5, 11)
    np.fill_diagonal(prob, 0.5)
    p0 = np.array([0.1, 0.3, 0.2, 0.25, 0.15])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sol = solve_nash(prob, method, step=0.7, max_iter=1, tol=0.0, init=p0, tau=0.2)
    np.testing.assert_allclose(sol.last_.to_numpy(), hand_step(method, p0, prob, 0.7, 0.2), atol=1e-14)
    np.testing.assert_allclose(sol.average_.to_numpy(),
                               (p0 + (hand_step("mwu", p0, prob, 0.7) if method == "extragradient"
                                      else sol.last_.to_numpy())) / 2, atol=1e-14)


def test_optimistic_second_step_uses_the_secondary_sequence():
    prob = prob_from_margin(generalised_rps(0.3, 0.8, 0.5))
    p0 = np.array([0.5, 0.3, 0.2])
    s = 0.9
    anchor1 = softmax(np.log(p0) + s * (prob @ p0))
    p1 = softmax(np.log(anchor1) + s * (prob @ p0))
    anchor2 = softmax(np.log(anchor1) + s * (prob @ p1))
    p2 = softmax(np.log(anchor2) + s * (prob @ p1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sol = solve_nash(prob, "onpo", step=s, max_iter=2, tol=0.0, init=p0)
    np.testing.assert_allclose(sol.last_.to_numpy(), p2, atol=1e-14)


@pytest.mark.parametrize("method", ["optimistic", "extragradient", "inpo"])
@pytest.mark.parametrize("game", ["rps", "random"])
def test_last_iterate_methods_reach_the_lp_solution(method, game):
    prob = prob_from_margin(generalised_rps(0.2, 0.9, 0.5)) if game == "rps" else random_probabilities(5, 4)
    exact = maximal_lottery(prob).to_numpy()
    kw = {"anchor_every": 20} if method == "inpo" else {}
    sol = solve_nash(prob, method, tol=1e-8, max_iter=50_000, iterate="last", **kw)
    assert sol.converged_ and sol.iterate_ == "last"
    assert sol.gap_ < 1e-8 and sol.gap_history_["gap_last"].iloc[-1] == sol.gap_
    assert duality_gap(prob, sol.lottery_) == pytest.approx(sol.gap_, abs=1e-15)
    np.testing.assert_allclose(sol.lottery_.to_numpy(), exact, atol=1e-5)


def test_mwu_average_converges_while_the_last_iterate_cycles():
    prob = prob_from_margin(generalised_rps(1, 1, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sol = solve_nash(prob, "sppo", step=0.1, max_iter=3000, tol=1e-9, init=[0.6, 0.3, 0.1])
    hist = sol.gap_history_
    assert not sol.converged_ and sol.iterate_ == "average"
    assert hist["gap_last"].tail(1000).min() > 0.2  # the last iterate keeps circling away from uniform
    assert hist["gap_average"].iloc[-1] < 0.02 < hist["gap_average"].iloc[10]


def test_mwu_finds_a_condorcet_winner_in_the_last_iterate():
    prob = random_probabilities(6, 2, transitive=5.0)
    exact = maximal_lottery(prob)
    assert len(exact.attrs["support"]) == 1
    sol = solve_nash(prob, "mwu", step=2.0, tol=1e-6, max_iter=20_000, iterate="last")
    assert sol.converged_
    np.testing.assert_allclose(sol.lottery_.to_numpy(), exact.to_numpy(), atol=1e-6)


def test_inpo_fixed_anchor_solves_the_regularised_game():
    prob = random_probabilities(5, 7, transitive=1.0)
    payoff = prob - 0.5
    np.fill_diagonal(payoff, 0.0)
    ref = np.array([0.4, 0.1, 0.2, 0.2, 0.1])
    tau = 0.1
    sol = solve_nash(prob, "inpo", step=1.0, tau=tau, reference=ref, tol=1e-12, max_iter=5000)
    assert sol.converged_ and sol.iterate_ == "last"
    p = sol.lottery_.to_numpy()
    # the regularised equilibrium is the fixed point p = softmax(log ref + A p / tau)
    # (the regularised gap is quadratic near its equilibrium: a gap of 1e-12 leaves about 1e-6 in p)
    np.testing.assert_allclose(p, softmax(np.log(ref) + payoff @ p / tau), atol=1e-5)
    # and it is not the maximal lottery: its gap in the original game is of order tau
    assert sol.gap_history_["gap_last"].iloc[-1] > 1e-3


def test_regularised_gap_against_brute_force_best_responses():
    rng = np.random.default_rng(0)
    payoff = rng.normal(size=(3, 3))
    payoff = payoff - payoff.T
    ref, p, tau = np.array([0.2, 0.5, 0.3]), np.array([0.6, 0.1, 0.3]), 0.3
    grid = [np.array([a, b, 1 - a - b]) for a in np.linspace(1e-4, 1, 301) for b in np.linspace(1e-4, 1, 301)
            if a + b < 1 - 1e-4]

    def kl(x):
        return float(np.sum(x * np.log(x / ref)))

    best_row = max(float(x @ payoff @ p) - tau * kl(x) for x in grid)  # max over p1 of f(p1, p) + tau KL(p)
    worst_col = min(float(p @ payoff @ x) + tau * kl(x) for x in grid)
    brute = (best_row + tau * kl(p)) - (worst_col - tau * kl(p))
    assert regularized_gap(payoff, p, np.log(ref), tau) == pytest.approx(brute, abs=2e-4)
    assert brute == pytest.approx(2 * tau * (logsumexp(np.log(ref) + payoff @ p / tau) + kl(p)), abs=2e-4)


def test_history_and_attributes():
    prob = prob_from_margin(generalised_rps(0.5, 0.4, 0.3))
    sol = solve_nash(prob, "extragradient", tol=1e-7, items=["r", "p", "s"])
    hist = sol.gap_history_
    assert list(hist.columns) == ["iteration", "gap_last", "gap_average", "operator_calls"]
    assert len(hist) == sol.n_iter_ + 1 and hist["iteration"].iloc[-1] == sol.n_iter_
    assert hist["gap_last"].iloc[0] == pytest.approx(duality_gap(prob, np.full(3, 1 / 3)))
    assert (np.diff(hist["operator_calls"]) == 2).all()  # extragradient: two matrix products a step
    table = sol.summary()
    assert list(table.columns) == ["item", "probability", "advantage", "in_support"]
    assert table["advantage"].max() < 1e-6
    lp = solve_nash(prob, "lp")
    assert lp.converged_ and lp.iterate_ == "lp"
    np.testing.assert_allclose(lp.lottery_.to_numpy(), maximal_lottery(prob).to_numpy())


def test_non_convergence_warns():
    prob = prob_from_margin(generalised_rps(1, 1, 1))
    with pytest.warns(ConvergenceWarning, match="max_iter=5"):
        sol = solve_nash(prob, "mwu", max_iter=5, init=[0.5, 0.3, 0.2])
    assert not sol.converged_ and sol.n_iter_ == 5


def test_scale_free_defaults_and_extreme_probabilities():
    # raw count margins in the millions and probabilities of exactly 0 and 1 (scores of +-50) stay finite
    wins = 1e6 * (1.0 + generalised_rps(1, 2, 3) / 3)
    np.fill_diagonal(wins, 0)
    assert margin_matrix(wins, normalize=False).abs().max().max() == pytest.approx(2e6)
    sol = solve_nash(wins, "optimistic", normalize=False, tol=2e6 * 1e-9)
    assert sol.converged_
    np.testing.assert_allclose(sol.lottery_.to_numpy(), [0.5, 1 / 3, 1 / 6], atol=1e-7)
    theta = np.array([50.0, -50.0, 0.0, 10.0])
    prob = expit(theta[:, None] - theta[None, :])
    sol = solve_nash(prob, "extragradient", tol=1e-10)
    assert sol.converged_ and np.isfinite(sol.gap_history_.to_numpy()).all()
    assert sol.lottery_.idxmax() == 0


def test_bad_arguments():
    prob = prob_from_margin(generalised_rps(1, 1, 1))
    with pytest.raises(ValueError, match="method"):
        solve_nash(prob, "fictitious")
    with pytest.raises(ValueError, match="step"):
        solve_nash(prob, "mwu", step=-1.0)
    with pytest.raises(ValueError, match="tau"):
        solve_nash(prob, "inpo", step=10.0, tau=0.5)
    with pytest.raises(ComparisonDataError, match="positive"):
        solve_nash(prob, "mwu", init=[1.0, 0.0, 0.0])
