"""Preference losses for reward models and direct preference optimization.

Each loss is a plain function of tensors returning a :class:`LossOutput`.
Formulas follow ``shared/alignment-losses.md`` (section named in each
docstring); where that sheet marks a detail UNCERTAIN, the version of the
authors' code is used and the docstring says so.

Shapes: ``(B,)`` per-example inputs unless stated. Log-probabilities are
summed over response tokens (``*_logps``) or length-normalised
(``*_avg_logps``). ``reduction`` is ``"none"`` (per-example, default),
``"mean"`` or ``"sum"`` and applies to ``loss`` only.

Every loss checks the shapes of its batch tensors before any arithmetic:
per-example tensors must have one and the same shape, and arguments typed
"tensor or float" (``margin``, ``target``, ``strength``, win rates) may be
numbers or tensors that broadcast to the batch shape without enlarging it.
Anything else (e.g. a ``(B, 1)`` tensor against ``(B,)`` ones, which would
broadcast to a ``(B, B)`` loss) raises a ``ValueError`` naming the argument
and both shapes.

Examples
--------
>>> import torch
>>> from bradley.nn import losses
>>> out = losses.dpo_loss(torch.tensor([-10.0]), torch.tensor([-20.0]),
...                       torch.tensor([-15.0]), torch.tensor([-15.0]), beta=0.1)
>>> round(out.loss.item(), 6), out.accuracy.item()
(0.313262, 1.0)
>>> losses.get("simpo") is losses.simpo_loss
True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

__all__ = [
    "LossOutput",
    "available",
    "get",
    "register",
    # reward models
    "bt_loss",
    "soft_bt_loss",
    "mmpo_target",
    "scaled_bt_loss",
    "regression_loss",
    "tobt_probabilities",
    "tobt_loss",
    "plackett_luce_loss",
    # direct preference optimisation
    "dpo_loss",
    "ipo_loss",
    "rdpo_loss",
    "simpo_loss",
    "fdpo_loss",
    "tdpo_loss",
    "asft_loss",
    "dmpo_turn_weights",
    "dmpo_loss",
    "todo_loss",
    "pro_loss",
    "sppo_loss",
    "inpo_loss",
    "dno_loss",
    "egpo_loss",
]

Tensor = torch.Tensor


@dataclass
class LossOutput:
    """What a loss returns.

    Attributes
    ----------
    loss : torch.Tensor
        Per-example losses (``reduction="none"``) or their mean / sum.
    chosen_rewards, rejected_rewards : torch.Tensor or None
        Detached implicit rewards (e.g. ``beta * log-ratio`` for DPO, the
        reward-model scores for BT), per example.
    margins : torch.Tensor or None
        ``chosen_rewards - rejected_rewards`` (detached).
    accuracy : torch.Tensor or None
        1.0 where the chosen response is preferred (margin > 0), else 0.0.
    extras : dict
        Other detached per-example quantities a loss exposes.
    """

    loss: Tensor
    chosen_rewards: Tensor | None = None
    rejected_rewards: Tensor | None = None
    margins: Tensor | None = None
    accuracy: Tensor | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)


_REGISTRY: dict[str, Callable[..., LossOutput]] = {}


def register(*names: str) -> Callable[[Callable[..., LossOutput]], Callable[..., LossOutput]]:
    """Decorator adding a loss to the registry under one or more names."""

    def wrap(fn: Callable[..., LossOutput]) -> Callable[..., LossOutput]:
        for name in names:
            if name in _REGISTRY:
                raise ValueError(f"loss name {name!r} is already registered.")
            _REGISTRY[name] = fn
        return fn

    return wrap


def get(name: str) -> Callable[..., LossOutput]:
    """The loss registered under ``name`` (as TRL users pick ``loss_type``)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown loss {name!r}; available: {', '.join(available())}.") from None


def available() -> list[str]:
    """Names in the registry, sorted."""
    return sorted(_REGISTRY)


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}.")


def _output(
    loss: Tensor, chosen: Tensor | None, rejected: Tensor | None, reduction: str, **extras: Tensor
) -> LossOutput:
    margins = accuracy = None
    if chosen is not None and rejected is not None:
        chosen, rejected = chosen.detach(), rejected.detach()
        margins = chosen - rejected
        accuracy = (margins > 0).to(loss.dtype)
    return LossOutput(
        _reduce(loss, reduction), chosen, rejected, margins, accuracy, {k: v.detach() for k, v in extras.items()}
    )


