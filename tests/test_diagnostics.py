"""Diagnostics of when BT fails (issue 12 item 1): each checked against an independent computation."""

import itertools
import json
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats
from scipy.special import expit, log_expit

import bradley
from bradley.cli import main
from conftest import brute_force_bt
from bradley.diagnostics import (
    analyze,
    held_out_vs_saturated,
    intransitive_triads,
    preference_matrix,
    saturated_lr_test,
)
from bradley.errors import MLEDoesNotExistError


def random_counts(rng, n, density=0.7, max_games=6, tie_share=0.2):
    """Random PairCounts: each pair compared with probability ``density``, small counts, some ties."""
    wins = np.zeros((n, n))
    ties = np.zeros((n, n))
    for i, j in itertools.combinations(range(n), 2):
        if rng.random() < density:
            games = rng.integers(1, max_games + 1)
            outcome = rng.choice(3, size=games, p=[(1 - tie_share) / 2, (1 - tie_share) / 2, tie_share])
            wins[i, j] = np.sum(outcome == 0)
            wins[j, i] = np.sum(outcome == 1)
            ties[i, j] = ties[j, i] = np.sum(outcome == 2)
    return bradley.PairCounts.from_matrix(wins, ties, items=[f"m{k}" for k in range(n)])


def brute_force_triads(pairs, z=1.96):
    """Loop over all triples of items: (triads, cyclic, weighted share, confident, {cycle: (weakest z, min count)})."""
    n = pairs.n_items
    credit = {}
    count = {}
    for f, s, wf, ws, t in zip(pairs.first, pairs.second, pairs.wins_first, pairs.wins_second, pairs.ties):
        total = wf + ws + t
        credit[(f, s)], credit[(s, f)] = (wf + t / 2) / total, (ws + t / 2) / total
        count[(f, s)] = count[(s, f)] = total
    triads = cyclic = confident = 0
    w_all = w_cyc = 0.0
    cycles = {}
    for i, j, k in itertools.combinations(range(n), 3):
        if not all(p in count for p in ((i, j), (j, k), (i, k))):
            continue
        triads += 1
        m = min(count[(i, j)], count[(j, k)], count[(i, k)])
        w_all += m
        for a, b, c in ((i, j, k), (i, k, j)):  # the two possible cycle orientations
            if credit[(a, b)] > 0.5 and credit[(b, c)] > 0.5 and credit[(c, a)] > 0.5:
                cyclic += 1
                w_cyc += m
                zs = [2 * np.sqrt(count[(x, y)]) * (credit[(x, y)] - 0.5) for x, y in ((a, b), (b, c), (c, a))]
                confident += min(zs) >= z
                # a cycle is the same from any starting item: key it by its rotation starting at the smallest
                r = [a, b, c]
                start = r.index(min(r))
                cycles[tuple(r[start:] + r[:start])] = (min(zs), m)
    return triads, cyclic, (w_cyc / w_all if w_all else np.nan), confident, cycles


@pytest.mark.parametrize("seed", range(6))
def test_triads_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    pairs = random_counts(rng, n=9 + seed, density=0.75)
    report = intransitive_triads(pairs, top=1000, z=1.0)
    triads, cyclic, weighted, confident, cycles = brute_force_triads(pairs, z=1.0)
    assert report.n_triads == triads and report.n_cyclic == cyclic and report.n_confident == confident
    assert report.share == pytest.approx(cyclic / triads)
    assert report.weighted_share == pytest.approx(weighted)
    assert cyclic > 0  # the random data must exercise the cycle branch
    code = {name: k for k, name in enumerate(pairs.items)}
    found = {}
    for r in report.cycles.itertuples(index=False):
        loop = [code[r.a], code[r.b], code[r.c]]
        start = loop.index(min(loop))
        found[tuple(loop[start:] + loop[:start])] = (r.weakest_z, r.min_count)
        # listed win rates are the winner's of each link, all above 1/2, and match the counts
        assert min(r.rate_ab, r.rate_bc, r.rate_ca) > 0.5
    assert found.keys() == cycles.keys()
    for key, (wz, m) in cycles.items():
        assert found[key] == pytest.approx((wz, m))
    # the listing is sorted, strongest first, and top= keeps the strongest
    assert np.all(np.diff(report.cycles["weakest_z"].to_numpy()) <= 1e-12)
    top3 = intransitive_triads(pairs, top=3, z=1.0).cycles
    assert len(top3) == min(3, cyclic)
    assert np.allclose(top3["weakest_z"], report.cycles["weakest_z"].to_numpy()[:len(top3)])


