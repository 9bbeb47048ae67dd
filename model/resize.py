"""Vocabulary surgery: grow a trained GPT's token table (and its output head) for new token ids.

Beside model/gpt.py rather than in it: the network never changes its own vocabulary; a study that
adds tokens (studies/new_tokens.py) does. `GPT.resize_token_embeddings` is a thin method over this.
"""
from __future__ import annotations

import torch
import torch.nn as nn


@torch.no_grad()
def resize_token_embeddings(model, new_vocab_size: int, init: str = "mean",
                            parents: dict[int, tuple[int, int]] | None = None) -> None:
    """Grow the vocabulary to new_vocab_size ids; old rows (wte and lm_head) are kept bit for bit.

    New rows start as: "mean" of the old rows (a neutral guess: the new token's logit starts at
    the average logit), "normal" (std 0.02, like a fresh model), "zero", or "parents": the mean of
    the two tokens the new one was merged from (`parents[new_id] = (a, b)`, ids may be earlier new ids).
    Weight tying is preserved. The optimizer must be rebuilt afterwards: the parameters are new.
    """
    old = model.config.vocab_size
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
    model.config.vocab_size = new_vocab_size
    V = model.config.padded_vocab_size

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

    wte = model.transformer.wte
    model.transformer.wte = nn.Embedding(V, model.config.n_embd, device=wte.weight.device, dtype=wte.weight.dtype)
    model.transformer.wte.weight.copy_(grown(wte.weight))
    head = model.lm_head
    model.lm_head = nn.Linear(model.config.n_embd, V, bias=False, device=head.weight.device, dtype=head.weight.dtype)
    if model.config.tie_embeddings:
        model.lm_head.weight = model.transformer.wte.weight
    else:
        model.lm_head.weight.copy_(grown(head.weight))
