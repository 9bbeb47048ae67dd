"""model/gpt.py: behaviour checked against independent expectations (hand formulas, the uncached path,
a model fed the same thing two ways). Models are tiny so the whole file runs in seconds."""
import math

import pytest
import torch
import torch.nn.functional as F

from model.generate import KVCache, pick
from model.gpt import GPT, GPTConfig, RMSNorm, apply_rope, cross_entropy, rope_tables
from training import device_peak_flops

pytestmark = pytest.mark.usefixtures("one_torch_thread")


VARIANTS = [
    dict(rope=True, norm="rmsnorm", tie_embeddings=True),
    dict(rope=False, norm="layernorm", tie_embeddings=False, bias=True),
]


def tiny(vocab=100, block=16, **kw):
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=vocab, block_size=block, n_layer=2, n_head=2, n_embd=32, **kw)
    return GPT(cfg).eval()


@pytest.mark.parametrize("kw", VARIANTS)
def test_shapes_and_padding_hidden(kw):
    m = tiny(vocab=100, **kw)
    assert m.transformer.wte.weight.shape[0] == 128  # padded to a multiple of 64
    idx = torch.randint(0, 100, (3, 10))
    logits, loss = m(idx)
    assert logits.shape == (3, 10, 100) and loss is None
    logits, loss = m(idx, idx)
    assert loss.ndim == 0 and torch.isfinite(loss)


@pytest.mark.parametrize("kw", VARIANTS)
def test_causality(kw):
    m = tiny(**kw)
    idx = torch.randint(0, 100, (2, 16))
    before, _ = m(idx)
    changed = idx.clone()
    changed[:, 9] = (changed[:, 9] + 1) % 100
    after, _ = m(changed)
    assert torch.equal(before[:, :9], after[:, :9])
    assert not torch.allclose(before[:, 9:], after[:, 9:])


def test_loss_at_init_is_uniform_guess():
    m = tiny(vocab=1000, block=32)
    torch.manual_seed(1)
    idx, tgt = torch.randint(0, 1000, (8, 32)), torch.randint(0, 1000, (8, 32))
    _, loss = m(idx, tgt)
    assert abs(loss.item() - math.log(1000)) < 0.05


def test_ignore_index_and_target_shape_error():
    m = tiny()
    idx = torch.randint(0, 100, (2, 8))
    tgt = torch.randint(0, 100, (2, 8))
    logits, _ = m(idx)
    half = tgt.clone()
    half[:, :4] = -1
    _, loss = m(idx, half)
    expect = torch.nn.functional.cross_entropy(logits[:, 4:].reshape(-1, 100), tgt[:, 4:].reshape(-1))
    assert torch.allclose(loss, expect, atol=1e-6)
    with pytest.raises(ValueError, match="targets shape"):
        m(idx, tgt[:, :5])


def test_overfits_a_tiny_batch():
    m = tiny(vocab=50).train()
    torch.manual_seed(2)
    idx, tgt = torch.randint(0, 50, (2, 16)), torch.randint(0, 50, (2, 16))
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
    for _ in range(150):
        _, loss = m(idx, tgt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05


def assert_greedy(model, seq, prompt_len, noise=1e-4):
    """Each generated id is an argmax of a plain forward over its prefix, up to float noise.

    Equality of ids would be brittle: an untrained model has near-ties that other kernels break the
    other way. So the chosen id's logit must be within `noise` of the row's maximum.
    """
    logits, _ = model(seq[:, :-1])
    steps = logits[:, prompt_len - 1:]
    chosen = steps.gather(-1, seq[:, prompt_len:, None]).squeeze(-1)
    assert (steps.max(-1).values - chosen).max() <= noise


@pytest.mark.parametrize("kw", VARIANTS)
def test_kv_cache_logits_match_a_full_forward(kw):
    m = tiny(block=24, **kw)
    idx = torch.randint(0, 100, (2, 24))
    full, _ = m(idx)
    cache = KVCache(m.config.n_layer, 24)
    first, _ = m(idx[:, :5], cache=cache)  # a prompt, then one token at a time
    steps = [first] + [m(idx[:, t:t + 1], cache=cache)[0] for t in range(5, 24)]
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)


