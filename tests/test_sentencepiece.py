"""SentencePiece BPE: the protobuf reader, hand-worked encodes and merges, parity with the
sentencepiece library on the Mistral 7B tokenizers (v1 and v7) and on random small models we
save, and training parity with spm_train.

The library (pip install sentencepiece) and the mistral-common wheel (pip-downloaded once into
data/cache/mistral-common/) are optional: the tests that need them skip without them.
"""
import inspect
import random
import re
import subprocess
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from tokenizer import downloads, load_any, protobuf
from tokenizer.protobuf import Field
from tokenizer.sentencepiece import (BYTE, CONTROL, MISTRAL_MODELS, NORMAL, UNKNOWN, UNUSED,
                                     USER_DEFINED, SentencePieceTokenizer, byte_piece,
                                     is_sentencepiece_model, mistral_model_path)
from tokenizer import sentencepiece_trainer
from tokenizer.sentencepiece_trainer import bpe_merges, count_words, piece_validator



# ---- the protobuf wire format ----------------------------------------------------------------

INNER = {1: Field("piece", "string"), 2: Field("score", "float"), 3: Field("type", "enum")}
OUTER = {1: Field("items", INNER, True), 2: Field("n", "int32"), 3: Field("flag", "bool"),
         4: Field("big", "uint64"), 5: Field("blob", "bytes")}
# built by hand from the wire-format rules (key = field << 3 | wire type):
HAND_MESSAGE = bytes([
    0x0A, 0x0B,                    # field 1 (items), LEN, 11 bytes follow
    0x0A, 0x02, 0x68, 0x69,        #   field 1 (piece), LEN 2, "hi"
    0x15, 0x00, 0x00, 0xC0, 0x3F,  #   field 2 (score), I32, 1.5 little-endian float
    0x18, 0x03,                    #   field 3 (type), varint 3
    0x0A, 0x00,                    # field 1 (items) again: an empty message (all defaults)
    0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01,  # field 2 (n) = -1
    0x18, 0x01,                    # field 3 (flag) = true
    0x20, 0xAC, 0x02,              # field 4 (big) = 300 (0b10_0101100 -> AC 02)
    0x78, 0x07,                    # field 15, unknown to the schema: skipped
    0x2A, 0x02, 0x00, 0xFF,        # field 5 (blob), LEN 2
])


def test_protobuf_reads_a_hand_built_message():
    msg = protobuf.decode(HAND_MESSAGE, OUTER)
    assert msg == {"items": [{"piece": "hi", "score": 1.5, "type": 3}, {}], "n": -1,
                   "flag": True, "big": 300, "blob": b"\x00\xff"}


def test_protobuf_writes_the_same_bytes_back():
    msg = protobuf.decode(HAND_MESSAGE, OUTER)
    without_unknown = HAND_MESSAGE.replace(bytes([0x78, 0x07]), b"")
    assert protobuf.encode(msg, OUTER) == without_unknown
    assert protobuf.write_varint(300) == b"\xac\x02"
    assert protobuf.read_varint(b"\xac\x02", 0) == (300, 2)


@pytest.mark.parametrize("bad, why", [
    (HAND_MESSAGE[:5], "needs 11 bytes, only 3 left"),     # cut inside the first item
    (b"\x10\xff", "truncated varint"),
    (b"\x0b", "unsupported wire type 3"),     # a group
    (b"\x15\x00\x00\x00\x00", "does not fit"),  # field 2 as a float, the schema says int32
])
def test_protobuf_rejects_malformed_bytes(bad, why):
    with pytest.raises(protobuf.ProtobufError, match=why):
        protobuf.decode(bad, OUTER)


# ---- hand-built models, hand-worked expectations ---------------------------------------------

def tiny(pieces, byte_fallback=False, **normalizer):
    """A model from (piece, score, type) triples after <unk>, <s>, </s> (ids 0, 1, 2)."""
    specials = [("<unk>", 0.0, UNKNOWN), ("<s>", 0.0, CONTROL), ("</s>", 0.0, CONTROL)]
    if byte_fallback:
        specials += [(byte_piece(b), 0.0, BYTE) for b in range(256)]
    spec = dict(name="identity", add_dummy_prefix=True, remove_extra_whitespaces=False)
    spec.update(normalizer)
    return SentencePieceTokenizer(specials + list(pieces),
                                  dict(model_type=2, byte_fallback=byte_fallback), spec)


def pieces_of(tok, ids):
    return [tok.pieces[i] for i in ids]


