"""``bradley judge train|rank``: the surrogate judge on the command line (light to import)."""

from __future__ import annotations

import argparse
import warnings
from typing import Any

__all__ = ["add_parser"]


def _add_columns(parser: argparse.ArgumentParser) -> None:
    cols = parser.add_argument_group("columns")
    cols.add_argument("--prompt", default="question_id", metavar="COL",
                      help="prompt column of the battles and the feature table (default question_id)")
    cols.add_argument("--system", default="model", metavar="COL",
                      help="system column of the feature table (default model)")
    cols.add_argument("--left", default="model_a", metavar="COL", help="first system of a battle (default model_a)")
    cols.add_argument("--right", default="model_b", metavar="COL", help="second system (default model_b)")
    cols.add_argument("--outcome", default="outcome", metavar="COL",
                      help="outcome column: 1/0/0.5 for the first system, or model_a/model_b/tie labels "
                           "(default outcome)")


def add_parser(subparsers: Any) -> None:
    """Add ``bradley judge train BATTLES --features F --out J`` and ``bradley judge rank J --features F``."""
    judge = subparsers.add_parser(
        "judge", help="surrogate judge: learn a teacher's pairwise verdicts from per-response features",
        description="Train a cheap pairwise judge on per-response numeric features (one row per prompt and "
                    "system) to imitate a teacher's verdicts, then rank systems with it.")
    sub = judge.add_subparsers(dest="judge_command", metavar="{train,rank}", required=True)

    train = sub.add_parser("train", help="fit the judge, print cross-validated metrics, write the judge file",
                           description="Fit a judge on standardised features z = (f - mean) / sd: d = w . (z_a - z_b), "
                                       "P(a wins) = e^(d/2) / (e^(d/2) + e^(-d/2) + nu) with Davidson ties "
                                       "(default) or sigmoid(d) with --ties none, ridge penalty --alpha, to the "
                                       "teacher's battles; print the coefficients and K-fold cross-validation by "
                                       "prompt; write the judge as JSON.")
    train.add_argument("battles", help="teacher battles: CSV, TSV, JSONL or Parquet (optionally .gz)")
    train.add_argument("--features", required=True, metavar="FILE",
                       help="feature table: one row per (prompt, system) with numeric columns")
    train.add_argument("--out", required=True, metavar="JUDGE.json", help="where to write the judge")
    train.add_argument("--folds", type=int, default=5, help="cross-validation folds by prompt (default 5; 0 = none)")
    train.add_argument("--columns", default=None, metavar="COL[,COL...]",
                       help="feature columns to use (default: every numeric column but the keys)")
    train.add_argument("--alpha", type=float, default=1.0, help="ridge penalty on the coefficients (default 1; 0 = "
                       "none, which diverges with a warning when the features separate the verdicts)")
    train.add_argument("--ties", choices=["davidson", "none"], default="davidson",
                       help="model ties with Davidson's nu, or count them as half a win (default davidson)")
    train.add_argument("--seed", type=int, default=0, help="seed of the fold assignment (default 0)")
    _add_columns(train)
    train.set_defaults(runner=_run_train)

    rank = sub.add_parser("rank", help="synthetic leaderboard from a trained judge",
                          description="Rank the systems of a feature table with a trained judge (a Bradley-Terry "
                                      "fit on its predictions over all pairs of systems per prompt); with "
                                      "--teacher, compare with the teacher's leaderboard.")
    rank.add_argument("judge", metavar="JUDGE.json", help="a judge file written by `bradley judge train`")
    rank.add_argument("--features", required=True, metavar="FILE",
                      help="feature table: one row per (prompt, system) with the judge's feature columns")
    rank.add_argument("--teacher", default=None, metavar="BATTLES",
                      help="teacher battles (columns as the judge was trained with): print Kendall tau and "
                           "rank-interval overlap")
    rank.add_argument("--level", type=float, default=0.95, help="interval level (default 0.95)")
    rank.set_defaults(runner=_run_rank)


def _fmt(table: Any) -> str:
    return str(table.to_string(index=False, float_format=lambda x: f"{x:.4f}"))


def _read(path: str, what: str) -> Any:
    from bradley.io import read_table

    try:
        return read_table(path)
    except FileNotFoundError:
        raise ValueError(f"{what} file {path!r} does not exist") from None


def _run_train(args: argparse.Namespace) -> str:
    from bradley.errors import ConvergenceWarning
    from bradley.judge import SurrogateJudge, cross_validate_judge

    if args.folds == 1 or args.folds < 0:
        raise ValueError(f"--folds must be 0 (no cross-validation) or at least 2, got {args.folds}")
    battles = _read(args.battles, "battles")
    features = _read(args.features, "feature")
    columns = [c.strip() for c in args.columns.split(",")] if args.columns else None
    judge = SurrogateJudge(features=columns, alpha=args.alpha, ties=args.ties, prompt=args.prompt,
                           system=args.system, left=args.left, right=args.right, outcome=args.outcome)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        judge.fit(battles, features)
    notes = [f"warning: {w.message}" for w in caught if issubclass(w.category, ConvergenceWarning)]
    lines = notes + [f"surrogate judge: {judge.n_battles_} battles, {len(judge.feature_names_)} features, "
             f"ties={args.ties}, alpha={args.alpha:g}, converged={judge.converged_} ({judge.n_iter_} iterations)",
             "", _fmt(judge.coefficients())]
    if args.ties == "davidson":
        lines.append(f"tie parameter nu = {judge.nu_:.4f}")
    if args.folds:
        cv = cross_validate_judge(judge, battles, features, folds=args.folds, seed=args.seed)
        lines += ["", f"cross-validation by prompt ({args.folds} folds):", _fmt(cv)]
    judge.save(args.out)
    lines += ["", f"judge written to {args.out}"]
    return "\n".join(lines)


def _run_rank(args: argparse.Namespace) -> str:
    from bradley.judge import SurrogateJudge, compare_leaderboards, teacher_leaderboard

    if not 0 < args.level < 1:
        raise ValueError(f"--level must be in (0, 1), got {args.level}")
    try:
        judge = SurrogateJudge.load(args.judge)
    except FileNotFoundError:
        raise ValueError(f"judge file {args.judge!r} does not exist") from None
    features = _read(args.features, "feature")
    board = judge.rank(features, level=args.level)
    cols = ["rank", "item", "score", "ci_low", "ci_high", "rank_low", "rank_high"]
    clusters = f" clustered by prompt ({board.ci['clusters']} prompts)" if board.ci.get("clusters") else ""
    lines = [f"synthetic leaderboard ({len(board.table)} systems; {board.ci['method']}{clusters} intervals, "
             f"level {args.level:g}):", _fmt(board.table[cols])]
    if args.teacher:
        teacher = teacher_leaderboard(_read(args.teacher, "teacher"), left=judge.left, right=judge.right,
                                      outcome=judge.outcome, level=args.level)
        agree = compare_leaderboards(board, teacher)
        lines += ["", "teacher leaderboard:", _fmt(teacher.table[cols]), "",
                  f"Kendall tau = {agree['kendall_tau']:.4f} (p = {agree['p_value']:.4g}), "
                  f"rank-interval overlap = {agree['interval_overlap']:.4f}, "
                  f"same leader = {'yes' if agree['top1_agree'] else 'no'}, systems = {int(agree['n_systems'])}"]
    return "\n".join(lines)
