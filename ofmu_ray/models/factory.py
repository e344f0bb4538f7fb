"""One factory for every causal LM: the tiny Llama trained here, or any hub name / local folder."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from ofmu_ray.config import TinyLlamaSpec
from ofmu_ray.models.prompt import resolve_prompt

# the weights' type per --dtype; bf16-mixed keeps fp32 weights and runs the unlearning passes under
# bf16 autocast (`train.loop.train_step`), for GPUs with bf16 units and models whose fp32 weights fit
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "bf16-mixed": torch.float32}


def at_least_fp32(dtype: torch.dtype) -> torch.dtype:
    """bf16/fp16 logits are upcast for a loss or a score; fp64 (gradient checks) stays fp64."""
    return torch.promote_types(dtype, torch.float32)


def build_tiny_llama(spec: TinyLlamaSpec, tokenizer, seed: int = 0) -> LlamaForCausalLM:
    """A freshly initialised Llama with the tokenizer's vocabulary and special tokens."""
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden,
        intermediate_size=spec.intermediate,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.heads,
        max_position_embeddings=spec.max_positions,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def load_causal_lm(name_or_path: str | Path, dtype: str = "fp32"):
    """Loads a causal LM by hub name or local folder (safetensors only, never a pickle); a LoRA
    adapter folder is loaded onto the base model it names and merged.

    `dtype` is `fp32`, `bf16` (bf16 weights: half the memory of 1B-7B models) or `bf16-mixed` (fp32
    weights; the unlearning passes autocast to bf16). OFMU
    switches attention to eager itself (fused kernels have no double backward).
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    options = {"dtype": DTYPES[dtype], "use_safetensors": True}
    if (Path(name_or_path) / "adapter_config.json").is_file():
        from peft import AutoPeftModelForCausalLM

        return AutoPeftModelForCausalLM.from_pretrained(str(name_or_path), **options).merge_and_unload()
    return AutoModelForCausalLM.from_pretrained(str(name_or_path), **options)


def load_tokenizer(name_or_path: str | Path, prompt: str = "auto"):
    """Loads the tokenizer beside a model with its prompt format attached (`models.prompt`);
    pads on the left for batched generation."""
    tokenizer = AutoTokenizer.from_pretrained(str(name_or_path))
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.prompt_format = resolve_prompt(prompt, tokenizer)
    return tokenizer