def _check_shapes(
    loss: str,
    same: dict[str, Tensor | None],
    broadcast: dict[str, Tensor | float | None] | None = None,
) -> torch.Size:
    """Refuse batch tensors whose shapes differ, before arithmetic broadcasts them.

    Every tensor in ``same`` (``None`` entries are skipped) must have the shape
    of the first; a ``(B, 1)`` tensor against a ``(B,)`` one would otherwise
    broadcast to a ``(B, B)`` loss without a word. Entries of ``broadcast``
    (arguments documented as "tensor or float") may be Python numbers or
    tensors that broadcast to that shape without enlarging it (a scalar, a
    ``(1,)`` tensor or the batch shape). Returns the batch shape.
    """
    for name, value in same.items():
        if value is not None and not isinstance(value, Tensor):
            raise TypeError(f"{loss}: {name} must be a torch.Tensor, got {type(value).__name__}.")
    for name, number in (broadcast or {}).items():
        if number is not None and not isinstance(number, (Tensor, int, float)):
            raise TypeError(f"{loss}: {name} must be a torch.Tensor or a number, got {type(number).__name__}.")
    ref_name, ref = next((k, v) for k, v in same.items() if v is not None)
    shape = ref.shape
    for name, value in same.items():
        if isinstance(value, Tensor) and value.shape != shape:
            raise ValueError(
                f"{loss}: {name} has shape {tuple(value.shape)} but {ref_name} has shape {tuple(shape)}; "
                "per-example inputs must have the same shape (a (B, 1) tensor against a (B,) one would "
                "broadcast to a (B, B) loss). Reshape them alike, e.g. with .squeeze(-1)."
            )
    for name, number in (broadcast or {}).items():
        if isinstance(number, Tensor) and number.dim() > 0:
            try:
                fits = torch.broadcast_shapes(number.shape, shape) == shape
            except RuntimeError:
                fits = False
            if not fits:
                raise ValueError(
                    f"{loss}: {name} has shape {tuple(number.shape)}, which does not broadcast to the batch shape "
                    f"{tuple(shape)} of {ref_name}; give a number, a scalar tensor or a tensor of shape {tuple(shape)}."
                )
    return shape


def _check_epsilon(epsilon: float, name: str = "epsilon") -> None:
    if not 0.0 <= epsilon < 0.5:
        raise ValueError(f"{name} must lie in [0, 0.5), got {epsilon}.")


def _soft_logistic(z: Tensor, target: Tensor | float) -> Tensor:
    """Cross-entropy ``-[p logsig(z) + (1 - p) logsig(-z)]`` against a target probability."""
    return -(target * F.logsigmoid(z) + (1.0 - target) * F.logsigmoid(-z))


# --------------------------------------------------------------------------
# Reward-model losses (sheet part A)
# --------------------------------------------------------------------------


@register("bt", "bradley-terry")
def bt_loss(
    chosen_rewards: Tensor,
    rejected_rewards: Tensor,
    margin: Tensor | float | None = None,
    label_smoothing: float = 0.0,
    center_coefficient: float | None = None,
    reduction: str = "none",
) -> LossOutput:
    """Bradley-Terry reward-model loss ``-logsig(r_w - r_l - m)`` (A1, A2, A3).

    Parameters
    ----------
    margin : tensor or float, optional
        Llama-2 style margin ``m`` subtracted from the reward gap (A2).
    label_smoothing : float
        Flip rate ``eps`` in [0, 0.5): the target becomes ``1 - eps`` (A3).
    center_coefficient : float, optional
        TRL's ``center_rewards_coefficient``: adds ``c * (r_w + r_l)^2``.
    """
    _check_shapes(
        "bt", {"chosen_rewards": chosen_rewards, "rejected_rewards": rejected_rewards}, {"margin": margin}
    )
    _check_epsilon(label_smoothing, "label_smoothing")
    z = chosen_rewards - rejected_rewards
    if margin is not None:
        z = z - margin
    loss = _soft_logistic(z, 1.0 - label_smoothing)
    if center_coefficient:
        loss = loss + center_coefficient * (chosen_rewards + rejected_rewards) ** 2
    return _output(loss, chosen_rewards, rejected_rewards, reduction)


@register("soft-bt", "mmpo-rm")
def soft_bt_loss(
    chosen_rewards: Tensor, rejected_rewards: Tensor, target: Tensor | float, reduction: str = "none"
) -> LossOutput:
    """Soft-target BT: cross-entropy of ``sigmoid(r_w - r_l)`` against ``P(w beats l) = target`` (A3, A5).

    The minimiser is ``r_w - r_l = logit(target)``; with
    ``target = mmpo_target(s_w, s_l, gamma)`` this is MMPO's margin matching.
    """
    _check_shapes(
        "soft-bt", {"chosen_rewards": chosen_rewards, "rejected_rewards": rejected_rewards}, {"target": target}
    )
    loss = _soft_logistic(chosen_rewards - rejected_rewards, target)
    return _output(loss, chosen_rewards, rejected_rewards, reduction)


def mmpo_target(chosen_scores: Tensor, rejected_scores: Tensor, gamma: float | None) -> Tensor | float:
    """MMPO soft label ``sigmoid(gamma * (s_w - s_l))`` from quality scores (A5); ``None`` = hard label 1."""
    if gamma is None:
        return 1.0
    return torch.sigmoid(gamma * (chosen_scores - rejected_scores))


