"""bradley.train.data and bradley.train.toy: preference rows -> token ids -> batches -> PreferenceBatch.

Truths used: the tokenizer itself on the full text / conversation (and the chat
template's own ``{% generation %}`` assistant mask), decoding the response
tokens back to the response text, TRL 1.16's DPO dataset preparation on the
same rows, hand-counted truncation, and log-probs of chosen and rejected scored
separately with ``bradley.nn.logprobs.sequence_logprobs`` on a float64 model.
"""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
import types
import warnings

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
datasets = pytest.importorskip("datasets")

from bradley.nn import PreferenceBatch, get  # noqa: E402
from bradley.nn.logprobs import model_logprobs, sequence_logprobs  # noqa: E402
from bradley.train.data import (  # noqa: E402
    ListCollator,
    PairCollator,
    TokenizationReport,
    UnpairedCollator,
    list_preference_batch,
    loss_fields,
    preference_batch,
    read_preferences,
    split_pairs,
    tokenize_preferences,
)
from bradley.train.toy import (  # noqa: E402
    MARKER,
    toy_causal_lm,
    toy_preference_dataset,
    toy_sequence_classifier,
    toy_tokenizer,
)


@pytest.fixture(scope="module")
def tok():
    return toy_tokenizer()


def _user(text):
    return {"role": "user", "content": text}


def _bot(text):
    return {"role": "assistant", "content": text}


def _decode(tok, ids):
    return tok.decode(ids, skip_special_tokens=True)


# ---------------------------------------------------------------- toy pieces


def test_toy_tokenizer_special_tokens_and_round_trip(tok):
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 2)
    assert tok.unk_token == "<unk>" and tok.padding_side == "right"
    text = "the cat is good , the dog runs ."
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.bos_token_id and tok.unk_token_id not in ids
    assert _decode(tok, ids) == "the cat is good, the dog runs."
    assert tok.convert_ids_to_tokens(tok("zebra")["input_ids"]) == ["<s>", "<unk>"]
    # a vocabulary from sentences
    custom = toy_tokenizer(["What colour is the sky?"])
    assert custom.tokenize("the sky?") == ["the", "sky", "?"]
    with pytest.raises(TypeError, match="iterable of strings"):
        toy_tokenizer("one string")


def test_toy_chat_template_generation_prompt_and_assistant_mask(tok):
    chat = [{"role": "system", "content": "be calm"}, _user("hello"), _bot("the cat")]
    text = tok.apply_chat_template(chat, tokenize=False)
    assert text == "<s><|system|> be calm\n<|user|> hello\n<|assistant|> the cat</s>\n"
    prompt = tok.apply_chat_template(chat[:2], tokenize=False, add_generation_prompt=True)
    assert text.startswith(prompt) and prompt.endswith("<|assistant|> ")
    out = tok.apply_chat_template(chat, return_dict=True, return_assistant_tokens_mask=True)
    marked = [i for i, m in zip(out["input_ids"], out["assistant_masks"], strict=True) if m]
    assert tok.convert_ids_to_tokens(marked) == ["the", "cat", "</s>"]
    with pytest.raises(Exception, match="unknown role"):
        tok.apply_chat_template([{"role": "robot", "content": "x"}], tokenize=False)


def test_toy_models_are_sized_to_the_tokenizer_and_seeded(tok):
    state = torch.random.get_rng_state()
    a = toy_causal_lm(tok, hidden_size=8, layers=1, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state), "building a toy model moved the global RNG"
    b = toy_causal_lm(tok, hidden_size=8, layers=1, seed=3)
    c = toy_causal_lm(tok, hidden_size=8, layers=1, seed=4)
    assert torch.equal(a.lm_head.weight, b.lm_head.weight) and not torch.equal(a.lm_head.weight, c.lm_head.weight)
    assert a.config.vocab_size == len(tok) and a.config.num_hidden_layers == 1
    assert (a.config.pad_token_id, a.config.eos_token_id) == (tok.pad_token_id, tok.eos_token_id)
    assert a.generation_config.pad_token_id == tok.pad_token_id
    assert toy_causal_lm(tok, dtype=torch.float64).lm_head.weight.dtype == torch.float64
    rm = toy_sequence_classifier(tok, num_labels=2)
    assert rm.config.pad_token_id == tok.pad_token_id and rm.score.out_features == 2
    with pytest.raises(ValueError, match="heads"):
        toy_causal_lm(tok, hidden_size=6, heads=4)


