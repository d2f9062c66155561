"""When does Bradley-Terry fail? Diagnostics of comparison data against the one-scale assumption.

BT says every pair's win probability is ``expit(s_i - s_j)``: one number per
item explains all pairs. The tools here measure how far the data are from
that, against the *saturated pairwise model*, which gives every compared pair
its own free probability (the most any model of item-level comparisons can
do, cycles included):

* :func:`preference_matrix` -- the empirical win rates and counts of every
  compared pair (matrix form and a tidy table);
* :func:`intransitive_triads` -- the share of triads (three items with all
  three pairs compared) whose majority directions form a cycle, weighted by
  evidence, and the most convincing cycles;
* :func:`saturated_lr_test` -- the likelihood-ratio (deviance) test of BT
  against the saturated model, with the pairs BT fits worst;
* :func:`held_out_vs_saturated` -- k-fold held-out log-loss of BT and of the
  (smoothed) saturated model, i.e. what BT gives up out of sample;
* :func:`analyze` -- all of it at once (``bradley analyze DATA``).

Ties count as half a win for each side throughout (the outcome coding of
:class:`~bradley.BradleyTerry`), unless ``ties="drop"`` keeps only decisive
games; soft outcomes count fractionally and row weights are frequencies.
See ``docs/beyond-bt.md``.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.special import chdtrc, expit, log_expit, xlogy

from bradley.data import Comparisons, PairCounts
from bradley.errors import ComparisonDataError, ConvergenceWarning, MLEDoesNotExistError
from bradley.models.base import as_comparisons
from bradley.models.bradley_terry import BradleyTerry

__all__ = [
    "PreferenceMatrix",
    "preference_matrix",
    "TriadReport",
    "intransitive_triads",
    "LikelihoodRatioTest",
    "saturated_lr_test",
    "held_out_vs_saturated",
    "Analysis",
    "analyze",
]

#: Prior variance used for a training fold whose BT maximum-likelihood estimate does not exist
#: (held-out comparison only; the fold and the reason are noted in the result).
FALLBACK_PRIOR = 10.0
#: z (one-sided) every link of a cycle must reach for the cycle to count as confident (about 2.5% each).
CONFIDENT_Z = 1.96


# --------------------------------------------------------------------------------------------- inputs

def _as_pairs(data: Any, ties: str = "half") -> PairCounts:
    """PairCounts of ``data`` (Comparisons, PairCounts, a frame or a path); ``ties="drop"`` removes ties."""
    if ties not in ("half", "drop"):
        raise ValueError(f"ties must be 'half' (a tie is half a win for each side) or 'drop', got {ties!r}.")
    pairs = data if isinstance(data, PairCounts) else as_comparisons(data).pair_counts()
    if ties == "drop" and pairs.ties.any():
        keep = (pairs.wins_first + pairs.wins_second) > 0
        pairs = PairCounts(pairs.first[keep], pairs.second[keep], pairs.wins_first[keep],
                           pairs.wins_second[keep], np.zeros(int(keep.sum())), pairs.items)
    if pairs.n_pairs == 0:
        raise ComparisonDataError("the data hold no compared pair with positive weight.")
    return pairs


def _credited(pairs: PairCounts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tie-credited wins of first, of second, and the totals of each pair (ties half each)."""
    wf = pairs.wins_first + 0.5 * pairs.ties
    ws = pairs.wins_second + 0.5 * pairs.ties
    return wf, ws, wf + ws


# --------------------------------------------------------------------------------- preference matrix

