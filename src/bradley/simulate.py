"""Simulated comparison data with known true scores (for tests, benchmarks, power studies)."""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from bradley.data import Comparisons

__all__ = ["simulate_bt"]


def simulate_bt(
    n_items: int,
    n_comparisons: int,
    *,
    scores: np.ndarray | None = None,
    score_sd: float = 1.0,
    seed: int | np.random.Generator | None = None,
    item_names: bool = False,
) -> tuple[Comparisons, np.ndarray]:
    """Draw Bradley-Terry comparisons between uniformly random pairs of distinct items.

    Parameters
    ----------
    n_items, n_comparisons : int
    scores : numpy.ndarray, optional
        True log-strengths; by default drawn from ``N(0, score_sd**2)`` and centred.
    score_sd : float
        Standard deviation of the drawn scores.
    seed : int or numpy.random.Generator, optional
    item_names : bool
        Name items ``"item00017"`` (strings) instead of integer codes.

    Returns
    -------
    comparisons : Comparisons
        Outcome 1 when left won, 0 when right won.
    true_scores : numpy.ndarray
        The scores used (mean zero).

    Examples
    --------
    >>> data, truth = simulate_bt(5, 100, seed=0)
    >>> data.n_comparisons, truth.shape
    (100, (5,))
    """
    if n_items < 2:
        raise ValueError("need at least two items.")
    rng = np.random.default_rng(seed)
    if scores is None:
        scores = rng.normal(0.0, score_sd, n_items)
    scores = np.asarray(scores, dtype=np.float64)
    scores = scores - scores.mean()
    left = rng.integers(0, n_items, n_comparisons)
    right = (left + rng.integers(1, n_items, n_comparisons)) % n_items
    outcome = (rng.random(n_comparisons) < expit(scores[left] - scores[right])).astype(np.float64)
    if item_names:
        width = len(str(n_items - 1))
        names = np.array([f"item{k:0{width}d}" for k in range(n_items)], dtype=object)
        data = Comparisons.from_arrays(names[left], names[right], outcome, items=names)
    else:
        data = Comparisons.from_codes(left, right, outcome, items=n_items)
    return data, scores