def test_toy_marker_data_is_learnable():
    ds = toy_preference_dataset(200, seed=1, ties=0.25, margins=True, strengths=True, soft_targets=True, categories=3)
    ties = 0
    for row in ds:
        c, r = row["chosen"].split().count(MARKER), row["rejected"].split().count(MARKER)
        assert row["margin"] == c - r and row["strength"] == max(c - r, 1)
        assert math.isclose(row["target"], 1 / (1 + math.exp(-(c - r))))
        assert row["prompt"].startswith(row["category"] + " :")
        if row["is_tie"]:
            ties += 1
            assert c == r
        else:
            assert c >= 1 and r == 0  # the marker appears only in chosen responses
    assert 30 <= ties <= 70  # 25% of 200
    assert set(ds["category"]) == {"chat", "code", "math"}
    # a scalar reward = count of the marker orders every non-tied pair: the preference is learnable
    assert toy_preference_dataset(5, seed=1)[0] == toy_preference_dataset(5, seed=1)[0]


def test_toy_kwise_and_cyclic_data():
    ds = toy_preference_dataset(30, seed=2, k=4)
    for row in ds:
        counts = [r.split().count(MARKER) for r in row["responses"]]
        assert row["scores"] == counts
        assert row["ranks"] == [1 + sum(o > c for o in counts) for c in counts]
    beats = {("paper", "rock"), ("scissors", "paper"), ("rock", "scissors")}
    cyc = toy_preference_dataset(60, seed=0, kind="cyclic")
    seen = set()
    for row in cyc:
        pair = (row["chosen"].split()[-2], row["rejected"].split()[-2])
        assert pair in beats
        seen.add(pair)
    assert seen == beats
    with pytest.raises(ValueError, match="cyclic"):
        toy_preference_dataset(3, kind="cyclic", ties=0.5)


# ---------------------------------------------------------------- reading formats


def test_read_implicit_prompt_multi_turn():
    shared = [{"role": "system", "content": "be calm"}, _user("hi"), _bot("hello"), _user("a song ?")]
    rows = [{"chosen": shared + [_bot("the song")], "rejected": shared + [_bot("no")]}]
    row = read_preferences(rows)[0]
    assert row["prompt"] == shared
    assert row["chosen"] == [_bot("the song")] and row["rejected"] == [_bot("no")]
    # a string prompt beside full conversations is informative only (TRL's convention)
    row = read_preferences([{"prompt": "hi", **rows[0]}])[0]
    assert row["prompt"] == shared
    # explicit message prompt, the prompt repeated inside chosen / rejected
    row = read_preferences([{"prompt": shared, **rows[0]}])[0]
    assert row["chosen"] == [_bot("the song")]
    # a string prompt with assistant-only responses becomes a user turn
    row = read_preferences([{"prompt": "hi", "chosen": [_bot("a")], "rejected": [_bot("b")]}])[0]
    assert row["prompt"] == [_user("hi")]


