from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize
from scipy.special import logsumexp

import bradley
from bradley import PlackettLuce, Rankings, break_rankings, read_rankings
from bradley.models.plackett_luce import plackett_luce_log_likelihood


def simulate_pl(n_items, n_rankings, k, seed):
    rng = np.random.default_rng(seed)
    truth = rng.normal(0, 1, n_items)
    truth -= truth.mean()
    orderings = []
    for _ in range(n_rankings):
        chosen = rng.choice(n_items, k, replace=False)
        # Gumbel trick: sorting s + Gumbel noise draws a Plackett-Luce ranking
        keys = truth[chosen] + rng.gumbel(size=k)
        orderings.append(chosen[np.argsort(-keys)].tolist())
    return orderings, truth


def brute_force_pl(rankings_as_levels, n):
    """Independent PL likelihood: loop over rankings and stages (Breslow ties)."""
    stages = []  # (chosen, remaining) per informative stage
    for entries in rankings_as_levels:  # list of (item, level or None)
        for lv in sorted({lv for _, lv in entries if lv is not None}):
            remaining = [i for i, l2 in entries if l2 is None or l2 >= lv]
            chosen = [i for i, l2 in entries if l2 == lv]
            if len(remaining) > 1:  # a single item choosing from itself: probability 1
                stages.append((chosen, remaining))

    def negll(free):
        s = np.append(0.0, free)
        return -sum(s[chosen].sum() - len(chosen) * logsumexp(s[remaining]) for chosen, remaining in stages)

    res = optimize.minimize(negll, np.zeros(n - 1), method="BFGS", options={"gtol": 1e-9})
    s = np.append(0.0, res.x)
    return s - s.mean(), -res.fun


@pytest.mark.parametrize("solver", ["newton", "mm"])
def test_matches_brute_force_with_ties_and_partial_rankings(solver):
    rng = np.random.default_rng(1)
    entries, ids, items, ranks = [], [], [], []
    for r in range(60):
        chosen = rng.choice(5, 4, replace=False)
        levels = [1, 2, 2, None] if r % 3 == 0 else ([1, 2, None, None] if r % 3 == 1 else [1, 2, 3, 4])
        order = rng.permutation(4)
        row = [(int(chosen[order[j]]), levels[j]) for j in range(4)]
        entries.append(row)
        for i, lv in row:
            ids.append(r)
            items.append(i)
            ranks.append(np.nan if lv is None else lv)
    rankings = Rankings.from_long(ids, items, ranks)
    model = PlackettLuce(solver=solver).fit(rankings)
    truth, ll = brute_force_pl(entries, 5)
    np.testing.assert_allclose(model.scores_, truth, atol=1e-5)
    assert model.log_likelihood_ == pytest.approx(ll, rel=1e-8)
    assert model.converged_


def test_two_item_rankings_are_bradley_terry():
    orderings, _ = simulate_pl(6, 800, 2, seed=2)
    pl = PlackettLuce().fit(Rankings.from_orderings(orderings))
    bt = bradley.BradleyTerry().fit(break_rankings(Rankings.from_orderings(orderings)))
    np.testing.assert_allclose(pl.scores_, bt.scores_, atol=1e-7)


def test_full_pl_is_more_efficient_than_the_pairwise_split():
    pl_err, split_err = [], []
    for seed in range(6):
        orderings, truth = simulate_pl(15, 400, 5, seed=10 + seed)
        rankings = Rankings.from_orderings(orderings)
        items = rankings.items.astype(int)
        pl = PlackettLuce().fit(rankings)
        split = bradley.BradleyTerry().fit(break_rankings(rankings, "full"))
        pl_err.append(np.mean((pl.scores_ - truth[items]) ** 2))
        split_err.append(np.mean((split.scores_ - truth[items]) ** 2))
        # both consistent: close to the truth
        assert np.corrcoef(pl.scores_, truth[items])[0, 1] > 0.95
        assert np.corrcoef(split.scores_, truth[items])[0, 1] > 0.95
    assert np.mean(pl_err) < np.mean(split_err)


