"""Reward-model training on Hugging Face models: :class:`RewardTrainer` and the trained :class:`RewardModel`.

``RewardTrainer`` is configuration around ``transformers.Trainer`` (its loop,
optimiser, accelerate, checkpoints and resume, logging callbacks): the parts
written here are the data preparation, the forward pass over a
``[chosen; rejected]`` batch, the loss chosen by name from
:mod:`bradley.nn` and the logged metrics. Four kinds of model:

* ``"sequence-classification"`` -- an ``AutoModelForSequenceClassification``
  with ``num_labels=1`` (TRL's ``RewardTrainer`` model);
* ``"scalar"`` -- a causal LM (or any backbone) with a ``Linear(H, 1)`` at the
  last non-pad token (:class:`~bradley.train.heads.ScalarRewardModel`);
* ``"gpm"`` -- the general preference model (:class:`~bradley.train.heads.GeneralPreferenceModel`);
* ``"genrm"`` -- a causal LM judging "A or B?" (:class:`~bradley.train.heads.GenerativeRewardModel`).

Losses: any reward-model loss of :mod:`bradley.nn` (``bradley.nn.loss_table()``,
kind ``"reward"``): ``bt`` (margin column, ``label_smoothing``,
``center_rewards_coefficient``), ``tobt`` (``is_tie`` column), ``soft-bt``
(``target`` column, e.g. MMPO targets), ``scaled-bt`` (``strength``),
``regression`` (k-wise rows with ``scores`` = ratings), ``plackett-luce``
(k-wise rows with ``ranks``). GPM and GenRM train with the pairwise ones on
their preference logit. Needs the ``train`` extra; ``transformers`` is
imported when a trainer is built.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import logging
import os
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch

from bradley.nn.batch import PreferenceBatch
from bradley.nn.registry import CombinedLoss, PreferenceLoss, get
from bradley.train.data import (
    ListCollator,
    PairCollator,
    TokenizationReport,
    loss_fields,
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

__all__ = ["HEADS", "RewardModel", "RewardTrainer"]

logger = logging.getLogger(__name__)

Tensor = torch.Tensor

#: The model kinds a :class:`RewardTrainer` trains.
HEADS = ("sequence-classification", "scalar", "gpm", "genrm")

# Batch fields the trainer computes from the model; every other input of a loss must be a data column.
_MODEL_OUTPUTS = ("chosen_rewards", "rejected_rewards", "rewards", "predicted_ratings")
_COLUMN_OF = {"target_ratings": "scores (k-wise rows)", "ranks": "ranks or scores (k-wise rows)"}


# ---------------------------------------------------------------- forward passes


def _unwrap(model: Any) -> Any:
    # accelerate / DDP wrap the module; attributes live on the inner one.
    return getattr(model, "module", model)


def _prompt_index(completion_mask: Tensor) -> Tensor:
    """Position of the last prompt token of each row (the token before the first response token)."""
    return (completion_mask.long().argmax(-1) - 1).clamp(min=0)


def _row_outputs(head: str, model: Any, batch: Mapping[str, Tensor]) -> Any:
    """Per-row model outputs: rewards (N,), GPM (embeddings, scales), or GenRM answer log-odds (N,)."""
    ids, mask = batch["input_ids"], batch["attention_mask"]
    if head == "sequence-classification":
        logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
        return logits[:, 0]
    if head == "gpm":
        return model(ids, mask, _prompt_index(batch["completion_mask"]))
    return model(ids, mask)


def _pair_rewards(head: str, model: Any, batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
    """``(chosen, rejected)`` whose difference is the logit of P(chosen beats rejected), from a pair batch.

    Scalar models: their rewards. GPM: ``+-s / (2 tau)``. GenRM: ``+-d / 2`` with
    ``d`` the order-averaged answer log-odds (see :class:`GenerativeRewardModel`).
    """
    out = _row_outputs(head, model, batch)
    if head == "gpm":
        v, scales = out
        (v_c, v_r), gate = split_pairs(v), (None if scales is None else split_pairs(scales)[0])
        half = gpm_score(v_c, v_r, gate) / (2.0 * _unwrap(model).tau)
        return half, -half
    if head == "genrm":
        z_chosen_first, z_rejected_first = split_pairs(out)
        half = (z_chosen_first - z_rejected_first) / 4.0
        return half, -half
    return split_pairs(out)


def _list_rewards(head: str, model: Any, batch: Mapping[str, Tensor]) -> Tensor:
    """Rewards ``(B, K)`` of a :class:`ListCollator` batch (scalar models only)."""
    k = batch["ranks"].shape[1]
    return _row_outputs(head, model, batch).reshape(-1, k)


# ---------------------------------------------------------------- GenRM data


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    return "\n".join(f"{m['role']}: {m['content']}" for m in value)


def _genrm_prompt_ids(tokenizer: Any, text: str) -> list[int]:
    if getattr(tokenizer, "chat_template", None):
        rendered = tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False
        )
        return list(tokenizer(rendered, add_special_tokens=False)["input_ids"])
    return list(tokenizer(text + "\nAnswer:")["input_ids"])


def _genrm_tokenize(
    data: Any, tokenizer: Any, template: str, max_length: int | None
) -> tuple[Any, TokenizationReport]:
    """Judge prompts for both orders of each pair; over-long ones keep their end (the question and answer cue)."""
    dataset = read_preferences(data)
    if "chosen" not in dataset.column_names:
        raise ValueError("GenRM trains on pairs (prompt/chosen/rejected rows), not k-wise or unpaired rows.")
    categories = sorted(set(dataset["category"])) if "category" in dataset.column_names else []
    category_ids = {c: i for i, c in enumerate(categories)}

    def judge(row: dict[str, Any]) -> dict[str, Any]:
        prompt, chosen, rejected = _as_text(row["prompt"]), _as_text(row["chosen"]), _as_text(row["rejected"])
        out: dict[str, Any] = {"prompt_ids": []}
        cut = 0
        for column, (a, b) in (("chosen_ids", (chosen, rejected)), ("rejected_ids", (rejected, chosen))):
            ids = _genrm_prompt_ids(tokenizer, template.format(prompt=prompt, a=a, b=b))
            if max_length is not None and len(ids) > max_length:
                cut += len(ids) - max_length
                ids = ids[len(ids) - max_length :]
            out[column] = ids
        out["_cut"] = cut
        if "category" in row:
            out["category_id"] = category_ids[row["category"]]
        return out

    tokenized = dataset.map(judge, desc="GenRM judge prompts")
    report = TokenizationReport(
        format="pair", conversational=False, examples=len(tokenized), kept=len(tokenized), max_length=max_length
    )
    cuts = tokenized["_cut"]
    report.prompts_truncated = sum(c > 0 for c in cuts)
    report.prompt_tokens_dropped = sum(cuts)
    pairs = zip(tokenized["chosen_ids"], tokenized["rejected_ids"], strict=True)
    report.longest_prompt = max(max(len(a), len(b)) for a, b in pairs)
    report.longest_sequence = report.longest_prompt
    report.categories = categories
    tokenized = tokenized.remove_columns(["_cut"])
    logger.log(logging.WARNING if cuts and any(cuts) else logging.INFO, "GenRM judge prompts: %s", report.summary())
    return tokenized, report


# ---------------------------------------------------------------- the trained model


class RewardModel:
    """A preference model with its tokenizer: :meth:`score`, :meth:`prefer`, :meth:`evaluate`.

    Parameters
    ----------
    model : torch.nn.Module
        An ``AutoModelForSequenceClassification`` (``head="sequence-classification"``),
        or a :class:`~bradley.train.heads.ScalarRewardModel`,
        :class:`~bradley.train.heads.GeneralPreferenceModel` or
        :class:`~bradley.train.heads.GenerativeRewardModel`.
    tokenizer : transformers tokenizer
    head : str, optional
        One of :data:`HEADS`; told from the model's class when absent.
    max_length, max_prompt_length : int, optional
        Truncation, as in training (:func:`~bradley.train.data.tokenize_preferences`).
    template : str
        GenRM judge prompt (``{prompt}``, ``{a}``, ``{b}``).
    batch_size : int
        Pairs (or responses) per forward pass.

    ``score(prompt, response)`` returns the reward (scalar models) or the
    ``2k`` preference embedding (GPM); ``prefer(prompt, a, b)`` returns
    ``P(a beats b | prompt)`` for every kind: ``sigmoid(r_a - r_b)``,
    ``sigmoid(s(a > b) / tau)``, or GenRM's order-averaged ``sigmoid(d)``.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        head: str | None = None,
        *,
        max_length: int | None = None,
        max_prompt_length: int | None = None,
        template: str = GENRM_TEMPLATE,
        batch_size: int = 32,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.head = _head_of(model) if head is None else head
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}.")
        self.max_length = max_length
        self.max_prompt_length = max_prompt_length
        self.template = template
        self.batch_size = batch_size
        pad = getattr(tokenizer, "pad_token_id", None)
        if pad is None:
            raise ValueError(
                "the tokenizer has no pad token; set one first, e.g. tokenizer.pad_token = tokenizer.eos_token."
            )
        self.pad_token_id = int(pad)

    def __repr__(self) -> str:
        return f"RewardModel(head={self.head!r}, model={type(self.model).__name__})"

    # -- data

    def prepare(self, data: Any, *, listwise: bool = False) -> tuple[Any, TokenizationReport, Any]:
        """Tokenise rows for this model: ``(dataset, report, collator)``."""
        if self.head == "genrm":
            dataset, report = _genrm_tokenize(data, self.tokenizer, self.template, self.max_length)
            return dataset, report, PairCollator(self.pad_token_id, report=report)
        dataset, report = tokenize_preferences(
            data, self.tokenizer, max_length=self.max_length, max_prompt_length=self.max_prompt_length
        )
        if report.format == "list":
            return dataset, report, ListCollator(self.pad_token_id, report=report)
        if report.format != "pair":
            raise ValueError(f"reward models train on pairs or k-wise rows, not {report.format!r} rows.")
        return dataset, report, PairCollator(self.pad_token_id, report=report)

    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _batches(self, dataset: Any, collate: Any) -> Any:
        device = self._device()
        for start in range(0, len(dataset), self.batch_size):
            rows = [dataset[i] for i in range(start, min(start + self.batch_size, len(dataset)))]
            batch = collate(rows)
            yield {k: v.to(device) if isinstance(v, Tensor) else v for k, v in batch.items()}

    def _run(self, fn: Any) -> Any:
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                return fn()
        finally:
            self.model.train(was_training)

    # -- inference

    def score(self, prompt: Any, response: Any) -> Any:
        """The reward ``r(prompt, response)`` (scalar models) or the preference embedding ``(2k,)`` (GPM).

        ``prompt`` and ``response`` are strings (or chat messages), or lists of
        them (same length); a list gives an array of shape ``(n,)``
        (``(n, 2k)`` for GPM), one item a float (a ``(2k,)`` array for GPM).
        GenRM judges pairs only: use :meth:`prefer`.
        """
        if self.head == "genrm":
            raise TypeError("a GenRM has no per-response score; it judges pairs: use prefer(prompt, a, b).")
        prompts, responses, single = _rows(prompt, response)
        rows = [{"prompt": p, "chosen": r, "rejected": r} for p, r in zip(prompts, responses, strict=True)]
        dataset, _ = tokenize_preferences(
            rows, self.tokenizer, max_length=self.max_length, max_prompt_length=self.max_prompt_length
        )
        one = ListCollator(self.pad_token_id)

        def collate(features: list[dict[str, Any]]) -> dict[str, Tensor]:
            rows = [{"prompt_ids": f["prompt_ids"], "response_ids": [f["chosen_ids"]], "ranks": [1]} for f in features]
            return one(rows)

        def run() -> np.ndarray:
            parts = []
            for batch in self._batches(dataset, collate):
                out = _row_outputs(self.head, self.model, batch)
                parts.append((out[0] if self.head == "gpm" else out).double().cpu())
            return torch.cat(parts).numpy()

        values = self._run(run)
        return (float(values[0]) if values.ndim == 1 else values[0]) if single else values

    def pair_logits(self, data: Any) -> tuple[np.ndarray, Any, TokenizationReport]:
        """Logit of ``P(chosen beats rejected)`` for each pair of ``data`` (rows in any pair format).

        Returns ``(logits (n,), tokenised dataset, report)``.
        """
        dataset, report, collate = self.prepare(data)
        if report.format != "pair":
            raise ValueError("pair_logits needs pairs (prompt/chosen/rejected rows).")
        return self._pair_logits(dataset, collate), dataset, report

    def _pair_logits(self, dataset: Any, collate: Any) -> np.ndarray:
        def run() -> np.ndarray:
            parts = []
            for batch in self._batches(dataset, collate):
                chosen, rejected = _pair_rewards(self.head, self.model, batch)
                parts.append((chosen - rejected).double().cpu())
            return torch.cat(parts).numpy()

        return self._run(run)

    def prefer(self, prompt: Any, a: Any, b: Any) -> Any:
        """``P(a beats b | prompt)``: a float for one pair, an array for lists of equal length."""
        prompts, a_list, single = _rows(prompt, a)
        _, b_list, _ = _rows(prompt, b)
        if len(b_list) != len(a_list):
            raise ValueError(f"a has {len(a_list)} responses but b has {len(b_list)}.")
        rows = [{"prompt": p, "chosen": x, "rejected": y} for p, x, y in zip(prompts, a_list, b_list, strict=True)]
        logits, _, _ = self.pair_logits(rows)
        prob = 1.0 / (1.0 + np.exp(-logits))
        return float(prob[0]) if single else prob

    def evaluate(self, data: Any, *, bins: int = 10) -> pd.DataFrame:
        """Held-out pairwise accuracy, log-loss, ECE and Brier score, overall and per category.

        Pairs: ``P(chosen beats rejected)`` against the outcome 1, or 0.5 for
        ``is_tie`` rows, or the ``target`` column when there is one. K-wise
        rows: every pair of responses in a list (outcome from the ranks; equal
        ranks are ties). Returns :func:`~bradley.train.metrics.pairwise_metrics`'s table.
        """
        dataset, report, collate = self.prepare(data)
        names = report.categories
        if report.format == "list":
            prob, outcome, cats = self._list_pairs(dataset, collate, names)
        else:
            logits = self._pair_logits(dataset, collate)
            prob = 1.0 / (1.0 + np.exp(-logits))
            columns = dataset.column_names
            if "target" in columns:
                outcome = np.asarray(dataset["target"], dtype=np.float64)
            else:
                outcome = np.ones(len(dataset))
            if "is_tie" in columns:
                outcome = np.where(np.asarray(dataset["is_tie"], dtype=bool), 0.5, outcome)
            cats = [names[i] for i in dataset["category_id"]] if "category_id" in columns else None
        return pairwise_metrics(prob, outcome, cats, bins=bins)

    def _list_pairs(
        self, dataset: Any, collate: Any, names: list[str]
    ) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
        if self.head not in ("sequence-classification", "scalar"):
            raise ValueError(f"k-wise evaluation needs a scalar reward model, not head={self.head!r}.")
        probs: list[float] = []
        outcomes: list[float] = []
        cats: list[int] = []

        def run() -> None:
            for batch in self._batches(dataset, collate):
                rewards = _list_rewards(self.head, self.model, batch).double().cpu()
                ranks, mask = batch["ranks"].cpu(), batch["list_mask"].cpu()
                ids = batch["category_id"].cpu().tolist() if "category_id" in batch else None
                k = rewards.shape[1]
                for row in range(rewards.shape[0]):
                    for i in range(k):
                        for j in range(i + 1, k):
                            if mask[row, i] and mask[row, j]:
                                probs.append(torch.sigmoid(rewards[row, i] - rewards[row, j]).item())
                                ri, rj = int(ranks[row, i]), int(ranks[row, j])
                                outcomes.append(1.0 if ri < rj else 0.0 if ri > rj else 0.5)
                                cats.append(ids[row] if ids is not None else -1)

        self._run(run)
        category = [names[c] for c in cats] if "category_id" in dataset.column_names else None
        return np.asarray(probs), np.asarray(outcomes), category


