"""Bayesian Bradley-Terry models sampled with NUTS (NumPyro, an optional dependency).

:class:`BayesianBT` samples the posterior of the item scores of the BT model,
the Davidson and Rao-Kupper tie models, with an optional first-mover (home)
advantage and comparison-level covariates, under a Gaussian prior on the
scores. BayesElo's model (Coulom) is a named configuration
(:meth:`BayesianBT.bayeselo`): Rao-Kupper ties with a fixed draw threshold and
a fixed first-mover advantage, and virtual draws as the prior.

:class:`GradeScaleBT` is the climbing-grade model: climbers "beat" routes,
route difficulties are regressed on their grade with a hierarchical prior on
the grade steps, and climbers' strengths follow a Gaussian random walk in time.

The likelihood is evaluated on aggregated cells (one per ordered pair and
order indicator, or per row with covariates), so millions of rows among a few
hundred items cost as much as their distinct pairs. Scores are sampled in the
mean-zero subspace (an orthonormal Helmert basis, O(n) per evaluation): a
``N(0, prior_sd^2)`` prior on every raw score gives exactly the posterior of
the centred scores that ``BradleyTerry(prior=prior_sd**2)`` maximises, so the
MAP here equals that fit and the Laplace covariance its ``covariance_``.

NumPyro and JAX are imported inside the functions that need them: importing
:mod:`bradley` does not load them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from bradley.data import Comparisons, PairCounts
from bradley.errors import ComparisonDataError, ConvergenceWarning
from bradley.models.base import ItemIndex, as_comparisons, require_fitted, summary_table
from bradley.scales import ELO_SCALE

__all__ = ["BayesianBT", "GradeScaleBT", "helmert_scores", "BAYESELO_DEFAULTS"]

FAMILIES = (None, "davidson", "rao-kupper")
#: BayesElo's defaults (Elo points; prior = number of virtual draws per player).
BAYESELO_DEFAULTS = {"elo_advantage": 32.8, "elo_draw": 97.3, "prior": 2.0}
#: R-hat above this (or any divergent transition) makes ``converged_`` False and warns.
RHAT_MAX = 1.01
#: Effective sample size (all chains together) below this, for any reported quantity, does the same.
ESS_MIN = 100.0


def helmert_scores(z: Any, xp: Any = np) -> Any:
    """Mean-zero scores ``Q z`` from ``n - 1`` coordinates in an orthonormal (Helmert) basis, in O(n).

    Column ``k`` (1-based) of ``Q`` is ``(1, ..., 1, -k, 0, ..., 0) / sqrt(k (k + 1))``
    with ``k`` ones. ``xp`` is the array module (numpy or jax.numpy).

    Examples
    --------
    >>> s = helmert_scores(np.array([1.0, 2.0]))
    >>> round(float(s.sum()), 12), round(float(np.sum(s ** 2)), 12)
    (0.0, 5.0)
    """
    k = xp.arange(1, z.shape[-1] + 1, dtype=z.dtype)
    c = z / xp.sqrt(k * (k + 1))
    # s_j = sum_{k > j} c_k - j c_j  (with c_0 = 0)
    tail = xp.cumsum(c[..., ::-1], axis=-1)[..., ::-1]
    zero = xp.zeros(z.shape[:-1] + (1,), dtype=z.dtype)
    tail_after = xp.concatenate([tail, zero], axis=-1)
    own = xp.concatenate([zero, k * c], axis=-1)
    return tail_after - own


def _log_sigmoid(xp: Any, x: Any) -> Any:
    return -xp.logaddexp(0.0, -x)


def outcome_log_probs(d: Any, family: str | None, tie: Any = 0.0, xp: Any = np) -> tuple[Any, Any, Any]:
    """Log-probabilities of (left wins, tie, right wins) given the log-odds ``d``.

    ``family=None`` is plain BT (the tie entry is ``log(1/2)`` of the
    half-win convention and unused); ``"davidson"`` takes ``tie = log nu``;
    ``"rao-kupper"`` takes ``tie = alpha > 0`` (the log-odds threshold).

    Examples
    --------
    >>> lw, lt, ll = outcome_log_probs(np.array([0.3]), "rao-kupper", 0.5)
    >>> round(float(np.exp(lw[0]) + np.exp(lt[0]) + np.exp(ll[0])), 12)
    1.0
    """
    if family is None:
        return _log_sigmoid(xp, d), xp.full_like(d, np.log(0.5)), _log_sigmoid(xp, -d)
    if family == "davidson":
        half = 0.5 * d
        norm = xp.logaddexp(xp.logaddexp(half, -half), tie)
        return half - norm, tie - norm, -half - norm
    lw, ll = _log_sigmoid(xp, d - tie), _log_sigmoid(xp, -d - tie)
    # P(tie) = 1 - s(d - a) - s(-d - a) = (e^{2a} - 1) s(d - a) s(-d - a)
    log_gap = 2 * tie + xp.log(-xp.expm1(-2 * tie))
    return lw, log_gap + lw + ll, ll


@dataclass
class _Cells:
    left: np.ndarray
    right: np.ndarray
    order: np.ndarray
    win: np.ndarray
    tie: np.ndarray
    loss: np.ndarray
    features: np.ndarray | None

    @property
    def total(self) -> np.ndarray:
        return self.win + self.tie + self.loss


def _cells_from(data: Comparisons, use_order: bool, use_features: bool) -> _Cells:
    """Aggregate rows into (left, right, order) cells, or keep rows when they carry covariates."""
    w = np.ones(data.n_comparisons) if data.weight is None else np.asarray(data.weight, dtype=np.float64)
    o = np.asarray(data.outcome, dtype=np.float64)
    is_tie = o == 0.5
    win = np.where(is_tie, 0.0, w * o)
    loss = np.where(is_tie, 0.0, w * (1.0 - o))
    tie = np.where(is_tie, w, 0.0)
    order = np.zeros(len(o)) if not use_order else (
        np.ones(len(o)) if data.order is None else np.asarray(data.order, dtype=np.float64))
    if use_features:
        assert data.features is not None
        return _Cells(data.left.copy(), data.right.copy(), order, win, tie, loss,
                      np.asarray(data.features, dtype=np.float64))
    frame = pd.DataFrame({"l": data.left, "r": data.right, "o": order, "win": win, "tie": tie, "loss": loss})
    if not use_order:
        # unordered: put the smaller code first and swap its counts
        swap = frame["l"].to_numpy() > frame["r"].to_numpy()
        lo, hi = np.minimum(data.left, data.right), np.maximum(data.left, data.right)
        frame = pd.DataFrame({"l": lo, "r": hi, "o": order, "win": np.where(swap, loss, win), "tie": tie,
                              "loss": np.where(swap, win, loss)})
    g = frame.groupby(["l", "r", "o"], sort=True)[["win", "tie", "loss"]].sum().reset_index()
    return _Cells(g["l"].to_numpy(np.int64), g["r"].to_numpy(np.int64), g["o"].to_numpy(np.float64),
                  g["win"].to_numpy(np.float64), g["tie"].to_numpy(np.float64), g["loss"].to_numpy(np.float64), None)


def _virtual_draw_cells(data: Comparisons, draws_per_item: float) -> _Cells:
    """BayesElo-style prior: each item's ``draws_per_item`` virtual draws, split evenly over its opponents.

    A compared pair ``(i, j)`` gets ``draws/2 * (1/deg_i + 1/deg_j)`` draws at
    a neutral venue, so every item takes part in ``draws_per_item`` virtual
    draws on average (half of each belongs to either side).
    """
    lo, hi = np.minimum(data.left, data.right), np.maximum(data.left, data.right)
    pairs = np.unique(np.stack([lo, hi], axis=1), axis=0)
    deg = np.bincount(pairs.ravel(), minlength=data.n_items).astype(np.float64)
    amount = 0.5 * draws_per_item * (1.0 / deg[pairs[:, 0]] + 1.0 / deg[pairs[:, 1]])
    zeros = np.zeros(len(pairs))
    return _Cells(pairs[:, 0], pairs[:, 1], zeros, zeros, amount, zeros.copy(), None)


def _interval(x: np.ndarray, prob: float) -> tuple[np.ndarray, np.ndarray]:
    """Highest-density interval of each column of ``x`` (draws along axis 0)."""
    x = np.sort(x, axis=0)
    n = x.shape[0]
    m = max(int(np.floor(prob * n)), 1)
    widths = x[m:] - x[: n - m]
    start = np.argmin(widths, axis=0)
    cols = np.arange(x.shape[1]) if x.ndim > 1 else None
    if cols is None:
        return x[start], x[start + m]
    return x[start, cols], x[start + m, cols]


def _diagnostics(chains: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split R-hat and effective sample size per column; ``chains`` is (chains, draws, k)."""
    from numpyro.diagnostics import effective_sample_size, split_gelman_rubin

    return (np.asarray(split_gelman_rubin(chains), dtype=np.float64),
            np.asarray(effective_sample_size(chains), dtype=np.float64))


