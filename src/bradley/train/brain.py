"""BRAIn: Bayesian Reward-conditioned Amortized Inference (Pandey et al., ICML 2024; sheet B15, METHODS D6).

BRAIn fits the policy to a posterior over responses by self-normalised
importance sampling. For a prompt ``x`` with ``n`` responses
``y_1..y_n ~ q(.|x)`` (the proposal):

* posterior weights ``alpha_i = p(y_i | x, G=1) / q(y_i | x)``, normalised
  over the n samples: ``alpha_hat = softmax_i(log alpha_i)``;
* policy weights ``beta_i = pi_theta(y_i | x) / q(y_i | x)``, normalised:
  ``beta_hat = softmax_i(log pi_theta(y_i) - log q(y_i))`` (the
  self-normalised baseline);
* gradient (the authors' ``gradient_estimators.py``):
  ``g = sum_i (alpha_hat_i - beta_hat_i) grad log pi_theta(y_i | x)``;
* loss with exactly that gradient (``-g``):
  ``L = -sum_i alpha_hat_i log beta_hat_i``, alpha_hat held constant: the
  cross-entropy from the posterior's to the policy's self-normalised
  distribution over the samples.

**Assumptions made here** (the paper and code pin down only the estimator):

* *Posterior with a BT reward model*: ``p(y | x, G=1) ∝ pi_ref(y|x) exp(r(x,y)/beta)``,
  the KL-regularised (PPO-optimal) policy the authors' README names, i.e.
  ``log p(G=1 | x, y) = r(x, y)/beta`` up to a constant per prompt. For the
  Bradley-Terry likelihood of beating a per-prompt baseline response,
  ``p(G=1|x,y) = sigmoid(r(x,y) - r_0(x))``, pass
  ``rewards = logsigmoid(r - r_0)`` with ``beta=1``.
* *Proposal* ``q``: the previous iterate (``prev_logps``; the samples were
  drawn from it), or the reference (the prior) when ``prev_logps`` is
  omitted, in which case ``alpha_hat = softmax(r / beta)``.
* *Normaliser*: the posterior's unknown normalising constant cancels in
  ``alpha_hat``; ``alpha_hat`` and ``beta_hat`` are normalised over the
  samples of one prompt only (a per-prompt estimate), so a prompt with one
  sample contributes nothing.

With two samples, hard weights ``alpha_hat = (1, 0)`` (``beta -> 0``) and
``q = pi_ref``, the loss is ``-logsigmoid(rho_w - rho_l)``: DPO with beta 1
(the paper's bridge to DPO).
"""

from __future__ import annotations

import torch

from bradley.nn.registry import LossOutput, check_shapes, output

__all__ = ["brain_loss", "brain_weights"]

Tensor = torch.Tensor


def _float(x: Tensor) -> Tensor:
    # Half precision loses the softmax weights: compute in float32 at least, as the registry's kernels do.
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _mask_of(list_mask: Tensor | None, like: Tensor) -> Tensor:
    if list_mask is None:
        return torch.ones_like(like, dtype=torch.bool)
    if list_mask.shape != like.shape:
        raise ValueError(
            f"brain: list_mask has shape {tuple(list_mask.shape)} but policy_logps has shape {tuple(like.shape)}; "
            "give one flag per response, (B, K)."
        )
    mask = list_mask.bool()
    if not bool(mask.any(-1).all()):
        raise ValueError("brain: every row of list_mask needs at least one real response (True).")
    return mask


def brain_weights(
    rewards: Tensor,
    ref_logps: Tensor,
    prev_logps: Tensor | None = None,
    list_mask: Tensor | None = None,
    *,
    beta: float = 1.0,
) -> Tensor:
    """Self-normalised posterior weights ``alpha_hat`` over K samples per prompt, ``(B, K)``, detached.

    ``log alpha_i = r_i / beta + log pi_ref(y_i) - log q(y_i)`` with
    ``q = prev_logps`` (the proposal), or ``q = ref_logps`` when omitted.
    Padded responses (``list_mask`` False) get weight 0.

    Examples
    --------
    >>> w = brain_weights(torch.tensor([[0.0, 1.0]]), torch.zeros(1, 2), beta=1.0)
    >>> [round(v, 6) for v in w[0].tolist()]     # softmax(r / beta)
    [0.268941, 0.731059]
    """
    check_shapes("brain", {"rewards": rewards, "ref_logps": ref_logps, "prev_logps": prev_logps})
    rewards, ref_logps = _float(rewards), _float(ref_logps)
    prev_logps = None if prev_logps is None else _float(prev_logps)
    if rewards.dim() != 2:
        raise ValueError(f"brain: rewards must be (B, K) scores of K responses per prompt, got {tuple(rewards.shape)}.")
    if not beta > 0:
        raise ValueError(f"brain: beta must be > 0, got {beta!r}.")
    mask = _mask_of(list_mask, rewards)
    log_alpha = rewards / beta
    if prev_logps is not None:
        log_alpha = log_alpha + (ref_logps - prev_logps)
    log_alpha = log_alpha.detach().masked_fill(~mask, torch.finfo(log_alpha.dtype).min)
    return torch.softmax(log_alpha, dim=-1) * mask


