"""Adding tokens to a trained model: frozen rows, inits, the step-0 bound, extend, and the study end to end."""
import json
import math
import random
import statistics

import matplotlib.image
import pytest
import torch

import training
from model.gpt import GPT, GPTConfig
from studies.common import StudyError, load_study_config
from studies.freeze import is_tied, merge_rows, set_trainable
from studies.new_tokens import (NewTokensConfig, bpb_in_vocab, cut_text, eval_batches, grow, resized, run_study,
                                scored_bytes, step0_old_text, token_bytes)
from tokenizer import RegexTokenizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def micro(vocab=40, tie=True, seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab, block_size=16, n_layer=1, n_head=2, n_embd=16, tie_embeddings=tie,
                         pad_vocab_multiple=64))


def train_steps(model, params, steps=5, lr=1e-2, wd=0.1, vocab=None):
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    g = torch.Generator().manual_seed(1)
    V = vocab or model.config.vocab_size
    for _ in range(steps):
        x = torch.randint(0, V, (4, 9), generator=g)
        _, loss = model(x[:, :-1], x[:, 1:])
        loss.backward()
        opt.step()
        opt.zero_grad()


@pytest.mark.parametrize("tie", [True, False])
def test_training_new_rows_leaves_everything_else_bit_identical(tie):
    model = micro(tie=tie)
    model.resize_token_embeddings(48, init="mean")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    params = set_trainable(model, "new_rows", old_vocab=40)
    assert sum(p.numel() for p in params) == (1 if tie else 2) * 8 * 16
    train_steps(model, params)  # AdamW with weight decay: would shrink any row it could reach
    merge_rows(model)
    after = model.state_dict()
    assert is_tied(model) == tie
    if tie:
        assert model.lm_head.weight is model.transformer.wte.weight
    for name, w in before.items():
        if name in ("transformer.wte.weight", "lm_head.weight"):
            assert torch.equal(after[name][:40], w[:40]), name
            assert not torch.equal(after[name][40:48], w[40:48]), f"{name}: new rows did not train"
            assert torch.equal(after[name][48:], w[48:]), f"{name}: padding rows moved"
        else:
            assert torch.equal(after[name], w), name
    assert all(p.requires_grad for p in model.parameters())


def test_naive_gradient_mask_leaks_through_weight_decay():
    """The control that shows why freeze.py splits the table: masking grads is not enough with AdamW."""
    model = micro()
    model.resize_token_embeddings(48, init="mean")
    old = model.transformer.wte.weight[:40].clone()
    model.transformer.wte.weight.register_hook(lambda g: torch.cat([torch.zeros_like(g[:40]), g[40:]]))
    train_steps(model, [model.transformer.wte.weight])
    assert not torch.equal(model.transformer.wte.weight[:40], old)


def test_train_modes_choose_parameters():
    model = micro(tie=False)
    model.resize_token_embeddings(44)
    emb = set_trainable(model, "embeddings", 40)
    assert {id(p) for p in emb} == {id(model.transformer.wte.weight), id(model.lm_head.weight)}
    full = set_trainable(model, "full", 40)
    assert len(full) == len(list(model.parameters()))
    with pytest.raises(ValueError, match="what must be"):
        set_trainable(model, "head", 40)