def test_read_errors_name_the_row_and_column():
    good = {"prompt": "q", "chosen": "a", "rejected": "b"}
    cases = [
        ({"chosen": [_user("x"), _bot("a")], "rejected": [_user("y"), _bot("b")]}, "row 2: chosen and rejected share"),
        (
            {"chosen": [_user("x"), _bot("a"), _user("more")], "rejected": [_user("x"), _bot("b")]},
            r"row 2, column 'chosen': the response turns after the prompt have roles \['assistant', 'user'\]",
        ),
        ({"prompt": "q", "chosen": [{"content": "a"}], "rejected": [_bot("b")]}, "row 2, column 'chosen', message 0"),
        ({"prompt": "q", "chosen": "a", "rejected": None}, "row 2, column 'rejected': expected a string"),
    ]
    for bad, message in cases:
        rows = [good, good, bad] if "chosen" in bad and isinstance(bad["chosen"], str) else None
        if rows is None:
            conv = {"prompt": "q", "chosen": [_bot("a")], "rejected": [_bot("b")]}
            rows = [conv, conv, bad]
        with pytest.raises(ValueError, match=message):
            read_preferences(rows)
    extra = [
        ({"strength": 0.0}, "row 1, column 'strength': a preference strength must be > 0"),
        ({"margin": float("nan")}, "row 1, column 'margin': expected a finite number"),
        ({"is_tie": 2}, "row 1, column 'is_tie'"),
    ]
    for fields, message in extra:
        key = next(iter(fields))
        ok = {**good, key: 1.0 if key != "is_tie" else 0}
        with pytest.raises(ValueError, match=message):
            read_preferences([ok, {**good, **fields}])
    with pytest.raises(ValueError, match="cannot tell the format"):
        read_preferences([{"question": "q", "answer": "a"}])
    with pytest.raises(ValueError, match=r"row 0, column 'ranks': ranks are integers 1 \(best\) .. 2"):
        read_preferences([{"prompt": "q", "responses": ["a", "b"], "ranks": [1, 3]}])
    with pytest.raises(TypeError, match="one split"):
        read_preferences(datasets.DatasetDict({"train": datasets.Dataset.from_list([good])}))


def test_read_tie_column_and_input_containers():
    import pandas as pd

    rows = [{"prompt": "q", "chosen": "a", "rejected": "b", "tie": 1}]
    ds = read_preferences(rows)
    assert "tie" not in ds.column_names and ds[0]["is_tie"] is True
    frame = pd.DataFrame({"prompt": ["q"], "chosen": ["a"], "rejected": ["b"]})
    assert read_preferences(frame)[0]["chosen"] == "a"
    assert read_preferences({"prompt": ["q"], "chosen": ["a"], "rejected": ["b"]})[0]["rejected"] == "b"


# ---------------------------------------------------------------- tokenising


def test_string_pairs_round_trip(tok):
    ds = toy_preference_dataset(12, seed=3, categories=2)
    out, report = tokenize_preferences(ds, tok)
    assert report.format == "pair" and not report.conversational and report.kept == 12
    assert report.tokens_dropped == 0 and report.boundary_mismatches == 0
    assert report.categories == sorted(set(ds["category"]))
    for row in out:
        assert row["prompt_ids"][0] == tok.bos_token_id
        # the toy text is space-separated words and punctuation: one token each
        assert tok.convert_ids_to_tokens(row["prompt_ids"]) == ["<s>", *row["prompt"].split()]
        for side in ("chosen", "rejected"):
            ids = row[f"{side}_ids"]
            assert ids[-1] == tok.eos_token_id and tok.eos_token_id not in ids[:-1]
            assert row["prompt_ids"] + ids == tok(row["prompt"] + row[side])["input_ids"] + [tok.eos_token_id]
            assert tok.convert_ids_to_tokens(ids) == [*row[side].split(), "</s>"]
            assert _decode(tok, ids) == row[side].strip().replace(" .", ".")
        assert report.categories[row["category_id"]] == row["category"]


def test_conversational_pairs_match_the_templates_assistant_mask(tok):
    shared = [_user("tell me about cats ?"), _bot("the cat sleeps ."), _user("and dogs ?")]
    implicit = [{"chosen": shared + [_bot("the dog is good .")], "rejected": shared + [_bot("no .")]}]
    explicit = [{"prompt": [_user("hello")], "chosen": [_bot("good")], "rejected": [_bot("bad cat")]}]
    out, report = tokenize_preferences(implicit, tok)
    out2, report2 = tokenize_preferences(explicit, tok)
    assert report.conversational and report.boundary_mismatches == 0 == report2.boundary_mismatches
    for i, row in enumerate([out[0], out2[0]]):
        for side in ("chosen", "rejected"):
            conversation = row["prompt"] + row[side]
            full = tok.apply_chat_template(conversation, return_dict=True, return_assistant_tokens_mask=True)
            ids = row["prompt_ids"] + row[f"{side}_ids"]
            assert ids == full["input_ids"]
            assert tok.unk_token_id not in ids
            # response tokens = the tokens of the final assistant turn as the template marks it
            last_turn = len(full["input_ids"]) - len(row[f"{side}_ids"])
            assert all(full["assistant_masks"][last_turn:])
            assert _decode(tok, row[f"{side}_ids"]).startswith(row[side][0]["content"].replace(" .", "."))
        prompt = tok.apply_chat_template(row["prompt"], add_generation_prompt=True, return_dict=True)["input_ids"]
        assert row["prompt_ids"] == prompt, f"row {i}"
    assert len(out[0]["prompt"]) == 3


