"""Online self-play (bradley.train.online), preference oracles (bradley.train.oracles) and BRAIn (bradley.train.brain).

Truths used: hand values and explicit loops for the oracles and win rates; an explicit numpy
computation of BRAIn's weights, loss and the authors' gradient estimator; the closed-form value
of each loss at the start of an update phase (policy = previous iterate = reference), which the
trainer's first step must reproduce; and, for learning, the win rate of the trained policy
against the initial one under a synthetic oracle, with an lr=0 control.
"""

from __future__ import annotations

import math
import random
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("datasets")

from bradley.nn import get
from bradley.train.brain import brain_loss, brain_weights
from bradley.train.online import OnlineTrainer
from bradley.train.reward import RewardModel
from bradley.train.oracles import (
    CallableOracle,
    KeywordOracle,
    PreferModelOracle,
    RewardModelOracle,
    ScoreOracle,
    as_oracle,
    binomial_se,
    pairwise_preferences,
    win_rates,
)
from bradley.train.toy import toy_causal_lm, toy_preference_dataset, toy_sequence_classifier, toy_tokenizer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny matrices on 2 shared cores: torch's thread pool costs more than it saves (measured ~100x here).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tok():
    return toy_tokenizer(["good bad cat dog the a ."])


def _prompts(n, seed):
    rng = random.Random(seed)
    words = "cat dog the a bad".split()
    return [" ".join(rng.choice(words) for _ in range(rng.randint(1, 3))) for _ in range(n)]


def _trainer(tok, tmp_path, loss, loss_kwargs=None, **kw):
    options = dict(
        iterations=1,
        num_samples=4,
        max_new_tokens=6,
        eval_num_samples=1,
        max_steps=1,
        per_device_train_batch_size=64,
        learning_rate=1e-2,
        logging_steps=1,
        disable_tqdm=True,
        output_dir=str(tmp_path),
    )
    options.update(kw)
    prompts = options.pop("prompts", _prompts(8, 1))
    oracle = options.pop("oracle", KeywordOracle("good"))
    model = options.pop("model", None) or toy_causal_lm(tok, seed=0)
    return OnlineTrainer(model, tok, oracle, prompts, loss=loss, loss_kwargs=loss_kwargs, **options)


# ---------------------------------------------------------------- oracles


def test_keyword_and_score_oracles_hand_values():
    prompts = ["q"] * 3
    a, b = ["good good the", "the", "good"], ["good", "good", "bad good"]
    assert KeywordOracle("good", scale=None)(prompts, a, b).tolist() == [1.0, 0.0, 0.5]
    soft = KeywordOracle("good", scale=2.0)(prompts, a, b)
    expected = [1 / (1 + math.exp(-2.0 * d)) for d in (1, -1, 0)]
    assert soft.tolist() == pytest.approx(expected, abs=1e-15)
    oracle = ScoreOracle(lambda x, y: [float(len(r)) for r in y], temperature=2.0)
    assert oracle(["x"], ["abcd"], ["a"]).item() == pytest.approx(1 / (1 + math.exp(-1.5)), abs=1e-15)
    # Huge reward gaps stay finite and saturate
    far = ScoreOracle(lambda x, y: [1e6 if r == "a" else -1e6 for r in y])
    assert far(["x", "x"], ["a", "b"], ["b", "a"]).tolist() == [1.0, 0.0]


