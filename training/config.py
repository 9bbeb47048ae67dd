"""Run configuration: the TrainConfig dataclass and the TOML + `--key=value` machinery.

One dataclass holds every knob; a TOML file sets some, the command line overrides any. Each value is
checked against the type of its field's default, so a typo fails at start-up with the key's name,
not an hour into a run. The studies load their own config dataclasses with the same functions.
"""
from __future__ import annotations

import argparse
import tomllib
from dataclasses import dataclass, field, fields

from tokenizer.cli import ArgumentParser


def option(default, help: str):
    """A config field with its --help text beside it (config_parser prints it)."""
    return field(default=default, metadata={"help": help})


# ------------------------------------------------------------------------------------------------
# config

@dataclass
class TrainConfig:
    # I/O
    data_dir: str = option("data/shards/shakespeare", "a `python -m data.prepare` output directory")
    tokenizer: str = option("tokenizers/shakespeare.model", "the .model file the shards were made with, or a pretrained name (cl100k, gpt2); "
                            "\"\" = the path recorded in the shards' meta.json")
    out_dir: str = option("out/tiny", "where ckpt.pt and log.jsonl go")
    resume: bool = option(False, "continue from out_dir/ckpt.pt exactly where it stopped")
    overwrite: bool = option(False, "replace the run already in out_dir (its ckpt.pt and log.jsonl)")
    # system
    seed: int = option(1337, "seeds the initial weights, the batch order and dropout")
    device: str = option("auto", "auto = cuda > mps > cpu; or cpu, cuda, cuda:N, mps")
    dtype: str = option("auto", "auto = bfloat16 autocast on GPUs with native bf16 (compute capability >= 8), "
                        "float32 elsewhere; float32 | bfloat16. TF32 matmuls only under bf16 autocast, so "
                        "float32 on CUDA is float32")
    compile: bool = option(False, "torch.compile the model (worth it on GPU for long runs)")
    threads: int = option(0, "CPU threads for torch; 0 = the cores not already busy (see runtime.pick_threads)")
    # model (vocab_size comes from the shards' manifest)
    n_layer: int = option(4, "transformer blocks")
    n_head: int = option(4, "attention heads per block (must divide n_embd)")
    n_embd: int = option(128, "width of the residual stream")
    block_size: int = option(256, "context length in tokens")
    dropout: float = option(0.0, "dropout probability (0 for short runs on plenty of data)")
    bias: bool = option(False, "biases in Linear and LayerNorm layers")
    rope: bool = option(True, "rotary position embeddings (false: GPT-2's learned position table)")
    norm: str = option("rmsnorm", "rmsnorm | layernorm")
    tie_embeddings: bool = option(True, "the output head shares the token embedding matrix")
    # batch: batch_size sequences per micro-step per process, accumulated up to total_batch_tokens
    batch_size: int = option(16, "sequences per micro-step per process")
    total_batch_tokens: int = option(0, "tokens per optimizer step, reached by gradient accumulation; "
                                     "0 = one micro-step per process")
    # optimisation
    max_steps: int = option(1000, "optimizer steps; the lr schedule ends here")
    stop_at: int = option(0, "stop early (checkpointed, schedule unchanged) after this step; 0 = off")
    lr: float = option(1e-3, "peak learning rate")
    min_lr_frac: float = option(0.1, "final lr = lr * min_lr_frac (0 with schedule=linear: linear-to-zero)")
    warmup_steps: int = option(100, "steps of linear lr warmup from lr/warmup_steps")
    schedule: str = option("cosine", "decay after warmup: cosine | linear")
    weight_decay: float = option(0.1, "decoupled (AdamW) weight decay, on matrices only")
    beta1: float = option(0.9, "AdamW beta1")
    beta2: float = option(0.95, "AdamW beta2")
    grad_clip: float = option(1.0, "clip the gradient's global norm to this; 0 = off")
    # evaluation, logging, checkpoints
    eval_interval: int = option(250, "steps between validation runs (and one at max_steps)")
    eval_batches: int = option(20, "val batches per process per eval; 0 = the whole val split")
    log_interval: int = option(1, "steps between printed and logged training losses")
    ckpt_interval: int = option(0, "steps between checkpoints; 0 = only at the end (and on Ctrl-C)")
    sample_tokens: int = option(0, "> 0: print a sample of this many tokens at every eval")
    end_sample_tokens: int = option(200, "tokens of the sample printed at the end of training; 0 = none")
    temperature: float = option(0.8, "sampling temperature of those samples; 0 = greedy")
    top_k: int = option(50, "sample among the k likeliest tokens; 0 = all")
    wandb_project: str = option("", "Weights & Biases project; \"\" = off (WANDB_MODE=offline needs no network)")
    wandb_run_name: str = option("", "Weights & Biases run name; \"\" = wandb's own")


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
    """TrainConfig from defaults <- TOML file <- overrides ({key: value} or ["--key=value", ...]).

    Values are checked here, before any file is touched: a zero or negative size would otherwise end
    in a shape error deep inside the model, or in a run that silently does nothing.
    """
    cfg = load_dataclass(TrainConfig, path, overrides)
    where = f"{path}: " if path else ""
    choices = {"schedule": ("cosine", "linear"), "dtype": ("auto", "float32", "bfloat16"),
               "norm": ("rmsnorm", "layernorm")}
    for name, allowed in choices.items():
        if getattr(cfg, name) not in allowed:
            raise ConfigError(f"{where}{name} must be one of {', '.join(allowed)}; got {getattr(cfg, name)!r}")
    at_least = {"n_layer": 1, "n_head": 1, "n_embd": 1, "block_size": 1, "batch_size": 1, "max_steps": 1,
                "eval_interval": 1, "log_interval": 1, "warmup_steps": 0, "total_batch_tokens": 0, "stop_at": 0,
                "eval_batches": 0, "ckpt_interval": 0, "sample_tokens": 0, "end_sample_tokens": 0, "top_k": 0,
                "threads": 0}
    for name, low in at_least.items():
        if getattr(cfg, name) < low:
            raise ConfigError(f"{where}{name} must be >= {low}, got {getattr(cfg, name)} (--{name}=N)")
    positive = ("lr",)
    non_negative = ("min_lr_frac", "weight_decay", "grad_clip", "temperature", "dropout", "beta1", "beta2")
    for name in positive + non_negative:
        value = getattr(cfg, name)
        if not value == value or value < 0 or (name in positive and value == 0):  # value != value: NaN
            raise ConfigError(f"{where}{name} must be {'> 0' if name in positive else '>= 0'}, got {value}")
    for name in ("dropout", "beta1", "beta2"):
        if getattr(cfg, name) >= 1:
            raise ConfigError(f"{where}{name} must be < 1, got {getattr(cfg, name)}")
    if cfg.n_embd % cfg.n_head:
        raise ConfigError(f"{where}n_embd={cfg.n_embd} is not divisible by n_head={cfg.n_head}")
    if cfg.resume and cfg.overwrite:
        raise ConfigError("--resume continues the run in out_dir and --overwrite replaces it: pick one")
    return cfg


def config_parser(cls, description: str, prog: str | None = None) -> argparse.ArgumentParser:
    """A parser with an optional TOML path and one --key option per field of the dataclass `cls`.

    A field's help text is its metadata["help"] (see `option`); fields without one show type and default.
    """
    p = ArgumentParser(prog=prog, description=description, allow_abbrev=False, sep="_")
    p.add_argument("config", nargs="?", help="TOML config file; its keys are the options below")
    defaults = cls()
    for f in fields(cls):
        default = getattr(defaults, f.name)
        kind = type(default).__name__
        p.add_argument(f"--{f.name}", dest=f.name, metavar=kind.upper(), nargs="?" if kind == "bool" else None,
                       const="true" if kind == "bool" else None, default=argparse.SUPPRESS,
                       help=f.metadata.get("help", "") + f" ({kind}, default {default!r})"
                       + ("; comma-separated" if kind == "list" else ""))
    return p
