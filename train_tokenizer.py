"""Train a BPE tokenizer on your text files or a named corpus: byte-level (GPT-2/GPT-4, the
default) or SentencePiece-style (Llama 2/Mistral: code points first, bytes as fallback).

    python train_tokenizer.py --source 'corpus/*.txt' --vocab-size 8192 --out tokenizers/mytok
    python train_tokenizer.py --source data.jsonl --pattern gpt2 --out tokenizers/t
    python train_tokenizer.py --source shakespeare --vocab-size 2048 --out tokenizers/shakespeare
    python train_tokenizer.py --type sentencepiece --source shakespeare --vocab-size 4096 --split-digits

Inputs are read by data.sources (the text stage, before the tokenizer in the flow): files,
directories (their .txt/.jsonl/.parquet files), globs, or a recipe name (shakespeare, pystdlib, ...).

Writes tokenizers/NAME.model (load it with tokenizer.load), NAME.vocab (human-readable) and
NAME.tiktoken (ranks for tiktoken); with --type sentencepiece, NAME.model is a SentencePiece
file (the sentencepiece library loads it too) and NAME.vocab lists `piece<TAB>score` as spm_train
writes it. A deterministic ~1% of documents is held out of training
(chosen by a hash of the document's text and --seed) to report an honest compression ratio.
Long options take hyphens or underscores (--vocab-size, --vocab_size).
"""
import argparse
import itertools
import os
import sys
import time

import regex

from data.sources import RECIPES, TXT_MODES, SourceError, hash_bytes, iter_documents
from tokenizer import EOT, SPLIT_PATTERNS, BasicTokenizer, RegexTokenizer, SentencePieceTokenizer
from tokenizer.atomic import write_text_atomic
from tokenizer.cli import ArgumentParser
from tokenizer.sentencepiece import NORMAL
from tokenizer.trainer import check_coverage, count_chunks

HELD_OUT_KEEP_BYTES = 4_000_000  # held-out text kept in memory to measure compression


class InputError(ValueError):
    """Bad command-line input: printed as `error: ...` with exit code 2."""


def is_held_out(doc, fraction, seed):
    """Deterministic: the same document is held out on every run with the same seed."""
    return hash_bytes(f"{seed}\0{doc}".encode("utf-8", "surrogatepass")) < fraction


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


def document_reader(args):
    """A function that streams the documents of --source afresh on each call. Called once here so
    that paths are checked before any work: a typo fails at once."""
    txt_mode = "lines" if args.txt_mode == "line" else args.txt_mode

    def documents():
        return iter_documents(args.source, txt_mode=txt_mode, text_field=args.text_field)
    documents()
    return documents


