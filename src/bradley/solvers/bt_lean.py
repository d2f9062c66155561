"""Newton-CG for Bradley-Terry at ~1e8 pairs: no pair-sized temporaries per iteration.

:func:`bradley.solvers.bt.newton` hands large sparse problems (more than
``DENSE_NEWTON_MAX_ITEMS`` items and at least ``LEAN_MIN_PAIRS`` pairs) to
:func:`lean_newton`. It runs the same safeguarded truncated Newton iteration
(same Jacobi-preconditioned CG steps, trust radius, acceptance certificates,
Armijo backtracking and convergence criterion, so the same iterates up to
rounding) but:

- reads the pair arrays of the :class:`~bradley.data.PairCounts` in place
  (item codes, wins each way and ties are never copied; ``a_ij = wins + ties/2``
  is formed on the fly);
- evaluates the pairs in cache-sized chunks (``CHUNK`` pairs, or as many
  pairs as items when there are more items, so that the per-chunk
  ``bincount`` over the items costs O(pairs) in all) with four reused
  buffers written with ``out=`` (no fresh memory mapped per iteration:
  at 1e8 pairs the page faults of fresh temporaries cost as much as the
  arithmetic, and chunks keep the ~20 elementwise passes in cache);
- allocates per pair only the curvature, which is the data array of the CSR
  matrix CG multiplies by, and that matrix's int32 column indices: 12 bytes
  a pair, against ~80 for the general path;
- computes the curvature bound ``step' H step`` with two sparse products
  instead of a pass over the pairs, and the final log-likelihood exactly with
  ``log_expit`` (no lopsided-pair correction needed).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.special import expit, log_expit

from bradley.data import PairCounts
from bradley.solvers.bt import NEWTON_MAX_TRUST_RADIUS, NEWTON_TRUST_RADIUS, SolverResult, _ItemSums

#: Pairs from which newton() uses the lean kernels (when items exceed the dense limit).
LEAN_MIN_PAIRS = 1_000_000
_CHUNK = 1 << 20
#: Pairs evaluated at a time (four float64 buffers of this size stay in cache); max(CHUNK, items) is used.
CHUNK = 1 << 18


def pairs_sorted(first: np.ndarray, second: np.ndarray) -> bool:
    """Whether pairs are sorted by (first, second) with no repeats, checked in chunks (no pair-sized temporaries).

    Examples
    --------
    >>> pairs_sorted(np.array([0, 0, 1]), np.array([1, 2, 2])), pairs_sorted(np.array([0, 0]), np.array([2, 1]))
    (True, False)
    """
    m = len(first)
    for start in range(0, max(m - 1, 0), _CHUNK):
        stop = min(start + _CHUNK + 1, m)
        a, b = first[start:stop], second[start:stop]
        step = np.diff(a)
        if bool(np.any(step < 0)) or bool(np.any((step == 0) & (b[1:] <= b[:-1]))):
            return False
    return True


def _dot(a: np.ndarray, b: np.ndarray, scratch: np.ndarray) -> float:
    """``a @ b`` without BLAS.

    On a busy machine threaded BLAS dots per chunk stall: at 10M pairs and a
    load of 14 on 2 cores the log-likelihood took 5.2-8.9 s with BLAS dots,
    0.36-0.53 s without.
    """
    np.multiply(a, b, out=scratch)
    return float(scratch.sum())


class LeanProblem:
    """The pair data of a :class:`PairCounts`, read in place, evaluated in cache-sized chunks.

    The only pair-sized arrays the fit allocates are the curvatures ``h``
    (the data array of the CSR matrix CG multiplies by) and its int32 column
    indices: 12 bytes a pair. Everything else is computed chunk by chunk
    (``max(CHUNK, n_items)`` pairs) in four reused buffers that stay in cache.
    """

    def __init__(self, pairs: PairCounts, prior_variance: float | None):
        self.i = np.ascontiguousarray(pairs.first, dtype=np.int64)
        self.j = np.ascontiguousarray(pairs.second, dtype=np.int64)
        self.wf = np.ascontiguousarray(pairs.wins_first, dtype=np.float64)
        self.ws = np.ascontiguousarray(pairs.wins_second, dtype=np.float64)
        ties = np.ascontiguousarray(pairs.ties, dtype=np.float64)
        self.t: np.ndarray | None = ties if bool(np.any(ties)) else None
        self.n = n = pairs.n_items
        self.m = m = len(self.i)
        self.prior_precision = 0.0 if prior_variance is None else 1.0 / float(prior_variance)
        self.sum_i = _ItemSums(self.i, n, is_sorted=True)
        self.sum_j = _ItemSums(self.j, n, is_sorted=False)
        first_side = self.sum_i(self.wf), self.sum_i(self.ws)
        second_side = self.sum_j(self.wf), self.sum_j(self.ws)
        self.wins = first_side[0] + second_side[1]
        self.games = first_side[0] + first_side[1] + second_side[0] + second_side[1]
        if self.t is not None:
            tied = self.sum_i(self.t) + self.sum_j(self.t)
            self.wins += 0.5 * tied
            self.games += tied
        # chunks, with the segments of equal first item inside each (for np.add.reduceat)
        starts, ids = self.sum_i.starts, self.sum_i.nonempty
        self.chunks: list[tuple[int, int, np.ndarray, np.ndarray]] = []
        # a chunk is at least as long as the item count: each chunk's bincount over the
        # second items is O(n), so shorter chunks would cost O((m / CHUNK) n) per evaluation
        self.chunk = chunk = max(CHUNK, n, 1)
        for c0 in range(0, m, chunk):
            c1 = min(c0 + chunk, m)
            k0 = int(np.searchsorted(starts, c0, side="right")) - 1
            k1 = int(np.searchsorted(starts, c1, side="left"))
            local = np.maximum(starts[k0:k1], c0) - c0
            self.chunks.append((c0, c1, local, ids[k0:k1]))
        size = min(chunk, m)
        self.E, self.P, self.R, self.N = np.empty(size), np.empty(size), np.empty(size), np.empty(size)
        self.h = np.empty(m)
        indptr = np.concatenate(([0], np.cumsum(self.sum_i.counts)))
        index_dtype = np.int32 if max(n, m) < 2**31 - 1 else np.int64
        self.upper = sparse.csr_matrix((self.h, self.j.astype(index_dtype), indptr.astype(index_dtype)),
                                       shape=(n, n), copy=False)
        if self.upper.data is not self.h:  # scipy copied it: point it back at the curvature array
            self.upper.data = self.h
        self.upper_t = self.upper.T

    def _chunk(self, c0: int, c1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None,
                                                np.ndarray, np.ndarray, np.ndarray]:
        k = c1 - c0
        t = self.t[c0:c1] if self.t is not None else None
        return (self.i[c0:c1], self.j[c0:c1], self.wf[c0:c1], self.ws[c0:c1], t,
                self.E[:k], self.P[:k], self.R[:k])

    @staticmethod
    def _differences_into(out: np.ndarray, scratch: np.ndarray, theta: np.ndarray, i: np.ndarray,
                          j: np.ndarray) -> None:
        """``out = theta[i] - theta[j]`` (scratch is overwritten)."""
        # mode="clip" (codes are valid): with the default mode numpy buffers ``out``
        np.take(theta, i, out=out, mode="clip")
        np.take(theta, j, out=scratch, mode="clip")
        out -= scratch

    def evaluate(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gradient and diagonal information at ``theta``; leaves the pair curvatures in ``h``.

        Per pair ``e = exp(-d)``, ``p = 1 / (1 + e)``, ``q = e p``; the residual
        ``a_ij q - a_ji p`` and the curvature ``n_ij p q``. ``q`` is formed
        before any count multiplies it, so weights up to 1e150 cannot overflow
        (``a_ij e`` would at ``d = -550``); ``-d`` is capped at 600 so that
        ``e`` itself stays finite (moves ``p`` by less than 1e-260).
        """
        n = self.n
        grad, info = np.zeros(n), np.zeros(n)
        neg = -theta
        for c0, c1, starts, ids in self.chunks:
            i, j, wf, ws, t, E, P, R = self._chunk(c0, c1)
            h, N = self.h[c0:c1], self.N[:c1 - c0]
            self._differences_into(E, P, neg, i, j)  # -d
            np.minimum(E, 600.0, out=E)  # exp(-d) may underflow to 0 (p = 1, q = 0), never overflow
            np.exp(E, out=E)
            np.add(E, 1.0, out=R)
            np.reciprocal(R, out=R)  # p
            E *= R  # q = e p <= 1: the counts multiply probabilities, never exp(-d)
            if t is None:
                np.multiply(wf, E, out=P)
                np.multiply(ws, R, out=N)
                P -= N  # residual a_ij q - a_ji p
                np.add(wf, ws, out=N)  # n_ij
            else:
                np.multiply(t, 0.5, out=N)
                np.add(N, wf, out=P)  # a_ij
                N += ws  # a_ji
                P *= E
                N *= R
                P -= N  # residual
                np.add(wf, ws, out=N)
                N += t  # n_ij
            grad[ids] += np.add.reduceat(P, starts)
            grad -= np.bincount(j, P, n)
            np.multiply(R, E, out=h)  # p q
            h *= N  # n_ij p q
            info[ids] += np.add.reduceat(h, starts)
            info += np.bincount(j, h, n)
        if self.prior_precision:
            grad -= self.prior_precision * theta
        info += self.prior_precision
        return grad, info

    def quad(self, step: np.ndarray, info_diag: np.ndarray) -> float:
        """``sum_pairs h (step_i - step_j)^2 + precision |step|^2`` for the curvatures now in ``h``."""
        return float(step @ (info_diag * step - self.upper @ step - self.upper_t @ step))

    def gain(self, theta: np.ndarray, step: np.ndarray) -> float:
        """``log_posterior(theta + step) - log_posterior(theta)`` to full relative precision.

        As :meth:`bradley.solvers.bt._Problem.gain`: ``-log1p(q expm1(-delta))``
        per game won by ``first`` (``-log1p(p expm1(delta))`` per game won by
        ``second``) where the difference moves by at most 1, ``log_expit``
        differences elsewhere. Leaves ``h`` unchanged.
        """
        change = 0.0
        for c0, c1, _, _ in self.chunks:
            i, j, wf, ws, t, E, P, R = self._chunk(c0, c1)
            self._differences_into(E, P, step, i, j)  # delta
            np.abs(E, out=R)
            big = np.flatnonzero(R > 1.0)
            for sign, wins in ((1.0, wf), (-1.0, ws)):
                self._differences_into(R, P, theta, i, j)  # d
                if sign < 0:
                    np.negative(R, out=R)
                np.negative(R, out=P)
                expit(P, out=P)  # q (first's games) or p (second's)
                np.multiply(E, -sign, out=R)
                np.clip(R, -1.0, 1.0, out=R)
                np.expm1(R, out=R)
                R *= P
                np.log1p(R, out=R)
                R[big] = 0.0
                change -= _dot(wins, R, P)
                if t is not None:
                    change -= 0.5 * _dot(t, R, P)
            if len(big):
                ib, jb = i[big], j[big]
                d = theta[ib] - theta[jb]
                dd = step[ib] - step[jb]
                a_ij, a_ji = wf[big], ws[big]
                if t is not None:
                    a_ij = a_ij + 0.5 * t[big]
                    a_ji = a_ji + 0.5 * t[big]
                change += float(a_ij @ (log_expit(d + dd) - log_expit(d))
                                + a_ji @ (log_expit(-d - dd) - log_expit(-d)))
        return change - 0.5 * self.prior_precision * float(step @ (2.0 * theta + step))

    def log_likelihood(self, theta: np.ndarray) -> float:
        """``sum a_ij log p_ij + a_ji log q_ij`` = ``-sum n_ij softplus(-d) - sum a_ji d``, exact at any distance.

        ``softplus(x) = max(x, 0) + log1p(exp(-|x|))`` never overflows.
        """
        total = 0.0
        for c0, c1, _, _ in self.chunks:
            i, j, wf, ws, t, E, P, R = self._chunk(c0, c1)
            self._differences_into(E, P, theta, i, j)  # d
            np.abs(E, out=R)
            np.negative(R, out=R)
            np.exp(R, out=R)
            np.log1p(R, out=R)
            np.negative(E, out=P)
            np.maximum(P, 0.0, out=P)
            R += P  # softplus(-d)
            total -= _dot(wf, R, P) + _dot(ws, R, P) + _dot(ws, E, P)
            if t is not None:
                total -= _dot(t, R, P) + 0.5 * _dot(t, E, P)
        return total


