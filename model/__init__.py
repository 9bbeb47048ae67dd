"""Stage 3: the GPT model. See model/gpt.py."""
from model.gpt import GPT, GPTConfig

__all__ = ["GPT", "GPTConfig"]
