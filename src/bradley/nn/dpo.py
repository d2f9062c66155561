"""Direct preference losses under TRL's names and meanings: DPOTrainer's ``loss_type`` family, CPO, ORPO, KTO.

Every loss here is a kernel registered with :func:`bradley.nn.registry.register`
and reached through :func:`bradley.nn.get`. A loss registered under a TRL name
computes what TRL 1.16 computes for that name, on the same inputs, to float64
round-off (tested against TRL's own code): summed log-probs, ``beta = 0.1``,
TRL's per-loss reading of ``label_smoothing``, and TRL's modifiers:

* ``f_divergence_type`` / ``f_alpha_divergence_coef`` (f-DPO) on the losses
  TRL applies them to (``sigmoid``, ``hinge``, ``ipo``, ``exo_pair``,
  ``robust``, ``discopop``, ``sigmoid_norm``); ``sft`` accepts them without
  effect, as TRL does; the other losses accept only ``"reverse_kl"`` and say
  so, as TRL refuses the combination.
* ``ld_alpha`` (LD-DPO): log-probs of the tokens beyond the shorter response's
  length are weighted by ``ld_alpha``, for policy and reference alike; needs
  the per-token log-probs of both and the masks.
* ``use_weighting`` (WPO): each pair's loss is multiplied by the detached
  weights ``exp(mean_t[logp_t - log sum_v p_v^2])`` of its two responses;
  needs per-token policy log-probs, masks and ``*_log_sum_sq_probs``.

TRL's combinations (``loss_type=["sigmoid", "sft"]`` = RPO, MPO) are
``get([...], loss_weights=[...])``. Where the paper and TRL differ, the paper's
version has its own name: ``cdpo`` (conservative DPO; TRL's ``sigmoid`` ignores
``label_smoothing``), ``ipo_sum`` (IPO on summed log-probs; TRL's ``ipo``
divides by the lengths).

The rewards every loss logs are ``beta * (log pi - log pi_ref)`` of the log-probs
the loss uses (after LD weighting), ``beta * log pi`` for the reference-free CPO
and ORPO (summed or averaged as the loss uses them).

Examples
--------
>>> import torch
>>> from bradley.nn import get
>>> batch = dict(policy_chosen_logps=torch.tensor([-10.0]), policy_rejected_logps=torch.tensor([-20.0]),
...              ref_chosen_logps=torch.tensor([-15.0]), ref_rejected_logps=torch.tensor([-15.0]))
>>> round(get("sigmoid")(**batch).loss.item(), 6)          # TRL's default beta = 0.1
0.313262
>>> round(get("hinge", beta=0.05)(**batch).loss.item(), 6)
0.5
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from bradley.nn.registry import LossOutput, check_flip_rate, check_shapes, output, register, soft_logistic

__all__ = [
    "F_DIVERGENCES",
    "aot_loss",
    "aot_unpaired_loss",
    "apo_down_loss",
    "apo_zero_loss",
    "apo_zero_unpaired_loss",
    "bco_pair_loss",
    "cdpo_loss",
    "cpo_hinge_loss",
    "cpo_ipo_loss",
    "cpo_loss",
    "cpo_simpo_loss",
    "discopop_loss",
    "dpo_loss",
    "exo_pair_loss",
    "f_divergence_score_difference",
    "fdpo_loss",
    "hinge_loss",
    "ipo_loss",
    "ipo_sum_loss",
    "kto_loss",
    "log1mexp",
    "nca_pair_loss",
    "orpo_loss",
    "robust_loss",
    "sft_loss",
    "sigmoid_norm_loss",
    "sppo_hard_loss",
]

Tensor = torch.Tensor

F_DIVERGENCES = ("reverse_kl", "forward_kl", "js_divergence", "alpha_divergence")
# TRL applies f_divergence_type to these loss types only (and refuses it for the others).
_F_DIVERGENCE_LOSSES = ("sigmoid", "sigmoid_norm", "hinge", "ipo", "exo_pair", "robust", "discopop", "sft")

_TRL = "TRL 1.16 DPOTrainer"


# --------------------------------------------------------------------------
# Shared pieces: LD-DPO log-probs, WPO weights, f-divergence scores
# --------------------------------------------------------------------------


def _check_tokens(loss: str, side: str, mask: Tensor | None, **tokens: Tensor | None) -> None:
    """Per-token tensors of one side must share the mask's (B, T) shape."""
    check_shapes(loss, {f"{side}_mask": mask, **tokens})
    if mask is not None and mask.dim() != 2:
        raise ValueError(f"{loss}: {side}_mask must have shape (B, T), got {tuple(mask.shape)}.")


def _need(loss: str, what: str, **fields: Tensor | None) -> None:
    missing = [name for name, value in fields.items() if value is None]
    if missing:
        raise ValueError(f"{loss}: {what} needs {', '.join(missing)}, which the batch lacks.")


def _ld_logps(token_logps: Tensor, mask: Tensor, shared: Tensor, ld_alpha: float) -> Tensor:
    """LD-DPO sequence log-prob: the first ``shared`` response tokens count fully, the rest by ``ld_alpha``."""
    on = mask.bool()
    position = on.long().cumsum(-1)  # 1-based index of each response token
    head = on & (position <= shared.unsqueeze(-1).to(position.dtype))
    zero = torch.zeros((), dtype=token_logps.dtype, device=token_logps.device)
    # Select, not multiply: a -inf (or nan) log-prob off the mask times 0 would be nan.
    head_sum = torch.where(head, token_logps, zero).sum(-1)
    tail_sum = torch.where(on & ~head, token_logps, zero).sum(-1)
    return head_sum + ld_alpha * tail_sum


