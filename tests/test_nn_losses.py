"""bradley.nn losses: the reward-model and paper-specific losses against the formula sheet,
and registry-wide checks that run over every registered loss (those of bradley.nn.dpo too)."""

import functools
import inspect
import math
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from bradley.nn import PreferenceBatch, available, get, losses, registry, spec  # noqa: E402
from bradley.nn.batch import BATCH_FIELDS  # noqa: E402
from bradley.nn.registry import HYPERPARAMETERS  # noqa: E402
from bradley.nn.transforms import conjunction_reward, lambda_harmonic_reward, logsigmoid_reward  # noqa: E402

LOG2 = math.log(2.0)
NAMES = available()
CANONICAL = sorted({spec(n).name for n in NAMES})


def t(*values, dtype=torch.float64):
    return torch.tensor(values, dtype=dtype)


def _random(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64)


def _uniform(shape, seed, low=0.0, high=1.0):
    g = torch.Generator().manual_seed(seed)
    return low + (high - low) * torch.rand(*shape, generator=g, dtype=torch.float64)


# ---------------------------------------------------------------- one batch with every field

B, K, J, T = 4, 3, 2, 5
CHOSEN_LENGTHS = torch.tensor([5, 3, 4, 2])
REJECTED_LENGTHS = torch.tensor([4, 5, 2, 3])
# Values for required hyperparameters (none of this module's losses has one; dpo.py's may).
REQUIRED_VALUES = {"f_divergence_type": "forward_kl", "label_smoothing": 0.1, "beta": 0.1, "lam": 0.5, "alpha": 0.5, "tau": 0.05}


def _tokens(lengths, per_token):
    mask = torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)
    return torch.where(mask, per_token, torch.zeros_like(per_token)), mask


def full_batch(scenario="random", seed=0):
    """Float64 tensors for every batch field, consistent with each other.

    ``scenario``: "random" (moderate values); "up" (chosen log-ratios ~ +1e4,
    rejected ~ -1e4, rewards +-1e4); "down" (the reverse); "deep" (every
    log-prob ~ -1e4, margins moderate).
    """
    g = lambda s, shape=(B, T): _uniform(shape, seed + s, 0.05, 2.0)  # noqa: E731  (positive magnitudes)
    near_zero = lambda s: -_uniform((B, T), seed + s, 1e-4, 2e-3)  # noqa: E731
    spread = lambda lengths, s: -1e4 / lengths.unsqueeze(1).double() * _uniform((B, T), seed + s, 0.9, 1.1)  # noqa: E731
    if scenario == "random":
        pc, pr, rc, rr = -g(1), -g(2), -g(3), -g(4)
    elif scenario == "up":
        pc, pr = near_zero(1), spread(REJECTED_LENGTHS, 2)
        rc, rr = spread(CHOSEN_LENGTHS, 3), near_zero(4)
    elif scenario == "down":
        pc, pr = spread(CHOSEN_LENGTHS, 1), near_zero(2)
        rc, rr = near_zero(3), spread(REJECTED_LENGTHS, 4)
    elif scenario == "deep":
        pc, pr = spread(CHOSEN_LENGTHS, 1), spread(REJECTED_LENGTHS, 2)
        rc, rr = spread(CHOSEN_LENGTHS, 3), spread(REJECTED_LENGTHS, 4)
    else:
        raise ValueError(scenario)
    extreme = scenario != "random"
    sign = -1.0 if scenario == "down" else 1.0
    big = 1e4 if extreme else 1.0
    f = {}
    for who, c, r in (("policy", pc, pr), ("ref", rc, rr)):
        f[f"{who}_chosen_token_logps"], f["chosen_mask"] = _tokens(CHOSEN_LENGTHS, c)
        f[f"{who}_rejected_token_logps"], f["rejected_mask"] = _tokens(REJECTED_LENGTHS, r)
        for side, lengths in (("chosen", CHOSEN_LENGTHS), ("rejected", REJECTED_LENGTHS)):
            total = f[f"{who}_{side}_token_logps"].sum(-1)
            f[f"{who}_{side}_logps"] = total
            f[f"{who}_{side}_avg_logps"] = total / lengths
    f["chosen_lengths"], f["rejected_lengths"] = CHOSEN_LENGTHS.clone(), REJECTED_LENGTHS.clone()
    for side in ("chosen", "rejected"):
        lengths = CHOSEN_LENGTHS if side == "chosen" else REJECTED_LENGTHS
        f[f"{side}_log_sum_sq_probs"], _ = _tokens(lengths, -_uniform((B, T), seed + 5, 0.1, 3.0))
        f[f"{side}_seq_kl"] = _uniform((B,), seed + (6 if side == "chosen" else 7), 0.0, 2.0) * big
        f[f"prev_{side}_logps"] = f[f"ref_{side}_logps"] + _uniform((B,), seed + 8, -0.5, 0.5)
    f["is_tie"] = torch.tensor([True, False, True, False])
    f["target"] = t(0.9, 0.7, 0.2, 0.5)
    f["margin"] = t(0.5, 1.0, 0.0, 2.0)
    f["strength"] = t(1.0, 2.0, 3.0, 1.0)
    f["chosen_win_rate"], f["rejected_win_rate"] = t(0.8, 0.6, 0.55, 0.9), t(0.3, 0.5, 0.45, 0.2)
    f["chosen_rewards"] = sign * big * _uniform((B,), seed + 9, 0.5, 1.0)
    f["rejected_rewards"] = -sign * big * _uniform((B,), seed + 10, 0.5, 1.0)
    f["predicted_ratings"] = big * _random((B, 3), seed + 11)
    f["target_ratings"] = _random((B, 3), seed + 12)
    # k-wise: column 0 best by rank in rows 0, 1, 3; row 2 ranks the columns (2, 1, 2) (a tie); row 3 is ragged
    f["ranks"] = torch.tensor([[1, 2, 3], [1, 2, 3], [2, 1, 2], [1, 2, 3]])
    f["list_mask"] = torch.tensor([[True, True, True]] * 3 + [[True, True, False]])
    if extreme:
        hi, lo = t(0.0, -5e3, -1e4).expand(B, K), t(-1e4, -5e3, 0.0).expand(B, K)
        pol, ref = {"up": (hi, lo), "down": (lo, hi), "deep": (lo + hi - 1e4, lo + hi - 1e4)}[scenario]
        f["policy_logps"] = pol - _uniform((B, K), seed + 14, 0.01, 0.1)
        f["ref_logps"] = ref - _uniform((B, K), seed + 15, 0.01, 0.1)
        f["rewards"] = sign * t(1e4, 0.0, -1e4).expand(B, K) + _random((B, K), seed + 13)
        f["response_scores"] = sign * t(1e4, 0.0, -1e4).expand(B, K) + _random((B, K), seed + 16)
    else:
        f["policy_logps"] = -_uniform((B, K), seed + 14, 1.0, 10.0)
        f["ref_logps"] = -_uniform((B, K), seed + 15, 1.0, 10.0)
        f["rewards"] = _random((B, K), seed + 13)
        f["response_scores"] = _random((B, K), seed + 16)
    f["policy_avg_logps"] = f["policy_logps"] / 4.0
    # multi-turn
    for who, c, r in (("policy", pc, pr), ("ref", rc, rr)):
        f[f"{who}_chosen_turn_logps"] = c[:, :J] * 2.0
        f[f"{who}_rejected_turn_logps"] = r[:, :J] * 2.0
    f["chosen_turns"], f["rejected_turns"] = torch.tensor([2, 1, 2, 1]), torch.tensor([1, 2, 2, 2])
    # unpaired (KTO); policy_logps / ref_logps become (N,) for losses that take `desirable`
    f["desirable"] = torch.tensor([True, False, True, False])
    f["policy_kl_logps"] = f["policy_rejected_logps"].flip(0)
    f["ref_kl_logps"] = f["ref_rejected_logps"].flip(0)
    assert set(f) == set(BATCH_FIELDS), set(BATCH_FIELDS) ^ set(f)
    return f


def inputs_for(name, fields):
    """The batch fields loss ``name`` reads (inputs and optional inputs), from ``fields``."""
    s = spec(name)
    chosen = {k: fields[k] for k in s.inputs + s.optional_inputs}
    if "desirable" in chosen:  # unpaired data: one log-prob per response
        for key in ("policy_logps", "ref_logps"):
            if key in chosen:
                side = torch.where(fields["desirable"], fields[key.replace("logps", "chosen_logps")],
                                   fields[key.replace("logps", "rejected_logps")])
                chosen[key] = side
    return chosen


