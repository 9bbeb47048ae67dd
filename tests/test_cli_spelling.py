"""Every command takes long options with hyphens or underscores (--max-steps, --max_steps)."""
import subprocess
import sys
from pathlib import Path

import pytest

import train_gpt
from studies import quirks, vocab_sweep
from tokenizer.cli import ArgumentParser, respell

ROOT = Path(__file__).resolve().parents[1]


def test_respell_by_hand():
    argv = ["--vocab_size=8", "--max-new-tokens", "3", "-x", "some_value", "--", "--keep_this"]
    assert respell(argv, "-") == ["--vocab-size=8", "--max-new-tokens", "3", "-x", "some_value", "--",
                                  "--keep_this"]
    assert respell(["--max-new-tokens=a-b", "--n_layer"], "_") == ["--max_new_tokens=a-b", "--n_layer"]


@pytest.mark.parametrize("sep", ["-", "_"])
def test_parser_accepts_both_spellings(sep):
    p = ArgumentParser(sep=sep)
    p.add_argument(f"--max{sep}new{sep}tokens", type=int)
    assert p.parse_args(["--max-new-tokens=3"]).max_new_tokens == 3
    assert p.parse_args(["--max_new_tokens", "4"]).max_new_tokens == 4


def test_train_gpt_and_the_studies_take_hyphens():
    args = vars(train_gpt.build_parser().parse_args(["--max-steps=3", "--n_layer=2"]))
    assert (args["max_steps"], args["n_layer"]) == ("3", "2")
    known, _ = vocab_sweep.build_parser().parse_known_args(["--vocab-sizes=256,512"])
    assert known.vocab_sizes == "256,512"


def test_quirks_and_sample_take_underscores(capsys):
    with pytest.raises(SystemExit) as e:  # --vocab_size parses; the unknown quirk is the error
        quirks.main(["--vocab_size=300", "--which", "z"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--which takes letters" in err and "unrecognized" not in err
    # sample.py: the option parses, so the failure is the missing checkpoint (1), not usage (2)
    proc = subprocess.run([sys.executable, str(ROOT / "sample.py"), "--ckpt", "/nonexistent/run",
                           "--max_new_tokens", "3", "--num_samples=1"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1 and "no checkpoint" in proc.stderr, proc.stderr
