"""Stage 3's library: configure, train and evaluate a GPT on token shards, and read its checkpoints.

Read in this order: config.py (TrainConfig and the TOML/--key=value machinery), runtime.py (device,
processes), evaluate.py (validation bits per byte), checkpoint.py (atomic save, safe load, the model
and tokenizer a checkpoint names), loop.py (the training loop). The scripts train_gpt.py and
sample.py only parse arguments and call these; the studies import them too.
"""
from training.checkpoint import (CheckpointError, is_tokenizer_spec, load_checkpoint, load_model, load_run_tokenizer,
                                 save_checkpoint, sha256_file)
from training.config import (MODEL_KEYS, ConfigError, TrainConfig, coerce, config_parser, field_types,
                             load_config, load_dataclass, parse_overrides, read_toml)
from training.evaluate import evaluate_bpb, sample_text
from training.loop import NonFiniteLoss, configure_optimizer, get_lr, param_groups, train
from training.runtime import device_peak_flops, pick_device, pick_threads, setup_distributed

__all__ = ["CheckpointError", "is_tokenizer_spec", "load_checkpoint", "load_model", "load_run_tokenizer", "save_checkpoint", "sha256_file",
           "MODEL_KEYS", "ConfigError", "TrainConfig", "coerce", "config_parser", "field_types", "load_config",
           "load_dataclass", "parse_overrides", "read_toml", "evaluate_bpb", "sample_text", "NonFiniteLoss",
           "configure_optimizer", "get_lr", "param_groups", "train", "pick_device", "pick_threads", "setup_distributed",
           "device_peak_flops"]
