"""bradley.nn.logprobs: logits / model outputs / chunked LM head / HF models -> SequenceLogProbs.

Truths used: per-position loops over explicit softmaxes, the plain full-logits
path (autograd through log_softmax), finite differences (gradcheck) and the
model's own ``model(...).logits``.
"""

import math

import pytest

torch = pytest.importorskip("torch")

from bradley.nn.logprobs import (  # noqa: E402
    SequenceLogProbs,
    chunked_sequence_logprobs,
    model_logprobs,
    paired_model_logprobs,
    sequence_kl,
    sequence_logprobs,
)

F64 = torch.float64


def _random(shape, seed=0, dtype=F64, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=g, dtype=F64) * scale).to(dtype)


def _labels(batch, steps, vocab, seed=0, prompt=(2, 0, 3)):
    g = torch.Generator().manual_seed(seed + 100)
    labels = torch.randint(0, vocab, (batch, steps), generator=g)
    for row, n_prompt in enumerate(prompt[:batch]):
        labels[row, :n_prompt] = -100
    return labels


def _maxdiff(a, b):
    return (a - b).abs().max().item()


# ---------------------------------------------------------------- sequence_logprobs / sequence_kl
# (the first three are copies of tests in test_nn_losses.py, which keep running there)


def test_sequence_logprobs_masks_and_dtypes():
    logits = _random((2, 5, 7), 1)
    labels = torch.randint(0, 7, (2, 5))
    labels[0, :3] = -100
    out = sequence_logprobs(logits, labels)
    manual = torch.zeros(2, dtype=F64)
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


def test_sequence_kl_against_explicit_sum():
    ref, pol = _random((2, 6, 9), 1), _random((2, 6, 9), 2)
    labels = torch.randint(0, 9, (2, 6))
    labels[:, :2] = -100
    kl = sequence_kl(ref, pol, labels)
    p_ref = ref[:, :-1].softmax(-1)
    manual = (p_ref * (p_ref.log() - pol[:, :-1].log_softmax(-1))).sum(-1)
    manual = (manual * (labels[:, 1:] != -100)).sum(-1)
    assert torch.allclose(kl, manual) and torch.all(kl >= 0)
    assert torch.allclose(sequence_kl(ref, ref, labels), torch.zeros(2, dtype=F64), atol=1e-12)


def test_sequence_kl_refuses_mismatched_logits():
    ref, labels = _random((2, 6, 9), 1), torch.randint(0, 9, (2, 6))
    with pytest.raises(ValueError, match=r"policy_logits has shape \(2, 6, 8\)"):
        sequence_kl(ref, _random((2, 6, 8), 2), labels)


def test_sequence_logprobs_accepts_model_outputs():
    transformers = pytest.importorskip("transformers")
    logits = _random((2, 5, 7), 3)
    labels = _labels(2, 5, 7)
    expected = sequence_logprobs(logits, labels)
    hf = transformers.modeling_outputs.CausalLMOutputWithPast(logits=logits)
    got = sequence_logprobs(hf, labels)
    assert torch.equal(got.per_token, expected.per_token) and torch.equal(got.sum, expected.sum)

    class Output:  # anything with a .logits tensor
        pass

    out = Output()
    out.logits = logits
    assert torch.equal(sequence_logprobs(out, labels).sum, expected.sum)
    with pytest.raises(TypeError, match="got list"):
        sequence_logprobs([logits], labels)
    with pytest.raises(ValueError, match=r"extra has unknown name\(s\) \['entropie'\]"):
        sequence_logprobs(logits, labels, extra=("entropie",))


def test_extras_against_explicit_probabilities():
    logits = _random((2, 6, 11), 4, scale=3.0)
    labels = _labels(2, 6, 11)
    out = sequence_logprobs(logits, labels, extra=("entropy", "log_sum_sq_probs"))
    plain = sequence_logprobs(logits, labels)
    assert plain.entropy is None and plain.log_sum_sq_probs is None
    for b in range(2):
        for pos in range(5):
            p = torch.exp(logits[b, pos]) / torch.exp(logits[b, pos]).sum()
            scored = bool(labels[b, pos + 1] != -100)
            want_h = -(p * p.log()).sum().item() if scored else 0.0
            want_sq = math.log((p * p).sum().item()) if scored else 0.0
            assert out.entropy[b, pos].item() == pytest.approx(want_h, abs=1e-12)
            assert out.log_sum_sq_probs[b, pos].item() == pytest.approx(want_sq, abs=1e-12)
    assert not out.log_sum_sq_probs.requires_grad