def test_reward_model_oracle_matches_separate_scoring(tok):
    rm = toy_sequence_classifier(tok, seed=3)
    oracle = as_oracle(rm, tok, batch_size=2)
    assert isinstance(oracle, RewardModelOracle)
    prompts = ["the cat", "a dog", "the"]
    a, b = [" good good .", " bad", " cat cat cat the dog"], [" bad .", " good", " a"]
    p = oracle(prompts, a, b)

    def reward(text):  # one unpadded sequence at a time, EOS appended as in training: an independent forward pass
        ids = torch.tensor([tok(text)["input_ids"] + [tok.eos_token_id]])
        with torch.no_grad():
            return rm(input_ids=ids).logits.item()

    expected = [1 / (1 + math.exp(-(reward(x + u) - reward(x + v)))) for x, u, v in zip(prompts, a, b, strict=True)]
    assert p.tolist() == pytest.approx(expected, abs=1e-6)
    # chat prompts go through the chat template, the response as the assistant turn
    chat = [[{"role": "user", "content": "the cat"}]]
    # Regression: the oracle read the reward before the EOS that RewardTrainer trains on; it scores as RewardModel does.
    as_trained = RewardModel(rm, tok).score(chat[0], [{"role": "assistant", "content": "good"}])
    assert oracle.score(chat, ["good"]).item() == pytest.approx(as_trained, abs=1e-9)
    assert oracle.score(prompts, a).tolist() == pytest.approx(RewardModel(rm, tok).score(prompts, a).tolist(), abs=1e-9)
    with pytest.raises(ValueError, match="tokenizer"):
        as_oracle(rm)
    with pytest.raises(ValueError, match="num_labels"):
        RewardModelOracle(toy_sequence_classifier(tok, num_labels=2), tok)


def test_prefer_model_and_callable_oracles():
    class Cycle:
        beats = {("paper", "rock"), ("rock", "scissors"), ("scissors", "paper")}

        def prefer(self, prompts, a, b):
            return [0.5 if u == v else float((u, v) in self.beats) for u, v in zip(a, b, strict=True)]

    oracle = as_oracle(Cycle())
    assert isinstance(oracle, PreferModelOracle)
    P = pairwise_preferences(oracle, ["x"], [["rock", "paper", "scissors"]])[0]
    # intransitive: each beats one and loses to one, so every win rate is 1/2
    assert P.tolist() == [[0.5, 0.0, 1.0], [1.0, 0.5, 0.0], [0.0, 1.0, 0.5]]
    assert win_rates(P[None]).tolist() == [[0.5, 0.5, 0.5]]

    # a trained BT reward model offers prefer and score; its score passes through, a GPM's embeddings do not
    class BT:
        def prefer(self, prompts, a, b):
            return 1 / (1 + np.exp(-(self.score(prompts, a) - self.score(prompts, b))))

        def score(self, prompts, responses):
            return np.array([float(len(r)) for r in responses])

    bt = as_oracle(BT())
    assert bt.score(["x", "x"], ["ab", "abcd"]).tolist() == [2.0, 4.0]
    assert bt(["x"], ["abc"], ["a"]).item() == pytest.approx(1 / (1 + math.exp(-2)), abs=1e-15)

    class GPM(BT):
        def score(self, prompts, responses):
            return np.ones((len(responses), 4))

    with pytest.raises(ValueError, match="scalar reward"):
        as_oracle(GPM()).score(["x"], ["a"])
    with pytest.raises(TypeError, match="no score"):
        as_oracle(Cycle()).score(["x"], ["a"])

    bad_shape = CallableOracle(lambda x, a, b: [0.5] * (len(x) + 1))
    with pytest.raises(ValueError, match="expected \\(2,\\)"):
        bad_shape(["x", "y"], ["a", "b"], ["c", "d"])
    with pytest.raises(ValueError, match="outside \\[0, 1\\]"):
        CallableOracle(lambda x, a, b: [1.5, 0.2])(["x", "y"], ["a", "b"], ["c", "d"])
    with pytest.raises(ValueError, match="one prompt per pair"):
        KeywordOracle()(["x"], ["a", "b"], ["c", "d"])
    with pytest.raises(TypeError, match="cannot use"):
        as_oracle(42)


