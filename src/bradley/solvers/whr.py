"""Whole-history rating (Coulom 2008): MAP of Wiener-process strength histories.

Pure kernels on arrays. Every item's log-strength is a Wiener process with
variance ``w2`` per time unit, observed at the times it plays ("nodes"); games
at the same time for an item share one node. The log-posterior is

* the game log-likelihood (Bradley-Terry, or Davidson with a draw parameter
  ``theta = log(nu)``), optionally with a first-mover advantage ``h``;
* the Wiener prior ``-(r[k+1] - r[k])**2 / (2 * w2 * dt)`` between an item's
  consecutive nodes;
* Coulom's anchor: ``prior_wins`` virtual wins and as many virtual losses
  against a zero-score opponent at each item's first node.

The MAP is found by Newton's method on all nodes at once. The Newton system is
solved by conjugate gradients preconditioned with the items' tridiagonal
Hessians (each item's Wiener chain plus its own game curvature, opponents held
fixed, i.e. Coulom's per-player Newton matrix); the tridiagonal blocks of all
items form one banded matrix, factorised by one LAPACK call. A backtracking
line search on the log-posterior (concave) makes every step an ascent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, log_expit

__all__ = ["WHRLayout", "whr_layout", "whr_map", "whr_log_posterior", "tridiagonal_inverse_band", "WHRResult"]

LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True)
class WHRLayout:
    """Nodes (item, time) sorted by item then time, and the games between them.

    ``node_item``/``node_time`` (N,): the item and the time of each node;
    ``first`` (N,) bool: the item's first node; ``gap`` (N,): time to the item's
    next node (0 for its last node); ``a``/``b`` (G,): nodes of the left and
    right item of each game.
    """

    node_item: np.ndarray
    node_time: np.ndarray
    first: np.ndarray
    gap: np.ndarray
    a: np.ndarray
    b: np.ndarray

    @property
    def n_nodes(self) -> int:
        return len(self.node_item)


def whr_layout(left: np.ndarray, right: np.ndarray, time: np.ndarray) -> WHRLayout:
    """Build the node layout from per-game item codes and float times."""
    g = len(left)
    items = np.concatenate([left, right]).astype(np.int64)
    times = np.concatenate([time, time]).astype(np.float64)
    order = np.lexsort((times, items))
    si, st = items[order], times[order]
    new = np.ones(2 * g, dtype=bool)
    new[1:] = (si[1:] != si[:-1]) | (st[1:] != st[:-1])
    node_of_sorted = np.cumsum(new) - 1
    node = np.empty(2 * g, dtype=np.int64)
    node[order] = node_of_sorted
    node_item, node_time = si[new], st[new]
    n = len(node_item)
    first = np.ones(n, dtype=bool)
    first[1:] = node_item[1:] != node_item[:-1]
    gap = np.zeros(n)
    same_next = ~first[1:]
    gap[:-1][same_next] = (node_time[1:] - node_time[:-1])[same_next]
    return WHRLayout(node_item, node_time, first, gap, node[:g], node[g:])


@dataclass
class WHRResult:
    """MAP node scores, the extra parameters and the convergence record."""

    r: np.ndarray
    first_mover: float
    log_nu: float
    log_posterior: float
    log_likelihood: float
    converged: bool
    n_iter: int
    grad_norm: float
    own_diag: np.ndarray  # per-node curvature of the item's own Hessian (negated)
    off: np.ndarray  # (N-1,) off-diagonal of the negated tridiagonal Hessian


class _Problem:
    """Log-posterior, gradient and Hessian pieces of one WHR fit (internal)."""

    def __init__(self, lay: WHRLayout, y: np.ndarray, w: np.ndarray, order: np.ndarray | None,
                 w2: float, prior_wins: float, davidson: bool):
        self.lay, self.w, self.order = lay, w, order
        self.davidson = davidson
        if davidson:
            self.y_draw = np.where(y == 0.5, 1.0, 0.0)
            self.y_win = np.where(y == 0.5, 0.0, y)
            self.y_loss = np.where(y == 0.5, 0.0, 1.0 - y)
        self.y = y
        n = lay.n_nodes
        link = lay.gap[:-1] > 0  # node k and k+1 belong to the same item
        prec = np.zeros(max(n - 1, 0))
        if w2 > 0:
            prec[link] = 1.0 / (w2 * lay.gap[:-1][link])
        self.prec = prec
        self.log_norm = -0.5 * float(np.sum(LOG_2PI + np.log(w2 * lay.gap[:-1][link]))) if w2 > 0 else 0.0
        self.k = prior_wins
        self.n = n
        self.nh = 1 if order is not None else 0
        self.nt = 1 if davidson else 0

    def split(self, x: np.ndarray) -> tuple[np.ndarray, float, float]:
        n = self.n
        h = float(x[n]) if self.nh else 0.0
        t = float(x[n + self.nh]) if self.nt else 0.0
        return x[:n], h, t

    def diff(self, x: np.ndarray) -> np.ndarray:
        r, h, _ = self.split(x)
        d = r[self.lay.a] - r[self.lay.b]
        if self.order is not None:
            d = d + h * self.order
        return d

    def game_loglik(self, x: np.ndarray) -> float:
        d = self.diff(x)
        if not self.davidson:
            ll = self.y * log_expit(d) + (1.0 - self.y) * log_expit(-d)
        else:
            _, _, t = self.split(x)
            half = 0.5 * d
            lse = np.logaddexp(np.logaddexp(half, -half), t)
            ll = self.y_win * half - self.y_loss * half + self.y_draw * t - lse
        return float(np.dot(self.w, ll))

    def prior(self, x: np.ndarray) -> float:
        r = x[: self.n]
        rf = r[self.lay.first]
        out = self.k * float(np.sum(log_expit(rf) + log_expit(-rf)))
        if self.n > 1:
            out += -0.5 * float(np.sum(self.prec * np.diff(r) ** 2)) + self.log_norm
        return out

    def value(self, x: np.ndarray) -> float:
        return self.game_loglik(x) + self.prior(x)

    def pieces(self, x: np.ndarray) -> dict[str, np.ndarray | float]:
        """Gradient and the negated Hessian in factored form (see module docs)."""
        lay, n, w = self.lay, self.n, self.w
        r, _, t = self.split(x)
        d = self.diff(x)
        if not self.davidson:
            p = expit(d)
            gd = w * (self.y - p)
            c = w * p * expit(-d)
            e = np.zeros_like(d)
            q = np.zeros_like(d)
            gt = 0.0
        else:
            half = 0.5 * d
            lse = np.logaddexp(np.logaddexp(half, -half), t)
            pw, pl, pd = np.exp(half - lse), np.exp(-half - lse), np.exp(t - lse)
            gd = w * (0.5 * (self.y_win - self.y_loss) - 0.5 * (pw - pl))
            c = w * (0.25 * (pw + pl) - 0.25 * (pw - pl) ** 2)
            e = -w * pd * 0.5 * (pw - pl)
            q = w * pd * (1.0 - pd)
            gt = float(np.sum(w * (self.y_draw - pd)))
        grad = np.zeros(n + self.nh + self.nt)
        grad[:n] = np.bincount(lay.a, gd, n) - np.bincount(lay.b, gd, n)
        own = np.zeros(n)
        # anchor: k virtual wins and k virtual losses against score 0
        rf = r[lay.first]
        grad[:n][lay.first] += self.k * (1.0 - 2.0 * expit(rf))
        own[lay.first] += 2.0 * self.k * expit(rf) * expit(-rf)
        if n > 1:
            dr = np.diff(r) * self.prec
            grad[: n - 1] += dr
            grad[1:n] -= dr
            own[: n - 1] += self.prec
            own[1:n] += self.prec
        pdiag = own.copy()
        own += np.bincount(lay.a, c, n) + np.bincount(lay.b, c, n)
        if self.nh:
            assert self.order is not None
            grad[n] = float(np.dot(gd, self.order))
        if self.nt:
            grad[n + self.nh] = gt
        return dict(grad=grad, own=own, pdiag=pdiag, c=c, e=e, q=q)

    def matvec(self, pc: dict, v: np.ndarray) -> np.ndarray:
        """Negated Hessian times v."""
        lay, n = self.lay, self.n
        vr, vh, vt = self.split(v)
        c, e, q = pc["c"], pc["e"], pc["q"]
        delta = vr[lay.a] - vr[lay.b]
        if self.order is not None:
            delta = delta + vh * self.order
        u1 = c * delta + e * vt
        out = np.zeros_like(v)
        # game part J^T M J v, plus the Wiener chain and the anchor
        out[:n] = np.bincount(lay.a, u1, n) - np.bincount(lay.b, u1, n) + pc["pdiag"] * vr
        if n > 1:
            out[: n - 1] -= self.prec * vr[1:]
            out[1:n] -= self.prec * vr[:-1]
        if self.nh:
            assert self.order is not None
            out[n] = float(np.dot(self.order, u1))
        if self.nt:
            out[n + self.nh] = float(np.sum(e * delta + q * vt))
        return out


def _cholesky_tridiagonal(diag: np.ndarray, off: np.ndarray) -> np.ndarray:
    from scipy.linalg import cholesky_banded

    ab = np.zeros((2, len(diag)))
    ab[0] = diag
    ab[1, :-1] = off
    return cholesky_banded(ab, lower=True, check_finite=False)


def tridiagonal_inverse_band(diag: np.ndarray, off: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Diagonal and first off-diagonal of the inverse of an SPD tridiagonal matrix.

    ``diag`` (N,), ``off`` (N-1,) (``off[k]`` = entry (k, k+1)). Uses the forward
    and backward pivots (two banded Cholesky factorisations, O(N)):
    ``inv[k, k] = 1 / (d_k + e_k - diag_k)`` and
    ``inv[k, k+1] = -off_k / (d_k * e_{k+1} - off_k**2)``.

    Examples
    --------
    >>> import numpy as np
    >>> v, c = tridiagonal_inverse_band(np.array([2.0, 2.0]), np.array([-1.0]))
    >>> np.round(v, 6).tolist(), np.round(c, 6).tolist()
    ([0.666667, 0.666667], [0.333333])
    """
    n = len(diag)
    fwd = _cholesky_tridiagonal(diag, off)[0] ** 2
    bwd = _cholesky_tridiagonal(diag[::-1].copy(), off[::-1].copy())[0][::-1] ** 2
    var = 1.0 / (fwd + bwd - diag)
    cov = -off / (fwd[: n - 1] * bwd[1:] - off**2) if n > 1 else np.zeros(0)
    return var, cov


