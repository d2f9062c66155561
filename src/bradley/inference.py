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
from scipy.special import expit

from bradley.data import Comparisons, mle_existence_problem
from bradley.errors import ComparisonDataError, DataWarning, MLEDoesNotExistError
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
    "MIN_CLUSTERS",
    "check_cluster_count",
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


#: Fewer clusters than this make clustered sandwich and cluster-bootstrap intervals
#: too narrow (the usual rule of thumb: Cameron & Miller 2015, section VI); they warn.
MIN_CLUSTERS = 20

#: Rows processed at a time by :func:`sandwich_covariance` (bounds its working memory).
SANDWICH_CHUNK_ROWS = 1 << 20


def sandwich_covariance(
    model: Any, data: Comparisons, cluster: np.ndarray | None = None, reference: Any = None,
    model_based: np.ndarray | None = None,
) -> np.ndarray:
    """Robust sandwich covariance ``H^+ M H^+`` with ``M`` the (clustered) outer product of scores.

    Each row contributes ``w (o - p) (e_left - e_right)`` to the score
    (ties as half wins, soft labels as their probability); rows of one
    cluster are summed before the outer product. Use it when comparisons are
    not independent, e.g. many votes from the same annotator, or when the
    outcomes vary less than the model says (ties counted as half wins). For a
    BradleyTerry-family model; ``reference`` as in :func:`fisher_covariance`
    (an item name or code).

    Without clusters the meat is ``sum over pairs c_ij (e_i - e_j)(e_i - e_j)^T``
    with ``c_ij`` the sum of ``w^2 (o - p)^2`` over the pair's rows: it is
    accumulated per pair in chunks of rows, so memory is O(pairs + items^2)
    whatever the number of rows. With clusters the cluster-by-item score sums
    are a sparse matrix (at most two entries per row), never a dense
    clusters x items array.

    ``model_based`` (a boolean mask over items) makes the rows that involve
    those items contribute the model's variance ``w^2 p (1 - p)`` (as
    independent rows) instead of their squared residuals: for items with a
    handful of battles the residuals cannot estimate a variance (two ties
    give almost none), and through the mean-zero constraint that
    underestimate would narrow every other item's interval too.
    :func:`bradley.leaderboard` passes its provisional items.

    Clustered errors need many clusters: the meat is a sum of one outer
    product per cluster and has rank at most ``clusters - 1`` at the MLE
    (the cluster scores sum to the zero gradient). One cluster gives a zero
    meat and is refused (:class:`~bradley.errors.ComparisonDataError`); fewer
    than ``MIN_CLUSTERS`` (20) warn that the intervals are too narrow.

    Examples
    --------
    >>> import bradley
    >>> data, _ = bradley.simulate_bt(4, 2000, seed=0)
    >>> model = bradley.BradleyTerry().fit(data)
    >>> robust = standard_errors(sandwich_covariance(model, data))
    >>> bool(np.allclose(robust, model.standard_errors().to_numpy(), rtol=0.1))
    True
    """
    reference_code = _reference_code(model, reference)  # an unknown item fails before any work
    n = len(model.items_)
    if len(data.items) != n or np.any(np.asarray(data.items, dtype=object) != model.items_):
        raise ValueError("data must be the Comparisons the model was fitted on (same items, same order).")
    scores = np.asarray(model.scores_, dtype=np.float64)
    if model_based is not None:
        model_based = np.asarray(model_based, dtype=bool)
        if model_based.shape != (n,):
            raise ValueError(f"model_based must be a boolean mask over the {n} items, got shape {model_based.shape}.")
        if not model_based.any():
            model_based = None
    if cluster is None:
        meat = _independent_meat(scores, data, model_based)
    else:
        meat = _clustered_meat(scores, data, cluster, prior=getattr(model, "prior", None) is not None,
                               model_based=model_based)
    bread = fisher_covariance(model)
    if getattr(model, "prior", None) is not None:
        warnings.warn("sandwich errors with a prior describe the MAP estimator; the prior term is in the bread only.",
                      DataWarning, stacklevel=2)
    return constrain_covariance(bread @ meat @ bread, reference_code)


