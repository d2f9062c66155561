"""PreferenceBatch derivations and the registry's calling convention, on kernels written here."""

import inspect

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from bradley.nn import registry  # noqa: E402
from bradley.nn.batch import BATCH_FIELDS, PreferenceBatch  # noqa: E402
from bradley.nn.logprobs import sequence_logprobs  # noqa: E402


@pytest.fixture
def scratch_registry(monkeypatch):
    """A registry holding only the kernels a test registers (the real one is left alone)."""
    registry._ensure_loaded()
    monkeypatch.setattr(registry, "_REGISTRY", {})
    monkeypatch.setattr(registry, "_ensure_loaded", lambda: None)

    @registry.register("toy-dpo", "toy-alias", trl="sigmoid", source="test", symbols={"beta": "tau"})
    def toy(
        policy_chosen_logps,
        policy_rejected_logps,
        ref_chosen_logps,
        ref_rejected_logps,
        target=None,
        *,
        beta=0.1,
        label_smoothing=0.0,
    ):
        rw, rl = policy_chosen_logps - ref_chosen_logps, policy_rejected_logps - ref_rejected_logps
        p = (1.0 - label_smoothing) if target is None else target
        return registry.output(registry.soft_logistic(beta * (rw - rl), p), beta * rw, beta * rl)

    @registry.register("toy-avg", kind="reward")
    def toy_avg(policy_chosen_avg_logps, policy_rejected_avg_logps, *, lam):
        return registry.output(lam * (policy_rejected_avg_logps - policy_chosen_avg_logps), None, None)

    return toy, toy_avg


def _pairs(dtype=torch.float64):
    return {
        "policy_chosen_logps": torch.tensor([-10.0, -3.0], dtype=dtype),
        "policy_rejected_logps": torch.tensor([-20.0, -4.0], dtype=dtype),
        "ref_chosen_logps": torch.tensor([-15.0, -3.5], dtype=dtype),
        "ref_rejected_logps": torch.tensor([-15.0, -3.5], dtype=dtype),
    }


# ---------------------------------------------------------------- PreferenceBatch


def test_batch_fields_are_the_dataclass_fields():
    names = [p for p in inspect.signature(PreferenceBatch).parameters]
    assert names == list(BATCH_FIELDS)


def test_batch_derives_sums_averages_and_lengths_from_tokens():
    tokens = torch.tensor([[-1.0, -2.0, -4.0], [-0.5, 9.0, 9.0]])
    mask = torch.tensor([[True, True, True], [True, False, False]])
    batch = PreferenceBatch(policy_chosen_token_logps=tokens, chosen_mask=mask)
    assert batch.get("chosen_lengths").tolist() == [3, 1]
    # masked entries (the 9s) must not count
    assert batch.get("policy_chosen_logps").tolist() == [-7.0, -0.5]
    assert batch.get("policy_chosen_avg_logps").tolist() == pytest.approx([-7.0 / 3, -0.5])
    assert batch.get("policy_rejected_logps") is None and batch.get("ref_chosen_avg_logps") is None
    # a given value wins over a derivable one
    given = batch.replace(policy_chosen_logps=torch.tensor([1.0, 2.0]))
    assert given.get("policy_chosen_logps").tolist() == [1.0, 2.0]
    assert given.get("policy_chosen_avg_logps").tolist() == pytest.approx([1.0 / 3, 2.0])


def test_batch_zero_length_response_gives_finite_average():
    batch = PreferenceBatch(policy_chosen_logps=torch.tensor([0.0]), chosen_lengths=torch.tensor([0]))
    assert batch.get("policy_chosen_avg_logps").item() == 0.0


def test_batch_rejects_unknown_fields_and_non_tensors():
    with pytest.raises(TypeError, match="unknown preference-batch field.*policy_chosen_logp\\b"):
        PreferenceBatch.from_tensors(policy_chosen_logp=torch.zeros(1))
    with pytest.raises(TypeError, match="is_tie must be a torch.Tensor"):
        PreferenceBatch(is_tie=[True, False])
    with pytest.raises(KeyError, match="unknown preference-batch field"):
        PreferenceBatch().get("nope")


def test_batch_from_logprobs_matches_sequence_logprobs():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 7, generator=g, dtype=torch.float64)
    labels = torch.tensor([[-100, 1, 2, 3, -100], [-100, -100, 4, 5, 6]])
    chosen = sequence_logprobs(logits, labels)
    rejected = sequence_logprobs(logits.flip(0), labels)
    batch = PreferenceBatch.from_logprobs(chosen, rejected, chosen, rejected, is_tie=torch.tensor([False, True]))
    assert torch.equal(batch.get("policy_chosen_logps"), chosen.sum)
    assert torch.equal(batch.get("ref_rejected_avg_logps"), rejected.avg)
    assert torch.equal(batch.get("chosen_lengths"), chosen.lengths)
    assert batch.is_tie.tolist() == [False, True]
    # the per-token values re-derive the same sums
    rederived = PreferenceBatch(policy_chosen_token_logps=chosen.per_token, chosen_mask=chosen.mask)
    assert torch.allclose(rederived.get("policy_chosen_logps"), chosen.sum, atol=1e-12)
    with pytest.raises(ValueError, match="both ref_chosen and ref_rejected"):
        PreferenceBatch.from_logprobs(chosen, rejected, chosen)


