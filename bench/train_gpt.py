"""Benchmark: tokens/s and MFU of one GPT training step (forward, backward, AdamW step).

    python bench/train_gpt.py                 # CPU: our default GPT vs a minimal nanoGPT-like model
    python bench/train_gpt.py --profile       # + the top ops of our step by CPU time
    python bench/train_gpt.py --compile       # + torch.compile (CPU inductor needs a C++ compiler)
    python bench/train_gpt.py --cuda          # GPU: a 124M GPT-2-class config, bf16 autocast + compile

CPU config (from issue 4): n_layer=4, n_head=4, n_embd=128, block_size=256, vocab 4096, batch 16,
fp32, fused AdamW. The peer is `MinimalGPT` below: nanoGPT's model.py boiled down (learned
positions, LayerNorm, same sizes, no biases, tied head, vocab 4096 so neither pads), trained in the
same process. It keeps F.cross_entropy, as nanoGPT does; ours has a leaner CPU backward for the
loss (model.gpt.cross_entropy), which more than pays for RoPE and RMSNorm. The two are
timed in interleaved rounds, one step each per round, and each ratio is the median of the per-round
ratios: on a shared machine a busy moment slows both steps of a round alike. Printed for wall time
and for process CPU time (the steadier of the two when other jobs compete for the cores; run with
--threads 1 there). Target: ratio >= 1.0.
On CUDA the 124M step prints MFU against the device's bf16 peak (training.runtime.BF16_PEAK_FLOPS);
the target is >= 40% on an H100.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from model.gpt import GPT, GPTConfig  # noqa: E402
from training import device_peak_flops  # noqa: E402

SIZES = dict(vocab_size=4096, block_size=256, n_layer=4, n_head=4, n_embd=128)


class MinimalGPT(nn.Module):
    """nanoGPT's model.py boiled down: learned positions, LayerNorm, GELU MLP, tied head, no biases."""

    def __init__(self, vocab_size: int, block_size: int, n_layer: int, n_head: int, n_embd: int):
        super().__init__()
        C, self.n_head = n_embd, n_head
        self.wte, self.wpe = nn.Embedding(vocab_size, C), nn.Embedding(block_size, C)
        self.h = nn.ModuleList(nn.ModuleDict(dict(
            ln_1=nn.LayerNorm(C, bias=False), c_attn=nn.Linear(C, 3 * C, bias=False),
            attn_proj=nn.Linear(C, C, bias=False), ln_2=nn.LayerNorm(C, bias=False),
            c_fc=nn.Linear(C, 4 * C, bias=False), mlp_proj=nn.Linear(4 * C, C, bias=False)))
            for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(C, bias=False)
        self.lm_head = nn.Linear(C, vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, idx, targets):
        B, T = idx.shape
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
        for b in self.h:
            q, k, v = b.c_attn(b.ln_1(x)).split(x.size(2), dim=2)
            q, k, v = (t.view(B, T, self.n_head, -1).transpose(1, 2) for t in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + b.attn_proj(y.transpose(1, 2).contiguous().view(B, T, -1))
            x = x + b.mlp_proj(F.gelu(b.c_fc(b.ln_2(x))))
        logits = self.lm_head(self.ln_f(x))
        return logits, F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)


def training_step(model, batch: int, block_size: int, vocab_size: int, device: str, bf16=False, compile=False):
    """A closure that runs one forward/backward/AdamW step of `model` on a fixed random batch."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device in ("cuda", "cpu"))
    run = torch.compile(model) if compile else model
    x = torch.randint(0, vocab_size, (batch, block_size), device=device)
    y = torch.randint(0, vocab_size, (batch, block_size), device=device)
    ctx = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext

    def step():
        with ctx():
            _, loss = run(x, y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def side_by_side(rounds: int) -> dict[str, float]:
    """Our default GPT and MinimalGPT, one step each per round, in alternating order.

    Returns tokens/s of each (median wall time) and two ratios ours/minimal, each the median of
    the per-round ratios: of wall time, and of process CPU time. On a machine other jobs share,
    CPU time leaves out the time a step spent waiting for a core, so its ratio is the steadier.
    """
    torch.manual_seed(0)
    ours = training_step(GPT(GPTConfig(**SIZES)), 16, SIZES["block_size"], SIZES["vocab_size"], "cpu")
    torch.manual_seed(0)
    minimal = training_step(MinimalGPT(**SIZES), 16, SIZES["block_size"], SIZES["vocab_size"], "cpu")
    for step in (ours, minimal, ours, minimal):  # warm-up: allocator, first-call dispatch
        step()
    wall = {"ours": [], "minimal": []}
    cpu = {"ours": [], "minimal": []}
    order = (("ours", ours), ("minimal", minimal))
    for r in range(rounds):
        for name, step in order if r % 2 == 0 else order[::-1]:  # neither always goes first
            w0, c0 = time.perf_counter(), time.process_time()
            step()
            wall[name].append(time.perf_counter() - w0)
            cpu[name].append(time.process_time() - c0)
    tokens = 16 * SIZES["block_size"]
    return {"ours": tokens / statistics.median(wall["ours"]), "minimal": tokens / statistics.median(wall["minimal"]),
            "wall": statistics.median(m / o for o, m in zip(wall["ours"], wall["minimal"])),
            "cpu": statistics.median(m / o for o, m in zip(cpu["ours"], cpu["minimal"]))}


def bench_step(cfg: GPTConfig, batch: int, steps: int, device: str, bf16=False, compile=False, profile=False):
    """(tokens/s, FLOP/s, model): total tokens / total time over `steps` timed steps after warm-up."""
    torch.manual_seed(0)
    model = GPT(cfg).to(device)
    step = training_step(model, batch, cfg.block_size, cfg.vocab_size, device, bf16, compile)
    for _ in range(3 if not compile else 5):  # warm-up (and compilation)
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / steps
    if profile:
        from torch.profiler import ProfilerActivity, profile as prof
        with prof(activities=[ProfilerActivity.CPU]) as p:
            step()
        print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))
    tokens = batch * cfg.block_size
    return tokens / dt, model.flops_per_token() * tokens / dt, model


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=20, help="timed steps (CPU: rounds of one step each)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile on CPU")
    ap.add_argument("--profile", action="store_true", help="print the top ops of one step")
    ap.add_argument("--cuda", action="store_true", help="run the 124M config on the GPU instead")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.cuda:
        if not torch.cuda.is_available():
            print("no CUDA device")
            return 1
        torch.backends.cuda.matmul.allow_tf32 = True
        cfg = GPTConfig(vocab_size=50304, block_size=1024, n_layer=12, n_head=12, n_embd=768)
        tps, flops, _ = bench_step(cfg, 16, args.steps, "cuda", bf16=True, compile=True)
        peak = device_peak_flops()
        name = torch.cuda.get_device_name()
        print(f"124M GPT on {name}, bf16 + compile, batch 16 x 1024: {tps:,.0f} tokens/s, "
              f"{flops / 1e12:.1f} TFLOP/s" + (f", MFU {flops / peak:.1%} of {peak / 1e12:.0f} TFLOP/s bf16 peak"
                                               if peak else " (peak unknown for this device)"))
        return 0

    threads = torch.get_num_threads()
    print(f"CPU, {threads} torch threads, {os.cpu_count()} cores; n_layer=4 n_head=4 n_embd=128 "
          f"block_size=256 vocab=4096 batch=16, fp32, fused AdamW, {args.steps} interleaved rounds")
    r = side_by_side(args.steps)
    flops = GPT(GPTConfig(**SIZES)).flops_per_token() * r["ours"]
    print(f"  vocablab defaults (RoPE, RMSNorm, tied): {r['ours']:8,.0f} tokens/s  ({flops / 1e9:.1f} GFLOP/s)")
    print(f"  minimal nanoGPT-like (learned pos, LN):  {r['minimal']:8,.0f} tokens/s")
    print(f"  ratio ours/minimal, wall time:           {r['wall']:8.3f}  (target >= 1.0)")
    print(f"  ratio ours/minimal, CPU time:            {r['cpu']:8.3f}  (steadier when the machine is shared)")
    if args.profile:
        bench_step(GPTConfig(**SIZES), 16, 2, "cpu", profile=True)
    if args.compile:
        try:
            comp, _, _ = bench_step(GPTConfig(**SIZES), 16, args.steps, "cpu", compile=True)
            print(f"  vocablab + torch.compile:                {comp:8,.0f} tokens/s  "
                  f"(ratio to eager {comp / r['ours']:.2f})")
        except Exception as e:  # inductor on CPU needs a working C++ toolchain
            print(f"  torch.compile on CPU failed here: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
