"""Benchmark the data stage against tiktoken's own single-thread encode, in the same run.

    python bench/prepare.py [--workers 1 2] [--vocab-size 4096] [--repeat 3]

For each corpus (Shakespeare; a ~4 MB slice of the Python standard library) it times the whole
stage, `data.prepare.prepare` (reading the source, encoding, splitting, writing shards to
bench/out/), and tiktoken's `encode_ordinary` over the same documents already in memory, with the
same vocabulary. The ratio per worker is (our MB/s / workers) / (tiktoken MB/s); target >= 0.8.
--workers 0 means encoding in the main process (counted as one worker).
Best of --repeat runs, because the machine is shared and timings are noisy.
"""
import argparse
import itertools
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from data.prepare import prepare  # noqa: E402
from data.sources import iter_documents  # noqa: E402
from tokenizer import RegexTokenizer  # noqa: E402

OUT = ROOT / "bench" / "out"


def stdlib_slice(max_bytes):
    """How many pystdlib documents make up about max_bytes (the slice is a prefix)."""
    total = 0
    for n, doc in enumerate(iter_documents("pystdlib"), 1):
        total += len(doc.encode())
        if total >= max_bytes:
            return n
    return n


def best_of(repeat, fn):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--vocab-size", type=int, default=4096)
    p.add_argument("--stdlib-mb", type=float, default=20.0,
                   help="MB of the standard library to encode (20 = the slice bench/train_bpe.py uses; small inputs measure pool start-up, not throughput)")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)

    shakespeare = list(iter_documents("shakespeare"))
    t0 = time.perf_counter()
    tok = RegexTokenizer()
    tok.train(shakespeare, args.vocab_size)
    tok.save(str(OUT / f"shakespeare{args.vocab_size}"))
    model = OUT / f"shakespeare{args.vocab_size}.model"
    print(f"trained vocab {args.vocab_size} on Shakespeare in {time.perf_counter() - t0:.1f}s")
    enc = tok.to_tiktoken()

    n_std = stdlib_slice(args.stdlib_mb * 1e6)
    corpora = {"shakespeare": (["shakespeare"], None),
               f"pystdlib[:{n_std}]": (["pystdlib"], n_std)}
    print(f"{'corpus':<16} {'who':<22} {'MB/s':>7} {'Mtok/s':>7} {'ratio/worker':>13}")
    for name, (source, max_docs) in corpora.items():
        docs = list(itertools.islice(iter_documents(source), max_docs))
        mb = sum(len(d.encode()) for d in docs) / 1e6
        t_tt, ids = best_of(args.repeat, lambda: [enc.encode_ordinary(d) for d in docs])
        n_tok = sum(len(i) + 1 for i in ids)  # +1: the separator prepare adds per document
        tt_mbs = mb / t_tt
        print(f"{name:<16} {'tiktoken 1 thread':<22} {tt_mbs:7.2f} {n_tok / t_tt / 1e6:7.2f}")
        for w in args.workers:
            out = OUT / f"shards_{name.split('[')[0]}_{w}"
            t, meta = best_of(args.repeat, lambda: prepare(
                model, source, out, val_fraction=0.01, workers=w, max_documents=max_docs))
            tokens = sum(s["tokens"] for s in meta["splits"].values())
            assert tokens == n_tok, (tokens, n_tok)  # same text, same encoding
            ratio = mb / t / max(w, 1) / tt_mbs
            print(f"{'':<16} {f'data.prepare x{w}':<22} {mb / t:7.2f} {tokens / t / 1e6:7.2f} "
                  f"{ratio:13.2f}")


if __name__ == "__main__":
    main()
