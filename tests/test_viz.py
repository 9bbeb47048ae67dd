"""viz: the coloured and HTML views must show exactly the tokens, escaped, with ids on hover."""
import html
import re

from tokenizer import BasicTokenizer, viz

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
