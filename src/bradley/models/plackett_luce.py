"""Plackett-Luce for k-wise rankings with ties, fitted by safeguarded Newton or Hunter's MM.

A ranking is read as a sequence of choices (Luce 1959; Plackett 1975): at each
rank level the tied group of items at that level is chosen from the items not
yet placed (items present but unranked stay in every choice set and are never
chosen: top-k rankings). Two treatments of a tied group ``C`` chosen from the
remaining set ``S``:

* ``ties="breslow"``: each item of ``C`` is chosen from the same set ``S``,
  ``P = prod_{i in C} alpha_i / (sum_{k in S} alpha_k)^|C|`` (Breslow 1974's
  approximation, as for tied event times).
* ``ties="davidson-luce"`` (Turner, van Etten, Firth & Kosmidis 2020, the model
  of R's PlackettLuce): ``P = delta_|C| g(C) / sum_{d in D} delta_d sum_{A in S, |A| = d} g(A)``,
  ``g(A) = (prod_{i in A} alpha_i)^(1/|A|)``, ``delta_1 = 1``, one tie
  parameter per tie order observed in the data. For pairs it is Davidson's
  (1970) model with ``nu = delta_2``. The inner sums are elementary symmetric
  polynomials of ``alpha_i^(1/d)``, computed in the log domain by the usual
  one-item-at-a-time recursion, so no subsets are enumerated.

A stage whose choice set holds a single item has probability 1 and is left
out; every other stage counts, including a tied group that fills the remaining
set (a tied last place, a fully tied ranking, a tied pair).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg, sparse
from scipy.special import expit, logsumexp, ndtri

from bradley.data import mle_existence_problem
from bradley.errors import ConvergenceWarning
from bradley.models.base import ItemIndex, ScoreUncertainty, check_prior, gauged_inverse, require_fitted
from bradley.rankings import UNRANKED, Rankings, break_rankings
from bradley.solvers.threads import single_blas_thread

__all__ = ["PlackettLuce", "plackett_luce_log_likelihood"]

TIES = ("breslow", "davidson-luce")


@dataclass
class _Stages:
    """Choice stages: at each distinct level of a ranking, the tied group chosen from those left."""

    member_stage: np.ndarray  # stage of each (stage, item-in-choice-set) entry, sorted by stage
    member_item: np.ndarray
    chosen_stage: np.ndarray
    chosen_item: np.ndarray
    weight: np.ndarray  # ranking weight of each stage
    chosen_size: np.ndarray  # size of the tied group chosen at each stage
    n_stages: int

    @property
    def stage_weight(self) -> np.ndarray:
        """Breslow: a tied group of size c is c choices from the same set."""
        return self.weight * self.chosen_size

    @property
    def chosen_weight(self) -> np.ndarray:
        return self.weight[self.chosen_stage]


def _stages(r: Rankings) -> _Stages:
    order = np.lexsort((r.level, r.ranking))
    rid, item, level = r.ranking[order], r.item[order], r.level[order]
    m = len(rid)
    new_ranking = np.ones(m, bool)
    new_ranking[1:] = rid[1:] != rid[:-1]
    new_level = new_ranking.copy()
    new_level[1:] |= level[1:] != level[:-1]
    group_start = np.flatnonzero(new_level)  # first entry of each (ranking, level) group
    group_end = np.append(group_start[1:], m)
    ranking_end = np.append(np.flatnonzero(new_ranking)[1:], m)[np.cumsum(new_ranking)[group_start] - 1]
    # a stage per ranked level: the group is chosen from its own entries and all later ones of the ranking;
    # only a single item choosing from a set of itself carries no information (probability 1);
    # rankings of weight zero contribute nothing (and must not bring tie orders into the model)
    keep = (level[group_start] != UNRANKED) & (ranking_end - group_start >= 2) & (r.weight[rid[group_start]] > 0)
    start, end, stop = group_start[keep], group_end[keep], ranking_end[keep]
    n_stages = len(start)

    def spans(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sizes = hi - lo
        stage = np.repeat(np.arange(n_stages), sizes)
        offset = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        return stage, lo[stage] + offset

    member_stage, member_pos = spans(start, stop)
    chosen_stage, chosen_pos = spans(start, end)
    return _Stages(member_stage, item[member_pos].astype(np.int64), chosen_stage, item[chosen_pos].astype(np.int64),
                   r.weight[rid[start]].astype(np.float64), (end - start).astype(np.int64), n_stages)


# --------------------------------------------------------------------------- Breslow ties
def _stage_log_normalisers(theta: np.ndarray, st: _Stages) -> np.ndarray:
    t = theta[st.member_item]
    top = np.full(st.n_stages, -np.inf)
    np.maximum.at(top, st.member_stage, t)
    sums = np.bincount(st.member_stage, np.exp(t - top[st.member_stage]), st.n_stages)
    return top + np.log(sums)


def _loglik(theta: np.ndarray, st: _Stages) -> float:
    return float(st.chosen_weight @ theta[st.chosen_item] - st.stage_weight @ _stage_log_normalisers(theta, st))


def _gradient_and_probs(theta: np.ndarray, st: _Stages, n: int) -> tuple[np.ndarray, np.ndarray]:
    log_norm = _stage_log_normalisers(theta, st)
    prob = np.exp(theta[st.member_item] - log_norm[st.member_stage])  # choice probability within the stage
    expected = np.bincount(st.member_item, st.stage_weight[st.member_stage] * prob, n)
    wins = np.bincount(st.chosen_item, st.chosen_weight, n)
    return wins - expected, prob


def _information(st: _Stages, n: int, prob: np.ndarray) -> np.ndarray:
    """Observed information of the Breslow likelihood: sum_s w_s |C_s| (diag(p_s) - p_s p_s^T)."""
    w = st.stage_weight[st.member_stage]
    s = sparse.csr_matrix((np.sqrt(w) * prob, (st.member_stage, st.member_item)), shape=(st.n_stages, n))
    outer = (s.T @ s).toarray()
    return np.diag(np.bincount(st.member_item, w * prob, n)) - outer


def _mm_step(theta: np.ndarray, st: _Stages, n: int, wins: np.ndarray) -> np.ndarray:
    """Hunter (2004): gamma_i <- W_i / sum_s w_s |C_s| [i in R_s] / sum_{k in R_s} gamma_k (monotone)."""
    log_norm = _stage_log_normalisers(theta, st)
    denom = np.bincount(st.member_item, st.stage_weight[st.member_stage] * np.exp(-log_norm[st.member_stage]), n)
    new = np.log(wins) - np.log(denom)
    return new - new.mean()


# --------------------------------------------------------------------------- Davidson-Luce ties
@dataclass
class _TieDesign:
    """Stages as a padded (n_stages, max set size) array of items, and the tie orders in the model."""

    pad_item: np.ndarray  # item codes, 0 where padded
    pad_mask: np.ndarray  # True where a real member
    orders: np.ndarray  # tie orders in the model: 1 and every observed order >= 2
    observed: np.ndarray  # weighted count of stages choosing a group of each order
    chosen_sum_weight: np.ndarray  # per chosen entry: w_s / |C_s|


def _tie_design(st: _Stages) -> _TieDesign:
    counts = np.bincount(st.member_stage, minlength=st.n_stages)
    width = int(counts.max()) if st.n_stages else 1
    pos = np.arange(len(st.member_stage)) - np.repeat(np.cumsum(counts) - counts, counts)
    pad_item = np.zeros((st.n_stages, width), np.int64)
    pad_mask = np.zeros((st.n_stages, width), bool)
    pad_item[st.member_stage, pos] = st.member_item
    pad_mask[st.member_stage, pos] = True
    orders = np.union1d([1], np.unique(st.chosen_size))
    observed = np.array([st.weight[st.chosen_size == d].sum() for d in orders])
    return _TieDesign(pad_item, pad_mask, orders, observed, st.chosen_weight / st.chosen_size[st.chosen_stage])


def _log_esp_prefix(logx: np.ndarray, degree: int) -> np.ndarray:
    """``out[:, q, a] = log e_a(x[:, :q])``: log elementary symmetric polynomials of prefixes, per row."""
    rows, width = logx.shape
    out = np.full((rows, width + 1, degree + 1), -np.inf)
    out[:, :, 0] = 0.0
    for q in range(width):
        out[:, q + 1, 1:] = np.logaddexp(out[:, q, 1:], logx[:, q, None] + out[:, q, :-1])
    return out


def _davidson_luce_terms(theta: np.ndarray, log_delta: np.ndarray, st: _Stages, td: _TieDesign,
                         n: int, gradient: bool = True) -> tuple[float, np.ndarray | None, np.ndarray | None]:
    """Log-likelihood and its gradient in (theta, log delta_d for d >= 2).

    ``log_delta`` has one entry per tie order in ``td.orders`` (the first, order 1, is 0).
    """
    width = td.pad_item.shape[1]
    member_theta = np.where(td.pad_mask, theta[td.pad_item], -np.inf)
    log_terms: list[np.ndarray] = []
    loo: list[np.ndarray | None] = []
    for d, ld in zip(td.orders, log_delta, strict=True):
        d = int(d)
        logx = member_theta / d
        if d > width:
            log_terms.append(np.full(st.n_stages, -np.inf))
            loo.append(None)
            continue
        prefix = _log_esp_prefix(logx, d)
        log_terms.append(ld + prefix[:, width, d])
        if gradient:
            suffix = _log_esp_prefix(logx[:, ::-1], d - 1)[:, ::-1, :]  # suffix[:, q] = polys of members q.. end
            # e_{d-1}(S minus member q) = sum_a e_a(members before q) e_{d-1-a}(members after q)
            before = prefix[:, :width, :d]
            after = suffix[:, 1:, ::-1]  # degrees d-1 .. 0
            loo.append(ld + logx + logsumexp(before + after, axis=2))
    terms = np.array(log_terms)  # (orders, stages)
    log_norm = logsumexp(terms, axis=0)
    chosen_order = np.searchsorted(td.orders, st.chosen_size)
    ll = float(st.weight @ (log_delta[chosen_order] - log_norm)
               + td.chosen_sum_weight @ theta[st.chosen_item])
    if not gradient:
        return ll, None, None
    expected_theta = np.zeros((st.n_stages, width))
    for d, term in zip(td.orders, loo, strict=True):
        if term is not None:
            expected_theta += np.exp(term - log_norm[:, None]) / d
    grad_theta = np.bincount(st.chosen_item, td.chosen_sum_weight, n) - np.bincount(
        td.pad_item[td.pad_mask], (st.weight[:, None] * expected_theta)[td.pad_mask], n)
    grad_delta = td.observed - np.exp(terms - log_norm) @ st.weight
    return ll, grad_theta, grad_delta[1:]


def _log_esp_leave_one_out(logx: np.ndarray, degree: int) -> np.ndarray:
    """``out[:, q] = log e_degree(x without member q)``, per row (prefix times suffix polynomials)."""
    rows, width = logx.shape
    if degree == 0:
        return np.zeros((rows, width))
    prefix = _log_esp_prefix(logx, degree)
    suffix = _log_esp_prefix(logx[:, ::-1], degree)[:, ::-1, :]  # suffix[:, q] = polys of members q.. end
    return _logsumexp_last(prefix[:, :width, :] + suffix[:, 1:, ::-1])


def _logsumexp_last(a: np.ndarray) -> np.ndarray:
    """``log sum exp`` over the last axis; rows of all ``-inf`` give ``-inf`` (no warnings, no NaN)."""
    top = a.max(axis=-1)
    safe = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return np.where(np.isfinite(top), safe + np.log(np.exp(a - safe[..., None]).sum(axis=-1)), top)


def _log_esp_leave_two_out(logx: np.ndarray, degree: int, max_cells: int = 1 << 22) -> np.ndarray:
    """``out[s, q, j] = log e_degree(x without members q and j)`` (the diagonal is not meaningful)."""
    rows, width = logx.shape
    out = np.empty((rows, width, width))
    if degree == 0:
        out[:] = 0.0
        return out
    out[:] = -np.inf
    # members are packed to the left of each row: work on each set size with its own width
    sizes = np.isfinite(logx).sum(axis=1)
    for size in np.unique(sizes):
        size = int(size)
        if size < degree + 2:
            continue  # fewer than degree members left after removing two: e_degree = 0
        rows_of = np.flatnonzero(sizes == size)
        chunk = max(1, max_cells // (size * (size + 1) * (degree + 1)))
        diag = np.arange(size)
        for lo in range(0, len(rows_of), chunk):
            idx = rows_of[lo:lo + chunk]
            expanded = np.repeat(logx[idx, None, :size], size, axis=1)
            expanded[:, diag, diag] = -np.inf
            block = _log_esp_leave_one_out(expanded.reshape(-1, size), degree).reshape(-1, size, size)
            out[idx[:, None, None], diag[None, :, None], diag[None, None, :]] = block
    return out


def _davidson_luce_information(theta: np.ndarray, log_delta: np.ndarray, st: _Stages, td: _TieDesign,
                               n: int) -> np.ndarray:
    """Observed information of the Davidson-Luce log-likelihood in (theta, log delta_d for d >= 2), analytic.

    At a stage the normaliser is that of a distribution over the subsets ``A`` of the
    choice set with ``|A|`` a tie order, ``P(A) ~ delta_|A| exp(sum_{i in A} theta_i / |A|)``;
    the log-likelihood is linear in the statistics ``t_i = [i in A] / |A|`` and
    ``u_d = [|A| = d]`` minus the log normaliser, so the information is the
    weighted sum over stages of their covariance under ``P``. Pair inclusion
    probabilities need ``e_{d-2}`` of the set without two members.
    """
    width = td.pad_item.shape[1]
    n_orders = len(td.orders)
    member_theta = np.where(td.pad_mask, theta[td.pad_item], -np.inf)
    log_terms = np.full((n_orders, st.n_stages), -np.inf)
    incl: list[np.ndarray | None] = []  # log of P(q in A, |A| = d) * Z, per order
    for k, (d, ld) in enumerate(zip(td.orders, log_delta, strict=True)):
        d = int(d)
        if d > width:
            incl.append(None)
            continue
        logx = member_theta / d
        log_terms[k] = ld + _log_esp_prefix(logx, d)[:, width, d]
        with np.errstate(invalid="ignore"):
            incl.append(ld + logx + _log_esp_leave_one_out(logx, d - 1))
    log_norm = logsumexp(log_terms, axis=0)
    q_order = np.exp(log_terms - log_norm)  # P(|A| = d), (orders, stages)
    mean_t = np.zeros((st.n_stages, width))
    second = np.zeros((st.n_stages, width, width))  # E[t_q t_r]
    p_order = []
    diag = np.arange(width)
    for d, ld, term in zip(td.orders, log_delta, incl, strict=True):
        d = int(d)
        if term is None:
            p_order.append(np.zeros((st.n_stages, width)))
            continue
        p = np.exp(term - log_norm[:, None])
        p_order.append(p)
        mean_t += p / d
        second[:, diag, diag] += p / d**2
        if d >= 2:
            logx = member_theta / d
            with np.errstate(invalid="ignore"):
                pair = ld + logx[:, :, None] + logx[:, None, :] + _log_esp_leave_two_out(logx, d - 2) \
                    - log_norm[:, None, None]
            pair[:, diag, diag] = -np.inf
            second += np.exp(pair) / d**2
    w = st.weight
    cov = (second - mean_t[:, :, None] * mean_t[:, None, :]) * w[:, None, None]
    both = td.pad_mask[:, :, None] & td.pad_mask[:, None, :]
    flat = (td.pad_item[:, :, None] * n + td.pad_item[:, None, :])[both]
    m = n + n_orders - 1
    info = np.zeros((m, m))
    info[:n, :n] = np.bincount(flat, cov[both], n * n).reshape(n, n)
    for k in range(1, n_orders):
        d = int(td.orders[k])
        cross = (p_order[k] / d - mean_t * q_order[k][:, None]) * w[:, None]
        column = np.bincount(td.pad_item[td.pad_mask], cross[td.pad_mask], n)
        info[:n, n + k - 1] = column
        info[n + k - 1, :n] = column
    qd = q_order[1:]
    info[n:, n:] = np.diag(qd @ w) - (qd * w) @ qd.T
    return 0.5 * (info + info.T)


# --------------------------------------------------------------------------- safeguarded Newton
@dataclass
class _Result:
    x: np.ndarray
    n_iter: int
    converged: bool
    criterion: float
    n_fallback: int


def _newton(value: Callable[[np.ndarray], float], grad_info: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
            x0: np.ndarray, gauge: np.ndarray | None, tol: float, max_iter: int,
            fallback: Callable[[np.ndarray], np.ndarray] | None = None,
            recentre: Callable[[np.ndarray], np.ndarray] = lambda x: x) -> _Result:
    """Maximise a concave objective by Newton steps that never lower it.

    Each step solves ``(I + g g^T) step = grad`` (``I`` the observed information,
    ``g`` a unit vector along the null direction of a shift-invariant
    likelihood, so the system is positive definite) by Cholesky, then
    backtracks until the Armijo condition holds. When the factorisation fails
    or no step length helps, ``fallback`` (a monotone MM step) is taken, or a
    Levenberg-Marquardt step ``(I + lam 1) step = grad`` with ``lam`` growing
    until the objective rises. Converged when every one-coordinate Newton step
    ``|grad_j| / I_jj`` is at most ``tol``.
    """
    x = recentre(np.asarray(x0, np.float64).copy())
    f = value(x)
    n_fallback = 0
    crit = np.inf
    it = 0
    for it in range(1, max_iter + 1):
        g, info = grad_info(x)
        diag = np.diag(info)
        crit = float(np.max(np.abs(g) / np.maximum(diag, 1e-300))) if len(g) else 0.0
        if crit <= tol:
            return _Result(x, it - 1, True, crit, n_fallback)
        system = info if gauge is None else info + np.outer(gauge, gauge)
        step = None
        try:
            with single_blas_thread(len(x)):
                factor = linalg.cho_factor(system, check_finite=True)
                step = linalg.cho_solve(factor, g)
        except (linalg.LinAlgError, ValueError):
            step = None
        accepted = False
        if step is not None and np.all(np.isfinite(step)):
            accepted, x_new, f_new = _line_search(value, x, f, g, step, recentre)
        if not accepted and fallback is not None:
            x_new = recentre(fallback(x))
            f_new = value(x_new)
            accepted = np.isfinite(f_new) and f_new >= f - 1e-12 * (1.0 + abs(f))
            n_fallback += 1
        if not accepted:
            scale = float(np.max(np.abs(diag))) if len(diag) else 1.0
            for lam in scale * 10.0 ** np.arange(-4, 9):
                try:
                    with single_blas_thread(len(x)):
                        step = linalg.solve(system + lam * np.eye(len(x)), g, assume_a="pos")
                except (linalg.LinAlgError, ValueError):
                    continue
                accepted, x_new, f_new = _line_search(value, x, f, g, step, recentre, max_halvings=1)
                if accepted:
                    break
            n_fallback += 1
        if not accepted:
            break  # no direction raises the objective: report the criterion honestly
        x, f = x_new, f_new
    g, info = grad_info(x)
    crit = float(np.max(np.abs(g) / np.maximum(np.diag(info), 1e-300))) if len(g) else 0.0
    return _Result(x, it, crit <= tol, crit, n_fallback)


def _line_search(
    value: Callable[[np.ndarray], float],
    x: np.ndarray,
    f: float,
    g: np.ndarray,
    step: np.ndarray,
    recentre: Callable[[np.ndarray], np.ndarray],
    max_halvings: int = 40,
) -> tuple[bool, np.ndarray, float]:
    """Backtracking (Armijo) along ``step``; accepts only points that do not lower the objective.

    When the predicted gain is below the rounding level of ``f`` (at the
    optimum), a point equal to ``f`` within rounding is accepted.
    """
    slope = float(g @ step)
    if not slope > 0:
        return False, x, f
    noise = 1e-13 * (1.0 + abs(f))
    t = 1.0
    for _ in range(max_halvings + 1):
        cand = recentre(x + t * step)
        fc = value(cand)
        if np.isfinite(fc) and (fc >= f + 1e-4 * t * slope or (t * slope <= 100 * noise and fc >= f - noise)):
            return True, cand, fc
        t *= 0.5
    return False, x, f


# --------------------------------------------------------------------------- public API
def plackett_luce_log_likelihood(scores: np.ndarray, rankings: Rankings, ties: str = "breslow",
                                 delta: dict[int, float] | None = None) -> float:
    """Plackett-Luce log-likelihood of ``scores`` (log-worths), weighted by ranking weights.

    Parameters
    ----------
    scores : array of float, one per item of ``rankings``
    rankings : Rankings
    ties : {"breslow", "davidson-luce"}
        Breslow: each tied item is chosen from the same set. Davidson-Luce:
        ``delta`` gives the tie parameter of each tie order ``>= 2`` that occurs.
    delta : dict, optional
        ``{order: delta}`` for Davidson-Luce (orders occurring in the data must be given).

    Examples
    --------
    >>> r = Rankings.from_long([0, 0], ["a", "b"], [1, 1])
    >>> round(plackett_luce_log_likelihood(np.zeros(2), r), 6)  # two items tie: 2 log(1/2)
    -1.386294
    >>> round(plackett_luce_log_likelihood(np.zeros(2), r, "davidson-luce", {2: 1.0}), 6)  # 1 / (1 + 1 + 1)
    -1.098612
    """
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got {ties!r}.")
    st = _stages(rankings)
    theta = np.asarray(scores, np.float64)
    if ties == "breslow":
        return _loglik(theta, st)
    td = _tie_design(st)
    delta = delta or {}
    missing = [int(d) for d in td.orders[1:] if int(d) not in delta]
    if missing:
        raise ValueError(f"delta must give the tie parameter of every tie order in the data; missing {missing}.")
    log_delta = np.array([0.0] + [np.log(delta[int(d)]) for d in td.orders[1:]])
    return _davidson_luce_terms(theta, log_delta, st, td, len(theta), gradient=False)[0]


_WARM_START_SWEEPS = 10


class PlackettLuce(ScoreUncertainty):
    """Plackett-Luce model for full, partial (top-k) and tied rankings.

    ``P(ranking) = prod_stages P(tied group chosen at the stage | items left)``;
    with no ties, ``exp(s_chosen) / sum_{k in remaining} exp(s_k)``. Items
    present but unranked stay in every choice set and are never chosen
    (top-k rankings).

    Parameters
    ----------
    solver : {"newton", "mm"}
        Safeguarded Newton with the observed information (default; starts
        from a few MM sweeps, never accepts a step that lowers the objective,
        falls back to MM or damped steps), or Hunter's (2004) MM algorithm
        (Breslow ties, no prior).
    ties : {"breslow", "davidson-luce"}
        Breslow's approximation (each item of a tied group is chosen from the
        same set), or the Davidson-Luce model of Turner et al. (2020) with one
        tie parameter ``delta_d`` per tie order ``d`` in the data, reported in
        ``params_``; for pairs it is Davidson's (1970) model.
    prior : float, optional
        Gaussian prior variance on the scores (MAP; Newton only).
    tol, max_iter
        Convergence when every one-coordinate Newton step ``|g_j| / I_jj`` (scores
        and log tie parameters) is at most ``tol``.

    Attributes
    ----------
    items_, scores_ (mean zero), scores_se_, covariance_ (scores, mean-zero
    constraint), parameter_covariance_ (scores then ``log delta_d``),
    params_ (tie parameters: estimate, se, z, p_value, ci_low, ci_high; empty
    for Breslow), log_likelihood_, converged_,
    n_iter_ (all iterations: the MM warm-start sweeps plus the Newton or MM
    iterations), n_warm_start_sweeps_ (the MM sweeps that start Newton
    without a prior), convergence_criterion_, n_fallback_steps_ (Newton
    steps replaced by MM or damped steps). With ``ties="davidson-luce"`` and
    no tied group in the data there is no tie parameter: the fit is the
    plain Plackett-Luce (Breslow) one and ``params_`` is empty.

    Examples
    --------
    >>> r = Rankings.from_orderings([["a", "b", "c"], ["a", "c", "b"], ["b", "a", "c"], ["c", "b", "a"]])
    >>> m = PlackettLuce().fit(r)
    >>> m.converged_, m.items_[np.argmax(m.scores_)]
    (True, 'a')
    >>> pairs = [("a", "b"), ("b", "c"), ("a", "c")]
    >>> ids = np.repeat(np.arange(9), 2)
    >>> items = [x for pair in pairs for _ in range(3) for x in pair]
    >>> ranks = [1, 2, 2, 1, 1, 1] * 3  # per pair: first wins, second wins, tie
    >>> d = PlackettLuce(ties="davidson-luce").fit(Rankings.from_long(ids, items, ranks))
    >>> list(d.params_.index), d.converged_, float(round(d.params_.loc["delta_2", "estimate"], 6))
    (['delta_2'], True, 1.0)
    """

    def __init__(self, solver: str = "newton", prior: float | None = None, tol: float = 1e-9,
                 max_iter: int | None = None, ties: str = "breslow"):
        self.solver = solver
        self.prior = prior
        self.tol = tol
        self.max_iter = max_iter
        self.ties = ties

    def fit(self, rankings: Rankings) -> PlackettLuce:
        """Fit to ``rankings`` (see :func:`bradley.read_rankings`); returns ``self``."""
        if not isinstance(rankings, Rankings):
            raise TypeError("PlackettLuce.fit takes Rankings (see bradley.read_rankings).")
        if self.solver not in ("newton", "mm"):
            raise ValueError(f"solver must be 'newton' or 'mm', got {self.solver!r}.")
        if self.ties not in TIES:
            raise ValueError(f"ties must be one of {TIES}, got {self.ties!r}.")
        check_prior(self.prior)
        if self.solver == "mm" and self.prior is not None:
            raise ValueError("the MM solver fits the MLE; use solver='newton' with a prior.")
        if self.solver == "mm" and self.ties == "davidson-luce":
            raise ValueError(
                "the MM solver fits Breslow ties; use solver='newton' (the default) for ties='davidson-luce'."
            )
        n = rankings.n_items
        st = _stages(rankings)
        if self.prior is None:
            # The PL MLE exists iff the "ranked above" graph is strongly connected (Hunter 2004);
            # it is the win graph of the fully broken rankings (ties link both ways).
            problem = mle_existence_problem(
                break_rankings(rankings).pair_counts(), model="PlackettLuce",
                subject="the Plackett-Luce maximum-likelihood scores (in the pairs the rankings order)")
            if problem is not None:
                raise problem
        precision = 0.0 if self.prior is None else 1.0 / self.prior
        wins = np.bincount(st.chosen_item, st.chosen_weight, n)
        max_iter = self.max_iter or (200 if self.solver == "newton" else 100_000)

        theta0 = np.log(wins + 0.5)
        theta0 -= theta0.mean()
        n_sweeps = 0
        if self.prior is None and self.solver == "newton":
            n_sweeps = _WARM_START_SWEEPS  # a few monotone MM sweeps: a start where no item is far off
            for _ in range(n_sweeps):
                theta0 = _mm_step(theta0, st, n, wins)
        elif self.prior is not None:
            theta0 = np.zeros(n)
        # Without tied groups Davidson-Luce has no tie parameter and is the plain (Breslow) likelihood.
        tied = bool(np.any(st.chosen_size > 1))

        if self.solver == "mm":
            result = self._fit_mm(theta0, st, n, wins, max_iter)
            x, td = result.x, None
        elif self.ties == "breslow" or not tied:
            result = self._fit_breslow(theta0, st, n, wins, precision, max_iter)
            x, td = result.x, None
        else:
            td = _tie_design(st)
            result = self._fit_davidson_luce(theta0, st, td, n, precision, max_iter)
            x = result.x
        theta = x[:n]

        # covariance: inverse observed information; the scores' shift is fixed by the mean-zero constraint
        info = self._info_breslow(theta, st, n, precision) if td is None else self._info_dl(x, st, td, n, precision)
        with single_blas_thread(len(x)):
            if precision == 0.0:
                u = np.zeros(len(x))
                u[:n] = 1.0 / np.sqrt(n)
                cov = gauged_inverse(info, u)
            else:
                cov = linalg.inv(info)

        self.items_ = np.asarray(rankings.items, dtype=object)
        self._index = ItemIndex(self.items_)
        self.scores_ = theta
        self.parameter_covariance_ = cov
        self.covariance_ = cov[:n, :n]
        self.scores_se_ = np.sqrt(np.clip(np.diag(self.covariance_), 0, None))
        if td is None:
            self.log_likelihood_ = _loglik(theta, st)
            self.params_ = self._parameter_table([], np.zeros(0), np.zeros((0, 0)))
        else:
            log_delta = np.concatenate([[0.0], x[n:]])
            self.log_likelihood_ = _davidson_luce_terms(theta, log_delta, st, td, n, gradient=False)[0]
            self.params_ = self._parameter_table([f"delta_{int(d)}" for d in td.orders[1:]], x[n:], cov[n:, n:])
        self.tie_orders_ = [] if td is None else [int(d) for d in td.orders[1:]]
        self.n_warm_start_sweeps_ = n_sweeps
        self.n_iter_ = n_sweeps + result.n_iter
        self.converged_ = result.converged
        self.convergence_criterion_ = result.criterion
        self.n_fallback_steps_ = result.n_fallback
        self.solver_ = self.solver
        self.n_rankings_ = rankings.n_rankings
        self.first_place_ = pd.Series(np.bincount(rankings.item[rankings.level == 1], minlength=n), index=self.items_)
        if not self.converged_:
            hint = ""
            if np.max(np.abs(x)) > 30:
                hint = (" Estimates are drifting to infinity: the MLE may not exist for these data (with "
                        "Davidson-Luce ties, a tie parameter can diverge even when the ranked-above graph is "
                        "strongly connected); a prior keeps the scores finite.")
            warnings.warn(f"PlackettLuce ({self.solver}) stopped after {self.n_iter_} iterations without meeting "
                          f"tol={self.tol:g} (largest one-coordinate Newton step {self.convergence_criterion_:.3g})."
                          + hint, ConvergenceWarning, stacklevel=2)
        return self

    # ------------------------------------------------------------------ solvers
    def _fit_mm(self, theta: np.ndarray, st: _Stages, n: int, wins: np.ndarray, max_iter: int) -> _Result:
        crit = np.inf
        for it in range(max_iter + 1):
            grad, prob = _gradient_and_probs(theta, st, n)
            diag = np.bincount(st.member_item, st.stage_weight[st.member_stage] * prob * (1 - prob), n)
            crit = float(np.max(np.abs(grad) / np.maximum(diag, 1e-300)))
            if crit <= self.tol or it == max_iter:
                break
            theta = _mm_step(theta, st, n, wins)
        return _Result(theta, it, crit <= self.tol, crit, 0)

    @staticmethod
    def _info_breslow(theta: np.ndarray, st: _Stages, n: int, precision: float) -> np.ndarray:
        _, prob = _gradient_and_probs(theta, st, n)
        return _information(st, n, prob) + precision * np.eye(n)

    def _fit_breslow(self, theta0: np.ndarray, st: _Stages, n: int, wins: np.ndarray, precision: float,
                     max_iter: int) -> _Result:
        def value(theta: np.ndarray) -> float:
            return _loglik(theta, st) - 0.5 * precision * theta @ theta

        def grad_info(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            grad, prob = _gradient_and_probs(theta, st, n)
            return grad - precision * theta, _information(st, n, prob) + precision * np.eye(n)

        gauge = np.full(n, 1.0 / np.sqrt(n)) if precision == 0.0 else None
        fallback = (lambda theta: _mm_step(theta, st, n, wins)) if precision == 0.0 else None
        return _newton(value, grad_info, theta0, gauge, self.tol, max_iter, fallback, _centre(n))

    def _objective_dl(self, st: _Stages, td: _TieDesign, n: int, precision: float):
        def value(x: np.ndarray) -> float:
            ll = _davidson_luce_terms(x[:n], np.concatenate([[0.0], x[n:]]), st, td, n, gradient=False)[0]
            return ll - 0.5 * precision * x[:n] @ x[:n]

        def gradient(x: np.ndarray) -> np.ndarray:
            _, g_theta, g_delta = _davidson_luce_terms(x[:n], np.concatenate([[0.0], x[n:]]), st, td, n)
            assert g_theta is not None and g_delta is not None  # gradient=True returns both
            return np.concatenate([g_theta - precision * x[:n], g_delta])

        return value, gradient

    @staticmethod
    def _info_dl(x: np.ndarray, st: _Stages, td: _TieDesign, n: int, precision: float) -> np.ndarray:
        info = _davidson_luce_information(x[:n], np.concatenate([[0.0], x[n:]]), st, td, n)
        info[np.arange(n), np.arange(n)] += precision
        return info

    def _fit_davidson_luce(self, theta0: np.ndarray, st: _Stages, td: _TieDesign, n: int, precision: float,
                           max_iter: int) -> _Result:
        value, gradient = self._objective_dl(st, td, n, precision)
        # start each log delta_d where the expected count of order-d ties (delta = 1) meets the observed count
        log_delta = np.zeros(len(td.orders))
        _, _, g = _davidson_luce_terms(theta0, log_delta, st, td, n)
        expected = td.observed[1:] - g
        x0 = np.concatenate([theta0, np.log(td.observed[1:] / np.maximum(expected, 1e-300))])

        def grad_info(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return gradient(x), self._info_dl(x, st, td, n, precision)

        gauge = None
        if precision == 0.0:
            gauge = np.zeros(len(x0))
            gauge[:n] = 1.0 / np.sqrt(n)
        return _newton(value, grad_info, x0, gauge, self.tol, max_iter, None, _centre(n))

    # ------------------------------------------------------------------ presentation
    @staticmethod
    def _parameter_table(names: list[str], log_values: np.ndarray, cov: np.ndarray) -> pd.DataFrame:
        """Tie parameters on their natural scale (delta method SE; interval from the log scale)."""
        se_log = np.sqrt(np.clip(np.diag(cov), 0, None)) if len(names) else np.zeros(0)
        z = ndtri(0.975)
        with np.errstate(over="ignore"):
            estimate = np.exp(log_values)
            table = pd.DataFrame({
                "estimate": estimate, "se": estimate * se_log,
                "z": np.full(len(names), np.nan), "p_value": np.full(len(names), np.nan),
                "ci_low": np.exp(log_values - z * se_log), "ci_high": np.exp(log_values + z * se_log),
            }, index=pd.Index(names, name="parameter"), dtype=np.float64)
        return table

    def predict_proba(self, left: Any, right: Any) -> np.ndarray:
        """Probability that ``left`` is ranked above ``right`` in a pair without a tie (``expit(s_l - s_r)``)."""
        require_fitted(self)
        return expit(self.scores_[self._index.codes(left)] - self.scores_[self._index.codes(right)])

    def summary(self) -> pd.DataFrame:
        """item, score, se, rank, first_place (rankings won); best first. Scores are mean zero."""
        require_fitted(self)
        table = pd.DataFrame({"item": self.items_, "score": self.scores_, "se": self.scores_se_})
        table["rank"] = pd.Series(-self.scores_).rank(method="min").astype(np.int64).to_numpy()
        table["first_place"] = self.first_place_.to_numpy()
        table = table.sort_values("rank", kind="stable").reset_index(drop=True)
        how = "scores centred to mean zero (SEs under that constraint)"
        if self.prior is not None:
            how += f"; Gaussian prior N(0, {self.prior:g}) on the scores (MAP)"
        if self.ties == "davidson-luce":
            how += "; Davidson-Luce tie parameters in params_"
        table.attrs["identifiability"] = how
        return table


def _centre(n: int) -> Callable[[np.ndarray], np.ndarray]:
    def recentre(x: np.ndarray) -> np.ndarray:
        x = x.copy()
        x[:n] -= x[:n].mean()
        return x

    return recentre