def test_rock_paper_scissors_share_is_one_and_bt_data_small():
    # three rock-paper-scissors families: every triad with one item of each family is cyclic
    rng = np.random.default_rng(1)
    n_per = 4
    n = 3 * n_per
    family = np.repeat(np.arange(3), n_per)
    wins = np.zeros((n, n))
    for i, j in itertools.combinations(range(n), 2):
        if family[i] == family[j]:
            continue
        p = 0.85 if (family[j] - family[i]) % 3 == 1 else 0.15  # family f beats f + 1
        g = rng.binomial(60, p)
        wins[i, j], wins[j, i] = g, 60 - g
    report = intransitive_triads(bradley.PairCounts.from_matrix(wins))
    assert report.n_triads == n_per ** 3  # only cross-family pairs are compared
    assert report.share == 1.0 and report.weighted_share == 1.0
    assert report.n_confident == n_per ** 3  # 60 games at 0.85 give z ~ 5.4 per link

    data, _ = bradley.simulate_bt(12, 20_000, score_sd=1.5, seed=3)
    bt = intransitive_triads(data)
    assert bt.n_triads == 220
    assert bt.share < 0.05 and bt.n_confident == 0


def test_triads_on_arena_scale_graph_is_fast():
    # 300 items, 60% of pairs compared: ~1 million triads, enumerated over the sparse graph
    import time

    rng = np.random.default_rng(2)
    n = 300
    first, second = np.triu_indices(n, 1)
    keep = rng.random(len(first)) < 0.6
    first, second = first[keep], second[keep]
    games = rng.integers(1, 30, len(first)).astype(float)
    wins = rng.binomial(games.astype(int), expit(rng.normal(0, 1, n)[first] - rng.normal(0, 1, n)[second]))
    pairs = bradley.PairCounts(first, second, wins.astype(float), games - wins, np.zeros(len(first)),
                               np.arange(n).astype(object))
    started = time.perf_counter()
    report = intransitive_triads(pairs, top=5)
    elapsed = time.perf_counter() - started
    adjacency = np.zeros((n, n))
    adjacency[first, second] = adjacency[second, first] = 1
    assert report.n_triads == round(np.trace(adjacency @ adjacency @ adjacency) / 6)
    assert len(report.cycles) == 5
    assert elapsed < 10.0  # 0.09 s CPU measured alone


def test_preference_matrix_counts_and_rates():
    data = bradley.Comparisons.from_arrays(["a", "b", "a", "c", "a"], ["b", "a", "b", "a", "c"],
                                           [1.0, 1.0, 0.5, 0.0, 1.0], weight=[2, 1, 1, 3, 1])
    pm = preference_matrix(data)
    # a-b: a won 2 (weight), b won 1, one tie: rate (2 + 0.5) / 4
    assert pm.win_rate.loc["a", "b"] == pytest.approx(2.5 / 4) and pm.win_rate.loc["b", "a"] == pytest.approx(1.5 / 4)
    assert pm.counts.loc["a", "b"] == 4 and pm.ties.loc["a", "b"] == 1 and pm.wins.loc["b", "a"] == 1
    assert pm.win_rate.loc["a", "c"] == 1.0 and pm.counts.loc["c", "a"] == 4
    assert np.isnan(pm.win_rate.loc["b", "c"]) and pm.counts.loc["b", "c"] == 0
    tidy = pm.to_frame()
    assert len(tidy) == 4  # two compared pairs, both orientations
    row = tidy[(tidy["item"] == "a") & (tidy["opponent"] == "b")].iloc[0]
    assert (row.wins, row.losses, row.ties, row.comparisons) == (2, 1, 1, 4)
    assert preference_matrix(data, ties="drop").win_rate.loc["a", "b"] == pytest.approx(2 / 3)
    assert pm.summary()["item"].tolist()[0] == "a"


