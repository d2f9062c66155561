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

import numpy as np
from scipy import linalg, optimize, sparse
from scipy.sparse import linalg as splinalg
from scipy.special import expit, log_expit, wrightomega

from bradley.data import PairCounts

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
DENSE_NEWTON_MAX_ITEMS = 2000


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

    @classmethod
    def build(cls, pairs: PairCounts, prior_variance: float | None) -> "_Problem":
        half_ties = 0.5 * pairs.ties
        a_ij = pairs.wins_first + half_ties
        a_ji = pairs.wins_second + half_ties
        n_ij = a_ij + a_ji
        n = pairs.n_items
        i, j = pairs.first, pairs.second
        wins = np.bincount(i, a_ij, n) + np.bincount(j, a_ji, n)
        games = np.bincount(i, n_ij, n) + np.bincount(j, n_ij, n)
        precision = 0.0 if prior_variance is None else 1.0 / float(prior_variance)
        return cls(i, j, a_ij, a_ji, n_ij, n, wins, games, precision)

    def probabilities(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """P(i beats j) and P(j beats i) per pair, each computed directly (no 1 - p round-off)."""
        d = theta[self.i] - theta[self.j]
        return expit(d), expit(-d)

    def gradient_from(self, theta: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
        # Per-pair residual a_ij * q - a_ji * p: for lopsided pairs both terms are
        # small, so there is no cancellation between huge win and expected-win sums.
        r = self.a_ij * q - self.a_ji * p
        return np.bincount(self.i, r, self.n) - np.bincount(self.j, r, self.n) - self.prior_precision * theta

    def gradient(self, theta: np.ndarray) -> np.ndarray:
        return self.gradient_from(theta, *self.probabilities(theta))

    def log_likelihood(self, theta: np.ndarray) -> float:
        d = theta[self.i] - theta[self.j]
        return float(np.dot(self.a_ij, log_expit(d)) + np.dot(self.a_ji, log_expit(-d)))

    def log_posterior(self, theta: np.ndarray) -> float:
        return self.log_likelihood(theta) - 0.5 * self.prior_precision * float(theta @ theta)

    def diagonal_information(self, p: np.ndarray, q: np.ndarray) -> np.ndarray:
        h = self.n_ij * p * q
        return np.bincount(self.i, h, self.n) + np.bincount(self.j, h, self.n) + self.prior_precision

    def step_size(self, grad: np.ndarray, p: np.ndarray, q: np.ndarray) -> float:
        """Largest one-item Newton step |g_i| / I_ii: the convergence measure."""
        if not self.n:
            return 0.0
        return float(np.max(np.abs(grad) / np.maximum(self.diagonal_information(p, q), 1e-300)))

    def converged(self, theta: np.ndarray, grad: np.ndarray, tol: float) -> bool:
        return self.step_size(grad, *self.probabilities(theta)) <= tol

    def result(self, theta: np.ndarray, n_iter: int, tol: float, solver: str) -> SolverResult:
        theta = theta - theta.mean()
        grad = self.gradient(theta)
        ll = self.log_likelihood(theta)
        lp = ll - 0.5 * self.prior_precision * float(theta @ theta)
        return SolverResult(
            scores=theta,
            log_likelihood=ll,
            log_posterior=lp,
            n_iter=int(n_iter),
            converged=self.converged(theta, grad, tol),
            grad_norm=float(np.max(np.abs(grad))) if len(grad) else 0.0,
            solver=solver,
        )


def bt_log_likelihood(scores: np.ndarray, pairs: PairCounts) -> float:
    """Bradley-Terry log-likelihood of ``pairs`` at log-strengths ``scores``.

    Ties count half a win each way. Computed with ``log_expit`` so it is exact
    for score differences of any size.

    Examples
    --------
    >>> p = PairCounts.from_matrix([[0, 1], [1, 0]])
    >>> round(bt_log_likelihood(np.zeros(2), p), 6) == round(2 * np.log(0.5), 6)
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


def _curvature(prob: _Problem, theta: np.ndarray) -> np.ndarray:
    p, q = prob.probabilities(theta)
    return prob.n_ij * p * q


def _dense_neg_hessian(prob: _Problem, theta: np.ndarray, add_gauge: bool) -> np.ndarray:
    n = prob.n
    h = _curvature(prob, theta)
    flat = np.bincount(prob.i * n + prob.j, h, n * n)
    lap = -(flat + flat.reshape(n, n).T.ravel()).reshape(n, n)
    diag = np.bincount(prob.i, h, n) + np.bincount(prob.j, h, n) + prob.prior_precision
    lap[np.diag_indices(n)] = diag
    if add_gauge and prob.prior_precision == 0.0:
        # Adding J/n makes the Laplacian positive definite without changing the
        # solution for right-hand sides orthogonal to the all-ones vector.
        lap += 1.0 / n
    return lap


def _check(theta0: np.ndarray | None, n: int) -> np.ndarray:
    if theta0 is None:
        return np.zeros(n)
    theta = np.array(theta0, dtype=np.float64).reshape(-1)
    if theta.shape != (n,) or not np.all(np.isfinite(theta)):
        raise ValueError(f"init must be {n} finite numbers.")
    return theta - theta.mean()


def _fixed_point_update(
    theta: np.ndarray, log_gain: np.ndarray, numer: np.ndarray, log_denom: np.ndarray, precision: float
) -> np.ndarray:
    """Coordinate-wise maximiser of ``numer*t - exp(t)*exp(log_denom) - precision*t^2/2``.

    Without a prior this is ``theta + log_gain``; with one it is solved in
    closed form by the Wright omega function (omega + log omega = z), which
    keeps the update exact and overflow-free.
    """
    if precision == 0.0:
        return theta + log_gain
    var = 1.0 / precision
    return numer * var - np.real(wrightomega(log_denom + np.log(var) + numer * var))


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
        Starting log-strengths (default zeros).
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
    prob = _Problem.build(pairs, prior_variance)
    theta = _check(init, prob.n)
    log_wins = np.log(np.where(prob.wins > 0, prob.wins, 1.0))
    it = 0
    for it in range(1, max_iter + 1):
        p, q = prob.probabilities(theta)
        grad = prob.gradient_from(theta, p, q)
        if prob.step_size(grad, p, q) <= tol:
            it -= 1
            break
        e = prob.n_ij * p
        expected = np.bincount(prob.i, e, prob.n) + np.bincount(prob.j, prob.n_ij * q, prob.n)
        with np.errstate(divide="ignore"):
            log_expected = np.log(expected)
        # sum_j n_ij / (pi_i + pi_j) = exp(-theta_i) * expected wins of i
        theta = _fixed_point_update(
            theta, log_wins - log_expected, prob.wins, log_expected - theta, prob.prior_precision
        )
        theta -= theta.mean()
    return prob.result(theta, it, tol, "mm")


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
    prob = _Problem.build(pairs, prior_variance)
    theta = _check(init, prob.n)
    it = 0
    for it in range(1, max_iter + 1):
        p, q = prob.probabilities(theta)
        # A_i = sum_j a_ij sigma(theta_j - theta_i); B_i = sum_j a_ji sigma(theta_i - theta_j)
        won = np.bincount(prob.i, prob.a_ij * q, prob.n) + np.bincount(prob.j, prob.a_ji * p, prob.n)
        lost = np.bincount(prob.i, prob.a_ji * p, prob.n) + np.bincount(prob.j, prob.a_ij * q, prob.n)
        grad = prob.gradient_from(theta, p, q)
        if prob.step_size(grad, p, q) <= tol:
            it -= 1
            break
        with np.errstate(divide="ignore"):
            log_won, log_lost = np.log(won), np.log(lost)
        theta = _fixed_point_update(theta, log_won - log_lost, won, log_lost - theta, prob.prior_precision)
        theta -= theta.mean()
    return prob.result(theta, it, tol, "newman")


def newton(
    pairs: PairCounts,
    init: np.ndarray | None = None,
    *,
    prior_variance: float | None = None,
    tol: float = DEFAULT_TOL,
    max_iter: int = 100,
    dense: bool | None = None,
) -> SolverResult:
    """Newton's method with backtracking on the BT log-posterior.

    For up to ``DENSE_NEWTON_MAX_ITEMS`` items the Newton system is solved by
    Cholesky on the dense (gauge-fixed) Fisher information; beyond that it is
    solved inexactly by Jacobi-preconditioned conjugate gradients on the sparse
    graph Laplacian (truncated Newton), whose sparsity pattern is built once.

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
    prob = _Problem.build(pairs, prior_variance)
    theta = _check(init, prob.n)
    use_dense = prob.n <= DENSE_NEWTON_MAX_ITEMS if dense is None else dense
    solve = _dense_newton_step if use_dense else _SparseNewtonStep(prob)
    objective = prob.log_posterior(theta)
    grad = prob.gradient(theta)
    grad0 = float(np.linalg.norm(grad)) or 1.0
    it = 0
    for it in range(1, max_iter + 1):
        if prob.converged(theta, grad, tol):
            it -= 1
            break
        forcing = min(0.1, np.sqrt(float(np.linalg.norm(grad)) / grad0))
        step = solve(prob, theta, grad, forcing)
        slope = float(grad @ step)
        t = 1.0
        while True:
            candidate = theta + t * step
            cand_obj = prob.log_posterior(candidate)
            # Armijo condition; the tolerance term guards against round-off at the optimum.
            if cand_obj >= objective + 1e-4 * t * slope - 1e-12 * abs(objective) or t < 1e-10:
                break
            t *= 0.5
        theta = candidate - candidate.mean()
        objective = prob.log_posterior(theta)
        grad = prob.gradient(theta)
    return prob.result(theta, it, tol, "newton" if use_dense else "newton-cg")


def _dense_newton_step(prob: _Problem, theta: np.ndarray, grad: np.ndarray, forcing: float) -> np.ndarray:
    info = _dense_neg_hessian(prob, theta, add_gauge=True)
    ridge = 0.0
    scale = float(np.max(np.diag(info)))
    while True:
        try:
            factor = linalg.cho_factor(info + ridge * np.eye(prob.n), check_finite=False)
            return linalg.cho_solve(factor, grad, check_finite=False)
        except linalg.LinAlgError:
            # Curvature underflow far from the optimum (probabilities of 0 or 1
            # in double precision): damp the step, Levenberg-Marquardt style.
            ridge = max(ridge * 100.0, 1e-12 * scale, 1e-300)


class _SparseNewtonStep:
    """Truncated Newton step: PCG on the sparse Fisher information.

    The CSR pattern (pairs both ways plus the diagonal) is built once; each
    step only rewrites ``data`` through a fixed permutation.
    """

    def __init__(self, prob: _Problem):
        n, m = prob.n, len(prob.i)
        rows = np.concatenate([prob.i, prob.j, np.arange(n)])
        cols = np.concatenate([prob.j, prob.i, np.arange(n)])
        # Store each entry's source position as its value; after conversion the
        # data array tells where every CSR slot comes from.
        positions = np.arange(2 * m + n, dtype=np.float64)
        mat = sparse.csr_matrix((positions, (rows, cols)), shape=(n, n))
        self.perm = mat.data.astype(np.int64)
        self.matrix = mat
        self.m = m

    def __call__(self, prob: _Problem, theta: np.ndarray, grad: np.ndarray, forcing: float) -> np.ndarray:
        h = _curvature(prob, theta)
        diag = np.bincount(prob.i, h, prob.n) + np.bincount(prob.j, h, prob.n) + prob.prior_precision
        values = np.concatenate([-h, -h, diag])
        self.matrix.data = values[self.perm]
        inv_diag = 1.0 / np.maximum(diag, 1e-300)
        precond = splinalg.LinearOperator(self.matrix.shape, matvec=lambda v: inv_diag * v, dtype=np.float64)
        rhs = grad - grad.mean() if prob.prior_precision == 0.0 else grad
        step, _ = splinalg.cg(self.matrix, rhs, rtol=max(forcing, 1e-14), atol=0.0, maxiter=500, M=precond)
        return step - step.mean() if prob.prior_precision == 0.0 else step


def lbfgs(
    pairs: PairCounts,
    init: np.ndarray | None = None,
    *,
    prior_variance: float | None = None,
    tol: float = DEFAULT_TOL,
    max_iter: int = 10_000,
) -> SolverResult:
    """Limited-memory BFGS (scipy's L-BFGS-B) on the BT log-posterior.

    The objective is scaled by the number of comparisons so that scipy's
    tolerances mean the same on any data size; convergence is then judged by
    the common gradient criterion.

    Examples
    --------
    >>> p = PairCounts.from_matrix([[0, 2], [1, 0]])
    >>> bool(np.isclose(lbfgs(p).scores[0], np.log(2) / 2, atol=1e-6))
    True
    """
    prob = _Problem.build(pairs, prior_variance)
    theta0 = _check(init, prob.n)
    total = max(float(prob.n_ij.sum()), 1.0)
    # Diagonal preconditioning: optimise u = theta * sqrt(I_ii), with I the
    # Fisher information at the start, so the Hessian's diagonal is about 1.
    # The criterion |g_i| <= tol * I_ii then holds when scipy's
    # max |grad_u f| <= tol * sqrt(I_ii) / total (with margin, as I changes).
    scale = np.sqrt(np.maximum(prob.diagonal_information(*prob.probabilities(theta0)), 1e-300))
    gtol = 0.1 * tol * float(scale.min()) / total

    def fun(u: np.ndarray) -> tuple[float, np.ndarray]:
        theta = u / scale
        return -prob.log_posterior(theta) / total, -prob.gradient(theta) / (scale * total)

    res = optimize.minimize(
        fun,
        theta0 * scale,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iter, "gtol": gtol, "ftol": 0.0, "maxcor": 20, "maxls": 50},
    )
    res.x = res.x / scale
    return prob.result(res.x, res.nit, tol, "lbfgs")


SOLVERS: dict[str, Callable[..., SolverResult]] = {
    "mm": mm,
    "newman": newman,
    "newton": newton,
    "lbfgs": lbfgs,
}
