"""The tiktoken fast path: our merges, run by tiktoken's Rust encoder, with exactly our ids.

Encoding with the readable merge loop (bpe.apply_merges) is the reference; tiktoken does the same
work ~100x faster, but by a different algorithm (see check_exact). This module proves, per
vocabulary, that the two agree, and builds the tiktoken Encoding and the `.tiktoken` rank file.
"""
import base64

import tiktoken

from .bpe import rank_bpe, render_token


def check_exact(vocab, merges, byte_ids, start=0):
    """Raise ValueError unless tiktoken, given our ranks, returns exactly our ids on every text.

    tiktoken merges the adjacent parts whose *concatenated bytes* are the lowest-ranked
    token; our reference merges *pairs of ids*. These differ when a token's bytes can be
    assembled from a pair that is not its merge. Example: merges (b,c) < (a,b) < (ab,c):
    on "abc" we stop at [a, bc], tiktoken goes on to "abc". The test, per merge (l, r) -> t:
    run tiktoken's algorithm on bytes(t) with the tokens ranked below t; it must end at
    exactly [bytes(l), bytes(r)].
    Why that suffices: when tiktoken forms a token t inside any text, the parts inside t's
    span evolved exactly as they do on bytes(t) alone (a merge across the span's edge was
    never the lowest, or t would not exist), so the two parts it joined are t's parents.
    Every merge tiktoken makes is then one of ours, and as a merge always ranks above its
    parents, both algorithms apply merges in the same (rank) order, left to right.
    Also required: no two ids share bytes, and merge ids increase in merge order.
    Trained vocabularies essentially always pass; pretrained ones pass by construction.
    Merges before index `start` are taken as already checked. `vocab` holds only tokens that
    merges make (and the bytes): a decode-only token must not be given to tiktoken at all,
    because tiktoken returns any chunk that is exactly a ranked token as that token.
    """
    ranks = {}
    for idx in sorted(vocab):
        token = vocab[idx]
        if token in ranks:
            raise ValueError(f"ids {ranks[token]} and {idx} have the same bytes "
                             f"{render_token(token)!r}; tiktoken needs one id per byte string")
        ranks[token] = idx
    prev = max(byte_ids)
    for k, ((left, right), new) in enumerate(merges.items()):
        if new <= prev:
            raise ValueError(f"merge #{k} has id {new} <= an earlier id {prev}; tiktoken "
                             f"ranks tokens by id, so merge ids must increase")
        prev = new
        if k < start:
            continue
        parts = rank_bpe(ranks, vocab[new], new)
        if parts != [vocab[left], vocab[right]]:
            shown = " + ".join(repr(render_token(p)) for p in parts)
            raise ValueError(
                f"merge #{k} ({left}, {right}) -> {new} {render_token(vocab[new])!r}: "
                f"tiktoken's rank order assembles it as {shown}, not from its own parents, "
                f"so tiktoken's ids would differ; use the pure-Python encoder")


def build_encoding(name, pattern, vocab, special_tokens):
    """A tiktoken.Encoding ranking each token by its id (call check_exact first)."""
    return tiktoken.Encoding(
        name=name,
        # tiktoken needs *some* pattern; without one, the whole text is one piece
        pat_str=pattern or r"[\s\S]+",
        mergeable_ranks={token: idx for idx, token in vocab.items()},
        special_tokens=dict(special_tokens))


def tiktoken_file_text(vocab):
    """The standard `.tiktoken` rank file: base64 token, space, rank, one per line."""
    return "".join(f"{base64.b64encode(vocab[i]).decode('ascii')} {i}\n" for i in sorted(vocab))
