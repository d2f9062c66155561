"""Reward-model heads on Hugging Face backbones: scalar, general preference (GPM) and generative (GenRM).

Three ways to turn a language model into a preference model, each a small
``torch.nn.Module`` around a ``transformers`` backbone, all reading a
right-padded batch (``input_ids``, ``attention_mask``) as the collators of
:mod:`bradley.train.data` make it:

* :class:`ScalarRewardModel` -- ``r(x, y)``: a ``Linear(H, 1)`` on the hidden
  state of the last non-padding token (for a causal LM; an
  ``AutoModelForSequenceClassification`` with ``num_labels=1`` is used as it is).
  ``P(y1 > y2 | x) = sigmoid(r1 - r2)``.
* :class:`GeneralPreferenceModel` -- GPM (Zhang et al. 2025, sheet A9): a
  ``2k``-dimensional embedding per (prompt, response) and the skew-symmetric
  score :func:`gpm_score`, ``s(y1 > y2 | x) = <R v1, v2>`` with ``R`` made of
  ``k`` 2-D rotation blocks, optionally scaled per block by a prompt-dependent
  gate; ``P(y1 > y2 | x) = sigmoid(s / tau)``. ``s`` can be intransitive
  (rock-paper-scissors), which no scalar reward can.
* :class:`GenerativeRewardModel` -- GenRM: a causal LM asked which of two
  responses is better (:data:`GENRM_TEMPLATE`, responses labelled A and B),
  its preference read from the next-token logits of the answer tokens.

Needs the ``train`` extra; ``transformers`` is never imported here (the
backbones are passed in).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

__all__ = [
    "GENRM_TEMPLATE",
    "GeneralPreferenceModel",
    "GenerativeRewardModel",
    "ScalarRewardModel",
    "backbone_hidden_states",
    "gpm_score",
    "last_token_index",
]

Tensor = torch.Tensor


def last_token_index(attention_mask: Tensor) -> Tensor:
    """Index of the last attended token of each right-padded row, ``(N,)``.

    Examples
    --------
    >>> last_token_index(torch.tensor([[1, 1, 0], [1, 1, 1]])).tolist()
    [1, 2]
    """
    if attention_mask.dim() != 2:
        raise ValueError(f"attention_mask must have shape (N, T), got {tuple(attention_mask.shape)}.")
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    # The largest attended position (not sum - 1), so a row with a hole or left padding is read right too.
    return (positions * attention_mask.bool()).argmax(-1)


def _gather_rows(hidden: Tensor, index: Tensor) -> Tensor:
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), index]


def _hidden_size(model: Any) -> int:
    config = getattr(model, "config", None)
    for name in ("hidden_size", "n_embd", "d_model"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    text = getattr(config, "text_config", None)
    if text is not None and isinstance(getattr(text, "hidden_size", None), int):
        return int(text.hidden_size)
    raise ValueError(
        f"cannot read the hidden size of {type(model).__name__} from its config; pass hidden_size= explicitly."
    )


def backbone_hidden_states(model: Any, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
    """Last-layer hidden states ``(N, T, H)`` of a ``transformers`` model, without its LM head when possible.

    A ``*ForCausalLM`` (or PEFT-wrapped one) is run through its decoder
    (``model.get_decoder()`` / ``model.base_model``), so no ``(N, T, V)``
    logits are made; other models with ``output_hidden_states=True``.
    """
    decoder = None
    get_decoder = getattr(model, "get_decoder", None)
    if callable(get_decoder):
        try:
            decoder = get_decoder()
        except (AttributeError, NotImplementedError):
            decoder = None
    if decoder is not None and decoder is not model:
        out = decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        hidden = getattr(out, "last_hidden_state", None)
        if hidden is not None:
            return hidden
    out = model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True, use_cache=False)
    hidden = getattr(out, "last_hidden_state", None)
    return hidden if hidden is not None else out.hidden_states[-1]


class ScalarRewardModel(nn.Module):
    """A causal LM (or any backbone) with a scalar reward head: ``Linear(H, 1)`` at the last non-pad token.

    Parameters
    ----------
    backbone : transformers model
        E.g. ``AutoModelForCausalLM.from_pretrained(...)`` or ``AutoModel``.
    hidden_size : int, optional
        Read from ``backbone.config`` when absent.

    ``forward(input_ids, attention_mask)`` returns rewards ``(N,)``. The head
    starts at zero weight and bias, so every reward is 0 before training.

    Examples
    --------
    >>> from bradley.train.toy import toy_causal_lm, toy_tokenizer
    >>> tok = toy_tokenizer()
    >>> rm = ScalarRewardModel(toy_causal_lm(tok))
    >>> batch = tok(["the cat", "the dog is good"], padding=True, return_tensors="pt")
    >>> rm(batch["input_ids"], batch["attention_mask"]).tolist()
    [0.0, 0.0]
    """

    def __init__(self, backbone: Any, hidden_size: int | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        size = _hidden_size(backbone) if hidden_size is None else hidden_size
        self.head = nn.Linear(size, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.config = getattr(backbone, "config", None)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        hidden = backbone_hidden_states(self.backbone, input_ids, attention_mask)
        last = _gather_rows(hidden, last_token_index(attention_mask))
        return self.head(last.to(self.head.weight.dtype)).squeeze(-1)


def gpm_score(v1: Tensor, v2: Tensor, scales: Tensor | None = None) -> Tensor:
    """GPM's skew-symmetric preference score ``s(y1 > y2) = <R v1, v2>`` (sheet A9).

    ``R = blockdiag(R_1 .. R_k)`` with ``R_l = [[0, -1], [1, 0]]``, so
    ``s = sum_l scale_l * (v1[2l] v2[2l+1] - v1[2l+1] v2[2l])``.

    Parameters
    ----------
    v1, v2 : (..., 2k)
        Preference embeddings of the two responses.
    scales : (..., k), optional
        Per-block eigenvalue scales (the prompt gate); 1 when absent.

    Returns
    -------
    torch.Tensor of shape (...,)
        ``s(y1 > y2) = -s(y2 > y1)``; ``s(y, y) = 0``.

    Examples
    --------
    >>> gpm_score(torch.tensor([3.0, 1.0]), torch.tensor([2.0, 1.0]))   # v = (r, 1): s = r1 - r2
    tensor(1.)
    """
    if v1.shape != v2.shape:
        raise ValueError(f"gpm_score: v1 has shape {tuple(v1.shape)} but v2 has shape {tuple(v2.shape)}.")
    if v1.shape[-1] % 2:
        raise ValueError(f"gpm_score: embeddings must have an even last dimension 2k, got {v1.shape[-1]}.")
    a = v1.unflatten(-1, (-1, 2))
    b = v2.unflatten(-1, (-1, 2))
    blocks = a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]  # (..., k)
    if scales is not None:
        if scales.shape != blocks.shape:
            raise ValueError(
                f"gpm_score: scales has shape {tuple(scales.shape)}; expected {tuple(blocks.shape)} (one per block)."
            )
        blocks = blocks * scales
    return blocks.sum(-1)


class GeneralPreferenceModel(nn.Module):
    """GPM: a ``2k``-dimensional preference embedding per (prompt, response) and a skew-symmetric score.

    ``P(y1 > y2 | x) = sigmoid(gpm_score(v1, v2, lambda(x)) / tau)``.

    Parameters
    ----------
    backbone : transformers model
        A causal LM or encoder; the embedding is a linear map of the hidden
        state at the last non-pad token (the authors' ``value_head_dim = 2k``).
    dim : int
        Embedding size ``2k`` (even). The authors' script uses 2; their
        released 8B model 6.
    tau : float
        Temperature: ``P = sigmoid(s / tau)``. 0.1 as the authors' training
        script (the paper writes ``sigmoid(s)``, i.e. ``tau = 1``).
    scale_gate : {None, "code", "paper"}
        Prompt-dependent eigenvalue scales ``lambda(x) = k * softmax(W h_x / sqrt(H))``
        from the hidden state ``h_x`` at the last prompt token. ``"code"``
        multiplies block ``l`` by ``lambda_l`` (the authors' code); ``"paper"``
        by ``lambda_l ** 2`` (the paper's ``D(x) R D(x)``). None: no gate.
    normalize : bool
        L2-normalise each embedding to unit length, as the paper says (the
        authors' code at HEAD has it commented out, hence the default False).
    hidden_size : int, optional
        Read from ``backbone.config`` when absent.

    ``forward(input_ids, attention_mask, prompt_index=None)`` returns
    ``(embeddings (N, 2k), scales (N, k) or None)``; ``prompt_index`` (the
    last prompt token of each row) is needed with a gate.

    Examples
    --------
    >>> from bradley.train.toy import toy_causal_lm, toy_tokenizer
    >>> tok = toy_tokenizer()
    >>> gpm = GeneralPreferenceModel(toy_causal_lm(tok), dim=4, normalize=True)
    >>> batch = tok(["the cat", "the dog is good"], padding=True, return_tensors="pt")
    >>> v, scales = gpm(batch["input_ids"], batch["attention_mask"])
    >>> tuple(v.shape), scales is None, round(float(v[0].norm()), 6)
    ((2, 4), True, 1.0)
    """

    def __init__(
        self,
        backbone: Any,
        dim: int = 2,
        *,
        tau: float = 0.1,
        scale_gate: str | None = None,
        normalize: bool = False,
        hidden_size: int | None = None,
    ) -> None:
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 2 or dim % 2:
            raise ValueError(f"dim must be an even int >= 2 (k rotation blocks of size 2), got {dim!r}.")
        if not tau > 0:
            raise ValueError(f"tau must be positive, got {tau!r}.")
        if scale_gate not in (None, "code", "paper"):
            raise ValueError(f"scale_gate must be None, 'code' or 'paper', got {scale_gate!r}.")
        self.backbone = backbone
        size = _hidden_size(backbone) if hidden_size is None else hidden_size
        self.dim, self.tau, self.scale_gate, self.normalize = dim, float(tau), scale_gate, bool(normalize)
        self.head = nn.Linear(size, dim)
        self.gate = nn.Linear(size, dim // 2, bias=False) if scale_gate is not None else None
        self._gate_scale = 1.0 / math.sqrt(size)
        self.config = getattr(backbone, "config", None)

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor, prompt_index: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        hidden = backbone_hidden_states(self.backbone, input_ids, attention_mask)
        last = _gather_rows(hidden, last_token_index(attention_mask)).to(self.head.weight.dtype)
        v = self.head(last)
        if self.normalize:
            v = nn.functional.normalize(v, dim=-1)
        if self.gate is None:
            return v, None
        if prompt_index is None:
            raise ValueError("GeneralPreferenceModel with a scale gate needs prompt_index (last prompt token per row).")
        h_prompt = _gather_rows(hidden, prompt_index).to(self.gate.weight.dtype)
        k = self.dim // 2
        scales = k * torch.softmax(self.gate(h_prompt) * self._gate_scale, dim=-1)
        if self.scale_gate == "paper":
            scales = scales**2
        return v, scales

    def score(self, v1: Tensor, v2: Tensor, scales: Tensor | None = None) -> Tensor:
        """``s(y1 > y2 | x) / tau``: the logit of ``P(y1 > y2 | x)``."""
        return gpm_score(v1, v2, scales) / self.tau


#: The default GenRM question. ``{prompt}``, ``{a}`` and ``{b}`` are filled with the
#: prompt and the two responses (chat messages rendered as ``role: content`` lines).
GENRM_TEMPLATE = (
    "Which response to the prompt is better?\n\n"
    "Prompt:\n{prompt}\n\n"
    "Response A:\n{a}\n\n"
    "Response B:\n{b}\n\n"
    "Answer with A or B."
)


class GenerativeRewardModel(nn.Module):
    """GenRM: a causal LM judging "which response is better, A or B?" from its next-token logits.

    The judge prompt (:data:`GENRM_TEMPLATE`, rendered with the tokenizer's
    chat template when it has one) is run once per order: ``(A, B) = (y1, y2)``
    and ``(A, B) = (y2, y1)``. In each, ``z = logit(answer A) - logit(answer B)``
    is the log-odds ``log P(A) / P(B)`` of the softmax over the two answer
    tokens. The preference logit is ``d = (z_(y1,y2) - z_(y2,y1)) / 2``, so
    ``P(y1 > y2 | x) = sigmoid(d)`` does not depend on which response was
    shown first (a constant position bias cancels), and ``d(y1, y2) = -d(y2, y1)``.

    Parameters
    ----------
    model : transformers causal LM
    answer_token_ids : (int, int)
        Token ids of the answers "A" and "B" (:meth:`answer_ids` finds them).

    ``forward(input_ids, attention_mask)`` returns ``z`` ``(N,)`` at each
    row's last attended token; the LM head is applied there only.
    """

    def __init__(self, model: Any, answer_token_ids: tuple[int, int]) -> None:
        super().__init__()
        a, b = (int(i) for i in answer_token_ids)
        if a == b:
            raise ValueError(f"answer_token_ids must be two different tokens, got {answer_token_ids!r}.")
        self.backbone = model
        self.answer_token_ids = (a, b)
        self.config = getattr(model, "config", None)

    @staticmethod
    def answer_ids(tokenizer: Any, answers: tuple[str, str] = ("A", "B")) -> tuple[int, int]:
        """Token ids of the two answer strings, each of which must be one token.

        Examples
        --------
        >>> from bradley.train.toy import TOY_WORDS, toy_tokenizer
        >>> tok = toy_tokenizer([*TOY_WORDS, "A", "B"])
        >>> a, b = GenerativeRewardModel.answer_ids(tok)
        >>> tok.convert_ids_to_tokens([a, b])
        ['A', 'B']
        """
        ids = []
        for answer in answers:
            tokens = tokenizer(answer, add_special_tokens=False)["input_ids"]
            if len(tokens) != 1 or tokens[0] == getattr(tokenizer, "unk_token_id", None):
                raise ValueError(
                    f"GenRM answer {answer!r} must be exactly one known token of the tokenizer; it is {tokens!r}. "
                    "Choose answers that are single tokens (e.g. ' A' / ' B' for some BPE vocabularies)."
                )
            ids.append(tokens[0])
        return ids[0], ids[1]

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        hidden = backbone_hidden_states(self.backbone, input_ids, attention_mask)
        last = _gather_rows(hidden, last_token_index(attention_mask))
        head = self.backbone.get_output_embeddings()
        # Only the two answer rows of the LM head are needed: log P(A) - log P(B) = logit_A - logit_B.
        rows = head.weight[list(self.answer_token_ids)]
        logits = last.to(rows.dtype) @ rows.T
        bias = getattr(head, "bias", None)
        if bias is not None:
            logits = logits + bias[list(self.answer_token_ids)]
        scale = getattr(self.config, "logit_scale", None)  # Cohere-style output scaling
        if isinstance(scale, (int, float)):
            logits = logits * scale
        cap = getattr(self.config, "final_logit_softcapping", None)  # Gemma-2 style soft cap
        if isinstance(cap, (int, float)) and cap > 0:
            logits = torch.tanh(logits / cap) * cap
        return logits[:, 0] - logits[:, 1]