@pytest.mark.parametrize("kw", VARIANTS)
def test_greedy_generation_with_and_without_cache_follows_the_argmax(kw):
    m = tiny(block=24, **kw)
    for prompt_len in (1, 5):
        idx = torch.randint(0, 100, (2, prompt_len))
        n = 24 - prompt_len  # up to the point the context fills
        assert_greedy(m, m.generate(idx, n, temperature=0), prompt_len)
        assert_greedy(m, m.generate(idx, n, temperature=0, use_cache=False), prompt_len)


def test_generation_runs_past_block_size_and_never_predicts_padding():
    m = tiny(vocab=70, block=8)
    with torch.no_grad():
        m.transformer.wte.weight[70:] = 50.0  # padding rows would win every argmax if not masked
    out = m.generate(torch.zeros(2, 3, dtype=torch.long), 30, temperature=1.0, top_k=5)
    assert out.shape == (2, 33) and out.max() < 70
    out = m.generate(torch.zeros(1, 3, dtype=torch.long), 20, temperature=0)
    assert out.max() < 70
    # Past the first fill the cache restarts from the last half block (positions from 0): the
    # token after that is the argmax of a plain forward over those 4 tokens.
    out = m.generate(torch.randint(0, 70, (1, 8)), 1 + 1, temperature=0)
    logits, _ = m(out[:, -5:-1])
    assert logits[0, -1, out[0, -1]] >= logits[0, -1].max() - 1e-4


@pytest.mark.parametrize("kw", VARIANTS)
def test_inputs_embeds_matches_idx(kw):
    m = tiny(**kw)
    idx = torch.randint(0, 100, (2, 12))
    ref, _ = m(idx)
    emb = m.transformer.wte(idx)
    alone, _ = m(None, inputs_embeds=emb)
    prepended, _ = m(idx[:, 4:], inputs_embeds=emb[:, :4])  # embeddings first, then tokens
    assert torch.allclose(ref, alone, atol=1e-6)
    assert torch.allclose(ref, prepended, atol=1e-6)


def test_attn_mask_causal_equals_default_and_blocks_what_it_hides():
    m = tiny()
    idx = torch.randint(0, 100, (2, 10))
    ref, _ = m(idx)
    causal = torch.ones(10, 10, dtype=torch.bool).tril()
    out, _ = m(idx, attn_mask=causal)
    assert torch.allclose(ref, out, atol=1e-5)  # another attention kernel: equal up to float noise
    # Positions 5.. may not see 0..4 in any layer, so tokens 0..2 cannot reach them even through 3, 4.
    gist = causal.clone()
    gist[5:, :5] = False
    a, _ = m(idx, attn_mask=gist)
    other = idx.clone()
    other[:, :3] = (other[:, :3] + 7) % 100
    b, _ = m(other, attn_mask=gist)
    assert torch.allclose(a[:, 5:], b[:, 5:], atol=1e-5)
    assert not torch.allclose(a[:, :5], b[:, :5], atol=1e-3)  # where it can see them, it does


@pytest.mark.parametrize("tie", [True, False])
def test_resize_keeps_old_logits(tie):
    m = tiny(vocab=100, tie_embeddings=tie)
    idx = torch.randint(0, 100, (2, 10))
    before, _ = m(idx)
    old_wte = m.transformer.wte.weight[:100].clone()
    old_head = m.lm_head.weight[:100].clone()
    m.resize_token_embeddings(150)
    after, _ = m(idx)
    assert after.shape == (2, 10, 150)
    assert torch.allclose(before, after[..., :100], atol=1e-6)  # a wider head may multiply in other blocks
    assert torch.equal(m.transformer.wte.weight[:100], old_wte) and torch.equal(m.lm_head.weight[:100], old_head)
    assert (m.lm_head.weight is m.transformer.wte.weight) == tie
    assert torch.allclose(m.transformer.wte.weight[120], old_wte.mean(0))
    assert torch.allclose(m.lm_head.weight[149], old_head.mean(0))
    assert m.generate(torch.full((1, 1), 140), 3, temperature=0).shape == (1, 4)  # new ids are usable


