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

Metrics on each held-out fold: log-loss (cross-entropy against the outcome,
ties as 0.5), accuracy on decisive rows, and expected calibration error (ECE,
10 equal-width bins on decisive rows).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit, logit

from bradley.data import Comparisons
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
        return stats.norm.cdf((mu[left] - mu[right]) / np.sqrt(2 * beta**2 + sigma[left] ** 2 + sigma[right] ** 2))

    return predict, mu


def _fit_winrate(train: Comparisons, **_: Any) -> tuple[Predictor, np.ndarray]:
    totals = train.pair_counts().item_totals()
    rate = (totals["wins"] + 0.5 * totals["ties"] + 1.0) / (totals["comparisons"] + 2.0)
    scores = logit(rate.to_numpy())
    return (lambda left, right: expit(scores[left] - scores[right])), scores


METHODS: dict[str, Callable[..., tuple[Predictor, np.ndarray]]] = {
    "bt": _fit_bt,
    "davidson": _fit_davidson,
    "elo": _fit_elo,
    "trueskill": _fit_trueskill,
    "winrate": _fit_winrate,
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
    common = scores_a.index.intersection(scores_b.index)
    a, b = scores_a.loc[common].to_numpy(float), scores_b.loc[common].to_numpy(float)
    return {
        "kendall_tau": float(stats.kendalltau(a, b).statistic),
        "spearman_rho": float(stats.spearmanr(a, b).statistic),
        "n_items": int(len(common)),
    }