def test_merges_follow_scores_not_position():
    # "aaab" -> "▁aaab" -> symbols ▁ a a a b. Candidates: aa@1 (-1), aa@2 (-1), ab@3 (-2).
    # 1. aa@1 (best score, leftmost of the tie):  ▁ aa a b; new candidate ▁aa (-3)
    # 2. ab@3 (-2 beats -3; aa@2 is stale):       ▁ aa ab
    # 3. ▁aa (-3):                                ▁aa ab    (aaab is no piece: done)
    tok = tiny([("aa", -1.0, NORMAL), ("ab", -2.0, NORMAL), ("▁aa", -3.0, NORMAL),
                ("▁", -10.0, NORMAL), ("a", -11.0, NORMAL), ("b", -12.0, NORMAL)])
    assert tok.normalize("aaab") == "▁aaab"
    assert pieces_of(tok, tok.encode("aaab")) == ["▁aa", "ab"]
    assert tok.decode(tok.encode("aaab")) == "aaab"


@pytest.mark.parametrize("ba_score, expected", [(-1.0, ["ab", "a"]), (-0.5, ["a", "ba"])])
def test_equal_scores_go_to_the_leftmost_pair(ba_score, expected):
    tok = tiny([("ab", -1.0, NORMAL), ("ba", ba_score, NORMAL), ("a", -5.0, NORMAL),
                ("b", -6.0, NORMAL)], add_dummy_prefix=False)
    assert pieces_of(tok, tok.encode("aba")) == expected


def test_unused_pieces_are_split_back():
    # "aa" is UNUSED: it may form mid-merge (so "aab" can), but never survives as output
    tok = tiny([("aa", -1.0, UNUSED), ("aab", -2.0, NORMAL), ("a", -5.0, NORMAL),
                ("b", -6.0, NORMAL)], add_dummy_prefix=False)
    assert pieces_of(tok, tok.encode("aab")) == ["aab"]
    assert pieces_of(tok, tok.encode("aa")) == ["a", "a"]


def test_user_defined_pieces_are_cut_first_and_never_merged():
    tok = tiny([("ab", -1.0, NORMAL), ("b", 0.0, USER_DEFINED), ("[X]", 0.0, USER_DEFINED),
                ("[X]]", 0.0, USER_DEFINED), ("a", -5.0, NORMAL), ("]", -6.0, NORMAL)],
               add_dummy_prefix=False)
    assert pieces_of(tok, tok.encode("ab")) == ["a", "b"]          # b is frozen
    assert pieces_of(tok, tok.encode("a[X]]]")) == ["a", "[X]]", "]"]  # longest match


def test_unknown_characters_without_and_with_byte_fallback():
    pieces = [("▁", -1.0, NORMAL), ("a", -2.0, NORMAL)]
    no_fallback = tiny(pieces)
    # a run of unknown characters is a single <unk>; decode shows it as " ⁇ "
    assert pieces_of(no_fallback, no_fallback.encode("aéé€a")) == ["▁", "a", "<unk>", "a"]
    assert no_fallback.decode(no_fallback.encode("aé")) == "a \u2047 "
    fallback = tiny(pieces, byte_fallback=True)
    assert pieces_of(fallback, fallback.encode("aé€")) == \
        ["▁", "a", "<0xC3>", "<0xA9>", "<0xE2>", "<0x82>", "<0xAC>"]
    assert fallback.decode(fallback.encode("aé€")) == "aé€"


def test_text_never_becomes_a_control_piece():
    tok = tiny([(c, -1.0 - i, NORMAL) for i, c in enumerate("<s>/▁")])
    ids = tok.encode("<s></s>")
    assert 1 not in ids and 2 not in ids
    assert tok.decode(ids) == "<s></s>"
    assert tok.encode("", add_bos=True, add_eos=True) == [1, 2]
    assert tok.encode("s", add_bos=True) == [1] + tok.encode("s")


def test_whitespace_rules():
    pieces = [("▁", -1.0, NORMAL), ("a", -2.0, NORMAL)]
    assert tiny(pieces).normalize("  a  a ") == "▁▁▁a▁▁a▁"
    assert tiny(pieces).normalize("") == ""
    assert tiny(pieces).normalize(" ") == "▁▁"
    # remove_extra_whitespaces: leading and trailing spaces go, inner runs become one
    assert tiny(pieces, remove_extra_whitespaces=True).normalize("  a  a ") == "▁a▁a"
    assert tiny(pieces, remove_extra_whitespaces=True).normalize("   ") == ""
    assert tiny(pieces, add_dummy_prefix=False).normalize("a a") == "a▁a"
    assert tiny(pieces).normalize("\ta\n") == "▁\ta\n"  # only ' ' is a space


