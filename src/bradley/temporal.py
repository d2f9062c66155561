"""Temporal evaluation: fit on the past, predict the next period, roll the origin forward.

The rows are cut into periods (each distinct time stamp, calendar days /
weeks / months, or blocks of rows). For every origin ``k`` (from
``min_train_periods`` on), each method sees only the rows of periods before
``k`` and predicts the rows of period ``k``; then the origin moves one period
on. Batch methods (BradleyTerry, Davidson, DynamicBT, any callable) are refit
from scratch at each origin; online raters (Elo, Glicko-2, Weng-Lin, any
object with ``update``) carry their state forward and are updated with a
period's games only after that period has been predicted (Glicko-2: one
rating period per period; Elo and Weng-Lin: game by game).

Scores, pooled over all predicted rows (row weights as frequencies):

* on the expected score of the left side (P(win) + P(draw) / 2): log-loss,
  Brier score, accuracy on decisive games, ECE
  (:func:`bradley.evaluate.log_loss`, ``brier_score``, ``accuracy``,
  ``expected_calibration_error``);
* win-draw-loss (when the data contain draws, or ``draws=True``): the
  three-class log-loss ``-log P(observed result)`` and the three-class Brier
  score ``sum_c (P(c) - 1[c observed])^2``. Draws are predicted, never
  dropped: a method without a draw model gets its draw probability from a
  Davidson-style link on its own logit ``d = logit(expected score)``,
  ``P(win), P(draw), P(loss)`` proportional to ``exp(d / 2), nu, exp(-d / 2)``,
  with ``nu`` fitted by maximum likelihood on that method's own earlier
  out-of-sample predictions only once they cover at least ``min_link_games``
  games (default 100) with positive weight, a draw among them. Until then
  ``nu = 2 r / (1 - r)``, the link's value at ``d = 0``, from the draw rate of
  the training rows smoothed as ``r = (draws + 1/2) / (games + 1)`` (weighted),
  so that a first draw never gets probability 0 and a ``nu`` fitted on a
  handful of games does not handicap the method. The Davidson model predicts
  its own three probabilities. The table's ``draw_model`` says ``"own"``,
  ``"link"`` or ``"mixed"`` (own at some origins, the link at others).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import logit

from bradley.data import Comparisons
from bradley.errors import ComparisonDataError
from bradley.evaluate import accuracy, brier_score, expected_calibration_error, log_loss
from bradley.models.base import as_comparisons
from bradley.raters import EloRater, Glicko2Rater, WengLinRater

__all__ = ["TemporalSplit", "period_labels", "rolling_origin_splits", "davidson_draw_link", "fit_draw_link",
           "temporal_evaluation", "TemporalEvaluation", "TEMPORAL_METHODS"]

#: Built-in method names of :func:`temporal_evaluation`.
TEMPORAL_METHODS = ("bt", "davidson", "elo", "glicko2", "weng_lin", "dynamic_bt")
_CALENDAR = {"day": "D", "week": "W", "month": "M"}
_CLIP = 1e-12


@dataclasses.dataclass(frozen=True)
class TemporalSplit:
    """One origin: the period predicted, the past rows used to fit, and the rows predicted (row indices)."""

    period: Any
    train: np.ndarray
    test: np.ndarray


def period_labels(data: Any, period: Any = "time") -> np.ndarray:
    """Per-row period label (sortable) of ``data``.

    ``period`` is ``"time"`` (each distinct ``data.time`` value), ``"day"``,
    ``"week"`` or ``"month"`` (calendar periods of ``data.time``), an int
    ``n`` (blocks of ``n`` rows in time order, or row order without time), or
    an array of per-row labels.

    Examples
    --------
    >>> data = Comparisons.from_arrays(["a", "b", "a"], ["b", "c", "c"], [1, 0, 1], time=[3, 1, 2])
    >>> period_labels(data, 2).tolist()  # rows in time order 1, 2, 0: blocks of two
    [1, 0, 0]
    """
    data = as_comparisons(data)
    n = len(data)
    if isinstance(period, str):
        if data.time is None:
            raise ComparisonDataError(f"period={period!r} needs a time column in the data (Comparisons.time).")
        if period == "time":
            return np.asarray(data.time)
        if period not in _CALENDAR:
            raise ValueError(f"unknown period {period!r}: use 'time', 'day', 'week', 'month', an int or labels.")
        stamps = pd.to_datetime(pd.Series(np.asarray(data.time)))
        return np.asarray(stamps.dt.to_period(_CALENDAR[period]).dt.start_time.to_numpy())
    if isinstance(period, (int, np.integer)) and not isinstance(period, bool):
        if period < 1:
            raise ValueError(f"a block period needs a positive number of rows, got {period}.")
        order = _time_order(data)
        labels = np.empty(n, dtype=np.int64)
        labels[order] = np.arange(n) // int(period)
        return labels
    labels = np.asarray(period)
    if labels.shape != (n,):
        raise ValueError(f"period labels must have one entry per row ({n}), got shape {labels.shape}.")
    return labels


def _time_order(data: Comparisons) -> np.ndarray:
    if data.time is None:
        return np.arange(len(data))
    return np.argsort(np.asarray(data.time), kind="stable")


def rolling_origin_splits(data: Any, period: Any = "time", *, min_train_periods: int = 1) -> list[TemporalSplit]:
    """Rolling-origin splits: for each period after the first ``min_train_periods``, (all earlier rows, its rows).

    Row indices within a split are in time order (ties in time: row order),
    which is the order online raters see them.

    Examples
    --------
    >>> data = Comparisons.from_arrays(["a", "b", "a", "b"], ["b", "c", "c", "a"], [1, 0, 1, 1], time=[1, 1, 2, 3])
    >>> [(s.period, s.train.tolist(), s.test.tolist()) for s in rolling_origin_splits(data)]
    [(2, [0, 1], [2]), (3, [0, 1, 2], [3])]
    """
    data = as_comparisons(data)
    labels = period_labels(data, period)
    if min_train_periods < 1:
        raise ValueError(f"min_train_periods must be at least 1, got {min_train_periods}.")
    order = _time_order(data)
    uniques, codes = np.unique(labels, return_inverse=True)
    codes = codes.reshape(-1)
    order = order[np.argsort(codes[order], kind="stable")]  # by period, then time, then row
    sorted_codes = codes[order]
    bounds = np.searchsorted(sorted_codes, np.arange(len(uniques) + 1))
    return [TemporalSplit(uniques[k].item() if hasattr(uniques[k], "item") else uniques[k],
                          order[:bounds[k]], order[bounds[k]:bounds[k + 1]])
            for k in range(min_train_periods, len(uniques))]


def davidson_draw_link(expected: Any, nu: float) -> np.ndarray:
    """Win/draw/loss probabilities (n, 3) from an expected score through a Davidson-style link.

    With ``d = logit(expected)``, the probabilities are proportional to
    ``exp(d / 2)``, ``nu`` and ``exp(-d / 2)`` (computed in the log domain);
    ``nu = 0`` gives ``(expected, 0, 1 - expected)``.

    Examples
    --------
    >>> davidson_draw_link([0.5], 1.0).round(4).tolist()  # even game: 1 : 1 : 1
    [[0.3333, 0.3333, 0.3333]]
    """
    if not np.isfinite(nu) or nu < 0:
        raise ValueError(f"nu must be finite and non-negative, got {nu}.")
    e = np.clip(np.asarray(expected, dtype=np.float64).reshape(-1), _CLIP, 1.0 - _CLIP)
    half = 0.5 * logit(e)
    log_nu = np.log(nu) if nu > 0 else -np.inf
    log_terms = np.stack([half, np.full_like(half, log_nu), -half], axis=1)
    top = log_terms.max(axis=1, keepdims=True)
    log_norm = top + np.log(np.exp(log_terms - top).sum(axis=1, keepdims=True))
    return np.asarray(np.exp(log_terms - log_norm))


def _classes(outcome: np.ndarray) -> np.ndarray:
    """0 = left won, 1 = draw, 2 = right won (soft outcomes by side of one half)."""
    return np.where(outcome > 0.5, 0, np.where(outcome < 0.5, 2, 1))


def fit_draw_link(expected: Any, outcome: Any, weight: Any | None = None) -> float:
    """Maximum-likelihood ``nu`` of :func:`davidson_draw_link` for predictions ``expected`` and outcomes.

    Searched on ``log nu`` in [-20, 5] (bounded Brent); 0 when there are no draws.

    Examples
    --------
    >>> nu = fit_draw_link([0.5] * 4, [1.0, 0.5, 0.0, 0.5])  # even games, half draws: nu / (2 + nu) = 1/2
    >>> round(nu, 4)
    2.0
    """
    from scipy.optimize import minimize_scalar

    e = np.asarray(expected, dtype=np.float64).reshape(-1)
    cls = _classes(np.asarray(outcome, dtype=np.float64).reshape(-1))
    w = np.ones(len(e)) if weight is None else np.asarray(weight, dtype=np.float64).reshape(-1)
    if not np.any((cls == 1) & (w > 0)):
        return 0.0
    rows = np.arange(len(e))

    def nll(log_nu: float) -> float:
        p = davidson_draw_link(e, float(np.exp(log_nu)))
        return -float(np.sum(w * np.log(np.maximum(p[rows, cls], 1e-300))))

    res = minimize_scalar(nll, bounds=(-20.0, 5.0), method="bounded", options={"xatol": 1e-8})
    return float(np.exp(res.x))


# ---------------------------------------------------------------- methods

Predictor = Callable[[Comparisons], np.ndarray]


def _test_order(test: Comparisons) -> np.ndarray:
    return np.ones(len(test)) if test.order is None else np.asarray(test.order, dtype=np.float64)


def _batch_factory(name: str, order_effect: bool, prior: float, draws: bool,
                   dynamic_w2: float) -> Callable[[Comparisons], Predictor]:
    from bradley.models import BradleyTerry, Davidson
    from bradley.models.pairwise import PairwiseModel

    if name == "bt":
        def fit_bt(train: Comparisons) -> Predictor:
            if order_effect:
                model = PairwiseModel(family="bt", order_effect=True, prior=prior).fit(train)
                return lambda test: model.predict_proba(test.left, test.right, _test_order(test))[:, 0]
            bt = BradleyTerry(prior=prior).fit(train)
            return lambda test: bt.predict_proba(test.left, test.right)
        return fit_bt
    if name == "davidson":
        def fit_davidson(train: Comparisons) -> Predictor:
            model = Davidson(order_effect=order_effect, prior=prior).fit(train)
            return lambda test: model.predict_proba(test.left, test.right, _test_order(test))
        return fit_davidson
    if name == "dynamic_bt":
        try:
            from bradley.models.dynamic import DynamicBT  # type: ignore[import-not-found,unused-ignore]
        except ImportError as exc:
            raise ImportError("the 'dynamic_bt' method needs bradley.models.dynamic.DynamicBT.") from exc

        def fit_dynamic(train: Comparisons) -> Predictor:
            model = DynamicBT(w2=dynamic_w2, draws="davidson" if draws else None, first_mover=order_effect).fit(train)
            return lambda test: np.asarray(model.predict_proba(test.left, test.right, test.time,
                                                               order=_test_order(test)))
        return fit_dynamic
    raise ValueError(f"unknown method {name!r}: use one of {TEMPORAL_METHODS}, a rater or a callable.")


def _resolve(methods: Any, order_effect: bool, prior: float, elo_k: float, draws: bool,
             dynamic_w2: float) -> dict[str, Any]:
    if isinstance(methods, Mapping):
        items = list(methods.items())
    else:
        items = [(m if isinstance(m, str) else type(m).__name__, m) for m in methods]
    out: dict[str, Any] = {}
    for name, spec in items:
        if isinstance(spec, str):
            if spec == "elo":
                spec = EloRater(k=elo_k)
            elif spec == "glicko2":
                spec = Glicko2Rater()
            elif spec == "weng_lin":
                spec = WengLinRater()
            else:
                spec = _batch_factory(spec, order_effect, prior, draws, dynamic_w2)
        elif all(hasattr(spec, a) for a in ("reset", "update", "predict_proba")):
            spec = copy.deepcopy(spec)
        elif not callable(spec):
            raise TypeError(f"method {name!r}: pass a name, an online rater (update/predict_proba) or a callable "
                            "train -> (test -> probabilities).")
        out[str(name)] = spec
    return out


def _home_points(train: Comparisons, scale: float) -> float:
    """Rating points of the order advantage matching the past mean score of the side that had it."""
    side = _test_order(train)
    mask = side != 0
    if not mask.any():
        return 0.0
    w = np.ones(len(train)) if train.weight is None else train.weight
    score = np.where(side[mask] > 0, train.outcome[mask], 1.0 - train.outcome[mask])
    s = float(np.clip(np.average(score, weights=w[mask]) if w[mask].sum() > 0 else 0.5, 0.01, 0.99))
    return float(scale * np.log10(s / (1.0 - s)))


def _as_three(pred: Any, n: int) -> tuple[np.ndarray, bool]:
    """(predictions, has_draw_model): (n,) expected scores or (n, 3) win/draw/loss."""
    arr = np.asarray(pred, dtype=np.float64)
    if arr.ndim == 2 and arr.shape == (n, 3):
        return arr, True
    arr = arr.reshape(-1)
    if arr.shape != (n,):
        raise ValueError(f"a method returned predictions of shape {np.shape(pred)} for {n} rows.")
    return arr, False


@dataclasses.dataclass
class TemporalEvaluation:
    """Result of :func:`temporal_evaluation`.

    Attributes
    ----------
    table : DataFrame
        One row per method: games and periods predicted, log_loss, brier,
        accuracy, ece (expected score) and, with draws, log_loss_wdl,
        brier_wdl, mean predicted and observed draw rate, and how the draw
        probability was obtained (``draw_model``).
    predictions : DataFrame
        One row per (method, predicted game): row index, period, p_win,
        p_draw, p_loss (left's view), expected score, outcome, weight.
    splits : list of TemporalSplit
    """

    table: pd.DataFrame
    predictions: pd.DataFrame
    splits: list[TemporalSplit]

    def summary(self) -> pd.DataFrame:
        """The per-method table, best (lowest) held-out log-loss first."""
        key = "log_loss_wdl" if "log_loss_wdl" in self.table else "log_loss"
        return self.table.sort_values(key, kind="stable").reset_index(drop=True)

    def by_period(self) -> pd.DataFrame:
        """Mean expected-score log-loss per (method, period): how each method does over time."""
        frame = self.predictions
        e = np.clip(frame["expected"].to_numpy(), 1e-15, 1 - 1e-15)
        o = frame["outcome"].to_numpy()
        loss = -(o * np.log(e) + (1 - o) * np.log1p(-e)) * frame["weight"].to_numpy()
        grouped = frame.assign(_loss=loss).groupby(["method", "period"], sort=True)
        out = (grouped["_loss"].sum() / grouped["weight"].sum()).rename("log_loss").reset_index()
        return out

    def losses(self, metric: str | None = None) -> pd.DataFrame:
        """Per-game loss: one row per (method, predicted game) with row, period, weight and ``loss``.

        ``metric`` is ``"log_loss_wdl"`` (three-class ``-log P(observed result)``,
        the default when draws were scored), ``"log_loss"`` (expected score of
        left, the default otherwise) or ``"brier_wdl"``.
        """
        metric = metric or ("log_loss_wdl" if "log_loss_wdl" in self.table else "log_loss")
        frame = self.predictions
        o = frame["outcome"].to_numpy(dtype=np.float64)
        if metric == "log_loss":
            e = np.clip(frame["expected"].to_numpy(), 1e-15, 1 - 1e-15)
            loss = -(o * np.log(e) + (1 - o) * np.log1p(-e))
        elif metric in ("log_loss_wdl", "brier_wdl"):
            probs = frame[["p_win", "p_draw", "p_loss"]].to_numpy(dtype=np.float64)
            cls = _classes(o)
            if metric == "log_loss_wdl":
                loss = -np.log(np.clip(probs[np.arange(len(cls)), cls], 1e-15, 1.0))
            else:
                loss = ((probs - np.eye(3)[cls]) ** 2).sum(axis=1)
        else:
            raise ValueError(f"unknown metric {metric!r}: use 'log_loss', 'log_loss_wdl' or 'brier_wdl'.")
        return frame[["method", "row", "period", "weight"]].assign(loss=loss)

    def compare(self, baseline: str, metric: str | None = None) -> pd.DataFrame:
        """Paired comparison of every method with ``baseline`` on the same predicted games.

        Columns: ``method``, ``loss`` (weighted mean) and its ``se``,
        ``diff`` = mean of (method's loss - baseline's loss) per game (negative:
        better than the baseline), ``se_diff`` (games as independent, weighted),
        ``se_diff_period`` (cluster-robust over periods: games of one period
        share the fitted state) and ``z`` = diff / max(se_diff, se_diff_period).

        Examples
        --------
        >>> rng = np.random.default_rng(0)
        >>> left = rng.integers(0, 6, 300); right = (left + rng.integers(1, 6, 300)) % 6
        >>> y = (rng.random(300) < 1 / (1 + np.exp(-(left - right) / 2.0))).astype(float)
        >>> data = Comparisons.from_codes(left, right, y, items=list("abcdef"), time=np.arange(300) // 50)
        >>> table = temporal_evaluation(data, ["bt", "elo"]).compare("elo")
        >>> table.columns.tolist()
        ['method', 'loss', 'se', 'diff', 'se_diff', 'se_diff_period', 'z']
        >>> float(table.set_index("method").loc["elo", "diff"])
        0.0
        """
        per = self.losses(metric)
        wide = per.pivot(index="row", columns="method", values="loss")
        if baseline not in wide:
            raise ValueError(f"baseline {baseline!r} is not among the methods {wide.columns.tolist()}.")
        first = per.drop_duplicates("row").set_index("row").loc[wide.index]
        w = first["weight"].to_numpy(dtype=np.float64)
        period_codes = pd.factorize(first["period"])[0]
        n_p = int(period_codes.max()) + 1
        wsum = w.sum()

        def mean_se(x: np.ndarray) -> tuple[float, float, float]:
            m = float(np.sum(w * x) / wsum)
            r = w * (x - m)
            n = len(x)
            se = float(np.sqrt(n / max(n - 1, 1) * np.sum(r**2)) / wsum)
            by_p = np.bincount(period_codes, r, n_p)
            se_p = float(np.sqrt(n_p / max(n_p - 1, 1) * np.sum(by_p**2)) / wsum)
            return m, se, se_p

        rows = []
        base = wide[baseline].to_numpy()
        for name in dict.fromkeys(per["method"]):
            x = wide[name].to_numpy()
            m, se, _ = mean_se(x)
            d, se_d, se_dp = mean_se(x - base)
            scale = max(se_d, se_dp)
            rows.append({"method": name, "loss": m, "se": se, "diff": d, "se_diff": se_d, "se_diff_period": se_dp,
                         "z": d / scale if scale > 0 else 0.0})
        return pd.DataFrame(rows)


def temporal_evaluation(
    data: Any,
    methods: Sequence[Any] | Mapping[str, Any] = ("bt", "davidson", "elo", "glicko2", "weng_lin"),
    *,
    period: Any = "time",
    min_train_periods: int = 1,
    draws: bool | None = None,
    order_effect: bool = False,
    prior: float = 10.0,
    elo_k: float = 20.0,
    dynamic_w2: float = 0.01,
    min_link_games: int = 100,
) -> TemporalEvaluation:
    """Rolling-origin evaluation of rating methods: fit on the past, predict the next period.

    Parameters
    ----------
    data : Comparisons, DataFrame or path
        Comparisons with a ``time`` column (or ``period`` as row blocks or labels).
    methods : sequence or mapping
        Names (``"bt"``, ``"davidson"``, ``"elo"``, ``"glicko2"``,
        ``"weng_lin"``, ``"dynamic_bt"``), online raters (objects with
        ``reset(items)``/``update(data)``/``predict_proba(left, right, order)``, copied before
        use, e.g. ``EloRater(k=32)``), or callables ``fit(train) -> predict``
        where ``predict(test)`` returns the expected score of left (n,) or
        win/draw/loss probabilities (n, 3). A mapping gives the table's names.
    period : str, int or array
        See :func:`period_labels`.
    min_train_periods : int
        Periods used only for fitting before the first prediction.
    draws : bool or None
        Score win/draw/loss (three-class) too; None: when the data have draws.
    order_effect : bool
        Model the first-position (home / white) advantage from the data's
        ``order`` indicator (None: left had it): BT and Davidson fit one,
        Elo and Glicko-2 get at each origin the rating points matching the
        past mean score of the side that had it.
    prior : float
        Variance of the N(0, prior) prior of BT and Davidson (finite scores
        for items without wins in the past).
    elo_k : float
        K factor of the built-in Elo.
    dynamic_w2 : float
        Drift variance per time unit of the built-in DynamicBT (with Davidson
        draws when scoring draws, and a first-mover advantage with
        ``order_effect``); choose it on the past, e.g. with
        ``DynamicBT.select_w2`` on the warm-up periods.
    min_link_games : int
        For methods without their own draw model: fit the draw link's ``nu``
        by maximum likelihood on the method's earlier out-of-sample
        predictions only once they cover at least this many games with
        positive weight (and a draw with positive weight); before that, use
        the smoothed draw rate of the training rows.

    Returns
    -------
    TemporalEvaluation (``.summary()``: the per-method table)

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> left = rng.integers(0, 6, 300); right = (left + rng.integers(1, 6, 300)) % 6
    >>> outcome = (rng.random(300) < 1 / (1 + np.exp(-(left - right) / 2.0))).astype(float)
    >>> data = Comparisons.from_codes(left, right, outcome, items=list("abcdef"), time=np.arange(300) // 50)
    >>> result = temporal_evaluation(data, ["bt", "elo"])
    >>> result.table[["method", "games", "periods"]].values.tolist()
    [['bt', 250, 5], ['elo', 250, 5]]
    """
    data = as_comparisons(data)
    if min_link_games < 0:
        raise ValueError(f"min_link_games must be non-negative, got {min_link_games}.")
    splits = rolling_origin_splits(data, period, min_train_periods=min_train_periods)
    if not splits:
        raise ComparisonDataError(f"no period to predict: the data have at most {min_train_periods} period(s) "
                                  f"under period={period!r}.")
    if draws is None:
        draws = bool(np.any(data.outcome == 0.5))
    resolved = _resolve(methods, order_effect, prior, elo_k, bool(draws), dynamic_w2)
    weight = np.ones(len(data)) if data.weight is None else np.asarray(data.weight, dtype=np.float64)
    first_train = splits[0].train
    all_labels = period_labels(data, period)
    frames = []
    rows_table = []
    for name, spec in resolved.items():
        online = all(hasattr(spec, a) for a in ("reset", "update", "predict_proba"))
        fed = 0  # how many rows of the time-ordered stream the rater has seen
        stream = np.concatenate([first_train, *[s.test for s in splits]])
        stream_labels = all_labels[stream]
        if online:
            spec.reset(data.items)
        past_e: list[np.ndarray] = []
        past_o: list[np.ndarray] = []
        past_w: list[np.ndarray] = []
        kinds: set[str] = set()  # "own" / "link": how each origin got its draw probabilities
        out_p, out_e = [], []
        for split in splits:
            train = data.take(split.train)
            test = data.take(split.test)
            if online:
                new = stream[fed:len(split.train)]
                if order_effect and hasattr(spec, "home_advantage"):
                    spec.home_advantage = _home_points(train, float(getattr(spec, "scale", 400.0)))
                labels = stream_labels[fed:len(split.train)]
                for lab in pd.unique(labels):  # one update per period (Glicko-2: one rating period)
                    spec.update(data.take(new[labels == lab]))
                fed = len(split.train)
                pred = spec.predict_proba(np.asarray(data.items)[test.left], np.asarray(data.items)[test.right],
                                          _test_order(test))
            else:
                pred = spec(train)(test)
            arr, native = _as_three(pred, len(test))
            kinds.add("own" if native else "link")
            if native:
                probs = arr
                expected = arr[:, 0] + 0.5 * arr[:, 1]
            else:
                expected = arr
                if draws:
                    w_past = np.concatenate(past_w) if past_w else np.zeros(0)
                    o_past = np.concatenate(past_o) if past_o else np.zeros(0)
                    enough = int(np.sum(w_past > 0)) >= min_link_games
                    if enough and bool(np.any((o_past == 0.5) & (w_past > 0))):
                        nu = fit_draw_link(np.concatenate(past_e), o_past, w_past)
                    else:
                        w_tr = weight[split.train]
                        r = float((np.sum(w_tr * (train.outcome == 0.5)) + 0.5) / (np.sum(w_tr) + 1.0))
                        nu = 2.0 * r / (1.0 - r)
                    probs = davidson_draw_link(expected, nu)
                else:
                    probs = np.stack([expected, np.zeros_like(expected), 1.0 - expected], axis=1)
            past_e.append(expected)
            past_o.append(test.outcome)
            past_w.append(weight[split.test])
            out_p.append(probs)
            out_e.append(expected)
        test_rows = np.concatenate([s.test for s in splits])
        probs_all = np.concatenate(out_p)
        e_all = np.concatenate(out_e)
        o_all = data.outcome[test_rows]
        w_all = weight[test_rows]
        frames.append(pd.DataFrame({
            "method": name, "row": test_rows, "period": all_labels[test_rows], "p_win": probs_all[:, 0],
            "p_draw": probs_all[:, 1], "p_loss": probs_all[:, 2], "expected": e_all, "outcome": o_all,
            "weight": w_all}))
        row: dict[str, Any] = {
            "method": name, "games": int(round(w_all.sum())), "periods": len(splits),
            "log_loss": log_loss(e_all, o_all, w_all), "brier": brier_score(e_all, o_all, w_all),
            "accuracy": accuracy(e_all, o_all, w_all), "ece": expected_calibration_error(e_all, o_all, w_all)}
        if draws:
            cls = _classes(o_all)
            p_obs = np.clip(probs_all[np.arange(len(cls)), cls], 1e-15, 1.0)
            onehot = np.eye(3)[cls]
            row["log_loss_wdl"] = float(np.sum(w_all * -np.log(p_obs)) / w_all.sum())
            row["brier_wdl"] = float(np.sum(w_all * ((probs_all - onehot) ** 2).sum(axis=1)) / w_all.sum())
            row["draw_rate_predicted"] = float(np.average(probs_all[:, 1], weights=w_all))
            row["draw_rate_observed"] = float(np.average(cls == 1, weights=w_all))
            row["draw_model"] = kinds.pop() if len(kinds) == 1 else "mixed"
        rows_table.append(row)
    return TemporalEvaluation(pd.DataFrame(rows_table), pd.concat(frames, ignore_index=True), splits)