def _brute_force_lr(pairs):
    """BT by scipy on the pair likelihood (ties half wins), saturated by a loop: (deviance, ll_bt, ll_sat)."""
    n = pairs.n_items
    wf = pairs.wins_first + pairs.ties / 2
    ws = pairs.wins_second + pairs.ties / 2

    def negll(free):
        s = np.concatenate([[0.0], free])
        d = s[pairs.first] - s[pairs.second]
        return -np.sum(wf * log_expit(d) + ws * log_expit(-d))

    res = optimize.minimize(negll, np.zeros(n - 1), method="BFGS", options={"gtol": 1e-10})
    ll_bt = -res.fun
    ll_sat = 0.0
    for a, b in zip(wf, ws):
        for x in (a, b):
            if x > 0:
                ll_sat += x * np.log(x / (a + b))
    return 2 * (ll_sat - ll_bt), ll_bt, ll_sat


def test_deviance_equals_independent_likelihoods():
    rng = np.random.default_rng(5)
    pairs = random_counts(rng, n=7, density=0.9, max_games=25, tie_share=0.25)
    test = saturated_lr_test(pairs)
    deviance, ll_bt, ll_sat = _brute_force_lr(pairs)
    assert test.log_likelihood_bt == pytest.approx(ll_bt, abs=1e-7)
    assert test.log_likelihood_saturated == pytest.approx(ll_sat, abs=1e-9)
    assert test.deviance == pytest.approx(deviance, abs=1e-6)
    assert test.df == pairs.n_pairs - (7 - 1)
    assert test.p_value == pytest.approx(stats.chi2.sf(deviance, test.df), rel=1e-6)
    assert test.pairs["deviance"].sum() == pytest.approx(test.deviance, abs=1e-6)
    assert any("half wins" in note for note in test.notes)
    # the same from comparison rows with weights (rows aggregate to the same counts)
    rows = pairs.to_comparisons()
    assert saturated_lr_test(rows).deviance == pytest.approx(test.deviance, abs=1e-7)
    # ties left out: the brute force on the decisive counts
    decisive = bradley.PairCounts(pairs.first, pairs.second, pairs.wins_first, pairs.wins_second,
                                  np.zeros(pairs.n_pairs), pairs.items)
    keep = decisive.totals > 0
    decisive = bradley.PairCounts(*(a[keep] for a in (decisive.first, decisive.second, decisive.wins_first,
                                                       decisive.wins_second, decisive.ties)), decisive.items)
    assert saturated_lr_test(pairs, ties="drop").deviance == pytest.approx(_brute_force_lr(decisive)[0], abs=1e-6)


def test_df_counts_components_and_deviance_adds_up():
    rng = np.random.default_rng(8)
    a = random_counts(rng, n=5, density=1.0, max_games=20, tie_share=0.0)
    b = random_counts(rng, n=4, density=1.0, max_games=20, tie_share=0.0)
    wins = np.zeros((9, 9))
    wins[:5, :5] = a.win_matrix(0.0)
    wins[5:, 5:] = b.win_matrix(0.0)
    both = bradley.PairCounts.from_matrix(wins)
    test = saturated_lr_test(both)
    assert test.n_components == 2 and test.df == (10 - 4) + (6 - 3)
    assert test.deviance == pytest.approx(saturated_lr_test(a).deviance + saturated_lr_test(b).deviance, abs=1e-7)


def test_lr_p_values_uniform_under_bt_and_reject_cycles():
    rng = np.random.default_rng(11)
    n, games = 6, 30
    first, second = np.triu_indices(n, 1)
    p_values = []
    for _ in range(200):
        s = rng.normal(0, 0.7, n)
        w = rng.binomial(games, expit(s[first] - s[second])).astype(float)
        pairs = bradley.PairCounts(first, second, w, games - w, np.zeros(len(first)), np.arange(n).astype(object))
        p_values.append(saturated_lr_test(pairs).p_value)
    p_values = np.asarray(p_values)
    rate = np.mean(p_values < 0.05)
    assert 0.01 <= rate <= 0.10, rate
    assert stats.kstest(p_values, "uniform").pvalue > 0.01

    # a cyclic truth: BT scores on top of a rock-paper-scissors cycle among items 0, 1, 2
    cyc = np.zeros((n, n))
    cyc[0, 1] = cyc[1, 2] = cyc[2, 0] = 1.2
    cyc -= cyc.T
    rejected = 0
    for _ in range(20):
        s = rng.normal(0, 0.7, n)
        w = rng.binomial(2 * games, expit(s[first] - s[second] + cyc[first, second])).astype(float)
        pairs = bradley.PairCounts(first, second, w, 2 * games - w, np.zeros(len(first)),
                                   np.arange(n).astype(object))
        rejected += saturated_lr_test(pairs).p_value < 0.05
    assert rejected >= 18


