"""Social-choice rules on comparison or ranking data, and checks of two axioms.

Every rule reads the same input -- comparison data (``Comparisons``,
``PairCounts``, a comparison table or file) or ballots (``Rankings``) -- and
reduces it to the weighted *pairwise majority matrix* ``W[a, b]`` = how often
``a`` was preferred to ``b`` (a tie gives each side half). Ballots are broken
into all their pairs first (:func:`bradley.break_rankings`, ``"full"``), so that
``W`` is the classic majority matrix of a preference profile. The *majority
margin* is ``D = W - W^T``.

Rules (one function each, and :func:`aggregate` by name):

* :func:`borda` -- on ballots, the Borda count: each ballot gives an item one
  point per item it ranks below it (half per tie), i.e. the row sums of
  ``W``. On pairwise data, the sum of the item's pairwise win *shares*
  ``W[a, b] / (W[a, b] + W[b, a])`` over the items it was compared with, so
  that an item compared more often is not favoured.
* :func:`copeland` -- majority contests won, plus ``tie`` (default 1/2) per
  contest tied or never held.
* :func:`schulze` -- strongest paths (winning votes or margins).
* :func:`ranked_pairs` -- Tideman's ranked pairs, with a stated tie-break.
* :func:`kemeny` -- the ordering with fewest pairwise disagreements: exact by
  integer programming (HiGHS) up to a size limit, beyond it a heuristic with
  the gap to a linear-programming lower bound reported.
* :func:`maximal_lottery_ranking` -- items ordered by their probability in the
  maximal lottery (:func:`bradley.nash.maximal_lottery`).
* :func:`bradley_terry_rule` -- rank by fitted BT scores; with ``features`` the
  linear BT rule ``score = x . w`` (the "linear social choice" setting of Ge et
  al. 2024).

Axioms (:func:`pareto_violations`, :func:`condorcet_violations`,
:func:`check_axioms`) report the pairs on which a rule's output breaks them.

See ``docs/beyond-bt.md``.
"""

from __future__ import annotations

import itertools
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bradley.data import Comparisons, PairCounts
from bradley.errors import ComparisonDataError, ConvergenceWarning

__all__ = [
    "RULES",
    "majority_matrix",
    "aggregate",
    "compare_rules",
    "borda",
    "copeland",
    "schulze",
    "ranked_pairs",
    "kemeny",
    "kemeny_disagreements",
    "maximal_lottery_ranking",
    "bradley_terry_rule",
    "pareto_violations",
    "condorcet_violations",
    "check_axioms",
]

#: Names accepted by :func:`aggregate`.
RULES = ("borda", "copeland", "schulze", "ranked_pairs", "kemeny", "maximal_lottery", "bt")


# ------------------------------------------------------------------------------------------------ profile

@dataclass(frozen=True)
class _Profile:
    """The pairwise majority data every rule reads."""

    items: np.ndarray  # names, in input order
    wins: np.ndarray  # W[a, b]: preferred a to b, ties as half each
    strict: np.ndarray  # S[a, b]: strictly preferred a to b (ties not counted)
    ties: np.ndarray  # symmetric tie counts
    ballots: bool  # True when built from Rankings
    comparisons: Comparisons  # what BT fits

    @property
    def n(self) -> int:
        return len(self.items)

    @property
    def margin(self) -> np.ndarray:
        return self.strict - self.strict.T

    @property
    def total(self) -> np.ndarray:
        return self.strict + self.strict.T + self.ties


#: Profiles of ``Rankings`` already broken into pairs (immutable, compared by identity), so that checking several
#: rules on the same ballots does not break them again.
_BALLOT_PROFILES: weakref.WeakKeyDictionary[Any, _Profile] = weakref.WeakKeyDictionary()


def _profile(data: Any) -> _Profile:
    if isinstance(data, _Profile):
        return data
    from bradley.rankings import Rankings, break_rankings

    ballots = isinstance(data, Rankings)
    if ballots and data in _BALLOT_PROFILES:
        return _BALLOT_PROFILES[data]
    if ballots:
        comparisons = break_rankings(data, "full")
    else:
        from bradley.models.base import as_comparisons

        comparisons = as_comparisons(data)
    pairs = data if isinstance(data, PairCounts) else comparisons.pair_counts()
    if pairs.n_items < 2:
        raise ComparisonDataError(f"aggregation needs at least two items, the data have {pairs.n_items}.")
    n = pairs.n_items
    ties = np.zeros((n, n))
    ties[pairs.first, pairs.second] = pairs.ties
    ties[pairs.second, pairs.first] = pairs.ties
    profile = _Profile(np.asarray(pairs.items, dtype=object), pairs.win_matrix(0.5), pairs.win_matrix(0.0), ties,
                       ballots, comparisons)
    if ballots:
        _BALLOT_PROFILES[data] = profile
    return profile


