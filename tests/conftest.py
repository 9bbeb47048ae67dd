"""Shared fixtures. ../shared is developer-only material: tests that need it skip without it.

Tests of the tokenizer train on `corpus_text`, which every machine has: the source of Python's
own argparse module (English docstrings and code) plus the built-in multilingual samples.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import tiktoken

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))

import training  # noqa: E402
from data.prepare import prepare  # noqa: E402
from tokenizer import GPT4Tokenizer, RegexTokenizer  # noqa: E402
from tokenizer.sample_texts import SAMPLE_TEXTS  # noqa: E402


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not present (developer-only fixtures)")
    return SHARED


def _cache_dir(shared: Path) -> Path:
    cache = shared / "tiktoken_cache"
    if not cache.is_dir():
        pytest.skip("../shared/tiktoken_cache is not present")
    return cache


@pytest.fixture
def tiktoken_cache(shared_dir, monkeypatch) -> Path:
    """Point tiktoken at the offline cache, for this test only, so get_encoding('gpt2') works
    with no network."""
    cache = _cache_dir(shared_dir)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(scope="session")
def gpt2_encoding(shared_dir):
    """tiktoken's gpt2 Encoding, loaded from ../shared's cache (tiktoken ships no GPT-2 files)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TIKTOKEN_CACHE_DIR", str(_cache_dir(shared_dir)))
        return tiktoken.get_encoding("gpt2")


@pytest.fixture(scope="session")
def gpt4():
    """One GPT4Tokenizer for the whole run: recovering its 100k merges takes seconds."""
    return GPT4Tokenizer()


@pytest.fixture(scope="session")
def corpus_text() -> str:
    """~100 KB of text present on every machine: argparse's source and the sample texts."""
    with open(argparse.__file__, encoding="utf-8") as f:
        code = f.read()
    return code + "\n" + "\n".join(SAMPLE_TEXTS.values())


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models gain nothing from threads, and on a shared box spinning OpenMP threads cost 10x."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---- a tiny GPT run: shards written by data.prepare, configs for training.train ---------------

WORDS = ("the king and queen of a fair city walk by the river at night while the watch sleeps "
         "and wind comes over hills to the old house where we wait for news").split()


def make_docs(n, seed):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(20, 60)))).capitalize() + "." for _ in range(n)]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A tokenizer trained here and shards written by data.prepare itself: one document per line."""
    root = tmp_path_factory.mktemp("gptdata")
    tok = RegexTokenizer()
    tok.train(" ".join(make_docs(60, 2)), 300)
    tok.register_special_tokens({"<|endoftext|>": 300})
    tok.save(str(root / "tok"))
    (root / "docs.txt").write_text("\n".join(make_docs(132, 0)) + "\n")
    prepare(root / "tok.model", [root / "docs.txt"], root / "shards", val_fraction=0.1, txt_mode="lines",
            workers=0)
    return root


def cfg_for(data, out, **kw):
    base = dict(data_dir=str(data / "shards"), tokenizer=str(data / "tok.model"), out_dir=str(out),
                n_layer=2, n_head=2, n_embd=32, block_size=32, batch_size=4, max_steps=6, warmup_steps=2,
                lr=3e-3, eval_interval=3, eval_batches=0, end_sample_tokens=0, seed=7, threads=1)
    base.update(kw)
    return training.load_config(None, base)


def read_log(out):
    return [json.loads(line) for line in (Path(out) / "log.jsonl").read_text().splitlines()]
