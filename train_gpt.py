"""Train a GPT on token shards and report validation bits per byte.

    python train_gpt.py configs/tiny.toml [--key=value ...]        # one process (CPU, MPS or one GPU)
    python train_gpt.py configs/tiny.toml --resume                 # continue out_dir's run (--overwrite: replace it)
    torchrun --nproc_per_node 8 train_gpt.py configs/gpt2-small.toml  # DDP, one process per GPU

Why bits per byte: loss per token cannot be compared across tokenizers (a bigger vocabulary makes
fewer, harder tokens). Summing the loss over a fixed text and dividing by that text's UTF-8 bytes
gives a number that only depends on how well the model predicts the text.

This script only reads the command line; the loop itself is `training/loop.py` (read it top to
bottom like nanoGPT's train.py), so the studies run exactly the same training.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import torch.distributed as dist

# Besides what main() uses, the names docs/design.md lists under train_gpt.py, for older callers.
from training import (ConfigError, NonFiniteLoss, TrainConfig, coerce, config_parser, evaluate_bpb,  # noqa: F401
                      load_checkpoint, load_config, load_dataclass, parse_overrides, read_toml, train)


def build_parser() -> argparse.ArgumentParser:
    return config_parser(TrainConfig, "Train a GPT on data.prepare shards; prints val bits per byte. Every config "
                         "key can be set in the TOML file or overridden here as --key=value (booleans: --key or "
                         "--key=false).")


def main(argv=None) -> int:
    """Exit status: 0 done, 2 bad usage or config (nothing was written), 1 the run failed, 130 Ctrl-C."""
    args = vars(build_parser().parse_args(argv))
    path = args.pop("config")
    master = int(os.environ.get("RANK", 0)) == 0
    try:
        cfg = load_config(path, args)
        result = train(cfg)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (NonFiniteLoss, OSError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # the second Ctrl-C: abort without a checkpoint
        print("aborted by a second Ctrl-C; the last checkpoint written is kept", file=sys.stderr)
        return 130
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if master:
        print(json.dumps(result))
        print(f"checkpoint: {result['ckpt']} (sample with: python sample.py --ckpt {result['out_dir']}; "
              f"continue with: --resume --out_dir={result['out_dir']})")
    return 130 if result["interrupted"] else 0


if __name__ == "__main__":
    sys.exit(main())