def test_decode_removes_the_dummy_prefix_and_replaces_bad_bytes_one_by_one():
    tok = tiny([("▁", -1.0, NORMAL), ("a", -2.0, NORMAL), ("▁a", -3.0, NORMAL)],
               byte_fallback=True)
    ids = {p: i for i, p in enumerate(tok.pieces)}
    assert tok.decode([ids["▁a"], ids["▁a"]]) == "a a"
    assert tok.decode([1, ids["▁"], ids["▁a"]]) == " a"  # only the first ▁ is the dummy
    # E2 82 is a truncated 3-byte sequence: each byte becomes its own U+FFFD
    bad = [ids["<0xE2>"], ids["<0x82>"], ids["<0x41>"]]
    assert tok.decode(bad) == "\ufffd\ufffdA"
    assert tok.decode_bytes(bad) == b"\xe2\x82A"
    assert tok.decode_bytes([ids["▁a"], ids["<0xC3>"], ids["<0xA9>"]]) == "aé".encode()
    with pytest.raises(ValueError, match="invalid token id"):
        tok.decode([tok.n_vocab])


def test_pickles_without_its_cache():
    import pickle

    tok = tiny([("▁", -1.0, NORMAL), ("a", -2.0, NORMAL), ("▁a", -3.0, NORMAL)])
    ids = tok.encode("a a aa")
    assert tok._cache
    again = pickle.loads(pickle.dumps(tok))
    assert again._cache == {}
    assert again.encode("a a aa") == ids


def test_lone_surrogates_become_replacement_characters():
    tok = tiny([("▁", -1.0, NORMAL), ("a", -2.0, NORMAL)], byte_fallback=True)
    assert tok.encode("a\ud800a") == tok.encode("a\ufffda")
    assert tok.encode("\ud83d\ude00") == tok.encode("😀")  # a surrogate pair is its character


def test_only_bpe_with_the_identity_normalizer_is_accepted():
    pieces = [("<unk>", 0.0, UNKNOWN), ("a", -1.0, NORMAL)]
    with pytest.raises(NotImplementedError, match="nmt_nfkc"):
        SentencePieceTokenizer(pieces, dict(model_type=2),
                               dict(name="nmt_nfkc", precompiled_charsmap=b"\x01\x02"))
    with pytest.raises(NotImplementedError, match="UNIGRAM"):
        SentencePieceTokenizer(pieces, {}, {})  # model_type's default is UNIGRAM
    with pytest.raises(ValueError, match="byte piece <0x00> is missing"):
        SentencePieceTokenizer(pieces, dict(model_type=2, byte_fallback=True), {})


def test_load_names_the_file_when_the_model_is_unsupported(tmp_path):
    pieces = [("<unk>", 0.0, UNKNOWN), ("a", -1.0, NORMAL)]
    nfkc = SentencePieceTokenizer(pieces, dict(model_type=2), dict(name="identity"))
    nfkc.normalizer_spec.update(name="nmt_nfkc", precompiled_charsmap=b"\x01\x02")
    path = tmp_path / "nfkc.model"
    path.write_bytes(nfkc.to_bytes())
    with pytest.raises(NotImplementedError, match=r"nfkc\.model: normalizer 'nmt_nfkc'"):
        SentencePieceTokenizer.load(path)


def test_a_truncated_file_never_loads(tmp_path):
    data = tiny([("▁", -1.0, NORMAL), ("a", -2.0, NORMAL)]).to_bytes()
    path = tmp_path / "cut.model"
    for size in range(len(data)):
        path.write_bytes(data[:size])
        with pytest.raises(ValueError, match="cut.model: "):
            SentencePieceTokenizer.load(path)


def test_load_reports_the_file_and_detects_the_format(tmp_path):
    tok = tiny([("▁", -1.0, NORMAL), ("a", -2.0, NORMAL)])
    path = tmp_path / "tiny.model"
    tok.save_sentencepiece(path)
    head = path.read_bytes()[:16]
    assert is_sentencepiece_model(head)
    assert not is_sentencepiece_model(b"vocablab tokenizer v1\n")
    assert not is_sentencepiece_model(b"minbpe v1\n")
    again = SentencePieceTokenizer.load(path)
    assert (again.pieces, again.scores, again.types) == (tok.pieces, tok.scores, tok.types)
    assert again.name == "tiny"
    junk = tmp_path / "junk.model"
    junk.write_bytes(b"vocablab tokenizer v1\n")
    with pytest.raises(ValueError, match="junk.model: not a SentencePiece .model file"):
        SentencePieceTokenizer.load(junk)


# ---- parity with the sentencepiece library ---------------------------------------------------

@pytest.fixture(scope="session")
def spm():
    return pytest.importorskip("sentencepiece")