# ---------------------------------------------------------------- chunked head vs the full logits


def _head_problem(batch=3, steps=9, hidden=6, vocab=23, seed=0, dtype=F64, with_bias=True):
    h = _random((batch, steps, hidden), seed, dtype).requires_grad_()
    w = _random((vocab, hidden), seed + 1, dtype, scale=0.7).requires_grad_()
    b = _random((vocab,), seed + 2, dtype).requires_grad_() if with_bias else None
    labels = _labels(batch, steps, vocab, seed)
    return h, w, b, labels


def _naive(h, w, b, labels, scale=1.0, softcap=None, temperature=1.0, mask=None, extra=()):
    z = h @ w.T
    if b is not None:
        z = z + b
    z = z * scale
    if softcap is not None:
        z = softcap * torch.tanh(z / softcap)
    return sequence_logprobs(z / temperature, labels, mask, extra=extra)


def _objective(out: SequenceLogProbs, seed=7):
    # Different upstream weights per token and per sequence, so every gradient path is exercised.
    c_tok = _random(out.per_token.shape, seed).to(out.per_token.dtype)
    c_seq = _random(out.avg.shape, seed + 1).to(out.avg.dtype)
    total = (c_tok * out.per_token).sum() + (c_seq * out.avg).sum()
    if out.entropy is not None:
        total = total + 0.3 * (c_tok * out.entropy).sum()
    return total


def _grads(out, *params):
    return torch.autograd.grad(_objective(out), [p for p in params if p is not None])


@pytest.mark.parametrize("chunk_size", [1, 4, 7, 1000])
@pytest.mark.parametrize(
    "transform",
    [
        {},
        {"softcap": 2.5},
        {"scale": 0.6, "softcap": 1.5, "temperature": 0.7},
        {"temperature": 1.9},
    ],
)
def test_chunked_equals_naive_float64(chunk_size, transform):
    h, w, b, labels = _head_problem()
    extra = ("entropy", "log_sum_sq_probs")
    naive = _naive(h, w, b, labels, **transform, extra=extra)
    fast = chunked_sequence_logprobs(
        h,
        w,
        labels,
        bias=b,
        chunk_size=chunk_size,
        logit_scale=transform.get("scale", 1.0),
        softcap=transform.get("softcap"),
        temperature=transform.get("temperature", 1.0),
        extra=extra,
    )
    assert torch.equal(fast.mask, naive.mask) and torch.equal(fast.lengths, naive.lengths)
    for name in ("per_token", "sum", "avg", "entropy", "log_sum_sq_probs"):
        assert _maxdiff(getattr(fast, name), getattr(naive, name)) < 1e-12, name
    for g_fast, g_naive in zip(_grads(fast, h, w, b), _grads(naive, h, w, b)):
        assert g_naive.abs().max() > 1e-3  # the comparison is not between zeros
        assert _maxdiff(g_fast, g_naive) < 1e-12


def test_chunked_gradcheck():
    # Finite differences, independent of the log_softmax reference.
    h, w, b, labels = _head_problem(batch=2, steps=5, hidden=3, vocab=7)

    def f(h_, w_, b_):
        out = chunked_sequence_logprobs(h_, w_, labels, bias=b_, chunk_size=3, softcap=2.0, extra=("entropy",))
        return out.per_token, out.entropy

    assert torch.autograd.gradcheck(f, (h, w, b))


def test_chunked_only_scores_labelled_positions():
    # Prompt/padding hidden states never enter the head: poisoning them changes nothing.
    h, w, b, labels = _head_problem()
    out = chunked_sequence_logprobs(h, w, labels, bias=b, chunk_size=5)
    poisoned = h.detach().clone()
    unscored = ~(labels[:, 1:] != -100)
    poisoned[:, :-1][unscored] = float("nan")
    poisoned[:, -1] = float("nan")  # the last position predicts nothing
    again = chunked_sequence_logprobs(poisoned, w, labels, bias=b, chunk_size=5)
    assert torch.equal(again.per_token, out.per_token.detach())


