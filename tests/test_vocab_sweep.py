"""Study 1 (studies/vocab_sweep.py): the sweep end to end at micro size, and the properties the
study's conclusions rest on: truncation == retraining, bytes accounting, equal budgets."""
import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest

from data.sources import doc_hash
from studies.common import StudyError, split_documents
from studies.vocab_sweep import (code_version, load_sweep_config, main, model_params, plan_run, plan_steps,
                                 run_sweep)
from tokenizer import GPT4_SPLIT_PATTERN, RegexTokenizer, load

VOCABS = [256, 300, 400]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def micro_docs(n=60, seed=0):
    """Pseudo-English documents from a fixed syllable lexicon: enough repeated structure for a few
    hundred merges, and numbers so the digit rule matters."""
    rng = random.Random(seed)
    syl = "ka lo mi ne ru ta shi po da ve el an or is th ing ed er".split()
    words = ["".join(rng.choice(syl) for _ in range(rng.randint(1, 3))) for _ in range(300)]
    docs = []
    for _ in range(n):
        sents = [" ".join(rng.choice(words) for _ in range(rng.randint(4, 10))).capitalize()
                 + f" {rng.randint(0, 2000)}." for _ in range(rng.randint(8, 16))]
        docs.append(" ".join(sents) + "\n")
    return docs


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """One micro sweep (3 vocabularies, a few steps each), shared by the tests below."""
    root = tmp_path_factory.mktemp("sweep")
    docs = micro_docs()
    corpus = root / "micro.jsonl"
    corpus.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    overrides = {"source": [str(corpus)], "vocab_sizes": VOCABS, "train_bytes": 1500,
                 "context": 32, "batch_size": 4, "n_layer": 1, "n_head": 2, "n_embd": 32,
                 "device": "cpu", "threads": 1, "out_dir": str(root / "out"), "seeds": [1, 2]}
    cfg = load_sweep_config(None, overrides)
    lines = []
    rows = run_sweep(cfg, log=lines.append, progress=False)
    return {"cfg": cfg, "rows": rows, "docs": docs, "out": root / "out", "log": lines,
            "overrides": overrides}


def shard_dirs(out):
    """{V: shard dir}, found through each directory's manifest (the sweep names them by hash)."""
    dirs = {}
    for meta_path in (out / "shards").glob("*/meta.json"):
        meta = json.loads(meta_path.read_text())
        dirs[meta["vocab_size"] - 1] = meta_path.parent  # n_vocab = V + <|endoftext|>
    return dirs


def test_micro_sweep_writes_results_and_plots(sweep):
    out = sweep["out"]
    with open(out / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["vocab_size"]) for r in rows] == VOCABS
    for r in rows:
        assert int(r["n_seeds"]) == 2
        assert int(r["nonemb_params"]) == int(rows[0]["nonemb_params"])  # the same model body
    # V=256 has no merges: every token is one byte of this ASCII text
    assert float(rows[0]["val_bytes_per_token"]) == 1.0
    assert float(rows[2]["val_bytes_per_token"]) > float(rows[1]["val_bytes_per_token"]) > 1
    md = (out / "results.md").read_text()
    for r in rows:
        assert f"| {r['vocab_size']} |" in md
        assert f"{float(r['val_bpb_mean']):.4f} ± {float(r['val_bpb_sd']):.4f}" in md
    import matplotlib.image
    for name in ("bpb_vs_vocab.png", "bytes_per_token_vs_vocab.png", "bpb_vs_flops.png"):
        img = matplotlib.image.imread(out / name)
        assert img.shape[0] > 200 and img.shape[1] > 300
    assert any("training ONCE at V=400" in line for line in sweep["log"])


