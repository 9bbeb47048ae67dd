"""Other projects' tokenizer files, read by content: `load(path)` takes whatever a learner brings.

    load("tok.model")                        ours, or minbpe's (model_file.py)
    load("encoder.json", "vocab.bpe")        GPT-2's own files (or a folder holding them)
    load("tokenizer.json")                   Hugging Face, byte-level BPE (GPT-2's, ours, Llama 3's)
    load("cl100k_base.tiktoken")             tiktoken's rank file (pattern= unless the name is known)
    load("tekken.json")                      Mistral's tekken
    from_vocab_merges(vocab, merges)         {id: bytes} and [(bytes, bytes)], as course assignments
                                             and Hugging Face hold them

All of them are the same idea in different clothes: a vocabulary (id -> bytes) and an order in
which pairs merge. GPT-2 and Hugging Face list the merges; tiktoken and tekken list only ranks,
from which the merges follow (tiktoken_state). Both become our merges {(left, right): new_id},
which needs one thing the formats do not promise: a merge's id grows with its rank, because our
encoder applies the smallest id first. Files that break it get an error saying so.

Tokens that no merge makes. GPT-2's encoder.json lists "<|endoftext|>" as an ordinary entry;
Hugging Face vocabularies may hold such entries too. GPT-2's and HF's encoders only produce a
token by a merge, so these ids are kept as `decode_only`: they decode, and encoding never
produces them (tiktoken, given GPT-2's files, drops <|endoftext|> from its ranks for the same
reason). Only a special token list turns one into a special token. Rank files are different:
tiktoken returns a chunk that is exactly a ranked token as that token, merge or not, so a
.tiktoken rank that is no merge is refused rather than silently encoded otherwise.

Whatever a format can express that vocablab cannot (a normalizer, byte fallback, dropout, a
prefix space), `load` refuses with an error naming it, rather than loading a tokenizer that
would quietly give other ids.
"""
import base64
import binascii
import json
from pathlib import Path

import regex
import tiktoken

from . import model_file
from .basic import BasicTokenizer
from .bpe import rank_bpe, render_token
from .hf import bytes_to_unicode, from_onig
from .patterns import EOT, GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN, SPLIT_PATTERNS
from .regex import RegexTokenizer
from .sentencepiece import SentencePieceTokenizer, is_sentencepiece_model

__all__ = ["load", "from_vocab_merges", "vocab_merges_state", "read_gpt2_files", "gpt2_files_state",
           "tekken_encoding", "tiktoken_state",
           "from_tiktoken", "recover_merges", "read_tiktoken_ranks", "TIKTOKEN_KNOWN", "UnsupportedFormat"]


class UnsupportedFormat(ValueError):
    """A file in a format we read, using a feature we cannot reproduce exactly."""


# .tiktoken files hold ranks only; these names (the file's stem) also give pattern and specials.
_CL100K_SPECIALS = {EOT: 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
                    "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276}
_O200K_PATTERN = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""", r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""", r"""\s*[\r\n]+""", r"""\s+(?!\S)""", r"""\s+"""])
TIKTOKEN_KNOWN = {
    "gpt2": (GPT2_SPLIT_PATTERN, {EOT: 50256}), "r50k_base": (GPT2_SPLIT_PATTERN, {EOT: 50256}),
    "p50k_base": (GPT2_SPLIT_PATTERN, {EOT: 50256}),
    "cl100k_base": (GPT4_SPLIT_PATTERN, _CL100K_SPECIALS),
    "o200k_base": (_O200K_PATTERN, {EOT: 199999, "<|endofprompt|>": 200018}),
}

# Mistral's tekken files of versions <= v7 may omit their special tokens; mistral-common then
# uses this list, and fills the rest of the special range with <SPECIAL_i>.
TEKKEN_DEFAULT_SPECIALS = [
    "<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]",
    "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[TOOL_CALLS]", "[IMG]", "<pad>", "[IMG_BREAK]",
    "[IMG_END]", "[PREFIX]", "[MIDDLE]", "[SUFFIX]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]",
    "[TOOL_CONTENT]"]


