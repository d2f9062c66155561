"""Presentation of fitted models: tidy tables as text, CSV, JSON and markdown."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from bradley.data import python_values

__all__ = ["FORMATS", "LEADERBOARD_COLUMNS", "fit_table", "fit_to_dict", "leaderboard_html", "leaderboard_to_dict",
           "parameter_table", "parameters_to_dict", "render_fit", "render_leaderboard", "render_summary"]

FORMATS = ("table", "csv", "json", "markdown")


def _tabulate(*args: Any, **kwargs: Any) -> str:
    """``tabulate.tabulate``, imported on first use (keeps ``import bradley`` light).

    Columns are as wide as their widest entry, header included (tabulate's
    default pads short numeric columns by two more, which pushes the
    leaderboard past 100 characters)."""
    import tabulate as tabulate_module

    saved = tabulate_module.MIN_PADDING
    tabulate_module.MIN_PADDING = 0
    try:
        return tabulate_module.tabulate(*args, **kwargs)
    finally:
        tabulate_module.MIN_PADDING = saved


def _json_number(x: Any) -> Any:
    """A JSON-ready scalar: NaN and infinities become None, numpy scalars Python ones."""
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if np.isfinite(x) else None
    return python_values([x])[0]


def parameters_to_dict(model: Any) -> dict[str, dict[str, Any]]:
    """The model's parameter table (tie, order-effect, covariate ... parameters) as
    ``{name: {"estimate", "se", "fixed"}}``; empty for models without parameters."""
    params = getattr(model, "params_", None)
    if params is None or not len(params):
        return {}
    return {
        str(name): {"estimate": _json_number(row.estimate), "se": _json_number(row.se),
                    "fixed": bool(row.fixed) if "fixed" in params.columns else False}
        for name, row in params.iterrows()
    }


def fit_table(model: Any) -> pd.DataFrame:
    """The per-item table of ``bradley fit``: ``model.summary()`` with its ``rank``
    named ``position`` (the order of the point estimates, 1 = highest score).

    The leaderboard's ``rank`` is another quantity (1 + the number of items
    certainly better), so the fit output does not use that name.

    Examples
    --------
    >>> import bradley
    >>> m = bradley.BradleyTerry().fit(bradley.PairCounts.from_matrix([[0, 3], [1, 0]], items=["x", "y"]))
    >>> list(fit_table(m).columns)[:5]
    ['item', 'score', 'se', 'elo', 'position']
    """
    table = model.summary()
    attrs = dict(table.attrs)
    table = table.rename(columns={"rank": "position"})
    table.attrs.update(attrs)
    return table


def fit_to_dict(model: Any, model_name: str = "bradley-terry") -> dict[str, Any]:
    """The fitted model as a JSON-ready dict (the schema of ``bradley fit --format json``).

    ``items`` are best first, each with ``name``, ``score`` (natural-log
    strength as in ``model.scores_``), ``position`` (order of the scores, 1 =
    best), the counts ``wins``, ``losses``, ``ties``, ``comparisons`` and, where
    the model has them, ``se``, ``elo`` and ``component``; ``parameters`` holds
    the tie / order-effect / covariate parameters. The same names mean the same
    things in ``bradley leaderboard --format json``.

    Examples
    --------
    >>> import bradley
    >>> m = bradley.BradleyTerry().fit(bradley.PairCounts.from_matrix([[0, 3], [1, 0]], items=["x", "y"]))
    >>> d = fit_to_dict(m)
    >>> d["n_items"], d["items"][0]["name"], d["items"][0]["position"]
    (2, 'x', 1)
    """
    table = fit_table(model)
    optional = [c for c in ("se", "elo", "wins", "losses", "ties", "comparisons", "first_place", "component")
                if c in table.columns]
    items = [
        {
            "name": python_values([row["item"]])[0],
            "score": _json_number(row["score"]),
            "position": int(row["position"]),
            **{c: _json_number(row[c]) for c in optional},
        }
        for _, row in table.iterrows()
    ]
    result: dict[str, Any] = {
        "model": model_name,
        "n_items": int(len(model.items_)),
        "n_comparisons": int(getattr(model, "n_comparisons_", getattr(model, "n_rankings_", 0))),
        "log_likelihood": float(model.log_likelihood_),
        "converged": bool(model.converged_),
        "iterations": int(model.n_iter_),
        "solver": str(getattr(model, "solver_", "")),
        "items": items,
    }
    if "identifiability" in table.attrs:
        result["identifiability"] = str(table.attrs["identifiability"])
    params = parameters_to_dict(model)
    if params:
        result["parameters"] = params
    return result


# JSON / CSV names of the leaderboard columns that differ from the fit output's names for the same thing
_LEADERBOARD_JSON_NAMES = {"item": "name", "battles": "comparisons"}


def leaderboard_to_dict(board: Any, model_name: str | None = None) -> dict[str, Any]:
    """A :class:`~bradley.leaderboard.Leaderboard` as the JSON of ``bradley leaderboard --format json``.

    The fields of ``board.to_dict()`` with the items carrying every column
    of ``board.table`` under the names ``bradley fit --format json`` uses for
    the same things (``name``, ``comparisons``), plus ``position`` (order of
    the scores); ``rank`` is the leaderboard rank (1 + the number of items
    whose interval lies entirely above). NaN becomes null.

    Examples
    --------
    >>> import bradley
    >>> board = bradley.leaderboard(bradley.simulate_bt(4, 400, seed=1, item_names=True)[0])
    >>> item = leaderboard_to_dict(board)["items"][0]
    >>> sorted(k for k in ("name", "position", "rank", "comparisons", "elo") if k in item)
    ['comparisons', 'elo', 'name', 'position', 'rank']
    """
    result = board.to_dict()
    table = board.table
    position = pd.Series(-table["score"].to_numpy()).rank(method="min").astype(np.int64).to_numpy()
    items = []
    for k, row in enumerate(table.to_dict(orient="records")):
        item = {_LEADERBOARD_JSON_NAMES.get(str(c), str(c)): _json_number(v) for c, v in row.items()}
        item["position"] = int(position[k])
        items.append(item)
    result["items"] = items
    if model_name is not None:
        result["model"] = model_name
    result["solver"] = str(getattr(board.model, "solver_", ""))
    params = parameters_to_dict(board.model)
    if params:
        result["parameters"] = params
    else:
        result.pop("parameters", None)
    return result


_COLUMN_FORMATS = {"score": ".4f", "elo": ".1f", "se": ".4f"}
_COUNT_COLUMNS = ("wins", "losses", "ties", "comparisons", "battles", "position", "rank")


def _float_formats(table: pd.DataFrame) -> tuple[str, ...]:
    # Counts read best without trailing zeros ("g"), scores with fixed decimals.
    return tuple(_COLUMN_FORMATS.get(str(c), ".10g" if str(c) in _COUNT_COLUMNS else ".4g") for c in table.columns)


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


def parameter_table(model: Any) -> pd.DataFrame:
    """The model's parameters as a tidy frame: ``parameter, estimate, se[, fixed]`` (empty without any)."""
    params = getattr(model, "params_", None)
    if params is None or not len(params):
        return pd.DataFrame(columns=["parameter", "estimate", "se"])
    table = params.reset_index()
    return table.rename(columns={table.columns[0]: "parameter"})


