"""Reward-model losses and the paper-specific policy losses, registered by name.

Every loss here is a plain kernel registered with
:func:`bradley.nn.registry.register`: its positional-or-keyword parameters are
:class:`~bradley.nn.batch.PreferenceBatch` fields (its inputs), its
keyword-only parameters are hyperparameters named as in
:data:`bradley.nn.registry.HYPERPARAMETERS`, and it returns per-example losses
in a :class:`~bradley.nn.registry.LossOutput`. Pick one with
``bradley.nn.get(name, **hyperparameters)``, or call a kernel directly with
keyword tensors. Formulas follow ``shared/alignment-losses.md`` (section named
in each docstring); where that sheet marks a detail UNCERTAIN, the authors'
code is followed and the docstring says so. The DPO-pair family under TRL's
names (``sigmoid``, ``ipo``, ``robust``, f-divergences, ...) is in
:mod:`bradley.nn.dpo`.

Logged rewards are on one scale: the scores themselves for reward models,
``beta * log(pi / pi_ref)`` for losses with a reference (``pi_ref`` is the
previous iterate for SPPO, INPO and DNO), ``beta * log pi`` (length-normalised
where the loss is) for reference-free ones.

Shapes are ``(B,)`` unless stated; tensors that would broadcast into a larger
loss (a ``(B, 1)`` against a ``(B,)``) are refused with both shapes named.

Examples
--------
>>> import torch
>>> from bradley.nn import get
>>> loss = get("simpo", beta=2.0, gamma_beta_ratio=0.5)
>>> out = loss(policy_chosen_avg_logps=torch.tensor([-1.2]), policy_rejected_avg_logps=torch.tensor([-1.2]))
>>> round(out.loss.item(), 6)
1.313262
>>> bt_loss(chosen_rewards=torch.tensor([1.0]), rejected_rewards=torch.tensor([1.0])).loss
tensor([0.6931])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from bradley.nn.dpo import _LOG1MEXP_FLOOR, log1mexp
from bradley.nn.registry import LossOutput, check_flip_rate, check_shapes, output, register, soft_logistic

__all__ = [
    # reward models
    "bt_loss",
    "soft_bt_loss",
    "mmpo_target",
    "scaled_bt_loss",
    "regression_loss",
    "tobt_probabilities",
    "tobt_loss",
    "plackett_luce_loss",
    # policy losses
    "dpo_plackett_luce_loss",
    "simpo_loss",
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


def _check_positive(loss: str, name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{loss}: {name} must be positive, got {value}.")


# --------------------------------------------------------------------------
# Reward-model losses (sheet part A)
# --------------------------------------------------------------------------


@register(
    "bt",
    "bradley-terry",
    trl="reward",
    source="Bradley & Terry 1952; margin: Touvron et al. 2023 (Llama 2); centering: Eisenstein et al. 2023 "
    "(code: huggingface/trl RewardTrainer)",
    kind="reward",
)
def bt_loss(
    chosen_rewards: Tensor,
    rejected_rewards: Tensor,
    margin: Tensor | None = None,
    *,
    label_smoothing: float = 0.0,
    center_rewards_coefficient: float | None = None,
) -> LossOutput:
    """Bradley-Terry reward-model loss ``-logsig(r_w - r_l - m)`` (A1, A2, A3).

    With ``label_smoothing = 0`` the batch mean is TRL's ``RewardTrainer``
    loss, margin column and ``center_rewards_coefficient`` included.

    Parameters
    ----------
    chosen_rewards, rejected_rewards : (B,)
        Reward-model scores.
    margin : (B,) or scalar tensor, optional
        Llama-2 style margin ``m`` subtracted from the reward gap (A2).
    label_smoothing : float
        Flip rate ``eps`` in [0, 0.5): the target becomes ``1 - eps`` (A3; not in TRL).
    center_rewards_coefficient : float, optional
        Adds ``c * (r_w + r_l)^2`` per pair (TRL's reward centering; 0.01 is the recommended value).

    Examples
    --------
    >>> import torch
    >>> out = bt_loss(chosen_rewards=torch.tensor([2.0]), rejected_rewards=torch.tensor([1.0]),
    ...               margin=torch.tensor([1.0]))
    >>> round(out.loss.item(), 6), out.margins.item()
    (0.693147, 1.0)
    """
    check_shapes("bt", {"chosen_rewards": chosen_rewards, "rejected_rewards": rejected_rewards}, {"margin": margin})
    check_flip_rate(label_smoothing)
    z = chosen_rewards - rejected_rewards
    if margin is not None:
        z = z - margin
    loss = soft_logistic(z, 1.0 - label_smoothing)
    if center_rewards_coefficient is not None:
        loss = loss + center_rewards_coefficient * (chosen_rewards + rejected_rewards) ** 2
    return output(loss, chosen_rewards, rejected_rewards)


@register(
    "soft-bt",
    "mmpo-rm",
    source="soft-target BT; MMPO: Kim et al. 2024 (code: kykim0/margin-matching-pref-opt)",
    kind="reward",
)
def soft_bt_loss(chosen_rewards: Tensor, rejected_rewards: Tensor, target: Tensor) -> LossOutput:
    """Soft-target BT: cross-entropy of ``sigmoid(r_w - r_l)`` against ``P(w beats l) = target`` (A3, A5).

    The minimiser is ``r_w - r_l = logit(target)``; with
    ``target = mmpo_target(s_w, s_l, gamma=...)`` this is MMPO's margin matching.

    Examples
    --------
    >>> import torch
    >>> out = soft_bt_loss(chosen_rewards=torch.tensor([0.0]), rejected_rewards=torch.tensor([0.0]),
    ...                    target=torch.tensor([0.9]))
    >>> round(out.loss.item(), 6)
    0.693147
    """
    check_shapes(
        "soft-bt", {"chosen_rewards": chosen_rewards, "rejected_rewards": rejected_rewards}, {"target": target}
    )
    loss = soft_logistic(chosen_rewards - rejected_rewards, target)
    return output(loss, chosen_rewards, rejected_rewards)


def mmpo_target(chosen_scores: Tensor, rejected_scores: Tensor, *, gamma: float | None) -> Tensor:
    """MMPO soft label ``sigmoid(gamma * (s_w - s_l))`` from quality scores (A5); ``gamma=None`` = hard label 1.

    Use it as the ``target`` field of a batch (``soft-bt`` for reward models;
    the DPO losses of :mod:`bradley.nn.dpo` that take a ``target``).

    Examples
    --------
    >>> import torch
    >>> mmpo_target(torch.tensor([4.0]), torch.tensor([4.0]), gamma=2.2)
    tensor([0.5000])
    """
    if gamma is None:
        return torch.ones_like(chosen_scores)
    return torch.sigmoid(gamma * (chosen_scores - rejected_scores))


@register(
    "scaled-bt",
    source="Wang et al. 2024, HelpSteer2-Preference (Scaled BT)",
    kind="reward",
)
def scaled_bt_loss(chosen_rewards: Tensor, rejected_rewards: Tensor, strength: Tensor) -> LossOutput:
    """HelpSteer2-Preference Scaled BT: ``-m * logsig(r_w - r_l)`` with preference strength ``m`` (A4).

    Equivalent to repeating a pair ``m`` times. Pairs of strength 0 (no
    preference) must be removed before; they are an error here.

    Examples
    --------
    >>> import torch
    >>> out = scaled_bt_loss(chosen_rewards=torch.tensor([0.0]), rejected_rewards=torch.tensor([0.0]),
    ...                      strength=torch.tensor([3.0]))
    >>> round(out.loss.item(), 6)
    2.079442
    """
    check_shapes(
        "scaled-bt", {"chosen_rewards": chosen_rewards, "rejected_rewards": rejected_rewards}, {"strength": strength}
    )
    if torch.any(strength <= 0):
        raise ValueError("scaled-bt: strength must be positive; drop pairs of strength 0 (no preference).")
    loss = -strength * F.logsigmoid(chosen_rewards - rejected_rewards)
    return output(loss, chosen_rewards, rejected_rewards)


@register("regression", source="Wang et al. 2024, SteerLM regression (HelpSteer2)", kind="reward")
def regression_loss(predicted_ratings: Tensor, target_ratings: Tensor) -> LossOutput:
    """Squared-error rating regression (SteerLM regression, A4), summed over attributes.

    The first stage of HelpSteer2-Preference's best recipe: train this, then
    initialise a BT model from it and train with ``scaled-bt``. Shapes (B,)
    or (B, n_attributes). No chosen/rejected rewards are logged.

    Examples
    --------
    >>> import torch
    >>> regression_loss(predicted_ratings=torch.tensor([[1.0, 2.0]]), target_ratings=torch.tensor([[0.0, 4.0]])).loss
    tensor([5.])
    """
    check_shapes("regression", {"predicted_ratings": predicted_ratings, "target_ratings": target_ratings})
    loss = (predicted_ratings - target_ratings) ** 2
    if loss.dim() > 1:
        loss = loss.sum(-1)
    return output(loss, None, None)


def tobt_probabilities(d: Tensor, *, tie_threshold: float = 0.5) -> tuple[Tensor, Tensor, Tensor]:
    """TOBT (Rao-Kupper) win / loss / tie probabilities for reward gap ``d = r_1 - r_2`` (A6).

    Returns ``(P(1 wins), P(2 wins), P(tie))``; they sum to 1 for ``tie_threshold > 0``.

    Examples
    --------
    >>> import torch
    >>> [round(p.item(), 4) for p in tobt_probabilities(torch.tensor(0.0), tie_threshold=0.5)]
    [0.3775, 0.3775, 0.2449]
    """
    _check_positive("tobt", "tie_threshold", tie_threshold)
    p_win = torch.sigmoid(d - tie_threshold)
    p_loss = torch.sigmoid(-d - tie_threshold)
    p_tie = math.expm1(2 * tie_threshold) * p_win * p_loss
    return p_win, p_loss, p_tie


def _tie_aware_logistic(loss: str, z: Tensor, is_tie: Tensor, tie_threshold: float, label_smoothing: float) -> Tensor:
    # Decisive: -logsig(z - a) (optionally cDPO-smoothed); tie: -log[(e^{2a} - 1) sig(z - a) sig(-z - a)],
    # both from log-sigmoids so neither side saturates.
    _check_positive(loss, "tie_threshold", tie_threshold)
    check_flip_rate(label_smoothing)
    a = tie_threshold
    decisive = -(1.0 - label_smoothing) * F.logsigmoid(z - a) - label_smoothing * F.logsigmoid(-z - a)
    tie = -math.log(math.expm1(2 * a)) - F.logsigmoid(z - a) - F.logsigmoid(-z - a)
    return torch.where(is_tie.bool(), tie, decisive)


def _ternary_output(loss: Tensor, chosen: Tensor, rejected: Tensor, is_tie: Tensor, tie_threshold: float) -> LossOutput:
    """The LossOutput of a win / tie / loss loss: accuracy = the observed outcome is the model's most probable one.

    With ``d = chosen - rejected`` and TOBT's probabilities, a decisive pair
    is accurate when ``P(win) > max(P(loss), P(tie))``, a tied pair when
    ``P(tie) > max(P(win), P(loss))`` (compared as logs, so +-1e4 gaps do not
    underflow). ``P(tie)`` is in ``extras["tie_probability"]``.
    """
    d = (chosen - rejected).detach()
    a = tie_threshold
    log_win, log_loss = F.logsigmoid(d - a), F.logsigmoid(-d - a)
    log_tie = math.log(math.expm1(2 * a)) + log_win + log_loss
    win = (log_win > log_loss) & (log_win > log_tie)
    tie = (log_tie > log_win) & (log_tie > log_loss)
    out = output(loss, chosen, rejected, tie_probability=log_tie.exp())
    out.accuracy = torch.where(is_tie.bool(), tie, win).to(loss.dtype)
    return out


@register(
    "tobt",
    source="Guo et al. 2025, TODO (code: XXares/TODO); Rao & Kupper 1967",
    symbols={"tie_threshold": "alpha"},
    kind="reward",
)
def tobt_loss(
    chosen_rewards: Tensor, rejected_rewards: Tensor, is_tie: Tensor, *, tie_threshold: float = 0.5
) -> LossOutput:
    """Tie-aware BT reward-model loss (TOBT, A6): ``-log P(observed)`` under Rao-Kupper.

    For tied pairs the order of "chosen" and "rejected" does not matter (the
    tie loss is even in the gap).

    ``accuracy`` is 1.0 where the observed outcome (chosen wins, or a tie) is
    the most probable of win / loss / tie under :func:`tobt_probabilities` at
    the reward gap. A tie is the most probable outcome only near a zero gap
    and only when ``tie_threshold > log 2`` (at gap 0, ``P(tie) / P(win) =
    e^alpha - 1``): with the default 0.5, tied pairs always count as misses.
    ``extras["tie_probability"]`` holds ``P(tie)``.

    Examples
    --------
    >>> import torch
    >>> out = tobt_loss(chosen_rewards=torch.tensor([0.0]), rejected_rewards=torch.tensor([0.0]),
    ...                 is_tie=torch.tensor([True]))
    >>> round(out.loss.item(), 6)
    1.406829
    """
    check_shapes("tobt", {"chosen_rewards": chosen_rewards, "rejected_rewards": rejected_rewards, "is_tie": is_tie})
    loss = _tie_aware_logistic("tobt", chosen_rewards - rejected_rewards, is_tie, tie_threshold, 0.0)
    return _ternary_output(loss, chosen_rewards, rejected_rewards, is_tie, tie_threshold)


def _listwise_inputs(
    loss: str, scores_name: str, scores: Tensor, ranks: Tensor | None, list_mask: Tensor | None
) -> tuple[Tensor, Tensor]:
    """Ranks and a boolean mask for (B, K) listwise scores, after checking shapes."""
    check_shapes(loss, {scores_name: scores, "ranks": ranks, "list_mask": list_mask})
    if scores.dim() != 2:
        raise ValueError(f"{loss}: {scores_name} must have shape (B, K), got {tuple(scores.shape)}.")
    if ranks is None:
        ranks = torch.arange(1, scores.shape[1] + 1, device=scores.device).expand(scores.shape)
    mask = torch.ones_like(scores, dtype=torch.bool) if list_mask is None else list_mask.bool()
    _refuse_empty_lists(loss, mask)
    return ranks, mask


def _refuse_empty_lists(loss: str, mask: Tensor) -> None:
    # A row with no real response has no likelihood and no best or worst response to log.
    empty = ~mask.any(dim=1)
    if torch.any(empty):
        rows = torch.nonzero(empty).flatten()
        raise ValueError(
            f"{loss}: list_mask rows {rows[:10].tolist()} (of {mask.shape[0]}) have no real response; "
            "drop those rows from the batch (each list needs at least one True in list_mask)."
        )


def _plackett_luce(u: Tensor, ranks: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-row Plackett-Luce negative log-likelihood, and the scores of the best and worst real items.

    Item ``i`` is chosen from the real items ranked no better than it:
    ``-sum_i [u_i - logsumexp_{j: rank_j >= rank_i} u_j]``. Without ties this
    is the usual sequential choice; a tied group is the Breslow treatment
    (each tied item chosen from the same set), as ``bradley.PlackettLuce``'s
    default. Padded entries of ``u`` may hold anything (NaN, -inf).
    """
    u = torch.where(mask, u, torch.zeros_like(u))
    k = u.shape[1]
    later = (ranks.unsqueeze(1) >= ranks.unsqueeze(2)) & mask.unsqueeze(1)  # [b, i, j]: j in item i's choice set
    later = later | torch.eye(k, dtype=torch.bool, device=u.device)  # never empty (padded rows are dropped below)
    # -(u_i - logsumexp_S u_j) = logsumexp_S (u_j - u_i) = m + log1p(sum_{j != argmax} e^{d_j - m}): log1p keeps
    # the precision of a small loss that u_i - logsumexp would cancel away.
    d = torch.where(later, u.unsqueeze(1) - u.unsqueeze(2), torch.full_like(later, -math.inf, dtype=u.dtype))
    top = d.argmax(-1, keepdim=True)
    m = d.gather(-1, top)
    rest = torch.exp(d - m).scatter(-1, top, 0.0).sum(-1)
    terms = m.squeeze(-1) + torch.log1p(rest)
    loss = torch.where(mask, terms, torch.zeros_like(terms)).sum(-1)
    big = torch.finfo(torch.float64).max
    masked_ranks = ranks.to(torch.float64)
    best = torch.where(mask, masked_ranks, torch.full_like(masked_ranks, big)).argmin(-1, keepdim=True)
    worst = torch.where(mask, masked_ranks, torch.full_like(masked_ranks, -big)).argmax(-1, keepdim=True)
    return loss, u.gather(1, best).squeeze(1), u.gather(1, worst).squeeze(1)


@register(
    "plackett-luce",
    "pl",
    source="Plackett 1975, Luce 1959; Breslow ties",
    kind="reward",
)
def plackett_luce_loss(rewards: Tensor, ranks: Tensor | None = None, list_mask: Tensor | None = None) -> LossOutput:
    """Plackett-Luce listwise reward-model loss over K responses per prompt (A7, A12).

    Parameters
    ----------
    rewards : (B, K)
        Reward-model scores.
    ranks : (B, K), optional
        Rank of each response, 1 = best; absent = columns ordered best first.
        Equal ranks are ties, treated as Breslow's (each tied response is
        chosen from the same set), the default of ``bradley.PlackettLuce``.
    list_mask : (B, K), optional
        True at the real responses of ragged lists (anywhere in the row);
        every row needs at least one (a row without any is refused, naming
        it). A list of one real response has loss 0 and logs it as both best
        and worst (margin 0).

    Chosen / rejected rewards are the scores of the best and the worst real
    response of each list. Computed in float32 at least: bfloat16's
    ``logsumexp`` loses the loss (scores [5, 0, -5] gave half of it).

    Examples
    --------
    >>> import torch
    >>> out = plackett_luce_loss(rewards=torch.tensor([[0.0, 0.0]]))
    >>> round(out.loss.item(), 6)
    0.693147
    >>> out = plackett_luce_loss(rewards=torch.tensor([[-5.0, 5.0]]), ranks=torch.tensor([[2, 1]]))
    >>> round(out.loss.item(), 6), out.chosen_rewards.item()
    (4.5e-05, 5.0)
    """
    ranks, mask = _listwise_inputs("plackett-luce", "rewards", rewards, ranks, list_mask)
    loss, best, worst = _plackett_luce(rewards, ranks, mask)
    return output(loss, best, worst)


# --------------------------------------------------------------------------
# Policy losses (sheet part B)
# --------------------------------------------------------------------------


@register(
    "dpo-pl",
    source="Rafailov et al. 2023, DPO Appendix A.3 (Plackett-Luce)",
    kind="policy",
)
def dpo_plackett_luce_loss(
    policy_logps: Tensor,
    ref_logps: Tensor,
    ranks: Tensor | None = None,
    list_mask: Tensor | None = None,
    *,
    beta: float = 0.1,
) -> LossOutput:
    """DPO's Plackett-Luce loss over K ranked responses: ``plackett-luce`` on ``beta * (log pi - log pi_ref)``.

    ``policy_logps``, ``ref_logps`` (B, K) are summed log-probs; ``ranks`` and
    ``list_mask`` as for ``plackett-luce`` (ties: Breslow; rows without a real
    response are refused). With K = 2 this is
    DPO. Rewards: ``beta * log-ratio`` of the best and worst real response.

    Examples
    --------
    >>> import torch
    >>> out = dpo_plackett_luce_loss(policy_logps=torch.tensor([[-10.0, -20.0]]),
    ...                              ref_logps=torch.tensor([[-15.0, -15.0]]), beta=0.1)
    >>> round(out.loss.item(), 6)
    0.313262
    """
    check_shapes("dpo-pl", {"policy_logps": policy_logps, "ref_logps": ref_logps})
    ranks, mask = _listwise_inputs("dpo-pl", "policy_logps", policy_logps, ranks, list_mask)
    loss, best, worst = _plackett_luce(beta * (policy_logps - ref_logps), ranks, mask)
    return output(loss, best, worst)


@register(
    "simpo",
    source="Meng et al. 2024, SimPO (code: princeton-nlp/SimPO)",
    symbols={"gamma_beta_ratio": "gamma / beta"},
)
def simpo_loss(
    policy_chosen_avg_logps: Tensor,
    policy_rejected_avg_logps: Tensor,
    *,
    beta: float = 2.0,
    gamma_beta_ratio: float = 0.25,
    label_smoothing: float = 0.0,
    sft_weight: float = 0.0,
) -> LossOutput:
    """SimPO ``-logsig(beta (A_w - A_l) - gamma)`` on length-normalised log-probs, no reference (B6).

    Parametrised as the authors' code: ``gamma = beta * gamma_beta_ratio``
    (defaults beta 2.0, ratio 0.25); ``label_smoothing`` as cDPO.
    ``sft_weight`` adds ``sft_weight * (-A_w)``, the chosen response's
    cross-entropy; the authors take one token mean over the whole batch, so
    the two agree when the chosen responses have equal lengths. TRL's
    CPO-based SimPO (``simpo_gamma``) is in :mod:`bradley.nn.dpo`.
    Rewards ``beta * A``.

    Examples
    --------
    >>> import torch
    >>> out = simpo_loss(policy_chosen_avg_logps=torch.tensor([-1.0]),
    ...                  policy_rejected_avg_logps=torch.tensor([-1.0]), gamma_beta_ratio=0.0)
    >>> round(out.loss.item(), 6)
    0.693147
    """
    check_shapes(
        "simpo",
        {"policy_chosen_avg_logps": policy_chosen_avg_logps, "policy_rejected_avg_logps": policy_rejected_avg_logps},
    )
    check_flip_rate(label_smoothing)
    logits = policy_chosen_avg_logps - policy_rejected_avg_logps - gamma_beta_ratio
    loss = soft_logistic(beta * logits, 1.0 - label_smoothing)
    if sft_weight:
        loss = loss - sft_weight * policy_chosen_avg_logps
    return output(loss, beta * policy_chosen_avg_logps, beta * policy_rejected_avg_logps)


@register(
    "tdpo",
    source="Zeng et al. 2024, TDPO (code: Vance0124/Token-level-Direct-Preference-Optimization)",
)
def tdpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    chosen_seq_kl: Tensor,
    rejected_seq_kl: Tensor,
    *,
    beta: float = 0.1,
    alpha: float = 0.5,
    version: int = 2,
) -> LossOutput:
    """Token-level DPO (B7): TDPO1 ``-logsig(beta[Delta - (KL_l - KL_w)])`` or
    TDPO2 ``-logsig(beta[Delta - alpha (KL_l - sg(KL_w))])``.

    ``*_seq_kl`` are sequential KLs ``sum_t KL(pi_ref || pi_theta)`` over the
    full vocabulary (:func:`bradley.nn.logprobs.sequence_kl`). Default TDPO2
    with beta 0.1, alpha 0.5 (the authors' function default); ``alpha`` is
    unused by TDPO1.

    Examples
    --------
    >>> import torch
    >>> z = torch.tensor([-5.0])
    >>> out = tdpo_loss(policy_chosen_logps=z, policy_rejected_logps=z, ref_chosen_logps=z, ref_rejected_logps=z,
    ...                 chosen_seq_kl=torch.zeros(1), rejected_seq_kl=torch.zeros(1))
    >>> round(out.loss.item(), 6)
    0.693147
    """
    check_shapes(
        "tdpo",
        {
            "policy_chosen_logps": policy_chosen_logps,
            "policy_rejected_logps": policy_rejected_logps,
            "ref_chosen_logps": ref_chosen_logps,
            "ref_rejected_logps": ref_rejected_logps,
            "chosen_seq_kl": chosen_seq_kl,
            "rejected_seq_kl": rejected_seq_kl,
        },
    )
    rho_w, rho_l = policy_chosen_logps - ref_chosen_logps, policy_rejected_logps - ref_rejected_logps
    if version == 1:
        kl_term = rejected_seq_kl - chosen_seq_kl
    elif version == 2:
        kl_term = alpha * (rejected_seq_kl - chosen_seq_kl.detach())
    else:
        raise ValueError(f"tdpo: version must be 1 or 2, got {version!r}.")
    loss = -F.logsigmoid(beta * (rho_w - rho_l - kl_term))
    return output(loss, beta * rho_w, beta * rho_l, chosen_kl=chosen_seq_kl, rejected_kl=rejected_seq_kl)


