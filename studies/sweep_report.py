"""The vocabulary sweep's report: the rows of results.csv and summary.csv (a V against the best
V of its line included), results.md and the three plots.

Its own module because the wording of the report (what was held equal, which V is best and
whether the intervals separate it) is read and revised apart from how the runs were made.
"""
import csv
import io
import statistics

import numpy as np

from studies.common import atomic_write_text, line_plot, markdown_table, mean_sd, text_table
from studies.sweep_scoring import RARE, paired_bootstrap


def _write_csv(path, rows):
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def results_rows(runs, plans, chosen, size_of, version, described):
    """results.csv: one row per training run, tuning runs included, in `runs`' order.

    runs: {(family, size label, V, seed, lr): (job, run_job's dict)}; plans: plan_run's dict per
    (family, label, V); chosen: the lr each (family, label, V) kept.
    """
    run_rows = []
    for (fam, label, v, seed, lr), (j, res) in runs.items():
        p, ev, r = plans[fam, label, v], res["eval"], res["result"]
        val, tune = ev.get("val", {}), ev.get("tune", {})
        run_rows.append({
            "tokenizer_type": fam, "model_size": label, **size_of[label], "vocab_size": v,
            "n_vocab": p["n_vocab"], "seed": seed, "lr": lr, "lr_chosen": lr == chosen[fam, label, v],
            "split": "+".join(s for s in ("tune", "val") if s in ev),
            "bytes_per_token": round(p["val_bytes_per_token"], 4),
            "context_bytes": round(p["context_bytes"], 1), "block_size": p["block_size"],
            "steps": p["steps"], "train_bytes": round(p["planned_train_bytes"]),
            "val_bytes": val.get("bytes", ""), "val_bpb": _r(val.get("bpb")),
            "val_loss_per_token": _r(val.get("loss")),
            "unigram_norm_loss": _r(val.get("unigram_norm_bpb")),
            "tune_bytes": tune.get("bytes", ""), "tune_bpb": _r(tune.get("bpb")),
            "non_emb_params": p["nonemb_params"], "emb_params": p["emb_params"],
            "flops_per_token": p["flops_per_token"], "flops_per_byte": round(p["flops_per_byte"]),
            "train_flops": p["train_flops"], "train_tokens_per_s": round(r["tokens_per_s"]),
            "code_version": version, "git_describe": described, "run_dir": j["run_dir"]})
    return run_rows


