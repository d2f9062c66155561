"""Surrogate judge: likelihood, fit, ranking, agreement metrics, files and the `bradley judge` command."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

from bradley.cli import main
from bradley.errors import ComparisonDataError
from bradley.judge import (
    JudgeFileError,
    SurrogateJudge,
    compare_leaderboards,
    cross_validate_judge,
    judge_log_likelihood,
    leave_one_system_out,
    response_win_rates,
    teacher_leaderboard,
)

SYSTEMS = np.array(["s0", "s1", "s2", "s3", "s4", "s5"])


def _simulate(seed: int, n_prompts: int = 250, w=(1.2, -0.7, 0.0), nu: float = 0.5, per_prompt: int = 6):
    """Systems differ in their mean features; the teacher judges by w . (f_a - f_b) with Davidson ties."""
    rng = np.random.default_rng(seed)
    k = len(SYSTEMS)
    centre = np.column_stack([np.linspace(1, -1, k), np.linspace(-0.5, 0.5, k), np.zeros(k)])
    f = centre[None, :, :] + rng.normal(size=(n_prompts, k, 3))
    feats = pd.DataFrame({"question_id": np.repeat(np.arange(n_prompts), k), "model": np.tile(SYSTEMS, n_prompts),
                          "f1": f[:, :, 0].ravel(), "f2": f[:, :, 1].ravel(), "noise": f[:, :, 2].ravel()})
    q = np.repeat(np.arange(n_prompts), per_prompt)
    i = rng.integers(0, k, len(q))
    j = (i + rng.integers(1, k, len(q))) % k
    d = (f[q, i] - f[q, j]) @ np.asarray(w)
    den = np.exp(d / 2) + np.exp(-d / 2) + nu
    p_win, p_tie = np.exp(d / 2) / den, nu / den
    u = rng.random(len(q))
    outcome = np.where(u < p_win, 1.0, np.where(u < p_win + p_tie, 0.5, 0.0))
    battles = pd.DataFrame({"question_id": q, "model_a": SYSTEMS[i], "model_b": SYSTEMS[j], "outcome": outcome})
    return battles, feats


def test_kernel_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    delta = rng.normal(size=(40, 3))
    y = rng.choice([0.0, 0.5, 1.0, 0.3], size=40)
    w = rng.random(40) + 0.5
    for ties, theta in ((True, np.array([0.4, -0.3, 0.2, np.log(0.7)])), (False, np.array([0.4, -0.3, 0.2]))):
        _, g = judge_log_likelihood(theta, delta, y, w, ties)
        num = np.array([(judge_log_likelihood(theta + e, delta, y, w, ties)[0]
                         - judge_log_likelihood(theta - e, delta, y, w, ties)[0]) / 2e-6
                        for e in np.eye(len(theta)) * 1e-6])
        np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-6)
    # no overflow at extreme differences
    ll, g = judge_log_likelihood(np.array([50.0, 0.0]), np.array([[1.0], [-1.0]]), np.array([1.0, 0.0]),
                                 np.ones(2), True)
    assert np.isfinite(ll) and np.isfinite(g).all() and ll > -1e-10


def test_fit_matches_brute_force_penalised_davidson():
    battles, feats = _simulate(seed=1, n_prompts=80)
    alpha = 3.0
    judge = SurrogateJudge(features=["f1", "f2", "noise"], alpha=alpha).fit(battles, feats)
    assert judge.converged_ and judge.n_iter_ > 0
    # independent: the Davidson probabilities pi_a / (pi_a + pi_b + nu sqrt(pi_a pi_b)) on raw features
    x = feats[["f1", "f2", "noise"]].to_numpy()
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    index = {(q, m): r for r, (q, m) in enumerate(zip(feats["question_id"], feats["model"], strict=True))}
    ra = np.array([index[(q, m)] for q, m in zip(battles["question_id"], battles["model_a"], strict=True)])
    rb = np.array([index[(q, m)] for q, m in zip(battles["question_id"], battles["model_b"], strict=True)])
    y = battles["outcome"].to_numpy()

    def objective(t):
        pa, pb = np.exp(z[ra] @ t[:3]), np.exp(z[rb] @ t[:3])
        nu = np.exp(t[3])
        den = pa + pb + nu * np.sqrt(pa * pb)
        lik = np.where(y == 1.0, pa, np.where(y == 0.0, pb, nu * np.sqrt(pa * pb))) / den
        return -np.log(lik).sum() + alpha / 2 * t[:3] @ t[:3]

    opt = minimize(objective, np.zeros(4), method="Nelder-Mead",
                   options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 40000, "maxfev": 40000})
    np.testing.assert_allclose(judge.coef_, opt.x[:3], atol=2e-4)
    assert judge.nu_ == pytest.approx(np.exp(opt.x[3]), abs=2e-4)
    assert judge.log_likelihood_ == pytest.approx(-(opt.fun - alpha / 2 * opt.x[:3] @ opt.x[:3]), abs=1e-5)


def test_planted_weights_are_recovered_and_probabilities_sum_to_one():
    battles, feats = _simulate(seed=2, n_prompts=600)
    judge = SurrogateJudge(alpha=0.0).fit(battles, feats)
    scale = feats[["f1", "f2", "noise"]].to_numpy().std(axis=0)
    raw = judge.coef_ / scale  # back to the raw feature scale of the simulation
    np.testing.assert_allclose(raw, [1.2, -0.7, 0.0], atol=0.12)
    assert judge.nu_ == pytest.approx(0.5, abs=0.1)
    proba = judge.predict_proba(battles.head(50), feats)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(judge.summary()["feature"]) == {"f1", "f2", "noise"}


def test_cross_validation_beats_baseline_only_with_informative_features():
    battles, feats = _simulate(seed=3, n_prompts=300)
    cv = cross_validate_judge(SurrogateJudge(), battles, feats, folds=4)
    mean = cv.set_index("fold").loc["mean"]
    assert mean["n_test"] == len(battles)
    # folds split prompts, not rows: every prompt has 6 battles, so every test fold holds a multiple of 6
    assert (cv["n_test"] % 6 == 0).all() and cv["n_test"].iloc[:-1].min() > 0
    assert mean["log_loss"] < mean["baseline_log_loss"] - 0.1
    assert mean["accuracy"] > 0.7
    noise = cross_validate_judge(SurrogateJudge(features=["noise"]), battles, feats, folds=4)
    m = noise.set_index("fold").loc["mean"]
    assert m["log_loss"] > m["baseline_log_loss"] - 0.01
    with pytest.raises(ValueError, match="folds"):
        cross_validate_judge(SurrogateJudge(), battles, feats, folds=1)


def test_synthetic_leaderboard_recovers_order_and_agrees_with_teacher():
    battles, feats = _simulate(seed=4, n_prompts=300)
    judge = SurrogateJudge().fit(battles, feats)
    synthetic = judge.rank(feats)
    assert list(synthetic.table.sort_values("score", ascending=False)["item"]) == list(SYSTEMS)
    teacher = teacher_leaderboard(battles)
    agree = compare_leaderboards(synthetic, teacher)
    assert agree["kendall_tau"] > 0.85 and agree["interval_overlap"] >= 0.8 and agree["n_systems"] == 6
    pairs = judge.pairwise_predictions(feats)
    assert len(pairs) == 300 * 15
    np.testing.assert_allclose(pairs[["p_win", "p_tie", "p_loss"]].sum(axis=1), 1.0)


def test_compare_leaderboards_by_hand():
    def board(scores, low, high):
        return SimpleNamespace(table=pd.DataFrame({"item": list("abcd"), "score": scores,
                                                   "rank_low": low, "rank_high": high}))

    syn = board([4.0, 3.0, 1.0, 2.0], [1, 1, 3, 4], [2, 1, 4, 4])
    tea = board([4.0, 3.0, 2.0, 1.0], [1, 2, 3, 4], [1, 2, 3, 4])
    out = compare_leaderboards(syn, tea)
    # brute force: 6 pairs, one discordant (c, d) -> tau = (5 - 1) / 6
    assert out["kendall_tau"] == pytest.approx(4 / 6)
    # a: [1,2] vs [1,1] overlap; b: [1,1] vs [2,2] do not; c: [3,4] vs [3,3] and d: [4,4] vs [4,4] do
    assert out["interval_overlap"] == pytest.approx(3 / 4)
    assert out["top1_agree"] == 1.0


def test_leave_one_system_out_ranks_unseen_systems():
    battles, feats = _simulate(seed=5, n_prompts=200)
    out = leave_one_system_out(SurrogateJudge(), battles, feats)
    assert list(out["item"]) == list(SYSTEMS)
    assert (out["n_train"] < len(battles)).all()
    assert out.attrs["kendall_tau"] > 0.85
    assert out.attrs["overlap"] >= 0.8


def test_save_load_round_trip_and_file_errors(tmp_path):
    battles, feats = _simulate(seed=6, n_prompts=60)
    judge = SurrogateJudge(alpha=2.0).fit(battles, feats)
    path = tmp_path / "judge.json"
    judge.save(path)
    again = SurrogateJudge.load(path)
    np.testing.assert_allclose(again.predict_proba(battles, feats), judge.predict_proba(battles, feats))
    data = json.loads(path.read_text())
    data["version"] = 99
    (tmp_path / "v99.json").write_text(json.dumps(data))
    with pytest.raises(JudgeFileError, match="version 99"):
        SurrogateJudge.load(tmp_path / "v99.json")
    with pytest.raises(JudgeFileError, match="lacks the judge's features \\['f2'\\]"):
        again.rank(feats.drop(columns="f2"))
    with pytest.raises(ComparisonDataError, match="no feature row"):
        judge.fit(battles.assign(model_a="nobody"), feats)


def test_response_win_rates_by_hand():
    b = pd.DataFrame({"question_id": [1, 1, 1, 2], "model_1": ["x", "y", "x", "x"], "model_2": ["y", "x", "z", "y"],
                      "outcome": [1.0, 1.0, 0.5, 0.0], "reviewer": ["r", "r", "r", "r"]})
    out = response_win_rates(b).set_index(["question_id", "model"])["winrate_r"]
    assert out[(1, "x")] == pytest.approx((1.0 + 0.0 + 0.5) / 3)
    assert out[(1, "y")] == pytest.approx(0.5)
    assert out[(1, "z")] == pytest.approx(0.5)
    assert out[(2, "y")] == pytest.approx(1.0)


def test_cli_train_and_rank(tmp_path, capsys):
    battles, feats = _simulate(seed=7, n_prompts=120)
    battles.to_csv(tmp_path / "battles.csv", index=False)
    feats.to_parquet(tmp_path / "features.parquet")
    out = str(tmp_path / "judge.json")
    assert main(["judge", "train", str(tmp_path / "battles.csv"), "--features", str(tmp_path / "features.parquet"),
                 "--out", out, "--folds", "3"]) == 0
    text = capsys.readouterr().out
    assert "cross-validation by prompt (3 folds)" in text and "baseline_log_loss" in text
    assert json.loads(open(out).read())["features"] == ["f1", "f2", "noise"]
    assert main(["judge", "rank", out, "--features", str(tmp_path / "features.parquet"),
                 "--teacher", str(tmp_path / "battles.csv")]) == 0
    text = capsys.readouterr().out
    assert "synthetic leaderboard (6 systems" in text and "Kendall tau = " in text
    feats.drop(columns="f1").to_csv(tmp_path / "less.csv", index=False)
    assert main(["judge", "rank", out, "--features", str(tmp_path / "less.csv")]) == 2
    assert "lacks the judge's features ['f1']" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text('{"format": "bradley-surrogate-judge", "version": 2}')
    assert main(["judge", "rank", str(tmp_path / "bad.json"), "--features", str(tmp_path / "less.csv")]) == 2
    assert "version 2 is not supported" in capsys.readouterr().err


def test_prd_vicuna80_gpt4_teacher_learnt_from_cheaper_reviewers():
    from bradley.datasets import load_vicuna80

    responses, verdicts = load_vicuna80()
    assert len(verdicts) == 15040 and (verdicts["reviewer"] == "human").sum() == 7040
    assert responses["model"].nunique() == 9 and responses["question_id"].nunique() == 80
    assert set(verdicts["category"]) >= {"coding", "math", "writing", "fermi"}
    cheap = ["gpt35", "claude", "bard", "vicuna-13b"]
    feats = response_win_rates(verdicts[verdicts["reviewer"].isin(cheap)], judges=cheap)
    teacher = verdicts[verdicts["reviewer"] == "gpt4"]
    judge = SurrogateJudge(left="model_1", right="model_2")
    cv = cross_validate_judge(judge, teacher, feats, folds=5).set_index("fold").loc["mean"]
    assert cv["log_loss"] < cv["baseline_log_loss"] - 0.2  # measured 0.661 vs 0.987
    agree = compare_leaderboards(judge.fit(teacher, feats).rank(feats),
                                 teacher_leaderboard(teacher, left="model_1", right="model_2"))
    assert agree["kendall_tau"] > 0.5


def test_cli_options_columns_no_ties_no_cv(tmp_path, capsys):
    battles, feats = _simulate(seed=8, n_prompts=80)
    battles["winner"] = np.where(battles["outcome"] == 1.0, "model_a", np.where(battles["outcome"] == 0.0,
                                                                                "model_b", "tie"))
    battles.drop(columns="outcome").to_json(tmp_path / "b.jsonl", orient="records", lines=True)
    feats.to_csv(tmp_path / "f.csv", index=False)
    out = str(tmp_path / "j.json")
    assert main(["judge", "train", str(tmp_path / "b.jsonl"), "--features", str(tmp_path / "f.csv"), "--out", out,
                 "--folds", "0", "--ties", "none", "--columns", "f1,f2", "--outcome", "winner"]) == 0
    text = capsys.readouterr().out
    assert "cross-validation" not in text and "tie parameter" not in text
    saved = json.loads(open(out).read())
    assert saved["features"] == ["f1", "f2"] and saved["nu"] is None and saved["columns"]["outcome"] == "winner"
    direct = SurrogateJudge(features=["f1", "f2"], ties="none", outcome="winner").fit(
        battles.drop(columns="outcome"), feats)
    np.testing.assert_allclose(saved["coefficients"], direct.coef_)
    assert main(["judge", "train", str(tmp_path / "b.jsonl"), "--features", str(tmp_path / "f.csv"), "--out", out,
                 "--folds", "1"]) == 2
    assert "--folds" in capsys.readouterr().err
    (tmp_path / "other.json").write_text('{"hello": 1}')
    assert main(["judge", "rank", str(tmp_path / "other.json"), "--features", str(tmp_path / "f.csv")]) == 2
    assert "not a surrogate-judge file" in capsys.readouterr().err


def _known_judge(coef: float, nu: float | None) -> SurrogateJudge:
    return SurrogateJudge.from_dict({
        "format": "bradley-surrogate-judge", "version": 1, "features": ["f"],
        "standardisation": {"mean": [0.0], "scale": [2.0]}, "coefficients": [coef],
        "ties": "none" if nu is None else "davidson", "nu": nu,
        "columns": {"prompt": "question_id", "system": "model", "left": "model_a", "right": "model_b",
                    "outcome": "outcome"}})


def test_rank_two_systems_one_prompt_is_exact():
    """Regression (issue 15): BT on one soft battle gives s_a - s_b = logit(expected score), the expected score
    being P(win) + P(tie)/2 (not P(win)); computed here from the Davidson formula by hand."""
    feats = pd.DataFrame({"question_id": [7, 7], "model": ["a", "b"], "f": [3.0, 1.0]})
    for nu in (0.6, None):
        judge = _known_judge(0.8, nu)
        d = 0.8 * (3.0 - 1.0) / 2.0
        if nu is None:
            expected = 1 / (1 + np.exp(-d))
        else:
            den = np.exp(d / 2) + np.exp(-d / 2) + nu
            expected = (np.exp(d / 2) + nu / 2) / den
        board = judge.rank(feats, ci="none").table.set_index("item")["score"]
        assert board["a"] - board["b"] == pytest.approx(np.log(expected / (1 - expected)), abs=1e-6)


def test_rank_intervals_are_clustered_by_prompt():
    """Regression (issue 15): the C(k,2) pairs of a prompt are not independent; the synthetic intervals are the
    sandwich clustered by prompt, wider than the unclustered one on the same pairs."""
    from bradley import leaderboard
    from bradley.io import read_comparisons

    battles, feats = _simulate(seed=4, n_prompts=150)
    judge = SurrogateJudge().fit(battles, feats)
    board = judge.rank(feats)
    assert board.ci["method"] == "sandwich" and board.ci["clusters"] == 150
    pairs = judge.pairwise_predictions(feats)
    flat = leaderboard(read_comparisons(pairs, outcome="expected"), ci="sandwich")
    ratio = ((board.table["ci_high"] - board.table["ci_low"]).to_numpy()
             / (flat.table.set_index("item").loc[board.table["item"], ["ci_high", "ci_low"]].diff(axis=1)
                .iloc[:, 1].abs().to_numpy()))
    np.testing.assert_allclose(board.table["score"], flat.table.set_index("item").loc[board.table["item"],
                                                                                      "score"], atol=1e-8)
    assert (ratio > 1.2).all(), ratio


def test_separable_verdicts_without_penalty_warn(tmp_path, capsys):
    """Regression (issue 15): alpha=0 on data that f1 separates used to report converged with |coef| ~ 600."""
    from bradley.errors import ConvergenceWarning

    battles, feats = _simulate(seed=9, n_prompts=60, nu=0.0)
    f = feats.set_index(["question_id", "model"])["f1"]
    battles["outcome"] = (f.loc[list(zip(battles["question_id"], battles["model_a"], strict=True))].to_numpy()
                          > f.loc[list(zip(battles["question_id"], battles["model_b"], strict=True))].to_numpy()) * 1.0
    with pytest.warns(ConvergenceWarning, match=r"\['f1'\].*alpha > 0"):
        judge = SurrogateJudge(alpha=0.0, ties="none").fit(battles, feats)
    assert not judge.converged_
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        assert SurrogateJudge(alpha=1.0, ties="none").fit(battles, feats).converged_
    battles.to_csv(tmp_path / "b.csv", index=False)
    feats.to_csv(tmp_path / "f.csv", index=False)
    assert main(["judge", "train", str(tmp_path / "b.csv"), "--features", str(tmp_path / "f.csv"), "--out",
                 str(tmp_path / "j.json"), "--alpha", "0", "--ties", "none", "--folds", "0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("warning: SurrogateJudge: the coefficients of ['f1'] diverge") and "converged=False" in out


def test_feature_table_and_weight_errors():
    """Regression (issue 15): text feature columns, string-vs-int prompt keys and bad weights."""
    battles, feats = _simulate(seed=5, n_prompts=40)
    with pytest.raises(ComparisonDataError, match=r"\['tag'\] are not numeric"):
        SurrogateJudge(features=["f1", "tag"]).fit(battles, feats.assign(tag="x"))
    as_text = feats.assign(question_id=feats["question_id"].astype(str))
    a = SurrogateJudge().fit(battles, as_text)
    b = SurrogateJudge().fit(battles, feats)
    np.testing.assert_allclose(a.coef_, b.coef_)
    n = len(battles)
    for bad, match in ((np.ones(n - 1), r"shape \(%d,\)" % n), (np.r_[-1.0, np.ones(n - 1)], r"non-negative: rows \[0\]"),
                       (np.r_[np.ones(n - 1), np.nan], "finite")):
        with pytest.raises(ComparisonDataError, match=match):
            SurrogateJudge().fit(battles, feats, weight=bad)
    w = np.where(np.arange(n) % 2 == 0, 2.0, 0.0)
    np.testing.assert_allclose(SurrogateJudge().fit(battles, feats, weight=w).coef_,
                               SurrogateJudge().fit(pd.concat([battles.iloc[::2]] * 2), feats).coef_, rtol=1e-5)