@pytest.fixture(scope="session", params=sorted(MISTRAL_MODELS))
def mistral_file(request):
    """One Mistral .model file, out of the mistral-common wheel (downloaded once per machine
    into ~/.cache/vocablab, see tokenizer/downloads.py)."""
    try:
        return mistral_model_path(request.param)
    except downloads.DownloadError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def mistral(mistral_file, spm):
    """(ours, the library's processor, the file's bytes) for one Mistral model."""
    return (SentencePieceTokenizer.load(mistral_file),
            spm.SentencePieceProcessor(model_file=str(mistral_file)), mistral_file.read_bytes())


PARITY_TEXTS = [
    "", " ", "  ", "Hello world", "hello   world  ", "  leading and trailing  ",
    "The quick brown fox jumps over the lazy dog.",
    "def f(x):\n    return x ** 2  # square\n\n\tif x:\r\n\t\tpass\n",
    "日本語のテキスト、中文文本。한국어 텍스트", "😀👍🏽 family: 👨‍👩‍👧 flags 🇫🇷🇯🇵",
    "naïve café Ωμέγα Привет мир مرحبا שלום हिन्दी ไทย", "a\u0301 e\u0308 \ufb01",
    "12345 3.14159 1,000,000 0x1F 2024-11-14", "\t\n \n\n\t\t  \r\n",
    "<s> [INST] hi [/INST] </s> <unk> <pad> <0x41> [TOOL_CALLS]",
    "[REF]a[/REF] [REFERENCE_DOC_1][REFERENCE_DOC_10] [REFERENCE_DOC_19]x",
    "▁▁x ▁ ⁇", "\x00\x01\x7f\x80\u200b\ufeff\ufffd", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \U0010fffd",
]


def stdlib_slice():
    """About 20 KB of real text: a standard-library module's source, read from disk."""
    return open(inspect.getsourcefile(inspect), encoding="utf-8").read()[:20_000]


def test_mistral_encode_matches_the_library(mistral):
    ours, ref, _ = mistral
    for text in PARITY_TEXTS + [stdlib_slice()]:
        assert ours.encode(text) == ref.encode(text), text[:60]
        assert ours.encode(text, add_bos=True, add_eos=True) == \
            ref.encode(text, add_bos=True, add_eos=True), text[:60]


def test_mistral_random_text_matches_the_library(mistral):
    ours, ref, _ = mistral
    rng = random.Random(1)
    # ASCII, Latin-1, Greek, Cyrillic, CJK, Hangul, emoji, and the odd rare code point
    ranges = [(0x20, 0x7E), (0xA0, 0xFF), (0x391, 0x3C9), (0x410, 0x44F), (0x4E00, 0x9FFF),
              (0xAC00, 0xD7A3), (0x1F300, 0x1F64F), (0x1, 0x10FFFF)]
    for _ in range(300):
        chars = []
        for _ in range(rng.randint(0, 40)):
            lo, hi = rng.choice(ranges)
            c = chr(rng.randint(lo, hi))
            chars.append(" " if "\ud800" <= c <= "\udfff" else c)
            if rng.random() < 0.2:
                chars.append(rng.choice(["  ", " ", "\n", "\t", "12", "▁", "[INST]", "[REF]"]))
        text = "".join(chars)
        assert ours.encode(text) == ref.encode(text), repr(text)


def test_mistral_decode_matches_the_library(mistral):
    ours, ref, _ = mistral
    for text in PARITY_TEXTS + [stdlib_slice()]:
        ids = ref.encode(text, add_bos=True)
        assert ours.decode(ids) == ref.decode(ids), text[:60]
        # lossless, except that a literal ▁ in the text comes back as a space
        assert ours.decode(ids) == text.replace("▁", " "), text[:60]
    rng = random.Random(0)
    byte_ids = [i for i, t in enumerate(ours.types) if t == BYTE]
    for _ in range(300):  # arbitrary id sequences: control, byte runs, bad UTF-8, unk
        ids = [rng.choice(byte_ids) if rng.random() < 0.5 else rng.randrange(ours.n_vocab)
               for _ in range(rng.randint(0, 12))]
        assert ours.decode(ids) == ref.decode(ids), ids


def test_mistral_lone_surrogates(mistral):
    ours, ref, _ = mistral
    # the library refuses a str that has no UTF-8 form; we encode it as tiktoken does
    assert ours.encode("x\ud800y \udfff") == ref.encode("x\ufffdy \ufffd")


def test_mistral_model_facts(mistral):
    ours, ref, data = mistral
    assert ours.n_vocab == ref.get_piece_size() in (32000, 32768)
    assert (ours.unk_id, ours.bos_id, ours.eos_id) == (ref.unk_id(), ref.bos_id(), ref.eos_id())
    assert ours.special_tokens == {ref.id_to_piece(i): i for i in range(ref.get_piece_size())
                                   if ref.is_control(i)}
    assert all(ours.pieces[i] == ref.id_to_piece(i) and ours.scores[i] == ref.get_score(i)
               for i in range(ours.n_vocab))
    assert is_sentencepiece_model(data[:16])


