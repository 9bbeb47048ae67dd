"""data.loader.ShardLoader: shapes, the shift, seeding, resuming and DDP partitioning.

The shards hold 0, 1, 2, ... so every window says where it came from: a window starting at
offset o must be exactly [o, o+1, ..., o+T], whichever shards it spans.
"""
import numpy as np
import pytest
import torch

from data.loader import ShardLoader, val_window_range, val_windows
from data.shards import ShardError, read_manifest, write_manifest, write_shard

SHARD_SIZES = {"train": [1000, 7, 600], "val": [300, 250]}  # a 7-token shard: windows straddle it


def make_dir(path, sizes=SHARD_SIZES):
    path.mkdir(parents=True, exist_ok=True)
    splits = {}
    for split, lens in sizes.items():
        names, start = [], 0
        for i, n in enumerate(lens):
            names.append(f"{split}_{i:06d}.bin")
            write_shard(path / names[-1], np.arange(start, start + n), "uint16")
            start += n
        splits[split] = {"shards": names, "tokens": start, "documents": 1, "bytes": start}
    write_manifest(path, {"format": "vocablab-shards", "version": 1, "vocab_size": 2**16,
                          "eot_id": 0, "dtype": "uint16", "token_bytes": "token_bytes.npy",
                          "splits": splits})
    return path


@pytest.fixture
def data_dir(tmp_path):
    return make_dir(tmp_path / "shards")


def windows_ok(x, y, n_tokens):
    """Each row is a run of consecutive stream positions; y is x shifted by one."""
    assert x.dtype == y.dtype == torch.int64
    T = x.shape[1]
    starts = x[:, :1]
    assert torch.equal(x, starts + torch.arange(T))
    assert torch.equal(y, x + 1)
    assert int(y.max()) < n_tokens
    return starts.flatten().tolist()


def test_train_shapes_shift_and_straddling(data_dir):
    loader = ShardLoader(data_dir, "train", batch_size=64, block_size=16, seed=1)
    starts = []
    for _ in range(30):
        x, y = loader.next_batch()
        assert x.shape == y.shape == (64, 16) and x.is_contiguous() and y.is_contiguous()
        starts += windows_ok(x, y, 1607)
    # some windows cross the 7-token middle shard (stream offsets 1000..1006)
    assert any(s < 1000 < s + 17 for s in starts) and any(s < 1007 < s + 17 for s in starts)
    assert min(starts) >= 0 and max(starts) <= 1607 - 17


def test_train_is_seeded(data_dir):
    a = ShardLoader(data_dir, "train", 8, 16, seed=3)
    b = ShardLoader(data_dir, "train", 8, 16, seed=3)
    c = ShardLoader(data_dir, "train", 8, 16, seed=4)
    batches_a = [a.next_batch()[0] for _ in range(3)]
    assert all(torch.equal(p, b.next_batch()[0]) for p in batches_a)
    assert not all(torch.equal(p, c.next_batch()[0]) for p in batches_a)


def test_resume_from_state_dict_gives_the_same_next_batches(data_dir):
    a = ShardLoader(data_dir, "train", 8, 16, seed=5)
    for _ in range(4):
        a.next_batch()
    state = a.state_dict()
    want = [a.next_batch() for _ in range(3)]
    b = ShardLoader(data_dir, "train", 8, 16, seed=5)
    b.load_state_dict(state)
    for (wx, wy), (gx, gy) in zip(want, (b.next_batch() for _ in range(3))):
        assert torch.equal(wx, gx) and torch.equal(wy, gy)
    with pytest.raises(ValueError, match="seed"):
        ShardLoader(data_dir, "train", 8, 16, seed=6).load_state_dict(state)