def _below_zero(a: Tensor) -> Tensor:
    # p = exp(A) = 1 makes log(1 - p) infinite: the value is floored at float32's -sqrt(tiny) with the gradient
    # passed straight through (bradley.nn.dpo.log1mexp does the same inside), so A itself is used consistently.
    return a + (a.clamp(max=_LOG1MEXP_FLOOR) - a).detach()


@register(
    "asft",
    source="Wang et al. 2024, ASFT (arXiv 2409.10571), as restated by Gorbatovski et al. 2025",
    symbols={"lam": "lambda"},
)
def asft_loss(
    policy_chosen_avg_logps: Tensor,
    policy_rejected_avg_logps: Tensor,
    *,
    lam: float = 0.1,
    beta: float = 1.0,
) -> LossOutput:
    """ASFT ``-log p(y_w) - lam [logsig(beta r_odds(y_w)) + logsig(-beta r_odds(y_l))]`` (B8).

    ``p(y) = exp(A(y))`` from length-normalised log-probs and
    ``r_odds = log(p / (1 - p))``; ``beta = 1`` is ASFT
    (``-(1 + lam) A_w - lam log(1 - p_l)``, non-negative), other values the
    "Blur" paper's tempered variant. No official code exists and the paper's
    lambda is UNCERTAIN; the default 0.1 is the low end of the grid searched by
    the "Blur" paper. Log-probs must be <= 0. ``log(1 - p)`` is computed as
    ``log1mexp(A)``, its value floored where ``|A| < 1.1e-19`` (float32's
    ``sqrt(tiny)``, in every dtype, so float32 and float64 agree) with the
    gradient passed through. Rewards ``beta * A`` (reference-free scale);
    the log-odds are in ``extras``.

    Examples
    --------
    >>> import torch
    >>> out = asft_loss(policy_chosen_avg_logps=torch.tensor([-0.5]),
    ...                 policy_rejected_avg_logps=torch.tensor([-0.2]), lam=0.0)
    >>> round(out.loss.item(), 6)
    0.5
    """
    check_shapes(
        "asft",
        {"policy_chosen_avg_logps": policy_chosen_avg_logps, "policy_rejected_avg_logps": policy_rejected_avg_logps},
    )
    for name, a in (
        ("policy_chosen_avg_logps", policy_chosen_avg_logps),
        ("policy_rejected_avg_logps", policy_rejected_avg_logps),
    ):
        if torch.any(a > 0):
            rows = torch.nonzero(a.detach() > 0).flatten()[:5].tolist()
            raise ValueError(
                f"asft: {name} must be log-probabilities (<= 0); rows {rows} are positive "
                f"(max {a.detach().max().item():.4g})."
            )
    a_w, a_l = _below_zero(policy_chosen_avg_logps), _below_zero(policy_rejected_avg_logps)
    odds_w = a_w - log1mexp(a_w)
    odds_l = a_l - log1mexp(a_l)
    if beta == 1.0:
        # logsig(odds) = A and logsig(-odds) = log(1 - p): exact, no large intermediate odds.
        align = policy_chosen_avg_logps + log1mexp(a_l)
    else:
        align = F.logsigmoid(beta * odds_w) + F.logsigmoid(-beta * odds_l)
    loss = -policy_chosen_avg_logps - lam * align
    return output(
        loss,
        beta * policy_chosen_avg_logps,
        beta * policy_rejected_avg_logps,
        chosen_log_odds=odds_w,
        rejected_log_odds=odds_l,
    )


