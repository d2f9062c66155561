"""Estimators users hold: configured in ``__init__``, ``fit(data) -> self``."""

from bradley.models.bradley_terry import BradleyTerry

__all__ = ["BradleyTerry"]