def _with_parameter_columns(table: pd.DataFrame, model: Any) -> pd.DataFrame:
    """CSV keeps one tidy table: each parameter becomes two constant columns,
    ``param_<name>`` and ``param_<name>_se``, on every row."""
    params = parameter_table(model)
    if not len(params):
        return table
    out = table.copy()
    for row in params.itertuples(index=False):
        out[f"param_{row.parameter}"] = float(row.estimate)
        out[f"param_{row.parameter}_se"] = float(row.se)
    return out


def _parameters_text(model: Any, fmt: str) -> str:
    params = parameter_table(model)
    if not len(params):
        return ""
    tablefmt = "github" if fmt == "markdown" else "simple"
    body = _tabulate(params, headers="keys", tablefmt=tablefmt, showindex=False, floatfmt=".4g")
    return ("\n\nparameters:\n" if fmt == "table" else "\n\nParameters:\n\n") + body


_FIT_NOTE = ("position = order of the point estimates (1 = highest score); no uncertainty is taken into "
             "account: `bradley leaderboard` gives intervals and ranks")


def _fit_header(model: Any, model_name: str, table: pd.DataFrame) -> str:
    count = (f"{model.n_comparisons_:,} comparisons" if hasattr(model, "n_comparisons_")
             else f"{model.n_rankings_:,} rankings")
    scale = "score = natural-log strength"
    how = table.attrs.get("identifiability")
    scale += f" ({how})" if how else " (mean zero)"
    if "elo" in table.columns:
        scale += "; elo = 1000 + 400 * score / ln(10)"
    return (
        f"{model_name}: {len(model.items_)} items, {count}, "
        f"log-likelihood {model.log_likelihood_:.2f}, solver {model.solver_}, "
        f"{'converged' if model.converged_ else 'NOT converged'} in {model.n_iter_} iterations\n"
        f"{scale}\n{_FIT_NOTE}"
    )


