"""Helpers the studies share: config loading and the command line, a three-way document split,
cached shard preparation, KL and scoring windows, atomic writes, plots and tables.

Why split by document, three ways. A study that trains a tokenizer and a model must keep three
texts apart: the tokenizer's training text (or the vocabulary would have memorised the val
text's words), the model's training text, and the validation text every model is scored on.
Documents, not byte ranges, are the unit, so no play or file is cut in half and leaks.

Why cache by tokenizer hash. Encoding a corpus is the slow, repeatable part of a sweep; the
shards depend only on the tokenizer file's bytes and the documents, so a directory named by
their hashes can be reused by any rerun that asks for the same thing.
"""
import hashlib
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

from data import atomic_writer
from data.prepare import prepare
from data.shards import MANIFEST, ShardError, read_manifest
from data.sources import doc_hash
from training import config_parser, load_dataclass, parse_overrides, sha256_file

class StudyError(ValueError):
    """A study cannot run as configured; the message says what to change."""


# ---------------------------------------------------------------------------------- config

def load_study_config(cls, path=None, overrides=None):
    """cls() <- TOML file <- overrides, by train_gpt's rules (TOML keys == field names, lists
    comma-separated on the command line); errors are StudyErrors."""
    return load_dataclass(cls, path, overrides, error=StudyError, help_cmd="--help")


def study_main(argv, cls, run_study, results_markdown, prog, description, *, parser=None, load=None):
    """The command line of a study: parse, load the config, run, print results.md.

    By default the settings are one dataclass `cls`, with one --key per field. A study with keys
    beyond its dataclass (vocab_sweep passes train_gpt's keys through) gives its own `parser`,
    whose unknown --key=value items then go to `load(path, overrides)` to be checked there.
    results_markdown=None prints nothing at the end (the study printed its own summary).
    """
    if parser is None:
        parser = config_parser(cls, description, prog)
        args, rest = vars(parser.parse_args(argv)), []
    else:
        args, rest = parser.parse_known_args(argv)
        args = vars(args)
        for item in rest:
            if not item.startswith("--"):
                parser.error(f"unexpected argument {item!r}")
    path = args.pop("config")
    load = load or (lambda path, overrides: load_study_config(cls, path, overrides))
    try:  # a config that cannot load is a usage error (2), like an unknown argparse option
        cfg = load(path, {**args, **parse_overrides(rest)})
    except (FileNotFoundError, ValueError) as e:  # StudyError and train_gpt's ConfigError included
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        summary = run_study(cfg)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if results_markdown is not None:
        print(results_markdown(summary))
    return 0


# ---------------------------------------------------------------------------------- the split

def split_documents(docs, val_fraction, tokenizer_fraction, tune_fraction=0.0):
    """Split documents into {"tokenizer", "train", "val", "tune"} lists, deterministically.

    Documents are ranked by data.sources.doc_hash (a hash of the text alone), so the split does
    not depend on the order the documents arrive in. The round(val_fraction * n) lowest-hash
    documents (at least one) are val, the next round(tune_fraction * n) (at least one when
    tune_fraction > 0, else none) are for tuning hyperparameters such as the learning rate
    (choosing by val would fit val), the next round(tokenizer_fraction * n) (at least one) train
    the tokenizer, the rest train the model. Exact counts rather than hash thresholds, because
    small corpora (Shakespeare: 42 works) would otherwise get a val split of 0 or 9 plays by luck.
    Duplicate documents are dropped first: a copy in two parts would leak val into training.
    Returns (parts, val_threshold): every val document has doc_hash < val_threshold <= every
    other's, so data.prepare's own rule (is_val) reproduces this val split exactly.
    """
    for name, frac in (("val_fraction", val_fraction), ("tokenizer_fraction", tokenizer_fraction)):
        if not 0 < frac < 1:
            raise StudyError(f"{name} must be in (0, 1), got {frac}")
    if not 0 <= tune_fraction < 1:
        raise StudyError(f"tune_fraction must be in [0, 1), got {tune_fraction}")
    ranked = sorted({d: doc_hash(d) for d in docs if d}.items(), key=lambda kv: (kv[1], kv[0]))
    n = len(ranked)
    n_val = max(1, round(val_fraction * n))
    n_tune = max(1, round(tune_fraction * n)) if tune_fraction else 0
    n_tok = max(1, round(tokenizer_fraction * n))
    if n - n_val - n_tune - n_tok < 1:
        raise StudyError(f"only {n} distinct non-empty documents: cannot give val {n_val}, "
                         + (f"tuning {n_tune}, " if n_tune else "") + f"the tokenizer {n_tok} and "
                         f"the model at least 1; use a corpus with more documents or smaller fractions")
    hashes = [h for _, h in ranked]
    if hashes[n_val - 1] == hashes[n_val]:  # 64-bit hash collision: no threshold separates them
        raise StudyError("two documents share a doc_hash; cannot place the val threshold")
    cuts = np.cumsum([0, n_val, n_tune, n_tok, n])
    parts = {name: [d for d, _ in ranked[a:b]]
             for name, a, b in zip(("val", "tune", "tokenizer", "train"), cuts, cuts[1:])}
    return parts, (hashes[n_val - 1] + hashes[n_val]) / 2


def mean_sd(xs):
    """(mean, sample standard deviation) of the values; sd 0 for a single value (one seed)."""
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def utf8_bytes(docs):
    return sum(len(d.encode("utf-8", "surrogatepass")) for d in docs)


def docs_digest(docs):
    """sha256 over the documents with their lengths, so ["ab", "c"] and ["a", "bc"] differ."""
    h = hashlib.sha256()
    for d in docs:
        b = d.encode("utf-8", "surrogatepass")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


# ---------------------------------------------------------------------------------- measuring

