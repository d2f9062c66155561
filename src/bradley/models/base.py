"""What every pairwise estimator shares: data coercion, item lookup, checks."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from bradley.data import Comparisons, PairCounts
from bradley.errors import ComparisonDataError, NotFittedError
from bradley.io import read_comparisons

__all__ = ["as_comparisons", "ItemIndex", "check_prior", "summary_table", "require_fitted", "ScoreUncertainty",
           "constrain_covariance", "centre_covariance", "gauged_inverse"]


def as_comparisons(data: Any) -> Comparisons:
    """Accept Comparisons, PairCounts, a path, or a pandas/polars/pyarrow table with known columns."""
    if isinstance(data, Comparisons):
        return data
    if isinstance(data, PairCounts):
        # counts carry everything a model without row-level covariates needs
        return data.to_comparisons()
    if isinstance(data, (str, os.PathLike)) or hasattr(data, "columns") or type(data).__module__.startswith("pyarrow"):
        return read_comparisons(data)
    raise ComparisonDataError(
        f"cannot fit on a {type(data).__name__}: pass Comparisons, PairCounts, a DataFrame "
        "(left/right/outcome or model_a/model_b/winner columns), or a file path."
    )


class ItemIndex:
    """Maps item names (or integer codes) to positions in a fitted model."""

    def __init__(self, items: np.ndarray):
        self.items = np.asarray(items, dtype=object)
        self.index = pd.Index(self.items)

    def codes(self, values: Any) -> np.ndarray:
        """Positions of ``values`` (names, or integer codes when not names)."""
        arr = np.atleast_1d(np.asarray(values, dtype=object))
        pos = self.index.get_indexer(arr)
        unknown = pos < 0
        if unknown.any():
            ints = np.array([isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in arr[unknown]])
            if ints.all():
                codes = arr[unknown].astype(np.int64)
                if ((codes < 0) | (codes >= len(self.items))).any():
                    raise ComparisonDataError(
                        f"item codes out of range 0..{len(self.items) - 1}: {codes[:5].tolist()}."
                    )
                pos[unknown] = codes
            else:
                names = pd.unique(arr[unknown])[:5].tolist()
                raise ComparisonDataError(f"unknown item(s) {names}: the model was fitted on {len(self.items)} items.")
        return pos.astype(np.int64)


def summary_table(
    items: np.ndarray, scores: np.ndarray, pairs: PairCounts, identifiability: str = "scores centred to mean zero",
    **extra: np.ndarray,
) -> pd.DataFrame:
    """The tidy per-item table of a fitted pairwise model, best first.

    Columns: item, score, the ``extra`` columns, rank (1 = best, ties share the
    better rank), wins, losses, ties, comparisons (weighted counts). How the
    scores are identified is in ``table.attrs["identifiability"]``.
    """
    totals = pairs.item_totals()
    table = pd.DataFrame({"item": items, "score": scores, **extra})
    table["rank"] = pd.Series(-scores).rank(method="min").astype(np.int64).to_numpy()
    for column in ("wins", "losses", "ties", "comparisons"):
        table[column] = totals[column].to_numpy()
    table = table.sort_values("rank", kind="stable").reset_index(drop=True)
    table.attrs["identifiability"] = identifiability
    return table


def check_prior(prior: float | None) -> None:
    """A Gaussian prior variance must be None or a positive finite number."""
    if prior is not None and not (np.isfinite(prior) and prior > 0):
        raise ValueError(f"prior must be a positive variance, got {prior!r}.")


def require_fitted(model: Any, attribute: str = "scores_") -> None:
    if not hasattr(model, attribute):
        raise NotFittedError(f"this {type(model).__name__} is not fitted yet; call fit(data) first.")


def constrain_covariance(cov_centred: np.ndarray, reference: int | None) -> np.ndarray:
    """Covariance of scores re-identified by fixing item ``reference`` at zero.

    ``cov_centred`` is under any constraint that leaves contrasts unchanged
    (e.g. mean zero); the result is that of ``s_i - s_reference``:
    ``C_ij - C_ir - C_rj + C_rr`` (computed without an n x n transform product).

    Examples
    --------
    >>> c = constrain_covariance(np.array([[0.5, -0.5], [-0.5, 0.5]]), 0)
    >>> c.tolist()
    [[0.0, 0.0], [0.0, 2.0]]
    """
    if reference is None:
        return cov_centred
    column = cov_centred[:, reference]
    return cov_centred - column[:, None] - column[None, :] + cov_centred[reference, reference]


def centre_covariance(cov: np.ndarray) -> np.ndarray:
    """Covariance of ``s - mean(s)`` given the covariance of ``s``: ``P C P`` with ``P = I - 11^T / n``.

    Examples
    --------
    >>> centre_covariance(np.eye(2)).tolist()
    [[0.5, -0.5], [-0.5, 0.5]]
    """
    row = cov.mean(axis=0)
    return cov - row[:, None] - row[None, :] + row.mean()


def gauged_inverse(info: np.ndarray, gauge: np.ndarray) -> np.ndarray:
    """Pseudo-inverse of an information matrix whose null space is spanned by ``gauge``.

    ``gauge`` holds orthonormal columns (e.g. the unit vector along the item
    scores, the direction of a common shift). ``inv(I + c G G') - G G' / c``
    is exact for any ``c > 0``; ``c`` is taken at the scale of ``I`` (its mean
    diagonal) so that the result stays exact when the information is huge or
    tiny (frequency weights of 1e12 or 1e-12).

    Examples
    --------
    >>> laplacian = np.array([[1.0, -1.0], [-1.0, 1.0]]) * 1e12
    >>> g = np.full((2, 1), 2 ** -0.5)
    >>> np.allclose(gauged_inverse(laplacian, g), np.linalg.pinv(laplacian), rtol=1e-9, atol=0)
    True
    """
    from scipy import linalg

    gauge = np.asarray(gauge, dtype=np.float64).reshape(info.shape[0], -1)
    if not gauge.shape[1]:
        return np.asarray(linalg.inv(info))
    outer = gauge @ gauge.T
    scale = max(float(np.trace(info)) / info.shape[0], np.finfo(float).tiny)
    return np.asarray(linalg.inv(info + scale * outer) - outer / scale)


class ScoreUncertainty:
    """Uncertainty that every fitted model offers in the same way.

    A model using it sets ``items_``, ``scores_`` and ``covariance_``: the
    covariance of ``scores_`` (n_items x n_items) under the mean-zero
    constraint (models with extra parameters keep the covariance of all
    parameters in ``parameter_covariance_``). Item contrasts ``s_i - s_j`` and
    their variances do not depend on the constraint; only how single scores
    are pinned down does.
    """

    # Set by the model's fit (annotations only: no class attributes, so unfitted models stay unfitted).
    # ``covariance_`` is not declared: some models store it, others compute it in a property.
    items_: np.ndarray
    scores_: np.ndarray
    _index: ItemIndex

    def score_covariance(self, reference: Any = None) -> np.ndarray:
        """Covariance of the scores, centred (``reference=None``) or relative to the item ``reference``."""
        require_fitted(self, "covariance_")
        ref = None if reference is None else int(self._index.codes([reference])[0])
        cov = self.covariance_  # type: ignore[attr-defined]  # set by the model (attribute or property)
        return constrain_covariance(np.asarray(cov, dtype=np.float64), ref)

    def standard_errors(self, reference: Any = None) -> pd.Series:
        """Standard errors of the scores, indexed by item.

        Parameters
        ----------
        reference : item name (or code), optional
            Report SEs of ``s_i - s_reference`` (the reference gets 0), as
            R's BradleyTerry2 does with its ``refcat``; default: under the
            mean-zero constraint.
        """
        cov = self.score_covariance(reference)
        return pd.Series(np.sqrt(np.clip(np.diag(cov), 0.0, None)), index=pd.Index(self.items_, name="item"), name="se")

    def quasi_variances(self) -> pd.DataFrame:
        """Quasi-variances (Firth & de Menezes 2004): ``var(s_i - s_j) ~ q_i + q_j`` for every pair.

        Returns a DataFrame indexed by item with ``score``, ``quasi_var`` and
        ``quasi_se`` (its square root), so that intervals for any contrast can
        be read off one table.
        """
        from bradley.solvers.quasi_variance import quasi_variances

        q = quasi_variances(self.score_covariance())
        return pd.DataFrame({"score": self.scores_, "quasi_var": q, "quasi_se": np.sqrt(q)},
                            index=pd.Index(self.items_, name="item"))
