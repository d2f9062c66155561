"""Style control: per-response style features and the style-controlled leaderboard.

LMArena's style control (Li et al. 2024, "Does style matter? Disentangling
style and substance in Chatbot Arena") adds, to the Bradley-Terry log-odds of
a battle, a linear term in the *normalised differences* of the two responses'
style features::

    logit P(a beats b) = s_a - s_b + beta . z(a, b),
    z_k(a, b) = (f_k(a) - f_k(b)) / (f_k(a) + f_k(b))      (0 when both are 0)

standardised over the battles. The features are the response length and the
counts of markdown headers, list items and bold spans. The scores ``s`` are
then "what is left once style is accounted for", and ``beta`` says how much
each style feature sways the votes.

Here the model is the package's :class:`~bradley.PairwiseModel` with
``covariates=True`` (the comparison-level covariates of
:class:`~bradley.Comparisons`): no separate solver. The plain and the
style-controlled leaderboards come out side by side with the coefficient table.

Length is counted in **characters** by default (``length_unit="words"``
counts whitespace-separated words); arena counts tokens of a tokenizer, which
the normalised difference makes nearly unit-free.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ._response_features import check_feature_table, feature_columns, lookup_rows
from .errors import ComparisonDataError
from .io import read_comparisons
from .leaderboard import Leaderboard, leaderboard
from .models.pairwise import PairwiseModel

__all__ = [
    "STYLE_FEATURES",
    "StyleControlResult",
    "battle_style_differences",
    "style_controlled_leaderboard",
    "style_features",
]

#: the style features of :func:`style_features`, in arena's order
STYLE_FEATURES = ("length", "headers", "lists", "bold")

_HEADER = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+\S", re.M)
_LIST = re.compile(r"^[ \t]*(?:[-*+\u2022]|\d{1,3}[.)])[ \t]+\S", re.M)
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__", re.S)
_CODE_BLOCK = re.compile(r"```.*?(?:```|\Z)", re.S)


def style_features(texts: Iterable[str], *, length_unit: str = "chars") -> pd.DataFrame:
    """Style features of each response, as arena's style control counts them.

    Parameters
    ----------
    texts : iterable of str
        The responses (None or NaN counts as the empty text).
    length_unit : {"chars", "words"}
        ``length`` in characters (default) or whitespace-separated words.

    Returns
    -------
    pandas.DataFrame
        One row per text: ``length``; ``headers`` (markdown header lines,
        ``#`` to ``######``); ``lists`` (list-item lines: ``-``, ``*``,
        ``+``, ``•`` bullets and ``1.`` / ``1)`` numbers); ``bold``
        (``**...**`` or ``__...__`` spans). Markdown inside fenced code
        blocks is not counted (the length is).

    Examples
    --------
    >>> style_features(["# Title\\n- one\\n- **two**", "plain"])
       length  headers  lists  bold
    0      23        1      2     1
    1       5        0      0     0
    """
    if length_unit not in ("chars", "words"):
        raise ValueError(f"length_unit must be 'chars' or 'words', got {length_unit!r}.")
    rows = []
    for text in texts:
        t = "" if text is None or (isinstance(text, float) and np.isnan(text)) else str(text)
        prose = _CODE_BLOCK.sub("", t)
        length = len(t) if length_unit == "chars" else len(t.split())
        rows.append((length, len(_HEADER.findall(prose)), len(_LIST.findall(prose)), len(_BOLD.findall(prose))))
    return pd.DataFrame(rows, columns=list(STYLE_FEATURES), dtype=np.int64)


def _lookup(battles: pd.DataFrame, features: pd.DataFrame, prompt: str | None, side: str, system: str,
            columns: Sequence[str]) -> np.ndarray:
    """Feature rows of each battle's ``side`` response (by prompt and system, keys as strings)."""
    keys = [system] if prompt is None else [prompt, system]
    idx = lookup_rows(features, keys, battles, [side] if prompt is None else [prompt, side], side)
    values = features[list(columns)].to_numpy(dtype=np.float64)[idx]
    missing = ~np.isfinite(values).all(axis=1)
    if missing.any():
        rows = np.flatnonzero(missing)[:10].tolist()
        raise ComparisonDataError(
            f"{int(missing.sum())} battles have missing or infinite {side} features, e.g. rows {rows}; "
            f"give finite features for every response in the battles.", rows=rows)
    return np.asarray(values)


