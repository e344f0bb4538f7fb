"""The attacks (`train/attacks.py`) on an unlearned image classifier, scored on half B of the forget
images: every other forget image of each class.

Relearning trains a copy with the protocol's SGD (`train_classifier`) on half A's images and labels,
benign fine-tuning on as many retain images; quantization puts every weight through bitsandbytes'
NF4 or int8 quantizer (`quantized_weights`). Metrics on half B: `ua` (100 - accuracy there), and
the worst case `robust/ua`; and `robust/oracle_closeness`, the model's closeness to the retrained
oracle (`evaluate.summarize_vision`) with its `ua` gap taken on half B under each attack, against
the oracle's `ua` there, and its other gaps (`mia_efficacy`, `ra`, `ta`) those of the model
itself: the worst over the attacks. The reference points (`reference`): the target under every
attack and the oracle under relearning (it learns half B a little from more images of the same
classes: the floor of "recovery").
"""

from __future__ import annotations

from ofmu_ray.cache import Prepared
from ofmu_ray.families.vision.evaluate import GAP_METRICS, true_class_confidence
from ofmu_ray.families.vision.load import VisionData, VisionSplits
from ofmu_ray.train.attacks import (
    ATTACKS,
    AttackConfig,
    attacker_copy,
    cached_reference,
    halves,
    quantized_weights,
    run_attacks,
    spread,
)


def attack(model, data: VisionData, splits: VisionSplits, gaps: dict[str, float], oracle_ua: float | None,
           attacks: tuple[str, ...], cfg: AttackConfig) -> dict[str, float]:
    """Every attack of `attacks` on `model`, scored on half B of the forget images.

    Args:
        gaps: the model's own `gap/<metric>` to the oracle (its `summarize_vision`).
        oracle_ua: the oracle's `ua` on half B (None while the oracle's own reference is computed).
    """
    from ofmu_ray.train.classifier import train_classifier

    forget = splits.forget
    a, b = halves(data.train_y[forget].tolist(), cfg.share)
    half_a, half_b = forget[a], forget[b]
    train = {"relearn": half_a, "benign": spread(splits.retain, len(a))}
    others = [gaps[f"gap/{k}"] for k in GAP_METRICS if k != "ua"] if oracle_ua is not None else []

    def score(m) -> dict[str, float]:
        ua = float(100 * (1 - true_class_confidence(m, data.train_x[half_b], data.train_y[half_b])[1].mean()))
        out = {"ua": ua}
        if oracle_ua is not None:
            out["oracle_closeness"] = 100 - (abs(ua - oracle_ua) + sum(others)) / len(GAP_METRICS)
        return out

    def fine_tune(m, name: str, lr: float):
        attacked = attacker_copy(m)
        rows = train[name]
        train_classifier(attacked, data.train_x[rows], data.train_y[rows], cfg.epochs, lr,
                         min(cfg.batch_size, len(rows)))
        return attacked

    return run_attacks(model, attacks, cfg, score=score, fine_tune=fine_tune, quantize=quantized_weights,
                       worst="ua", robust=("ua", "oracle_closeness") if oracle_ua is not None else ("ua",))


def reference(prepared: Prepared, attacks: tuple[str, ...], cfg: AttackConfig) -> dict:
    """The reference points, cached: the oracle under relearning (`oracle`; its `none/ua` is what
    every attacked `ua` is compared with) and the target under every attack (`target`)."""
    from ofmu_ray.families.vision.evaluate import summarize_vision
    from ofmu_ray.families.vision.load import vision_of
    from ofmu_ray.models.vision import load_classifier

    report = prepared.report

    def compute() -> dict:
        data, splits = vision_of(prepared)
        oracle = attack(load_classifier(prepared.model_dir(f"oracle-{report['split']}")), data, splits, {}, None,
                        ("relearn",), cfg)
        gaps = summarize_vision(report["metrics"]["target"], report["metrics"]["oracle"])
        target = attack(load_classifier(prepared.model_dir("target")), data, splits, gaps, oracle["none/ua"],
                        ATTACKS, cfg)
        return {"oracle": oracle, "target": target}

    return cached_reference(prepared.root, report["split"], attacks, cfg, compute)
