"""Does it stay forgotten? Attacks on an unlearned TOFU-style model, each scored on the half of the
forget split that no attack trains on.

Knowledge that a method only suppresses comes back when the model is fine-tuned on a few forget
examples or on unrelated text (Hu et al., arXiv 2406.13356; Łucki et al., arXiv 2409.18025), or
when its weights are quantized (Zhang et al., ICLR 2025). The forget split is cut in two fixed
halves: every other question of each author (`halves`). The attacks:

    relearn  a copy fine-tuned on half A at each learning rate of a grid; the worst case counts
             (the lowest forget quality on half B), as an attacker would choose
    benign   the same on as many retain rows: fine-tuning on unrelated data
    quant8   the weights quantized to int8 (bitsandbytes, LLM.int8())
    quant4   the weights quantized to 4-bit NF4 (bitsandbytes), as the papers do

Each is scored on half B against the retain oracle's truth ratios on the same questions:
`<attack>/log10_forget_quality`, `<attack>/forget_truth_ratio` and, on generated data (whose rows
name their fact), `<attack>/forget_acc`. `none/...` is the model itself on half B, and
`robust/log10_forget_quality` the worst over `none` and the attacks: what is left of forgetting
once the attacks have had their go. What half A teaches about half B is read against two
reference points, computed once per benchmark and attack configuration, cached (`reference`): the target under
every attack (quantization should leave it where it is) and the oracle under relearning (a model
that never saw the forget authors still learns half B a little from half A: the floor of
"recovery").
"""

from __future__ import annotations

import copy
import json
import math
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from ofmu_ray.cache import Prepared, write_json
from ofmu_ray.config import FinetuneConfig
from ofmu_ray.families.tofu.load import retain_split

if TYPE_CHECKING:
    import numpy as np

    from ofmu_ray.splits import Splits

ATTACKS = ("relearn", "benign", "quant8", "quant4")
ROBUST = "robust/"  # the prefix of the worst case over the attacks
ROBUST_KEY = "/robust"  # the split key of its fronts (`Objectives.names`)


@dataclass(frozen=True)
class AttackConfig:
    """How hard the attacks push (the defaults: OpenUnlearning's relearning meta-evaluation runs one
    epoch at one learning rate; an attacker that picks the worst of three, as the UNDO release
    sweeps, over more epochs, is the stronger test)."""

    epochs: int = 5  # passes over half A (benign: as many retain rows)
    lrs: tuple[float, ...] = (1e-4, 3e-4, 1e-3)  # the attacker's grid, for the embedded tiny models
    batch_size: int = 8
    share: float = 0.5  # the part of each author's forget questions the attacker trains on

    @classmethod
    def parse(cls, settings: dict[str, str]) -> AttackConfig:
        """From `--attack-set` pairs (`lrs` joined by '+'), checked.

        Raises:
            UsageError: an unknown key or a value out of range.
        """
        from ofmu_ray.errors import UsageError

        unknown = set(settings) - {"epochs", "lrs", "batch_size", "share"}
        if unknown:
            raise UsageError(f"--attack-set: unknown key(s) {', '.join(sorted(unknown))}; "
                             "keys: epochs, lrs, batch_size, share")
        try:
            values = {k: float(v) if k == "share" else int(v) for k, v in settings.items() if k != "lrs"}
            if "lrs" in settings:
                values["lrs"] = tuple(float(x) for x in settings["lrs"].split("+"))
        except ValueError as e:
            raise UsageError(f"--attack-set: {e}") from e
        cfg = cls(**values)
        if cfg.epochs < 1 or cfg.batch_size < 1 or not 0 < cfg.share < 1 or not cfg.lrs or min(cfg.lrs) <= 0:
            raise UsageError(f"--attack-set: need epochs, batch_size >= 1, 0 < share < 1 and lrs > 0; got {cfg}")
        return cfg