def val_bpb_by_hand(run_dir, shard_dir, tok_path):
    """A checkpoint's val bpb by the rule, target by target: token i is predicted from the window that
    starts at 0 if i <= T, else at the largest multiple of T/2 with i - start in (T/2, T]; bytes per id
    from the tokenizer file; total loss over total bytes."""
    import math

    import torch
    import torch.nn.functional as F

    from data.shards import read_manifest, read_shard
    from training import load_model

    model, ck = load_model(run_dir)
    T, h = ck["model_config"]["block_size"], ck["model_config"]["block_size"] // 2
    meta = read_manifest(shard_dir)
    stream = np.concatenate([read_shard(shard_dir / s) for s in meta["splits"]["val"]["shards"]])
    tok = load(tok_path)
    nbytes = {i: len(b) for i, b in tok.vocab.items()}  # <|endoftext|> is not in vocab: 0 bytes
    by_start = {}
    for i in range(1, len(stream)):
        start = 0 if i <= T else h * math.ceil((i - T) / h)
        by_start.setdefault(start, []).append(i)
    nats = 0.0
    with torch.no_grad():
        for start, targets in by_start.items():
            x = torch.from_numpy(stream[start:max(targets)].astype(np.int64))[None]
            logp = F.log_softmax(model(x)[0][0].double(), -1)
            nats -= sum(logp[i - start - 1, int(stream[i])].item() for i in targets)
    return nats / math.log(2) / sum(nbytes.get(int(t), 0) for t in stream[1:])


def test_scoring_windows_score_every_target_once_by_hand():
    from studies.common import scoring_windows

    stream = np.arange(11)
    batches = list(scoring_windows(stream, 4, batch_size=3))
    # windows start every 2 tokens; each scores the targets the previous one did not
    assert [x.tolist() for x, _ in batches] == [[[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7]], [[6, 7, 8, 9]]]
    assert [y.tolist() for _, y in batches] == [[[1, 2, 3, 4], [-1, -1, 5, 6], [-1, -1, 7, 8]],
                                                [[-1, -1, 9, 10]]]
    short = list(scoring_windows(np.arange(8), 4))  # the last window is cut short by the text's end
    assert [x.tolist() for x, _ in short][-1] == [[4, 5, 6]]
    assert [y.tolist() for _, y in short] == [[[1, 2, 3, 4], [-1, -1, 5, 6]], [[-1, -1, 7]]]


def test_reported_bpb_is_the_checkpoints_val_bpb(sweep):
    """Recompute the V=300 models' val bpb from their checkpoints; mean and sd over the two seeds."""
    import statistics

    row = next(r for r in sweep["rows"] if r["vocab_size"] == 300)
    tok_path = next((sweep["out"] / "tokenizers").iterdir()) / "v300.model"
    bpbs = [val_bpb_by_hand(sweep["out"] / "runs" / f"v300_s{s}", shard_dirs(sweep["out"])[300], tok_path)
            for s in (1, 2)]
    assert row["val_bpb_mean"] == pytest.approx(statistics.mean(bpbs), abs=1e-3)
    assert row["val_bpb_sd"] == pytest.approx(abs(bpbs[0] - bpbs[1]) / 2 ** 0.5, abs=1e-3)
    assert bpbs[0] != bpbs[1]  # two seeds, two models


def test_rare_vocab_share_comes_from_the_replayed_training_tokens(sweep):
    """train_counts.npy counts every input id of every batch the first seed's model trained on."""
    from data.shards import read_manifest, read_shard
    from studies.vocab_sweep import RARE

    for row in sweep["rows"]:
        v, d = row["vocab_size"], shard_dirs(sweep["out"])[row["vocab_size"]]
        counts = np.load(sweep["out"] / "runs" / f"v{v}_s1" / "train_counts.npy")
        assert counts.sum() == row["steps"] * 4 * row["block_size"]  # steps x batch x block inputs
        meta = read_manifest(d)
        in_train = np.zeros(len(counts), dtype=bool)
        for s in meta["splits"]["train"]["shards"]:
            in_train[np.asarray(read_shard(d / s))] = True
        assert not counts[~in_train].any()  # only ids the training text contains
        assert row["rare_vocab_frac"] == pytest.approx((counts[:v] < RARE).mean(), abs=1e-4)
        assert row["unseen_ids"] == int((counts[:v] == 0).sum())
    # V=256 on ASCII text: at most 128 byte values can appear, so at least half are never seen
    assert sweep["rows"][0]["unseen_ids"] >= 128


