"""bradley.nn: every loss against the formula sheet, its stated properties, and gradcheck."""

import math

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from bradley.nn import losses  # noqa: E402
from bradley.nn.logprobs import sequence_kl, sequence_logprobs  # noqa: E402
from bradley.nn.transforms import conjunction_reward, lambda_harmonic_reward, logsigmoid_reward  # noqa: E402

LOG2 = math.log(2.0)


def t(*values, dtype=torch.float64):
    return torch.tensor(values, dtype=dtype)


def dpo_args(delta_w, delta_l=0.0):
    # policy/reference log-probs with rho_w = delta_w, rho_l = delta_l
    return t(-10.0 + delta_w), t(-12.0 + delta_l), t(-10.0), t(-12.0)


def _random(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64)


# ---------------------------------------------------------------- registry, reductions


def test_registry_names_and_errors():
    assert losses.get("dpo") is losses.dpo_loss
    assert losses.get("robust") is losses.rdpo_loss
    assert {"bt", "dpo", "ipo", "simpo", "tdpo", "todo", "pro", "sppo", "inpo", "dno", "egpo"} <= set(losses.available())
    with pytest.raises(KeyError, match="unknown loss 'nope'; available: asft"):
        losses.get("nope")


def test_reductions_behave_the_same():
    args = (_random((4,), 1), _random((4,), 2), _random((4,), 3), _random((4,), 4))
    none = losses.dpo_loss(*args).loss
    assert none.shape == (4,)
    assert torch.allclose(losses.dpo_loss(*args, reduction="mean").loss, none.mean())
    assert torch.allclose(losses.dpo_loss(*args, reduction="sum").loss, none.sum())
    with pytest.raises(ValueError, match="reduction"):
        losses.dpo_loss(*args, reduction="max")
    out = losses.dpo_loss(*args)
    assert not out.chosen_rewards.requires_grad
    assert torch.equal(out.accuracy, (out.margins > 0).double())


# ---------------------------------------------------------------- gradcheck, all losses

B, K, J = 3, 4, 3


def _cases():
    x = lambda s: _random((B,), s).requires_grad_()  # noqa: E731
    lists = lambda s: _random((B, K), s).requires_grad_()  # noqa: E731
    tie = torch.tensor([True, False, True])
    rewards_sorted = torch.sort(_random((B, K), 99), dim=1, descending=True).values
    win = torch.rand(B, dtype=torch.float64)
    yield "bt", lambda a, b: losses.bt_loss(a, b, margin=0.3, label_smoothing=0.1, center_coefficient=0.01), (x(1), x(2))
    yield "soft_bt", lambda a, b: losses.soft_bt_loss(a, b, target=0.7), (x(1), x(2))
    yield "scaled_bt", lambda a, b: losses.scaled_bt_loss(a, b, strength=t(1.0, 2.0, 3.0)), (x(1), x(2))
    yield "regression", lambda a: losses.regression_loss(a, t(0.0, 1.0, 2.0)), (x(1),)
    yield "tobt", lambda a, b: losses.tobt_loss(a, b, tie, alpha=0.5), (x(1), x(2))
    yield "pl", lambda s: losses.plackett_luce_loss(s, mask=torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]])), (lists(5),)
    yield "dpo", lambda a, b, c, d: losses.dpo_loss(a, b, c, d, beta=0.5, label_smoothing=0.1), (x(1), x(2), x(3), x(4))
    yield "ipo", lambda a, b, c, d: losses.ipo_loss(a, b, c, d, tau=0.5), (x(1), x(2), x(3), x(4))
    yield "rdpo", lambda a, b, c, d: losses.rdpo_loss(a, b, c, d, beta=0.5, epsilon=0.2), (x(1), x(2), x(3), x(4))
    yield "simpo", lambda a, b: losses.simpo_loss(a, b, label_smoothing=0.1), (x(1), x(2))
    for div in ("reverse_kl", "forward_kl", "js", "alpha"):
        yield f"fdpo-{div}", lambda a, b, c, d, div=div: losses.fdpo_loss(a, b, c, d, divergence=div), (x(1), x(2), x(3), x(4))
    for version in (1, 2):
        yield (
            f"tdpo{version}",
            lambda a, b, c, d, kl, v=version: losses.tdpo_loss(a, b, c, d, t(0.2, 0.5, 0.1), kl.abs(), version=v),
            (x(1), x(2), x(3), x(4), x(6)),
        )
    yield "asft", lambda a, b: losses.asft_loss(-a.abs() - 0.1, -b.abs() - 0.1, lam=0.5), (x(1), x(2))
    yield (
        "dmpo",
        lambda a, b, c, d: losses.dmpo_loss(a, b, c, d, torch.tensor([3, 2, 1]), torch.tensor([1, 3, 2])),
        tuple(_random((B, J), s).requires_grad_() for s in (1, 2, 3, 4)),
    )
    yield "todo", lambda a, b, c, d: losses.todo_loss(a, b, c, d, tie, beta=0.5), (x(1), x(2), x(3), x(4))
    yield "pro", lambda s, best: losses.pro_loss(s, rewards_sorted, best, sft_weight=0.05), (lists(6), x(7))
    yield "sppo", lambda a, b, c, d: losses.sppo_loss(a, b, c, d, win, 1 - win, eta=2.0), (x(1), x(2), x(3), x(4))
    yield "inpo", lambda a, b: losses.inpo_loss(a, b, t(0.1, 0.2, 0.3), t(0.0, 0.1, 0.2), t(-0.1, 0.0, 0.1), t(0.3, 0.2, 0.1), eta=0.5), (x(1), x(2))
    yield "dno", lambda a, b: losses.dno_loss(a, b, t(0.0, 0.1, 0.2), t(0.3, 0.2, 0.1), target=win), (x(1), x(2))
    yield "egpo", lambda a, b: losses.egpo_loss(a, t(0.1, 0.2, 0.3), b, t(0.0, 0.0, 0.0), win, 1 - win), (x(1), x(2))