def battle_style_differences(
    battles: pd.DataFrame,
    features: pd.DataFrame,
    *,
    prompt: str | None = "question_id",
    left: str = "model_a",
    right: str = "model_b",
    system: str = "model",
    columns: Sequence[str] | None = None,
    normalise: bool = True,
    standardise: bool = True,
) -> pd.DataFrame:
    """Per-battle style covariates from per-response features.

    Parameters
    ----------
    battles : DataFrame
        One row per battle with the ``prompt`` column (None: features are per
        system only) and the ``left`` and ``right`` system columns.
    features : DataFrame
        One row per (prompt, system): the ``prompt`` and ``system`` columns
        and numeric feature columns (non-negative counts when ``normalise``).
    columns : sequence of str, optional
        Feature columns to use (default: :data:`STYLE_FEATURES` present in
        ``features``, else every numeric column but the keys).
    normalise : bool
        ``(a - b) / (a + b)`` (0 where both are 0), as arena; else ``a - b``.
    standardise : bool
        Centre and scale each difference to unit standard deviation over the
        battles (arena does this, so the coefficients are per standard
        deviation); a constant column is left at 0.

    Returns
    -------
    pandas.DataFrame
        One column per feature, aligned with ``battles`` (same index).

    Examples
    --------
    >>> battles = pd.DataFrame({"question_id": [1, 1], "model_a": ["x", "y"], "model_b": ["y", "x"]})
    >>> feats = pd.DataFrame({"question_id": [1, 1], "model": ["x", "y"], "length": [30, 10]})
    >>> battle_style_differences(battles, feats, standardise=False)
       length
    0     0.5
    1    -0.5
    """
    keys = ([prompt] if prompt else []) + [system]
    cols = feature_columns(features, columns, keys, preferred=STYLE_FEATURES)
    check_feature_table(features, keys, cols, finite=False)  # non-finite values: only those of used rows matter
    a = _lookup(battles, features, prompt, left, system, cols)
    b = _lookup(battles, features, prompt, right, system, cols)
    if normalise:
        if (a < 0).any() or (b < 0).any():
            raise ComparisonDataError("normalise=True needs non-negative features (counts, lengths); "
                                      "use normalise=False for signed features.")
        total = a + b
        diff = np.divide(a - b, total, out=np.zeros_like(total), where=total > 0)
    else:
        diff = a - b
    if standardise:
        sd = diff.std(axis=0)
        diff = np.where(sd > 0, (diff - diff.mean(axis=0)) / np.where(sd > 0, sd, 1.0), 0.0)
    return pd.DataFrame(diff, columns=list(cols), index=battles.index)


@dataclass
class StyleControlResult:
    """The plain and the style-controlled leaderboards with the style coefficients.

    Attributes
    ----------
    table : DataFrame
        One row per system, ordered by the style-controlled score: ``item``,
        ``score``, ``ci_low``, ``ci_high``, ``rank``, ``rank_low``,
        ``rank_high`` (style-controlled) and the same with a ``plain_``
        prefix, plus ``rank_change`` (plain rank - controlled rank; positive
        = the system rises once style is controlled).
    coefficients : DataFrame
        The style coefficients (``estimate``, ``se``, ``z``, ``p_value``,
        ``ci_low``, ``ci_high``), per standard deviation of the normalised
        difference when standardised: the change in log-odds of winning.
    plain, controlled : Leaderboard
        The two full leaderboards.
    """

    table: pd.DataFrame
    coefficients: pd.DataFrame
    plain: Leaderboard
    controlled: Leaderboard

    def summary(self) -> pd.DataFrame:
        """The side-by-side table (:attr:`table`)."""
        return self.table