@register("scaled-bt")
def scaled_bt_loss(
    chosen_rewards: Tensor, rejected_rewards: Tensor, strength: Tensor | float, reduction: str = "none"
) -> LossOutput:
    """HelpSteer2-Preference Scaled BT: ``-m * logsig(r_w - r_l)`` with preference strength ``m`` (A4).

    Equivalent to repeating a pair ``m`` times. Pairs of strength 0 (no
    preference) must be removed before; they are an error here.
    """
    _check_shapes(
        "scaled-bt", {"chosen_rewards": chosen_rewards, "rejected_rewards": rejected_rewards}, {"strength": strength}
    )
    m = torch.as_tensor(strength, dtype=chosen_rewards.dtype, device=chosen_rewards.device)
    if torch.any(m <= 0):
        raise ValueError("preference strength must be positive; drop pairs of strength 0 (no preference).")
    loss = -m * F.logsigmoid(chosen_rewards - rejected_rewards)
    return _output(loss, chosen_rewards, rejected_rewards, reduction)


@register("regression")
def regression_loss(predicted: Tensor, target: Tensor, reduction: str = "none") -> LossOutput:
    """Squared-error rating regression (SteerLM regression, A4), the first stage of
    HelpSteer2-Preference's best recipe: train this, then initialise a BT model
    from it and train with :func:`scaled_bt_loss`. Shapes (B,) or (B, n_attributes).
    """
    _check_shapes("regression", {"predicted": predicted, "target": target})
    loss = (predicted - target) ** 2
    if loss.dim() > 1:
        loss = loss.sum(-1)
    return _output(loss, None, None, reduction)


def tobt_probabilities(d: Tensor, alpha: float) -> tuple[Tensor, Tensor, Tensor]:
    """TOBT (Rao-Kupper) win / loss / tie probabilities for reward gap ``d = r_1 - r_2`` (A6).

    Returns ``(P(1 wins), P(2 wins), P(tie))``; they sum to 1 for ``alpha > 0``.
    """
    if alpha <= 0:
        raise ValueError(f"alpha must be positive, got {alpha}.")
    p_win = torch.sigmoid(d - alpha)
    p_loss = torch.sigmoid(-d - alpha)
    p_tie = math.expm1(2 * alpha) * p_win * p_loss
    return p_win, p_loss, p_tie


def _tie_aware_logistic(z: Tensor, is_tie: Tensor, alpha: float, label_smoothing: float) -> Tensor:
    # Non-tie: -logsig(z - alpha) (with optional cDPO smoothing); tie:
    # -log[(e^{2a} - 1) sig(z - a) sig(-z - a)], computed with log-sigmoids.
    if alpha <= 0:
        raise ValueError(f"alpha must be positive, got {alpha}.")
    _check_epsilon(label_smoothing, "label_smoothing")
    decisive = -(1.0 - label_smoothing) * F.logsigmoid(z - alpha) - label_smoothing * F.logsigmoid(-z - alpha)
    tie = -math.log(math.expm1(2 * alpha)) - F.logsigmoid(z - alpha) - F.logsigmoid(-z - alpha)
    return torch.where(is_tie.bool(), tie, decisive)


@register("tobt")
def tobt_loss(
    chosen_rewards: Tensor,
    rejected_rewards: Tensor,
    is_tie: Tensor,
    alpha: float = 0.5,
    reduction: str = "none",
) -> LossOutput:
    """Tie-aware BT reward-model loss (TOBT, A6): ``-log P(observed)`` under Rao-Kupper with ``alpha``.

    For tied pairs the order of "chosen" and "rejected" does not matter (the
    tie loss is even in the gap).
    """
    _check_shapes(
        "tobt", {"chosen_rewards": chosen_rewards, "rejected_rewards": rejected_rewards, "is_tie": is_tie}
    )
    loss = _tie_aware_logistic(chosen_rewards - rejected_rewards, is_tie, alpha, 0.0)
    return _output(loss, chosen_rewards, rejected_rewards, reduction)


@register("plackett-luce", "pl")
def plackett_luce_loss(scores: Tensor, mask: Tensor | None = None, reduction: str = "none") -> LossOutput:
    """Plackett-Luce listwise loss over K responses ordered best first (A7).

    ``L = -sum_k [u_k - logsumexp_{j >= k} u_j]`` computed with a reversed
    ``logcumsumexp``. ``scores`` has shape (B, K); ``mask`` (B, K) marks the
    real responses of ragged lists (they must come first in each row).
    For a DPO-style PL loss pass ``beta * (policy_logps - ref_logps)``.
    """
    _check_shapes("plackett-luce", {"scores": scores, "mask": mask})
    if scores.dim() != 2:
        raise ValueError(f"plackett-luce: scores must have shape (B, K), got {tuple(scores.shape)}.")
    if mask is None:
        mask = torch.ones_like(scores, dtype=torch.bool)
    mask = mask.bool()
    filled = scores.masked_fill(~mask, float("-inf"))
    tail_lse = torch.flip(torch.logcumsumexp(torch.flip(filled, [1]), dim=1), [1])
    terms = torch.where(mask, scores - tail_lse, torch.zeros_like(scores))
    loss = -terms.sum(-1)
    first = scores[:, 0]
    second = (
        torch.where(mask[:, 1], scores[:, 1], torch.full_like(first, float("nan"))) if scores.shape[1] > 1 else None
    )
    return _output(loss, first, second, reduction)


