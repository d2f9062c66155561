"""Typed errors and warnings raised by bradley.

Every error says what is wrong, where (the first offending rows or items), and
what to do next.
"""

from __future__ import annotations

from collections.abc import Sequence


class BradleyError(Exception):
    """Base class of all errors raised by bradley."""


class ComparisonDataError(BradleyError, ValueError):
    """Comparison data that cannot be used as given.

    Attributes
    ----------
    rows : list of int
        Zero-based positions of (up to the first ten) offending rows, if any.
    """

    def __init__(self, message: str, rows: Sequence[int] | None = None):
        super().__init__(message)
        self.rows = list(rows) if rows is not None else []


class MLEDoesNotExistError(BradleyError, ValueError):
    """The maximum-likelihood estimate is not finite for the data given.

    Raised when the comparison graph is disconnected, or when some group of
    items never loses (or never wins) against the rest, so that their scores
    run off to +/- infinity.

    Attributes
    ----------
    components : list of list of str
        The strongly connected components of the win graph (item names).
    never_lost : list of str
        Items of the top components (no loss against any item outside their
        component) that cause the problem. In each connected part of the data
        the strictly largest component is the reference and is not listed: when
        one item never won, only that item is named (in ``never_won``), not
        all the others as "never lost".
    never_won : list of str
        Items of the bottom components (no win against any item outside their
        component), on the same rule.
    """

    def __init__(
        self,
        message: str,
        components: list[list[str]] | None = None,
        never_lost: list[str] | None = None,
        never_won: list[str] | None = None,
    ):
        super().__init__(message)
        self.components = components or []
        self.never_lost = never_lost or []
        self.never_won = never_won or []


class ConvergenceWarning(UserWarning):
    """A solver stopped at its iteration limit before meeting its tolerance."""


class DataWarning(UserWarning):
    """Rows were dropped or changed because the user asked for it; the message gives the count."""


class NotFittedError(BradleyError, AttributeError):
    """A fitted attribute or method was used before ``fit``."""
