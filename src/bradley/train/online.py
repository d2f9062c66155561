"""Online self-play toward the Nash policy: SPPO, INPO, ONPO, DNO, EGPO / online IPO, and BRAIn.

One outer loop, ours; every policy update inside it is a ``transformers.Trainer``
run on the data the loop generated. Iteration ``t``:

1. freeze a copy of the policy as the previous iterate ``pi_t``;
2. sample K responses per prompt from ``pi_t`` (``model.generate``, seeded);
3. judge every pair of samples with the preference oracle (K(K-1)/2 calls
   per prompt) and estimate each sample's win rate
   ``P(y_k beats pi_t)`` as its mean preference over the other samples;
4. build the loss's inputs (pairs, targets, and the log-probs of ``pi_t`` and
   of the reference computed once, without gradients);
5. update the policy with a ``transformers.Trainer`` on those examples;
6. judge fresh samples of the evaluation prompts: the win rate of the new
   policy against the initial policy and against ``pi_t``, with binomial
   standard errors, into :attr:`OnlineTrainer.history_` and the logs.

Which pairs and inputs each loss gets (sheet B10-B15):

======================  =====================================================================
``sppo``                best vs worst sample by win rate; ``chosen/rejected_win_rate``
                        and ``P(chosen beats rejected)`` (``variant="single"``); ``pi_t`` log-probs
``inpo``                best vs worst, kept when the oracle prefers the best
                        (``P > min_preference``); reference and ``pi_t`` log-probs
``onpo``                optimistic mirror descent (B12): INPO's loss with ``tau = 0``
                        anchored at ``pi'_t``, two update phases per iteration on the same
                        data (anchor ``pi'_t`` -> ``pi'_{t+1}``, then anchor ``pi'_{t+1}``
                        -> ``pi_{t+1}``); ``beta`` = 1 / the paper's eta
``dno``                 best vs worst, kept when ``P > min_preference``; ``pi_t`` as the
                        reference (DNO-Prct); ``soft_targets=True`` adds
                        ``sigmoid(w_chosen - w_rejected)`` (the conceptual loss)
``egpo`` / ``online-ipo``  disjoint pairs of samples (y, y'), targets ``P(y beats y'')``,
                        ``P(y' beats y'')`` against the other samples y'' (``P(y beats y')``
                        when K = 2); the fixed reference; ``egpo`` adds the extragradient
                        step (below)
``brain``               all K samples; rewards from a BT reward model (the oracle's
                        ``score``), proposal ``pi_t``, prior the reference
                        (:mod:`bradley.train.brain`)
any other policy loss   best vs worst, kept when ``P > min_preference``, with ``pi_t`` as
                        its reference (iterative DPO, e.g. ``loss="sigmoid"``)
======================  =====================================================================

The extragradient (EGPO) is taken at the level of iterations: an update phase
from ``theta_t`` to a midpoint, fresh opponent samples y'' from the midpoint
and new targets, the weights restored to ``theta_t``, and the real update
phase with the midpoint's targets (each phase starts a fresh optimizer, so
there is no optimizer state to restore).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import logging
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from bradley.nn.batch import BATCH_FIELDS
from bradley.nn.logprobs import model_logprobs
from bradley.nn.registry import CombinedLoss, LossOutput, PreferenceLoss, get
from bradley.train.brain import brain_loss
from bradley.train.data import (
    ListCollator,
    PairCollator,
    TokenizationReport,
    loss_fields,
    preference_batch,
    read_preferences,
    split_pairs,
)
from bradley.train.oracles import PreferModelOracle, as_oracle, binomial_se, pairwise_preferences, win_rates

__all__ = ["OnlineTrainer"]

logger = logging.getLogger(__name__)

#: Trainer modes that are not a single registered loss.
MODES = ("onpo", "brain")
# generate() options the trainer sets itself: generation_kwargs may not override them.
_GENERATION_OWNED = frozenset(
    {
        "max_new_tokens",
        "temperature",
        "top_k",
        "top_p",
        "do_sample",
        "num_return_sequences",
        "pad_token_id",
        "eos_token_id",
        "input_ids",
        "attention_mask",
        "max_length",
    }
)
# generate() options that change the distribution the responses are drawn from.
_GENERATION_RESHAPING = frozenset(
    {
        "typical_p",
        "min_p",
        "epsilon_cutoff",
        "eta_cutoff",
        "repetition_penalty",
        "no_repeat_ngram_size",
        "num_beams",
        "num_beam_groups",
        "diversity_penalty",
        "bad_words_ids",
        "suppress_tokens",
        "sequence_bias",
        "begin_suppress_tokens",
        "min_new_tokens",
        "min_length",
        "forced_bos_token_id",
        "forced_eos_token_id",
        "logits_processor",
        "guidance_scale",
        "penalty_alpha",
        "encoder_repetition_penalty",
        "exponential_decay_length_penalty",
    }
)

# Our defaults for the per-iteration transformers.Trainer (HF names); anything here can be overridden.
_HF_DEFAULTS: dict[str, Any] = {
    "output_dir": "online-trainer",
    "per_device_train_batch_size": 8,
    "num_train_epochs": 1,
    "learning_rate": 1e-6,
    "logging_steps": 10,
    "report_to": "none",
    "save_strategy": "no",
}


@dataclasses.dataclass
class _Samples:
    """K sampled responses for each of N prompts."""

    prompt_ids: list[list[int]]
    response_ids: list[list[list[int]]]  # [N][K] token ids, up to and including EOS
    texts: list[list[str]]  # [N][K] decoded responses (what the oracle reads)
    truncated: int  # responses that hit max_new_tokens without EOS
    prompts_truncated: int
    prompt_tokens_dropped: int


def _close(name: str, options: Sequence[str]) -> str:
    near = difflib.get_close_matches(name, options, n=3, cutoff=0.6)
    return f" (did you mean {', '.join(near)}?)" if near else ""


def _read_prompts(data: Any, name: str) -> list[Any]:
    """Prompts from a list of strings / chat messages, or any data with a ``prompt`` column."""
    if isinstance(data, (str, bytes)):
        raise TypeError(f"{name} must be a list of prompts (strings or chat messages), not one string.")
    if isinstance(data, list) and data and all(isinstance(p, str) or _is_messages(p) for p in data):
        return list(data)
    columns: Sequence[str] = ()
    if isinstance(data, Mapping):
        columns = list(data)
    elif hasattr(data, "column_names"):
        columns = list(data.column_names)
    elif hasattr(data, "columns"):
        columns = [str(c) for c in data.columns]
    elif isinstance(data, list) and data and isinstance(data[0], Mapping):
        columns = list(data[0])
    if {"chosen", "rejected"} <= set(columns) or "responses" in columns or "completion" in columns:
        return list(read_preferences(data)["prompt"])
    if "prompt" in columns:
        if isinstance(data, list):
            return [row["prompt"] for row in data]
        return list(data["prompt"])
    raise TypeError(
        f"{name} must be a non-empty list of prompts (strings or chat messages) or data with a 'prompt' column "
        f"(a datasets.Dataset, DataFrame, dict of columns or list of rows); got {type(data).__name__}"
        + (f" with columns {list(columns)}" if columns else "")
        + "."
    )


def _is_messages(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(m, Mapping) and "role" in m for m in value)


def _token_ids(encoded: Any) -> list[int]:
    ids = encoded["input_ids"] if isinstance(encoded, Mapping) or hasattr(encoded, "keys") else encoded
    return [int(i) for i in ids]


def _frozen(model: Any) -> Any:
    clone = copy.deepcopy(model)
    clone.eval()
    clone.requires_grad_(False)
    return clone


def _device(model: Any) -> torch.device:
    return next(model.parameters()).device


@functools.cache
def _phase_trainer_class() -> type:
    """The transformers.Trainer subclass of one update phase (built on first use: transformers is lazy)."""
    from transformers import Trainer

    class _UpdatePhase(Trainer):
        """Trainer whose loss is a preference loss on precomputed per-pair (or per-list) fields."""

        def __init__(self, *args: Any, preference_loss: Callable[..., LossOutput], listwise: bool, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.preference_loss = preference_loss
            self.listwise = listwise
            # Our loss is a mean per batch: let the Trainer scale it for gradient accumulation.
            self.model_accepts_loss_kwargs = False
            self._metrics: dict[str, list[float]] = {}

        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            logps = model_logprobs(model, inputs["input_ids"], inputs["labels"], inputs["attention_mask"])
            if self.listwise:
                b, k = inputs["ranks"].shape
                policy = logps.sum.reshape(b, k)
                out = self.preference_loss(
                    policy_logps=policy,
                    ref_logps=inputs["ref_logps"],
                    rewards=inputs["rewards"],
                    prev_logps=inputs["prev_logps"],
                )
                chosen_logps = policy.gather(1, inputs["ranks"].argmin(-1, keepdim=True)).squeeze(1)
                rejected_logps = policy.gather(1, inputs["ranks"].argmax(-1, keepdim=True)).squeeze(1)
            else:
                out = self.preference_loss(preference_batch(logps, **loss_fields(inputs)))
                chosen_logps, rejected_logps = split_pairs(logps.sum)
            loss = out.loss.mean()
            self._record(out, chosen_logps, rejected_logps)
            return (loss, {"loss": loss}) if return_outputs else loss

        def _record(self, out: LossOutput, chosen_logps: torch.Tensor, rejected_logps: torch.Tensor) -> None:
            values = {"logps/chosen": chosen_logps.detach(), "logps/rejected": rejected_logps.detach()}
            if out.chosen_rewards is not None and out.rejected_rewards is not None:
                values["rewards/chosen"] = out.chosen_rewards
                values["rewards/rejected"] = out.rejected_rewards
            if out.margins is not None and out.accuracy is not None:
                values["rewards/margins"] = out.margins
                values["rewards/accuracies"] = out.accuracy
            for key, value in out.extras.items():
                if value.dim() <= 1:
                    values[key] = value
            for key, value in values.items():
                self._metrics.setdefault(key, []).append(float(value.float().mean()))

        def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
            for key, values in self._metrics.items():
                if values:
                    logs[key] = sum(values) / len(values)
            self._metrics = {}
            super().log(logs, start_time)

    return _UpdatePhase


class _ListBatcher:
    """ListCollator plus the (B, K) per-response numbers BRAIn needs (rewards, reference and proposal log-probs)."""

    fields = ("rewards", "ref_logps", "prev_logps")

    def __init__(self, pad_token_id: int, report: TokenizationReport | None = None) -> None:
        self.collate = ListCollator(pad_token_id, report=report)

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        batch = self.collate(features)
        for name in self.fields:
            batch[name] = torch.tensor([list(map(float, f[name])) for f in features], dtype=torch.float32)
        return batch


class OnlineTrainer:
    """Online self-play preference optimisation (SPPO, INPO, ONPO, DNO, EGPO / online IPO, BRAIn) on a causal LM.

    Parameters
    ----------
    model : transformers causal LM
        The policy, trained in place (a frozen copy of it at the start is the
        initial policy, and the default reference).
    tokenizer : transformers tokenizer
        Its pad and EOS tokens pad and stop generation; chat-message prompts
        are rendered with its chat template (``add_generation_prompt=True``).
    oracle : callable, reward model, or object with ``prefer``
        The judge: ``oracle(prompts, responses_a, responses_b) -> P(a beats b)``,
        a Bradley-Terry reward model (with ``reward_tokenizer``) or a general
        preference model with ``prefer``; see :func:`bradley.train.oracles.as_oracle`.
        ``loss="brain"`` needs rewards: an oracle with ``score`` (a reward model,
        :class:`~bradley.train.oracles.ScoreOracle`, ``KeywordOracle``).
    prompts : list of str or chat messages, or data with a ``prompt`` column
        The training prompts (any format :func:`bradley.train.read_preferences`
        reads, or a plain list).
    loss : str, list of str, or a configured loss
        ``"sppo"`` (default), ``"inpo"``, ``"onpo"``, ``"dno"``, ``"egpo"``,
        ``"online-ipo"``, ``"brain"``, or any registered policy loss (used with
        the previous iterate as its reference); or a loss from
        :func:`bradley.nn.get`.
    loss_kwargs : dict, optional
        The loss's hyperparameters (``beta``, ``tau``, ``variant``, ...), and
        ``loss_weights`` for a list of losses.
    ref_model : causal LM, optional
        The fixed reference of INPO / EGPO and BRAIn's prior (default: the
        initial policy).
    reward_tokenizer : tokenizer, optional
        The reward model's tokenizer, when ``oracle`` is a reward model.
    iterations : int
        Outer iterations T (default 3, as SPPO and INPO).
    num_samples : int
        Responses sampled per prompt and iteration, K >= 2 (default 4).
    eval_prompts : optional
        Held-out prompts for the win rates (default: the training prompts,
        with fresh samples).
    eval_num_samples : int
        Responses per evaluation prompt and policy (default 2).
    max_new_tokens, temperature, top_k, top_p : generation settings
        Default: pure sampling from the policy (temperature 1, no top-k /
        top-p), which the win-rate estimates assume.
    generation_kwargs : dict, optional
        More ``model.generate`` options.
    generation_batch_size : int
        Prompts per ``generate`` call.
    max_prompt_length : int, optional
        Prompts keep their last this many tokens.
    min_preference : float
        INPO / DNO / generic losses keep a best-worst pair only when the
        oracle prefers the best with probability above this (default 0.5).
    soft_targets : bool
        DNO: add ``target = sigmoid(w_chosen - w_rejected)`` (conceptual DNO);
        other losses with an optional ``target``: ``P(chosen beats rejected)``.
    include_self : bool
        Win rates as SPPO's code (the sample against itself counted as 1/2)
        instead of the mean over the other samples.
    extragradient : bool, optional
        EGPO's extragradient step; default True for ``"egpo"``, False for
        ``"online-ipo"``; only for those.
    logprob_batch_size : int
        Rows per forward pass when computing reference / previous log-probs.
    seed : int
        Seeds generation (iteration ``t`` uses ``seed + t``) and each update phase.
    args : transformers.TrainingArguments, optional
        Ready arguments for every update phase (then give no HF options).
    **training_kwargs
        ``TrainingArguments`` options with HF's names (``output_dir``,
        ``learning_rate``, ``per_device_train_batch_size``, ``max_steps``
        and ``num_train_epochs`` *per iteration*, ``gradient_accumulation_steps``,
        ``logging_steps``, ``bf16``, ``report_to`` default ``"none"``, ...).

    Attributes
    ----------
    history_ : pandas.DataFrame
        One row per iteration (row 0: the initial policy): ``pairs``
        (training examples), mean win rates of the chosen and rejected
        samples, ``train_loss``, ``win_rate_vs_initial`` and
        ``win_rate_vs_previous`` with ``*_se``, ``eval_comparisons``,
        ``mean_response_tokens``, ``truncated_responses``, ``seconds``.
    train_outputs_ : list
        The ``TrainOutput`` of every update phase.
    examples_ : datasets.Dataset
        The training examples of the last update phase: token ids, the
        loss's per-pair fields (win rates, targets, previous-iterate and
        reference log-probs) and what the oracle said (``oracle_preference``
        = P(chosen beats rejected), ``oracle_chosen_win_rate``,
        ``oracle_rejected_win_rate``); or BRAIn's per-list rewards and log-probs.
    tokenization_report_ : TokenizationReport
        Of the last iteration's generated data (prompt truncation; responses
        that hit ``max_new_tokens`` count as truncated; padding).
    initial_model_, ref_model_ : frozen copies

    Examples
    --------
    >>> from bradley.train.oracles import KeywordOracle
    >>> from bradley.train.toy import toy_causal_lm, toy_tokenizer
    >>> tok = toy_tokenizer(["good bad cat dog ."])
    >>> trainer = OnlineTrainer(toy_causal_lm(tok), tok, KeywordOracle("good"), ["cat", "dog"],
    ...                         loss="sppo", loss_kwargs={"beta": 0.1}, iterations=1, num_samples=2,
    ...                         max_new_tokens=4, max_steps=1, output_dir="/tmp/bradley-online-doctest")
    >>> trainer.train().history_["iteration"].tolist()
    [0, 1]
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        oracle: Any,
        prompts: Any,
        *,
        loss: str | Sequence[str] | PreferenceLoss | CombinedLoss = "sppo",
        loss_kwargs: Mapping[str, Any] | None = None,
        ref_model: Any = None,
        reward_tokenizer: Any = None,
        iterations: int = 3,
        num_samples: int = 4,
        eval_prompts: Any = None,
        eval_num_samples: int = 2,
        max_new_tokens: int = 64,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        generation_kwargs: Mapping[str, Any] | None = None,
        generation_batch_size: int = 64,
        max_prompt_length: int | None = None,
        min_preference: float = 0.5,
        soft_targets: bool = False,
        include_self: bool = False,
        extragradient: bool | None = None,
        logprob_batch_size: int = 16,
        seed: int = 0,
        args: Any = None,
        **training_kwargs: Any,
    ) -> None:
        for name, value, least in (
            ("iterations", iterations, 1),
            ("num_samples", num_samples, 2),
            ("eval_num_samples", eval_num_samples, 1),
            ("max_new_tokens", max_new_tokens, 1),
            ("generation_batch_size", generation_batch_size, 1),
            ("logprob_batch_size", logprob_batch_size, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{name} must be an int >= {least}, got {value!r}.")
        if max_prompt_length is not None and (not isinstance(max_prompt_length, int) or max_prompt_length < 1):
            raise ValueError(f"max_prompt_length must be None or a positive int, got {max_prompt_length!r}.")
        if not 0.0 <= min_preference < 1.0:
            raise ValueError(f"min_preference must lie in [0, 1), got {min_preference!r}.")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}.")
        if tokenizer.pad_token_id is None or tokenizer.eos_token_id is None:
            raise ValueError(
                "the tokenizer needs a pad and an EOS token (set tokenizer.pad_token = tokenizer.eos_token)."
            )
        self.model = model
        self.tokenizer = tokenizer
        self.oracle = as_oracle(oracle, reward_tokenizer)
        self.prompts = _read_prompts(prompts, "prompts")
        self.eval_prompts = self.prompts if eval_prompts is None else _read_prompts(eval_prompts, "eval_prompts")
        self.iterations = iterations
        self.num_samples = num_samples
        self.eval_num_samples = eval_num_samples
        extra = dict(generation_kwargs or {})
        owned = sorted(set(extra) & _GENERATION_OWNED)
        if owned:
            raise ValueError(
                f"generation_kwargs may not set {owned}: the trainer sets them itself (max_new_tokens, temperature, "
                f"top_k and top_p are OnlineTrainer parameters; the rest are fixed by the sampling it needs)."
            )
        self.generation = {
            "max_new_tokens": max_new_tokens,
            "temperature": temperature,
            "top_k": top_k,
            "top_p": top_p,
            **extra,
        }
        self.generation_batch_size = generation_batch_size
        self.max_prompt_length = max_prompt_length
        self.min_preference = float(min_preference)
        self.soft_targets = soft_targets
        self.include_self = include_self
        self.logprob_batch_size = logprob_batch_size
        self.seed = seed
        self._ref_given = ref_model
        self._configure_loss(loss, dict(loss_kwargs or {}), extragradient)
        self._check_plain_sampling(temperature, top_k, top_p, extra)
        self.args = self._training_args(args, training_kwargs)
        self.history_: Any = None
        self.train_outputs_: list[Any] = []
        self.tokenization_report_: TokenizationReport | None = None
        self.initial_model_: Any = None
        self.ref_model_: Any = None
        self._previous: Any = None
        self._onpo_anchor: Any = None
        self._last_phase: Any = None
        self.examples_: Any = None

    # ------------------------------------------------------------ configuration

    def _check_plain_sampling(self, temperature: float, top_k: int, top_p: float, extra: dict[str, Any]) -> None:
        changed = [
            f"{k}={v!r}"
            for k, v, plain in (("temperature", temperature, 1.0), ("top_k", top_k, 0), ("top_p", top_p, 1.0))
            if v != plain and v is not None
        ]
        changed += [f"{k}={extra[k]!r}" for k in sorted(set(extra) & _GENERATION_RESHAPING)]
        if not changed:
            return
        message = (
            f"sampling is not plain sampling from the policy ({', '.join(changed)}), but the estimators assume "
            f"responses drawn from the policy itself"
        )
        if self.mode == "brain":
            # BRAIn's importance weights divide by the policy's own probability of each sample.
            raise ValueError(message + ": BRAIn's importance weights would be wrong; use the defaults.")
        warnings.warn(message + " (win rates and soft targets are biased).", UserWarning, stacklevel=3)

    def _configure_loss(self, loss: Any, kwargs: dict[str, Any], extragradient: bool | None) -> None:
        self.mode: str
        self.loss_fn: Callable[..., LossOutput]
        if isinstance(loss, str) and loss in MODES:
            self.mode = loss
            if loss == "onpo":
                unknown = set(kwargs) - {"beta"}
                if unknown:
                    raise ValueError(
                        f"onpo has hyperparameter beta (= 1 / the paper's eta) only; got {sorted(unknown)}."
                    )
                self.loss_fn = get("inpo", beta=kwargs.get("beta", 0.01), tau=0.0)
            else:
                unknown = set(kwargs) - {"beta"}
                if unknown:
                    raise ValueError(
                        f"brain has hyperparameter beta only (posterior temperature); got {sorted(unknown)}."
                    )
                wrapped = getattr(self.oracle, "model", None) if isinstance(self.oracle, PreferModelOracle) else None
                if not callable(getattr(self.oracle, "score", None)) or (
                    isinstance(self.oracle, PreferModelOracle) and not callable(getattr(wrapped, "score", None))
                ):
                    raise ValueError(
                        "loss='brain' needs rewards from a Bradley-Terry reward model: give a reward model (with "
                        "reward_tokenizer), a ScoreOracle, or another oracle with score(prompts, responses)."
                    )
                self.loss_fn = functools.partial(brain_loss, beta=float(kwargs.get("beta", 1.0)))
        elif isinstance(loss, (PreferenceLoss, CombinedLoss)):
            if kwargs:
                raise ValueError(
                    "loss is already configured; give its hyperparameters to bradley.nn.get, not loss_kwargs."
                )
            self.loss_fn = loss
            self.mode = loss.name if isinstance(loss, PreferenceLoss) else "generic"
        else:
            if not isinstance(loss, str) and not (isinstance(loss, Sequence) and all(isinstance(n, str) for n in loss)):
                raise TypeError(f"loss must be a loss name, a list of names or a configured loss; got {loss!r}.")
            configured = get(loss, **kwargs)
            self.loss_fn = configured
            self.mode = configured.name if isinstance(configured, PreferenceLoss) else "generic"
        if self.mode not in ("sppo", "inpo", "dno", "egpo", *MODES):
            self.mode = "generic"
        if isinstance(self.loss_fn, (PreferenceLoss, CombinedLoss)):
            components = self.loss_fn.components if isinstance(self.loss_fn, CombinedLoss) else [self.loss_fn]
            for component in components:
                if component.spec.kind != "policy":
                    raise ValueError(f"{component.name!r} is a reward-model loss; the online trainer trains a policy.")
            provided = {
                "policy_chosen_logps", "policy_rejected_logps", "policy_chosen_avg_logps", "policy_rejected_avg_logps",
                "policy_chosen_token_logps", "policy_rejected_token_logps", "chosen_mask", "rejected_mask",
                "chosen_lengths", "rejected_lengths", "ref_chosen_logps", "ref_rejected_logps",
                "ref_chosen_avg_logps", "ref_rejected_avg_logps", "prev_chosen_logps", "prev_rejected_logps",
                "target", "chosen_win_rate", "rejected_win_rate",
            }  # fmt: skip
            missing = [name for name in self.loss_fn.inputs if name not in provided]
            if missing:
                raise ValueError(
                    f"loss {self.loss_fn.name!r} needs {missing}, which self-play does not produce; the online "
                    f"trainer provides policy, reference and previous-iterate log-probs, win rates and targets."
                )
        if extragradient and self.mode != "egpo":
            raise ValueError("extragradient applies to loss='egpo' / 'online-ipo' only.")
        self.extragradient = (
            (loss == "egpo" or (self.mode == "egpo" and not isinstance(loss, str)))
            if (extragradient is None)
            else bool(extragradient)
        )

    def _training_args(self, args: Any, options: dict[str, Any]) -> Any:
        from transformers import TrainingArguments

        if args is not None:
            if options:
                raise ValueError(
                    f"give HF options either in args= or as keywords, not both; got args and {sorted(options)}."
                )
            if not isinstance(args, TrainingArguments):
                raise TypeError(f"args must be a transformers.TrainingArguments, got {type(args).__name__}.")
            return dataclasses.replace(args, remove_unused_columns=False)
        valid = [f.name for f in dataclasses.fields(TrainingArguments) if f.init]
        unknown = [k for k in options if k not in valid]
        if unknown:
            own = [
                "loss", "loss_kwargs", "ref_model", "reward_tokenizer", "iterations", "num_samples", "eval_prompts",
                "eval_num_samples", "max_new_tokens", "temperature", "top_k", "top_p", "generation_kwargs",
                "generation_batch_size", "max_prompt_length", "min_preference", "soft_targets", "include_self",
                "extragradient", "logprob_batch_size", "seed", "args",
            ]  # fmt: skip
            hints = "".join(f"\n  {k!r}{_close(k, own + valid)}" for k in unknown)
            raise TypeError(
                f"OnlineTrainer got unknown option(s):{hints}\n"
                "(neither an OnlineTrainer nor a transformers.TrainingArguments option)."
            )
        settings = {**_HF_DEFAULTS, "seed": self.seed, **options, "remove_unused_columns": False}
        return TrainingArguments(**settings)

    # ------------------------------------------------------------ sampling and judging

    def _prompt_ids(self, prompt: Any) -> tuple[list[int], int]:
        if isinstance(prompt, str):
            ids = _token_ids(self.tokenizer(prompt))
        else:
            ids = _token_ids(self.tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True))
        cut = 0
        if self.max_prompt_length is not None and len(ids) > self.max_prompt_length:
            cut = len(ids) - self.max_prompt_length
            ids = ids[cut:]  # keep the end: the turn being answered and the generation prompt
        return ids, cut

    def _response_text(self, prompt: Any, prompt_ids: list[int], response: list[int]) -> str:
        decode = functools.partial(self.tokenizer.decode, skip_special_tokens=True)
        if not isinstance(prompt, str):
            return str(decode(response))
        # For string prompts the oracle reads prompt + response: take the text the response adds to the prompt.
        head, full = str(decode(prompt_ids)), str(decode(prompt_ids + response))
        return full[len(head) :] if full.startswith(head) else str(decode(response))

    @torch.no_grad()
    def _sample(self, model: Any, prompts: Sequence[Any], k: int, seed: int) -> _Samples:
        pad, eos = self.tokenizer.pad_token_id, self.tokenizer.eos_token_id
        device = _device(model)
        encoded = [self._prompt_ids(p) for p in prompts]
        responses: list[list[list[int]]] = []
        truncated = 0
        was_training = model.training
        model.eval()
        devices = [device] if device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                for start in range(0, len(prompts), self.generation_batch_size):
                    chunk = [ids for ids, _ in encoded[start : start + self.generation_batch_size]]
                    width = max(len(ids) for ids in chunk)
                    # Left padding: every prompt ends where generation starts.
                    input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in chunk], device=device)
                    attention = torch.tensor(
                        [[0] * (width - len(ids)) + [1] * len(ids) for ids in chunk], device=device
                    )
                    out = model.generate(
                        input_ids=input_ids,
                        attention_mask=attention,
                        do_sample=True,
                        num_return_sequences=k,
                        pad_token_id=pad,
                        eos_token_id=eos,
                        **self.generation,
                    )
                    new = out[:, width:].tolist()
                    for b in range(len(chunk)):
                        group = []
                        for row in new[b * k : (b + 1) * k]:
                            if eos in row:
                                row = row[: row.index(eos) + 1]
                            else:
                                truncated += 1
                            group.append(row)
                        responses.append(group)
        finally:
            model.train(was_training)
        texts = [
            [self._response_text(p, ids, r) for r in group]
            for p, (ids, _), group in zip(prompts, encoded, responses, strict=True)
        ]
        return _Samples(
            prompt_ids=[ids for ids, _ in encoded],
            response_ids=responses,
            texts=texts,
            truncated=truncated,
            prompts_truncated=sum(cut > 0 for _, cut in encoded),
            prompt_tokens_dropped=sum(cut for _, cut in encoded),
        )

    @torch.no_grad()
    def _pair_logps(self, model: Any, rows: Sequence[Mapping[str, Any]]) -> tuple[list[float], list[float]]:
        """Summed log-probs of chosen and rejected of each row under ``model`` (no gradients)."""
        collate = PairCollator(self.tokenizer.pad_token_id)
        device = _device(model)
        chosen: list[float] = []
        rejected: list[float] = []
        for start in range(0, len(rows), self.logprob_batch_size):
            batch = collate(rows[start : start + self.logprob_batch_size])
            out = model_logprobs(
                model, batch["input_ids"].to(device), batch["labels"].to(device), batch["attention_mask"].to(device)
            )
            c, r = split_pairs(out.sum.float().cpu())
            chosen += c.tolist()
            rejected += r.tolist()
        return chosen, rejected

    @torch.no_grad()
    def _list_logps(
        self, model: Any, prompt_ids: list[list[int]], responses: list[list[list[int]]]
    ) -> list[list[float]]:
        collate = ListCollator(self.tokenizer.pad_token_id)
        device = _device(model)
        out: list[list[float]] = []
        step = max(1, self.logprob_batch_size // len(responses[0]))
        for start in range(0, len(prompt_ids), step):
            feats = [
                {"prompt_ids": p, "response_ids": r, "ranks": list(range(1, len(r) + 1))}
                for p, r in zip(prompt_ids[start : start + step], responses[start : start + step], strict=True)
            ]
            batch = collate(feats)
            res = model_logprobs(
                model, batch["input_ids"].to(device), batch["labels"].to(device), batch["attention_mask"].to(device)
            )
            out += res.sum.float().cpu().reshape(len(feats), -1).tolist()
        return out

    # ------------------------------------------------------------ building the examples

    def _keep(self, name: str) -> bool:
        fn = self.loss_fn
        wanted = set(getattr(fn, "inputs", ())) | set(getattr(fn, "optional_inputs", ()))
        # Length-normalised log-probs are derived from the sums (and the masks of the batch).
        wanted |= {w.replace("_avg_logps", "_logps") for w in wanted if w.endswith("_avg_logps")}
        if name == "target" and self.mode in ("dno", "generic"):
            return self.soft_targets and name in wanted
        return name in wanted

    def _pairs(self, samples: _Samples, P: torch.Tensor, w: torch.Tensor) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for n, prompt_ids in enumerate(samples.prompt_ids):
            responses = samples.response_ids[n]
            if self.mode == "egpo":
                k = len(responses)
                for m in range(k // 2):
                    i, j = 2 * m, 2 * m + 1
                    others = [o for o in range(k) if o not in (i, j)]
                    row: dict[str, Any] = {
                        "prompt_ids": prompt_ids,
                        "chosen_ids": responses[i],
                        "rejected_ids": responses[j],
                    }
                    row["target"] = float(P[n, i, j])
                    if others:
                        row["chosen_win_rate"] = float(P[n, i, others].mean())
                        row["rejected_win_rate"] = float(P[n, j, others].mean())
                    row["_index"] = (n, i, j)
                    rows.append(row)
                continue
            i, j = int(w[n].argmax()), int(w[n].argmin())
            if i == j:
                continue  # every sample equally good: no pair
            p = float(P[n, i, j])
            if self.mode != "sppo" and p <= self.min_preference:
                continue
            row = {"prompt_ids": prompt_ids, "chosen_ids": responses[i], "rejected_ids": responses[j]}
            row["chosen_win_rate"], row["rejected_win_rate"] = float(w[n, i]), float(w[n, j])
            row["target"] = row["_preference"] = p
            if self.mode in ("dno", "generic") and self.soft_targets:
                row["target"] = float(torch.sigmoid(w[n, i] - w[n, j]))
            row["_index"] = (n, i, j)
            rows.append(row)
        return rows

    def _finish_rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Keep only the per-pair fields the loss reads (an unread field would change nothing; a stray one might)."""
        out = []
        for row in rows:
            kept = {k: v for k, v in row.items() if k in ("prompt_ids", "chosen_ids", "rejected_ids")}
            # What the oracle said, for inspection (names that are not batch fields, so no loss reads them).
            kept["oracle_preference"] = row["target"] if "_preference" not in row else row["_preference"]
            kept["oracle_chosen_win_rate"] = row.get("chosen_win_rate", math.nan)
            kept["oracle_rejected_win_rate"] = row.get("rejected_win_rate", math.nan)
            kept.update({k: v for k, v in row.items() if k in BATCH_FIELDS and self._keep(k)})
            out.append(kept)
        return out

    def _add_logps(self, rows: list[dict[str, Any]], prev: Any, ref: Any) -> None:
        if self.mode in ("sppo", "inpo", "dno", "onpo") or (self.mode == "generic" and self._keep("prev_chosen_logps")):
            c, r = self._pair_logps(prev, rows)
            for row, a, b in zip(rows, c, r, strict=True):
                row["prev_chosen_logps"], row["prev_rejected_logps"] = a, b
        if self.mode in ("inpo", "egpo"):
            c, r = self._pair_logps(ref, rows)
            for row, a, b in zip(rows, c, r, strict=True):
                row["ref_chosen_logps"], row["ref_rejected_logps"] = a, b
        elif self.mode == "generic" and self._keep("ref_chosen_logps"):
            # Iterative DPO-style losses: the previous iterate is the reference (DNO-Prct with any loss).
            c, r = self._pair_logps(prev, rows)
            for row, a, b in zip(rows, c, r, strict=True):
                row["ref_chosen_logps"], row["ref_rejected_logps"] = a, b

    # ------------------------------------------------------------ update phases

    def _report(self, samples: _Samples, examples: int, listwise: bool) -> TokenizationReport:
        report = TokenizationReport(
            format="list" if listwise else "pair",
            conversational=not isinstance(self.prompts[0], str),
            examples=len(samples.prompt_ids),
            kept=examples,
            prompts_truncated=samples.prompts_truncated,
            prompt_tokens_dropped=samples.prompt_tokens_dropped,
            responses_truncated=samples.truncated,
            max_length=None,
            max_prompt_length=self.max_prompt_length,
            longest_prompt=max(len(p) for p in samples.prompt_ids),
            longest_sequence=max(
                len(p) + len(r) for p, g in zip(samples.prompt_ids, samples.response_ids, strict=True) for r in g
            ),
        )
        return report

    def _update(self, rows: list[dict[str, Any]], iteration: int, phase: str, listwise: bool = False) -> Any:
        from datasets import Dataset

        report = self.tokenization_report_
        collator: Callable[..., Any] = (
            _ListBatcher(self.tokenizer.pad_token_id, report)
            if listwise
            else PairCollator(self.tokenizer.pad_token_id, report=report)
        )
        args = dataclasses.replace(
            self.args,
            output_dir=f"{self.args.output_dir}/iteration-{iteration}{phase}",
            seed=self.args.seed + iteration,
        )
        self.examples_ = Dataset.from_list(rows)
        trainer = _phase_trainer_class()(
            model=self.model,
            args=args,
            train_dataset=self.examples_,
            data_collator=collator,
            preference_loss=self.loss_fn,
            listwise=listwise,
        )
        result = trainer.train()
        self.train_outputs_.append(result)
        self._last_phase = trainer
        self.model.eval()
        return result

    # ------------------------------------------------------------ evaluation

    @torch.no_grad()
    def evaluate(self, iteration: int | None = None) -> dict[str, float]:
        """Win rates of the current policy against the initial policy and the previous iterate, on fresh samples.

        ``eval_num_samples`` responses per evaluation prompt from each policy,
        judged pairwise (the policy's k-th sample against the opponent's k-th);
        the win rate is the mean ``P(policy beats opponent)`` over the
        ``n`` comparisons, with the binomial standard error ``sqrt(p (1 - p) / n)``
        (exact for 0/1 judgments, an upper bound for soft ones). Comparisons
        are treated as independent.
        """
        if self.initial_model_ is None:
            self.initial_model_ = _frozen(self.model)
        t = 0 if iteration is None else iteration
        seed = self.seed + 100_003 * (t + 1)
        k = self.eval_num_samples
        mine = self._sample(self.model, self.eval_prompts, k, seed)
        result: dict[str, float] = {}
        opponents = [("initial", self.initial_model_)]
        if self._previous is not None:
            opponents.append(("previous", self._previous))
        for name, opponent in opponents:
            theirs = self._sample(opponent, self.eval_prompts, k, seed + 1)
            xs = [p for p in self.eval_prompts for _ in range(k)]
            a = [text for group in mine.texts for text in group]
            b = [text for group in theirs.texts for text in group]
            p = float(
                pairwise_preferences(self.oracle, xs, [[u, v] for u, v in zip(a, b, strict=True)])[:, 0, 1].mean()
            )
            result[f"win_rate_vs_{name}"] = p
            result[f"win_rate_vs_{name}_se"] = binomial_se(p, len(xs))
        result["eval_comparisons"] = float(len(self.eval_prompts) * k)
        result["mean_response_tokens"] = sum(len(r) for g in mine.response_ids for r in g) / max(
            1, sum(len(g) for g in mine.response_ids)
        )
        return result

    # ------------------------------------------------------------ the loop

    def train(self) -> OnlineTrainer:
        """Run ``iterations`` rounds of sample -> judge -> update; returns self (see :attr:`history_`)."""
        import pandas as pd

        self.initial_model_ = _frozen(self.model)
        self.ref_model_ = self.initial_model_ if self._ref_given is None else self._ref_given
        self.ref_model_.eval()
        self._previous = None
        self._onpo_anchor = None
        self._last_phase = None
        records = []
        start = time.perf_counter()
        first = self.evaluate(iteration=0)
        first.update(iteration=0, pairs=0, seconds=time.perf_counter() - start)
        first["win_rate_vs_previous"] = first["win_rate_vs_previous_se"] = math.nan
        records.append(first)
        for t in range(1, self.iterations + 1):
            start = time.perf_counter()
            record = self._iteration(t)
            record.update(self.evaluate(iteration=t))
            record.update(iteration=t, seconds=time.perf_counter() - start)
            records.append(record)
            logs = {f"online/{k}": float(v) for k, v in record.items() if isinstance(v, (int, float))}
            logger.info("online iteration %d: %s", t, logs)
            if self._last_phase is not None:
                self._last_phase.log(dict(logs))
        columns = [
            "iteration", "pairs", "chosen_win_rate", "rejected_win_rate", "train_loss",
            "win_rate_vs_initial", "win_rate_vs_initial_se", "win_rate_vs_previous", "win_rate_vs_previous_se",
            "eval_comparisons", "mean_response_tokens", "mean_reward", "truncated_responses", "seconds",
        ]  # fmt: skip
        frame = pd.DataFrame.from_records(records)
        self.history_ = frame[[c for c in columns if c in frame.columns]]
        return self

    def _iteration(self, t: int) -> dict[str, Any]:
        prev = _frozen(self.model)
        self._previous = prev
        samples = self._sample(self.model, self.prompts, self.num_samples, self.seed + t)
        record: dict[str, Any] = {"truncated_responses": samples.truncated}
        if self.mode == "brain":
            return {**record, **self._brain_iteration(t, samples, prev)}
        P = pairwise_preferences(self.oracle, self.prompts, samples.texts)
        w = win_rates(P, include_self=self.include_self)
        rows = self._pairs(samples, P, w)
        record["pairs"] = len(rows)
        self.tokenization_report_ = self._report(samples, len(rows), listwise=False)
        if not rows:
            logger.warning("online iteration %d: no pair passed the filters; the policy is not updated.", t)
            return record
        record["chosen_win_rate"] = sum(r.get("chosen_win_rate", math.nan) for r in rows) / len(rows)
        record["rejected_win_rate"] = sum(r.get("rejected_win_rate", math.nan) for r in rows) / len(rows)
        if self.mode == "onpo":
            result = self._onpo(t, rows)
        elif self.mode == "egpo" and self.extragradient:
            result = self._extragradient(t, rows, samples)
        else:
            self._add_logps(rows, prev, self.ref_model_)
            result = self._update(self._finish_rows(rows), t, "")
        record["train_loss"] = result.training_loss
        logger.info("online iteration %d data: %s", t, self.tokenization_report_.summary())
        return record

    def _onpo(self, t: int, rows: list[dict[str, Any]]) -> Any:
        # Two anchors (B12): pi'_t -> pi'_{t+1} on D_t, then anchor pi'_{t+1} -> pi_{t+1} on the same D_t.
        anchor = self.initial_model_ if self._onpo_anchor is None else self._onpo_anchor
        for phase, model in (("a", anchor), ("b", None)):
            if model is None:
                model = _frozen(self.model)
                self._onpo_anchor = model  # pi'_{t+1}
            c, r = self._pair_logps(model, rows)
            for row, x, y in zip(rows, c, r, strict=True):
                row["prev_chosen_logps"], row["prev_rejected_logps"] = x, y
                row["ref_chosen_logps"], row["ref_rejected_logps"] = x, y  # tau = 0: the reference term vanishes
            result = self._update(self._finish_rows(rows), t, phase)
        return result

    def _extragradient(self, t: int, rows: list[dict[str, Any]], samples: _Samples) -> Any:
        self._add_logps(rows, self._previous, self.ref_model_)
        saved = copy.deepcopy(self.model.state_dict())
        self._update(self._finish_rows(rows), t, "-midpoint")
        # Fresh opponents y'' from the midpoint policy; targets P(y beats y'') for the same (y, y').
        k_opp = max(self.num_samples - 2, 1)
        opponents = self._sample(self.model, self.prompts, k_opp, self.seed + t + 50_000)
        xs, a, b, where = [], [], [], []
        for row in rows:
            n, i, j = row["_index"]
            for o in opponents.texts[n]:
                for side, idx in (("chosen", i), ("rejected", j)):
                    xs.append(self.prompts[n])
                    a.append(samples.texts[n][idx])
                    b.append(o)
                    where.append((id(row), side))
        probs = pairwise_preferences(self.oracle, xs, [[u, v] for u, v in zip(a, b, strict=True)])[:, 0, 1]
        sums: dict[tuple[int, str], float] = {}
        for key, p in zip(where, probs.tolist(), strict=True):
            sums[key] = sums.get(key, 0.0) + p
        for row in rows:
            row["chosen_win_rate"] = sums[(id(row), "chosen")] / k_opp
            row["rejected_win_rate"] = sums[(id(row), "rejected")] / k_opp
        self.model.load_state_dict(saved)
        return self._update(self._finish_rows(rows), t, "")

    def _brain_iteration(self, t: int, samples: _Samples, prev: Any) -> dict[str, Any]:
        xs = [p for p, g in zip(self.prompts, samples.texts, strict=True) for _ in g]
        ys = [text for g in samples.texts for text in g]
        rewards = self.oracle.score(xs, ys).reshape(len(self.prompts), -1)
        ref = self._list_logps(self.ref_model_, samples.prompt_ids, samples.response_ids)
        proposal = self._list_logps(prev, samples.prompt_ids, samples.response_ids)
        rows = []
        for n, prompt_ids in enumerate(samples.prompt_ids):
            r = rewards[n].tolist()
            rows.append(
                {
                    "prompt_ids": prompt_ids,
                    "response_ids": samples.response_ids[n],
                    "ranks": [1 + sum(o > v for o in r) for v in r],
                    "rewards": r,
                    "ref_logps": ref[n],
                    "prev_logps": proposal[n],
                }
            )
        self.tokenization_report_ = self._report(samples, len(rows), listwise=True)
        result = self._update(rows, t, "", listwise=True)
        return {"pairs": len(rows), "train_loss": result.training_loss, "mean_reward": float(rewards.mean())}