# --------------------------------------------------------------------------
# Direct preference losses (sheet part B)
# --------------------------------------------------------------------------


def _log_ratios(
    loss: str,
    policy_chosen: Tensor,
    policy_rejected: Tensor,
    ref_chosen: Tensor,
    ref_rejected: Tensor,
    **per_example: Tensor | None,
) -> tuple[Tensor, Tensor]:
    """``(rho_w, rho_l)`` after checking that the four log-probs (and ``per_example``) share one shape."""
    _check_shapes(
        loss,
        {
            "policy_chosen_logps": policy_chosen,
            "policy_rejected_logps": policy_rejected,
            "ref_chosen_logps": ref_chosen,
            "ref_rejected_logps": ref_rejected,
            **per_example,
        },
    )
    return policy_chosen - ref_chosen, policy_rejected - ref_rejected


@register("dpo", "sigmoid", "cdpo")
def dpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    beta: float = 0.1,
    label_smoothing: float = 0.0,
    reduction: str = "none",
) -> LossOutput:
    """DPO ``-logsig(beta * Delta)``, ``Delta = rho_w - rho_l`` (B1); conservative DPO with
    ``label_smoothing = eps`` (A3: ``-(1-eps) logsig(beta Delta) - eps logsig(-beta Delta)``).

    Implicit rewards are ``beta * rho``. For reference-free DPO pass zeros as
    the reference log-probs.
    """
    _check_epsilon(label_smoothing, "label_smoothing")
    rho_w, rho_l = _log_ratios(
        "dpo", policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps
    )
    loss = _soft_logistic(beta * (rho_w - rho_l), 1.0 - label_smoothing)
    return _output(loss, beta * rho_w, beta * rho_l, reduction)


@register("ipo")
def ipo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    tau: float = 0.1,
    chosen_lengths: Tensor | None = None,
    rejected_lengths: Tensor | None = None,
    reduction: str = "none",
) -> LossOutput:
    """IPO ``(Delta - 1/(2 tau))^2`` (B3).

    Summed log-probs, as in the paper and the DPO authors' code. Pass
    ``chosen_lengths`` and ``rejected_lengths`` for TRL's length-normalised
    variant (``rho / |y|``).
    """
    if tau <= 0:
        raise ValueError(f"tau must be positive, got {tau}.")
    rho_w, rho_l = _log_ratios(
        "ipo",
        policy_chosen_logps,
        policy_rejected_logps,
        ref_chosen_logps,
        ref_rejected_logps,
        chosen_lengths=chosen_lengths,
        rejected_lengths=rejected_lengths,
    )
    if (chosen_lengths is None) != (rejected_lengths is None):
        raise ValueError("give both chosen_lengths and rejected_lengths, or neither.")
    if chosen_lengths is not None and rejected_lengths is not None:
        rho_w, rho_l = rho_w / chosen_lengths, rho_l / rejected_lengths
    loss = (rho_w - rho_l - 1.0 / (2.0 * tau)) ** 2
    return _output(loss, tau * rho_w, tau * rho_l, reduction)


@register("rdpo", "robust")
def rdpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    beta: float = 0.1,
    epsilon: float = 0.1,
    reduction: str = "none",
) -> LossOutput:
    """Robust DPO for a known label-flip rate ``eps`` (B4).

    ``[(1 - eps) l(Delta) - eps l(-Delta)] / (1 - 2 eps)`` with
    ``l(Delta) = -logsig(beta Delta)``: an unbiased estimate of the clean DPO
    loss under random flips. Unbounded below for ``eps > 0``.
    """
    _check_epsilon(epsilon)
    rho_w, rho_l = _log_ratios(
        "rdpo", policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps
    )
    z = beta * (rho_w - rho_l)
    loss = (-(1.0 - epsilon) * F.logsigmoid(z) + epsilon * F.logsigmoid(-z)) / (1.0 - 2.0 * epsilon)
    return _output(loss, beta * rho_w, beta * rho_l, reduction)


@register("simpo")
def simpo_loss(
    policy_chosen_avg_logps: Tensor,
    policy_rejected_avg_logps: Tensor,
    beta: float = 2.0,
    gamma_beta_ratio: float = 0.25,
    label_smoothing: float = 0.0,
    reduction: str = "none",
) -> LossOutput:
    """SimPO ``-logsig(beta (A_w - A_l) - gamma)`` on length-normalised log-probs, no reference (B6).

    Parametrised as the authors' code: ``gamma = beta * gamma_beta_ratio``
    (defaults beta 2.0, ratio 0.25). Rewards are ``beta * A``.
    """
    _check_shapes(
        "simpo",
        {"policy_chosen_avg_logps": policy_chosen_avg_logps, "policy_rejected_avg_logps": policy_rejected_avg_logps},
    )
    _check_epsilon(label_smoothing, "label_smoothing")
    logits = policy_chosen_avg_logps - policy_rejected_avg_logps - gamma_beta_ratio
    loss = _soft_logistic(beta * logits, 1.0 - label_smoothing)
    return _output(loss, beta * policy_chosen_avg_logps, beta * policy_rejected_avg_logps, reduction)


