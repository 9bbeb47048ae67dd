"""Study: compressing a prompt into k learned vectors ("gist tokens", Mu, Li and Goodman, 2023).

    python -m studies.gist configs/gist-tiny.toml [--key=value ...]

The base model stays frozen. For one long prompt P we learn k vectors G (fed through
`inputs_embeds`, where token embeddings would go) by distillation: on continuations x, make the
model's next-token distributions given [bos, G, x] match those given [bos, P, x], minimising
KL(teacher || student) averaged over the positions of x. If that works, the k vectors do P's job
and every later token attends to k positions instead of |P|: a KV cache |P| - k positions shorter.

Conditions, on the same held-out continuations (never used to train G):
    full  = [bos, P, x]   (the teacher; the best we can hope for)
    none  = [bos, x]      (no prompt; what we would get by dropping it)
    gist  = [bos, G, x]   for each k in ks
Recovery R = (L_none - L_gist) / (L_none - L_full): 0 = no better than dropping the prompt,
1 = as good as the prompt (L = mean cross-entropy per token of x, nats). Compression rho = |P| / k.
R is computed per prompt (its own gap) and reported as mean +- sd, min and max over prompts, next
to R of the pooled losses; a prompt whose gap is within twice its standard error gets no R.

Break-even. Training G costs FLOPs once; every later use of G instead of P saves the work of the
|P| - k prompt positions it no longer processes (see `break_even`). uses = cost / saving per use.

Tasks where the prompt matters:
- synthetic: the prompt states key->value facts ("cQ aX ..."), the continuation restates them in a
  new order, so values are only predictable from the prompt. A small base model is trained on this
  text first (so that it can read the prompt at all). The task's best possible losses with and
  without the prompt are known (`synthetic_floors`); results.md says what share of the gap between
  them the base closes, and warns when it is under half: R of a teacher that barely reads its
  prompt says little about gists.
- real: the opening of a play (title and cast list) as P, later passages of the same play as x; the
  cast list tells the model which names to expect. Uses a Shakespeare base model (shared with
  studies.new_tokens when the settings match). Off with --real=false.
"""
from __future__ import annotations

import json
import math
import random
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from data.sources import iter_documents
from studies.base_model import base_spec, ensure_base, load_base
from studies.common import (StudyError, atomic_write_text, kl_divergence, mean_sd, pyplot, save_figure,
                            study_main)
from tokenizer import EOT
from training import pick_device, pick_threads


@dataclass
class GistConfig:
    out_dir: str = "studies/out/gist"
    seed: int = 1337
    device: str = "cpu"
    threads: int = 0                 # torch CPU threads; 0 = the cores not already busy (training.pick_threads)
    ks: list = field(default_factory=lambda: [1, 2, 4, 8])
    n_prompts: int = 8               # prompts per task; each gets its own G for every k, R's spread is over them
    train_conts: int = 64            # continuations per prompt that train G
    eval_conts: int = 32             # held-out continuations per prompt that score it
    gist_steps: int = 200
    gist_batch: int = 16
    gist_lr: float = 0.01
    # synthetic key=value task and its base model
    # 8/8/4 and 5000 steps at lr 0.01: the base closes 77% of the floors' gap (16/26/6 and 1500
    # steps at 0.005 closed 5%: the lookup had not formed yet)
    syn_keys: int = 8                # keys a..h
    syn_values: int = 8              # values A..H
    syn_facts: int = 4               # facts per prompt
    syn_docs: int = 50000            # training documents for the base model
    syn_steps: int = 5000
    syn_n_layer: int = 2
    syn_n_head: int = 4
    syn_n_embd: int = 64
    syn_block_size: int = 64
    syn_batch_size: int = 32
    syn_lr: float = 1e-2
    # real task: opening of a play -> later passages
    real: bool = True
    real_base_ckpt: str = ""         # a train_gpt checkpoint; "" = train/reuse one in real_base_dir
    real_base_dir: str = ""          # "" = OUT/real_base; point at studies.new_tokens' OUT/base to share it
    real_source: str = "shakespeare"
    real_vocab_size: int = 512
    real_steps: int = 600
    real_n_layer: int = 4
    real_n_head: int = 4
    real_n_embd: int = 128
    real_block_size: int = 128
    real_prompt_tokens: int = 64
    real_cont_tokens: int = 32


