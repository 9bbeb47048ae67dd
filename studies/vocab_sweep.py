"""Study 1: which vocabulary size should my model have? Measured in the model, in bits per byte.

    python -m studies.vocab_sweep configs/sweep-tiny.toml [--key=value ...]   # CPU, minutes
    python -m studies.vocab_sweep configs/sweep-gpu.toml                      # one GPU, < 1 hour

The recipe (each step prints what it is doing):
1. Split the corpus by document into tokenizer-train, model-train, validation and (with an
   lr_grid) learning-rate tuning text: four disjoint sets of documents.
2. For each tokenizer family (byte-level BPE, SentencePiece BPE), train ONE tokenizer at the
   largest vocabulary size; every smaller one is `truncated(V)`. BPE is greedy, so the first
   merges of a 32k run are exactly what a run at V would learn.
3. Encode model-train, val and tuning text with each tokenizer into shards (data.prepare; cached).
4. Train one model per (family, model size, V, seed) with the same non-embedding parameters
   within a size and the same budget: training BYTES or training FLOPs (GPT.flops_per_token:
   6 (N_nonemb + V d) + attention). Context is fixed in bytes by default: every V sees windows
   of the same bytes and trains the same steps of the same bytes (a block of context /
   bytes-per-token tokens); with context in tokens a larger V sees more text per window and
   fewer steps, two confounds on top of V. With an lr_grid, each (family, size, V) first trains
   the first seed at every lr, keeps the lr with the lowest bpb on the TUNING text (never val),
   and that very run is the first seed's final run; the other seeds train at that lr.
5. Score every model on the same validation TEXT in bits per byte, every byte once, each with at
   least half a context before it, and in Tao et al.'s unigram-normalised loss. Loss per token is
   not comparable across vocabularies (bigger V: fewer, harder tokens); loss per byte is.
6. Write results.csv (one row per run), summary.csv, results.md and three plots into out_dir.
"""
import argparse
import dataclasses
import hashlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from data.shards import load_token_bytes
from data.sources import iter_documents
from model.gpt import GPT, GPTConfig
from studies.common import (StudyError, docs_digest, prepare_cached, split_documents, study_main,
                            text_table, utf8_bytes, write_jsonl)
from studies.sweep_report import results_rows, summary_rows, write_results
from studies.sweep_runs import code_version, git_describe, run_jobs
from studies.sweep_scoring import replay_training_tokens
from tokenizer import SPLIT_PATTERNS, RegexTokenizer, SentencePieceTokenizer, load
from tokenizer.cli import ArgumentParser
from training import (MODEL_KEYS, ConfigError, coerce, device_peak_flops, field_types, load_config,
                      parse_overrides, pick_device, read_toml)

# The sweep's other parts, importable from here as they were before they had files of their own.
from studies.sweep_report import growth_verdict  # noqa: F401, E402
from studies.sweep_runs import run_job  # noqa: F401, E402
from studies.sweep_scoring import (EVAL_VERSION, RARE, evaluate_run,  # noqa: F401, E402
                                   paired_bootstrap, split_stream, unigram_normalized_bpb,
                                   val_stream)

FAMILIES = ("bytelevel", "sentencepiece")  # tokenizer_types
SIZE_KEYS = ("n_layer", "n_head", "n_embd")   # what one entry of model_sizes sets

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
    tune_fraction: float = 0.05      # share of documents lr tuning scores on (only with an lr_grid)
    # tokenizers
    tokenizer_types: list = field(default_factory=lambda: ["bytelevel"])  # and/or "sentencepiece"
    vocab_sizes: list = field(default_factory=lambda: [256, 512, 1024, 2048, 4096])
    pattern: str = "gpt4"            # gpt4 | gpt2 | a regex of your own (bytelevel only)
    # models
    model_sizes: list = field(default_factory=list)  # [{n_layer, n_head, n_embd}, ...]; [] = one
    lr_grid: list = field(default_factory=list)      # lrs tried per (family, size, V); [] = `lr`
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
    train_workers: int = 1           # model trainings run side by side, each in its own process
    threads: int = 0                 # torch CPU threads (0 = torch's default); 1 is far faster
                                     # than 2 on a CPU that other jobs share (measured ~10x)
    train: dict = field(default_factory=dict)  # the pass-through TrainConfig keys (model, lr, ...)


