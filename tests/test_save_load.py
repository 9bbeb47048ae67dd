"""The .model file: round trips for every class, minbpe v1 files, and errors that say where."""
import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tokenizer import GPT2_SPLIT_PATTERN, BasicTokenizer, RegexTokenizer, load

DOCS = ["the quick brown fox jumps over the lazy dog. " * 3, "Pack my box with five dozen jugs!",
        "naïve café 東京 😀😀 1234567", "    indented\n\tcode()\n"]
PROBE = "The quick fox 😀 café\n\tcode() 1234567 <|endoftext|>"


def _tokenizers():
    specials = ["<|endoftext|>", "end of text", '"quoted" \\ ü']
    basic = BasicTokenizer().train(DOCS, 300, special_tokens=specials)
    gpt4 = RegexTokenizer().train(DOCS, 300, special_tokens=specials)
    gpt2 = RegexTokenizer(GPT2_SPLIT_PATTERN).train(DOCS, 290)
    extended = gpt4.extend(["zzz yyy zzz yyy zzz"], 4)  # new ids after the specials
    return [basic, gpt4, gpt2, extended]


@pytest.mark.parametrize("index", range(4))
def test_round_trip_every_class(tmp_path, index):
    tok = _tokenizers()[index]
    tok.save(tmp_path / "sub" / "tok")
    assert (tmp_path / "sub" / "tok.vocab").read_text(encoding="utf-8").strip()
    loaded = load(tmp_path / "sub" / "tok.model")
    assert type(loaded) is type(tok)
    assert (loaded.pattern, loaded.merges, loaded.vocab, loaded.special_tokens, loaded.name) == (
        tok.pattern, tok.merges, tok.vocab, tok.special_tokens, tok.name)
    assert loaded.encode(PROBE, allowed_special="all") == tok.encode(PROBE, allowed_special="all")
    assert [p.name for p in (tmp_path / "sub").iterdir() if p.name.endswith(".tmp")] == []


def test_save_tiktoken_is_the_standard_rank_file(tmp_path):
    tok = RegexTokenizer().train(DOCS, 300)
    tok.save_tiktoken(tmp_path / "t.tiktoken")
    lines = (tmp_path / "t.tiktoken").read_text(encoding="ascii").splitlines()
    ranks = {base64.b64decode(tok_b64): int(rank) for tok_b64, rank in (ln.split() for ln in lines)}
    assert ranks == {b: i for i, b in tok.vocab.items()}


def test_saved_files_get_the_usual_permissions(tmp_path):
    # a temp file from mkstemp would be 0600; a saved tokenizer must be as readable as any file
    # open() creates (0666 minus the umask), e.g. in a shared folder
    umask = os.umask(0)
    os.umask(umask)
    tok = BasicTokenizer().train(DOCS, 260)
    tok.save(tmp_path / "t")
    tok.save_tiktoken(tmp_path / "t.tiktoken")
    for name in ("t.model", "t.vocab", "t.tiktoken"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


def test_reads_minbpe_v1(tmp_path):
    # minbpe's format: merges are 'left right' with implicit ids 256, 257, ...; these are the
    # aaabdaaabac merges worked by hand in test_tokenizer.py
    path = tmp_path / "m.model"
    path.write_text("minbpe v1\n\\p{L}+|\\s+|.\n1\n<|endoftext|> 259\n97 97\n256 97\n257 98\n",
                    encoding="utf-8")
    tok = load(path)
    assert isinstance(tok, RegexTokenizer) and tok.pattern == r"\p{L}+|\s+|."
    assert tok.special_tokens == {"<|endoftext|>": 259}
    assert tok.encode("aaabdaaabac<|endoftext|>", allowed_special="all") == [258, 100, 258, 97, 99, 259]
    path.write_text("minbpe v1\n\n0\n97 97\n", encoding="utf-8")
    assert isinstance(load(path), BasicTokenizer)


GOOD = ('vocablab tokenizer v1\nclass RegexTokenizer\nname "t"\npattern "\\\\s+|\\\\S+"\n'
        'byte_ids identity\nspecial_tokens 1\n"<|a b|>" 300\nmerges 2\n97 98 256\n256 99 257\n')


@pytest.mark.parametrize("text, line, message", [
    (GOOD.replace("v1", "v9"), 1, "unsupported format version"),
    ("hello\n", 1, "not a tokenizer .model file"),
    (GOOD.replace("merges 2", "merges 3"), 11, "file ends early"),
    (GOOD[:GOOD.index("merges")], 8, "file ends early"),
    (GOOD.replace("256 99 257", "256 x 257"), 10, "3 non-negative integers"),
    (GOOD.replace("256 99 257", "999 99 257"), 10, "no earlier line defines"),
    (GOOD.replace("256 99 257", "256 99 256"), 10, "must be greater"),
    (GOOD.replace('"<|a b|>" 300', "<|a b|> 300"), 7, "JSON-quoted"),
    (GOOD.replace("class RegexTokenizer", "class Nope"), 2, "unknown tokenizer class"),
    (GOOD.replace('pattern "', 'pattern "('), 4, "invalid split pattern"),
    (GOOD + "1 2 258\n", 11, "unexpected content"),
    ("minbpe v1\n\n1\n<|x|>\n", 4, "special token line"),
    # the same special token twice: which id is meant? (the last one used to win silently)
    (GOOD.replace('special_tokens 1\n"<|a b|>" 300', 'special_tokens 2\n"<|a b|>" 300\n"<|a b|>" 301'),
     8, r"'<\|a b\|>' is listed twice \(first on line 7\)"),
    ("minbpe v1\n\n2\n<|x|> 256\n<|x|> 257\n", 5, "listed twice"),
    # a minbpe pattern that is no regex: named here, not as a bare regex.error at first encode
    ("minbpe v1\n(\\p{L}+\n0\n97 97\n", 2, "invalid split pattern"),
])
def test_malformed_files_name_file_and_line(tmp_path, text, line, message):
    path = tmp_path / "bad.model"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message) as err:
        load(path)
    assert f"bad.model:{line}:" in str(err.value)


def test_good_fixture_loads_and_non_utf8_is_rejected(tmp_path):
    path = tmp_path / "good.model"
    path.write_text(GOOD, encoding="utf-8")
    tok = load(path)
    assert tok.encode("abc <|a b|>", allowed_special="all") == [257, 32, 300]
    path.write_bytes(b"vocablab tokenizer v1\n\xff\xfe")
    with pytest.raises(ValueError, match="good.model.*not UTF-8"):
        load(path)
    path.write_text(GOOD.replace('"<|a b|>" 300', '"<|a b|>" 97'), encoding="utf-8")
    with pytest.raises(ValueError, match="good.model.*already the ordinary token"):
        load(path)


def test_neither_import_nor_save_touches_the_process_umask(tmp_path):
    # os.umask can only be read by setting it, which races with other threads creating files;
    # model_file used to do that on import
    code = ("import os, sys\n"
            "def refuse(*a): raise AssertionError('os.umask called')\n"
            "os.umask = refuse\n"
            "from tokenizer import BasicTokenizer\n"
            "BasicTokenizer().train('abab', 257).save(sys.argv[1])\n")
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "t")], cwd=root,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "t.model").is_file()
