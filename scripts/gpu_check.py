"""Check the GPU paths end to end with one command: `make gpu-check` (= python scripts/gpu_check.py).

On a CUDA machine (written for one H100-class GPU and under 8 minutes, but not yet timed on one):
  train    a 4-layer, 256-wide GPT for 300 steps with bf16 autocast + torch.compile on a tokenizer
           and shards made here from the Python standard library's source (no network); the
           training loss and the validation bits per byte must fall
  resume   the same run stopped at step 150 (stop_at) and resumed by train_gpt.py --resume in a
           fresh process ends within 0.02 bpb of the uninterrupted run (flash attention's backward
           is not bitwise deterministic, so "equal" would be too strict)
  sample   the compiled run's checkpoint loads (training.load_model) and generates text
  flash    SDPA restricted to the flash-attention kernel runs the model's attention shapes in
           bf16 (forward and backward), and the unrestricted call picks a fused kernel, not math
  speed    tokens/s, MFU and peak memory of the 124M model at configs/gpt2-small.toml's
           micro-batch, compiled, for a few steps
  ddp      with 2+ GPUs: torchrun with 2 NCCL processes and gradient accumulation against one
           process at the same global batch
Without CUDA (or with --cpu) the same steps run on the CPU at toy size, in float32 and uncompiled,
in well under a minute; the checks that need CUDA are listed as skipped, with the reason.

Prints a table of checks and, last, one summary line. Exit status 0 when every check that ran
passed, 1 otherwise, 2 for bad usage.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from data.prepare import prepare  # noqa: E402
from model.gpt import GPT, GPTConfig  # noqa: E402
from tokenizer import EOT, RegexTokenizer  # noqa: E402
from training import (MODEL_KEYS, configure_optimizer, device_peak_flops, load_config, load_model,  # noqa: E402
                      load_run_tokenizer, train)
from training.runtime import autocast_dtype  # noqa: E402


@dataclass
class Size:
    """Everything that differs between the GPU check and the CPU dry run."""
    text_chars: int       # of standard-library source, for the shards
    tokenizer_chars: int  # of that text, to train the tokenizer on
    vocab_size: int
    model: dict           # TrainConfig keys of the small model
    steps: int
    stop_at: int
    resume_tol: float     # |val bpb resumed - straight|
    speed_model: dict | None  # GPTConfig keys; None = configs/gpt2-small.toml's
    speed_batch: int | None   # None = gpt2-small.toml's micro-batch
    speed_steps: tuple[int, int]  # warm-up (compilation), timed


GPU = Size(text_chars=4_000_000, tokenizer_chars=400_000, vocab_size=1024,
           model=dict(n_layer=4, n_head=4, n_embd=256, block_size=256, batch_size=32, lr=2e-3, warmup_steps=30,
                      eval_interval=100, eval_batches=20, log_interval=10, compile=True, dtype="auto"),
           steps=300, stop_at=150, resume_tol=0.02, speed_model=None, speed_batch=None, speed_steps=(3, 10))
# CPU: float32 and the same threads in every process, so a resumed run equals the straight one
CPU = Size(text_chars=150_000, tokenizer_chars=20_000, vocab_size=300,
           model=dict(n_layer=2, n_head=2, n_embd=32, block_size=32, batch_size=8, lr=3e-3, warmup_steps=5,
                      eval_interval=20, eval_batches=8, log_interval=5, compile=False, dtype="float32", threads=1),
           steps=40, stop_at=20, resume_tol=1e-4,
           speed_model=dict(vocab_size=512, block_size=32, n_layer=2, n_head=2, n_embd=32), speed_batch=4,
           speed_steps=(1, 3))
GPT2_SMALL_VOCAB = 50257  # GPT-2's vocabulary: the 124M's output layer is a third of its FLOPs


class Checks:
    """The table: one row per check, passed / failed / skipped with a one-line detail."""

    def __init__(self):
        self.rows: list[tuple[str, str, str]] = []

    def add(self, name: str, status: str, detail: str) -> None:
        self.rows.append((name, status, detail))
        print(f"[{status}] {name}: {detail}", flush=True)

    def run(self, name: str, fn, *args) -> bool:
        """Call fn(*args) -> detail; an AssertionError is a failed check, so is any other exception."""
        t0 = time.perf_counter()
        took = lambda: f" [{time.perf_counter() - t0:.0f} s]"  # noqa: E731
        try:
            self.add(name, "passed", fn(*args) + took())
            return True
        except AssertionError as e:
            self.add(name, "failed", str(e) + took())
        except Exception as e:  # a check that crashes has failed; its message is the detail
            first = (str(e).strip().splitlines() or [""])[0]
            self.add(name, "failed", f"{type(e).__name__}: {first}" + took())
        return False

    def count(self, status: str) -> int:
        return sum(1 for _, s, _ in self.rows if s == status)


# ---- data: a tokenizer and shards made here, from text every Python install has ------------------

def stdlib_text_files(out: Path, limit: int) -> list[Path]:
    """Copy standard-library .py sources (sorted, so every machine of a version gets the same) as
    UTF-8 .txt documents into `out`, up to `limit` characters."""
    lib = Path(sysconfig.get_paths()["stdlib"])
    out.mkdir(parents=True)
    files, total = [], 0
    for path in sorted(lib.rglob("*.py")):
        if {"site-packages", "dist-packages"} & set(path.parts):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if not text.strip():
            continue
        files.append(out / f"{len(files):05d}.txt")
        files[-1].write_text(text[:limit - total], encoding="utf-8")
        total += len(text)
        if total >= limit:
            break
    assert len(files) >= 10, f"found only {len(files)} source files under {lib}"
    return files


def make_data(size: Size, work: Path) -> tuple[Path, Path]:
    files = stdlib_text_files(work / "text", size.text_chars)
    sample, n = [], 0
    for f in files:
        if n >= size.tokenizer_chars:
            break
        sample.append(f.read_text(encoding="utf-8")[:size.tokenizer_chars - n])
        n += len(sample[-1])
    tok = RegexTokenizer()
    tok.train(sample, size.vocab_size, special_tokens=[EOT])
    tok.save(str(work / "tok"))
    prepare(work / "tok.model", [work / "text"], work / "shards", val_fraction=0.05, workers=0)
    return work / "tok.model", work / "shards"


# ---- the checks ----------------------------------------------------------------------------------

def run_config(size: Size, device: str, tok: Path, shards: Path, out: Path, **kw):
    values = dict(data_dir=str(shards), tokenizer=str(tok), out_dir=str(out), device=device, max_steps=size.steps,
                  end_sample_tokens=0, seed=1337, **size.model)
    values.update(kw)
    return load_config(None, values)


def read_log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def check_train(cfg) -> str:
    result = train(cfg)
    log = read_log(Path(cfg.out_dir))
    losses = [r["loss"] for r in log if "loss" in r]
    bpbs = [r["val_bpb"] for r in log if "val_bpb" in r]
    assert len(bpbs) >= 2, f"expected 2+ evaluations, got {len(bpbs)}"
    assert losses[-1] < 0.8 * losses[0], f"training loss did not fall: {losses[0]:.3f} -> {losses[-1]:.3f}"
    assert bpbs[-1] < bpbs[0] - 0.01, f"val bpb did not fall: {bpbs[0]:.4f} -> {bpbs[-1]:.4f}"
    dtype = autocast_dtype(cfg.dtype, cfg.device)
    how = f"{'bf16' if dtype else 'fp32'}, {'compiled' if cfg.compile else 'eager'}"
    mfu = f", mfu {result['mfu']:.1%}" if result.get("mfu") else ""
    return (f"{result['steps']} steps ({how}): loss {losses[0]:.2f} -> {losses[-1]:.2f}, val bpb "
            f"{bpbs[0]:.3f} -> {bpbs[-1]:.3f}, {result['tokens_per_s']:,.0f} tok/s{mfu}")


def overrides(cfg) -> list[str]:
    return [f"--{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in asdict(cfg).items()]


def check_resume(cfg, straight_out: Path, tol: float) -> str:
    train(cfg)  # stops at cfg.stop_at with a checkpoint
    resumed = load_config(None, {**asdict(cfg), "stop_at": 0, "resume": True})
    proc = subprocess.run([sys.executable, str(ROOT / "train_gpt.py"), *overrides(resumed)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"train_gpt.py --resume exited {proc.returncode}: " \
                                 f"{(proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:]}"
    assert f"resumed from {Path(cfg.out_dir) / 'ckpt.pt'} at step {cfg.stop_at}" in proc.stdout, \
        "the fresh process did not report resuming from the stopped run's checkpoint"
    got = [r["val_bpb"] for r in read_log(Path(cfg.out_dir)) if "val_bpb" in r][-1]
    want = [r["val_bpb"] for r in read_log(straight_out) if "val_bpb" in r][-1]
    diff = abs(got - want)
    assert diff <= tol, f"val bpb {got:.4f} resumed vs {want:.4f} straight: |diff| {diff:.4f} > {tol}"
    return (f"stopped at {cfg.stop_at}, resumed in a fresh process: val bpb {got:.4f} vs {want:.4f} "
            f"straight (|diff| {diff:.1e} <= {tol})")


def check_sample(out: Path, device: str) -> str:
    model, ck = load_model(out, device)
    tok = load_run_tokenizer(ck["tokenizer"], ck.get("special_tokens"))
    start = torch.tensor([[ck["eot_id"]]], device=device)
    g = torch.Generator(device=device).manual_seed(0)
    ids = model.generate(start, 48, temperature=0.8, top_k=50, generator=g)[0, 1:].tolist()
    assert len(ids) == 48 and max(ids) < ck["model_config"]["vocab_size"], f"bad sample ids {ids[:10]}..."
    text = tok.decode(ids)
    assert text.strip(), "the sample decodes to blank text"
    return f"48 tokens from {out.name}/ckpt.pt: {text[:60]!r}..."


SDPA_OPS = {"flash": "_scaled_dot_product_flash_attention", "cudnn": "_scaled_dot_product_cudnn_attention",
            "efficient": "_scaled_dot_product_efficient_attention", "math": "_scaled_dot_product_attention_math"}


def attention_step(model, x, amp):
    with amp():
        _, loss = model(x, x)
    loss.backward()
    return loss


def check_flash(cfg, device: str) -> str:
    """The model's own attention, forward and backward, with SDPA allowed only the flash kernel
    (raises "No available kernel" if flash cannot take these shapes or this dtype)."""
    dtype = autocast_dtype(cfg.dtype, device)
    if device.startswith("cuda") and dtype is None:
        raise AssertionError(f"this GPU ({torch.cuda.get_device_name()}) gets float32, and flash attention "
                             "needs fp16/bf16: it cannot be used here")
    amp = (lambda: torch.autocast(device.split(":")[0], dtype=dtype)) if dtype else contextlib.nullcontext
    shapes = [{k: getattr(cfg, k) for k in ("n_layer", "n_head", "n_embd", "block_size")}]
    if device.startswith("cuda"):  # and the 124M's: 12 heads of 64 over 1024 positions
        big = load_config(ROOT / "configs" / "gpt2-small.toml")
        shapes.append({k: getattr(big, k) for k in ("n_head", "n_embd", "block_size")} | {"n_layer": 1})
    seen = []
    for shape in shapes:
        model = GPT(GPTConfig(vocab_size=256, **shape)).to(device)
        x = torch.randint(0, 256, (2, shape["block_size"]), device=device)
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            attention_step(model, x, amp)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            attention_step(model, x, amp)
        ops = {e.key for e in prof.key_averages()}
        chosen = [name for name, op in SDPA_OPS.items() if any(op in key for key in ops)]
        assert chosen and "math" not in chosen, f"unrestricted SDPA ran {chosen or 'no known kernel'} for {shape}"
        seen.append(f"{shape['n_head']}x{shape['n_embd'] // shape['n_head']} over {shape['block_size']}: "
                    f"{'/'.join(chosen)}")
    where = "CUDA" if device.startswith("cuda") else "the CPU's own flash kernel"
    return f"flash-only SDPA ran forward+backward ({where}, {'bf16' if dtype else 'fp32'}); default picks " + \
        "; ".join(seen)


def check_speed(size: Size, device: str) -> str:
    """tokens/s, MFU and peak memory of one training step (model, backward, AdamW) of the 124M.

    Not through train(): the numbers mean something only with GPT-2's 50k vocabulary (its output
    layer is a third of the FLOPs and most of the memory), and no shards with one can be made
    offline. The pieces are the library's: GPT, configure_optimizer, autocast_dtype, estimate_mfu.
    """
    cfg = load_config(ROOT / "configs" / "gpt2-small.toml", {"device": device})
    mcfg = GPTConfig(**size.speed_model) if size.speed_model else \
        GPTConfig(vocab_size=GPT2_SMALL_VOCAB, **{k: getattr(cfg, k) for k in MODEL_KEYS})
    batch = size.speed_batch or cfg.batch_size
    dtype = autocast_dtype(cfg.dtype, device)
    amp = (lambda: torch.autocast(device.split(":")[0], dtype=dtype)) if dtype else contextlib.nullcontext
    cuda = device.startswith("cuda")
    torch.manual_seed(0)
    model = GPT(mcfg).to(device)
    optimizer = configure_optimizer(model, cfg, device)
    if cuda:
        torch.compiler.reset()
        torch.cuda.reset_peak_memory_stats()
    run = torch.compile(model) if cuda else model
    x = torch.randint(0, mcfg.vocab_size, (batch, mcfg.block_size), device=device)
    y = torch.randint(0, mcfg.vocab_size, (batch, mcfg.block_size), device=device)

    def step():
        with amp():
            _, loss = run(x, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    warm, timed = size.speed_steps
    for _ in range(warm):
        step()
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(timed):
        loss = step()
    if cuda:
        torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / timed
    assert math.isfinite(loss.item()), f"loss {loss.item()} after {warm + timed} steps"
    tokens = batch * mcfg.block_size
    what = f"{model.num_params():,} non-embedding params, {batch} x {mcfg.block_size} tokens per step"
    if not cuda:
        return f"toy model on CPU ({what}): {tokens / dt:,.0f} tok/s; the 124M, MFU and peak memory need CUDA"
    mfu = model.estimate_mfu(tokens, dt, device_peak_flops())
    return (f"124M ({what}, {'bf16' if dtype else 'fp32'}, compiled): {tokens / dt:,.0f} tok/s, "
            f"{dt * 1000:.0f} ms/step, MFU {f'{mfu:.1%}' if mfu else 'n/a (peak unknown for this GPU)'}, "
            f"peak memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


def check_ddp(size: Size, device: str, tok: Path, shards: Path, work: Path) -> str:
    """2 NCCL processes x 2 micro-steps against 1 process x 4 at the same global batch.

    The ranks draw other training windows than one process does, so the losses agree in value,
    not bit for bit (tests/test_train_gpt.py checks the exact equality on CPU with gloo).
    """
    global_tokens = 4 * size.model["batch_size"] * size.model["block_size"]
    steps = size.steps * 2 // 3
    one = run_config(size, device, tok, shards, work / "ddp-1", total_batch_tokens=global_tokens, max_steps=steps,
                     eval_interval=steps, eval_batches=0)  # eval_batches counts per process: all of val
    train(one)
    two = load_config(None, {**asdict(one), "out_dir": str(work / "ddp-2")})
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(ROOT / "train_gpt.py"), *overrides(two)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"torchrun exited {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}"
    assert "2 process(es) x" in proc.stdout and "x 2 accum" in proc.stdout, "torchrun did not run 2 x 2 accum"
    logs = [read_log(work / name) for name in ("ddp-1", "ddp-2")]
    tail = [[r["loss"] for r in log if "loss" in r][-5:] for log in logs]
    loss1, loss2 = (sum(t) / len(t) for t in tail)
    bpb1, bpb2 = ([r["val_bpb"] for r in log if "val_bpb" in r][-1] for log in logs)
    assert abs(loss1 - loss2) < 0.05 and abs(bpb1 - bpb2) < 0.03, \
        f"2 processes: loss {loss2:.3f}, val bpb {bpb2:.4f}; 1 process: loss {loss1:.3f}, val bpb {bpb1:.4f}"
    return (f"{steps} steps of {global_tokens:,} tokens: last losses {loss2:.3f} (2 processes x 2 accum) vs {loss1:.3f}"
            f" (1 x 4), val bpb {bpb2:.4f} vs {bpb1:.4f}")


# ---- main ----------------------------------------------------------------------------------------

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cpu", action="store_true", help="the toy-size CPU dry run even where CUDA is available")
    p.add_argument("--keep", metavar="DIR", help="keep the data and runs in DIR (new or empty) instead of a temp dir")
    args = p.parse_args(argv)
    if args.keep and Path(args.keep).exists() and any(Path(args.keep).iterdir()):
        print(f"error: --keep {args.keep}: the folder is not empty; give a new or empty one", file=sys.stderr)
        return 2

    cuda = torch.cuda.is_available() and not args.cpu
    device, size = ("cuda", GPU) if cuda else ("cpu", CPU)
    n_gpus = torch.cuda.device_count() if cuda else 0
    where = f"{n_gpus} x {torch.cuda.get_device_name()}" if cuda else \
        f"CPU ({'--cpu' if args.cpu else 'no CUDA device'}), a dry run at toy size"
    if not cuda:
        torch.set_num_threads(1)  # as the runs' threads=1: more threads than free cores only spin
    print(f"gpu-check on {where}, torch {torch.__version__}", flush=True)
    t0 = time.perf_counter()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    checks = Checks()
    try:
        try:
            tok, shards = make_data(size, work)
        except Exception as e:  # nothing else can run without data; say why and stop
            checks.add("data", "failed", f"{type(e).__name__}: {e}")
        else:
            checks.add("data", "passed", f"tokenizer (vocab {size.vocab_size}) and shards from "
                       f"{size.text_chars:,} chars of the standard library's source")
            straight = run_config(size, device, tok, shards, work / "straight")
            trained = checks.run("train", check_train, straight)
            if trained:
                stopped = run_config(size, device, tok, shards, work / "resumed", stop_at=size.stop_at)
                checks.run("resume", check_resume, stopped, work / "straight", size.resume_tol)
                checks.run("sample", check_sample, work / "straight", device)
            else:
                for name in ("resume", "sample"):
                    checks.add(name, "skipped", "the train check failed")
            checks.run("flash", check_flash, straight, device)
            checks.run("speed", check_speed, size, device)
            if n_gpus >= 2:
                checks.run("ddp", check_ddp, size, device, tok, shards, work)
            else:
                checks.add("ddp", "skipped", f"needs 2+ CUDA GPUs, found {n_gpus}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    passed, failed, skipped = (checks.count(s) for s in ("passed", "failed", "skipped"))
    width = max(len(name) for name, _, _ in checks.rows)
    print("\n" + "\n".join(f"  {name:<{width}}  {status:<7}  {detail}" for name, status, detail in checks.rows))
    skips = ", ".join(f"{name} ({detail})" for name, status, detail in checks.rows if status == "skipped")
    verdict = "PASSED" if not failed else "FAILED"
    print(f"gpu-check {verdict} on {where}: {passed} passed, {failed} failed, {skipped} skipped"
          + (f"; skipped: {skips}" if skips else "")
          + ("" if cuda else "; not exercised without CUDA: bf16, torch.compile, CUDA flash attention, the 124M's "
             "speed, MFU and memory, NCCL") + f"; {time.perf_counter() - t0:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
