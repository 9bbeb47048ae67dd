"""Sampling from a GPT: a key/value cache so each new token costs one position, and the sampler.

Kept beside model/gpt.py, not in it: the network is what training reads; generation only calls its
forward (with `cache=`) and picks the next id. `GPT.generate` is a thin method over `generate`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


class KVCache:
    """Keys and values of every layer for the tokens seen so far, so generation feeds one token per step."""

    def __init__(self, n_layer: int, max_len: int):
        self.n_layer, self.max_len, self.pos = n_layer, max_len, 0
        self.k: list[torch.Tensor | None] = [None] * n_layer
        self.v: list[torch.Tensor | None] = [None] * n_layer

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v [B, H, T, D] at positions pos..pos+T and return all keys/values up to there."""
        if self.k[layer] is None:
            shape = (k.size(0), k.size(1), self.max_len, k.size(3))
            self.k[layer] = k.new_empty(shape)
            self.v[layer] = v.new_empty(shape)
        end = self.pos + k.size(2)
        self.k[layer][:, :, self.pos:end] = k
        self.v[layer][:, :, self.pos:end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]



@torch.no_grad()
def generate(model, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
             *, use_cache: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
    """Append max_new_tokens sampled ids to idx [B, T]; call model.eval() first (dropout).

    temperature 0 means greedy. With the KV cache each step feeds one token. When the context
    fills block_size, the cache is rebuilt from the last half block (positions restart at 0) and
    generation carries on; without the cache every step re-reads the last block_size tokens
    (nanoGPT's sliding window). The two agree until the context first fills (up to float noise:
    the cached path multiplies in other shapes).
    """
    bs, n_layer = model.config.block_size, model.config.n_layer
    cache, pending = None, idx
    for _ in range(max_new_tokens):
        if not use_cache:
            logits, _ = model(idx[:, -bs:])
        else:
            if cache is None:
                cache, pending = KVCache(n_layer, bs), idx[:, -bs:]
            elif cache.pos + 1 > bs:
                cache, pending = KVCache(n_layer, bs), idx[:, -max(1, bs // 2):]
            logits, _ = model(pending, cache=cache)
        nxt = pick(logits[:, -1].float(), temperature, top_k, generator)
        idx = torch.cat((idx, nxt), dim=1)
        pending = nxt
    return idx


def pick(logits: torch.Tensor, temperature: float, top_k: int | None, generator=None) -> torch.Tensor:
    """One id per row of logits [B, V]: argmax at temperature 0, else a draw from softmax(logits / T)
    restricted to the top_k likeliest ids (None = all). [B, 1]"""
    if temperature <= 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)