def test_readers_and_breaking(tmp_path):
    long = pd.DataFrame({"ranking_id": [1, 1, 1, 2, 2, 2], "item": list("abcbca"), "rank": [1, 2, 2, 1, 2, None]})
    path = tmp_path / "r.csv"
    long.to_csv(path, index=False)
    r = read_rankings(path)
    assert r.n_rankings == 2 and r.items.tolist() == ["a", "b", "c"]
    wide = pd.DataFrame([["a", "b", "c"], ["c", "a", None]])
    w = read_rankings(wide, layout="wide")
    assert w.n_rankings == 2
    full = break_rankings(Rankings.from_orderings([["a", "b", "c", "d"]]), "full")
    adjacent = break_rankings(Rankings.from_orderings([["a", "b", "c", "d"]]), "adjacent")
    assert full.n_comparisons == 6 and adjacent.n_comparisons == 3
    tied = break_rankings(r, "full")
    assert 0.5 in tied.outcome.tolist()
    with pytest.raises(bradley.ComparisonDataError, match="fewer than two"):
        Rankings.from_long([1, 2, 2], ["a", "a", "b"], [1, 1, 2])
    with pytest.raises(bradley.MLEDoesNotExistError):
        PlackettLuce().fit(Rankings.from_orderings([["a", "b"], ["a", "c"]]))


def test_wide_layout_with_an_id_column():
    frame = pd.DataFrame({"race": [1, 2], "p1": [5, 7], "p2": [7, 9], "p3": [9, None]})
    r = read_rankings(frame, layout="wide", ranking="race")
    assert r.n_rankings == 2 and sorted(r.items.tolist()) == [5, 7, 9]


# --------------------------------------------------------------------------- real data (R PlackettLuce data sets)
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "plackettluce"
needs_data = pytest.mark.skipif(not (DATA / "nascar_orderings.csv").exists(), reason="R PlackettLuce data not present")


def nascar_orderings():
    """Hunter (2004): the 36 races of 2002 with drivers 84-87 (never beat anyone) dropped, order kept."""
    races = pd.read_csv(DATA / "nascar_orderings.csv")
    return [[int(x) for x in row[1:] if pd.notna(x) and int(x) <= 83] for row in races.itertuples(index=False)]


def pl_negll_orderings(theta, orderings):
    """Independent PL likelihood and gradient for orderings without ties (stage by stage)."""
    total, grad = 0.0, np.zeros_like(theta)
    for o in orderings:
        t = theta[o]
        # log sum_{k >= j} exp(t_k) for every stage j, from the back
        log_tail = np.logaddexp.accumulate(t[::-1])[::-1]
        total += t[:-1].sum() - log_tail[:-1].sum()
        # d/d t_k of sum_j log_tail_j over stages j <= k (and j < len - 1)
        weights = np.cumsum(np.exp(-log_tail[:-1]))
        exp_t = np.exp(t)
        g = -exp_t * np.append(weights, weights[-1])
        g[:-1] += 1.0
        np.add.at(grad, o, g)
    return -total, -grad


@pytest.fixture(scope="module")
def nascar():
    orderings = nascar_orderings()
    return orderings, Rankings.from_orderings(orderings)


@needs_data
def test_nascar_default_newton_fits_hunters_data(nascar):
    """Regression (issue 8.1): the default solver crashed with LinAlgError on these data."""
    orderings, rankings = nascar
    assert rankings.n_items == 83 and rankings.n_rankings == 36
    newton = PlackettLuce().fit(rankings)
    assert newton.converged_ and newton.n_iter_ < 20
    mm = PlackettLuce(solver="mm", tol=1e-12).fit(rankings)
    assert mm.converged_
    np.testing.assert_allclose(newton.scores_, mm.scores_, atol=1e-6)

    # independent truth: maximise the likelihood written above with scipy (item codes = sorted driver ids)
    codes = {d: k for k, d in enumerate(rankings.items.tolist())}
    coded = [np.array([codes[d] for d in o]) for o in orderings]

    def negll_free(free):
        theta = np.append(0.0, free)
        f, g = pl_negll_orderings(theta, coded)
        return f, g[1:]

    res = optimize.minimize(negll_free, np.zeros(82), jac=True, method="BFGS", options={"gtol": 1e-9, "maxiter": 5000})
    truth = np.append(0.0, res.x)
    truth -= truth.mean()
    np.testing.assert_allclose(newton.scores_, truth, atol=1e-6)
    assert newton.log_likelihood_ == pytest.approx(-res.fun, abs=1e-8)
    # Hunter (2004, sec. 6): the MLE puts PJ Jones and Scott Pruett (one road race each) on top
    drivers = pd.read_csv(DATA / "nascar_drivers.csv").set_index("id")["driver"]
    assert drivers.loc[newton.summary()["item"].head(2).tolist()].tolist() == ["PJ Jones", "Scott Pruett"]


