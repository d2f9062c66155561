"""route(): cost-budgeted routing from a ContextualBT, against brute force on tiny cases."""

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

import bradley
from bradley.models.contextual import ContextualBT
from bradley.routing import _budgeted, route, routing_values

ITEMS = ["big", "coder", "mini", "writer"]


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    n = 6000
    code = rng.random(n) < 0.5
    skill = np.where(code[:, None], [[1.0, 0.9, -1.0, -0.5]], [[1.0, -1.0, 0.0, 0.8]])
    left = rng.integers(0, 4, n)
    right = (left + rng.integers(1, 4, n)) % 4
    r = np.arange(n)
    won = rng.random(n) < expit(skill[r, left] - skill[r, right])
    data = bradley.Comparisons.from_codes(left, right, won.astype(float), items=ITEMS)
    return ContextualBT(penalty=1.0).fit(data, pd.DataFrame({"code": code}))


PROMPTS = pd.DataFrame({"code": [True, False, True, False, True]})
COSTS = {"big": 10.0, "coder": 2.0, "mini": 0.5, "writer": 3.0}


def test_values_are_expected_win_rates_from_the_coefficients(fitted):
    theta = fitted.coefficients(PROMPTS).to_numpy()
    d = theta[:, :, None] - theta[:, None, :]
    field = (expit(d).sum(axis=2) - 0.5) / 3
    np.testing.assert_allclose(routing_values(fitted, PROMPTS).to_numpy(), field, atol=1e-12)
    vs_mini = routing_values(fitted, PROMPTS, ["big", "coder"], reference="mini").to_numpy()
    np.testing.assert_allclose(vs_mini, expit(d[:, [0, 1], 2]), atol=1e-12)


def test_max_cost_is_the_per_prompt_brute_force(fitted):
    values = routing_values(fitted, PROMPTS, list(COSTS)).to_numpy()
    for cap in [0.5, 2.0, 3.0, 100.0]:
        res = route(fitted, PROMPTS, COSTS, max_cost=cap)
        for p in range(len(PROMPTS)):
            allowed = [i for i, c in enumerate(COSTS.values()) if c <= cap]
            best = max(allowed, key=lambda i: values[p, i])
            assert res.choices["item"][p] == list(COSTS)[best]
        assert (res.choices["cost"] <= cap).all()
    unlimited = route(fitted, PROMPTS, COSTS)
    assert unlimited.choices["item"].tolist() == [list(COSTS)[i] for i in values.argmax(axis=1)]
    # the leader is the best at the average prompt; choosing it always gives 0.5
    assert unlimited.leader == "big"
    cheap = route(fitted, PROMPTS, COSTS, max_cost=3.0)
    theta = fitted.coefficients(PROMPTS)
    chosen = cheap.choices["item"].to_numpy()
    expected = expit(np.array([theta.loc[p, c] - theta.loc[p, "big"] for p, c in enumerate(chosen)]))
    assert np.isclose(cheap.win_rate_vs_leader, expected.mean())
    assert set(cheap.choices["item"]) == {"coder", "writer"}  # the specialists, not the global leader


def _brute_force(values, costs, budget):
    best, n, k = -np.inf, *values.shape
    for assignment in itertools.product(range(k), repeat=n):
        idx = np.array(assignment)
        if costs[idx].mean() <= budget + 1e-12:
            best = max(best, values[np.arange(n), idx].sum())
    return best / n


def _lagrangian_bound(values, costs, budget):
    # strong duality: LP value = min over lambda >= 0 of mean_p max_i (v - lambda c) + lambda B; piecewise linear
    lambdas = [0.0]
    for p in range(values.shape[0]):
        for i, j in itertools.combinations(range(values.shape[1]), 2):
            if costs[i] != costs[j]:
                lam = (values[p, i] - values[p, j]) / (costs[i] - costs[j])
                if lam > 0:
                    lambdas.append(lam)
    return min(float(np.mean(np.max(values - lam * costs, axis=1)) + lam * budget) for lam in lambdas)


