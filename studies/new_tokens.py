"""Study: adding tokens to a trained model.

    python -m studies.new_tokens configs/new-tokens-tiny.toml [--key=value ...]

A tokenizer and GPT trained on one domain (Shakespeare) meet a new one (Python source). We grow
the vocabulary two ways -- (a) new special tokens, used here as domain tags prefixed to every
sequence (a learned "prompt" of n_special rows); (b) k new merges learned by continuing BPE on
the new domain (`tok.extend`), which makes the new text shorter -- then resize the embedding
table (`GPT.resize_token_embeddings`) and fine-tune on the new domain, training only the new rows,
all embeddings, or the full model. One factor varies at a time around the default run
(merges, k = max(ks), init "mean", train "embeddings"); the k sweep starts at a k = 0 control,
the base tokenizer fine-tuned the same way, so the sweep measures the new tokens, not the
fine-tuning.

What is held equal, so that a difference between runs is the vocabulary's doing:
- the evaluation text: each domain's val text is cut as text (`cut_text`) before any tokenizer sees
  it, and every byte of it is scored once (`eval_batches`); `eval_bytes` is the same for every run;
- the new-domain text seen in fine-tuning, in bytes: every run takes `steps` steps of `batch_size`
  sequences of `context_bytes` bytes each, so a tokenizer with more bytes per token gets shorter
  sequences in tokens (`context_tokens`), not more text;
- the context, in bytes: evaluation windows are `context_bytes` long too, in every tokenizer;
- the fine-tuning seeds (`seeds`: data order and random inits); the base model is one fixed model.

Reported: probability mass on the new tokens at step 0, the step-0 KL on old text against the
log(1 + n/V) bound (see `step0_old_text`), new-domain bits per byte over fine-tuning, old-domain
bpb (forgetting) both in the grown tokenizer and in the old one (`bpb_in_vocab`: the fine-tuned
model's old rows reading the text as the base model did, so re-tokenisation and forgetting come
apart), and bytes per token on each domain; mean and sd over seeds. Output: OUT/results.md,
results.json, *.png.

The base model is trained here with train_gpt.train unless `base_ckpt` names one; it is cached
in OUT/base and reused while its settings are unchanged.
"""
from __future__ import annotations

import copy
import json
import math
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from data.prepare import token_byte_table
from data.shards import read_manifest, read_shard
from data.sources import doc_hash, iter_documents
from model.gpt import GPT
from studies.base_model import base_spec, ensure_base, load_base
from studies.common import (StudyError, atomic_write_text, kl_divergence, mean_sd, pyplot, save_figure,
                            scoring_windows, study_main, utf8_bytes)
from studies.freeze import TRAIN_MODES, merge_rows, set_trainable
from tokenizer import EOT, load
from training import evaluate_bpb, param_groups, pick_device, pick_threads


# ------------------------------------------------------------------------------------------------
# the old domain's text


def val_documents(data_dir) -> list[str]:
    """The documents of a shard directory's val split, decoded back to text (split on <|endoftext|>)."""
    meta = read_manifest(data_dir)
    tok = load(meta["tokenizer"]["path"])
    eot = meta["eot_id"]
    ids = np.concatenate([np.asarray(read_shard(Path(data_dir) / s)) for s in meta["splits"]["val"]["shards"]])
    cuts = np.flatnonzero(ids == eot).tolist() + [len(ids)]
    return [tok.decode(ids[a + 1:b].tolist()) for a, b in zip(cuts, cuts[1:]) if b > a + 1]


# ------------------------------------------------------------------------------------------------
# measuring


def token_bytes(tok, n_vocab: int) -> torch.Tensor:
    """UTF-8 bytes per id (0 for specials): the denominator of bits per byte."""
    return torch.from_numpy(token_byte_table(tok, n_vocab).astype(np.int64))


def encode_stream(tok, docs: list[str], eot: int) -> torch.Tensor:
    """One id stream, each document as [eot] + encode_ordinary(doc) (as data.prepare writes it)."""
    out = []
    for d in docs:
        out.append(eot)
        out.extend(tok.encode_ordinary(d))
    return torch.tensor(out, dtype=torch.int64)


def bytes_per_token(tok, docs: list[str]) -> float:
    """UTF-8 bytes over encode_ordinary tokens of `docs`: how much text one position carries."""
    return utf8_bytes(docs) / sum(len(tok.encode_ordinary(d)) for d in docs)


