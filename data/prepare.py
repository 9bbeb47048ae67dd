"""Encode a corpus with a trained tokenizer into train/val token shards plus a manifest.

    python -m data.prepare --tokenizer tokenizers/shakespeare4k.model --source shakespeare \\
        --out data/shards/shakespeare4k

Each document becomes [<|endoftext|>] + encode_ordinary(document): the separator marks where a
document starts, and its text is always encoded as ordinary text, so a document that happens to
contain the characters "<|endoftext|>" can never smuggle in the special id.

With a SentencePiece tokenizer (Llama 2 / Mistral style) each document becomes [<s>] + ids, the
Llama convention; <s> is the model's own BOS piece, so nothing is registered. Bits per byte must
still divide by the text's true UTF-8 bytes, so that they compare with byte-level tokenizers on the
same text. A `▁` is one space byte and a byte piece one byte, but add_dummy_prefix puts one `▁` in
front of every document that the text does not have: its first piece (`▁The`) spells one byte
more than the document. The table cannot see positions, so the correction sits on the one token
that comes exactly once per document, right before that piece: <s> counts -1 byte
(sentencepiece_byte_table). Then the tokens of every document add up to exactly its UTF-8 length,
and the bytes of any run of whole documents are exact; a range that cuts a document between its
<s> and its first piece (the start or end of an evaluation pass) is off by that one byte. (Exact
for any range of targets y with inputs x: token_bytes[y] + (y == <s>) - (x == <s> and y != <s>),
which charges the dummy prefix to the piece that holds it; meta.json's adds_dummy_prefix says
when.) Empty documents are left out: they have no dummy prefix to pay for (and no text to
predict).

Which split a document goes to is decided by a hash of its text (data.sources.is_val). If that
puts no document in val (a tiny corpus, e.g. Shakespeare's 42 works at 0.005), the document with
the smallest hash goes to val instead, so the val split is never empty. To know which document
that is without a second pass, the train document with the smallest hash so far is held back
until the first val document turns up (then it is written at that point in the train stream).

Encoding runs in worker processes (tiktoken's Rust encoder, through Tokenizer.to_tiktoken), in
batches whose results are taken back in order, so the shards are byte-identical whatever
--workers is. Tokens are buffered up to --shard-tokens and each shard is written atomically.

Every batch is checked to spell exactly the bytes it was made from (the token_bytes table): a
split pattern that skips characters would otherwise drop text silently, and bits per byte would
be measured on a different text than the corpus.

Nothing a user had is lost. The output is built in a hidden folder beside --out and moved in
when complete (meta.json last: a folder without it is unfinished), so a failed or interrupted
run leaves the previous output as it was. Only files a vocablab meta.json in --out lists are ever
replaced; a folder that is not a data.prepare output is refused (see check_output_dir).
"""
import argparse
import array
import collections
import glob
import hashlib
import multiprocessing
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from data.shards import (MANIFEST, ShardError, dtype_for_vocab, read_manifest, save_token_bytes,
                         write_manifest, write_shard)
from data.sources import (RECIPES, TXT_MODES, SourceError, describe_skipped, expand_paths,
                          hash_bytes, is_recipe, iter_documents)
from tokenizer import EOT, PRETRAINED, SentencePieceTokenizer, TokenizerLoadError, load_any
from tokenizer.cli import ArgumentParser
from tokenizer.downloads import sha256_file

BATCH_CHARS = 1 << 19  # text per task sent to a worker: large enough to amortise the pickling


class PrepareError(ValueError):
    """The corpus cannot be split or written as asked; the message says what to change."""


class UsageError(PrepareError):
    """The arguments themselves are wrong (exit status 2): found before any text is encoded."""


# ---------------------------------------------------------------------------- encoding (workers)

