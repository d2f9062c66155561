"""Training on Hugging Face models (install with ``pip install 'bradley[train]'``).

Needs the ``train`` extra: ``transformers``, ``accelerate``, ``datasets`` and
``peft`` on top of torch. ``import bradley`` never loads this package, and
importing ``bradley.train`` itself loads only torch and :mod:`bradley.nn`;
``transformers`` and ``datasets`` are imported when a function that needs
them is first called.

* :mod:`bradley.train.data` -- preference rows in the formats people have
  (prompt/chosen/rejected strings or chat messages, explicit or implicit
  prompt; k-wise rankings; unpaired KTO rows; ties, margins, strengths, soft
  targets, categories) -> token ids with a :class:`TokenizationReport`;
  collators that put chosen and rejected in one forward pass; helpers that
  turn the model's per-token log-probs into a :class:`bradley.nn.PreferenceBatch`.
* :mod:`bradley.train.toy` -- tiny tokenizers, models and synthetic preference
  data built from configs, for tests and examples.
* :class:`RewardTrainer` / :class:`RewardModel` -- reward models (scalar, GPM,
  GenRM heads) with any reward-model loss; held-out pairwise metrics.
* :class:`PreferenceTrainer` -- offline preference optimisation of causal LMs
  with any direct preference loss by name (frozen, cached or adapter-disabled
  reference; memory-lean log-probs).
* :class:`OnlineTrainer` -- SPPO, INPO, DNO, EGPO/online-IPO, ONPO, BRAIn:
  sample, judge with a preference oracle (:mod:`bradley.train.oracles`), update.
"""

from __future__ import annotations

from bradley.train import data, oracles, reference, toy
from bradley.train.data import (
    ListCollator,
    PairCollator,
    TokenizationReport,
    UnpairedCollator,
    list_preference_batch,
    loss_fields,
    preference_batch,
    read_preferences,
    split_pairs,
    tokenize_preferences,
)
from bradley.train.heads import (
    GENRM_TEMPLATE,
    GeneralPreferenceModel,
    GenerativeRewardModel,
    ScalarRewardModel,
    gpm_score,
)
from bradley.train.metrics import pairwise_metrics
from bradley.train.online import OnlineTrainer
from bradley.train.preference import PreferenceCollator, PreferenceTrainer, tokenize_multiturn
from bradley.train.reward import RewardModel, RewardTrainer

__all__ = [
    "GENRM_TEMPLATE",
    "GeneralPreferenceModel",
    "GenerativeRewardModel",
    "OnlineTrainer",
    "PreferenceCollator",
    "PreferenceTrainer",
    "RewardModel",
    "RewardTrainer",
    "ScalarRewardModel",
    "gpm_score",
    "oracles",
    "pairwise_metrics",
    "reference",
    "tokenize_multiturn",
    "ListCollator",
    "PairCollator",
    "TokenizationReport",
    "UnpairedCollator",
    "data",
    "list_preference_batch",
    "loss_fields",
    "preference_batch",
    "read_preferences",
    "split_pairs",
    "tokenize_preferences",
    "toy",
]