@pytest.mark.parametrize("name,fn,inputs", list(_cases()), ids=[c[0] for c in _cases()])
def test_gradcheck(name, fn, inputs):
    assert torch.autograd.gradcheck(lambda *a: fn(*a).loss, inputs, eps=1e-6, atol=1e-5)


# ---------------------------------------------------------------- reward-model losses


def test_bt_properties():
    assert losses.bt_loss(t(1.5), t(1.5)).loss.item() == pytest.approx(LOG2)
    d = t(0.7)
    gap = losses.bt_loss(d, t(0.0)).loss - losses.bt_loss(-d, t(0.0)).loss
    assert gap.item() == pytest.approx(-0.7)
    assert torch.allclose(losses.bt_loss(t(3.0), t(1.0)).loss, losses.bt_loss(t(13.0), t(11.0)).loss)
    # margin: Delta r = m gives log 2, and shifts the loss
    assert losses.bt_loss(t(2.0), t(1.0), margin=1.0).loss.item() == pytest.approx(LOG2)
    assert torch.allclose(losses.bt_loss(t(2.0), t(0.0), margin=0.5).loss, losses.bt_loss(t(1.5), t(0.0)).loss)


def test_label_smoothing_minimiser_is_log9():
    z = torch.tensor([math.log(9.0)], dtype=torch.float64, requires_grad=True)
    losses.bt_loss(z, torch.zeros(1, dtype=torch.float64), label_smoothing=0.1).loss.sum().backward()
    assert abs(z.grad.item()) < 1e-12


def test_scaled_bt_and_soft_targets():
    base = losses.bt_loss(t(0.3, -1.0), t(0.0, 0.0)).loss
    assert torch.allclose(losses.scaled_bt_loss(t(0.3, -1.0), t(0.0, 0.0), t(2.0, 3.0)).loss, base * t(2.0, 3.0))
    assert losses.scaled_bt_loss(t(0.0), t(0.0), 3.0).loss.item() == pytest.approx(3 * LOG2)
    with pytest.raises(ValueError, match="strength 0"):
        losses.scaled_bt_loss(t(0.0), t(0.0), 0.0)
    # MMPO margin matching: the optimum reward gap is gamma * (s_w - s_l)
    target = losses.mmpo_target(t(4.0), t(3.0), gamma=2.2)
    z = torch.tensor([2.2], dtype=torch.float64, requires_grad=True)
    losses.soft_bt_loss(z, torch.zeros(1, dtype=torch.float64), target).loss.sum().backward()
    assert abs(z.grad.item()) < 1e-12
    assert losses.mmpo_target(t(1.0), t(1.0), 2.2).item() == 0.5 and losses.mmpo_target(t(1.0), t(0.0), None) == 1.0