def render_fit(model: Any, fmt: str = "table", model_name: str = "bradley-terry") -> str:
    """Render a fitted model: the JSON schema for ``json``; else its per-item table
    with the model's parameters (tie, order effect, covariates) in every format:
    a parameter table after the items in ``table`` and ``markdown``, constant
    ``param_<name>`` / ``param_<name>_se`` columns in ``csv``.

    Examples
    --------
    >>> import bradley
    >>> m = bradley.Davidson().fit(bradley.PairCounts.from_matrix([[0, 3], [1, 0]], items=["x", "y"],
    ...                                                      ties=[[0, 2], [2, 0]]))
    >>> "param_nu" in render_fit(m, "csv").splitlines()[0]
    True
    """
    if fmt == "json":
        return json.dumps(fit_to_dict(model, model_name), indent=2)
    table = fit_table(model)
    if fmt == "csv":
        return render_summary(_with_parameter_columns(table, model), "csv")
    if fmt == "markdown":
        notes = _fit_header(model, model_name, table).replace("\n", "  \n")
        return render_summary(table, "markdown") + "\n\n" + notes + _parameters_text(model, "markdown")
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}; choose one of {FORMATS}.")
    header = "\n".join(_wrap(line) for line in _fit_header(model, model_name, table).splitlines())
    return (header + "\n\n" + render_summary(table, "table")
            + _parameters_text(model, "table"))


# --------------------------------------------------------------------------- leaderboards

#: ``--columns`` keys of the leaderboard outputs, in display order.
LEADERBOARD_COLUMNS = ("rank", "item", "elo", "ci", "rank_range", "tier", "score", "se", "battles", "win_rate",
                       "wins", "losses", "ties", "provisional", "component")
#: the default columns: compact text (fits 100 columns for item names up to ~45 characters), and the full set
_COMPACT = ("rank", "item", "elo", "ci", "rank_range", "battles", "provisional", "component")
_FULL = ("rank", "item", "elo", "ci", "rank_range", "tier", "score", "battles", "win_rate", "provisional",
         "component")
#: raw columns of ``board.table`` behind each key (CSV and JSON keep the raw columns)
_RAW = {"ci": ("ci_low", "ci_high", "elo_low", "elo_high"), "rank_range": ("rank_low", "rank_high")}


def parse_columns(text: str | None) -> tuple[str, ...] | None:
    """``--columns`` text -> column keys (None for the default); ``all`` = every column.

    Examples
    --------
    >>> parse_columns("rank, item,elo")
    ('rank', 'item', 'elo')
    """
    if text is None:
        return None
    keys = tuple(k.strip().replace("-", "_").replace(" ", "_") for k in text.split(",") if k.strip())
    if keys == ("all",):
        return LEADERBOARD_COLUMNS
    if keys == ("compact",):
        return _COMPACT
    unknown = [k for k in keys if k not in LEADERBOARD_COLUMNS]
    if unknown or not keys:
        raise ValueError(f"--columns: unknown column(s) {unknown}; choose from {', '.join(LEADERBOARD_COLUMNS)} "
                         "(or 'all', 'compact').")
    return keys


def _interval_words(board: Any) -> str:
    words = getattr(board, "intervals", None)
    if isinstance(words, str):
        return words
    ci = board.ci
    if ci["method"] == "none":
        return "no intervals"
    text = f"{int(round(100 * ci['level']))}% {ci['method']} intervals"
    if ci["method"] == "bootstrap":
        text += f" ({ci['rounds']} rounds, seed {ci['seed']})"
    return text


