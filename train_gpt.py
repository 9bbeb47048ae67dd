"""Train a GPT on token shards and report validation bits per byte.

    python train_gpt.py configs/tiny.toml [--key=value ...]        # one process (CPU, MPS or one GPU)
    torchrun --nproc_per_node 8 train_gpt.py configs/gpt2-small.toml  # DDP, one process per GPU

Why bits per byte: loss per token cannot be compared across tokenizers (a bigger vocabulary makes
fewer, harder tokens). Summing the loss over a fixed text and dividing by that text's UTF-8 bytes
gives a number that only depends on how well the model predicts the text.

The script reads top to bottom like nanoGPT's train.py -- config, init, data, model, optimizer,
loop -- but the pieces are functions so studies can `from train_gpt import train, load_config`.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import math
import os
import signal
import sys
import threading
import time
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F

from model.gpt import GPT, GPTConfig

# ------------------------------------------------------------------------------------------------
# config


@dataclass
class TrainConfig:
    # I/O
    data_dir: str = "data/shards/shakespeare"  # a `python -m data.prepare` output directory
    tokenizer: str = "tokenizers/shakespeare.model"  # must be the file the shards were made with
    out_dir: str = "out/tiny"
    resume: bool = False             # continue from out_dir/ckpt.pt exactly where it stopped
    # system
    seed: int = 1337
    device: str = "auto"             # auto = cuda > mps > cpu
    dtype: str = "auto"              # auto = bfloat16 autocast on CUDA, float32 elsewhere
    compile: bool = False            # torch.compile the model (worth it on GPU for long runs)
    # model (vocab_size comes from the shards' manifest)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 256
    dropout: float = 0.0
    bias: bool = False
    rope: bool = True
    norm: str = "rmsnorm"
    tie_embeddings: bool = True
    # batch: batch_size sequences per micro-step per process, accumulated up to total_batch_tokens
    batch_size: int = 16
    total_batch_tokens: int = 0      # 0 = one micro-step per process (no accumulation)
    # optimisation
    max_steps: int = 1000
    stop_at: int = 0                 # stop early (checkpointed, schedule unchanged) after this step; 0 = off
    lr: float = 1e-3
    min_lr_frac: float = 0.1         # final lr = lr * min_lr_frac (0 with schedule=linear: linear-to-zero)
    warmup_steps: int = 100
    schedule: str = "cosine"         # cosine | linear
    weight_decay: float = 0.1        # decoupled (AdamW), on matrices only
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0           # 0 = off
    # evaluation, logging, checkpoints
    eval_interval: int = 250
    eval_batches: int = 20           # val batches per process per eval; 0 = the whole val split
    log_interval: int = 1
    ckpt_interval: int = 0           # 0 = only at the end (and on Ctrl-C)
    sample_tokens: int = 0           # > 0: print a sample of this length at every eval
    end_sample_tokens: int = 200     # sample printed at the end of training
    temperature: float = 0.8
    top_k: int = 50
    wandb_project: str = ""          # "" = off; WANDB_MODE=offline works with no network
    wandb_run_name: str = ""


MODEL_KEYS = ("n_layer", "n_head", "n_embd", "block_size", "bias", "rope", "norm", "tie_embeddings")


class ConfigError(ValueError):
    pass


def parse_overrides(items) -> dict[str, str]:
    """["--key=value", "--flag", ...] -> {"key": "value", "flag": "true"}; dashes in keys become "_"."""
    pairs = {}
    for item in items:
        key, eq, value = item.lstrip("-").partition("=")
        pairs[key.replace("-", "_")] = value if eq else "true"
    return pairs


def read_toml(path, error=ConfigError) -> dict:
    """The TOML file's top-level table; a missing file or bad TOML raises `error` naming the file."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise error(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise error(f"{path}: invalid TOML: {e}") from None


