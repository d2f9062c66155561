"""Routing prompts to models under a cost budget, from a prompt-conditioned leaderboard (P2L routing).

For prompt ``p`` and candidate model ``i`` the value ``v[p, i]`` is the
expected win rate of ``i`` at that prompt, from a fitted
:class:`bradley.ContextualBT`: against the field (the mean over the other
items of ``P(i beats j | x_p)``, a tie counted as half a win) or against a
named ``reference`` model. :func:`route` then picks one model per prompt:

* ``max_cost=c``: per prompt, the best model costing at most ``c``;
* ``average_budget=B``: over the batch, maximise ``sum_p v[p, choice_p]``
  subject to ``mean_p cost[choice_p] <= B``. Its LP relaxation (assignment
  variables ``y[p, i] >= 0``, ``sum_i y[p, i] = 1``, one budget row) is
  solved exactly with scipy's HiGHS; an optimal vertex has at most one prompt
  split between two models (the Lagrangian solution: each prompt takes
  ``argmax_i v[p, i] - lambda * cost_i``), which is given the cheaper of the
  two, so the choice always respects the budget and is within one prompt's
  value of the LP bound (``lp_value``).

The expected win rates (``expected_win_rate``, ``win_rate_vs_leader``) are
model-based and optimistic: the choices are selected on the same estimates
that score them (a winner's curse), and the estimates' uncertainty is not
propagated. Pass held-out prompts, and their battles (``battles=``) for the
model-free ``observed_vs_leader`` with its binomial standard error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bradley.models.base import require_fitted

__all__ = ["RouteResult", "route", "routing_values"]


@dataclass
class RouteResult:
    """What :func:`route` chose and what it is expected to gain.

    Attributes
    ----------
    choices : DataFrame
        One row per prompt: ``item``, ``cost``, ``expected_win_rate`` (the
        value routed on), ``win_rate_vs_leader`` (``P(choice beats leader |
        prompt)``, ties half; 0.5 when the choice is the leader).
    leader : str
        The global leader the router is compared against.
    mean_cost, mean_expected_win_rate, win_rate_vs_leader : float
        Averages over the prompts.
    lp_value : float or None
        With ``average_budget``: the LP optimum of the mean value (an upper
        bound on any assignment within the budget).
    multiplier : float or None
        With ``average_budget``: the Lagrange multiplier (value per unit of mean cost) of the budget.
    observed_vs_leader, n_observed : float or None, int
        With ``battles``: among the battles whose two sides are the router's
        choice for that battle's prompt and the leader, the observed share
        won by the choice (ties half), and how many such battles there were
        (a model-free check, usually on few battles).
    observed_se : float or None
        Binomial standard error of ``observed_vs_leader``,
        ``sqrt(r (1 - r) / n_observed)`` (conservative with ties, which
        vary less than a win or a loss).

    ``win_rate_vs_leader`` and ``mean_expected_win_rate`` are model-based and
    optimistic (the choices are selected on the same estimates); the observed
    rate is the check.
    """

    choices: pd.DataFrame
    leader: str
    mean_cost: float
    mean_expected_win_rate: float
    win_rate_vs_leader: float
    lp_value: float | None = None
    multiplier: float | None = None
    observed_vs_leader: float | None = None
    n_observed: int = 0
    observed_se: float | None = None

    def summary(self) -> pd.DataFrame:
        """The routing mix: one row per chosen model with its share of prompts and mean value."""
        table = self.choices.groupby("item").agg(prompts=("cost", "size"), cost=("cost", "first"),
                                                 expected_win_rate=("expected_win_rate", "mean"),
                                                 win_rate_vs_leader=("win_rate_vs_leader", "mean"))
        table["share"] = table["prompts"] / len(self.choices)
        return table.sort_values("prompts", ascending=False).reset_index()


def _win_matrices(model: Any, context: Any, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """``P(i beats j | x)`` for the distinct encoded contexts (chunked), and each prompt's row among them."""
    xt = model._context_design(context)
    unique, inverse = np.unique(xt, axis=0, return_inverse=True)
    win = np.concatenate([model._win_xt(unique[s:s + chunk]) for s in range(0, len(unique), chunk)])
    return win, np.asarray(inverse).ravel()


def routing_values(model: Any, context: Any, candidates: list[Any] | None = None,
                   reference: Any = None) -> pd.DataFrame:
    """Expected win rate of each candidate at each prompt (rows: prompts, columns: candidates).

    Against the field (all other items of the model, ties half) unless
    ``reference`` names an item. Prompts with the same encoded context are
    computed once.
    """
    require_fitted(model, "items_")
    win, inverse = _win_matrices(model, context)
    return _values(model, win, candidates, reference).iloc[inverse].reset_index(drop=True)