def test_rerun_reuses_tokenizer_shards_and_runs(sweep):
    # a run scored by an older evaluation is scored again, not retrained
    run = sweep["out"] / "runs" / "v300_s2"
    saved = json.loads((run / "result.json").read_text())
    (run / "result.json").write_text(json.dumps({**saved, "eval": {}, "eval_version": 1}))
    ckpt_mtime = (run / "ckpt.pt").stat().st_mtime_ns
    lines = []
    rows = run_sweep(load_sweep_config(None, sweep["overrides"]), log=lines.append, progress=False)
    text = "\n".join(lines)
    assert "trained earlier" in text
    assert text.count("shards cached") == len(VOCABS)
    assert text.count("finished earlier") == 2 * len(VOCABS) - 1
    assert "V=300 seed=2 lr=0.001: scored" in text
    assert [r["val_bpb_mean"] for r in rows] == [r["val_bpb_mean"] for r in sweep["rows"]]
    assert json.loads((run / "result.json").read_text())["eval"] == saved["eval"]
    assert (run / "ckpt.pt").stat().st_mtime_ns == ckpt_mtime
    # the rerun's wall time is its own, and results.md says the runs came from the cache
    md = (sweep["out"] / "results.md").read_text()
    assert f"(this invocation; {2 * len(VOCABS)} of {2 * len(VOCABS)} runs reused from cache" in md


def test_a_new_code_version_retrains_the_run(sweep, monkeypatch):
    """Runs are keyed by the code version: under another one a run trains again (to the same
    numbers: training is deterministic), while a run saved under the current one is reused."""
    import studies.vocab_sweep as vs

    run = sweep["out"] / "runs" / "v400_s1"
    saved = json.loads((run / "result.json").read_text())
    assert saved["code_version"] == vs.code_version()
    (run / "result.json").write_text(json.dumps({**saved, "code_version": "stale"}))
    lines = []
    rows = run_sweep(load_sweep_config(None, sweep["overrides"]), log=lines.append, progress=False)
    retrained = [line for line in lines if ": trained;" in line]
    assert len(retrained) == 1 and "V=400 seed=1 " in retrained[0]
    assert [r["val_bpb_mean"] for r in rows] == [r["val_bpb_mean"] for r in sweep["rows"]]
    assert json.loads((run / "result.json").read_text())["code_version"] == vs.code_version()
    reused = 2 * len(VOCABS) - 1
    assert f"{reused} of {2 * len(VOCABS)} runs reused from cache" in (sweep["out"] / "results.md").read_text()


def test_split_is_three_disjoint_parts_and_order_free():
    docs = micro_docs(30)
    parts, threshold = split_documents(docs, 0.2, 0.3)
    shuffled, _ = split_documents(list(reversed(docs)), 0.2, 0.3)
    assert parts == shuffled
    names = ("tokenizer", "train", "val")
    assert sorted(d for n in names for d in parts[n]) == sorted(docs)
    assert [len(parts[n]) for n in names] == [9, 15, 6]
    # data.prepare's rule (doc_hash < val_fraction) with the threshold selects exactly val
    assert sorted(d for d in docs if doc_hash(d) < threshold) == sorted(parts["val"])
    with pytest.raises(StudyError, match="documents"):
        split_documents(docs[:2], 0.4, 0.4)


def test_truncation_equals_retraining(sweep):
    """The sweep's saved tokenizers (truncations of one V=400 run) match fresh training at each V."""
    parts, _ = split_documents(sweep["docs"], sweep["cfg"].val_fraction,
                               sweep["cfg"].tokenizer_fraction)
    tok_dir = next((sweep["out"] / "tokenizers").iterdir())
    for v in (300, 400):
        saved = load(tok_dir / f"v{v}.model")
        fresh = RegexTokenizer(GPT4_SPLIT_PATTERN).train(parts["tokenizer"], v)
        assert saved.merges == fresh.merges and saved.vocab == fresh.vocab
    big = RegexTokenizer().train(parts["tokenizer"], 400)
    assert big.truncated(333).merges == RegexTokenizer().train(parts["tokenizer"], 333).merges