def test_chunked_explicit_mask_matches_ignore_index():
    h, w, b, labels = _head_problem()
    mask = labels != -100
    by_mask = chunked_sequence_logprobs(h, w, labels.clamp(min=0), mask, b, chunk_size=4)
    by_index = chunked_sequence_logprobs(h, w, labels, bias=b, chunk_size=4)
    assert torch.equal(by_mask.per_token, by_index.per_token)


def test_all_masked_rows_and_batches_stay_finite():
    h, w, b, labels = _head_problem()
    labels[1] = -100  # one row with no response token
    out = chunked_sequence_logprobs(h, w, labels, bias=b, chunk_size=4, extra=("entropy", "log_sum_sq_probs"))
    naive = _naive(h, w, b, labels)
    assert out.lengths[1].item() == 0 and out.sum[1].item() == 0.0 and out.avg[1].item() == 0.0
    assert _maxdiff(out.avg, naive.avg) < 1e-12
    grads = _grads(out, h, w, b)
    assert all(torch.isfinite(g).all() for g in grads)
    assert torch.all(grads[0][1] == 0)  # the empty row gets no gradient

    labels[:] = -100  # nothing scored at all: a differentiable zero, zero gradients
    empty = chunked_sequence_logprobs(h, w, labels, bias=b, chunk_size=4)
    assert empty.per_token.abs().sum().item() == 0.0 and empty.lengths.tolist() == [0, 0, 0]
    empty.avg.sum().backward()
    assert all(torch.all(p.grad == 0) for p in (h, w, b))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_chunked_low_precision_matches_naive(dtype):
    h, w, b, labels = _head_problem(batch=2, steps=33, hidden=16, vocab=301, seed=5, dtype=dtype)
    fast = chunked_sequence_logprobs(h, w, labels, bias=b, chunk_size=10, extra=("entropy",))
    naive = _naive(h, w, b, labels, extra=("entropy",))
    # Same head product in the inputs' dtype, softmax in float32 on both paths: only summation order differs.
    assert fast.per_token.dtype == torch.float32
    assert _maxdiff(fast.per_token, naive.per_token) < 1e-5
    assert _maxdiff(fast.entropy, naive.entropy) < 1e-5
    # Against the float64 truth from the same (rounded) inputs, the bf16 head product costs ~|z| * 2**-8.
    exact = _naive(h.double(), w.double(), b.double(), labels)
    tol = 1e-4 if dtype == torch.float32 else 0.1
    assert _maxdiff(fast.per_token.double(), exact.per_token) < tol
    for g_fast, g_naive in zip(_grads(fast, h, w, b), _grads(naive, h, w, b)):
        assert g_fast.dtype == dtype
        rel = _maxdiff(g_fast.double(), g_naive.double()) / g_naive.double().abs().max().item()
        assert rel < (1e-5 if dtype == torch.float32 else 2e-2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fused_kernels_match_the_eager_path(dtype, monkeypatch):
    """The functions CUDA compiles into fused kernels, run eagerly here: same values and gradients."""
    import bradley.nn.logprobs as lp

    h, w, b, labels = _head_problem(batch=2, steps=33, hidden=16, vocab=301, seed=7, dtype=dtype)
    eager = chunked_sequence_logprobs(h, w, labels, bias=b, chunk_size=10)
    eager_grads = [g.clone() for g in _grads(eager, h, w, b)]
    calls = []

    def fused(device):
        calls.append(device)
        return {"forward": lp._plain_forward, "backward": lp._plain_backward}

    monkeypatch.setattr(lp, "_fused", fused)
    for p in (h, w, b):
        p.grad = None
    fast = chunked_sequence_logprobs(h, w, labels, bias=b, chunk_size=10)
    assert calls  # the fused path ran
    assert _maxdiff(fast.per_token, eager.per_token) < 1e-6
    for g_fast, g_eager in zip(_grads(fast, h, w, b), eager_grads):
        rel = _maxdiff(g_fast.double(), g_eager.double()) / g_eager.double().abs().max().item()
        assert rel < (1e-6 if dtype == torch.float32 else 1e-2)
    # extras and transforms keep the eager path
    calls.clear()
    chunked_sequence_logprobs(h, w, labels, chunk_size=10, extra=("entropy",), softcap=30.0)
    assert not calls


def test_chunked_extreme_logits_are_finite():
    h, w, b, labels = _head_problem()
    with torch.no_grad():
        w.mul_(1e4)  # logits of order 1e4-1e5
    for dtype in (torch.float32, torch.bfloat16):
        hd, wd = h.detach().to(dtype).requires_grad_(), w.detach().to(dtype).requires_grad_()
        out = chunked_sequence_logprobs(hd, wd, labels, chunk_size=4, extra=("entropy", "log_sum_sq_probs"))
        assert all(torch.isfinite(x).all() for x in (out.per_token, out.entropy, out.log_sum_sq_probs))
        out.sum.sum().backward()
        assert torch.isfinite(hd.grad).all() and torch.isfinite(wd.grad).all()


def test_chunked_argument_errors():
    h, w, b, labels = _head_problem()
    with pytest.raises(ValueError, match=r"hidden_states must be \(B, T, H\); got shape \(9, 6\)"):
        chunked_sequence_logprobs(h[0], w, labels)
    with pytest.raises(ValueError, match=r"labels must be \(B, T\) = \(3, 9\).*got \(3, 8\)"):
        chunked_sequence_logprobs(h, w, labels[:, :8])
    with pytest.raises(ValueError, match=r"lm_head_weight must be \(V, H\) with H = 6; got \(23, 5\)"):
        chunked_sequence_logprobs(h, w[:, :5], labels)
    with pytest.raises(ValueError, match=r"bias must be \(V,\) = \(23,\); got \(22,\)"):
        chunked_sequence_logprobs(h, w, labels, bias=b[:22])
    with pytest.raises(ValueError, match="chunk_size must be a positive int, got 0"):
        chunked_sequence_logprobs(h, w, labels, chunk_size=0)
    with pytest.raises(TypeError, match="hidden_states is torch.float64 but lm_head_weight is torch.float32"):
        chunked_sequence_logprobs(h, w.float(), labels)
    with pytest.raises(ValueError, match="temperature must be a positive finite number"):
        chunked_sequence_logprobs(h, w, labels, temperature=0.0)


# ---------------------------------------------------------------- memory: no (tokens, V) tensor


def _largest_saved(fn):
    sizes = []

    def pack(t):
        sizes.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return max(sizes)


def _largest_allocation(fn):
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    return max(e.cpu_memory_usage for e in prof.events())


def test_chunked_never_holds_full_logits():
    batch, steps, hidden, vocab, chunk = 2, 257, 32, 8000, 64
    h = _random((batch, steps, hidden), 0, torch.float32).requires_grad_()
    w = _random((vocab, hidden), 1, torch.float32, scale=0.1).requires_grad_()
    labels = _labels(batch, steps, vocab, prompt=(0, 0))
    tokens = batch * (steps - 1)
    full_bytes = tokens * vocab * 4

    def chunked():
        chunked_sequence_logprobs(h, w, labels, chunk_size=chunk).sum.sum().backward()

    def naive():
        _naive(h, w, None, labels).sum.sum().backward()

    # What autograd keeps between forward and backward: inputs and per-token vectors only.
    assert _largest_saved(chunked) <= max(h.numel(), w.numel())
    assert _largest_saved(naive) >= tokens * vocab  # the check can fail: the naive path keeps the logits
    # What is ever allocated at once (forward and backward): about one chunk's float32 logits.
    assert _largest_allocation(chunked) <= 1.01 * chunk * vocab * 4 < full_bytes / 4
    assert _largest_allocation(naive) >= full_bytes


# ---------------------------------------------------------------- Hugging Face models


def _llama(vocab=97, seed=0, **overrides):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=vocab,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        **overrides,
    )
    return transformers.LlamaForCausalLM(config).double()


