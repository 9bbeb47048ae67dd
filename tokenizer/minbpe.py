"""minbpe's public names, answered by vocablab: for code and tests written against minbpe.

    # minbpe.py beside your code (or sys.modules["minbpe"] = tokenizer.minbpe):
    from tokenizer.minbpe import *

Then `from minbpe import BasicTokenizer, RegexTokenizer, GPT4Tokenizer` gives vocablab's classes,
which keep minbpe's methods and attributes (train, encode, decode, save, the instance method
load, register_special_tokens, encode_ordinary, merges, vocab, pattern, compiled_pattern,
special_tokens, inverse_special_tokens; GPT4Tokenizer's byte_shuffle, inverse_byte_shuffle and
save_vocab) and minbpe's helper functions. Differences a minbpe user may notice: save writes
vocablab's `.model` format (load reads both), and GPT4Tokenizer can be saved and extended.
"""
from .base import Tokenizer
from .basic import BasicTokenizer
from .bpe import get_stats, merge, rank_bpe as bpe, render_token, replace_control_characters
from .formats import TIKTOKEN_KNOWN, recover_merges
from .pretrained import GPT4Tokenizer
from .regex import GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN, RegexTokenizer

GPT4_SPECIAL_TOKENS = dict(TIKTOKEN_KNOWN["cl100k_base"][1])  # minbpe's gpt4.py constant

__all__ = ["Tokenizer", "BasicTokenizer", "RegexTokenizer", "GPT4Tokenizer", "get_stats", "merge",
           "replace_control_characters", "render_token", "bpe", "recover_merges",
           "GPT2_SPLIT_PATTERN", "GPT4_SPLIT_PATTERN", "GPT4_SPECIAL_TOKENS"]