SWEEP_HELP = {  # --help text per key (the comments above, for the command line)
    "source": "corpus: data.sources recipe names and/or paths, comma-separated",
    "txt_mode": "how .txt files split into documents: file | lines | separator",
    "max_documents": "read at most this many documents (0 = all)",
    "val_fraction": "share of documents held out for validation",
    "tokenizer_fraction": "share of documents the tokenizer trains on",
    "tune_fraction": "share of documents the lr tuning is scored on (used only with an lr_grid)",
    "tokenizer_types": "tokenizer families, comma-separated: bytelevel, sentencepiece",
    "model_sizes": "model shapes LAYERSxHEADSxWIDTH, comma-separated, e.g. 2x4x64,4x4x128 "
                   "(TOML: a list of {n_layer, n_head, n_embd} tables); empty = n_layer/n_head/n_embd",
    "lr_grid": "learning rates to tune over per (family, size, V) on the tuning text, "
               "comma-separated; empty = the lr key, no tuning",
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
    "train_workers": "model trainings side by side, one process each (results do not depend on it)",
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
        if key == "model_sizes":
            values[key] = parse_model_sizes(value, where)
        elif key == "lr_grid":
            values[key] = coerce(key, value, [0.0], where, StudyError)
        elif key in SWEEP_HELP:
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
    bad = [t for t in cfg.tokenizer_types if t not in FAMILIES]
    if bad or len(set(cfg.tokenizer_types)) != len(cfg.tokenizer_types):
        raise StudyError(f"tokenizer_types must be distinct names among {', '.join(FAMILIES)}, "
                         f"got {cfg.tokenizer_types}")
    if any(lr <= 0 for lr in cfg.lr_grid) or len(set(cfg.lr_grid)) != len(cfg.lr_grid):
        raise StudyError(f"lr_grid must hold distinct positive learning rates, got {cfg.lr_grid}")
    if len(cfg.lr_grid) > 1 and not 0 < cfg.tune_fraction < 1:
        raise StudyError(f"tune_fraction must be in (0, 1) with an lr_grid, got {cfg.tune_fraction}")
    if cfg.train_workers < 1:
        raise StudyError(f"train_workers must be >= 1, got {cfg.train_workers}")
    for size in cfg.model_sizes:  # check each shape now, not after the tokenizers have trained
        try:
            load_config(None, {**cfg.train, **size, "data_dir": "unused"})
        except ConfigError as e:
            raise StudyError(f"model_sizes {size}: {e}") from None
    return cfg


def parse_model_sizes(value, where):
    """[{n_layer, n_head, n_embd}, ...] from TOML tables or "LxHxD" strings ("2x4x64,4x4x128")."""
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not value:
        raise StudyError(f"{where}: model_sizes must be a non-empty list, got {value!r}")
    sizes = []
    for item in value:
        if isinstance(item, str):
            parts = item.lower().split("x")
            if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
                raise StudyError(f"{where}: model size {item!r} must read LAYERSxHEADSxWIDTH, e.g. 2x4x64")
            item = dict(zip(SIZE_KEYS, map(int, parts)))
        if not isinstance(item, dict) or sorted(item) != sorted(SIZE_KEYS) or \
                not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in item.values()):
            raise StudyError(f"{where}: each model size needs positive ints n_layer, n_head and "
                             f"n_embd (and nothing else), got {item!r}")
        sizes.append({k: item[k] for k in SIZE_KEYS})
    if len({tuple(s.values()) for s in sizes}) != len(sizes):
        raise StudyError(f"{where}: model_sizes has a shape twice: {value!r}")
    return sizes


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



# ---------------------------------------------------------------------------------- the steps

