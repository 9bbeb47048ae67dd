"""The `.model` file: how a tokenizer is written to disk and read back (`Tokenizer.save`, `load`).

    vocablab tokenizer v1
    class RegexTokenizer
    name "shakespeare"
    pattern "'(?i:[sdmt]|ll|ve|re)|..."
    byte_ids identity                     (or the 256 ids of bytes 0..255, for GPT-2/GPT-4)
    special_tokens 1
    "<|endoftext|>" 4096
    decode_only 1                         (only when there are any: tokens no merge makes)
    50256 PHxlbmRvZnRleHR8Pg==            (id, then the token's bytes in base64)
    merges 3840
    101 32 256                            (left right new_id, in merge order)
    ...

Why this shape. It is UTF-8 text, one fact per line, so a person can read it and a truncated or
edited file fails on a line we can name. Strings are JSON-quoted, so special tokens and patterns
may hold spaces or any character (minbpe's format cannot). Merges carry their ids explicitly,
because extended and pretrained vocabularies are not numbered 256, 257, ... `load` also reads
minbpe's `minbpe v1` files.

Writes are atomic (tokenizer/atomic.py): a crash mid-save leaves the old file or the new one,
never half of one. `load` builds the tokenizer through the public `cls.from_merges`; the classes
it may build register themselves here (base.Tokenizer does it for every subclass), so this module
needs nothing from base.py.
"""
import base64
import binascii
import json
from pathlib import Path

import regex

from .atomic import atomic_writer, write_text_atomic
from .bpe import render_token

__all__ = ["save", "load", "vocab_text", "register_class", "TOKENIZER_CLASSES", "FORMAT_LINE",
           "MINBPE_LINE", "atomic_writer", "write_text_atomic"]

FORMAT_LINE = "vocablab tokenizer v1"  # first line of every .model file this code writes
MINBPE_LINE = "minbpe v1"             # minbpe's format, which load() also reads

TOKENIZER_CLASSES = {}  # class name in a .model file -> the class load() builds


def register_class(cls):
    """Let load() build `cls` from a file whose class line names it."""
    TOKENIZER_CLASSES[cls.__name__] = cls
    return cls


# ---- writing ---------------------------------------------------------------------------------

