"""Tokenizer quirks worth measuring: small, fast experiments that each print one table.

    python -m studies.quirks                  # all four
    python -m studies.quirks --which a,c      # some

(a) Whitespace in code. GPT-2's split pattern lets a run of spaces merge only as its own chunk
    minus the last space (" ?\\p{L}+" steals it); GPT-4's keeps indentation runs whole and puts
    newlines apart. Same vocabulary size, Python source: how many tokens are pure whitespace,
    and how many bytes each token carries.
(b) Digits. GPT-4 groups digits in runs of 1-3; alternatives are single digits (every number is
    spelled out, a handful of tokens serve all numbers) and unlimited runs (frequent numbers
    become one token, the vocabulary fills with numbers). Bytes per token on numbers, and how
    many distinct tokens the numbers use.
(c) The cost of not being English. The same six sentences in nine languages
    (studies/parallel_text.py): tokens per language divided by tokens for the English, and bytes
    per token, for a tokenizer trained on English vs GPT-4's cl100k (a multilingual web crawl).
(d) Unused tokens. Ids the model never saw in training still have embedding rows; with tied
    embeddings the output softmax pushes them around anyway. Their norms after training.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
import regex

from data.sources import doc_hash, iter_documents
from studies.common import StudyError, atomic_write_text, markdown_table, text_table, utf8_bytes
from studies.parallel_text import PARALLEL
from studies.vocab_sweep import load_sweep_config, run_sweep
from tokenizer import GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN, GPT4Tokenizer, RegexTokenizer
from tokenizer.cli import ArgumentParser
from training import load_checkpoint

DIGIT_RULES = {  # how the GPT-4 pattern's digit alternative is rewritten for quirk (b)
    "1-3 digits (GPT-4)": r"\p{N}{1,3}+",
    "single digits": r"\p{N}",
    "unlimited digits": r"\p{N}++",
}
_NUMBER = regex.compile(r"\p{N}+")


# ---------------------------------------------------------------------------------- measurements

def whitespace_stats(tok, texts):
    """Token counts on `texts`: all tokens, pure-whitespace tokens, bytes, bytes per token.

    A token is pure whitespace when its bytes are non-empty and all ASCII whitespace (space,
    tab, newline, CR, FF, VT): the indentation and blank lines of code.
    """
    n_tokens = n_ws = n_bytes = ws_bytes = 0
    for text in texts:
        for idx in tok.encode_ordinary(text):
            b = tok.vocab[idx]
            n_tokens += 1
            n_bytes += len(b)
            if b and not b.strip():
                n_ws += 1
                ws_bytes += len(b)
    return {"tokens": n_tokens, "bytes": n_bytes, "ws_tokens": n_ws, "ws_bytes": ws_bytes,
            "ws_token_share": n_ws / max(n_tokens, 1), "bytes_per_token": n_bytes / max(n_tokens, 1)}


def digit_pattern(rule):
    """GPT-4's split pattern with its digit alternative replaced by `rule`."""
    old = r"\p{N}{1,3}+"
    if old not in GPT4_SPLIT_PATTERN:
        raise StudyError("GPT4_SPLIT_PATTERN no longer contains \\p{N}{1,3}+; update DIGIT_RULES")
    return GPT4_SPLIT_PATTERN.replace(old, rule)


def number_stats(tok, texts):
    """How a tokenizer spells the numbers (maximal runs of \\p{N}) found in `texts`.

    Each number is encoded on its own, as it would be inside text (digits form their own chunks
    under all three rules). Returns numbers, their bytes, their tokens, bytes per token, the
    distinct token ids they use, and the vocabulary entries made only of digits.
    """
    numbers = [m.group() for t in texts for m in _NUMBER.finditer(t)]
    ids = [i for n in numbers for i in tok.encode_ordinary(n)]
    n_bytes = sum(len(n.encode("utf-8")) for n in numbers)
    digit_entries = sum(1 for b in tok.vocab.values()
                        if _NUMBER.fullmatch(b.decode("utf-8", "replace")))
    return {"numbers": len(numbers), "bytes": n_bytes, "tokens": len(ids),
            "bytes_per_token": n_bytes / max(len(ids), 1), "distinct_tokens": len(set(ids)),
            "digit_vocab_entries": digit_entries}


def parallel_cost(tok, parallel):
    """{language: (characters, UTF-8 bytes, tokens)} summed over that language's sentences.

    Each sentence is encoded on its own, so no language pays for how sentences are joined.
    """
    out = {}
    for lang, sentences in parallel.items():
        n = sum(len(tok.encode_ordinary(s)) for s in sentences)
        out[lang] = (sum(map(len, sentences)), sum(len(s.encode("utf-8")) for s in sentences), n)
    return out