def test_val_bytes_accounting(sweep):
    """Token bytes over the val shard == UTF-8 bytes of the val documents, document by document."""
    from data.shards import load_token_bytes, read_manifest, read_shard

    parts, _ = split_documents(sweep["docs"], sweep["cfg"].val_fraction,
                               sweep["cfg"].tokenizer_fraction)
    val_bytes = sum(len(d.encode()) for d in parts["val"])
    for v, d in shard_dirs(sweep["out"]).items():
        meta = read_manifest(d)
        table = load_token_bytes(d)
        tokens = np.concatenate([read_shard(d / s) for s in meta["splits"]["val"]["shards"]])
        eot = meta["eot_id"]
        assert int(table[tokens].sum()) == val_bytes  # separators have 0 bytes
        assert meta["splits"]["val"]["bytes"] == val_bytes
        tok = load(next((sweep["out"] / "tokenizers").iterdir()) / f"v{v}.model")
        starts = np.flatnonzero(tokens == eot).tolist() + [len(tokens)]
        decoded = [tok.decode_bytes(tokens[a + 1:b].tolist()) for a, b in zip(starts, starts[1:])]
        assert sorted(decoded) == sorted(doc.encode() for doc in parts["val"])


def stream_bytes_per_token(sweep, v):
    """Bytes per token of the training stream ([eot] + tokens of each document), recounted from scratch."""
    parts, _ = split_documents(sweep["docs"], sweep["cfg"].val_fraction, sweep["cfg"].tokenizer_fraction)
    tok = load(next((sweep["out"] / "tokenizers").iterdir()) / f"v{v}.model")
    return (sum(len(d.encode()) for d in parts["train"])
            / sum(len(tok.encode_ordinary(d)) + 1 for d in parts["train"]))


def test_context_in_bytes_gives_every_vocab_the_same_context_steps_and_bytes(sweep):
    """The default: ~32 bytes of context for every V (to half a token), the same steps, the same bytes."""
    cfg = sweep["cfg"]
    assert cfg.context_unit == "bytes" and cfg.context == 32
    for row in sweep["rows"]:
        bpt = stream_bytes_per_token(sweep, row["vocab_size"])
        assert abs(row["block_size"] * bpt - 32) <= bpt / 2
        assert row["steps"] == round(1500 / (4 * 32))  # train_bytes / (batch x context bytes)
        # the bytes of the batches the model actually drew: the budget, to within one step's bytes
        assert abs(row["train_bytes"] - cfg.train_bytes) <= 4 * 32 + row["steps"] * 4 * bpt / 2
    assert [r["block_size"] for r in sweep["rows"]][0] == 32  # V=256: one byte per token
    assert sweep["rows"][2]["block_size"] < sweep["rows"][1]["block_size"] < 32


def test_context_in_tokens_gives_every_vocab_the_same_bytes(sweep):
    """context_unit = tokens: planned training bytes, recounted from scratch, within half a step of the budget."""
    from data.shards import read_manifest

    cfg = load_sweep_config(None, {**sweep["overrides"], "context_unit": "tokens"})
    steps = []
    for v, d in sorted(shard_dirs(sweep["out"]).items()):
        plan = plan_run(cfg, read_manifest(d), v)
        bytes_per_step = 4 * 32 * stream_bytes_per_token(sweep, v)
        assert plan["block_size"] == 32
        assert abs(plan["steps"] * bytes_per_step - cfg.train_bytes) <= bytes_per_step / 2
        steps.append(plan["steps"])
    assert steps[0] > steps[1] > steps[2]  # more bytes per token: fewer steps


def test_every_run_is_scored_on_the_same_val_bytes(sweep):
    """Every V and seed: val_bytes is the UTF-8 size of the val documents."""
    parts, _ = split_documents(sweep["docs"], sweep["cfg"].val_fraction, sweep["cfg"].tokenizer_fraction)
    val_bytes = sum(len(d.encode()) for d in parts["val"])
    for v in VOCABS:
        for seed in (1, 2):
            saved = json.loads((sweep["out"] / "runs" / f"v{v}_s{seed}" / "result.json").read_text())
            assert saved["eval"]["val"]["bytes"] == val_bytes
    assert [r["val_bytes"] for r in sweep["rows"]] == [val_bytes] * len(VOCABS)
    assert f"the same {val_bytes:,} bytes of validation text" in (sweep["out"] / "results.md").read_text()


