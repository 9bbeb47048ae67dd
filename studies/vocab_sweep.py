"""Study 1: which vocabulary size should my model have? Measured in the model, in bits per byte.

    python -m studies.vocab_sweep configs/sweep-tiny.toml [--key=value ...]   # CPU, minutes
    python -m studies.vocab_sweep configs/sweep-gpu.toml                      # one GPU, < 1 hour

The recipe (each step prints what it is doing):
1. Split the corpus by document into tokenizer-train, model-train and validation text.
2. Train ONE tokenizer at the largest vocabulary size; every smaller one is `truncated(V)`. BPE is
   greedy, so the first V-256 merges of a 32k run are exactly what a run at V would learn.
3. Encode model-train and val text with each tokenizer into shards (data.prepare; cached by hash).
4. Train one model per V (and per seed) with the same non-embedding parameters and the same
   budget: training BYTES or training FLOPs (GPT.flops_per_token: 6 (N_nonemb + V d) + attention).
   Context is fixed in bytes by default: every V sees windows of the same bytes and trains the
   same steps of the same bytes (a block of context / bytes-per-token tokens); with context in
   tokens a larger V sees more text per window and fewer steps, two confounds on top of V.
5. Score every model on the same validation TEXT in bits per byte, every byte once, each with at
   least half a context before it. Loss per token is not comparable across vocabularies (bigger
   V: fewer, harder tokens); loss per byte is.
6. Write results.csv, results.md and three plots into out_dir.
"""
import argparse
import csv
import dataclasses
import hashlib
import io
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from data.loader import ShardLoader
from data.shards import load_token_bytes, read_manifest, read_shard
from data.sources import iter_documents
from model.gpt import GPT, GPTConfig
from studies.common import (StudyError, atomic_write_text, docs_digest, line_plot,
                            markdown_table, prepare_cached, scoring_windows, split_documents,
                            study_main, text_table, utf8_bytes, write_jsonl)
from tokenizer import SPLIT_PATTERNS, RegexTokenizer, load
from tokenizer.cli import ArgumentParser
from training import (MODEL_KEYS, ConfigError, coerce, device_peak_flops, field_types, load_config,
                      load_model, parse_overrides, pick_device, read_toml, train)

RARE = 10  # "rarely seen" threshold: ids the model trained on fewer than this many times
EVAL_VERSION = 3  # bump when evaluate_run changes, so cached runs are scored again

# TrainConfig keys the sweep sets per run itself; every other TrainConfig key passes through.
CONTROLLED = {"data_dir", "tokenizer", "out_dir", "seed", "block_size", "max_steps", "stop_at",
              "warmup_steps", "eval_interval", "eval_batches", "resume", "total_batch_tokens",
              "log_interval", "ckpt_interval"}


@dataclass
class SweepConfig:
    # corpus and split
    source: list = field(default_factory=lambda: ["shakespeare"])  # data.sources names or paths
    txt_mode: str = "file"           # how .txt files split into documents (see data.prepare)
    max_documents: int = 0           # 0 = all
    val_fraction: float = 0.1        # share of documents held out for validation
    tokenizer_fraction: float = 0.3  # share of documents the tokenizer trains on
    # tokenizers
    vocab_sizes: list = field(default_factory=lambda: [256, 512, 1024, 2048, 4096])
    pattern: str = "gpt4"            # gpt4 | gpt2 | a regex of your own
    # budget and context
    budget: str = "bytes"            # bytes: same training bytes per V | flops: same training FLOPs
    train_bytes: int = 2_000_000     # budget=bytes: UTF-8 bytes of training text each model sees
    train_flops: float = 0.0         # budget=flops: training FLOPs each model spends
    context_unit: str = "bytes"      # bytes: about `context` bytes, same steps for every V | tokens
    context: int = 64
    grad_accum: int = 1              # micro-batches per optimizer step
    warmup_frac: float = 0.1         # warmup steps as a share of each run's steps
    seeds: list = field(default_factory=lambda: [1337])
    # bookkeeping
    out_dir: str = "studies/out/sweep"
    workers: int = 1                 # processes for tokenizer training and encoding
    threads: int = 0                 # torch CPU threads (0 = torch's default); 1 is far faster
                                     # than 2 on a CPU that other jobs share (measured ~10x)
    train: dict = field(default_factory=dict)  # the pass-through TrainConfig keys (model, lr, ...)


