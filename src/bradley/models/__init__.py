"""Estimators users hold: configured in ``__init__``, ``fit(data) -> self``."""

from bradley.models.bradley_terry import BradleyTerry
from bradley.models.pairwise import TOBT, Davidson, PairwiseModel, RaoKupper

__all__ = ["BradleyTerry", "Davidson", "PairwiseModel", "RaoKupper", "TOBT"]
