"""The slow, readable BPE trainer: the specification and the test oracle for trainer.py.

This is minbpe's loop, applied to *unique chunks with counts* rather than to the raw text: a
chunk that occurs 10,000 times contributes its pairs 10,000 times, but is stored and merged once.
Every step recounts all pairs from scratch, so the cost is O(merges x total chunk length) --
fine for tests and small corpora, hopeless for a 32k vocabulary (use trainer.train_bpe for that).

The merge rule, exactly: merge the most frequent adjacent pair; ties go to the greatest pair
compared as (bytes of left token, bytes of right token). Comparing bytes (not ids) makes the
result independent of document order and of which ids tokens happen to get. Only when two
different tokens have identical bytes (possible after extending a pretrained vocabulary) do the
ids themselves break the tie: the smaller (left, right) id pair wins.
"""
from collections import Counter

from .base import merge  # the one merge step, shared with encoding: training and encoding must agree


def prepare_chunks(chunk_counts, base_vocab=None, base_merges=None, next_id=None):
    """Turn {chunk_bytes: count} into token-id lists, ready for merging.

    Without a base vocabulary every byte is its own token (ids 0..255). With one, the byte tokens
    are looked up in `base_vocab` (a pretrained vocabulary may order bytes differently) and each
    chunk is first encoded with `base_merges`, lowest rank first -- exactly as the old tokenizer
    would encode it -- so that training *continues* BPE rather than restarting it.
    Returns (vocab {id: bytes}, words [list[int]], counts [int], next_id).
    """
    if base_vocab is None:
        if base_merges:
            raise ValueError("base_merges given without base_vocab: pass the vocabulary they build")
        vocab = {i: bytes([i]) for i in range(256)}
    else:
        vocab = dict(base_vocab)
    byte_id = {bs[0]: i for i, bs in sorted(vocab.items()) if len(bs) == 1}
    missing = [b for b in range(256) if b not in byte_id]
    if missing:
        raise ValueError(f"base_vocab lacks single-byte tokens for {len(missing)} byte values "
                         f"(first: {missing[0]}); every byte needs a token")
    if next_id is None:
        next_id = max(vocab) + 1
    elif next_id <= max(vocab):
        raise ValueError(f"next_id={next_id} would reuse an id of base_vocab (max {max(vocab)})")

    ranks = {}  # (left, right) -> (rank, new_id); rank == position in merge order
    for rank, (left, right, new) in enumerate(_merge_triples(base_merges)):
        ranks[(left, right)] = (rank, new)
    words, counts = [], []
    for chunk, count in chunk_counts.items():
        if count <= 0:
            continue
        ids = [byte_id[b] for b in chunk]
        if ranks:
            ids = encode_with_merges(ids, ranks)
        words.append(ids)
        counts.append(count)
    return vocab, words, counts, next_id


def _merge_triples(base_merges):
    """Accept merges as {(l, r): new} (in rank order) or as a sequence of (l, r, new)."""
    if not base_merges:
        return []
    if isinstance(base_merges, dict):
        return [(l, r, new) for (l, r), new in base_merges.items()]
    return [tuple(m) for m in base_merges]


def encode_with_merges(ids, ranks):
    """Apply learned merges to one chunk, lowest rank first (the order they were learned)."""
    while len(ids) >= 2:
        best = min(zip(ids, ids[1:]), key=lambda p: ranks.get(p, (float("inf"),))[0])
        if best not in ranks:
            break
        ids = merge(ids, best, ranks[best][1])
    return ids


def reference_train_bpe(chunk_counts, num_merges, *, base_vocab=None, base_merges=None,
                        next_id=None):
    """Learn up to `num_merges` merges; returns [(left, right, new_id), ...] in merge order.

    Stops early (returns fewer merges) when no adjacent pair is left to merge.
    """
    if num_merges < 0:
        raise ValueError(f"num_merges must be >= 0, got {num_merges}")
    vocab, words, counts, new_id = prepare_chunks(chunk_counts, base_vocab, base_merges, next_id)
    merges = []
    for _ in range(num_merges):
        stats = Counter()
        for ids, count in zip(words, counts):
            for pair in zip(ids, ids[1:]):
                stats[pair] += count
        if not stats:
            break
        pair = max(stats, key=lambda p: (stats[p], vocab[p[0]], vocab[p[1]], -p[0], -p[1]))
        words = [merge(ids, pair, new_id) for ids in words]
        vocab[new_id] = vocab[pair[0]] + vocab[pair[1]]
        merges.append((pair[0], pair[1], new_id))
        new_id += 1
    return merges
