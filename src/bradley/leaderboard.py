"""Leaderboards with honest uncertainty: one call from battles to a publishable table.

>>> import bradley
>>> board = bradley.leaderboard(bradley.simulate_bt(6, 3000, seed=0, item_names=True)[0], ci="fisher")
>>> list(board.table.columns)[:6]
['rank', 'item', 'score', 'se', 'ci_low', 'ci_high']
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtri

from bradley import inference
from bradley.data import Comparisons, PairCounts, python_values
from bradley.models import BradleyTerry, PairwiseModel
from bradley.models.base import as_comparisons
from bradley.scales import to_elo

__all__ = ["Leaderboard", "leaderboard", "CI_METHODS", "DEFAULT_MIN_BATTLES"]

CI_METHODS = ("auto", "fisher", "sandwich", "bootstrap", "none")

#: Items with fewer battles are provisional (see :func:`leaderboard`).
DEFAULT_MIN_BATTLES = 20


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
        ``win_rate`` (ties as half), ``provisional`` (fewer battles than
        ``min_battles``: flagged, not counted in the others' ranks) and, when
        the comparison graph is disconnected (a prior fit), ``component``
        (ranks and tiers are then within the component).
    model : BradleyTerry or PairwiseModel
        The fitted model.
    ci : dict
        ``method`` (the one used), ``requested``, ``reason``, ``level``,
        ``rounds``, ``seed``, ``min_battles``, ``n_provisional``,
        ``n_components`` (and ``fallback_replicates`` for the bootstrap,
        ``clusters``, ``provisional_intervals`` where they apply);
        :attr:`intervals` says it in words.
    anchor : (str, float) or None
        Item and Elo rating the Elo columns are shifted to.
    """

    table: pd.DataFrame
    model: BradleyTerry | PairwiseModel
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

    @property
    def intervals(self) -> str:
        """Which intervals the table shows, in words (also ``to_dict()["intervals"]``).

        Examples
        --------
        >>> import bradley
        >>> bradley.leaderboard(bradley.simulate_bt(4, 400, seed=1, item_names=True)[0]).intervals
        '95% fisher intervals (chosen by ci="auto": no ties: the Fisher information of the model is calibrated)'
        """
        ci = self.ci
        if ci["method"] == "none":
            return "no intervals"
        text = f"{int(round(100 * ci['level']))}% {ci['method']} intervals"
        if ci.get("clusters") is not None:
            text += f" clustered ({ci['clusters']} clusters)"
        if ci["method"] == "bootstrap":
            text += f" ({ci['rounds']} rounds, seed {ci['seed']})"
        if ci.get("requested") == "auto":
            text += f' (chosen by ci="auto": {ci["reason"]})'
        if ci.get("provisional_intervals"):
            text += (f"; provisional items (fewer than {ci['min_battles']:g} battles): "
                     f"{ci['provisional_intervals']}")
        return text

    def to_dict(self) -> dict[str, Any]:
        """The leaderboard's fields as a dict (:meth:`to_json` adds the shared vocabulary of the CLI's JSON).

        Top level: ``intervals`` (which intervals, in words), ``ci`` (``method``
        actually used, ``requested``, ``reason``, ``level``, ``rounds``,
        ``seed``, ``min_battles``, ``n_provisional``, ``n_components``, and
        where they apply ``clusters``, ``fallback_replicates``,
        ``provisional_intervals``). Per item: ``provisional`` and ``battles``,
        and ``component`` when the comparison graph is disconnected.
        """
        model = self.model
        has_component = "component" in self.table.columns
        items = []
        for row in self.table.itertuples(index=False):
            entry = {
                "name": python_values([row.item])[0],
                "score": float(row.score),
                "rank": int(row.rank),
                "wins": float(row.wins),
                "losses": float(row.losses),
                "ties": float(row.ties),
                "battles": float(row.battles),
                "se": _nan_to_none(row.se),
                "ci_low": _nan_to_none(row.ci_low),
                "ci_high": _nan_to_none(row.ci_high),
                "rank_low": int(row.rank_low),
                "rank_high": int(row.rank_high),
                "elo": float(row.elo),
                "provisional": bool(row.provisional),
            }
            if has_component:
                entry["component"] = int(row.component)
            items.append(entry)
        family = getattr(model, "family", "bt")
        result = {
            "model": "bradley-terry" if family == "bt" else family,
            "n_items": int(len(model.items_)),
            "n_comparisons": int(model.n_comparisons_),
            "log_likelihood": float(model.log_likelihood_),
            "converged": bool(model.converged_),
            "iterations": int(model.n_iter_),
            "intervals": self.intervals,
            "ci": self.ci,
            "items": items,
        }
        if getattr(model, "bias_reduction", False):
            result["bias_reduction"] = True
        params = getattr(model, "params_", None)
        if params is not None and len(params):
            result["parameters"] = {
                str(k): {"estimate": float(r.estimate), "se": float(r.se)} for k, r in params.iterrows()
            }
        return result

    def to_json(self) -> str:
        """The JSON of ``bradley leaderboard --format json`` (item fields named as in ``bradley fit``)."""
        from bradley.report import leaderboard_to_dict

        return json.dumps(leaderboard_to_dict(self), indent=2)

    def to_markdown(self) -> str:
        """The markdown of ``bradley leaderboard --format markdown`` (header says which intervals)."""
        from bradley.report import render_leaderboard

        return render_leaderboard(self, "markdown")

    def to_csv(self) -> str:
        """Every column of :attr:`table`, plus ``interval`` (e.g. ``"95% sandwich"``) saying which intervals."""
        table = self.table.copy()
        ci = self.ci
        table["interval"] = "none" if ci["method"] == "none" else f"{int(round(100 * ci['level']))}% {ci['method']}"
        return table.to_csv(index=False)

    def to_text(self) -> str:
        """The text table of ``bradley leaderboard`` (header says which intervals)."""
        from bradley.report import render_leaderboard

        return render_leaderboard(self, "table")

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
    return model.standard_errors().to_numpy(dtype=np.float64)


