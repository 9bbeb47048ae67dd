"""A small GPT, in one file: config, attention, MLP, block, model.

The layout and names follow GPT-2 (`wte`, `wpe`, `c_attn`, `c_proj`, `ln_f`, `lm_head`) so that a
reader who knows nanoGPT or Hugging Face's GPT-2 finds every piece where they expect it. A few modern
switches are on by default because they train better at this scale: rotary position embeddings
(no learned `wpe`), RMSNorm, and an output head tied to the token embedding.

Why the vocabulary is padded: the output projection is the largest matmul of a small model, and
matmul kernels are fastest when the dimension is a multiple of 64. The embedding table therefore has
`padded_vocab_size` rows, but the padding ids are never seen as inputs and never predicted: their
logits are set to -inf before the loss and sliced off before logits are returned.

Conventions worth knowing before calling `forward`:
- `inputs_embeds` [B, P, C] are *prepended* to `wte(idx)` when both are given (learned "gist" vectors
  followed by tokens), or used alone when `idx` is None. Positions count over the whole sequence.
- `attn_mask` is a boolean mask, True = may attend, broadcastable to [B, n_head, T, T]; it replaces
  the causal mask, so it must include causality itself (every row needs at least one True).
- `targets` use -1 for positions that carry no loss (e.g. the prepended embeddings).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class GPTConfig:
    vocab_size: int = 4096      # real ids, specials included (a tokenizer's n_vocab)
    block_size: int = 256       # longest sequence the model attends over
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False          # biases in Linear and LayerNorm; GPT-2 had them, they buy nothing
    rope: bool = True           # rotary positions (True) or GPT-2's learned `wpe` table (False)
    norm: str = "rmsnorm"       # "rmsnorm" | "layernorm"
    tie_embeddings: bool = True  # lm_head shares wte's matrix (GPT-2 does; saves V*C params)
    pad_vocab_multiple: int = 64

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}")
        if self.rope and (self.n_embd // self.n_head) % 2:
            raise ValueError(f"rope needs an even head size, got n_embd/n_head={self.n_embd // self.n_head}")
        if self.norm not in ("rmsnorm", "layernorm"):
            raise ValueError(f"norm must be 'rmsnorm' or 'layernorm', got {self.norm!r}")
        if self.vocab_size < 1 or self.block_size < 1:
            raise ValueError(f"vocab_size and block_size must be positive, got {self.vocab_size}, {self.block_size}")

    @property
    def padded_vocab_size(self) -> int:
        m = self.pad_vocab_multiple
        return (self.vocab_size + m - 1) // m * m


def make_norm(config: GPTConfig) -> nn.Module:
    if config.norm == "rmsnorm":
        return nn.RMSNorm(config.n_embd, eps=1e-6)
    return nn.LayerNorm(config.n_embd, bias=config.bias)


def rope_tables(head_dim: int, length: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin [length, head_dim/2]: channel pair i turns by angle pos * base^(-2i/head_dim)."""
    inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(length, dtype=torch.float32), inv_freq)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each (first-half, second-half) channel pair of x [B, H, T, D] by its position's angle.

    Rotating q and k by angles proportional to position makes q.k depend only on their distance.
    """
    x1, x2 = x.float().chunk(2, dim=-1)
    out = torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return out.type_as(x)


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


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head, self.n_embd, self.dropout = config.n_head, config.n_embd, config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v in one matmul
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x, rope=None, attn_mask=None, cache: KVCache | None = None, layer: int = 0):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        past = 0
        if cache is not None:
            past = cache.pos
            k, v = cache.append(layer, k, v)
        is_causal = attn_mask is None and past == 0 and T > 1
        if attn_mask is None and past > 0 and T > 1:
            # SDPA's is_causal aligns the mask top-left; with a cache, query i sits at position past+i.
            attn_mask = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(diagonal=past)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal,
                                           dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-norm residual block: the residual stream is only ever added to, which keeps deep nets trainable."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1, self.attn = make_norm(config), CausalSelfAttention(config)
        self.ln_2, self.mlp = make_norm(config), MLP(config)

    def forward(self, x, rope=None, attn_mask=None, cache=None, layer=0):
        x = x + self.attn(self.ln_1(x), rope, attn_mask, cache, layer)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        V, C = config.padded_vocab_size, config.n_embd
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(V, C),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList(Block(config) for _ in range(config.n_layer)),
            ln_f=make_norm(config),
        ))
        if not config.rope:
            self.transformer.wpe = nn.Embedding(config.block_size, C)
        self.lm_head = nn.Linear(C, V, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.transformer.wte.weight
        if config.rope:
            cos, sin = rope_tables(C // config.n_head, config.block_size)
            # Not persistent: derived from the config, so checkpoints stay free of them.
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init_weights)
        # Each block adds two projections into the residual stream; shrinking them by sqrt(2*n_layer)
        # keeps the stream's variance at init independent of depth (GPT-2 paper, section 2.3).
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    # ---- forward ---------------------------------------------------------------------------------
    def _embed(self, idx, inputs_embeds, offset: int) -> torch.Tensor:
        parts = []
        if inputs_embeds is not None:
            parts.append(inputs_embeds)
        if idx is not None:
            parts.append(self.transformer.wte(idx))
        if not parts:
            raise ValueError("forward needs idx, inputs_embeds, or both")
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        T = x.size(1)
        if offset + T > self.config.block_size:
            raise ValueError(f"sequence of length {offset + T} exceeds block_size={self.config.block_size}")
        if not self.config.rope:
            x = x + self.transformer.wpe(torch.arange(offset, offset + T, device=x.device))
        return self.transformer.drop(x)

    def _hidden(self, x, attn_mask=None, cache: KVCache | None = None) -> torch.Tensor:
        """Run the blocks on embeddings x [B, T, C] and return the final normed states."""
        offset = cache.pos if cache is not None else 0
        T = x.size(1)
        rope = None
        if self.config.rope:
            rope = (self.rope_cos[offset:offset + T], self.rope_sin[offset:offset + T])
        for i, block in enumerate(self.transformer.h):
            x = block(x, rope, attn_mask, cache, i)
        if cache is not None:
            cache.pos += T
        return self.transformer.ln_f(x)

    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        """Padded-width logits with the padding ids at -inf, so softmax and loss ignore them."""
        logits = self.lm_head(h)
        if self.config.padded_vocab_size > self.config.vocab_size:
            logits[..., self.config.vocab_size:] = float("-inf")  # Linear's backward doesn't need its output
        return logits

    def forward(self, idx=None, targets=None, *, inputs_embeds=None, attn_mask=None):
        """Return (logits [B, T, vocab_size], mean cross-entropy over targets != -1, or None)."""
        x = self._embed(idx, inputs_embeds, offset=0)
        logits = self._logits(self._hidden(x, attn_mask))
        loss = None
        if targets is not None:
            if targets.shape != logits.shape[:2]:
                raise ValueError(f"targets shape {tuple(targets.shape)} != sequence shape {tuple(logits.shape[:2])}"
                                 " (with inputs_embeds, pad targets with -1 for the prepended positions)")
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.reshape(-1), ignore_index=-1)
        return logits[..., :self.config.vocab_size], loss

    # ---- generation ------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, idx, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 *, use_cache: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
        """Append max_new_tokens sampled ids to idx [B, T]; call model.eval() first (dropout).

        temperature 0 means greedy. With the KV cache each step feeds one token. When the context
        fills block_size, the cache is rebuilt from the last half block (positions restart at 0) and
        generation carries on; without the cache every step re-reads the last block_size tokens
        (nanoGPT's sliding window). The two agree exactly until the context first fills.
        """
        bs = self.config.block_size
        cache, pending = None, idx
        for _ in range(max_new_tokens):
            if not use_cache:
                h = self._hidden(self._embed(idx[:, -bs:], None, 0))
            else:
                if cache is None:
                    cache, pending = KVCache(self.config.n_layer, bs), idx[:, -bs:]
                elif cache.pos + 1 > bs:
                    cache, pending = KVCache(self.config.n_layer, bs), idx[:, -max(1, bs // 2):]
                h = self._hidden(self._embed(pending, None, cache.pos), cache=cache)
            logits = self._logits(h[:, -1])  # only the last position's head: the rest is never used
            nxt = self._pick(logits[:, :self.config.vocab_size].float(), temperature, top_k, generator)
            idx = torch.cat((idx, nxt), dim=1)
            pending = nxt
        return idx

    @staticmethod
    def _pick(logits, temperature, top_k, generator):
        if temperature <= 0:
            return logits.argmax(dim=-1, keepdim=True)
        logits = logits / temperature
        if top_k is not None:
            kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        return torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)

    # ---- vocabulary surgery ----------------------------------------------------------------------
    @torch.no_grad()
    def resize_token_embeddings(self, new_vocab_size: int, init: str = "mean",
                                parents: dict[int, tuple[int, int]] | None = None) -> None:
        """Grow the vocabulary to new_vocab_size ids; old rows (wte and lm_head) are kept bit for bit.

        New rows start as: "mean" of the old rows (a neutral guess: the new token's logit starts at
        the average logit), "normal" (std 0.02, like a fresh model), "zero", or "parents": the mean of
        the two tokens the new one was merged from (`parents[new_id] = (a, b)`, ids may be earlier new ids).
        Weight tying is preserved. The optimizer must be rebuilt afterwards: the parameters are new.
        """
        old = self.config.vocab_size
        if new_vocab_size < old:
            raise ValueError(f"resize_token_embeddings only grows: {new_vocab_size} < current {old}")
        if init not in ("mean", "normal", "zero", "parents"):
            raise ValueError(f"init must be mean|normal|zero|parents, got {init!r}")
        if init == "parents":
            missing = [i for i in range(old, new_vocab_size) if i not in (parents or {})]
            if missing:
                raise ValueError(f"init='parents' needs parents for every new id; missing {missing[:5]}")
            for i, (a, b) in parents.items():
                if not (0 <= a < i and 0 <= b < i):
                    raise ValueError(f"parents of {i} must be earlier ids, got ({a}, {b})")
        self.config.vocab_size = new_vocab_size
        V = self.config.padded_vocab_size

        def grown(weight: torch.Tensor) -> torch.Tensor:
            w = weight.new_zeros(V, weight.size(1))
            w[:old] = weight[:old]
            if init == "mean":
                w[old:new_vocab_size] = weight[:old].mean(dim=0)
            elif init == "normal":
                nn.init.normal_(w[old:new_vocab_size], mean=0.0, std=0.02)
            elif init == "parents":
                for i in range(old, new_vocab_size):  # in id order, so a parent that is itself new is ready
                    a, b = parents[i]
                    w[i] = (w[a] + w[b]) / 2
            return w

        wte = self.transformer.wte
        self.transformer.wte = nn.Embedding(V, self.config.n_embd, device=wte.weight.device, dtype=wte.weight.dtype)
        self.transformer.wte.weight.copy_(grown(wte.weight))
        head = self.lm_head
        self.lm_head = nn.Linear(self.config.n_embd, V, bias=False, device=head.weight.device, dtype=head.weight.dtype)
        if self.config.tie_embeddings:
            self.lm_head.weight = self.transformer.wte.weight
        else:
            self.lm_head.weight.copy_(grown(head.weight))

    # ---- accounting ------------------------------------------------------------------------------
    def num_params(self, non_embedding: bool = True) -> int:
        """Parameter count; non_embedding drops the input tables (wte, wpe), as in Kaplan et al.

        With tied embeddings the shared matrix is dropped too; an untied lm_head is counted.
        """
        n = sum(p.numel() for p in self.parameters())  # parameters() yields a tied matrix once
        if non_embedding:
            n -= self.transformer.wte.weight.numel()
            if not self.config.rope:
                n -= self.transformer.wpe.weight.numel()
        return n

    def flops_per_token(self) -> int:
        """Training FLOPs per token (forward + backward = 3x forward, 2 FLOPs per multiply-add).

        6 per weight for every matmul weight (the lm_head included, at its padded width) plus the
        attention scores and weighted sums, 12 * n_layer * n_embd * block_size (PaLM appendix B).
        """
        c = self.config
        matmul_params = self.num_params(non_embedding=True) + (c.n_embd * c.padded_vocab_size
                                                               if c.tie_embeddings else 0)
        return 6 * matmul_params + 12 * c.n_layer * c.n_embd * c.block_size

    def estimate_mfu(self, tokens_per_iter: int, dt: float, peak_flops: float | None) -> float | None:
        """Model FLOPs utilisation: achieved FLOP/s over the device's peak (None if the peak is unknown)."""
        if not peak_flops or dt <= 0:
            return None
        return self.flops_per_token() * tokens_per_iter / dt / peak_flops