def test_tobt_probabilities_and_values():
    d = _random((100,), 7) * 5
    for alpha in (0.1, 0.5, 2.0):
        p_w, p_l, p_t = losses.tobt_probabilities(d, alpha)
        assert torch.allclose(p_w + p_l + p_t, torch.ones_like(d))
    tie = losses.tobt_loss(t(0.0), t(0.0), torch.tensor([True]), alpha=0.5).loss.item()
    decisive = losses.tobt_loss(t(0.0), t(0.0), torch.tensor([False]), alpha=0.5).loss.item()
    assert tie == pytest.approx(1.406829, abs=1e-6)
    assert decisive == pytest.approx(0.974077, abs=1e-6)
    a = losses.tobt_loss(t(0.8), t(0.1), torch.tensor([True])).loss
    b = losses.tobt_loss(t(0.1), t(0.8), torch.tensor([True])).loss
    assert torch.allclose(a, b)


def test_plackett_luce_against_naive_loop_and_bt():
    u = _random((5, 4), 3)
    naive = torch.zeros(5, dtype=torch.float64)
    for k in range(4):
        naive -= u[:, k] - torch.logsumexp(u[:, k:], dim=1)
    assert torch.allclose(losses.plackett_luce_loss(u).loss, naive)
    assert torch.allclose(losses.plackett_luce_loss(u + 3.0).loss, naive)
    two = losses.plackett_luce_loss(u[:, :2]).loss
    assert torch.allclose(two, losses.bt_loss(u[:, 0], u[:, 1]).loss)
    mask = torch.tensor([[1, 1, 0, 0]] * 5, dtype=torch.bool)
    assert torch.allclose(losses.plackett_luce_loss(u, mask).loss, two)
    reversed_order = losses.plackett_luce_loss(torch.flip(u, [1])).loss
    assert not torch.allclose(reversed_order, naive)


# ---------------------------------------------------------------- direct preference losses


def test_dpo_values_and_gradients():
    assert losses.dpo_loss(*dpo_args(0.0)).loss.item() == pytest.approx(LOG2)
    assert losses.dpo_loss(*dpo_args(10.0), beta=0.1).loss.item() == pytest.approx(0.313262, abs=1e-6)
    pw = torch.tensor([-9.0], dtype=torch.float64, requires_grad=True)
    pl = torch.tensor([-12.5], dtype=torch.float64, requires_grad=True)
    out = losses.dpo_loss(pw, pl, t(-10.0), t(-12.0), beta=0.3)
    out.loss.sum().backward()
    delta = 1.0 - (-0.5)
    expected = -0.3 * torch.sigmoid(torch.tensor(-0.3 * delta)).item()
    assert pw.grad.item() == pytest.approx(expected) and pl.grad.item() == pytest.approx(-expected)
    # pi_theta = pi_ref: log 2 for every pair
    same = _random((6,), 2)
    assert torch.allclose(losses.dpo_loss(same, same - 1, same, same - 1).loss, torch.full((6,), LOG2, dtype=torch.float64))


def test_cdpo_minimiser():
    w = torch.tensor([-10.0 + math.log(9.0)], dtype=torch.float64, requires_grad=True)
    losses.dpo_loss(w, t(-12.0), t(-10.0), t(-12.0), beta=1.0, label_smoothing=0.1).loss.sum().backward()
    assert abs(w.grad.item()) < 1e-12


def test_ipo_fixed_point_and_length_normalisation():
    tau = 0.25
    assert losses.ipo_loss(*dpo_args(1 / (2 * tau)), tau=tau).loss.item() == pytest.approx(0.0, abs=1e-12)
    over, under = losses.ipo_loss(*dpo_args(3.0), tau=tau).loss, losses.ipo_loss(*dpo_args(1.0), tau=tau).loss
    assert torch.allclose(over, under)  # symmetric about the target 2
    normed = losses.ipo_loss(*dpo_args(4.0, 1.0), tau=tau, chosen_lengths=t(2.0), rejected_lengths=t(1.0)).loss
    assert normed.item() == pytest.approx((4.0 / 2 - 1.0 / 1 - 2.0) ** 2)