def _tiers(order_low: np.ndarray, order_high: np.ndarray, provisional: np.ndarray | None = None) -> np.ndarray:
    """Statistical tiers in leaderboard order: a new tier starts at the first item
    whose interval lies entirely below the interval of the current tier's leader.

    A provisional item never leads a tier (its wide interval would merge
    everything below it): it joins the current tier, or the next one when its
    interval lies entirely below the current leader's.
    """
    m = len(order_low)
    provisional = np.zeros(m, dtype=bool) if provisional is None else np.asarray(provisional, dtype=bool)
    tiers = np.empty(m, dtype=np.int64)
    tier, leader_low = 1, None
    for k in range(m):
        if provisional[k]:
            tiers[k] = tier + (leader_low is not None and order_high[k] < leader_low)
            continue
        if leader_low is None:
            leader_low = order_low[k]
        elif order_high[k] < leader_low:
            tier += 1
            leader_low = order_low[k]
        tiers[k] = tier
    return tiers


def _tie_share(data: Any) -> float:
    """Share of the comparison weight that is a tie or a soft outcome (strictly between 0 and 1)."""
    if isinstance(data, PairCounts):
        total = float(np.sum(data.totals))
        return float(np.sum(data.ties)) / total if total > 0 else 0.0
    w = np.ones(data.n_comparisons) if data.weight is None else np.asarray(data.weight, dtype=np.float64)
    total = float(w.sum())
    if total <= 0:
        return 0.0
    inner = (data.outcome > 0.0) & (data.outcome < 1.0)
    return float(w[inner].sum()) / total


def _whole_counts(pairs: PairCounts) -> bool:
    counts = np.concatenate([pairs.wins_first, pairs.wins_second, pairs.ties])
    return bool(np.all(counts == np.round(counts)))


