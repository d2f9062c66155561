"""bradley.nn.dpo: TRL's loss names against TRL 1.16's own code (float64, 1e-10), plus closed forms and numerics."""

import decimal
import math

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from bradley.nn import PreferenceBatch, dpo, get  # noqa: E402

F64 = torch.float64


def pair_data(B=4, T=9, seed=0, dtype=F64):
    """Per-token data as TRL sees it: (2B, T) completion mask (chosen rows first), (2B, T-1) log-probs."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(2 * B, T, dtype=torch.long)
    lengths = torch.randint(1, T - 2, (2 * B,), generator=g)
    for i, n in enumerate(lengths.tolist()):
        mask[i, 2 : 2 + n] = 1  # a two-token prompt, then the completion, then padding
    shift = mask[:, 1:].to(dtype)
    policy = -(torch.rand(2 * B, T - 1, generator=g, dtype=F64) * 3 + 0.05).to(dtype) * shift
    ref = -(torch.rand(2 * B, T - 1, generator=g, dtype=F64) * 3 + 0.05).to(dtype) * shift
    log_sum_sq = -(torch.rand(2 * B, T - 1, generator=g, dtype=F64) * 2).to(dtype)
    return {"completion_mask": mask, "policy": policy, "ref": ref, "log_sum_sq": log_sum_sq}


def to_batch(data, policy):
    B = policy.shape[0] // 2
    shift = data["completion_mask"][:, 1:].bool()
    return PreferenceBatch(
        policy_chosen_token_logps=policy[:B],
        policy_rejected_token_logps=policy[B:],
        ref_chosen_token_logps=data["ref"][:B],
        ref_rejected_token_logps=data["ref"][B:],
        chosen_mask=shift[:B],
        rejected_mask=shift[B:],
        chosen_log_sum_sq_probs=data["log_sum_sq"][:B],
        rejected_log_sum_sq_probs=data["log_sum_sq"][B:],
    )


def ours(names, data, policy, weights=None, **hparams):
    loss = get(names, **hparams) if isinstance(names, str) else get(names, loss_weights=weights, **hparams)
    return loss(to_batch(data, policy)).loss.mean()


# TRL's settings that are hyperparameters of ours (everything but the loss names and weights).
def trl_settings(names, weights, hparams):
    return {"loss_types": [names] if isinstance(names, str) else list(names), "loss_weights": weights, **hparams}


@pytest.fixture(scope="module")
def dpo_trainer():
    pytest.importorskip("trl")
    from trl_reference import build_dpo_trainer

    return build_dpo_trainer()


TRL_CASES = [
    ("sigmoid", {}),
    ("sigmoid", {"beta": 0.3}),
    ("hinge", {"beta": 0.2}),
    ("ipo", {}),
    ("exo_pair", {"label_smoothing": 1e-3}),
    ("nca_pair", {}),
    ("robust", {"label_smoothing": 0.1}),
    ("bco_pair", {}),
    ("sppo_hard", {}),
    ("aot", {"label_smoothing": 0.1}),
    ("aot_unpaired", {"label_smoothing": 0.2}),
    ("apo_zero", {"beta": 0.5}),
    ("apo_down", {"beta": 0.5}),
    ("discopop", {"beta": 0.5}),
    ("discopop", {"beta": 0.5, "discopop_tau": 0.3}),
    ("sft", {}),
    ("sigmoid_norm", {"beta": 2.0}),
]
FDIV_LOSSES = ["sigmoid", "hinge", "ipo", "exo_pair", "robust", "discopop", "sigmoid_norm"]
FDIV_CASES = [
    (name, {"f_divergence_type": div, **({"label_smoothing": 1e-3} if name == "exo_pair" else {})})
    for name in FDIV_LOSSES
    for div in ("forward_kl", "js_divergence")
]
LD_CASES = [(n, {"ld_alpha": 0.4}) for n in ("sigmoid", "ipo", "aot", "bco_pair", "sigmoid_norm")]
WPO_CASES = [(n, {"use_weighting": True}) for n in ("sigmoid", "ipo", "nca_pair", "apo_down")]
MIXED = [("sigmoid", {"ld_alpha": 0.7, "use_weighting": True, "f_divergence_type": "js_divergence", "beta": 0.2})]


def _compare(trainer, names, hparams, weights=None, dtype=F64, seed=0, tol=1e-10, precompute=False):
    if "exo_pair" in ([names] if isinstance(names, str) else names):
        tol = max(tol, 1e-7)  # TRL makes epsilon a float32 tensor, so its log(eps) carries float32 rounding
    data = pair_data(dtype=dtype, seed=seed)
    p_trl = data["policy"].clone().requires_grad_(True)
    p_ours = data["policy"].clone().requires_grad_(True)
    from trl_reference import trl_dpo_loss

    reference = trl_dpo_loss(
        trainer, {**data, "policy": p_trl}, precompute_ref_logps=precompute, **trl_settings(names, weights, hparams)
    )
    value = ours(names, data, p_ours, weights, **hparams)
    reference.backward()
    value.backward()
    assert value.item() == pytest.approx(reference.item(), rel=tol, abs=tol)
    # TRL sums every position (its log-probs are zero off the response), so compare on response tokens.
    shift = data["completion_mask"][:, 1:].to(dtype)
    torch.testing.assert_close(p_ours.grad * shift, p_trl.grad * shift, rtol=tol, atol=tol)
    return value.item()


@pytest.mark.parametrize(("name", "hparams"), TRL_CASES + FDIV_CASES + LD_CASES + WPO_CASES + MIXED)
def test_matches_trl_dpo_trainer(dpo_trainer, name, hparams):
    _compare(dpo_trainer, name, hparams)


def test_matches_trl_with_precomputed_reference(dpo_trainer):
    _compare(dpo_trainer, "robust", {"label_smoothing": 0.2}, precompute=True)


@pytest.mark.parametrize(
    ("names", "weights", "hparams"),
    [
        (["sigmoid", "sft"], [1.0, 0.7], {}),  # RPO
        (["sigmoid", "bco_pair", "sft"], [0.8, 0.2, 1.0], {}),  # MPO
        (["sigmoid", "bco_pair", "sft"], [0.8, 0.2, 1.0], {"beta": 0.3, "ld_alpha": 0.5}),
        (["ipo", "sft"], [1.0, 2.0], {"f_divergence_type": "js_divergence"}),
    ],
)
def test_combinations_match_trl(dpo_trainer, names, weights, hparams):
    _compare(dpo_trainer, names, hparams, weights=weights)


@pytest.mark.parametrize("name", ["sigmoid", "ipo", "hinge", "robust", "sigmoid_norm", "discopop"])
@pytest.mark.parametrize("coef", [0.3, 0.5, 1.6])
def test_alpha_divergence_matches_trl_in_float32(dpo_trainer, name, coef):
    # TRL's alpha-divergence clamp table has no float64 entry (KeyError), so compare in float32.
    hparams = {"f_divergence_type": "alpha_divergence", "f_alpha_divergence_coef": coef}
    _compare(dpo_trainer, name, hparams, dtype=torch.float32, tol=2e-5)


def test_alpha_divergence_trl_refuses_float64(dpo_trainer):
    from trl_reference import trl_dpo_loss

    with pytest.raises(KeyError):
        trl_dpo_loss(dpo_trainer, pair_data(), loss_types=["sigmoid"], f_divergence_type="alpha_divergence")


def test_sft_with_wpo_weighting(dpo_trainer):
    # TRL 1.16 multiplies its expanded (B,) sft view in place and raises; its evident intent (expand the batch NLL,
    # weight each pair, average) is the batch NLL times the mean pair weight, computed here by hand.
    from trl_reference import trl_dpo_loss

    data = pair_data(seed=3)
    with pytest.raises(RuntimeError, match="memory location"):
        trl_dpo_loss(dpo_trainer, data, loss_types=["sft"], use_weighting=True)
    shift = data["completion_mask"][:, 1:].to(F64)
    nll = -(data["policy"][:4] * shift[:4]).sum() / shift[:4].sum()
    per_seq = torch.exp(((data["policy"] - data["log_sum_sq"]) * shift).sum(1) / shift.sum(1))
    weights = per_seq[:4] * per_seq[4:]
    value = ours("sft", data, data["policy"], use_weighting=True).item()
    assert value == pytest.approx((nll * weights.mean()).item(), rel=1e-13)


# ---------------------------------------------------------------- KTO


@pytest.fixture(scope="module")
def kto_trainer():
    pytest.importorskip("trl")
    from trl_reference import build_kto_trainer

    return build_kto_trainer()


def kto_data(N=6, T=8, seed=1):
    d = pair_data(B=N // 2, T=T, seed=seed)
    k = pair_data(B=N // 2, T=T, seed=seed + 100)
    label = torch.tensor([True, False, True, True, False, False])[:N]
    return {
        "completion_mask": d["completion_mask"],
        "policy": d["policy"],
        "ref": d["ref"],
        "label": label,
        "kl_policy": k["policy"] + 0.3 * k["completion_mask"][:, 1:],  # policy above ref: KL > 0
        "kl_ref": k["ref"],
    }


@pytest.mark.parametrize(
    ("loss_type", "hparams"),
    [
        ("kto", {}),
        ("kto", {"beta": 0.4, "desirable_weight": 1.3, "undesirable_weight": 0.7}),
        ("apo_zero_unpaired", {"beta": 0.3, "desirable_weight": 2.0}),
    ],
)
def test_unpaired_losses_match_trl_kto_trainer(kto_trainer, loss_type, hparams):
    from trl_reference import trl_kto_loss

    data = kto_data()
    p_trl = data["policy"].clone().requires_grad_(True)
    p_ours = data["policy"].clone().requires_grad_(True)
    reference = trl_kto_loss(kto_trainer, {**data, "policy": p_trl}, loss_type=loss_type, **hparams)
    shift = data["completion_mask"][:, 1:]
    tensors = {"policy_logps": (p_ours * shift).sum(-1), "ref_logps": data["ref"].sum(-1), "desirable": data["label"]}
    if loss_type == "kto":
        tensors.update(policy_kl_logps=data["kl_policy"].sum(-1), ref_kl_logps=data["kl_ref"].sum(-1))
    out = get(loss_type, **hparams)(**tensors)
    value = out.loss.mean()
    reference.backward()
    value.backward()
    assert value.item() == pytest.approx(reference.item(), rel=1e-10, abs=1e-12)
    torch.testing.assert_close(p_ours.grad * shift, p_trl.grad * shift, rtol=1e-10, atol=1e-12)
    if loss_type == "kto":
        assert out.extras["kl"][0].item() > 0


def test_kto_kl_is_clamped_at_zero_and_detached():
    pol_kl = torch.tensor([-5.0, -6.0], dtype=F64, requires_grad=True)
    out = get("kto")(
        policy_logps=torch.tensor([-1.0, -2.0], dtype=F64),
        ref_logps=torch.tensor([-1.5, -1.0], dtype=F64),
        desirable=torch.tensor([True, False]),
        policy_kl_logps=pol_kl,
        ref_kl_logps=torch.tensor([-1.0, -1.0], dtype=F64),
    )
    assert out.extras["kl"].tolist() == [0.0, 0.0]
    assert not out.loss.requires_grad  # nothing but the KL pairs needs grad here, and the KL is detached
    # closed form with z0 = 0: desirable 1 - sig(0.1 * 0.5), undesirable 1 - sig(0.1 * 1.0)
    expected = [1 - 1 / (1 + math.exp(-0.05)), 1 - 1 / (1 + math.exp(-0.1))]
    assert out.loss.tolist() == pytest.approx(expected, rel=1e-14)


# ---------------------------------------------------------------- CPO / ORPO


def sequence_data(B=3, T=8, V=7, seed=2, prompt=1):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2 * B, T, V, generator=g, dtype=F64) * 2
    input_ids = torch.randint(1, V, (2 * B, T), generator=g)
    attention = torch.zeros(2 * B, T, dtype=torch.long)
    labels = torch.full((2 * B, T), -100)
    for i in range(2 * B):
        end = prompt + 1 + (i * 2) % (T - prompt)
        attention[i, :end] = 1
        labels[i, prompt:end] = input_ids[i, prompt:end]
        input_ids[i, end:] = 0
    return logits, input_ids, labels, attention


def sequence_batch(logits, labels):
    # Per-token log-probs computed here with log_softmax + gather (TRL uses selective_log_softmax / cross-entropy).
    B = logits.shape[0] // 2
    target = labels[:, 1:]
    mask = target != -100
    logps = torch.log_softmax(logits[:, :-1], -1).gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    logps = logps * mask
    return PreferenceBatch(
        policy_chosen_token_logps=logps[:B],
        policy_rejected_token_logps=logps[B:],
        chosen_mask=mask[:B],
        rejected_mask=mask[B:],
    )


@pytest.mark.parametrize(
    ("name", "loss_type", "hparams"),
    [
        ("cpo", "sigmoid", {}),
        ("cpo", "sigmoid", {"beta": 0.3, "label_smoothing": 0.1, "cpo_alpha": 0.5}),
        ("cpo_hinge", "hinge", {"beta": 0.2}),
        ("cpo_ipo", "ipo", {"beta": 0.4}),
        ("cpo_simpo", "simpo", {}),
        ("cpo_simpo", "simpo", {"beta": 2.0, "simpo_gamma": 1.0, "cpo_alpha": 0.0, "label_smoothing": 0.05}),
    ],
)
def test_cpo_matches_trl_cpo_trainer(name, loss_type, hparams):
    pytest.importorskip("trl")
    from trl_reference import trl_cpo_loss

    logits, input_ids, labels, attention = sequence_data()
    l_trl = logits.clone().requires_grad_(True)
    l_ours = logits.clone().requires_grad_(True)
    reference = trl_cpo_loss(l_trl, input_ids, labels, attention, loss_type=loss_type, **hparams)
    value = get(name, **hparams)(sequence_batch(l_ours, labels)).loss.mean()
    reference.backward()
    value.backward()
    assert value.item() == pytest.approx(reference.item(), rel=1e-10)
    torch.testing.assert_close(l_ours.grad, l_trl.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_orpo_matches_trl_orpo_trainer_in_float32(beta):
    # ORPOTrainer casts the log-probs to float32 for the odds ratio; its NLL counts prompt tokens, which with a
    # one-token prompt (never a label after the shift) are none.
    pytest.importorskip("trl")
    from trl_reference import trl_orpo_loss

    logits, input_ids, labels, attention = sequence_data(prompt=1)
    reference = trl_orpo_loss(logits, input_ids, labels, attention, beta=beta)
    value = get("orpo", beta=beta)(sequence_batch(logits, labels)).loss.mean()
    assert value.item() == pytest.approx(reference.item(), rel=1e-6)


def test_orpo_nll_differs_from_trl_by_the_prompt_tokens():
    pytest.importorskip("trl")
    from trl_reference import trl_orpo_loss

    logits, input_ids, labels, attention = sequence_data(prompt=3)
    reference = trl_orpo_loss(logits, input_ids, labels, attention).item()
    value = get("orpo")(sequence_batch(logits, labels)).loss.mean().item()
    assert abs(value - reference) > 1e-3


def test_orpo_finite_where_the_chosen_has_probability_one():
    a_w = torch.tensor([0.0, -1e-3, -2.0], dtype=F64, requires_grad=True)
    a_l = torch.tensor([-1.0, -1.0, -1.0], dtype=F64)
    out = get("orpo", beta=1.0)(
        policy_chosen_avg_logps=a_w, policy_rejected_avg_logps=a_l, chosen_lengths=torch.tensor([1, 1, 1])
    )
    out.loss.sum().backward()
    assert torch.isfinite(a_w.grad).all()
    # closed form of the odds term: log(1 + (p_l / p_w) (1 - p_w) / (1 - p_l)); its derivative at p_w = 1 is
    # -p_l / (1 - p_l); the NLL share -a_w * 3 / 3 adds -1.
    p_l = math.exp(-1.0)
    assert a_w.grad[0].item() == pytest.approx(-1.0 - p_l / (1 - p_l), rel=1e-12)
    odds = [math.log1p(p_l / math.exp(a) * (1 - math.exp(a)) / (1 - p_l)) for a in (0.0, -1e-3, -2.0)]
    nll = [-a for a in (0.0, -1e-3, -2.0)]
    assert out.loss.tolist() == pytest.approx([o + n for o, n in zip(odds, nll, strict=True)], rel=1e-12)


# ---------------------------------------------------------------- closed forms (no TRL)


def _pairs(rho_w, rho_l, dtype=F64, grad=False):
    pc = torch.as_tensor(rho_w, dtype=dtype).clone().requires_grad_(grad)
    pr = torch.as_tensor(rho_l, dtype=dtype).clone().requires_grad_(grad)
    zero = torch.zeros_like(pc.detach())
    return {
        "policy_chosen_logps": pc,
        "policy_rejected_logps": pr,
        "ref_chosen_logps": zero,
        "ref_rejected_logps": zero,
    }


def test_dpo_closed_forms():
    out = get("dpo", beta=0.1)(**_pairs([0.0, 10.0, 5.0], [0.0, 0.0, 5.0]))
    assert out.loss.tolist() == pytest.approx([math.log(2), 0.313262, math.log(2)], abs=1e-6)
    x = _pairs([3.0], [1.0], grad=True)
    get("dpo", beta=0.5)(**x).loss.sum().backward()
    slope = 0.5 / (1 + math.exp(0.5 * 2.0))  # beta * sigmoid(-beta Delta)
    assert x["policy_chosen_logps"].grad.item() == pytest.approx(-slope, rel=1e-14)
    assert x["policy_rejected_logps"].grad.item() == pytest.approx(slope, rel=1e-14)


def test_rdpo_is_unbiased_under_label_flips():
    eps, delta = 0.2, torch.linspace(-30, 30, 13, dtype=F64)
    zero = torch.zeros_like(delta)
    robust = get("robust", beta=0.1, label_smoothing=eps)
    clean = robust(
        policy_chosen_logps=delta, policy_rejected_logps=zero, ref_chosen_logps=zero, ref_rejected_logps=zero
    )
    flipped = robust(
        policy_chosen_logps=zero, policy_rejected_logps=delta, ref_chosen_logps=zero, ref_rejected_logps=zero
    )
    expected = (1 - eps) * clean.loss + eps * flipped.loss
    naive = -torch.log(torch.sigmoid(0.1 * delta))
    torch.testing.assert_close(expected, naive, rtol=1e-12, atol=1e-12)


def test_ipo_minimum_and_ipo_sum():
    beta = 0.25
    x = _pairs([2.0 + 1 / (2 * beta)], [2.0])
    assert get("ipo_sum", beta=beta)(**x).loss.item() == pytest.approx(0.0, abs=1e-14)
    lengths = torch.tensor([4]), torch.tensor([2])
    # TRL's ipo: rho_w / 4 - rho_l / 2 = 1 / (2 beta) = 2 at rho_w = 12, rho_l = 2
    y = _pairs([12.0], [2.0])
    out = get("ipo", beta=beta)(**y, chosen_lengths=lengths[0], rejected_lengths=lengths[1])
    assert out.loss.item() == pytest.approx(0.0, abs=1e-14)
    out = get("ipo", beta=beta)(**_pairs([0.0], [0.0]), chosen_lengths=lengths[0], rejected_lengths=lengths[1])
    assert out.loss.item() == pytest.approx(4.0, rel=1e-14)


def test_cdpo_and_dpo_with_soft_targets_are_the_soft_bt_cross_entropy():
    delta = torch.tensor([-3.0, 0.5, 4.0, 20.0], dtype=F64)
    p = torch.tensor([0.1, 0.5, 0.9, 0.99], dtype=F64)
    z = 0.2 * delta
    naive = -(p * torch.log(torch.sigmoid(z)) + (1 - p) * torch.log(1 - torch.sigmoid(z)))
    x = _pairs(delta, torch.zeros_like(delta))
    torch.testing.assert_close(
        get("cdpo", beta=0.2, label_smoothing=0.0)(**x, target=p).loss, naive, rtol=1e-12, atol=0
    )
    torch.testing.assert_close(get("dpo", beta=0.2)(**x, target=p).loss, naive, rtol=1e-12, atol=0)
    # label smoothing on a hard label = the soft target 1 - eps
    torch.testing.assert_close(
        get("cdpo", beta=0.2, label_smoothing=0.1)(**x).loss,
        get("dpo", beta=0.2)(**x, target=torch.full_like(p, 0.9)).loss,
        rtol=1e-14,
        atol=0,
    )


def test_mmpo_margin_matching_through_dpo():
    # MMPO: p = sigmoid(gamma (s_w - s_l)); the loss is minimised at beta Delta = gamma (s_w - s_l).
    gamma, s_w, s_l, beta = 2.2, torch.tensor([4.0, 3.0], dtype=F64), torch.tensor([3.5, 3.0], dtype=F64), 0.01
    p = torch.sigmoid(gamma * (s_w - s_l))
    delta = gamma * (s_w - s_l) / beta
    x = _pairs(delta, torch.zeros(2), grad=True)
    get("dpo", beta=beta)(**x, target=p).loss.sum().backward()
    assert x["policy_chosen_logps"].grad.abs().max().item() < 1e-15
    # and away from it the gradient is not zero
    y = _pairs(delta + 1.0, torch.zeros(2), grad=True)
    get("dpo", beta=beta)(**y, target=p).loss.sum().backward()
    assert y["policy_chosen_logps"].grad.abs().min().item() > 1e-6


def test_exo_and_discopop_reference_values():
    x = _pairs([0.0], [0.0])
    assert get("exo_pair", label_smoothing=1e-3)(**x).loss.item() == pytest.approx(2.761231, abs=1e-6)
    assert get("discopop")(**x).loss.item() == pytest.approx(0.846574, abs=1e-6)


def test_js_score_is_rho_minus_softplus():
    rw, rl = torch.tensor([0.3, -2.0], dtype=F64), torch.tensor([-1.0, 4.0], dtype=F64)
    got = dpo.f_divergence_score_difference(rw, rl, "js_divergence")
    torch.testing.assert_close(got, (rw - F.softplus(rw)) - (rl - F.softplus(rl)), rtol=1e-14, atol=1e-14)
    # alpha coefficient 1 is reverse KL; forward KL is coefficient 0
    torch.testing.assert_close(dpo.f_divergence_score_difference(rw, rl, "alpha_divergence", 1.0), rw - rl)
    torch.testing.assert_close(
        dpo.f_divergence_score_difference(rw, rl, "alpha_divergence", 0.0),
        dpo.f_divergence_score_difference(rw, rl, "forward_kl"),
    )


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("rho_l", [-1e4, -100.0, -50.0])
@pytest.mark.parametrize(("divergence", "coef"), [("forward_kl", 0.5), ("alpha_divergence", 0.5)])
def test_fdpo_finite_at_very_negative_rejected_log_ratio(dtype, rho_l, divergence, coef):
    # Regression: exp(-rho_l) overflowed and autograd gave 0 * inf = nan. Closed form: with rho_w = 0.5,
    # z = beta * (exp(-a rho_l) - exp(-a rho_w)) / a (a = 1 - coef, a = 1 for forward KL) is beyond 1e9, so the
    # loss softplus(-z) and its gradients are 0 to every float precision.
    x = _pairs([0.5], [rho_l], dtype=dtype, grad=True)
    out = get("fdpo", f_divergence_type=divergence, f_alpha_divergence_coef=coef)(**x)
    out.loss.sum().backward()
    assert out.loss.item() == 0.0
    assert x["policy_chosen_logps"].grad.item() == 0.0
    assert x["policy_rejected_logps"].grad.item() == 0.0


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_fdpo_near_the_cap_matches_closed_form(dtype):
    # rho_w = rho_l + tiny is not saturated only for equal log-ratios: log 2 and gradients -+ beta/2 * e^(-rho)
    rho = -20.0
    x = _pairs([rho], [rho], dtype=dtype, grad=True)
    out = get("fdpo", f_divergence_type="forward_kl", beta=0.1)(**x)
    out.loss.sum().backward()
    assert out.loss.item() == pytest.approx(math.log(2), rel=1e-6)
    assert x["policy_chosen_logps"].grad.item() == pytest.approx(-0.05 * math.exp(-rho), rel=1e-5)
    # and a moderate point against the closed form
    y = _pairs([0.4], [-2.0], dtype=dtype, grad=True)
    out = get("fdpo", f_divergence_type="forward_kl", beta=0.3)(**y)
    out.loss.sum().backward()
    z = 0.3 * (math.exp(2.0) - math.exp(-0.4))
    assert out.loss.item() == pytest.approx(math.log1p(math.exp(-z)), rel=1e-6)
    assert y["policy_rejected_logps"].grad.item() == pytest.approx(0.3 * math.exp(2.0) / (1 + math.exp(z)), rel=1e-5)


@pytest.mark.parametrize(
    ("name", "hparams", "extra"),
    [
        ("sigmoid", {"f_divergence_type": "forward_kl"}, {}),
        ("fdpo", {"f_divergence_type": "alpha_divergence", "f_alpha_divergence_coef": 0.3}, {}),
        ("cdpo", {"label_smoothing": 0.1}, {"target": True}),
        ("hinge", {"beta": 0.05}, {}),
        ("ipo", {"f_divergence_type": "js_divergence"}, {"lengths": True}),
        ("ipo_sum", {}, {}),
        ("exo_pair", {"label_smoothing": 0.01}, {}),
        ("robust", {"label_smoothing": 0.2}, {}),
        ("discopop", {"beta": 1.0}, {}),
        ("sigmoid_norm", {}, {"lengths": True}),
        ("nca_pair", {}, {}),
        ("bco_pair", {}, {}),
        ("sppo_hard", {}, {}),
        ("apo_zero", {}, {}),
        ("apo_down", {}, {}),
        ("aot", {"label_smoothing": 0.1}, {}),
        ("aot_unpaired", {}, {}),
    ],
)
def test_gradcheck(name, hparams, extra):
    g = torch.Generator().manual_seed(5)
    pc, pr = (torch.randn(4, generator=g, dtype=F64) * 3).requires_grad_(), torch.randn(4, generator=g, dtype=F64) * 3
    pr.requires_grad_()
    rc, rr = torch.randn(4, generator=g, dtype=F64), torch.randn(4, generator=g, dtype=F64)
    loss = get(name, **hparams)
    kwargs = {}
    if extra.get("lengths"):
        kwargs = {"chosen_lengths": torch.tensor([1, 2, 3, 4]), "rejected_lengths": torch.tensor([2, 2, 5, 1])}
    if extra.get("target"):
        kwargs = {"target": torch.tensor([0.2, 0.5, 0.7, 1.0], dtype=F64)}

    def f(a, b):
        return loss(
            policy_chosen_logps=a, policy_rejected_logps=b, ref_chosen_logps=rc, ref_rejected_logps=rr, **kwargs
        ).loss

    assert torch.autograd.gradcheck(f, (pc, pr))


def test_gradcheck_unpaired_cpo_orpo():
    g = torch.Generator().manual_seed(6)
    a = (-torch.rand(3, generator=g, dtype=F64) * 2 - 0.05).requires_grad_()
    b = (-torch.rand(3, generator=g, dtype=F64) * 2 - 0.05).requires_grad_()
    lengths = torch.tensor([2, 3, 1])
    for name in ("cpo_simpo", "cpo_ipo", "orpo"):
        loss = get(name)
        assert torch.autograd.gradcheck(
            lambda x, y, loss=loss: (
                loss(policy_chosen_avg_logps=x, policy_rejected_avg_logps=y, chosen_lengths=lengths).loss
            ),
            (a, b),
        )
    desirable = torch.tensor([True, False, True])
    kl = {
        "policy_kl_logps": torch.tensor([-1.0, -2.0], dtype=F64),
        "ref_kl_logps": torch.tensor([-1.5, -2.1], dtype=F64),
    }
    for name, extra in (("kto", kl), ("apo_zero_unpaired", {})):
        loss = get(name, beta=0.5)
        assert torch.autograd.gradcheck(
            lambda x, y, loss=loss, extra=extra: loss(policy_logps=x, ref_logps=y, desirable=desirable, **extra).loss,
            (a, b),
        )


# ---------------------------------------------------------------- errors and conventions


@pytest.mark.parametrize("name", ["nca_pair", "bco_pair", "sppo_hard", "aot", "aot_unpaired", "apo_zero", "apo_down"])
def test_f_divergence_refused_where_trl_refuses_it(name):
    with pytest.raises(ValueError, match="reverse_kl"):
        get(name, f_divergence_type="js_divergence")(**_pairs([1.0, 2.0], [0.0, 1.0]))
    # in a combination too: the divergence reaches every component that takes it
    with pytest.raises(ValueError, match=name):
        get(["sigmoid", name], f_divergence_type="forward_kl")(**_pairs([1.0, 2.0], [0.0, 1.0]))


def test_errors_name_what_is_missing():
    with pytest.raises(ValueError, match="label_smoothing"):
        get("sigmoid", label_smoothing=0.1)
    with pytest.raises(ValueError, match="label_smoothing"):
        get("exo_pair")
    with pytest.raises(ValueError, match="1e-3"):
        get("exo_pair", label_smoothing=0.0)(**_pairs([1.0], [0.0]))
    with pytest.raises(ValueError, match="ref_chosen_token_logps"):
        get("sigmoid", ld_alpha=0.5)(
            policy_chosen_token_logps=torch.zeros(1, 3),
            policy_rejected_token_logps=torch.zeros(1, 3),
            chosen_mask=torch.ones(1, 3, dtype=torch.bool),
            rejected_mask=torch.ones(1, 3, dtype=torch.bool),
            ref_chosen_logps=torch.zeros(1),
            ref_rejected_logps=torch.zeros(1),
        )
    with pytest.raises(ValueError, match="chosen_log_sum_sq_probs"):
        get("sigmoid", use_weighting=True)(**_pairs([1.0], [0.0]))
    with pytest.raises(ValueError, match="WPO"):
        get("aot", use_weighting=True)(**_pairs([1.0], [0.0]))
    with pytest.raises(ValueError, match="f_divergence_type"):
        get("fdpo")
    with pytest.raises(ValueError, match="target"):
        get("dpo")(**_pairs([1.0], [0.0]), target=torch.tensor([1.5]))
    with pytest.raises(ValueError, match="chosen_lengths"):
        get("cpo")(policy_chosen_logps=torch.zeros(2), policy_rejected_logps=torch.zeros(2))


def test_rewards_are_beta_log_ratios_and_sft_has_none():
    data = pair_data()
    batch = to_batch(data, data["policy"])
    rho_w = batch.get("policy_chosen_logps") - batch.get("ref_chosen_logps")
    for name in ("sigmoid", "ipo", "nca_pair", "aot"):
        out = get(name, beta=0.3)(batch)
        torch.testing.assert_close(out.chosen_rewards, 0.3 * rho_w)
    assert get("sft")(batch).chosen_rewards is None
    # combination: logging fields from the first component that has them
    out = get(["sft", "sigmoid"], beta=0.3)(batch)
    torch.testing.assert_close(out.chosen_rewards, 0.3 * rho_w)


def test_sft_shares_depend_on_own_tokens_only():
    data = pair_data()
    policy = data["policy"].clone().requires_grad_(True)
    out = get("sft")(to_batch(data, policy))
    out.loss[0].backward()
    assert policy.grad[1:].abs().sum().item() == 0.0
    n = int(data["completion_mask"][:4, 1:].sum())
    assert out.loss.mean().item() == pytest.approx(-(data["policy"][:4]).sum().item() / n, rel=1e-14)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("margin", [1e4, -1e4])
def test_every_dpo_module_loss_finite_at_extreme_margins(dtype, margin):
    pairs = _pairs([margin / 2, margin / 2], [-margin / 2, -margin / 2], dtype=dtype, grad=True)
    lengths = {"chosen_lengths": torch.tensor([3, 5]), "rejected_lengths": torch.tensor([4, 2])}
    cases = {n: {} for n in ("sigmoid", "hinge", "nca_pair", "bco_pair", "sppo_hard", "apo_zero", "apo_down")}
    cases.update(
        {
            "robust": {"label_smoothing": 0.1},
            "cdpo": {"label_smoothing": 0.1},
            "exo_pair": {"label_smoothing": 1e-3},
            "discopop": {},
            "aot": {},
            "aot_unpaired": {},
            "ipo_sum": {},
        }
    )
    for name, hp in cases.items():
        out = get(name, **hp)(**pairs)
        grads = torch.autograd.grad(out.loss.sum(), [pairs["policy_chosen_logps"], pairs["policy_rejected_logps"]])
        assert torch.isfinite(out.loss).all(), name
        assert all(torch.isfinite(g).all() for g in grads), name
    for name in ("ipo", "sigmoid_norm"):
        out = get(name)(**pairs, **lengths)
        grads = torch.autograd.grad(out.loss.sum(), [pairs["policy_chosen_logps"]])
        assert torch.isfinite(out.loss).all() and torch.isfinite(grads[0]).all(), name


def test_discopop_finite_where_the_mixing_weight_underflows():
    # Regression: TRL's form sigmoid(z / tau) * exp(-z) is 0 * inf = nan at z = -1000; the loss there is
    # -logsig(-1000) = 1000 (mixing weight 0) with slope -1 in z.
    x = _pairs([-5e3, 5e3], [5e3, -5e3], dtype=torch.float32, grad=True)
    out = get("discopop", beta=0.1)(**x)
    out.loss.sum().backward()
    assert out.loss.tolist() == pytest.approx([1000.0, 0.0])
    assert x["policy_chosen_logps"].grad.tolist() == pytest.approx([-0.1, 0.0])


# ---------------------------------------------------------------- issue 10 review fixes (regressions)


# log1mexp floors its argument at float32's -sqrt(tiny) in every dtype (so float32 and float64 agree)
FLOOR = math.sqrt(torch.finfo(torch.float32).tiny)


def _log_odds(a):
    # log(p / (1 - p)), p = e^a, in Python doubles
    return a - math.log(-math.expm1(a))


@pytest.mark.parametrize("dtype", [F64, torch.float32, torch.bfloat16])
def test_orpo_finite_at_average_log_prob_zero(dtype):
    # Regression: both averages 0 gave nan (0/0), a rejected average 0 gave inf with a nan gradient. float32 reaches
    # A = 0 once every token's logit gap exceeds ~17. log(1 - p) is floored at A = -sqrt(tiny of float32) in every
    # dtype, gradient through, so the expected values below are the same for each dtype.
    beta, s = 0.1, FLOOR
    a_w = torch.tensor([0.0, 0.0, -1.0], dtype=dtype, requires_grad=True)
    a_l = torch.tensor([0.0, -1.0, 0.0], dtype=dtype, requires_grad=True)
    out = get("orpo", beta=beta)(
        policy_chosen_avg_logps=a_w, policy_rejected_avg_logps=a_l, chosen_lengths=torch.tensor([1, 1, 1])
    )
    out.loss.sum().backward()
    assert torch.isfinite(out.loss).all() and torch.isfinite(a_w.grad).all() and torch.isfinite(a_l.grad).all()
    p = math.exp(-1.0)
    # closed forms (the NLL share of example i is -a_w[i] * 3 / 3):
    # equal odds: beta log 2; chosen p = 1: the limit 0, slope -p_l / (1 - p_l); rejected p = 1: the value at -s.
    at_floor = math.log1p(math.exp(-(_log_odds(-1.0) - _log_odds(-s))))
    expected = [beta * math.log(2.0), 0.0, 1.0 + beta * at_floor]
    assert out.loss.tolist() == pytest.approx(expected, rel=1e-6, abs=1e-12)
    g_rel = 8e-3 if dtype == torch.bfloat16 else 1e-6  # the gradient returns in the input dtype
    assert a_w.grad[1].item() == pytest.approx(-1.0 - beta * p / (1 - p), rel=g_rel)
    # d/dA_l at the floor: beta * sigmoid(L_l - L_w) / (1 - e^-s), about beta / s
    slope = beta / (1 + math.exp(_log_odds(-1.0) - _log_odds(-s))) / -math.expm1(-s)
    assert a_l.grad[2].item() == pytest.approx(slope, rel=g_rel)
    assert out.extras["log_odds"][0].item() == 0.0


def test_orpo_refuses_positive_average_log_probs():
    with pytest.raises(ValueError, match="policy_rejected_avg_logps must be <= 0"):
        get("orpo")(
            policy_chosen_avg_logps=torch.tensor([-1.0]),
            policy_rejected_avg_logps=torch.tensor([0.5]),
            chosen_lengths=torch.tensor([2]),
        )


@pytest.mark.parametrize("dtype", [F64, torch.float32])
def test_log1mexp_exact_away_from_zero_and_finite_at_zero(dtype):
    xs = [-1e-12, -1e-3, -0.5, -math.log(2.0), -0.7, -1.0, -10.0, -40.0]
    x = torch.tensor(xs, dtype=dtype)
    # truth in 50-digit decimal arithmetic (double-precision expm1 loses log(1 - e^-40) entirely)
    with decimal.localcontext() as ctx:
        ctx.prec = 50
        expected = torch.tensor(
            [float((1 - decimal.Decimal(float(v)).exp()).ln()) for v in x.double().tolist()], dtype=F64
        )
    rel = 1e-14 if dtype == F64 else 1e-6
    torch.testing.assert_close(dpo.log1mexp(x).double(), expected, rtol=rel, atol=0)
    s = FLOOR
    zero = torch.zeros(2, dtype=dtype, requires_grad=True)
    value = dpo.log1mexp(zero)
    value.sum().backward()
    assert value.tolist() == pytest.approx([math.log(s)] * 2, rel=1e-6)
    # derivative -e^x / (1 - e^x) at the floor: -1 / s up to rounding
    assert zero.grad.tolist() == pytest.approx([-1.0 / s] * 2, rel=1e-6)


def test_kto_requires_the_kl_pairs():
    # Regression: without them kto silently used a reference point of 0; TRL's kto always estimates the KL.
    x = {"policy_logps": torch.tensor([-1.0]), "ref_logps": torch.tensor([-1.5]), "desirable": torch.tensor([True])}
    assert {"policy_kl_logps", "ref_kl_logps"} <= set(get("kto").inputs)
    with pytest.raises(ValueError, match="policy_kl_logps .*ref_kl_logps"):
        get("kto")(**x)
    with pytest.raises(ValueError, match="ref_kl_logps"):
        get("kto")(**x, policy_kl_logps=torch.tensor([-2.0]))
    # apo_zero_unpaired has no KL reference point (TRL does not compute it there)
    unpaired = get("apo_zero_unpaired")
    assert not {"policy_kl_logps", "ref_kl_logps"} & set(unpaired.inputs + unpaired.optional_inputs)
    assert unpaired(**x).loss.shape == (1,)
    # equal KL pairs fix z0 = 0 on purpose: 1 - sigmoid(0.1 * 0.5)
    zero = torch.zeros(1)
    out = get("kto")(**x, policy_kl_logps=zero, ref_kl_logps=zero)
    assert out.loss.item() == pytest.approx(1 - 1 / (1 + math.exp(-0.05)), rel=1e-6)


def _with_padding(data, value):
    # the same per-token data with `value` (e.g. -inf) written off the completion mask
    off = ~data["completion_mask"][:, 1:].bool()
    return {**data, **{k: data[k].masked_fill(off, value) for k in ("policy", "ref", "log_sum_sq")}}


@pytest.mark.parametrize(
    ("name", "hparams"),
    [
        ("sigmoid", {"ld_alpha": 0.4}),
        ("sigmoid", {"use_weighting": True}),
        ("ipo", {"ld_alpha": 0.5, "use_weighting": True}),
        ("sft", {"use_weighting": True}),
    ],
)
def test_minus_inf_off_the_mask_is_ignored(name, hparams):
    # Regression: masking by multiplication made -inf * 0 = nan in the LD-DPO sums and the WPO weights.
    clean = pair_data()
    results = []
    for data in (clean, _with_padding(clean, -math.inf)):
        policy = data["policy"].clone().requires_grad_(True)
        batch = to_batch(data, policy)
        # sums from the clean data: the batch's own derivation of sums from masks is not under test here
        reference = to_batch(clean, clean["policy"])
        sums = {k: reference.get(k) for k in ("ref_chosen_logps", "ref_rejected_logps")}
        for side in ("chosen", "rejected"):  # policy sums that carry the gradient of the response tokens
            on = batch.get(f"{side}_mask")
            tokens = batch.get(f"policy_{side}_token_logps")
            sums[f"policy_{side}_logps"] = torch.where(on, tokens, torch.zeros_like(tokens)).sum(-1)
        out = get(name, **hparams)(batch.replace(**sums))
        grad = torch.autograd.grad(out.loss.sum(), policy, allow_unused=True)[0]
        results.append((out.loss.detach(), torch.zeros_like(policy) if grad is None else grad))
    (v0, g0), (v1, g1) = results
    assert torch.isfinite(v1).all() and torch.isfinite(g1).all()
    torch.testing.assert_close(v1, v0, rtol=0, atol=0)
    torch.testing.assert_close(g1, g0, rtol=0, atol=0)


@pytest.mark.parametrize("divergence", ["forward_kl", "js_divergence", "alpha_divergence"])
def test_sft_accepts_f_divergence_type_without_effect(dpo_trainer, divergence):
    # Regression: get("sft", f_divergence_type=...) raised; TRL accepts the setting with sft, where it does nothing.
    data = pair_data()
    batch = to_batch(data, data["policy"])
    plain = get("sft")(batch).loss
    torch.testing.assert_close(get("sft", f_divergence_type=divergence, f_alpha_divergence_coef=0.3)(batch).loss, plain)
    if divergence != "alpha_divergence":  # TRL's alpha divergence refuses float64
        assert _compare(dpo_trainer, "sft", {"f_divergence_type": divergence}) == pytest.approx(plain.mean().item())
    with pytest.raises(ValueError, match="f_divergence_type must be one of"):
        get("sft", f_divergence_type="kl")(batch)


# TRL 1.16 DPOTrainer's loss types that accept a non-default f_divergence_type (its own check in __init__).
TRL_F_DIVERGENCE_TYPES = {"sigmoid", "sigmoid_norm", "hinge", "ipo", "exo_pair", "robust", "discopop", "sft"}


def test_f_divergence_hyperparameters_consistent_with_trl():
    from bradley.nn import available, spec

    dpo_trainer_names = "sigmoid hinge ipo exo_pair nca_pair robust bco_pair sppo_hard aot aot_unpaired apo_zero"
    trl_names = {spec(n).trl for n in available()} & set(
        f"{dpo_trainer_names} apo_down discopop sft sigmoid_norm".split()
    )
    assert len(trl_names) == 15
    for trl_name in trl_names:
        hp = spec(trl_name).hyperparameters
        if trl_name in TRL_F_DIVERGENCE_TYPES:
            assert hp.get("f_divergence_type") == "reverse_kl", trl_name
            assert hp.get("f_alpha_divergence_coef") == 0.5, trl_name
            extra = {"label_smoothing": 1e-3} if trl_name == "exo_pair" else {}
            loss = get(trl_name, f_divergence_type="js_divergence", f_alpha_divergence_coef=0.3, **extra)
            assert loss.hyperparameters["f_divergence_type"] == "js_divergence"
        else:
            assert hp.get("f_divergence_type") == "reverse_kl", trl_name  # accepted so the refusal can explain
