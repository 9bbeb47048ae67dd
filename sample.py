"""Sample text from a checkpoint written by train_gpt.py.

    python sample.py --ckpt out/tiny --prompt "ROMEO:" --num-samples 3

The prompt is encoded with the checkpoint's own tokenizer as ordinary text: typing
"<|endoftext|>" gives the characters, never the special id (only the document-start token the
model was trained with is placed in front, as every training document began with it).
"""
from __future__ import annotations

import argparse
import sys

import torch

from data.prepare import tokenizer_sha256
from tokenizer.cli import ArgumentParser
from training import (ConfigError, is_tokenizer_spec, load_model, load_run_tokenizer, pick_device,
                      pick_threads)


def non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def temperature(text: str) -> float:
    value = float(text)
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def main(argv=None) -> int:
    """Exit status: 0 done, 2 bad usage, 1 the checkpoint or tokenizer could not be used."""
    p = ArgumentParser(description="Sample text from a train_gpt.py checkpoint.")
    p.add_argument("--ckpt", required=True, help="run directory (out/NAME) or its ckpt.pt")
    p.add_argument("--prompt", default="", help="text to continue (encoded as ordinary text)")
    p.add_argument("--num-samples", type=positive, default=3)
    p.add_argument("--max-new-tokens", type=non_negative, default=200)
    p.add_argument("--temperature", type=temperature, default=0.8, help="0 = greedy")
    p.add_argument("--top-k", type=non_negative, default=50, help="sample among the k likeliest tokens; 0 = all")
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--device", default="auto", help="auto = cuda > mps > cpu")
    p.add_argument("--threads", type=non_negative, default=0,
                   help="CPU threads; 0 = the cores not already busy (training.runtime.pick_threads)")
    p.add_argument("--tokenizer", default=None, help="override the tokenizer path stored in the checkpoint")
    args = p.parse_args(argv)

    try:
        device = pick_device(args.device)
    except ConfigError as e:
        p.error(str(e))
    threads = torch.get_num_threads()
    torch.set_num_threads(pick_threads(args.threads, device))
    try:
        return run(args, device)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        torch.set_num_threads(threads)


def run(args, device: str) -> int:
    model, ck = load_model(args.ckpt, device)
    tok_path = args.tokenizer or ck.get("tokenizer", "")
    if not tok_path or not is_tokenizer_spec(tok_path):
        raise FileNotFoundError(f"tokenizer {tok_path!r} recorded in the checkpoint is not there; "
                                "pass --tokenizer PATH")
    if ck.get("tokenizer_sha256") and tokenizer_sha256(tok_path) != ck["tokenizer_sha256"]:
        raise ValueError(f"{tok_path} is not the tokenizer this model was trained with (sha256 differs)")
    tok = load_run_tokenizer(tok_path, ck.get("special_tokens"))

    eot = ck.get("eot_id")
    prompt_ids = ([eot] if eot is not None else []) + tok.encode_ordinary(args.prompt)
    if not prompt_ids:
        prompt_ids = [0]
    idx = torch.tensor([prompt_ids], dtype=torch.long, device=device)
    g = torch.Generator(device=device).manual_seed(args.seed)
    for i in range(args.num_samples):
        out = model.generate(idx, args.max_new_tokens, temperature=args.temperature,
                             top_k=args.top_k or None, generator=g)
        text = tok.decode(out[0, len(prompt_ids):].tolist())
        print(f"--- sample {i + 1} ---\n{args.prompt}{text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