def test_resize_parents_and_errors():
    m = tiny(vocab=100)
    w = m.transformer.wte.weight[:100].clone()
    m.resize_token_embeddings(102, init="parents", parents={100: (3, 7), 101: (100, 9)})
    new = m.transformer.wte.weight
    assert torch.allclose(new[100], (w[3] + w[7]) / 2)
    assert torch.allclose(new[101], ((w[3] + w[7]) / 2 + w[9]) / 2)
    with pytest.raises(ValueError, match="only grows"):
        m.resize_token_embeddings(50)
    with pytest.raises(ValueError, match="missing"):
        m.resize_token_embeddings(104, init="parents", parents={102: (1, 2)})


def test_param_count_and_flops_by_hand():
    C, L, V, T = 32, 2, 100, 16
    m = tiny(vocab=V, block=T)  # rope, rmsnorm (weight only), no bias, tied
    Vp = 128
    per_layer = 4 * C * C + 8 * C * C + 2 * C  # attention q,k,v,o + MLP up/down + two norms
    non_emb = L * per_layer + C  # + final norm
    assert m.num_params(non_embedding=True) == non_emb
    assert m.num_params(non_embedding=False) == non_emb + Vp * C
    assert m.flops_per_token() == 6 * (non_emb + C * Vp) + 12 * L * C * T
    assert m.estimate_mfu(1000, 0.5, peak_flops=1e12) == pytest.approx(m.flops_per_token() * 2000 / 1e12)


def test_device_peaks_from_names():
    assert device_peak_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert device_peak_flops("NVIDIA H100 PCIe") == 756e12
    assert device_peak_flops("NVIDIA A100-SXM4-80GB") == 312e12
    assert device_peak_flops("NVIDIA L40") == 181e12
    assert device_peak_flops("NVIDIA H200 NVL") == 835e12  # not H200's 989: names match whole
    assert device_peak_flops("NVIDIA H200") == 989e12
    assert device_peak_flops("NVIDIA L40S") == 362e12 and device_peak_flops("NVIDIA L4") == 121e12
    assert device_peak_flops("Some Future GPU") is None


def test_config_errors_are_clear():
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="norm"):
        GPTConfig(norm="batchnorm")
    m = tiny(block=8)
    with pytest.raises(ValueError, match="block_size"):
        m(torch.zeros(1, 9, dtype=torch.long))


@pytest.mark.parametrize("init", ["normal", "zero"])
def test_resize_normal_and_zero_rows(init):
    m = tiny(vocab=100, tie_embeddings=False)
    old = m.transformer.wte.weight[:100].clone()
    m.resize_token_embeddings(164, init=init)
    new_rows = torch.cat([m.transformer.wte.weight[100:164], m.lm_head.weight[100:164]])
    assert torch.equal(m.transformer.wte.weight[:100], old)
    if init == "zero":
        assert torch.equal(new_rows, torch.zeros_like(new_rows))
    else:  # 4096 draws of N(0, 0.02): the sample std is within 10% of 0.02 with overwhelming odds
        assert abs(new_rows.std().item() - 0.02) < 0.002 and abs(new_rows.mean().item()) < 0.002


def test_rmsnorm_matches_torch_in_value_and_gradient():
    torch.manual_seed(3)
    x = torch.randn(4, 7, 32, requires_grad=True)
    ours, ref = RMSNorm(32), torch.nn.RMSNorm(32, eps=1e-6)
    with torch.no_grad():
        ours.weight.copy_(torch.randn(32))
        ref.weight.copy_(ours.weight)
    g = torch.randn(4, 7, 32)
    ours(x).backward(g)
    gx, gw = x.grad.clone(), ours.weight.grad.clone()
    x.grad = None
    ref(x).backward(g)
    assert torch.allclose(ours(x), ref(x), atol=1e-5)
    assert torch.allclose(gx, x.grad, atol=1e-5) and torch.allclose(gw, ref.weight.grad, atol=1e-4)