def test_ddp_ranks_draw_different_train_windows(data_dir):
    r0 = ShardLoader(data_dir, "train", 8, 16, rank=0, world_size=2, seed=0)
    r1 = ShardLoader(data_dir, "train", 8, 16, rank=1, world_size=2, seed=0)
    for _ in range(3):
        assert not torch.equal(r0.next_batch()[0], r1.next_batch()[0])
    # rank 1 resumes from rank 0's saved state and still draws its own windows
    r1b = ShardLoader(data_dir, "train", 8, 16, rank=1, world_size=2, seed=0)
    r1b.load_state_dict(r0.state_dict())
    assert torch.equal(r1b.next_batch()[0], r1.next_batch()[0])


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_val_pass_is_disjoint_and_covers_the_split(data_dir, world_size):
    T, n_tokens = 16, 550
    all_starts = []
    for rank in range(world_size):
        loader = ShardLoader(data_dir, "val", 5, T, rank=rank, world_size=world_size)
        starts = []
        for x, y in loader:
            assert x.shape[0] <= 5 and x.shape[1] == T
            starts += windows_ok(x, y, n_tokens)
        assert len(loader) == -(-len(starts) // 5)
        again = [s for x, _ in loader for s in x[:, 0].tolist()]
        assert again == starts  # a deterministic pass, the same every time
        all_starts += starts
    # non-overlapping windows tile the split: all but the last < T tokens
    assert sorted(all_starts) == list(range(0, (n_tokens - 1) // T * T, T))
    assert len(set(all_starts)) == len(all_starts)


def test_val_next_batch_cycles_through_the_pass(data_dir):
    loader = ShardLoader(data_dir, "val", 8, 16)
    passes = [x for x, _ in loader]
    cycled = [loader.next_batch()[0] for _ in range(len(passes) + 1)]
    assert all(torch.equal(p, c) for p, c in zip(passes + passes[:1], cycled))


def test_errors(data_dir, tmp_path):
    with pytest.raises(ValueError, match=r"split 'val' has 550 tokens, fewer than block_size "
                                         r"\+ 1 = 601"):
        ShardLoader(data_dir, "val", 1, 600)
    with pytest.raises(ValueError, match="no split 'test'"):
        ShardLoader(data_dir, "test", 1, 8)
    with pytest.raises(ValueError, match="rank"):
        ShardLoader(data_dir, "train", 1, 8, rank=2, world_size=2)
    with pytest.raises(ShardError, match="meta.json: missing"):
        ShardLoader(tmp_path / "nowhere", "train", 1, 8)
    (data_dir / "train_000001.bin").write_bytes(b"\0" * 10)
    with pytest.raises(ShardError, match=r"train_000001\.bin: truncated"):
        ShardLoader(data_dir, "train", 1, 8)
    with pytest.raises(TypeError, match="endless"):
        len(ShardLoader(make_dir(tmp_path / "ok"), "train", 1, 8))


def test_ids_beyond_the_vocabulary_are_refused_at_open(data_dir):
    meta = read_manifest(data_dir)
    meta["vocab_size"] = 1500  # train holds ids 0..1606: the last shard goes past it
    write_manifest(data_dir, meta)
    with pytest.raises(ShardError, match=r"train_000002\.bin: holds token id 1606, but meta\.json "
                                         r"says vocab_size 1500 \(ids 0\.\.1499\)"):
        ShardLoader(data_dir, "train", 1, 8)
    ShardLoader(data_dir, "val", 1, 8)  # val's ids (0..549) fit
    meta["vocab_size"] = 1607  # the largest id + 1: exactly enough
    write_manifest(data_dir, meta)
    ShardLoader(data_dir, "train", 1, 8)


def test_val_windows_hand_worked():
    # block 3 over 0..9: windows of 4 tokens at stride 3; the last token is only a target
    want = [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    assert val_windows(np.arange(10), 3).tolist() == want
    assert val_windows(torch.arange(11), 3).tolist() == want  # 9 and 10 do not make a 4th
    got = val_windows(torch.arange(10), 3, max_windows=2)
    assert isinstance(got, torch.Tensor) and got.tolist() == want[:2]
    assert val_windows(np.arange(10), 3, max_windows=0).tolist() == want  # 0: no limit
    assert [list(val_window_range(100, 3, r, 3)) for r in range(3)] == [
        list(range(0, 11)), list(range(11, 22)), list(range(22, 33))]
    with pytest.raises(ValueError, match="text too short: 3 tokens, need 4"):
        val_windows(np.arange(3), 3)


def test_val_windows_are_the_loaders_val_pass(data_dir):
    stream = np.arange(550)  # the val split of data_dir, as one stream
    loader = ShardLoader(data_dir, "val", 4, 16)
    rows = torch.cat([torch.cat([x, y[:, -1:]], dim=1) for x, y in loader])
    assert torch.equal(rows, torch.from_numpy(val_windows(stream, 16)).long())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_batches(data_dir):
    x, y = ShardLoader(data_dir, "train", 4, 16, device="cuda").next_batch()
    assert x.is_cuda and torch.equal(y.cpu(), x.cpu() + 1)
