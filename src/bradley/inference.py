"""Uncertainty for fitted Bradley-Terry scores.

* :func:`fisher_covariance`: inverse observed Fisher information under the
  mean-zero constraint (the Moore-Penrose inverse of the information, whose
  null space is the shift direction) or relative to a reference item; for any
  fitted model with ``covariance_`` (every model's uncertainty API:
  ``model.standard_errors(reference)``, ``model.score_covariance(reference)``,
  ``model.quasi_variances()``).
* :func:`sandwich_covariance`: robust (Huber-White) covariance, optionally
  clustered (e.g. by annotator), from row-level score contributions.
* :func:`quasi_variances`: Firth & de Menezes (2004) quasi-variances, so that
  ``var(s_i - s_j) ~ q_i + q_j`` for every pair, from the table alone.
* :func:`bootstrap_scores`: nonparametric bootstrap by multinomial resampling
  of the unique (left, right, outcome, weight) rows (exactly row resampling),
  or of clusters; each replicate is refitted by Newton from the full-data
  scores.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bradley.data import Comparisons, mle_existence_problem
from bradley.errors import DataWarning, MLEDoesNotExistError
from bradley.models.base import ItemIndex, constrain_covariance
from bradley.solvers import bt as bt_solvers
from bradley.solvers.quasi_variance import quasi_variances

__all__ = [
    "fisher_covariance",
    "sandwich_covariance",
    "standard_errors",
    "quasi_variances",
    "BootstrapResult",
    "bootstrap_scores",
    "FALLBACK_PRIOR",
]

#: Prior variance used for bootstrap replicates whose MLE does not exist when
#: the model itself has no prior (they are counted and reported).
FALLBACK_PRIOR = 10.0


def _reference_code(model: Any, reference: Any) -> int | None:
    """Position of the reference item (a name, or an integer code when not a name)."""
    if reference is None:
        return None
    index = getattr(model, "_index", None)
    if index is None:
        index = ItemIndex(model.items_)
    return int(index.codes([reference])[0])


def fisher_covariance(model: Any, reference: Any = None) -> np.ndarray:
    """Covariance of ``model.scores_`` from the observed Fisher information.

    Parameters
    ----------
    model : fitted model
        Any fitted model with ``covariance_`` (BradleyTerry, its robust and
        bias-reduced fits, and the other models that share the uncertainty
        API); the result is ``model.score_covariance(reference)``.
    reference : item name (or integer code), optional
        Report the covariance of ``s_i - s_reference`` (the reference's
        variance is then 0), as R's BradleyTerry2 does with ``refcat``;
        default: the mean-zero constraint. An unknown name raises
        :class:`~bradley.errors.ComparisonDataError`.

    Examples
    --------
    >>> import bradley
    >>> m = bradley.BradleyTerry().fit(bradley.PairCounts.from_matrix([[0, 6], [4, 0]], items=["x", "y"]))
    >>> cov = fisher_covariance(m)
    >>> bool(np.isclose(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1], 1 / (10 * 0.6 * 0.4)))
    True
    >>> bool(np.isclose(fisher_covariance(m, reference="x")[1, 1], 1 / (10 * 0.6 * 0.4)))
    True
    """
    if hasattr(model, "score_covariance"):
        return model.score_covariance(reference)
    cov = np.asarray(model.covariance_, dtype=np.float64)
    return constrain_covariance(cov, _reference_code(model, reference))


def sandwich_covariance(
    model: Any, data: Comparisons, cluster: np.ndarray | None = None, reference: Any = None
) -> np.ndarray:
    """Robust sandwich covariance ``H^+ M H^+`` with ``M`` the (clustered) outer product of scores.

    Each row contributes ``w (o - p) (e_left - e_right)`` to the score
    (ties as half wins, soft labels as their probability); rows of one
    cluster are summed before the outer product. Use it when comparisons are
    not independent, e.g. many votes from the same annotator. For a
    BradleyTerry-family model; ``reference`` as in :func:`fisher_covariance`
    (an item name or code).
    """
    reference_code = _reference_code(model, reference)  # an unknown item fails before any work
    n = len(model.items_)
    if len(data.items) != n or np.any(np.asarray(data.items, dtype=object) != model.items_):
        raise ValueError("data must be the Comparisons the model was fitted on (same items, same order).")
    scores = model.scores_
    w = np.ones(data.n_comparisons) if data.weight is None else data.weight
    p = 1.0 / (1.0 + np.exp(-np.clip(scores[data.left] - scores[data.right], -700, 700)))
    resid = w * (data.outcome - p)
    if cluster is None:
        codes, n_clusters = np.arange(data.n_comparisons), data.n_comparisons
    else:
        codes, uniques = pd.factorize(np.asarray(cluster))
        if (codes < 0).any():
            raise ValueError("cluster labels must not be missing.")
        n_clusters = len(uniques)
    # cluster-by-item score sums, as a sparse accumulation (no per-row Python)
    flat = np.bincount(codes * n + data.left, resid, n_clusters * n) - np.bincount(codes * n + data.right, resid, n_clusters * n)
    scores_by_cluster = flat.reshape(n_clusters, n)
    meat = scores_by_cluster.T @ scores_by_cluster
    bread = fisher_covariance(model)
    if model.prior is not None:
        warnings.warn("sandwich errors with a prior describe the MAP estimator; the prior term is in the bread only.",
                      DataWarning, stacklevel=2)
    return constrain_covariance(bread @ meat @ bread, reference_code)


def standard_errors(cov: np.ndarray) -> np.ndarray:
    """Square roots of the diagonal (clipped at zero)."""
    return np.sqrt(np.clip(np.diag(cov), 0.0, None))


@dataclass
class BootstrapResult:
    """Bootstrap replicates of the scores.

    Attributes
    ----------
    scores : numpy.ndarray, shape (rounds, n_items)
        Mean-zero scores of each replicate.
    n_fallback : int
        Replicates whose MLE did not exist and were fitted with the fallback
        prior (0 when the model has its own prior).
    rounds, seed : int
    unit : str
        What was resampled: ``"rows"`` or ``"clusters"``.
    """

    scores: np.ndarray
    n_fallback: int
    rounds: int
    seed: int | None
    unit: str

    def ranks(self) -> np.ndarray:
        """Rank of every item in every replicate (1 = best; ties share the better rank)."""
        s = self.scores
        return (s[:, None, :] > s[:, :, None]).sum(axis=2) + 1

    def interval(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Percentile interval of the scores."""
        alpha = (1.0 - level) / 2.0
        return np.quantile(self.scores, alpha, axis=0), np.quantile(self.scores, 1.0 - alpha, axis=0)

    def rank_interval(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Percentile interval of the ranks (integers)."""
        alpha = (1.0 - level) / 2.0
        ranks = self.ranks()
        low = np.floor(np.quantile(ranks, alpha, axis=0, method="lower")).astype(np.int64)
        high = np.ceil(np.quantile(ranks, 1.0 - alpha, axis=0, method="higher")).astype(np.int64)
        return low, high


def _rounds(rounds: int, progress: bool) -> Any:
    """The replicate loop, with a progress bar on request."""
    if not progress:
        return range(rounds)
    from tqdm.auto import tqdm

    return tqdm(range(rounds), desc="bootstrap", unit="round")


def _reweighted(data: Comparisons, counts: np.ndarray) -> Comparisons:
    """The rows of ``data`` drawn ``counts`` times, as weights (rows drawn 0 times dropped)."""
    keep = counts > 0
    base = np.ones(data.n_comparisons) if data.weight is None else data.weight

    def take(values: np.ndarray | None) -> np.ndarray | None:
        return None if values is None else values[keep]

    return Comparisons(
        data.left[keep], data.right[keep], data.outcome[keep], data.items, (base * counts)[keep],
        take(data.time), take(data.annotator), take(data.tie_kind), take(data.features), data.feature_names,
        take(data.order),
    )


def _warn_fallbacks(n_fallback: int, rounds: int, bias_reduced: bool = False) -> None:
    if n_fallback:
        why = ("items not linked by any comparison in them (e.g. an item with few battles drawn 0 times), "
               "which bias reduction cannot identify") if bias_reduced else (
               "no finite MLE (an item never won or never lost in them)")
        warnings.warn(
            f"{n_fallback} of {rounds} bootstrap replicates had {why} and were fitted with a "
            f"N(0, {FALLBACK_PRIOR:g}) prior.",
            DataWarning,
            stacklevel=3,
        )


def _unique_rows(data: Comparisons) -> tuple[Comparisons, np.ndarray]:
    """The distinct (left, right, outcome, weight) rows, each weighted by weight x its count."""
    frame = pd.DataFrame({"left": data.left, "right": data.right, "outcome": data.outcome,
                          "weight": np.ones(data.n_comparisons) if data.weight is None else data.weight})
    grouped = frame.groupby(["left", "right", "outcome", "weight"], sort=False).size().reset_index(name="count")
    return Comparisons(
        grouped["left"].to_numpy(np.int64), grouped["right"].to_numpy(np.int64),
        grouped["outcome"].to_numpy(np.float64), data.items, grouped["weight"].to_numpy(np.float64),
    ), grouped["count"].to_numpy(np.float64)


def bootstrap_scores(
    model: Any,
    data: Comparisons,
    rounds: int = 1000,
    seed: int | None = 0,
    cluster: np.ndarray | None = None,
    progress: bool = False,
) -> BootstrapResult:
    """Bootstrap the scores of ``model`` (fitted on ``data``).

    Row resampling draws the multinomial counts of the unique (left, right,
    outcome, weight) rows at once, which is exact for row resampling and fast;
    with ``cluster`` (one label per row) whole clusters are resampled instead.
    For :class:`~bradley.BradleyTerry` each replicate is refitted by Newton,
    warm-started at the full-data scores, with the model's prior (or by the
    bias-reduced kernel when the model has ``bias_reduction=True``); any other
    estimator (e.g. ``Davidson(order_effect=True)``) is copied and refitted on
    the resampled rows, which keep their annotators and features. A replicate
    whose MLE does not exist (an item that never won or never lost in it) is
    fitted with the prior ``FALLBACK_PRIOR`` instead of being dropped; their
    number is reported in ``n_fallback`` and by a warning.

    Examples
    --------
    >>> import bradley
    >>> data, _ = bradley.simulate_bt(5, 2000, seed=1)
    >>> model = bradley.BradleyTerry().fit(data)
    >>> boot = bootstrap_scores(model, data, rounds=50, seed=3)
    >>> boot.scores.shape
    (50, 5)
    """
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}.")
    from bradley.models import BradleyTerry

    # the pair-count fast path only for plain BT fits; subclasses that change fit()
    # (RobustBradleyTerry re-trims) are refitted like any other estimator
    is_bt = isinstance(model, BradleyTerry) and type(model).fit is BradleyTerry.fit
    firth_fit = is_bt and bool(getattr(model, "bias_reduction", False))
    if firth_fit:
        from bradley.solvers.firth import comparison_groups, firth
    rng = np.random.default_rng(seed)
    if cluster is None:
        # BT fits only need the distinct rows; other models keep every row's annotator and features
        source, counts = _unique_rows(data) if is_bt else (data, np.ones(data.n_comparisons))
        total, probs = int(counts.sum()), counts / counts.sum()
    else:
        source = data
        cluster_codes, uniques = pd.factorize(np.asarray(cluster))
        n_clusters = len(uniques)
    out = np.empty((rounds, len(model.items_)))
    n_fallback = 0
    start = model.scores_ - model.scores_.mean()
    for b in _rounds(rounds, progress):
        if cluster is None:
            draw = rng.multinomial(total, probs).astype(np.float64)
        else:
            draw = np.bincount(rng.integers(0, n_clusters, n_clusters), minlength=n_clusters)[cluster_codes].astype(np.float64)
        replicate = _reweighted(source, draw)
        if is_bt:
            pairs = replicate.pair_counts()
            if firth_fit:
                # bias reduction keeps every connected replicate finite: no fallback needed
                if comparison_groups(pairs)[0] <= 1:
                    out[b] = firth(pairs, init=start).scores
                    continue
                prior = FALLBACK_PRIOR
                n_fallback += 1
            else:
                prior = model.prior
                if prior is None and mle_existence_problem(pairs) is not None:
                    prior = FALLBACK_PRIOR
                    n_fallback += 1
            out[b] = bt_solvers.newton(pairs, init=start, prior_variance=prior).scores
            continue
        refit = copy.copy(model)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                refit.fit(replicate)
        except MLEDoesNotExistError as first_error:
            refit = copy.copy(model)
            refit.prior = FALLBACK_PRIOR
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    refit.fit(replicate)
            except MLEDoesNotExistError as error:
                # the divergence is in a parameter the score prior does not reach (an order
                # effect, a covariate or feature weight): say so rather than drop replicates
                raise MLEDoesNotExistError(
                    f"bootstrap replicate {b + 1} of {rounds} has no finite estimate even with a "
                    f"N(0, {FALLBACK_PRIOR:g}) prior on the scores ({error}); use ci='fisher', or a model "
                    "whose other parameters are penalised or fixed.") from first_error
            n_fallback += 1
        out[b] = refit.scores_ - refit.scores_.mean()
    _warn_fallbacks(n_fallback, rounds, firth_fit)
    return BootstrapResult(out, n_fallback, rounds, seed, "rows" if cluster is None else "clusters")

