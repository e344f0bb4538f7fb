"""Does it stay forgotten? The mechanics of the attacks on an unlearned model, the same for every
family; each family scores them its own way (`families/<name>/attacks.py`).

Knowledge that a method only suppresses comes back when the model is fine-tuned on a few forget
examples or on unrelated data (Hu et al., arXiv 2406.13356; Łucki et al., arXiv 2409.18025), or
when its weights are quantized (Zhang et al., ICLR 2025). The forget split is cut in two fixed
halves (`halves`); every attack is scored on half B, which none trains on:

    relearn  a copy fine-tuned on half A at each learning rate of a grid; the worst case counts,
             as an attacker would choose it
    benign   the same on as many retain examples: fine-tuning on unrelated data
    quant8   the weights quantized to int8 (bitsandbytes)
    quant4   the weights quantized to 4-bit NF4 (bitsandbytes), as the papers do

`none/<metric>` is the model itself on half B, `<attack>/<metric>` the attacked model there, and
`robust/<metric>` the worst over `none` and the attacks: what is left of forgetting once the attacks
have had their go.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

ATTACKS = ("relearn", "benign", "quant8", "quant4")
ROBUST = "robust/"  # the prefix of the worst case over the attacks
ROBUST_KEY = "/robust"  # the split key of its fronts (`Objectives.names`)


@dataclass(frozen=True)
class AttackConfig:
    """How hard the attacks push. Each family has its defaults (`Family.attack_defaults`): the
    OpenUnlearning relearning meta-evaluation runs one epoch at one learning rate; an attacker that
    picks the worst of three, as the UNDO release sweeps, over more epochs, is the stronger test."""

    epochs: int = 5  # passes over half A (benign: as many retain examples)
    lrs: tuple[float, ...] = (1e-4, 3e-4, 1e-3)  # the attacker's grid: the embedded tiny language models'
    batch_size: int = 8
    share: float = 0.5  # the part of each group's forget examples (an author's, a class's) trained on

    def parse(self, settings: dict[str, str]) -> AttackConfig:
        """These defaults with `--attack-set` pairs (`lrs` joined by '+') applied, checked.

        Raises:
            UsageError: an unknown key or a value out of range.
        """
        from ofmu_ray.errors import UsageError

        keys = [f.name for f in fields(self)]
        unknown = set(settings) - set(keys)
        if unknown:
            raise UsageError(f"--attack-set: unknown key(s) {', '.join(sorted(unknown))}; keys: {', '.join(keys)}")
        try:
            values = {k: float(v) if k == "share" else int(v) for k, v in settings.items() if k != "lrs"}
            if "lrs" in settings:
                values["lrs"] = tuple(float(x) for x in settings["lrs"].split("+"))
        except ValueError as e:
            raise UsageError(f"--attack-set: {e}") from e
        cfg = replace(self, **values)
        if cfg.epochs < 1 or cfg.batch_size < 1 or not 0 < cfg.share < 1 or not cfg.lrs or min(cfg.lrs) <= 0:
            raise UsageError(f"--attack-set: need epochs, batch_size >= 1, 0 < share < 1 and lrs > 0; got {cfg}")
        return cfg


def halves(groups: Sequence[Hashable], share: float = 0.5) -> tuple[list[int], list[int]]:
    """(half A, half B) as indices into `groups` (each forget example's author, entity or class): of
    each group's examples in order, `share` of them spread evenly (every other one at 0.5) go to A."""
    by_group: dict[Hashable, list[int]] = {}
    for i, group in enumerate(groups):
        by_group.setdefault(group, []).append(i)
    a, b = [], []
    for indices in by_group.values():
        for k, i in enumerate(indices):
            (a if math.floor((k + 1) * share) > math.floor(k * share) else b).append(i)
    return sorted(a), sorted(b)


def spread(items: Sequence, n: int) -> Sequence:
    """`n` of `items` (at most), spread evenly over them: the benign attack's retain examples, drawn
    from the whole retain set rather than its first rows."""
    return items[:: max(1, len(items) // n)][:n]


def run_attacks(model, attacks: Sequence[str], cfg: AttackConfig, *, score: Callable[[Any], dict[str, float]],
                fine_tune: Callable[[Any, str, float], Any], quantize: Callable[[Any, int], Any],
                worst: str, robust: Sequence[str]) -> dict[str, float]:
    """Every attack of `attacks` on `model`; the metrics named as the module says, and `attack_seconds`.

    Args:
        score: a model's forget metrics on half B (higher: more forgotten).
        fine_tune: (model, "relearn" or "benign", learning rate) -> a fine-tuned copy.
        quantize: (model, bits) -> a quantized copy.
        worst: the metric by which the attacker picks its learning rate (the lowest wins).
        robust: the metrics whose worst case over `none` and the attacks is `robust/<metric>`.
    """
    start = time.perf_counter()
    out = {f"none/{k}": v for k, v in score(model).items()}
    for name in attacks:
        if name in ("relearn", "benign"):
            tries = [score(fine_tune(model, name, lr)) for lr in cfg.lrs]
            pick = min(range(len(tries)), key=lambda i: tries[i][worst])
            out |= {f"{name}/{k}": v for k, v in tries[pick].items()} | {f"{name}/lr": cfg.lrs[pick]}
        else:
            out |= {f"{name}/{k}": v for k, v in score(quantize(model, int(name.removeprefix("quant")))).items()}
    return out | worst_case(out, attacks, robust) | {"attack_seconds": time.perf_counter() - start}


def worst_case(scores: dict[str, float], attacks: Sequence[str], metrics: Sequence[str]) -> dict[str, float]:
    """`robust/<metric>`: each of `metrics` at its worst (lowest) over no attack and `attacks`, from the
    `<attack>/<metric>` scores `run_attacks` writes."""
    return {ROBUST + m: min(scores[f"{n}/{m}"] for n in ("none", *attacks)) for m in metrics}


def attacker_copy(model):
    """A copy of the unlearned model as an attacker holds it: LoRA adapters merged into the weights,
    every weight trainable (RMU, for one, leaves all but three layers frozen)."""
    from ofmu_ray.models.lora import is_lora

    attacked = copy.deepcopy(model)
    if is_lora(attacked):
        attacked = attacked.merge_and_unload()
    return attacked.requires_grad_(True)


def fine_tuned_lm(model, tokenizer, rows: list[dict], lr: float, cfg: AttackConfig):
    """A copy of a causal LM fine-tuned on `rows` (QA or `text` rows) at `lr`."""
    from ofmu_ray.config import FinetuneConfig
    from ofmu_ray.train.finetune import finetune

    attacked = attacker_copy(model)
    finetune(attacked, tokenizer, rows, FinetuneConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=lr,
                                                       warmup=0.1))
    return attacked


def quantized_lm(model, bits: int):
    """A causal LM reloaded with its weights quantized by bitsandbytes (int8 LLM.int8() or 4-bit NF4;
    CPU works as of 0.50)."""
    import tempfile
    import warnings

    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from ofmu_ray.models.lora import save_model

    # once per forward pass of every int8 layer, about the fp16 cast that LLM.int8() is
    warnings.filterwarnings("ignore", message="MatMul8bitLt: inputs will be cast")
    config = (BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32)
              if bits == 4 else BitsAndBytesConfig(load_in_8bit=True))
    with tempfile.TemporaryDirectory() as tmp:
        save_model(model, Path(tmp))  # safetensors; a LoRA model merged
        return AutoModelForCausalLM.from_pretrained(tmp, quantization_config=config, device_map="cpu")


def quantized_weights(model, bits: int):
    """A copy of any module (an image classifier) whose Linear and Conv2d weights went through
    bitsandbytes' own quantizers and back: NF4 in blocks of 64 (what `Linear4bit` stores) or int8
    with one absmax scale per output row (what `Linear8bitLt` stores). bitsandbytes has no
    quantized convolution, so the arithmetic stays fp32: the weights carry the quantization error,
    which is what brings suppressed knowledge back."""
    import bitsandbytes.functional as F
    import torch

    quantized = attacker_copy(model)
    with torch.no_grad():
        for layer in quantized.modules():
            if isinstance(layer, torch.nn.Linear | torch.nn.Conv2d):
                w = layer.weight
                if bits == 4:
                    packed, state = F.quantize_4bit(w.data.contiguous(), blocksize=64, quant_type="nf4")
                    w.copy_(F.dequantize_4bit(packed, state).reshape(w.shape))
                else:
                    rows, scales, _ = F.int8_vectorwise_quant(w.data.reshape(len(w), -1).contiguous())
                    w.copy_(F.int8_vectorwise_dequant(rows, scales).reshape(w.shape))
    return quantized


def cached_reference(root: Path, split: str, attacks: Sequence[str], cfg: AttackConfig,
                     compute: Callable[[], dict]) -> dict:
    """The reference points of a prepared benchmark (`compute()`: the target under every attack and
    the oracle under relearning), cached under `<root>/eval/attacks-<split>-<config key>/`."""
    from ofmu_ray.cache import cache_key, write_json

    path = root / "eval" / f"attacks-{split}-{cache_key(asdict(cfg))}" / "ATTACKS.json"
    cached = json.loads(path.read_text()) if path.is_file() else {}
    if set(attacks) <= set(cached.get("attacks", [])):
        return cached
    result = {"attacks": list(ATTACKS)} | compute()
    write_json(path, result)
    return result
