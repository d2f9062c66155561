"""Active comparison selection: which pair to compare next (METHODS B5).

Seven strategies choose the next pairs to show a judge:

``"uniform"``
    A uniformly random pair among the allowed ones (the baseline).
``"arena"``
    The Chatbot Arena's sampling rule as FastChat's ``get_battle_pair`` runs
    it with its default weights: draw an anchor item with probability
    proportional to its sampling weight, then a rival among the other items by
    the same weights. Every weight is 1, times ``boost`` (5 in FastChat, for
    its ``SAMPLING_BOOST_MODELS``) for *new* items, here those with fewer than
    half the median number of comparisons. No model is used.
``"arena-balanced"``
    As ``"arena"``, but the rival's weight is divided by ``1 + n_ab``
    (comparisons of the pair so far), so rarely compared pairs are favoured (a
    stand-in for FastChat's hand-picked "battle targets"; not FastChat's rule).
``"uncertainty"``
    D-optimal: the pair that most reduces the entropy of all scores under the
    Laplace (Gaussian) posterior ``N(mu, S)`` of a Bradley-Terry fit with a
    ``N(0, prior)`` prior, ``log1p(p (1 - p) Var(s_i - s_j))``.
``"information"``
    The pair with the largest weighted mutual information between the Gaussian
    surrogate observation and the score differences of the target pairs
    (derived below).
``"misorder"``
    The pair with the largest expected reduction of the summed posterior
    probability that a target pair is ranked the wrong way round (below).
``"thompson"``
    Thompson-style: draw scores from ``N(mu, S)``, rank the items by the draw,
    and take the pair adjacent in that ranking with the largest
    ``p (1 - p) Var(s_i - s_j)`` (a fresh draw per pick).

Derivation of ``"information"``. With the Laplace posterior
``theta ~ N(mu, S)`` one more comparison of ``(i, j)`` with ``p = expit(mu_i -
mu_j)`` adds Fisher information ``w d d'`` with ``w = p (1 - p)`` and ``d =
e_i - e_j``: as far as the Gaussian approximation goes it is an observation
``y = d' theta + e`` with noise variance ``1 / w`` (the *surrogate*
observation, not the binary outcome), and the posterior covariance after it is
the rank-one update ``S - w S d d' S / (1 + w d' S d)`` whatever the outcome.
For a target difference ``delta_t = theta_k - theta_l`` (variance ``s_t^2``,
covariance ``c_t = (e_k - e_l)' S d`` with the new observation) the mutual
information between the surrogate observation and ``delta_t`` is
``-1/2 log(1 - x_t)`` with ``x_t = w c_t^2 / (s_t^2 (1 + w d' S d))``.
The targets are the ``neighbours * n_items`` pairs whose order is most in
doubt (smallest ``|z_t|``; with ``top_k`` only pairs across the boundary of the
current top k; with ``targets="neighbours"`` the pairs at most ``neighbours``
places apart in the current ranking), each weighted by ``exp(-z_t^2 / 2)``
with ``z_t = (mu_k - mu_l) / s_t``. That weight is a heuristic (close pairs
whose order is still in doubt count fully, pairs already told apart hardly at
all); ``"misorder"`` replaces it by a criterion derived from the loss. A batch
(``n > 1``) is chosen greedily: after each pick the covariance takes the
rank-one update, so the next pick is the best pair *given* that the previous
ones will be judged (diverse pairs rather than ``n`` copies of the best).

Derivation of ``"misorder"``. Under the same surrogate the posterior mean of
``delta_t`` after the observation is ``m'_t ~ N(m_t, v_t)`` before the outcome
is seen, ``v_t = x_t s_t^2``, and its variance is ``s_t^2 - v_t``. The
posterior probability of mis-ordering the pair is ``Phi(-|m'_t| / s'_t)``; its
expectation is, in closed form with Owen's T function,
``2 T(|z_t|, sqrt((1 - x_t) / x_t))`` (``Phi(-|z_t|)`` at ``x_t = 0``, 0 at
``x_t = 1``). The criterion is the expected reduction summed over the targets,
``sum_t Phi(-|z_t|) - 2 T(|z_t|, sqrt((1 - x_t) / x_t))``: no ad hoc weight.
Evaluating it costs one Owen's T per target and candidate, so with more than
``_MISORDER_EXACT`` target-candidate products it is evaluated only on the
candidates with the largest cheap quadratic bound of ``"information"`` (a
narrowing, not an exact search).

Examples
--------
>>> import bradley
>>> from bradley.active import choose_pairs
>>> data = bradley.Comparisons.from_arrays(["a", "a", "b"], ["b", "c", "c"], [1, 1, 0])
>>> pairs = choose_pairs(data, ["a", "b", "c", "d"], n=2, rng=0)
>>> len(pairs), all(len(set(p)) == 2 for p in pairs)
(2, True)
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, ndtr, owens_t

from bradley.data import PairCounts
from bradley.errors import ConvergenceWarning
from bradley.models.base import as_comparisons, require_fitted
from bradley.solvers.threads import single_blas_thread

__all__ = ["ActiveSampler", "choose_pairs", "STRATEGIES", "expected_information_gain", "best_information_gain",
           "difference_variances", "rank_one_update", "expected_misorder_reduction"]

STRATEGIES = ("uniform", "arena", "arena-balanced", "uncertainty", "information", "misorder", "thompson")
#: Strategies that fit the Laplace posterior.
_MODEL_BASED = ("uncertainty", "information", "misorder", "thompson")
#: "misorder": evaluate every candidate exactly up to this many (targets x candidates); beyond, narrow first.
_MISORDER_EXACT = 200_000
#: "misorder": candidates kept by the narrowing.
_MISORDER_KEEP = 96

#: Candidates within this relative distance of the best criterion count as ties (broken at random).
_TIE_TOLERANCE = 1e-9


def difference_variances(covariance: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Variances of ``theta[first] - theta[second]`` under ``covariance``.

    Examples
    --------
    >>> difference_variances(np.eye(3), np.array([0, 1]), np.array([2, 2])).tolist()
    [2.0, 2.0]
    """
    diag = np.diagonal(covariance)
    return diag[first] + diag[second] - 2.0 * covariance[first, second]


