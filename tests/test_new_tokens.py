"""Adding tokens to a trained model: frozen rows, inits, the step-0 bound, extend, and the study end to end."""
import json
import math
import random

import matplotlib.image
import pytest
import torch

import training
from model.gpt import GPT, GPTConfig
from studies.common import load_study_config
from studies.freeze import is_tied, merge_rows, set_trainable
from studies.new_tokens import grow, NewTokensConfig, resized, run_study, step0_old_text
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


def test_study_runs_end_to_end(tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    rng = random.Random(0)
    for i in range(6):
        (old / f"play{i}.txt").write_text(" ".join(rng.choice(OLD_TEXT.split("\n")) for _ in range(200)))
    args = [f"--out_dir={tmp_path / 'out'}", f"--base_source={old}", "--base_vocab_size=270", "--base_steps=4",
            "--n_layer=1", "--n_head=2", "--n_embd=16", "--block_size=16", "--base_batch_size=4",
            "--new_max_chars=20000", "--new_val_fraction=0.3", "--ks=6", "--inits=mean,parents",
            "--train_modes=new_rows,full", "--n_special=2", "--steps=3", "--eval_interval=2", "--eval_bytes=600",
            "--batch_size=2"]
    s = run_study(load_study_config(NewTokensConfig, None, args), progress=False)
    out = tmp_path / "out"
    assert json.loads((out / "results.json").read_text())["runs"] == s["runs"]
    for name in ("bpb_curves.png", "k_sweep.png"):
        img = matplotlib.image.imread(out / name)
        assert img.shape[0] > 300 and img.shape[1] > 400, name
    md = (out / "results.md").read_text()
    for r in s["runs"]:  # the table shows each run's own curve
        c0, c1 = r["curve"][0], r["curve"][-1]
        assert f"| {c0['new_bpb']:.3f} -> {c1['new_bpb']:.3f} | {c0['old_bpb']:.3f} -> {c1['old_bpb']:.3f} " in md
    runs = {(r["method"], r["init"], r["train"]): r for r in s["runs"]}
    assert set(runs) == {("merges", "mean", "new_rows"), ("merges", "parents", "new_rows"),
                         ("merges", "mean", "full"), ("special", "mean", "new_rows")}
    for key, r in runs.items():
        assert r["old_rows_identical"] == (r["train"] == "new_rows"), key
        assert r["tied"]
        assert [p["step"] for p in r["curve"]] == [0, 2, 3]
    # every run scored on the same bytes: the cut val text, whichever tokenizer encodes it
    assert s["eval_bytes_new"] == s["eval_bytes_old"] == 600  # both domains have more than 600 bytes
    for r in s["runs"]:
        assert (r["eval_bytes_new"], r["eval_bytes_old"]) == (600, 600)
    for key in (("merges", "mean", "new_rows"), ("special", "mean", "new_rows")):
        assert runs[key]["kl_old_max"] <= runs[key]["bound_kl"]
    assert runs[("merges", "mean", "new_rows")]["bytes_per_token_new"] > s["bytes_per_token_new_base"]
    assert runs[("special", "mean", "new_rows")]["bytes_per_token_new"] == s["bytes_per_token_new_base"]
    assert "| k=6 merges, mean, new_rows |" in (out / "results.md").read_text()

    # A changed base spec retrains the study's own base model in place: the trainer's refusal to
    # overwrite a run is for a user's out_dir, not for a folder the study owns.
    assert json.loads((out / "base" / "base.json").read_text())["steps"] == 4
    run_study(load_study_config(NewTokensConfig, None, args + ["--base_steps=5", "--ks=2",
                                                               "--inits=mean", "--train_modes=new_rows"]),
              progress=False)
    assert json.loads((out / "base" / "base.json").read_text())["steps"] == 5
    assert training.load_checkpoint(out / "base" / "ckpt.pt")["step"] == 5


def test_eval_text_is_cut_as_text_and_every_token_scored_once_after_the_prefix():
    from studies.new_tokens import cut_text, eval_batches

    assert cut_text(["abc", "déf", "gh"], 4) == ["abc", "d"]
    assert cut_text(["abc", "déf", "gh"], 5) == ["abc", "d"]  # never half of "é" (2 bytes)
    assert cut_text(["abc", "déf", "gh"], 6) == ["abc", "dé"]
    assert cut_text(["abc", "déf", "gh"], 100) == ["abc", "déf", "gh"]
    a, b, c, d, e, f = b"abcdef"
    [(x, y)] = eval_batches(RegexTokenizer(), ["abcdef"], 256, 6, prefix=[300, 301])
    # stream [eot a b c d e f]; windows of 4 every 2 tokens, each led by the two tags (never scored)
    assert x.tolist() == [[300, 301, 256, a, b, c], [300, 301, b, c, d, e]]
    assert y.tolist() == [[-1, -1, a, b, c, d], [-1, -1, -1, -1, e, f]]
