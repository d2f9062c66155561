import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bradley
from bradley import Comparisons, MLEDoesNotExistError, PairCounts, mle_existence_problem


@st.composite
def comparison_rows(draw):
    n = draw(st.integers(2, 6))
    m = draw(st.integers(1, 40))
    left = draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m))
    shift = draw(st.lists(st.integers(1, n - 1), min_size=m, max_size=m))
    right = [(a + s) % n for a, s in zip(left, shift)]
    outcome = draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 0.25, 0.9]), min_size=m, max_size=m))
    # zero or a sane positive weight (weights more than MAX_WEIGHT_RATIO apart are refused)
    weight = draw(st.lists(st.one_of(st.just(0.0), st.floats(1e-3, 5.0)), min_size=m, max_size=m))
    return n, np.array(left), np.array(right), np.array(outcome), np.array(weight)


@settings(max_examples=60, deadline=None)
@given(comparison_rows())
def test_pair_counts_match_a_python_loop(rows):
    n, left, right, outcome, weight = rows
    c = Comparisons.from_arrays(left, right, outcome, weight, items=np.arange(n))
    p = c.pair_counts()
    expected = {}
    for l_, r_, o, w in zip(left, right, outcome, weight):
        i, j = min(l_, r_), max(l_, r_)
        p_first = o if l_ == i else 1 - o
        wf, ws, t = expected.get((i, j), (0.0, 0.0, 0.0))
        if o == 0.5:
            t += w
        else:
            wf += w * p_first
            ws += w * (1 - p_first)
        expected[(i, j)] = (wf, ws, t)
    got = {(int(i), int(j)): (a, b, t) for i, j, a, b, t in zip(p.first, p.second, p.wins_first, p.wins_second, p.ties)}
    assert set(got) == set(expected)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], atol=1e-12)
    assert np.all(p.first < p.second)
    order = p.first * n + p.second
    assert np.all(np.diff(order) > 0)


def test_hashed_aggregation_path_matches_dense(monkeypatch):
    data, _ = bradley.simulate_bt(50, 3000, seed=3)
    dense = data.pair_counts()
    monkeypatch.setattr(bradley.data, "_DENSE_KEY_LIMIT", 10)
    hashed = data.pair_counts()
    for field in ("first", "second", "wins_first", "wins_second", "ties"):
        np.testing.assert_array_equal(getattr(dense, field), getattr(hashed, field))


def test_item_totals():
    c = Comparisons.from_arrays(["a", "a", "b", "c"], ["b", "c", "a", "a"], [1, 0.5, 1, 0])
    t = c.pair_counts().item_totals()
    assert t.loc["a"].tolist() == [2.0, 1.0, 1.0, 4.0]  # wins, losses, ties, comparisons
    assert t.loc["b"].tolist() == [1.0, 1.0, 0.0, 2.0]


def test_from_matrix_validates():
    with pytest.raises(bradley.ComparisonDataError, match="square"):
        PairCounts.from_matrix([[0, 1, 2]])
    with pytest.raises(bradley.ComparisonDataError, match="diagonal"):
        PairCounts.from_matrix([[1, 1], [1, 0]])
    p = PairCounts.from_matrix([[0, 2], [1, 0]], ties=[[0, 3], [3, 0]])
    assert (p.wins_first[0], p.wins_second[0], p.ties[0]) == (2.0, 1.0, 3.0)
    np.testing.assert_array_equal(p.win_matrix(tie_credit=0.5), [[0, 3.5], [2.5, 0]])


def test_strongly_connected_data_has_mle():
    p = PairCounts.from_matrix([[0, 1, 0], [0, 0, 1], [1, 0, 0]])  # a cycle
    assert mle_existence_problem(p) is None


def test_never_lost_and_never_won_are_named():
    # a beats everyone; d loses to everyone; b and c split.
    wins = np.array([[0, 2, 1, 1], [0, 0, 1, 1], [0, 1, 0, 1], [0, 0, 0, 0]])
    err = mle_existence_problem(PairCounts.from_matrix(wins, items=list("abcd")))
    assert err.never_lost == ["a"]
    assert err.never_won == ["d"]
    assert "'a'" in str(err) and "never lost" in str(err) and "prior" in str(err)


def test_disconnected_graph_is_reported():
    c = Comparisons.from_arrays(["a", "b", "c", "d"], ["b", "a", "d", "c"], [1, 1, 1, 1])
    with pytest.raises(MLEDoesNotExistError, match="2 disconnected groups"):
        bradley.check_mle_exists(c.pair_counts())


def test_ties_connect_the_win_graph():
    # Only ties between a and b: each gets half a win each way, so the MLE exists.
    c = Comparisons.from_arrays(["a", "a"], ["b", "b"], [0.5, 0.5])
    assert mle_existence_problem(c.pair_counts()) is None


