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
import contextlib
import csv
import dataclasses
import hashlib
import io
import json
import math
import multiprocessing
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
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
from tokenizer import SPLIT_PATTERNS, RegexTokenizer, SentencePieceTokenizer, load
from tokenizer.cli import ArgumentParser
from training import (MODEL_KEYS, ConfigError, coerce, device_peak_flops, field_types, load_config,
                      load_model, parse_overrides, pick_device, read_toml, train)

FAMILIES = ("bytelevel", "sentencepiece")  # tokenizer_types
SIZE_KEYS = ("n_layer", "n_head", "n_embd")   # what one entry of model_sizes sets
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


# ---------------------------------------------------------------------------------- code version

# The code that produces a sweep's numbers: a change in it may change them, so its hash keys the
# cached runs. Tests and docs are left out: editing a README must not retrain anything.
CODE_DIRS = ("tokenizer", "data", "model", "training", "studies")
CODE_FILES = ("train_gpt.py",)
ROOT = Path(__file__).resolve().parents[1]


def code_version(root=ROOT):
    """12 hex digits of sha256 over the path and bytes of every .py file that produces results."""
    root = Path(root)
    files = sorted(p for d in CODE_DIRS for p in (root / d).rglob("*.py"))
    files += [root / f for f in CODE_FILES if (root / f).is_file()]
    h = hashlib.sha256()
    for path in files:
        for part in (path.relative_to(root).as_posix().encode(), path.read_bytes()):
            h.update(len(part).to_bytes(8, "little"))
            h.update(part)
    return h.hexdigest()[:12]


def git_describe(root=ROOT):
    """`git describe --always --dirty` of the checkout, for the record; "" outside git."""
    try:
        r = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=root,
                           capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return r.stdout.strip() if r.returncode == 0 else ""


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


def split_stream(shard_dir, split="val"):
    """A split's tokens as one array ([separator] + document, for each of its documents)."""
    meta = read_manifest(shard_dir)
    shards = meta["splits"][split]["shards"]
    return np.concatenate([np.asarray(read_shard(Path(shard_dir) / s)) for s in shards])


def val_stream(shard_dir):
    """The val split's tokens as one array ([eot] + document, for each val document)."""
    return split_stream(shard_dir, "val")


def unigram_normalized_bpb(target_nats, targets, n_bytes):
    """Tao et al.'s unigram-normalised loss, in bits per byte: the sum over the scored tokens of
    (the model's loss + ln p(token)), p the token's frequency among these same targets, divided
    by ln 2 x the text's bytes.

    It is what the model knows beyond how often each token occurs: splitting text into more,
    rarer tokens raises the plain loss per token and the unigram term alike, so it cancels.
    Negative means better than the unigram model; lower is better.
    """
    targets = np.asarray(targets, dtype=np.int64)
    counts = np.bincount(targets)
    log_p = np.log(counts[targets] / len(targets))
    return float((np.sum(target_nats) + log_p.sum()) / (math.log(2) * n_bytes))


@torch.no_grad()
def evaluate_run(run_dir, shard_dir, device="cpu", split="val"):
    """A run's final checkpoint scored on the whole of a split's text, per document.

    Returns loss (nats per token), bpb, unigram_norm_bpb, bytes (UTF-8 bytes of every scored
    target: the whole text, whatever the tokenizer), tokens, and doc_nats / doc_bytes per
    document (each document's tokens and the separator that ends it), which the paired bootstrap
    resamples.
    """
    model, _ = load_model(run_dir, device)
    meta = read_manifest(shard_dir)
    stream, table = split_stream(shard_dir, split), load_token_bytes(shard_dir)
    start_id = meta["eot_id"]  # every document starts with it: <|endoftext|>, or SentencePiece's <s>
    inputs, targets = stream[:-1], stream[1:]
    target_bytes = table[targets].astype(np.int64)
    if meta["tokenizer"].get("adds_dummy_prefix"):
        # <s> counts -1 in the table, paying for the dummy-prefix space of the document it
        # starts; charge that space to the piece holding it (the one after <s>) instead, so each
        # document's bytes are its UTF-8 length, the first document's too (data/prepare.py)
        target_bytes += (targets == start_id).astype(np.int64) \
            - ((inputs == start_id) & (targets != start_id))
    doc_of = np.cumsum(stream == start_id)[:-1] - 1  # target i+1's document: starts up to i, - 1
    nats = np.zeros(len(targets))
    T = model.config.block_size
    # the same windows over the positions, to know which target each loss belongs to
    for (x, y), (_, pos) in zip(scoring_windows(stream, T), scoring_windows(np.arange(len(stream)), T)):
        logits, _ = model(x.to(device))
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.to(device).flatten(), ignore_index=-1,
                               reduction="none").double().cpu().numpy()
        pos = pos.flatten().numpy()
        nats[pos[pos >= 0] - 1] = loss[pos >= 0]
    n_docs = int(doc_of[-1]) + 1
    n_bytes = int(target_bytes.sum())
    return {"loss": float(nats.mean()), "bpb": float(nats.sum() / (math.log(2) * n_bytes)),
            "unigram_norm_bpb": unigram_normalized_bpb(nats, targets, n_bytes),
            "bytes": n_bytes, "tokens": len(targets),
            "doc_nats": np.bincount(doc_of, weights=nats, minlength=n_docs).tolist(),
            "doc_bytes": np.bincount(doc_of, weights=target_bytes, minlength=n_docs).astype(int).tolist()}


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