def _class_for(pattern):
    return RegexTokenizer if pattern else BasicTokenizer


# ---- a vocabulary and a merge list (GPT-2, Hugging Face, course assignments) ---------------

def vocab_merges_state(vocab, merges, special_tokens=None, pattern=GPT2_SPLIT_PATTERN, name=None,
                       where="vocabulary"):
    """The Tokenizer keyword arguments for `vocab` ({id: bytes}) and `merges` ([(bytes, bytes)]
    in rank order). `special_tokens`: names (an entry of `vocab` with the same bytes, that no
    merge makes, becomes that special; others are appended after the largest id), or {name: id}.
    `where` starts every error message (the file's name)."""
    ids = {}
    for idx, token in vocab.items():
        token = bytes(token)
        if token in ids:
            raise UnsupportedFormat(f"{where}: ids {ids[token]} and {idx} are both the token "
                                    f"{render_token(token)!r}; one id per byte string is needed")
        ids[token] = idx
    missing = [b for b in range(256) if bytes([b]) not in ids]
    if missing:
        raise UnsupportedFormat(
            f"{where}: no token for {len(missing)} of the 256 bytes (e.g. byte 0x{missing[0]:02x}); "
            f"byte-level BPE needs all of them (train a Hugging Face tokenizer with "
            f"initial_alphabet=pre_tokenizers.ByteLevel.alphabet())")
    byte_ids = [ids[bytes([b])] for b in range(256)]
    made, triples, prev = set(byte_ids), [], max(byte_ids)
    for k, (left, right) in enumerate(merges):
        left, right = bytes(left), bytes(right)
        shown = f"merge #{k} ({render_token(left)!r}, {render_token(right)!r})"
        new = ids.get(left + right)
        if new is None:
            raise UnsupportedFormat(f"{where}: {shown} makes a token that is not in the vocabulary")
        if ids.get(left) not in made or ids.get(right) not in made:
            raise UnsupportedFormat(f"{where}: {shown} uses a token that no byte or earlier merge makes")
        if new in made:
            raise UnsupportedFormat(f"{where}: {shown} makes id {new}, which an earlier merge or "
                                    f"byte already makes")
        if new <= prev:
            raise UnsupportedFormat(
                f"{where}: {shown} makes id {new}, below id {prev} of a byte or an earlier merge; "
                f"vocablab applies merges in id order, so it needs ids that grow with merge rank")
        triples.append((ids[left], ids[right], new))
        made.add(new)
        prev = new
    if isinstance(special_tokens, dict):
        specials = dict(special_tokens)
    else:
        specials, next_id = {}, max(vocab, default=-1) + 1
        for s in dict.fromkeys(special_tokens or ()):
            idx = ids.get(s.encode("utf-8"))
            if idx is not None and idx not in made:
                specials[s] = idx  # already in the vocabulary (as in GPT-2's encoder.json)
            else:
                specials[s], next_id = next_id, next_id + 1
    taken = set(specials.values())
    decode_only = {i: bytes(t) for i, t in vocab.items() if i not in made and i not in taken}
    return {"pattern": pattern, "merges": triples, "byte_ids": byte_ids, "special_tokens": specials,
            "decode_only": decode_only, "name": name}


def from_vocab_merges(vocab: dict[int, bytes], merges: list[tuple[bytes, bytes]],
                      special_tokens: list[str] | None = None, pattern=GPT2_SPLIT_PATTERN):
    """A tokenizer from a vocabulary {id: bytes} and merges [(bytes, bytes)] in rank order.

    Special tokens may already be in `vocab` (they keep their id) or are appended after its
    largest id. Entries no merge makes stay decodable but are never produced (`decode_only`).
    pattern="" gives a BasicTokenizer.
    """
    return _class_for(pattern).from_merges(**vocab_merges_state(vocab, merges, special_tokens,
                                                                pattern))


def _unicode_to_bytes(text, u2b, where):
    try:
        return bytes(u2b[c] for c in text)
    except KeyError as e:
        raise UnsupportedFormat(f"{where}: token {text!r} has the character {e.args[0]!r}, which is "
                                f"not in GPT-2's byte alphabet: not a byte-level BPE vocabulary") from None


