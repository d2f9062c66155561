"""Preference oracles: who judges the responses an online trainer samples.

An oracle is any callable ``oracle(prompts, responses_a, responses_b)`` that
returns ``P(a beats b)`` per row, a float tensor of shape ``(N,)`` in [0, 1]
(an array or list is accepted and converted). Prompts are what the trainer
was given (strings or chat messages), responses are decoded strings.
:func:`as_oracle` turns what people have into one:

* :class:`RewardModelOracle` -- a Bradley-Terry reward model (any Hugging Face
  sequence-classification model with one output, plus its tokenizer):
  ``P(a beats b) = sigmoid((r(x, a) - r(x, b)) / temperature)``;
* :class:`ScoreOracle` -- the same for any scoring function
  ``score(prompts, responses) -> (N,)`` (e.g. a trained reward trainer's ``score``);
* :class:`PreferModelOracle` -- anything with a ``prefer(prompts, a, b)`` method
  returning probabilities, e.g. a general preference model (GPM), whose
  preferences may be intransitive;
* :class:`CallableOracle` -- any Python function with the oracle signature
  (checked: shape and range);
* :class:`KeywordOracle` -- a synthetic judge for tests and examples that
  prefers the response with more copies of a word.

:func:`pairwise_preferences` judges every pair of K samples per prompt
(each unordered pair once) into a ``(N, K, K)`` matrix, and
:func:`win_rates` turns it into SPPO's estimate of ``P(y_k beats pi_t)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

__all__ = [
    "CallableOracle",
    "KeywordOracle",
    "PreferModelOracle",
    "PreferenceOracle",
    "RewardModelOracle",
    "ScoreOracle",
    "as_oracle",
    "binomial_se",
    "pairwise_preferences",
    "win_rates",
]


@runtime_checkable
class PreferenceOracle(Protocol):
    """``oracle(prompts, responses_a, responses_b) -> P(a beats b)``, a float tensor of shape ``(N,)``."""

    def __call__(self, prompts: Sequence[Any], responses_a: Sequence[str], responses_b: Sequence[str]) -> Any: ...


def _check_rows(prompts: Sequence[Any], a: Sequence[str], b: Sequence[str]) -> int:
    n = len(prompts)
    if len(a) != n or len(b) != n:
        raise ValueError(
            f"an oracle takes one prompt per pair: got {n} prompts, {len(a)} responses_a, {len(b)} responses_b."
        )
    return n


def _as_probabilities(value: Any, n: int, who: str) -> torch.Tensor:
    """The oracle's answer as a float64 (N,) tensor in [0, 1], or a clear error."""
    try:
        p = torch.as_tensor(value.detach().cpu() if isinstance(value, torch.Tensor) else value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"{who} must return P(a beats b) as a tensor/array of {n} numbers; got {value!r}.") from err
    p = p.reshape(-1) if p.dim() > 1 and p.numel() == n else p
    if p.shape != (n,):
        raise ValueError(f"{who} returned shape {tuple(p.shape)} for {n} pairs; expected ({n},) probabilities.")
    if not bool(torch.isfinite(p).all()) or bool((p < 0).any()) or bool((p > 1).any()):
        bad = p[~(torch.isfinite(p) & (p >= 0) & (p <= 1))][:3].tolist()
        raise ValueError(f"{who} returned values outside [0, 1] (e.g. {bad}); it must return P(a beats b).")
    return p


class CallableOracle:
    """Any Python function ``fn(prompts, responses_a, responses_b) -> P(a beats b)``, with its output checked.

    Examples
    --------
    >>> oracle = CallableOracle(lambda x, a, b: [0.5 + 0.1 * (len(u) > len(v)) for u, v in zip(a, b)])
    >>> oracle(["q", "q"], ["long answer", "no"], ["no", "yes"]).tolist()
    [0.6, 0.5]
    """

    def __init__(self, fn: Callable[[Sequence[Any], Sequence[str], Sequence[str]], Any]) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be callable as fn(prompts, responses_a, responses_b), got {type(fn).__name__}.")
        self.fn = fn

    def __call__(self, prompts: Sequence[Any], responses_a: Sequence[str], responses_b: Sequence[str]) -> torch.Tensor:
        n = _check_rows(prompts, responses_a, responses_b)
        return _as_probabilities(self.fn(list(prompts), list(responses_a), list(responses_b)), n, "the oracle")


