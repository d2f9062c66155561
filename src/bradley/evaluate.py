"""Comparing rating methods on the same data: held-out prediction and rank agreement.

Methods (each maps training comparisons to a predictor of ``P(left wins)``):

* ``bt``: Bradley-Terry (with a weak N(0, 10) prior so that every fold fits,
  even when an item never wins in it).
* ``davidson``: BT with ties (Davidson 1970), predicting the expected score
  ``P(left wins) + P(tie) / 2`` so that it is scored like the other methods.
* ``elo``: online Elo over the rows in their order (K factor ``elo_k``, 400
  points per factor 10, start 1000); it depends on that order, which
  :func:`elo_order_spread` measures.
* ``trueskill``: TrueSkill from the ``trueskill`` package (draws as ties),
  predicting ``Phi((mu_l - mu_r) / sqrt(2 beta^2 + sigma_l^2 + sigma_r^2))``.
* ``winrate``: each item's smoothed win rate (ties half), predicting
  ``expit(logit(w_l) - logit(w_r))``.
* ``average_win_rate``: evalica's average win rate (the mean over an item's
  opponents of its win rate against each, ties half), see
  :func:`average_win_rates`.
* ``eigen``: the eigenvector rating (Keener 1993; evalica's ``eigen``, with
  winners and losers the right way round), see :func:`eigenvector_ratings`.
* ``pagerank``: PageRank of the graph in which losers point to winners
  (evalica's ``pagerank``, damping 0.85), see :func:`pagerank_ratings`.

The last three are ratings, not probabilities; they predict through a
one-parameter logistic link fitted on the training fold,
``P(left wins) = expit(a * (z_l - z_r))`` with ``z`` the log rating (eigen,
PageRank) or the rating itself (average win rate), ``a`` by maximum
likelihood (ties as half wins), see :func:`fit_rating_link`.

Row weights are frequencies everywhere: a row of weight ``w`` counts as ``w``
comparisons in every fit (Elo and TrueSkill: ``w`` consecutive updates) and in
every metric, so weighted rows and the same rows written out one per game give
the same numbers. Relabelling which side is "left" (swapping left and right and
replacing the outcome ``o`` by ``1 - o``) changes no metric.

Metrics on each held-out fold, weighted by the row weights: log-loss
(cross-entropy against the outcome, ties as 0.5), Brier score, accuracy on
decisive rows (a prediction of exactly one half scores half), and expected
calibration error (ECE) of the favourite's predicted score, see
:func:`expected_calibration_error`.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, log_expit, logit, ndtr

from bradley.data import Comparisons, PairCounts, describe_rows
from bradley.errors import ConvergenceWarning
from bradley.models import BradleyTerry, Davidson
from bradley.models.base import as_comparisons
from bradley.scales import ELO_SCALE

__all__ = [
    "METHODS",
    "fit_method",
    "log_loss",
    "accuracy",
    "brier_score",
    "expected_calibration_error",
    "DEFAULT_METHODS",
    "TIE_METHODS",
    "compare_methods",
    "elo_ratings",
    "elo_order_spread",
    "rank_correlation",
    "eigenvector_ratings",
    "pagerank_ratings",
    "average_win_rates",
    "fit_rating_link",
]

Predictor = Callable[[np.ndarray, np.ndarray], np.ndarray]
EVAL_PRIOR = 10.0
#: Methods that model ties: skipped (with a note) on data without ties.
TIE_METHODS = frozenset({"davidson"})
#: Methods whose default ``compare_methods`` set is used when ``methods`` is None.
DEFAULT_METHODS = ("bt", "davidson", "elo", "trueskill", "winrate")
#: A predicted probability this close to one half is a coin flip (robust to rounding under relabelling).
_HALF_TOL = 1e-12
#: Above this many games (total integer weight), the ``games`` split deals each row's games to the folds by a
#: multinomial draw per row instead of a permutation of all games (same distribution for every game).
_GAME_PERMUTATION_LIMIT = 1 << 25
#: Most sequential updates (one per game: the sum of ceil(weight)) that elo / trueskill make on weighted rows.
SEQUENTIAL_UPDATE_LIMIT = {"elo": 10**8, "trueskill": 10**7}


def _sequential_updates(data: Comparisons) -> int:
    return data.n_comparisons if data.weight is None else int(np.ceil(data.weight).sum())


def _check_update_count(method: str, data: Comparisons) -> None:
    updates = _sequential_updates(data)
    if data.weight is not None and updates > SEQUENTIAL_UPDATE_LIMIT[method]:
        raise ValueError(f"{method} updates once per game, and the weights add up to {updates:,} games (more than "
                         f"{SEQUENTIAL_UPDATE_LIMIT[method]:,}); divide the weights by a common factor for {method}.")


def _fit_bt(train: Comparisons, **_: Any) -> tuple[Predictor, np.ndarray]:
    model = BradleyTerry(prior=EVAL_PRIOR).fit(train)
    s = model.scores_
    return (lambda left, right: expit(s[left] - s[right])), s


def _fit_davidson(train: Comparisons, **_: Any) -> tuple[Predictor, np.ndarray]:
    model = Davidson(prior=EVAL_PRIOR).fit(train)

    def predict(left: np.ndarray, right: np.ndarray) -> np.ndarray:
        proba = model.predict_proba(left, right)
        return proba[:, 0] + 0.5 * proba[:, 1]  # expected score of left

    return predict, model.scores_


def _row_weights(data: Comparisons) -> np.ndarray:
    return np.ones(data.n_comparisons) if data.weight is None else data.weight


def _has_whole_weights(data: Comparisons) -> bool:
    return data.weight is None or bool(np.all(data.weight == np.floor(data.weight)))


def elo_ratings(data: Comparisons, k: float = 4.0, order: np.ndarray | None = None) -> np.ndarray:
    """Online Elo ratings after one pass over the rows (in ``order`` if given).

    Start 1000, 400 points per factor 10 in the odds, K factor ``k``. Sequential
    by nature (each update uses the ratings so far), so this is a plain loop
    over rows. A row of weight ``w`` counts as ``w`` games: ``floor(w)``
    consecutive updates with factor ``k``, then one with factor
    ``k * (w - floor(w))`` for the fractional part (a row of weight 0.5 is one
    half-size update, weight 0 none), so whole-number weights give exactly the
    ratings of the rows written out one per game. The cost grows with the
    total weight.

    Examples
    --------
    >>> data = Comparisons.from_arrays(["a", "a"], ["b", "b"], [1.0, 1.0])
    >>> weighted = Comparisons.from_arrays(["a"], ["b"], [1.0], weight=[2.0])
    >>> bool(np.allclose(elo_ratings(data, k=32), elo_ratings(weighted, k=32)))
    True
    """
    _check_update_count("elo", data)
    ratings = np.full(len(data.items), 1000.0)
    rows = np.arange(data.n_comparisons) if order is None else np.asarray(order)
    left, right, outcome = data.left[rows].tolist(), data.right[rows].tolist(), data.outcome[rows].tolist()
    if data.weight is None:
        for a, b, o in zip(left, right, outcome, strict=True):
            expected = 1.0 / (1.0 + 10.0 ** ((ratings[b] - ratings[a]) / 400.0))
            delta = k * (o - expected)
            ratings[a] += delta
            ratings[b] -= delta
        return ratings
    for a, b, o, w in zip(left, right, outcome, data.weight[rows].tolist(), strict=True):
        games = int(w)
        steps = [k] * games + ([k * (w - games)] if w > games else [])
        for factor in steps:
            expected = 1.0 / (1.0 + 10.0 ** ((ratings[b] - ratings[a]) / 400.0))
            delta = factor * (o - expected)
            ratings[a] += delta
            ratings[b] -= delta
    return ratings


def _fit_elo(train: Comparisons, elo_k: float = 4.0, **_: Any) -> tuple[Predictor, np.ndarray]:
    r = elo_ratings(train, elo_k)
    scores = (r - 1000.0) / ELO_SCALE
    return (lambda left, right: expit(scores[left] - scores[right])), scores


def _fit_trueskill(train: Comparisons, **_: Any) -> tuple[Predictor, np.ndarray]:
    try:
        import trueskill
    except ImportError as exc:  # pragma: no cover - it is a dependency
        raise ImportError("the 'trueskill' method needs the trueskill package (pip install trueskill).") from exc
    if not _has_whole_weights(train):
        raise ValueError("the trueskill method needs whole-number row weights (numbers of games): TrueSkill has "
                         "no update for a fraction of a game.")
    _check_update_count("trueskill", train)
    weight = _row_weights(train)
    total = float(weight.sum())
    tie_share = float(weight[train.outcome == 0.5].sum()) / total if total > 0 else 0.0
    env = trueskill.TrueSkill(draw_probability=tie_share or 1e-6)
    ratings = [env.create_rating() for _ in range(len(train.items))]
    rows = zip(train.left.tolist(), train.right.tolist(), train.outcome.tolist(), weight.tolist(), strict=True)
    for a, b, o, w in rows:
        for _game in range(int(w)):  # a row of weight w is w games, rated one after another
            if o == 0.5:
                ratings[a], ratings[b] = trueskill.rate_1vs1(ratings[a], ratings[b], drawn=True, env=env)
            elif o >= 0.5:
                ratings[a], ratings[b] = trueskill.rate_1vs1(ratings[a], ratings[b], env=env)
            else:
                ratings[b], ratings[a] = trueskill.rate_1vs1(ratings[b], ratings[a], env=env)
    mu = np.array([r.mu for r in ratings])
    sigma = np.array([r.sigma for r in ratings])
    beta = env.beta

    def predict(left: np.ndarray, right: np.ndarray) -> np.ndarray:
        return ndtr((mu[left] - mu[right]) / np.sqrt(2 * beta**2 + sigma[left] ** 2 + sigma[right] ** 2))

    return predict, mu


def _fit_winrate(train: Comparisons, **_: Any) -> tuple[Predictor, np.ndarray]:
    totals = train.pair_counts().item_totals()
    rate = (totals["wins"] + 0.5 * totals["ties"] + 1.0) / (totals["comparisons"] + 2.0)
    scores = logit(rate.to_numpy())
    return (lambda left, right: expit(scores[left] - scores[right])), scores


def _as_pairs(data: Any) -> PairCounts:
    return data if isinstance(data, PairCounts) else as_comparisons(data).pair_counts()


def _credited(pairs: PairCounts, tie_weight: float) -> tuple[np.ndarray, np.ndarray]:
    """Per pair, ``A[first, second]`` and ``A[second, first]`` of the matrix A = wins + tie_weight * ties."""
    if not np.isfinite(tie_weight) or tie_weight < 0:
        raise ValueError(f"tie_weight must be finite and non-negative, got {tie_weight}.")
    return pairs.wins_first + tie_weight * pairs.ties, pairs.wins_second + tie_weight * pairs.ties


def average_win_rates(pairs: Any, *, tie_weight: float = 0.5) -> np.ndarray:
    """Average win rate: the mean over an item's opponents of its win rate against each.

    With ``A[i, j]`` = wins of i over j plus ``tie_weight`` times their ties,
    item i's rating is the mean of ``A[i, j] / (A[i, j] + A[j, i])`` over the
    opponents j it met (evalica's ``average_win_rate``); an item that met
    nobody gets 0. Unlike the overall win rate, every opponent counts once
    however often they met.

    Parameters
    ----------
    pairs : PairCounts, Comparisons, DataFrame or path
    tie_weight : float
        Credit of a tie to each side (default one half).

    Returns
    -------
    numpy.ndarray, one rating in [0, 1] per item (in ``pairs.items`` order)

    Examples
    --------
    >>> p = PairCounts.from_matrix([[0, 3, 1], [1, 0, 0], [1, 0, 0]], items=["a", "b", "c"])
    >>> average_win_rates(p).tolist()
    [0.625, 0.25, 0.5]
    """
    pairs = _as_pairs(pairs)
    a_fs, a_sf = _credited(pairs, tie_weight)
    total = a_fs + a_sf
    met = total > 0
    rate_first = np.divide(a_fs, total, out=np.zeros_like(total), where=met)
    n = pairs.n_items
    opponents = np.bincount(pairs.first[met], minlength=n) + np.bincount(pairs.second[met], minlength=n)
    summed = (np.bincount(pairs.first[met], rate_first[met], n)
              + np.bincount(pairs.second[met], 1.0 - rate_first[met], n))
    return np.divide(summed, opponents, out=np.zeros(n), where=opponents > 0)


def eigenvector_ratings(pairs: Any, *, tie_weight: float = 0.5, tol: float = 1e-10,
                        max_iter: int = 10_000) -> np.ndarray:
    """Eigenvector ratings (Keener 1993): the Perron vector of the win matrix.

    With ``A[i, j]`` = wins of i over j plus ``tie_weight`` times their ties,
    the ratings solve ``A r = rho r`` with ``rho`` the largest eigenvalue: an
    item is strong when it beats strong items. They are normalised to unit
    Euclidean norm, non-negative, as in evalica's ``eigen``. (evalica 0.4
    iterates with ``A`` transposed, ``r_j ~ sum_i A[i, j] r_i``, which rates
    items by whom they *lost* to and orders simulated Bradley-Terry items
    backwards; this function equals evalica's ``eigen`` on the data with
    every winner and loser swapped.)

    Computed by power iteration on ``A + c I`` (``c`` = the mean row sum of
    ``A``): the shift leaves the eigenvectors unchanged and makes the
    iteration converge also where plain power iteration oscillates (e.g. two
    items, or any bipartite comparison graph). The vector is unique and
    positive when the win graph is strongly connected; otherwise items that
    cannot reach the strongest group get 0, and where several groups tie the
    iteration may not converge (:class:`~bradley.errors.ConvergenceWarning`).

    Parameters
    ----------
    pairs : PairCounts, Comparisons, DataFrame or path
    tie_weight : float
        Credit of a tie to each side (default one half).
    tol : float
        Stop when the Euclidean change of the unit-norm iterate is below ``tol``.
    max_iter : int
        Iteration limit; reaching it warns.

    Returns
    -------
    numpy.ndarray, one rating per item (in ``pairs.items`` order), unit norm

    Examples
    --------
    >>> p = PairCounts.from_matrix([[0, 3], [1, 0]], items=["a", "b"])
    >>> r = eigenvector_ratings(p)  # A r = sqrt(3) r  ->  r ~ (sqrt(3), 1)
    >>> bool(np.allclose(r, np.array([3 ** 0.5, 1.0]) / 2.0))
    True
    """
    pairs = _as_pairs(pairs)
    a_fs, a_sf = _credited(pairs, tie_weight)
    n = pairs.n_items
    first, second = pairs.first, pairs.second
    shift = float((a_fs.sum() + a_sf.sum()) / max(n, 1)) or 1.0
    r = np.full(n, 1.0 / np.sqrt(n))
    for _iteration in range(max_iter):
        new = shift * r + np.bincount(first, a_fs * r[second], n) + np.bincount(second, a_sf * r[first], n)
        norm = np.linalg.norm(new)
        if norm > 0:
            new /= norm
        change = float(np.linalg.norm(new - r))
        r = new
        if change < tol:
            return r
    warnings.warn(f"eigenvector ratings did not converge in {max_iter} iterations (last change {change:.2e} > "
                  f"tol {tol:g}); the win graph may not be strongly connected.", ConvergenceWarning, stacklevel=2)
    return r


def pagerank_ratings(pairs: Any, damping: float = 0.85, *, tie_weight: float = 0.5, tol: float = 1e-12,
                     max_iter: int = 10_000) -> np.ndarray:
    """PageRank ratings (Brin & Page 1998) of the graph in which losers point to winners.

    Each item passes a share ``damping`` of its rating to the items that beat
    it, in proportion to ``A[i, j]`` (wins of i over j plus ``tie_weight``
    times their ties); an item that never lost spreads it evenly over all
    items; the remaining ``1 - damping`` is spread evenly. The ratings are the
    stationary distribution of this chain (they sum to 1), as in evalica's
    ``pagerank`` with the same damping, tie credit and normalisation.

    Parameters
    ----------
    pairs : PairCounts, Comparisons, DataFrame or path
    damping : float
        Damping factor in [0, 1) (default 0.85).
    tie_weight : float
        Credit of a tie to each side (default one half).
    tol : float
        Stop when the L1 change of the ratings is below ``tol`` (the
        iteration contracts by ``damping`` per step).
    max_iter : int
        Iteration limit; reaching it warns.

    Returns
    -------
    numpy.ndarray, one rating per item (in ``pairs.items`` order), summing to 1

    Examples
    --------
    >>> p = PairCounts.from_matrix([[0, 1], [0, 0]], items=["a", "b"])
    >>> r = pagerank_ratings(p, damping=0.5)  # b gives a half of its rating; a spreads evenly
    >>> bool(np.allclose(r, [0.6, 0.4]))
    True
    """
    if not 0.0 <= damping < 1.0:
        raise ValueError(f"damping must lie in [0, 1), got {damping}.")
    pairs = _as_pairs(pairs)
    a_fs, a_sf = _credited(pairs, tie_weight)
    n = pairs.n_items
    first, second = pairs.first, pairs.second
    # losses[j] = sum_i A[i, j]: what item j hands on, split over the items that beat it
    losses = np.bincount(second, a_fs, n) + np.bincount(first, a_sf, n)
    dangling = losses == 0
    share_fs = np.divide(a_fs, losses[second], out=np.zeros_like(a_fs), where=losses[second] > 0)
    share_sf = np.divide(a_sf, losses[first], out=np.zeros_like(a_sf), where=losses[first] > 0)
    r = np.full(n, 1.0 / n)
    for _iteration in range(max_iter):
        flow = np.bincount(first, share_fs * r[second], n) + np.bincount(second, share_sf * r[first], n)
        new = damping * flow + (damping * r[dangling].sum() + (1.0 - damping) * r.sum()) / n
        new /= new.sum()
        change = float(np.abs(new - r).sum())
        r = new
        if change < tol:
            return r
    warnings.warn(f"PageRank did not converge in {max_iter} iterations (last change {change:.2e} > tol {tol:g}).",
                  ConvergenceWarning, stacklevel=2)
    return r


def fit_rating_link(z: np.ndarray, pairs: Any) -> float:
    """Slope ``a`` of the link ``P(i beats j) = expit(a * (z_i - z_j))``, by maximum likelihood on ``pairs``.

    Ties count as half a win to each side (cross-entropy against 0.5), as in
    the metrics. The slope is searched in ``|a| * max|z_i - z_j| <= 50`` (by
    bounded Brent minimisation of the convex negative log-likelihood), so
    perfectly separated data give a steep but finite link. Returns 0 when
    all compared pairs have equal ``z``.

    Examples
    --------
    >>> p = PairCounts.from_matrix([[0, 3], [1, 0]], items=["a", "b"])
    >>> a = fit_rating_link(np.array([1.0, 0.0]), p)  # expit(a) = 3/4
    >>> round(a, 6) == round(float(np.log(3.0)), 6)
    True
    """
    from scipy.optimize import minimize_scalar

    pairs = _as_pairs(pairs)
    x = np.asarray(z, dtype=np.float64)[pairs.first] - np.asarray(z, dtype=np.float64)[pairs.second]
    win = pairs.wins_first + 0.5 * pairs.ties
    lose = pairs.wins_second + 0.5 * pairs.ties
    scale = float(np.abs(x).max(initial=0.0))
    if scale == 0.0 or not np.isfinite(scale):
        return 0.0
    bound = 50.0 / scale

    def nll(a: float) -> float:
        return float(-(win * log_expit(a * x) + lose * log_expit(-a * x)).sum())

    result = minimize_scalar(nll, bounds=(-bound, bound), method="bounded", options={"xatol": 1e-10 * bound})
    return float(result.x)


def _linked(z: np.ndarray, pairs: PairCounts) -> tuple[Predictor, np.ndarray]:
    slope = fit_rating_link(z, pairs)
    return (lambda left, right: expit(slope * (z[left] - z[right]))), z


def _log_ratings(r: np.ndarray) -> np.ndarray:
    """Log ratings; zero ratings (possible for the eigenvector) are floored at half the smallest positive one."""
    positive = r[r > 0]
    floor = 0.5 * positive.min() if len(positive) else 1.0
    return np.log(np.maximum(r, floor))


def _fit_average_win_rate(train: Comparisons, **_: Any) -> tuple[Predictor, np.ndarray]:
    pairs = train.pair_counts()
    return _linked(average_win_rates(pairs), pairs)


def _fit_eigen(train: Comparisons, **_: Any) -> tuple[Predictor, np.ndarray]:
    pairs = train.pair_counts()
    return _linked(_log_ratings(eigenvector_ratings(pairs)), pairs)


def _fit_pagerank(train: Comparisons, **_: Any) -> tuple[Predictor, np.ndarray]:
    pairs = train.pair_counts()
    return _linked(_log_ratings(pagerank_ratings(pairs)), pairs)


METHODS: dict[str, Callable[..., tuple[Predictor, np.ndarray]]] = {
    "bt": _fit_bt,
    "davidson": _fit_davidson,
    "elo": _fit_elo,
    "trueskill": _fit_trueskill,
    "winrate": _fit_winrate,
    "average_win_rate": _fit_average_win_rate,
    "eigen": _fit_eigen,
    "pagerank": _fit_pagerank,
}


def fit_method(name: str, data: Comparisons, **options: Any) -> tuple[Predictor, np.ndarray]:
    """Fit one rating method; returns (predictor of P(left wins), per-item scores)."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(sorted(METHODS))}.")
    return METHODS[name](data, **options)


