"""Learning a SentencePiece BPE vocabulary: greedy most-frequent-pair merges over code points.

Read before sentencepiece.py, which turns what this learns into a model: the class there builds
the training sentences (each line with its spaces as `▁` and the dummy prefix, cut at
user-defined symbols) and lays out the vocabulary as spm_train does; this module only counts
and merges, so it needs nothing from the class.

How it differs from trainer.py (byte-level BPE): the symbols start as *characters*, not bytes;
only the characters covering `character_coverage` of the text become pieces (the rest are
spelled in byte pieces or `<unk>` when encoding); words are cut at `▁`, not by a regex, and the
`▁` stays in front of the word (`▁the`); a merge is recorded as the merged piece (its score is
minus its merge order), not as a pair of ids.

Speed rests on trainer.py's two ideas: count unique words (in worker processes), then never
recount (per-merge pair-count updates, a lazy heap). The merge step itself is different: words
cut only at spaces are many and long (on 20 MB of Python source, 292k unique words of 17
characters on average, against ~90k short GPT-4 chunks), so instead of a Python loop per
occurrence, each merge updates all its occurrences at once in numpy arrays (see bpe_merges);
only a merge with few occurrences, where numpy's cost per call outweighs the work, walks
them one by one.
"""
import functools
import gc
import heapq
import itertools
import re
import struct
from collections import Counter

import numpy as np
from tqdm import tqdm

from .trainer import in_workers

SPACE = "\u2581"  # ▁, what a space becomes inside a piece


def learn_pieces(sentences, vocab_size, n_reserved, *, character_coverage=0.9995,
                 split_digits=False, split_by_whitespace=True, max_piece_length=16,
                 allow_whitespace_only_pieces=False, workers=1, verbose=False, progress=False):
    """(merged pieces in merge order, kept characters most frequent first) for a model of
    `vocab_size` pieces of which `n_reserved` (<unk> <s> </s>, user symbols, bytes) are fixed.

    sentences: normalized sentences (see SentencePieceTokenizer.training_sentences); a string
    may hold several, joined by "\n".
    vocab_size counts everything, as in spm_train, so the number of merges is what is left
    after the reserved pieces and the kept characters.
    """
    word_counts = count_words(sentences, split_by_whitespace=split_by_whitespace,
                              allow_whitespace_only_pieces=allow_whitespace_only_pieces,
                              workers=workers, progress=progress)
    char_counts = count_characters(word_counts)
    char_counts.pop("\0", None)  # spm_train never makes NUL a piece
    chars = kept_characters(char_counts, character_coverage)
    n_merges = vocab_size - n_reserved - len(chars)
    if n_merges < 0:
        raise ValueError(f"vocab_size {vocab_size} is too small: the special and byte pieces "
                         f"({n_reserved}) and the characters kept at character_coverage="
                         f"{character_coverage} ({len(chars)}) already need "
                         f"{n_reserved + len(chars)}; raise vocab_size or lower the coverage")
    kept = set(chars)
    if split_digits:
        kept -= set("0123456789")
    valid = piece_validator(split_by_whitespace=split_by_whitespace,
                            max_piece_length=max_piece_length,
                            allow_whitespace_only_pieces=allow_whitespace_only_pieces)
    merged = bpe_merges(word_counts, n_merges, valid, kept.__contains__, verbose, progress)
    return merged, chars