@needs_data
def test_newton_never_lowers_the_objective_from_a_poor_start(nascar):
    """Safeguards: from a start with one driver at -25 (as in the issue), every accepted step raises the
    log-likelihood and the fit reaches the same optimum."""
    from bradley.models import plackett_luce as plm

    _, rankings = nascar
    st = plm._stages(rankings)
    n = rankings.n_items
    seen = []

    def value(theta):
        return plm._loglik(theta, st)

    def grad_info(theta):
        seen.append(value(theta))
        grad, prob = plm._gradient_and_probs(theta, st, n)
        return grad, plm._information(st, n, prob)

    start = np.zeros(n)
    start[5] = -25.0
    start[7] = 25.0
    result = plm._newton(value, grad_info, start, np.full(n, 1 / np.sqrt(n)), 1e-9, 200, None, plm._centre(n))
    assert result.converged
    diffs = np.diff(seen)
    assert (diffs >= -1e-9).all(), diffs.min()
    np.testing.assert_allclose(result.x, PlackettLuce().fit(rankings).scores_, atol=1e-6)


# --------------------------------------------------------------------------- ties
def pudding_rankings():
    """Davidson (1970) example 2 as 2-item rankings with counts: i preferred, j preferred, tied."""
    p = pd.read_csv(DATA / "pudding.csv")
    ids, items, ranks, weight = [], [], [], []
    for row in p.itertuples(index=False):
        for levels, count in (((1, 2), row.w_ij), ((2, 1), row.w_ji), ((1, 1), row.t_ij)):
            rid = len(weight)
            ids += [rid, rid]
            items += [row.i, row.j]
            ranks += list(levels)
            weight.append(count)
    return p, Rankings.from_long(ids, items, ranks, weight=weight)


def test_tied_group_filling_the_remaining_set_counts():
    """Regression (issue 8.2): a tied pair, a tied last place and a fully tied ranking used to contribute 0."""
    ll = plackett_luce_log_likelihood

    pair = Rankings.from_long([0, 0], ["a", "b"], [1, 1])
    assert ll(np.zeros(2), pair) == pytest.approx(2 * np.log(0.5))  # Breslow: both chosen from {a, b}
    last = Rankings.from_long([0, 0, 0], ["a", "b", "c"], [1, 2, 2])
    assert ll(np.zeros(3), last) == pytest.approx(np.log(1 / 3) + 2 * np.log(1 / 2))
    full = Rankings.from_long([0, 0, 0], ["a", "b", "c"], [1, 1, 1])
    assert ll(np.zeros(3), full) == pytest.approx(3 * np.log(1 / 3))
    # Davidson-Luce: P(tie of a, b) = delta / (1 + 1 + delta) at equal worths
    assert ll(np.zeros(2), pair, "davidson-luce", {2: 0.5}) == pytest.approx(np.log(0.5 / 2.5))


@needs_data
def test_pudding_breslow_is_bradley_terry_with_a_tie_as_one_win_each_way():
    p, rankings = pudding_rankings()
    pl = PlackettLuce().fit(rankings)
    left = np.concatenate([p.i, p.j, p.i, p.j])
    right = np.concatenate([p.j, p.i, p.j, p.i])
    weight = np.concatenate([p.w_ij, p.w_ji, p.t_ij, p.t_ij]).astype(float)
    bt = bradley.BradleyTerry().fit(bradley.Comparisons.from_arrays(left, right, np.ones(len(left)), weight,
                                                                    items=pl.items_))
    np.testing.assert_allclose(pl.scores_, bt.scores_, atol=1e-7)
    # the 202 ties are in the likelihood: it moves when the tie counts change
    assert p.t_ij.sum() == 202
    untied = PlackettLuce().fit(Rankings(rankings.ranking, rankings.item, rankings.level, rankings.items,
                                         np.where(np.arange(rankings.n_rankings) % 3 == 2, 0.0, rankings.weight)))
    assert abs(untied.log_likelihood_ - pl.log_likelihood_) > 100


