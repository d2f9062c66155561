"""bradley.train.PreferenceTrainer on tiny models from bradley.train.toy (CPU, nothing downloaded).

Truths: TRL 1.16's own DPOTrainer on the same model, data, seed and optimiser
(parity); the full-logits path (chunked == naive); a live reference
(cached == live); the untouched base model (LoRA reference); the untrained
policy (training raises the margin / lowers the loss).
"""

from __future__ import annotations

import contextlib
import copy
import io
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("datasets")

from bradley.nn.logprobs import model_logprobs  # noqa: E402
from bradley.train.preference import PreferenceCollator, PreferenceTrainer, tokenize_multiturn  # noqa: E402
from bradley.train.toy import toy_causal_lm, toy_preference_dataset, toy_tokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
QUIET = {"use_cpu": True, "report_to": "none", "save_strategy": "no", "disable_tqdm": True, "logging_steps": 1}


@pytest.fixture(scope="module")
def tok():
    return toy_tokenizer()


def run(trainer):
    with contextlib.redirect_stdout(io.StringIO()):  # transformers prints each log line
        return trainer.train()


def step_losses(trainer):
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


def pair_margins(model, tok, data):
    """log pi(chosen) - log pi(rejected) per pair, and the batch used (for comparing models)."""
    from bradley.train.data import tokenize_preferences

    ds, _ = tokenize_preferences(data, tok)
    batch = PreferenceCollator("pair", tok.pad_token_id)(list(ds))
    with torch.no_grad():
        out = model_logprobs(model, batch["input_ids"], batch["labels"], batch["attention_mask"])
    n = len(ds)
    return out.sum[:n] - out.sum[n:]


# ---------------------------------------------------------------- parity with TRL


def test_sigmoid_matches_trl_dpo_trainer_for_10_steps(tok, tmp_path):
    from trl import DPOConfig, DPOTrainer

    data = toy_preference_dataset(40, seed=5)
    base = toy_causal_lm(tok, hidden_size=32, seed=1)
    options = dict(QUIET, per_device_train_batch_size=4, max_steps=10, learning_rate=1e-3, seed=7)
    ours = PreferenceTrainer(
        copy.deepcopy(base), data, tokenizer=tok, loss="sigmoid", output_dir=str(tmp_path / "ours"), **options
    )
    run(ours)
    # DPOConfig defaults to bf16=True (mixed precision, even on CPU): compare both in float32.
    config = DPOConfig(output_dir=str(tmp_path / "trl"), beta=0.1, loss_type=["sigmoid"], bf16=False, **options)
    # An explicit ref_model: TRL would otherwise load one by name, and a model built from a config has none.
    theirs = DPOTrainer(
        model=copy.deepcopy(base), ref_model=copy.deepcopy(base), args=config, train_dataset=data, processing_class=tok
    )
    run(theirs)
    a, b = step_losses(ours.trainer), step_losses(theirs)
    assert len(a) == len(b) == 10
    assert a[0] == b[0]  # same batch, same model: log(2) both
    # Measured: max |difference| 6e-8 over the 10 steps (1.4e-4 with TRL's default bf16 autocast).
    assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-4
    assert min(a) < a[0] - 0.03  # the steps moved the loss, so the comparison is not of ten log(2)s
    for key in ("rewards/accuracies", "logps/chosen"):
        ours_logged = [e[key] for e in ours.trainer.state.log_history if key in e and "loss" in e]
        trl_logged = [e[key] for e in theirs.state.log_history if key in e and "loss" in e]
        assert ours_logged == pytest.approx(trl_logged, abs=1e-4 if key == "logps/chosen" else 0.0)


