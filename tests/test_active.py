"""bradley.active: pair selection against brute force, budgets, determinism, and a simulation."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit

import bradley
from bradley.active import (
    STRATEGIES,
    ActiveSampler,
    _close_targets,
    _neighbour_targets,
    best_information_gain,
    choose_pairs,
    expected_information_gain,
    expected_misorder_reduction,
    rank_one_update,
)
from bradley.data import PairCounts
from bradley.solvers import bt


def _laplace(pc: PairCounts, prior: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    result = bt.newton(pc, prior_variance=prior)
    return result.scores, np.linalg.inv(bt.bt_neg_hessian(result.scores, pc, prior))


def test_rank_one_update_is_the_inverse_of_the_updated_information():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 5))
    info = a @ a.T + np.eye(5)
    d = np.zeros(5)
    d[1], d[3] = 1.0, -1.0
    updated = rank_one_update(np.linalg.inv(info), 1, 3, 0.2)
    assert np.allclose(updated, np.linalg.inv(info + 0.2 * np.outer(d, d)), atol=1e-12)


def test_information_gain_equals_entropy_reduction_of_the_updated_gaussian():
    # the closed form against an explicit inverse of (information + w d d') per candidate
    data, _ = bradley.simulate_bt(5, 30, seed=2)
    mu, cov = _laplace(data.pair_counts())
    tk, tl = _neighbour_targets(mu, np.arange(5), 2)
    first, second = np.triu_indices(5, 1)
    fast = expected_information_gain(mu, cov, first, second, (tk, tl))
    info = np.linalg.inv(cov)
    s2 = cov[tk, tk] + cov[tl, tl] - 2 * cov[tk, tl]
    rho = np.exp(-0.5 * (mu[tk] - mu[tl]) ** 2 / s2)
    for c, (i, j) in enumerate(zip(first, second, strict=True)):
        p = expit(mu[i] - mu[j])
        d = np.zeros(5)
        d[i], d[j] = 1.0, -1.0
        new = np.linalg.inv(info + p * (1 - p) * np.outer(d, d))
        s2_new = new[tk, tk] + new[tl, tl] - 2 * new[tl, tk]
        assert fast[c] == pytest.approx(np.sum(rho * 0.5 * np.log(s2 / s2_new)), rel=1e-9)


@pytest.mark.parametrize("seed", [5, 11])
def test_information_gain_against_brute_force_over_outcomes(seed):
    """Expected posterior entropy by enumerating both outcomes and refitting (4 items)."""
    prior = 1.0
    data, _ = bradley.simulate_bt(4, 12, seed=seed)
    pc = data.pair_counts()
    mu, cov = _laplace(pc, prior)
    tk, tl = _neighbour_targets(mu, np.arange(4), 2)
    first, second = np.triu_indices(4, 1)
    fast = expected_information_gain(mu, cov, first, second, (tk, tl))

    def entropy(s: np.ndarray) -> np.ndarray:
        return 0.5 * np.log(s[tk, tk] + s[tl, tl] - 2 * s[tk, tl])

    s2 = cov[tk, tk] + cov[tl, tl] - 2 * cov[tk, tl]
    rho = np.exp(-0.5 * (mu[tk] - mu[tl]) ** 2 / s2)
    brute = []
    for i, j in zip(first, second, strict=True):
        p = expit(mu[i] - mu[j])
        expected = np.zeros(len(tk))
        for winner, loser, prob in ((i, j, p), (j, i, 1 - p)):
            wins = pc.win_matrix().copy()
            wins[winner, loser] += 1
            _, cov_after = _laplace(PairCounts.from_matrix(wins, items=pc.items), prior)
            expected += prob * entropy(cov_after)
        brute.append(np.sum(rho * (entropy(cov) - expected)))
    brute = np.array(brute)
    # the rank-one (fixed-mode) Laplace update against refits at the new modes: same best pair,
    # same order, values within 15 % (the refit moves the mode, which changes the curvature)
    assert np.argmax(fast) == np.argmax(brute)
    assert (np.argsort(fast) == np.argsort(brute)).all()
    assert np.all((brute / fast > 0.8) & (brute / fast < 1.05))


@pytest.mark.parametrize("seed", range(4))
def test_pruned_search_finds_the_exact_maximiser(seed):
    pc = bradley.simulate_bt(40, 150 * seed, seed=seed)[0].pair_counts() if seed else _empty(40)
    mu, cov = _laplace(pc)
    first, second = np.triu_indices(40, 1)
    targets = _neighbour_targets(mu, np.arange(40), 2)
    full = expected_information_gain(mu, cov, first, second, targets)
    pruned = best_information_gain(mu, cov, first, second, targets)
    evaluated = np.isfinite(pruned)
    assert np.allclose(pruned[evaluated], full[evaluated], rtol=1e-12)
    assert pruned.max() == pytest.approx(full.max(), rel=1e-12)
    assert evaluated[full >= full.max() * (1 - 1e-10)].all()


def _empty(n: int) -> PairCounts:
    z = np.zeros(0, dtype=np.int64)
    return PairCounts(z, z.copy(), np.zeros(0), np.zeros(0), np.zeros(0), np.arange(n).astype(object))


@settings(max_examples=40, deadline=None)
@given(
    strategy=st.sampled_from(STRATEGIES),
    n_items=st.integers(2, 7),
    n=st.integers(0, 12),
    budget=st.one_of(st.none(), st.integers(0, 4)),
    seed=st.integers(0, 10_000),
    n_votes=st.integers(0, 20),
    excluded=st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), max_size=8),
)
def test_budgets_and_exclusions_are_never_violated(strategy, n_items, n, budget, seed, n_votes, excluded):
    names = [f"m{k}" for k in range(n_items)]
    rng = np.random.default_rng(seed)
    data = None
    if n_votes:
        data, _ = bradley.simulate_bt(n_items, n_votes, seed=seed, item_names=False)
        data = bradley.Comparisons.from_arrays(np.array(names, dtype=object)[data.left],
                                               np.array(names, dtype=object)[data.right], data.outcome)
    counts = {name: int(rng.integers(0, 4)) for name in names[: n_items - 1]}  # the last has no entry: 0
    exclude = {frozenset((names[a], names[b])) for a, b in excluded if a < n_items and b < n_items and a != b}
    pairs = choose_pairs(data, names, n, strategy=strategy, exclude=exclude, item_counts=counts,
                         max_per_item=budget, rng=seed)
    assert len(pairs) <= n
    assert len({frozenset(p) for p in pairs}) == len(pairs)  # distinct within a batch
    used = dict.fromkeys(names, 0)
    for left, right in pairs:
        assert left != right and left in used and right in used
        assert frozenset((left, right)) not in exclude
        used[left] += 1
        used[right] += 1
    if budget is not None:
        for name in names:
            if used[name]:
                assert counts.get(name, 0) + used[name] <= budget
    # fewer than n only when no allowed pair is left
    if len(pairs) < n:
        remaining = {name: counts.get(name, 0) + used[name] for name in names}
        open_items = [x for x in names if budget is None or remaining[x] < budget]
        chosen = {frozenset(p) for p in pairs}
        left_over = [(a, b) for k, a in enumerate(open_items) for b in open_items[k + 1:]
                     if frozenset((a, b)) not in exclude and frozenset((a, b)) not in chosen]
        assert left_over == []


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_same_seed_same_pairs(strategy):
    data, _ = bradley.simulate_bt(12, 80, seed=4, item_names=True)
    items = list(data.items)
    a = choose_pairs(data, items, 5, strategy=strategy, rng=7)
    b = choose_pairs(data, items, 5, strategy=strategy, rng=7)
    assert a == b and len(a) == 5


def test_inputs_and_new_items():
    frame = pd.DataFrame({"model_a": ["x", "y", "x"], "model_b": ["y", "z", "z"],
                          "winner": ["model_a", "model_b", "tie"]})
    sampler = ActiveSampler("uncertainty", seed=0).fit(frame, ["x", "y", "z", "new"])
    # the item without votes has the prior's variance, the largest: it is in the first pair
    assert "new" in sampler.next_pairs(1)[0]
    assert sampler.summary()["item"].tolist()[-1] in {"x", "y", "z", "new"}
    pc = bradley.read_comparisons(frame).pair_counts()
    assert choose_pairs(pc, ["x", "y"], 3, rng=0) in ([("x", "y")], [("y", "x")])
    with pytest.raises(ValueError, match="unknown strategy"):
        choose_pairs(None, ["a", "b"], strategy="best")
    with pytest.raises(ValueError, match="candidate items"):
        ActiveSampler().fit(None)


@pytest.mark.parametrize("strategy", ["uncertainty", "information", "information-neighbours", "misorder"])
@pytest.mark.parametrize("new_item", [False, True])
def test_batch_is_greedy_under_the_updated_posterior(strategy, new_item):
    """Pick k maximises the criterion given picks 1..k-1 (information recomputed by explicit inverses)."""
    data, _ = bradley.simulate_bt(8, 120, seed=3, item_names=True)
    items = [*data.items, "new"] if new_item else list(data.items)
    m = len(items)
    kind = "neighbours" if strategy.endswith("neighbours") else "close"
    strategy = strategy.split("-")[0]
    sampler = ActiveSampler(strategy, targets=kind, seed=0).fit(data, items)
    batch = sampler.next_pairs(5)
    mu, info = sampler.scores_, np.linalg.inv(sampler.covariance_)
    code = {name: k for k, name in enumerate(sampler.items_)}
    first, second = np.triu_indices(m, 1)
    if kind == "neighbours":
        targets = _neighbour_targets(mu, np.arange(m), 2)
    else:  # the 2 m pairs with the smallest |z| (no ties here, so the random tie-break does not matter)
        z = np.abs(mu[first] - mu[second]) / np.sqrt(
            np.diagonal(sampler.covariance_)[first] + np.diagonal(sampler.covariance_)[second]
            - 2 * sampler.covariance_[first, second])
        closest = np.argsort(z)[: 2 * m]
        targets = (first[closest], second[closest])
        assert set(zip(*_close_targets(mu, sampler.covariance_, 2 * m, np.random.default_rng(5)), strict=True)) \
            == set(zip(*targets, strict=True))
    taken: set[tuple[int, int]] = set()
    for left, right in batch:
        cov = np.linalg.inv(info)
        if strategy == "uncertainty":  # D-optimal: the log-determinant reduction, by explicit determinants
            logdet = np.linalg.slogdet(cov)[1]
            crit = np.empty(len(first))
            for c, (a, b) in enumerate(zip(first, second, strict=True)):
                e = np.zeros(m)
                e[a], e[b] = 1.0, -1.0
                q = expit(mu[a] - mu[b])
                crit[c] = logdet + np.linalg.slogdet(info + q * (1 - q) * np.outer(e, e))[1]
        elif strategy == "misorder":
            crit = expected_misorder_reduction(mu, cov, first, second, targets)
        else:
            crit = expected_information_gain(mu, cov, first, second, targets)
        free = np.array([(a, b) not in taken for a, b in zip(first, second, strict=True)])
        i, j = sorted((code[left], code[right]))
        chosen = crit[(first == i) & (second == j)][0]
        assert chosen >= crit[free].max() - 1e-8 * abs(crit[free].max())
        taken.add((i, j))
        p = expit(mu[i] - mu[j])
        d = np.zeros(m)
        d[i], d[j] = 1.0, -1.0
        info = info + p * (1 - p) * np.outer(d, d)
    if not new_item and strategy == "information":
        # not five copies of one region: the batch touches most of the items
        assert len({x for pair in batch for x in pair}) >= 6


@pytest.mark.parametrize("strategy", ["arena", "arena-balanced"])
def test_arena_boosts_new_items(strategy):
    data, _ = bradley.simulate_bt(6, 300, seed=0, item_names=True)
    items = [*data.items, "newcomer"]

    def share(boost: float) -> float:
        sampler = ActiveSampler(strategy, boost=boost, seed=0).fit(data, items)
        pairs = [p for _ in range(300) for p in sampler.next_pairs(1)]
        return float(np.mean(["newcomer" in p for p in pairs]))

    # boost 5: anchor weight 5 of 11 plus being a rival (exact share 0.71 for "arena"); boost 1: 2/7
    assert share(5.0) > share(1.0) + 0.1


def test_arena_is_fastchats_two_stage_draw():
    """Pair frequencies against the exact probabilities of get_battle_pair with weights 1 and 5 (new items)."""
    wins = np.zeros((4, 4))
    wins[0, 1] = wins[1, 0] = wins[0, 2] = wins[2, 0] = wins[1, 2] = wins[2, 1] = 10
    wins[0, 3] = 1  # item 3: 1 comparison, fewer than half the median (20): new, weight 5
    pc = PairCounts.from_matrix(wins, items=list("abcd"))
    weight = {"a": 1.0, "b": 1.0, "c": 1.0, "d": 5.0}
    total = sum(weight.values())
    exact = {}
    for x in "abcd":
        for y in "abcd":
            if x < y:
                exact[x + y] = (weight[x] / total * weight[y] / (total - weight[x])
                                + weight[y] / total * weight[x] / (total - weight[y]))
    draws = 4000
    sampler = ActiveSampler("arena", seed=1).fit(pc)
    seen = dict.fromkeys(exact, 0)
    for _ in range(draws):
        (pair,) = sampler.next_pairs(1)
        seen["".join(sorted(pair))] += 1
    for key, prob in exact.items():
        se = np.sqrt(prob * (1 - prob) / draws)
        assert abs(seen[key] / draws - prob) < 4.5 * se, (key, seen[key] / draws, prob)
    # the balanced variant favours the pairs with fewer comparisons: (a, d) has 1, (b, d) and (c, d) none
    balanced = ActiveSampler("arena-balanced", seed=1).fit(pc)
    counts = dict.fromkeys(exact, 0)
    for _ in range(draws):
        (pair,) = balanced.next_pairs(1)
        counts["".join(sorted(pair))] += 1
    assert counts["ab"] < 0.5 * seen["ab"]


def test_uncertainty_is_d_optimal():
    """log1p(w Var(diff)) equals the log-determinant reduction of the covariance (explicit determinants)."""
    data, _ = bradley.simulate_bt(6, 60, seed=8, item_names=True)
    sampler = ActiveSampler("uncertainty", seed=0).fit(data)
    mu, cov = sampler.scores_, sampler.covariance_
    first, second = np.triu_indices(6, 1)
    gains = []
    for i, j in zip(first, second, strict=True):
        p = expit(mu[i] - mu[j])
        gains.append(np.linalg.slogdet(cov)[1] - np.linalg.slogdet(rank_one_update(cov, i, j, p * (1 - p)))[1])
    best = int(np.argmax(gains))
    (pair,) = sampler.next_pairs(1)
    code = {name: k for k, name in enumerate(sampler.items_)}
    assert sorted((code[pair[0]], code[pair[1]])) == [first[best], second[best]]
    # a far-apart pair with the largest variance but p (1 - p) ~ 0 is not chosen
    wins = np.zeros((4, 4))
    truth = np.array([6.0, 0.0, 0.2, -6.0])
    for i in range(4):
        for j in range(4):
            if i != j:
                wins[i, j] = 3 * expit(truth[i] - truth[j])
    pc = PairCounts.from_matrix(wins, items=list("abcd"))
    assert set(choose_pairs(pc, list("abcd"), strategy="uncertainty", rng=0)[0]) != {"a", "d"}


def test_misorder_reduction_against_quadrature():
    """The Owen's T closed form against integrating Phi(-|m'| / s') over m' ~ N(m, v) numerically."""
    from scipy.integrate import quad
    from scipy.special import ndtr

    data, _ = bradley.simulate_bt(5, 25, seed=6)
    mu, cov = _laplace(data.pair_counts())
    tk, tl = _neighbour_targets(mu, np.arange(5), 2)
    first, second = np.triu_indices(5, 1)
    fast = expected_misorder_reduction(mu, cov, first, second, (tk, tl))
    for c, (i, j) in enumerate(zip(first, second, strict=True)):
        p = expit(mu[i] - mu[j])
        after = rank_one_update(cov, i, j, p * (1 - p))
        total = 0.0
        for k, l in zip(tk, tl, strict=True):
            m = mu[k] - mu[l]
            s2 = cov[k, k] + cov[l, l] - 2 * cov[k, l]
            s2_after = after[k, k] + after[l, l] - 2 * after[k, l]
            v = s2 - s2_after  # variance of the posterior mean before the outcome is seen
            sd_after = np.sqrt(s2_after)
            value, _ = quad(lambda u, m=m, v=v, sd=sd_after: ndtr(-abs(m + np.sqrt(v) * u) / sd)
                            * np.exp(-0.5 * u * u) / np.sqrt(2 * np.pi), -12, 12, points=[-m / np.sqrt(v)],
                            epsabs=1e-13, limit=200)
            total += ndtr(-abs(m) / np.sqrt(s2)) - value
        assert fast[c] == pytest.approx(total, rel=1e-6, abs=1e-12)
    # Sheppard: at z = 0 the reduction is arcsin(sqrt(x)) / pi; here x = w c^2 / (s_t^2 (1 + w s_c^2)) = 1/3
    assert expected_misorder_reduction(np.zeros(2), np.eye(2), np.array([0]), np.array([0]) + 1,
                                       (np.array([0]), np.array([1])))[0] == pytest.approx(
        np.arcsin(np.sqrt(1 / 3)) / np.pi, rel=1e-12)


def test_thompson_picks_pairs_adjacent_in_the_ranking():
    # well separated scores and many votes: every draw ranks the items as the truth does
    truth = np.array([6.0, 4.5, 3.0, 1.5, 0.0, -1.5])
    wins = np.zeros((6, 6))
    for i in range(6):
        for j in range(6):
            if i != j:
                wins[i, j] = 400 * expit(truth[i] - truth[j])
    pc = PairCounts.from_matrix(wins, items=[f"m{k}" for k in range(6)])
    batch = choose_pairs(pc, list(pc.items), 5, strategy="thompson", rng=3)
    assert {frozenset(p) for p in batch} == {frozenset((f"m{k}", f"m{k + 1}")) for k in range(5)}


def test_malformed_exclusions_raise():
    items = ["a", "b", "c"]
    assert choose_pairs(None, items, 3, exclude={frozenset(("a", "b")), ("c", "zz")}, rng=0)
    with pytest.raises(ValueError, match="'a', 'b', 'c'"):
        choose_pairs(None, items, exclude=[("a", "b"), ("a", "b", "c")], rng=0)
    with pytest.raises(ValueError, match="frozenset"):
        choose_pairs(None, items, exclude=[frozenset(("a",))], rng=0)
    pairs = choose_pairs(None, items, 3, exclude=[("b", "a"), ["c", "a"]], rng=0)
    assert {frozenset(p) for p in pairs} == {frozenset(("b", "c"))}


def test_top_k_targets_straddle_the_boundary():
    scores = np.array([3.0, 2.0, 1.0, 0.0, -1.0, -2.0])
    hi, lo = _neighbour_targets(scores, np.arange(6), 1, top_k=2)
    assert sorted(zip(hi.tolist(), lo.tolist(), strict=True)) == [(0, 2), (0, 3), (1, 2), (1, 3)]
    hi, lo = _neighbour_targets(scores, np.arange(6), 1)
    assert sorted(zip(hi.tolist(), lo.tolist(), strict=True)) == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]
    # no votes: equal scores ranked by the tie-break key
    hi, lo = _neighbour_targets(np.zeros(3), np.arange(3), 1, tie_break=np.array([0.5, 0.9, 0.1]))
    assert list(zip(hi.tolist(), lo.tolist(), strict=True)) == [(2, 0), (0, 1)]


def test_top_k_information_asks_about_the_boundary():
    # four clearly separated strong items and four weak ones with a close pair at the boundary
    wins = np.zeros((8, 8))
    truth = np.array([4.0, 3.0, 2.0, 1.0, 0.9, -1.0, -2.0, -3.0])
    for i in range(8):
        for j in range(8):
            if i != j:
                wins[i, j] = 20 * expit(truth[i] - truth[j])
    pc = PairCounts.from_matrix(wins, items=[f"m{k}" for k in range(8)])
    (pair,) = choose_pairs(pc, list(pc.items), top_k=4, rng=0)
    assert set(pair) == {"m3", "m4"}
    with pytest.raises(ValueError, match="top_k"):
        choose_pairs(pc, list(pc.items), top_k=0)


def _place_newcomer(strategy: str, seed: int, budget: int = 24, batch: int = 6) -> float:
    """Error of a new item's estimated score after ``budget`` chosen comparisons.

    Ten established items (scores -2..2, 1,500 uniform comparisons) and one new
    item with a score drawn from U(-2, 2); returns |estimated - true| of the
    new item's score relative to the mean of the established ones.
    """
    rng = np.random.default_rng(seed)
    truth = np.append(np.linspace(-2, 2, 10), rng.uniform(-2, 2))
    names = np.array([f"m{k}" for k in range(10)] + ["new"], dtype=object)
    old, _ = bradley.simulate_bt(10, 1500, scores=truth[:10], seed=seed)
    rows = list(zip(old.left.tolist(), old.right.tolist(), old.outcome.tolist(), strict=True))
    code = {name: k for k, name in enumerate(names)}

    def data() -> bradley.Comparisons:
        left, right, outcome = (np.array(c) for c in zip(*rows, strict=True))
        return bradley.Comparisons.from_arrays(names[left], names[right], outcome, items=names)

    sampler = ActiveSampler(strategy, seed=rng)
    for _ in range(budget // batch):
        for a, b in sampler.fit(data(), names).next_pairs(batch):
            i, j = code[a], code[b]
            rows.append((i, j, float(rng.random() < expit(truth[i] - truth[j]))))
    est = bradley.BradleyTerry(prior=10.0).fit(data()).scores_
    return abs((est[10] - est[:10].mean()) - (truth[10] - truth[:10].mean()))


@pytest.mark.slow
def test_information_beats_uniform_at_a_fixed_budget():
    """Placing a newcomer with 24 comparisons: information concentrates them where its rank is in doubt."""
    seeds = range(8)
    errors = {s: np.array([_place_newcomer(s, seed) for seed in seeds]) for s in ("uniform", "information")}
    # measured: mean error uniform 1.33, information 0.22, 7 of 8 seeds better (a uniform pair involves
    # the newcomer 2 times in 11; the information pairs nearly always)
    assert errors["information"].mean() < 0.6 * errors["uniform"].mean(), errors
    assert (errors["information"] < errors["uniform"]).sum() >= 6, errors


@pytest.mark.parametrize("strategy", ["information", "misorder", "thompson"])
def test_one_pair_among_200_items_is_fast(strategy):
    data, _ = bradley.simulate_bt(200, 4000, seed=0, item_names=True)
    pc = data.pair_counts()
    items = list(data.items)
    choose_pairs(pc, items, strategy=strategy, rng=0)
    best = min(_timed(lambda k=k: choose_pairs(pc, items, strategy=strategy, rng=k)) for k in range(3))
    # measured (best of 3, fit included, shared 2-core machine): see docs/active.md; the service wants < 50 ms
    assert best < 0.15


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def test_docs_example_runs():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "active.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)
    assert blocks
    for code in blocks:
        exec(compile(code, "docs/active.md", "exec"), {"__name__": "__docs__"})


def test_extreme_scores_stay_finite():
    # scores of +-50: the comparison of the far pair carries (almost) no information, nothing overflows
    scores = np.array([50.0, 0.0, 0.1, -50.0])
    cov = np.eye(4) * 0.5
    first, second = np.triu_indices(4, 1)
    targets = _neighbour_targets(scores, np.arange(4), 2)
    gain = expected_information_gain(scores, cov, first, second, targets)
    assert np.isfinite(gain).all() and (gain >= 0).all()
    assert np.argmax(gain) == 3  # the pair (1, 2), whose order is in doubt
    pruned = best_information_gain(scores, cov, first, second, targets)
    assert pruned.max() == gain.max()
    # a one-sided record: every model-based strategy still returns a pair
    wins = np.zeros((3, 3))
    wins[0, 1] = wins[0, 2] = wins[1, 2] = 500
    pc = PairCounts.from_matrix(wins, items=["a", "b", "c"])
    for strategy in ("uncertainty", "information", "misorder", "thompson"):
        assert len(choose_pairs(pc, ["a", "b", "c"], 2, strategy=strategy, rng=0)) == 2
    gain = expected_misorder_reduction(scores, cov, first, second, targets)
    assert np.isfinite(gain).all() and (gain >= -1e-15).all() and np.argmax(gain) == 3
