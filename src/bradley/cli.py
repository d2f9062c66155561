"""The ``bradley`` command line: thin wrappers over the public API."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from bradley import __version__
from bradley.errors import BradleyError
from bradley.io import read_comparisons
from bradley.models import BradleyTerry
from bradley.report import FORMATS, render_fit

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
    cols.add_argument("--drop-self-comparisons", action="store_true",
                      help="drop rows comparing an item with itself (the count is reported) instead of failing")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``bradley`` command."""
    parser = argparse.ArgumentParser(prog="bradley", description="Rank things from pairwise comparisons.")
    parser.add_argument("--version", action="version", version=f"bradley {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)

    fit = sub.add_parser("fit", help="fit a Bradley-Terry model and print the ranking")
    _add_data_options(fit)
    fit.add_argument("--solver", default="auto", choices=["auto", "newton", "newton-cg", "mm", "zermelo", "newman", "lbfgs"])
    fit.add_argument("--prior", type=float, default=None, metavar="VARIANCE",
                     help="Gaussian prior variance on scores (MAP); makes any data fit")
    fit.add_argument("--tol", type=float, default=1e-8, help="gradient tolerance (default 1e-8)")
    fit.add_argument("--max-iter", type=int, default=None)
    fit.add_argument("--anchor", default=None, metavar="ITEM[=VALUE]", help="report scores with ITEM fixed at VALUE (default 0)")
    fit.add_argument("--format", default="table", choices=FORMATS)
    fit.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    return parser


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


def _run_fit(args: argparse.Namespace) -> str:
    comparisons = read_comparisons(
        args.data,
        left=args.left,
        right=args.right,
        outcome=args.outcome,
        winner=args.winner,
        loser=args.loser,
        weight=args.weight,
        format=args.input_format,
        drop_self_comparisons=args.drop_self_comparisons,
    )
    model = BradleyTerry(
        prior=args.prior, solver=args.solver, tol=args.tol, max_iter=args.max_iter, anchor=_parse_anchor(args.anchor)
    ).fit(comparisons)
    return render_fit(model, args.format)


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
            output = _run_fit(args)
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
