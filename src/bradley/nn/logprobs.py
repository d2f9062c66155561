"""From model logits (or hidden states) to the log-probabilities that preference losses take.

One convention, used everywhere in :mod:`bradley.nn`: ``logits`` has shape
``(B, T, V)`` for a causal language model and ``labels`` shape ``(B, T)``,
aligned as the model saw them (``labels[:, t]`` is the token at position
``t``). The logits at position ``t`` predict the token at ``t + 1``, so both
are shifted by one here. Positions whose label equals ``ignore_index`` (prompt
and padding) are masked out; an explicit boolean ``mask`` (same shape as
``labels``, True = response token) may be given instead.

Three ways in, one result (:class:`SequenceLogProbs`):

* :func:`sequence_logprobs` from logits, or from a Hugging Face model output
  (anything with a ``.logits`` attribute);
* :func:`chunked_sequence_logprobs` from the last hidden states and the LM head
  weight, never holding the ``(tokens, V)`` float32 logits of the batch;
* :func:`model_logprobs` from a Hugging Face causal LM and token ids (chunked
  by default), and :func:`paired_model_logprobs` for chosen and rejected in
  one forward pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

__all__ = [
    "EXTRAS",
    "SequenceLogProbs",
    "chunked_sequence_logprobs",
    "model_logprobs",
    "paired_model_logprobs",
    "sequence_kl",
    "sequence_logprobs",
]

#: Optional per-token quantities that can be asked for with ``extra=``.
EXTRAS = ("entropy", "log_sum_sq_probs")

# About this many logits per chunk (256 MiB in float32) when ``chunk_size`` is not given.
_DEFAULT_CHUNK_ELEMENTS = 1 << 26
# Token chunks and vocabulary slices are rounded to multiples of this (alignment of the GEMM operands).
_ALIGN = 128


@dataclass
class SequenceLogProbs:
    """Per-token and per-sequence log-probabilities of response tokens.

    Attributes
    ----------
    per_token : torch.Tensor, shape (B, T-1)
        ``log p(label_{t+1} | prefix)``, zero at masked positions.
    mask : torch.Tensor, shape (B, T-1), bool
        True at response tokens.
    sum : torch.Tensor, shape (B,)
        Summed log-probability ``S(y)``.
    avg : torch.Tensor, shape (B,)
        Length-normalised log-probability ``A(y) = S(y) / |y|`` (zero when
        ``|y| = 0``).
    lengths : torch.Tensor, shape (B,)
        Number of response tokens ``|y|``.
    entropy : torch.Tensor or None, shape (B, T-1)
        Entropy of the next-token distribution, zero at masked positions;
        differentiable. Only when asked for with ``extra=("entropy",)``.
    log_sum_sq_probs : torch.Tensor or None, shape (B, T-1)
        ``log sum_v p_v^2`` of the next-token distribution (WPO's weighting),
        zero at masked positions; carries no gradient. Only when asked for.
    """

    per_token: torch.Tensor
    mask: torch.Tensor
    sum: torch.Tensor
    avg: torch.Tensor
    lengths: torch.Tensor
    entropy: torch.Tensor | None = None
    log_sum_sq_probs: torch.Tensor | None = None


def _check_extra(extra: Sequence[str]) -> tuple[bool, bool]:
    if isinstance(extra, str):
        extra = (extra,)
    unknown = [name for name in extra if name not in EXTRAS]
    if unknown:
        raise ValueError(f"extra has unknown name(s) {unknown}; valid: {list(EXTRAS)}.")
    return "entropy" in extra, "log_sum_sq_probs" in extra


def _shifted_targets(
    labels: torch.Tensor, mask: torch.Tensor | None, ignore_index: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Next-token targets (B, T-1), zero where masked, and the mask of scored positions."""
    targets = labels[:, 1:]
    if mask is None:
        keep = targets != ignore_index
    else:
        if mask.shape != labels.shape:
            raise ValueError(f"mask must have the shape of labels {tuple(labels.shape)}, got {tuple(mask.shape)}.")
        keep = mask[:, 1:].bool()
    return torch.where(keep, targets, torch.zeros_like(targets)), keep


def _shifted(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None, ignore_index: int):
    if logits.dim() != 3 or labels.dim() != 2 or logits.shape[:2] != labels.shape:
        raise ValueError(
            f"expected logits (B, T, V) and labels (B, T); got {tuple(logits.shape)} and {tuple(labels.shape)}."
        )
    targets, keep = _shifted_targets(labels, mask, ignore_index)
    return logits[:, :-1, :], targets, keep


def _entropy(logp_all: torch.Tensor) -> torch.Tensor:
    """``-sum_v p_v log p_v`` over the last axis, with ``0 log 0 = 0`` at -inf log-probs (banned tokens).

    ``exp(-inf) * -inf`` is NaN; the -inf entries are replaced by 0 inside a
    ``torch.where`` so that neither the value nor the gradient sees them.
    """
    finite = logp_all > -math.inf
    return -(logp_all.exp() * torch.where(finite, logp_all, torch.zeros_like(logp_all))).sum(-1)


def _reduce(
    per_token: torch.Tensor,
    keep: torch.Tensor,
    entropy: torch.Tensor | None = None,
    log_sum_sq_probs: torch.Tensor | None = None,
) -> SequenceLogProbs:
    lengths = keep.sum(-1)
    total = per_token.sum(-1)
    return SequenceLogProbs(per_token, keep, total, total / lengths.clamp(min=1), lengths, entropy, log_sum_sq_probs)


def sequence_logprobs(
    logits: Any,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    ignore_index: int = -100,
    *,
    extra: Sequence[str] = (),
) -> SequenceLogProbs:
    """Summed, length-normalised and per-token log-probs of the labelled tokens.

    Computed in float32 or wider (``log_softmax`` of bfloat16 logits loses
    too much), whatever the logits' dtype.

    Parameters
    ----------
    logits : torch.Tensor of shape (B, T, V), or a model output
        Logits, or anything with a ``.logits`` attribute (e.g. a Hugging Face
        ``CausalLMOutputWithPast``).
    labels : torch.Tensor of shape (B, T)
        Token ids as the model saw them; ``ignore_index`` marks prompt and padding.
    mask : torch.Tensor of shape (B, T), optional
        True at response tokens; replaces the ``ignore_index`` test.
    ignore_index : int
        Label value of positions that are not scored.
    extra : sequence of str
        Any of ``"entropy"``, ``"log_sum_sq_probs"``: per-token extras to fill.

    Examples
    --------
    >>> import torch
    >>> logits = torch.zeros(1, 3, 4)            # uniform over 4 tokens
    >>> labels = torch.tensor([[-100, 2, 1]])    # first position is prompt
    >>> out = sequence_logprobs(logits, labels, extra=("entropy",))
    >>> round(out.sum.item(), 6), out.lengths.tolist()
    (-2.772589, [2])
    >>> [round(h, 6) for h in out.entropy[0].tolist()]   # log 4 at scored positions
    [1.386294, 1.386294]
    """
    want_entropy, want_sq = _check_extra(extra)
    if not isinstance(logits, torch.Tensor):
        inner = getattr(logits, "logits", None)
        if not isinstance(inner, torch.Tensor):
            raise TypeError(
                f"logits must be a torch.Tensor (B, T, V) or a model output with a .logits tensor; "
                f"got {type(logits).__name__}."
            )
        logits = inner
    logits, targets, keep = _shifted(logits, labels, mask, ignore_index)
    work = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    logp_all = work.log_softmax(-1)
    # Masked positions gather token 0, whose log-prob may be -inf: select, never multiply by the mask.
    zero = logp_all.new_zeros(())
    token_logps = torch.where(keep, torch.gather(logp_all, 2, targets.unsqueeze(-1)).squeeze(-1), zero)
    entropy = log_sum_sq = None
    if want_entropy:
        entropy = torch.where(keep, _entropy(logp_all), zero)
    if want_sq:
        with torch.no_grad():
            log_sum_sq = torch.where(keep, torch.logsumexp(2.0 * logp_all, -1), zero)
    return _reduce(token_logps, keep, entropy, log_sum_sq)


# ---------------------------------------------------------------- chunked LM head


def _transform(y: torch.Tensor, scale: float, softcap: float | None, inv_temperature: float) -> torch.Tensor:
    """Raw head outputs -> logits as the model reports them: scale, tanh soft-cap, temperature."""
    if scale != 1.0:
        y = y * scale
    if softcap is not None:
        y = softcap * torch.tanh(y / softcap)
    if inv_temperature != 1.0:
        y = y * inv_temperature
    return y


def _head_product(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    # In the inputs' dtype, as the model's own lm_head computes it; the softmax runs in float32 or wider.
    y = hidden @ weight.t()
    return y if bias is None else y.add_(bias)


def _plain_forward(z: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """logsumexp and target log-prob of raw logits ``z`` (inputs' dtype), in float32."""
    zf = z.float()
    lse = torch.logsumexp(zf, -1)
    return lse, zf.gather(1, targets[:, None]).squeeze(1) - lse


def _plain_backward(y: torch.Tensor, lse: torch.Tensor, grad_logp: torch.Tensor, targets: torch.Tensor,
                    start: int) -> torch.Tensor:
    """d loss / d logits of one vocabulary slice, ``g (onehot - p)``, returned in the inputs' dtype."""
    cols = torch.arange(start, start + y.shape[1], device=y.device)
    onehot = (cols[None, :] == targets[:, None]).float()
    return (grad_logp[:, None] * (onehot - torch.exp(y.float() - lse[:, None]))).to(y.dtype)


# On CUDA with Triton, the two functions above are compiled into one fused kernel each (one read of the bf16
# logits, no float32 copies): measured on an H200 the chunked step went from 1.64x to 1.14x the full-logits
# time (first call: ~13 s of compilation). Elsewhere (CPU, or BRADLEY_NO_FUSED_LOGPROBS=1) the chunked
# path runs eagerly as before.
_FUSED: dict[str, Any] = {}


def _fused(device: torch.device) -> dict[str, Any] | None:
    import os

    if device.type != "cuda" or os.environ.get("BRADLEY_NO_FUSED_LOGPROBS"):
        return None
    if not _FUSED:
        try:
            import triton  # noqa: F401  (inductor's GPU backend)
        except ImportError:
            _FUSED["forward"] = None
            return None
        forward = torch.compile(_plain_forward, dynamic=True)
        backward = torch.compile(_plain_backward, dynamic=True)
        try:  # compile once on a tiny problem: a GPU or toolchain Triton cannot serve falls back to eager
            z = torch.zeros(2, 256, device=device, dtype=torch.bfloat16)
            t = torch.zeros(2, dtype=torch.long, device=device)
            lse, _ = forward(z, t)
            backward(z, lse, torch.ones(2, device=device), t, 0)
        except Exception as exc:  # any compiler failure means: run eagerly
            import warnings

            warnings.warn(f"fused log-prob kernels unavailable ({type(exc).__name__}: {exc}); using the eager "
                          "chunked path", RuntimeWarning, stacklevel=3)
            _FUSED["forward"] = None
            return None
        _FUSED.update(forward=forward, backward=backward)
    return _FUSED if _FUSED.get("forward") is not None else None


class _ChunkedHeadLogProbs(torch.autograd.Function):
    """Per-token log-probs (and extras) of ``hidden @ weight.T + bias`` for compacted tokens.

    Forward walks token chunks (each chunk sees the whole vocabulary, so its
    logsumexp is exact); backward walks vocabulary slices over all tokens, so
    each slice of ``grad_weight`` is one matrix product written once rather
    than a sum of rounded per-chunk terms, and only ``grad_hidden`` (tokens x
    H, small) is accumulated. Both hold about ``chunk_size * V`` logits at a
    time.
    """

    @staticmethod
    def forward(
        ctx: Any,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        targets: torch.Tensor,
        chunk_size: int,
        scale: float,
        softcap: float | None,
        inv_temperature: float,
        want_entropy: bool,
        want_sq: bool,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        ctx.set_materialize_grads(False)
        n = hidden.shape[0]
        work = torch.float64 if hidden.dtype == torch.float64 else torch.float32
        logp = torch.empty(n, dtype=work, device=hidden.device)
        lse = torch.empty_like(logp)
        entropy = torch.empty_like(logp) if want_entropy else None
        log_sum_sq = torch.empty_like(logp) if want_sq else None
        plain = softcap is None and scale * inv_temperature == 1.0
        fused = _fused(hidden.device) if plain and work == torch.float32 and not (want_entropy or want_sq) else None
        for start in range(0, n, chunk_size):
            end = min(start + chunk_size, n)
            if fused is not None:
                lse[start:end], logp[start:end] = fused["forward"](_head_product(hidden[start:end], weight, bias),
                                                                   targets[start:end])
                continue
            z = _transform(_head_product(hidden[start:end], weight, bias).to(work), scale, softcap, inv_temperature)
            lse_c = torch.logsumexp(z, -1)
            lse[start:end] = lse_c
            logp[start:end] = z.gather(1, targets[start:end, None]).squeeze(1) - lse_c
            if want_entropy or want_sq:
                logp_all = z.sub_(lse_c[:, None])  # z is not needed any more
                if want_sq:
                    assert log_sum_sq is not None
                    log_sum_sq[start:end] = torch.logsumexp(2.0 * logp_all, -1)
                if want_entropy:
                    assert entropy is not None
                    entropy[start:end] = _entropy(logp_all)
        ctx.save_for_backward(hidden, weight, bias, targets, lse, entropy)
        ctx.chunk_size = chunk_size
        ctx.transform = (scale, softcap, inv_temperature)
        if log_sum_sq is not None:
            ctx.mark_non_differentiable(log_sum_sq)
        return logp, entropy, log_sum_sq

    @staticmethod
    def backward(
        ctx: Any, grad_logp: torch.Tensor | None, grad_entropy: torch.Tensor | None, _grad_sq: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, ...]:
        hidden, weight, bias, targets, lse, entropy = ctx.saved_tensors
        scale, softcap, inv_temperature = ctx.transform
        need_hidden, need_weight, need_bias = ctx.needs_input_grad[:3]
        n, vocab = hidden.shape[0], weight.shape[0]
        work = lse.dtype
        grad_hidden = torch.zeros(hidden.shape, dtype=work, device=hidden.device) if need_hidden else None
        grad_weight = torch.zeros_like(weight) if need_weight else None
        grad_bias = torch.zeros_like(bias) if need_bias else None
        if n == 0 or (grad_logp is None and grad_entropy is None):
            return grad_hidden, grad_weight, grad_bias, None, None, None, None, None, None, None
        # A vocabulary slice over all n tokens holds as many logits as a token chunk did in forward.
        width = max(1, min(vocab, (ctx.chunk_size * vocab) // n))
        if width < vocab:
            # A multiple of 128 columns keeps every slice's rows 256-byte aligned: ragged widths (8,190 for a
            # 152k vocabulary) sent cuBLAS to kernels 2-3x slower on H200 (measured).
            width = min(vocab, max(_ALIGN, width // _ALIGN * _ALIGN))
        plain = softcap is None and scale * inv_temperature == 1.0
        fused = _fused(hidden.device) if plain and work == torch.float32 and grad_entropy is None else None
        for start in range(0, vocab, width):
            end = min(start + width, vocab)
            y = _head_product(hidden, weight[start:end], None if bias is None else bias[start:end])
            if fused is not None:
                assert grad_logp is not None
                grad_in = fused["backward"](y, lse, grad_logp, targets, start)
                del y
                if grad_bias is not None:
                    grad_bias[start:end] = grad_in.float().sum(0).to(grad_bias.dtype)
                if grad_hidden is not None:
                    grad_hidden += grad_in @ weight[start:end]
                if grad_weight is not None:
                    grad_weight[start:end] = grad_in.t() @ hidden
                continue
            # Few passes over the (tokens, slice) buffers, mostly in place: this loop is memory-bound.
            if plain:
                logp = torch.sub(y, lse[:, None])  # promotes to `work` in the same pass
            else:
                logp = _transform(y.to(work), scale, softcap, inv_temperature).sub_(lse[:, None])
            if softcap is None:
                del y
            if grad_entropy is not None:
                # d log p_target / dz_j = 1[j = target] - p_j ;  d H / dz_j = -p_j (log p_j + H)
                p = logp.exp()
                # p_j = 0 at -inf logits (banned tokens): any finite log p_j gives the right 0, -inf gives NaN
                logp.masked_fill_(logp == -math.inf, 0.0)
                coef = logp.add_(entropy[:, None]).mul_(grad_entropy[:, None])
                if grad_logp is not None:
                    coef.add_(grad_logp[:, None])
                grad = p.mul_(coef).neg_()
                del coef
            else:
                assert grad_logp is not None  # both None returned early
                grad = logp.exp_().mul_(-grad_logp[:, None])
            if grad_logp is not None:
                rows = ((targets >= start) & (targets < end)).nonzero().squeeze(1)
                grad.index_put_((rows, targets[rows] - start), grad_logp[rows], accumulate=True)
            # Chain rule back through temperature, soft-cap and scale to the raw product y.
            if softcap is not None:
                grad.mul_(1.0 - torch.tanh(y.to(work) * (scale / softcap)).square_())
                del y
            if not plain and scale * inv_temperature != 1.0:
                grad.mul_(scale * inv_temperature)
            if grad_bias is not None:
                grad_bias[start:end] = grad.sum(0).to(grad_bias.dtype)
            grad_in = grad.to(hidden.dtype)
            del grad
            if grad_hidden is not None:
                grad_hidden += grad_in @ weight[start:end]
            if grad_weight is not None:
                grad_weight[start:end] = grad_in.t() @ hidden
        if grad_hidden is not None:
            grad_hidden = grad_hidden.to(hidden.dtype)
        return grad_hidden, grad_weight, grad_bias, None, None, None, None, None, None, None


def chunked_sequence_logprobs(
    hidden_states: torch.Tensor,
    lm_head_weight: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    *,
    chunk_size: int | None = None,
    ignore_index: int = -100,
    logit_scale: float = 1.0,
    softcap: float | None = None,
    temperature: float = 1.0,
    extra: Sequence[str] = (),
) -> SequenceLogProbs:
    """:func:`sequence_logprobs` from the last hidden states and the LM head, in chunks.

    Equal to ``sequence_logprobs(hidden_states @ lm_head_weight.T + bias, ...)``
    (with the scale, soft-cap and temperature applied to the logits) but never
    holds the ``(tokens, V)`` logits: only positions with a real next-token
    label are scored (prompt and padding cost nothing), ``chunk_size`` of them
    at a time, and the backward pass recomputes each chunk's logits instead of
    keeping them. Extra memory is about ``chunk_size * V`` logits (a few such
    buffers), whatever the batch.

    The head product runs in the inputs' dtype (as the model's own ``lm_head``
    does); the softmax, logsumexp and gradients of the logits in float32, or
    float64 for float64 inputs.

    Parameters
    ----------
    hidden_states : torch.Tensor of shape (B, T, H)
        Last hidden states (after the final norm), as fed to the LM head.
    lm_head_weight : torch.Tensor of shape (V, H)
        The LM head weight (``model.get_output_embeddings().weight``).
    labels : torch.Tensor of shape (B, T)
        Token ids; ``ignore_index`` marks prompt and padding.
    mask : torch.Tensor of shape (B, T), optional
        True at response tokens; replaces the ``ignore_index`` test.
    bias : torch.Tensor of shape (V,), optional
        LM head bias.
    chunk_size : int, optional
        Tokens per chunk. Default: enough to keep one chunk near 2**26 logits
        (256 MiB in float32), i.e. 441 tokens for a 152k vocabulary.
    logit_scale : float
        Multiplier of the head output (Cohere's ``logit_scale``; Granite's
        ``1 / logits_scaling``), applied before the soft-cap.
    softcap : float, optional
        Gemma-2's ``final_logit_softcapping``: logits become
        ``softcap * tanh(logits / softcap)``.
    temperature : float
        Logits are divided by it last.
    extra : sequence of str
        Any of ``"entropy"``, ``"log_sum_sq_probs"``.

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> h = torch.randn(2, 6, 8, dtype=torch.float64, generator=g)
    >>> w = torch.randn(50, 8, dtype=torch.float64, generator=g)
    >>> labels = torch.randint(0, 50, (2, 6), generator=g)
    >>> labels[:, :2] = -100                                  # prompt
    >>> fast = chunked_sequence_logprobs(h, w, labels, chunk_size=3)
    >>> slow = sequence_logprobs(h @ w.T, labels)
    >>> bool(torch.allclose(fast.sum, slow.sum, rtol=0, atol=1e-12)), fast.lengths.tolist()
    (True, [4, 4])
    """
    want_entropy, want_sq = _check_extra(extra)
    if hidden_states.dim() != 3:
        raise ValueError(f"hidden_states must be (B, T, H); got shape {tuple(hidden_states.shape)}.")
    if labels.shape != hidden_states.shape[:2]:
        raise ValueError(
            f"labels must be (B, T) = {tuple(hidden_states.shape[:2])} to match hidden_states; "
            f"got {tuple(labels.shape)}."
        )
    if lm_head_weight.dim() != 2 or lm_head_weight.shape[1] != hidden_states.shape[2]:
        raise ValueError(
            f"lm_head_weight must be (V, H) with H = {hidden_states.shape[2]}; got {tuple(lm_head_weight.shape)}."
        )
    vocab = lm_head_weight.shape[0]
    if bias is not None and bias.shape != (vocab,):
        raise ValueError(f"bias must be (V,) = ({vocab},); got {tuple(bias.shape)}.")
    if chunk_size is None:
        chunk_size = max(1, _DEFAULT_CHUNK_ELEMENTS // vocab)
        if chunk_size > _ALIGN:
            chunk_size = chunk_size // _ALIGN * _ALIGN
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}.")
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a positive finite number, got {temperature!r}.")
    if softcap is not None and not softcap > 0:
        raise ValueError(f"softcap must be positive or None, got {softcap!r}.")

    compute = hidden_states.dtype
    if torch.is_autocast_enabled(hidden_states.device.type):
        # Under autocast the model's own lm_head would run in the autocast dtype; do the same.
        compute = torch.get_autocast_dtype(hidden_states.device.type)
    elif lm_head_weight.dtype != compute:
        raise TypeError(
            f"hidden_states is {hidden_states.dtype} but lm_head_weight is {lm_head_weight.dtype}; "
            f"cast one of them (or run under torch.autocast)."
        )

    targets, keep = _shifted_targets(labels, mask, ignore_index)
    # Compact: only positions with a real label go through the head.
    hidden = hidden_states[:, :-1][keep].to(compute)
    with torch.autocast(hidden_states.device.type, enabled=False):
        logp, entropy, log_sum_sq = _ChunkedHeadLogProbs.apply(
            hidden,
            lm_head_weight.to(compute),
            None if bias is None else bias.to(compute),
            targets[keep],
            chunk_size,
            float(logit_scale),
            None if softcap is None else float(softcap),
            1.0 / float(temperature),
            want_entropy,
            want_sq,
        )

    def scatter(values: torch.Tensor | None) -> torch.Tensor | None:
        # masked_scatter keeps the result attached to the graph even when no position is scored.
        return None if values is None else values.new_zeros(keep.shape).masked_scatter(keep, values)

    per_token = scatter(logp)
    assert per_token is not None
    return _reduce(per_token, keep, scatter(entropy), scatter(log_sum_sq))


# ---------------------------------------------------------------- Hugging Face models


def _unwrap_peft(model: Any) -> Any:
    # A PeftModel's base_model is the adapter wrapper, not the backbone; its get_base_model() is the
    # transformers model with the adapters injected in place.
    if hasattr(model, "get_base_model") and hasattr(model, "peft_config"):
        return model.get_base_model()
    return model


def _backbone(model: Any) -> Any:
    base = getattr(model, "base_model", None)
    if base is not None and base is not model:
        return base
    inner = getattr(model, "model", None)
    if isinstance(inner, torch.nn.Module):
        return inner
    get_decoder = getattr(model, "get_decoder", None)
    if callable(get_decoder):
        decoder = get_decoder()
        if decoder is not None and decoder is not model:
            return decoder
    raise ValueError(
        f"cannot find the backbone of {type(model).__name__} (no base_model, model or get_decoder()); "
        f"pass chunked=False to score it through model(...).logits."
    )


def _head_transform(model: Any) -> tuple[float, float | None]:
    """Logit scale and soft-cap the model applies after its LM head (read from its config)."""
    config = model.config
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    softcap = getattr(text, "final_logit_softcapping", None)
    scale = getattr(text, "logit_scale", None)  # Cohere
    if scale is None:
        scale = getattr(text, "output_multiplier", None)
    if scale is None:
        scale = getattr(text, "lm_head_multiplier", None)  # Falcon-H1
    if scale is None and getattr(text, "logits_scaling", None) is not None:
        # Granite and MiniCPM3 divide by it; HyperCLOVA X multiplies.
        by = float(text.logits_scaling)
        scale = by if getattr(text, "model_type", "") == "hyperclovax" else 1.0 / by
    return (1.0 if scale is None else float(scale)), (None if softcap is None else float(softcap))


def _default_labels(input_ids: torch.Tensor, attention_mask: torch.Tensor | None, ignore_index: int) -> torch.Tensor:
    if attention_mask is None:
        return input_ids
    return input_ids.masked_fill(attention_mask == 0, ignore_index)


def model_logprobs(
    model: Any,
    input_ids: torch.Tensor,
    labels: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    *,
    chunked: bool = True,
    chunk_size: int | None = None,
    ignore_index: int = -100,
    temperature: float = 1.0,
    extra: Sequence[str] = (),
    **model_kwargs: Any,
) -> SequenceLogProbs:
    """Log-probs of ``labels`` under a Hugging Face causal LM, by default without full logits.

    With ``chunked=True`` it runs the model's backbone (``base_model``,
    ``model`` or ``get_decoder()``, whichever it has; a PEFT model is
    unwrapped first), takes the last hidden state and scores it with
    :func:`chunked_sequence_logprobs` against
    ``model.get_output_embeddings()`` (the soft-cap and logit scale read from
    the config). ``chunked=False`` is the plain ``model(...).logits`` path.

    Parameters
    ----------
    model : transformers.PreTrainedModel (or a PEFT wrapper of one)
        A causal language model.
    input_ids : torch.Tensor of shape (B, T)
    labels : torch.Tensor of shape (B, T), optional
        Default: ``input_ids`` with padding (``attention_mask == 0``) ignored.
    attention_mask : torch.Tensor of shape (B, T), optional
    mask : torch.Tensor of shape (B, T), optional
        True at response tokens; replaces the ``ignore_index`` test.
    chunked : bool
        Chunked head (default) or full logits.
    chunk_size : int, optional
        Tokens per chunk; see :func:`chunked_sequence_logprobs`.
    temperature : float
        Logits are divided by it.
    extra : sequence of str
        Any of ``"entropy"``, ``"log_sum_sq_probs"``.
    **model_kwargs
        Passed to the model's (or backbone's) forward, e.g. ``position_ids``.

    Examples
    --------
    >>> import torch, transformers
    >>> config = transformers.LlamaConfig(vocab_size=61, hidden_size=16, intermediate_size=32,
    ...     num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1)
    >>> model = transformers.LlamaForCausalLM(config).double()
    >>> ids = torch.randint(0, 61, (2, 7))
    >>> fast = model_logprobs(model, ids, chunk_size=4)
    >>> slow = model_logprobs(model, ids, chunked=False)
    >>> bool(torch.allclose(fast.per_token, slow.per_token, rtol=0, atol=1e-12))
    True
    """
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be (B, T); got shape {tuple(input_ids.shape)}.")
    if labels is None:
        labels = _default_labels(input_ids, attention_mask, ignore_index)
    model_kwargs.setdefault("use_cache", False)
    if not chunked:
        out = model(input_ids=input_ids, attention_mask=attention_mask, **model_kwargs)
        logits = out.logits if temperature == 1.0 else out.logits / temperature
        return sequence_logprobs(logits, labels, mask, ignore_index, extra=extra)

    inner = _unwrap_peft(model)
    head = inner.get_output_embeddings()
    # Anything but the plain affine map (a LoRA-adapted or quantised head) would be scored wrongly from .weight.
    if not isinstance(head, torch.nn.Linear) or type(head).forward is not torch.nn.Linear.forward:
        raise ValueError(
            f"the output embeddings of {type(inner).__name__} are a {type(head).__name__}, not a plain "
            f"torch.nn.Linear (e.g. an adapted or quantised lm_head), so the chunked head cannot read them; "
            f"pass chunked=False."
        )
    outputs = _backbone(inner)(input_ids=input_ids, attention_mask=attention_mask, **model_kwargs)
    hidden = outputs.last_hidden_state if hasattr(outputs, "last_hidden_state") else outputs[0]
    scale, softcap = _head_transform(inner)
    hidden = hidden.to(head.weight.device)  # a model split across devices may end elsewhere
    return chunked_sequence_logprobs(
        hidden,
        head.weight,
        labels.to(hidden.device),
        None if mask is None else mask.to(hidden.device),
        head.bias,
        chunk_size=chunk_size,
        ignore_index=ignore_index,
        logit_scale=scale,
        softcap=softcap,
        temperature=temperature,
        extra=extra,
    )


def _pad_right(x: torch.Tensor, length: int, value: int | bool) -> torch.Tensor:
    return F.pad(x, (0, length - x.shape[1]), value=value)


def paired_model_logprobs(
    model: Any,
    chosen_input_ids: torch.Tensor,
    rejected_input_ids: torch.Tensor,
    chosen_labels: torch.Tensor | None = None,
    rejected_labels: torch.Tensor | None = None,
    chosen_attention_mask: torch.Tensor | None = None,
    rejected_attention_mask: torch.Tensor | None = None,
    *,
    pad_token_id: int = 0,
    ignore_index: int = -100,
    **kwargs: Any,
) -> tuple[SequenceLogProbs, SequenceLogProbs]:
    """Chosen and rejected log-probs from one forward pass of ``model``.

    Stacks ``[chosen; rejected]`` along the batch, padding the shorter on the
    right (padding is ignored by the attention mask and the labels, and,
    because attention is causal, does not change earlier positions), calls
    :func:`model_logprobs` once and splits the result back into two
    :class:`SequenceLogProbs` with the original lengths. Keyword arguments
    (``chunked``, ``chunk_size``, ``extra``, ...) go to :func:`model_logprobs`.

    Examples
    --------
    >>> import torch, transformers
    >>> config = transformers.LlamaConfig(vocab_size=61, hidden_size=16, intermediate_size=32,
    ...     num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1)
    >>> model = transformers.LlamaForCausalLM(config).double()
    >>> chosen, rejected = torch.randint(0, 61, (2, 7)), torch.randint(0, 61, (2, 5))
    >>> c, r = paired_model_logprobs(model, chosen, rejected)
    >>> tuple(c.per_token.shape), tuple(r.per_token.shape)
    ((2, 6), (2, 4))
    >>> bool(torch.allclose(r.sum, model_logprobs(model, rejected).sum, rtol=0, atol=1e-12))
    True
    """
    if chosen_input_ids.dim() != 2 or rejected_input_ids.dim() != 2:
        raise ValueError(
            f"chosen_input_ids and rejected_input_ids must be (B, T); got shapes "
            f"{tuple(chosen_input_ids.shape)} and {tuple(rejected_input_ids.shape)}."
        )
    if chosen_input_ids.shape[0] != rejected_input_ids.shape[0]:
        raise ValueError(
            f"chosen_input_ids has {chosen_input_ids.shape[0]} rows but rejected_input_ids has "
            f"{rejected_input_ids.shape[0]}; pairs need the same batch size."
        )
    if kwargs.get("mask") is not None:
        raise ValueError("paired_model_logprobs takes chosen_labels/rejected_labels, not a single mask.")
    batch = chosen_input_ids.shape[0]
    t_c, t_r = chosen_input_ids.shape[1], rejected_input_ids.shape[1]
    length = max(t_c, t_r)

    def attention(ids: torch.Tensor, given: torch.Tensor | None) -> torch.Tensor:
        return torch.ones_like(ids) if given is None else given

    def labels_of(ids: torch.Tensor, given: torch.Tensor | None, att: torch.Tensor) -> torch.Tensor:
        return _default_labels(ids, att, ignore_index) if given is None else given

    att_c = attention(chosen_input_ids, chosen_attention_mask)
    att_r = attention(rejected_input_ids, rejected_attention_mask)
    lab_c = labels_of(chosen_input_ids, chosen_labels, att_c)
    lab_r = labels_of(rejected_input_ids, rejected_labels, att_r)
    out = model_logprobs(
        model,
        torch.cat([_pad_right(ids, length, pad_token_id) for ids in (chosen_input_ids, rejected_input_ids)]),
        torch.cat([_pad_right(lab_c, length, ignore_index), _pad_right(lab_r, length, ignore_index)]),
        torch.cat([_pad_right(att_c, length, 0), _pad_right(att_r, length, 0)]),
        ignore_index=ignore_index,
        **kwargs,
    )

    def part(rows: slice, steps: int) -> SequenceLogProbs:
        def cut(x: torch.Tensor | None) -> torch.Tensor | None:
            return None if x is None else x[rows, :steps]

        return SequenceLogProbs(
            out.per_token[rows, :steps],
            out.mask[rows, :steps],
            out.sum[rows],
            out.avg[rows],
            out.lengths[rows],
            cut(out.entropy),
            cut(out.log_sum_sq_probs),
        )

    return part(slice(0, batch), t_c - 1), part(slice(batch, 2 * batch), t_r - 1)


# ---------------------------------------------------------------- TDPO


def sequence_kl(
    reference_logits: torch.Tensor,
    policy_logits: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    ignore_index: int = -100,
) -> torch.Tensor:
    """Sequential KL ``sum_t KL(pi_ref(.|prefix) || pi_theta(.|prefix))`` over response tokens (TDPO).

    The KL is over the full vocabulary at each position (not only the label
    token), reference first. Returns shape (B,).

    Examples
    --------
    >>> import torch
    >>> z = torch.randn(2, 5, 7)
    >>> labels = torch.randint(0, 7, (2, 5))
    >>> sequence_kl(z, z, labels).abs().max().item() < 1e-6
    True
    """
    if policy_logits.shape != reference_logits.shape:
        raise ValueError(
            f"policy_logits has shape {tuple(policy_logits.shape)} but reference_logits has shape "
            f"{tuple(reference_logits.shape)}; both must be (B, T, V) for the same batch and vocabulary."
        )
    ref, targets, keep = _shifted(reference_logits, labels, mask, ignore_index)
    pol = policy_logits[:, :-1, :]
    ref_logp = ref.float().log_softmax(-1) if ref.dtype in (torch.float16, torch.bfloat16) else ref.log_softmax(-1)
    pol_logp = pol.float().log_softmax(-1) if pol.dtype in (torch.float16, torch.bfloat16) else pol.log_softmax(-1)
    # Tokens the reference never emits (-inf log-prob, e.g. banned in both) add 0 log 0 = 0; kl_div's
    # exp(-inf) * (-inf - -inf) would be NaN. Safe values inside the where keep the gradient finite too.
    support = ref_logp > -math.inf
    zero = ref_logp.new_zeros(())
    ref_safe, pol_safe = torch.where(support, ref_logp, zero), torch.where(support, pol_logp, zero)
    per_position = torch.where(support, ref_logp.exp() * (ref_safe - pol_safe), zero).sum(-1)
    return torch.where(keep, per_position, zero).sum(-1)