def test_pairwise_preferences_judges_each_pair_once_and_is_skew():
    calls = []

    def oracle(x, a, b):
        calls.append(len(x))
        return [1 / (1 + math.exp(-(len(u) - len(v)))) for u, v in zip(a, b, strict=True)]

    responses = [["a", "bbb", "cc", "dddd"], ["xx", "y", "zzz", "w"]]
    P = pairwise_preferences(oracle, ["p", "q"], responses)
    assert calls == [2 * 6]  # one call, K(K-1)/2 = 6 pairs per prompt
    assert torch.allclose(P + P.transpose(1, 2), torch.ones_like(P))
    assert P.diagonal(dim1=1, dim2=2).eq(0.5).all()
    for n in range(2):
        for i in range(4):
            for j in range(4):
                if i != j:
                    d = len(responses[n][i]) - len(responses[n][j])
                    assert P[n, i, j].item() == pytest.approx(1 / (1 + math.exp(-d)), abs=1e-12)


def test_win_rates_against_a_loop():
    rng = np.random.default_rng(0)
    upper = rng.uniform(size=(3, 5, 5))
    P = np.triu(upper, 1) + np.tril(1 - upper.transpose(0, 2, 1), -1) + 0.5 * np.eye(5)
    expected = np.array([[np.mean([P[n, i, j] for j in range(5) if j != i]) for i in range(5)] for n in range(3)])
    got = win_rates(torch.tensor(P))
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-14)
    sppo = np.array([[(sum(P[n, i, j] for j in range(5) if j != i) + 0.5) / 5 for i in range(5)] for n in range(3)])
    np.testing.assert_allclose(win_rates(torch.tensor(P), include_self=True).numpy(), sppo, atol=1e-14)


def test_binomial_standard_error_against_simulation():
    assert binomial_se(0.3, 50) == pytest.approx(math.sqrt(0.3 * 0.7 / 50), abs=1e-15)
    rng = np.random.default_rng(1)
    means = rng.binomial(1, 0.3, size=(20000, 50)).mean(1)
    assert binomial_se(0.3, 50) == pytest.approx(means.std(), rel=0.03)
    assert math.isnan(binomial_se(0.5, 0))


# ---------------------------------------------------------------- BRAIn


def _brain_numpy(policy, ref, rewards, prev, mask, beta):
    """Weights, loss and the authors' gradient estimator, written out with explicit exps and sums."""
    B, K = policy.shape
    loss, grad = np.zeros(B), np.zeros((B, K))
    for b in range(B):
        idx = [k for k in range(K) if mask[b, k]]
        q = {k: (ref if prev is None else prev)[b, k] for k in idx}
        log_a = {k: rewards[b, k] / beta + ref[b, k] - q[k] for k in idx}
        top = max(log_a.values())
        za = sum(math.exp(v - top) for v in log_a.values())
        alpha = {k: math.exp(log_a[k] - top) / za for k in idx}
        log_b = {k: policy[b, k] - q[k] for k in idx}
        top = max(log_b.values())
        zb = sum(math.exp(v - top) for v in log_b.values())
        betah = {k: math.exp(log_b[k] - top) / zb for k in idx}
        loss[b] = -sum(alpha[k] * math.log(betah[k]) for k in idx)
        for k in idx:
            grad[b, k] = -(alpha[k] - betah[k])  # minus the ascent direction g
    return loss, grad