def _batch(vocab=97, batch=3, steps=11, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (batch, steps), generator=g)
    attention = torch.ones_like(ids)
    attention[1, -3:] = 0  # right padding
    labels = ids.masked_fill(attention == 0, -100)
    labels[:, :4] = -100  # prompt
    return ids, labels, attention


def _param_grads(model, out):
    params = [p for p in model.parameters() if p.requires_grad]
    return params, torch.autograd.grad(_objective(out), params, allow_unused=True)


def _assert_model_paths_agree(model, ids, labels, attention, atol=1e-12, **kwargs):
    extra = ("entropy", "log_sum_sq_probs")
    naive = model_logprobs(model, ids, labels, attention, chunked=False, extra=extra, **kwargs)
    fast = model_logprobs(model, ids, labels, attention, chunk_size=5, extra=extra, **kwargs)
    # The reference is the model's own logits, not anything computed here.
    own = sequence_logprobs(model(input_ids=ids, attention_mask=attention), labels)
    assert _maxdiff(naive.per_token, own.per_token) == 0.0
    for name in ("per_token", "sum", "avg", "entropy", "log_sum_sq_probs"):
        assert _maxdiff(getattr(fast, name), getattr(naive, name)) < atol, name
    params, g_naive = _param_grads(model, naive)
    _, g_fast = _param_grads(model, fast)
    checked = 0
    for p, a, b in zip(params, g_fast, g_naive):
        if b is None:
            assert a is None or a.abs().max() == 0
            continue
        assert _maxdiff(a, b) <= atol * max(1.0, b.abs().max().item()), tuple(p.shape)
        checked += 1
    assert checked >= 2
    return fast