def run_job(job):
    """Train one model (or reuse a finished identical run) and score it on the splits it asks for.

    job: {"run_dir", "train" (TrainConfig fields), "code_version", "splits": {name: (shard dir,
    split of those shards)}, "device"}. A run is reused when its config and the code version
    match; scores already saved are kept. Returns {"result": train()'s dict, "eval": {split:
    evaluate_run's dict}}. Plain data in and out: it may run in a worker process. What train()
    prints goes to the run's train.log, so runs side by side do not interleave on the terminal.
    """
    run_dir = Path(job["run_dir"])
    key = json.dumps(job["train"], sort_keys=True)
    done = run_dir / "result.json"
    saved = json.loads(done.read_text()) if done.is_file() and (run_dir / "ckpt.pt").is_file() else {}
    trained = saved.get("config") == key and saved.get("code_version") == job["code_version"]
    evals = dict(saved.get("eval", {})) if trained and saved.get("eval_version") == EVAL_VERSION else {}
    if trained:
        result = saved["result"]
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        with open(run_dir / "train.log", "w", encoding="utf-8") as f, contextlib.redirect_stdout(f):
            result = train(load_config(None, job["train"]))
    missing = [s for s in job["splits"] if s not in evals]
    for split in missing:
        shard_dir, part = job["splits"][split]
        evals[split] = evaluate_run(run_dir, shard_dir, job["device"], part)
    if missing or not trained:
        atomic_write_text(done, json.dumps({"config": key, "code_version": job["code_version"],
                                            "result": result, "eval": evals,
                                            "eval_version": EVAL_VERSION}, indent=1))
    return {"result": result, "eval": evals,
            "status": "trained" if not trained else "scored" if missing else "finished earlier"}


def _worker_init(threads):
    torch.set_num_threads(threads)


