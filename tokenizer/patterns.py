"""Split patterns: the regexes that cut text into chunks before BPE, and the document separator.

The split pattern is where a tokenizer's designers put their knowledge of text: letters stay with
letters, a leading space joins the word after it (" dog"), digits group in at most 3 (GPT-4) so
numbers tokenize consistently, punctuation and whitespace runs are kept apart. Merges never
cross a chunk boundary, so the vocabulary is spent on words rather than on word pairs:
"dog." and "dog!" share the token "dog" instead of learning "dog." and "dog!" separately.
"""

# GPT-2 (r50k): contractions, optional space + letters / digits / other, whitespace runs.
GPT2_SPLIT_PATTERN = (
    r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s""")
# GPT-4 (cl100k): case-insensitive contractions, digits in groups of 1-3, newlines kept apart.
# These are tiktoken's own strings (possessive quantifiers; the `regex` module reads them too),
# so a tokenizer exported with to_tiktoken() splits text exactly as it does here.
GPT4_SPLIT_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s""")
# The names users may give instead of a regex (train_tokenizer.py --pattern, the studies' configs);
# "none" means no split at all: each document is one chunk (BasicTokenizer).
SPLIT_PATTERNS = {"gpt4": GPT4_SPLIT_PATTERN, "gpt2": GPT2_SPLIT_PATTERN, "none": ""}

# The document separator every stage agrees on: data.prepare writes it before each document,
# the studies register it, the trainer samples from it.
EOT = "<|endoftext|>"
