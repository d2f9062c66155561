"""Pluralistic preferences: BT mixtures over annotators and ideal-point models.

Truths: brute-force per-row likelihoods and posteriors written here, finite
differences, BradleyTerry for K = 1, scipy.optimize for the placement MAP, and
recovery of simulated groups / ideal points with stated tolerances.
"""

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logsumexp

import bradley
from bradley.errors import ComparisonDataError
from bradley.models.mixture import (
    BTMixture,
    IdealPointModel,
    adjusted_rand_index,
    annotator_cells,
    ideal_point_objective,
)

N_ITEMS = 10
ITEMS = np.array([f"i{k}" for k in range(N_ITEMS)])


def group_scores() -> np.ndarray:
    base = np.linspace(-2, 2, N_ITEMS)
    scores = np.stack([base, -base, 2 - 2 * np.abs(base)])  # opposite tastes and a "middle" taste
    return scores - scores.mean(axis=1, keepdims=True)


def simulate_groups(rng, per_group=20, n_rows=30, prefix="u"):
    """Annotators in 3 groups; every row of an annotator follows its group's BT scores."""
    scores = group_scores()
    left, right, outcome, who, truth = [], [], [], [], []
    for g in range(3):
        for u in range(per_group):
            i = rng.integers(0, N_ITEMS, n_rows)
            j = (i + rng.integers(1, N_ITEMS, n_rows)) % N_ITEMS
            y = (rng.random(n_rows) < expit(scores[g, i] - scores[g, j])).astype(float)
            left.append(i), right.append(j), outcome.append(y)
            who += [f"{prefix}{g}_{u}"] * n_rows
            truth.append(g)
    left, right = np.concatenate(left), np.concatenate(right)
    data = bradley.Comparisons.from_arrays(ITEMS[left], ITEMS[right], np.concatenate(outcome), annotator=who)
    return data, np.array(truth)


@pytest.fixture(scope="module")
def heterogeneous():
    return simulate_groups(np.random.default_rng(1))


def brute_force_annotator_loglik(data, scores):
    """Per-annotator log-likelihood under each group, one row at a time (ties as half wins)."""
    names = data.items
    code = {name: k for k, name in enumerate(names)}
    out: dict = {}
    for left, right, y, a in zip(data.left, data.right, data.outcome, data.annotator, strict=True):
        d = scores[:, code[names[left]]] - scores[:, code[names[right]]]
        out[a] = out.get(a, 0.0) + y * np.log(expit(d)) + (1 - y) * np.log(expit(-d))
    return out


# ----------------------------------------------------------------------------- helpers


def test_adjusted_rand_index_matches_pair_counting():
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.integers(0, 3, 25), rng.integers(0, 4, 25)
        same = [(a[i] == a[j], b[i] == b[j]) for i, j in itertools.combinations(range(25), 2)]
        n11 = sum(x and y for x, y in same)
        n10 = sum(x and not y for x, y in same)
        n01 = sum(y and not x for x, y in same)
        n00 = sum(not x and not y for x, y in same)
        # Steinley (2004)'s pair-count form of the Hubert-Arabie index
        expected = 2 * (n11 * n00 - n10 * n01) / ((n11 + n10) * (n10 + n00) + (n11 + n01) * (n01 + n00))
        assert adjusted_rand_index(a, b) == pytest.approx(expected, abs=1e-12)
    assert adjusted_rand_index(["x", "x", "y"], [5, 5, 7]) == 1.0


def test_annotator_cells_keep_the_counts():
    data = bradley.Comparisons.from_arrays(["a", "b", "a", "c"], ["b", "a", "b", "a"], [1, 1, 0.5, 0],
                                           annotator=["u", "u", "v", "v"])
    cells = annotator_cells(data)
    frame = pd.DataFrame({"a": cells.annotators[cells.annotator], "f": cells.items[cells.first],
                          "s": cells.items[cells.second], "wf": cells.wins_first, "ws": cells.wins_second})
    assert frame.values.tolist() == [["u", "a", "b", 1.0, 1.0], ["v", "a", "b", 0.5, 0.5],
                                     ["v", "a", "c", 1.0, 0.0]]


