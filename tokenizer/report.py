"""Compare tokenizers on short texts of different kinds: bytes per token, relative to the first.

    python -m tokenizer.report                               # cl100k and gpt2
    python -m tokenizer.report tokenizers/shakespeare.model cl100k gpt2
    python -m tokenizer.report a.model b.model --texts my_texts/ --markdown out/report.md

Why bytes per token: it is the compression a tokenizer buys. More bytes per token means shorter
sequences for the same text, so a model sees more text per context window and per FLOP. The
number only means something per kind of text, because a tokenizer trained on English prose can
be excellent on prose and poor on code, digits or other scripts; the table makes that visible.
"""
import sys
from pathlib import Path

from .atomic import write_text_atomic
from .bpe import render_token
from .cli import ArgumentParser
from .pretrained import PRETRAINED, TokenizerLoadError, load_any
from .sample_texts import SAMPLE_TEXTS
from .sentencepiece import BYTE, SentencePieceTokenizer

__all__ = ["TokenizerLoadError", "load_tokenizer", "load_tokenizers", "read_texts", "describe",
           "bytes_per_token", "format_terminal", "format_markdown", "main"]


def load_tokenizer(spec):
    """(name to show, tokenizer) for a `.model` path or a pretrained name (see load_any)."""
    tok = load_any(spec)
    if Path(spec).exists():
        return Path(spec).stem, tok
    return PRETRAINED[spec.lower()][1], tok


def load_tokenizers(specs):
    """{name: tokenizer} for each spec that loads; the others are reported on stderr and skipped.

    Two files with the same stem (from different folders) get distinct names: "t", "t'".
    """
    toks = {}
    for spec in specs:
        try:
            name, tok = load_tokenizer(spec)
        except TokenizerLoadError as e:
            print(f"skipping {spec}: {e}", file=sys.stderr)
            continue
        while name in toks:
            name += "'"
        toks[name] = tok
    return toks


def read_texts(texts_dir=None):
    """The built-in samples, plus every .txt/.md/.py file directly in `texts_dir` (keyed by file name)."""
    texts = dict(SAMPLE_TEXTS)
    if texts_dir is None:
        return texts
    folder = Path(texts_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"--texts {texts_dir}: not a directory")
    for f in sorted(folder.iterdir()):
        if f.is_file() and f.suffix in (".txt", ".md", ".py"):
            try:
                texts[f.name] = f.read_text(encoding="utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{f}: not valid UTF-8 (byte {e.start}); tokenizers here take UTF-8 text") from e
    return texts


def describe(tok):
    """One line on what the vocabulary holds: merges, specials, and ids encoding never produces
    (decode-only tokens, e.g. GPT-2's <|endoftext|> when read from its encoder.json)."""
    if isinstance(tok, SentencePieceTokenizer):
        n_bytes = sum(t == BYTE for t in tok.types)
        return (f"{tok.n_vocab} pieces: SentencePiece BPE over code points, {n_bytes} byte pieces "
                f"(byte fallback {'on' if tok.byte_fallback else 'off'}), {len(tok.special_tokens)} control")
    line = (f"{tok.n_vocab} ids: 256 bytes, {len(tok.merges)} merges, "
            f"{len(tok.special_tokens)} special")
    if tok.decode_only:
        shown = ", ".join(f"{i} {render_token(t)!r}" for i, t in list(tok.decode_only.items())[:3])
        more = ", ..." if len(tok.decode_only) > 3 else ""
        line += f", {len(tok.decode_only)} decode-only (no merge makes them: {shown}{more})"
    return line


def bytes_per_token(tokenizers, texts):
    """{text_name: {tok_name: bytes/token}} with an "ALL" row over the concatenated texts.

    Special-token text is encoded as ordinary text, so a sample can never turn into a special id.
    """
    table = {}
    totals = {name: [0, 0] for name in tokenizers}
    for text_name, text in texts.items():
        n_bytes = len(text.encode("utf-8"))
        row = {}
        for name, tok in tokenizers.items():
            n_tokens = len(tok.encode_ordinary(text))
            row[name] = n_bytes / n_tokens if n_tokens else float("nan")
            totals[name][0] += n_bytes
            totals[name][1] += n_tokens
        table[text_name] = row
    table["ALL"] = {n: (b / t if t else float("nan")) for n, (b, t) in totals.items()}
    return table


def _cells(table, names):
    """Rows of strings: "4.12" for the first tokenizer, "3.80 (0.92x)" for the others."""
    rows = []
    for text_name, row in table.items():
        first = row[names[0]]
        cells = [f"{row[names[0]]:.2f}"]
        for n in names[1:]:
            rel = row[n] / first if first else float("nan")
            cells.append(f"{row[n]:.2f} ({rel:.2f}x)")
        rows.append([text_name] + cells)
    return rows


def format_terminal(table, names):
    header = ["text"] + names
    rows = _cells(table, names)
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), sep] + [line(r) for r in rows])


def format_markdown(table, names):
    header = "| text | " + " | ".join(f"`{n}`" for n in names) + " |"
    align = "|:--|" + "--:|" * len(names)
    body = ["| " + " | ".join(r) + " |" for r in _cells(table, names)]
    note = (f"\nBytes per token (higher = more compression); in brackets, relative to `{names[0]}`. "
            "ALL is over the texts concatenated.\n")
    return "\n".join([header, align] + body) + "\n" + note


def main(argv=None):
    p = ArgumentParser(
        prog="python -m tokenizer.report",
        description="Bytes per token of each tokenizer on built-in texts of different kinds "
                    "(English, code, numbers, other languages, emoji, whitespace) and on your own "
                    "files, relative to the first tokenizer.")
    p.add_argument("tokenizers", nargs="*", metavar="TOKENIZER",
                   help="a tokenizer file or folder (.model, tokenizer.json, .tiktoken, tekken, "
                        "GPT-2's files), or a pretrained name: gpt2, cl100k, tekken "
                        "(default: cl100k and gpt2; one that cannot load is skipped)")
    p.add_argument("--texts", metavar="DIR", help="also compare on each .txt/.md/.py file in DIR")
    p.add_argument("--markdown", metavar="OUT.md", help="also write the table as markdown to this file")
    args = p.parse_args(argv)

    toks = load_tokenizers(args.tokenizers or ["cl100k", "gpt2"])
    if not toks:
        p.error("none of the tokenizers could be loaded (see messages above)")
    try:
        texts = read_texts(args.texts)
    except (OSError, ValueError) as e:
        p.error(str(e))
    names = list(toks)
    table = bytes_per_token(toks, texts)
    print(format_terminal(table, names))
    print()
    for name, tok in toks.items():
        print(f"{name}: {describe(tok)}")
    if args.markdown:
        out = Path(args.markdown)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out, format_markdown(table, names))
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