def test_mistral_save_round_trip(mistral, spm, tmp_path):
    ours, ref, data = mistral
    path = tmp_path / "again.model"
    ours.save_sentencepiece(path)
    if ours.n_vocab == 32000:  # v1 was written by spm_train, which omits NORMAL types as we do
        assert path.read_bytes() == data
    again = spm.SentencePieceProcessor(model_file=str(path))
    for text in PARITY_TEXTS:
        assert again.encode(text) == ref.encode(text)


def random_tiny_model(seed, words):
    """A small random BPE model exercising every piece type and normalizer option."""
    r = random.Random(seed)
    byte_fallback = r.random() < 0.5
    pieces = [("<unk>", 0.0, UNKNOWN), ("<s>", 0.0, CONTROL), ("</s>", 0.0, CONTROL)]
    if r.random() < 0.3:
        pieces.append(("d", 0.0, CONTROL))  # a control piece spelled by one character
    if byte_fallback:
        pieces += [(byte_piece(b), 0.0, BYTE) for b in range(256)]
    seen = {p for p, _, _ in pieces}
    for user in ["bb", "c", "ca", "[X]", "<s>", " a", "é😀"] + ([] if words else ["a▁b"]):
        if r.random() < 0.25 and user not in seen:
            pieces.append((user, 0.0, USER_DEFINED))
            seen.add(user)
    score = -1.0
    if words:  # pieces as split_by_whitespace training makes them: ▁ only at the front
        candidates = sorted({"▁" * r.randint(0, 2) + "".join(r.choice("abcé") for _ in
                             range(r.randint(1, 4))) for _ in range(30)} | {"▁▁", "▁▁▁"})
    else:
        candidates = sorted({"".join(r.choice("abc▁é") for _ in range(r.randint(2, 5)))
                             for _ in range(30)})
    for piece in candidates + [c for c in "abc▁é" if r.random() < 0.85]:
        if piece not in seen:
            kind = UNUSED if len(piece) > 1 and not words and r.random() < 0.2 else NORMAL
            tie = r.random() < 0.3  # equal scores, to exercise the leftmost rule
            pieces.append((piece, r.choice([-3.0, -5.0]) if tie else score, kind))
            seen.add(piece)
            score -= 1
    trainer = dict(model_type=2, vocab_size=len(pieces), byte_fallback=byte_fallback,
                   treat_whitespace_as_suffix=not words and r.random() < 0.15)
    normalizer = dict(name="identity", add_dummy_prefix=r.random() < 0.7,
                      remove_extra_whitespaces=r.random() < 0.5,
                      escape_whitespaces=words or r.random() < 0.85)
    return SentencePieceTokenizer(pieces, trainer, normalizer)


@pytest.mark.parametrize("words", [False, True], ids=["any-pieces", "word-pieces"])
def test_random_tiny_models_match_the_library(spm, tmp_path, words):
    """Saved by us, loaded by the library: every option and piece type, ids and decode equal.

    With word-like pieces the encoder takes its cached chunk-by-chunk path; check it does.
    """
    for seed in range(100):
        ours = random_tiny_model(seed, words)
        assert (ours._chunks is not None) == words
        path = tmp_path / f"tiny{seed}.model"
        ours.save_sentencepiece(path)
        ref = spm.SentencePieceProcessor(model_file=str(path))
        r = random.Random(seed + 1000)
        for _ in range(20):
            text = "".join(r.choice("ab c▁é😀  xd[X]<s>\t") for _ in range(r.randint(0, 25)))
            assert ours.encode(text) == ref.encode(text), (seed, text)
            ids = [r.randrange(ours.n_vocab) for _ in range(r.randint(0, 8))]
            assert ours.decode(ids) == ref.decode(ids), (seed, ids)


# ---- training --------------------------------------------------------------------------------

def test_training_by_hand():
    # "aaabdaaabac", one sentence, one word (no spaces, no dummy prefix). All 4 characters are
    # kept (a 7, b 2, then c and d with 1 each: lower code point first). Pair counts:
    # aa 4 (overlaps count, as in spm_train), ab 2, bd da ba ac 1.
    # 1. aa (4)                     aa a b d aa a b a c
    # 2. ab (2) beats aaa (2): shorter piece first        aa ab d aa ab a c
    # 3. aaab (2)                   aaab d aaab a c
    # 4. ac: all pairs count 1 now, and ac is the shortest      aaab d aaab ac
    # 5. aaabd: ties daaab in count and length, and is the smaller string
    tok = SentencePieceTokenizer().train("aaabdaaabac", 3 + 4 + 5, byte_fallback=False,
                                         add_dummy_prefix=False)
    assert tok.pieces == ["<unk>", "<s>", "</s>", "aa", "ab", "aaab", "ac", "aaabd",
                          "a", "b", "c", "d"]
    assert tok.scores[3:] == [-float(k) for k in range(9)]
    assert pieces_of(tok, tok.encode("aaabdaaabac")) == ["aaabd", "aaab", "ac"]


