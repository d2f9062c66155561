"""Presentation of fitted models: tidy tables as text, CSV, JSON and markdown."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
from tabulate import tabulate

__all__ = ["FORMATS", "fit_to_dict", "render_summary", "render_fit"]

FORMATS = ("table", "csv", "json", "markdown")


def fit_to_dict(model: Any, model_name: str = "bradley-terry") -> dict[str, Any]:
    """The fitted model as a JSON-ready dict (the schema of ``bradley fit --format json``).

    ``items`` are best first; ``score`` is the natural-log strength as in
    ``model.scores_``.

    Examples
    --------
    >>> import bradley
    >>> m = bradley.BradleyTerry().fit(bradley.PairCounts.from_matrix([[0, 3], [1, 0]], items=["x", "y"]))
    >>> d = fit_to_dict(m)
    >>> d["n_items"], d["items"][0]["name"], d["items"][0]["rank"]
    (2, 'x', 1)
    """
    table = model.summary()
    items = [
        {
            "name": _plain(row.item),
            "score": float(row.score),
            "rank": int(row.rank),
            "wins": float(row.wins),
            "losses": float(row.losses),
            "ties": float(row.ties),
        }
        for row in table.itertuples(index=False)
    ]
    return {
        "model": model_name,
        "n_items": int(len(model.items_)),
        "n_comparisons": int(model.n_comparisons_),
        "log_likelihood": float(model.log_likelihood_),
        "converged": bool(model.converged_),
        "iterations": int(model.n_iter_),
        "items": items,
    }


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


_COLUMN_FORMATS = {"score": ".4f", "elo": ".1f", "se": ".4f"}


def _float_formats(table: pd.DataFrame) -> tuple[str, ...]:
    # Counts read best without trailing zeros ("g"), scores with fixed decimals.
    return tuple(_COLUMN_FORMATS.get(str(c), ".4g" if str(c) not in ("wins", "losses", "ties", "comparisons") else ".10g") for c in table.columns)


def render_summary(table: pd.DataFrame, fmt: str = "table") -> str:
    """Render a summary DataFrame as a text table, CSV, markdown or JSON records."""
    if fmt == "csv":
        return table.to_csv(index=False)
    if fmt == "json":
        return table.to_json(orient="records", indent=2)
    if fmt == "markdown":
        return tabulate(table, headers="keys", tablefmt="github", showindex=False, floatfmt=_float_formats(table))
    if fmt == "table":
        return tabulate(table, headers="keys", tablefmt="simple", showindex=False, floatfmt=_float_formats(table))
    raise ValueError(f"unknown format {fmt!r}; choose one of {FORMATS}.")


def render_fit(model: Any, fmt: str = "table", model_name: str = "bradley-terry") -> str:
    """Render a fitted model: the JSON schema for ``json``, else its summary table with a header."""
    if fmt == "json":
        return json.dumps(fit_to_dict(model, model_name), indent=2)
    table = model.summary()
    if fmt in ("csv", "markdown"):
        return render_summary(table, fmt)
    header = (
        f"{model_name}: {len(model.items_)} items, {model.n_comparisons_:,} comparisons, "
        f"log-likelihood {model.log_likelihood_:.2f}, solver {model.solver_}, "
        f"{'converged' if model.converged_ else 'NOT converged'} in {model.n_iter_} iterations\n"
        "score = natural-log strength (mean zero); elo = 1000 + 400 * score / ln(10)\n\n"
    )
    return header + render_summary(table, "table")