def dmpo_turn_weights(n_turns: Tensor, max_turns: int, *, gamma: float = 0.7) -> Tensor:
    """DMPO turn weights ``phi(j, T) = gamma^j (1 - gamma^(T-j)) / (1 - gamma^T)`` (B9).

    Returns shape (B, max_turns) in float64, zero for ``j >= T``;
    ``gamma = 1`` gives ``(T - j) / T``.

    Examples
    --------
    >>> import torch
    >>> dmpo_turn_weights(torch.tensor([3]), 3, gamma=0.7).round(decimals=4).tolist()
    [[1.0, 0.5434, 0.2237]]
    """
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"dmpo: gamma must lie in (0, 1], got {gamma}.")
    j = torch.arange(max_turns, dtype=torch.float64, device=n_turns.device).unsqueeze(0)
    t = n_turns.to(torch.float64).unsqueeze(1)
    if gamma == 1.0:
        w = (t - j) / t
    else:
        w = gamma**j * (1.0 - gamma ** (t - j)) / (1.0 - gamma**t)
    return torch.where(j < t, w, torch.zeros_like(w))


def _dmpo_weighted(log_ratios: Tensor, turns: Tensor, gamma: float) -> Tensor:
    """``sum_j phi(j, T) log_ratio_j`` over the real turns only.

    Selected with ``torch.where``, not multiplied by a zero weight: padding
    entries may hold -inf or NaN (0 * -inf is NaN).
    """
    weights = dmpo_turn_weights(turns, log_ratios.shape[1], gamma=gamma).to(log_ratios.dtype)
    real = torch.arange(log_ratios.shape[1], device=log_ratios.device).unsqueeze(0) < turns.unsqueeze(1)
    return (weights * torch.where(real, log_ratios, torch.zeros_like(log_ratios))).sum(-1)