def run_jobs(jobs, workers, threads):
    """Yield (job, run_job(job)) as they finish; `workers` processes side by side, each with
    `threads` torch threads. Every run is seeded and independent of the others, so the results
    do not depend on how many run at once."""
    if workers == 1 or len(jobs) < 2:
        for job in jobs:
            yield job, run_job(job)
        return
    ctx = multiprocessing.get_context("spawn")  # fork would copy torch's thread pool state
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=ctx, initializer=_worker_init,
                             initargs=(threads or 1,)) as pool:
        futures = {pool.submit(run_job, job): job for job in jobs}
        for future in as_completed(futures):
            yield futures[future], future.result()


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
        return done

    runs, chosen = {}, {}
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

    run_rows = []
    for (fam, label, v, seed, lr), (j, res) in runs.items():
        p, ev, r = plans[fam, label, v], res["eval"], res["result"]
        val, tune = ev.get("val", {}), ev.get("tune", {})
        run_rows.append({
            "tokenizer_type": fam, "model_size": label, **size_of[label], "vocab_size": v,
            "n_vocab": p["n_vocab"], "seed": seed, "lr": lr, "lr_chosen": lr == chosen[fam, label, v],
            "split": "+".join(s for s in ("tune", "val") if s in ev),
            "bytes_per_token": round(p["val_bytes_per_token"], 4),
            "context_bytes": round(p["context_bytes"], 1), "block_size": p["block_size"],
            "steps": p["steps"], "train_bytes": round(p["planned_train_bytes"]),
            "val_bytes": val.get("bytes", ""), "val_bpb": _r(val.get("bpb")),
            "val_loss_per_token": _r(val.get("loss")),
            "unigram_norm_loss": _r(val.get("unigram_norm_bpb")),
            "tune_bytes": tune.get("bytes", ""), "tune_bpb": _r(tune.get("bpb")),
            "non_emb_params": p["nonemb_params"], "emb_params": p["emb_params"],
            "flops_per_token": p["flops_per_token"], "flops_per_byte": round(p["flops_per_byte"]),
            "train_flops": p["train_flops"], "train_tokens_per_s": round(r["tokens_per_s"]),
            "code_version": version, "git_describe": described, "run_dir": j["run_dir"]})
    run_rows.sort(key=lambda r: (FAMILIES.index(r["tokenizer_type"]), labels.index(r["model_size"]),
                                 r["vocab_size"], r["seed"], r["lr"]))

    rows = []
    for fam, label, v in combos:
        p, lr = plans[fam, label, v], chosen[fam, label, v]
        final = [runs[fam, label, v, s, lr][1]["eval"]["val"] for s in cfg.seeds]
        counts, seen_bytes = seen[fam, v]
        bpbs = [e["bpb"] for e in final]
        unis = [e["unigram_norm_bpb"] for e in final]
        tps = statistics.mean(runs[fam, label, v, s, lr][1]["result"]["tokens_per_s"] for s in cfg.seeds)
        rows.append({
            "tokenizer_type": fam, "model_size": label, "vocab_size": v,
            **{k: p[k] for k in ("n_vocab", "block_size", "steps", "train_tokens")},
            "lr": lr, "tune_bpb_by_lr": " ".join(
                f"{x:g}:{runs[fam, label, v, cfg.seeds[0], x][1]['eval']['tune']['bpb']:.4f}"
                for x in lrs) if tuning else "",
            "train_bytes": seen_bytes, "context_bytes": round(p["context_bytes"], 1),
            "val_bytes": final[0]["bytes"], "val_documents": len(final[0]["doc_bytes"]),
            "val_bytes_per_token": round(p["val_bytes_per_token"], 4),
            "emb_params": p["emb_params"], "nonemb_params": p["nonemb_params"],
            "flops_per_token": p["flops_per_token"], "flops_per_byte": round(p["flops_per_byte"]),
            "train_flops": p["train_flops"],
            "train_tokens_per_s": round(tps), "train_bytes_per_s": round(tps * p["train_bytes_per_token"]),
            "val_bpb_mean": round(statistics.mean(bpbs), 4),
            "val_bpb_sd": round(statistics.stdev(bpbs), 4) if len(bpbs) > 1 else 0.0,
            "n_seeds": len(bpbs),
            "unigram_norm_mean": round(statistics.mean(unis), 4),
            "unigram_norm_sd": round(statistics.stdev(unis), 4) if len(unis) > 1 else 0.0,
            "val_loss_per_token": round(statistics.mean(e["loss"] for e in final), 4),
            "rare_vocab_frac": round(float((counts[:v] < RARE).mean()), 4),
            "unseen_ids": int((counts[:v] == 0).sum()),
            "code_version": version,
        })
    # within each line (family, size): each V against the best V, on the same documents, nats
    # averaged over the same seeds
    for fam in cfg.tokenizer_types:
        for label in labels:
            line = [r for r in rows if r["tokenizer_type"] == fam and r["model_size"] == label]
            if not line:
                continue
            nats = {r["vocab_size"]: np.mean([runs[fam, label, r["vocab_size"], s, r["lr"]][1]
                                              ["eval"]["val"]["doc_nats"] for s in cfg.seeds], axis=0)
                    for r in line}
            doc_bytes = runs[fam, label, line[0]["vocab_size"], cfg.seeds[0], line[0]["lr"]][1][
                "eval"]["val"]["doc_bytes"]
            best = min(line, key=lambda r: r["val_bpb_mean"])["vocab_size"]
            for r in line:
                diff, lo, hi = paired_bootstrap(nats[r["vocab_size"]], nats[best], doc_bytes)
                r.update(best_v=best, bpb_minus_best=round(diff, 4), ci95_lo=round(lo, 4),
                         ci95_hi=round(hi, 4))
    write_results(out, rows, run_rows, cfg, labels, sizes, time.perf_counter() - t_start)
    log(f"done in {time.perf_counter() - t_start:.0f} s: {out / 'results.md'}")
    return rows


def _r(x, digits=6):
    return "" if x is None else round(x, digits)


# ---------------------------------------------------------------------------------- the report

