"""General preference model (GPM) on items: skew-symmetric embeddings that can represent cycles.

Each item ``i`` gets a ``2k``-dimensional embedding ``v_i`` made of ``k``
two-dimensional blocks, and optionally a scalar Bradley-Terry score ``s_i``::

    P(i beats j) = expit(s_i - s_j + <R v_i, v_j>),   R = blockdiag([[0, -1], [1, 0]] * k)

``<R v_i, v_j> = sum_b (v_i[2b] v_j[2b+1] - v_i[2b+1] v_j[2b])`` is skew-symmetric
(``s(i, j) = -s(j, i)``), so the model can put three items in a cycle, which no
scalar score can (Zhang et al. 2025, "Beyond Bradley-Terry Models: A General
Preference Model for Language Model Alignment", ICML; the neural head of the
same model is :class:`bradley.train.heads.GeneralPreferenceModel`). BT is
``k = 0`` with the scalar.

The pure kernels here (:func:`skew_score`, :func:`gpm_margin`,
:func:`gpm_objective`, :func:`canonical_embeddings`, :func:`fit_gpm`) are plain
numpy functions on arrays; :class:`GPM` is the estimator.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.special import expit

from bradley.data import PairCounts, check_mle_exists
from bradley.errors import ConvergenceWarning, MLEDoesNotExistError
from bradley.models.base import ItemIndex, as_comparisons, check_prior, require_fitted, summary_table

__all__ = [
    "GPM",
    "GPMResult",
    "canonical_embeddings",
    "fit_gpm",
    "gpm_margin",
    "gpm_objective",
    "skew_score",
]

#: Default convergence tolerance: the largest one-parameter Newton step ``|g_p| / D_p``.
DEFAULT_TOL = 1e-7
#: L-BFGS rounds (each with a fresh diagonal preconditioner) before giving up.
MAX_ROUNDS = 20


def _rot(v: np.ndarray) -> np.ndarray:
    """``rot(v)`` with ``u . rot(v) = <R u, v>``: in each block ``(a, b) -> (b, -a)``."""
    out = np.empty_like(v)
    out[..., 0::2] = v[..., 1::2]
    out[..., 1::2] = -v[..., 0::2]
    return out


def skew_score(v1: Any, v2: Any) -> np.ndarray:
    """GPM's skew-symmetric score ``<R v1, v2> = sum_b (v1[2b] v2[2b+1] - v1[2b+1] v2[2b])``.

    The numpy twin of :func:`bradley.train.heads.gpm_score` (without the
    prompt-dependent block scales). ``skew_score(a, b) = -skew_score(b, a)``
    and ``skew_score(a, a) = 0``.

    Parameters
    ----------
    v1, v2 : array-like, shape (..., 2k)
        Embeddings (broadcast against each other).

    Returns
    -------
    numpy.ndarray, shape (...)

    Examples
    --------
    >>> float(skew_score([3.0, 1.0], [2.0, 1.0]))   # v = (r, 1) gives r1 - r2
    1.0
    >>> angles = 2 * np.pi * np.arange(3) / 3       # unit vectors at 0, 2pi/3, 4pi/3: a cycle
    >>> v = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    >>> skew_score(v, np.roll(v, -1, axis=0)).round(4).tolist()
    [0.866, 0.866, 0.866]
    """
    a = np.asarray(v1, dtype=np.float64)
    b = np.asarray(v2, dtype=np.float64)
    if a.shape[-1] % 2 or b.shape[-1] != a.shape[-1]:
        raise ValueError(f"embeddings need the same even last dimension 2k; got {a.shape} and {b.shape}.")
    return np.asarray((a[..., 0::2] * b[..., 1::2] - a[..., 1::2] * b[..., 0::2]).sum(axis=-1))


def gpm_margin(scores: np.ndarray | None, embeddings: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Log-odds that ``left`` beats ``right``: ``s_l - s_r + <R v_l, v_r>`` (item codes; ``scores`` may be None).

    Examples
    --------
    >>> v = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> gpm_margin(np.array([0.5, -0.5]), v, np.array([0, 1]), np.array([1, 0])).tolist()
    [2.0, -2.0]
    """
    left = np.asarray(left, dtype=np.int64)
    right = np.asarray(right, dtype=np.int64)
    d = np.zeros(np.broadcast_shapes(left.shape, right.shape))
    if scores is not None:
        d = d + (scores[left] - scores[right])
    if embeddings.shape[1]:
        d = d + np.einsum("...j,...j->...", embeddings[left], _rot(embeddings[right]))
    return d


#: Up to this many items the optimiser works with dense n x n matrices (gather/scatter at the compared
#: pairs); beyond, with sparse matrices on the compared pairs.
DENSE_ITEMS = 2500