@register("dmpo", source="Shi et al. 2024, DMPO (code: swt-user/DMPO)")
def dmpo_loss(
    policy_chosen_turn_logps: Tensor,
    policy_rejected_turn_logps: Tensor,
    ref_chosen_turn_logps: Tensor,
    ref_rejected_turn_logps: Tensor,
    chosen_turns: Tensor,
    rejected_turns: Tensor,
    *,
    beta: float = 0.1,
    gamma: float = 0.7,
) -> LossOutput:
    """DMPO multi-turn DPO on turn-weighted log-probs (B9).

    ``*_turn_logps`` have shape (B, J): summed log-probs of each assistant turn
    (entries past a trajectory's turn count are ignored, whatever they hold,
    -inf and NaN included); ``*_turns`` give the number of turns ``T_w``,
    ``T_l`` (they may differ), whole numbers from 1 to J (others are refused,
    naming the rows). The same weights
    :func:`dmpo_turn_weights` apply to policy and reference. Rewards
    ``beta *`` the weighted log-ratios.

    Examples
    --------
    >>> import torch
    >>> one = lambda v: torch.tensor([[v]])
    >>> out = dmpo_loss(policy_chosen_turn_logps=one(-10.0), policy_rejected_turn_logps=one(-20.0),
    ...                 ref_chosen_turn_logps=one(-15.0), ref_rejected_turn_logps=one(-15.0),
    ...                 chosen_turns=torch.tensor([1]), rejected_turns=torch.tensor([1]))
    >>> round(out.loss.item(), 6)
    0.313262
    """
    check_shapes(
        "dmpo", {"policy_chosen_turn_logps": policy_chosen_turn_logps, "ref_chosen_turn_logps": ref_chosen_turn_logps}
    )
    check_shapes(
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
    for name, turns, columns, logps_name in (
        ("chosen_turns", chosen_turns, policy_chosen_turn_logps.shape[1], "policy_chosen_turn_logps"),
        ("rejected_turns", rejected_turns, policy_rejected_turn_logps.shape[1], "policy_rejected_turn_logps"),
    ):
        # A count outside 1..J would weight turns that were never scored (or none at all).
        bad = (turns < 1) | (turns > columns)
        if turns.is_floating_point():
            bad = bad | (turns != turns.round())
        if torch.any(bad):
            rows = torch.nonzero(bad).flatten()
            raise ValueError(
                f"dmpo: {name} must be whole numbers from 1 to {columns} (the {columns} turn columns of "
                f"{logps_name}); rows {rows[:10].tolist()} have {turns[rows[:10]].tolist()}."
            )
    rho_w = _dmpo_weighted(policy_chosen_turn_logps - ref_chosen_turn_logps, chosen_turns, gamma)
    rho_l = _dmpo_weighted(policy_rejected_turn_logps - ref_rejected_turn_logps, rejected_turns, gamma)
    loss = -F.logsigmoid(beta * (rho_w - rho_l))
    return output(loss, beta * rho_w, beta * rho_l)


@register(
    "todo",
    source="Guo et al. 2025, TODO (code: XXares/TODO)",
    symbols={"tie_threshold": "alpha"},
)
def todo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    is_tie: Tensor,
    *,
    beta: float = 0.01,
    tie_threshold: float = 0.5,
    label_smoothing: float = 0.0,
) -> LossOutput:
    """TODO: DPO with ternary (win / tie / loss) preferences via TOBT (A6).

    Decisive pairs: ``-logsig(beta Delta - alpha)``; tied pairs:
    ``-log[(e^{2 alpha} - 1) sig(beta Delta - alpha) sig(-beta Delta - alpha)]``
    with ``alpha = tie_threshold``. Defaults from the authors' configs: beta
    0.01, alpha 0.5 (their ``dpo_theta = -alpha``).

    ``accuracy`` is 1.0 where the observed outcome is the most probable of
    win / loss / tie under TOBT at ``beta Delta`` (the logged margin), as for
    ``tobt``: with ``tie_threshold <= log 2`` a tie is never the most
    probable outcome, so tied pairs count as misses. ``extras["tie_probability"]``
    holds ``P(tie)``.

    Examples
    --------
    >>> import torch
    >>> z = torch.tensor([-5.0])
    >>> out = todo_loss(policy_chosen_logps=z, policy_rejected_logps=z, ref_chosen_logps=z, ref_rejected_logps=z,
    ...                 is_tie=torch.tensor([True]))
    >>> round(out.loss.item(), 6)
    1.406829
    """
    check_shapes(
        "todo",
        {
            "policy_chosen_logps": policy_chosen_logps,
            "policy_rejected_logps": policy_rejected_logps,
            "ref_chosen_logps": ref_chosen_logps,
            "ref_rejected_logps": ref_rejected_logps,
            "is_tie": is_tie,
        },
    )
    rho_w, rho_l = policy_chosen_logps - ref_chosen_logps, policy_rejected_logps - ref_rejected_logps
    loss = _tie_aware_logistic("todo", beta * (rho_w - rho_l), is_tie, tie_threshold, label_smoothing)
    return _ternary_output(loss, beta * rho_w, beta * rho_l, is_tie, tie_threshold)