@pytest.mark.parametrize("with_prev", [False, True])
def test_brain_loss_and_gradient_equal_hand_computation(with_prev):
    policy = np.array([[-3.0, -4.5, -2.0], [-7.0, -1.0, -6.0]])
    ref = np.array([[-3.5, -4.0, -2.5], [-6.0, -2.0, -5.0]])
    prev = np.array([[-3.2, -4.1, -2.2], [-6.5, -1.5, -9.0]]) if with_prev else None
    rewards = np.array([[1.0, -0.5, 0.25], [0.3, 2.0, 7.0]])
    mask = np.array([[True, True, True], [True, True, False]])
    expected_loss, expected_grad = _brain_numpy(policy, ref, rewards, prev, mask, beta=0.5)

    pol = torch.tensor(policy, requires_grad=True)
    out = brain_loss(
        pol,
        torch.tensor(ref),
        torch.tensor(rewards),
        None if prev is None else torch.tensor(prev),
        torch.tensor(mask),
        beta=0.5,
    )
    np.testing.assert_allclose(out.loss.detach().numpy(), expected_loss, rtol=0, atol=1e-12)
    out.loss.sum().backward()
    np.testing.assert_allclose(pol.grad.numpy(), expected_grad, rtol=0, atol=1e-12)
    assert pol.grad[1, 2].item() == 0.0  # the padded response gets no gradient
    # logging: beta * log(pi / pi_ref) of the highest- and lowest-weight responses
    alpha = brain_weights(
        torch.tensor(rewards),
        torch.tensor(ref),
        None if prev is None else torch.tensor(prev),
        torch.tensor(mask),
        beta=0.5,
    )
    assert alpha[1, 2].item() == 0.0 and torch.allclose(alpha.sum(-1), torch.ones(2, dtype=torch.float64))
    best = alpha.argmax(-1)
    assert out.chosen_rewards.tolist() == pytest.approx(
        [0.5 * (policy[b, best[b]] - ref[b, best[b]]) for b in range(2)], abs=1e-12
    )
    assert out.extras["ess"].tolist() == pytest.approx((1 / (alpha**2).sum(-1)).tolist(), abs=1e-12)


def test_brain_gradient_direction_and_fixed_point():
    ref = torch.tensor([[-4.0, -4.0, -4.0]], dtype=torch.float64)
    rewards = torch.tensor([[2.0, 0.0, -1.0]], dtype=torch.float64)
    policy = ref.clone().requires_grad_(True)
    out = brain_loss(policy, ref, rewards, beta=1.0)
    out.loss.sum().backward()
    # descent raises the best response's log-prob and lowers the worst's
    assert policy.grad[0, 0] < 0 < policy.grad[0, 2]
    step = (policy - 0.5 * policy.grad).detach()
    alpha = torch.softmax(rewards, -1)

    def kl(p):  # KL(alpha || beta_hat) falls after the step
        return float((alpha * (alpha.log() - torch.log_softmax(p - ref, -1))).sum())

    assert kl(step) < kl(policy.detach())
    # at pi / q proportional to the posterior the gradient vanishes (alpha_hat = beta_hat)
    fixed = (ref + rewards + 3.0).requires_grad_(True)
    brain_loss(fixed, ref, rewards, beta=1.0).loss.sum().backward()
    assert fixed.grad.abs().max().item() < 1e-15


def test_brain_bridges_to_dpo_and_is_shift_invariant():
    pc, pr = torch.tensor([-3.0, -8.0]), torch.tensor([-5.0, -2.0])
    rc, rr = torch.tensor([-4.0, -6.0]), torch.tensor([-4.5, -3.0])
    policy, ref = torch.stack([pc, pr], 1), torch.stack([rc, rr], 1)
    # hard weights (beta -> 0 with the first response better) and q = pi_ref: DPO with beta 1
    out = brain_loss(policy, ref, torch.tensor([[1.0, 0.0], [1.0, 0.0]]), beta=1e-3)
    dpo = get("sigmoid", beta=1.0)(
        policy_chosen_logps=pc, policy_rejected_logps=pr, ref_chosen_logps=rc, ref_rejected_logps=rr
    )
    assert torch.allclose(out.loss, dpo.loss, atol=1e-6)
    # a constant added to all proposal log-probs of a prompt changes nothing
    prev = torch.tensor([[-1.0, -2.0], [-3.0, -0.5]])
    rewards = torch.tensor([[0.3, -0.2], [1.0, 2.0]])
    a = brain_loss(policy, ref, rewards, prev, beta=0.7).loss
    b = brain_loss(policy, ref, rewards, prev + torch.tensor([[5.0], [-11.0]]), beta=0.7).loss
    assert torch.allclose(a, b, atol=1e-6)