def train_tokenizers(cfg, family, docs, out, log=print):
    """{V: .model path}: one `family` tokenizer trained at max(V) and cached by (documents,
    options, V), every smaller V its truncation. A V the family cannot have is left out, logged:
    SentencePiece with byte fallback needs 3 specials + 256 byte pieces + its kept characters."""
    vmax = max(cfg.vocab_sizes)
    if family == "bytelevel":
        options = SPLIT_PATTERNS.get(cfg.pattern, cfg.pattern)  # a name, or a regex of your own
        key = f"{docs_digest(docs)} {options} {vmax}"  # the key bytelevel sweeps always had
    else:
        options = "sentencepiece bpe byte_fallback"
        key = f"{docs_digest(docs)} {options} {vmax}"
    tok_dir = out / "tokenizers" / hashlib.sha256(key.encode()).hexdigest()[:16]
    big_path = tok_dir / f"v{vmax}.model"
    if big_path.is_file():
        big = load(big_path)
        log(f"[2/6] {family} tokenizer: V={vmax} trained earlier, loaded from {big_path} "
            f"(training is done once per corpus; smaller V are truncations)")
    else:
        log(f"[2/6] {family} tokenizer: training ONCE at V={vmax} on {utf8_bytes(docs):,} bytes "
            f"({len(docs)} documents); every smaller V is a truncation of it")
        t0 = time.perf_counter()
        if family == "bytelevel":
            big = RegexTokenizer(pattern=options).train(docs, vmax, workers=cfg.workers)
            big.save(tok_dir / f"v{vmax}")
        else:
            big = SentencePieceTokenizer().train(docs, vmax)
            tok_dir.mkdir(parents=True, exist_ok=True)
            big.save_sentencepiece(big_path)
        log(f"  trained in {time.perf_counter() - t0:.1f} s (one run serves all "
            f"{len(cfg.vocab_sizes)} vocabulary sizes)")
    paths = {}
    for v in cfg.vocab_sizes:
        path = tok_dir / f"v{v}.model"
        if not path.is_file():
            try:
                small = big.truncated(v)
            except ValueError as e:
                log(f"  skipping {family} V={v}: {e}")
                continue
            if family == "bytelevel":
                small.save(tok_dir / f"v{v}")
            else:
                small.save_sentencepiece(path)
        paths[v] = path
    return paths


def plan_run(cfg, meta, vocab_size, size=None):
    """Everything about one (V, model size)'s runs that follows from the config and its shards'
    manifest; `size` ({n_layer, n_head, n_embd}) replaces the config's own shape."""
    train, val = meta["splits"]["train"], meta["splits"]["val"]
    # the training stream's bytes per token, separators (<|endoftext|>: 0 bytes) included: what
    # a batch of the stream holds on average
    stream_bpt = train["bytes"] / train["tokens"]
    text_bpt_val = val["bytes"] / (val["tokens"] - val["documents"])
    block = cfg.context if cfg.context_unit == "tokens" else max(8, round(cfg.context / stream_bpt))
    tcfg = load_config(None, {**cfg.train, **(size or {}), "data_dir": "unused", "block_size": block})
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



def size_label(nonemb):
    """98,624 -> '99k', 1,234,567 -> '1.2M': a model size by its non-embedding parameters."""
    return f"{nonemb / 1e6:.1f}M" if nonemb >= 1e6 else f"{nonemb / 1e3:.0f}k"


