"""Leaderboards with honest uncertainty: one call from battles to a publishable table.

>>> import bradley
>>> board = bradley.leaderboard(bradley.simulate_bt(6, 3000, seed=0, item_names=True)[0], ci="fisher")
>>> list(board.table.columns)[:6]
['rank', 'item', 'score', 'se', 'ci_low', 'ci_high']
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtri

from bradley import inference
from bradley.data import Comparisons, PairCounts, python_values
from bradley.models import BradleyTerry
from bradley.models.base import as_comparisons
from bradley.scales import to_elo

__all__ = ["Leaderboard", "leaderboard", "CI_METHODS"]

CI_METHODS = ("fisher", "sandwich", "bootstrap", "none")


@dataclass
class Leaderboard:
    """A ranked table of items with scores, intervals and counts.

    Attributes
    ----------
    table : DataFrame
        One row per item, best first: ``rank`` (1 + number of items whose
        interval lies entirely above, the arena "rank upper bound"), ``item``,
        ``score`` (natural-log strength, mean zero), ``se``, ``ci_low``,
        ``ci_high``, ``elo``, ``elo_low``, ``elo_high``, ``rank_low``,
        ``rank_high``, ``tier``, ``battles``, ``wins``, ``losses``, ``ties``,
        ``win_rate`` (ties as half).
    model : BradleyTerry
        The fitted model.
    ci : dict
        ``method``, ``level``, ``rounds``, ``seed`` (and ``fallback_replicates``
        for the bootstrap).
    anchor : (str, float) or None
        Item and Elo rating the Elo columns are shifted to.
    """

    table: pd.DataFrame
    model: BradleyTerry
    ci: dict[str, Any]
    anchor: tuple[str, float] | None = None
    bootstrap: inference.BootstrapResult | None = field(default=None, repr=False)

    def win_probabilities(self) -> pd.DataFrame:
        """Matrix of ``P(row beats column)`` in leaderboard order (for tie models the
        expected score ``P(win) + P(tie)/2``)."""
        order = self.table["item"].to_numpy()
        idx = self.model._index.codes(order)
        n = len(order)
        left, right = np.repeat(idx, n), np.tile(idx, n)
        proba = self.model.predict_proba(left, right)
        if proba.ndim == 2:  # tie models: win / tie / loss -> expected score of the row item
            proba = proba[:, 0] + 0.5 * proba[:, 1]
        matrix = proba.reshape(n, n)
        np.fill_diagonal(matrix, 0.5)
        return pd.DataFrame(matrix, index=order, columns=order)

    def battle_counts(self) -> pd.DataFrame:
        """Matrix of the number of comparisons between every two items, in leaderboard order."""
        order = self.table["item"].to_numpy()
        idx = self.model._index.codes(order)
        pairs = self.model.pair_counts_
        m = np.zeros((len(self.model.items_),) * 2)
        m[pairs.first, pairs.second] = pairs.totals
        m[pairs.second, pairs.first] = pairs.totals
        return pd.DataFrame(m[np.ix_(idx, idx)], index=order, columns=order)

    def to_dict(self) -> dict[str, Any]:
        """The JSON schema of ``bradley leaderboard --format json``."""
        model = self.model
        items = []
        for row in self.table.itertuples(index=False):
            items.append(
                {
                    "name": python_values([row.item])[0],
                    "score": float(row.score),
                    "rank": int(row.rank),
                    "wins": float(row.wins),
                    "losses": float(row.losses),
                    "ties": float(row.ties),
                    "se": _nan_to_none(row.se),
                    "ci_low": _nan_to_none(row.ci_low),
                    "ci_high": _nan_to_none(row.ci_high),
                    "rank_low": int(row.rank_low),
                    "rank_high": int(row.rank_high),
                    "elo": float(row.elo),
                }
            )
        family = getattr(model, "family", "bt")
        result = {
            "model": "bradley-terry" if family == "bt" else family,
            "n_items": int(len(model.items_)),
            "n_comparisons": int(model.n_comparisons_),
            "log_likelihood": float(model.log_likelihood_),
            "converged": bool(model.converged_),
            "iterations": int(model.n_iter_),
            "ci": self.ci,
            "items": items,
        }
        if getattr(model, "bias_reduction", False):
            result["bias_reduction"] = True
        params = getattr(model, "params_", None)
        if params is not None and len(params):
            result["parameters"] = {str(k): {"estimate": float(r.estimate), "se": float(r.se)} for k, r in params.iterrows()}
        return result

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_markdown(self) -> str:
        from bradley.report import render_summary

        return render_summary(self._display_table(), "markdown")

    def to_csv(self) -> str:
        return self.table.to_csv(index=False)

    def to_text(self) -> str:
        from bradley.report import render_summary

        model, ci = self.model, self.ci
        about = "no intervals" if ci["method"] == "none" else (
            f"{int(round(100 * ci['level']))}% {ci['method']} intervals"
            + (f" ({ci['rounds']} rounds, seed {ci['seed']})" if ci["method"] == "bootstrap" else "")
        )
        kind = {"davidson": "Davidson", "rao-kupper": "Rao-Kupper", "tobt": "TOBT"}.get(getattr(model, "family", "bt"), "Bradley-Terry")
        if getattr(model, "bias_reduction", False):
            kind += " (bias-reduced)"
        header = (
            f"{kind} leaderboard: {len(model.items_)} items, {model.n_comparisons_:,} comparisons, {about}; "
            f"rank = 1 + items certainly better\n\n"
        )
        return header + render_summary(self._display_table(), "table")

    def _display_table(self) -> pd.DataFrame:
        t = self.table
        shown = pd.DataFrame({"rank": t["rank"], "item": t["item"], "elo": t["elo"].round(1)})
        if self.ci["method"] != "none":
            pct = int(round(100 * self.ci["level"]))
            shown[f"{pct}% CI (elo)"] = [f"{lo:.1f} to {hi:.1f}" for lo, hi in zip(t["elo_low"], t["elo_high"])]
            shown["rank range"] = [f"{a}-{b}" if a != b else f"{a}" for a, b in zip(t["rank_low"], t["rank_high"])]
            shown["tier"] = t["tier"]
        shown["score"] = t["score"]
        battles = t["battles"].to_numpy()
        shown["battles"] = battles.astype(np.int64) if np.all(battles == np.round(battles)) else battles.round(1)
        shown["win rate"] = [f"{100 * w:.1f}%" if np.isfinite(w) else "" for w in t["win_rate"]]
        return shown

    def to_html(self, path: str | None = None, title: str = "Leaderboard") -> str:
        """A self-contained HTML report (plots embedded); written to ``path`` if given."""
        from bradley.report import leaderboard_html

        html = leaderboard_html(self, title=title)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(html)
        return html


def _nan_to_none(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def _parse_anchor(anchor: str | tuple[str, float] | None) -> tuple[str, float] | None:
    if anchor is None:
        return None
    if isinstance(anchor, tuple):
        return (anchor[0], float(anchor[1]))
    name, sep, value = str(anchor).rpartition("=")
    if not sep:
        raise ValueError(f"anchor must look like 'model-x=1114' (item=Elo rating), got {anchor!r}.")
    return (name, float(value))


def _fisher_standard_errors(model: Any) -> np.ndarray:
    """Mean-zero standard errors of a fitted model's scores, through the shared uncertainty API."""
    if hasattr(model, "standard_errors") and callable(model.standard_errors):
        return model.standard_errors().to_numpy(dtype=np.float64)
    # models that have not adopted the shared API yet
    return np.asarray(model.scores_se_, dtype=np.float64)


