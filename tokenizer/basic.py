"""BasicTokenizer: byte-level BPE with no split pattern, the simplest tokenizer that works.

Each document is one chunk, so merges can run across spaces and punctuation: on English it
learns tokens like "e t" or "d, th". That wastes vocabulary on accidents of word order, which is
why RegexTokenizer (regex.py, next) cuts text into chunks first.

    tok = BasicTokenizer()
    tok.train("aaabdaaabac", 256 + 3)     # merges: (a,a) -> 256, (256,a) -> 257, (257,b) -> 258
    tok.encode("aaabdaaabac")             # [258, 100, 258, 97, 99]
"""
from .base import Tokenizer


class BasicTokenizer(Tokenizer):
    """Byte-level BPE over whole documents (pattern ""). All machinery lives in base.Tokenizer."""

    def __init__(self):
        super().__init__(pattern="")