def _rows(prompt: Any, response: Any) -> tuple[list[Any], list[Any], bool]:
    """Lists of prompts and responses; one prompt is repeated for a list of responses."""

    def is_one(value: Any) -> bool:
        return isinstance(value, str) or (
            isinstance(value, list) and bool(value) and isinstance(value[0], Mapping)
        )

    if is_one(response):
        if not is_one(prompt):
            raise ValueError("give one prompt for one response, or lists of prompts and responses.")
        return [prompt], [response], True
    responses = list(response)
    prompts = [prompt] * len(responses) if is_one(prompt) else list(prompt)
    if len(prompts) != len(responses):
        raise ValueError(f"got {len(prompts)} prompts for {len(responses)} responses.")
    return prompts, responses, False


def _head_of(model: Any) -> str:
    if isinstance(model, GeneralPreferenceModel):
        return "gpm"
    if isinstance(model, GenerativeRewardModel):
        return "genrm"
    if isinstance(model, ScalarRewardModel):
        return "scalar"
    if type(model).__name__.endswith("ForSequenceClassification"):
        labels = getattr(getattr(model, "config", None), "num_labels", 1)
        if labels != 1:
            raise ValueError(f"a sequence-classification reward model needs num_labels=1, got {labels}.")
        return "sequence-classification"
    raise TypeError(
        f"cannot tell what kind of reward model a {type(model).__name__} is; pass head= one of {HEADS} "
        "(a causal LM gets a scalar head with head='scalar')."
    )