def _fdpo_score(rho: Tensor, divergence: str, alpha: float) -> Tensor:
    if divergence == "reverse_kl":
        return rho
    if divergence == "forward_kl":
        return -torch.exp(-rho)
    if divergence == "js":
        return F.logsigmoid(rho)
    if divergence == "alpha":
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must lie in (0, 1), got {alpha}.")
        return -torch.expm1(-alpha * rho) / alpha
    raise ValueError(f"divergence must be reverse_kl, forward_kl, js or alpha; got {divergence!r}.")


@register("fdpo", "f-dpo")
def fdpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    beta: float = 0.1,
    divergence: str = "reverse_kl",
    alpha: float = 0.5,
    reduction: str = "none",
) -> LossOutput:
    """f-DPO ``-logsig(beta f'(u_w) - beta f'(u_l))`` with ``u = exp(rho)`` (B5).

    ``divergence``: ``"reverse_kl"`` (= DPO), ``"forward_kl"`` (``f' = -1/u``),
    ``"js"`` (``f' = log(2u/(1+u))``), ``"alpha"`` (``f' = (1 - u^-alpha)/alpha``,
    the paper's alpha in (0, 1); TRL's coefficient is ``1 - alpha``).
    """
    rho_w, rho_l = _log_ratios(
        "fdpo", policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps
    )
    s_w, s_l = _fdpo_score(rho_w, divergence, alpha), _fdpo_score(rho_l, divergence, alpha)
    loss = -F.logsigmoid(beta * (s_w - s_l))
    return _output(loss, beta * s_w, beta * s_l, reduction)


@register("tdpo")
def tdpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    chosen_seq_kl: Tensor,
    rejected_seq_kl: Tensor,
    beta: float = 0.1,
    alpha: float = 0.5,
    version: int = 2,
    reduction: str = "none",
) -> LossOutput:
    """Token-level DPO (B7): TDPO1 ``-logsig(beta[Delta - (KL_l - KL_w)])`` or
    TDPO2 ``-logsig(beta[Delta - alpha (KL_l - sg(KL_w))])``.

    ``*_seq_kl`` are sequential KLs ``sum_t KL(pi_ref || pi_theta)`` over the
    full vocabulary, from :func:`bradley.nn.logprobs.sequence_kl`. Default
    TDPO2 with beta 0.1, alpha 0.5 (the authors' function default).
    """
    rho_w, rho_l = _log_ratios(
        "tdpo",
        policy_chosen_logps,
        policy_rejected_logps,
        ref_chosen_logps,
        ref_rejected_logps,
        chosen_seq_kl=chosen_seq_kl,
        rejected_seq_kl=rejected_seq_kl,
    )
    if version == 1:
        kl_term = rejected_seq_kl - chosen_seq_kl
    elif version == 2:
        kl_term = alpha * (rejected_seq_kl - chosen_seq_kl.detach())
    else:
        raise ValueError(f"version must be 1 or 2, got {version}.")
    loss = -F.logsigmoid(beta * (rho_w - rho_l - kl_term))
    return _output(loss, beta * rho_w, beta * rho_l, reduction, chosen_kl=chosen_seq_kl, rejected_kl=rejected_seq_kl)


@register("asft")
def asft_loss(
    policy_chosen_avg_logps: Tensor,
    policy_rejected_avg_logps: Tensor,
    lam: float = 0.1,
    beta: float = 1.0,
    reduction: str = "none",
) -> LossOutput:
    """ASFT ``-log p(y_w) - lam [logsig(beta r_odds(y_w)) + logsig(-beta r_odds(y_l))]`` (B8).

    ``p(y) = exp(A(y))`` from length-normalised log-probs and
    ``r_odds = log(p / (1 - p))``; ``beta = 1`` is ASFT, other values the
    tempered variant. No official code exists and the paper's lambda is
    UNCERTAIN; the default 0.1 is the low end of the grid searched by the
    "Blur" paper.
    """
    _check_shapes(
        "asft",
        {"policy_chosen_avg_logps": policy_chosen_avg_logps, "policy_rejected_avg_logps": policy_rejected_avg_logps},
    )
    a_w = policy_chosen_avg_logps.clamp(max=-1e-6)
    a_l = policy_rejected_avg_logps.clamp(max=-1e-6)
    # log(1 - p) = log1p(-exp(A)) = log(-expm1(A)), precise for A near 0.
    odds_w = a_w - torch.log(-torch.expm1(a_w))
    odds_l = a_l - torch.log(-torch.expm1(a_l))
    loss = -a_w - lam * (F.logsigmoid(beta * odds_w) + F.logsigmoid(-beta * odds_l))
    return _output(loss, odds_w, odds_l, reduction)