@pytest.mark.parametrize("seed", range(6))
def test_average_budget_against_brute_force_and_the_dual(seed):
    rng = np.random.default_rng(seed)
    n, k = 5, 3
    values = rng.random((n, k))
    costs = np.array([0.2, 1.0, 3.0])
    budget = rng.uniform(0.3, 2.5)
    choice, lp_value, multiplier = _budgeted(values, costs, budget)
    assert costs[choice].mean() <= budget + 1e-9
    integer = _brute_force(values, costs, budget)
    got = values[np.arange(n), choice].mean()
    assert got <= integer + 1e-12 <= lp_value + 1e-9
    assert np.isclose(lp_value, _lagrangian_bound(values, costs, budget), atol=1e-9)
    assert got >= lp_value - (values.max() - values.min()) / n - 1e-12  # within one prompt of the bound
    assert multiplier >= -1e-12


def test_average_budget_exact_when_the_budget_is_a_cost_combination():
    values = np.array([[0.9, 0.1], [0.6, 0.5], [0.8, 0.2]])
    costs = np.array([1.0, 0.0])
    choice, lp_value, _ = _budgeted(values, costs, 2 / 3)  # two expensive picks: prompts 0 and 2
    assert choice.tolist() == [0, 1, 0]
    assert np.isclose(lp_value, (0.9 + 0.5 + 0.8) / 3)


def test_route_average_budget_and_errors(fitted):
    res = route(fitted, PROMPTS, COSTS, average_budget=1.5)
    assert res.mean_cost <= 1.5 + 1e-12 and res.lp_value is not None
    assert res.mean_expected_win_rate <= res.lp_value + 1e-12
    table = res.summary()
    assert np.isclose(table["share"].sum(), 1.0)
    with pytest.raises(ValueError, match="cheapest"):
        route(fitted, PROMPTS, COSTS, max_cost=0.1)
    with pytest.raises(ValueError, match="cheapest"):
        route(fitted, PROMPTS, COSTS, average_budget=0.1)
    with pytest.raises(ValueError, match="not both"):
        route(fitted, PROMPTS, COSTS, max_cost=1.0, average_budget=1.0)
    with pytest.raises(bradley.errors.ComparisonDataError, match="unknown"):
        route(fitted, PROMPTS, {"nope": 1.0})


@pytest.mark.parametrize("seed", range(4))
def test_average_budget_with_repeated_prompts_matches_brute_force_on_the_expanded_batch(seed):
    rng = np.random.default_rng(10 + seed)
    distinct = rng.random((2, 3))
    inverse = np.array([0, 1, 0, 0, 1, 0])
    costs = np.array([0.0, 1.0, 2.5])
    budget = rng.uniform(0.2, 2.0)
    choice, lp_value, _ = _budgeted(distinct, costs, budget, inverse)
    expanded = distinct[inverse]
    assert costs[choice].mean() <= budget + 1e-9
    got = expanded[np.arange(6), choice].mean()
    assert got <= _brute_force(expanded, costs, budget) + 1e-12 <= lp_value + 1e-9
    assert np.isclose(lp_value, _lagrangian_bound(expanded, costs, budget), atol=1e-9)
    assert got >= lp_value - (expanded.max() - expanded.min()) / 6 - 1e-12


def test_observed_win_rate_against_the_leader_on_held_out_battles(fitted):
    res = route(fitted, PROMPTS, COSTS, max_cost=3.0)
    chosen = res.choices["item"].tolist()  # code prompts -> coder, others -> writer
    # prompt 0: choice vs big, choice wins; 1: big (left) vs choice, tie; 2: unrelated pair;
    # 3: big vs choice, big wins; 4: choice vs mini
    left = [chosen[0], "big", "mini", "big", chosen[4]]
    right = ["big", chosen[1], "writer", chosen[3], "mini"]
    outcome = [1.0, 0.5, 1.0, 1.0, 0.0]
    battles = bradley.Comparisons.from_arrays(left, right, outcome, items=ITEMS)
    checked = route(fitted, PROMPTS, COSTS, max_cost=3.0, battles=battles)
    assert checked.n_observed == 3
    assert np.isclose(checked.observed_vs_leader, (1.0 + 0.5 + 0.0) / 3)
    assert route(fitted, PROMPTS.iloc[[4]], COSTS, max_cost=3.0, battles=battles.take([4])).observed_vs_leader is None