@needs_data
def test_pudding_davidson_luce_is_davidson():
    p, rankings = pudding_rankings()
    dl = PlackettLuce(ties="davidson-luce").fit(rankings)
    left = np.concatenate([p.i, p.i, p.i])
    right = np.concatenate([p.j, p.j, p.j])
    outcome = np.repeat([1.0, 0.0, 0.5], len(p))
    weight = np.concatenate([p.w_ij, p.w_ji, p.t_ij]).astype(float)
    dav = bradley.Davidson().fit(bradley.Comparisons.from_arrays(left, right, outcome, weight, items=dl.items_))
    assert dl.converged_ and list(dl.params_.index) == ["delta_2"]
    np.testing.assert_allclose(dl.scores_, dav.scores_, atol=1e-6)
    assert dl.params_.loc["delta_2", "estimate"] == pytest.approx(dav.nu_, abs=1e-6)
    assert dl.params_.loc["delta_2", "se"] == pytest.approx(dav.params_.loc["nu", "se"], rel=1e-5)
    np.testing.assert_allclose(dl.scores_se_, dav.scores_se_, rtol=1e-5)
    assert dl.log_likelihood_ == pytest.approx(dav.log_likelihood_, abs=1e-8)
    lo, hi = dl.params_.loc["delta_2", ["ci_low", "ci_high"]]
    assert lo < dl.params_.loc["delta_2", "estimate"] < hi


def dl_brute_loglik(rankings_as_levels, orders):
    """Davidson-Luce by enumerating every subset of every choice set (independent of the ESP recursion).

    Returns loglik(theta, log_delta) with ``log_delta`` a dict over ``orders``.
    """
    from itertools import combinations

    stages = []
    for entries in rankings_as_levels:
        for lv in sorted({l for _, l in entries if l is not None}):
            remaining = [i for i, l2 in entries if l2 is None or l2 >= lv]
            chosen = [i for i, l2 in entries if l2 == lv]
            if len(remaining) > 1:
                subsets = {d: np.array(list(combinations(remaining, d))) for d in orders if d <= len(remaining)}
                stages.append((chosen, subsets))

    def loglik(theta, log_delta):
        total = 0.0
        for chosen, subsets in stages:
            terms = np.concatenate([log_delta[d] + theta[a].mean(axis=1) for d, a in subsets.items()])
            total += log_delta[len(chosen)] + theta[chosen].mean() - logsumexp(terms)
        return total

    return loglik


def tied_rankings(seed, n_rankings=28, n_items=5):
    rng = np.random.default_rng(seed)
    patterns = [[1, 2, 2, 3], [1, 1, 1, 2], [1, 2, 3, None], [2, 1, 3, 3], [1, 1, 2, 2], [1, 2, 3, 4], [1, 2, 2, None]]
    entries, ids, items, ranks = [], [], [], []
    for r in range(n_rankings):
        chosen = rng.choice(n_items, 4, replace=False)
        levels = patterns[r % len(patterns)]
        row = [(int(i), lv) for i, lv in zip(chosen, levels)]
        entries.append(row)
        for i, lv in row:
            ids.append(r)
            items.append(i)
            ranks.append(np.nan if lv is None else lv)
    return entries, Rankings.from_long(ids, items, ranks)


