"""The vocabulary sweep's training runs: one job trained, or reused when its config and the code
are unchanged, then scored; many jobs side by side in worker processes.

Its own module because the cache rule (what makes a saved run still valid) is one idea, and
worker processes import run_job from here without the sweep's planning code.
"""
import contextlib
import hashlib
import json
import multiprocessing
import subprocess
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import torch

from studies.common import atomic_write_text
from studies.sweep_scoring import EVAL_VERSION, evaluate_run
from training import load_config, train


# The code that produces a sweep's numbers: a change in it may change them, so its hash keys the
# cached runs. Tests and docs are left out: editing a README must not retrain anything.
CODE_DIRS = ("tokenizer", "data", "model", "training", "studies")
CODE_FILES = ("train_gpt.py",)
ROOT = Path(__file__).resolve().parents[1]


def code_version(root=ROOT):
    """12 hex digits of sha256 over the path and bytes of every .py file that produces results."""
    root = Path(root)
    files = sorted(p for d in CODE_DIRS for p in (root / d).rglob("*.py"))
    files += [root / f for f in CODE_FILES if (root / f).is_file()]
    h = hashlib.sha256()
    for path in files:
        for part in (path.relative_to(root).as_posix().encode(), path.read_bytes()):
            h.update(len(part).to_bytes(8, "little"))
            h.update(part)
    return h.hexdigest()[:12]


def git_describe(root=ROOT):
    """`git describe --always --dirty` of the checkout, for the record; "" outside git."""
    try:
        r = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=root,
                           capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return r.stdout.strip() if r.returncode == 0 else ""


def run_job(job):
    """Train one model (or reuse a finished identical run) and score it on the splits it asks for.

    job: {"run_dir", "train" (TrainConfig fields), "code_version", "splits": {name: (shard dir,
    split of those shards)}, "device"}. A run is reused when its config and the code version
    match; scores already saved are kept. Returns {"result": train()'s dict, "eval": {split:
    evaluate_run's dict}}. Plain data in and out: it may run in a worker process. What train()
    prints goes to the run's train.log, so runs side by side do not interleave on the terminal.
    """
    run_dir = Path(job["run_dir"])
    key = json.dumps(job["train"], sort_keys=True)
    done = run_dir / "result.json"
    saved = json.loads(done.read_text()) if done.is_file() and (run_dir / "ckpt.pt").is_file() else {}
    trained = saved.get("config") == key and saved.get("code_version") == job["code_version"]
    evals = dict(saved.get("eval", {})) if trained and saved.get("eval_version") == EVAL_VERSION else {}
    if trained:
        result = saved["result"]
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        with open(run_dir / "train.log", "w", encoding="utf-8") as f, contextlib.redirect_stdout(f):
            result = train(load_config(None, job["train"]))
    missing = [s for s in job["splits"] if s not in evals]
    for split in missing:
        shard_dir, part = job["splits"][split]
        evals[split] = evaluate_run(run_dir, shard_dir, job["device"], part)
    if missing or not trained:
        atomic_write_text(done, json.dumps({"config": key, "code_version": job["code_version"],
                                            "result": result, "eval": evals,
                                            "eval_version": EVAL_VERSION}, indent=1))
    return {"result": result, "eval": evals,
            "status": "trained" if not trained else "scored" if missing else "finished earlier"}


def _worker_init(threads):
    torch.set_num_threads(threads)


def run_jobs(jobs, workers, threads):
    """Yield (job, run_job(job)) as they finish; `workers` processes side by side, each with
    `threads` torch threads. Every run is seeded and independent of the others, so the results
    do not depend on how many run at once."""
    if workers == 1 or len(jobs) < 2:
        for job in jobs:
            yield job, run_job(job)
        return
    ctx = multiprocessing.get_context("spawn")  # fork would copy torch's thread pool state
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=ctx, initializer=_worker_init,
                             initargs=(threads or 1,)) as pool:
        futures = {pool.submit(run_job, job): job for job in jobs}
        for future in as_completed(futures):
            yield futures[future], future.result()