def _pair_logps(
    loss: str,
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    tokens: dict[str, Tensor | None],
    ld_alpha: float | None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The four sequence log-probs the loss uses: summed, or LD-weighted when ``ld_alpha`` is set."""
    check_shapes(
        loss,
        {
            "policy_chosen_logps": policy_chosen_logps,
            "policy_rejected_logps": policy_rejected_logps,
            "ref_chosen_logps": ref_chosen_logps,
            "ref_rejected_logps": ref_rejected_logps,
        },
    )
    if ld_alpha is None:
        return policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps
    if not 0.0 <= ld_alpha <= 1.0:
        raise ValueError(f"{loss}: ld_alpha must lie in [0, 1] (1 = plain summed log-probs), got {ld_alpha}.")
    names = (
        "policy_chosen_token_logps",
        "policy_rejected_token_logps",
        "ref_chosen_token_logps",
        "ref_rejected_token_logps",
        "chosen_mask",
        "rejected_mask",
    )
    # The reference log-probs must be LD-weighted too, so their per-token values are needed.
    _need(loss, "ld_alpha (LD-DPO weights the tokens of policy and reference)", **{n: tokens[n] for n in names})
    pc, pr, rc, rr, cm, rm = (tokens[n] for n in names)
    assert pc is not None and pr is not None and rc is not None and rr is not None
    assert cm is not None and rm is not None
    _check_tokens(loss, "chosen", cm, policy_chosen_token_logps=pc, ref_chosen_token_logps=rc)
    _check_tokens(loss, "rejected", rm, policy_rejected_token_logps=pr, ref_rejected_token_logps=rr)
    shared = torch.minimum(cm.sum(-1), rm.sum(-1))
    return (
        _ld_logps(pc, cm, shared, ld_alpha),
        _ld_logps(pr, rm, shared, ld_alpha),
        _ld_logps(rc, cm, shared, ld_alpha),
        _ld_logps(rr, rm, shared, ld_alpha),
    )


def _wpo_weights(loss: str, tokens: dict[str, Tensor | None]) -> Tensor:
    """WPO weight ``w_w * w_l`` per pair, ``w = exp(mean over response tokens of logp - log sum_v p_v^2)``."""
    names = (
        "policy_chosen_token_logps",
        "policy_rejected_token_logps",
        "chosen_log_sum_sq_probs",
        "rejected_log_sum_sq_probs",
        "chosen_mask",
        "rejected_mask",
    )
    _need(loss, "use_weighting (WPO)", **{n: tokens[n] for n in names})
    pc, pr, sc, sr, cm, rm = (tokens[n] for n in names)
    assert pc is not None and pr is not None and sc is not None and sr is not None
    assert cm is not None and rm is not None
    _check_tokens(loss, "chosen", cm, policy_chosen_token_logps=pc, chosen_log_sum_sq_probs=sc)
    _check_tokens(loss, "rejected", rm, policy_rejected_token_logps=pr, rejected_log_sum_sq_probs=sr)
    with torch.no_grad():  # the weights are data, not a path for gradients (WPO Eq. 2)
        means = []
        for logps, sq, mask in ((pc, sc, cm), (pr, sr, rm)):
            on = mask.bool()
            # Select, not multiply: padding may hold -inf, and -inf * 0 is nan.
            gaps = torch.where(on, logps - sq, torch.zeros((), dtype=logps.dtype, device=logps.device))
            means.append(gaps.sum(-1) / on.sum(-1).clamp(min=1).to(logps.dtype))
        return torch.exp(means[0]) * torch.exp(means[1])


def _exp_cap(dtype: torch.dtype) -> float:
    # Beyond exp(cap) every loss here has saturated (or is beyond any useful size); the cap keeps
    # exp(cap)^2 (IPO squares the score) and its gradient finite in the dtype.
    return 300.0 if dtype == torch.float64 else 40.0


def _exp_difference(a: Tensor, b: Tensor) -> Tensor:
    """``exp(a) - exp(b)`` without overflow: ``exp(min(m, cap)) * (exp(a - m) - exp(b - m))``, ``m = max(a, b)``.

    Exact (to rounding) while ``max(a, b) <= cap``; above it the common factor is
    capped, so the sign and the zero at ``a == b`` stay right and the
    loss saturates with a finite gradient instead of ``0 * inf = nan``.
    """
    m = torch.maximum(a, b).detach()
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    scale = torch.exp(m.clamp(max=_exp_cap(a.dtype)))
    return scale * (torch.exp(a - m) - torch.exp(b - m))


def f_divergence_score_difference(
    chosen_logratios: Tensor,
    rejected_logratios: Tensor,
    f_divergence_type: str = "reverse_kl",
    f_alpha_divergence_coef: float = 0.5,
    chosen_lengths: Tensor | None = None,
    rejected_lengths: Tensor | None = None,
) -> Tensor:
    """``s_w / |y_w| - s_l / |y_l|`` for TRL's f-divergence scores ``s = f'(pi / pi_ref)`` of the log-ratios.

    TRL's scores (constants included, which matter once divided by the
    lengths): reverse KL ``rho``; forward KL ``1 - exp(-rho)``; Jensen-Shannon
    ``log 2 + logsigmoid(rho)``; alpha divergence
    ``(exp((a - 1) rho) - 1) / (a - 1)`` with ``a = f_alpha_divergence_coef``
    (the f-DPO paper's alpha is ``1 - a``; ``a = 1`` is reverse KL; forward KL is
    ``a = 0``). Without lengths both are 1. Exponentials are differenced without
    overflow (see ``_exp_difference``), so very negative log-ratios give a
    saturated loss with finite gradients.

    Examples
    --------
    >>> import torch
    >>> rw, rl = torch.tensor([0.5]), torch.tensor([-1.0])
    >>> f_divergence_score_difference(rw, rl, "forward_kl")   # (1 - e^-0.5) - (1 - e^1)
    tensor([2.1118])
    """
    ones = torch.ones_like(chosen_logratios)
    lw = ones if chosen_lengths is None else chosen_lengths.clamp(min=1).to(chosen_logratios.dtype)
    ll = ones if rejected_lengths is None else rejected_lengths.clamp(min=1).to(rejected_logratios.dtype)
    if f_divergence_type == "reverse_kl" or (
        f_divergence_type == "alpha_divergence" and abs(f_alpha_divergence_coef - 1.0) < 1e-6
    ):
        return chosen_logratios / lw - rejected_logratios / ll
    if f_divergence_type == "js_divergence":
        log2 = math.log(2.0)
        return (log2 + F.logsigmoid(chosen_logratios)) / lw - (log2 + F.logsigmoid(rejected_logratios)) / ll
    if f_divergence_type in ("forward_kl", "alpha_divergence"):
        a = 0.0 if f_divergence_type == "forward_kl" else float(f_alpha_divergence_coef)
        coef = 1.0 / (a - 1.0)
        t_w, t_l = (a - 1.0) * chosen_logratios, (a - 1.0) * rejected_logratios
        varying = _exp_difference(t_w - torch.log(lw), t_l - torch.log(ll))
        return coef * (varying - (1.0 / lw - 1.0 / ll))
    raise ValueError(f"f_divergence_type must be one of {', '.join(F_DIVERGENCES)}; got {f_divergence_type!r}.")


def _reverse_kl_only(loss: str, f_divergence_type: str) -> None:
    if f_divergence_type != "reverse_kl":
        raise ValueError(
            f"{loss}: f_divergence_type={f_divergence_type!r} is not defined for this loss (f-DPO's log Z(x) term "
            "cancels only in the chosen-minus-rejected difference); use 'reverse_kl', or one of "
            f"{', '.join(n for n in _F_DIVERGENCE_LOSSES if n != 'sft')} (as TRL)."
        )


class _Pair:
    """What a DPOTrainer-family kernel works from: log-ratios (after LD weighting) and the WPO weights."""

    def __init__(
        self,
        loss: str,
        logps: tuple[Tensor, Tensor, Tensor, Tensor],
        tokens: dict[str, Tensor | None],
        beta: float,
        ld_alpha: float | None,
        use_weighting: bool,
    ) -> None:
        if beta <= 0:
            raise ValueError(f"{loss}: beta must be positive, got {beta}.")
        pc, pr, rc, rr = _pair_logps(loss, *logps, tokens, ld_alpha)
        self.beta = beta
        self.chosen_logps, self.rejected_logps = pc, pr
        self.ref_chosen_logps, self.ref_rejected_logps = rc, rr
        self.rho_w, self.rho_l = pc - rc, pr - rr
        self.weights = _wpo_weights(loss, tokens) if use_weighting else None

    def finish(self, per_example: Tensor, **extras: Tensor) -> LossOutput:
        if self.weights is not None:
            per_example = per_example * self.weights
            extras["wpo_weight"] = self.weights
        return output(per_example, self.beta * self.rho_w, self.beta * self.rho_l, **extras)


def _pair(
    loss: str,
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    policy_chosen_token_logps: Tensor | None,
    policy_rejected_token_logps: Tensor | None,
    ref_chosen_token_logps: Tensor | None,
    ref_rejected_token_logps: Tensor | None,
    chosen_mask: Tensor | None,
    rejected_mask: Tensor | None,
    chosen_log_sum_sq_probs: Tensor | None,
    rejected_log_sum_sq_probs: Tensor | None,
    *,
    beta: float,
    ld_alpha: float | None,
    use_weighting: bool,
) -> _Pair:
    tokens = {
        "policy_chosen_token_logps": policy_chosen_token_logps,
        "policy_rejected_token_logps": policy_rejected_token_logps,
        "ref_chosen_token_logps": ref_chosen_token_logps,
        "ref_rejected_token_logps": ref_rejected_token_logps,
        "chosen_mask": chosen_mask,
        "rejected_mask": rejected_mask,
        "chosen_log_sum_sq_probs": chosen_log_sum_sq_probs,
        "rejected_log_sum_sq_probs": rejected_log_sum_sq_probs,
    }
    logps = (policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    return _Pair(loss, logps, tokens, beta, ld_alpha, use_weighting)


def _check_target(loss: str, target: Tensor, like: Tensor) -> None:
    check_shapes(loss, {"policy_chosen_logps": like}, broadcast={"target": target})
    if bool(((target < 0) | (target > 1)).any()):
        raise ValueError(f"{loss}: target must hold probabilities in [0, 1], got values outside it.")


def _check_beta(loss: str, beta: float) -> None:
    if beta <= 0:
        raise ValueError(f"{loss}: beta must be positive, got {beta}.")


# --------------------------------------------------------------------------
# DPOTrainer loss types
# --------------------------------------------------------------------------


@register(
    "sigmoid",
    "dpo",
    trl="sigmoid",
    source=f"Rafailov et al. 2023, DPO; soft target as MMPO (Kim et al. 2024); {_TRL}",
    symbols={"beta": "beta"},
)
def dpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    target: Tensor | None = None,
    policy_chosen_token_logps: Tensor | None = None,
    policy_rejected_token_logps: Tensor | None = None,
    ref_chosen_token_logps: Tensor | None = None,
    ref_rejected_token_logps: Tensor | None = None,
    chosen_mask: Tensor | None = None,
    rejected_mask: Tensor | None = None,
    chosen_log_sum_sq_probs: Tensor | None = None,
    rejected_log_sum_sq_probs: Tensor | None = None,
    *,
    beta: float = 0.1,
    f_divergence_type: str = "reverse_kl",
    f_alpha_divergence_coef: float = 0.5,
    ld_alpha: float | None = None,
    use_weighting: bool = False,
) -> LossOutput:
    """DPO, TRL's ``sigmoid``: ``-logsigmoid(beta * (s_w - s_l))``, ``s`` the f-divergence score of ``rho``.

    With the default reverse KL, ``s = rho = log pi - log pi_ref`` (summed).
    Like TRL since 0.29 there is no ``label_smoothing`` here: the paper's
    conservative DPO is ``cdpo``, TRL's robust DPO is ``robust``. A per-example
    soft label ``target`` = P(chosen beats rejected) (MMPO's
    ``sigmoid(gamma * (score_w - score_l))``: a data column, not a
    hyperparameter) makes the loss the cross-entropy
    ``-[p logsig(z) + (1 - p) logsig(-z)]``, ``z = beta (s_w - s_l)``;
    without it this is TRL's loss. The per-token inputs are read only for
    ``ld_alpha`` (LD-DPO) and ``use_weighting`` (WPO).

    Examples
    --------
    >>> import torch
    >>> from bradley.nn import get
    >>> x = dict(policy_chosen_logps=torch.tensor([-10.0, -10.0]), policy_rejected_logps=torch.tensor([-20.0, -20.0]),
    ...          ref_chosen_logps=torch.tensor([-15.0, -15.0]), ref_rejected_logps=torch.tensor([-15.0, -15.0]))
    >>> get("dpo", beta=0.1)(**x).loss
    tensor([0.3133, 0.3133])
    >>> get("dpo", beta=0.1)(**x, target=torch.tensor([1.0, 0.5])).loss   # MMPO soft labels
    tensor([0.3133, 0.8133])
    """
    pair = _pair(
        "sigmoid",
        policy_chosen_logps,
        policy_rejected_logps,
        ref_chosen_logps,
        ref_rejected_logps,
        policy_chosen_token_logps,
        policy_rejected_token_logps,
        ref_chosen_token_logps,
        ref_rejected_token_logps,
        chosen_mask,
        rejected_mask,
        chosen_log_sum_sq_probs,
        rejected_log_sum_sq_probs,
        beta=beta,
        ld_alpha=ld_alpha,
        use_weighting=use_weighting,
    )
    z = beta * f_divergence_score_difference(pair.rho_w, pair.rho_l, f_divergence_type, f_alpha_divergence_coef)
    if target is None:
        return pair.finish(-F.logsigmoid(z))
    _check_target("sigmoid", target, z)
    return pair.finish(soft_logistic(z, target))


@register(
    "fdpo",
    "f-dpo",
    trl="sigmoid + f_divergence_type",
    source=f"Wang et al. 2024, Beyond Reverse KL (f-DPO); {_TRL} parametrisation",
    symbols={"beta": "beta", "f_alpha_divergence_coef": "1 - alpha (paper)"},
)
def fdpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    policy_chosen_token_logps: Tensor | None = None,
    policy_rejected_token_logps: Tensor | None = None,
    ref_chosen_token_logps: Tensor | None = None,
    ref_rejected_token_logps: Tensor | None = None,
    chosen_mask: Tensor | None = None,
    rejected_mask: Tensor | None = None,
    chosen_log_sum_sq_probs: Tensor | None = None,
    rejected_log_sum_sq_probs: Tensor | None = None,
    *,
    f_divergence_type: str,
    beta: float = 0.1,
    f_alpha_divergence_coef: float = 0.5,
    ld_alpha: float | None = None,
    use_weighting: bool = False,
) -> LossOutput:
    """f-DPO ``-logsigmoid(beta f'(u_w) - beta f'(u_l))``, ``u = pi / pi_ref``: TRL's ``sigmoid`` with a divergence.

    ``f_divergence_type`` is required: ``reverse_kl`` (= DPO), ``forward_kl``,
    ``js_divergence`` or ``alpha_divergence``. TRL parametrises the
    alpha-divergence by ``f_alpha_divergence_coef = a``,
    ``f'(u) = (u^(a-1) - 1) / (a - 1)``: the paper's alpha is ``1 - a`` (the
    default 0.5 is the same in both). Scores are differenced without overflow,
    so a very unlikely rejected response (``rho_l -> -inf``) gives a loss of 0
    with zero gradients, where ``exp(-rho_l)`` alone overflows and autograd
    returns ``0 * inf = nan``. Rewards are ``beta * rho`` (as TRL logs them).

    Examples
    --------
    >>> import torch
    >>> from bradley.nn import get
    >>> rho_l = torch.tensor([-1e4], requires_grad=True)
    >>> out = get("fdpo", f_divergence_type="forward_kl")(policy_chosen_logps=torch.zeros(1),
    ...     policy_rejected_logps=rho_l, ref_chosen_logps=torch.zeros(1), ref_rejected_logps=torch.zeros(1))
    >>> out.loss.sum().backward()
    >>> out.loss.item() == 0.0, rho_l.grad.item() == 0.0     # exp(1e4) overflows; the loss has saturated
    (True, True)
    """
    return dpo_loss(
        policy_chosen_logps,
        policy_rejected_logps,
        ref_chosen_logps,
        ref_rejected_logps,
        None,
        policy_chosen_token_logps,
        policy_rejected_token_logps,
        ref_chosen_token_logps,
        ref_rejected_token_logps,
        chosen_mask,
        rejected_mask,
        chosen_log_sum_sq_probs,
        rejected_log_sum_sq_probs,
        beta=beta,
        f_divergence_type=f_divergence_type,
        f_alpha_divergence_coef=f_alpha_divergence_coef,
        ld_alpha=ld_alpha,
        use_weighting=use_weighting,
    )


@register(
    "cdpo",
    source="Mitchell 2023, conservative DPO (code: eric-mitchell/direct-preference-optimization)",
    symbols={"beta": "beta", "label_smoothing": "epsilon"},
)
def cdpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    target: Tensor | None = None,
    *,
    label_smoothing: float,
    beta: float = 0.1,
) -> LossOutput:
    """Conservative DPO ``-(1 - eps) logsig(beta Delta) - eps logsig(-beta Delta)``, ``eps = label_smoothing``.

    The paper's label smoothing (TRL <= 0.28 ``sigmoid`` with
    ``label_smoothing``): the observed label is taken as flipped with
    probability ``eps``. With a per-example soft label ``target`` = p the flip
    applies to it: the cross-entropy against ``p (1 - eps) + (1 - p) eps``, so
    ``label_smoothing=0`` with a target is MMPO's soft-target DPO. Minimised at
    ``sigmoid(beta Delta) = 1 - eps``.

    Examples
    --------
    >>> import torch
    >>> from bradley.nn import get
    >>> x = dict(policy_chosen_logps=torch.tensor([0.0]), policy_rejected_logps=torch.tensor([0.0]),
    ...          ref_chosen_logps=torch.tensor([0.0]), ref_rejected_logps=torch.tensor([0.0]))
    >>> round(get("cdpo", label_smoothing=0.1)(**x).loss.item(), 6)   # log 2 at Delta = 0
    0.693147
    """
    check_flip_rate(label_smoothing)
    _check_beta("cdpo", beta)
    check_shapes(
        "cdpo",
        {
            "policy_chosen_logps": policy_chosen_logps,
            "policy_rejected_logps": policy_rejected_logps,
            "ref_chosen_logps": ref_chosen_logps,
            "ref_rejected_logps": ref_rejected_logps,
        },
    )
    rho_w, rho_l = policy_chosen_logps - ref_chosen_logps, policy_rejected_logps - ref_rejected_logps
    z = beta * (rho_w - rho_l)
    p: Tensor | float = 1.0 - label_smoothing
    if target is not None:
        _check_target("cdpo", target, z)
        p = target * (1.0 - label_smoothing) + (1.0 - target) * label_smoothing
    return output(soft_logistic(z, p), beta * rho_w, beta * rho_l)


@register("hinge", trl="hinge", source=f"Zhao et al. 2023, SLiC-HF; {_TRL}", symbols={"beta": "1 / delta"})
def hinge_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    policy_chosen_token_logps: Tensor | None = None,
    policy_rejected_token_logps: Tensor | None = None,
    ref_chosen_token_logps: Tensor | None = None,
    ref_rejected_token_logps: Tensor | None = None,
    chosen_mask: Tensor | None = None,
    rejected_mask: Tensor | None = None,
    chosen_log_sum_sq_probs: Tensor | None = None,
    rejected_log_sum_sq_probs: Tensor | None = None,
    *,
    beta: float = 0.1,
    f_divergence_type: str = "reverse_kl",
    f_alpha_divergence_coef: float = 0.5,
    ld_alpha: float | None = None,
    use_weighting: bool = False,
) -> LossOutput:
    """SLiC hinge ``relu(1 - beta (s_w - s_l))`` (TRL ``hinge``); zero once the margin exceeds ``1 / beta``.

    Examples
    --------
    >>> import torch
    >>> from bradley.nn import get
    >>> x = dict(policy_chosen_logps=torch.tensor([-1.0, -1.0]), policy_rejected_logps=torch.tensor([-3.0, -20.0]),
    ...          ref_chosen_logps=torch.zeros(2), ref_rejected_logps=torch.zeros(2))
    >>> get("hinge", beta=0.1)(**x).loss
    tensor([0.8000, 0.0000])
    """
    pair = _pair(
        "hinge",
        policy_chosen_logps,
        policy_rejected_logps,
        ref_chosen_logps,
        ref_rejected_logps,
        policy_chosen_token_logps,
        policy_rejected_token_logps,
        ref_chosen_token_logps,
        ref_rejected_token_logps,
        chosen_mask,
        rejected_mask,
        chosen_log_sum_sq_probs,
        rejected_log_sum_sq_probs,
        beta=beta,
        ld_alpha=ld_alpha,
        use_weighting=use_weighting,
    )
    z = beta * f_divergence_score_difference(pair.rho_w, pair.rho_l, f_divergence_type, f_alpha_divergence_coef)
    return pair.finish(torch.relu(1.0 - z))


@register(
    "ipo",
    trl="ipo",
    source=f"Azar et al. 2023, IPO (length-normalised as {_TRL})",
    symbols={"beta": "tau"},
)
def ipo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    chosen_lengths: Tensor,
    rejected_lengths: Tensor,
    policy_chosen_token_logps: Tensor | None = None,
    policy_rejected_token_logps: Tensor | None = None,
    ref_chosen_token_logps: Tensor | None = None,
    ref_rejected_token_logps: Tensor | None = None,
    chosen_mask: Tensor | None = None,
    rejected_mask: Tensor | None = None,
    chosen_log_sum_sq_probs: Tensor | None = None,
    rejected_log_sum_sq_probs: Tensor | None = None,
    *,
    beta: float = 0.1,
    f_divergence_type: str = "reverse_kl",
    f_alpha_divergence_coef: float = 0.5,
    ld_alpha: float | None = None,
    use_weighting: bool = False,
) -> LossOutput:
    """IPO as TRL computes it: ``(s_w / |y_w| - s_l / |y_l| - 1 / (2 beta))^2`` (``beta`` is the paper's tau).

    TRL divides each score by its response length (confirmed with the IPO
    authors, per TRL); the paper's summed form is ``ipo_sum``. Lengths come
    from the masks when not given (clamped at 1).

    Examples
    --------
    >>> import torch
    >>> from bradley.nn import get
    >>> x = dict(policy_chosen_logps=torch.tensor([-10.0]), policy_rejected_logps=torch.tensor([-30.0]),
    ...          ref_chosen_logps=torch.tensor([-20.0]), ref_rejected_logps=torch.tensor([-20.0]),
    ...          chosen_lengths=torch.tensor([2]), rejected_lengths=torch.tensor([2]))
    >>> get("ipo", beta=0.1)(**x).loss     # (5 - (-5) - 5)^2
    tensor([25.])
    """
    pair = _pair(
        "ipo",
        policy_chosen_logps,
        policy_rejected_logps,
        ref_chosen_logps,
        ref_rejected_logps,
        policy_chosen_token_logps,
        policy_rejected_token_logps,
        ref_chosen_token_logps,
        ref_rejected_token_logps,
        chosen_mask,
        rejected_mask,
        chosen_log_sum_sq_probs,
        rejected_log_sum_sq_probs,
        beta=beta,
        ld_alpha=ld_alpha,
        use_weighting=use_weighting,
    )
    check_shapes(
        "ipo",
        {"policy_chosen_logps": pair.rho_w, "chosen_lengths": chosen_lengths, "rejected_lengths": rejected_lengths},
    )
    delta = f_divergence_score_difference(
        pair.rho_w, pair.rho_l, f_divergence_type, f_alpha_divergence_coef, chosen_lengths, rejected_lengths
    )
    return pair.finish((delta - 1.0 / (2.0 * beta)) ** 2)


@register("ipo_sum", source="Azar et al. 2023, IPO Eq. 17 (summed log-probs, as the paper)", symbols={"beta": "tau"})
def ipo_sum_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    *,
    beta: float = 0.1,
) -> LossOutput:
    """The paper's IPO ``(Delta - 1 / (2 beta))^2`` on summed log-ratios (``beta`` is the paper's tau).

    Minimised (at 0) where ``Delta = 1 / (2 beta)``; TRL's ``ipo`` divides by
    the response lengths instead.

    Examples
    --------
    >>> import torch
    >>> from bradley.nn import get
    >>> x = dict(policy_chosen_logps=torch.tensor([-10.0]), policy_rejected_logps=torch.tensor([-15.0]),
    ...          ref_chosen_logps=torch.tensor([-12.0]), ref_rejected_logps=torch.tensor([-12.0]))
    >>> get("ipo_sum", beta=0.1)(**x).loss     # Delta = 5 = 1 / (2 * 0.1)
    tensor([0.])
    """
    _check_beta("ipo_sum", beta)
    check_shapes(
        "ipo_sum",
        {
            "policy_chosen_logps": policy_chosen_logps,
            "policy_rejected_logps": policy_rejected_logps,
            "ref_chosen_logps": ref_chosen_logps,
            "ref_rejected_logps": ref_rejected_logps,
        },
    )
    rho_w, rho_l = policy_chosen_logps - ref_chosen_logps, policy_rejected_logps - ref_rejected_logps
    return output((rho_w - rho_l - 1.0 / (2.0 * beta)) ** 2, beta * rho_w, beta * rho_l)


@register(
    "exo_pair",
    trl="exo_pair",
    source=f"Ji et al. 2024, EXO (pairwise, Eq. 16); {_TRL}",
    symbols={"beta": "beta_pi", "label_smoothing": "epsilon"},
)
def exo_pair_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    policy_chosen_token_logps: Tensor | None = None,
    policy_rejected_token_logps: Tensor | None = None,
    ref_chosen_token_logps: Tensor | None = None,
    ref_rejected_token_logps: Tensor | None = None,
    chosen_mask: Tensor | None = None,
    rejected_mask: Tensor | None = None,
    chosen_log_sum_sq_probs: Tensor | None = None,
    rejected_log_sum_sq_probs: Tensor | None = None,
    *,
    label_smoothing: float,
    beta: float = 0.1,
    f_divergence_type: str = "reverse_kl",
    f_alpha_divergence_coef: float = 0.5,
    ld_alpha: float | None = None,
    use_weighting: bool = False,
) -> LossOutput:
    """EXO: ``KL(q || p)``, ``q = (sigmoid(z), sigmoid(-z))``, ``z = beta (s_w - s_l)``, ``p = (1 - eps, eps)``.

    ``label_smoothing = eps`` must be positive (the target's log); the EXO
    paper suggests 1e-3. At ``z = 0`` and ``eps = 1e-3`` the loss is 2.761231.

    Examples
    --------
    >>> import torch
    >>> from bradley.nn import get
    >>> zero = torch.zeros(1)
    >>> x = dict(policy_chosen_logps=zero, policy_rejected_logps=zero, ref_chosen_logps=zero, ref_rejected_logps=zero)
    >>> round(get("exo_pair", label_smoothing=1e-3)(**x).loss.item(), 6)
    2.761231
    """
    if not 0.0 < label_smoothing < 0.5:
        raise ValueError(
            f"exo_pair: label_smoothing must lie in (0, 0.5) (its log is taken; the EXO paper uses 1e-3), "
            f"got {label_smoothing}."
        )
    pair = _pair(
        "exo_pair",
        policy_chosen_logps,
        policy_rejected_logps,
        ref_chosen_logps,
        ref_rejected_logps,
        policy_chosen_token_logps,
        policy_rejected_token_logps,
        ref_chosen_token_logps,
        ref_rejected_token_logps,
        chosen_mask,
        rejected_mask,
        chosen_log_sum_sq_probs,
        rejected_log_sum_sq_probs,
        beta=beta,
        ld_alpha=ld_alpha,
        use_weighting=use_weighting,
    )
    z = beta * f_divergence_score_difference(pair.rho_w, pair.rho_l, f_divergence_type, f_alpha_divergence_coef)
    log_qw, log_ql = F.logsigmoid(z), F.logsigmoid(-z)
    loss = torch.sigmoid(z) * (log_qw - math.log1p(-label_smoothing)) + torch.sigmoid(-z) * (
        log_ql - math.log(label_smoothing)
    )
    return pair.finish(loss)


@register(
    "robust",
    "rdpo",
    trl="robust",
    source=f"Chowdhury et al. 2024, Provably Robust DPO; {_TRL}",
    symbols={"beta": "beta", "label_smoothing": "epsilon"},
)
def robust_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    policy_chosen_token_logps: Tensor | None = None,
    policy_rejected_token_logps: Tensor | None = None,
    ref_chosen_token_logps: Tensor | None = None,
    ref_rejected_token_logps: Tensor | None = None,
    chosen_mask: Tensor | None = None,
    rejected_mask: Tensor | None = None,
    chosen_log_sum_sq_probs: Tensor | None = None,
    rejected_log_sum_sq_probs: Tensor | None = None,
    *,
    beta: float = 0.1,
    label_smoothing: float = 0.0,
    f_divergence_type: str = "reverse_kl",
    f_alpha_divergence_coef: float = 0.5,
    ld_alpha: float | None = None,
    use_weighting: bool = False,
) -> LossOutput:
    """Robust DPO ``[(1 - eps) l(z) - eps l(-z)] / (1 - 2 eps)``, ``l(z) = -logsig(z)``, ``eps = label_smoothing``.

    An unbiased estimate of the clean DPO loss when labels flip with
    probability ``eps``; unbounded below for ``eps > 0``. ``eps = 0`` (TRL's
    default) is DPO.

    Examples
    --------
    >>> import torch
    >>> from bradley.nn import get
    >>> x = dict(policy_chosen_logps=torch.tensor([-10.0]), policy_rejected_logps=torch.tensor([-20.0]),
    ...          ref_chosen_logps=torch.tensor([-15.0]), ref_rejected_logps=torch.tensor([-15.0]))
    >>> round(get("rdpo", label_smoothing=0.1)(**x).loss.item(), 6)
    0.188262
    """
    check_flip_rate(label_smoothing)
    pair = _pair(
        "robust",
        policy_chosen_logps,
        policy_rejected_logps,
        ref_chosen_logps,
        ref_rejected_logps,
        policy_chosen_token_logps,
        policy_rejected_token_logps,
        ref_chosen_token_logps,
        ref_rejected_token_logps,
        chosen_mask,
        rejected_mask,
        chosen_log_sum_sq_probs,
        rejected_log_sum_sq_probs,
        beta=beta,
        ld_alpha=ld_alpha,
        use_weighting=use_weighting,
    )
    z = beta * f_divergence_score_difference(pair.rho_w, pair.rho_l, f_divergence_type, f_alpha_divergence_coef)
    eps = label_smoothing
    loss = (-(1.0 - eps) * F.logsigmoid(z) + eps * F.logsigmoid(-z)) / (1.0 - 2.0 * eps)
    return pair.finish(loss)


@register(
    "discopop",
    trl="discopop",
    source=f"Chan et al. 2024, DiscoPOP / LRML (Eq. 5); {_TRL}",
    symbols={"beta": "beta", "discopop_tau": "tau"},
)
def discopop_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    policy_chosen_token_logps: Tensor | None = None,
    policy_rejected_token_logps: Tensor | None = None,
    ref_chosen_token_logps: Tensor | None = None,
    ref_rejected_token_logps: Tensor | None = None,
    chosen_mask: Tensor | None = None,
    rejected_mask: Tensor | None = None,
    chosen_log_sum_sq_probs: Tensor | None = None,
    rejected_log_sum_sq_probs: Tensor | None = None,
    *,
    beta: float = 0.1,
    discopop_tau: float = 0.05,
    f_divergence_type: str = "reverse_kl",
    f_alpha_divergence_coef: float = 0.5,
    ld_alpha: float | None = None,
    use_weighting: bool = False,
) -> LossOutput:
    """DiscoPOP ``(1 - m) (-logsig(z)) + m exp(-z)``, ``m = sigmoid(z / tau)``, ``z = beta (s_w - s_l)``.

    ``m exp(-z)`` is evaluated as ``exp(logsig(z / tau) - z)``, which stays
    finite (and tends to 0) for very negative ``z`` when ``tau < 1``, where the
    product of the two factors gives ``0 * inf``. At ``z = 0`` the loss is
    ``(log 2 + 1) / 2 = 0.846574``.

    Examples
    --------
    >>> import torch
    >>> from bradley.nn import get
    >>> zero = torch.zeros(1)
    >>> x = dict(policy_chosen_logps=zero, policy_rejected_logps=zero, ref_chosen_logps=zero, ref_rejected_logps=zero)
    >>> round(get("discopop")(**x).loss.item(), 6)
    0.846574
    """
    if discopop_tau <= 0:
        raise ValueError(f"discopop: discopop_tau must be positive, got {discopop_tau}.")
    pair = _pair(
        "discopop",
        policy_chosen_logps,
        policy_rejected_logps,
        ref_chosen_logps,
        ref_rejected_logps,
        policy_chosen_token_logps,
        policy_rejected_token_logps,
        ref_chosen_token_logps,
        ref_rejected_token_logps,
        chosen_mask,
        rejected_mask,
        chosen_log_sum_sq_probs,
        rejected_log_sum_sq_probs,
        beta=beta,
        ld_alpha=ld_alpha,
        use_weighting=use_weighting,
    )
    z = beta * f_divergence_score_difference(pair.rho_w, pair.rho_l, f_divergence_type, f_alpha_divergence_coef)
    loss = torch.sigmoid(-z / discopop_tau) * -F.logsigmoid(z) + torch.exp(F.logsigmoid(z / discopop_tau) - z)
    return pair.finish(loss)


@register(
    "sigmoid_norm",
    trl="sigmoid_norm",
    source=f"length-normalised DPO; {_TRL}",
    symbols={"beta": "beta"},
)
def sigmoid_norm_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    chosen_lengths: Tensor,
    rejected_lengths: Tensor,
    policy_chosen_token_logps: Tensor | None = None,
    policy_rejected_token_logps: Tensor | None = None,
    ref_chosen_token_logps: Tensor | None = None,
    ref_rejected_token_logps: Tensor | None = None,
    chosen_mask: Tensor | None = None,
    rejected_mask: Tensor | None = None,
    chosen_log_sum_sq_probs: Tensor | None = None,
    rejected_log_sum_sq_probs: Tensor | None = None,
    *,
    beta: float = 0.1,
    f_divergence_type: str = "reverse_kl",
    f_alpha_divergence_coef: float = 0.5,
    ld_alpha: float | None = None,
    use_weighting: bool = False,
) -> LossOutput:
    """Length-normalised DPO ``-logsig(beta (s_w / |y_w| - s_l / |y_l|))`` (TRL ``sigmoid_norm``).

    Examples
    --------
    >>> import torch
    >>> from bradley.nn import get
    >>> x = dict(policy_chosen_logps=torch.tensor([-10.0]), policy_rejected_logps=torch.tensor([-20.0]),
    ...          ref_chosen_logps=torch.tensor([-15.0]), ref_rejected_logps=torch.tensor([-15.0]),
    ...          chosen_lengths=torch.tensor([5]), rejected_lengths=torch.tensor([5]))
    >>> round(get("sigmoid_norm", beta=1.0)(**x).loss.item(), 6)   # -logsig(1 - (-1))
    0.126928
    """
    pair = _pair(
        "sigmoid_norm",
        policy_chosen_logps,
        policy_rejected_logps,
        ref_chosen_logps,
        ref_rejected_logps,
        policy_chosen_token_logps,
        policy_rejected_token_logps,
        ref_chosen_token_logps,
        ref_rejected_token_logps,
        chosen_mask,
        rejected_mask,
        chosen_log_sum_sq_probs,
        rejected_log_sum_sq_probs,
        beta=beta,
        ld_alpha=ld_alpha,
        use_weighting=use_weighting,
    )
    check_shapes(
        "sigmoid_norm",
        {"policy_chosen_logps": pair.rho_w, "chosen_lengths": chosen_lengths, "rejected_lengths": rejected_lengths},
    )
    delta = f_divergence_score_difference(
        pair.rho_w, pair.rho_l, f_divergence_type, f_alpha_divergence_coef, chosen_lengths, rejected_lengths
    )
    return pair.finish(-F.logsigmoid(beta * delta))


# Losses on the raw log-ratios: TRL refuses f_divergence_type for them.


def _raw_pair(
    loss: str,
    f_divergence_type: str,
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    policy_chosen_token_logps: Tensor | None,
    policy_rejected_token_logps: Tensor | None,
    ref_chosen_token_logps: Tensor | None,
    ref_rejected_token_logps: Tensor | None,
    chosen_mask: Tensor | None,
    rejected_mask: Tensor | None,
    chosen_log_sum_sq_probs: Tensor | None,
    rejected_log_sum_sq_probs: Tensor | None,
    *,
    beta: float,
    ld_alpha: float | None,
    use_weighting: bool,
) -> _Pair:
    _reverse_kl_only(loss, f_divergence_type)
    return _pair(
        loss,
        policy_chosen_logps,
        policy_rejected_logps,
        ref_chosen_logps,
        ref_rejected_logps,
        policy_chosen_token_logps,
        policy_rejected_token_logps,
        ref_chosen_token_logps,
        ref_rejected_token_logps,
        chosen_mask,
        rejected_mask,
        chosen_log_sum_sq_probs,
        rejected_log_sum_sq_probs,
        beta=beta,
        ld_alpha=ld_alpha,
        use_weighting=use_weighting,
    )


@register("nca_pair", trl="nca_pair", source=f"Chen et al. 2024, NCA (pairwise); {_TRL}", symbols={"beta": "beta"})
def nca_pair_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    policy_chosen_token_logps: Tensor | None = None,
    policy_rejected_token_logps: Tensor | None = None,
    ref_chosen_token_logps: Tensor | None = None,
    ref_rejected_token_logps: Tensor | None = None,
    chosen_mask: Tensor | None = None,
    rejected_mask: Tensor | None = None,
    chosen_log_sum_sq_probs: Tensor | None = None,
    rejected_log_sum_sq_probs: Tensor | None = None,
    *,
    beta: float = 0.1,
    f_divergence_type: str = "reverse_kl",
    ld_alpha: float | None = None,
    use_weighting: bool = False,
) -> LossOutput:
    """NCA ``-logsig(r_w) - logsig(-r_w) / 2 - logsig(-r_l) / 2``, ``r = beta rho`` (absolute, not relative, rewards).

    Examples
    --------
    >>> import torch
    >>> from bradley.nn import get
    >>> zero = torch.zeros(1)
    >>> x = dict(policy_chosen_logps=zero, policy_rejected_logps=zero, ref_chosen_logps=zero, ref_rejected_logps=zero)
    >>> round(get("nca_pair")(**x).loss.item(), 6)   # 2 log 2
    1.386294
    """
    pair = _raw_pair(
        "nca_pair",
        f_divergence_type,
        policy_chosen_logps,
        policy_rejected_logps,
        ref_chosen_logps,
        ref_rejected_logps,
        policy_chosen_token_logps,
        policy_rejected_token_logps,
        ref_chosen_token_logps,
        ref_rejected_token_logps,
        chosen_mask,
        rejected_mask,
        chosen_log_sum_sq_probs,
        rejected_log_sum_sq_probs,
        beta=beta,
        ld_alpha=ld_alpha,
        use_weighting=use_weighting,
    )
    r_w, r_l = beta * pair.rho_w, beta * pair.rho_l
    return pair.finish(-F.logsigmoid(r_w) - 0.5 * F.logsigmoid(-r_w) - 0.5 * F.logsigmoid(-r_l))


@register("bco_pair", trl="bco_pair", source=f"Jung et al. 2024, BCO (pairwise); {_TRL}", symbols={"beta": "beta"})
def bco_pair_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    policy_chosen_token_logps: Tensor | None = None,
    policy_rejected_token_logps: Tensor | None = None,
    ref_chosen_token_logps: Tensor | None = None,
    ref_rejected_token_logps: Tensor | None = None,
    chosen_mask: Tensor | None = None,
    rejected_mask: Tensor | None = None,
    chosen_log_sum_sq_probs: Tensor | None = None,
    rejected_log_sum_sq_probs: Tensor | None = None,
    *,
    beta: float = 0.1,
    f_divergence_type: str = "reverse_kl",
    ld_alpha: float | None = None,
    use_weighting: bool = False,
) -> LossOutput:
    """BCO on pairs: ``-logsig(beta rho_w) - logsig(-beta rho_l)`` (TRL 1.16 has no running reward mean delta).

    Examples
    --------
    >>> import torch
    >>> from bradley.nn import get
    >>> zero = torch.zeros(1)
    >>> x = dict(policy_chosen_logps=zero, policy_rejected_logps=zero, ref_chosen_logps=zero, ref_rejected_logps=zero)
    >>> round(get("bco_pair")(**x).loss.item(), 6)   # 2 log 2
    1.386294
    """
    pair = _raw_pair(
        "bco_pair",
        f_divergence_type,
        policy_chosen_logps,
        policy_rejected_logps,
        ref_chosen_logps,
        ref_rejected_logps,
        policy_chosen_token_logps,
        policy_rejected_token_logps,
        ref_chosen_token_logps,
        ref_rejected_token_logps,
        chosen_mask,
        rejected_mask,
        chosen_log_sum_sq_probs,
        rejected_log_sum_sq_probs,
        beta=beta,
        ld_alpha=ld_alpha,
        use_weighting=use_weighting,
    )
    return pair.finish(-F.logsigmoid(beta * pair.rho_w) - F.logsigmoid(-beta * pair.rho_l))


@register(
    "sppo_hard",
    trl="sppo_hard",
    source=f"Wu et al. 2024, SPPO with hard win rates (1 / 0); {_TRL}",
    symbols={"beta": "1 / eta"},
)
def sppo_hard_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    policy_chosen_token_logps: Tensor | None = None,
    policy_rejected_token_logps: Tensor | None = None,
    ref_chosen_token_logps: Tensor | None = None,
    ref_rejected_token_logps: Tensor | None = None,
    chosen_mask: Tensor | None = None,
    rejected_mask: Tensor | None = None,
    chosen_log_sum_sq_probs: Tensor | None = None,
    rejected_log_sum_sq_probs: Tensor | None = None,
    *,
    beta: float = 0.1,
    f_divergence_type: str = "reverse_kl",
    ld_alpha: float | None = None,
    use_weighting: bool = False,
) -> LossOutput:
    """SPPO with hard labels: ``(rho_w - 1 / (2 beta))^2 + (rho_l + 1 / (2 beta))^2`` (not halved, as TRL).

    Examples
    --------
    >>> import torch
    >>> from bradley.nn import get
    >>> x = dict(policy_chosen_logps=torch.tensor([5.0]), policy_rejected_logps=torch.tensor([-5.0]),
    ...          ref_chosen_logps=torch.zeros(1), ref_rejected_logps=torch.zeros(1))
    >>> get("sppo_hard", beta=0.1)(**x).loss    # both at their targets +-5
    tensor([0.])
    """
    pair = _raw_pair(
        "sppo_hard",
        f_divergence_type,
        policy_chosen_logps,
        policy_rejected_logps,
        ref_chosen_logps,
        ref_rejected_logps,
        policy_chosen_token_logps,
        policy_rejected_token_logps,
        ref_chosen_token_logps,
        ref_rejected_token_logps,
        chosen_mask,
        rejected_mask,
        chosen_log_sum_sq_probs,
        rejected_log_sum_sq_probs,
        beta=beta,
        ld_alpha=ld_alpha,
        use_weighting=use_weighting,
    )
    half = 0.5 / beta
    return pair.finish((pair.rho_w - half) ** 2 + (pair.rho_l + half) ** 2)


@register("apo_zero", trl="apo_zero", source=f"D'Oosterlinck et al. 2024, APO-zero (Eq. 7); {_TRL}")
def apo_zero_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    policy_chosen_token_logps: Tensor | None = None,
    policy_rejected_token_logps: Tensor | None = None,
    ref_chosen_token_logps: Tensor | None = None,
    ref_rejected_token_logps: Tensor | None = None,
    chosen_mask: Tensor | None = None,
    rejected_mask: Tensor | None = None,
    chosen_log_sum_sq_probs: Tensor | None = None,
    rejected_log_sum_sq_probs: Tensor | None = None,
    *,
    beta: float = 0.1,
    f_divergence_type: str = "reverse_kl",
    ld_alpha: float | None = None,
    use_weighting: bool = False,
) -> LossOutput:
    """APO-zero ``(1 - sigmoid(beta rho_w)) + sigmoid(beta rho_l)``: raise the chosen, lower the rejected.

    For chosen responses better than the model's own outputs.

    Examples
    --------
    >>> import torch
    >>> from bradley.nn import get
    >>> zero = torch.zeros(1)
    >>> x = dict(policy_chosen_logps=zero, policy_rejected_logps=zero, ref_chosen_logps=zero, ref_rejected_logps=zero)
    >>> get("apo_zero")(**x).loss
    tensor([1.])
    """
    pair = _raw_pair(
        "apo_zero",
        f_divergence_type,
        policy_chosen_logps,
        policy_rejected_logps,
        ref_chosen_logps,
        ref_rejected_logps,
        policy_chosen_token_logps,
        policy_rejected_token_logps,
        ref_chosen_token_logps,
        ref_rejected_token_logps,
        chosen_mask,
        rejected_mask,
        chosen_log_sum_sq_probs,
        rejected_log_sum_sq_probs,
        beta=beta,
        ld_alpha=ld_alpha,
        use_weighting=use_weighting,
    )
    return pair.finish(torch.sigmoid(-beta * pair.rho_w) + torch.sigmoid(beta * pair.rho_l))


@register("apo_down", trl="apo_down", source=f"D'Oosterlinck et al. 2024, APO-down (Eq. 8); {_TRL}")
def apo_down_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    policy_chosen_token_logps: Tensor | None = None,
    policy_rejected_token_logps: Tensor | None = None,
    ref_chosen_token_logps: Tensor | None = None,
    ref_rejected_token_logps: Tensor | None = None,
    chosen_mask: Tensor | None = None,
    rejected_mask: Tensor | None = None,
    chosen_log_sum_sq_probs: Tensor | None = None,
    rejected_log_sum_sq_probs: Tensor | None = None,
    *,
    beta: float = 0.1,
    f_divergence_type: str = "reverse_kl",
    ld_alpha: float | None = None,
    use_weighting: bool = False,
) -> LossOutput:
    """APO-down ``sigmoid(beta rho_w) + (1 - sigmoid(beta (rho_w - rho_l)))``: lower both, the rejected more.

    For chosen responses worse than the model's own outputs.

    Examples
    --------
    >>> import torch
    >>> from bradley.nn import get
    >>> zero = torch.zeros(1)
    >>> x = dict(policy_chosen_logps=zero, policy_rejected_logps=zero, ref_chosen_logps=zero, ref_rejected_logps=zero)
    >>> get("apo_down")(**x).loss
    tensor([1.])
    """
    pair = _raw_pair(
        "apo_down",
        f_divergence_type,
        policy_chosen_logps,
        policy_rejected_logps,
        ref_chosen_logps,
        ref_rejected_logps,
        policy_chosen_token_logps,
        policy_rejected_token_logps,
        ref_chosen_token_logps,
        ref_rejected_token_logps,
        chosen_mask,
        rejected_mask,
        chosen_log_sum_sq_probs,
        rejected_log_sum_sq_probs,
        beta=beta,
        ld_alpha=ld_alpha,
        use_weighting=use_weighting,
    )
    return pair.finish(torch.sigmoid(beta * pair.rho_w) + torch.sigmoid(-beta * (pair.rho_w - pair.rho_l)))


def _aot_pair(
    loss: str,
    f_divergence_type: str,
    use_weighting: bool,
    label_smoothing: float,
    logps: tuple[Tensor, Tensor, Tensor, Tensor],
    tokens: tuple[Tensor | None, ...],
    beta: float,
    ld_alpha: float | None,
) -> _Pair:
    if use_weighting:
        raise ValueError(
            f"{loss}: use_weighting (WPO) is not defined for AOT, which sorts the batch and so pairs each loss "
            "with no single pair's weights (TRL refuses it too)."
        )
    check_flip_rate(label_smoothing)
    pair = _raw_pair(loss, f_divergence_type, *logps, *tokens, beta=beta, ld_alpha=ld_alpha, use_weighting=False)
    if pair.rho_w.dim() != 1:
        raise ValueError(
            f"{loss}: sorts across the batch, so the log-probs must have shape (B,), got {tuple(pair.rho_w.shape)}."
        )
    return pair


@register(
    "aot",
    trl="aot",
    source=f"Melnyk et al. 2024, AOT (paired); {_TRL}",
    symbols={"beta": "beta", "label_smoothing": "epsilon"},
)
def aot_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    policy_chosen_token_logps: Tensor | None = None,
    policy_rejected_token_logps: Tensor | None = None,
    ref_chosen_token_logps: Tensor | None = None,
    ref_rejected_token_logps: Tensor | None = None,
    chosen_mask: Tensor | None = None,
    rejected_mask: Tensor | None = None,
    *,
    beta: float = 0.1,
    label_smoothing: float = 0.0,
    f_divergence_type: str = "reverse_kl",
    ld_alpha: float | None = None,
    use_weighting: bool = False,
) -> LossOutput:
    """AOT (paired): the batch's sorted policy margins ``S_w - S_l`` against its sorted reference margins.

    ``delta_(i) = sort(S_w - S_l)_i - sort(S_ref,w - S_ref,l)_i`` and the loss
    is ``-(1 - eps) logsig(beta delta) - eps logsig(-beta delta)``. The i-th
    per-example loss belongs to the i-th quantile, not to pair i: only the
    batch mean (or sum) is meaningful. Rewards are per pair (unsorted).

    Examples
    --------
    >>> import torch
    >>> from bradley.nn import get
    >>> x = dict(policy_chosen_logps=torch.tensor([-1.0, -5.0]), policy_rejected_logps=torch.tensor([-5.0, -1.0]),
    ...          ref_chosen_logps=torch.tensor([-3.0, -3.0]), ref_rejected_logps=torch.tensor([-3.0, -3.0]))
    >>> get("aot", beta=1.0)(**x).loss    # sorted margins (-4, 4) against (0, 0)
    tensor([4.0181, 0.0181])
    """
    pair = _aot_pair(
        "aot",
        f_divergence_type,
        use_weighting,
        label_smoothing,
        (policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps),
        (
            policy_chosen_token_logps,
            policy_rejected_token_logps,
            ref_chosen_token_logps,
            ref_rejected_token_logps,
            chosen_mask,
            rejected_mask,
            None,
            None,
        ),
        beta,
        ld_alpha,
    )
    policy_margin = torch.sort(pair.chosen_logps - pair.rejected_logps, dim=0).values
    ref_margin = torch.sort(pair.ref_chosen_logps - pair.ref_rejected_logps, dim=0).values
    return pair.finish(soft_logistic(beta * (policy_margin - ref_margin), 1.0 - label_smoothing))


@register(
    "aot_unpaired",
    trl="aot_unpaired",
    source=f"Melnyk et al. 2024, AOT (unpaired); {_TRL}",
    symbols={"beta": "beta", "label_smoothing": "epsilon"},
)
def aot_unpaired_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    policy_chosen_token_logps: Tensor | None = None,
    policy_rejected_token_logps: Tensor | None = None,
    ref_chosen_token_logps: Tensor | None = None,
    ref_rejected_token_logps: Tensor | None = None,
    chosen_mask: Tensor | None = None,
    rejected_mask: Tensor | None = None,
    *,
    beta: float = 0.1,
    label_smoothing: float = 0.0,
    f_divergence_type: str = "reverse_kl",
    ld_alpha: float | None = None,
    use_weighting: bool = False,
) -> LossOutput:
    """AOT (unpaired): ``delta_(i) = sort(rho_w)_i - sort(rho_l)_i``, loss as ``aot``.

    The chosen and rejected log-ratios are sorted separately (TRL <= 0.2x
    called this ``aot_pair``); per-example losses are per quantile.

    Examples
    --------
    >>> import torch
    >>> from bradley.nn import get
    >>> x = dict(policy_chosen_logps=torch.tensor([1.0, 3.0]), policy_rejected_logps=torch.tensor([2.0, 0.0]),
    ...          ref_chosen_logps=torch.zeros(2), ref_rejected_logps=torch.zeros(2))
    >>> get("aot_unpaired", beta=1.0)(**x).loss   # sorted (1, 3) - sorted (0, 2)
    tensor([0.3133, 0.3133])
    """
    pair = _aot_pair(
        "aot_unpaired",
        f_divergence_type,
        use_weighting,
        label_smoothing,
        (policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps),
        (
            policy_chosen_token_logps,
            policy_rejected_token_logps,
            ref_chosen_token_logps,
            ref_rejected_token_logps,
            chosen_mask,
            rejected_mask,
            None,
            None,
        ),
        beta,
        ld_alpha,
    )
    delta = torch.sort(pair.rho_w, dim=0).values - torch.sort(pair.rho_l, dim=0).values
    return pair.finish(soft_logistic(beta * delta, 1.0 - label_smoothing))


# --------------------------------------------------------------------------
# The NLL term: TRL's ``sft`` and the NLL of CPO / ORPO
# --------------------------------------------------------------------------


def _batch_nll(loss: str, chosen_logps: Tensor, chosen_lengths: Tensor | None) -> Tensor:
    """Per-example shares ``-S_i * B / sum_j |y_j|`` of the batch's token-mean NLL on the chosen responses.

    Their mean is TRL's ``-mean over all chosen tokens of the batch``, and
    example i's share depends on its own tokens only.
    """
    if chosen_lengths is None:
        raise ValueError(
            f"{loss}: the NLL term needs chosen_lengths (number of response tokens of the chosen response (B,)), "
            "or chosen_mask, which the batch lacks."
        )
    check_shapes(loss, {"policy_chosen_logps": chosen_logps, "chosen_lengths": chosen_lengths})
    n_tokens = chosen_lengths.sum().clamp(min=1).to(chosen_logps.dtype)
    return -chosen_logps * (chosen_logps.numel() / n_tokens)


@register("sft", trl="sft", source=f"NLL on the chosen responses (RPO, MPO as combinations); {_TRL}")
def sft_loss(
    policy_chosen_logps: Tensor,
    chosen_lengths: Tensor,
    policy_chosen_token_logps: Tensor | None = None,
    policy_rejected_token_logps: Tensor | None = None,
    chosen_mask: Tensor | None = None,
    rejected_mask: Tensor | None = None,
    chosen_log_sum_sq_probs: Tensor | None = None,
    rejected_log_sum_sq_probs: Tensor | None = None,
    *,
    use_weighting: bool = False,
    f_divergence_type: str = "reverse_kl",
    f_alpha_divergence_coef: float = 0.5,
) -> LossOutput:
    """TRL's ``sft``: the mean negative log-likelihood over all chosen response tokens of the batch.

    TRL's value is one number per batch. As per-example losses this returns
    each example's share ``-S_i * B / sum_j |y_j|`` (``S_i`` its summed
    log-prob), so ``loss.mean()`` is TRL's value and example i's loss depends
    only on its own tokens. With ``use_weighting``, TRL multiplies its batch
    value by the mean WPO weight of the pairs, and so does this. RPO is
    ``get(["sigmoid", "sft"], loss_weights=[1.0, alpha])``; MPO is
    ``get(["sigmoid", "bco_pair", "sft"], loss_weights=[0.8, 0.2, 1.0])``.
    There are no rewards to log. ``f_divergence_type`` and
    ``f_alpha_divergence_coef`` are accepted, as TRL accepts them with
    ``sft``, and have no effect: the NLL has no log-ratio to transform (so
    ``get(["ipo", "sft"], f_divergence_type="js_divergence")`` changes only the
    ``ipo`` term, as in TRL).

    Examples
    --------
    >>> import torch
    >>> from bradley.nn import get
    >>> out = get("sft")(policy_chosen_token_logps=torch.tensor([[-1.0, -2.0], [-3.0, 0.0]]),
    ...                  chosen_mask=torch.tensor([[True, True], [True, False]]))
    >>> out.loss, out.loss.mean()     # token mean: (1 + 2 + 3) / 3
    (tensor([2., 2.]), tensor(2.))
    """
    if f_divergence_type not in F_DIVERGENCES:
        raise ValueError(
            f"sft: f_divergence_type must be one of {', '.join(F_DIVERGENCES)}; got {f_divergence_type!r}."
        )
    loss = _batch_nll("sft", policy_chosen_logps, chosen_lengths)
    if use_weighting:
        tokens = {
            "policy_chosen_token_logps": policy_chosen_token_logps,
            "policy_rejected_token_logps": policy_rejected_token_logps,
            "chosen_mask": chosen_mask,
            "rejected_mask": rejected_mask,
            "chosen_log_sum_sq_probs": chosen_log_sum_sq_probs,
            "rejected_log_sum_sq_probs": rejected_log_sum_sq_probs,
        }
        weights = _wpo_weights("sft", tokens)
        return output(loss * weights.mean(), None, None, wpo_weight=weights)
    return output(loss, None, None)


# --------------------------------------------------------------------------
# CPO (TRL experimental CPOTrainer): reference-free, plus cpo_alpha * NLL
# --------------------------------------------------------------------------

_CPO = "TRL 1.16 CPOTrainer"


def _cpo(
    loss: str,
    chosen: Tensor,
    rejected: Tensor,
    chosen_lengths: Tensor | None,
    per_example: Tensor,
    beta: float,
    cpo_alpha: float,
    nll_logps: Tensor | None = None,
) -> LossOutput:
    if cpo_alpha != 0.0:
        nll = _batch_nll(loss, chosen if nll_logps is None else nll_logps, chosen_lengths)
        per_example = per_example + cpo_alpha * nll
    return output(per_example, beta * chosen, beta * rejected)


def _check_cpo(loss: str, chosen: Tensor, rejected: Tensor, beta: float, label_smoothing: float = 0.0) -> None:
    kind = "logps" if loss in ("cpo", "cpo_hinge") else "avg_logps"
    check_shapes(loss, {f"policy_chosen_{kind}": chosen, f"policy_rejected_{kind}": rejected})
    _check_beta(loss, beta)
    check_flip_rate(label_smoothing)


@register(
    "cpo",
    trl="CPOTrainer loss_type='sigmoid'",
    source=f"Xu et al. 2024, CPO; {_CPO}",
    symbols={"beta": "beta", "cpo_alpha": "NLL weight", "label_smoothing": "epsilon"},
)
def cpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    chosen_lengths: Tensor | None = None,
    *,
    beta: float = 0.1,
    label_smoothing: float = 0.0,
    cpo_alpha: float = 1.0,
) -> LossOutput:
    """CPO: ``-(1 - eps) logsig(beta (S_w - S_l)) - eps logsig(-...)`` plus ``cpo_alpha`` times the chosen NLL.

    Reference-free, on summed log-probs. The NLL is CPOTrainer's token-mean
    cross-entropy over all chosen response tokens of the batch, split into
    per-example shares as in ``sft`` (needs ``chosen_lengths`` or
    ``chosen_mask`` unless ``cpo_alpha=0``). Rewards are ``beta * S``.

    Examples
    --------
    >>> import torch
    >>> from bradley.nn import get
    >>> x = dict(policy_chosen_logps=torch.tensor([-4.0]), policy_rejected_logps=torch.tensor([-14.0]),
    ...          chosen_lengths=torch.tensor([4]))
    >>> round(get("cpo")(**x).loss.item(), 6)     # -logsig(1) + 4 / 4
    1.313262
    """
    _check_cpo("cpo", policy_chosen_logps, policy_rejected_logps, beta, label_smoothing)
    z = beta * (policy_chosen_logps - policy_rejected_logps)
    per_example = soft_logistic(z, 1.0 - label_smoothing)
    return _cpo("cpo", policy_chosen_logps, policy_rejected_logps, chosen_lengths, per_example, beta, cpo_alpha)


@register(
    "cpo_hinge",
    trl="CPOTrainer loss_type='hinge'",
    source=f"Xu et al. 2024, CPO with the SLiC hinge; {_CPO}",
    symbols={"beta": "1 / delta", "cpo_alpha": "NLL weight"},
)
def cpo_hinge_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    chosen_lengths: Tensor | None = None,
    *,
    beta: float = 0.1,
    cpo_alpha: float = 1.0,
) -> LossOutput:
    """CPO with the hinge ``relu(1 - beta (S_w - S_l))`` plus ``cpo_alpha`` times the chosen NLL (see ``cpo``).

    Examples
    --------
    >>> import torch
    >>> from bradley.nn import get
    >>> x = dict(policy_chosen_logps=torch.tensor([-4.0]), policy_rejected_logps=torch.tensor([-9.0]))
    >>> get("cpo_hinge", cpo_alpha=0.0)(**x).loss
    tensor([0.5000])
    """
    _check_cpo("cpo_hinge", policy_chosen_logps, policy_rejected_logps, beta)
    per_example = torch.relu(1.0 - beta * (policy_chosen_logps - policy_rejected_logps))
    return _cpo("cpo_hinge", policy_chosen_logps, policy_rejected_logps, chosen_lengths, per_example, beta, cpo_alpha)


@register(
    "cpo_ipo",
    trl="CPOTrainer loss_type='ipo'",
    source=f"Xu et al. 2024, CPO with the IPO loss on average log-probs; {_CPO}",
    symbols={"beta": "tau", "cpo_alpha": "NLL weight"},
)
def cpo_ipo_loss(
    policy_chosen_avg_logps: Tensor,
    policy_rejected_avg_logps: Tensor,
    chosen_lengths: Tensor | None = None,
    *,
    beta: float = 0.1,
    cpo_alpha: float = 1.0,
) -> LossOutput:
    """CPO's IPO: ``(A_w - A_l - 1 / (2 beta))^2`` on length-normalised log-probs, plus ``cpo_alpha`` times the NLL.

    CPOTrainer averages the log-probs for ``ipo`` and ``simpo``. Rewards are
    ``beta * A``.

    Examples
    --------
    >>> import torch
    >>> from bradley.nn import get
    >>> x = dict(policy_chosen_avg_logps=torch.tensor([-1.0]), policy_rejected_avg_logps=torch.tensor([-6.0]))
    >>> get("cpo_ipo", cpo_alpha=0.0)(**x).loss
    tensor([0.])
    """
    _check_cpo("cpo_ipo", policy_chosen_avg_logps, policy_rejected_avg_logps, beta)
    per_example = (policy_chosen_avg_logps - policy_rejected_avg_logps - 1.0 / (2.0 * beta)) ** 2
    nll_logps = None if chosen_lengths is None else policy_chosen_avg_logps * chosen_lengths
    return _cpo(
        "cpo_ipo",
        policy_chosen_avg_logps,
        policy_rejected_avg_logps,
        chosen_lengths,
        per_example,
        beta,
        cpo_alpha,
        nll_logps,
    )


@register(
    "cpo_simpo",
    trl="CPOTrainer loss_type='simpo'",
    source=f"Meng et al. 2024, SimPO (+ CPO's NLL term); {_CPO}",
    symbols={"beta": "beta", "simpo_gamma": "gamma", "cpo_alpha": "NLL weight", "label_smoothing": "epsilon"},
)
def cpo_simpo_loss(
    policy_chosen_avg_logps: Tensor,
    policy_rejected_avg_logps: Tensor,
    chosen_lengths: Tensor | None = None,
    *,
    beta: float = 0.1,
    simpo_gamma: float = 0.5,
    label_smoothing: float = 0.0,
    cpo_alpha: float = 1.0,
) -> LossOutput:
    """SimPO as CPOTrainer computes it: soft-logistic of ``beta (A_w - A_l) - simpo_gamma``, plus ``cpo_alpha`` NLL.

    CPOTrainer's defaults (``beta = 0.1``, ``simpo_gamma = 0.5``,
    ``cpo_alpha = 1.0``); plain SimPO is ``cpo_alpha=0``. Rewards are
    ``beta * A``.

    Examples
    --------
    >>> import torch
    >>> from bradley.nn import get
    >>> x = dict(policy_chosen_avg_logps=torch.tensor([-1.0]), policy_rejected_avg_logps=torch.tensor([-1.0]))
    >>> round(get("cpo_simpo", beta=2.0, simpo_gamma=1.0, cpo_alpha=0.0)(**x).loss.item(), 6)   # log(1 + e)
    1.313262
    """
    _check_cpo("cpo_simpo", policy_chosen_avg_logps, policy_rejected_avg_logps, beta, label_smoothing)
    z = beta * (policy_chosen_avg_logps - policy_rejected_avg_logps) - simpo_gamma
    per_example = soft_logistic(z, 1.0 - label_smoothing)
    nll_logps = None if chosen_lengths is None else policy_chosen_avg_logps * chosen_lengths
    return _cpo(
        "cpo_simpo",
        policy_chosen_avg_logps,
        policy_rejected_avg_logps,
        chosen_lengths,
        per_example,
        beta,
        cpo_alpha,
        nll_logps,
    )


# --------------------------------------------------------------------------
# ORPO (TRL experimental ORPOTrainer)
# --------------------------------------------------------------------------


# float32's sqrt(tiny), about 1.1e-19, in every dtype (as ASFT in bradley.nn.losses): a loss floored at A = 0 is
# then the same in float32 and float64; a per-dtype floor gave 5.2 in float32 and 36.2 in float64 for one ORPO row.
_LOG1MEXP_FLOOR = -math.sqrt(torch.finfo(torch.float32).tiny)


def log1mexp(x: Tensor) -> Tensor:
    """``log(1 - exp(x))`` for ``x <= 0``, finite up to and including ``x = 0``.

    Computed by the branch that keeps precision (Maechler 2012): ``log(-expm1(x))``
    above ``-log 2``, ``log1p(-exp(x))`` below. At ``x = 0`` (probability 1) the
    exact value is ``-inf``; here ``x`` is floored at ``-sqrt(tiny)`` of float32
    (``-1.08e-19``, in every dtype, so float32 and float64 agree), value only:
    the gradient is that at the floor, passed straight through, so it is finite
    (``-1 / 1.08e-19 = -9.2e18``) instead of nan, and a clamp's zero gradient
    is avoided. Elsewhere the result is exact. Positive ``x`` is outside the
    domain (nan).

    Examples
    --------
    >>> import torch
    >>> log1mexp(torch.tensor([-1e-3, -5.0]))
    tensor([-6.9083e+00, -6.7607e-03])
    >>> round(log1mexp(torch.tensor([0.0])).item(), 2)     # log(1.08e-19), not -inf
    -43.67
    """
    # Straight-through floor: a clamp alone would zero the gradient near 0 (as ASFT's old clamp at -1e-6 did).
    x = x + (x.clamp(max=_LOG1MEXP_FLOOR) - x).detach()
    near_zero = x > -math.log(2.0)
    # Each branch sees only arguments where it is finite, so the other's gradient cannot be nan.
    small = torch.where(near_zero, x, torch.full_like(x, -1.0))
    large = torch.where(near_zero, torch.full_like(x, -1.0), x)
    return torch.where(near_zero, torch.log(-torch.expm1(small)), torch.log1p(-torch.exp(large)))


def _orpo_log_odds(avg_logps: Tensor) -> Tensor:
    """``log(p / (1 - p))`` with ``p = exp(A)``; at ``A = 0`` finite through :func:`log1mexp`'s floor."""
    return avg_logps - log1mexp(avg_logps)


