"""The loss registry: pick a loss by name, configure it once, call it on a batch.

A loss is a plain function (a numerical kernel) whose positional-or-keyword
parameters are :class:`~bradley.nn.batch.PreferenceBatch` field names (its
inputs; a default of ``None`` makes one optional) and whose keyword-only
parameters are its hyperparameters (no default = required). :func:`register`
adds it under one or more names; :func:`get` returns a configured
:class:`PreferenceLoss`, which reads its inputs from a batch::

    loss = get("ipo", beta=0.1)
    out = loss(batch)                       # or loss(policy_chosen_logps=..., ...)
    out.loss.mean().backward()

Hyperparameter names mean one thing across the registry (:data:`HYPERPARAMETERS`):
the temperature is always ``beta``, the assumed label-flip rate always
``label_smoothing``. Half-precision inputs are computed in float32.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from bradley.nn.batch import BATCH_FIELDS, PreferenceBatch, derivation_sources

__all__ = [
    "HYPERPARAMETERS",
    "CombinedLoss",
    "LossOutput",
    "LossSpec",
    "PreferenceLoss",
    "available",
    "get",
    "loss_table",
    "register",
    "spec",
]

Tensor = torch.Tensor

# Every hyperparameter name in the registry, with its one meaning. Registering a
# loss with a name not listed here is an error, so a name cannot drift.
HYPERPARAMETERS: dict[str, str] = {
    "beta": "temperature > 0: scale of the implicit reward beta * log(pi / pi_ref), the weight of the KL regulariser",
    "label_smoothing": "assumed rate at which preference labels are flipped, in [0, 0.5)",
    "gamma_beta_ratio": "SimPO target margin divided by beta (authors' parametrisation)",
    "simpo_gamma": (
        "SimPO target reward margin gamma, as TRL's CPOTrainer (gamma / beta in log-prob units)"
    ),
    "cpo_alpha": "weight of the NLL (SFT) term on the chosen response in CPO",
    "sft_weight": "weight of the NLL (SFT) term on the chosen / best response",
    "f_divergence_type": "divergence of f-DPO: reverse_kl (= DPO), forward_kl, js_divergence, alpha_divergence",
    "f_alpha_divergence_coef": (
        "alpha of the alpha-divergence in TRL's convention (the f-DPO paper's alpha is 1 - this)"
    ),
    "ld_alpha": "LD-DPO weight of the response tokens beyond the shorter response's length (1 = plain DPO)",
    "use_weighting": "WPO: weight each pair by the policy's length-normalised probability of both responses",
    "discopop_tau": "temperature of DiscoPOP's mixing between the logistic and exponential losses",
    "tie_threshold": "Rao-Kupper tie threshold alpha > 0 of TOBT / TODO (larger = more ties expected)",
    "alpha": "TDPO: weight of the sequential-KL term (TDPO2)",
    "version": "TDPO variant: 1 or 2",
    "lam": "ASFT: weight of the alignment (odds-ratio) term",
    "gamma": "DMPO: turn discount factor in (0, 1]",
    "tau": "INPO: strength of the KL regulariser toward the reference (the paper's tau; default beta / 3)",
    "variant": "which SPPO target: 'sppo' (two win rates), 'single' (one pairwise preference)",
    "center_rewards_coefficient": "weight of the (r_chosen + r_rejected)^2 penalty that centres reward-model outputs",
    "desirable_weight": "KTO: weight of the losses of desirable responses",
    "undesirable_weight": "KTO: weight of the losses of undesirable responses",
}

_RENAMED = {
    "tau": "beta (the temperature is called beta everywhere)",
    "eta": "beta (the temperature is called beta everywhere; for SPPO beta = 1 / eta)",
    "epsilon": "label_smoothing (the flip rate is called label_smoothing everywhere)",
    "center_coefficient": "center_rewards_coefficient",
    "divergence": "f_divergence_type",
}

# Hyperparameters a user moving from another library may reach for, per loss.
_HINTS: dict[tuple[str, str], str] = {
    ("sigmoid", "label_smoothing"): (
        "TRL's sigmoid ignores label_smoothing; use 'cdpo' (conservative DPO) or 'robust' (unbiased under flips)"
    ),
}


@dataclass
class LossOutput:
    """What every loss returns.

    Attributes
    ----------
    loss : torch.Tensor
        Per-example losses, shape ``(B,)`` (``(N,)`` for unpaired data); take
        ``.mean()`` for TRL's reduction, or weight them yourself.
    chosen_rewards, rejected_rewards : torch.Tensor or None
        Detached implicit rewards, per example, on one scale everywhere:
        ``beta * log(pi / pi_ref)`` for losses with a reference (the previous
        iterate for iterative methods), ``beta * log pi`` (summed or
        length-normalised as the loss uses it) for reference-free ones, and the
        scores themselves for reward models.
    margins : torch.Tensor or None
        ``chosen_rewards - rejected_rewards`` (detached).
    accuracy : torch.Tensor or None
        1.0 where the chosen response has the higher reward, else 0.0. For
        the tie-aware ``tobt`` / ``todo``: 1.0 where the observed outcome (win
        or tie) is strictly the model's most probable one (a tie can be that
        only when ``tie_threshold > log 2``; they log ``tie_probability`` in
        ``extras`` too).
    extras : dict
        Other detached per-example quantities a loss exposes (e.g.
        ``tie_probability``, per-component losses of a combination).
    """

    loss: Tensor
    chosen_rewards: Tensor | None = None
    rejected_rewards: Tensor | None = None
    margins: Tensor | None = None
    accuracy: Tensor | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)


def output(loss: Tensor, chosen: Tensor | None, rejected: Tensor | None, **extras: Tensor) -> LossOutput:
    """A :class:`LossOutput` with margins and accuracy filled in and every logging field detached."""
    margins = accuracy = None
    if chosen is not None and rejected is not None:
        chosen, rejected = chosen.detach(), rejected.detach()
        margins = chosen - rejected
        accuracy = (margins > 0).to(loss.dtype)
    return LossOutput(loss, chosen, rejected, margins, accuracy, {k: v.detach() for k, v in extras.items()})


def check_shapes(
    loss: str,
    same: dict[str, Tensor | None],
    broadcast: dict[str, Tensor | float | None] | None = None,
) -> torch.Size:
    """Refuse batch tensors whose shapes differ, before arithmetic broadcasts them.

    Every tensor in ``same`` (``None`` entries are skipped) must have the shape
    of the first; a ``(B, 1)`` tensor against a ``(B,)`` one would otherwise
    broadcast to a ``(B, B)`` loss without a word. Entries of ``broadcast`` may
    be numbers or tensors that broadcast to that shape without enlarging it.
    Returns the batch shape.
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