def test_model_logprobs_llama_chunked_equals_naive():
    model = _llama()
    ids, labels, attention = _batch()
    fast = _assert_model_paths_agree(model, ids, labels, attention)
    assert fast.lengths.tolist() == [7, 4, 7]


def test_model_logprobs_default_labels_ignore_padding():
    model = _llama()
    ids, _, attention = _batch()
    out = model_logprobs(model, ids, attention_mask=attention)
    assert out.lengths.tolist() == [10, 7, 10]  # every next token except padding


def test_model_logprobs_softcap_and_scales():
    transformers = pytest.importorskip("transformers")
    ids, labels, attention = _batch(vocab=64)
    small = {"vocab_size": 64, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1}
    heads = {"num_attention_heads": 2, "num_key_value_heads": 1}
    torch.manual_seed(0)
    gemma = transformers.Gemma2ForCausalLM(
        transformers.Gemma2Config(**small, **heads, head_dim=8, final_logit_softcapping=0.8)
    ).double()
    cohere = transformers.CohereForCausalLM(transformers.CohereConfig(**small, **heads, logit_scale=0.3)).double()
    granite = transformers.GraniteForCausalLM(
        transformers.GraniteConfig(**small, **heads, logits_scaling=4.0)
    ).double()
    for model in (gemma, cohere, granite):
        _assert_model_paths_agree(model, ids, labels, attention)


def test_model_logprobs_temperature():
    model = _llama()
    ids, labels, attention = _batch()
    hot = model_logprobs(model, ids, labels, attention, temperature=2.0)
    logits = model(input_ids=ids, attention_mask=attention).logits / 2.0
    assert _maxdiff(hot.per_token, sequence_logprobs(logits, labels).per_token) < 1e-12


def test_model_logprobs_peft_lora():
    peft = pytest.importorskip("peft")
    model = _llama()
    config = peft.LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    wrapped = peft.get_peft_model(model, config)
    ids, labels, attention = _batch()
    _assert_model_paths_agree(wrapped, ids, labels, attention)
    # LoRA moves the result: the chunked path really runs the adapted backbone.
    with wrapped.disable_adapter():
        plain = model_logprobs(wrapped, ids, labels, attention)
    assert _maxdiff(plain.sum, model_logprobs(wrapped, ids, labels, attention).sum) > 1e-6

    adapted_head = peft.get_peft_model(_llama(), peft.LoraConfig(r=2, target_modules=["lm_head"]))
    with pytest.raises(ValueError, match="not a plain torch.nn.Linear.*chunked=False"):
        model_logprobs(adapted_head, ids, labels, attention)
    assert torch.isfinite(model_logprobs(adapted_head, ids, labels, attention, chunked=False).sum).all()