_U32 = "I" if array.array("I").itemsize == 4 else "L"  # a 4-byte unsigned array typecode
_encoder = None  # per process: an object with .encode_ordinary(str) -> list[int]
_eot_id = None
_table = None  # int32 [n_vocab]: UTF-8 bytes per id (token_byte_table)


def _init_encoder(encoder, eot_id, table):
    global _encoder, _eot_id, _table
    _encoder, _eot_id, _table = encoder, eot_id, table


def _init_worker(encoder, eot_id, table):
    # Ctrl-C reaches the whole process group: the parent alone handles it (and ends the pool),
    # so workers print no tracebacks of their own; SIGTERM (pool.terminate) just ends them.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _init_encoder(encoder, eot_id, table)


def _encode_batch(docs):
    """Encode a batch of documents; returns arrays so the trip back to the parent is cheap.

    hashes[i]: the document's split hash; nbytes[i]: its UTF-8 bytes; lens[i]: its token count
    with the leading <|endoftext|>; tokens: all documents' tokens, concatenated; spelled: the
    UTF-8 bytes those tokens decode to (== nbytes.sum() unless the split pattern dropped text).
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
    tokens = np.frombuffer(flat, dtype=np.uint32)
    return (np.array(hashes), np.array(nbytes, dtype=np.int64), np.array(lens, dtype=np.int64),
            tokens, int(_table[tokens].sum()))


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


def _encoded_batches(batches, encoder, eot_id, table, workers):
    """_encode_batch's results in input order.

    workers=0 encodes in this process. Otherwise `workers` processes encode while this one reads
    the sources and writes shards, so reading overlaps encoding. At most 4 tasks per worker are
    in flight, so memory stays bounded however large the corpus (Pool.imap reads ahead without
    limit)."""
    if workers == 0:
        _init_encoder(encoder, eot_id, table)
        for batch in batches:
            yield _encode_batch(batch)
        return
    with multiprocessing.get_context().Pool(workers, _init_worker, (encoder, eot_id, table)) as pool:
        pending = collections.deque()
        for batch in batches:
            pending.append(pool.apply_async(_encode_batch, (batch,)))
            if len(pending) >= 4 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def _fast_encoder(tok):
    """tiktoken's Encoding with our exact ids when the vocabulary allows it, else the tokenizer."""
    if isinstance(tok, SentencePieceTokenizer):  # scores, not ranks: tiktoken cannot encode it
        return tok
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


# ---------------------------------------------------------------------------- the output directory

# The names this stage writes. A file with one of them that no manifest lists is someone else's.
OUR_NAMES = (MANIFEST, "token_bytes.npy", "train_000000.bin", "val_000000.bin")


def listed_files(meta: dict) -> set[str]:
    """The files a vocablab manifest owns in its folder, itself included: all a re-run replaces."""
    names = {MANIFEST, meta.get("token_bytes")}
    for split in (meta.get("splits") or {}).values():
        names.update(split.get("shards") or [])
    # the manifest is data: a name with a directory part in it never reaches outside the folder
    return {n for n in names if isinstance(n, str) and n not in ("", ".", "..")
            and Path(n).name == n}


def check_output_dir(out_dir: Path, overwrite: bool = False) -> set[str]:
    """The files of a previous data.prepare output in out_dir (none: empty); refuses others.

    Only the files a vocablab manifest in out_dir lists are ever replaced or deleted. A non-empty
    folder without one is refused unless `overwrite`, and even then its files are kept: the
    shards are added beside them, and a name clash is refused, because a file no manifest lists
    is not ours to replace.
    """
    if not out_dir.exists():
        return set()
    if not out_dir.is_dir():
        raise UsageError(f"--out {out_dir}: exists and is not a directory; choose another --out")
    present = {p.name for p in out_dir.iterdir()}
    owned = set()
    if MANIFEST in present:
        try:
            owned = listed_files(read_manifest(out_dir))
        except ShardError:
            pass  # a meta.json that is not ours: the folder is foreign
    foreign = present - owned
    if foreign and not owned and not overwrite:
        raise UsageError(
            f"--out {out_dir}: not empty ({len(foreign)} files, e.g. {sorted(foreign)[0]}) and "
            f"holds no vocablab meta.json, so it is not a data.prepare output; choose a new or "
            f"empty directory, or pass --overwrite to add the shards beside those files (none "
            f"of them is deleted)")
    _refuse_clash(out_dir, foreign & set(OUR_NAMES))
    return owned