def _values(model: Any, win: np.ndarray, candidates: list[Any] | None, reference: Any) -> pd.DataFrame:
    chosen = list(model.items_) if candidates is None else list(candidates)
    cols = model._index.codes(chosen)
    if reference is None:
        k = win.shape[1]
        field = (win.sum(axis=2) - np.diagonal(win, axis1=1, axis2=2)) / max(k - 1, 1)
        values = field[:, cols]
    else:
        ref = int(model._index.codes([reference])[0])
        values = win[:, cols, ref]
    return pd.DataFrame(values, columns=pd.Index(chosen, name="item"))


def route(model: Any, context: Any, costs: Any, *, max_cost: float | None = None,
          average_budget: float | None = None, reference: Any = None, leader: Any = None,
          battles: Any = None) -> RouteResult:
    """Pick a model for each prompt, maximising expected win rate under a cost budget.

    Parameters
    ----------
    model : ContextualBT
        A fitted prompt-conditioned model.
    context : DataFrame or array
        One row per prompt (as in ``model.fit``), e.g. held-out battles' prompts.
    costs : dict or Series
        Cost per candidate model (only these models are routed to).
    max_cost : float, optional
        Per-prompt cap on the cost.
    average_budget : float, optional
        Cap on the mean cost over the batch of prompts (solved exactly as an LP).
    reference : item, optional
        Route on the win rate against this model instead of against the field.
    leader : item, optional
        The model that "always pick the leader" would use; default: the best
        candidate at the average training prompt (the global leader) for the
        linear model; for ``kind="neural"`` (where the coefficients at the
        mean context are not the mean coefficients) the best candidate by its
        coefficient averaged over the routed prompts.
    battles : Comparisons or DataFrame, optional
        Held-out battles, one per ``context`` row: adds the observed win rate
        of the router's choice against the leader where the two met.

    Examples
    --------
    >>> import bradley
    >>> from bradley.models.contextual import ContextualBT
    >>> rng = np.random.default_rng(1)
    >>> a, b = rng.integers(0, 3, 4000), rng.integers(0, 3, 4000)
    >>> keep = a != b
    >>> code = rng.random(4000) < 0.5
    >>> skill = np.where(code[:, None], [[1.0, 0.8, -1.0]], [[1.0, -1.0, 0.0]])
    >>> r = np.arange(4000)
    >>> won = rng.random(4000) < 1 / (1 + np.exp(skill[r, b] - skill[r, a]))
    >>> data = bradley.Comparisons.from_codes(a[keep], b[keep], won[keep].astype(float), items=["big", "coder", "mini"])
    >>> m = ContextualBT(penalty=1.0).fit(data, pd.DataFrame({"code": code[keep]}))
    >>> res = route(m, pd.DataFrame({"code": [True, False]}), {"big": 10.0, "coder": 1.0, "mini": 0.5}, max_cost=2.0)
    >>> res.choices["item"].tolist()
    ['coder', 'mini']
    """
    require_fitted(model, "items_")
    cost_series = pd.Series(costs, dtype=np.float64)
    if cost_series.empty:
        raise ValueError("costs must name at least one candidate model.")
    if not np.isfinite(cost_series.to_numpy()).all() or (cost_series < 0).any():
        raise ValueError(f"costs must be finite and non-negative: {cost_series[~(cost_series >= 0)].to_dict()}.")
    candidates = list(cost_series.index)
    model._index.codes(candidates)  # unknown names raise here, naming them
    win, inverse = _win_matrices(model, context)
    values_unique = _values(model, win, candidates, reference).to_numpy()
    values = values_unique[inverse]
    c = cost_series.to_numpy()
    n, k = values.shape
    lp_value = multiplier = None
    if average_budget is not None:
        if max_cost is not None:
            raise ValueError("give max_cost or average_budget, not both.")
        choice, lp_value, multiplier = _budgeted(values_unique, c, float(average_budget), inverse)
    else:
        allowed = np.ones(k, bool) if max_cost is None else c <= max_cost
        if not allowed.any():
            raise ValueError(f"no candidate costs at most max_cost={max_cost} (cheapest: {c.min()}).")
        choice = np.argmax(np.where(allowed[None, :], values, -np.inf), axis=1)
    if leader is None:
        if getattr(model, "kind", "linear") == "neural":
            xt_prompts = model._context_design(context)
            average = pd.Series(model._coefficients_array(xt_prompts)[0].mean(axis=0), index=model.items_)
        else:
            average = model.coefficients(None).iloc[0]
        leader = max(candidates, key=lambda item: average[item])
    lead = int(model._index.codes([leader])[0])
    chosen_codes = model._index.codes([candidates[j] for j in choice])
    vs_leader = win[inverse, chosen_codes, lead]
    vs_leader = np.where(chosen_codes == lead, 0.5, vs_leader)
    table = pd.DataFrame({"item": [candidates[j] for j in choice], "cost": c[choice],
                          "expected_win_rate": values[np.arange(n), choice], "win_rate_vs_leader": vs_leader})
    observed, n_observed, observed_se = None, 0, None
    if battles is not None:
        observed, n_observed = _observed_vs_leader(model, battles, chosen_codes, lead)
        if observed is not None:
            observed_se = float(np.sqrt(observed * (1 - observed) / n_observed))
    return RouteResult(table, str(leader), float(table["cost"].mean()), float(table["expected_win_rate"].mean()),
                       float(vs_leader.mean()), lp_value, multiplier, observed, n_observed, observed_se)


