"""Shared fixtures. ../shared is developer-only material: tests that need it skip without it."""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not present (developer-only fixtures)")
    return SHARED


@pytest.fixture(scope="session")
def tiktoken_cache(shared_dir) -> Path:
    """Point tiktoken at the offline cache so get_encoding('gpt2') works with no network."""
    cache = shared_dir / "tiktoken_cache"
    if not cache.is_dir():
        pytest.skip("../shared/tiktoken_cache is not present")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
    return cache


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models gain nothing from threads, and on a shared box spinning OpenMP threads cost 10x."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
