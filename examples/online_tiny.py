"""Online self-play (SPPO) on a tiny causal LM built from a config: a few seconds on a CPU.

The judge is synthetic: it prefers the response with more copies of the word "good"
(``P(a beats b) = sigmoid(count(a) - count(b))``). Each iteration samples 4 responses per
prompt from the current policy, judges every pair, and updates the policy with SPPO's loss
against the previous iterate; the win rate against the initial policy is judged on
held-out prompts. Run: ``python examples/online_tiny.py``
"""

import random
import tempfile

import torch
import transformers

from bradley.train.online import OnlineTrainer
from bradley.train.oracles import KeywordOracle
from bradley.train.toy import toy_causal_lm, toy_tokenizer

torch.set_num_threads(1)  # tiny matrices: threads cost more than they save
transformers.logging.set_verbosity_error()

tokenizer = toy_tokenizer(["good bad cat dog the a ."])
rng = random.Random(0)
words = "cat dog the a bad".split()


def prompts(n: int) -> list[str]:
    return [" ".join(rng.choice(words) for _ in range(rng.randint(1, 3))) for _ in range(n)]


trainer = OnlineTrainer(
    toy_causal_lm(tokenizer, seed=0),
    tokenizer,
    KeywordOracle("good"),  # or a reward model, a GPM with .prefer, or any callable
    prompts(24),
    eval_prompts=prompts(16),
    loss="sppo",
    loss_kwargs={"beta": 0.1},  # eta = 1 / beta = 10
    iterations=3,
    num_samples=4,
    eval_num_samples=4,
    max_new_tokens=8,
    # transformers.TrainingArguments, per iteration:
    learning_rate=3e-2,
    max_steps=6,
    per_device_train_batch_size=8,
    logging_steps=100,
    disable_tqdm=True,
    output_dir=tempfile.mkdtemp(prefix="online-tiny-"),
)
history = trainer.train().history_
print(
    history[
        ["iteration", "pairs", "train_loss", "win_rate_vs_initial", "win_rate_vs_initial_se", "win_rate_vs_previous"]
    ]
    .round(3)
    .to_string(index=False)
)
last = history.iloc[-1]
print(f"final win rate vs initial: {last.win_rate_vs_initial:.3f} +- {last.win_rate_vs_initial_se:.3f}")
