"""Preference losses for PyTorch (install with the ``torch`` extra).

This subpackage imports torch; nothing in the numpy core imports it.

Conventions, used by every function here:

* Inputs are tensors with a leading batch dimension ``B``. Sequence
  log-probabilities are **summed** over response tokens unless the argument
  name says ``avg`` (length-normalised); see :mod:`bradley.nn.logprobs` for
  turning model logits and labels into both.
* Every loss returns a :class:`~bradley.nn.losses.LossOutput` whose ``loss`` is
  per-example (``reduction="none"``, the default) or reduced (``"mean"``,
  ``"sum"``), plus detached quantities worth logging: implicit rewards,
  margins and pairwise accuracy.
* Log-sigmoids are computed with ``F.logsigmoid`` (never ``log(sigmoid)``), so
  float32 and bfloat16 inputs stay finite at large margins.
"""

from bradley.nn import logprobs, losses, transforms
from bradley.nn.losses import LossOutput, available, get

__all__ = ["LossOutput", "available", "get", "logprobs", "losses", "transforms"]
