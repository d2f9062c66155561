"""Offline preference optimisation of causal LMs with any direct preference loss: :class:`PreferenceTrainer`.

The training loop is ``transformers.Trainer``'s (optimiser, scheduler,
gradient accumulation, mixed precision, checkpoints, logging, accelerate);
what is written here is the data collation, the log-probabilities a loss
needs, the reference, and the metrics.

The loss, chosen by name from :mod:`bradley.nn` (``bradley.nn.available()``,
TRL's names too), decides what is computed at each step:

* per-token policy log-probs and masks, always; chosen and rejected in one
  forward pass (``[chosen; rejected]`` rows, :class:`~bradley.train.PairCollator`),
  by default through the memory-lean chunked LM head
  (:func:`bradley.nn.logprobs.model_logprobs`, ``chunked=True``);
* reference log-probs only when the loss has ``ref_*`` inputs (CPO, ORPO,
  SimPO, ASFT, PRO need none): a frozen model, the adapter-disabled base of a
  PEFT policy, or a disk cache (:mod:`bradley.train.reference`);
* TDPO's sequential KL (``chosen_seq_kl``/``rejected_seq_kl``) from the full
  ``(2B, T, V)`` logits of policy and reference: this path materialises the
  logits (memory ``2 * 2B * T * V`` floats at least), as the KL is over the
  whole vocabulary at every position;
* WPO's ``log_sum_sq_probs`` when ``use_weighting=True``;
* previous-iterate log-probs (SPPO, INPO, DNO) from ``previous_model``;
* k-wise losses (PRO, ``dpo-pl``) read :class:`~bradley.train.ListCollator`
  batches, KTO reads unpaired rows (pairs are split into one desirable and
  one undesirable row), DMPO reads multi-turn dialogues
  (:func:`tokenize_multiturn`: one log-prob per assistant turn).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import logging
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from bradley.nn.batch import PreferenceBatch
from bradley.nn.logprobs import SequenceLogProbs, model_logprobs, sequence_kl, sequence_logprobs
from bradley.nn.registry import CombinedLoss, LossOutput, PreferenceLoss
from bradley.nn.registry import get as get_loss
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
from bradley.train.reference import (
    CACHE_COLUMN,
    adapter_disabled,
    cached_reference_logprobs,
    data_fingerprint,
    model_fingerprint,
    scatter_cached,
)

__all__ = ["PreferenceCollator", "PreferenceTrainer", "tokenize_multiturn"]

logger = logging.getLogger(__name__)

_REFERENCES = ("auto", "model", "adapter", "cache")
_TURN_INPUTS = ("policy_chosen_turn_logps", "policy_rejected_turn_logps", "chosen_turns", "rejected_turns")
# Defaults that differ from transformers.TrainingArguments' (learning rate as TRL's DPOConfig: DPO wants ~1e-6).
_TRAINING_DEFAULTS: dict[str, Any] = {"learning_rate": 1e-6, "report_to": "none", "remove_unused_columns": False}


# ---------------------------------------------------------------- what a loss needs


def _data_kind(loss: PreferenceLoss | CombinedLoss) -> str:
    """``pair``, ``multiturn``, ``list`` or ``unpaired``: the rows a loss reads."""
    names = set(loss.inputs)
    if names & set(_TURN_INPUTS):
        return "multiturn"
    if "desirable" in names:
        return "unpaired"
    if names & {"policy_logps", "policy_avg_logps", "ref_logps"}:
        return "list"
    return "pair"


def _is_peft(model: Any) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "disable_adapter")


def _disable_dropout(model: torch.nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


def _freeze(model: torch.nn.Module) -> torch.nn.Module:
    model.eval()
    model.requires_grad_(False)
    return model


# ---------------------------------------------------------------- multi-turn data


def _render(
    tokenizer: Any, messages: list[dict[str, Any]], generation_prompt: bool, kwargs: dict[str, Any]
) -> list[int]:
    out = tokenizer.apply_chat_template(
        messages, tokenize=True, add_generation_prompt=generation_prompt, return_dict=False, **kwargs
    )
    if isinstance(out, Mapping):
        out = out["input_ids"]
    return list(out)


def _prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _encode_dialogue(
    tokenizer: Any, prompt: list[dict[str, Any]], response: list[dict[str, Any]], kwargs: dict[str, Any]
) -> tuple[list[int], list[int], list[int], bool]:
    """Prompt ids, response ids and the turn of each response token (0 = a user/system token, j = assistant turn j)."""
    first_assistant = response[0]["role"] == "assistant"
    ids = _render(tokenizer, prompt, first_assistant, kwargs)
    prompt_len = len(ids)
    turns = [0] * len(ids)
    mismatch = False
    turn = 0
    for k, message in enumerate(response):
        assistant = message["role"] == "assistant"
        nxt = response[k + 1]["role"] == "assistant" if k + 1 < len(response) else False
        full = _render(tokenizer, prompt + response[: k + 1], nxt and not assistant, kwargs)
        keep = _prefix(ids, full)
        if keep < len(ids):
            # The template renders the conversation so far differently once this message follows it.
            mismatch = True
            ids, turns = ids[:keep], turns[:keep]
            prompt_len = min(prompt_len, keep)
        if assistant:
            turn += 1
        turns += [turn if assistant else 0] * (len(full) - keep)
        ids = full
    return ids[:prompt_len], ids[prompt_len:], turns[prompt_len:], mismatch


def tokenize_multiturn(
    data: Any,
    tokenizer: Any,
    *,
    max_length: int | None = None,
    max_prompt_length: int | None = None,
    chat_template_kwargs: dict[str, Any] | None = None,
) -> tuple[Any, TokenizationReport]:
    """Token ids of multi-turn preference dialogues, with the assistant turn of every response token (for DMPO).

    Rows have ``prompt`` (chat messages), and ``chosen`` / ``rejected``:
    the rest of each dialogue as messages, assistant turns possibly
    interleaved with user turns (which are context, not trained on). Each
    prefix is rendered with the chat template and the tokens a message adds
    are assigned to it, so the template's own turn markers belong to the turn
    they open. Output columns ``prompt_ids``, ``chosen_ids``,
    ``rejected_ids`` and ``chosen_turn_ids`` / ``rejected_turn_ids`` (0 at
    user tokens, ``j`` at tokens of assistant turn ``j``, from 1). With
    ``max_prompt_length`` the prompt keeps its end (the turn being answered);
    then with ``max_length`` the responses keep their start; cuts are counted
    in the report.

    Examples
    --------
    >>> from bradley.train.toy import toy_tokenizer
    >>> tok = toy_tokenizer()
    >>> row = {"prompt": [{"role": "user", "content": "tell me about cats"}],
    ...        "chosen": [{"role": "assistant", "content": "cats are good"},
    ...                   {"role": "user", "content": "more"},
    ...                   {"role": "assistant", "content": "good cats"}],
    ...        "rejected": [{"role": "assistant", "content": "no"}]}
    >>> ds, report = tokenize_multiturn([row], tok)
    >>> sorted(set(ds[0]["chosen_turn_ids"])), sorted(set(ds[0]["rejected_turn_ids"]))
    ([0, 1, 2], [1])
    """
    from datasets import Dataset

    if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2):
        raise ValueError(f"max_length must be None or an int >= 2, got {max_length!r}.")
    if max_prompt_length is not None and (
        isinstance(max_prompt_length, bool) or not isinstance(max_prompt_length, int) or max_prompt_length < 1
    ):
        raise ValueError(f"max_prompt_length must be None or an int >= 1, got {max_prompt_length!r}.")
    rows = Dataset.from_list(list(data)) if isinstance(data, (list, tuple)) else data
    if not hasattr(rows, "column_names"):
        rows = read_preferences(data)
    missing = [c for c in ("prompt", "chosen", "rejected") if c not in rows.column_names]
    if missing:
        raise ValueError(f"multi-turn rows need prompt, chosen and rejected columns; missing {missing}.")
    kwargs = dict(chat_template_kwargs or {})
    report = TokenizationReport(
        format="pair",
        conversational=True,
        examples=len(rows),
        max_length=max_length,
        max_prompt_length=max_prompt_length,
    )
    out: dict[str, list[Any]] = defaultdict(list)
    for i in range(len(rows)):
        row = rows[i]
        prompt = row["prompt"]
        if isinstance(prompt, str):
            prompt = [{"role": "user", "content": prompt}]
        encoded = []
        for side in ("chosen", "rejected"):
            response = row[side]
            if not isinstance(response, list) or not response or not all(isinstance(m, Mapping) for m in response):
                raise ValueError(f"row {i}: {side} must be a non-empty list of chat messages, got {response!r}.")
            if not any(m.get("role") == "assistant" for m in response):
                raise ValueError(f"row {i}: {side} has no assistant turn.")
            encoded.append(_encode_dialogue(tokenizer, prompt, list(response), kwargs))
        prompt_ids = encoded[0][0] if len(encoded[0][0]) <= len(encoded[1][0]) else encoded[1][0]
        report.boundary_mismatches += any(e[3] for e in encoded) or encoded[0][0] != encoded[1][0]
        full_prompt = prompt_ids
        if max_prompt_length is not None and len(prompt_ids) > max_prompt_length:
            # Keep the end: the turn being answered and the generation prompt.
            prompt_ids = prompt_ids[len(prompt_ids) - max_prompt_length :]
            report.prompts_truncated += 1
            report.prompt_tokens_dropped += len(full_prompt) - len(prompt_ids)
        out["prompt_ids"].append(prompt_ids)
        for side, (p_ids, r_ids, turns, _) in zip(("chosen", "rejected"), encoded, strict=True):
            # A shorter common prompt moves the rest of the longer one into the response, as context.
            r_ids, turns = p_ids[len(full_prompt) :] + r_ids, [0] * (len(p_ids) - len(full_prompt)) + turns
            if max_length is not None and len(prompt_ids) + len(r_ids) > max_length:
                room = max(1, max_length - len(prompt_ids))
                report.responses_truncated += 1
                report.response_tokens_dropped += len(r_ids) - room
                r_ids, turns = r_ids[:room], turns[:room]
            if not any(turns):
                raise ValueError(f"row {i}: truncation to max_length={max_length} left {side} no assistant token.")
            out[f"{side}_ids"].append(r_ids)
            out[f"{side}_turn_ids"].append(turns)
            report.longest_sequence = max(report.longest_sequence, len(prompt_ids) + len(r_ids))
        report.longest_prompt = max(report.longest_prompt, len(prompt_ids))
    report.kept = len(rows)
    logger.info("tokenize_multiturn: %s", report.summary())
    return Dataset.from_dict(dict(out)), report


# ---------------------------------------------------------------- collation


@dataclasses.dataclass
class PreferenceCollator:
    """The collator of :class:`PreferenceTrainer`: the right layout for the loss, plus cached reference log-probs.

    ``kind`` is ``"pair"`` (:class:`~bradley.train.PairCollator`),
    ``"multiturn"`` (pairs whose ``completion_mask`` and ``labels`` cover the
    assistant turns only, with ``turn_index`` ``(2B, T)``), ``"list"``
    (:class:`~bradley.train.ListCollator`) or ``"unpaired"``
    (:class:`~bradley.train.UnpairedCollator`, with KTO's mismatched rows
    when ``kl_pairs``). Rows carrying the cached reference column add
    ``ref_token_logps`` ``(R, T-1)`` in float64.

    Examples
    --------
    >>> collate = PreferenceCollator("pair", pad_token_id=0)
    >>> batch = collate([{"prompt_ids": [5], "chosen_ids": [6, 7], "rejected_ids": [8],
    ...                   "ref_response_token_logps": [[-1.0, -2.0], [-3.0]]}])
    >>> batch["ref_token_logps"].tolist()
    [[-1.0, -2.0], [-3.0, 0.0]]
    """

    kind: str
    pad_token_id: int
    pad_to_multiple_of: int | None = None
    kl_pairs: bool = False
    report: TokenizationReport | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("pair", "multiturn", "list", "unpaired"):
            raise ValueError(f"kind must be 'pair', 'multiturn', 'list' or 'unpaired', got {self.kind!r}.")
        base: Any
        if self.kind in ("pair", "multiturn"):
            base = PairCollator(self.pad_token_id, self.pad_to_multiple_of, self.report)
        elif self.kind == "list":
            base = ListCollator(self.pad_token_id, self.pad_to_multiple_of, self.report)
        else:
            base = UnpairedCollator(self.pad_token_id, self.pad_to_multiple_of, self.kl_pairs, self.report)
        self._base = base

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        batch = self._base(features)
        if self.kind == "multiturn":
            turn_rows = [list(f["chosen_turn_ids"]) for f in features] + [
                list(f["rejected_turn_ids"]) for f in features
            ]
            mask = batch["completion_mask"].bool()
            turn_index = torch.zeros_like(batch["input_ids"])
            turn_index[mask] = torch.tensor([t for row in turn_rows for t in row], dtype=turn_index.dtype)
            batch["turn_index"] = turn_index
            batch["completion_mask"] = (turn_index > 0).to(batch["completion_mask"].dtype)
            batch["labels"] = batch["input_ids"].masked_fill(turn_index == 0, -100)
        if CACHE_COLUMN in features[0]:
            cached = [f[CACHE_COLUMN] for f in features]
            if self.kind in ("pair", "multiturn"):
                rows = [c[0] for c in cached] + [c[1] for c in cached]
            elif self.kind == "list":
                k = batch["ranks"].shape[1]
                rows = [r for c in cached for r in list(c) + [[]] * (k - len(c))]
            else:
                if self.kl_pairs:
                    raise ValueError("cached reference log-probs cannot serve KTO's mismatched KL rows.")
                rows = [c[0] for c in cached]
            batch["ref_token_logps"] = scatter_cached(rows, batch["completion_mask"], torch.float64)
        return batch


def _cache_rows(kind: str, per_token: torch.Tensor, mask: torch.Tensor, n: int, k: int | None) -> list[Any]:
    """Per-row lists of per-response token log-probs (response tokens only), for the cache."""
    per_row = [per_token[r][mask[r]].double().tolist() for r in range(per_token.shape[0])]
    if kind in ("pair", "multiturn"):
        return [[per_row[i], per_row[n + i]] for i in range(n)]
    if kind == "list":
        assert k is not None
        return [per_row[b * k : (b + 1) * k] for b in range(n)]
    return [[per_row[i]] for i in range(n)]


# ---------------------------------------------------------------- the trainer


def _training_arguments(args: Any, options: dict[str, Any], own: Sequence[str]) -> Any:
    from transformers import TrainingArguments

    if args is not None:
        if options:
            raise ValueError(
                f"give training options either in args= (a TrainingArguments) or as keywords, not both; "
                f"got args and {sorted(options)}."
            )
        if not isinstance(args, TrainingArguments):
            raise TypeError(f"args must be a transformers.TrainingArguments, got {type(args).__name__}.")
        args.remove_unused_columns = False  # the collator reads token-id columns the model's forward does not name
        return args
    valid = [f.name for f in dataclasses.fields(TrainingArguments) if f.init]
    unknown = [k for k in options if k not in valid]
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, valid + list(own), n=3)
            hints.append(f"{k!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
        raise TypeError(
            f"PreferenceTrainer got unknown option(s) {', '.join(hints)}; options are PreferenceTrainer's own "
            f"({', '.join(own)}) or transformers.TrainingArguments fields."
        )
    return TrainingArguments(**{**_TRAINING_DEFAULTS, **options})


def _hf_trainer_class() -> Any:
    """transformers.Trainer subclass whose loss is the owner's (built lazily: transformers is optional)."""
    from transformers import Trainer

    class _Trainer(Trainer):
        owner: PreferenceTrainer

        def compute_loss(
            self, model: Any, inputs: Any, return_outputs: bool = False, num_items_in_batch: Any = None
        ) -> Any:
            mode = "train" if model.training else "eval"
            report = self.owner.tokenization_report_
            if mode == "train" and report is not None:
                # Counted here, in the main process, not in the collator: DataLoader workers would keep the
                # counts, and evaluation batches are not training padding.
                report.add_batch(inputs["attention_mask"])
            loss, out = self.owner._step(model, inputs, mode)
            return (loss, out) if return_outputs else loss

        def prediction_step(
            self, model: Any, inputs: Any, prediction_loss_only: bool, ignore_keys: Any = None
        ) -> tuple[Any, Any, Any]:
            inputs = self._prepare_inputs(inputs)
            with torch.no_grad(), self.compute_loss_context_manager():
                loss = self.compute_loss(model, inputs)
            return loss.detach(), None, None

        def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
            mode = "train" if self.owner.model.training else "eval"
            metrics = self.owner._metrics[mode]
            averaged = {k: sum(v) / len(v) for k, v in metrics.items() if v}
            if mode == "eval":
                averaged = {f"eval_{k}": v for k, v in averaged.items()}
            logs.update(averaged)
            super().log(logs, start_time)
            metrics.clear()

    return _Trainer


