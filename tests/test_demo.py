"""scripts/demo.sh end to end at toy size: the README's `make demo`, on text every machine has.

The real demo trains on Shakespeare for minutes; here the same script runs every stage (tokenizer,
shards, GPT, bpb, sample) on a few standard-library files with a 1-layer model, then runs again to
check that it reuses what it wrote instead of redoing or overwriting it.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STDLIB = Path(os.__file__).parent
TOY_TRAIN = ("--n_layer=1 --n_head=2 --n_embd=32 --block_size=32 --batch_size=8 --max_steps=60 --lr=1e-2 "
             "--warmup_steps=5 --eval_interval=60 --eval_batches=4 --end_sample_tokens=0 --log_interval=10")


@pytest.fixture
def corpus(tmp_path):
    """Twelve documents (standard-library modules saved as .txt), so val gets whole documents."""
    src = tmp_path / "corpus"
    src.mkdir()
    for name in ["textwrap", "shlex", "fnmatch", "glob", "bisect", "heapq", "keyword", "colorsys",
                 "this", "getopt", "netrc", "sched"]:
        (src / f"{name}.txt").write_text((STDLIB / f"{name}.py").read_text(encoding="utf-8"), encoding="utf-8")
    return src


def run_demo(corpus, out):
    env = {**os.environ, "PY": sys.executable, "SOURCE": str(corpus), "VOCAB": "320", "NAME": "toy",
           "ROOT": str(out), "TRAIN_ARGS": TOY_TRAIN, "SAMPLE_TOKENS": "20", "OMP_NUM_THREADS": "1"}
    return subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh")], env=env, capture_output=True,
                          text=True, timeout=300)


def test_demo_end_to_end_and_rerun(corpus, tmp_path):
    out = tmp_path / "out"
    first = run_demo(corpus, out)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    tok, shards, run = out / "tokenizers" / "toy.model", out / "data" / "shards" / "toy", out / "out" / "tiny"

    # Each stage wrote what the next one reads, and they agree with each other.
    meta = json.loads((shards / "meta.json").read_text())
    assert meta["vocab_size"] == 320 + 1  # 320 BPE ids + the <|endoftext|> data.prepare registers
    assert meta["splits"]["train"]["documents"] + meta["splits"]["val"]["documents"] == 12
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    evals = [r for r in log if "val_bpb" in r]
    assert evals and evals[-1]["step"] == 60
    # The figure the demo prints is the last eval in the run's log, to four decimals.
    printed = re.search(r"val bits per byte: ([0-9.]+)", first.stdout)
    assert printed and float(printed.group(1)) == pytest.approx(evals[-1]["val_bpb"], abs=5e-5)
    # 60 steps of a 1-layer model learn something: clearly below a uniform guess over the 321 ids
    # (log2(321) bits per token, spread over the val text's bytes; this run gives ~0.91 of it).
    bytes_per_token = meta["splits"]["val"]["bytes"] / meta["splits"]["val"]["tokens"]
    assert evals[-1]["val_bpb"] < 0.96 * (8.33 / bytes_per_token)
    assert "--- sample 1 ---" in first.stdout

    # A rerun reuses every stage and changes none of the files.
    before = {p: p.read_bytes() for p in [tok, shards / "meta.json", run / "ckpt.pt"]}
    second = run_demo(corpus, out)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert second.stdout.count("reusing") == 3
    assert {p: p.read_bytes() for p in before} == before