def test_brain_extremes_half_precision_and_errors():
    big = torch.tensor([[1e4, -1e4, 0.0]], requires_grad=True)
    out = brain_loss(big, torch.zeros(1, 3), torch.tensor([[-1e4, 1e4, 0.0]]), beta=1e-3)
    out.loss.sum().backward()
    assert torch.isfinite(out.loss).all() and torch.isfinite(big.grad).all()
    half = brain_loss(
        torch.tensor([[-1.0, -2.0]], dtype=torch.bfloat16),
        torch.zeros(1, 2, dtype=torch.bfloat16),
        torch.tensor([[0.5, 0.0]], dtype=torch.bfloat16),
    )
    assert half.loss.dtype == torch.float32
    with pytest.raises(ValueError, match="list_mask"):
        brain_loss(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 2), list_mask=torch.tensor([[False, False]]))
    with pytest.raises(ValueError, match="shape"):
        brain_loss(torch.zeros(1, 2), torch.zeros(1, 3), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="beta"):
        brain_loss(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 2), beta=0.0)


# ---------------------------------------------------------------- the online loop


def _first_step_loss(trainer, phase=0):
    return trainer.train_outputs_[phase].training_loss


def test_sppo_first_step_is_the_closed_form_at_the_previous_iterate(tok, tmp_path):
    trainer = _trainer(tok, tmp_path, "sppo", {"beta": 0.1}).train()
    ex = trainer.examples_
    assert len(ex) == trainer.history_.loc[1, "pairs"] > 0
    eta = 10.0
    cw, rw = np.array(ex["oracle_chosen_win_rate"]), np.array(ex["oracle_rejected_win_rate"])
    assert (cw > rw).all()
    # at theta = pi_t the log-ratios are 0: loss = 1/2 [(eta (w_c - 1/2))^2 + (eta (w_r - 1/2))^2]
    expected = np.mean(0.5 * ((eta * (cw - 0.5)) ** 2 + (eta * (rw - 0.5)) ** 2))
    assert _first_step_loss(trainer) == pytest.approx(expected, rel=1e-5)
    # the stored previous-iterate log-probs are the initial policy's
    row = ex[0]
    ids = torch.tensor([row["prompt_ids"] + row["chosen_ids"]])
    with torch.no_grad():
        logits = trainer.initial_model_(input_ids=ids).logits[0, :-1].log_softmax(-1)
    start = len(row["prompt_ids"]) - 1
    manual = sum(logits[start + t, tok_id].item() for t, tok_id in enumerate(row["chosen_ids"]))
    assert row["prev_chosen_logps"] == pytest.approx(manual, abs=1e-4)


@pytest.mark.parametrize(
    ("loss", "kwargs", "expected"),
    [
        ("inpo", {"beta": 0.1}, lambda ex: 1 / (4 * 0.1**2)),  # h = 0 at pi = pi_t = pi_ref
        ("dno", {"beta": 0.5}, lambda ex: math.log(2)),
        ("sigmoid", {"beta": 0.5}, lambda ex: math.log(2)),  # iterative DPO, pi_t as reference
        (
            "online-ipo",
            {"beta": 0.5},
            lambda ex: np.mean(
                ((np.array(ex["oracle_chosen_win_rate"]) - np.array(ex["oracle_rejected_win_rate"])) / 0.5) ** 2
            ),
        ),
    ],
)
def test_each_loss_runs_an_iteration_from_its_closed_form(tok, tmp_path, loss, kwargs, expected):
    trainer = _trainer(tok, tmp_path, loss, kwargs).train()
    hist = trainer.history_
    assert hist["iteration"].tolist() == [0, 1] and hist.loc[1, "pairs"] > 0
    assert _first_step_loss(trainer) == pytest.approx(expected(trainer.examples_), rel=1e-5)
    assert 0.0 <= hist.loc[1, "win_rate_vs_initial"] <= 1.0
    if loss in ("inpo", "dno", "sigmoid"):  # best-vs-worst pairs the oracle prefers
        assert (
            np.array(trainer.examples_["oracle_chosen_win_rate"])
            > np.array(trainer.examples_["oracle_rejected_win_rate"])
        ).all()