def lean_problem(pairs: PairCounts, prior_variance: float | None) -> LeanProblem | None:
    """A :class:`LeanProblem`, or None where the general path must run.

    That is when pairs are not sorted by (first, second) (the general path
    sorts them) or when, without a prior, the counts are tiny (mean per pair
    below 1e-6: the general path rescales them).
    """
    if not pairs_sorted(pairs.first, pairs.second):
        return None
    if prior_variance is None and pairs.n_pairs:
        total = float(np.sum(pairs.wins_first)) + float(np.sum(pairs.wins_second)) + float(np.sum(pairs.ties))
        if 0.0 < total / pairs.n_pairs < 1e-6:
            return None
    return LeanProblem(pairs, prior_variance)


def lean_newton(prob: LeanProblem, theta: np.ndarray, tol: float, max_iter: int) -> SolverResult:
    """The sparse branch of :func:`bradley.solvers.bt._newton_iterations` on a :class:`LeanProblem`.

    Same steps and safeguards; the curvature bound is evaluated (two sparse
    products) before the candidate overwrites the curvatures, and the
    probabilities at ``theta`` that backtracking needs are recomputed inside
    :meth:`LeanProblem.gain` (a rare path).
    """
    from scipy.sparse import linalg as splinalg

    n = prob.n
    gauge_free = prob.prior_precision == 0.0
    grad, info_diag = prob.evaluate(theta)
    merit = float(grad @ grad)
    grad0 = np.sqrt(merit) or 1.0
    radius = NEWTON_TRUST_RADIUS
    it = 0
    for it in range(1, max_iter + 1):
        if float(np.max(np.abs(grad) / np.maximum(info_diag, 1e-300))) <= tol:
            it -= 1
            break
        forcing = min(0.1, np.sqrt(np.sqrt(merit) / grad0))
        diag = info_diag
        inv_diag = 1.0 / np.maximum(diag, 1e-300)
        upper, upper_t = prob.upper, prob.upper_t
        matrix = splinalg.LinearOperator(
            (n, n), matvec=lambda v: diag * v - upper @ v - upper_t @ v, dtype=np.float64)  # noqa: B023
        precond = splinalg.LinearOperator((n, n), matvec=lambda v: inv_diag * v, dtype=np.float64)  # noqa: B023
        rhs = grad - grad.mean() if gauge_free else grad
        step, _ = splinalg.cg(matrix, rhs, rtol=max(forcing, 1e-14), atol=0.0,
                              maxiter=min(500, max(50, n)), M=precond)
        if gauge_free:
            step = step - step.mean()
        slope = float(grad @ step)
        if not (np.isfinite(slope) and slope > 0.0):
            step = grad / np.maximum(info_diag, 1e-300)
            slope = float(grad @ step)
        span = float(step.max() - step.min()) if n else 0.0
        capped = span > radius
        if capped:
            step = step * (radius / span)
            slope *= radius / span
        # the curvature bound needs the curvature at theta, which evaluating the candidate overwrites
        bound_span = min(span, radius)
        if bound_span > 50.0:
            lower_bound = -np.inf
        else:
            c = ((np.expm1(bound_span) - bound_span) / bound_span**2 if bound_span > 1e-4
                 else 0.5 + bound_span / 6.0 + bound_span * bound_span / 24.0)
            lower_bound = slope - c * prob.quad(step, info_diag)
        candidate = theta + step
        grad_c, info_c = prob.evaluate(candidate)
        merit_c = float(grad_c @ grad_c)
        if not (merit_c <= (1.0 - 1e-4) * merit and (float(grad_c @ step) >= 0.0 or lower_bound >= 0.0)):
            t = 1.0
            while prob.gain(theta, t * step) < 1e-4 * t * slope:
                t *= 0.5
                if t * (span if not capped else radius) < 1e-14 * (1.0 + float(np.max(np.abs(theta)))):
                    t = 0.0
                    break
            if t == 0.0:
                break  # grad and info_diag are those at theta
            if t < 1.0:
                radius = max(t * min(span, radius), 1e-3)
                candidate = theta + t * step
                grad_c, info_c = prob.evaluate(candidate)
                merit_c = float(grad_c @ grad_c)
            elif capped:
                radius = min(4.0 * radius, NEWTON_MAX_TRUST_RADIUS)
        elif capped:
            radius = min(4.0 * radius, NEWTON_MAX_TRUST_RADIUS)
        theta, grad, info_diag, merit = candidate, grad_c, info_c, merit_c
    return lean_result(prob, theta, it, tol, grad, info_diag)


def lean_result(
    prob: LeanProblem, theta: np.ndarray, n_iter: int, tol: float, grad: np.ndarray, info_diag: np.ndarray
) -> SolverResult:
    """As :meth:`bradley.solvers.bt._Problem.result` (``grad``/``info_diag`` at ``theta``)."""
    theta = theta - theta.mean()
    if prob.prior_precision:  # centring changes the prior's gradient
        grad, info_diag = prob.evaluate(theta)
    step = float(np.max(np.abs(grad) / np.maximum(info_diag, 1e-300))) if prob.n else 0.0
    ll = prob.log_likelihood(theta)
    lp = ll - 0.5 * prob.prior_precision * float(theta @ theta)
    return SolverResult(
        scores=theta,
        log_likelihood=ll,
        log_posterior=lp,
        n_iter=int(n_iter),
        converged=step <= tol,
        grad_norm=float(np.max(np.abs(grad))) if len(grad) else 0.0,
        solver="newton-cg",
    )