def _refuse_clash(out_dir: Path, clash):
    if clash:
        raise UsageError(
            f"--out {out_dir}: {', '.join(sorted(clash))} would be overwritten, but no vocablab "
            f"meta.json there lists them; move them away or choose another --out")


def _partial_dir(out_dir: Path) -> Path:
    """A fresh hidden folder beside out_dir (same filesystem, so moving files out is a rename)."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # a run killed with SIGKILL cannot clean up; another run may be writing right now, so
    # leftovers are pointed out, not deleted
    for old in sorted(out_dir.parent.glob(f".{glob.escape(out_dir.name)}.*.partial")):
        print(f"note: {old} is left over from an earlier run that was killed (or runs now); "
              f"delete it once no data.prepare writes to {out_dir}", file=sys.stderr)
    while True:
        tmp = out_dir.parent / f".{out_dir.name}.{secrets.token_hex(4)}.partial"
        try:
            os.mkdir(tmp)  # not mkdtemp: its 0700 would stay on out_dir after the rename
            return tmp
        except FileExistsError:
            continue


def _swap_in(tmp: Path, out_dir: Path, owned: set[str]):
    """Move the finished output from tmp into out_dir, the manifest last.

    A new out_dir is one atomic rename. Otherwise the old manifest goes first (from then on the
    folder reads as unfinished), then the new files replace the old ones, then the old files the
    new output does not reuse are deleted, then the new manifest lands. Only renames happen in
    that window, so an interruption there is unlikely; one still never leaves a manifest that
    describes the wrong shards.
    """
    if not out_dir.exists():
        os.rename(tmp, out_dir)
        _fsync_dir(out_dir.parent)
        return
    new = {p.name for p in tmp.iterdir()}
    present = {p.name for p in out_dir.iterdir()}
    _refuse_clash(out_dir, (new & present) - owned)
    if MANIFEST in owned:
        (out_dir / MANIFEST).unlink(missing_ok=True)
    for name in sorted(new - {MANIFEST}):
        os.replace(tmp / name, out_dir / name)
    for name in sorted(owned - new):
        (out_dir / name).unlink(missing_ok=True)
    os.replace(tmp / MANIFEST, out_dir / MANIFEST)
    _fsync_dir(out_dir)


def _fsync_dir(path: Path):
    """Make renames in `path` durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------- the tokenizer

def load_tokenizer(spec):
    """A tokenizer from a .model path or a pretrained name (tokenizer.load_any's rules)."""
    try:
        return load_any(spec)
    except TokenizerLoadError as e:
        path = Path(spec)
        if path.is_dir():
            raise UsageError(f"--tokenizer {spec}: a directory; give the .model file inside it") from None
        if not path.exists():  # a typo or an unknown name: the user's command is wrong
            raise UsageError(f"--tokenizer {e}; train one with train_tokenizer.py") from None
        raise PrepareError(f"--tokenizer {e}") from None


def tokenizer_sha256(spec, tok=None) -> str:
    """What meta.json records as the tokenizer's sha256, so a trainer can check it is the same.

    A file: sha256 of its bytes. A pretrained name: sha256 of the .model file `tok.save` writes
    for it (`tok` as loaded, before data.prepare registers <|endoftext|>; loaded when omitted).
    """
    path = Path(spec)
    if path.is_file():
        return sha256_file(path)
    tok = tok if tok is not None else load_tokenizer(spec)
    if isinstance(tok, SentencePieceTokenizer):
        return hashlib.sha256(tok.to_bytes()).hexdigest()
    with tempfile.TemporaryDirectory() as d:
        tok.save(os.path.join(d, "t"))
        return hashlib.sha256(Path(d, "t.model").read_bytes()).hexdigest()



