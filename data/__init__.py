"""Stage 2: text in, token shards out.

- `data.sources`: documents (str) from local files or named corpora, and the val split rule.
- `data.shards`: the llm.c shard format, the manifest and the token byte table.
- `data.prepare`: the CLI that encodes sources into shards (`python -m data.prepare --help`).
- `data.loader`: the batch loader the trainer reads shards with.
"""
# The project's one atomic writer (temp file beside the target, fsync, then os.replace), re-exported
# for shards, manifests and downloads; it lives in the first stage, tokenizer/, so every stage can use it.
from tokenizer.atomic import atomic_writer  # noqa: F401
