"""From model logits to the log-probabilities that preference losses take.

One convention, used everywhere in :mod:`bradley.nn`: ``logits`` has shape
``(B, T, V)`` for a causal language model and ``labels`` shape ``(B, T)``,
aligned as the model saw them (``labels[:, t]`` is the token at position
``t``). The logits at position ``t`` predict the token at ``t + 1``, so both
are shifted by one here. Positions whose label equals ``ignore_index`` (prompt
and padding) are masked out; an explicit boolean ``mask`` (same shape as
``labels``, True = response token) may be given instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["SequenceLogProbs", "sequence_logprobs", "sequence_kl"]


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
        Length-normalised log-probability ``A(y) = S(y) / |y|``.
    lengths : torch.Tensor, shape (B,)
        Number of response tokens ``|y|``.
    """

    per_token: torch.Tensor
    mask: torch.Tensor
    sum: torch.Tensor
    avg: torch.Tensor
    lengths: torch.Tensor


def _shifted(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None, ignore_index: int):
    if logits.dim() != 3 or labels.dim() != 2 or logits.shape[:2] != labels.shape:
        raise ValueError(
            f"expected logits (B, T, V) and labels (B, T); got {tuple(logits.shape)} and {tuple(labels.shape)}."
        )
    logits = logits[:, :-1, :]
    targets = labels[:, 1:]
    if mask is None:
        keep = targets != ignore_index
    else:
        if mask.shape != labels.shape:
            raise ValueError(f"mask must have the shape of labels {tuple(labels.shape)}, got {tuple(mask.shape)}.")
        keep = mask[:, 1:].bool()
    safe_targets = torch.where(keep, targets, torch.zeros_like(targets))
    return logits, safe_targets, keep


def sequence_logprobs(
    logits: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    ignore_index: int = -100,
) -> SequenceLogProbs:
    """Summed, length-normalised and per-token log-probs of the labelled tokens.

    Computed in float32 or wider (``log_softmax`` of bfloat16 logits loses
    too much), whatever the logits' dtype.

    Examples
    --------
    >>> import torch
    >>> logits = torch.zeros(1, 3, 4)            # uniform over 4 tokens
    >>> labels = torch.tensor([[-100, 2, 1]])    # first position is prompt
    >>> out = sequence_logprobs(logits, labels)
    >>> round(out.sum.item(), 6), out.lengths.tolist()
    (-2.772589, [2])
    """
    logits, targets, keep = _shifted(logits, labels, mask, ignore_index)
    work = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    token_logps = torch.gather(work.log_softmax(-1), 2, targets.unsqueeze(-1)).squeeze(-1)
    token_logps = token_logps * keep
    lengths = keep.sum(-1)
    total = token_logps.sum(-1)
    return SequenceLogProbs(token_logps, keep, total, total / lengths.clamp(min=1), lengths)


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
    per_position = F.kl_div(pol_logp, ref_logp, log_target=True, reduction="none").sum(-1)
    return (per_position * keep).sum(-1)