@pytest.mark.parametrize("tie", [True, False])
@pytest.mark.parametrize("spread", [1.0, 40.0])
def test_mean_init_step0_kl_on_old_text_is_below_log_1_plus_n_over_v(tie, spread):
    base = micro(vocab=50, tie=tie, seed=3)
    with torch.no_grad():  # spread 40: far-apart logits, where Jensen's inequality is loose
        base.lm_head.weight.mul_(spread)
    n = 14
    grown = resized(base, 50 + n, "mean")
    x = torch.randint(0, 50, (3, 13), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        lp = base(x)[0].log_softmax(-1)
        lq = grown(x)[0].log_softmax(-1)
    kl = (lp.exp() * (lp - lq[..., :50])).sum(-1)        # per position, computed directly
    q = lq[..., 50:].exp().sum(-1)
    bound = math.log(1 + n / 50)
    assert kl.max().item() < bound
    if spread == 1.0:  # near-flat logits of a fresh model: the bound is nearly met
        assert kl.min().item() > 0.95 * bound
    assert torch.allclose(kl, -torch.log1p(-q), atol=1e-5)  # the closed form in step0_old_text's docstring
    assert (q <= n / (50 + n)).all()
    got = step0_old_text(base, grown, [(x, torch.zeros_like(x))])  # every position scored
    assert got["kl_old_mean"] == pytest.approx(kl.mean().item(), rel=1e-4, abs=1e-7)
    assert got["kl_old_max"] < bound


def test_parents_init_is_the_mean_of_the_parent_rows():
    base = micro(vocab=40, tie=False)
    parents = {40: (3, 7), 41: (40, 12), 42: (41, 41)}  # 41 and 42 build on new ids
    m = resized(base, 43, "parents", parents)
    for table in (m.transformer.wte.weight, m.lm_head.weight):
        assert torch.allclose(table[40], (table[3] + table[7]) / 2)
        assert torch.allclose(table[41], (table[40] + table[12]) / 2)
        assert torch.allclose(table[42], table[41])
        assert torch.equal(table[:40], base.lm_head.weight[:40] if table is m.lm_head.weight
                           else base.transformer.wte.weight[:40])


OLD_TEXT = "\n".join(random.Random(0).choice(["the king", "my lord", "good queen", "fair love", "thee and thou"])
                     + " speaks." for _ in range(300))
PY_TEXT = "def f(self, x):\n    return self.value + x\n\n" * 40 + "import os\nclass A:\n    pass\n" * 20


def test_extend_keeps_old_ids_and_grow_reports_parents():
    tok = RegexTokenizer()
    tok.train(OLD_TEXT, 266, special_tokens=["<|endoftext|>"])
    new, parents, prefix = grow(tok, "merges", 12, [PY_TEXT])
    assert prefix == []
    assert all(new.vocab[i] == b for i, b in tok.vocab.items())
    assert new.special_tokens == tok.special_tokens
    assert sorted(parents) == list(range(tok.n_vocab, tok.n_vocab + 12))
    for c, (a, b) in parents.items():
        assert new.vocab[c] == new.vocab[a] + new.vocab[b]
    assert len(new.encode_ordinary(PY_TEXT)) < len(tok.encode_ordinary(PY_TEXT))
    assert new.decode(new.encode_ordinary(PY_TEXT)) == PY_TEXT

    special, none, tags = grow(tok, "special", 3, [PY_TEXT])
    assert none is None and tags == [tok.n_vocab, tok.n_vocab + 1, tok.n_vocab + 2]
    assert "<|domain_0|>" not in tok.special_tokens  # the original is untouched
    assert tok.n_vocab not in special.encode_ordinary("<|domain_0|>")


def study_args(tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    rng = random.Random(0)
    for i in range(6):
        (old / f"play{i}.txt").write_text(" ".join(rng.choice(OLD_TEXT.split("\n")) for _ in range(200)))
    return [f"--out_dir={tmp_path / 'out'}", f"--base_source={old}", "--base_vocab_size=270", "--base_steps=4",
            "--n_layer=1", "--n_head=2", "--n_embd=16", "--block_size=32", "--base_batch_size=4",
            "--new_max_chars=20000", "--new_val_fraction=0.3", "--ks=40", "--inits=mean,parents",
            "--train_modes=new_rows,full", "--n_special=2", "--steps=3", "--eval_interval=2", "--eval_bytes=600",
            "--batch_size=2", "--seeds=1,2"]


def test_study_runs_end_to_end(tmp_path):
    args = study_args(tmp_path)
    s = run_study(load_study_config(NewTokensConfig, None, args), progress=False)
    out = tmp_path / "out"
    assert json.loads((out / "results.json").read_text())["runs"] == s["runs"]
    for name in ("bpb_curves.png", "k_sweep.png"):
        img = matplotlib.image.imread(out / name)
        assert img.shape[0] > 300 and img.shape[1] > 400, name
    md = (out / "results.md").read_text()
    runs = {}
    for r in s["runs"]:
        runs.setdefault((r["method"], r["n"], r["init"], r["train"]), []).append(r)
    assert set(runs) == {("merges", 0, "mean", "embeddings"), ("merges", 40, "mean", "embeddings"),
                         ("merges", 40, "parents", "embeddings"), ("merges", 40, "mean", "new_rows"),
                         ("merges", 40, "mean", "full"), ("special", 2, "mean", "new_rows")}
    for key, rs in runs.items():
        assert [r["seed"] for r in rs] == [1, 2], key
        for r in rs:
            assert r["old_rows_identical"] == (r["train"] == "new_rows"), key
            assert r["tied"]
            assert [p["step"] for p in r["curve"]] == [0, 2, 3]
    # each run's row shows mean +- sample sd over its two seeds, computed here independently
    for g in s["groups"]:
        rs = runs[(g["method"], g["n"], g["init"], g["train"])]
        vals = [r["new_bpb_final"] for r in rs]
        assert g["new_bpb_final"] == pytest.approx([statistics.fmean(vals), statistics.stdev(vals)])
        assert f"{statistics.fmean(vals):.3f} ± {statistics.stdev(vals):.3f}" in md
    assert "seeds: 1, 2" in md and "Held equal" in md
    # every run scored on the same bytes: the cut val text, whichever tokenizer encodes it
    assert s["eval_bytes_new"] == s["eval_bytes_old"] == 600  # both domains have more than 600 bytes
    for r in s["runs"]:
        assert (r["eval_bytes_new"], r["eval_bytes_old"]) == (600, 600)
    k0, k40 = runs[("merges", 0, "mean", "embeddings")][0], runs[("merges", 40, "mean", "embeddings")][0]
    # the k = 0 control: fine-tuned like the others, with the base tokenizer and nothing to bound
    assert k0["n_new"] == 0 and k0["kl_old_mean"] == 0 and k0["curve"][-1]["new_bpb"] < k0["curve"][0]["new_bpb"]
    assert k0["bytes_per_token_new"] == s["bytes_per_token_new_base"]
    for key in (("merges", 40, "mean", "new_rows"), ("special", 2, "mean", "new_rows")):
        assert runs[key][0]["kl_old_max"] <= runs[key][0]["bound_kl"]
        # old rows and transformer untouched: in the old tokenizer it is still the base model exactly
        assert runs[key][0]["old_bpb_old_tok_final"] == pytest.approx(s["base_old_bpb"], rel=1e-5)
    assert k40["bytes_per_token_new"] > 1.2 * s["bytes_per_token_new_base"]
    assert runs[("special", 2, "mean", "new_rows")][0]["bytes_per_token_new"] == s["bytes_per_token_new_base"]
    assert "| k=40 merges, mean, embeddings |" in md and "| k=0 control, embeddings |" in md

    # A changed base spec retrains the study's own base model in place: the trainer's refusal to
    # overwrite a run is for a user's out_dir, not for a folder the study owns.
    assert json.loads((out / "base" / "base.json").read_text())["steps"] == 4
    run_study(load_study_config(NewTokensConfig, None, args + ["--base_steps=5", "--ks=2", "--seeds=1",
                                                               "--inits=mean", "--train_modes=embeddings",
                                                               "--n_special=0"]),
              progress=False)
    assert json.loads((out / "base" / "base.json").read_text())["steps"] == 5
    assert training.load_checkpoint(out / "base" / "ckpt.pt")["step"] == 5


def test_every_run_fine_tunes_on_the_same_bytes_not_the_same_tokens(tmp_path):
    """k = 40 merges carry about 1.3x the bytes per token: with a fixed token budget it would see
    that much more Python. Its sequences are shorter in tokens instead, so the bytes match."""
    args = study_args(tmp_path) + ["--steps=30", "--batch_size=8", "--eval_interval=30", "--seeds=1",
                                   "--inits=mean", "--train_modes=embeddings", "--n_special=0", "--block_size=64"]
    s = run_study(load_study_config(NewTokensConfig, None, args), progress=False)
    k0, k40 = sorted(s["runs"], key=lambda r: r["n"])
    ratio = k40["bytes_per_token_train"] / k0["bytes_per_token_train"]
    assert ratio > 1.2
    assert k0["train_steps"] == k40["train_steps"] == 30
    assert k0["train_tokens"] / k40["train_tokens"] == pytest.approx(ratio, rel=0.1)
    # a fixed token budget would give k = 40 `ratio` times the bytes; left: rounding to whole tokens
    # (under 1.2% at 45 tokens a sequence) and which windows were drawn
    assert k40["train_bytes"] / k0["train_bytes"] == pytest.approx(1, abs=0.05)
    for r in (k0, k40):  # sequences of context_bytes of text, to within half a token
        assert abs(r["context_tokens_new"] * r["bytes_per_token_train"] - s["context_bytes"]) \
            <= r["bytes_per_token_train"] / 2
        assert r["context_tokens_new"] <= 64
    with pytest.raises(StudyError, match="lower context_bytes"):  # 1000 bytes cannot fit 64 tokens
        run_study(load_study_config(NewTokensConfig, None, args + ["--context_bytes=1000"]), progress=False)


def test_eval_bytes_are_the_cut_text_in_every_tokenizer():
    """Text cut before tokenizing: tokenizers that split it into very different numbers of tokens
    still score exactly its UTF-8 bytes (the old bug took the first N token windows instead)."""
    tok = RegexTokenizer()
    tok.train(OLD_TEXT, 266, special_tokens=["<|endoftext|>"])
    eot = tok.special_tokens["<|endoftext|>"]
    docs = cut_text([PY_TEXT[:700], "# naïve café\n" + PY_TEXT], 1000)
    n_bytes = sum(len(d.encode("utf-8")) for d in docs)
    assert 997 <= n_bytes <= 1000
    tokens = []
    for k in (0, 10, 40):
        new, _, _ = grow(tok, "merges", k, [PY_TEXT])
        batches = eval_batches(new, docs, eot, 24)
        assert scored_bytes(batches, token_bytes(new, new.n_vocab)) == n_bytes, k
        tokens.append(sum(int((y >= 0).sum()) for _, y in batches))
    assert tokens[0] > 1.3 * tokens[2]  # the tokenizers really differ


@pytest.mark.parametrize("tie", [True, False])
def test_old_tokenizer_bpb_of_a_grown_model_is_the_base_models(tie):
    """bpb_in_vocab reads a grown model through its old rows only: at step 0 it is the base model
    exactly, while the full softmax pays for the mass on 64 new ids."""
    base = micro(vocab=50, tie=tie, seed=3)
    grown = resized(base, 50 + 64, "mean")
    x = torch.randint(0, 50, (3, 13), generator=torch.Generator().manual_seed(0))
    batches = [(x[:, :-1], x[:, 1:])]
    tbytes = torch.ones(50 + 64, dtype=torch.int64)
    base_bpb = training.evaluate_bpb(base, batches, tbytes)[1]
    assert bpb_in_vocab(grown, batches, tbytes, 50) == pytest.approx(base_bpb, rel=1e-5)
    assert training.evaluate_bpb(grown, batches, tbytes)[1] > base_bpb + 0.5  # log2(1 + 64/50) ~ 1.2 at most


def test_eval_text_is_cut_as_text_and_every_token_scored_once_after_the_prefix():
    assert cut_text(["abc", "déf", "gh"], 4) == ["abc", "d"]
    assert cut_text(["abc", "déf", "gh"], 5) == ["abc", "d"]  # never half of "é" (2 bytes)
    assert cut_text(["abc", "déf", "gh"], 6) == ["abc", "dé"]
    assert cut_text(["abc", "déf", "gh"], 100) == ["abc", "déf", "gh"]
    a, b, c, d, e, f = b"abcdef"
    [(x, y)] = eval_batches(RegexTokenizer(), ["abcdef"], 256, 6, prefix=[300, 301])
    # stream [eot a b c d e f]; windows of 4 every 2 tokens, each led by the two tags (never scored)
    assert x.tolist() == [[300, 301, 256, a, b, c], [300, 301, b, c, d, e]]
    assert y.tolist() == [[-1, -1, a, b, c, d], [-1, -1, -1, -1, e, f]]