def _write_csv(path, rows):
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def growth_verdict(best_by_size):
    """One plain sentence: does the best V grow with model size? best_by_size: [(label, best V,
    {V not distinguishable from it})] ordered by non-embedding parameters."""
    if len(best_by_size) < 2:
        return "one model size only: this run says nothing about how the best V moves with size"
    bests = [b for _, b, _ in best_by_size]
    listing = ", ".join(f"{label}: V={b}" for label, b, _ in best_by_size)
    if all(a < b for a, b in zip(bests, bests[1:])):
        overlap = any(a & b for (_, _, a), (_, _, b) in zip(best_by_size, best_by_size[1:]))
        return (f"the best V grows with model size in this run ({listing})"
                + ("; but neighbouring sizes share Vs that their intervals do not separate from "
                   "the best, so the run does not establish it" if overlap else ""))
    return f"the best V does NOT grow with model size in this run ({listing})"


def write_results(out, rows, run_rows, cfg, labels, sizes, seconds):
    _write_csv(out / "results.csv", run_rows)
    _write_csv(out / "summary.csv", rows)
    tuning = len(cfg.lr_grid) > 1
    header = ["tokenizer", "size", "V", "bytes/token (val)", "context (tokens / bytes)", "steps",
              "lr" + (" (tuned)" if tuning else ""), "emb params", "non-emb params", "FLOPs/byte",
              "train bytes", "val bpb", "minus best V [95% CI]", "unigram-norm bits/byte",
              f"vocab seen <{RARE}x"]
    table = [[r["tokenizer_type"], r["model_size"], r["vocab_size"],
              f"{r['val_bytes_per_token']:.3f}", f"{r['block_size']} / {r['context_bytes']:.0f}",
              r["steps"], f"{r['lr']:g}", f"{r['emb_params']:,}", f"{r['nonemb_params']:,}",
              f"{r['flops_per_byte']:,}", f"{r['train_bytes']:,}", _bpb(r), _vs_best(r),
              _mean_sd(r["unigram_norm_mean"], r["unigram_norm_sd"], r["n_seeds"]),
              f"{r['rare_vocab_frac']:.1%}"] for r in rows]
    budget = (f"{cfg.train_bytes:,} training bytes" if cfg.budget == "bytes"
              else f"{cfg.train_flops:.3g} training FLOPs")
    blocks = [r["block_size"] for r in rows]
    if cfg.context_unit == "bytes":
        held = (f"context_unit = \"bytes\": every V sees windows of about {cfg.context} bytes "
                f"({min(blocks)}-{max(blocks)} tokens) and "
                + (f"trains the same {rows[0]['steps']} steps of the same bytes per step"
                   if cfg.budget == "bytes" else "the same FLOPs"))
    else:
        held = (f"context_unit = \"tokens\": every V sees {cfg.context}-token windows, so a larger V "
                f"sees more bytes of context per window and fewer steps of the same bytes budget")
    shapes = "; ".join(f"{label} = {s['n_layer']} layers x {s['n_head']} heads x {s['n_embd']} wide"
                       for label, s in zip(labels, sizes))
    if tuning:
        lr_note = (f"Learning rate: for each (tokenizer, size, V) the first seed ({cfg.seeds[0]}) "
                   f"trained at every lr of {cfg.lr_grid}, and the lr with the lowest bpb on the "
                   f"tuning text (documents of their own, disjoint from the tokenizer's, the "
                   f"models' and val text; val is never read to choose) is the one in the table; "
                   f"that run is also the first seed's final run, the other seeds train at its lr. "
                   f"Tuning bpb per lr: summary.csv, tune_bpb_by_lr.")
        edges = sum(r["lr"] in (min(cfg.lr_grid), max(cfg.lr_grid)) for r in rows)
        if edges:  # the optimum may lie outside the grid: say so rather than hide it
            lr_note += (f" {edges} of {len(rows)} rows chose an end of the grid, where a wider "
                        f"grid might find a better lr.")
    else:
        lr_note = f"Learning rate: {rows[0]['lr']:g} for every run (no lr_grid: not tuned)."
    lines = []
    for fam in cfg.tokenizer_types:
        best_by_size = []
        for label in labels:
            line = [r for r in rows if r["tokenizer_type"] == fam and r["model_size"] == label]
            if not line:
                continue
            best = next(r for r in line if r["vocab_size"] == r["best_v"])
            tied = {r["vocab_size"] for r in line if r["ci95_lo"] <= 0 <= r["ci95_hi"]}
            best_by_size.append((label, best["vocab_size"], tied))
            others = sorted(tied - {best["vocab_size"]})
            lines.append(f"- {fam}, {label}: best V={best['vocab_size']} ({_bpb(best)} bpb)"
                         + (f"; not distinguishable from V={', '.join(map(str, others))}" if others
                            else "; every other V is worse beyond its 95% interval"))
        lines.append(f"- {fam}: {growth_verdict(best_by_size)}.")
    md = (f"# Vocabulary sweep\n\nSource {', '.join(map(str, cfg.source))}; tokenizers "
          f"{', '.join(cfg.tokenizer_types)}, one trained per family at the largest V and truncated; "
          f"model sizes by non-embedding parameters: {shapes}. Held equal within a size: the "
          f"non-embedding parameters, {budget} per model, and {held}; seeds {cfg.seeds}. Every "
          f"model is scored on the same {rows[0]['val_bytes']:,} bytes of validation text (the same "
          f"for every tokenizer, size, V and seed), every byte once (windows overlapping by half a "
          f"context, each byte predicted with at least half a context before it); val bpb is mean "
          f"± sd over seeds. \"minus best V\": each V's bpb minus the best V's of the same "
          f"tokenizer and size, with a 95% paired bootstrap interval over the "
          f"{rows[0]['val_documents']} val documents (same documents, nats averaged over the same "
          f"seeds); \"not distinguishable\" when it contains 0. Unigram-norm: Tao et al.'s "
          f"unigram-normalised loss, the sum over val tokens of (loss + ln p_unigram(token)), "
          f"p_unigram counted over the val tokens, in bits per byte of the same val text; lower is "
          f"better, below 0 beats the unigram model. {lr_note} Code version "
          f"{rows[0]['code_version']}. Wall time {seconds:.0f} s.\n\n"
          + markdown_table(header, table)
          + "\nBest V per line (lowest mean val bpb):\n\n" + "\n".join(lines) + "\n\n"
          "Compare bits per byte, not loss per token: a larger vocabulary predicts fewer, harder "
          "tokens.\n")
    atomic_write_text(out / "results.md", md)
    print(text_table(header, table))

    def series(y, err=None):
        return {_line_name(cfg, fam, label): (
                    [r["vocab_size"] for r in line], [r[y] for r in line],
                    [r[err] for r in line] if err and any(r[err] for r in line) else None)
                for fam in cfg.tokenizer_types for label in labels
                for line in [[r for r in rows if r["tokenizer_type"] == fam and r["model_size"] == label]]
                if line}

    note = f"{budget} per model; {len(cfg.seeds)} seed(s)" + (", bars = sd" if len(cfg.seeds) > 1 else "")
    best = {_line_name(cfg, r["tokenizer_type"], r["model_size"]): r["best_v"] for r in rows}
    line_plot(out / "bpb_vs_vocab.png", series("val_bpb_mean", "val_bpb_sd"),
              xlabel="vocabulary size V (log2 scale)", ylabel="validation loss (bits per byte)",
              title="Model quality vs vocabulary size (star: best V)", log2_x=True, note=note,
              mark=best)
    by_family = {fam: ([r["vocab_size"] for r in rows if r["tokenizer_type"] == fam and r["model_size"] == labels[0]],
                       [r["val_bytes_per_token"] for r in rows if r["tokenizer_type"] == fam and r["model_size"] == labels[0]],
                       None) for fam in cfg.tokenizer_types}
    line_plot(out / "bytes_per_token_vs_vocab.png", {f"{k} (val text)": v for k, v in by_family.items() if v[0]},
              xlabel="vocabulary size V (log2 scale)", ylabel="UTF-8 bytes per token",
              title="Compression vs vocabulary size", log2_x=True)
    flops = {name: ([r["train_flops"] for r in rows if _line_name(cfg, r["tokenizer_type"], r["model_size"]) == name],
                    ys, err) for name, (_, ys, err) in series("val_bpb_mean", "val_bpb_sd").items()}
    line_plot(out / "bpb_vs_flops.png", flops,
              xlabel="training compute (FLOPs, log scale)",
              ylabel="validation loss (bits per byte)", title="Model quality vs training compute",
              log_x=True, point_labels=[f"V={r['vocab_size']}" for r in rows
                                        if _line_name(cfg, r["tokenizer_type"], r["model_size"]) == next(iter(flops))],
              note=note)


def _line_name(cfg, fam, label):
    return f"{fam} {label}" if len(cfg.tokenizer_types) > 1 else label


def _vs_best(r):
    if r["vocab_size"] == r["best_v"]:
        return "best"
    ci = f"{r['bpb_minus_best']:+.4f} [{r['ci95_lo']:+.4f}, {r['ci95_hi']:+.4f}]"
    return ci + (" not distinguishable" if r["ci95_lo"] <= 0 <= r["ci95_hi"] else "")


def _mean_sd(mean, sd, n):
    return f"{mean:.4f}" + (f" ± {sd:.4f}" if n > 1 else "")


def _bpb(r):
    return _mean_sd(r["val_bpb_mean"], r["val_bpb_sd"], r["n_seeds"])


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
