"""scripts/gpu_check.py's CPU dry run, as `make gpu-check` runs it on a machine without CUDA.

It runs as a subprocess, the way a person runs it: the exit status, the one summary line at the end,
and the checks it could not run named as skipped with the reason.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dry_run():
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}  # a GPU machine too: the CPU path
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--cpu"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cpu_dry_run_passes_with_one_summary_line(dry_run):
    assert dry_run.returncode == 0, dry_run.stdout[-3000:] + dry_run.stderr[-3000:]
    last = dry_run.stdout.strip().splitlines()[-1]
    assert last.startswith("gpu-check PASSED on CPU (--cpu), a dry run at toy size: ")
    assert re.search(r": 6 passed, 0 failed, 1 skipped; ", last), last
    assert "not exercised without CUDA: bf16, torch.compile" in last
    assert len([line for line in dry_run.stdout.splitlines() if line.startswith("gpu-check ")]) == 2  # header + it


def test_cpu_dry_run_table_names_each_check_and_the_skipped_one(dry_run):
    table = {m[1]: (m[2], m[3]) for m in re.finditer(r"^  (\w+) +(passed|failed|skipped)  (.*)$", dry_run.stdout,
                                                     re.MULTILINE)}
    assert {k: v[0] for k, v in table.items()} == {"data": "passed", "train": "passed", "resume": "passed",
                                                   "sample": "passed", "flash": "passed", "speed": "passed",
                                                   "ddp": "skipped"}
    assert table["ddp"][1] == "needs 2+ CUDA GPUs, found 0"
    assert "ddp (needs 2+ CUDA GPUs, found 0)" in dry_run.stdout.strip().splitlines()[-1]
    assert "resumed in a fresh process" in table["resume"][1] and "<= 0.0001" in table["resume"][1]


def test_keep_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--cpu", "--keep", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "not empty" in proc.stderr and proc.stderr.count("\n") == 1
    assert (tmp_path / "mine.txt").read_text() == "keep me"