def test_model_logprobs_without_backbone():
    class HeadOnly(torch.nn.Module):
        def get_output_embeddings(self):
            return torch.nn.Linear(4, 5)

    with pytest.raises(ValueError, match="cannot find the backbone of HeadOnly"):
        model_logprobs(HeadOnly(), torch.zeros(1, 3, dtype=torch.long))


@pytest.mark.parametrize("chunked", [True, False])
def test_paired_one_pass_equals_two_passes(chunked):
    model = _llama()
    c_ids, c_labels, c_att = _batch(steps=11, seed=1)
    r_ids, r_labels, r_att = _batch(steps=8, seed=2)
    extra = ("entropy",)
    kw = {"chunked": chunked, "chunk_size": 6, "extra": extra}
    chosen, rejected = paired_model_logprobs(model, c_ids, r_ids, c_labels, r_labels, c_att, r_att, **kw)
    alone_c = model_logprobs(model, c_ids, c_labels, c_att, **kw)
    alone_r = model_logprobs(model, r_ids, r_labels, r_att, **kw)
    for one, two in ((chosen, alone_c), (rejected, alone_r)):
        assert one.per_token.shape == two.per_token.shape
        assert torch.equal(one.mask, two.mask) and torch.equal(one.lengths, two.lengths)
        for name in ("per_token", "sum", "avg", "entropy"):
            assert _maxdiff(getattr(one, name), getattr(two, name)) < 1e-12, name
    params, g_one = _param_grads_pair(model, chosen, rejected)
    _, g_two = _param_grads_pair(model, alone_c, alone_r)
    for a, b in zip(g_one, g_two):
        assert _maxdiff(a, b) <= 1e-12 * max(1.0, b.abs().max().item())


def _param_grads_pair(model, chosen, rejected):
    params = list(model.parameters())
    # A DPO-style loss couples the two halves.
    loss = -torch.nn.functional.logsigmoid(0.1 * (chosen.sum - rejected.sum)).sum() + 0.01 * chosen.entropy.sum()
    return params, torch.autograd.grad(loss, params)


def test_paired_argument_errors():
    model = _llama()
    with pytest.raises(ValueError, match="chosen_input_ids has 2 rows but rejected_input_ids has 3"):
        paired_model_logprobs(model, torch.zeros(2, 5, dtype=torch.long), torch.zeros(3, 5, dtype=torch.long))


def test_chunked_partial_gradients():
    # Frozen head (LoRA on the backbone) or frozen backbone (head-only training): only what is asked for.
    h, w, b, labels = _head_problem()
    naive_h, naive_w = _grads(_naive(h, w, None, labels), h, w)
    only_h = chunked_sequence_logprobs(h, w.detach(), labels, chunk_size=4)
    (g_h,) = _grads(only_h, h)
    only_w = chunked_sequence_logprobs(h.detach(), w, labels, chunk_size=4)
    (g_w,) = _grads(only_w, w)
    assert _maxdiff(g_h, naive_h) < 1e-12 and _maxdiff(g_w, naive_w) < 1e-12


