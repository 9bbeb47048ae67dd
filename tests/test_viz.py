"""viz: the coloured and HTML views must show exactly the tokens, escaped, with ids on hover."""
import html
import re
import subprocess
import sys
from pathlib import Path

from tokenizer import BasicTokenizer, SentencePieceTokenizer, viz
from tokenizer.sample_texts import SAMPLE_TEXTS

TEXT = "aaab <b>&</b>\n\taaab<|endoftext|>"


def _tok():
    tok = BasicTokenizer().train("aaabdaaabac", 259)
    tok.register_special_tokens({"<|endoftext|>": 259})
    return tok


def test_ansi_shows_every_token_with_visible_whitespace():
    tok = _tok()
    out = viz.to_ansi(tok, TEXT)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)
    assert plain == TEXT.replace(" ", "·").replace("\t", "→").replace("\n", "↵\n")
    assert out.count("\x1b[48;5;213m") == 1  # the special token, in its own colour
    assert "\x1b[48;5;153m" in out and "\x1b[48;5;223m" in out  # alternating backgrounds


def test_html_is_escaped_and_has_ids(tmp_path):
    tok = _tok()
    path = viz.write_html(tok, TEXT, tmp_path / "v.html")
    page = path.read_text(encoding="utf-8")
    titles = re.findall(r'<span title="id (\d+)[^"]*"', page)
    assert [int(t) for t in titles] == tok.encode(TEXT, allowed_special="all")
    assert "<b>" not in page and "&lt;" in page and "&amp;" in page  # each token escaped
    pieces = re.findall(r'<span [^>]*>(.*?)</span>', page, flags=re.S)
    assert html.unescape("".join(pieces)) == TEXT.replace(" ", "·").replace("\t", "→").replace("\n", "↵\n")


def test_cli(tmp_path, capsys):
    tok = _tok()
    tok.save(tmp_path / "t")
    viz.main([str(tmp_path / "t.model"), "aaab", "--html", str(tmp_path / "o.html")])
    out = capsys.readouterr().out
    assert "1 tokens, 4 bytes" in out and (tmp_path / "o.html").exists()


def test_bare_command_from_the_readme_works():
    # README: `python -m tokenizer.viz`; it used to stop with a usage error
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-m", "tokenizer.viz"], cwd=root, capture_output=True,
                       text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    plain = re.sub(r"\x1b\[[0-9;]*m", "", r.stdout)
    assert SAMPLE_TEXTS["english"].split("\n")[0].replace(" ", "·") in plain
    assert re.search(r"\n\d+ tokens, \d+ bytes", plain)


def test_cli_reads_stdin_and_takes_pretrained_names(tmp_path):
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-m", "tokenizer.viz", "gpt4"], cwd=root, input="hello world",
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "2 tokens, 11 bytes" in r.stdout  # cl100k: "hello", " world"


def test_sentencepiece_pieces_are_shown_with_their_spaces_and_bytes():
    """A SentencePiece tokenizer is shown piece by piece: `▁` marks spaces, <0x..> byte fallbacks."""
    tok = SentencePieceTokenizer().train([SAMPLE_TEXTS["english"]] * 3, 400)
    text = "the king\nsaw 🎉"
    pieces = viz.token_pieces(tok, text)
    assert [i for i, _, _ in pieces] == tok.encode(text) and not any(s for _, _, s in pieces)
    shown = "".join(p for _, p, _ in pieces)
    assert "<0x0A>" in shown  # the newline is not a piece of this vocabulary: its byte is
    # the pieces spell the text (with its dummy-prefix space) once ▁ and byte pieces are read back
    spelled = bytearray()
    for _, p, _ in pieces:
        spelled += bytes([int(p[3:5], 16)]) if re.fullmatch(r"<0x[0-9A-F]{2}>", p) else p.replace("▁", " ").encode()
    assert spelled.decode() == " " + text