def halves(rows: list[dict], share: float = 0.5) -> tuple[list[int], list[int]]:
    """(half A, half B) as row indices: of each author's questions in order, `share` of them spread
    evenly (every other one at 0.5) go to A. Real TOFU rows name no author: they come in blocks of
    20 per author."""
    by_author: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_author.setdefault(r.get("author") or str(i // 20), []).append(i)
    a, b = [], []
    for indices in by_author.values():
        for k, i in enumerate(indices):
            (a if math.floor((k + 1) * share) > math.floor(k * share) else b).append(i)
    return sorted(a), sorted(b)


def score_half(model, tokenizer, rows: list[dict], oracle_ratios: np.ndarray) -> dict[str, float]:
    """The forget metrics of `model` on half B (`rows`), against the oracle's ratios there."""

    from ofmu_ray.families.tofu.evaluate import log10_p_value, qa_scores
    from ofmu_ray.metrics import formulas as M
    from ofmu_ray.metrics.accuracy import answer_accuracy

    ratios = qa_scores(model, tokenizer, rows, "paraphrased_answer").ratios
    out = {"log10_forget_quality": log10_p_value(M.ks_forget_quality(ratios, oracle_ratios)),
           "forget_truth_ratio": M.forget_truth_ratio(ratios)}
    if all("value" in r for r in rows):
        out["forget_acc"] = answer_accuracy(model, tokenizer, rows)
    return out


def _fine_tuned(model, tokenizer, rows: list[dict], lr: float, cfg: AttackConfig):
    from ofmu_ray.train.finetune import finetune

    attacked = copy.deepcopy(model)
    finetune(attacked, tokenizer, rows, FinetuneConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=lr,
                                                       warmup=0.1))
    return attacked


def _quantized(model, bits: int):
    """`model` reloaded with its weights quantized by bitsandbytes (CPU works as of 0.50)."""
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    config = (BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32)
              if bits == 4 else BitsAndBytesConfig(load_in_8bit=True))
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)  # safetensors
        return AutoModelForCausalLM.from_pretrained(tmp, quantization_config=config, device_map="cpu")


def attack(model, tokenizer, data: Splits, split: str, oracle: dict, attacks: tuple[str, ...],
           cfg: AttackConfig = AttackConfig()) -> dict[str, float]:
    """Every attack of `attacks` on `model`, scored on half B of `split`; the metrics named as the
    module says, and `attack_seconds`.

    Args:
        oracle: the retain oracle's `TOFU_EVAL.json` on `split` (its per-question truth ratios).
    """
    import numpy as np

    start = time.perf_counter()
    rows = data[split]
    a, b = halves(rows, cfg.share)
    by_index = oracle["forget_truth_ratio"]["value_by_index"]
    oracle_b = np.array([by_index[str(i)]["score"] for i in b])
    half_a, half_b = [rows[i] for i in a], [rows[i] for i in b]
    out = {f"none/{k}": v for k, v in score_half(model, tokenizer, half_b, oracle_b).items()}
    for name in attacks:
        if name in ("relearn", "benign"):
            train = half_a if name == "relearn" else data[retain_split(split)][: len(half_a)]
            tries = [score_half(_fine_tuned(model, tokenizer, train, lr, cfg), tokenizer, half_b, oracle_b)
                     for lr in cfg.lrs]
            worst = min(range(len(tries)), key=lambda i: tries[i]["log10_forget_quality"])
            out |= {f"{name}/{k}": v for k, v in tries[worst].items()} | {f"{name}/lr": cfg.lrs[worst]}
        else:
            out |= {f"{name}/{k}": v
                    for k, v in score_half(_quantized(model, int(name[-1])), tokenizer, half_b, oracle_b).items()}
    out[ROBUST + "log10_forget_quality"] = min(out[f"{n}/log10_forget_quality"] for n in ("none", *attacks))
    return out | {"attack_seconds": time.perf_counter() - start}


def half_floor(rows: list[dict], share: float = AttackConfig.share) -> float:
    """The log10 forget-quality floor of half B: the reference point of the robust fronts."""
    from ofmu_ray.metrics import formulas as M

    return M.log10_fq_floor(len(halves(rows, share)[1]))


def reference(prepared: Prepared, split: str, attacks: tuple[str, ...], data: Splits | None = None,
              cfg: AttackConfig = AttackConfig()) -> dict:
    """The reference points, cached under `eval/attacks-<split>-<config key>/`: the target under
    every attack (`target`) and the oracle under relearning (`oracle`)."""
    from ofmu_ray.cache import cache_key
    from ofmu_ray.families.base import load_model
    from ofmu_ray.families.tofu.oracle import cached_eval

    path = prepared.root / "eval" / f"attacks-{split}-{cache_key(asdict(cfg))}" / "ATTACKS.json"
    cached = json.loads(path.read_text()) if path.is_file() else {}
    if set(attacks) <= set(cached.get("attacks", [])):
        return cached
    data = data or prepared.data()
    oracle_eval = cached_eval(prepared, f"oracle-{split}", split, data)
    target = attack(*load_model(prepared, "target"), data, split, oracle_eval, ATTACKS, cfg)
    oracle = attack(*load_model(prepared, f"oracle-{split}"), data, split, oracle_eval, ("relearn",), cfg)
    result = {"attacks": list(ATTACKS), "target": target, "oracle": oracle}
    write_json(path, result)
    return result