def _choose_interval(data: Any, is_bt: bool, clustered: bool, models_ties: bool = True) -> tuple[str, str]:
    """``ci="auto"``: the calibrated interval method for these data and this model, and why."""
    if clustered:
        if is_bt:
            return "sandwich", "rows are clustered: the clustered sandwich accounts for dependence within clusters"
        return "bootstrap", ("rows are clustered and the sandwich is available for BradleyTerry only: "
                             "clusters are resampled")
    share = _tie_share(data)
    if share > 0 and is_bt:
        what = f"{100 * share:.1f}% of the comparisons are ties or soft outcomes"
        if isinstance(data, PairCounts) and not _whole_counts(data):
            return "fisher", (f"{what}, for which the sandwich is calibrated, but the counts are not whole numbers "
                              "(weighted pairs, not games), so Fisher intervals are shown; they are too wide with ties")
        return "sandwich", (f"{what}: Bradley-Terry counts a tie as half a win with the variance of a win or loss, "
                            "so its Fisher intervals are too wide; the sandwich uses the observed variance")
    if share > 0 and models_ties:
        return "fisher", f"{100 * share:.1f}% ties, modelled by the model itself: its Fisher information is calibrated"
    if share > 0:
        # e.g. PairwiseModel(family="bt"): ties are half wins, as for BradleyTerry, but no sandwich is available
        return "bootstrap", (f"{100 * share:.1f}% of the comparisons are ties or soft outcomes, which this model "
                             "counts as half wins: its Fisher intervals are too wide, and the sandwich is available "
                             "for BradleyTerry only, so comparisons are resampled")
    return "fisher", "no ties: the Fisher information of the model is calibrated"