def _model_words(model: Any) -> str:
    family = getattr(model, "family", "bt")
    kind = {"davidson": "Davidson", "rao-kupper": "Rao-Kupper", "tobt": "TOBT"}.get(family, "Bradley-Terry")
    if getattr(model, "bias_reduction", False):
        kind += " (bias-reduced)"
    if getattr(model, "prior", None) is not None:
        kind += f" (prior variance {model.prior:g})"
    return kind


def leaderboard_display(board: Any, columns: Sequence[str] | None = None, top: int | None = None,
                        default: Sequence[str] = _COMPACT, star: bool = False) -> pd.DataFrame:
    """The leaderboard as shown in text, markdown and HTML: the chosen column keys
    (see :data:`LEADERBOARD_COLUMNS`) with readable headers, the first ``top`` rows.

    ``star`` marks provisional items by a ``*`` column (the compact text
    table) instead of a ``provisional`` column. Keys a board does not
    have (``provisional`` before it exists, ``component``
    for connected data, intervals with ``ci="none"``) are left out of the
    defaults; asked for by name they raise ``ValueError``.
    """
    t = board.table if top is None else board.table.head(top)
    has_ci = board.ci["method"] != "none"
    pct = int(round(100 * board.ci["level"])) if has_ci else 0
    makers: dict[str, tuple[str, Any]] = {
        "rank": ("rank", lambda: t["rank"]),
        "item": ("item", lambda: t["item"]),
        "elo": ("elo", lambda: t["elo"].round(1)),
        "ci": (f"{pct}% CI (elo)", lambda: [f"{lo:.1f} to {hi:.1f}"
                                            for lo, hi in zip(t["elo_low"], t["elo_high"], strict=True)]),
        "rank_range": ("rank range", lambda: [f"{a}-{b}" if a != b else f"{a}"
                                               for a, b in zip(t["rank_low"], t["rank_high"], strict=True)]),
        "tier": ("tier", lambda: t["tier"]),
        "score": ("score", lambda: t["score"]),
        "se": ("se", lambda: t["se"]),
        "battles": ("battles", lambda: _counts(t["battles"])),
        "win_rate": ("win rate", lambda: [f"{100 * w:.1f}%" if np.isfinite(w) else "" for w in t["win_rate"]]),
        "wins": ("wins", lambda: _counts(t["wins"])),
        "losses": ("losses", lambda: _counts(t["losses"])),
        "ties": ("ties", lambda: _counts(t["ties"])),
        "provisional": (("*", lambda: ["*" if p else "" for p in t["provisional"]]) if star else
                        ("provisional", lambda: ["yes" if p else "" for p in t["provisional"]])),
        "component": ("component", lambda: t["component"]),
    }
    available = set(makers)
    if not has_ci:
        available -= {"ci", "rank_range", "tier", "se"}
    for key in ("provisional", "component"):
        if key not in t.columns:
            available.discard(key)
    if "provisional" in available and not bool(np.any(t["provisional"].to_numpy())) and columns is None:
        available.discard("provisional")  # no provisional item: no empty column by default
    if "component" in available and t["component"].nunique() <= 1 and columns is None:
        available.discard("component")
    if columns is None:
        keys = [k for k in default if k in available]
    else:
        missing = [k for k in columns if k not in available]
        if missing and tuple(columns) != LEADERBOARD_COLUMNS:
            raise ValueError(f"--columns: this leaderboard has no {', '.join(missing)} column "
                             f"({'no intervals' if not has_ci else 'not computed for these data'}).")
        keys = [k for k in columns if k in available]
    return pd.DataFrame({makers[k][0]: list(makers[k][1]()) for k in keys})


def _counts(values: pd.Series) -> Any:
    v = values.to_numpy()
    return v.astype(np.int64) if np.all(v == np.round(v)) else v.round(1)


