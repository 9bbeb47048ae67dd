"""Run configuration: the TrainConfig dataclass and the TOML + `--key=value` machinery.

One dataclass holds every knob; a TOML file sets some, the command line overrides any. Each value is
checked against the type of its field's default, so a typo fails at start-up with the key's name,
not an hour into a run. The studies load their own config dataclasses with the same functions.
"""
from __future__ import annotations

import argparse
import tomllib
from dataclasses import dataclass, fields

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
