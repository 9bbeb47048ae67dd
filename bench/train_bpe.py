"""Training speed: vocablab vs Hugging Face `tokenizers` and `rustbpe` on the same corpus.

    python bench/train_bpe.py                      # vocab 4096 and 16384 on the ~20 MB stdlib slice
    python bench/train_bpe.py --vocab 32768 --repeat 3

Every trainer gets the same documents and the same GPT-4 split pattern, and learns byte-level
BPE up to the same vocabulary size (256 bytes + merges, no specials). Times are wall-clock for
the whole job (splitting, counting, merging), best of --repeat interleaved runs. The ratio is
vocablab / peer: <= 1.0 means vocablab is at least as fast. All run in the same process, one
after another, so the ratio holds on a busy machine even when the absolute seconds do not.
"same tokens" is the share of vocablab's vocabulary the peer learned too: a sanity check that
all three solve the same problem (the rest differ mostly by ties between equal counts).
Separate runs (best of --repeat) split vocablab's time into its phases: counting, merging.
"""
import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from corpus import describe, stdlib_corpus  # noqa: E402

from tokenizer import GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN, RegexTokenizer  # noqa: E402
from tokenizer.hf import bytes_to_unicode, to_onig  # noqa: E402
from tokenizer.trainer import count_chunks, train_bpe  # noqa: E402


def train_vocablab(docs, vocab_size, workers):
    tok = RegexTokenizer(GPT4_SPLIT_PATTERN)
    tok.train(docs, vocab_size, workers=workers)
    return {t for t in tok.vocab.values()}


def train_hf(docs, vocab_size, workers):
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers  # optional peer

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(to_onig(GPT4_SPLIT_PATTERN)), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False, min_frequency=0,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(docs, trainer)
    to_byte = {c: b for b, c in bytes_to_unicode().items()}
    return {bytes(to_byte[c] for c in s) for s in tok.get_vocab()}


def train_rustbpe(docs, vocab_size, workers):
    import rustbpe  # optional peer

    tok = rustbpe.Tokenizer()
    tok.train_from_iterator(iter(docs), vocab_size, pattern=GPT4_SPLIT_PATTERN)
    ranks = tok.get_mergeable_ranks()  # [(bytes, rank), ...]
    return {bs for bs, _ in (ranks.items() if isinstance(ranks, dict) else ranks)}


def vocablab_phases(docs, vocab_size, workers, repeat):
    """Where vocablab's time goes: (counting seconds, merging seconds, unique chunks), best of."""
    count_s = merge_s = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        counts = count_chunks(docs, GPT4_SPLIT_PATTERN, workers=workers)
        counted = time.perf_counter()
        train_bpe(counts, vocab_size - 256)
        count_s = min(count_s, counted - t)
        merge_s = min(merge_s, time.perf_counter() - counted)
    return count_s, merge_s, len(counts)


def cs336_check(shared):
    """CS336's fixture: corpus.en, GPT-2 pattern, <|endoftext|> as a boundary, vocab 500."""
    path = shared / "data" / "cs336" / "corpus.en"
    if not path.is_file():
        return None
    t = time.perf_counter()
    text = path.read_text(encoding="utf-8")
    counts = count_chunks(text, GPT2_SPLIT_PATTERN, special_tokens=["<|endoftext|>"])
    train_bpe(counts, 243)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vocab", type=int, nargs="+", default=[4096, 16384], help="vocab sizes")
    ap.add_argument("--bytes", type=int, default=20_000_000, help="corpus size (default 20 MB)")
    ap.add_argument("--repeat", type=int, default=2, help="runs per trainer; the best counts")
    ap.add_argument("--workers", type=int, default=os.cpu_count(), help="vocablab's processes")
    ap.add_argument("--peers", nargs="+", default=["hf", "rustbpe"], choices=["hf", "rustbpe"])
    args = ap.parse_args()

    docs, info = stdlib_corpus(args.bytes)
    print(describe(info), f"| {os.cpu_count()} cores, vocablab workers={args.workers}")
    trainers = {"vocablab": train_vocablab, "HF tokenizers": train_hf, "rustbpe": train_rustbpe}
    names = ["vocablab"] + [{"hf": "HF tokenizers", "rustbpe": "rustbpe"}[p] for p in args.peers]
    print(f"{'vocab':>6} {'trainer':<14} {'seconds':>8} {'vocablab/peer':>14} {'same tokens':>12}")
    for vocab_size in args.vocab:
        best, tokens = {}, {}
        for _ in range(args.repeat):  # interleaved, so a burst of load hits every trainer alike
            for name in list(names):
                t = time.perf_counter()
                try:
                    tokens[name] = trainers[name](docs, vocab_size, args.workers)
                except ImportError as e:
                    print(f"{name} skipped: {e}")
                    names.remove(name)
                    continue
                best[name] = min(best.get(name, float("inf")), time.perf_counter() - t)
        ours = best["vocablab"]
        print(f"{vocab_size:>6} {'vocablab':<14} {ours:>8.2f}")
        for name in names[1:]:
            same = len(tokens[name] & tokens["vocablab"]) / len(tokens["vocablab"])
            print(f"{vocab_size:>6} {name:<14} {best[name]:>8.2f} {ours / best[name]:>14.2f} "
                  f"{same:>12.1%}")
        count_s, merge_s, chunks = vocablab_phases(docs, vocab_size, args.workers, args.repeat)
        print(f"{'':>6} vocablab phases: counting {count_s:.2f} s ({chunks:,} unique chunks), "
              f"merging {merge_s:.2f} s")
    cs = cs336_check(ROOT.parent / "shared")
    if cs is not None:
        print(f"CS336 check (corpus.en, vocab 500, count + train): {cs:.3f}s (target < 1.5 s)")


if __name__ == "__main__":
    main()
