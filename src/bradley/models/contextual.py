"""Prompt-conditioned Bradley-Terry (prompt-to-leaderboard, P2L): item scores that depend on context.

Each battle ``n`` comes with a context vector ``x_n`` (tags of the prompt,
numeric columns, or a text embedding). Every item ``i`` gets a coefficient
``theta_i(x) = beta_i + W_i . x`` and

* ``ties="none"``: ``P(a beats b | x) = expit(theta_a(x) - theta_b(x))``
  (a tie, outcome 0.5, counts as half a win each way);
* ``ties="davidson"``: ``P(a) : P(tie) : P(b) = e^{d/2} : nu(x) : e^{-d/2}``
  with ``d = theta_a(x) - theta_b(x)`` and ``log nu(x) = g_0`` (or
  ``g_0 + g . x`` with ``tie_context=True``).

Features are standardised (mean 0, sd 1 over the training battles), so
``beta`` is the leaderboard of the average training prompt and one ridge
penalty fits all columns. Identifiability: one constraint per feature column
(the intercept included): ``sum_i B[i, c] = 0``, so ``theta(x)`` sums to zero
over items for every context (scores are centred at every prompt). The global
BT (or Davidson) model is the special case ``W = 0`` (``penalty=inf``).

The linear model is fitted by exact penalised maximum likelihood (float64,
log domain) with analytic gradient and Hessian-vector products
(scipy ``trust-ncg``); the neural model (``kind="neural"``, torch imported
lazily) is an MLP from ``x`` to the item coefficients trained on the same
likelihood with early stopping on a validation split.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.special import expit, log_expit, logsumexp

from bradley.data import Comparisons, check_mle_exists
from bradley.errors import ComparisonDataError, ConvergenceWarning, MLEDoesNotExistError
from bradley.models.base import ItemIndex, as_comparisons, gauged_inverse, require_fitted

__all__ = ["ContextualBT", "ContextEncoder", "contextual_log_likelihood"]

_Z95 = 1.959963984540054


class ContextEncoder:
    """Turns a context table into a standardised float matrix (fitted on the training battles).

    Boolean columns (and 0/1 columns) become one 0/1 column; other numeric
    columns are kept; text / categorical columns are one-hot coded against
    their first (sorted) level. Every column is then centred and scaled to
    unit standard deviation; columns constant in the training data are
    dropped (``dropped_``). A 2-D array is taken as numeric columns
    ``x0, x1, ...`` (e.g. a text embedding).

    Examples
    --------
    >>> enc = ContextEncoder().fit(pd.DataFrame({"math": [True, False, True, False], "lang": list("abca")}))
    >>> enc.names_
    ['math', 'lang=b', 'lang=c']
    >>> enc.transform(pd.DataFrame({"math": [True], "lang": ["a"]})).round(3).tolist()
    [[1.0, -0.577, -0.577]]
    """

    def __init__(self, columns: list[str] | None = None):
        self.columns = columns

    @staticmethod
    def _frame(context: Any) -> pd.DataFrame:
        if not isinstance(context, (pd.DataFrame, pd.Series)) and hasattr(context, "to_pandas"):
            context = context.to_pandas()  # polars / pyarrow tables
        if isinstance(context, pd.DataFrame):
            return context
        if isinstance(context, pd.Series):
            return context.to_frame().T if context.index.dtype == object else context.to_frame()
        if isinstance(context, dict):
            return pd.DataFrame({k: np.atleast_1d(v) for k, v in context.items()})
        arr = np.asarray(context, dtype=np.float64)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2:
            raise ComparisonDataError(f"context must be a DataFrame or a 2-D (n, d) array, got shape {arr.shape}.")
        return pd.DataFrame(arr, columns=[f"x{j}" for j in range(arr.shape[1])])

    def fit(self, context: Any) -> ContextEncoder:
        frame = self._frame(context)
        columns = list(frame.columns) if self.columns is None else list(self.columns)
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ComparisonDataError(f"context has no column(s) {missing}; it has {list(frame.columns)[:10]}.")
        self.columns_ = columns
        self.levels_: dict[str, list[Any]] = {}
        for column in columns:
            values = frame[column]
            self._check_missing(column, values)
            if not _is_numeric(values):
                self.levels_[column] = sorted(pd.unique(values.astype(str)).tolist())
        raw, names = self._raw(frame)
        mean, sd = raw.mean(axis=0), raw.std(axis=0)
        keep = sd > 1e-12 * np.maximum(1.0, np.abs(mean))
        self.dropped_ = [n for n, k in zip(names, keep, strict=True) if not k]
        if self.dropped_:
            warnings.warn(f"context column(s) {self.dropped_} are constant in the training battles and were dropped.",
                          UserWarning, stacklevel=3)
        self.names_ = [n for n, k in zip(names, keep, strict=True) if k]
        self._keep, self.mean_, self.scale_ = keep, mean[keep], sd[keep]
        return self

    @staticmethod
    def _check_missing(column: str, values: pd.Series) -> None:
        bad = np.flatnonzero(pd.isna(values).to_numpy())
        if len(bad):
            raise ComparisonDataError(f"context column {column!r} is missing in rows {bad[:10].tolist()} (0-based); "
                                      "fill or drop them.")

    def _raw(self, frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
        blocks, names = [], []
        for column in self.columns_:
            if column not in frame.columns:
                raise ComparisonDataError(f"context has no column {column!r} (the model was fitted with it).")
            values = frame[column]
            self._check_missing(column, values)
            if column in self.levels_:
                text = values.astype(str).to_numpy()
                unknown = ~np.isin(text, self.levels_[column])
                if unknown.any():
                    rows = np.flatnonzero(unknown)
                    raise ComparisonDataError(
                        f"context column {column!r} has level(s) {pd.unique(text[rows])[:10].tolist()} not seen in "
                        f"training (rows {rows[:10].tolist()}, 0-based); known levels: {self.levels_[column][:10]}.")
                for level in self.levels_[column][1:]:
                    blocks.append((text == level).astype(np.float64))
                    names.append(f"{column}={level}")
            else:
                blocks.append(values.to_numpy(dtype=np.float64))
                names.append(str(column))
        raw = np.column_stack(blocks) if blocks else np.zeros((len(frame), 0))
        return raw, names

    def transform(self, context: Any) -> np.ndarray:
        require_fitted(self, "names_")
        raw, _ = self._raw(self._frame(context))
        return np.asarray((raw[:, self._keep] - self.mean_) / self.scale_, dtype=np.float64)


def _is_numeric(values: pd.Series) -> bool:
    return bool(pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values))


def _outcome_classes(outcome: np.ndarray, ties: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-row weights of (left wins, tie, right wins) used by the likelihood."""
    if ties == "none":
        return outcome, np.zeros_like(outcome), 1.0 - outcome
    tie = (outcome == 0.5).astype(np.float64)
    return np.where(tie > 0, 0.0, outcome), tie, np.where(tie > 0, 0.0, 1.0 - outcome)