def majority_matrix(data: Any) -> pd.DataFrame:
    """The weighted pairwise majority matrix ``W[a, b]``: how often a was preferred to b (ties half each).

    Parameters
    ----------
    data : Rankings, Comparisons, PairCounts, comparison table or path
        Ballots are broken into all their pairs (a ballot ranking ``a`` above
        ``b`` is one vote for ``a`` over ``b``; items present but unranked rank
        below the ranked ones; a ballot silent on a pair gives it no vote).

    Returns
    -------
    DataFrame
        Items on both axes (index ``item``, columns ``opponent``).

    Examples
    --------
    >>> import bradley
    >>> ballots = bradley.Rankings.from_orderings([["a", "b", "c"], ["b", "c", "a"]])
    >>> majority_matrix(ballots).loc["a"].tolist()
    [0.0, 1.0, 1.0]
    """
    p = _profile(data)
    return pd.DataFrame(p.wins, index=pd.Index(p.items, name="item"), columns=pd.Index(p.items, name="opponent"))


def _ranks(score: np.ndarray, atol: float = 0.0) -> np.ndarray:
    """1 = best; scores within ``atol`` of the previous one (in sorted order) share its rank."""
    order = np.argsort(-score, kind="stable")
    ranks = np.empty(len(score), dtype=np.int64)
    current = 1
    for pos, i in enumerate(order):
        if pos and score[order[pos - 1]] - score[i] > atol:
            current = pos + 1
        ranks[i] = current
    return ranks


def _table(p: _Profile, score: np.ndarray, rule: str, atol: float = 0.0, rank: np.ndarray | None = None,
           **attrs: Any) -> pd.DataFrame:
    score = np.asarray(score, dtype=np.float64)
    ranks = _ranks(score, atol) if rank is None else rank
    table = pd.DataFrame({"item": p.items, "rank": ranks, "score": score})
    table = table.sort_values("rank", kind="stable").reset_index(drop=True)
    table.attrs.update({"rule": rule, **attrs})
    return table


def _scale_tol(values: np.ndarray) -> float:
    return 1e-9 * max(1.0, float(np.max(np.abs(values))) if values.size else 1.0)


# ------------------------------------------------------------------------------------------------ positional

def borda(data: Any) -> pd.DataFrame:
    """Borda scores: the Borda count on ballots, the sum of pairwise win shares on pairwise data.

    On ``Rankings`` the score of ``a`` is the (weighted) number of times a
    ballot ranked ``a`` above another item, ties counting half: with complete
    ballots of ``m`` items this is the classic count ``m-1, m-2, ..., 0``
    summed over ballots. On comparison data, where pairs are compared unequal
    numbers of times, it is ``sum_b W[a, b] / (W[a, b] + W[b, a])`` over the
    items ``b`` that ``a`` met, the empirical probability of beating each.

    Returns
    -------
    DataFrame
        ``item, rank, score`` best first (equal scores share the better rank).

    Examples
    --------
    >>> import bradley
    >>> ballots = bradley.Rankings.from_orderings([["a", "b", "c"]] * 3 + [["b", "c", "a"]] * 2)
    >>> borda(ballots)[["item", "score"]].values.tolist()
    [['b', 7.0], ['a', 6.0], ['c', 2.0]]
    """
    p = _profile(data)
    if p.ballots:
        score = p.wins.sum(axis=1)
    else:
        total = p.wins + p.wins.T
        score = np.divide(p.wins, total, out=np.zeros_like(p.wins), where=total > 0).sum(axis=1)
    return _table(p, score, "borda", _scale_tol(score), convention="borda count" if p.ballots else "win shares")


# ------------------------------------------------------------------------------------------------ majority rules

def copeland(data: Any, tie: float = 0.5) -> pd.DataFrame:
    """Copeland scores: pairwise majority contests won, plus ``tie`` for each tied (or never held) contest.

    Parameters
    ----------
    tie : float
        Credit for a contest with zero majority margin, in [0, 1]: 1/2 is
        Copeland's rule, 0 and 1 are the Copeland^0 and Llull variants.
        Pairs never compared have margin zero and count as tied.

    Examples
    --------
    >>> import bradley
    >>> cycle = bradley.Rankings.from_orderings([["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]])
    >>> copeland(cycle)["score"].tolist()  # a Condorcet paradox: everyone wins once
    [1.0, 1.0, 1.0]
    """
    if not (0.0 <= tie <= 1.0):
        raise ValueError(f"tie must lie in [0, 1], got {tie!r}.")
    p = _profile(data)
    d = p.margin
    tol = _scale_tol(d)
    off = ~np.eye(p.n, dtype=bool)
    score = ((d > tol) & off).sum(axis=1) + tie * ((np.abs(d) <= tol) & off).sum(axis=1)
    return _table(p, score.astype(np.float64), "copeland", 1e-12, tie=tie)