class PreferenceTrainer:
    """Offline preference optimisation (DPO and its family) of a causal LM, on ``transformers.Trainer``.

    Parameters
    ----------
    model : transformers causal LM, PEFT model, or str
        The policy; a string is loaded with ``AutoModelForCausalLM.from_pretrained``.
    train_dataset, eval_dataset : optional
        Preference rows in any format :func:`~bradley.train.read_preferences`
        accepts, or already tokenised rows (with ``prompt_ids``). The format
        must suit the loss: pairs, k-wise lists (PRO, ``dpo-pl``), multi-turn
        dialogues (DMPO), unpaired rows (KTO; pairs are split into a desirable
        and an undesirable row).
    tokenizer : transformers tokenizer, optional
        Needed for untokenised rows; loaded from ``model`` when it is a string.
    loss : str, list of str, or a configured loss
        A registered name of kind ``"policy"`` (``bradley.nn.available()``;
        TRL's ``loss_type`` names work), a list for a weighted sum (weights as
        ``loss_kwargs["loss_weights"]``), or the object ``bradley.nn.get`` returns.
    loss_kwargs : dict, optional
        Hyperparameters of the loss (``beta``, ``label_smoothing``, ...).
    ref_model : causal LM, optional
        The reference; default a frozen deep copy of the initial policy (or,
        for a PEFT policy, its adapter-disabled base).
    reference : {"auto", "model", "adapter", "cache"}
        ``"model"``: a frozen reference model next to the policy.
        ``"adapter"``: the PEFT policy with its adapters disabled.
        ``"cache"``: reference log-probs computed once before training and
        cached under ``cache_dir``, keyed by a fingerprint of the reference
        weights and the token ids; a later run with the same model and data
        reads them and never runs the reference (the reference copy is
        released after caching). ``"auto"`` (default): ``"adapter"`` for a
        PEFT policy without ``ref_model``, else ``"model"``. Ignored for
        reference-free losses.
    cache_dir : path, optional
        Folder of the reference cache; default ``<output_dir>/reference-cache``.
    previous_model : causal LM, optional
        The previous iterate, for losses with ``prev_*`` inputs (SPPO, INPO, DNO).
    peft_config : peft.PeftConfig, optional
        Wrap ``model`` with ``peft.get_peft_model`` first (e.g. a ``LoraConfig``).
    chunked : bool
        Log-probs through the chunked LM head (default; never builds the
        ``(tokens, V)`` logits) or the model's full logits. TDPO always uses
        full logits.
    chunk_size : int, optional
        Tokens per chunk of the chunked head.
    max_length, max_prompt_length : int, optional
        Truncation at tokenisation (reported in ``tokenization_report_``).
    disable_dropout : bool
        Set every dropout probability of policy and reference to 0 (as TRL).
    args : transformers.TrainingArguments, optional
        Ready arguments; otherwise pass their fields as keywords.
    callbacks : list, optional
        ``transformers.TrainerCallback`` objects.
    **training_options
        ``transformers.TrainingArguments`` fields (``output_dir``,
        ``learning_rate`` (default here 1e-6, as TRL's DPOConfig),
        ``per_device_train_batch_size``, ``max_steps``, ``num_train_epochs``,
        ``gradient_accumulation_steps``, ``logging_steps``, ``seed``, ``bf16``,
        ``report_to`` (default ``"none"``), ...). Unknown names are an error
        listing close matches.

    Attributes
    ----------
    trainer : transformers.Trainer
        The underlying trainer (``trainer.state.log_history`` has the logs).
    tokenization_report_ : TokenizationReport
        What tokenisation cut or dropped in the training data.
    reference_from_cache_ : bool or None
        With ``reference="cache"``: whether the reference log-probs were read
        from disk (True) or computed in this run (False).

    Logged metrics: ``loss``, ``rewards/chosen``, ``rewards/rejected``,
    ``rewards/margins``, ``rewards/accuracies`` (the loss's rewards:
    ``beta * log(pi / pi_ref)`` for reference-based losses), ``logps/chosen``,
    ``logps/rejected`` (summed policy log-probs), ``kl`` (mean over response
    tokens of ``log pi(y_t) - log pi_ref(y_t)`` on the chosen responses, or on
    all responses of lists and unpaired rows; reference-based losses only)
    and ``loss/<name>`` for each part of a combined loss.

    Examples
    --------
    >>> import contextlib, io, tempfile
    >>> from bradley.train.toy import toy_causal_lm, toy_preference_dataset, toy_tokenizer
    >>> tok = toy_tokenizer()
    >>> trainer = PreferenceTrainer(toy_causal_lm(tok), toy_preference_dataset(8), tokenizer=tok,
    ...     loss="sigmoid", loss_kwargs={"beta": 0.1}, output_dir=tempfile.mkdtemp(), save_strategy="no",
    ...     max_steps=2, per_device_train_batch_size=4, learning_rate=1e-3, use_cpu=True, disable_tqdm=True)
    >>> with contextlib.redirect_stdout(io.StringIO()):   # transformers prints the logs
    ...     result = trainer.train()
    >>> result.global_step, "rewards/margins" in trainer.trainer.state.log_history[0]
    (2, True)
    """

    _OWN = (
        "train_dataset", "eval_dataset", "tokenizer", "loss", "loss_kwargs", "ref_model", "reference", "cache_dir",
        "previous_model", "peft_config", "chunked", "chunk_size", "max_length", "max_prompt_length",
        "disable_dropout", "args", "callbacks",
    )  # fmt: skip

    def __init__(
        self,
        model: Any,
        train_dataset: Any = None,
        *,
        eval_dataset: Any = None,
        tokenizer: Any = None,
        loss: str | Sequence[str] | PreferenceLoss | CombinedLoss = "sigmoid",
        loss_kwargs: dict[str, Any] | None = None,
        ref_model: Any = None,
        reference: str = "auto",
        cache_dir: str | os.PathLike[str] | None = None,
        previous_model: Any = None,
        peft_config: Any = None,
        chunked: bool = True,
        chunk_size: int | None = None,
        max_length: int | None = 1024,
        max_prompt_length: int | None = None,
        disable_dropout: bool = True,
        args: Any = None,
        callbacks: list[Any] | None = None,
        **training_options: Any,
    ) -> None:
        self.args = _training_arguments(args, training_options, self._OWN)
        if isinstance(model, str):
            from transformers import AutoModelForCausalLM, AutoTokenizer

            if tokenizer is None:
                tokenizer = AutoTokenizer.from_pretrained(model)
            model = AutoModelForCausalLM.from_pretrained(model)
        if tokenizer is None:
            raise ValueError("give tokenizer= (the model's tokenizer), or the model as a name to load both.")
        if peft_config is not None:
            from peft import get_peft_model

            model = get_peft_model(model, peft_config)
        self.tokenizer = tokenizer
        self.loss = self._configure_loss(loss, loss_kwargs)
        self.kind = _data_kind(self.loss)
        names = set(self.loss.inputs)
        self._needs_ref = any(n.startswith("ref_") for n in names)
        self._needs_prev = any(n.startswith("prev_") for n in names)
        self._needs_seq_kl = bool(names & {"chosen_seq_kl", "rejected_seq_kl"})
        hyper = [c.hyperparameters for c in getattr(self.loss, "components", [self.loss])]
        self._wpo = any(h.get("use_weighting") for h in hyper)
        uses = (*self.loss.inputs, *self.loss.optional_inputs)
        self._kl_pairs = self.kind == "unpaired" and "policy_kl_logps" in uses
        if isinstance(chunked, bool) is False:
            raise TypeError(f"chunked must be True or False, got {chunked!r}.")
        self.chunked = chunked
        self.chunk_size = chunk_size
        self.max_length = max_length
        self.max_prompt_length = max_prompt_length
        if reference not in _REFERENCES:
            raise ValueError(f"reference must be one of {_REFERENCES}, got {reference!r}.")
        if reference == "auto":
            reference = "adapter" if _is_peft(model) and ref_model is None else "model"
        if reference == "adapter" and not _is_peft(model):
            raise ValueError("reference='adapter' needs a PEFT policy (pass peft_config= or a peft model).")
        if reference == "adapter" and ref_model is not None:
            raise ValueError("reference='adapter' uses the policy's base weights; do not pass ref_model too.")
        if reference == "cache" and self._needs_seq_kl:
            raise ValueError(
                "TDPO needs the reference's full logits at every step; use reference='model' or 'adapter'."
            )
        if reference == "cache" and self._kl_pairs:
            raise ValueError(
                "KTO's KL estimate scores mismatched (prompt, response) rows made per batch, which a cache "
                "cannot hold; use reference='model' or 'adapter'."
            )
        self.reference = reference if self._needs_ref else None
        if self._needs_prev and previous_model is None:
            raise ValueError(f"loss {self.loss.name!r} needs previous-iterate log-probs: pass previous_model=.")
        self.previous_model = None if previous_model is None else _freeze(previous_model)
        if disable_dropout:
            _disable_dropout(model)
        self.ref_model: Any = None
        if self.reference in ("model", "cache"):
            ref = ref_model
            if ref is None and not (self.reference == "cache" and _is_peft(model)):
                ref = copy.deepcopy(model)
            self.ref_model = None if ref is None else _freeze(ref)
        for other in (self.ref_model, self.previous_model):
            if other is not None and disable_dropout:
                _disable_dropout(other)
        self.model = model
        self.tokenization_report_: TokenizationReport | None = None
        self.reference_from_cache_: bool | None = None
        self._metrics: dict[str, dict[str, list[float]]] = {"train": defaultdict(list), "eval": defaultdict(list)}
        train = self._prepare(train_dataset, "train")
        evaluation = self._prepare(eval_dataset, "eval")
        self.collator = PreferenceCollator(
            self.kind, int(tokenizer.pad_token_id), kl_pairs=self._kl_pairs
        )  # padding is counted in the training loop (compute_loss), see there
        device = self.args.device
        for other in (self.ref_model, self.previous_model):
            if other is not None:
                other.to(device)
        if self.reference == "cache":
            self.cache_dir = cache_dir or os.path.join(self.args.output_dir, "reference-cache")
            train = self._cache(train)
            evaluation = self._cache(evaluation)
            self.ref_model = None  # released: the cache replaces it
        self.trainer = _hf_trainer_class()(
            model=model,
            args=self.args,
            data_collator=self.collator,
            train_dataset=train,
            eval_dataset=evaluation,
            processing_class=tokenizer,
            callbacks=callbacks,
        )
        self.trainer.owner = self
        # Our loss is a batch mean: let Trainer divide it by the accumulation steps.
        self.trainer.loss_is_scaled_for_ga = False

    # ------------------------------------------------------------ setup

    @staticmethod
    def _configure_loss(loss: Any, loss_kwargs: dict[str, Any] | None) -> PreferenceLoss | CombinedLoss:
        kwargs = dict(loss_kwargs or {})
        if isinstance(loss, (PreferenceLoss, CombinedLoss)):
            if kwargs:
                raise ValueError("loss is already configured; give loss_kwargs only with a loss name.")
            configured = loss
        elif isinstance(loss, str) or (isinstance(loss, Sequence) and all(isinstance(n, str) for n in loss)):
            configured = get_loss(loss, **kwargs)
        else:
            raise TypeError(f"loss must be a registered name, a list of names or a configured loss, got {loss!r}.")
        components = getattr(configured, "components", [configured])
        reward = [c.name for c in components if c.spec.kind != "policy"]
        if reward:
            raise ValueError(
                f"loss {reward} is a reward-model loss (kind='reward'); PreferenceTrainer trains policies with direct "
                f"preference losses. Use bradley.train.RewardTrainer for reward models."
            )
        return configured

    def _prepare(self, data: Any, split: str) -> Any:
        if data is None:
            return None
        columns = getattr(data, "column_names", None)
        report: TokenizationReport | None = None
        if columns is not None and "prompt_ids" in columns:
            dataset = data
        elif self.kind == "multiturn":
            dataset, report = tokenize_multiturn(
                data, self.tokenizer, max_length=self.max_length, max_prompt_length=self.max_prompt_length
            )
        else:
            if self.kind == "unpaired":
                data = _pairs_as_unpaired(data)
            dataset, report = tokenize_preferences(
                data, self.tokenizer, max_length=self.max_length, max_prompt_length=self.max_prompt_length
            )
            expected = {"pair": "pair", "list": "list", "unpaired": "unpaired"}[self.kind]
            if report.format != expected:
                raise ValueError(
                    f"loss {self.loss.name!r} reads {expected} rows but the {split} data are {report.format} rows."
                )
        if self.kind == "multiturn" and "chosen_turn_ids" not in dataset.column_names:
            raise ValueError(f"loss {self.loss.name!r} needs multi-turn rows (see tokenize_multiturn).")
        if report is not None:
            logger.info("PreferenceTrainer %s data: %s", split, report.summary())
            if split == "train":
                self.tokenization_report_ = report
        return dataset

    def _cache(self, dataset: Any) -> Any:
        if dataset is None:
            return None
        id_columns = [c for c in dataset.column_names if c.endswith("_ids") and c != "category_id"]
        source = self.ref_model if self.ref_model is not None else self.model
        skip: Any = None
        if self.ref_model is None:  # adapter-disabled base of a PEFT policy: hash the base weights only
            adapters = list(getattr(self.model, "peft_config", {}))

            def skip(name: str) -> bool:
                return any(f".{a}." in name or name.endswith(f".{a}") for a in adapters)

        key = model_fingerprint(source, skip=skip) + data_fingerprint(dataset, sorted(id_columns))
        import hashlib

        fingerprint = hashlib.sha256(f"{key}:{self.kind}".encode()).hexdigest()[:32]
        collate = PreferenceCollator(self.kind, int(self.tokenizer.pad_token_id), kl_pairs=False)
        device = self.args.device

        def compute(rows: list[dict[str, Any]]) -> list[Any]:
            batch = collate([{k: v for k, v in r.items() if k != "category_id"} for r in rows])
            batch = {k: v.to(device) for k, v in batch.items()}
            ref, _ = self._reference(batch, need_logits=False)
            k = batch["ranks"].shape[1] if self.kind == "list" else None
            return _cache_rows(self.kind, ref.per_token, ref.mask, len(rows), k)

        batch_size = self.args.per_device_eval_batch_size
        self.model.to(device)
        out, hit = cached_reference_logprobs(
            dataset, compute, cache_dir=self.cache_dir, fingerprint=fingerprint, batch_size=batch_size
        )
        self.reference_from_cache_ = hit if self.reference_from_cache_ is None else self.reference_from_cache_ and hit
        return out

    # ------------------------------------------------------------ log-probs

    def _logprobs(
        self, model: Any, batch: Mapping[str, torch.Tensor], need_logits: bool, extra: Sequence[str] = ()
    ) -> tuple[SequenceLogProbs, torch.Tensor | None]:
        if need_logits:
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
            return sequence_logprobs(logits, batch["labels"], extra=extra), logits
        out = model_logprobs(
            model,
            batch["input_ids"],
            batch["labels"],
            batch["attention_mask"],
            chunked=self.chunked,
            chunk_size=self.chunk_size,
            extra=extra,
        )
        return out, None

    def _reference(
        self, batch: Mapping[str, torch.Tensor], need_logits: bool
    ) -> tuple[SequenceLogProbs, torch.Tensor | None]:
        with torch.no_grad():
            if self.ref_model is not None:
                return self._logprobs(self.ref_model, batch, need_logits)
            with adapter_disabled(self.model):
                return self._logprobs(self.model, batch, need_logits)

    # ------------------------------------------------------------ one step

    def _step(self, model: Any, inputs: Mapping[str, torch.Tensor], mode: str) -> tuple[torch.Tensor, LossOutput]:
        extra = ("log_sum_sq_probs",) if self._wpo else ()
        policy, policy_logits = self._logprobs(model, inputs, self._needs_seq_kl, extra)
        ref: SequenceLogProbs | torch.Tensor | None = None
        ref_logits = None
        if self._needs_ref:
            if "ref_token_logps" in inputs:
                ref = inputs["ref_token_logps"].to(policy.per_token.dtype)
            else:
                ref, ref_logits = self._reference(inputs, self._needs_seq_kl)
        prev = None
        if self.previous_model is not None:
            with torch.no_grad():
                prev, _ = self._logprobs(self.previous_model, inputs, False)
        batch = self._batch(inputs, policy, ref, prev, policy_logits, ref_logits)
        out = self.loss(batch)
        loss = out.loss.mean()
        self._record(mode, batch, out, inputs, policy, ref)
        return loss, out

    def _batch(
        self,
        inputs: Mapping[str, torch.Tensor],
        policy: SequenceLogProbs,
        ref: SequenceLogProbs | torch.Tensor | None,
        prev: SequenceLogProbs | None,
        policy_logits: torch.Tensor | None,
        ref_logits: torch.Tensor | None,
    ) -> PreferenceBatch:
        mask = inputs["completion_mask"]
        fields = loss_fields(inputs)
        if self.kind == "list":
            fields.pop("ranks", None)
            fields.pop("list_mask", None)
            return list_preference_batch(
                policy, mask, inputs["ranks"], inputs.get("list_mask"), ref_token_logps=ref, **fields
            )
        if self.kind == "unpaired":
            n = inputs["desirable"].shape[0]
            fields["policy_logps"] = policy.sum[:n]
            if ref is not None:
                ref_sum = ref.sum if isinstance(ref, SequenceLogProbs) else ref.sum(-1)
                fields["ref_logps"] = ref_sum[:n]
                if self._kl_pairs:
                    fields["ref_kl_logps"] = ref_sum[n:]
            if self._kl_pairs:
                fields["policy_kl_logps"] = policy.sum[n:].detach()  # KTO does not backpropagate through z_0
            return PreferenceBatch.from_tensors(**fields)
        if self._needs_seq_kl:
            assert policy_logits is not None and ref_logits is not None
            kl = sequence_kl(ref_logits, policy_logits, inputs["labels"])
            fields["chosen_seq_kl"], fields["rejected_seq_kl"] = split_pairs(kl)
        if prev is not None:
            fields["prev_chosen_logps"], fields["prev_rejected_logps"] = split_pairs(prev.sum)
        if self.kind == "multiturn":
            turns = inputs["turn_index"][:, 1:]
            fields.update(_turn_fields(turns, policy.per_token, "policy"))
            if ref is not None:
                ref_tokens = ref.per_token if isinstance(ref, SequenceLogProbs) else ref
                fields.update(_turn_fields(turns, ref_tokens, "ref"))
            counts = turns.max(-1).values
            fields["chosen_turns"], fields["rejected_turns"] = split_pairs(counts)
        return preference_batch(policy, mask, ref, **fields)

    def _record(
        self,
        mode: str,
        batch: PreferenceBatch,
        out: LossOutput,
        inputs: Mapping[str, torch.Tensor],
        policy: SequenceLogProbs,
        ref: SequenceLogProbs | torch.Tensor | None,
    ) -> None:
        metrics = self._metrics[mode]
        for key, value in (
            ("rewards/chosen", out.chosen_rewards),
            ("rewards/rejected", out.rejected_rewards),
            ("rewards/margins", out.margins),
            ("rewards/accuracies", out.accuracy),
        ):
            if value is not None:
                metrics[key].append(value.float().mean().item())
        if self.kind in ("pair", "multiturn"):
            metrics["logps/chosen"].append(batch.get("policy_chosen_logps").mean().item())  # type: ignore[union-attr]
            metrics["logps/rejected"].append(batch.get("policy_rejected_logps").mean().item())  # type: ignore[union-attr]
        for key, value in out.extras.items():
            if key.endswith("_loss") and isinstance(value, torch.Tensor):
                metrics[f"loss/{key[: -len('_loss')]}"].append(value.float().mean().item())
        if ref is not None:
            ref_tokens = ref.per_token if isinstance(ref, SequenceLogProbs) else ref
            mask = policy.mask
            if self.kind in ("pair", "multiturn"):
                mask = split_pairs(mask)[0]
                diff = split_pairs(policy.per_token.detach())[0] - split_pairs(ref_tokens)[0]
            else:
                diff = policy.per_token.detach() - ref_tokens
                if self._kl_pairs:
                    n = inputs["desirable"].shape[0]
                    mask, diff = mask[:n], diff[:n]
            tokens = mask.sum()
            if tokens > 0:
                metrics["kl"].append(((diff * mask).sum() / tokens).item())

    # ------------------------------------------------------------ running

    def train(self, resume_from_checkpoint: str | bool | None = None) -> Any:
        """Run training; returns transformers' ``TrainOutput`` (global_step, training_loss, metrics)."""
        report = self.tokenization_report_
        if report is not None:
            logger.info("PreferenceTrainer: %s", report.summary())
        output = self.trainer.train(resume_from_checkpoint=resume_from_checkpoint)
        if report is not None:
            # The padding share is known only once batches were collated.
            logger.info("PreferenceTrainer after training: %s", report.summary())
            if report.padding_fraction is not None:
                output.metrics["padding_fraction"] = report.padding_fraction
        return output

    def evaluate(self, eval_dataset: Any = None) -> dict[str, float]:
        """Mean loss and metrics (``eval_loss``, ``eval_rewards/margins``, ...) on the evaluation data."""
        if eval_dataset is not None:
            eval_dataset = self._prepare(eval_dataset, "eval")
            if self.reference == "cache":
                if self.ref_model is None and not _is_peft(self.model):
                    raise ValueError(
                        "reference='cache' released the reference after caching; give the evaluation data to the "
                        "constructor (eval_dataset=) so its reference log-probs are cached with the training data's."
                    )
                eval_dataset = self._cache(eval_dataset)
        return dict(self.trainer.evaluate(eval_dataset=eval_dataset))

    def save_model(self, output_dir: str | None = None) -> None:
        """Save the policy (the adapter only, for a PEFT policy) and the tokenizer."""
        self.trainer.save_model(output_dir)


def _turn_fields(turns: torch.Tensor, per_token: torch.Tensor, who: str) -> dict[str, torch.Tensor]:
    """Per-turn summed log-probs (2B, J) split into chosen and rejected ``{who}_*_turn_logps``."""
    j = max(int(turns.max().item()), 1)
    index = (turns - 1).clamp(min=0)
    values = per_token * (turns > 0)
    per_turn = values.new_zeros(values.shape[0], j).scatter_add(1, index, values)
    chosen, rejected = split_pairs(per_turn)
    return {f"{who}_chosen_turn_logps": chosen, f"{who}_rejected_turn_logps": rejected}


def _pairs_as_unpaired(data: Any) -> Any:
    """Pairs -> unpaired rows (chosen desirable, rejected undesirable); other formats unchanged."""
    rows = read_preferences(data)
    if not {"chosen", "rejected"} <= set(rows.column_names):
        return rows
    from datasets import Dataset

    prompts, completions, labels = [], [], []
    for prompt, chosen, rejected in zip(rows["prompt"], rows["chosen"], rows["rejected"], strict=True):
        prompts += [prompt, prompt]
        completions += [chosen, rejected]
        labels += [True, False]
    return Dataset.from_dict({"prompt": prompts, "completion": completions, "label": labels})
