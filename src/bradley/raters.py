"""Online raters: Elo, Glicko-2 and Weng-Lin (openskill), updated game by game.

Each rater keeps one state per item and moves it after every game (Glicko-2:
after every rating period), so unlike :class:`~bradley.BradleyTerry` it never
looks at a game twice. All three share one small interface:

* ``fit(data)`` starts afresh and rates the rows of ``data`` in their order
  (``data.time`` order is the caller's business: sort first);
* ``update(data)`` continues from the current state (new item names are
  added at the initial rating);
* ``predict_proba(left, right, order=None)`` gives the expected score of
  ``left`` (its win probability when there are no draws), before any update;
* ``ratings_`` is a tidy per-item DataFrame (``summary()`` sorts it).

Outcomes are the package's: 1 left won, 0 right won, 0.5 a draw. Home
(first-move) advantage enters Elo and Glicko-2 as rating points added to the
side that had it, through the data's ``order`` indicator (1 left, -1 right,
0 neutral; None means left).

References
----------
Elo, A. E. (1978). *The Rating of Chessplayers, Past and Present*.
Glickman, M. E. (2013). *Example of the Glicko-2 system*; Glickman (1999),
"Parameter estimation in large dynamic paired comparison experiments", JRSS C.
Weng, R. C. & Lin, C.-J. (2011). "A Bayesian approximation method for online
ranking", JMLR 12 (via the ``openskill`` package).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from bradley.data import Comparisons
from bradley.errors import ComparisonDataError, ConvergenceWarning, NotFittedError
from bradley.models.base import as_comparisons

__all__ = ["EloRater", "Glicko2Rater", "WengLinRater", "elo_expected", "glicko2_update", "GLICKO2_SCALE"]

#: Glicko-2 works on ``(r - 1500) / 173.7178``: 400 / ln(10) Elo points per unit.
GLICKO2_SCALE = 173.7178
_LN10 = math.log(10.0)


def elo_expected(rating_left: Any, rating_right: Any, scale: float = 400.0) -> np.ndarray:
    """Elo expected score of the left side, ``1 / (1 + 10 ** ((r_right - r_left) / scale))``.

    Computed as ``expit(ln(10) * (r_left - r_right) / scale)``, so it does not
    overflow for any rating gap.

    Examples
    --------
    >>> round(float(elo_expected(1600.0, 1400.0)), 6)  # 1 / (1 + 10 ** -0.5)
    0.759747
    """
    diff = np.asarray(rating_left, dtype=np.float64) - np.asarray(rating_right, dtype=np.float64)
    return np.asarray(expit(_LN10 * diff / scale))


def _order(data: Comparisons) -> np.ndarray:
    return np.ones(len(data)) if data.order is None else np.asarray(data.order, dtype=np.float64)


class _Rater:
    """Shared item bookkeeping of the online raters."""

    _state_names: tuple[str, ...] = ()

    def _initial_state(self) -> tuple[float, ...]:  # pragma: no cover - overridden
        raise NotImplementedError

    def _reset(self) -> None:
        self.items_ = np.array([], dtype=object)
        self._index: dict[Any, int] = {}
        self._state: list[list[float]] = [[] for _ in self._state_names]
        self.n_games_ = 0

    def _codes(self, names: np.ndarray, add: bool) -> np.ndarray:
        codes = np.empty(len(names), dtype=np.int64)
        for k, name in enumerate(names.tolist()):
            code = self._index.get(name)
            if code is None:
                if not add:
                    code = -1
                else:
                    code = len(self._index)
                    self._index[name] = code
                    for column, value in zip(self._state, self._initial_state(), strict=True):
                        column.append(value)
            codes[k] = code
        if add:
            self.items_ = np.array(list(self._index), dtype=object)
        return codes

    def _rows(self, data: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        data = as_comparisons(data)
        if data.weight is not None and not np.all(data.weight == 1.0):
            raise ComparisonDataError("online raters rate one game per row: expand weighted rows into games first "
                                      "(rows with weight != 1 found).")
        left = self._codes(np.asarray(data.items)[data.left], add=True)
        right = self._codes(np.asarray(data.items)[data.right], add=True)
        return left, right, np.asarray(data.outcome, dtype=np.float64), _order(data)

    def reset(self, items: Any = ()) -> Any:
        """Forget every game; ``items`` (names) start at the initial state. Returns self."""
        self._reset()
        self._codes(np.asarray(list(items), dtype=object), add=True)
        return self

    def fit(self, data: Any) -> Any:
        """Rate the rows of ``data`` in order, starting from the initial state; returns self."""
        data = as_comparisons(data)
        # every item of data gets a state even if it has not played yet
        return self.reset(data.items).update(data)

    def update(self, data: Any) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def _require(self) -> None:
        if not hasattr(self, "items_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(data) first.")

    def _lookup(self, values: Any) -> np.ndarray:
        """State rows of ``values`` (names); unknown names get -1 (the initial state)."""
        self._require()
        return self._codes(np.atleast_1d(np.asarray(values, dtype=object)), add=False)

    def _column(self, k: int, codes: np.ndarray) -> np.ndarray:
        values = np.asarray(self._state[k], dtype=np.float64)
        out = np.full(len(codes), self._initial_state()[k])
        known = codes >= 0
        out[known] = values[codes[known]]
        return out

    @property
    def ratings_(self) -> pd.DataFrame:
        """One row per item: its name and current state."""
        self._require()
        frame = pd.DataFrame({"item": self.items_})
        for name, column in zip(self._state_names, self._state, strict=True):
            frame[name] = np.asarray(column, dtype=np.float64)
        return frame

    def summary(self) -> pd.DataFrame:
        """``ratings_`` sorted best first with a rank column."""
        table = self.ratings_.sort_values(self._state_names[0], ascending=False, kind="stable")
        table["rank"] = np.arange(1, len(table) + 1)
        return table.reset_index(drop=True)


class EloRater(_Rater):
    """Online Elo rating: after each game both sides move by ``K * (score - expected)``.

    Parameters
    ----------
    k : float
        K factor (rating points per unit of surprise).
    scale : float
        Rating points per factor 10 in the odds (400 in chess).
    initial : float
        Rating of a new item.
    home_advantage : float
        Rating points added to the side with the order (home / white)
        advantage when computing the expected score.

    Examples
    --------
    >>> data = Comparisons.from_arrays(["a"], ["b"], [1.0])
    >>> elo = EloRater(k=32).fit(data)
    >>> elo.ratings_["rating"].tolist()  # expected 0.5, so +-16
    [1516.0, 1484.0]
    """

    _state_names = ("rating",)

    def __init__(self, k: float = 20.0, scale: float = 400.0, initial: float = 1500.0,
                 home_advantage: float = 0.0):
        self.k = k
        self.scale = scale
        self.initial = initial
        self.home_advantage = home_advantage

    def _initial_state(self) -> tuple[float, ...]:
        return (float(self.initial),)

    def update(self, data: Any) -> EloRater:
        """Rate the rows of ``data`` one after another from the current ratings; returns self."""
        if not hasattr(self, "items_"):
            self._reset()
        left, right, outcome, order = self._rows(data)
        r = self._state[0]
        k, scale, home = float(self.k), float(self.scale), float(self.home_advantage)
        for a, b, o, h in zip(left.tolist(), right.tolist(), outcome.tolist(), order.tolist(), strict=True):
            expected = 1.0 / (1.0 + 10.0 ** (min(max((r[b] - r[a] - home * h) / scale, -300.0), 300.0)))
            delta = k * (o - expected)
            r[a] += delta
            r[b] -= delta
        self.n_games_ += len(left)
        return self

    def predict_proba(self, left: Any, right: Any, order: Any = None) -> np.ndarray:
        """Expected score of ``left`` against ``right`` (names; order 1/-1/0, default 1 = left at home)."""
        li, ri = self._lookup(left), self._lookup(right)
        h = np.ones(len(li)) if order is None else np.broadcast_to(np.asarray(order, np.float64), li.shape)
        diff = self._column(0, li) - self._column(0, ri) + float(self.home_advantage) * h
        return elo_expected(diff, 0.0, self.scale)


def _g(phi: np.ndarray) -> np.ndarray:
    return 1.0 / np.sqrt(1.0 + 3.0 * phi**2 / math.pi**2)


def _glicko2_volatility(sigma: float, phi: float, v: float, delta: float, tau: float,
                        eps: float, max_iter: int) -> tuple[float, bool]:
    """Step 5 of Glickman (2013): the new volatility by the Illinois algorithm on f(x) = 0."""
    a = math.log(sigma**2)

    def f(x: float) -> float:
        ex = math.exp(x)
        return ex * (delta**2 - phi**2 - v - ex) / (2.0 * (phi**2 + v + ex) ** 2) - (x - a) / tau**2

    big_a = a
    if delta**2 > phi**2 + v:
        big_b = math.log(delta**2 - phi**2 - v)
    else:
        step = 1
        while f(a - step * tau) < 0:
            step += 1
        big_b = a - step * tau
    f_a, f_b = f(big_a), f(big_b)
    for _ in range(max_iter):
        if abs(big_b - big_a) <= eps:
            return math.exp(big_a / 2.0), True
        big_c = big_a + (big_a - big_b) * f_a / (f_b - f_a)
        f_c = f(big_c)
        if f_c * f_b <= 0:
            big_a, f_a = big_b, f_b
        else:
            f_a /= 2.0
        big_b, f_b = big_c, f_c
    return math.exp(big_a / 2.0), False


def glicko2_update(rating: float, rd: float, volatility: float, opponent_ratings: Any, opponent_rds: Any,
                   scores: Any, *, tau: float = 0.5, eps: float = 1e-6,
                   max_iter: int = 1000) -> tuple[float, float, float]:
    """One player's Glicko-2 update over a rating period (Glickman 2013, steps 2-8).

    Parameters
    ----------
    rating, rd, volatility : float
        The player's rating, rating deviation and volatility before the period.
    opponent_ratings, opponent_rds : array-like
        The opponents' ratings and deviations (before the period), one per game.
    scores : array-like
        The player's score in each game (1 win, 0.5 draw, 0 loss). Empty: the
        player did not play and only the deviation grows.
    tau : float
        System constant bounding the change in volatility (0.3 to 1.2).
    eps : float
        Convergence tolerance of the volatility iteration (Illinois algorithm).

    Returns
    -------
    (rating, rd, volatility) after the period.

    Examples
    --------
    Glickman's worked example: 1500/200/0.06 against 1400/30 (win),
    1550/100 (loss) and 1700/300 (loss) with tau = 0.5:

    >>> r, rd, vol = glicko2_update(1500, 200, 0.06, [1400, 1550, 1700], [30, 100, 300], [1, 0, 0])
    >>> round(r, 2), round(rd, 2), round(vol, 6)  # the paper: 1464.06 (from mu' rounded), 151.52, 0.05999
    (1464.05, 151.52, 0.059996)
    """
    mu = (rating - 1500.0) / GLICKO2_SCALE
    phi = rd / GLICKO2_SCALE
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if s.size == 0:
        return rating, GLICKO2_SCALE * math.sqrt(phi**2 + volatility**2), volatility
    mu_j = (np.asarray(opponent_ratings, dtype=np.float64).reshape(-1) - 1500.0) / GLICKO2_SCALE
    g = _g(np.asarray(opponent_rds, dtype=np.float64).reshape(-1) / GLICKO2_SCALE)
    expected = expit(g * (mu - mu_j))
    v = 1.0 / float(np.sum(g**2 * expected * (1.0 - expected)))
    improvement = float(np.sum(g * (s - expected)))
    delta = v * improvement
    sigma, converged = _glicko2_volatility(volatility, phi, v, delta, tau, eps, max_iter)
    if not converged:
        import warnings

        warnings.warn(f"Glicko-2 volatility iteration did not converge in {max_iter} steps (eps {eps:g}).",
                      ConvergenceWarning, stacklevel=2)
    phi_star = math.sqrt(phi**2 + sigma**2)
    phi_new = 1.0 / math.sqrt(1.0 / phi_star**2 + 1.0 / v)
    mu_new = mu + phi_new**2 * improvement
    return GLICKO2_SCALE * mu_new + 1500.0, GLICKO2_SCALE * phi_new, sigma


class Glicko2Rater(_Rater):
    """Glicko-2 (Glickman 2013): rating, deviation and volatility per item, updated per rating period.

    Each call of :meth:`update` is one rating period: every game in it is
    scored against the opponents' states at the start of the period, as the
    system prescribes, and items that did not play have their deviation grow.
    Call it once per game for game-by-game updates.

    Parameters
    ----------
    tau : float
        System constant (smaller: volatility changes less), 0.3 to 1.2.
    initial_rating, initial_rd, initial_volatility : float
        State of a new item (1500, 350, 0.06 in the paper).
    home_advantage : float
        Rating points added to the side with the order advantage (both in
        the updates and in predictions).
    max_rd : float
        Cap on the deviation (never above the initial one by default).

    Examples
    --------
    >>> data = Comparisons.from_arrays(["a", "a"], ["b", "c"], [1.0, 0.5])
    >>> g = Glicko2Rater().fit(data)
    >>> g.ratings_.round(1)["rating"].tolist()
    [1623.7, 1337.7, 1500.0]
    """

    _state_names = ("rating", "rd", "volatility")

    def __init__(self, tau: float = 0.5, initial_rating: float = 1500.0, initial_rd: float = 350.0,
                 initial_volatility: float = 0.06, home_advantage: float = 0.0, max_rd: float | None = None):
        self.tau = tau
        self.initial_rating = initial_rating
        self.initial_rd = initial_rd
        self.initial_volatility = initial_volatility
        self.home_advantage = home_advantage
        self.max_rd = max_rd

    def _initial_state(self) -> tuple[float, ...]:
        return (float(self.initial_rating), float(self.initial_rd), float(self.initial_volatility))

    def update(self, data: Any) -> Glicko2Rater:
        """Rate the rows of ``data`` as one rating period; returns self."""
        if not hasattr(self, "items_"):
            self._reset()
        left, right, outcome, order = self._rows(data)
        r0 = np.asarray(self._state[0], dtype=np.float64)
        rd0 = np.asarray(self._state[1], dtype=np.float64)
        vol0 = np.asarray(self._state[2], dtype=np.float64)
        home = float(self.home_advantage) * order
        # each game seen from both sides: (player, opponent, opponent's effective rating, score)
        player = np.concatenate([left, right])
        opponent = np.concatenate([right, left])
        shift = np.concatenate([-home, home])  # the opponent's rating as the player sees it
        score = np.concatenate([outcome, 1.0 - outcome])
        by_player = np.argsort(player, kind="stable")
        bounds = np.searchsorted(player[by_player], np.arange(len(r0) + 1))
        cap = float(self.initial_rd if self.max_rd is None else self.max_rd)
        for i in range(len(r0)):
            games = by_player[bounds[i]:bounds[i + 1]]
            opp = opponent[games]
            new = glicko2_update(float(r0[i]), float(rd0[i]), float(vol0[i]), r0[opp] + shift[games], rd0[opp],
                                 score[games], tau=self.tau)
            self._state[0][i], self._state[1][i], self._state[2][i] = new[0], min(new[1], cap), new[2]
        self.n_games_ += len(left)
        return self

    def predict_proba(self, left: Any, right: Any, order: Any = None) -> np.ndarray:
        """Expected score of ``left``: ``E = 1 / (1 + exp(-g(sqrt(phi_l^2 + phi_r^2)) (mu_l - mu_r)))``."""
        li, ri = self._lookup(left), self._lookup(right)
        h = np.ones(len(li)) if order is None else np.broadcast_to(np.asarray(order, np.float64), li.shape)
        mu_diff = (self._column(0, li) - self._column(0, ri) + float(self.home_advantage) * h) / GLICKO2_SCALE
        phi = np.sqrt(self._column(1, li) ** 2 + self._column(1, ri) ** 2) / GLICKO2_SCALE
        return np.asarray(expit(_g(phi) * mu_diff))


class WengLinRater(_Rater):
    """Weng-Lin Bayesian online rating (a TrueSkill-like model) through the ``openskill`` package.

    Parameters
    ----------
    model : str
        openskill model name: ``"PlackettLuce"`` (default),
        ``"BradleyTerryFull"``, ``"BradleyTerryPart"``, ``"ThurstoneMostellerFull"``
        or ``"ThurstoneMostellerPart"``.
    **options
        Passed to the openskill model (``mu``, ``sigma``, ``beta``, ``tau``, ...).

    Draws are rated as tied ranks. Predictions are openskill's
    ``predict_win`` for the two sides; no home advantage.

    Examples
    --------
    >>> data = Comparisons.from_arrays(["a"], ["b"], [1.0])
    >>> wl = WengLinRater().fit(data)
    >>> bool(wl.predict_proba(["a"], ["b"])[0] > 0.5)
    True
    """

    _state_names = ("mu", "sigma")

    def __init__(self, model: str = "PlackettLuce", **options: Any):
        self.model = model
        self.options = options

    def _model(self) -> Any:
        if getattr(self, "_openskill", None) is None:
            try:
                from openskill import models
            except ImportError as exc:  # pragma: no cover - optional dependency
                raise ImportError("WengLinRater needs the openskill package (pip install openskill).") from exc
            factory = getattr(models, self.model, None)
            if factory is None or not callable(factory):
                raise ValueError(f"unknown openskill model {self.model!r}: use PlackettLuce, BradleyTerryFull, "
                                 "BradleyTerryPart, ThurstoneMostellerFull or ThurstoneMostellerPart.")
            self._openskill = factory(**self.options)
        return self._openskill

    def _initial_state(self) -> tuple[float, ...]:
        model = self._model()
        return (float(model.mu), float(model.sigma))

    def _rating(self, code: int) -> Any:
        return self._model().rating(mu=self._state[0][code], sigma=self._state[1][code])

    def update(self, data: Any) -> WengLinRater:
        """Rate the rows of ``data`` one after another; returns self."""
        if not hasattr(self, "items_"):
            self._reset()
        left, right, outcome, _ = self._rows(data)
        model = self._model()
        mu, sigma = self._state
        for a, b, o in zip(left.tolist(), right.tolist(), outcome.tolist(), strict=True):
            ranks = [0, 0] if o == 0.5 else ([0, 1] if o > 0.5 else [1, 0])
            (ra,), (rb,) = model.rate([[self._rating(a)], [self._rating(b)]], ranks=ranks)
            mu[a], sigma[a], mu[b], sigma[b] = ra.mu, ra.sigma, rb.mu, rb.sigma
        self.n_games_ += len(left)
        return self

    def predict_proba(self, left: Any, right: Any, order: Any = None) -> np.ndarray:
        """openskill's win probability of ``left`` (``order`` is ignored: no home advantage)."""
        li, ri = self._lookup(left), self._lookup(right)
        model = self._model()
        mu_l, mu_r = self._column(0, li), self._column(0, ri)
        sd_l, sd_r = self._column(1, li), self._column(1, ri)
        out = np.empty(len(li))
        for k in range(len(li)):
            a = model.rating(mu=float(mu_l[k]), sigma=float(sd_l[k]))
            b = model.rating(mu=float(mu_r[k]), sigma=float(sd_r[k]))
            out[k] = model.predict_win([[a], [b]])[0]
        return out
