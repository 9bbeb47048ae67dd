"""RegexTokenizer: cut text into chunks with a split pattern (patterns.py says why), then run
byte-level BPE inside each chunk, so no merge crosses a chunk boundary."""
from .base import Tokenizer
from .patterns import EOT, GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN, SPLIT_PATTERNS

__all__ = ["RegexTokenizer", "EOT", "GPT2_SPLIT_PATTERN", "GPT4_SPLIT_PATTERN", "SPLIT_PATTERNS"]


class RegexTokenizer(Tokenizer):
    """Byte-level BPE inside regex chunks; GPT-4's split pattern by default.

    Keyword arguments (merges, byte_ids, special_tokens, name, tiktoken_encoding) go to Tokenizer.
    """

    def __init__(self, pattern=GPT4_SPLIT_PATTERN, **state):
        super().__init__(GPT4_SPLIT_PATTERN if pattern is None else pattern, **state)  # None: minbpe's default
