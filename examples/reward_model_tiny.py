"""Train a tiny Bradley-Terry reward model on synthetic preferences (a CPU, well under a minute).

The toy preference: the chosen response holds the word "good", the rejected
one does not. The model is a two-layer Llama sequence classifier built from a
config (nothing downloaded). Run: ``python examples/reward_model_tiny.py``
"""

import contextlib
import io
import logging

import torch

from bradley.train.reward import RewardTrainer
from bradley.train.toy import toy_preference_dataset, toy_sequence_classifier, toy_tokenizer

logging.disable(logging.WARNING)  # keep the output to what this example prints
torch.set_num_threads(1)  # a model this small runs fastest on one thread

tokenizer = toy_tokenizer()
train = toy_preference_dataset(256, seed=0, categories=2)
held_out = toy_preference_dataset(128, seed=1, categories=2)

trainer = RewardTrainer(
    toy_sequence_classifier(tokenizer, hidden_size=16),
    tokenizer,
    train,
    loss="bt",
    loss_kwargs={"center_rewards_coefficient": 0.01},
    output_dir="reward_model_tiny",
    max_steps=100,
    per_device_train_batch_size=16,
    learning_rate=3e-3,
    save_strategy="no",
    logging_steps=50,
    use_cpu=True,
    disable_tqdm=True,
    seed=0,
)
print("before:", trainer.evaluate_pairs(held_out).round(3).to_string(index=False), sep="\n")
with contextlib.redirect_stdout(io.StringIO()):  # transformers prints its log lines
    trainer.train()
print("after:", trainer.evaluate_pairs(held_out).round(3).to_string(index=False), sep="\n")

prompt = "tell me about cats ?"
good, plain = " the cat is good .", " the cat sleeps ."
print(f"score(good) = {trainer.score(prompt, good):.2f}, score(plain) = {trainer.score(prompt, plain):.2f}")
print(f"P(good beats plain) = {trainer.prefer(prompt, good, plain):.3f}")
