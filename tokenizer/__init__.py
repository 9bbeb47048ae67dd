"""vocablab's tokenizer stage: byte-level BPE, readable top to bottom.

Read in this order: base.py (bytes, merges, encode/decode), basic.py (no split pattern),
regex.py (split patterns), reference.py (the readable trainer), trainer.py (the fast one),
model_file.py (save and load), pretrained.py (GPT-4/GPT-2 vocabularies recovered from
tiktoken), viz.py (see the tokens).
"""
from .base import Tokenizer
from .basic import BasicTokenizer
from .model_file import load
from .pretrained import GPT2Tokenizer, GPT4Tokenizer, from_tiktoken
from .regex import EOT, GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN, SPLIT_PATTERNS, RegexTokenizer

__all__ = ["Tokenizer", "BasicTokenizer", "RegexTokenizer", "GPT4Tokenizer", "GPT2Tokenizer",
           "from_tiktoken", "load", "GPT2_SPLIT_PATTERN", "GPT4_SPLIT_PATTERN",
           "SPLIT_PATTERNS", "EOT"]
