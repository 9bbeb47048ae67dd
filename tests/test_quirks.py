"""studies/quirks.py: each measurement on tiny inputs, checked against counts made by hand."""
import numpy as np
import pytest
import regex
import torch

from studies.quirks import (DIGIT_RULES, digit_pattern, embedding_norm_stats, main, number_stats,
                            quirk_a, quirk_d, tokens_per_char, whitespace_stats)
from tokenizer import RegexTokenizer


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


def test_tokens_per_char_by_hand():
    out = tokens_per_char(bytes_only(), {"fr": "héllo", "ja": "日本"})
    assert out["fr"] == (5, 6, 6, 6 / 5)  # é is two UTF-8 bytes
    assert out["ja"] == (2, 6, 6, 3.0)


def test_tokens_per_char_cl100k_matches_tiktoken(tiktoken_cache):
    import tiktoken

    from tokenizer import GPT4Tokenizer

    sentences = {"en": "The weather is nice today.", "ru": "Сегодня хорошая погода."}
    enc = tiktoken.get_encoding("cl100k_base")
    out = tokens_per_char(GPT4Tokenizer(), sentences)
    for lang, s in sentences.items():
        assert out[lang][2] == len(enc.encode_ordinary(s))


def test_embedding_norm_stats_by_hand():
    weight = np.array([[3, 4], [0, 0], [6, 8], [1, 0], [9, 9]], dtype=np.float32)  # last: padding
    stats = embedding_norm_stats(weight, counts=[0, 0, 12, 5], vocab_size=4)
    assert stats == {"never seen": (2, 2.5), "seen 1-9x": (1, 1.0), "seen >=10x": (1, 10.0)}


def test_quirk_d_reads_a_sweep_directory(tmp_path):
    run = tmp_path / "runs" / "v4_s1"
    run.mkdir(parents=True)
    (tmp_path / "results.csv").write_text("vocab_size\n4\n")
    weight = torch.tensor([[3.0, 4.0], [0.0, 0.0], [6.0, 8.0], [1.0, 0.0]])
    torch.save({"model": {"transformer.wte.weight": weight}}, run / "ckpt.pt")
    np.save(run / "train_counts.npy", np.array([0, 3, 50, 0, 7]))  # id 4: <|endoftext|>
    header, rows = quirk_d(tmp_path, tmp_path / "q", log=lambda *a: None)
    by_group = {r[1]: r for r in rows}
    assert by_group["never seen"][2:4] == [2, "3.000"]   # ids 0 and 3: norms 5 and 1
    assert by_group["seen 1-9x"][2:4] == [1, "0.000"]
    assert by_group["seen >=10x"][2:4] == [1, "10.000"]


def test_quirk_a_accounts_for_every_byte():
    header, rows = quirk_a(300, 60_000, log=lambda *a: None)
    assert [r[0] for r in rows] == ["GPT-2", "GPT-4"]
    from studies.quirks import code_split
    held_bytes = sum(len(d.encode()) for d in code_split(60_000)[1])
    for r in rows:
        tokens = int(r[1].replace(",", ""))
        assert abs(tokens * float(r[2]) - held_bytes) <= tokens * 0.0005 + 1


def test_cli_rejects_unknown_quirk(capsys):
    with pytest.raises(SystemExit):
        main(["--which", "a,z"])
    assert "among a,b,c,d" in capsys.readouterr().err
