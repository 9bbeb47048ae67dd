"""Encode a corpus with a trained tokenizer into train/val token shards plus a manifest.

    python -m data.prepare --tokenizer tokenizers/shakespeare4k.model --source shakespeare \\
        --out data/shards/shakespeare4k

Each document becomes [<|endoftext|>] + encode_ordinary(document): the separator marks where a
document starts, and its text is always encoded as ordinary text, so a document that happens to
contain the characters "<|endoftext|>" can never smuggle in the special id.

Which split a document goes to is decided by a hash of its text (data.sources.is_val). If that
puts no document in val (a tiny corpus, e.g. Shakespeare's 42 works at 0.005), the document with
the smallest hash goes to val instead, so the val split is never empty. To know which document
that is without a second pass, the train document with the smallest hash so far is held back
until the first val document turns up (then it is written at that point in the train stream).

Encoding runs in worker processes (tiktoken's Rust encoder, through Tokenizer.to_tiktoken), in
batches whose results are taken back in order, so the shards are byte-identical whatever
--workers is. Tokens are buffered up to --shard-tokens and each shard is written atomically.
meta.json is written last: a directory without it is unfinished (an interrupted run), and a
re-run deletes the old meta.json first, then the old shards, and starts over.
"""
import argparse
import array
import collections
import hashlib
import multiprocessing
import os
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from data.shards import (MANIFEST, dtype_for_vocab, save_token_bytes, write_manifest,
                         write_shard)
from data.sources import TXT_MODES, hash_bytes, iter_documents
from tokenizer import load

EOT = "<|endoftext|>"
BATCH_CHARS = 1 << 19  # text per task sent to a worker: large enough to amortise the pickling


class PrepareError(ValueError):
    """The corpus cannot be split or written as asked; the message says what to change."""


# ---------------------------------------------------------------------------- encoding (workers)

_U32 = "I" if array.array("I").itemsize == 4 else "L"  # a 4-byte unsigned array typecode
_encoder = None  # per process: an object with .encode_ordinary(str) -> list[int]
_eot_id = None


def _init_encoder(encoder, eot_id):
    global _encoder, _eot_id
    _encoder, _eot_id = encoder, eot_id


def _encode_batch(docs):
    """Encode a batch of documents; returns arrays so the trip back to the parent is cheap.

    hashes[i]: the document's split hash; nbytes[i]: its UTF-8 bytes; lens[i]: its token count
    with the leading <|endoftext|>; tokens: all documents' tokens, concatenated.
    """
    flat, lens, hashes, nbytes = array.array(_U32), [], [], []
    for doc in docs:
        ids = _encoder.encode_ordinary(doc)
        flat.append(_eot_id)
        flat.extend(ids)  # array.array: ~3x faster than numpy at taking a list of ints
        lens.append(len(ids) + 1)
        raw = doc.encode("utf-8", "surrogatepass")
        hashes.append(hash_bytes(raw))
        nbytes.append(len(raw))
    return (np.array(hashes), np.array(nbytes, dtype=np.int64), np.array(lens, dtype=np.int64),
            np.frombuffer(flat, dtype=np.uint32))


def _batches(docs):
    batch, size = [], 0
    for doc in docs:
        batch.append(doc)
        size += len(doc)
        if size >= BATCH_CHARS:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _encoded_batches(batches, encoder, eot_id, workers):
    """_encode_batch's results in input order.

    workers=0 encodes in this process. Otherwise `workers` processes encode while this one reads
    the sources and writes shards, so reading overlaps encoding. At most 4 tasks per worker are
    in flight, so memory stays bounded however large the corpus (Pool.imap reads ahead without
    limit)."""
    if workers == 0:
        _init_encoder(encoder, eot_id)
        for batch in batches:
            yield _encode_batch(batch)
        return
    with multiprocessing.get_context().Pool(workers, _init_encoder, (encoder, eot_id)) as pool:
        pending = collections.deque()
        for batch in batches:
            pending.append(pool.apply_async(_encode_batch, (batch,)))
            if len(pending) >= 4 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def _fast_encoder(tok):
    """tiktoken's Encoding with our exact ids when the vocabulary allows it, else the tokenizer."""
    try:
        return tok.to_tiktoken()
    except (ValueError, ImportError) as e:
        print(f"note: tiktoken cannot encode this vocabulary exactly ({e}); "
              f"using the pure-Python encoder (slow)", file=sys.stderr)
        return tok