def coerce(key: str, value, default, where: str, error=ConfigError):
    """Check a TOML value, or parse a command-line string, into the type of the key's default.

    A list default takes a TOML array or a comma-separated string, its items the type of
    default[0] (str if empty). An int may be written 2e6 on the command line: budgets are big.
    """
    want = type(default)
    if want is list:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise error(f"{where}: {key} must be a list, got {value!r}")
        return [coerce(key, v, default[0] if default else "", where, error) for v in value]
    if isinstance(value, str) and want is not str:
        text = value.strip().lower()
        try:
            if want is bool:
                if text not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                return text in ("true", "1", "yes")
            if want is int and not text.lstrip("+-").isdigit():
                number = float(text)
                if not number.is_integer():  # 2e6 is an int, 1.5 is not
                    raise ValueError
                return int(number)
            return want(value)
        except ValueError:
            raise error(f"{where}: {key} must be {want.__name__}, got {value!r}") from None
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, want) or (want is int and isinstance(value, bool)):
        raise error(f"{where}: {key} must be {want.__name__}, got {value!r}")
    return value


def load_dataclass(cls, path=None, overrides=None, *, error=ConfigError,
                   help_cmd="python train_gpt.py --help"):
    """cls() <- TOML file <- overrides ({key: value} or ["--key=value", ...]), each value checked
    against the type of its field's default. The studies load their own config classes with it."""
    defaults = cls()
    known = {f.name for f in fields(cls)}
    values = {}
    for key, value in (read_toml(path, error) if path else {}).items():
        if key not in known:
            raise error(f"{path}: unknown key {key!r} (run `{help_cmd}` for the list)")
        values[key] = coerce(key, value, getattr(defaults, key), str(path), error)
    if isinstance(overrides, (list, tuple)):
        overrides = parse_overrides(overrides)
    for key, value in (overrides or {}).items():
        if key not in known:
            raise error(f"unknown config key {key!r} (run `{help_cmd}` for the list)")
        values[key] = coerce(key, value, getattr(defaults, key), "command line", error)
    return cls(**values)


def field_types() -> dict[str, type]:
    """Each key's type, read off its default (every default is a str, int, float or bool)."""
    defaults = TrainConfig()
    return {f.name: type(getattr(defaults, f.name)) for f in fields(TrainConfig)}


def load_config(path: str | None = None, overrides: dict | list | None = None) -> TrainConfig:
    """TrainConfig from defaults <- TOML file <- overrides ({key: value} or ["--key=value", ...])."""
    cfg = load_dataclass(TrainConfig, path, overrides)
    if cfg.schedule not in ("cosine", "linear"):
        raise ConfigError(f"schedule must be 'cosine' or 'linear', got {cfg.schedule!r}")
    if cfg.eval_interval < 1 or cfg.log_interval < 1:
        raise ConfigError("eval_interval and log_interval must be >= 1")
    if cfg.dtype not in ("auto", "float32", "bfloat16"):
        raise ConfigError(f"dtype must be auto, float32 or bfloat16, got {cfg.dtype!r}")
    return cfg