SWEEP_HELP = {  # --help text per key (the comments above, for the command line)
    "source": "corpus: data.sources recipe names and/or paths, comma-separated",
    "txt_mode": "how .txt files split into documents: file | lines | separator",
    "max_documents": "read at most this many documents (0 = all)",
    "val_fraction": "share of documents held out for validation",
    "tokenizer_fraction": "share of documents the tokenizer trains on",
    "vocab_sizes": "vocabulary sizes to compare, comma-separated (256 = bytes only)",
    "pattern": "split pattern: gpt4 | gpt2 | a regex",
    "budget": "what every model gets the same amount of: bytes | flops",
    "train_bytes": "budget=bytes: UTF-8 bytes of training text per model",
    "train_flops": "budget=flops: training FLOPs per model",
    "context_unit": "bytes: every V sees ~context bytes, same steps | tokens: block_size = context",
    "context": "context length, in context_unit",
    "grad_accum": "micro-batches per optimizer step",
    "warmup_frac": "warmup steps as a share of each run's steps",
    "seeds": "seeds, comma-separated; several give mean +- sd",
    "out_dir": "where tokenizers, shards, runs and results go",
    "workers": "processes for tokenizer training and encoding",
    "threads": "torch CPU threads, 0 = torch's default (1 is best on a shared CPU)",
}


def _train_keys():
    return {k: t for k, t in field_types().items() if k not in CONTROLLED}


def load_sweep_config(path=None, overrides=None):
    """SweepConfig from defaults <- TOML <- overrides ({key: value} or ["--key=value", ...]).

    Keys are SweepConfig's fields plus any TrainConfig key the sweep does not set itself
    (n_layer, n_embd, lr, device, ...); those go to every run unchanged.
    """
    defaults, train_keys = SweepConfig(), _train_keys()
    values, train = {}, {}

    def put(key, value, where):
        if key in SWEEP_HELP:
            values[key] = coerce(key, value, getattr(defaults, key), where, StudyError)
            if values[key] == []:
                raise StudyError(f"{where}: {key} must be a non-empty list, got {value!r}")
        elif key in train_keys:
            train[key] = value
        elif key in CONTROLLED:
            raise StudyError(f"{where}: {key!r} is set by the sweep for each run; see --help")
        else:
            raise StudyError(f"{where}: unknown key {key!r} (python -m studies.vocab_sweep --help "
                             f"lists them)")

    for key, value in (read_toml(path, StudyError) if path else {}).items():
        put(key, value, str(path))
    if isinstance(overrides, (list, tuple)):
        overrides = parse_overrides(overrides)
    for key, value in (overrides or {}).items():
        put(key, value, "command line")
    cfg = SweepConfig(**values, train=train)
    try:  # validate the pass-through keys now, not after the tokenizer has trained
        load_config(None, {**train, "data_dir": "unused"})
    except ConfigError as e:
        raise StudyError(str(e)) from None
    if cfg.budget not in ("bytes", "flops"):
        raise StudyError(f"budget must be 'bytes' or 'flops', got {cfg.budget!r}")
    if cfg.budget == "flops" and cfg.train_flops <= 0:
        raise StudyError("budget = 'flops' needs train_flops > 0 (e.g. train_flops = 1e15)")
    if cfg.budget == "bytes" and cfg.train_bytes <= 0:
        raise StudyError("budget = 'bytes' needs train_bytes > 0")
    if cfg.context_unit not in ("tokens", "bytes"):
        raise StudyError(f"context_unit must be 'tokens' or 'bytes', got {cfg.context_unit!r}")
    if cfg.context < 2 or cfg.grad_accum < 1:
        raise StudyError("context must be >= 2 and grad_accum >= 1")
    if min(cfg.vocab_sizes) < 256 or len(set(cfg.vocab_sizes)) != len(cfg.vocab_sizes):
        raise StudyError(f"vocab_sizes must be distinct and >= 256, got {cfg.vocab_sizes}")
    cfg.vocab_sizes = sorted(cfg.vocab_sizes)
    return cfg