def save(tok, file_prefix):
    """Write file_prefix.model (for load) and file_prefix.vocab (for humans)."""
    prefix = Path(file_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    identity = tok.byte_ids == list(range(256))
    lines = [FORMAT_LINE,
             f"class {type(tok).__name__}",
             f"name {json.dumps(tok.name, ensure_ascii=False)}",
             f"pattern {json.dumps(tok.pattern, ensure_ascii=False)}",
             "byte_ids identity" if identity else "byte_ids " + " ".join(map(str, tok.byte_ids)),
             f"special_tokens {len(tok.special_tokens)}"]
    lines += [f"{json.dumps(n, ensure_ascii=False)} {i}" for n, i in tok.special_tokens.items()]
    if tok.decode_only:  # absent when empty, so files without such tokens read as before
        lines.append(f"decode_only {len(tok.decode_only)}")
        lines += [f"{i} {base64.b64encode(t).decode('ascii')}" for i, t in tok.decode_only.items()]
    lines.append(f"merges {len(tok.merges)}")
    lines += [f"{a} {b} {c}" for (a, b), c in tok.merges.items()]
    write_text_atomic(prefix.with_name(prefix.name + ".model"), "\n".join(lines) + "\n")
    write_text_atomic(prefix.with_name(prefix.name + ".vocab"), vocab_text(tok))


def vocab_text(tok):
    """One line per token, `[parent][parent] -> [token] id`, for reading, not for loading."""
    parents = {c: (a, b) for (a, b), c in tok.merges.items()}
    lines = []
    for idx in sorted(tok.vocab):
        shown = f"[{render_token(tok.vocab[idx])}] {idx}"
        if idx in parents:
            a, b = parents[idx]
            shown = f"[{render_token(tok.vocab[a])}][{render_token(tok.vocab[b])}] -> " + shown
        elif idx in tok.decode_only:
            shown += " (decode-only: no merge makes it)"
        lines.append(shown)
    lines += [f"special [{n}] {i}" for n, i in sorted(tok.special_tokens.items(), key=lambda x: x[1])]
    return "\n".join(lines) + "\n"


# ---- reading ---------------------------------------------------------------------------------

class _Lines:
    """Line reader that remembers line numbers, so every error can say where it happened."""

    def __init__(self, path, text):
        self.path, self.lines, self.n = path, text.split("\n"), 0
        if self.lines and self.lines[-1] == "":
            self.lines.pop()  # the final newline does not start a line

    def error(self, msg, lineno=None):
        return ValueError(f"{self.path}:{lineno or self.n}: {msg}")

    def next(self, what):
        if self.n >= len(self.lines):
            raise self.error(f"file ends early (truncated?): expected {what}", self.n + 1)
        self.n += 1
        return self.lines[self.n - 1].rstrip("\r")

    def keyword(self, key):
        line = self.next(f"'{key} ...'")
        head, _, rest = line.partition(" ")
        if head != key:
            raise self.error(f"expected '{key} ...', got {line[:60]!r}")
        return rest

    def ints(self, line, n, what):
        parts = line.split()
        if len(parts) != n or not all(p.isdigit() for p in parts):
            raise self.error(f"expected {what} ({n} non-negative integers), got {line[:60]!r}")
        return [int(p) for p in parts]

    def json_string(self, text):
        try:
            value, end = json.JSONDecoder().raw_decode(text)
        except json.JSONDecodeError as e:
            raise self.error(f"expected a JSON-quoted string: {e.msg}") from None
        if not isinstance(value, str):
            raise self.error(f"expected a JSON-quoted string, got {text[:60]!r}")
        return value, text[end:]

    def peek(self):
        return self.lines[self.n].rstrip("\r") if self.n < len(self.lines) else ""

    def done(self):
        for line in self.lines[self.n:]:
            self.n += 1
            if line.strip():
                raise self.error(f"unexpected content after the last merge: {line[:60]!r}")


def load(path):
    """Load a `.model` file written by save() (or by minbpe) and return the right class."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start}); "
                         f"is this a .model file?") from None
    r = _Lines(path, text)
    first = r.next("a header line")
    if first == MINBPE_LINE:
        return _load_minbpe(r)
    if first != FORMAT_LINE:
        if first.startswith("vocablab tokenizer "):
            raise r.error(f"unsupported format version {first!r}; this code reads {FORMAT_LINE!r}")
        raise r.error(f"not a tokenizer .model file: first line is {first[:60]!r}, "
                      f"expected {FORMAT_LINE!r} or {MINBPE_LINE!r}")
    # tokenizer/__init__.py imports every class, so all are registered by now
    cls_name = r.keyword("class")
    cls = TOKENIZER_CLASSES.get(cls_name)
    if cls is None:
        raise r.error(f"unknown tokenizer class {cls_name!r}; known: {sorted(TOKENIZER_CLASSES)}")
    name, rest = r.json_string(r.keyword("name"))
    pattern, rest2 = r.json_string(r.keyword("pattern"))
    if rest.strip() or rest2.strip():
        raise r.error("unexpected text after the quoted string")
    _check_pattern(r, pattern)
    byte_line = r.keyword("byte_ids")
    byte_ids = list(range(256)) if byte_line == "identity" else r.ints(byte_line, 256, "byte ids")
    if len(set(byte_ids)) != 256:
        raise r.error("byte_ids must be 256 distinct ids")
    specials, where = {}, {}
    for _ in range(r.ints(r.keyword("special_tokens"), 1, "a count")[0]):
        special, rest = r.json_string(r.next("a special token line"))
        _add_special(r, specials, where, special, r.ints(rest, 1, "the special token's id")[0])
    decode_only = {}
    if r.peek().startswith("decode_only "):
        for _ in range(r.ints(r.keyword("decode_only"), 1, "a count")[0]):
            line = r.next("a decode-only token line 'id base64'")
            idx, _, b64 = line.partition(" ")
            try:
                token = base64.b64decode(b64, validate=True)
            except binascii.Error:
                token = b""
            if not idx.isdigit() or not token:
                raise r.error(f"expected a decode-only token line 'id base64', got {line[:60]!r}")
            decode_only[int(idx)] = token
    merges = _read_merges(r, r.ints(r.keyword("merges"), 1, "a count")[0], byte_ids)
    return _build(r, cls, pattern, merges, byte_ids, specials, name, decode_only)


def _check_pattern(r, pattern):
    try:
        regex.compile(pattern)
    except regex.error as e:
        raise r.error(f"invalid split pattern {pattern[:60]!r}: {e}") from None


def _add_special(r, specials, where, name, idx):
    """A special token may be listed once: with two lines, which id is meant?"""
    if name in specials:
        raise r.error(f"special token {name!r} is listed twice (first on line {where[name]})")
    specials[name], where[name] = idx, r.n


def _read_merges(r, count, byte_ids, implicit_ids=False):
    """Read `count` merge lines; each id must already exist and new ids must increase."""
    known, merges, prev = set(byte_ids), {}, max(byte_ids)
    for k in range(count):
        line = r.next(f"merge {k + 1} of {count}")
        if implicit_ids:
            left, right = r.ints(line, 2, "a merge 'left right'")
            new = 256 + k
        else:
            left, right, new = r.ints(line, 3, "a merge 'left right new_id'")
        if left not in known or right not in known:
            raise r.error(f"merge uses id {left if left not in known else right}, "
                          f"which no earlier line defines")
        if new <= prev:
            raise r.error(f"merge id {new} must be greater than every earlier id (last {prev})")
        if (left, right) in merges:
            raise r.error(f"pair ({left}, {right}) is merged twice")
        merges[(left, right)] = new
        known.add(new)
        prev = new
    r.done()
    return merges


def _load_minbpe(r):
    """minbpe v1: pattern line, number of specials, 'name id' lines, then 'left right' merges
    whose new ids are implicit (256, 257, ...). Special names cannot contain spaces there."""
    pattern = r.next("the pattern line")
    _check_pattern(r, pattern)
    specials, where = {}, {}
    count_line = r.next("the number of special tokens")
    for _ in range(r.ints(count_line, 1, "the number of special tokens")[0]):
        line = r.next("a special token line 'name id'")
        name, _, idx = line.rpartition(" ")
        if not name or not idx.isdigit():
            raise r.error(f"expected a special token line 'name id', got {line[:60]!r}")
        _add_special(r, specials, where, name, int(idx))
    rest = r.lines[r.n:]
    while rest and not rest[-1].strip():
        rest.pop()
    merges = _read_merges(r, len(rest), list(range(256)), implicit_ids=True)
    cls = TOKENIZER_CLASSES["RegexTokenizer" if pattern else "BasicTokenizer"]
    return _build(r, cls, pattern, merges, list(range(256)), specials)


def _build(r, cls, pattern, merges, byte_ids, specials, name=None, decode_only=None):
    """The tokenizer the file describes; a special id that clashes is an error naming the file."""
    try:
        return cls.from_merges(merges, pattern=pattern, byte_ids=byte_ids, special_tokens=specials,
                               name=name, decode_only=decode_only)
    except ValueError as e:
        raise ValueError(f"{r.path}: {e}") from None
