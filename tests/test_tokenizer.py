"""Core tokenizer behaviour: hand-worked training, round trips, special tokens, truncated/extend,
and the tiktoken fast path agreeing with the readable pure-Python encoder."""
import random

import numpy as np
import pytest

from tokenizer import GPT2_SPLIT_PATTERN, BasicTokenizer, RegexTokenizer, Tokenizer, load
from tokenizer.reference import reference_train_bpe
from tokenizer.trainer import count_chunks


def test_aaabdaaabac_by_hand():
    # Pair counts in "aaabdaaabac": aa 4, ab 2, others 1 -> merge (a, a) = 256 "aa".
    #   Z a b d Z a b a c  (Z = 256): Za 2, ab 2 tie. Our rule: the greater (bytes(left),
    #   bytes(right)) wins: (b"aa", b"a") > (b"a", b"b") since b"aa" > b"a" -> (256, a) = 257.
    #   Y b d Y b a c  (Y = 257): Yb 2 -> (257, b) = 258.  Encoding: X d X a c.
    tok = BasicTokenizer().train("aaabdaaabac", 256 + 3)
    assert tok.merges == {(97, 97): 256, (256, 97): 257, (257, 98): 258}
    assert tok.encode("aaabdaaabac") == [258, 100, 258, 97, 99]
    assert tok.decode([258, 100, 258, 97, 99]) == "aaabdaaabac"
    assert tok.vocab[258] == b"aaab"


def test_tie_rule_prefers_greatest_bytes_not_first_seen():
    # "abcd": ab, bc, cd all occur once; the greatest pair by bytes is (c, d) -> 256 "cd".
    # Then [a, b, cd]: (b"b", b"cd") > (b"a", b"b") -> (b, 256) = 257 "bcd"; then (a, 257) = 258.
    tok = BasicTokenizer().train(["abcd"], 256 + 3)
    assert list(tok.merges.items()) == [((99, 100), 256), ((98, 256), 257), ((97, 257), 258)]
    # order of documents does not matter, and no merge crosses a document
    docs = ["hello world", "low lower lowest", "yellow fellow"]
    a = RegexTokenizer().train(docs, 270)
    b = RegexTokenizer().train(list(reversed(docs)), 270)
    assert a.merges == b.merges
    assert BasicTokenizer().train(["ab", "ab"], 257).merges == {(97, 98): 256}
    with pytest.raises(ValueError, match="too large"):
        BasicTokenizer().train(["ab", "ab"], 258)  # "b" never precedes anything: 1 merge only


def test_train_rejects_bad_vocab_size():
    with pytest.raises(ValueError, match="vocab_size"):
        BasicTokenizer().train("hello", 255)


@pytest.fixture(scope="module")
def taylor(corpus_text):
    # the name stays from minbpe's Taylor Swift article; the text is one every machine has
    return corpus_text


@pytest.fixture(scope="module")
def trained(taylor):
    return RegexTokenizer().train(taylor, 1024, special_tokens=["<|endoftext|>", "<|end of doc|>"])


def test_trained_merges_are_the_reference_trainers(trained, taylor):
    # the tokenizer's training (fast trainer) against the slow readable spec, on the same chunks
    counts = count_chunks(taylor, trained.pattern, special_tokens=["<|endoftext|>", "<|end of doc|>"])
    want = reference_train_bpe(counts, 1024 - 256)
    assert [(a, b, c) for (a, b), c in trained.merges.items()] == want


def _random_unicode(rng, n):
    ranges = [(0x20, 0x7e), (0xa0, 0x24f), (0x370, 0x3ff), (0x400, 0x4ff), (0x4e00, 0x4fff),
              (0x1f300, 0x1f64f), (0x300, 0x36f)]
    out = []
    for _ in range(n):
        lo, hi = rng.choice(ranges)
        out.append(chr(rng.randint(lo, hi)) if rng.random() > 0.15 else rng.choice(" \n\t  "))
    return "".join(out)


def varied_texts(taylor):
    rng = random.Random(0)
    return [
        "", " ", "hello world", "Hello   world\n\n\n  x", "   \t\n  \r\n ",
        taylor[:3000], taylor[50000:52000],
        "def f(x):\n    return x ** 2  # square\n\tif x:\n\t\tpass\n",
        "1234567890 3.14159 1,000,000 0x1F", "I'm you're HE'LL we've", "naïve café 東京 😀👍🏽",
        _random_unicode(rng, 300), _random_unicode(rng, 300),
    ]


def test_round_trip_and_invalid_utf8(trained, taylor):
    for text in varied_texts(taylor):
        assert trained.decode(trained.encode(text)) == text
    # a 4-byte emoji with no merges stays 4 byte tokens; one alone is not valid UTF-8
    ids = trained.encode("\U0001fae0")
    assert trained.decode_bytes(ids) == "\U0001fae0".encode("utf-8")
    assert trained.decode(ids[:1]) == "\ufffd"
    assert trained.decode_bytes([0xff]) == b"\xff" and trained.decode([0xff]) == "\ufffd"
    # lone surrogates cannot be UTF-8: replaced like tiktoken does, on both paths
    assert trained.decode(trained.encode("a\ud800b")) == "a\ufffdb"
    with pytest.raises(ValueError, match="invalid token id"):
        trained.decode([10**6])


