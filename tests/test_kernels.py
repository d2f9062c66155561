"""Fast kernels (aggregation, BT likelihood passes) against brute-force truths."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from scipy.special import log_expit

import bradley
from bradley import Comparisons, PairCounts
from bradley.solvers import bt


def counted(left, right, outcome, n):
    """Pair counts by a Python loop over rows: (first, second) -> [wins first, wins second, ties]."""
    table: dict[tuple[int, int], list[float]] = {}
    for a, b, o in zip(left.tolist(), right.tolist(), outcome.tolist()):
        key = (min(a, b), max(a, b))
        row = table.setdefault(key, [0.0, 0.0, 0.0])
        if o == 0.5:
            row[2] += 1
        elif (o == 1.0) == (a < b):
            row[0] += 1
        else:
            row[1] += 1
    keys = sorted(table)
    return np.array(keys).reshape(-1, 2), np.array([table[k] for k in keys]).reshape(-1, 3)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("path", ["dense", "sorted"])
def test_hard_outcome_aggregation_matches_a_loop(monkeypatch, ties, path):
    rng = np.random.default_rng(7)
    n, m = 30, 4000
    left = rng.integers(0, n, m)
    right = (left + rng.integers(1, n, m)) % n
    outcome = rng.choice([0.0, 1.0, 0.5] if ties else [0.0, 1.0], m)
    if path == "sorted":
        monkeypatch.setattr(bradley.data, "_DENSE_KEY_LIMIT", 10)
    p = Comparisons.from_arrays(left, right, outcome).pair_counts()
    keys, table = counted(left, right, outcome, n)
    np.testing.assert_array_equal(np.c_[p.first, p.second], keys)
    np.testing.assert_array_equal(np.c_[p.wins_first, p.wins_second, p.ties], table)


def test_sorted_aggregation_with_64_bit_codes(monkeypatch):
    # 30,000 items: 3 n^2 codes do not fit 32 bits, so the sort stays in int64.
    rng = np.random.default_rng(3)
    n, m = 30_000, 3000
    left = rng.integers(0, n, m)
    right = (left + rng.integers(1, n, m)) % n
    outcome = rng.choice([0.0, 1.0, 0.5], m)
    p = Comparisons.from_arrays(left, right, outcome, items=np.arange(n)).pair_counts()
    keys, table = counted(left, right, outcome, n)
    np.testing.assert_array_equal(np.c_[p.first, p.second], keys)
    np.testing.assert_array_equal(np.c_[p.wins_first, p.wins_second, p.ties], table)
