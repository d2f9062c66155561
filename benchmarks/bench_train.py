"""One DPO training step and one reward-model step: bradley.train against TRL's trainers, same settings.

Model: a Qwen2-style config the size of Qwen2.5-0.5B (hidden 896, 24 layers,
14 heads / 2 KV heads, intermediate 4864, vocabulary 151936, tied
embeddings), randomly initialised in bf16 (nothing downloaded). Data:
synthetic pairs of fixed length, so every step sees the same number of
tokens. Reports tokens/s (real tokens of chosen + rejected per second, over
the timed steps after warm-up) and peak memory (torch.cuda.max_memory_allocated).

    python benchmarks/bench_train.py                      # GPU, the 0.5B model
    python benchmarks/bench_train.py --device cpu --small # a scaled-down run in about a minute
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import tempfile
import time

import torch
from transformers import Qwen2Config, TrainerCallback

from bradley.train.preference import PreferenceTrainer
from bradley.train.toy import toy_tokenizer


def config(small: bool, vocab: int) -> Qwen2Config:
    if small:
        return Qwen2Config(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)  # fmt: skip
    return Qwen2Config(vocab_size=vocab, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                       num_attention_heads=14, num_key_value_heads=2, tie_word_embeddings=True)  # fmt: skip


def pairs(n: int, prompt_words: int, response_words: int):
    from datasets import Dataset

    g = torch.Generator().manual_seed(0)
    words = "the a cat dog bird fish tree river sky sun moon star road house book song game city".split()

    def text(k: int) -> str:
        return " ".join(words[i] for i in torch.randint(0, len(words), (k,), generator=g).tolist())

    return Dataset.from_dict(
        {
            "prompt": [text(prompt_words) for _ in range(n)],
            "chosen": [" " + text(response_words) for _ in range(n)],
            "rejected": [" " + text(response_words) for _ in range(n)],
        }
    )


class Clock(TrainerCallback):
    def __init__(self, warmup: int):
        self.warmup, self.times = warmup, []

    def on_step_end(self, args, state, control, **kwargs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.times.append(time.perf_counter())


def measure(build, steps: int, warmup: int, tokens_per_step: int, device: str) -> tuple[float, float | None]:
    clock = Clock(warmup)
    trainer = build(clock)
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    with contextlib.redirect_stdout(io.StringIO()):
        trainer.train()
    elapsed = clock.times[-1] - clock.times[warmup - 1]
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    return tokens_per_step * (steps - warmup) / elapsed, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--small", action="store_true", help="a scaled-down model and batch (CPU, ~1 minute)")
    parser.add_argument("--batch", type=int, default=None, help="pairs per step (default 8; 4 with --small)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps + warm-up (default 12; 6 with --small)")
    opts = parser.parse_args()
    small = opts.small
    batch = opts.batch or (4 if small else 8)
    steps = opts.steps or (6 if small else 12)
    warmup = 2
    prompt_words, response_words = (16, 32) if small else (128, 384)
    tok = toy_tokenizer()
    vocab = 4096 if small else 151936
    dtype = torch.float32 if opts.device == "cpu" else torch.bfloat16
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    cfg = config(small, vocab)
    cfg.pad_token_id = tok.pad_token_id
    torch.manual_seed(0)
    lm = AutoModelForCausalLM.from_config(cfg).to(dtype)
    data = pairs(batch * steps, prompt_words, response_words)
    seq = 1 + prompt_words + response_words + 1  # bos, prompt, response, eos (one token per word)
    tokens = 2 * batch * seq
    common = dict(per_device_train_batch_size=batch, max_steps=steps, learning_rate=1e-6, logging_steps=steps,
                  save_strategy="no", report_to="none", disable_tqdm=True, use_cpu=opts.device == "cpu",
                  gradient_checkpointing=False)  # fmt: skip
    out = tempfile.mkdtemp()
    rows = []

    def ours_dpo(clock):
        return PreferenceTrainer(copy.deepcopy(lm), data, tokenizer=tok, loss="sigmoid", output_dir=out,
                                 callbacks=[clock], **common)  # fmt: skip

    def trl_dpo(clock):
        from trl import DPOConfig, DPOTrainer

        args = DPOConfig(output_dir=out, beta=0.1, **common)
        return DPOTrainer(model=copy.deepcopy(lm), ref_model=copy.deepcopy(lm), args=args, train_dataset=data,
                          processing_class=tok, callbacks=[clock])  # fmt: skip

    rm_cfg = copy.deepcopy(cfg)
    rm_cfg.num_labels = 1
    rm = AutoModelForSequenceClassification.from_config(rm_cfg).to(dtype)

    def ours_rm(clock):
        return _bt_trainer(copy.deepcopy(rm), data, tok, out, clock, common)

    def trl_rm(clock):
        from trl import RewardConfig, RewardTrainer

        args = RewardConfig(output_dir=out, **common)
        return RewardTrainer(model=copy.deepcopy(rm), args=args, train_dataset=data, processing_class=tok,
                             callbacks=[clock])  # fmt: skip

    for name, build in (("bradley DPO", ours_dpo), ("TRL DPOTrainer", trl_dpo), ("bradley BT reward", ours_rm),
                        ("TRL RewardTrainer", trl_rm)):  # fmt: skip
        speed, peak = measure(build, steps, warmup, tokens, opts.device)
        rows.append((name, speed, peak))
    device = torch.cuda.get_device_name() if opts.device == "cuda" else "CPU"
    params = sum(p.numel() for p in lm.parameters()) / 1e6  # tied embeddings counted once
    print(f"{device}; {params:.1f}M-parameter Qwen2-style model in {dtype}; {batch} pairs x {seq} tokens per step; "
          f"{steps - warmup} timed steps")  # fmt: skip
    print(f"{'trainer':20s} {'tokens/s':>10s} {'peak GiB':>9s}")
    for name, speed, peak in rows:
        print(f"{name:20s} {speed:10.0f} {'-' if peak is None else f'{peak:.2f}':>9s}")


def _bt_trainer(model, data, tok, out, clock, common):
    """A reward-model step on transformers.Trainer with bradley's 'bt' loss (chosen and rejected in one pass)."""
    from transformers import Trainer, TrainingArguments

    from bradley.nn import get
    from bradley.train.data import PairCollator, split_pairs, tokenize_preferences

    rows, _ = tokenize_preferences(data, tok)
    loss = get("bt")

    class BT(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            scores = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits[:, 0]
            chosen, rejected = split_pairs(scores)
            return loss(chosen_rewards=chosen, rejected_rewards=rejected).loss.mean()

    args = TrainingArguments(output_dir=out, remove_unused_columns=False, **common)
    return BT(model=model, args=args, train_dataset=rows, data_collator=PairCollator(tok.pad_token_id),
              callbacks=[clock])  # fmt: skip


if __name__ == "__main__":
    main()