# ---------------------------------------------------------------- registry mechanics


def test_batch_and_keyword_calls_agree_and_match_closed_form(scratch_registry):
    loss = registry.get("toy-dpo", beta=0.1)
    by_keywords = loss(**_pairs())
    by_batch = loss(PreferenceBatch(**_pairs()))
    assert torch.equal(by_keywords.loss, by_batch.loss)
    # beta = 0.1, Delta = 10 -> -log sigmoid(1) = 0.313262 (the sheet's B1 test value)
    assert by_keywords.loss[0].item() == pytest.approx(0.3132616875, abs=1e-10)
    assert by_keywords.accuracy.tolist() == [1.0, 1.0]
    assert torch.equal(by_keywords.margins, by_keywords.chosen_rewards - by_keywords.rejected_rewards)
    assert not by_keywords.chosen_rewards.requires_grad
    # an alias is the same loss
    assert torch.equal(registry.get("toy-alias", beta=0.1)(**_pairs()).loss, by_keywords.loss)


def test_positional_tensors_are_refused(scratch_registry):
    loss = registry.get("toy-dpo")
    with pytest.raises(TypeError, match="not a positional Tensor"):
        loss(torch.zeros(2))
    with pytest.raises(TypeError):
        loss(PreferenceBatch(**_pairs()), torch.zeros(2))


def test_unknown_and_missing_hyperparameters_list_the_valid_ones(scratch_registry):
    valid = "valid: beta=0.1, label_smoothing=0.0"
    with pytest.raises(ValueError, match=r"no hyperparameter 'tau' \(tau is now beta.*" + valid):
        registry.get("toy-dpo", tau=0.1)
    with pytest.raises(ValueError, match="no hyperparameter 'epsilon' .*label_smoothing"):
        registry.get("toy-dpo", epsilon=0.1)
    with pytest.raises(ValueError, match=r"needs hyperparameter\(s\) lam; valid: lam \(required\)"):
        registry.get("toy-avg")
    with pytest.raises(KeyError, match="unknown loss 'nope'; available: toy-alias, toy-avg, toy-dpo"):
        registry.get("nope")


def test_missing_inputs_are_named_with_how_to_get_them(scratch_registry):
    loss = registry.get("toy-avg", lam=1.0)
    with pytest.raises(ValueError, match="needs policy_chosen_avg_logps .*or policy_chosen_logps with chosen_lengths"):
        loss(policy_rejected_avg_logps=torch.zeros(2))
    # derivable inputs are derived: averages from per-token values and masks
    tokens = torch.tensor([[-1.0, -3.0], [-2.0, 0.0]])
    mask = torch.tensor([[True, True], [True, False]])
    out = loss(
        policy_chosen_token_logps=tokens, chosen_mask=mask, policy_rejected_token_logps=2 * tokens, rejected_mask=mask
    )
    assert out.loss.tolist() == [-2.0, -2.0]


def test_half_precision_inputs_are_computed_in_float32(scratch_registry):
    out = registry.get("toy-dpo")(**_pairs(torch.bfloat16))
    assert out.loss.dtype == torch.float32
    reference = registry.get("toy-dpo")(**{k: v.float().double() for k, v in _pairs(torch.bfloat16).items()})
    assert torch.allclose(out.loss.double(), reference.loss, atol=1e-6)


def test_per_example_soft_target_is_an_input(scratch_registry):
    target = torch.tensor([0.9, 0.5], dtype=torch.float64)
    out = registry.get("toy-dpo", beta=1.0)(**_pairs(), target=target)
    z = torch.tensor([10.0, 1.0], dtype=torch.float64)
    expected = -(target * F.logsigmoid(z) + (1 - target) * F.logsigmoid(-z))
    assert torch.allclose(out.loss, expected, atol=1e-12)


def test_combined_loss_is_the_weighted_sum(scratch_registry):
    combined = registry.get(["toy-dpo", "toy-avg"], loss_weights=[1.0, 0.5], beta=0.2, lam=3.0)
    batch = PreferenceBatch(
        **_pairs(),
        chosen_lengths=torch.tensor([2, 4]),
        rejected_lengths=torch.tensor([5, 1]),
    )
    first = registry.get("toy-dpo", beta=0.2)(batch)
    second = registry.get("toy-avg", lam=3.0)(batch)
    out = combined(batch)
    assert torch.allclose(out.loss, first.loss + 0.5 * second.loss, atol=1e-12)
    assert torch.equal(out.chosen_rewards, first.chosen_rewards)
    assert torch.equal(out.extras["toy-avg_loss"], second.loss)
    with pytest.raises(ValueError, match="no loss in .* has hyperparameter 'gamma'"):
        registry.get(["toy-dpo", "toy-avg"], lam=1.0, gamma=2.0)
    with pytest.raises(ValueError, match="loss_weights has 1 entries for 2 losses"):
        registry.get(["toy-dpo", "toy-avg"], loss_weights=[1.0], lam=1.0)
    with pytest.raises(ValueError, match="loss_weights applies to a list"):
        registry.get("toy-dpo", loss_weights=[1.0])


