"""The attacks (`train/attacks.py`) on an unlearned TOFU-style model, scored on half B of the forget
split: every other question of each author (real TOFU rows name no author: they come in blocks of
20 an author).

Relearning trains on half A's questions and answers, benign fine-tuning on as many retain rows.
Each attacked model is scored against the retain oracle's truth ratios on the same questions:
`<attack>/log10_forget_quality`, `<attack>/forget_truth_ratio` and, on generated data (whose rows
name their fact), `<attack>/forget_acc`; `robust/log10_forget_quality` is the worst of them. What
half A teaches about half B is read against two reference points, computed once per benchmark and
attack configuration (`reference`): the target under every attack (quantization should leave it
where it is) and the oracle under relearning (a model that never saw the forget authors still
learns half B a little from half A: the floor of "recovery").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ofmu_ray.cache import Prepared
from ofmu_ray.families.tofu.load import retain_split
from ofmu_ray.train.attacks import ATTACKS, AttackConfig, cached_reference, fine_tuned_lm, quantized_lm, run_attacks
from ofmu_ray.train.attacks import halves as _halves

if TYPE_CHECKING:
    import numpy as np

    from ofmu_ray.splits import Splits

def halves(rows: list[dict], share: float = 0.5) -> tuple[list[int], list[int]]:
    """(half A, half B) of a forget split as row indices: `share` of each author's questions."""
    return _halves([r.get("author") or str(i // 20) for i, r in enumerate(rows)], share)


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


def attack(model, tokenizer, data: Splits, split: str, oracle: dict, attacks: tuple[str, ...],
           cfg: AttackConfig) -> dict[str, float]:
    """Every attack of `attacks` on `model`, scored on half B of `split`.

    Args:
        oracle: the retain oracle's `TOFU_EVAL.json` on `split` (its per-question truth ratios).
    """
    import numpy as np

    rows = data[split]
    a, b = halves(rows, cfg.share)
    by_index = oracle["forget_truth_ratio"]["value_by_index"]
    oracle_b = np.array([by_index[str(i)]["score"] for i in b])
    half_b = [rows[i] for i in b]
    train = {"relearn": [rows[i] for i in a], "benign": data[retain_split(split)][: len(a)]}
    return run_attacks(model, attacks, cfg, score=lambda m: score_half(m, tokenizer, half_b, oracle_b),
                       fine_tune=lambda m, name, lr: fine_tuned_lm(m, tokenizer, train[name], lr, cfg),
                       quantize=quantized_lm, worst="log10_forget_quality", robust=("log10_forget_quality",))


def half_floor(rows: list[dict], share: float = 0.5) -> float:
    """The log10 forget-quality floor of half B: the reference point of the robust fronts."""
    from ofmu_ray.metrics import formulas as M

    return M.log10_fq_floor(len(halves(rows, share)[1]))


def reference(prepared: Prepared, split: str, attacks: tuple[str, ...], cfg: AttackConfig,
              data: Splits | None = None) -> dict:
    """The reference points, cached: the target under every attack (`target`) and the oracle under
    relearning (`oracle`)."""
    from ofmu_ray.families.base import load_model
    from ofmu_ray.families.tofu.oracle import cached_eval

    def compute() -> dict:
        splits = data or prepared.data()
        oracle_eval = cached_eval(prepared, f"oracle-{split}", split, splits)
        return {"target": attack(*load_model(prepared, "target"), splits, split, oracle_eval, ATTACKS, cfg),
                "oracle": attack(*load_model(prepared, f"oracle-{split}"), splits, split, oracle_eval,
                                 ("relearn",), cfg)}

    return cached_reference(prepared.root, split, attacks, cfg, compute)