def embedding_norm_stats(weight, counts, vocab_size, rare=10):
    """Mean L2 norm of embedding rows for ids never seen, seen 1..rare-1 times, seen >= rare times.

    weight: [rows, d] (rows may include padding past vocab_size, ignored); counts: training
    occurrences per id. Returns {group: (number of ids, mean norm or nan)}.
    """
    norms = np.linalg.norm(np.asarray(weight, dtype=np.float64)[:vocab_size], axis=1)
    c = np.asarray(counts)[:vocab_size]
    groups = {"never seen": c == 0, f"seen 1-{rare - 1}x": (c > 0) & (c < rare),
              f"seen >={rare}x": c >= rare}
    return {g: (int(m.sum()), float(norms[m].mean()) if m.any() else float("nan"))
            for g, m in groups.items()}


# ---------------------------------------------------------------------------------- corpora

def code_split(max_bytes):
    """(train docs, held-out docs) of this Python's standard library, about max_bytes in all.

    Files are taken in document-hash order, not path order, so the slice spans the whole
    library; every 4th goes to the held-out part.
    """
    picked, size = [], 0
    for d in sorted(iter_documents("pystdlib"), key=doc_hash):
        if size >= max_bytes:
            break
        if len(d) <= max_bytes // 8:  # one giant file would dominate the slice
            picked.append(d)
            size += len(d)
    if len(picked) < 2:
        raise StudyError(f"--code-bytes {max_bytes} is too small to pick two stdlib files")
    return [d for i, d in enumerate(picked) if i % 4], picked[::4]


# ---------------------------------------------------------------------------------- the quirks

def quirk_a(vocab_size, max_bytes, log=print):
    train, held = code_split(max_bytes)
    log(f"(a) whitespace in Python code: V={vocab_size}, trained on {utf8_bytes(train):,} bytes "
        f"of stdlib, measured on {utf8_bytes(held):,} held-out bytes")
    header = ["split pattern", "tokens", "bytes/token", "whitespace tokens", "share of tokens",
              "bytes in ws tokens"]
    rows = []
    for name, pattern in (("GPT-2", GPT2_SPLIT_PATTERN), ("GPT-4", GPT4_SPLIT_PATTERN)):
        tok = RegexTokenizer(pattern=pattern).train(train, vocab_size)
        s = whitespace_stats(tok, held)
        rows.append([name, f"{s['tokens']:,}", f"{s['bytes_per_token']:.3f}",
                     f"{s['ws_tokens']:,}", f"{s['ws_token_share']:.1%}",
                     f"{s['ws_bytes'] / s['bytes']:.1%}"])
    return header, rows


def quirk_b(vocab_size, max_bytes, log=print):
    train, held = code_split(max_bytes)
    log(f"(b) digits: V={vocab_size}, stdlib code ({utf8_bytes(train):,} bytes to train); "
        f"numbers from {utf8_bytes(held):,} held-out bytes")
    header = ["digit rule", "numbers", "bytes/token on numbers", "distinct tokens used",
              "digit-only vocab entries"]
    rows = []
    for name, rule in DIGIT_RULES.items():
        tok = RegexTokenizer(pattern=digit_pattern(rule)).train(train, vocab_size)
        s = number_stats(tok, held)
        rows.append([name, f"{s['numbers']:,}", f"{s['bytes_per_token']:.3f}",
                     s["distinct_tokens"], s["digit_vocab_entries"]])
    return header, rows


def quirk_c(vocab_size, log=print):
    docs = list(iter_documents("shakespeare"))
    n = len(PARALLEL["English"])
    log(f"(c) non-English cost: tokenizer trained on Shakespeare (V={vocab_size}) vs GPT-4's "
        f"cl100k (V=100k), on the same {n} sentences in {len(PARALLEL)} languages")
    ours = RegexTokenizer().train(docs, vocab_size)
    header = ["language", "chars", "UTF-8 bytes", f"ours V={vocab_size}: tokens", "x English",
              "bytes/token", "cl100k: tokens", "x English", "bytes/token"]
    costs = [parallel_cost(ours, PARALLEL), parallel_cost(GPT4Tokenizer(), PARALLEL)]
    rows = []
    for lang in PARALLEL:
        row = [lang, costs[0][lang][0], costs[0][lang][1]]
        for c in costs:
            chars, nbytes, tokens = c[lang]
            row += [tokens, f"{tokens / c['English'][2]:.2f}", f"{nbytes / tokens:.2f}"]
        rows.append(row)
    return header, rows