def test_tokenisation_matches_trl_dpo_preparation(tok):
    trl = pytest.importorskip("trl")
    from trl import DPOConfig

    with warnings.catch_warnings():  # TRL's config sets a transformers option deprecated in v5
        warnings.simplefilter("ignore", FutureWarning)
        args = DPOConfig(output_dir="unused", report_to="none", max_length=None, use_cpu=True)
    stub = types.SimpleNamespace(_tokenizer=tok)  # _prepare_dataset reads only the tokenizer from self
    shared = [_user("tell me about cats ?"), _bot("the cat sleeps ."), _user("and dogs ?")]
    datasets_to_check = {
        "strings": toy_preference_dataset(6, seed=1),
        "messages": toy_preference_dataset(6, seed=1, conversational=True),
        "implicit messages": [{"chosen": shared + [_bot("good")], "rejected": shared + [_bot("bad")]}] * 2,
        "implicit strings": [{"chosen": "the cat is good .", "rejected": "the cat runs ."}] * 2,
    }
    for name, data in datasets_to_check.items():
        raw = datasets.Dataset.from_list(data) if isinstance(data, list) else data
        theirs = trl.DPOTrainer._prepare_dataset(stub, raw, tok, args, "train")
        ours, _ = tokenize_preferences(raw, tok)
        for column in ("prompt_ids", "chosen_ids", "rejected_ids"):
            assert ours[column] == theirs[column], f"{name}: {column}"


def test_truncation_is_counted_exactly(tok):
    prompt = " ".join(["cat"] * 10)  # 11 tokens with <s>
    rows = [
        {"prompt": prompt, "chosen": " dog dog dog", "rejected": " bird"},  # 4 and 2 tokens with </s>
        {"prompt": "the", "chosen": " dog", "rejected": " bird"},  # 2 + 2 and 2: fits
    ]
    out, report = tokenize_preferences(rows, tok, max_length=9, max_prompt_length=6)
    # row 0: prompt 11 -> 6 (keep end: no <s>), room 3: chosen 4 -> 3, rejected 2 fits
    assert out[0]["prompt_ids"] == tok(prompt)["input_ids"][-6:]
    assert out[0]["chosen_ids"] == tok(" dog dog dog", add_special_tokens=False)["input_ids"]
    assert (report.prompts_truncated, report.prompt_tokens_dropped) == (1, 5)
    assert (report.responses_truncated, report.response_tokens_dropped) == (1, 1)
    assert report.tokens_dropped == 6 and report.longest_sequence == 9 and report.longest_prompt == 6
    assert report.examples_dropped == 0 and report.kept == 2
    # keep_start keeps <s> and the first prompt tokens
    out, _ = tokenize_preferences(rows, tok, max_prompt_length=6, prompt_truncation="keep_start")
    assert out[0]["prompt_ids"] == tok(prompt)["input_ids"][:6]
    # a prompt longer than max_length is cut to leave one response token
    out, report = tokenize_preferences(rows, tok, max_length=5)
    assert len(out[0]["prompt_ids"]) == 4 and out[0]["rejected_ids"] == [tok.convert_tokens_to_ids("bird")]
    assert (report.prompt_tokens_dropped, report.response_tokens_dropped) == (7, 3 + 1)
    # dropping instead of truncating
    out, report = tokenize_preferences(rows, tok, max_length=9, drop_overlong=True)
    assert len(out) == 1 and out[0]["prompt"] == "the"
    assert (report.examples, report.kept, report.examples_dropped, report.tokens_dropped) == (2, 1, 1, 0)
    with pytest.raises(ValueError, match="drop_overlong=True dropped them all"):
        tokenize_preferences(rows[:1], tok, max_length=9, drop_overlong=True)
    with pytest.raises(ValueError, match="prompt_truncation"):
        tokenize_preferences(rows, tok, prompt_truncation="left")


