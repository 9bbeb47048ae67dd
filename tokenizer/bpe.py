"""The primitives of byte-pair encoding, which everything else builds on: start reading here.

Why bytes. Text is first turned into UTF-8 bytes, so the 256 byte values are a base vocabulary
that can spell *anything*: no unknown-token symbol, any language, emoji, binary junk. The cost is
length (an emoji is 4 bytes), which is what byte-pair encoding (BPE) buys back.

Why merges. Training repeatedly finds the most frequent adjacent pair of tokens and gives it a
new id: (104 'h', 101 'e') -> 256 'he', then (256, 108 'l') -> 257 'hel', ... A tokenizer is
therefore nothing but an ordered list of merges; the vocabulary (id -> bytes) follows from it.

Why lowest rank first. To encode new text we must reproduce what training would have done to it.
Training applied merge 256 to everything before merge 257 existed, so encoding applies the
earliest-learned merge present, then the next, and so on. A merge's id is its rank: ids of
merges always increase in merge order (the `.model` reader checks it).

Everything else in tokenizer/ builds on these: reference.py (the readable trainer) learns
merges with `merge` and `merge_priority`, and trainer.py reproduces exactly its result; base.py
encodes with `apply_merges`; pretrained.py recovers merges with `rank_bpe`.
"""
import unicodedata


def get_stats(ids, counts=None):
    """{(left, right): how often the pair occurs in `ids`}, added to `counts` when given (minbpe's
    name: the count training takes its most frequent pair from)."""
    counts = {} if counts is None else counts
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def merge(ids, pair, new_id):
    """Replace every non-overlapping occurrence of `pair` in `ids`, scanning left to right.

    Left to right matters for runs: [a, a, a] with pair (a, a) becomes [aa, a], as in training.
    """
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def apply_merges(ids, merges):
    """BPE on one chunk: apply the earliest-learned merge present, until none applies.

    `merges` is {(left, right): new_id}; a smaller new_id was learned earlier, so it goes first.
    """
    while len(ids) >= 2:
        pair = min(zip(ids, ids[1:]), key=lambda p: merges.get(p, float("inf")))
        if pair not in merges:
            break  # no adjacent pair was ever merged in training
        ids = merge(ids, pair, merges[pair])
    return ids


def merge_priority(pair, count, vocab):
    """The training rule as a sort key: the pair with the greatest key is merged next.

    Most frequent first; ties go to the greatest pair compared as (bytes of left, bytes of
    right), which makes training independent of document order and of which ids tokens got.
    Only two different tokens with identical bytes (possible after extending a pretrained
    vocabulary) fall through to the ids: then the smaller (left, right) ids win.
    """
    return count, vocab[pair[0]], vocab[pair[1]], -pair[0], -pair[1]


def rank_bpe(ranks, data, max_rank):
    """tiktoken's algorithm on `data` using only tokens of rank < max_rank; returns the parts.

    tiktoken does not look merges up as pairs of ids: it merges the adjacent pair of parts whose
    *concatenated bytes* form the lowest-ranked token. This is used twice: to recover a
    pretrained vocabulary's merges (the two parts left just before a token's own rank are its
    parents) and to check that a trained vocabulary gives the same ids through tiktoken.
    """
    parts = [data[i:i + 1] for i in range(len(data))]
    while len(parts) > 1:
        best_rank, best_i = max_rank, -1
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1], max_rank)
            if r < best_rank:
                best_rank, best_i = r, i
        if best_i < 0:
            break
        parts[best_i:best_i + 2] = [parts[best_i] + parts[best_i + 1]]
    return parts


def fix_surrogates(text):
    """Lone surrogates (e.g. '\\ud800') cannot be UTF-8 encoded; replace them the way tiktoken does
    (a valid surrogate *pair* becomes its character, a lone one becomes U+FFFD)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def replace_control_characters(text: str) -> str:
    """Escape control characters (newline, tab, ...) so a token prints on one line."""
    return "".join(ch if unicodedata.category(ch)[0] != "C" else f"\\u{ord(ch):04x}" for ch in text)


def render_token(token: bytes) -> str:
    """Printable form of a token: UTF-8 with replacement, control characters escaped."""
    return replace_control_characters(token.decode("utf-8", errors="replace"))
