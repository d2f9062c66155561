"""DynamicBT: Bradley-Terry with strengths that drift in time (whole-history rating)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from bradley.errors import ComparisonDataError, ConvergenceWarning
from bradley.models.base import ItemIndex, as_comparisons, require_fitted

__all__ = ["DynamicBT"]


class DynamicBT:
    """Whole-history rating (Coulom 2008): each item's log-strength is a Wiener process.

    Between two times an item's score changes by a Gaussian step of variance
    ``w2 * dt`` (``dt`` in ``time_unit``). The model finds the joint MAP of all
    items' score histories, one node per item and time it played, with
    ``prior`` virtual wins and as many virtual losses against a zero-score
    opponent at each item's first node (Coulom's anchor; 1 in the paper, 0.5 in
    the ``whole-history-rating`` package). Scores are natural log-strengths;
    ``w2`` in Elo units converts as ``w2_elo * (ln 10 / 400)**2``.

    Parameters
    ----------
    w2 : float
        Variance of the score drift per time unit (>= 0; 0 gives a static BT
        with the same anchor).
    draws : None or "davidson"
        None: ties count as half a win each way; "davidson": Davidson's draw
        model with a fitted ``nu`` (``params_["nu"]``).
    first_mover : bool
        Fit an advantage for the item that moved first (the ``order`` column of
        the data: 1 left, -1 right, 0 neutral; absent means left).
    prior : float
        Virtual wins (and losses) at each item's first node, > 0.
    time_unit : str, float or None
        For datetime times a pandas offset such as ``"D"`` or ``"7D"``
        (default ``"D"``); for numeric times a divisor (default 1).
    tol, max_iter : float, int
        Newton stops when the largest absolute gradient entry is below ``tol``.

    Examples
    --------
    >>> import pandas as pd
    >>> from bradley.models.dynamic import DynamicBT
    >>> games = pd.DataFrame({"left": ["a", "a", "b"], "right": ["b", "b", "a"],
    ...                       "outcome": [1.0, 1.0, 0.0], "time": [1, 2, 3]})
    >>> m = DynamicBT(w2=0.05).fit(games)
    >>> m.converged_, bool(m.scores_[0] > m.scores_[1])
    (True, True)
    >>> m.rating_history("a").columns.tolist()
    ['time', 'score', 'se']
    """

    def __init__(self, w2: float = 0.01, draws: str | None = None, first_mover: bool = False,
                 prior: float = 1.0, time_unit: str | float | None = None, tol: float = 1e-8,
                 max_iter: int = 100):
        self.w2 = w2
        self.draws = draws
        self.first_mover = first_mover
        self.prior = prior
        self.time_unit = time_unit
        self.tol = tol
        self.max_iter = max_iter

    # ------------------------------------------------------------------ time
    def _time_to_float(self, values: Any) -> np.ndarray:
        arr = np.asarray(values)
        if self._datetime_:
            ts = pd.to_datetime(pd.Series(np.atleast_1d(arr))).to_numpy(dtype="datetime64[ns]")
            return np.asarray((ts - self._t0_) / self._unit_delta(), dtype=np.float64)
        return np.asarray(np.atleast_1d(arr), dtype=np.float64) / float(self._unit_)

    def _unit_delta(self) -> pd.Timedelta:
        unit = str(self._unit_)
        return pd.Timedelta(unit if unit[:1].isdigit() else "1" + unit)

    def _float_to_time(self, t: np.ndarray) -> Any:
        if self._datetime_:
            return pd.to_datetime(self._t0_) + pd.to_timedelta(t * self._unit_delta().value, unit="ns")
        return t * float(self._unit_)

    def _setup_time(self, raw: np.ndarray) -> None:
        is_dt = np.issubdtype(raw.dtype, np.datetime64) or (
            raw.dtype == object and len(raw) > 0 and isinstance(raw[0], (pd.Timestamp, np.datetime64))
        ) or (raw.dtype == object and len(raw) > 0 and hasattr(raw[0], "year"))
        self._datetime_ = bool(is_dt)
        if self._datetime_:
            unit = self.time_unit if self.time_unit is not None else "D"
            if not isinstance(unit, str):
                raise ValueError(f"time_unit for datetime times must be an offset string like 'D', got {unit!r}.")
            self._unit_: Any = unit
            self._t0_ = pd.to_datetime(pd.Series(raw)).min().to_datetime64()
        else:
            unit_f = 1.0 if self.time_unit is None else self.time_unit
            if isinstance(unit_f, str) or not float(unit_f) > 0:
                raise ValueError(f"time_unit for numeric times must be a positive number, got {unit_f!r}.")
            self._unit_ = float(unit_f)
            self._t0_ = None

    # ------------------------------------------------------------------- fit
    def _check(self) -> None:
        if not (np.isfinite(self.w2) and self.w2 >= 0):
            raise ValueError(f"w2 must be a finite variance >= 0, got {self.w2!r}.")
        if self.draws not in (None, "davidson"):
            raise ValueError(f"draws must be None or 'davidson', got {self.draws!r}.")
        if not (np.isfinite(self.prior) and self.prior > 0):
            raise ValueError(f"prior must be a positive number of virtual games, got {self.prior!r}.")

    def fit(self, data: Any) -> DynamicBT:
        """Fit on dated comparisons (a ``time`` column: numbers or dates)."""
        from bradley.solvers.whr import tridiagonal_inverse_band, whr_layout, whr_map

        self._check()
        comps = as_comparisons(data)
        if comps.time is None:
            raise ComparisonDataError("DynamicBT needs a time column (numbers or dates) on every comparison.")
        raw = np.asarray(comps.time)
        missing = pd.isna(pd.Series(raw)).to_numpy()
        if missing.any():
            raise ComparisonDataError(f"time is missing on rows {np.flatnonzero(missing)[:5].tolist()}.")
        self._setup_time(raw)
        t = self._time_to_float(raw)
        if not np.isfinite(t).all():
            raise ComparisonDataError(f"non-finite time on rows {np.flatnonzero(~np.isfinite(t))[:5].tolist()}.")
        w = np.ones(len(t)) if comps.weight is None else np.asarray(comps.weight, dtype=np.float64)
        y = np.asarray(comps.outcome, dtype=np.float64)
        davidson = self.draws == "davidson"
        if davidson and not np.any((y == 0.5) & (w > 0)):
            raise ComparisonDataError("draws='davidson' needs at least one tie (outcome 0.5) to estimate nu.")
        order = None
        if self.first_mover:
            order = np.ones(len(t)) if comps.order is None else np.asarray(comps.order, dtype=np.float64)
        node_t = t if self.w2 > 0 else np.zeros_like(t)
        lay = whr_layout(comps.left, comps.right, node_t)
        res = whr_map(lay, y, w, w2=float(self.w2), prior_wins=float(self.prior), order=order, davidson=davidson,
                      tol=self.tol, max_iter=self.max_iter)
        if not res.converged:
            warnings.warn(f"DynamicBT did not converge in {res.n_iter} Newton steps (max |gradient| "
                          f"{res.grad_norm:.3g} > tol {self.tol:g}); raise max_iter.", ConvergenceWarning,
                          stacklevel=2)
        var, cov = tridiagonal_inverse_band(res.own_diag, res.off)
        n_items = len(comps.items)
        self.items_ = np.asarray(comps.items, dtype=object)
        self._index = ItemIndex(self.items_)
        self._layout_ = lay
        # with w2 == 0 every item has one node; its time is the item's last game
        if self.w2 == 0:
            last_t = np.full(n_items, -np.inf)
            np.maximum.at(last_t, comps.left, t)
            np.maximum.at(last_t, comps.right, t)
            self._node_time_ = last_t[lay.node_item]
        else:
            self._node_time_ = lay.node_time
        self._node_score_ = res.r
        self._node_var_ = var
        self._node_cov_ = cov
        starts = np.flatnonzero(lay.first)
        ends = np.append(starts[1:], lay.n_nodes)
        self._start_ = np.full(n_items, -1, dtype=np.int64)
        self._end_ = np.full(n_items, -1, dtype=np.int64)
        self._start_[lay.node_item[starts]] = starts
        self._end_[lay.node_item[starts]] = ends
        played = self._start_ >= 0
        scores = np.zeros(n_items)
        scores[played] = res.r[self._end_[played] - 1]
        self.scores_ = scores
        self._t_last_ = float(t.max())
        self.params_ = {"first_mover": res.first_mover if self.first_mover else 0.0,
                        "nu": float(np.exp(res.log_nu)) if davidson else 0.0}
        self.log_likelihood_ = res.log_likelihood
        self.log_posterior_ = res.log_posterior
        self.converged_ = res.converged
        self.n_iter_ = res.n_iter
        self.n_nodes_ = lay.n_nodes
        counts = np.bincount(comps.left, w, n_items) + np.bincount(comps.right, w, n_items)
        self._comparisons_ = counts
        return self

    # --------------------------------------------------------------- outputs
    def rating_history(self, item: Any) -> pd.DataFrame:
        """One row per time ``item`` played: time, score (MAP) and se.

        ``se`` is from the diagonal of the inverse of the item's own
        tridiagonal Hessian (opponents held fixed), as in Coulom (2008).
        """
        require_fitted(self)
        code = int(self._index.codes(item)[0])
        s, e = self._start_[code], self._end_[code]
        if s < 0:
            return pd.DataFrame({"time": [], "score": [], "se": []})
        return pd.DataFrame({"time": self._float_to_time(self._node_time_[s:e]),
                             "score": self._node_score_[s:e], "se": np.sqrt(self._node_var_[s:e])})

    def score_at(self, item: Any, time: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and variance of the items' scores at ``time`` (default: the last time in the data).

        Between nodes the Brownian bridge; after the last node the variance grows
        by ``w2 * dt``, and before the first by the same.
        """
        require_fitted(self)
        codes = self._index.codes(item)
        if time is None:
            tq = np.full(len(codes), self._t_last_)
        else:
            tq = np.broadcast_to(self._time_to_float(time), codes.shape).astype(np.float64)
        mean = np.zeros(len(codes))
        var = np.full(len(codes), 2.0 / self.prior)  # an unseen item: the anchor's curvature at 0
        w2 = float(self.w2)
        for c in np.unique(codes):
            sel = np.flatnonzero(codes == c)
            s, e = self._start_[c], self._end_[c]
            if s < 0:
                continue
            nt, mu, v = self._node_time_[s:e], self._node_score_[s:e], self._node_var_[s:e]
            cv = self._node_cov_[s:e - 1]
            tt = tq[sel]
            k = np.searchsorted(nt, tt, side="right") - 1  # node at or before
            before = k < 0
            after = k >= len(nt) - 1
            inner = ~before & ~after
            m = np.empty(len(tt))
            vv = np.empty(len(tt))
            m[before] = mu[0]
            vv[before] = v[0] + w2 * (nt[0] - tt[before])
            m[after] = mu[-1]
            vv[after] = v[-1] + w2 * np.maximum(tt[after] - nt[-1], 0.0)
            if inner.any():
                ki = k[inner]
                gap = nt[ki + 1] - nt[ki]
                a = (tt[inner] - nt[ki]) / gap
                m[inner] = (1 - a) * mu[ki] + a * mu[ki + 1]
                vv[inner] = ((1 - a) ** 2 * v[ki] + a**2 * v[ki + 1] + 2 * a * (1 - a) * cv[ki]
                             + w2 * gap * a * (1 - a))
            mean[sel], var[sel] = m, vv
        return mean, var

    def predict_proba(self, left: Any, right: Any, time: Any = None, order: Any = False,
                      uncertainty: bool = True) -> np.ndarray:
        """P(left wins) at ``time`` (default: the last time in the data); (n, 3) win/draw/loss under Davidson.

        With ``uncertainty`` the probability is averaged over the Gaussian
        posterior of the score difference (variances of both items, grown by
        ``w2 * dt`` since they last played; independence as in Coulom) by
        64-point Gauss-Hermite quadrature.
        """
        require_fitted(self)
        ml, vl = self.score_at(left, time)
        mr, vr = self.score_at(right, time)
        ml, mr = np.broadcast_arrays(ml, mr)
        d = ml - mr
        if self.first_mover:
            d = d + self.params_["first_mover"] * np.broadcast_to(np.asarray(order, dtype=np.float64), d.shape)
        sd = np.sqrt(np.broadcast_to(vl + vr, d.shape)) if uncertainty else np.zeros_like(d)
        x, wq = np.polynomial.hermite_e.hermegauss(64)
        wq = wq / wq.sum()
        dd = d[:, None] + sd[:, None] * x[None, :]
        if self.draws != "davidson":
            from scipy.special import expit

            return np.asarray(expit(dd) @ wq)
        t = np.log(self.params_["nu"])
        half = 0.5 * dd
        lse = np.logaddexp(np.logaddexp(half, -half), t)
        return np.stack([np.exp(half - lse) @ wq, np.exp(t - lse) @ wq, np.exp(-half - lse) @ wq], axis=1)

    def summary(self) -> pd.DataFrame:
        """Tidy table at the last time in the data: item, score, se, rank, last_time, nodes, comparisons."""
        require_fitted(self)
        mean, var = self.score_at(np.arange(len(self.items_)))
        table = pd.DataFrame({"item": self.items_, "score": mean, "se": np.sqrt(var)})
        table["rank"] = pd.Series(-mean).rank(method="min").astype(np.int64).to_numpy()
        last = np.where(self._end_ > 0, self._node_time_[np.maximum(self._end_ - 1, 0)], np.nan)
        table["last_time"] = self._float_to_time(last)
        table["nodes"] = np.where(self._start_ >= 0, self._end_ - self._start_, 0)
        table["comparisons"] = self._comparisons_
        return table.sort_values("rank", kind="stable").reset_index(drop=True)

    # ------------------------------------------------------------ selection
    #: Default ``select_w2`` grid: 0 (static BT with the same anchor) and a log grid of drifts per time unit.
    W2_GRID = (0.0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3)

    def _heldout_loss(self, comps: Any, train: np.ndarray, test: np.ndarray) -> tuple[float, float]:
        """(weighted sum of held-out log-losses, total weight) of a fit on ``train`` scored on ``test``."""
        y = np.asarray(comps.outcome, dtype=np.float64)[test]
        wt = np.ones(len(test)) if comps.weight is None else np.asarray(comps.weight, dtype=np.float64)[test]
        self.fit(comps.take(train))
        left, right = comps.items[comps.left[test]], comps.items[comps.right[test]]
        known = np.isin(left, self.items_) & np.isin(right, self.items_)
        order = comps.order[test] if comps.order is not None else True
        p = np.full((len(test), 3) if self.draws == "davidson" else len(test), np.nan)
        if known.any():
            o = order[known] if isinstance(order, np.ndarray) else order
            p[known] = self.predict_proba(left[known], right[known], comps.time[test][known], order=o)
        if self.draws == "davidson":
            pw, pdr, pl = (np.clip(p[:, j], 1e-15, 1) for j in range(3))
            ll = np.where(y == 0.5, np.log(pdr), y * np.log(pw) + (1 - y) * np.log(pl))
        else:
            pp = np.clip(p, 1e-15, 1 - 1e-15)
            ll = y * np.log(pp) + (1 - y) * np.log1p(-pp)
        ll = np.where(known, ll, -np.log(2.0) if self.draws != "davidson" else -np.log(3.0))
        return float(-np.sum(wt * ll)), float(np.sum(wt))

    def select_w2(self, data: Any, grid: Sequence[float] | None = None, *, n_folds: int = 4,
                  test_fraction: float = 0.2) -> DynamicBT:
        """Choose ``w2`` from ``grid`` by rolling-origin held-out log-loss, then refit on all data.

        The last ``test_fraction`` of the distinct times is cut into
        ``n_folds`` consecutive blocks (fewer if there are fewer distinct
        times). For each block, every candidate is fitted on all games before
        the block and scores the block's games (``predict_proba`` with
        uncertainty at the game's time; items not seen before are scored as an
        even game); the held-out log-losses are summed over the blocks. One
        cut alone is noisy on small data. ``grid`` defaults to
        :attr:`W2_GRID` (which contains 0, the static model). A choice at the
        grid's upper end, or at a lower end above 0, is flagged with a
        ``UserWarning``: widen the grid. The per-candidate table (pooled
        ``log_loss`` and one column per block) is in ``w2_path_``.

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> rng = np.random.default_rng(0)
        >>> left = rng.integers(0, 4, 400); right = (left + rng.integers(1, 4, 400)) % 4
        >>> y = (rng.random(400) < 1 / (1 + np.exp(-(left - right) / 2))).astype(float)
        >>> games = pd.DataFrame({"left": left, "right": right, "outcome": y, "time": np.arange(400) // 10})
        >>> m = DynamicBT().select_w2(games, [0.0, 0.01, 0.1])
        >>> m.w2_path_.columns[:2].tolist()
        ['w2', 'log_loss']
        """
        comps = as_comparisons(data)
        if comps.time is None:
            raise ComparisonDataError("select_w2 needs a time column.")
        grid_arr = np.asarray(self.W2_GRID if grid is None else grid, dtype=np.float64).reshape(-1)
        if len(grid_arr) == 0 or not np.all(np.isfinite(grid_arr)) or np.any(grid_arr < 0):
            raise ValueError(f"grid must be a non-empty sequence of finite variances >= 0, got {grid!r}.")
        if int(n_folds) < 1 or not 0 < test_fraction < 1:
            raise ValueError(f"need n_folds >= 1 and 0 < test_fraction < 1, got {n_folds!r}, {test_fraction!r}.")
        self._setup_time(np.asarray(comps.time))
        tf = self._time_to_float(np.asarray(comps.time))
        times = np.unique(tf)
        if len(times) < 2:
            raise ComparisonDataError("select_w2 needs at least two distinct times to hold the later ones out.")
        first = min(max(1, int(np.floor(len(times) * (1 - test_fraction)))), len(times) - 1)
        blocks = [b for b in np.array_split(np.arange(first, len(times)), min(int(n_folds), len(times) - first))
                  if len(b)]
        folds = [(np.flatnonzero(tf < times[b[0]]), np.flatnonzero((tf >= times[b[0]]) & (tf <= times[b[-1]])))
                 for b in blocks]
        original = self.w2
        table = np.empty((len(grid_arr), len(folds)))
        weights = np.empty(len(folds))
        try:
            for i, w2 in enumerate(grid_arr):
                self.w2 = float(w2)
                for j, (train, test) in enumerate(folds):
                    table[i, j], weights[j] = self._heldout_loss(comps, train, test)
        finally:
            self.w2 = original
        pooled = table.sum(axis=1) / weights.sum()
        path = pd.DataFrame({"w2": grid_arr, "log_loss": pooled})
        for j in range(len(blocks)):
            path[f"fold{j}"] = table[:, j] / weights[j]
        best = int(np.argmin(pooled))
        chosen = float(grid_arr[best])
        if len(grid_arr) > 1 and (chosen == grid_arr.max() or (chosen == grid_arr.min() and chosen > 0)):
            warnings.warn(f"select_w2 chose w2={chosen:g}, at the edge of the grid "
                          f"[{grid_arr.min():g}, {grid_arr.max():g}]; widen the grid.", UserWarning, stacklevel=2)
        self.w2 = chosen
        self.fit(comps)
        self.w2_path_ = path
        return self
