"""Parameter-efficient unlearning: LoRA adapters through `peft`.

Every method updates whatever parameters require gradients, so with adapters it updates only
them; for OFMU that makes the full-gradient cosine (two gradient vectors of the trainable size)
practical on 1B-7B models. The result is saved merged into the base weights (a plain model
folder) or as the adapter alone (`adapter_config.json` names the base model).

    >>> parse_lora("r=4,alpha=8,targets=q_proj+v_proj")
    LoraSpec(r=4, alpha=8.0, targets='q_proj+v_proj', dropout=0.0)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

from ofmu_ray.config import Validated, param

SAVE_MODES = ("merged", "adapter")


@dataclass(frozen=True)
class LoraSpec(Validated):
    r: int = param(8, "adapter rank", low=1, high=4096)
    alpha: float = param(16.0, "scaling numerator (the update is scaled by alpha / r)", low=0.0)
    targets: str = param("q_proj+k_proj+v_proj+o_proj+gate_proj+up_proj+down_proj",
                         "module names that get adapters, joined by '+' (Llama naming)")
    dropout: float = param(0.0, "dropout on the adapter input", low=0.0, high=1.0)


def parse_lora(text: str) -> LoraSpec:
    """`--lora r=8,alpha=16,targets=q_proj+v_proj` as a checked spec (unknown keys name the closest)."""
    pairs = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--lora {text!r}: expected key=value pairs, e.g. r=8,alpha=16,targets=q_proj+v_proj")
        pairs[key.strip()] = value.strip()
    return LoraSpec.from_dict(pairs)


def add_lora(model, spec: LoraSpec):
    """The model with fresh adapters; every base weight frozen."""
    from peft import LoraConfig, get_peft_model

    targets = spec.targets.split("+")
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [t for t in targets if t not in present]
    if missing:
        raise ValueError(f"--lora targets {missing} are not modules of this model")
    config = LoraConfig(r=spec.r, lora_alpha=spec.alpha, target_modules=targets, lora_dropout=spec.dropout,
                        task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def is_lora(model) -> bool:
    return hasattr(model, "peft_config")


def save_model(model, out: Path, mode: str = "merged") -> None:
    """Saves a model (safetensors); an adapted one merged into a copy of its base, or the adapter alone."""
    if is_lora(model) and mode == "merged":
        model = copy.deepcopy(model).merge_and_unload()  # a copy: training may go on
    model.save_pretrained(out)
