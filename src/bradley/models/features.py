"""Bradley-Terry with item features (linear rewards) and the BT probe over vectors."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg
from scipy.special import expit, log_expit

from bradley.errors import ConvergenceWarning
from bradley.models.base import require_fitted
from bradley.models.pairwise import PairwiseModel

__all__ = ["fit_logistic", "LogisticFit", "FeatureBT", "BTProbe", "probe_layers", "select_l2"]


@dataclass
class LogisticFit:
    coef: np.ndarray
    covariance: np.ndarray
    log_likelihood: float
    converged: bool
    n_iter: int


def fit_logistic(
    z: np.ndarray,
    positive: np.ndarray,
    negative: np.ndarray,
    precision: np.ndarray | float = 0.0,
    tol: float = 1e-10,
    max_iter: int = 100,
) -> LogisticFit:
    """Penalised logistic regression without intercept, by Newton's method.

    Maximises ``sum_k positive_k log expit(z_k . w) + negative_k log expit(-z_k . w) - w' diag(precision) w / 2``.
    No intercept, so the model is antisymmetric: swapping the two sides of a
    comparison negates ``z`` and flips the probability. Returns the inverse
    Hessian as covariance.

    Examples
    --------
    >>> z = np.array([[1.0], [-1.0]])
    >>> fit = fit_logistic(z, np.array([3.0, 1.0]), np.array([1.0, 3.0]))
    >>> bool(np.isclose(fit.coef[0], np.log(3)))
    True
    """
    z = np.asarray(z, dtype=np.float64)
    m, p = z.shape
    lam = np.broadcast_to(np.asarray(precision, dtype=np.float64), (p,))
    total = positive + negative
    w = np.zeros(p)
    it = 0
    converged = False

    def objective(coef: np.ndarray) -> float:
        eta = z @ coef
        return float(positive @ log_expit(eta) + negative @ log_expit(-eta) - 0.5 * coef @ (lam * coef))

    value = objective(w)
    for it in range(1, max_iter + 1):  # noqa: B007 (the iteration count is returned)
        eta = z @ w
        prob = expit(eta)
        grad = z.T @ (positive * expit(-eta) - negative * prob) - lam * w
        curvature = total * prob * (1 - prob)
        hessian = (z * curvature[:, None]).T @ z + np.diag(lam)
        step = linalg.solve(hessian + 1e-12 * np.eye(p), grad, assume_a="pos")
        t = 1.0
        while t > 1e-10:
            candidate = objective(w + t * step)
            if candidate >= value + 1e-4 * t * (grad @ step) - 1e-12 * abs(value):
                break
            t *= 0.5
        w = w + t * step
        value = objective(w)
        if np.max(np.abs(t * step)) < tol:
            converged = True
            break
    eta = z @ w
    prob = expit(eta)
    hessian = (z * (total * prob * (1 - prob))[:, None]).T @ z + np.diag(lam)
    covariance = np.linalg.pinv(hessian)
    return LogisticFit(w, covariance, float(positive @ log_expit(eta) + negative @ log_expit(-eta)), converged, it)


class FeatureBT(PairwiseModel):
    """Bradley-Terry with linear item strengths ``s_i = x_i . w`` (+ an optional free effect ``u_i``).

    The "linear reward" model of Zhu, Jordan & Jiao (2023): preferences are
    explained by item features, and ``params_`` (estimate, se, z, p-value,
    95% CI per feature) says which features drive them. With
    ``free_effects=True`` each item also gets its own effect ``u_i ~ N(0,
    free_effect_variance)`` (MAP), absorbing what the features miss.

    A configured front end of :class:`PairwiseModel` (``item_features=``,
    ``item_effects="none"`` or ``"fixed"`` with a prior): the same fitting
    engine, identifiability and existence checks. For random item effects
    with the variance estimated, comparison-level covariates or an order
    effect beside the features, use ``PairwiseModel(item_features=...,
    item_effects="random", covariates=True, order_effect=True)``.

    Parameters
    ----------
    item_features : DataFrame
        Numeric features, one row per item (index = item names). Features
        constant across items are not identified (only differences matter)
        and are refused with an error naming them.
    free_effects : bool
    free_effect_variance : float
    l2 : float
        Ridge precision on the feature coefficients (0 = none).

    Raises
    ------
    MLEDoesNotExistError
        When some coefficient is infinite (e.g. a feature that only the item
        that never lost has), naming the parameters and items.

    Examples
    --------
    >>> import bradley
    >>> feats = pd.DataFrame({"size": [1.0, 2.0, 3.0]}, index=["a", "b", "c"])
    >>> data = bradley.Comparisons.from_arrays(["c", "b", "c", "a"], ["a", "a", "b", "b"], [1, 1, 1, 1])
    >>> m = FeatureBT(feats).fit(data)
    >>> bool(m.params_.loc["size", "estimate"] > 0)
    True
    """

    def __init__(self, item_features: pd.DataFrame, free_effects: bool = False, free_effect_variance: float = 1.0,
                 l2: float = 0.0, tol: float = 1e-9, max_iter: int = 10_000):
        self.item_features = item_features
        self.free_effects = free_effects
        self.free_effect_variance = free_effect_variance
        self.l2 = l2
        self.tol = tol
        self.max_iter = max_iter

    def _options(self) -> SimpleNamespace:
        if not (np.isfinite(self.l2) and self.l2 >= 0):
            raise ValueError(f"l2 must be a non-negative precision, got {self.l2!r}.")
        return SimpleNamespace(
            family="bt", order_effect=False, covariates=False, flip_rate=None,
            prior=float(self.free_effect_variance) if self.free_effects else None, tol=self.tol,
            max_iter=self.max_iter, judge_reliability=False, item_features=self.item_features,
            item_effects="fixed" if self.free_effects else "none", fixed={}, weight_precision=float(self.l2),
        )

    def fit(self, data: Any) -> FeatureBT:
        """Fit the feature coefficients (and free effects); returns self."""
        super().fit(data)
        self.coef_ = pd.Series(self.params_["estimate"].to_numpy(), index=list(self._item_feature_names))
        self.free_effects_ = self.item_effects_ if self.free_effects else None
        return self

    def predict_proba(self, left: Any, right: Any) -> np.ndarray:  # type: ignore[override]
        """``P(left preferred)`` for each pair (a 1-D array)."""
        require_fitted(self)
        return expit(self.scores_[self._index.codes(left)] - self.scores_[self._index.codes(right)])


class BTProbe:
    """Bradley-Terry probe over vectors: ``P(left preferred) = expit((v_left - v_right) . w)``.

    Fitted by L2-penalised logistic regression on the difference of the two
    vectors (embeddings of items or of two responses, e.g. one layer's hidden
    states), without intercept so that swapping sides flips the prediction.
    ``scores(vectors) = vectors @ coef_`` places any item, seen or not, on the
    probe's BT scale: the probe ranks items it never saw in training.

    Parameters
    ----------
    l2 : float
        Ridge precision on ``w`` (the penalty is ``l2 * |w|^2 / 2``).
    tol, max_iter
        Newton's method stops when no coordinate moves more than ``tol``.

    Attributes
    ----------
    coef_ : ndarray of shape (dim,)
    converged_ : bool
    n_iter_ : int
    log_likelihood_ : float
        Training log-likelihood (without the penalty).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(size=(200, 8)), rng.normal(size=(200, 8))
    >>> y = ((a - b)[:, 0] > 0).astype(float)
    >>> probe = BTProbe(l2=0.1).fit(a, b, y)
    >>> probe.score(a, b, y) > 0.95
    True
    >>> bool(np.all(np.diff(probe.scores(np.eye(8)[[1, 0]]) ) > 0))
    True
    """

    def __init__(self, l2: float = 1.0, tol: float = 1e-10, max_iter: int = 100):
        self.l2 = l2
        self.tol = tol
        self.max_iter = max_iter

    def fit(
        self, left: np.ndarray, right: np.ndarray, outcome: np.ndarray, weight: np.ndarray | None = None
    ) -> BTProbe:
        """Fit ``w`` on rows ``(left_k, right_k, outcome_k)``; outcome 1 = left preferred, 0.5 = tie; returns self."""
        if not (np.isfinite(self.l2) and self.l2 >= 0):
            raise ValueError(f"l2 must be a non-negative precision, got {self.l2!r}.")
        diff = _pair_difference(left, right)
        o = np.asarray(outcome, np.float64)
        if o.shape != (len(diff),):
            raise ValueError(f"outcome must have one value per row ({len(diff)}), got shape {o.shape}.")
        bad = np.flatnonzero(~np.isfinite(o) | (o < 0) | (o > 1))
        if bad.size:
            raise ValueError(f"outcome must lie in [0, 1]; rows {bad[:10].tolist()} do not.")
        w = np.ones(len(o)) if weight is None else np.asarray(weight, np.float64)
        if w.shape != o.shape or not np.all(np.isfinite(w) & (w >= 0)):
            raise ValueError("weight must be one finite non-negative value per row.")
        fit = fit_logistic(diff, w * o, w * (1 - o), self.l2, tol=self.tol, max_iter=self.max_iter)
        self.coef_ = fit.coef
        self.converged_ = fit.converged
        self.n_iter_ = fit.n_iter
        self.log_likelihood_ = fit.log_likelihood
        if not fit.converged:
            warnings.warn(f"BTProbe did not converge in {fit.n_iter} Newton steps (tol={self.tol}); "
                          "raise l2 (separable data) or max_iter.", ConvergenceWarning, stacklevel=2)
        return self

    def scores(self, vectors: np.ndarray) -> np.ndarray:
        """BT scores ``vectors @ coef_`` of items (one row each); only differences are meaningful."""
        require_fitted(self, "coef_")
        return np.asarray(vectors, np.float64) @ self.coef_

    def predict_proba(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """``P(left preferred)`` per row."""
        require_fitted(self, "coef_")
        return expit(_pair_difference(left, right) @ self.coef_)

    def score(self, left: np.ndarray, right: np.ndarray, outcome: np.ndarray) -> float:
        """Accuracy on decisive rows (ties excluded; a probability of exactly 1/2 counts half)."""
        o = np.asarray(outcome, np.float64)
        decisive = o != 0.5
        p = self.predict_proba(left, right)[decisive]
        hit = np.where(p == 0.5, 0.5, (p > 0.5) == (o[decisive] > 0.5))
        return float(np.mean(hit)) if hit.size else float("nan")

    def log_loss(self, left: np.ndarray, right: np.ndarray, outcome: np.ndarray) -> float:
        """Mean negative log-likelihood per row (natural log; ties count as half a win each way)."""
        require_fitted(self, "coef_")
        o = np.asarray(outcome, np.float64)
        eta = _pair_difference(left, right) @ self.coef_
        return float(-np.mean(o * log_expit(eta) + (1 - o) * log_expit(-eta)))


def _pair_difference(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    a, b = np.asarray(left, np.float64), np.asarray(right, np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"left and right must be (n, dim) arrays of one shape, got {a.shape} and {b.shape}.")
    diff = a - b
    if not np.all(np.isfinite(diff)):
        rows = np.flatnonzero(~np.all(np.isfinite(diff), axis=1))
        raise ValueError(f"left/right vectors are not finite in rows {rows[:10].tolist()}.")
    return diff


def _row_mask(mask: Any, n_rows: int, what: str, over: str) -> np.ndarray:
    """``mask`` as a boolean array of length ``n_rows``, or a ValueError naming it."""
    m = np.asarray(mask)
    if m.shape != (n_rows,) or m.dtype.kind not in "bui":
        raise ValueError(f"{what} must be a boolean mask over the {n_rows} {over}, got shape {m.shape} "
                         f"and dtype {m.dtype}.")
    if m.dtype.kind != "b":
        if not np.isin(m, (0, 1)).all():
            raise ValueError(f"{what} must be a boolean mask (0/1 values), not indices.")
        m = m.astype(bool)
    return m


def select_l2(
    left: np.ndarray, right: np.ndarray, outcome: np.ndarray, grid: Sequence[float], validation: np.ndarray,
    fit_rows: np.ndarray | None = None,
) -> float:
    """The ridge precision in ``grid`` with the smallest log-loss on the ``validation`` rows.

    Each candidate is fitted on ``fit_rows`` (default: the rows not in
    ``validation``). To choose for unseen *items*, validate on pairs of
    held-back items and fit on pairs of the others (drop the mixed pairs).

    Raises ValueError when a mask is not one boolean per row, when there are
    no validation or no fit rows, or when no candidate has a finite
    validation loss (never a silent ``grid[0]``).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(size=(200, 3)), rng.normal(size=(200, 3))
    >>> y = ((a - b)[:, 0] > 0).astype(float)
    >>> select_l2(a, b, y, [0.01, 1e4], validation=np.arange(200) < 50)
    0.01
    """
    n = len(np.asarray(outcome))
    validation = _row_mask(validation, n, "validation", "rows")
    fit = ~validation if fit_rows is None else _row_mask(fit_rows, n, "fit_rows", "rows")
    if not validation.any():
        raise ValueError("select_l2: the validation mask selects no rows.")
    if not fit.any():
        raise ValueError("select_l2: no rows to fit on (fit_rows selects none, or validation is every row).")
    if len(grid) == 0:
        raise ValueError("select_l2: the l2 grid is empty.")
    best, best_loss = None, np.inf
    losses = {}
    for l2 in grid:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            probe = BTProbe(float(l2)).fit(left[fit], right[fit], outcome[fit])
        loss = probe.log_loss(left[validation], right[validation], outcome[validation])
        losses[float(l2)] = loss
        if np.isfinite(loss) and loss < best_loss:
            best, best_loss = float(l2), loss
    if best is None:
        raise ValueError(f"select_l2: no l2 in the grid has a finite validation log-loss ({losses}).")
    return best


def probe_layers(
    layers: dict[str, tuple[np.ndarray, np.ndarray]],
    outcome: np.ndarray,
    test_size: float = 0.3,
    l2: float | Sequence[float] = 1.0,
    seed: int | None = 0,
    test: np.ndarray | None = None,
    validation: np.ndarray | None = None,
    validation_fit: np.ndarray | None = None,
) -> pd.DataFrame:
    """Fit a :class:`BTProbe` per layer on a train split; report train and test accuracy.

    ``layers`` maps a layer name to ``(left_vectors, right_vectors)``; all
    layers share the same rows and split. Where in a network the preference
    is linearly readable shows as the layer with the best test accuracy.

    Parameters
    ----------
    test : bool array, optional
        The held-out rows. Give it to hold out *items* (pairs of items never
        seen in training), which is the honest test of a probe; default: a
        random ``test_size`` share of the rows.
    l2 : float or sequence of float
        A sequence is a grid: each layer gets the value with the best
        log-loss on ``validation`` rows (a mask over the training rows;
        default: a random quarter of them), fitted on ``validation_fit``
        rows (default: the other training rows), then is refitted on all
        training rows.

    Returns
    -------
    DataFrame
        One row per layer: ``layer, l2, train_accuracy, test_accuracy,
        test_log_loss, n_test``.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> a, b = rng.normal(size=(400, 3)), rng.normal(size=(400, 3))
    >>> y = ((a - b)[:, 0] > 0).astype(float)
    >>> table = probe_layers({"x0": (a, b), "x12": (a[:, 1:], b[:, 1:])}, y, l2=[0.01, 1.0])
    >>> table.set_index("layer")["test_accuracy"].round(1).to_dict()
    {'x0': 1.0, 'x12': 0.5}
    """
    o = np.asarray(outcome, np.float64)
    rng = np.random.default_rng(seed)
    if test is None:
        test = rng.random(len(o)) < test_size
    test = np.asarray(test, dtype=bool)
    if test.shape != o.shape or test.all() or not test.any():
        raise ValueError("test must be a boolean mask over the rows with both train and test rows.")
    grid = [float(l2)] if isinstance(l2, (int, float)) else [float(v) for v in l2]
    if not grid:
        raise ValueError("l2 grid is empty.")
    n_train = int((~test).sum())
    if validation is None:
        validation = rng.random(n_train) < 0.25
    validation = _row_mask(validation, n_train, "validation", "training rows (the rows not in test)")
    if validation_fit is not None:
        validation_fit = _row_mask(validation_fit, n_train, "validation_fit", "training rows (the rows not in test)")
    rows = []
    for name, (left, right) in layers.items():
        left, right = np.asarray(left, np.float64), np.asarray(right, np.float64)
        if left.ndim != 2 or left.shape != right.shape or left.shape[0] != len(o):
            raise ValueError(f"layer {name!r}: left and right must be (n, dim) arrays with one row per outcome "
                             f"({len(o)}), got {left.shape} and {right.shape}.")
        lt, rt, ot = left[~test], right[~test], o[~test]
        chosen = grid[0] if len(grid) == 1 else select_l2(lt, rt, ot, grid, validation, validation_fit)
        probe = BTProbe(chosen).fit(lt, rt, ot)
        rows.append({"layer": name, "l2": chosen, "train_accuracy": probe.score(lt, rt, ot),
                     "test_accuracy": probe.score(left[test], right[test], o[test]),
                     "test_log_loss": probe.log_loss(left[test], right[test], o[test]), "n_test": int(test.sum())})
    return pd.DataFrame(rows)
