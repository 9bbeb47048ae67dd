"""Train only some rows of the embedding table, leaving every other weight bit-identical.

Why not just mask the gradient? Because the optimizer still touches rows whose gradient is zero:
AdamW's decoupled weight decay shrinks *every* row (p -= lr * wd * p), and any optimizer state a
row picked up earlier keeps moving it. The robust fix is structural: split the table so that the
rows we train are a Parameter and the rest are buffers. Buffers are not in `parameters()`, so no
optimizer, weight decay or gradient clip can ever reach them.

    trainable = set_trainable(model, "new_rows", old_vocab)   # swap in split tables
    opt = torch.optim.AdamW(trainable, ...)                     # ... train ...
    merge_rows(model)                                           # back to plain nn.Embedding/Linear

With tied embeddings the input table and the output head share one `SplitRows`, so the trained
rows stay tied during training, and `merge_rows` re-ties the merged matrices.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

TRAIN_MODES = ("new_rows", "embeddings", "full")


class SplitRows(nn.Module):
    """A [rows, C] table: rows [lo, hi) are the Parameter `new`; rows above and below are buffers."""

    def __init__(self, weight: torch.Tensor, lo: int, hi: int):
        super().__init__()
        w = weight.detach()
        self.register_buffer("below", w[:lo].clone())
        self.new = nn.Parameter(w[lo:hi].clone())
        self.register_buffer("above", w[hi:].clone())

    def table(self) -> torch.Tensor:
        # The concatenation is rebuilt every forward; it is V x C, cheap next to the model itself.
        return torch.cat([self.below, self.new, self.above])


class _SplitTable(nn.Module):
    """A module whose `weight` is a SplitRows' table, for code that reads `.weight` (tying, init)."""

    def __init__(self, rows: SplitRows):
        super().__init__()
        self.rows = rows

    @property
    def weight(self) -> torch.Tensor:
        return self.rows.table()


class SplitEmbedding(_SplitTable):
    """Drop-in for nn.Embedding whose table is a SplitRows."""

    def forward(self, idx):
        return F.embedding(idx, self.rows.table())


class SplitLinear(_SplitTable):
    """Drop-in for a bias-free nn.Linear (the lm_head) whose weight is a SplitRows."""

    def forward(self, x):
        return F.linear(x, self.rows.table())


def is_tied(model) -> bool:
    if isinstance(model.lm_head, SplitLinear):
        return model.lm_head.rows is model.transformer.wte.rows
    return model.lm_head.weight is model.transformer.wte.weight


def set_trainable(model, what: str, old_vocab: int) -> list[nn.Parameter]:
    """Make `what` trainable and freeze the rest; return the trainable parameters.

    what: "new_rows" (embedding rows old_vocab..vocab_size-1 only, in wte and an untied lm_head),
    "embeddings" (all of wte and lm_head), "full" (every weight).
    """
    if what not in TRAIN_MODES:
        raise ValueError(f"what must be one of {TRAIN_MODES}, got {what!r}")
    merge_rows(model)
    new_vocab = model.config.vocab_size
    if what == "new_rows" and new_vocab <= old_vocab:
        raise ValueError(f"no new rows to train: vocab_size {new_vocab} <= old_vocab {old_vocab}")
    for p in model.parameters():
        p.requires_grad_(what == "full")
    if what == "embeddings":
        model.transformer.wte.weight.requires_grad_(True)
        model.lm_head.weight.requires_grad_(True)
    if what == "new_rows":
        tied = is_tied(model)
        rows = SplitRows(model.transformer.wte.weight, old_vocab, new_vocab)
        model.transformer.wte = SplitEmbedding(rows)
        model.lm_head = SplitLinear(rows if tied else SplitRows(model.lm_head.weight, old_vocab, new_vocab))
    return [p for p in model.parameters() if p.requires_grad]


@torch.no_grad()
def merge_rows(model) -> None:
    """Undo set_trainable's split: plain nn.Embedding / nn.Linear again, tied if they were, all trainable."""
    wte, head = model.transformer.wte, model.lm_head
    if isinstance(wte, SplitEmbedding):
        tied = head.rows is wte.rows
        table = wte.rows.table()
        model.transformer.wte = nn.Embedding(*table.shape, device=table.device, dtype=table.dtype)
        model.transformer.wte.weight.copy_(table)
        if tied:
            model.lm_head = nn.Linear(table.size(1), table.size(0), bias=False, device=table.device,
                                      dtype=table.dtype)
            model.lm_head.weight = model.transformer.wte.weight
        else:
            head_table = head.rows.table()
            model.lm_head = nn.Linear(head_table.size(1), head_table.size(0), bias=False,
                                      device=head_table.device, dtype=head_table.dtype)
            model.lm_head.weight.copy_(head_table)
    for p in model.parameters():
        p.requires_grad_(True)
