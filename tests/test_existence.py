"""The MLE existence check: which items it blames, against a brute-force truth."""

from __future__ import annotations

import numpy as np
import pytest

import bradley
from bradley import MLEDoesNotExistError, PairCounts, mle_existence_problem


def reachability(wins: np.ndarray) -> np.ndarray:
    """Transitive closure of the win graph (i -> j when i beat j), by repeated squaring."""
    n = len(wins)
    reach = (wins > 0) | np.eye(n, dtype=bool)
    while True:
        nxt = (reach.astype(np.int64) @ reach.astype(np.int64)) > 0
        if (nxt == reach).all():
            return reach
        reach = nxt


def brute_force(wins: np.ndarray) -> tuple[list[set[int]], set[int], set[int], int]:
    """Strong components, items in top (never lost) and bottom (never won) components, weak groups."""
    n = len(wins)
    reach = reachability(wins)
    mutual = reach & reach.T
    comps: list[set[int]] = []
    for i in range(n):
        if not any(i in c for c in comps):
            comps.append(set(np.flatnonzero(mutual[i]).tolist()))
    beat = wins > 0
    top, bottom = set(), set()
    for c in comps:
        inside = np.zeros(n, dtype=bool)
        inside[list(c)] = True
        lost_outside = beat[~inside][:, inside].any()
        won_outside = beat[inside][:, ~inside].any()
        if not lost_outside:
            top |= c
        if not won_outside:
            bottom |= c
    weak = reachability(((wins + wins.T) > 0).astype(float))
    n_weak = len({tuple(np.flatnonzero(row)) for row in weak})
    return comps, top, bottom, n_weak


def names_of(err: MLEDoesNotExistError, attr: str) -> list[str]:
    return sorted(getattr(err, attr))


def test_one_item_that_never_won_is_named_alone():
    # 'z' lost every game; the others beat each other: old code listed all of them as "never lost".
    rng = np.random.default_rng(0)
    n = 6
    wins = rng.integers(1, 4, (n, n)).astype(float)
    np.fill_diagonal(wins, 0)
    wins[n - 1, :] = 0  # z never won
    items = [f"m{k}" for k in range(n - 1)] + ["z"]
    err = mle_existence_problem(PairCounts.from_matrix(wins, items=items))
    assert err.never_won == ["z"]
    assert err.never_lost == []
    assert "item ['z'] never won against the other items" in str(err)
    assert "never lost" not in str(err)
    assert sorted(map(sorted, err.components)) == [sorted(items[:-1]), ["z"]]


def test_one_item_that_never_lost_is_named_alone():
    wins = np.array([[0, 2, 1, 3], [0, 0, 1, 1], [0, 1, 0, 1], [0, 1, 1, 0]], dtype=float)
    err = mle_existence_problem(PairCounts.from_matrix(wins, items=["top", "a", "b", "c"]))
    assert (err.never_lost, err.never_won) == (["top"], [])
    assert "item ['top'] never lost against the other items" in str(err)


def test_a_pair_that_only_beat_each_other_is_the_bottom_component():
    # p and q beat each other and lost to everyone else.
    items = ["a", "b", "c", "p", "q"]
    wins = np.zeros((5, 5))
    wins[:3, :3] = 1
    np.fill_diagonal(wins, 0)
    wins[3, 4] = wins[4, 3] = 2
    wins[:3, 3:] = 1
    err = mle_existence_problem(PairCounts.from_matrix(wins, items=items))
    assert (err.never_lost, err.never_won) == ([], ["p", "q"])
    assert "items ['p', 'q'] never won against the items outside their group" in str(err)


def test_two_disconnected_groups_each_strongly_connected():
    wins = np.zeros((5, 5))
    wins[0, 1] = wins[1, 0] = wins[1, 2] = wins[2, 0] = 1  # a, b, c: a cycle
    wins[3, 4] = wins[4, 3] = 1  # d, e
    err = mle_existence_problem(PairCounts.from_matrix(wins, items=list("abcde")))
    assert "2 disconnected groups" in str(err) and "items ['d', 'e']" in str(err)
    # nobody is blamed for never winning or never losing: each group is fine on its own
    assert (err.never_lost, err.never_won) == ([], [])
    assert sorted(map(sorted, err.components)) == [["a", "b", "c"], ["d", "e"]]


def test_disconnected_groups_with_a_problem_inside_one():
    wins = np.zeros((5, 5))
    wins[0, 1] = wins[1, 0] = wins[0, 2] = wins[1, 2] = 1  # c never won in group {a, b, c}
    wins[3, 4] = wins[4, 3] = 1
    err = mle_existence_problem(PairCounts.from_matrix(wins, items=list("abcde")))
    assert "2 disconnected groups" in str(err)
    assert (err.never_lost, err.never_won) == ([], ["c"])