@register(
    "orpo",
    trl="ORPOTrainer",
    source="Hong et al. 2024, ORPO; TRL 1.16 ORPOTrainer",
    symbols={"beta": "lambda"},
)
def orpo_loss(
    policy_chosen_avg_logps: Tensor,
    policy_rejected_avg_logps: Tensor,
    chosen_lengths: Tensor,
    *,
    beta: float = 0.1,
) -> LossOutput:
    """ORPO: the chosen NLL plus ``-beta logsig(log odds(y_w) - log odds(y_l))``, on average log-probs.

    ``odds(y) = p / (1 - p)`` with ``p = exp(A(y))``, ``A`` the
    length-normalised log-prob (as ORPOTrainer); ``beta`` is the paper's
    lambda. The NLL is the token mean over the chosen response tokens of the
    batch, split into per-example shares as in ``sft``. Difference from TRL:
    ORPOTrainer's NLL also counts the prompt tokens (the labels it uses are
    every non-padding token), which a preference batch does not carry; with a
    one-token prompt the two agree. ORPOTrainer casts to float32 for the odds
    ratio; this computes in the input dtype (float32 for half precision).
    Average log-probs must be <= 0. An average of exactly 0 (float32 reaches it
    once every token's logit gap exceeds about 17) has infinite log odds; its
    ``log(1 - p)`` is floored as in :func:`log1mexp`, so loss and gradients stay
    finite: both averages 0 give the odds term ``log 2`` (equal odds), a chosen
    average of 0 its limit 0 with the limit gradient, a rejected average of 0
    the value at ``A_l = -1.08e-19`` (``softplus(43.67 - log odds(y_w))``, in
    every dtype) where the exact loss is infinite. Rewards are ``beta * A``;
    extras hold ``log_odds``.

    Examples
    --------
    >>> import math, torch
    >>> from bradley.nn import get
    >>> a = torch.tensor([math.log(0.5)])      # p = 1/2 for both: log odds 0
    >>> out = get("orpo", beta=0.1)(policy_chosen_avg_logps=a, policy_rejected_avg_logps=a,
    ...                             chosen_lengths=torch.tensor([1]))
    >>> round(out.loss.item(), 6)     # -log(1/2) + 0.1 log 2
    0.762462
    """
    check_shapes(
        "orpo",
        {
            "policy_chosen_avg_logps": policy_chosen_avg_logps,
            "policy_rejected_avg_logps": policy_rejected_avg_logps,
        },
    )
    _check_beta("orpo", beta)
    for name, a in (
        ("policy_chosen_avg_logps", policy_chosen_avg_logps),
        ("policy_rejected_avg_logps", policy_rejected_avg_logps),
    ):
        if bool((a > 0).any()):
            raise ValueError(f"orpo: {name} must be <= 0 (log-probabilities), got a maximum of {a.max().item():g}.")
    log_odds = _orpo_log_odds(policy_chosen_avg_logps) - _orpo_log_odds(policy_rejected_avg_logps)
    nll = _batch_nll("orpo", policy_chosen_avg_logps * chosen_lengths, chosen_lengths)
    return output(
        nll + beta * F.softplus(-log_odds),
        beta * policy_chosen_avg_logps,
        beta * policy_rejected_avg_logps,
        log_odds=log_odds,
    )


