"""train_gpt.py and sample.py on a tiny shard directory that data.prepare writes here.

Expectations are independent of the trainer: a bpb worked out in plain Python, an uninterrupted run
for resume, a single-process loop written out here for DDP.
"""
import json
import math
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import sample
import train_gpt
import training
from conftest import cfg_for, make_docs, read_log  # the `data` fixture lives there too
from data.loader import ShardLoader
from model.gpt import GPT, GPTConfig
from tokenizer import RegexTokenizer

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_torch_thread")



def train_losses(out):
    return {r["step"]: r["loss"] for r in read_log(out) if "loss" in r}


# ---- config ------------------------------------------------------------------------------------

def test_load_config_toml_and_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('n_layer = 3\nlr = 1\nrope = false\nout_dir = "out/x"\n')
    cfg = training.load_config(str(path), ["--lr=0.5", "--resume", "--n_embd=64"])
    assert (cfg.n_layer, cfg.lr, cfg.rope, cfg.resume, cfg.n_embd, cfg.out_dir) == (3, 0.5, False, True, 64, "out/x")
    path.write_text("n_layers = 3\n")
    with pytest.raises(training.ConfigError, match=r"c\.toml.*unknown key 'n_layers'"):
        training.load_config(str(path))
    path.write_text('n_layer = "four"\n')
    with pytest.raises(training.ConfigError, match="n_layer must be int"):
        training.load_config(str(path))
    with pytest.raises(training.ConfigError, match="unknown config key 'foo'"):
        training.load_config(None, ["--foo=1"])


def test_help_lists_every_key_with_default(capsys):
    with pytest.raises(SystemExit):
        train_gpt.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name, typ in training.field_types().items():
        assert f"--{name}" in text and f"({typ.__name__}, default {getattr(training.TrainConfig(), name)!r})" in text


def test_lr_schedule_by_hand():
    cfg = training.load_config(None, dict(lr=1.0, warmup_steps=10, max_steps=110, min_lr_frac=0.1))
    assert training.get_lr(0, cfg) == pytest.approx(0.1)
    assert training.get_lr(9, cfg) == pytest.approx(1.0)
    assert training.get_lr(60, cfg) == pytest.approx(0.1 + 0.9 * 0.5)  # cosine half way
    assert training.get_lr(110, cfg) == pytest.approx(0.1)
    cfg = training.load_config(None, dict(lr=1.0, warmup_steps=0, max_steps=100, min_lr_frac=0.0, schedule="linear"))
    assert training.get_lr(25, cfg) == pytest.approx(0.75)
    assert training.get_lr(100, cfg) == pytest.approx(0.0)


# ---- bits per byte -----------------------------------------------------------------------------

class BigramTable(torch.nn.Module):
    """logits[t] = table[x[t]]: a model whose every prediction is known in advance."""

    def __init__(self, table):
        super().__init__()
        self.table = torch.nn.Parameter(table)
        self.shapes = set()

    def forward(self, x):
        self.shapes.add(tuple(x.shape))
        return self.table[x], None


def test_bpb_matches_hand_computation():
    table = torch.tensor([[0.0, 1.0, 2.0, -1.0], [1.5, 0.0, 0.0, 0.0], [0.0, 0.0, 3.0, 0.5], [0.0, 2.0, 0.0, 0.0]])
    token_bytes = np.array([1, 2, 3, 0], dtype=np.int32)  # id 3 is a special: 0 bytes
    batches = [(torch.tensor([[0, 1, 2], [3, 3, 0]]), torch.tensor([[1, 2, 2], [0, 1, 3]])),
               (torch.tensor([[2, 0, 1]]), torch.tensor([[3, 0, -1]]))]  # -1: no target
    nats = nbytes = count = 0
    for x, y in batches:
        for xi, yi in zip(x.flatten().tolist(), y.flatten().tolist()):
            if yi < 0:
                continue
            row = table[xi].tolist()
            nats += math.log(sum(math.exp(v) for v in row)) - row[yi]
            nbytes += int(token_bytes[yi])
            count += 1
    model = BigramTable(table)
    loss, bpb = training.evaluate_bpb(model, batches, token_bytes)
    assert model.shapes == {(2, 3)}  # the short last batch was padded: one shape for a compiled model
    assert loss == pytest.approx(nats / count, rel=1e-6)
    assert bpb == pytest.approx(nats / math.log(2) / nbytes, rel=1e-6)
    _, first_only = training.evaluate_bpb(BigramTable(table), batches, token_bytes, max_batches=1)
    assert first_only != pytest.approx(bpb)


# ---- training ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    result = training.train(cfg_for(data, out, max_steps=30, eval_interval=10, lr=1e-2, end_sample_tokens=20))
    return out, result


