"""Study: adding tokens to a trained model.

    python -m studies.new_tokens configs/new-tokens-tiny.toml [--key=value ...]

A tokenizer and GPT trained on one domain (Shakespeare) meet a new one (Python source). We grow
the vocabulary two ways -- (a) new special tokens, used here as domain tags prefixed to every
sequence (a learned "prompt" of n_special rows); (b) k new merges learned by continuing BPE on
the new domain (`tok.extend`), which makes the new text shorter -- then resize the embedding
table (`GPT.resize_token_embeddings`) and fine-tune on the new domain, training only the new rows,
all embeddings, or the full model. One factor varies at a time around the default run
(merges, k = max(ks), init "mean", train "new_rows").

Reported: probability mass on the new tokens at step 0, the step-0 KL on old text against the
log(1 + n/V) bound (see `step0_old_text`), new-domain bits per byte over fine-tuning, old-domain
bpb (forgetting), and bytes per token on each domain. Output: OUT/results.md, results.json, *.png.

The base model is trained here with train_gpt.train unless `base_ckpt` names one; it is cached
in OUT/base and reused while its settings are unchanged.
"""
from __future__ import annotations

import copy
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from data.prepare import token_byte_table
from data.shards import read_manifest, read_shard
from data.sources import doc_hash, iter_documents
from model.gpt import GPT
from studies.base_model import base_spec, ensure_base, load_base
from studies.common import (StudyError, atomic_write_text, kl_divergence, pyplot, save_figure, scoring_windows,
                            study_main, utf8_bytes)