def _merge_strings(lines, u2b, where):
    """Merges written as "left right" strings (or [left, right] lists) -> [(bytes, bytes)]."""
    out = []
    for k, line in enumerate(lines):
        parts = line.split(" ") if isinstance(line, str) else list(line)
        if len(parts) != 2 or not all(isinstance(p, str) and p for p in parts):
            raise UnsupportedFormat(f"{where}: merge #{k} {line!r} is not two tokens")
        out.append((_unicode_to_bytes(parts[0], u2b, where), _unicode_to_bytes(parts[1], u2b, where)))
    return out


def read_gpt2_files(encoder_json, vocab_bpe):
    """GPT-2's `encoder.json` and `vocab.bpe` -> (vocab {id: bytes}, merges [(bytes, bytes)]).

    Both write tokens as strings through GPT-2's byte alphabet (hf.bytes_to_unicode)."""
    u2b = {c: b for b, c in bytes_to_unicode().items()}
    encoder = _read_json(encoder_json)
    if not isinstance(encoder, dict) or not all(isinstance(v, int) for v in encoder.values()):
        raise UnsupportedFormat(f"{encoder_json}: expected a JSON object {{token: id}} (GPT-2's encoder.json)")
    vocab = {idx: _unicode_to_bytes(s, u2b, encoder_json) for s, idx in encoder.items()}
    lines = Path(vocab_bpe).read_text(encoding="utf-8").split("\n")
    lines = [ln.rstrip("\r") for ln in lines if ln.strip() and not ln.startswith("#version")]
    return vocab, _merge_strings(lines, u2b, vocab_bpe)


def gpt2_files_state(encoder_json, vocab_bpe, pattern=GPT2_SPLIT_PATTERN, special_tokens=None,
                     name=None):
    """The Tokenizer keyword arguments for GPT-2's two files (see vocab_merges_state)."""
    vocab, merges = read_gpt2_files(encoder_json, vocab_bpe)
    return vocab_merges_state(vocab, merges, special_tokens, pattern, name, where=str(encoder_json))


def _gpt2_files(encoder_json, vocab_bpe, pattern, special_tokens, name):
    state = gpt2_files_state(encoder_json, vocab_bpe, pattern, special_tokens, name)
    return _class_for(state["pattern"]).from_merges(**state)


# ---- ranks only (tiktoken, tekken) ---------------------------------------------------------

def tiktoken_state(encoding, name=None):
    """The Tokenizer keyword arguments that give exactly `encoding`'s ids (a tiktoken.Encoding).

    tiktoken ships no merges, only a rank per token (its bytes). The merges are implied:
    tiktoken builds a token by repeatedly joining the adjacent parts whose concatenation has the
    lowest rank, so the token of rank r is made, at the last step, from the two parts that remain
    when that procedure runs on its own bytes using only ranks below r (bpe.rank_bpe). Those two
    parts are its parents. A ranked token that is no such merge is refused: tiktoken returns a
    chunk that is exactly a ranked token as that token, which merges cannot reproduce.
    """
    ranks = {token: encoding.encode_single_token(token) for token in encoding.token_byte_values()}
    try:
        byte_ids = [ranks[bytes([b])] for b in range(256)]
    except KeyError as e:
        raise ValueError(f"encoding {encoding.name!r} has no token for byte {e.args[0]!r}") from None
    try:
        merges = recover_merges(ranks)
    except UnsupportedFormat as e:
        raise UnsupportedFormat(f"encoding {encoding.name!r}: {e}") from None
    specials = {s: encoding.encode_single_token(s) for s in sorted(encoding.special_tokens_set)}
    specials = dict(sorted(specials.items(), key=lambda kv: kv[1]))
    # every merge was recovered with tiktoken's own algorithm, so `encoding` is an exact fast
    # path by construction. tiktoken has no public accessor for the split pattern.
    return {"pattern": encoding._pat_str, "merges": merges, "byte_ids": byte_ids,
            "special_tokens": specials, "name": name or encoding.name,
            "tiktoken_encoding": encoding}


