"""Conversions between the natural-log score scale and rating scales."""

from __future__ import annotations

import numpy as np

__all__ = ["ELO_SCALE", "ELO_CENTER", "to_elo", "from_elo"]

#: Elo points per natural-log unit: 400 points per factor of 10 in the odds.
ELO_SCALE = 400.0 / np.log(10.0)
#: Elo rating of a mean-zero (or anchor-zero) log score, as on Chatbot Arena.
ELO_CENTER = 1000.0


def to_elo(scores: np.ndarray, center: float = ELO_CENTER) -> np.ndarray:
    """Natural-log strengths to the Elo scale of arena leaderboards.

    ``elo = center + 400 * scores / ln(10)``: a 400-point gap means odds of 10:1.

    Examples
    --------
    >>> to_elo(np.array([0.0, np.log(10.0)])).round(6).tolist()
    [1000.0, 1400.0]
    """
    return center + ELO_SCALE * np.asarray(scores, dtype=np.float64)


def from_elo(ratings: np.ndarray, center: float = ELO_CENTER) -> np.ndarray:
    """Elo-scale ratings back to natural-log strengths (inverse of :func:`to_elo`)."""
    return (np.asarray(ratings, dtype=np.float64) - center) / ELO_SCALE
