"""Fast, exact BPE training: the same merges as reference.py, in seconds instead of hours.

Two ideas make pure Python fast enough where minbpe's loop, recounting every pair after every
merge, would need hours for a 4096 vocabulary on 20 MB:

1. Count unique chunks, not text. The split pattern cuts a corpus into chunks that no merge may
   cross, and most chunks repeat: 20 MB of Python source is ~90k unique chunks. Counting them is
   embarrassingly parallel (worker processes, one Counter each, summed at the end), and after
   that the corpus itself is no longer needed -- memory is proportional to the unique chunks.
   For GPT-4's pattern, counting is twice as cheap again: distinct lines are split once, and
   ASCII text goes through an equivalent pattern for the faster `re` (see _count_by_lines).

2. Never recount. Keep the count of every adjacent pair and, per pair, the list of chunks it
   occurs in. A merge of (a, b) -> X only changes chunks that contain (a, b); for each of those
   we subtract the pairs that disappear (p, a), (b, n) and add the ones that appear (p, X),
   (X, n). The most frequent pair comes from a heap with lazy invalidation: entries are never
   updated in place; a popped entry whose count is stale is re-pushed with its true count.
   This is valid because a merge only ever *lowers* the count of an existing pair (new pairs all
   contain the new token X and get fresh entries), so every entry is an upper bound.

The tie-break (bpe.merge_priority: greatest (bytes(left), bytes(right))) must be exact inside a
min-heap, so each entry carries the pair's bytes in an order-reversing encoding (see _reverse_key).
bench/train_bpe.py measures where the time goes.
"""
import functools
import gc
import heapq
import itertools
import multiprocessing
import os
import queue
import re
from collections import Counter

import numpy as np
import regex
from tqdm import tqdm

from .bpe import fix_surrogates
from .patterns import GPT4_SPLIT_PATTERN
from .reference import prepare_chunks
from .specials import special_regex

# ---------------------------------------------------------------------------------------------
# Step 1: text -> {chunk_bytes: count}

_BATCH_CHARS = 1 << 20  # ~1 MB of text per worker task: large enough to amortise pickling


class ChunkCounts(dict):
    r"""{chunk bytes: count}, plus how much text the chunks cover.

    A split pattern that does not match every character (e.g. r"\w+") silently leaves text out
    of every chunk: it is never trained on, and encode() drops it too. `text_chars` counts the
    characters given (special tokens excluded), `chunk_chars` those inside chunks.
    """
    text_chars = chunk_chars = 0

    @property
    def dropped_chars(self):
        return self.text_chars - self.chunk_chars


def check_coverage(counts, pattern):
    """Refuse a split pattern that left text in no chunk: training and encoding would both drop
    that text silently, so bytes/token would be measured on other text than the user's."""
    if not isinstance(counts, ChunkCounts) or counts.dropped_chars <= 0:
        return
    raise ValueError(
        f"the split pattern '{pattern[:60]}' leaves {counts.dropped_chars:,} of "
        f"{counts.text_chars:,} characters ({counts.dropped_chars / counts.text_chars:.1%}) "
        f"in no chunk, so that text would be neither trained on nor encoded; use a pattern "
        f"that matches every character (e.g. end it with |\\s+|. ) or 'gpt4'")


def count_chunks(texts, pattern, special_tokens=(), workers=1, progress=False):
    """Split text into chunks with `pattern` and count each distinct chunk (as UTF-8 bytes).

    `texts` is a str or an iterable of str documents, consumed as a stream. Chunks never span
    documents or special tokens: specials split the text and are dropped (never counted, so
    never merged into). `pattern` None or "" makes every document (or special-separated piece)
    one chunk, as BasicTokenizer wants. The result is the same for any `workers`; it is a
    ChunkCounts, which also says how much of the text no chunk covers.
    """
    if isinstance(texts, str):
        texts = [texts]
    specials = tuple(sorted(set(special_tokens or ()), key=lambda s: (-len(s), s)))
    if any(not s for s in specials):
        raise ValueError("special tokens must be non-empty strings")
    job = (pattern or "", specials)
    workers = (os.cpu_count() or 1) if workers is None else max(1, int(workers))
    _compile(job)  # a bad pattern raises here, in the caller, not in a worker
    batches = _batches(texts, progress)
    head = list(itertools.islice(batches, 2))  # one batch only: not worth starting processes
    if workers == 1 or len(head) < 2:
        return _count_stream(job, itertools.chain(head, batches))
    total, chars, covered = Counter(), 0, 0
    for counts in in_workers(functools.partial(_count_stream, job), itertools.chain(head, batches),
                             workers):
        total.update(counts)
        chars += counts.text_chars
        covered += counts.chunk_chars
    result = ChunkCounts(total)
    result.text_chars, result.chunk_chars = chars, covered
    return result


