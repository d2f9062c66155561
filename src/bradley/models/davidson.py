"""Davidson's (1970) Bradley-Terry model with ties."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import logsumexp

from bradley.data import PairCounts, check_mle_exists
from bradley.errors import ConvergenceWarning
from bradley.models.base import ItemIndex, as_comparisons, require_fitted, summary_table

__all__ = ["Davidson", "davidson_log_likelihood"]


def _pair_terms(scores: np.ndarray, log_nu: float, pairs: PairCounts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    half = 0.5 * (scores[pairs.first] - scores[pairs.second])
    # log(e^{d/2} + e^{-d/2} + nu), stable for any d and nu
    log_norm = logsumexp(np.stack([half, -half, np.full_like(half, log_nu)]), axis=0)
    return half - log_norm, -half - log_norm, log_nu - log_norm


def davidson_log_likelihood(scores: np.ndarray, nu: float, pairs: PairCounts) -> float:
    """Log-likelihood of Davidson's model.

    ``P(i beats j) = pi_i / (pi_i + pi_j + nu sqrt(pi_i pi_j))``,
    ``P(tie) = nu sqrt(pi_i pi_j) / (...)`` with ``pi = exp(score)``; soft
    outcomes count fractionally as in :class:`~bradley.data.PairCounts`.
    """
    lw, ll, lt = _pair_terms(np.asarray(scores, float), float(np.log(nu)), pairs)
    return float(pairs.wins_first @ lw + pairs.wins_second @ ll + pairs.ties @ lt)


class Davidson:
    """Bradley-Terry with ties (Davidson 1970): a tie parameter ``nu >= 0`` fitted jointly with the scores.

    Parameters
    ----------
    prior : float, optional
        Gaussian prior variance on the scores (MAP); without it the MLE must
        exist (checked as for :class:`~bradley.BradleyTerry`).
    tol : float
        Convergence tolerance on the largest absolute gradient entry divided
        by the number of comparisons.
    max_iter : int

    Attributes
    ----------
    items_, scores_ (mean zero), nu_, log_likelihood_, converged_, n_iter_

    Examples
    --------
    >>> import bradley
    >>> p = bradley.PairCounts.from_matrix([[0, 4, 3], [2, 0, 4], [1, 2, 0]], ties=[[0, 2, 1], [2, 0, 2], [1, 2, 0]])
    >>> m = Davidson().fit(p)
    >>> m.converged_, bool(m.nu_ > 0)
    (True, True)
    """

    def __init__(self, prior: float | None = None, tol: float = 1e-9, max_iter: int = 10_000):
        self.prior = prior
        self.tol = tol
        self.max_iter = max_iter

    def fit(self, data: Any) -> "Davidson":
        """Fit scores and the tie parameter (L-BFGS on the exact log-likelihood)."""
        pairs = data if isinstance(data, PairCounts) else as_comparisons(data).pair_counts()
        if self.prior is None:
            check_mle_exists(pairs)
        n = pairs.n_items
        precision = 0.0 if self.prior is None else 1.0 / self.prior
        total = max(float(pairs.totals.sum()), 1.0)
        n_ties, n_total = float(pairs.ties.sum()), float(pairs.totals.sum())
        if n_ties == 0:
            raise ValueError("the data have no ties: Davidson's tie parameter would be 0; use BradleyTerry.")
        i, j = pairs.first, pairs.second

        def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
            scores, log_nu = x[:n], x[n]
            lw, ll, lt = _pair_terms(scores, log_nu, pairs)
            value = pairs.wins_first @ lw + pairs.wins_second @ ll + pairs.ties @ lt
            value -= 0.5 * precision * scores @ scores
            pw, pl, pt = np.exp(lw), np.exp(ll), np.exp(lt)
            counts = pairs.totals
            # d/d(theta_i) of each pair's log-likelihood; d(log_norm)/dd = (pw - pl)/2
            r = 0.5 * (pairs.wins_first - pairs.wins_second) - 0.5 * counts * (pw - pl)
            grad = np.bincount(i, r, n) - np.bincount(j, r, n) - precision * scores
            grad_nu = pairs.ties.sum() - counts @ pt
            return -value / total, -np.append(grad, grad_nu) / total

        x0 = np.append(np.zeros(n), np.log(2 * n_ties / max(n_total - n_ties, 1.0)))
        res = optimize.minimize(objective, x0, jac=True, method="L-BFGS-B",
                                options={"maxiter": self.max_iter, "gtol": self.tol, "ftol": 0.0, "maxcor": 20})
        grad = objective(res.x)[1]
        scores = res.x[:n] - res.x[:n].mean()
        self.items_ = np.asarray(pairs.items, dtype=object)
        self._index = ItemIndex(self.items_)
        self.pair_counts_ = pairs
        self.scores_ = scores
        self.nu_ = float(np.exp(res.x[n]))
        self.log_likelihood_ = davidson_log_likelihood(scores, self.nu_, pairs)
        self.n_iter_ = int(res.nit)
        self.converged_ = bool(np.max(np.abs(grad)) <= 10 * self.tol)
        if not self.converged_:
            warnings.warn(f"Davidson stopped after {res.nit} iterations without meeting tol={self.tol:g}.",
                          ConvergenceWarning, stacklevel=2)
        return self

    def predict_proba(self, left: Any, right: Any) -> np.ndarray:
        """Array (n, 3) of ``P(left wins)``, ``P(tie)``, ``P(right wins)``."""
        require_fitted(self)
        li, ri = self._index.codes(left), self._index.codes(right)
        half = 0.5 * (self.scores_[li] - self.scores_[ri])
        log_norm = logsumexp(np.stack([half, -half, np.full_like(half, np.log(self.nu_))]), axis=0)
        return np.exp(np.stack([half - log_norm, np.log(self.nu_) - log_norm, -half - log_norm], axis=1))

    def summary(self) -> pd.DataFrame:
        """item, score, rank, wins, losses, ties, comparisons; best first."""
        require_fitted(self)
        return summary_table(self.items_, self.scores_, self.pair_counts_)
