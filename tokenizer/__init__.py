"""vocablab's tokenizer stage: byte-level BPE, readable top to bottom.

Read in this order; each file imports only files before it:
  bpe.py          the primitives: bytes, merges, encoding a chunk, the tie rule
  patterns.py     split patterns (why chunks) and the EOT separator
  specials.py     special tokens: cut before anything else, refused unless allowed
  reference.py    the readable trainer: the specification and the test oracle
  trainer.py      the fast trainer, with exactly the reference's merges
  fastpath.py     when tiktoken's Rust encoder gives exactly our ids
  atomic.py, downloads.py            atomic writes; pinned pretrained files from the package index
  protobuf.py, sentencepiece_trainer.py, sentencepiece.py    the other family, SentencePiece
                  BPE (Llama 2 / Mistral): code points first, bytes only as fallback, scores
                  instead of merge ranks; its trainer first, as for byte-level BPE
  model_file.py, hf.py               files: the .model format, tokenizer.json
  base.py         the Tokenizer class that ties these together (train, encode, decode, save)
  basic.py, regex.py                 the two kinds: no split pattern, a split pattern
  formats.py      load(path): every tokenizer format, recognised by content; from_vocab_merges
  pretrained.py   GPT-4, GPT-2 and tekken on any machine; load_any(spec) for any path or name
  sample_texts.py short texts of many kinds (prose, code, numbers, scripts, emoji)
  minbpe.py       minbpe's names, so code written for minbpe runs on vocablab
  cli.py          every command's options: --vocab-size and --vocab_size both work
  viz.py, report.py, playground.py   tools to look at tokens
"""
from .base import Tokenizer
from .basic import BasicTokenizer
from .formats import from_vocab_merges, load
from .patterns import EOT, GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN, SPLIT_PATTERNS
from .pretrained import (PRETRAINED, GPT2Tokenizer, GPT4Tokenizer, TekkenTokenizer, TokenizerLoadError,
                         from_tiktoken, load_any)
from .regex import RegexTokenizer
from .sentencepiece import SentencePieceTokenizer

__all__ = ["Tokenizer", "BasicTokenizer", "RegexTokenizer", "GPT4Tokenizer", "GPT2Tokenizer",
           "TekkenTokenizer", "from_tiktoken", "from_vocab_merges", "load", "load_any", "PRETRAINED",
           "TokenizerLoadError", "GPT2_SPLIT_PATTERN", "GPT4_SPLIT_PATTERN", "SPLIT_PATTERNS", "EOT",
           "SentencePieceTokenizer"]
