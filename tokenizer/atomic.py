"""The project's one atomic writer: a reader never finds a half-written file under the final name.

Every file that matters (.model files, shards, manifests, downloads) is written to a temp file
beside its target, flushed to disk with fsync, and renamed over the target with os.replace. A
crash or a full disk leaves the old file or the new one, never a mix. The temp file is in the same
folder so the rename is atomic, not a copy. It lives in the tokenizer stage, the first one, so
every later stage can import it (data/ re-exports it as `data.atomic_writer`).
"""
import contextlib
import os
import secrets
from pathlib import Path


@contextlib.contextmanager
def atomic_writer(path, mode="wb"):
    """Open a temp file beside `path`; on success fsync and rename it over `path`, on error delete it.

    Text modes write UTF-8 with "\\n" line ends on every platform. The temp file is created with
    mode 0666 through os.open, so the process umask applies exactly as it does for open().
    """
    path = Path(path)
    text = {} if "b" in mode else {"encoding": "utf-8", "newline": "\n"}
    while True:
        tmp = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:  # another writer picked the same name: draw again
            continue
    try:
        with os.fdopen(fd, mode, **text) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text_atomic(path, text):
    """Write `text` (UTF-8) to `path` atomically."""
    with atomic_writer(path, "w") as f:
        f.write(text)