def get_lr(step: int, cfg: TrainConfig) -> float:
    """Learning rate for optimizer step `step` (0-based): linear warmup, then cosine or linear decay."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    decay = 0.5 * (1 + math.cos(math.pi * progress)) if cfg.schedule == "cosine" else 1 - progress
    return cfg.lr * (cfg.min_lr_frac + (1 - cfg.min_lr_frac) * decay)


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------
# init: device, distributed


def pick_device(name: str) -> str:
    if name != "auto":
        return name
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def setup_distributed(cfg: TrainConfig) -> tuple[int, int, str]:
    """(rank, world_size, device). torchrun sets RANK/WORLD_SIZE/LOCAL_RANK; plain python runs alone."""
    if "RANK" not in os.environ:
        return 0, 1, pick_device(cfg.device)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    device = pick_device(cfg.device)
    if device.startswith("cuda"):
        device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return rank, world, device


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


# ------------------------------------------------------------------------------------------------
# data


def open_data(cfg: TrainConfig):
    """Read the manifest, check the shards were made with cfg.tokenizer, return (manifest, token_bytes)."""
    from data.shards import load_token_bytes, read_manifest

    manifest = read_manifest(cfg.data_dir)
    recorded = manifest.get("tokenizer", {})
    if cfg.tokenizer:
        if not os.path.isfile(cfg.tokenizer):
            raise FileNotFoundError(f"tokenizer file not found: {cfg.tokenizer} (set --tokenizer=PATH, "
                                    "or --tokenizer= to use the one recorded in the shards' meta.json)")
        sha = sha256_file(cfg.tokenizer)
        if sha != recorded.get("sha256"):
            raise ConfigError(f"{cfg.data_dir}/meta.json: the shards were made with tokenizer "
                             f"{recorded.get('path')!r} (sha256 {str(recorded.get('sha256'))[:12]}...), but "
                             f"{cfg.tokenizer} has sha256 {sha[:12]}...; re-run data.prepare with this "
                             "tokenizer or point --tokenizer at the right file")
    return manifest, load_token_bytes(cfg.data_dir)


@torch.no_grad()
def evaluate_bpb(model, loader, token_bytes, max_batches=None, autocast=contextlib.nullcontext):
    """(mean loss in nats per token, bits per byte) over the val loader's fixed pass.

    bpb = sum of per-token losses / (ln 2 * sum of the UTF-8 bytes of the target tokens): a sum over
    tokens, not a mean of batch means, so every byte weighs the same. Targets of 0 bytes (specials
    such as <|endoftext|>) still add their loss: predicting a document's end is part of the text.
    Under DDP the sums are all-reduced, so every rank returns the global figures.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    tb = torch.as_tensor(token_bytes, dtype=torch.int64, device=device)
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # nats, bytes, tokens
    for x, y in itertools.islice(loader, max_batches or None):  # islice: no batch read past the last
        x, y = x.to(device), y.to(device)
        with autocast():
            logits, _ = model(x)
        nats = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1),
                               ignore_index=-1, reduction="sum")
        valid = y >= 0
        sums += torch.stack([nats.double(), tb[y[valid]].sum().double(), valid.sum().double()])
    all_reduce_sum(sums)
    model.train(was_training)
    nats, nbytes, ntok = sums.tolist()
    if ntok == 0:
        raise ValueError("the validation split produced no batches (is it shorter than block_size+1 tokens?)")
    return nats / ntok, nats / (math.log(2) * nbytes)


def load_run_tokenizer(path: str, special_tokens: dict | None):
    """The run's tokenizer, with any specials data.prepare registered (e.g. an added <|endoftext|>)."""
    from tokenizer import load

    tok = load(path)
    missing = {k: v for k, v in (special_tokens or {}).items() if k not in tok.special_tokens}
    if missing:
        tok.register_special_tokens(missing)
    return tok


def sample_text(model, tok, eot_id, n_tokens, cfg, seed, device) -> str:
    """Sample from a document start (<|endoftext|>) with its own generator, leaving the training RNG alone."""
    g = torch.Generator(device=device).manual_seed(seed)
    start = torch.tensor([[eot_id if eot_id is not None else 0]], device=device)
    was_training = model.training
    model.eval()
    out = model.generate(start, n_tokens, temperature=cfg.temperature, top_k=cfg.top_k or None, generator=g)
    model.train(was_training)
    return tok.decode(out[0, 1:].tolist())


# ------------------------------------------------------------------------------------------------
# checkpoints


def save_checkpoint(path: Path, state: dict) -> None:
    """Write atomically: a crash mid-write leaves the previous checkpoint intact."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from None


def gather(obj, world: int) -> list:
    """Every rank's obj, in rank order (the loader and RNG state differ per rank)."""
    if world == 1:
        return [obj]
    out = [None] * world
    dist.all_gather_object(out, obj)
    return out


class NonFiniteLoss(RuntimeError):
    pass


# ------------------------------------------------------------------------------------------------
# training


def configure_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: str) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only: decaying norm gains or biases just fights the model."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                             fused=device.split(":")[0] in ("cuda", "cpu"))  # one kernel, not a loop


class _StopFlag:
    """First Ctrl-C asks the loop to checkpoint and stop at the end of the step; a second one aborts."""

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