def count_words(sentences, *, split_by_whitespace=True, allow_whitespace_only_pieces=False,
                workers=1, progress=False):
    """{word: count}: a word starts at every ▁ (with allow_whitespace_only_pieces: at every
    run of ▁) and at the start of a sentence; without split_by_whitespace a sentence is one word.

    The usual case is str.split at ▁, counting the parts (the word less its ▁) in C; a part
    that spans a sentence end ("x\n" before "▁y" on the next line) is cut there once, at the
    end, per distinct part. A sentence holds no newline, so "\n" joins a batch of them (and
    a string given may be several sentences so joined).
    With workers > 1, worker processes count the batches, each into one running count sent
    back at the end; sums do not depend on who counted what, so neither does the result.
    """
    rule = ("sentences" if not split_by_whitespace else
            "runs" if allow_whitespace_only_pieces else "split")
    bar = tqdm(unit="char", unit_scale=True, desc="counting words") if progress else None
    batches = _batches(sentences, bar)
    if workers > 1:
        parts, lead = Counter(), Counter()
        for more_parts, more_lead in in_workers(functools.partial(_count_stream, rule), batches,
                                                workers):
            parts.update(more_parts)
            lead.update(more_lead)
    else:
        parts, lead = _count_stream(rule, batches)
    if bar is not None:
        bar.close()
    words = dict(zip(map(SPACE.__add__, parts), parts.values()))
    for part in [part for part in parts if "\n" in part]:
        n = words.pop(SPACE + part)
        head, *rest = part.split("\n")
        words[SPACE + head] = words.get(SPACE + head, 0) + n
        for word in rest:
            lead[word] += n
    lead.pop("", None)
    words.update(lead)  # no ▁ in front: no key in common
    return words


_BATCH_CHARS = 1 << 20  # per batch: large enough to amortise a worker's pickling


def _batches(sentences, bar):
    """Sentences joined by "\n", about a million characters at a time."""
    batch, size = [], 0
    for sentence in sentences:
        batch.append(sentence)
        size += len(sentence)
        if size >= _BATCH_CHARS:
            if bar is not None:
                bar.update(size)
            yield "\n".join(batch)
            batch, size = [], 0
    if batch:
        if bar is not None:
            bar.update(size)
        yield "\n".join(batch)


# the words with allow_whitespace_only_pieces
_RUNS = re.compile(f"{SPACE}+[^{SPACE}\n]*|[^{SPACE}\n]+")


def _count_batch(rule, text, parts, lead):
    """Add a batch's words to `parts` (what follows a ▁, to the next one) and `lead` (whole
    words not after a ▁)."""
    if rule == "sentences":
        lead.update(text.split("\n"))
    elif rule == "runs":
        lead.update(_RUNS.findall(text))
    else:
        # a sentence that starts with ▁ (the dummy prefix) ends the part before it, as
        # the ▁ would: "\n▁" -> "▁" spares a cut at the end for most parts that span a line
        split = text.replace("\n" + SPACE, SPACE).split(SPACE)
        lead.update(split[0].split("\n"))
        # most parts are empty (a ▁ before a ▁: indentation, in code); counting them in one
        # list.count leaves the Counter the non-empty ones only
        empty = split.count("") - (split[0] == "")
        if empty:
            parts[""] += empty
        parts.update(filter(None, itertools.islice(split, 1, None)))


def _count_stream(rule, batches):
    """(parts, lead) for a stream of batches: one process's share of the counting."""
    parts, lead = Counter(), Counter()
    for text in batches:
        _count_batch(rule, text, parts, lead)
    return parts, lead


