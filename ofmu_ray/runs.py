"""One unlearning run end to end, in the order it happens: prepare the benchmark, check the run's
settings against its family, build the `RunSpec`, compute the references the run is measured
against, run it (in this process or on Ray Train), log it to MLflow.

`ofmu-ray unlearn` is these steps in a row; a sweep prepares and builds one `RunSpec` per method
here, then varies its hyper-parameters per trial; `benchmarks/study.py` runs its ablations here.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

from ofmu_ray.cache import Prepared
from ofmu_ray.config import check_budget
from ofmu_ray.errors import UsageError
from ofmu_ray.families import family_of
from ofmu_ray.families.base import PrepareRequest
from ofmu_ray.methods import build_config, check_applies
from ofmu_ray.tracking.mlflow_log import log_run
from ofmu_ray.train import launch
from ofmu_ray.train.spec import RunSpec


def prepare(request: PrepareRequest, *, rebuild: bool = False, progress: bool = True) -> Prepared:
    """The benchmark the request names, prepared by its family (trained once, cached, checked)."""
    return family_of(request.bench).prepare(request, rebuild=rebuild, progress=progress)


def check_settings(bench: str, method: str, overrides: dict | None = None, keep_best: str = ""):
    """The method's config, checked before anything is prepared: it builds, the method applies to the
    bench's models, and `keep_best` is a metric its family's evaluation reports.

    Raises:
        UsageError: naming the field, method or metric and what is allowed.
    """
    family = family_of(bench)
    try:
        cfg = build_config(method, overrides)
        check_applies([method], family.modality, bench)
    except ValueError as e:
        raise UsageError(str(e)) from e
    if keep_best and keep_best not in family.keep_best:
        raise UsageError(f"keep_best {keep_best!r}: {family.label} benchmarks evaluate "
                         f"{', '.join(family.keep_best)}")
    return cfg


def budget_steps(prepared: Prepared, split: str, batch_size: int, steps: int | None = None,
                 epochs: float | None = None) -> int:
    """The forget batches of a run: `steps` as given, or `epochs` passes over the forget split,
    ceil(epochs * rows / batch_size); with neither, the family's default budget (TOFU-style: 10
    epochs, OpenUnlearning's; others: `default_steps`).

    Example:
        budget_steps(prepared, "forget10", 16, epochs=10)  # small's 108 forget10 rows: 68 batches
    """
    check_budget(steps, epochs)
    family = family_of(prepared.bench)
    if steps is None and epochs is None:
        epochs = family.default_epochs
        if epochs is None:
            return family.default_steps
    if epochs is None:
        return steps
    return math.ceil(epochs * family.forget_rows(prepared, split) / batch_size)


def run_spec(prepared: Prepared, *, split: str, method: str, overrides: dict | None = None, steps: int,
             batch_size: int = 16, seed: int = 0, evaluate: bool = True, eval_every: int = 0,
             checkpoint_every: int = 0, keep_best: str = "", lora: dict | None = None, lora_save: str = "merged",
             dtype: str = "fp32", attacks: tuple[str, ...] = (), attack_settings: dict | None = None) -> RunSpec:
    """The one place a `RunSpec` is made: a run of `method` on `split` of a prepared benchmark.

    Raises:
        UsageError: settings the family or the run cannot take (see `check_settings`, `RunSpec`).

    Example:
        run_spec(prepared, split="forget10", method="npo", overrides={"beta": "0.2"}, steps=20)
    """
    check_settings(prepared.bench, method, overrides, keep_best)
    family_of(prepared.bench).check_attacks(attacks, attack_settings)
    try:
        return RunSpec(prepared_root=str(prepared.root), split=split, method=method, overrides=dict(overrides or {}),
                       steps=steps, batch_size=batch_size, seed=seed, evaluate=evaluate, eval_every=eval_every,
                       checkpoint_every=checkpoint_every, keep_best=keep_best, lora=dict(lora or {}),
                       lora_save=lora_save, dtype=dtype, attacks=",".join(attacks),
                       attack_settings=dict(attack_settings or {}))
    except ValueError as e:
        raise UsageError(str(e)) from e


def run(prepared: Prepared, spec: RunSpec, *, workers: int = 1, cpus_per_worker: float | None = None,
        gpus_per_worker: float = 0.0, max_failures: int = 0, storage: str | Path | None = None,
        name: str = "unlearn") -> tuple[dict, Path]:
    """Runs `spec`: its references first, here (not in a worker), then the loop in this process or,
    with several workers or `max_failures`, on Ray Train (started here if it is not running).

    Args:
        cpus_per_worker: default 1, or 0.99 with several workers (leaving room for a trial's driver).
        storage, name: where the run's checkpoints go (`train.launch.run`).

    Returns:
        (the run's final metrics, its final checkpoint folder: the unlearned model and its results).
    """
    family = family_of(prepared.bench)
    if spec.evaluate:  # checks the split, and caches what every evaluation compares with
        family.references(prepared, spec.split, spec.dtype, tuple(filter(None, spec.attacks.split(","))),
                          spec.attack_settings)
    if launch.on_ray_train(workers, max_failures):
        launch.start_ray()
    cpus = cpus_per_worker or (1.0 if workers == 1 else 0.99)
    return launch.run(spec, family.make_task, workers, cpus, gpus_per_worker, storage, name, max_failures)


def log(prepared: Prepared, spec: RunSpec, metrics: dict, folder: Path, *, tags: dict[str, str],
        tracking_uri: str | None = None) -> str:
    """Logs a finished run as one MLflow run of the experiment `<bench>/<split>`: the method's full
    configuration and the run's settings as params, the final metrics, each step's logs, the
    evaluation files; returns its id."""
    family = family_of(prepared.bench)
    cfg = build_config(spec.method, spec.overrides)
    params = {f"method.{k}": v for k, v in asdict(cfg).items()}
    params |= {"steps": spec.steps, "batch_size": spec.batch_size, "seed": spec.seed, "dtype": spec.dtype}
    params |= {f"lora.{k}": v for k, v in spec.lora.items()}
    history = json.loads((folder / "history.json").read_text())
    return log_run(f"{prepared.bench}/{spec.split}", spec.method, params, metrics, tags, tracking_uri, history,
                   folder, (*family.result_files, "history.json"))