def test_rdpo_reduces_to_dpo_and_is_unbiased():
    args = dpo_args(1.7)
    assert torch.allclose(losses.rdpo_loss(*args, epsilon=0.0).loss, losses.dpo_loss(*args).loss)
    assert losses.rdpo_loss(*dpo_args(0.0), epsilon=0.3).loss.item() == pytest.approx(LOG2)
    eps, beta = 0.2, 0.5
    flipped = (args[1], args[0], args[3], args[2])
    expected = (1 - eps) * losses.rdpo_loss(*args, beta=beta, epsilon=eps).loss + eps * losses.rdpo_loss(*flipped, beta=beta, epsilon=eps).loss
    assert torch.allclose(expected, losses.dpo_loss(*args, beta=beta).loss)


def test_simpo_values():
    out = losses.simpo_loss(t(-1.2), t(-1.2), beta=2.0, gamma_beta_ratio=0.5)
    assert out.loss.item() == pytest.approx(1.313262, abs=1e-6)
    assert losses.simpo_loss(t(-1.0), t(-1.0), beta=2.0, gamma_beta_ratio=0.0).loss.item() == pytest.approx(LOG2)


def test_fdpo_divergences():
    args = (_random((5,), 1), _random((5,), 2), _random((5,), 3), _random((5,), 4))
    assert torch.allclose(losses.fdpo_loss(*args, beta=0.3).loss, losses.dpo_loss(*args, beta=0.3).loss)
    near_zero = losses.fdpo_loss(*args, divergence="alpha", alpha=1e-7).loss
    assert torch.allclose(near_zero, losses.dpo_loss(*args).loss, atol=1e-6)
    rho = _random((5,), 9)
    js = losses._fdpo_score(rho, "js", 0.5)
    assert torch.allclose(js, rho - F.softplus(rho))
    for div in ("forward_kl", "js", "alpha"):  # increasing scores: same gradient sign as DPO
        w = torch.tensor([-1.0], dtype=torch.float64, requires_grad=True)
        losses.fdpo_loss(w, t(-2.0), t(-1.5), t(-1.5), divergence=div).loss.sum().backward()
        assert w.grad.item() < 0


def test_tdpo_and_sequence_kl():
    args = dpo_args(0.8)
    zero = t(0.0)
    assert torch.allclose(losses.tdpo_loss(*args, zero, zero, version=1).loss, losses.dpo_loss(*args).loss)
    kl_w = torch.tensor([0.4], dtype=torch.float64, requires_grad=True)
    kl_l = torch.tensor([0.9], dtype=torch.float64, requires_grad=True)
    losses.tdpo_loss(*args, kl_w, kl_l, version=2).loss.sum().backward()
    assert kl_w.grad is None or kl_w.grad.item() == 0.0
    assert kl_l.grad.item() != 0.0
    ref, pol = _random((2, 6, 9), 1), _random((2, 6, 9), 2)
    labels = torch.randint(0, 9, (2, 6))
    labels[:, :2] = -100
    kl = sequence_kl(ref, pol, labels)
    p_ref = ref[:, :-1].softmax(-1)
    manual = (p_ref * (p_ref.log() - pol[:, :-1].log_softmax(-1))).sum(-1)
    manual = (manual * (labels[:, 1:] != -100)).sum(-1)
    assert torch.allclose(kl, manual) and torch.all(kl >= 0)
    assert torch.allclose(sequence_kl(ref, ref, labels), torch.zeros(2, dtype=torch.float64), atol=1e-12)


def test_asft_identities():
    a = t(-0.7)
    odds = a - torch.log(-torch.expm1(a))
    assert F.logsigmoid(odds).item() == pytest.approx(a.item())  # logsig(r_odds) = A
    assert losses.asft_loss(t(-0.5), t(-0.2), lam=0.0).loss.item() == pytest.approx(0.5)
    aw, al, lam = t(-0.4), t(-0.9), 0.5
    ow, ol = aw - torch.log(-torch.expm1(aw)), al - torch.log(-torch.expm1(al))
    orpo = -aw - lam * F.logsigmoid(ow - ol)
    assert losses.asft_loss(aw, al, lam=lam).loss.item() >= orpo.item()
    w = torch.tensor([-0.5], dtype=torch.float64, requires_grad=True)
    r = torch.tensor([-0.5], dtype=torch.float64, requires_grad=True)
    losses.asft_loss(w, r, lam=0.5).loss.sum().backward()
    assert w.grad.item() < 0 < r.grad.item()


