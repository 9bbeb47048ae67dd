"""See how a text splits into tokens: coloured terminal output and a standalone HTML file.

    python -m tokenizer.viz                          # cl100k on a few built-in samples
    python -m tokenizer.viz tokenizers/shakespeare.model "To be, or not to be"
    python -m tokenizer.viz gpt4 "Hello   world 😀" --html out/viz.html
    echo "any text" | python -m tokenizer.viz gpt2

Each token gets a background colour, alternating so neighbours are told apart; whitespace is made
visible (· for space, → for tab, ↵ for newline) because where spaces attach is half the story.
A token that ends in the middle of a UTF-8 character shows U+FFFD (�): the character's bytes are
spread over two tokens, and neither has any text of its own.
"""
import html
import sys
from pathlib import Path

from .atomic import write_text_atomic
from .cli import ArgumentParser
from .pretrained import TokenizerLoadError, load_any
from .sample_texts import SAMPLE_TEXTS
from .sentencepiece import SentencePieceTokenizer

VISIBLE = {" ": "·", "\t": "→", "\n": "↵\n", "\r": "␍"}
ANSI_BACKGROUNDS = (153, 223, 194, 217, 189)  # xterm-256 pastels, readable with black text
ANSI_SPECIAL = 213
HTML_BACKGROUNDS = ("#cfe8ff", "#ffe9c7", "#d6f5d6", "#ffd6dc", "#e4dcff")


def token_pieces(tok, text, allowed_special="all"):
    """[(id, piece text, is_special)] for `text`: what each token contributes, decoded alone.
    SentencePiece tokens are shown as their pieces, so `▁` and byte pieces (`<0x0A>`) stay visible;
    text never becomes one of its control pieces."""
    if isinstance(tok, SentencePieceTokenizer):
        return [(i, tok.id_to_piece(i), False) for i in tok.encode_ordinary(text)]
    specials = set(tok.special_tokens.values())
    return [(i, tok.decode([i]), i in specials) for i in tok.encode(text, allowed_special)]


def _visible(piece):
    return "".join(VISIBLE.get(ch, ch) for ch in piece)


def to_ansi(tok, text, allowed_special="all"):
    """A string with ANSI colour codes: alternating backgrounds, specials in magenta."""
    out = []
    for k, (_, piece, special) in enumerate(token_pieces(tok, text, allowed_special)):
        colour = ANSI_SPECIAL if special else ANSI_BACKGROUNDS[k % len(ANSI_BACKGROUNDS)]
        # colour each line separately so a newline does not drag the background to the edge
        lines = _visible(piece).split("\n")
        out.append("\n".join(f"\x1b[48;5;{colour}m\x1b[30m{ln}\x1b[0m" if ln else ""
                             for ln in lines))
    return "".join(out)


def to_html(tok, text, allowed_special="all", title="tokens"):
    """A standalone HTML page; hover a token to see its id."""
    spans = []
    for k, (idx, piece, special) in enumerate(token_pieces(tok, text, allowed_special)):
        colour = "#f5b3f0" if special else HTML_BACKGROUNDS[k % len(HTML_BACKGROUNDS)]
        label = f"id {idx}" + (" (special)" if special else "")
        spans.append(f'<span title="{label}" style="background:{colour}">'
                     f"{html.escape(_visible(piece))}</span>")
    n = len(spans)
    return (f"<!doctype html>\n<meta charset=\"utf-8\">\n<title>{html.escape(title)}</title>\n"
            f"<p>{n} tokens, {len(text.encode('utf-8', 'surrogatepass'))} bytes</p>\n"
            f"<pre style=\"font-size:15px;line-height:1.6;white-space:pre-wrap\">"
            f"{''.join(spans)}</pre>\n")


def write_html(tok, text, path, allowed_special="all"):
    """Write to_html(...) to `path` atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, to_html(tok, text, allowed_special, title=f"{tok.name}: tokens"))
    return path


def main(argv=None):
    p = ArgumentParser(
        prog="python -m tokenizer.viz",
        description="Show how a text splits into tokens (coloured in the terminal, or as HTML).")
    p.add_argument("tokenizer", nargs="?", default="cl100k",
                   help="a tokenizer file or folder (.model, tokenizer.json, .tiktoken, tekken, "
                        "GPT-2's files), or cl100k (gpt4) / gpt2 / tekken (default cl100k)")
    p.add_argument("text", nargs="?",
                   help="the text to show (default: standard input if piped, else built-in samples)")
    p.add_argument("--html", metavar="PATH", help="also write a standalone HTML page here")
    p.add_argument("--no-specials", action="store_true",
                   help="encode special-token names as ordinary text instead of special ids")
    args = p.parse_args(argv)
    try:
        tok = load_any(args.tokenizer)
    except TokenizerLoadError as e:
        p.error(str(e))
    text = args.text
    if text is None and not sys.stdin.isatty():
        text = sys.stdin.read()
    if not text and args.text is None:  # nothing given or piped: show what the samples look like
        text = "\n\n".join(SAMPLE_TEXTS[k] for k in list(SAMPLE_TEXTS)[:3])
    allowed = "none" if args.no_specials else "all"
    n = len(token_pieces(tok, text, allowed))
    print(to_ansi(tok, text, allowed))
    print(f"\n{n} tokens, {len(text.encode('utf-8', 'surrogatepass'))} bytes")
    if args.html:
        print(f"wrote {write_html(tok, text, args.html, allowed)}")


if __name__ == "__main__":
    main()
