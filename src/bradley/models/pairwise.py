"""Pairwise comparison models with ties, order effects, covariates, item features and noisy labels.

One engine, :class:`PairwiseModel`, fits every member of the family by
maximum likelihood (or MAP with a Gaussian prior on the item effects, or the
maximum of the Laplace-approximate marginal likelihood with random item effects) on the
linear predictor

    d = r_j (s_left - s_right) + gamma[group] * order + x . beta,    s_i = z_i . w + u_i

where ``s_i`` is the strength of item ``i`` (item features ``z_i`` with
coefficients ``w``, plus a free item effect ``u_i``: fixed, random
``N(0, sigma^2)`` or absent), ``gamma`` is a first-position (home) advantage
(one per annotator with ``order_effect="annotator"``) switched per row by the
data's order indicator (1: left had it, -1: right had it, 0: neutral), ``x``
are comparison-level covariates and ``r_j`` optional judge reliabilities. The
outcome model ("family") says how ``d`` turns into win / tie / loss
probabilities:

* ``"bt"``: ``P(left) = expit(d)``; a tie counts half a win each way.
* ``"davidson"`` (Davidson 1970): ``P(left) = e^{d/2} / (e^{d/2} + e^{-d/2} + nu)``,
  ``P(tie) = nu / (...)``, ``nu >= 0``.
* ``"rao-kupper"`` (Rao & Kupper 1967) and ``"tobt"`` (the TODO paper's
  tie-rank oriented BT; the same model, parametrised by ``alpha = log eta``):
  ``P(left) = expit(d - alpha)``, ``P(right) = expit(-d - alpha)``, ``P(tie)`` the rest.

``flip_rate=eps`` (family ``"bt"``) corrects for labels flipped at random
with a known probability: ``P(observed left) = (1 - eps) expit(d) + eps expit(-d)``.

Rows are aggregated to (left, right, group, order) cells when there are no
covariates, so the fit costs the number of distinct cells, not rows. The fit
is a safeguarded Newton method (Levenberg-Marquardt damping when a step does
not raise the objective; a step that lowers it is never taken; L-BFGS if
Newton stalls). Identifiability is read from the design (its null space: one
score shift per connected component of the comparison graph), and existence
of the finite MLE from a linear programme on the cells
(:mod:`bradley.solvers.separation`). Standard errors come from the observed
information.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse import csgraph
from scipy.special import expit, log_expit, logsumexp, ndtr, ndtri

from bradley.data import Comparisons, check_mle_exists
from bradley.errors import ComparisonDataError, ConvergenceWarning, MLEDoesNotExistError
from bradley.models.base import (
    ItemIndex,
    ScoreUncertainty,
    as_comparisons,
    check_prior,
    gauged_inverse,
    require_fitted,
    summary_table,
)
from bradley.solvers.separation import design_null_space, find_separation, fitted_certificate
from bradley.solvers.threads import single_blas_thread

__all__ = [
    "check_order_effect_identifiable", "PairwiseModel", "Davidson", "RaoKupper", "TOBT", "FAMILIES", "ITEM_EFFECTS"]

FAMILIES = ("bt", "davidson", "rao-kupper", "tobt")
ITEM_EFFECTS = ("none", "fixed", "random")
_TIE_NAMES = {"davidson": "nu", "rao-kupper": "eta", "tobt": "alpha"}


@dataclass
class _Cells:
    """Aggregated design: one entry per (left, right, group, order) cell, or per row with covariates."""

    left: np.ndarray
    right: np.ndarray
    group: np.ndarray
    order: np.ndarray
    win: np.ndarray
    tie: np.ndarray
    loss: np.ndarray
    features: np.ndarray | None

    @property
    def total(self) -> np.ndarray:
        return self.win + self.tie + self.loss


def _cells(data: Comparisons, group: np.ndarray, order: np.ndarray, use_features: bool) -> _Cells:
    w = np.ones(data.n_comparisons) if data.weight is None else data.weight
    tie = data.outcome == 0.5
    win = np.where(tie, 0.0, w * data.outcome)
    loss = np.where(tie, 0.0, w * (1.0 - data.outcome))
    tie_w = np.where(tie, w, 0.0)
    if use_features:
        return _Cells(data.left, data.right, group, order, win, tie_w, loss, data.features)
    n, g = len(data.items), int(group.max()) + 1 if len(group) else 1
    key = ((data.left * np.int64(n) + data.right) * g + group) * 3 + (order.astype(np.int64) + 1)
    codes, uniq = pd.factorize(key)
    m = len(uniq)
    uniq = np.asarray(uniq, dtype=np.int64)
    rest, order_code = uniq // 3, uniq % 3
    return _Cells(
        (rest // g) // n, (rest // g) % n, rest % g, order_code.astype(np.float64) - 1.0,
        np.bincount(codes, win, m), np.bincount(codes, tie_w, m), np.bincount(codes, loss, m), None,
    )


def _coefficient_table(names: list[str], estimate: np.ndarray, se: np.ndarray, positive: list[bool],
                       fixed: list[bool], level: float = 0.95) -> pd.DataFrame:
    """estimate, se, z, p_value, ci_low, ci_high, fixed; z and p are NaN for positive-only parameters."""
    estimate = np.asarray(estimate, dtype=np.float64)
    se = np.asarray(se, dtype=np.float64)
    q = float(ndtri(0.5 + level / 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, estimate / se, np.nan)
    table = pd.DataFrame(
        {"estimate": estimate, "se": se, "z": z, "p_value": 2 * ndtr(-np.abs(z)),
         "ci_low": estimate - q * se, "ci_high": estimate + q * se, "fixed": np.asarray(fixed, dtype=bool)},
        index=pd.Index(names, name="parameter"),
    )
    table.loc[np.asarray(positive, dtype=bool), ["z", "p_value"]] = np.nan
    return table


def check_order_effect_identifiable(data: Comparisons, per_annotator: bool = False) -> None:
    """Refuse an order effect that the data cannot separate from the outcome.

    When every decisive row (ties aside) with a position advantage was won by
    the item that had it -- as in a file that lists the winner first -- the
    position *is* the outcome and the order effect's estimate is infinite (and
    the same if it always lost). Raises :class:`~bradley.errors.ComparisonDataError`
    explaining this; with ``per_annotator`` each annotator is checked.

    Examples
    --------
    >>> import bradley
    >>> games = bradley.Comparisons.from_arrays(["a", "b", "c"], ["b", "c", "a"], [1.0, 1.0, 0.5])
    >>> try:
    ...     check_order_effect_identifiable(games)
    ... except bradley.ComparisonDataError as error:
    ...     print(str(error)[:107])
    cannot fit an order effect: every decisive comparison (2 rows, ties aside) was won by the item listed first
    """
    side = np.ones(len(data)) if data.order is None else np.asarray(data.order, dtype=np.float64)
    outcome = np.asarray(data.outcome, dtype=np.float64)
    weight = np.ones(len(data)) if data.weight is None else np.asarray(data.weight, dtype=np.float64)
    decisive = (side != 0) & (outcome != 0.5) & (weight > 0)
    groups: list[tuple[str, np.ndarray]] = [("", decisive)]
    if per_annotator and data.annotator is not None:
        labels = np.asarray(data.annotator)
        groups = [(f" of annotator {label!r}", decisive & (labels == label)) for label in np.unique(labels)]
    # the outcome for the advantaged side: 1 = it won, 0 = it lost, in between = a soft label
    advantaged = np.where(side > 0, outcome, 1.0 - outcome)
    for where, rows in groups:
        values = advantaged[rows]
        if not len(values):
            continue
        how = None
        if np.all(values == 1.0):
            how = "won"
        elif np.all(values == 0.0):
            how = "lost"
        if how is None:
            continue
        who = ("the item listed first" if data.order is None
               else "the item that had the position (home) advantage")
        raise ComparisonDataError(
            f"cannot fit an order effect: every decisive comparison{where} ({len(values):,} rows, ties aside) "
            f"was {how} by {who}, "
            "so the position is the outcome and an order effect cannot be told apart from it (its estimate would be "
            "infinite). This is what a file that lists the winner first looks like ('winner loser' lines, "
            "winner/loser columns). An order effect needs rows where the first-listed (home) item lost: use data "
            "that record the order in which the items were shown (e.g. model_a/model_b/winner), or leave out "
            "order_effect=True (CLI: --order-effect), or fix it (fixed={'order_effect': ...})."
        )



class PairwiseModel(ScoreUncertainty):
    """A pairwise comparison model: BT or a tie model, with order effects, covariates, item features, label noise.

    Parameters
    ----------
    family : {"bt", "davidson", "rao-kupper", "tobt"}
    order_effect : bool or "annotator"
        Add a first-position (home) advantage ``gamma`` to the log-odds of
        the item that had it; the data's ``order`` indicator says who had it
        per row (1 left, -1 right, 0 neutral; absent = always left).
        ``"annotator"`` fits one per annotator (the data need an annotator column).
    covariates : bool
        Use the data's comparison-level ``features`` (coefficients ``beta``).
    flip_rate : float, optional
        Known label-flip probability in [0, 0.5) (family ``"bt"`` only).
    prior : float, optional
        Gaussian prior variance on the free item effects ``u`` (MAP).
    tol : float
        Converged when the full Newton step ``I^-1 g`` (observed information
        ``I``, gradient ``g`` of the log-likelihood or log-posterior) is at
        most ``tol`` in every free parameter, in the parameter's own units
        (log-strength, log nu, ...): independent of the data's scale.
        Reported as ``convergence_criterion_``.
    max_iter : int
        Iteration limit (Newton, then L-BFGS should Newton stall).
    judge_reliability : bool
        Give each annotator/judge a reliability ``r_j > 0`` that scales the
        score difference; the first judge (in order of appearance) is the
        reference with ``r = 1``.
    item_features : DataFrame, optional
        Numeric item features, one row per item (index = item names): the
        strength is ``s_i = z_i . w + u_i``; ``params_`` reports ``w`` by
        column name (a structured model, as R's ``BTm`` with item covariates).
    item_effects : {"none", "fixed", "random"}, optional
        The free item effect ``u_i``: absent, fixed (unpenalised, or with
        ``prior``), or random ``N(0, sigma^2)``: the other parameters and
        ``sigma`` then maximise the Laplace approximation of the marginal
        likelihood (as lme4's ``nAGQ=1``; ``sigma`` in ``params_``). Default: ``"fixed"`` without item features,
        ``"none"`` with them.
    fixed : dict, optional
        Parameters held at given values (natural scale, names as in
        ``params_``), e.g. ``{"nu": 0.5, "order_effect": 0.1}``; they appear
        in ``params_`` with ``fixed`` True and se NaN.

    Attributes
    ----------
    items_, scores_ (strengths, centred to mean zero within each connected
    component), scores_se_, covariance_ (covariance of ``scores_``),
    parameter_covariance_ (all free parameters, in the order of
    ``parameter_names_``), params_ (estimate, se, z, p_value, ci_low, ci_high,
    fixed; ``sigma`` with random item effects), components_ (connected component
    of each item), item_effects_, log_likelihood_ (with random effects: the
    Laplace-approximate marginal log-likelihood; ``conditional_log_likelihood_``
    beside it), converged_, convergence_criterion_ (largest Newton step at the
    fit), n_iter_, solver_.

    Examples
    --------
    >>> import bradley
    >>> data, _ = bradley.simulate_bt(6, 3000, seed=0)
    >>> m = PairwiseModel(order_effect=True).fit(data)
    >>> list(m.params_.index)
    ['order_effect']
    >>> m.standard_errors().shape
    (6,)
    """

    # fit state shared between the solver's pieces (annotations only: no class attributes)
    _design_cache: sparse.csr_matrix | None  # the linear predictor's Jacobian, when it does not depend on x
    _free: np.ndarray  # (n_parameters,) bool: not fixed
    _gauge: np.ndarray  # orthonormal basis of the score shifts, in free coordinates
    _laplace_cov: tuple[np.ndarray, np.ndarray]  # random effects: outer parameter indices, their covariance

    def __init__(
        self,
        family: str = "bt",
        order_effect: bool | str = False,
        covariates: bool = False,
        flip_rate: float | None = None,
        prior: float | None = None,
        tol: float = 1e-9,
        max_iter: int = 10_000,
        judge_reliability: bool = False,
        item_features: pd.DataFrame | None = None,
        item_effects: str | None = None,
        fixed: dict[str, float] | None = None,
    ):
        self.family = family
        self.order_effect = order_effect
        self.covariates = covariates
        self.flip_rate = flip_rate
        self.prior = prior
        self.tol = tol
        self.max_iter = max_iter
        self.judge_reliability = judge_reliability
        self.item_features = item_features
        self.item_effects = item_effects
        self.fixed = fixed

    # ------------------------------------------------------------------ set-up
    def _options(self) -> SimpleNamespace:
        """The engine's settings (front ends such as FeatureBT map their own parameters here)."""
        effects = self.item_effects
        if effects is None:
            effects = "none" if self.item_features is not None else "fixed"
        return SimpleNamespace(
            family=self.family, order_effect=self.order_effect, covariates=bool(self.covariates),
            flip_rate=self.flip_rate, prior=self.prior, tol=self.tol, max_iter=self.max_iter,
            judge_reliability=bool(self.judge_reliability), item_features=self.item_features,
            item_effects=effects, fixed=dict(self.fixed or {}), weight_precision=0.0,
        )

    def _check(self, o: SimpleNamespace) -> None:
        if o.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {o.family!r}.")
        if o.order_effect not in (False, True, "annotator"):
            raise ValueError("order_effect must be False, True or 'annotator'.")
        if o.flip_rate is not None:
            if o.family != "bt":
                raise ValueError("flip_rate is available for family='bt' only.")
            if not 0.0 <= o.flip_rate < 0.5:
                raise ValueError(f"flip_rate must lie in [0, 0.5), got {o.flip_rate}.")
        if o.item_effects not in ITEM_EFFECTS:
            raise ValueError(f"item_effects must be one of {ITEM_EFFECTS}, got {o.item_effects!r}.")
        if o.item_effects == "none" and o.item_features is None:
            raise ValueError("item_effects='none' needs item_features (otherwise items have no strength).")
        if o.item_effects == "random" and o.prior is not None:
            raise ValueError("item_effects='random' estimates the effects' variance; do not also pass prior "
                             "(fix it with fixed={'sigma': ...} instead).")
        if o.judge_reliability and o.item_features is not None:
            raise ValueError("judge_reliability is not available with item_features.")
        check_prior(o.prior)

    def _layout(self, o: SimpleNamespace, n: int, n_groups: int, p: int, k: int) -> dict[str, slice]:
        parts, start = {}, 0
        n_order = (n_groups if o.order_effect == "annotator" else 1) if o.order_effect else 0
        n_reliability = n_groups - 1 if o.judge_reliability else 0
        n_effects = n if o.item_effects != "none" else 0
        for name, size in (("effects", n_effects), ("weights", p), ("order", n_order), ("beta", k),
                           ("tie", 1 if o.family != "bt" else 0), ("reliability", n_reliability)):
            parts[name] = slice(start, start + size)
            start += size
        parts["items"] = slice(0, n_effects + p)
        parts["_size"] = slice(start, start)
        return parts

    def _parameter_names(self, o: SimpleNamespace, layout: dict[str, slice], items: np.ndarray,
                         groups: list[str]) -> list[str]:
        names = [f"effect[{x}]" for x in items] if o.item_effects != "none" else []
        names += list(self._item_feature_names)
        if o.order_effect:
            names += ["order_effect"] if o.order_effect is True else [f"order_effect[{g}]" for g in groups]
        names += list(self._feature_names)
        if o.family != "bt":
            names.append(_TIE_NAMES[o.family])
        if o.judge_reliability:
            names += [f"reliability[{g}]" for g in groups[1:]]
        return names

    # ------------------------------------------------------------------ likelihood
    def _strengths(self, x: np.ndarray) -> np.ndarray:
        theta = x[self._L["items"]]
        return theta if self._A is None else self._A @ theta

    def _scale(self, x: np.ndarray, cells: _Cells) -> np.ndarray | float:
        """Per-cell judge reliability r (1 without judge_reliability)."""
        if not self._o.judge_reliability:
            return 1.0
        return np.exp(np.concatenate([[0.0], x[self._L["reliability"]]]))[cells.group]

    def _order_index(self, cells: _Cells) -> np.ndarray:
        return cells.group if self._o.order_effect == "annotator" else np.zeros_like(cells.group)

    def _predictor(self, x: np.ndarray, cells: _Cells) -> np.ndarray:
        s = self._strengths(x)
        d = self._scale(x, cells) * (s[cells.left] - s[cells.right])
        if self._o.order_effect:
            d = d + x[self._L["order"]][self._order_index(cells)] * cells.order
        if self._o.covariates:
            d = d + cells.features @ x[self._L["beta"]]
        return d

    def _row_terms(self, d: np.ndarray, t: float, cells: _Cells) -> tuple[float, np.ndarray, np.ndarray]:
        """Log-likelihood, and its derivatives per cell in d and in the tie parameter t."""
        win, tie, loss = cells.win, cells.tie, cells.loss
        family = self._o.family
        if family == "bt":
            if self._o.flip_rate:
                eps = self._o.flip_rate
                log_p, log_q = log_expit(d), log_expit(-d)
                # log m = log((1 - eps) p + eps q), log(1 - m) = log(eps p + (1 - eps) q), in the log domain
                log_m = np.logaddexp(np.log1p(-eps) + log_p, np.log(eps) + log_q)
                log_1m = np.logaddexp(np.log(eps) + log_p, np.log1p(-eps) + log_q)
                value = win @ log_m + loss @ log_1m + 0.5 * tie @ (log_m + log_1m)
                slope = (1 - 2 * eps) * np.exp(log_p + log_q)
                dd = (win + 0.5 * tie) * slope * np.exp(-log_m) - (loss + 0.5 * tie) * slope * np.exp(-log_1m)
                return float(value), dd, np.zeros_like(d)
            a, b = win + 0.5 * tie, loss + 0.5 * tie
            # log expit(+-d) = -log1p(exp(-|d|)) - max(-+d, 0): numpy's SIMD exp/log1p, exact for any d
            soft = np.log1p(np.exp(-np.abs(d)))
            log_p = -soft - np.maximum(-d, 0.0)
            log_q = -soft - np.maximum(d, 0.0)
            value = a @ log_p + b @ log_q
            dd = a * np.exp(log_q) - b * np.exp(log_p)
            return float(value), dd, np.zeros_like(d)
        if family == "davidson":
            half = 0.5 * d
            log_norm = logsumexp(np.stack([half, -half, np.full_like(half, t)]), axis=0)
            lw, ll, lt = half - log_norm, -half - log_norm, t - log_norm
            pw, pl, pt = np.exp(lw), np.exp(ll), np.exp(lt)
            value = win @ lw + loss @ ll + tie @ lt
            dd = 0.5 * (win - loss) - cells.total * 0.5 * (pw - pl)
            return float(value), dd, tie - cells.total * pt
        # Rao-Kupper / TOBT with alpha = exp(t) > 0
        alpha = np.exp(t)
        lw, ll = log_expit(d - alpha), log_expit(-d - alpha)
        # log(e^{2 alpha} - 1) = 2 alpha + log(-expm1(-2 alpha)): no overflow for large alpha
        log_gap = 2 * alpha + np.log(-np.expm1(-2 * alpha))
        value = win @ lw + loss @ ll + tie @ (log_gap + lw + ll)
        s1, s2 = np.exp(lw), np.exp(ll)
        dd = win * (1 - s1) - loss * (1 - s2) + tie * (s2 - s1)
        d_alpha = -win * (1 - s1) - loss * (1 - s2) + tie * (2.0 / -np.expm1(-2 * alpha) - (1 - s1) - (1 - s2))
        return float(value), dd, d_alpha * alpha

    def _tie_value(self, x: np.ndarray) -> float:
        return float(x[self._L["tie"]][0]) if self._o.family != "bt" else 0.0

    def _objective(self, x: np.ndarray, cells: _Cells, prior_variance: float | None) -> tuple[float, np.ndarray]:
        """Log-likelihood (plus log prior of the item effects, up to a constant) and its gradient."""
        L, o = self._L, self._o
        n = self._n_items
        value, dd, dt_rows = self._row_terms(self._predictor(x, cells), self._tie_value(x), cells)
        grad = np.zeros_like(x)
        scale = self._scale(x, cells)
        scaled = dd * scale
        per_item = np.bincount(cells.left, scaled, n) - np.bincount(cells.right, scaled, n)
        grad[L["items"]] = per_item if self._A is None else self._A.T @ per_item
        if o.order_effect:
            sl = L["order"]
            grad[sl] = np.bincount(self._order_index(cells), dd * cells.order, sl.stop - sl.start)
        if o.judge_reliability:
            s = self._strengths(x)
            grad[L["reliability"]] = np.bincount(cells.group, scaled * (s[cells.left] - s[cells.right]),
                                                 self._n_groups)[1:]
        if o.covariates:
            assert cells.features is not None  # covariates: cells are rows, with their features
            grad[L["beta"]] = cells.features.T @ dd
        if o.family != "bt":
            grad[L["tie"]] = float(dt_rows.sum())
        if prior_variance is not None:
            u = x[L["effects"]]
            value -= 0.5 * float(u @ u) / prior_variance
            grad[L["effects"]] -= u / prior_variance
        if o.weight_precision:
            w = x[L["weights"]]
            value -= 0.5 * o.weight_precision * float(w @ w)
            grad[L["weights"]] -= o.weight_precision * w
        return value, grad

    def _design(self, cells: _Cells, x: np.ndarray | None = None) -> sparse.csr_matrix:
        """Sparse Jacobian of the predictor d with respect to all parameters (reliabilities at ``x``, or 1)."""
        L, o = self._L, self._o
        m = len(cells.left)
        scale = np.ones(m) if x is None else np.broadcast_to(self._scale(x, cells), (m,))
        rows = np.arange(m)
        diff = sparse.csr_matrix((np.concatenate([scale, -scale]),
                                  (np.concatenate([rows, rows]), np.concatenate([cells.left, cells.right]))),
                                 shape=(m, self._n_items))
        blocks = [diff if self._A is None else (diff @ self._A).tocsr()]
        size = L["_size"].start
        extra_rows, extra_cols, extra_vals = [], [], []
        if o.order_effect:
            extra_rows.append(rows)
            extra_cols.append(L["order"].start + self._order_index(cells))
            extra_vals.append(cells.order.astype(np.float64))
        if o.covariates:
            assert cells.features is not None  # covariates: cells are rows, with their features
            k = cells.features.shape[1]
            extra_rows.append(np.repeat(rows, k))
            extra_cols.append(np.tile(np.arange(L["beta"].start, L["beta"].stop), m))
            extra_vals.append(cells.features.ravel())
        if o.judge_reliability and x is not None:
            s = self._strengths(x)
            judged = np.flatnonzero(cells.group > 0)
            extra_rows.append(judged)
            extra_cols.append(L["reliability"].start + cells.group[judged] - 1)
            extra_vals.append((scale * (s[cells.left] - s[cells.right]))[judged])
        item_block = sparse.hstack([blocks[0], sparse.csr_matrix((m, size - L["items"].stop))]).tocsr()
        if extra_rows:
            rest = sparse.csr_matrix(
                (np.concatenate(extra_vals), (np.concatenate(extra_rows), np.concatenate(extra_cols))),
                shape=(m, size),
            )
            return (item_block + rest).tocsr()
        return item_block

    def _information(self, x: np.ndarray, cells: _Cells, prior_variance: float | None) -> np.ndarray:
        """Observed information ``-d2 log posterior``, assembled through the linear predictor.

        The log-likelihood is a sum of per-cell functions f(d_k, t), so the
        Hessian is ``J' diag(f_dd) J`` plus the tie-parameter row and column
        (and, with judge reliabilities, the curvature of d itself). Per-cell
        second derivatives come from central differences of the exact first
        derivatives: O(cells) work, whatever the number of parameters.
        """
        L, o = self._L, self._o
        d, t = self._predictor(x, cells), self._tie_value(x)
        h = 1e-5
        _, dd_plus, _ = self._row_terms(d + h, t, cells)
        _, dd_minus, _ = self._row_terms(d - h, t, cells)
        f_dd = (dd_plus - dd_minus) / (2 * h)
        if o.judge_reliability:
            design = self._design(cells, x)
        else:
            if self._design_cache is None:
                self._design_cache = self._design(cells)
            design = self._design_cache
        hessian = (design.T @ design.multiply(f_dd[:, None]).tocsr()).toarray()
        size = L["_size"].start
        if o.judge_reliability:
            # d is not linear in (s, rho): add sum_k dd_k * d2 d_k / dx dx'
            _, dd, _ = self._row_terms(d, t, cells)
            s = self._strengths(x)
            r = self._scale(x, cells)
            judged = cells.group > 0
            rel = L["reliability"].start + cells.group[judged] - 1
            w = (dd * r)[judged]
            flat = np.bincount(cells.left[judged] * size + rel, w, size * size)
            flat -= np.bincount(cells.right[judged] * size + rel, w, size * size)
            flat += np.bincount(rel * size + rel, w * (s[cells.left] - s[cells.right])[judged], size * size)
            block = flat.reshape(size, size)
            off = block - np.diag(np.diag(block))
            hessian += off + off.T + np.diag(np.diag(block))
        if o.family != "bt":
            j = L["tie"].start
            _, dd_tp, dt_plus = self._row_terms(d, t + h, cells)
            _, dd_tm, dt_minus = self._row_terms(d, t - h, cells)
            f_dt = (dd_tp - dd_tm) / (2 * h)
            cross = design.T @ f_dt
            hessian[:, j] += cross
            hessian[j, :] += cross
            hessian[j, j] = float((dt_plus - dt_minus).sum() / (2 * h))
        if prior_variance is not None:
            idx = np.arange(L["effects"].start, L["effects"].stop)
            hessian[idx, idx] -= 1.0 / prior_variance
        if o.weight_precision:
            idx = np.arange(L["weights"].start, L["weights"].stop)
            hessian[idx, idx] -= o.weight_precision
        info = -hessian
        return 0.5 * (info + info.T)

    # ------------------------------------------------------------------ optimisation
    def _maximise(self, x: np.ndarray, cells: _Cells, prior_variance: float | None,
                  total: float) -> tuple[np.ndarray, float, np.ndarray, int, str]:
        """Safeguarded Newton on the free parameters; L-BFGS should Newton stall.

        A step is taken only if it raises the objective (Armijo), or, where the
        change is below rounding, leaves it unchanged and lowers the gradient.
        When the Newton step fails, the information is damped (Levenberg-Marquardt,
        ``I + mu diag(I)``) until a step succeeds; nothing else is ever accepted.
        """
        o, free, gauge = self._o, self._free, self._gauge
        x = x.copy()
        value, grad = self._objective(x, cells, prior_variance)
        outer = gauge @ gauge.T if gauge.shape[1] else 0.0
        mu, iterations, solver = 0.0, 0, "newton"
        limit = min(200, o.max_iter)
        done = False
        while iterations < limit:
            gf = grad[free]
            info = self._information(x, cells, prior_variance)[np.ix_(free, free)] + outer
            newton_step = self._newton_step(info, gf)
            self._criterion = float(np.max(np.abs(newton_step), initial=0.0)) if newton_step is not None else np.inf
            if self._criterion <= o.tol:
                # take the last (tiny) Newton step too: quadratic convergence leaves an error ~ tol^2
                polished = x.copy()
                polished[free] += newton_step
                p_value, p_grad = self._objective(polished, cells, prior_variance)
                if np.isfinite(p_value) and p_value >= value - 8 * np.finfo(float).eps * max(abs(value), 1.0):
                    x, value, grad = polished, p_value, p_grad
                done = True
                break
            iterations += 1
            diag = np.clip(np.diag(info), 1e-12 * max(total, 1.0), None)
            accepted = False
            for _ in range(40):
                if mu == 0.0 and newton_step is not None:
                    step = newton_step
                else:
                    damped = info + mu * np.diag(diag)
                    with single_blas_thread(len(gf)):
                        try:
                            chol = np.linalg.cholesky(damped)
                        except np.linalg.LinAlgError:
                            mu = max(10.0 * mu, 1e-6)
                            continue
                        step = np.linalg.solve(chol.T, np.linalg.solve(chol, gf))
                slope = float(gf @ step)
                t = 1.0
                for _ in range(6 if mu == 0.0 else 1):
                    candidate = x.copy()
                    candidate[free] += t * step
                    cand_value, cand_grad = self._objective(candidate, cells, prior_variance)
                    if np.isfinite(cand_value):
                        if cand_value >= value + 1e-4 * t * slope and cand_value >= value:
                            accepted = True
                        elif (cand_value >= value - 8 * np.finfo(float).eps * abs(value)
                              and np.max(np.abs(cand_grad[free])) < np.max(np.abs(gf))):
                            accepted = True  # change below rounding: judge by the gradient
                    if accepted:
                        break
                    t *= 0.5
                if accepted:
                    break
                mu = max(10.0 * mu, 1e-6)
                if mu > 1e12:
                    break
            if not accepted:
                break
            x, value, grad = candidate, cand_value, cand_grad
            mu = 0.0 if mu < 1e-5 else mu / 10.0
        if not done and iterations < o.max_iter:
            solver = "newton+lbfgs"
            base = x.copy()

            def negative(z: np.ndarray) -> tuple[float, np.ndarray]:
                trial = base.copy()
                trial[free] = z
                v, g = self._objective(trial, cells, prior_variance)
                return -v / total, -g[free] / total

            from scipy import optimize  # lazily: import time matters

            res = optimize.minimize(negative, x[free], jac=True, method="L-BFGS-B",
                                    options={"maxiter": max(o.max_iter - iterations, 1), "gtol": 1e-14,
                                             "ftol": 0.0, "maxcor": 30})
            iterations += int(res.nit)
            if -res.fun * total >= value:
                x = base.copy()
                x[free] = res.x
                value, grad = self._objective(x, cells, prior_variance)
        if not done:
            info = self._information(x, cells, prior_variance)[np.ix_(free, free)] + outer
            newton_step = self._newton_step(info, grad[free])
            self._criterion = float(np.max(np.abs(newton_step), initial=0.0)) if newton_step is not None else np.inf
        return x, value, grad, iterations, solver

    @staticmethod
    def _newton_step(info: np.ndarray, gradient: np.ndarray) -> np.ndarray | None:
        """The full Newton step ``info^-1 gradient`` (None where the information is not positive definite).

        Its largest entry is the convergence criterion: the distance to the
        maximum in each parameter's own units (log-strength, log nu, ...),
        whatever the scale of the data's weights.
        """
        if not len(gradient):
            return np.zeros(0)
        with single_blas_thread(len(gradient)):
            try:
                chol = np.linalg.cholesky(info)
            except np.linalg.LinAlgError:
                return None
            step = np.linalg.solve(chol.T, np.linalg.solve(chol, gradient))
        return step if np.all(np.isfinite(step)) else None

    # ------------------------------------------------------------------ fit
    def fit(self, data: Any) -> PairwiseModel:
        """Fit item strengths and the model's other parameters; returns self."""
        o = self._options()
        self._check(o)
        self._o = o
        comparisons = as_comparisons(data)
        if o.order_effect and not any(k == "order_effect" or k.startswith("order_effect[") for k in o.fixed):
            check_order_effect_identifiable(comparisons, per_annotator=o.order_effect == "annotator")
        items = np.asarray(comparisons.items, dtype=object)
        n = len(items)
        if o.order_effect == "annotator" or o.judge_reliability:
            if comparisons.annotator is None:
                raise ValueError("order_effect='annotator' and judge_reliability need an annotator column in the data.")
            group, group_names = pd.factorize(np.asarray(comparisons.annotator))
            group_names = [str(g) for g in group_names]
        else:
            group, group_names = np.zeros(comparisons.n_comparisons, dtype=np.int64), ["all"]
        if o.covariates and comparisons.features is None:
            raise ValueError("covariates=True needs comparison features (read_comparisons(..., features=[...])).")
        self._feature_names = tuple(str(c) for c in comparisons.feature_names) if o.covariates else ()
        self._A, self._item_feature_names, item_x = self._item_design(o, items)
        k = 0
        if o.covariates:
            assert comparisons.features is not None  # checked just above
            k = comparisons.features.shape[1]
        self._n_items, self._n_groups = n, len(group_names)
        layout = self._layout(o, n, self._n_groups, len(self._item_feature_names), k)
        self._L = layout
        names = self._parameter_names(o, layout, items, group_names)
        clash = pd.Index(names[layout["effects"].stop:])
        if clash.has_duplicates:
            raise ValueError(f"parameter names clash: {sorted(set(clash[clash.duplicated()]))}; rename the features.")
        self.items_ = items
        self._index = ItemIndex(items)
        pairs = comparisons.pair_counts()
        order = np.ones(comparisons.n_comparisons) if comparisons.order is None else comparisons.order
        cells = _cells(comparisons, np.asarray(group, dtype=np.int64), order, o.covariates)
        self._design_cache = None
        size = layout["_size"].start
        total = max(float(cells.total.sum()), 1.0)

        # fixed parameters, on the internal scale
        fixed_values = self._internal_fixed(o, names, layout)
        self._free = np.ones(size, dtype=bool)
        for idx in fixed_values:
            self._free[idx] = False
        sigma_fixed = o.fixed.get("sigma")
        tie_free = o.family != "bt" and bool(self._free[layout["tie"]].all())
        has_ties = bool((comparisons.outcome == 0.5).any())
        if tie_free and not has_ties:
            raise ValueError(f"the data have no ties, so the {o.family} tie parameter is not identified; "
                             "use family='bt' or fix it (fixed={...}).")
        penalised = self._penalised(o)
        components, n_components = self._identify(cells, names, penalised)
        self._deferred = False
        self._check_existence(o, comparisons, pairs, cells, names, penalised, tie_free, n_components)

        # start: plain BT strengths for the free effects, a tie parameter matching the tie share
        x0 = np.zeros(size)
        if o.item_effects != "none":
            from bradley.models.bradley_terry import BradleyTerry

            prior_start = o.prior if o.prior is not None else 10.0
            x0[layout["effects"]] = BradleyTerry(prior=prior_start).fit(pairs).scores_
        if o.family != "bt":
            tie_share = min(max(float(pairs.ties.sum() / max(pairs.totals.sum(), 1e-300)), 1e-6), 1 - 1e-6)
            if o.family == "davidson":
                x0[layout["tie"]] = np.log(2 * tie_share / (1 - tie_share))
            else:  # P(tie | d = 0) = tanh(alpha / 2)
                x0[layout["tie"]] = np.log(2 * np.arctanh(tie_share))
        for idx, value in fixed_values.items():
            x0[idx] = value

        self._criterion_tol = o.tol
        prior_variance: float | None
        if o.item_effects == "random":
            x, value, grad, iterations, solver, prior_variance = self._fit_random(x0, cells, total, sigma_fixed)
        else:
            prior_variance = o.prior if o.item_effects == "fixed" else None
            x, value, grad, iterations, solver = self._maximise(x0, cells, prior_variance, total)
        if self._deferred:
            self._check_existence(o, comparisons, pairs, cells, names, penalised, tie_free, n_components, x=x)
        info = self._information(x, cells, prior_variance)
        cov = self._invert(info)
        scores, score_cov = self._score_moments(x, cov, components, n_components)

        self.pair_counts_ = pairs
        self.n_comparisons_ = comparisons.n_comparisons
        self.parameter_names_ = names
        self.parameter_covariance_ = cov
        self.scores_ = scores
        self.covariance_ = score_cov
        self.scores_se_ = np.sqrt(np.clip(np.diag(score_cov), 0, None))
        self.components_ = pd.Series(components, index=pd.Index(items, name="item"), name="component")
        self.n_components_ = n_components
        if prior_variance is not None or o.weight_precision:
            loglik = self._objective(x, cells, None)[0]
        else:
            loglik = value
        self.log_likelihood_ = loglik
        self.n_iter_ = int(iterations)
        self.solver_ = solver
        self.convergence_criterion_ = float(self._criterion)
        self.converged_ = bool(self.convergence_criterion_ <= self._criterion_tol)
        self._x, self._layout_, self._group_names = x, layout, group_names
        self._item_x = item_x
        table_cov = cov
        if o.item_effects == "random":
            # fixed parameters' SEs from the curvature of the Laplace objective (sigma's uncertainty included)
            table_cov = cov.copy()
            outer_idx, outer_cov = self._laplace_cov
            table_cov[np.ix_(outer_idx, outer_idx)] = outer_cov
        self.params_ = self._parameter_table(x, table_cov, names, fixed_values)
        if o.item_effects == "random":
            self._add_sigma_row(sigma_fixed)
            # the Laplace-approximate marginal likelihood; the conditional one (effects at their mode) kept beside it
            self.conditional_log_likelihood_ = loglik
            assert prior_variance is not None  # random effects: sigma ** 2 from _fit_random
            self.log_likelihood_ = self._laplace(x, cells, prior_variance)
        if o.item_effects != "none":
            effects = x[layout["effects"]]
            self.item_effects_ = pd.Series(effects, index=pd.Index(items, name="item"), name="effect")
        if not self.converged_:
            warnings.warn(
                f"{type(self).__name__} did not converge in {iterations} iterations (largest Newton step "
                f"{self.convergence_criterion_:.2e} > tol {self._criterion_tol:g}; inf: the information is not "
                "positive definite there).", ConvergenceWarning, stacklevel=2,
            )
        return self

    # ------------------------------------------------------------------ pieces of fit
    def _item_design(self, o: SimpleNamespace,
                     items: np.ndarray) -> tuple[sparse.csr_matrix | None, tuple[str, ...], np.ndarray | None]:
        """The map from item parameters (effects u, weights w) to strengths: ``s = [I | Z] (u, w)``."""
        if o.item_features is None:
            return None, (), None
        features = pd.DataFrame(o.item_features)
        index = pd.Index(features.index)
        pos = index.get_indexer(pd.Index(items))
        if (pos < 0).any():
            missing = [str(x) for x in items[pos < 0]]
            raise ComparisonDataError(f"no features for item(s) {missing[:8]} ({len(missing)} in all).")
        z = features.iloc[pos].apply(pd.to_numeric, errors="raise").to_numpy(np.float64)
        if not np.isfinite(z).all():
            raise ComparisonDataError("item features must be finite numbers.")
        n = len(items)
        blocks = [sparse.identity(n, format="csr")] if o.item_effects != "none" else []
        blocks.append(sparse.csr_matrix(z))
        return sparse.hstack(blocks).tocsr(), tuple(str(c) for c in features.columns), z

    def _internal_fixed(self, o: SimpleNamespace, names: list[str], layout: dict[str, slice]) -> dict[int, float]:
        position = {name: i for i, name in enumerate(names)}
        out: dict[int, float] = {}
        for name, value in o.fixed.items():
            if name == "sigma":
                if o.item_effects != "random":
                    raise ValueError("fixed 'sigma' needs item_effects='random'.")
                if not (np.isfinite(value) and value > 0):
                    raise ValueError(f"fixed sigma must be positive, got {value!r}.")
                continue
            if name not in position or name.startswith("effect["):
                raise ValueError(self._unknown_fixed(o, name, names))
            value = float(value)
            idx = position[name]
            if name == "nu":
                if not value > 0:
                    raise ValueError("fixed nu must be positive.")
                value = np.log(value)
            elif name == "eta":
                if not value > 1:
                    raise ValueError("fixed eta must exceed 1.")
                value = np.log(np.log(value))
            elif name == "alpha" or name.startswith("reliability["):
                if not value > 0:
                    raise ValueError(f"fixed {name} must be positive.")
                value = np.log(value)
            out[idx] = value
        return out

    @staticmethod
    def _unknown_fixed(o: SimpleNamespace, name: str, names: list[str]) -> str:
        """Why ``fixed={name: ...}`` names no parameter of this model, and what would make it one."""
        fixable = [x for x in names if not x.startswith("effect[")]
        family_of = {v: k for k, v in _TIE_NAMES.items()}
        if name in family_of:
            classes = {"davidson": "Davidson", "rao-kupper": "RaoKupper", "tobt": "TOBT"}
            hint = (f"{name!r} is the tie parameter of family={family_of[name]!r} ({classes[family_of[name]]}) "
                    f"(this model has family={o.family!r}"
                    + (f", whose tie parameter is {_TIE_NAMES[o.family]!r})" if o.family in _TIE_NAMES else ")"))
        elif name == "order_effect" and o.order_effect == "annotator":
            hint = "with order_effect='annotator' there is one per annotator: fix 'order_effect[<annotator>]'"
        elif name == "order_effect" or name.startswith("order_effect["):
            hint = ("the model has no order effect: pass order_effect=True" if name == "order_effect"
                    else "per-annotator order effects need order_effect='annotator'")
            if o.order_effect is True and name.startswith("order_effect["):
                hint = "order_effect=True fits one order effect: fix 'order_effect'"
        elif name.startswith("reliability["):
            hint = "judge reliabilities need judge_reliability=True (the first judge is the reference, r = 1)"
        elif name.startswith("effect["):
            hint = "item effects cannot be fixed (use a prior, or item_effects='random')"
        else:
            hint = "no parameter of that name"
        have = f"this model's parameters are {fixable}" if fixable else "this model has no parameters to fix"
        return f"cannot fix {name!r}: {hint}; {have}."

    def _penalised(self, o: SimpleNamespace) -> np.ndarray:
        """Parameters a penalty keeps finite (prior or random effects, ridge on weights)."""
        pen = np.zeros(self._L["_size"].start, dtype=bool)
        if o.item_effects == "random" or (o.item_effects == "fixed" and o.prior is not None):
            pen[self._L["effects"]] = True
        if o.weight_precision:
            pen[self._L["weights"]] = True
        return pen

    def _identify(self, cells: _Cells, names: list[str], penalised: np.ndarray) -> tuple[np.ndarray, int]:
        """Gauge (score shifts per connected component) and a check that nothing else is unidentified.

        Sets ``self._gauge`` (orthonormal basis in free coordinates) and
        returns the component label of every item and the number of components
        whose shift is a gauge.
        """
        L, o = self._L, self._o
        n = self._n_items
        observed = cells.total > 0
        graph = sparse.csr_matrix((np.ones(int(observed.sum())), (cells.left[observed], cells.right[observed])),
                                  shape=(n, n))
        n_comp, labels = csgraph.connected_components(graph, directed=False)
        free = self._free
        shift_gauge = o.item_effects == "fixed" and o.prior is None and o.item_features is None
        structural = free & ~np.isin(np.arange(len(free)), np.arange(L["reliability"].start, L["reliability"].stop))
        structural[L["tie"]] = False
        design = self._design(cells)[observed][:, structural]
        penalty_rows = np.flatnonzero(penalised[structural])
        stacked = sparse.vstack([design, sparse.csr_matrix((np.ones(len(penalty_rows)),
                                                            (np.arange(len(penalty_rows)), penalty_rows)),
                                                           shape=(len(penalty_rows), design.shape[1]))]).tocsr()
        null = design_null_space(stacked)
        gauge_struct = np.zeros((design.shape[1], 0))
        if shift_gauge:
            position = np.cumsum(structural) - 1
            cols = []
            for c in range(n_comp):
                v = np.zeros(design.shape[1])
                v[position[L["effects"].start + np.flatnonzero(labels == c)]] = 1.0
                cols.append(v / np.linalg.norm(v))
            gauge_struct = np.column_stack(cols) if cols else gauge_struct
        if null.shape[1]:
            residual = null - gauge_struct @ (gauge_struct.T @ null)
            bad = np.linalg.norm(residual, axis=0) > 1e-6
            if bad.any():
                loading = np.abs(residual[:, bad]).max(axis=1)
                # one loading per structural parameter (the columns of the design)
                culprits = [names[i] for i, keep in zip(np.flatnonzero(structural), loading > 1e-3 * loading.max(),
                                                        strict=True) if keep]
                hint = ""
                if any(c.startswith("effect[") for c in culprits) and self._item_feature_names:
                    hint = (" Item features beside fixed item effects are not identified: use item_effects='random' "
                            "or a prior on the effects.")
                raise ComparisonDataError(
                    f"the model is not identified: the data cannot separate {_shorten(culprits)} "
                    f"(the design of the linear predictor is rank deficient; e.g. a feature constant across "
                    f"items, an order effect where no row has an order, or collinear covariates).{hint}"
                )
        # gauge basis in free coordinates
        gauge = np.zeros((int(free.sum()), gauge_struct.shape[1]))
        free_pos = np.cumsum(free) - 1
        struct_idx = np.flatnonzero(structural)
        gauge[free_pos[struct_idx]] = gauge_struct
        self._gauge = gauge
        if not shift_gauge:
            return np.zeros(n, dtype=np.int64), 1
        return labels.astype(np.int64), int(n_comp)

    def _check_existence(self, o: SimpleNamespace, comparisons: Comparisons, pairs: Any, cells: _Cells,
                         names: list[str], penalised: np.ndarray, tie_free: bool, n_components: int,
                         x: np.ndarray | None = None) -> None:
        """Raise MLEDoesNotExistError when some parameter's estimate is infinite (separation).

        Called before the fit (``x`` None), and, for large Bradley-Terry
        designs that no cheap certificate settles, again at the fitted ``x``.
        """
        L = self._L
        scores_only = (o.item_effects == "fixed" and o.item_features is None and not o.order_effect
                       and not o.covariates and not tie_free and not o.judge_reliability)
        if scores_only:
            # nothing but the scores can diverge, and nothing links components: the win-graph check is exact
            if o.prior is None:
                check_mle_exists(pairs)
            return
        candidates = self._free & ~penalised
        candidates[L["reliability"]] = False
        candidates[L["tie"]] = False
        observed = cells.total > 0
        if (not candidates.any() and not tie_free) or x is not None:
            return self._deferred_check(x, cells, names, candidates) if x is not None and candidates.any() else None
        tie_scale = None
        if tie_free:
            tie_scale = 2.0 if o.family == "davidson" else 1.0
        # decide at the fit (a positive-weights certificate; the programme only if it fails) unless a cheap
        # certificate settles it now; with a tie parameter this needs a cell with wins each way (tau = 0 forced)
        forced = tie_scale is None or bool(((cells.win > 0) & (cells.loss > 0)).any())
        # large designs are decided after the fit (its certificate needs no rank computations here)
        defer = forced and int(observed.sum()) > 200
        result = None if defer else find_separation(self._design(cells)[observed][:, candidates], cells.win[observed],
                                                    cells.loss[observed], cells.tie[observed], tie_scale)
        if result is None:
            self._deferred = True
        elif result.separated:
            raise self._separation_error(result, cells, observed, names, candidates, tie_free)
        if n_components > 1:
            warnings.warn(
                f"the comparison graph has {n_components} connected components that share only the model's other "
                "parameters: scores are centred within each component and comparable only within it "
                "(components_ gives each item's component).", UserWarning, stacklevel=3,
            )

    def _deferred_check(self, x: np.ndarray, cells: _Cells, names: list[str], candidates: np.ndarray) -> None:
        from dataclasses import replace

        observed = cells.total > 0
        d = self._predictor(x, cells)
        win, loss, tie = cells.win, cells.loss, cells.tie
        family = self._o.family
        # the score equations split into positive weights on "left won" (wins, ties) and "right won" (losses, ties)
        if family == "davidson":
            t = self._tie_value(x)
            log_norm = logsumexp(np.stack([0.5 * d, -0.5 * d, np.full_like(d, t)]), axis=0)
            pw, pl, pt = np.exp(0.5 * d - log_norm), np.exp(-0.5 * d - log_norm), np.exp(t - log_norm)
            lam_win, lam_loss = win * (pl + 0.5 * pt) + 0.5 * tie * pl, loss * (pw + 0.5 * pt) + 0.5 * tie * pw
        elif family != "bt":
            alpha = np.exp(self._tie_value(x))
            s1, s2 = np.exp(log_expit(d - alpha)), np.exp(log_expit(-d - alpha))
            lam_win, lam_loss = win * (1 - s1) + tie * s2, loss * (1 - s2) + tie * s1
        else:
            half, zero = 0.5 * tie, np.zeros_like(win)
            _, lam_win, _ = self._row_terms(d, 0.0, replace(cells, win=win + half, tie=zero, loss=zero))
            _, neg, _ = self._row_terms(d, 0.0, replace(cells, win=zero, tie=zero, loss=loss + half))
            lam_loss = -neg
        design = self._design(cells, x if self._o.judge_reliability else None)[observed][:, candidates]
        if fitted_certificate(design, lam_win[observed], lam_loss[observed]):
            return
        # with wins each way somewhere the tie direction is 0 and ties pin the predictor as in BT
        result = find_separation(design, win[observed], loss[observed], tie[observed], None)
        assert result is not None  # solve=True (the default) always decides
        if result.separated:
            raise self._separation_error(result, cells, observed, names, candidates, False)

    def _separation_error(self, result: Any, cells: _Cells, observed: np.ndarray, names: list[str],
                          candidates: np.ndarray, tie_free: bool) -> MLEDoesNotExistError:
        o = self._o
        item_names = np.asarray(self.items_, dtype=object)
        v = np.zeros(len(candidates))
        v[candidates] = result.direction
        scale = max(np.max(np.abs(v)), abs(result.tie_direction), 1e-300)
        parts, never_lost, never_won = [], [], []
        other = [names[i] for i in np.flatnonzero(candidates) if not names[i].startswith("effect[")
                 and abs(v[i]) > 1e-7 * scale]
        if tie_free and result.tie_direction > 1e-7 * scale:
            other.append(_TIE_NAMES[o.family])
        strength_dir = self._strengths(v)
        hit = result.separated_cells
        left, right = cells.left[observed][hit], cells.right[observed][hit]
        involved = np.unique(np.concatenate([left, right])) if hit.any() else np.zeros(0, dtype=np.int64)
        if involved.size and np.ptp(strength_dir[involved]) > 1e-7 * scale:
            # items split into blocks tied by the cells that stay finite; the top block never lost, the bottom never won
            keep = observed.copy()
            keep[np.flatnonzero(observed)[hit]] = False
            graph = sparse.csr_matrix((np.ones(int(keep.sum())), (cells.left[keep], cells.right[keep])),
                                      shape=(self._n_items, self._n_items))
            _, block = csgraph.connected_components(graph, directed=False)
            level = pd.Series(strength_dir[involved]).groupby(block[involved]).mean()
            top, bottom = level.idxmax(), level.idxmin()
            never_lost = [str(x) for x in item_names[block == top]]
            never_won = [str(x) for x in item_names[block == bottom]]
            parts.append(f"{_shorten(never_lost, 'item')} never lost (strength +infinity relative to the others)")
            parts.append(f"{_shorten(never_won, 'item')} never won (strength -infinity)")
        if other:
            parts.append(f"the estimate of {_shorten(other)} is infinite")
        examples = []
        for li, ri, w_, l_, t_ in zip(left[:3], right[:3], cells.win[observed][hit][:3], cells.loss[observed][hit][:3],
                                      cells.tie[observed][hit][:3], strict=True):
            tied = f" ({t_:g} ties)" if t_ else ""
            examples.append(f"{item_names[li]!r} vs {item_names[ri]!r}: {w_:g}-{l_:g}{tied}")
        message = (
            "the maximum-likelihood estimate does not exist (separation: some outcomes are predicted perfectly): "
            + "; ".join(parts or ["parameters run to infinity"])
            + f" ({int(hit.sum())} cells separated, e.g. {', '.join(examples)})."
            + " Use a Gaussian prior on the item effects (prior=10), fix the parameter (fixed={...}), or remove the"
            " items."
        )
        return MLEDoesNotExistError(message, [], never_lost, never_won)

    def _invert(self, info: np.ndarray) -> np.ndarray:
        """Covariance of all parameters: inverse information over the free ones (gauge removed), zeros elsewhere."""
        free, gauge = self._free, self._gauge
        sub = info[np.ix_(free, free)]
        with single_blas_thread(sub.shape[0]):
            inner = gauged_inverse(sub, gauge)
        cov = np.zeros_like(info)
        cov[np.ix_(free, free)] = 0.5 * (inner + inner.T)
        return cov

    def _score_moments(self, x: np.ndarray, cov: np.ndarray, components: np.ndarray,
                       n_components: int) -> tuple[np.ndarray, np.ndarray]:
        """Strengths centred within each component, and their covariance."""
        n = self._n_items
        L = self._L
        counts = np.bincount(components, minlength=n_components).astype(np.float64)
        centring = np.eye(n) - (components[:, None] == components[None, :]) / counts[components][:, None]
        a = np.eye(n) if self._A is None else self._A.toarray()
        transform = centring @ a
        raw = self._strengths(x)
        scores = raw - (np.bincount(components, raw, n_components) / counts)[components]
        block = cov[L["items"], L["items"]]
        score_cov = transform @ block @ transform.T
        return scores, 0.5 * (score_cov + score_cov.T)

    def _parameter_table(self, x: np.ndarray, cov: np.ndarray, names: list[str],
                         fixed_values: dict[int, float]) -> pd.DataFrame:
        L = self._L
        rows, est, se, positive, fixed = [], [], [], [], []
        for idx in range(L["effects"].stop, L["_size"].start):
            name = names[idx]
            value, s = x[idx], np.sqrt(max(cov[idx, idx], 0.0))
            pos = False
            if name == "nu" or name == "alpha" or name.startswith("reliability["):
                value, s, pos = np.exp(value), np.exp(value) * s, True  # delta method
            elif name == "eta":
                alpha = np.exp(value)
                value, s, pos = np.exp(alpha), np.exp(alpha) * alpha * s, True
            is_fixed = idx in fixed_values
            rows.append(name)
            est.append(value)
            se.append(np.nan if is_fixed else s)
            positive.append(pos)
            fixed.append(is_fixed)
        return _coefficient_table(rows, np.array(est, dtype=np.float64), np.array(se, dtype=np.float64), positive,
                                  fixed)

    # ------------------------------------------------------------------ random item effects
    def _laplace(self, x: np.ndarray, cells: _Cells, variance: float) -> float:
        """Laplace approximation of the marginal log-likelihood at the joint mode ``x`` for ``sigma^2 = variance``.

        ``log L ~ l(x) - |u|^2 / (2 sigma^2) - n log sigma - log det(H_uu + I / sigma^2) / 2``
        with ``H_uu`` the observed information of the likelihood in ``u``.
        """
        L = self._L
        value, _ = self._objective(x, cells, variance)   # l(x) - |u|^2 / (2 sigma^2)
        info = self._information(x, cells, variance)
        block = info[L["effects"], L["effects"]]
        with single_blas_thread(block.shape[0]):
            sign, logdet = np.linalg.slogdet(block)
        if sign <= 0:
            return -np.inf
        n_u = L["effects"].stop - L["effects"].start
        return float(value - 0.5 * n_u * np.log(variance) - 0.5 * logdet)

    def _fit_random(self, x0: np.ndarray, cells: _Cells, total: float,
                    sigma_fixed: float | None) -> tuple[np.ndarray, float, np.ndarray, int, str, float]:
        """Random item effects: maximise the Laplace approximation over the fixed parameters and ``log sigma``.

        As lme4's ``glmer`` with ``nAGQ=1``: for each value of the fixed
        parameters ``theta`` (feature weights, order effects, covariates, tie
        parameter, reliabilities) and of ``log sigma``, the effects ``u`` are
        set to their conditional mode by Newton's method and the Laplace
        approximation :meth:`_laplace` is evaluated; an outer safeguarded
        Newton method, with central-difference derivatives of that function,
        maximises it over ``(theta, log sigma)`` (``log sigma`` in
        ``[log 1e-3, log 20]``). Converged when every outer Newton step is at
        most ``max(tol, 1e-6)`` (the derivatives are numerical); the inverse
        of the numerical Hessian gives the standard errors of ``theta`` and
        ``sigma`` (``sigma`` by the delta method on ``log sigma``).
        """
        L, o = self._L, self._o
        size = L["_size"].start
        full_free, full_gauge = self._free.copy(), self._gauge
        effects = np.zeros(size, dtype=bool)
        effects[L["effects"]] = True
        outer_idx = np.flatnonzero(full_free & ~effects)
        free_sigma = sigma_fixed is None
        fixed_variance = 0.0 if sigma_fixed is None else float(sigma_fixed) ** 2  # read only when sigma is fixed
        lo, hi = np.log(1e-3), np.log(20.0)
        state = {"x": x0.copy(), "iterations": 0, "criterion": 0.0}

        def unpack(z: np.ndarray) -> tuple[np.ndarray, float]:
            x = state["x"].copy()
            x[outer_idx] = z[:len(outer_idx)]
            return x, float(np.exp(2 * z[-1])) if free_sigma else fixed_variance

        def conditional_mode(z: np.ndarray) -> tuple[np.ndarray, float]:
            x, variance = unpack(z)
            self._free, self._gauge = effects, np.zeros((int(effects.sum()), 0))
            try:
                x, _, _, it, _ = self._maximise(x, cells, variance, total)
            finally:
                self._free, self._gauge = full_free, full_gauge
            state["iterations"] += it
            state["criterion"] = max(state["criterion"], self._criterion) if np.isfinite(self._criterion) else np.inf
            return x, variance

        def laplace(z: np.ndarray) -> float:
            x, variance = conditional_mode(z)
            value = self._laplace(x, cells, variance)
            if np.isfinite(value):
                state["x"] = x  # warm start for the next evaluation
            return value

        # start: the joint mode at sigma = 1 (fixed sigma: at that sigma)
        start_variance = 1.0 if free_sigma else fixed_variance
        joint, _, _, it0, _ = self._maximise(x0, cells, start_variance, total)
        state["x"] = joint
        state["iterations"] += it0
        z = np.r_[joint[outer_idx], 0.0] if free_sigma else joint[outer_idx].copy()
        k = len(z)
        outer_tol = max(o.tol, 1e-6)
        f = laplace(z) if k else np.nan  # k == 0: no outer parameters, f is never read
        h_grad, h_hess = 1e-4, 1e-3
        at_bound = np.zeros(k, dtype=bool)
        criterion, hessian, outer_it = 0.0, np.zeros((k, k)), 0
        fresh, need_hessian, grad_at, previous = False, True, None, np.inf

        def fd_hessian(z: np.ndarray, f: float) -> np.ndarray:
            out = np.empty((k, k))
            for i in range(k):
                e = np.zeros(k)
                e[i] = h_hess
                out[i, i] = (laplace(z + e) - 2 * f + laplace(z - e)) / h_hess ** 2
                for j in range(i):
                    ei, ej = np.zeros(k), np.zeros(k)
                    ei[i], ej[j] = h_hess, h_hess
                    out[i, j] = out[j, i] = (laplace(z + ei + ej) - laplace(z + ei - ej)
                                             - laplace(z - ei + ej) + laplace(z - ei - ej)) / (4 * h_hess ** 2)
            return out

        # chord Newton: the numerical Hessian is recomputed only when a full step fails or to confirm convergence
        while k:
            if grad_at is None or not np.array_equal(grad_at, z):
                state["criterion"] = 0.0
                grad = np.empty(k)
                for i in range(k):
                    e = np.zeros(k)
                    e[i] = h_grad
                    grad[i] = (laplace(z + e) - laplace(z - e)) / (2 * h_grad)
                f = laplace(z)
                grad_at, fresh = z.copy(), False
            if need_hessian:
                hessian, fresh, need_hessian = fd_hessian(z, f), True, False
            if not np.all(np.isfinite(grad)) or not np.all(np.isfinite(hessian)):
                criterion = np.inf
                break
            at_bound[:] = False
            if free_sigma:
                at_bound[-1] = (z[-1] <= lo + 1e-9 and grad[-1] < 0) or (z[-1] >= hi - 1e-9 and grad[-1] > 0)
            act = ~at_bound
            info = -hessian[np.ix_(act, act)]
            step_act = self._newton_step(info, grad[act])
            criterion = float(np.max(np.abs(step_act), initial=0.0)) if step_act is not None else np.inf
            if not fresh and criterion > max(0.1 * previous, outer_tol):
                need_hessian = True  # the old Hessian no longer contracts fast: refresh it here
                continue
            previous = criterion
            if criterion <= outer_tol or outer_it >= min(o.max_iter, 100):
                if fresh:
                    break
                need_hessian = True  # confirm with the Hessian at this point
                continue
            outer_it += 1
            scale = max(float(np.max(np.abs(np.diag(info)), initial=1.0)), 1e-8)
            accepted, full = False, False
            for lam in [0.0] + list(scale * 10.0 ** np.arange(-6, 7)):
                step_act = self._newton_step(info + lam * np.eye(len(info)), grad[act])
                if step_act is None:
                    continue
                step = np.zeros(k)
                step[act] = step_act
                t = 1.0
                for _ in range(30 if lam == 0.0 else 2):
                    trial = z + t * step
                    if free_sigma:
                        trial[-1] = min(max(trial[-1], lo), hi)
                    value = laplace(trial)
                    if np.isfinite(value) and value >= f - 1e-12 * max(abs(f), 1.0):
                        accepted, full = True, lam == 0.0 and t == 1.0
                        break
                    t *= 0.5
                if accepted:
                    break
            if not accepted:
                if fresh:
                    break
                need_hessian = True
                continue
            z = trial
            need_hessian = not full  # a damped or shortened step: recompute the Hessian at the new point
        x, variance = conditional_mode(z) if k else conditional_mode(np.zeros(0))
        value, grad_x = self._objective(x, cells, variance)
        self._criterion = max(criterion, state["criterion"])
        self._criterion_tol = outer_tol
        self._laplace_value = self._laplace(x, cells, variance)
        # covariance of (theta, log sigma): inverse of minus the Hessian of the Laplace objective
        laplace_cov = np.full((k, k), np.nan)
        if k:
            act = ~at_bound
            try:
                with single_blas_thread(k):
                    inner = np.linalg.inv(-hessian[np.ix_(act, act)])
                if np.all(np.diag(inner) > 0):
                    laplace_cov[np.ix_(act, act)] = 0.5 * (inner + inner.T)
            except np.linalg.LinAlgError:
                pass
        self._laplace_cov = (outer_idx, laplace_cov[:len(outer_idx), :len(outer_idx)])
        if free_sigma:
            log_sigma = float(z[-1])
            sigma = float(np.exp(log_sigma))
            se_log = float(np.sqrt(laplace_cov[-1, -1])) if np.isfinite(laplace_cov[-1, -1]) else np.nan
            q = float(ndtri(0.975))
            if at_bound[-1] and log_sigma <= lo + 1e-9:
                self._sigma = (sigma, np.nan, 0.0, np.nan)
                warnings.warn("the random-effect standard deviation is at its lower bound (1e-3): the item "
                              "features explain the strengths; consider item_effects='none'.", UserWarning,
                              stacklevel=3)
            else:
                self._sigma = (sigma, sigma * se_log, float(np.exp(log_sigma - q * se_log)),
                               float(np.exp(log_sigma + q * se_log)))
        return x, value, grad_x, state["iterations"], "laplace-newton", variance

    def _add_sigma_row(self, sigma_fixed: float | None) -> None:
        if sigma_fixed is not None:
            est, se, low, high, is_fixed = float(sigma_fixed), np.nan, np.nan, np.nan, True
        else:
            est, se, low, high = self._sigma
            is_fixed = False
        row = pd.DataFrame({"estimate": [est], "se": [se], "z": [np.nan], "p_value": [np.nan],
                            "ci_low": [low], "ci_high": [high], "fixed": [is_fixed]},
                           index=pd.Index(["sigma"], name="parameter"))
        self.params_ = pd.concat([self.params_, row]) if len(self.params_) else row

    # ------------------------------------------------------------------ use
    def predict_proba(self, left: Any, right: Any, order: Any = False,
                      features: np.ndarray | None = None) -> np.ndarray:
        """Array (n, 3): ``P(left wins)``, ``P(tie)``, ``P(right wins)``.

        ``order`` is the order indicator (True or 1: left had the order
        advantage, -1: right had it, False or 0: neutral; scalar or per pair;
        with per-annotator effects their mean is used); ``features`` (n, k)
        adds the covariates.
        """
        require_fitted(self)
        li, ri = self._index.codes(left), self._index.codes(right)
        d = self.scores_[li] - self.scores_[ri]
        layout, x = self._layout_, self._x
        if self._o.order_effect:
            indicator = np.broadcast_to(np.asarray(order, dtype=np.float64), d.shape)
            d = d + x[layout["order"]].mean() * indicator
        if features is not None and self._o.covariates:
            d = d + np.asarray(features, float).reshape(len(d), -1) @ x[layout["beta"]]
        if self._o.family == "bt":
            p = expit(d)
            return np.stack([p, np.zeros_like(p), 1 - p], axis=1)
        t = x[layout["tie"]][0]
        if self._o.family == "davidson":
            half = 0.5 * d
            log_norm = logsumexp(np.stack([half, -half, np.full_like(half, t)]), axis=0)
            return np.exp(np.stack([half - log_norm, t - log_norm, -half - log_norm], axis=1))
        alpha = np.exp(t)
        lw, ll = log_expit(d - alpha), log_expit(-d - alpha)
        pw, pl = np.exp(lw), np.exp(ll)
        return np.stack([pw, np.clip(1 - pw - pl, 0.0, 1.0), pl], axis=1)

    def summary(self) -> pd.DataFrame:
        """Per-item table: item, score, se, rank, wins, losses, ties, comparisons; best first.

        How the scores are identified is in ``table.attrs["identifiability"]``;
        with several connected components a ``component`` column says which
        scores can be compared. Other parameters are in ``params_``.
        """
        require_fitted(self)
        o = self._o
        if self.n_components_ > 1:
            how = (f"the comparison graph has {self.n_components_} connected components linked only by shared "
                   "parameters: scores are centred to mean zero within each component and comparable only "
                   "within it (SEs under that constraint)")
        else:
            how = "scores centred to mean zero (SEs under that constraint)"
        if o.item_features is not None:
            how += "; score = item features . w" + (" + item effect" if o.item_effects != "none" else "")
        if o.item_effects == "random":
            how += "; item effects random N(0, sigma^2), predicted at the posterior mode (Laplace)"
        elif o.prior is not None:
            how += f"; Gaussian prior N(0, {o.prior:g}) on the item effects (MAP)"
        if o.judge_reliability:
            how += f"; reliability of the first judge ({self._group_names[0]}) fixed at 1"
        extra: dict[str, np.ndarray] = {"se": self.scores_se_}
        if self.n_components_ <= 1:
            return summary_table(self.items_, self.scores_, self.pair_counts_, how, **extra)
        components = self.components_.to_numpy()
        extra["component"] = components
        table = summary_table(self.items_, self.scores_, self.pair_counts_, how, **extra)
        # a rank across components would compare scores whose difference is not identified: rank within each
        table["rank"] = (table.groupby("component")["score"].rank(ascending=False, method="min")
                         .astype(np.int64).to_numpy())
        table = table.sort_values(["component", "rank"], kind="stable").reset_index(drop=True)
        table.attrs["identifiability"] = how + "; rank is within the component (1 = best of its component)"
        return table

    # ------------------------------------------------------------------ uncertainty across components
    def _component_note(self) -> str:
        return (f"the comparison graph has {self.n_components_} connected components linked only by shared "
                "parameters, so the difference of two scores in different components is not identified "
                "(components_ gives each item's component)")

    def score_covariance(self, reference: Any = None) -> np.ndarray:
        """Covariance of the scores, centred within each component (``reference=None``) or relative to ``reference``.

        With several connected components, scores relative to ``reference``
        are identified only in the reference's component: the rows and
        columns of items in other components are NaN (with a warning).
        """
        cov = super().score_covariance(reference)
        if reference is None or self.n_components_ <= 1:
            return cov
        ref = int(self._index.codes([reference])[0])
        components = self.components_.to_numpy()
        outside = components != components[ref]
        if outside.any():
            cov = cov.copy()
            cov[outside, :] = np.nan
            cov[:, outside] = np.nan
            warnings.warn(f"{self._component_note()}: relative to {self.items_[ref]!r} the {int(outside.sum())} "
                          f"items outside its component get NaN.", UserWarning, stacklevel=2)
        return cov

    def quasi_variances(self) -> pd.DataFrame:
        """Quasi-variances (Firth & de Menezes 2004), fitted within each connected component.

        ``var(s_i - s_j) ~ q_i + q_j`` for items ``i``, ``j`` of the same
        component; with several components a ``component`` column says which
        pairs the table covers (a component of one item gets NaN).
        """
        table = super().quasi_variances() if self.n_components_ <= 1 else None
        if table is not None:
            return table
        from bradley.solvers.quasi_variance import quasi_variances

        cov = np.asarray(self.covariance_, dtype=np.float64)
        components = self.components_.to_numpy()
        q = np.full(len(components), np.nan)
        for c in np.unique(components):
            members = np.flatnonzero(components == c)
            if len(members) >= 2:
                q[members] = quasi_variances(cov[np.ix_(members, members)])
        return pd.DataFrame({"score": self.scores_, "quasi_var": q, "quasi_se": np.sqrt(q), "component": components},
                            index=pd.Index(self.items_, name="item"))


def _shorten(names: list[str], word: str = "") -> str:
    shown = ", ".join(repr(str(x)) for x in names[:8])
    more = f", ... ({len(names) - 8} more)" if len(names) > 8 else ""
    if word:
        word = (word if len(names) == 1 else word + "s") + " "
    return f"{word}[{shown}{more}]"


class _TieFamily(PairwiseModel):
    """A named tie model: the family is fixed, the other options are PairwiseModel's."""

    _family = "bt"
    _tie_parameter = ""

    def __init__(self, order_effect: bool | str = False, covariates: bool = False, prior: float | None = None,
                 tol: float = 1e-9, max_iter: int = 10_000, judge_reliability: bool = False,
                 item_features: pd.DataFrame | None = None, item_effects: str | None = None,
                 fixed: dict[str, float] | None = None):
        super().__init__(self._family, order_effect, covariates, None, prior, tol, max_iter, judge_reliability,
                         item_features, item_effects, fixed)

    def _tie_estimate(self) -> float:
        return float(self.params_.loc[self._tie_parameter, "estimate"])


class Davidson(_TieFamily):
    """Bradley-Terry with ties, Davidson (1970): tie parameter ``nu >= 0`` (``params_.loc["nu"]``).

    Examples
    --------
    >>> import bradley
    >>> p = bradley.Comparisons.from_arrays(list("aabbcca"), list("bcacabb"), [1, 0.5, 1, 0.5, 0, 1, 0.5])
    >>> m = Davidson().fit(p)
    >>> m.converged_, bool(m.nu_ > 0)
    (True, True)
    """

    _family, _tie_parameter = "davidson", "nu"
    nu_ = property(_TieFamily._tie_estimate)


class RaoKupper(_TieFamily):
    """Rao & Kupper (1967) ties: threshold ``eta >= 1`` (``params_.loc["eta"]``).

    ``P(i beats j) = pi_i / (pi_i + eta pi_j)``.
    """

    _family, _tie_parameter = "rao-kupper", "eta"
    eta_ = property(_TieFamily._tie_estimate)


class TOBT(_TieFamily):
    """Tie-rank oriented BT of the TODO paper: ``P(i beats j) = expit(d - alpha)``, tie otherwise.

    The threshold ``alpha`` is ``params_.loc["alpha"]``.

    The same model as :class:`RaoKupper` with ``alpha = log(eta)``.
    """

    _family, _tie_parameter = "tobt", "alpha"
    alpha_ = property(_TieFamily._tie_estimate)