def check_flip_rate(value: float, name: str = "label_smoothing") -> None:
    """``value`` must be a flip rate in [0, 0.5)."""
    if not 0.0 <= value < 0.5:
        raise ValueError(f"{name} must lie in [0, 0.5), got {value}.")


def soft_logistic(z: Tensor, target: Tensor | float) -> Tensor:
    """Cross-entropy ``-[p logsig(z) + (1 - p) logsig(-z)]`` of ``sigmoid(z)`` against a target probability ``p``."""
    return -(target * F.logsigmoid(z) + (1.0 - target) * F.logsigmoid(-z))


def _check_hyperparameters(loss: str, hyperparameters: dict[str, Any]) -> None:
    """Numbers where numbers belong: per-example values are batch inputs, and the temperature is positive."""
    for key, value in hyperparameters.items():
        if isinstance(value, Tensor):
            raise TypeError(
                f"loss {loss!r}: hyperparameter {key} must be a number, got a tensor; per-example values are batch "
                "inputs (e.g. a soft label P(chosen beats rejected) per pair is the `target` input)."
            )
    beta = hyperparameters.get("beta")
    if beta is not None and not beta > 0:
        raise ValueError(f"loss {loss!r}: beta must be positive, got {beta}.")


def _promote_half(value: Any) -> Any:
    # bf16 / fp16 lose the loss (bf16 logcumsumexp halves a Plackett-Luce loss): compute in float32.
    if isinstance(value, Tensor) and value.dtype in (torch.float16, torch.bfloat16):
        return value.float()
    return value


@dataclass(frozen=True)
class LossSpec:
    """A registered loss: its kernel, inputs, hyperparameters and documentation."""

    name: str
    fn: Callable[..., LossOutput]
    inputs: tuple[str, ...]
    optional_inputs: tuple[str, ...]
    defaults: dict[str, Any]  # hyperparameter -> default (inspect.Parameter.empty = required)
    fixed: dict[str, Any]
    trl: str | None
    source: str
    symbols: dict[str, str]
    kind: str
    aliases: tuple[str, ...] = ()

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """User-settable hyperparameters and their defaults (``inspect.Parameter.empty`` = required)."""
        return {k: v for k, v in self.defaults.items() if k not in self.fixed}

    def describe_hyperparameters(self) -> str:
        parts = []
        for k, v in self.hyperparameters.items():
            parts.append(f"{k} (required)" if v is inspect.Parameter.empty else f"{k}={v!r}")
        return ", ".join(parts) if parts else "none"