def test_truncation_is_logged(tok, caplog):
    rows = [{"prompt": "the", "chosen": " dog dog dog", "rejected": " bird"}]
    with caplog.at_level(logging.INFO, logger="bradley.train.data"):
        tokenize_preferences(rows, tok)
        tokenize_preferences(rows, tok, max_length=3)
    levels = [r.levelno for r in caplog.records if r.name == "bradley.train.data"]
    assert levels == [logging.INFO, logging.WARNING]
    # prompt [<s>, the] leaves room for one response token: chosen 4 -> 1, rejected 2 -> 1
    assert "2 responses truncated (4 tokens)" in caplog.records[-1].getMessage()


def test_kwise_and_unpaired_tokenisation(tok):
    ds = toy_preference_dataset(5, seed=4, k=3, conversational=True)
    out, report = tokenize_preferences(ds, tok)
    assert report.format == "list" and report.conversational
    assert out["ranks"] == ds["ranks"] and out["scores"] == ds["scores"]
    for row in out:
        assert len(row["response_ids"]) == 3
        for ids, response in zip(row["response_ids"], row["responses"], strict=True):
            full = tok.apply_chat_template(row["prompt"] + response, return_dict=True)["input_ids"]
            assert row["prompt_ids"] + ids == full
    rows = [
        {"prompt": "the cat", "completion": " is good .", "label": True},
        {"prompt": "the dog", "completion": " runs", "label": False},
    ]
    out, report = tokenize_preferences(rows, tok, max_length=4)
    assert report.format == "unpaired"
    # prompts are 3 tokens with <s>: room for 1; completions of 4 and 2 tokens (with </s>)
    assert tok.convert_ids_to_tokens(out[0]["completion_ids"]) == ["is"]
    assert tok.convert_ids_to_tokens(out[1]["completion_ids"]) == ["runs"]
    assert (report.responses_truncated, report.response_tokens_dropped) == (2, 4)


def test_tokenisation_with_workers_matches(tok):
    ds = toy_preference_dataset(40, seed=5, ties=0.2)
    one, r1 = tokenize_preferences(ds, tok, max_length=12)
    two, r2 = tokenize_preferences(ds, tok, max_length=12, num_proc=2)
    assert one["chosen_ids"] == two["chosen_ids"] and r1 == r2 and r1.tokens_dropped > 0


def test_missing_chat_template_is_an_error(tok):
    rows = [
        {"prompt": "q", "chosen": [_bot("a")], "rejected": [_bot("b")]},
    ]
    bare = toy_tokenizer()
    bare.chat_template = None
    with pytest.raises(ValueError, match="no chat_template"):
        tokenize_preferences(rows, bare)


# ---------------------------------------------------------------- collating


def test_pair_collator_order_padding_and_fields(tok):
    ds = toy_preference_dataset(3, seed=6, ties=0.5, margins=True, soft_targets=True, categories=2)
    out, report = tokenize_preferences(ds, tok)
    features = [out[i] for i in range(3)]
    collate = PairCollator(tok.pad_token_id, pad_to_multiple_of=8, report=report)
    batch = collate(features)
    rows = [f["prompt_ids"] + f["chosen_ids"] for f in features] + [
        f["prompt_ids"] + f["rejected_ids"] for f in features
    ]
    length = batch["input_ids"].shape[1]
    assert length % 8 == 0 and length >= max(map(len, rows)) > length - 8
    for i, ids in enumerate(rows):
        n, p = len(ids), len(features[i % 3]["prompt_ids"])
        assert batch["input_ids"][i, :n].tolist() == ids
        assert (batch["input_ids"][i, n:] == tok.pad_token_id).all()
        assert batch["attention_mask"][i].tolist() == [1] * n + [0] * (length - n)
        assert batch["completion_mask"][i].tolist() == [0] * p + [1] * (n - p) + [0] * (length - n)
        assert batch["labels"][i].tolist() == [-100] * p + ids[p:] + [-100] * (length - n)
    assert batch["is_tie"].dtype == torch.bool and batch["is_tie"].tolist() == [f["is_tie"] for f in features]
    assert batch["margin"].tolist() == [f["margin"] for f in features]
    assert batch["category_id"].dtype == torch.long
    assert sorted(loss_fields(batch)) == ["is_tie", "margin", "target"]
    padding = sum(length - len(r) for r in rows)
    assert (report.padding_tokens, report.batch_tokens) == (padding, 6 * length)
    assert report.padding_fraction == padding / (6 * length)
    with pytest.raises(KeyError, match="lacks \\['chosen_ids'\\]"):
        collate([{"prompt_ids": [1], "rejected_ids": [2]}])
    with pytest.raises(TypeError, match="pad_token_id must be an int"):
        PairCollator(None)


