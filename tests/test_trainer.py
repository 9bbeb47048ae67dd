"""The fast trainer must give exactly the merges of the slow reference, and of CS336's fixture."""
import os
import random
import re
from collections import Counter

import pytest
import regex

import tokenizer.reference as reference
import tokenizer.trainer as trainer
from tokenizer import GPT4_SPLIT_PATTERN
from tokenizer.hf import bytes_to_unicode
from tokenizer.reference import merge, reference_train_bpe
from tokenizer.trainer import _GPT4_ASCII, _W, _reverse_key, count_chunks, train_bpe

GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT4_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}|"""
                r""" ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+""")


def vocab_of(merges):
    vocab = {i: bytes([i]) for i in range(256)}
    for a, b, x in merges:
        vocab[x] = vocab[a] + vocab[b]
    return vocab


def test_merge_is_left_to_right_and_non_overlapping():
    assert merge([97, 97, 97], (97, 97), 256) == [256, 97]
    assert merge([97, 97, 97, 97], (97, 97), 256) == [256, 256]
    assert merge([1, 2, 1, 2, 1], (1, 2), 9) == [9, 9, 1]


def test_minbpe_worked_example():
    # minbpe's example, worked by hand with our tie rule:
    # pairs aa:4 ab:2 bd da ba ac:1 -> merge (a, a); "aaa" becomes [aa, a] (left to right)
    # [aa, a, b, d, aa, a, b, a, c]: (aa, a):2 ties (a, b):2; b"aa" > b"a" -> merge (aa, a)
    # [aaa, b, d, aaa, b, a, c]: (aaa, b):2 -> merge
    merges = train_bpe({b"aaabdaaabac": 1}, 3)
    assert merges == [(97, 97, 256), (256, 97, 257), (257, 98, 258)]


def test_tie_break_is_greatest_bytes_not_first_seen():
    # every pair occurs once: the winner is the greatest (left, right) bytes, whatever the order
    assert train_bpe({b"ab": 1, b"zy": 1, b"mn": 1}, 1) == [(ord("z"), ord("y"), 256)]
    assert train_bpe({b"zy": 1, b"ab": 1, b"mn": 1}, 1) == [(ord("z"), ord("y"), 256)]
    # a token beats its own prefix: after (a, b) -> ab, (ab, c) and (a, c) tie; b"ab" > b"a"
    assert train_bpe({b"abc": 1, b"ac": 1, b"ab": 5}, 2)[1] == (256, ord("c"), 257)


def test_reverse_key_orders_pairs_like_bytes_tuples_reversed():
    rng = random.Random(0)
    tokens = [bytes(rng.choice([0, 1, 97, 254, 255]) for _ in range(rng.randint(1, 3)))
              for _ in range(60)]
    pairs = [(a, b) for a in tokens[:30] for b in tokens[30:]]
    by_key = sorted(pairs, key=lambda p: _reverse_key(p[0]) + _reverse_key(p[1]))
    by_bytes = sorted(pairs, reverse=True)
    assert [_reverse_key(a) + _reverse_key(b) for a, b in by_key] == \
           [_reverse_key(a) + _reverse_key(b) for a, b in by_bytes]


def _random_docs(rng):
    alphabet = rng.choice(["ab", "abc", "a b", "aab\n", "xy z\u00e9\u00e8", "aaaa b", "\x00\xff a"])
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
            for _ in range(rng.randint(1, 8))]


def test_fast_equals_reference_on_random_texts():
    rng = random.Random(1234)
    for trial in range(250):
        docs = _random_docs(rng)
        pattern = rng.choice([GPT4_PATTERN, GPT2_PATTERN, None])
        counts = count_chunks(docs, pattern)
        n = rng.randint(0, 50)
        assert train_bpe(counts, n) == reference_train_bpe(counts, n), (trial, docs, pattern, n)


def test_fast_equals_reference_on_real_text(corpus_text):
    text = corpus_text[:40_000]
    counts = count_chunks(text, GPT4_PATTERN)
    assert train_bpe(counts, 120) == reference_train_bpe(counts, 120)


def test_cs336_reference_merges(shared_dir):
    cs336 = shared_dir / "data" / "cs336"
    # GPT-2 byte-to-unicode table (checked against GPT-2's own files in test_hf_export)
    to_byte = {c: b for b, c in bytes_to_unicode().items()}
    expected = []
    for line in (cs336 / "train-bpe-reference-merges.txt").read_text(encoding="utf-8").splitlines():
        left, right = line.split(" ")
        expected.append((bytes(to_byte[c] for c in left), bytes(to_byte[c] for c in right)))
    assert len(expected) == 243  # vocab 500 = 256 bytes + <|endoftext|> + 243 merges
    text = (cs336 / "corpus.en").read_text(encoding="utf-8")
    counts = count_chunks(text, GPT2_PATTERN, special_tokens=["<|endoftext|>"])
    assert not any(b"<|endoftext|>" in chunk for chunk in counts)
    merges = train_bpe(counts, 243)
    vocab = vocab_of(merges)
    assert [(vocab[a], vocab[b]) for a, b, _ in merges] == expected


def test_special_tokens_are_hard_boundaries_and_dropped():
    counts = count_chunks(["ab<|s|>ab", "<|s|>"], None, special_tokens=["<|s|>"])
    assert counts == {b"ab": 2}
    # the longest special wins where two overlap
    counts = count_chunks("x<|a|>>y", None, special_tokens=["<|a|>", "<|a|>>"])
    assert counts == {b"x": 1, b"y": 1}


def test_count_chunks_pattern_and_documents():
    counts = count_chunks(["hello world", "hello"], GPT2_PATTERN)
    assert counts == {b"hello": 2, b" world": 1}
    # no chunk spans two documents, and a str is one document
    assert count_chunks(["ab", "cd"], None) == {b"ab": 1, b"cd": 1}
    assert count_chunks("ab", None) == {b"ab": 1}
    assert count_chunks("ab c", r"\w*") == {b"ab": 1, b"c": 1}  # empty matches are no chunks
    assert count_chunks("a\ud800", None) == {"a\ufffd".encode(): 1}  # lone surrogate: U+FFFD
    with pytest.raises(TypeError):
        count_chunks([b"bytes"], None)


def test_deterministic_and_document_order_independent():
    rng = random.Random(7)
    docs = [" ".join(rng.choice(["the", "cat", "sat", "on", "a", "mat", "aaaa"])
                     for _ in range(30)) for _ in range(40)]
    merges = train_bpe(count_chunks(docs, GPT4_PATTERN), 60)
    shuffled = docs[:]
    rng.shuffle(shuffled)
    assert train_bpe(count_chunks(shuffled, GPT4_PATTERN), 60) == merges
    # and the chunk dict's order does not matter either
    counts = count_chunks(docs, GPT4_PATTERN)
    reordered = dict(sorted(counts.items(), key=lambda kv: kv[0][::-1]))
    assert train_bpe(reordered, 60) == merges


def test_workers_give_identical_counts(monkeypatch):
    monkeypatch.setattr(trainer, "_BATCH_CHARS", 500)  # force several batches -> real workers
    rng = random.Random(3)
    docs = ["".join(rng.choice("ab c\n<|x|>é") for _ in range(300)) for _ in range(60)]
    one = count_chunks(docs, GPT4_PATTERN, special_tokens=["<|x|>"], workers=1)
    two = count_chunks(iter(docs), GPT4_PATTERN, special_tokens=["<|x|>"], workers=2)
    assert one == two
    assert sum(one.values()) > 1000


def test_continuing_from_base_merges_equals_training_further():
    rng = random.Random(11)
    docs = ["".join(rng.choice("abcab  \n") for _ in range(200)) for _ in range(30)]
    counts = count_chunks(docs, GPT4_PATTERN)
    first = train_bpe(counts, 20)
    vocab = vocab_of(first)
    more = train_bpe(counts, 30, base_vocab=vocab, base_merges=first)
    assert first + more == train_bpe(counts, 50)
    assert more == reference_train_bpe(counts, 30, base_vocab=vocab, base_merges=first)
    # merges may also come as {(l, r): new}; new ids may start later (room for specials)
    as_dict = {(a, b): x for a, b, x in first}
    shifted = train_bpe(counts, 30, base_vocab=vocab, base_merges=as_dict, next_id=300)
    assert [(x - 300) for _, _, x in shifted] == list(range(30))


def test_tokens_with_identical_bytes_tie_on_smaller_ids(monkeypatch):
    # Only an extended vocabulary can hold two ids with the same bytes (b"ab" built as (a, b) and
    # as (a', b) from a duplicate byte token); then the bytes rule can't decide and the smaller
    # ids win. Such words are hard to reach through encoding, so hand them to both trainers.
    vocab = {i: bytes([i]) for i in range(256)} | {300: b"ab", 301: b"ab"}
    words = [[301, 99], [300, 99], [99, 301], [99, 300]]

    def prepared(*args):
        return dict(vocab), [list(w) for w in words], [1, 1, 1, 1], 302

    monkeypatch.setattr(trainer, "prepare_chunks", prepared)
    monkeypatch.setattr(reference, "prepare_chunks", prepared)
    expected = [(99, 300, 302), (99, 301, 303), (300, 99, 304), (301, 99, 305)]
    assert trainer.train_bpe({}, 4, base_vocab=vocab) == expected
    assert reference.reference_train_bpe({}, 4, base_vocab=vocab) == expected


def test_permuted_byte_ids_in_base_vocab():
    # a pretrained vocabulary may give bytes other ids (cl100k does): results must map across
    perm = list(range(256))
    random.Random(5).shuffle(perm)
    base = {perm[b]: bytes([b]) for b in range(256)}
    counts = {b"hello hello": 3, b"yellow": 2}
    plain = train_bpe(counts, 5)
    moved = train_bpe(counts, 5, base_vocab=base)
    plain_vocab, moved_vocab = vocab_of(plain), dict(base)
    for a, b, x in moved:
        moved_vocab[x] = moved_vocab[a] + moved_vocab[b]
    assert [plain_vocab[x] for *_, x in plain] == [moved_vocab[x] for *_, x in moved]


def test_stops_when_nothing_left_and_rejects_bad_input():
    assert train_bpe({b"ab": 5}, 10) == [(97, 98, 256)]
    assert reference_train_bpe({b"ab": 5}, 10) == [(97, 98, 256)]
    with pytest.raises(ValueError, match="num_merges"):
        train_bpe({b"ab": 1}, -1)
    with pytest.raises(ValueError, match="single-byte"):
        train_bpe({b"ab": 1}, 1, base_vocab={0: b"a"})


# ---- the fast counting path for GPT-4's pattern (lines split once, ASCII through `re`) --------

def _plain_counts(docs, pattern):
    """The definition: findall on every document, counted, as UTF-8 bytes."""
    counts = Counter()
    for doc in docs:
        counts.update(regex.findall(pattern, doc))
    return {chunk.encode(): n for chunk, n in counts.items()}


def test_ascii_twin_splits_every_ascii_text_like_the_gpt4_pattern():
    full = regex.compile(GPT4_SPLIT_PATTERN)
    rng = random.Random(21)
    pieces = [chr(c) for c in range(128)] + [" ", "  ", "\n", "\r\n", "'", "'S", "ll", "a", "7"] * 4
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
        assert _GPT4_ASCII.findall(text) == full.findall(text), repr(text)


def test_line_class_is_unicode_whitespace_without_newlines():
    every = "".join(map(chr, range(0x110000)))
    assert set(re.findall(f"[{_W}]", every)) == set(regex.findall(r"\s", every)) - {"\r", "\n"}


def test_fast_counting_equals_findall_on_tricky_texts(monkeypatch):
    monkeypatch.setattr(trainer, "_BATCH_CHARS", 300)  # many batches: lines repeat across them
    rng = random.Random(8)
    alphabet = [" ", " ", "  ", "\n", "\n", "\r", "\r\n", "\t", "\x0b", "\x85", "\u2028", "\u3000",
                "\x1c", "a", "Z", "é", "1", "²", "'", "s", "LL", ".", ":", "(", "<|x|>"]
    for trial in range(300):
        docs = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
                for _ in range(rng.randint(1, 30))]
        docs += rng.sample(docs, k=len(docs) // 2)  # repeated documents: repeated lines
        got = count_chunks(docs, GPT4_SPLIT_PATTERN, special_tokens=["<|x|>"])
        pieces = [p for doc in docs for p in doc.split("<|x|>")]
        assert got == _plain_counts(pieces, GPT4_SPLIT_PATTERN), (trial, docs)


def test_fast_counting_and_training_on_real_text(corpus_text):
    text = corpus_text[:40_000]
    docs = [text[i:i + 2000] for i in range(0, len(text), 2000)]
    counts = count_chunks(docs, GPT4_SPLIT_PATTERN)
    assert counts == _plain_counts(docs, GPT4_SPLIT_PATTERN)
    assert count_chunks(docs, GPT4_SPLIT_PATTERN, workers=2) == counts
    assert train_bpe(counts, 100) == reference_train_bpe(counts, 100)


def test_fast_equals_reference_on_random_texts_gpt4_pattern():
    rng = random.Random(99)
    for trial in range(150):
        docs = _random_docs(rng)
        counts = count_chunks(docs, GPT4_SPLIT_PATTERN)
        n = rng.randint(0, 50)
        assert train_bpe(counts, n) == reference_train_bpe(counts, n), (trial, docs, n)


def test_a_failing_worker_raises_instead_of_hanging(monkeypatch):
    if os.name != "posix":
        pytest.skip("the patched function reaches workers only when they are forked")

    def broken(job, docs, counts):
        raise MemoryError("simulated")

    monkeypatch.setattr(trainer, "_BATCH_CHARS", 10)
    monkeypatch.setattr(trainer, "_count_batch", broken)
    with pytest.raises(RuntimeError, match="worker failed"):
        count_chunks(["some text"] * 20, None, workers=2)


def test_counts_say_how_much_text_no_chunk_covers(monkeypatch):
    # r"\w+" skips spaces and punctuation; the specials are cut out before, so they never count
    docs = ["ab, cd!", "<|s|>e f"] * 3
    counts = count_chunks(docs, r"\w+", special_tokens=["<|s|>"])
    assert (counts.text_chars, counts.chunk_chars, counts.dropped_chars) == (30, 18, 12)
    assert count_chunks(docs, GPT4_SPLIT_PATTERN, special_tokens=["<|s|>"]).dropped_chars == 0
    assert count_chunks(docs, None).dropped_chars == 0
    monkeypatch.setattr(trainer, "_BATCH_CHARS", 5)  # several batches: the workers add it up
    parallel = count_chunks(docs, r"\w+", special_tokens=["<|s|>"], workers=2)
    assert (parallel, parallel.text_chars, parallel.chunk_chars) == (counts, 30, 18)


def test_ids_in_the_surrogate_range_train():
    # the fast trainer holds ids as characters; 0xd800-0xdfff are surrogates there, and a
    # vocabulary past 55,296 ids (cl100k, extended) has them
    vocab = {i: bytes([i]) for i in range(256)}
    base = {(97, 98): 0xd800, (0xd800, 99): 0xd801}
    vocab |= {0xd800: b"ab", 0xd801: b"abc"}
    counts = {b"abcabc abc": 2, b"xabc": 1}
    got = train_bpe(counts, 3, base_vocab=vocab, base_merges=base, next_id=0xd802)
    assert got == reference_train_bpe(counts, 3, base_vocab=vocab, base_merges=base, next_id=0xd802)
    assert got[0] == (0xd801, 0xd801, 0xd802)