# ---------------------------------------------------------------------------------- arithmetic

def plan_steps(budget, amount, tokens_per_step, bytes_per_token=None, flops_per_tok=None):
    """Optimizer steps that spend `amount` bytes or FLOPs, rounded to the nearest step (>= 1).

    Rounding to the nearest step keeps each run within half a step of the budget.
    """
    if budget == "bytes":
        per_step = tokens_per_step * bytes_per_token
    elif budget == "flops":
        per_step = tokens_per_step * flops_per_tok
    else:
        raise StudyError(f"budget must be 'bytes' or 'flops', got {budget!r}")
    return max(1, round(amount / per_step))


def model_params(train_cfg, n_vocab, block_size):
    """(non-embedding params, vocab-dependent params, padded vocab rows, training FLOPs per token).

    Non-embedding means independent of the vocabulary: with untied embeddings the lm_head is
    counted with the embeddings here, so every V gets the same non-embedding parameters. The
    FLOPs are the model's own count (GPT.flops_per_token): the output projection's width is the
    padded vocabulary, which is what makes a bigger vocabulary cost more per token.
    """
    keys = {k: getattr(train_cfg, k) for k in MODEL_KEYS if k != "block_size"}
    mcfg = GPTConfig(vocab_size=n_vocab, block_size=block_size, **keys)
    with torch.device("meta"):  # shapes only: no memory, no init cost even at 32k x 1024
        model = GPT(mcfg)
    total = model.num_params(non_embedding=False)
    vocab_params = mcfg.padded_vocab_size * mcfg.n_embd * (1 if mcfg.tie_embeddings else 2)
    if not mcfg.rope:
        vocab_params += block_size * mcfg.n_embd  # wpe: an embedding table, but of positions
    return total - vocab_params, vocab_params, mcfg.padded_vocab_size, model.flops_per_token()


def replay_training_tokens(shard_dir, batch_size, block_size, seed, n_batches, n_vocab,
                           token_bytes, progress=False):
    """(input-id counts [n_vocab], target bytes) over exactly the batches a run trained on.

    train_gpt draws micro-batch k from ShardLoader(seed) in order, and batch k depends only on
    (seed, rank, k), so drawing the same n_batches again shows what the model saw, id by id.
    """
    loader = ShardLoader(shard_dir, "train", batch_size, block_size, seed=seed)
    counts = np.zeros(n_vocab, dtype=np.int64)
    target_bytes = 0
    for _ in tqdm(range(n_batches), desc="  counting seen tokens", disable=not progress,
                  leave=False):
        x, y = loader.next_batch()
        counts += np.bincount(x.numpy().ravel(), minlength=n_vocab)
        target_bytes += int(token_bytes[y.numpy()].sum())
    return counts, target_bytes


# ---------------------------------------------------------------------------------- the steps

def train_tokenizers(cfg, docs, out, log=print):
    """Train once at max(V), cache it by (documents, pattern, V), save every truncation."""
    vmax = max(cfg.vocab_sizes)
    pattern = SPLIT_PATTERNS.get(cfg.pattern, cfg.pattern)  # a name, or a regex of your own
    key = hashlib.sha256(f"{docs_digest(docs)} {pattern} {vmax}".encode()).hexdigest()[:16]
    tok_dir = out / "tokenizers" / key
    big_path = tok_dir / f"v{vmax}.model"
    if big_path.is_file():
        big = load(big_path)
        log(f"[2/6] tokenizer: V={vmax} trained earlier, loaded from {big_path} (training is done "
            f"once per corpus; smaller V are truncations)")
    else:
        log(f"[2/6] tokenizer: training ONCE at V={vmax} on {utf8_bytes(docs):,} bytes "
            f"({len(docs)} documents); every smaller V is a truncation of it")
        t0 = time.perf_counter()
        big = RegexTokenizer(pattern=pattern).train(docs, vmax, workers=cfg.workers)
        log(f"  trained in {time.perf_counter() - t0:.1f} s (one run serves all "
            f"{len(cfg.vocab_sizes)} vocabulary sizes)")
        big.save(tok_dir / f"v{vmax}")
    paths = {}
    for v in cfg.vocab_sizes:
        path = tok_dir / f"v{v}.model"
        if not path.is_file():
            big.truncated(v).save(tok_dir / f"v{v}")
        paths[v] = path
    return paths