from studies.freeze import TRAIN_MODES, merge_rows, set_trainable
from tokenizer import EOT, load
from training import evaluate_bpb, param_groups, pick_device


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
    each window led by `prefix` (special-token tags), whose own positions are not scored."""
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
    """(new tokenizer, parents {new_id: (a, b)} or None, prefix ids) for `method` with n new tokens."""
    if method == "merges":
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
    model.resize_token_embeddings(n_vocab, init=init, parents=parents)
    return model


# ------------------------------------------------------------------------------------------------
# the study


@dataclass
class NewTokensConfig:
    out_dir: str = "studies/out/new-tokens"
    seed: int = 1337
    device: str = "cpu"
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
    train_modes: list = field(default_factory=lambda: ["new_rows", "embeddings", "full"])
    n_special: int = 4                 # 0 = skip the special-token run
    # fine-tuning on the new domain
    steps: int = 300
    batch_size: int = 16
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
    """One factor at a time around the default run (merges, max k, mean, new_rows)."""
    k = max(cfg.ks)
    for name, values, allowed in (("inits", cfg.inits, ("mean", "normal", "zero", "parents")),
                                  ("train_modes", cfg.train_modes, TRAIN_MODES)):
        bad = [v for v in values if v not in allowed]
        if bad:
            raise StudyError(f"{name}: unknown {bad}; choose from {list(allowed)}")
    runs = [dict(method="merges", n=kk, init="mean", train="new_rows") for kk in sorted(cfg.ks)]
    runs += [dict(method="merges", n=k, init=i, train="new_rows") for i in cfg.inits if i != "mean"]
    runs += [dict(method="merges", n=k, init="mean", train=t) for t in cfg.train_modes if t != "new_rows"]
    if cfg.n_special:
        runs.append(dict(method="special", n=cfg.n_special, init="mean", train="new_rows"))
    return runs


def finetune(model, run: dict, old_vocab: int, data: dict, cfg: NewTokensConfig) -> list[dict]:
    """Train on the new domain as `run` says; evaluate both domains every eval_interval steps."""
    lr = {"new_rows": cfg.lr_new_rows, "embeddings": cfg.lr_embeddings, "full": cfg.lr_full}[run["train"]]
    params = set_trainable(model, run["train"], old_vocab)
    opt = torch.optim.AdamW(param_groups(params, cfg.weight_decay), lr=lr, betas=(0.9, 0.95))
    g = torch.Generator().manual_seed(cfg.seed)
    device = next(model.parameters()).device
    stream, prefix = data["train"], data["prefix"]
    length = cfg.block_size + 1 - len(prefix)
    curve = []

    def evaluate(step):
        curve.append({"step": step,
                      "new_bpb": bpb(model, data["new_val"], data["tbytes"]),
                      "old_bpb": bpb(model, data["old_val"], data["tbytes"])})

    evaluate(0)
    for step in range(1, cfg.steps + 1):
        model.train()
        starts = torch.randint(0, len(stream) - length, (cfg.batch_size,), generator=g)
        w = torch.stack([stream[s:s + length] for s in starts.tolist()])
        x, y = (t.to(device) for t in with_prefix(w, prefix))
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
    return curve


def run_study(cfg: NewTokensConfig, progress: bool = True) -> dict:
    t_start = time.perf_counter()
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = pick_device(cfg.device)
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

    # Old text in the old tokenizer: where the step-0 bound applies (identical inputs).
    old_val_oldtok = eval_batches(tok, old_docs, eot, T)
    base_new_bpb = bpb(base, eval_batches(tok, new_val, eot, T), token_bytes(tok, V))
    base_old_bpb = bpb(base, old_val_oldtok, token_bytes(tok, V))

    def bytes_per_token(t, docs):
        return sum(len(d.encode()) for d in docs) / sum(len(t.encode_ordinary(d)) for d in docs)

    bpt_new_base, bpt_old_base = bytes_per_token(tok, new_val), bytes_per_token(tok, old_docs)
    torch.manual_seed(cfg.seed)
    results, grown_cache = [], {}
    runs = plan(cfg)
    for run in tqdm(runs, desc="runs", disable=not progress):
        t0 = time.perf_counter()
        key = (run["method"], run["n"])
        if key not in grown_cache:
            grown_cache[key] = grow(tok, run["method"], run["n"], new_train)
        new_tok, parents, prefix = grown_cache[key]
        if run["init"] == "parents" and parents is None:
            continue
        n_new = new_tok.n_vocab - V
        model = resized(base, new_tok.n_vocab, run["init"], parents).to(device)
        tb = token_bytes(new_tok, new_tok.n_vocab)
        data = {"train": encode_stream(new_tok, new_train, eot), "prefix": prefix, "tbytes": tb,
                "new_val": eval_batches(new_tok, new_val, eot, T, prefix),
                "old_val": eval_batches(new_tok, old_docs, eot, T)}
        scored = {"eval_bytes_new": scored_bytes(data["new_val"], tb),
                  "eval_bytes_old": scored_bytes(data["old_val"], tb)}
        step0 = step0_old_text(base, model, old_val_oldtok)
        step0["mass_new_on_new_text"] = new_token_mass(model, data["new_val"], V)
        before = model.transformer.wte.weight[:V].clone()
        before_head = model.lm_head.weight[:V].clone()
        curve = finetune(model, run, V, data, cfg)
        old_rows_identical = (torch.equal(before, model.transformer.wte.weight[:V])
                              and torch.equal(before_head, model.lm_head.weight[:V]))
        results.append({
            **run, **scored, "n_new": n_new, "old_vocab": V, "bound_kl": math.log(1 + n_new / V),
            "bound_mass": n_new / (V + n_new), **step0, "curve": curve,
            "new_bpb_final": curve[-1]["new_bpb"], "old_bpb_final": curve[-1]["old_bpb"],
            "bytes_per_token_new": bytes_per_token(new_tok, new_val),
            "bytes_per_token_old": bytes_per_token(new_tok, old_docs),
            "old_rows_identical": old_rows_identical, "tied": model.lm_head.weight is model.transformer.wte.weight,
            "seconds": time.perf_counter() - t0})
    summary = {"config": asdict(cfg), "base_ckpt": str(ckpt), "old_vocab": V, "device": device,
               "base_new_bpb": base_new_bpb, "base_old_bpb": base_old_bpb,
               "bytes_per_token_new_base": bpt_new_base, "bytes_per_token_old_base": bpt_old_base,
               "new_train_chars": sum(map(len, new_train)), "new_val_chars": sum(map(len, new_val)),
               "old_val_chars": sum(map(len, old_docs)), "eval_bytes_new": utf8_bytes(new_val),
               "eval_bytes_old": utf8_bytes(old_docs), "runs": results,
               "seconds_base": t_base, "seconds_total": time.perf_counter() - t_start}
    write_outputs(summary, out)
    return summary


# ------------------------------------------------------------------------------------------------
# outputs


def run_label(r: dict) -> str:
    what = f"k={r['n']} merges" if r["method"] == "merges" else f"{r['n']} special tags"
    return f"{what}, {r['init']}, {r['train']}"


def write_outputs(s: dict, out: Path) -> None:
    atomic_write_text(out / "results.json", json.dumps(s, indent=1))
    plot_curves(s, out / "bpb_curves.png")
    plot_ks(s, out / "k_sweep.png")
    atomic_write_text(out / "results.md", results_markdown(s))


def results_markdown(s: dict) -> str:
    c = s["config"]
    lines = [
        "# Adding tokens to a trained model", "",
        f"Base: `{s['base_ckpt']}` (vocab V = {s['old_vocab']}, trained on `{c['base_source']}`); "
        f"new domain `{c['new_source']}` ({s['new_train_chars']:,} train / {s['new_val_chars']:,} val chars); "
        f"old-domain val {s['old_val_chars']:,} chars. Every run is scored on the same text: "
        f"{s['eval_bytes_new']:,} bytes of the new domain and {s['eval_bytes_old']:,} of the old, cut as text before "
        f"tokenizing, every byte scored once (windows every half context). Fine-tuning: {c['steps']} steps x {c['batch_size']} x "
        f"{c['block_size']} tokens on {s['device']}. Regenerate: `python -m studies.new_tokens CONFIG`.", "",
        f"Base model before any change: new-domain {s['base_new_bpb']:.3f} bpb, old-domain {s['base_old_bpb']:.3f} bpb; "
        f"bytes/token {s['bytes_per_token_new_base']:.3f} (new), {s['bytes_per_token_old_base']:.3f} (old).", "",
        "## Step 0 (just after resizing, before any training)", "",
        "KL(base || grown) is per position on old-domain text in the old tokenizer (inputs identical), "
        "in nats; the bound log(1 + n/V) holds for mean init (derivation in `step0_old_text`). "
        "Mass = mean probability on the n new ids.", "",
        "| run | n | KL old text (mean / max) | bound log(1+n/V) | mass on new, old text | bound n/(V+n) "
        "| mass on new, new text |",
        "|---|---:|---:|---:|---:|---:|---:|"]
    for r in s["runs"]:
        lines.append(f"| {run_label(r)} | {r['n_new']} | {r['kl_old_mean']:.2e} / {r['kl_old_max']:.2e} | "
                     f"{r['bound_kl']:.2e} | {r['mass_new_on_old_text']:.2e} | {r['bound_mass']:.2e} | "
                     f"{r['mass_new_on_new_text']:.2e} |")
    lines += ["", "## After fine-tuning on the new domain", "",
              "bpb = bits per UTF-8 byte on held-out text (lower is better); forgetting = old-domain bpb "
              "change from step 0. Old rows identical: every pre-existing embedding row (and lm_head row) "
              "is bit-for-bit unchanged (torch.equal).", "",
              "| run | bytes/token new (base -> grown) | new bpb step 0 -> end | old bpb step 0 -> end "
              "| old rows identical | tied | s |",
              "|---|---:|---:|---:|:-:|:-:|---:|"]
    for r in s["runs"]:
        c0, c1 = r["curve"][0], r["curve"][-1]
        lines.append(f"| {run_label(r)} | {s['bytes_per_token_new_base']:.3f} -> {r['bytes_per_token_new']:.3f} | "
                     f"{c0['new_bpb']:.3f} -> {c1['new_bpb']:.3f} | {c0['old_bpb']:.3f} -> {c1['old_bpb']:.3f} "
                     f"({c1['old_bpb'] - c0['old_bpb']:+.3f}) | {'yes' if r['old_rows_identical'] else 'no'} | "
                     f"{'yes' if r['tied'] else 'no'} | {r['seconds']:.0f} |")
    lines += ["", "![bpb over fine-tuning](bpb_curves.png)", "", "![k sweep](k_sweep.png)", "",
              f"Total {s['seconds_total']:.0f} s (base model {s['seconds_base']:.0f} s).", ""]
    return "\n".join(lines)


def plot_curves(s: dict, path: Path) -> None:
    fig, (a, b) = pyplot().subplots(1, 2, figsize=(12, 4.5))
    for r in s["runs"]:
        steps = [p["step"] for p in r["curve"]]
        a.plot(steps, [p["new_bpb"] for p in r["curve"]], marker=".", label=run_label(r))
        b.plot(steps, [p["old_bpb"] for p in r["curve"]], marker=".", label=run_label(r))
    a.axhline(s["base_new_bpb"], color="gray", ls=":", label="base model, base tokenizer")
    b.axhline(s["base_old_bpb"], color="gray", ls=":", label="base model, base tokenizer")
    a.set(title="new domain (learning)", xlabel="fine-tuning step", ylabel="val bits per byte")
    b.set(title="old domain (forgetting)", xlabel="fine-tuning step", ylabel="val bits per byte")
    a.legend(fontsize=7)
    save_figure(fig, path, dpi=110)


def plot_ks(s: dict, path: Path) -> None:
    rs = sorted((r for r in s["runs"] if r["method"] == "merges" and r["init"] == "mean"
                 and r["train"] == "new_rows"), key=lambda r: r["n"])
    fig, a = pyplot().subplots(figsize=(6, 4.5))
    ks = [0] + [r["n"] for r in rs]
    a.plot(ks, [s["bytes_per_token_new_base"]] + [r["bytes_per_token_new"] for r in rs], "o-", color="C0")
    a.set(xlabel="new merges k", ylabel="new-domain bytes per token", title="k sweep (mean init, new rows only)")
    a.yaxis.label.set_color("C0")
    b = a.twinx()
    b.plot(ks, [s["base_new_bpb"]] + [r["new_bpb_final"] for r in rs], "s--", color="C1")
    b.set_ylabel("new-domain val bits per byte after fine-tuning", color="C1")
    save_figure(fig, path, dpi=110)


def main(argv=None) -> int:
    return study_main(argv, NewTokensConfig, run_study, results_markdown, "python -m studies.new_tokens",
                      "Grow a trained model's vocabulary (new merges or special tokens), fine-tune on a new "
                      "domain, and report step-0 effects, learning, forgetting and compression. Writes "
                      "OUT_DIR/results.md, results.json and plots.")


if __name__ == "__main__":
    sys.exit(main())