def context_tokens(context_bytes: int, bpt: float) -> int:
    """Tokens that hold about context_bytes of text at bpt bytes per token (within half a token).

    Every run's sequences are this long, in its own tokenizer, so all of them see the same bytes
    of context and, over the same steps and batch, the same bytes of text.
    """
    return max(1, round(context_bytes / bpt))


def cut_text(docs: list[str], n_bytes: int) -> list[str]:
    """The first n_bytes of UTF-8 text of `docs`, whole documents then a cut one (at a character).

    Evaluation text is fixed as text, before any tokenizer sees it, so every tokenizer is scored
    on the same bytes (cutting a number of token windows would give each tokenizer other text).
    """
    out, left = [], n_bytes
    for d in docs:
        b = d.encode("utf-8")
        if len(b) >= left:
            out.append(b[:left].decode("utf-8", "ignore"))
            break
        out.append(d)
        left -= len(b)
    return [d for d in out if d]


def eval_batches(tok, docs: list[str], eot: int, block_size: int, prefix=()) -> list:
    """(x, y) batches scoring every token of the documents once (studies.common.scoring_windows),
    each window led by `prefix` (special-token tags), whose own positions are not scored.

    Windows hold block_size - len(prefix) text tokens and start every half window; each scores
    only the second half (the first window all of itself), so every byte is scored exactly once
    with at least half a window of context before it.
    """
    n = len(prefix)
    out = []
    for x, y in scoring_windows(encode_stream(tok, docs, eot), block_size - n, batch_size=16):
        if n:
            x = torch.cat([torch.tensor(prefix, dtype=x.dtype).expand(x.size(0), n), x], dim=1)
            y = torch.cat([torch.full((y.size(0), n), -1, dtype=y.dtype), y], dim=1)
        out.append((x, y))
    return out


def with_prefix(w: torch.Tensor, prefix: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) from windows w [N, L]: x = prefix + w[:-1], y = no-loss for all but the last prefix slot + w."""
    n = len(prefix)
    if n == 0:
        return w[:, :-1], w[:, 1:]
    p = torch.tensor(prefix, dtype=w.dtype).expand(w.size(0), n)
    x = torch.cat([p, w[:, :-1]], dim=1)
    y = torch.cat([torch.full((w.size(0), n - 1), -1, dtype=w.dtype), w], dim=1)
    return x, y


def scored_bytes(batches: list, tbytes: torch.Tensor) -> int:
    """UTF-8 bytes of the scored targets: the evaluation text's size, as this tokenizer covers it."""
    return int(sum(tbytes[y[y >= 0]].sum().item() for _, y in batches))


def bpb(model, batches: list, tbytes: torch.Tensor) -> float:
    """Bits per byte over the batches' scored targets, by the trainer's own evaluate_bpb."""
    return evaluate_bpb(model, batches, tbytes)[1]


