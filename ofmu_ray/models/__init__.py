"""Model and tokenizer factory, and the prompt format shared by training and evaluation."""

from ofmu_ray.models.factory import build_tiny_llama, load_causal_lm, load_tokenizer
from ofmu_ray.models.prompt import IGNORE, PROMPTS, collate, encode_example, format_prompt, prompt_batch
from ofmu_ray.models.tokenizer import train_word_tokenizer

__all__ = ["IGNORE", "PROMPTS", "build_tiny_llama", "collate", "encode_example",
           "format_prompt", "prompt_batch", "load_causal_lm", "load_tokenizer", "train_word_tokenizer"]