_REGISTRY: dict[str, LossSpec] = {}


def register(
    *names: str,
    trl: str | None = None,
    source: str = "",
    symbols: dict[str, str] | None = None,
    kind: str = "policy",
    fixed: dict[str, Any] | None = None,
) -> Callable[[Callable[..., LossOutput]], Callable[..., LossOutput]]:
    """Decorator adding a loss kernel to the registry under ``names``.

    Parameters
    ----------
    names : str
        First is the canonical name, the rest aliases (same meaning).
    trl : str, optional
        TRL's ``loss_type`` with the same meaning, if any.
    source : str
        Paper (and code) the formula follows.
    symbols : dict, optional
        Hyperparameter -> the paper's symbol for it (for the docs table).
    kind : {"policy", "reward"}
        Direct preference loss on log-probs, or reward-model loss on scores.
    fixed : dict, optional
        Keyword-only hyperparameters this name fixes (users cannot set them).

    The returned function is the kernel with half-precision tensor arguments
    promoted to float32.
    """
    if not names:
        raise ValueError("register needs at least one name.")
    if kind not in ("policy", "reward"):
        raise ValueError(f"kind must be 'policy' or 'reward', got {kind!r}.")

    def wrap(fn: Callable[..., LossOutput]) -> Callable[..., LossOutput]:
        signature = inspect.signature(fn)
        inputs: list[str] = []
        optional: list[str] = []
        defaults: dict[str, Any] = {}
        for param in signature.parameters.values():
            if param.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD:
                if param.name not in BATCH_FIELDS:
                    raise ValueError(
                        f"loss {names[0]!r}: input {param.name!r} is not a PreferenceBatch field; "
                        "inputs must be named as batch fields (bradley.nn.batch.BATCH_FIELDS)."
                    )
                (optional if param.default is None else inputs).append(param.name)
            elif param.kind is inspect.Parameter.KEYWORD_ONLY:
                if param.name not in HYPERPARAMETERS:
                    raise ValueError(
                        f"loss {names[0]!r}: hyperparameter {param.name!r} is not in "
                        "bradley.nn.registry.HYPERPARAMETERS; reuse a name with the same meaning or add it there."
                    )
                defaults[param.name] = param.default
            else:
                raise ValueError(f"loss {names[0]!r}: parameter {param.name!r} must be an input or keyword-only.")
        for key in fixed or {}:
            if key not in defaults:
                raise ValueError(f"loss {names[0]!r}: fixed hyperparameter {key!r} is not a keyword of the kernel.")

        @functools.wraps(fn)
        def promoted(*args: Any, **kwargs: Any) -> LossOutput:
            _check_hyperparameters(names[0], {k: v for k, v in kwargs.items() if k in defaults})
            return fn(*(_promote_half(a) for a in args), **{k: _promote_half(v) for k, v in kwargs.items()})

        spec_ = LossSpec(
            name=names[0],
            fn=promoted,
            inputs=tuple(inputs),
            optional_inputs=tuple(optional),
            defaults=defaults,
            fixed=dict(fixed or {}),
            trl=trl,
            source=source,
            symbols=dict(symbols or {}),
            kind=kind,
            aliases=tuple(names[1:]),
        )
        for name in names:
            if name in _REGISTRY:
                raise ValueError(f"loss name {name!r} is already registered.")
            _REGISTRY[name] = spec_
        return promoted

    return wrap


def _ensure_loaded() -> None:
    # The kernels register themselves when their modules are imported.
    import bradley.nn.dpo
    import bradley.nn.losses  # noqa: F401


def available() -> list[str]:
    """Every registered name (canonical names and aliases), sorted."""
    _ensure_loaded()
    return sorted(_REGISTRY)


def spec(name: str) -> LossSpec:
    """The :class:`LossSpec` registered under ``name``."""
    _ensure_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown loss {name!r}; available: {', '.join(sorted(_REGISTRY))}.") from None


