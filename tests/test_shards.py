"""data.shards: llm.c's shard format, written atomically, read with validation."""
import json
import struct

import numpy as np
import pytest

from data.shards import (ShardError, dtype_for_vocab, load_token_bytes, read_manifest,
                         read_shard, save_token_bytes, write_manifest, write_shard)


def llmc_read(path):
    """How llm.c's own Python loader reads a shard: the independent expectation."""
    header = np.fromfile(path, dtype=np.int32, count=256)
    dtype = {20240520: np.uint16, 20240801: np.uint32}[int(header[0])]
    tokens = np.fromfile(path, dtype=dtype, offset=256 * 4)
    return header, tokens


@pytest.mark.parametrize("dtype,magic,version,top", [("uint16", 20240520, 1, 2**16 - 1),
                                                     ("uint32", 20240801, 7, 2**32 - 1)])
def test_round_trip_matches_llmc_layout(tmp_path, dtype, magic, version, top):
    tokens = np.array([0, 1, 50256, top, 7, top], dtype=np.int64)
    path = write_shard(tmp_path / "s.bin", tokens, dtype)
    raw = path.read_bytes()
    assert struct.unpack("<3i", raw[:12]) == (magic, version, len(tokens))
    assert raw[12:1024] == bytes(1012)  # the rest of the header is zero
    assert len(raw) == 1024 + len(tokens) * np.dtype(dtype).itemsize
    header, llmc_tokens = llmc_read(path)
    assert list(header[:3]) == [magic, version, len(tokens)]
    assert llmc_tokens.tolist() == tokens.tolist()
    got = read_shard(path)
    assert isinstance(got, np.memmap) and got.dtype == np.dtype(dtype)
    assert got.tolist() == tokens.tolist()
    assert [p.name for p in tmp_path.iterdir()] == ["s.bin"]  # no temp file left behind


def test_empty_shard(tmp_path):
    assert read_shard(write_shard(tmp_path / "e.bin", [], "uint16")).tolist() == []


@pytest.mark.parametrize("tokens,dtype", [([1, 65536], "uint16"), ([-1, 5], "uint16"),
                                          ([2**32], "uint32"), ([1.5], "uint16")])
def test_ids_that_do_not_fit_are_refused_not_wrapped(tmp_path, tokens, dtype):
    with pytest.raises(ValueError, match=r"s\.bin"):
        write_shard(tmp_path / "s.bin", np.array(tokens), dtype)
    assert list(tmp_path.iterdir()) == []


def test_dtype_for_vocab():
    assert dtype_for_vocab(50257) == "uint16"
    assert dtype_for_vocab(65536) == "uint16"  # ids 0..65535 fit
    assert dtype_for_vocab(65537) == "uint32"
    assert dtype_for_vocab(100277) == "uint32"


@pytest.fixture
def shard(tmp_path):
    return write_shard(tmp_path / "train_000000.bin", np.arange(100), "uint16")


def test_truncated_shard_names_the_file(shard):
    shard.write_bytes(shard.read_bytes()[:-2])
    with pytest.raises(ShardError, match=r"train_000000\.bin: truncated: header says 100 uint16"):
        read_shard(shard)


def test_trailing_bytes_and_short_header(shard):
    shard.write_bytes(shard.read_bytes() + b"\0\0")
    with pytest.raises(ShardError, match=r"train_000000\.bin: has trailing bytes"):
        read_shard(shard)
    shard.write_bytes(b"\x00" * 100)
    with pytest.raises(ShardError, match=r"train_000000\.bin: truncated: 100 bytes"):
        read_shard(shard)


def test_wrong_magic_and_version(shard):
    raw = bytearray(shard.read_bytes())
    raw[:4] = struct.pack("<i", 12345)
    shard.write_bytes(bytes(raw))
    with pytest.raises(ShardError, match=r"train_000000\.bin: not a token shard \(magic 12345"):
        read_shard(shard)
    raw[:8] = struct.pack("<2i", 20240520, 7)
    shard.write_bytes(bytes(raw))
    with pytest.raises(ShardError, match=r"train_000000\.bin: unsupported version 7"):
        read_shard(shard)


def test_missing_shard(tmp_path):
    with pytest.raises(ShardError, match=r"nope\.bin: cannot read shard"):
        read_shard(tmp_path / "nope.bin")


def test_manifest_and_token_bytes(tmp_path):
    with pytest.raises(ShardError, match=r"meta\.json: missing.*data\.prepare"):
        read_manifest(tmp_path)
    (tmp_path / "meta.json").write_text("{not json")
    with pytest.raises(ShardError, match=r"meta\.json: not valid JSON"):
        read_manifest(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ShardError, match="not a vocablab shard manifest"):
        read_manifest(tmp_path)
    meta = {"format": "vocablab-shards", "version": 1, "vocab_size": 4,
            "token_bytes": "token_bytes.npy"}
    write_manifest(tmp_path, meta)
    assert read_manifest(tmp_path) == meta
    save_token_bytes(tmp_path / "token_bytes.npy", [1, 2, 3, 0])
    assert load_token_bytes(tmp_path).tolist() == [1, 2, 3, 0]
    save_token_bytes(tmp_path / "token_bytes.npy", [1, 2, 3])
    with pytest.raises(ShardError, match=r"token_bytes\.npy: expected int32 \[4\]"):
        load_token_bytes(tmp_path)