def test_special_tokens(trained):
    eot, doc = trained.special_tokens["<|endoftext|>"], trained.special_tokens["<|end of doc|>"]
    assert (eot, doc) == (1024, 1025) and trained.n_vocab == 1026
    text = "a<|endoftext|>b<|end of doc|>"
    with pytest.raises(ValueError, match=r"'<\|endoftext\|>'.*allowed_special"):
        trained.encode(text)  # none_raise is the default
    assert trained.encode(text, allowed_special="all") == (
        trained.encode_ordinary("a") + [eot] + trained.encode_ordinary("b") + [doc])
    plain = trained.encode(text, allowed_special="none")
    assert eot not in plain and doc not in plain and plain == trained.encode_ordinary(text)
    assert trained.decode(plain) == text
    # a set allows those names; any other special present still raises, naming it
    assert trained.encode("x<|endoftext|>", allowed_special={"<|endoftext|>"})[-1] == eot
    with pytest.raises(ValueError, match="end of doc"):
        trained.encode(text, allowed_special={"<|endoftext|>"})
    with pytest.raises(ValueError, match="unregistered"):
        trained.encode("x", allowed_special={"<|nope|>"})
    assert trained.decode([eot, doc]) == "<|endoftext|><|end of doc|>"
    assert trained.encode_batch(["a", "b<|endoftext|>"], allowed_special="all") == [
        trained.encode("a"), trained.encode_ordinary("b") + [eot]]
    with pytest.raises(ValueError, match="endoftext"):
        trained.encode_batch(["fine", "<|endoftext|>"])


def test_overlapping_specials_longest_wins():
    tok = BasicTokenizer()
    tok.register_special_tokens({"<|a|>": 300, "<|a|>b": 301, "<|a": 302})
    assert tok.encode("<|a|>b<|a|><|a", allowed_special="all") == [301, 300, 302]
    with pytest.raises(ValueError, match=r"'<\|a\|>b'"):
        tok.encode("x<|a|>b")
    with pytest.raises(ValueError, match="already the ordinary token"):
        tok.register_special_tokens({"<|b|>": 97})
    with pytest.raises(ValueError, match="already taken"):
        tok.register_special_tokens({"<|b|>": 300})
    with pytest.raises(ValueError, match="already registered"):
        tok.register_special_tokens({"<|a|>": 303})


def test_copy_is_equal_and_independent():
    tok = RegexTokenizer().train("aaabdaaabac aaab", 259, special_tokens=["<|endoftext|>"])
    dup = tok.copy()
    assert (type(dup), dup.merges, dup.vocab, dup.special_tokens, dup.pattern, dup.byte_ids) == (
        RegexTokenizer, tok.merges, tok.vocab, tok.special_tokens, tok.pattern, tok.byte_ids)
    dup.register_special_tokens({"<|domain|>": 260})
    dup.special_tokens["<|endoftext|>"] = 261  # even a direct edit of the dict
    assert tok.special_tokens == {"<|endoftext|>": 259} and tok.n_vocab == 260
    assert dup.encode("<|domain|>", allowed_special="all") == [260]
    assert tok.encode("<|domain|>", allowed_special="all") == tok.encode_ordinary("<|domain|>")


def test_truncated_equals_training_directly(taylor):
    text = taylor[:40000]
    big = RegexTokenizer().train(text, 420, special_tokens=["<|endoftext|>", "<|x|>"])
    small = RegexTokenizer().train(text, 300, special_tokens=["<|endoftext|>", "<|x|>"])
    cut = big.truncated(300)
    assert cut.merges == small.merges and cut.vocab == small.vocab
    assert cut.special_tokens == small.special_tokens == {"<|endoftext|>": 300, "<|x|>": 301}
    assert cut.encode(text[:2000]) == small.encode(text[:2000])
    with pytest.raises(ValueError, match=r"vocab_size must be an int in \[256, 420\], got 421"):
        big.truncated(421)


def test_extend_keeps_old_ids_and_continues_training(taylor):
    text = taylor[:40000]
    old = RegexTokenizer(GPT2_SPLIT_PATTERN).train(text, 300, special_tokens=["<|endoftext|>"])
    more = RegexTokenizer(GPT2_SPLIT_PATTERN).train(text, 340)
    ext = old.extend(text, 40)
    for idx, token in old.vocab.items():
        assert ext.vocab[idx] == token
    assert ext.special_tokens == {"<|endoftext|>": 300}
    new_ids = list(ext.merges.values())[40 - 80:]
    assert new_ids == list(range(301, 341))  # new ids start at n_vocab, after the special
    # continuing BPE on the same text learns what training further would have learned
    assert [ext.vocab[i] for i in ext.merges.values()] == [more.vocab[i] for i in more.merges.values()]
    sample = text[:3000] + "<|endoftext|>"
    ids = ext.encode(sample, allowed_special="all")
    assert ext.decode(ids) == sample and max(ids) <= 340


