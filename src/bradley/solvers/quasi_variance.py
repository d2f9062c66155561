"""Quasi-variances of a score covariance (Firth & de Menezes 2004).

A kernel below ``models`` so that every fitted model can offer quasi-variances
(through :class:`bradley.models.base.ScoreUncertainty`) without importing
:mod:`bradley.inference`; ``bradley.inference.quasi_variances`` re-exports it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["quasi_variances", "contrast_variances"]


def contrast_variances(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(i, j, var(s_i - s_j))`` for every pair ``i < j`` of a covariance matrix.

    Examples
    --------
    >>> i, j, v = contrast_variances(np.array([[1.0, 0.5], [0.5, 2.0]]))
    >>> i.tolist(), j.tolist(), v.tolist()
    ([0], [1], [2.0])
    """
    cov = np.asarray(cov, dtype=np.float64)
    d = np.diag(cov)
    iu, ju = np.triu_indices(cov.shape[0], 1)
    return iu, ju, d[iu] + d[ju] - 2.0 * cov[iu, ju]


def quasi_variances(cov: np.ndarray) -> np.ndarray:
    """Quasi-variances (Firth & de Menezes 2004) of a score covariance matrix.

    Finds ``q`` minimising ``sum_{i<j} log((q_i + q_j) / v_ij)^2`` with
    ``v_ij = var(s_i - s_j)`` (the criterion of R's ``qvcalc``), so that any
    contrast's variance is read off a table as ``q_i + q_j``. The result does
    not depend on how the scores are identified (mean zero, reference item):
    only contrast variances enter.

    Parameters
    ----------
    cov : numpy.ndarray, shape (n, n)
        Covariance of the scores under any identifying constraint.

    Returns
    -------
    numpy.ndarray
        One quasi-variance per item.

    Examples
    --------
    >>> cov = np.diag([0.1, 0.2, 0.3])
    >>> np.round(quasi_variances(cov), 6).tolist()
    [0.1, 0.2, 0.3]
    """
    from scipy import optimize  # lazily: import time matters

    cov = np.asarray(cov, dtype=np.float64)
    n = cov.shape[0]
    if cov.shape != (n, n):
        raise ValueError(f"cov must be a square matrix, got shape {cov.shape}.")
    if n < 2:
        raise ValueError("quasi-variances need at least two items.")
    iu, ju, v = contrast_variances(cov)
    if np.any(~(v > 0)):
        k = int(np.flatnonzero(~(v > 0))[0])
        raise ValueError(f"the covariance gives a non-positive contrast variance (items {iu[k]} and {ju[k]}).")
    log_v = np.log(v)

    def objective(log_q: np.ndarray) -> tuple[float, np.ndarray]:
        q = np.exp(log_q)
        s = q[iu] + q[ju]
        r = np.log(s) - log_v
        g_pair = 2.0 * r / s
        grad = (np.bincount(iu, g_pair, n) + np.bincount(ju, g_pair, n)) * q
        return float(r @ r), grad

    # start: with n >= 3 items the exact solution of the three-item case for
    # each item against the average of the rest is a good guess; simplest is
    # half the mean contrast variance of each item.
    mean_v = (np.bincount(iu, v, n) + np.bincount(ju, v, n)) / (n - 1)
    start = np.log(np.clip(0.5 * mean_v, 1e-300, None))
    res = optimize.minimize(objective, start, jac=True, method="L-BFGS-B",
                            options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 10_000})
    return np.exp(res.x)
