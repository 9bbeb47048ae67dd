"""SentencePiece BPE training: vocablab's SentencePieceTokenizer.train vs spm_train.

    python bench/train_spm.py                      # vocab 4096 and 16384 on the ~20 MB stdlib slice
    python bench/train_spm.py --vocab 4096 --bytes 2000000

Both get the same training documents (each line a sentence, as spm_train reads them) and the
same options: BPE, byte fallback, identity normalizer, spaces kept, split_by_unicode_script off
(vocablab does not implement it), max_sentence_length large enough that no line is dropped.
spm_train runs through the `sentencepiece` package (pip install sentencepiece), in this process,
with --threads threads; vocablab counts words in --workers processes (default 1: on a busy
2-core machine, 2 were slower; the pieces are the same either way). Times are wall-clock,
best of --repeat interleaved runs; spm_train's includes reading its input file. "cpu s" is
the CPU time they used (all threads and worker processes; best run), which a busy machine
disturbs less than the wall-clock seconds. "same pieces"
is the share of vocablab's pieces that spm_train also has; "same order" the share at the same id.
Bytes per token are measured on held-out documents (data.sources.is_val, 5%) with each model.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from corpus import describe, stdlib_corpus  # noqa: E402

from data.sources import is_val  # noqa: E402
from tokenizer.sentencepiece import SentencePieceTokenizer  # noqa: E402


def train_ours(docs, vocab_size, corpus_file, args):
    return SentencePieceTokenizer().train(docs, vocab_size, workers=args.workers)


def train_spm(docs, vocab_size, corpus_file, args):
    import sentencepiece as spm

    with tempfile.TemporaryDirectory() as tmp:
        spm.SentencePieceTrainer.train(
            input=str(corpus_file), model_prefix=os.path.join(tmp, "m"), model_type="bpe",
            vocab_size=vocab_size, byte_fallback=True, character_coverage=0.9995,
            normalization_rule_name="identity", remove_extra_whitespaces=False,
            split_by_unicode_script=False, max_sentence_length=1 << 24,
            num_threads=args.threads, minloglevel=2)
        return SentencePieceTokenizer.load(os.path.join(tmp, "m.model"))


def cpu_seconds():
    """CPU time of this process (all its threads) and its finished child processes."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def bytes_per_token(tok, docs):
    """UTF-8 bytes of the held-out documents over the tokens each model spends on them (encoded
    by the sentencepiece library when present: the ids are the same, see the tests)."""
    try:
        import sentencepiece as spm

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "m.model")
            tok.save_sentencepiece(path)
            encode = spm.SentencePieceProcessor(model_file=path).encode
    except ImportError:
        encode = tok.encode
    n_bytes = sum(len(d.encode("utf-8")) for d in docs)
    return n_bytes / sum(len(encode(d)) for d in docs)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vocab", type=int, nargs="+", default=[4096, 16384], help="vocab sizes")
    ap.add_argument("--bytes", type=int, default=20_000_000, help="corpus size (default 20 MB)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per trainer; the best counts")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="spm_train's threads")
    ap.add_argument("--workers", type=int, default=1, help="vocablab's word-counting processes")
    args = ap.parse_args()

    docs, info = stdlib_corpus(args.bytes)
    train = [d for d in docs if not is_val(d, 0.05)]
    held_out = [d for d in docs if is_val(d, 0.05)]
    print(describe(info), f"| {len(train)} training docs, {len(held_out)} held out | "
          f"{os.cpu_count()} cores, spm_train threads={args.threads}, "
          f"vocablab workers={args.workers}")
    print(f"{'vocab':>6} {'trainer':<10} {'seconds':>8} {'ours/spm':>9} {'cpu s':>6} "
          f"{'same pieces':>12} {'same order':>11} {'bytes/token':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        corpus_file = Path(tmp) / "train.txt"
        corpus_file.write_text("\n".join(train), encoding="utf-8")
        for vocab_size in args.vocab:
            best, cpu, models = {}, {}, {}
            for _ in range(args.repeat):
                for name, fn in (("vocablab", train_ours), ("spm_train", train_spm)):
                    t, c = time.perf_counter(), cpu_seconds()
                    try:
                        models[name] = fn(train, vocab_size, corpus_file, args)
                    except ImportError as e:
                        print(f"{name} skipped: {e}")
                        continue
                    best[name] = min(best.get(name, float("inf")), time.perf_counter() - t)
                    cpu[name] = min(cpu.get(name, float("inf")), cpu_seconds() - c)
            ours = models["vocablab"]
            print(f"{vocab_size:>6} {'vocablab':<10} {best['vocablab']:>8.2f} {'':>9} "
                  f"{cpu['vocablab']:>6.2f} {'':>12} {'':>11} "
                  f"{bytes_per_token(ours, held_out):>12.3f}")
            if "spm_train" in models:
                ref = models["spm_train"]
                same = len(set(ours.pieces) & set(ref.pieces)) / ours.n_vocab
                order = sum(a == b for a, b in zip(ours.pieces, ref.pieces)) / ours.n_vocab
                print(f"{vocab_size:>6} {'spm_train':<10} {best['spm_train']:>8.2f} "
                      f"{best['vocablab'] / best['spm_train']:>9.2f} {cpu['spm_train']:>6.2f} "
                      f"{same:>12.1%} {order:>11.1%} {bytes_per_token(ref, held_out):>12.3f}")


if __name__ == "__main__":
    main()
