"""Checkpoints: written atomically, read with weights_only=True, and the model and tokenizer they name."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from model.gpt import GPT, GPTConfig
from tokenizer import load


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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


def load_run_tokenizer(path: str, special_tokens: dict | None):
    """The run's tokenizer, with any specials data.prepare registered (e.g. an added <|endoftext|>)."""
    tok = load(path)
    missing = {k: v for k, v in (special_tokens or {}).items() if k not in tok.special_tokens}
    if missing:
        tok.register_special_tokens(missing)
    return tok


def load_model(ckpt_path, device="cpu") -> tuple[GPT, dict]:
    """(model in eval mode, checkpoint dict) from a ckpt.pt file or the run directory holding it."""
    path = Path(ckpt_path)
    if path.is_dir():
        path = path / "ckpt.pt"
    ck = load_checkpoint(path)
    try:
        model = GPT(GPTConfig(**ck["model_config"]))
        model.load_state_dict(ck["model"])
    except (KeyError, TypeError, RuntimeError) as e:
        raise ValueError(f"{path}: not a train_gpt.py checkpoint ({type(e).__name__}: {e})") from None
    return model.to(device).eval(), ck