def test_tiktoken_fast_path_matches_pure_python(trained, taylor):
    enc = trained.to_tiktoken()
    assert trained.to_tiktoken() is enc  # cached
    pure = trained.copy()
    pure.use_tiktoken = False
    for text in varied_texts(taylor):
        assert trained.encode(text) == pure.encode(text) == enc.encode_ordinary(text)
    text = "x<|endoftext|>y <|end of doc|>"
    assert trained.encode(text, "all") == pure.encode(text, "all") == enc.encode(
        text, allowed_special="all")
    texts = [taylor[i:i + 500] for i in range(0, 5000, 500)]
    assert trained.encode_batch(texts) == [pure.encode(t) for t in texts]
    basic = BasicTokenizer().train(taylor[:20000], 300)
    pure_basic = basic.copy()
    pure_basic.use_tiktoken = False
    assert basic.encode(taylor[:2000]) == pure_basic.encode(taylor[:2000])


def test_fast_path_refuses_when_rank_order_would_differ(tmp_path):
    # merges (b,c) < (a,b) < (ab,c): the readable encoder turns "abc" into [a, bc] (no merge
    # (a, bc) exists); tiktoken, ranking by bytes, would join a + bc into "abc" (id 258).
    path = tmp_path / "odd.model"
    path.write_text("minbpe v1\n\n0\n98 99\n97 98\n257 99\n", encoding="utf-8")
    tok = load(path)
    with pytest.raises(ValueError, match="tiktoken"):
        tok.to_tiktoken()
    assert tok.encode("abc") == [97, 256]      # falls back to the exact pure-Python path
    assert tok.encode("abcd") == [97, 256, 100]
    assert tok.encode("ab") == [257]


def test_decode_rejects_ids_that_are_not_ints():
    # 65.0 == 65 and True == 1 as dict keys, so these used to decode as "A" and "\x01"
    tok = BasicTokenizer()
    with pytest.raises(TypeError, match=r"65\.0 \(float\) at position 1"):
        tok.decode([66, 65.0])
    with pytest.raises(TypeError, match=r"True \(bool\)"):
        tok.decode([True])
    with pytest.raises(TypeError, match="'A'"):
        tok.decode_bytes(["A"])
    assert tok.decode([np.int64(65), np.uint16(66), 67]) == "ABC"  # shard ids are numpy ints


def test_extend_with_too_little_text_raises_like_train():
    tok = BasicTokenizer().train("abab", 257)
    # "ab ab" (one chunk) continues with at most 2 more merges, not 10
    with pytest.raises(ValueError, match="n_new_merges 10 is too many.*only 2"):
        tok.extend(["ab ab"], 10)
    assert len(tok.extend(["ab ab"], 2).merges) == 3


def test_pattern_that_drops_text_is_refused():
    # r"\w+" never matches ", ", "! " or "!": 7 characters neither trained on nor encoded
    text = "hello, world! hello, world!"
    with pytest.raises(ValueError, match=r"leaves 7 of 27 characters \(25\.9%\) in no chunk"):
        RegexTokenizer(r"\w+").train(text, 260)
    tok = RegexTokenizer(r"\w+|\W+").train(text, 260)
    assert tok.decode(tok.encode(text)) == text
    with pytest.raises(ValueError, match="in no chunk"):
        RegexTokenizer(r"\w+").train_from_counts(count_chunks(text, r"\w+"), 260)


def test_from_merges_builds_any_class_without_its_init():
    trained = RegexTokenizer(GPT2_SPLIT_PATTERN).train(["hello hello world"], 262,
                                                        special_tokens=["<|endoftext|>"])
    triples = [(a, b, c) for (a, b), c in trained.merges.items()]
    rebuilt = RegexTokenizer.from_merges(triples, pattern=GPT2_SPLIT_PATTERN,
                                         special_tokens={"<|endoftext|>": 262}, name="mine")
    assert (type(rebuilt), rebuilt.name, rebuilt.merges, rebuilt.vocab, rebuilt.special_tokens) == (
        RegexTokenizer, "mine", trained.merges, trained.vocab, trained.special_tokens)
    assert rebuilt.encode("hello world") == trained.encode("hello world")
    # a permuted byte table: byte b has id 255 - b, and the merge joins ids, not bytes
    flipped = Tokenizer.from_merges({(255 - ord("a"), 255 - ord("b")): 256},
                                    byte_ids=[255 - b for b in range(256)])
    assert flipped.encode("abc") == [256, 255 - ord("c")] and flipped.decode([256]) == "ab"
    with pytest.raises(ValueError, match="already the ordinary token"):
        Tokenizer.from_merges({}, special_tokens={"<|x|>": 97})
    with pytest.raises(ValueError, match=r"merge #1 \(256, 300\) -> 257"):
        Tokenizer.from_merges([(97, 98, 256), (256, 300, 257)])
    with pytest.raises(ValueError, match="byte_ids must be 256 distinct"):
        Tokenizer.from_merges({}, byte_ids=[0] * 256)