def plan_run(cfg, meta, vocab_size):
    """Everything about one V's runs that follows from the config and its shards' manifest."""
    train, val = meta["splits"]["train"], meta["splits"]["val"]
    # the training stream's bytes per token, <|endoftext|> separators (0 bytes) included: what
    # a batch of the stream holds on average
    stream_bpt = train["bytes"] / train["tokens"]
    text_bpt_val = val["bytes"] / (val["tokens"] - val["documents"])
    block = cfg.context if cfg.context_unit == "tokens" else max(8, round(cfg.context / stream_bpt))
    tcfg = load_config(None, {**cfg.train, "data_dir": "unused", "block_size": block})
    n_vocab = meta["vocab_size"]
    nonemb, vocab_params, _, fpt = model_params(tcfg, n_vocab, block)
    tokens_per_step = tcfg.batch_size * block * cfg.grad_accum
    if cfg.budget == "bytes" and cfg.context_unit == "bytes":
        # every V: the same steps, each of batch_size windows of about `context` bytes (the block
        # is rounded to whole tokens, so a step holds the same bytes to within half a token a window)
        steps = plan_steps("bytes", cfg.train_bytes, tcfg.batch_size * cfg.grad_accum, cfg.context)
    else:
        amount = cfg.train_bytes if cfg.budget == "bytes" else cfg.train_flops
        steps = plan_steps(cfg.budget, amount, tokens_per_step, stream_bpt, fpt)
    return {"vocab_size": vocab_size, "n_vocab": n_vocab, "block_size": block,
            "batch_size": tcfg.batch_size, "tokens_per_step": tokens_per_step, "steps": steps,
            "train_tokens": steps * tokens_per_step,
            "planned_train_bytes": steps * tokens_per_step * stream_bpt,
            "train_bytes_per_token": stream_bpt, "val_bytes_per_token": text_bpt_val,
            "context_bytes": block * stream_bpt,
            "nonemb_params": nonemb, "emb_params": vocab_params, "flops_per_token": fpt,
            "flops_per_byte": fpt / stream_bpt, "train_flops": fpt * steps * tokens_per_step}


def _time_estimate(flops, mfu=(0.15, 0.30)):
    """' (estimate: ...)' on a GPU whose bf16 peak training.runtime knows, else ''. A range: small
    models with small micro-batches reach 15-30% of the peak; each run prints its measured MFU."""
    peak = device_peak_flops() if torch.cuda.is_available() else None
    if not peak:
        return ""
    slow, fast = (flops / (m * peak) / 60 for m in mfu)
    return (f" (estimate: {fast:.0f}-{slow:.0f} min of training at {mfu[1]:.0%}-{mfu[0]:.0%} of this "
            f"GPU's bf16 peak, plus data preparation and evaluation)")


def val_stream(shard_dir):
    """The val split's tokens as one array ([eot] + document, for each val document)."""
    meta = read_manifest(shard_dir)
    shards = meta["splits"]["val"]["shards"]
    return np.concatenate([np.asarray(read_shard(Path(shard_dir) / s)) for s in shards])


