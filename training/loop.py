"""The training loop: config -> init -> data -> model -> optimizer -> loop -> checkpoints.

Read it top to bottom like nanoGPT's train.py; `train(cfg)` is a function so that train_gpt.py and
the studies run the same loop.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

import torch

from data.loader import ShardLoader
from data.prepare import PrepareError, tokenizer_sha256
from data.shards import MANIFEST, load_token_bytes, read_manifest
from model.gpt import GPT, GPTConfig
from training.checkpoint import (RESUME_KEYS, is_tokenizer_spec, load_checkpoint, load_run_tokenizer,
                                 save_checkpoint)
from training.config import MODEL_KEYS, ConfigError, TrainConfig
from training.evaluate import evaluate_bpb, sample_text
from training.runtime import (all_reduce_sum, autocast_dtype, device_peak_flops, gather, pick_threads,
                              setup_distributed)


def get_lr(step: int, cfg: TrainConfig) -> float:
    """Learning rate for optimizer step `step` (0-based): linear warmup, then cosine or linear decay."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    decay = 0.5 * (1 + math.cos(math.pi * progress)) if cfg.schedule == "cosine" else 1 - progress
    return cfg.lr * (cfg.min_lr_frac + (1 - cfg.min_lr_frac) * decay)


def open_data(cfg: TrainConfig):
    """Read the manifest, check the shards were made with cfg.tokenizer, return (manifest, token_bytes)."""
    if not (Path(cfg.data_dir) / MANIFEST).is_file():
        tok = cfg.tokenizer or "tokenizers/NAME.model"
        raise ConfigError(f"no shards in {cfg.data_dir} (no {MANIFEST}); make them with: python -m data.prepare "
                          f"--tokenizer {tok} --source shakespeare --out {cfg.data_dir}  (or point --data_dir "
                          "at a data.prepare output)")
    manifest = read_manifest(cfg.data_dir)
    recorded = manifest.get("tokenizer", {})
    if cfg.tokenizer:
        try:  # a file's bytes, or a pretrained name's saved form: what data.prepare recorded
            sha = tokenizer_sha256(cfg.tokenizer)
        except PrepareError as e:
            raise ConfigError(f"{str(e).removeprefix('--tokenizer ')} (set --tokenizer=PATH or a pretrained "
                              "name, or --tokenizer= to use the one recorded in the shards' meta.json)") from None
        if sha != recorded.get("sha256"):
            raise ConfigError(f"{cfg.data_dir}/meta.json: the shards were made with tokenizer "
                              f"{recorded.get('path')!r} (sha256 {str(recorded.get('sha256'))[:12]}...), but "
                              f"{cfg.tokenizer} has sha256 {sha[:12]}...; re-run data.prepare with this "
                              "tokenizer or point --tokenizer at the right file")
    return manifest, load_token_bytes(cfg.data_dir)


class NonFiniteLoss(RuntimeError):
    pass


def param_groups(params, weight_decay: float) -> list[dict]:
    """AdamW groups: weight decay on matrices only; decaying norm gains or biases just fights the model."""
    params = [p for p in params if p.requires_grad]
    return [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]


def configure_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: str) -> torch.optim.AdamW:
    """AdamW over the trainable parameters, grouped by `param_groups`; fused: one kernel, not a loop."""
    return torch.optim.AdamW(param_groups(model.parameters(), cfg.weight_decay), lr=cfg.lr,
                             betas=(cfg.beta1, cfg.beta2), fused=device.split(":")[0] in ("cuda", "cpu"))