# --------------------------------------------------------------------------
# KTO (TRL KTOTrainer): unpaired responses, each desirable or not
# --------------------------------------------------------------------------


def _unpaired(
    loss: str, policy_logps: Tensor, ref_logps: Tensor, desirable: Tensor, beta: float
) -> tuple[Tensor, Tensor]:
    check_shapes(loss, {"policy_logps": policy_logps, "ref_logps": ref_logps, "desirable": desirable})
    if policy_logps.dim() != 1:
        raise ValueError(f"{loss}: unpaired log-probs must have shape (N,), got {tuple(policy_logps.shape)}.")
    if desirable.dtype != torch.bool and bool(((desirable != 0) & (desirable != 1)).any()):
        raise ValueError(f"{loss}: desirable must be boolean (or 0/1), got other values.")
    _check_beta(loss, beta)
    return policy_logps - ref_logps, desirable.to(torch.bool)


@register(
    "kto",
    trl="KTOTrainer loss_type='kto'",
    source="Ethayarajh et al. 2024, KTO (Eq. 7); TRL 1.16 KTOTrainer",
    symbols={"beta": "beta", "desirable_weight": "lambda_D", "undesirable_weight": "lambda_U"},
)
def kto_loss(
    policy_logps: Tensor,
    ref_logps: Tensor,
    desirable: Tensor,
    policy_kl_logps: Tensor,
    ref_kl_logps: Tensor,
    *,
    beta: float = 0.1,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> LossOutput:
    """KTO on unpaired data: desirable responses lose ``lambda_D (1 - sigmoid(beta (rho - z0)))``.

    Undesirable ones lose ``lambda_U (1 - sigmoid(beta (z0 - rho)))``, with
    ``rho = log pi - log pi_ref`` of each response (N,). The reference point
    ``z0`` is KTOTrainer's KL estimate: the mean of
    ``policy_kl_logps - ref_kl_logps`` over mismatched (prompt, response)
    pairs (KTOTrainer pairs each prompt with another example's response),
    detached and clamped at 0. They are required because KTOTrainer always
    estimates the KL for ``kto``; to fix ``z0 = 0`` on purpose, pass equal
    tensors (e.g. zeros of shape (1,)). Per-example
    losses are in input order (their mean is TRL's). Unpaired responses have
    no chosen/rejected pairing, so ``chosen_rewards`` etc. are None; extras
    hold ``rewards = beta * rho`` and ``kl = z0``.

    Examples
    --------
    >>> import torch
    >>> from bradley.nn import get
    >>> out = get("kto")(policy_logps=torch.tensor([-1.0, -1.0]), ref_logps=torch.tensor([-1.0, -1.0]),
    ...                  desirable=torch.tensor([True, False]),
    ...                  policy_kl_logps=torch.tensor([-3.0, -2.0]), ref_kl_logps=torch.tensor([-4.0, -3.0]))
    >>> out.loss, out.extras["kl"]      # z0 = 1: 1 - sigmoid(-0.1), 1 - sigmoid(0.1)
    (tensor([0.5250, 0.4750]), tensor([1., 1.]))
    """
    rho, good = _unpaired("kto", policy_logps, ref_logps, desirable, beta)
    check_shapes("kto", {"policy_kl_logps": policy_kl_logps, "ref_kl_logps": ref_kl_logps})
    if policy_kl_logps.dim() != 1:
        raise ValueError(
            f"kto: policy_kl_logps must have shape (M,) (one summed log-prob per mismatched pair), "
            f"got {tuple(policy_kl_logps.shape)}."
        )
    # The reference point is a batch statistic, not a path for gradients (KTOTrainer detaches it too).
    kl = (policy_kl_logps - ref_kl_logps).mean().detach().clamp(min=0).to(rho.dtype)
    loss = torch.where(
        good,
        desirable_weight * torch.sigmoid(-beta * (rho - kl)),
        undesirable_weight * torch.sigmoid(-beta * (kl - rho)),
    )
    return output(loss, None, None, rewards=beta * rho, kl=kl.expand_as(rho))


@register(
    "apo_zero_unpaired",
    trl="KTOTrainer loss_type='apo_zero_unpaired'",
    source="D'Oosterlinck et al. 2024, APO-zero (unpaired); TRL 1.16 KTOTrainer",
    symbols={"beta": "beta", "desirable_weight": "lambda_D", "undesirable_weight": "lambda_U"},
)
def apo_zero_unpaired_loss(
    policy_logps: Tensor,
    ref_logps: Tensor,
    desirable: Tensor,
    *,
    beta: float = 0.1,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> LossOutput:
    """Unpaired APO-zero: ``lambda_D (1 - sigmoid(beta rho))`` if desirable, else ``lambda_U sigmoid(beta rho)``.

    Examples
    --------
    >>> import torch
    >>> from bradley.nn import get
    >>> out = get("apo_zero_unpaired")(policy_logps=torch.tensor([-1.0, -1.0]), ref_logps=torch.tensor([-1.0, -1.0]),
    ...                                desirable=torch.tensor([True, False]))
    >>> out.loss
    tensor([0.5000, 0.5000])
    """
    rho, good = _unpaired("apo_zero_unpaired", policy_logps, ref_logps, desirable, beta)
    loss = torch.where(
        good, desirable_weight * torch.sigmoid(-beta * rho), undesirable_weight * torch.sigmoid(beta * rho)
    )
    return output(loss, None, None, rewards=beta * rho)