def test_chunked_under_autocast_matches_lm_head():
    # float32 weights, bf16 autocast: the head product runs in bf16, as nn.Linear does under autocast.
    h, w, _, labels = _head_problem(batch=2, steps=17, hidden=16, vocab=101, dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = h @ w.T
        fast = chunked_sequence_logprobs(h, w, labels, chunk_size=5)
    assert logits.dtype == torch.bfloat16
    naive = sequence_logprobs(logits, labels)
    assert _maxdiff(fast.per_token, naive.per_token) < 1e-5
    for g_fast, g_naive in zip(_grads(fast, h, w), _grads(naive, h, w)):
        assert g_fast.dtype == torch.float32
        assert _maxdiff(g_fast, g_naive) / g_naive.abs().max().item() < 2e-2


# ---------------------------------------------------------------- -inf logits (banned tokens), issue 10 review


@pytest.mark.parametrize("dtype", [F64, torch.float32], ids=["fp64", "fp32"])
def test_banned_token_with_minus_inf_logit_is_exact_and_finite(dtype):
    """Token 0 banned (bias -inf) on every position: the same numbers as the vocabulary without it.

    Masked positions gather token 0 (their labels are zeroed), so multiplying by the mask gave -inf * 0 = NaN;
    the entropy's p log p gave 0 * -inf = NaN, in the full-logits and the chunked paths alike.
    """
    batch, steps, hidden, vocab = 3, 6, 5, 9
    h0, w0, b0 = _random((batch, steps, hidden), 31), _random((vocab, hidden), 32), _random((vocab,), 33)
    b0[0] = -math.inf
    labels = 1 + torch.randint(0, vocab - 1, (batch, steps), generator=torch.Generator().manual_seed(34))
    labels[0, :2] = -100
    labels[2, :4] = -100
    extra = ("entropy", "log_sum_sq_probs")
    tol = 1e-12 if dtype == F64 else 2e-5

    def leaves():
        return [x.to(dtype).requires_grad_() for x in (h0, w0, b0)]

    def objective(out):
        # log-probs and entropy both carry gradients; every scored position counts
        return out.sum.sum() + 0.7 * out.entropy.sum()

    # truth: the 8-token vocabulary without token 0 (probability exactly 0), labels shifted down by one
    h, w, b = leaves()
    small_labels = torch.where(labels == -100, labels, labels - 1)
    want = sequence_logprobs(h @ w[1:].t() + b[1:], small_labels, extra=extra)
    want_grads = torch.autograd.grad(objective(want), (h, w, b))

    def check(out, grads):
        for field in ("per_token", "sum", "avg", "entropy", "log_sum_sq_probs"):
            got = getattr(out, field)
            assert torch.isfinite(got).all(), (field, got)
            assert _maxdiff(got, getattr(want, field)) < tol, field
        g_h, g_w, g_b = grads
        assert all(torch.isfinite(g).all() for g in grads)
        assert _maxdiff(g_h, want_grads[0]) < tol * 10
        assert _maxdiff(g_w[1:], want_grads[1][1:]) < tol * 10 and torch.all(g_w[0] == 0)
        assert _maxdiff(g_b[1:], want_grads[2][1:]) < tol * 10 and g_b[0].item() == 0

    h, w, b = leaves()
    full = sequence_logprobs(h @ w.t() + b, labels, extra=extra)
    check(full, torch.autograd.grad(objective(full), (h, w, b)))
    for chunk_size in (2, 100):
        h, w, b = leaves()
        fast = chunked_sequence_logprobs(h, w, labels, bias=b, chunk_size=chunk_size, extra=extra)
        check(fast, torch.autograd.grad(objective(fast), (h, w, b)))


@pytest.mark.parametrize("dtype", [F64, torch.float32], ids=["fp64", "fp32"])
def test_sequence_kl_with_a_token_banned_in_both_models(dtype):
    ref0, pol0 = _random((2, 5, 7), 41), _random((2, 5, 7), 42)
    ref0[..., 0] = pol0[..., 0] = -math.inf  # exp(-inf) * (-inf - -inf) was NaN
    labels = torch.randint(1, 7, (2, 5), generator=torch.Generator().manual_seed(43))
    labels[0, :3] = -100
    ref, pol = ref0.to(dtype), pol0.to(dtype).requires_grad_()
    got = sequence_kl(ref, pol, labels)
    small = pol0[..., 1:].to(dtype).requires_grad_()
    want = sequence_kl(ref[..., 1:], small, labels)  # token 0 has probability 0 under both
    assert torch.isfinite(got).all() and _maxdiff(got, want) < (1e-12 if dtype == F64 else 1e-5)
    (grad,) = torch.autograd.grad(got.sum(), pol)
    (small_grad,) = torch.autograd.grad(want.sum(), small)
    assert torch.isfinite(grad).all() and torch.all(grad[..., 0] == 0)
    assert _maxdiff(grad[..., 1:], small_grad) < (1e-12 if dtype == F64 else 1e-5)
    # a token the reference emits but the policy bans: the KL is infinite, as it should be
    pol_banned = _random((2, 5, 7), 42).to(dtype)
    pol_banned[..., 3] = -math.inf
    assert torch.isinf(sequence_kl(ref, pol_banned, labels)).all()