def recover_merges(mergeable_ranks):
    """{(left_rank, right_rank): rank} for every multi-byte token of {bytes: rank} (minbpe's
    name); see tiktoken_state for why the parents are the two parts rank_bpe leaves."""
    merges = {}
    for token, rank in sorted(mergeable_ranks.items(), key=lambda item: item[1]):
        if len(token) == 1:
            continue
        parts = rank_bpe(mergeable_ranks, token, rank)
        if len(parts) != 2:
            raise UnsupportedFormat(
                f"token {rank} {render_token(token)!r} is not the merge of two lower-ranked tokens "
                f"({len(parts)} parts); tiktoken still produces it for a chunk of exactly those "
                f"bytes, which merges cannot reproduce")
        merges[(mergeable_ranks[parts[0]], mergeable_ranks[parts[1]])] = rank
    return merges


def from_tiktoken(encoding, name=None):
    """A RegexTokenizer giving exactly `encoding`'s ids (a tiktoken.Encoding)."""
    return RegexTokenizer.from_merges(**tiktoken_state(encoding, name))


def read_tiktoken_ranks(path):
    """A `.tiktoken` file (base64 token, space, rank per line) -> {bytes: rank}."""
    ranks = {}
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            token, _, rank = line.strip().partition(b" ")
            try:
                ranks[base64.b64decode(token, validate=True)] = int(rank)
            except (binascii.Error, ValueError):
                raise ValueError(f"{path}:{lineno}: expected 'base64-token rank', got "
                                 f"{line[:60]!r}") from None
    return ranks


def _tiktoken_file(path, pattern, special_tokens):
    known = TIKTOKEN_KNOWN.get(path.stem)
    if pattern is None and known is None:
        raise UnsupportedFormat(
            f"{path}: a .tiktoken file holds no split pattern; pass pattern= (a regex, or one of "
            f"{', '.join(n for n in SPLIT_PATTERNS if n != 'none')}), or name the file after a "
            f"known encoding ({', '.join(TIKTOKEN_KNOWN)})")
    pattern = SPLIT_PATTERNS.get(pattern, pattern) if pattern is not None else known[0]
    specials = special_tokens if special_tokens is not None else (known[1] if known else {})
    ranks = read_tiktoken_ranks(path)
    if not isinstance(specials, dict):
        specials = {s: max(ranks.values()) + 1 + i for i, s in enumerate(specials)}
    enc = tiktoken.Encoding(name=path.stem, pat_str=pattern or r"[\s\S]+", mergeable_ranks=ranks,
                            special_tokens=specials)
    state = tiktoken_state(enc, path.stem)
    state["pattern"] = pattern
    return _class_for(pattern).from_merges(**state)


def tekken_encoding(path):
    """The tiktoken.Encoding that mistral-common builds for a tekken JSON file: the first
    `default_num_special_tokens` ids are special, the ranks follow them."""
    data, where = _read_json(path), path
    config = data["config"]
    n_special, size = config["default_num_special_tokens"], config["default_vocab_size"]
    listed = data.get("special_tokens")
    if listed is None:
        if config.get("version") not in ("v1", "v2", "v3", "v4", "v5", "v6", "v7"):
            raise UnsupportedFormat(f"{where}: version {config.get('version')} lists no special tokens")
        names = list(TEKKEN_DEFAULT_SPECIALS)
    else:
        names = [t["token_str"] for t in sorted(listed, key=lambda t: t["rank"])]
    names += [f"<SPECIAL_{i}>" for i in range(len(names), n_special)]
    ranks = {}
    for entry in data["vocab"][:size - n_special]:
        ranks[base64.b64decode(entry["token_bytes"])] = entry["rank"] + n_special
    return tiktoken.Encoding(name=Path(str(where)).stem, pat_str=config["pattern"],
                             mergeable_ranks=ranks, special_tokens={n: i for i, n in enumerate(names)})


# ---- Hugging Face tokenizer.json ---------------------------------------------------------