@torch.no_grad()
def evaluate_run(run_dir, shard_dir, device="cpu"):
    """A run's final checkpoint scored on the whole val text, per val document.

    Returns val_loss (nats per token), val_bpb, val_bytes (UTF-8 bytes of every scored target: the
    whole val text, whatever V is), val_tokens, and doc_nats / doc_bytes per val document (each
    document's tokens and the separator that ends it), which the paired bootstrap resamples.
    """
    model, _ = load_model(run_dir, device)
    stream, table = val_stream(shard_dir), load_token_bytes(shard_dir)
    ends = np.cumsum(stream == read_manifest(shard_dir)["eot_id"])  # every document starts with eot
    doc_of = np.concatenate([[0], ends[:-1] - 1])  # target i's document: eots strictly before it, - 1
    doc_nats = np.zeros(int(ends[-1]))
    T = model.config.block_size
    # the same windows over the positions, to know which target each loss belongs to
    for (x, y), (_, pos) in zip(scoring_windows(stream, T), scoring_windows(np.arange(len(stream)), T)):
        logits, _ = model(x.to(device))
        nats = F.cross_entropy(logits.float().flatten(0, 1), y.to(device).flatten(), ignore_index=-1,
                               reduction="none")
        keep = pos.flatten() >= 0
        np.add.at(doc_nats, doc_of[pos.flatten()[keep].numpy()], nats[keep.to(device)].double().cpu().numpy())
    doc_bytes = np.bincount(doc_of[1:], weights=table[stream[1:]], minlength=len(doc_nats))
    return {"val_loss": doc_nats.sum() / (len(stream) - 1),
            "val_bpb": doc_nats.sum() / (math.log(2) * doc_bytes.sum()),
            "val_bytes": int(doc_bytes.sum()), "val_tokens": len(stream) - 1,
            "doc_nats": doc_nats.tolist(), "doc_bytes": doc_bytes.astype(int).tolist()}


def paired_bootstrap(nats_a, nats_b, doc_bytes, n_resamples=2000, seed=0):
    """(bpb of a minus bpb of b, 2.5th and 97.5th percentiles) over val documents drawn with replacement.

    Paired: both are scored on the same documents, so each resample takes the same documents for
    both and the documents' own difficulty cancels; what remains is how much the difference
    depends on which documents happen to be in val.
    """
    a, b, nbytes = (np.asarray(v, dtype=np.float64) for v in (nats_a, nats_b, doc_bytes))
    idx = np.random.default_rng(seed).integers(0, len(nbytes), size=(n_resamples, len(nbytes)))
    diffs = (a - b)[idx].sum(1) / (math.log(2) * nbytes[idx].sum(1))
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return (a - b).sum() / (math.log(2) * nbytes.sum()), float(lo), float(hi)