def test_egpo_extragradient_restores_the_weights_before_the_real_step(tok, tmp_path):
    trainer = _trainer(tok, tmp_path, "egpo", {"beta": 0.5}, num_samples=4)
    initial = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.train()
    assert len(trainer.train_outputs_) == 2  # midpoint phase + real phase
    ex = trainer.examples_
    # the real phase starts again from theta_t = pi_ref (log-ratios 0), with the midpoint's opponent targets
    shift = (np.array(ex["oracle_chosen_win_rate"]) - np.array(ex["oracle_rejected_win_rate"])) / 0.5
    assert _first_step_loss(trainer, 1) == pytest.approx(np.mean(shift**2), rel=1e-5)
    assert "ref_chosen_logps" in ex.column_names and "prev_chosen_logps" not in ex.column_names
    changed = any(not torch.equal(initial[k], v) for k, v in trainer.model.state_dict().items())
    assert changed


def test_onpo_two_anchored_phases(tok, tmp_path):
    trainer = _trainer(tok, tmp_path, "onpo", {"beta": 0.5}).train()
    assert len(trainer.train_outputs_) == 2
    # each phase starts at its anchor (pi'_1 = pi_1, then pi'_2 = the weights after phase a): h = 0
    for phase in (0, 1):
        assert _first_step_loss(trainer, phase) == pytest.approx(1 / (4 * 0.5**2), rel=1e-5)


def test_brain_mode_first_step_is_log_k(tok, tmp_path):
    trainer = _trainer(tok, tmp_path, "brain", {"beta": 0.5}, num_samples=3).train()
    # proposal = policy at the start, so beta_hat is uniform and the loss is log K for any weights
    assert _first_step_loss(trainer) == pytest.approx(math.log(3), rel=1e-5)
    ex = trainer.examples_
    assert len(ex[0]["rewards"]) == 3
    rewards = KeywordOracle("good").score(
        [""] * 3, [tok.decode(r, skip_special_tokens=True) for r in ex[0]["response_ids"]]
    )
    assert ex[0]["rewards"] == pytest.approx(rewards.tolist())


def test_online_loop_raises_the_win_rate_against_the_initial_policy(tok, tmp_path):
    def run(lr):
        trainer = _trainer(
            tok,
            tmp_path,
            "sppo",
            {"beta": 0.1},
            iterations=3,
            prompts=_prompts(24, 0),
            eval_prompts=_prompts(16, 7),
            eval_num_samples=4,
            max_new_tokens=8,
            max_steps=6,
            per_device_train_batch_size=8,
            learning_rate=lr,
            logging_steps=100,
            seed=0,
        )
        return trainer.train().history_

    hist = run(3e-2)
    rates = hist["win_rate_vs_initial"].tolist()
    # measured: 0.517, 0.663, 0.832, 0.900 (64 comparisons each, se <= 0.063)
    assert abs(rates[0] - 0.5) < 0.15  # the initial policy against itself
    assert rates[3] >= 0.75 and rates[3] > rates[1] and rates[3] - rates[0] >= 0.2
    assert (hist["win_rate_vs_previous"].iloc[1:] > 0.5).all()
    n = hist["eval_comparisons"].iloc[3]
    assert n == 64 and hist["win_rate_vs_initial_se"].iloc[3] == pytest.approx(binomial_se(rates[3], 64))
    # control: a no-op update (lr = 0) does not raise it (measured 0.495)
    still = run(0.0)["win_rate_vs_initial"].tolist()
    assert still[3] < 0.62


