"""Estimators users hold: configured in ``__init__``, ``fit(data) -> self``."""

from bradley.models.bradley_terry import BradleyTerry
from bradley.models.pairwise import TOBT, Davidson, PairwiseModel, RaoKupper
from bradley.models.plackett_luce import PlackettLuce
from bradley.models.robust import RobustBradleyTerry

__all__ = ["BradleyTerry", "Davidson", "PairwiseModel", "PlackettLuce", "RaoKupper", "RobustBradleyTerry", "TOBT"]
