"""Estimators users hold: configured in ``__init__``, ``fit(data) -> self``."""

from bradley.models.bayes import BayesianBT, GradeScaleBT
from bradley.models.bradley_terry import BradleyTerry
from bradley.models.contextual import ContextualBT
from bradley.models.dynamic import DynamicBT
from bradley.models.features import BTProbe, FeatureBT, probe_layers, select_l2
from bradley.models.gpm import GPM
from bradley.models.mixture import BTMixture, IdealPointModel, adjusted_rand_index
from bradley.models.pairwise import TOBT, Davidson, PairwiseModel, RaoKupper
from bradley.models.plackett_luce import PlackettLuce
from bradley.models.robust import RobustBradleyTerry

# The name in DESIGN.md.
MixtureBT = BTMixture

__all__ = [
    "BTMixture",
    "BayesianBT",
    "BTProbe",
    "BradleyTerry",
    "ContextualBT",
    "Davidson",
    "DynamicBT",
    "FeatureBT",
    "GPM",
    "GradeScaleBT",
    "IdealPointModel",
    "MixtureBT",
    "probe_layers",
    "select_l2",
    "PairwiseModel",
    "PlackettLuce",
    "RaoKupper",
    "RobustBradleyTerry",
    "TOBT",
    "adjusted_rand_index",
]