@torch.no_grad()
def bpb_in_vocab(model, batches: list, tbytes: torch.Tensor, n_vocab: int) -> float:
    """Bits per byte with the softmax over ids < n_vocab only: a grown model read as the old one.

    With the old tokenizer's batches (old ids only) and n_vocab = the old V, this is the model the
    fine-tuned weights would be if the new rows were cut off again. Text and tokens are then the
    base model's own, so any change from the base bpb is forgetting, not re-tokenisation.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    nats, nbytes = 0.0, 0
    for x, y in batches:
        logits = model(x.to(device))[0][..., :n_vocab].float()
        y = y.to(device)
        kept = y >= 0
        nats += F.cross_entropy(logits[kept], y[kept], reduction="sum").item()
        nbytes += int(tbytes.to(device)[y[kept]].sum().item())
    model.train(was_training)
    return nats / (math.log(2) * nbytes)


@torch.no_grad()
def new_token_mass(model, batches: list, old_vocab: int) -> float:
    """Mean over scored positions of the probability the model puts on ids >= old_vocab."""
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for x, y in batches:
        probs = model(x.to(device))[0].float().softmax(-1)[y.to(device) >= 0]
        total += probs[:, old_vocab:].sum().item()
        count += probs.shape[0]
    return total / count


@torch.no_grad()
def step0_old_text(base: GPT, grown: GPT, batches: list) -> dict:
    """KL(base || grown) per scored position on old text (old ids only), and grown's mass on new ids.

    Why log(1 + n/V) bounds it for mean init. Old text feeds only old ids, so the hidden state h at
    every position is unchanged; only the output gains n logits. With mean init each new output
    row is the mean of the V old rows, so each new logit is the mean of the old logits,
    zbar = (1/V) sum_i z_i. With Z = sum_i exp(z_i), the old probabilities all shrink by the same
    factor Z / (Z + n exp(zbar)), so per position
        KL(base || grown) = log(1 + n exp(zbar) / Z) = -log(1 - q),  q = mass on the new ids,
    and Jensen (exp is convex) gives exp(zbar) <= (1/V) sum_i exp(z_i) = Z / V, hence
        KL <= log(1 + n/V)   and   q <= n / (V + n),
    at every position, so also for the mean; equality only if all old logits are equal. V counts
    every real old id (specials included, padding excluded: padding logits are -inf). The reverse
    KL(grown || base) is infinite (base gives the new ids zero probability), so it is not reported.
    Other inits carry no such guarantee: "zero" gives logit 0, "normal" a random one.
    """
    base.eval()
    grown.eval()
    old = base.config.vocab_size
    device = next(base.parameters()).device
    kl_sum, kl_max, mass, count = 0.0, 0.0, 0.0, 0
    for x, y in batches:
        scored = y.to(device) >= 0
        x = x.to(device)
        lp = base(x)[0].float().log_softmax(-1)[scored]
        lq = grown(x)[0].float().log_softmax(-1)[scored]
        kl = kl_divergence(lp, lq[..., :old])
        kl_sum += kl.sum().item()
        kl_max = max(kl_max, kl.max().item())
        mass += lq[..., old:].exp().sum().item()
        count += kl.numel()
    return {"kl_old_mean": kl_sum / count, "kl_old_max": kl_max, "mass_new_on_old_text": mass / count}


# ------------------------------------------------------------------------------------------------
# growing the vocabulary


def grow(tok, method: str, n: int, new_docs: list[str]):
    """(new tokenizer, parents {new_id: (a, b)} or None, prefix ids) for `method` with n new tokens.

    n = 0 merges is the control: the base tokenizer itself, fine-tuned like the others.
    """
    if method == "merges":
        if n == 0:
            return tok.copy(), {}, []
        new = tok.extend(new_docs, n)
        parents = {c: ab for ab, c in new.merges.items() if c >= tok.n_vocab}
        return new, parents, []
    if method == "special":
        new = tok.copy()
        start = tok.n_vocab
        names = {f"<|domain_{i}|>": start + i for i in range(n)}
        new.register_special_tokens(names)
        return new, None, list(names.values())
    raise ValueError(f"method must be 'merges' or 'special', got {method!r}")


def resized(base: GPT, n_vocab: int, init: str, parents=None) -> GPT:
    model = copy.deepcopy(base)
    if n_vocab > base.config.vocab_size:
        model.resize_token_embeddings(n_vocab, init=init, parents=parents)
    return model


# ------------------------------------------------------------------------------------------------
# the study


@dataclass
class NewTokensConfig:
    out_dir: str = "studies/out/new-tokens"
    seed: int = 1337                   # the base model's seed (fine-tuning uses `seeds`)
    device: str = "cpu"
    threads: int = 0                   # CPU threads; 0 = the idle cores (training.pick_threads)
    # base model: an existing train_gpt checkpoint, or trained here from the base_* settings
    base_ckpt: str = ""
    base_source: str = "shakespeare"
    base_txt_mode: str = "file"
    base_vocab_size: int = 512
    base_steps: int = 600
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 128
    base_batch_size: int = 16
    base_lr: float = 3e-3
    tie_embeddings: bool = True
    # new domain
    new_source: str = "pystdlib"
    new_txt_mode: str = "file"
    new_max_chars: int = 2_000_000     # documents taken in hash order until this many characters
    new_val_fraction: float = 0.05
    # what is compared
    ks: list = field(default_factory=lambda: [64, 256, 1024])   # new merges; the largest is the default run
    inits: list = field(default_factory=lambda: ["mean", "normal", "zero", "parents"])
    train_modes: list = field(default_factory=lambda: ["embeddings", "new_rows", "full"])
    n_special: int = 4                 # 0 = skip the special-token run
    seeds: list = field(default_factory=lambda: [1, 2])   # every run once per seed: mean and sd
    # fine-tuning on the new domain
    steps: int = 300
    batch_size: int = 16               # sequences per step, each context_bytes of text
    context_bytes: int = 0             # bytes per sequence and per eval window; 0 = what block_size holds
    lr_new_rows: float = 1e-2          # few parameters, tiny model: they take a large lr
    lr_embeddings: float = 3e-3
    lr_full: float = 1e-3
    weight_decay: float = 0.1
    eval_interval: int = 50
    eval_bytes: int = 20_000           # UTF-8 bytes of val text per domain, the same for every run


def new_domain_docs(cfg: NewTokensConfig) -> tuple[list[str], list[str]]:
    """(train, val) documents of the new domain: hash order, capped at new_max_chars."""
    # Taken in an order fixed by the text but unrelated to the val split (which also uses doc_hash).
    docs = sorted(iter_documents(cfg.new_source, txt_mode=cfg.new_txt_mode), key=lambda d: doc_hash("take:" + d))
    taken, total = [], 0
    for d in docs:
        if total >= cfg.new_max_chars:
            break
        # At most 1/20 of the budget per document, so no single big file is the whole domain.
        d = d[:min(cfg.new_max_chars - total, max(1, cfg.new_max_chars // 20))]
        taken.append(d)
        total += len(d)
    is_val = [doc_hash(d) < cfg.new_val_fraction for d in taken]
    if not any(is_val) and taken:  # a tiny corpus: hold out its smallest-hash document
        is_val[0] = True
    val = [d for d, v in zip(taken, is_val) if v]
    train = [d for d, v in zip(taken, is_val) if not v]
    if not train:
        raise StudyError(f"new_source {cfg.new_source!r}: too little text for a train/val split")
    return train, val


def plan(cfg: NewTokensConfig) -> list[dict]:
    """One factor at a time around the default run (merges, max k, mean, embeddings).

    The k sweep starts at k = 0, the control: the same fine-tuning of all embeddings with the
    base tokenizer, so what the sweep shows beyond it is the new tokens' doing. (Training only new
    rows has nothing to train at k = 0, hence embeddings as the default mode.)
    """
    k = max(cfg.ks)
    for name, values, allowed in (("inits", cfg.inits, ("mean", "normal", "zero", "parents")),
                                  ("train_modes", cfg.train_modes, TRAIN_MODES)):
        bad = [v for v in values if v not in allowed]
        if bad:
            raise StudyError(f"{name}: unknown {bad}; choose from {list(allowed)}")
    if not cfg.seeds:
        raise StudyError("seeds is empty; give at least one, e.g. --seeds=1,2")
    if min(cfg.ks) < 1:
        raise StudyError(f"ks must be positive numbers of new merges, got {cfg.ks}; the k = 0 control "
                         f"is always run")
    runs = [dict(method="merges", n=kk, init="mean", train="embeddings") for kk in [0] + sorted(set(cfg.ks))]
    runs += [dict(method="merges", n=k, init=i, train="embeddings") for i in cfg.inits if i != "mean"]
    runs += [dict(method="merges", n=k, init="mean", train=t) for t in cfg.train_modes if t != "embeddings"]
    if cfg.n_special:
        runs.append(dict(method="special", n=cfg.n_special, init="mean", train="new_rows"))
    return runs


def finetune(model, run: dict, old_vocab: int, data: dict, cfg: NewTokensConfig, seed: int) -> tuple[list, dict]:
    """Train on the new domain as `run` says; evaluate both domains every eval_interval steps.

    Returns the curve and what was trained on: steps, tokens, and the UTF-8 bytes of the trained
    targets (the quantity held equal across runs).
    """
    lr = {"new_rows": cfg.lr_new_rows, "embeddings": cfg.lr_embeddings, "full": cfg.lr_full}[run["train"]]
    params = set_trainable(model, run["train"], old_vocab)
    opt = torch.optim.AdamW(param_groups(params, cfg.weight_decay), lr=lr, betas=(0.9, 0.95))
    g = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    stream, prefix, tbytes = data["train"], data["prefix"], data["tbytes"]
    length = data["context_tokens"] + 1
    if len(stream) <= length:
        raise StudyError(f"new-domain training text is {len(stream)} tokens, shorter than one sequence "
                         f"({length}); raise new_max_chars")
    curve, trained_bytes, trained_tokens = [], 0, 0

    def evaluate(step):
        curve.append({"step": step,
                      "new_bpb": bpb(model, data["new_val"], tbytes),
                      "old_bpb": bpb(model, data["old_val"], tbytes),
                      "old_bpb_old_tok": bpb_in_vocab(model, data["old_val_old_tok"], data["tbytes_old"],
                                                      old_vocab)})

    evaluate(0)
    for step in range(1, cfg.steps + 1):
        model.train()
        starts = torch.randint(0, len(stream) - length, (cfg.batch_size,), generator=g)
        w = torch.stack([stream[s:s + length] for s in starts.tolist()])
        x, y = with_prefix(w, prefix)
        trained_bytes += int(tbytes[y[y >= 0]].sum())
        trained_tokens += int((y >= 0).sum())
        x, y = x.to(device), y.to(device)
        for grp in opt.param_groups:  # short linear warmup, then constant
            grp["lr"] = lr * min(1.0, step / max(1, cfg.steps // 10))
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step % cfg.eval_interval == 0 or step == cfg.steps:
            evaluate(step)
    merge_rows(model)
    return curve, {"train_steps": cfg.steps, "train_tokens": trained_tokens, "train_bytes": trained_bytes}


def run_study(cfg: NewTokensConfig, progress: bool = True) -> dict:
    runs = plan(cfg)
    device = pick_device(cfg.device)
    # On a shared CPU, threads beyond the idle cores spin-wait for one another (training.pick_threads).
    threads = torch.get_num_threads()
    torch.set_num_threads(pick_threads(cfg.threads, device))
    try:
        return _run_study(cfg, runs, device, progress)
    finally:
        torch.set_num_threads(threads)


def _run_study(cfg: NewTokensConfig, runs: list[dict], device: str, progress: bool = True) -> dict:
    t_start = time.perf_counter()
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.base_ckpt:
        ckpt = Path(cfg.base_ckpt)
    else:
        ckpt = ensure_base(base_spec(cfg, "base_"), out / "base", device, quiet=not progress)
    t_base = time.perf_counter() - t_start
    base, tok, ck = load_base(ckpt)
    base.to(device)
    eot = tok.special_tokens[EOT]
    V = base.config.vocab_size
    T = base.config.block_size
    new_train, new_val = new_domain_docs(cfg)
    # the evaluation text of each domain, fixed before any tokenizer sees it
    old_docs = cut_text(val_documents(ck["config"]["data_dir"]), cfg.eval_bytes)
    new_val = cut_text(new_val, cfg.eval_bytes)

    # Every tokenizer first: the context in bytes is set so that the one with the fewest bytes
    # per token still fits its sequences (and its prefix) in the model's block.
    grown = {}
    for run in runs:
        key = (run["method"], run["n"])
        if key not in grown:
            new_tok, parents, prefix = grow(tok, run["method"], run["n"], new_train)
            train = encode_stream(new_tok, new_train, eot)
            grown[key] = {"tok": new_tok, "parents": parents, "prefix": prefix, "train": train,
                          "bpt_train": utf8_bytes(new_train) / int((train != eot).sum()),
                          "bpt_new": bytes_per_token(new_tok, new_val), "bpt_old": bytes_per_token(new_tok, old_docs)}
    room = {key: T - len(g["prefix"]) for key, g in grown.items()}
    context_bytes = cfg.context_bytes or min(
        math.floor(room[key] * min(g["bpt_train"], g["bpt_old"])) for key, g in grown.items())
    for key, g in grown.items():
        g["L_new"] = context_tokens(context_bytes, g["bpt_train"])
        g["L_old"] = context_tokens(context_bytes, g["bpt_old"])
        if max(g["L_new"], g["L_old"]) > room[key]:
            raise StudyError(f"context_bytes = {context_bytes} needs {max(g['L_new'], g['L_old'])} tokens with "
                             f"{key[1]} {key[0]} tokens, more than the {room[key]} the block holds; lower "
                             f"context_bytes (0 picks the largest that fits) or raise block_size")

    # Old text in the old tokenizer: where the step-0 bound applies (identical inputs), and where
    # forgetting is measured apart from re-tokenisation.
    base_g = grown[("merges", 0)]
    tbytes_old = token_bytes(tok, V)
    old_val_old_tok = eval_batches(tok, old_docs, eot, base_g["L_old"])
    new_val_old_tok = eval_batches(tok, new_val, eot, base_g["L_new"])
    base_new_bpb = bpb(base, new_val_old_tok, tbytes_old)
    base_old_bpb = bpb(base, old_val_old_tok, tbytes_old)
    eval_bytes = {"new": scored_bytes(new_val_old_tok, tbytes_old), "old": scored_bytes(old_val_old_tok, tbytes_old)}
    if eval_bytes != {"new": utf8_bytes(new_val), "old": utf8_bytes(old_docs)}:
        raise AssertionError(f"scored {eval_bytes} bytes, not the whole evaluation text")  # a bug, not bad input

    results = []
    for run in tqdm([(r, s) for r in runs for s in cfg.seeds], desc="runs", disable=not progress):
        run, seed = run
        t0 = time.perf_counter()
        g = grown[(run["method"], run["n"])]
        new_tok, parents, prefix = g["tok"], g["parents"], g["prefix"]
        if run["init"] == "parents" and parents is None:
            continue
        n_new = new_tok.n_vocab - V
        torch.manual_seed(seed)  # the "normal" init draws from it
        model = resized(base, new_tok.n_vocab, run["init"], parents).to(device)
        tb = token_bytes(new_tok, new_tok.n_vocab)
        if "new_val" not in g:
            g["new_val"] = eval_batches(new_tok, new_val, eot, g["L_new"] + len(prefix), prefix)
            g["old_val"] = eval_batches(new_tok, old_docs, eot, g["L_old"])
        data = {"train": g["train"], "prefix": prefix, "tbytes": tb, "context_tokens": g["L_new"],
                "new_val": g["new_val"], "old_val": g["old_val"],
                "old_val_old_tok": old_val_old_tok, "tbytes_old": tbytes_old}
        scored = {"eval_bytes_new": scored_bytes(data["new_val"], tb),
                  "eval_bytes_old": scored_bytes(data["old_val"], tb)}
        step0 = step0_old_text(base, model, old_val_old_tok)
        step0["mass_new_on_new_text"] = new_token_mass(model, data["new_val"], V)
        before = model.transformer.wte.weight[:V].clone()
        before_head = model.lm_head.weight[:V].clone()
        curve, trained = finetune(model, run, V, data, cfg, seed)
        old_rows_identical = (torch.equal(before, model.transformer.wte.weight[:V])
                              and torch.equal(before_head, model.lm_head.weight[:V]))
        results.append({
            **run, "seed": seed, **scored, **trained, "n_new": n_new, "old_vocab": V,
            "context_tokens_new": g["L_new"], "context_tokens_old": g["L_old"],
            "bound_kl": math.log(1 + n_new / V), "bound_mass": n_new / (V + n_new), **step0, "curve": curve,
            "new_bpb_final": curve[-1]["new_bpb"], "old_bpb_final": curve[-1]["old_bpb"],
            "old_bpb_old_tok_final": curve[-1]["old_bpb_old_tok"],
            "bytes_per_token_new": g["bpt_new"], "bytes_per_token_old": g["bpt_old"],
            "bytes_per_token_train": g["bpt_train"],
            "old_rows_identical": old_rows_identical, "tied": model.lm_head.weight is model.transformer.wte.weight,
            "seconds": time.perf_counter() - t0})
    summary = {"config": asdict(cfg), "base_ckpt": str(ckpt), "old_vocab": V, "device": device,
               "base_new_bpb": base_new_bpb, "base_old_bpb": base_old_bpb,
               "bytes_per_token_new_base": base_g["bpt_new"], "bytes_per_token_old_base": base_g["bpt_old"],
               "context_bytes": context_bytes,
               "new_train_chars": sum(map(len, new_train)), "new_val_chars": sum(map(len, new_val)),
               "old_val_chars": sum(map(len, old_docs)), "eval_bytes_new": eval_bytes["new"],
               "eval_bytes_old": eval_bytes["old"], "runs": results, "groups": group_runs(results),
               "seconds_base": t_base, "seconds_total": time.perf_counter() - t_start}
    write_outputs(summary, out)
    return summary


# ------------------------------------------------------------------------------------------------
# outputs

METRICS = ("new_bpb_final", "old_bpb_final", "old_bpb_old_tok_final", "kl_old_mean", "kl_old_max",
           "mass_new_on_old_text", "mass_new_on_new_text", "train_bytes", "train_tokens", "seconds")


def group_runs(results: list[dict]) -> list[dict]:
    """One entry per run over its seeds: the settings, then {metric: [mean, sd]}, the per-step mean curve."""
    groups = {}
    for r in results:
        groups.setdefault((r["method"], r["n"], r["init"], r["train"]), []).append(r)
    out = []
    for (method, n, init, train), rs in groups.items():
        g = {"method": method, "n": n, "init": init, "train": train, "seeds": [r["seed"] for r in rs],
             **{k: rs[0][k] for k in ("n_new", "bound_kl", "bound_mass", "bytes_per_token_new",
                                      "bytes_per_token_old", "context_tokens_new", "context_tokens_old",
                                      "eval_bytes_new", "eval_bytes_old", "train_steps")},
             "old_rows_identical": all(r["old_rows_identical"] for r in rs), "tied": all(r["tied"] for r in rs)}
        for m in METRICS:
            g[m] = list(mean_sd([r[m] for r in rs]))
        g["kl_old_max"][0] = max(r["kl_old_max"] for r in rs)  # the worst position over seeds
        g["curve"] = [{key: (p[key] if key == "step" else statistics.fmean(r["curve"][i][key] for r in rs))
                       for key in p} for i, p in enumerate(rs[0]["curve"])]
        out.append(g)
    return out


def run_label(r: dict) -> str:
    if r["method"] == "merges" and r["n"] == 0:
        return f"k=0 control, {r['train']}"
    what = f"k={r['n']} merges" if r["method"] == "merges" else f"{r['n']} special tags"
    return f"{what}, {r['init']}, {r['train']}"


def pm(ms, fmt=".3f", sign=False) -> str:
    """'mean ± sd' for a [mean, sd] pair."""
    m, sd = ms
    return f"{m:{'+' if sign else ''}{fmt}} ± {sd:{fmt}}"


def write_outputs(s: dict, out: Path) -> None:
    atomic_write_text(out / "results.json", json.dumps(s, indent=1))
    plot_curves(s, out / "bpb_curves.png")
    plot_ks(s, out / "k_sweep.png")
    atomic_write_text(out / "results.md", results_markdown(s))


def results_markdown(s: dict) -> str:
    c = s["config"]
    groups = s["groups"]
    seeds = ", ".join(map(str, c["seeds"]))
    train_kb = [g["train_bytes"][0] for g in groups]
    lines = [
        "# Adding tokens to a trained model", "",
        f"Base: `{s['base_ckpt']}` (vocab V = {s['old_vocab']}, trained on `{c['base_source']}`); "
        f"new domain `{c['new_source']}` ({s['new_train_chars']:,} train / {s['new_val_chars']:,} val chars); "
        f"old-domain val {s['old_val_chars']:,} chars. Regenerate: `python -m studies.new_tokens CONFIG`.", "",
        "Held equal across runs, so that differences are the vocabulary's doing:", "",
        f"- evaluation text: {s['eval_bytes_new']:,} bytes of the new domain and {s['eval_bytes_old']:,} of the "
        f"old, cut as text before tokenizing; every byte scored once (windows of {s['context_bytes']} bytes' "
        f"worth of tokens every half window, each scoring its second half);",
        f"- fine-tuning text, in bytes: {c['steps']} steps x {c['batch_size']} sequences of {s['context_bytes']} "
        f"bytes (sequence length in tokens = {s['context_bytes']} / the run's bytes per token); mean trained "
        f"bytes per run {min(train_kb):,.0f} to {max(train_kb):,.0f};",
        f"- context: {s['context_bytes']} bytes in training and evaluation, in every tokenizer;",
        f"- the base model (one model), and the fine-tuning seeds: {seeds} (data order and random inits). "
        f"Figures are mean ± sample sd over the {len(c['seeds'])} seeds; the spread shows fine-tuning noise "
        f"only, not the base model's.", "",
        f"Base model before any change, base tokenizer: new-domain {s['base_new_bpb']:.3f} bpb, old-domain "
        f"{s['base_old_bpb']:.3f} bpb; bytes/token {s['bytes_per_token_new_base']:.3f} (new), "
        f"{s['bytes_per_token_old_base']:.3f} (old). Device {s['device']}.", "",
        "## Step 0 (just after resizing, before any training)", "",
        "KL(base || grown) is per position on old-domain text in the old tokenizer (inputs identical), "
        "in nats; the bound log(1 + n/V) holds for mean init (derivation in `step0_old_text`). "
        "Mass = mean probability on the n new ids. Max is over positions and seeds.", "",
        "| run | n | KL old text (mean / max) | bound log(1+n/V) | mass on new, old text | bound n/(V+n) "
        "| mass on new, new text |",
        "|---|---:|---:|---:|---:|---:|---:|"]
    for g in groups:
        lines.append(f"| {run_label(g)} | {g['n_new']} | {g['kl_old_mean'][0]:.2e} / {g['kl_old_max'][0]:.2e} | "
                     f"{g['bound_kl']:.2e} | {g['mass_new_on_old_text'][0]:.2e} | {g['bound_mass']:.2e} | "
                     f"{g['mass_new_on_new_text'][0]:.2e} |")
    lines += ["", "## After fine-tuning on the new domain", "",
              "bpb = bits per UTF-8 byte on the held-out text above (lower is better), mean ± sd over seeds. "
              "Old domain in the grown tokenizer: what a user of the grown model gets (re-tokenisation and "
              "forgetting together); in the old tokenizer: the fine-tuned model's old rows on the base "
              "model's own tokens, softmax over the old ids only (forgetting alone). Δ is against the base "
              "model. Old rows identical: every pre-existing embedding row (and lm_head row) is bit-for-bit "
              "unchanged (torch.equal) in every seed.", "",
              "| run | bytes/token new | tokens/seq | new bpb | old bpb, grown tok (Δ) | old bpb, old tok (Δ) "
              "| old rows identical | s |",
              "|---|---:|---:|---:|---:|---:|:-:|---:|"]
    for g in groups:
        d_grown = [g["old_bpb_final"][0] - s["base_old_bpb"], g["old_bpb_final"][1]]
        d_old = [g["old_bpb_old_tok_final"][0] - s["base_old_bpb"], g["old_bpb_old_tok_final"][1]]
        lines.append(f"| {run_label(g)} | {g['bytes_per_token_new']:.3f} | {g['context_tokens_new']} | "
                     f"{pm(g['new_bpb_final'])} | {pm(g['old_bpb_final'])} ({d_grown[0]:+.3f}) | "
                     f"{pm(g['old_bpb_old_tok_final'])} ({d_old[0]:+.3f}) | "
                     f"{'yes' if g['old_rows_identical'] else 'no'} | {g['seconds'][0]:.0f} |")
    lines += ["", "![bpb over fine-tuning](bpb_curves.png)", "", "![k sweep](k_sweep.png)", "",
              f"Total {s['seconds_total']:.0f} s (base model {s['seconds_base']:.0f} s).", ""]
    return "\n".join(lines)


def plot_curves(s: dict, path: Path) -> None:
    fig, (a, b) = pyplot().subplots(1, 2, figsize=(12, 4.5))
    for g in s["groups"]:
        steps = [p["step"] for p in g["curve"]]
        a.plot(steps, [p["new_bpb"] for p in g["curve"]], marker=".", label=run_label(g))
        line, = b.plot(steps, [p["old_bpb"] for p in g["curve"]], marker=".", label=run_label(g))
        b.plot(steps, [p["old_bpb_old_tok"] for p in g["curve"]], ls=":", color=line.get_color())
    a.axhline(s["base_new_bpb"], color="gray", ls=":", label="base model, base tokenizer")
    b.axhline(s["base_old_bpb"], color="gray", ls=":", label="base model, base tokenizer")
    a.set(title=f"new domain (learning), mean of {len(s['config']['seeds'])} seeds", xlabel="fine-tuning step",
          ylabel="val bits per byte")
    b.set(title="old domain (forgetting): grown tokenizer solid, old tokenizer dotted", xlabel="fine-tuning step",
          ylabel="val bits per byte")
    a.legend(fontsize=7)
    save_figure(fig, path, dpi=110)


def plot_ks(s: dict, path: Path) -> None:
    gs = sorted((g for g in s["groups"] if g["method"] == "merges" and g["init"] == "mean"
                 and g["train"] == "embeddings"), key=lambda g: g["n"])
    fig, a = pyplot().subplots(figsize=(6, 4.5))
    ks = [g["n"] for g in gs]
    a.plot(ks, [g["bytes_per_token_new"] for g in gs], "o-", color="C0")
    a.set(xlabel="new merges k (0 = control: base tokenizer, same fine-tuning)", ylabel="new-domain bytes per token",
          title="k sweep (mean init, all embeddings trained)")
    a.yaxis.label.set_color("C0")
    b = a.twinx()
    b.errorbar(ks, [g["new_bpb_final"][0] for g in gs], yerr=[g["new_bpb_final"][1] for g in gs],
               fmt="s--", color="C1", capsize=3)
    b.set_ylabel("new-domain val bits per byte after fine-tuning (± sd)", color="C1")
    save_figure(fig, path, dpi=110)


def main(argv=None) -> int:
    return study_main(argv, NewTokensConfig, run_study, results_markdown, "python -m studies.new_tokens",
                      "Grow a trained model's vocabulary (new merges or special tokens), fine-tune on a new "
                      "domain, and report step-0 effects, learning, forgetting and compression. Writes "
                      "OUT_DIR/results.md, results.json and plots.")


if __name__ == "__main__":
    sys.exit(main())
