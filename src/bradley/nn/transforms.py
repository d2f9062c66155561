"""Reward transforms and combinations (sheet sections A10 and A13)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["logsigmoid_reward", "conjunction_reward", "lambda_harmonic_reward"]

Tensor = torch.Tensor


def logsigmoid_reward(reward: Tensor, reference_reward: Tensor | float) -> Tensor:
    """``u = logsig(r - r_ref)``: log-probability of beating a reference response (A10).

    Concave with diminishing returns, always negative, ``-log 2`` at
    ``r = r_ref``. ``r_ref`` is a per-prompt reference reward; the paper's
    choice of statistic (a high quantile of base-policy sample rewards) is
    UNCERTAIN, so it is left to the caller.

    Examples
    --------
    >>> import torch
    >>> round(logsigmoid_reward(torch.tensor(1.0), 1.0).item(), 6)
    -0.693147
    """
    return F.logsigmoid(reward - reference_reward)


def conjunction_reward(rewards: Sequence[Tensor], reference_rewards: Sequence[Tensor | float]) -> Tensor:
    """Logical AND of several properties: ``sum_i logsig(r_i - r_i^ref)`` (A10).

    The log-probability that every property is good, assuming independence;
    it replaces the plain sum of raw rewards.
    """
    if len(rewards) != len(reference_rewards) or not rewards:
        raise ValueError("give one reference reward per reward (and at least one).")
    terms = [F.logsigmoid(r - ref) for r, ref in zip(rewards, reference_rewards, strict=True)]
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def lambda_harmonic_reward(image_similarity: Tensor, text_similarity: Tensor, *, lam: float = 0.3) -> Tensor:
    """Weighted harmonic mean ``1 / (lam / I + (1 - lam) / T)`` of two similarities in (0, 1] (A13).

    RPO's reward for subject-driven text-to-image generation, with 1e-8 added
    to each denominator as in the authors' code; ``lam = 1`` gives the image
    similarity, ``lam = 0`` the text similarity. Default 0.3 (their validation
    setting; the training value is UNCERTAIN).

    Examples
    --------
    >>> import torch
    >>> round(lambda_harmonic_reward(torch.tensor(0.8), torch.tensor(0.6), lam=0.3).item(), 6)
    0.648649
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must lie in [0, 1], got {lam}.")
    return 1.0 / (lam / (image_similarity + 1e-8) + (1.0 - lam) / (text_similarity + 1e-8))