def test_chain_names_both_ends():
    # a > b > c > d only: every item is its own component; the ends are named.
    wins = np.zeros((4, 4))
    wins[0, 1] = wins[1, 2] = wins[2, 3] = 1
    err = mle_existence_problem(PairCounts.from_matrix(wins, items=list("abcd")))
    assert (err.never_lost, err.never_won) == (["a"], ["d"])


def test_fit_raises_with_the_small_set():
    c = bradley.Comparisons.from_arrays(["a", "b", "c", "a", "b", "c"], ["b", "c", "a", "z", "z", "z"], [1] * 6)
    with pytest.raises(MLEDoesNotExistError, match=r"item \['z'\] never won") as err:
        bradley.BradleyTerry().fit(c)
    assert err.value.never_lost == []


@pytest.mark.parametrize("seed", range(40))
def test_agrees_with_brute_force_on_random_sparse_graphs(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 9))
    density = rng.uniform(0.1, 0.6)
    wins = (rng.random((n, n)) < density) * rng.integers(1, 3, (n, n)).astype(float)
    np.fill_diagonal(wins, 0)
    ties = np.triu((rng.random((n, n)) < 0.05).astype(float), 1)
    ties = ties + ties.T
    pairs = PairCounts.from_matrix(wins, ties=ties, items=[f"i{k}" for k in range(n)])
    effective = wins + 0.5 * ties
    comps, top, bottom, n_weak = brute_force(effective)
    err = mle_existence_problem(pairs)
    if len(comps) == 1:
        assert err is None
        return
    assert err is not None
    assert sorted(map(sorted, err.components)) == sorted(sorted(f"i{k}" for k in c) for c in comps)
    blamed_top = {int(x[1:]) for x in err.never_lost}
    blamed_bottom = {int(x[1:]) for x in err.never_won}
    # only top components are blamed for never losing, only bottom ones for never winning ...
    assert blamed_top <= top and blamed_bottom <= bottom
    # ... a group that is strongly connected on its own (only disconnected) is never blamed ...
    for c in comps:
        if c <= top and c <= bottom:
            assert not (c & (blamed_top | blamed_bottom))
    # ... every problem inside a connected part is named ...
    if n_weak == 1:
        assert blamed_top or blamed_bottom
        # ... and a component is spared only when it is the strictly largest of its part
        spared = [c for c in comps if (c <= top and not c & blamed_top) or (c <= bottom and not c & blamed_bottom)]
        assert len(spared) <= 1
        if spared:
            assert all(len(spared[0]) > len(c) for c in comps if c is not spared[0])
    assert ("disconnected groups" in str(err)) == (n_weak > 1)


def test_one_loser_among_200k_items():
    # 200k items, each beating the items 1 and 7 places before it in a random cycle.
    rng = np.random.default_rng(1)
    n = 200_000
    perm = rng.permutation(n)
    left = np.concatenate([perm, perm])
    right = np.concatenate([np.roll(perm, 1), np.roll(perm, 7)])
    c = bradley.Comparisons.from_arrays(left, right, np.ones(2 * n))
    pairs = c.pair_counts()
    assert mle_existence_problem(pairs) is None  # a directed cycle through every item
    loser = perm[0]
    # make one item lose every game it played
    wf, ws = pairs.wins_first.copy(), pairs.wins_second.copy()
    total = wf + ws
    at_first, at_second = pairs.first == loser, pairs.second == loser
    wf[at_first], ws[at_first] = 0.0, total[at_first]
    wf[at_second], ws[at_second] = total[at_second], 0.0
    err = mle_existence_problem(PairCounts(pairs.first, pairs.second, wf, ws, pairs.ties, pairs.items))
    assert (err.never_won, err.never_lost) == ([str(loser)], [])


def test_each_offending_group_is_named_separately():
    # c and d each lost to the body {a, b} and never met: two bottom groups, named one by one
    # (one merged phrase "c, d never won" would wrongly suggest they lost to each other too)
    items = ["a", "b", "c", "d"]
    wins = np.zeros((4, 4))
    wins[0, 1] = wins[1, 0] = 3
    wins[0, 2] = wins[1, 3] = 1
    err = mle_existence_problem(PairCounts.from_matrix(wins, items=items))
    text = str(err)
    assert "item ['c'] never won against the other items" in text
    assert "item ['d'] never won against the other items" in text
    assert "bias_reduction=True" in text


def test_disconnected_data_do_not_suggest_bias_reduction():
    wins = np.zeros((4, 4))
    wins[0, 1] = wins[1, 0] = wins[2, 3] = wins[3, 2] = 1
    err = mle_existence_problem(PairCounts.from_matrix(wins, items=list("abcd")))
    assert "disconnected" in str(err) and "bias_reduction" not in str(err)