@register(
    "pro",
    source="Song et al. 2024, PRO (code: AlibabaResearch/DAMO-ConvAI PRO)",
)
def pro_loss(
    policy_avg_logps: Tensor,
    response_scores: Tensor,
    policy_logps: Tensor | None = None,
    list_mask: Tensor | None = None,
    *,
    sft_weight: float = 0.05,
) -> LossOutput:
    """PRO: listwise ranking loss with reward-gap temperatures plus an SFT term (A8).

    Parameters
    ----------
    policy_avg_logps : (B, n)
        Length-normalised policy log-probs of n responses.
    response_scores : (B, n)
        Their reward-model scores; responses are ranked by them (highest
        first; a stable sort, so sorted input keeps its order).
    policy_logps : (B, n), optional
        Summed policy log-probs, for the SFT term
        ``sft_weight * (n - 1)^2 * (-S(y^1))`` on the best response (the
        ``(n-1)^2`` scaling is the authors' code; the paper's wording is
        UNCERTAIN). Required unless ``sft_weight = 0``.
    list_mask : (B, n), optional
        Real responses of ragged lists; ``n`` above counts them per row.

    Equal scores would make the temperatures ``1 / (r_k - r_i)`` infinite;
    the gaps are floored at 1e-6 (the original code does not guard this).
    Rewards are ``A`` of the best and second-best real response (the ranking
    term has no temperature); a list with one real response logs its ``A``
    as both, so its margin is 0 (and its accuracy 0), never NaN. Rows of
    ``list_mask`` without any real response are refused.

    Examples
    --------
    >>> import torch
    >>> out = pro_loss(policy_avg_logps=torch.tensor([[-1.0, -1.5]]), response_scores=torch.tensor([[2.0, 0.5]]),
    ...                sft_weight=0.0)
    >>> round(out.loss.item(), 6)
    0.386871
    """
    check_shapes(
        "pro",
        {
            "policy_avg_logps": policy_avg_logps,
            "response_scores": response_scores,
            "policy_logps": policy_logps,
            "list_mask": list_mask,
        },
    )
    if policy_avg_logps.dim() != 2:
        raise ValueError(f"pro: policy_avg_logps must have shape (B, n), got {tuple(policy_avg_logps.shape)}.")
    if sft_weight and policy_logps is None:
        raise ValueError(
            "pro: the SFT term needs policy_logps (summed policy log-probs of the n responses, (B, n)); "
            "give it, or set sft_weight=0."
        )
    b, n = policy_avg_logps.shape
    mask = torch.ones_like(policy_avg_logps, dtype=torch.bool) if list_mask is None else list_mask.bool()
    _refuse_empty_lists("pro", mask)
    order = torch.where(mask, response_scores, torch.full_like(response_scores, -math.inf))
    order = torch.sort(order, dim=1, descending=True, stable=True).indices
    mask = mask.gather(1, order)
    s = torch.where(mask, policy_avg_logps.gather(1, order), torch.zeros_like(policy_avg_logps))
    r = torch.where(mask, response_scores.gather(1, order), torch.zeros_like(response_scores))
    loss = torch.zeros(b, dtype=s.dtype, device=s.device)
    for k in range(n - 1):
        rest = mask[:, k + 1 :] & mask[:, k : k + 1]
        gaps = (r[:, k : k + 1] - r[:, k + 1 :]).clamp(min=1e-6)  # 1 / T_k^i
        own = gaps.masked_fill(~rest, 0.0).max(dim=1).values  # 1 / T_k^k = the largest gap
        logits = torch.cat([(s[:, k] * own).unsqueeze(1), s[:, k + 1 :] * gaps], dim=1)
        logits = logits.masked_fill(torch.cat([mask[:, k : k + 1], rest], dim=1).logical_not(), -math.inf)
        valid = rest.any(dim=1)
        logits = torch.where(valid.unsqueeze(1), logits, torch.zeros_like(logits))  # no -inf rows
        step = torch.logsumexp(logits, dim=1) - logits[:, 0]
        loss = loss + torch.where(valid, step, torch.zeros_like(step))
    if sft_weight and policy_logps is not None:
        best = policy_logps.gather(1, order[:, :1]).squeeze(1)
        n_real = mask.sum(dim=1).to(s.dtype)
        loss = loss - sft_weight * (n_real - 1) ** 2 * best
    # Real responses come first after the sort; without a second one, log the best twice (margin 0, not NaN).
    second = torch.where(mask[:, 1], s[:, 1], s[:, 0]) if n > 1 else s[:, 0]
    return output(loss, s[:, 0], second)