def dmpo_turn_weights(n_turns: Tensor, max_turns: int, gamma: float = 0.7) -> Tensor:
    """DMPO turn weights ``phi(j, T) = gamma^j (1 - gamma^(T-j)) / (1 - gamma^T)`` (B9).

    Returns shape (B, max_turns), zero for ``j >= T``; ``gamma = 1`` gives
    ``(T - j) / T``.

    Examples
    --------
    >>> import torch
    >>> dmpo_turn_weights(torch.tensor([3]), 3, 0.7).round(decimals=4).tolist()
    [[1.0, 0.5434, 0.2237]]
    """
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma must lie in (0, 1], got {gamma}.")
    j = torch.arange(max_turns, dtype=torch.float64, device=n_turns.device).unsqueeze(0)
    t = n_turns.to(torch.float64).unsqueeze(1)
    if gamma == 1.0:
        w = (t - j) / t
    else:
        w = gamma**j * (1.0 - gamma ** (t - j)) / (1.0 - gamma**t)
    return torch.where(j < t, w, torch.zeros_like(w))


@register("dmpo")
def dmpo_loss(
    policy_chosen_turn_logps: Tensor,
    policy_rejected_turn_logps: Tensor,
    ref_chosen_turn_logps: Tensor,
    ref_rejected_turn_logps: Tensor,
    chosen_turns: Tensor,
    rejected_turns: Tensor,
    beta: float = 0.1,
    gamma: float = 0.7,
    reduction: str = "none",
) -> LossOutput:
    """DMPO multi-turn DPO on turn-weighted log-probs (B9).

    ``*_turn_logps`` have shape (B, J): summed log-probs of each assistant turn
    (entries past a trajectory's turn count are ignored); ``*_turns`` give the
    number of turns ``T_w``, ``T_l`` (they may differ). The same weights
    :func:`dmpo_turn_weights` apply to policy and reference.
    """
    _check_shapes(
        "dmpo", {"policy_chosen_turn_logps": policy_chosen_turn_logps, "ref_chosen_turn_logps": ref_chosen_turn_logps}
    )
    _check_shapes(
        "dmpo",
        {"policy_rejected_turn_logps": policy_rejected_turn_logps, "ref_rejected_turn_logps": ref_rejected_turn_logps},
    )
    for name, logps in (
        ("policy_chosen_turn_logps", policy_chosen_turn_logps),
        ("policy_rejected_turn_logps", policy_rejected_turn_logps),
    ):
        if logps.dim() != 2:
            raise ValueError(f"dmpo: {name} must have shape (B, J), got {tuple(logps.shape)}.")
    b = policy_chosen_turn_logps.shape[0]
    if policy_rejected_turn_logps.shape[0] != b:
        raise ValueError(
            f"dmpo: policy_rejected_turn_logps has {policy_rejected_turn_logps.shape[0]} rows but "
            f"policy_chosen_turn_logps has {b}; both need one row per pair."
        )
    for name, turns in (("chosen_turns", chosen_turns), ("rejected_turns", rejected_turns)):
        if not isinstance(turns, Tensor):
            raise TypeError(f"dmpo: {name} must be a torch.Tensor, got {type(turns).__name__}.")
        if turns.shape != (b,):
            raise ValueError(
                f"dmpo: {name} has shape {tuple(turns.shape)}; it needs shape ({b},), one turn count per row of "
                "the turn log-probs (a (B, 1) tensor would broadcast to a (B, B) loss)."
            )
    weights_w = dmpo_turn_weights(chosen_turns, policy_chosen_turn_logps.shape[1], gamma)
    weights_l = dmpo_turn_weights(rejected_turns, policy_rejected_turn_logps.shape[1], gamma)
    weights_w = weights_w.to(policy_chosen_turn_logps.dtype)
    weights_l = weights_l.to(policy_rejected_turn_logps.dtype)
    rho_w = (weights_w * (policy_chosen_turn_logps - ref_chosen_turn_logps)).sum(-1)
    rho_l = (weights_l * (policy_rejected_turn_logps - ref_rejected_turn_logps)).sum(-1)
    loss = -F.logsigmoid(beta * (rho_w - rho_l))
    return _output(loss, beta * rho_w, beta * rho_l, reduction)


@register("todo")
def todo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    is_tie: Tensor,
    beta: float = 0.01,
    alpha: float = 0.5,
    label_smoothing: float = 0.0,
    reduction: str = "none",
) -> LossOutput:
    """TODO: DPO with ternary (win / tie / loss) preferences via TOBT (A6).

    Non-tie pairs: ``-logsig(beta Delta - alpha)``; tied pairs:
    ``-log[(e^{2 alpha} - 1) sig(beta Delta - alpha) sig(-beta Delta - alpha)]``.
    Defaults from the authors' configs: beta 0.01, alpha 0.5 (their
    ``dpo_theta = -alpha``).
    """
    rho_w, rho_l = _log_ratios(
        "todo", policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, is_tie=is_tie
    )
    loss = _tie_aware_logistic(beta * (rho_w - rho_l), is_tie, alpha, label_smoothing)
    return _output(loss, beta * rho_w, beta * rho_l, reduction)


