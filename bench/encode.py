"""Encoding throughput: vocablab's encode/encode_batch vs tiktoken, same vocabulary, same text.

    python bench/encode.py                 # 10 MB of the stdlib slice, GPT-4's cl100k vocabulary
    python bench/encode.py --bytes 20000000 --repeat 3

vocablab's GPT4Tokenizer holds cl100k's merges and encodes through a tiktoken Encoding built from
them, adding its own special-token checks; this measures what that costs. Both sides check for
disallowed special tokens (tiktoken's default, vocablab's "none_raise"). Ratio = vocablab MB/s
/ tiktoken MB/s: >= 0.9 is the target (within 10%). The ids are checked to be identical.
"""
import argparse
import sys
import time
from pathlib import Path

import tiktoken

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from corpus import describe, stdlib_corpus  # noqa: E402

from tokenizer import GPT4Tokenizer  # noqa: E402


def throughput(fn, docs, n_bytes, repeat):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn(docs)
        best = min(best, time.perf_counter() - t)
    return n_bytes / best / 1e6, out


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bytes", type=int, default=10_000_000, help="text size (default 10 MB)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per encoder; the best counts")
    args = ap.parse_args()

    docs, info = stdlib_corpus(args.bytes)
    n_bytes = sum(len(d.encode("utf-8")) for d in docs)
    print(describe(info))
    ours = GPT4Tokenizer()
    try:
        ref = tiktoken.get_encoding("cl100k_base")
    except Exception:  # offline: build the same Encoding from the bundled ranks
        ref = ours.to_tiktoken()
        print("note: tiktoken's cl100k_base not loadable here; comparing against the bundled ranks")
    cases = [
        ("encode (one doc at a time)",
         lambda ds: [ours.encode(d) for d in ds], lambda ds: [ref.encode(d) for d in ds]),
        ("encode_batch",
         lambda ds: ours.encode_batch(ds), lambda ds: ref.encode_batch(ds)),
    ]
    print(f"{'':<28} {'vocablab MB/s':>14} {'tiktoken MB/s':>14} {'ratio':>6}")
    for name, mine, theirs in cases:
        ours_mbs, a = throughput(mine, docs, n_bytes, args.repeat)
        ref_mbs, b = throughput(theirs, docs, n_bytes, args.repeat)
        if a != b:
            raise SystemExit(f"{name}: ids differ from tiktoken's -- a parity bug, not a benchmark")
        print(f"{name:<28} {ours_mbs:>14.1f} {ref_mbs:>14.1f} {ours_mbs / ref_mbs:>6.2f}")
    tokens = sum(len(ids) for ids in b)
    print(f"{tokens:,} tokens, {n_bytes / tokens:.2f} bytes/token (identical ids)")


if __name__ == "__main__":
    main()