def test_flops_arithmetic_by_hand():
    assert plan_steps("flops", 12144 * 10 * 3, 10, flops_per_tok=12144) == 3
    assert plan_steps("bytes", 1000, 10, bytes_per_token=2.5) == 40
    assert plan_steps("bytes", 1, 10, bytes_per_token=2.5) == 1  # never zero steps
    # a one-layer model counted by hand: attention 8*24 + 8*8, MLP 8*32 + 32*8, three RMSNorms
    from training import load_config
    tcfg = load_config(None, {"n_layer": 1, "n_head": 2, "n_embd": 8})
    nonemb, emb, rows, fpt = model_params(tcfg, n_vocab=100, block_size=16)
    assert (nonemb, emb, rows) == (192 + 64 + 256 + 256 + 3 * 8, 128 * 8, 128)
    # 6 FLOPs per weight (Kaplan's 6N: every non-embedding weight, the norm gains included, plus the
    # lm_head at 128 x 8; the input lookup is free) and attention, 12 * layers * width * context
    assert fpt == 6 * (192 + 64 + 256 + 256 + 3 * 8 + 128 * 8) + 12 * 1 * 8 * 16
    untied = load_config(None, {"n_layer": 1, "n_head": 2, "n_embd": 8, "tie_embeddings": False})
    assert model_params(untied, n_vocab=100, block_size=16)[1:] == (2 * 128 * 8, 128, fpt)


def test_flops_budget_gives_every_vocab_the_same_flops(sweep):
    from data.shards import read_manifest

    cfg = load_sweep_config(None, {**sweep["overrides"], "budget": "flops", "train_flops": 3e8})
    for v, d in shard_dirs(sweep["out"]).items():
        plan = plan_run(cfg, read_manifest(d), v)
        per_step = plan["flops_per_token"] * plan["tokens_per_step"]
        assert abs(plan["train_flops"] - 3e8) <= per_step / 2


def test_context_in_bytes_scales_block_size(sweep):
    from data.shards import read_manifest

    cfg = load_sweep_config(None, {**sweep["overrides"], "context_unit": "bytes", "context": 96})
    for v, d in shard_dirs(sweep["out"]).items():
        meta = read_manifest(d)
        plan = plan_run(cfg, meta, v)
        bpt = meta["splits"]["train"]["bytes"] / meta["splits"]["train"]["tokens"]
        assert plan["block_size"] == max(8, round(96 / bpt))


