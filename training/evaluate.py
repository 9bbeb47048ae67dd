"""Validation bits per byte, and a sample to read while training."""
from __future__ import annotations

import contextlib
import itertools
import math

import torch
import torch.nn.functional as F

from training.runtime import all_reduce_sum


@torch.no_grad()
def evaluate_bpb(model, loader, token_bytes, max_batches=None, autocast=contextlib.nullcontext,
                 doc_start_id=None):
    """(mean loss in nats per token, bits per byte) over the val loader's fixed pass.

    bpb = sum of per-token losses / (ln 2 * sum of the UTF-8 bytes of the target tokens): a sum over
    tokens, not a mean of batch means, so every byte weighs the same. Targets of 0 bytes (specials
    such as <|endoftext|>) still add their loss: predicting a document's end is part of the text.
    Under DDP the sums are all-reduced, so every rank returns the global figures. A short last
    batch is padded to the first batch's size with ignored targets.

    `doc_start_id` (SentencePiece shards, see data.prepare): each document starts with <s>, and its
    first piece carries a dummy-prefix `▁` that is not in the text. The table counts that space, so
    the target right after <s> gets one byte less, and <s> itself (-1 in the table, which balances
    the space when whole documents are summed) counts 0 bytes: exact for any window.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    tb = torch.as_tensor(token_bytes, dtype=torch.int64, device=device)
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # nats, bytes, tokens
    rows = None
    for x, y in itertools.islice(loader, max_batches or None):  # islice: no batch read past the last
        x, y = x.to(device), y.to(device)
        rows = rows or x.size(0)
        if x.size(0) < rows:
            # Pad the short last batch with rows that carry no target: every batch has one shape,
            # so a compiled model does not build another graph for it; the sums are unchanged.
            pad = rows - x.size(0)
            x = torch.cat((x, x.new_zeros(pad, x.size(1))))
            y = torch.cat((y, y.new_full((pad, y.size(1)), -1)))
        with autocast():
            logits, _ = model(x)
        nats = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1),
                               ignore_index=-1, reduction="sum")
        valid = y >= 0
        nbytes = tb[y[valid]].sum()
        if doc_start_id is not None:
            nbytes += (y == doc_start_id).sum() - ((x == doc_start_id) & valid & (y != doc_start_id)).sum()
        sums += torch.stack([nats.double(), nbytes.double(), valid.sum().double()])
    all_reduce_sum(sums)
    model.train(was_training)
    nats, nbytes, ntok = sums.tolist()
    if ntok == 0:
        raise ValueError("the validation split produced no batches (is it shorter than block_size+1 tokens?)")
    return nats / ntok, nats / (math.log(2) * nbytes)


def sample_text(model, tok, eot_id, n_tokens, cfg, seed, device) -> str:
    """Sample from a document start (<|endoftext|>) with its own generator, leaving the training RNG alone."""
    g = torch.Generator(device=device).manual_seed(seed)
    start = torch.tensor([[eot_id if eot_id is not None else 0]], device=device)
    was_training = model.training
    model.eval()
    out = model.generate(start, n_tokens, temperature=cfg.temperature, top_k=cfg.top_k or None, generator=g)
    model.train(was_training)
    return tok.decode(out[0, 1:].tolist())
