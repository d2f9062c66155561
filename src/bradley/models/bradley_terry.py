"""The Bradley-Terry estimator."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from bradley.data import PairCounts, check_mle_exists
from bradley.errors import ConvergenceWarning
from bradley.models.base import ItemIndex, as_comparisons, check_prior, require_fitted, summary_table
from bradley.scales import to_elo
from bradley.solvers import bt as bt_solvers

__all__ = ["BradleyTerry"]

_SOLVER_ALIASES = {
    "auto": "newton",
    "zermelo": "mm",
    "mm": "mm",
    "newman": "newman",
    "newton": "newton",
    "newton-cg": "newton-cg",
    "lbfgs": "lbfgs",
    "l-bfgs": "lbfgs",
}


class BradleyTerry:
    """Bradley-Terry model: ``P(i beats j) = expit(score_i - score_j)``.

    Fitted by maximum likelihood, or by maximum a posteriori with a Gaussian
    prior on the scores. In this plain model a tie counts half a win for each
    side (use the tie models for a proper treatment of ties), and soft outcomes
    ``p`` count ``p`` of a win for left and ``1 - p`` for right (cross-entropy).

    Parameters
    ----------
    prior : float, optional
        Variance of a Gaussian prior ``N(0, prior)`` on every score. It keeps the
        estimate finite when the MLE does not exist (disconnected data, items that
        never lose or never win). Without it such data raise
        :class:`~bradley.errors.MLEDoesNotExistError`.
    solver : {"auto", "newton", "newton-cg", "mm", "zermelo", "newman", "lbfgs"}
        ``"auto"`` uses Newton (dense Cholesky below 200 items, sparse
        preconditioned conjugate gradients above, with a Cholesky fallback
        when CG stalls). ``"mm"``/``"zermelo"`` is Hunter's MM form of
        Zermelo's iteration, ``"newman"`` Newman's (2023) fixed point.
    tol : float
        Convergence tolerance on the largest one-item Newton step
        ``|gradient_i| / information_ii``, i.e. how far a score may still be
        from the optimum in log units.
    max_iter : int, optional
        Iteration limit (default: 100 for Newton, 100,000 for MM/Newman, 10,000
        for L-BFGS). Stopping at it raises a :class:`ConvergenceWarning`.
    anchor : str or (str, float), optional
        Report ``scores_`` with this item fixed at this value (default 0)
        instead of centred to mean zero. Only a shift: probabilities are unchanged.

    Attributes
    ----------
    items_ : numpy.ndarray
        Item names, in the order of ``scores_``.
    scores_ : numpy.ndarray
        Natural-log strengths, mean zero (or fixed by ``anchor``).
    elo_scores_ : numpy.ndarray
        ``scores_`` on the Elo scale (400 points per factor 10 in odds, centred at 1000).
    log_likelihood_ : float
        Log-likelihood at the estimate (ties as half wins, no prior term).
    log_posterior_ : float
        Log-likelihood plus the Gaussian log-prior (equals ``log_likelihood_`` without prior).
    converged_ : bool
    n_iter_ : int
    grad_norm_ : float
        Largest absolute gradient of the log-posterior at the estimate.
    solver_ : str
        The algorithm that ran.
    pair_counts_ : PairCounts
        The sufficient statistics the model was fitted on.
    n_comparisons_ : int
        Number of comparison rows fitted (for PairCounts input: the rounded total count).

    Examples
    --------
    >>> import bradley
    >>> data = bradley.Comparisons.from_arrays(
    ...     ["a", "a", "b", "b", "c", "c"], ["b", "c", "c", "a", "a", "b"], [1, 1, 1, 1, 0, 0.5])
    >>> model = bradley.BradleyTerry().fit(data)
    >>> model.items_.tolist(), model.converged_
    (['a', 'b', 'c'], True)
    >>> float(model.predict_proba("a", "c")[0]) > 0.5
    True
    """

    def __init__(
        self,
        prior: float | None = None,
        solver: str = "auto",
        tol: float = bt_solvers.DEFAULT_TOL,
        max_iter: int | None = None,
        anchor: str | tuple[Any, float] | None = None,
    ):
        self.prior = prior
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.anchor = anchor

    def __repr__(self) -> str:
        return (
            f"BradleyTerry(prior={self.prior!r}, solver={self.solver!r}, tol={self.tol!r}, "
            f"max_iter={self.max_iter!r}, anchor={self.anchor!r})"
        )

    def _check_params(self) -> str:
        if self.solver not in _SOLVER_ALIASES:
            raise ValueError(f"unknown solver {self.solver!r}; choose one of {sorted(_SOLVER_ALIASES)}.")
        check_prior(self.prior)
        if not (self.tol > 0):
            raise ValueError(f"tol must be positive, got {self.tol!r}.")
        if self.max_iter is not None and self.max_iter < 1:
            raise ValueError(f"max_iter must be at least 1, got {self.max_iter!r}.")
        return _SOLVER_ALIASES[self.solver]

    def fit(self, data: Any) -> "BradleyTerry":
        """Fit the scores.

        Parameters
        ----------
        data : Comparisons, PairCounts, DataFrame or path
            A DataFrame needs ``left``, ``right``, ``outcome`` columns or the arena
            format (``model_a``, ``model_b``, ``winner``); see
            :func:`bradley.read_comparisons` for files and other column names.

        Returns
        -------
        self
        """
        solver = self._check_params()
        if isinstance(data, PairCounts):
            pairs, n_rows = data, int(round(float(data.totals.sum())))
        else:
            comparisons = as_comparisons(data)
            pairs, n_rows = comparisons.pair_counts(), comparisons.n_comparisons
        if self.prior is None:
            check_mle_exists(pairs)
        kwargs: dict[str, Any] = {"prior_variance": self.prior, "tol": self.tol}
        if self.max_iter is not None:
            kwargs["max_iter"] = self.max_iter
        if solver == "newton-cg":
            result = bt_solvers.newton(pairs, dense=False, **kwargs)
        else:
            result = bt_solvers.SOLVERS[solver](pairs, **kwargs)

        self.pair_counts_: PairCounts = pairs
        self.items_ = np.asarray(pairs.items, dtype=object)
        self._index = ItemIndex(self.items_)
        self.scores_ = self._apply_anchor(result.scores)
        self.log_likelihood_ = result.log_likelihood
        self.log_posterior_ = result.log_posterior
        self.converged_ = result.converged
        self.n_iter_ = result.n_iter
        self.grad_norm_ = result.grad_norm
        self.solver_ = result.solver
        self.n_comparisons_ = n_rows
        if not result.converged:
            warnings.warn(
                f"BradleyTerry ({result.solver}) stopped after {result.n_iter} iterations without "
                f"meeting tol={self.tol:g} (gradient norm {result.grad_norm:.3g}); the scores may be "
                "inaccurate. Raise max_iter or use solver='newton'.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def _apply_anchor(self, centred: np.ndarray) -> np.ndarray:
        if self.anchor is None:
            return centred
        name, value = (self.anchor, 0.0) if not isinstance(self.anchor, tuple) else self.anchor
        code = self._index.codes([name])[0]
        return centred - centred[code] + float(value)

    @property
    def elo_scores_(self) -> np.ndarray:
        """Scores on the Elo scale (400 per factor of 10 in odds, centred at 1000)."""
        require_fitted(self)
        return to_elo(self.scores_)

    def predict_proba(self, left: Any, right: Any) -> np.ndarray:
        """Probability that ``left`` beats ``right`` (names or item codes; arrays broadcast).

        Examples
        --------
        >>> import bradley
        >>> m = bradley.BradleyTerry().fit(bradley.PairCounts.from_matrix([[0, 3], [1, 0]], items=["x", "y"]))
        >>> round(float(m.predict_proba("x", "y")[0]), 6)
        0.75
        """
        require_fitted(self)
        li = self._index.codes(left)
        ri = self._index.codes(right)
        return expit(self.scores_[li] - self.scores_[ri])

    def summary(self) -> pd.DataFrame:
        """Tidy table: item, score, elo, rank, wins, losses, ties, comparisons; best first.

        ``rank`` is 1 for the best item (equal scores share the better rank).
        Wins, losses and ties are weighted counts (soft outcomes count fractionally).
        ``table.attrs["identifiability"]`` says how the scores are pinned down.
        """
        require_fitted(self)
        if self.anchor is not None:
            name, value = (self.anchor, 0.0) if not isinstance(self.anchor, tuple) else self.anchor
            how = f"scores shifted so that {name} = {float(value):g}"
        else:
            how = "scores centred to mean zero"
        if self.prior is not None:
            how += f"; Gaussian prior N(0, {self.prior:g}) on the scores (MAP)"
        return summary_table(self.items_, self.scores_, self.pair_counts_, how, elo=to_elo(self.scores_))
