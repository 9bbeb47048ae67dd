"""train_gpt.py and sample.py on bad input and unlucky runs: refuse with one clear line and the right
exit status (2 usage/config, 1 runtime), never a traceback, and never lose a file the user had.

The CLI cases run the scripts as subprocesses, as a user would; the rest call the library.
"""
import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import sample
import train_gpt
import training
from data.prepare import prepare
from conftest import cfg_for, make_docs, read_log  # the `data` fixture lives there too
from tokenizer import RegexTokenizer

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run_cli(script, *args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


def cli_args(data, out, *extra):
    return [f"--data_dir={data / 'shards'}", f"--tokenizer={data / 'tok.model'}", f"--out_dir={out}",
            "--n_layer=2", "--n_head=2", "--n_embd=32", "--block_size=32", "--batch_size=4", "--max_steps=3",
            "--warmup_steps=1", "--eval_interval=3", "--eval_batches=1", "--end_sample_tokens=0",
            "--device=cpu", "--threads=1", *extra]


def other_shards(tmp_path, vocab_size, seed):
    """Shards of the same text made with another tokenizer of vocab_size ids (eot included)."""
    tok = RegexTokenizer()
    tok.train(" ".join(make_docs(60, seed)), vocab_size - 1)
    tok.register_special_tokens({"<|endoftext|>": vocab_size - 1})
    tok.save(str(tmp_path / f"tok{seed}"))
    (tmp_path / "docs.txt").write_text("\n".join(make_docs(132, 0)) + "\n")
    prepare(tmp_path / f"tok{seed}.model", [tmp_path / "docs.txt"], tmp_path / f"shards{seed}", val_fraction=0.1,
            txt_mode="lines", workers=0)
    return tmp_path / f"shards{seed}", tmp_path / f"tok{seed}.model"


# ---- nothing lost ------------------------------------------------------------------------------

@pytest.mark.parametrize("existing", [("ckpt.pt", "log.jsonl"), ("log.jsonl",)])
def test_cli_refuses_an_existing_run_without_resume(data, tmp_path, existing):
    out = tmp_path / "run"
    out.mkdir()
    for name in existing:
        (out / name).write_text(f"the user's old {name}\n")
    before = snapshot(out)
    proc = run_cli("train_gpt.py", *cli_args(data, out), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "--resume" in proc.stderr and "--overwrite" in proc.stderr and str(out) in proc.stderr
    assert "Traceback" not in proc.stderr
    assert snapshot(out) == before


def test_resume_without_a_checkpoint_is_a_usage_error(data, tmp_path, capsys):
    assert train_gpt.main(cli_args(data, tmp_path / "none", "--resume")) == 2
    assert "--resume: no checkpoint at" in capsys.readouterr().err


def test_overwrite_replaces_the_old_run(data, tmp_path):
    out = tmp_path / "run"
    training.train(cfg_for(data, out, max_steps=2, eval_interval=2))
    result = training.train(cfg_for(data, out, max_steps=3, eval_interval=3, overwrite=True))
    assert result["steps"] == 3
    assert [r["step"] for r in read_log(out) if "loss" in r] == [1, 2, 3]  # the old log is gone, not appended to
    with pytest.raises(training.ConfigError, match="pick one"):
        cfg_for(data, out, resume=True, overwrite=True)


def test_failed_checkpoint_write_keeps_the_old_one(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    training.save_checkpoint(path, {"step": 1})
    before = path.read_bytes()

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(training.CheckpointError, match=r"could not write checkpoint .*ckpt\.pt.*No space left.*kept"):
        training.save_checkpoint(path, {"step": 2})
    assert path.read_bytes() == before
    assert not (tmp_path / "ckpt.pt.tmp").exists()


def test_stale_tmp_is_removed_even_when_no_checkpoint_is_written(data, tmp_path):
    (tmp_path / "ckpt.pt.tmp").write_bytes(b"left by a killed write")
    # lr 1e30: the second forward overflows, before any checkpoint (ckpt_interval=0: only at the end)
    with pytest.raises(training.NonFiniteLoss, match="no checkpoint was written"):
        training.train(cfg_for(data, tmp_path, lr=1e30, warmup_steps=0, grad_clip=0.0, log_interval=1))
    assert not (tmp_path / "ckpt.pt.tmp").exists() and not (tmp_path / "ckpt.pt").exists()


def test_cli_nonfinite_loss_is_exit_1_without_traceback(data, tmp_path):
    proc = run_cli("train_gpt.py", *cli_args(data, tmp_path / "nan", "--lr=1e30", "--warmup_steps=0",
                                             "--grad_clip=0", "--max_steps=10"), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "loss is" in proc.stderr and "lower lr" in proc.stderr and "Traceback" not in proc.stderr


# ---- resume must continue the same run ---------------------------------------------------------

def test_resume_refuses_another_tokenizer_of_the_same_size(data, tmp_path):
    out = tmp_path / "run"
    training.train(cfg_for(data, out, stop_at=2))
    shards, tok = other_shards(tmp_path, 301, seed=5)  # same size as the run's, other merges
    before = snapshot(out)
    with pytest.raises(training.ConfigError, match="tokenizer sha256"):
        training.train(cfg_for(data, out, resume=True, data_dir=str(shards), tokenizer=str(tok)))
    assert snapshot(out) == before


def test_resume_refuses_another_vocab_size_clearly(data, tmp_path):
    out = tmp_path / "run"
    training.train(cfg_for(data, out, stop_at=2))
    shards, tok = other_shards(tmp_path, 290, seed=6)
    with pytest.raises(training.ConfigError, match="vocab_size 301 but the shards .* have 290"):
        training.train(cfg_for(data, out, resume=True, data_dir=str(shards), tokenizer=str(tok)))


def test_resume_refuses_another_world_size(data, tmp_path):
    out = tmp_path / "run"
    training.train(cfg_for(data, out, stop_at=2))
    ck = torch.load(out / "ckpt.pt", weights_only=True)
    ck["world_size"] = 2
    torch.save(ck, out / "ckpt.pt")
    with pytest.raises(training.ConfigError, match="written by 2 processes, now 1"):
        training.train(cfg_for(data, out, resume=True))


def test_checkpoint_without_expected_keys_is_named(data, tmp_path):
    out = tmp_path / "run"
    training.train(cfg_for(data, out, stop_at=2))
    ck = torch.load(out / "ckpt.pt", weights_only=True)
    del ck["optimizer"], ck["model_config"]
    torch.save(ck, out / "ckpt.pt")
    with pytest.raises(training.CheckpointError, match=r"ckpt\.pt: not a train_gpt\.py checkpoint .*optimizer"):
        training.train(cfg_for(data, out, resume=True))
    with pytest.raises(training.CheckpointError, match=r"ckpt\.pt: .*missing model_config"):
        training.load_model(out)
    proc = run_cli("sample.py", "--ckpt", out, cwd=tmp_path)
    assert proc.returncode == 1 and "model_config" in proc.stderr and "Traceback" not in proc.stderr


def test_tokens_count_what_was_consumed_across_a_batch_change(data, tmp_path):
    out = tmp_path / "run"
    training.train(cfg_for(data, out, batch_size=4, max_steps=4, stop_at=2))
    result = training.train(cfg_for(data, out, batch_size=2, max_steps=4, resume=True))
    assert result["steps"] == 4 and result["tokens"] == 2 * 4 * 32 + 2 * 2 * 32
    assert torch.load(out / "ckpt.pt", weights_only=True)["tokens"] == result["tokens"]


def test_warns_when_warmup_covers_the_run_and_when_resume_moves_the_schedule(data, tmp_path, capsys):
    training.train(cfg_for(data, tmp_path / "a", max_steps=3, warmup_steps=3, eval_interval=3))
    assert "warning: max_steps=3 <= warmup_steps=3" in capsys.readouterr().err
    training.train(cfg_for(data, tmp_path / "b", max_steps=4, stop_at=2))
    capsys.readouterr()
    training.train(cfg_for(data, tmp_path / "b", max_steps=6, lr=1e-3, resume=True))
    err = capsys.readouterr().err
    assert "changed lr schedule" in err and "max_steps 4 -> 6" in err and "lr 0.003 -> 0.001" in err


# ---- bad values --------------------------------------------------------------------------------

@pytest.mark.parametrize("override, key", [
    ("--n_layer=0", "n_layer"), ("--n_head=-1", "n_head"), ("--n_embd=0", "n_embd"), ("--batch_size=0", "batch_size"),
    ("--block_size=0", "block_size"), ("--warmup_steps=-5", "warmup_steps"), ("--max_steps=0", "max_steps"),
    ("--lr=0", "lr"), ("--lr=-1e-3", "lr"), ("--dropout=1", "dropout"), ("--top_k=-3", "top_k"),
    ("--threads=-1", "threads"), ("--norm=batchnorm", "norm"), ("--n_embd=33", "divisible"),
])
def test_bad_values_are_config_errors(data, tmp_path, capsys, override, key):
    assert train_gpt.main(cli_args(data, tmp_path / "out", override)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and key in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_cli_bad_value_exit_2_in_a_subprocess(data, tmp_path):
    proc = run_cli("train_gpt.py", *cli_args(data, tmp_path / "out", "--n_layer=0"), cwd=tmp_path)
    assert proc.returncode == 2 and "n_layer must be >= 1" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, message", [
    (["--top-k", "-3"], "--top-k: must be >= 0"), (["--num-samples", "0"], "--num-samples: must be >= 1"),
    (["--max-new-tokens", "-1"], "--max-new-tokens: must be >= 0"), (["--temperature", "-0.5"], "--temperature"),
    (["--threads", "-2"], "--threads"),
])
def test_sample_bad_values_are_usage_errors(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_:
        sample.main(["--ckpt", str(tmp_path), *args])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_cli_sample_bad_top_k_subprocess(tmp_path):
    proc = run_cli("sample.py", "--ckpt", tmp_path, "--top-k", "-3", cwd=tmp_path)
    assert proc.returncode == 2 and "--top-k: must be >= 0, got -3" in proc.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cli_cuda_without_cuda_is_one_line(data, tmp_path):
    proc = run_cli("train_gpt.py", *cli_args(data, tmp_path / "out", "--device=cuda"), cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "--device=cuda" in proc.stderr and "--device=cpu" in proc.stderr


# ---- the first hour ----------------------------------------------------------------------------

def test_cli_missing_shards_hint_is_a_working_command(data, tmp_path):
    shards = tmp_path / "shards"
    args = cli_args(data, tmp_path / "out")
    args[0] = f"--data_dir={shards}"
    proc = run_cli("train_gpt.py", *args, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    hint = proc.stderr.split("make them with: ")[1].split("  (")[0].split()
    assert hint[:3] == ["python", "-m", "data.prepare"]
    # Follow it, with this test's own text as --source (the hint names the Shakespeare recipe).
    (tmp_path / "docs.txt").write_text("\n".join(make_docs(132, 0)) + "\n")
    hint[hint.index("--source") + 1] = str(tmp_path / "docs.txt")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    made = subprocess.run([sys.executable, *hint[1:], "--txt-mode", "lines", "--val-fraction", "0.1",
                           "--workers", "0"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    assert run_cli("train_gpt.py", *args, cwd=tmp_path).returncode == 0


def test_help_describes_every_key(capsys):
    with pytest.raises(SystemExit):
        train_gpt.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for f in training.TrainConfig.__dataclass_fields__.values():
        described = " ".join(f.metadata.get("help", "").split())
        metavar = type(f.default).__name__.upper()
        metavar = f"[{metavar}]" if metavar == "BOOL" else metavar
        assert len(described) > 10 and f"--{f.name} {metavar} {described}" in text


def test_cli_prints_where_the_checkpoint_went(data, tmp_path, capsys):
    assert train_gpt.main(cli_args(data, tmp_path / "out")) == 0
    out = capsys.readouterr().out
    assert f"checkpoint: {tmp_path / 'out' / 'ckpt.pt'}" in out and (tmp_path / "out" / "ckpt.pt").is_file()


def test_threads_zero_leaves_busy_cores_alone(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.2, 0.0, 0.0))
    assert training.pick_threads(0, "cpu") == 3  # one core busy
    monkeypatch.setattr(os, "getloadavg", lambda: (7.0, 0.0, 0.0))
    assert training.pick_threads(0, "cpu") == 1  # all busy: still one
    assert training.pick_threads(2, "cpu") == 2  # asked for
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert training.pick_threads(0, "cpu") == 4  # the user's (or torchrun's) setting stands


def test_train_restores_the_callers_thread_count(data, tmp_path):
    before = torch.get_num_threads()
    training.train(cfg_for(data, tmp_path, max_steps=1, eval_interval=1, threads=before + 1))
    assert torch.get_num_threads() == before


def test_a_pretrained_tokenizer_name_works_from_shards_to_samples(tmp_path, capsys):
    """--tokenizer=cl100k: data.prepare records the name, training checks it and the checkpoint
    keeps the name (not a made-up path), so sample.py finds the same tokenizer again."""
    (tmp_path / "docs.txt").write_text("\n".join(make_docs(60, 0)) + "\n")
    shards, out = tmp_path / "shards", tmp_path / "run"
    prepare("cl100k", [tmp_path / "docs.txt"], shards, val_fraction=0.1, txt_mode="lines", workers=0)
    args = [f"--data_dir={shards}", f"--out_dir={out}", "--n_layer=1", "--n_head=2", "--n_embd=16",
            "--block_size=16", "--batch_size=2", "--max_steps=2", "--warmup_steps=1", "--eval_interval=2",
            "--eval_batches=1", "--end_sample_tokens=4", "--device=cpu", "--threads=1"]
    assert train_gpt.main(args + ["--tokenizer=cl100k"]) == 0, capsys.readouterr().err
    ck = training.load_checkpoint(out / "ckpt.pt")
    assert ck["tokenizer"] == "cl100k" and ck["model_config"]["vocab_size"] == 100277  # cl100k's n_vocab
    assert sample.main(["--ckpt", str(out), "--prompt", "Hello", "--num-samples", "1", "--max-new-tokens", "3",
                        "--device", "cpu", "--threads", "1"]) == 0
    assert "--- sample 1 ---\nHello" in capsys.readouterr().out
    # Another tokenizer against these shards is refused before anything is written.
    other = RegexTokenizer()
    other.train(" ".join(make_docs(20, 1)), 300)
    other.save(str(tmp_path / "other"))
    assert train_gpt.main(args + [f"--tokenizer={tmp_path / 'other.model'}", f"--out_dir={tmp_path / 'r2'}"]) == 2
    assert "sha256" in capsys.readouterr().err and not (tmp_path / "r2").exists()
