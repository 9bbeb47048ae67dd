"""data.prepare: documents -> shards -> documents again, byte counts, workers, interruptions."""
import hashlib
import json
import random

import numpy as np
import pytest

import data.prepare
from data.loader import ShardLoader
from data.prepare import EOT, main, prepare
from data.shards import load_token_bytes, read_manifest, read_shard
from data.sources import doc_hash, is_val
from tokenizer import RegexTokenizer, load

WORDS = ("the king queen sword crown night day love death whither thou art hath doth "
         "speak hear fair foul blood honour").split()


def make_docs():
    docs = ["Hello world! This is document one.",
            "ünïcödé: café, naïve, 日本語のテキスト, emoji 🙂🎉 and a tab\there",
            f"A document that mentions {EOT} in its text, twice:{EOT}\n",
            "",
            "def f(x):\n    return x ** 2\n"]
    for i in range(60):
        rng = random.Random(i)
        docs.append(f"Story {i}: " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 80))))
    return docs


DOCS = make_docs()
VAL_FRACTION = 0.25


@pytest.fixture(scope="module")
def tok_path(tmp_path_factory):
    """A tiny tokenizer (vocab 300) trained on the test documents; <|endoftext|> not registered."""
    tok = RegexTokenizer()
    tok.train(DOCS, 300)
    prefix = tmp_path_factory.mktemp("tok") / "tiny"
    tok.save(str(prefix))
    return prefix.with_suffix(".model")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "docs.jsonl"
    path.write_text("".join(json.dumps({"text": d}) + "\n" for d in DOCS), encoding="utf-8")
    return path


def stream(out, split):
    meta = read_manifest(out)
    return np.concatenate([read_shard(out / s) for s in meta["splits"][split]["shards"]])


def split_docs(tokens, eot):
    """The token lists between <|endoftext|> separators (each document starts with one)."""
    assert tokens[0] == eot
    cuts = np.flatnonzero(tokens == eot)
    return [tokens[a + 1:b].tolist() for a, b in zip(cuts, list(cuts[1:]) + [len(tokens)])]


def reference_tokenizer(tok_path):
    tok = load(tok_path)
    tok.use_tiktoken = False  # the readable pure-Python encoder: independent of tiktoken
    return tok


def test_round_trip_bytes_and_manifest(tmp_path, tok_path, corpus):
    out = tmp_path / "out"
    meta = prepare(tok_path, [corpus], out, val_fraction=VAL_FRACTION, shard_tokens=300)
    ref = reference_tokenizer(tok_path)
    eot = meta["eot_id"]
    assert eot == 300 and meta["vocab_size"] == 301 and meta["dtype"] == "uint16"
    assert meta["tokenizer"]["eot_registered_by_prepare"] is True
    assert meta["tokenizer"]["special_tokens"] == {EOT: 300}
    assert meta["tokenizer"]["pattern"] == ref.pattern
    assert meta["tokenizer"]["sha256"] == hashlib.sha256(tok_path.read_bytes()).hexdigest()

    want = {"val": [d for d in DOCS if is_val(d, VAL_FRACTION)],
            "train": [d for d in DOCS if not is_val(d, VAL_FRACTION)]}
    assert want["val"] and want["train"]
    token_bytes = load_token_bytes(out)
    for split, docs in want.items():
        info = meta["splits"][split]
        tokens = stream(out, split)
        pieces = split_docs(tokens, eot)
        # decode(shards) == the documents; each encoded exactly as the reference encoder does
        assert sorted(ref.decode(p) for p in pieces) == sorted(docs)
        assert sorted(map(tuple, pieces)) == sorted(tuple(ref.encode_ordinary(d)) for d in docs)
        # <|endoftext|> written in a document is text: the special id only separates documents
        assert int((tokens == eot).sum()) == len(docs) == info["documents"]
        assert info["tokens"] == len(tokens)
        assert info["bytes"] == sum(len(d.encode("utf-8")) for d in docs)
        assert int(token_bytes[tokens].sum()) == info["bytes"]
        assert len(info["shards"]) == -(-len(tokens) // 300)  # 300-token shards, last shorter
    assert token_bytes.tolist() == [len(ref.decode_bytes([i])) for i in range(300)] + [0]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["meta.json", "token_bytes.npy"] + meta["splits"]["train"]["shards"]
        + meta["splits"]["val"]["shards"])


def test_output_is_identical_whatever_the_workers(tmp_path, tok_path, corpus, monkeypatch):
    monkeypatch.setattr(data.prepare, "BATCH_CHARS", 200)  # many small tasks, so order matters
    outs = []
    for workers in (0, 1, 3):  # 0: in this process
        out = tmp_path / f"w{workers}"
        prepare(tok_path, [corpus], out, val_fraction=VAL_FRACTION, shard_tokens=500,
                workers=workers)
        outs.append({p.name: p.read_bytes() for p in out.iterdir()})
    assert outs[0] == outs[1] == outs[2]


def test_val_never_empty_takes_the_smallest_hash_document(tmp_path, tok_path, corpus):
    out = tmp_path / "out"
    meta = prepare(tok_path, [corpus], out, val_fraction=1e-12)
    first = min(DOCS, key=doc_hash)
    ref = reference_tokenizer(tok_path)
    assert meta["splits"]["val"]["documents"] == 1
    assert [ref.decode(p) for p in split_docs(stream(out, "val"), 300)] == [first]
    rest = list(DOCS)
    rest.remove(first)
    assert sorted(ref.decode(p) for p in split_docs(stream(out, "train"), 300)) == sorted(rest)


