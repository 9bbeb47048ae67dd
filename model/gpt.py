"""A small GPT: config, norm, rotary positions, attention, MLP, block, model.

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

Sampling with a KV cache lives in model/generate.py and growing the vocabulary in model/resize.py;
`GPT.generate` and `GPT.resize_token_embeddings` are thin methods over them, so this file stays the
network alone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from model.generate import generate
from model.resize import resize_token_embeddings


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


class _RMSNormFunction(torch.autograd.Function):
    """y = x * r * w with r = 1/sqrt(mean(x^2) + eps), and its gradient written out by hand.

    With n = x*r and h = dL/dn = g*w, the chain rule through r (dr/dx_j = -r^3 x_j / C) gives
    dL/dx = r * (h - n * mean(h*n)) and dL/dw = sum over positions of g*n. Autograd through the
    same formula records pow, mean, add, rsqrt and two muls and replays each backward; on CPU this
    short backward (and one pass for the sum of squares) brings the norm close to LayerNorm's fused
    kernel (bench/train_gpt.py has the numbers).
    """

    @staticmethod
    def forward(ctx, x, weight, eps):
        r = torch.linalg.vector_norm(x, dim=-1, keepdim=True).square_().div_(x.size(-1)).add_(eps).rsqrt_()
        n = x * r
        ctx.save_for_backward(n, r, weight)
        return n * weight

    @staticmethod
    def backward(ctx, g):
        n, r, weight = ctx.saved_tensors
        h = g * weight
        grad_w = (g * n).flatten(0, -2).sum(0)
        return torch.addcmul(h, n, (h * n).mean(-1, keepdim=True), value=-1).mul_(r), grad_w, None


class RMSNorm(nn.Module):
    """x / rms(x) * weight: LayerNorm without the mean and the bias (same state dict as nn.RMSNorm)."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return _RMSNormFunction.apply(x, self.weight, self.eps)