@dataclass(frozen=True)
class PreferenceMatrix:
    """Empirical pairwise preferences: win rates and counts of every compared pair.

    Attributes
    ----------
    win_rate : pandas.DataFrame
        ``win_rate.loc[i, j]`` = (wins of i over j + half their ties) / their
        comparisons; NaN where i and j were never compared and on the diagonal.
        ``win_rate + win_rate.T == 1`` wherever defined.
    counts : pandas.DataFrame
        Symmetric (weighted) number of comparisons of i and j (0 when never compared).
    wins, ties : pandas.DataFrame
        Wins of i over j (not tie-credited) and the ties of i and j.
    """

    win_rate: pd.DataFrame
    counts: pd.DataFrame
    wins: pd.DataFrame
    ties: pd.DataFrame

    @property
    def items(self) -> np.ndarray:
        """Item names, in the order of the rows and columns."""
        return np.asarray(self.win_rate.index, dtype=object)

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: one row per ordered compared pair (both orientations).

        Columns ``item``, ``opponent``, ``wins``, ``losses``, ``ties``,
        ``comparisons``, ``win_rate`` (ties as half wins).
        """
        w = self.wins.to_numpy()
        n = self.counts.to_numpy()
        i, j = np.nonzero(n > 0)
        items = self.items
        return pd.DataFrame({"item": items[i], "opponent": items[j], "wins": w[i, j], "losses": w[j, i],
                             "ties": self.ties.to_numpy()[i, j], "comparisons": n[i, j],
                             "win_rate": self.win_rate.to_numpy()[i, j]})

    def summary(self) -> pd.DataFrame:
        """Per item: compared opponents, comparisons, mean win rate over its opponents, best first."""
        rate = self.win_rate.to_numpy()
        n = self.counts.to_numpy()
        table = pd.DataFrame({"item": self.items, "opponents": (n > 0).sum(axis=1), "comparisons": n.sum(axis=1),
                              "mean_win_rate": _nanmean_rows(rate, n > 0)})
        return table.sort_values("mean_win_rate", ascending=False, kind="stable").reset_index(drop=True)


def _nanmean_rows(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    total = np.where(mask, values, 0.0).sum(axis=1)
    count = mask.sum(axis=1)
    return np.divide(total, count, out=np.full(len(total), np.nan), where=count > 0)


def preference_matrix(data: Any, *, ties: str = "half") -> PreferenceMatrix:
    """Empirical win-rate and count matrices of comparison data.

    Parameters
    ----------
    data : Comparisons, PairCounts, DataFrame or path
    ties : {"half", "drop"}
        Count a tie as half a win for each side (default), or leave ties out.

    Returns
    -------
    PreferenceMatrix
        ``win_rate`` and ``counts`` as item x item DataFrames, and
        ``to_frame()`` for the tidy table.

    Examples
    --------
    >>> import bradley
    >>> data = bradley.Comparisons.from_arrays(["a", "a", "b", "c"], ["b", "b", "c", "a"], [1, 0.5, 1, 1])
    >>> pm = preference_matrix(data)
    >>> float(pm.win_rate.loc["a", "b"]), float(pm.counts.loc["a", "b"])
    (0.75, 2.0)
    >>> pm.to_frame().shape
    (6, 7)
    """
    pairs = _as_pairs(data, ties)
    n = pairs.n_items
    wf, ws, total = _credited(pairs)
    rate = np.full((n, n), np.nan)
    rate[pairs.first, pairs.second] = wf / total
    rate[pairs.second, pairs.first] = ws / total
    counts = np.zeros((n, n))
    counts[pairs.first, pairs.second] = counts[pairs.second, pairs.first] = pairs.totals
    wins = np.zeros((n, n))
    wins[pairs.first, pairs.second] = pairs.wins_first
    wins[pairs.second, pairs.first] = pairs.wins_second
    tie = np.zeros((n, n))
    tie[pairs.first, pairs.second] = tie[pairs.second, pairs.first] = pairs.ties
    index = pd.Index(pairs.items, name="item")
    columns = pd.Index(pairs.items, name="opponent")

    def frame(values: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(values, index=index, columns=columns)

    return PreferenceMatrix(frame(rate), frame(counts), frame(wins), frame(tie))


# --------------------------------------------------------------------------------- intransitive triads

@dataclass
class TriadReport:
    """Intransitive (cyclic) triads of comparison data; see :func:`intransitive_triads`.

    Attributes
    ----------
    n_triads : int
        Triads of items with all three pairs compared.
    n_cyclic : int
        Those whose majority directions form a cycle (a beats b, b beats c, c beats a).
    share : float
        ``n_cyclic / n_triads`` (NaN without triads).
    weighted_share : float
        The share weighted by evidence: each triad weighs the smallest
        comparison count of its three pairs.
    n_confident : int
        Cyclic triads whose every link is individually convincing: the
        weakest link's z (see ``cycles``) is at least ``z``.
    confident_share : float
        ``n_confident / n_triads``.
    cycles : pandas.DataFrame
        The most convincing cycles, strongest first: ``a``, ``b``, ``c``
        (a beats b beats c beats a by majority), ``rate_ab``, ``n_ab``,
        ``rate_bc``, ``n_bc``, ``rate_ca``, ``n_ca`` (win rates of the
        winner of each link, counts), ``min_count`` and ``weakest_z``.
    z : float
        The threshold of ``n_confident``.
    """

    n_triads: int
    n_cyclic: int
    share: float
    weighted_share: float
    n_confident: int
    confident_share: float
    cycles: pd.DataFrame
    z: float = CONFIDENT_Z

    def summary(self) -> pd.DataFrame:
        """One-row tidy table of the counts and shares."""
        return pd.DataFrame([self.counts()])

    def counts(self) -> dict[str, Any]:
        """The counts and shares as a dict (``summary()`` as one record)."""
        return {k: getattr(self, k) for k in (
            "n_triads", "n_cyclic", "share", "weighted_share", "n_confident", "confident_share", "z")}


def intransitive_triads(data: Any, *, top: int = 10, z: float = CONFIDENT_Z, ties: str = "half") -> TriadReport:
    """Count and list the cyclic triads of the majority (win-rate > 1/2) relation.

    A *triad* is three items whose three pairs were all compared. Each pair's
    majority direction is who has a win rate above 1/2 (ties as half wins); a
    pair at exactly 1/2 has no direction, and a triad containing one is not
    cyclic. A triad is *cyclic* when its directions form a cycle. Under BT
    (one scale) cycles arise only from sampling noise among close items, so
    the plain share is read together with two evidence-weighted ones:

    * ``weighted_share``: each triad weighs ``min(n_ab, n_bc, n_ca)``, the
      smallest comparison count of its pairs -- cycles resting on one or two
      games count little;
    * ``n_confident`` / ``confident_share``: a cycle counts when its weakest
      link is convincing. Each link's evidence is the binomial z of its
      majority, ``2 sqrt(n) |rate - 1/2|`` (rate = tie-credited win rate,
      n = comparisons); the cycle's is the smallest of its three links'
      (``weakest_z``), and it counts when that is at least ``z``.

    Enumeration runs over the sparse compared-pair graph, one item at a time,
    each item's triads vectorised; counts of any size are kept, and only the
    ``top`` strongest cycles are listed.

    Parameters
    ----------
    data : Comparisons, PairCounts, DataFrame or path
    top : int
        How many cycles to list (ranked by ``weakest_z``, then ``min_count``).
    z : float
        Threshold of a confident cycle (default 1.96).
    ties : {"half", "drop"}

    Examples
    --------
    >>> import bradley
    >>> rps = bradley.PairCounts.from_matrix([[0, 8, 2], [2, 0, 8], [8, 2, 0]], items=["rock", "paper", "water"])
    >>> report = intransitive_triads(rps)
    >>> report.n_triads, report.n_cyclic, report.share
    (1, 1, 1.0)
    >>> report.cycles[["a", "b", "c", "rate_ab", "n_ab"]].to_dict("records")
    [{'a': 'rock', 'b': 'paper', 'c': 'water', 'rate_ab': 0.8, 'n_ab': 10.0}]
    """
    if top < 0:
        raise ValueError(f"top must be non-negative, got {top}.")
    pairs = _as_pairs(data, ties)
    n = pairs.n_items
    wf, _, total = _credited(pairs)
    rate_first = wf / total
    direction = np.sign(rate_first - 0.5).astype(np.int8)  # +1: first beats second by majority
    strength = 2.0 * np.sqrt(total) * np.abs(rate_first - 0.5)
    # upper-triangular CSR of pair positions (+1 so that stored values are never zero)
    upper = sparse.csr_matrix((np.arange(1, pairs.n_pairs + 1, dtype=np.int64), (pairs.first, pairs.second)),
                              shape=(n, n))
    upper.sort_indices()
    n_triads = n_cyclic = n_confident = 0
    weight_all = weight_cyclic = 0.0
    best: list[np.ndarray] = []  # rows (i, j, k) of kept candidate cycles
    best_key: list[np.ndarray] = []
    indptr, indices, values = upper.indptr, upper.indices, upper.data
    for i in range(n):
        start, stop = indptr[i], indptr[i + 1]
        if stop - start < 2:
            continue
        nbr = indices[start:stop]           # j > i compared with i, sorted
        pos_i = values[start:stop] - 1      # pair (i, nbr)
        block = upper[nbr][:, nbr].tocoo()  # pairs (j, k) among them, j < k
        if block.nnz == 0:
            continue
        a, b = block.row, block.col
        p_ij, p_ik, p_jk = pos_i[a], pos_i[b], block.data - 1
        d_ij, d_jk, d_ki = direction[p_ij], direction[p_jk], -direction[p_ik]
        cyclic = (d_ij != 0) & (d_ij == d_jk) & (d_jk == d_ki)
        min_count = np.minimum(np.minimum(total[p_ij], total[p_jk]), total[p_ik])
        n_triads += len(a)
        weight_all += float(min_count.sum())
        if not cyclic.any():
            continue
        c = np.flatnonzero(cyclic)
        weak = np.minimum(np.minimum(strength[p_ij[c]], strength[p_jk[c]]), strength[p_ik[c]])
        n_cyclic += len(c)
        n_confident += int(np.count_nonzero(weak >= z))
        weight_cyclic += float(min_count[c].sum())
        if top:
            keep = c if len(c) <= top else c[np.argpartition(-weak, top - 1)[:top]]
            rows = np.column_stack([np.full(len(keep), i), nbr[a[keep]], nbr[b[keep]]])
            key = np.column_stack([np.minimum(np.minimum(strength[p_ij[keep]], strength[p_jk[keep]]),
                                              strength[p_ik[keep]]), min_count[keep]])
            best.append(rows)
            best_key.append(key)
    cycles = _cycle_table(pairs, best, best_key, top, direction, rate_first, total)
    share = n_cyclic / n_triads if n_triads else float("nan")
    return TriadReport(
        n_triads=int(n_triads), n_cyclic=int(n_cyclic), share=float(share),
        weighted_share=float(weight_cyclic / weight_all) if weight_all > 0 else float("nan"),
        n_confident=int(n_confident),
        confident_share=float(n_confident / n_triads) if n_triads else float("nan"),
        cycles=cycles, z=float(z))


def _cycle_table(pairs: PairCounts, best: list[np.ndarray], best_key: list[np.ndarray], top: int,
                 direction: np.ndarray, rate_first: np.ndarray, total: np.ndarray) -> pd.DataFrame:
    columns = ["a", "b", "c", "rate_ab", "n_ab", "rate_bc", "n_bc", "rate_ca", "n_ca", "min_count", "weakest_z"]
    if not best:
        return pd.DataFrame({name: pd.Series(dtype=object if name in "abc" else float) for name in columns})
    rows = np.concatenate(best)
    key = np.concatenate(best_key)
    order = np.lexsort((-key[:, 1], -key[:, 0]))[:top]
    rows, key = rows[order], key[order]
    i, j, k = rows[:, 0], rows[:, 1], rows[:, 2]
    lookup = pd.Index(pairs.first * pairs.n_items + pairs.second)

    def link(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Win rate of u over v, and their count."""
        lo, hi = np.minimum(u, v), np.maximum(u, v)
        p = lookup.get_indexer(lo * pairs.n_items + hi)
        r = np.where(u < v, rate_first[p], 1.0 - rate_first[p])
        return r, total[p]

    # orient every cycle so that a beats b beats c beats a (i -> j -> k -> i when i beats j)
    forward = direction[lookup.get_indexer(i * pairs.n_items + j)] > 0
    a, b, c = i, np.where(forward, j, k), np.where(forward, k, j)
    r_ab, n_ab = link(a, b)
    r_bc, n_bc = link(b, c)
    r_ca, n_ca = link(c, a)
    names = np.asarray(pairs.items, dtype=object)
    return pd.DataFrame({"a": names[a], "b": names[b], "c": names[c], "rate_ab": r_ab, "n_ab": n_ab,
                         "rate_bc": r_bc, "n_bc": n_bc, "rate_ca": r_ca, "n_ca": n_ca,
                         "min_count": key[:, 1], "weakest_z": key[:, 0]})


