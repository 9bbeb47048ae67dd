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
"""
import gc
import heapq
import itertools
import re
import struct
from collections import Counter

from tqdm import tqdm

from .trainer import initial_pairs, merge_pair

SPACE = "\u2581"  # ▁, what a space becomes inside a piece


def learn_pieces(sentences, vocab_size, n_reserved, *, character_coverage=0.9995,
                 split_digits=False, split_by_whitespace=True, max_piece_length=16,
                 allow_whitespace_only_pieces=False, verbose=False, progress=False):
    """(merged pieces in merge order, kept characters most frequent first) for a model of
    `vocab_size` pieces of which `n_reserved` (<unk> <s> </s>, user symbols, bytes) are fixed.

    sentences: normalized strings holding no newline (see SentencePieceTokenizer.training_sentences).
    vocab_size counts everything, as in spm_train, so the number of merges is what is left
    after the reserved pieces and the kept characters.
    """
    # a word starts at every ▁ (with allow_whitespace_only_pieces: at every run of ▁)
    # (sentences hold no newline, so "\n" can join a batch of them for one findall)
    words_re = re.compile(f"{SPACE}+[^{SPACE}\n]*|[^{SPACE}\n]+" if allow_whitespace_only_pieces
                          else f"{SPACE}[^{SPACE}\n]*|[^{SPACE}\n]+")
    word_counts, char_counts = Counter(), {}
    sentences = iter(sentences)
    bar = tqdm(unit="char", unit_scale=True, desc="counting words") if progress else None
    while batch := list(itertools.islice(sentences, 10_000)):
        word_counts.update(words_re.findall("\n".join(batch)) if split_by_whitespace else batch)
        if bar is not None:
            bar.update(sum(map(len, batch)))
    if bar is not None:
        bar.close()
    for word, n in word_counts.items():
        for ch in word:
            if ch != "\0":  # spm_train never makes NUL a piece
                char_counts[ch] = char_counts.get(ch, 0) + n
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
    merged = bpe_merges(cut_words(word_counts, kept.__contains__), n_merges, valid, verbose,
                        progress)
    return merged, chars


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


def bpe_merges(word_counts, n_merges, valid, verbose=False, progress=False):
    """Greedy BPE over code points: the list of merged pieces, in merge order.

    word_counts: {word: count}, a word being a run of characters no merge may cross.
    valid(piece): whether a merged piece is allowed (length, ▁ placement).
    Each step merges the most frequent adjacent pair of symbols, overlapping occurrences
    counted as spm_train counts them ("aaa" holds (a, a) twice). Ties: the shorter piece,
    then the smaller piece string (code point order), then the smaller left part.
    As in spm_train, a pair spelling a piece that already exists (("aa", "a") after
    ("a", "aa")) is dropped, never merged.

    Speed: the pair counting and the merge step are trainer.py's own (initial_pairs,
    merge_pair). Every symbol (character or merged piece) gets an id, and a word
    is a str whose characters are those ids, so finding a pair is str.find and merging it
    everywhere in a word is str.replace (left to right, non-overlapping: the merge rule).
    Pair counts are updated per merge from the neighbours of each occurrence only, and the
    best pair comes from a heap with lazy invalidation: a merge only lowers the counts of
    existing pairs (new pairs hold the new, unique piece), so each entry is an upper bound
    and a popped entry whose count is stale is pushed back with its true count.
    """
    alphabet = sorted({ch for word in word_counts for ch in word})
    pieces = list(alphabet)  # id -> piece string
    to_id = {ord(ch): i for i, ch in enumerate(alphabet)}
    words = [word.translate(to_id) for word in word_counts]
    freqs = list(word_counts.values())
    counts, where = initial_pairs(words, freqs)

    def entry(pair, n):
        left, right = pieces[ord(pair[0])], pieces[ord(pair[1])]
        return (-n, len(left) + len(right), left + right, left, pair)

    heap = [entry(pair, n) for pair, n in counts.items()
            if valid(pieces[ord(pair[0])] + pieces[ord(pair[1])])]
    heapq.heapify(heap)
    merged, have = [], set()
    bar = tqdm(total=n_merges, unit="merge", desc="merging") if progress else None
    gc_was_on = gc.isenabled()
    gc.disable()  # many small long-lived lists: collections would only rescan them
    try:
        while heap and len(merged) < n_merges:
            neg, size, piece, left, pair = heapq.heappop(heap)
            n = counts.get(pair, 0)
            if n != -neg:  # stale: the count went down since this entry was pushed
                if n > 0:
                    heapq.heappush(heap, (-n, size, piece, left, pair))
                continue
            if piece in have:  # the same string reached by another split: spm_train drops it
                continue
            have.add(piece)
            merged.append(piece)
            if bar is not None:
                bar.update()
            if verbose and len(merged) % 1000 == 0:
                print(f"merge {len(merged)}/{n_merges}: {piece!r} x{n}")
            X = chr(len(pieces))
            pieces.append(piece)
            before, after = merge_pair(pair, X, words, freqs, where.pop(pair), counts)
            created = [(p + X, e) for p, e in before.items()] + [(X + q, e) for q, e in after.items()]
            for new_pair, (n_new, *in_words) in created:
                counts[new_pair] = n_new  # kept at 0 too: see the end
                if n_new > 0:
                    where[new_pair] = in_words
                    if valid(pieces[ord(new_pair[0])] + pieces[ord(new_pair[1])]):
                        heapq.heappush(heap, entry(new_pair, n_new))
            del counts[pair]
    finally:
        if gc_was_on:
            gc.enable()
        if bar is not None:
            bar.close()
    if len(merged) < n_merges:
        # Out of pairs (a tiny corpus): spm_train goes on adding pairs that once occurred but
        # were merged away, count 0, shortest then smallest first; so do we.
        spent = {pieces[ord(p[0])] + pieces[ord(p[1])] for p, n in counts.items() if n == 0}
        spent = sorted((p for p in spent if p not in have and valid(p)), key=lambda p: (len(p), p))
        merged += spent[:n_merges - len(merged)]
    return merged


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


def cut_words(word_counts, joins):
    """Cut each word around the characters for which joins(ch) is false (they can join no
    piece, so no merge touches them) and re-count: fewer, shorter words, the same merges."""
    out = {}
    for word, n in word_counts.items():
        if all(map(joins, word)):
            out[word] = out.get(word, 0) + n
            continue
        start = 0
        for i, ch in enumerate(word):
            if not joins(ch):
                if i - start > 1:
                    out[word[start:i]] = out.get(word[start:i], 0) + n
                start = i + 1
        if len(word) - start > 1:
            out[word[start:]] = out.get(word[start:], 0) + n
    return out