def test_rope_rotates_each_channel_pair_by_position_times_frequency():
    D, T = 8, 5
    cos, sin = rope_tables(D, T)
    x = torch.randn(1, T, 2, D)
    out = apply_rope(x, cos, sin)
    for t in range(T):
        for i in range(D // 2):
            angle = t * 10000 ** (-2 * i / D)
            a, b = x[0, t, :, i], x[0, t, :, i + D // 2]
            assert torch.allclose(out[0, t, :, i], a * math.cos(angle) - b * math.sin(angle), atol=1e-5)
            assert torch.allclose(out[0, t, :, i + D // 2], b * math.cos(angle) + a * math.sin(angle), atol=1e-5)


def test_rope_scores_depend_only_on_distance():
    D, T = 16, 12
    cos, sin = rope_tables(D, T)
    q, k = torch.randn(D), torch.randn(D)
    rq = apply_rope(q.expand(1, T, 1, D), cos, sin)[0, :, 0]
    rk = apply_rope(k.expand(1, T, 1, D), cos, sin)[0, :, 0]
    assert torch.allclose(rq[7] @ rk[4], rq[3] @ rk[0], atol=1e-4)  # both 3 apart
    assert not torch.allclose(rq[7] @ rk[4], rq[7] @ rk[0], atol=1e-3)


def test_pick_top_k_temperature_and_generator():
    logits = torch.tensor([[2.0, 1.0, 0.5, -1.0, 0.0]]).repeat(4000, 1)
    assert torch.equal(pick(logits[:3], 0, None), torch.zeros(3, 1, dtype=torch.long))  # greedy
    top1 = pick(logits[:50], 1.0, 1, torch.Generator().manual_seed(0))
    assert torch.equal(top1, torch.zeros(50, 1, dtype=torch.long))
    for temperature in (0.5, 2.0):
        draws = pick(logits, temperature, 2, torch.Generator().manual_seed(1)).flatten()
        assert set(draws.tolist()) == {0, 1}  # only the two likeliest ids
        p0 = 1 / (1 + math.exp(-1.0 / temperature))  # softmax over logits 2 and 1 at this temperature
        assert abs((draws == 0).float().mean().item() - p0) < 0.03
    free = pick(logits, 1.0, None, torch.Generator().manual_seed(2)).flatten()
    expect = torch.softmax(logits[0], -1)
    assert torch.allclose(torch.bincount(free, minlength=5) / 4000, expect, atol=0.03)


def test_generate_reproducible_with_a_generator():
    m = tiny()
    idx = torch.randint(0, 100, (2, 3))
    a = m.generate(idx, 10, temperature=1.0, generator=torch.Generator().manual_seed(5))
    b = m.generate(idx, 10, temperature=1.0, generator=torch.Generator().manual_seed(5))
    c = m.generate(idx, 10, temperature=1.0, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    greedy = m.generate(idx, 10, temperature=0)
    assert torch.equal(m.generate(idx, 10, temperature=1.0, top_k=1, generator=torch.Generator().manual_seed(5)),
                       greedy)


def test_cross_entropy_matches_torch_in_value_and_gradient():
    torch.manual_seed(4)
    logits = torch.randn(50, 70, dtype=torch.float64)
    logits[:, 64:] = float("-inf")  # padded vocabulary, as GPT.forward masks it
    targets = torch.randint(0, 64, (50,))
    targets[::4] = -1  # positions without a loss
    g = torch.tensor(2.5, dtype=torch.float64)
    grads = []
    for loss_fn in (cross_entropy, lambda x, t: F.cross_entropy(x, t, ignore_index=-1)):
        x = logits.clone().requires_grad_()
        loss = loss_fn(x * 1.0, targets)
        loss.backward(g)
        grads.append((loss.detach(), x.grad))
    (ours, g_ours), (ref, g_ref) = grads
    assert torch.allclose(ours, ref, atol=1e-12)
    assert torch.allclose(g_ours, g_ref, atol=1e-12) and g_ours[::4].abs().max() == 0


def test_cross_entropy_refuses_a_second_backward():
    x = torch.randn(4, 8, requires_grad=True)
    loss = cross_entropy(x * 1.0, torch.tensor([1, 2, 3, -1]))
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="retain_graph"):
        loss.backward()