def token_byte_table(tok, n_vocab):
    """int32 [n_vocab]: how many UTF-8 bytes each id decodes to; 0 for specials and unused ids."""
    table = np.zeros(n_vocab, dtype=np.int32)
    for idx, token in tok.vocab.items():
        table[idx] = len(token)
    return table


def sentencepiece_byte_table(tok):
    """int32 [n_vocab]: the UTF-8 bytes each id adds to a document written as [<s>] + ids.

    A piece counts the bytes it decodes to (`▁` a space, a byte piece its byte), control pieces
    0, and <unk> 0: it stands for text it cannot spell (the byte check in _encode_into then
    refuses the corpus). With add_dummy_prefix, <s> counts -1: every non-empty document's first
    piece carries the dummy-prefix `▁`, one byte its text does not have (see the module
    docstring).
    """
    table = token_byte_table(tok, tok.n_vocab)
    table[tok.unk_id] = 0
    if tok.adds_dummy_prefix:
        table[tok.bos_id] = -1
    return table


def _check_options(val_fraction, workers, shard_tokens, max_documents, txt_mode, separator):
    if not 0 < val_fraction < 1:
        raise UsageError(f"--val-fraction must be between 0 and 1 (exclusive), got {val_fraction}: "
                         f"it is the share of documents held out, e.g. 0.005")
    if workers < 0:
        raise UsageError(f"--workers must be >= 0 (0 = encode in this process), got {workers}")
    if shard_tokens < 1:
        raise UsageError(f"--shard-tokens must be >= 1, got {shard_tokens}")
    if max_documents is not None and max_documents < 2:
        raise UsageError(f"--max-documents must be >= 2 (one for val, one for train), got "
                         f"{max_documents}")
    if txt_mode not in TXT_MODES:
        raise UsageError(f"--txt-mode must be one of {', '.join(TXT_MODES)}, got {txt_mode!r}")
    if txt_mode == "separator" and not separator:
        raise UsageError("--separator must not be empty with --txt-mode separator")


def _resolve_sources(sources, txt_mode, skipped):
    """Recipe names and file lists, resolved before any work: a typo fails at once."""
    plan = []
    for s in sources:
        try:
            plan.append(str(s) if is_recipe(s) else expand_paths(str(s), skipped))
        except SourceError as e:
            raise UsageError(str(e)) from None
    files = [f for item in plan if not isinstance(item, str) for f in item]
    whole_files = txt_mode == "file" and all(f.suffix not in (".jsonl", ".parquet") for f in files)
    if whole_files and len(files) == len(plan) == 1:
        # one document cannot fill both splits: say so before encoding anything
        raise UsageError(f"{sources[0]}: with --txt-mode file a text file is one document, and "
                         f"data.prepare needs at least two (val and train); use --txt-mode lines "
                         f"(one per non-blank line) or --txt-mode separator (split on --separator)")
    flat = [f for item in plan for f in ([item] if isinstance(item, str) else item)]
    return flat, whole_files