def _hf_pattern(pre, where):
    """The split pattern a tokenizer.json's pre-tokenizer amounts to; refuses what we cannot do."""
    steps = pre.get("pretokenizers", []) if pre and pre.get("type") == "Sequence" else [pre] if pre else []
    pattern, byte_level = None, None
    for step in steps:
        kind = step.get("type")
        if kind == "Split" and byte_level is None and pattern is None:
            if step.get("behavior") != "Isolated" or step.get("invert"):
                raise UnsupportedFormat(f"{where}: Split pre-tokenizer with behavior "
                                        f"{step.get('behavior')!r}, invert {step.get('invert')}: "
                                        f"only 'Isolated' without invert is supported")
            spec = step.get("pattern", {})
            pattern = from_onig(spec["Regex"]) if "Regex" in spec else regex.escape(spec.get("String", ""))
        elif kind == "ByteLevel" and byte_level is None:
            byte_level = step
            if step.get("add_prefix_space"):
                raise UnsupportedFormat(f"{where}: ByteLevel add_prefix_space=true is not supported "
                                        f"(vocablab never adds a space)")
            if step.get("use_regex", True):
                if pattern is not None:
                    raise UnsupportedFormat(f"{where}: a Split followed by ByteLevel use_regex=true "
                                            f"(two split patterns) is not supported")
                pattern = GPT2_SPLIT_PATTERN  # HF's ByteLevel regex: GPT-2's, the same chunks
        else:
            raise UnsupportedFormat(f"{where}: pre-tokenizer {kind!r} is not supported here "
                                    f"(supported: Split with a regex, then ByteLevel)")
    if byte_level is None:
        raise UnsupportedFormat(f"{where}: no ByteLevel pre-tokenizer, so not a byte-level BPE "
                                f"(SentencePiece-style files are not read here)")
    return pattern or ""


def _hf(data, path):
    where = str(path)
    model = data.get("model") or {}
    if model.get("type") != "BPE":
        raise UnsupportedFormat(f"{where}: model type {model.get('type')!r}; only BPE is supported")
    for key, fine in (("dropout", (None,)), ("unk_token", (None,)), ("byte_fallback", (False, None)),
                      ("continuing_subword_prefix", (None, "")), ("end_of_word_suffix", (None, ""))):
        if model.get(key) not in fine:
            raise UnsupportedFormat(f"{where}: BPE {key}={model.get(key)!r} is not supported")
    if data.get("normalizer") is not None:
        raise UnsupportedFormat(f"{where}: normalizer {data['normalizer'].get('type')!r} is not "
                                f"supported (vocablab encodes the text as given)")
    decoder = data.get("decoder")
    if decoder is not None and decoder.get("type") != "ByteLevel":
        raise UnsupportedFormat(f"{where}: decoder {decoder.get('type')!r}; only ByteLevel is supported")
    pattern = _hf_pattern(data.get("pre_tokenizer"), where)
    specials = {}
    for t in data.get("added_tokens") or []:
        if t.get("single_word") or t.get("lstrip") or t.get("rstrip"):
            raise UnsupportedFormat(f"{where}: added token {t['content']!r} uses single_word/lstrip/"
                                    f"rstrip, which is not supported")
        specials[t["content"]] = t["id"]  # HF cuts every added token out of the text first
    u2b = {c: b for b, c in bytes_to_unicode().items()}
    added_ids = set(specials.values())
    vocab = {i: _unicode_to_bytes(s, u2b, where) for s, i in model["vocab"].items() if i not in added_ids}
    merges = _merge_strings(model.get("merges", []), u2b, where)
    state = vocab_merges_state(vocab, merges, specials, pattern, path.parent.name or path.stem, where)
    tok = _class_for(pattern).from_merges(**state)
    if model.get("ignore_merges"):
        # HF then takes a chunk that is a whole vocabulary entry as that entry, merges or not;
        # our merges give the same ids only when every entry is built by its own merges.
        if tok.decode_only:
            raise UnsupportedFormat(f"{where}: ignore_merges=true with {len(tok.decode_only)} "
                                    f"vocabulary entries that no merge makes is not supported")
        try:
            tok.check_tiktoken_exact()
        except ValueError as e:
            raise UnsupportedFormat(f"{where}: ignore_merges=true, and {e}") from None
    return tok