class ScoreOracle:
    """Bradley-Terry preferences from any scorer: ``P(a beats b) = sigmoid((s(x, a) - s(x, b)) / temperature)``.

    Parameters
    ----------
    score : callable
        ``score(prompts, responses) -> (N,)`` rewards (tensor, array or list).
    temperature : float
        Divides the reward difference (1 = the reward model's own BT scale).

    Examples
    --------
    >>> oracle = ScoreOracle(lambda x, y: [float(len(r)) for r in y])
    >>> round(oracle(["q"], ["abc"], ["a"]).item(), 6)   # sigmoid(3 - 1)
    0.880797
    """

    def __init__(self, score: Callable[[Sequence[Any], Sequence[str]], Any], *, temperature: float = 1.0) -> None:
        if not callable(score):
            raise TypeError(f"score must be callable as score(prompts, responses), got {type(score).__name__}.")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}.")
        self.score_fn = score
        self.temperature = float(temperature)

    def score(self, prompts: Sequence[Any], responses: Sequence[str]) -> torch.Tensor:
        """Rewards of ``(prompt, response)`` rows, a float64 ``(N,)`` tensor."""
        n = len(prompts)
        if len(responses) != n:
            raise ValueError(f"score takes one prompt per response: got {n} prompts, {len(responses)} responses.")
        value = self.score_fn(list(prompts), list(responses))
        r = torch.as_tensor(value.detach().cpu() if isinstance(value, torch.Tensor) else value, dtype=torch.float64)
        r = r.reshape(-1) if r.numel() == n else r
        if r.shape != (n,) or not bool(torch.isfinite(r).all()):
            raise ValueError(
                f"the scorer returned shape {tuple(r.shape)} for {n} responses; expected ({n},) finite rewards."
            )
        return r

    def __call__(self, prompts: Sequence[Any], responses_a: Sequence[str], responses_b: Sequence[str]) -> torch.Tensor:
        n = _check_rows(prompts, responses_a, responses_b)
        if n == 0:
            return torch.zeros(0, dtype=torch.float64)
        # One scoring call for both sides; the difference is taken in float64 before the sigmoid.
        r = self.score(list(prompts) + list(prompts), list(responses_a) + list(responses_b))
        return torch.sigmoid((r[:n] - r[n:]) / self.temperature)