def test_existing_eot_and_uint32_vocabulary(tmp_path, tok_path, corpus):
    tok = load(tok_path)
    tok.register_special_tokens({EOT: 70000})  # ids beyond 65535: llm.c's uint32 variant
    tok.save(str(tmp_path / "big"))
    out = tmp_path / "out"
    meta = prepare(tmp_path / "big.model", [corpus], out, val_fraction=VAL_FRACTION)
    assert meta["tokenizer"]["eot_registered_by_prepare"] is False
    assert (meta["eot_id"], meta["vocab_size"], meta["dtype"]) == (70000, 70001, "uint32")
    tokens = stream(out, "train")
    assert tokens.dtype == np.uint32 and int((tokens == 70000).sum()) == meta["splits"]["train"][
        "documents"]
    assert load_token_bytes(out).shape == (70001,)


def snapshot(folder):
    """Every file under `folder` (hidden ones included) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_interrupted_run_leaves_the_previous_output_untouched(tmp_path, tok_path, corpus,
                                                              monkeypatch):
    clean = tmp_path / "clean"
    prepare(tok_path, [corpus], clean, val_fraction=VAL_FRACTION, shard_tokens=300)
    out = tmp_path / "out"
    prepare(tok_path, [corpus], out, val_fraction=VAL_FRACTION, shard_tokens=1000)
    (out / "train_000099.bin").write_bytes(b"a file no manifest lists: not ours to delete")
    before = snapshot(tmp_path)

    real_write, calls = data.prepare.write_shard, []

    def interrupted(path, tokens, dtype):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_write(path, tokens, dtype)

    monkeypatch.setattr(data.prepare, "write_shard", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare(tok_path, [corpus], out, val_fraction=VAL_FRACTION, shard_tokens=300)
    assert len(calls) == 3
    # the old output byte for byte, and no partial folder left beside it
    assert snapshot(tmp_path) == before

    monkeypatch.setattr(data.prepare, "write_shard", real_write)
    prepare(tok_path, [corpus], out, val_fraction=VAL_FRACTION, shard_tokens=300)
    want = snapshot(clean)
    want["train_000099.bin"] = before["out/train_000099.bin"]
    assert snapshot(out) == want
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean", "out"]


def test_rerun_replaces_exactly_the_files_the_old_manifest_lists(tmp_path, tok_path, corpus):
    out = tmp_path / "out"
    old = prepare(tok_path, [corpus], out, val_fraction=VAL_FRACTION, shard_tokens=100)
    (out / "notes.txt").write_text("mine")
    (out / "train_images.bin").write_bytes(b"\x89PNG not a shard")
    new = prepare(tok_path, [corpus], out, val_fraction=VAL_FRACTION, shard_tokens=100_000)
    assert len(old["splits"]["train"]["shards"]) > 1 and new["splits"]["train"]["shards"] == [
        "train_000000.bin"]  # the old train_000001.bin ... are gone with the old manifest
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["meta.json", "notes.txt", "token_bytes.npy", "train_000000.bin", "train_images.bin",
         "val_000000.bin"])
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "train_images.bin").read_bytes() == b"\x89PNG not a shard"


def test_a_killed_runs_partial_folder_is_pointed_out_not_deleted(tmp_path, tok_path, corpus,
                                                                 capsys):
    left = tmp_path / ".out.0badf00d.partial"
    left.mkdir()
    (left / "train_000000.bin").write_bytes(b"from a run killed with SIGKILL")
    prepare(tok_path, [corpus], tmp_path / "out", val_fraction=VAL_FRACTION)
    assert f"note: {left} is left over" in capsys.readouterr().err
    assert (left / "train_000000.bin").read_bytes() == b"from a run killed with SIGKILL"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.0badf00d.partial", "out"]


def test_a_manifest_cannot_delete_files_outside_its_folder(tmp_path, tok_path, corpus):
    out = tmp_path / "out"
    meta = prepare(tok_path, [corpus], out, val_fraction=VAL_FRACTION)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    meta["splits"]["train"]["shards"].append("../victim.txt")
    (out / "meta.json").write_text(json.dumps(meta))
    prepare(tok_path, [corpus], out, val_fraction=VAL_FRACTION)
    assert victim.read_text() == "keep me"


def test_cli_and_bad_arguments(tmp_path, tok_path, corpus, capsys):
    out = tmp_path / "cli"
    main(["--tokenizer", str(tok_path), "--source", str(corpus), "--out", str(out),
          "--val-fraction", "0.25", "--workers", "0"])
    printed = capsys.readouterr().out
    meta = read_manifest(out)
    assert f"train: {meta['splits']['train']['documents']} documents" in printed
    assert meta["sources"] == [str(corpus)] and meta["val_fraction"] == 0.25
    loader = ShardLoader(out, "train", 2, 8)
    x, y = loader.next_batch()
    windows = np.lib.stride_tricks.sliding_window_view(stream(out, "train"), 9).tolist()
    for row_x, row_y in zip(x.tolist(), y.tolist()):  # each row is a window of the shards
        assert row_x + row_y[-1:] in windows and row_y[:-1] == row_x[1:]
    with pytest.raises(ValueError, match="no such file"):  # a typo fails before any deletion
        prepare(tok_path, [corpus, tmp_path / "typo.jsonl"], out)
    assert read_manifest(out) == meta
    with pytest.raises(ValueError, match="val.fraction must be between 0 and 1"):
        prepare(tok_path, [corpus], out, val_fraction=0)
    with pytest.raises(ValueError, match="no training documents"):
        prepare(tok_path, [corpus], tmp_path / "x", val_fraction=0.999999)
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
