"""A sweep: per method, Ray Tune + Optuna search its space on two objectives, each trial one
unlearning run; MLflow records every trial, each method's front and the combined front.

Fairness: every method gets the same number of trials and the same step budget, and its first
trial is its default configuration (the paper's baselines were run untuned; here all are tuned).

One trial is one `train.distributed.run`: in the trial's own process for one worker (no worker
group to start), through Ray Train for more. The MLflow writing happens in this (the driver)
process, from a Tune callback, so SQLite sees one writer.

A sweep lives in `<sweeps dir>/<name>/`: `sweep.json` (its settings) and one Tune experiment per
method. `run_sweep(..., resume=True)` restores each unfinished experiment with its Optuna state; the MLflow
writing is idempotent by trial id, so no trial is lost or recorded twice.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ofmu_ray.prepare import Prepared, UsageError, slug
from ofmu_ray.tune.pareto import TOFU_OBJECTIVES, Objectives
from ofmu_ray.tune.spaces import Dimension, load_space

# What a sweep maximises by default, per benchmark family: for TOFU forget quality and utility; for
# WMDP-style closeness of forget_acc to chance and utility accuracy; for images
# closeness to the retrained oracle (100 - the protocol's avg_gap). Closeness, not raw forgetting, so
# that over-forgetting counts against a method as under-forgetting does. `--objectives` chooses others.
DEFAULT_OBJECTIVES = {"tofu": TOFU_OBJECTIVES.names(), "mcq": ("forget_closeness", "utility_acc"),
                      "image": ("oracle_closeness", "ta")}
# what `--objectives` may name; all but TOFU's are shares or percentages: reference point 0
OBJECTIVE_METRICS = {"tofu": TOFU_OBJECTIVES.names(), "mcq": ("forget_closeness", "forget_error", "utility_acc"),
                     "image": ("oracle_closeness", "ta", "ra", "ua", "mia_efficacy")}
SAMPLERS = ("tpe", "nsga2", "gp")
NOT_HYPER_PARAMETERS = ("seed", "source")  # what a trial's configuration holds besides the method's


@dataclass(frozen=True)
class SweepConfig:
    """What a sweep runs; saved as `sweep.json` so that `--resume` runs the same sweep."""

    bench: str
    profile: str
    split: str
    methods: tuple[str, ...]
    trials: int = 8  # per method, the default configuration included
    steps: int = 20  # forget batches per trial, the same for every method
    batch_size: int = 16
    workers: int = 1
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    concurrency: int = 0  # trials at once; 0 = as many as the cluster's CPUs hold
    seeds: int = 0  # re-run each method's front configurations with this many new seeds
    sampler: str = "tpe"
    seed: int = 0  # the sampler's seed
    spaces: dict = field(default_factory=dict)  # method -> the user's YAML file
    lora: dict = field(default_factory=dict)  # unlearn through LoRA adapters (a `LoraSpec` as a dict)
    lora_save: str = "merged"
    models: tuple[str, ...] = ()  # the models axis: embedded names, or (tofu) hub ids / folders; () = default
    data: str | None = None  # tofu: hf:locuslab/TOFU or a folder
    oracles: tuple[str, ...] = ()  # tofu: the retain model of each model, in the same order
    retain_logs: tuple[str, ...] = ()  # tofu: or each model's OpenUnlearning retain log
    prompt: str = "auto"
    dtype: str = "fp32"
    objectives: tuple[str, ...] = ()  # the two maximised metrics; () = DEFAULT_OBJECTIVES of the family
    storage_path: str = ""  # where trials keep checkpoints and results, seen by every node; "" = the sweep folder
    checkpoint_every: int = 0  # trials checkpoint every N steps, what a restarted trial resumes from
    max_failures: int = 0  # Ray Train restarts a trial's workers this often when one dies

    def __post_init__(self):
        from ofmu_ray.methods import METHODS, check_applies

        unknown = [m for m in self.methods if m not in METHODS]
        if not self.methods or unknown:
            raise UsageError(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
        try:
            check_applies(self.methods, self.modality, self.bench)
        except ValueError as e:
            raise UsageError(str(e)) from e
        allowed = OBJECTIVE_METRICS[self.family]
        if self.objectives and (len(self.objectives) != 2 or not set(self.objectives) <= set(allowed)):
            raise UsageError(f"--objectives {','.join(self.objectives)}: two of {', '.join(allowed)}")
        if self.trials < 1 or self.steps < 1 or self.workers < 1 or min(
                self.seeds, self.concurrency, self.checkpoint_every, self.max_failures) < 0:
            raise UsageError("need trials, steps and workers >= 1; seeds, concurrency, checkpoint-every and "
                             "max-failures >= 0")
        if self.batch_size % self.workers:
            raise UsageError(f"batch size {self.batch_size} is not divisible by {self.workers} workers")
        if self.sampler not in SAMPLERS:
            raise UsageError(f"unknown sampler {self.sampler!r}; choose from {', '.join(SAMPLERS)}")
        extra = set(self.spaces) - set(self.methods)
        if extra:
            raise UsageError(f"--space for {', '.join(sorted(extra))}, which this sweep does not run")
        if len(set(self.models)) < len(self.models):
            raise UsageError(f"--models names a model twice: {', '.join(self.models)}")
        for option, values in (("--oracle", self.oracles), ("--retain-logs", self.retain_logs)):
            if values and len(values) != len(self.models or (None,)):
                raise UsageError(f"{option} gives {len(values)} but the sweep has {len(self.models or (None,))} "
                                 "models: one per model, in the same order")

    @property
    def modality(self) -> str:
        from ofmu_ray.data import modality

        return modality(self.bench)

    @property
    def family(self) -> str:
        from ofmu_ray.data import family

        return family(self.bench)

    @property
    def goal(self) -> Objectives:
        return Objectives(*(self.objectives or DEFAULT_OBJECTIVES[self.family]))


def prepare_models(cfg: SweepConfig, cache_dir: str | None) -> dict[str, Prepared]:
    """Each model of the sweep, prepared (trained, for the embedded benchmark), by its name."""
    from ofmu_ray.prepare_bench import prepare_bench

    out = {}
    for i, model in enumerate(cfg.models or (None,)):
        prepared = prepare_bench(cfg.bench, cfg.split, cfg.profile, model, cfg.data,
                                 cfg.oracles[i] if cfg.oracles else None,
                                 cfg.retain_logs[i] if cfg.retain_logs else None, cfg.prompt, cache_dir)
        out[prepared.model] = prepared
    return out


def tune_domain(dim: Dimension):
    """A search-space dimension as a Ray Tune domain (OptunaSearch converts those)."""
    from ray import tune

    low_high = dim.values
    return {"uniform": lambda: tune.uniform(*low_high), "loguniform": lambda: tune.loguniform(*low_high),
            "int": lambda: tune.randint(low_high[0], low_high[1] + 1),  # randint excludes its upper bound
            "choice": lambda: tune.choice(list(low_high))}[dim.kind]()


def defaults_in(method: str, space: dict[str, Dimension]) -> dict:
    """The method's default configuration, restricted to the searched keys (the first trial)."""
    from ofmu_ray.methods import build_config

    cfg = build_config(method)
    return {key: getattr(cfg, key) for key in space}