def summary_rows(cfg, runs, plans, chosen, seen, labels, lrs, version):
    """summary.csv: one row per (family, size, V) over its seeds at the chosen lr, with each V
    against the best V of its line by the paired bootstrap. seen: {(family, V): (input-id counts,
    training bytes)} from replay_training_tokens."""
    tuning = len(cfg.lr_grid) > 1
    rows = []
    for fam, label, v in plans:
        p, lr = plans[fam, label, v], chosen[fam, label, v]
        final = [runs[fam, label, v, s, lr][1]["eval"]["val"] for s in cfg.seeds]
        counts, seen_bytes = seen[fam, v]
        bpbs = [e["bpb"] for e in final]
        unis = [e["unigram_norm_bpb"] for e in final]
        tps = statistics.mean(runs[fam, label, v, s, lr][1]["result"]["tokens_per_s"] for s in cfg.seeds)
        rows.append({
            "tokenizer_type": fam, "model_size": label, "vocab_size": v,
            **{k: p[k] for k in ("n_vocab", "block_size", "steps", "train_tokens")},
            "lr": lr, "tune_bpb_by_lr": " ".join(
                f"{x:g}:{runs[fam, label, v, cfg.seeds[0], x][1]['eval']['tune']['bpb']:.4f}"
                for x in lrs) if tuning else "",
            "train_bytes": seen_bytes, "context_bytes": round(p["context_bytes"], 1),
            "val_bytes": final[0]["bytes"], "val_documents": len(final[0]["doc_bytes"]),
            "val_bytes_per_token": round(p["val_bytes_per_token"], 4),
            "emb_params": p["emb_params"], "nonemb_params": p["nonemb_params"],
            "flops_per_token": p["flops_per_token"], "flops_per_byte": round(p["flops_per_byte"]),
            "train_flops": p["train_flops"],
            "train_tokens_per_s": round(tps), "train_bytes_per_s": round(tps * p["train_bytes_per_token"]),
            "val_bpb_mean": round(mean_sd(bpbs)[0], 4), "val_bpb_sd": round(mean_sd(bpbs)[1], 4),
            "n_seeds": len(bpbs),
            "unigram_norm_mean": round(mean_sd(unis)[0], 4),
            "unigram_norm_sd": round(mean_sd(unis)[1], 4),
            "val_loss_per_token": round(statistics.mean(e["loss"] for e in final), 4),
            "rare_vocab_frac": round(float((counts[:v] < RARE).mean()), 4),
            "unseen_ids": int((counts[:v] == 0).sum()),
            "code_version": version,
        })
    # within each line (family, size): each V against the best V, on the same documents, nats
    # averaged over the same seeds
    for fam in cfg.tokenizer_types:
        for label in labels:
            line = [r for r in rows if r["tokenizer_type"] == fam and r["model_size"] == label]
            if not line:
                continue
            nats = {r["vocab_size"]: np.mean([runs[fam, label, r["vocab_size"], s, r["lr"]][1]
                                              ["eval"]["val"]["doc_nats"] for s in cfg.seeds], axis=0)
                    for r in line}
            doc_bytes = runs[fam, label, line[0]["vocab_size"], cfg.seeds[0], line[0]["lr"]][1][
                "eval"]["val"]["doc_bytes"]
            best = min(line, key=lambda r: r["val_bpb_mean"])["vocab_size"]
            for r in line:
                diff, lo, hi = paired_bootstrap(nats[r["vocab_size"]], nats[best], doc_bytes)
                r.update(best_v=best, bpb_minus_best=round(diff, 4), ci95_lo=round(lo, 4),
                         ci95_hi=round(hi, 4))
    return rows


def growth_verdict(best_by_size):
    """One plain sentence: does the best V grow with model size? best_by_size: [(label, best V,
    {V not distinguishable from it})] ordered by non-embedding parameters."""
    if len(best_by_size) < 2:
        return "one model size only: this run says nothing about how the best V moves with size"
    bests = [b for _, b, _ in best_by_size]
    listing = ", ".join(f"{label}: V={b}" for label, b, _ in best_by_size)
    if all(a < b for a, b in zip(bests, bests[1:])):
        overlap = any(a & b for (_, _, a), (_, _, b) in zip(best_by_size, best_by_size[1:]))
        return (f"the best V grows with model size in this run ({listing})"
                + ("; but neighbouring sizes share Vs that their intervals do not separate from "
                   "the best, so the run does not establish it" if overlap else ""))
    return f"the best V does NOT grow with model size in this run ({listing})"