def _leaderboard_notes(board: Any, shown: int, star: bool = False) -> list[str]:
    notes = []
    if board.ci["method"] != "none":
        notes.append("rank = 1 + the number of items whose interval lies entirely above (as on arena "
                     "leaderboards), so equal ranks cannot be told apart and the rank can jump down the table; "
                     "rank range = the ranks the item can take within the intervals; tier = a group that "
                     "cannot be told from its first item")
    else:
        notes.append("rank = order of the point estimates (no intervals)")
    if board.anchor:
        notes.append(f"elo shifted so that {board.anchor[0]} = {board.anchor[1]:g}")
    else:
        notes.append("elo = 1000 + 400 * score / ln(10)")
    if "provisional" in board.table.columns and bool(board.table["provisional"].any()):
        n_prov = int(board.table["provisional"].sum())
        below = board.ci.get("min_battles")
        fewer = f"fewer than {below:g} battles" if isinstance(below, (int, float)) else "too few battles"
        notes.append(f"{n_prov} provisional item(s) ({'marked *' if star else 'column provisional'}): {fewer}, "
                     "so the rating is not yet reliable")
    if shown < len(board.table):
        notes.append(f"top {shown} of {len(board.table)} items shown")
    return notes


def render_leaderboard(board: Any, fmt: str = "table", columns: Sequence[str] | None = None,
                       top: int | None = None, model_name: str | None = None) -> str:
    """Render a leaderboard as ``bradley leaderboard`` prints it.

    ``table`` shows a compact set of columns by default, ``markdown`` the full
    set, ``csv`` every raw column of ``board.table`` (``columns`` keys pick
    them; ``ci`` -> ``ci_low, ci_high, elo_low, elo_high``) plus the model's
    parameters as constant ``param_<name>`` columns, ``json``
    :func:`leaderboard_to_dict`. Text and markdown say which interval is shown,
    what ``rank`` means and list the model parameters. ``top`` limits the rows
    of table and markdown (CSV and JSON are always complete).

    Examples
    --------
    >>> import bradley
    >>> board = bradley.leaderboard(bradley.simulate_bt(5, 500, seed=2, item_names=True)[0])
    >>> text = render_leaderboard(board, "table", columns=["rank", "item"])
    >>> next(line for line in text.splitlines() if line.startswith("rank ")).split()
    ['rank', 'item']
    """
    if fmt == "json":
        return json.dumps(leaderboard_to_dict(board, model_name), indent=2)
    if fmt == "csv":
        table = board.table
        if columns is not None:
            raw = [c for k in columns for c in _RAW.get(k, (k,)) if c in table.columns]
            table = table[raw]
        table = table.copy()
        ci = board.ci
        table["interval"] = "none" if ci["method"] == "none" else f"{int(round(100 * ci['level']))}% {ci['method']}"
        return _with_parameter_columns(table, board.model).to_csv(index=False)
    if fmt not in ("table", "markdown"):
        raise ValueError(f"unknown format {fmt!r}; choose one of {FORMATS}.")
    star = fmt == "table" and columns is None
    shown = leaderboard_display(board, columns, top, default=_COMPACT if fmt == "table" else _FULL, star=star)
    model = board.model
    header = (f"{_model_words(model)} leaderboard: {len(model.items_)} items, {model.n_comparisons_:,} comparisons, "
              f"{_interval_words(board)}")
    notes = _leaderboard_notes(board, len(shown), star)
    if fmt == "markdown":
        return (render_summary(shown, "markdown") + "\n\n" + header + ".  \n" + "; ".join(notes) + "."
                + _parameters_text(model, "markdown"))
    return (_wrap(header) + "\n\n" + render_summary(shown, "table") + "\n\n" + _wrap("; ".join(notes) + ".")
            + _parameters_text(model, "table"))


def _wrap(text: str, width: int = 100) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def _figure_png(fig: Any) -> str:
    import base64
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _forest_plot(board: Any, top: int | None = None) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = (board.table if top is None else board.table.head(top)).iloc[::-1]
    height = max(3.0, 0.28 * len(t) + 1.0)
    fig, ax = plt.subplots(figsize=(8, height))
    y = np.arange(len(t))
    has_ci = board.ci["method"] != "none"
    if has_ci:
        ax.hlines(y, t["elo_low"], t["elo_high"], color="#4c72b0", linewidth=2)
    ax.plot(t["elo"], y, "o", color="#1f3b73", markersize=4)
    ax.set_yticks(y, t["item"], fontsize=8)
    interval = f" ({int(100 * board.ci['level'])}% interval, {board.ci['method']})" if has_ci else ""
    ax.set_xlabel("Elo-scale rating" + interval)
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


