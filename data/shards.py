"""Token shards on disk, in llm.c's format, plus the manifest that describes a shard directory.

A shard is a header of 256 little-endian int32 followed by the tokens:
    header[0] = magic, header[1] = version, header[2] = number of tokens
    magic 20240520, version 1 -> uint16 tokens (vocabularies up to 65536 ids)
    magic 20240801, version 7 -> uint32 tokens (llm.c's variant for larger vocabularies)
Using llm.c's layout means the same shards feed llm.c and modded-nanogpt unchanged.

Reading validates everything the header claims against the file, so a truncated copy or a
stray file fails loudly with its name instead of training on garbage.
"""
import json
from pathlib import Path

import numpy as np

from data import atomic_writer

HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4
# dtype name -> (magic, version, numpy dtype)
FORMATS = {
    "uint16": (20240520, 1, np.dtype("<u2")),
    "uint32": (20240801, 7, np.dtype("<u4")),
}
BY_MAGIC = {magic: (version, name) for name, (magic, version, _) in FORMATS.items()}
MANIFEST = "meta.json"


class ShardError(ValueError):
    """A shard, manifest or token-bytes file that is missing, corrupt or inconsistent."""


def dtype_for_vocab(n_vocab: int) -> str:
    """uint16 whenever every id (specials included) fits, else llm.c's uint32 variant."""
    return "uint16" if n_vocab <= 2**16 else "uint32"


def write_shard(path, tokens, dtype: str = "uint16") -> Path:
    """Write `tokens` to `path` atomically; refuse ids that do not fit `dtype` (no wraparound)."""
    path = Path(path)
    if dtype not in FORMATS:
        raise ValueError(f"dtype must be one of {list(FORMATS)}, got {dtype!r}")
    magic, version, np_dtype = FORMATS[dtype]
    tokens = np.asarray(tokens)
    if tokens.ndim != 1:
        raise ValueError(f"{path}: tokens must be 1-D, got shape {tokens.shape}")
    if tokens.size >= 2**31:
        raise ValueError(f"{path}: {tokens.size} tokens do not fit the int32 header count; "
                         f"write smaller shards")
    if tokens.dtype != np_dtype:
        if tokens.size and not np.issubdtype(tokens.dtype, np.integer):
            raise ValueError(f"{path}: tokens must be integers, got {tokens.dtype}")
        if tokens.size and (tokens.min() < 0 or tokens.max() > np.iinfo(np_dtype).max):
            raise ValueError(f"{path}: token ids span [{tokens.min()}, {tokens.max()}], which "
                             f"does not fit {dtype}; use uint32 for vocabularies over 65536")
        tokens = tokens.astype(np_dtype)
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[:3] = magic, version, tokens.size
    with atomic_writer(path) as f:
        f.write(header.tobytes())
        f.write(tokens.tobytes())
    return path


def read_header(path) -> tuple[str, int]:
    """(dtype name, token count) of a shard, after checking the header against the file size."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            raw = f.read(HEADER_BYTES)
    except OSError as e:
        raise ShardError(f"{path}: cannot read shard ({e.strerror})") from None
    if len(raw) < HEADER_BYTES:
        raise ShardError(f"{path}: truncated: {size} bytes, shorter than the {HEADER_BYTES}-byte "
                         f"header")
    magic, version, n = (int(v) for v in np.frombuffer(raw, dtype="<i4", count=3))
    if magic not in BY_MAGIC:
        raise ShardError(f"{path}: not a token shard (magic {magic}, expected "
                         f"{' or '.join(str(m) for m in BY_MAGIC)})")
    want_version, dtype = BY_MAGIC[magic]
    if version != want_version:
        raise ShardError(f"{path}: unsupported version {version} for magic {magic} "
                         f"(expected {want_version})")
    expected = HEADER_BYTES + n * FORMATS[dtype][2].itemsize
    if n < 0 or size != expected:
        what = "truncated" if size < expected else "has trailing bytes"
        raise ShardError(f"{path}: {what}: header says {n} {dtype} tokens ({expected} bytes) but "
                         f"the file has {size} bytes; re-run data.prepare")
    return dtype, n


def read_shard(path) -> np.ndarray:
    """The tokens of a shard as a read-only memory map (no copy into RAM)."""
    dtype, n = read_header(path)
    np_dtype = FORMATS[dtype][2]
    if n == 0:  # mmap cannot map zero bytes
        return np.empty(0, dtype=np_dtype)
    return np.memmap(path, dtype=np_dtype, mode="r", offset=HEADER_BYTES, shape=(n,))


def check_ids(path, tokens, vocab_size: int):
    """Refuse a shard holding an id >= vocab_size, naming the file.

    Such an id would otherwise surface far away: an IndexError in the embedding on CPU, a
    device-side assert on CUDA. One max over the memory map reads the shard once, at open.
    """
    if len(tokens) and (top := int(tokens.max())) >= vocab_size:
        raise ShardError(f"{path}: holds token id {top}, but meta.json says vocab_size "
                         f"{vocab_size} (ids 0..{vocab_size - 1}); the shards and meta.json "
                         f"disagree: re-run data.prepare")


def write_manifest(out_dir, meta: dict) -> Path:
    """meta.json, atomically: its presence is what marks a shard directory as complete."""
    path = Path(out_dir) / MANIFEST
    with atomic_writer(path, "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    return path


def read_manifest(out_dir) -> dict:
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        raise ShardError(f"{path}: missing; the directory was not prepared, or preparing was "
                         f"interrupted: run python -m data.prepare --out {out_dir}")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ShardError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != "vocablab-shards":
        raise ShardError(f"{path}: not a vocablab shard manifest")
    if meta.get("version") != 1:
        raise ShardError(f"{path}: unsupported manifest version {meta.get('version')!r}")
    return meta


def load_token_bytes(out_dir) -> np.ndarray:
    """int32 [vocab_size]: UTF-8 bytes each id stands for (0 for specials), for bits per byte.

    With a SentencePiece tokenizer, <s> holds -1: it pays for the dummy-prefix `▁` of the
    document it starts (see data/prepare.py), so every document sums to its UTF-8 length.
    """
    meta = read_manifest(out_dir)
    path = Path(out_dir) / meta["token_bytes"]
    try:
        table = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ShardError(f"{path}: cannot load token byte table ({e})") from None
    if table.shape != (meta["vocab_size"],) or table.dtype != np.int32:
        raise ShardError(f"{path}: expected int32 [{meta['vocab_size']}], got {table.dtype} "
                         f"{list(table.shape)}")
    return table


def save_token_bytes(path, table: np.ndarray) -> Path:
    with atomic_writer(path) as f:
        np.save(f, np.asarray(table, dtype=np.int32), allow_pickle=False)
    return Path(path)
