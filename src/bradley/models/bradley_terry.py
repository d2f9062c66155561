"""The Bradley-Terry estimator."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from bradley.data import PairCounts, check_mle_exists
from bradley.errors import ConvergenceWarning, MLEDoesNotExistError
from bradley.models.base import (
    ItemIndex,
    ScoreUncertainty,
    as_comparisons,
    centre_covariance,
    check_prior,
    gauged_inverse,
    require_fitted,
    summary_table,
)
from bradley.scales import to_elo
from bradley.solvers import bt as bt_solvers
from bradley.solvers.threads import single_blas_thread

#: summary() includes standard errors up to this many items (an n x n inverse);
#: beyond, call ``standard_errors()`` explicitly.
SUMMARY_SE_MAX_ITEMS = 2000
#: ``covariance_`` is refused beyond this many items (a dense n x n matrix).
COVARIANCE_MAX_ITEMS = 20_000

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


class BradleyTerry(ScoreUncertainty):
    """Bradley-Terry model: ``P(i beats j) = expit(score_i - score_j)``.

    Fitted by maximum likelihood, by maximum a posteriori with a Gaussian
    prior on the scores, or by bias-reduced maximum likelihood (Firth 1993;
    ``bias_reduction=True``, as R's ``BTm(..., br = TRUE)``). In this plain model a tie counts half a win for each
    side (use the tie models for a proper treatment of ties), and soft outcomes
    ``p`` count ``p`` of a win for left and ``1 - p`` for right (cross-entropy).

    Parameters
    ----------
    prior : float, optional
        Variance of a Gaussian prior ``N(0, prior)`` on every score. It keeps the
        estimate finite when the MLE does not exist (disconnected data, items that
        never lose or never win). Without it such data raise
        :class:`~bradley.errors.MLEDoesNotExistError`.
    bias_reduction : bool
        Fit by Firth's bias-reduced maximum likelihood: maximise
        ``l(theta) + 1/2 log det I(theta)`` (the Jeffreys-prior penalty, with
        ``I`` the Fisher information of any ``n - 1`` scores). The estimate is
        finite whenever the comparison graph is connected (also for items that
        never lost or never won) and its first-order bias is removed, which
        matters for items with few comparisons. It does not depend on which
        item is used to identify the scores. Mutually exclusive with
        ``prior``; uses its own solver (safeguarded quasi-Fisher scoring on the
        adjusted score, see :func:`bradley.solvers.firth.firth`), for up to
        5,000 items. See ``docs/bias-reduction.md``.
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
    init : array, pandas.Series, dict or fitted BradleyTerry, optional
        Warm start: starting scores for the solver. An array is aligned with
        the items of the data being fitted (``items_``); a Series or dict maps
        item names to scores, and a fitted model gives its ``scores_`` by
        ``items_`` (typically yesterday's fit before today's refit), aligned by
        :func:`bradley.aggregate.warm_start_scores`: items it does not name
        start at the mean of the scores it gives for the items being fitted,
        names not in the data are ignored, and the start is centred; if it
        names none of them, a ``DataWarning`` and the default start. Other
        types (a DataFrame, another model) raise ``TypeError``. Only the starting point changes: the optimum and the
        convergence criterion are the same, usually reached in fewer
        iterations when the data changed little.

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
        Log-likelihood plus the Gaussian log-prior (equals ``log_likelihood_`` without prior);
        with ``bias_reduction`` the penalised log-likelihood ``l + 1/2 log det I``.
    covariance_ : numpy.ndarray
        Covariance of the scores (n_items x n_items) under the mean-zero
        constraint: the inverse observed Fisher information (with a prior, of
        the log-posterior; with bias reduction, at the bias-reduced estimate),
        computed on first access. Use :meth:`standard_errors`,
        :meth:`score_covariance` (``reference=`` an item, e.g. the anchor) and
        :meth:`quasi_variances` to read it.
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
    components_ : pandas.Series
        Connected component of every item in the comparison graph (0, 1, ...;
        all 0 when connected), indexed by item, as for
        :class:`~bradley.PairwiseModel`. Only a prior fit can have several;
        it then warns, and ``summary()`` gains a ``component`` column and
        ranks within each component.
    n_components_ : int

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
    >>> model.standard_errors("a").round(3).tolist()  # relative to item a
    [0.0, 1.307, 1.693]

    Bias reduction keeps the scores finite when an item never lost:

    >>> unbeaten = bradley.Comparisons.from_arrays(["a", "a", "b", "c"], ["b", "c", "c", "b"], [1, 1, 1, 1])
    >>> firth = bradley.BradleyTerry(bias_reduction=True).fit(unbeaten)
    >>> firth.converged_, bool(firth.scores_[0] == firth.scores_.max())
    (True, True)
    """

    def __init__(
        self,
        prior: float | None = None,
        solver: str = "auto",
        tol: float = bt_solvers.DEFAULT_TOL,
        max_iter: int | None = None,
        anchor: str | tuple[Any, float] | None = None,
        bias_reduction: bool = False,
        init: Any = None,
    ):
        self.prior = prior
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.anchor = anchor
        self.bias_reduction = bias_reduction
        self.init = init

    def __repr__(self) -> str:
        return (
            f"BradleyTerry(prior={self.prior!r}, solver={self.solver!r}, tol={self.tol!r}, "
            f"max_iter={self.max_iter!r}, anchor={self.anchor!r}"
            + (", bias_reduction=True" if getattr(self, "bias_reduction", False) else "")
            + (", init=..." if getattr(self, "init", None) is not None else "")
            + ")"
        )

    def _check_params(self) -> str:
        if self.solver not in _SOLVER_ALIASES:
            raise ValueError(f"unknown solver {self.solver!r}; choose one of {sorted(_SOLVER_ALIASES)}.")
        check_prior(self.prior)
        if not (self.tol > 0):
            raise ValueError(f"tol must be positive, got {self.tol!r}.")
        if self.max_iter is not None and self.max_iter < 1:
            raise ValueError(f"max_iter must be at least 1, got {self.max_iter!r}.")
        if self.bias_reduction:
            if self.prior is not None:
                raise ValueError(
                    "bias_reduction and prior are mutually exclusive: the bias-reduced fit already keeps the "
                    "scores finite (Jeffreys-prior penalty); choose one."
                )
            if self.solver != "auto":
                raise ValueError(
                    f"bias_reduction uses its own solver (quasi-Fisher scoring on the adjusted score); "
                    f"leave solver='auto', got {self.solver!r}."
                )
            return "firth"
        return _SOLVER_ALIASES[self.solver]

    def fit(self, data: Any) -> BradleyTerry:
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
            # games (sum of the counts), summed per array: no pair-sized temporary
            n_rows = int(round(float(np.sum(data.wins_first)) + float(np.sum(data.wins_second))
                               + float(np.sum(data.ties))))
            pairs = data
        else:
            comparisons = as_comparisons(data)
            pairs, n_rows = comparisons.pair_counts(), comparisons.n_comparisons
        init = self._initial_scores(pairs)
        if solver == "firth":
            result = _fit_firth(pairs, self.tol, self.max_iter, init)
        elif self.prior is None:
            check_mle_exists(pairs)
        kwargs: dict[str, Any] = {"prior_variance": self.prior, "tol": self.tol}
        if self.max_iter is not None:
            kwargs["max_iter"] = self.max_iter
        if init is not None:
            kwargs["init"] = init
        if solver == "newton-cg":
            result = bt_solvers.newton(pairs, dense=False, **kwargs)
        elif solver != "firth":
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
        self._covariance: np.ndarray | None = None
        self._set_components(pairs)
        if not result.converged:
            warnings.warn(
                f"BradleyTerry ({result.solver}) stopped after {result.n_iter} iterations without "
                f"meeting tol={self.tol:g} (gradient norm {result.grad_norm:.3g}); the scores may be "
                "inaccurate. Raise max_iter" + ("." if solver == "firth" else " or use solver='newton'."),
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def _initial_scores(self, pairs: PairCounts) -> np.ndarray | None:
        """``init`` as starting scores aligned with ``pairs.items`` (None for the solver's default).

        Names are aligned by :func:`bradley.aggregate.warm_start_scores` (new
        items at the mean of the matched scores, centred; a warning and the
        default start where none match).
        """
        init = getattr(self, "init", None)
        if init is None:
            return None
        items = np.asarray(pairs.items, dtype=object)
        if isinstance(init, BradleyTerry):
            require_fitted(init)
            names, values = np.asarray(init.items_, dtype=object), np.asarray(init.scores_, dtype=np.float64)
        elif isinstance(init, pd.Series):
            names, values = init.index.to_numpy(dtype=object), init.to_numpy(dtype=np.float64)
        elif isinstance(init, Mapping):
            names, values = np.asarray(list(init.keys()), dtype=object), np.asarray(list(init.values()), dtype=float)
        elif isinstance(init, pd.DataFrame) or hasattr(init, "fit") or hasattr(init, "scores_"):
            raise TypeError(
                f"init takes a fitted BradleyTerry, a pandas Series or dict of scores by item, or an array aligned "
                f"with the items; got {type(init).__name__}. From a table pass e.g. "
                "frame.set_index('item')['score'].")
        else:
            values = np.asarray(init, dtype=np.float64).reshape(-1)
            if len(values) != len(items):
                raise ValueError(
                    f"init has {len(values)} scores for {len(items)} items; pass a pandas Series or dict by item "
                    "name (or the fitted model) when the items differ: new items then start at the mean.")
            if not np.all(np.isfinite(values)):
                bad = items[~np.isfinite(values)][:5].tolist()
                raise ValueError(f"init scores must be finite; not for items {bad}.")
            return values
        from bradley.aggregate import warm_start_scores

        return warm_start_scores(names, values, items)

    def _set_components(self, pairs: PairCounts) -> None:
        """``components_`` and ``n_components_``; with a prior, warn when the graph is disconnected."""
        n = pairs.n_items
        if self.prior is None:
            # without a prior the fit has already checked that the comparison graph is connected
            labels, count = np.zeros(n, dtype=np.int64), 1
        else:
            from bradley.solvers.firth import comparison_groups

            count, labels = comparison_groups(pairs)
            labels = np.asarray(labels, dtype=np.int64)
        self.components_ = pd.Series(labels, index=pd.Index(self.items_, name="item"), name="component")
        self.n_components_ = int(count)
        if count > 1:
            sizes = np.bincount(labels, minlength=count)
            warnings.warn(
                f"{self._component_note()} (sizes {sizes.tolist()[:10]}{' ...' if count > 10 else ''}): no comparison "
                f"links them, only the N(0, {self.prior:g}) prior, which pulls each component towards 0. Scores are "
                "comparable only within a component; summary() ranks within each (column 'component'). Fit the "
                "components separately or add comparisons between them.",
                UserWarning,
                stacklevel=3,
            )

    def _component_note(self) -> str:
        return (f"the comparison graph has {self.n_components_} connected components "
                "(components_ gives each item's component)")

    def _apply_anchor(self, centred: np.ndarray) -> np.ndarray:
        if self.anchor is None:
            return centred
        name, value = (self.anchor, 0.0) if not isinstance(self.anchor, tuple) else self.anchor
        code = self._index.codes([name])[0]
        return centred - centred[code] + float(value)

    @property
    def covariance_(self) -> np.ndarray:
        """Covariance of ``scores_`` under the mean-zero constraint (inverse observed Fisher information).

        Computed on first access and kept (an n x n matrix: a 100,000-item fit
        does not build it unless asked). With an ``anchor`` it is still the
        centred covariance; ``standard_errors(reference=anchor item)`` gives
        the SEs of the anchored scores.
        """
        require_fitted(self)
        cov = getattr(self, "_covariance", None)
        if cov is None:
            cov = self._covariance = self._fisher_covariance()
        return cov

    def _fisher_covariance(self) -> np.ndarray:
        n = len(self.items_)
        if n > COVARIANCE_MAX_ITEMS:
            raise ValueError(
                f"the covariance of {n} scores is a dense {n} x {n} matrix ({8 * n * n / 1e9:.0f} GB); it is "
                f"offered up to {COVARIANCE_MAX_ITEMS} items. Use the bootstrap on a subset of items, or refit "
                "on the items of interest."
            )
        info = bt_solvers.bt_neg_hessian(self.scores_, self.pair_counts_, self.prior)
        with single_blas_thread(n):
            if self.prior is None:
                # pseudo-inverse of the Laplacian (null space: the common shift)
                return gauged_inverse(info, np.full(n, n ** -0.5))
            # the Gaussian prior identifies the mean too; the scores are reported
            # centred, so report the covariance of the centred scores
            return centre_covariance(_symmetric_inverse(info))

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
        """Tidy table: item, score, se, elo, rank, wins, losses, ties, comparisons; best first.

        ``rank`` is 1 for the best item (equal scores share the better rank).
        Wins, losses and ties are weighted counts (soft outcomes count fractionally).
        ``se`` is the standard error of ``score`` as identified: under the
        mean-zero constraint, or relative to the anchor item (which gets 0)
        when the model has an ``anchor``. It needs an n x n inverse, so beyond
        ``SUMMARY_SE_MAX_ITEMS`` (2,000) items it is left out unless already
        computed; ``table.attrs["se"]`` then says how to get it.
        ``table.attrs["identifiability"]`` says how the scores are pinned down.
        With a prior on disconnected data a ``component`` column says which
        scores can be compared, and ``rank`` is within the component.
        """
        require_fitted(self)
        reference = None
        if self.anchor is not None:
            name, value = (self.anchor, 0.0) if not isinstance(self.anchor, tuple) else self.anchor
            how = f"scores shifted so that {name} = {float(value):g}"
            reference = name
        else:
            how = "scores centred to mean zero"
        if self.prior is not None:
            how += f"; Gaussian prior N(0, {self.prior:g}) on the scores (MAP)"
        if getattr(self, "bias_reduction", False):
            how += "; bias-reduced (Firth) estimate"
        extra: dict[str, np.ndarray] = {}
        n = len(self.items_)
        cheap = n <= SUMMARY_SE_MAX_ITEMS or getattr(self, "_covariance", None) is not None
        if cheap:
            extra["se"] = self.standard_errors(reference).to_numpy()
            se_note = "mean-zero constraint" if reference is None else f"relative to {reference} (its se is 0)"
        else:
            se_note = (f"not computed for {n} > {SUMMARY_SE_MAX_ITEMS} items (an n x n inverse); call "
                       "model.standard_errors() to compute it")
        extra["elo"] = to_elo(self.scores_)
        n_components = getattr(self, "n_components_", 1)
        if n_components > 1:
            extra["component"] = self.components_.to_numpy()
            how = (f"the comparison graph has {n_components} connected components linked only by the prior: "
                   "scores are comparable only within a component; " + how)
        table = summary_table(self.items_, self.scores_, self.pair_counts_, how, **extra)
        if n_components > 1:
            # a rank across components would compare scores whose difference the data do not identify
            table["rank"] = (table.groupby("component")["score"].rank(ascending=False, method="min")
                             .astype(np.int64).to_numpy())
            table = table.sort_values(["component", "rank"], kind="stable").reset_index(drop=True)
            table.attrs["identifiability"] = how + "; rank is within the component (1 = best of its component)"
        table.attrs["se"] = se_note
        return table


def _symmetric_inverse(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive definite matrix (Cholesky; falls back to LU)."""
    from scipy import linalg

    try:
        factor = linalg.cho_factor(matrix, check_finite=False)
        return linalg.cho_solve(factor, np.eye(matrix.shape[0]), check_finite=False)
    except linalg.LinAlgError:
        return np.linalg.inv(matrix)


def _fit_firth(
    pairs: PairCounts, tol: float, max_iter: int | None, init: np.ndarray | None = None
) -> bt_solvers.SolverResult:
    """The bias-reduced fit, after checking that the comparison graph is connected."""
    from bradley.solvers.firth import comparison_groups, firth

    n_groups, labels = comparison_groups(pairs)
    if n_groups > 1:
        items = np.asarray(pairs.items, dtype=object)
        groups = [items[labels == g].tolist() for g in range(n_groups)]
        groups.sort(key=len)
        shown = "; ".join(str(g[:5]) + (f" and {len(g) - 5} more" if len(g) > 5 else "") for g in groups[:3])
        raise MLEDoesNotExistError(
            f"the comparison graph falls into {n_groups} groups never compared with each other ({shown}"
            f"{'; ...' if n_groups > 3 else ''}): no data link their scores, and bias reduction cannot "
            "either. Fit the groups separately, add comparisons between them, or use a prior "
            "(BradleyTerry(prior=...)), which ties them to a common mean.",
            components=[[str(x) for x in g] for g in groups],
        )
    kwargs: dict[str, Any] = {"tol": tol}
    if max_iter is not None:
        kwargs["max_iter"] = max_iter
    return firth(pairs, init, **kwargs)