def prepare(tokenizer, sources, out_dir, *, val_fraction=0.005, shard_tokens=100_000_000,
            workers=1, txt_mode="file", separator=EOT, text_field="text", max_documents=None,
            overwrite=False, progress=False) -> dict:
    """Encode `sources` with `tokenizer` (a .model path, cl100k or gpt2) into `out_dir`.

    Returns the manifest (meta.json). Errors are PrepareError (UsageError for bad arguments),
    each one line naming the file and the fix.

    The new output is built in a hidden folder beside out_dir and moved in only when complete,
    so a run that fails or is interrupted leaves out_dir as it was. Only files listed by the
    vocablab manifest already in out_dir are replaced; see check_output_dir.
    """
    _check_options(val_fraction, workers, shard_tokens, max_documents, txt_mode, separator)
    out_dir = Path(os.path.abspath(out_dir))  # "." and "x/..": the partial folder needs a name
    sources = [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)
    tok = load_tokenizer(tokenizer)
    tok_sha = tokenizer_sha256(tokenizer, tok)
    owned = check_output_dir(out_dir, overwrite)
    skipped = []
    plan, whole_files = _resolve_sources(sources, txt_mode, skipped)
    if skipped:
        print(f"note: reading directories, {describe_skipped(skipped)}", file=sys.stderr)

    sentencepiece = isinstance(tok, SentencePieceTokenizer)
    if sentencepiece:
        if tok.bos_id is None:
            raise PrepareError(f"--tokenizer {tokenizer}: this SentencePiece model has no <s> "
                               f"control piece to start documents with; train one with "
                               f"train_tokenizer.py --type sentencepiece")
        registered, eot_id = False, tok.bos_id
        table = sentencepiece_byte_table(tok)
    else:
        registered = EOT not in tok.special_tokens
        if registered:
            tok.register_special_tokens({EOT: tok.n_vocab})
        eot_id = tok.special_tokens[EOT]
        table = token_byte_table(tok, tok.n_vocab)
    n_vocab = tok.n_vocab
    dtype = dtype_for_vocab(n_vocab)
    docs = iter_documents(plan, txt_mode=txt_mode, separator=separator, text_field=text_field,
                          max_documents=max_documents)
    if sentencepiece:
        docs = (d for d in docs if d)  # no text, no dummy prefix (see the module docstring)

    tmp = _partial_dir(out_dir)
    try:
        splits = _encode_into(tmp, docs, tok, table, eot_id, dtype, val_fraction=val_fraction,
                              shard_tokens=shard_tokens, workers=workers, progress=progress,
                              tok_label=tokenizer)
        if splits["train"]["documents"] == 0:
            hint = (" or --txt-mode lines|separator (with --txt-mode file each text file is one "
                    "document)" if whole_files else "")
            raise PrepareError(f"{', '.join(map(str, sources))}: no training documents "
                               f"({splits['val']['documents']} went to val); give more text, "
                               f"a smaller --val-fraction{hint}")
        save_token_bytes(tmp / "token_bytes.npy", table)
        meta = {
            "format": "vocablab-shards", "version": 1,
            "tokenizer": {"path": str(tokenizer), "pretrained": _pretrained_name(tokenizer, tok),
                          "kind": "sentencepiece" if sentencepiece else "bytelevel",
                          # token_bytes[doc_start_id] is then -1 (see the module docstring)
                          "adds_dummy_prefix": sentencepiece and tok.adds_dummy_prefix,
                          "sha256": tok_sha, "pattern": getattr(tok, "pattern", None),
                          "special_tokens": dict(tok.special_tokens),
                          "eot_registered_by_prepare": registered},
            # eot_id: the id in front of every document (<|endoftext|>, or <s>); doc_start_id
            # says the same under the name that fits both conventions
            "vocab_size": n_vocab, "eot_id": eot_id, "doc_start_id": eot_id, "dtype": dtype,
            "token_bytes": "token_bytes.npy", "splits": splits,
            "sources": [str(s) for s in sources], "val_fraction": val_fraction,
        }
        write_manifest(tmp, meta)
        _swap_in(tmp, out_dir, owned)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return meta


def _pretrained_name(spec, tok):
    """cl100k_base / gpt2 when `spec` named a pretrained vocabulary, else None (a file)."""
    return None if Path(spec).is_file() else tok.name