def rank_one_update(covariance: np.ndarray, i: int, j: int, weight: float) -> np.ndarray:
    """Posterior covariance after Fisher information ``weight * d d'`` with ``d = e_i - e_j``.

    ``S - weight * S d d' S / (1 + weight * d' S d)`` (Sherman-Morrison), the
    Laplace covariance after one more comparison of ``i`` and ``j`` with
    ``weight = p (1 - p)``. Returns a new matrix.

    Examples
    --------
    >>> s = rank_one_update(np.eye(2), 0, 1, 0.25)
    >>> bool(np.allclose(s, np.linalg.inv(np.eye(2) + 0.25 * np.array([[1, -1], [-1, 1]]))))
    True
    """
    sd = covariance[:, i] - covariance[:, j]
    var = sd[i] - sd[j]
    return covariance - (weight / (1.0 + weight * var)) * np.outer(sd, sd)


def _comparison_information(difference: np.ndarray | float) -> np.ndarray:
    """Fisher information ``p (1 - p)`` of one comparison at score difference ``difference``.

    Written ``expit(d) expit(-d)`` so that it keeps full relative precision
    (``1 - p`` would round to 0 beyond ``|d| ~ 37``).
    """
    return expit(difference) * expit(-np.asarray(difference, dtype=np.float64))


