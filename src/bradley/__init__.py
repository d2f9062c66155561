"""bradley: learning from comparisons with Bradley-Terry-family models.

Examples
--------
>>> import bradley
>>> battles = bradley.datasets.load_arena_140k()
>>> data = bradley.read_comparisons(battles, drop_self_comparisons=True)  # doctest: +SKIP
>>> model = bradley.BradleyTerry().fit(data)  # doctest: +SKIP
>>> model.summary().head(3)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

from bradley.aggregate import (
    aggregate,
    bootstrap_pair_counts,
    load_pair_counts,
    merge_pair_counts,
    sandwich_pair_counts,
    save_pair_counts,
)
from bradley.data import Comparisons, PairCounts, check_mle_exists, mle_existence_problem
from bradley.errors import (
    BradleyError,
    ComparisonDataError,
    ConvergenceWarning,
    DataWarning,
    MLEDoesNotExistError,
    NotFittedError,
)
from bradley.io import read_comparisons, read_pair_counts
from bradley.leaderboard import Leaderboard, leaderboard  # the function shadows the module name on purpose
from bradley.models import (
    GPM,
    TOBT,
    BayesianBT,
    BradleyTerry,
    BTMixture,
    BTProbe,
    ContextualBT,
    Davidson,
    DynamicBT,
    FeatureBT,
    GradeScaleBT,
    IdealPointModel,
    MixtureBT,
    PairwiseModel,
    PlackettLuce,
    RaoKupper,
    RobustBradleyTerry,
)
from bradley.models.plackett_luce import plackett_luce_log_likelihood
from bradley.nash import NashSolution, duality_gap, margin_matrix, maximal_lottery, solve_nash
from bradley.rankings import Rankings, break_rankings, read_rankings
from bradley.raters import EloRater, Glicko2Rater, WengLinRater
from bradley.scales import from_elo, to_elo
from bradley.simulate import simulate_bt

__version__ = "0.1.0"

# Submodules loaded on first use (``bradley.evaluate``, ...): ``import bradley``
# stays cheap for a plain fit. ``leaderboard`` stays eager because the function
# of that name must shadow the module.
_LAZY_SUBMODULES = (
    "active",
    "datasets",
    "diagnostics",
    "distributed",
    "embeddings",
    "evaluate",
    "inference",
    "judge",
    "matchups",
    "probes",
    "routing",
    "social_choice",
    "style",
    "temporal",
)
# Names served from a lazily loaded submodule (``bradley.temporal_evaluation`` loads bradley.temporal).
_LAZY_ATTRIBUTES = {
    "TemporalEvaluation": "temporal",
    "rolling_origin_splits": "temporal",
    "temporal_evaluation": "temporal",
    "aggregate_dask": "distributed",
    "aggregate_spark": "distributed",
    "ActiveSampler": "active",
    "EmbeddingCache": "embeddings",
    "MiniLMEmbedder": "embeddings",
    "StubEmbedder": "embeddings",
    "choose_pairs": "active",
    "SurrogateJudge": "judge",
    "route": "routing",
    "style_controlled_leaderboard": "style",
    "style_features": "style",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY_SUBMODULES:
        module = importlib.import_module(f"bradley.{name}")
        globals()[name] = module
        return module
    if name in _LAZY_ATTRIBUTES:
        value = getattr(importlib.import_module(f"bradley.{_LAZY_ATTRIBUTES[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'bradley' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_SUBMODULES) | set(_LAZY_ATTRIBUTES))


__all__ = [
    "BradleyError",
    "BTProbe",
    "BradleyTerry",
    "ContextualBT",
    "FeatureBT",
    "EloRater",
    "GPM",
    "GradeScaleBT",
    "Glicko2Rater",
    "BTMixture",
    "BayesianBT",
    "IdealPointModel",
    "MixtureBT",
    "NashSolution",
    "TemporalEvaluation",
    "WengLinRater",
    "raters",
    "rolling_origin_splits",
    "temporal",
    "temporal_evaluation",
    "duality_gap",
    "margin_matrix",
    "maximal_lottery",
    "solve_nash",
    "ComparisonDataError",
    "Comparisons",
    "ConvergenceWarning",
    "Leaderboard",
    "DataWarning",
    "DynamicBT",
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
    "aggregate",
    "aggregate_dask",
    "bootstrap_pair_counts",
    "load_pair_counts",
    "merge_pair_counts",
    "sandwich_pair_counts",
    "save_pair_counts",
    "aggregate_spark",
    "diagnostics",
    "distributed",
    "evaluate",
    "from_elo",
    "inference",
    "leaderboard",
    "matchups",
    "social_choice",
    "active",
    "ActiveSampler",
    "choose_pairs",
    "judge",
    "SurrogateJudge",
    "routing",
    "route",
    "style",
    "style_controlled_leaderboard",
    "style_features",
    "embeddings",
    "EmbeddingCache",
    "MiniLMEmbedder",
    "StubEmbedder",
    "probes",
    "mle_existence_problem",
    "break_rankings",
    "plackett_luce_log_likelihood",
    "read_comparisons",
    "read_pair_counts",
    "read_rankings",
    "simulate_bt",
    "to_elo",
    "__version__",
]