def run_sweep(cfg, log=print, progress=True):
    """The whole study; returns the summary rows (one per family, size and V)."""
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
    version, described = code_version(), git_describe()
    tuning = len(cfg.lr_grid) > 1

    log(f"[1/6] reading and splitting {', '.join(map(str, cfg.source))} by document "
        f"(code version {version}{f', git {described}' if described else ''})")
    docs = list(iter_documents(cfg.source, txt_mode=cfg.txt_mode,
                               max_documents=cfg.max_documents or None))
    parts, val_threshold = split_documents(docs, cfg.val_fraction, cfg.tokenizer_fraction,
                                           cfg.tune_fraction if tuning else 0.0)
    for name in ("tokenizer", "train", "val") + (("tune",) if tuning else ()):
        log(f"  {name:>9}: {len(parts[name]):5d} documents, {utf8_bytes(parts[name]):>12,} bytes")
    model_docs = out / "corpus" / f"model-{docs_digest(parts['train'] + parts['val'])[:16]}.jsonl"
    if not model_docs.is_file():
        write_jsonl(model_docs, parts["train"] + parts["val"])
    # data.prepare splits by the val threshold, so with the val documents beside them the tuning
    # documents come out as the "train" split of their own shards
    tune_docs = out / "corpus" / f"tune-{docs_digest(parts['tune'] + parts['val'])[:16]}.jsonl"
    if tuning and not tune_docs.is_file():
        write_jsonl(tune_docs, parts["tune"] + parts["val"])

    tok_paths = {fam: train_tokenizers(cfg, fam, parts["tokenizer"], out, log)
                 for fam in cfg.tokenizer_types}

    base = load_config(None, {**cfg.train, "data_dir": "unused"})
    sizes = cfg.model_sizes or [{k: getattr(base, k) for k in SIZE_KEYS}]
    labels = [size_label(model_params(load_config(None, {**cfg.train, **s, "data_dir": "unused"}),
                                      256, 64)[0]) for s in sizes]
    labels = labels if len(set(labels)) == len(labels) else \
        [f"{lab}-{s['n_layer']}x{s['n_head']}x{s['n_embd']}" for lab, s in zip(labels, sizes)]
    lrs = cfg.lr_grid or [base.lr]

    n_sets = sum(len(p) for p in tok_paths.values())
    log(f"[3/6] encoding model-train, val{' and tuning' if tuning else ''} text for {n_sets} "
        f"tokenizers")
    shards, tune_shards, plans, k = {}, {}, {}, 0
    for fam, paths in tok_paths.items():
        for v, path in paths.items():
            k += 1
            log(f"  ({k}/{n_sets}) {fam} V={v}")
            shard_dir, meta = prepare_cached(path, model_docs, val_threshold, out / "shards",
                                             workers=cfg.workers, log=log)
            if meta["splits"]["val"]["documents"] != len(parts["val"]):
                raise StudyError(f"{shard_dir}: val has {meta['splits']['val']['documents']} "
                                 f"documents, the split made {len(parts['val'])}; delete "
                                 f"{shard_dir} and rerun")
            shards[fam, v] = shard_dir
            if tuning:
                tune_shards[fam, v], _ = prepare_cached(path, tune_docs, val_threshold,
                                                        out / "shards", workers=cfg.workers, log=log)
            for size, label in zip(sizes, labels):
                plans[fam, label, v] = plan_run(cfg, meta, v, size)
    combos = list(plans)

    log(f"[4/6] plan ({cfg.budget} budget, context {cfg.context} {cfg.context_unit}; "
        f"lr {'tuned over ' + str(lrs) + ' on the tuning text, first seed' if tuning else lrs[0]}):")
    log(text_table(["tokenizer", "size", "V", "block", "steps", "tokens", "bytes", "FLOPs"],
                   [[fam, label, p["vocab_size"], p["block_size"], p["steps"],
                     f"{p['train_tokens']:,}", f"{p['planned_train_bytes']:,.0f}",
                     f"{p['train_flops']:.2e}"] for (fam, label, _), p in plans.items()]))
    n_trainings = len(combos) * (len(cfg.seeds) + (len(lrs) - 1 if tuning else 0))
    total_flops = sum(p["train_flops"] for p in plans.values()) * n_trainings / len(combos)
    log(f"  total training compute: about {total_flops:.2e} FLOPs over {n_trainings} "
        f"trainings{_time_estimate(total_flops)}; {cfg.train_workers} side by side")

    threads = cfg.threads or (1 if cfg.train_workers > 1 else 0)
    size_of = dict(zip(labels, sizes))

    def job(fam, label, v, seed, lr, splits):
        p = plans[fam, label, v]
        steps = p["steps"]
        tag = ("" if fam == "bytelevel" else "_sp") + (f"_{label}" if cfg.model_sizes else "") \
            + (f"_lr{lr:g}" if cfg.lr_grid else "")
        run_dir = out / "runs" / f"v{v}_s{seed}{tag}"
        tcfg = load_config(None, {
            **cfg.train, **size_of[label], "lr": lr, "data_dir": str(shards[fam, v]),
            "tokenizer": str(tok_paths[fam][v]), "out_dir": str(run_dir), "seed": seed,
            "block_size": p["block_size"], "max_steps": steps,
            "warmup_steps": max(1, round(cfg.warmup_frac * steps)),
            "total_batch_tokens": p["tokens_per_step"], "eval_interval": steps,
            "eval_batches": 1, "log_interval": max(1, steps // 5), "ckpt_interval": 0,
            "end_sample_tokens": cfg.train.get("end_sample_tokens", 0), "threads": threads,
            "overwrite": True})  # run_dir is the sweep's own: a changed config retrains it in place
        return {"key": (fam, label, v, seed, lr), "run_dir": str(run_dir),
                "train": dataclasses.asdict(tcfg), "code_version": version,
                "device": pick_device(tcfg.device), "splits": splits}

    def run_all(jobs, what):
        done = {}
        for i, (j, res) in enumerate(run_jobs(jobs, cfg.train_workers, threads), 1):
            fam, label, v, seed, lr = j["key"]
            scores = ", ".join(f"{s} {e['bpb']:.4f} bpb" for s, e in sorted(res["eval"].items()))
            log(f"[5/6] {what} {i}/{len(jobs)}: {fam} {label} V={v} seed={seed} lr={lr:g}: "
                f"{res['status']}; {scores} ({time.perf_counter() - t_start:.0f} s elapsed)")
            done[j["key"]] = (j, res)
            if res["status"] == "trained":
                trained_here.add(j["key"])
        return done

    # the first seed's final run at the tuned lr is its tuning run, reused, but not from the cache
    runs, chosen, trained_here = {}, {}, set()
    if tuning:
        runs.update(run_all([job(*c, cfg.seeds[0], lr, {"tune": (tune_shards[c[0], c[2]], "train")})
                             for c in combos for lr in lrs], "tuning run"))
    for c in combos:
        # the lowest bpb on the tuning text; ties go to the first lr of the grid
        chosen[c] = min(lrs, key=lambda lr: runs[(*c, cfg.seeds[0], lr)][1]["eval"]["tune"]["bpb"]) \
            if tuning else lrs[0]
    runs.update(run_all([job(*c, seed, chosen[c], {"val": (shards[c[0], c[2]], "val")})
                         for c in combos for seed in cfg.seeds], "final run"))

    scored = {res["eval"]["val"]["bytes"] for key, (_, res) in runs.items() if "val" in res["eval"]}
    if len(scored) != 1:
        raise StudyError(f"the runs were scored on different val text ({sorted(scored)} bytes); "
                         f"delete {out / 'shards'} and rerun")
    log("[6/6] counting what each model saw, writing results")
    seen = {}
    for fam, v in shards:
        p = plans[fam, labels[0], v]
        counts, seen_bytes = replay_training_tokens(
            shards[fam, v], p["batch_size"], p["block_size"], cfg.seeds[0],
            p["steps"] * cfg.grad_accum, p["n_vocab"], load_token_bytes(shards[fam, v]),
            progress=progress)
        seen[fam, v] = counts, seen_bytes
        for label in labels:  # the batches depend on the shards and the seed, not the model
            np.save(Path(runs[fam, label, v, cfg.seeds[0], chosen[fam, label, v]][0]["run_dir"])
                    / "train_counts.npy", counts)

    run_rows = results_rows(runs, plans, chosen, size_of, version, described)
    run_rows.sort(key=lambda r: (FAMILIES.index(r["tokenizer_type"]), labels.index(r["model_size"]),
                                 r["vocab_size"], r["seed"], r["lr"]))
    rows = summary_rows(cfg, runs, plans, chosen, seen, labels, lrs, version)
    reused = sum(key not in trained_here for key in runs)
    write_results(out, rows, run_rows, cfg, labels, sizes, time.perf_counter() - t_start, reused)
    log(f"done in {time.perf_counter() - t_start:.0f} s: {out / 'results.md'}")
    return rows


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
