"""Where a run executes: the device, and the process group when torchrun starts several."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


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


def gather(obj, world: int) -> list:
    """Every rank's obj, in rank order (the loader and RNG state differ per rank)."""
    if world == 1:
        return [obj]
    out = [None] * world
    dist.all_gather_object(out, obj)
    return out


# Dense bf16 tensor-core peaks from the vendors' datasheets (no sparsity), matched by device name.
BF16_PEAK_FLOPS = [
    ("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989e12), ("H200", 989e12), ("GH200", 989e12),
    ("B200", 2250e12), ("A100", 312e12), ("L40S", 362e12), ("L40", 181e12), ("L4", 121e12), ("A10G", 70e12),
]


def device_peak_flops(name: str | None = None) -> float | None:
    """bf16 peak of the current CUDA device (or of the named one), None for CPUs and unknown GPUs."""
    if name is None:
        if not torch.cuda.is_available():
            return None
        name = torch.cuda.get_device_name()
    for key, flops in BF16_PEAK_FLOPS:
        if key in name:
            return flops
    return None