class PreferenceLoss:
    """A registered loss with its hyperparameters fixed; call it on a batch.

    Made by :func:`get`. ``loss(batch)`` or ``loss(**tensors)`` (field names of
    :class:`~bradley.nn.batch.PreferenceBatch`) returns a :class:`LossOutput`.
    """

    def __init__(self, spec_: LossSpec, hyperparameters: dict[str, Any]) -> None:
        self.spec = spec_
        self.name = spec_.name
        self.hyperparameters = dict(hyperparameters)

    @property
    def inputs(self) -> tuple[str, ...]:
        """Batch fields this loss needs."""
        return self.spec.inputs

    @property
    def optional_inputs(self) -> tuple[str, ...]:
        """Batch fields this loss uses when present."""
        return self.spec.optional_inputs

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters.items() if k not in self.spec.fixed)
        return f"PreferenceLoss({self.name!r}{', ' + args if args else ''})"

    @property
    def reads(self) -> set[str]:
        """Every batch field this loss may read, directly or to derive an input."""
        return set().union(*(derivation_sources(n) for n in self.spec.inputs + self.spec.optional_inputs))

    def __call__(self, batch: PreferenceBatch | None = None, /, **tensors: Any) -> LossOutput:
        _check_unused(self.name, tensors, self.reads)
        batch = _as_batch(self.name, batch, tensors)
        missing = [name for name in self.spec.inputs if batch.get(name) is None]
        if missing:
            raise ValueError(
                f"loss {self.name!r} needs {'; '.join(batch.how_to_get(m) for m in missing)}, which the batch lacks."
            )
        arguments = {name: batch.get(name) for name in self.spec.inputs + self.spec.optional_inputs}
        return self.spec.fn(**arguments, **self.hyperparameters)


def _check_unused(name: str, tensors: dict[str, Any], reads: set[str]) -> None:
    # A keyword tensor the loss never reads would be dropped without a word (e.g. soft labels given to `hinge`).
    hyper = sorted(k for k in tensors if k in HYPERPARAMETERS)
    if hyper:
        raise TypeError(
            f"{', '.join(hyper)} {'is a hyperparameter' if len(hyper) == 1 else 'are hyperparameters'}: give "
            f"{'it' if len(hyper) == 1 else 'them'} to get({name!r}, {hyper[0]}=...), not to the loss call."
        )
    unused = sorted(k for k in tensors if k in BATCH_FIELDS and k not in reads)
    if unused:
        raise ValueError(
            f"loss {name!r} does not use {', '.join(unused)}; it reads {', '.join(sorted(reads))}. "
            "Drop them, or pass a PreferenceBatch, which may carry fields a loss ignores."
        )


def _as_batch(name: str, batch: Any, tensors: dict[str, Any]) -> PreferenceBatch:
    if batch is not None and not isinstance(batch, PreferenceBatch):
        raise TypeError(
            f"loss {name!r} takes a PreferenceBatch or keyword tensors named as its fields "
            f"(policy_chosen_logps=..., ...), not a positional {type(batch).__name__}; positional tensors would bind "
            "to the wrong inputs."
        )
    if batch is None:
        return PreferenceBatch.from_tensors(**tensors)
    return batch.replace(**tensors) if tensors else batch


class CombinedLoss:
    """A weighted sum of registered losses (TRL's ``loss_type=[...]`` with ``loss_weights``).

    Each per-example loss is ``sum_k w_k loss_k``; logging fields come from the
    first component that has them, and ``extras`` holds each component's
    per-example loss as ``"<name>_loss"``.
    """

    def __init__(self, components: Sequence[PreferenceLoss], weights: Sequence[float]) -> None:
        self.components = list(components)
        self.weights = [float(w) for w in weights]
        self.name = "+".join(c.name for c in self.components)

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(n for c in self.components for n in c.inputs))

    @property
    def optional_inputs(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(n for c in self.components for n in c.optional_inputs))

    def __repr__(self) -> str:
        return f"CombinedLoss({self.components!r}, weights={self.weights!r})"

    def __call__(self, batch: PreferenceBatch | None = None, /, **tensors: Any) -> LossOutput:
        _check_unused(self.name, tensors, set().union(*(c.reads for c in self.components)))
        batch = _as_batch(self.name, batch, tensors)
        outputs = [c(batch) for c in self.components]
        total = outputs[0].loss * self.weights[0]
        for w, out in zip(self.weights[1:], outputs[1:], strict=True):
            total = total + w * out.loss
        first = next((o for o in outputs if o.chosen_rewards is not None), outputs[0])
        extras = dict(first.extras)
        for c, out in zip(self.components, outputs, strict=True):
            extras[f"{c.name}_loss"] = out.loss.detach()
        return LossOutput(total, first.chosen_rewards, first.rejected_rewards, first.margins, first.accuracy, extras)