def test_davidson_luce_likelihood_and_fit_match_subset_enumeration():
    entries, rankings = tied_rankings(3)
    n = rankings.n_items
    rng = np.random.default_rng(0)
    theta = rng.normal(0, 1.5, n)
    delta = {2: 0.7, 3: 0.3}
    got = plackett_luce_log_likelihood(theta, rankings, "davidson-luce", delta)
    brute = dl_brute_loglik(entries, [1, 2, 3])
    want = brute(theta, {1: 0.0, 2: np.log(0.7), 3: np.log(0.3)})
    assert got == pytest.approx(want, rel=1e-12)
    # scores of +-50 stay finite (log domain)
    assert np.isfinite(plackett_luce_log_likelihood(np.linspace(-50, 50, n), rankings, "davidson-luce", delta))

    model = PlackettLuce(ties="davidson-luce").fit(rankings)
    assert model.converged_ and list(model.params_.index) == ["delta_2", "delta_3"]

    def negll(free):
        th = np.append(0.0, free[: n - 1])
        return -brute(th, {1: 0.0, 2: free[n - 1], 3: free[n]})

    res = optimize.minimize(negll, np.zeros(n + 1), method="BFGS", options={"gtol": 1e-8})
    th = np.append(0.0, res.x[: n - 1])
    np.testing.assert_allclose(model.scores_, th - th.mean(), atol=1e-4)
    np.testing.assert_allclose(np.log(model.params_["estimate"]), res.x[n - 1:], atol=1e-4)
    assert model.log_likelihood_ == pytest.approx(-res.fun, abs=1e-7)

    # standard errors: inverse of the brute-force Hessian (reference item 0 fixed at zero)
    x0 = np.concatenate([model.scores_[1:] - model.scores_[0], np.log(model.params_["estimate"].to_numpy())])
    hess = numerical_hessian(negll, x0, 1e-4)
    cov = np.linalg.inv(hess)
    se_ref = model.standard_errors(reference=model.items_[0]).to_numpy()
    np.testing.assert_allclose(se_ref[1:], np.sqrt(np.diag(cov)[: n - 1]), rtol=1e-4)
    se_log_delta = model.params_["se"] / model.params_["estimate"]
    np.testing.assert_allclose(se_log_delta, np.sqrt(np.diag(cov)[n - 1:]), rtol=1e-4)


def numerical_hessian(f, x, h):
    m = len(x)
    hess = np.empty((m, m))
    for i in range(m):
        for j in range(i, m):
            ei, ej = np.eye(m)[i] * h, np.eye(m)[j] * h
            hess[i, j] = hess[j, i] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4 * h * h)
    return hess


def test_davidson_luce_without_ties_is_plackett_luce():
    orderings, _ = simulate_pl(6, 150, 4, seed=5)
    rankings = Rankings.from_orderings(orderings)
    plain = PlackettLuce().fit(rankings)
    dl = PlackettLuce(ties="davidson-luce").fit(rankings)
    np.testing.assert_allclose(dl.scores_, plain.scores_, atol=1e-8)
    np.testing.assert_allclose(dl.covariance_, plain.covariance_, atol=1e-7)
    assert dl.params_.empty and dl.log_likelihood_ == pytest.approx(plain.log_likelihood_, rel=1e-12)


def test_davidson_luce_recovers_simulated_tie_parameter():
    """Simulate pairs and triples from the Davidson-Luce model itself and recover scores and delta_2."""
    from itertools import combinations

    rng = np.random.default_rng(11)
    n = 6
    truth = rng.normal(0, 0.8, n)
    truth -= truth.mean()
    delta2 = 0.8
    ids, items, ranks = [], [], []
    for r in range(3000):
        chosen = list(rng.choice(n, 3 if r % 2 else 2, replace=False))
        level = 1
        while chosen:
            options = [(c,) for c in chosen] + (list(combinations(chosen, 2)) if len(chosen) >= 2 else [])
            logw = np.array([np.log(delta2) * (len(a) == 2) + truth[list(a)].mean() for a in options])
            pick = options[rng.choice(len(options), p=np.exp(logw - logsumexp(logw)))]
            if len(chosen) == 1:
                pick = (chosen[0],)
            for c in pick:
                ids.append(r)
                items.append(c)
                ranks.append(level)
                chosen.remove(c)
            level += 1
    model = PlackettLuce(ties="davidson-luce").fit(Rankings.from_long(ids, items, ranks))
    est = model.params_.loc["delta_2"]
    assert est.ci_low < delta2 < est.ci_high
    z = (model.scores_ - truth[model.items_.astype(int)]) / model.scores_se_
    assert np.all(np.abs(z) < 4)