def _count_stream(job, batches):
    """One ChunkCounts for a stream of document batches (encoded to bytes once, at the end)."""
    counts, chars = Counter(), 0
    for docs in batches:
        chars += _count_batch(job, docs, counts)
    return _to_bytes(counts, chars)


def _to_bytes(counts, text_chars):
    """{chunk str: n} -> ChunkCounts {chunk UTF-8 bytes: n}."""
    counts.pop("", None)  # a user pattern may match the empty string: it is no chunk
    result = ChunkCounts()
    covered = 0
    for chunk, n in counts.items():
        covered += len(chunk) * n
        try:
            key = chunk.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: U+FFFD, as tiktoken (and our encode) do
            key = fix_surrogates(chunk).encode("utf-8")
        result[key] = result.get(key, 0) + n
    result.text_chars, result.chunk_chars = text_chars, covered
    return result


def _batches(texts, progress):
    """Group documents into ~1 MB lists so each worker task carries real work."""
    bar = tqdm(unit="B", unit_scale=True, desc="counting chunks") if progress else None
    batch, size = [], 0
    for doc in texts:
        if not isinstance(doc, str):
            raise TypeError(f"documents must be str, got {type(doc).__name__}")
        batch.append(doc)
        size += len(doc)
        if size >= _BATCH_CHARS:
            if bar is not None:
                bar.update(size)
            yield batch
            batch, size = [], 0
    if batch:
        if bar is not None:
            bar.update(size)
        yield batch
    if bar is not None:
        bar.close()


def in_workers(work, batches, workers):
    """[work(share) for each of `workers` processes]: each process takes batches from one queue
    (its share, an iterator) and sends back ONE result at the end.

    (A result sent back per batch costs this process CPU to merge that the workers need on a
    small machine: 0.17 s at 20 MB on 2 cores.) The queue holds at most two batches per worker,
    so memory stays flat however long the stream is. `work` must be picklable (a module-level
    function or a functools.partial of one). Which worker took which batch varies, so callers
    combine the results with something order-free, such as a sum of counts.
    """
    ctx = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
    tasks, results = ctx.Queue(2 * workers), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(work, tasks, results), daemon=True)
             for _ in range(workers)]
    for proc in procs:
        proc.start()
    try:
        for batch in itertools.chain(batches, [None] * workers):  # None: no more work
            _patiently(lambda t: tasks.put(batch, timeout=t), procs)
        return [_patiently(lambda t: results.get(timeout=t), procs) for _ in procs]
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
            proc.join()


def _patiently(op, procs):
    """Run op(timeout), a queue put or get, until it succeeds; raise if a worker was killed."""
    while True:
        try:
            return op(0.5)
        except (queue.Full, queue.Empty):
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(f"a counting worker failed (exit code {dead[0]}; "
                                   f"its traceback, if any, is above)") from None


def _worker(work, tasks, results):
    """A worker process: work() over batches until None arrives. An error ends the process with
    a traceback on stderr and a non-zero exit code, which the parent turns into an exception."""
    results.put(work(iter(tasks.get, None)))


_compiled = {}


def _compile(job):
    """(chunk pattern, special-token splitter) for a job, compiled once per process."""
    if job not in _compiled:
        pattern, specials = job
        split = special_regex(frozenset(specials)) if specials else None
        _compiled[job] = (regex.compile(pattern) if pattern else None, split)
    return _compiled[job]


def _count_batch(job, docs, counts):
    """Add the chunks of a few documents to `counts`; returns the characters given (specials cut)."""
    chunker, splitter = _compile(job)
    pieces = [p for doc in docs for p in (splitter.split(doc) if splitter else (doc,)) if p]
    if chunker is None:
        counts.update(pieces)
    elif job[0] in _ASCII_TWIN:
        _count_by_lines(chunker, _ASCII_TWIN[job[0]], pieces, counts)
    else:
        for piece in pieces:
            counts.update(chunker.findall(piece))
    return sum(map(len, pieces))