def _configure(spec_: LossSpec, hyperparameters: dict[str, Any], strict: bool = True) -> PreferenceLoss:
    settable = spec_.hyperparameters
    if strict:
        unknown = [k for k in hyperparameters if k not in settable]
        if unknown:
            hints = [f" ({k} is now {_RENAMED[k]})" for k in unknown if k in _RENAMED]
            fixed = [f" ({k} is fixed by the name {spec_.name!r})" for k in unknown if k in spec_.fixed]
            hints += [f" ({_HINTS[spec_.name, k]})" for k in unknown if (spec_.name, k) in _HINTS]
            raise ValueError(
                f"loss {spec_.name!r} has no hyperparameter {', '.join(map(repr, unknown))}"
                f"{''.join(hints + fixed)}; valid: {spec_.describe_hyperparameters()}."
            )
    chosen = {k: v for k, v in hyperparameters.items() if k in settable}
    missing = [k for k, v in settable.items() if v is inspect.Parameter.empty and k not in chosen]
    if missing:
        raise ValueError(
            f"loss {spec_.name!r} needs hyperparameter(s) {', '.join(missing)}; "
            f"valid: {spec_.describe_hyperparameters()}."
        )
    _check_hyperparameters(spec_.name, chosen)
    resolved = {k: chosen.get(k, v) for k, v in settable.items()}
    resolved.update(spec_.fixed)
    return PreferenceLoss(spec_, resolved)


def get(
    name: str | Sequence[str], *, loss_weights: Sequence[float] | None = None, **hyperparameters: Any
) -> PreferenceLoss | CombinedLoss:
    """A configured loss by name, as TRL users pick ``loss_type``.

    Parameters
    ----------
    name : str or list of str
        A registered name (:func:`available`), or several for a weighted sum
        (e.g. ``["sigmoid", "sft"]`` = RPO).
    loss_weights : list of float, optional
        Weights of a combination (default all 1), as TRL's ``loss_weights``.
    **hyperparameters
        Keyword-only hyperparameters; unknown or missing ones are an error
        that lists the valid ones. For a combination each hyperparameter goes
        to every component that has it, and must belong to at least one.

    Examples
    --------
    >>> import torch
    >>> from bradley.nn import get
    >>> loss = get("sigmoid", beta=0.1)
    >>> out = loss(policy_chosen_logps=torch.tensor([-10.0]), policy_rejected_logps=torch.tensor([-20.0]),
    ...            ref_chosen_logps=torch.tensor([-15.0]), ref_rejected_logps=torch.tensor([-15.0]))
    >>> round(out.loss.item(), 6), out.accuracy.item()
    (0.313262, 1.0)
    """
    if isinstance(name, str):
        if loss_weights is not None:
            raise ValueError("loss_weights applies to a list of losses; give name as a list.")
        return _configure(spec(name), hyperparameters)
    names = list(name)
    if not names:
        raise ValueError("give at least one loss name.")
    weights = [1.0] * len(names) if loss_weights is None else list(loss_weights)
    if len(weights) != len(names):
        raise ValueError(f"loss_weights has {len(weights)} entries for {len(names)} losses {names}.")
    specs = [spec(n) for n in names]
    unused = [k for k in hyperparameters if not any(k in s.hyperparameters for s in specs)]
    if unused:
        valid = "; ".join(f"{s.name}: {s.describe_hyperparameters()}" for s in specs)
        raise ValueError(f"no loss in {names} has hyperparameter {', '.join(map(repr, unused))}; valid: {valid}.")
    return CombinedLoss([_configure(s, hyperparameters, strict=False) for s in specs], weights)


def loss_table() -> Any:
    """One row per registered loss: name, aliases, TRL name, kind, inputs, hyperparameters, source (a DataFrame)."""
    import pandas as pd

    _ensure_loaded()
    rows = []
    for s in {id(s): s for s in _REGISTRY.values()}.values():
        rows.append(
            {
                "name": s.name,
                "aliases": ", ".join(s.aliases),
                "trl": s.trl or "",
                "kind": s.kind,
                "inputs": ", ".join(s.inputs),
                "optional_inputs": ", ".join(s.optional_inputs),
                "hyperparameters": s.describe_hyperparameters(),
                "symbols": ", ".join(f"{k} = {v}" for k, v in s.symbols.items()),
                "source": s.source,
            }
        )
    return pd.DataFrame(rows).sort_values(["kind", "name"]).reset_index(drop=True)
