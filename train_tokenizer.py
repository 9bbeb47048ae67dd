"""Train a byte-level BPE tokenizer on your text files.

    python train_tokenizer.py --input 'corpus/*.txt' --vocab-size 8192 --out tokenizers/mytok
    python train_tokenizer.py --input data.jsonl --pattern gpt2 --out tokenizers/t

Writes tokenizers/NAME.model (load it with tokenizer.load), NAME.vocab (human-readable) and
NAME.tiktoken (ranks for tiktoken). A deterministic ~1% of documents is held out of training
(chosen by a hash of the document's text and --seed) to report an honest compression ratio.
"""
import argparse
import glob
import hashlib
import json
import os
import sys
import time
from pathlib import Path

from tokenizer import GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN, BasicTokenizer, RegexTokenizer
from tokenizer.trainer import count_chunks, train_bpe

PATTERNS = {"gpt4": GPT4_SPLIT_PATTERN, "gpt2": GPT2_SPLIT_PATTERN, "none": ""}
HELD_OUT_KEEP_BYTES = 4_000_000  # held-out text kept in memory to measure compression


class InputError(ValueError):
    pass


def expand_inputs(specs):
    """Files, directories (recursive, hidden files skipped) and globs -> sorted unique paths."""
    paths = []
    for spec in specs:
        p = Path(spec)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file()
                           and not any(part.startswith(".") for part in f.relative_to(p).parts))
        elif p.is_file():
            found = [p]
        else:
            found = sorted(Path(f) for f in glob.glob(spec, recursive=True) if Path(f).is_file())
        if not found:
            raise InputError(f"--input {spec!r}: no files matched (not a file, a directory or a "
                             "glob with matches)")
        paths += found
    return list(dict.fromkeys(paths))


def _decode(raw, path, errors, line=None):
    try:
        return raw.decode("utf-8", errors=errors)
    except UnicodeDecodeError as e:
        if line is None:  # a whole file: find the line of the bad byte
            line = raw.count(b"\n", 0, e.start) + 1
            offset = e.start - (raw.rfind(b"\n", 0, e.start) + 1)
        else:
            offset = e.start
        raise InputError(f"{path}: invalid UTF-8 at line {line}, byte {offset} of the line "
                         f"({e.reason}). Pass --errors replace to substitute U+FFFD") from None


def iter_documents(paths, doc_per="file", jsonl_field="text", errors="strict"):
    """Yield documents: one per file, per line, or per .jsonl record (its `jsonl_field`)."""
    for path in paths:
        if path.suffix == ".jsonl":
            with open(path, "rb") as f:
                for n, raw in enumerate(f, 1):
                    line = _decode(raw, path, errors, line=n).strip()
                    if not line:
                        continue
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError as e:
                        raise InputError(f"{path}: line {n} is not valid JSON ({e.msg})") from None
                    if not isinstance(record, dict) or not isinstance(record.get(jsonl_field), str):
                        raise InputError(f"{path}: line {n} has no string field {jsonl_field!r} "
                                         "(choose another with --jsonl-field)")
                    yield record[jsonl_field]
        elif doc_per == "line":
            with open(path, "rb") as f:
                for n, raw in enumerate(f, 1):
                    line = _decode(raw, path, errors, line=n)
                    if line.strip():
                        yield line
        else:
            yield _decode(path.read_bytes(), path, errors)


def is_held_out(doc, fraction, seed):
    """Deterministic: the same document is held out on every run with the same seed."""
    h = hashlib.blake2b(f"{seed}\0{doc}".encode("utf-8", "surrogatepass"), digest_size=8)
    return int.from_bytes(h.digest(), "little") / 2**64 < fraction


class Corpus:
    """Streams training documents; sets held-out ones aside and counts bytes as it goes."""

    def __init__(self, docs, max_bytes, held_out_fraction, seed):
        self.docs, self.max_bytes = docs, max_bytes
        self.fraction, self.seed = held_out_fraction, seed
        self.bytes_seen = self.n_docs = self.n_held = 0
        self.held_out = []
        self.held_bytes = 0

    def __iter__(self):
        for doc in self.docs:
            if self.max_bytes and self.bytes_seen >= self.max_bytes:
                break
            size = len(doc.encode("utf-8", "surrogatepass"))
            self.bytes_seen += size
            self.n_docs += 1
            if is_held_out(doc, self.fraction, self.seed):
                self.n_held += 1
                if self.held_bytes < HELD_OUT_KEEP_BYTES:
                    self.held_out.append(doc)
                    self.held_bytes += size
                continue
            yield doc