def test_lr_test_when_mle_does_not_exist():
    pairs = bradley.PairCounts.from_matrix([[0, 3, 2], [0, 0, 0], [1, 2, 0]], items=["a", "b", "c"])
    with pytest.raises(MLEDoesNotExistError, match="never won"):
        saturated_lr_test(pairs)
    report = analyze(pairs, folds=2)
    assert report.lr_test is None and "never won" in report.skipped["lr_test"]
    assert "not computed" in report.to_text()


def test_held_out_matches_compare_methods_and_a_brute_force_saturated_model():
    rng = np.random.default_rng(4)
    data, _ = bradley.simulate_bt(7, 1500, seed=4)
    outcome = data.outcome.copy()
    outcome[rng.random(len(outcome)) < 0.15] = 0.5  # some ties
    data = bradley.Comparisons.from_codes(data.left, data.right, outcome, items=data.items)
    labels = rng.integers(0, 4, data.n_comparisons)
    alpha = 2.0
    table = held_out_vs_saturated(data, split=labels, alpha=alpha).set_index("model")
    # BT: each fold's training rows maximised by scipy (conftest), scored on the held-out rows
    bt_total = 0.0
    for fold in range(4):
        train, test = labels != fold, labels == fold
        theta, _ = brute_force_bt(data.left[train], data.right[train], data.outcome[train], 7)
        d = theta[data.left[test]] - theta[data.right[test]]
        o = data.outcome[test]
        bt_total -= np.sum(o * log_expit(d) + (1 - o) * log_expit(-d))
    assert table.loc["bt", "log_loss"] == pytest.approx(bt_total / data.n_comparisons, rel=1e-7)
    # the saturated model written out: per fold, per pair training rates smoothed toward 1/2
    frame = data.to_frame()
    frame["lo"] = np.minimum(data.left, data.right)
    frame["hi"] = np.maximum(data.left, data.right)
    frame["o"] = np.where(data.left < data.right, data.outcome, 1 - data.outcome)
    total = 0.0
    for fold in range(4):
        train, test = frame[labels != fold], frame[labels == fold]
        stats_ = train.groupby(["lo", "hi"])["o"].agg(["sum", "count"])
        for row in test.itertuples():
            w, m = stats_.loc[(row.lo, row.hi)] if (row.lo, row.hi) in stats_.index else (np.nan, 0)
            assert m > 0  # 1500 rows among 21 pairs: every pair is in every training fold
            p = (w + alpha) / (m + 2 * alpha)
            total -= row.o * np.log(p) + (1 - row.o) * np.log(1 - p)
    assert table.loc["saturated", "log_loss"] == pytest.approx(total / len(frame), rel=1e-10)
    assert table.loc["coin", "log_loss"] == pytest.approx(np.log(2))
    assert table.attrs["unseen_share"] == 0.0


def test_held_out_tells_bt_data_from_cyclic_data():
    rng = np.random.default_rng(6)
    # BT truth, many items and few games per pair: one scale pools information, the saturated model cannot
    data, _ = bradley.simulate_bt(30, 6000, seed=6)
    bt_table = held_out_vs_saturated(data).set_index("model")
    assert bt_table.loc["saturated", "gap_vs_bt"] > 0.01
    # a pure cycle: BT is at chance, the saturated model is not
    n = 9
    left = rng.integers(0, n, 6000)
    right = (left + rng.integers(1, n, 6000)) % n
    beats = ((right - left) % n) <= 4  # each item beats the next four around the circle
    outcome = (rng.random(6000) < np.where(beats, 0.85, 0.15)).astype(float)
    cyclic = bradley.Comparisons.from_codes(left, right, outcome, items=n)
    table = held_out_vs_saturated(cyclic).set_index("model")
    assert table.loc["bt", "log_loss"] == pytest.approx(np.log(2), abs=0.01)
    assert table.loc["saturated", "gap_vs_bt"] < -0.2
    report = analyze(cyclic)
    assert report.triads.share > 0.2 and report.lr_test.p_value < 1e-12