class _StopFlag:
    """First Ctrl-C asks the loop to checkpoint and stop at the end of the step (under DDP at the next
    sync step, where the processes agree); a second one aborts."""

    def __init__(self):
        self.requested, self.previous = False, None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # signal() works only there
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nCtrl-C: saving a checkpoint at the end of this step (press again to abort)", flush=True)

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def check_out_dir(cfg: TrainConfig, out_dir: Path) -> None:
    """Refuse to start over a run already in out_dir unless told what to do with it (nothing touched)."""
    if cfg.resume or cfg.overwrite:
        return
    found = [name for name in ("ckpt.pt", "log.jsonl") if (out_dir / name).exists()]
    if found:
        raise ConfigError(f"{out_dir} already holds a run ({', '.join(found)}): pass --resume to continue it, "
                          "--overwrite to replace it, or choose another --out_dir")


SCHEDULE_KEYS = ("max_steps", "lr", "warmup_steps", "schedule", "min_lr_frac")


def check_resume(ck: dict, ckpt_path: Path, cfg: TrainConfig, world: int, manifest: dict) -> list[str]:
    """Refuse a checkpoint this run cannot continue; return warnings for what it may change."""
    saved = ck["config"]
    changed = [k for k in MODEL_KEYS if saved.get(k) != getattr(cfg, k)]
    if changed:
        raise ConfigError(f"{ckpt_path}: cannot resume: model settings differ ({', '.join(changed)})")
    if ck["world_size"] != world:
        raise ConfigError(f"{ckpt_path}: cannot resume: written by {ck['world_size']} processes, now {world} "
                          "(the loader and RNG states are per process)")
    if ck["model_config"].get("vocab_size") != manifest["vocab_size"]:
        raise ConfigError(f"{ckpt_path}: cannot resume: the model has vocab_size {ck['model_config'].get('vocab_size')}"
                          f" but the shards in {cfg.data_dir} have {manifest['vocab_size']}; resume with the "
                          "shards it was trained on, or train a new model in another --out_dir")
    sha = manifest.get("tokenizer", {}).get("sha256", "")
    if ck.get("tokenizer_sha256") and ck["tokenizer_sha256"] != sha:
        raise ConfigError(f"{ckpt_path}: cannot resume: it was trained on tokenizer sha256 "
                          f"{ck['tokenizer_sha256'][:12]}... but the shards in {cfg.data_dir} were made with "
                          f"{sha[:12]}... (same vocab size, different ids); resume with the original "
                          "--data_dir/--tokenizer, or train a new model in another --out_dir")
    moved = [f"{k} {saved.get(k)!r} -> {getattr(cfg, k)!r}" for k in SCHEDULE_KEYS
             if k in saved and saved[k] != getattr(cfg, k)]
    return [f"resuming with a changed lr schedule ({', '.join(moved)}): the lr jumps at step {ck['step']}"] \
        if moved else []


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def train(cfg: TrainConfig) -> dict:
    """Run training as configured; return the final metrics (see docs/design.md).

    Process-wide torch settings the run changes (CPU threads, TF32) are restored when it returns,
    so a study that trains several models, or a test session, gets its own back.
    """
    rank, world, device = setup_distributed(cfg)
    threads = torch.get_num_threads()
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.set_num_threads(pick_threads(cfg.threads, device))
    try:
        return _train(cfg, rank, world, device)
    finally:
        torch.set_num_threads(threads)
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32


