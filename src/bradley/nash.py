"""Nash (von Neumann) winners of a preference matrix: the maximal lottery and iterative solvers.

A preference matrix ``P[i, j]`` = P(i beats j) defines a symmetric two-player
zero-sum game: each player picks a (random) item, and the row player wins
``M[i, j] = P[i, j] - P[j, i]``, the *margin*. A *maximal lottery* (the von
Neumann winner, Fishburn 1984; the Nash policy of SPPO, INPO, EGPO and DNO) is
an optimal mixed strategy ``p`` of that game: no item beats it on average,
``(M p)_i <= 0`` for every ``i``, equivalently ``P(i beats p) <= 1/2``. The game
value is 0. When a Condorcet winner exists, the lottery puts all its mass on
it; with cycles (rock-paper-scissors) it mixes.

* :func:`maximal_lottery` -- the exact answer by linear programming (HiGHS);
* :func:`solve_nash` -- the iterative solvers the alignment papers run on
  this game (multiplicative weights / SPPO, optimistic mirror descent / ONPO,
  extragradient / EGPO, INPO's KL-anchored mirror descent) with the duality
  gap of every iterate, or the LP through the same interface;
* :func:`duality_gap` -- how far any lottery is from a Nash winner;
* :func:`margin_matrix` -- the margin matrix the above use, from win
  probabilities, counts, a ``PreferenceMatrix`` or comparison data.

The duality gap reported everywhere is that of the constant-sum game with
payoff ``P`` at the strategy pair ``(p, p)``:
``max_i P(i beats p) - min_j P(p beats j) = max_i (M p)_i`` (>= 0, and 0
exactly at a maximal lottery). In the payoff ``A = P - 1/2 = M / 2`` that the
SPPO update uses, it is the usual ``max_i (A p)_i - min_j (A^T p)_j``.
See ``docs/beyond-bt.md``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from bradley.data import Comparisons, PairCounts
from bradley.errors import ComparisonDataError, ConvergenceWarning

__all__ = ["margin_matrix", "maximal_lottery", "duality_gap", "solve_nash", "NashSolution", "NASH_METHODS"]

#: Methods of :func:`solve_nash`.
NASH_METHODS = ("mwu", "optimistic", "extragradient", "inpo", "lp")
_ALIASES = {"sppo": "mwu", "multiplicative_weights": "mwu", "omd": "optimistic", "onpo": "optimistic",
            "egpo": "extragradient"}
#: Default step of each iterative method, times ``1 / max|A_ij|`` (``A = M / 2``), so the default is scale free.
_DEFAULT_STEP = {"mwu": 0.1, "optimistic": 1.0, "extragradient": 1.0, "inpo": 0.5}

Kind = Literal["auto", "probability", "counts", "margin"]


# ------------------------------------------------------------------------------------------------ inputs

def _names(items: Any, n: int) -> np.ndarray:
    names = np.arange(n).astype(object) if items is None else np.asarray(items, dtype=object)
    if names.ndim != 1 or len(names) != n:
        raise ComparisonDataError(f"{len(np.atleast_1d(names))} item names for a {n}x{n} matrix.")
    return names


def _entries(mask: np.ndarray, names: np.ndarray, values: np.ndarray | None = None, limit: int = 5) -> str:
    """``[a, b]`` labels of the first offending entries (upper triangle of a symmetric mask first)."""
    i, j = np.nonzero(mask)
    shown = []
    for a, b in zip(i[:limit], j[:limit], strict=True):
        text = f"[{names[a]!r}, {names[b]!r}]"
        if values is not None:
            text += f" = {values[a, b]:.6g}"
        shown.append(text)
    more = f" and {len(i) - limit} more" if len(i) > limit else ""
    return ", ".join(shown) + more


def _counts_margin(wins: np.ndarray, normalize: bool) -> tuple[np.ndarray, np.ndarray]:
    """Margins and the unobserved-pair mask from (tie-credited) win counts ``wins[i, j]``."""
    total = wins + wins.T
    diff = wins - wins.T
    unobserved = total <= 0
    np.fill_diagonal(unobserved, False)
    if normalize:
        margin = np.divide(diff, total, out=np.zeros_like(diff), where=total > 0)
    else:
        margin = diff
    np.fill_diagonal(margin, 0.0)
    return margin, unobserved


def _matrix_and_names(matrix: Any, items: Any) -> tuple[np.ndarray | None, np.ndarray | None, PairCounts | None]:
    """Split the accepted inputs into (dense matrix, names) or PairCounts."""
    if hasattr(matrix, "win_rate") and isinstance(matrix.win_rate, pd.DataFrame):
        matrix = matrix.win_rate  # a bradley.diagnostics.PreferenceMatrix: win rates, NaN where never compared
    if isinstance(matrix, PairCounts):
        return None, None, matrix
    if isinstance(matrix, Comparisons):
        return None, None, matrix.pair_counts()
    if isinstance(matrix, pd.DataFrame):
        same_labels = matrix.shape[0] == matrix.shape[1] and set(matrix.index) == set(matrix.columns)
        if same_labels and matrix.index.is_unique and matrix.columns.is_unique:
            values = matrix.loc[:, list(matrix.index)].to_numpy(dtype=np.float64)
            return values, np.asarray(matrix.index, dtype=object), None
        from bradley.models.base import as_comparisons  # a long table of comparisons

        return None, None, as_comparisons(matrix).pair_counts()
    if isinstance(matrix, str) or hasattr(matrix, "__fspath__"):
        from bradley.models.base import as_comparisons

        return None, None, as_comparisons(matrix).pair_counts()
    try:
        values = np.asarray(matrix, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ComparisonDataError(
            f"cannot read a preference matrix from a {type(matrix).__name__}: pass a square array or DataFrame "
            "of win probabilities or counts, a PairCounts, Comparisons or a comparison table.") from exc
    return values, None if items is None else np.asarray(items, dtype=object), None


def _detect_kind(values: np.ndarray, off: np.ndarray) -> str:
    v = values[off]
    v = v[~np.isnan(v)]
    if (v < 0).any():
        return "margin"
    if (v <= 1).all():
        return "probability"
    return "counts"


def _margin(matrix: Any, kind: Kind = "auto", items: Any = None, unobserved: str = "tie",
            normalize: bool = True, atol: float = 1e-9) -> tuple[np.ndarray, np.ndarray, int]:
    """Margin matrix ``M`` (skew-symmetric), item names, and the number of unobserved pairs."""
    if kind not in ("auto", "probability", "counts", "margin"):
        raise ValueError(f"kind must be 'auto', 'probability', 'counts' or 'margin', got {kind!r}.")
    if unobserved not in ("tie", "error"):
        raise ValueError(f"unobserved must be 'tie' or 'error', got {unobserved!r}.")
    values, names, pairs = _matrix_and_names(matrix, items)
    if pairs is not None:
        if kind not in ("auto", "counts"):
            raise ComparisonDataError(f"comparison data give counts, not kind={kind!r}.")
        values = pairs.win_matrix(tie_credit=0.5)
        names, kind = np.asarray(pairs.items, dtype=object), "counts"
    assert values is not None
    if values.ndim != 2 or values.shape[0] != values.shape[1]:
        raise ComparisonDataError(f"a preference matrix must be square, got shape {values.shape}.")
    n = values.shape[0]
    if n == 0:
        raise ComparisonDataError("the preference matrix is empty (no items).")
    names = _names(names, n)
    off = ~np.eye(n, dtype=bool)
    if np.isinf(values[off]).any():
        raise ComparisonDataError(f"entries must be finite: {_entries(np.isinf(values) & off, names, values)}.")
    nan = np.isnan(values) & off
    if (nan != nan.T).any():
        raise ComparisonDataError(
            "a pair is NaN (never compared) in one direction only: "
            f"{_entries(nan & ~nan.T, names)}; NaN must mark both [i, j] and [j, i].")
    read_as: str = kind
    if read_as == "auto":
        read_as = _detect_kind(values, off)
        if read_as == "probability":
            bad = off & ~nan & (np.abs(values + values.T - 1.0) > atol)
            if bad.any():
                raise ComparisonDataError(
                    "entries lie in [0, 1] but are not win probabilities (P[i, j] + P[j, i] != 1) at "
                    f"{_entries(np.triu(bad), names, values)}: pass kind='counts' if these are win counts, or fix "
                    "the matrix.")
    filled = np.where(nan, 0.0, values)
    np.fill_diagonal(filled, 0.0)
    if read_as == "probability":
        outside = off & ~nan & ((values < 0) | (values > 1))
        if outside.any():
            raise ComparisonDataError(f"win probabilities must lie in [0, 1]: {_entries(outside, names, values)}.")
        bad = off & ~nan & (np.abs(values + values.T - 1.0) > atol)
        if bad.any():
            raise ComparisonDataError(
                "win probabilities must satisfy P[i, j] + P[j, i] = 1 off the diagonal: "
                f"{_entries(np.triu(bad), names, values)}.")
        margin = filled - filled.T
        missing = nan
    elif read_as == "counts":
        negative = off & ~nan & (values < 0)
        if negative.any():
            raise ComparisonDataError(f"win counts must be non-negative: {_entries(negative, names, values)}.")
        margin, missing = _counts_margin(filled, normalize)
    else:
        bad = off & ~nan & (np.abs(values + values.T) > atol * max(1.0, float(np.abs(filled).max())))
        if bad.any():
            raise ComparisonDataError(
                "a margin matrix must be skew-symmetric (M[i, j] = -M[j, i]): "
                f"{_entries(np.triu(bad), names, values)}.")
        margin = 0.5 * (filled - filled.T)
        missing = nan
    n_missing = int(np.triu(missing, 1).sum())
    if n_missing and unobserved == "error":
        raise ComparisonDataError(
            f"{n_missing} pairs were never compared: {_entries(np.triu(missing, 1), names)}; pass "
            "unobserved='tie' to treat them as ties (margin 0).")
    return margin, names, n_missing


def margin_matrix(matrix: Any, *, kind: Kind = "auto", items: Any = None, unobserved: str = "tie",
                  normalize: bool = True) -> pd.DataFrame:
    """The skew-symmetric margin matrix ``M[i, j] = P(i beats j) - P(j beats i)`` of a preference matrix.

    Parameters
    ----------
    matrix : array-like, DataFrame, PreferenceMatrix, PairCounts, Comparisons or comparison table
        Either a square matrix (a DataFrame whose index and columns hold the
        same item labels, or an array with ``items``) or comparison data
        (counted into wins, ties as half a win each). The diagonal is ignored.
    kind : {"auto", "probability", "counts", "margin"}
        What a square matrix holds: win probabilities (``P + P.T == 1`` off
        the diagonal), win counts (``wins[i, j]`` = times i beat j), or margins
        (skew-symmetric). ``"auto"`` reads a matrix with a negative entry as
        margins, one with all entries in [0, 1] as probabilities (and refuses
        it if ``P + P.T != 1``: pass ``kind="counts"``), and anything else as
        counts.
    items : array-like, optional
        Item labels of an array (default ``0..n-1``).
    unobserved : {"tie", "error"}
        Pairs never compared (NaN in a probability matrix, no games in counts)
        get margin 0, as a tie (default), or raise.
    normalize : bool
        Counts become per-pair win shares, ``M = (w_ij - w_ji) / (w_ij + w_ji)``,
        which is what a probability matrix of the same data gives (default).
        ``False`` keeps the raw majority margins ``w_ij - w_ji`` of social
        choice; both agree when every pair has the same number of games
        (every voter ranks every pair).

    Returns
    -------
    DataFrame
        ``M`` with item labels on both axes; ``attrs["unobserved_pairs"]``.

    Examples
    --------
    >>> margin_matrix([[0, 3], [1, 0]], items=["x", "y"]).loc["x", "y"]
    np.float64(0.5)
    """
    m, names, missing = _margin(matrix, kind, items, unobserved, normalize)
    frame = pd.DataFrame(m, index=pd.Index(names, name="item"), columns=pd.Index(names, name="opponent"))
    frame.attrs["unobserved_pairs"] = missing
    return frame


# ------------------------------------------------------------------------------------------------ kernels

def lottery_gap(margin: np.ndarray, p: np.ndarray) -> float:
    """Duality gap ``max_i (M p)_i`` of the lottery ``p`` in the game with margins ``M`` (pure kernel)."""
    return float(np.max(margin @ p))


def _lp_solve(margin: np.ndarray, objective: np.ndarray | None = None) -> np.ndarray:
    """One HiGHS LP over the maximal lotteries (pure kernel).

    Finds ``q >= 0`` with ``sum q = 1`` and ``margin @ q <= 0`` (for a square,
    skew-symmetric ``margin``: ``M^T q >= 0``, no item beats ``q``), minimising
    ``objective @ q`` when given. ``margin`` may be the rectangular
    ``M[:, Z]``: lotteries supported on ``Z``. Without ``objective`` this is a
    pure feasibility problem: the value of a symmetric zero-sum game is 0, so
    the game value need not be a variable (one column fewer, and no dense
    column of ones coupling every constraint), and the feasible set is exactly
    the set of maximal lotteries. Interior point with crossover returns a
    vertex of it.
    """
    from scipy.optimize import linprog

    rows, n = margin.shape
    c = np.zeros(n) if objective is None else np.asarray(objective, dtype=np.float64)
    res = linprog(c, A_ub=margin, b_ub=np.zeros(rows), A_eq=np.ones((1, n)), b_eq=[1.0], bounds=(0.0, None),
                  method="highs-ipm",
                  options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10})
    if res.status != 0 or res.x is None:
        raise RuntimeError(f"HiGHS failed on the maximal-lottery LP: {res.message}")
    p = np.clip(np.asarray(res.x, dtype=np.float64), 0.0, None)
    return p / p.sum()


#: Support search starts from this many items, and gives way to the full LP once it holds this share of them.
_SEARCH_START, _SEARCH_SHARE = 50, 0.3


def _lp_with_support_search(margin: np.ndarray, tol: float = 1e-12) -> np.ndarray:
    """Solve restricted games on a growing item set (double oracle), then the full LP if the set grows large.

    Start from the items with the largest total margin; solve the game among
    them; add every item that beats the restricted solution (``(M p)_i > tol``);
    stop when none does, which makes the restricted solution a maximal lottery
    of the whole game. Near-transitive matrices (most real data: small
    supports) finish in one or two small LPs; when the set passes
    ``_SEARCH_SHARE`` of the items, one LP on everything is cheaper.
    """
    n = margin.shape[0]
    if n <= 2 * _SEARCH_START:
        return _lp_solve(margin)
    scale = max(1.0, float(np.abs(margin).max()))
    chosen = np.sort(np.argsort(-margin.sum(axis=1), kind="stable")[:_SEARCH_START])
    while len(chosen) <= _SEARCH_SHARE * n:
        p = np.zeros(n)
        p[chosen] = _lp_solve(margin[np.ix_(chosen, chosen)])
        beats = np.flatnonzero(margin @ p > tol * scale)
        beats = beats[~np.isin(beats, chosen)]
        if len(beats) == 0:
            return p
        chosen = np.union1d(chosen, beats)
    return _lp_solve(margin)


def _polish(margin: np.ndarray, p: np.ndarray, support_tol: float) -> tuple[np.ndarray, bool]:
    """Solve ``M_SS p_S = 0, sum p_S = 1`` on the support; certify uniqueness when it is determined.

    Returns the polished lottery (or ``p`` if polishing does not give a valid
    one) and whether uniqueness is certified: every optimal lottery lives on
    ``Z = {i : (M p)_i = 0}`` (complementary slackness), so when ``Z`` is the
    support ``S`` and ``[M_SS; 1]`` has full column rank, ``p`` is the only one.
    """
    support = np.flatnonzero(p > support_tol)
    sub = margin[np.ix_(support, support)]
    system = np.vstack([sub, np.ones((1, len(support)))])
    rhs = np.zeros(len(support) + 1)
    rhs[-1] = 1.0
    sol, _, rank, _ = np.linalg.lstsq(system, rhs, rcond=None)
    full_rank = rank == len(support)
    polished = np.zeros_like(p)
    polished[support] = sol
    if (sol < 0).any() or lottery_gap(margin, polished) > max(lottery_gap(margin, p), 1e-13):
        polished = p
    zero_set = np.flatnonzero(margin @ polished >= -1e3 * support_tol * max(1.0, float(np.abs(margin).max())))
    return polished, bool(full_rank and len(zero_set) == len(support))


def maximal_lottery_lp(margin: np.ndarray, *, check_unique: bool = True, seed: int = 0,
                       support_tol: float = 1e-9) -> tuple[np.ndarray, bool | None]:
    """Maximal lottery of a skew-symmetric margin matrix by linear programming (pure kernel).

    Returns ``(p, unique)``; ``unique`` is None when not checked. When the
    optimal set is not a single point, ``p`` is the one HiGHS finds
    (deterministic for a given matrix, not canonical).
    """
    margin = np.asarray(margin, dtype=np.float64)
    n = margin.shape[0]
    if n == 1:
        return np.ones(1), True
    p = _lp_with_support_search(margin)
    p, certified = _polish(margin, p, support_tol)
    if not check_unique or certified:
        return p, (True if certified else None)
    # Not certified by the support system: every maximal lottery lives on Z = {i: (M p)_i = 0}; optimise a
    # random direction both ways over those lotteries and see whether they move.
    zero_set = np.flatnonzero(margin @ p >= -1e-7 * max(1.0, float(np.abs(margin).max())))
    direction = np.random.default_rng(seed).standard_normal(len(zero_set))
    spread = 0.0
    for sign in (1.0, -1.0):
        q = _lp_solve(margin[:, zero_set], objective=np.multiply(sign, direction))
        spread = max(spread, float(np.abs(q - p[zero_set]).max()))
    return p, bool(spread <= 1e-7)


# ------------------------------------------------------------------------------------------------ public: LP

def maximal_lottery(matrix: Any, *, kind: Kind = "auto", items: Any = None, unobserved: str = "tie",
                    normalize: bool = True, check_unique: bool = True) -> pd.Series:
    """The maximal lottery (von Neumann / Nash winner) of a preference matrix, by linear programming.

    Solves the symmetric zero-sum game with payoff ``M = P - P^T`` exactly with
    HiGHS (``scipy.optimize.linprog``, interior point with crossover,
    tolerances 1e-10) as the feasibility problem ``p >= 0``, ``sum p = 1``,
    ``M^T p >= 0`` (the game value is 0, so it is not a variable) and polishes the answer on its support, so that
    ``M^T p >= 0`` holds to about 1e-12 in margin units. Beyond 100 items it
    first grows a restricted game from the 50 items with the largest total
    margin, adding every item that beats the restricted solution (double
    oracle), and solves the whole LP only if that set passes 30% of the items:
    near-transitive data (small supports) then take a fraction of a second.

    Parameters
    ----------
    matrix : array-like, DataFrame, PreferenceMatrix, PairCounts, Comparisons or comparison table
        Win probabilities, win counts or margins (see :func:`margin_matrix`).
    kind, items, unobserved, normalize
        As in :func:`margin_matrix`.
    check_unique : bool
        Check whether the maximal lottery is unique (it is for generic
        matrices, and always for odd integer margins, e.g. an odd number of
        voters each ranking every pair). The check is free when the solution
        certifies itself (every item outside the support loses to it strictly
        and the support system has one solution); otherwise two more LPs
        optimise a random direction over the maximal lotteries and compare.

    Returns
    -------
    Series
        Probability of each item (name ``"probability"``, index the items), in
        the input order. ``attrs`` holds ``value`` (the guaranteed payoff
        ``min_j (p^T M)_j``, 0 up to rounding), ``gap`` (``max_i (M p)_i``),
        ``support`` (items with positive probability, largest first),
        ``unique`` (True, False, or None when not checked) and
        ``unobserved_pairs``. When the maximal lottery is not unique (ties in
        the margins, e.g. an even number of voters), the one returned is the
        optimal vertex found by HiGHS: any convex combination of maximal
        lotteries is also one.

    Examples
    --------
    >>> rps = [[0.5, 1.0, 0.0], [0.0, 0.5, 1.0], [1.0, 0.0, 0.5]]
    >>> maximal_lottery(rps, items=["rock", "paper", "scissors"]).round(6).tolist()
    [0.333333, 0.333333, 0.333333]
    >>> maximal_lottery([[0, 7, 6], [3, 0, 8], [4, 2, 0]]).attrs["support"]  # item 0 is a Condorcet winner
    [0]
    """
    margin, names, missing = _margin(matrix, kind, items, unobserved, normalize)
    p, unique = maximal_lottery_lp(margin, check_unique=check_unique)
    return _lottery_series(p, margin, names, unique=unique, unobserved_pairs=missing)


def _lottery_series(p: np.ndarray, margin: np.ndarray, names: np.ndarray, **attrs: Any) -> pd.Series:
    out = pd.Series(p, index=pd.Index(names, name="item"), name="probability")
    order = np.argsort(-p, kind="stable")
    out.attrs.update({"value": float(np.min(margin.T @ p)), "gap": lottery_gap(margin, p),
                      "support": [names[i] for i in order if p[i] > 1e-9]})
    out.attrs.update(attrs)
    return out


def duality_gap(matrix: Any, lottery: Any, *, kind: Kind = "auto", items: Any = None, unobserved: str = "tie",
                normalize: bool = True) -> float:
    """Duality gap ``max_i P(i beats p) - min_j P(p beats j) = max_i (M p)_i`` of a lottery ``p``.

    Zero exactly at a maximal lottery; for a policy ``p`` it is the margin by
    which the best single item beats it (twice its exploitability
    ``max_i P(i beats p) - 1/2``).

    Examples
    --------
    >>> rps = [[0.5, 1.0, 0.0], [0.0, 0.5, 1.0], [1.0, 0.0, 0.5]]
    >>> duality_gap(rps, [1.0, 0.0, 0.0])  # paper beats a pure rock with margin 1
    1.0
    """
    margin, names, _ = _margin(matrix, kind, items, unobserved, normalize)
    p = _as_distribution(lottery, names, "lottery")
    return lottery_gap(margin, p)


def _as_distribution(values: Any, names: np.ndarray, what: str) -> np.ndarray:
    if isinstance(values, pd.Series):
        missing = [k for k in values.index if k not in set(names)]
        if missing:
            raise ComparisonDataError(f"{what} names unknown items {missing[:5]}.")
        values = values.reindex(names, fill_value=0.0)
    p = np.asarray(values, dtype=np.float64).ravel()
    if len(p) != len(names):
        raise ComparisonDataError(f"{what} has {len(p)} entries for {len(names)} items.")
    if not np.isfinite(p).all() or (p < 0).any() or p.sum() <= 0:
        raise ComparisonDataError(f"{what} must be finite, non-negative and not all zero.")
    return p / p.sum()


# ------------------------------------------------------------------------------------------------ iterative

@dataclass
class NashSolution:
    """Result of :func:`solve_nash`.

    Attributes
    ----------
    method : str
        ``"mwu"``, ``"optimistic"``, ``"extragradient"``, ``"inpo"`` or ``"lp"``.
    step, tau : float
        Step size (in units of the payoff ``A = M / 2``) and INPO's KL weight.
    items_ : ndarray
        Item names.
    lottery_ : Series
        The returned lottery: the iterate named by ``iterate_``.
    last_, average_ : Series
        Last iterate and average iterate (for extragradient, the average of the
        extrapolated half-step points; for INPO with a moving anchor, of the
        iterates since the last anchor move).
    iterate_ : str
        ``"last"``, ``"average"`` or ``"lp"``.
    gap_ : float
        Duality gap ``max_i (M p)_i`` of ``lottery_``.
    gap_history_ : DataFrame
        One row per iteration (0 = the starting point): ``iteration``,
        ``gap_last``, ``gap_average`` and, for INPO, ``gap_regularized`` (the
        duality gap of the KL-regularised game of the current anchor, which is
        what a fixed-anchor INPO drives to 0), and ``operator_calls``
        (cumulative products with the matrix made by the update).
    converged_ : bool
        Whether the stopping criterion fell below ``tol``.
    n_iter_ : int
        Iterations run.
    """

    method: str
    step: float
    tau: float
    items_: np.ndarray
    lottery_: pd.Series
    last_: pd.Series
    average_: pd.Series
    iterate_: str
    gap_: float
    gap_history_: pd.DataFrame
    converged_: bool
    n_iter_: int
    margin_: np.ndarray = field(repr=False)

    def summary(self) -> pd.DataFrame:
        """Per item: ``probability`` in ``lottery_``, ``advantage`` = P(i beats it) - 1/2, ``in_support``."""
        p = self.lottery_.to_numpy()
        table = pd.DataFrame({"item": self.items_, "probability": p, "advantage": 0.5 * (self.margin_ @ p),
                              "in_support": p > 1e-9})
        return table.sort_values("probability", ascending=False, kind="stable").reset_index(drop=True)


def _normalise_log(logw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log-probabilities (shifted so their log-sum-exp is 0) and probabilities."""
    top = logw.max()
    w = np.exp(logw - top)
    total = w.sum()
    return logw - top - np.log(total), w / total


