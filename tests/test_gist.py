"""Gist tokens: the conditions line up, distillation lowers the KL, recovery is positive, the study runs."""
import json
import random

import pytest
import torch

from model.gpt import GPT, GPTConfig
from studies.gist import (GistConfig, cont_logits, kl, run_study, synthetic_example, synthetic_prompts,
                          train_gist)
from studies.common import load_study_config


def test_gist_equal_to_the_prompt_embeddings_reproduces_the_full_prompt():
    """Feeding P's own embeddings as the 'gist' must give the teacher's logits: the positions line up."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=30, block_size=32, n_layer=2, n_head=2, n_embd=16)).eval()
    prompt = [3, 9, 4, 4, 7]
    x = torch.randint(0, 29, (3, 6), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = cont_logits(model, 29, x, prompt=prompt)
        as_gist = cont_logits(model, 29, x, gist=model.transformer.wte(torch.tensor(prompt)))
        none = cont_logits(model, 29, x)
        # the slow way: one sequence at a time, logits read off by hand
        seq = torch.tensor([[29] + prompt + x[0].tolist()])
        by_hand = model(seq)[0][0, len(prompt):len(prompt) + 6]
    assert full.shape == (3, 6, 30)
    assert torch.allclose(full, as_gist, atol=1e-5)
    assert torch.allclose(full[0], by_hand, atol=1e-5)
    assert kl(full, as_gist).abs().item() < 1e-5
    assert kl(full, none).item() > 0


def test_synthetic_continuations_restate_the_prompt_and_are_held_out():
    rng = random.Random(0)
    cfg = GistConfig(syn_keys=8, syn_values=10, syn_facts=4, n_prompts=2, train_conts=5, eval_conts=3)
    (p, x), facts = synthetic_example(rng, cfg)
    assert sorted(p.split()) == sorted(x.split()) == sorted(f"{k}{v}" for k, v in facts)
    assert len({k for k, _ in facts}) == 4

    class Bytes:
        def encode_ordinary(self, s):
            return list(s.encode())

    items = synthetic_prompts(cfg, Bytes())
    for it in items:
        assert len(it["train"]) == 5 and len(it["eval"]) == 3
        assert not {tuple(c) for c in it["train"]} & {tuple(c) for c in it["eval"]}


def test_distillation_lowers_the_kl_against_a_random_model():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, block_size=32, n_layer=1, n_head=2, n_embd=16)).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    conts = torch.randint(0, 19, (8, 5), generator=torch.Generator().manual_seed(2))
    cfg = GistConfig(gist_steps=40, gist_batch=8, gist_lr=0.05)
    G, hist, init = train_gist(model, 19, [1, 2, 3, 4, 5, 6, 7, 8], conts, 2, cfg, torch.Generator().manual_seed(0))
    assert G.shape == init.shape == (2, 16)
    assert torch.equal(init, model.transformer.wte.weight[[7, 8]])  # the prompt's last two tokens
    assert hist[-1] < 0.5 * hist[0]


@pytest.fixture(scope="module")
def micro_study(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("gist")
    cfg = load_study_config(GistConfig, None, [
        f"--out_dir={out}", "--real=false", "--ks=1,4", "--syn_keys=26", "--syn_values=26", "--syn_facts=3",
        "--syn_docs=3000", "--syn_steps=500", "--syn_lr=0.01", "--syn_n_layer=2", "--syn_n_embd=32",
        "--syn_n_head=2", "--syn_block_size=32", "--syn_batch_size=32", "--n_prompts=2", "--train_conts=3",
        "--eval_conts=3", "--gist_steps=60", "--gist_batch=3"])
    try:
        yield out, run_study(cfg, progress=False)
    finally:
        torch.set_num_threads(threads)


def test_gist_study_recovers_the_synthetic_prompt(micro_study):
    out, s = micro_study
    t = s["tasks"][0]
    assert t["L_full"] < t["L_none"] - 0.03, "the micro base model should use the prompt"
    for r in t["rows"]:
        assert r["rho"] == pytest.approx(t["prompt_tokens"] / r["k"])
    r = t["rows"][-1]  # k = 4
    assert r["KL"] < r["KL_init"]  # held-out continuations: training moved G towards the teacher
    assert r["KL"] < t["KL_none"]  # ... and closer than dropping the prompt
    assert r["R"] > 0


def test_gist_study_writes_results_and_kv_arithmetic(micro_study):
    out, s = micro_study
    for name in ("results.md", "results.json", "recovery_vs_compression.png"):
        assert (out / name).stat().st_size > 0
    assert json.loads((out / "results.json").read_text())["tasks"][0]["rows"] == s["tasks"][0]["rows"]
    t = s["tasks"][0]
    assert t["prompt_tokens"] == 9  # "xA yB zC\n": 3 facts of 3 bytes
    r = t["rows"][1]  # k = 4: (9 - 4) positions x 2 layers x (K, V) x 32 values x 4 bytes
    assert r["kv_bytes_saved_fp32"] == 5 * 2 * 2 * 32 * 4
    assert "| 4 | 2.2 |" in (out / "results.md").read_text()
