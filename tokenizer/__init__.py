"""vocablab's tokenizer stage: byte-level BPE, readable top to bottom.

Read in this order; each file imports only files before it:
  bpe.py          the primitives: bytes, merges, encoding a chunk, the tie rule
  patterns.py     split patterns (why chunks) and the EOT separator
  specials.py     special tokens: cut before anything else, refused unless allowed
  reference.py    the readable trainer: the specification and the test oracle
  trainer.py      the fast trainer, with exactly the reference's merges
  fastpath.py     when tiktoken's Rust encoder gives exactly our ids
  atomic.py       writes that never leave half a file
  protobuf.py, sentencepiece_trainer.py, sentencepiece.py    the other family, SentencePiece
                  BPE (Llama 2 / Mistral): code points first, bytes only as fallback, scores
                  instead of merge ranks; its trainer first, as for byte-level BPE
  model_file.py, hf.py    files: the .model format (ours, minbpe's, SentencePiece's), tokenizer.json
  base.py         the Tokenizer class that ties these together (train, encode, decode, save)
  basic.py, regex.py                 the two kinds: no split pattern, a split pattern
  pretrained.py   GPT-4/GPT-2 recovered from tiktoken; load_any(spec) for any path or name
  sample_texts.py short texts of many kinds (prose, code, numbers, scripts, emoji)
  viz.py, report.py, playground.py   tools to look at tokens
"""
from .base import Tokenizer
from .basic import BasicTokenizer
from .model_file import load
from .patterns import EOT, GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN, SPLIT_PATTERNS
from .pretrained import (PRETRAINED, GPT2Tokenizer, GPT4Tokenizer, TokenizerLoadError, from_tiktoken,
                         load_any)
from .regex import RegexTokenizer
from .sentencepiece import SentencePieceTokenizer

__all__ = ["Tokenizer", "BasicTokenizer", "RegexTokenizer", "GPT4Tokenizer", "GPT2Tokenizer",
           "from_tiktoken", "load", "load_any", "PRETRAINED", "TokenizerLoadError", "GPT2_SPLIT_PATTERN",
           "GPT4_SPLIT_PATTERN", "SPLIT_PATTERNS", "EOT", "SentencePieceTokenizer"]