class _CrossEntropyFunction(torch.autograd.Function):
    """F.cross_entropy(logits [N, V], targets, ignore_index=-1), with a backward that reuses memory.

    dL/dlogits = (softmax - onehot(target)) / n_kept, so the backward turns the saved log-softmax
    into probabilities in place. F.cross_entropy instead zero-fills an [N, V] gradient for
    nll_loss and writes another in log_softmax's backward; at V=4096 these full passes over the
    logits are a tenth of a small model's CPU step. The in-place reuse allows one backward only.
    """

    @staticmethod
    def forward(ctx, logits, targets):
        logp = torch.log_softmax(logits, dim=-1)
        kept = targets != -1
        t = targets.clamp(min=0)[:, None]
        n_kept = kept.sum()
        ctx.save_for_backward(logp, t, kept, n_kept)
        ctx.done = False
        return -(logp.gather(1, t).squeeze(1) * kept).sum() / n_kept

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        if ctx.done:
            raise RuntimeError("this loss was already backpropagated once (retain_graph is not supported)")
        ctx.done = True
        logp, t, kept, n_kept = ctx.saved_tensors
        grad = logp.exp_().scatter_add_(1, t, torch.full(t.shape, -1.0, dtype=logp.dtype, device=logp.device))
        return grad.mul_((kept * (g / n_kept))[:, None]), None


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over targets != -1; CPU takes the leaner backward above."""
    if logits.device.type == "cpu" and logits.requires_grad:
        return _CrossEntropyFunction.apply(logits, targets)
    return F.cross_entropy(logits, targets, ignore_index=-1)


def make_norm(config: GPTConfig) -> nn.Module:
    if config.norm == "rmsnorm":
        return RMSNorm(config.n_embd)
    return nn.LayerNorm(config.n_embd, bias=config.bias)


def rope_tables(head_dim: int, length: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and signed sin [length, 1, head_dim] for apply_rope (the 1 broadcasts over heads).

    Channel pair (i, i + head_dim/2) turns by angle pos * base^(-2i/head_dim); the tables hold
    [cos, cos] and [-sin, sin] per position so the rotation is one multiply and one multiply-add.
    """
    inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(length, dtype=torch.float32), inv_freq)
    cos, sin = angles.cos(), angles.sin()
    return torch.cat((cos, cos), -1)[:, None], torch.cat((-sin, sin), -1)[:, None]


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each (first-half, second-half) channel pair of x [B, T, heads, D] by its position's angle.

    (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin) = x * [cos, cos] + [x2, x1] * [-sin, sin].
    Rotating q and k by angles proportional to position makes q.k depend only on their distance.
    """
    xf = x.float()
    x1, x2 = xf.chunk(2, dim=-1)
    return torch.addcmul(xf * cos, torch.cat((x2, x1), dim=-1), sin).type_as(x)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head, self.n_embd, self.dropout = config.n_head, config.n_embd, config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v in one matmul
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x, rope=None, attn_mask=None, cache=None, layer: int = 0):
        B, T, C = x.shape
        nh = self.n_head
        qkv = self.c_attn(x).view(B, T, 3 * nh, C // nh)
        qk, v = qkv.split((2 * nh, nh), dim=2)
        if rope is not None:
            qk = apply_rope(qk, *rope)  # q and k in one go, before the heads move forward
        q, k = qk.split(nh, dim=2)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [B, n_head, T, head_size]
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

    def forward(self, idx=None, targets=None, *, inputs_embeds=None, attn_mask=None, cache=None):
        """Return (logits [B, T, vocab_size], mean cross-entropy over targets != -1, or None).

        `cache` (a model.generate.KVCache) holds the keys and values of the tokens before these:
        positions then start at cache.pos, and each layer appends its new keys and values.
        """
        parts = [t for t in (inputs_embeds, None if idx is None else self.transformer.wte(idx)) if t is not None]
        if not parts:
            raise ValueError("forward needs idx, inputs_embeds, or both")
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        offset, T = (cache.pos if cache is not None else 0), x.size(1)
        if offset + T > self.config.block_size:
            raise ValueError(f"sequence of length {offset + T} exceeds block_size={self.config.block_size}")
        rope = None
        if self.config.rope:
            rope = (self.rope_cos[offset:offset + T], self.rope_sin[offset:offset + T])
        else:
            x = x + self.transformer.wpe(torch.arange(offset, offset + T, device=x.device))
        x = self.transformer.drop(x)
        for i, block in enumerate(self.transformer.h):
            x = block(x, rope, attn_mask, cache, i)
        if cache is not None:
            cache.pos += T
        logits = self.lm_head(self.transformer.ln_f(x))
        if self.config.padded_vocab_size > self.config.vocab_size:
            # padding ids at -inf: softmax and loss never see them (Linear's backward doesn't need its output)
            logits[..., self.config.vocab_size:] = float("-inf")
        loss = None
        if targets is not None:
            if targets.shape != logits.shape[:2]:
                raise ValueError(f"targets shape {tuple(targets.shape)} != sequence shape {tuple(logits.shape[:2])}"
                                 " (with inputs_embeds, pad targets with -1 for the prepended positions)")
            loss = cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.reshape(-1))
        return logits[..., :self.config.vocab_size], loss

    # ---- beside the network: sampling (model/generate.py) and vocabulary surgery (model/resize.py)
    def generate(self, idx, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 *, use_cache: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
        """Append max_new_tokens sampled ids to idx [B, T]; see model.generate.generate."""
        return generate(self, idx, max_new_tokens, temperature, top_k, use_cache=use_cache, generator=generator)

    def resize_token_embeddings(self, new_vocab_size: int, init: str = "mean",
                                parents: dict[int, tuple[int, int]] | None = None) -> None:
        """Grow the vocabulary in place; see model.resize.resize_token_embeddings."""
        resize_token_embeddings(self, new_vocab_size, init, parents)

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