def _schulze_strengths(strict: np.ndarray, strength: str) -> np.ndarray:
    """Strongest-path matrix ``P[a, b]`` (widest path, Floyd-Warshall; pure kernel)."""
    d = strict - strict.T
    tol = _scale_tol(d)
    beats = d > tol
    link = strict if strength == "winning_votes" else d
    paths = np.where(beats, link, 0.0)
    n = len(paths)
    for k in range(n):
        via = np.minimum(paths[:, k][:, None], paths[k, :][None, :])
        np.fill_diagonal(via, 0.0)
        via[k, :] = 0.0
        via[:, k] = 0.0
        np.maximum(paths, via, out=paths)
    return paths


def schulze(data: Any, strength: str = "winning_votes") -> pd.DataFrame:
    """The Schulze method (beatpath): ``a`` beats ``b`` when its strongest path to ``b`` is stronger.

    The strength of a direct link ``a -> b`` with ``W[a, b] > W[b, a]`` is the
    number of votes for ``a`` over ``b`` (``"winning_votes"``, Schulze's
    recommendation) or the margin (``"margin"``); a path is as strong as its
    weakest link. The resulting relation is transitive; the score is the
    number of items an item beats, which orders the items compatibly with it
    (items neither beating the other may share a rank only when their counts
    are equal).

    Examples
    --------
    >>> import bradley
    >>> ballots = bradley.Rankings.from_orderings([["a", "b", "c"]] * 3 + [["b", "c", "a"]] * 2)
    >>> schulze(ballots)["item"].tolist()  # a is the Condorcet winner
    ['a', 'b', 'c']
    """
    if strength not in ("winning_votes", "margin"):
        raise ValueError(f"strength must be 'winning_votes' or 'margin', got {strength!r}.")
    p = _profile(data)
    paths = _schulze_strengths(p.strict, strength)
    tol = _scale_tol(paths)
    beats = paths - paths.T > tol
    winners = [p.items[i] for i in np.flatnonzero(~beats.any(axis=0))]
    return _table(p, beats.sum(axis=1).astype(np.float64), "schulze", 1e-12, strength=strength, winners=winners,
                  paths=pd.DataFrame(paths, index=pd.Index(p.items, name="item"),
                                     columns=pd.Index(p.items, name="opponent")))


def _tiebreak_positions(p: _Profile, tiebreak: Any) -> np.ndarray:
    """Position of each item in the tie-breaking order (0 = preferred)."""
    if tiebreak is None:
        return np.arange(p.n)
    order = list(tiebreak)
    index = pd.Index(p.items)
    pos = index.get_indexer(pd.Index(order, dtype=object))
    if (pos < 0).any() or len(set(pos.tolist())) != p.n or len(order) != p.n:
        raise ComparisonDataError(
            f"tiebreak must list every item exactly once ({p.n} items); unknown: "
            f"{[o for o, q in zip(order, pos, strict=True) if q < 0][:5]}.")
    out = np.empty(p.n, dtype=np.int64)
    out[pos] = np.arange(p.n)
    return out


def ranked_pairs(data: Any, tiebreak: Any = None) -> pd.DataFrame:
    """Tideman's ranked pairs: lock majorities from the strongest down, skipping any that closes a cycle.

    Majorities ``a > b`` (``D[a, b] > 0``) are taken in decreasing margin,
    then decreasing winning votes ``W[a, b]``; remaining ties in that key are
    broken by the tie-breaking order of items (Zavist and Tideman's
    "tie-breaking ranking"): of two pairs, the one whose winner comes first
    in it is taken first, then the one whose loser comes *last* in it. Pairs
    with zero margin (or never compared) are then locked in the tie-breaking
    orientation, so the outcome is always a complete strict order.

    Parameters
    ----------
    tiebreak : sequence of items, optional
        The tie-breaking order, best first; default: the items' order in the
        data (``majority_matrix(data).index``).

    Returns
    -------
    DataFrame
        ``item, rank, score`` (score = number of items below it).
        ``attrs["locked"]``: the majorities locked, in order;
        ``attrs["skipped"]``: those skipped because they would close a cycle.

    Examples
    --------
    >>> import bradley
    >>> ballots = bradley.Rankings.from_orderings([["a", "b", "c"]] * 4 + [["b", "c", "a"]] * 3
    ...                                           + [["c", "a", "b"]] * 2)
    >>> ranked_pairs(ballots)["item"].tolist()  # a>b (5), b>c (7), c>a (1): c>a is skipped
    ['a', 'b', 'c']
    """
    p = _profile(data)
    tb = _tiebreak_positions(p, tiebreak)
    d = p.margin
    tol = _scale_tol(d)
    first, second = np.nonzero(d > tol)
    key = np.lexsort((-tb[second], tb[first], -p.strict[first, second], -d[first, second]))
    majority = list(zip(first[key].tolist(), second[key].tolist(), strict=True))
    ua, ub = np.nonzero(np.triu(np.abs(d) <= tol, 1))
    swap = tb[ua] > tb[ub]
    wa, wb = np.where(swap, ub, ua), np.where(swap, ua, ub)
    key0 = np.lexsort((-tb[wb], tb[wa]))
    level = list(zip(wa[key0].tolist(), wb[key0].tolist(), strict=True))
    reach = np.eye(p.n, dtype=bool)  # reach[x, y]: y is at or below x in the locked order
    locked, skipped = [], []
    for a, b in majority + level:
        if reach[b, a]:
            if d[a, b] > tol:
                skipped.append((p.items[a], p.items[b]))
            continue
        if not reach[a, b]:
            reach |= np.outer(reach[:, a], reach[b, :])
        if d[a, b] > tol:
            locked.append((p.items[a], p.items[b]))
    below = reach.sum(axis=1) - 1.0
    return _table(p, below, "ranked_pairs", 0.0, locked=locked, skipped=skipped,
                  tiebreak=[p.items[i] for i in np.argsort(tb)])