def _encode_into(out_dir, docs, tok, table, eot_id, dtype, *, val_fraction, shard_tokens,
                 workers, progress, tok_label) -> dict:
    """Encode and write both splits' shards into out_dir; returns meta.json's "splits"."""
    writers = {s: _SplitWriter(out_dir, s, dtype, shard_tokens) for s in ("train", "val")}
    held = None  # (hash, tokens, nbytes): smallest-hash train document while val is still empty
    seen = spelled = 0  # UTF-8 bytes read, and bytes the tokens decode to

    # leave=False: the bar clears itself, so an error is the only line left on the terminal;
    # disable=None: no bar when stderr is not a terminal (a log file gets the summary only)
    bar = tqdm(desc="encoding", unit="B", unit_scale=True, disable=None if progress else True,
               leave=False)
    t0, n_tokens = time.perf_counter(), 0
    with bar:
        for hashes, nbytes, lens, tokens, batch_spelled in _encoded_batches(
                _batches(docs), _fast_encoder(tok), eot_id, table, workers):
            seen += int(nbytes.sum())
            spelled += batch_spelled
            if spelled != seen:
                raise PrepareError(_dropped_text(tok_label, tok, seen, spelled))
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
    if held is not None:  # val_fraction selected nothing: the smallest-hash document is val
        print(f"note: val_fraction {val_fraction} selected no document; using the one with "
              f"the smallest hash as val", file=sys.stderr)
        writers["val"].add(*held[1:])
    for w in writers.values():
        w.close()
    return {s: w.summary() for s, w in writers.items()}


def _dropped_text(tok_label, tok, seen, spelled) -> str:
    share = (seen - spelled) / seen
    if isinstance(tok, SentencePieceTokenizer):
        return (f"tokenizer {tok_label} does not spell the text exactly (its tokens stand for "
                f"{spelled:,} bytes where the first documents hold {seen:,}): it writes unknown characters as <unk> or its "
                f"normalizer changes whitespace, so bits per byte would be measured on other "
                f"text than the corpus; train one with train_tokenizer.py --type sentencepiece "
                f"(byte fallback on)")
    pattern = tok.pattern
    return (f"tokenizer {tok_label} drops {share:.2%} of the text's bytes (in the first "
            f"{seen:,} bytes read): its split pattern {pattern!r} does not match every "
            f"character, so bytes/token and bits per byte would be measured on other text than "
            f"the corpus; retrain it with a pattern that covers every character (e.g. "
            f"train_tokenizer.py --pattern gpt4)")


# ---------------------------------------------------------------------------- the command line

EXAMPLES = """\
examples:
  python -m data.prepare --tokenizer tokenizers/shakespeare4k.model --source shakespeare \\
      --out data/shards/shakespeare4k --val-fraction 0.05
  python -m data.prepare --tokenizer cl100k --source notes/ --out data/shards/notes-cl100k
  python -m data.prepare --tokenizer t.model --source book.txt --txt-mode lines \\
      --out data/shards/book

Long options may be written with '-' or '_' (--val-fraction, --val_fraction). The output folder
is replaced only where a previous data.prepare run wrote it (the files its meta.json lists);
the new output is built beside it and moved in when complete, so a failed run changes nothing.
Exit status: 0 done, 2 bad arguments, 1 failure while reading or writing.
"""


def _txt_mode(value):
    return {"line": "lines"}.get(value, value)  # train_tokenizer.py's --doc-per spelling


class _Parser(ArgumentParser):
    """Long options in either spelling (--val-fraction, --val_fraction); errors in one line."""

    def error(self, message):
        # one line, like every other failure of this command (argparse prints the usage block)
        _fail(2, f"{message} (see python -m data.prepare --help)")


