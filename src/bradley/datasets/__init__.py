"""Real comparison data shipped with bradley (see README.md in this folder)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

__all__ = ["arena_140k_path", "load_arena_140k"]


def arena_140k_path() -> Path:
    """Path of the shipped Chatbot Arena battles (``model_a, model_b, winner``, CC BY 4.0)."""
    return Path(str(resources.files("bradley.datasets").joinpath("arena_human_preference_140k.csv.gz")))


def load_arena_140k() -> pd.DataFrame:
    """135,634 Chatbot Arena human votes (lmarena-ai/arena-human-preference-140k, CC BY 4.0).

    Returns
    -------
    pandas.DataFrame
        Columns ``model_a``, ``model_b``, ``winner`` (``model_a``, ``model_b``,
        ``tie``, ``both_bad``), in the data set's original order.

    Examples
    --------
    >>> battles = load_arena_140k()
    >>> len(battles)
    135634
    """
    return pd.read_csv(arena_140k_path(), engine="pyarrow")