# ----------------------------------------------------------------------------- mixture


def test_one_group_is_bradley_terry(heterogeneous):
    data, _ = heterogeneous
    mixture = BTMixture(n_groups=1, prior=5.0).fit(data)
    bt = bradley.BradleyTerry(prior=5.0).fit(data)
    assert mixture.converged_
    np.testing.assert_allclose(mixture.scores_[0], bt.scores_, atol=1e-7)
    assert mixture.log_likelihood_ == pytest.approx(bt.log_likelihood_, rel=1e-10)
    assert mixture.weights_.tolist() == [1.0]


def test_em_is_monotone_and_matches_brute_force(heterogeneous):
    data, _ = heterogeneous
    model = BTMixture(n_groups=3, n_init=4, random_state=3).fit(data)
    assert model.converged_ and model.n_iter_ >= 2
    steps = np.diff(model.history_)
    assert steps.min() >= -1e-9 * abs(model.history_[-1])
    # E-step and marginal likelihood, recomputed row by row
    per = brute_force_annotator_loglik(data, model.scores_)
    joint = np.array([per[a] for a in model.annotators_]) + np.log(model.weights_)
    post = np.exp(joint - logsumexp(joint, axis=1, keepdims=True))
    np.testing.assert_allclose(model.responsibilities_.to_numpy(), post, atol=1e-9)
    assert model.log_likelihood_ == pytest.approx(logsumexp(joint, axis=1).sum(), rel=1e-10)
    # a stationary point of the marginal log-posterior (finite differences in every group score)
    prior = model.prior

    def log_posterior(flat):
        s = flat.reshape(model.scores_.shape)
        per = brute_force_annotator_loglik(data, s)
        j = np.array([per[a] for a in model.annotators_]) + np.log(model.weights_)
        return logsumexp(j, axis=1).sum() - (s ** 2).sum() / (2 * prior)

    flat, h = model.scores_.ravel(), 1e-5
    grad = [(log_posterior(flat + h * e) - log_posterior(flat - h * e)) / (2 * h) for e in np.eye(len(flat))]
    assert np.max(np.abs(grad)) < 1e-3
    assert model.log_posterior_ == pytest.approx(log_posterior(flat), rel=1e-10)


def test_mixture_recovers_groups_and_beats_bt_out_of_sample(heterogeneous):
    data, truth = heterogeneous
    model = BTMixture(n_groups=3, n_init=5).fit(data)
    # measured: ARI 1.0 (60 annotators, 30 comparisons each)
    assert adjusted_rand_index(truth, model.labels_.loc[[f"u{g}_{u}" for g in range(3) for u in range(20)]]) >= 0.95
    # the groups' scores: each fitted group matches one true group
    corr = np.corrcoef(np.vstack([model.scores_, group_scores()]))[:3, 3:]
    assert np.sort(corr.max(axis=1)).min() > 0.9
    table = BTMixture.select_k(data, ks=(1, 2, 3, 4), folds=3, n_init=3)
    assert list(table.columns[:3]) == ["k", "n_params", "heldout_loglik"]
    assert table.attrs["best_k"] == 3
    by_k = table.set_index("k")
    # measured: per-annotator held-out accuracy 0.58 (K = 1) vs 0.78 (K = 3)
    assert by_k.loc[3, "annotator_accuracy"] > by_k.loc[1, "annotator_accuracy"] + 0.12
    assert by_k.loc[3, "heldout_loglik"] > by_k.loc[1, "heldout_loglik"] + 0.1


