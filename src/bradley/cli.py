"""The ``bradley`` command line: thin wrappers over the public API."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

import pandas as pd

from bradley import __version__
from bradley.errors import BradleyError
from bradley.data import Comparisons
from bradley.io import is_count_table, read_comparisons, read_table
from bradley.evaluate import METHODS, compare_methods
from bradley.leaderboard import CI_METHODS, leaderboard
from bradley.models import BradleyTerry, PairwiseModel, PlackettLuce
from bradley.rankings import read_rankings
from bradley.report import FORMATS, render_fit, render_summary

__all__ = ["main", "build_parser"]


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", help="comparison file: CSV, TSV, JSONL, Parquet (optionally .gz), or 'winner loser' .txt")
    cols = parser.add_argument_group("columns (default: arena format model_a/model_b/winner, or left/right/outcome)")
    cols.add_argument("--left", help="column with the first item")
    cols.add_argument("--right", help="column with the second item")
    cols.add_argument("--outcome", help="outcome column: 1/0/0.5, left/right/tie, arena labels, or the winner's name")
    cols.add_argument("--winner", help="column with the winner's name (with --loser: one decisive game per row)")
    cols.add_argument("--loser", help="column with the loser's name")
    cols.add_argument("--weight", help="column with non-negative row weights")
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``bradley`` command."""
    parser = argparse.ArgumentParser(prog="bradley", description="Rank things from pairwise comparisons.")
    parser.add_argument("--version", action="version", version=f"bradley {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)

    fit = sub.add_parser("fit", help="fit a Bradley-Terry-family model and print the ranking")
    _add_data_options(fit)
    _add_model_options(fit)
    fit.add_argument("--model", default="bt", choices=["bt", "davidson", "rao-kupper", "tobt", "plackett-luce"],
                     help="bt (ties as half wins); a tie model: davidson, rao-kupper, tobt; or plackett-luce for rankings")
    fit.add_argument("--layout", default="long", choices=["long", "wide", "matrix"],
                     help="rankings file layout for plackett-luce: long (ranking_id,item,rank), wide (items best "
                          "first across the columns) or matrix (one column per item holding its rank; 0/empty = absent)")
    fit.add_argument("--id-col", default=None, metavar="COL",
                     help="ranking id column in the wide and matrix layouts (default: a 'ranking' or 'ranking_id' column)")
    fit.add_argument("--ties", default="breslow", choices=["breslow", "davidson-luce"],
                     help="plackett-luce ties: Breslow's approximation, or Davidson-Luce (a tie parameter per tie order)")
    fit.add_argument("--ranking-col", default="ranking_id", help="ranking id column (long layout)")
    fit.add_argument("--item-col", default="item", help="item column (long layout)")
    fit.add_argument("--rank-col", default="rank", help="rank column (long layout; equal ranks are ties)")
    _add_family_options(fit)
    fit.add_argument("--anchor", default=None, metavar="ITEM[=VALUE]", help="report scores with ITEM fixed at VALUE (default 0)")
    fit.add_argument("--format", default="table", choices=FORMATS)
    fit.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)

    board = sub.add_parser("leaderboard", help="a leaderboard with confidence intervals, rank ranges and tiers")
    _add_data_options(board)
    _add_model_options(board)
    board.add_argument("--model", default="bt", choices=["bt", "davidson", "rao-kupper", "tobt"],
                       help="bt (ties as half wins) or a tie model")
    _add_family_options(board)
    board.add_argument("--ci", default="fisher", choices=CI_METHODS, help="interval method (default fisher)")
    board.add_argument("--level", type=float, default=0.95, help="confidence level (default 0.95)")
    board.add_argument("--rounds", type=int, default=1000, help="bootstrap rounds (default 1000)")
    board.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    board.add_argument("--cluster", default=None, metavar="COL",
                       help="column of cluster labels (e.g. annotator) for sandwich errors or cluster bootstrap")
    board.add_argument("--anchor", default=None, metavar="ITEM=ELO", help="shift the Elo scale so ITEM has rating ELO")
    board.add_argument("--html", default=None, metavar="PATH", help="also write a self-contained HTML report")
    board.add_argument("--format", default="table", choices=FORMATS)
    board.add_argument("--progress", action="store_true", help="show a progress bar for the bootstrap")
    board.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)

    compare = sub.add_parser("compare", help="compare rating methods by k-fold held-out log-loss, accuracy and calibration")
    _add_data_options(compare)
    compare.add_argument("--methods", default="bt,davidson,elo,trueskill,winrate",
                         help="comma-separated methods: " + ", ".join(sorted(METHODS)))
    compare.add_argument("--folds", type=int, default=5)
    compare.add_argument("--seed", type=int, default=0)
    compare.add_argument("--elo-k", type=float, default=4.0, help="Elo K factor (default 4)")
    compare.add_argument("--format", default="table", choices=FORMATS)
    compare.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    return parser