def test_training_layout_and_coverage():
    text = "hello world\n" * 20 + "x\n"  # x is 1 of 242 characters: below 0.995 coverage
    # 3 specials, 256 bytes, 8 characters (▁ h e l o w r d), 5 merges
    tok = SentencePieceTokenizer().train(text, 3 + 256 + 8 + 5, character_coverage=0.995)
    assert tok.pieces[:4] == ["<unk>", "<s>", "</s>", "<0x00>"] and tok.pieces[258] == "<0xFF>"
    assert "x" not in tok.pieces and "▁" in tok.pieces and tok.n_vocab == 272
    assert pieces_of(tok, tok.encode("x")) == ["▁", "<0x78>"]  # byte fallback
    assert tok.decode(tok.encode("hello world x\n")) == "hello world x\n"
    with pytest.raises(ValueError, match="too small"):
        SentencePieceTokenizer().train(text, 100)


def test_truncated_equals_training_at_that_size():
    text = stdlib_slice()
    big = SentencePieceTokenizer().train(text, 700, split_digits=True)
    for size in (700, 600, 450):
        small = SentencePieceTokenizer().train(text, size, split_digits=True)
        cut = big.truncated(size)
        assert (cut.pieces, cut.scores, cut.types) == (small.pieces, small.scores, small.types)
        assert cut.trainer_spec["vocab_size"] == size
    with pytest.raises(ValueError, match="vocab_size must be between"):
        big.truncated(800)


SPM_TRAIN_CONFIGS = [
    dict(),
    dict(split_digits=True, byte_fallback=False, character_coverage=0.99),
    dict(allow_whitespace_only_pieces=True, user_defined_symbols=["[U]", "def"],
         max_piece_length=6),
    dict(add_dummy_prefix=False, split_by_whitespace=False),
]


@pytest.mark.parametrize("config", SPM_TRAIN_CONFIGS, ids=lambda c: ",".join(c) or "defaults")
def test_training_matches_spm_train(spm, tmp_path, config):
    """Same corpus and options: the same pieces, scores and types as spm_train, and the model
    we save encodes in the library exactly as we do. (Small corpora only: on large ones
    spm_train's every-100-merges re-ranking of candidate pairs can pick another pair.)"""
    text = stdlib_slice()[:15_000] + "\nnaïve café 日本語 12345 [U] x[U]y ✓✓✓\n"
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(text, encoding="utf-8")
    ours = SentencePieceTokenizer().train(text, 800, **config)
    options = dict(config, byte_fallback=config.get("byte_fallback", True))
    if "max_piece_length" in options:
        options["max_sentencepiece_length"] = options.pop("max_piece_length")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(tmp_path / "ref"), model_type="bpe",
        vocab_size=800, normalization_rule_name="identity", remove_extra_whitespaces=False,
        split_by_unicode_script=False, max_sentence_length=1 << 20, num_threads=1,
        minloglevel=2, **options)
    ref = SentencePieceTokenizer.load(tmp_path / "ref.model")
    assert (ours.pieces, ours.scores, ours.types) == (ref.pieces, ref.scores, ref.types)
    ours.save_sentencepiece(tmp_path / "ours.model")
    library = spm.SentencePieceProcessor(model_file=str(tmp_path / "ours.model"))
    for sample in PARITY_TEXTS + [text[:3000]]:
        assert ours.encode(sample) == library.encode(sample), sample[:60]
        assert ours.decode(ours.encode(sample)) == library.decode(library.encode(sample))


def test_the_bytes_behind_the_ids_are_the_texts_utf8(mistral_file):
    """What bits per byte divides by: the dummy-prefix space is not in the text, a ▁ is one
    space byte, a byte piece one byte; so the ids of a text decode to exactly its UTF-8."""
    import numpy as np

    ours = SentencePieceTokenizer.load(mistral_file)
    for text in PARITY_TEXTS + [stdlib_slice()]:
        if "▁" in text:  # a literal ▁ comes back as a space: the one lossy case
            continue
        ids = ours.encode(text, add_bos=True)
        assert ours.decode_bytes(ids) == text.encode("utf-8"), text[:60]
        assert ours.decode_bytes(np.array(ids, dtype=np.uint16)) == text.encode("utf-8")
        # the per-id table gives the same count, less the dummy prefix's one byte
        dummy = 1 if text and ours.pieces[ids[1]].startswith("▁") else 0
        assert sum(len(ours.vocab[i]) for i in ids) - dummy == len(text.encode("utf-8"))