def test_first_step_gradient_equals_float64_autograd(tok, tmp_path):
    from transformers import TrainerCallback

    from bradley.nn.logprobs import sequence_logprobs

    class Grab(TrainerCallback):
        grads: dict = {}

        def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
            if not self.grads:
                self.grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}

    data = toy_preference_dataset(8, seed=5)
    base = toy_causal_lm(tok, hidden_size=32, seed=1)
    grab = Grab()
    trainer = PreferenceTrainer(
        copy.deepcopy(base), data, tokenizer=tok, loss="sigmoid", output_dir=str(tmp_path), callbacks=[grab],
        per_device_train_batch_size=4, max_steps=1, learning_rate=1e-3, seed=7, max_grad_norm=0.0, **QUIET,
    )  # fmt: skip
    batch = next(iter(trainer.trainer.get_train_dataloader()))  # the sampler is seeded: the batch of step 1
    run(trainer)
    truth = copy.deepcopy(base).double()
    logps = sequence_logprobs(truth(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits,
                              batch["labels"]).sum  # fmt: skip
    c, r = logps[:4], logps[4:]
    # DPO at policy = reference: the reference values are the detached policy values.
    (-torch.nn.functional.logsigmoid(0.1 * ((c - c.detach()) - (r - r.detach())))).mean().backward()
    for name, p in truth.named_parameters():
        error = (grab.grads[name].double() - p.grad).abs().max() / p.grad.abs().max()
        assert error < 1e-5, name


# ---------------------------------------------------------------- learning


@pytest.mark.slow  # ~30 s for both
@pytest.mark.parametrize(
    ("loss", "kwargs"), [("sigmoid", {"beta": 0.1}), ("simpo", {"beta": 2.0, "gamma_beta_ratio": 0.25})]
)
def test_training_raises_the_held_out_margin(tok, tmp_path, loss, kwargs):
    train, held_out = toy_preference_dataset(64, seed=0), toy_preference_dataset(32, seed=1)
    model = toy_causal_lm(tok, hidden_size=32, seed=0)
    before = pair_margins(model, tok, held_out)
    trainer = PreferenceTrainer(
        model, train, tokenizer=tok, loss=loss, loss_kwargs=kwargs, output_dir=str(tmp_path),
        per_device_train_batch_size=8, num_train_epochs=3, learning_rate=3e-3, seed=0, **QUIET,
    )  # fmt: skip
    run(trainer)
    after = pair_margins(trainer.model, tok, held_out)
    # The implicit reward margin against the untrained model, on held-out pairs.
    gain = after - before
    assert (gain > 0).float().mean() >= 0.9
    assert gain.median() > 1.0


# ---------------------------------------------------------------- equivalent paths


def test_chunked_and_naive_log_probs_give_the_same_losses(tok, tmp_path):
    data = toy_preference_dataset(12, seed=2)
    base = toy_causal_lm(tok, seed=3, dtype=torch.float64)
    losses = []
    for chunked in (True, False):
        trainer = PreferenceTrainer(
            copy.deepcopy(base), data, tokenizer=tok, loss="sigmoid", chunked=chunked, chunk_size=5,
            output_dir=str(tmp_path / str(chunked)), per_device_train_batch_size=4, max_steps=2,
            learning_rate=1e-2, seed=0, **QUIET,
        )  # fmt: skip
        run(trainer)
        losses.append(step_losses(trainer.trainer))
    assert len(losses[0]) == 2
    assert max(abs(a - b) for a, b in zip(*losses, strict=True)) < 1e-10
    assert losses[0][-1] != losses[0][0]


class CountingModel(torch.nn.Module):
    """Counts forward calls of a wrapped module (hooks on the backbone would miss a full-logits call)."""

    def __init__(self, model):
        super().__init__()
        self.calls = 0
        model.register_forward_pre_hook(self._count)
        for sub in model.modules():
            if sub is not model and sub.__class__.__name__.endswith("Model"):
                sub.register_forward_pre_hook(self._count)

    def _count(self, *_):
        self.calls += 1


def test_cached_reference_equals_live_reference_and_is_reused(tok, tmp_path):
    data = toy_preference_dataset(12, seed=4)
    base = toy_causal_lm(tok, seed=5, dtype=torch.float64)
    options = dict(QUIET, per_device_train_batch_size=4, max_steps=3, learning_rate=1e-2, seed=0)
    live = PreferenceTrainer(
        copy.deepcopy(base), data, tokenizer=tok, loss="sigmoid", output_dir=str(tmp_path / "live"), **options
    )
    run(live)
    cache_dir = tmp_path / "cache"
    first_ref = copy.deepcopy(base)
    first_counter = CountingModel(first_ref)
    cached = PreferenceTrainer(
        copy.deepcopy(base), data, tokenizer=tok, loss="sigmoid", ref_model=first_ref, reference="cache",
        cache_dir=str(cache_dir), output_dir=str(tmp_path / "cached"), **options,
    )  # fmt: skip
    assert cached.reference_from_cache_ is False and first_counter.calls > 0
    assert cached.ref_model is None  # released once cached
    run(cached)
    a, b = step_losses(live.trainer), step_losses(cached.trainer)
    assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-10
    # Second run, same reference weights and data: read from disk, the reference never runs.
    second_ref = copy.deepcopy(base)
    counter = CountingModel(second_ref)
    again = PreferenceTrainer(
        copy.deepcopy(base), data, tokenizer=tok, loss="sigmoid", ref_model=second_ref, reference="cache",
        cache_dir=str(cache_dir), output_dir=str(tmp_path / "again"), **options,
    )  # fmt: skip
    run(again)
    assert again.reference_from_cache_ is True and counter.calls == 0
    assert step_losses(again.trainer) == pytest.approx(b, abs=1e-12)
    # Other reference weights: another fingerprint, computed afresh.
    other = PreferenceTrainer(
        copy.deepcopy(base), data, tokenizer=tok, loss="sigmoid", ref_model=toy_causal_lm(tok, seed=6,
        dtype=torch.float64), reference="cache", cache_dir=str(cache_dir), output_dir=str(tmp_path / "o"), **options,
    )  # fmt: skip
    assert other.reference_from_cache_ is False


def test_lora_reference_is_the_adapter_disabled_base(tok, tmp_path):
    from peft import LoraConfig

    data = toy_preference_dataset(16, seed=6)
    base = toy_causal_lm(tok, hidden_size=32, seed=7, dtype=torch.float64)
    untouched = copy.deepcopy(base)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)
    trainer = PreferenceTrainer(
        base, data, tokenizer=tok, loss="sigmoid", peft_config=lora, output_dir=str(tmp_path),
        per_device_train_batch_size=4, max_steps=4, learning_rate=5e-2, seed=0, **QUIET,
    )  # fmt: skip
    assert trainer.reference == "adapter" and trainer.ref_model is None
    run(trainer)
    batch = trainer.collator(list(trainer.trainer.train_dataset)[:4])
    ref, _ = trainer._reference(batch, need_logits=False)
    with torch.no_grad():
        truth = model_logprobs(untouched, batch["input_ids"], batch["labels"], batch["attention_mask"])
        policy = model_logprobs(trainer.model, batch["input_ids"], batch["labels"], batch["attention_mask"])
    assert torch.allclose(ref.sum, truth.sum, rtol=0, atol=1e-10)
    # The adapter did train, so the reference is not simply the current policy.
    assert (policy.sum - truth.sum).abs().max() > 1e-3


