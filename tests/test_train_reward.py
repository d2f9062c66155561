"""bradley.train.reward / heads / metrics: reward models on tiny Llama models built from configs (CPU, nothing downloaded).

Training-quality tests state their thresholds and compare with the untrained
model; the heads are checked against naive references written here (explicit
rotation matrices, full LM-head logits, one-row-at-a-time forward passes) and
the metrics against hand computations.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("datasets")

from bradley.train.heads import (  # noqa: E402
    GENRM_TEMPLATE,
    GeneralPreferenceModel,
    GenerativeRewardModel,
    ScalarRewardModel,
    gpm_score,
    last_token_index,
)
from bradley.train.metrics import pairwise_metrics  # noqa: E402
from bradley.train.reward import RewardModel, RewardTrainer  # noqa: E402
from bradley.train.toy import (  # noqa: E402
    TOY_WORDS,
    toy_causal_lm,
    toy_preference_dataset,
    toy_sequence_classifier,
    toy_tokenizer,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(autouse=True)
def _one_thread():
    # Models this small run several times faster on one thread than on two busy ones.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tok():
    return toy_tokenizer([*TOY_WORDS, GENRM_TEMPLATE])


def options(tmp_path, **extra):
    base = dict(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=16,
        learning_rate=3e-3,
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        logging_steps=10,
        seed=0,
    )
    base.update(extra)
    return base


def quiet_train(trainer, **kwargs):
    with contextlib.redirect_stdout(io.StringIO()):  # transformers prints its final log line
        return trainer.train(**kwargs)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


# ---------------------------------------------------------------- GPM score (sheet A9 tests 1-4)


def rotation_operator(k, scales=None):
    blocks = [torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64) for _ in range(k)]
    if scales is not None:
        blocks = [s * b for s, b in zip(scales, blocks, strict=True)]
    return torch.block_diag(*blocks)


def test_gpm_score_is_the_bilinear_form_with_a_block_rotation():
    gen = torch.Generator().manual_seed(0)
    v1, v2 = torch.randn(5, 6, generator=gen, dtype=torch.float64), torch.randn(5, 6, generator=gen, dtype=torch.float64)
    lam = torch.rand(5, 3, generator=gen, dtype=torch.float64)
    for i in range(5):
        assert torch.allclose(gpm_score(v1[i], v2[i]), (rotation_operator(3) @ v1[i]) @ v2[i], atol=1e-12)
        naive = (rotation_operator(3, lam[i]) @ v1[i]) @ v2[i]
        assert torch.allclose(gpm_score(v1[i], v2[i], lam[i]), naive, atol=1e-12)


def test_gpm_sheet_properties():
    gen = torch.Generator().manual_seed(1)
    v1, v2 = torch.randn(8, 4, generator=gen, dtype=torch.float64), torch.randn(8, 4, generator=gen, dtype=torch.float64)
    # 1. skew-symmetry, and s(y, y) = 0
    assert torch.allclose(gpm_score(v1, v2), -gpm_score(v2, v1), atol=1e-12)
    assert torch.allclose(gpm_score(v1, v1), torch.zeros(8, dtype=torch.float64), atol=1e-12)
    # 2. BT embedding v = (r, 1): s(a, b) = r_a - r_b
    r = torch.tensor([2.5, -1.0, 0.3], dtype=torch.float64)
    v = torch.stack([r, torch.ones(3, dtype=torch.float64)], dim=1)
    for a in range(3):
        for b in range(3):
            assert math.isclose(gpm_score(v[a], v[b]).item(), (r[a] - r[b]).item(), abs_tol=1e-12)
    # 3. cycle: unit vectors at 0, 2pi/3, 4pi/3 give s(0,1) = s(1,2) = s(2,0) = sin(2pi/3)
    angles = torch.tensor([0.0, 2 * math.pi / 3, 4 * math.pi / 3], dtype=torch.float64)
    u = torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    cycle = [gpm_score(u[i], u[(i + 1) % 3]).item() for i in range(3)]
    assert cycle == pytest.approx([math.sin(2 * math.pi / 3)] * 3, abs=1e-12)
    assert cycle[0] == pytest.approx(0.8660254, abs=1e-7)
    # 4. |R v| = |v|, and one rotation applied within every block to both embeddings leaves s unchanged
    big_r = rotation_operator(2)
    assert torch.allclose((big_r @ v1.T).norm(dim=0), v1.norm(dim=1), atol=1e-12)
    c, s = math.cos(0.7), math.sin(0.7)
    rot = torch.block_diag(*[torch.tensor([[c, -s], [s, c]], dtype=torch.float64)] * 2)
    assert torch.allclose(gpm_score(v1 @ rot.T, v2 @ rot.T), gpm_score(v1, v2), atol=1e-12)


def test_gpm_score_shape_errors():
    with pytest.raises(ValueError, match="even last dimension"):
        gpm_score(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="v2 has shape"):
        gpm_score(torch.zeros(2, 4), torch.zeros(4))
    with pytest.raises(ValueError, match="one per block"):
        gpm_score(torch.zeros(2, 4), torch.zeros(2, 4), torch.ones(2, 3))


def test_gpm_gate_code_and_paper(tok):
    torch.manual_seed(0)
    lm = toy_causal_lm(tok)
    code = GeneralPreferenceModel(lm, dim=6, scale_gate="code")
    paper = GeneralPreferenceModel(lm, dim=6, scale_gate="paper")
    paper.load_state_dict(code.state_dict())
    batch = tok(["the cat is good", "the dog"], padding=True, return_tensors="pt")
    prompt_index = torch.tensor([1, 1])
    _, lam = code(batch["input_ids"], batch["attention_mask"], prompt_index)
    _, lam_paper = paper(batch["input_ids"], batch["attention_mask"], prompt_index)
    # the authors' code: k * softmax, so the scales are positive and sum to k = 3; the paper's D R D squares them
    assert torch.all(lam > 0) and torch.allclose(lam.sum(-1), torch.full((2,), 3.0), atol=1e-6)
    assert torch.allclose(lam_paper, lam**2, atol=1e-6)
    with pytest.raises(ValueError, match="prompt_index"):
        code(batch["input_ids"], batch["attention_mask"])
    with pytest.raises(ValueError, match="even int"):
        GeneralPreferenceModel(lm, dim=3)


# ---------------------------------------------------------------- heads vs naive forward passes


def test_last_token_index_reads_right_padding():
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    assert last_token_index(mask).tolist() == [2, 4, 0]


def test_scalar_head_reads_the_last_real_token_whatever_the_padding(tok):
    rm = ScalarRewardModel(toy_causal_lm(tok, seed=3))
    torch.nn.init.normal_(rm.head.weight, generator=torch.Generator().manual_seed(0))
    texts = ["the cat is good .", "a dog", "the sky is very blue and the sun shines ."]
    batch = tok(texts, padding=True, return_tensors="pt")
    together = rm(batch["input_ids"], batch["attention_mask"])
    for i, text in enumerate(texts):
        alone = tok([text], return_tensors="pt")
        # naive: the backbone's full hidden states, the head on the very last position of the unpadded row
        hidden = rm.backbone(**alone, output_hidden_states=True).hidden_states[-1][0, -1]
        assert torch.allclose(together[i], rm.head(hidden).squeeze(-1), atol=1e-5)


def test_genrm_head_equals_the_full_logit_difference(tok):
    lm = toy_causal_lm(tok, seed=2)
    a, b = GenerativeRewardModel.answer_ids(tok)
    judge = GenerativeRewardModel(lm, (a, b))
    texts = ["<|user|> which is better ? A or B", "<|user|> the cat"]
    batch = tok(texts, padding=True, return_tensors="pt")
    z = judge(batch["input_ids"], batch["attention_mask"])
    for i, text in enumerate(texts):
        logits = lm(**tok([text], return_tensors="pt")).logits[0, -1]
        log_probs = torch.log_softmax(logits, -1)
        assert torch.allclose(z[i], log_probs[a] - log_probs[b], atol=1e-5)
    with pytest.raises(ValueError, match="one known token"):
        GenerativeRewardModel.answer_ids(toy_tokenizer(), ("A", "B"))  # not in the default toy vocabulary


# ---------------------------------------------------------------- metrics vs hand computation


def test_pairwise_metrics_by_hand():
    prob = np.array([0.9, 0.3, 0.65, 0.5, 0.8, 0.55])
    outcome = np.array([1.0, 1.0, 0.0, 1.0, 0.5, 1.0])
    cats = ["x", "x", "y", "y", "y", "x"]
    table = pairwise_metrics(prob, outcome, cats, bins=5)
    assert table["category"].tolist() == ["all", "x", "y"]

    def by_hand(idx):
        p, o = prob[idx], outcome[idx]
        hits = [0.5 if pi == 0.5 else float((pi > 0.5) == (oi > 0.5)) for pi, oi in zip(p, o) if oi != 0.5]
        ll = -np.mean(o * np.log(p) + (1 - o) * np.log(1 - p))
        fav_p = np.maximum(p, 1 - p)
        fav_o = np.where(p > 0.5, o, np.where(p < 0.5, 1 - o, 0.5))
        edges = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0001]
        ece = 0.0
        for lo, hi in zip(edges[:-1], edges[1:]):
            inside = (fav_p >= lo) & (fav_p < hi)
            ece += abs(fav_p[inside].sum() - fav_o[inside].sum())
        return np.mean(hits), ll, ece / len(p), np.mean((p - o) ** 2)

    for row, idx in zip(table.itertuples(), [np.arange(6), np.array([0, 1, 5]), np.array([2, 3, 4])]):
        acc, ll, ece, brier = by_hand(idx)
        assert row.pairs == len(idx) and row.decisive == int((outcome[idx] != 0.5).sum())
        assert row.accuracy == pytest.approx(acc, abs=1e-12)
        assert row.log_loss == pytest.approx(ll, abs=1e-12)
        assert row.ece == pytest.approx(ece, abs=1e-12)
        assert row.brier == pytest.approx(brier, abs=1e-12)
    with pytest.raises(ValueError, match="probabilities"):
        pairwise_metrics([1.2], [1.0])


def test_evaluate_pairs_equals_a_pair_by_pair_hand_computation(tok, tmp_path):
    model = toy_sequence_classifier(tok, seed=4)
    data = toy_preference_dataset(12, seed=3, categories=2, ties=0.3)
    trainer = RewardTrainer(model, tok, loss="tobt", **options(tmp_path))
    table = trainer.evaluate_pairs(data)
    probs, outcomes, cats = [], [], []
    with torch.no_grad():
        for row in data:
            scores = []
            for response in (row["chosen"], row["rejected"]):
                ids = tok(row["prompt"] + response)["input_ids"] + [tok.eos_token_id]
                scores.append(model(torch.tensor([ids])).logits[0, 0].item())
            probs.append(1 / (1 + math.exp(scores[1] - scores[0])))
            outcomes.append(0.5 if row["is_tie"] else 1.0)
            cats.append(row["category"])
    expected = pairwise_metrics(probs, outcomes, cats)
    assert sum(outcomes) < len(outcomes)  # some ties, left out of accuracy
    assert table["category"].tolist() == expected["category"].tolist()
    for column in ("pairs", "decisive", "accuracy", "log_loss", "ece", "brier"):
        assert np.allclose(table[column].to_numpy(float), expected[column].to_numpy(float), atol=1e-5), column


# ---------------------------------------------------------------- training quality


@pytest.mark.slow
def test_bt_reward_model_learns_the_marker_over_95_percent_in_under_a_minute(tok, tmp_path):
    held_out = toy_preference_dataset(128, seed=1)
    start = time.perf_counter()
    trainer = RewardTrainer(
        toy_sequence_classifier(tok, hidden_size=16),
        tok,
        toy_preference_dataset(256, seed=0),
        loss="bt",
        **options(tmp_path, max_steps=80),
    )
    before = trainer.evaluate_pairs(held_out).iloc[0]
    quiet_train(trainer)
    after = trainer.evaluate_pairs(held_out).iloc[0]
    elapsed = time.perf_counter() - start
    assert after.accuracy > 0.95 and after.log_loss < 0.2, after  # measured: 1.0, ~0.01
    assert before.log_loss > 0.6  # the untrained model is near chance
    assert elapsed < 60, elapsed  # measured ~5-10 s on one thread of a busy 2-core machine
    logs = trainer.trainer.state.log_history
    train_logs = [entry for entry in logs if "loss" in entry]
    names = ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "accuracy", "margin",
             "min_reward", "mean_reward", "max_reward")
    for name in names:
        assert name in train_logs[0], name
    assert train_logs[-1]["rewards/margins"] > train_logs[0]["rewards/margins"]
    metrics = trainer.evaluate(held_out)
    assert metrics["eval_rewards/accuracies"] > 0.95 and metrics["eval_loss"] < 0.2


@pytest.mark.slow
def test_gpm_fits_a_cyclic_preference_that_a_bt_head_cannot(tok, tmp_path):
    train = toy_preference_dataset(1000, seed=0, kind="cyclic")
    held_out = toy_preference_dataset(300, seed=1, kind="cyclic")
    # Any scalar reward of the three moves orders them, so it gets at most the two most frequent cycle edges right.
    rps = ("rock", "paper", "scissors")
    edges = [next(w for w in rps if row["chosen"].endswith(f" {w} .")) for row in held_out]
    transitive_bound = 1 - min(edges.count(w) for w in rps) / len(edges)
    accuracy = {}
    for head, kwargs in (("gpm", {"dim": 2}), ("scalar", None)):
        trainer = RewardTrainer(
            toy_causal_lm(tok), tok, train, loss="bt", head=head, head_kwargs=kwargs,
            **options(tmp_path, max_steps=400, learning_rate=1e-3),
        )
        quiet_train(trainer)
        accuracy[head] = trainer.evaluate_pairs(held_out).iloc[0].accuracy
    # measured 1.0 for backbone seeds 0, 1, 2 (at 200 steps and lr 3e-3 one seed of three stalled at ~0.66)
    assert accuracy["gpm"] > 0.9, accuracy
    assert accuracy["scalar"] <= transitive_bound + 0.05, (accuracy, transitive_bound)  # measured ~0.65 vs ~0.68


@pytest.mark.slow
def test_genrm_learns_the_marker_well_above_chance(tok, tmp_path):
    held_out = toy_preference_dataset(128, seed=1)
    trainer = RewardTrainer(
        toy_causal_lm(tok), tok, toy_preference_dataset(400, seed=0), loss="bt", head="genrm",
        **options(tmp_path, max_steps=100),
    )
    before = trainer.evaluate_pairs(held_out).iloc[0]
    quiet_train(trainer)
    after = trainer.evaluate_pairs(held_out).iloc[0]
    assert before.log_loss == pytest.approx(math.log(2), abs=0.01)  # an untrained judge is indifferent
    assert after.accuracy >= 0.9, after  # chance is 0.5; measured 1.0
    # both orders are averaged, so P(a > b) + P(b > a) = 1 exactly, whatever the position bias
    prompt, a, b = "tell me about cats ?", " the cat is good .", " the cat sleeps ."
    assert trainer.prefer(prompt, a, b) + trainer.prefer(prompt, b, a) == pytest.approx(1.0, abs=1e-6)
    assert trainer.prefer(prompt, a, b) > 0.5
    with pytest.raises(TypeError, match="prefer"):
        trainer.score(prompt, a)


def test_tie_aware_and_soft_target_losses_train(tok, tmp_path):
    held_out = toy_preference_dataset(96, seed=1, ties=0.3)
    trainer = RewardTrainer(
        toy_sequence_classifier(tok), tok, toy_preference_dataset(256, seed=0, ties=0.3), loss="tobt",
        loss_kwargs={"tie_threshold": 0.5}, **options(tmp_path, max_steps=60),
    )
    before = trainer.evaluate(held_out)["eval_loss"]
    quiet_train(trainer)
    after = trainer.evaluate(held_out)["eval_loss"]
    assert after < before - 0.2, (before, after)
    table = trainer.evaluate_pairs(held_out).iloc[0]
    assert table.decisive < table.pairs and table.accuracy > 0.9, table
    logits, dataset, _ = trainer.reward_model.pair_logits(held_out)
    tie = np.asarray(dataset["is_tie"], dtype=bool)
    # tied pairs are pulled to equal rewards, decisive ones apart
    assert np.abs(logits[tie]).mean() < 0.5 * np.abs(logits[~tie]).mean()

    soft_train = toy_preference_dataset(256, seed=0, soft_targets=True, margins=True)
    trainer = RewardTrainer(toy_sequence_classifier(tok), tok, soft_train, loss="soft-bt", **options(tmp_path, max_steps=60))
    before = trainer.evaluate(soft_train)["eval_loss"]
    quiet_train(trainer)
    after = trainer.evaluate(soft_train)["eval_loss"]
    assert after < before - 0.1, (before, after)
    logits, dataset, _ = trainer.reward_model.pair_logits(soft_train)
    diff = np.asarray(dataset["margin"])
    # soft targets sigmoid(1) and sigmoid(2): the learned logit is larger where the target is (margin matching)
    assert logits[diff == 2].mean() > logits[diff == 1].mean() > 0


def test_scaled_bt_after_regression_two_stage_recipe(tok, tmp_path):
    model = toy_sequence_classifier(tok)
    ratings = toy_preference_dataset(128, seed=0, k=3)  # scores = marker counts, read as ratings
    stage1 = RewardTrainer(model, tok, ratings, loss="regression", **options(tmp_path, max_steps=60))
    before = stage1.evaluate(ratings)["eval_loss"]
    quiet_train(stage1)
    after = stage1.evaluate(ratings)["eval_loss"]
    assert after < 0.5 * before, (before, after)
    # the regression head predicts the ratings: more markers, higher score
    prompt = "tell me about cats ?"
    scores = stage1.score([prompt] * 3, [" the cat .", " the good cat .", " the good cat is good ."])
    assert scores[0] < scores[1] < scores[2]
    start = {k: v.clone() for k, v in model.state_dict().items()}
    pairs = toy_preference_dataset(128, seed=1, strengths=True)
    stage2 = RewardTrainer(model, tok, pairs, loss="scaled-bt", **options(tmp_path, max_steps=20))
    assert all(torch.equal(v, stage2.model.state_dict()[k]) for k, v in start.items())  # initialised from stage 1
    before = stage2.evaluate(pairs)["eval_loss"]
    quiet_train(stage2)
    assert stage2.evaluate(pairs)["eval_loss"] < before


def test_plackett_luce_listwise_k3(tok, tmp_path):
    train = toy_preference_dataset(256, seed=0, k=3)
    held_out = toy_preference_dataset(64, seed=1, k=3)
    trainer = RewardTrainer(toy_sequence_classifier(tok), tok, train, loss="plackett-luce", **options(tmp_path, max_steps=60))
    before = trainer.evaluate(held_out)["eval_loss"]
    quiet_train(trainer)
    after = trainer.evaluate(held_out)["eval_loss"]
    assert after < before - 0.5, (before, after)
    table = trainer.evaluate_pairs(held_out).iloc[0]
    assert table.pairs == 3 * 64 and table.decisive < table.pairs  # equal marker counts share a rank
    assert table.accuracy > 0.9, table


# ---------------------------------------------------------------- score / prefer, checkpoints, errors


@pytest.mark.parametrize("head", ["sequence-classification", "scalar", "gpm"])
def test_score_and_prefer_agree(tok, tmp_path, head):
    if head == "sequence-classification":
        model, kwargs = toy_sequence_classifier(tok, seed=5), {}
    else:
        model, kwargs = toy_causal_lm(tok, seed=5), {"head": head}
        if head == "gpm":
            kwargs["head_kwargs"] = {"dim": 4, "scale_gate": "code"}
    trainer = RewardTrainer(model, tok, toy_preference_dataset(32, seed=0), **kwargs, **options(tmp_path, max_steps=3))
    quiet_train(trainer)
    prompt = "tell me about dogs ?"
    a = [" the dog is good .", " a dog runs .", " good good ."]
    b = [" the dog .", " good dog runs fast .", " the sky ."]
    prob = trainer.prefer(prompt, a, b)
    sa, sb = trainer.score(prompt, a), trainer.score(prompt, b)
    if head == "gpm":
        gpm = trainer.model
        assert sa.shape == (3, 4)
        # the gate depends on the prompt only, so it is the same for a and b: compare without the gate removed
        assert np.all((prob > 0) & (prob < 1))
        skew = trainer.prefer(prompt, b, a)
        assert np.allclose(prob + skew, 1.0, atol=1e-6)
        assert trainer.prefer(prompt, a[0], a[0]) == pytest.approx(0.5, abs=1e-6)
        gpm_ungated = GeneralPreferenceModel(gpm.backbone, dim=4)
        gpm_ungated.head.load_state_dict(gpm.head.state_dict())
        plain = RewardModel(gpm_ungated, tok)
        va, vb = plain.score(prompt, a), plain.score(prompt, b)
        expected = sigmoid(gpm_score(torch.tensor(va), torch.tensor(vb)).numpy() / gpm.tau)
        assert np.allclose(plain.prefer(prompt, a, b), expected, atol=1e-6)
    else:
        assert np.allclose(prob, sigmoid(sa - sb), atol=1e-6)
        assert isinstance(trainer.score(prompt, a[0]), float)
        assert trainer.score(prompt, a[0]) == pytest.approx(sa[0], abs=1e-6)


def test_resume_from_checkpoint_gives_the_same_weights(tok, tmp_path):
    data = toy_preference_dataset(64, seed=0)

    def run(out, **kwargs):
        trainer = RewardTrainer(
            toy_sequence_classifier(tok, seed=7), tok, data,
            **options(tmp_path, output_dir=str(out), max_steps=6, save_strategy="steps", save_steps=3, per_device_train_batch_size=8),
        )
        quiet_train(trainer, **kwargs)
        return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}

    straight = run(tmp_path / "a")
    assert (tmp_path / "a" / "checkpoint-3").is_dir()
    resumed = run(tmp_path / "b", resume_from_checkpoint=str(tmp_path / "a" / "checkpoint-3"))
    moved = max((straight[k] - v).abs().max().item() for k, v in toy_sequence_classifier(tok, seed=7).state_dict().items())
    assert moved > 1e-3  # training changed the weights, so equality below means something
    worst = max((straight[k] - resumed[k]).abs().max().item() for k in straight)
    assert worst < 1e-6, worst


def test_errors_name_the_problem(tok, tmp_path):
    model = toy_sequence_classifier(tok)
    with pytest.raises(ValueError, match="policy losses"):
        RewardTrainer(model, tok, loss="sigmoid", loss_kwargs={"beta": 0.1}, **options(tmp_path))
    with pytest.raises(TypeError, match="learning_rate"):
        RewardTrainer(model, tok, loss="bt", output_dir=str(tmp_path), learning_rat=1e-3)
    with pytest.raises(ValueError, match=r"needs column\(s\) \['is_tie'\]"):
        RewardTrainer(model, tok, toy_preference_dataset(8), loss="tobt", **options(tmp_path))
    with pytest.raises(ValueError, match="k-wise"):
        RewardTrainer(model, tok, toy_preference_dataset(8), loss="plackett-luce", **options(tmp_path))
    with pytest.raises(ValueError, match="pairwise loss"):
        RewardTrainer(toy_causal_lm(tok), tok, loss="plackett-luce", head="gpm", **options(tmp_path))
    with pytest.raises(ValueError, match="center_rewards_coefficient"):
        RewardTrainer(toy_causal_lm(tok), tok, loss="bt", loss_kwargs={"center_rewards_coefficient": 0.01},
                      head="gpm", **options(tmp_path))
    with pytest.raises(TypeError, match="head="):
        RewardTrainer(toy_causal_lm(tok), tok, **options(tmp_path))


@pytest.mark.slow
def test_example_runs_and_learns():
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "reward_model_tiny.py")], capture_output=True, text=True, timeout=300,
        check=False, cwd=EXAMPLES.parent,
    )
    assert result.returncode == 0, result.stderr
    after = result.stdout.split("after:")[1].splitlines()
    assert after[2].split()[:4] == ["all", "128", "128", "1.0"], result.stdout
    assert float(result.stdout.strip().splitlines()[-1].split("=")[-1]) > 0.9


def _tied_lm(tok, seed):
    lm = toy_causal_lm(tok, seed=seed)
    lm.config.tie_word_embeddings = True
    lm.tie_weights()
    assert lm.get_output_embeddings().weight.data_ptr() == lm.get_input_embeddings().weight.data_ptr()
    return lm


@pytest.mark.parametrize("head", ["scalar", "gpm"])
def test_checkpoints_of_a_head_on_a_tied_lm_save_and_resume(tok, tmp_path, head):
    # Regression: safetensors refused the tied lm_head/embed_tokens of a wrapped LM ("Some tensors share memory").
    data = toy_preference_dataset(32, seed=0)
    kwargs = {"head": head, "head_kwargs": {"dim": 4}} if head == "gpm" else {"head": head}

    def run(out, **train_kwargs):
        trainer = RewardTrainer(
            _tied_lm(tok, 3), tok, data, **kwargs,
            **options(tmp_path, output_dir=str(out), max_steps=4, save_strategy="steps", save_steps=2,
                      per_device_train_batch_size=8),
        )
        quiet_train(trainer, **train_kwargs)
        backbone = trainer.model.backbone
        assert backbone.get_output_embeddings().weight.data_ptr() == backbone.get_input_embeddings().weight.data_ptr()
        return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}

    straight = run(tmp_path / "a")
    assert (tmp_path / "a" / "checkpoint-2").is_dir()
    resumed = run(tmp_path / "b", resume_from_checkpoint=str(tmp_path / "a" / "checkpoint-2"))
    worst = max((straight[k] - resumed[k]).abs().max().item() for k in straight)
    assert worst < 1e-6, worst


def test_training_report_counts_training_padding_only_and_accuracy_skips_ties(tok, tmp_path):
    # Regressions: eval batches were added to the training padding counts, workers kept the counts, the count was
    # never reported after training, and tie rows counted as accuracy hits.
    data = toy_preference_dataset(16, seed=4, ties=0.5)
    model = toy_sequence_classifier(tok, seed=2)
    model.config.pad_token_id = tok.pad_token_id
    initial = copy.deepcopy(model)
    trainer = RewardTrainer(
        model, tok, data, eval_dataset=toy_preference_dataset(8, seed=5, ties=0.5), loss="tobt",
        loss_kwargs={"tie_threshold": 0.5},
        **options(tmp_path, max_steps=1, logging_steps=1, eval_strategy="steps", eval_steps=1,
                  dataloader_num_workers=1),
    )  # fmt: skip
    result = quiet_train(trainer)
    dataset = trainer.reward_model.prepare(data)[0]
    # Naive truth: one batch of all 16 pairs, every sequence padded to the longest.
    lengths = [len(r["prompt_ids"]) + len(r[c]) for r in dataset for c in ("chosen_ids", "rejected_ids")]
    padding = len(lengths) * max(lengths) - sum(lengths)
    assert trainer.tokenization_report_.batch_tokens == len(lengths) * max(lengths)
    assert trainer.tokenization_report_.padding_tokens == padding > 0
    assert result.metrics["padding_fraction"] == pytest.approx(padding / (len(lengths) * max(lengths)))
    # The logged accuracy of step 1 is that of the initial weights on the decided (non-tie) rows.
    tie = np.asarray(dataset["is_tie"], dtype=bool)
    assert 0 < tie.sum() < len(tie)
    rows = [data[i] for i in range(len(data))]
    plain = RewardModel(initial, tok)
    margins = plain.score([r["prompt"] for r in rows], [r["chosen"] for r in rows]) - plain.score(
        [r["prompt"] for r in rows], [r["rejected"] for r in rows]
    )
    logged = next(e for e in trainer.trainer.state.log_history if "rewards/accuracies" in e)
    assert logged["rewards/accuracies"] == pytest.approx(float((margins[~tie] > 0).mean()), abs=1e-6)
    assert logged["accuracy"] == logged["rewards/accuracies"]
    assert float((margins > 0).mean()) != pytest.approx(logged["accuracy"], abs=1e-3)  # ties do change it here