def test_training_counts_overlapping_pairs():
    # "aaa" holds (a, a) twice, as spm_train counts: 10 lines of it give aa 20, which beats
    # bc's 15 (counted without overlaps aa would have 10 and bc would go first)
    tok = SentencePieceTokenizer().train("aaa\n" * 10 + "bc\n" * 15, 3 + 3 + 2,
                                         byte_fallback=False, add_dummy_prefix=False)
    assert tok.pieces[3:5] == ["aa", "bc"]


def reference_merges(word_counts, n_merges, valid):
    """The spec of sentencepiece_trainer.bpe_merges, the slow way: recount every pair after
    every merge (overlaps counted), take the most frequent valid pair whose piece is new
    (ties: shorter piece, smaller piece, smaller left part), merge it left to right."""
    words = {tuple(w): n for w, n in word_counts.items()}
    merged = []
    while len(merged) < n_merges:
        counts = Counter()
        for w, n in words.items():
            for pair in zip(w, w[1:]):
                counts[pair] += n
        candidates = [(-n, len(l + r), l + r, l, r) for (l, r), n in counts.items()
                      if valid(l + r) and l + r not in merged]
        if not candidates:
            break
        _, _, piece, left, right = min(candidates)
        merged.append(piece)
        new_words = Counter()
        for w, n in words.items():
            out, k = [], 0
            while k < len(w):
                if w[k:k + 2] == (left, right):
                    out.append(piece)
                    k += 2
                else:
                    out.append(w[k])
                    k += 1
            new_words[tuple(out)] += n
        words = new_words
    return merged


# a merge with at most _FEW places runs in Python, the others in numpy: test each path alone
BOTH_MERGE_PATHS = pytest.mark.parametrize("few", [0, 10**9], ids=["numpy", "python"])


@BOTH_MERGE_PATHS
@pytest.mark.parametrize("seed", range(40))
def test_merges_equal_the_slow_reference(seed, few, monkeypatch):
    """Small alphabets make runs that overlap ("aaaa") and merged occurrences that touch
    ("abab" -> x x), which the fast trainer handles in a separate path."""
    monkeypatch.setattr(sentencepiece_trainer, "_FEW", few)
    r = random.Random(seed)
    alphabet = r.choice(["ab", "aab", "abc", "ab▁", "aabbc▁▁"])
    words = Counter("".join(r.choice(alphabet) for _ in range(r.randint(1, 12)))
                    for _ in range(r.randint(5, 60)))
    valid = piece_validator(split_by_whitespace=r.random() < 0.5,
                            max_piece_length=r.choice([3, 5, 16]),
                            allow_whitespace_only_pieces=r.random() < 0.5)
    expected = reference_merges(words, 40, valid)
    assert bpe_merges(words, len(expected), valid) == expected


@BOTH_MERGE_PATHS
def test_merges_on_real_text_equal_the_slow_reference(few, monkeypatch):
    monkeypatch.setattr(sentencepiece_trainer, "_FEW", few)
    words = count_words(SentencePieceTokenizer().training_sentences(stdlib_slice()[:8000]))
    valid = piece_validator(split_by_whitespace=True, max_piece_length=16,
                            allow_whitespace_only_pieces=False)
    expected = reference_merges(words, 150, valid)
    assert bpe_merges(words, 150, valid) == expected
    # characters that join nothing cut words, as if they were spaces
    joins = lambda ch: ch not in "e_"  # noqa: E731
    cut = Counter()
    for word, n in words.items():
        for part in re.split("[e_]", word):
            cut[part] += n
    assert bpe_merges(words, 150, valid, joins) == reference_merges(cut, 150, valid)


@pytest.mark.parametrize("whitespace_only", [False, True])
def test_count_words_splits_as_the_rule_says(whitespace_only, monkeypatch):
    monkeypatch.setattr(sentencepiece_trainer, "_BATCH_CHARS", 10_000)  # many batches
    # the rule as a regex: a word starts at every ▁ (or run of ▁) and at a sentence start
    rule = re.compile("▁+[^▁]*|[^▁]+" if whitespace_only else "▁[^▁]*|[^▁]+")
    r = random.Random(0)
    # some ending in ▁, some starting without one
    sentences = ["".join(r.choice("ab▁▁é") for _ in range(r.randint(1, 9)))
                 for _ in range(25_000)]
    expected = Counter(w for s in sentences for w in rule.findall(s))
    assert count_words(sentences, allow_whitespace_only_pieces=whitespace_only) == expected
    assert count_words(sentences, allow_whitespace_only_pieces=whitespace_only,
                       workers=3) == expected
    assert count_words(sentences, split_by_whitespace=False) == Counter(sentences)


