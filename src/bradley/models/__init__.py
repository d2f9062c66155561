"""Estimators users hold: configured in ``__init__``, ``fit(data) -> self``."""

from bradley.models.bradley_terry import BradleyTerry
from bradley.models.davidson import Davidson

__all__ = ["BradleyTerry", "Davidson"]