def regularized_gap(payoff: np.ndarray, p: np.ndarray, log_ref: np.ndarray, tau: float) -> float:
    """Duality gap of the KL-regularised symmetric game at ``(p, p)`` (pure kernel).

    The game is ``f(p1, p2) = p1^T A p2 - tau KL(p1 || ref) + tau KL(p2 || ref)``;
    its best responses have closed forms, giving
    ``2 tau [logsumexp(log ref + A p / tau) + KL(p || ref)]`` (0 at its equilibrium).
    """
    z = log_ref + payoff @ p / tau
    top = z.max()
    lse = top + np.log(np.exp(z - top).sum())
    pos = p > 0
    kl = float(np.sum(p[pos] * (np.log(p[pos]) - log_ref[pos])))
    return float(max(2.0 * tau * (lse + kl), 0.0))


def nash_iterations(margin: np.ndarray, method: str, step: float, *, max_iter: int, tol: float,
                    iterate: str = "best", tau: float = 0.0, init: np.ndarray | None = None,
                    reference: np.ndarray | None = None,
                    anchor_every: int | None = None) -> dict[str, Any]:
    """Iterative solvers of the symmetric game with margins ``M`` (pure kernel; see :func:`solve_nash`).

    All updates are multiplicative (entropic mirror steps) on the payoff
    ``A = M / 2 = P - 1/2``, kept in the log domain and renormalised each step.
    """
    n = margin.shape[0]
    payoff = 0.5 * margin
    log_p, p = _normalise_log(np.log(init) if init is not None else np.zeros(n))
    log_ref = (np.log(reference) if reference is not None else log_p.copy())
    log_ref, _ = _normalise_log(log_ref)
    gaps_last = np.empty(max_iter + 1)
    gaps_avg = np.empty(max_iter + 1)
    gaps_reg = np.full(max_iter + 1, np.nan)
    calls = np.zeros(max_iter + 1, dtype=np.int64)
    avg_sum = p.copy()
    avg_count = 1
    grad = payoff @ p  # A p_t, reused by the update
    n_calls = 1
    log_anchor = log_p.copy()  # optimistic: the secondary sequence pi'_t
    regularised_target = method == "inpo" and anchor_every is None and tau > 0

    def record(t: int, g_last: float) -> bool:
        avg = avg_sum / avg_count
        gaps_last[t] = g_last
        gaps_avg[t] = lottery_gap(margin, avg)
        calls[t] = n_calls
        if method == "inpo":
            gaps_reg[t] = regularized_gap(payoff, p, log_ref, tau) if tau > 0 else g_last
            if regularised_target:
                return bool(gaps_reg[t] < tol)
        if iterate == "last":
            return bool(gaps_last[t] < tol)
        if iterate == "average":
            return bool(gaps_avg[t] < tol)
        return bool(min(gaps_last[t], gaps_avg[t]) < tol)

    converged = record(0, 2.0 * float(grad.max()))
    t = 0
    while not converged and t < max_iter:
        t += 1
        if method == "mwu":  # SPPO: p <- p exp(eta (P p - 1/2)) / Z
            log_p, p = _normalise_log(log_p + step * grad)
            avg_sum += p
        elif method == "optimistic":  # ONPO: pi'_{t+1} from r_t; pi_{t+1} from pi'_{t+1} with predictor r_t
            log_anchor, _ = _normalise_log(log_anchor + step * grad)
            log_p, p = _normalise_log(log_anchor + step * grad)
            avg_sum += p
        elif method == "extragradient":  # EGPO: half step, then full step from p_t with the half-step gradient
            _, half = _normalise_log(log_p + step * grad)
            half_grad = payoff @ half
            n_calls += 1
            log_p, p = _normalise_log(log_p + step * half_grad)
            avg_sum += half
        else:  # INPO: pi_{t+1} ∝ pi_t^(1 - step tau) ref^(step tau) exp(step P(y > pi_t))
            log_p, p = _normalise_log((1.0 - step * tau) * log_p + step * tau * log_ref + step * grad)
            avg_sum += p
            if anchor_every is not None and t % anchor_every == 0:
                log_ref = log_p.copy()
                avg_sum, avg_count = p.copy(), 0
        avg_count += 1
        grad = payoff @ p
        n_calls += 1
        converged = record(t, 2.0 * float(grad.max()))
    average = avg_sum / avg_count
    if regularised_target or iterate == "last":
        chosen = "last"
    elif iterate == "average":
        chosen = "average"
    else:
        chosen = "last" if gaps_last[t] <= gaps_avg[t] else "average"
    history = {"iteration": np.arange(t + 1), "gap_last": gaps_last[: t + 1], "gap_average": gaps_avg[: t + 1]}
    if method == "inpo":
        history["gap_regularized"] = gaps_reg[: t + 1]
    history["operator_calls"] = calls[: t + 1]
    return {"last": p, "average": average, "iterate": chosen, "converged": converged, "n_iter": t,
            "history": pd.DataFrame(history)}


