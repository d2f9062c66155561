"""Pluralistic preferences: mixtures of Bradley-Terry models over annotators, and ideal-point models.

One BT scale assumes every annotator ranks the items the same way up to
noise. When annotators come in camps with different tastes (the setting of
PAL, Chen et al. 2024, "PAL: Pluralistic Alignment Framework for Learning from
Heterogeneous Preferences"), two models describe them better:

* :class:`BTMixture`: each annotator belongs to one of ``K`` latent groups and
  judges by that group's BT scores. Fitted by EM: the E-step gives each
  annotator's posterior group probabilities from all of their comparisons
  (in the log domain), the M-step fits one weighted BT model per group with
  bradley's Newton kernel (:func:`bradley.solvers.bt.newton`) under a
  Gaussian prior, which keeps every group's scores finite.
* :class:`IdealPointModel`: annotators and items share one ``d``-dimensional
  space; annotator ``a`` at ``x_a`` prefers items near it::

      P(a prefers i over j) = expit(s_i - s_j + |x_a - z_j|^2 - |x_a - z_i|^2)

  with an optional scalar item quality ``s`` (PAL's "quality plus ideal
  point" form; without it the classic ideal-point model).

Both place a new annotator from a handful of comparisons (:meth:`BTMixture.place`,
:meth:`IdealPointModel.place`). The kernels (:func:`annotator_cells`,
:func:`mixture_log_likelihoods`, :func:`ideal_point_objective`) are plain numpy
functions; :func:`adjusted_rand_index` compares two partitions.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, log_expit, logsumexp

from bradley.data import Comparisons, PairCounts
from bradley.errors import ComparisonDataError, ConvergenceWarning
from bradley.models.base import ItemIndex, as_comparisons, check_prior, require_fitted
from bradley.solvers import bt as bt_solvers
from bradley.solvers.threads import single_blas_thread

__all__ = [
    "AnnotatorCells",
    "BTMixture",
    "IdealPointModel",
    "adjusted_rand_index",
    "annotator_cells",
    "ideal_point_objective",
    "mixture_log_likelihoods",
]


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class AnnotatorCells:
    """Comparisons aggregated per (annotator, unordered pair): the sufficient statistics of both models.

    Attributes
    ----------
    annotator, first, second : numpy.ndarray of int64
        Annotator code and item codes (``first < second``) of each cell.
    wins_first, wins_second : numpy.ndarray of float64
        Effective (weighted) wins each way; a tie counts half a win for each
        side and a soft outcome ``p`` counts ``p`` for left, as in
        :class:`~bradley.BradleyTerry`.
    annotators : numpy.ndarray
        Annotator labels (``annotators[annotator]``).
    items : numpy.ndarray
        Item names.
    """

    annotator: np.ndarray
    first: np.ndarray
    second: np.ndarray
    wins_first: np.ndarray
    wins_second: np.ndarray
    annotators: np.ndarray
    items: np.ndarray

    @property
    def n_annotators(self) -> int:
        return int(len(self.annotators))

    @property
    def totals(self) -> np.ndarray:
        return self.wins_first + self.wins_second

    def pair_counts(self, weights: np.ndarray | None = None) -> PairCounts:
        """BT pair counts of all cells, each annotator's cells weighted by ``weights[annotator]``."""
        n = len(self.items)
        key = self.first * n + self.second
        uniq, inverse = np.unique(key, return_inverse=True)
        w = np.ones(len(key)) if weights is None else np.asarray(weights, dtype=np.float64)[self.annotator]
        size = len(uniq)
        wf = np.bincount(inverse, w * self.wins_first, size)
        ws = np.bincount(inverse, w * self.wins_second, size)
        return PairCounts(uniq // n, uniq % n, wf, ws, np.zeros(size), self.items)


def _annotator_labels(comparisons: Comparisons, annotators: Any) -> np.ndarray:
    labels = comparisons.annotator if annotators is None else np.asarray(annotators, dtype=object).reshape(-1)
    if labels is None:
        raise ComparisonDataError(
            "these comparisons carry no annotator column: pass annotators= (one label per row) or read the data "
            "with read_comparisons(..., annotator='worker').")
    if len(labels) != comparisons.n_comparisons:
        raise ComparisonDataError(
            f"{len(labels)} annotator labels for {comparisons.n_comparisons} comparisons: give one label per row.")
    missing = pd.isna(pd.Series(labels, dtype=object)).to_numpy()
    if missing.any():
        rows = np.flatnonzero(missing)[:10].tolist()
        raise ComparisonDataError(
            f"{int(missing.sum())} comparisons have no annotator (rows {rows}); drop them or label them.", rows)
    return np.asarray(labels)


def annotator_cells(data: Any, annotators: Any = None) -> AnnotatorCells:
    """Aggregate comparisons per (annotator, pair).

    Parameters
    ----------
    data : Comparisons, DataFrame or path
        Comparison rows (an ``annotator`` column is used when present).
    annotators : array-like, optional
        One annotator label per row, overriding the data's annotator column.

    Examples
    --------
    >>> c = Comparisons.from_arrays(["a", "b", "a"], ["b", "a", "b"], [1, 1, 0.5], annotator=["u", "u", "v"])
    >>> cells = annotator_cells(c)
    >>> cells.annotators.tolist(), cells.wins_first.tolist(), cells.wins_second.tolist()
    (['u', 'v'], [1.0, 0.5], [1.0, 0.5])
    """
    comparisons = as_comparisons(data)
    labels = _annotator_labels(comparisons, annotators)
    series = pd.Series(labels, dtype=object)
    try:
        codes, uniques = pd.factorize(series, sort=True)
    except TypeError:  # labels of mixed types: first-seen order
        codes, uniques = pd.factorize(series)
    names = np.asarray(uniques, dtype=object)
    w = np.ones(comparisons.n_comparisons) if comparisons.weight is None else comparisons.weight
    left, right, y = comparisons.left, comparisons.right, comparisons.outcome
    swap = left > right
    first, second = np.where(swap, right, left), np.where(swap, left, right)
    y_first = np.where(swap, 1.0 - y, y)
    n = comparisons.n_items
    key = (codes.astype(np.int64) * n + first) * n + second
    uniq, inverse = np.unique(key, return_inverse=True)
    size = len(uniq)
    wf = np.bincount(inverse, w * y_first, size)
    ws = np.bincount(inverse, w * (1.0 - y_first), size)
    return AnnotatorCells(uniq // (n * n), (uniq // n) % n, uniq % n, wf, ws, names,
                          np.asarray(comparisons.items, dtype=object))


def _cell_log_likelihood(margin: np.ndarray, wins_first: np.ndarray, wins_second: np.ndarray) -> np.ndarray:
    """``w1 log sigma(m) + w2 log sigma(-m)`` per cell, exact for any margin."""
    return wins_first * log_expit(margin) + wins_second * log_expit(-margin)


def mixture_log_likelihoods(scores: np.ndarray, cells: AnnotatorCells) -> np.ndarray:
    """Log-likelihood of every annotator's comparisons under every group's BT scores.

    Parameters
    ----------
    scores : numpy.ndarray, shape (K, n_items)
    cells : AnnotatorCells

    Returns
    -------
    numpy.ndarray, shape (n_annotators, K)

    Examples
    --------
    >>> c = Comparisons.from_arrays(["a", "a"], ["b", "b"], [1, 0], annotator=["u", "v"])
    >>> ll = mixture_log_likelihoods(np.array([[1.0, 0.0], [0.0, 1.0]]), annotator_cells(c))
    >>> bool(np.isclose(ll[0, 0], np.log(expit(1.0)))), bool(np.isclose(ll[1, 0], np.log(expit(-1.0))))
    (True, True)
    """
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    margins = scores[:, cells.first] - scores[:, cells.second]
    per_cell = _cell_log_likelihood(margins, cells.wins_first, cells.wins_second)
    out = np.empty((cells.n_annotators, scores.shape[0]))
    for g in range(scores.shape[0]):
        out[:, g] = np.bincount(cells.annotator, per_cell[g], cells.n_annotators)
    return out


def adjusted_rand_index(labels_true: Any, labels_pred: Any) -> float:
    """Adjusted Rand index (Hubert & Arabie 1985) of two partitions of the same objects.

    1 for identical partitions (up to relabelling), about 0 for independent ones.

    Examples
    --------
    >>> adjusted_rand_index([0, 0, 1, 1], [1, 1, 0, 0])
    1.0
    >>> round(adjusted_rand_index([0, 0, 1, 1], [0, 1, 0, 1]), 3)
    -0.5
    """
    a = pd.factorize(pd.Series(np.asarray(labels_true, dtype=object)))[0]
    b = pd.factorize(pd.Series(np.asarray(labels_pred, dtype=object)))[0]
    if len(a) != len(b):
        raise ValueError(f"the partitions label {len(a)} and {len(b)} objects.")
    table = np.zeros((a.max() + 1, b.max() + 1)) if len(a) else np.zeros((1, 1))
    np.add.at(table, (a, b), 1.0)

    def pairs(x: np.ndarray) -> float:
        return float((x * (x - 1) / 2).sum())

    index = pairs(table)
    rows, cols = pairs(table.sum(axis=1)), pairs(table.sum(axis=0))
    total = len(a) * (len(a) - 1) / 2
    expected = rows * cols / total if total else 0.0
    largest = (rows + cols) / 2
    if largest == expected:
        return 1.0
    return float((index - expected) / (largest - expected))


# --------------------------------------------------------------------------- BT mixture


@dataclass
class _EMResult:
    scores: np.ndarray
    weights: np.ndarray
    responsibilities: np.ndarray
    log_likelihood: float
    log_posterior: float
    history: np.ndarray
    converged: bool
    n_iter: int
    inner_converged: bool


def _log_posterior(ll: np.ndarray, weights: np.ndarray, scores: np.ndarray, prior: float) -> tuple[float, float,
                                                                                                    np.ndarray]:
    with np.errstate(divide="ignore"):
        joint = ll + np.log(weights)[None, :]
    marginal = logsumexp(joint, axis=1)
    loglik = float(marginal.sum())
    resp = np.exp(joint - marginal[:, None])
    return loglik, loglik - float((scores ** 2).sum()) / (2.0 * prior), resp


def _run_em(cells: AnnotatorCells, scores: np.ndarray, weights: np.ndarray, prior: float, tol: float,
            max_iter: int, total_weight: float) -> _EMResult:
    """EM from given group scores and weights: E-step first."""
    ll = mixture_log_likelihoods(scores, cells)
    loglik, logpost, resp = _log_posterior(ll, weights, scores, prior)
    history = [logpost]
    converged, inner_ok = False, True
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        weights = resp.mean(axis=0)
        new_scores = np.empty_like(scores)
        for g in range(scores.shape[0]):
            pairs = cells.pair_counts(resp[:, g])
            result = bt_solvers.newton(pairs, init=scores[g], prior_variance=prior, tol=1e-10)
            inner_ok &= result.converged
            new_scores[g] = result.scores
        scores = new_scores
        ll = mixture_log_likelihoods(scores, cells)
        loglik, logpost, resp = _log_posterior(ll, weights, scores, prior)
        history.append(logpost)
        if history[-1] - history[-2] <= tol * total_weight:
            converged = True
            break
    return _EMResult(scores, weights, resp, loglik, logpost, np.asarray(history), converged, n_iter, inner_ok)


class BTMixture:
    """Mixture of ``K`` Bradley-Terry models over annotators, fitted by EM.

    Annotator ``a`` belongs to a latent group ``g`` with probability
    ``weights_[g]``; given the group, all of ``a``'s comparisons follow BT with
    that group's scores: ``P(i beats j | g) = expit(scores_[g, i] - scores_[g, j])``.
    The likelihood of an annotator is a mixture over groups of the product over
    their comparisons, so every comparison of an annotator votes on the same
    group. ``K = 1`` is :class:`~bradley.BradleyTerry` with the same prior.

    EM maximises the log-posterior (the marginal log-likelihood plus a
    Gaussian ``N(0, prior)`` log-prior on every group's scores), which never
    decreases from one iteration to the next (``history_``). E-step: each
    annotator's posterior group probabilities (``responsibilities_``),
    computed in the log domain. M-step: the mixing weights are the mean
    responsibilities, and each group's scores a weighted BT MAP fit (Newton,
    warm-started) on the pair counts weighted by the responsibilities. EM
    stops when the log-posterior gains less than ``tol`` per comparison in one
    iteration. The likelihood has several local maxima, so ``n_init`` starts
    are run, each seeded by BT fits on the comparisons of ``K`` randomly
    chosen annotators, and the best log-posterior is kept. Groups are
    reported largest first.

    Parameters
    ----------
    n_groups : int
        ``K``; choose it by held-out log-likelihood with :meth:`select_k`.
    prior : float
        Variance of the Gaussian prior on each group's scores. A group may
        hold few annotators whose data alone have no finite MLE; the prior
        keeps its scores finite. Set it large for a weak prior.
    n_init : int
        Number of EM starts.
    tol : float
        EM stops when the log-posterior gains less than ``tol`` times the
        (weighted) number of comparisons in an iteration.
    max_iter : int
        EM iterations per start; a best start that stops at it warns
        (:class:`~bradley.errors.ConvergenceWarning`).
    random_state : int, optional
        Seed of the starts.

    Attributes
    ----------
    items_ : numpy.ndarray
    annotators_ : numpy.ndarray
        Annotator labels, in the order of ``responsibilities_``.
    scores_ : numpy.ndarray, shape (K, n_items)
        Log-strengths of each group (mean zero under the prior).
    weights_ : numpy.ndarray, shape (K,)
        Mixing weights (share of annotators), descending.
    responsibilities_ : pandas.DataFrame
        Posterior group probabilities, one row per annotator.
    labels_ : pandas.Series
        Most probable group of each annotator.
    log_likelihood_, log_posterior_ : float
        Marginal log-likelihood (ties as half wins) and log-posterior of the best start.
    history_ : numpy.ndarray
        Log-posterior after each EM iteration of the best start (non-decreasing).
    start_log_posteriors_ : numpy.ndarray
        Final log-posterior of every start.
    converged_ : bool
    n_iter_ : int
    n_comparisons_ : int

    Examples
    --------
    >>> import bradley
    >>> left = ["a", "b", "c"] * 8
    >>> right = ["b", "c", "a"] * 8
    >>> who = ["u1"] * 6 + ["u2"] * 6 + ["u3"] * 6 + ["v1"] * 6
    >>> outcome = [1, 1, 0] * 6 + [0, 0, 1] * 2                  # u: a > b > c, v: the reverse
    >>> data = bradley.Comparisons.from_arrays(left, right, outcome, annotator=who)
    >>> model = BTMixture(n_groups=2, random_state=0).fit(data)
    >>> model.converged_, model.labels_.tolist()
    (True, [0, 0, 0, 1])
    >>> model.place(bradley.Comparisons.from_arrays(["c", "b"], ["a", "a"], [1, 1])).round(2).tolist()
    [0.0, 1.0]
    """

    def __init__(self, n_groups: int = 2, prior: float = 10.0, n_init: int = 10, tol: float = 1e-9,
                 max_iter: int = 1000, random_state: int | None = 0):
        self.n_groups = n_groups
        self.prior = prior
        self.n_init = n_init
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state

    def __repr__(self) -> str:
        return (f"BTMixture(n_groups={self.n_groups!r}, prior={self.prior!r}, n_init={self.n_init!r}, "
                f"tol={self.tol!r}, max_iter={self.max_iter!r}, random_state={self.random_state!r})")

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments (scikit-learn style)."""
        return {name: getattr(self, name) for name in
                ("n_groups", "prior", "n_init", "tol", "max_iter", "random_state")}

    def _check_params(self) -> None:
        if not isinstance(self.n_groups, (int, np.integer)) or isinstance(self.n_groups, bool) or self.n_groups < 1:
            raise ValueError(f"n_groups must be a positive integer, got {self.n_groups!r}.")
        if self.prior is None:
            raise ValueError("BTMixture needs a prior variance (a group may have no finite MLE); pass e.g. "
                             "prior=100 for a weak one.")
        check_prior(self.prior)
        if not (self.tol > 0):
            raise ValueError(f"tol must be positive, got {self.tol!r}.")
        if self.max_iter < 1 or self.n_init < 1:
            raise ValueError(f"max_iter and n_init must be at least 1, got {self.max_iter!r} and {self.n_init!r}.")

    def fit(self, data: Any, annotators: Any = None) -> BTMixture:
        """Fit group scores, weights and annotator responsibilities.

        Parameters
        ----------
        data : Comparisons, DataFrame or path
            Comparison rows with an ``annotator`` column (for files and frames:
            a column named ``annotator``, or ``read_comparisons(..., annotator=...)``).
        annotators : array-like, optional
            One annotator label per row, instead of the data's column.

        Returns
        -------
        self
        """
        self._check_params()
        comparisons = as_comparisons(data)
        cells = annotator_cells(comparisons, annotators)
        k = int(self.n_groups)
        if k > cells.n_annotators:
            raise ComparisonDataError(f"n_groups={k} exceeds the {cells.n_annotators} annotators in the data.")
        prior = float(self.prior)
        total = float(cells.totals.sum())
        rng = np.random.default_rng(self.random_state)
        best: _EMResult | None = None
        start_values = []
        for start in range(self.n_init if k > 1 else 1):
            scores = self._seed_scores(cells, k, prior, rng, start)
            result = _run_em(cells, scores, np.full(k, 1.0 / k), prior, self.tol, self.max_iter, total)
            start_values.append(result.log_posterior)
            if best is None or result.log_posterior > best.log_posterior:
                best = result
        assert best is not None
        order = np.argsort(-best.weights, kind="stable")
        self.cells_ = cells
        self.items_ = cells.items
        self.annotators_ = cells.annotators
        self._index = ItemIndex(self.items_)
        self._annotator_index = pd.Index(self.annotators_)
        self.scores_ = best.scores[order]
        self.weights_ = best.weights[order]
        resp = best.responsibilities[:, order]
        self.responsibilities_ = pd.DataFrame(resp, index=pd.Index(self.annotators_, name="annotator"),
                                              columns=pd.RangeIndex(k, name="group"))
        self.labels_ = pd.Series(resp.argmax(axis=1), index=self.responsibilities_.index, name="group")
        self.log_likelihood_ = best.log_likelihood
        self.log_posterior_ = best.log_posterior
        self.history_ = best.history
        self.start_log_posteriors_ = np.asarray(start_values)
        self.converged_ = bool(best.converged and best.inner_converged)
        self.n_iter_ = best.n_iter
        self.n_comparisons_ = comparisons.n_comparisons
        if not self.converged_:
            what = ("EM reached max_iter" if not best.converged else "a group's weighted BT fit did not converge")
            warnings.warn(
                f"BTMixture(n_groups={k}): {what} after {best.n_iter} iterations (last gain "
                f"{np.diff(best.history)[-1] if len(best.history) > 1 else np.nan:.3g}); raise max_iter or "
                "loosen tol.", ConvergenceWarning, stacklevel=2)
        return self

    @staticmethod
    def _seed_scores(cells: AnnotatorCells, k: int, prior: float, rng: np.random.Generator,
                     start: int) -> np.ndarray:
        """Start ``start``: BT fits on the comparisons of ``k`` random distinct annotators (all data for K = 1)."""
        n = len(cells.items)
        if k == 1:
            return np.zeros((1, n))
        chosen = rng.choice(cells.n_annotators, size=k, replace=False)
        scores = np.empty((k, n))
        for g, a in enumerate(chosen):
            onehot = np.zeros(cells.n_annotators)
            onehot[a] = 1.0
            scores[g] = bt_solvers.newton(cells.pair_counts(onehot), prior_variance=prior).scores
        return scores

    # ---------------------------------------------------------------- prediction

    def _annotator_weights(self, annotator: Any, size: int) -> np.ndarray:
        """Group probabilities per row: the annotator's posterior, or the mixing weights when unknown/None."""
        if annotator is None:
            return np.broadcast_to(self.weights_, (size, len(self.weights_)))
        labels = np.atleast_1d(np.asarray(annotator, dtype=object))
        pos = self._annotator_index.get_indexer(labels)
        resp = self.responsibilities_.to_numpy()
        out = np.where((pos >= 0)[:, None], resp[np.maximum(pos, 0)], self.weights_[None, :])
        return np.broadcast_to(out, (size, out.shape[1])) if len(out) == 1 else out

    def predict_group_proba(self, left: Any, right: Any) -> np.ndarray:
        """``P(left beats right | group)``, shape (n, K) (names or codes; arrays broadcast)."""
        require_fitted(self)
        lc, rc = np.broadcast_arrays(self._index.codes(left), self._index.codes(right))
        return np.asarray(expit(self.scores_[:, lc] - self.scores_[:, rc]).T)

    def predict_proba(self, left: Any, right: Any, annotator: Any = None) -> np.ndarray:
        """Probability that ``left`` beats ``right``.

        For a known ``annotator`` (one label or one per row) the group
        probabilities are that annotator's posterior; for an unknown one or
        ``None``, the mixing weights (the population's preference).
        """
        groups = self.predict_group_proba(left, right)
        weights = self._annotator_weights(annotator, groups.shape[0])
        if weights.shape[0] != groups.shape[0]:
            raise ValueError(f"{weights.shape[0]} annotators for {groups.shape[0]} pairs.")
        return np.asarray((groups * weights).sum(axis=1))

    def place(self, data: Any) -> pd.Series:
        """Posterior group probabilities of a new annotator from their comparisons (fitted groups held fixed).

        Parameters
        ----------
        data : Comparisons, DataFrame or path
            The new annotator's comparisons (all rows are taken as one annotator).

        Returns
        -------
        pandas.Series
            Indexed by group; ``argmax`` is the most probable group.
        """
        require_fitted(self)
        ll = self._group_log_likelihoods(as_comparisons(data))
        log_post = ll + np.log(self.weights_)
        return pd.Series(np.exp(log_post - logsumexp(log_post)), index=pd.RangeIndex(len(ll), name="group"),
                         name="posterior")

    def _group_log_likelihoods(self, comparisons: Comparisons) -> np.ndarray:
        """Per-row log-likelihood summed, per group, of comparisons given by item names of the fitted model."""
        lc = self._index.codes(comparisons.items[comparisons.left])
        rc = self._index.codes(comparisons.items[comparisons.right])
        w = np.ones(len(lc)) if comparisons.weight is None else comparisons.weight
        y = comparisons.outcome
        margins = self.scores_[:, lc] - self.scores_[:, rc]
        return np.asarray(_cell_log_likelihood(margins, w * y, w * (1.0 - y)).sum(axis=1))

    def summary(self) -> pd.DataFrame:
        """Tidy table, one row per (group, item): group, weight, n_annotators, item, score, rank.

        ``rank`` is 1 for the best item of the group.

        ``n_annotators`` counts the annotators whose most probable group it is.
        """
        require_fitted(self)
        k, n = self.scores_.shape
        counts = np.bincount(self.labels_.to_numpy(), minlength=k)
        frames = []
        for g in range(k):
            rank = pd.Series(-self.scores_[g]).rank(method="min").astype(np.int64).to_numpy()
            frames.append(pd.DataFrame({"group": g, "weight": self.weights_[g], "n_annotators": counts[g],
                                        "item": self.items_, "score": self.scores_[g], "rank": rank}))
        table = pd.concat(frames, ignore_index=True).sort_values(["group", "rank"], kind="stable")
        table = table.reset_index(drop=True)
        table.attrs["identifiability"] = f"each group's scores under a N(0, {self.prior:g}) prior (mean zero)"
        return table

    def rankings(self) -> pd.DataFrame:
        """Wide table: one row per item, one score column per group (``group_0``, ...), best of group 0 first."""
        require_fitted(self)
        frame = pd.DataFrame(self.scores_.T, index=pd.Index(self.items_, name="item"),
                             columns=[f"group_{g}" for g in range(self.scores_.shape[0])])
        return frame.sort_values("group_0", ascending=False)

    # ---------------------------------------------------------------- model choice

    @classmethod
    def select_k(cls, data: Any, ks: Any = (1, 2, 3, 4), folds: int = 5, annotators: Any = None,
                 seed: int | None = 0, **params: Any) -> pd.DataFrame:
        """Choose the number of groups by held-out log-likelihood (k-fold, split within annotators).

        Each annotator's comparisons are dealt round-robin (in random order) to
        the folds, so every annotator with enough comparisons has some in each
        training set. A model fitted on the other folds scores a held-out fold
        by each annotator's predictive: the held-out comparisons' likelihood
        averaged over the annotator's posterior group probabilities from the
        training folds (the mixing weights for an annotator absent from them),
        ``log sum_g r_ag prod_t P(t | g)``. For ``K = 1`` this is BT's held-out
        log-likelihood.

        Returns
        -------
        pandas.DataFrame
            One row per ``K``: ``k``, ``n_params``, ``heldout_loglik`` (per
            comparison, higher is better), ``heldout_loglik_se`` (over folds),
            ``log_loss`` (mean per-comparison predictive cross-entropy),
            ``accuracy`` (decisive held-out comparisons), ``annotator_accuracy``
            (mean over annotators of their held-out accuracy),
            ``train_loglik`` (per comparison), ``converged`` (every fold),
            ``best``. ``table.attrs["best_k"]`` is the chosen ``K``.
        """
        comparisons = as_comparisons(data)
        labels = _annotator_labels(comparisons, annotators)
        if folds < 2:
            raise ValueError(f"the number of folds must be at least 2, got {folds}.")
        rng = np.random.default_rng(seed)
        codes = pd.factorize(pd.Series(labels, dtype=object))[0]
        n_ann = int(codes.max()) + 1
        shuffled = rng.permutation(len(codes))
        order = shuffled[np.argsort(codes[shuffled], kind="stable")]
        starts = np.searchsorted(codes[order], np.arange(n_ann))
        position = np.empty(len(codes), dtype=np.int64)
        position[order] = np.arange(len(codes)) - starts[codes[order]]
        fold = (position + rng.integers(0, folds, n_ann)[codes]) % folds
        w = np.ones(len(codes)) if comparisons.weight is None else comparisons.weight
        y = comparisons.outcome
        decisive = y != 0.5
        rows = []
        for k in ks:
            held, fold_rate, correct = 0.0, np.zeros(folds), np.zeros(len(codes))
            row_loss, train_ll, train_w, ok = 0.0, 0.0, 0.0, True
            for f in range(folds):
                test = fold == f
                model = cls(**{**params, "n_groups": int(k)}).fit(comparisons.take(~test), annotators=labels[~test])
                ok &= model.converged_
                train_ll += model.log_likelihood_
                train_w += float(w[~test].sum())
                part = comparisons.take(test)
                lc = model._index.codes(part.items[part.left])
                rc = model._index.codes(part.items[part.right])
                margins = model.scores_[:, lc] - model.scores_[:, rc]
                per_row = _cell_log_likelihood(margins, w[test] * y[test], w[test] * (1.0 - y[test]))
                resp = model._annotator_weights(labels[test], int(test.sum()))
                test_codes = codes[test]
                per_ann = np.zeros((n_ann, int(k)))
                for g in range(int(k)):
                    per_ann[:, g] = np.bincount(test_codes, per_row[g], n_ann)
                # each annotator's posterior (rows of one annotator share it)
                first_row = np.full(n_ann, -1)
                first_row[test_codes[::-1]] = np.arange(len(test_codes))[::-1]
                present = first_row >= 0
                with np.errstate(divide="ignore"):
                    log_r = np.log(resp[first_row[present]])
                fold_ll = float(logsumexp(log_r + per_ann[present], axis=1).sum())
                held += fold_ll
                fold_rate[f] = fold_ll / float(w[test].sum())
                p = (expit(margins).T * resp).sum(axis=1)
                row_loss -= float((w[test] * (y[test] * np.log(np.clip(p, 1e-300, 1))
                                              + (1 - y[test]) * np.log(np.clip(1 - p, 1e-300, 1)))).sum())
                correct[test] = np.where(p == 0.5, 0.5, (p > 0.5) == (y[test] > 0.5))
            total_w = float(w.sum())
            dec = decisive
            per_annotator = pd.Series(correct[dec]).groupby(codes[dec]).mean()
            rows.append({
                "k": int(k),
                "n_params": int(k) * (comparisons.n_items - 1) + int(k) - 1,
                "heldout_loglik": held / total_w,
                "heldout_loglik_se": float(fold_rate.std(ddof=1) / np.sqrt(folds)),
                "log_loss": row_loss / total_w,
                "accuracy": float(correct[dec].mean()) if dec.any() else np.nan,
                "annotator_accuracy": float(per_annotator.mean()) if dec.any() else np.nan,
                "train_loglik": train_ll / train_w,
                "converged": bool(ok),
            })
        table = pd.DataFrame(rows)
        best = int(table["heldout_loglik"].idxmax())
        table["best"] = table.index == best
        table.attrs["best_k"] = int(table.loc[best, "k"])
        table.attrs["folds"] = folds
        return table


# --------------------------------------------------------------------------- ideal points


def _split_params(theta: np.ndarray, n: int, n_ann: int, dim: int, quality: bool) -> tuple[np.ndarray, np.ndarray,
                                                                                             np.ndarray]:
    offset = n if quality else 0
    s = theta[:n] if quality else np.zeros(n)
    z = theta[offset:offset + n * dim].reshape(n, dim)
    x = theta[offset + n * dim:].reshape(n_ann, dim)
    return s, z, x


def ideal_point_margin(scores: np.ndarray, items: np.ndarray, points: np.ndarray, annotator: np.ndarray,
                       left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Log-odds ``s_l - s_r + |x_a - z_r|^2 - |x_a - z_l|^2`` per row.

    Examples
    --------
    >>> z = np.array([[0.0], [1.0]]); x = np.array([[0.2]])
    >>> round(float(ideal_point_margin(np.zeros(2), z, x, np.array([0]), np.array([0]), np.array([1]))[0]), 6)
    0.6
    """
    xa = points[annotator]
    return (scores[left] - scores[right] + ((xa - items[right]) ** 2).sum(axis=-1)
            - ((xa - items[left]) ** 2).sum(axis=-1))


def ideal_point_objective(theta: np.ndarray, cells: AnnotatorCells, dim: int, quality: bool = True,
                          l2: float = 1.0, prior: float = 10.0) -> tuple[float, np.ndarray, np.ndarray]:
    """Negative log-posterior of the ideal-point model, its gradient, and the diagonal Fisher information.

    ``theta`` stacks the item qualities ``s`` (when ``quality``), the item
    positions ``z`` (n x dim, row-major) and the annotator ideal points ``x``
    (n_annotators x dim). The penalty is ``l2 / 2 (|z|^2 + |x|^2) + |s|^2 / (2 prior)``.

    Examples
    --------
    >>> c = Comparisons.from_arrays(["a"], ["b"], [1.0], annotator=["u"])
    >>> f, g, d = ideal_point_objective(np.zeros(2 + 2 + 1), annotator_cells(c), dim=1)
    >>> round(f, 4), g[:2].tolist()
    (0.6931, [-0.5, 0.5])
    """
    n, n_ann = len(cells.items), cells.n_annotators
    s, z, x = _split_params(theta, n, n_ann, dim, quality)
    i, j, a = cells.first, cells.second, cells.annotator
    m = ideal_point_margin(s, z, x, a, i, j)
    wf, ws = cells.wins_first, cells.wins_second
    nll = -float(_cell_log_likelihood(m, wf, ws).sum())
    total = wf + ws
    p = expit(m)
    r = total * p - wf  # -dll/dm
    curv = total * p * (1.0 - p)
    diff = z[i] - z[j]
    gx = np.zeros((n_ann, dim))
    gz = np.zeros((n, dim))
    dx = np.zeros((n_ann, dim))
    dz = np.zeros((n, dim))
    toward_i, toward_j = x[a] - z[i], x[a] - z[j]
    for c in range(dim):
        gx[:, c] = np.bincount(a, r * 2 * diff[:, c], n_ann)
        gz[:, c] = np.bincount(i, r * 2 * toward_i[:, c], n) - np.bincount(j, r * 2 * toward_j[:, c], n)
        dx[:, c] = np.bincount(a, curv * 4 * diff[:, c] ** 2, n_ann)
        dz[:, c] = np.bincount(i, curv * 4 * toward_i[:, c] ** 2, n) + np.bincount(j, curv * 4 * toward_j[:, c] ** 2,
                                                                                    n)
    nll += 0.5 * l2 * (float((z ** 2).sum()) + float((x ** 2).sum()))
    gz += l2 * z
    gx += l2 * x
    parts_g: list[np.ndarray] = [gz.ravel(), gx.ravel()]
    parts_d: list[np.ndarray] = [(dz + l2).ravel(), (dx + l2).ravel()]
    if quality:
        nll += float((s ** 2).sum()) / (2.0 * prior)
        gs = np.bincount(i, r, n) - np.bincount(j, r, n) + s / prior
        ds = np.bincount(i, curv, n) + np.bincount(j, curv, n) + 1.0 / prior
        parts_g.insert(0, gs)
        parts_d.insert(0, ds)
    return nll, np.concatenate(parts_g), np.concatenate(parts_d)


def _canonical_rotation(z: np.ndarray) -> np.ndarray:
    """Orthogonal ``V`` turning the items' principal axes onto the coordinates, each oriented by its largest entry."""
    if z.shape[1] == 0:
        return np.eye(0)
    _, _, vt = np.linalg.svd(z - z.mean(axis=0), full_matrices=True)
    v = vt.T
    rotated = z @ v
    signs = np.sign(rotated[np.abs(rotated).argmax(axis=0), np.arange(z.shape[1])])
    signs[signs == 0] = 1.0
    return np.asarray(v * signs[None, :])


class IdealPointModel:
    """Ideal-point model: annotators and items in one ``dim``-dimensional space.

    ``P(a prefers i over j) = expit(s_i - s_j + |x_a - z_j|^2 - |x_a - z_i|^2)``:
    annotator ``a`` at ``x_a`` prefers items close to it, ``z_i`` is item
    ``i``'s position and ``s_i`` (with ``quality=True``) a scalar quality all
    annotators agree on (the quality-plus-ideal-point form of PAL;
    ``quality=False`` is the classic ideal-point model). Since
    ``|x - z_j|^2 - |x - z_i|^2 = |z_j|^2 - |z_i|^2 + 2 x . (z_i - z_j)``, the
    model is BT with an annotator-specific linear term; ``dim = 0`` with
    quality is BT.

    Identifiability: the likelihood is unchanged by any rotation or
    reflection of all points, by a common translation, and (with a quality)
    by an invertible linear map of the items with its inverse transpose on
    the annotators, compensated in ``s``. The Gaussian penalties
    (``l2 / 2`` times the squared norm of all positions, ``N(0, prior)`` on
    ``s``) pick one representative up to rotation (translation: the MAP puts
    the mean of all points at the origin); the rotation is then fixed by
    turning the items' principal axes onto the coordinate axes, largest
    spread first, each axis oriented so its most extreme item is positive.

    Fitted by L-BFGS (scipy, imported when fitting) on the aggregated
    (annotator, pair) counts, diagonally preconditioned by the Fisher
    information and restarted until the largest one-parameter Newton step
    ``|g_p| / D_p`` is below ``tol``; the likelihood is not convex, so
    ``n_init`` random starts are run and the best log-posterior is kept.

    Parameters
    ----------
    dim : int
    quality : bool
    l2 : float
        Penalty on positions (a ``N(0, 1 / l2)`` prior on every coordinate).
    prior : float
        Variance of the Gaussian prior on the qualities.
    n_init : int
    tol : float
    max_iter : int
        L-BFGS iterations in all (per start).
    random_state : int, optional

    Attributes
    ----------
    items_, annotators_ : numpy.ndarray
    scores_ : numpy.ndarray
        Item qualities ``s`` (zeros without ``quality``).
    item_positions_ : pandas.DataFrame
        ``z``, one row per item, columns ``d1, d2, ...``.
    ideal_points_ : pandas.DataFrame
        ``x``, one row per annotator.
    log_likelihood_, log_posterior_ : float
    converged_ : bool
    n_iter_ : int
    step_ : float

    Examples
    --------
    >>> import bradley
    >>> left, right = ["a", "a", "b"] * 8, ["b", "c", "c"] * 8
    >>> who = [f"u{k}" for k in range(4) for _ in range(6)]
    >>> outcome = [1, 1, 1] * 4 + [0, 0, 0] * 4                 # u0, u1 like a; u2, u3 like c
    >>> data = bradley.Comparisons.from_arrays(left, right, outcome, annotator=who)
    >>> model = IdealPointModel(dim=1, quality=False).fit(data)
    >>> model.converged_, model.predict_proba("a", "c", annotator=["u0", "u3"]).round(2).tolist()
    (True, [0.99, 0.01])
    >>> x = model.place(bradley.Comparisons.from_arrays(["c", "c"], ["a", "b"], [1, 1]))
    >>> bool(model.predict_proba("c", "a", ideal_point=x)[0] > 0.5)
    True
    """

    def __init__(self, dim: int = 2, quality: bool = True, l2: float = 1.0, prior: float = 10.0, n_init: int = 3,
                 tol: float = 1e-6, max_iter: int = 20_000, random_state: int | None = 0):
        self.dim = dim
        self.quality = quality
        self.l2 = l2
        self.prior = prior
        self.n_init = n_init
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state

    def __repr__(self) -> str:
        return (f"IdealPointModel(dim={self.dim!r}, quality={self.quality!r}, l2={self.l2!r}, prior={self.prior!r}, "
                f"n_init={self.n_init!r}, tol={self.tol!r}, max_iter={self.max_iter!r}, "
                f"random_state={self.random_state!r})")

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments (scikit-learn style)."""
        return {name: getattr(self, name) for name in
                ("dim", "quality", "l2", "prior", "n_init", "tol", "max_iter", "random_state")}

    def _check_params(self) -> None:
        if not isinstance(self.dim, (int, np.integer)) or isinstance(self.dim, bool) or self.dim < 0:
            raise ValueError(f"dim must be a non-negative integer, got {self.dim!r}.")
        if self.dim == 0 and not self.quality:
            raise ValueError("IdealPointModel(dim=0, quality=False) has no parameters.")
        if not (np.isfinite(self.l2) and self.l2 > 0):
            raise ValueError(f"l2 must be a positive finite number (it fixes the gauge), got {self.l2!r}.")
        if self.prior is None:
            raise ValueError("IdealPointModel needs a prior variance on the qualities, e.g. prior=100.")
        check_prior(self.prior)
        if not (self.tol > 0) or self.max_iter < 1 or self.n_init < 1:
            raise ValueError("tol must be positive and max_iter, n_init at least 1.")

    def fit(self, data: Any, annotators: Any = None) -> IdealPointModel:
        """Fit qualities, item positions and annotator ideal points (see :meth:`BTMixture.fit` for the inputs)."""
        from scipy import optimize

        self._check_params()
        comparisons = as_comparisons(data)
        cells = annotator_cells(comparisons, annotators)
        n, n_ann, dim = len(cells.items), cells.n_annotators, int(self.dim)
        size = (n if self.quality else 0) + (n + n_ann) * dim
        rng = np.random.default_rng(self.random_state)
        best: tuple[float, np.ndarray, bool, int, float] | None = None
        with single_blas_thread():  # L-BFGS's small dense updates: BLAS threads only contend
            for _ in range(self.n_init if dim else 1):
                theta = np.zeros(size)
                theta[(n if self.quality else 0):] = rng.normal(0.0, 0.3, size - (n if self.quality else 0))
                result = self._minimise(optimize, theta, cells, dim)
                if best is None or result[0] < best[0]:
                    best = result
        assert best is not None
        nll, theta, converged, n_iter, step = best
        s, z, x = _split_params(theta, n, n_ann, dim, bool(self.quality))
        rotation = _canonical_rotation(z)
        z, x = z @ rotation, x @ rotation
        self.cells_ = cells
        self.items_, self.annotators_ = cells.items, cells.annotators
        self._index = ItemIndex(self.items_)
        self._annotator_index = pd.Index(self.annotators_)
        self.scores_ = s.copy()
        self._z, self._x = z, x
        penalty = 0.5 * float(self.l2) * (float((z ** 2).sum()) + float((x ** 2).sum()))
        penalty += float((s ** 2).sum()) / (2.0 * float(self.prior)) if self.quality else 0.0
        self.log_posterior_ = -nll
        self.log_likelihood_ = -nll + penalty
        self.converged_, self.n_iter_, self.step_ = converged, n_iter, step
        self.n_comparisons_ = comparisons.n_comparisons
        if not converged:
            warnings.warn(
                f"IdealPointModel(dim={dim}) stopped after {n_iter} L-BFGS iterations with a largest Newton step "
                f"{step:.3g} > tol={self.tol:g}; raise max_iter or l2.", ConvergenceWarning, stacklevel=2)
        return self

    def _minimise(self, optimize: Any, theta: np.ndarray, cells: AnnotatorCells,
                  dim: int) -> tuple[float, np.ndarray, bool, int, float]:
        args = (cells, dim, bool(self.quality), float(self.l2), float(self.prior))
        used, step = 0, np.inf
        for _ in range(30):
            _, grad, diag = ideal_point_objective(theta, *args)
            step = float(np.max(np.abs(grad) / diag)) if len(grad) else 0.0
            if step <= self.tol or used >= self.max_iter:
                break
            scale = np.sqrt(diag)

            def fun(u: np.ndarray, scale: np.ndarray = scale) -> tuple[float, np.ndarray]:
                f, g, _ = ideal_point_objective(u / scale, *args)
                return f, g / scale

            res = optimize.minimize(fun, theta * scale, jac=True, method="L-BFGS-B",
                                    options={"maxiter": self.max_iter - used, "gtol": 1e-12, "ftol": 1e-15,
                                             "maxcor": 20})
            used += int(res.nit)
            theta = res.x / scale
            if res.nit == 0:
                break
        nll, grad, diag = ideal_point_objective(theta, *args)
        step = float(np.max(np.abs(grad) / diag)) if len(grad) else 0.0
        return nll, theta, step <= self.tol, used, step

    @property
    def item_positions_(self) -> pd.DataFrame:
        require_fitted(self)
        return pd.DataFrame(self._z, index=pd.Index(self.items_, name="item"),
                            columns=[f"d{c + 1}" for c in range(self._z.shape[1])])

    @property
    def ideal_points_(self) -> pd.DataFrame:
        require_fitted(self)
        return pd.DataFrame(self._x, index=pd.Index(self.annotators_, name="annotator"),
                            columns=[f"d{c + 1}" for c in range(self._x.shape[1])])

    def predict_proba(self, left: Any, right: Any, annotator: Any = None, ideal_point: Any = None) -> np.ndarray:
        """Probability that ``left`` is preferred to ``right``.

        By a fitted ``annotator`` (one label or one per row), or by someone at
        ``ideal_point`` (e.g. from :meth:`place`); with neither, the average
        over the fitted annotators (the population's preference).
        """
        require_fitted(self)
        lc, rc = np.broadcast_arrays(self._index.codes(left), self._index.codes(right))
        if ideal_point is not None:
            points = np.asarray(ideal_point, dtype=np.float64).reshape(1, -1)
            who = np.zeros(len(lc), dtype=np.int64)
        elif annotator is not None:
            labels = np.atleast_1d(np.asarray(annotator, dtype=object))
            pos = self._annotator_index.get_indexer(labels)
            if (pos < 0).any():
                raise ComparisonDataError(f"unknown annotator(s) {labels[pos < 0][:5].tolist()}: place() them first.")
            points = self._x
            lc, rc, who = np.broadcast_arrays(lc, rc, pos)
        else:
            m = ideal_point_margin(self.scores_, self._z, self._x, np.arange(len(self._x))[:, None],
                                   lc[None, :], rc[None, :])
            return np.asarray(expit(m).mean(axis=0))
        return np.asarray(expit(ideal_point_margin(self.scores_, self._z, points, who, lc, rc)))

    def place(self, data: Any, tol: float = 1e-10, max_iter: int = 100) -> np.ndarray:
        """MAP ideal point of a new annotator from their comparisons, items held fixed.

        The margin is linear in ``x`` (``c + 2 x . (z_l - z_r)``), so with the
        ``N(0, 1 / l2)`` prior this is an L2-penalised logistic regression,
        solved by Newton's method with step halving.

        Returns
        -------
        numpy.ndarray, shape (dim,)
        """
        require_fitted(self)
        comparisons = as_comparisons(data)
        lc = self._index.codes(comparisons.items[comparisons.left])
        rc = self._index.codes(comparisons.items[comparisons.right])
        w = np.ones(len(lc)) if comparisons.weight is None else comparisons.weight
        wl, wr = w * comparisons.outcome, w * (1.0 - comparisons.outcome)
        z, s, l2 = self._z, self.scores_, float(self.l2)
        base = s[lc] - s[rc] + (z[rc] ** 2).sum(axis=1) - (z[lc] ** 2).sum(axis=1)
        design = 2.0 * (z[lc] - z[rc])

        def objective(x: np.ndarray) -> float:
            return -float(_cell_log_likelihood(base + design @ x, wl, wr).sum()) + 0.5 * l2 * float(x @ x)

        x = np.zeros(z.shape[1])
        f = objective(x)
        for _ in range(max_iter):
            p = expit(base + design @ x)
            grad = design.T @ ((wl + wr) * p - wl) + l2 * x
            hess = design.T @ (design * ((wl + wr) * p * (1 - p))[:, None]) + l2 * np.eye(len(x))
            step = np.linalg.solve(hess, grad)
            t = 1.0
            while t > 1e-10:
                candidate = x - t * step
                f_new = objective(candidate)
                if f_new <= f:
                    break
                t *= 0.5
            x, f = candidate, f_new
            if float(np.max(np.abs(t * step), initial=0.0)) <= tol:
                break
        return np.asarray(x)

    def summary(self) -> pd.DataFrame:
        """Tidy per-item table: item, score (quality), coordinates, mean_pref, rank.

        ``mean_pref`` is the population's mean probability of preferring the
        item to each other item (averaged over the fitted annotators).
        """
        require_fitted(self)
        n = len(self.items_)
        lc, rc = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        prefs = self.predict_proba(lc.ravel(), rc.ravel()).reshape(n, n)
        table = pd.DataFrame({"item": self.items_, "score": self.scores_})
        for c in range(self._z.shape[1]):
            table[f"d{c + 1}"] = self._z[:, c]
        table["mean_pref"] = (prefs.sum(axis=1) - 0.5) / max(n - 1, 1)
        table["rank"] = pd.Series(-table["mean_pref"]).rank(method="min").astype(np.int64).to_numpy()
        table = table.sort_values("rank", kind="stable").reset_index(drop=True)
        table.attrs["identifiability"] = ("positions under the l2 penalty (mean of all points at the origin), "
                                          "rotated onto the items' principal axes")
        return table