# ---------------------------------------------------------------------------- writing (parent)

class _SplitWriter:
    """Buffers one split's tokens and writes a shard each time shard_tokens are ready."""

    def __init__(self, out_dir, split, dtype, shard_tokens):
        self.out_dir, self.split, self.dtype, self.shard_tokens = out_dir, split, dtype, shard_tokens
        self.chunks, self.buffered = [], 0
        self.shards, self.tokens, self.documents, self.bytes = [], 0, 0, 0

    def add(self, tokens, nbytes):
        self.documents += 1
        self.bytes += int(nbytes)
        self.tokens += len(tokens)
        self.chunks.append(tokens)
        self.buffered += len(tokens)
        while self.buffered >= self.shard_tokens:
            self._write(self.shard_tokens)

    def close(self):
        if self.buffered:
            self._write(self.buffered)

    def _write(self, n):
        data = np.concatenate(self.chunks) if len(self.chunks) > 1 else self.chunks[0]
        name = f"{self.split}_{len(self.shards):06d}.bin"
        write_shard(self.out_dir / name, data[:n], self.dtype)
        self.shards.append(name)
        self.chunks = [data[n:]] if len(data) > n else []
        self.buffered = len(data) - n

    def summary(self):
        return {"shards": self.shards, "tokens": self.tokens, "documents": self.documents,
                "bytes": self.bytes}


def _clear_previous(out_dir: Path):
    """Remove a previous run's outputs, manifest first, so nothing stale can pass as complete."""
    (out_dir / MANIFEST).unlink(missing_ok=True)
    for pattern in ("train_*.bin", "val_*.bin", "train_*.tmp", "val_*.tmp", "meta.json.*.tmp",
                    "token_bytes.npy*"):
        for p in out_dir.glob(pattern):
            p.unlink()


def token_byte_table(tok, n_vocab):
    """int32 [n_vocab]: how many UTF-8 bytes each id decodes to; 0 for specials and unused ids."""
    table = np.zeros(n_vocab, dtype=np.int32)
    for idx, token in tok.vocab.items():
        table[idx] = len(token)
    return table


