"""The Ray Tune + Optuna glue of a sweep: one Tune experiment per method, each trial one unlearning run.

A trial is a plain function of its sampled hyper-parameters (`trial`) that reports one dict; what
every trial of a method shares travels with it as a `TrialContext`. Multi-objective Optuna samplers
propose the points; the scheduler stays FIFO (schedulers that stop trials early do not handle two
objectives).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ofmu_ray.train import launch
from ofmu_ray.train.spec import RunSpec
from ofmu_ray.tune.config import SweepConfig
from ofmu_ray.tune.spaces import FIXED, Dimension, searched_dims

NOT_HYPER_PARAMETERS = ("seed", "source")  # what a trial's configuration holds besides the method's
# How Ray words an OutOfMemoryError: Tune hands back a killed trial's error as an exception or as its text
MEMORY_KILL = "were killed due to the node running low on memory"


@dataclass(frozen=True)
class TrialContext:
    """What every trial of one method's Tune experiment shares; Tune ships it to each trial once."""

    spec: RunSpec  # the method's run with its defaults: a trial sets `overrides` and `seed`
    make_task: Callable  # the family's `make_task`, passed on to the run's workers
    workers: int
    cpus_per_worker: float
    gpus_per_worker: float
    max_failures: int
    objectives: tuple[str, str]  # what the trial reports for Optuna to maximise
    storage: str  # where the trials' runs keep their checkpoints


class SweepInterrupted(RuntimeError):
    """Tune stopped before every trial ended (Ctrl-C): the sweep can be resumed."""


class TrialOutOfMemory(SweepInterrupted):
    """Ray's memory monitor killed a trial's process: the node cannot hold the trials at once. The
    trials that ended are recorded, so the sweep can be resumed with less at a time."""


def trial(config: dict, context: TrialContext) -> None:
    """One Tune trial: one unlearning run with the sampled hyper-parameters, then one report."""
    import ray
    import ray.tune

    began = time.perf_counter()
    trial_id = ray.tune.get_context().get_trial_id()
    point = config.get("point", config)  # seed re-runs pass a whole configuration
    overrides = {k: v for k, v in point.items() if k not in NOT_HYPER_PARAMETERS}
    spec = replace(context.spec, overrides=overrides, seed=point.get("seed", 0))
    metrics, folder = launch.run(spec, context.make_task, context.workers, context.cpus_per_worker,
                                 context.gpus_per_worker, storage=context.storage, name=trial_id,
                                 max_failures=context.max_failures)
    report = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
    report |= {"budget": spec.steps, "trial_seconds": time.perf_counter() - began}  # the function's own wall time
    for key in context.objectives:  # Optuna leaves a trial with a NaN objective RUNNING forever
        if not math.isfinite(report.get(key, math.nan)):
            report[key] = -1e9
    # where the trial ran (a string: Tune keeps it, MLflow gets it as the tag ray.node_id)
    ray.tune.report(report | {"checkpoint_dir": str(folder), "node_id": ray.get_runtime_context().get_node_id()})


def fit(cfg: SweepConfig, name: str, searcher, num_samples: int, param_space: dict, context: TrialContext,
        callback, root: Path, resume: bool, expected: int) -> None:
    """Runs (or resumes) one Tune experiment of `expected` trials under `root/name`.

    Raises:
        SweepInterrupted: Tune returned with trials unfinished, so nothing may be summarised yet.
    """
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback

    trainable = tune.with_resources(tune.with_parameters(trial, context=context), trial_resources(cfg)[0])
    path = root / name
    if resume and tune.Tuner.can_restore(str(path)):
        tuner = tune.Tuner.restore(str(path), trainable=trainable, resume_unfinished=True, resume_errored=True)
    else:
        concurrency = cfg.concurrency or _fits(cfg)
        tuner = tune.Tuner(
            trainable, param_space=param_space,
            # reuse_actors: a trial runs in the process the last one ended in, sparing a process
            # start and the imports of torch and transformers, seconds a trial
            tune_config=tune.TuneConfig(search_alg=searcher, num_samples=num_samples,
                                        max_concurrent_trials=concurrency, reuse_actors=True),
            run_config=tune.RunConfig(name=name, storage_path=str(root), callbacks=[JsonLoggerCallback(), callback],
                                      failure_config=tune.FailureConfig(max_failures=0),
                                      progress_reporter=_reporter(list(context.objectives)), verbose=1),
        )
    try:
        grid = list(tuner.fit())
    except RuntimeError as e:  # Tune re-raises a reused actor's death as a bare RuntimeError
        _raise_if_out_of_memory(name, e)
        raise
    # a trial killed for memory is not a result: the methods would get unequal trials
    for result in grid:
        _raise_if_out_of_memory(name, result.error)
    ended = sum(1 for result in grid if result.error or "checkpoint_dir" in (result.metrics or {}))
    if ended < expected:
        raise SweepInterrupted(f"{name}: {ended} of {expected} trials ended; continue with "
                               f"ofmu-ray sweep --resume --name {root.name} (and the same --sweeps-dir)")