def train(cfg: TrainConfig) -> dict:
    """Run training as configured; return the final metrics (see docs/design.md)."""
    # ---- init
    rank, world, device = setup_distributed(cfg)
    master = rank == 0
    device_type = device.split(":")[0]
    use_bf16 = cfg.dtype == "bfloat16" or (cfg.dtype == "auto" and device_type == "cuda")
    autocast = (lambda: torch.autocast(device_type=device_type, dtype=torch.bfloat16)) if use_bf16 \
        else contextlib.nullcontext
    if device_type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    out_dir = Path(cfg.out_dir)
    ckpt_path = out_dir / "ckpt.pt"
    if master:
        out_dir.mkdir(parents=True, exist_ok=True)

    # ---- data
    from data.loader import ShardLoader

    manifest, token_bytes = open_data(cfg)
    vocab_size = int(manifest["vocab_size"])
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
    step, last_eval = 0, {"val_loss": float("nan"), "val_bpb": float("nan")}
    if cfg.resume:
        ck = load_checkpoint(ckpt_path)
        saved = ck["config"]
        changed = [k for k in MODEL_KEYS if saved.get(k) != getattr(cfg, k)]
        if changed or ck["world_size"] != world:
            raise ConfigError(f"{ckpt_path}: cannot resume: " + (f"model settings differ ({', '.join(changed)})"
                              if changed else f"written by {ck['world_size']} processes, now {world}"))
        raw_model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        train_loader.load_state_dict(ck["loaders"][rank])
        torch.set_rng_state(ck["rng"][rank]["cpu"])
        if device_type == "cuda" and ck["rng"][rank]["cuda"] is not None:
            torch.cuda.set_rng_state(ck["rng"][rank]["cuda"])
        step, last_eval = ck["step"], ck.get("last_eval", last_eval)
        if master:
            print(f"resumed from {ckpt_path} at step {step}")
    model = torch.compile(raw_model) if cfg.compile else raw_model
    if world > 1:
        # broadcast_buffers=False: the only buffers are the RoPE tables, computed from the config and
        # equal on every rank; broadcasting them would cost a collective every forward pass.
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[int(os.environ["LOCAL_RANK"])] if device_type == "cuda" else None,
            broadcast_buffers=False)

    tok = None
    if master and (cfg.sample_tokens or cfg.end_sample_tokens) and tok_path and os.path.isfile(tok_path):
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
                "rng": rngs, "step": step, "world_size": world, "config": asdict(cfg),
                "model_config": asdict(mcfg), "tokenizer": os.path.abspath(tok_path) if tok_path else "",
                "tokenizer_sha256": manifest.get("tokenizer", {}).get("sha256", ""),
                "special_tokens": manifest.get("tokenizer", {}).get("special_tokens", {}),
                "eot_id": manifest.get("eot_id"), "last_eval": last_eval})

    def run_eval():
        loss, bpb = evaluate_bpb(model, val_loader, token_bytes, cfg.eval_batches or None, autocast)
        last_eval.update(val_loss=loss, val_bpb=bpb)
        log({"step": step, "val_loss": loss, "val_bpb": bpb},
            f"step {step:>6} | val loss {loss:.4f} | val bpb {bpb:.4f}")
        if tok is not None and cfg.sample_tokens:
            print("---\n" + sample_text(raw_model, tok, manifest.get("eot_id"), cfg.sample_tokens, cfg,
                                       cfg.seed + step, device) + "\n---", flush=True)

    if master:
        print(f"model: {raw_model.num_params():,} non-embedding params, vocab {vocab_size} "
              f"(padded {mcfg.padded_vocab_size}) | {device}{' bf16' if use_bf16 else ''} | "
              f"{world} process(es) x {cfg.batch_size} x {cfg.block_size} x {accum} accum = {total:,} tokens/step")

    # ---- loop
    end = min(cfg.max_steps, cfg.stop_at) if cfg.stop_at else cfg.max_steps
    timed_tokens, timed_s, interrupted = 0, 0.0, False
    model.train()
    with _StopFlag() as stop:
        while step < end:
            t0 = time.perf_counter()
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
            # One all-reduce: the mean loss over all processes, and whether any of them got Ctrl-C.
            flags = all_reduce_sum(torch.stack([loss_sum.float() / accum, torch.tensor(
                float(stop.requested), device=device)]))
            summed_means, stops = flags.tolist()  # the step's one device-to-host sync
            loss_val, stop.requested = summed_means / world, stops > 0
            if not math.isfinite(loss_val):
                optimizer.zero_grad(set_to_none=True)
                where = f"the last good checkpoint {ckpt_path} is kept" if ckpt_path.exists() else \
                    "no checkpoint was written"
                msg = (f"loss is {loss_val} at step {step + 1}: training stopped ({where}). "
                       "Try a lower lr, more warmup or grad_clip.")
                if master:
                    log({"step": step + 1, "error": msg})
                _finish(log_file, wandb_run)
                raise NonFiniteLoss(msg)
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip) if cfg.grad_clip else None
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if device_type == "cuda":
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            if step > 1 or end == 1:  # the first step pays for compilation and allocator warm-up
                timed_tokens, timed_s = timed_tokens + total, timed_s + dt
            if step % cfg.log_interval == 0 or step == end:
                mfu = raw_model.estimate_mfu(total // world, dt) if device_type == "cuda" else None
                line = (f"step {step:>6}/{cfg.max_steps} | loss {loss_val:.4f} | lr {lr:.2e} | "
                        f"{total / dt:,.0f} tok/s | {dt * 1000:.1f} ms" + (f" | mfu {mfu:.1%}" if mfu else ""))
                log({"step": step, "loss": loss_val, "lr": lr, "tokens_per_s": total / dt, "ms": dt * 1000,
                     "mfu": mfu, "grad_norm": norm.item() if norm is not None else None}, line)
            if step % cfg.eval_interval == 0 or step == cfg.max_steps:
                run_eval()
            if stop.requested:
                interrupted = True
                break
            if (cfg.ckpt_interval and step % cfg.ckpt_interval == 0) or step == end:
                checkpoint()
        if interrupted:
            checkpoint()
            if master:
                print(f"stopped by Ctrl-C at step {step}; checkpoint {ckpt_path} (continue with --resume)")

    # ---- report
    if master and tok is not None and cfg.end_sample_tokens and not interrupted:
        print("--- sample ---\n" + sample_text(raw_model, tok, manifest.get("eot_id"), cfg.end_sample_tokens,
                                               cfg, cfg.seed, device) + "\n--------------", flush=True)
    _finish(log_file, wandb_run)
    return {**last_eval, "out_dir": str(out_dir), "steps": step, "tokens": step * total,
            "tokens_per_s": timed_tokens / timed_s if timed_s else float("nan"), "interrupted": interrupted}


def _finish(log_file, wandb_run):
    if log_file is not None:
        log_file.close()
    if wandb_run is not None:
        wandb_run.finish()


# ------------------------------------------------------------------------------------------------
# command line


def config_parser(cls, description: str, prog: str | None = None) -> argparse.ArgumentParser:
    """A parser with an optional TOML path and one --key option per field of the dataclass `cls`."""
    p = argparse.ArgumentParser(prog=prog, description=description, allow_abbrev=False)
    p.add_argument("config", nargs="?", help="TOML config file; its keys are the options below")
    defaults = cls()
    for f in fields(cls):
        default = getattr(defaults, f.name)
        kind = type(default).__name__
        p.add_argument(f"--{f.name}", dest=f.name, metavar=kind.upper(), nargs="?" if kind == "bool" else None,
                       const="true" if kind == "bool" else None, default=argparse.SUPPRESS,
                       help=f"({kind}, default {default!r})" + ("; comma-separated" if kind == "list" else ""))
    return p


def build_parser() -> argparse.ArgumentParser:
    return config_parser(TrainConfig, "Train a GPT on data.prepare shards; prints val bits per byte. Every config "
                         "key can be set in the TOML file or overridden here as --key=value (booleans: --key or "
                         "--key=false).")


def main(argv=None) -> int:
    args = vars(build_parser().parse_args(argv))
    path = args.pop("config")
    try:
        cfg = load_config(path, args)
        result = train(cfg)
    except (ConfigError, FileNotFoundError, NonFiniteLoss, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if int(os.environ.get("RANK", 0)) == 0:
        print(json.dumps({k: v for k, v in result.items()}))
    return 130 if result["interrupted"] else 0


if __name__ == "__main__":
    sys.exit(main())