# ------------------------------------------------------------------------------ BT vs the saturated model

def _components(pairs: PairCounts) -> tuple[int, np.ndarray]:
    from scipy.sparse.csgraph import connected_components

    n = pairs.n_items
    graph = sparse.coo_matrix((np.ones(pairs.n_pairs), (pairs.first, pairs.second)), shape=(n, n))
    count, labels = connected_components(graph, directed=False)
    return int(count), np.asarray(labels, dtype=np.int64)


@dataclass
class _ComponentFit:
    scores: np.ndarray          # per item (NaN for items without comparisons)
    labels: np.ndarray          # component of each item
    n_components: int           # components with at least one pair
    converged: bool
    notes: list[str]


def _fit_bt_by_component(pairs: PairCounts, fallback_prior: float | None = None, tol: float = 1e-10) -> _ComponentFit:
    """BT maximum likelihood in each connected component of the comparison graph (scores centred per component).

    Without ``fallback_prior`` a component whose MLE does not exist raises
    :class:`MLEDoesNotExistError`; with it, that component is fitted with the
    Gaussian prior and a note says so.
    """
    count, labels = _components(pairs)
    scores = np.full(pairs.n_items, np.nan)
    pair_label = labels[pairs.first]
    order = np.argsort(pair_label, kind="stable")
    bounds = np.searchsorted(pair_label[order], np.arange(count + 1))
    notes: list[str] = []
    converged = True
    n_used = 0
    for g in range(count):
        rows = order[bounds[g]:bounds[g + 1]]
        if len(rows) == 0:
            continue  # an item never compared
        n_used += 1
        members = np.flatnonzero(labels == g)
        recode = np.full(pairs.n_items, -1, dtype=np.int64)
        recode[members] = np.arange(len(members))
        sub = PairCounts(recode[pairs.first[rows]], recode[pairs.second[rows]], pairs.wins_first[rows],
                         pairs.wins_second[rows], pairs.ties[rows], np.asarray(pairs.items, dtype=object)[members])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            try:
                model = BradleyTerry(tol=tol).fit(sub)
            except MLEDoesNotExistError as exc:
                if fallback_prior is None:
                    raise
                model = BradleyTerry(prior=fallback_prior, tol=tol).fit(sub)
                notes.append(f"{str(exc).split('. Fit with')[0]}: fitted with prior={fallback_prior:g}")
        if not model.converged_:
            converged = False
            notes.extend(str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning))
        scores[members] = model.scores_
    return _ComponentFit(scores, labels, n_used, converged, notes)