@register("pro")
def pro_loss(
    policy_avg_logps: Tensor,
    rewards: Tensor,
    best_response_logps: Tensor | None = None,
    sft_weight: float = 0.05,
    mask: Tensor | None = None,
    reduction: str = "none",
) -> LossOutput:
    """PRO: listwise ranking loss with reward-gap temperatures plus an SFT term (A8).

    Parameters
    ----------
    policy_avg_logps : (B, n)
        Length-normalised policy log-probs of n responses, sorted by reward
        (best first).
    rewards : (B, n)
        The reward-model scores, non-increasing along each row.
    best_response_logps : (B,), optional
        Summed log-probs of the best response for the SFT term
        ``sft_weight * (n - 1)^2 * (-S(y^1))`` (the ``(n-1)^2`` scaling is the
        authors' code; the paper's wording is UNCERTAIN).
    mask : (B, n), optional
        Real responses of ragged lists (first in each row).

    Equal rewards would divide by zero in the temperatures ``1/(r_k - r_i)``;
    here the gaps are clamped at 1e-6 (the original code does not guard this).
    """
    _check_shapes("pro", {"policy_avg_logps": policy_avg_logps, "rewards": rewards, "mask": mask})
    if policy_avg_logps.dim() != 2:
        raise ValueError(f"pro: policy_avg_logps must have shape (B, n), got {tuple(policy_avg_logps.shape)}.")
    if best_response_logps is not None:
        _check_shapes("pro", {"best_response_logps": best_response_logps})
        if best_response_logps.shape != policy_avg_logps.shape[:1]:
            raise ValueError(
                f"pro: best_response_logps has shape {tuple(best_response_logps.shape)}; it needs shape "
                f"({policy_avg_logps.shape[0]},), one value per row of policy_avg_logps "
                "(a (B, 1) tensor would broadcast to a (B, B) loss)."
            )
    s, r = policy_avg_logps, rewards
    b, n = s.shape
    if mask is None:
        mask = torch.ones_like(s, dtype=torch.bool)
    mask = mask.bool()
    total = torch.zeros(b, dtype=s.dtype, device=s.device)
    counted = torch.zeros(b, dtype=s.dtype, device=s.device)
    for k in range(n - 1):
        rest = mask[:, k + 1 :] & mask[:, k : k + 1]
        gaps = (r[:, k : k + 1] - r[:, k + 1 :]).clamp(min=1e-6)  # 1 / T_k^i
        own = gaps.masked_fill(~rest, 0.0).max(dim=1).values  # 1 / T_k^k = max gap
        logits = torch.cat([(s[:, k] * own).unsqueeze(1), s[:, k + 1 :] * gaps], dim=1)
        logits = logits.masked_fill(torch.cat([mask[:, k : k + 1], rest], dim=1).logical_not(), float("-inf"))
        step = -(logits[:, 0] - torch.logsumexp(logits, dim=1))
        valid = rest.any(dim=1)
        total = total + torch.where(valid, step, torch.zeros_like(step))
        counted = counted + valid.to(s.dtype)
    loss = total
    if best_response_logps is not None and sft_weight:
        n_items = mask.sum(dim=1).to(s.dtype)
        loss = loss + sft_weight * (n_items - 1) ** 2 * (-best_response_logps)
    return _output(loss, s[:, 0], s[:, 1] if n > 1 else None, reduction, ranking_terms=counted)


@register("sppo")
def sppo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    prev_chosen_logps: Tensor,
    prev_rejected_logps: Tensor,
    chosen_win_rate: Tensor | float = 1.0,
    rejected_win_rate: Tensor | float = 0.0,
    eta: float = 1000.0,
    variant: str = "sppo",
    reduction: str = "none",
) -> LossOutput:
    """SPPO square loss against the previous iterate ``pi_t`` (B10).

    ``variant="sppo"``: ``1/2 [(rho_w - eta (P_w - 1/2))^2 + (rho_l - eta (P_l - 1/2))^2]``
    with ``P`` the estimated win rates against ``pi_t`` (authors' code: eta
    = 1/beta = 1000). ``"single"`` uses one pairwise ``P = chosen_win_rate``
    for both targets; ``"hard"`` is TRL's ``sppo_hard``: targets
    ``+-1/(2 beta)`` with ``beta = 1/eta`` and no 1/2 factor.
    """
    _check_shapes(
        "sppo",
        {
            "policy_chosen_logps": policy_chosen_logps,
            "policy_rejected_logps": policy_rejected_logps,
            "prev_chosen_logps": prev_chosen_logps,
            "prev_rejected_logps": prev_rejected_logps,
        },
        {"chosen_win_rate": chosen_win_rate, "rejected_win_rate": rejected_win_rate},
    )
    rho_w = policy_chosen_logps - prev_chosen_logps
    rho_l = policy_rejected_logps - prev_rejected_logps
    if variant == "sppo":
        loss = 0.5 * ((rho_w - eta * (chosen_win_rate - 0.5)) ** 2 + (rho_l - eta * (rejected_win_rate - 0.5)) ** 2)
    elif variant == "single":
        target = eta * (chosen_win_rate - 0.5)
        loss = (rho_w - target) ** 2 + (rho_l + target) ** 2
    elif variant == "hard":
        loss = (rho_w - eta / 2.0) ** 2 + (rho_l + eta / 2.0) ** 2
    else:
        raise ValueError(f"variant must be 'sppo', 'single' or 'hard'; got {variant!r}.")
    return _output(loss, rho_w, rho_l, reduction)


