"""Bias-reduced Bradley-Terry scores (Firth 1993), as R's ``BTm(..., br = TRUE)``.

The estimate maximises the penalised log-likelihood

    l*(theta) = l(theta) + 1/2 log det I_r(theta),

with ``I_r`` the Fisher information of the identified model (any ``n - 1``
items' scores, one item fixed). For BT the information is the weighted graph
Laplacian ``L = sum_pairs h_ij (e_i - e_j)(e_i - e_j)^T``, ``h_ij = n_ij p_ij
q_ij``; by the matrix-tree theorem every ``(n-1)`` principal minor of a
Laplacian has the same determinant, so the estimate does not depend on which
item is fixed, and ``det I_r = det(L + 11^T / n) / n``. The penalty is the log
of Jeffreys' prior, so ``l*`` is also the log-posterior under that prior.

In a canonical-link GLM (BT is logistic regression on ``e_i - e_j``) the
gradient of ``l*`` is Firth's bias-reducing adjusted score, and it has a
simple form (Kosmidis & Firth 2009): the ordinary score with a pseudo-count
``lev_ij / 2`` added to each side's wins of every compared pair, where
``lev_ij = h_ij v_ij`` is the pair's leverage and ``v_ij = var(theta_i -
theta_j)`` the contrast variance from ``L^+``. The leverages sum to ``n - 1``.

The estimate is finite whenever the comparison graph is connected
(Kosmidis & Firth 2021 for logistic regression with a full-rank design), in
particular for items that never lost or never won, where the MLE is infinite.
For two items with ``w`` wins in ``m`` games it is the Firth estimate of a
binomial log-odds, ``log((w + 1/2) / (m - w + 1/2))``.

Solver: quasi-Fisher scoring ``theta += L^+ U*(theta)`` (the iteration of
``brglm``), safeguarded by backtracking on ``l*``: the step is an ascent
direction of ``l*`` because ``L^+`` is positive definite off the shift
direction, and no step that lowers ``l*`` is accepted. Convergence is
declared as for the other BT solvers: the largest one-item step
``|U*_i| / I_ii`` is below ``tol``. Every iteration inverts the dense
``n x n`` information, so this kernel is for up to a few thousand items.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg
from scipy.special import log_expit

from bradley.data import PairCounts
from bradley.solvers.bt import DEFAULT_TOL, SolverResult
from bradley.solvers.threads import single_blas_thread

__all__ = ["firth", "firth_penalized_log_likelihood", "comparison_groups", "FIRTH_MAX_ITEMS"]

#: Largest number of items the dense bias-reduction kernel accepts.
FIRTH_MAX_ITEMS = 5000
#: Up to this many items the dense algebra runs on one BLAS thread.
SINGLE_THREAD_MAX_ITEMS = 2000


class _FirthProblem:
    """Pair arrays, the Laplacian and its pseudo-inverse at a point."""

    def __init__(self, pairs: PairCounts):
        half_ties = 0.5 * np.asarray(pairs.ties, dtype=np.float64)
        i = np.asarray(pairs.first, dtype=np.int64)
        j = np.asarray(pairs.second, dtype=np.int64)
        a_ij = np.asarray(pairs.wins_first, dtype=np.float64) + half_ties
        a_ji = np.asarray(pairs.wins_second, dtype=np.float64) + half_ties
        keep = (a_ij + a_ji) > 0
        self.i, self.j, self.a_ij, self.a_ji = i[keep], j[keep], a_ij[keep], a_ji[keep]
        self.n_ij = self.a_ij + self.a_ji
        self.n = int(pairs.n_items)

    def log_likelihood(self, theta: np.ndarray) -> float:
        d = theta[self.i] - theta[self.j]
        return float(self.a_ij @ log_expit(d) + self.a_ji @ log_expit(-d))

    def evaluate(self, theta: np.ndarray) -> _Point | None:
        """Everything at ``theta``; None where the information is numerically singular."""
        n = self.n
        d = theta[self.i] - theta[self.j]
        log_p, log_q = log_expit(d), log_expit(-d)
        p, q = np.exp(log_p), np.exp(log_q)
        h = self.n_ij * p * q
        info, diag = self.gauged_laplacian(h)
        try:
            chol = linalg.cho_factor(info, lower=False, overwrite_a=True, check_finite=False)
        except linalg.LinAlgError:
            return None
        logdet = 2.0 * float(np.sum(np.log(np.diag(chol[0])))) - np.log(n)
        ll = float(self.a_ij @ log_p + self.a_ji @ log_q)
        return _Point(theta, ll, ll + 0.5 * logdet, p, q, h, diag, chol)

    def gauged_laplacian(self, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``L + 11^T / n`` for pair weights ``h`` (positive definite on a connected graph), and diag(L)."""
        n = self.n
        info = np.full((n, n), 1.0 / n)
        info[self.i, self.j] -= h  # pairs are unique, so fancy-index updates are safe
        info[self.j, self.i] -= h
        diag = np.bincount(self.i, h, n) + np.bincount(self.j, h, n)
        info[np.diag_indices(n)] += diag
        return info, diag

    def adjusted_score(self, point: _Point) -> tuple[np.ndarray, np.ndarray]:
        """Firth's adjusted score at ``point`` and the pair leverages ``h_ij v_ij``."""
        n = self.n
        cov = linalg.cho_solve(point.chol, np.eye(n), check_finite=False) - 1.0 / n
        v = cov[self.i, self.i] + cov[self.j, self.j] - 2.0 * cov[self.i, self.j]
        leverage = point.h * v
        r = (self.a_ij + 0.5 * leverage) * point.q - (self.a_ji + 0.5 * leverage) * point.p
        return np.bincount(self.i, r, n) - np.bincount(self.j, r, n), leverage

    def scoring_step(self, point: _Point, score: np.ndarray, leverage: np.ndarray) -> np.ndarray:
        """Fisher scoring on the pseudo-data: the information of counts ``n_ij + lev_ij``.

        Adding the leverages to the counts gives the curvature of the
        penalised likelihood up to the change of the leverages themselves
        (exactly so for two items: the penalised likelihood is then a
        binomial one with ``m + 1`` games), so the iteration converges much
        faster than scoring with the plain information, and the matrix is
        positive definite, so the step is an ascent direction of ``l*``.
        """
        info, _ = self.gauged_laplacian((self.n_ij + leverage) * point.p * point.q)
        step = linalg.solve(info, score, assume_a="pos", overwrite_a=True, check_finite=False)
        return step - step.mean()