# ---------------------------------------------------------------- the trainer


def _training_arguments(args: Any, options: dict[str, Any]) -> Any:
    """``transformers.TrainingArguments`` from ``args`` or HF-named keyword options (unknown ones refused)."""
    import dataclasses

    from transformers import TrainingArguments

    if args is not None:
        if options:
            raise TypeError(
                f"give training options either in args= or as keywords, not both (got args and {sorted(options)})."
            )
        if not isinstance(args, TrainingArguments):
            raise TypeError(f"args must be a transformers.TrainingArguments, got {type(args).__name__}.")
        args.remove_unused_columns = False  # the collators read columns the model's forward does not name
        return args
    names = {f.name for f in dataclasses.fields(TrainingArguments) if f.init}
    unknown = sorted(set(options) - names)
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, sorted(names), n=3)
            hints.append(f"{key!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
        raise TypeError(f"unknown training option(s) {', '.join(hints)}; options are TrainingArguments fields.")
    settings = {"output_dir": "reward_model", "report_to": "none", **options, "remove_unused_columns": False}
    return TrainingArguments(**settings)


def _loss_object(loss: Any, loss_kwargs: dict[str, Any] | None) -> PreferenceLoss | CombinedLoss:
    if isinstance(loss, (PreferenceLoss, CombinedLoss)):
        if loss_kwargs:
            raise TypeError("loss is already configured; loss_kwargs applies to a loss given by name.")
        built: PreferenceLoss | CombinedLoss = loss
    else:
        built = get(loss, **dict(loss_kwargs or {}))
    components = built.components if isinstance(built, CombinedLoss) else [built]
    policy = [c.name for c in components if c.spec.kind != "reward"]
    if policy:
        raise ValueError(
            f"{policy} are policy losses (on log-probs); a reward model trains with a reward loss: "
            "see bradley.nn.loss_table() rows of kind 'reward' (bt, tobt, soft-bt, scaled-bt, regression, "
            "plackett-luce)."
        )
    return built


def _mode_of(loss: PreferenceLoss | CombinedLoss) -> str:
    inputs = set(loss.inputs)
    if "predicted_ratings" in inputs:
        return "ratings"
    if "rewards" in inputs:
        return "list"
    return "pair"


@functools.cache
def _hf_trainer_class() -> type:
    from transformers import Trainer

    class _RewardHFTrainer(Trainer):
        """``transformers.Trainer`` with the reward forward pass, a registry loss and TRL-named metrics."""

        loss_is_scaled_for_ga = False  # compute_loss returns a per-batch mean

        def __init__(self, *args: Any, head: str, preference_loss: Any, mode: str, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.head, self.preference_loss, self.mode = head, preference_loss, mode
            self.padding_report: TokenizationReport | None = None  # the training data's; set by RewardTrainer
            self._metrics: dict[str, dict[str, list[float]]] = {"train": defaultdict(list), "eval": defaultdict(list)}

        def _loss_output(self, model: Any, inputs: dict[str, Any]) -> Any:
            fields = loss_fields(inputs)
            if self.mode == "pair":
                chosen, rejected = _pair_rewards(self.head, model, inputs)
                batch = PreferenceBatch.from_tensors(chosen_rewards=chosen, rejected_rewards=rejected, **fields)
            else:
                rewards = _list_rewards(self.head, model, inputs)
                if self.mode == "list":
                    batch = PreferenceBatch.from_tensors(rewards=rewards, **fields)
                    return self.preference_loss(batch), rewards[inputs["list_mask"].bool()]
                else:
                    if "response_scores" not in inputs:
                        raise ValueError("the regression loss needs k-wise rows with 'scores' (the ratings).")
                    target = inputs["response_scores"].to(rewards.dtype)
                    mask = inputs["list_mask"]
                    # Filled slots of ragged lists predict their target exactly: no loss, no gradient.
                    predicted = torch.where(mask, rewards, target)
                    batch = PreferenceBatch.from_tensors(predicted_ratings=predicted, target_ratings=target)
                    return self.preference_loss(batch), rewards[mask]
            scalar = self.mode == "pair" and self.head in ("sequence-classification", "scalar")
            return self.preference_loss(batch), torch.cat([chosen, rejected]) if scalar else None

        def compute_loss(
            self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
        ) -> Any:
            mode = "train" if model.training else "eval"
            if mode == "train" and self.padding_report is not None:
                self.padding_report.add_batch(inputs["attention_mask"])
            out, all_rewards = self._loss_output(model, inputs)
            loss = out.loss.mean()
            metrics = self._metrics[mode]
            with torch.no_grad():
                if out.chosen_rewards is not None and out.rejected_rewards is not None:
                    gather = self.accelerator.gather_for_metrics
                    chosen, rejected = gather(out.chosen_rewards), gather(out.rejected_rewards)
                    margins = chosen - rejected
                    metrics["rewards/chosen"].append(chosen.mean().item())
                    metrics["rewards/rejected"].append(rejected.mean().item())
                    metrics["rewards/margins"].append(margins.mean().item())
                    metrics["margin"].append(margins.mean().item())
                    # A tie has no winner to get right: leave tie rows out, as evaluate_pairs does.
                    decided = margins.new_ones(margins.shape, dtype=torch.bool)
                    if "is_tie" in inputs:
                        decided = ~gather(inputs["is_tie"].to(margins.device).bool().reshape(-1))
                    if bool(decided.any()):
                        accuracy = (margins[decided] > 0).float().mean().item()
                        metrics["rewards/accuracies"].append(accuracy)
                        metrics["accuracy"].append(accuracy)  # TRL RewardTrainer's names
                if all_rewards is not None and all_rewards.numel():
                    values = self.accelerator.gather_for_metrics(all_rewards.detach().float())
                    metrics["min_reward"].append(values.min().item())
                    metrics["mean_reward"].append(values.mean().item())
                    metrics["max_reward"].append(values.max().item())
            return (loss, out) if return_outputs else loss

        def _save(self, output_dir: str | None = None, state_dict: dict[str, Any] | None = None) -> None:
            from transformers import PreTrainedModel
            from transformers.trainer import TRAINING_ARGS_NAME
            from transformers.utils import WEIGHTS_NAME

            model = self.accelerator.unwrap_model(self.model, keep_torch_compile=False)
            if isinstance(model, PreTrainedModel):
                super()._save(output_dir, state_dict)
                return
            # Our heads wrap the LM in a plain nn.Module, for which Trainer writes safetensors; safetensors
            # refuses tensors that share memory, i.e. every LM with tied embeddings (lm_head = embed_tokens).
            # torch.save keeps the sharing, and Trainer resumes from pytorch_model.bin as well.
            if not self.args.should_save:
                return
            output_dir = str(output_dir if output_dir is not None else self.args.output_dir)
            os.makedirs(output_dir, exist_ok=True)
            torch.save(model.state_dict() if state_dict is None else state_dict, os.path.join(output_dir, WEIGHTS_NAME))
            if self.processing_class is not None:
                self.processing_class.save_pretrained(output_dir)
            torch.save(self.args, os.path.join(output_dir, TRAINING_ARGS_NAME))

        def prediction_step(
            self, model: Any, inputs: dict[str, Any], prediction_loss_only: bool, ignore_keys: Any = None
        ) -> tuple[Any, Any, Any]:
            inputs = self._prepare_inputs(inputs)
            with torch.no_grad():
                loss = self.compute_loss(model, inputs)
            return loss.detach(), None, None

        def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
            mode = "train" if self.model is not None and self.model.training else "eval"
            averaged = {k: sum(v) / len(v) for k, v in self._metrics[mode].items() if v}
            if mode == "eval":
                averaged = {f"eval_{k}": v for k, v in averaged.items()}
            logs.update(averaged)
            super().log(logs, start_time)
            self._metrics[mode].clear()

    return _RewardHFTrainer


class RewardTrainer:
    """Train a reward model (BT-family, listwise, GPM or GenRM) with ``transformers.Trainer``.

    Parameters
    ----------
    model : torch.nn.Module
        An ``AutoModelForSequenceClassification`` with ``num_labels=1``; a causal
        LM with ``head="scalar"``, ``"gpm"`` or ``"genrm"``; or a ready
        :class:`~bradley.train.heads.ScalarRewardModel`,
        :class:`~bradley.train.heads.GeneralPreferenceModel` or
        :class:`~bradley.train.heads.GenerativeRewardModel`. Trained in place.
    tokenizer : transformers tokenizer
        Needs a pad token.
    train_dataset, eval_dataset : optional
        Rows in any format :func:`~bradley.train.data.read_preferences` reads:
        pairs for the pairwise losses (with ``margin``, ``is_tie``, ``target``,
        ``strength`` columns as the loss needs), k-wise rows for
        ``plackett-luce`` (``ranks``) and ``regression`` (``scores`` = ratings).
    loss : str, list of str, or a configured loss
        A reward loss of :mod:`bradley.nn` by name (default ``"bt"``), or a
        list of names with ``loss_weights`` in ``loss_kwargs``.
    loss_kwargs : dict, optional
        The loss's hyperparameters (``label_smoothing``, ``center_rewards_coefficient``, ``tie_threshold``).
    head : {None, "scalar", "gpm", "genrm"}
        Head to put on a causal LM (ignored for ready heads; None for a
        sequence-classification model).
    head_kwargs : dict, optional
        For ``"gpm"``: ``dim`` (2k), ``tau``, ``scale_gate``, ``normalize``
        (:class:`~bradley.train.heads.GeneralPreferenceModel`); for ``"genrm"``:
        ``answers`` (default ``("A", "B")``) and ``template``.
    max_length, max_prompt_length : int, optional
        Truncation of prompt + response and of the prompt (counted in
        ``tokenization_report_``).
    args : transformers.TrainingArguments, optional
        Or give HF's options as keywords (``output_dir``, ``learning_rate``,
        ``per_device_train_batch_size``, ``max_steps``, ``num_train_epochs``,
        ``logging_steps``, ``save_steps``, ``seed``, ``bf16``, ...;
        ``report_to`` defaults to ``"none"``). Unknown names are an error.
    callbacks : list, optional
        ``transformers.TrainerCallback`` objects.

    Attributes
    ----------
    trainer : transformers.Trainer
        The underlying trainer (its ``state.log_history`` holds the logs).
    reward_model : RewardModel
        ``score``, ``prefer`` and ``evaluate`` on the model being trained.
    tokenization_report_, eval_tokenization_report_ : TokenizationReport

    Logged: ``loss``, ``rewards/chosen``, ``rewards/rejected``,
    ``rewards/margins``, ``rewards/accuracies`` (as TRL's DPO trainer), and
    TRL ``RewardTrainer``'s ``accuracy``, ``margin``, ``min_reward``,
    ``mean_reward``, ``max_reward`` (over every response, scalar models only);
    ``eval_`` versions from :meth:`evaluate`. For GPM the logged "rewards" are
    ``+-s / (2 tau)`` and for GenRM ``+-d / 2``, so margins are the
    preference logit.

    Examples
    --------
    >>> from bradley.train.toy import toy_preference_dataset, toy_sequence_classifier, toy_tokenizer
    >>> tok = toy_tokenizer()
    >>> trainer = RewardTrainer(toy_sequence_classifier(tok), tok, toy_preference_dataset(16), loss="bt",
    ...                         output_dir="/tmp/bradley-doctest-rm", max_steps=2, per_device_train_batch_size=8,
    ...                         save_strategy="no", use_cpu=True)
    >>> import contextlib, io
    >>> with contextlib.redirect_stdout(io.StringIO()):   # transformers prints the final log line
    ...     result = trainer.train()
    >>> result.global_step
    2
    >>> 0.0 < trainer.prefer("tell me about cats ?", " the cat is good .", " the cat .") < 1.0
    True
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        *,
        loss: Any = "bt",
        loss_kwargs: dict[str, Any] | None = None,
        head: str | None = None,
        head_kwargs: dict[str, Any] | None = None,
        max_length: int | None = None,
        max_prompt_length: int | None = None,
        args: Any = None,
        callbacks: list[Any] | None = None,
        **training_options: Any,
    ) -> None:
        self.args = _training_arguments(args, training_options)
        self.loss = _loss_object(loss, loss_kwargs)
        self.mode = _mode_of(self.loss)
        head_kwargs = dict(head_kwargs or {})
        template = head_kwargs.pop("template", GENRM_TEMPLATE)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.args.seed)  # a head built here starts from the run's seed, not the global RNG
            model = _build_head(model, tokenizer, head, head_kwargs)
        self.model = model
        self.head = _head_of(model)
        if self.head in ("gpm", "genrm") and self.mode != "pair":
            raise ValueError(
                f"{self.head} scores pairs; train it with a pairwise loss (bt, tobt, soft-bt, scaled-bt), "
                f"not {self.loss.name!r}."
            )
        center = getattr(self.loss, "hyperparameters", {}).get("center_rewards_coefficient")
        if self.head in ("gpm", "genrm") and center is not None:
            raise ValueError(f"center_rewards_coefficient centres scalar rewards; a {self.head} has none to centre.")
        if self.head == "sequence-classification" and getattr(model.config, "pad_token_id", None) is None:
            # The classifier reads its score at the last non-pad token, which it finds by the pad id.
            model.config.pad_token_id = tokenizer.pad_token_id
        self.reward_model = RewardModel(
            model, tokenizer, self.head, max_length=max_length, max_prompt_length=max_prompt_length, template=template
        )
        self.tokenizer = tokenizer
        self.tokenization_report_: TokenizationReport | None = None
        self.eval_tokenization_report_: TokenizationReport | None = None
        train, collate = None, None
        if train_dataset is not None:
            train, self.tokenization_report_, collate = self._prepare(train_dataset, "train_dataset")
        evaluation = None
        if eval_dataset is not None:
            evaluation, self.eval_tokenization_report_, eval_collate = self._prepare(eval_dataset, "eval_dataset")
            collate = collate or eval_collate
        self._eval_rows = eval_dataset
        self.trainer = _hf_trainer_class()(
            model=model,
            args=self.args,
            train_dataset=train,
            eval_dataset=evaluation,
            data_collator=collate,
            processing_class=tokenizer,
            callbacks=callbacks,
            head=self.head,
            preference_loss=self.loss,
            mode=self.mode,
        )
        self.trainer.padding_report = self.tokenization_report_

    def _prepare(self, data: Any, name: str) -> tuple[Any, TokenizationReport, Any]:
        dataset, report, collate = self.reward_model.prepare(data)
        # Padding is counted in the training loop instead (compute_loss): counts made in DataLoader workers would
        # stay there, and evaluation batches would land in the training report.
        collate = dataclasses.replace(collate, report=None)
        wanted = "list" if self.mode in ("list", "ratings") else "pair"
        if report.format != wanted:
            kind = "k-wise rows (prompt, responses, ranks/scores)" if wanted == "list" else "pairs"
            raise ValueError(
                f"{name}: the loss {self.loss.name!r} trains on {kind}, but the rows are {report.format!r}."
            )
        columns = set(dataset.column_names)
        if self.mode == "ratings" and "scores" not in columns:
            raise ValueError(f"{name}: the regression loss needs a 'scores' column (one rating per response).")
        needed = [n for n in self.loss.inputs if n not in _MODEL_OUTPUTS and n != "target_ratings"]
        missing = [n for n in needed if n not in columns and not (n == "ranks" and "scores" in columns)]
        if missing:
            raise ValueError(
                f"{name}: the loss {self.loss.name!r} needs column(s) {missing} "
                f"({', '.join(_COLUMN_OF.get(m, m) for m in missing)}); the data have {sorted(columns)}."
            )
        return dataset, report, collate

    # -- running

    def train(self, resume_from_checkpoint: str | bool | None = None) -> Any:
        """Run training; returns ``transformers.TrainOutput`` (``global_step``, ``training_loss``, ``metrics``).

        ``resume_from_checkpoint``: a checkpoint folder, or True for the last
        one in ``output_dir`` (model, optimiser, scheduler, RNG and data order
        are restored by ``transformers.Trainer``).
        """
        if self.trainer.train_dataset is None:
            raise ValueError("no train_dataset was given.")
        output = self.trainer.train(resume_from_checkpoint=resume_from_checkpoint)
        report = self.tokenization_report_
        if report is not None:
            # The padding share is known only once batches were collated.
            logger.info("RewardTrainer after training: %s", report.summary())
            if report.padding_fraction is not None:
                output.metrics["padding_fraction"] = report.padding_fraction
        return output

    def evaluate(self, eval_dataset: Any = None) -> dict[str, float]:
        """``transformers.Trainer.evaluate``: ``eval_loss`` and the ``eval_rewards/...`` metrics."""
        prepared = None
        if eval_dataset is not None:
            prepared, _, _ = self._prepare(eval_dataset, "eval_dataset")
        return dict(self.trainer.evaluate(eval_dataset=prepared))

    def evaluate_pairs(self, dataset: Any = None, *, bins: int = 10) -> pd.DataFrame:
        """Held-out accuracy, log-loss, ECE and Brier score, overall and per category (:meth:`RewardModel.evaluate`).

        Uses ``eval_dataset`` when ``dataset`` is absent.
        """
        rows = self._eval_rows if dataset is None else dataset
        if rows is None:
            raise ValueError("no dataset to evaluate: give one or build the trainer with eval_dataset.")
        return self.reward_model.evaluate(rows, bins=bins)

    def score(self, prompt: Any, response: Any) -> Any:
        """:meth:`RewardModel.score` on the trained model."""
        return self.reward_model.score(prompt, response)

    def prefer(self, prompt: Any, a: Any, b: Any) -> Any:
        """:meth:`RewardModel.prefer` on the trained model: ``P(a beats b | prompt)``."""
        return self.reward_model.prefer(prompt, a, b)

    def save_model(self, output_dir: str | None = None) -> None:
        """Save the model (``save_pretrained`` for HF models, a state dict for heads) and the tokenizer."""
        self.trainer.save_model(output_dir)


def _build_head(model: Any, tokenizer: Any, head: str | None, head_kwargs: dict[str, Any]) -> Any:
    ready = (ScalarRewardModel, GeneralPreferenceModel, GenerativeRewardModel)
    if isinstance(model, ready):
        if head is not None and head != _head_of(model):
            raise ValueError(f"head={head!r} but the model is already a {type(model).__name__}.")
        if head_kwargs:
            raise ValueError(
                f"head_kwargs {sorted(head_kwargs)} apply when the trainer builds the head, not to a ready one."
            )
        return model
    if head is None or head == "sequence-classification":
        if head_kwargs:
            raise ValueError(f"head_kwargs {sorted(head_kwargs)} need head='scalar', 'gpm' or 'genrm'.")
        _head_of(model)  # a sequence classifier, or a clear error
        return model
    if head == "scalar":
        return ScalarRewardModel(model, **head_kwargs)
    if head == "gpm":
        return GeneralPreferenceModel(model, **head_kwargs)
    if head == "genrm":
        answers = tuple(head_kwargs.pop("answers", ("A", "B")))
        if head_kwargs:
            raise ValueError(f"unknown GenRM option(s) {sorted(head_kwargs)}; valid: answers, template.")
        if len(answers) != 2:
            raise ValueError(f"answers must be two strings (for A and B), got {answers!r}.")
        return GenerativeRewardModel(model, GenerativeRewardModel.answer_ids(tokenizer, (answers[0], answers[1])))
    raise ValueError(f"head must be None, 'scalar', 'gpm' or 'genrm', got {head!r}.")