def prepare(tokenizer, sources, out_dir, *, val_fraction=0.005, shard_tokens=100_000_000,
            workers=1, txt_mode="file", separator=EOT, text_field="text", max_documents=None,
            progress=False) -> dict:
    """Encode `sources` with the tokenizer at path `tokenizer` into `out_dir`; returns the manifest."""
    if not 0 < val_fraction < 1:
        raise PrepareError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if workers < 0:
        raise PrepareError(f"workers must be >= 0, got {workers}")
    if shard_tokens < 1:
        raise PrepareError(f"shard_tokens must be >= 1, got {shard_tokens}")
    tokenizer, out_dir = Path(tokenizer), Path(out_dir)
    sources = [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)
    tok = load(tokenizer)
    registered = EOT not in tok.special_tokens
    if registered:
        tok.register_special_tokens({EOT: tok.n_vocab})
    eot_id, n_vocab = tok.special_tokens[EOT], tok.n_vocab
    dtype = dtype_for_vocab(n_vocab)

    # opened before anything is deleted: a mistyped path fails with the old outputs intact
    docs = iter_documents(sources, txt_mode=txt_mode, separator=separator,
                          text_field=text_field, max_documents=max_documents)
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear_previous(out_dir)
    writers = {s: _SplitWriter(out_dir, s, dtype, shard_tokens) for s in ("train", "val")}
    held = None  # (hash, tokens, nbytes): smallest-hash train document while val is still empty

    bar = tqdm(desc="encoding", unit="B", unit_scale=True, disable=not progress)
    t0, n_tokens = time.perf_counter(), 0
    for hashes, nbytes, lens, tokens in _encoded_batches(
            _batches(docs), _fast_encoder(tok), eot_id, workers):
        ends = np.cumsum(lens)
        for h, nb, end, n in zip(hashes, nbytes, ends, lens):
            doc_tokens = tokens[end - n:end]
            if h < val_fraction:
                if held is not None:
                    writers["train"].add(*held[1:])
                    held = None
                writers["val"].add(doc_tokens, nb)
            elif writers["val"].documents == 0 and (held is None or h < held[0]):
                if held is not None:
                    writers["train"].add(*held[1:])
                held = (h, doc_tokens, nb)
            else:
                writers["train"].add(doc_tokens, nb)
        n_tokens += int(lens.sum())
        bar.update(int(nbytes.sum()))
        bar.set_postfix_str(f"{n_tokens / (time.perf_counter() - t0):,.0f} tokens/s")
    bar.close()
    if held is not None:  # val_fraction selected nothing: the smallest-hash document is val
        print(f"note: val_fraction {val_fraction} selected no document; using the one with "
              f"the smallest hash as val", file=sys.stderr)
        writers["val"].add(*held[1:])
    if writers["train"].documents == 0:
        raise PrepareError(f"{sources}: no training documents ({writers['val'].documents} went "
                           f"to val); give more text or a smaller --val-fraction")
    for w in writers.values():
        w.close()

    save_token_bytes(out_dir / "token_bytes.npy", token_byte_table(tok, n_vocab))
    meta = {
        "format": "vocablab-shards", "version": 1,
        "tokenizer": {"path": str(tokenizer),
                      "sha256": hashlib.sha256(tokenizer.read_bytes()).hexdigest(),
                      "pattern": tok.pattern, "special_tokens": dict(tok.special_tokens),
                      "eot_registered_by_prepare": registered},
        "vocab_size": n_vocab, "eot_id": eot_id, "dtype": dtype, "token_bytes": "token_bytes.npy",
        "splits": {s: w.summary() for s, w in writers.items()},
        "sources": [str(s) for s in sources], "val_fraction": val_fraction,
    }
    write_manifest(out_dir, meta)
    return meta


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m data.prepare",
        description="Encode a corpus into llm.c-format train/val token shards plus meta.json "
                    "(token counts, UTF-8 byte counts and a token_bytes table for bits per byte).")
    p.add_argument("--tokenizer", required=True, help="a trained tokenizer's .model file")
    p.add_argument("--source", nargs="+", default=["shakespeare"],
                   help="recipe names (shakespeare, pystdlib, tinyshakespeare, tinystories, "
                        "fineweb-edu) and/or files, directories, globs of .txt/.jsonl/.parquet "
                        "(default: shakespeare)")
    p.add_argument("--out", help="output directory (default: data/shards/<tokenizer name>); "
                                 "its previous shards are replaced")
    p.add_argument("--val-fraction", type=float, default=0.005,
                   help="share of documents held out for validation, chosen by a hash of each "
                        "document (default: 0.005; at least one document always)")
    p.add_argument("--shard-tokens", type=int, default=100_000_000,
                   help="tokens per shard file (default: 100M, 200 MB as uint16)")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1),
                   help="encoding processes (default: CPU count, at most 8; 0 = encode in this "
                        "process); the output is the same for any value")
    p.add_argument("--txt-mode", choices=TXT_MODES, default="file",
                   help=".txt files: the whole file is one document (file), each non-blank line "
                        "is one (lines), or split on --separator (separator)")
    p.add_argument("--separator", default=EOT, help="document separator for --txt-mode separator")
    p.add_argument("--text-field", default="text", help="text field of .jsonl / .parquet rows")
    p.add_argument("--max-documents", type=int, help="stop after this many documents")
    args = p.parse_args(argv)
    out = args.out or f"data/shards/{Path(args.tokenizer).stem}"
    meta = prepare(args.tokenizer, args.source, out, val_fraction=args.val_fraction,
                   shard_tokens=args.shard_tokens, workers=args.workers, txt_mode=args.txt_mode,
                   separator=args.separator, text_field=args.text_field,
                   max_documents=args.max_documents, progress=True)
    for split, s in meta["splits"].items():
        print(f"{split}: {s['documents']:,} documents, {s['bytes']:,} bytes -> {s['tokens']:,} "
              f"tokens ({s['bytes'] / max(s['tokens'], 1):.2f} bytes/token) in "
              f"{len(s['shards'])} shard(s)")
    print(f"wrote {out}/{MANIFEST} (vocab_size {meta['vocab_size']}, {meta['dtype']})")


if __name__ == "__main__":
    main()