def run_one(cfg, plan, shard_dir, tok_path, seed, run_dir, log=print):
    """Train one model (or reuse a finished identical run) and score it on the whole val text.

    Returns train()'s result dict with the evaluation's val_loss, val_bpb, val_bytes in place of
    the trainer's own (a one-batch check; the sweep's evaluation is `evaluate_run`)."""
    steps = plan["steps"]
    tcfg = load_config(None, {
        **cfg.train, "data_dir": str(shard_dir), "tokenizer": str(tok_path),
        "out_dir": str(run_dir), "seed": seed, "block_size": plan["block_size"],
        "max_steps": steps, "warmup_steps": max(1, round(cfg.warmup_frac * steps)),
        "total_batch_tokens": plan["tokens_per_step"], "eval_interval": steps,
        "eval_batches": 1, "log_interval": max(1, steps // 5), "ckpt_interval": 0,
        "end_sample_tokens": cfg.train.get("end_sample_tokens", 0),
        "overwrite": True})  # run_dir is the sweep's own: a changed config retrains it in place
    key = json.dumps(dataclasses.asdict(tcfg), sort_keys=True)
    done = Path(run_dir) / "result.json"
    saved = json.loads(done.read_text()) if done.is_file() and (Path(run_dir) / "ckpt.pt").is_file() else {}
    if saved.get("config") == key:
        log(f"  finished earlier: {done}")
        if saved.get("eval_version") == EVAL_VERSION:
            return {**saved["result"], **saved["eval"]}
        result = saved["result"]  # trained under the same config: only score it again
    else:
        result = train(tcfg)
    evaluation = evaluate_run(run_dir, shard_dir, pick_device(tcfg.device))
    atomic_write_text(done, json.dumps({"config": key, "result": result, "eval": evaluation,
                                        "eval_version": EVAL_VERSION}, indent=1))
    return {**result, **evaluation}


def run_sweep(cfg, log=print, progress=True):
    """The whole study; returns the per-V rows written to results.csv."""
    old_threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _run_sweep(cfg, log, progress)
    finally:  # a process-wide setting: give the caller (e.g. a test session) its own back
        torch.set_num_threads(old_threads)


def _run_sweep(cfg, log, progress):
    t_start = time.perf_counter()
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    log(f"[1/6] reading and splitting {', '.join(map(str, cfg.source))} by document")
    docs = list(iter_documents(cfg.source, txt_mode=cfg.txt_mode,
                               max_documents=cfg.max_documents or None))
    parts, val_threshold = split_documents(docs, cfg.val_fraction, cfg.tokenizer_fraction)
    for name in ("tokenizer", "train", "val"):
        log(f"  {name:>9}: {len(parts[name]):5d} documents, {utf8_bytes(parts[name]):>12,} bytes")
    model_docs = out / "corpus" / f"model-{docs_digest(parts['train'] + parts['val'])[:16]}.jsonl"
    if not model_docs.is_file():
        write_jsonl(model_docs, parts["train"] + parts["val"])

    tok_paths = train_tokenizers(cfg, parts["tokenizer"], out, log)

    log(f"[3/6] encoding model-train and val text for {len(cfg.vocab_sizes)} vocabularies")
    shards, plans = {}, {}
    for i, v in enumerate(cfg.vocab_sizes, 1):
        log(f"  ({i}/{len(cfg.vocab_sizes)}) V={v}")
        shard_dir, meta = prepare_cached(tok_paths[v], model_docs, val_threshold,
                                         out / "shards", workers=cfg.workers, log=log)
        if meta["splits"]["val"]["documents"] != len(parts["val"]):
            raise StudyError(f"{shard_dir}: val has {meta['splits']['val']['documents']} documents, "
                             f"the split made {len(parts['val'])}; delete {shard_dir} and rerun")
        shards[v] = shard_dir
        plans[v] = plan_run(cfg, meta, v)

    log(f"[4/6] plan ({cfg.budget} budget, context {cfg.context} {cfg.context_unit}):")
    log(text_table(["V", "block", "steps", "tokens", "bytes", "FLOPs"],
                   [[p["vocab_size"], p["block_size"], p["steps"], f"{p['train_tokens']:,}",
                     f"{p['planned_train_bytes']:,.0f}", f"{p['train_flops']:.2e}"]
                    for p in plans.values()]))
    total_flops = sum(p["train_flops"] for p in plans.values()) * len(cfg.seeds)
    log(f"  total training compute: {total_flops:.2e} FLOPs over "
        f"{len(plans) * len(cfg.seeds)} runs{_time_estimate(total_flops)}")

    results = {v: [] for v in cfg.vocab_sizes}
    n_runs, k = len(cfg.vocab_sizes) * len(cfg.seeds), 0
    for v in cfg.vocab_sizes:
        for seed in cfg.seeds:
            k += 1
            log(f"[5/6] run {k}/{n_runs}: V={v} seed={seed}, {plans[v]['steps']} steps "
                f"({time.perf_counter() - t_start:.0f} s elapsed)")
            results[v].append(run_one(cfg, plans[v], shards[v], tok_paths[v], seed,
                                      out / "runs" / f"v{v}_s{seed}", log))

    scored = {r["val_bytes"] for res in results.values() for r in res}
    if len(scored) != 1:
        raise StudyError(f"the runs were scored on different val text ({sorted(scored)} bytes); "
                         f"delete {out / 'shards'} and rerun")
    log("[6/6] counting what each model saw, writing results")
    rows = []
    for v in cfg.vocab_sizes:
        p, res = plans[v], results[v]
        token_bytes = load_token_bytes(shards[v])
        counts, seen_bytes = replay_training_tokens(
            shards[v], p["batch_size"], p["block_size"], cfg.seeds[0],
            p["steps"] * cfg.grad_accum, p["n_vocab"], token_bytes, progress=progress)
        np.save(out / "runs" / f"v{v}_s{cfg.seeds[0]}" / "train_counts.npy", counts)
        bpbs = [r["val_bpb"] for r in res]
        tps = statistics.mean(r["tokens_per_s"] for r in res)
        rows.append({
            **{k: p[k] for k in ("vocab_size", "n_vocab", "block_size", "steps", "train_tokens")},
            "train_bytes": seen_bytes,
            "context_bytes": round(p["context_bytes"], 1),
            "val_bytes": res[0]["val_bytes"], "val_documents": len(res[0]["doc_bytes"]),
            "val_bytes_per_token": round(p["val_bytes_per_token"], 4),
            "emb_params": p["emb_params"], "nonemb_params": p["nonemb_params"],
            "flops_per_token": p["flops_per_token"], "flops_per_byte": round(p["flops_per_byte"]),
            "train_flops": p["train_flops"],
            "train_tokens_per_s": round(tps), "train_bytes_per_s": round(tps * p["train_bytes_per_token"]),
            "val_bpb_mean": round(statistics.mean(bpbs), 4),
            "val_bpb_sd": round(statistics.stdev(bpbs), 4) if len(bpbs) > 1 else 0.0,
            "n_seeds": len(bpbs),
            "val_loss_per_token": round(statistics.mean(r["val_loss"] for r in res), 4),
            "rare_vocab_frac": round(float((counts[:v] < RARE).mean()), 4),
            "unseen_ids": int((counts[:v] == 0).sum()),
        })
    # each V against the best, on the same documents; nats averaged over the same seeds
    doc_bytes = results[cfg.vocab_sizes[0]][0]["doc_bytes"]
    mean_nats = {v: np.mean([r["doc_nats"] for r in results[v]], axis=0) for v in cfg.vocab_sizes}
    best = min(rows, key=lambda r: r["val_bpb_mean"])["vocab_size"]
    for row in rows:
        diff, lo, hi = paired_bootstrap(mean_nats[row["vocab_size"]], mean_nats[best], doc_bytes)
        row.update(bpb_minus_best=round(diff, 4), ci95_lo=round(lo, 4), ci95_hi=round(hi, 4))
    write_results(out, rows, cfg, time.perf_counter() - t_start)
    log(f"done in {time.perf_counter() - t_start:.0f} s: {out / 'results.md'}")
    return rows


# ---------------------------------------------------------------------------------- the report

def write_results(out, rows, cfg, seconds):
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "results.csv", buf.getvalue())

    header = ["V", "bytes/token (val)", "context (tokens / bytes)", "steps", "emb params",
              "non-emb params", "FLOPs/byte", "train tok/s", "train bytes/s", "train bytes", "val bpb", "minus best V [95% CI]",
              f"vocab seen <{RARE}x"]
    table = [[r["vocab_size"], f"{r['val_bytes_per_token']:.3f}",
              f"{r['block_size']} / {r['context_bytes']:.0f}", r["steps"], f"{r['emb_params']:,}",
              f"{r['nonemb_params']:,}", f"{r['flops_per_byte']:,}", f"{r['train_tokens_per_s']:,}",
              f"{r['train_bytes_per_s']:,}", f"{r['train_bytes']:,}", _bpb(r), _vs_best(r),
              f"{r['rare_vocab_frac']:.1%}"] for r in rows]
    best = min(rows, key=lambda r: r["val_bpb_mean"])
    budget = (f"{cfg.train_bytes:,} training bytes" if cfg.budget == "bytes"
              else f"{cfg.train_flops:.3g} training FLOPs")
    if cfg.context_unit == "bytes":
        held = (f"context in bytes: every V sees windows of about {cfg.context} bytes "
                f"({rows[0]['block_size']}-{rows[-1]['block_size']} tokens) and "
                + (f"trains the same {rows[0]['steps']} steps of the same bytes per step"
                   if cfg.budget == "bytes" else "the same FLOPs"))
    else:
        held = (f"context in tokens: every V sees {cfg.context}-token windows, so a larger V sees "
                f"more bytes of context per window and fewer steps of the same bytes budget")
    md = (f"# Vocabulary sweep\n\nSource {', '.join(map(str, cfg.source))}; each model: same "
          f"non-embedding parameters, {budget}; {held}; seeds {cfg.seeds}. Every model is scored on "
          f"the same {rows[0]['val_bytes']:,} bytes of validation text, every byte once (windows "
          f"overlapping by half a context, each byte predicted with at least half a context before "
          f"it); val bpb is mean ± sd over seeds. \"minus best V\": each V's bpb minus the best V's, "
          f"with a 95% paired bootstrap interval over the {rows[0]['val_documents']} val "
          f"documents (same documents, nats averaged over the same seeds); \"not distinguishable\" "
          f"when it contains 0. Wall time {seconds:.0f} s.\n\n"
          + markdown_table(header, table) +
          f"\nLowest val bpb: V={best['vocab_size']} ({_bpb(best)}). Compare bits per byte, not "
          f"loss per token: a larger vocabulary predicts fewer, harder tokens.\n")
    atomic_write_text(out / "results.md", md)
    print(text_table(header, table))

    vs = [r["vocab_size"] for r in rows]
    sd = [r["val_bpb_sd"] for r in rows] if any(r["val_bpb_sd"] for r in rows) else None
    note = f"{budget} per model; {len(cfg.seeds)} seed(s)" + (", bars = sd" if sd else "")
    line_plot(out / "bpb_vs_vocab.png", {"val": (vs, [r["val_bpb_mean"] for r in rows], sd)},
              xlabel="vocabulary size V (log2 scale)", ylabel="validation loss (bits per byte)",
              title="Model quality vs vocabulary size", log2_x=True, note=note)
    line_plot(out / "bytes_per_token_vs_vocab.png",
              {"val text": (vs, [r["val_bytes_per_token"] for r in rows], None)},
              xlabel="vocabulary size V (log2 scale)", ylabel="UTF-8 bytes per token",
              title="Compression vs vocabulary size", log2_x=True)
    line_plot(out / "bpb_vs_flops.png",
              {"val": ([r["train_flops"] for r in rows], [r["val_bpb_mean"] for r in rows], sd)},
              xlabel="training compute (FLOPs, log scale)",
              ylabel="validation loss (bits per byte)", title="Model quality vs training compute",
              log_x=True, point_labels=[f"V={v}" for v in vs], note=note)


