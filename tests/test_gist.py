"""Gist tokens: the conditions line up, distillation recovers a prompt the teacher depends on, the study
runs and its tables agree with its own per-prompt numbers.

The effect tests use a teacher that depends on its prompt by construction: a random GPT with its weight
matrices scaled up (sharp attention, large logits), with continuations sampled from that teacher given
the prompt. Dropping the prompt then costs ~0.3 nats/token and KL ~0.17 at scale 10, ~0.9 and ~0.9 at
scale 20: orders of magnitude above float noise, so the margins below hold on any CPU.
"""
import json
import math
import random
import statistics
from pathlib import Path

import matplotlib.image
import pytest
import torch
import torch.nn.functional as F

from model.gpt import GPT, GPTConfig
from studies.common import StudyError, kl_divergence, load_study_config
from studies.gist import (GistConfig, body_params, break_even, check_ks, cont_logits, kl, results_markdown,
                          run_study, run_task, synthetic_example, synthetic_floors, synthetic_prompts, train_gist)
from tokenizer import RegexTokenizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_gist_equal_to_the_prompt_embeddings_reproduces_the_full_prompt():
    """Feeding P's own embeddings as the 'gist' must give the teacher's logits: the positions line up."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=30, block_size=32, n_layer=2, n_head=2, n_embd=16)).eval()
    prompt = [3, 9, 4, 4, 7]
    x = torch.randint(0, 29, (3, 6), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = cont_logits(model, 29, x, prompt=prompt)
        as_gist = cont_logits(model, 29, x, gist=model.transformer.wte(torch.tensor(prompt)))
        # the slow way: one sequence at a time, logits read off by hand
        seq = torch.tensor([[29] + prompt + x[0].tolist()])
        by_hand = model(seq)[0][0, len(prompt):len(prompt) + 6]
    assert full.shape == (3, 6, 30)
    assert torch.allclose(full, as_gist, atol=1e-5)
    assert torch.allclose(full[0], by_hand, atol=1e-5)
    assert kl(full, as_gist).abs().item() < 1e-5


def test_kl_matches_the_definition_by_hand():
    p, q = torch.tensor([0.5, 0.25, 0.25]), torch.tensor([0.25, 0.5, 0.25])
    by_hand = 0.5 * torch.log(torch.tensor(2.0)) + 0.25 * torch.log(torch.tensor(0.5))  # = 0.25 ln 2
    assert kl_divergence(p.log(), q.log()).item() == pytest.approx(by_hand.item(), rel=1e-6)
    # kl() averages over positions and takes logits (any offset: softmax is shift-invariant)
    t = torch.stack([p.log() + 3.0, q.log()])[None]
    s = torch.stack([q.log(), q.log() - 1.0])[None]
    assert kl(t, s).item() == pytest.approx(by_hand.item() / 2, rel=1e-6)


def test_synthetic_continuations_restate_the_prompt_and_are_held_out():
    rng = random.Random(0)
    cfg = GistConfig(syn_keys=8, syn_values=10, syn_facts=4, n_prompts=2, train_conts=5, eval_conts=3)
    (p, x), facts = synthetic_example(rng, cfg)
    assert sorted(p.split()) == sorted(x.split()) == sorted(f"{k}{v}" for k, v in facts)
    assert len({k for k, _ in facts}) == 4
    # a real tokenizer with merges, so ids are not bytes: the items must decode back to the facts
    tok = RegexTokenizer().train([synthetic_example(rng, cfg)[0][0] for _ in range(200)], 300)
    items = synthetic_prompts(cfg, tok)
    assert len(items) == 2
    for it in items:
        assert len(it["train"]) == 5 and len(it["eval"]) == 3
        assert not {tuple(c) for c in it["train"]} & {tuple(c) for c in it["eval"]}
        assert tok.decode(it["prompt"]) == it["prompt_text"]
        facts = sorted(it["prompt_text"].split())
        for c in it["train"] + it["eval"]:
            assert sorted(tok.decode(c).split()) == facts


def strong_teacher(scale=10.0, vocab=32, seed=0):
    """A frozen random GPT whose predictions depend strongly on its context (matrices x `scale`)."""
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=vocab, block_size=32, n_layer=1, n_head=2, n_embd=16)).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.mul_(scale)
    return model


@torch.no_grad()
def sample_continuations(model, bos, prompt, n, length, generator):
    """n continuations drawn from the teacher given [bos, prompt]: the prompt genuinely predicts them."""
    x = torch.cat([torch.full((n, 1), bos), torch.tensor(prompt).expand(n, -1)], dim=1)
    for _ in range(length):
        probs = model(x)[0][:, -1, :bos].float().softmax(-1)
        x = torch.cat([x, torch.multinomial(probs, 1, generator=generator)], dim=1)
    return x[:, -length:].tolist()


def test_distillation_lowers_the_kl_to_the_teacher():
    model = strong_teacher()
    bos = 31
    prompt = [1, 2, 3, 4, 5, 6, 7, 8]
    conts = torch.randint(0, bos, (8, 5), generator=torch.Generator().manual_seed(2))
    cfg = GistConfig(gist_steps=60, gist_batch=8, gist_lr=0.05)
    G, hist, init = train_gist(model, bos, prompt, conts, 2, cfg, torch.Generator().manual_seed(0))
    assert G.shape == init.shape == (2, 16)
    assert torch.equal(init, model.transformer.wte.weight[[7, 8]])  # the prompt's last two tokens
    with torch.no_grad():
        full = cont_logits(model, bos, conts, prompt=prompt)
        kl_none = kl(full, cont_logits(model, bos, conts)).item()
        kl_init = kl(full, cont_logits(model, bos, conts, gist=init)).item()
        kl_trained = kl(full, cont_logits(model, bos, conts, gist=G)).item()
    assert kl_none > 0.05  # the teacher needs its prompt (measured ~0.13)
    assert kl_trained < 0.4 * kl_init  # measured ~0.17x
    assert len(hist) == 60


def test_gist_recovers_a_prompt_the_teacher_depends_on():
    """run_task end to end on the strong teacher: eight prompts, held-out continuations, k = 1 and 4."""
    model = strong_teacher(scale=20.0)
    bos = 31
    g = torch.Generator().manual_seed(1)
    items = []
    for _ in range(8):
        prompt = torch.randint(0, bos, (8,), generator=g).tolist()
        conts = sample_continuations(model, bos, prompt, 24, 6, g)
        items.append({"prompt": prompt, "prompt_text": str(prompt), "train": conts[:16], "eval": conts[16:]})
    cfg = GistConfig(ks=[1, 4], gist_steps=60, gist_batch=8, gist_lr=0.05)
    t = run_task("strong teacher", model, bos, items, cfg, progress=False)
    # the gap's standard error, from the per-token gains of the prompt on the held-out tokens only
    gains, per_prompt_R = [], []
    with torch.no_grad():
        for item, row in zip(items, t["per_prompt"]):
            x = torch.tensor(item["eval"])
            full, none = cont_logits(model, bos, x, prompt=item["prompt"]), cont_logits(model, bos, x)
            gain = (F.cross_entropy(none.flatten(0, 1), x.flatten(), reduction="none")
                    - F.cross_entropy(full.flatten(0, 1), x.flatten(), reduction="none"))
            gains += gain.tolist()
            assert row["L_full"] == pytest.approx(F.cross_entropy(full.flatten(0, 1), x.flatten()).item(), rel=1e-5)
            g_rows = row["gist"][4]
            if gain.mean() > 2 * gain.std() / gain.numel() ** 0.5:
                per_prompt_R.append((row["L_none"] - g_rows["L_gist"]) / (row["L_none"] - row["L_full"]))
            else:
                assert g_rows["R"] is None
    assert len(gains) == 8 * 8 * 6
    assert t["gap_se"] == pytest.approx(statistics.stdev(gains) / len(gains) ** 0.5, rel=1e-4)
    # a strong teacher: the prompt is worth many standard errors (~0.9 nats, ~11 of them), so R is reported
    assert t["L_none"] - t["L_full"] > 6 * t["gap_se"]
    k1, k4 = t["rows"]
    assert k4["k"] == 4 and k4["rho"] == 2.0
    # the trained gist stands in for the prompt: KL to the teacher a fraction of dropping the prompt
    # (dropping it costs ~0.9 nats of KL here, far above float noise) and of the untrained init
    assert k4["KL"] < 0.4 * t["KL_none"]
    assert k4["KL"] < 0.6 * k4["KL_init"]
    assert k4["R"] > 0.5  # R of no prompt is 0 by definition
    assert k4["R"] == pytest.approx((t["L_none"] - k4["L_gist"]) / (t["L_none"] - t["L_full"]))
    # R per prompt: the spread is of the per-prompt ratios, recomputed here from their losses
    spread = k4["R_per_prompt"]
    assert spread["n"] == len(per_prompt_R) >= 6
    assert spread["mean"] == pytest.approx(statistics.fmean(per_prompt_R))
    assert spread["sd"] == pytest.approx(statistics.stdev(per_prompt_R))
    assert (spread["min"], spread["max"]) == pytest.approx((min(per_prompt_R), max(per_prompt_R)))
    assert spread["mean"] > 0.5
    # more vectors, more of the prompt recovered
    assert k4["KL"] < k1["KL"]
    # break-even: the same formula the hand-worked test checks, fed this run's sizes
    assert k4["break_even_uses"] == pytest.approx(break_even(model.config, body_params(model), 8, 4, 6, 60, 8,
                                                             16)["break_even_uses"])


def test_break_even_by_hand():
    """A 2-layer, 16-wide, vocab-30 model: the FLOP counts worked out term by term."""
    model = GPT(GPTConfig(vocab_size=30, block_size=64, n_layer=2, n_head=2, n_embd=16))
    N = body_params(model)
    # tied embeddings: the body is the blocks and the final norm, no wte / lm_head
    assert N == sum(p.numel() for p in model.transformer.h.parameters()) + 16
    P, k, m, steps, batch, conts = 20, 4, 10, 50, 8, 32

    def F_(n, scored):  # 2 FLOPs per multiply-add: body, head at the scored positions, causal attention
        attention = sum(2 * 2 * t * 16 * 2 for t in range(1, n + 1))  # 2 layers, t scores + t-term sum
        return 2 * N * n + 2 * 16 * 30 * scored + attention

    cost = 3 * steps * batch * F_(1 + k + m, m) + conts * F_(1 + P + m, m)
    saving = F_(1 + P + m, m) - F_(1 + k + m, m)
    got = break_even(model.config, N, P, k, m, steps, batch, conts)
    assert got["train_flops"] == cost and got["flops_saved_per_use"] == saving
    assert got["break_even_uses"] == pytest.approx(cost / saving)
    # one fewer vector saves more per use and costs less to train
    assert break_even(model.config, N, P, k - 1, m, steps, batch, conts)["break_even_uses"] < cost / saving


@pytest.mark.parametrize("k", [9, 10])
def test_gist_not_shorter_than_its_prompt_is_refused_before_any_training(tmp_path, k):
    """"xA yB zC\n" is 9 tokens: k = 9 saves nothing and k = 10 is longer; both stop before the base trains."""
    with pytest.raises(StudyError, match="shorter than its prompt"):
        run_study(GistConfig(out_dir=str(tmp_path / "out"), ks=[1, k], syn_facts=3, real=False), progress=False)
    assert not (tmp_path / "out").exists()
    with pytest.raises(StudyError, match="use ks below 64"):
        check_ks([4, 64], 64, "real")
    check_ks([1, 8], 9, "synthetic")  # below |P|: fine


def test_synthetic_floors_by_hand():
    # 3 facts, 26 keys, 26 values: "xA yB zC" is 8 tokens; given the prompt only the order is open
    cfg = GistConfig(syn_facts=3, syn_keys=26, syn_values=26)
    full, none = synthetic_floors(cfg)
    assert full == pytest.approx(math.log(6) / 8)
    assert none == pytest.approx((math.log(26 * 25 * 24) + 3 * math.log(26)) / 8)
    # the old tiny task: ~0.39 nats/token with the prompt, ~2.07 without (issue 12's figures)
    old = GistConfig(syn_facts=6, syn_keys=16, syn_values=26)
    assert [round(v, 2) for v in synthetic_floors(old)] == [0.39, 2.07]
    # today's: 4 facts from 8 keys and 8 values, "aB cD eF gH" is 11 tokens; 4! orders, 8*7*6*5 keys, 8^4 values
    tiny = load_study_config(GistConfig, Path(__file__).resolve().parent.parent / "configs" / "gist-tiny.toml")
    assert (tiny.syn_facts, tiny.syn_keys, tiny.syn_values) == (4, 8, 8)
    assert synthetic_floors(tiny) == pytest.approx((math.log(24) / 11, (math.log(8 * 7 * 6 * 5) + 4 * math.log(8)) / 11))


@pytest.fixture(scope="module")
def micro_study(tmp_path_factory, one_torch_thread):
    """The whole study at micro size: a briefly trained byte-level base (its effects are not asserted)."""
    out = tmp_path_factory.mktemp("gist")
    threads = torch.get_num_threads()
    cfg = load_study_config(GistConfig, None, [
        f"--out_dir={out}", "--real=false", "--ks=1,4", "--syn_keys=26", "--syn_values=26", "--syn_facts=3",
        "--syn_docs=500", "--syn_steps=30", "--syn_lr=0.01", "--syn_n_layer=2", "--syn_n_embd=32",
        "--syn_n_head=2", "--syn_block_size=32", "--syn_batch_size=8", "--n_prompts=2", "--train_conts=3",
        "--eval_conts=3", "--gist_steps=5", "--gist_batch=3"])
    s = run_study(cfg, progress=False)
    assert torch.get_num_threads() == threads  # run_study picks its own threads and gives them back
    return out, s


def test_gist_study_tables_agree_with_its_per_prompt_numbers(micro_study):
    out, s = micro_study
    t = s["tasks"][0]
    assert t["prompt_tokens"] == 9  # "xA yB zC\n": 3 facts of 3 bytes
    assert t["n_prompts"] == 2 and t["eval_conts"] == 3 and t["cont_tokens"] == 8  # "xA yB zC"
    per = t["per_prompt"]
    assert t["L_full"] == pytest.approx(sum(p["L_full"] for p in per) / 2)
    for r in t["rows"]:
        k = r["k"]
        assert r["rho"] == pytest.approx(9 / k)
        assert r["KL"] == pytest.approx(sum(p["gist"][k]["KL"] for p in per) / 2)
        if t["L_none"] - t["L_full"] > 2 * t["gap_se"]:
            assert r["R"] == pytest.approx((t["L_none"] - r["L_gist"]) / (t["L_none"] - t["L_full"]))
        else:  # a 30-step base barely reads its prompt: its gap is noise, R is blank
            assert r["R"] is None
    assert (t["L_floor"], t["L_floor_none"]) == synthetic_floors(GistConfig(syn_facts=3, syn_keys=26,
                                                                            syn_values=26))
    r = t["rows"][1]  # k = 4: (9 - 4) positions x 2 layers x (K, V) x 32 values x 4 bytes
    assert r["kv_bytes_saved_fp32"] == 5 * 2 * 2 * 32 * 4


def test_gist_study_writes_results(micro_study):
    out, s = micro_study
    assert json.loads((out / "results.json").read_text())["tasks"][0]["rows"] == s["tasks"][0]["rows"]
    md = (out / "results.md").read_text()
    t = s["tasks"][0]
    for r in t["rows"]:
        R = "" if r["R"] is None else f"{r['R']:.3f}"
        assert f"| {r['k']} | {r['rho']:.1f} | {r['L_gist']:.3f} | {R} |" in md
    used = (t["L_floor_none"] - t["L_full"]) / (t["L_floor_none"] - t["L_floor"])
    assert t["share_closed"] == pytest.approx(used)
    assert f"closes {used:.0%} of that gap" in md
    assert ("this teacher barely uses its prompt" in md) == (used < 0.5)
    img = matplotlib.image.imread(out / "recovery_vs_compression.png")
    assert img.shape[0] > 300 and img.shape[1] > 400


def test_gist_results_say_why_r_is_blank_and_when_the_teacher_is_weak(micro_study):
    """Hand-set losses: a negative gap is named as such; a base under half the floors' gap is flagged."""
    _, s = micro_study
    s = json.loads(json.dumps(s))
    t = s["tasks"][0]
    t.update(L_full=1.0, L_none=0.9, gap_se=0.01, share_closed=0.3)
    md = results_markdown(s)
    assert "not above twice its standard error, so R is left blank" in md
    assert "The gap is negative" in md
    assert "closes 30% of that gap" in md and "this teacher barely uses its prompt" in md
    t.update(L_full=0.5, L_none=0.9, share_closed=0.8)
    md = results_markdown(s)
    assert "R is left blank" not in md and "barely uses" not in md and "closes 80% of that gap" in md