def hyperparameters_for(name):
    s = spec(name)
    missing = [k for k, v in s.hyperparameters.items() if v is inspect.Parameter.empty]
    unknown = [k for k in missing if k not in REQUIRED_VALUES]
    assert not unknown, f"{name}: add a test value for required hyperparameter(s) {unknown}"
    return {k: REQUIRED_VALUES[k] for k in missing}


def cast(fields, dtype, requires_grad=False):
    out = {}
    for k, v in fields.items():
        if v.is_floating_point():
            v = v.detach().to(dtype)
            if requires_grad:
                v.requires_grad_(True)
        out[k] = v
    return out


# ---------------------------------------------------------------- registry-wide: calling convention


def test_every_name_is_reached_and_the_glossaries_hold():
    assert {"bt", "soft-bt", "scaled-bt", "regression", "tobt", "plackett-luce", "dpo-pl", "simpo", "tdpo",
            "asft", "dmpo", "todo", "pro", "sppo", "inpo", "dno", "egpo"} <= set(CANONICAL)
    assert spec("bradley-terry") is spec("bt") and spec("pl") is spec("plackett-luce")
    assert spec("mmpo-rm") is spec("soft-bt") and spec("online-ipo") is spec("egpo")
    for name in NAMES:
        s = spec(name)
        assert set(s.defaults) <= set(HYPERPARAMETERS), name
        assert set(s.inputs + s.optional_inputs) <= set(BATCH_FIELDS), name
        assert s.kind in ("policy", "reward") and s.source, name
    # the glossary is enforced at registration, so a drifting name cannot get in
    with pytest.raises(ValueError, match="hyperparameter 'eta' is not in"):
        registry.register("scratch-never-registered")(lambda policy_chosen_logps, *, eta=1.0: None)
    assert "scratch-never-registered" not in available()


@pytest.mark.parametrize("name", CANONICAL)
def test_batch_and_keyword_calls_agree(name):
    fields = inputs_for(name, full_batch("random"))
    loss = get(name, **hyperparameters_for(name))
    by_keyword = loss(**fields)
    by_batch = loss(PreferenceBatch(**fields))
    assert torch.equal(by_keyword.loss, by_batch.loss)
    assert torch.all(torch.isfinite(by_keyword.loss))
    assert by_keyword.loss.shape == (B,)
    # the kernel is a plain function too, with the same result
    direct = spec(name).fn(**fields, **loss.hyperparameters)
    assert torch.equal(direct.loss, by_keyword.loss)


@pytest.mark.parametrize("name", CANONICAL)
def test_unknown_hyperparameter_lists_the_valid_ones(name):
    with pytest.raises(ValueError, match=r"has no hyperparameter 'not_a_knob'.*valid: ") as info:
        get(name, not_a_knob=1.0, **hyperparameters_for(name))
    for k in spec(name).hyperparameters:
        assert k in str(info.value)


def test_missing_required_hyperparameters_are_named(monkeypatch):
    required = {n: [k for k, v in spec(n).hyperparameters.items() if v is inspect.Parameter.empty] for n in CANONICAL}
    # a scratch loss with a required hyperparameter makes sure the check is exercised
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    @registry.register("scratch-required", kind="reward")
    def scratch(chosen_rewards, rejected_rewards, *, beta):
        return registry.output(beta * (rejected_rewards - chosen_rewards), None, None)

    required["scratch-required"] = ["beta"]
    for name, keys in required.items():
        if not keys:
            continue
        with pytest.raises(ValueError, match=f"loss {name!r} needs hyperparameter.*{keys[0]}.*valid: "):
            get(name)


@pytest.mark.parametrize("name", CANONICAL)
def test_positional_tensors_are_a_type_error(name):
    fields = inputs_for(name, full_batch("random"))
    loss = get(name, **hyperparameters_for(name))
    with pytest.raises(TypeError):
        loss(*fields.values())
    with pytest.raises(TypeError, match="not a positional Tensor"):
        loss(next(iter(fields.values())))


@pytest.mark.parametrize("name", CANONICAL)
def test_a_missing_input_is_named(name):
    s = spec(name)
    fields = {k: v for k, v in inputs_for(name, full_batch("random")).items() if k in s.inputs}
    loss = get(name, **hyperparameters_for(name))
    checked = 0
    for key in s.inputs:
        partial = {k: v for k, v in fields.items() if k != key}
        if PreferenceBatch(**partial).get(key) is not None:
            continue  # derivable from the other fields
        with pytest.raises(ValueError, match=f"loss {s.name!r} needs {key}"):
            loss(**partial)
        checked += 1
    assert checked or not s.inputs


def test_issue_repro_simpo_positional_and_asft_sign():
    pc, pr, rc, rr = t(-10.0), t(-12.0), t(-11.0), t(-11.0)
    with pytest.raises(TypeError):
        get("simpo")(pc, pr, rc, rr)  # used to run with beta=rc and return ~247
    with pytest.raises(TypeError):
        losses.simpo_loss(pc, pr, rc, rr)  # the kernel's hyperparameters are keyword-only too
    a_w, a_l = -_uniform((2000,), 1, 1e-9, 5.0), -_uniform((2000,), 2, 1e-9, 5.0)
    for lam in (0.0, 0.1, 1.0):
        out = get("asft", lam=lam)(policy_chosen_avg_logps=a_w, policy_rejected_avg_logps=a_l)
        assert torch.all(out.loss >= 0)
    with pytest.raises(ValueError, match=r"policy_rejected_avg_logps must be log-probabilities \(<= 0\); rows \[1\]"):
        get("asft")(policy_chosen_avg_logps=t(-1.0, -1.0), policy_rejected_avg_logps=t(-1.0, 0.5))


# ---------------------------------------------------------------- registry-wide: logged rewards on one scale


def _expected_rewards(name, f, hp):
    """(chosen, rejected) rewards the docs promise for ``name``; None where this test has no rule."""
    beta = hp.get("beta")
    ranked = lambda u: (u[torch.arange(B), _best(f)], u[torch.arange(B), _worst(f)])  # noqa: E731
    rules = {
        "bt": lambda: (f["chosen_rewards"], f["rejected_rewards"]),
        "soft-bt": lambda: (f["chosen_rewards"], f["rejected_rewards"]),
        "scaled-bt": lambda: (f["chosen_rewards"], f["rejected_rewards"]),
        "tobt": lambda: (f["chosen_rewards"], f["rejected_rewards"]),
        "plackett-luce": lambda: ranked(f["rewards"]),
        "dpo-pl": lambda: ranked(beta * (f["policy_logps"] - f["ref_logps"])),
        "simpo": lambda: (beta * f["policy_chosen_avg_logps"], beta * f["policy_rejected_avg_logps"]),
        "asft": lambda: (beta * f["policy_chosen_avg_logps"], beta * f["policy_rejected_avg_logps"]),
        "egpo": lambda: (beta * (f["policy_chosen_avg_logps"] - f["ref_chosen_avg_logps"]),
                         beta * (f["policy_rejected_avg_logps"] - f["ref_rejected_avg_logps"])),
        "pro": lambda: None,
        "regression": lambda: None,
        "dmpo": lambda: None,
    }
    for n in ("sppo", "inpo", "dno"):
        rules[n] = lambda: (beta * (f["policy_chosen_logps"] - f["prev_chosen_logps"]),
                            beta * (f["policy_rejected_logps"] - f["prev_rejected_logps"]))
    if name in rules:
        return rules[name]()
    four = {"policy_chosen_logps", "policy_rejected_logps", "ref_chosen_logps", "ref_rejected_logps"}
    if beta is not None and four <= set(spec(name).inputs):  # DPO-pair losses (tdpo, todo, dpo.py's)
        return beta * (f["policy_chosen_logps"] - f["ref_chosen_logps"]), beta * (
            f["policy_rejected_logps"] - f["ref_rejected_logps"])
    return None


def _best(f):
    r = torch.where(f["list_mask"], f["ranks"].double(), torch.full((B, K), math.inf, dtype=torch.float64))
    return r.argmin(1)


