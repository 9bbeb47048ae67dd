"""How the vocabulary sweep scores a model: bits per byte of the same text for every tokenizer.

Its own module because the scores are the study's claim: a reader checking why one V beats
another reads this file alone (the val stream, the per-document losses, the unigram-normalised
loss, the paired bootstrap over documents, and what each model saw in training).
"""
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from data.loader import ShardLoader
from data.shards import load_token_bytes, read_manifest, read_shard
from studies.common import scoring_windows
from training import load_model

RARE = 10  # "rarely seen" threshold: ids the model trained on fewer than this many times
EVAL_VERSION = 3  # bump when evaluate_run changes, so cached runs are scored again


def split_stream(shard_dir, split="val"):
    """A split's tokens as one array ([separator] + document, for each of its documents)."""
    meta = read_manifest(shard_dir)
    shards = meta["splits"][split]["shards"]
    return np.concatenate([np.asarray(read_shard(Path(shard_dir) / s)) for s in shards])


def val_stream(shard_dir):
    """The val split's tokens as one array ([eot] + document, for each val document)."""
    return split_stream(shard_dir, "val")


def unigram_normalized_bpb(target_nats, targets, n_bytes):
    """Tao et al.'s unigram-normalised loss, in bits per byte: the sum over the scored tokens of
    (the model's loss + ln p(token)), p the token's frequency among these same targets, divided
    by ln 2 x the text's bytes.

    It is what the model knows beyond how often each token occurs: splitting text into more,
    rarer tokens raises the plain loss per token and the unigram term alike, so it cancels.
    Negative means better than the unigram model; lower is better.
    """
    targets = np.asarray(targets, dtype=np.int64)
    counts = np.bincount(targets)
    log_p = np.log(counts[targets] / len(targets))
    return float((np.sum(target_nats) + log_p.sum()) / (math.log(2) * n_bytes))


@torch.no_grad()
def evaluate_run(run_dir, shard_dir, device="cpu", split="val"):
    """A run's final checkpoint scored on the whole of a split's text, per document.

    Returns loss (nats per token), bpb, unigram_norm_bpb, bytes (UTF-8 bytes of every scored
    target: the whole text, whatever the tokenizer), tokens, and doc_nats / doc_bytes per
    document (each document's tokens and the separator that ends it), which the paired bootstrap
    resamples.
    """
    model, _ = load_model(run_dir, device)
    meta = read_manifest(shard_dir)
    stream, table = split_stream(shard_dir, split), load_token_bytes(shard_dir)
    start_id = meta["eot_id"]  # every document starts with it: <|endoftext|>, or SentencePiece's <s>
    inputs, targets = stream[:-1], stream[1:]
    target_bytes = table[targets].astype(np.int64)
    if meta["tokenizer"].get("adds_dummy_prefix"):
        # <s> counts -1 in the table, paying for the dummy-prefix space of the document it
        # starts; charge that space to the piece holding it (the one after <s>) instead, so each
        # document's bytes are its UTF-8 length, the first document's too (data/prepare.py)
        target_bytes += (targets == start_id).astype(np.int64) \
            - ((inputs == start_id) & (targets != start_id))
    doc_of = np.cumsum(stream == start_id)[:-1] - 1  # target i+1's document: starts up to i, - 1
    nats = np.zeros(len(targets))
    T = model.config.block_size
    # the same windows over the positions, to know which target each loss belongs to
    for (x, y), (_, pos) in zip(scoring_windows(stream, T), scoring_windows(np.arange(len(stream)), T)):
        logits, _ = model(x.to(device))
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.to(device).flatten(), ignore_index=-1,
                               reduction="none").double().cpu().numpy()
        pos = pos.flatten().numpy()
        nats[pos[pos >= 0] - 1] = loss[pos >= 0]
    n_docs = int(doc_of[-1]) + 1
    n_bytes = int(target_bytes.sum())
    return {"loss": float(nats.mean()), "bpb": float(nats.sum() / (math.log(2) * n_bytes)),
            "unigram_norm_bpb": unigram_normalized_bpb(nats, targets, n_bytes),
            "bytes": n_bytes, "tokens": len(targets),
            "doc_nats": np.bincount(doc_of, weights=nats, minlength=n_docs).tolist(),
            "doc_bytes": np.bincount(doc_of, weights=target_bytes, minlength=n_docs).astype(int).tolist()}


def paired_bootstrap(nats_a, nats_b, doc_bytes, n_resamples=2000, seed=0):
    """(bpb of a minus bpb of b, 2.5th and 97.5th percentiles) over val documents drawn with replacement.

    Paired: both are scored on the same documents, so each resample takes the same documents for
    both and the documents' own difficulty cancels; what remains is how much the difference
    depends on which documents happen to be in val.
    """
    a, b, nbytes = (np.asarray(v, dtype=np.float64) for v in (nats_a, nats_b, doc_bytes))
    idx = np.random.default_rng(seed).integers(0, len(nbytes), size=(n_resamples, len(nbytes)))
    diffs = (a - b)[idx].sum(1) / (math.log(2) * nbytes[idx].sum(1))
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return (a - b).sum() / (math.log(2) * nbytes.sum()), float(lo), float(hi)



def replay_training_tokens(shard_dir, batch_size, block_size, seed, n_batches, n_vocab,
                           token_bytes, progress=False):
    """(input-id counts [n_vocab], target bytes) over exactly the batches a run trained on.

    train_gpt draws micro-batch k from ShardLoader(seed) in order, and batch k depends only on
    (seed, rank, k), so drawing the same n_batches again shows what the model saw, id by id.
    """
    loader = ShardLoader(shard_dir, "train", batch_size, block_size, seed=seed)
    counts = np.zeros(n_vocab, dtype=np.int64)
    target_bytes = 0
    for _ in tqdm(range(n_batches), desc="  counting seen tokens", disable=not progress,
                  leave=False):
        x, y = loader.next_batch()
        counts += np.bincount(x.numpy().ravel(), minlength=n_vocab)
        target_bytes += int(token_bytes[y.numpy()].sum())
    return counts, target_bytes