# GPT-4's pattern spelled for the standard library's `re`, exact on ASCII text only: there
# \p{L} is [A-Za-z], \p{N} is [0-9] and \s is [ \t\n\v\f\r] (not \x1c-\x1f, which `re` would
# call space and Unicode does not). `re` splits ~1.6x faster than `regex`.
_S = r" \t\n\x0b\x0c\r"
try:
    _GPT4_ASCII = re.compile(
        rf"""'(?i:[sdmt]|ll|ve|re)|[^\r\nA-Za-z0-9]?+[A-Za-z]++|[0-9]{{1,3}}+"""
        rf"""| ?[^{_S}A-Za-z0-9]++[\r\n]*+|[{_S}]++$|[{_S}]*[\r\n]|[{_S}]+(?![^{_S}])|[{_S}]""")
except re.error:  # `re` reads possessive quantifiers from Python 3.11 on; before, keep `regex`
    _GPT4_ASCII = regex.compile(GPT4_SPLIT_PATTERN)
_ASCII_TWIN = {GPT4_SPLIT_PATTERN: _GPT4_ASCII}  # patterns _count_by_lines is proven for
_W = "\t\x0b\x0c \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"  # \s minus \r \n
_LINE = re.compile(rf"[^\n]*\n(?:[{_W}]*[\r\n])*(?:[{_W}]+\Z)?|[^\n]+")
_JOINABLE_START = re.compile(rf"[{_W}]*[^{_W}\r\n]")


def _count_by_lines(chunker, ascii_chunker, docs, counts):
    r"""Add to `counts` exactly what chunker.findall gives on each document, at half the cost.

    For GPT-4's pattern only. Three things:
    - Code and prose repeat whole lines ("        return self\n"), so count distinct lines
      and split each once: 15.7 of 20 M characters are left to split (1 MB batches).
    - Lines that are pure ASCII (nearly all) go through _GPT4_ASCII; str.isascii() is a C check.
    - Lines are joined and split by one findall per group, not one call per line.
    Why a cut at p changes nothing: the chunk holding text[p-1] must end exactly at p,
    whether or not the text goes on. It does when text[p-1] is \r or \n, and the whitespace
    after p holds no \r or \n and ends in a non-space: that newline belongs to a chunk from
    ` ?[^\s\p{L}\p{N}]++[\r\n]*+` or from the whitespace run around it, where `\s*[\r\n]` stops
    at the run's last newline -- and on text cut at p, `\s++$` stops there too. Nothing in the
    pattern looks behind, and `$` sees only the real end. _LINE cuts at such places (trailing
    whitespace of a document stays attached), so lines can be joined in any order -- except
    a document's first line if it starts with whitespace holding a newline, and its last line
    if it does not end in one: those "loose" lines are split alone.
    """
    lines, wide, loose = Counter(), Counter(), []  # ASCII lines, other lines, loose lines
    for doc in docs:
        parts = _LINE.findall(doc)
        if not _JOINABLE_START.match(parts[0]):
            loose.append(parts[0])
            parts[0] = ""
        if parts[-1] and parts[-1][-1] not in "\r\n":
            loose.append(parts[-1])
            parts[-1] = ""
        if doc.isascii():
            lines.update(parts)
        else:  # 19% of the stdlib slice; even there, most lines are ASCII
            lines.update([s for s in parts if s.isascii()])
            wide.update([s for s in parts if not s.isascii()])
    lines.pop("", None)
    for line in loose:
        counts.update((ascii_chunker if line.isascii() else chunker).findall(line))
    _count_lines(ascii_chunker, lines, counts)
    _count_lines(chunker, wide, counts)


def _count_lines(chunker, lines, counts):
    """Add the chunks of distinct, joinable lines, each counted as often as its line occurs.

    Most distinct lines occur once (295k of 337k): they are split by one findall with no
    Python step per line. The rest are grouped by how often they occur.
    """
    counts.update(chunker.findall("".join([s for s, n in lines.items() if n == 1])))
    groups = {}
    for s, n in [(s, n) for s, n in lines.items() if n > 1]:
        groups.setdefault(n, []).append(s)
    for n, group in groups.items():
        for chunk, k in Counter(chunker.findall("".join(group))).items():
            counts[chunk] += k * n