def test_held_out_loglik_of_one_group_is_bt_on_the_held_out_rows(heterogeneous):
    data, _ = heterogeneous
    table = BTMixture.select_k(data, ks=(1,), folds=2, seed=4, prior=5.0)
    # the same split, written out: deal each annotator's rows round-robin as select_k does
    rng = np.random.default_rng(4)
    codes = pd.factorize(pd.Series(data.annotator, dtype=object))[0]
    shuffled = rng.permutation(len(codes))
    order = shuffled[np.argsort(codes[shuffled], kind="stable")]
    position = np.empty(len(codes), dtype=np.int64)
    position[order] = np.arange(len(codes)) - np.searchsorted(codes[order], np.arange(codes.max() + 1))[codes[order]]
    fold = (position + rng.integers(0, 2, codes.max() + 1)[codes]) % 2
    total = 0.0
    for f in range(2):
        bt = bradley.BradleyTerry(prior=5.0).fit(data.take(fold != f))
        test = data.take(fold == f)
        p = bt.predict_proba(test.items[test.left], test.items[test.right])
        total += float((test.outcome * np.log(p) + (1 - test.outcome) * np.log(1 - p)).sum())
    assert table.loc[0, "heldout_loglik"] == pytest.approx(total / len(data), rel=1e-9)


def test_few_shot_placement_finds_the_group(heterogeneous):
    data, _ = heterogeneous
    model = BTMixture(n_groups=3, n_init=3).fit(data)
    true_to_fitted = np.argmax(np.corrcoef(np.vstack([group_scores(), model.scores_]))[:3, 3:], axis=1)
    rng = np.random.default_rng(11)
    scores = group_scores()
    hits = []
    for trial in range(100):
        g = trial % 3
        i = rng.integers(0, N_ITEMS, 8)
        j = (i + rng.integers(1, N_ITEMS, 8)) % N_ITEMS
        y = (rng.random(8) < expit(scores[g, i] - scores[g, j])).astype(float)
        posterior = model.place(bradley.Comparisons.from_arrays(ITEMS[i], ITEMS[j], y))
        assert posterior.sum() == pytest.approx(1.0)
        hits.append(int(posterior.idxmax()) == true_to_fitted[g])
    # measured: 90% of 300 trials with 8 comparisons (79% with 3, 93% with 10)
    assert np.mean(hits) >= 0.85


def test_predict_proba_uses_the_annotators_posterior(heterogeneous):
    data, _ = heterogeneous
    model = BTMixture(n_groups=3, n_init=2).fit(data)
    groups = model.predict_group_proba("i0", "i9")
    who = model.annotators_[0]
    expected = groups[0] @ model.responsibilities_.loc[who].to_numpy()
    assert model.predict_proba("i0", "i9", annotator=who)[0] == pytest.approx(expected)
    assert model.predict_proba("i0", "i9")[0] == pytest.approx(groups[0] @ model.weights_)
    assert model.predict_proba("i0", "i9", annotator="someone new")[0] == pytest.approx(groups[0] @ model.weights_)
    summary = model.summary()
    assert list(summary.columns) == ["group", "weight", "n_annotators", "item", "score", "rank"]
    assert summary.groupby("group")["n_annotators"].first().sum() == 60


def test_annotator_labels_given_beside_the_data(heterogeneous):
    data, _ = heterogeneous
    bare = bradley.Comparisons.from_arrays(data.items[data.left], data.items[data.right], data.outcome)
    with pytest.raises(ComparisonDataError, match="annotator"):
        BTMixture(2).fit(bare)
    a = BTMixture(2, n_init=2).fit(bare, annotators=data.annotator)
    b = BTMixture(2, n_init=2).fit(data)
    np.testing.assert_allclose(a.scores_, b.scores_)
    with pytest.raises(ComparisonDataError, match="rows"):
        BTMixture(2).fit(bare, annotators=np.where(np.arange(len(bare)) == 3, None, data.annotator))
    with pytest.raises(ComparisonDataError, match="exceeds"):
        BTMixture(2).fit(bare, annotators=np.zeros(len(bare)))
    with pytest.raises(ValueError, match="n_groups"):
        BTMixture(0).fit(data)