def count_characters(word_counts):
    """{character: occurrences} over {word: count}, counted in numpy."""
    words = list(word_counts)
    cps = np.frombuffer("".join(words).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    lens = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
    freqs = np.fromiter(word_counts.values(), dtype=np.float64, count=len(words))
    totals = np.bincount(cps, weights=np.repeat(freqs, lens)) if len(cps) else np.zeros(0)
    present = np.flatnonzero(totals)
    return dict(zip(map(chr, present.tolist()), totals[present].astype(np.int64).tolist()))


def kept_characters(char_counts, character_coverage):
    """The characters that become pieces, most frequent first (ties: lower code point first),
    until they cover `character_coverage` of all character occurrences (spm_train's rule:
    a character is added while the share covered *before* it is still below the target)."""
    total = sum(char_counts.values())
    kept, covered = [], 0
    # spm_train stores the coverage as a float32; compare against that same value
    target = struct.unpack("<f", struct.pack("<f", character_coverage))[0]
    for ch, n in sorted(char_counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if total and covered / total >= target:
            break
        kept.append(ch)
        covered += n
    return kept


def bpe_merges(word_counts, n_merges, valid, joins=None, verbose=False, progress=False):
    """Greedy BPE over code points: the list of merged pieces, in merge order.

    word_counts: {word: count}, a word being a run of characters no merge may cross.
    valid(piece): whether a merged piece is allowed (length, ▁ placement).
    joins: the characters that may be part of a merged piece (default: all); the others
    cut the words they are in, so no merge ever touches them.
    Each step merges the most frequent adjacent pair of symbols, overlapping occurrences
    counted as spm_train counts them ("aaa" holds (a, a) twice). Ties: the shorter piece,
    then the smaller piece string (code point order), then the smaller left part.
    As in spm_train, a pair spelling a piece that already exists (("aa", "a") after
    ("a", "aa")) is dropped, never merged.

    Speed: the words are laid end to end in numpy arrays, one slot per character, a free
    slot between words; each slot knows its symbol id, its word's count and, as a doubly
    linked list, its live neighbours. A merge of (a, b) at slot i takes the b slot out of
    the list and writes the new id at i. Pair counts are kept up to date per merge from
    the neighbours of the merged occurrences only, all of them at once (numpy; a pair with
    few places, one place at a time in Python, see _merge_few), and each
    pair keeps the slots where it was born: a merge only looks there (and drops the ones
    another merge took). The best pair comes from a heap with lazy invalidation: a merge
    only lowers the counts of existing pairs (new pairs hold the new, unique piece), so each
    entry is an upper bound and a popped entry whose count is stale is pushed back with its
    true count.
    """
    words = list(word_counts)
    alphabet, layout = _lay_out(words, list(word_counts.values()), joins)
    tok, prv, nxt, weight = layout
    # the same arrays seen element by element, for merges with few places (_merge_few)
    layout += (tuple(memoryview(array) for array in layout),)
    pieces = list(alphabet)  # id -> piece string
    K = len(pieces) + n_merges + 1  # a pair (l, r) is the int l * K + r
    counts, where = _initial_pairs(tok, weight, len(pieces), K)

    def entry(key, n):
        left, right = pieces[key // K], pieces[key % K]
        return (-n, len(left) + len(right), left + right, left, key)

    heap = [entry(key, n) for key, n in counts.items()
            if valid(pieces[key // K] + pieces[key % K])]
    heapq.heapify(heap)
    # New pairs counted below `floor` wait in `low`, by bit length of their count, instead
    # of the heap: most never get near the top. While the heap's best bound is >= floor,
    # nothing in `low` can match it; when it falls below, the top level of `low` moves in.
    floor = 1 << (max(counts.values(), default=1).bit_length() - 1)
    low = {}
    merged, have = [], set()
    mark = np.zeros(len(tok), dtype=bool)  # scratch: which slots are in the merge at hand
    bar = tqdm(total=n_merges, unit="merge", desc="merging") if progress else None
    gc_was_on = gc.isenabled()
    gc.disable()  # ~10^5 small long-lived tuples: collections would only rescan them (~5%)
    try:
        while len(merged) < n_merges:
            if not heap or -heap[0][0] < floor:
                if not low:
                    if not heap:
                        break
                    floor = 0
                    continue
                level = max(low)
                floor = 1 << (level - 1)
                for key in low.pop(level):
                    n = counts.get(key, 0)
                    if n >= floor:
                        if valid(pieces[key // K] + pieces[key % K]):
                            heapq.heappush(heap, entry(key, n))
                    elif n > 0:
                        low.setdefault(n.bit_length(), []).append(key)
                continue
            neg, size, piece, left, key = heapq.heappop(heap)
            n = counts.get(key, 0)
            if n != -neg:  # stale: the count went down since this entry was pushed
                if n > 0:
                    heapq.heappush(heap, (-n, size, piece, left, key))
                continue
            if piece in have:  # the same string reached by another split: spm_train drops it
                continue
            have.add(piece)
            merged.append(piece)
            if bar is not None:
                bar.update()
            if verbose and len(merged) % 1000 == 0:
                print(f"merge {len(merged)}/{n_merges}: {piece!r} x{n}")
            x = len(pieces)
            pieces.append(piece)
            places, start, end = where.pop(key)
            keys, totals = _merge(key, x, K, places[start:end], layout, mark, counts, where)
            del counts[key]
            for new_key, n_new in zip(keys, totals):
                if n_new < floor:
                    low.setdefault(n_new.bit_length(), []).append(new_key)
                elif valid(pieces[new_key // K] + pieces[new_key % K]):
                    heapq.heappush(heap, entry(new_key, n_new))
    finally:
        if gc_was_on:
            gc.enable()
        if bar is not None:
            bar.close()
    if len(merged) < n_merges:
        # Out of pairs (a tiny corpus): spm_train goes on adding pairs that once occurred but
        # were merged away, count 0, shortest then smallest first; so do we.
        spent = {pieces[k // K] + pieces[k % K] for k, n in counts.items() if n == 0}
        spent = sorted((p for p in spent if p not in have and valid(p)), key=lambda p: (len(p), p))
        merged += spent[:n_merges - len(merged)]
    return merged


def _lay_out(words, freqs, joins):
    """(alphabet, (tok, prv, nxt, weight)): the words end to end, a free slot (id -1) before
    each and at the end. tok: the symbol id in each slot (-1: free, or a character that joins
    nothing); prv/nxt: the live neighbours; weight: the count of the slot's word."""
    lens = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
    cps = np.frombuffer("".join(words).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    present = np.flatnonzero(np.bincount(cps, minlength=1))
    alphabet = [chr(c) for c in present.tolist()]
    if joins is not None:
        alphabet = [ch for ch in alphabet if joins(ch)]
    ids = np.full(int(present[-1]) + 1 if len(present) else 1, -1, dtype=np.int32)
    ids[[ord(ch) for ch in alphabet]] = np.arange(len(alphabet))
    slots = np.arange(len(cps)) + np.repeat(np.arange(1, len(words) + 1), lens)
    n = len(cps) + len(words) + 1
    # 32-bit ids and links: half the memory traffic of int64 in the merges' gathers
    index = np.int32 if n < 2**31 else np.int64
    tok = np.full(n, -1, dtype=np.int32)
    tok[slots] = ids[cps]
    weight = np.zeros(n, dtype=np.int64)
    weight[slots] = np.repeat(np.asarray(freqs, dtype=np.int64), lens)
    prv = np.arange(-1, n - 1, dtype=index)
    nxt = np.arange(1, n + 1, dtype=index)
    nxt[-1] = n - 1  # the last free slot: never followed, but must index
    prv[0] = 0
    return alphabet, (tok, prv, nxt, weight)


def _initial_pairs(tok, weight, n_chars, K):
    """({pair: count}, {pair: (slots, start, end)}) for every adjacent pair of characters:
    the slots of each occurrence's first character are slots[start:end]."""
    left = np.flatnonzero((tok[:-1] >= 0) & (tok[1:] >= 0))
    if not len(left):
        return {}, {}
    # slots as 32-bit ints where they fit, as in _lay_out: the gathers below move half the bytes
    left = left.astype(np.int32 if len(tok) < 2**31 else np.int64)
    codes = tok[left].astype(np.int64) * n_chars + tok[left + 1]
    dense = n_chars <= 256
    if dense:
        # codes fit 16 bits, which numpy radix-sorts; and a count per code is a small array,
        # summed in slot order (a sequential read of weight, not a gather after the sort;
        # float sums are exact below 2**53)
        sums = np.bincount(codes, weights=weight[left])
        codes = codes.astype(np.uint16)
    order = np.argsort(codes, kind="stable")
    codes, left = codes[order], left[order]
    starts = np.flatnonzero(np.concatenate(([True], codes[1:] != codes[:-1])))
    codes = codes[starts].astype(np.int64)
    if dense:
        totals = sums[codes].astype(np.int64).tolist()
    else:
        totals = np.add.reduceat(weight[left], starts).tolist()
    bounds = starts.tolist() + [len(order)]
    first, second = np.divmod(codes, n_chars)
    keys = (first * K + second).tolist()
    where = dict(zip(keys, zip(itertools.repeat(left), bounds, bounds[1:])))
    return dict(zip(keys, totals)), where


def _merge(key, x, K, slots, layout, mark, counts, where):
    """Merge the pair `key` into the new symbol x at the slots where it still is; lower the
    counts of the pairs this breaks; count the pairs it creates and note where they are
    (`where`: pair -> (slots, start, end), the slot of each occurrence's left symbol in
    slots[start:end]); return them as (pairs, counts).

    Every pair created holds x, so it is new: a symbol t just before an occurrence turns the
    pair (t, a) into (t, x), one just after it (b, t) into (x, t), for the same count. Two
    merged occurrences can touch ("abab" -> x x): then the pair between them, (b, a), is
    broken once and (x, x) is created once; as the string-based trainer did, (x, a) is then
    reported too, with count 0 if it has none.
    """
    if len(slots) <= _FEW:
        return _merge_few(key, x, K, slots, layout, counts, where)
    tok, prv, nxt, weight = layout[:4]
    a, b = divmod(key, K)
    slots = slots[(tok[slots] == a) & (tok[nxt[slots]] == b)]  # drop the ones merged away
    if a == b:  # "aaa": left to right, an occurrence overlapping the one before is not merged
        slots = np.sort(slots)
        follows = np.concatenate(([False], slots[1:] == nxt[slots[:-1]]))
        index = np.arange(len(slots))
        run_start = np.maximum.accumulate(np.where(follows, 0, index))
        slots = slots[(index - run_start) % 2 == 0]
    i, j = slots, nxt[slots]
    c = weight[i]
    before, after = prv[i], nxt[j]
    old_before, old_after = tok[before], tok[after]
    touching = None
    if (old_after == a).any():
        mark[i] = True
        touching = mark[after]  # the symbol after is the a of the next occurrence
        mark[i] = False
        if touching.any():
            mark[j] = True
            after_another = mark[before]  # the symbol before is the b of the one before
            mark[j] = False
        else:
            touching = None
    # take the b slots out of the list
    tok[i] = x
    tok[j] = -1
    nxt[i] = after
    prv[after] = i
    if touching is None:
        # group by neighbour: code t for (t, a) -> (t, x), code K + t for (b, t) -> (x, t)
        left, right = old_before >= 0, old_after >= 0
        codes = np.concatenate((old_before[left], old_after[right] + K))
        amounts = np.concatenate((c[left], c[right]))
        places = np.concatenate((before[left], i[right]))  # the slot of the left symbol
        codes, totals, bounds, places = _groups(codes, amounts, places)
        keys = []
        for t, n in zip(codes.tolist(), totals):
            if t < K:
                counts[t * K + a] -= n
                keys.append(t * K + x)
            else:
                counts[b * K + t - K] -= n
                keys.append(x * K + t - K)
    else:
        old_before, old_after = old_before.astype(np.int64), old_after.astype(np.int64)
        broken_left = (old_before >= 0) & ~after_another
        broken_right = old_after >= 0
        before = prv[i]  # where two occurrences touched, the x before
        new_before = tok[before].astype(np.int64)
        new_left = new_before >= 0
        new_right = broken_right & ~touching
        codes = np.concatenate((old_before[broken_left] * K + a, b * K + old_after[broken_right]))
        amounts = np.concatenate((c[broken_left], c[broken_right]))
        codes, totals, _, _ = _groups(codes, amounts, codes)
        for k, n in zip(codes.tolist(), totals):
            counts[k] -= n
        codes = np.concatenate((new_before[new_left] * K + x, x * K + old_after[new_right]))
        amounts = np.concatenate((c[new_left], c[new_right]))
        places = np.concatenate((before[new_left], i[new_right]))
        keys, totals, bounds, places = _groups(codes, amounts, places)
        keys = keys.tolist()
        if x * K + a not in keys:
            counts[x * K + a] = 0
    counts.update(zip(keys, totals))
    where.update(zip(keys, zip(itertools.repeat(places), bounds, bounds[1:])))
    return keys, totals


# Up to this many places a merge walks them one by one in Python: a numpy call costs about
# a microsecond whatever its size and a merge makes ~50 of them, while a place costs ~1.5
# microseconds in Python (break-even near 32 places; over a third of the merges at 16384 pieces)
_FEW = 32


def _merge_few(key, x, K, slots, layout, counts, where):
    """_merge for a pair with few places: the same result, one occurrence at a time through
    memoryviews of the arrays (plain Python ints, no numpy call per element).

    Occurrences are taken left to right, so a merge sees the ones before it already done:
    in "aaa" the second (a, a) has lost its a; in "abab" -> x x the second occurrence finds
    x before it, so the pair (x, a) that the first one created is taken back and (x, x)
    created instead. Pairs that hold x are new, so they are summed apart (net count, their
    places) and handed back; the others are lowered in `counts` directly. The places kept
    are Python lists, never longer than `slots`, so they come back here, not to numpy.
    """
    tok, prv, nxt, weight = layout[4]
    a, b = divmod(key, K)
    total, places = {}, {}  # per pair created: its net count, the slots of its left symbol
    for i in sorted(slots.tolist() if isinstance(slots, np.ndarray) else slots):
        if tok[i] != a:
            continue
        j = nxt[i]
        if tok[j] != b:
            continue
        c = weight[i]
        before, after = prv[i], nxt[j]
        t = tok[before]
        if t == x:  # touches the occurrence just merged: (x, a) becomes (x, x)
            total[x * K + a] -= c
            k = x * K + x
        elif t >= 0:
            counts[t * K + a] -= c
            k = t * K + x
        else:
            k = -1
        if k >= 0:
            if k in total:
                total[k] += c
                places[k].append(before)
            else:
                total[k] = c
                places[k] = [before]
        t = tok[after]
        if t >= 0:
            counts[b * K + t] -= c
            k = x * K + t
            if k in total:
                total[k] += c
                places[k].append(i)
            else:
                total[k] = c
                places[k] = [i]
        tok[i] = x
        tok[j] = -1
        nxt[i] = after
        prv[after] = i
    keys, totals = [], []
    for k, n in total.items():
        if n:
            keys.append(k)
            totals.append(n)
            where[k] = (places[k], 0, len(places[k]))
        counts[k] = n  # (x, a) taken back everywhere stays, at 0, as in _merge
    return keys, totals


def _groups(codes, amounts, places):
    """(distinct codes, the sum of amounts for each, bounds of each one's run in places,
    places in code order)."""
    if not len(codes):
        return codes, [], [0], places
    order = np.argsort(codes)
    codes = codes[order]
    starts = np.flatnonzero(np.concatenate(([True], codes[1:] != codes[:-1])))
    totals = np.add.reduceat(amounts[order], starts).tolist()
    return codes[starts], totals, starts.tolist() + [len(codes)], places[order]


def piece_validator(*, split_by_whitespace, max_piece_length, allow_whitespace_only_pieces):
    """spm_train's rules for which merged pieces may exist (its IsValidSentencePiece), less
    the rules about characters, which learn_pieces applies by cutting words (unknown characters
    and, with split_digits, digits never join a piece), and less split_by_unicode_script,
    which needs Unicode script data Python does not ship."""
    def valid(piece):
        if len(piece) > max_piece_length:
            return False
        if SPACE in piece[1:] and not (allow_whitespace_only_pieces and
                                       piece.count(SPACE) == len(piece)):
            # ▁ only in front ("▁the"); without whitespace splitting also inside
            # ("a▁b"), never at the end ("a▁")
            if split_by_whitespace or piece.endswith(SPACE):
                return False
        return True
    return valid
