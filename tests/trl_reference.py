"""Run TRL 1.16's own loss code on given per-token log-probs (the reference for tests/test_nn_dpo.py).

TRL computes log-probs through its fused LM head in float32, so the trainers
here are fed stub models that return the caller's float64 values:

* DPO and KTO: a real ``DPOTrainer`` / ``KTOTrainer`` built on a tiny
  ``LlamaForCausalLM`` (config only) and a word-level tokenizer made locally;
  nothing is downloaded. ``_compute_loss`` is then called with a stub policy
  (and stub reference) returning ``FusedCausalLMOutput``.
* CPO and ORPO: ``CPOTrainer`` / ``ORPOTrainer`` are made with ``__new__`` and
  the attributes ``get_batch_loss_metrics`` reads (building them needs their
  own data pipeline); their real ``get_batch_loss_metrics`` runs on a stub
  model returning the caller's logits.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from types import SimpleNamespace

import torch

VOCAB = {"<pad>": 0, "<eos>": 1, "a": 2, "b": 3, "c": 4, "d": 5}


def tiny_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(VOCAB, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")


def tiny_model():
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(VOCAB),
        hidden_size=8,
        intermediate_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=32,
    )
    return LlamaForCausalLM(config).double()


def build_dpo_trainer():
    """A real DPOTrainer (no downloads). Per test, set its loss attributes and call :func:`trl_dpo_loss`."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    data = Dataset.from_dict({"prompt": ["a b"] * 4, "chosen": [" c"] * 4, "rejected": [" d"] * 4})
    args = DPOConfig(output_dir=tempfile.mkdtemp(), report_to="none", use_cpu=True, precompute_ref_log_probs=False)
    # An explicit ref_model keeps TRL from loading one by name; the tests swap in a stub.
    return DPOTrainer(
        model=tiny_model(), ref_model=tiny_model(), args=args, train_dataset=data, processing_class=tiny_tokenizer()
    )


def build_kto_trainer():
    from datasets import Dataset
    from trl import KTOConfig, KTOTrainer

    data = Dataset.from_dict({"prompt": ["a b"] * 4, "completion": [" c"] * 4, "label": [True, False] * 2})
    args = KTOConfig(output_dir=tempfile.mkdtemp(), report_to="none", use_cpu=True, per_device_train_batch_size=2)
    return KTOTrainer(
        model=tiny_model(), ref_model=tiny_model(), args=args, train_dataset=data, processing_class=tiny_tokenizer()
    )


class FusedStub(torch.nn.Module):
    """Stands in for a model with TRL's fused LM head: returns given per-token log-probs.

    ``outputs`` maps ``id(input_ids)`` to ``(log_probs, log_sum_sq_probs)``, so one
    stub answers a main and a KL forward (KTO) with different values.
    """

    def __init__(self, outputs: dict[int, tuple[torch.Tensor, torch.Tensor | None]]) -> None:
        super().__init__()
        self.outputs = outputs

    def forward(self, input_ids, **kwargs):
        from trl.trainer.utils import FusedCausalLMOutput

        log_probs, log_sum_sq = self.outputs[id(input_ids)]
        zeros = torch.zeros_like(log_probs)
        return FusedCausalLMOutput(
            log_probs=log_probs,
            entropy=zeros,
            log_sum_sq_probs=zeros if log_sum_sq is None else log_sum_sq,
            mean_logits=zeros,
            is_top1=torch.zeros_like(log_probs, dtype=torch.bool),
        )


def trl_dpo_loss(trainer, data: dict, **settings) -> torch.Tensor:
    """TRL's ``DPOTrainer._compute_loss`` on per-token data ``(2B, T-1)`` (chosen rows first).

    ``data``: ``completion_mask`` (2B, T), ``policy`` and ``ref`` per-token
    log-probs, ``log_sum_sq`` (2B, T-1). ``settings`` set the trainer's loss
    attributes (``loss_types``, ``loss_weights``, ``beta``, ``label_smoothing``,
    ``f_divergence_type``, ``f_alpha_divergence_coef``, ``ld_alpha``,
    ``use_weighting``, ``discopop_tau``).
    """
    defaults = {
        "loss_weights": None,
        "beta": 0.1,
        "label_smoothing": 0.0,
        "f_divergence_type": "reverse_kl",
        "f_alpha_divergence_coef": 0.5,
        "ld_alpha": None,
        "use_weighting": False,
        "discopop_tau": 0.05,
        "precompute_ref_logps": False,
    }
    defaults.update(settings)
    for name, value in defaults.items():
        if name == "discopop_tau":
            trainer.args.discopop_tau = value
        elif name == "loss_weights":
            trainer.loss_weights = value or [1.0] * len(defaults["loss_types"])
        else:
            setattr(trainer, name, value)
    mask = data["completion_mask"]
    input_ids = torch.full(mask.shape, 2, dtype=torch.long)
    inputs = {"input_ids": input_ids, "attention_mask": torch.ones_like(mask), "completion_mask": mask}
    policy = FusedStub({id(input_ids): (data["policy"], data.get("log_sum_sq"))})
    if defaults["precompute_ref_logps"]:
        inputs["ref_chosen_logps"], inputs["ref_rejected_logps"] = data["ref"].sum(-1).chunk(2)
    else:
        trainer.ref_model = FusedStub({id(input_ids): (data["ref"], None)})
    return trainer._compute_loss(policy, inputs, return_outputs=False)


