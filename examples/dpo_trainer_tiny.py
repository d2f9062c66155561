"""DPO with bradley.train.PreferenceTrainer on a tiny Llama built from a config (CPU, about 20 seconds).

The toy preference: the chosen response contains the word "good", the
rejected one does not. Prints the share of held-out pairs on which the
policy prefers the chosen response, before and after training.
Run: ``python examples/dpo_trainer_tiny.py``
"""

import contextlib
import io
import tempfile

import torch

from bradley.nn.logprobs import model_logprobs
from bradley.train.data import PairCollator, tokenize_preferences
from bradley.train.preference import PreferenceTrainer
from bradley.train.toy import toy_causal_lm, toy_preference_dataset, toy_tokenizer

tokenizer = toy_tokenizer()
policy = toy_causal_lm(tokenizer, hidden_size=32, seed=0)
train, held_out = toy_preference_dataset(64, seed=0), toy_preference_dataset(32, seed=1)


def margins(model):
    """log pi(chosen) - log pi(rejected) on the held-out pairs."""
    rows, _ = tokenize_preferences(held_out, tokenizer)
    batch = PairCollator(tokenizer.pad_token_id)(list(rows))
    with torch.no_grad():
        out = model_logprobs(model, batch["input_ids"], batch["labels"], batch["attention_mask"])
    return out.sum[: len(rows)] - out.sum[len(rows) :]


before = margins(policy)
trainer = PreferenceTrainer(
    policy,
    train,
    tokenizer=tokenizer,
    loss="sigmoid",  # DPO; any name from bradley.nn.available() of kind "policy"
    loss_kwargs={"beta": 0.1},
    output_dir=tempfile.mkdtemp(),
    per_device_train_batch_size=8,
    num_train_epochs=3,
    learning_rate=3e-3,
    logging_steps=8,
    save_strategy="no",
    report_to="none",
    use_cpu=True,
    disable_tqdm=True,
)
with contextlib.redirect_stdout(io.StringIO()):
    trainer.train()
for entry in trainer.trainer.state.log_history:
    if "loss" in entry:
        print(
            f"step {entry['step']:3d}  loss {entry['loss']:.3f}  rewards/margins {entry['rewards/margins']:+.3f}  "
            f"rewards/accuracies {entry['rewards/accuracies']:.2f}  kl {entry['kl']:.3f}"
        )
after = margins(trainer.model)
gain = after - before  # the DPO implicit reward margin (divided by beta) against the untrained policy
# Raw log-prob margins also reflect length; DPO moves the margin relative to the reference.
print(f"held-out preference accuracy {(before > 0).float().mean():.2f} -> {(after > 0).float().mean():.2f}")
print(f"held-out pairs whose implicit reward favours the chosen response: {(gain > 0).float().mean():.2f}")