def build_parser():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", nargs="+", required=True,
                   help="text files, directories (read recursively) or globs (quote them)")
    p.add_argument("--vocab-size", type=int, default=8192,
                   help="256 byte tokens + merges; special tokens get ids after (default 8192)")
    p.add_argument("--pattern", default="gpt4",
                   help="split regex: gpt4 (default), gpt2, none (no split: BasicTokenizer), "
                        "or a regex of your own")
    p.add_argument("--special-tokens", nargs="*", default=["<|endoftext|>"],
                   help="strings that cut the text and get their own ids after the merges "
                        "(default <|endoftext|>; give the flag with no value for none)")
    p.add_argument("--out", default=None,
                   help="output prefix, e.g. tokenizers/mytok (default tokenizers/bpe<vocab>)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="processes for chunk counting (default: all cores)")
    p.add_argument("--max-bytes", type=int, default=0,
                   help="stop reading after this many bytes of documents (default: read all)")
    p.add_argument("--doc-per", choices=["file", "line"], default="file",
                   help="what one document is in text files (.jsonl: always one per record)")
    p.add_argument("--jsonl-field", default="text", help="field of .jsonl records to read")
    p.add_argument("--errors", choices=["strict", "replace"], default="strict",
                   help="invalid UTF-8: stop with an error (default) or replace with U+FFFD")
    p.add_argument("--held-out", type=float, default=0.01,
                   help="fraction of documents held out to measure compression (default 0.01)")
    p.add_argument("--seed", type=int, default=0, help="chooses the held-out documents")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def run(args):
    if args.vocab_size < 257:
        raise InputError(f"--vocab-size {args.vocab_size} is too small: it counts the 256 byte "
                         "tokens, so ask for at least 257 to learn any merge")
    if not 0 <= args.held_out < 1:
        raise InputError(f"--held-out must be in [0, 1), got {args.held_out}")
    pattern = PATTERNS.get(args.pattern, args.pattern)
    if pattern:
        import regex
        try:
            regex.compile(pattern)
        except regex.error as e:
            raise InputError(f"--pattern {args.pattern!r} is not a valid regex: {e}") from None
    specials = list(dict.fromkeys(args.special_tokens))
    out = args.out or f"tokenizers/bpe{args.vocab_size}"
    paths = expand_inputs(args.input)
    print(f"{len(paths)} input file(s); pattern {args.pattern}; vocab {args.vocab_size}; "
          f"specials {specials}")

    t0 = time.time()
    corpus = Corpus(iter_documents(paths, args.doc_per, args.jsonl_field, args.errors),
                    args.max_bytes, args.held_out, args.seed)
    counts = count_chunks(corpus, pattern or None, special_tokens=specials,
                          workers=args.workers, progress=True)
    if not counts:
        raise InputError("the inputs hold no text to train on")
    t_count = time.time() - t0
    merges = train_bpe(counts, args.vocab_size - 256, progress=True)
    if len(merges) < args.vocab_size - 256:
        raise InputError(f"--vocab-size {args.vocab_size} is too large for this text: only "
                         f"{len(merges)} merges are possible (max {256 + len(merges)})")
    tok = RegexTokenizer(pattern=pattern) if pattern else BasicTokenizer()
    # the same installation step as Tokenizer.train, which we bypass only to show progress bars
    tok._set_merges({(a, b): c for a, b, c in merges}, list(range(256)))
    tok.register_special_tokens({name: args.vocab_size + i for i, name in enumerate(specials)})
    t_train = time.time() - t0

    Path(out).parent.mkdir(parents=True, exist_ok=True)
    tok.save(out)
    written = [f"{out}.model", f"{out}.vocab"]
    try:
        tok.save_tiktoken(f"{out}.tiktoken")
        written.append(f"{out}.tiktoken")
    except ValueError as e:  # e.g. two ids with the same bytes: tiktoken can't represent it
        print(f"note: no .tiktoken file: {e}")

    eval_docs = corpus.held_out
    where = f"{corpus.n_held} held-out documents (hash of text, seed {args.seed})"
    if not eval_docs:
        # too few documents to hold any out: say so rather than pretend
        eval_docs = list(iter_documents(paths, args.doc_per, args.jsonl_field, args.errors))[:1000]
        where = "training documents (none were held out: too few documents)"
    n_bytes = sum(len(d.encode("utf-8", "surrogatepass")) for d in eval_docs)
    n_tokens = sum(len(ids) for ids in tok.encode_batch(eval_docs, allowed_special="all"))
    print(f"\ntrained in {t_train:.1f}s (reading+counting {t_count:.1f}s, "
          f"merging {t_train - t_count:.1f}s)")
    print(f"bytes seen: {corpus.bytes_seen:,} in {corpus.n_docs:,} documents")
    print(f"unique chunks: {len(counts):,}; merges: {len(merges):,}; n_vocab {tok.n_vocab}")
    if n_tokens:
        print(f"compression: {n_bytes / n_tokens:.3f} bytes/token on {n_bytes:,} bytes of {where}")
    print("wrote " + ", ".join(written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
