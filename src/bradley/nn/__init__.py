"""Preference losses and log-probabilities for PyTorch (install with the ``torch`` extra).

This subpackage imports torch; nothing in the numpy core imports it.

* :func:`get` picks a loss by name with keyword-only hyperparameters
  (``get("ipo", beta=0.1)``) and returns a configured loss; call it on a
  :class:`PreferenceBatch` or on keyword tensors named as the batch fields.
  :func:`available` lists the names, :func:`loss_table` documents them.
* Every loss returns a :class:`LossOutput`: per-example ``loss`` plus detached
  implicit rewards, margins and accuracy on one scale.
* :mod:`bradley.nn.logprobs` turns model logits (or hidden states and the LM
  head, in chunks) into the log-probabilities the losses take.
"""

from bradley.nn import dpo, logprobs, losses, transforms
from bradley.nn.batch import PreferenceBatch
from bradley.nn.registry import CombinedLoss, LossOutput, PreferenceLoss, available, get, loss_table, spec

__all__ = [
    "CombinedLoss",
    "LossOutput",
    "PreferenceBatch",
    "PreferenceLoss",
    "available",
    "dpo",
    "get",
    "logprobs",
    "loss_table",
    "losses",
    "spec",
    "transforms",
]