# ---------------------------------------------------------------------------------------------
# Step 2: {chunk: count} -> merges

_FLIP = bytes.maketrans(bytes(range(256)), bytes(range(255, -1, -1)))


def _reverse_key(token: bytes) -> bytes:
    """Bytes whose ascending order is the *descending* order of the tokens, prefixes included.

    Flip every byte (x -> 255-x) and append a terminator that sorts above every byte, so that a
    shorter token (a prefix, hence smaller) sorts after its extensions. A terminator above 0xff
    needs an escape: flipped byte 0xff (from 0x00) becomes ff 00 and the terminator is ff 01.
    Concatenating the keys of left and right then compares exactly like the tuple
    (bytes(left), bytes(right)), reversed.
    """
    return token.translate(_FLIP).replace(b"\xff", b"\xff\x00") + b"\xff\x01"


def train_bpe(chunk_counts, num_merges, *, base_vocab=None, base_merges=None, next_id=None,
              verbose=False, progress=False):
    """Learn up to `num_merges` merges; returns [(left, right, new_id), ...] in merge order.

    Same contract and same result as reference.reference_train_bpe. With base_vocab/base_merges
    the chunks are first encoded with the existing merges and new ids start at next_id
    (default max(base_vocab) + 1). Stops early when no pair is left.

    Representation, chosen by profiling: each unique chunk is a str whose characters are token
    ids (chr(id)), so finding a pair is str.find and applying a merge is str.replace -- both in
    C, and replace is exactly the left-to-right, non-overlapping rule. A pair is its 2-char
    string. Pair counts live in a dict; `where` maps a pair to the chunks that contain it.
    """
    if num_merges < 0:
        raise ValueError(f"num_merges must be >= 0, got {num_merges}")
    if base_vocab is None and not base_merges and next_id is None:
        vocab = {i: bytes([i]) for i in range(256)}
        items = [(chunk, n) for chunk, n in chunk_counts.items() if n > 0]
        words = [chunk.decode("latin-1") for chunk, _ in items]  # byte b -> chr(b), in C
        counts = [n for _, n in items]
        new_id = 256
    else:
        vocab, ids, counts, new_id = prepare_chunks(chunk_counts, base_vocab, base_merges, next_id)
        if new_id + num_merges > 0x110000:
            raise ValueError("token ids above 1,114,111 are not supported by this trainer")
        words = ["".join(map(chr, w)) for w in ids]
    rkey = {chr(i): _reverse_key(bs) for i, bs in vocab.items()}
    pair_count, where = initial_pairs(words, counts)
    # A heap entry is (-count, reverse key of left, reverse key of right, pair): highest count
    # first, then greatest bytes; the ids only matter between tokens with equal bytes (an
    # extended vocabulary can have them): then the smaller ids win. Tuples of shared objects
    # rather than one packed bytes key, whose encode/decode costs ~1 us per entry.
    heap = [(-n, rkey[p[0]], rkey[p[1]], p) for p, n in pair_count.items()]
    heapq.heapify(heap)

    bar = tqdm(total=num_merges, unit="merge", desc="merging") if progress else None
    merges = []
    heappop, heappush = heapq.heappop, heapq.heappush
    gc_was_on = gc.isenabled()
    gc.disable()  # ~10^5 small lists stay alive all along: collections only rescan them (-5%)
    try:
        while len(merges) < num_merges and heap:
            neg, rl, rr, ab = heappop(heap)
            n = pair_count.get(ab, 0)
            if n != -neg:  # stale: the count went down since this entry was pushed
                if n > 0:
                    heappush(heap, (-n, rl, rr, ab))
                continue
            ia, ib = ord(ab[0]), ord(ab[1])
            x = new_id
            new_id += 1
            X = chr(x)
            vocab[x] = vocab[ia] + vocab[ib]
            rkey[X] = rx = _reverse_key(vocab[x])
            merges.append((ia, ib, x))
            if verbose:
                print(f"merge {len(merges)}/{num_merges}: ({ia}, {ib}) -> {x} {vocab[x]!r} "
                      f"had {n} occurrences")
            if bar is not None:
                bar.update(1)
            before, after = merge_pair(ab, X, words, counts, where.pop(ab), pair_count)
            del pair_count[ab]
            for p, e in before.items():
                if e[0] > 0:
                    pair_count[p + X] = e[0]
                    where[p + X] = e[1:]
                    heappush(heap, (-e[0], rkey[p], rx, p + X))
            for q, e in after.items():
                if e[0] > 0:
                    pair_count[X + q] = e[0]
                    where[X + q] = e[1:]
                    heappush(heap, (-e[0], rx, rkey[q], X + q))
    finally:
        if gc_was_on:
            gc.enable()
    if bar is not None:
        bar.close()
    return merges