@pytest.mark.parametrize("dummy", [True, False])
def test_training_sentences_are_the_nonempty_lines(dummy):
    docs = ["\n\nfirst line\n\n\n  two  spaces\nlast", "one", "", "\n", "x\n\n"]
    prefix = "▁" if dummy else ""
    expected = [prefix + line.replace(" ", "▁") for doc in docs for line in doc.split("\n")
                if line]
    tok = SentencePieceTokenizer().train("a b", 3 + 256 + 3, add_dummy_prefix=dummy)
    got = [s for text in tok.training_sentences(docs) for s in text.split("\n")]
    assert got == expected


def test_training_is_the_same_for_any_number_of_workers(monkeypatch):
    monkeypatch.setattr(sentencepiece_trainer, "_BATCH_CHARS", 10_000)  # many batches
    text = "\n".join([stdlib_slice()] * 3)
    one = SentencePieceTokenizer().train(text, 600)
    two = SentencePieceTokenizer().train(text, 600, workers=2)
    assert (two.pieces, two.scores) == (one.pieces, one.scores)


def test_training_matches_spm_train_on_random_tiny_corpora(spm, tmp_path):
    """Tiny random corpora: ties everywhere, runs that overlap, pieces reachable by two
    splits, and corpora that run out of pairs before the vocabulary is full."""
    for seed in range(60):
        r = random.Random(seed)
        alphabet = r.choice(["ab", "abc ", "aab  c\n", "ab▁ é1"])
        text = "".join(r.choice(alphabet) for _ in range(r.randint(50, 400)))
        config = dict(split_digits=r.random() < 0.5, split_by_whitespace=r.random() < 0.7,
                      allow_whitespace_only_pieces=r.random() < 0.5,
                      add_dummy_prefix=r.random() < 0.5, max_piece_length=r.choice([3, 16]))
        try:
            ours = SentencePieceTokenizer().train(text, 3 + 256 + 30, **config)
        except ValueError:  # more characters than the vocabulary holds
            continue
        corpus = tmp_path / "corpus.txt"
        corpus.write_text(text, encoding="utf-8")
        options = dict(config)
        options["max_sentencepiece_length"] = options.pop("max_piece_length")
        spm.SentencePieceTrainer.train(
            input=str(corpus), model_prefix=str(tmp_path / "ref"), model_type="bpe",
            vocab_size=3 + 256 + 30, byte_fallback=True, normalization_rule_name="identity",
            remove_extra_whitespaces=False, split_by_unicode_script=False,
            max_sentence_length=1 << 20, hard_vocab_limit=False, num_threads=1, minloglevel=2,
            **options)
        ref = SentencePieceTokenizer.load(tmp_path / "ref.model")
        assert (ours.pieces, ours.scores) == (ref.pieces, ref.scores), (seed, config)


def test_a_wheel_whose_files_are_not_the_pinned_ones_is_refused(tmp_path, monkeypatch):
    """downloads.fetch (behind mistral_model_path) checks each file's sha256 before keeping it."""
    def fake_pip(cmd, **kwargs):  # "downloads" a wheel whose tokenizer file was changed
        dest = Path(cmd[cmd.index("-d") + 1]) / "mistral_common-1.13.1-py3-none-any.whl"
        with zipfile.ZipFile(dest, "w") as z:
            for member in downloads.WHEEL_FILES["mistral"][2]:
                z.writestr(member, b"not the real file")
        return subprocess.CompletedProcess(cmd, 0, "", "")
    monkeypatch.setattr(downloads.subprocess, "run", fake_pip)
    with pytest.raises(downloads.DownloadError, match="sha256"):
        mistral_model_path("v1", cache=tmp_path)
    assert not any(p.is_file() for p in tmp_path.rglob("*"))  # nothing unverified is kept
    with pytest.raises(ValueError, match="v1, v7"):
        mistral_model_path("v2", cache=tmp_path)


def test_mistral_by_short_name_everywhere_a_tokenizer_path_goes(mistral_file):
    """load_any("mistral") is Mistral 7B v0.1's model; each call hands out an independent copy."""
    tok = load_any("mistral")
    assert (tok.name, tok.n_vocab) == ("mistral", 32000)
    assert tok.encode("Hello world") == SentencePieceTokenizer.load(mistral_model_path("v1")).encode("Hello world")
    tok.name = "changed"
    assert load_any("mistral").name == "mistral"