def test_dmpo_weights_and_reduction_to_dpo():
    w = losses.dmpo_turn_weights(torch.tensor([3, 1]), 3, 0.7)
    assert torch.allclose(w[0], t(1.0, 0.5434, 0.2237), atol=1e-4)
    assert w[1].tolist() == [1.0, 0.0, 0.0]
    assert torch.allclose(losses.dmpo_turn_weights(torch.tensor([4]), 4, 1.0)[0], t(1.0, 0.75, 0.5, 0.25))
    one = lambda v: torch.tensor([[v, 99.0]], dtype=torch.float64)  # noqa: E731  (second turn ignored)
    single = losses.dmpo_loss(one(-9.0), one(-12.5), one(-10.0), one(-12.0), torch.tensor([1]), torch.tensor([1]))
    assert torch.allclose(single.loss, losses.dpo_loss(t(-9.0), t(-12.5), t(-10.0), t(-12.0)).loss)


def test_todo_reduces_towards_dpo_and_ties_are_symmetric():
    args = dpo_args(3.0)
    small = losses.todo_loss(*args, torch.tensor([False]), beta=0.5, alpha=1e-8).loss
    assert torch.allclose(small, losses.dpo_loss(*args, beta=0.5).loss, atol=1e-7)
    tie = torch.tensor([True])
    a = losses.todo_loss(*dpo_args(2.0), tie).loss
    b = losses.todo_loss(*dpo_args(-2.0), tie).loss
    assert torch.allclose(a, b)
    assert losses.todo_loss(*dpo_args(0.0), tie, alpha=0.5).loss.item() == pytest.approx(1.406829, abs=1e-6)


def test_pro_two_responses_and_shift_invariance():
    s, r = t(-1.0, -1.5).unsqueeze(0), t(2.0, 0.5).unsqueeze(0)
    assert losses.pro_loss(s, r, sft_weight=0.0).loss.item() == pytest.approx(0.386871, abs=1e-6)
    assert losses.pro_loss(s + 2.5, r).loss.item() == pytest.approx(0.386871, abs=1e-6)
    # With n > 2 the reward-gap temperatures differ per response, so a common
    # shift of s is not neutral (the sheet's shift property holds for n = 2 or
    # equal gaps); check the equal-gap case and the explicit formula instead.
    s3 = _random((2, 3), 4)
    r_equal = t(2.0, 1.0, 1.0).expand(2, 3)
    assert torch.allclose(losses.pro_loss(s3, r_equal).loss, losses.pro_loss(s3 + 2.5, r_equal).loss)
    r3 = torch.sort(_random((2, 3), 5), dim=1, descending=True).values
    manual = torch.zeros(2, dtype=torch.float64)
    for k in range(2):
        gaps = r3[:, k:k + 1] - r3[:, k + 1:]
        logits = torch.cat([s3[:, k:k + 1] * gaps.max(1, keepdim=True).values, s3[:, k + 1:] * gaps], 1)
        manual += -(logits[:, 0] - torch.logsumexp(logits, 1))
    assert torch.allclose(losses.pro_loss(s3, r3).loss, manual)
    best = t(-20.0, -30.0)
    with_sft = losses.pro_loss(s3, r3, best, sft_weight=0.05).loss - losses.pro_loss(s3, r3).loss
    assert torch.allclose(with_sft, 0.05 * 4 * (-best))


def test_sppo_inpo_dno_egpo_targets():
    # SPPO minimiser: rho = eta (P - 1/2)
    out = losses.sppo_loss(t(0.3), t(-0.2), t(0.0), t(0.0), t(0.8), t(0.3), eta=1.0)
    assert out.loss.item() == pytest.approx(0.0)
    assert losses.sppo_loss(t(1.0), t(-1.0), t(0.0), t(0.0), variant="hard", eta=2.0).loss.item() == pytest.approx(0.0)
    # INPO at pi = pi_t = pi_ref: 1/(4 eta^2)
    z = t(-3.0)
    assert losses.inpo_loss(z, z, z, z, z, z, eta=0.005).loss.item() == pytest.approx(10000.0)
    # DNO-Prct with pi_t = pi_ref is DPO; soft targets are symmetric under swap
    assert torch.allclose(losses.dno_loss(t(-9.0), t(-12.5), t(-10.0), t(-12.0), eta=0.1).loss,
                          losses.dpo_loss(t(-9.0), t(-12.5), t(-10.0), t(-12.0), beta=0.1).loss)
    a = losses.dno_loss(t(-9.0), t(-12.5), t(-10.0), t(-12.0), target=0.7).loss
    b = losses.dno_loss(t(-12.5), t(-9.0), t(-12.0), t(-10.0), target=0.3).loss
    assert torch.allclose(a, b)
    # EGPO zero-loss condition
    beta = 0.1
    assert losses.egpo_loss(t(0.5), t(0.0), t(0.0), t(0.0), t(0.6), t(0.55), beta=beta).loss.item() == pytest.approx(0.0)


