"""A sweep: per method, Ray Tune + Optuna search its space on two objectives, each trial one
unlearning run; MLflow records every trial, each method's front and the combined front.

Fairness: every method gets the same number of trials and the same step budget, and its first
trial is its default configuration (the paper's baselines were run untuned; here all are tuned).

One trial is one `train.launch.run`: in the trial's own process for one worker (no worker group
to start), through Ray Train for more. The MLflow writing happens in this (the driver) process,
from a Tune callback, so SQLite sees one writer.

A sweep lives in `<sweeps dir>/<name>/`: `sweep.json` (its settings) and one Tune experiment per
method. Each method's Optuna study is kept in an RDB storage (`studies`: `optuna.db` there by
default), which `ofmu-ray dashboard` shows. `run_sweep(..., resume=True)` restores each unfinished
experiment with its searcher, which goes on with that study; the MLflow writing is idempotent by trial
id, so no trial is lost or recorded twice.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from ofmu_ray import runs
from ofmu_ray.cache import Prepared, slug
from ofmu_ray.families.base import PrepareRequest
from ofmu_ray.tracking import mlflow_log
from ofmu_ray.train.launch import start_ray
from ofmu_ray.tune import results, studies
from ofmu_ray.tune.config import SweepConfig
from ofmu_ray.tune.spaces import load_spaces, searched_dims
from ofmu_ray.tune.tuner import TrialContext, fit, searcher, tune_domain


def run_sweep(cfg: SweepConfig, prepared: dict[str, Prepared], sweep_dir: Path, tracking_uri: str | None = None,
              resume: bool = False, address: str | None = None) -> dict:
    """Runs (or, with `resume`, finishes) a sweep over `prepared` (model name -> its prepared benchmark).

    Returns:
        per model, its fronts (`summarize_fronts`) and seed re-runs' table (`{"models": {m: {"fronts",
        "seeds"}}}`); with several models, each method's forget quality at kept utility per model
        ("headline_by_model"); and the MLflow locations ("mlflow").

    Raises:
        UsageError: an unknown split, a bad search space, or a resume of a sweep that is not there.
    """
    spaces = load_spaces(cfg.methods, cfg.spaces)
    floors, anchors = {"": 0.0}, {}
    for model, benchmark in prepared.items():  # checks the split; each reference computed once, before any trial
        points = cfg.family.references(benchmark, cfg.split, cfg.dtype, cfg.attacks, cfg.attack_settings)
        floors = cfg.family.floors(benchmark, cfg.split, cfg.attacks)  # every model is prepared on the same data
        anchors[model] = results.anchor_metrics(points, cfg.goal, floors)
    sweep_dir = sweep_dir.resolve()
    name = sweep_dir.name
    if not resume:
        sweep_dir.mkdir(parents=True, exist_ok=False)
        (sweep_dir / "sweep.json").write_text(json.dumps(asdict(cfg), indent=1))
    uri = mlflow_log.resolve_uri(tracking_uri)
    client = mlflow_log.connect(uri)
    experiment = mlflow_log.experiment_id(client, f"{cfg.bench}/{cfg.split}")
    tags = {"bench": cfg.bench, "profile": cfg.profile, "split": cfg.split, "world_size": str(cfg.workers),
            "ofmu.sweep": name, "lora": ",".join(f"{k}={v}" for k, v in cfg.lora.items()) or "none",
            "dtype": cfg.dtype, "objectives": ",".join(cfg.goal.names())}
    floors = {results.REFERENCE + cfg.goal.x + k: v for k, v in floors.items()}  # logged with the target's point
    optuna = studies.open_storage(studies.storage_url(cfg.optuna_storage, sweep_dir))
    if not resume:
        studies.check_new(optuna, [studies.study_name(name, m, method) for m in prepared for method in cfg.methods])
    start_ray(address)
    storage = Path(cfg.storage_path).resolve() / name if cfg.storage_path else sweep_dir
    out = {}
    for model, benchmark in prepared.items():
        out[model] = _sweep_model(cfg, model, benchmark, spaces, client, experiment, name, tags | {"model": model},
                                  floors | anchors[model], storage, resume, optuna)
    summary = {"models": out, "search_effort": cfg.search_effort,
               "mlflow": {"tracking_uri": uri, "experiment": f"{cfg.bench}/{cfg.split}", "experiment_id": experiment,
                          "sweep": name}}
    if len(prepared) > 1:
        run = mlflow_log.comparison_run(client, experiment, name, tags, kind="models")
        summary["headline_by_model"] = results.log_models(client, experiment, name, run, list(prepared),
                                                          f"{cfg.bench} {cfg.split}", cfg.utility_floor)
    return summary


def prepare_models(cfg: SweepConfig, cache_dir: str | None) -> dict[str, Prepared]:
    """Each model of the sweep, prepared (trained, for a generated benchmark), by its name."""
    out = {}
    for i, model in enumerate(cfg.models or (None,)):
        prepared = runs.prepare(PrepareRequest(
            bench=cfg.bench, split=cfg.split, profile=cfg.profile, model=model, data=cfg.data,
            oracle=cfg.oracles[i] if cfg.oracles else None, retain_logs=cfg.retain_logs[i] if cfg.retain_logs else None,
            prompt=cfg.prompt, max_new_tokens=cfg.max_new_tokens, cache_dir=cache_dir))
        out[prepared.model] = prepared
    return out


def trial_context(cfg: SweepConfig, method: str, prepared: Prepared, storage: Path) -> TrialContext:
    """What every trial of `method` on `prepared` shares: its run with the sweep's budget, and where
    the runs keep their checkpoints. The one place a sweep's budget (steps, or epochs of the forget
    split) becomes a run, so that ablations get the same."""
    steps = runs.budget_steps(prepared, cfg.split, cfg.batch_size, cfg.steps, cfg.epochs)
    spec = runs.run_spec(prepared, split=cfg.split, method=method, steps=steps, batch_size=cfg.batch_size,
                         checkpoint_every=cfg.checkpoint_every, lora=cfg.lora, lora_save=cfg.lora_save,
                         dtype=cfg.dtype, attacks=cfg.attacks, attack_settings=cfg.attack_settings)
    return TrialContext(spec=spec, make_task=cfg.family.make_task, workers=cfg.workers,
                        cpus_per_worker=cfg.cpus_per_worker, gpus_per_worker=cfg.gpus_per_worker,
                        max_failures=cfg.max_failures, objectives=cfg.goal.names(), storage=str(storage))


def _sweep_model(cfg: SweepConfig, model: str, prepared: Prepared, spaces: dict, client, experiment: str, name: str,
                 tags: dict, references: dict, storage: Path, resume: bool, optuna) -> dict:
    """Every method of the sweep on one model: a Tune experiment each, then the model's comparison run.
    Trials keep their state and checkpoints under `storage`; each method's Optuna study is in `optuna`."""
    from ofmu_ray.tune.trial_logger import TrialLogger

    logged = (*cfg.family.result_files, "history.json")
    for method in cfg.methods:
        space, method_tags = spaces[method], tags | {"method": method}
        tune_name = f"{slug(model)}.{method}"
        context = trial_context(cfg, method, prepared, storage / "runs" / tune_name)
        trials = cfg.trials_for(len(searched_dims(space)))
        params = {f"space.{k}": f"{d.kind}{list(d.values)}" for k, d in space.items()}
        params |= {k: getattr(cfg, k) for k in ("trials", "epochs", "batch_size", "workers", "sampler", "seed")}
        params["attacks"] = ",".join(cfg.attacks) or "none"
        params |= {"steps": context.spec.steps, "trials": trials, "search_effort": cfg.search_effort}
        parent, finished = mlflow_log.parent_run(client, experiment, name, method, method_tags, params)
        if finished:
            continue  # a resumed sweep: this method is done
        mlflow_log.log_values(client, parent, metrics=references)
        logger = TrialLogger(client.tracking_uri, experiment, parent, method_tags, "trial", logged)
        study = studies.study_name(name, model, method)
        fit(cfg, tune_name, searcher(cfg, method, space, study, optuna), trials,
            {k: tune_domain(d) for k, d in space.items()}, context, logger, storage, resume, trials)
        studies.finish(optuna, study, cfg.goal.names())
        if cfg.seeds:
            _rerun_seeds(cfg, method, model, client, experiment, name, parent, method_tags, context, storage, resume)
        results.log_fronts(client, experiment, name, parent, [method], f"{method}, {model}, {cfg.bench} {cfg.split}",
                           html=False, model=model, tau=cfg.utility_floor)
    comparison = mlflow_log.comparison_run(client, experiment, name, tags)
    fronts = results.log_fronts(client, experiment, name, comparison, list(cfg.methods),
                                f"{model}, {cfg.bench} {cfg.split}: all methods", html=True, model=model,
                                tau=cfg.utility_floor)
    seeds = results.seed_table(client, experiment, name, model) if cfg.seeds else []
    if seeds:
        mlflow_log.log_files(client, comparison, {"seeds.csv": seeds}, "pareto")
    return {"fronts": fronts, "seeds": seeds}


def _rerun_seeds(cfg: SweepConfig, method: str, model: str, client, experiment: str, name: str, parent: str,
                 method_tags: dict, context: TrialContext, storage: Path, resume: bool) -> None:
    """Runs each front configuration of `method` (`rerun="headline"`: the headline's trial, if any
    trial kept the utility) again with K new seeds, s*K+1..s*K+K for sampler seed s, so that searches
    differing in their sampler seed share no re-run. New seeds, not the sweep's own run: that one was
    picked for looking good, so it would flatter the mean (the winner's curse)."""
    from ray import tune

    from ofmu_ray.tune.trial_logger import TrialLogger

    runs_of, fronts = results.fronts_of(client, experiment, name, [method], model, cfg.utility_floor)
    entry = fronts[""]["methods"][method]
    headline = entry["fq_at_kept_utility_trial"]
    chosen = entry["front"] if cfg.rerun == "front" else [headline] if headline is not None else []
    if not chosen:
        return
    points = []
    for i in chosen:
        run = runs_of[method][i]
        hp = {k[len("method."):]: v for k, v in run.data.params.items() if k.startswith("method.")}
        first = cfg.seed * cfg.seeds + 1
        points += [hp | {"seed": s, "source": run.data.tags["ray_trial_id"]} for s in range(first, first + cfg.seeds)]
    logger = TrialLogger(client.tracking_uri, experiment, parent, method_tags, "seed",
                         (*cfg.family.result_files, "history.json"))
    fit(cfg, f"{slug(model)}.{method}-seeds", None, 1, {"point": tune.grid_search(points)}, context, logger,
        storage, resume, len(points))