def test_train_reports_logs_and_checkpoints(run, data):
    out, result = run
    assert result["steps"] == 30 and result["tokens"] == 30 * 4 * 32
    log = read_log(out)
    # tokens/s over the run is total tokens / total time of the steps after the first, so it lies
    # between the slowest and the fastest of those steps' logged rates.
    rates = [r["tokens_per_s"] for r in log if "loss" in r and r["step"] > 1]
    assert min(rates) * (1 - 1e-9) <= result["tokens_per_s"] <= max(rates) * (1 + 1e-9)
    # The reported bpb is what the evaluator gives for the saved weights on the whole val split.
    model, _ = training.load_model(out)
    _, bpb = training.evaluate_bpb(model, ShardLoader(data / "shards", "val", 4, 32),
                                   np.load(data / "shards" / "token_bytes.npy"))
    assert bpb == pytest.approx(result["val_bpb"], rel=1e-5)
    evals = [r for r in log if "val_bpb" in r]
    assert [r["step"] for r in evals] == [10, 20, 30]
    assert evals[-1]["val_bpb"] == pytest.approx(result["val_bpb"])
    assert evals[-1]["val_loss"] < evals[0]["val_loss"]  # it learns
    losses = train_losses(out)
    assert losses[30] < losses[1] - 1.0
    ck = torch.load(out / "ckpt.pt", weights_only=True)
    assert ck["step"] == 30 and ck["model_config"]["vocab_size"] == 301


def test_resume_continues_exactly(data, tmp_path):
    kw = dict(max_steps=6, dropout=0.1, eval_interval=2)  # dropout: the RNG state must come back too
    full = training.train(cfg_for(data, tmp_path / "full", **kw))
    part = training.train(cfg_for(data, tmp_path / "part", stop_at=3, **kw))
    assert part["steps"] == 3
    resumed = training.train(cfg_for(data, tmp_path / "part", resume=True, **kw))
    assert resumed["steps"] == 6
    assert train_losses(tmp_path / "part") == train_losses(tmp_path / "full")  # bit-for-bit on CPU
    assert resumed["val_bpb"] == full["val_bpb"]
    with pytest.raises(training.ConfigError, match="model settings differ"):
        training.train(cfg_for(data, tmp_path / "part", resume=True, n_embd=64))


def test_bfloat16_autocast_on_cpu_learns_like_float32(data, tmp_path):
    kw = dict(max_steps=30, eval_interval=30, lr=1e-2)
    fp32 = training.train(cfg_for(data, tmp_path / "fp32", **kw))
    bf16 = training.train(cfg_for(data, tmp_path / "bf16", dtype="bfloat16", **kw))
    losses = train_losses(tmp_path / "bf16")
    assert losses[30] < losses[1] - 1.0  # it learns
    assert bf16["val_bpb"] == pytest.approx(fp32["val_bpb"], rel=0.05)  # bf16 rounding, not another model
    assert bf16["val_bpb"] != fp32["val_bpb"]  # and autocast was really on


def test_empty_tokenizer_takes_the_path_from_meta_json(data, tmp_path):
    training.train(cfg_for(data, tmp_path, tokenizer="", max_steps=2, eval_interval=2))
    ck = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    meta = json.loads((data / "shards" / "meta.json").read_text())
    assert ck["tokenizer"] == os.path.abspath(meta["tokenizer"]["path"]) == str(data / "tok.model")


def test_total_batch_tokens_must_be_a_multiple_of_the_micro_batch(data, tmp_path):
    with pytest.raises(training.ConfigError, match=r"total_batch_tokens=200 is not a multiple .* = 128"):
        training.train(cfg_for(data, tmp_path, total_batch_tokens=200))
    assert not (tmp_path / "log.jsonl").exists()


def test_deterministic_for_a_seed(data, tmp_path):
    a = training.train(cfg_for(data, tmp_path / "a", max_steps=3))
    b = training.train(cfg_for(data, tmp_path / "b", max_steps=3))
    assert train_losses(tmp_path / "a") == train_losses(tmp_path / "b") and a["val_bpb"] == b["val_bpb"]


def test_refuses_shards_from_another_tokenizer(data, tmp_path):
    other = RegexTokenizer()
    other.train(" ".join(make_docs(30, 9)), 280)
    other.save(str(tmp_path / "other"))
    with pytest.raises(training.ConfigError, match="sha256"):
        training.train(cfg_for(data, tmp_path / "x", tokenizer=str(tmp_path / "other.model")))