def _observed_vs_leader(model: Any, battles: Any, chosen: np.ndarray, lead: int) -> tuple[float | None, int]:
    from bradley.models.base import as_comparisons

    data = as_comparisons(battles)
    if data.n_comparisons != len(chosen):
        raise ValueError(f"battles has {data.n_comparisons} rows but context has {len(chosen)}: one battle per prompt.")
    left = model._index.codes(data.items[data.left])
    right = model._index.codes(data.items[data.right])
    o = np.asarray(data.outcome, np.float64)
    as_left = (left == chosen) & (right == lead) & (chosen != lead)
    as_right = (right == chosen) & (left == lead) & (chosen != lead)
    n = int(as_left.sum() + as_right.sum())
    if n == 0:
        return None, 0
    return float((o[as_left].sum() + (1 - o[as_right]).sum()) / n), n


def _budgeted(values: np.ndarray, costs: np.ndarray, budget: float,
              inverse: np.ndarray | None = None) -> tuple[np.ndarray, float, float]:
    """Assignment of each prompt maximising total value with mean cost <= budget.

    ``values`` has one row per distinct prompt and ``inverse`` maps each
    prompt to its row (identity when None). The LP over the distinct rows
    (weighted by their multiplicity) is solved at a vertex, where at most one
    row is split between two models; of that row's prompts, as many as the
    LP's share allows (rounded down) get the dearer model, the rest the cheaper.
    """
    from scipy import sparse
    from scipy.optimize import linprog

    u, k = values.shape
    inverse = np.arange(u) if inverse is None else np.asarray(inverse)
    counts = np.bincount(inverse, minlength=u).astype(np.float64)
    n = float(len(inverse))
    if budget < costs.min() - 1e-12:
        raise ValueError(f"average_budget={budget} is below the cheapest candidate's cost {costs.min()}.")
    rows = np.repeat(np.arange(u), k)
    a_eq = sparse.csr_matrix((np.ones(u * k), (rows, np.arange(u * k))), shape=(u, u * k))
    a_ub = (counts[:, None] * costs[None, :]).ravel()[None, :] / n
    result = linprog(-(counts[:, None] * values).ravel() / n, A_ub=a_ub, b_ub=[budget], A_eq=a_eq, b_eq=np.ones(u),
                     bounds=(0, None), method="highs")
    if result.status != 0:
        raise ValueError(f"the routing LP failed: {result.message}")
    y = result.x.reshape(u, k)
    per_row = np.argmax(y, axis=1)
    choice = per_row[inverse]
    for row in np.flatnonzero(y.max(axis=1) < 1 - 1e-9):
        used = np.flatnonzero(y[row] > 1e-9)
        cheap = used[np.argmin(costs[used])]
        members = np.flatnonzero(inverse == row)
        choice[members] = cheap
        taken = 0
        for other in used[np.argsort(-costs[used])]:  # dearer models first, rounded down
            if other == cheap:
                continue
            m = int(np.floor(y[row, other] * len(members) + 1e-9))
            choice[members[taken:taken + m]] = other
            taken += m
    multiplier = float(-result.ineqlin.marginals[0]) if result.ineqlin is not None else float("nan")
    return choice, float(-result.fun), multiplier