def _worst(f):
    r = torch.where(f["list_mask"], f["ranks"].double(), torch.full((B, K), -math.inf, dtype=torch.float64))
    return r.argmax(1)


@pytest.mark.parametrize("name", CANONICAL)
def test_logged_rewards_are_on_the_documented_scale(name):
    fields = full_batch("random")
    loss = get(name, **hyperparameters_for(name))
    out = loss(**inputs_for(name, fields))
    expected = _expected_rewards(name, fields, loss.hyperparameters)
    if out.chosen_rewards is not None:
        assert not out.chosen_rewards.requires_grad and not out.margins.requires_grad
        assert torch.equal(out.margins, out.chosen_rewards - out.rejected_rewards)
        if "is_tie" in spec(name).inputs:
            # ternary outcomes: accurate where the observed outcome is the most probable under TOBT
            a = loss.hyperparameters["tie_threshold"]
            want = torch.where(fields["is_tie"], _most_probable(out.margins, a, 2), _most_probable(out.margins, a, 0))
            assert torch.equal(out.accuracy, want)
        else:
            assert torch.equal(out.accuracy, (out.margins > 0).to(out.loss.dtype))
    if expected is not None:
        assert torch.allclose(out.chosen_rewards, expected[0], atol=1e-12), name
        assert torch.allclose(out.rejected_rewards, expected[1], atol=1e-12), name


def test_pro_and_dmpo_rewards():
    f = full_batch("random")
    out = get("pro", sft_weight=0.0)(policy_avg_logps=f["policy_avg_logps"], response_scores=f["response_scores"])
    order = torch.argsort(f["response_scores"], dim=1, descending=True)
    assert torch.equal(out.chosen_rewards, f["policy_avg_logps"].gather(1, order[:, :1]).squeeze(1))
    assert torch.equal(out.rejected_rewards, f["policy_avg_logps"].gather(1, order[:, 1:2]).squeeze(1))
    one = lambda v: v.unsqueeze(1)  # noqa: E731  (single-turn dialogues: weights 1)
    out = get("dmpo", beta=0.3)(
        policy_chosen_turn_logps=one(f["policy_chosen_logps"]), policy_rejected_turn_logps=one(f["policy_rejected_logps"]),
        ref_chosen_turn_logps=one(f["ref_chosen_logps"]), ref_rejected_turn_logps=one(f["ref_rejected_logps"]),
        chosen_turns=torch.ones(B, dtype=torch.long), rejected_turns=torch.ones(B, dtype=torch.long))
    assert torch.allclose(out.chosen_rewards, 0.3 * (f["policy_chosen_logps"] - f["ref_chosen_logps"]))


# ---------------------------------------------------------------- registry-wide: gradcheck and extreme inputs


NON_DEFAULT = [
    ("bt", {"label_smoothing": 0.1, "center_rewards_coefficient": 0.01}),
    ("tobt", {"tie_threshold": 1.5}),
    ("simpo", {"label_smoothing": 0.1, "sft_weight": 0.3, "gamma_beta_ratio": 0.5}),
    ("tdpo", {"version": 1}),
    ("asft", {"lam": 0.5, "beta": 2.0}),
    ("dmpo", {"gamma": 1.0}),
    ("todo", {"beta": 0.5, "tie_threshold": 0.3, "label_smoothing": 0.1}),
    ("pro", {"sft_weight": 0.0}),
    ("sppo", {"beta": 0.5, "variant": "single"}),
    ("inpo", {"beta": 0.5, "tau": 0.0}),
    ("dpo-pl", {"beta": 0.7}),
]


@pytest.mark.parametrize(
    "name,hp", [(n, {}) for n in CANONICAL] + NON_DEFAULT,
    ids=CANONICAL + [f"{n}-{'-'.join(map(str, h.values()))}" for n, h in NON_DEFAULT])
def test_gradcheck_every_loss(name, hp):
    fields = inputs_for(name, full_batch("random", seed=3))
    hp = get(name, **{**hyperparameters_for(name), **hp}).hyperparameters
    floats = [k for k, v in fields.items() if v.is_floating_point()]
    # hyperparameter-like inputs (soft targets, rates, strengths, margins) are data; log-probs, scores, KLs vary
    fixed = {"target", "chosen_win_rate", "rejected_win_rate", "strength", "margin", "target_ratings"}
    # stop-gradients by design: TDPO2's chosen KL, WPO's weights, KTO's KL estimate
    fixed |= {"chosen_log_sum_sq_probs", "rejected_log_sum_sq_probs", "policy_kl_logps", "ref_kl_logps"}
    if name == "tdpo":
        fixed.add("chosen_seq_kl")
    # optional (B, T) inputs of modifiers that default settings do not read: constants, for speed
    per_token = ("_token_logps", "_log_sum_sq_probs")
    varied = [k for k in floats if k not in fixed and (k in spec(name).inputs or not k.endswith(per_token))]
    leaves = [fields[k].clone().requires_grad_() for k in varied]

    def fn(*xs):
        return spec(name).fn(**{**fields, **dict(zip(varied, xs, strict=True))}, **hp).loss

    assert torch.autograd.gradcheck(fn, leaves, eps=1e-6, atol=1e-5)


def _assert_extreme_ok(name, hp, fields, dtype):
    """Finite losses, gradients and logging fields in ``dtype``; values equal to float64 on the same inputs."""
    fields = cast(fields, dtype, requires_grad=True)
    out = get(name, **hp)(**fields)
    assert torch.all(torch.isfinite(out.loss)), (name, hp, out.loss)
    for field in ("chosen_rewards", "rejected_rewards", "margins", "accuracy"):
        value = getattr(out, field)
        assert value is None or torch.all(torch.isfinite(value)), (name, hp, field, value)
    for key, value in out.extras.items():
        assert torch.all(torch.isfinite(value)), (name, hp, key, value)
    out.loss.sum().backward()
    for key, value in fields.items():
        if value.is_floating_point() and value.grad is not None:
            assert torch.all(torch.isfinite(value.grad)), (name, hp, key, value.grad)
    # float64 on the same (rounded) inputs
    reference = get(name, **hp)(**{k: (v.detach().double() if v.is_floating_point() else v) for k, v in fields.items()})
    # compared where float64 is finite and below 1e8: larger losses are saturated on purpose in some
    # losses (TRL's f-divergence clamp of the exponent depends on the dtype)
    kept = torch.isfinite(reference.loss) & (reference.loss.abs() < 1e8)
    got, want = out.loss.detach().double()[kept], reference.loss[kept]
    # float32 arithmetic: relative to each loss, and to the largest loss of the batch (PRO's logits s * gap
    # reach 1e7 when a row has a loss of 1e3)
    scale = float(want.abs().max()) if want.numel() else 0.0
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-3 + 1e-6 * scale), (name, hp, got, want)