@dataclass
class _Point:
    theta: np.ndarray
    log_likelihood: float
    penalized: float
    p: np.ndarray
    q: np.ndarray
    h: np.ndarray
    info_diag: np.ndarray
    chol: tuple[np.ndarray, bool]


def comparison_groups(pairs: PairCounts) -> tuple[int, np.ndarray]:
    """Connected components of the (undirected) comparison graph: ``(count, label per item)``.

    Examples
    --------
    >>> comparison_groups(PairCounts.from_matrix([[0, 1, 0], [0, 0, 0], [0, 0, 0]]))[0]
    2
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = pairs.n_items
    used = (np.asarray(pairs.wins_first) + np.asarray(pairs.wins_second) + np.asarray(pairs.ties)) > 0
    graph = coo_matrix((np.ones(int(used.sum())), (pairs.first[used], pairs.second[used])), shape=(n, n))
    count, labels = connected_components(graph, directed=False)
    return int(count), labels


def firth_penalized_log_likelihood(scores: np.ndarray, pairs: PairCounts) -> float:
    """``l(theta) + 1/2 log det I_r(theta)``: the objective of :func:`firth`.

    Examples
    --------
    >>> p = PairCounts.from_matrix([[0, 3], [1, 0]])
    >>> d = np.log(3.5 / 1.5)  # the bias-reduced gap for 3 wins in 4
    >>> lo, mid, hi = (firth_penalized_log_likelihood(np.array([x / 2, -x / 2]), p) for x in (d - 0.01, d, d + 0.01))
    >>> bool(mid > lo and mid > hi)
    True
    """
    point = _FirthProblem(pairs).evaluate(np.asarray(scores, dtype=np.float64))
    return -np.inf if point is None else point.penalized


def firth(
    pairs: PairCounts,
    init: np.ndarray | None = None,
    *,
    tol: float = DEFAULT_TOL,
    max_iter: int = 500,
) -> SolverResult:
    """Bias-reduced (Firth) BT scores by safeguarded quasi-Fisher scoring.

    Parameters
    ----------
    pairs : PairCounts
        Comparison counts on a connected comparison graph (ties count half a
        win each way, weights as counts).
    init : numpy.ndarray, optional
        Starting log-strengths (default: smoothed log win/loss ratios).
    tol : float
        Largest one-item step ``|U*_i| / I_ii`` accepted as converged.
    max_iter : int

    Returns
    -------
    SolverResult
        ``log_likelihood`` is the plain log-likelihood at the estimate and
        ``log_posterior`` the penalised one, ``l + 1/2 log det I_r``.

    Examples
    --------
    >>> r = firth(PairCounts.from_matrix([[0, 3], [0, 0]]))  # 3 wins, no loss
    >>> r.converged, round(float(r.scores[0] - r.scores[1]), 6) == round(float(np.log(3.5 / 0.5)), 6)
    (True, True)
    """
    prob = _FirthProblem(pairs)
    n = prob.n
    if n > FIRTH_MAX_ITEMS:
        raise ValueError(
            f"bias reduction inverts the dense {n} x {n} information at every step; it is offered up to "
            f"{FIRTH_MAX_ITEMS} items. Use a Gaussian prior (BradleyTerry(prior=...)) for larger problems."
        )
    if init is None:
        wins = np.bincount(prob.i, prob.a_ij, n) + np.bincount(prob.j, prob.a_ji, n)
        games = np.bincount(prob.i, prob.n_ij, n) + np.bincount(prob.j, prob.n_ij, n)
        theta = np.log(wins + 0.5) - np.log(games - wins + 0.5)
    else:
        theta = np.array(init, dtype=np.float64).reshape(-1)
        if theta.shape != (n,) or not np.all(np.isfinite(theta)):
            raise ValueError(f"init must be {n} finite numbers.")
    theta = theta - theta.mean()
    if n < 2:
        return SolverResult(theta, 0.0, 0.0, 0, True, 0.0, "firth")
    # one BLAS thread: these dense factorisations are small enough that thread
    # start-up and contention cost more than they gain (5x on a loaded machine)
    with single_blas_thread(0 if n <= SINGLE_THREAD_MAX_ITEMS else n):
        point = prob.evaluate(theta)
        if point is None:
            raise ValueError("the comparison graph is not connected: bias reduction cannot identify the scores.")
        score, leverage = prob.adjusted_score(point)
        it = 0
        for it in range(1, max_iter + 1):
            if _step_size(score, point) <= tol:
                it -= 1
                break
            step = prob.scoring_step(point, score, leverage)
            slope = float(score @ step)
            # The full step is taken when it raises l* enough (Armijo), or, near the
            # optimum where changes of l* are below its rounding error, when it does
            # not lower l* beyond that error and shrinks the adjusted score.
            noise = 8.0 * np.finfo(float).eps * max(1.0, abs(point.penalized))
            trial = prob.evaluate(point.theta + step)
            accepted = None
            if trial is not None and trial.penalized >= point.penalized - noise:
                trial_score, trial_leverage = prob.adjusted_score(trial)
                if (trial.penalized >= point.penalized + 1e-4 * slope
                        or float(trial_score @ trial_score) < float(score @ score)):
                    accepted = trial, trial_score, trial_leverage
            t = 0.5
            while accepted is None and t > 1e-12:  # backtracking (Armijo) on l*
                trial = prob.evaluate(point.theta + t * step)
                if trial is not None and trial.penalized >= point.penalized + 1e-4 * t * slope:
                    accepted = (trial, *prob.adjusted_score(trial))
                t *= 0.5
            if accepted is None:
                break  # no ascent left in double precision: report the criterion as it stands
            point, score, leverage = accepted
    theta = point.theta - point.theta.mean()
    return SolverResult(
        scores=theta,
        log_likelihood=point.log_likelihood,
        log_posterior=point.penalized,
        n_iter=int(it),
        converged=_step_size(score, point) <= tol,
        grad_norm=float(np.max(np.abs(score))),
        solver="firth",
    )


def _step_size(score: np.ndarray, point: _Point) -> float:
    return float(np.max(np.abs(score) / np.maximum(point.info_diag, 1e-300)))