# ---- one entry point -----------------------------------------------------------------------

def _read_json(path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None


def _load_dir(folder, pattern, special_tokens):
    files = {p.name: p for p in folder.iterdir() if p.is_file()}
    for enc, bpe in (("encoder.json", "vocab.bpe"), ("vocab.json", "merges.txt")):
        if enc in files and bpe in files:
            return _gpt2_files(files[enc], files[bpe], pattern if pattern is not None else GPT2_SPLIT_PATTERN,
                               special_tokens, folder.name)
    singles = [n for n in files if n == "tokenizer.json" or n.startswith("tekken") and n.endswith(".json")]
    singles += sorted(n for n in files if n.endswith((".tiktoken", ".model")))
    if len(singles) == 1:
        return load(files[singles[0]], pattern=pattern, special_tokens=special_tokens)
    raise ValueError(f"{folder}: expected a folder holding encoder.json + vocab.bpe, vocab.json + "
                     f"merges.txt, tokenizer.json, tekken*.json or one .tiktoken/.model file; "
                     + (f"found several: {', '.join(singles)}" if singles else "found none of them"))


def load(path, merges_file=None, *, pattern=None, special_tokens=None):
    """Load a tokenizer from `path`, whatever its format (see the module docstring).

    merges_file: GPT-2's vocab.bpe when `path` is its encoder.json (either order works).
    pattern: the split pattern (a regex or a name in SPLIT_PATTERNS) for formats that hold none:
    .tiktoken files and GPT-2's files (default GPT-2's). special_tokens: names (or {name: id})
    for those formats; GPT-2's "<|endoftext|>" becomes special only when named here.
    """
    path = Path(path)
    if merges_file is not None:
        first, second = path, Path(merges_file)
        if not first.read_bytes()[:64].lstrip().startswith(b"{"):
            first, second = second, first
        return _gpt2_files(first, second, pattern if pattern is not None else GPT2_SPLIT_PATTERN,
                           special_tokens, first.parent.name or first.stem)
    if path.is_dir():
        return _load_dir(path, pattern, special_tokens)
    with open(path, "rb") as f:
        head = f.read(256)
    if is_sentencepiece_model(head):  # a binary protobuf; every other format here is text
        return SentencePieceTokenizer.load(path)
    if head.lstrip().startswith(b"{"):
        data = _read_json(path)
        if isinstance(data, dict) and isinstance(data.get("model"), dict):
            return _hf(data, path)
        if isinstance(data, dict) and isinstance(data.get("vocab"), list) and "config" in data:
            return RegexTokenizer.from_merges(**tiktoken_state(tekken_encoding(path), path.stem))
        if isinstance(data, dict) and all(isinstance(v, int) for v in list(data.values())[:100]):
            raise ValueError(f"{path}: looks like GPT-2's encoder.json; pass its merges too: "
                             f"load('{path}', 'vocab.bpe'), or the folder holding both")
        raise ValueError(f"{path}: JSON, but neither a Hugging Face tokenizer.json nor a tekken "
                         f"file nor GPT-2's encoder.json")
    if head.startswith(b"#version"):
        raise ValueError(f"{path}: looks like GPT-2's vocab.bpe; pass its vocabulary too: "
                         f"load('encoder.json', '{path}'), or the folder holding both")
    if regex.match(rb"[A-Za-z0-9+/=]+ \d+\r?\n", head):
        return _tiktoken_file(path, pattern, special_tokens)
    try:
        return model_file.load(path)
    except ValueError as e:
        if head.startswith((b"vocablab tokenizer", b"minbpe v1")):
            raise  # a .model file with a problem: the reader's error names the line
        raise ValueError(f"{e}; nor is it GPT-2's encoder.json or vocab.bpe, a tokenizer.json, "
                         f"a .tiktoken or a tekken file") from None
