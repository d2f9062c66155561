import numpy as np
import pandas as pd
import pytest
from scipy import optimize
from scipy.special import logsumexp

import bradley
from bradley import PlackettLuce, Rankings, break_rankings, read_rankings


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

    def negll(free):
        s = np.append(0.0, free)
        total = 0.0
        for entries in rankings_as_levels:  # list of (item, level or None)
            ranked_levels = sorted({lv for _, lv in entries if lv is not None})
            for lv in ranked_levels:
                remaining = [i for i, l2 in entries if l2 is None or l2 >= lv]
                chosen = [i for i, l2 in entries if l2 == lv]
                if len(remaining) == 1:  # a single item choosing from itself: probability 1
                    continue
                total += sum(s[i] for i in chosen) - len(chosen) * logsumexp(s[remaining])
        return -total

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