def test_collator_works_as_a_dataloader_collate_fn(tok):
    out, _ = tokenize_preferences(toy_preference_dataset(5, seed=7), tok)
    loader = torch.utils.data.DataLoader(out, batch_size=2, collate_fn=PairCollator(tok.pad_token_id))
    shapes = [tuple(b["input_ids"].shape)[0] for b in loader]
    assert shapes == [4, 4, 2]


def test_list_and_unpaired_collators():
    collate = ListCollator(pad_token_id=0)
    batch = collate(
        [
            {"prompt_ids": [5], "response_ids": [[6], [7, 7], [8]], "ranks": [2, 1, 3], "scores": [1.0, 2.0, 0.0]},
            {"prompt_ids": [5, 5], "response_ids": [[9], [6]], "ranks": [1, 2], "scores": [3.0, 1.0]},
        ]
    )
    assert batch["input_ids"].shape == (6, 3)
    assert batch["completion_mask"].tolist()[5] == [0, 0, 0]  # filler slot: prompt only
    assert batch["attention_mask"].tolist()[5] == [1, 1, 0]
    assert batch["response_scores"].tolist() == [[1.0, 2.0, 0.0], [3.0, 1.0, 0.0]]
    assert batch["list_mask"].tolist() == [[True] * 3, [True, True, False]]
    un = UnpairedCollator(pad_token_id=0)(
        [
            {"prompt_ids": [5], "completion_ids": [6], "label": False},
            {"prompt_ids": [7], "completion_ids": [8], "label": 1},
        ]
    )
    assert un["desirable"].tolist() == [False, True] and un["input_ids"].shape == (2, 2)


# ---------------------------------------------------------------- to PreferenceBatch


def test_preference_batch_equals_scoring_chosen_and_rejected_separately(tok):
    model = toy_causal_lm(tok, hidden_size=16, layers=2, seed=1, dtype=torch.float64)
    ref = toy_causal_lm(tok, hidden_size=16, layers=2, seed=2, dtype=torch.float64)
    ds = toy_preference_dataset(4, seed=8, margins=True)
    out, _ = tokenize_preferences(ds, tok)
    features = [out[i] for i in range(4)]
    batch = PairCollator(tok.pad_token_id)(features)
    with torch.no_grad():
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        policy_logits = model(**inputs).logits
        ref_logits = ref(**inputs).logits
    token_logps = sequence_logprobs(policy_logits, batch["labels"]).per_token
    pb = preference_batch(
        token_logps,
        batch["completion_mask"],
        ref_token_logps=sequence_logprobs(ref_logits, batch["labels"]),
        **loss_fields(batch),
    )
    assert isinstance(pb, PreferenceBatch) and torch.equal(pb.margin, batch["margin"])
    for i, f in enumerate(features):
        for side in ("chosen", "rejected"):
            ids = torch.tensor([f["prompt_ids"] + f[f"{side}_ids"]])
            labels = ids.clone()
            labels[0, : len(f["prompt_ids"])] = -100
            with torch.no_grad():
                alone = sequence_logprobs(model(ids).logits, labels)
                alone_ref = sequence_logprobs(ref(ids).logits, labels)
            assert abs(pb.get(f"policy_{side}_logps")[i].item() - alone.sum.item()) < 1e-10
            assert abs(pb.get(f"ref_{side}_logps")[i].item() - alone_ref.sum.item()) < 1e-10
            assert pb.get(f"{side}_lengths")[i].item() == len(f[f"{side}_ids"])
            assert abs(pb.get(f"policy_{side}_avg_logps")[i].item() - alone.avg.item()) < 1e-10
    # any loss by name runs on it
    loss = get("sigmoid", beta=0.1)(pb)
    assert loss.loss.shape == (4,) and torch.isfinite(loss.loss).all()