# ------------------------------------------------------------------------------------------------ Kemeny

def kemeny_disagreements(wins: np.ndarray, order: Any) -> float:
    """Weighted pairwise disagreements of an ordering (best first) with the majority matrix ``wins`` (pure kernel).

    ``sum over a placed above b of wins[b, a]``: the Kemeny objective.

    Examples
    --------
    >>> kemeny_disagreements(np.array([[0, 3], [2, 0]]), [1, 0])
    3.0
    """
    w = np.asarray(wins, dtype=np.float64)
    o = np.asarray(order, dtype=np.int64)
    sub = w[np.ix_(o, o)]
    return float(np.tril(sub, -1).sum())


def _pair_index(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    iu, ju = np.triu_indices(n, 1)
    index = np.full((n, n), -1, dtype=np.int64)
    index[iu, ju] = np.arange(len(iu))
    return iu, ju, index


def _transitivity(n: int) -> Any:
    """Sparse rows ``x_ij + x_jk - x_ik`` for all ``i < j < k`` (in [0, 1] iff no 3-cycle)."""
    from scipy import sparse

    _, _, index = _pair_index(n)
    triples = np.array(list(itertools.combinations(range(n), 3)), dtype=np.int64).reshape(-1, 3)
    i, j, k = triples[:, 0], triples[:, 1], triples[:, 2]
    rows = np.repeat(np.arange(len(triples)), 3)
    cols = np.stack([index[i, j], index[j, k], index[i, k]], axis=1).ravel()
    vals = np.tile([1.0, 1.0, -1.0], len(triples))
    return sparse.csr_matrix((vals, (rows, cols)), shape=(len(triples), n * (n - 1) // 2))


def _order_from_pairs(x: np.ndarray, n: int) -> np.ndarray:
    iu, ju, _ = _pair_index(n)
    above = np.zeros((n, n))
    above[iu, ju] = x > 0.5
    above[ju, iu] = x <= 0.5
    return np.argsort(-above.sum(axis=1), kind="stable")


def _kemeny_program(w: np.ndarray, integral: bool, time_limit: float | None) -> Any:
    """Kemeny's problem over ``x_ij = [i above j]`` (``i < j``): MILP or its LP relaxation, by HiGHS."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    n = len(w)
    iu, ju, _ = _pair_index(n)
    c = w[ju, iu] - w[iu, ju]  # placing i above j costs w[j, i] instead of w[i, j]
    constraints = [LinearConstraint(_transitivity(n), 0.0, 1.0)] if n >= 3 else []
    options: dict[str, Any] = {"presolve": True}
    if time_limit is not None:
        options["time_limit"] = float(time_limit)
    res = milp(c, integrality=np.full(len(c), 1 if integral else 0), bounds=Bounds(0.0, 1.0),
               constraints=constraints, options=options)
    constant = float(w[iu, ju].sum())
    return res, constant


def _insertion_search(w: np.ndarray, order: np.ndarray, max_sweeps: int = 1000) -> tuple[np.ndarray, int]:
    """Local search: move single items to their best position until no move lowers the disagreements."""
    order = order.copy()
    for sweep in range(1, max_sweeps + 1):
        improved = False
        for x in order.copy():
            rest = order[order != x]
            # cost of x at slot q (before rest[q]): sum_{k<q} w[x, rest_k] + sum_{k>=q} w[rest_k, x]
            above = np.concatenate([[0.0], np.cumsum(w[x, rest])])
            below = np.concatenate([np.cumsum(w[rest, x][::-1])[::-1], [0.0]])
            cost = above + below
            now = int(np.flatnonzero(order == x)[0])
            best = int(np.argmin(cost))
            if cost[best] < cost[now] - 1e-12 * max(1.0, abs(cost[now])):
                order = np.insert(rest, best, x)
                improved = True
        if not improved:
            return order, sweep
    import warnings

    warnings.warn(f"Kemeny local search still improving after {max_sweeps} sweeps; returning the current ordering.",
                  ConvergenceWarning, stacklevel=3)
    return order, max_sweeps


def _kemeny_heuristic(p: _Profile) -> tuple[np.ndarray, float]:
    """Best of the Borda, Copeland and ranked-pairs orders after insertion local search."""
    index = pd.Index(p.items)
    best_order, best_cost = np.arange(p.n), np.inf
    for start in (borda(p)["item"], copeland(p)["item"], ranked_pairs(p)["item"]):
        order, _ = _insertion_search(p.wins, index.get_indexer(start.to_numpy()))
        cost = kemeny_disagreements(p.wins, order)
        if cost < best_cost - 1e-12:
            best_order, best_cost = order, cost
    return best_order, float(best_cost)


def kemeny(data: Any, method: str = "auto", *, exact_max_items: int = 20, bound_max_items: int = 60,
           time_limit: float | None = 60.0) -> pd.DataFrame:
    """Kemeny's rule: the ordering that disagrees with the fewest pairwise votes.

    Minimises ``sum over a placed above b of W[b, a]`` over all orderings (the
    maximum-likelihood ordering of the Mallows model; NP-hard in general).

    Parameters
    ----------
    method : {"auto", "exact", "heuristic"}
        ``"exact"``: integer program on the pairwise-order variables
        ``x_ab = [a above b]`` with the 3-cycle (transitivity) constraints,
        solved by HiGHS (``scipy.optimize.milp``). ``"heuristic"``: the best
        of the Borda, Copeland and ranked-pairs orders, each improved by
        single-item insertion moves until none helps. ``"auto"``: exact up to
        ``exact_max_items`` items, heuristic beyond.
    exact_max_items : int
        Size limit of ``"auto"``'s exact solve.
    bound_max_items : int
        Up to this size the heuristic's quality is certified by the LP
        relaxation of the integer program (a lower bound on the optimum);
        beyond, by the trivial bound ``sum over pairs of min(W[a, b], W[b, a])``.
    time_limit : float or None
        Seconds for each HiGHS call. An exact solve stopped by it returns the
        better of HiGHS's best ordering and the heuristic's, with HiGHS's dual
        bound as ``lower_bound``, and warns
        (:class:`~bradley.errors.ConvergenceWarning`) unless that ordering is
        nonetheless proven optimal.

    Returns
    -------
    DataFrame
        ``item, rank, score`` (score = number of items below). ``attrs``:
        ``disagreements`` (the objective), ``lower_bound``, ``gap``
        (``disagreements - lower_bound``; 0 for a proven optimum),
        ``optimal`` (proven), ``method``, ``bound`` (how the lower bound was
        obtained). Several orderings may be optimal; one is returned.

    Examples
    --------
    >>> import bradley
    >>> ballots = bradley.Rankings.from_orderings([["a", "b", "c"]] * 3 + [["b", "c", "a"]] * 2)
    >>> k = kemeny(ballots)
    >>> k["item"].tolist(), k.attrs["disagreements"], k.attrs["optimal"]
    (['a', 'b', 'c'], 4.0, True)
    """
    if method not in ("auto", "exact", "heuristic"):
        raise ValueError(f"method must be 'auto', 'exact' or 'heuristic', got {method!r}.")
    p = _profile(data)
    w, n = p.wins, p.n
    use_exact = method == "exact" or (method == "auto" and n <= exact_max_items)
    trivial = float(np.triu(np.minimum(w, w.T), 1).sum())
    if use_exact:
        res, constant = _kemeny_program(w, True, time_limit)
        optimal = res.status == 0 and res.x is not None
        if optimal:
            order = _order_from_pairs(res.x, n)
            cost = lower = kemeny_disagreements(w, order)
        else:  # stopped by the time limit: the better of HiGHS's incumbent and the heuristic
            order, cost = _kemeny_heuristic(p)
            if res.x is not None:
                incumbent = _order_from_pairs(res.x, n)
                if kemeny_disagreements(w, incumbent) < cost:
                    order, cost = incumbent, kemeny_disagreements(w, incumbent)
            dual = getattr(res, "mip_dual_bound", None)
            lower = max(trivial, constant + float(dual)) if dual is not None and np.isfinite(dual) else trivial
            optimal = cost - lower <= _scale_tol(w)
            if not optimal:
                import warnings

                warnings.warn(f"the Kemeny integer program stopped before proving optimality ({res.message}); "
                              f"the ordering returned is within {cost - lower:.6g} disagreements of the optimum.",
                              ConvergenceWarning, stacklevel=2)
        used, bound = "exact", "milp"
    else:
        order, cost = _kemeny_heuristic(p)
        if n <= bound_max_items and n >= 3:
            res, constant = _kemeny_program(w, False, time_limit)
            lower = max(trivial, constant + float(res.fun)) if res.status == 0 else trivial
            bound = "lp_relaxation" if res.status == 0 else "pairwise_minimum"
        else:
            lower, bound = trivial, "pairwise_minimum"
        optimal = cost - lower <= _scale_tol(w)
        used = "heuristic"
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(1, n + 1)
    return _table(p, (n - rank).astype(np.float64), "kemeny", rank=rank, disagreements=cost,
                  lower_bound=float(lower), gap=float(cost - lower), optimal=bool(optimal), method=used, bound=bound)


# ------------------------------------------------------------------------------------------------ lotteries, BT

def maximal_lottery_ranking(data: Any) -> pd.DataFrame:
    """Items ordered by their probability in the maximal lottery of the majority margins.

    The lottery is :func:`bradley.nash.maximal_lottery` of the raw majority
    margins ``W - W^T`` (not win shares). Items outside its support share the
    last rank with score 0; when the maximal lottery is not unique (zero
    margins), the one HiGHS returns is used (``attrs["unique"]``).

    Examples
    --------
    >>> import bradley
    >>> ballots = bradley.Rankings.from_orderings([["a", "b", "c"]] * 3 + [["b", "c", "a"]] * 2)
    >>> maximal_lottery_ranking(ballots)[["item", "score"]].values.tolist()[0]
    ['a', 1.0]
    """
    from bradley.nash import maximal_lottery

    p = _profile(data)
    lottery = maximal_lottery(p.margin, kind="margin", items=p.items)
    prob = lottery.to_numpy(dtype=np.float64)
    prob = np.where(prob > 1e-9, prob, 0.0)
    return _table(p, prob, "maximal_lottery", 1e-9, support=lottery.attrs.get("support"),
                  unique=lottery.attrs.get("unique"), gap=lottery.attrs.get("gap"))


def bradley_terry_rule(data: Any, features: pd.DataFrame | None = None, **options: Any) -> pd.DataFrame:
    """Bradley-Terry as a rule: rank by the maximum-likelihood scores.

    Ballots are broken into all their pairs and fitted as comparisons. With
    ``features`` (one row per item) the scores are ``x . w`` from
    :class:`bradley.FeatureBT` -- the linear BT rule of reward modelling,
    which Ge et al. (2024) show can violate Pareto optimality and pairwise
    majority consistency; ``options`` go to ``BradleyTerry`` (e.g.
    ``prior=``) or ``FeatureBT``.

    Examples
    --------
    >>> import bradley
    >>> ballots = bradley.Rankings.from_orderings([["a", "b", "c"]] * 3 + [["b", "c", "a"]] * 2)
    >>> bradley_terry_rule(ballots)["item"].tolist()  # b first although a beats b 3-2 and c 3-2
    ['b', 'a', 'c']
    """
    from bradley.models import BradleyTerry, FeatureBT

    p = _profile(data)
    if features is None:
        model: Any = BradleyTerry(**options).fit(p.comparisons)
    else:
        model = FeatureBT(features, **options).fit(p.comparisons)
    scores = pd.Series(np.asarray(model.scores_, dtype=np.float64), index=pd.Index(model.items_))
    score = scores.reindex(p.items).to_numpy()
    return _table(p, score, "bt" if features is None else "linear_bt", 1e-7,
                  converged=bool(getattr(model, "converged_", True)))


# ------------------------------------------------------------------------------------------------ one interface

def aggregate(data: Any, rule: str = "schulze", **options: Any) -> pd.DataFrame:
    """Aggregate comparisons or ballots into a ranking with the social-choice rule ``rule``.

    Parameters
    ----------
    data : Rankings, Comparisons, PairCounts, comparison table or path
    rule : {"borda", "copeland", "schulze", "ranked_pairs", "kemeny", "maximal_lottery", "bt"}
    **options
        Passed to the rule's function (``copeland(tie=)``, ``schulze(strength=)``,
        ``ranked_pairs(tiebreak=)``, ``kemeny(method=, ...)``,
        ``bradley_terry_rule(features=, prior=, ...)``).

    Returns
    -------
    DataFrame
        ``item, rank, score``, best first; rank 1 is best and equal ranks are
        ties. ``attrs["rule"]`` and the rule's own details.

    Examples
    --------
    >>> import bradley
    >>> ballots = bradley.Rankings.from_orderings([["a", "b", "c"]] * 3 + [["b", "c", "a"]] * 2)
    >>> aggregate(ballots, "borda")["item"].tolist(), aggregate(ballots, "schulze")["item"].tolist()
    (['b', 'a', 'c'], ['a', 'b', 'c'])
    """
    functions = {"borda": borda, "copeland": copeland, "schulze": schulze, "ranked_pairs": ranked_pairs,
                 "kemeny": kemeny, "maximal_lottery": maximal_lottery_ranking, "bt": bradley_terry_rule}
    if rule not in functions:
        raise ValueError(f"unknown rule {rule!r}: choose one of {list(RULES)}.")
    return functions[rule](data, **options)


def compare_rules(data: Any, rules: Any = RULES) -> pd.DataFrame:
    """Ranks of every item under several rules side by side (one column per rule, index = items).

    Examples
    --------
    >>> import bradley
    >>> ballots = bradley.Rankings.from_orderings([["a", "b", "c"]] * 3 + [["b", "c", "a"]] * 2)
    >>> compare_rules(ballots, ["borda", "copeland"]).loc["a"].tolist()
    [2, 1]
    """
    p = _profile(data)
    out = pd.DataFrame(index=pd.Index(p.items, name="item"))
    for rule in rules:
        out[rule] = aggregate(p, rule).set_index("item")["rank"].reindex(p.items).to_numpy()
    return out


# ------------------------------------------------------------------------------------------------ axioms

def _ranking_ranks(p: _Profile, ranking: Any) -> np.ndarray:
    """Rank of each profile item (1 = best) from a rule's table, a Series of ranks, or a list best first."""
    if isinstance(ranking, pd.DataFrame):
        if not {"item", "rank"} <= set(ranking.columns):
            raise ComparisonDataError("a ranking table needs 'item' and 'rank' columns (as aggregate returns).")
        series = ranking.set_index("item")["rank"]
    elif isinstance(ranking, pd.Series):
        series = ranking
    else:
        listed = list(ranking)
        series = pd.Series(np.arange(1, len(listed) + 1), index=pd.Index(listed, dtype=object))
    missing = [i for i in p.items if i not in series.index]
    unknown = [i for i in series.index if i not in set(p.items.tolist())]
    if missing or unknown:
        raise ComparisonDataError(
            f"the ranking must rank exactly the data's items: missing {missing[:5]}, unknown {unknown[:5]}.")
    return series.reindex(p.items).to_numpy(dtype=np.float64)


def _pair_table(p: _Profile, rank: np.ndarray, a: np.ndarray, b: np.ndarray, **columns: Any) -> pd.DataFrame:
    table = pd.DataFrame({
        "item": p.items[a], "other": p.items[b], **columns,
        "rank_item": rank[a].astype(np.int64), "rank_other": rank[b].astype(np.int64),
        "kind": np.where(rank[a] == rank[b], "tied", "reversed"),
    })
    return table.reset_index(drop=True)


def pareto_violations(data: Any, ranking: Any, strict: bool = True, min_votes: float = 1.0) -> pd.DataFrame:
    """Pairs on which a ranking breaks Pareto optimality (unanimity) of the data.

    ``a`` *Pareto-dominates* ``b`` when at least one vote compares them and
    every vote that does prefers ``a`` (no vote for ``b``, no tie). On ballots
    a vote is a ballot that orders both (the classic notion: every voter
    ranks ``a`` above ``b``; ballots silent on the pair abstain). On pairwise
    data each judged comparison is a vote: ``a`` won every comparison with
    ``b``. A ranking violates Pareto on the pair when it puts ``b`` above
    ``a`` (``kind="reversed"``) or, with ``strict``, level with it
    (``kind="tied"``).

    On pairwise data the unanimity relation can contain a cycle (a beat b,
    b beat c, c beat a, each unanimously), and then no ranking satisfies it:
    ``attrs["satisfiable"]`` says whether some ranking can. On sparse data a
    single game makes a pair "unanimous"; ``min_votes`` asks for at least
    that many (weighted) votes before a pair counts.

    Returns
    -------
    DataFrame
        One row per violated dominance: ``item`` (the dominating one),
        ``other``, ``votes`` (weighted votes for ``item``), ``rank_item``,
        ``rank_other``, ``kind``. ``attrs``: ``satisfied``, ``satisfiable``,
        ``n_dominations``.

    Examples
    --------
    >>> import bradley
    >>> ballots = bradley.Rankings.from_orderings([["a", "b", "c"], ["a", "c", "b"]])
    >>> pareto_violations(ballots, ["b", "a", "c"])[["item", "other", "kind"]].values.tolist()
    [['a', 'b', 'reversed']]
    """
    p = _profile(data)
    rank = _ranking_ranks(p, ranking)
    if not min_votes > 0:
        raise ValueError(f"min_votes must be positive, got {min_votes!r}.")
    dominates = (p.strict >= min_votes) & (p.strict > 0) & (p.strict.T == 0) & (p.ties == 0)
    bad = dominates & ((rank[:, None] >= rank[None, :]) if strict else (rank[:, None] > rank[None, :]))
    a, b = np.nonzero(bad)
    table = _pair_table(p, rank, a, b, votes=p.strict[a, b])
    from scipy.sparse import csgraph, csr_matrix

    n_comp, _ = csgraph.connected_components(csr_matrix(dominates.astype(np.float64)), connection="strong")
    table.attrs.update({"satisfied": len(table) == 0, "satisfiable": n_comp == p.n,
                        "n_dominations": int(dominates.sum())})
    return table


def _majority_order(d: np.ndarray, tol: float) -> list[int] | None:
    """The majority relation as a list best first when it is a complete strict linear order, else None."""
    n = len(d)
    wins = (d > tol).sum(axis=1)
    if sorted(wins.tolist()) != list(range(n)):
        return None  # a complete tournament is transitive iff its score sequence is 0..n-1
    return list(np.argsort(-wins, kind="stable"))


def condorcet_violations(data: Any, ranking: Any, strict: bool = True) -> pd.DataFrame:
    """Pairs on which a ranking breaks Condorcet (pairwise-majority) consistency.

    Two requirements, each applying only when its premise holds:

    * *Condorcet winner*: an item with a positive majority margin over every
      other must be ranked first, alone;
    * *pairwise majority consistency* (Ge et al. 2024): when the majority
      relation is a complete strict order (every pair has a strict majority,
      and it is transitive), the ranking must be exactly that order.

    Pairs never compared have margin zero: no majority. A rule that ranks
    by strength of support, not by majorities, can break both (BT, Borda).
    With ``strict=False`` only reversals count, not ties in the ranking (a
    maximal lottery chooses, it does not order the items it gives
    probability zero).

    Returns
    -------
    DataFrame
        One row per violated majority: ``item`` (the majority winner),
        ``other``, ``margin`` (``W[item, other] - W[other, item]``),
        ``rank_item``, ``rank_other``, ``kind`` (``"reversed"`` or ``"tied"``),
        ``axiom`` (``"condorcet_winner"`` or ``"majority_order"``). ``attrs``:
        ``satisfied``, ``condorcet_winner`` (or None), ``majority_order``
        (items best first, or None when the majority relation is not a strict
        order).

    Examples
    --------
    >>> import bradley
    >>> ballots = bradley.Rankings.from_orderings([["a", "b", "c"]] * 3 + [["b", "c", "a"]] * 2)
    >>> v = condorcet_violations(ballots, ["b", "a", "c"])
    >>> v.attrs["condorcet_winner"], v[["item", "other", "axiom"]].values.tolist()
    ('a', [['a', 'b', 'condorcet_winner'], ['a', 'b', 'majority_order']])
    """
    p = _profile(data)
    rank = _ranking_ranks(p, ranking)
    d = p.margin
    tol = _scale_tol(d)
    off = ~np.eye(p.n, dtype=bool)
    winner_mask = ((d > tol) | ~off).all(axis=1)
    winner = int(np.flatnonzero(winner_mask)[0]) if winner_mask.any() else None
    order = _majority_order(d, tol)
    parts = []
    above = (rank[:, None] >= rank[None, :]) if strict else (rank[:, None] > rank[None, :])
    if winner is not None:
        others = np.flatnonzero(off[winner] & above[winner])
        parts.append(_pair_table(p, rank, np.full(len(others), winner), others, margin=d[winner, others],
                                 axiom="condorcet_winner"))
    if order is not None:
        a, b = np.nonzero((d > tol) & above)
        parts.append(_pair_table(p, rank, a, b, margin=d[a, b], axiom="majority_order"))
    columns = ["item", "other", "margin", "rank_item", "rank_other", "kind", "axiom"]
    table = pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)
    table.attrs.update({"satisfied": len(table) == 0,
                        "condorcet_winner": None if winner is None else p.items[winner],
                        "majority_order": None if order is None else [p.items[i] for i in order]})
    return table


def check_axioms(data: Any, rules: Any = RULES, strict: bool | None = None, **options: Any) -> pd.DataFrame:
    """Run several rules on the data and check Pareto and Condorcet consistency of each.

    Parameters
    ----------
    rules : sequence of rule names (see :data:`RULES`), or of ``(label, table)`` pairs already computed
    strict : bool, optional
        Count an output tie between the items of a unanimous or majority
        pair as a violation (both checks). Default: strict for every rule
        but the maximal lottery, which chooses rather than orders (it ties
        the items outside its support at probability 0).
    **options
        ``{rule: {option: value}}`` passed to :func:`aggregate`, e.g.
        ``bt={"prior": 10.0}``.

    Returns
    -------
    DataFrame
        One row per rule: ``rule``, ``top`` (items ranked first),
        ``pareto`` (satisfied?), ``pareto_violations``, ``condorcet``,
        ``condorcet_violations``. ``attrs["details"]``: the violation tables.

    Examples
    --------
    >>> import bradley
    >>> ballots = bradley.Rankings.from_orderings([["a", "b", "c"]] * 3 + [["b", "c", "a"]] * 2)
    >>> check_axioms(ballots, ["bt", "schulze"])[["rule", "pareto", "condorcet"]].values.tolist()
    [['bt', True, False], ['schulze', True, True]]
    """
    p = _profile(data)
    rows, details = [], {}
    for entry in rules:
        label, table = (entry, aggregate(p, entry, **options.get(entry, {}))) if isinstance(entry, str) else entry
        strict_here = (label != "maximal_lottery") if strict is None else strict
        pv = pareto_violations(p, table, strict=strict_here)
        cv = condorcet_violations(p, table, strict=strict_here)
        details[label] = {"pareto": pv, "condorcet": cv, "ranking": table}
        rows.append({"rule": label, "top": table.loc[table["rank"] == 1, "item"].tolist(),
                     "pareto": pv.attrs["satisfied"], "pareto_violations": len(pv),
                     "condorcet": cv.attrs["satisfied"], "condorcet_violations": len(cv)})
    out = pd.DataFrame(rows)
    out.attrs["details"] = details
    return out
