"""One container for everything a preference loss may read: :class:`PreferenceBatch`.

Every registered loss takes the same inputs: a ``PreferenceBatch``, or the same
field names as keyword tensors. A loss reads the fields it needs and says which
are missing. Some fields are derived when absent, so a batch built from
per-token log-probabilities serves every loss:

* ``chosen_lengths`` / ``rejected_lengths`` from ``chosen_mask`` / ``rejected_mask``;
* summed ``{policy,ref}_{chosen,rejected}_logps`` from the per-token
  ``*_token_logps`` and the masks;
* length-normalised ``*_avg_logps`` from the sums and the lengths.

Naming: ``policy_*`` is the model being trained, ``ref_*`` the frozen reference,
``prev_*`` the previous iterate of an iterative method (SPPO, INPO, DNO);
``*_logps`` are summed over response tokens, ``*_avg_logps`` divided by the
number of response tokens, ``*_token_logps`` per token with shape ``(B, T)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from bradley.nn.logprobs import SequenceLogProbs

__all__ = ["BATCH_FIELDS", "DERIVATIONS", "PreferenceBatch", "derivation_sources"]

Tensor = torch.Tensor

# field -> what it holds (shape); the docs table and error messages read this.
BATCH_FIELDS: dict[str, str] = {
    # pairwise sequence log-probs (B,)
    "policy_chosen_logps": "policy log-prob of the chosen response, summed over its tokens (B,)",
    "policy_rejected_logps": "policy log-prob of the rejected response, summed over its tokens (B,)",
    "ref_chosen_logps": "reference log-prob of the chosen response, summed (B,)",
    "ref_rejected_logps": "reference log-prob of the rejected response, summed (B,)",
    "policy_chosen_avg_logps": "policy log-prob of the chosen response divided by its length (B,)",
    "policy_rejected_avg_logps": "policy log-prob of the rejected response divided by its length (B,)",
    "ref_chosen_avg_logps": "reference log-prob of the chosen response divided by its length (B,)",
    "ref_rejected_avg_logps": "reference log-prob of the rejected response divided by its length (B,)",
    "chosen_lengths": "number of response tokens of the chosen response (B,)",
    "rejected_lengths": "number of response tokens of the rejected response (B,)",
    # per-token (B, T)
    "policy_chosen_token_logps": "policy per-token log-probs of the chosen response (B, T), zero off the mask",
    "policy_rejected_token_logps": "policy per-token log-probs of the rejected response (B, T)",
    "ref_chosen_token_logps": "reference per-token log-probs of the chosen response (B, T)",
    "ref_rejected_token_logps": "reference per-token log-probs of the rejected response (B, T)",
    "chosen_mask": "True at response tokens of the chosen response (B, T)",
    "rejected_mask": "True at response tokens of the rejected response (B, T)",
    "chosen_log_sum_sq_probs": "policy log(sum_v p_v^2) per chosen token (B, T), for WPO weights",
    "rejected_log_sum_sq_probs": "policy log(sum_v p_v^2) per rejected token (B, T), for WPO weights",
    "chosen_seq_kl": "sequential KL(ref || policy) over the chosen response's tokens (B,), for TDPO",
    "rejected_seq_kl": "sequential KL(ref || policy) over the rejected response's tokens (B,), for TDPO",
    # previous iterate (iterative / self-play methods)
    "prev_chosen_logps": "previous-iterate log-prob of the chosen response, summed (B,)",
    "prev_rejected_logps": "previous-iterate log-prob of the rejected response, summed (B,)",
    # per-pair labels
    "is_tie": "True where the pair was judged a tie (B,)",
    "target": "soft label P(chosen beats rejected) in [0, 1] (B,)",
    "margin": "required reward margin of the pair (B,)",
    "strength": "preference strength > 0, e.g. HelpSteer2's 1..3 (B,)",
    "chosen_win_rate": "estimated P(chosen beats the opponent policy) (B,)",
    "rejected_win_rate": "estimated P(rejected beats the opponent policy) (B,)",
    # reward-model outputs
    "chosen_rewards": "reward-model score of the chosen response (B,)",
    "rejected_rewards": "reward-model score of the rejected response (B,)",
    "predicted_ratings": "predicted attribute ratings (B,) or (B, n_attributes)",
    "target_ratings": "target attribute ratings, same shape as predicted_ratings",
    # k-wise (B, K): K responses per prompt
    "rewards": "reward-model scores of K responses (B, K)",
    "policy_logps": "policy log-probs of K responses, summed (B, K); (N,) for unpaired data",
    "ref_logps": "reference log-probs of K responses, summed (B, K); (N,) for unpaired data",
    "policy_avg_logps": "policy log-probs of K responses, length-normalised (B, K)",
    "response_scores": "given quality scores of K responses, e.g. from a reward model (B, K)",
    "ranks": "rank of each of K responses, 1 = best (B, K); absent = best first",
    "list_mask": "True at the real responses of ragged lists (B, K)",
    # multi-turn (B, J): J assistant turns
    "policy_chosen_turn_logps": "policy log-probs of each assistant turn of the chosen dialogue (B, J)",
    "policy_rejected_turn_logps": "policy log-probs of each assistant turn of the rejected dialogue (B, J)",
    "ref_chosen_turn_logps": "reference log-probs of each chosen turn (B, J)",
    "ref_rejected_turn_logps": "reference log-probs of each rejected turn (B, J)",
    "chosen_turns": "number of assistant turns of the chosen dialogue (B,)",
    "rejected_turns": "number of assistant turns of the rejected dialogue (B,)",
    # unpaired (KTO): N responses, each desirable or not
    "desirable": "True where an unpaired response is desirable (N,)",
    "policy_kl_logps": "policy log-probs of mismatched (prompt, response) pairs for KTO's KL estimate (M,)",
    "ref_kl_logps": "reference log-probs of the same mismatched pairs (M,)",
}


# Field -> the fields PreferenceBatch.get derives it from when it is absent (lengths from masks, sums from
# per-token values, averages from sums and lengths). get() computes them; error messages and the registry's
# check of unread keyword tensors read this table.
DERIVATIONS: dict[str, tuple[str, ...]] = {}
for _side in ("chosen", "rejected"):
    DERIVATIONS[f"{_side}_lengths"] = (f"{_side}_mask",)
    for _who in ("policy", "ref"):
        DERIVATIONS[f"{_who}_{_side}_logps"] = (f"{_who}_{_side}_token_logps", f"{_side}_mask")
        DERIVATIONS[f"{_who}_{_side}_avg_logps"] = (f"{_who}_{_side}_logps", f"{_side}_lengths")


def derivation_sources(name: str) -> set[str]:
    """``name`` and every field :meth:`PreferenceBatch.get` may read to produce it."""
    found = {name}
    for source in DERIVATIONS.get(name, ()):
        found |= derivation_sources(source)
    return found


@dataclass(kw_only=True)
class PreferenceBatch:
    """Inputs of a preference loss; every field is optional (see :data:`BATCH_FIELDS`).

    Build it with keyword tensors, or from :class:`~bradley.nn.logprobs.SequenceLogProbs`
    with :meth:`from_logprobs`. :meth:`get` returns a field, deriving summed,
    length-normalised log-probs and lengths from per-token values when they were
    not given.

    Examples
    --------
    >>> import torch
    >>> batch = PreferenceBatch(
    ...     policy_chosen_token_logps=torch.tensor([[-1.0, -2.0, 0.0]]),
    ...     chosen_mask=torch.tensor([[True, True, False]]))
    >>> batch.get("policy_chosen_logps").item(), batch.get("policy_chosen_avg_logps").item()
    (-3.0, -1.5)
    >>> batch.get("ref_chosen_logps") is None
    True
    """

    policy_chosen_logps: Tensor | None = None
    policy_rejected_logps: Tensor | None = None
    ref_chosen_logps: Tensor | None = None
    ref_rejected_logps: Tensor | None = None
    policy_chosen_avg_logps: Tensor | None = None
    policy_rejected_avg_logps: Tensor | None = None
    ref_chosen_avg_logps: Tensor | None = None
    ref_rejected_avg_logps: Tensor | None = None
    chosen_lengths: Tensor | None = None
    rejected_lengths: Tensor | None = None
    policy_chosen_token_logps: Tensor | None = None
    policy_rejected_token_logps: Tensor | None = None
    ref_chosen_token_logps: Tensor | None = None
    ref_rejected_token_logps: Tensor | None = None
    chosen_mask: Tensor | None = None
    rejected_mask: Tensor | None = None
    chosen_log_sum_sq_probs: Tensor | None = None
    rejected_log_sum_sq_probs: Tensor | None = None
    chosen_seq_kl: Tensor | None = None
    rejected_seq_kl: Tensor | None = None
    prev_chosen_logps: Tensor | None = None
    prev_rejected_logps: Tensor | None = None
    is_tie: Tensor | None = None
    target: Tensor | None = None
    margin: Tensor | None = None
    strength: Tensor | None = None
    chosen_win_rate: Tensor | None = None
    rejected_win_rate: Tensor | None = None
    chosen_rewards: Tensor | None = None
    rejected_rewards: Tensor | None = None
    predicted_ratings: Tensor | None = None
    target_ratings: Tensor | None = None
    rewards: Tensor | None = None
    policy_logps: Tensor | None = None
    ref_logps: Tensor | None = None
    policy_avg_logps: Tensor | None = None
    response_scores: Tensor | None = None
    ranks: Tensor | None = None
    list_mask: Tensor | None = None
    policy_chosen_turn_logps: Tensor | None = None
    policy_rejected_turn_logps: Tensor | None = None
    ref_chosen_turn_logps: Tensor | None = None
    ref_rejected_turn_logps: Tensor | None = None
    chosen_turns: Tensor | None = None
    rejected_turns: Tensor | None = None
    desirable: Tensor | None = None
    policy_kl_logps: Tensor | None = None
    ref_kl_logps: Tensor | None = None

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"PreferenceBatch.{f.name} must be a torch.Tensor or None, got {type(value).__name__}; "
                    f"it holds the {BATCH_FIELDS[f.name]}."
                )

    @classmethod
    def from_tensors(cls, **tensors: Any) -> PreferenceBatch:
        """A batch from keyword tensors; an unknown name is an error listing the valid ones."""
        unknown = sorted(set(tensors) - set(BATCH_FIELDS))
        if unknown:
            raise TypeError(
                f"unknown preference-batch field(s) {', '.join(unknown)}; valid fields: {', '.join(BATCH_FIELDS)}."
            )
        return cls(**tensors)

    @classmethod
    def from_logprobs(
        cls,
        policy_chosen: SequenceLogProbs,
        policy_rejected: SequenceLogProbs,
        ref_chosen: SequenceLogProbs | None = None,
        ref_rejected: SequenceLogProbs | None = None,
        **tensors: Any,
    ) -> PreferenceBatch:
        """A batch from :class:`~bradley.nn.logprobs.SequenceLogProbs` of the policy (and reference).

        Fills summed, length-normalised and per-token log-probs, lengths, masks
        and (when computed) the WPO ``log_sum_sq_probs``; ``tensors`` adds any
        other field (``is_tie``, ``target``, ...).
        """
        fields: dict[str, Any] = {
            "policy_chosen_logps": policy_chosen.sum,
            "policy_rejected_logps": policy_rejected.sum,
            "policy_chosen_avg_logps": policy_chosen.avg,
            "policy_rejected_avg_logps": policy_rejected.avg,
            "policy_chosen_token_logps": policy_chosen.per_token,
            "policy_rejected_token_logps": policy_rejected.per_token,
            "chosen_mask": policy_chosen.mask,
            "rejected_mask": policy_rejected.mask,
            "chosen_lengths": policy_chosen.lengths,
            "rejected_lengths": policy_rejected.lengths,
        }
        for side, out in (("chosen", policy_chosen), ("rejected", policy_rejected)):
            extra = getattr(out, "log_sum_sq_probs", None)
            if extra is not None:
                fields[f"{side}_log_sum_sq_probs"] = extra
        if (ref_chosen is None) != (ref_rejected is None):
            raise ValueError("give both ref_chosen and ref_rejected log-probs, or neither.")
        if ref_chosen is not None and ref_rejected is not None:
            fields.update(
                ref_chosen_logps=ref_chosen.sum,
                ref_rejected_logps=ref_rejected.sum,
                ref_chosen_avg_logps=ref_chosen.avg,
                ref_rejected_avg_logps=ref_rejected.avg,
                ref_chosen_token_logps=ref_chosen.per_token,
                ref_rejected_token_logps=ref_rejected.per_token,
            )
        fields.update(tensors)
        return cls.from_tensors(**fields)

    def replace(self, **tensors: Any) -> PreferenceBatch:
        """A copy with some fields replaced (unknown names are an error)."""
        current = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        current.update(tensors)
        return PreferenceBatch.from_tensors(**current)

    def present(self) -> list[str]:
        """Names of the fields that were given (not derived)."""
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) is not None]

    def get(self, name: str) -> Tensor | None:
        """Field ``name``, derived from per-token values or sums when absent; None if it cannot be had."""
        if name not in BATCH_FIELDS:
            raise KeyError(f"unknown preference-batch field {name!r}.")
        value = getattr(self, name)
        if value is not None:
            return value
        for side in ("chosen", "rejected"):
            if name == f"{side}_lengths":
                mask = getattr(self, f"{side}_mask")
                return None if mask is None else mask.sum(-1)
            for who in ("policy", "ref"):
                if name == f"{who}_{side}_logps":
                    tokens = getattr(self, f"{who}_{side}_token_logps")
                    mask = getattr(self, f"{side}_mask")
                    if tokens is None:
                        return None
                    # select, not multiply: a padded -inf log-prob times a 0 mask is NaN
                    return tokens.sum(-1) if mask is None else torch.where(mask.bool(), tokens, 0.0).sum(-1)
                if name == f"{who}_{side}_avg_logps":
                    total = self.get(f"{who}_{side}_logps")
                    lengths = self.get(f"{side}_lengths")
                    if total is None or lengths is None:
                        return None
                    return total / lengths.clamp(min=1).to(total.dtype)
        return None

    def how_to_get(self, name: str) -> str:
        """What a user should supply to make field ``name`` available (for error messages)."""
        text = f"{name} ({BATCH_FIELDS[name]})"
        sources = DERIVATIONS.get(name)
        if sources:
            text += f", or {' with '.join(sources)}"
            if any(source in DERIVATIONS for source in sources):
                text += " (or per-token log-probs and masks)"
        return text