def _rank_bounds(low: np.ndarray, high: np.ndarray, counted: np.ndarray,
                 component: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best and worst rank from intervals: 1 + counted items (same component) certainly better,
    and 1 + counted competitors - counted items certainly worse."""
    competitor = counted[None, :] & (component[None, :] == component[:, None])
    np.fill_diagonal(competitor, False)
    better = ((low[None, :] > high[:, None]) & competitor).sum(axis=1)
    worse = ((high[None, :] < low[:, None]) & competitor).sum(axis=1)
    return 1 + better, 1 + competitor.sum(axis=1) - worse


def leaderboard(
    data: Any,
    model: BradleyTerry | PairwiseModel | None = None,
    ci: str = "auto",
    level: float = 0.95,
    rounds: int = 1000,
    seed: int | None = 0,
    cluster: Any | None = None,
    anchor: str | tuple[str, float] | None = None,
    progress: bool = False,
    min_battles: float = DEFAULT_MIN_BATTLES,
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
    ci : {"auto", "fisher", "sandwich", "bootstrap", "none"}
        Interval method: observed Fisher information (normal intervals from
        the model's ``standard_errors()``, mean-zero constraint),
        sandwich errors (clustered by ``cluster`` if given), percentile
        bootstrap (``rounds`` replicates, reproducible by ``seed``; clusters
        resampled when ``cluster`` is given), or no intervals. ``"auto"``
        (default) picks the calibrated one: for Bradley-Terry on data with
        ties (or soft outcomes) the sandwich, since counting a tie as half a
        win with a win's variance makes Fisher intervals too wide; with
        ``cluster`` the clustered sandwich (the cluster bootstrap for other
        models); otherwise Fisher. ``board.ci`` and every output say which
        was used and why.
    level : float
        Confidence level of the intervals.
    cluster : array-like or str, optional
        A cluster label per row (e.g. annotator) or ``"annotator"`` to use the
        data's annotator column. One cluster is refused; fewer than 20 warn
        (the intervals would be too narrow).
    anchor : str or (str, float), optional
        ``"model-x=1114"``: shift the Elo columns so that this item has this
        rating. It is one common shift of every rating: ranks, tiers and
        win probabilities do not change, and the intervals keep their widths,
        which describe each score under the mean-zero constraint. (Intervals
        of scores *relative to* the anchor item would be wider for the others
        and zero for the anchor; use ``board.model.standard_errors(reference=...)``
        for those.)
    min_battles : float
        Items with fewer (weighted) battles are ``provisional``: flagged in
        the table and every output, left out of the other items' ranks, rank
        ranges and tier boundaries, and their sandwich or bootstrap interval
        is widened to contain their Fisher interval (which does not rely on
        resampling or on residuals the item barely has). Default 20: in
        simulation, sandwich and bootstrap intervals of items with 2 to 10
        battles covered 86-94% instead of 95%, those of items with 20 battles
        95-95.5% (docs/leaderboard.md). 0 turns the rule off.

    Returns
    -------
    Leaderboard

    Examples
    --------
    >>> import bradley
    >>> data = bradley.Comparisons.from_arrays(["a", "a", "b", "c"] * 30 + ["a"], ["b", "c", "c", "a"] * 30 + ["d"],
    ...                                        [1, 0.5, 1, 0] * 30 + [1])
    >>> board = bradley.leaderboard(data, model=bradley.BradleyTerry(bias_reduction=True))
    >>> board.ci["method"], board.table.loc[board.table["provisional"], "item"].tolist()
    ('sandwich', ['d'])
    """
    if ci not in CI_METHODS:
        raise ValueError(f"ci must be one of {CI_METHODS}, got {ci!r}.")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}.")
    if not (np.isfinite(min_battles) and min_battles >= 0):
        raise ValueError(f"min_battles must be a non-negative number, got {min_battles!r}.")
    estimator = BradleyTerry() if model is None else model
    if getattr(estimator, "anchor", None) is not None:
        raise ValueError("pass the anchor to leaderboard(), not to the model.")
    is_bt = isinstance(estimator, BradleyTerry)
    source = data if isinstance(data, PairCounts) else as_comparisons(data)
    if isinstance(cluster, str):
        annotator = getattr(source, "annotator", None)  # PairCounts have no annotator column
        if cluster != "annotator" or annotator is None:
            raise ValueError("cluster='annotator' needs an annotator column in the data.")
        cluster = annotator
    if ci == "auto":
        # A tie model (Davidson, Rao-Kupper, ...) has calibrated Fisher information with ties; family="bt" does not.
        models_ties = not is_bt and getattr(estimator, "family", None) != "bt"
        method, reason = _choose_interval(source, is_bt, cluster is not None, models_ties)
    else:
        method, reason = ci, "as requested"
    if not is_bt and method == "sandwich":
        raise ValueError("sandwich intervals are available for BradleyTerry; use ci='fisher' or 'bootstrap'.")
    if isinstance(source, PairCounts):
        # resampling and sandwich errors need one row per game, not weighted pair rows
        comparisons: Comparisons = (source.to_comparisons(frequencies=True) if method in ("sandwich", "bootstrap")
                                    else source.to_comparisons())
    else:
        comparisons = source
    estimator.fit(comparisons)
    scores = estimator.scores_
    n = len(scores)

    z = float(ndtri(0.5 + level / 2.0))
    boot = None
    info: dict[str, Any] = {"method": method, "requested": ci, "reason": reason, "level": level,
                            "rounds": None, "seed": None, "min_battles": min_battles}
    totals = estimator.pair_counts_.item_totals()
    wins, losses, ties = totals["wins"].to_numpy(), totals["losses"].to_numpy(), totals["ties"].to_numpy()
    battles = wins + losses + ties
    win_rate = np.divide(wins + 0.5 * ties, battles, out=np.full(n, np.nan), where=battles > 0)
    provisional = battles < min_battles

    if method == "fisher":
        se = _fisher_standard_errors(estimator)
        low, high = scores - z * se, scores + z * se
    elif method == "sandwich":
        with warnings.catch_warnings():
            if ci == "auto":  # chosen for the user: the MAP note of an explicit request is not news here
                warnings.filterwarnings("ignore", message="sandwich errors with a prior")
            # provisional items' battles enter with the model's variance: their few residuals cannot
            # estimate one, and through the mean-zero constraint they would narrow every interval
            cov = inference.sandwich_covariance(
                estimator, comparisons, None if cluster is None else np.asarray(cluster),
                model_based=provisional if provisional.any() else None,
            )
        se = inference.standard_errors(cov)
        low, high = scores - z * se, scores + z * se
    elif method == "bootstrap":
        boot = inference.bootstrap_scores(
            estimator, comparisons, rounds=rounds, seed=seed,
            cluster=None if cluster is None else np.asarray(cluster), progress=progress,
        )
        se = boot.scores.std(axis=0, ddof=1)
        low, high = boot.interval(level)
        info.update(rounds=rounds, seed=seed, fallback_replicates=boot.n_fallback)
    else:
        se = low = high = np.full(n, np.nan)
    if cluster is not None:
        info["clusters"] = int(len(pd.unique(np.asarray(cluster))))

    info["n_provisional"] = int(provisional.sum())
    if method in ("sandwich", "bootstrap") and provisional.any():
        # resampling cannot see what it never sampled, and an item's residuals say little
        # when it has a handful of battles: never show less than the Fisher interval
        se_fisher = _fisher_standard_errors(estimator)
        low, high, se = low.copy(), high.copy(), se.copy()
        low[provisional] = np.fmin(low, scores - z * se_fisher)[provisional]
        high[provisional] = np.fmax(high, scores + z * se_fisher)[provisional]
        se[provisional] = np.fmax(se, se_fisher)[provisional]
        info["provisional_intervals"] = f"the wider of the {method} and the Fisher interval"
    counted = ~provisional if (~provisional).any() else np.ones(n, dtype=bool)

    n_components = int(getattr(estimator, "n_components_", 1))
    component = (np.asarray(estimator.components_, dtype=np.int64) if n_components > 1
                 else np.zeros(n, dtype=np.int64))
    info["n_components"] = n_components

    if method == "none":
        # 1 + counted items of the same component with a higher score
        higher = (scores[None, :] > scores[:, None]) & counted[None, :] & (component[None, :] == component[:, None])
        rank_ub = rank_low = rank_high = 1 + higher.sum(axis=1)
    else:
        rank_ub, rank_worst = _rank_bounds(low, high, counted, component)
        rank_low, rank_high = rank_ub, rank_worst
        if boot is not None:
            rank_low, rank_high = rank_ub.copy(), rank_worst.copy()
            for c in range(n_components):
                members = np.flatnonzero(component == c)
                part = inference.BootstrapResult(boot.scores[:, members], boot.n_fallback, rounds, seed, boot.unit)
                b_low, b_high = part.rank_interval(level, among=counted[members])
                # provisional items keep the interval-based range: their replicates are degenerate
                keep = ~provisional[members]
                rank_low[members[keep]], rank_high[members[keep]] = b_low[keep], b_high[keep]

    anchor_parsed = _parse_anchor(anchor)
    elo_shift = 0.0
    if anchor_parsed is not None:
        code = estimator._index.codes([anchor_parsed[0]])[0]
        elo_shift = anchor_parsed[1] - float(to_elo(scores[code]))

    columns: dict[str, Any] = {
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
        "provisional": provisional,
    }
    if n_components > 1:
        columns["component"] = component
    table = pd.DataFrame(columns)
    if n_components > 1:
        table = table.sort_values(["component", "score"], ascending=[True, False], kind="stable")
    else:
        table = table.sort_values("score", ascending=False, kind="stable")
    table = table.reset_index(drop=True)
    if method == "none":
        tier = np.arange(1, n + 1)
    else:
        tier = np.empty(n, dtype=np.int64)
        comp_sorted = table["component"].to_numpy() if n_components > 1 else np.zeros(n, dtype=np.int64)
        for c in range(n_components):
            rows = np.flatnonzero(comp_sorted == c)
            tier[rows] = _tiers(table["ci_low"].to_numpy()[rows], table["ci_high"].to_numpy()[rows],
                                table["provisional"].to_numpy()[rows] & (~provisional).any())
    table.insert(table.columns.get_loc("rank_high") + 1, "tier", tier)
    return Leaderboard(table, estimator, info, anchor_parsed, boot)