def _train(cfg: TrainConfig, rank: int, world: int, device: str) -> dict:
    # ---- init
    master = rank == 0
    device_type = device.split(":")[0]
    amp_dtype = autocast_dtype(cfg.dtype, device)
    autocast = (lambda: torch.autocast(device_type=device_type, dtype=amp_dtype)) if amp_dtype \
        else contextlib.nullcontext
    if device_type == "cuda":
        # Under bf16 autocast the matmuls left in float32 may as well use TF32; dtype=float32 means float32.
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = amp_dtype is not None
    out_dir = Path(cfg.out_dir)
    ckpt_path = out_dir / "ckpt.pt"
    check_out_dir(cfg, out_dir)

    # ---- data
    manifest, token_bytes = open_data(cfg)
    vocab_size = int(manifest["vocab_size"])
    # SentencePiece shards: the dummy-prefix space after each <s> is not text (see evaluate_bpb)
    doc_start = manifest.get("doc_start_id") if manifest.get("tokenizer", {}).get("adds_dummy_prefix") else None
    tok_path = cfg.tokenizer or manifest.get("tokenizer", {}).get("path", "")
    tokens_per_micro = cfg.batch_size * cfg.block_size * world
    total = cfg.total_batch_tokens or tokens_per_micro
    if total % tokens_per_micro:
        raise ConfigError(f"total_batch_tokens={total} is not a multiple of batch_size*block_size*world_size"
                          f" = {cfg.batch_size}*{cfg.block_size}*{world} = {tokens_per_micro}")
    accum = total // tokens_per_micro
    train_loader = ShardLoader(cfg.data_dir, "train", cfg.batch_size, cfg.block_size,
                               rank=rank, world_size=world, seed=cfg.seed, device=device)
    val_loader = ShardLoader(cfg.data_dir, "val", cfg.batch_size, cfg.block_size,
                             rank=rank, world_size=world, seed=cfg.seed, device=device)

    # ---- model: same seed on every rank, then a per-rank seed so dropout differs across ranks
    torch.manual_seed(cfg.seed)
    mcfg = GPTConfig(vocab_size=vocab_size, dropout=cfg.dropout, **{k: getattr(cfg, k) for k in MODEL_KEYS})
    raw_model = GPT(mcfg).to(device)
    torch.manual_seed(cfg.seed + rank)

    # ---- optimizer, and resume
    optimizer = configure_optimizer(raw_model, cfg, device)
    step, tokens, last_eval = 0, 0, {"val_loss": float("nan"), "val_bpb": float("nan")}
    warnings = []
    if cfg.max_steps <= cfg.warmup_steps:
        warnings.append(f"max_steps={cfg.max_steps} <= warmup_steps={cfg.warmup_steps}: the lr never "
                        "leaves warmup, so it never decays")
    if cfg.resume:
        if not ckpt_path.is_file():
            raise ConfigError(f"--resume: no checkpoint at {ckpt_path} (drop --resume to start a new run there)")
        ck = load_checkpoint(ckpt_path, require=RESUME_KEYS)
        warnings += check_resume(ck, ckpt_path, cfg, world, manifest)
        raw_model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        train_loader.load_state_dict(ck["loaders"][rank])
        torch.set_rng_state(ck["rng"][rank]["cpu"])
        if device_type == "cuda" and ck["rng"][rank]["cuda"] is not None:
            torch.cuda.set_rng_state(ck["rng"][rank]["cuda"])
        step, last_eval = ck["step"], ck.get("last_eval", last_eval)
        saved = ck["config"]  # checkpoints before "tokens" was stored: every step had the saved batch
        tokens = ck.get("tokens", step * (saved.get("total_batch_tokens") or
                                          saved["batch_size"] * saved["block_size"] * ck["world_size"]))
        if master:
            print(f"resumed from {ckpt_path} at step {step}")
    if master:
        for message in warnings:
            warn(message)
        out_dir.mkdir(parents=True, exist_ok=True)
        Path(f"{ckpt_path}.tmp").unlink(missing_ok=True)  # left by a write that was killed
        if cfg.overwrite:
            ckpt_path.unlink(missing_ok=True)  # asked for: a failed new run must not leave the old one beside it
    if cfg.compile:
        torch.compiler.reset()  # a fresh cache per run: another model's graphs would count against its limit
    model = torch.compile(raw_model) if cfg.compile else raw_model
    if world > 1:
        # broadcast_buffers=False: the only buffers are the RoPE tables, computed from the config and
        # equal on every rank; broadcasting them would cost a collective every forward pass.
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[int(os.environ["LOCAL_RANK"])] if device_type == "cuda" else None,
            broadcast_buffers=False)

    tok = None
    if master and (cfg.sample_tokens or cfg.end_sample_tokens) and tok_path and is_tokenizer_spec(tok_path):
        tok = load_run_tokenizer(tok_path, manifest.get("tokenizer", {}).get("special_tokens"))
    log_file = open(out_dir / "log.jsonl", "a" if cfg.resume else "w") if master else None
    wandb_run = None
    if master and cfg.wandb_project:
        import wandb  # optional dependency: only needed when asked for

        wandb_run = wandb.init(project=cfg.wandb_project, name=cfg.wandb_run_name or None, config=asdict(cfg),
                               dir=os.environ.get("WANDB_DIR", str(out_dir)))

    def log(record: dict, line: str | None = None):
        if not master:
            return
        if line:
            print(line, flush=True)
        log_file.write(json.dumps(record) + "\n")
        log_file.flush()
        if wandb_run is not None:
            wandb_run.log({k: v for k, v in record.items() if k != "step" and v is not None}, step=record["step"])

    def checkpoint():
        loaders = gather(train_loader.state_dict(), world)
        rngs = gather({"cpu": torch.get_rng_state(),
                       "cuda": torch.cuda.get_rng_state() if device_type == "cuda" else None}, world)
        if master:
            save_checkpoint(ckpt_path, {
                "model": raw_model.state_dict(), "optimizer": optimizer.state_dict(), "loaders": loaders,
                "rng": rngs, "step": step, "tokens": tokens, "world_size": world, "config": asdict(cfg),
                "model_config": asdict(mcfg), "tokenizer": os.path.abspath(tok_path) if os.path.isfile(tok_path) else tok_path,
                "tokenizer_sha256": manifest.get("tokenizer", {}).get("sha256", ""),
                "special_tokens": manifest.get("tokenizer", {}).get("special_tokens", {}),
                "eot_id": manifest.get("eot_id"), "last_eval": last_eval})

    def run_eval():
        loss, bpb = evaluate_bpb(model, val_loader, token_bytes, cfg.eval_batches or None, autocast, doc_start)
        last_eval.update(val_loss=loss, val_bpb=bpb)
        log({"step": step, "val_loss": loss, "val_bpb": bpb},
            f"step {step:>6} | val loss {loss:.4f} | val bpb {bpb:.4f}")
        if tok is not None and cfg.sample_tokens:
            print("---\n" + sample_text(raw_model, tok, manifest.get("eot_id"), cfg.sample_tokens, cfg,
                                       cfg.seed + step, device) + "\n---", flush=True)

    peak_flops = device_peak_flops() if device_type == "cuda" else None  # MFU is a GPU figure
    if master:
        print(f"model: {raw_model.num_params():,} non-embedding params, vocab {vocab_size} "
              f"(padded {mcfg.padded_vocab_size}) | {device}{' bf16' if amp_dtype else ''}"
              f"{f', {torch.get_num_threads()} threads' if device_type == 'cpu' else ''} | "
              f"{world} process(es) x {cfg.batch_size} x {cfg.block_size} x {accum} accum = {total:,} tokens/step")

    # ---- loop
    # The host waits for the device only at sync steps (logging, eval, checkpoint, the end): that is
    # when the loss is read, checked for NaN/inf, and the processes agree on a Ctrl-C. In between the
    # GPU runs ahead. A checkpoint is only written at a sync step whose loss was finite.
    end = min(cfg.max_steps, cfg.stop_at) if cfg.stop_at else cfg.max_steps
    timed_tokens, timed_s, interrupted = 0, 0.0, False
    window_steps, t0 = 0, time.perf_counter()
    model.train()
    with _StopFlag() as stop:
        while step < end:
            lr = get_lr(step, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss_sum = torch.zeros((), device=device)
            for micro in range(accum):
                x, y = train_loader.next_batch()
                # Only the last micro-step all-reduces gradients; the others just accumulate locally.
                sync = contextlib.nullcontext() if world == 1 or micro == accum - 1 else model.no_sync()
                with sync, autocast():
                    _, loss = model(x, y)
                (loss / accum).backward()
                loss_sum += loss.detach()
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip) if cfg.grad_clip else None
            nonfinite = (~torch.isfinite(loss_sum)).float()  # on the device: no host sync here
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            tokens += total
            window_steps += 1
            eval_now = step % cfg.eval_interval == 0 or step == cfg.max_steps
            ckpt_now = (cfg.ckpt_interval and step % cfg.ckpt_interval == 0) or step == end
            if not (step == 1 or step % cfg.log_interval == 0 or eval_now or ckpt_now
                    or (world == 1 and stop.requested)):
                continue
            # One all-reduce: the mean loss over all processes, any non-finite loss, any Ctrl-C.
            flags = all_reduce_sum(torch.stack([loss_sum.float() / accum, nonfinite,
                                                torch.tensor(float(stop.requested), device=device)]))
            summed_means, bad, stops = flags.tolist()  # the device-to-host sync
            loss_val, stop.requested = summed_means / world, stops > 0
            if bad or not math.isfinite(loss_val):
                where = f"the last good checkpoint {ckpt_path} is kept" if ckpt_path.exists() else \
                    "no checkpoint was written"
                msg = (f"loss is {loss_val} at step {step}: training stopped ({where}). "
                       "Try a lower lr, more warmup or grad_clip.")
                log({"step": step, "error": msg})
                _finish(log_file, wandb_run)
                raise NonFiniteLoss(msg)
            dt = (time.perf_counter() - t0) / window_steps  # seconds per step over the window
            if step > 1 or end == 1:  # the first step pays for compilation and allocator warm-up
                timed_tokens, timed_s = timed_tokens + total * window_steps, timed_s + dt * window_steps
            if step % cfg.log_interval == 0 or step == end:
                mfu = raw_model.estimate_mfu(total // world, dt, peak_flops)
                line = (f"step {step:>6}/{cfg.max_steps} | loss {loss_val:.4f} | lr {lr:.2e} | "
                        f"{total / dt:,.0f} tok/s | {dt * 1000:.1f} ms" + (f" | mfu {mfu:.1%}" if mfu else ""))
                log({"step": step, "loss": loss_val, "lr": lr, "tokens_per_s": total / dt, "ms": dt * 1000,
                     "mfu": mfu, "grad_norm": norm.item() if norm is not None else None}, line)
            if eval_now:
                run_eval()
            if stop.requested:
                interrupted = True
                break
            if ckpt_now:
                checkpoint()
            window_steps, t0 = 0, time.perf_counter()  # eval and checkpoint time is not step time
        if interrupted:
            checkpoint()
            if master:
                print(f"stopped by Ctrl-C at step {step}; checkpoint {ckpt_path} (continue with --resume)")

    # ---- report
    if master and tok is not None and cfg.end_sample_tokens and not interrupted:
        print("--- sample ---\n" + sample_text(raw_model, tok, manifest.get("eot_id"), cfg.end_sample_tokens,
                                               cfg, cfg.seed, device) + "\n--------------", flush=True)
    # Over the steps after the first (see the loop): compare these with a config's estimate.
    tokens_per_s = timed_tokens / timed_s if timed_s else float("nan")
    mfu = raw_model.estimate_mfu(timed_tokens // world, timed_s, peak_flops)
    if master and timed_s:
        print(f"run: {tokens_per_s:,.0f} tok/s" + (f" | mfu {mfu:.1%} of {peak_flops / 1e12:.0f} TFLOP/s bf16 peak"
                                                    if mfu else "") + " (mean of the timed steps)", flush=True)
    _finish(log_file, wandb_run)
    return {**last_eval, "out_dir": str(out_dir), "ckpt": str(ckpt_path), "steps": step, "tokens": tokens,
            "tokens_per_s": tokens_per_s, "mfu": mfu, "interrupted": interrupted}


def _finish(log_file, wandb_run):
    if log_file is not None:
        log_file.close()
    if wandb_run is not None:
        wandb_run.finish()