def test_registration_enforces_the_naming_rules(scratch_registry):
    with pytest.raises(ValueError, match="input 'chosen' is not a PreferenceBatch field"):
        registry.register("bad-input")(lambda chosen, *, beta=0.1: None)
    with pytest.raises(ValueError, match="hyperparameter 'eta' is not in"):

        @registry.register("bad-hparam")
        def bad(policy_chosen_logps, *, eta=1.0):
            return None

    with pytest.raises(ValueError, match="already registered"):
        registry.register("toy-dpo")(lambda policy_chosen_logps: None)


def test_fixed_hyperparameters_cannot_be_set(scratch_registry):
    toy = scratch_registry[0]
    registry.register("toy-cdpo", fixed={"label_smoothing": 0.25})(toy)
    loss = registry.get("toy-cdpo", beta=1.0)
    assert loss.hyperparameters["label_smoothing"] == 0.25
    with pytest.raises(ValueError, match="label_smoothing is fixed by the name 'toy-cdpo'"):
        registry.get("toy-cdpo", label_smoothing=0.1)
    z = torch.tensor([10.0, 1.0], dtype=torch.float64)
    assert torch.allclose(loss(**_pairs()).loss, -(0.75 * F.logsigmoid(z) + 0.25 * F.logsigmoid(-z)), atol=1e-12)


def test_loss_table_documents_every_name(scratch_registry):
    table = registry.loss_table()
    assert set(table["name"]) == {"toy-dpo", "toy-avg"}
    row = table.set_index("name").loc["toy-dpo"]
    assert row["aliases"] == "toy-alias" and row["trl"] == "sigmoid" and row["symbols"] == "beta = tau"
    assert row["optional_inputs"] == "target"
    assert len(table) == 2


def test_trl_users_reaching_for_label_smoothing_on_sigmoid_are_pointed_to_cdpo():
    from bradley.nn import get

    for name in ("sigmoid", "dpo"):
        with pytest.raises(ValueError, match="TRL's sigmoid ignores label_smoothing; use 'cdpo'"):
            get(name, label_smoothing=0.1)


def test_keyword_tensors_a_loss_does_not_read_are_refused(scratch_registry):
    loss = registry.get("toy-avg", lam=1.0)
    # fields it derives its inputs from are fine ...
    loss(
        policy_chosen_logps=torch.tensor([-2.0]),
        chosen_lengths=torch.tensor([2]),
        policy_rejected_avg_logps=torch.tensor([-1.0]),
    )
    # ... a soft label it never reads would be dropped silently
    with pytest.raises(ValueError, match="loss 'toy-avg' does not use target; it reads .*chosen_lengths"):
        loss(
            policy_chosen_avg_logps=torch.tensor([-1.0]),
            policy_rejected_avg_logps=torch.tensor([-1.0]),
            target=torch.tensor([0.7]),
        )
    # a batch may carry fields a loss ignores
    loss(
        PreferenceBatch(
            policy_chosen_avg_logps=torch.zeros(1), policy_rejected_avg_logps=torch.zeros(1), is_tie=torch.zeros(1)
        )
    )
    combined = registry.get(["toy-dpo", "toy-avg"], lam=1.0)
    with pytest.raises(ValueError, match="does not use is_tie"):
        combined(
            **_pairs(),
            chosen_lengths=torch.tensor([1, 1]),
            rejected_lengths=torch.tensor([1, 1]),
            is_tie=torch.zeros(2),
        )


def test_hyperparameters_given_to_the_call_or_as_tensors_are_explained(scratch_registry):
    with pytest.raises(TypeError, match=r"beta is a hyperparameter: give it to get\('toy-dpo', beta=...\)"):
        registry.get("toy-dpo")(**_pairs(), beta=0.1)
    with pytest.raises(TypeError, match="label_smoothing must be a number, got a tensor; .*`target` input"):
        registry.get("toy-dpo", label_smoothing=torch.tensor([0.1, 0.2]))
    for beta in (0.0, -1.0):
        with pytest.raises(ValueError, match="beta must be positive"):
            registry.get("toy-dpo", beta=beta)
        with pytest.raises(ValueError, match="beta must be positive"):
            scratch_registry[0](**_pairs(), beta=beta)  # the plain kernel is checked too