def solve_nash(matrix: Any, method: str = "optimistic", *, step: float | None = None, max_iter: int = 10_000,
               tol: float = 1e-6, iterate: str = "best", tau: float = 0.05, reference: Any = None,
               anchor_every: int | None = None, init: Any = None, kind: Kind = "auto", items: Any = None,
               unobserved: str = "tie", normalize: bool = True) -> NashSolution:
    """Approximate the maximal lottery with the iterative solvers of the Nash-alignment papers.

    Every method plays the symmetric game against itself with entropic
    (multiplicative) mirror steps on the payoff ``A = P - 1/2`` (= ``M / 2``),
    starting from ``init`` (default uniform), and records the duality gap
    ``max_i (M p)_i`` of the last and of the average iterate at every iteration.

    ``"mwu"`` (alias ``"sppo"``)
        SPPO's self-play update ``p <- p * exp(step * (P p - 1/2))``, normalised.
        No-regret, so the *average* iterate converges (gap O(1/(step T) + step));
        the last iterate cycles around mixed equilibria.
    ``"optimistic"`` (aliases ``"onpo"``, ``"omd"``)
        Optimistic multiplicative weights (ONPO): a secondary sequence
        ``p'_{t+1} = p'_t * exp(step A p_t)`` and the played
        ``p_{t+1} = p'_{t+1} * exp(step A p_t)`` (predictor = last payoff). The
        last iterate converges (linearly when the equilibrium is unique).
    ``"extragradient"`` (alias ``"egpo"``)
        Mirror-prox as in EGPO's tabular code: a half step
        ``q = p_t * exp(step A p_t)``, then the real step from the saved
        ``p_t`` with the half-step payoff, ``p_{t+1} = p_t * exp(step A q)``. Two
        products with the matrix per iteration (``operator_calls`` counts them).
    ``"inpo"``
        INPO's closed form ``p_{t+1} ∝ p_t^(1 - step tau) ref^(step tau) exp(step P(y beats p_t))``
        (the sheet's ``1/eta`` is ``step``): mirror descent on the game
        regularised by ``tau KL(. || ref)``, which it solves with a converging
        last iterate. With a fixed reference the target is that regularised
        equilibrium (stopping on ``gap_regularized``; its gap in the original
        game stays about ``tau``); ``anchor_every=k`` moves the reference to the
        current iterate every ``k`` steps (a proximal-point outer loop), which
        converges to the maximal lottery itself.
    ``"lp"``
        :func:`maximal_lottery` through the same interface.

    Parameters
    ----------
    matrix
        As in :func:`margin_matrix` (with ``kind``, ``items``, ``unobserved``,
        ``normalize``).
    method : str
        One of the above.
    step : float, optional
        Step size in units of ``A``. Default ``c / max|A_ij|`` with ``c`` = 0.1
        (mwu), 1 (optimistic, extragradient), 0.5 (inpo), i.e. 0.2, 2, 2 and 1
        for a probability matrix with a sure pair.
    max_iter : int
        Iteration limit; reaching it before ``tol`` warns with
        :class:`~bradley.errors.ConvergenceWarning`.
    tol : float
        Stop when the duality gap falls below ``tol`` (for a fixed-anchor INPO:
        the regularised gap).
    iterate : {"best", "last", "average"}
        Which iterate's gap stops the run and which is returned as ``lottery_``:
        ``"best"`` takes whichever is smaller.
    tau : float
        INPO's KL weight (``step * tau <= 1``).
    reference : array-like or Series, optional
        INPO's reference policy (default: ``init``).
    anchor_every : int, optional
        INPO: move the reference to the current iterate every this many steps.
    init : array-like or Series, optional
        Starting lottery (all entries positive), default uniform.

    Returns
    -------
    NashSolution

    Examples
    --------
    >>> rps = [[0.5, 0.9, 0.2], [0.1, 0.5, 0.7], [0.8, 0.3, 0.5]]
    >>> sol = solve_nash(rps, "optimistic", tol=1e-8)
    >>> sol.converged_, sol.iterate_
    (True, 'last')
    >>> bool(abs(sol.lottery_ - maximal_lottery(rps)).max() < 1e-6)
    True
    """
    method = _ALIASES.get(method, method)
    if method not in NASH_METHODS:
        raise ValueError(f"method must be one of {NASH_METHODS} (or an alias {sorted(_ALIASES)}), got {method!r}.")
    if iterate not in ("best", "last", "average"):
        raise ValueError(f"iterate must be 'best', 'last' or 'average', got {iterate!r}.")
    if max_iter < 0 or tol < 0:
        raise ValueError("max_iter and tol must be non-negative.")
    margin, names, missing = _margin(matrix, kind, items, unobserved, normalize)
    if method == "lp":
        lottery = maximal_lottery(margin, kind="margin", items=names, check_unique=True)
        gap = float(lottery.attrs["gap"])
        table = pd.DataFrame({"iteration": [1], "gap_last": [gap], "gap_average": [gap], "operator_calls": [0]})
        return NashSolution("lp", float("nan"), float("nan"), names, lottery, lottery, lottery, "lp", gap, table,
                            True, 1, margin)
    scale = float(np.abs(margin).max()) / 2.0
    if step is None:
        step = _DEFAULT_STEP[method] / scale if scale > 0 else 1.0
    if not (np.isfinite(step) and step > 0):
        raise ValueError(f"step must be positive and finite, got {step}.")
    if method == "inpo" and not (tau >= 0 and step * tau <= 1):
        raise ValueError(f"INPO needs tau >= 0 and step * tau <= 1, got step={step}, tau={tau}.")
    if anchor_every is not None and (method != "inpo" or anchor_every < 1):
        raise ValueError("anchor_every is a positive number of steps, for method='inpo' only.")
    p0 = None if init is None else _as_distribution(init, names, "init")
    ref = None if reference is None else _as_distribution(reference, names, "reference")
    for what, dist in (("init", p0), ("reference", ref)):
        if dist is not None and (dist <= 0).any():
            raise ComparisonDataError(f"{what} must give every item a positive probability (mirror steps keep zeros).")
    out = nash_iterations(margin, method, float(step), max_iter=max_iter, tol=tol, iterate=iterate,
                          tau=tau if method == "inpo" else 0.0, init=p0, reference=ref, anchor_every=anchor_every)
    history: pd.DataFrame = out["history"]
    if not out["converged"]:
        column = "gap_regularized" if "gap_regularized" in history and anchor_every is None else "gap_last"
        final = float(history[column].iloc[-1])
        hint = (" A fixed-anchor INPO solves the tau-regularised game; its gap in the original game stays near tau."
                if method == "inpo" else "")
        warnings.warn(
            f"solve_nash({method!r}) stopped at max_iter={max_iter} with {column}={final:.3g}, "
            f"gap_average={float(history['gap_average'].iloc[-1]):.3g} > tol={tol:g}; raise max_iter, change step, "
            f"or use method='lp' for the exact answer.{hint}", ConvergenceWarning, stacklevel=2)
    last = _lottery_series(out["last"], margin, names, unobserved_pairs=missing)
    average = _lottery_series(out["average"], margin, names, unobserved_pairs=missing)
    chosen = last if out["iterate"] == "last" else average
    return NashSolution(method, float(step), float(tau) if method == "inpo" else 0.0, names, chosen, last, average,
                        out["iterate"], float(chosen.attrs["gap"]), history, bool(out["converged"]),
                        int(out["n_iter"]), margin)
