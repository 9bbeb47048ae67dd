"""training/runtime.py and the GPU-only branches of the loop, checked on CPU by standing in for CUDA.

No GPU here: these tests replace the few torch.cuda queries the code makes and check the decisions
taken from them (autocast dtype by compute capability, the current device for cuda:N, a fresh
dynamo cache per compiled run).
"""
import pytest
import torch
from torch._dynamo.utils import counters

import training
from conftest import cfg_for, make_docs  # the `data` fixture lives there too
from data.prepare import prepare
from tokenizer import RegexTokenizer
from training.runtime import autocast_dtype, setup_distributed

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("capability, expect", [((7, 5), None), ((7, 0), None), ((8, 0), torch.bfloat16),
                                                ((9, 0), torch.bfloat16)])
def test_auto_dtype_is_bf16_only_where_the_gpu_has_it(monkeypatch, capability, expect):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert autocast_dtype("auto", "cuda") is expect  # T4 (7.5), V100 (7.0): float32, no emulated bf16
    assert autocast_dtype("float32", "cuda") is None and autocast_dtype("bfloat16", "cuda") is torch.bfloat16
    assert autocast_dtype("auto", "cpu") is None


@pytest.mark.parametrize("device, current", [("cuda:1", [1]), ("cuda", []), ("auto", [])])
def test_cuda_n_without_torchrun_becomes_the_current_device(monkeypatch, device, current):
    """torch's own set_device runs, only its CUDA call is replaced: it refuses a bare "cuda" (no index),
    which is what device=auto gives on every one-GPU machine."""
    chosen = []
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch._C, "_cuda_setDevice", chosen.append, raising=False)
    expect = "cuda" if device == "auto" else device
    assert setup_distributed(training.TrainConfig(device=device)) == (0, 1, expect)
    assert chosen == current
    with pytest.raises(training.ConfigError, match="cuda:0..cuda:1"):
        training.pick_device("cuda:2")


@pytest.mark.parametrize("name, peak", [("NVIDIA A100-PCIE-40GB", 312e12), ("NVIDIA A100 80GB PCIe", 312e12),
                                        ("NVIDIA H100 NVL", 835e12), ("NVIDIA GeForce RTX 4090", None)])
def test_peak_flops_names_match_whole_in_any_case(name, peak):
    assert training.device_peak_flops(name) == peak  # the A100 PCIe's own name writes PCIE


def test_each_compiled_run_starts_with_a_fresh_dynamo_cache(data, tmp_path, monkeypatch):  # noqa: F811
    resets = []
    monkeypatch.setattr(torch.compiler, "reset", lambda: resets.append(1))
    monkeypatch.setattr(torch, "compile", lambda model, **kw: model)  # inductor needs a C++ toolchain
    for i in range(2):
        training.train(cfg_for(data, tmp_path / str(i), compile=True, max_steps=1, eval_interval=1))
    assert len(resets) == 2
    training.train(cfg_for(data, tmp_path / "eager", max_steps=1, eval_interval=1))
    assert len(resets) == 2  # not for an uncompiled run


def test_train_leaves_the_tf32_flags_as_it_found_them(data, tmp_path):  # noqa: F811
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    assert before[0] != before[1]  # torch's defaults differ (False, True): a mix-up would show
    training.train(cfg_for(data, tmp_path, max_steps=1, eval_interval=1))
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before


def test_run_ends_with_its_mean_rate_and_no_mfu_on_cpu(data, tmp_path, capsys):  # noqa: F811
    result = training.train(cfg_for(data, tmp_path, max_steps=4, eval_interval=4))
    assert result["mfu"] is None  # MFU is against a GPU's bf16 peak; a CPU has none in the table
    last = [line for line in capsys.readouterr().out.splitlines() if line.startswith("run: ")]
    assert last == [f"run: {result['tokens_per_s']:,.0f} tok/s (mean of the timed steps)"]


def test_five_vocabularies_in_one_process_each_compile(data, tmp_path, monkeypatch):  # noqa: F811
    """A sweep trains models of five vocabulary sizes in one process. Dynamo keys its cache to
    GPT.forward's code, so without a fresh cache per run the later models hit the recompile limit
    and silently train uncompiled. Dynamo's own backend "eager" keeps this cheap: the tracing, the
    cache and its limit are dynamo's, whatever compiles the graphs afterwards."""
    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, **kw: real_compile(model, backend="eager"))
    monkeypatch.setattr(torch._dynamo.config, "recompile_limit", 2)  # reached sooner than 8, same rule
    big = RegexTokenizer()
    big.train(" ".join(make_docs(80, 5)), 340)
    graphs = []
    for v in range(280, 341, 15):
        tok = big.truncated(v)
        tok.register_special_tokens({"<|endoftext|>": v})
        tok.save(str(tmp_path / f"tok{v}"))
        prepare(tmp_path / f"tok{v}.model", [data / "docs.txt"], tmp_path / f"s{v}", val_fraction=0.1,
                txt_mode="lines", workers=0)
        counters.clear()
        training.train(cfg_for(data, tmp_path / f"r{v}", data_dir=str(tmp_path / f"s{v}"),
                               tokenizer=str(tmp_path / f"tok{v}.model"), compile=True, max_steps=2,
                               eval_interval=2, eval_batches=2))
        graphs.append(counters["stats"]["unique_graphs"])
    assert all(n > 0 for n in graphs), graphs  # every model compiled its own graphs