# --------------------------------------------------------------------------- uncertainty and options
def test_uncertainty_interface_matches_brute_force_hessian():
    orderings, _ = simulate_pl(5, 120, 3, seed=8)
    rankings = Rankings.from_orderings(orderings)
    model = PlackettLuce().fit(rankings)
    n = rankings.n_items
    coded = [np.array([np.flatnonzero(rankings.items == x)[0] for x in o]) for o in orderings]

    def negll_ref(free):  # item 0 fixed at zero
        return pl_negll_orderings(np.append(0.0, free), coded)[0]

    cov = np.linalg.inv(numerical_hessian(negll_ref, model.scores_[1:] - model.scores_[0], 1e-4))
    se = model.standard_errors(reference=model.items_[0])
    assert se.iloc[0] == 0.0
    np.testing.assert_allclose(se.to_numpy()[1:], np.sqrt(np.diag(cov)), rtol=1e-4)
    # mean-zero covariance: rows sum to zero, and equals the summary's se column
    np.testing.assert_allclose(model.covariance_.sum(axis=1), 0, atol=1e-10)
    table = model.summary().set_index("item")
    np.testing.assert_allclose(table.loc[model.items_, "se"], model.standard_errors().to_numpy())
    qv = model.quasi_variances()
    assert list(qv.columns) == ["score", "quasi_var", "quasi_se"] and (qv.quasi_var > 0).all()
    assert model.params_.empty and model.parameter_covariance_.shape == (n, n)