def brain_loss(
    policy_logps: Tensor,
    ref_logps: Tensor,
    rewards: Tensor,
    prev_logps: Tensor | None = None,
    list_mask: Tensor | None = None,
    *,
    beta: float = 1.0,
) -> LossOutput:
    """BRAIn's self-normalised importance-weighted loss over K sampled responses per prompt, per prompt ``(B,)``.

    ``L = -sum_i alpha_hat_i log softmax_i(log pi_theta(y_i) - log q(y_i))``
    with ``alpha_hat`` from :func:`brain_weights` (constant); its gradient
    is minus the authors' estimator ``sum_i (alpha_hat_i - beta_hat_i) grad log pi_theta(y_i)``.
    See the module docstring for the posterior, proposal and normaliser used.

    Parameters
    ----------
    policy_logps : (B, K)
        Summed log-probs of the K responses under the policy being trained.
    ref_logps : (B, K)
        Under the prior ``pi_ref`` (the SFT / initial policy).
    rewards : (B, K)
        Bradley-Terry reward-model scores ``r(x, y_i)``.
    prev_logps : (B, K), optional
        Under the proposal ``q`` the responses were sampled from (the
        previous iterate); default: the proposal is ``pi_ref``.
    list_mask : (B, K), optional
        True at real responses of ragged lists.
    beta : float
        Temperature of the posterior ``pi_ref exp(r / beta)`` (the KL
        strength, as everywhere in :mod:`bradley.nn`).

    Returns
    -------
    LossOutput
        Chosen / rejected rewards are ``beta * log(pi / pi_ref)`` of the
        response with the largest and the smallest posterior weight;
        ``extras["ess"]`` is the effective sample size ``1 / sum alpha_hat^2``.

    Examples
    --------
    >>> pol = torch.tensor([[-2.0, -3.0]], requires_grad=True)
    >>> out = brain_loss(pol, ref_logps=torch.tensor([[-2.0, -3.0]]), rewards=torch.tensor([[1.0, 0.0]]))
    >>> round(out.loss.item(), 6)     # alpha_hat = softmax(1, 0), beta_hat = (1/2, 1/2)
    0.693147
    >>> out.loss.sum().backward()
    >>> [round(v, 6) for v in pol.grad[0].tolist()]    # -(alpha_hat - beta_hat)
    [-0.231059, 0.231059]
    """
    check_shapes(
        "brain",
        {"policy_logps": policy_logps, "ref_logps": ref_logps, "rewards": rewards, "prev_logps": prev_logps},
    )
    policy_logps, ref_logps = _float(policy_logps), _float(ref_logps)
    prev_logps = None if prev_logps is None else _float(prev_logps)
    alpha = brain_weights(rewards, ref_logps, prev_logps, list_mask, beta=beta)
    mask = _mask_of(list_mask, policy_logps)
    proposal = ref_logps if prev_logps is None else prev_logps
    # A large finite fill (not -inf) keeps 0 * log-weight = 0 at padded slots, with finite gradients.
    log_ratio = (policy_logps - proposal).masked_fill(~mask, torch.finfo(policy_logps.dtype).min)
    log_beta_hat = torch.log_softmax(log_ratio, dim=-1)
    loss = -(alpha * torch.where(mask, log_beta_hat, torch.zeros_like(log_beta_hat))).sum(-1)
    implicit = beta * (policy_logps - ref_logps)
    big = torch.finfo(alpha.dtype).max
    best = alpha.argmax(-1, keepdim=True)
    worst = torch.where(mask, alpha, torch.full_like(alpha, big)).argmin(-1, keepdim=True)
    ess = 1.0 / (alpha**2).sum(-1)
    return output(loss, implicit.gather(1, best).squeeze(1), implicit.gather(1, worst).squeeze(1), ess=ess)