def test_chat_prompts_dataset_prompts_and_a_reward_model_oracle(tok, tmp_path):
    chat = [[{"role": "user", "content": p}] for p in _prompts(4, 3)]
    rm = toy_sequence_classifier(tok, seed=1)
    trainer = _trainer(
        tok,
        tmp_path,
        "dno",
        {"beta": 0.5},
        prompts=chat,
        oracle=rm,
        reward_tokenizer=tok,
        min_preference=0.0,
        num_samples=2,
    ).train()
    assert trainer.tokenization_report_.conversational and trainer.history_.loc[1, "pairs"] == 4
    assert (
        trainer.examples_[0]["prompt_ids"]
        == tok.apply_chat_template(chat[0], add_generation_prompt=True, tokenize=True)["input_ids"]
    )
    # any read_preferences format gives its prompts
    data = toy_preference_dataset(3, seed=0)
    t2 = _trainer(toy_tokenizer(), tmp_path, "sppo", {"beta": 0.1}, prompts=data)
    assert t2.prompts == list(data["prompt"])


def test_generation_is_seeded(tok, tmp_path):
    a = _trainer(tok, tmp_path, "sppo", {"beta": 0.1}, seed=5).train().history_
    b = _trainer(tok, tmp_path, "sppo", {"beta": 0.1}, seed=5).train().history_
    c = _trainer(tok, tmp_path, "sppo", {"beta": 0.1}, seed=6).train().history_
    cols = ["pairs", "chosen_win_rate", "win_rate_vs_initial", "train_loss"]
    assert a[cols].equals(b[cols])
    assert not a[cols].equals(c[cols])


def test_configuration_errors(tok, tmp_path):
    with pytest.raises(TypeError, match="learning_rate"):
        _trainer(tok, tmp_path, "sppo", learning_rat=1e-3)
    with pytest.raises(ValueError, match="reward-model loss"):
        _trainer(tok, tmp_path, "bt")
    with pytest.raises(ValueError, match="self-play does not produce"):
        _trainer(tok, tmp_path, "tdpo")
    with pytest.raises(ValueError, match="extragradient"):
        _trainer(tok, tmp_path, "sppo", extragradient=True)
    with pytest.raises(ValueError, match="num_samples"):
        _trainer(tok, tmp_path, "sppo", num_samples=1)
    with pytest.raises(ValueError, match="score"):
        _trainer(tok, tmp_path, "brain", oracle=lambda x, a, b: [0.5] * len(x))
    with pytest.raises(ValueError, match="score"):

        class PreferOnly:
            def prefer(self, prompts, a, b):
                return [0.5] * len(prompts)

        _trainer(tok, tmp_path, "brain", oracle=PreferOnly())
    with pytest.raises(ValueError, match="hyperparameter"):
        _trainer(tok, tmp_path, "sppo", {"eta": 10})
    with pytest.raises(TypeError, match="prompts"):
        _trainer(tok, tmp_path, "sppo", prompts="one prompt")


def test_example_runs(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "online_tiny.py")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    last = [line for line in out.stdout.splitlines() if line.startswith("final win rate")][0]
    assert float(last.split()[-3]) > 0.7


def test_sampling_settings_are_checked(tok, tmp_path):
    # Regressions: generation_kwargs silently overrode the trainer's own generate() options, and non-plain
    # sampling went unnoticed though the win-rate and importance-weight estimators assume it.
    for key in ("do_sample", "num_return_sequences", "temperature", "pad_token_id"):
        with pytest.raises(ValueError, match=rf"generation_kwargs may not set \['{key}'\]"):
            _trainer(tok, tmp_path, "sppo", generation_kwargs={key: 1})
    with pytest.warns(UserWarning, match="temperature=0.7"):
        _trainer(tok, tmp_path, "sppo", temperature=0.7)
    with pytest.warns(UserWarning, match="top_k=5"):
        _trainer(tok, tmp_path, "sppo", top_k=5)
    with pytest.warns(UserWarning, match="repetition_penalty"):
        _trainer(tok, tmp_path, "sppo", generation_kwargs={"repetition_penalty": 1.2})
    scorer = ScoreOracle(lambda x, y: [float(len(r)) for r in y])
    with pytest.raises(ValueError, match=r"top_p=0.9.*BRAIn"):
        _trainer(tok, tmp_path, "brain", oracle=scorer, top_p=0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _trainer(tok, tmp_path, "brain", oracle=scorer)  # the defaults: plain sampling, no warning