# ---------------------------------------------------------------- the other data layouts


def eval_loss_before_and_after(trainer):
    before = trainer.evaluate()["eval_loss"]
    run(trainer)
    after = trainer.evaluate()["eval_loss"]
    return before, after


def multiturn_rows(n, seed):
    pairs = toy_preference_dataset(2 * n, seed=seed)
    rows = []
    for i in range(n):
        a, b = pairs[2 * i], pairs[2 * i + 1]
        turn = lambda role, text: {"role": role, "content": text.strip()}  # noqa: E731
        rows.append(
            {
                "prompt": [turn("user", a["prompt"])],
                "chosen": [turn("assistant", a["chosen"]), turn("user", b["prompt"]), turn("assistant", b["chosen"])],
                "rejected": [
                    turn("assistant", a["rejected"]),
                    turn("user", b["prompt"]),
                    turn("assistant", b["rejected"]),
                ],
            }
        )
    return rows


def unpaired_rows(n, seed):
    return toy_preference_dataset(n, seed=seed)  # pairs: the trainer splits them for KTO


@pytest.mark.slow  # ~70 s for all
@pytest.mark.parametrize(
    ("loss", "kwargs", "data"),
    [
        ("tdpo", {"beta": 0.1}, lambda: toy_preference_dataset(16, seed=8)),
        ("dmpo", {"beta": 0.1, "gamma": 0.7}, lambda: multiturn_rows(12, seed=9)),
        ("pro", {}, lambda: toy_preference_dataset(12, seed=10, k=3)),
        ("dpo-pl", {"beta": 0.1}, lambda: toy_preference_dataset(12, seed=10, k=3)),
        ("kto", {"beta": 0.1}, lambda: unpaired_rows(12, seed=11)),
        (["sigmoid", "sft"], {"beta": 0.1, "loss_weights": [1.0, 0.5]}, lambda: toy_preference_dataset(12, seed=12)),
        ("sigmoid", {"beta": 0.1, "use_weighting": True}, lambda: toy_preference_dataset(12, seed=13)),
        ("cpo", {"beta": 0.1}, lambda: toy_preference_dataset(12, seed=14)),
        ("orpo", {"beta": 0.1}, lambda: toy_preference_dataset(12, seed=15)),
    ],
)
def test_each_layout_trains_with_finite_decreasing_loss(tok, tmp_path, loss, kwargs, data):
    rows = data()
    kwargs = dict(kwargs)
    weights = kwargs.pop("loss_weights", None)
    if weights is not None:
        kwargs["loss_weights"] = weights
    trainer = PreferenceTrainer(
        toy_causal_lm(tok, hidden_size=32, seed=0), rows, eval_dataset=rows, tokenizer=tok, loss=loss,
        loss_kwargs=kwargs, output_dir=str(tmp_path), per_device_train_batch_size=4, per_device_eval_batch_size=4,
        num_train_epochs=2, learning_rate=5e-3, seed=0, **QUIET,
    )  # fmt: skip
    before, after = eval_loss_before_and_after(trainer)
    losses = step_losses(trainer.trainer)
    assert all(torch.isfinite(torch.tensor(losses))) and torch.isfinite(torch.tensor(after))
    assert after < before