def test_preference_batch_from_model_logprobs_and_shape_errors(tok):
    model = toy_causal_lm(tok, seed=1, dtype=torch.float64)
    out, _ = tokenize_preferences(toy_preference_dataset(3, seed=9), tok)
    batch = PairCollator(tok.pad_token_id)([out[i] for i in range(3)])
    with torch.no_grad():
        lp = model_logprobs(
            model, batch["input_ids"], batch["labels"], batch["attention_mask"], extra=("log_sum_sq_probs",)
        )
    pb = preference_batch(lp)
    chosen, rejected = split_pairs(lp.sum, 3)
    assert torch.equal(pb.get("policy_chosen_logps"), chosen) and torch.equal(pb.get("policy_rejected_logps"), rejected)
    assert pb.chosen_log_sum_sq_probs is not None
    with pytest.raises(ValueError, match="shifted by one"):
        preference_batch(lp.per_token[:, :-1], batch["completion_mask"])
    with pytest.raises(ValueError, match="6 rows"):
        split_pairs(torch.zeros(6), 2)
    with pytest.raises(ValueError, match="odd|even"):
        split_pairs(torch.zeros(5))
    with pytest.raises(ValueError, match="computed here"):
        preference_batch(lp, chosen_mask=batch["completion_mask"][:3])


def test_list_preference_batch_equals_separate_scoring(tok):
    model = toy_causal_lm(tok, seed=3, dtype=torch.float64)
    rows = [
        {"prompt": "the cat", "responses": [" is good .", " runs", " sleeps ."], "ranks": [1, 3, 2]},
        {"prompt": "the dog", "responses": [" walks", " is good good ."], "ranks": [2, 1]},
    ]
    out, _ = tokenize_preferences(rows, tok)
    batch = ListCollator(tok.pad_token_id)([out[0], out[1]])
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    pb = list_preference_batch(
        sequence_logprobs(logits, batch["labels"]).per_token,
        batch["completion_mask"],
        batch["ranks"],
        batch["list_mask"],
    )
    assert pb.policy_logps.shape == (2, 3) and pb.list_mask.tolist() == [[True] * 3, [True, True, False]]
    for b, f in enumerate([out[0], out[1]]):
        for k, ids in enumerate(f["response_ids"]):
            full = torch.tensor([f["prompt_ids"] + ids])
            labels = full.clone()
            labels[0, : len(f["prompt_ids"])] = -100
            with torch.no_grad():
                alone = sequence_logprobs(model(full).logits, labels)
            assert abs(pb.policy_logps[b, k].item() - alone.sum.item()) < 1e-10
            assert abs(pb.policy_avg_logps[b, k].item() - alone.avg.item()) < 1e-10
    assert pb.policy_logps[1, 2].item() == 0.0 and pb.ranks.tolist() == [[1, 3, 2], [2, 1, 4]]


# ---------------------------------------------------------------- packaging


def test_import_bradley_train_does_not_load_transformers_or_datasets():
    code = (
        "import json, sys, bradley; a = set(sys.modules); import bradley.train; b = set(sys.modules);"
        "print(json.dumps([sorted(a), sorted(b)]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    at_import, after_train = (set(x) for x in json.loads(out.splitlines()[-1]))
    assert "torch" not in at_import
    for heavy in ("transformers", "datasets", "trl", "accelerate", "peft", "tokenizers"):
        assert heavy not in after_train, f"import bradley.train loads {heavy}"


def test_report_dict_and_summary():
    report = TokenizationReport(format="pair", conversational=False, examples=3, kept=3, prompt_tokens_dropped=2)
    assert report.padding_fraction is None
    report.add_batch(torch.tensor([[1, 1, 0, 0]]))
    d = report.as_dict()
    assert d["padding_fraction"] == 0.5 and d["tokens_dropped"] == 2
    assert "padding 50.0% of collated tokens" in report.summary()