def build_parser():
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = p.add_argument
    add("--source", "--input", dest="source", nargs="+", required=True,
        help="text files, directories (read recursively), globs (quote them) or a "
             f"named corpus ({', '.join(RECIPES)})")
    add("--type", default="bytelevel", choices=["bytelevel", "sentencepiece"],
        help="bytelevel (default): GPT-2/GPT-4 style; sentencepiece: Llama 2/Mistral style")
    add("--vocab-size", type=int, default=8192,
        help="bytelevel: 256 byte tokens + merges, special tokens get ids after; "
             "sentencepiece: every piece, <unk> <s> </s> and bytes included "
             "(default 8192)")
    add("--pattern", default=None,
        help="bytelevel: split regex: gpt4 (default), gpt2, none (no split: "
             "BasicTokenizer), or a regex of your own")
    add("--special-tokens", nargs="*", default=None,
        help="bytelevel: strings that cut the text and get their own ids after the "
             "merges (default <|endoftext|>; give the flag with no value for none)")
    sp = p.add_argument_group("sentencepiece options (spm_train's, same defaults except "
                   "byte fallback)")
    sp.add_argument("--byte-fallback", action=argparse.BooleanOptionalAction, default=True,
                    help="spell characters outside the vocabulary as <0xXX> byte pieces "
              "instead of <unk> (default on, as in Llama 2 and Mistral)")
    sp.add_argument("--character-coverage", type=float, default=0.9995,
                    help="share of character occurrences whose characters become pieces "
              "(default 0.9995)")
    sp.add_argument("--split-digits", action=argparse.BooleanOptionalAction, default=False,
                    help="every digit its own piece, as Llama 2 and Mistral (default off)")
    sp.add_argument("--split-by-whitespace", action=argparse.BooleanOptionalAction, default=True,
                    help="no piece spans a space inside it (default on)")
    sp.add_argument("--max-piece-length", type=int, default=16,
                    help="longest piece in characters (default 16)")
    sp.add_argument("--user-defined-symbols", nargs="*", default=[],
                    help="strings always cut out as one piece, never merged")
    sp.add_argument("--add-dummy-prefix", action=argparse.BooleanOptionalAction, default=True,
                    help="put a ▁ in front of each text, so a first word is spelled as inside "
              "a text (default on)")
    add("--out", default=None,
        help="output prefix, e.g. tokenizers/mytok (default tokenizers/bpe<vocab>, "
             "or tokenizers/sp<vocab> with --type sentencepiece)")
    add("--workers", type=int, default=os.cpu_count() or 1,
        help="bytelevel: processes for chunk counting (default: all cores)")
    add("--max-bytes", type=int, default=0,
        help="stop reading after this many bytes of documents (default: read all)")
    add("--txt-mode", "--doc-per", dest="txt_mode", default="file", metavar="MODE",
        choices=[*TXT_MODES, "line"],  # "line": --doc-per's old spelling of "lines"
        help="what one document is in a .txt file: file (default: the whole file), lines (each "
             f"non-blank line) or separator (each piece between {EOT}); .jsonl: one per record")
    add("--text-field", "--jsonl-field", dest="text_field", default="text",
        help="field of .jsonl records (column of .parquet files) to read")
    add("--held-out", type=float, default=0.01,
        help="fraction of documents held out to measure compression (default 0.01)")
    add("--seed", type=int, default=0, help="chooses the held-out documents")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (InputError, SourceError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def run(args):
    if args.type == "sentencepiece":
        return run_sentencepiece(args)
    if args.pattern is None:
        args.pattern = "gpt4"
    if args.special_tokens is None:
        args.special_tokens = [EOT]
    if args.vocab_size < 257:
        raise InputError(f"--vocab-size {args.vocab_size} is too small: it counts the 256 byte "
                         "tokens, so ask for at least 257 to learn any merge")
    if not 0 <= args.held_out < 1:
        raise InputError(f"--held-out must be in [0, 1), got {args.held_out}")
    pattern = SPLIT_PATTERNS.get(args.pattern, args.pattern)
    try:
        regex.compile(pattern)
    except regex.error as e:
        raise InputError(f"--pattern {args.pattern!r} is not a valid regex: {e}") from None
    if any(not s for s in args.special_tokens):
        raise InputError("--special-tokens: an empty string cannot be a special token; give the "
                         "flag with no value for none")
    specials = list(dict.fromkeys(args.special_tokens))
    out = args.out or f"tokenizers/bpe{args.vocab_size}"
    documents = document_reader(args)
    print(f"inputs {' '.join(args.source)}; pattern {args.pattern}; vocab {args.vocab_size}; "
          f"specials {specials}")

    t0 = time.time()
    corpus = Corpus(documents(), args.max_bytes, args.held_out, args.seed)
    counts = count_chunks(corpus, pattern or None, special_tokens=specials,
                          workers=args.workers, progress=True)
    if not counts:
        raise InputError("the inputs hold no text to train on")
    try:
        check_coverage(counts, pattern)
    except ValueError as e:
        raise InputError(f"--pattern: {e}") from None
    t_count = time.time() - t0
    tok = RegexTokenizer(pattern=pattern) if pattern else BasicTokenizer()
    try:
        tok.train_from_counts(counts, args.vocab_size, specials, progress=True)
    except ValueError as e:  # too few merges for --vocab-size
        raise InputError(f"--vocab-size: {e}") from None
    t_train = time.time() - t0

    tok.save(out)
    written = [f"{out}.model", f"{out}.vocab"]
    try:
        tok.save_tiktoken(f"{out}.tiktoken")
        written.append(f"{out}.tiktoken")
    except ValueError as e:  # e.g. two ids with the same bytes: tiktoken can't represent it
        print(f"note: no .tiktoken file: {e}")

    eval_docs, where = held_out_docs(corpus, documents, args.seed)
    n_bytes = sum(len(d.encode("utf-8", "surrogatepass")) for d in eval_docs)
    n_tokens = sum(len(ids) for ids in tok.encode_batch(eval_docs, allowed_special="all"))
    print(f"\ntrained in {t_train:.1f}s (reading+counting {t_count:.1f}s, "
          f"merging {t_train - t_count:.1f}s)")
    print(f"bytes seen: {corpus.bytes_seen:,} in {corpus.n_docs:,} documents")
    print(f"unique chunks: {len(counts):,}; merges: {len(tok.merges):,}; n_vocab {tok.n_vocab}")
    if n_tokens:
        print(f"compression: {n_bytes / n_tokens:.3f} bytes/token on {n_bytes:,} bytes of {where}")
    print("wrote " + ", ".join(written))
    return 0


def held_out_docs(corpus, documents, seed):
    """The documents to measure compression on, and a phrase saying where they come from."""
    if corpus.held_out:
        return corpus.held_out, f"{corpus.n_held} held-out documents (hash of text, seed {seed})"
    # too few documents to hold any out: say so rather than pretend
    return (list(itertools.islice(documents(), 1000)),
            "training documents (none were held out: too few documents)")


def run_sentencepiece(args):
    """--type sentencepiece: train, write NAME.model and NAME.vocab, report compression."""
    for flag, value in (("--pattern", args.pattern), ("--special-tokens", args.special_tokens)):
        if value is not None:
            raise InputError(f"{flag} is for --type bytelevel; a SentencePiece model has its "
                             f"fixed <unk> <s> </s> (use --user-defined-symbols for pieces of "
                             f"your own)")
    if not 0 < args.character_coverage <= 1:
        raise InputError(f"--character-coverage must be in (0, 1], got {args.character_coverage}")
    if args.max_piece_length < 1:
        raise InputError(f"--max-piece-length must be >= 1, got {args.max_piece_length}")
    if not 0 <= args.held_out < 1:
        raise InputError(f"--held-out must be in [0, 1), got {args.held_out}")
    if any(not s for s in args.user_defined_symbols):
        raise InputError("--user-defined-symbols: an empty string cannot be a piece")
    out = args.out or f"tokenizers/sp{args.vocab_size}"
    documents = document_reader(args)
    print(f"inputs {' '.join(args.source)}; sentencepiece BPE; vocab {args.vocab_size}; "
          f"byte_fallback {args.byte_fallback}; character_coverage {args.character_coverage}; "
          f"split_digits {args.split_digits}")

    t0 = time.time()
    corpus = Corpus(documents(), args.max_bytes, args.held_out, args.seed)
    tok = SentencePieceTokenizer()
    try:
        tok.train(corpus, args.vocab_size, byte_fallback=args.byte_fallback,
                  character_coverage=args.character_coverage, split_digits=args.split_digits,
                  split_by_whitespace=args.split_by_whitespace,
                  max_piece_length=args.max_piece_length,
                  user_defined_symbols=args.user_defined_symbols,
                  add_dummy_prefix=args.add_dummy_prefix, progress=True)
    except ValueError as e:  # vocab_size too small for the specials, bytes and characters
        raise InputError(f"--vocab-size: {e}") from None
    if NORMAL not in tok.types:  # any training text keeps at least one character as a piece
        raise InputError("the inputs hold no text to train on")
    t_train = time.time() - t0

    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    tok.save_sentencepiece(f"{out}.model")
    write_text_atomic(f"{out}.vocab", "".join(f"{p}\t{s:g}\n"
                                               for p, s in zip(tok.pieces, tok.scores)))
    eval_docs, where = held_out_docs(corpus, documents, args.seed)
    n_bytes = sum(len(d.encode("utf-8", "surrogatepass")) for d in eval_docs)
    n_tokens = sum(map(len, tok.encode_batch(eval_docs)))
    learned = [p for p, t in zip(tok.pieces, tok.types) if t == NORMAL]
    n_chars = sum(len(p) == 1 for p in learned)  # merged pieces have two characters or more
    print(f"\ntrained in {t_train:.1f}s")
    print(f"bytes seen: {corpus.bytes_seen:,} in {corpus.n_docs:,} documents")
    print(f"merged pieces: {len(learned) - n_chars:,}; characters: {n_chars:,}; "
          f"n_vocab {tok.n_vocab}")
    if n_tokens:
        print(f"compression: {n_bytes / n_tokens:.3f} bytes/token on {n_bytes:,} bytes of {where}")
    print(f"wrote {out}.model, {out}.vocab")
    return 0


if __name__ == "__main__":
    sys.exit(main())