class RewardModelOracle(ScoreOracle):
    """A Bradley-Terry reward model as an oracle: ``P(a beats b) = sigmoid((r(x, a) - r(x, b)) / temperature)``.

    Each ``(prompt, response)`` is rendered as it was for training: chat
    messages with the tokenizer's chat template (the response as an assistant
    turn), strings as ``prompt + response`` (put any separating space in the
    text, as TRL does), tokenised and scored exactly as
    :meth:`bradley.train.reward.RewardModel.score` does (EOS appended, as
    :class:`~bradley.train.reward.RewardTrainer` trains). The reward is the
    model's single logit (read at the last non-padding token, the EOS).

    Parameters
    ----------
    model : transformers sequence-classification model with ``num_labels=1``
    tokenizer : transformers tokenizer
    temperature : float
    batch_size : int
        Rows scored per forward pass.
    max_length : int, optional
        Truncation of prompt + response, as :class:`~bradley.train.reward.RewardModel` does it.

    Examples
    --------
    >>> from bradley.train.toy import toy_sequence_classifier, toy_tokenizer
    >>> tok = toy_tokenizer()
    >>> rm = toy_sequence_classifier(tok, seed=0)
    >>> oracle = RewardModelOracle(rm, tok)
    >>> p = oracle(["tell me about cats"], [" cats are good ."], [" cats ."])
    >>> r = oracle.score(["tell me about cats"] * 2, [" cats are good .", " cats ."])
    >>> bool(torch.allclose(p, torch.sigmoid(r[:1] - r[1:])))
    True
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        temperature: float = 1.0,
        batch_size: int = 32,
        max_length: int | None = None,
    ) -> None:
        if tokenizer is None or not callable(tokenizer):
            raise TypeError("RewardModelOracle needs the reward model's tokenizer (a transformers tokenizer).")
        num_labels = getattr(getattr(model, "config", None), "num_labels", None)
        if num_labels != 1:
            raise ValueError(
                f"RewardModelOracle needs a sequence-classification model with one output (a scalar reward); "
                f"got num_labels={num_labels!r}. For a general preference model use PreferModelOracle."
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
        super().__init__(self._rewards, temperature=temperature)
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_length = max_length
        from bradley.train.reward import RewardModel  # lazily: reward.py pulls in the data pipeline

        # Score exactly as RewardTrainer trained and RewardModel.score reads (same tokenisation, EOS appended).
        self._scorer = RewardModel(
            model, tokenizer, "sequence-classification", max_length=max_length, batch_size=batch_size
        )

    @torch.no_grad()
    def _rewards(self, prompts: Sequence[Any], responses: Sequence[str]) -> torch.Tensor:
        if not prompts:
            return torch.zeros(0, dtype=torch.float64)
        # Chat prompts take the response as an assistant turn, as the training rows had it.
        answers = [
            r if isinstance(p, str) else [{"role": "assistant", "content": r}]
            for p, r in zip(prompts, responses, strict=True)
        ]
        values = self._scorer.score(list(prompts), answers)
        return torch.as_tensor(np.asarray(values, dtype=np.float64).reshape(-1))


class PreferModelOracle:
    """Anything with ``prefer(prompts, responses_a, responses_b) -> P(a beats b)`` (e.g. a GPM) as an oracle.

    General preference models can be intransitive (rock-paper-scissors), which
    is what self-play toward the Nash policy is for. With ``batched=False``
    ``prefer`` is called once per row as ``prefer(prompt, a, b)`` and must
    return a number.

    Examples
    --------
    >>> class Cycle:
    ...     beats = {("paper", "rock"), ("rock", "scissors"), ("scissors", "paper")}
    ...     def prefer(self, prompt, a, b):
    ...         return 0.5 if a == b else float((a, b) in self.beats)
    >>> oracle = PreferModelOracle(Cycle(), batched=False)
    >>> oracle(["x"] * 3, ["paper", "rock", "scissors"], ["rock", "scissors", "paper"]).tolist()
    [1.0, 1.0, 1.0]
    """

    def __init__(self, model: Any, *, batched: bool = True) -> None:
        if not callable(getattr(model, "prefer", None)):
            raise TypeError(f"{type(model).__name__} has no prefer(prompts, a, b) method.")
        self.model = model
        self.batched = batched

    def score(self, prompts: Sequence[Any], responses: Sequence[str]) -> torch.Tensor:
        """The model's scalar reward ``model.score(prompts, responses)`` (e.g. a trained BT reward model), ``(N,)``.

        A GPM scores embeddings, not rewards, and is refused.
        """
        if not callable(getattr(self.model, "score", None)):
            raise TypeError(f"{type(self.model).__name__} has prefer but no score(prompts, responses) method.")
        value = self.model.score(list(prompts), list(responses))
        r = torch.as_tensor(value.detach().cpu() if isinstance(value, torch.Tensor) else value, dtype=torch.float64)
        if r.shape != (len(prompts),):
            raise ValueError(
                f"{type(self.model).__name__}.score returned shape {tuple(r.shape)} for {len(prompts)} responses; "
                "a scalar reward per response is needed (a general preference model has none)."
            )
        return r

    def __call__(self, prompts: Sequence[Any], responses_a: Sequence[str], responses_b: Sequence[str]) -> torch.Tensor:
        n = _check_rows(prompts, responses_a, responses_b)
        if self.batched:
            value = self.model.prefer(list(prompts), list(responses_a), list(responses_b))
        else:
            value = [
                float(self.model.prefer(x, a, b)) for x, a, b in zip(prompts, responses_a, responses_b, strict=True)
            ]
        return _as_probabilities(value, n, f"{type(self.model).__name__}.prefer")


class KeywordOracle:
    """A synthetic judge: ``P(a beats b) = sigmoid(scale * (count(a) - count(b)))``, counting a word.

    For tests and examples (``word="good"`` is the toy datasets' marker).
    ``scale=None`` gives hard judgments: 1, 0, or 0.5 for equal counts.

    Examples
    --------
    >>> oracle = KeywordOracle("good", scale=None)
    >>> oracle(["q"] * 3, ["good good", "the cat", "good"], ["good", "good", "a good"]).tolist()
    [1.0, 0.0, 0.5]
    """

    def __init__(self, word: str = "good", *, scale: float | None = 1.0) -> None:
        if not isinstance(word, str) or not word.strip():
            raise ValueError(f"word must be a non-empty string, got {word!r}.")
        if scale is not None and not scale > 0:
            raise ValueError(f"scale must be > 0 or None (hard judgments), got {scale!r}.")
        self.word = word
        self.scale = scale

    def count(self, responses: Sequence[str]) -> torch.Tensor:
        """Copies of ``word`` among each response's whitespace-separated pieces."""
        return torch.tensor([float(r.split().count(self.word)) for r in responses], dtype=torch.float64)

    def score(self, prompts: Sequence[Any], responses: Sequence[str]) -> torch.Tensor:
        """The BT reward behind the judgments, ``scale * count`` (needs a finite ``scale``)."""
        if self.scale is None:
            raise ValueError("KeywordOracle(scale=None) judges hard 0/1 outcomes and has no finite BT reward.")
        return self.scale * self.count(responses)

    def __call__(self, prompts: Sequence[Any], responses_a: Sequence[str], responses_b: Sequence[str]) -> torch.Tensor:
        _check_rows(prompts, responses_a, responses_b)
        diff = self.count(responses_a) - self.count(responses_b)
        if self.scale is None:
            return 0.5 * (1.0 + torch.sign(diff))
        return torch.sigmoid(self.scale * diff)


def as_oracle(judge: Any, tokenizer: Any = None, **kwargs: Any) -> Any:
    """What people have, as a preference oracle.

    * an object with ``prefer`` -> :class:`PreferModelOracle`;
    * a model whose ``config.num_labels == 1`` (a BT reward model) with its
      ``tokenizer`` -> :class:`RewardModelOracle`;
    * any other callable -> :class:`CallableOracle` (its output is checked);
    * the oracle classes of this module are returned as they are.

    ``kwargs`` go to the adapter (``temperature``, ``batch_size``, ...).

    Examples
    --------
    >>> type(as_oracle(lambda x, a, b: [0.5] * len(x))).__name__
    'CallableOracle'
    >>> type(as_oracle(KeywordOracle())).__name__
    'KeywordOracle'
    """
    if isinstance(judge, (CallableOracle, ScoreOracle, PreferModelOracle, KeywordOracle)):
        if kwargs:
            raise ValueError(f"judge is already an oracle ({type(judge).__name__}); options {sorted(kwargs)} unused.")
        return judge
    if callable(getattr(judge, "prefer", None)):
        return PreferModelOracle(judge, **kwargs)
    if getattr(getattr(judge, "config", None), "num_labels", None) is not None and hasattr(judge, "parameters"):
        if tokenizer is None:
            raise ValueError(
                f"{type(judge).__name__} looks like a reward model; pass its tokenizer (reward_tokenizer=...) "
                "so responses can be scored."
            )
        return RewardModelOracle(judge, tokenizer, **kwargs)
    if callable(judge):
        if kwargs:
            raise ValueError(f"options {sorted(kwargs)} apply to reward models, not to a plain callable oracle.")
        return CallableOracle(judge)
    raise TypeError(
        f"cannot use a {type(judge).__name__} as a preference oracle: give a callable "
        "oracle(prompts, responses_a, responses_b) -> P(a beats b), a reward model (with its tokenizer), "
        "or an object with a prefer(prompts, a, b) method."
    )


def pairwise_preferences(oracle: Any, prompts: Sequence[Any], responses: Sequence[Sequence[str]]) -> torch.Tensor:
    """``P[n, i, j] = P(response i beats response j | prompt n)`` for K responses per prompt, ``(N, K, K)``.

    Each unordered pair is judged once, in one oracle call over all prompts;
    ``P[n, j, i] = 1 - P[n, i, j]`` and the diagonal is 1/2.

    Examples
    --------
    >>> P = pairwise_preferences(KeywordOracle(scale=None), ["q"], [["good", "bad", "good good"]])
    >>> P[0].tolist()
    [[0.5, 1.0, 0.0], [0.0, 0.5, 0.0], [1.0, 1.0, 0.5]]
    """
    n = len(prompts)
    if len(responses) != n:
        raise ValueError(f"give K responses per prompt: {n} prompts but {len(responses)} response lists.")
    k = len(responses[0]) if n else 0
    if any(len(r) != k for r in responses):
        counts = sorted({len(r) for r in responses})
        raise ValueError(f"every prompt needs the same number K of responses; got {counts}.")
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    out = torch.full((n, k, k), 0.5, dtype=torch.float64)
    if not pairs or n == 0:
        return out
    xs = [prompts[b] for b in range(n) for _ in pairs]
    a = [responses[b][i] for b in range(n) for i, _ in pairs]
    c = [responses[b][j] for b in range(n) for _, j in pairs]
    p = _as_probabilities(oracle(xs, a, c), len(xs), "the oracle").reshape(n, len(pairs))
    ii = torch.tensor([i for i, _ in pairs])
    jj = torch.tensor([j for _, j in pairs])
    out[:, ii, jj] = p
    out[:, jj, ii] = 1.0 - p
    return out


def win_rates(preferences: torch.Tensor, *, include_self: bool = False) -> torch.Tensor:
    """Estimated ``P(y_k beats pi_t)`` of each of K samples: its mean preference over the others, ``(N, K)``.

    The K samples are draws from ``pi_t``, so the mean over the K - 1 others
    is unbiased for ``P(y_k beats pi_t | y_k)``. ``include_self=True`` is
    SPPO's ``compute_prob.py``: the mean over all K with the sample against
    itself counted as 1/2, i.e. the unbiased value shrunk toward 1/2 by
    ``(K - 1) / K``.

    Examples
    --------
    >>> P = torch.tensor([[[0.5, 1.0, 0.0], [0.0, 0.5, 0.0], [1.0, 1.0, 0.5]]], dtype=torch.float64)
    >>> win_rates(P).tolist()
    [[0.5, 0.0, 1.0]]
    >>> win_rates(P, include_self=True).tolist()
    [[0.5, 0.16666666666666666, 0.8333333333333334]]
    """
    if preferences.dim() != 3 or preferences.shape[1] != preferences.shape[2]:
        raise ValueError(f"preferences must be (N, K, K), got shape {tuple(preferences.shape)}.")
    k = preferences.shape[-1]
    if include_self:
        return preferences.mean(-1)
    if k < 2:
        raise ValueError("win rates against the other samples need K >= 2 samples per prompt.")
    # The diagonal holds 1/2 by construction; remove it rather than trusting it.
    return (preferences.sum(-1) - preferences.diagonal(dim1=-2, dim2=-1)) / (k - 1)


def binomial_se(p: float, n: int) -> float:
    """Binomial standard error ``sqrt(p (1 - p) / n)`` of a win rate from ``n`` judged comparisons.

    Exact for hard (0/1) judgments; for soft ones (a mean of probabilities) it
    is an upper bound, since each probability varies less than a coin with its mean.

    Examples
    --------
    >>> round(binomial_se(0.5, 100), 6)
    0.05
    """
    if n <= 0:
        return float("nan")
    return math.sqrt(max(p * (1.0 - p), 0.0) / n)
