"""Model and tokenizer factory, and the prompt format shared by training and evaluation."""

from ofmu_ray.models.factory import build_tiny_llama, load_causal_lm, load_tokenizer
from ofmu_ray.models.prompt import IGNORE, collate, encode_example, format_prompt
from ofmu_ray.models.tokenizer import train_word_tokenizer

__all__ = ["IGNORE", "build_tiny_llama", "collate", "encode_example",
           "format_prompt", "load_causal_lm", "load_tokenizer", "train_word_tokenizer"]
