"""Presentation of fitted models: tidy tables as text, CSV, JSON and markdown."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from bradley.data import python_values

__all__ = ["FORMATS", "fit_to_dict", "render_summary", "render_fit"]

FORMATS = ("table", "csv", "json", "markdown")


def _tabulate(*args: Any, **kwargs: Any) -> str:
    """``tabulate.tabulate``, imported on first use (keeps ``import bradley`` light)."""
    from tabulate import tabulate

    return tabulate(*args, **kwargs)


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
    optional = [c for c in ("wins", "losses", "ties", "se", "first_place") if c in table.columns]
    items = [
        {
            "name": python_values([row["item"]])[0],
            "score": float(row["score"]),
            "rank": int(row["rank"]),
            **{c: float(row[c]) for c in optional},
            # models fitted on several linked components rank within each component
            **({"component": int(row["component"])} if "component" in table.columns else {}),
        }
        for _, row in table.iterrows()
    ]
    result = {
        "model": model_name,
        "n_items": int(len(model.items_)),
        "n_comparisons": int(getattr(model, "n_comparisons_", getattr(model, "n_rankings_", 0))),
        "log_likelihood": float(model.log_likelihood_),
        "converged": bool(model.converged_),
        "iterations": int(model.n_iter_),
        "items": items,
    }
    params = getattr(model, "params_", None)
    if params is not None and len(params):
        result["parameters"] = {
            str(name): {"estimate": float(row.estimate), "se": float(row.se),
                        **({"fixed": bool(row.fixed)} if "fixed" in params.columns else {})}
            for name, row in params.iterrows()
        }
    return result


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
        return _tabulate(table, headers="keys", tablefmt="github", showindex=False, floatfmt=_float_formats(table))
    if fmt == "table":
        return _tabulate(table, headers="keys", tablefmt="simple", showindex=False, floatfmt=_float_formats(table))
    raise ValueError(f"unknown format {fmt!r}; choose one of {FORMATS}.")


def render_fit(model: Any, fmt: str = "table", model_name: str = "bradley-terry") -> str:
    """Render a fitted model: the JSON schema for ``json``, else its summary table with a header."""
    if fmt == "json":
        return json.dumps(fit_to_dict(model, model_name), indent=2)
    table = model.summary()
    if fmt in ("csv", "markdown"):
        return render_summary(table, fmt)
    params = getattr(model, "params_", None)
    footer = ""
    if params is not None and len(params):
        footer = "\n\nparameters:\n" + _tabulate(params.reset_index(), headers="keys", tablefmt="simple",
                                                  showindex=False, floatfmt=".4g")
    count = (f"{model.n_comparisons_:,} comparisons" if hasattr(model, "n_comparisons_")
             else f"{model.n_rankings_:,} rankings")
    header = (
        f"{model_name}: {len(model.items_)} items, {count}, "
        f"log-likelihood {model.log_likelihood_:.2f}, solver {model.solver_}, "
        f"{'converged' if model.converged_ else 'NOT converged'} in {model.n_iter_} iterations\n"
        "score = natural-log strength (mean zero); elo = 1000 + 400 * score / ln(10)\n\n"
    )
    return header + render_summary(table, "table") + footer


def _figure_png(fig: Any) -> str:
    import base64
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _forest_plot(board: Any) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = board.table.iloc[::-1]
    height = max(3.0, 0.28 * len(t) + 1.0)
    fig, ax = plt.subplots(figsize=(8, height))
    y = np.arange(len(t))
    has_ci = board.ci["method"] != "none"
    if has_ci:
        ax.hlines(y, t["elo_low"], t["elo_high"], color="#4c72b0", linewidth=2)
    ax.plot(t["elo"], y, "o", color="#1f3b73", markersize=4)
    ax.set_yticks(y, t["item"], fontsize=8)
    ax.set_xlabel("Elo-scale rating" + (f" ({int(100 * board.ci['level'])}% interval, {board.ci['method']})" if has_ci else ""))
    ax.grid(axis="x", alpha=0.3)
    ax.set_ylim(-0.7, len(t) - 0.3)
    return _figure_png(fig)


def _heatmap(matrix: pd.DataFrame, label: str, fmt: str, cmap: str, limit: int = 30) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = matrix.iloc[:limit, :limit]
    size = max(4.0, 0.32 * len(m) + 2.0)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(m.to_numpy(), cmap=cmap)
    ax.set_xticks(range(len(m)), m.columns, rotation=90, fontsize=7)
    ax.set_yticks(range(len(m)), m.index, fontsize=7)
    if len(m) <= 15:
        for i in range(len(m)):
            for j in range(len(m)):
                if i != j:
                    ax.text(j, i, format(m.iat[i, j], fmt), ha="center", va="center", fontsize=6)
    fig.colorbar(image, ax=ax, label=label, fraction=0.046, pad=0.04)
    return _figure_png(fig)


def leaderboard_html(board: Any, title: str = "Leaderboard") -> str:
    """A self-contained HTML report of a :class:`~bradley.leaderboard.Leaderboard`:
    the table, a CI forest plot, and win-probability and battle-count heatmaps
    (the top 30 items), all embedded."""
    import html as html_lib

    model = board.model
    ci = board.ci
    shown = board._display_table()
    formatters = {"elo": "{:.1f}".format, "score": "{:.3f}".format}
    table_html = shown.to_html(index=False, classes="board", border=0, formatters=formatters)
    limit_note = " (top 30)" if len(board.table) > 30 else ""
    ci_text = (
        "no intervals"
        if ci["method"] == "none"
        else f"{int(round(100 * ci['level']))}% intervals by {ci['method']}"
        + (f", {ci['rounds']} rounds, seed {ci['seed']}" if ci["method"] == "bootstrap" else "")
    )
    anchor_text = f"; Elo anchored at {board.anchor[0]} = {board.anchor[1]:g}" if board.anchor else ""
    sections = [
        f"<h2>Ratings with intervals</h2><img alt='forest plot' src='data:image/png;base64,{_forest_plot(board)}'>",
        f"<h2>Win probability (row beats column){limit_note}</h2>"
        f"<img alt='win probabilities' src='data:image/png;base64,{_heatmap(board.win_probabilities(), 'P(row beats column)', '.2f', 'RdBu')}'>",
        f"<h2>Battles between pairs{limit_note}</h2>"
        f"<img alt='battle counts' src='data:image/png;base64,{_heatmap(board.battle_counts(), 'comparisons', '.0f', 'viridis')}'>",
    ]
    esc = html_lib.escape
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>
body {{ font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }}
h1 {{ margin-bottom: 0.2em; }} .meta {{ color: #555; margin-bottom: 1.5em; }}
table.board {{ border-collapse: collapse; font-size: 0.9em; }}
table.board th, table.board td {{ padding: 0.3em 0.7em; border-bottom: 1px solid #ddd; text-align: right; }}
table.board td:nth-child(2), table.board th:nth-child(2) {{ text-align: left; }}
table.board tr:nth-child(even) {{ background: #f6f8fa; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>{esc(title)}</h1>
<div class="meta">Bradley-Terry fit of {model.n_comparisons_:,} comparisons among {len(model.items_)} items;
{'converged' if model.converged_ else 'NOT converged'} in {model.n_iter_} iterations ({esc(model.solver_)}).
Elo = 1000 + 400 &middot; score / ln 10{esc(anchor_text)}; {esc(ci_text)}. Rank = 1 + number of items
whose interval lies entirely above; rank range and tier show which items cannot be told apart.</div>
{table_html}
{''.join(sections)}
</body></html>
"""