def _vs_best(r):
    if r["bpb_minus_best"] == 0 and r["ci95_lo"] == r["ci95_hi"] == 0:
        return "best"
    ci = f"{r['bpb_minus_best']:+.4f} [{r['ci95_lo']:+.4f}, {r['ci95_hi']:+.4f}]"
    return ci + (" not distinguishable" if r["ci95_lo"] <= 0 <= r["ci95_hi"] else "")


def _bpb(r):
    return f"{r['val_bpb_mean']:.4f}" + (f" ± {r['val_bpb_sd']:.4f}" if r["n_seeds"] > 1 else "")


# ---------------------------------------------------------------------------------- command line

def build_parser():
    p = ArgumentParser(
        prog="python -m studies.vocab_sweep", allow_abbrev=False, sep="_",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n\n", 2)[2],
        epilog="Any train_gpt.py key not set by the sweep (n_layer, n_head, n_embd, batch_size, lr, "
               "min_lr_frac, weight_decay, device, dtype, compile, tie_embeddings, ...) may also be "
               "given, in the TOML or as --key=value; it applies to every run. Lists: "
               "--vocab_sizes=256,512,1024.")
    p.add_argument("config", nargs="?", help="TOML file, e.g. configs/sweep-tiny.toml")
    defaults = SweepConfig()
    for name in SWEEP_HELP:
        value = getattr(defaults, name)
        p.add_argument(f"--{name}", dest=name, metavar=type(value).__name__.upper(),
                       default=argparse.SUPPRESS, help=f"{SWEEP_HELP[name]} (default {value!r})")
    return p


def main(argv=None):
    return study_main(argv, SweepConfig, run_sweep, None, "python -m studies.vocab_sweep", __doc__,
                      parser=build_parser(), load=load_sweep_config)


if __name__ == "__main__":
    sys.exit(main())