def _add_family_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--order-effect", nargs="?", const="yes", choices=["yes", "annotator"], default=None,
                        help="fit a first-position (home) advantage; 'annotator' fits one per annotator (--annotator COL)")
    parser.add_argument("--covariates", default=None, metavar="COL[,COL...]",
                        help="comparison-level covariate columns entering the log-odds (e.g. length difference)")
    parser.add_argument("--flip-rate", type=float, default=None, help="known label-flip probability to correct for (bt)")
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
    order = {"yes": True, "annotator": "annotator", None: False}[args.order_effect]
    return PairwiseModel(family=args.model, order_effect=order, covariates=bool(args.covariates),
                         flip_rate=args.flip_rate, prior=args.prior, judge_reliability=args.judge_reliability,
                         tol=1e-9, item_features=_read_item_features(args.item_features),
                         item_effects=args.item_effects, fixed=_parse_fixed(args.fixed))


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--solver", default="auto", choices=["auto", "newton", "newton-cg", "mm", "zermelo", "newman", "lbfgs"])
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


def _parse_anchor(text: str | None) -> str | tuple[str, float] | None:
    if text is None:
        return None
    name, sep, value = text.rpartition("=")
    if not sep:
        return text
    try:
        return (name, float(value))
    except ValueError:
        return text


def _check_options(args: argparse.Namespace) -> None:
    """Refuse option combinations that would be silently ignored."""
    if getattr(args, "order_column", None) and not getattr(args, "order_effect", None):
        raise ValueError("--order-column says who had the order advantage; it needs --order-effect.")
    if getattr(args, "item_effects", None) and not args.item_features:
        raise ValueError("--item-effects needs --item-features.")
    if getattr(args, "bias_reduction", False) and _needs_pairwise_model(args):
        raise ValueError("--bias-reduction is available for the plain bt model (no tie model, order effect, "
                         "covariates or flip rate).")


def _load(args: argparse.Namespace) -> tuple[Comparisons, bool]:
    """The comparisons named by the data options, and whether DATA was a count table (one read of the file)."""
    frame = read_table(args.data, args.input_format)
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
    )
    return data, counts


def _read(args: argparse.Namespace) -> Comparisons:
    return _load(args)[0]


def _run_fit(args: argparse.Namespace) -> str:
    if args.model == "plackett-luce":
        rankings = read_rankings(args.data, layout=args.layout, ranking=args.ranking_col, item=args.item_col,
                                 rank=args.rank_col, format=args.input_format, id=args.id_col)
        solver = "mm" if args.solver in ("mm", "zermelo") else "newton"
        model = PlackettLuce(solver=solver, prior=args.prior, ties=args.ties, tol=args.tol,
                             max_iter=args.max_iter).fit(rankings)
        return render_fit(model, args.format, model_name="plackett-luce")
    data = _read(args)
    family = _family_estimator(args)
    if family is None:
        model = _bradley_terry(args, anchor=_parse_anchor(args.anchor)).fit(data)
        return render_fit(model, args.format)
    if args.anchor:
        raise ValueError("--anchor is available for the plain bt model; scores of other models are mean-zero.")
    model = family.fit(data)
    name = {"bt": "bradley-terry", "davidson": "davidson", "rao-kupper": "rao-kupper", "tobt": "tobt"}[args.model]
    return render_fit(model, args.format, model_name=name)


def _run_leaderboard(args: argparse.Namespace) -> str:
    if args.cluster and args.annotator and args.cluster != args.annotator:
        raise ValueError("--cluster and --annotator must name the same column (clusters are read as annotators).")
    data, count_table = _load(args)
    if args.ci == "bootstrap" and count_table and data.weight is not None:
        raise ValueError("the count table has non-integer counts, so its rows are weighted pairs, not single "
                         "comparisons, and a row bootstrap would not resample comparisons; use --ci fisher or sandwich.")
    family = _family_estimator(args)
    board = leaderboard(
        data,
        model=family or _bradley_terry(args),
        ci=args.ci,
        level=args.level,
        rounds=args.rounds,
        seed=args.seed,
        cluster="annotator" if args.cluster else None,
        anchor=args.anchor,
        progress=args.progress,
    )
    if args.html:
        board.to_html(args.html)
    if args.format == "json":
        return board.to_json()
    if args.format == "csv":
        return board.to_csv()
    if args.format == "markdown":
        return board.to_markdown()
    return board.to_text()


def _run_compare(args: argparse.Namespace) -> str:
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    table = compare_methods(_read(args), methods=methods, folds=args.folds, seed=args.seed, elo_k=args.elo_k)
    if args.format == "json":
        return table.to_json(orient="records", indent=2)
    return render_summary(table, args.format)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bradley`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False))

    def show_warning(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
        print(f"bradley: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show_warning
        try:
            _check_options(args)
            runners = {"fit": _run_fit, "leaderboard": _run_leaderboard, "compare": _run_compare}
            output = runners[args.command](args)
        except (BradleyError, ValueError, OSError) as exc:
            if debug:
                raise
            message = " ".join(str(exc).split())
            print(f"bradley: error: {message}", file=sys.stderr)
            return 2
    sys.stdout.write(output if output.endswith("\n") else output + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
