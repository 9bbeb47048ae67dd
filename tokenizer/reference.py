"""The slow, readable BPE trainer: the specification and the test oracle for trainer.py.

This is minbpe's loop, applied to *unique chunks with counts* rather than to the raw text: a
chunk that occurs 10,000 times contributes its pairs 10,000 times, but is stored and merged once.
Every step recounts all pairs from scratch, so the cost is O(merges x total chunk length) --
fine for tests and small corpora, hopeless for a 32k vocabulary (use trainer.train_bpe for that).

The merge rule, exactly (bpe.merge_priority): merge the most frequent adjacent pair; ties go to
the greatest pair compared as (bytes of left token, bytes of right token). Comparing bytes (not
ids) makes the result independent of document order and of which ids tokens happen to get.
"""
from collections import Counter

# the one merge step and the one encoder, shared with encoding: training and encoding must agree
from .bpe import apply_merges, merge, merge_priority


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

    merges = _merges_dict(base_merges)
    words, counts = [], []
    for chunk, count in chunk_counts.items():
        if count <= 0:
            continue
        ids = [byte_id[b] for b in chunk]
        if merges:
            ids = apply_merges(ids, merges)
        words.append(ids)
        counts.append(count)
    return vocab, words, counts, next_id


def _merges_dict(base_merges):
    """Accept merges as {(l, r): new} (in rank order) or as a sequence of (l, r, new)."""
    if not base_merges:
        return {}
    triples = ([(l, r, new) for (l, r), new in base_merges.items()]
               if isinstance(base_merges, dict) else [tuple(m) for m in base_merges])
    # apply_merges ranks a merge by its id, so ids must grow in merge order (they do in any
    # tokenizer: the .model reader checks it)
    if any(a[2] >= b[2] for a, b in zip(triples, triples[1:])):
        raise ValueError("base_merges: new ids must increase in merge order")
    return {(l, r): new for l, r, new in triples}


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
        pair = max(stats, key=lambda p: merge_priority(p, stats[p], vocab))
        words = [merge(ids, pair, new_id) for ids in words]
        vocab[new_id] = vocab[pair[0]] + vocab[pair[1]]
        merges.append((pair[0], pair[1], new_id))
        new_id += 1
    return merges