def _row_residuals(scores: np.ndarray, data: Comparisons, rows: slice,
                   model_based: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(first, second, r, v)`` for a slice of rows: the pair (``first < second``), the
    weighted score residual ``w (o - p)`` of ``first`` (``second`` gets ``-r``), and the
    row's meat term: ``r^2``, or ``w^2 p (1 - p)`` where the pair touches a ``model_based`` item."""
    left, right = data.left[rows], data.right[rows]
    outcome = data.outcome[rows]
    w = 1.0 if data.weight is None else data.weight[rows]
    first, second = np.minimum(left, right), np.maximum(left, right)
    o_first = np.where(left == first, outcome, 1.0 - outcome)
    p_first = expit(scores[first] - scores[second])
    resid = w * (o_first - p_first)
    resid[left == right] = 0.0  # a self-comparison carries no information
    term = resid * resid
    if model_based is not None:
        touched = (model_based[first] | model_based[second]) & (left != right)
        term = np.where(touched, (w * w) * p_first * (1.0 - p_first), term)
        resid = np.where(touched, 0.0, resid)  # leaves the cluster sums: counted as independent rows
    return first, second, resid, term


def _independent_meat(scores: np.ndarray, data: Comparisons, model_based: np.ndarray | None = None,
                      only_model_based: bool = False) -> np.ndarray:
    """``sum_rows w^2 (o - p)^2 (e_l - e_r)(e_l - e_r)^T`` from per-pair sums (O(pairs) memory);
    ``w^2 p (1 - p)`` instead for rows touching ``model_based`` items (only those with ``only_model_based``)."""
    n = len(scores)
    codes_parts, sums_parts = [], []
    for start in range(0, data.n_comparisons, SANDWICH_CHUNK_ROWS):
        first, second, resid, term = _row_residuals(scores, data, slice(start, start + SANDWICH_CHUNK_ROWS),
                                                    model_based)
        if only_model_based:
            term = np.where(resid == 0.0, term, 0.0) if model_based is not None else np.zeros_like(term)
        codes, inverse = np.unique(first * np.int64(n) + second, return_inverse=True)
        codes_parts.append(codes)
        sums_parts.append(np.bincount(inverse.ravel(), term, len(codes)))
    meat = np.zeros((n, n))
    if not codes_parts:
        return meat
    codes, inverse = np.unique(np.concatenate(codes_parts), return_inverse=True)
    c = np.bincount(inverse.ravel(), np.concatenate(sums_parts), len(codes))
    first, second = codes // n, codes % n
    meat[first, second] = -c
    meat[second, first] = -c
    meat[np.diag_indices(n)] = np.bincount(first, c, n) + np.bincount(second, c, n)
    return meat


def _clustered_meat(scores: np.ndarray, data: Comparisons, cluster: Any, prior: bool = False,
                    model_based: np.ndarray | None = None) -> np.ndarray:
    """``G^T G`` with ``G`` the sparse clusters x items matrix of summed score contributions."""
    from scipy import sparse

    n = len(scores)
    cluster = np.asarray(cluster)
    if len(cluster) != data.n_comparisons:
        raise ValueError(f"cluster must have one label per row ({data.n_comparisons}), got {len(cluster)}.")
    codes, uniques = pd.factorize(cluster)
    if (codes < 0).any():
        raise ValueError("cluster labels must not be missing.")
    check_cluster_count(len(uniques), n, "clustered sandwich", prior=prior)
    first, second, resid, _ = _row_residuals(scores, data, slice(None), model_based)
    rows = np.concatenate([codes, codes])
    cols = np.concatenate([first, second])
    g = sparse.csr_matrix((np.concatenate([resid, -resid]), (rows, cols)), shape=(len(uniques), n))
    meat = np.asarray((g.T @ g).toarray())
    if model_based is not None:
        meat += _independent_meat(scores, data, model_based, only_model_based=True)
    return meat


def check_cluster_count(n_clusters: int, n_items: int, what: str, prior: bool = False) -> None:
    """Refuse one cluster, warn below ``MIN_CLUSTERS`` or below the number of items, saying why.

    Examples
    --------
    >>> check_cluster_count(50, 10, "clustered sandwich")  # enough: silent
    """
    if n_clusters <= 1:
        raise ComparisonDataError(
            f"{what} intervals need several clusters, but every row is in the same cluster: the cluster sums "
            "of the score contributions are one vector (the zero gradient at the estimate), so the intervals "
            "would have zero width. Drop the cluster (independent rows), or cluster by a column with many values.")
    rank = n_clusters if prior else n_clusters - 1
    problems = []
    if n_clusters < MIN_CLUSTERS:
        problems.append(f"with only {n_clusters} clusters (fewer than {MIN_CLUSTERS}) the cluster-level variance is "
                        "estimated from too few independent units and the intervals are too narrow")
    if rank < n_items - 1:
        problems.append(f"the cluster sums of the score contributions span at most {rank} directions "
                        f"(clusters{'' if prior else ' - 1'}), fewer than the {n_items - 1} free score directions, "
                        "so some score contrasts get (nearly) zero variance")
    if problems:
        warnings.warn(f"{what}: " + "; ".join(problems) + ". Use more clusters, or independent rows "
                      "(no cluster) if the clusters are not really dependent.", UserWarning, stacklevel=4)


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

    def ranks(self, among: np.ndarray | None = None) -> np.ndarray:
        """Rank of every item in every replicate (1 = best; ties share the better rank).

        ``among`` (a boolean mask over items) counts only those items as
        competitors, e.g. to leave provisional items out of the others' ranks;
        every item still gets a rank (1 + competitors with a higher score).
        """
        s = self.scores
        better = s[:, None, :] > s[:, :, None]  # [b, i, j]: j beats i in replicate b
        if among is not None:
            better &= np.asarray(among, dtype=bool)[None, None, :]
        return better.sum(axis=2) + 1

    def interval(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Percentile interval of the scores."""
        alpha = (1.0 - level) / 2.0
        return np.quantile(self.scores, alpha, axis=0), np.quantile(self.scores, 1.0 - alpha, axis=0)

    def rank_interval(self, level: float = 0.95, among: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Percentile interval of the ranks (integers); ``among`` as in :meth:`ranks`."""
        alpha = (1.0 - level) / 2.0
        ranks = self.ranks(among)
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
    number is reported in ``n_fallback`` and by a warning. With ``cluster``,
    one cluster is refused and fewer than ``MIN_CLUSTERS`` (20) warn, as for
    the clustered sandwich (:func:`check_cluster_count`): resampling a handful
    of clusters gives too few distinct replicates and too narrow intervals.

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
        if len(cluster_codes) != data.n_comparisons:
            raise ValueError(f"cluster must have one label per row ({data.n_comparisons}), got {len(cluster_codes)}.")
        if (cluster_codes < 0).any():
            raise ValueError("cluster labels must not be missing.")
        n_clusters = len(uniques)
        check_cluster_count(n_clusters, len(model.items_), "cluster bootstrap",
                            prior=getattr(model, "prior", None) is not None)
    out = np.empty((rounds, len(model.items_)))
    n_fallback = 0
    start = model.scores_ - model.scores_.mean()
    for b in _rounds(rounds, progress):
        if cluster is None:
            draw = rng.multinomial(total, probs).astype(np.float64)
        else:
            picked = np.bincount(rng.integers(0, n_clusters, n_clusters), minlength=n_clusters)
            draw = picked[cluster_codes].astype(np.float64)
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