def build_parser():
    p = _Parser(
        prog="python -m data.prepare", epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Encode a corpus into llm.c-format train/val token shards plus meta.json "
                    "(token counts, UTF-8 byte counts and a token_bytes table for bits per byte).")
    p.add_argument("--tokenizer", required=True, metavar="PATH|NAME",
         help="a .model file from train_tokenizer.py (e.g. tokenizers/shakespeare4k.model), or a "
              f"pretrained name: {', '.join(PRETRAINED)}")
    p.add_argument("--source", "--input", nargs="+", default=["shakespeare"], metavar="SOURCE",
         help="what to encode, read in the order given: recipe names (" + ", ".join(RECIPES)
              + "), files (.txt or any text, .jsonl, .parquet), directories (their text, .jsonl "
              "and .parquet files; binary, compressed and hidden files are skipped and counted) "
              "or globs, e.g. --source shakespeare notes/ 'data/*.jsonl' (default: shakespeare)")
    p.add_argument("--out", metavar="DIR",
         help="output directory, e.g. data/shards/shakespeare4k (default: data/shards/<tokenizer "
              "name>); a previous data.prepare output there is replaced, anything else is refused")
    p.add_argument("--overwrite", action="store_true",
         help="write into a non-empty directory that is not a data.prepare output, e.g. a "
              "project folder; its files are kept (never deleted or replaced), the shards are "
              "added beside them")
    p.add_argument("--val-fraction", type=float, default=0.005, metavar="F",
         help="share of documents held out for validation, chosen by a hash of each document, "
              "in (0, 1), e.g. 0.05 (default: 0.005; at least one document always)")
    p.add_argument("--shard-tokens", type=int, default=100_000_000, metavar="N",
         help="tokens per shard file, e.g. 10000000 (default: 100M, 200 MB as uint16)")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), metavar="N",
         help="encoding processes, e.g. 4 (default: CPU count, at most 8; 0 = encode in this "
              "process); the output is the same for any value")
    p.add_argument("--txt-mode", "--doc-per", type=_txt_mode, choices=TXT_MODES, default="file",
         metavar="MODE",
         help="how a text file splits into documents: the whole file is one (file), each "
              "non-blank line is one (lines), or split on --separator (separator); e.g. "
              "--txt-mode lines for one sentence per line (default: file; --doc-per line, "
              "train_tokenizer.py's spelling, is accepted too)")
    p.add_argument("--separator", default=EOT, metavar="TEXT",
         help=f"document separator for --txt-mode separator, e.g. '=====' (default: {EOT})")
    p.add_argument("--text-field", default="text", metavar="NAME",
         help="field of .jsonl objects / column of .parquet files holding the text, e.g. "
              "content (default: text)")
    p.add_argument("--max-documents", type=int, metavar="N",
         help="stop after this many documents, e.g. 1000 for a quick try (default: all)")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    out = args.out or f"data/shards/{Path(args.tokenizer).stem}"
    # a `kill` gets the same clean-up as Ctrl-C: the partial output beside --out is removed
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if on_main_thread else None
    try:
        meta = prepare(args.tokenizer, args.source, out, val_fraction=args.val_fraction,
                       shard_tokens=args.shard_tokens, workers=args.workers,
                       txt_mode=args.txt_mode, separator=args.separator,
                       text_field=args.text_field, max_documents=args.max_documents,
                       overwrite=args.overwrite, progress=True)
    except UsageError as e:
        _fail(2, e)
    except (PrepareError, SourceError, ShardError, OSError) as e:
        _fail(1, e)
    except KeyboardInterrupt:
        _fail(130, f"interrupted; {out} was left as it was")
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous)
    for split, s in meta["splits"].items():
        print(f"{split}: {s['documents']:,} documents, {s['bytes']:,} bytes -> {s['tokens']:,} "
              f"tokens ({s['bytes'] / max(s['tokens'], 1):.2f} bytes/token) in "
              f"{len(s['shards'])} shard(s)")
    print(f"wrote {out}/{MANIFEST} (vocab_size {meta['vocab_size']}, {meta['dtype']})")


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _fail(status, message):
    print(f"data.prepare: error: {message}", file=sys.stderr)
    sys.exit(status)


if __name__ == "__main__":
    main()
