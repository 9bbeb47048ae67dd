"""The benchmark corpus: a reproducible ~20 MB slice of the Python standard library's source.

Every machine that runs vocablab has it, so benchmarks need no download. The slice is the
sorted .py files under sysconfig's stdlib path (site-packages excluded), one document per
file, taken in order until the byte budget is reached. The test suite stays in: without it the
library proper is only ~12 MB, short of the ~20 MB the targets are stated for. Size and
sha256 are printed: figures from two machines compare only when they measured the same bytes.

    python bench/corpus.py            # prints files, bytes, sha256
"""
import hashlib
import os
import sys
import sysconfig
from pathlib import Path

DEFAULT_BYTES = 20_000_000
_SKIP_DIRS = {"site-packages", "dist-packages", "__pycache__"}


def stdlib_files():
    root = Path(sysconfig.get_paths()["stdlib"])
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS]
        files += [Path(dirpath) / f for f in filenames if f.endswith(".py")]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def stdlib_corpus(max_bytes=DEFAULT_BYTES):
    """Return (documents, info) where info has files, bytes and sha256 of the concatenation."""
    docs, total, digest = [], 0, hashlib.sha256()
    for path in stdlib_files():
        if total >= max_bytes:
            break
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue  # a few test-data files are deliberately not UTF-8: skip, deterministically
        docs.append(text)
        total += len(raw)
        digest.update(raw)
    info = {"files": len(docs), "bytes": total, "sha256": digest.hexdigest()[:16],
            "python": sys.version.split()[0]}
    return docs, info


def describe(info):
    return (f"stdlib slice: {info['files']} files, {info['bytes'] / 1e6:.1f} MB, "
            f"sha256 {info['sha256']} (Python {info['python']})")


if __name__ == "__main__":
    print(describe(stdlib_corpus()[1]))