@register(
    "sppo",
    source="Wu et al. 2024, SPPO (code: uclaml/SPPO)",
    symbols={"beta": "1 / eta"},
)
def sppo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    prev_chosen_logps: Tensor,
    prev_rejected_logps: Tensor,
    chosen_win_rate: Tensor | None = None,
    rejected_win_rate: Tensor | None = None,
    target: Tensor | None = None,
    *,
    beta: float = 0.001,
    variant: str = "sppo",
) -> LossOutput:
    """SPPO square loss against the previous iterate ``pi_t`` (B10), ``eta = 1 / beta``.

    ``variant="sppo"``: ``1/2 [(rho_w - eta (P_w - 1/2))^2 + (rho_l - eta (P_l - 1/2))^2]``
    with ``P_w, P_l = chosen_win_rate, rejected_win_rate``, the estimated
    win rates against ``pi_t``. ``"single"``: both targets from the pairwise
    ``p = target = P(y_w > y_l)``:
    ``1/2 [(rho_w - eta (p - 1/2))^2 + (rho_l + eta (p - 1/2))^2]``.
    ``rho = log pi - log pi_t`` (summed). Default beta 0.001 (the authors'
    code; eta = 1000). TRL's hard-label ``sppo_hard`` is in :mod:`bradley.nn.dpo`.
    Rewards ``beta * rho``.

    Examples
    --------
    >>> import torch
    >>> out = sppo_loss(policy_chosen_logps=torch.tensor([0.3]), policy_rejected_logps=torch.tensor([-0.2]),
    ...                 prev_chosen_logps=torch.zeros(1), prev_rejected_logps=torch.zeros(1),
    ...                 chosen_win_rate=torch.tensor([0.8]), rejected_win_rate=torch.tensor([0.3]), beta=1.0)
    >>> out.loss.abs().item() < 1e-12
    True
    """
    check_shapes(
        "sppo",
        {
            "policy_chosen_logps": policy_chosen_logps,
            "policy_rejected_logps": policy_rejected_logps,
            "prev_chosen_logps": prev_chosen_logps,
            "prev_rejected_logps": prev_rejected_logps,
        },
        {"chosen_win_rate": chosen_win_rate, "rejected_win_rate": rejected_win_rate, "target": target},
    )
    _check_positive("sppo", "beta", beta)
    eta = 1.0 / beta
    rho_w = policy_chosen_logps - prev_chosen_logps
    rho_l = policy_rejected_logps - prev_rejected_logps
    if variant == "sppo":
        if chosen_win_rate is None or rejected_win_rate is None:
            raise ValueError(
                "sppo: variant 'sppo' needs chosen_win_rate and rejected_win_rate (estimated P(response beats "
                "the previous iterate), (B,)); with one pairwise preference use variant='single' and target."
            )
        loss = 0.5 * ((rho_w - eta * (chosen_win_rate - 0.5)) ** 2 + (rho_l - eta * (rejected_win_rate - 0.5)) ** 2)
    elif variant == "single":
        if target is None:
            raise ValueError("sppo: variant 'single' needs target (P(chosen beats rejected), (B,)).")
        shift = eta * (target - 0.5)
        loss = 0.5 * ((rho_w - shift) ** 2 + (rho_l + shift) ** 2)
    else:
        raise ValueError(f"sppo: variant must be 'sppo' or 'single', got {variant!r}.")
    return output(loss, beta * rho_w, beta * rho_l)