def test_reference_free_losses_hold_no_reference(tok, tmp_path):
    trainer = PreferenceTrainer(
        toy_causal_lm(tok), toy_preference_dataset(4), tokenizer=tok, loss="simpo", output_dir=str(tmp_path), **QUIET
    )
    assert trainer.reference is None and trainer.ref_model is None


def test_multiturn_tokenisation_marks_assistant_turns_only(tok):
    rows = multiturn_rows(2, seed=1)
    ds, report = tokenize_multiturn(rows, tok)
    row = ds[0]
    # Naive truth: the whole dialogue rendered at once equals prompt + response ids.
    whole = tok.apply_chat_template(rows[0]["prompt"] + rows[0]["chosen"], tokenize=True, return_dict=False)
    assert row["prompt_ids"] + row["chosen_ids"] == list(whole)
    words = tok.convert_ids_to_tokens(row["chosen_ids"])
    first = [w for w, t in zip(words, row["chosen_turn_ids"], strict=True) if t == 1]
    user = [w for w, t in zip(words, row["chosen_turn_ids"], strict=True) if t == 0]
    assert " ".join(first[:-1]) == rows[0]["chosen"][0]["content"].replace(" .", " .") and first[-1] == "</s>"
    assert "<|user|>" in user and "<|assistant|>" in user  # the next turn's markers are context
    assert report.examples == 2 and report.responses_truncated == 0
    batch = PreferenceCollator("multiturn", tok.pad_token_id)([ds[0], ds[1]])
    assert torch.equal(batch["completion_mask"].bool(), batch["turn_index"] > 0)
    assert int(batch["turn_index"].max()) == 2