def test_bfloat16_and_float32_stay_finite_at_large_margins():
    for dtype in (torch.float32, torch.bfloat16):
        big = torch.tensor([500.0, -500.0], dtype=dtype)
        zero = torch.zeros(2, dtype=dtype)
        for out in (losses.dpo_loss(big, zero, zero, zero, beta=1.0), losses.bt_loss(big, zero),
                    losses.todo_loss(big, zero, zero, zero, torch.tensor([True, False]), beta=1.0),
                    losses.simpo_loss(big, zero, beta=10.0)):
            assert torch.all(torch.isfinite(out.loss)), dtype
        assert losses.dpo_loss(big, zero, zero, zero, beta=1.0).loss[1].float().item() == pytest.approx(500.0, rel=1e-2)


# ---------------------------------------------------------------- helpers, transforms


def test_sequence_logprobs_masks_and_dtypes():
    logits = _random((2, 5, 7), 1)
    labels = torch.randint(0, 7, (2, 5))
    labels[0, :3] = -100
    out = sequence_logprobs(logits, labels)
    manual = torch.zeros(2, dtype=torch.float64)
    for b in range(2):
        for pos in range(1, 5):
            if labels[b, pos] != -100:
                manual[b] += logits[b, pos - 1].log_softmax(-1)[labels[b, pos]]
    assert torch.allclose(out.sum, manual)
    assert out.lengths.tolist() == [2, 4]
    assert torch.allclose(out.avg, manual / out.lengths)
    explicit = sequence_logprobs(logits, labels.clamp(min=0), mask=labels != -100)
    assert torch.allclose(explicit.sum, out.sum)
    half = sequence_logprobs(logits.to(torch.bfloat16), labels)
    assert half.sum.dtype == torch.float32 and torch.allclose(half.sum.double(), manual, atol=0.1)
    with pytest.raises(ValueError, match="expected logits"):
        sequence_logprobs(logits[0], labels)


def test_reward_transforms():
    assert logsigmoid_reward(t(2.0), 2.0).item() == pytest.approx(-LOG2)
    r = torch.linspace(-5, 5, 11, dtype=torch.float64)
    u = logsigmoid_reward(r, 0.0)
    assert torch.all(u < 0) and torch.all(torch.diff(u) > 0) and torch.all(torch.diff(torch.diff(u)) < 0)
    both = conjunction_reward([t(1.0), t(-1.0)], [0.0, 0.0])
    assert 0 < math.exp(both.item()) < 1
    assert both.item() == pytest.approx(F.logsigmoid(t(1.0)).item() + F.logsigmoid(t(-1.0)).item())
    assert lambda_harmonic_reward(t(0.8), t(0.6), 0.3).item() == pytest.approx(0.648649, abs=1e-6)
    i_sim, t_sim = torch.rand(50, dtype=torch.float64) + 0.01, torch.rand(50, dtype=torch.float64) + 0.01
    harmonic = lambda_harmonic_reward(i_sim, t_sim, 0.4)
    assert torch.all(harmonic <= 0.4 * i_sim + 0.6 * t_sim + 1e-12)


# ---------------------------------------------------------------- training on a toy problem