def _posterior_table(names: list[str], chains: np.ndarray, prob: float) -> pd.DataFrame:
    flat = chains.reshape(-1, chains.shape[-1])
    low, high = _interval(flat, prob)
    r_hat, ess = _diagnostics(chains)
    return pd.DataFrame({"mean": flat.mean(axis=0), "sd": flat.std(axis=0, ddof=1), "hdi_low": low,
                         "hdi_high": high, "r_hat": r_hat, "ess": ess}, index=pd.Index(names, name="parameter"))


def _run_nuts(model: Any, init: dict[str, Any] | None, draws: int, warmup: int, chains: int, seed: int,
              target_accept: float, **kwargs: Any) -> tuple[dict[str, np.ndarray], int]:
    """NUTS draws grouped by chain ``{site: (chains, draws, ...)}`` and the number of divergences."""
    import jax
    from numpyro.infer import MCMC, NUTS, init_to_median, init_to_value

    strategy = init_to_value(values=init) if init else init_to_median(num_samples=15)
    kernel = NUTS(model, target_accept_prob=target_accept, init_strategy=strategy)
    mcmc = MCMC(kernel, num_warmup=warmup, num_samples=draws, num_chains=chains, progress_bar=False,
                chain_method="sequential")
    mcmc.run(jax.random.PRNGKey(seed), **kwargs)
    samples = {k: np.asarray(v, dtype=np.float64) for k, v in mcmc.get_samples(group_by_chain=True).items()}
    divergences = int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())
    return samples, divergences


def _map(model: Any, init: dict[str, np.ndarray], hessian: bool, **kwargs: Any
         ) -> tuple[dict[str, np.ndarray], float, np.ndarray | None, bool, int]:
    """Maximise the model's joint log density (all sites unconstrained) with L-BFGS; optional Hessian."""
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import log_density
    from scipy.optimize import minimize

    flat0, unravel = ravel_pytree({k: jnp.asarray(v) for k, v in init.items()})

    def negative(flat: Any) -> Any:
        value, _ = log_density(model, (), kwargs, unravel(flat))
        return -value

    value_and_grad = jax.jit(jax.value_and_grad(negative))

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        v, g = value_and_grad(jnp.asarray(x))
        return float(v), np.asarray(g, dtype=np.float64)

    res = minimize(fun, np.asarray(flat0, dtype=np.float64), jac=True, method="L-BFGS-B",
                   options={"maxiter": 5000, "gtol": 1e-9, "ftol": 1e-15})
    x = res.x
    grad_norm = float(np.max(np.abs(fun(x)[1]))) if x.size else 0.0
    hess = None
    if hessian:
        # central differences of the exact (autodiff) gradient: no second compilation
        h = 1e-5 * np.maximum(1.0, np.abs(x))
        hess = np.empty((x.size, x.size))
        for k in range(x.size):
            step = np.zeros_like(x)
            step[k] = h[k]
            hess[:, k] = (fun(x + step)[1] - fun(x - step)[1]) / (2 * h[k])
        hess = 0.5 * (hess + hess.T)
    point = {k: np.asarray(v, dtype=np.float64) for k, v in unravel(jnp.asarray(x)).items()}
    return point, float(-res.fun), hess, bool(res.success or grad_norm < 1e-5), int(res.nit)


