"""Where a run executes: the device, and the process group when torchrun starts several."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist

from training.config import ConfigError


def pick_device(name: str) -> str:
    """`name` checked against this machine ("auto" = cuda > mps > cpu); a device it lacks is a ConfigError."""
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    kind, _, index = name.partition(":")
    if kind == "cuda":
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA support" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise ConfigError(f"--device={name}: {why}; use --device=cpu (or auto)")
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise ConfigError(f"--device={name}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                              f"cuda:0..cuda:{torch.cuda.device_count() - 1}")
    elif kind == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ConfigError(f"--device={name}: MPS is not available here; use --device=cpu (or auto)")
    elif name != "cpu":
        raise ConfigError(f"--device must be auto, cpu, cuda, cuda:N or mps; got {name!r}")
    return name


def pick_threads(requested: int, device: str) -> int:
    """CPU threads for torch: `requested`, or for 0 the cores of this process's mask not already busy.

    torch's default is one OpenMP thread per core. On a shared machine that is oversubscription:
    with one of 2 cores busy, sampling took 22 s at 2 threads and 2 s at 1, because OpenMP threads
    spin-wait for the one that lost its core. So 0 subtracts the 1-minute load average (rounded)
    from the usable cores, keeps at least one, and never exceeds torch's current setting (a caller's
    set_num_threads is a ceiling). OMP_NUM_THREADS, when set (torchrun sets it), is respected as it
    stands; GPU runs keep torch's setting. The thread count did not change the CPU losses in a check
    of 1 vs 2 threads (10 steps, identical), but set `threads` for runs that must match bit for bit.
    """
    if requested > 0:
        return requested
    if device.split(":")[0] != "cpu" or "OMP_NUM_THREADS" in os.environ:
        return torch.get_num_threads()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    busy = round(os.getloadavg()[0]) if hasattr(os, "getloadavg") else 0
    return max(1, min(torch.get_num_threads(), cores - busy))


def autocast_dtype(dtype: str, device: str) -> torch.dtype | None:
    """The autocast dtype a run uses, None for plain float32.

    auto picks bfloat16 only where the GPU computes it natively (compute capability >= 8: Ampere and
    later); older cards (T4, V100) emulate it slowly and get float32 here, no GradScaler needed.
    """
    if dtype == "bfloat16":
        return torch.bfloat16
    if dtype == "auto" and device.startswith("cuda") and torch.cuda.get_device_capability(device)[0] >= 8:
        return torch.bfloat16
    return None


def setup_distributed(cfg) -> tuple[int, int, str]:
    """(rank, world_size, device). torchrun sets RANK/WORLD_SIZE/LOCAL_RANK; plain python runs alone.

    The chosen CUDA device is made current, so synchronize, the RNG state saved for exact resume and
    the peak-FLOPs lookup all act on it rather than on cuda:0.
    """
    device = pick_device(cfg.device)
    if "RANK" not in os.environ:
        if device.startswith("cuda:"):  # plain "cuda" is the current device already (set_device refuses it)
            torch.cuda.set_device(device)
        return 0, 1, device
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
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


# Dense bf16 tensor-core peaks from the vendors' datasheets (no sparsity), keyed by the model part of
# torch.cuda.get_device_name(): "NVIDIA H100 80GB HBM3" -> "H100". Matched whole, never as a prefix:
# "H200 NVL" (835 TFLOPs) is not an "H200" (989).
BF16_PEAK_FLOPS = {
    "H100": 989e12, "H100 SXM": 989e12, "H100 PCIe": 756e12, "H100 NVL": 835e12,
    "H200": 989e12, "H200 NVL": 835e12, "GH200": 989e12, "B200": 2250e12,
    "A100": 312e12, "A100 PCIe": 312e12, "L40S": 362e12, "L40": 181e12, "L4": 121e12, "A10G": 70e12,
}


def device_model(name: str) -> str:
    """The model part of a CUDA device name: vendor word and memory/form-factor suffixes dropped.

    "NVIDIA H100 80GB HBM3" -> "H100", "NVIDIA A100-SXM4-80GB" -> "A100", "NVIDIA H200 NVL" -> "H200 NVL".
    """
    words = name.replace("-", " ").split()
    if words and words[0] in ("NVIDIA", "Tesla"):
        words = words[1:]
    keep = [w for w in words if not (w.endswith("GB") or w.startswith(("HBM", "SXM")) or w == "Ti")]
    return " ".join(keep)


def device_peak_flops(name: str | None = None) -> float | None:
    """bf16 peak of the current CUDA device (or of the named one), None for CPUs and unknown GPUs."""
    if name is None:
        if not torch.cuda.is_available():
            return None
        name = torch.cuda.get_device_name()
    model = device_model(name).casefold()  # "A100-PCIE-40GB" spells PCIe in capitals
    return next((peak for key, peak in BF16_PEAK_FLOPS.items() if key.casefold() == model), None)
