"""Pairwise comparison models with ties, order effects, covariates and noisy labels.

One engine, :class:`PairwiseModel`, fits every member of the family by
maximum likelihood (or MAP with a Gaussian prior on the item scores) on the
linear predictor

    d = s_left - s_right + gamma[group] * order + x . beta

where ``gamma`` is a first-position (home) advantage, one per annotator when
``order_effect="annotator"``, and ``x`` are comparison-level covariates (e.g.
length difference, for "style control"). The outcome model ("family") says
how ``d`` turns into win / tie / loss probabilities:

* ``"bt"``: ``P(left) = expit(d)``; a tie counts half a win each way.
* ``"davidson"`` (Davidson 1970): ``P(left) = e^{d/2} / (e^{d/2} + e^{-d/2} + nu)``,
  ``P(tie) = nu / (...)``, ``nu >= 0``.
* ``"rao-kupper"`` (Rao & Kupper 1967) and ``"tobt"`` (the TODO paper's
  tie-rank oriented BT; the same model, parametrised by ``alpha = log eta``):
  ``P(left) = expit(d - alpha)``, ``P(right) = expit(-d - alpha)``, ``P(tie)`` the rest.

``flip_rate=eps`` (family ``"bt"``) corrects for labels flipped at random
with a known probability: ``P(observed left) = (1 - eps) expit(d) + eps expit(-d)``,
which keeps the estimate consistent where the naive fit shrinks towards zero.

Rows are aggregated to (left, right, group) cells when there are no
covariates, so the fit costs the number of distinct ordered pairs, not rows.
Standard errors come from the observed information (the Hessian of the
log-likelihood, assembled through the sparse design of the linear predictor),
with the item scores under the mean-zero constraint.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, sparse
from scipy.special import expit, log_expit, logsumexp
from scipy.stats import norm

from bradley.data import Comparisons, check_mle_exists
from bradley.errors import ConvergenceWarning
from bradley.models.base import ItemIndex, as_comparisons, check_prior, require_fitted, summary_table

__all__ = ["PairwiseModel", "Davidson", "RaoKupper", "TOBT", "FAMILIES"]

FAMILIES = ("bt", "davidson", "rao-kupper", "tobt")


@dataclass
class _Cells:
    """Aggregated design: one entry per (left, right, group) cell or per row."""

    left: np.ndarray
    right: np.ndarray
    group: np.ndarray
    win: np.ndarray
    tie: np.ndarray
    loss: np.ndarray
    features: np.ndarray | None

    @property
    def total(self) -> np.ndarray:
        return self.win + self.tie + self.loss


def _cells(data: Comparisons, group: np.ndarray, use_features: bool) -> _Cells:
    w = np.ones(data.n_comparisons) if data.weight is None else data.weight
    tie = data.outcome == 0.5
    win = np.where(tie, 0.0, w * data.outcome)
    loss = np.where(tie, 0.0, w * (1.0 - data.outcome))
    tie_w = np.where(tie, w, 0.0)
    if use_features:
        return _Cells(data.left, data.right, group, win, tie_w, loss, data.features)
    n, g = len(data.items), int(group.max()) + 1 if len(group) else 1
    key = (data.left * np.int64(n) + data.right) * g + group
    codes, uniq = pd.factorize(key)
    m = len(uniq)
    uniq = np.asarray(uniq, dtype=np.int64)
    return _Cells(
        (uniq // g) // n, (uniq // g) % n, uniq % g,
        np.bincount(codes, win, m), np.bincount(codes, tie_w, m), np.bincount(codes, loss, m), None,
    )


class PairwiseModel:
    """A pairwise comparison model: BT or a tie model, with optional order effect, covariates, label noise.

    Parameters
    ----------
    family : {"bt", "davidson", "rao-kupper", "tobt"}
    order_effect : bool or "annotator"
        Add a first-position (home) advantage ``gamma`` to the log-odds of
        the left item; ``"annotator"`` fits one per annotator (the data need an
        annotator column), as position bias differs between LLM judges.
    covariates : bool
        Use the data's comparison-level ``features`` (coefficients ``beta``).
    flip_rate : float, optional
        Known label-flip probability in [0, 0.5) (family ``"bt"`` only).
    prior : float, optional
        Gaussian prior variance on the item scores (MAP).
    tol : float
        Tolerance on the largest gradient entry divided by the total weight.
    judge_reliability : bool
        Give each annotator/judge a reliability ``r_j > 0`` that scales the
        score difference (``d = r_j (s_left - s_right) + ...``): a reliable
        judge's verdicts follow the scores closely, an unreliable one's are
        closer to coin flips. The first judge (in order of appearance) is the
        reference with ``r = 1``; ``params_`` reports the others relative to it.

    Attributes
    ----------
    items_, scores_ (mean zero), scores_se_, params_ (DataFrame: estimate, se,
    z, p_value, ci_low, ci_high for nu / eta / alpha / order effects /
    covariates), log_likelihood_, converged_, n_iter_, covariance_.

    Examples
    --------
    >>> import bradley
    >>> data, _ = bradley.simulate_bt(6, 3000, seed=0)
    >>> m = PairwiseModel(order_effect=True).fit(data)
    >>> list(m.params_.index)
    ['order_effect']
    """

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
    ):
        self.judge_reliability = judge_reliability
        self.family = family
        self.order_effect = order_effect
        self.covariates = covariates
        self.flip_rate = flip_rate
        self.prior = prior
        self.tol = tol
        self.max_iter = max_iter

    # ------------------------------------------------------------------ set-up
    def _check(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {self.family!r}.")
        if self.order_effect not in (False, True, "annotator"):
            raise ValueError("order_effect must be False, True or 'annotator'.")
        if self.flip_rate is not None:
            if self.family != "bt":
                raise ValueError("flip_rate is available for family='bt' only.")
            if not 0.0 <= self.flip_rate < 0.5:
                raise ValueError(f"flip_rate must lie in [0, 0.5), got {self.flip_rate}.")
        check_prior(self.prior)

    def _layout(self, n: int, n_groups: int, k: int) -> dict[str, slice]:
        parts, start = {}, 0
        n_order = (n_groups if self.order_effect == "annotator" else 1) if self.order_effect else 0
        n_reliability = n_groups - 1 if self.judge_reliability else 0
        for name, size in (("scores", n), ("order", n_order), ("beta", k),
                           ("tie", 1 if self.family != "bt" else 0), ("reliability", n_reliability)):
            parts[name] = slice(start, start + size)
            start += size
        parts["_size"] = slice(start, start)
        return parts

    # ------------------------------------------------------------------ likelihood
    def _scale(self, x: np.ndarray, cells: _Cells, layout: dict[str, slice]) -> np.ndarray | float:
        """Per-cell judge reliability r (1 without judge_reliability)."""
        if not self.judge_reliability:
            return 1.0
        return np.exp(np.concatenate([[0.0], x[layout["reliability"]]]))[cells.group]

    def _order_index(self, cells: _Cells) -> np.ndarray:
        return cells.group if self.order_effect == "annotator" else np.zeros_like(cells.group)

    def _predictor(self, x: np.ndarray, cells: _Cells, layout: dict[str, slice]) -> np.ndarray:
        s = x[layout["scores"]]
        d = self._scale(x, cells, layout) * (s[cells.left] - s[cells.right])
        if self.order_effect:
            d = d + x[layout["order"]][self._order_index(cells)]
        if self.covariates:
            d = d + cells.features @ x[layout["beta"]]
        return d

    def _row_terms(self, d: np.ndarray, t: float, cells: _Cells) -> tuple[float, np.ndarray, np.ndarray]:
        """Log-likelihood, and its derivatives per cell in d and in the tie parameter t."""
        win, tie, loss = cells.win, cells.tie, cells.loss
        if self.family == "bt":
            if self.flip_rate:
                eps = self.flip_rate
                p, q = expit(d), expit(-d)
                m = (1 - eps) * p + eps * q
                log_m, log_1m = np.log(m), np.log1p(-m)
                value = win @ log_m + loss @ log_1m + 0.5 * tie @ (log_m + log_1m)
                slope = (1 - 2 * eps) * p * q
                dd = (win + 0.5 * tie) * slope / m - (loss + 0.5 * tie) * slope / (1 - m)
                return float(value), dd, np.zeros_like(d)
            a, b = win + 0.5 * tie, loss + 0.5 * tie
            # log expit(+-d) = -log1p(exp(-|d|)) - max(-+d, 0): numpy's SIMD exp/log1p, exact for any d
            soft = np.log1p(np.exp(-np.abs(d)))
            log_p = -soft - np.maximum(-d, 0.0)
            log_q = -soft - np.maximum(d, 0.0)
            value = a @ log_p + b @ log_q
            dd = a * np.exp(log_q) - b * np.exp(log_p)
            return float(value), dd, np.zeros_like(d)
        if self.family == "davidson":
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
        log_gap = np.log(np.expm1(2 * alpha))
        value = win @ lw + loss @ ll + tie @ (log_gap + lw + ll)
        s1, s2 = np.exp(lw), np.exp(ll)
        dd = win * (1 - s1) - loss * (1 - s2) + tie * (s2 - s1)
        d_alpha = -win * (1 - s1) - loss * (1 - s2) + tie * (2.0 / -np.expm1(-2 * alpha) - (1 - s1) - (1 - s2))
        return float(value), dd, d_alpha * alpha

    def _tie_value(self, x: np.ndarray, layout: dict[str, slice]) -> float:
        return float(x[layout["tie"]][0]) if self.family != "bt" else 0.0

    def _objective(self, x: np.ndarray, cells: _Cells, layout: dict[str, slice], n: int, n_groups: int) -> tuple[float, np.ndarray]:
        value, dd, dt_rows = self._row_terms(self._predictor(x, cells, layout), self._tie_value(x, layout), cells)
        d_tie = float(dt_rows.sum())
        grad = np.zeros_like(x)
        scale = self._scale(x, cells, layout)
        scaled = dd * scale
        grad[layout["scores"]] = np.bincount(cells.left, scaled, n) - np.bincount(cells.right, scaled, n)
        if self.order_effect:
            sl = layout["order"]
            grad[sl] = np.bincount(self._order_index(cells), dd, sl.stop - sl.start)
        if self.judge_reliability:
            s = x[layout["scores"]]
            grad[layout["reliability"]] = np.bincount(cells.group, scaled * (s[cells.left] - s[cells.right]), n_groups)[1:]
        if self.covariates:
            grad[layout["beta"]] = cells.features.T @ dd
        if self.family != "bt":
            grad[layout["tie"]] = d_tie
        if self.prior is not None:
            s = x[layout["scores"]]
            value -= 0.5 * float(s @ s) / self.prior
            grad[layout["scores"]] -= s / self.prior
        return value, grad

    # ------------------------------------------------------------------ fit
    def fit(self, data: Any) -> "PairwiseModel":
        """Fit scores and the model's extra parameters; returns self."""
        self._check()
        comparisons = as_comparisons(data)
        n = len(comparisons.items)
        if self.order_effect == "annotator" or self.judge_reliability:
            if comparisons.annotator is None:
                raise ValueError("order_effect='annotator' and judge_reliability need an annotator column in the data.")
            group, group_names = pd.factorize(np.asarray(comparisons.annotator))
            group_names = [str(g) for g in group_names]
        else:
            group, group_names = np.zeros(comparisons.n_comparisons, dtype=np.int64), ["all"]
        if self.covariates and comparisons.features is None:
            raise ValueError("covariates=True needs comparison features (read_comparisons(..., features=[...])).")
        k = comparisons.features.shape[1] if self.covariates else 0
        n_groups = len(group_names)
        pairs = comparisons.pair_counts()
        if self.prior is None:
            check_mle_exists(pairs)
        if self.family != "bt" and not (comparisons.outcome == 0.5).any():
            raise ValueError(f"the data have no ties, so the {self.family} tie parameter is not identified; use family='bt'.")
        cells = _cells(comparisons, np.asarray(group, dtype=np.int64), bool(self.covariates))
        layout = self._layout(n, n_groups, k)
        size = layout["_size"].start
        x0 = np.zeros(size)
        if self.family == "davidson":
            tie_share = pairs.ties.sum() / pairs.totals.sum()
            x0[layout["tie"]] = np.log(max(2 * tie_share / max(1 - tie_share, 1e-9), 1e-6))
        elif self.family != "bt":
            x0[layout["tie"]] = np.log(0.5)
        total = max(float(cells.total.sum()), 1.0)

        def negative(x: np.ndarray) -> tuple[float, np.ndarray]:
            value, grad = self._objective(x, cells, layout, n, n_groups)
            return -value / total, -grad / total

        # Start from the plain BT scores (fast, from pair counts), then Newton
        # with the observed information and backtracking; L-BFGS takes over
        # if Newton does not settle (it has not been needed in the tests).
        from bradley.models.bradley_terry import BradleyTerry

        x0[layout["scores"]] = BradleyTerry(prior=self.prior if self.prior is not None else 10.0).fit(pairs).scores_
        gauge = self.prior is None
        x = x0
        value, grad = self._objective(x, cells, layout, n, n_groups)
        iterations, newton_ok = 0, False
        for iterations in range(1, 51):
            info = self._information(x, cells, layout, n, n_groups)
            cov = self._invert(info, layout, gauge)
            step = cov @ grad
            if np.max(np.abs(grad)) / total <= self.tol and np.max(np.abs(step)) < 1e-10:
                newton_ok = True
                break
            t_step = 1.0
            while t_step > 1e-8:
                candidate = x + t_step * step
                cand_value, cand_grad = self._objective(candidate, cells, layout, n, n_groups)
                if cand_value >= value + 1e-4 * t_step * float(grad @ step) - 1e-12 * abs(value):
                    break
                t_step *= 0.5
            x, value, grad = candidate, cand_value, cand_grad
            if np.max(np.abs(grad)) / total <= self.tol:
                newton_ok = True
                break
        if not newton_ok:
            res = optimize.minimize(negative, x, jac=True, method="L-BFGS-B",
                                    options={"maxiter": self.max_iter, "gtol": 1e-12, "ftol": 0.0, "maxcor": 30})
            x, iterations = res.x, iterations + int(res.nit)
        value, grad = self._objective(x, cells, layout, n, n_groups)
        info = self._information(x, cells, layout, n, n_groups)
        cov = self._invert(info, layout, gauge)
        shift = x[layout["scores"]].mean()
        x[layout["scores"]] -= shift

        self.items_ = np.asarray(comparisons.items, dtype=object)
        self._index = ItemIndex(self.items_)
        self.pair_counts_ = pairs
        self.n_comparisons_ = comparisons.n_comparisons
        self.scores_ = x[layout["scores"]]
        self.covariance_ = cov
        self.scores_se_ = np.sqrt(np.clip(np.diag(cov)[layout["scores"]], 0, None))
        self.log_likelihood_ = value if self.prior is None else value + 0.5 * float(self.scores_ @ self.scores_) / self.prior
        self.n_iter_ = int(iterations)
        self.solver_ = "newton" if newton_ok else "newton+lbfgs"
        self.converged_ = bool(np.max(np.abs(grad)) / total <= self.tol)
        self._x, self._layout_, self._group_names = x, layout, group_names
        self._design_cache = None
        self._feature_names = comparisons.feature_names if self.covariates else ()
        self.params_ = self._parameter_table(x, cov, layout, group_names)
        if not self.converged_:
            warnings.warn(
                f"{type(self).__name__} did not converge (largest scaled gradient "
                f"{np.max(np.abs(grad)) / total:.2e} > tol {self.tol:g}).",
                ConvergenceWarning, stacklevel=2,
            )
        return self

    def _information(self, x: np.ndarray, cells: _Cells, layout: dict[str, slice], n: int, n_groups: int) -> np.ndarray:
        """Observed information ``-d2 loglik``, assembled through the linear predictor.

        The log-likelihood is a sum of per-cell functions f(d_k, t), so the
        Hessian is ``J' diag(f_dd) J`` plus the tie-parameter row and column,
        with ``J`` the sparse design of d. The per-cell second derivatives come
        from central differences of the exact first derivatives: O(cells) work,
        whatever the number of parameters.
        """
        d, t = self._predictor(x, cells, layout), self._tie_value(x, layout)
        h = 1e-5
        _, dd_plus, _ = self._row_terms(d + h, t, cells)
        _, dd_minus, _ = self._row_terms(d - h, t, cells)
        f_dd = (dd_plus - dd_minus) / (2 * h)
        design = self._design(cells, layout) if not self.judge_reliability else self._design(cells, layout, x)
        hessian = (design.T @ design.multiply(f_dd[:, None]).tocsr()).toarray()
        if self.judge_reliability:
            # d is not linear in (s, rho): add sum_k dd_k * d2 d_k / dx dx'
            _, dd, _ = self._row_terms(d, t, cells)
            s = x[layout["scores"]]
            r = self._scale(x, cells, layout)
            judged = cells.group > 0
            rel = layout["reliability"].start + cells.group[judged] - 1
            w = (dd * r)[judged]
            size = layout["_size"].start
            flat = np.bincount(cells.left[judged] * size + rel, w, size * size)
            flat -= np.bincount(cells.right[judged] * size + rel, w, size * size)
            flat += np.bincount(rel * size + rel, w * (s[cells.left] - s[cells.right])[judged], size * size)
            block = flat.reshape(size, size)
            off = block - np.diag(np.diag(block))
            hessian += off + off.T + np.diag(np.diag(block))
        if self.family != "bt":
            j = layout["tie"].start
            _, dd_tp, dt_plus = self._row_terms(d, t + h, cells)
            _, dd_tm, dt_minus = self._row_terms(d, t - h, cells)
            f_dt = (dd_tp - dd_tm) / (2 * h)
            cross = design.T @ f_dt
            hessian[:, j] += cross
            hessian[j, :] += cross
            hessian[j, j] = float((dt_plus - dt_minus).sum() / (2 * h))
        if self.prior is not None:
            idx = np.arange(layout["scores"].start, layout["scores"].stop)
            hessian[idx, idx] -= 1.0 / self.prior
        info = -hessian
        return 0.5 * (info + info.T)

    def _design(self, cells: _Cells, layout: dict[str, slice], x: np.ndarray | None = None) -> sparse.csr_matrix:
        """Sparse Jacobian of the predictor d with respect to all parameters.

        Constant (and cached per fit) unless judges have reliabilities, which
        make it depend on the current parameters ``x``.
        """
        cached = getattr(self, "_design_cache", None)
        if x is None and cached is not None and cached[0] is cells:
            return cached[1]
        m = len(cells.left)
        scale = np.ones(m) if x is None else np.broadcast_to(self._scale(x, cells, layout), (m,))
        rows = [np.arange(m), np.arange(m)]
        cols = [cells.left, cells.right]
        vals = [scale, -scale]
        if self.order_effect:
            rows.append(np.arange(m))
            cols.append(layout["order"].start + self._order_index(cells))
            vals.append(np.ones(m))
        if self.judge_reliability:
            s = x[layout["scores"]]
            judged = np.flatnonzero(cells.group > 0)
            rows.append(judged)
            cols.append(layout["reliability"].start + cells.group[judged] - 1)
            vals.append((scale * (s[cells.left] - s[cells.right]))[judged])
        if self.covariates:
            k = cells.features.shape[1]
            rows.append(np.repeat(np.arange(m), k))
            cols.append(np.tile(np.arange(layout["beta"].start, layout["beta"].stop), m))
            vals.append(cells.features.ravel())
        size = layout["_size"].start
        design = sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(m, size))
        if x is None:
            self._design_cache = (cells, design)
        return design

    @staticmethod
    def _invert(info: np.ndarray, layout: dict[str, slice], gauge: bool) -> np.ndarray:
        if not gauge:
            return np.linalg.inv(info)
        # Scores are identified up to a shift: u (unit, along the scores) spans
        # the null space; inv(I + u u^T) - u u^T is the pseudo-inverse.
        u = np.zeros(info.shape[0])
        u[layout["scores"]] = 1.0
        u /= np.linalg.norm(u)
        outer = np.outer(u, u)
        return np.linalg.inv(info + outer) - outer

    def _parameter_table(self, x: np.ndarray, cov: np.ndarray, layout: dict[str, slice], groups: list[str]) -> pd.DataFrame:
        rows = []
        if self.order_effect:
            sl = layout["order"]
            names = ["order_effect"] if self.order_effect is True else [f"order_effect[{g}]" for g in groups]
            for name, idx in zip(names, range(sl.start, sl.stop)):
                rows.append((name, x[idx], np.sqrt(cov[idx, idx])))
        if self.covariates:
            sl = layout["beta"]
            for name, idx in zip(self._feature_names, range(sl.start, sl.stop)):
                rows.append((name, x[idx], np.sqrt(cov[idx, idx])))
        if self.judge_reliability:
            sl = layout["reliability"]
            for name, idx in zip(groups[1:], range(sl.start, sl.stop)):
                rows.append((f"reliability[{name}]", np.exp(x[idx]), np.exp(x[idx]) * np.sqrt(cov[idx, idx])))
        if self.family != "bt":
            idx = layout["tie"].start
            t, se_t = x[idx], np.sqrt(cov[idx, idx])
            if self.family == "davidson":
                rows.append(("nu", np.exp(t), np.exp(t) * se_t))  # delta method
            else:
                alpha = np.exp(t)
                if self.family == "tobt":
                    rows.append(("alpha", alpha, alpha * se_t))
                else:
                    rows.append(("eta", np.exp(alpha), np.exp(alpha) * alpha * se_t))
        table = pd.DataFrame(rows, columns=["parameter", "estimate", "se"]).set_index("parameter")
        table = table.astype({"estimate": np.float64, "se": np.float64})
        z = norm.ppf(0.975)
        table["z"] = table["estimate"] / table["se"]
        table["p_value"] = 2 * norm.sf(np.abs(table["z"]))
        table["ci_low"] = table["estimate"] - z * table["se"]
        table["ci_high"] = table["estimate"] + z * table["se"]
        # z tests against 0 are not meaningful for positive parameters (tie
        # parameters, reliabilities); their intervals are what to read
        positive = [name for name in table.index if name in ("eta", "nu", "alpha") or name.startswith("reliability[")]
        table.loc[positive, ["z", "p_value"]] = np.nan
        return table

    # ------------------------------------------------------------------ use
    def predict_proba(self, left: Any, right: Any, order: bool = False, features: np.ndarray | None = None) -> np.ndarray:
        """Array (n, 3): ``P(left wins)``, ``P(tie)``, ``P(right wins)``.

        ``order=True`` adds the (overall) order effect, i.e. ``left`` shown
        first; ``features`` (n, k) adds the covariates.
        """
        require_fitted(self)
        li, ri = self._index.codes(left), self._index.codes(right)
        d = self.scores_[li] - self.scores_[ri]
        layout, x = self._layout_, self._x
        if order and self.order_effect:
            d = d + x[layout["order"]].mean()
        if features is not None and self.covariates:
            d = d + np.asarray(features, float).reshape(len(d), -1) @ x[layout["beta"]]
        if self.family == "bt":
            p = expit(d)
            return np.stack([p, np.zeros_like(p), 1 - p], axis=1)
        t = x[layout["tie"]][0]
        if self.family == "davidson":
            half = 0.5 * d
            log_norm = logsumexp(np.stack([half, -half, np.full_like(half, t)]), axis=0)
            return np.exp(np.stack([half - log_norm, t - log_norm, -half - log_norm], axis=1))
        alpha = np.exp(t)
        pw, pl = expit(d - alpha), expit(-d - alpha)
        return np.stack([pw, 1 - pw - pl, pl], axis=1)

    def summary(self) -> pd.DataFrame:
        """Per-item table: item, score, se, rank, wins, losses, ties, comparisons; best first.

        Identifiability: item scores are centred to mean zero (their SEs are
        under that constraint); extra parameters are in ``params_``.
        """
        require_fitted(self)
        how = "scores centred to mean zero (SEs under that constraint)"
        if self.prior is not None:
            how += f"; Gaussian prior N(0, {self.prior:g}) on the scores (MAP)"
        if self.judge_reliability:
            how += f"; reliability of the first judge ({self._group_names[0]}) fixed at 1"
        return summary_table(self.items_, self.scores_, self.pair_counts_, how, se=self.scores_se_)


class _TieFamily(PairwiseModel):
    """A named tie model: the family is fixed, the other options are PairwiseModel's."""

    _family = "bt"
    _tie_parameter = ""

    def __init__(self, order_effect: bool | str = False, covariates: bool = False, prior: float | None = None,
                 tol: float = 1e-9, max_iter: int = 10_000, judge_reliability: bool = False):
        super().__init__(self._family, order_effect, covariates, None, prior, tol, max_iter, judge_reliability)

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
    """Rao & Kupper (1967) ties: threshold ``eta >= 1`` (``params_.loc["eta"]``), ``P(i beats j) = pi_i / (pi_i + eta pi_j)``."""

    _family, _tie_parameter = "rao-kupper", "eta"
    eta_ = property(_TieFamily._tie_estimate)


class TOBT(_TieFamily):
    """Tie-rank oriented BT of the TODO paper: ``P(i beats j) = expit(d - alpha)``, tie otherwise (``params_.loc["alpha"]``).

    The same model as :class:`RaoKupper` with ``alpha = log(eta)``.
    """

    _family, _tie_parameter = "tobt", "alpha"
    alpha_ = property(_TieFamily._tie_estimate)