def trl_kto_loss(trainer, data: dict, *, loss_type: str = "kto", **settings) -> torch.Tensor:
    """TRL's ``KTOTrainer._compute_loss``: ``data`` has ``completion_mask`` (N, T), ``label`` (N,), per-token
    ``policy`` / ``ref`` (N, T-1) and, for ``kto``, ``kl_policy`` / ``kl_ref`` (N, T-1) for the KL batch."""
    trainer.loss_type = loss_type
    trainer.calculate_KL = loss_type == "kto"
    trainer.precompute_ref_logps = True
    for name, value in {"beta": 0.1, "desirable_weight": 1.0, "undesirable_weight": 1.0, **settings}.items():
        setattr(trainer, name, value)
    mask = data["completion_mask"]
    input_ids = torch.full(mask.shape, 2, dtype=torch.long)
    kl_ids = torch.full(mask.shape, 3, dtype=torch.long)
    inputs = {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(mask),
        "completion_mask": mask,
        "label": data["label"],
        "ref_logps": data["ref"].sum(-1),
    }
    outputs = {id(input_ids): (data["policy"], None)}
    if trainer.calculate_KL:
        inputs.update(KL_input_ids=kl_ids, KL_attention_mask=torch.ones_like(mask), KL_completion_mask=mask)
        inputs["ref_KL_logps"] = data["kl_ref"].sum(-1)
        outputs[id(kl_ids)] = (data["kl_policy"], None)
    return trainer._compute_loss(FusedStub(outputs), inputs, return_outputs=False)


class _LogitsStub(torch.nn.Module):
    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, input_ids, **kwargs):
        return SimpleNamespace(logits=self.logits)


def _bare(cls, **attributes):
    trainer = cls.__new__(cls)
    trainer.accelerator = SimpleNamespace(device=torch.device("cpu"), gather_for_metrics=lambda x: x)
    trainer.is_encoder_decoder = False
    trainer.aux_loss_enabled = False
    for name, value in attributes.items():
        setattr(trainer, name, value)
    return trainer


def _sequence_batch(input_ids: torch.Tensor, labels: torch.Tensor, attention_mask: torch.Tensor) -> dict:
    half = input_ids.shape[0] // 2
    batch = {}
    for side, rows in (("chosen", slice(0, half)), ("rejected", slice(half, None))):
        batch[f"{side}_input_ids"] = input_ids[rows]
        batch[f"{side}_attention_mask"] = attention_mask[rows]
        batch[f"{side}_labels"] = labels[rows]
    return batch


def trl_cpo_loss(logits, input_ids, labels, attention_mask, *, loss_type="sigmoid", **settings) -> torch.Tensor:
    """TRL's ``CPOTrainer.get_batch_loss_metrics`` on given logits (2B, T, V), chosen rows first."""
    from trl.experimental.cpo import CPOTrainer

    attributes = {"beta": 0.1, "label_smoothing": 0.0, "cpo_alpha": 1.0, "simpo_gamma": 0.5, **settings}
    trainer = _bare(CPOTrainer, loss_type=loss_type, alpha=0.0, pad_token_id=0, **attributes)
    loss, _ = trainer.get_batch_loss_metrics(_LogitsStub(logits), _sequence_batch(input_ids, labels, attention_mask))
    return loss


def trl_orpo_loss(logits, input_ids, labels, attention_mask, *, beta=0.1) -> torch.Tensor:
    """TRL's ``ORPOTrainer.get_batch_loss_metrics`` on given logits (2B, T, V), chosen rows first."""
    from trl.experimental.orpo import ORPOTrainer

    trainer = _bare(ORPOTrainer, beta=beta, padding_value=0)
    trainer._metrics = defaultdict(list)
    loss, _ = trainer.get_batch_loss_metrics(_LogitsStub(logits), _sequence_batch(input_ids, labels, attention_mask))
    return loss