def _saturated_log_likelihood(pairs: PairCounts) -> np.ndarray:
    """Per-pair saturated log-likelihood: ``W log(W/n) + L log(L/n)`` with tie-credited W, L."""
    wf, ws, total = _credited(pairs)
    with np.errstate(divide="ignore", invalid="ignore"):
        return xlogy(wf, wf / total) + xlogy(ws, ws / total)


@dataclass
class LikelihoodRatioTest:
    """Likelihood-ratio test of BT against the saturated pairwise model; see :func:`saturated_lr_test`.

    Attributes
    ----------
    deviance : float
        ``2 * (log_likelihood_saturated - log_likelihood_bt)``.
    df : int
        Compared pairs minus (items - connected components).
    p_value : float
        Chi-square upper tail of ``deviance`` on ``df`` (NaN when ``df`` is 0).
    log_likelihood_bt, log_likelihood_saturated : float
    n_pairs, n_items, n_components : int
        Items counted are those compared at least once.
    ties : str
        ``"half"`` (ties are half wins in both fits) or ``"drop"``.
    pairs : pandas.DataFrame
        Per compared pair, worst fitted first: ``item``, ``opponent``,
        ``comparisons``, ``win_rate`` (observed, tie-credited), ``bt_prob``,
        ``deviance`` (the pair's share of the deviance) and ``pearson``
        residual ``(W - n p) / sqrt(n p (1 - p))``.
    converged : bool
    notes : list of str
        Caveats on the chi-square reference (fractional weights, soft labels, ties).
    """

    deviance: float
    df: int
    p_value: float
    log_likelihood_bt: float
    log_likelihood_saturated: float
    n_pairs: int
    n_items: int
    n_components: int
    ties: str
    pairs: pd.DataFrame
    converged: bool
    notes: list[str] = field(default_factory=list)

    def summary(self) -> pd.DataFrame:
        """One-row tidy table of the test."""
        return pd.DataFrame([self.result()])

    def result(self) -> dict[str, Any]:
        """The test as a dict (``summary()`` as one record)."""
        return {k: getattr(self, k) for k in (
            "deviance", "df", "p_value", "log_likelihood_bt", "log_likelihood_saturated", "n_pairs", "n_items",
            "n_components", "ties")}