def test_nonfinite_loss_found_at_a_log_step_keeps_the_last_checkpoint(data, tmp_path):
    """The host looks at the loss only on sync steps (log, eval, checkpoint); a NaN in between is
    caught at the next one, and the checkpoint written at an earlier sync step stays."""
    # lr 1e30: step 2's forward overflows; steps 2 and 3 are not sync steps, step 4 is.
    cfg = cfg_for(data, tmp_path, lr=1e30, warmup_steps=0, grad_clip=0.0, log_interval=4, max_steps=10,
                  eval_interval=100)
    with pytest.raises(training.NonFiniteLoss, match="at step 4.*no checkpoint was written"):
        training.train(cfg)
    log = read_log(tmp_path)
    assert [r["step"] for r in log] == [4] and "error" in log[0]


def test_nonfinite_loss_stops_and_keeps_last_good_checkpoint(data, tmp_path):
    # lr 1e30: the first update leaves huge but finite weights, the next forward overflows.
    cfg = cfg_for(data, tmp_path, lr=1e30, warmup_steps=0, grad_clip=0.0, ckpt_interval=1, max_steps=10)
    with pytest.raises(training.NonFiniteLoss, match="last good checkpoint"):
        training.train(cfg)
    log = read_log(tmp_path)
    finite_steps = [r["step"] for r in log if "loss" in r]
    ck = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert finite_steps and ck["step"] == finite_steps[-1]
    assert "error" in log[-1] and log[-1]["step"] == ck["step"] + 1


def adamw_by_hand(model, cfg):
    """AdamW with the groups written out by name: decay on the matrices (embedding, attention and
    MLP weights; the tied head is the embedding), none on the norm gains."""
    named = dict(model.named_parameters())
    decay = [p for n, p in named.items() if n.endswith(("wte.weight", "c_attn.weight", "c_proj.weight", "c_fc.weight"))]
    plain = [p for n, p in named.items() if n.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight"))]
    assert len(decay) + len(plain) == len(named)
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": plain, "weight_decay": 0.0}],
                             lr=cfg.lr, betas=(0.9, 0.95))


def test_optimizer_groups_and_betas(data, tmp_path):
    cfg = cfg_for(data, tmp_path, weight_decay=0.25, beta1=0.8, beta2=0.9)
    model = GPT(GPTConfig(vocab_size=301, block_size=32, n_layer=2, n_head=2, n_embd=32))
    opt = training.configure_optimizer(model, cfg, "cpu")
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] == 0.25 for p in g["params"]}
    named = dict(model.named_parameters())
    assert decayed == {id(p) for n, p in named.items() if "ln_" not in n}
    assert {id(p) for g in opt.param_groups if g["weight_decay"] == 0 for p in g["params"]} == \
        {id(p) for n, p in named.items() if "ln_" in n}
    assert all(g["betas"] == (0.8, 0.9) for g in opt.param_groups)


def test_grad_accumulation_matches_one_big_batch(data, tmp_path):
    """2 micro-batches of 4 == the same 8 windows in one batch (the loader draws per batch index)."""
    training.train(cfg_for(data, tmp_path / "acc", batch_size=4, total_batch_tokens=4 * 32 * 2, max_steps=2,
                            eval_interval=100))
    torch.manual_seed(7)
    model = GPT(GPTConfig(vocab_size=301, block_size=32, n_layer=2, n_head=2, n_embd=32))
    cfg = cfg_for(data, tmp_path / "ref", max_steps=2, eval_interval=100)
    opt = adamw_by_hand(model, cfg)
    loader = ShardLoader(data / "shards", "train", 4, 32, seed=7)
    losses = {}
    for step in range(2):
        for g in opt.param_groups:
            g["lr"] = training.get_lr(step, cfg)
        (x1, y1), (x2, y2) = loader.next_batch(), loader.next_batch()
        _, loss = model(torch.cat([x1, x2]), torch.cat([y1, y2]))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        losses[step + 1] = loss.item()
    got = train_losses(tmp_path / "acc")
    assert got == pytest.approx(losses, rel=1e-5)


