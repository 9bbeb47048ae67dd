"""Batches of (x, y) token windows from a shard directory, for training and evaluation.

The shards of a split are consecutive pieces of one token stream (data.prepare cuts it at exact
token counts, mid-document), so the loader reads them as one stream: a window may straddle two
shards and a short last shard is no problem.

train: each batch is `batch_size` windows at uniformly random offsets. Batch k of rank r is drawn
    from a generator seeded by (seed, rank, k), so the whole state is one counter: resuming needs
    only `state_dict()["batches"]`, and every DDP rank can load rank 0's state and still draw its
    own windows.
val: `iter(loader)` is one deterministic pass over non-overlapping windows (the last < block_size
    tokens are left out); rank r of world_size gets a contiguous share of the windows, so the ranks'
    windows are disjoint and together cover the split. `val_window_range` and `val_windows` are
    that rule on its own, for code that evaluates a token stream it holds in memory.

Every shard is checked at open for ids >= the manifest's vocab_size (see data.shards.check_ids).
"""
import numpy as np
import torch

from data.shards import check_ids, read_manifest, read_shard


def val_window_range(n_tokens: int, block_size: int, rank: int = 0, world_size: int = 1) -> range:
    """Which non-overlapping val windows rank `rank` evaluates; window w is tokens
    [w * block_size, w * block_size + block_size + 1) (inputs and the shifted targets).

    The windows are cut from the start of the stream, so the pass is the same on every run, and
    rank r takes a contiguous share: the ranks' windows are disjoint and together cover them all.
    """
    n_windows = max(n_tokens - 1, 0) // block_size
    return range(rank * n_windows // world_size, (rank + 1) * n_windows // world_size)


def val_windows(stream, block_size: int, max_windows: int | None = None):
    """The val pass's windows of a token stream, stacked [N, block_size + 1] (torch or numpy in,
    the same out): x = w[:, :-1], y = w[:, 1:]. At most `max_windows` (None or 0: all), from
    the start."""
    windows = val_window_range(len(stream), block_size)[:max_windows or None]
    if not windows:
        raise ValueError(f"text too short: {len(stream)} tokens, need {block_size + 1} for one "
                         f"window")
    rows = [stream[w * block_size:w * block_size + block_size + 1] for w in windows]
    return torch.stack(rows) if isinstance(stream, torch.Tensor) else np.stack(rows)


class ShardLoader:
    def __init__(self, dir, split, batch_size, block_size, *, rank=0, world_size=1, seed=0,
                 device="cpu"):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        if batch_size < 1 or block_size < 1:
            raise ValueError(f"batch_size and block_size must be >= 1, got {batch_size}, "
                             f"{block_size}")
        meta = read_manifest(dir)
        if split not in meta["splits"]:
            raise ValueError(f"{dir}: no split {split!r} (has {', '.join(meta['splits'])})")
        self.dir, self.split = str(dir), split
        self.batch_size, self.block_size = batch_size, block_size
        self.rank, self.world_size, self.seed = rank, world_size, seed
        self.device = torch.device(device)
        paths = [f"{dir}/{name}" for name in meta["splits"][split]["shards"]]
        self.shards = [read_shard(path) for path in paths]
        if meta.get("vocab_size") is not None:
            for path, shard in zip(paths, self.shards):
                check_ids(path, shard, int(meta["vocab_size"]))
        # starts[i] is the stream offset of shard i; starts[-1] the stream length
        self.starts = np.cumsum([0] + [len(s) for s in self.shards])
        self.n_tokens = int(self.starts[-1])
        if self.n_tokens < block_size + 1:
            raise ValueError(f"{dir}: split {split!r} has {self.n_tokens} tokens, fewer than "
                             f"block_size + 1 = {block_size + 1}; use a smaller block_size or "
                             f"prepare more text")
        self.batches = 0  # batches drawn by next_batch()
        # val: this rank's windows are [lo, hi) of the split's non-overlapping windows
        windows = val_window_range(self.n_tokens, block_size, rank, world_size)
        self.window_range = (windows.start, windows.stop)

    # ---- reading -----------------------------------------------------------------------------

    def _read(self, start, n):
        """Tokens [start, start + n) of the split's stream, across shard boundaries."""
        i = int(np.searchsorted(self.starts, start, side="right")) - 1
        out, pos = [], start
        while pos < start + n:
            shard = self.shards[i]
            lo = pos - self.starts[i]
            take = min(len(shard) - lo, start + n - pos)
            out.append(shard[lo:lo + take])
            pos += take
            i += 1
        return out[0] if len(out) == 1 else np.concatenate(out)

    def _batch(self, offsets):
        T = self.block_size
        buf = np.stack([self._read(int(o), T + 1) for o in offsets]).astype(np.int64)
        # contiguous copies, so callers may .view() them
        x = torch.from_numpy(np.ascontiguousarray(buf[:, :-1]))
        y = torch.from_numpy(np.ascontiguousarray(buf[:, 1:]))
        if self.device.type == "cuda":
            # pinned host memory lets the copy overlap with compute (non_blocking)
            return (x.pin_memory().to(self.device, non_blocking=True),
                    y.pin_memory().to(self.device, non_blocking=True))
        return x.to(self.device), y.to(self.device)

    # ---- train: random windows ---------------------------------------------------------------

    def _train_offsets(self, k):
        rng = np.random.default_rng([self.seed, self.rank, k])
        return rng.integers(0, self.n_tokens - self.block_size, size=self.batch_size)

    def next_batch(self):
        """The next (x, y): random windows (train) or the next batch of the val pass, cycling."""
        k, self.batches = self.batches, self.batches + 1
        if self.split == "train":
            return self._batch(self._train_offsets(k))
        n = len(self)
        if n == 0:
            raise ValueError(f"{self.dir}: rank {self.rank} has no {self.split} windows; "
                             f"use fewer ranks or a smaller block_size")
        return self._val_batch(k % n)

    def state_dict(self):
        return {"split": self.split, "seed": self.seed, "batches": self.batches}

    def load_state_dict(self, state):
        if state.get("split") != self.split or state.get("seed") != self.seed:
            raise ValueError(f"loader state is for split {state.get('split')!r} seed "
                             f"{state.get('seed')!r}, this loader reads {self.split!r} seed "
                             f"{self.seed!r}")
        self.batches = int(state["batches"])

    # ---- val: one deterministic pass ---------------------------------------------------------

    def _val_batch(self, b):
        lo, hi = self.window_range
        first = lo + b * self.batch_size
        windows = range(first, min(first + self.batch_size, hi))
        return self._batch([w * self.block_size for w in windows])

    def __len__(self):
        """Batches in this rank's val pass (the last one may be smaller than batch_size)."""
        if self.split == "train":
            raise TypeError("the train split is an endless stream of random batches")
        lo, hi = self.window_range
        return -(-(hi - lo) // self.batch_size)

    def __iter__(self):
        if self.split == "train":
            while True:
                yield self.next_batch()
        for b in range(len(self)):
            yield self._val_batch(b)