def saturated_lr_test(data: Any, *, ties: str = "half") -> LikelihoodRatioTest:
    """Likelihood-ratio (deviance) test of Bradley-Terry against the saturated pairwise model.

    The saturated model gives every compared pair its own probability
    ``p_ij`` (estimate: the observed win rate); BT constrains them to
    ``expit(s_i - s_j)``. Twice the log-likelihood gap is asymptotically
    chi-square with ``df = pairs - (items - components)`` degrees of freedom
    when BT holds (one score per item, less one per connected component for
    the shift). A small p-value says one scale does not explain the pairs.

    Ties count as half a win for each side in both fits (``ties="half"``,
    the coding of :class:`~bradley.BradleyTerry`); a tie then varies less than
    a decisive game, so the chi-square reference is conservative (p-values
    too large) on data with many ties -- ``ties="drop"`` tests the decisive
    games only. Row weights are frequencies; with fractional weights or soft
    labels the deviance is still the likelihood gap but its chi-square
    reference is only approximate (noted in ``notes``).

    Parameters
    ----------
    data : Comparisons, PairCounts, DataFrame or path
    ties : {"half", "drop"}

    Raises
    ------
    MLEDoesNotExistError
        When the BT MLE does not exist within a connected component (an item
        or group that never won or never lost): then BT's supremum sits at
        infinite scores and the test is not defined as such.

    Examples
    --------
    >>> import bradley
    >>> rps = bradley.PairCounts.from_matrix([[0, 40, 10], [10, 0, 40], [40, 10, 0]])
    >>> test = saturated_lr_test(rps)
    >>> test.df, round(test.deviance, 2), test.p_value < 1e-10
    (1, 57.82, True)
    """
    pairs = _as_pairs(data, ties)
    fit = _fit_bt_by_component(pairs)
    wf, ws, total = _credited(pairs)
    d = fit.scores[pairs.first] - fit.scores[pairs.second]
    ll_bt_pair = wf * log_expit(d) + ws * log_expit(-d)
    ll_sat_pair = _saturated_log_likelihood(pairs)
    dev_pair = np.maximum(2.0 * (ll_sat_pair - ll_bt_pair), 0.0)
    ll_bt, ll_sat = float(ll_bt_pair.sum()), float(ll_sat_pair.sum())
    n_used = int(np.unique(np.concatenate([pairs.first, pairs.second])).size)
    df = pairs.n_pairs - (n_used - fit.n_components)
    deviance = max(2.0 * (ll_sat - ll_bt), 0.0)
    p_value = float(chdtrc(df, deviance)) if df > 0 else float("nan")
    p = expit(d)
    with np.errstate(divide="ignore", invalid="ignore"):
        pearson = (wf - total * p) / np.sqrt(total * p * (1.0 - p))
    names = np.asarray(pairs.items, dtype=object)
    table = pd.DataFrame({"item": names[pairs.first], "opponent": names[pairs.second], "comparisons": total,
                          "win_rate": wf / total, "bt_prob": p, "deviance": dev_pair, "pearson": pearson})
    table = table.sort_values("deviance", ascending=False, kind="stable").reset_index(drop=True)
    notes = list(fit.notes)
    notes.extend(_reference_notes(pairs))
    return LikelihoodRatioTest(deviance=float(deviance), df=int(df), p_value=p_value, log_likelihood_bt=ll_bt,
                               log_likelihood_saturated=ll_sat, n_pairs=pairs.n_pairs, n_items=n_used,
                               n_components=fit.n_components, ties=ties, pairs=table, converged=fit.converged,
                               notes=notes)


def _reference_notes(pairs: PairCounts) -> list[str]:
    notes = []
    counts = np.concatenate([pairs.wins_first, pairs.wins_second, pairs.ties])
    if np.any(counts != np.round(counts)):
        notes.append("fractional counts (weights or soft labels): the chi-square reference assumes whole games "
                     "and is approximate")
    if pairs.ties.any():
        share = float(pairs.ties.sum() / pairs.totals.sum())
        notes.append(f"ties ({share:.1%} of comparisons) count as half wins in both fits; a tie varies less than "
                     "a decisive game, so the chi-square p-value is conservative (ties='drop' tests decisive games)")
    return notes


# ----------------------------------------------------------------------------- held-out comparison

def _fold_weights(comparisons: Comparisons, folds: int, seed: int | None) -> np.ndarray:
    """Weight of every row in every fold, shape (rows, folds): games dealt when weights are whole, else rows."""
    n = comparisons.n_comparisons
    rng = np.random.default_rng(seed)
    w = comparisons.weight
    if w is not None and np.all(w == np.round(w)) and float(w.sum()) < 2**53:
        games = w.astype(np.int64)
        if int(games.sum()) < folds:
            raise ValueError(f"there are {int(games.sum())} games but {folds} folds.")
        return rng.multinomial(games, np.full(folds, 1.0 / folds)).astype(np.float64)
    if n < folds:
        raise ValueError(f"there are {n} rows but {folds} folds: use at most {n} folds.")
    dealt = np.zeros((n, folds))
    dealt[np.arange(n), rng.permutation(n) % folds] = 1.0 if w is None else w
    return dealt


