"""Held-out pairwise evaluation of preference models: accuracy, log-loss, calibration, per category.

:func:`pairwise_metrics` takes the model's ``P(chosen beats rejected)`` and the
observed outcome of each held-out pair (1 decisive, 0.5 tie, or a soft
target) and returns one tidy row for all pairs plus one per category. The
numbers are :func:`bradley.evaluate.accuracy`, :func:`~bradley.evaluate.log_loss`,
:func:`~bradley.evaluate.expected_calibration_error` and
:func:`~bradley.evaluate.brier_score`, the same functions that score the
rating models of the core, so a reward model and a Bradley-Terry fit are
measured alike. :meth:`bradley.train.reward.RewardModel.evaluate` runs a model over a dataset
and calls it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from bradley.evaluate import accuracy, brier_score, expected_calibration_error, log_loss

__all__ = ["METRIC_COLUMNS", "pairwise_metrics"]

#: Columns of :func:`pairwise_metrics`.
METRIC_COLUMNS = ("category", "pairs", "decisive", "accuracy", "log_loss", "ece", "brier")


def pairwise_metrics(
    prob: Any,
    outcome: Any,
    category: Sequence[Any] | None = None,
    weight: Any | None = None,
    *,
    bins: int = 10,
) -> pd.DataFrame:
    """Accuracy, log-loss, ECE and Brier score of predicted pairwise probabilities, overall and per category.

    Parameters
    ----------
    prob : array-like of shape (n,)
        Predicted ``P(first response beats second)`` (the chosen one, for preference pairs).
    outcome : array-like of shape (n,)
        1.0 where the first won, 0.0 where it lost, 0.5 for ties, or a soft target in [0, 1].
    category : sequence of length n, optional
        A label per pair; adds one row per category (sorted) after the ``"all"`` row.
    weight : array-like of shape (n,), optional
        Row weights (a row of weight w counts as w rows).
    bins : int
        Equal-width bins of the favourite's probability on [0.5, 1] for the ECE.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`METRIC_COLUMNS`: ``pairs`` (rows), ``decisive`` (rows
        with an outcome other than 0.5, the ones accuracy counts), and the
        weighted metrics. Accuracy leaves ties out and gives half a hit to a
        prediction of exactly one half; log-loss, ECE and Brier use every row.

    Examples
    --------
    >>> table = pairwise_metrics([0.9, 0.2, 0.6, 0.5], [1.0, 1.0, 1.0, 0.5], category=["a", "a", "b", "b"])
    >>> print(table[["category", "pairs", "decisive", "accuracy"]].to_string(index=False))
    category  pairs  decisive  accuracy
         all      4         3  0.666667
           a      2         2  0.500000
           b      2         1  1.000000
    """
    p = np.asarray(prob, dtype=np.float64).reshape(-1)
    o = np.asarray(outcome, dtype=np.float64).reshape(-1)
    if p.shape != o.shape:
        raise ValueError(f"prob has {p.size} entries but outcome has {o.size}; give one per pair.")
    if p.size == 0:
        raise ValueError("pairwise_metrics: no pairs to evaluate.")
    if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("prob must hold probabilities in [0, 1] (no NaN).")
    if np.any(~np.isfinite(o)) or np.any((o < 0) | (o > 1)):
        raise ValueError("outcome must hold values in [0, 1]: 1 win, 0 loss, 0.5 tie, or a soft target.")
    w = np.ones_like(p) if weight is None else np.asarray(weight, dtype=np.float64).reshape(-1)
    if w.shape != p.shape:
        raise ValueError(f"weight has {w.size} entries for {p.size} pairs.")
    groups: list[tuple[str, np.ndarray]] = [("all", np.ones(p.size, dtype=bool))]
    if category is not None:
        labels = np.asarray([str(c) for c in category], dtype=object)
        if labels.size != p.size:
            raise ValueError(f"category has {labels.size} entries for {p.size} pairs.")
        groups += [(str(c), labels == c) for c in sorted(set(labels.tolist()))]
    rows = []
    for name, rows_in in groups:
        pg, og, wg = p[rows_in], o[rows_in], w[rows_in]
        decisive = og != 0.5
        rows.append(
            {
                "category": name,
                "pairs": int(rows_in.sum()),
                "decisive": int(decisive.sum()),
                "accuracy": accuracy(pg, og, wg) if decisive.any() else float("nan"),
                "log_loss": log_loss(pg, og, wg),
                "ece": expected_calibration_error(pg, og, wg, bins=bins),
                "brier": brier_score(pg, og, wg),
            }
        )
    return pd.DataFrame(rows, columns=list(METRIC_COLUMNS))
