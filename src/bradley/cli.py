"""The ``bradley`` command line: thin wrappers over the public API."""

from __future__ import annotations

import argparse
import inspect
import math
import os
import re
import sys
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from bradley import __version__
from bradley.data import Comparisons, PairCounts
from bradley.errors import BradleyError
from bradley.evaluate import METHODS, compare_methods
from bradley.io import is_count_table, read_comparisons, read_table
from bradley.leaderboard import CI_METHODS, leaderboard
from bradley.models import BradleyTerry, PairwiseModel, PlackettLuce
from bradley.rankings import read_rankings
from bradley.report import (
    FORMATS,
    LEADERBOARD_COLUMNS,
    leaderboard_html,
    parse_columns,
    render_fit,
    render_leaderboard,
    render_summary,
)
from bradley.scales import from_elo

__all__ = ["main", "build_parser", "cli_words"]


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data",
                        help="comparison file: CSV, TSV, JSONL, Parquet (optionally .gz), or 'winner loser' .txt; "
                             "or a directory or a quoted glob ('votes/*.parquet'), aggregated out of core")
    cols = parser.add_argument_group("columns (default: arena format model_a/model_b/winner, or left/right/outcome)")
    cols.add_argument("--left", help="column with the first item")
    cols.add_argument("--right", help="column with the second item")
    cols.add_argument("--outcome", help="outcome column: 1/0/0.5, left/right/tie, arena labels, or the winner's name")
    cols.add_argument("--winner", help="column with the winner's name (with --loser: one decisive game per row)")
    cols.add_argument("--loser", help="column with the loser's name")
    cols.add_argument("--weight", help="column with non-negative row weights")
    cols.add_argument("--outcome-map", default=None, metavar="VALUE=MEANING[,...]",
                      help="what each outcome value means, e.g. 1=left,2=right,3=tie (meanings: left, right, tie, "
                           "both_bad, a number in [0, 1], or drop); needed for 0/1 columns, which data sets code "
                           "both ways")
    cols.add_argument("--left-score", default=None, metavar="COL",
                      help="with --right-score: the outcome from two score columns (e.g. goals): higher wins, "
                           "equal ties")
    cols.add_argument("--right-score", default=None, metavar="COL", help="see --left-score")
    cols.add_argument("--where", default=None, metavar="CONDITION",
                      help="keep only rows matching a condition, e.g. \"category == 'math'\" (pandas query syntax)")
    cols.add_argument("--sep", default=None, help="field separator of a delimited text file (e.g. ';')")
    cols.add_argument("--header", action=argparse.BooleanOptionalAction, default=None,
                      help=".txt match lists: whether the first line names the columns (default: detected)")
    cols.add_argument("--names", default=None, metavar="COL[,COL...]",
                      help=".txt match lists: names of the fields of each line, e.g. winner,loser,weight")
    cols.add_argument("--input-format", choices=["csv", "tsv", "whitespace", "jsonl", "json", "parquet"],
                      help="file format when the file name does not tell it")
    cols.add_argument("--both-bad", default="tie", choices=["tie", "drop"],
                      help="arena 'tie (bothbad)' votes: count as ties (default) or drop them (the count is reported)")
    cols.add_argument("--drop-self-comparisons", action="store_true",
                      help="drop rows comparing an item with itself (the count is reported) instead of failing")
    counts = parser.add_argument_group(
        "count tables (one row per pair with win counts, as BradleyTerry2 takes them; detected by win1/win2 columns)")
    counts.add_argument("--counts", action="store_true", default=None,
                        help="read DATA as a count table: item columns (--left/--right, default item1/item2 or "
                             "player1/player2) and win counts (--win1/--win2, optional --tie)")
    counts.add_argument("--win1", help="count-table column with the wins of the first item (default win1)")
    counts.add_argument("--win2", help="count-table column with the wins of the second item (default win2)")
    counts.add_argument("--tie", help="count-table column with the ties (default: a tie or ties column if present)")


_ANCHOR_HELP = ("show ratings on the Elo scale with ITEM at rating ELO (default 1000): one common shift of every "
                "rating (elo = 1000 + 400 * score / ln 10 without it)")


