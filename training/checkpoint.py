"""Checkpoints: written atomically, read with weights_only=True, and the model and tokenizer they name."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from model.gpt import GPT, GPTConfig
from tokenizer import PRETRAINED, load_any
from tokenizer.downloads import sha256_file  # noqa: F401  (re-exported: training.sha256_file)


class CheckpointError(ValueError):
    """A checkpoint could not be written, or the file read is not one of ours; the message names it."""


# What train() needs to resume exactly, and what load_model needs to rebuild the network.
RESUME_KEYS = ("model", "optimizer", "loaders", "rng", "step", "world_size", "config", "model_config")
MODEL_KEYS_IN_CKPT = ("model", "model_config")


def save_checkpoint(path: Path, state: dict) -> None:
    """Write atomically: temp file, fsync, rename. A crash or a full disk leaves the previous one intact."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the name points at them
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        kept = f"the previous {path.name} is kept" if path.exists() else "no checkpoint was written"
        raise CheckpointError(f"could not write checkpoint {path} ({e.strerror or e}); {kept}. "
                              "Free disk space or choose another --out_dir") from None
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def load_checkpoint(path, require: tuple[str, ...] = ()) -> dict:
    """The checkpoint dict, read with weights_only=True; `require`d keys missing is a CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from None
    missing = [k for k in require if not isinstance(ck, dict) or k not in ck]
    if missing:
        raise CheckpointError(f"{path}: not a train_gpt.py checkpoint (missing {', '.join(missing)})")
    return ck


def is_tokenizer_spec(spec: str) -> bool:
    """Whether `spec` names a tokenizer: an existing file or a pretrained name (cl100k, gpt2, ...)."""
    return os.path.isfile(spec) or spec.lower() in PRETRAINED


def load_run_tokenizer(spec: str, special_tokens: dict | None):
    """The run's tokenizer (a path or a pretrained name), with any specials data.prepare registered
    (e.g. an added <|endoftext|>)."""
    tok = load_any(spec)
    missing = {k: v for k, v in (special_tokens or {}).items() if k not in tok.special_tokens}
    if missing:
        tok.register_special_tokens(missing)
    return tok


def load_model(ckpt_path, device="cpu") -> tuple[GPT, dict]:
    """(model in eval mode, checkpoint dict) from a ckpt.pt file or the run directory holding it."""
    path = Path(ckpt_path)
    if path.is_dir():
        path = path / "ckpt.pt"
    ck = load_checkpoint(path, require=MODEL_KEYS_IN_CKPT)
    try:
        model = GPT(GPTConfig(**ck["model_config"]))
        model.load_state_dict(ck["model"])
    except (TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: not a train_gpt.py checkpoint ({type(e).__name__}: {e})") from None
    return model.to(device).eval(), ck