@pytest.mark.parametrize("name", ["dpo", "ipo", "rdpo", "cdpo", "simpo", "fdpo", "dno"])
def test_tiny_linear_policy_learns_preferences(name):
    """A softmax-linear policy over 6 responses for 4 prompts learns which response is preferred."""
    torch.manual_seed(0)
    n_prompts, n_responses = 4, 6
    features = torch.eye(n_prompts, dtype=torch.float64)
    preferred = torch.tensor([2, 5, 0, 3])
    weights0 = 0.1 * torch.randn(n_prompts, n_responses, dtype=torch.float64)
    weights = torch.nn.Parameter(weights0.clone())
    optimizer = torch.optim.Adam([weights], lr=0.05)
    prompt_idx = torch.arange(n_prompts).repeat_interleave(n_responses - 1)
    rejected = torch.tensor([r for p in range(n_prompts) for r in range(n_responses) if r != preferred[p]])
    chosen = preferred[prompt_idx]

    def logps(w):
        return (features[prompt_idx] @ w).log_softmax(-1)

    with torch.no_grad():
        ref = logps(weights0)
    ref_w, ref_l = ref.gather(1, chosen[:, None])[:, 0], ref.gather(1, rejected[:, None])[:, 0]
    for _ in range(150):
        lp = logps(weights)
        pw, pl = lp.gather(1, chosen[:, None])[:, 0], lp.gather(1, rejected[:, None])[:, 0]
        if name == "simpo":
            out = losses.simpo_loss(pw, pl, beta=2.0)
        elif name == "cdpo":
            out = losses.dpo_loss(pw, pl, ref_w, ref_l, beta=0.5, label_smoothing=0.1)
        elif name == "fdpo":
            out = losses.fdpo_loss(pw, pl, ref_w, ref_l, beta=0.5, divergence="js")
        elif name in ("dpo", "rdpo", "dno"):
            out = losses.get(name)(pw, pl, ref_w, ref_l, 0.5)
        else:
            out = losses.ipo_loss(pw, pl, ref_w, ref_l, tau=0.1)
        optimizer.zero_grad()
        out.loss.mean().backward()
        optimizer.step()
    before = (features @ weights0).softmax(-1)[torch.arange(n_prompts), preferred]
    after = (features @ weights.detach()).softmax(-1)[torch.arange(n_prompts), preferred]
    assert torch.all(after > before + 0.2), (name, before, after)
    assert out.accuracy.mean().item() == 1.0


# ---------------------------------------------------------------- shapes that would broadcast (issue 9 item 17)


def _shape_cases():
    """Valid keyword arguments for every registered loss, keyed by function name.

    Each value is ``(kwargs, checked)``: ``checked`` names the tensor arguments
    that must refuse a trailing singleton dimension ((B,) -> (B, 1)).
    """
    b, k, j = 4, 3, 2
    x = lambda s: _random((b,), s)  # noqa: E731
    tie = torch.tensor([True, False, True, False])
    four = lambda: {  # noqa: E731
        "policy_chosen_logps": x(1), "policy_rejected_logps": x(2), "ref_chosen_logps": x(3), "ref_rejected_logps": x(4),
    }
    prev = lambda: {  # noqa: E731
        "policy_chosen_logps": x(1), "policy_rejected_logps": x(2), "prev_chosen_logps": x(3), "prev_rejected_logps": x(4),
    }
    cases = {
        "bt_loss": {"chosen_rewards": x(1), "rejected_rewards": x(2), "margin": x(3)},
        "soft_bt_loss": {"chosen_rewards": x(1), "rejected_rewards": x(2), "target": torch.rand(b, dtype=torch.float64)},
        "scaled_bt_loss": {"chosen_rewards": x(1), "rejected_rewards": x(2), "strength": x(3).abs() + 0.5},
        "regression_loss": {"predicted": x(1), "target": x(2)},
        "tobt_loss": {"chosen_rewards": x(1), "rejected_rewards": x(2), "is_tie": tie},
        "plackett_luce_loss": {"scores": _random((b, k), 1), "mask": torch.ones(b, k, dtype=torch.bool)},
        "dpo_loss": four(),
        "ipo_loss": {**four(), "chosen_lengths": x(5).abs() + 1, "rejected_lengths": x(6).abs() + 1},
        "rdpo_loss": four(),
        "simpo_loss": {"policy_chosen_avg_logps": x(1), "policy_rejected_avg_logps": x(2)},
        "fdpo_loss": four(),
        "tdpo_loss": {**four(), "chosen_seq_kl": x(5).abs(), "rejected_seq_kl": x(6).abs()},
        "asft_loss": {"policy_chosen_avg_logps": -x(1).abs() - 0.1, "policy_rejected_avg_logps": -x(2).abs() - 0.1},
        "dmpo_loss": {
            "policy_chosen_turn_logps": _random((b, j), 1), "policy_rejected_turn_logps": _random((b, j + 1), 2),
            "ref_chosen_turn_logps": _random((b, j), 3), "ref_rejected_turn_logps": _random((b, j + 1), 4),
            "chosen_turns": torch.tensor([1, 2, 2, 1]), "rejected_turns": torch.tensor([3, 1, 2, 2]),
        },
        "todo_loss": {**four(), "is_tie": tie},
        "pro_loss": {
            "policy_avg_logps": _random((b, k), 1),
            "rewards": torch.sort(_random((b, k), 2), dim=1, descending=True).values,
            "best_response_logps": x(3), "mask": torch.ones(b, k, dtype=torch.bool),
        },
        "sppo_loss": {**prev(), "chosen_win_rate": torch.rand(b, dtype=torch.float64),
                      "rejected_win_rate": torch.rand(b, dtype=torch.float64)},
        "inpo_loss": {**four(), "prev_chosen_logps": x(5), "prev_rejected_logps": x(6)},
        "dno_loss": {**prev(), "target": torch.rand(b, dtype=torch.float64)},
        "egpo_loss": {
            "policy_avg_logps": x(1), "ref_avg_logps": x(2), "policy_other_avg_logps": x(3), "ref_other_avg_logps": x(4),
            "preference": torch.rand(b, dtype=torch.float64), "other_preference": torch.rand(b, dtype=torch.float64),
        },
    }
    return cases