def _add_common_options(parser: argparse.ArgumentParser, top_level: bool = False) -> None:
    """``--debug`` and ``--progress`` work before or after the command (``bradley --debug fit ...`` as
    ``bradley fit ... --debug``): the subcommand copies default to SUPPRESS so they never overwrite the
    top-level value."""
    default: Any = False if top_level else argparse.SUPPRESS
    parser.add_argument("--debug", action="store_true", default=default,
                        help="show a traceback instead of a one-line error")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None if top_level else
                        argparse.SUPPRESS,
                        help="progress on long work (bootstrap, compare, big reads) on stderr; default: on when "
                             "stderr is a terminal, off when piped")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``bradley`` command."""
    parser = argparse.ArgumentParser(
        prog="bradley", description="Rank things from pairwise comparisons.",
        epilog="Exit codes: 0 success, 2 bad input or options (one line on stderr), 1 out of memory, "
               "130 interrupted.")
    parser.add_argument("--version", action="version", version=f"bradley {__version__}")
    _add_common_options(parser, top_level=True)
    sub = parser.add_subparsers(dest="command", required=True)

    fit = sub.add_parser("fit", help="fit a Bradley-Terry-family model and print the ranking")
    _add_data_options(fit)
    _add_model_options(fit)
    fit.add_argument("--model", default="bt", choices=["bt", "davidson", "rao-kupper", "tobt", "plackett-luce"],
                     help="bt (ties as half wins); a tie model: davidson, rao-kupper, tobt; or plackett-luce for "
                          "rankings")
    fit.add_argument("--layout", default="long", choices=["long", "wide", "matrix"],
                     help="rankings file layout for plackett-luce: long (ranking_id,item,rank), wide (items best "
                          "first across the columns) or matrix (one column per item holding its rank; "
                          "0/empty = absent)")
    fit.add_argument("--id-col", default=None, metavar="COL",
                     help="ranking id column in the wide and matrix layouts (default: a 'ranking' or "
                          "'ranking_id' column)")
    fit.add_argument("--ties", default="breslow", choices=["breslow", "davidson-luce"],
                     help="plackett-luce ties: Breslow's approximation, or Davidson-Luce (a tie parameter per "
                          "tie order)")
    fit.add_argument("--ranking-col", default="ranking_id", help="ranking id column (long layout)")
    fit.add_argument("--item-col", default="item", help="item column (long layout)")
    fit.add_argument("--rank-col", default="rank", help="rank column (long layout; equal ranks are ties)")
    _add_family_options(fit)
    fit.add_argument("--anchor", default=None, metavar="ITEM[=ELO]",
                     help=_ANCHOR_HELP + "; scores shift with it and se becomes relative to ITEM (plain bt)")
    fit.add_argument("--anchor-score", default=None, metavar="ITEM[=SCORE]",
                     help="the same on the natural-log score scale: ITEM's score fixed at SCORE (default 0)")
    fit.add_argument("--format", default="table", choices=FORMATS)
    _add_common_options(fit)

    board = sub.add_parser("leaderboard", help="a leaderboard with confidence intervals, rank ranges and tiers")
    _add_data_options(board)
    _add_model_options(board)
    board.add_argument("--model", default="bt", choices=["bt", "davidson", "rao-kupper", "tobt"],
                       help="bt (ties as half wins) or a tie model")
    _add_family_options(board)
    board.add_argument("--ci", default=None, choices=CI_METHODS,
                       help=f"interval method (default {_default_ci()}; the output says which interval it shows)")
    board.add_argument("--level", type=float, default=0.95, help="confidence level (default 0.95)")
    board.add_argument("--rounds", type=int, default=1000, help="bootstrap rounds (default 1000)")
    board.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    board.add_argument("--cluster", default=None, metavar="COL",
                       help="column of cluster labels (e.g. annotator) for sandwich errors or cluster bootstrap")
    board.add_argument("--min-battles", type=int, default=None, metavar="N",
                       help="mark items with fewer than N battles as provisional")
    board.add_argument("--anchor", default=None, metavar="ITEM[=ELO]",
                       help=_ANCHOR_HELP + "; interval widths do not change")
    board.add_argument("--format", default="table", choices=FORMATS)
    board.add_argument("--columns", default=None, metavar="COL[,COL...]",
                       help="columns to show: " + ",".join(LEADERBOARD_COLUMNS) + ", or 'all' (default: a compact "
                            "set for table, the full set for markdown and HTML, every raw column for csv)")
    board.add_argument("--top", type=int, default=None, metavar="N",
                       help="show the best N items in table, markdown and HTML (csv and json stay complete)")
    board.add_argument("--html", default=None, metavar="PATH", help="also write a self-contained HTML report")
    board.add_argument("--title", default="Leaderboard", help="title of the HTML report (default 'Leaderboard')")
    _add_common_options(board)

    compare = sub.add_parser("compare",
                             help="compare rating methods by k-fold held-out log-loss, accuracy and calibration")
    _add_data_options(compare)
    compare.add_argument("--methods", default="bt,davidson,elo,trueskill,winrate",
                         help="comma-separated methods: " + ", ".join(sorted(METHODS))
                         + " (davidson is skipped, with a note, on data without ties)")
    compare.add_argument("--split", default="auto", choices=["auto", "games", "rows"],
                         help="how weighted rows go to folds: games (a row of weight w is w games), rows (each row "
                              "whole), auto (games when every weight is a whole number; default)")
    compare.add_argument("--folds", type=int, default=5)
    compare.add_argument("--seed", type=int, default=0)
    compare.add_argument("--elo-k", type=float, default=4.0, help="Elo K factor (default 4)")
    compare.add_argument("--format", default="table", choices=FORMATS)
    _add_common_options(compare)

    analyze = sub.add_parser("analyze", help="diagnose when Bradley-Terry fails: intransitive triads, a likelihood-"
                                             "ratio test against the saturated model, held-out log-loss of both")
    _add_data_options(analyze)
    analyze.add_argument("--folds", type=int, default=5, help="folds of the held-out comparison (default 5)")
    analyze.add_argument("--seed", type=int, default=0, help="seed of the fold split (default 0)")
    analyze.add_argument("--alpha", type=float, default=1.0,
                         help="add-alpha smoothing of the held-out saturated model toward 1/2 (default 1)")
    analyze.add_argument("--top", type=int, default=10, metavar="N",
                         help="cycles and worst-fitted pairs to list (default 10)")
    analyze.add_argument("--ties", default="half", choices=["half", "drop"],
                         help="ties as half a win for each side (default) or left out")
    analyze.add_argument("--format", default="text", choices=["text", "json"])
    _add_common_options(analyze)
    _add_plugin_commands(sub)
    return parser


# Commands defined in their own modules (light to import: heavy dependencies are imported by the runner).
# Each module has ``add_parser(subparsers)``, which adds its sub-parser(s) and sets the default
# ``runner`` to a function of the parsed arguments returning the text to print.
_PLUGIN_COMMANDS = ("bradley.judge_cli", "bradley.serve.cli")


def _add_plugin_commands(sub: Any) -> None:
    import importlib

    for module_name in _PLUGIN_COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and module_name.startswith(exc.name):
                continue  # that command is not part of this build
            raise
        module.add_parser(sub)


def _add_family_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--order-effect", nargs="?", const="yes", choices=["yes", "annotator"], default=None,
                        help="fit a first-position (home) advantage; 'annotator' fits one per annotator "
                             "(--annotator COL)")
    parser.add_argument("--covariates", default=None, metavar="COL[,COL...]",
                        help="comparison-level covariate columns entering the log-odds (e.g. length difference)")
    parser.add_argument("--flip-rate", type=float, default=None,
                        help="known label-flip probability to correct for (bt)")
    parser.add_argument("--judge-reliability", action="store_true",
                        help="fit a reliability (scale on the score difference) per annotator (--annotator COL)")
    parser.add_argument("--annotator", default=None, metavar="COL", help="annotator / judge column")
    parser.add_argument("--fixed", default=None, metavar="NAME=VALUE[,...]",
                        help="fix parameters at given values and fit the rest, e.g. nu=0.5,order_effect=0.1 "
                             "(names as in the parameter table; natural scale)")
    parser.add_argument("--item-features", default=None, metavar="FILE",
                        help="item features table (first column or an 'item' column names the items): scores become "
                             "x_i . w (+ item effects); coefficients in the parameter table")
    parser.add_argument("--item-effects", default=None, choices=["none", "fixed", "random"],
                        help="with --item-features: no item effects (default), free fixed effects (needs --prior), "
                             "or random effects N(0, sigma^2) with sigma estimated (Laplace)")
    parser.add_argument("--order-column", default=None, metavar="COL",
                        help="with --order-effect: which side had the home / first-position advantage per row: "
                             "1/0/-1, left/neutral/right, or the home item's name (empty = neutral); "
                             "default: the left item in every row")


def _parse_fixed(text: str | None) -> dict[str, float] | None:
    if not text:
        return None
    fixed = {}
    for part in text.split(","):
        name, sep, value = part.strip().rpartition("=")
        try:
            if not sep or not name:
                raise ValueError
            fixed[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"--fixed takes NAME=VALUE pairs separated by commas, got {part.strip()!r}.") from None
    return fixed


def _read_item_features(path: str | None) -> pd.DataFrame | None:
    if path is None:
        return None
    frame = read_table(path)
    key = "item" if "item" in frame.columns else frame.columns[0]
    return frame.set_index(key)


def _needs_pairwise_model(args: argparse.Namespace) -> bool:
    extras = (args.order_effect or args.covariates or args.flip_rate is not None or args.judge_reliability
              or args.fixed or args.item_features)
    return args.model != "bt" or bool(extras)


def _family_estimator(args: argparse.Namespace) -> PairwiseModel | None:
    """The PairwiseModel the options ask for, or None for plain Bradley-Terry."""
    if not _needs_pairwise_model(args):
        return None
    orders: dict[str | None, bool | str] = {"yes": True, "annotator": "annotator", None: False}
    order = orders[args.order_effect]
    return PairwiseModel(family=args.model, order_effect=order, covariates=bool(args.covariates),
                         flip_rate=args.flip_rate, prior=args.prior, judge_reliability=args.judge_reliability,
                         tol=1e-9, item_features=_read_item_features(args.item_features),
                         item_effects=args.item_effects, fixed=_parse_fixed(args.fixed))


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--solver", default="auto",
                        choices=["auto", "newton", "newton-cg", "mm", "zermelo", "newman", "lbfgs"])
    parser.add_argument("--prior", type=float, default=None, metavar="VARIANCE",
                        help="Gaussian prior variance on scores (MAP); makes any data fit")
    parser.add_argument("--bias-reduction", action="store_true",
                        help="Firth bias-reduced Bradley-Terry (as BTm(br = TRUE)): finite, less biased scores for "
                             "items with few comparisons or that never lost (plain bt only; not with --prior)")
    parser.add_argument("--tol", type=float, default=1e-8, help="convergence tolerance (default 1e-8)")
    parser.add_argument("--max-iter", type=int, default=None)


def _bradley_terry(args: argparse.Namespace, anchor: str | tuple[str, float] | None = None) -> BradleyTerry:
    return BradleyTerry(prior=args.prior, solver=args.solver, tol=args.tol, max_iter=args.max_iter, anchor=anchor,
                        bias_reduction=args.bias_reduction)


def _default_ci() -> str:
    """The interval method ``leaderboard()`` uses when none is asked for."""
    return str(inspect.signature(leaderboard).parameters["ci"].default)


def _parse_anchor(text: str | None, option: str = "--anchor", default: float = 1000.0) -> tuple[str, float] | None:
    """``ITEM`` or ``ITEM=VALUE`` -> (item, value); an item name may itself contain '='."""
    if text is None:
        return None
    name, sep, value = text.rpartition("=")
    if sep and name:
        try:
            number = float(value)
        except ValueError:
            number = None
        if number is not None:
            if not math.isfinite(number):
                raise ValueError(f"{option} needs a finite value, got {value!r}.")
            return (name, number)
    return (text, default)


def _elo_to_score(elo: float) -> float:
    return float(from_elo(np.array([elo]))[0])


def _fit_anchor(args: argparse.Namespace) -> tuple[str, float] | None:
    """The model anchor (item, natural-log score) from ``--anchor ITEM=ELO`` or ``--anchor-score ITEM=SCORE``."""
    if args.anchor and args.anchor_score:
        raise ValueError("give --anchor (an Elo rating) or --anchor-score (a natural-log score), not both.")
    if args.anchor_score:
        return _parse_anchor(args.anchor_score, "--anchor-score", default=0.0)
    anchor = _parse_anchor(args.anchor)
    if anchor is None:
        return None
    if abs(anchor[1]) < 100:
        warnings.warn(f"--anchor takes an Elo rating: {anchor[0]} is shown at Elo {anchor[1]:g} (a score of "
                      f"{_elo_to_score(anchor[1]):.4g}); for a natural-log score use --anchor-score "
                      f"{anchor[0]}={anchor[1]:g}.", UserWarning, stacklevel=2)
    return (anchor[0], _elo_to_score(anchor[1]))


def _check_options(args: argparse.Namespace) -> None:
    """Refuse option combinations that would be silently ignored."""
    if getattr(args, "order_column", None) and not getattr(args, "order_effect", None):
        raise ValueError("--order-column says who had the order advantage; it needs --order-effect.")
    if getattr(args, "item_effects", None) and not args.item_features:
        raise ValueError("--item-effects needs --item-features.")
    if getattr(args, "bias_reduction", False) and _needs_pairwise_model(args):
        raise ValueError("--bias-reduction is available for the plain bt model (no tie model, order effect, "
                         "covariates or flip rate).")


_BIG_READ_BYTES = 50 * 2**20


def _load(args: argparse.Namespace) -> tuple[Comparisons, bool]:
    """The comparisons named by the data options, and whether DATA was a count table (one read of the file).

    A directory, a glob or a large Parquet file is reduced out of core to pair
    counts (:func:`bradley.aggregate.aggregate_for_cli`). ``bradley fit`` then
    needs only the likelihood (weighted pair rows); the other commands count
    observations (intervals, bootstrap, folds), so they get one row per game,
    as from the file itself.
    """
    started = time.perf_counter()
    pairs = _aggregate(args)
    if pairs is not None:
        cells = np.concatenate([pairs.wins_first, pairs.wins_second, pairs.ties])
        per_game = getattr(args, "command", None) != "fit" and bool(np.all(cells == np.round(cells)))
        return pairs.to_comparisons(frequencies=per_game), False
    size = os.path.getsize(args.data) if os.path.isfile(args.data) else 0
    announce = bool(args.progress) and size >= _BIG_READ_BYTES
    if announce:
        print(f"bradley: reading {args.data} ({size / 2**20:,.0f} MiB) ...", file=sys.stderr, flush=True)
    table_options: dict[str, Any] = {k: v for k, v in (("sep", args.sep), ("header", args.header),
                                                        ("names", _split(args.names))) if v is not None}
    frame = read_table(args.data, args.input_format, **table_options)
    reading = {k: v for k, v in (("outcome_map", args.outcome_map), ("left_score", args.left_score),
                                 ("right_score", args.right_score), ("where", args.where)) if v is not None}
    counts = bool(args.counts) or is_count_table([str(c) for c in frame.columns], args.win1, args.win2)
    data = read_comparisons(
        frame,
        left=args.left,
        right=args.right,
        outcome=args.outcome,
        winner=args.winner,
        loser=args.loser,
        weight=args.weight,
        drop_self_comparisons=args.drop_self_comparisons,
        both_bad=args.both_bad,
        annotator=getattr(args, "annotator", None) or getattr(args, "cluster", None),
        features=[c.strip() for c in args.covariates.split(",")] if getattr(args, "covariates", None) else None,
        order=getattr(args, "order_column", None),
        counts=counts,
        win1=args.win1,
        win2=args.win2,
        tie=args.tie,
        **reading,
    )
    if announce:
        print(f"bradley: read {len(data):,} comparisons in {time.perf_counter() - started:.1f} s",
              file=sys.stderr, flush=True)
    return data, counts


def _split(text: str | None) -> list[str] | None:
    return None if text is None else [part.strip() for part in text.split(",") if part.strip()]


def _read(args: argparse.Namespace) -> Comparisons:
    return _load(args)[0]


def _aggregate(args: argparse.Namespace) -> PairCounts | None:
    """Pair counts when DATA is read out of core (directory, glob, large Parquet), else None."""
    started = time.perf_counter()
    from bradley.aggregate import aggregate_for_cli

    pairs = aggregate_for_cli(args)
    if pairs is not None and args.progress:
        games = float(pairs.wins_first.sum() + pairs.wins_second.sum() + pairs.ties.sum())
        print(f"bradley: aggregated {args.data} to {pairs.n_pairs:,} pairs ({games:,.0f} comparisons) in "
              f"{time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return pairs


_MODEL_NAMES = {"bt": "bradley-terry", "davidson": "davidson", "rao-kupper": "rao-kupper", "tobt": "tobt"}


def _run_fit(args: argparse.Namespace) -> str:
    if args.model == "plackett-luce":
        if args.anchor or args.anchor_score:
            raise ValueError("--anchor is available for the pairwise models; Plackett-Luce scores are mean-zero.")
        rankings = read_rankings(args.data, layout=args.layout, ranking=args.ranking_col, item=args.item_col,
                                 rank=args.rank_col, format=args.input_format, id=args.id_col)
        solver = "mm" if args.solver in ("mm", "zermelo") else "newton"
        ranking_model = PlackettLuce(solver=solver, prior=args.prior, ties=args.ties, tol=args.tol,
                                     max_iter=args.max_iter).fit(rankings)
        return render_fit(ranking_model, args.format, model_name="plackett-luce")
    family = _family_estimator(args)
    if family is None:
        # Out of core, the plain model is fitted on the pair counts themselves (games counted as games).
        pairs = _aggregate(args)
        bt_model = _bradley_terry(args, anchor=_fit_anchor(args)).fit(pairs if pairs is not None else _read(args))
        return render_fit(bt_model, args.format)
    data = _read(args)
    if args.anchor or args.anchor_score:
        raise ValueError("--anchor is available in `bradley fit` for the plain bt model (scores of the other models "
                         "are mean-zero); `bradley leaderboard --anchor ITEM=ELO` shifts the ratings of any model.")
    return render_fit(family.fit(data), args.format, model_name=_MODEL_NAMES[args.model])


def _run_leaderboard(args: argparse.Namespace) -> str:
    if args.cluster and args.annotator and args.cluster != args.annotator:
        raise ValueError("--cluster and --annotator must name the same column (clusters are read as annotators).")
    columns = parse_columns(args.columns)
    if args.top is not None and args.top < 1:
        raise ValueError(f"--top needs a positive number of items, got {args.top}.")
    data, count_table = _load(args)
    ci = args.ci or _default_ci()
    if ci == "bootstrap" and count_table and data.weight is not None:
        raise ValueError("the count table has non-integer counts, so its rows are weighted pairs, not single "
                         "comparisons, and a row bootstrap would not resample comparisons; use --ci fisher or "
                         "sandwich.")
    family = _family_estimator(args)
    options: dict[str, Any] = {}
    if args.ci is not None:
        options["ci"] = args.ci
    if args.min_battles is not None:
        options["min_battles"] = args.min_battles
    board = leaderboard(
        data,
        model=family or _bradley_terry(args),
        level=args.level,
        rounds=args.rounds,
        seed=args.seed,
        cluster="annotator" if args.cluster else None,
        anchor=_parse_anchor(args.anchor),
        progress=bool(args.progress),
        **options,
    )
    name = _MODEL_NAMES[args.model]
    if args.html:
        page = leaderboard_html(board, title=args.title, top=args.top, columns=columns)
        with open(args.html, "w", encoding="utf-8") as f:
            f.write(page)
    return render_leaderboard(board, args.format, columns=columns, top=args.top, model_name=name)


def _run_compare(args: argparse.Namespace) -> str:
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    data = _read(args)
    if args.progress:
        print(f"bradley: fitting {len(methods)} methods on {args.folds} folds of {len(data):,} comparisons ...",
              file=sys.stderr, flush=True)
    table = compare_methods(data, methods=methods, folds=args.folds, seed=args.seed, elo_k=args.elo_k,
                            split=args.split)
    if args.format == "json":
        return table.to_json(orient="records", indent=2)
    return render_summary(table, args.format)


def _run_analyze(args: argparse.Namespace) -> str:
    from bradley.diagnostics import analyze

    if args.top < 0:
        raise ValueError(f"--top needs a non-negative number, got {args.top}.")
    report = analyze(_read(args), folds=args.folds, seed=args.seed, alpha=args.alpha, top=args.top, ties=args.ties)
    return report.to_json() if args.format == "json" else report.to_text()


# Python argument names in library messages -> the command-line options a CLI user types
_OPTION_NAMES = {
    "prior": "--prior", "bias_reduction": "--bias-reduction", "drop_self_comparisons": "--drop-self-comparisons",
    "fixed": "--fixed", "family": "--model", "order_effect": "--order-effect", "item_effects": "--item-effects",
    "item_features": "--item-features", "covariates": "--covariates", "flip_rate": "--flip-rate",
    "judge_reliability": "--judge-reliability", "ci": "--ci", "solver": "--solver", "tol": "--tol",
    "max_iter": "--max-iter", "ties": "--ties", "level": "--level", "rounds": "--rounds", "seed": "--seed",
    "min_battles": "--min-battles", "anchor": "--anchor", "both_bad": "--both-bad", "layout": "--layout",
    "methods": "--methods", "folds": "--folds", "elo_k": "--elo-k", "counts": "--counts",
    "outcome_map": "--outcome-map", "left_score": "--left-score", "right_score": "--right-score",
    "sep": "--sep", "where": "--where", "cluster": "--cluster", "header": "--header", "names": "--names",
}
_VALUE = r"(\{[^{}]*\}|'[^']*'|\"[^\"]*\"|\.\.\.|[-+\w]+(?:\.\w+)*)"
_KWARG = re.compile(r"\b(" + "|".join(sorted(_OPTION_NAMES, key=len, reverse=True)) + r")=" + _VALUE)
_CALL = re.compile(r"\b[A-Z]\w*\((\s*(?:" + "|".join(_OPTION_NAMES) + r")=[^()]*)\)")


_BOTH = re.compile(r"(?:\b[A-Z]\w*\([^()]*\)|\b\w+=\S+?) \(CLI: ([^()]*)\)")


def _option_text(match: re.Match[str]) -> str:
    name, value = match.group(1), match.group(2)
    option = _OPTION_NAMES[name]
    if name == "fixed":
        return f"{option} NAME=VALUE"
    if name == "family" and value.strip("'\"") != "bt":
        return f"{option} {value.strip(chr(39) + chr(34))}"
    if value == "True":
        return option
    if value == "False":
        return f"no {option}"
    if value == "...":
        return f"{option} VALUE"
    value = value.strip("'\"")
    try:
        number = float(value)
    except ValueError:
        return f"{option} {value}"
    return f"{option} {number:g}" if math.isfinite(number) else f"{option} {value}"


def cli_words(message: str) -> str:
    """A library message in command-line words: ``prior=10.0`` -> ``--prior 10``,
    ``BradleyTerry(bias_reduction=True)`` -> ``--bias-reduction``, ``fixed={...}`` -> ``--fixed NAME=VALUE``.

    Examples
    --------
    >>> cli_words("Use a prior (prior=10.0) or BradleyTerry(bias_reduction=True).")
    'Use a prior (--prior 10) or --bias-reduction.'
    >>> cli_words("e.g. BradleyTerry(prior=10.0) (CLI: --prior 10), or x")
    'e.g. --prior 10, or x'
    """
    message = _BOTH.sub(lambda m: m.group(1), message)  # "Python (CLI: --option)": keep the CLI words
    message = _CALL.sub(lambda m: m.group(1).strip(), message)
    return _KWARG.sub(_option_text, message)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bradley`` command; returns the exit code.

    Bad input or options: exit code 2 and one line on stderr, in command-line
    words; out of memory: 1; interrupted (Ctrl-C): 130. ``--debug`` (before or
    after the command) shows the traceback instead.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    if args.progress is None:
        args.progress = _stderr_is_terminal()

    def show_warning(message: Any, category: Any, filename: Any, lineno: Any, file: Any = None,
                     line: Any = None) -> None:
        print(f"bradley: warning: {cli_words(str(message))}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show_warning
        try:
            _check_options(args)
            runners = {"fit": _run_fit, "leaderboard": _run_leaderboard, "compare": _run_compare,
                       "analyze": _run_analyze}
            runner = runners.get(args.command) or args.runner
            output = runner(args)
        except (BradleyError, ValueError, OSError) as exc:
            if debug:
                raise
            message = cli_words(" ".join(str(exc).split()))
            print(f"bradley: error: {message}", file=sys.stderr)
            return 2
        except MemoryError:
            if debug:
                raise
            print("bradley: error: out of memory (the data or the requested computation is too large for this "
                  "machine; try fewer items, --ci fisher, or fewer --rounds).", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            if debug:
                raise
            print("bradley: interrupted", file=sys.stderr)
            return 130
    try:
        sys.stdout.write(output if output.endswith("\n") else output + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. `bradley leaderboard ... | head`: the reader has gone, not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 0


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