def held_out_vs_saturated(data: Any, *, folds: int = 5, seed: int | None = 0, alpha: float = 1.0,
                          ties: str = "half", split: Any | None = None) -> pd.DataFrame:
    """k-fold held-out log-loss of BT against the saturated pairwise model (and a coin).

    Rows (games, when the weights are whole numbers) are dealt at random to
    ``folds`` folds; each model is fitted on the other folds and scored on
    the held-out one by the mean cross-entropy
    ``-[o log p + (1 - o) log(1 - p)]`` (a tie is ``o = 1/2``, as in
    :func:`bradley.evaluate.log_loss`).

    * ``bt``: the BT maximum-likelihood fit of the training folds (each
      connected component of their comparison graph on its own; a component
      whose MLE does not exist is fitted with ``prior=FALLBACK_PRIOR`` and the
      table's ``attrs["notes"]`` says so). Pairs of items not linked in the
      training folds are predicted 1/2.
    * ``saturated``: each pair's training win rate smoothed toward 1/2,
      ``(W + alpha) / (n + 2 alpha)``; for pairs *absent* from the training
      folds, which it cannot predict, the BT prediction is used (their share
      of the held-out weight is ``unseen_share``).
    * ``coin``: 1/2 for every game (``log 2``).

    Parameters
    ----------
    data : Comparisons, PairCounts, DataFrame or path
    folds : int
    seed : int or None
    alpha : float
        Add-alpha smoothing of the saturated model (default 1, Laplace).
    ties : {"half", "drop"}
    split : array-like, optional
        A fold label for every row (rows kept whole), instead of the random
        split; ``folds`` is then the number of distinct labels.

    Returns
    -------
    pandas.DataFrame
        One row per model: ``model``, ``log_loss`` (pooled over folds),
        ``log_loss_sd`` (between folds), ``gap_vs_bt`` (log_loss - BT's; a
        negative number is what BT gives up). ``attrs``: ``folds``,
        ``alpha``, ``unseen_share``, ``notes``.

    Examples
    --------
    >>> import bradley
    >>> data, _ = bradley.simulate_bt(6, 3000, seed=1)
    >>> table = held_out_vs_saturated(data, folds=3)
    >>> table["model"].tolist()
    ['bt', 'saturated', 'coin']
    >>> bool(table.loc[0, "log_loss"] < table.loc[2, "log_loss"])
    True
    """
    if not (alpha >= 0):
        raise ValueError(f"alpha must be non-negative, got {alpha!r}.")
    if ties not in ("half", "drop"):
        raise ValueError(f"ties must be 'half' or 'drop', got {ties!r}.")
    comparisons = as_comparisons(data)
    labels = None
    if split is not None:
        labels = np.asarray(split).reshape(-1)
        if len(labels) != comparisons.n_comparisons:
            raise ValueError(f"split needs one fold label per row: {comparisons.n_comparisons} rows, "
                             f"got {len(labels)} labels.")
    if ties == "drop":
        decisive = comparisons.outcome != 0.5
        if not decisive.any():
            raise ComparisonDataError("ties='drop' leaves no comparisons: every row is a tie.")
        comparisons = comparisons.take(np.flatnonzero(decisive))
        labels = None if labels is None else labels[decisive]
    if labels is not None:
        codes, uniques = pd.factorize(labels, sort=True)
        if (codes < 0).any():
            raise ValueError("the fold labels of split contain missing values.")
        folds = len(uniques)
    if folds < 2:
        raise ValueError(f"folds must be at least 2, got {folds}.")
    n_items = comparisons.n_items
    lo = np.minimum(comparisons.left, comparisons.right)
    hi = np.maximum(comparisons.left, comparisons.right)
    pair_id, pair_first = _pair_ids(lo, hi, n_items)
    first_of, second_of = pair_first // n_items, pair_first % n_items
    n_pairs = len(pair_first)
    o = np.where(comparisons.left < comparisons.right, comparisons.outcome, 1.0 - comparisons.outcome)  # first wins
    weight = np.ones(comparisons.n_comparisons) if comparisons.weight is None else comparisons.weight
    if labels is None:
        dealt = _fold_weights(comparisons, folds, seed)
    else:
        dealt = np.zeros((comparisons.n_comparisons, folds))
        dealt[np.arange(comparisons.n_comparisons), codes] = weight
    losses = {"bt": np.zeros(folds), "saturated": np.zeros(folds), "coin": np.zeros(folds)}
    fold_weight = np.zeros(folds)
    unseen_weight = 0.0
    notes: list[str] = []
    for f in range(folds):
        test_w = dealt[:, f]
        train_w = weight - test_w
        wins = np.bincount(pair_id, train_w * o, n_pairs)
        tot = np.bincount(pair_id, train_w, n_pairs)
        seen = tot > 0
        train = PairCounts(first_of[seen], second_of[seen], wins[seen], tot[seen] - wins[seen],
                           np.zeros(int(seen.sum())), comparisons.items)
        fit = _fit_bt_by_component(train, fallback_prior=FALLBACK_PRIOR)
        notes.extend(f"fold {f + 1}: {note}" for note in fit.notes)
        d = fit.scores[first_of] - fit.scores[second_of]
        linked = np.isfinite(d) & (fit.labels[first_of] == fit.labels[second_of])
        p_bt = np.where(linked, expit(np.where(linked, d, 0.0)), 0.5)
        with np.errstate(invalid="ignore", divide="ignore"):
            p_sat = np.where(seen, (wins + alpha) / (tot + 2.0 * alpha), p_bt)
        rows = np.flatnonzero(test_w > 0)
        w_rows, o_rows, pid = test_w[rows], o[rows], pair_id[rows]
        fold_weight[f] = w_rows.sum()
        unseen_weight += float(w_rows[~seen[pid]].sum())
        for name, p in (("bt", p_bt[pid]), ("saturated", p_sat[pid]), ("coin", np.full(len(rows), 0.5))):
            losses[name][f] = float(np.dot(w_rows, _cross_entropy(p, o_rows)))
    total_weight = fold_weight.sum()
    records = []
    ok = fold_weight > 0
    for name, fold_loss in losses.items():
        per_fold = fold_loss[ok] / fold_weight[ok]
        records.append({"model": name, "log_loss": float(fold_loss.sum() / total_weight),
                        "log_loss_sd": float(np.std(per_fold, ddof=1)) if ok.sum() > 1 else float("nan")})
    table = pd.DataFrame(records)
    table["gap_vs_bt"] = table["log_loss"] - table.loc[0, "log_loss"]
    table.attrs.update(folds=folds, alpha=float(alpha), unseen_share=unseen_weight / total_weight, notes=notes,
                       ties=ties)
    return table


