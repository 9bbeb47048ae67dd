"""data.prepare with a SentencePiece tokenizer: [<s>] + ids per document, bytes that add up to
each document's true UTF-8 length, and a tiny GPT trained and evaluated on the shards.

Expectations: the sentencepiece library's ids where it is installed (else our encode, which
tests/test_sentencepiece.py checks against it), UTF-8 lengths from Python's str.encode, and a
bits-per-byte worked out here from the model's own per-token losses.
"""
import json
import math
import random

import numpy as np
import pytest
import torch

import training
from data.prepare import PrepareError, prepare
from data.shards import load_token_bytes, read_manifest, read_shard
from tokenizer import SentencePieceTokenizer, load

WORDS = ("the king queen sword crown night day love death whither thou art hath doth "
         "speak hear fair foul blood honour").split()
ODD_DOCS = ["Hello world! This is document one.",
            "  two leading spaces, and trailing ones  ",
            "ünïcödé: café, naïve, 日本語のテキスト, emoji 🙂🎉 and a tab\there",
            "",  # no text: left out
            "   ",
            "\nstarts with a newline\n\n",
            "def f(x):\n    return x ** 2  # 12345\n",
            "<s> spelled out, </s> too, and <unk>"]


def make_docs(n=80, seed=0):
    rng = random.Random(seed)
    return ODD_DOCS + [f"Story {i}: " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 30)))
                       for i in range(n)]


DOCS = make_docs()


@pytest.fixture(scope="module")
def sp_path(tmp_path_factory):
    tok = SentencePieceTokenizer().train(DOCS, 400, split_digits=True)
    path = tmp_path_factory.mktemp("sp") / "sp.model"
    tok.save_sentencepiece(path)
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "docs.jsonl"
    path.write_text("".join(json.dumps({"text": d}) + "\n" for d in DOCS), encoding="utf-8")
    return path


def reference_encoder(sp_path):
    try:
        import sentencepiece as spm
    except ImportError:
        return load(sp_path).encode
    return spm.SentencePieceProcessor(model_file=str(sp_path)).encode


def documents_of(out, split, start_id):
    meta = read_manifest(out)
    tokens = np.concatenate([read_shard(out / s) for s in meta["splits"][split]["shards"]])
    assert tokens[0] == start_id
    cuts = np.flatnonzero(tokens == start_id)
    return [tokens[a:b].tolist() for a, b in zip(cuts, [*cuts[1:], len(tokens)])]


def test_documents_are_bos_then_ids_and_bytes_are_utf8_lengths(tmp_path, sp_path, corpus):
    out = tmp_path / "out"
    meta = prepare(sp_path, [corpus], out, val_fraction=0.2, shard_tokens=500)
    tok = load(sp_path)
    assert meta["tokenizer"]["kind"] == "sentencepiece"
    assert meta["eot_id"] == meta["doc_start_id"] == tok.bos_id == 1
    assert meta["vocab_size"] == tok.n_vocab == 400
    assert meta["tokenizer"]["eot_registered_by_prepare"] is False
    assert meta["tokenizer"]["adds_dummy_prefix"] is True
    assert meta["tokenizer"]["special_tokens"] == {"<s>": 1, "</s>": 2}
    written = documents_of(out, "train", 1) + documents_of(out, "val", 1)
    encode = reference_encoder(sp_path)
    texts = [d for d in DOCS if d]  # the empty document is left out
    assert sorted(written) == sorted([1] + encode(d) for d in texts)
    table = load_token_bytes(out)
    for doc in texts:  # every document's tokens spell exactly its UTF-8 bytes
        assert int(table[[1] + encode(doc)].sum()) == len(doc.encode("utf-8")), doc
    assert sum(s["bytes"] for s in meta["splits"].values()) == \
        sum(len(d.encode("utf-8")) for d in texts)
    # the table is the pieces' own bytes: ▁ is a space, a byte piece one byte, <s> pays for
    # the dummy prefix
    assert table[tok.piece_to_id("▁")] == 1 and table[tok.piece_to_id("<0xE6>")] == 1
    assert table[1] == -1 and table[2] == 0 and table[0] == 0


def test_a_model_that_loses_text_is_refused(tmp_path, corpus):
    tok = SentencePieceTokenizer().train(DOCS, 120, byte_fallback=False, character_coverage=0.98)
    path = tmp_path / "unk.model"
    tok.save_sentencepiece(path)
    with pytest.raises(PrepareError, match="unk.model.*<unk>.*byte fallback"):
        prepare(path, [corpus], tmp_path / "out", val_fraction=0.2)
    assert not (tmp_path / "out").exists()


@pytest.mark.usefixtures("one_torch_thread")
def test_tiny_gpt_trains_on_sentencepiece_shards_and_bpb_divides_by_true_bytes(tmp_path, sp_path,
                                                                              corpus):
    out = tmp_path / "shards"
    meta = prepare(sp_path, [corpus], out, val_fraction=0.2)
    val = documents_of(out, "val", 1)
    n_val = sum(map(len, val))
    # one window covering the whole val split: every token but the first is a target
    cfg = training.load_config(None, dict(
        data_dir=str(out), tokenizer=str(sp_path), out_dir=str(tmp_path / "run"), n_layer=1,
        n_head=2, n_embd=32, block_size=n_val - 1, batch_size=2, max_steps=4, warmup_steps=1,
        lr=3e-3, eval_interval=4, eval_batches=0, end_sample_tokens=0, seed=3))
    result = training.train(cfg)
    model, _ = training.load_model(tmp_path / "run")
    stream = torch.tensor([t for doc in val for t in doc])
    with torch.no_grad():
        logits, _ = model(stream[None, :-1])
    nats = torch.nn.functional.cross_entropy(logits[0].double(), stream[1:], reduction="sum").item()
    true_bytes = meta["splits"]["val"]["bytes"]  # the val documents' UTF-8 lengths
    exact = nats / math.log(2) / true_bytes
    # evaluate_bpb charges each dummy prefix to the piece after <s>, so it divides by exactly the
    # val documents' UTF-8 bytes, even though the first <s> is an input and never a target
    assert result["val_bpb"] == pytest.approx(exact, rel=1e-5)
    x, y, table, s = stream[:-1].numpy(), stream[1:].numpy(), load_token_bytes(out), 1
    assert int((table[y] + (y == s) - ((x == s) & (y != s))).sum()) == true_bytes
    # counting every dummy-prefix ▁ as text would be off by a byte per document
    naive = nats / math.log(2) / (true_bytes + len(val))
    assert abs(naive / exact - 1) > 5 * abs(result["val_bpb"] / exact - 1)