def test_multiturn_max_prompt_length_keeps_the_end_and_is_counted(tok, tmp_path):
    # Regression: PreferenceTrainer dropped max_prompt_length for multi-turn (DMPO) rows.
    rows = multiturn_rows(3, seed=2)
    full, _ = tokenize_multiturn(rows, tok)
    cut, report = tokenize_multiturn(rows, tok, max_prompt_length=3)
    dropped = 0
    for a, b in zip(full, cut, strict=True):
        assert b["prompt_ids"] == a["prompt_ids"][-3:]  # the end: the generation prompt survives
        assert b["chosen_ids"] == a["chosen_ids"] and b["rejected_turn_ids"] == a["rejected_turn_ids"]
        dropped += len(a["prompt_ids"]) - 3
    assert report.prompts_truncated == 3 and report.prompt_tokens_dropped == dropped > 0
    assert report.max_prompt_length == 3
    trainer = PreferenceTrainer(
        toy_causal_lm(tok), rows, tokenizer=tok, loss="dmpo", loss_kwargs={"beta": 0.1, "gamma": 0.7},
        max_prompt_length=3, output_dir=str(tmp_path), **QUIET,
    )  # fmt: skip
    assert trainer.tokenization_report_.prompt_tokens_dropped == dropped
    with pytest.raises(ValueError, match="max_prompt_length"):
        tokenize_multiturn(rows, tok, max_prompt_length=0)


# ---------------------------------------------------------------- errors


def test_unknown_option_names_close_matches(tok):
    with pytest.raises(TypeError, match="learning_rate"):
        PreferenceTrainer(toy_causal_lm(tok), None, tokenizer=tok, learning_rat=1e-3, **QUIET)


def test_reward_model_loss_is_refused(tok):
    with pytest.raises(ValueError, match="reward-model loss"):
        PreferenceTrainer(toy_causal_lm(tok), None, tokenizer=tok, loss="bt", **QUIET)


def test_iterative_loss_needs_previous_model(tok):
    with pytest.raises(ValueError, match="previous_model"):
        PreferenceTrainer(toy_causal_lm(tok), None, tokenizer=tok, loss="sppo", **QUIET)


def test_wrong_data_layout_is_named(tok):
    with pytest.raises(ValueError, match="reads list rows but the train data are pair rows"):
        PreferenceTrainer(toy_causal_lm(tok), toy_preference_dataset(4), tokenizer=tok, loss="pro", **QUIET)


# ---------------------------------------------------------------- example


def test_dpo_trainer_tiny_example_runs():
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "dpo_trainer_tiny.py")],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    last = out.stdout.strip().splitlines()[-1]
    assert "implicit reward favours the chosen" in last
    assert float(last.split(":")[-1]) >= 0.9  # measured 0.94; an untrained policy gives 0


def test_padding_counts_training_batches_only_and_is_reported(tok, tmp_path):
    # Regression: the padding was logged before any batch (None), eval batches and workers' counts were mixed in.
    rows = toy_preference_dataset(8, seed=6)
    trainer = PreferenceTrainer(
        toy_causal_lm(tok), rows, eval_dataset=toy_preference_dataset(4, seed=7), tokenizer=tok, loss="sigmoid",
        loss_kwargs={"beta": 0.1}, output_dir=str(tmp_path), per_device_train_batch_size=8, max_steps=1,
        eval_strategy="steps", eval_steps=1, dataloader_num_workers=1, **QUIET,
    )  # fmt: skip
    result = run(trainer)
    report = trainer.tokenization_report_
    dataset = trainer.trainer.train_dataset
    # Naive truth: one batch of all 8 pairs, every sequence padded to the longest.
    lengths = [len(r["prompt_ids"]) + len(r[c]) for r in dataset for c in ("chosen_ids", "rejected_ids")]
    assert report.batch_tokens == len(lengths) * max(lengths)
    assert report.padding_tokens == len(lengths) * max(lengths) - sum(lengths) > 0
    assert result.metrics["padding_fraction"] == pytest.approx(report.padding_fraction)