def _sampler(name: str, seed: int, trials: int):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # Tune's table already shows each trial
    startup = max(2, min(10, trials // 3))  # small budgets: leave most trials to the model
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=max(4, min(16, trials // 2)), seed=seed)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, multivariate=True)


def trial(config: dict, context: dict) -> None:
    """One Tune trial: one unlearning run with the sampled hyper-parameters, then one report."""
    import ray
    import ray.tune

    from ofmu_ray.train.distributed import RunSpec, run

    trial_id = ray.tune.get_context().get_trial_id()
    point = config.get("point", config)  # seed re-runs pass a whole configuration
    overrides = {k: v for k, v in point.items() if k not in NOT_HYPER_PARAMETERS}
    spec = RunSpec(**context["run"], overrides=overrides, seed=point.get("seed", 0))
    metrics, folder = run(spec, context["workers"], context["cpus_per_worker"], context["gpus_per_worker"],
                          storage=context["storage"], name=trial_id, max_failures=context["max_failures"])
    report = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
    for key in context["objectives"]:  # Optuna leaves a trial with a NaN objective RUNNING forever
        if not math.isfinite(report.get(key, math.nan)):
            report[key] = -1e9
    # where the trial ran (a string: Tune keeps it, MLflow gets it as the tag ray.node_id)
    ray.tune.report(report | {"checkpoint_dir": str(folder), "node_id": ray.get_runtime_context().get_node_id()})


def _reporter(objectives: list[str]):
    """Tune's progress table: every hyper-parameter and both objectives, at most every 30 s."""
    from ray.tune import CLIReporter

    return CLIReporter(metric_columns=[*objectives, "step"], max_report_frequency=30)


class SweepInterrupted(RuntimeError):
    """Tune stopped before every trial ended (Ctrl-C): the sweep can be resumed."""


def _fit(cfg: SweepConfig, name: str, searcher, num_samples: int, param_space: dict, context: dict,
         callback, root: Path, resume: bool, expected: int) -> None:
    """Runs (or resumes) one Tune experiment of `expected` trials under `root/name`.

    Raises:
        SweepInterrupted: Tune returned with trials unfinished, so nothing may be summarised yet.
    """
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback

    trainable = tune.with_resources(tune.with_parameters(trial, context=context), _trial_resources(cfg)[0])
    path = root / name
    if resume and tune.Tuner.can_restore(str(path)):
        tuner = tune.Tuner.restore(str(path), trainable=trainable, resume_unfinished=True, resume_errored=True)
    else:
        concurrency = cfg.concurrency or _fits(cfg)
        tuner = tune.Tuner(
            trainable, param_space=param_space,
            tune_config=tune.TuneConfig(search_alg=searcher, num_samples=num_samples,
                                        max_concurrent_trials=concurrency),
            run_config=tune.RunConfig(name=name, storage_path=str(root), callbacks=[JsonLoggerCallback(), callback],
                                      failure_config=tune.FailureConfig(max_failures=0),
                                      progress_reporter=_reporter(context["objectives"]), verbose=1),
        )
    ended = sum(1 for result in tuner.fit() if result.error or "checkpoint_dir" in (result.metrics or {}))
    if ended < expected:
        raise SweepInterrupted(f"{name}: {ended} of {expected} trials ended; continue with "
                               f"ofmu-ray sweep --resume --name {root.name} (and the same --sweeps-dir)")


def _trial_resources(cfg: SweepConfig) -> tuple[dict[str, float], float]:
    """What a trial's own process holds, and how many CPUs the trial takes in all."""
    from ofmu_ray.train.distributed import on_ray_train

    if on_ray_train(cfg.workers, cfg.max_failures):  # it only waits for its worker group, which asks for its own
        return {"CPU": 0.01}, 0.01 + cfg.workers * cfg.cpus_per_worker
    return {"CPU": cfg.cpus_per_worker, "GPU": cfg.gpus_per_worker}, cfg.cpus_per_worker


def _fits(cfg: SweepConfig) -> int:
    """How many trials the cluster's CPUs run at once."""
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1.0) // _trial_resources(cfg)[1]))


def _quiet_ray() -> None:
    """Ray's own noise off (set before Ray starts; a user's own setting wins)."""
    os.environ.setdefault("RAY_TRAIN_ENABLE_PRINT_PATCH", "0")  # each worker print would show twice
    os.environ.setdefault("RAY_TRAIN_ENABLE_V2_MIGRATION_WARNINGS", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # no TensorBoard/CSV files (JSON is added)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's classic progress table


def check_address(address: str) -> None:
    """Raises UsageError unless something listens at a `host:port` or `ray://host:port` address
    (`auto` and `local` are left to Ray): `ray.init` would wait minutes for a cluster that is not there."""
    import socket

    if address in ("auto", "local"):  # Ray's own: the cluster this machine runs, or a new local one
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--address {address}: expected host:port, ray://host:port or auto")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise UsageError(f"--address {address}: no Ray cluster answers there ({e.strerror or e})") from e


def start_ray(address: str | None = None) -> None:
    """Connects to `address` (a cluster), or starts a local Ray once for the whole sweep."""
    import ray

    _quiet_ray()
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)


def new_name(cfg: SweepConfig) -> str:
    """A sweep name that sorts by start time."""
    return f"{cfg.bench}-{cfg.profile}-{cfg.split}-{time.strftime('%Y%m%d-%H%M%S')}"


def load_config(sweep_dir: Path) -> SweepConfig:
    """The settings a sweep was started with (its `sweep.json`)."""
    path = sweep_dir / "sweep.json"
    if not path.is_file():
        raise UsageError(f"{sweep_dir} is not a sweep folder (no sweep.json)")
    raw = json.loads(path.read_text())
    lists = ("methods", "models", "oracles", "retain_logs", "objectives")  # JSON has no tuples
    return SweepConfig(**raw | {k: tuple(raw[k]) for k in lists})


def load_spaces(cfg: SweepConfig) -> dict[str, dict[str, Dimension]]:
    """Each method's search space (the user's `--space` file, or `tune_spaces/`), every file checked.

    Raises:
        UsageError: naming the file and key of a malformed or out-of-range space.
    """
    from ofmu_ray.tune.spaces import SpaceError

    try:
        return {m: load_space(m, cfg.spaces.get(m)) for m in cfg.methods}
    except SpaceError as e:
        raise UsageError(str(e)) from e


def run_sweep(cfg: SweepConfig, prepared: dict[str, Prepared], sweep_dir: Path, tracking_uri: str | None = None,
              resume: bool = False, address: str | None = None) -> dict:
    """Runs (or, with `resume`, finishes) a sweep over `prepared` (model name -> its benchmark).

    Returns:
        per model, its fronts (`summarize_fronts`) and seed re-runs' table (`{"models": {m: {"fronts",
        "seeds"}}}`); with several models, each method's hypervolume per model ("hypervolumes"); and the
        MLflow locations ("mlflow").

    Raises:
        UsageError: an unknown split, a bad search space, or a resume of a sweep that is not there.
    """
    from mlflow.tracking import MlflowClient

    from ofmu_ray.eval.run import references
    from ofmu_ray.tracking import mlflow_log
    from ofmu_ray.tune import results

    spaces = load_spaces(cfg)
    floors = {"": 0.0}  # WMDP-style and images: every objective is a share or a percentage
    for bench in prepared.values():  # checks the split; each oracle's evaluation, once, before any trial
        if cfg.family == "tofu":
            data = bench.data()
            references(bench, cfg.split, data, None, cfg.dtype)
            floors = results.floors(data, cfg.split)  # every model is prepared on the same data
    sweep_dir = sweep_dir.resolve()
    name = sweep_dir.name
    if not resume:
        sweep_dir.mkdir(parents=True, exist_ok=False)
        (sweep_dir / "sweep.json").write_text(json.dumps(asdict(cfg), indent=1))
    uri = mlflow_log.resolve_uri(tracking_uri)
    client = MlflowClient(uri)
    experiment = mlflow_log.experiment_id(client, f"{cfg.bench}/{cfg.split}")
    tags = {"bench": cfg.bench, "profile": cfg.profile, "split": cfg.split, "world_size": str(cfg.workers),
            "ofmu.sweep": name, "lora": ",".join(f"{k}={v}" for k, v in cfg.lora.items()) or "none",
            "dtype": cfg.dtype, "objectives": ",".join(cfg.goal.names())}
    floors = {results.REFERENCE + cfg.goal.x + k: v for k, v in floors.items()}
    start_ray(address)
    storage = Path(cfg.storage_path).resolve() / name if cfg.storage_path else sweep_dir
    out = {}
    for model, bench in prepared.items():
        out[model] = _sweep_model(cfg, model, bench, spaces, client, experiment, name, tags | {"model": model},
                                  floors, storage, resume)
    summary = {"models": out, "mlflow": {"tracking_uri": uri, "experiment": f"{cfg.bench}/{cfg.split}",
                                         "experiment_id": experiment, "sweep": name}}
    if len(prepared) > 1:
        run = mlflow_log.comparison_run(client, experiment, name, tags, kind="models")
        summary["hypervolumes"] = results.log_models(client, experiment, name, run, list(prepared),
                                                     f"{cfg.bench} {cfg.split}")
    return summary


def _sweep_model(cfg: SweepConfig, model: str, bench: Prepared, spaces: dict, client, experiment: str, name: str,
                 tags: dict, floors: dict, storage: Path, resume: bool) -> dict:
    """Every method of the sweep on one model: a Tune experiment each, then the model's comparison run.
    Trials keep their state and checkpoints under `storage`."""
    from ray.tune.search.optuna import OptunaSearch

    from ofmu_ray.data import unlearning_splits
    from ofmu_ray.tracking import mlflow_log
    from ofmu_ray.tune import results
    from ofmu_ray.tune.logger import TrialLogger

    forget_split, retain_split = unlearning_splits(cfg.bench, cfg.split)
    run_base = {"model_dir": bench.model_dir("target"), "data_dir": str(bench.root / "data"),
                "forget_split": forget_split, "retain_split": retain_split, "steps": cfg.steps,
                "batch_size": cfg.batch_size, "prepared_root": str(bench.root), "lora": cfg.lora,
                "lora_save": cfg.lora_save, "prompt": bench.prompt, "dtype": cfg.dtype, "bench": cfg.bench,
                "checkpoint_every": cfg.checkpoint_every}
    context = {"workers": cfg.workers, "cpus_per_worker": cfg.cpus_per_worker, "max_failures": cfg.max_failures,
               "gpus_per_worker": cfg.gpus_per_worker, "objectives": list(cfg.goal.names())}
    for method in cfg.methods:
        space, method_tags = spaces[method], tags | {"method": method}
        params = {f"space.{k}": f"{d.kind}{list(d.values)}" for k, d in space.items()}
        params |= {k: getattr(cfg, k) for k in ("trials", "steps", "batch_size", "workers", "sampler", "seed")}
        parent, finished = mlflow_log.parent_run(client, experiment, name, method, method_tags, params)
        if finished:
            continue  # a resumed sweep: this method is done
        mlflow_log.log_values(client, parent, metrics=floors)
        tune_name = f"{slug(model)}.{method}"
        ctx = context | {"run": run_base | {"method": method}, "storage": str(storage / "runs" / tune_name)}
        searcher = OptunaSearch(metric=list(cfg.goal.names()), mode=["max", "max"],
                                sampler=_sampler(cfg.sampler, cfg.seed, cfg.trials),
                                points_to_evaluate=[defaults_in(method, space)], study_name=f"{name}-{tune_name}")
        logger = TrialLogger(client.tracking_uri, experiment, parent, method_tags, "trial")
        _fit(cfg, tune_name, searcher, cfg.trials, {k: tune_domain(d) for k, d in space.items()}, ctx, logger,
             storage, resume, cfg.trials)
        if cfg.seeds:
            _rerun_seeds(cfg, method, model, client, experiment, name, parent, method_tags, ctx, storage, resume)
        results.log_fronts(client, experiment, name, parent, [method], f"{method}, {model}, {cfg.bench} {cfg.split}",
                           html=False, model=model)
    comparison = mlflow_log.comparison_run(client, experiment, name, tags)
    fronts = results.log_fronts(client, experiment, name, comparison, list(cfg.methods),
                                f"{model}, {cfg.bench} {cfg.split}: all methods", html=True, model=model)
    seeds = results.seed_table(client, experiment, name, model) if cfg.seeds else []
    if seeds:
        mlflow_log.log_files(client, comparison, {"seeds.csv": seeds}, "pareto")
    return {"fronts": fronts, "seeds": seeds}


def _rerun_seeds(cfg: SweepConfig, method: str, model: str, client, experiment: str, name: str, parent: str,
                 method_tags: dict, context: dict, storage: Path, resume: bool) -> None:
    """Runs each front configuration of `method` again with seeds 1..K. New seeds, not the
    sweep's own run: that one was picked for looking good, so it would flatter the mean."""
    from ray import tune

    from ofmu_ray.tune import results
    from ofmu_ray.tune.logger import TrialLogger

    runs, fronts = results.fronts_of(client, experiment, name, [method], model)
    points = []
    for i in fronts[""]["methods"][method]["front"]:
        run = runs[method][i]
        hp = {k[len("method."):]: v for k, v in run.data.params.items() if k.startswith("method.")}
        points += [hp | {"seed": s, "source": run.data.tags["ray_trial_id"]} for s in range(1, cfg.seeds + 1)]
    logger = TrialLogger(client.tracking_uri, experiment, parent, method_tags, "seed")
    _fit(cfg, f"{slug(model)}.{method}-seeds", None, 1, {"point": tune.grid_search(points)}, context, logger,
         storage, resume, len(points))