def _pcg(matvec, b: np.ndarray, precond, rtol: float, max_iter: int) -> np.ndarray:
    x = np.zeros_like(b)
    res = b.copy()
    z = precond(res)
    p = z.copy()
    rz = float(np.dot(res, z))
    bnorm = float(np.linalg.norm(b))
    for _ in range(max_iter):
        ap = matvec(p)
        pap = float(np.dot(p, ap))
        if pap <= 0:
            break
        alpha = rz / pap
        x += alpha * p
        res -= alpha * ap
        if np.linalg.norm(res) <= rtol * bnorm:
            break
        z = precond(res)
        rz_new = float(np.dot(res, z))
        p = z + (rz_new / rz) * p
        rz = rz_new
    return x


def whr_map(lay: WHRLayout, y: np.ndarray, w: np.ndarray, *, w2: float, prior_wins: float,
            order: np.ndarray | None = None, davidson: bool = False, init: np.ndarray | None = None,
            tol: float = 1e-8, max_iter: int = 100, cg_max_iter: int = 500) -> WHRResult:
    """MAP of the whole-history posterior by preconditioned Newton steps.

    ``y`` in [0, 1] is the left item's result (0.5 = draw under Davidson),
    ``w`` row weights, ``order`` the first-mover indicator (None: no
    first-mover parameter). Converged when the largest absolute gradient
    entry is below ``tol``, or when the Newton decrement ``g' H^-1 g`` (twice
    the predicted gain in log-posterior) is below ``tol**2`` -- the scale-free
    test that still holds when a tiny ``w2`` makes the prior precision huge.
    """
    from scipy.linalg import cho_solve_banded

    prob = _Problem(lay, y, w, order, w2, prior_wins, davidson)
    n, nh, nt = prob.n, prob.nh, prob.nt
    x = np.zeros(n + nh + nt)
    if init is not None:
        x[:] = init
    elif davidson:
        x[n + nh] = np.log(max(float(np.mean(prob.y_draw)), 1e-3))
    f = prob.value(x)
    converged, it, gnorm = False, 0, np.inf
    pc = prob.pieces(x)
    for it in range(max_iter + 1):
        grad = pc["grad"]
        assert isinstance(grad, np.ndarray)
        gnorm = float(np.max(np.abs(grad))) if grad.size else 0.0
        if gnorm < tol:
            converged = True
            break
        if it == max_iter:
            break
        own = pc["own"]
        assert isinstance(own, np.ndarray)
        chol = _cholesky_tridiagonal(own, -prob.prec)
        extra = None
        if nh + nt:
            c, e, q = pc["c"], pc["e"], pc["q"]
            o = order if order is not None else np.zeros_like(c)
            blk = np.zeros((nh + nt, nh + nt))
            if nh:
                blk[0, 0] = float(np.dot(c, o * o))
            if nt:
                blk[nh, nh] = float(np.sum(q))
                if nh:
                    blk[0, 1] = blk[1, 0] = float(np.dot(e, o))
            extra = np.linalg.inv(blk + 1e-12 * np.eye(nh + nt))

        def precond(v: np.ndarray, chol: np.ndarray = chol, extra: np.ndarray | None = extra) -> np.ndarray:
            out = np.empty_like(v)
            out[:n] = cho_solve_banded((chol, True), v[:n], check_finite=False)
            if extra is not None:
                out[n:] = extra @ v[n:]
            return out

        rtol = 0.1 * min(0.1, float(np.sqrt(gnorm)))
        step = _pcg(lambda v, pc=pc: prob.matvec(pc, v), grad, precond, rtol, cg_max_iter)
        slope = float(np.dot(grad, step))
        if slope < tol * tol:
            # Newton decrement: the predicted gain in log-posterior is below tol**2
            converged = True
            x = x + step
            f = prob.value(x)
            pc = prob.pieces(x)
            break
        t = 1.0
        if slope <= 1e-13 * max(1.0, abs(f)):
            # the expected gain is below the rounding of f: take the Newton step
            x = x + step
            f = prob.value(x)
            pc = prob.pieces(x)
            continue
        while True:
            x_new = x + t * step
            f_new = prob.value(x_new)
            if f_new >= f + 1e-4 * t * slope or t < 1e-10:
                break
            t *= 0.5
        if f_new < f:  # no ascent possible at machine precision
            converged = gnorm < 1e3 * tol
            break
        x, f = x_new, f_new
        pc = prob.pieces(x)
    r, h, th = prob.split(x)
    pc = prob.pieces(x)
    own_arr = pc["own"]
    assert isinstance(own_arr, np.ndarray)
    return WHRResult(r=r.copy(), first_mover=h, log_nu=th, log_posterior=f, log_likelihood=prob.game_loglik(x),
                     converged=converged, n_iter=it, grad_norm=gnorm, own_diag=own_arr, off=-prob.prec)


def whr_log_posterior(lay: WHRLayout, y: np.ndarray, w: np.ndarray, x: np.ndarray, *, w2: float,
                      prior_wins: float, order: np.ndarray | None = None, davidson: bool = False) -> float:
    """The log-posterior at ``x`` = [node scores, first-mover (if order), log nu (if davidson)]."""
    return _Problem(lay, y, w, order, w2, prior_wins, davidson).value(np.asarray(x, dtype=np.float64))