def _tiers(order_low: np.ndarray, order_high: np.ndarray) -> np.ndarray:
    """Statistical tiers in leaderboard order: a new tier starts at the first item
    whose interval lies entirely below the interval of the current tier's leader."""
    tiers = np.empty(len(order_low), dtype=np.int64)
    tier, leader_low = 1, order_low[0] if len(order_low) else 0.0
    for k in range(len(order_low)):
        if order_high[k] < leader_low:
            tier += 1
            leader_low = order_low[k]
        tiers[k] = tier
    return tiers


def leaderboard(
    data: Any,
    model: BradleyTerry | None = None,
    ci: str = "fisher",
    level: float = 0.95,
    rounds: int = 1000,
    seed: int | None = 0,
    cluster: Any | None = None,
    anchor: str | tuple[str, float] | None = None,
    progress: bool = False,
) -> Leaderboard:
    """Fit a Bradley-Terry model and build a leaderboard with intervals.

    Parameters
    ----------
    data : Comparisons, DataFrame or path
        Battles (any input :func:`bradley.read_comparisons` accepts).
    model : estimator, optional
        An unfitted estimator to configure the fit: ``BradleyTerry(prior=...)``
        or ``BradleyTerry(bias_reduction=True)`` (finite, less biased scores
        for items with few battles; default ``BradleyTerry()``), or a model of the family such as
        ``Davidson(order_effect=True)`` or ``PairwiseModel(covariates=True)``
        (style control); the latter support ``ci="fisher"`` (from their
        observed information) and ``"bootstrap"`` (refitting each replicate).
    ci : {"fisher", "sandwich", "bootstrap", "none"}
        Interval method: observed Fisher information (normal intervals from
        the model's ``standard_errors()``, mean-zero constraint),
        sandwich errors (clustered by ``cluster`` if given), percentile
        bootstrap (``rounds`` replicates, reproducible by ``seed``; clusters
        resampled when ``cluster`` is given), or no intervals.
    level : float
        Confidence level of the intervals.
    cluster : array-like or str, optional
        A cluster label per row (e.g. annotator) or ``"annotator"`` to use the
        data's annotator column.
    anchor : str or (str, float), optional
        ``"model-x=1114"``: shift the Elo columns so that this item has this
        rating. It is one common shift of every rating: ranks, tiers and
        win probabilities do not change, and the intervals keep their widths,
        which describe each score under the mean-zero constraint. (Intervals
        of scores *relative to* the anchor item would be wider for the others
        and zero for the anchor; use ``board.model.standard_errors(reference=...)``
        for those.)

    Returns
    -------
    Leaderboard
    """
    if ci not in CI_METHODS:
        raise ValueError(f"ci must be one of {CI_METHODS}, got {ci!r}.")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}.")
    if isinstance(data, PairCounts) and ci in ("sandwich", "bootstrap"):
        # resampling and sandwich errors need one row per game, not weighted pair rows
        comparisons: Comparisons = data.to_comparisons(frequencies=True)
    else:
        comparisons = as_comparisons(data)
    estimator = BradleyTerry() if model is None else model
    if getattr(estimator, "anchor", None) is not None:
        raise ValueError("pass the anchor to leaderboard(), not to the model.")
    is_bt = isinstance(estimator, BradleyTerry)
    if not is_bt and ci == "sandwich":
        raise ValueError("sandwich intervals are available for BradleyTerry; use ci='fisher' or 'bootstrap'.")
    estimator.fit(comparisons)
    scores = estimator.scores_
    n = len(scores)
    if isinstance(cluster, str):
        if cluster != "annotator" or comparisons.annotator is None:
            raise ValueError("cluster='annotator' needs an annotator column in the data.")
        cluster = comparisons.annotator

    z = float(ndtri(0.5 + level / 2.0))
    boot = None
    info: dict[str, Any] = {"method": ci, "level": level, "rounds": None, "seed": None}
    if ci == "fisher":
        se = _fisher_standard_errors(estimator)
        low, high = scores - z * se, scores + z * se
    elif ci == "sandwich":
        cov = inference.sandwich_covariance(estimator, comparisons, None if cluster is None else np.asarray(cluster))
        se = inference.standard_errors(cov)
        low, high = scores - z * se, scores + z * se
    elif ci == "bootstrap":
        boot = inference.bootstrap_scores(
            estimator, comparisons, rounds=rounds, seed=seed,
            cluster=None if cluster is None else np.asarray(cluster), progress=progress,
        )
        se = boot.scores.std(axis=0, ddof=1)
        low, high = boot.interval(level)
        info.update(rounds=rounds, seed=seed, fallback_replicates=boot.n_fallback)
    else:
        se = low = high = np.full(n, np.nan)

    if ci == "none":
        rank_ub = rank_low = rank_high = pd.Series(-scores).rank(method="min").astype(np.int64).to_numpy()
    else:
        # 1 + number of items certainly better (interval entirely above) / certainly worse
        rank_ub = 1 + (low[None, :] > high[:, None]).sum(axis=1)
        rank_worst = n - (high[None, :] < low[:, None]).sum(axis=1)
        if boot is not None:
            rank_low, rank_high = boot.rank_interval(level)
        else:
            rank_low, rank_high = rank_ub, rank_worst

    totals = estimator.pair_counts_.item_totals()
    wins, losses, ties = totals["wins"].to_numpy(), totals["losses"].to_numpy(), totals["ties"].to_numpy()
    battles = wins + losses + ties
    win_rate = np.divide(wins + 0.5 * ties, battles, out=np.full(n, np.nan), where=battles > 0)

    anchor_parsed = _parse_anchor(anchor)
    elo_shift = 0.0
    if anchor_parsed is not None:
        code = estimator._index.codes([anchor_parsed[0]])[0]
        elo_shift = anchor_parsed[1] - float(to_elo(scores[code]))

    table = pd.DataFrame(
        {
            "rank": rank_ub,
            "item": estimator.items_,
            "score": scores,
            "se": se,
            "ci_low": low,
            "ci_high": high,
            "elo": to_elo(scores) + elo_shift,
            "elo_low": to_elo(low) + elo_shift,
            "elo_high": to_elo(high) + elo_shift,
            "rank_low": rank_low,
            "rank_high": rank_high,
            "battles": battles,
            "wins": wins,
            "losses": losses,
            "ties": ties,
            "win_rate": win_rate,
        }
    )
    table = table.sort_values(["score"], ascending=False, kind="stable").reset_index(drop=True)
    if ci == "none":
        table["tier"] = np.arange(1, n + 1)
    else:
        table["tier"] = _tiers(table["ci_low"].to_numpy(), table["ci_high"].to_numpy())
    return Leaderboard(table, estimator, info, anchor_parsed, boot)