def _raise_if_out_of_memory(name: str, error: BaseException | str | None) -> None:
    """Raises TrialOutOfMemory when `error` (an exception, or the text Tune keeps of a trial's) is
    Ray's memory monitor killing a worker."""
    killed = next((line for line in str(error or "").splitlines() if MEMORY_KILL in line), None)
    if killed is not None:
        raise TrialOutOfMemory(
            f"{name}: Ray's memory monitor killed a trial ({killed.removeprefix('Caught unexpected exception: ')}). "
            f"Run fewer trials at once (--concurrency 1), smaller batches (--batch-size) or adapters only "
            f"(--lora r=16,alpha=32); the trials that ended are kept")


def searcher(cfg: SweepConfig, method: str, space: dict[str, Dimension], study_name: str, storage=None,
             start: dict | None = None):
    """Optuna's multi-objective sampler over `space`, maximising both objectives, its first trial
    `start` (default: the method's default configuration); its study `study_name` lives in
    `storage` (an Optuna RDB storage; None: in memory), created when Tune starts the experiment (a
    restored experiment brings back its own searcher). Held settings are not Optuna's: they reach
    each trial as constants of Tune's param space (`tune_domain`)."""
    from ray.tune.search.optuna import OptunaSearch

    return OptunaSearch(metric=list(cfg.goal.names()), mode=["max", "max"],
                        sampler=_sampler(cfg.sampler, cfg.seed, cfg.trials_for(len(searched_dims(space)))),
                        points_to_evaluate=[start or defaults_in(method, space)], study_name=study_name,
                        storage=storage)


def tune_domain(dim: Dimension):
    """A search-space dimension as a Ray Tune domain (OptunaSearch converts those), or a held
    setting as the constant Tune passes to every trial."""
    from ray import tune

    if dim.kind == FIXED:
        return dim.values[0]
    low_high = dim.values
    return {"uniform": lambda: tune.uniform(*low_high), "loguniform": lambda: tune.loguniform(*low_high),
            "int": lambda: tune.randint(low_high[0], low_high[1] + 1),  # randint excludes its upper bound
            "choice": lambda: tune.choice(list(low_high))}[dim.kind]()


def defaults_in(method: str, space: dict[str, Dimension]) -> dict:
    """The method's default configuration, restricted to the searched keys (the first trial)."""
    from ofmu_ray.methods import build_config

    cfg = build_config(method)
    return {key: getattr(cfg, key) for key in searched_dims(space)}


def _sampler(name: str, seed: int, trials: int):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # Tune's table already shows each trial
    startup = max(2, min(10, trials // 3))  # small budgets: leave most trials to the model
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=max(4, min(16, trials // 2)), seed=seed)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, multivariate=True)


def _reporter(objectives: list[str]):
    """Tune's progress table: every hyper-parameter and both objectives, at most every 30 s."""
    from ray.tune import CLIReporter

    return CLIReporter(metric_columns=[*objectives, "step"], max_report_frequency=30)


def trial_resources(cfg: SweepConfig) -> tuple[dict[str, float], float]:
    """What a trial's own process holds, and how many CPUs the trial takes in all."""
    if launch.on_ray_train(cfg.workers, cfg.max_failures):  # it only waits for its worker group, which asks for its own
        return {"CPU": 0.01}, 0.01 + cfg.workers * cfg.cpus_per_worker
    return {"CPU": cfg.cpus_per_worker, "GPU": cfg.gpus_per_worker}, cfg.cpus_per_worker


def _fits(cfg: SweepConfig) -> int:
    """How many trials the cluster's CPUs run at once."""
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1.0) // trial_resources(cfg)[1]))
