"""`prepare_bench`: any benchmark prepared by its own `prepare_*`, for the commands that take any.

Kept out of `prepare.py`: that file's bytes are part of the synth-tofu cache key, and dispatch is
no reason to retrain a cached model.
"""

from __future__ import annotations

from pathlib import Path

from ofmu_ray.data import family
from ofmu_ray.prepare import Prepared, prepare


def prepare_bench(bench: str, split: str, profile: str = "tiny", model: str | None = None, data: str | None = None,
                  oracle: str | None = None, retain_logs: str | None = None, prompt: str = "auto",
                  cache_dir: str | Path | None = None) -> Prepared:
    """Any benchmark, prepared by its family's `prepare_*` (the ones that train do so once, cached).

    Raises:
        UsageError: an argument that benchmark cannot take (unknown profile, model, split, data...).
    """
    if family(bench) == "image":
        from ofmu_ray.prepare_vision import prepare_vision

        return prepare_vision(bench, split, cache_dir, data)
    if family(bench) == "mcq":
        from ofmu_ray.prepare_wmdp import prepare_wmdp

        return prepare_wmdp(bench, split, profile, model, data, cache_dir)
    if bench == "tofu":
        from ofmu_ray.prepare_tofu import prepare_tofu

        return prepare_tofu(data, split, model, oracle, retain_logs, prompt, cache_dir)
    return prepare(bench, profile, cache_dir, model=model)
