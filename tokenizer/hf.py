"""Hugging Face `tokenizer.json` (byte-level BPE): the export, and the regex translations both ways.

    tok.save_hf("out/tokenizer.json")      # then: tokenizers.Tokenizer.from_file("out/tokenizer.json")

Why this layout: the `tokenizers` library can express exactly what vocablab does, in three steps.
1. A Split pre-tokenizer with our regex (behavior "Isolated": every match is its own chunk, and
   text between matches too), so merges never cross chunk boundaries, as in our encode.
2. A ByteLevel pre-tokenizer with use_regex=False (its own GPT-2 regex would split a second
   time) and add_prefix_space=False (we never add a space): it maps each byte to one printable
   character, GPT-2's bytes_to_unicode table, because HF vocabularies are strings, not bytes.
3. A BPE model whose vocab is those strings with our ids and whose merges are in our rank order.
   HF applies the lowest-rank merge present first, the same rule as our encode.
Special tokens become `added_tokens`, which HF matches before pre-tokenizing, and vocab entries.

HF compiles the pattern with Oniguruma in Ruby syntax, which reads three things differently
from the `regex` module, so `to_onig` rewrites them (tests/test_hf_export.py checks the result
encodes identically with GPT-2's and GPT-4's patterns):
- `X{1,3}+` is possessive in `regex` but means `(X{1,3})+` in Ruby: GPT-4's `\\p{N}{1,3}+` would
  glue any number of digits into one chunk. Written as the atomic group `(?>X{1,3})` instead.
- `$` is end of text (or before a final newline) in `regex` but end of *line* in Ruby: `\\Z`.
- `^` likewise: `\\A`.
`?+`, `*+`, `++`, `\\p{L}`, `\\s`, `(?i:...)` and lookaheads mean the same in both and pass through.
Reading a file back (formats.py) needs the opposite, `from_onig`: Ruby's `$`/`^` are line anchors
(`(?m:$)`), `\\Z` is `$`, `\\z` is `\\Z`, and `X{1,3}+` means `(?:X{1,3})+`.
Known gap: the two libraries may ship different Unicode versions, so a character assigned very
recently (e.g. U+0558, Unicode 16) can be a letter to one and unassigned to the other.
"""
import json
import re
from pathlib import Path

from .atomic import write_text_atomic

_INTERVAL = re.compile(r"\{\d+(,\d*)?\}")


def _atoms(pattern):
    """Cut a split pattern into atoms: an escape (`\\s`, `\\p{L}`), a whole `[...]` class, one
    character, or ("interval+", "{1,3}", offset) for a possessive interval such as `{1,3}+`.

    A small scanner, not a regex parser: it knows escapes, character classes and intervals,
    which is all the split patterns use; the callers refuse what they cannot rewrite faithfully.
    """
    atoms, i, cls = [], 0, None
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            j = i + 2
            if pattern[i + 1:i + 3] in ("p{", "P{"):
                j = pattern.index("}", i) + 1
            piece, i = pattern[i:j], j
        else:
            piece, i = c, i + 1
        if cls is not None:  # inside [...]: collect the whole class as one atom
            cls += piece
            if piece == "]" and cls not in ("[]", "[^]"):  # a leading ] is a literal
                atoms.append(cls)
                cls = None
            continue
        m = _INTERVAL.match(pattern, i - 1) if piece == "{" else None
        if piece == "[":
            cls = "["
        elif m and pattern[m.end():m.end() + 1] == "+":
            atoms.append(("interval+", m.group(0), i - 1))
            i = m.end() + 1
        else:
            atoms.append(piece)
    if cls is not None:
        raise ValueError(f"split pattern {pattern!r}: unterminated character class")
    return atoms