def contextual_log_likelihood(u: np.ndarray, log_nu: np.ndarray | None, outcome: np.ndarray,
                              weight: np.ndarray | None = None) -> float:
    """Log-likelihood of battles given ``u = theta_left(x) - theta_right(x)`` (and ``log nu(x)`` for Davidson).

    ``log_nu=None`` is the BT likelihood with soft labels (ties count half a
    win each way); otherwise Davidson's, with ``outcome == 0.5`` a tie.

    Examples
    --------
    >>> round(contextual_log_likelihood(np.array([0.0]), None, np.array([1.0])), 4)  # log 1/2
    -0.6931
    >>> round(contextual_log_likelihood(np.array([0.0]), np.array([0.0]), np.array([0.5])), 4)  # log 1/3
    -1.0986
    """
    w = np.ones_like(u) if weight is None else weight
    ya, yt, yb = _outcome_classes(np.asarray(outcome, np.float64), "none" if log_nu is None else "davidson")
    if log_nu is None:
        return float(w @ (ya * log_expit(u) + yb * log_expit(-u)))
    half = 0.5 * u
    norm = logsumexp(np.stack([half, -half, log_nu]), axis=0)
    return float(w @ (ya * (half - norm) + yt * (log_nu - norm) + yb * (-half - norm)))


