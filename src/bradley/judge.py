"""Surrogate judges: learn a teacher's pairwise verdicts from per-response features.

A :class:`SurrogateJudge` (MIRAGE-Bench's idea: a cheap judge trained to
imitate an expensive one) predicts the verdict between two responses to the
same prompt from numeric features of each response (lengths, citation
counts, formatting, scores by cheaper judges, ...)::

    d = w . (z_a - z_b),        z = (f - mean) / scale  (standardised features)
    P(a wins) = e^{d/2} / (e^{d/2} + e^{-d/2} + nu),  P(tie) = nu / (...)   (Davidson ties)
    P(a wins) = sigmoid(d)                                                    (ties="none")

fitted by penalised maximum likelihood (ridge ``alpha/2 |w|^2``, no penalty on
``log nu``). :meth:`SurrogateJudge.rank` turns its predictions on every pair
of systems of every prompt into a *synthetic leaderboard* (a Bradley-Terry fit
on the predicted expected scores), which :func:`compare_leaderboards` sets
against the teacher's leaderboard: Kendall tau of the scores and the fraction
of systems whose rank intervals overlap. :func:`cross_validate_judge` scores
the judge on held-out prompts; :func:`leave_one_system_out` ranks each
system with a judge that never saw it.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, log_expit

from ._response_features import check_feature_table, check_weight, feature_columns, lookup_rows
from .errors import BradleyError, ComparisonDataError, ConvergenceWarning, NotFittedError
from .io import parse_outcomes, read_comparisons
from .leaderboard import Leaderboard, leaderboard

__all__ = [
    "JUDGE_FILE_VERSION",
    "JudgeFileError",
    "SurrogateJudge",
    "compare_leaderboards",
    "cross_validate_judge",
    "judge_log_likelihood",
    "leave_one_system_out",
    "response_win_rates",
    "teacher_leaderboard",
]

#: version of the JSON judge file written by :meth:`SurrogateJudge.save`
JUDGE_FILE_VERSION = 1
_FORMAT = "bradley-surrogate-judge"
#: |coefficient| per standard deviation beyond which the fit is taken as diverging (separated data)
_DIVERGED_COEF = 30.0


class JudgeFileError(BradleyError, ValueError):
    """A judge file that cannot be used (not a judge file, another version, features that do not match)."""


def judge_log_likelihood(theta: np.ndarray, delta: np.ndarray, outcome: np.ndarray, weight: np.ndarray,
                         ties: bool) -> tuple[float, np.ndarray]:
    """Log-likelihood of the judge model and its gradient (a pure kernel).

    Parameters
    ----------
    theta : ndarray
        ``w`` (one per feature), then ``log nu`` when ``ties``.
    delta : ndarray, shape (n, p)
        Standardised feature differences ``z_a - z_b``.
    outcome : ndarray, shape (n,)
        1 = a won, 0 = b won, 0.5 = tie (with ``ties``: a tie; without: half
        a win), other values in (0, 1) = soft labels.
    weight : ndarray, shape (n,)
    ties : bool
        Davidson ties (else Bradley-Terry).

    Returns
    -------
    (float, ndarray)
        The weighted log-likelihood and its gradient in ``theta``.

    Examples
    --------
    >>> ll, g = judge_log_likelihood(np.zeros(1), np.ones((2, 1)), np.array([1.0, 0.0]), np.ones(2), False)
    >>> round(ll, 6), g.tolist()
    (-1.386294, [0.0])
    """
    p = delta.shape[1]
    d = delta @ theta[:p]
    if not ties:
        ll = weight * (outcome * log_expit(d) + (1.0 - outcome) * log_expit(-d))
        gd = weight * (outcome - expit(d))
        return float(ll.sum()), delta.T @ gd
    log_nu = theta[p]
    is_tie = outcome == 0.5
    y_tie = np.where(is_tie, 1.0, 0.0)
    y_win = np.where(is_tie, 0.0, outcome)
    y_loss = np.where(is_tie, 0.0, 1.0 - outcome)
    log_den = np.logaddexp(np.logaddexp(0.5 * d, -0.5 * d), log_nu)
    ll = weight * (y_win * (0.5 * d - log_den) + y_loss * (-0.5 * d - log_den) + y_tie * (log_nu - log_den))
    p_win, p_loss, p_tie = np.exp(0.5 * d - log_den), np.exp(-0.5 * d - log_den), np.exp(log_nu - log_den)
    total = y_win + y_loss + y_tie
    gd = weight * (0.5 * (y_win - y_loss) - total * 0.5 * (p_win - p_loss))
    g_nu = float((weight * (y_tie - total * p_tie)).sum())
    return float(ll.sum()), np.append(delta.T @ gd, g_nu)


def _outcomes(battles: pd.DataFrame, left: str, right: str, outcome: str) -> np.ndarray:
    values = battles[outcome]
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        out = parse_outcomes(values.to_numpy())[0]
    else:
        out = parse_outcomes(values.to_numpy(), battles[left].to_numpy(), battles[right].to_numpy())[0]
    bad = ~((out >= 0) & (out <= 1))
    if bad.any():
        rows = np.flatnonzero(bad)[:10].tolist()
        raise ComparisonDataError(f"outcomes must lie in [0, 1]: rows {rows}.", rows=rows)
    return out


class SurrogateJudge:
    """A pairwise judge learnt from per-response numeric features (BT or Davidson, ridge penalty).

    Parameters
    ----------
    features : sequence of str, optional
        Feature columns of the feature table (default: every numeric column
        but the prompt and system keys).
    alpha : float
        Ridge penalty ``alpha/2 |w|^2`` on the standardised coefficients
        (on the scale of the summed log-likelihood).
    ties : {"davidson", "none"}
        Model ties (``0.5`` outcomes) with Davidson's ``nu``, or count them as half a win.
    prompt, system : str
        Key columns of the feature table (``prompt`` also in the battles).
    left, right, outcome : str
        Battle columns: the two systems and the outcome (1/0/0.5 for left,
        or labels such as ``model_a``/``model_b``/``tie``).
    tol : float
        Converged when the largest absolute gradient entry of the penalised
        log-likelihood is at most ``tol`` times the number of battles.
    max_iter : int

    Attributes
    ----------
    feature_names_, mean_, scale_ (standardisation), coef_ (per standardised
    feature), nu_ (Davidson tie parameter, NaN without ties),
    log_likelihood_, n_battles_, converged_, n_iter_.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> feats = pd.DataFrame({"question_id": np.repeat(np.arange(300), 2), "model": ["a", "b"] * 300,
    ...                       "quality": rng.normal(size=600)})
    >>> q = feats["quality"].to_numpy().reshape(300, 2)
    >>> battles = pd.DataFrame({"question_id": np.arange(300), "model_a": "a", "model_b": "b",
    ...                         "outcome": (rng.random(300) < 1 / (1 + np.exp(-2 * (q[:, 0] - q[:, 1])))) * 1.0})
    >>> judge = SurrogateJudge(ties="none").fit(battles, feats)
    >>> bool(judge.converged_), bool(judge.coef_[0] > 1)
    (True, True)
    """

    def __init__(self, features: Sequence[str] | None = None, alpha: float = 1.0, ties: str = "davidson", *,
                 prompt: str = "question_id", system: str = "model", left: str = "model_a",
                 right: str = "model_b", outcome: str = "outcome", tol: float = 1e-8, max_iter: int = 1000):
        self.features = features
        self.alpha = alpha
        self.ties = ties
        self.prompt = prompt
        self.system = system
        self.left = left
        self.right = right
        self.outcome = outcome
        self.tol = tol
        self.max_iter = max_iter

    def __repr__(self) -> str:
        return f"SurrogateJudge(features={self.features!r}, alpha={self.alpha!r}, ties={self.ties!r})"

    # ------------------------------------------------------------------ data
    def _feature_columns(self, table: pd.DataFrame) -> list[str]:
        return feature_columns(table, self.features, [self.prompt, self.system])

    def _check_table(self, table: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
        check_feature_table(table, [self.prompt, self.system], cols)
        return table

    def _deltas(self, battles: pd.DataFrame, table: pd.DataFrame) -> np.ndarray:
        z = (table[self.feature_names_].to_numpy(dtype=np.float64) - self.mean_) / self.scale_
        keys = [self.prompt, self.system]
        a = lookup_rows(table, keys, battles, [self.prompt, self.left], self.left)
        b = lookup_rows(table, keys, battles, [self.prompt, self.right], self.right)
        return np.asarray(z[a] - z[b])

    # ------------------------------------------------------------------ fit
    def fit(self, battles: pd.DataFrame, features: pd.DataFrame, weight: np.ndarray | None = None) -> SurrogateJudge:
        """Fit the judge to the teacher's ``battles`` given the per-response ``features`` table."""
        from scipy.optimize import minimize

        if self.ties not in ("davidson", "none"):
            raise ValueError(f"ties must be 'davidson' or 'none', got {self.ties!r}.")
        if not self.alpha >= 0:
            raise ValueError(f"alpha must be non-negative, got {self.alpha!r}.")
        cols = self._feature_columns(features)
        table = self._check_table(features, cols)
        values = table[cols].to_numpy(dtype=np.float64)
        self.feature_names_ = cols
        self.mean_ = values.mean(axis=0)
        scale = values.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        delta = self._deltas(battles, table)
        y = _outcomes(battles, self.left, self.right, self.outcome)
        w = check_weight(weight, len(y))
        ties = self.ties == "davidson"
        p = len(cols)
        x0 = np.zeros(p + (1 if ties else 0))
        if ties:
            share = float(np.average(y == 0.5, weights=w))
            x0[p] = np.log(max(share, 1e-3) / max(1 - share, 1e-3) * 2.0)  # nu at d = 0: P(tie) = nu / (2 + nu)
        alpha = float(self.alpha)

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            ll, g = judge_log_likelihood(theta, delta, y, w, ties)
            pen = 0.5 * alpha * float(theta[:p] @ theta[:p])
            grad = -g
            grad[:p] += alpha * theta[:p]
            return -ll + pen, grad

        n = max(float(w.sum()), 1.0)
        res = minimize(objective, x0, jac=True, method="L-BFGS-B",
                       options={"maxiter": int(self.max_iter), "gtol": self.tol * n, "ftol": 1e-15})
        grad = objective(res.x)[1]
        self.convergence_criterion_ = float(np.max(np.abs(grad)) / n) if len(grad) else 0.0
        self.converged_ = bool(self.convergence_criterion_ <= max(self.tol, 1e-6))
        diverging = [c for c, v in zip(cols, res.x[:p], strict=True) if abs(v) > _DIVERGED_COEF]
        if diverging:
            # a coefficient beyond 30 per standard deviation: the teacher's verdicts are (quasi-)separated by
            # these features, the unpenalised optimum lies at infinity and the optimiser stopped on a flat slope
            self.converged_ = False
            warnings.warn(f"SurrogateJudge: the coefficients of {diverging} diverge (|coef| > {_DIVERGED_COEF:g} per "
                          f"standard deviation, e.g. {float(np.max(np.abs(res.x[:p]))):.3g}): these features "
                          f"separate the teacher's verdicts, so the maximum-likelihood judge does not exist "
                          f"(alpha={alpha:g}); use a ridge penalty alpha > 0 (e.g. alpha=1).", ConvergenceWarning,
                          stacklevel=2)
        elif not self.converged_:
            warnings.warn(f"SurrogateJudge did not converge in {res.nit} iterations (largest gradient per battle "
                          f"{self.convergence_criterion_:.3g}); raise max_iter or alpha.", ConvergenceWarning,
                          stacklevel=2)
        self.n_iter_ = int(res.nit)
        self.coef_ = np.asarray(res.x[:p], dtype=np.float64)
        self.nu_ = float(np.exp(res.x[p])) if ties else float("nan")
        self.log_likelihood_ = float(judge_log_likelihood(res.x, delta, y, w, ties)[0])
        self.n_battles_ = int(len(y))
        return self

    def _require(self) -> None:
        if not hasattr(self, "coef_"):
            raise NotFittedError("this SurrogateJudge is not fitted yet: call fit(battles, features) or load a file.")

    def coefficients(self) -> pd.DataFrame:
        """Coefficient table: ``feature``, ``coef`` (per standard deviation), ``mean``, ``scale``."""
        self._require()
        return pd.DataFrame({"feature": self.feature_names_, "coef": self.coef_, "mean": self.mean_,
                             "scale": self.scale_})

    def summary(self) -> pd.DataFrame:
        """The coefficient table (:meth:`coefficients`)."""
        return self.coefficients()

    # ------------------------------------------------------------------ predict
    def _proba_from_delta(self, delta: np.ndarray) -> np.ndarray:
        d = delta @ self.coef_
        if np.isnan(self.nu_):
            win = expit(d)
            return np.column_stack([win, np.zeros_like(d), 1.0 - win])
        log_nu = np.log(self.nu_)
        log_den = np.logaddexp(np.logaddexp(0.5 * d, -0.5 * d), log_nu)
        return np.column_stack([np.exp(0.5 * d - log_den), np.exp(log_nu - log_den), np.exp(-0.5 * d - log_den)])

    def predict_proba(self, battles: pd.DataFrame, features: pd.DataFrame) -> np.ndarray:
        """``(n, 3)`` probabilities of (left wins, tie, right wins) per battle (tie 0 when ``ties="none"``)."""
        self._require()
        table = self._check_table(features, self._columns_in(features))
        return self._proba_from_delta(self._deltas(battles, table))

    def _columns_in(self, table: pd.DataFrame) -> list[str]:
        missing = [c for c in self.feature_names_ if c not in table.columns]
        if missing:
            raise JudgeFileError(f"the feature table lacks the judge's features {missing} (the judge was trained "
                                 f"on {self.feature_names_}; the table has {list(table.columns)}).")
        return list(self.feature_names_)

    def pairwise_predictions(self, responses: pd.DataFrame) -> pd.DataFrame:
        """The judge's verdict on every pair of systems of every prompt of ``responses``.

        Returns a DataFrame with the prompt, ``model_a``, ``model_b`` (the
        judge's ``left``/``right`` names), ``p_win``, ``p_tie``, ``p_loss`` and
        ``expected`` (= p_win + p_tie / 2).
        """
        self._require()
        table = self._check_table(responses, self._columns_in(responses)).reset_index(drop=True)
        prompts = table[self.prompt].to_numpy()
        systems = table[self.system].to_numpy()
        codes, _ = pd.factorize(prompts)
        order = np.argsort(codes, kind="stable")
        bounds = np.flatnonzero(np.diff(codes[order])) + 1
        first, second = [], []
        for group in np.split(order, bounds):
            i, j = np.triu_indices(len(group), k=1)
            first.append(group[i])
            second.append(group[j])
        a = np.concatenate(first) if first else np.zeros(0, dtype=np.int64)
        b = np.concatenate(second) if second else np.zeros(0, dtype=np.int64)
        pairs = pd.DataFrame({self.prompt: prompts[a], self.left: systems[a], self.right: systems[b]})
        z = (table[self.feature_names_].to_numpy(dtype=np.float64) - self.mean_) / self.scale_
        proba = self._proba_from_delta(z[a] - z[b])
        pairs["p_win"], pairs["p_tie"], pairs["p_loss"] = proba[:, 0], proba[:, 1], proba[:, 2]
        pairs["expected"] = proba[:, 0] + 0.5 * proba[:, 1]
        return pairs

    def rank(self, responses: pd.DataFrame, *, ci: str = "auto", level: float = 0.95) -> Leaderboard:
        """Synthetic leaderboard: a Bradley-Terry fit on the judge's expected scores over all pairs per prompt.

        Each (prompt, pair of systems) counts as one battle whose outcome is
        the judge's expected score ``P(win) + P(tie)/2`` of the first system.
        ``ci`` and ``level`` as :func:`bradley.leaderboard`; the sandwich and
        the bootstrap are clustered by prompt (``"auto"``: the sandwich
        clustered by prompt), since the pairs of one prompt share its
        responses and are not independent battles. The intervals measure how
        the judge's verdicts vary across prompts, given the fitted judge (not
        the judge's own estimation error).
        """
        pairs = self.pairwise_predictions(responses)
        if pairs.empty:
            raise ComparisonDataError("no prompt has two or more systems in the feature table: nothing to rank.")
        data = read_comparisons(pairs, left=self.left, right=self.right, outcome="expected")
        # the C(k, 2) synthetic battles of a prompt share its responses: cluster the sandwich by prompt
        # (one prompt: nothing to cluster over, the plain method is used)
        prompt_of = pairs[self.prompt].astype(str).to_numpy()
        clustered = ci in ("auto", "sandwich", "bootstrap") and len(np.unique(prompt_of)) > 1
        cluster = prompt_of if clustered else None
        return leaderboard(data, ci=ci, level=level, cluster=cluster)

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict[str, Any]:
        """The fitted judge as plain JSON-ready data (see :meth:`save`)."""
        self._require()
        return {
            "format": _FORMAT, "version": JUDGE_FILE_VERSION,
            "features": list(self.feature_names_),
            "standardisation": {"mean": self.mean_.tolist(), "scale": self.scale_.tolist()},
            "coefficients": self.coef_.tolist(),
            "ties": self.ties, "nu": None if np.isnan(self.nu_) else self.nu_,
            "alpha": float(self.alpha),
            "columns": {"prompt": self.prompt, "system": self.system, "left": self.left, "right": self.right,
                        "outcome": self.outcome},
            "fit": {"n_battles": self.n_battles_, "log_likelihood": self.log_likelihood_,
                    "converged": self.converged_, "n_iter": self.n_iter_},
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the judge as JSON (format ``bradley-surrogate-judge``, :data:`JUDGE_FILE_VERSION`)."""
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(self.to_dict(), fh, indent=2)
            fh.write("\n")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SurrogateJudge:
        """Rebuild a fitted judge from :meth:`to_dict` output (checks format, version and shapes)."""
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise JudgeFileError(f"not a surrogate-judge file (expected format {_FORMAT!r}).")
        if data.get("version") != JUDGE_FILE_VERSION:
            raise JudgeFileError(f"judge file version {data.get('version')!r} is not supported by this bradley "
                                 f"(it reads version {JUDGE_FILE_VERSION}); retrain with `bradley judge train`.")
        try:
            names = [str(f) for f in data["features"]]
            mean = np.asarray(data["standardisation"]["mean"], dtype=np.float64)
            scale = np.asarray(data["standardisation"]["scale"], dtype=np.float64)
            coef = np.asarray(data["coefficients"], dtype=np.float64)
            columns = data["columns"]
        except (KeyError, TypeError, ValueError) as exc:
            raise JudgeFileError(f"judge file is incomplete or malformed ({exc!r}).") from exc
        if not (len(names) == len(mean) == len(scale) == len(coef)):
            raise JudgeFileError(f"judge file: {len(names)} feature names but {len(mean)} means, {len(scale)} "
                                 f"scales and {len(coef)} coefficients.")
        known = ("prompt", "system", "left", "right", "outcome")
        if not isinstance(columns, dict) or any(k not in columns for k in known):
            raise JudgeFileError(f"judge file: 'columns' must name {list(known)}.")
        judge = cls(features=names, alpha=float(data.get("alpha", 1.0)), ties=str(data.get("ties", "davidson")),
                    prompt=str(columns["prompt"]), system=str(columns["system"]), left=str(columns["left"]),
                    right=str(columns["right"]), outcome=str(columns["outcome"]))
        judge.feature_names_, judge.mean_, judge.scale_, judge.coef_ = names, mean, scale, coef
        nu = data.get("nu")
        judge.nu_ = float("nan") if nu is None else float(nu)
        fit = data.get("fit", {})
        judge.n_battles_ = int(fit.get("n_battles", 0))
        judge.log_likelihood_ = float(fit.get("log_likelihood", float("nan")))
        judge.converged_ = bool(fit.get("converged", True))
        judge.n_iter_ = int(fit.get("n_iter", 0))
        return judge

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SurrogateJudge:
        """Read a judge written by :meth:`save`."""
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except json.JSONDecodeError as exc:
            raise JudgeFileError(f"{path}: not JSON ({exc.msg} at line {exc.lineno}).") from exc
        return cls.from_dict(data)


# ---------------------------------------------------------------------- evaluation
def teacher_leaderboard(battles: pd.DataFrame, *, left: str = "model_a", right: str = "model_b",
                        outcome: str = "outcome", ci: str = "auto", level: float = 0.95) -> Leaderboard:
    """The teacher's Bradley-Terry leaderboard from its battles (ties as half a win)."""
    data = read_comparisons(battles, left=left, right=right, outcome=outcome)
    return leaderboard(data, ci=ci, level=level)


def compare_leaderboards(synthetic: Leaderboard, teacher: Leaderboard) -> dict[str, float]:
    """Agreement of a synthetic leaderboard with the teacher's, on the systems both rank.

    Returns
    -------
    dict
        ``kendall_tau`` and ``p_value`` (``scipy.stats.kendalltau`` of the
        scores), ``interval_overlap`` (fraction of systems whose rank
        intervals ``[rank_low, rank_high]`` overlap), ``top1_agree`` (1.0 when
        both put the same system first) and ``n_systems``.
    """
    from scipy.stats import kendalltau

    s = synthetic.table.set_index("item")
    t = teacher.table.set_index("item")
    common = [i for i in t.index if i in s.index]
    if len(common) < 2:
        raise ComparisonDataError(f"the two leaderboards share {len(common)} systems; need at least 2.")
    res = kendalltau(s.loc[common, "score"].to_numpy(), t.loc[common, "score"].to_numpy())
    overlap = np.maximum(s.loc[common, "rank_low"].to_numpy(), t.loc[common, "rank_low"].to_numpy()) <= \
        np.minimum(s.loc[common, "rank_high"].to_numpy(), t.loc[common, "rank_high"].to_numpy())
    top_s = s.loc[common, "score"].idxmax()
    top_t = t.loc[common, "score"].idxmax()
    return {"kendall_tau": float(res.statistic), "p_value": float(res.pvalue),
            "interval_overlap": float(overlap.mean()), "top1_agree": float(top_s == top_t),
            "n_systems": float(len(common))}


def _log_loss(proba: np.ndarray, y: np.ndarray, ties: bool) -> np.ndarray:
    eps = 1e-15
    if ties:
        is_tie = y == 0.5
        p = np.where(is_tie, proba[:, 1], y * proba[:, 0] + (1 - y) * proba[:, 2])
        return np.asarray(-np.log(np.clip(p, eps, 1.0)))
    p_win = np.clip(proba[:, 0], eps, 1 - eps)
    return np.asarray(-(y * np.log(p_win) + (1 - y) * np.log1p(-p_win)))


def cross_validate_judge(judge: SurrogateJudge, battles: pd.DataFrame, features: pd.DataFrame, *,
                         folds: int = 5, seed: int | None = 0) -> pd.DataFrame:
    """K-fold cross-validation by prompt: every prompt's battles are in exactly one test fold.

    Returns
    -------
    pandas.DataFrame
        One row per fold plus a ``mean`` row (battle-weighted): ``n_train``,
        ``n_test``, ``log_loss`` (per battle, natural log; ties scored as ties
        under Davidson), ``baseline_log_loss`` (the training outcome
        frequencies, no features), ``accuracy`` (decisive battles: the
        predicted winner is the actual one) and ``brier`` (of the expected
        score against the outcome).
    """
    if folds < 2:
        raise ValueError(f"folds must be at least 2, got {folds}.")
    prompts = battles[judge.prompt].astype(str).to_numpy()
    unique = np.unique(prompts)
    if len(unique) < folds:
        raise ComparisonDataError(f"{len(unique)} prompts cannot make {folds} folds.")
    rng = np.random.default_rng(seed)
    codes, _ = pd.factorize(prompts, sort=True)
    fold_of_code = np.empty(len(unique), dtype=np.int64)
    fold_of_code[rng.permutation(len(unique))] = np.arange(len(unique)) % folds
    fold = fold_of_code[codes]
    feature_prompts = features[judge.prompt].astype(str).to_numpy() if judge.prompt in features.columns else None
    ties = judge.ties == "davidson"
    rows = []
    for k in range(folds):
        test = fold == k
        train_b, test_b = battles[~test], battles[test]
        # standardise on the training prompts' responses only (no look at the held-out prompts' features)
        train_features = features if feature_prompts is None else \
            features[np.isin(feature_prompts, prompts[~test])]
        model = SurrogateJudge(**_params(judge)).fit(train_b, train_features)
        proba = model.predict_proba(test_b, features)
        y = _outcomes(test_b, judge.left, judge.right, judge.outcome)
        y_train = _outcomes(train_b, judge.left, judge.right, judge.outcome)
        if ties:
            tie = float(np.mean(y_train == 0.5))
            win = float(np.mean(np.where(y_train == 0.5, 0.0, y_train)))
            base = np.tile([win, tie, max(1.0 - win - tie, 0.0)], (len(y), 1))
        else:
            win = float(np.mean(y_train))
            base = np.tile([win, 0.0, 1.0 - win], (len(y), 1))
        decisive = (y == 1.0) | (y == 0.0)
        expected = proba[:, 0] + 0.5 * proba[:, 1]
        rows.append({"fold": str(k + 1), "n_train": int((~test).sum()), "n_test": int(test.sum()),
                     "log_loss": float(_log_loss(proba, y, ties).mean()),
                     "baseline_log_loss": float(_log_loss(base, y, ties).mean()),
                     "accuracy": float(np.mean((proba[decisive, 0] > proba[decisive, 2]) == (y[decisive] == 1.0)))
                     if decisive.any() else float("nan"),
                     "brier": float(np.mean((expected - y) ** 2))})
    table = pd.DataFrame(rows)
    wts = table["n_test"].to_numpy(dtype=float)
    mean = {"fold": "mean", "n_train": int(round(table["n_train"].mean())), "n_test": int(wts.sum())}
    for col in ("log_loss", "baseline_log_loss", "accuracy", "brier"):
        mean[col] = float(np.average(table[col].to_numpy(dtype=float), weights=wts))
    return pd.concat([table, pd.DataFrame([mean])], ignore_index=True)


def _params(judge: SurrogateJudge) -> dict[str, Any]:
    return {"features": judge.features if judge.features is not None else getattr(judge, "feature_names_", None),
            "alpha": judge.alpha, "ties": judge.ties, "prompt": judge.prompt, "system": judge.system,
            "left": judge.left, "right": judge.right, "outcome": judge.outcome, "tol": judge.tol,
            "max_iter": judge.max_iter}


def leave_one_system_out(judge: SurrogateJudge, battles: pd.DataFrame, features: pd.DataFrame, *,
                         teacher: Leaderboard | None = None) -> pd.DataFrame:
    """Rank each system with a judge trained without any battle of that system.

    For each system ``s`` of the battles, the judge is refitted on the
    battles that do not involve ``s`` and ranks every system of
    ``features``; the row reports ``s``'s synthetic rank and interval there
    beside its teacher rank and interval.

    Returns
    -------
    pandas.DataFrame
        ``item``, ``teacher_rank``, ``teacher_rank_low``, ``teacher_rank_high``,
        ``loso_rank``, ``loso_rank_low``, ``loso_rank_high``, ``overlap``
        (the two rank intervals overlap), ``n_train``. ``attrs["kendall_tau"]``
        is Kendall's tau between the held-out systems' teacher scores and
        their score in their own held-out fit (each relative to the mean of the others).
    """
    from scipy.stats import kendalltau

    board = teacher if teacher is not None else teacher_leaderboard(battles, left=judge.left, right=judge.right,
                                                                     outcome=judge.outcome)
    t = board.table.set_index("item")
    systems = [s for s in t.index if s in set(features[judge.system].astype(str))]
    rows = []
    for s in systems:
        keep = (battles[judge.left].astype(str) != s) & (battles[judge.right].astype(str) != s)
        model = SurrogateJudge(**_params(judge)).fit(battles[keep], features)
        syn = model.rank(features).table.set_index("item")
        rows.append({"item": s, "teacher_rank": int(t.loc[s, "rank"]),
                     "teacher_rank_low": int(t.loc[s, "rank_low"]), "teacher_rank_high": int(t.loc[s, "rank_high"]),
                     "loso_rank": int(syn.loc[s, "rank"]), "loso_rank_low": int(syn.loc[s, "rank_low"]),
                     "loso_rank_high": int(syn.loc[s, "rank_high"]),
                     "overlap": bool(max(t.loc[s, "rank_low"], syn.loc[s, "rank_low"])
                                     <= min(t.loc[s, "rank_high"], syn.loc[s, "rank_high"])),
                     "n_train": int(keep.sum()), "_score": float(syn.loc[s, "score"]),
                     "_teacher_score": float(t.loc[s, "score"])})
    out = pd.DataFrame(rows)
    if len(out) >= 2:
        out.attrs["kendall_tau"] = float(kendalltau(out["_score"], out["_teacher_score"]).statistic)
    out.attrs["overlap"] = float(out["overlap"].mean()) if len(out) else float("nan")
    return out.drop(columns=["_score", "_teacher_score"])


def response_win_rates(battles: pd.DataFrame, *, prompt: str = "question_id", left: str = "model_1",
                       right: str = "model_2", outcome: str = "outcome", by: str | None = "reviewer",
                       judges: Sequence[str] | None = None, system: str = "model") -> pd.DataFrame:
    """Per-response features from (cheaper) judges: each response's mean score under each judge.

    For each (prompt, system) and each judge, the mean of the system's
    results (1 win, 0.5 tie, 0 loss) over that judge's verdicts on that
    prompt, in columns ``winrate_<judge>`` (one ``winrate`` column when
    ``by`` is None). Responses that some listed judge never saw are left
    out, so the table covers the responses every listed judge saw.

    Examples
    --------
    >>> b = pd.DataFrame({"question_id": [1, 1], "model_1": ["x", "y"], "model_2": ["y", "x"],
    ...                   "outcome": [1.0, 0.5], "reviewer": ["r", "r"]})
    >>> response_win_rates(b)
       question_id model  winrate_r
    0            1     x       0.75
    1            1     y       0.25
    """
    y = _outcomes(battles, left, right, outcome)
    keys = battles[by].astype(str).to_numpy() if by is not None else np.full(len(battles), "")
    long = pd.DataFrame({
        prompt: np.concatenate([battles[prompt].to_numpy(), battles[prompt].to_numpy()]),
        system: np.concatenate([battles[left].astype(str).to_numpy(), battles[right].astype(str).to_numpy()]),
        "_judge": np.concatenate([keys, keys]),
        "_score": np.concatenate([y, 1.0 - y]),
    })
    if judges is not None:
        long = long[long["_judge"].isin([str(j) for j in judges])]
    wide = long.pivot_table(index=[prompt, system], columns="_judge", values="_score", aggfunc="mean")
    wide.columns = [f"winrate_{c}" if c else "winrate" for c in wide.columns]
    return wide.dropna().reset_index()