def test_observed_vs_leader_has_a_binomial_standard_error(fitted):
    res = route(fitted, PROMPTS, COSTS, max_cost=3.0)
    chosen = res.choices["item"].tolist()
    left, right = [chosen[0], "big", "big", chosen[4]], ["big", chosen[1], chosen[3], "big"]
    battles = bradley.Comparisons.from_arrays(left, right, [1.0, 0.0, 1.0, 1.0], items=ITEMS)
    checked = route(fitted, PROMPTS.iloc[[0, 1, 3, 4]], COSTS, max_cost=3.0, battles=battles)
    assert checked.n_observed == 4 and np.isclose(checked.observed_vs_leader, 0.75)  # won 3 of 4
    assert np.isclose(checked.observed_se, np.sqrt(0.75 * 0.25 / 4))
    assert res.observed_se is None


def test_routing_values_with_davidson_ties_count_a_tie_half():
    rng = np.random.default_rng(5)
    n = 3000
    code = rng.random(n) < 0.5
    skill = np.where(code[:, None], [[1.0, 0.9, -1.0, -0.5]], [[1.0, -1.0, 0.0, 0.8]])
    left = rng.integers(0, 4, n)
    right = (left + rng.integers(1, 4, n)) % 4
    r = np.arange(n)
    u = rng.random(n)
    p = expit(skill[r, left] - skill[r, right])
    outcome = np.where(u < 0.7 * p, 1.0, np.where(u < 0.7, 0.0, 0.5))
    data = bradley.Comparisons.from_codes(left, right, outcome, items=ITEMS)
    model = ContextualBT(ties="davidson", penalty=1.0).fit(data, pd.DataFrame({"code": code}))
    theta = model.coefficients(PROMPTS).to_numpy()
    nu = np.exp(model.tie_coef_.iloc[0])
    d = theta[:, :, None] - theta[:, None, :]
    pa, pt, pb = np.exp(d / 2), nu, np.exp(-d / 2)
    win = (pa + pt / 2) / (pa + pt + pb)
    assert np.abs(win - expit(d)).max() > 1e-2  # differs from the BT win probability
    field = (win.sum(axis=2) - np.diagonal(win, axis1=1, axis2=2)) / 3
    np.testing.assert_allclose(routing_values(model, PROMPTS).to_numpy(), field, atol=1e-12)
    vs_big = routing_values(model, PROMPTS, ["coder", "writer"], reference="big").to_numpy()
    np.testing.assert_allclose(vs_big, win[:, [1, 3], 0], atol=1e-12)
    res = route(model, PROMPTS, COSTS, max_cost=3.0)
    chosen = model._index.codes(res.choices["item"].to_numpy())
    assert np.isclose(res.win_rate_vs_leader, win[np.arange(len(PROMPTS)), chosen, 0].mean())


def test_neural_default_leader_is_the_best_average_coefficient_over_the_prompts(fitted):
    import copy

    fake = copy.copy(fitted)
    fake.kind = "neural"

    def coefficients_array(xt):  # big leads at the average context, coder on average over the routed prompts
        code = xt[:, 1] > 0
        theta = np.where(code[:, None], [[1.0, 3.0, -2.0, -2.0]], [[1.0, -0.5, -0.5, 0.0]])
        theta[np.abs(xt[:, 1]) < 1e-12] = [1.0, 0.5, -1.0, -0.5]
        return theta - theta.mean(axis=1, keepdims=True), None

    fake._coefficients_array = coefficients_array
    assert fake.coefficients(None).iloc[0].idxmax() == "big"
    res = route(fake, PROMPTS, COSTS)  # 3 code prompts: coder 3.0; 2 others: -0.5 -> mean 1.6 > 1.0
    assert res.leader == "coder"
    assert route(fitted, PROMPTS, COSTS).leader == "big"  # the linear model: at the average training prompt