@register("inpo")
def inpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    prev_chosen_logps: Tensor,
    prev_rejected_logps: Tensor,
    eta: float = 0.005,
    tau: float | None = None,
    reduction: str = "none",
) -> LossOutput:
    """INPO ``(h_t - 1/(2 eta))^2`` (B11), with
    ``h_t = log pi(y_w)/pi(y_l) - (tau/eta) log ref-ratio - ((eta - tau)/eta) log pi_t-ratio``.

    Defaults from the paper: eta 0.005, tau = eta / 3.
    """
    _check_shapes(
        "inpo",
        {
            "policy_chosen_logps": policy_chosen_logps,
            "policy_rejected_logps": policy_rejected_logps,
            "ref_chosen_logps": ref_chosen_logps,
            "ref_rejected_logps": ref_rejected_logps,
            "prev_chosen_logps": prev_chosen_logps,
            "prev_rejected_logps": prev_rejected_logps,
        },
    )
    tau = eta / 3.0 if tau is None else tau
    policy_ratio = policy_chosen_logps - policy_rejected_logps
    ref_ratio = ref_chosen_logps - ref_rejected_logps
    prev_ratio = prev_chosen_logps - prev_rejected_logps
    h = policy_ratio - (tau / eta) * ref_ratio - ((eta - tau) / eta) * prev_ratio
    loss = (h - 1.0 / (2.0 * eta)) ** 2
    chosen, rejected = policy_chosen_logps - prev_chosen_logps, policy_rejected_logps - prev_rejected_logps
    return _output(loss, chosen, rejected, reduction, h=h)


@register("dno")
def dno_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    prev_chosen_logps: Tensor,
    prev_rejected_logps: Tensor,
    eta: float = 0.1,
    target: Tensor | float = 1.0,
    reduction: str = "none",
) -> LossOutput:
    """Direct Nash Optimization (B13): DPO against the previous iterate ``pi_t``.

    ``target = 1`` gives the practical DNO-Prct loss
    ``-logsig(eta log pi(y+)/pi_t(y+) - eta log pi(y-)/pi_t(y-))``; a soft
    ``target = sigmoid(r_t(y1) - r_t(y2))`` gives the conceptual loss (Eq. 8).
    """
    _check_shapes(
        "dno",
        {
            "policy_chosen_logps": policy_chosen_logps,
            "policy_rejected_logps": policy_rejected_logps,
            "prev_chosen_logps": prev_chosen_logps,
            "prev_rejected_logps": prev_rejected_logps,
        },
        {"target": target},
    )
    rho_w = policy_chosen_logps - prev_chosen_logps
    rho_l = policy_rejected_logps - prev_rejected_logps
    loss = _soft_logistic(eta * (rho_w - rho_l), target)
    return _output(loss, eta * rho_w, eta * rho_l, reduction)


@register("egpo", "online-ipo")
def egpo_loss(
    policy_avg_logps: Tensor,
    ref_avg_logps: Tensor,
    policy_other_avg_logps: Tensor,
    ref_other_avg_logps: Tensor,
    preference: Tensor,
    other_preference: Tensor | None = None,
    beta: float = 0.1,
    reduction: str = "none",
) -> LossOutput:
    """EGPO's online-IPO loss (B14), on length-normalised log-probs.

    ``((A(y) - A_ref(y)) - (A(y') - A_ref(y')) - (P(y > y'') - P(y' > y''))/beta)^2``
    where ``y''`` is drawn from the opponent policy. With ``other_preference``
    omitted, ``preference`` is ``P(y > y')`` and the variance-reduced target
    ``(P(y > y') - 1/2) / beta`` is used. The extragradient procedure itself
    (a half step, new targets, restore, full step) belongs to the trainer:
    compute the targets at the half-step parameters and call this loss at the
    saved ones, as the authors' code does.
    """
    _check_shapes(
        "egpo",
        {
            "policy_avg_logps": policy_avg_logps,
            "ref_avg_logps": ref_avg_logps,
            "policy_other_avg_logps": policy_other_avg_logps,
            "ref_other_avg_logps": ref_other_avg_logps,
            "preference": preference,
            "other_preference": other_preference,
        },
    )
    rho = policy_avg_logps - ref_avg_logps
    rho_other = policy_other_avg_logps - ref_other_avg_logps
    target = (preference - 0.5) / beta if other_preference is None else (preference - other_preference) / beta
    loss = (rho - rho_other - target) ** 2
    return _output(loss, rho, rho_other, reduction)