def test_option_errors_and_prior():
    r = Rankings.from_orderings([["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]])
    with pytest.raises(ValueError, match="davidson-luce"):
        PlackettLuce(solver="mm", ties="davidson-luce").fit(r)
    with pytest.raises(ValueError, match="ties must be"):
        PlackettLuce(ties="efron").fit(r)
    # a prior gives finite estimates where the MLE does not exist, and the MAP is a stationary point
    never_wins = Rankings.from_orderings([["a", "b", "c"], ["b", "a", "c"]])
    m = PlackettLuce(prior=1.0).fit(never_wins)
    assert m.converged_ and m.scores_[2] < m.scores_[0]
    with pytest.raises(bradley.MLEDoesNotExistError):
        PlackettLuce(ties="davidson-luce").fit(never_wins)


def test_davidson_luce_with_a_prior_and_a_diverging_tie_parameter():
    # every pair tied or won by the first: the MAP exists with a prior on the scores
    r = Rankings.from_long([0, 0, 1, 1, 2, 2, 3, 3], list("abbcacab"), [1, 2, 1, 1, 1, 2, 1, 1])
    with pytest.warns(bradley.ConvergenceWarning, match="MLE may not exist"):
        PlackettLuce(ties="davidson-luce", max_iter=60).fit(r)
    m = PlackettLuce(ties="davidson-luce", prior=1.0).fit(r)
    assert m.converged_ and np.isfinite(m.params_["se"]).all()
    # at the MAP the penalised score is zero: check against the likelihood by central differences
    delta = {2: float(m.params_.loc["delta_2", "estimate"])}

    def objective(theta):
        return plackett_luce_log_likelihood(theta, r, "davidson-luce", delta) - 0.5 * theta @ theta

    h = 1e-6
    grad = [(objective(m.scores_ + h * e) - objective(m.scores_ - h * e)) / (2 * h) for e in np.eye(3)]
    np.testing.assert_allclose(grad, 0, atol=1e-6)


def test_zero_weight_rankings_bring_no_tie_order():
    ids = [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 4]
    items = list("abbcacababc")
    ranks = [1, 2, 1, 2, 2, 1, 1, 2, 1, 1, 1]  # ranking 4 is a three-way tie, with weight 0
    m = PlackettLuce(ties="davidson-luce").fit(Rankings.from_long(ids, items, ranks, weight=[1, 1, 1, 1, 0]))
    plain = PlackettLuce().fit(Rankings.from_long(ids[:8], items[:8], ranks[:8]))
    assert m.converged_ and m.params_.empty
    np.testing.assert_allclose(m.scores_, plain.scores_, atol=1e-8)


# --------------------------------------------------------------------------- review follow-up (issue 8)
def ranked_with_ties(n_items, n_rankings, seed, tie_rate=0.3):
    rng = np.random.default_rng(seed)
    ids, items, ranks = [], [], []
    for k in range(n_rankings):
        chosen = rng.choice(n_items, rng.integers(2, min(n_items, 7) + 1), replace=False)
        level = 1
        for c in chosen:
            ids.append(k)
            items.append(int(c))
            ranks.append(level)
            if rng.random() > tie_rate:
                level += 1
    return Rankings.from_long(ids, items, ranks)


def test_davidson_luce_information_is_the_hessian():
    """The analytic information equals central differences of the analytic gradient (orders 2..5), also at +-50."""
    from bradley.models import plackett_luce as plm

    r = ranked_with_ties(8, 300, seed=1)
    st = plm._stages(r)
    td = plm._tie_design(st)
    n = r.n_items
    assert td.orders.tolist() == [1, 2, 3, 4, 5]
    rng = np.random.default_rng(2)
    for extreme in (False, True):
        x = np.concatenate([rng.normal(0, 1, n), rng.normal(0, 0.3, len(td.orders) - 1)])
        if extreme:
            x[0], x[1] = 50.0, -50.0

        def gradient(x):
            _, g_theta, g_delta = plm._davidson_luce_terms(x[:n], np.concatenate([[0.0], x[n:]]), st, td, n)
            return np.concatenate([g_theta, g_delta])

        numeric = _fd_information(gradient, x)
        analytic = plm._davidson_luce_information(x[:n], np.concatenate([[0.0], x[n:]]), st, td, n)
        assert np.isfinite(analytic).all()
        np.testing.assert_allclose(analytic, numeric, atol=1e-6 * np.abs(numeric).max())


def test_davidson_luce_without_ties_takes_the_breslow_path(monkeypatch):
    """No tied group: no tie parameter, so no Davidson-Luce terms are evaluated (they made NASCAR slow)."""
    from bradley.models import plackett_luce as plm

    def refuse(*args, **kwargs):
        raise AssertionError("Davidson-Luce terms evaluated for data without ties")

    orderings, _ = simulate_pl(6, 150, 4, seed=5)
    rankings = Rankings.from_orderings(orderings)
    plain = PlackettLuce().fit(rankings)
    monkeypatch.setattr(plm, "_davidson_luce_terms", refuse)
    for prior in (None, 10.0):
        dl = PlackettLuce(ties="davidson-luce", prior=prior).fit(rankings)
        assert dl.converged_ and dl.params_.empty and dl.tie_orders_ == []
    dl = PlackettLuce(ties="davidson-luce").fit(rankings)
    np.testing.assert_allclose(dl.scores_, plain.scores_, atol=1e-10)


def test_existence_error_suggests_the_plackett_luce_prior():
    never_wins = Rankings.from_orderings([["a", "b", "c"], ["b", "a", "c"]])
    with pytest.raises(bradley.MLEDoesNotExistError, match=r"PlackettLuce\(prior=10\.0\) \(CLI: --prior 10\)") as err:
        PlackettLuce().fit(never_wins)
    assert "BradleyTerry" not in str(err.value)
    assert err.value.never_won == ["c"]


def test_n_iter_counts_the_warm_start_sweeps():
    orderings, _ = simulate_pl(6, 150, 4, seed=5)
    rankings = Rankings.from_orderings(orderings)
    model = PlackettLuce().fit(rankings)
    assert model.n_warm_start_sweeps_ == 10 and model.n_iter_ > model.n_warm_start_sweeps_
    assert PlackettLuce(prior=5.0).fit(rankings).n_warm_start_sweeps_ == 0
    mm = PlackettLuce(solver="mm").fit(rankings)
    assert mm.n_warm_start_sweeps_ == 0 and mm.n_iter_ > 0


def _fd_information(gradient, x, h=1e-5):
    """Minus the Hessian by central differences of an analytic gradient (symmetrised): the test's own truth."""
    m = len(x)
    hess = np.empty((m, m))
    for j in range(m):
        e = np.zeros(m)
        e[j] = h
        hess[:, j] = (gradient(x + e) - gradient(x - e)) / (2 * h)
    return -0.5 * (hess + hess.T)