def quirk_d(sweep_dir, out, log=print):
    """Embedding norms by how often each id was seen, from a vocab sweep's runs.

    Without a finished sweep at sweep_dir, a micro sweep (Shakespeare, V=512 and 4096, one small
    run each) is trained into out/quirk-d-sweep first. With several tokenizer families, model
    sizes or an lr grid, each group is labelled by its run folder's tail (e.g. "sp 99k lr0.003").
    """
    sweep_dir = Path(sweep_dir) if sweep_dir else None
    if sweep_dir is None or not (sweep_dir / "results.csv").is_file():
        sweep_dir = Path(out) / "quirk-d-sweep"
        log(f"(d) no finished sweep given; training a micro one into {sweep_dir}")
        cfg = load_sweep_config(None, {
            "source": ["shakespeare"], "vocab_sizes": [512, 4096], "train_bytes": 300_000,
            "context": 64, "n_layer": 2, "n_head": 4, "n_embd": 64, "batch_size": 16,
            "lr": 3e-3, "device": "cpu", "out_dir": str(sweep_dir)})
        run_sweep(cfg, log=lambda *a: None, progress=False)
    log(f"(d) unused tokens: embedding norms after training, from {sweep_dir}")
    header = ["V", "group", "ids", "mean embedding norm", "init norm (0.02 sqrt(d))"]
    rows = []
    # run folders are v{V}_s{seed}[_sp][_{size}][_lr{lr}]; only each line's first-seed final run
    # holds train_counts.npy. The tail (tokenizer family, size, lr) labels the group.
    runs = []
    for run in (sweep_dir / "runs").glob("v*_s*"):
        v, _, tail = run.name[1:].split("_", 2) + [""] * (run.name.count("_") < 2)
        runs.append((tail, int(v), run))
    for tail, v, run in sorted(runs):
        counts_path = run / "train_counts.npy"
        if not counts_path.is_file() or not (run / "ckpt.pt").is_file():
            continue
        ck = load_checkpoint(run / "ckpt.pt")
        weight = ck["model"]["transformer.wte.weight"]
        init = 0.02 * weight.shape[1] ** 0.5
        for group, (n, norm) in embedding_norm_stats(weight, np.load(counts_path), v).items():
            rows.append([v, f"{tail.replace('_', ' ')}: {group}" if tail else group, n,
                         f"{norm:.3f}" if n else "-", f"{init:.3f}"])
    if not rows:
        raise StudyError(f"{sweep_dir}/runs has no run with ckpt.pt and train_counts.npy")
    return header, rows


# ---------------------------------------------------------------------------------- command line

def main(argv=None):
    p = ArgumentParser(prog="python -m studies.quirks", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 2)[2])
    p.add_argument("--which", default="a,b,c,d", help="quirks to run, comma-separated (default a,b,c,d)")
    p.add_argument("--vocab-size", type=int, default=2048, help="V for (a), (b), (c) (default 2048)")
    p.add_argument("--code-bytes", type=int, default=2_000_000,
                   help="bytes of stdlib source for (a) and (b), 3/4 train, 1/4 held out "
                        "(default 2,000,000)")
    p.add_argument("--sweep-dir", default="studies/out/sweep-tiny",
                   help="a finished vocab sweep for (d) (default studies/out/sweep-tiny; trained "
                        "at micro size if missing)")
    p.add_argument("--out", default="studies/out/quirks", help="where the markdown tables go")
    args = p.parse_args(argv)
    which = [w.strip() for w in args.which.split(",") if w.strip()]
    bad = [w for w in which if w not in "abcd" or len(w) != 1]
    if bad:
        p.error(f"--which takes letters among a,b,c,d; got {bad}")
    out = Path(args.out)
    runners = {"a": lambda: quirk_a(args.vocab_size, args.code_bytes),
               "b": lambda: quirk_b(args.vocab_size, args.code_bytes),
               "c": lambda: quirk_c(args.vocab_size),
               "d": lambda: quirk_d(args.sweep_dir, out)}
    try:
        for w in which:
            t0 = time.perf_counter()
            header, rows = runners[w]()
            print(text_table(header, rows))
            print(f"({time.perf_counter() - t0:.1f} s)\n")
            atomic_write_text(out / f"quirk_{w}.md", markdown_table(header, rows))
    except (StudyError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"tables written to {out}/quirk_*.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