def _metric_inputs(prob: Any, outcome: Any, weight: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = np.asarray(prob, dtype=np.float64).reshape(-1)
    o = np.asarray(outcome, dtype=np.float64).reshape(-1)
    w = np.ones(len(p)) if weight is None else np.asarray(weight, dtype=np.float64).reshape(-1)
    if not len(p) == len(o) == len(w):
        raise ValueError(f"prob, outcome and weight must have one entry per row; got {len(p)}, {len(o)} and {len(w)}.")
    return p, o, w


def _log_loss_sum(p: np.ndarray, o: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    p = np.clip(p, 1e-15, 1 - 1e-15)
    loss = -(o * np.log(p) + (1 - o) * np.log(1 - p))
    return float(np.dot(w, loss)), float(w.sum())


def _brier_sum(p: np.ndarray, o: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    return float(np.dot(w, (p - o) ** 2)), float(w.sum())


def _accuracy_sum(p: np.ndarray, o: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    decisive = o != 0.5
    p, o, w = p[decisive], o[decisive], w[decisive]
    coin = np.abs(p - 0.5) <= _HALF_TOL
    credit = np.where(coin, 0.5, ((p > 0.5) == (o > 0.5)).astype(np.float64))
    return float(np.dot(w, credit)), float(w.sum())


def _ece_sum(p: np.ndarray, o: np.ndarray, w: np.ndarray, bins: int) -> tuple[float, float]:
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}.")
    coin = np.abs(p - 0.5) <= _HALF_TOL
    left_favoured = p > 0.5
    favourite_p = np.where(coin, 0.5, np.where(left_favoured, p, 1.0 - p))
    favourite_o = np.where(coin, 0.5, np.where(left_favoured, o, 1.0 - o))  # coin: both sides, half weight each
    # bin on the probability rounded to 12 decimals: p and 1 - p computed from the other side differ by
    # rounding, and a value such as exactly 0.6 (a bin edge) must land in one bin from either side
    which = np.clip(((np.round(favourite_p, 12) - 0.5) * 2.0 * bins).astype(np.int64), 0, bins - 1)
    gap = np.abs(np.bincount(which, w * favourite_p, bins) - np.bincount(which, w * favourite_o, bins))
    return float(gap.sum()), float(w.sum())


def _ratio(total: float, weight: float) -> float:
    return total / weight if weight > 0 else float("nan")


def log_loss(prob: Any, outcome: Any, weight: Any | None = None) -> float:
    """Weighted mean cross-entropy ``-[o log p + (1 - o) log(1 - p)]`` (ties: o = 0.5).

    ``prob`` is the predicted probability that left wins; ``p`` is clipped to
    ``[1e-15, 1 - 1e-15]``. A row of weight ``w`` counts as ``w`` rows.

    Examples
    --------
    >>> round(log_loss([0.8, 0.5], [1.0, 0.5], weight=[3, 1]), 4)  # (3 * -log 0.8 - log 0.5) / 4
    0.3406
    """
    return _ratio(*_log_loss_sum(*_metric_inputs(prob, outcome, weight)))


def brier_score(prob: Any, outcome: Any, weight: Any | None = None) -> float:
    """Weighted mean squared error ``(p - o)^2`` of the predicted probability (ties: o = 0.5).

    Examples
    --------
    >>> round(brier_score([0.8, 0.5], [1.0, 0.0], weight=[3, 1]), 6)
    0.0925
    """
    return _ratio(*_brier_sum(*_metric_inputs(prob, outcome, weight)))


def accuracy(prob: Any, outcome: Any, weight: Any | None = None) -> float:
    """Weighted share of decisive rows whose winner had the higher predicted probability.

    Ties (outcome 0.5) are left out; a prediction of one half (within 1e-12)
    scores half a hit, so that swapping the sides of a row never changes the
    result. A soft outcome above one half counts as a left win. NaN when no
    decisive row has positive weight.

    Examples
    --------
    >>> accuracy([0.9, 0.2, 0.5, 0.7], [1.0, 1.0, 0.0, 0.5], weight=[2, 1, 1, 5])
    0.625
    """
    return _ratio(*_accuracy_sum(*_metric_inputs(prob, outcome, weight)))


def expected_calibration_error(prob: Any, outcome: Any, weight: Any | None = None, bins: int = 10) -> float:
    """Weighted expected calibration error of the favourite's predicted score.

    On every row the side with the higher predicted probability is the
    favourite: its predicted probability ``max(p, 1 - p)`` lies in
    ``[0.5, 1]`` and its observed score is 1 for a win, 0 for a loss, 0.5 for
    a tie (soft outcomes as given). Where ``p`` is one half (within 1e-12)
    both sides count, half each (observed score 0.5). The favourites'
    probabilities are put into ``bins`` equal-width bins on ``[0.5, 1]``;
    the ECE is the sum over bins of ``|sum w * predicted - sum w * observed|``
    divided by the total weight, i.e. the weight-averaged gap between mean
    predicted and observed score per bin. It does not depend on which side
    of a row is called left. NaN when no row has positive weight.

    Examples
    --------
    >>> # favourites 0.9 (won), 0.8 (won), 0.6 (lost): one per bin, gaps 0.1, 0.2, 0.6
    >>> round(expected_calibration_error([0.9, 0.2, 0.6], [1.0, 0.0, 0.0]), 6)
    0.3
    """
    p, o, w = _metric_inputs(prob, outcome, weight)
    return _ratio(*_ece_sum(p, o, w, bins))


def _fold_metrics(p: np.ndarray, o: np.ndarray, w: np.ndarray) -> dict[str, tuple[float, float]]:
    return {"log_loss": _log_loss_sum(p, o, w), "accuracy": _accuracy_sum(p, o, w), "brier": _brier_sum(p, o, w),
            "ece": _ece_sum(p, o, w, 10)}


METRICS = ("log_loss", "accuracy", "brier", "ece")


def _fold_weights(comparisons: Comparisons, folds: int | None, split: Any,
                  seed: int | None) -> tuple[str, int, np.ndarray]:
    """How the rows are dealt to folds: (split kind, number of folds, per-row weight in each fold, shape (n, k))."""
    n = comparisons.n_comparisons
    weight = _row_weights(comparisons)
    if not isinstance(split, str):
        labels = np.asarray(split)
        if labels.ndim != 1 or len(labels) != n:
            raise ValueError(f"a given split needs one fold label per row: {n} rows, got {labels.shape} labels.")
        codes, uniques = pd.factorize(labels, sort=True)
        if (codes < 0).any():
            raise ValueError("the fold labels of the split contain missing values.")
        k = len(uniques)
        if folds is not None and folds != k:
            raise ValueError(f"the split names {k} folds but folds={folds}; leave folds out with a given split.")
        if k < 2:
            raise ValueError(f"the split needs at least 2 folds, got {k}.")
        kind, fold_of = "given", codes
    else:
        k = 5 if folds is None else int(folds)
        if k < 2:
            raise ValueError(f"the number of folds must be at least 2, got {k}.")
        if split not in ("auto", "games", "rows"):
            raise ValueError(f"split must be 'auto', 'games', 'rows' or one fold label per row, got {split!r}.")
        whole = _has_whole_weights(comparisons)
        if split == "games" and not whole:
            text, rows = describe_rows(weight != np.floor(weight))
            raise ValueError(f"a split by games needs whole-number weights (numbers of games); {text} have "
                             f"weights {weight[rows[:3]].tolist()}. Split the rows whole instead.")
        rng = np.random.default_rng(seed)
        if split == "rows" or comparisons.weight is None or not whole:
            kind = "rows"
            if n < k:
                raise ValueError(f"there are {n} rows but {k} folds: use at most {n} folds.")
            fold_of = rng.permutation(n) % k
        else:
            kind = "games"
            games = comparisons.weight.astype(np.int64)
            total = int(games.sum())
            if total < k:
                raise ValueError(f"there are {total} games (the total weight) but {k} folds: "
                                 f"use at most {total} folds.")
            if total <= _GAME_PERMUTATION_LIMIT:
                # the fold of every game as if the rows were written out one per game, in order
                fold_of_game = rng.permutation(total) % k
                row_of_game = np.repeat(np.arange(n), games)
                counts = np.bincount(row_of_game * k + fold_of_game, minlength=n * k).reshape(n, k)
            else:
                counts = rng.multinomial(games, np.full(k, 1.0 / k))
            return kind, k, counts.astype(np.float64)
    dealt = np.zeros((n, k))
    dealt[np.arange(n), fold_of] = weight
    return kind, k, dealt


def _reweighted(comparisons: Comparisons, weight: np.ndarray) -> Comparisons:
    rows = np.flatnonzero(weight > 0)
    taken = comparisons.take(rows)
    return dataclasses.replace(taken, weight=weight[rows])


def compare_methods(
    data: Any,
    methods: list[str] | tuple[str, ...] | None = None,
    folds: int | None = None,
    seed: int | None = 0,
    elo_k: float = 4.0,
    split: Any = "auto",
) -> pd.DataFrame:
    """k-fold held-out log-loss, accuracy, Brier score and ECE of several rating methods.

    Each method is fitted on all folds but one and scored on the held-out
    one. Row weights are frequencies: a row of weight ``w`` is ``w``
    comparisons in every fit and every metric.

    Parameters
    ----------
    data : Comparisons, DataFrame or path
    methods : sequence of str, optional
        Names from :data:`METHODS`; default ``bt, davidson, elo, trueskill,
        winrate``. A tie model (``davidson``) on data without ties, and
        ``trueskill`` on weights that are not whole numbers, are skipped with
        a note instead of failing. Where the training folds of a tie model
        hold no ties, its tie parameter's estimate is 0 and the bt fit is used
        (noted).
    folds : int, optional
        Number of folds (default 5).
    seed : int or None
        Seed of the random split.
    elo_k : float
        K factor of the ``elo`` method.
    split : {"auto", "games", "rows"} or array-like
        How rows are dealt to folds. ``"games"``: a row of whole-number weight
        ``w`` is ``w`` games, each dealt to a fold as if the rows had been
        written out one per game in their order (so weighted rows and their
        expansion get the same folds for the same seed). ``"rows"``: each row
        goes whole to one fold. ``"auto"`` (default): games when every weight
        is a whole number, else rows (unweighted data: both are the same).
        An array gives the fold label of every row (rows kept whole); then
        ``folds`` must be left out or equal the number of labels.

    Returns
    -------
    pandas.DataFrame
        One row per method: ``method``, then for each metric its mean over
        folds (weighted by the fold's total weight, decisive weight for
        accuracy, so that log-loss, Brier and accuracy equal the pooled
        held-out values) and the standard deviation of the per-fold values
        (``log_loss``, ``log_loss_sd``, ``accuracy``, ``accuracy_sd``,
        ``brier``, ``brier_sd``, ``ece``, ``ece_sd``), and ``note`` (why a
        method was skipped or changed; empty otherwise). ``attrs`` holds
        ``split`` (``"games"``, ``"rows"`` or ``"given"``), ``folds`` and
        ``notes`` (the notes as text lines).

    Examples
    --------
    >>> import bradley
    >>> data, _ = bradley.simulate_bt(10, 2000, seed=0)
    >>> table = compare_methods(data, methods=["bt", "winrate"], folds=3)
    >>> list(table["method"]), table.attrs["split"]
    (['bt', 'winrate'], 'rows')
    """
    comparisons = as_comparisons(data)
    methods = list(DEFAULT_METHODS if methods is None else methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method {unknown[0]!r}; choose from {', '.join(sorted(METHODS))}.")
    kind, k, dealt = _fold_weights(comparisons, folds, split, seed)
    weight = _row_weights(comparisons)
    has_ties = bool(np.any((comparisons.outcome == 0.5) & (weight > 0)))
    whole = _has_whole_weights(comparisons)
    skipped: dict[str, str] = {}
    for name in methods:
        if name in TIE_METHODS and not has_ties:
            skipped[name] = f"skipped: no ties in the data ({name} models ties; without them it is bt)"
        elif name == "trueskill" and not whole:
            skipped[name] = "skipped: fractional weights (trueskill needs whole numbers of games)"
        elif (name in SEQUENTIAL_UPDATE_LIMIT and comparisons.weight is not None
              and _sequential_updates(comparisons) > SEQUENTIAL_UPDATE_LIMIT[name]):
            skipped[name] = (f"skipped: the weights add up to more than {SEQUENTIAL_UPDATE_LIMIT[name]:,} games, "
                             f"and {name} updates once per game")
    folds_data = []
    for j in range(k):
        test_weight = dealt[:, j]
        test = np.flatnonzero(test_weight > 0)
        train = _reweighted(comparisons, weight - test_weight)
        train_ties = bool(np.any(train.outcome == 0.5))
        folds_data.append((train, test, test_weight[test], train_ties))
    records, notes = [], {}
    for name in methods:
        if name in skipped:
            continue
        fallback = []
        for j, (train, test, test_weight, train_ties) in enumerate(folds_data):
            fit_name = name
            if name in TIE_METHODS and not train_ties:
                fit_name = "bt"
                fallback.append(j + 1)
            predict, _ = fit_method(fit_name, train, elo_k=elo_k)
            # score every row as (lower code, higher code): the metrics are symmetric in the sides, and this makes
            # them so to the last bit too (1 - p loses digits when p is near 1, e.g. 1 - (1 - 9.1e-15))
            left, right, outcome = comparisons.left[test], comparisons.right[test], comparisons.outcome[test]
            swap = left > right
            prob = predict(np.where(swap, right, left), np.where(swap, left, right))
            sums = _fold_metrics(prob, np.where(swap, 1.0 - outcome, outcome), test_weight)
            record: dict[str, Any] = {"method": name, "fold": j}
            for metric, (total, denominator) in sums.items():
                record[metric] = _ratio(total, denominator)
                record[metric + "_weight"] = denominator
            records.append(record)
        if fallback:
            notes[name] = (f"no ties to train on in fold(s) {', '.join(map(str, fallback))}: tie parameter 0 "
                           "there (the bt fit)")
    per_fold = pd.DataFrame(records)
    rows = []
    for name in methods:
        row: dict[str, Any] = {"method": name}
        part = per_fold[per_fold["method"] == name] if len(per_fold) else per_fold
        for metric in METRICS:
            if name in skipped:
                row[metric], row[metric + "_sd"] = float("nan"), float("nan")
                continue
            values, weights = part[metric].to_numpy(float), part[metric + "_weight"].to_numpy(float)
            ok = weights > 0
            row[metric] = float(np.dot(values[ok], weights[ok]) / weights[ok].sum()) if ok.any() else float("nan")
            row[metric + "_sd"] = float(np.std(values[ok], ddof=1)) if ok.sum() > 1 else float("nan")
        row["note"] = skipped.get(name, notes.get(name, ""))
        rows.append(row)
    table = pd.DataFrame(rows, columns=["method"] + [c for m in METRICS for c in (m, m + "_sd")] + ["note"])
    table.attrs.update(split=kind, folds=k, notes=[f"{r['method']}: {r['note']}" for r in rows if r["note"]])
    return table


def elo_order_spread(data: Any, k: float = 4.0, shuffles: int = 20, seed: int | None = 0) -> pd.DataFrame:
    """How much online Elo depends on the order of the rows: ratings over random orders.

    Returns per item the rating in the data's order and the min, max and
    standard deviation over ``shuffles`` random orders. Bradley-Terry has no
    such dependence.
    """
    comparisons = as_comparisons(data)
    rng = np.random.default_rng(seed)
    given = elo_ratings(comparisons, k)
    n = comparisons.n_comparisons
    shuffled = np.array([elo_ratings(comparisons, k, rng.permutation(n)) for _ in range(shuffles)])
    return pd.DataFrame({"item": comparisons.items, "elo": given, "min": shuffled.min(0), "max": shuffled.max(0),
                         "sd": shuffled.std(0)})


def rank_correlation(scores_a: pd.Series, scores_b: pd.Series) -> dict[str, float]:
    """Kendall tau and Spearman rho between two leaderboards (Series of scores indexed by item).

    Only items present in both are compared.

    Examples
    --------
    >>> a = pd.Series([3.0, 2.0, 1.0], index=["x", "y", "z"])
    >>> rank_correlation(a, a[::-1])
    {'kendall_tau': 1.0, 'spearman_rho': 1.0, 'n_items': 3}
    """
    from scipy import stats  # lazily: scipy.stats is slow to import

    common = scores_a.index.intersection(scores_b.index)
    a, b = scores_a.loc[common].to_numpy(float), scores_b.loc[common].to_numpy(float)
    return {
        "kendall_tau": float(stats.kendalltau(a, b).statistic),
        "spearman_rho": float(stats.spearmanr(a, b).statistic),
        "n_items": int(len(common)),
    }