def test_held_out_unseen_pairs_and_missing_mle_fall_back_with_notes():
    # item d appears in one row only: some training folds lack it or see it only winning
    data = bradley.Comparisons.from_arrays(
        ["a", "a", "b", "b", "c", "c", "a", "d"] * 3 + ["d"], ["b", "c", "c", "a", "a", "b", "b", "a"] * 3 + ["c"],
        [1, 0, 1, 0, 1, 0, 1, 1] * 3 + [1])
    table = held_out_vs_saturated(data, folds=5, seed=1)
    assert table.attrs["unseen_share"] > 0
    assert any("prior=10" in note for note in table.attrs["notes"])
    assert np.isfinite(table["log_loss"]).all()


def test_analyze_json_and_text_cli(tmp_path, capsys):
    rng = np.random.default_rng(9)
    n = 6
    left = rng.integers(0, n, 3000)
    right = (left + rng.integers(1, n, 3000)) % n
    names = np.array([f"model-{k}" for k in range(n)])
    winner = np.where(rng.random(3000) < 0.2, "tie", np.where(rng.random(3000) < 0.6, "model_a", "model_b"))
    path = tmp_path / "battles.csv"
    pd.DataFrame({"model_a": names[left], "model_b": names[right], "winner": winner}).to_csv(path, index=False)
    assert main(["analyze", str(path), "--format", "json", "--folds", "3", "--top", "4"]) == 0
    out = json.loads(capsys.readouterr().out)
    expected = analyze(bradley.read_comparisons(path), folds=3, top=4)
    assert out["n_comparisons"] == 3000 and out["n_items"] == n and out["n_pairs"] == 15
    assert out["triads"]["n_triads"] == 20 and isinstance(out["triads"]["n_triads"], int)
    assert out["triads"]["n_cyclic"] == expected.triads.n_cyclic
    assert len(out["triads"]["cycles"]) == min(4, expected.triads.n_cyclic)
    assert out["lr_test"]["deviance"] == pytest.approx(expected.lr_test.deviance)
    assert out["lr_test"]["df"] == 15 - 5
    assert out["lr_test_decisive"]["df"] == 10  # ties present: the decisive-games test too
    models = {m["model"]: m["log_loss"] for m in out["held_out"]["models"]}
    assert models["bt"] == pytest.approx(expected.held_out["log_loss"].iloc[0])
    assert len(out["lr_test"]["worst_pairs"]) == 4

    assert main(["analyze", str(path), "--folds", "3"]) == 0
    text = capsys.readouterr().out
    for phrase in ("3,000 comparisons, 6 items, 15 compared pairs", "Intransitive triads", "triads with all three "
                   "pairs compared: 20", "Likelihood-ratio test", f"on {10:,} df", "decisive games only",
                   "Held-out log-loss", "saturated", "coin"):
        assert phrase in text, phrase

    assert main(["analyze", str(path), "--ties", "drop", "--format", "json"]) == 0
    dropped = json.loads(capsys.readouterr().out)
    assert "lr_test_decisive" not in dropped and dropped["lr_test"]["ties"] == "drop"
    assert dropped["lr_test"]["deviance"] == pytest.approx(out["lr_test_decisive"]["deviance"])


@pytest.mark.slow
def test_analyze_arena_cli(capsys):
    path = str(bradley.datasets.arena_140k_path())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["analyze", path, "--drop-self-comparisons", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_items"] == 53 and out["skipped"] == {}
    assert out["triads"]["n_triads"] > 10_000
    assert out["lr_test"]["df"] == out["n_pairs"] - 52


def test_analyze_names_why_the_test_is_undefined_without_unusable_cli_remedies():
    import pandas as pd

    from bradley.diagnostics import analyze

    frame = pd.DataFrame({"left": ["a", "a", "b", "c"], "right": ["b", "c", "c", "a"], "outcome": [1, 1, 1, 0]})
    data = bradley.read_comparisons(frame, left="left", right="right", outcome="outcome")
    reason = analyze(data, folds=2).skipped["lr_test"]
    assert "never lost" in reason and "undefined" in reason
    assert "--prior" not in reason  # `bradley analyze` has no --prior option