def test_every_registered_loss_has_a_shape_case():
    cases = _shape_cases()
    missing = {losses.get(name).__name__ for name in losses.available()} - set(cases)
    assert not missing, f"add shape cases for {sorted(missing)}"


@pytest.mark.parametrize("name", losses.available())
def test_losses_refuse_shapes_that_would_broadcast(name):
    """(B, 1) against (B,) would broadcast into a (B, B) loss: every loss, every tensor argument, refuses it."""
    fn = losses.get(name)
    kwargs = _shape_cases()[fn.__name__]
    out = fn(**kwargs)  # the valid case runs and gives one loss per example
    assert out.loss.shape == (4,)
    assert torch.all(torch.isfinite(out.loss))
    for arg, value in kwargs.items():
        if not isinstance(value, torch.Tensor):
            continue
        bad = dict(kwargs, **{arg: value.unsqueeze(-1)})
        with pytest.raises(ValueError, match=arg) as info:
            fn(**bad)
        assert str(tuple(value.unsqueeze(-1).shape)) in str(info.value), (arg, str(info.value))


def test_old_broadcast_bug_is_refused_with_both_shapes():
    pc, pr, rc, rr = (_random((5,), s) for s in range(4))
    with pytest.raises(ValueError, match=r"dpo: ref_rejected_logps has shape \(5, 1\) but policy_chosen_logps has shape \(5,\)"):
        losses.dpo_loss(pc, pr, rc, rr.unsqueeze(1))
    with pytest.raises(ValueError, match=r"bt: rejected_rewards has shape \(5, 1\)"):
        losses.bt_loss(pc, pr[:, None])
    with pytest.raises(ValueError, match="ref_chosen_logps has shape"):  # a 0-d tensor is not a batch either
        losses.dpo_loss(pc, pr, torch.tensor(0.0, dtype=torch.float64), rr)
    with pytest.raises(TypeError, match="ref_chosen_logps must be a torch.Tensor, got float"):
        losses.dpo_loss(pc, pr, 0.0, rr)


def test_documented_broadcastable_arguments_still_broadcast():
    a, b = _random((5,), 1), _random((5,), 2)
    full = losses.bt_loss(a, b, margin=torch.full((5,), 0.3, dtype=torch.float64)).loss
    for margin in (0.3, torch.tensor(0.3, dtype=torch.float64), torch.tensor([0.3], dtype=torch.float64)):
        assert torch.allclose(losses.bt_loss(a, b, margin=margin).loss, full)
    assert losses.soft_bt_loss(a, b, target=0.7).loss.shape == (5,)
    assert losses.sppo_loss(a, b, b, a, 0.8, torch.tensor(0.2)).loss.shape == (5,)
    with pytest.raises(ValueError, match=r"margin has shape \(3,\), which does not broadcast to the batch shape \(5,\)"):
        losses.bt_loss(a, b, margin=torch.zeros(3, dtype=torch.float64))
    with pytest.raises(TypeError, match="margin must be a torch.Tensor or a number"):
        losses.bt_loss(a, b, margin=[0.3] * 5)


def test_sequence_kl_refuses_mismatched_logits():
    ref, labels = _random((2, 6, 9), 1), torch.randint(0, 9, (2, 6))
    with pytest.raises(ValueError, match=r"policy_logits has shape \(2, 6, 8\)"):
        sequence_kl(ref, _random((2, 6, 8), 2), labels)
