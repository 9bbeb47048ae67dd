"""Stage 2: text in, token shards out.

- `data.sources`: documents (str) from local files or named corpora, and the val split rule.
- `data.shards`: the llm.c shard format, the manifest and the token byte table.
- `data.prepare`: the CLI that encodes sources into shards (`python -m data.prepare --help`).
- `data.loader`: the batch loader the trainer reads shards with.
"""
import contextlib
import os
import tempfile
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_writer(path, mode="wb"):
    """Open a temp file beside `path`; on success rename it over `path`, on error delete it.

    Why: a reader (or a re-run) must never find a half-written file under the final name.
    The temp file is in the same directory so os.replace is an atomic rename, not a copy.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
