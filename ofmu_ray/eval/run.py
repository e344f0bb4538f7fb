"""Evaluating a prepared benchmark's models, with the oracle reference computed once and cached.

The oracle's (and the target's) `TOFU_EVAL.json` for a split is written under the prepared cache
folder (`eval/<model>-<split>/`) the first time it is needed; evaluating any other model reads it
and never re-evaluates the oracle.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from ofmu_ray.data import TofuData
from ofmu_ray.eval.tofu import evaluate_model, summarize
from ofmu_ray.prepare import Prepared, UsageError


def write_json(path: Path, content: dict) -> None:
    """Writes atomically: a reader never sees half a file, a crash never leaves one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        json.dump(content, f)
    os.replace(tmp, path)


def load_model(prepared: Prepared, name_or_path: str, dtype: str = "fp32"):
    """(model, tokenizer) of a prepared model (`target`, `oracle-<split>`) or a model folder, in the
    benchmark's prompt format."""
    from ofmu_ray.models import load_causal_lm, load_tokenizer

    where = name_or_path if Path(name_or_path).is_dir() else prepared.model_dir(name_or_path)
    return load_causal_lm(where, dtype), load_tokenizer(where, prepared.prompt)


def model_folder(path: str) -> str:
    """`--evaluate PATH`, checked to be a model folder (a safetensors model or a LoRA adapter).

    Raises:
        UsageError: not a folder, or a folder without a model's config.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise UsageError(f"--evaluate {path}: not 'target', 'oracle' or a model folder")
    if not ((folder / "config.json").is_file() or (folder / "adapter_config.json").is_file()):
        raise UsageError(f"--evaluate {path}: not a model folder (no config.json or adapter_config.json)")
    return path


def cached_eval(prepared: Prepared, model_name: str, split: str, data: TofuData | None = None,
                dtype: str = "fp32") -> dict:
    """`TOFU_EVAL.json` of a prepared model (`target` or `oracle-<split>`) on `split`, cached.

    `data` saves re-reading the prepared splits when the caller has them already."""
    from ofmu_ray.models.factory import DTYPES

    weights = "" if DTYPES[dtype] == DTYPES["fp32"] else f"-{dtype}"  # evaluation never autocasts
    path = prepared.root / "eval" / f"{model_name}-{split}{weights}" / "TOFU_EVAL.json"
    if path.is_file():
        return json.loads(path.read_text())
    result = evaluate_model(*load_model(prepared, model_name, dtype), data or prepared.data(), split)
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


def references(prepared: Prepared, split: str, data: TofuData, retain_logs: str | Path | None = None,
               dtype: str = "fp32") -> tuple[dict, dict]:
    """(the oracle reference, the target's result) for `split`: cached, or a retain log (the user's,
    or the one the benchmark was prepared with)."""
    if split not in data.forget_splits:
        raise UsageError(f"unknown split {split!r}; this benchmark has: {', '.join(data.forget_splits)}")
    retain_logs = retain_logs or prepared.retain_logs(split)
    reference = (read_retain_logs(retain_logs) if retain_logs
                 else cached_eval(prepared, f"oracle-{split}", split, data, dtype))
    return reference, cached_eval(prepared, "target", split, data, dtype)


def evaluate_loaded(prepared: Prepared, split: str, model, tokenizer, data: TofuData | None = None,
                    dtype: str = "fp32") -> tuple[dict, dict]:
    """Evaluates a model already in memory (a training worker's) against the prepared references.

    Returns:
        (summary metrics, the model's `TOFU_EVAL.json` content).
    """
    data = data or prepared.data()
    reference, target = references(prepared, split, data, None, dtype)
    result = evaluate_model(model, tokenizer, data, split)
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
        result = evaluate_model(*load_model(prepared, model, dtype), data, split)
    return summarize(result, reference, target), result