class _Pairs:
    """Compared pairs as the optimiser sees them: codes, left-win credit (wins plus half the ties), totals."""

    def __init__(self, first: np.ndarray, second: np.ndarray, wins: np.ndarray, totals: np.ndarray,
                 n_items: int):
        keep = totals > 0
        first, second, wins, totals = first[keep], second[keep], wins[keep], totals[keep]
        order = np.lexsort((second, first))
        self.first, self.second = first[order], second[order]
        self.wins, self.totals = wins[order], totals[order]
        self.n_items = n = n_items
        self.dense = n <= DENSE_ITEMS
        if self.dense:
            self.flat = self.first * n + self.second
            self.flat_t = self.second * n + self.first
        else:
            # A[first, second] = value in CSR (pairs are sorted by (first, second)); its transpose likewise
            indptr = np.concatenate(([0], np.cumsum(np.bincount(self.first, minlength=n))))
            self.order_t = np.lexsort((self.first, self.second))
            indptr_t = np.concatenate(([0], np.cumsum(np.bincount(self.second, minlength=n))))
            self.upper = sparse.csr_matrix((np.zeros(len(first)), self.second, indptr), shape=(n, n))
            self.lower = sparse.csr_matrix((np.zeros(len(first)), self.first[self.order_t], indptr_t), shape=(n, n))

    def margins(self, s: np.ndarray | None, v: np.ndarray) -> np.ndarray:
        """``s_first - s_second + <R v_first, v_second>`` for every pair."""
        if s is not None:
            d = s[self.first] - s[self.second]
        else:
            d = np.zeros(len(self.first))
        if not v.shape[1]:
            return d
        return d + self.bilinear(v, v)

    def bilinear(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """``<R u_first, v_second>`` for every pair."""
        if self.dense:
            return np.asarray((u @ _rot(v).T).ravel()[self.flat])
        return np.einsum("ij,ij->i", u[self.first], _rot(v)[self.second])

    def _matrix(self, values: np.ndarray) -> np.ndarray:
        m = np.zeros(self.n_items * self.n_items)
        m[self.flat] = values
        return m.reshape(self.n_items, self.n_items)

    def skew_times(self, values: np.ndarray, x: np.ndarray) -> np.ndarray:
        """``(A - A^T) @ x`` with ``A[first, second] = values``."""
        if self.dense:
            m = self._matrix(values)
            return np.asarray(m @ x - m.T @ x)
        self.upper.data[:] = values
        self.lower.data[:] = values[self.order_t]
        return np.asarray(self.upper @ x - self.lower @ x)

    def symmetric_times(self, values: np.ndarray, x: np.ndarray) -> np.ndarray:
        """``(A + A^T) @ x`` with ``A[first, second] = values``."""
        if self.dense:
            m = self._matrix(values)
            return np.asarray(m @ x + m.T @ x)
        self.upper.data[:] = values
        self.lower.data[:] = values[self.order_t]
        return np.asarray(self.upper @ x + self.lower @ x)


def _log_expit_and_expit(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``log expit(d)`` and ``expit(d)`` from one exponential (numpy's vectorised exp/log1p; no overflow)."""
    e = np.exp(-np.abs(d))
    log_p = np.minimum(d, 0.0) - np.log1p(e)
    p = np.where(d >= 0, 1.0, e) / (1.0 + e)
    return log_p, p


def _split(x: np.ndarray, n: int, k: int, bt_scalar: bool) -> tuple[np.ndarray | None, np.ndarray]:
    if bt_scalar:
        return x[:n], x[n:].reshape(n, 2 * k)
    return None, x.reshape(n, 2 * k)


@dataclass
class _Anchor:
    """A point the objective is measured from: its parameters, margins and ``1 - expit(margins)``."""

    x: np.ndarray
    margins: np.ndarray
    q: np.ndarray


def _objective(x: np.ndarray, pairs: _Pairs, k: int, bt_scalar: bool, l2: float, prior_precision: float,
               diagonal: bool = False, anchor: _Anchor | None = None,
               delta: np.ndarray | None = None) -> tuple[float, np.ndarray, np.ndarray | None]:
    """Negative log-posterior, its gradient and (optionally) the diagonal of the Fisher information plus penalty.

    With an ``anchor`` the value is the change from the anchor, summed pair by
    pair from ``log expit(d) - log expit(d0) = -log1p(q0 expm1(d0 - d))``,
    with the margin changes ``d - d0`` computed from the parameter change
    ``delta = x - anchor.x``: it keeps full relative precision near the
    optimum, where the objective itself changes by less than its rounding
    error (so a line search would stall).
    """
    n = pairs.n_items
    s, v = _split(x, n, k, bt_scalar)
    d = pairs.margins(s, v)
    log_p, p = _log_expit_and_expit(d)
    if anchor is None:
        # y log p + (n - y) log(1 - p) = n log p - (n - y) d
        value = -float(pairs.totals @ log_p - (pairs.totals - pairs.wins) @ d)
        value += 0.5 * l2 * float(np.dot(v.ravel(), v.ravel()))
        if s is not None:
            value += 0.5 * prior_precision * float(np.dot(s, s))
    else:
        # the change of every margin from the parameter change, to the relative precision of that change
        ds, dv = _split(x - anchor.x if delta is None else delta, n, k, bt_scalar)
        s0, v0 = _split(anchor.x, n, k, bt_scalar)
        moved = np.zeros(len(d)) if ds is None else ds[pairs.first] - ds[pairs.second]
        if k:
            moved += pairs.bilinear(dv, v) + pairs.bilinear(v0, dv)
        near = np.abs(moved) <= 1.0
        gain = np.empty_like(d)
        gain[near] = -np.log1p(anchor.q[near] * np.expm1(-moved[near]))
        far = ~near
        gain[far] = log_p[far] - _log_expit_and_expit(anchor.margins[far])[0]
        value = -float(pairs.totals @ gain - (pairs.totals - pairs.wins) @ moved)
        value += 0.5 * l2 * float(np.dot(dv.ravel(), (v + v0).ravel()))
        if ds is not None and s is not None and s0 is not None:
            value += 0.5 * prior_precision * float(np.dot(ds, s + s0))
    r = pairs.totals * p - pairs.wins  # d(NLL)/d(margin) per pair
    parts: list[np.ndarray] = []
    if s is not None:
        g_s: np.ndarray = np.bincount(pairs.first, r, n) - np.bincount(pairs.second, r, n)
        if prior_precision:
            g_s += prior_precision * s
        parts.append(g_s)
    if k:
        g_v = pairs.skew_times(r, _rot(v)) + l2 * v
        parts.append(g_v.ravel())
    grad = np.concatenate(parts)
    if not diagonal:
        return value, grad, None
    w = pairs.totals * p * (1.0 - p)
    diag = []
    if s is not None:
        diag.append(np.bincount(pairs.first, w, n) + np.bincount(pairs.second, w, n) + prior_precision)
    if k:
        diag.append((pairs.symmetric_times(w, _rot(v) ** 2) + l2).ravel())
    return value, grad, np.concatenate(diag)


def gpm_objective(scores: np.ndarray | None, embeddings: np.ndarray, pairs: PairCounts, *, l2: float = 1.0,
                  prior: float | None = None) -> tuple[float, np.ndarray | None, np.ndarray]:
    """Negative log-posterior of the GPM on pair counts and its gradient.

    ``sum_pairs -[y log p + (n - y) log(1 - p)] + l2/2 |V|^2 + |s|^2 / (2 prior)``
    with ``p = expit(gpm_margin)``, ``n`` the comparisons of a pair and ``y``
    the wins of its first item plus half the ties.

    Returns
    -------
    value : float
    grad_scores : numpy.ndarray or None
        Gradient with respect to ``scores`` (None when ``scores`` is None).
    grad_embeddings : numpy.ndarray, shape (n_items, 2k)

    Examples
    --------
    >>> p = PairCounts.from_matrix([[0, 3], [1, 0]])
    >>> value, gs, gv = gpm_objective(np.zeros(2), np.zeros((2, 0)), p)
    >>> bool(np.isclose(value, 4 * np.log(2))), gs.tolist()
    (True, [-1.0, 1.0])
    """
    n = pairs.n_items
    embeddings = np.asarray(embeddings, dtype=np.float64).reshape(n, -1)
    k = embeddings.shape[1] // 2
    prepared = _prepare(pairs)
    parts = [np.asarray(scores, dtype=np.float64)] if scores is not None else []
    x = np.concatenate(parts + [embeddings.ravel()])
    value, grad, _ = _objective(x, prepared, k, scores is not None, l2, 0.0 if prior is None else 1.0 / prior)
    if scores is None:
        return value, None, grad.reshape(n, 2 * k)
    return value, grad[:n], grad[n:].reshape(n, 2 * k)


def _prepare(pairs: PairCounts) -> _Pairs:
    return _Pairs(
        np.asarray(pairs.first, dtype=np.int64), np.asarray(pairs.second, dtype=np.int64),
        pairs.wins_first + 0.5 * pairs.ties, pairs.totals, pairs.n_items,
    )


def canonical_embeddings(embeddings: Any) -> tuple[np.ndarray, np.ndarray]:
    """The canonical representative of a set of GPM embeddings, and the strength of each block.

    The skew matrix ``S_ij = <R v_i, v_j>`` is all the model sees; it is
    unchanged by any map ``M`` with ``M^T R M = R`` (a rotation within a block,
    a shear, a rescaling ``(a x, y / a)``, a mixing of blocks). This returns
    the embeddings of minimal norm that give the same ``S``: block ``b`` is
    ``sqrt(sigma_b) * (x_b, y_b)`` from the decomposition
    ``S = sum_b sigma_b (x_b y_b^T - y_b x_b^T)`` (orthonormal ``x_b, y_b``,
    ``sigma_1 >= sigma_2 >= ... >= 0``), rotated within the block so that
    its largest embedding (the first on a tie) lies on the positive first axis.
    ``|V|^2 = 2 sum_b sigma_b``, the nuclear norm of ``S``: an L2-penalised fit
    is unchanged by this map.

    Parameters
    ----------
    embeddings : array-like, shape (n_items, 2k)

    Returns
    -------
    embeddings : numpy.ndarray, shape (n_items, 2k)
    strengths : numpy.ndarray, shape (k,)
        ``sigma_b``, descending: the spectral norm of block ``b``'s part of
        ``S`` (zero for an unused block).

    Examples
    --------
    >>> v = np.array([[2.0, 0.0], [0.0, 0.5], [-1.0, -0.25]])    # a shear/rescaling of the same S
    >>> c, strength = canonical_embeddings(v)
    >>> bool(np.allclose(skew_score(c[:, None], c[None]), skew_score(v[:, None], v[None])))
    True
    >>> top = int(np.argmax((c ** 2).sum(axis=1)))                 # the largest embedding on the +x axis
    >>> bool(np.isclose(c[top, 1], 0.0) and c[top, 0] > 0), bool((c ** 2).sum() < (v ** 2).sum())
    (True, True)
    """
    v = np.asarray(embeddings, dtype=np.float64)
    n, dim = v.shape
    if dim % 2:
        raise ValueError(f"embeddings need an even number of columns 2k, got {dim}.")
    k = dim // 2
    out = np.zeros_like(v)
    strengths = np.zeros(k)
    if k == 0 or n == 0:
        return out, strengths
    q, upper = np.linalg.qr(v)  # v = q @ upper; S = q (upper J upper^T) q^T
    return _factor_skew(q, upper @ _rot(upper).T, k)


def _factor_skew(q: np.ndarray, middle: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Least-norm embeddings ``V`` (n x 2k, canonical rotation) of the top ``k`` planes of ``S = q M q^T``.

    ``q`` has orthonormal columns and ``M`` is (made) skew-symmetric.
    """
    middle = 0.5 * (middle - middle.T)
    out = np.zeros((q.shape[0], 2 * k))
    strengths = np.zeros(k)
    values, vectors = np.linalg.eigh(1j * middle)  # eigenvalues +-sigma of the Hermitian i*M
    order = np.argsort(-values)[:k]
    for b, j in enumerate(order):
        sigma = float(values[j])
        if not sigma > 0:
            continue
        # i M (a + i c) = sigma (a + i c)  =>  M a = sigma c, M c = -sigma a: M = sigma (c a^T - a c^T) / |a|^2
        a = vectors[:, j].real
        c = vectors[:, j].imag
        scale = np.sqrt(sigma / max(float(np.dot(a, a)), np.finfo(float).tiny))
        x, y = scale * (q @ c), scale * (q @ a)  # S = x y^T - y x^T on this block
        norms = x * x + y * y
        top = int(np.argmax(norms))
        angle = np.arctan2(y[top], x[top])
        cos, sin = np.cos(angle), np.sin(angle)
        out[:, 2 * b] = cos * x + sin * y
        out[:, 2 * b + 1] = -sin * x + cos * y
        strengths[b] = sigma
    return out, strengths


def _spectral_start(prepared: _Pairs, s: np.ndarray | None, k: int, l2: float,
                    rng: np.random.Generator) -> np.ndarray | None:
    """Embeddings along the top ``k`` skew planes of the log-likelihood gradient at ``V = 0``, scaled by a Newton step.

    At ``V = 0`` the gradient of the log-likelihood with respect to the skew
    matrix ``S`` on the compared pairs is ``G = y - n p`` (the residuals of
    the scalar fit); its best rank-``2k`` skew approximation ``S_dir`` (block
    power iteration, then :func:`_factor_skew`) is the steepest direction
    available to ``k`` blocks. ``S = t S_dir`` with ``t`` from one Newton step on
    the penalised objective; None when no positive step improves it.
    """
    n = prepared.n_items
    d = prepared.margins(s, np.zeros((n, 0)))
    _, p = _log_expit_and_expit(d)
    resid = prepared.wins - prepared.totals * p
    basis = np.linalg.qr(rng.standard_normal((n, min(2 * k + 4, n))))[0]
    for _ in range(30):
        basis = np.linalg.qr(prepared.skew_times(resid, basis))[0]
    middle = basis.T @ prepared.skew_times(resid, basis)
    v_dir, _ = _factor_skew(basis, middle, k)
    s_dir = prepared.margins(None, v_dir)
    ascent = float(resid @ s_dir)
    curvature = float((prepared.totals * p * (1.0 - p)) @ (s_dir * s_dir))
    step = (ascent - 0.5 * l2 * float((v_dir ** 2).sum())) / max(curvature, np.finfo(float).tiny)
    if not step > 0:
        return None
    return np.sqrt(step) * v_dir


def _bt_start(pairs: PairCounts, prior: float | None) -> np.ndarray:
    """BT scores (Newton) to start the scalar part from; zeros when they cannot be had."""
    from bradley.solvers import bt as bt_solvers

    try:
        result = bt_solvers.newton(pairs, prior_variance=prior, tol=1e-6)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError):
        return np.zeros(pairs.n_items)
    scores = np.asarray(result.scores, dtype=np.float64)
    return scores if np.all(np.isfinite(scores)) else np.zeros(pairs.n_items)


def _minimise(optimize: Any, x: np.ndarray, prepared: _Pairs, k: int, bt_scalar: bool, l2: float,
              prior_precision: float, tol: float, max_iter: int) -> tuple[np.ndarray, int, bool, float]:
    """Preconditioned L-BFGS rounds until the largest Newton step is at most ``tol``: (x, n_iter, converged, step)."""
    total = max(float(prepared.totals.sum()), 1.0)
    n_iter = 0
    converged = False
    step = np.inf
    for _ in range(MAX_ROUNDS):
        _, grad, diag = _objective(x, prepared, k, bt_scalar, l2, prior_precision, diagonal=True)
        assert diag is not None
        diag = np.maximum(diag, 1e-12)
        step = float(np.max(np.abs(grad) / diag, initial=0.0))
        if step <= tol:
            converged = True
            break
        if n_iter >= max_iter:
            break
        scale = np.sqrt(diag)
        # |g_p| <= tol * D_p holds when the scaled gradient |g_p| / (scale_p total) <= tol * scale_p / total
        gtol = 0.5 * tol * float(scale.min()) / total

        s0, v0 = _split(x, prepared.n_items, k, bt_scalar)
        margins0 = prepared.margins(s0, v0)
        anchor = _Anchor(x.copy(), margins0, _log_expit_and_expit(-margins0)[1])

        def fun(u: np.ndarray, scale: np.ndarray = scale, anchor: _Anchor = anchor) -> tuple[float, np.ndarray]:
            delta = (u - anchor.x * scale) / scale
            value, g, _ = _objective(anchor.x + delta, prepared, k, bt_scalar, l2, prior_precision, anchor=anchor,
                                     delta=delta)
            return value / total, g / (scale * total)

        res = optimize.minimize(fun, x * scale, jac=True, method="L-BFGS-B",
                                options={"maxiter": max_iter - n_iter, "gtol": gtol, "ftol": 0.0, "maxcor": 20,
                                         "maxls": 50})
        n_iter += int(res.nit)
        if res.nit == 0:
            break
        x = res.x / scale
    return x, n_iter, converged, step


@dataclass
class GPMResult:
    """What :func:`fit_gpm` returns: fitted parameters (canonical gauge) and how the fit went."""

    scores: np.ndarray
    embeddings: np.ndarray
    strengths: np.ndarray
    log_likelihood: float
    log_posterior: float
    converged: bool
    n_iter: int
    step: float  # largest |g_p| / D_p at the end


def fit_gpm(
    pairs: PairCounts,
    k: int = 1,
    *,
    bt_scalar: bool = True,
    l2: float = 1.0,
    prior: float | None = None,
    tol: float = DEFAULT_TOL,
    max_iter: int = 20_000,
    init: str | tuple[np.ndarray | None, np.ndarray] = "spectral",
    init_scale: float = 0.1,
    seed: int | np.random.Generator | None = 0,
) -> GPMResult:
    """Maximise the GPM log-posterior on pair counts by diagonally preconditioned L-BFGS.

    Variables are scaled by the square root of the diagonal of the Fisher
    information plus penalty ``D`` (refreshed each round); the fit stops when
    the largest one-parameter Newton step ``|g_p| / D_p`` of the
    log-posterior is at most ``tol``. Returns scalar scores centred to mean
    zero and embeddings in the canonical gauge of
    :func:`canonical_embeddings` (neither changes a probability).

    Parameters
    ----------
    init : {"spectral", "random"} or (scores, embeddings)
        Starting point. ``"spectral"``: the scalar scores at the BT fit
        (Newton), the embeddings along the top skew planes of the
        log-likelihood gradient there, scaled by one Newton step (plus
        ``N(0, (init_scale / 10)^2)`` noise). ``"random"``: scores at zero,
        embeddings ``N(0, init_scale^2)``. ``V = 0`` itself is a saddle point
        (the gradient in ``V`` vanishes), so embeddings never start there.

    Examples
    --------
    >>> p = PairCounts.from_matrix([[0, 8, 2], [2, 0, 8], [8, 2, 0]])   # a beats b beats c beats a
    >>> r = fit_gpm(p, k=1)
    >>> r.converged, bool(np.allclose(r.scores, 0, atol=1e-6))
    (True, True)
    >>> angles = np.arctan2(r.embeddings[:, 1], r.embeddings[:, 0])    # three directions 2pi/3 apart
    >>> (np.sort(np.round(angles * 3 / np.pi, 4) % 6) + 0.0).tolist()
    [0.0, 2.0, 4.0]
    """
    from scipy import optimize  # imported on use: slow to import

    from bradley.solvers.threads import single_blas_thread

    n = pairs.n_items
    if k < 0 or (k == 0 and not bt_scalar):
        raise ValueError("k must be >= 0, and >= 1 without the scalar BT score.")
    prepared = _prepare(pairs)
    prior_precision = 0.0 if prior is None else 1.0 / prior
    rng = np.random.default_rng(seed)
    with single_blas_thread():  # thin n x 2k products: BLAS threads only contend
        if isinstance(init, tuple):
            s0, v0 = init
            parts = [np.asarray(s0, dtype=np.float64).reshape(n)] if bt_scalar else []
            x = np.concatenate(parts + [np.asarray(v0, dtype=np.float64).reshape(-1)])
        elif init == "random":
            x = np.concatenate([np.zeros(n if bt_scalar else 0), init_scale * rng.standard_normal(n * 2 * k)])
        elif init == "spectral":
            s_start = _bt_start(pairs, prior) if bt_scalar else None
            v_start = _spectral_start(prepared, s_start, k, l2, rng) if k else None
            noise = rng.standard_normal((n, 2 * k))
            v0 = init_scale * noise if v_start is None else v_start + 0.1 * init_scale * noise
            x = np.concatenate(([] if s_start is None else [s_start]) + [v0.ravel()])
        else:
            raise ValueError(f"init must be 'spectral', 'random' or (scores, embeddings), got {init!r}.")
        x, n_iter, converged, step = _minimise(optimize, x, prepared, k, bt_scalar, l2, prior_precision, tol,
                                               max_iter)
    s, v = _split(x, n, k, bt_scalar)
    scores = np.zeros(n) if s is None else s - s.mean()
    embeddings, strengths = canonical_embeddings(v)
    d = prepared.margins(scores, embeddings)
    log_p, _ = _log_expit_and_expit(d)
    loglik = float(prepared.totals @ log_p - (prepared.totals - prepared.wins) @ d)
    log_post = loglik - 0.5 * l2 * float((embeddings ** 2).sum()) - 0.5 * prior_precision * float(scores @ scores)
    return GPMResult(scores, embeddings, strengths, loglik, log_post, converged, n_iter, step)


class GPM:
    """General preference model on items: a BT score plus ``k`` skew-symmetric embedding blocks per item.

    ``P(i beats j) = expit(s_i - s_j + <R v_i, v_j>)`` with
    ``v_i in R^{2k}``, ``R = blockdiag([[0, -1], [1, 0]])`` and
    ``<R v_i, v_j> = sum_b (v_i[2b] v_j[2b+1] - v_i[2b+1] v_j[2b])``
    (Zhang et al. 2025). The skew part can express cycles (rock beats scissors
    beats paper beats rock), which no scalar score can; ``k = 0`` is
    Bradley-Terry. A tie counts half a win for each side, soft outcomes and
    weights as in :class:`~bradley.BradleyTerry`; the model is fitted on the
    aggregated pair counts, so millions of comparisons cost what their
    distinct pairs cost.

    Parameters
    ----------
    k : int
        Number of two-dimensional rotation blocks (the embedding has ``2k``
        dimensions). Choose it by held-out log-loss with :meth:`select_k`.
    bt_scalar : bool
        Include the scalar BT score ``s_i``; without it ``k`` must be at least 1.
    l2 : float
        Penalty ``l2 / 2 * |V|^2`` on the embeddings (a ``N(0, 1 / l2)`` prior
        on every coordinate). It keeps the estimate finite (a perfect cycle
        would otherwise send the embeddings to infinity) and picks, among the
        embeddings giving the same probabilities, those of least norm. It does
        not grow with the data: on large data its effect vanishes.
    prior : float, optional
        Variance of a Gaussian prior on the scalar scores, as in
        :class:`~bradley.BradleyTerry` (``GPM(k=0, prior=v)`` fits the same
        scores as ``BradleyTerry(prior=v)``). Without it, data where some
        items never lose to the rest raise
        :class:`~bradley.errors.MLEDoesNotExistError`.
    tol : float
        Convergence tolerance on the largest one-parameter Newton step of the
        log-posterior, ``|gradient_p| / information_pp`` (the diagonal of the
        Fisher information plus the penalty).
    max_iter : int
        Limit on L-BFGS iterations (over all preconditioner refreshes); stopping
        at it, or stalling before ``tol``, warns with a ConvergenceWarning.
    n_init : int
        Starts: the first from the spectral start of :func:`fit_gpm` (BT
        scores, embeddings along the top skew planes of the residuals), the
        others from random embeddings; the fit with the highest log-posterior
        is kept (the objective is not convex when ``k >= 1``).
    random_state : int, optional
        Seed of the random parts of the starts (fits are reproducible for a given seed).

    Attributes
    ----------
    items_ : numpy.ndarray
    scores_ : numpy.ndarray
        Scalar BT part, centred to mean zero (zeros without ``bt_scalar``).
    embeddings_ : pandas.DataFrame
        One row per item, columns ``b1_x, b1_y, ..., bk_x, bk_y``, in the
        canonical gauge of :func:`canonical_embeddings`: least norm, blocks
        ordered by strength, each rotated so that its largest embedding lies
        on the positive ``x`` axis. Gauge-fixed, so refits agree. With the
        scalar score the embeddings have mean zero (up to ``tol``): shifting
        all of them by ``t`` only adds the BT term ``<R v_i, t>`` to the
        scores, and the penalty on ``V`` (none on the scores) puts it there.
    block_strengths_ : numpy.ndarray
        ``sigma_b`` per block (descending): how strongly block ``b`` can favour
        one item over another; ``|V|^2 = 2 sum sigma_b``. Near zero means the
        block is not used.
    log_likelihood_, log_posterior_ : float
        At the estimate (ties as half wins); the log-posterior subtracts the
        penalties (no normalising constants).
    converged_ : bool
    n_iter_ : int
    step_ : float
        Largest one-parameter Newton step at the estimate (``<= tol`` when converged).
    pair_counts_ : PairCounts
    n_comparisons_ : int

    Examples
    --------
    >>> import bradley
    >>> wins = [[0, 8, 2], [2, 0, 8], [8, 2, 0]]                  # a beats b beats c beats a
    >>> data = bradley.PairCounts.from_matrix(wins, items=["a", "b", "c"])
    >>> model = GPM(k=1).fit(data)
    >>> model.converged_, model.predict_proba(["a", "b", "c"], ["b", "c", "a"]).round(2).tolist()
    (True, [0.74, 0.74, 0.74])
    >>> bt = GPM(k=0).fit(data)                                  # BT cannot: every pair at 1/2
    >>> bt.predict_proba("a", "b").round(2).tolist()
    [0.5]
    """

    def __init__(
        self,
        k: int = 1,
        bt_scalar: bool = True,
        l2: float = 1.0,
        prior: float | None = None,
        tol: float = DEFAULT_TOL,
        max_iter: int = 20_000,
        n_init: int = 1,
        random_state: int | None = 0,
    ):
        self.k = k
        self.bt_scalar = bt_scalar
        self.l2 = l2
        self.prior = prior
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.random_state = random_state

    def __repr__(self) -> str:
        return (f"GPM(k={self.k!r}, bt_scalar={self.bt_scalar!r}, l2={self.l2!r}, prior={self.prior!r}, "
                f"tol={self.tol!r}, max_iter={self.max_iter!r}, n_init={self.n_init!r}, "
                f"random_state={self.random_state!r})")

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments (scikit-learn style)."""
        return {name: getattr(self, name) for name in
                ("k", "bt_scalar", "l2", "prior", "tol", "max_iter", "n_init", "random_state")}

    def _check_params(self) -> None:
        if not isinstance(self.k, (int, np.integer)) or isinstance(self.k, bool) or self.k < 0:
            raise ValueError(f"k must be a non-negative integer, got {self.k!r}.")
        if self.k == 0 and not self.bt_scalar:
            raise ValueError("GPM(k=0, bt_scalar=False) has no parameters: use k >= 1 or keep the BT scalar.")
        if not (np.isfinite(self.l2) and self.l2 >= 0):
            raise ValueError(f"l2 must be a non-negative finite number, got {self.l2!r}.")
        if self.k > 0 and self.l2 == 0:
            raise ValueError("l2 must be positive when k >= 1: without it the embeddings are not identified and a "
                             "cycle in the data sends them to infinity.")
        check_prior(self.prior)
        if not (self.tol > 0):
            raise ValueError(f"tol must be positive, got {self.tol!r}.")
        if self.max_iter < 1 or self.n_init < 1:
            raise ValueError(f"max_iter and n_init must be at least 1, got {self.max_iter!r} and {self.n_init!r}.")

    def fit(self, data: Any) -> GPM:
        """Fit scores and embeddings.

        Parameters
        ----------
        data : Comparisons, PairCounts, DataFrame or path
            As for :class:`~bradley.BradleyTerry` (arena ``model_a/model_b/winner``
            frames, ``left/right/outcome`` frames, files).

        Returns
        -------
        self
        """
        self._check_params()
        if isinstance(data, PairCounts):
            pairs, n_rows = data, int(round(float(data.totals.sum())))
        else:
            comparisons = as_comparisons(data)
            pairs, n_rows = comparisons.pair_counts(), comparisons.n_comparisons
        if self.bt_scalar and self.prior is None:
            check_mle_exists(pairs)
        rng = np.random.default_rng(self.random_state)
        best: GPMResult | None = None
        for start in range(self.n_init if self.k else 1):
            result = fit_gpm(pairs, int(self.k), bt_scalar=self.bt_scalar, l2=float(self.l2), prior=self.prior,
                             tol=self.tol, max_iter=self.max_iter, init="spectral" if start == 0 else "random",
                             seed=rng)
            if best is None or result.log_posterior > best.log_posterior:
                best = result
        assert best is not None
        self.pair_counts_ = pairs
        self.n_comparisons_ = n_rows
        self.items_ = np.asarray(pairs.items, dtype=object)
        self._index = ItemIndex(self.items_)
        self.scores_ = best.scores
        self._embeddings = best.embeddings
        self.block_strengths_ = best.strengths
        self.log_likelihood_ = best.log_likelihood
        self.log_posterior_ = best.log_posterior
        self.converged_ = best.converged
        self.n_iter_ = best.n_iter
        self.step_ = best.step
        if not best.converged:
            warnings.warn(
                f"GPM(k={self.k}) stopped after {best.n_iter} L-BFGS iterations with a largest Newton step of "
                f"{best.step:.3g} > tol={self.tol:g}; the estimate may be inaccurate. Raise max_iter or l2, or "
                "loosen tol.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    @property
    def embeddings_(self) -> pd.DataFrame:
        """Embeddings, one row per item, columns ``b1_x, b1_y, ...`` (canonical gauge)."""
        require_fitted(self)
        columns = [f"b{b + 1}_{axis}" for b in range(self._embeddings.shape[1] // 2) for axis in ("x", "y")]
        return pd.DataFrame(self._embeddings, index=pd.Index(self.items_, name="item"), columns=columns)

    def margin(self, left: Any, right: Any) -> np.ndarray:
        """Log-odds that ``left`` beats ``right`` (names or codes; arrays broadcast)."""
        require_fitted(self)
        return gpm_margin(self.scores_, self._embeddings, self._index.codes(left), self._index.codes(right))

    def predict_proba(self, left: Any, right: Any) -> np.ndarray:
        """Probability that ``left`` beats ``right`` (names or item codes; arrays broadcast)."""
        return np.asarray(expit(self.margin(left, right)))

    def preference_matrix(self) -> pd.DataFrame:
        """``P[i, j]`` = fitted probability that row item ``i`` beats column item ``j`` (diagonal 1/2).

        Examples
        --------
        >>> import bradley
        >>> m = GPM(k=0).fit(bradley.PairCounts.from_matrix([[0, 3], [1, 0]], items=["x", "y"]))
        >>> m.preference_matrix().round(3).values.tolist()
        [[0.5, 0.75], [0.25, 0.5]]
        """
        require_fitted(self)
        s, v = self.scores_, self._embeddings
        margins = s[:, None] - s[None, :] + v @ _rot(v).T
        names = pd.Index(self.items_, name="item")
        return pd.DataFrame(expit(margins), index=names, columns=names.rename("opponent"))

    def summary(self) -> pd.DataFrame:
        """Tidy per-item table: item, score, mean_win_prob, per-block norm and angle, rank, wins, losses, ties.

        ``rank`` orders the scalar BT ``score`` (1 = best); with cycles no
        order is the whole story, so ``mean_win_prob`` (the average fitted
        probability of beating each other item) is beside it, and ``bK_norm`` /
        ``bK_angle`` (radians, in the canonical gauge) place each item in
        block ``K``: in one block, ``i`` is favoured over ``j`` when ``j``'s
        angle is less than pi ahead of ``i``'s.
        """
        require_fitted(self)
        n = len(self.items_)
        prefs = self.preference_matrix().to_numpy()
        extra: dict[str, np.ndarray] = {
            "mean_win_prob": (prefs.sum(axis=1) - 0.5) / max(n - 1, 1),
        }
        v = self._embeddings
        for b in range(v.shape[1] // 2):
            extra[f"b{b + 1}_norm"] = np.hypot(v[:, 2 * b], v[:, 2 * b + 1])
            extra[f"b{b + 1}_angle"] = np.arctan2(v[:, 2 * b + 1], v[:, 2 * b])
        how = ("scalar scores centred to mean zero; embeddings in the canonical gauge (least norm, blocks by "
               "strength, each block rotated so that its largest embedding lies on the positive x axis)")
        if self.prior is not None:
            how += f"; Gaussian prior N(0, {self.prior:g}) on the scalar scores"
        table = summary_table(self.items_, self.scores_, self.pair_counts_, how, **extra)
        if not self.bt_scalar:
            table["rank"] = pd.Series(-table["mean_win_prob"]).rank(method="min").astype(np.int64).to_numpy()
            table = table.sort_values("rank", kind="stable").reset_index(drop=True)
            table.attrs["identifiability"] = how + "; no scalar score: rank by mean_win_prob"
        table.attrs["block_strengths"] = self.block_strengths_.tolist()
        return table

    @classmethod
    def select_k(cls, data: Any, ks: Any = (0, 1, 2, 3), folds: int = 5, seed: int | None = 0,
                 **params: Any) -> pd.DataFrame:
        """Choose ``k`` by k-fold held-out log-loss.

        The comparisons are dealt to folds game by game when the counts are
        whole numbers (each (pair, outcome) count split multinomially), and
        otherwise cell by cell (all weight of a pair's wins, losses or ties
        goes to one fold). Each ``GPM(k, **params)`` is fitted on all folds but
        one and scored on the held-out one. Rarely compared items may be left
        without comparisons (or without a loss) in some training part: pass a
        ``prior`` on the scalar scores then (``prior=10.0`` as in
        :func:`bradley.compare_methods`).

        Returns
        -------
        pandas.DataFrame
            One row per ``k``: ``k``, ``n_params`` (free parameters, before the
            gauge), ``log_loss`` (pooled held-out cross-entropy per comparison,
            ties at 1/2), ``log_loss_se`` (standard error over the folds),
            ``accuracy`` (held-out, decisive comparisons), ``train_log_loss``,
            ``converged`` (in every fold) and ``best`` (the lowest log-loss).
            ``table.attrs["best_k"]`` holds the chosen ``k``.

        Examples
        --------
        >>> import bradley
        >>> data = bradley.PairCounts.from_matrix([[0, 40, 10], [10, 0, 40], [40, 10, 0]])
        >>> table = GPM.select_k(data, ks=(0, 1), folds=3)
        >>> table["k"].tolist(), table.attrs["best_k"]
        ([0, 1], 1)
        """
        if isinstance(data, PairCounts):
            pairs = data
        else:
            pairs = as_comparisons(data).pair_counts()
        if folds < 2:
            raise ValueError(f"the number of folds must be at least 2, got {folds}.")
        cells = np.stack([pairs.wins_first, pairs.wins_second, pairs.ties], axis=1)
        rng = np.random.default_rng(seed)
        if np.array_equal(cells, np.round(cells)):
            dealt = rng.multinomial(cells.astype(np.int64), np.full(folds, 1.0 / folds)).astype(np.float64)
        else:
            which = rng.integers(0, folds, cells.shape)
            dealt = np.zeros(cells.shape + (folds,))
            np.put_along_axis(dealt, which[..., None], cells[..., None], axis=2)
        rows = []
        for k in ks:
            losses, weights, correct, decisive, train_losses, train_weights = (np.zeros(folds) for _ in range(6))
            all_converged = True
            for f in range(folds):
                test = dealt[:, :, f]
                train = cells - test
                try:
                    model = cls(**{**params, "k": int(k)}).fit(_counts(pairs, train))
                except MLEDoesNotExistError as error:
                    raise MLEDoesNotExistError(
                        f"select_k: the training part of fold {f + 1} of {folds} has no maximum-likelihood "
                        f"scalar scores ({error}). Pass a prior on them, e.g. GPM.select_k(data, prior=10.0), as "
                        "bradley.compare_methods does.") from error
                all_converged &= bool(model.converged_)
                p = expit(gpm_margin(model.scores_, model._embeddings, pairs.first, pairs.second))
                log_p, log_q = np.log(np.clip(p, 1e-15, 1.0)), np.log(np.clip(1.0 - p, 1e-15, 1.0))
                for part, loss_out, weight_out in ((test, losses, weights), (train, train_losses, train_weights)):
                    won, lost, tied = part[:, 0], part[:, 1], part[:, 2]
                    loss_out[f] = -float(won @ log_p + lost @ log_q + 0.5 * tied @ (log_p + log_q))
                    weight_out[f] = float(part.sum())
                won, lost = test[:, 0], test[:, 1]
                credit = np.where(p > 0.5, won, np.where(p < 0.5, lost, 0.5 * (won + lost)))
                correct[f], decisive[f] = float(credit.sum()), float((won + lost).sum())
            per_fold = losses / np.maximum(weights, np.finfo(float).tiny)
            n_items = pairs.n_items
            bt_scalar = params.get("bt_scalar", True)
            rows.append({
                "k": int(k),
                "n_params": int(k) * 2 * n_items + (n_items if bt_scalar else 0),
                "log_loss": losses.sum() / weights.sum(),
                "log_loss_se": float(per_fold.std(ddof=1) / np.sqrt(folds)),
                "accuracy": correct.sum() / decisive.sum() if decisive.sum() > 0 else np.nan,
                "train_log_loss": train_losses.sum() / train_weights.sum(),
                "converged": all_converged,
            })
        table = pd.DataFrame(rows)
        best = int(table["log_loss"].idxmin())
        table["best"] = table.index == best
        table.attrs["best_k"] = int(table.loc[best, "k"])
        table.attrs["folds"] = folds
        return table


def _counts(pairs: PairCounts, cells: np.ndarray) -> PairCounts:
    """The same pairs with other (wins first, wins second, ties) counts; pairs left with none are dropped."""
    keep = cells.sum(axis=1) > 0
    return PairCounts(pairs.first[keep], pairs.second[keep], cells[keep, 0], cells[keep, 1], cells[keep, 2],
                      pairs.items)