def kl_divergence(log_p, log_q):
    """KL(p || q) per position, nats, from log-probabilities over the last dimension.

    log_q may cover only the ids p can put mass on (new_tokens compares a model with its grown
    copy on the old ids): terms where p is 0 contribute nothing.
    """
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def scoring_windows(stream, block_size, batch_size=32):
    """(x, y) batches that score every target of `stream` exactly once, y = -1 where not scored.

    Windows of block_size tokens start every block_size // 2 tokens, and each scores only the
    targets the window before it did not (its second half; the first window scores all of its
    own). So every token after the first is predicted once, with at least half a context of text
    before it, instead of from a context that restarts every block_size tokens; and since every
    byte is scored, all vocabularies are compared on exactly the same bytes.
    """
    stream = torch.as_tensor(np.asarray(stream, dtype=np.int64))
    n, T = len(stream), block_size
    step = max(1, T // 2)
    xs, ys, done, start = [], [], 0, 0  # done: the last target index already scored
    while done < len(stream) - 1:
        end = min(start + T, n - 1)
        x, y = stream[start:end], stream[start + 1:end + 1].clone()
        y[:done - start] = -1
        xs.append(x)
        ys.append(y)
        done, start = end, start + step
    n_full = len(xs) - (len(xs) > 0 and len(xs[-1]) < T)  # only the last window can be short
    for i in range(0, n_full, batch_size):
        j = min(i + batch_size, n_full)
        yield torch.stack(xs[i:j]), torch.stack(ys[i:j])
    if n_full < len(xs):
        yield xs[-1][None], ys[-1][None]


# ---------------------------------------------------------------------------------- atomic writes

def atomic_write_text(path, text):
    """Readers see the old file or the new one, never half of one (data.atomic_writer)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(path) as f:
        f.write(text.encode("utf-8"))
    return path


def write_jsonl(path, docs):
    """One {"text": doc} per line: data.sources reads it back as exactly these documents."""
    return atomic_write_text(path, "".join(json.dumps({"text": d}) + "\n" for d in docs))


# ---------------------------------------------------------------------------------- shards

def prepare_cached(tokenizer_path, docs_jsonl, val_threshold, cache_root, *, workers=1,
                   progress=False, log=print):
    """Shards for (tokenizer file, documents file, val split) under cache_root/<key>; reused if done.

    The key hashes the tokenizer file's bytes, the documents file's bytes and the val threshold.
    data.prepare writes meta.json last, so a directory holding it is complete; we also check
    that it names the tokenizer hash we expect before trusting it.
    """
    tok_sha = sha256_file(tokenizer_path)
    key = hashlib.sha256(f"{tok_sha} {sha256_file(docs_jsonl)} {val_threshold!r}".encode())
    out = Path(cache_root) / key.hexdigest()[:16]
    if (out / MANIFEST).is_file():
        try:
            meta = read_manifest(out)
            if meta["tokenizer"]["sha256"] == tok_sha:
                log(f"  shards cached: {out}")
                return out, meta
        except (ShardError, KeyError):
            pass  # unreadable or foreign: prepare it again below
    log(f"  encoding shards -> {out}")
    meta = prepare(tokenizer_path, [str(docs_jsonl)], out, val_fraction=val_threshold,
                   workers=workers, progress=progress)
    return out, meta


# ---------------------------------------------------------------------------------- plots

def line_plot(path, series, *, xlabel, ylabel, title, log2_x=False, log_x=False,
              point_labels=None, note=None, mark=None):
    """One PNG with one line per series: {label: (xs, ys, yerr or None)}. Written atomically.

    log2_x: a log2 axis ticked at the data's x values (vocabulary sizes); log_x: plain log10.
    point_labels: text beside each point of the first series (e.g. "V=1024").
    mark: {series label: x} points to ring with a star in the series' colour (e.g. the best V).
    """
    fig, ax = pyplot().subplots(figsize=(6.4, 4.2), dpi=120)
    for label, (xs, ys, yerr) in series.items():
        line = ax.errorbar(xs, ys, yerr=yerr, marker="o", capsize=3, label=label)
        if mark and label in mark and mark[label] in xs:
            ax.plot([mark[label]], [ys[list(xs).index(mark[label])]], marker="*", markersize=16,
                    color=line[0].get_color(), markeredgecolor="black", linestyle="none")
    if log2_x:
        ax.set_xscale("log", base=2)
        xs_all = sorted({x for xs, _, _ in series.values() for x in xs})
        ax.set_xticks(xs_all)
        ax.set_xticklabels([_short(x) for x in xs_all])
        ax.minorticks_off()
    elif log_x:
        ax.set_xscale("log")
    if point_labels:
        ax.margins(x=0.1, y=0.1)  # room for the labels inside the frame
        xs, ys, _ = next(iter(series.values()))
        for x, y, text in zip(xs, ys, point_labels):
            ax.annotate(text, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if len(series) > 1:
        ax.legend()
    if note:
        fig.text(0.01, 0.01, note, fontsize=7, color="gray")
    return save_figure(fig, path)


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend: no display on servers and CI."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path, dpi=None):
    """Lay out, write `fig` as a PNG atomically, and free it."""
    fig.tight_layout()
    with atomic_writer(path) as f:
        fig.savefig(f, format="png", dpi=dpi)
    pyplot().close(fig)
    return Path(path)


def _short(x):
    """256 -> '256', 4096 -> '4k', 1536 -> '1.5k': tick labels a reader can take in at a glance."""
    if x >= 1024 and x % 512 == 0:
        k = x / 1024
        return f"{k:g}k"
    return f"{x:g}"


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def text_table(header, rows):
    """A fixed-width table for the terminal (the same rows as markdown_table)."""
    cells = [list(map(str, header))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    out = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)