def test_separated_groups_stay_finite_without_overflow():
    # two annotators who never disagree with themselves: every group's MLE is infinite, the prior keeps it finite
    left, right = ["a", "b", "a"] * 4, ["b", "c", "c"] * 4
    outcome = [1.0] * 6 + [0.0] * 6
    data = bradley.Comparisons.from_arrays(left, right, outcome, annotator=["u"] * 6 + ["v"] * 6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            model = BTMixture(2, prior=1e4).fit(data)
    assert model.converged_ and np.isfinite(model.scores_).all()
    assert np.abs(model.scores_).max() > 5
    assert model.labels_["u"] != model.labels_["v"]


# ----------------------------------------------------------------------------- ideal points


def simulate_ideal_points(rng, n_items=12, n_ann=40, n_rows=40, dim=2):
    z = rng.normal(0, 1, (n_items, dim))
    x = rng.normal(0, 1, (n_ann, dim))
    s = rng.normal(0, 0.5, n_items)
    a = np.repeat(np.arange(n_ann), n_rows)
    i = rng.integers(0, n_items, len(a))
    j = (i + rng.integers(1, n_items, len(a))) % n_items
    m = s[i] - s[j] + ((x[a] - z[j]) ** 2).sum(1) - ((x[a] - z[i]) ** 2).sum(1)
    y = (rng.random(len(a)) < expit(m)).astype(float)
    names = np.array([f"m{k:02d}" for k in range(n_items)])
    data = bradley.Comparisons.from_arrays(names[i], names[j], y, annotator=np.array([f"a{k:02d}" for k in a]))
    return data, (s, z, x, m)


def test_ideal_point_gradient_and_information_by_finite_differences():
    rng = np.random.default_rng(2)
    data, _ = simulate_ideal_points(rng, n_items=5, n_ann=4, n_rows=15)
    cells = annotator_cells(data)
    for quality in (True, False):
        size = (5 if quality else 0) + (5 + 4) * 2
        theta = rng.normal(0, 0.7, size)
        f, g, d = ideal_point_objective(theta, cells, dim=2, quality=quality, l2=0.3, prior=2.0)
        h = 1e-6
        numeric = [(ideal_point_objective(theta + h * e, cells, 2, quality, 0.3, 2.0)[0]
                    - ideal_point_objective(theta - h * e, cells, 2, quality, 0.3, 2.0)[0]) / (2 * h)
                   for e in np.eye(size)]
        np.testing.assert_allclose(g, numeric, atol=1e-5)
        assert (d > 0).all()
        # rotating every point leaves the objective unchanged (the gauge)
        rot = np.array([[0.6, -0.8], [0.8, 0.6]])
        off = 5 if quality else 0
        turned = theta.copy()
        turned[off:] = (theta[off:].reshape(-1, 2) @ rot).ravel()
        assert ideal_point_objective(turned, cells, 2, quality, 0.3, 2.0)[0] == pytest.approx(f, rel=1e-12)


@pytest.fixture(scope="module")
def ideal_data():
    return simulate_ideal_points(np.random.default_rng(5))


def test_ideal_point_model_recovers_preferences(ideal_data):
    data, (s, z, x, margin) = ideal_data
    rng = np.random.default_rng(0)
    test = rng.random(len(data)) < 0.25
    train = data.take(~test)
    model = IdealPointModel(dim=2, n_init=2).fit(train)
    assert model.converged_ and model.step_ <= model.tol
    held = data.take(test)
    names = held.items
    p = model.predict_proba(names[held.left], names[held.right], annotator=held.annotator)
    bt = bradley.BradleyTerry(prior=10.0).fit(train)
    p_bt = bt.predict_proba(names[held.left], names[held.right])
    truth = margin[test] > 0

    def acc(prob):
        return float(np.mean((prob > 0.5) == (held.outcome > 0.5)))

    oracle = float(np.mean(truth == (held.outcome > 0.5)))
    # measured: ideal points 0.81, BT 0.66, oracle (true parameters) 0.83
    assert acc(p) > acc(p_bt) + 0.1
    assert acc(p) > oracle - 0.08
    # true and fitted preference directions agree (rank correlation of true vs fitted margins)
    agree = np.corrcoef(pd.Series(margin[test]).rank(), pd.Series(np.log(p / (1 - p))).rank())[0, 1]
    assert agree > 0.8
    # gauge: the canonical rotation makes the item positions' principal axes the coordinate axes
    positions = model.item_positions_.to_numpy()
    centred = positions - positions.mean(axis=0)
    cov = centred.T @ centred
    assert abs(cov[0, 1]) < 1e-8 * cov[0, 0] and cov[0, 0] >= cov[1, 1]


def test_ideal_point_refits_agree_in_the_canonical_gauge(ideal_data):
    data, _ = ideal_data
    a = IdealPointModel(dim=2, n_init=1, random_state=1).fit(data)
    b = IdealPointModel(dim=2, n_init=1, random_state=2).fit(data)
    if a.log_posterior_ == pytest.approx(b.log_posterior_, rel=1e-7):
        np.testing.assert_allclose(a.item_positions_.to_numpy(), b.item_positions_.to_numpy(), atol=1e-3)
        np.testing.assert_allclose(a.scores_, b.scores_, atol=1e-3)
    else:  # a different local optimum would make the comparison meaningless; it must be rare
        pytest.fail(f"two starts ended at different optima: {a.log_posterior_} vs {b.log_posterior_}")


def test_ideal_point_placement_is_the_map_and_predicts_newcomers(ideal_data):
    from scipy import optimize

    data, (s, z, x, _) = ideal_data
    model = IdealPointModel(dim=2, n_init=1).fit(data)
    names = np.array([f"m{k:02d}" for k in range(12)])
    assert model.items_.tolist() == names.tolist()
    zf, sf = model.item_positions_.to_numpy(), model.scores_
    pi, pj = np.triu_indices(12, 1)
    rng = np.random.default_rng(8)
    placed_agree, population_agree = [], []
    for trial in range(30):
        newcomer = rng.normal(0, 1, 2)
        i = rng.integers(0, 12, 10)
        j = (i + rng.integers(1, 12, 10)) % 12
        m = s[i] - s[j] + ((newcomer - z[j]) ** 2).sum(1) - ((newcomer - z[i]) ** 2).sum(1)
        y = (rng.random(10) < expit(m)).astype(float)
        placed = model.place(bradley.Comparisons.from_arrays(names[i], names[j], y))
        if trial < 3:  # the MAP, against a derivative-free optimiser on the same objective

            def negative_log_posterior(point, i=i, j=j, y=y):
                mm = sf[i] - sf[j] + ((point - zf[j]) ** 2).sum(1) - ((point - zf[i]) ** 2).sum(1)
                return -(y * np.log(expit(mm)) + (1 - y) * np.log(expit(-mm))).sum() + 0.5 * model.l2 * point @ point

            reference = optimize.minimize(negative_log_posterior, np.zeros(2), method="Nelder-Mead",
                                          options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 5000}).x
            np.testing.assert_allclose(placed, reference, atol=1e-5)
        true_m = s[pi] - s[pj] + ((newcomer - z[pj]) ** 2).sum(1) - ((newcomer - z[pi]) ** 2).sum(1)
        fitted = model.predict_proba(names[pi], names[pj], ideal_point=placed)
        population = model.predict_proba(names[pi], names[pj])
        placed_agree.append(np.mean((fitted > 0.5) == (true_m > 0)))
        population_agree.append(np.mean((population > 0.5) == (true_m > 0)))
    # measured (60 newcomers, 10 comparisons each): 0.86 of the 66 pairs ordered as the newcomer's true
    # preference after placement, 0.66 by the population average
    assert np.mean(placed_agree) > 0.78
    assert np.mean(placed_agree) > np.mean(population_agree) + 0.12
