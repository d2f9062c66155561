"""bradley: learning from comparisons with Bradley-Terry-family models.

Examples
--------
>>> import bradley
>>> battles = bradley.datasets.load_arena_140k()
>>> data = bradley.read_comparisons(battles, drop_self_comparisons=True)  # doctest: +SKIP
>>> model = bradley.BradleyTerry().fit(data)  # doctest: +SKIP
>>> model.summary().head(3)  # doctest: +SKIP
"""

from bradley import datasets, evaluate, inference, matchups
from bradley.data import Comparisons, PairCounts, check_mle_exists, mle_existence_problem
from bradley.errors import (
    BradleyError,
    ComparisonDataError,
    ConvergenceWarning,
    DataWarning,
    MLEDoesNotExistError,
    NotFittedError,
)
from bradley.io import read_comparisons
from bradley.leaderboard import Leaderboard, leaderboard  # the function shadows the module name on purpose
from bradley.models import TOBT, BradleyTerry, BTProbe, FeatureBT, Davidson, PairwiseModel, PlackettLuce, RaoKupper, RobustBradleyTerry
from bradley.rankings import Rankings, break_rankings, read_rankings
from bradley.scales import from_elo, to_elo
from bradley.simulate import simulate_bt

__version__ = "0.1.0"

__all__ = [
    "BradleyError",
    "BTProbe",
    "BradleyTerry",
    "FeatureBT",
    "ComparisonDataError",
    "Comparisons",
    "ConvergenceWarning",
    "Leaderboard",
    "DataWarning",
    "Davidson",
    "MLEDoesNotExistError",
    "NotFittedError",
    "PairwiseModel",
    "PlackettLuce",
    "Rankings",
    "RaoKupper",
    "RobustBradleyTerry",
    "TOBT",
    "PairCounts",
    "check_mle_exists",
    "datasets",
    "evaluate",
    "from_elo",
    "inference",
    "leaderboard",
    "matchups",
    "mle_existence_problem",
    "break_rankings",
    "read_comparisons",
    "read_rankings",
    "simulate_bt",
    "to_elo",
    "__version__",
]