def _local_terms(u: np.ndarray, log_nu: np.ndarray | None, ya: np.ndarray, yt: np.ndarray, yb: np.ndarray,
                 w: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Log-likelihood and its first/second derivatives in (u, log nu) per row (weighted)."""
    if log_nu is None:
        p = expit(u)
        ll = float(w @ (ya * log_expit(u) + yb * log_expit(-u)))
        total = ya + yb
        zero = np.zeros_like(u)
        return ll, w * (ya - total * p), zero, w * total * p * (1 - p), zero, zero
    half = 0.5 * u
    norm = logsumexp(np.stack([half, -half, log_nu]), axis=0)
    pa, pt, pb = np.exp(half - norm), np.exp(log_nu - norm), np.exp(-half - norm)
    ll = float(w @ (ya * (half - norm) + yt * (log_nu - norm) + yb * (-half - norm)))
    total = w * (ya + yt + yb)
    diff = pa - pb
    grad_u = w * 0.5 * (ya - yb) - total * 0.5 * diff
    grad_l = w * yt - total * pt
    h_uu = total * (0.25 * (pa + pb) - 0.25 * diff ** 2)
    h_ul = -total * 0.5 * diff * pt
    h_ll = total * pt * (1 - pt)
    return ll, grad_u, grad_l, h_uu, h_ul, h_ll


class _Problem:
    """The penalised negative log-likelihood of the linear model, its gradient and Hessian-vector product.

    Parameters are ``[vec(B) (K * p, row-major: item by column), g (q)]`` with
    ``p = 1 + d`` (intercept first) and ``q`` tie parameters (0, 1 or p). The
    objective is divided by the total weight; a gauge term
    ``0.5 * sum_c (sum_i B[i, c])^2`` removes the shift invariance without
    moving the optimum.
    """

    def __init__(self, left: np.ndarray, right: np.ndarray, xt: np.ndarray, outcome: np.ndarray, weight: np.ndarray,
                 n_items: int, ties: str, tie_context: bool, penalty: float):
        n, p = xt.shape
        self.k, self.p, self.n = n_items, p, n
        cols = np.concatenate([left[:, None] * p + np.arange(p), right[:, None] * p + np.arange(p)], axis=1)
        vals = np.concatenate([xt, -xt], axis=1)
        self.z = sparse.csr_matrix((vals.ravel(), cols.ravel(), np.arange(0, 2 * p * n + 1, 2 * p)),
                                   shape=(n, n_items * p))
        self.zt = self.z.T.tocsr()
        self.ties = ties
        self.xl = None if ties == "none" else (xt if tie_context else np.ones((n, 1)))
        self.q = 0 if self.xl is None else self.xl.shape[1]
        self.ya, self.yt, self.yb = _outcome_classes(outcome, ties)
        self.w = weight
        self.scale = 1.0 / max(float(weight.sum()), np.finfo(float).tiny)
        mask = np.zeros((n_items, p))
        mask[:, 1:] = 1.0
        self.penalty_mask = np.concatenate([mask.ravel(), np.r_[0.0, np.ones(self.q - 1)] if self.q else []])
        self.penalty = penalty
        self.size = n_items * p + self.q
        self._cache: tuple[bytes, tuple[Any, ...]] | None = None

    def split(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return theta[: self.k * self.p], theta[self.k * self.p:]

    def linear(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        b, g = self.split(theta)
        return self.z @ b, (None if self.xl is None else self.xl @ g)

    def _terms(self, theta: np.ndarray) -> tuple[Any, ...]:
        key = theta.tobytes()
        if self._cache is None or self._cache[0] != key:
            u, log_nu = self.linear(theta)
            self._cache = (key, _local_terms(u, log_nu, self.ya, self.yt, self.yb, self.w))
        return self._cache[1]

    def _gauge(self, b: np.ndarray) -> np.ndarray:
        return np.broadcast_to(b.reshape(self.k, self.p).sum(axis=0), (self.k, self.p)).ravel()

    def value(self, theta: np.ndarray) -> float:
        ll = self._terms(theta)[0]
        b, _ = self.split(theta)
        sums = b.reshape(self.k, self.p).sum(axis=0)
        pen = 0.5 * self.penalty * float(theta @ (self.penalty_mask * theta))
        return (-ll + pen) * self.scale + 0.5 * float(sums @ sums)

    def gradient(self, theta: np.ndarray) -> np.ndarray:
        _, grad_u, grad_l, *_ = self._terms(theta)
        b, _ = self.split(theta)
        g = np.concatenate([-(self.zt @ grad_u), [] if self.xl is None else -(self.xl.T @ grad_l)])
        g = (g + self.penalty * self.penalty_mask * theta) * self.scale
        g[: self.k * self.p] += self._gauge(b)
        return g

    def hessp(self, theta: np.ndarray, v: np.ndarray) -> np.ndarray:
        *_, h_uu, h_ul, h_ll = self._terms(theta)
        vb, vg = self.split(v)
        du = self.z @ vb
        if self.xl is None:
            out = self.zt @ (h_uu * du)
        else:
            dl = self.xl @ vg
            out = np.concatenate([self.zt @ (h_uu * du + h_ul * dl), self.xl.T @ (h_ul * du + h_ll * dl)])
        out = (out + self.penalty * self.penalty_mask * v) * self.scale
        out[: self.k * self.p] += self._gauge(vb)
        return np.asarray(out)

    def information(self, theta: np.ndarray) -> np.ndarray:
        """The Hessian of the penalised negative log-likelihood on the sum scale (no gauge term), dense."""
        *_, h_uu, h_ul, h_ll = self._terms(theta)
        zb = self.z
        blocks = (zb.T @ zb.multiply(h_uu[:, None])).toarray()
        if self.xl is not None:
            cross = np.asarray(zb.T @ (self.xl * h_ul[:, None]))
            tie = (self.xl * h_ll[:, None]).T @ self.xl
            blocks = np.block([[blocks, cross], [cross.T, tie]])
        return np.asarray(blocks + np.diag(self.penalty * self.penalty_mask))


class ContextualBT:
    """Prompt-conditioned Bradley-Terry / Davidson: per-item coefficients ``theta(x) = beta + W x``.

    Parameters
    ----------
    features : list of str, optional
        Context columns to use (default: all columns of ``context``).
    ties : {"none", "davidson"}
        ``"none"``: BT with ties as half wins; ``"davidson"``: a tie class with
        parameter ``nu(x)``.
    tie_context : bool
        Let ``log nu`` depend linearly on the context as well.
    penalty : float or "auto"
        Ridge precision on ``W`` (and the tie slopes), on the scale of the
        summed log-likelihood over standardised features: ``0`` = one free
        leaderboard per context cell, ``inf`` = the global model. ``"auto"``
        picks it from ``penalty_grid`` by held-out log-loss on a random
        ``validation`` share of the battles, then refits on all of them.
    kind : {"linear", "neural"}
        ``"neural"``: an MLP (``hidden`` units, torch) maps ``x`` to the
        coefficients; trained with Adam (``weight_decay``, ``learning_rate``)
        with early stopping on the validation split (``patience`` epochs).
        ``torch_threads`` (default 1: a small network trains fastest on one
        thread) is set for the fit and restored after; None keeps torch's.
    seed : int
        Seeds the validation split and the neural network.

    Attributes
    ----------
    items_, feature_names_, coef_ (DataFrame items x ["(intercept)", features...]),
    tie_coef_ (Series or None), covariance_ (linear, when the parameter count
    is at most ``max_covariance_params``; the inverse penalised Hessian on
    the subspace of centred coefficients: a Wald covariance at ``penalty=0``,
    a Laplace posterior covariance under ``W ~ N(0, 1 / penalty)`` otherwise),
    converged_, n_iter_, log_likelihood_, penalty_ (the penalty used),
    penalty_path_ (DataFrame with penalty, validation_log_loss, converged;
    ``penalty="auto"``: non-converged grid fits warn and are not chosen).

    Examples
    --------
    >>> import bradley
    >>> rng = np.random.default_rng(0)
    >>> n = 3000
    >>> a, b = rng.integers(0, 3, n), rng.integers(0, 3, n)
    >>> keep = a != b
    >>> math = rng.random(n) < 0.5
    >>> skill = np.where(math[:, None], [[1.0, 0.0, -1.0]], [[-1.0, 0.0, 1.0]])
    >>> p = 1 / (1 + np.exp(-(skill[np.arange(n), a] - skill[np.arange(n), b])))
    >>> data = bradley.Comparisons.from_codes(a[keep], b[keep], (rng.random(n) < p)[keep].astype(float),
    ...                                       items=["x", "y", "z"])
    >>> m = ContextualBT(penalty=1.0).fit(data, pd.DataFrame({"math": math[keep]}))
    >>> m.leaderboard({"math": True})["item"].tolist()
    ['x', 'y', 'z']
    >>> m.leaderboard({"math": False})["item"].tolist()
    ['z', 'y', 'x']
    """

    def __init__(self, features: list[str] | None = None, ties: str = "none", tie_context: bool = False,
                 penalty: float | str = "auto", kind: str = "linear", *,
                 penalty_grid: tuple[float, ...] = (0.3, 3.0, 30.0, 300.0, 3000.0), validation: float = 0.2,
                 tol: float = 1e-8, max_iter: int = 500, max_covariance_params: int = 4000,
                 hidden: int = 64, learning_rate: float = 3e-3, weight_decay: float = 1e-4, epochs: int = 300,
                 patience: int = 20, batch_size: int = 4096, torch_threads: int | None = 1, seed: int = 0):
        self.features = features
        self.ties = ties
        self.tie_context = tie_context
        self.penalty = penalty
        self.kind = kind
        self.penalty_grid = penalty_grid
        self.validation = validation
        self.tol = tol
        self.max_iter = max_iter
        self.max_covariance_params = max_covariance_params
        self.hidden = hidden
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.patience = patience
        self.batch_size = batch_size
        self.torch_threads = torch_threads
        self.seed = seed

    # ------------------------------------------------------------------ input
    def _check_options(self) -> None:
        if self.ties not in ("none", "davidson"):
            raise ValueError(f"ties must be 'none' or 'davidson', got {self.ties!r}.")
        if self.kind not in ("linear", "neural"):
            raise ValueError(f"kind must be 'linear' or 'neural', got {self.kind!r}.")
        if isinstance(self.penalty, str):
            if self.penalty != "auto":
                raise ValueError(f"penalty must be a non-negative number or 'auto', got {self.penalty!r}.")
        elif not (self.penalty >= 0):
            raise ValueError(f"penalty must be a non-negative number or 'auto', got {self.penalty!r}.")

    @staticmethod
    def _inputs(data: Any, context: Any) -> tuple[Comparisons, Any]:
        if isinstance(context, (list, tuple)) and context and all(isinstance(c, str) for c in context):
            if not hasattr(data, "columns"):
                raise ComparisonDataError("context given as column names needs data as a DataFrame holding them.")
            context = data[list(context)]
        comparisons = as_comparisons(data)
        if context is not None:
            n = len(context) if hasattr(context, "__len__") else -1
            if n != comparisons.n_comparisons:
                raise ComparisonDataError(
                    f"context has {n} rows but the data have {comparisons.n_comparisons} battles: pass one context "
                    "row per battle, in the same order (drop self-comparisons from both first)."
                )
        return comparisons, context

    def _design(self, context: Any, n: int) -> np.ndarray:
        x = np.zeros((n, 0)) if context is None else self.encoder_.transform(context)
        return np.column_stack([np.ones(len(x)), x])

    # -------------------------------------------------------------------- fit
    def fit(self, data: Any, context: Any = None) -> ContextualBT:
        """Fit on battles ``data`` with one ``context`` row per battle; returns self.

        ``context``: a DataFrame (tags / numeric columns), a 2-D array (an
        embedding), column names of ``data`` (when it is a DataFrame), or None
        (the global model). Row weights are those of the battles (``Comparisons.weight``).
        """
        self._check_options()
        comparisons, context = self._inputs(data, context)
        self.items_ = np.asarray(comparisons.items, dtype=object)
        self._index = ItemIndex(self.items_)
        check_mle_exists(comparisons.pair_counts())
        if context is None:
            self.encoder_ = ContextEncoder().fit(np.zeros((comparisons.n_comparisons, 0)))
        else:
            self.encoder_ = ContextEncoder(self.features).fit(context)
        self.feature_names_ = list(self.encoder_.names_)
        xt = self._design(context, comparisons.n_comparisons)
        w = np.ones(comparisons.n_comparisons) if comparisons.weight is None else np.asarray(comparisons.weight, float)
        rows = (comparisons.left, comparisons.right, xt, np.asarray(comparisons.outcome, np.float64), w)
        if self.kind == "neural":
            self._fit_neural(*rows)
            return self
        penalty = self.penalty
        if penalty == "auto":
            penalty = self._choose_penalty(*rows)
        self.penalty_ = float(penalty)
        self._fit_linear(*rows, penalty=self.penalty_)
        return self

    def _split(self, n: int) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        return rng.random(n) < self.validation

    def _choose_penalty(self, left: np.ndarray, right: np.ndarray, xt: np.ndarray, outcome: np.ndarray,
                        w: np.ndarray) -> float:
        held = self._split(len(left))
        rows = []
        theta = None
        for penalty in sorted(self.penalty_grid, reverse=True):
            problem = _Problem(left[~held], right[~held], xt[~held], outcome[~held], w[~held], len(self.items_),
                               self.ties, self.tie_context, float(penalty))
            theta, converged, _ = _minimise(problem, theta, self.tol, self.max_iter)
            test = _Problem(left[held], right[held], xt[held], outcome[held], w[held], len(self.items_),
                            self.ties, self.tie_context, 0.0)
            u, log_nu = test.linear(theta)
            loss = -contextual_log_likelihood(u, log_nu, outcome[held], w[held]) / max(w[held].sum(), 1e-300)
            rows.append({"penalty": float(penalty), "validation_log_loss": loss, "converged": bool(converged)})
        path = pd.DataFrame(rows).sort_values("penalty").reset_index(drop=True)
        self.penalty_path_ = path
        ok = path["converged"].to_numpy(dtype=bool)
        if not ok.all():
            failed = path.loc[~ok, "penalty"].tolist()
            which = "choosing among the converged ones" if ok.any() else "none converged; choosing among all of them"
            warnings.warn(f"ContextualBT(penalty='auto'): the training fits at penalty {failed} did not converge in "
                          f"{self.max_iter} iterations ({which}); raise max_iter.", ConvergenceWarning, stacklevel=3)
        pool = path[ok] if ok.any() else path
        return float(pool.loc[pool["validation_log_loss"].idxmin(), "penalty"])

    def _fit_linear(self, left: np.ndarray, right: np.ndarray, xt: np.ndarray, outcome: np.ndarray, w: np.ndarray,
                    penalty: float) -> None:
        k, p = len(self.items_), xt.shape[1]
        if np.isinf(penalty):
            # the global model: W = 0 exactly; fit the intercepts (and tie intercept) alone
            sub = _Problem(left, right, xt[:, :1], outcome, w, k, self.ties, False, 0.0)
            theta1, converged, n_iter = _minimise(sub, None, self.tol, self.max_iter)
            b = np.zeros((k, p))
            b[:, 0] = theta1[:k]
            q = 0 if self.ties == "none" else (p if self.tie_context else 1)
            g = np.zeros(q)
            if q:
                g[0] = theta1[k]
            theta = np.concatenate([b.ravel(), g])
            problem = _Problem(left, right, xt, outcome, w, k, self.ties, self.tie_context, 0.0)
        else:
            problem = _Problem(left, right, xt, outcome, w, k, self.ties, self.tie_context, penalty)
            theta, converged, n_iter = _minimise(problem, None, self.tol, self.max_iter)
        self.converged_, self.n_iter_ = bool(converged), int(n_iter)
        if not converged:
            warnings.warn(f"ContextualBT did not converge in {n_iter} iterations (penalty={penalty}); "
                          "raise max_iter or the penalty.", ConvergenceWarning, stacklevel=3)
        b, g = problem.split(theta)
        self._b = b.reshape(k, p)
        self._g = g
        big = np.abs(self._b).max(axis=1) > 25
        if big.any():
            raise MLEDoesNotExistError(
                f"the coefficients of {self.items_[big][:8].tolist()} diverge (|coefficient| > 25): some item never "
                "loses (or never wins) within a context cell; use a penalty > 0 (e.g. penalty='auto')."
            )
        if len(self._g):
            # a tie rate that runs off to 0 (or 1) somewhere: the gradient test stops at |log nu| of about
            # log(1 / tol) on the linear-predictor scale, well before the coefficients themselves pass 25
            log_nu_rows = xt[:, : len(self._g)] @ self._g
            if np.abs(self._g).max() > 25 or np.abs(log_nu_rows).max() > 12:
                raise MLEDoesNotExistError(
                    f"the tie coefficients {np.round(self._g, 2).tolist()[:8]} diverge (|coefficient| > 25 or "
                    f"|log nu(x)| up to {np.abs(log_nu_rows).max():.1f} > 12 on the training battles): ties never "
                    "(or always) occur within a context cell; use a penalty > 0 (e.g. penalty='auto'), "
                    "tie_context=False or ties='none'."
                )
        u, log_nu = problem.linear(theta)
        self.log_likelihood_ = contextual_log_likelihood(u, log_nu, outcome, w)
        self.covariance_: np.ndarray | None = None
        if problem.size <= self.max_covariance_params:
            if np.isinf(penalty):
                self.covariance_ = self._global_covariance(left, right, xt, outcome, w)
            else:
                gauge = np.zeros((problem.size, p))
                for c in range(p):
                    gauge[np.arange(k) * p + c, c] = 1.0 / np.sqrt(k)
                # gauge spans the null space of the likelihood Hessian; with a penalty the slope-shift directions
                # have eigenvalue `penalty` instead of 0, so project them out (covariance of the centred estimate)
                proj = np.eye(problem.size) - gauge @ gauge.T
                self.covariance_ = proj @ gauged_inverse(problem.information(theta), gauge) @ proj
        self._set_tables()

    def _global_covariance(self, left: np.ndarray, right: np.ndarray, xt: np.ndarray, outcome: np.ndarray,
                           w: np.ndarray) -> np.ndarray:
        k, p = len(self.items_), xt.shape[1]
        sub = _Problem(left, right, xt[:, :1], outcome, w, k, self.ties, False, 0.0)
        theta1 = np.concatenate([self._b[:, 0], self._g[:1]])
        gauge = np.zeros((sub.size, 1))
        gauge[:k, 0] = 1.0 / np.sqrt(k)
        small = gauged_inverse(sub.information(theta1), gauge)
        size = k * p + len(self._g)
        index = np.concatenate([np.arange(k) * p, k * p + np.arange(min(1, len(self._g)))])
        cov = np.zeros((size, size))
        cov[np.ix_(index, index)] = small
        return cov

    def _set_tables(self) -> None:
        names = ["(intercept)", *self.feature_names_]
        self.coef_ = pd.DataFrame(self._b, index=pd.Index(self.items_, name="item"), columns=names)
        self.tie_coef_ = None if self.ties == "none" else pd.Series(
            self._g, index=names[: len(self._g)], name="log_nu")

    # ------------------------------------------------------------------ neural
    def _fit_neural(self, left: np.ndarray, right: np.ndarray, xt: np.ndarray, outcome: np.ndarray,
                    w: np.ndarray) -> None:
        import torch

        threads = torch.get_num_threads()
        if self.torch_threads is not None:
            torch.set_num_threads(self.torch_threads)
        try:
            self._train_network(torch, left, right, xt, outcome, w)
        finally:
            torch.set_num_threads(threads)

    def _train_network(self, torch: Any, left: np.ndarray, right: np.ndarray, xt: np.ndarray, outcome: np.ndarray,
                       w: np.ndarray) -> None:
        torch.manual_seed(self.seed)
        held = self._split(len(left))
        k, d = len(self.items_), xt.shape[1] - 1
        ties = self.ties != "none"
        net = torch.nn.Sequential(torch.nn.Linear(max(d, 1), self.hidden), torch.nn.GELU(),
                                  torch.nn.Linear(self.hidden, k + int(ties))).double()
        x_all = torch.from_numpy(xt[:, 1:] if d else np.zeros((len(xt), 1)))
        ya, yt, yb = (torch.from_numpy(v) for v in _outcome_classes(outcome, self.ties))
        li, ri, wt = torch.from_numpy(left), torch.from_numpy(right), torch.from_numpy(w)

        def nll(rows: Any) -> Any:
            out = net(x_all[rows])
            theta = out[:, :k] - out[:, :k].mean(dim=1, keepdim=True)
            r = torch.arange(len(theta))
            u = theta[r, li[rows]] - theta[r, ri[rows]]
            if ties:
                half = 0.5 * u
                norm = torch.logsumexp(torch.stack([half, -half, out[:, k]]), dim=0)
                ll = ya[rows] * (half - norm) + yt[rows] * (out[:, k] - norm) + yb[rows] * (-half - norm)
            else:
                ll = ya[rows] * torch.nn.functional.logsigmoid(u) + yb[rows] * torch.nn.functional.logsigmoid(-u)
            return -(wt[rows] * ll).sum() / wt[rows].sum()

        train_rows = torch.from_numpy(np.flatnonzero(~held))
        val_rows = torch.from_numpy(np.flatnonzero(held))
        optimiser = torch.optim.AdamW(net.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        best, best_state, since, epoch = np.inf, None, 0, 0
        generator = torch.Generator().manual_seed(self.seed)
        for epoch in range(1, self.epochs + 1):  # noqa: B007 (reported as n_iter_)
            net.train()
            order = train_rows[torch.randperm(len(train_rows), generator=generator)]
            for start in range(0, len(order), self.batch_size):
                optimiser.zero_grad()
                loss = nll(order[start:start + self.batch_size])
                loss.backward()
                optimiser.step()
            net.eval()
            with torch.no_grad():
                val = float(nll(val_rows)) if len(val_rows) else float(nll(train_rows))
            if val < best - 1e-6:
                best, since = val, 0
                best_state = {name: t.clone() for name, t in net.state_dict().items()}
            else:
                since += 1
                if since >= self.patience:
                    break
        if best_state is not None:
            net.load_state_dict(best_state)
        self._net = net
        self.converged_ = since >= self.patience
        self.n_iter_ = epoch
        self.validation_log_loss_ = best
        if not self.converged_:
            warnings.warn(f"ContextualBT(kind='neural') was still improving after {epoch} epochs; raise epochs.",
                          ConvergenceWarning, stacklevel=3)
        self.covariance_ = None
        self.penalty_ = float("nan")
        theta, log_nu = self._coefficients_array(xt)
        u = theta[np.arange(len(left)), left] - theta[np.arange(len(left)), right]
        self.log_likelihood_ = contextual_log_likelihood(u, log_nu, outcome, w)

    # ------------------------------------------------------------- prediction
    def _coefficients_array(self, xt: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        if self.kind == "neural" and hasattr(self, "_net"):
            import torch

            k = len(self.items_)
            with torch.no_grad():
                x = torch.from_numpy(xt[:, 1:] if xt.shape[1] > 1 else np.zeros((len(xt), 1)))
                out = self._net(x).numpy()
            theta = out[:, :k] - out[:, :k].mean(axis=1, keepdims=True)
            return theta, (out[:, k] if self.ties != "none" else None)
        theta = xt @ self._b.T
        if self.ties == "none":
            return theta, None
        return theta, xt[:, : len(self._g)] @ self._g

    def coefficients(self, context: Any = None) -> pd.DataFrame:
        """Per-item coefficients ``theta(x)`` (centred over items), one row per context row, one column per item.

        ``context=None`` gives the average training context (``beta``).
        """
        require_fitted(self, "items_")
        xt = self._context_design(context)
        theta, _ = self._coefficients_array(xt)
        return pd.DataFrame(theta, columns=pd.Index(self.items_, name="item"))

    def _context_design(self, context: Any) -> np.ndarray:
        if context is None:
            return np.r_[1.0, np.zeros(len(self.feature_names_))][None, :]
        return np.column_stack([np.ones(len(x := self.encoder_.transform(context))), x])

    def win_probabilities(self, context: Any = None) -> np.ndarray:
        """Array (n_contexts, K, K): ``P(i beats j | x)`` with a tie counted as half a win."""
        require_fitted(self, "items_")
        return self._win_xt(self._context_design(context))

    def _win_xt(self, xt: np.ndarray) -> np.ndarray:
        theta, log_nu = self._coefficients_array(xt)
        d = theta[:, :, None] - theta[:, None, :]
        if log_nu is None:
            return np.asarray(expit(d))
        half = 0.5 * d
        nu = np.broadcast_to(log_nu[:, None, None], d.shape)
        norm = logsumexp(np.stack([half, -half, nu]), axis=0)
        return np.asarray(np.exp(half - norm) + 0.5 * np.exp(nu - norm))

    def leaderboard(self, context: Any = None, level: float = 0.95) -> pd.DataFrame:
        """The leaderboard of one prompt (one context row; None = the average training prompt), best first.

        Columns: item, score (``theta_i(x)``, centred over items), se, lower,
        upper (delta method from the inverse penalised Hessian; NaN for the
        neural model or when the covariance was not computed). With
        ``penalty_ = 0`` these are Wald intervals; with a penalty they are
        approximate (Laplace) posterior credible intervals under the prior
        ``W ~ N(0, 1 / penalty)`` per standardised column, and a penalty
        chosen by ``"auto"`` is treated as fixed (its selection is not
        propagated), rank, expected_win_rate (against the
        other items, ties half).
        """
        require_fitted(self, "items_")
        xt = self._context_design(context)
        if len(xt) != 1:
            raise ValueError(f"leaderboard() takes one context row, got {len(xt)}; use coefficients() for many.")
        return self._leaderboard_xt(xt[0], level)

    def _leaderboard_xt(self, x: np.ndarray, level: float) -> pd.DataFrame:
        xt = x[None, :]
        theta, _ = self._coefficients_array(xt)
        score = theta[0]
        se = np.full(len(score), np.nan)
        if getattr(self, "covariance_", None) is not None:
            cov = np.asarray(self.covariance_)
            k, p = self._b.shape
            for i in range(k):
                block = cov[i * p:(i + 1) * p, i * p:(i + 1) * p]
                se[i] = np.sqrt(max(float(x @ block @ x), 0.0))
        from scipy.special import ndtri

        z = float(ndtri(0.5 + level / 2)) if level != 0.95 else _Z95
        win = self._win_xt(xt)[0]
        others = (win.sum(axis=1) - np.diag(win)) / max(len(score) - 1, 1)
        table = pd.DataFrame({"item": self.items_, "score": score, "se": se, "lower": score - z * se,
                              "upper": score + z * se, "expected_win_rate": others})
        table["rank"] = pd.Series(-score).rank(method="min").astype(np.int64).to_numpy()
        return table.sort_values("rank", kind="stable").reset_index(drop=True)

    def category_leaderboards(self, column: str, context: Any, level: float = 0.95) -> pd.DataFrame:
        """One leaderboard per value of the context ``column``, at the mean context of the rows with that value.

        For the linear model the mean of ``theta(x)`` over a set of prompts
        equals ``theta`` at their mean context, so score, se and interval are
        those of the leaderboard at the category's mean context (delta
        method); the neural model averages the prompts' coefficients (no
        intervals). For both, ``expected_win_rate`` is the mean over the
        category's prompts of each prompt's expected win rate (the win
        probability is not linear in ``theta``, so it is not the rate at the
        mean context). Returns a long table with a
        ``column`` value column and ``n_prompts``.
        """
        frame = ContextEncoder._frame(context)
        if column not in frame.columns:
            raise ComparisonDataError(f"context has no column {column!r}.")
        xt = self._context_design(frame)
        tables = []
        for value in pd.unique(frame[column]):
            rows = (frame[column] == value).to_numpy()
            if self.kind == "neural":  # nonlinear: average the prompts' coefficients and win rates
                theta, _ = self._coefficients_array(xt[rows])
                win = self._win_xt(xt[rows])
                k = theta.shape[1]
                table = pd.DataFrame({"item": self.items_, "score": theta.mean(axis=0), "se": np.nan, "lower": np.nan,
                                      "upper": np.nan, "expected_win_rate":
                                      ((win.sum(axis=2) - np.diagonal(win, axis1=1, axis2=2)) / max(k - 1, 1)).mean(0)})
                table["rank"] = pd.Series(-table["score"]).rank(method="min").astype(np.int64).to_numpy()
                table = table.sort_values("rank", kind="stable").reset_index(drop=True)
            else:
                table = self._leaderboard_xt(xt[rows].mean(axis=0), level)
                win = self._win_xt(xt[rows])
                k = win.shape[1]
                rate = ((win.sum(axis=2) - np.diagonal(win, axis1=1, axis2=2)) / max(k - 1, 1)).mean(0)
                table["expected_win_rate"] = rate[self._index.codes(table["item"].to_numpy())]
            table.insert(0, column, value)
            table.insert(1, "n_prompts", int(rows.sum()))
            tables.append(table)
        return pd.concat(tables, ignore_index=True)

    def predict_proba(self, data: Any, context: Any = None) -> np.ndarray:
        """Array (n, 3): ``P(left wins)``, ``P(tie)``, ``P(right wins)`` for each battle given its context."""
        require_fitted(self, "items_")
        comparisons, context = self._inputs(data, context)
        li, ri = self._index.codes(comparisons.items[comparisons.left]), self._index.codes(
            comparisons.items[comparisons.right])
        if context is None and self.feature_names_:
            raise ComparisonDataError(f"this model uses context features {self.feature_names_[:5]}: pass context, "
                                      "one row per battle.")
        xt = self._design(context, comparisons.n_comparisons)
        theta, log_nu = self._coefficients_array(xt)
        rows = np.arange(len(li))
        u = theta[rows, li] - theta[rows, ri]
        if log_nu is None:
            p = expit(u)
            return np.stack([p, np.zeros_like(p), 1 - p], axis=1)
        half = 0.5 * u
        norm = logsumexp(np.stack([half, -half, log_nu]), axis=0)
        return np.exp(np.stack([half - norm, log_nu - norm, -half - norm], axis=1))

    def log_loss(self, data: Any, context: Any = None, kind: str = "auto") -> float:
        """Held-out mean log-loss per battle.

        ``kind``: ``"three-way"`` (Davidson: ``-log P(observed class)`` with
        ties a class), ``"binary"`` (decisive battles only: ``-log P(winner |
        decisive)``; for Davidson this is the BT probability ``expit(d)``),
        ``"soft"`` (the outcome in [0, 1], a tie 0.5, scored against
        ``q = P(left wins) + P(tie) / 2``: ``-(o log q + (1 - o) log(1 - q))``,
        a proper score for both models); ``"auto"``: three-way for Davidson,
        soft for BT.
        """
        comparisons, context = self._inputs(data, context)
        prob = self.predict_proba(comparisons, context)
        o = np.asarray(comparisons.outcome, np.float64)
        w = np.ones(len(o)) if comparisons.weight is None else np.asarray(comparisons.weight, np.float64)
        if kind == "auto":
            kind = "soft" if self.ties == "none" else "three-way"
        eps = 1e-300
        if kind == "binary":
            decisive = o != 0.5
            pl = prob[decisive, 0] / np.maximum(prob[decisive, 0] + prob[decisive, 2], eps)
            od, wd = o[decisive], w[decisive]
            ll = od * np.log(np.maximum(pl, eps)) + (1 - od) * np.log(np.maximum(1 - pl, eps))
            return float(-(wd @ ll) / wd.sum())
        if kind == "soft":
            q, r = prob[:, 0] + 0.5 * prob[:, 1], prob[:, 2] + 0.5 * prob[:, 1]  # P(left wins), a tie half
            ll = o * np.log(np.maximum(q, eps)) + (1 - o) * np.log(np.maximum(r, eps))
            return float(-(w @ ll) / w.sum())
        if kind == "three-way":
            if self.ties == "none":
                raise ValueError("three-way log-loss needs ties='davidson'.")
            ya, yt, yb = _outcome_classes(o, "davidson")
            ll = ya * np.log(np.maximum(prob[:, 0], eps)) + yt * np.log(np.maximum(prob[:, 1], eps)) \
                + yb * np.log(np.maximum(prob[:, 2], eps))
            return float(-(w @ ll) / w.sum())
        raise ValueError(f"kind must be 'auto', 'three-way', 'binary' or 'soft', got {kind!r}.")

    def summary(self) -> pd.DataFrame:
        """The coefficient table in long form: item, feature, estimate, se (NaN without covariance).

        Feature coefficients are per standard deviation of the (encoded)
        feature over the training battles; the intercept is the item's score
        at the average training context.
        """
        require_fitted(self, "coef_")
        long = self.coef_.stack().rename("estimate").reset_index()
        long.columns = ["item", "feature", "estimate"]
        se = np.full(len(long), np.nan)
        if getattr(self, "covariance_", None) is not None:
            se = np.sqrt(np.clip(np.diag(np.asarray(self.covariance_))[: self._b.size], 0, None))
        long["se"] = se
        return long


def _minimise(problem: _Problem, start: np.ndarray | None, tol: float, max_iter: int) -> tuple[np.ndarray, bool, int]:
    from scipy.optimize import minimize

    x0 = np.zeros(problem.size) if start is None or len(start) != problem.size else start
    result = minimize(problem.value, x0, jac=problem.gradient, hessp=problem.hessp, method="trust-ncg",
                      options={"gtol": tol, "maxiter": max_iter})
    converged = bool(np.max(np.abs(problem.gradient(result.x))) <= 10 * tol)
    return np.asarray(result.x), converged, int(result.nit)