def to_onig(pattern):
    """Rewrite a `regex`-module pattern so Oniguruma (Ruby syntax) matches the same chunks."""
    out = []
    for atom in _atoms(pattern):
        if isinstance(atom, tuple):  # x{m,n}+ (possessive) -> an atomic group (?>x{m,n})
            _, interval, at = atom
            if not out or out[-1] in (")", "|", "("):
                raise ValueError(f"split pattern {pattern!r}: cannot rewrite the possessive interval "
                                 f"at offset {at} for Oniguruma (only after a single character, "
                                 "escape or class)")
            out[-1] = f"(?>{out[-1]}{interval})"
        elif atom == "$":
            out.append("\\Z")
        elif atom == "^":
            out.append("\\A")
        else:
            out.append(atom)
    return "".join(out)


def from_onig(pattern):
    """The `regex`-module pattern that matches what Oniguruma (Ruby syntax) matches for `pattern`:
    the inverse of to_onig, for split patterns read from a tokenizer.json."""
    out = []
    for atom in _atoms(pattern):
        if isinstance(atom, tuple):  # Ruby's x{m,n}+ repeats the interval: (?:x{m,n})+
            _, interval, at = atom
            if not out or out[-1] in (")", "|", "("):
                raise ValueError(f"split pattern {pattern!r}: cannot translate the repeated interval "
                                 f"at offset {at} (only after a single character, escape or class)")
            out[-1] = f"(?:{out[-1]}{interval})+"
        elif atom in ("\\h", "\\H", "\\R", "\\K", "\\G"):
            raise ValueError(f"split pattern {pattern!r}: Oniguruma's {atom} has no translation here")
        elif atom in ("$", "^"):
            out.append(f"(?m:{atom})")  # Ruby anchors are always line anchors
        elif atom == "\\Z":
            out.append("$")  # end of text or before a final newline, in both
        elif atom == "\\z":
            out.append("\\Z")
        else:
            out.append(atom)
    return "".join(out)


def bytes_to_unicode():
    """GPT-2's map from each byte to a printable character.

    Printable Latin-1 bytes map to themselves; the other 68 bytes (control codes, space, ...)
    map to the characters from U+0100 upward, in byte order. So space becomes "Ġ" and
    newline "Ċ", which is why those letters appear in every GPT-2-style vocab file.
    """
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def to_hf_dict(tok):
    """The tokenizer.json content as a dict (see the module docstring for the why)."""
    b2u = bytes_to_unicode()
    as_str = lambda bs: "".join(b2u[b] for b in bs)
    vocab, seen = {}, {}
    for idx, bs in sorted(tok.vocab.items()):
        s = as_str(bs)
        if s in seen:
            # A string vocab maps each token text to one id, so two ids with the same bytes
            # (BPE can build "abc" as a+bc and as ab+c) cannot be written faithfully.
            raise ValueError(f"ids {seen[s]} and {idx} both stand for bytes {bs!r}; a Hugging Face "
                             "vocab needs one id per byte string, so this tokenizer cannot be exported")
        seen[s] = idx
        vocab[s] = idx
    merges = [f"{as_str(tok.vocab[a])} {as_str(tok.vocab[b])}" for (a, b) in tok.merges]
    # Specials go in the model vocab too (as in GPT-2's own tokenizer.json): HF ignores an added
    # token's "id" when the vocab lacks it and numbers it after the vocab, so cl100k's
    # <|endoftext|> (100257, after a gap) would otherwise come back as 100256.
    for name, idx in tok.special_tokens.items():
        if vocab.setdefault(name, idx) != idx:
            raise ValueError(f"special token {name!r} ({idx}) reads as the ordinary token "
                             f"{vocab[name]} in a Hugging Face vocab; it cannot be exported")

    pre = [{"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]
    if tok.pattern:
        pre.insert(0, {"type": "Split", "pattern": {"Regex": to_onig(tok.pattern)},
                       "behavior": "Isolated", "invert": False})
    added = [{"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True}
             for s, i in sorted(tok.special_tokens.items(), key=lambda kv: kv[1])]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": pre},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": False, "vocab": vocab, "merges": merges},
    }


def save_hf(tok, path):
    """Write `tok` as a Hugging Face tokenizer.json at `path` (a file, or a folder to put it in).

    Returns the path written. The write is atomic: a crash leaves the old file or none.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "tokenizer.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(to_hf_dict(tok), ensure_ascii=False, indent=1))
    return path