def _pair_ids(lo: np.ndarray, hi: np.ndarray, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Index of each row's unordered pair among the distinct pairs, and the pairs' keys ``lo * n + hi``."""
    key = lo * n_items + hi
    keys, inverse = np.unique(key, return_inverse=True)
    return inverse.reshape(-1), keys


def _cross_entropy(p: np.ndarray, o: np.ndarray) -> np.ndarray:
    """``-[o log p + (1 - o) log(1 - p)]`` with 0 log 0 = 0 (p may be exactly 0 or 1 only where o agrees)."""
    with np.errstate(divide="ignore"):
        return -(xlogy(o, p) + xlogy(1.0 - o, 1.0 - p))


# ----------------------------------------------------------------------------------------- everything

@dataclass
class Analysis:
    """Everything :func:`analyze` finds; ``to_text()`` and ``to_dict()`` render it.

    Attributes
    ----------
    n_comparisons : int
        Rows read (the total count for PairCounts), ties included.
    n_items : int
        Items with at least one comparison (with ``ties="drop"``: one decisive game).
    n_pairs : int
        Distinct compared pairs (with ``ties="drop"``: with a decisive game).
    preference : PreferenceMatrix
    triads : TriadReport or None
    lr_test : LikelihoodRatioTest or None
    lr_test_decisive : LikelihoodRatioTest or None
        The same test on the decisive games only, when the data have ties and
        ``ties="half"`` (the half-win test is conservative with many ties).
    held_out : pandas.DataFrame or None
    skipped : dict
        Section name -> why it could not be computed (e.g. the BT MLE does not exist).
    """

    n_comparisons: int
    n_items: int
    n_pairs: int
    preference: PreferenceMatrix
    triads: TriadReport | None
    lr_test: LikelihoodRatioTest | None
    held_out: pd.DataFrame | None
    skipped: dict[str, str] = field(default_factory=dict)
    top: int = 10
    lr_test_decisive: LikelihoodRatioTest | None = None
    ties: str = "half"

    def summary(self) -> pd.DataFrame:
        """Headline numbers as a tidy two-column table (``metric``, ``value``)."""
        rows: list[tuple[str, Any]] = [("comparisons", self.n_comparisons), ("items", self.n_items),
                                       ("compared pairs", self.n_pairs)]
        if self.triads is not None:
            t = self.triads
            rows += [("triads", t.n_triads), ("cyclic triads", t.n_cyclic), ("cyclic share", t.share),
                     ("cyclic share (weighted)", t.weighted_share), ("confident cycles", t.n_confident)]
        if self.lr_test is not None:
            lr = self.lr_test
            rows += [("deviance", lr.deviance), ("df", lr.df), ("p-value", lr.p_value)]
        if self.lr_test_decisive is not None:
            lr = self.lr_test_decisive
            rows += [("deviance (decisive games)", lr.deviance), ("df (decisive games)", lr.df),
                     ("p-value (decisive games)", lr.p_value)]
        if self.held_out is not None:
            h = self.held_out.set_index("model")["log_loss"]
            rows += [("held-out log-loss bt", h["bt"]), ("held-out log-loss saturated", h["saturated"])]
        return pd.DataFrame(rows, columns=["metric", "value"])

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (NaN becomes None)."""
        out: dict[str, Any] = {"n_comparisons": self.n_comparisons, "n_items": self.n_items,
                               "n_pairs": self.n_pairs, "ties": self.ties, "skipped": dict(self.skipped)}
        if self.triads is not None:
            t = self.triads
            out["triads"] = {**t.counts(), "cycles": t.cycles.to_dict("records")}
        if self.lr_test is not None:
            lr = self.lr_test
            out["lr_test"] = {**lr.result(), "converged": lr.converged, "notes": lr.notes,
                              "worst_pairs": lr.pairs.head(self.top).to_dict("records")}
        if self.lr_test_decisive is not None:
            lr = self.lr_test_decisive
            out["lr_test_decisive"] = {**lr.result(), "converged": lr.converged,
                                       "notes": lr.notes}
        if self.held_out is not None:
            out["held_out"] = {"models": self.held_out.to_dict("records"),
                               **{k: self.held_out.attrs.get(k) for k in ("folds", "alpha", "unseen_share",
                                                                          "notes", "ties")}}
        return _plain(out)

    def to_json(self) -> str:
        """``to_dict()`` as JSON text."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    def to_text(self) -> str:
        """A plain-text report."""
        lines = [f"{self.n_comparisons:,} comparisons, {self.n_items} items, {self.n_pairs:,} compared pairs "
                 f"({self.n_pairs / max(self.n_items * (self.n_items - 1) / 2, 1):.0%} of all pairs)"
                 + ("; ties left out: items and pairs of decisive games" if self.ties == "drop" else ""), ""]
        tie_words = "ties left out" if self.ties == "drop" else "ties half wins"
        lines.append(f"Intransitive triads (majority cycles a > b > c > a; {tie_words})")
        if self.triads is not None:
            t = self.triads
            lines += [f"  triads with all three pairs compared: {t.n_triads:,}",
                      f"  cyclic: {t.n_cyclic:,} ({_pct(t.share)}); weighted by the smallest pair count: "
                      f"{_pct(t.weighted_share)}",
                      f"  confident cycles (every link z >= {t.z:g}): {t.n_confident:,} ({_pct(t.confident_share)})"]
            if len(t.cycles):
                lines.append("  strongest cycles (win rate, comparisons of each link; weakest-link z):")
                for r in t.cycles.itertuples(index=False):
                    lines.append(f"    {r.a} > {r.b} ({r.rate_ab:.2f}, {r.n_ab:g}) > {r.c} ({r.rate_bc:.2f}, "
                                 f"{r.n_bc:g}) > {r.a} ({r.rate_ca:.2f}, {r.n_ca:g}); z = {r.weakest_z:.2f}")
        else:
            lines.append(f"  not computed: {self.skipped.get('triads', '')}")
        lines += ["", "Likelihood-ratio test: BT against the saturated pairwise model"]
        if self.lr_test is not None:
            lr = self.lr_test
            lines += [f"  log-likelihood BT {lr.log_likelihood_bt:,.2f}, saturated {lr.log_likelihood_saturated:,.2f}",
                      f"  deviance {lr.deviance:,.2f} on {lr.df:,} df, p = {lr.p_value:.3g}"
                      + ("" if lr.converged else " (BT fit did not converge)")]
            lines += [f"  note: {note}" for note in lr.notes]
            if self.lr_test_decisive is not None:
                dec = self.lr_test_decisive
                lines.append(f"  decisive games only (ties left out): deviance {dec.deviance:,.2f} on {dec.df:,} df, "
                             f"p = {dec.p_value:.3g}")
            elif "lr_test_decisive" in self.skipped:
                lines.append(f"  decisive games only: not computed: {self.skipped['lr_test_decisive']}")
            worst = lr.pairs.head(min(self.top, 5))
            if len(worst):
                lines.append("  pairs BT fits worst (observed win rate vs BT; comparisons; deviance):")
                for r in worst.itertuples(index=False):
                    lines.append(f"    {r.item} vs {r.opponent}: {r.win_rate:.3f} vs {r.bt_prob:.3f}; "
                                 f"{r.comparisons:g}; {r.deviance:.2f}")
        else:
            lines.append(f"  not computed: {self.skipped.get('lr_test', '')}")
        lines += ["", "Held-out log-loss (k-fold over games; lower is better)"]
        if self.held_out is not None:
            h = self.held_out
            lines.append(f"  {h.attrs['folds']} folds; saturated = training win rate smoothed toward 1/2 "
                         f"(alpha = {h.attrs['alpha']:g}), BT's prediction for pairs unseen in training "
                         f"({_pct(h.attrs['unseen_share'])} of held-out games)")
            for r in h.itertuples(index=False):
                lines.append(f"    {r.model:<10} {r.log_loss:.5f} (sd {r.log_loss_sd:.5f})  vs bt {r.gap_vs_bt:+.5f}")
            gap = float(h.loc[h["model"] == "saturated", "gap_vs_bt"].iloc[0])
            verdict = ("BT predicts held-out games at least as well as the saturated model: out of sample, "
                       "nothing is lost by one scale" if gap >= 0 else
                       f"the saturated model predicts better by {-gap:.5f} nats per game: what BT gives up")
            lines.append(f"  {verdict}")
            lines += [f"  note: {note}" for note in h.attrs.get("notes", [])]
        else:
            lines.append(f"  not computed: {self.skipped.get('held_out', '')}")
        return "\n".join(lines)


def _pct(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:.2%}"


def _plain(value: Any) -> Any:
    """Numpy scalars to Python, NaN/inf to None, recursively."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _undefined_test(exc: MLEDoesNotExistError) -> str:
    # The test compares the BT *MLE* with the saturated model; a prior or Firth fit would be another test,
    # so the fitting remedies in the error message (``--prior``, which `analyze` does not take) are left out.
    reason = " ".join(str(exc).split()).split(" Fit with a Gaussian prior")[0]
    return f"{reason} The likelihood-ratio test needs the MLE, so it is undefined on these data."


def analyze(data: Any, *, folds: int = 5, seed: int | None = 0, alpha: float = 1.0, top: int = 10,
            z: float = CONFIDENT_Z, ties: str = "half") -> Analysis:
    """All the diagnostics of when BT fails, on one data set (``bradley analyze DATA``).

    Runs :func:`preference_matrix`, :func:`intransitive_triads`,
    :func:`saturated_lr_test` and :func:`held_out_vs_saturated`. A section
    that cannot be computed (e.g. the BT MLE does not exist, so the
    likelihood-ratio test is undefined) is left ``None`` with the reason in
    ``skipped``; the others still run.

    Parameters
    ----------
    data : Comparisons, PairCounts, DataFrame or path
    folds, seed, alpha
        Of :func:`held_out_vs_saturated`.
    top : int
        Cycles and worst-fitted pairs to list.
    z : float
        Threshold of a confident cycle.
    ties : {"half", "drop"}

    Examples
    --------
    >>> import bradley
    >>> data, _ = bradley.simulate_bt(8, 4000, seed=0)
    >>> report = analyze(data, folds=3)
    >>> report.lr_test.df, report.triads.n_triads
    (21, 56)
    >>> print(report.to_text().splitlines()[0])
    4,000 comparisons, 8 items, 28 compared pairs (100% of all pairs)
    """
    comparisons = data if isinstance(data, PairCounts) else as_comparisons(data)
    pairs = _as_pairs(comparisons, ties)
    if isinstance(comparisons, PairCounts):
        n_rows = int(round(float(comparisons.totals.sum())))
        comparisons = comparisons.to_comparisons()
    else:
        n_rows = comparisons.n_comparisons
    skipped: dict[str, str] = {}
    lr_test: LikelihoodRatioTest | None = None
    held_out: pd.DataFrame | None = None
    triads = intransitive_triads(pairs, top=top, z=z)
    try:
        lr_test = saturated_lr_test(pairs, ties=ties)
    except MLEDoesNotExistError as exc:
        skipped["lr_test"] = _undefined_test(exc)
    lr_test_decisive: LikelihoodRatioTest | None = None
    if ties == "half" and pairs.ties.any() and (pairs.wins_first + pairs.wins_second).any():
        try:
            lr_test_decisive = saturated_lr_test(pairs, ties="drop")
        except MLEDoesNotExistError as exc:
            skipped["lr_test_decisive"] = _undefined_test(exc)
    try:
        held_out = held_out_vs_saturated(comparisons, folds=folds, seed=seed, alpha=alpha, ties=ties)
    except (ValueError, MLEDoesNotExistError) as exc:
        skipped["held_out"] = " ".join(str(exc).split())
    used = int(np.unique(np.concatenate([pairs.first, pairs.second])).size)
    return Analysis(n_comparisons=n_rows, n_items=used, n_pairs=pairs.n_pairs, preference=preference_matrix(pairs),
                    triads=triads, lr_test=lr_test, held_out=held_out, skipped=skipped, top=top,
                    lr_test_decisive=lr_test_decisive, ties=ties)