# ------------------------------------------------------------------------------------------------
# synthetic task


def synthetic_example(rng: random.Random, cfg: GistConfig, facts=None) -> tuple[str, str]:
    """((prompt, continuation), facts): 'cQ aX fB\\n' then the same facts in a fresh order.

    The continuation ends without a newline because data.prepare strips a document's trailing
    whitespace: the base model only ever saw <|endoftext|> there.
    Key and value are adjacent tokens so that looking a value up is the classic induction-head
    pattern (find the earlier copy of the current token, output what followed it), which small
    models learn early in training.
    """
    if cfg.syn_keys > 26 or cfg.syn_values > 26 or cfg.syn_facts > cfg.syn_keys:
        raise StudyError("syn_keys and syn_values must be <= 26 and syn_facts <= syn_keys")
    if facts is None:
        keys = rng.sample("abcdefghijklmnopqrstuvwxyz"[:cfg.syn_keys], cfg.syn_facts)
        facts = [(k, rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ"[:cfg.syn_values])) for k in keys]
    order = rng.sample(facts, len(facts))
    return (" ".join(f"{k}{v}" for k, v in facts) + "\n",
            " ".join(f"{k}{v}" for k, v in order)), facts


def synthetic_floors(cfg: GistConfig) -> tuple[float, float]:
    """(best loss with the prompt, best loss without), nats per continuation token, byte tokens.

    A continuation of n facts is 3n - 1 tokens. Given the prompt only the order is unknown: the
    j-th key is one of the n - j + 1 keys left (values and spaces follow), so ln(n!) in all. Without
    it each key is one of the syn_keys - j + 1 unused keys and each value one of syn_values.
    """
    n = cfg.syn_facts
    full = math.lgamma(n + 1)
    none = sum(math.log(cfg.syn_keys - j) for j in range(n)) + n * math.log(cfg.syn_values)
    return full / (3 * n - 1), none / (3 * n - 1)


def write_synthetic_corpus(cfg: GistConfig, path: Path) -> None:
    rng = random.Random(cfg.seed)
    docs = []
    for _ in range(cfg.syn_docs):
        (p, x), _ = synthetic_example(rng, cfg)
        docs.append(p + x)
    atomic_write_text(path, EOT.join(docs))


def synthetic_prompts(cfg: GistConfig, tok) -> list[dict]:
    """n_prompts fresh prompts, each with disjoint train and held-out continuations (token ids)."""
    rng = random.Random(cfg.seed + 1)
    out = []
    for _ in range(cfg.n_prompts):
        (p, _), facts = synthetic_example(rng, cfg)
        conts = set()
        want = cfg.train_conts + cfg.eval_conts
        for _ in range(want * 50):
            if len(conts) >= want:
                break
            conts.add(synthetic_example(rng, cfg, facts)[0][1])
        conts = sorted(conts)
        rng.shuffle(conts)
        if len(conts) < 2:
            raise StudyError("synthetic task too small for distinct continuations; raise syn_facts")
        n_eval = min(cfg.eval_conts, len(conts) // 2)
        out.append({"prompt": tok.encode_ordinary(p), "prompt_text": p,
                    "train": [tok.encode_ordinary(c) for c in conts[n_eval:]],
                    "eval": [tok.encode_ordinary(c) for c in conts[:n_eval]]})
    return out


def synthetic_base(cfg: GistConfig, out: Path, device: str, quiet: bool) -> Path:
    corpus = out / "synthetic" / "facts.txt"
    spec = base_spec(cfg, "syn_", source=str(corpus), vocab_size=256, txt_mode="separator", val_fraction=0.01)
    # vocab 256 = bytes only: every fact is exactly 3 tokens ("cQ "), so the task is the same
    # for any tokenizer and the model has to look the value up, not memorise a merged token.
    stamp = out / "synthetic" / "corpus.json"
    want = {k: getattr(cfg, k) for k in ("seed", "syn_keys", "syn_values", "syn_facts", "syn_docs")}
    if not (corpus.is_file() and stamp.is_file() and json.loads(stamp.read_text()) == want):
        write_synthetic_corpus(cfg, corpus)
        atomic_write_text(stamp, json.dumps(want))
        (out / "synthetic" / "base" / "base.json").unlink(missing_ok=True)  # new corpus: retrain
    return ensure_base(spec, out / "synthetic" / "base", device, quiet=quiet)


# ------------------------------------------------------------------------------------------------
# real task


def real_prompts(cfg: GistConfig, tok, source_docs: list[str]) -> list[dict]:
    """Opening of each of the n_prompts longest documents as P; passages later in it as continuations."""
    rng = random.Random(cfg.seed + 2)
    L, m = cfg.real_prompt_tokens, cfg.real_cont_tokens
    out = []
    for doc in sorted(source_docs, key=len, reverse=True)[:cfg.n_prompts]:
        ids = tok.encode_ordinary(doc)
        rest = ids[L:]
        n = (len(rest)) // m
        want = cfg.train_conts + cfg.eval_conts
        if n < 2:
            continue
        picks = rng.sample(range(n), min(n, want))
        conts = [rest[i * m:(i + 1) * m] for i in picks]
        n_eval = min(cfg.eval_conts, len(conts) // 2)
        out.append({"prompt": ids[:L], "prompt_text": tok.decode(ids[:L]),
                    "train": conts[n_eval:], "eval": conts[:n_eval]})
    if not out:
        raise StudyError(f"real_source {cfg.real_source!r}: no document long enough for a "
                               f"{L}-token prompt and {m}-token continuations")
    return out


# ------------------------------------------------------------------------------------------------
# conditions and distillation


def cont_logits(model, bos: int, x: torch.Tensor, prompt: list[int] | None = None,
                gist: torch.Tensor | None = None) -> torch.Tensor:
    """Logits [B, m, V] predicting each token of x [B, m] after [bos, prompt] or [bos, gist] or [bos]."""
    B, m = x.shape
    head = torch.full((B, 1), bos, dtype=torch.long, device=x.device)
    if gist is not None:
        emb = torch.cat([model.transformer.wte(head), gist.unsqueeze(0).expand(B, -1, -1)], dim=1)
        logits, _ = model(x, inputs_embeds=emb)
    else:
        if prompt:
            head = torch.cat([head, torch.tensor(prompt, device=x.device).expand(B, -1)], dim=1)
        logits, _ = model(torch.cat([head, x], dim=1))
    # The token at context position j predicts position j+1: x's first token is predicted by
    # the last position before it.
    start = logits.size(1) - m - 1
    return logits[:, start:start + m].float()


def ce(logits: torch.Tensor, x: torch.Tensor) -> float:
    return F.cross_entropy(logits.flatten(0, 1), x.flatten()).item()


def kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
    """Mean over positions of KL(teacher || student), nats."""
    return kl_divergence(teacher_logits.log_softmax(-1), student_logits.log_softmax(-1)).mean()


def train_gist(model, bos: int, prompt: list[int], conts: torch.Tensor, k: int, cfg: GistConfig,
               generator: torch.Generator) -> tuple[torch.Tensor, list[float], torch.Tensor]:
    """Learn G [k, C] for one prompt; return (G, training KL per step, the G it started from)."""
    with torch.no_grad():
        teacher = cont_logits(model, bos, conts, prompt=prompt)
        # Start from the embeddings of the prompt's last k tokens: real token vectors, at a scale
        # the model knows, rather than noise.
        if k > len(prompt):
            raise StudyError(f"k = {k} gist vectors for a {len(prompt)}-token prompt: more vectors than tokens")
        init = model.transformer.wte(torch.tensor(prompt[-k:], device=conts.device))
    G = torch.nn.Parameter(init.clone())
    opt = torch.optim.Adam([G], lr=cfg.gist_lr)
    history = []
    for _ in range(cfg.gist_steps):
        idx = torch.randint(0, len(conts), (min(cfg.gist_batch, len(conts)),), generator=generator)
        loss = kl(teacher[idx], cont_logits(model, bos, conts[idx], gist=G))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history.append(loss.item())
    return G.detach(), history, init


@torch.no_grad()
def evaluate(model, bos, item: dict, gists: dict, inits: dict) -> dict:
    x = torch.tensor(item["eval"], device=next(model.parameters()).device)
    full = cont_logits(model, bos, x, prompt=item["prompt"])
    none = cont_logits(model, bos, x)
    gain = (F.cross_entropy(none.flatten(0, 1), x.flatten(), reduction="none")
            - F.cross_entropy(full.flatten(0, 1), x.flatten(), reduction="none"))
    # R of this prompt is a ratio of noise when its gap is within twice the standard error of
    # its per-token gains: left as None.
    gap = gain.mean().item()
    gap_se = gain.std().item() / gain.numel() ** 0.5 if gain.numel() > 1 else float("inf")
    row = {"L_full": ce(full, x), "L_none": ce(none, x), "KL_none": kl(full, none).item(),
           "gap_se": gap_se, "gain_per_token": gain.tolist(), "gist": {}}
    for k, G in gists.items():
        g = cont_logits(model, bos, x, gist=G)
        g0 = cont_logits(model, bos, x, gist=inits[k])
        L_gist = ce(g, x)
        row["gist"][k] = {"L_gist": L_gist, "KL": kl(full, g).item(), "KL_init": kl(full, g0).item(),
                          "R": (row["L_none"] - L_gist) / gap if gap > 2 * gap_se else None}
    return row


def forward_flops(model_cfg, body_params: int, n: int, m: int) -> float:
    """FLOPs of one forward over n positions with logits at the last m (2 per multiply-add).

    2 per body weight per position, 2 per head weight per scored position, and causal attention:
    the token at position t (1-based) computes t scores and a t-term weighted sum per layer,
    2 * 2 * t * n_embd FLOPs, so 2 * n_layer * n_embd * n * (n + 1) in all.
    """
    head = model_cfg.n_embd * model_cfg.vocab_size
    return 2 * body_params * n + 2 * head * m + 2 * model_cfg.n_layer * model_cfg.n_embd * n * (n + 1)


def break_even(model_cfg, body_params: int, P: float, k: int, m: int, steps: int, batch: int,
               train_conts: int) -> dict:
    """How many uses of G repay learning it, in FLOPs.

    cost   = 3 * steps * batch * F(1 + k + m, m)     student forward + backward (the usual 3x forward,
                                                      an upper bound: frozen weights need no weight gradient)
           + train_conts * F(1 + |P| + m, m)         the teacher's logits, computed once
    saving = F(1 + |P| + m, m) - F(1 + k + m, m)     per use: |P| - k fewer positions through the body,
                                                      and m continuation tokens attending over fewer
    uses   = cost / saving                            (None when k >= |P|: nothing is saved)
    F is `forward_flops`; m is the continuation length scored per use.
    """
    cost = (3 * steps * batch * forward_flops(model_cfg, body_params, 1 + k + m, m)
            + train_conts * forward_flops(model_cfg, body_params, 1 + round(P) + m, m))
    saving = (forward_flops(model_cfg, body_params, 1 + round(P) + m, m)
              - forward_flops(model_cfg, body_params, 1 + k + m, m))
    return {"train_flops": cost, "flops_saved_per_use": saving,
            "break_even_uses": cost / saving if saving > 0 else None}


def body_params(model) -> int:
    """Weights every position passes through: all but the token embedding and the output head."""
    n = model.num_params(non_embedding=True)
    return n if model.config.tie_embeddings else n - model.lm_head.weight.numel()


def spread(values: list[float]) -> dict:
    """mean, sd (n - 1), min, max and count of the values that exist (None entries are skipped)."""
    v = [x for x in values if x is not None]
    if not v:
        return {"mean": None, "sd": None, "min": None, "max": None, "n": 0}
    mean, sd = mean_sd(v)
    return {"mean": mean, "sd": sd, "min": min(v), "max": max(v), "n": len(v)}


def run_task(name: str, model, bos: int, items: list[dict], cfg: GistConfig, progress: bool) -> dict:
    check_ks(cfg.ks, min(len(item["prompt"]) for item in items), name)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    g = torch.Generator().manual_seed(cfg.seed)
    per_prompt = []
    bar = tqdm(total=len(items) * len(cfg.ks), desc=f"{name}: gist", disable=not progress)
    for item in items:
        conts = torch.tensor(item["train"], device=next(model.parameters()).device)
        gists, hist, inits = {}, {}, {}
        for k in cfg.ks:
            gists[k], hist[k], inits[k] = train_gist(model, bos, item["prompt"], conts, k, cfg, g)
            bar.update(1)
        row = evaluate(model, bos, item, gists, inits)
        row.update(prompt_tokens=len(item["prompt"]), prompt_text=item["prompt_text"],
                   train_kl_first={k: h[0] for k, h in hist.items()},
                   train_kl_last={k: sum(h[-10:]) / len(h[-10:]) for k, h in hist.items()})
        per_prompt.append(row)
    bar.close()
    c = model.config
    mean = lambda vals: sum(vals) / len(vals)  # noqa: E731
    L_full, L_none = mean([r["L_full"] for r in per_prompt]), mean([r["L_none"] for r in per_prompt])
    P = mean([r["prompt_tokens"] for r in per_prompt])
    # The gap's noise: the standard error of the per-token gain of the prompt over all held-out
    # tokens. R divides by the gap, so below two standard errors it is a ratio of noise: None.
    gains = [g for r in per_prompt for g in r.pop("gain_per_token")]
    gap_se = statistics.stdev(gains) / len(gains) ** 0.5 if len(gains) > 1 else float("inf")
    gap_ok = L_none - L_full > 2 * gap_se
    rows = []
    body = body_params(model)
    m = len(items[0]["eval"][0])
    for k in cfg.ks:
        L_gist = mean([r["gist"][k]["L_gist"] for r in per_prompt])
        saved = P - k
        rows.append({"k": k, "L_gist": L_gist, "R": (L_none - L_gist) / (L_none - L_full) if gap_ok
                     else None, "R_per_prompt": spread([r["gist"][k]["R"] for r in per_prompt]),
                     **break_even(c, body, P, k, m, cfg.gist_steps, min(cfg.gist_batch, len(items[0]["train"])),
                                  len(items[0]["train"])),
                     "KL": mean([r["gist"][k]["KL"] for r in per_prompt]),
                     "KL_init": mean([r["gist"][k]["KL_init"] for r in per_prompt]),
                     "train_kl_first": mean([r["train_kl_first"][k] for r in per_prompt]),
                     "train_kl_last": mean([r["train_kl_last"][k] for r in per_prompt]),
                     "rho": P / k, "kv_positions_saved": saved,
                     # K and V, n_embd values each, per layer per position
                     "kv_bytes_saved_fp32": saved * c.n_layer * 2 * c.n_embd * 4,
                     "kv_bytes_saved_bf16": saved * c.n_layer * 2 * c.n_embd * 2})
    return {"task": name, "prompt_tokens": P, "cont_tokens": len(items[0]["eval"][0]),
            "n_prompts": len(items), "eval_conts": len(items[0]["eval"]), "train_conts": len(items[0]["train"]),
            "L_full": L_full, "L_none": L_none, "gap_se": gap_se, "KL_none": mean([r["KL_none"] for r in per_prompt]),
            "model": {"n_layer": c.n_layer, "n_embd": c.n_embd, "vocab_size": c.vocab_size, "body_params": body},
            "rows": rows, "per_prompt": per_prompt}


def check_ks(ks: list, prompt_tokens: int, task: str) -> None:
    """k >= |P| is an error, not a row: such a gist saves no KV positions and no FLOPs (break-even
    never comes) and, started from the prompt's own embeddings, it is the full prompt again."""
    if not ks or any(k < 1 for k in ks):
        raise StudyError(f"ks must be positive integers, got {ks}")
    if max(ks) >= prompt_tokens:
        raise StudyError(f"ks go up to {max(ks)} but a {task!r} prompt has only {prompt_tokens} tokens: a gist "
                         f"must be shorter than its prompt to save anything; use ks below {prompt_tokens}")


def run_study(cfg: GistConfig, progress: bool = True) -> dict:
    # Checked before any training: the synthetic prompt is 3 bytes per fact, the real one as asked.
    check_ks(cfg.ks, 3 * cfg.syn_facts, "synthetic")
    if cfg.real:
        check_ks(cfg.ks, cfg.real_prompt_tokens, "real")
    device = pick_device(cfg.device)
    # Gist steps are tiny matmuls: on a busy CPU, torch's default of a thread per core made them ~40x
    # slower (OpenMP threads spin-wait for one that lost its core), hence pick_threads.
    old_threads = torch.get_num_threads()
    torch.set_num_threads(pick_threads(cfg.threads, device))
    try:
        return run_tasks(cfg, device, progress)
    finally:  # a process-wide setting: give the caller (e.g. a test session) its own back
        torch.set_num_threads(old_threads)


def run_tasks(cfg: GistConfig, device: str, progress: bool) -> dict:
    t0 = time.perf_counter()
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tasks = []
    model, tok, _ = load_base(synthetic_base(cfg, out, device, quiet=not progress))
    model.to(device)
    syn = run_task("synthetic key=value facts", model, tok.special_tokens[EOT], synthetic_prompts(cfg, tok),
                   cfg, progress)
    syn["L_floor"], syn["L_floor_none"] = synthetic_floors(cfg)
    # How far the prompt takes the base from the best no-prompt loss towards the best loss with it.
    # L_full, not L_none - L_full: a base confused by a missing prompt can push L_none above its
    # floor and so look as if it used a prompt it does not read.
    syn["share_closed"] = (syn["L_floor_none"] - syn["L_full"]) / (syn["L_floor_none"] - syn["L_floor"])
    tasks.append(syn)
    if cfg.real:
        if cfg.real_base_ckpt:
            ckpt = Path(cfg.real_base_ckpt)
        else:
            ckpt = ensure_base(base_spec(cfg, "real_"), Path(cfg.real_base_dir or out / "real_base"), device,
                               quiet=not progress)
        model, tok, _ = load_base(ckpt)
        model.to(device)
        docs = list(iter_documents(cfg.real_source))
        tasks.append(run_task(f"real: opening of a {cfg.real_source} document -> later passages", model,
                              tok.special_tokens[EOT], real_prompts(cfg, tok, docs), cfg, progress))
    s = {"config": asdict(cfg), "device": device, "tasks": tasks, "seconds_total": time.perf_counter() - t0}
    atomic_write_text(out / "results.json", json.dumps(s, indent=1))
    plot_recovery(s, out / "recovery_vs_compression.png")
    atomic_write_text(out / "results.md", results_markdown(s))
    return s


# ------------------------------------------------------------------------------------------------
# outputs


def fmt_spread(d: dict) -> str:
    if not d["n"]:
        return ""
    return f"{d['mean']:.2f} ± {d['sd']:.2f} [{d['min']:.2f}, {d['max']:.2f}] ({d['n']})"


def results_markdown(s: dict) -> str:
    c = s["config"]
    lines = ["# Prompt compression with learned gist vectors", "",
             f"Frozen base model; per prompt and k, G is trained {c['gist_steps']} Adam steps (lr {c['gist_lr']}, "
             f"batch {c['gist_batch']}) to minimise KL(teacher || student) on that prompt's training continuations; "
             f"every score below is on held-out continuations (never used to train G). L = cross-entropy per "
             f"continuation token (nats), averaged over prompts; R = (L_none - L_gist) / (L_none - L_full), of the "
             f"pooled losses and per prompt (mean ± sd [min, max] (prompts with a gap above twice its standard "
             f"error)); rho = |P| / k; KL = KL(full || condition) per token, nats. KV saved = (|P| - k) positions "
             f"x n_layer x (K and V) x n_embd values.", "",
             "Break-even uses = cost / saving, in FLOPs (2 per multiply-add). F(n, m) = 2 N n + 2 V C m + "
             "2 n_layer C n (n + 1) is one forward over n positions with logits at the last m (N = body weights, "
             "C = width, V = vocab). cost = 3 x gist_steps x batch x F(1 + k + m, m) (forward + backward; an upper "
             "bound, as frozen weights need no weight gradient) + train_conts x F(1 + |P| + m, m) (teacher logits, "
             "once); saving per use = F(1 + |P| + m, m) - F(1 + k + m, m), with m = the continuation length.", "",
             f"Seed {c['seed']}. Regenerate: `python -m studies.gist CONFIG`.", ""]
    for t in s["tasks"]:
        m = t["model"]
        lines += [f"## {t['task']}", "",
                  f"{t['n_prompts']} prompts of {t['prompt_tokens']:.0f} tokens; {t['train_conts']} train / "
                  f"{t['eval_conts']} held-out continuations of {t['cont_tokens']} tokens each. Model: "
                  f"{m['n_layer']} layers x {m['n_embd']} wide, vocab {m['vocab_size']}, {m['body_params']:,} body weights.",
                  "",
                  f"Full prompt: L = {t['L_full']:.3f}; no prompt: L = {t['L_none']:.3f} "
                  f"(KL from full {t['KL_none']:.3f}). Gap L_none - L_full = {t['L_none'] - t['L_full']:.3f} nats "
                  f"(standard error {t['gap_se']:.3f})"
                  + ("." if t['L_none'] - t['L_full'] > 2 * t['gap_se'] else
                     ": not above twice its standard error, so R is left blank; read the KL columns instead."
                     + (" The gap is negative: on these continuations the prompt makes the text less likely."
                        if t['L_none'] < t['L_full'] else "")), ""]
        if "L_floor" in t:
            used = t["share_closed"]
            lines += [f"Best possible: L_floor = {t['L_floor']:.3f} with the prompt, {t['L_floor_none']:.3f} without. "
                      f"The base's L_full closes {used:.0%} of that gap, (L_floor_none - L_full) / "
                      f"(L_floor_none - L_floor)"
                      + (". That is less than half: this teacher barely uses its prompt, so R measures a weak "
                         "teacher (train the base longer: syn_steps, or raise syn_lr)." if used < 0.5 else
                         ": at least half, so the teacher reads its prompt."), ""]
        lines += ["| k | rho = \\|P\\|/k | L_gist | R pooled | R per prompt | KL held-out (init -> trained) "
                  "| KL train (first -> last) | break-even uses | KV positions saved | KV bytes saved (fp32 / bf16) |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in t["rows"]:
            R = "" if r["R"] is None else f"{r['R']:.3f}"
            uses = "never" if r["break_even_uses"] is None else f"{r['break_even_uses']:,.0f}"
            lines.append(f"| {r['k']} | {r['rho']:.1f} | {r['L_gist']:.3f} | {R} | {fmt_spread(r['R_per_prompt'])} | "
                         f"{r['KL_init']:.3f} -> {r['KL']:.3f} | "
                         f"{r['train_kl_first']:.3f} -> {r['train_kl_last']:.3f} | {uses} | "
                         f"{r['kv_positions_saved']:.0f} | "
                         f"{r['kv_bytes_saved_fp32']:,.0f} / {r['kv_bytes_saved_bf16']:,.0f} |")
        lines.append("")
    lines += ["![recovery vs compression](recovery_vs_compression.png)", "",
              f"Total {s['seconds_total']:.0f} s on {s['device']}.", ""]
    return "\n".join(lines)


def plot_recovery(s: dict, path: Path) -> None:
    fig, a = pyplot().subplots(figsize=(6.5, 4.5))
    for t in s["tasks"]:
        label = t["task"].split(":")[0] + f" (|P| = {t['prompt_tokens']:.0f})"
        rows = [r for r in t["rows"] if r["R"] is not None]
        if not rows:  # the teacher's gap is within its noise: no R to show
            a.plot([], [], " ", label=label + ": R blank, gap not above 2 standard errors")
            continue
        a.plot([r["rho"] for r in rows], [r["R"] for r in rows], "o-", label=label + ", pooled")
        per = [r for r in rows if r["R_per_prompt"]["n"]]
        if per:  # the spread over prompts: mean +- sd, offset a little so the two marks don't overlap
            a.errorbar([r["rho"] * 1.04 for r in per], [r["R_per_prompt"]["mean"] for r in per],
                       yerr=[r["R_per_prompt"]["sd"] for r in per], fmt="s", ms=3, capsize=3, alpha=0.7,
                       color=a.lines[-1].get_color(), label=label + ", per prompt (mean ± sd)")
        for r in rows:
            a.annotate(f"k={r['k']}", (r["rho"], r["R"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    a.axhline(1, color="gray", ls=":", lw=1)
    a.axhline(0, color="gray", ls=":", lw=1)
    a.set_xscale("log")
    a.set_xlim(0.8, 2 * max(r["rho"] for t in s["tasks"] for r in t["rows"]))
    a.set(xlabel="compression ratio rho = prompt tokens / gist vectors (log scale)",
          ylabel="recovery R (1 = full prompt, 0 = no prompt)", title="Gist recovery vs compression")
    a.legend(fontsize=8)
    save_figure(fig, path, dpi=110)


def main(argv=None) -> int:
    return study_main(argv, GistConfig, run_study, results_markdown, "python -m studies.gist",
                      "Learn k gist vectors that stand in for a long prompt (distillation from the frozen "
                      "model), and report recovery R, KL, compression and KV-cache saving per k. Writes "
                      "OUT_DIR/results.md, results.json and recovery_vs_compression.png.")


if __name__ == "__main__":
    sys.exit(main())