class BayesianBT:
    """Bayesian Bradley-Terry model (and tie models) sampled with NUTS.

    ``P(left beats right) = expit(d)`` with ``d = s_left - s_right + gamma * order + x . beta``;
    with ``ties="davidson"`` or ``"rao-kupper"`` the outcome model of
    :class:`~bradley.Davidson` / :class:`~bradley.RaoKupper` (``nu``; threshold
    ``alpha`` with ``eta = exp(alpha)``). Priors: scores ``N(0, prior_sd^2)``
    (reported centred to mean zero), ``gamma``, ``beta``, ``log nu`` and
    ``log alpha`` ``N(0, param_sd^2)``; parameters in ``fixed`` are held.

    Parameters
    ----------
    prior_sd : float or None
        Prior standard deviation of the scores; ``None``: flat (then the
        posterior must be proper through the data or ``virtual_draws``).
    ties : {None, "davidson", "rao-kupper"}
        ``None``: plain BT, a tie counts half a win each way.
    order_effect : bool
        First-mover (home) advantage ``gamma`` on the data's ``order`` indicator.
    covariates : bool
        Use the data's comparison-level ``features`` (coefficients ``beta``);
        the likelihood is then evaluated per row.
    virtual_draws : float
        Prior draws per item, spread over its opponents (BayesElo's prior).
    fixed : dict, optional
        Held parameters: ``"order_effect"`` (gamma), ``"nu"`` or ``"alpha"``.
    param_sd : float
        Prior sd of the non-score parameters.
    draws, warmup, chains, seed : int
        NUTS settings (chains run one after another); ``draws=0`` fits only the
        MAP and its Laplace approximation.
    credible : float
        Mass of the highest-density intervals.
    target_accept : float

    Attributes
    ----------
    items_, draws_ (``{"scores": (S, n), "order_effect": (S,), ...}``, all
    chains), scores_ (posterior means), scores_sd_, params_ (posterior table
    of the other parameters), map_scores_, map_params_ (dict), laplace_sd_
    (Laplace sds of the centred scores), log_posterior_ (at the MAP),
    map_converged_, r_hat_max_, ess_min_, divergences_, converged_ (R-hat <
    1.01 and ESS >= 100 everywhere, no divergence; with ``draws=0``: the MAP
    converged), n_iter_ (draws per chain).

    Examples
    --------
    >>> import bradley
    >>> data, _ = bradley.simulate_bt(4, 300, seed=1)
    >>> m = BayesianBT(prior_sd=2.0, draws=1000, warmup=300, seed=0).fit(data)
    >>> m.draws_["scores"].shape, m.converged_
    ((1000, 4), True)
    >>> bool(abs(m.scores_ - m.map_scores_).max() < 0.1)
    True
    >>> table = m.summary()  # posterior mean, sd, 95% HDI, R-hat, ESS, P(first) per item
    >>> bool(table["hdi_low"].lt(table["score"]).all())
    True
    """

    def __init__(
        self,
        prior_sd: float | None = 1.0,
        ties: str | None = None,
        order_effect: bool = False,
        covariates: bool = False,
        virtual_draws: float = 0.0,
        fixed: dict[str, float] | None = None,
        param_sd: float = 2.0,
        draws: int = 1000,
        warmup: int = 500,
        chains: int = 1,
        seed: int = 0,
        credible: float = 0.95,
        target_accept: float = 0.8,
    ):
        self.prior_sd = prior_sd
        self.ties = ties
        self.order_effect = order_effect
        self.covariates = covariates
        self.virtual_draws = virtual_draws
        self.fixed = fixed
        self.param_sd = param_sd
        self.draws = draws
        self.warmup = warmup
        self.chains = chains
        self.seed = seed
        self.credible = credible
        self.target_accept = target_accept

    def __repr__(self) -> str:
        return (f"BayesianBT(prior_sd={self.prior_sd!r}, ties={self.ties!r}, order_effect={self.order_effect!r}, "
                f"covariates={self.covariates!r}, virtual_draws={self.virtual_draws!r}, fixed={self.fixed!r}, "
                f"draws={self.draws!r}, chains={self.chains!r}, seed={self.seed!r})")

    @classmethod
    def bayeselo(cls, elo_advantage: float = BAYESELO_DEFAULTS["elo_advantage"],
                 elo_draw: float = BAYESELO_DEFAULTS["elo_draw"], prior: float = BAYESELO_DEFAULTS["prior"],
                 **kwargs: Any) -> BayesianBT:
        """BayesElo's model: Rao-Kupper ties, fixed advantage and draw parameters, virtual draws as prior.

        ``P(left wins) = 1 / (1 + 10^((e_right - e_left - advantage + draw) / 400))``
        with Elo ratings ``e = 400 / ln 10 * s`` (defaults: advantage 32.8,
        draw 97.3 Elo, 2 virtual draws per player, no other prior). Reported
        scores are natural-log units; ``elo_scores_`` gives Elo points.

        Examples
        --------
        >>> m = BayesianBT.bayeselo()
        >>> round(m.fixed["alpha"], 4), round(m.fixed["order_effect"], 4)
        (0.5601, 0.1888)
        """
        kwargs.setdefault("prior_sd", None)
        return cls(ties="rao-kupper", order_effect=True, virtual_draws=prior,
                   fixed={"alpha": float(elo_draw / ELO_SCALE), "order_effect": float(elo_advantage / ELO_SCALE)},
                   **kwargs)

    # ------------------------------------------------------------------ set-up
    def _check(self) -> None:
        if self.ties not in FAMILIES:
            raise ValueError(f"ties must be None, 'davidson' or 'rao-kupper', got {self.ties!r}.")
        if self.prior_sd is not None and not (np.isfinite(self.prior_sd) and self.prior_sd > 0):
            raise ValueError(f"prior_sd must be positive or None, got {self.prior_sd!r}.")
        if self.draws < 0 or self.warmup < 0 or self.chains < 1:
            raise ValueError("draws and warmup must be >= 0 and chains >= 1.")
        if not (0 < self.credible < 1):
            raise ValueError(f"credible must be in (0, 1), got {self.credible!r}.")
        allowed = {"order_effect", "nu" if self.ties == "davidson" else "alpha"}
        unknown = set(self.fixed or {}) - allowed
        if unknown:
            raise ValueError(f"fixed accepts {sorted(allowed)} for ties={self.ties!r}, got {sorted(unknown)}.")
        if "order_effect" in (self.fixed or {}) and not self.order_effect:
            raise ValueError("fixed['order_effect'] is ignored unless order_effect=True: set order_effect=True to "
                             "hold the advantage, or drop it from fixed.")

    def _prepare(self, data: Any) -> None:
        self._check()
        pairs = data if isinstance(data, PairCounts) else None
        comparisons = as_comparisons(data)
        if self.covariates and comparisons.features is None:
            raise ComparisonDataError("covariates=True needs comparisons with a features matrix.")
        if self.ties is not None:
            o = comparisons.outcome
            soft = (o != 0) & (o != 1) & (o != 0.5)
            if soft.any():
                rows = np.flatnonzero(soft)[:10].tolist()
                raise ComparisonDataError(
                    f"tie models need outcomes 1, 0.5 or 0; rows {rows} hold soft labels. Use ties=None.", rows=rows)
        self.items_ = np.asarray(comparisons.items, dtype=object)
        self._index = ItemIndex(self.items_)
        self.pair_counts_ = pairs if pairs is not None else comparisons.pair_counts()
        self._cells = _cells_from(comparisons, bool(self.order_effect), bool(self.covariates))
        self._prior_cells = (_virtual_draw_cells(comparisons, self.virtual_draws) if self.virtual_draws > 0
                             else None)
        self.feature_names_ = list(comparisons.feature_names) if self.covariates else []
        from bradley.solvers.firth import comparison_groups

        n_groups, labels = comparison_groups(self.pair_counts_)
        if self.prior_sd is None and n_groups > 1:
            raise ComparisonDataError(
                f"the comparison graph falls into {n_groups} groups never compared with each other: with "
                "prior_sd=None nothing links their scores. Give prior_sd or add comparisons between them.")
        if self.prior_sd is None and self.virtual_draws <= 0:
            from bradley.data import mle_existence_problem

            problem = mle_existence_problem(self.pair_counts_)
            if problem:
                raise ComparisonDataError(f"with a flat prior the posterior is improper: {problem} Give prior_sd "
                                          "or virtual_draws.")

    def _model_kwargs(self) -> dict[str, Any]:
        import jax.numpy as jnp

        def arrays(c: _Cells | None) -> dict[str, Any] | None:
            if c is None:
                return None
            return {"left": jnp.asarray(c.left), "right": jnp.asarray(c.right), "order": jnp.asarray(c.order),
                    "win": jnp.asarray(c.win), "tie": jnp.asarray(c.tie), "loss": jnp.asarray(c.loss),
                    "x": None if c.features is None else jnp.asarray(c.features)}

        return {"cells": arrays(self._cells), "prior_cells": arrays(self._prior_cells)}

    def _numpyro_model(self, cells: dict[str, Any], prior_cells: dict[str, Any] | None) -> None:
        import jax.numpy as jnp
        import numpyro
        import numpyro.distributions as dist

        n = len(self.items_)
        fixed = dict(self.fixed or {})
        if self.prior_sd is None:
            z = numpyro.sample("z", dist.ImproperUniform(dist.constraints.real, (), (n - 1,)))
        else:
            z = numpyro.sample("z", dist.Normal(0.0, self.prior_sd).expand([n - 1]).to_event(1))
        s = helmert_scores(z, jnp)
        gamma: Any = 0.0
        if self.order_effect:
            gamma = fixed["order_effect"] if "order_effect" in fixed else numpyro.sample(
                "order_effect", dist.Normal(0.0, self.param_sd))
        tie: Any = 0.0
        if self.ties == "davidson":
            tie = np.log(fixed["nu"]) if "nu" in fixed else numpyro.sample("log_nu", dist.Normal(0.0, self.param_sd))
        elif self.ties == "rao-kupper":
            tie = fixed["alpha"] if "alpha" in fixed else jnp.exp(
                numpyro.sample("log_alpha", dist.Normal(-1.0, self.param_sd)))
        d = s[cells["left"]] - s[cells["right"]] + gamma * cells["order"]
        if cells["x"] is not None:
            beta = numpyro.sample("beta", dist.Normal(0.0, self.param_sd).expand([cells["x"].shape[1]]).to_event(1))
            d = d + cells["x"] @ beta
        numpyro.factor("loglik", self._cell_loglik(d, tie, cells))
        if prior_cells is not None:
            dp = s[prior_cells["left"]] - s[prior_cells["right"]]
            numpyro.factor("virtual_draws", self._cell_loglik(dp, tie, prior_cells))

    def _cell_loglik(self, d: Any, tie: Any, c: dict[str, Any]) -> Any:
        import jax.numpy as jnp

        lw, lt, ll = outcome_log_probs(d, self.ties, tie, jnp)
        if self.ties is None:
            return jnp.sum((c["win"] + 0.5 * c["tie"]) * lw + (c["loss"] + 0.5 * c["tie"]) * ll)
        return jnp.sum(c["win"] * lw + c["tie"] * lt + c["loss"] * ll)

    # ------------------------------------------------------------------ fit
    def fit(self, data: Any) -> BayesianBT:
        """Find the MAP (and Laplace sds), then sample the posterior with NUTS started there.

        Parameters
        ----------
        data : Comparisons, PairCounts, DataFrame or path

        Returns
        -------
        self
        """
        import numpyro

        numpyro.enable_x64()
        self._prepare(data)
        kwargs = self._model_kwargs()
        n = len(self.items_)
        init: dict[str, np.ndarray] = {"z": np.zeros(n - 1)}
        fixed = self.fixed or {}
        if self.order_effect and "order_effect" not in fixed:
            init["order_effect"] = np.zeros(())
        if self.ties == "davidson" and "nu" not in fixed:
            init["log_nu"] = np.zeros(())
        if self.ties == "rao-kupper" and "alpha" not in fixed:
            init["log_alpha"] = np.full((), -1.0)
        if self.covariates:
            init["beta"] = np.zeros(len(self.feature_names_))
        point, self.log_posterior_, hess, self.map_converged_, _ = _map(
            self._numpyro_model, init, hessian=n <= 2000, **kwargs)
        self.map_scores_ = helmert_scores(point["z"])
        self.map_params_ = self._natural({k: v[None] for k, v in point.items() if k != "z"}, squeeze=True)
        self.laplace_sd_ = None
        if hess is not None:
            from scipy import linalg

            cov = linalg.pinvh(hess)[: n - 1, : n - 1]
            basis = helmert_scores(np.eye(n - 1))  # (n-1, n): row k is Q[:, k]
            self.laplace_sd_ = np.sqrt(np.clip(np.einsum("ki,kl,li->i", basis, cov, basis), 0.0, None))
        if not self.map_converged_:
            warnings.warn("BayesianBT: the MAP search (L-BFGS) stopped before its gradient tolerance; the MAP and "
                          "Laplace sds are approximate (NUTS starts from there).", ConvergenceWarning, stacklevel=2)
        if self.draws == 0:
            self.draws_ = {}
            self.converged_ = self.map_converged_
            self.n_iter_ = 0
            return self
        samples, self.divergences_ = _run_nuts(
            self._numpyro_model, point, self.draws, self.warmup, self.chains, self.seed, self.target_accept, **kwargs)
        self._chain_draws = {"scores": helmert_scores(samples.pop("z"))}
        self._chain_draws.update(self._natural(samples))
        self.draws_ = {k: v.reshape((-1,) + v.shape[2:]) for k, v in self._chain_draws.items()}
        s = self.draws_["scores"]
        self.scores_ = s.mean(axis=0)
        self.scores_sd_ = s.std(axis=0, ddof=1)
        r_hat, ess = _diagnostics(self._chain_draws["scores"])
        self._score_rhat, self._score_ess = r_hat, ess
        self.params_ = self._params_table()
        all_rhat = np.concatenate([r_hat, self.params_["r_hat"].to_numpy()])
        all_ess = np.concatenate([ess, self.params_["ess"].to_numpy()])
        self.r_hat_max_ = float(np.nanmax(all_rhat))
        self.ess_min_ = float(np.nanmin(all_ess))
        self.n_iter_ = int(self.draws)
        self.converged_ = bool(self.r_hat_max_ < RHAT_MAX and self.ess_min_ >= ESS_MIN and self.divergences_ == 0)
        if not self.converged_:
            warnings.warn(
                f"BayesianBT: max R-hat {self.r_hat_max_:.3f} (want < {RHAT_MAX}), {self.divergences_} divergent "
                f"transitions, min ESS {self.ess_min_:.0f} (want >= {ESS_MIN:g}): the posterior summaries may be "
                "unreliable. Raise draws/warmup/chains or target_accept.", ConvergenceWarning, stacklevel=2)
        return self

    def _natural(self, samples: dict[str, np.ndarray], squeeze: bool = False) -> dict[str, Any]:
        """Sampled sites on their reported scale: nu = exp(log_nu), alpha = exp(log_alpha) and eta = exp(alpha)."""
        out: dict[str, Any] = {}
        for k, v in samples.items():
            if k == "log_nu":
                out["nu"] = np.exp(v)
            elif k == "log_alpha":
                out["alpha"] = np.exp(v)
                out["eta"] = np.exp(out["alpha"])
            else:
                out[k] = v
        if squeeze:
            return {k: (float(v[0]) if np.ndim(v) == 1 else np.asarray(v[0])) for k, v in out.items()}
        return out

    def _params_table(self) -> pd.DataFrame:
        names: list[str] = []
        columns: list[np.ndarray] = []
        for k, v in self._chain_draws.items():
            if k == "scores":
                continue
            if v.ndim == 2:
                names.append(k)
                columns.append(v[..., None])
            else:
                names += [f"beta[{f}]" for f in self.feature_names_]
                columns.append(v)
        if not names:
            return pd.DataFrame(columns=["mean", "sd", "hdi_low", "hdi_high", "r_hat", "ess"],
                                index=pd.Index([], name="parameter"))
        return _posterior_table(names, np.concatenate(columns, axis=-1), self.credible)

    # ------------------------------------------------------------------ posterior summaries
    def _require_draws(self) -> np.ndarray:
        require_fitted(self, "draws_")
        if "scores" not in self.draws_:
            raise ValueError("fitted with draws=0 (MAP only): refit with draws > 0 for posterior summaries.")
        return np.asarray(self.draws_["scores"])

    @property
    def elo_scores_(self) -> np.ndarray:
        """Posterior mean scores in Elo points (400 / ln 10 per log unit, centred at 0 as BayesElo)."""
        return ELO_SCALE * self.scores_

    def summary(self) -> pd.DataFrame:
        """Tidy per-item table: score (posterior mean), sd, hdi_low, hdi_high, laplace_sd, map, r_hat, ess,
        p_first (posterior probability of rank 1), rank, wins, losses, ties, comparisons; best first."""
        s = self._require_draws()
        low, high = _interval(s, self.credible)
        extra = {"sd": self.scores_sd_, "hdi_low": low, "hdi_high": high, "map": self.map_scores_,
                 "laplace_sd": self.laplace_sd_ if self.laplace_sd_ is not None else np.full(len(low), np.nan),
                 "r_hat": self._score_rhat, "ess": self._score_ess, "p_first": self.prob_rank(1).to_numpy()}
        how = "posterior of the scores centred to mean zero"
        how += f"; prior N(0, {self.prior_sd:g}^2)" if self.prior_sd is not None else "; flat prior"
        if self.virtual_draws:
            how += f" and {self.virtual_draws:g} virtual draws per item"
        table = summary_table(self.items_, self.scores_, self.pair_counts_, how, **extra)
        table.attrs["interval"] = f"{self.credible:.0%} highest posterior density"
        return table

    def prob_beats(self, i: Any, j: Any) -> float:
        """Posterior predictive probability that ``i`` beats ``j`` in a new game at a neutral venue.

        The mean over draws of ``P(i wins | draw)`` (with ties, a win proper,
        not a tie); ``prob_stronger`` gives ``P(s_i > s_j | data)`` instead.
        """
        s = self._require_draws()
        a, b = self._index.codes([i, j])
        return float(np.exp(self._outcomes(s[:, a] - s[:, b])[0]).mean())

    def prob_stronger(self, i: Any, j: Any) -> float:
        """Posterior probability that ``s_i > s_j``."""
        s = self._require_draws()
        a, b = self._index.codes([i, j])
        return float(np.mean(s[:, a] > s[:, b]))

    def prob_beats_matrix(self, kind: str = "game") -> pd.DataFrame:
        """All pairs at once: ``kind="game"`` as :meth:`prob_beats`, ``"stronger"`` as :meth:`prob_stronger`."""
        if kind not in ("game", "stronger"):
            raise ValueError(f"kind must be 'game' or 'stronger', got {kind!r}.")
        s = self._require_draws()
        n = s.shape[1]
        out = np.empty((n, n))
        for a in range(n):
            diff = s[:, [a]] - s
            out[a] = (np.exp(self._outcomes(diff)[0]).mean(axis=0) if kind == "game"
                      else (diff > 0).mean(axis=0))
        np.fill_diagonal(out, np.nan)
        return pd.DataFrame(out, index=pd.Index(self.items_, name="item"), columns=self.items_)

    def _outcomes(self, d: np.ndarray, order: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        tie = self._tie_draws()
        gamma = self.draws_.get("order_effect", (self.fixed or {}).get("order_effect", 0.0))
        gamma = np.asarray(gamma)
        shape = (-1,) + (1,) * (np.ndim(d) - 1)
        if np.ndim(gamma):
            gamma = gamma.reshape(shape)
        if np.ndim(tie):
            tie = np.asarray(tie).reshape(shape)
        return outcome_log_probs(d + gamma * order, self.ties, tie)

    def _tie_draws(self) -> Any:
        fixed = self.fixed or {}
        if self.ties == "davidson":
            return np.log(fixed["nu"]) if "nu" in fixed else np.log(self.draws_["nu"])
        if self.ties == "rao-kupper":
            return fixed["alpha"] if "alpha" in fixed else self.draws_["alpha"]
        return 0.0

    def rank_distribution(self) -> pd.DataFrame:
        """Posterior probability of each rank (columns 1..n, 1 = best) per item (rows)."""
        s = self._require_draws()
        n = s.shape[1]
        ranks = np.empty_like(s, dtype=np.int64)
        order = np.argsort(-s, axis=1, kind="stable")
        np.put_along_axis(ranks, order, np.arange(n)[None, :], axis=1)
        counts = np.stack([np.bincount(ranks[:, k], minlength=n) for k in range(n)]) / s.shape[0]
        return pd.DataFrame(counts, index=pd.Index(self.items_, name="item"), columns=np.arange(1, n + 1))

    def prob_rank(self, rank: int = 1, at_most: bool = False) -> pd.Series:
        """Posterior probability that each item has this rank (``at_most``: this rank or better)."""
        dist = self.rank_distribution()
        if not (1 <= rank <= dist.shape[1]):
            raise ValueError(f"rank must be in 1..{dist.shape[1]}, got {rank}.")
        p = dist.loc[:, :rank].sum(axis=1) if at_most else dist[rank]
        return p.rename(f"p_rank_{'le_' if at_most else ''}{rank}")

    def posterior_predictive_check(self, seed: int | None = None) -> pd.DataFrame:
        """Observed wins per cell against wins replicated from the posterior predictive.

        One row per cell (ordered pair and order indicator; per row with
        covariates): n (games, rounded to whole numbers), observed wins of
        left (ties as half wins with ``ties=None``), ties, the replicated mean
        and 5-95% range of the wins, and the two-sided Bayesian p-value
        ``2 min(P(rep > obs) + P(rep = obs)/2, ...)``. ``attrs["chi2_p_value"]``
        is ``P(T(rep) >= T(obs))`` for the chi-square discrepancy
        ``T = sum (wins - E)^2 / Var`` over cells, a global fit check.
        """
        s = self._require_draws()
        c = self._cells
        rng = np.random.default_rng(self.seed if seed is None else seed)
        d = s[:, c.left] - s[:, c.right]
        if c.features is not None:
            d = d + self.draws_["beta"] @ c.features.T
        lw, lt, ll = self._outcomes(d, 0.0) if not self.order_effect else self._outcomes_with_order(d, c.order)
        n = np.round(c.total).astype(np.int64)
        if self.ties is None:
            p = np.exp(lw)
            rep = rng.binomial(np.broadcast_to(n, p.shape), p).astype(np.float64)
            obs = c.win + 0.5 * c.tie
            mean, var = n * p, n * p * (1 - p)
        else:
            probs = np.stack([np.exp(lw), np.exp(lt), np.exp(ll)], axis=-1)
            probs /= probs.sum(axis=-1, keepdims=True)
            rep = rng.multinomial(np.broadcast_to(n, lw.shape), probs)[..., 0].astype(np.float64)
            obs = c.win
            mean, var = n * probs[..., 0], n * probs[..., 0] * (1 - probs[..., 0])
        above = (rep > obs).mean(axis=0) + 0.5 * (rep == obs).mean(axis=0)
        safe = np.where(var > 0, var, 1.0)
        t_obs = (((obs - mean) ** 2) / safe).sum(axis=1)
        t_rep = (((rep - mean) ** 2) / safe).sum(axis=1)
        table = pd.DataFrame({
            "left": self.items_[c.left], "right": self.items_[c.right], "order": c.order, "n": n,
            "wins": obs, "ties": c.tie, "expected": rep.mean(axis=0), "rep_low": np.quantile(rep, 0.05, axis=0),
            "rep_high": np.quantile(rep, 0.95, axis=0), "p_value": np.minimum(1.0, 2 * np.minimum(above, 1 - above)),
        })
        if not self.order_effect:
            table = table.drop(columns="order")
        table.attrs["chi2_p_value"] = float(np.mean(t_rep >= t_obs))
        return table

    def _outcomes_with_order(self, d: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        gamma = np.asarray(self.draws_.get("order_effect", (self.fixed or {}).get("order_effect", 0.0)))
        shift = (gamma.reshape(-1, 1) if gamma.ndim else gamma) * order[None, :]
        tie = self._tie_draws()
        tie = np.asarray(tie).reshape(-1, 1) if np.ndim(tie) else tie
        return outcome_log_probs(d + shift, self.ties, tie)

    def predict_proba(self, left: Any, right: Any) -> np.ndarray:
        """Posterior predictive probability that ``left`` beats ``right`` (neutral venue; arrays broadcast)."""
        s = self._require_draws()
        li, ri = self._index.codes(left), self._index.codes(right)
        return np.asarray(np.exp(self._outcomes(s[:, li] - s[:, ri])[0]).mean(axis=0))


class GradeScaleBT:
    """Climbing-grade scale: climbers' ascents of graded routes as climber-vs-route BT games.

    ``P(climber c sends route r in period t) = expit(s_c(t) - d_r)``, with

    * route difficulty ``d_r ~ N(m_{g(r)}, tau^2)`` around its grade's level,
      the levels ``m_0 = 0, m_{k+1} = m_k + delta_k`` and the steps
      ``delta_k ~ N(beta, step_sd^2)`` (partially pooled around a common step
      ``beta``, the log difficulty ratio per grade step; ``step_sd`` fixed,
      default 0.2: a learned one makes a funnel that NUTS crosses slowly);
    * climber strength a Gaussian random walk in time,
      ``s_c(t_1) ~ N(mu, strength_sd^2)`` (``mu ~ N(0, 3^2)``, the climbers' mean level),
      ``s_c(t_{k+1}) ~ N(s_c(t_k), w^2 (t_{k+1} - t_k))``.

    Priors: ``beta ~ N(0, 2^2)``, ``tau ~ HalfNormal(1)`` (the route spread within a grade),
    ``w ~ HalfNormal(w_scale)``; non-centred parametrisation throughout.

    Parameters
    ----------
    draws, warmup, chains, seed, credible : as :class:`BayesianBT`
    strength_sd : float
    w_scale : float

    Attributes
    ----------
    step_ratio_ : dict
        Posterior mean, sd and HDI of ``exp(beta)``: the odds ratio of one grade step.
    grade_steps_ : DataFrame
        Per step ``k -> k + 1``: posterior of ``exp(delta_k)``.
    route_difficulty_ : DataFrame
    draws_ : dict of posterior draws ("beta", "delta", "tau", "w", "route", "strength" (S, climbers, periods)).
    climbers_, routes_, periods_, r_hat_max_, ess_min_ (over beta, tau, w, the grade steps, route
    difficulties and climber strengths), divergences_, converged_ (R-hat < 1.01, ESS >= 100, no divergence).

    Examples
    --------
    >>> ascents = GradeScaleBT.simulate(n_climbers=15, n_routes=30, n_grades=4, n_periods=2,
    ...                                 ascents_per_period=6, ratio=2.0, seed=0)
    >>> sorted(ascents.columns)
    ['climber', 'grade', 'period', 'route', 'success']
    """

    def __init__(self, draws: int = 1000, warmup: int = 500, chains: int = 1, seed: int = 0,
                 credible: float = 0.95, strength_sd: float = 1.5, w_scale: float = 0.5, step_sd: float = 0.2,
                 target_accept: float = 0.9):
        self.draws = draws
        self.warmup = warmup
        self.chains = chains
        self.seed = seed
        self.credible = credible
        self.strength_sd = strength_sd
        self.w_scale = w_scale
        self.step_sd = step_sd
        self.target_accept = target_accept

    @staticmethod
    def simulate(n_climbers: int = 60, n_routes: int = 120, n_grades: int = 8, n_periods: int = 6,
                 ascents_per_period: int = 8, ratio: float = 2.0, tau: float = 0.3, w: float = 0.3,
                 seed: int = 0) -> pd.DataFrame:
        """Simulated ascents with a known difficulty ratio per grade step (``ratio``).

        Routes get grades uniformly, difficulty ``log(ratio) * grade + N(0, tau^2)`` (the
        lowest grade's level is 0, as in the fitted model); climbers start at
        ``N(log(ratio) * (n_grades - 1) / 2, 1)`` (mid-scale) and random-walk with sd ``w`` per period;
        each climber tries ``ascents_per_period`` random routes in each period.
        ``attrs`` hold the truth (``ratio``, ``route_difficulty``, ``strength``).
        """
        rng = np.random.default_rng(seed)
        grade = rng.integers(0, n_grades, n_routes)
        difficulty = np.log(ratio) * grade + rng.normal(0, tau, n_routes)
        mid = np.log(ratio) * (n_grades - 1) / 2
        strength = rng.normal(mid, 1, (n_climbers, 1)) + np.concatenate(
            [np.zeros((n_climbers, 1)), np.cumsum(rng.normal(0, w, (n_climbers, n_periods - 1)), axis=1)], axis=1)
        climber = np.repeat(np.arange(n_climbers), n_periods * ascents_per_period)
        period = np.tile(np.repeat(np.arange(n_periods), ascents_per_period), n_climbers)
        route = rng.integers(0, n_routes, len(climber))
        p = expit(strength[climber, period] - difficulty[route])
        frame = pd.DataFrame({"climber": [f"c{c:03d}" for c in climber], "route": [f"r{r:03d}" for r in route],
                              "grade": grade[route], "period": period, "success": rng.random(len(p)) < p})
        frame.attrs.update(ratio=ratio, route_difficulty=difficulty, strength=strength)
        return frame

    def fit(self, ascents: pd.DataFrame) -> GradeScaleBT:
        """Sample the posterior from a frame with climber, route, grade (ordered integers), period, success."""
        import jax.numpy as jnp
        import numpyro

        numpyro.enable_x64()
        missing = {"climber", "route", "grade", "period", "success"} - set(ascents.columns)
        if missing:
            raise ComparisonDataError(f"ascents need columns climber, route, grade, period, success; missing "
                                      f"{sorted(missing)}.")
        climber, self.climbers_ = pd.factorize(ascents["climber"], sort=True)
        route, self.routes_ = pd.factorize(ascents["route"], sort=True)
        period, periods = pd.factorize(ascents["period"], sort=True)
        self.periods_ = np.asarray(periods)
        route_grade = pd.Series(ascents["grade"].to_numpy()).groupby(route).agg(["min", "max"])
        bad = route_grade.index[route_grade["min"] != route_grade["max"]]
        if len(bad):
            raise ComparisonDataError(f"routes {list(self.routes_[bad[:5]])} carry more than one grade.")
        grades = route_grade["min"].to_numpy(np.int64)
        grades = grades - grades.min()
        self.n_grades_ = int(grades.max()) + 1
        gaps = (np.diff(self.periods_.astype(np.float64)) if len(self.periods_) > 1 else np.zeros(0))
        if (gaps <= 0).any():
            raise ComparisonDataError("periods must be increasing numbers.")
        self._success = np.asarray(ascents["success"], dtype=np.float64)
        args = {"climber": jnp.asarray(climber), "route": jnp.asarray(route), "period": jnp.asarray(period),
                "grade": jnp.asarray(grades), "success": jnp.asarray(self._success),
                "gaps": jnp.asarray(gaps)}
        samples, self.divergences_ = _run_nuts(self._model, None, self.draws, self.warmup, self.chains, self.seed,
                                               self.target_accept, **args)
        chain_draws = self._derived(samples, grades)
        self.draws_ = {k: v.reshape((-1,) + v.shape[2:]) for k, v in chain_draws.items()}
        scalar = np.stack([chain_draws[k] for k in ("beta", "tau", "w")], axis=-1)
        self.params_ = _posterior_table(["beta", "tau", "w"], scalar, self.credible)
        r_hat_all = [self.params_["r_hat"].to_numpy()]
        ess_all = [self.params_["ess"].to_numpy()]
        for key in ("route", "delta", "strength"):
            chains = chain_draws[key].reshape(chain_draws[key].shape[:2] + (-1,))
            r_hat, ess = _diagnostics(chains)
            r_hat_all.append(r_hat)
            ess_all.append(ess)
        self.r_hat_max_ = float(np.nanmax(np.concatenate(r_hat_all)))
        self.ess_min_ = float(np.nanmin(np.concatenate(ess_all)))
        ratio = np.exp(self.draws_["beta"])
        low, high = _interval(ratio, self.credible)
        self.step_ratio_ = {"mean": float(ratio.mean()), "sd": float(ratio.std(ddof=1)), "hdi_low": float(low),
                            "hdi_high": float(high)}
        steps = np.exp(self.draws_["delta"])
        slo, shi = _interval(steps, self.credible)
        self.grade_steps_ = pd.DataFrame({"from_grade": np.arange(self.n_grades_ - 1),
                                          "to_grade": np.arange(1, self.n_grades_), "ratio_mean": steps.mean(axis=0),
                                          "hdi_low": slo, "hdi_high": shi})
        rd = self.draws_["route"]
        rlo, rhi = _interval(rd, self.credible)
        self.route_difficulty_ = pd.DataFrame({"route": self.routes_, "grade": grades, "mean": rd.mean(axis=0),
                                               "sd": rd.std(axis=0, ddof=1), "hdi_low": rlo, "hdi_high": rhi})
        self.n_iter_ = int(self.draws)
        self.converged_ = bool(self.r_hat_max_ < RHAT_MAX and self.ess_min_ >= ESS_MIN and self.divergences_ == 0)
        if not self.converged_:
            warnings.warn(f"GradeScaleBT: max R-hat {self.r_hat_max_:.3f} (want < {RHAT_MAX}), min ESS "
                          f"{self.ess_min_:.0f} (want >= {ESS_MIN:g}), {self.divergences_} divergences; "
                          "raise draws/warmup/target_accept.", ConvergenceWarning, stacklevel=2)
        return self

    def _model(self, climber: Any, route: Any, period: Any, grade: Any, success: Any, gaps: Any) -> None:
        import jax.numpy as jnp
        import numpyro
        import numpyro.distributions as dist

        n_grades = self.n_grades_
        beta = numpyro.sample("beta", dist.Normal(0.0, 2.0))
        tau = numpyro.sample("tau", dist.HalfNormal(1.0))
        w = numpyro.sample("w", dist.HalfNormal(self.w_scale))
        step_z = numpyro.sample("step_z", dist.Normal(0.0, 1.0).expand([n_grades - 1]).to_event(1))
        levels = jnp.concatenate([jnp.zeros(1), jnp.cumsum(beta + self.step_sd * step_z)])
        route_z = numpyro.sample("route_z", dist.Normal(0.0, 1.0).expand([len(self.routes_)]).to_event(1))
        difficulty = levels[grade] + tau * route_z
        n_c, n_t = len(self.climbers_), len(self.periods_)
        mu = numpyro.sample("mu", dist.Normal(0.0, 3.0))
        start = mu + numpyro.sample("start_z", dist.Normal(0.0, 1.0).expand([n_c]).to_event(1)) * self.strength_sd
        if n_t > 1:
            walk_z = numpyro.sample("walk_z", dist.Normal(0.0, 1.0).expand([n_c, n_t - 1]).to_event(2))
            steps = w * jnp.sqrt(gaps)[None, :] * walk_z
            strength = start[:, None] + jnp.concatenate([jnp.zeros((n_c, 1)), jnp.cumsum(steps, axis=1)], axis=1)
        else:
            strength = start[:, None]
        eta = strength[climber, period] - difficulty[route]
        numpyro.factor("loglik", jnp.sum(success * _log_sigmoid(jnp, eta) + (1 - success) * _log_sigmoid(jnp, -eta)))

    def _derived(self, samples: dict[str, np.ndarray], grades: np.ndarray) -> dict[str, np.ndarray]:
        beta, tau, w = (samples[k] for k in ("beta", "tau", "w"))
        delta = beta[..., None] + self.step_sd * samples["step_z"]
        levels = np.concatenate([np.zeros(delta.shape[:-1] + (1,)), np.cumsum(delta, axis=-1)], axis=-1)
        route = levels[..., grades] + tau[..., None] * samples["route_z"]
        start = samples["mu"][..., None] + samples["start_z"] * self.strength_sd
        if "walk_z" in samples:
            gaps = np.diff(self.periods_.astype(np.float64))
            walk = np.cumsum(w[..., None, None] * np.sqrt(gaps) * samples["walk_z"], axis=-1)
            strength = start[..., None] + np.concatenate([np.zeros(walk.shape[:-1] + (1,)), walk], axis=-1)
        else:
            strength = start[..., None]
        return {"beta": beta, "tau": tau, "w": w, "delta": delta, "route": route,
                "strength": strength}

    def climber_history(self, climber: Any) -> pd.DataFrame:
        """Posterior mean, sd and HDI of one climber's strength per period (same scale as route difficulty)."""
        require_fitted(self, "draws_")
        pos = pd.Index(self.climbers_).get_indexer([climber])[0]
        if pos < 0:
            raise ComparisonDataError(f"unknown climber {climber!r}.")
        s = self.draws_["strength"][:, pos, :]
        low, high = _interval(s, self.credible)
        return pd.DataFrame({"period": self.periods_, "mean": s.mean(axis=0), "sd": s.std(axis=0, ddof=1),
                             "hdi_low": low, "hdi_high": high})
