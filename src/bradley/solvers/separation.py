"""Existence of the maximum-likelihood estimate of a pairwise model: a separation check by linear programming.

A pairwise model with linear predictor ``d = J x`` (one row of the design
``J`` per cell: a distinct (left, right, group, order) combination or a
single row) has a finite maximum-likelihood estimate exactly when no
direction ``v`` (not a gauge direction, ``J v != 0``) makes every observed
outcome at least as likely: for every cell, ``a = J v`` must satisfy

* ``a >= k tau`` if the left item won at least once,
* ``-a >= k tau`` if the right item won at least once,
* ``|a| <= k tau`` if the cell holds a tie (tie families only),

with ``tau >= 0`` the direction of the tie parameter (``k = 2`` for
Davidson's ``log nu``, ``k = 1`` for Rao-Kupper's ``alpha = log eta``). For
Bradley-Terry ties count half a win each way (``k = 0``), so a cell with a tie
or with wins each way forces ``a = 0``. A direction exists ("(quasi-)complete
separation", Albert & Anderson 1984) iff the linear programme

    maximise sum z  subject to  0 <= z <= 1,  z_r <= (sign-adjusted a_r - k tau)

has a positive optimum (Konis 2007, the method of R's ``safeBinaryRegression``
and ``detectseparation``). Because the separating directions form a convex
cone, the optimum counts the constraints that can be made strict together,
so the cells it marks are exactly those whose fitted probabilities run to 0
or 1. The plain Bradley-Terry design reduces to Ford's (1957) condition:
the win graph is strongly connected (tested against it on random graphs).

A cheap certificate comes first: cells with two kinds of outcome force
``a = 0``; when those equalities alone leave only gauge directions, no
separating direction exists and no programme is solved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from bradley.solvers.threads import single_blas_thread

__all__ = ["SeparationResult", "find_separation", "fitted_certificate", "design_null_space"]


@dataclass
class SeparationResult:
    """Outcome of :func:`find_separation`.

    Attributes
    ----------
    separated : bool
        True when the maximum-likelihood estimate does not exist (is infinite).
    direction : numpy.ndarray
        A separating direction ``v`` (zeros when none).
    tie_direction : float
        Its tie-parameter component ``tau`` (0 without a tie parameter).
    separated_cells : numpy.ndarray of bool
        Cells whose fitted outcome probability runs to 0 or 1 along ``v``.
    method : str
        ``"certificate"`` (no programme needed) or ``"linprog"``.
    """

    separated: bool
    direction: np.ndarray
    tie_direction: float
    separated_cells: np.ndarray
    method: str


def design_null_space(design: sparse.spmatrix | np.ndarray, weights: np.ndarray | None = None,
                      rtol: float = 1e-10) -> np.ndarray:
    """Orthonormal basis (columns) of the null space of ``design`` restricted to rows with positive weight.

    Computed from the eigendecomposition of the Gram matrix ``J' W J``; fine
    for designs with up to a few thousand columns.

    Examples
    --------
    >>> j = np.array([[1.0, -1.0, 0.0], [0.0, 1.0, -1.0]])
    >>> basis = design_null_space(j)
    >>> basis.shape, bool(np.allclose(np.abs(basis[:, 0]), 1 / np.sqrt(3)))
    ((3, 1), True)
    """
    j = sparse.csr_matrix(design)
    w = np.ones(j.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    keep = w > 0
    j = j[keep]
    if j.shape[1] == 0:
        return np.zeros((0, 0))
    col_scale = np.sqrt(np.asarray(j.multiply(j).sum(axis=0)).ravel())
    col_scale = np.where(col_scale > 0, col_scale, 1.0)
    scaled = j @ sparse.diags(1.0 / col_scale)
    gram = np.asarray((scaled.T @ scaled).todense())
    with single_blas_thread(gram.shape[0]):
        values, vectors = np.linalg.eigh(0.5 * (gram + gram.T))
    limit = rtol * max(float(values[-1]), 1.0) * max(gram.shape[0], 1)
    null = vectors[:, values <= limit]
    # back to the unscaled parameters: J (S^-1 y) = 0  <=>  v = S^-1 y
    null = null / col_scale[:, None]
    if null.shape[1]:
        null, _ = np.linalg.qr(null)
    return null


def _rank(matrix: sparse.spmatrix, rtol: float = 1e-10) -> int:
    if matrix.shape[0] == 0:
        return 0
    p = matrix.shape[1]
    return p - design_null_space(matrix, None, rtol).shape[1]


def find_separation(
    design: sparse.spmatrix | np.ndarray,
    win: np.ndarray,
    loss: np.ndarray,
    tie: np.ndarray,
    tie_scale: float | None = None,
    solve: bool = True,
) -> SeparationResult | None:
    """Look for a direction along which the pairwise likelihood increases without bound.

    Parameters
    ----------
    design : (m, p) sparse or dense matrix
        Jacobian of the linear predictor (left's log-odds) with respect to the
        parameters that may diverge (free and not penalised), one row per cell.
    win, loss, tie : (m,) arrays
        Weighted counts per cell of left wins, right wins and ties.
    tie_scale : float, optional
        ``k`` above for a tie family with a tie parameter (2 for Davidson, 1
        for Rao-Kupper); None when ties count half a win each way (BT).

    Returns
    -------
    SeparationResult

    Examples
    --------
    >>> j = np.array([[1.0, -1.0], [1.0, -1.0]])           # two cells, a vs b
    >>> find_separation(j, np.array([3.0, 1.0]), np.array([0.0, 0.0]), np.zeros(2)).separated
    True
    >>> find_separation(j, np.array([3.0, 0.0]), np.array([0.0, 1.0]), np.zeros(2)).separated
    False
    """
    j = sparse.csr_matrix(design, dtype=np.float64)
    m, p = j.shape
    win, loss, tie = (np.asarray(a, dtype=np.float64) for a in (win, loss, tie))
    has_win, has_loss, has_tie = win > 0, loss > 0, tie > 0
    if tie_scale is None:
        has_win, has_loss, has_tie = has_win | has_tie, has_loss | has_tie, np.zeros(m, dtype=bool)
    observed = has_win | has_loss | has_tie
    none = SeparationResult(False, np.zeros(p), 0.0, np.zeros(m, dtype=bool), "certificate")
    if not observed.any():
        return none
    # certificate: two outcome kinds in a cell force a = 0 (for tie families once tau = 0 is forced,
    # which any cell with wins each way does); if those rows span the design's row space, nothing diverges
    mixed = (has_win.astype(int) + has_loss + has_tie) >= 2
    tau_zero = tie_scale is None or bool((has_win & has_loss).any())
    if tau_zero and mixed.any():
        if _rank(j[mixed]) == _rank(j[observed]):
            return none
    if not solve:
        return None

    from scipy.optimize import linprog

    # constraints s_r(v, tau) - z_r >= 0 written as -(s_r) + z_r <= 0
    k = 0.0 if tie_scale is None else float(tie_scale)
    use_tau = tie_scale is not None
    blocks, kinds = [], []
    for mask, sign in ((has_win, 1.0), (has_loss, -1.0)):
        idx = np.flatnonzero(mask)
        blocks.append((idx, sign, -k))
        kinds.append(idx)
    if use_tau:
        idx = np.flatnonzero(has_tie)
        blocks.append((idx, -1.0, k))   # k tau - a >= 0
        blocks.append((idx, 1.0, k))    # k tau + a >= 0
    rows_a, rows_tau, cells = [], [], []
    for idx, sign, tau_coef in blocks:
        rows_a.append(sign * j[idx])
        rows_tau.append(np.full(len(idx), tau_coef))
        cells.append(idx)
    a_part = sparse.vstack(rows_a).tocsr()
    tau_col = np.concatenate(rows_tau)
    cell_of_row = np.concatenate(cells)
    r = a_part.shape[0]
    n_tau = 1 if use_tau else 0
    # variables: v (p, free), tau (>= 0), z (r), z_tau (<= tau)
    s_matrix = sparse.hstack([a_part, sparse.csr_matrix(tau_col[:, None]) if use_tau else sparse.csr_matrix((r, 0))])
    a_ub = sparse.hstack([-s_matrix, sparse.identity(r), sparse.csr_matrix((r, n_tau))]).tocsr()
    if use_tau:
        tau_row = sparse.csr_matrix(([-1.0, 1.0], ([0, 0], [p, p + 1 + r])), shape=(1, p + 1 + r + 1))
        a_ub = sparse.vstack([a_ub, tau_row]).tocsr()
    n_var = p + n_tau + r + n_tau
    cost = np.zeros(n_var)
    cost[p + n_tau:] = -1.0
    bounds = [(None, None)] * p + [(0, None)] * n_tau + [(0.0, 1.0)] * (r + n_tau)
    res = linprog(cost, A_ub=a_ub, b_ub=np.zeros(a_ub.shape[0]), bounds=bounds, method="highs")
    if res.status != 0:  # pragma: no cover - the programme is always feasible (v = 0) and bounded
        raise RuntimeError(f"separation check: linear programme failed ({res.message}).")
    z = res.x[p + n_tau:p + n_tau + r]
    strict = z > 0.5
    tau = float(res.x[p]) if use_tau else 0.0
    separated = bool(-res.fun > 0.5)
    cells_hit = np.zeros(m, dtype=bool)
    cells_hit[cell_of_row[strict]] = True
    return SeparationResult(separated, res.x[:p].copy(), tau, cells_hit, "linprog")


def fitted_certificate(design: sparse.spmatrix | np.ndarray, weight_win: np.ndarray, weight_loss: np.ndarray,
                       margin: float = 0.5) -> bool:
    """True when a fitted point proves that no separating direction exists (Stiemke's theorem).

    For Bradley-Terry-like likelihoods the score equations are
    ``sum_c (l_win_c - l_loss_c) J_c = g`` with positive per-outcome weights
    (e.g. ``l_win = wins * P(loss)``, ``l_loss = losses * P(win)``). By
    Stiemke's theorem no direction ``v`` separates (``+-J_c v >= 0`` for every
    observed outcome, not all zero) iff some strictly positive weights make
    the sum exactly zero. The weights at a (nearly) converged fit are
    corrected by the smallest weighted change that removes the remaining
    gradient ``g``; if they stay positive (each changes by less than
    ``margin`` of itself) that is the certificate. Costs one pass over the
    cells and one small dense solve, so large row-level designs need no
    linear programme when the fit is finite.

    Examples
    --------
    >>> j = np.array([[1.0, -1.0], [1.0, -1.0]])
    >>> fitted_certificate(j, np.array([1.5, 0.5]), np.array([0.5, 1.5]))
    True
    >>> fitted_certificate(j, np.array([1e-9, 1e-9]), np.zeros(2))   # a never lost: no certificate
    False
    """
    j = sparse.csr_matrix(design, dtype=np.float64)
    lw, ll = np.asarray(weight_win, dtype=np.float64), np.asarray(weight_loss, dtype=np.float64)
    obs_w, obs_l = lw > 0, ll > 0
    lam = np.concatenate([lw[obs_w], ll[obs_l]])
    if lam.size == 0 or j.shape[1] == 0:
        return True
    if lam.min() <= 1e-12 * lam.max() or not np.isfinite(lam).all():
        return False
    g = j.T @ (lw - ll)
    gram = (j.T @ j.multiply((lw + ll)[:, None]).tocsr()).toarray()
    with single_blas_thread(gram.shape[0]):
        values, vectors = np.linalg.eigh(0.5 * (gram + gram.T))
    keep = values > 1e-10 * max(float(values[-1]), 1e-300) * gram.shape[0]
    z = vectors[:, keep] @ ((vectors[:, keep].T @ g) / values[keep])
    # the remaining gradient must lie in the range of the Gram matrix (it does, up to rounding)
    if np.linalg.norm(gram @ z - g) > 1e-6 * max(float(np.linalg.norm(g)), 1e-300) + 1e-12 * np.abs(lam).sum():
        return False
    r = j @ z
    return bool(np.all(r[obs_w] < margin) and np.all(-r[obs_l] < margin))