@register(
    "inpo",
    source="Zhang et al. 2025, INPO (arXiv 2407.00617)",
    symbols={"beta": "eta", "tau": "tau"},
)
def inpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    prev_chosen_logps: Tensor,
    prev_rejected_logps: Tensor,
    *,
    beta: float = 0.005,
    tau: float | None = None,
) -> LossOutput:
    """INPO ``(h_t - 1/(2 eta))^2`` (B11), ``eta = beta``, with
    ``h_t = log pi(y_w)/pi(y_l) - (tau/eta) log ref-ratio - ((eta - tau)/eta) log pi_t-ratio``.

    Defaults from the paper: eta 0.005, ``tau = eta / 3`` (``tau=None``).
    Rewards ``beta * log(pi / pi_t)``; ``h`` is in ``extras``.

    Examples
    --------
    >>> import torch
    >>> z = torch.tensor([-3.0], dtype=torch.float64)
    >>> inpo_loss(policy_chosen_logps=z, policy_rejected_logps=z, ref_chosen_logps=z, ref_rejected_logps=z,
    ...           prev_chosen_logps=z, prev_rejected_logps=z, beta=0.005).loss.item()
    10000.0
    """
    check_shapes(
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
    _check_positive("inpo", "beta", beta)
    eta = beta
    tau = eta / 3.0 if tau is None else tau
    policy_ratio = policy_chosen_logps - policy_rejected_logps
    ref_ratio = ref_chosen_logps - ref_rejected_logps
    prev_ratio = prev_chosen_logps - prev_rejected_logps
    h = policy_ratio - (tau / eta) * ref_ratio - ((eta - tau) / eta) * prev_ratio
    loss = (h - 1.0 / (2.0 * eta)) ** 2
    rho_w, rho_l = policy_chosen_logps - prev_chosen_logps, policy_rejected_logps - prev_rejected_logps
    return output(loss, beta * rho_w, beta * rho_l, h=h)


@register(
    "dno",
    source="Rosset et al. 2024, DNO (arXiv 2404.03715)",
    symbols={"beta": "eta"},
)
def dno_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    prev_chosen_logps: Tensor,
    prev_rejected_logps: Tensor,
    target: Tensor | None = None,
    *,
    beta: float = 0.1,
) -> LossOutput:
    """Direct Nash Optimization (B13): DPO against the previous iterate ``pi_t``, ``eta = beta``.

    Without ``target``: the practical DNO-Prct loss
    ``-logsig(eta log pi(y+)/pi_t(y+) - eta log pi(y-)/pi_t(y-))``; a soft
    ``target = sigmoid(r_t(y1) - r_t(y2))`` gives the conceptual loss (Eq. 8).
    Rewards ``beta * log(pi / pi_t)``.

    Examples
    --------
    >>> import torch
    >>> out = dno_loss(policy_chosen_logps=torch.tensor([-10.0]), policy_rejected_logps=torch.tensor([-20.0]),
    ...                prev_chosen_logps=torch.tensor([-15.0]), prev_rejected_logps=torch.tensor([-15.0]))
    >>> round(out.loss.item(), 6)
    0.313262
    """
    check_shapes(
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
    z = beta * (rho_w - rho_l)
    loss = -F.logsigmoid(z) if target is None else soft_logistic(z, target)
    return output(loss, beta * rho_w, beta * rho_l)


@register(
    "egpo",
    "online-ipo",
    source="Zhou, Fazel & Du 2025, EGPO (code: zhourunlong/EGPO); Calandriello et al. 2024 (online IPO)",
)
def egpo_loss(
    policy_chosen_avg_logps: Tensor,
    policy_rejected_avg_logps: Tensor,
    ref_chosen_avg_logps: Tensor,
    ref_rejected_avg_logps: Tensor,
    target: Tensor | None = None,
    chosen_win_rate: Tensor | None = None,
    rejected_win_rate: Tensor | None = None,
    *,
    beta: float = 0.1,
) -> LossOutput:
    """EGPO's online-IPO loss (B14) on length-normalised log-probs of two samples y ("chosen"), y' ("rejected").

    ``((A(y) - A_ref(y)) - (A(y') - A_ref(y')) - (P(y > y'') - P(y' > y''))/beta)^2``
    with ``chosen_win_rate = P(y > y'')``, ``rejected_win_rate = P(y' > y'')``
    against an opponent sample ``y''``; or, without win rates, from
    ``target = P(y > y')`` the variance-reduced target
    ``(P(y > y') - 1/2) / beta`` (win rates win when a batch has both). The
    extragradient procedure (a half step, new targets, restore, full step)
    belongs to the trainer: compute the targets at the half-step parameters
    and call this loss at the saved ones, as the authors' code does.
    Rewards ``beta * (A - A_ref)``.

    Examples
    --------
    >>> import torch
    >>> out = egpo_loss(policy_chosen_avg_logps=torch.tensor([0.5]), policy_rejected_avg_logps=torch.tensor([0.0]),
    ...                 ref_chosen_avg_logps=torch.zeros(1), ref_rejected_avg_logps=torch.zeros(1),
    ...                 target=torch.tensor([0.55]))
    >>> round(out.loss.item(), 12)
    0.0
    """
    check_shapes(
        "egpo",
        {
            "policy_chosen_avg_logps": policy_chosen_avg_logps,
            "policy_rejected_avg_logps": policy_rejected_avg_logps,
            "ref_chosen_avg_logps": ref_chosen_avg_logps,
            "ref_rejected_avg_logps": ref_rejected_avg_logps,
        },
        {"target": target, "chosen_win_rate": chosen_win_rate, "rejected_win_rate": rejected_win_rate},
    )
    rates = (chosen_win_rate is not None, rejected_win_rate is not None)
    if any(rates) and not all(rates):
        raise ValueError("egpo: give both chosen_win_rate and rejected_win_rate (P(y > y''), P(y' > y'')), or neither.")
    if chosen_win_rate is not None and rejected_win_rate is not None:
        shift = (chosen_win_rate - rejected_win_rate) / beta
    elif target is not None:
        shift = (target - 0.5) / beta
    else:
        raise ValueError(
            "egpo: needs target (P(y > y'), (B,)) or chosen_win_rate and rejected_win_rate (P(y > y''), P(y' > y''))."
        )
    rho_w = policy_chosen_avg_logps - ref_chosen_avg_logps
    rho_l = policy_rejected_avg_logps - ref_rejected_avg_logps
    loss = (rho_w - rho_l - shift) ** 2
    return output(loss, beta * rho_w, beta * rho_l)
