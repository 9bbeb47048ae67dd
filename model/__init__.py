"""Stage 3: the GPT model. Read model/gpt.py (the network), then generate.py and resize.py."""
from model.generate import KVCache, generate
from model.gpt import GPT, GPTConfig
from model.resize import resize_token_embeddings

__all__ = ["GPT", "GPTConfig", "KVCache", "generate", "resize_token_embeddings"]