@pytest.mark.parametrize("scenario", ["up", "down", "deep"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("name", CANONICAL)
def test_extreme_inputs_stay_finite_and_match_float64(name, dtype, scenario):
    """Margins of +-1e4 and log-probs of -1e4 in fp32 / bf16: finite losses, gradients and logs, float64 values."""
    _assert_extreme_ok(name, hyperparameters_for(name), inputs_for(name, full_batch(scenario)), dtype)


@functools.lru_cache(maxsize=None)
def _cached_batch(scenario):
    return full_batch(scenario)


def _batch(scenario):
    """full_batch(scenario), built once per scenario; fresh tensors each call (tests set requires_grad)."""
    return {k: v.clone() for k, v in _cached_batch(scenario).items()}


def _with_zero_logps(fields):
    """Row 0's policy chosen and row 1's policy rejected log-probs exactly 0 (a response of probability 1):
    per-token values, sums and averages, in the (B, T), (B,) and (B, K) fields alike."""
    f = dict(fields)
    for row, side in ((0, "chosen"), (1, "rejected")):
        mask = f[f"{side}_mask"]
        tokens = f[f"policy_{side}_token_logps"].clone()
        tokens[row] = 0.0
        f[f"policy_{side}_token_logps"] = tokens
        f[f"policy_{side}_logps"] = torch.where(mask, tokens, 0.0).sum(-1)
        f[f"policy_{side}_avg_logps"] = f[f"policy_{side}_logps"] / f[f"{side}_lengths"]
    for key in ("policy_logps", "policy_avg_logps"):
        f[key] = f[key].clone()
        f[key][0, 0] = 0.0
    return f


def _settings_that_change_numerics():
    """(name, hyperparameters) for every loss and each non-default setting it takes that changes its numerics."""
    cases = []
    for name in CANONICAL:
        hp = spec(name).hyperparameters
        base = hyperparameters_for(name)
        extra = []
        if "ld_alpha" in hp:
            extra.append({"ld_alpha": 0.5})
        if "use_weighting" in hp and name not in ("aot", "aot_unpaired"):  # AOT refuses WPO (sorted batch)
            extra.append({"use_weighting": True})
        if "f_alpha_divergence_coef" in hp:  # TRL applies f-divergences to these; others refuse them
            extra += [{"f_divergence_type": "js_divergence"}, {"f_divergence_type": "forward_kl"}]
            extra += [{"f_divergence_type": "alpha_divergence", "f_alpha_divergence_coef": c} for c in (0.3, 0.8)]
        if name in ("cdpo", "robust", "exo_pair"):
            extra.append({"label_smoothing": 0.1})
        cases += [(name, {**base, **e}) for e in extra]
    return cases


NUMERIC_SETTINGS = _settings_that_change_numerics()


@pytest.mark.parametrize("name,hp", NUMERIC_SETTINGS,
                         ids=[f"{n}-{'-'.join(map(str, h.values()))}" for n, h in NUMERIC_SETTINGS])
def test_extreme_inputs_with_non_default_settings(name, hp):
    """As above, with the settings that change the arithmetic (LD-DPO, WPO, f-divergences, flip rates)."""
    assert hp  # every case sets something
    for scenario in ("up", "down", "deep"):
        for dtype in (torch.float32, torch.bfloat16):
            _assert_extreme_ok(name, hp, inputs_for(name, _batch(scenario)), dtype)


@pytest.mark.parametrize("target", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("name", ["sigmoid", "cdpo"])
def test_extreme_inputs_with_hard_and_even_soft_targets(name, target):
    hp = {**hyperparameters_for(name), "beta": 0.1}
    for scenario in ("up", "down", "deep"):
        fields = inputs_for(name, _batch(scenario))
        fields["target"] = torch.full((B,), target, dtype=torch.float64)
        for dtype in (torch.float32, torch.bfloat16):
            _assert_extreme_ok(name, hp, fields, dtype)


POLICY = [n for n in CANONICAL if spec(n).kind == "policy"]


@pytest.mark.parametrize("name", POLICY)
def test_log_probs_of_exactly_zero_stay_finite(name):
    """A response of probability 1 (log-prob 0, summed and averaged): ORPO's and ASFT's log(1 - p) at p = 1."""
    for scenario in ("random", "deep"):
        fields = inputs_for(name, _with_zero_logps(_batch(scenario)))
        for dtype in (torch.float64, torch.float32):
            _assert_extreme_ok(name, hyperparameters_for(name), fields, dtype)


BETA_LOSSES = [n for n in CANONICAL if "beta" in spec(n).hyperparameters]


@pytest.mark.parametrize("beta", [0.0, -1.0])
@pytest.mark.parametrize("name", BETA_LOSSES)
def test_non_positive_beta_is_refused(name, beta):
    with pytest.raises(ValueError, match="beta"):
        get(name, **{**hyperparameters_for(name), "beta": beta})


# ---------------------------------------------------------------- numerics regressions (issue 10 item 3)


def test_plackett_luce_bfloat16_matches_float64_and_has_a_gradient():
    # bf16 logcumsumexp gave half the loss and a zero gradient on these scores
    scores = torch.tensor([[5.0, 0.0, -5.0]], dtype=torch.bfloat16, requires_grad=True)
    out = get("plackett-luce")(rewards=scores)
    exact = get("plackett-luce")(rewards=scores.detach().double()).loss
    manual = -sum(scores.detach().double()[0, k] - torch.logsumexp(scores.detach().double()[0, k:], 0) for k in range(3))
    assert exact.item() == pytest.approx(manual.item(), rel=1e-12)
    assert out.loss.item() == pytest.approx(exact.item(), rel=1e-6)  # was 1/2 of it
    out.loss.sum().backward()
    assert scores.grad is not None and torch.all(scores.grad != 0) and torch.all(torch.isfinite(scores.grad))
    assert scores.grad[0, 0].item() < 0 < scores.grad[0, 2].item()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("a", [-1e-8, -1e-3])
def test_asft_gradient_near_zero_log_prob_is_exact(a, dtype):
    # the old clamp at -1e-6 gave a zero gradient at -1e-8
    lam = 0.5
    aw = torch.tensor([a], dtype=dtype, requires_grad=True)
    al = torch.tensor([a], dtype=dtype, requires_grad=True)
    out = losses.asft_loss(policy_chosen_avg_logps=aw, policy_rejected_avg_logps=al, lam=lam)
    out.loss.sum().backward()
    # d/dA_w [-(1 + lam) A_w] and d/dA_l [-lam log(1 - e^A_l)] = lam e^A / (1 - e^A)
    assert aw.grad.item() == pytest.approx(-(1 + lam), rel=1e-6)
    assert al.grad.item() == pytest.approx(lam * math.exp(a) / -math.expm1(a), rel=1e-5)
    assert out.loss.item() == pytest.approx(-(1 + lam) * a - lam * math.log(-math.expm1(a)), rel=1e-6)


def test_asft_tempered_gradient_matches_finite_differences_and_stays_finite_at_zero():
    for a in (-1e-3, -0.7):
        x = torch.tensor([a, -0.4], dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(
            lambda v: losses.asft_loss(policy_chosen_avg_logps=v[:1], policy_rejected_avg_logps=v[1:], beta=2.0).loss,
            (x,), eps=1e-7, atol=1e-5)
    for dtype in (torch.float32, torch.float64):
        for beta in (1.0, 0.5, 2.0):
            zero = torch.zeros(1, dtype=dtype, requires_grad=True)
            other = torch.full((1,), -0.3, dtype=dtype, requires_grad=True)
            for w, l in ((zero, other), (other, zero)):
                out = losses.asft_loss(policy_chosen_avg_logps=w, policy_rejected_avg_logps=l, beta=beta)
                grads = torch.autograd.grad(out.loss.sum(), (w, l))
                assert torch.isfinite(out.loss).all() and all(torch.isfinite(g).all() and g.item() != 0 for g in grads)


# ---------------------------------------------------------------- reward-model losses


def test_bt_properties():
    bt = get("bt")
    assert bt(chosen_rewards=t(1.5), rejected_rewards=t(1.5)).loss.item() == pytest.approx(LOG2)
    d = t(0.7)
    gap = bt(chosen_rewards=d, rejected_rewards=t(0.0)).loss - bt(chosen_rewards=-d, rejected_rewards=t(0.0)).loss
    assert gap.item() == pytest.approx(-0.7)
    assert torch.allclose(bt(chosen_rewards=t(3.0), rejected_rewards=t(1.0)).loss,
                          bt(chosen_rewards=t(13.0), rejected_rewards=t(11.0)).loss)
    assert bt(chosen_rewards=t(2.0), rejected_rewards=t(1.0), margin=t(1.0)).loss.item() == pytest.approx(LOG2)
    assert torch.allclose(bt(chosen_rewards=t(2.0), rejected_rewards=t(0.0), margin=t(0.5)).loss,
                          bt(chosen_rewards=t(1.5), rejected_rewards=t(0.0)).loss)
    centred = get("bt", center_rewards_coefficient=0.01)(chosen_rewards=t(2.0), rejected_rewards=t(1.0)).loss
    assert centred.item() == pytest.approx(math.log1p(math.exp(-1.0)) + 0.01 * 9.0)


def test_bt_label_smoothing_minimiser_is_log9():
    z = torch.tensor([math.log(9.0)], dtype=torch.float64, requires_grad=True)
    get("bt", label_smoothing=0.1)(chosen_rewards=z, rejected_rewards=torch.zeros(1, dtype=torch.float64)).loss.sum().backward()
    assert abs(z.grad.item()) < 1e-12


def test_bt_equals_trl_reward_trainer_loss():
    trl_reward = pytest.importorskip("trl.trainer.reward_trainer")
    from collections import defaultdict

    rc, rr, margin = _random((6,), 1), _random((6,), 2), _uniform((6,), 3)
    for coefficient in (None, 0.01):
        for with_margin in (False, True):
            fake = SimpleNamespace(
                model=SimpleNamespace(training=False), args=SimpleNamespace(center_rewards_coefficient=coefficient),
                accelerator=SimpleNamespace(gather_for_metrics=lambda x: x, gather=lambda x: x),
                _metrics={"eval": defaultdict(list)}, _total_train_tokens=0)
            model = lambda **kw: SimpleNamespace(logits=torch.cat([rc, rr]).unsqueeze(-1))  # noqa: E731
            inputs = {"attention_mask": torch.ones(12, 3)}
            if with_margin:
                inputs["margin"] = margin
            theirs = trl_reward.RewardTrainer.compute_loss(fake, model, inputs)
            ours = get("bt", center_rewards_coefficient=coefficient)(
                chosen_rewards=rc, rejected_rewards=rr, margin=margin if with_margin else None).loss.mean()
            assert abs(ours.item() - theirs.item()) < 1e-12
    assert spec("bt").trl == "reward"


def test_scaled_bt_and_soft_targets():
    base = get("bt")(chosen_rewards=t(0.3, -1.0), rejected_rewards=t(0.0, 0.0)).loss
    scaled = get("scaled-bt")(chosen_rewards=t(0.3, -1.0), rejected_rewards=t(0.0, 0.0), strength=t(2.0, 3.0)).loss
    assert torch.allclose(scaled, base * t(2.0, 3.0))
    with pytest.raises(ValueError, match="strength must be positive"):
        get("scaled-bt")(chosen_rewards=t(0.0), rejected_rewards=t(0.0), strength=t(0.0))
    # MMPO margin matching: the optimum reward gap is gamma * (s_w - s_l)
    target = losses.mmpo_target(t(4.0), t(3.0), gamma=2.2)
    z = torch.tensor([2.2], dtype=torch.float64, requires_grad=True)
    get("mmpo-rm")(chosen_rewards=z, rejected_rewards=torch.zeros(1, dtype=torch.float64), target=target).loss.sum().backward()
    assert abs(z.grad.item()) < 1e-12
    assert losses.mmpo_target(t(1.0), t(1.0), gamma=2.2).item() == 0.5
    assert losses.mmpo_target(t(1.0), t(0.0), gamma=None).item() == 1.0


def test_regression_sums_attributes():
    p, y = _random((3, 2), 1), _random((3, 2), 2)
    assert torch.allclose(get("regression")(predicted_ratings=p, target_ratings=y).loss, ((p - y) ** 2).sum(1))
    out = get("regression")(predicted_ratings=p[:, 0], target_ratings=y[:, 0])
    assert torch.allclose(out.loss, (p[:, 0] - y[:, 0]) ** 2) and out.chosen_rewards is None


def test_tobt_probabilities_and_values():
    d = _random((100,), 7) * 5
    for a in (0.1, 0.5, 2.0):
        p_w, p_l, p_t = losses.tobt_probabilities(d, tie_threshold=a)
        assert torch.allclose(p_w + p_l + p_t, torch.ones_like(d))
        out = get("tobt", tie_threshold=a)(chosen_rewards=d, rejected_rewards=torch.zeros_like(d),
                                           is_tie=torch.arange(100) % 3 == 0)
        expected = -torch.where(torch.arange(100) % 3 == 0, p_t, p_w).log()
        assert torch.allclose(out.loss, expected)
    tie = get("tobt")(chosen_rewards=t(0.8), rejected_rewards=t(0.1), is_tie=torch.tensor([True])).loss
    assert torch.allclose(tie, get("tobt")(chosen_rewards=t(0.1), rejected_rewards=t(0.8), is_tie=torch.tensor([True])).loss)
    with pytest.raises(ValueError, match="tie_threshold must be positive"):
        get("tobt", tie_threshold=0.0)(chosen_rewards=t(0.0), rejected_rewards=t(0.0), is_tie=torch.tensor([True]))


def _naive_pl(u, order):
    """-log P(order) of one list by an explicit product of choice probabilities."""
    total, left = 0.0, list(order)
    for i in order:
        total -= math.log(math.exp(u[i]) / sum(math.exp(u[j]) for j in left))
        left.remove(i)
    return total


def test_plackett_luce_against_naive_choices_ranks_masks_and_bt():
    u = _random((5, 4), 3)
    pl = get("plackett-luce")
    naive = t(*[_naive_pl(row.tolist(), range(4)) for row in u])
    assert torch.allclose(pl(rewards=u).loss, naive)
    assert torch.allclose(pl(rewards=u + 3.0).loss, naive)
    two = pl(rewards=u[:, :2]).loss
    assert torch.allclose(two, get("bt")(chosen_rewards=u[:, 0], rejected_rewards=u[:, 1]).loss)
    # ranks: 1 = best, in any column order
    perm = torch.stack([torch.randperm(4, generator=torch.Generator().manual_seed(i)) for i in range(5)])
    ranks = torch.argsort(perm, dim=1) + 1  # column perm[b, r] has rank r + 1
    shuffled = torch.empty_like(u).scatter_(1, perm, u)
    ranks_shuffled = torch.empty_like(ranks).scatter_(1, perm, torch.arange(1, 5).expand(5, 4))
    assert torch.allclose(pl(rewards=shuffled, ranks=ranks_shuffled).loss, naive)
    del ranks
    # ragged lists: masked entries anywhere, holding garbage
    mask = torch.tensor([[True, False, True, True]] * 5)
    garbage = u.clone()
    garbage[:, 1] = math.nan
    expected = t(*[_naive_pl(row.tolist(), [0, 2, 3]) for row in u])
    assert torch.allclose(pl(rewards=garbage, list_mask=mask).loss, expected)


def test_plackett_luce_ties_are_breslow():
    # items 0 and 1 tied for first of three: each is chosen from {0, 1, 2}, then 2 alone (no term)
    u = t(0.3, -0.2, 1.1).unsqueeze(0)
    lse = torch.logsumexp(u[0], 0)
    expected = -((u[0, 0] - lse) + (u[0, 1] - lse))
    out = get("plackett-luce")(rewards=u, ranks=torch.tensor([[1, 1, 2]]))
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-12)
    # a fully tied list: every item chosen from the whole list
    full = get("plackett-luce")(rewards=u, ranks=torch.tensor([[1, 1, 1]])).loss
    assert full.item() == pytest.approx(-(u[0] - lse).sum().item(), rel=1e-12)
    # logged rewards: the best and the worst real response by rank
    assert out.chosen_rewards.item() == pytest.approx(0.3) and out.rejected_rewards.item() == pytest.approx(1.1)


def test_dpo_plackett_luce_is_dpo_for_two_and_pl_on_log_ratios():
    pc, pr, rc, rr = _random((6,), 1), _random((6,), 2), _random((6,), 3), _random((6,), 4)
    out = get("dpo-pl", beta=0.3)(policy_logps=torch.stack([pc, pr], 1), ref_logps=torch.stack([rc, rr], 1))
    assert torch.allclose(out.loss, -F.logsigmoid(0.3 * ((pc - rc) - (pr - rr))))
    pol, ref = _random((3, 4), 5), _random((3, 4), 6)
    ranks = torch.tensor([[2, 1, 4, 3]] * 3)
    u = 0.5 * (pol - ref)
    expected = t(*[_naive_pl(row.tolist(), [1, 0, 3, 2]) for row in u])
    assert torch.allclose(get("dpo-pl", beta=0.5)(policy_logps=pol, ref_logps=ref, ranks=ranks).loss, expected)


# ---------------------------------------------------------------- policy losses


def test_simpo_values_and_sft_term():
    simpo = get("simpo", beta=2.0, gamma_beta_ratio=0.5)
    assert simpo(policy_chosen_avg_logps=t(-1.2), policy_rejected_avg_logps=t(-1.2)).loss.item() == pytest.approx(
        1.313262, abs=1e-6)
    aw, al = _random((5,), 1) - 2, _random((5,), 2) - 2
    z = 2.5 * (aw - al) - 2.5 * 0.3
    smooth = get("simpo", beta=2.5, gamma_beta_ratio=0.3, label_smoothing=0.1, sft_weight=0.2)
    expected = -0.9 * F.logsigmoid(z) - 0.1 * F.logsigmoid(-z) + 0.2 * (-aw)
    assert torch.allclose(smooth(policy_chosen_avg_logps=aw, policy_rejected_avg_logps=al).loss, expected)
    # length invariance: repeating tokens leaves the average, so the loss, unchanged
    tokens = -_uniform((2, 3), 4, 0.1, 2.0)
    batch = PreferenceBatch(policy_chosen_token_logps=tokens, policy_rejected_token_logps=tokens.flip(1),
                            chosen_mask=torch.ones(2, 3, dtype=torch.bool), rejected_mask=torch.ones(2, 3, dtype=torch.bool))
    doubled = PreferenceBatch(policy_chosen_token_logps=tokens.repeat(1, 2), policy_rejected_token_logps=tokens.flip(1).repeat(1, 2),
                              chosen_mask=torch.ones(2, 6, dtype=torch.bool), rejected_mask=torch.ones(2, 6, dtype=torch.bool))
    assert torch.allclose(simpo(batch).loss, simpo(doubled).loss)


def test_tdpo_versions():
    pc, pr, rc, rr = t(-9.0), t(-12.5), t(-10.0), t(-12.0)
    zero = t(0.0)
    base = dict(policy_chosen_logps=pc, policy_rejected_logps=pr, ref_chosen_logps=rc, ref_rejected_logps=rr)
    one = get("tdpo", version=1)(**base, chosen_seq_kl=zero, rejected_seq_kl=zero)
    assert one.loss.item() == pytest.approx(-math.log(1 / (1 + math.exp(-0.1 * 1.5))))
    kl_w = torch.tensor([0.4], dtype=torch.float64, requires_grad=True)
    kl_l = torch.tensor([0.9], dtype=torch.float64, requires_grad=True)
    two = get("tdpo", beta=0.1, alpha=0.5)(**base, chosen_seq_kl=kl_w, rejected_seq_kl=kl_l)
    assert two.loss.item() == pytest.approx(-math.log(1 / (1 + math.exp(-0.1 * (1.5 - 0.5 * 0.5)))))
    two.loss.sum().backward()
    assert kl_w.grad is None or kl_w.grad.item() == 0.0
    assert kl_l.grad.item() != 0.0
    with pytest.raises(ValueError, match="version must be 1 or 2"):
        get("tdpo", version=3)(**base, chosen_seq_kl=zero, rejected_seq_kl=zero)


def test_asft_identities():
    a = t(-0.7)
    odds = a - torch.log(-torch.expm1(a))
    assert F.logsigmoid(odds).item() == pytest.approx(a.item())  # logsig(r_odds) = A
    asft = lambda w, r, **hp: get("asft", **hp)(policy_chosen_avg_logps=w, policy_rejected_avg_logps=r)  # noqa: E731
    assert asft(t(-0.5), t(-0.2), lam=0.0).loss.item() == pytest.approx(0.5)
    aw, al, lam = t(-0.4), t(-0.9), 0.5
    ow, ol = aw - torch.log(-torch.expm1(aw)), al - torch.log(-torch.expm1(al))
    out = asft(aw, al, lam=lam)
    assert out.loss.item() >= (-aw - lam * F.logsigmoid(ow - ol)).item()  # ASFT >= ORPO
    assert out.extras["chosen_log_odds"].item() == pytest.approx(ow.item())
    tempered = asft(aw, al, lam=lam, beta=2.0).loss
    assert tempered.item() == pytest.approx((-aw - lam * (F.logsigmoid(2 * ow) + F.logsigmoid(-2 * ol))).item())
    w = torch.tensor([-0.5], dtype=torch.float64, requires_grad=True)
    r = torch.tensor([-0.5], dtype=torch.float64, requires_grad=True)
    asft(w, r, lam=0.5).loss.sum().backward()
    assert w.grad.item() < 0 < r.grad.item()


def test_dmpo_weights_and_reduction_to_dpo():
    w = losses.dmpo_turn_weights(torch.tensor([3, 1]), 3, gamma=0.7)
    assert torch.allclose(w[0], t(1.0, 0.5434, 0.2237), atol=1e-4)
    assert w[1].tolist() == [1.0, 0.0, 0.0]
    assert torch.allclose(losses.dmpo_turn_weights(torch.tensor([4]), 4, gamma=1.0)[0], t(1.0, 0.75, 0.5, 0.25))
    one = lambda v: torch.tensor([[v, 99.0]], dtype=torch.float64)  # noqa: E731  (second turn ignored)
    single = get("dmpo")(policy_chosen_turn_logps=one(-9.0), policy_rejected_turn_logps=one(-12.5),
                         ref_chosen_turn_logps=one(-10.0), ref_rejected_turn_logps=one(-12.0),
                         chosen_turns=torch.tensor([1]), rejected_turns=torch.tensor([1]))
    assert single.loss.item() == pytest.approx(math.log1p(math.exp(-0.1 * 1.5)))


def test_todo_reduces_towards_dpo_and_ties_are_symmetric():
    def four(delta):
        return dict(policy_chosen_logps=t(-10.0 + delta), policy_rejected_logps=t(-12.0),
                    ref_chosen_logps=t(-10.0), ref_rejected_logps=t(-12.0))

    small = get("todo", beta=0.5, tie_threshold=1e-8)(**four(3.0), is_tie=torch.tensor([False])).loss
    assert small.item() == pytest.approx(math.log1p(math.exp(-1.5)), abs=1e-7)
    tie = torch.tensor([True])
    assert torch.allclose(get("todo")(**four(2.0), is_tie=tie).loss, get("todo")(**four(-2.0), is_tie=tie).loss)
    assert get("todo")(**four(0.0), is_tie=tie).loss.item() == pytest.approx(1.406829, abs=1e-6)


def test_pro_formula_sorting_masks_and_sft():
    pro = get("pro", sft_weight=0.0)
    s, r = t(-1.0, -1.5).unsqueeze(0), t(2.0, 0.5).unsqueeze(0)
    assert pro(policy_avg_logps=s, response_scores=r).loss.item() == pytest.approx(0.386871, abs=1e-6)
    s3, r3 = _random((2, 3), 4), torch.sort(_random((2, 3), 5), dim=1, descending=True).values
    manual = torch.zeros(2, dtype=torch.float64)
    for k in range(2):
        gaps = r3[:, k:k + 1] - r3[:, k + 1:]
        logits = torch.cat([s3[:, k:k + 1] * gaps.max(1, keepdim=True).values, s3[:, k + 1:] * gaps], 1)
        manual += -(logits[:, 0] - torch.logsumexp(logits, 1))
    assert torch.allclose(pro(policy_avg_logps=s3, response_scores=r3).loss, manual)
    # responses are ranked by their scores: a column permutation changes nothing
    perm = torch.tensor([2, 0, 1])
    assert torch.allclose(pro(policy_avg_logps=s3[:, perm], response_scores=r3[:, perm]).loss, manual)
    # a padded response (anywhere) drops out: the n = 2 formula on the other two
    padded = pro(policy_avg_logps=torch.cat([s3[:, :1], t(5.0, 5.0)[:, None], s3[:, 1:2]], 1),
                 response_scores=torch.cat([r3[:, :1], t(math.nan, math.nan)[:, None], r3[:, 1:2]], 1),
                 list_mask=torch.tensor([[True, False, True]] * 2)).loss
    assert torch.allclose(padded, pro(policy_avg_logps=s3[:, :2], response_scores=r3[:, :2]).loss)
    # SFT term: sft_weight (n - 1)^2 (-S(best)), on the best-scored response
    summed = _random((2, 3), 6) - 20
    with_sft = get("pro", sft_weight=0.05)(policy_avg_logps=s3[:, perm], response_scores=r3[:, perm],
                                          policy_logps=summed[:, perm]).loss
    assert torch.allclose(with_sft - manual, 0.05 * 4 * (-summed[:, 0]))
    with pytest.raises(ValueError, match="needs policy_logps"):
        get("pro")(policy_avg_logps=s3, response_scores=r3)


def test_sppo_inpo_dno_egpo_targets():
    prev = dict(prev_chosen_logps=t(0.0), prev_rejected_logps=t(0.0))
    # SPPO minimiser: rho = eta (P - 1/2), eta = 1 / beta
    out = get("sppo", beta=0.5)(policy_chosen_logps=t(0.6), policy_rejected_logps=t(-0.4), **prev,
                                chosen_win_rate=t(0.8), rejected_win_rate=t(0.3))
    assert out.loss.item() == pytest.approx(0.0, abs=1e-15)
    out = get("sppo", beta=0.5)(policy_chosen_logps=t(1.0), policy_rejected_logps=t(0.0), **prev,
                                chosen_win_rate=t(0.5), rejected_win_rate=t(0.5))
    assert out.loss.item() == pytest.approx(0.5)  # halved square, as the authors' code
    single = get("sppo", beta=0.5, variant="single")(policy_chosen_logps=t(0.6), policy_rejected_logps=t(-0.6), **prev,
                                                     target=t(0.8))
    assert single.loss.item() == pytest.approx(0.0, abs=1e-15)
    with pytest.raises(ValueError, match="needs chosen_win_rate and rejected_win_rate"):
        get("sppo")(policy_chosen_logps=t(0.0), policy_rejected_logps=t(0.0), **prev)
    # INPO at pi = pi_t = pi_ref: 1/(4 eta^2); tau = 0 anchors to pi_t only
    z = t(-3.0)
    four = dict(policy_chosen_logps=z, policy_rejected_logps=z, ref_chosen_logps=z, ref_rejected_logps=z)
    assert get("inpo", beta=0.005)(**four, prev_chosen_logps=z, prev_rejected_logps=z).loss.item() == pytest.approx(10000.0)
    anchored = get("inpo", beta=0.25, tau=0.0)(**dict(four, ref_chosen_logps=t(7.0)), prev_chosen_logps=t(-5.0),
                                               prev_rejected_logps=z)
    assert anchored.loss.item() == pytest.approx((2.0 - 2.0) ** 2)
    # DNO-Prct with pi_t = pi_ref is DPO; soft targets are symmetric under swap
    dno = get("dno", beta=0.1)(policy_chosen_logps=t(-9.0), policy_rejected_logps=t(-12.5),
                               prev_chosen_logps=t(-10.0), prev_rejected_logps=t(-12.0))
    assert dno.loss.item() == pytest.approx(math.log1p(math.exp(-0.15)))
    a = get("dno")(policy_chosen_logps=t(-9.0), policy_rejected_logps=t(-12.5), prev_chosen_logps=t(-10.0),
                   prev_rejected_logps=t(-12.0), target=t(0.7)).loss
    b = get("dno")(policy_chosen_logps=t(-12.5), policy_rejected_logps=t(-9.0), prev_chosen_logps=t(-12.0),
                   prev_rejected_logps=t(-10.0), target=t(0.3)).loss
    assert torch.allclose(a, b)
    # EGPO zero-loss conditions
    avg = dict(policy_chosen_avg_logps=t(0.5), policy_rejected_avg_logps=t(0.0),
               ref_chosen_avg_logps=t(0.0), ref_rejected_avg_logps=t(0.0))
    assert get("egpo")(**avg, chosen_win_rate=t(0.6), rejected_win_rate=t(0.55)).loss.item() == pytest.approx(0.0)
    assert get("online-ipo")(**avg, target=t(0.55)).loss.item() == pytest.approx(0.0)
    both = get("egpo")(**avg, target=t(0.9), chosen_win_rate=t(0.6), rejected_win_rate=t(0.55))
    assert both.loss.item() == pytest.approx(0.0)  # the win rates against y'' take precedence
    with pytest.raises(ValueError, match="needs target"):
        get("egpo")(**avg)


# ---------------------------------------------------------------- shapes that would broadcast (issue 9 item 17)


@pytest.mark.parametrize("name", CANONICAL)
def test_losses_refuse_shapes_that_would_broadcast(name):
    """(B, 1) against (B,) would broadcast into a (B, B) loss: every tensor input refuses it, naming itself."""
    fields = inputs_for(name, full_batch("random"))
    fn, hp = spec(name).fn, get(name, **hyperparameters_for(name)).hyperparameters
    per_token = ("_token_logps", "chosen_mask", "rejected_mask", "_log_sum_sq_probs")
    for arg, value in fields.items():
        if arg.endswith(per_token):
            continue  # (B, T) inputs of modifiers (WPO, LD-DPO) that default settings do not read
        bad = dict(fields, **{arg: value.unsqueeze(-1)})
        with pytest.raises(ValueError, match=arg) as info:
            fn(**bad, **hp)
        assert str(tuple(value.unsqueeze(-1).shape)) in str(info.value), (arg, str(info.value))


def test_broadcastable_inputs_still_broadcast():
    a, b = _random((5,), 1), _random((5,), 2)
    bt = get("bt")
    full = bt(chosen_rewards=a, rejected_rewards=b, margin=torch.full((5,), 0.3, dtype=torch.float64)).loss
    for margin in (torch.tensor(0.3, dtype=torch.float64), torch.tensor([0.3], dtype=torch.float64)):
        assert torch.allclose(bt(chosen_rewards=a, rejected_rewards=b, margin=margin).loss, full)
    with pytest.raises(ValueError, match=r"margin has shape \(3,\), which does not broadcast to the batch shape \(5,\)"):
        bt(chosen_rewards=a, rejected_rewards=b, margin=torch.zeros(3, dtype=torch.float64))
    with pytest.raises(TypeError, match="margin must be a torch.Tensor or a number"):
        losses.bt_loss(chosen_rewards=a, rejected_rewards=b, margin=[0.3] * 5)


# ---------------------------------------------------------------- transforms


def test_reward_transforms():
    assert logsigmoid_reward(t(2.0), 2.0).item() == pytest.approx(-LOG2)
    r = torch.linspace(-5, 5, 11, dtype=torch.float64)
    u = logsigmoid_reward(r, 0.0)
    assert torch.all(u < 0) and torch.all(torch.diff(u) > 0) and torch.all(torch.diff(torch.diff(u)) < 0)
    both = conjunction_reward([t(1.0), t(-1.0)], [0.0, 0.0])
    assert both.item() == pytest.approx(-math.log1p(math.exp(-1.0)) - math.log1p(math.exp(1.0)))
    assert lambda_harmonic_reward(t(0.8), t(0.6), lam=0.3).item() == pytest.approx(0.648649, abs=1e-6)
    i_sim, t_sim = _uniform((50,), 1, 0.01, 1.0), _uniform((50,), 2, 0.01, 1.0)
    assert torch.all(lambda_harmonic_reward(i_sim, t_sim, lam=0.4) <= 0.4 * i_sim + 0.6 * t_sim + 1e-12)
    with pytest.raises(TypeError):
        lambda_harmonic_reward(t(0.8), t(0.6), 0.3)  # lam is keyword-only


# ---------------------------------------------------------------- training on a toy problem


@pytest.mark.parametrize("name", ["simpo", "dno", "todo", "sppo", "dpo-pl"])
def test_tiny_linear_policy_learns_preferences(name):
    """A softmax-linear policy over 6 responses for 4 prompts learns which response is preferred."""
    torch.manual_seed(0)
    n_prompts, n_responses = 4, 6
    preferred = torch.tensor([2, 5, 0, 3])
    weights0 = 0.1 * torch.randn(n_prompts, n_responses, dtype=torch.float64)
    weights = torch.nn.Parameter(weights0.clone())
    optimizer = torch.optim.Adam([weights], lr=0.05)
    prompt_idx = torch.arange(n_prompts).repeat_interleave(n_responses - 1)
    rejected = torch.tensor([r for p in range(n_prompts) for r in range(n_responses) if r != preferred[p]])
    chosen = preferred[prompt_idx]
    n = len(prompt_idx)
    with torch.no_grad():
        ref = weights0[prompt_idx].log_softmax(-1)
    configs = {"simpo": {"beta": 2.0}, "dno": {"beta": 0.5}, "todo": {"beta": 0.5}, "sppo": {"beta": 0.1},
               "dpo-pl": {"beta": 0.5}}
    loss_fn = get(name, **configs[name])
    for _ in range(150):
        lp = weights[prompt_idx].log_softmax(-1)
        pw, pl = lp.gather(1, chosen[:, None])[:, 0], lp.gather(1, rejected[:, None])[:, 0]
        rw, rl = ref.gather(1, chosen[:, None])[:, 0], ref.gather(1, rejected[:, None])[:, 0]
        batch = PreferenceBatch(
            policy_chosen_logps=pw, policy_rejected_logps=pl, ref_chosen_logps=rw, ref_rejected_logps=rl,
            prev_chosen_logps=rw, prev_rejected_logps=rl, chosen_lengths=torch.ones(n), rejected_lengths=torch.ones(n),
            is_tie=torch.zeros(n, dtype=torch.bool), chosen_win_rate=torch.full((n,), 0.9, dtype=torch.float64),
            rejected_win_rate=torch.full((n,), 0.1, dtype=torch.float64),
            policy_logps=torch.stack([pw, pl], 1), ref_logps=torch.stack([rw, rl], 1))
        out = loss_fn(batch)
        optimizer.zero_grad()
        out.loss.mean().backward()
        optimizer.step()
    before = weights0.softmax(-1)[torch.arange(n_prompts), preferred]
    after = weights.detach().softmax(-1)[torch.arange(n_prompts), preferred]
    assert torch.all(after > before + 0.2), (name, before, after)
    assert out.accuracy.mean().item() == 1.0


# ---------------------------------------------------------------- review fixes (issue 10, A2)


def test_pro_logs_finite_margins_for_a_single_real_response():
    # the old code logged NaN as the second-best reward of a one-response list, so margins.mean() was NaN
    s, r = t(-1.0, -2.0, 7.0).expand(2, 3).clone(), t(3.0, 1.0, 0.0).expand(2, 3).clone()
    mask = torch.tensor([[True, True, True], [True, False, False]])
    out = get("pro", sft_weight=0.0)(policy_avg_logps=s, response_scores=r, list_mask=mask)
    assert torch.isfinite(out.margins).all() and torch.isfinite(out.loss).all()
    assert out.rejected_rewards.tolist() == [-2.0, -1.0] and out.margins.tolist() == [1.0, 0.0]
    assert out.loss[1].item() == 0.0  # one response: nothing to rank
    # a (B, 1) list logs the same reward twice too (it logged no margins at all)
    single = get("pro", sft_weight=0.0)(policy_avg_logps=s[:, :1], response_scores=r[:, :1])
    assert single.margins.tolist() == [0.0, 0.0] and single.accuracy.tolist() == [0.0, 0.0]


@pytest.mark.parametrize("name", ["plackett-luce", "dpo-pl", "pro"])
def test_listwise_losses_refuse_rows_without_a_real_response(name):
    mask = torch.tensor([[True, True, False], [False, False, False], [True, False, False], [False] * 3])
    fields = {k: v for k, v in inputs_for(name, full_batch()).items()}
    fields["list_mask"] = mask
    with pytest.raises(ValueError, match=r"list_mask rows \[1, 3\] \(of 4\) have no real response"):
        get(name, **hyperparameters_for(name))(**fields)
    fields["list_mask"] = mask | torch.tensor([[False], [True], [False], [True]])
    out = get(name, **hyperparameters_for(name))(**fields)
    assert all(torch.isfinite(v).all() for v in (out.loss, out.chosen_rewards, out.margins, out.accuracy))


def _most_probable(d, a, outcome):
    """1.0 where ``outcome`` (0 win, 2 tie) is strictly the most probable; equal probabilities are a miss."""
    # closed form, written out here: P(win) = sig(d - a), P(loss) = sig(-d - a), P(tie) = (e^{2a} - 1) P(win) P(loss)
    win, loss = torch.sigmoid(d - a), torch.sigmoid(-d - a)
    probs = torch.stack([win, loss, math.expm1(2 * a) * win * loss])
    others = torch.cat([probs[:outcome], probs[outcome + 1:]])
    return (probs[outcome] > others.max(0).values).double()


@pytest.mark.parametrize("a", [0.5, 1.0])
def test_tobt_and_todo_accuracy_is_the_most_probable_outcome(a):
    d = t(-3.0, -0.2, 0.0, 0.2, 3.0, 1e4, -1e4)
    n = d.numel()
    for tie in (True, False):
        is_tie = torch.full((n,), tie)
        want = _most_probable(d, a, 2 if tie else 0)
        out = get("tobt", tie_threshold=a)(chosen_rewards=d, rejected_rewards=torch.zeros(n, dtype=torch.float64),
                                           is_tie=is_tie)
        assert torch.equal(out.accuracy, want), (a, tie, out.accuracy)
        zero = torch.zeros(n, dtype=torch.float64)
        out = get("todo", beta=0.5, tie_threshold=a)(policy_chosen_logps=2 * d, policy_rejected_logps=zero,
                                                     ref_chosen_logps=zero, ref_rejected_logps=zero, is_tie=is_tie)
        assert torch.equal(out.accuracy, want), (a, tie, out.accuracy)
        p_tie = math.expm1(2 * a) * torch.sigmoid(d - a) * torch.sigmoid(-d - a)
        assert torch.allclose(out.extras["tie_probability"], p_tie, rtol=1e-12, atol=0)
    # the old margin > 0 rule called a tie at gap +3 a hit; at a = 1 a tie at gap 0 is the most probable outcome
    tied = get("tobt", tie_threshold=a)(chosen_rewards=t(3.0, 0.0), rejected_rewards=t(0.0, 0.0),
                                        is_tie=torch.tensor([True, True]))
    assert tied.accuracy.tolist() == [0.0, 1.0 if a > math.log(2) else 0.0]


def _dmpo_fields(chosen_turns, rejected_turns, j=2):
    g = _random((2, j), 21) - 5
    return dict(policy_chosen_turn_logps=g, policy_rejected_turn_logps=g - 1, ref_chosen_turn_logps=g - 0.5,
                ref_rejected_turn_logps=g - 0.5, chosen_turns=torch.tensor(chosen_turns),
                rejected_turns=torch.tensor(rejected_turns))


@pytest.mark.parametrize("chosen,rejected,message", [
    ([1, 5], [1, 2], r"chosen_turns must be whole numbers from 1 to 2 .*rows \[1\] have \[5\]"),
    ([2, 1], [0, 2], r"rejected_turns must be whole numbers from 1 to 2 .*rows \[0\] have \[0\]"),
    ([-1, 3], [1, 1], r"chosen_turns .*rows \[0, 1\] have \[-1, 3\]"),
    ([1.5, 1.0], [1.0, 1.0], r"chosen_turns .*rows \[0\] have \[1.5\]"),
])
def test_dmpo_refuses_impossible_turn_counts(chosen, rejected, message):
    with pytest.raises(ValueError, match=message):
        get("dmpo")(**_dmpo_fields(chosen, rejected))


def test_dmpo_ignores_whatever_the_padded_turns_hold():
    fields = _dmpo_fields([1, 2], [2, 1])
    want = get("dmpo")(**fields).loss
    for filler in (-math.inf, math.nan):
        padded = {k: v.clone() for k, v in fields.items()}
        padded["policy_chosen_turn_logps"][0, 1] = filler  # past chosen_turns[0] = 1
        padded["ref_rejected_turn_logps"][1, 1] = filler  # past rejected_turns[1] = 1
        leaves = {k: padded[k].requires_grad_() for k in padded if k.endswith("turn_logps")}
        out = get("dmpo")(**padded)
        assert torch.equal(out.loss.detach(), want)  # 0 * -inf was NaN
        out.loss.sum().backward()
        assert all(torch.isfinite(v.grad).all() for v in leaves.values())
        assert leaves["policy_chosen_turn_logps"].grad[0, 1].item() == 0.0


def test_batch_sums_ignore_minus_inf_at_padded_tokens():
    # (tokens * mask).sum() was NaN when a padded position held -inf
    tokens = t(-1.0, -2.0, -math.inf, -math.inf).expand(2, 4).clone().requires_grad_()
    mask = torch.tensor([[True, True, False, False], [True, True, True, False]])
    tokens_finite_row = tokens.detach().clone()
    batch = PreferenceBatch.from_tensors(policy_chosen_token_logps=tokens, chosen_mask=mask)
    total = batch.get("policy_chosen_logps")
    assert total[0].item() == -3.0 and total[1].item() == -math.inf  # a real -inf token stays -inf
    assert batch.get("policy_chosen_avg_logps")[0].item() == -1.5
    total[0].backward()
    assert tokens.grad.tolist() == [[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
    assert torch.equal(tokens.detach(), tokens_finite_row)