def test_uncompared_item_in_given_list_is_a_problem():
    c = Comparisons.from_arrays(["a", "b"], ["b", "a"], [1, 1], items=["a", "b", "z"])
    err = mle_existence_problem(c.pair_counts())
    assert err is not None and "'z'" in str(err)


@pytest.mark.parametrize("weighted", [False, True])
def test_sorted_aggregation_path_matches_dense_for_soft_and_weighted(monkeypatch, weighted):
    rng = np.random.default_rng(4)
    left = rng.integers(0, 40, 5000)
    right = (left + rng.integers(1, 40, 5000)) % 40
    outcome = rng.choice([0.0, 1.0, 0.5, 0.3], 5000)
    weight = rng.uniform(0, 2, 5000) if weighted else None
    data = Comparisons.from_arrays(left, right, outcome, weight)
    dense = data.pair_counts()
    monkeypatch.setattr(bradley.data, "_DENSE_KEY_LIMIT", 10)
    hashed = data.pair_counts()
    for field in ("first", "second", "wins_first", "wins_second", "ties"):
        np.testing.assert_allclose(getattr(dense, field), getattr(hashed, field), atol=1e-9)


# --------------------------------------------------------------------------- labels versus codes (issue 9 item 1)
def test_integer_labels_are_labels_not_codes():
    c = Comparisons.from_arrays(np.array([1, 2, 3, 1]), np.array([2, 3, 1, 3]), [1, 1, 1, 1])
    assert c.items.tolist() == [1, 2, 3]  # no phantom item 0
    assert [type(v) for v in c.items] == [int, int, int]
    assert c.items[c.left].tolist() == [1, 2, 3, 1]
    model = bradley.BradleyTerry().fit(c)
    assert model.items_.tolist() == [1, 2, 3] and model.converged_


def test_large_integer_ids_do_not_allocate_by_value():
    # ids near 3e9: the old code built np.arange(max id + 1) (24 GB); labels cost nothing.
    # Run under a 3 GB address-space cap so that a regression fails here instead of
    # taking the machine's memory.
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))
        import numpy as np
        from bradley import Comparisons
        big = 3_000_000_000
        c = Comparisons.from_arrays(np.array([big, big + 7, big]), np.array([big + 7, big, big + 7]), [1, 1, 0])
        assert c.items.tolist() == [big, big + 7]
        assert c.pair_counts().n_items == 2
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]


def test_from_arrays_with_items_matches_integer_labels():
    c = Comparisons.from_arrays([10, 30], [30, 20], [1, 0], items=[30, 20, 10])
    assert c.items.tolist() == [30, 20, 10] and c.left.tolist() == [2, 0]
    with pytest.raises(bradley.ComparisonDataError, match=r"not in the given item list.*\[5\]"):
        Comparisons.from_arrays([10, 5], [30, 20], [1, 0], items=[30, 20, 10])


def test_integers_on_one_side_and_text_on_the_other_are_one_item_set():
    c = Comparisons.from_arrays(np.array([1, 2]), np.array(["2", "x"], dtype=object), [1, 1])
    assert c.items.tolist() == ["1", "2", "x"]
    assert c.items[c.left].tolist() == ["1", "2"] and c.items[c.right].tolist() == ["2", "x"]


def test_from_codes():
    c = Comparisons.from_codes(np.array([0, 2]), np.array([1, 0]), [1, 0])
    assert c.items.tolist() == [0, 1, 2] and c.left.tolist() == [0, 2]
    named = Comparisons.from_codes([0, 2], [1, 0], [1, 0], items=["a", "b", "c", "d"])
    assert named.items.tolist() == ["a", "b", "c", "d"] and named.items[named.left].tolist() == ["a", "c"]
    assert Comparisons.from_codes([0], [1], [1], items=5).n_items == 5
    assert Comparisons.from_codes(np.array([0.0]), np.array([1.0]), [1]).left.dtype == np.int64
    with pytest.raises(bradley.ComparisonDataError, match=r"out of range in row 1"):
        Comparisons.from_codes([0, 3], [1, 0], [1, 0], items=3)
    with pytest.raises(bradley.ComparisonDataError, match=r"negative item codes in row 0"):
        Comparisons.from_codes([-1, 0], [1, 2], [1, 0])
    with pytest.raises(bradley.ComparisonDataError, match="from_arrays"):
        Comparisons.from_codes(["a"], ["b"], [1])
    with pytest.raises(bradley.ComparisonDataError, match="whole numbers"):
        Comparisons.from_codes([0.5], [1], [1])
    with pytest.raises(bradley.ComparisonDataError, match="duplicate"):
        Comparisons.from_codes([0], [1], [1], items=["a", "a"])
