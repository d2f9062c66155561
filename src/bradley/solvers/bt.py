"""Bradley-Terry kernels: the likelihood (written once) and four solvers.

All kernels work on :class:`~bradley.data.PairCounts` and the log-strengths
``theta`` (``P(i beats j) = expit(theta_i - theta_j)``). In plain BT a tie
counts half a win each way, so the data enter only through the "effective
wins" ``a_ij = wins_ij + ties_ij / 2``.

An optional Gaussian prior ``theta_i ~ N(0, prior_variance)`` turns the MLE
into a MAP estimate that is finite for any data. Without a prior the scores are
identified only up to a shift and every solver returns them centred to mean
zero; with a prior the MAP is automatically mean-zero (the likelihood gradient
sums to zero), so centring never changes the answer.

Convergence is judged the same way by every solver: for every item, the
gradient of the log-posterior divided by the item's Fisher information
(``sum_j n_ij p_ij (1 - p_ij)`` plus ``1 / prior_variance``) is below ``tol``.
That ratio is the size of a one-item Newton step, i.e. an estimate of how far
the score still is from the optimum in log-strength units, so ``tol`` means
the same at 100 and at 10 million rows, and also for near-certain outcomes
where win fractions alone would look converged long before the scores are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy import linalg, sparse
from scipy.sparse import linalg as splinalg
from scipy.special import log_expit, wrightomega

from bradley.data import PairCounts
from bradley.solvers.threads import single_blas_thread

__all__ = [
    "SolverResult",
    "bt_log_likelihood",
    "bt_gradient",
    "bt_neg_hessian",
    "mm",
    "newman",
    "newton",
    "lbfgs",
    "SOLVERS",
]

DEFAULT_TOL = 1e-8
# Dense Newton (Cholesky) while n is small; sparse preconditioned CG beyond.
# Newton's linear systems: dense Cholesky for few items; otherwise conjugate
# gradients (fast on the well-mixed comparison graphs of real data), falling
# back to Cholesky when CG stalls, as long as n is small enough for it.
DENSE_NEWTON_MAX_ITEMS = 2000
ALWAYS_DENSE_BELOW = 200
# Newton's trust radius: the largest change of any score difference in one step
# (log-odds units), widened 4-fold after each capped step that succeeds.
NEWTON_TRUST_RADIUS = 20.0
NEWTON_MAX_TRUST_RADIUS = 640.0


@dataclass
class SolverResult:
    """What a solver returns.

    Attributes
    ----------
    scores : numpy.ndarray
        Log-strengths, mean zero.
    log_likelihood : float
        Log-likelihood of the data at ``scores`` (ties as half wins; no prior term).
    log_posterior : float
        ``log_likelihood`` plus the Gaussian log-prior density (up to a constant);
        equal to ``log_likelihood`` without a prior.
    n_iter : int
        Iterations used (outer iterations for Newton).
    converged : bool
        Whether the gradient criterion ``tol`` was met.
    grad_norm : float
        Largest absolute gradient entry of the log-posterior at ``scores``.
    solver : str
        Name of the algorithm that ran.
    """

    scores: np.ndarray
    log_likelihood: float
    log_posterior: float
    n_iter: int
    converged: bool
    grad_norm: float
    solver: str


class _ItemSums:
    """Per-item sums of per-pair values along one side of the pairs.

    Along a sorted side a segmented ``np.add.reduceat`` is several times faster
    than ``np.bincount`` (and ``values[index]`` is a cheap ``np.repeat``);
    along an unsorted side ``np.bincount`` is the fastest scatter-add.
    """

    def __init__(self, index: np.ndarray, n: int, is_sorted: bool | None = None):
        self.n = n
        self.index = index
        if is_sorted is None:
            is_sorted = len(index) < 2 or bool(np.all(index[1:] >= index[:-1]))
        self.is_sorted = is_sorted
        if is_sorted:  # segment bounds by binary search: O(n log P), no pass over the pairs
            bounds = np.searchsorted(index, np.arange(n + 1))
            self.counts = np.diff(bounds)
            self.nonempty = np.flatnonzero(self.counts)
            self.starts = bounds[self.nonempty]
            self.full = len(self.nonempty) == n

    def __call__(self, values: np.ndarray) -> np.ndarray:
        if not self.is_sorted:
            return np.bincount(self.index, values, self.n)
        if len(values) == 0:
            return np.zeros(self.n)
        sums = np.add.reduceat(values, self.starts)
        if self.full:
            return sums
        out = np.zeros(self.n)
        out[self.nonempty] = sums
        return out

    def expand(self, values: np.ndarray) -> np.ndarray:
        """``values[index]``."""
        if self.is_sorted:
            return np.repeat(values, self.counts)
        return values.take(self.index)


@dataclass(frozen=True)
class _Problem:
    """Pair data in the form every kernel uses."""

    i: np.ndarray  # first item of each pair
    j: np.ndarray  # second item
    a_ij: np.ndarray  # effective wins of i over j
    a_ji: np.ndarray
    n_ij: np.ndarray  # a_ij + a_ji
    n: int
    wins: np.ndarray  # per-item effective wins
    games: np.ndarray  # per-item effective comparisons
    prior_precision: float  # 1 / prior variance, 0 for none
    sum_i: _ItemSums
    sum_j: _ItemSums
    count_scale: float = 1.0  # counts were multiplied by this for solving; results are reported unscaled

    @classmethod
    def for_solving(cls, pairs: PairCounts, prior_variance: float | None) -> _Problem:
        """The problem a solver iterates on: without a prior, tiny counts are brought to a mean of 1.

        The MLE depends on the counts only up to a common factor, and the
        safeguards have absolute floors that tiny counts (mean per pair below
        1e-6) fall under; :meth:`result` reports likelihoods on the data's scale.
        """
        prob = cls.build(pairs, prior_variance)
        if prob.prior_precision or not len(prob.n_ij):
            return prob
        mean = float(prob.n_ij.sum()) / len(prob.n_ij)
        if not (0.0 < mean < 1e-6):
            return prob
        scale = 1.0 / mean
        return cls(prob.i, prob.j, prob.a_ij * scale, prob.a_ji * scale, prob.n_ij * scale, prob.n,
                   prob.wins * scale, prob.games * scale, 0.0, prob.sum_i, prob.sum_j, scale)

    @classmethod
    def build(cls, pairs: PairCounts, prior_variance: float | None) -> _Problem:
        if pairs.ties.any():
            half_ties = 0.5 * pairs.ties
            a_ij = pairs.wins_first + half_ties
            a_ji = pairs.wins_second + half_ties
        else:
            a_ij = np.asarray(pairs.wins_first, dtype=np.float64)
            a_ji = np.asarray(pairs.wins_second, dtype=np.float64)
        n_ij = a_ij + a_ji
        n = pairs.n_items
        i = np.ascontiguousarray(pairs.first, dtype=np.int64)
        j = np.ascontiguousarray(pairs.second, dtype=np.int64)
        key = i * n + j
        if len(key) > 1 and not np.all(key[1:] > key[:-1]):
            # Kernels rely on pairs sorted by (i, j), as PairCounts builds them.
            order = np.argsort(key, kind="stable")
            i, j, a_ij, a_ji, n_ij = i[order], j[order], a_ij[order], a_ji[order], n_ij[order]
        # Sorted by (i, j): i is sorted; j is summed by bincount, correct in any order.
        sum_i, sum_j = _ItemSums(i, n, is_sorted=True), _ItemSums(j, n, is_sorted=False)
        wins = sum_i(a_ij) + sum_j(a_ji)
        games = sum_i(n_ij) + sum_j(n_ij)
        precision = 0.0 if prior_variance is None else 1.0 / float(prior_variance)
        return cls(i, j, a_ij, a_ji, n_ij, n, wins, games, precision, sum_i, sum_j)

    def differences(self, theta: np.ndarray) -> np.ndarray:
        return self.sum_i.expand(theta) - self.sum_j.expand(theta)

    def probabilities(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """P(i beats j) and P(j beats i) per pair, each to full relative precision.

        A probability near 0 is never computed as ``1 - p``.
        """
        # p = 1 / (1 + e), q = e * p with e = exp(-d): both have full relative
        # precision; clipping d to +-700 (no overflow) moves p by < 1e-300.
        e = self.sum_j.expand(theta)
        e -= self.sum_i.expand(theta)  # -d
        np.clip(e, -700.0, 700.0, out=e)
        np.exp(e, out=e)
        p = e + 1.0
        np.reciprocal(p, out=p)
        e *= p
        return p, e

    def gradient_from(self, theta: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
        # Per-pair residual a_ij * q - a_ji * p: for lopsided pairs both terms are
        # small, so there is no cancellation between huge win and expected-win sums.
        r = self.a_ij * q - self.a_ji * p
        return self.sum_i(r) - self.sum_j(r) - self.prior_precision * theta

    def gradient(self, theta: np.ndarray) -> np.ndarray:
        return self.gradient_from(theta, *self.probabilities(theta))

    def log_likelihood(self, theta: np.ndarray, pq: tuple[np.ndarray, np.ndarray] | None = None) -> float:
        p, q = self.probabilities(theta) if pq is None else pq
        ll = float(self.a_ij @ np.log(p) + self.a_ji @ np.log(q))
        # Lopsided pairs: log of a probability near 1 drops the -exp(-|d|) per
        # game (which heavy weights multiply back up to whole units), and near
        # the clipping in probabilities both logs are off. Redo those exactly.
        lopsided = np.flatnonzero(np.minimum(p, q) < 1e-3)
        if len(lopsided):
            a_ij, a_ji = self.a_ij[lopsided], self.a_ji[lopsided]
            d = theta[self.i[lopsided]] - theta[self.j[lopsided]]
            exact = a_ij @ log_expit(d) + a_ji @ log_expit(-d)
            ll += float(exact - a_ij @ np.log(p[lopsided]) - a_ji @ np.log(q[lopsided]))
        return ll

    def log_posterior(self, theta: np.ndarray) -> float:
        return self.log_likelihood(theta) - 0.5 * self.prior_precision * float(theta @ theta)

    def gain(self, theta: np.ndarray, step: np.ndarray, p: np.ndarray, q: np.ndarray) -> float:
        """``log_posterior(theta + step) - log_posterior(theta)`` to full relative precision.

        ``p, q`` are the probabilities at ``theta``. Per pair
        ``log(p' / p) = -log1p(q * expm1(-delta))`` with ``delta`` the change of
        the score difference: no cancellation between two nearly equal
        log-posteriors, so the sign is right even for the tiny steps near the
        optimum. Pairs whose difference moves by more than 1 (no cancellation
        there) use ``log_expit`` directly, which is exact at any distance.
        """
        delta = self.differences(step)
        small = np.abs(delta) <= 1.0
        won = np.log1p(q * np.expm1(-np.where(small, delta, 0.0)))  # -log(p'/p)
        lost = np.log1p(p * np.expm1(np.where(small, delta, 0.0)))  # -log(q'/q)
        big = np.flatnonzero(~small)
        if len(big):
            d, dd = self.differences(theta)[big], delta[big]
            won[big] = log_expit(d) - log_expit(d + dd)
            lost[big] = log_expit(-d) - log_expit(-d - dd)
        change = -float(self.a_ij @ won + self.a_ji @ lost)
        return change - 0.5 * self.prior_precision * float(step @ (2.0 * theta + step))

    def gain_lower_bound(self, grad: np.ndarray, h: np.ndarray, step: np.ndarray, span: float) -> float:
        """A cheap lower bound on :meth:`gain` from the gradient and curvature at ``theta``.

        Along ``theta + t * step`` each pair's curvature ``n p q`` changes at a
        relative rate ``|(1 - 2p) delta| <= span`` (``span`` bounds the change of
        every score difference), so it stays below ``exp(span * t)`` times its
        value at ``t = 0``. Integrating twice: ``gain >= grad . step - c * s'Hs``
        with ``c = (exp(span) - 1 - span) / span**2`` (1/2 for small steps).
        """
        if span > 50.0:  # the bound is useless there (and expm1 would overflow)
            return -np.inf
        diff = self.differences(step)
        quad = float(h @ (diff * diff)) + self.prior_precision * float(step @ step)
        c = (np.expm1(span) - span) / span**2 if span > 1e-4 else 0.5 + span / 6.0 + span * span / 24.0
        return float(grad @ step) - c * quad

    def curvature(self, p: np.ndarray, q: np.ndarray) -> np.ndarray:
        return self.n_ij * p * q

    def diagonal_information(self, h: np.ndarray) -> np.ndarray:
        return self.sum_i(h) + self.sum_j(h) + self.prior_precision

    def step_size(self, grad: np.ndarray, p: np.ndarray, q: np.ndarray) -> float:
        """Largest one-item Newton step |g_i| / I_ii: the convergence measure."""
        if not self.n:
            return 0.0
        info = self.diagonal_information(self.curvature(p, q))
        return float(np.max(np.abs(grad) / np.maximum(info, 1e-300)))

    def converged(self, theta: np.ndarray, grad: np.ndarray, tol: float) -> bool:
        return self.step_size(grad, *self.probabilities(theta)) <= tol

    def result(
        self,
        theta: np.ndarray,
        n_iter: int,
        tol: float,
        solver: str,
        state: tuple[np.ndarray, ...] | None = None,
    ) -> SolverResult:
        """Package a solution.

        ``state`` = (p, q, gradient[, diagonal information]) at ``theta`` if already known.
        """
        theta = theta - theta.mean()
        info_diag = None
        if state is not None and self.prior_precision == 0.0:
            p, q, grad = state[:3]  # centring changes neither probabilities nor the gradient
            info_diag = state[3] if len(state) > 3 else None
        else:
            p, q = self.probabilities(theta)
            grad = self.gradient_from(theta, p, q)
        if info_diag is None:
            info_diag = self.diagonal_information(self.curvature(p, q))
        step = float(np.max(np.abs(grad) / np.maximum(info_diag, 1e-300))) if self.n else 0.0
        ll = self.log_likelihood(theta, (p, q)) / self.count_scale
        lp = ll - 0.5 * self.prior_precision * float(theta @ theta)
        return SolverResult(
            scores=theta,
            log_likelihood=ll,
            log_posterior=lp,
            n_iter=int(n_iter),
            converged=step <= tol,
            grad_norm=float(np.max(np.abs(grad))) / self.count_scale if len(grad) else 0.0,
            solver=solver,
        )


def bt_log_likelihood(scores: np.ndarray, pairs: PairCounts) -> float:
    """Bradley-Terry log-likelihood of ``pairs`` at log-strengths ``scores``.

    Ties count half a win each way. Computed as ``-log1p(exp(-|d|))`` so it is exact
    for score differences of any size.

    Examples
    --------
    >>> p = PairCounts.from_matrix([[0, 1], [1, 0]])
    >>> bool(np.isclose(bt_log_likelihood(np.zeros(2), p), 2 * np.log(0.5)))
    True
    """
    return _Problem.build(pairs, None).log_likelihood(np.asarray(scores, dtype=np.float64))


def bt_gradient(scores: np.ndarray, pairs: PairCounts, prior_variance: float | None = None) -> np.ndarray:
    """Gradient of the BT log-likelihood (plus Gaussian log-prior) in ``scores``."""
    return _Problem.build(pairs, prior_variance).gradient(np.asarray(scores, dtype=np.float64))


def bt_neg_hessian(
    scores: np.ndarray, pairs: PairCounts, prior_variance: float | None = None
) -> np.ndarray:
    """Dense negative Hessian (observed Fisher information) of the BT log-posterior.

    Without a prior it is a weighted graph Laplacian, singular along the
    all-ones direction (scores are only identified up to a shift).
    """
    prob = _Problem.build(pairs, prior_variance)
    return _dense_neg_hessian(prob, np.asarray(scores, dtype=np.float64), add_gauge=False)


def _dense_neg_hessian(prob: _Problem, theta: np.ndarray, add_gauge: bool) -> np.ndarray:
    """Dense Fisher information: a weighted graph Laplacian plus the prior precision."""
    n = prob.n
    h = prob.curvature(*prob.probabilities(theta))
    info = np.zeros((n, n))
    flat = info.reshape(-1)
    flat[prob.i * n + prob.j] = -h
    flat[prob.j * n + prob.i] = -h
    flat[:: n + 1] = prob.diagonal_information(h)
    if add_gauge and prob.prior_precision == 0.0:
        info += 1.0 / n
    return info


class _HasItemTotals(Protocol):
    @property
    def n(self) -> int: ...
    @property
    def wins(self) -> np.ndarray: ...
    @property
    def games(self) -> np.ndarray: ...


def _initial_scores(prob: _HasItemTotals, init: np.ndarray | None) -> np.ndarray:
    """Validated start, or by default each item's smoothed log win/loss ratio.

    The ratio is an attenuated estimate of the score (opponents average out),
    which saves a few Newton iterations over starting from zero.
    """
    if init is None:
        theta = np.log(prob.wins + 0.5) - np.log(prob.games - prob.wins + 0.5)
        return theta - theta.mean()
    theta = np.array(init, dtype=np.float64).reshape(-1)
    if theta.shape != (prob.n,) or not np.all(np.isfinite(theta)):
        raise ValueError(f"init must be {prob.n} finite numbers.")
    return theta - theta.mean()


FixedPointRule = Callable[["_Problem", np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _fixed_point_iteration(
    prob: _Problem, theta: np.ndarray, rule: FixedPointRule, tol: float, max_iter: int, name: str
) -> SolverResult:
    """Run ``theta_i <- argmax_t numer_i*t - exp(t)*denom_i - precision*t^2/2`` to convergence.

    ``rule(prob, theta, p, q)`` returns ``(numer, log_denom)`` at the current
    scores. Without a prior the update is ``log(numer) - log_denom``; with one
    it is solved in closed form by the Wright omega function (omega + log
    omega = z), which keeps it exact and overflow-free. Scores are re-centred
    after each sweep (never lowering the log-posterior).

    Updating all items at once can cycle: with two items Newman's update maps
    a score gap ``g`` to ``2 log(w_01 / w_10) - g``. When a sweep stops
    shrinking the largest Newton-step estimate, later sweeps are damped
    (halfway to the update), which removes such cycles.
    """
    precision = prob.prior_precision
    damping = 1.0
    previous = np.inf
    it = 0
    for it in range(1, max_iter + 1):
        p, q = prob.probabilities(theta)
        grad = prob.gradient_from(theta, p, q)
        size = prob.step_size(grad, p, q)
        if size <= tol:
            it -= 1
            break
        if size >= 0.99 * previous:
            damping = 0.5
        previous = size
        numer, log_denom = rule(prob, theta, p, q)
        if precision == 0.0:
            with np.errstate(divide="ignore"):
                update = np.log(numer) - log_denom
        else:
            var = 1.0 / precision
            update = numer * var - np.real(wrightomega(log_denom + np.log(var) + numer * var))
        theta = update if damping == 1.0 else theta + damping * (update - theta)
        theta -= theta.mean()
    return prob.result(theta, it, tol, name)


def _zermelo_rule(prob: _Problem, theta: np.ndarray, p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Hunter's surrogate: W_i log pi_i - pi_i * sum_j n_ij / (pi_i + pi_j), and
    # sum_j n_ij / (pi_i + pi_j) = exp(-theta_i) * (expected wins of i).
    expected = prob.sum_i(prob.n_ij * p) + prob.sum_j(prob.n_ij * q)
    with np.errstate(divide="ignore"):
        return prob.wins, np.log(expected) - theta


def _newman_rule(prob: _Problem, theta: np.ndarray, p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # A_i = sum_j a_ij sigma(theta_j - theta_i); B_i = exp(theta_i) * sum_j a_ji / (pi_i + pi_j)
    wins_q, losses_p = prob.a_ij * q, prob.a_ji * p
    won = prob.sum_i(wins_q) + prob.sum_j(losses_p)
    lost = prob.sum_i(losses_p) + prob.sum_j(wins_q)
    with np.errstate(divide="ignore"):
        return won, np.log(lost) - theta


def mm(
    pairs: PairCounts,
    init: np.ndarray | None = None,
    *,
    prior_variance: float | None = None,
    tol: float = DEFAULT_TOL,
    max_iter: int = 100_000,
) -> SolverResult:
    """Zermelo's iteration, as the MM algorithm of Hunter (2004).

    ``pi_i <- W_i / sum_j n_ij / (pi_i + pi_j)``, computed in log space. With a
    Gaussian prior the minorising surrogate plus the exact log-prior is
    maximised per item in closed form (Wright omega), so every step still
    increases the log-posterior.

    Parameters
    ----------
    pairs : PairCounts
    init : numpy.ndarray, optional
        Starting log-strengths (default: smoothed log win/loss ratios).
    prior_variance : float, optional
        Variance of a Gaussian prior on the scores (MAP estimate).
    tol : float
        Gradient tolerance (see the module docstring).
    max_iter : int

    Examples
    --------
    >>> p = PairCounts.from_matrix([[0, 2], [1, 0]])
    >>> r = mm(p)
    >>> bool(np.isclose(r.scores[0] - r.scores[1], np.log(2)))
    True
    """
    prob = _Problem.for_solving(pairs, prior_variance)
    return _fixed_point_iteration(prob, _initial_scores(prob, init), _zermelo_rule, tol, max_iter, "mm")


def newman(
    pairs: PairCounts,
    init: np.ndarray | None = None,
    *,
    prior_variance: float | None = None,
    tol: float = DEFAULT_TOL,
    max_iter: int = 100_000,
) -> SolverResult:
    """Newman's (2023) fixed-point iteration for the BT scores.

    ``pi_i <- sum_j a_ij pi_j/(pi_i+pi_j) / sum_j a_ji/(pi_i+pi_j)`` (M. E. J.
    Newman, "Efficient computation of rankings from pairwise comparisons",
    JMLR 24, 2023), in log space. Its fixed point is the MLE; it typically
    needs far fewer iterations than Zermelo's. With a Gaussian prior the same
    per-item equation gains the prior term and is solved by Wright omega.

    Examples
    --------
    >>> p = PairCounts.from_matrix([[0, 2], [1, 0]])
    >>> bool(np.isclose(np.diff(newman(p).scores)[0], -np.log(2)))
    True
    """
    prob = _Problem.for_solving(pairs, prior_variance)
    return _fixed_point_iteration(prob, _initial_scores(prob, init), _newman_rule, tol, max_iter, "newman")


def newton(
    pairs: PairCounts,
    init: np.ndarray | None = None,
    *,
    prior_variance: float | None = None,
    tol: float = DEFAULT_TOL,
    max_iter: int = 100,
    dense: bool | None = None,
) -> SolverResult:
    """Newton's method with a globalised step on the BT log-posterior.

    Below ``ALWAYS_DENSE_BELOW`` items the Newton system is solved by Cholesky
    on the dense (gauge-fixed) Fisher information, with the factorisation
    reused while it still contracts the gradient fast (chord steps). Above, it
    is solved inexactly by Jacobi-preconditioned conjugate gradients on the
    sparse information (truncated Newton), which takes a handful of CG
    iterations on well-mixed comparison graphs; if CG stalls (a badly
    conditioned design, such as a long chain of rarely compared groups) and
    there are at most ``DENSE_NEWTON_MAX_ITEMS`` items, Cholesky takes over.

    Parameters
    ----------
    dense : bool, optional
        Force the dense (True) or sparse-CG (False) linear algebra.

    Examples
    --------
    >>> p = PairCounts.from_matrix([[0, 3, 1], [1, 0, 2], [2, 1, 0]])
    >>> r = newton(p)
    >>> r.converged, bool(abs(r.scores.sum()) < 1e-12)
    (True, True)
    """
    if dense is not True and pairs.n_items > DENSE_NEWTON_MAX_ITEMS:
        from bradley.solvers import bt_lean

        if pairs.n_pairs >= bt_lean.LEAN_MIN_PAIRS:
            lean = bt_lean.lean_problem(pairs, prior_variance)
            if lean is not None:  # the same iteration without pair-sized temporaries
                # one BLAS thread: its work is n-sized dots and the CG vectors, where threads only add stalls
                with single_blas_thread(0):
                    return bt_lean.lean_newton(lean, _initial_scores(lean, init), tol, max_iter)
    prob = _Problem.for_solving(pairs, prior_variance)
    theta = _initial_scores(prob, init)
    # Small dense factorisations gain nothing from BLAS threads, and threads
    # spinning against another busy process can stall each call by 0.1 s.
    with single_blas_thread(prob.n):
        return _newton_iterations(prob, theta, dense, tol, max_iter)


def _newton_iterations(
    prob: _Problem, theta: np.ndarray, dense: bool | None, tol: float, max_iter: int
) -> SolverResult:
    """Safeguarded Newton: no accepted step lowers the log-posterior.

    A step is accepted without evaluating the objective when the gradient
    shrinks and ``f`` (the log-posterior) provably did not decrease: either
    the gradient at the new point still has a non-negative slope along the step
    (``f`` is concave, so ``f(x + s) >= f(x) + grad f(x + s) . s``; both are
    known anyway), or a curvature bound says so
    (:meth:`_Problem.gain_lower_bound`, one pass without logarithms: this
    covers the usual tiny overshoot of the last Newton steps). Otherwise the
    exact change of ``f`` (:meth:`_Problem.gain`) decides, with Armijo
    backtracking. Far from the optimum, saturated probabilities make the
    Fisher information vanish and the Newton step explode while the gradient
    barely changes; a trust radius on the largest change of a score difference
    keeps such steps bounded, growing while capped steps succeed.
    """
    use_dense = prob.n < ALWAYS_DENSE_BELOW if dense is None else dense
    may_switch = dense is None and prob.n <= DENSE_NEWTON_MAX_ITEMS
    system: _DenseNewtonSystem | _SparseNewtonSystem = (
        _DenseNewtonSystem(prob) if use_dense else _SparseNewtonSystem(prob)
    )
    p, q = prob.probabilities(theta)
    grad = prob.gradient_from(theta, p, q)
    h = prob.curvature(p, q)
    merit = float(grad @ grad)
    grad0 = np.sqrt(merit) or 1.0
    stale = False  # True while the linear system is from an earlier iterate
    last_ratio: float | None = None
    state: tuple[np.ndarray, ...] | None = None
    radius = NEWTON_TRUST_RADIUS
    it = 0
    for it in range(1, max_iter + 1):
        info_diag = prob.diagonal_information(h)
        if float(np.max(np.abs(grad) / np.maximum(info_diag, 1e-300))) <= tol:
            state = (p, q, grad, info_diag)
            it -= 1
            break
        if not stale:
            system.update(h, info_diag)
        forcing = min(0.1, np.sqrt(np.sqrt(merit) / grad0))
        step = system.solve(grad, forcing)
        if not system.solved and may_switch:
            use_dense, system = True, _DenseNewtonSystem(prob)
            system.update(h, info_diag)
            step = system.solve(grad, forcing)
        slope = float(grad @ step)
        if not (np.isfinite(slope) and slope > 0.0):
            if stale:
                stale = False
                continue
            # The linear algebra failed (e.g. information underflow): fall back
            # to the diagonally scaled gradient, always an ascent direction.
            step = grad / np.maximum(info_diag, 1e-300)
            slope = float(grad @ step)
        span = float(step.max() - step.min()) if prob.n else 0.0
        capped = span > radius
        if capped:  # bound the largest change of a score difference
            step = step * (radius / span)
            slope *= radius / span
        candidate = theta + step
        p_c, q_c = prob.probabilities(candidate)
        grad_c = prob.gradient_from(candidate, p_c, q_c)
        merit_c = float(grad_c @ grad_c)
        # Certificates that f did not decrease (f concave): grad_c . step >= 0
        # (free), else a lower bound from the curvature at theta (no logs).
        if not (merit_c <= (1.0 - 1e-4) * merit and (
                float(grad_c @ step) >= 0.0 or prob.gain_lower_bound(grad, h, step, min(span, radius)) >= 0.0)):
            if stale:  # an old factorisation gave a poor step: refresh and retry
                stale = False
                continue
            # Armijo backtracking on the exact change of the log-posterior.
            t = 1.0
            while prob.gain(theta, t * step, p, q) < 1e-4 * t * slope:
                t *= 0.5
                if t * (span if not capped else radius) < 1e-14 * (1.0 + float(np.max(np.abs(theta)))):
                    t = 0.0  # no representable ascent along this direction
                    break
            if t == 0.0:
                break
            if t < 1.0:
                radius = max(t * min(span, radius), 1e-3)
                candidate = theta + t * step
                p_c, q_c = prob.probabilities(candidate)
                grad_c = prob.gradient_from(candidate, p_c, q_c)
                merit_c = float(grad_c @ grad_c)
            elif capped:
                radius = min(4.0 * radius, NEWTON_MAX_TRUST_RADIUS)
        elif capped:
            radius = min(4.0 * radius, NEWTON_MAX_TRUST_RADIUS)
        # Keep the factorisation (chord steps) while the gradient contracts fast
        # and chord steps still accelerate; refresh once they settle into linear
        # convergence. A factorisation costs several evaluations at mid-size n.
        ratio = merit_c / merit if merit > 0 else 0.0
        linear = stale and last_ratio is not None and ratio > max(0.3 * last_ratio, 1e-3)
        stale = system.reusable and ratio < 0.1 and not linear
        last_ratio = ratio
        theta, p, q, grad, merit = candidate, p_c, q_c, grad_c, merit_c
        h = prob.curvature(p, q)
    return prob.result(theta, it, tol, "newton" if use_dense else "newton-cg", state or (p, q, grad))


class _DenseNewtonSystem:
    """Cholesky of the dense (gauge-fixed) Fisher information."""

    reusable = True
    solved = True

    def __init__(self, prob: _Problem):
        self.prob = prob
        self.info = np.zeros((prob.n, prob.n))
        self.upper_keys = prob.i * prob.n + prob.j
        self.lower_keys = prob.j * prob.n + prob.i
        self.factor: tuple[np.ndarray, bool] | None = None

    def update(self, h: np.ndarray, info_diag: np.ndarray) -> None:
        prob = self.prob
        flat = self.info.reshape(-1)
        flat[self.upper_keys] = -h
        flat[self.lower_keys] = -h
        flat[:: prob.n + 1] = info_diag
        matrix = self.info + (1.0 / prob.n if prob.prior_precision == 0.0 else 0.0)
        scale = float(np.max(info_diag)) if len(info_diag) else 1.0
        ridge = 0.0
        while True:
            try:
                if ridge:
                    matrix[np.diag_indices(prob.n)] += ridge
                self.factor = linalg.cho_factor(matrix, overwrite_a=True, check_finite=False)
                return
            except linalg.LinAlgError:
                # Curvature underflow far from the optimum (probabilities of 0 or 1
                # in double precision): damp the step, Levenberg-Marquardt style.
                matrix = self.info + (1.0 / prob.n if prob.prior_precision == 0.0 else 0.0)
                ridge = max(ridge * 100.0, 1e-12 * scale, 1e-300)

    def solve(self, grad: np.ndarray, forcing: float) -> np.ndarray:
        assert self.factor is not None
        return linalg.cho_solve(self.factor, grad, check_finite=False)


class _SparseNewtonSystem:
    """Truncated Newton step: Jacobi-preconditioned CG on the sparse Fisher information.

    The information is ``diag - U - U^T`` with ``U`` the strictly upper
    triangle; because pairs are sorted by (i, j), ``U`` in CSR form takes the
    pair curvatures as its data array with no reordering.
    """

    reusable = False

    def __init__(self, prob: _Problem):
        self.solved = True
        indptr = np.concatenate(([0], np.cumsum(prob.sum_i.counts)))
        self.upper = sparse.csr_matrix((np.zeros(len(prob.i)), prob.j, indptr), shape=(prob.n, prob.n))
        self.prob = prob
        self.diag = np.ones(prob.n)

    def update(self, h: np.ndarray, info_diag: np.ndarray) -> None:
        self.upper.data = h
        self.diag = info_diag

    def solve(self, grad: np.ndarray, forcing: float) -> np.ndarray:
        upper, upper_t, diag = self.upper, self.upper.T, self.diag
        inv_diag = 1.0 / np.maximum(diag, 1e-300)
        shape = upper.shape
        matrix = splinalg.LinearOperator(shape, matvec=lambda v: diag * v - upper @ v - upper_t @ v, dtype=np.float64)
        precond = splinalg.LinearOperator(shape, matvec=lambda v: inv_diag * v, dtype=np.float64)
        gauge_free = self.prob.prior_precision == 0.0
        rhs = grad - grad.mean() if gauge_free else grad
        maxiter = min(500, max(50, self.prob.n))
        step, info = splinalg.cg(matrix, rhs, rtol=max(forcing, 1e-14), atol=0.0, maxiter=maxiter, M=precond)
        self.solved = info == 0
        return step - step.mean() if gauge_free else step


def lbfgs(
    pairs: PairCounts,
    init: np.ndarray | None = None,
    *,
    prior_variance: float | None = None,
    tol: float = DEFAULT_TOL,
    max_iter: int = 10_000,
) -> SolverResult:
    """Limited-memory BFGS (scipy's L-BFGS-B) on the BT log-posterior.

    Variables are scaled by the square root of the diagonal Fisher information
    (so the Hessian's diagonal is about 1). The objective handed to scipy is
    the change of the log-posterior from an anchor point, computed per pair as
    ``-log1p(q0 * expm1(-(d - d0)))`` (exactly by ``log_expit`` where a
    difference moves by more than 1): unlike the log-posterior itself it keeps
    full relative precision near the optimum, so the line search can still see
    progress there. When scipy stops short of ``tol`` the run restarts once
    more from where it stopped, with a fresh anchor (at most 5 rounds).

    Examples
    --------
    >>> p = PairCounts.from_matrix([[0, 2], [1, 0]])
    >>> bool(np.isclose(lbfgs(p).scores[0], np.log(2) / 2, atol=1e-6))
    True
    """
    from scipy import optimize  # imported on use: scipy.optimize is slow to import

    prob = _Problem.for_solving(pairs, prior_variance)
    theta = _initial_scores(prob, init)
    total = max(float(prob.n_ij.sum()), 1.0)
    n_iter = 0
    for _ in range(5):
        p0, q0 = prob.probabilities(theta)
        grad0 = prob.gradient_from(theta, p0, q0)
        info0 = prob.diagonal_information(prob.curvature(p0, q0))
        if prob.step_size(grad0, p0, q0) <= tol or n_iter >= max_iter:
            break
        scale = np.sqrt(np.maximum(info0, 1e-300))
        # |g_i| <= tol * I_ii holds when max |grad_u f| <= tol * sqrt(I_ii) / total;
        # a margin covers the change of I along the way.
        gtol = 0.1 * tol * float(scale.min()) / total
        anchor = theta.copy()

        # fun is used only by the minimize call of this iteration, so it may read the loop variables.
        def fun(u: np.ndarray) -> tuple[float, np.ndarray]:
            current = u / scale  # noqa: B023
            return (
                -prob.gain(anchor, current - anchor, p0, q0) / total,  # noqa: B023
                -prob.gradient(current) / (scale * total),  # noqa: B023
            )

        res = optimize.minimize(
            fun,
            anchor * scale,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": max_iter - n_iter, "gtol": gtol, "ftol": 0.0, "maxcor": 20, "maxls": 50},
        )
        n_iter += int(res.nit)
        progressed = bool(np.any(res.x / scale != anchor))
        theta = res.x / scale
        if not progressed:
            break
    return prob.result(theta, n_iter, tol, "lbfgs")


SOLVERS: dict[str, Callable[..., SolverResult]] = {
    "mm": mm,
    "newman": newman,
    "newton": newton,
    "lbfgs": lbfgs,
}