def test_config_file_overrides_and_errors(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text('vocab_sizes = [512, 256]\nn_embd = 48\nbudget = "bytes"\n')
    cfg = load_sweep_config(path, ["--seeds=3,4", "--lr=0.01", "--train_bytes=2e6"])
    assert cfg.vocab_sizes == [256, 512] and cfg.seeds == [3, 4] and cfg.train_bytes == 2_000_000
    assert cfg.train == {"n_embd": 48, "lr": "0.01"}
    path.write_text("vocab_size = 512\n")
    with pytest.raises(StudyError, match=r"s\.toml: unknown key 'vocab_size'"):
        load_sweep_config(path)
    with pytest.raises(StudyError, match="set by the sweep"):
        load_sweep_config(None, {"max_steps": 5})
    with pytest.raises(StudyError, match="train_flops"):
        load_sweep_config(None, {"budget": "flops"})
    with pytest.raises(StudyError, match="n_layer must be int"):
        load_sweep_config(None, {"n_layer": "two"})
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "--vocab_sizes" in capsys.readouterr().out


def test_paired_bootstrap_on_hand_made_documents():
    from studies.vocab_sweep import paired_bootstrap

    ln2 = np.log(2)
    nbytes = np.array([100, 300, 50, 250])
    b = np.array([90.0, 200.0, 40.0, 180.0]) * ln2  # bits, as nats
    # a is worse by exactly 0.1 bit on every byte of every document: every resample says +0.1
    diff, lo, hi = paired_bootstrap(b + 0.1 * nbytes * ln2, b, nbytes)
    assert diff == pytest.approx(0.1) and lo == pytest.approx(0.1) and hi == pytest.approx(0.1)
    # better on two documents, worse on the other two by the same bits: 0 overall, interval around 0
    swing = np.array([20.0, -20.0, 20.0, -20.0]) * ln2
    diff, lo, hi = paired_bootstrap(b + swing, b, [100, 100, 100, 100])
    assert diff == pytest.approx(0.0, abs=1e-12) and lo < 0 < hi
    assert lo == pytest.approx(-hi, abs=0.03)  # symmetric documents: a symmetric interval
    # the interval of the documents' mean bits per byte difference is within its extremes
    assert -0.2 <= lo and hi <= 0.2


def test_per_document_scores_add_up_and_runs_compare_to_the_best(sweep):
    import math

    parts, _ = split_documents(sweep["docs"], sweep["cfg"].val_fraction, sweep["cfg"].tokenizer_fraction)
    for v in VOCABS:
        ev = json.loads((sweep["out"] / "runs" / f"v{v}_s1" / "result.json").read_text())["eval"]["val"]
        assert sorted(ev["doc_bytes"]) == sorted(len(d.encode()) for d in parts["val"])
        assert sum(ev["doc_nats"]) / (math.log(2) * sum(ev["doc_bytes"])) == pytest.approx(ev["bpb"])
    rows = {r["vocab_size"]: r for r in sweep["rows"]}
    best = min(rows.values(), key=lambda r: r["val_bpb_mean"])
    assert (best["bpb_minus_best"], best["ci95_lo"], best["ci95_hi"]) == (0, 0, 0)
    md = (sweep["out"] / "results.md").read_text()
    for r in rows.values():
        # the paired difference of seed-averaged nats is the difference of the seed-mean bpbs
        assert r["bpb_minus_best"] == pytest.approx(r["val_bpb_mean"] - best["val_bpb_mean"], abs=2e-4)
        if r is not best:
            assert r["ci95_lo"] <= r["bpb_minus_best"] <= r["ci95_hi"]
            assert f"{r['bpb_minus_best']:+.4f} [{r['ci95_lo']:+.4f}, {r['ci95_hi']:+.4f}]" in md
    assert f"over the {len(parts['val'])} val documents" in md


# ------------------------------------------------------------ both families, two sizes, lr tuning

TUNED_VOCABS = [320, 400]  # SentencePiece needs 3 + 256 + the kept characters: no V=256
LR_GRID = [3e-3, 3e-2]


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """A micro sweep over both tokenizer families, two model sizes and an lr grid, two runs at once."""
    root = tmp_path_factory.mktemp("tuned")
    docs = micro_docs(80, seed=1)
    corpus = root / "micro.jsonl"
    corpus.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    overrides = {"source": [str(corpus)], "vocab_sizes": TUNED_VOCABS, "train_bytes": 1500,
                 "context": 32, "batch_size": 4, "n_head": 2, "device": "cpu", "threads": 1,
                 "tokenizer_types": ["bytelevel", "sentencepiece"],
                 "model_sizes": "1x2x16,2x2x32", "lr_grid": LR_GRID, "tune_fraction": 0.1,
                 "train_workers": 2, "out_dir": str(root / "out"), "seeds": [1, 2]}
    cfg = load_sweep_config(None, overrides)
    lines = []
    rows = run_sweep(cfg, log=lines.append, progress=False)
    with open(root / "out" / "results.csv") as f:
        runs = list(csv.DictReader(f))
    return {"cfg": cfg, "rows": rows, "runs": runs, "docs": docs, "out": root / "out",
            "log": lines, "overrides": overrides}


def test_results_csv_has_one_row_per_run_with_the_columns(tuned):
    runs = tuned["runs"]
    for col in ("tokenizer_type", "model_size", "vocab_size", "seed", "lr", "split",
                "bytes_per_token", "context_bytes", "block_size", "steps", "train_bytes",
                "val_bytes", "val_bpb", "unigram_norm_loss", "non_emb_params", "emb_params",
                "flops_per_byte", "code_version", "tune_bpb"):
        assert col in runs[0], col
    # 2 families x 2 sizes x 2 V: the first seed at both lrs, the second seed at the chosen one
    assert len(runs) == 2 * 2 * 2 * 3
    assert len({(r["tokenizer_type"], r["model_size"], r["vocab_size"], r["seed"], r["lr"])
                for r in runs}) == len(runs)
    assert {r["code_version"] for r in runs} == {code_version()}
    sizes = {r["model_size"]: int(r["non_emb_params"]) for r in runs}
    assert len(sizes) == 2 and len({int(r["non_emb_params"]) for r in runs}) == 2
    small, big = sorted(sizes.values())
    assert big > 4 * small  # 1 layer x 16 wide vs 2 layers x 32 wide
    md = (tuned["out"] / "results.md").read_text()
    assert "context_unit = \"bytes\"" in md and "seeds [1, 2]" in md
    assert "grow with model size in this run" in md
    assert "reused from cache" not in md  # a fresh sweep: final runs that were tuning runs are not from cache


def test_val_bytes_identical_across_families_sizes_vocabularies_and_seeds(tuned):
    parts, _ = split_documents(tuned["docs"], tuned["cfg"].val_fraction,
                               tuned["cfg"].tokenizer_fraction, tuned["cfg"].tune_fraction)
    val_bytes = sum(len(d.encode()) for d in parts["val"])
    scored = [r for r in tuned["runs"] if "val" in r["split"]]
    assert len(scored) == 2 * 2 * 2 * 2  # every final run, both seeds
    assert {int(r["val_bytes"]) for r in scored} == {val_bytes}
    assert {r["tokenizer_type"] for r in scored} == {"bytelevel", "sentencepiece"}
    for r in scored:  # per document too: the dummy-prefix space of SentencePiece is not counted
        ev = json.loads((Path(r["run_dir"]) / "result.json").read_text())["eval"]
        assert sorted(ev["val"]["doc_bytes"]) == sorted(len(d.encode()) for d in parts["val"])


def test_context_in_bytes_holds_for_both_families(tuned):
    """Every (family, size, V): ~32 bytes of context (within a token) and the same steps."""
    from data.shards import read_manifest

    steps = set()
    for r in tuned["runs"]:
        saved = json.loads((Path(r["run_dir"]) / "result.json").read_text())
        meta = read_manifest(json.loads(saved["config"])["data_dir"])
        bpt = meta["splits"]["train"]["bytes"] / meta["splits"]["train"]["tokens"]
        assert abs(int(r["block_size"]) * bpt - 32) <= bpt
        steps.add(int(r["steps"]))
    assert steps == {round(1500 / (4 * 32))}


def test_lr_is_chosen_on_the_tuning_documents_never_on_val(tuned):

    cfg = tuned["cfg"]
    parts, _ = split_documents(tuned["docs"], cfg.val_fraction, cfg.tokenizer_fraction, cfg.tune_fraction)
    assert parts["tune"] and not set(parts["tune"]) & set(parts["val"])
    assert not set(parts["tune"]) & (set(parts["train"]) | set(parts["tokenizer"]))
    for key in {(r["tokenizer_type"], r["model_size"], r["vocab_size"]) for r in tuned["runs"]}:
        line = [r for r in tuned["runs"] if (r["tokenizer_type"], r["model_size"], r["vocab_size"]) == key]
        first = {float(r["lr"]): r for r in line if r["seed"] == "1"}
        assert sorted(first) == LR_GRID
        chosen = min(first, key=lambda lr: float(first[lr]["tune_bpb"]))  # from tuning scores alone
        for r in line:
            assert (r["lr_chosen"] == "True") == (float(r["lr"]) == chosen)
        # the run not chosen was never scored on val; the chosen one is the first seed's final run
        other = first[max(LR_GRID, key=lambda lr: lr != chosen)]
        assert other["split"] == "tune" and other["val_bpb"] == ""
        assert first[chosen]["split"] == "tune+val"
        assert {float(r["lr"]) for r in line if r["seed"] == "2"} == {chosen}
        summary = next(s for s in tuned["rows"]
                       if (s["tokenizer_type"], s["model_size"], str(s["vocab_size"])) == key)
        assert summary["lr"] == chosen
    # the tuning text the runs were scored on decodes to exactly the tuning documents
    tok_dirs = list((tuned["out"] / "tokenizers").iterdir())
    r = next(r for r in tuned["runs"] if r["tokenizer_type"] == "bytelevel")
    ev = json.loads((Path(r["run_dir"]) / "result.json").read_text())["eval"]["tune"]
    assert ev["bytes"] == sum(len(d.encode()) for d in parts["tune"])
    assert len(tok_dirs) == 2


def test_unigram_normalized_loss_by_hand():
    from studies.vocab_sweep import unigram_normalized_bpb

    # targets 0, 0, 1, 2: unigram p = 1/2, 1/2, 1/4, 1/4, so sum ln p = -2 ln 2 - 4 ln 2 = -6 ln 2;
    # losses sum to 4.5 nats over 8 bytes: (4.5 - 6 ln 2) / (8 ln 2) = 4.5 / (8 ln 2) - 0.75 bits/byte
    got = unigram_normalized_bpb([1.0, 1.0, 2.0, 0.5], [0, 0, 1, 2], 8)
    assert got == pytest.approx(4.5 / (8 * np.log(2)) - 0.75)
    assert got == pytest.approx(0.061516, abs=1e-6)  # 4.5 / 5.545177 = 0.811516
    # a model that predicts exactly the unigram distribution scores 0; one that is sure and right, below 0
    assert unigram_normalized_bpb([np.log(2), np.log(2), np.log(4), np.log(4)], [0, 0, 1, 2], 8) \
        == pytest.approx(0.0, abs=1e-12)
    assert unigram_normalized_bpb([0, 0, 0, 0], [0, 0, 1, 2], 8) == pytest.approx(-0.75)


def test_code_version_follows_code_not_docs_or_tests(tmp_path):
    for rel in ("studies/a.py", "training/b.py", "train_gpt.py", "tests/test_x.py", "README.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x = 1\n")
    v0 = code_version(tmp_path)
    (tmp_path / "README.md").write_text("edited\n")
    (tmp_path / "tests" / "test_x.py").write_text("x = 2\n")
    assert code_version(tmp_path) == v0
    (tmp_path / "studies" / "a.py").write_text("x = 2\n")
    v1 = code_version(tmp_path)
    assert v1 != v0
    (tmp_path / "train_gpt.py").write_text("x = 2\n")
    assert code_version(tmp_path) not in (v0, v1)


def test_runs_side_by_side_give_the_same_numbers_as_one_at_a_time(tuned, tmp_path):
    """train_workers=1 reproduces the two-worker sweep's scores exactly (one family and size)."""
    overrides = {**tuned["overrides"], "tokenizer_types": ["sentencepiece"], "model_sizes": "1x2x16",
                 "vocab_sizes": [320], "train_workers": 1, "out_dir": str(tmp_path / "one")}
    rows = run_sweep(load_sweep_config(None, overrides), log=lambda *a: None, progress=False)
    with open(tmp_path / "one" / "results.csv") as f:
        alone = {(r["seed"], r["lr"]): r for r in csv.DictReader(f)}
    both = {(r["seed"], r["lr"]): r for r in tuned["runs"] if r["tokenizer_type"] == "sentencepiece"
            and r["vocab_size"] == "320" and r["model_size"] == rows[0]["model_size"]}
    assert alone.keys() == both.keys()
    for k in alone:
        assert (alone[k]["val_bpb"], alone[k]["tune_bpb"]) == (both[k]["val_bpb"], both[k]["tune_bpb"])


def test_model_sizes_and_lr_grid_config_errors():
    with pytest.raises(StudyError, match="LAYERSxHEADSxWIDTH"):
        load_sweep_config(None, {"model_sizes": "2x64"})
    with pytest.raises(StudyError, match="n_layer, n_head"):
        load_sweep_config(None, {"model_sizes": [{"n_layer": 2, "n_embd": 64}]})
    with pytest.raises(StudyError, match="model_sizes"):
        load_sweep_config(None, {"model_sizes": "2x3x64"})  # 64 is not a multiple of 3 heads
    with pytest.raises(StudyError, match="lr_grid"):
        load_sweep_config(None, {"lr_grid": [1e-3, 1e-3]})
    with pytest.raises(StudyError, match="tokenizer_types"):
        load_sweep_config(None, {"tokenizer_types": ["wordpiece"]})
    cfg = load_sweep_config(None, {"model_sizes": [{"n_layer": 2, "n_head": 4, "n_embd": 64}],
                                   "lr_grid": "1e-3,3e-3"})
    assert cfg.model_sizes == [{"n_layer": 2, "n_head": 4, "n_embd": 64}] and cfg.lr_grid == [1e-3, 3e-3]


def test_a_bad_key_or_config_file_is_a_usage_error(tmp_path, capsys):
    """Exit status 2 with one line naming the problem, as argparse does for an unknown option;
    nothing is created."""
    from studies.vocab_sweep import main

    assert main([f"--out_dir={tmp_path / 'o'}", "--bogus=1"]) == 2
    assert "unknown key 'bogus'" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.toml")]) == 2
    assert "missing.toml" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