def leaderboard_html(board: Any, title: str = "Leaderboard", top: int | None = None,
                     columns: Sequence[str] | None = None) -> str:
    """A self-contained HTML report of a :class:`~bradley.leaderboard.Leaderboard`:
    the table (the first ``top`` items, all by default; provisional items
    marked), the model's parameters, a CI forest plot, and win-probability and
    battle-count heatmaps (the top 30 items, or ``top`` if fewer), all embedded.

    Examples
    --------
    >>> import bradley
    >>> board = bradley.leaderboard(bradley.simulate_bt(5, 500, seed=2, item_names=True)[0])
    >>> page = leaderboard_html(board, title="My <arena>", top=3)
    >>> "<title>My &lt;arena&gt;</title>" in page, page.count("<tr") - 1
    (True, 3)
    """
    import html as html_lib

    esc = html_lib.escape
    if top is not None and top < 1:
        raise ValueError(f"top must be a positive number of items, got {top}.")
    model = board.model
    shown = leaderboard_display(board, columns, top, default=_FULL)
    n_shown = len(shown)
    formatters = {"elo": "{:.1f}".format, "score": "{:.3f}".format, "se": "{:.3f}".format}
    table_html = shown.to_html(index=False, classes="board", border=0, formatters=formatters)
    if "provisional" in board.table.columns:  # mark provisional rows, whichever columns are shown
        flags = board.table["provisional"].to_numpy()[:n_shown]
        head, sep, body = table_html.partition("<tbody>")
        rows = body.split("<tr>")  # rows[0] is the whitespace before the first item's row
        body = rows[0] + "".join(('<tr class="provisional">' if k < len(flags) and flags[k] else "<tr>") + r
                                 for k, r in enumerate(rows[1:]))
        table_html = head + sep + body
    limit = min(30, n_shown)
    limit_note = f" (top {limit})" if len(board.table) > limit else ""
    anchor_text = f"; Elo anchored at {board.anchor[0]} = {board.anchor[1]:g}" if board.anchor else ""
    params = parameter_table(model)
    params_html = ""
    if len(params):
        params_html = ("<h2>Model parameters</h2>"
                       + params.to_html(index=False, classes="board", border=0, float_format="{:.4g}".format))
    win_png = _heatmap(board.win_probabilities(), "P(row beats column)", ".2f", "RdBu", limit=limit)
    count_png = _heatmap(board.battle_counts(), "comparisons", ".0f", "viridis", limit=limit)
    sections = [
        f"<h2>Ratings with intervals</h2><img alt='forest plot' "
        f"src='data:image/png;base64,{_forest_plot(board, top)}'>",
        f"<h2>Win probability (row beats column){limit_note}</h2>"
        f"<img alt='win probabilities' src='data:image/png;base64,{win_png}'>",
        f"<h2>Battles between pairs{limit_note}</h2>"
        f"<img alt='battle counts' src='data:image/png;base64,{count_png}'>",
    ]
    notes = _leaderboard_notes(board, n_shown)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>
body {{ font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; padding: 0 1em; }}
h1 {{ margin-bottom: 0.2em; }} .meta {{ color: #555; margin-bottom: 1.5em; }}
table.board {{ border-collapse: collapse; font-size: 0.9em; }}
table.board th, table.board td {{ padding: 0.3em 0.7em; border-bottom: 1px solid #ddd; text-align: right; }}
table.board td:nth-child(2), table.board th:nth-child(2) {{ text-align: left; }}
table.board tr:nth-child(even) {{ background: #f6f8fa; }}
table.board tr.provisional {{ color: #8a6d3b; font-style: italic; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>{esc(title)}</h1>
<div class="meta">{esc(_model_words(model))} fit of {model.n_comparisons_:,} comparisons
among {len(model.items_)} items;
{'converged' if model.converged_ else 'NOT converged'} in {model.n_iter_} iterations ({esc(str(model.solver_))});
{esc(_interval_words(board))}{esc(anchor_text)}. {esc('; '.join(notes))}.</div>
{table_html}
{params_html}
{''.join(sections)}
</body></html>
"""