def style_controlled_leaderboard(
    battles: pd.DataFrame,
    features: pd.DataFrame,
    *,
    prompt: str | None = "question_id",
    left: str = "model_a",
    right: str = "model_b",
    outcome: str = "outcome",
    system: str = "model",
    columns: Sequence[str] | None = None,
    family: str = "bt",
    normalise: bool = True,
    standardise: bool = True,
    ci: str = "auto",
    level: float = 0.95,
    rounds: int = 1000,
    seed: int | None = 0,
    **read_options: Any,
) -> StyleControlResult:
    """Plain and style-controlled Bradley-Terry leaderboards, side by side, with the style coefficients.

    Parameters
    ----------
    battles : DataFrame
        One row per battle: ``prompt``, ``left``, ``right`` and ``outcome``
        (anything :func:`bradley.read_comparisons` reads as an outcome:
        1/0/0.5, ``model_a``/``model_b``/``tie``, ...).
    features : DataFrame
        Per-response features, one row per (``prompt``, ``system``), e.g. from
        :func:`style_features`.
    columns, normalise, standardise
        As :func:`battle_style_differences`.
    family : {"bt", "davidson", ...}
        The pairwise family (:class:`~bradley.PairwiseModel`); ties count as
        half a win under ``"bt"``.
    ci : {"auto", "fisher", "bootstrap", "none"}
        Interval method of both leaderboards (:func:`bradley.leaderboard`;
        the sandwich is not available for :class:`~bradley.PairwiseModel`).
        ``"auto"`` (default) is Fisher, calibrated when the family models
        ties or there are none; when ``family="bt"`` counts ties as half a
        win, Fisher intervals are conservative (too wide, the project's rule
        for ``ci="auto"``), and ``board.ci["reason"]`` says so: pass
        ``ci="bootstrap"`` for calibrated ones (``rounds`` refits of each
        model: about 300 times slower, 104 s against 0.35 s on 3,000
        battles), or ``family="davidson"`` to model the ties.
    level, rounds, seed
        Interval level; bootstrap replicates and seed.
    **read_options
        Passed to :func:`bradley.read_comparisons` (``both_bad=...``, ``outcome_map=...``).

    Returns
    -------
    StyleControlResult

    Examples
    --------
    >>> import bradley
    >>> rng = np.random.default_rng(0)
    >>> feats = pd.DataFrame({"question_id": np.repeat(np.arange(200), 3), "model": ["a", "b", "c"] * 200,
    ...                       "length": rng.integers(50, 500, 600)})
    >>> pairs = rng.integers(0, 3, (600, 2)); pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    >>> battles = pd.DataFrame({"question_id": rng.integers(0, 200, len(pairs)),
    ...                         "model_a": np.array(["a", "b", "c"])[pairs[:, 0]],
    ...                         "model_b": np.array(["a", "b", "c"])[pairs[:, 1]],
    ...                         "outcome": rng.integers(0, 2, len(pairs)).astype(float)})
    >>> res = style_controlled_leaderboard(battles, feats)
    >>> list(res.coefficients.index)
    ['length']
    """
    diffs = battle_style_differences(battles, features, prompt=prompt, left=left, right=right, system=system,
                                     columns=columns, normalise=normalise, standardise=standardise)
    names = list(diffs.columns)
    taken = set(battles.columns)
    safe = {c: (c if c not in taken else f"style_{c}") for c in names}
    frame = battles[[left, right, outcome]].copy()
    for c in names:
        frame[safe[c]] = diffs[c].to_numpy()
    plain_data = read_comparisons(frame, left=left, right=right, outcome=outcome, **read_options)
    styled = read_comparisons(frame, left=left, right=right, outcome=outcome,
                              features=[safe[c] for c in names], **read_options)
    method = "fisher" if ci == "auto" else ci
    plain = leaderboard(plain_data, model=PairwiseModel(family=family), ci=method, level=level, rounds=rounds,
                        seed=seed)
    controlled = leaderboard(styled, model=PairwiseModel(family=family, covariates=True), ci=method, level=level,
                             rounds=rounds, seed=seed)
    if ci == "auto":
        soft = (plain_data.outcome > 0) & (plain_data.outcome < 1)
        ties = float(np.mean(soft)) if len(soft) else 0.0
        if ties > 0 and family == "bt":
            reason = (f"auto: {100 * ties:.1f}% ties (or soft outcomes) counted as half a win with a win's "
                      "variance, so these Fisher intervals are conservative (too wide); the sandwich is not "
                      "available for PairwiseModel, ci='bootstrap' is calibrated (and slow)")
        else:
            reason = "auto: the model's Fisher information is calibrated (no ties, or the family models them)"
        for board in (plain, controlled):
            board.ci.update(requested="auto", reason=reason)
    keep = ["item", "score", "ci_low", "ci_high", "rank", "rank_low", "rank_high"]
    right_table = plain.table[keep].rename(columns={c: f"plain_{c}" for c in keep if c != "item"})
    table = controlled.table[keep + ["battles"]].merge(right_table, on="item", how="left")
    table["rank_change"] = table["plain_rank"] - table["rank"]
    table = table.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
    model = controlled.model
    assert isinstance(model, PairwiseModel)  # leaderboard() keeps the estimator it was given
    params = model.params_
    coefficients = params.loc[[safe[c] for c in names], ["estimate", "se", "z", "p_value", "ci_low", "ci_high"]]
    coefficients.index = pd.Index(names, name="feature")
    return StyleControlResult(table=table, coefficients=coefficients.copy(), plain=plain, controlled=controlled)