def write_results(out, rows, run_rows, cfg, labels, sizes, seconds, reused=0):
    """The CSVs, results.md and the plots; `seconds` is this invocation's wall time, of which
    `reused` runs (trained earlier, loaded from their run directories) took next to none."""
    _write_csv(out / "results.csv", run_rows)
    _write_csv(out / "summary.csv", rows)
    tuning = len(cfg.lr_grid) > 1
    header = ["tokenizer", "size", "V", "bytes/token (val)", "context (tokens / bytes)", "steps",
              "lr" + (" (tuned)" if tuning else ""), "emb params", "non-emb params", "FLOPs/byte",
              "train bytes", "val bpb", "minus best V [95% CI]", "unigram-norm bits/byte",
              f"vocab seen <{RARE}x"]
    table = [[r["tokenizer_type"], r["model_size"], r["vocab_size"],
              f"{r['val_bytes_per_token']:.3f}", f"{r['block_size']} / {r['context_bytes']:.0f}",
              r["steps"], f"{r['lr']:g}", f"{r['emb_params']:,}", f"{r['nonemb_params']:,}",
              f"{r['flops_per_byte']:,}", f"{r['train_bytes']:,}", _bpb(r), _vs_best(r),
              _mean_sd(r["unigram_norm_mean"], r["unigram_norm_sd"], r["n_seeds"]),
              f"{r['rare_vocab_frac']:.1%}"] for r in rows]
    budget = (f"{cfg.train_bytes:,} training bytes" if cfg.budget == "bytes"
              else f"{cfg.train_flops:.3g} training FLOPs")
    blocks = [r["block_size"] for r in rows]
    if cfg.context_unit == "bytes":
        held = (f"context_unit = \"bytes\": every V sees windows of about {cfg.context} bytes "
                f"({min(blocks)}-{max(blocks)} tokens) and "
                + (f"trains the same {rows[0]['steps']} steps of the same bytes per step"
                   if cfg.budget == "bytes" else "the same FLOPs"))
    else:
        held = (f"context_unit = \"tokens\": every V sees {cfg.context}-token windows, so a larger V "
                f"sees more bytes of context per window and fewer steps of the same bytes budget")
    shapes = "; ".join(f"{label} = {s['n_layer']} layers x {s['n_head']} heads x {s['n_embd']} wide"
                       for label, s in zip(labels, sizes))
    if tuning:
        lr_note = (f"Learning rate: for each (tokenizer, size, V) the first seed ({cfg.seeds[0]}) "
                   f"trained at every lr of {cfg.lr_grid}, and the lr with the lowest bpb on the "
                   f"tuning text (documents of their own, disjoint from the tokenizer's, the "
                   f"models' and val text; val is never read to choose) is the one in the table; "
                   f"that run is also the first seed's final run, the other seeds train at its lr. "
                   f"Tuning bpb per lr: summary.csv, tune_bpb_by_lr.")
        edges = sum(r["lr"] in (min(cfg.lr_grid), max(cfg.lr_grid)) for r in rows)
        if edges:  # the optimum may lie outside the grid: say so rather than hide it
            lr_note += (f" {edges} of {len(rows)} rows chose an end of the grid, where a wider "
                        f"grid might find a better lr.")
    else:
        lr_note = f"Learning rate: {rows[0]['lr']:g} for every run (no lr_grid: not tuned)."
    lines = []
    for fam in cfg.tokenizer_types:
        best_by_size = []
        for label in labels:
            line = [r for r in rows if r["tokenizer_type"] == fam and r["model_size"] == label]
            if not line:
                continue
            best = next(r for r in line if r["vocab_size"] == r["best_v"])
            tied = {r["vocab_size"] for r in line if r["ci95_lo"] <= 0 <= r["ci95_hi"]}
            best_by_size.append((label, best["vocab_size"], tied))
            others = sorted(tied - {best["vocab_size"]})
            lines.append(f"- {fam}, {label}: best V={best['vocab_size']} ({_bpb(best)} bpb)"
                         + (f"; not distinguishable from V={', '.join(map(str, others))}" if others
                            else "; every other V is worse beyond its 95% interval"))
        lines.append(f"- {fam}: {growth_verdict(best_by_size)}.")
    wall_note = (f" (this invocation; {reused} of {len(run_rows)} runs reused from cache, their "
                 f"training time not counted)" if reused else "")
    md = (f"# Vocabulary sweep\n\nSource {', '.join(map(str, cfg.source))}; tokenizers "
          f"{', '.join(cfg.tokenizer_types)}, one trained per family at the largest V and truncated; "
          f"model sizes by non-embedding parameters: {shapes}. Held equal within a size: the "
          f"non-embedding parameters, {budget} per model, and {held}; seeds {cfg.seeds}. Every "
          f"model is scored on the same {rows[0]['val_bytes']:,} bytes of validation text (the same "
          f"for every tokenizer, size, V and seed), every byte once (windows overlapping by half a "
          f"context, each byte predicted with at least half a context before it); val bpb is mean "
          f"± sd over seeds. \"minus best V\": each V's bpb minus the best V's of the same "
          f"tokenizer and size, with a 95% paired bootstrap interval over the "
          f"{rows[0]['val_documents']} val documents (same documents, nats averaged over the same "
          f"seeds); \"not distinguishable\" when it contains 0. Unigram-norm: Tao et al.'s "
          f"unigram-normalised loss, the sum over val tokens of (loss + ln p_unigram(token)), "
          f"p_unigram counted over the val tokens, in bits per byte of the same val text; lower is "
          f"better, below 0 beats the unigram model. {lr_note} Code version "
          f"{rows[0]['code_version']}. Wall time {seconds:.0f} s{wall_note}.\n\n"
          + markdown_table(header, table)
          + "\nBest V per line (lowest mean val bpb):\n\n" + "\n".join(lines) + "\n\n"
          "Compare bits per byte, not loss per token: a larger vocabulary predicts fewer, harder "
          "tokens.\n")
    atomic_write_text(out / "results.md", md)
    print(text_table(header, table))

    def series(y, err=None):
        return {_line_name(cfg, fam, label): (
                    [r["vocab_size"] for r in line], [r[y] for r in line],
                    [r[err] for r in line] if err and any(r[err] for r in line) else None)
                for fam in cfg.tokenizer_types for label in labels
                for line in [[r for r in rows if r["tokenizer_type"] == fam and r["model_size"] == label]]
                if line}

    note = f"{budget} per model; {len(cfg.seeds)} seed(s)" + (", bars = sd" if len(cfg.seeds) > 1 else "")
    best = {_line_name(cfg, r["tokenizer_type"], r["model_size"]): r["best_v"] for r in rows}
    line_plot(out / "bpb_vs_vocab.png", series("val_bpb_mean", "val_bpb_sd"),
              xlabel="vocabulary size V (log2 scale)", ylabel="validation loss (bits per byte)",
              title="Model quality vs vocabulary size (star: best V)", log2_x=True, note=note,
              mark=best)
    by_family = {fam: ([r["vocab_size"] for r in rows if r["tokenizer_type"] == fam and r["model_size"] == labels[0]],
                       [r["val_bytes_per_token"] for r in rows if r["tokenizer_type"] == fam and r["model_size"] == labels[0]],
                       None) for fam in cfg.tokenizer_types}
    line_plot(out / "bytes_per_token_vs_vocab.png", {f"{k} (val text)": v for k, v in by_family.items() if v[0]},
              xlabel="vocabulary size V (log2 scale)", ylabel="UTF-8 bytes per token",
              title="Compression vs vocabulary size", log2_x=True)
    flops = {name: ([r["train_flops"] for r in rows if _line_name(cfg, r["tokenizer_type"], r["model_size"]) == name],
                    ys, err) for name, (_, ys, err) in series("val_bpb_mean", "val_bpb_sd").items()}
    line_plot(out / "bpb_vs_flops.png", flops,
              xlabel="training compute (FLOPs, log scale)",
              ylabel="validation loss (bits per byte)", title="Model quality vs training compute",
              log_x=True, point_labels=[f"V={r['vocab_size']}" for r in rows
                                        if _line_name(cfg, r["tokenizer_type"], r["model_size"]) == next(iter(flops))],
              note=note)


def _line_name(cfg, fam, label):
    return f"{fam} {label}" if len(cfg.tokenizer_types) > 1 else label


def _vs_best(r):
    if r["vocab_size"] == r["best_v"]:
        return "best"
    ci = f"{r['bpb_minus_best']:+.4f} [{r['ci95_lo']:+.4f}, {r['ci95_hi']:+.4f}]"
    return ci + (" not distinguishable" if r["ci95_lo"] <= 0 <= r["ci95_hi"] else "")


def _mean_sd(mean, sd, n):
    return f"{mean:.4f}" + (f" ± {sd:.4f}" if n > 1 else "")


def _bpb(r):
    return _mean_sd(r["val_bpb_mean"], r["val_bpb_sd"], r["n_seeds"])


def _r(x, digits=6):
    return "" if x is None else round(x, digits)
