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

Metrics on each held-out fold: log-loss (cross-entropy against the outcome,
ties as 0.5), accuracy on decisive rows, and expected calibration error (ECE,
10 equal-width bins on decisive rows).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, log_expit, logit, ndtr

from bradley.data import Comparisons, PairCounts
from bradley.errors import ConvergenceWarning
from bradley.models import BradleyTerry, Davidson
from bradley.models.base import as_comparisons
from bradley.scales import ELO_SCALE

__all__ = [
    "METHODS",
    "fit_method",
    "log_loss",
    "accuracy",
    "expected_calibration_error",
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


def _subset(data: Comparisons, rows: np.ndarray) -> Comparisons:
    return data.take(rows)


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


def elo_ratings(data: Comparisons, k: float = 4.0, order: np.ndarray | None = None) -> np.ndarray:
    """Online Elo ratings after one pass over the rows (in ``order`` if given).

    Sequential by nature (each update uses the ratings so far), so this is a
    plain loop over rows.
    """
    ratings = np.full(len(data.items), 1000.0)
    rows = np.arange(data.n_comparisons) if order is None else order
    left, right, outcome = data.left[rows].tolist(), data.right[rows].tolist(), data.outcome[rows].tolist()
    for a, b, o in zip(left, right, outcome):
        expected = 1.0 / (1.0 + 10.0 ** ((ratings[b] - ratings[a]) / 400.0))
        delta = k * (o - expected)
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
    env = trueskill.TrueSkill(draw_probability=float(np.mean(train.outcome == 0.5)) or 1e-6)
    ratings = [env.create_rating() for _ in range(len(train.items))]
    for a, b, o in zip(train.left.tolist(), train.right.tolist(), train.outcome.tolist()):
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
    summed = np.bincount(pairs.first[met], rate_first[met], n) + np.bincount(pairs.second[met], 1.0 - rate_first[met], n)
    return np.divide(summed, opponents, out=np.zeros(n), where=opponents > 0)


def eigenvector_ratings(pairs: Any, *, tie_weight: float = 0.5, tol: float = 1e-10, max_iter: int = 10_000) -> np.ndarray:
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
    for iteration in range(1, max_iter + 1):
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
    for iteration in range(1, max_iter + 1):
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


def _linked(z: np.ndarray, train: Comparisons) -> tuple[Predictor, np.ndarray]:
    slope = fit_rating_link(z, train.pair_counts())
    return (lambda left, right: expit(slope * (z[left] - z[right]))), z


def _log_ratings(r: np.ndarray) -> np.ndarray:
    """Log ratings; zero ratings (possible for the eigenvector) are floored at half the smallest positive one."""
    positive = r[r > 0]
    floor = 0.5 * positive.min() if len(positive) else 1.0
    return np.log(np.maximum(r, floor))


def _fit_average_win_rate(train: Comparisons, **_: Any) -> tuple[Predictor, np.ndarray]:
    return _linked(average_win_rates(train.pair_counts()), train)


def _fit_eigen(train: Comparisons, **_: Any) -> tuple[Predictor, np.ndarray]:
    return _linked(_log_ratings(eigenvector_ratings(train.pair_counts())), train)


def _fit_pagerank(train: Comparisons, **_: Any) -> tuple[Predictor, np.ndarray]:
    return _linked(_log_ratings(pagerank_ratings(train.pair_counts())), train)


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
        raise ValueError(f"unknown method {name!r}; choose from {sorted(METHODS)}.")
    return METHODS[name](data, **options)


def log_loss(prob: np.ndarray, outcome: np.ndarray) -> float:
    """Mean cross-entropy ``-[o log p + (1 - o) log(1 - p)]`` (ties: o = 0.5)."""
    p = np.clip(prob, 1e-15, 1 - 1e-15)
    return float(-np.mean(outcome * np.log(p) + (1 - outcome) * np.log1p(-p)))


def accuracy(prob: np.ndarray, outcome: np.ndarray) -> float:
    """Share of decisive rows whose winner had the higher predicted probability."""
    decisive = outcome != 0.5
    if not decisive.any():
        return float("nan")
    return float(np.mean((prob[decisive] > 0.5) == (outcome[decisive] > 0.5)))


def expected_calibration_error(prob: np.ndarray, outcome: np.ndarray, bins: int = 10) -> float:
    """ECE on decisive rows: bin-size-weighted ``|mean predicted - observed frequency|``."""
    decisive = outcome != 0.5
    p, o = prob[decisive], outcome[decisive]
    if len(p) == 0:
        return float("nan")
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    count = np.bincount(which, minlength=bins)
    gap = np.abs(np.bincount(which, p, bins) - np.bincount(which, o, bins))
    return float(gap.sum() / count.sum())


def compare_methods(
    data: Any,
    methods: list[str] | tuple[str, ...] = ("bt", "davidson", "elo", "trueskill", "winrate"),
    folds: int = 5,
    seed: int | None = 0,
    elo_k: float = 4.0,
) -> pd.DataFrame:
    """k-fold held-out log-loss, accuracy and ECE of several rating methods.

    Rows are shuffled (``seed``) into ``folds`` folds; each method is fitted on
    the other folds and scored on the held-out one. Returns one row per method
    with the mean and standard deviation over folds.

    Examples
    --------
    >>> import bradley
    >>> data, _ = bradley.simulate_bt(10, 2000, seed=0)
    >>> table = compare_methods(data, methods=["bt", "winrate"], folds=3)
    >>> list(table["method"])
    ['bt', 'winrate']
    """
    comparisons = as_comparisons(data)
    if folds < 2:
        raise ValueError(f"folds must be at least 2, got {folds}.")
    rng = np.random.default_rng(seed)
    fold_of = rng.permutation(comparisons.n_comparisons) % folds
    records = []
    for name in methods:
        for k in range(folds):
            train = _subset(comparisons, np.flatnonzero(fold_of != k))
            test = np.flatnonzero(fold_of == k)
            predict, _ = fit_method(name, train, elo_k=elo_k)
            prob = predict(comparisons.left[test], comparisons.right[test])
            outcome = comparisons.outcome[test]
            records.append({"method": name, "fold": k, "log_loss": log_loss(prob, outcome),
                            "accuracy": accuracy(prob, outcome), "ece": expected_calibration_error(prob, outcome)})
    per_fold = pd.DataFrame(records)
    summary = per_fold.groupby("method", sort=False).agg(
        log_loss=("log_loss", "mean"), log_loss_sd=("log_loss", "std"),
        accuracy=("accuracy", "mean"), accuracy_sd=("accuracy", "std"),
        ece=("ece", "mean"), ece_sd=("ece", "std"),
    )
    return summary.reset_index()


def elo_order_spread(data: Any, k: float = 4.0, shuffles: int = 20, seed: int | None = 0) -> pd.DataFrame:
    """How much online Elo depends on the order of the rows: ratings over random orders.

    Returns per item the rating in the data's order and the min, max and
    standard deviation over ``shuffles`` random orders. Bradley-Terry has no
    such dependence.
    """
    comparisons = as_comparisons(data)
    rng = np.random.default_rng(seed)
    given = elo_ratings(comparisons, k)
    shuffled = np.array([elo_ratings(comparisons, k, rng.permutation(comparisons.n_comparisons)) for _ in range(shuffles)])
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