def merge_pair(ab, X, words, counts, chunks, pair_count):
    """Replace the pair ab by token X in `chunks`; return the pairs this creates. (The
    SentencePiece trainer merges code-point words with it too: the same step on other symbols.)

    Every pair created contains X, so it is new: (p, X) is gathered in `before` keyed by p, and
    (X, q) in `after` keyed by q, each as [count, chunk, chunk, ...] (a chunk may repeat: a
    later visit then finds nothing to do). The pairs that vanish, (p, a) and (b, q), lose
    exactly what (p, X) and (X, q) gain, so pair_count is lowered once per neighbour after
    the scan, not once per occurrence.
    One wrinkle: in a run like "abab", the second ab's left neighbour is the first one's X,
    so the (X, a) counted at the first occurrence is really (X, X).
    """
    a, b = ab
    before, after = {}, {}
    bget, aget = before.get, after.get
    for wi in chunks:
        s = words[wi]
        i = s.find(ab)
        if i < 0:  # the pair was merged away here by an earlier merge
            continue
        c = counts[wi]
        size = len(s)
        end = -1  # end of the previous occurrence in this chunk
        while True:
            if i:
                p = X if i == end else s[i - 1]
                e = bget(p)
                if e is None:
                    before[p] = [c, wi]
                else:
                    e[0] += c
                    e.append(wi)
            end = i + 2
            if end < size:
                q = s[end]
                e = aget(q)
                if e is None:
                    after[q] = [c, wi]
                else:
                    e[0] += c
                    e.append(wi)
            i = s.find(ab, end)
            if i < 0:
                break
        words[wi] = s.replace(ab, X)
    for q, e in after.items():
        pair_count[b + q] -= e[0]
    for p, e in before.items():
        if p != X:
            pair_count[p + a] -= e[0]
    if X in before:
        after[a][0] -= before[X][0]
    return before, after


def initial_pairs(words, counts):
    """Count all adjacent pairs once, in numpy: returns ({pair: count}, {pair: [word index]})."""
    if not words:
        return {}, {}
    lens = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
    # token ids 0xd800-0xdfff are surrogate code points here: valid ids, so let them through
    flat = np.frombuffer("".join(words).encode("utf-32-le", "surrogatepass"),
                         dtype=np.uint32).astype(np.int64)
    word = np.repeat(np.arange(len(words)), lens)
    inside = word[:-1] == word[1:]  # pairs never straddle two chunks
    bits = 8 if flat.max() < 256 else 21  # bytes only: 16-bit keys, which numpy radix-sorts
    keys = (flat[:-1] << bits | flat[1:])[inside]
    if bits == 8:
        keys = keys.astype(np.uint16)
    word = word[:-1][inside]
    if len(keys) == 0:
        return {}, {}
    order = np.argsort(keys, kind="stable")  # stable: word indices stay ascending per pair
    keys, word = keys[order], word[order]
    new_key = np.r_[True, keys[1:] != keys[:-1]]
    starts = np.flatnonzero(new_key)
    totals = np.add.reduceat(np.asarray(counts, dtype=np.int64)[word], starts)
    low = (1 << bits) - 1
    pairs = [chr(k >> bits) + chr(k & low) for k in keys[starts].tolist()]
    first = new_key | np.r_[True, word[1:] != word[:-1]]  # one entry per (pair, word)
    keys, word = keys[first], word[first].tolist()
    bounds = [0, *(np.flatnonzero(keys[1:] != keys[:-1]) + 1).tolist(), len(word)]
    where = {p: word[i:j] for p, i, j in zip(pairs, bounds, bounds[1:])}
    return dict(zip(pairs, totals.tolist())), where
