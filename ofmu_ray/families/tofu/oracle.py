"""Evaluating a prepared TOFU-style benchmark's models against the retain oracle's reference, which is
computed once and cached.

The oracle's (and the target's) `TOFU_EVAL.json` for a split is written under the prepared cache
folder (`eval/<model>-<split>/`, atomically, after the folder's manifest: see `cache`) the first time
it is needed; evaluating any other model reads it and never re-evaluates the oracle.
"""

from __future__ import annotations

import json
from pathlib import Path

from ofmu_ray.cache import Prepared, write_json
from ofmu_ray.errors import UsageError
from ofmu_ray.families.base import load_model, model_folder
from ofmu_ray.families.tofu.evaluate import evaluate_model, summarize
from ofmu_ray.families.tofu.load import forget_splits
from ofmu_ray.splits import Splits


def generation_budget(prepared: Prepared) -> int | None:
    """The ROUGE generations' `max_new_tokens` of a prepared benchmark: what `--bench tofu` was
    prepared with (OpenUnlearning's 200 by default), None (the longest gold answer + 4) on synth-tofu."""
    return prepared.sources.get("max_new_tokens")


def cached_eval(prepared: Prepared, model_name: str, split: str, data: Splits | None = None,
                dtype: str = "fp32") -> dict:
    """`TOFU_EVAL.json` of a prepared model (`target` or `oracle-<split>`) on `split`, cached.

    `data` saves re-reading the prepared splits when the caller has them already."""
    from ofmu_ray.models.factory import DTYPES

    weights = "" if DTYPES[dtype] == DTYPES["fp32"] else f"-{dtype}"  # evaluation never autocasts
    path = prepared.root / "eval" / f"{model_name}-{split}{weights}" / "TOFU_EVAL.json"
    if path.is_file():
        return json.loads(path.read_text())
    result = evaluate_model(*load_model(prepared, model_name, dtype), data or prepared.data(), split,
                            max_new_tokens=generation_budget(prepared))
    write_json(path, result)
    return result


def read_retain_logs(path: str | Path) -> dict:
    """An OpenUnlearning `TOFU_EVAL.json` of a retain model (`forget_truth_ratio` per question)."""
    try:
        log = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UsageError(f"--retain-logs {path}: cannot read it as JSON ({e})") from e
    if "forget_truth_ratio" not in log or "value_by_index" not in log.get("forget_truth_ratio", {}):
        raise UsageError(f"--retain-logs {path}: no per-question 'forget_truth_ratio' (is it a TOFU_EVAL.json?)")
    return log


def references(prepared: Prepared, split: str, data: Splits, retain_logs: str | Path | None = None,
               dtype: str = "fp32") -> tuple[dict, dict]:
    """(the oracle reference, the target's result) for `split`: cached, or a retain log (the user's,
    or the one the benchmark was prepared with)."""
    if split not in forget_splits(data):
        raise UsageError(f"unknown split {split!r}; this benchmark has: {', '.join(forget_splits(data))}")
    retain_logs = retain_logs or prepared.retain_logs(split)
    reference = (read_retain_logs(retain_logs) if retain_logs
                 else cached_eval(prepared, f"oracle-{split}", split, data, dtype))
    return reference, cached_eval(prepared, "target", split, data, dtype)


def evaluate_loaded(prepared: Prepared, split: str, model, tokenizer, data: Splits | None = None,
                    dtype: str = "fp32") -> tuple[dict, dict]:
    """Evaluates a model already in memory (a training worker's) against the prepared references.

    Returns:
        (summary metrics, the model's `TOFU_EVAL.json` content).
    """
    data = data or prepared.data()
    reference, target = references(prepared, split, data, None, dtype)
    result = evaluate_model(model, tokenizer, data, split, max_new_tokens=generation_budget(prepared))
    return summarize(result, reference, target), result


def evaluate(prepared: Prepared, split: str, model: str, retain_logs: str | Path | None = None,
             dtype: str = "fp32") -> tuple[dict, dict]:
    """Evaluates `model` (`target`, `oracle` or a model folder) on `split` of a prepared benchmark.

    Returns:
        (summary metrics, the model's `TOFU_EVAL.json` content).

    Raises:
        UsageError: an unknown split, a path that is not a model folder, unreadable retain logs.
    """
    if model not in ("target", "oracle"):
        model_folder(model)  # before the references are computed and cached
    data = prepared.data()
    reference, target = references(prepared, split, data, retain_logs, dtype)
    if model == "target":
        result = target
    elif model == "oracle":
        result = cached_eval(prepared, f"oracle-{split}", split, data, dtype)
    else:
        result = evaluate_model(*load_model(prepared, model, dtype), data, split,
                                max_new_tokens=generation_budget(prepared))
    return summarize(result, reference, target), result