def test_ddp_two_gloo_processes_match_one_process(data, tmp_path):
    """torchrun with 2 CPU processes: each logged loss equals one process on both ranks' windows."""
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(ROOT / "train_gpt.py"), f"--data_dir={data / 'shards'}", f"--tokenizer={data / 'tok.model'}",
           f"--out_dir={out}", "--n_layer=2", "--n_head=2", "--n_embd=32", "--block_size=32",
           "--batch_size=2", "--max_steps=3", "--warmup_steps=1", "--lr=3e-3", "--eval_interval=3",
           "--eval_batches=0", "--end_sample_tokens=0", "--seed=7", "--device=cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # torchrun sets this too; subprocesses get it explicitly
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]

    cfg = cfg_for(data, tmp_path / "ref", batch_size=2, max_steps=3, warmup_steps=1, eval_interval=3)
    torch.manual_seed(7)
    model = GPT(GPTConfig(vocab_size=301, block_size=32, n_layer=2, n_head=2, n_embd=32))
    opt = adamw_by_hand(model, cfg)
    ranks = [ShardLoader(data / "shards", "train", 2, 32, rank=r, world_size=2, seed=7) for r in range(2)]
    losses = {}
    for step in range(3):
        for g in opt.param_groups:
            g["lr"] = training.get_lr(step, cfg)
        batches = [ld.next_batch() for ld in ranks]
        _, loss = model(torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches]))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        losses[step + 1] = loss.item()
    assert train_losses(out) == pytest.approx(losses, rel=1e-5)
    val = ShardLoader(data / "shards", "val", 2, 32)  # one process reads the whole val split
    ref_loss, ref_bpb = training.evaluate_bpb(model, val, np.load(data / "shards" / "token_bytes.npy"))
    ev = [r for r in read_log(out) if "val_bpb" in r][-1]
    assert ev["val_loss"] == pytest.approx(ref_loss, rel=1e-5) and ev["val_bpb"] == pytest.approx(ref_bpb, rel=1e-5)
    assert len(torch.load(out / "ckpt.pt", weights_only=True)["loaders"]) == 2


def test_wandb_offline_writes_run_files(data, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    training.train(cfg_for(data, tmp_path / "out", max_steps=2, eval_interval=2, wandb_project="vocablab-test"))
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb"))


def test_ctrl_c_saves_checkpoint_and_exits(data, tmp_path):
    out = tmp_path / "int"
    args = [f"--data_dir={data / 'shards'}", f"--tokenizer={data / 'tok.model'}", "--n_layer=2", "--n_head=2",
            "--n_embd=32", "--block_size=32", "--batch_size=4", "--max_steps=100000", "--eval_interval=100000",
            "--device=cpu", "--threads=1", "--end_sample_tokens=0"]
    proc = subprocess.Popen([sys.executable, str(ROOT / "train_gpt.py"), f"--out_dir={out}", *args], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True)
    reader.start()
    deadline, seen = time.time() + 300, []
    while not any(line.startswith("step ") for line in seen):  # readiness: the first step is logged
        try:
            seen.append(lines.get(timeout=max(0.1, deadline - time.time())))
        except queue.Empty:
            proc.kill()
            pytest.fail(f"no training step logged within 300 s; stdout so far: {seen!r}")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=300) == 130, proc.stderr.read()[-2000:]
    reader.join(timeout=60)  # the pipe closes when the process exits
    stdout = "".join(seen + list(lines.queue))
    ck = torch.load(out / "ckpt.pt", weights_only=True)
    stopped = ck["step"]
    assert stopped == max(train_losses(out)) >= 1
    assert "--resume" in stdout
    # Resumed for two more steps, the run is the uninterrupted one: same losses, bit for bit.
    resume = subprocess.run([sys.executable, str(ROOT / "train_gpt.py"), f"--out_dir={out}", "--resume",
                             f"--stop_at={stopped + 2}", *args], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300)
    assert resume.returncode == 0, resume.stderr[-2000:]
    straight = subprocess.run([sys.executable, str(ROOT / "train_gpt.py"), f"--out_dir={tmp_path / 'straight'}",
                               f"--stop_at={stopped + 2}", *args], cwd=tmp_path, capture_output=True, text=True,
                              timeout=300)
    assert straight.returncode == 0, straight.stderr[-2000:]
    assert train_losses(out) == train_losses(tmp_path / "straight")


# ---- sample.py ---------------------------------------------------------------------------------

def test_sample_cli(run, capsys, tmp_path):
    out, _ = run
    assert sample.main(["--ckpt", str(out), "--prompt", "The king<|endoftext|>", "--num-samples", "2",
                        "--max-new-tokens", "10", "--temperature", "0"]) == 0
    text = capsys.readouterr().out
    assert text.count("--- sample") == 2 and text.count("The king<|endoftext|>") == 2
    assert sample.main(["--ckpt", str(tmp_path / "nope")]) == 1
    assert "nope" in capsys.readouterr().err
    bad = tmp_path / "bad.pt"
    bad.write_bytes((out / "ckpt.pt").read_bytes()[:1000])
    assert sample.main(["--ckpt", str(bad)]) == 1
    assert "bad.pt" in capsys.readouterr().err


def test_sample_greedy_equals_model_argmax(run):
    out, _ = run
    model, ck = training.load_model(out)
    idx = torch.tensor([[ck["eot_id"], 5, 6]])
    gen = model.generate(idx, 5, temperature=0)
    logits, _ = model(gen[:, :-1])
    steps = logits[0, 2:]
    chosen = steps.gather(-1, gen[0, 3:, None]).squeeze(-1)
    assert (steps.max(-1).values - chosen).max() <= 1e-4  # an argmax, up to float noise in near-ties
