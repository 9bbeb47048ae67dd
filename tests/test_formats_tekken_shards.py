"""Tekken's 131,072 ids through the whole pipeline: prepare writes uint32 shards (ids past 65535),
the loader reads them back as the same ids, and a tiny model trains on them for a few steps."""
import numpy as np
import pytest

import training
from data.loader import ShardLoader
from data.prepare import prepare
from data.shards import read_manifest, read_shard
from tokenizer import load_any
from tokenizer.downloads import DownloadError, fetch

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DOCS = ["Bonjour, le monde! Ünïcödé and 日本語 text with 😀 emoji, code: def f(x): return x**2.",
        "The quick brown fox jumps over the lazy dog. " * 6,
        "Zwölf Boxkämpfer jagen Viktor quer über den großen Sylter Deich. " * 4] * 8


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    try:
        fetch("mistral")
    except DownloadError as e:
        pytest.skip(f"mistral-common's tekken file could not be downloaded: {e}")
    root = tmp_path_factory.mktemp("tekken")
    src = root / "docs"
    src.mkdir()
    for k, doc in enumerate(DOCS):
        (src / f"{k:02d}.txt").write_text(doc, encoding="utf-8")
    prepare("tekken", [str(src)], root / "shards", val_fraction=0.2)
    return root


def test_tekken_shards_are_uint32_and_hold_the_ids(shards):
    meta = read_manifest(shards / "shards")
    tok = load_any("tekken")
    eot = tok.n_vocab  # tekken has no <|endoftext|>: prepare appends it after the 131,072 ids
    assert meta["dtype"] == "uint32" and meta["vocab_size"] == 131073 and meta["eot_id"] == eot
    ids = np.concatenate([np.asarray(read_shard(shards / "shards" / name))
                          for split in ("train", "val") for name in meta["splits"][split]["shards"]])
    expected = sorted([eot] + tok.encode_ordinary(d) for d in DOCS)
    starts = np.flatnonzero(ids == eot).tolist() + [len(ids)]
    got = sorted(ids[a:b].tolist() for a, b in zip(starts, starts[1:]))
    assert got == expected and ids.max() > 65535  # ids that uint16 would have wrapped


def test_tiny_model_trains_on_tekken_shards(shards):
    loader = ShardLoader(str(shards / "shards"), "train", batch_size=2, block_size=16)
    x, y = loader.next_batch()
    assert x.max().item() > 65535
    cfg = training.load_config(None, dict(
        data_dir=str(shards / "shards"), tokenizer="", out_dir=str(shards / "run"), n_layer=1,
        n_head=2, n_embd=16, block_size=16, batch_size=2, max_steps=3, warmup_steps=1, lr=1e-2,
        eval_interval=3, eval_batches=1, end_sample_tokens=0, seed=1))
    result = training.train(cfg)
    assert result["steps"] == 3 and np.isfinite(result["val_loss"])
    assert result["val_loss"] < np.log(131073) + 1  # a real loss over the full vocabulary