def _neighbour_targets(
    scores: np.ndarray, codes: np.ndarray, neighbours: int, tie_break: np.ndarray | None = None,
    top_k: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of ``codes`` at most ``neighbours`` places apart when ranked by ``scores``.

    With ``top_k`` instead the pairs across the top-k boundary: one of the
    ``2 * neighbours`` items just inside, one of the ``2 * neighbours`` just
    outside. Equal scores (e.g. items without votes) are ordered by
    ``tie_break`` (default: their order in ``codes``).
    """
    secondary = np.arange(len(codes)) if tie_break is None else tie_break
    order = codes[np.lexsort((secondary, -scores[codes]))]
    if top_k is not None and 0 < top_k < len(order):
        inside = order[max(0, top_k - 2 * neighbours):top_k]
        outside = order[top_k:top_k + 2 * neighbours]
        return np.repeat(inside, len(outside)), np.tile(outside, len(inside))
    k_list, l_list = [], []
    for gap in range(1, min(neighbours, len(order) - 1) + 1):
        k_list.append(order[:-gap])
        l_list.append(order[gap:])
    if not k_list:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(k_list), np.concatenate(l_list)


def _close_targets(
    scores: np.ndarray, covariance: np.ndarray, max_targets: int, rng: np.random.Generator,
    top_k: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``max_targets`` pairs whose order is most in doubt (smallest ``|z|``), ties in random order.

    With ``top_k``: only pairs across the boundary of the current top k.
    """
    m = len(scores)
    a, b = np.triu_indices(m, 1)
    if top_k is not None and 0 < top_k < m:
        rank = np.empty(m, dtype=np.int64)
        rank[np.lexsort((rng.random(m), -scores))] = np.arange(m)
        keep = (rank[a] < top_k) != (rank[b] < top_k)
        a, b = a[keep], b[keep]
    if len(a) > max_targets:
        z = np.abs(scores[a] - scores[b]) / np.sqrt(difference_variances(covariance, a, b))
        # a jitter far below any meaningful |z| breaks exact ties (no votes yet) at random
        key = z + 1e-9 * rng.random(len(z))
        pick = np.argpartition(key, max_targets - 1)[:max_targets]
        a, b = a[pick], b[pick]
    return a, b


def expected_information_gain(
    scores: np.ndarray,
    covariance: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    targets: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """Weighted expected information gain of comparing ``first[c]`` with ``second[c]``, per candidate.

    For each target pair ``(k, l)`` the gain is the expected entropy reduction
    of ``theta_k - theta_l`` under the Laplace (Gaussian) posterior
    ``N(scores, covariance)``, ``-1/2 log(1 - w c^2 / (s_t^2 (1 + w s_c^2)))``,
    weighted by ``exp(-z^2/2)``, ``z = (scores_k - scores_l) / s_t``; see the
    module docstring for the derivation.

    Parameters
    ----------
    scores, covariance : numpy.ndarray
        Posterior mean (n,) and covariance (n, n) of the scores.
    first, second : numpy.ndarray of int
        Candidate pairs (item codes).
    targets : (numpy.ndarray, numpy.ndarray)
        Target pairs ``(k, l)`` whose order matters.

    Returns
    -------
    numpy.ndarray
        The criterion per candidate (nats).

    Examples
    --------
    >>> gain = expected_information_gain(np.zeros(3), np.eye(3), np.array([0, 0]), np.array([1, 2]),
    ...                                  (np.array([0]), np.array([1])))
    >>> bool(gain[0] > gain[1])  # comparing the target pair itself tells most about it
    True
    """
    first = np.asarray(first, dtype=np.int64)
    second = np.asarray(second, dtype=np.int64)
    if len(targets[0]) == 0 or len(first) == 0:
        return np.zeros(len(first))
    z, ratio = _target_terms(scores, covariance, first, second, targets)
    np.minimum(ratio, 1.0 - 1e-15, out=ratio)  # log1p(-1) would be -inf
    return (-0.5 * np.exp(-0.5 * z * z)) @ np.log1p(-ratio)


def best_information_gain(
    scores: np.ndarray,
    covariance: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    targets: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """:func:`expected_information_gain` exactly for the candidates that can be best, ``-inf`` for the rest.

    With ``x = w c^2 / (s_t^2 (1 + w s_c^2))`` each term ``-1/2 log(1 - x)``
    lies between ``x / 2`` and ``x / (2 (1 - x))``, and ``x <= w s_c^2 / (1 +
    w s_c^2)`` by Cauchy-Schwarz. Summed over the targets the lower bound is a
    quadratic form ``a_c d_c' M d_c`` with ``M = A' diag(rho / (2 s_t^2)) A``
    (``A`` the target rows of the covariance), so it costs O(n^2) for all
    candidates; as ``-log(1 - x) / x`` grows with ``x``, the upper bound is the
    same times ``-log(1 - x_max) / x_max``. Candidates are evaluated exactly in
    order of decreasing upper bound until the bound falls below the best exact
    value; the maximiser (and every candidate tied with it) is unchanged.
    """
    first = np.asarray(first, dtype=np.int64)
    second = np.asarray(second, dtype=np.int64)
    tk, tl = (np.asarray(t, dtype=np.int64) for t in targets)
    if len(tk) == 0 or len(first) == 0:
        return np.zeros(len(first))
    s2_t = difference_variances(covariance, tk, tl)
    rho = np.exp(-0.5 * (scores[tk] - scores[tl]) ** 2 / s2_t)
    a = covariance[tk] - covariance[tl]
    quad = (a.T * (0.5 * rho / s2_t)) @ a
    w = _comparison_information(scores[first] - scores[second])
    s2_c = difference_variances(covariance, first, second)
    lower = w / (1.0 + w * s2_c) * difference_variances(quad, first, second)
    x_max = np.minimum(w * s2_c / (1.0 + w * s2_c), 1.0 - 1e-15)
    # -log(1 - x) / x grows with x: every term is at most its x times this factor at x_max (-> 1 as x -> 0)
    tiny = x_max < 1e-12
    factor = np.ones_like(x_max)
    factor[~tiny] = -np.log1p(-x_max[~tiny]) / x_max[~tiny]
    upper = lower * factor
    # the best exact value is at least the largest lower bound: no candidate below it can win
    hopeful = np.flatnonzero(upper >= lower.max() * (1.0 - 2.0 * _TIE_TOLERANCE))
    order = hopeful[np.argsort(-upper[hopeful], kind="stable")]
    out = np.full(len(first), -np.inf)
    best = -np.inf
    start, chunk = 0, 256
    while start < len(order):
        block = order[start:start + chunk]
        block = block[upper[block] >= best * (1.0 - 2.0 * _TIE_TOLERANCE)]
        if len(block) == 0:
            break
        out[block] = expected_information_gain(scores, covariance, first[block], second[block], (tk, tl))
        best = max(best, float(out[block].max()))
        start += chunk
        chunk *= 2
    return out


def _target_terms(
    scores: np.ndarray, covariance: np.ndarray, first: np.ndarray, second: np.ndarray,
    targets: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """``|z_t|`` per target and ``x_t`` per (target, candidate) under the Gaussian surrogate."""
    tk, tl = (np.asarray(t, dtype=np.int64) for t in targets)
    s2_t = difference_variances(covariance, tk, tl)
    z = np.abs(scores[tk] - scores[tl]) / np.sqrt(s2_t)
    w = _comparison_information(scores[first] - scores[second])
    s2_c = difference_variances(covariance, first, second)
    a = covariance[tk] - covariance[tl]
    c = a[:, first] - a[:, second]
    x = (c * c) * (w / (1.0 + w * s2_c))[None, :] / s2_t[:, None]
    np.clip(x, 0.0, 1.0, out=x)
    return z, x


def expected_misorder_reduction(
    scores: np.ndarray,
    covariance: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    targets: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """Expected reduction of the summed mis-ordering probability of ``targets``, per candidate.

    Under the Laplace posterior ``N(scores, covariance)`` and the Gaussian
    surrogate of one comparison of ``first[c]`` with ``second[c]``, the
    expected posterior probability that target ``t`` is ordered the wrong way
    round is ``2 T(|z_t|, sqrt((1 - x_t) / x_t))`` (Owen's T); the reduction
    from ``Phi(-|z_t|)`` is summed over the targets (see the module docstring).

    Examples
    --------
    >>> gain = expected_misorder_reduction(np.zeros(3), np.eye(3), np.array([0, 0]), np.array([1, 2]),
    ...                                    (np.array([0]), np.array([1])))
    >>> bool(gain[0] > gain[1] > 0)
    True
    """
    first = np.asarray(first, dtype=np.int64)
    second = np.asarray(second, dtype=np.int64)
    if len(targets[0]) == 0 or len(first) == 0:
        return np.zeros(len(first))
    z, x = _target_terms(scores, covariance, first, second, targets)
    # each term is at most exp(-z^2 / (2 x)) arcsin(sqrt(x)) / pi: terms below 1e-15 by that bound are
    # left at 0 (far from any difference between candidates) and Owen's T is evaluated only for the rest
    with np.errstate(divide="ignore", under="ignore", invalid="ignore"):  # x = 0: nan or 0, skipped either way
        bound = np.exp(-0.5 * (z * z)[:, None] / x) * np.arcsin(np.sqrt(x)) / np.pi
    rows, cols = np.nonzero(bound > 1e-15)
    xs = x[rows, cols]  # in [0, 1]: _target_terms clips it
    terms = ndtr(-z[rows]) - 2.0 * owens_t(z[rows], np.sqrt((1.0 - xs) / xs))
    return np.bincount(cols, terms, minlength=len(first))


def _information_bound(
    scores: np.ndarray, covariance: np.ndarray, first: np.ndarray, second: np.ndarray,
    targets: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """The O(n^2) quadratic lower bound of :func:`expected_information_gain` for every candidate."""
    tk, tl = (np.asarray(t, dtype=np.int64) for t in targets)
    s2_t = difference_variances(covariance, tk, tl)
    rho = np.exp(-0.5 * (scores[tk] - scores[tl]) ** 2 / s2_t)
    a = covariance[tk] - covariance[tl]
    quad = (a.T * (0.5 * rho / s2_t)) @ a
    w = _comparison_information(scores[first] - scores[second])
    s2_c = difference_variances(covariance, first, second)
    return w / (1.0 + w * s2_c) * difference_variances(quad, first, second)


def _misorder_criterion(
    scores: np.ndarray, covariance: np.ndarray, first: np.ndarray, second: np.ndarray,
    targets: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """:func:`expected_misorder_reduction`, on every candidate when cheap, else on the most promising.

    With more than ``_MISORDER_EXACT`` (target, candidate) products only the
    ``_MISORDER_KEEP`` candidates with the largest quadratic bound of the
    information criterion are evaluated (the rest get ``-inf``).
    """
    if len(targets[0]) * len(first) <= _MISORDER_EXACT:
        return expected_misorder_reduction(scores, covariance, first, second, targets)
    bound = _information_bound(scores, covariance, first, second, targets)
    keep = np.argpartition(-bound, _MISORDER_KEEP - 1)[:_MISORDER_KEEP] if len(bound) > _MISORDER_KEEP \
        else np.arange(len(bound))
    out = np.full(len(first), -np.inf)
    out[keep] = expected_misorder_reduction(scores, covariance, first[keep], second[keep], targets)
    return out


class ActiveSampler:
    """Choose which pairs to compare next.

    Parameters
    ----------
    strategy : {"information", "misorder", "thompson", "uncertainty", "arena", "arena-balanced", "uniform"}
        See the module docstring (``bradley.active``) for each rule.
    max_per_item : int, optional
        Budget of comparisons per item: items that reached it are not offered.
    prior : float
        Variance of the ``N(0, prior)`` prior on the scores of the Laplace
        posterior ("information", "uncertainty"); it makes the posterior
        proper with no votes at all.
    neighbours : int
        "information", "misorder": the targets are the ``neighbours * n_items`` pairs whose
        order is most in doubt (or, with ``targets="neighbours"``, the pairs at
        most this many ranks apart).
    top_k : int, optional
        "information", "misorder": target the top-k membership instead of the whole order:
        the targets are the pairs across the boundary of the current top k
        (with ``targets="neighbours"``: ``2 * neighbours`` items on each side).
    targets : {"close", "neighbours"}
        "information", "misorder": how the target pairs are chosen (see ``neighbours``).
    boost : float
        "arena", "arena-balanced": sampling-weight factor of new items (FastChat uses 5).
    seed : int or numpy.random.Generator, optional
        Random draws and tie-breaking (and which side is shown left).

    Attributes
    ----------
    items_ : numpy.ndarray
        All items of the fit (the data's items and the candidates).
    candidates_ : numpy.ndarray
        The items pairs are chosen from.
    scores_ : numpy.ndarray
        Posterior-mode scores (MAP with the prior), aligned with ``items_``.
        Only the model-based strategies fit them: for "uniform" and "arena"
        (no model) they are zeros.
    covariance_ : numpy.ndarray
        Laplace covariance of the scores ("uniform", "arena": the prior's).
    item_counts_ : numpy.ndarray
        Comparisons per item in the data.
    pair_counts_ : PairCounts
    converged_ : bool
    n_iter_ : int

    Examples
    --------
    >>> import bradley
    >>> data, _ = bradley.simulate_bt(6, 40, seed=1, item_names=True)
    >>> sampler = ActiveSampler("information", seed=0).fit(data)
    >>> batch = sampler.next_pairs(3)
    >>> len(batch), len({frozenset(p) for p in batch})
    (3, 3)
    """

    def __init__(
        self,
        strategy: str = "information",
        *,
        max_per_item: int | None = None,
        prior: float = 1.0,
        neighbours: int = 2,
        top_k: int | None = None,
        targets: str = "close",
        boost: float = 5.0,
        seed: int | np.random.Generator | None = None,
    ):
        self.top_k = top_k
        self.targets = targets
        self.strategy = strategy
        self.max_per_item = max_per_item
        self.prior = prior
        self.neighbours = neighbours
        self.boost = boost
        self.seed = seed

    def __repr__(self) -> str:
        return (f"ActiveSampler(strategy={self.strategy!r}, max_per_item={self.max_per_item!r}, "
                f"prior={self.prior!r}, neighbours={self.neighbours!r})")

    def _check_params(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; choose one of {list(STRATEGIES)}.")
        if not (self.prior > 0 and np.isfinite(self.prior)):
            raise ValueError(f"prior must be a positive variance, got {self.prior!r}.")
        if self.max_per_item is not None and self.max_per_item < 0:
            raise ValueError(f"max_per_item must be non-negative, got {self.max_per_item!r}.")
        if self.targets not in ("close", "neighbours"):
            raise ValueError(f"targets must be 'close' or 'neighbours', got {self.targets!r}.")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {self.top_k!r}.")
        if self.neighbours < 1:
            raise ValueError(f"neighbours must be at least 1, got {self.neighbours!r}.")
        if not self.boost > 0:
            raise ValueError(f"boost must be positive, got {self.boost!r}.")

    def fit(self, data: Any, items: Iterable[Any] | None = None) -> ActiveSampler:
        """Fit the Laplace posterior on ``data`` (None: no votes yet) over ``items``.

        Parameters
        ----------
        data : Comparisons, PairCounts, DataFrame, path or None
        items : iterable, optional
            Candidate items (default: the data's items). Items without votes
            get the prior; data items not among them are fitted but not offered.

        Returns
        -------
        self
        """
        self._check_params()
        self._rng = np.random.default_rng(self.seed)
        pairs = _pair_counts_over(data, items)
        self.pair_counts_ = pairs
        self.items_ = np.asarray(pairs.items, dtype=object)
        names = self.items_ if items is None else pd.unique(np.asarray(list(items), dtype=object))
        self.candidates_ = np.asarray(names, dtype=object)
        self._index = pd.Index(self.items_)
        self._candidate_codes = self._index.get_indexer(self.candidates_).astype(np.int64)
        n = len(self.items_)
        totals = pairs.totals
        self.item_counts_ = (np.bincount(pairs.first, totals, minlength=n)
                             + np.bincount(pairs.second, totals, minlength=n))
        self._pair_matrix = np.zeros((n, n))
        self._pair_matrix[pairs.first, pairs.second] = totals
        self._pair_matrix[pairs.second, pairs.first] = totals
        if self.strategy in _MODEL_BASED:
            from bradley.solvers import bt as bt_solvers

            with single_blas_thread(n):
                result = bt_solvers.newton(pairs, prior_variance=self.prior)
            if not result.converged:
                warnings.warn(
                    f"ActiveSampler: the MAP fit stopped after {result.n_iter} iterations without converging "
                    f"(gradient norm {result.grad_norm:.3g}); the chosen pairs rest on inaccurate scores.",
                    ConvergenceWarning, stacklevel=2)
            self.scores_ = result.scores
            self.converged_, self.n_iter_ = bool(result.converged), int(result.n_iter)
            info = bt_solvers.bt_neg_hessian(result.scores, pairs, self.prior)
            with single_blas_thread(n):
                self.covariance_ = _spd_inverse(info)
        else:
            self.scores_ = np.zeros(n)
            self.covariance_ = np.eye(n) * self.prior
            self.converged_, self.n_iter_ = True, 0
        return self

    def summary(self) -> pd.DataFrame:
        """Tidy table of the candidates: item, score, se, comparisons; best first."""
        require_fitted(self, "scores_")
        codes = self._candidate_codes
        table = pd.DataFrame({
            "item": self.candidates_,
            "score": self.scores_[codes],
            "se": np.sqrt(np.diagonal(self.covariance_)[codes]),
            "comparisons": self.item_counts_[codes],
        })
        return table.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)

    def next_pairs(
        self,
        n: int = 1,
        *,
        exclude: Iterable[Iterable[Any]] | None = None,
        item_counts: Mapping[Any, float] | None = None,
    ) -> list[tuple[Any, Any]]:
        """Up to ``n`` distinct pairs to compare next (fewer, or none, when budgets run out).

        Parameters
        ----------
        n : int
        exclude : iterable of pairs, optional
            Pairs (e.g. ``frozenset({"a", "b"})``) not to offer, in either order.
        item_counts : mapping, optional
            Comparisons per item so far, checked against ``max_per_item``
            (default: the counts in the fitted data). Each chosen pair counts
            against the budget of both its items within the batch.

        Returns
        -------
        list of (left, right) tuples of item names; the side shown left is random.
        """
        require_fitted(self, "scores_")
        if n < 0:
            raise ValueError(f"n must be non-negative, got {n!r}.")
        with single_blas_thread(len(self._candidate_codes)):
            return self._next_pairs(n, exclude, item_counts)

    def _next_pairs(
        self, n: int, exclude: Iterable[Iterable[Any]] | None, item_counts: Mapping[Any, float] | None,
    ) -> list[tuple[Any, Any]]:
        codes = self._candidate_codes
        m = len(codes)
        counts = self._counts(item_counts)
        budget = np.inf if self.max_per_item is None else float(self.max_per_item)
        allowed = np.triu(np.ones((m, m), dtype=bool), 1)  # over candidate positions
        if exclude is not None:
            a, b = self._exclusion_positions(exclude)
            allowed[np.minimum(a, b), np.maximum(a, b)] = False
        chosen: list[tuple[Any, Any]] = []
        cov = self.covariance_[np.ix_(codes, codes)].copy()
        mu = self.scores_[codes]
        pair_n = self._pair_matrix[np.ix_(codes, codes)].copy()
        rng = self._rng
        tie_break = rng.random(m)  # orders items with equal scores (no votes yet) at random
        if self.strategy in ("information", "misorder"):
            if self.targets == "close":
                targets = _close_targets(mu, cov, self.neighbours * m, rng, self.top_k)
            else:
                targets = _neighbour_targets(mu, np.arange(m), self.neighbours, tie_break, self.top_k)
        for _ in range(n):
            open_items = counts < budget
            mask = allowed & open_items[:, None] & open_items[None, :]
            first, second = np.nonzero(mask)
            if len(first) == 0:
                break
            if self.strategy == "uniform":
                pick = int(rng.integers(len(first)))
            elif self.strategy in ("arena", "arena-balanced"):
                pick = self._arena_pick(first, second, counts, pair_n, rng)
            else:
                if self.strategy == "uncertainty":
                    crit = np.log1p(_comparison_information(mu[first] - mu[second])
                                    * difference_variances(cov, first, second))
                elif self.strategy == "information":
                    crit = best_information_gain(mu, cov, first, second, targets)
                elif self.strategy == "misorder":
                    crit = _misorder_criterion(mu, cov, first, second, targets)
                else:
                    crit = _thompson_criterion(mu, cov, first, second, rng)
                best = crit.max()
                ties = np.flatnonzero(crit >= best - _TIE_TOLERANCE * abs(best))
                pick = int(ties[rng.integers(len(ties))])
            i, j = int(first[pick]), int(second[pick])
            allowed[i, j] = False
            counts[i] += 1
            counts[j] += 1
            pair_n[i, j] += 1
            pair_n[j, i] += 1
            if self.strategy in _MODEL_BASED:
                cov = rank_one_update(cov, i, j, float(_comparison_information(mu[i] - mu[j])))
            left, right = (i, j) if rng.random() < 0.5 else (j, i)
            chosen.append((self.candidates_[left], self.candidates_[right]))
        return chosen

    def _counts(self, item_counts: Mapping[Any, float] | None) -> np.ndarray:
        """Comparisons so far per candidate (float array, a copy)."""
        if item_counts is None:
            return self.item_counts_[self._candidate_codes].astype(np.float64)
        return np.array([float(item_counts.get(name, 0)) for name in self.candidates_], dtype=np.float64)

    def _exclusion_positions(self, exclude: Iterable[Iterable[Any]]) -> tuple[np.ndarray, np.ndarray]:
        """Candidate positions of the excluded pairs whose items are both candidates (one lookup).

        Raises ValueError naming the first entry that is not a pair of two distinct items.
        """
        flat: list[Any] = []
        for pair in exclude:
            members = list(pair) if isinstance(pair, Iterable) and not isinstance(pair, str) else [pair]
            if len(members) != 2 or members[0] == members[1]:
                raise ValueError(f"exclude: each entry must be a pair of two distinct items, got {pair!r}.")
            flat.extend(members)
        if not flat:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty.copy()
        position = pd.Index(self.candidates_).get_indexer(pd.Index(np.asarray(flat, dtype=object)))
        a, b = position[0::2], position[1::2]
        known = (a >= 0) & (b >= 0)
        return a[known].astype(np.int64), b[known].astype(np.int64)

    def _arena_pick(self, first: np.ndarray, second: np.ndarray, counts: np.ndarray, pair_n: np.ndarray,
                    rng: np.random.Generator) -> int:
        """FastChat's two-stage draw: anchor by item weight, rival by weight ("arena-balanced": / (1 + pair count))."""
        m = len(counts)
        median = float(np.median(counts))
        weight = np.where(counts < 0.5 * median, self.boost, 1.0)
        has_partner = np.zeros(m, dtype=bool)
        has_partner[first] = True
        has_partner[second] = True
        anchor_w = np.where(has_partner, weight, 0.0)
        anchor = int(rng.choice(m, p=anchor_w / anchor_w.sum()))
        rows = np.flatnonzero((first == anchor) | (second == anchor))
        rivals = np.where(first[rows] == anchor, second[rows], first[rows])
        rival_w = weight[rivals]
        if self.strategy == "arena-balanced":
            rival_w = rival_w / (1.0 + pair_n[anchor, rivals])
        return int(rows[rng.choice(len(rows), p=rival_w / rival_w.sum())])


def choose_pairs(
    data: Any,
    items: Iterable[Any],
    n: int = 1,
    *,
    strategy: str = "information",
    exclude: Iterable[Iterable[Any]] | None = None,
    item_counts: Mapping[Any, float] | None = None,
    max_per_item: int | None = None,
    rng: int | np.random.Generator | None = None,
    top_k: int | None = None,
) -> list[tuple[Any, Any]]:
    """Choose up to ``n`` pairs of ``items`` to compare next.

    Parameters
    ----------
    data : Comparisons, PairCounts, DataFrame or None
        The votes so far (None: none yet).
    items : iterable
        Candidate item names.
    n : int
        Number of pairs wanted; fewer (or none) come back when budgets or
        allowed pairs run out.
    strategy : str
        One of :data:`STRATEGIES`; see :mod:`bradley.active`.
    exclude : set of frozenset, optional
        Pairs not to offer (e.g. those this annotator already judged).
    item_counts : mapping, optional
        Comparisons per item so far (default: counted from ``data``).
    max_per_item : int, optional
        Per-item budget: items with ``item_counts >= max_per_item`` are not offered.
    rng : int or numpy.random.Generator, optional
    top_k : int, optional
        "information", "misorder": aim at the membership of the top k rather than the whole order.

    Returns
    -------
    list of (left, right) tuples of item names

    Examples
    --------
    >>> choose_pairs(None, ["a", "b", "c"], n=5, max_per_item=1, rng=0) in (
    ...     [("a", "b")], [("b", "a")], [("a", "c")], [("c", "a")], [("b", "c")], [("c", "b")])
    True
    """
    sampler = ActiveSampler(strategy, max_per_item=max_per_item, top_k=top_k, seed=rng)
    return sampler.fit(data, items).next_pairs(n, exclude=exclude, item_counts=item_counts)


def _thompson_criterion(
    scores: np.ndarray, covariance: np.ndarray, first: np.ndarray, second: np.ndarray, rng: np.random.Generator,
) -> np.ndarray:
    """``p (1 - p) Var(diff)`` on the allowed pairs adjacent in a ranking drawn from ``N(scores, covariance)``.

    Adjacent means: no other item of an allowed pair lies between them in the
    drawn order. Pairs not adjacent get ``-inf`` (all of them count when no
    allowed pair is adjacent).
    """
    draw = scores + _gaussian_draw(covariance, rng)
    involved = np.unique(np.concatenate([first, second]))
    rank = np.empty(len(scores), dtype=np.int64)
    rank[involved[np.argsort(-draw[involved], kind="stable")]] = np.arange(len(involved))
    adjacent = np.abs(rank[first] - rank[second]) == 1
    crit = np.log1p(_comparison_information(scores[first] - scores[second])
                    * difference_variances(covariance, first, second))
    if adjacent.any():
        crit = np.where(adjacent, crit, -np.inf)
    return crit


def _gaussian_draw(covariance: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw from ``N(0, covariance)`` (eigendecomposition: safe for a nearly singular matrix)."""
    values, vectors = np.linalg.eigh(covariance)
    return vectors @ (np.sqrt(np.clip(values, 0.0, None)) * rng.standard_normal(len(values)))


def _pair_counts_over(data: Any, items: Iterable[Any] | None) -> PairCounts:
    """The data's pair counts over the union of its items and ``items`` (new items appended)."""
    if data is None:
        if items is None:
            raise ValueError("give the candidate items when there is no data yet.")
        names = pd.unique(np.asarray(list(items), dtype=object))
        empty = np.zeros(0, dtype=np.int64)
        return PairCounts(empty, empty.copy(), np.zeros(0), np.zeros(0), np.zeros(0), np.asarray(names, dtype=object))
    pairs = data if isinstance(data, PairCounts) else as_comparisons(data).pair_counts()
    if items is None:
        return pairs
    known = pd.Index(np.asarray(pairs.items, dtype=object))
    wanted = pd.unique(np.asarray(list(items), dtype=object))
    extra = wanted[known.get_indexer(wanted) < 0]
    if not len(extra):
        return pairs
    # appending keeps every existing code, so the (first < second, sorted) order holds
    names = np.concatenate([np.asarray(pairs.items, dtype=object), np.asarray(extra, dtype=object)])
    return PairCounts(pairs.first, pairs.second, pairs.wins_first, pairs.wins_second, pairs.ties, names)


def _spd_inverse(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive definite matrix by Cholesky."""
    from scipy import linalg

    factor = linalg.cho_factor(matrix, check_finite=False)
    inv = linalg.cho_solve(factor, np.eye(matrix.shape[0]), check_finite=False)
    return 0.5 * (inv + inv.T)
