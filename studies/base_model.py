"""The small base models the studies start from: tokenizer -> shards -> GPT, trained once, cached.

studies.new_tokens grows a Shakespeare model's vocabulary; studies.gist compresses prompts for a
model trained on synthetic facts and for the same Shakespeare model. Each describes the model it
wants as a BaseSpec; `ensure_base` trains it with the repository's own stages (RegexTokenizer,
data.prepare, train_gpt.train) unless a directory already holds a model made from that spec.
"""
from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from data.prepare import prepare
from data.sources import iter_documents
from studies.common import atomic_write_text
from tokenizer import EOT, RegexTokenizer
from training import load_config, load_model, load_run_tokenizer, train


@dataclass
class BaseSpec:
    """Everything that decides the base model; a change retrains it."""
    source: str = "shakespeare"
    vocab_size: int = 512          # 256 bytes + merges; <|endoftext|> is registered after
    val_fraction: float = 0.005
    steps: int = 600
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 128
    batch_size: int = 16
    lr: float = 3e-3
    tie_embeddings: bool = True
    seed: int = 1337
    txt_mode: str = "file"


def base_spec(cfg, prefix: str, **fixed) -> BaseSpec:
    """A BaseSpec read off a study config: each field from cfg.<prefix><name>, else cfg.<name>,
    else BaseSpec's default; `fixed` wins over all. One study config can so describe two models
    (gist's syn_* and real_* keys) without repeating the mapping field by field."""
    values = {}
    for f in fields(BaseSpec):
        for name in (prefix + f.name, f.name):
            if hasattr(cfg, name):
                values[f.name] = getattr(cfg, name)
                break
    return BaseSpec(**{**values, **fixed})


def ensure_base(spec: BaseSpec, out_dir, device: str = "cpu", quiet: bool = False) -> Path:
    """Train tokenizer -> shards -> GPT for `spec` into out_dir unless already there; return ckpt path."""
    out_dir = Path(out_dir)
    stamp = out_dir / "base.json"
    ckpt = out_dir / "ckpt.pt"
    if ckpt.is_file() and stamp.is_file() and json.loads(stamp.read_text()) == asdict(spec):
        return ckpt
    out_dir.mkdir(parents=True, exist_ok=True)
    docs = list(iter_documents(spec.source, txt_mode=spec.txt_mode))
    tok = RegexTokenizer()
    tok.train(docs, spec.vocab_size, special_tokens=[EOT])
    tok.save(str(out_dir / "tok"))
    prepare(out_dir / "tok.model", [spec.source], out_dir / "shards", val_fraction=spec.val_fraction,
            txt_mode=spec.txt_mode, workers=1)
    cfg = load_config(None, dict(
        data_dir=str(out_dir / "shards"), tokenizer=str(out_dir / "tok.model"), out_dir=str(out_dir),
        seed=spec.seed, device=device, n_layer=spec.n_layer, n_head=spec.n_head, n_embd=spec.n_embd,
        block_size=spec.block_size, batch_size=spec.batch_size, max_steps=spec.steps, lr=spec.lr,
        warmup_steps=max(1, spec.steps // 20), tie_embeddings=spec.tie_embeddings,
        eval_interval=spec.steps, eval_batches=8, log_interval=max(1, spec.steps // 10),
        end_sample_tokens=0, overwrite=True))  # this folder is the study's own: a changed spec retrains it
    with open(os.devnull, "w") as null:
        with contextlib.redirect_stdout(null) if quiet else contextlib.nullcontext():
            train(cfg)
    atomic_write_text(stamp, json.dumps(asdict(spec)))  # written last: its presence means "done"
    return ckpt


def load_base(ckpt_path):
    """(model in eval mode, tokenizer, checkpoint dict) from a train_gpt checkpoint."""
    model, ck = load_model(ckpt_path)
    return model, load_run_tokenizer(ck["tokenizer"], ck.get("special_tokens")), ck
