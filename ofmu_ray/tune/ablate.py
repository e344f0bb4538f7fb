"""Ablations (`ofmu-ray ablate`): what one setting of a method (an axis), or a grid of two, changes
in what the method achieves, measured the way sweeps measure it.

Two modes; the output always says which ran:
- held: every variant runs at one base configuration (the method's defaults, an earlier sweep's best
  front configuration, or KEY=VALUE settings) with K seeds; each objective's mean and spread per
  variant. Cheap, but a variant that needs other step sizes than the base's looks worse than it is.
- tuned: each variant gets its own Optuna search with the same budget over the method's other
  searched dimensions (its space without the axes), its first trial the base; the variants are then
  compared at their best, by front and hypervolume on every split. The fair ablation.

Trials are sweep trials: `sweep.trial_context` builds them from the ablation's budget (a one-method
`SweepConfig`) and `tuner.fit` runs them on Ray with the sweep's objectives and trial logging, every
variant's trials in one Tune experiment so that they run at once (tuned: `VariantSearch` holds the
variants' Optuna searches). An ablation lives in `<ablations dir>/<name>/`: `sweep.json` (the budget) and
`ablation.json` (axes, values, base, mode, seeds); `--resume` restores its Tune experiments, and the
MLflow writing is idempotent by trial id.

MLflow: the experiment `ablate/<name>` holds a run per variant (`ofmu.kind=variant`, tag `variant`)
with its trials as children, and a comparison run (`ofmu.kind=comparison`) with the plots, a CSV, the
summary as JSON and as markdown on its page. Everything in the summary is read back from the trial runs.
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
import pickle
import statistics
import tempfile
import time
import typing
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ray.tune.search import Searcher

from ofmu_ray.cache import Prepared, slug
from ofmu_ray.config import parse_sets
from ofmu_ray.errors import UsageError
from ofmu_ray.methods import build_config, get_method
from ofmu_ray.tracking import mlflow_log
from ofmu_ray.tracking.browse import anchored, headline
from ofmu_ray.train.launch import start_ray
from ofmu_ray.tune import results
from ofmu_ray.tune.config import ABLATION_MODES, UTILITY_FLOOR, Objectives, SweepConfig
from ofmu_ray.tune.pareto import hypervolume, summarize_fronts
from ofmu_ray.tune.spaces import Dimension, held_settings, load_spaces, searched_dims
from ofmu_ray.tune.sweep import trial_context
from ofmu_ray.tune.trial_logger import TrialLogger
from ofmu_ray.tune.tuner import defaults_in, fit, searcher, tune_domain

MAX_AXES = 2  # two axes make a grid; a third would multiply the budget past what one plot shows
ABLATION_FILE = "ablation.json"
RATIOS = "step/ratio/"  # OFMU's per-step term ratios (methods that log none get no ratio plot)


@dataclass(frozen=True)
class Ablation:
    """What an ablation varies and how. With its budget (a one-method `SweepConfig`) it is the whole
    ablation, saved as `ablation.json` so that `--resume` runs the same one."""

    axes: tuple[str, ...]
    values: tuple[tuple, ...]  # per axis, its values, typed as the field
    base: dict  # the base configuration: overrides of the method's defaults
    base_from: str  # how the base was given: "defaults", "sweep:NAME (trial ID)", "key=value ..."
    mode: str = "held"
    seeds: int = 3  # held: runs per variant, seeds 0..K-1
    cache_dir: str | None = None  # where its benchmark was prepared: `--resume` finds it there, not trains it anew

    def variants(self) -> list[dict]:
        """Every combination of the axes' values (a grid for two axes), in the order given."""
        return [dict(zip(self.axes, combo, strict=True)) for combo in itertools.product(*self.values)]


def label(variant: dict) -> str:
    """A variant as people read it (and as its runs' `variant` tag): `decorrelation=none,hessian=exact`."""
    return ",".join(f"{axis}={value}" for axis, value in variant.items())


def metric_key(variant: dict) -> str:
    """A variant in an MLflow metric or file name, which allow no '=' or ',': `decorrelation-none_hessian-exact`."""
    return "_".join(f"{axis}-{slug(str(value))}" for axis, value in variant.items())


def parse_axes(method: str, axes: list[str], raw: list[str]) -> tuple[tuple, ...]:
    """Each axis's values, typed as its field: `raw` holds one comma-separated list per axis, in order,
    or nothing, and then a categorical axis takes all its choices.

    Raises:
        UsageError: an unknown axis (naming the closest field), one that is neither categorical nor
            numeric, a value its field does not allow, a numeric axis without `--values`.

    Example:
        >>> parse_axes("ofmu", ["decorrelation", "inner_steps"], ["signed,none", "2,5"])
        (('signed', 'none'), (2, 5))
    """
    config = get_method(method).Config
    known = {f.name: f for f in fields(config)}
    hints = typing.get_type_hints(config)
    if not axes or len(axes) > MAX_AXES or len(set(axes)) < len(axes):
        raise UsageError(f"--axis: one or two different fields of {method}'s config, got {', '.join(axes) or 'none'}")
    if raw and len(raw) != len(axes):
        raise UsageError(f"--values: one comma-separated list per --axis, in order; {len(axes)} axes, "
                         f"{len(raw)} lists")
    out = []
    for i, axis in enumerate(axes):
        if axis in config.removed:
            raise UsageError(f"--axis {axis}: no longer a {method} hyper-parameter: {config.removed[axis]}")
        if axis not in known:
            close = difflib.get_close_matches(axis, known, n=1)
            raise UsageError(f"--axis {axis}: not a {method} hyper-parameter"
                             + (f"; did you mean {close[0]!r}?" if close else f"; fields: {', '.join(known)}"))
        if hints[axis] not in (str, int, float, bool):
            raise UsageError(f"--axis {axis}: a {hints[axis]} field is neither categorical nor numeric")
        choices = known[axis].metadata.get("choices") or (("false", "true") if hints[axis] is bool else None)
        if not raw and not choices:
            raise UsageError(f"--axis {axis} is numeric: give its values, e.g. --values 0.01,0.1,1")
        texts = [t.strip() for t in raw[i].split(",") if t.strip()] if raw else list(choices)
        values = []
        for text in texts:
            try:
                values.append(getattr(build_config(method, {axis: text}), axis))
            except ValueError as e:
                raise UsageError(f"--values {axis}={text}: {e}") from e
        if len(set(values)) < 2 or len(set(values)) < len(values):
            raise UsageError(f"--values {axis}: at least two different values, each once; got {', '.join(texts)}")
        out.append(tuple(values))
    return tuple(out)


def parse_base(items: list[str]) -> tuple[dict, str | None]:
    """`--base`: `defaults`, `sweep:NAME`, KEY=VALUE settings, or a sweep's configuration with settings
    over it; returns (the settings, the sweep's name or None).

    Raises:
        UsageError: `defaults` with anything else, two sweeps, or a malformed setting.
    """
    sweeps = [i[len("sweep:"):] for i in items if i.startswith("sweep:")]
    settings = [i for i in items if not i.startswith("sweep:") and i != "defaults"]
    if ("defaults" in items and len(items) > 1) or len(sweeps) > 1 or any(not s for s in sweeps):
        raise UsageError(f"--base {' '.join(items)}: defaults, sweep:NAME, or KEY=VALUE ... (over a sweep:NAME)")
    return parse_sets(settings), (sweeps[0] if sweeps else None)


def sweep_base(client, bench: str, split: str, sweep: str, method: str, model: str,
               tau: float = UTILITY_FLOOR) -> tuple[dict, str]:
    """The headline configuration of `method` on `model` in an earlier sweep: its trial with the best
    forget quality among those keeping `tau` of the target's utility (`_headline_run`). Returns (its
    hyper-parameters, where it came from).

    Raises:
        UsageError: no such sweep of `method` in the experiment `<bench>/<split>`, none on `model`, no
            finished trial, or none that kept the utility.
    """
    found = client.get_experiment_by_name(f"{bench}/{split}")
    parents = mlflow_log.find_runs(client, found.experiment_id, ofmu__sweep=sweep, ofmu__kind="method",
                                   method=method) if found else []
    if not parents:
        raise UsageError(f"--base sweep:{sweep}: no sweep {sweep!r} of {method} in the experiment {bench}/{split} "
                         f"of {client.tracking_uri}")
    models = sorted({r.data.tags["model"] for r in parents})
    if model not in models:
        raise UsageError(f"--base sweep:{sweep}: it swept {method} on {', '.join(models)}, not on {model}")
    runs_of, fronts = results.fronts_of(client, found.experiment_id, sweep, [method], model, tau)
    entry, (floor, _) = fronts[""]["methods"].get(method, {"front": []}), fronts[""]["reference"]
    if not entry["front"]:
        raise UsageError(f"--base sweep:{sweep}: {method} has no finished trial there")
    if fronts[""]["target"] and entry["fq_at_kept_utility_trial"] is None:
        raise UsageError(f"--base sweep:{sweep}: no trial of {method} kept {tau:g} x the target's utility; lower "
                         "--utility-floor, or give the base as KEY=VALUE settings")
    x, y = fronts[""]["objectives"]
    best = _headline_run(runs_of[method], entry, x, y, floor)
    base = {k[len("method."):]: v for k, v in best.data.params.items() if k.startswith("method.")}
    return base, f"sweep:{sweep} (trial {best.data.tags.get('ray_trial_id')})"


def _headline_run(runs: list, entry: dict, x: str, y: str, floor: float):
    """The run of `entry`'s headline trial (forget quality at kept utility); without the target's point
    (a sweep from before it was logged) or a trial that kept the utility, the run whose point alone
    dominates the largest area above (floor, 0). None without runs."""
    if entry.get("fq_at_kept_utility_trial") is not None:
        return runs[entry["fq_at_kept_utility_trial"]]
    return max(runs, key=lambda r: _area(r.data.metrics.get(x, math.nan), r.data.metrics.get(y, math.nan), floor),
               default=None)


def _area(x: float, y: float, floor: float) -> float:
    """The hypervolume of one point above the reference (floor, 0)."""
    return hypervolume([(x, y)], (floor, 0.0))


def make_ablation(cfg: SweepConfig, axes: tuple[str, ...], values: tuple[tuple, ...], base: dict, base_from: str,
                  mode: str, seeds: int) -> Ablation:
    """The ablation, checked against its method: the base and every variant build, and a tuned one
    has dimensions left to search. The base's values are typed as their fields.

    Raises:
        UsageError: naming the variant or setting that does not build, or what is wrong.
    """
    method = cfg.methods[0]
    if mode not in ABLATION_MODES:
        raise UsageError(f"--mode {mode!r}: one of {', '.join(ABLATION_MODES)}")
    if seeds < 1:
        raise UsageError(f"--seeds {seeds}: at least one run per variant")
    try:
        typed = build_config(method, base)
    except ValueError as e:
        raise UsageError(f"--base: {e}") from e
    base = {k: getattr(typed, k) for k in base}
    ablation = Ablation(tuple(axes), tuple(tuple(v) for v in values), base, base_from, mode, seeds)
    for variant in ablation.variants():
        try:
            build_config(method, base | variant)
        except ValueError as e:
            raise UsageError(f"variant {label(variant)} over the base: {e}") from e
    if mode == "tuned" and not _searched(cfg, ablation):
        raise UsageError(f"--mode tuned: {method}'s space has no dimension besides {', '.join(axes)} to search")
    clash = sorted(set(axes) & set(_held(cfg))) if mode == "tuned" else []
    if clash:
        raise UsageError(f"--mode tuned: the space holds {', '.join(clash)} fixed, which the ablation varies")
    return ablation


def _space(cfg: SweepConfig) -> dict[str, Dimension]:
    return load_spaces(cfg.methods, cfg.spaces)[cfg.methods[0]]


def _searched(cfg: SweepConfig, ablation: Ablation) -> dict[str, Dimension]:
    """What each variant of a tuned ablation searches: the method's space without the axes and
    without what it holds fixed."""
    return {k: d for k, d in searched_dims(_space(cfg)).items() if k not in ablation.axes}


def _held(cfg: SweepConfig) -> dict:
    """What the tuned ablation's space holds fixed in every trial, over the base."""
    return held_settings(_space(cfg))


def new_name(cfg: SweepConfig, ablation: Ablation) -> str:
    """An ablation name that says what it varies and sorts by start time."""
    return (f"{cfg.methods[0]}-{'-'.join(ablation.axes)}-{ablation.mode}-{cfg.bench}-{cfg.profile}-{cfg.split}-"
            f"{time.strftime('%Y%m%d-%H%M%S')}")


def load(folder: Path) -> Ablation:
    """The ablation a folder was started with (its `ablation.json`).

    Raises:
        UsageError: the folder holds no ablation.
    """
    path = folder / ABLATION_FILE
    if not path.is_file():
        raise UsageError(f"{folder} is not an ablation folder (no {ABLATION_FILE})")
    raw = json.loads(path.read_text())
    return Ablation(**raw | {"axes": tuple(raw["axes"]), "values": tuple(tuple(v) for v in raw["values"])})


class VariantLogger(TrialLogger):
    """The trial logger of an ablation's one Tune experiment over every variant: each trial goes under
    its variant's run, found from the axes' values in its configuration."""

    def __init__(self, uri: str, experiment: str, parents: dict[str, tuple[str, dict]], axes: tuple[str, ...],
                 result_files: tuple[str, ...]):
        super().__init__(uri, experiment, "", {}, "trial", result_files)
        self.parents, self.axes = parents, axes  # variant label -> (its run, its tags)

    def target(self, point: dict) -> tuple[str, dict[str, str]]:
        return self.parents[label({axis: point[axis] for axis in self.axes})]


class VariantSearch(Searcher):
    """One Optuna search per variant inside one Tune experiment (which takes one searcher), so that all
    variants' trials run at once: the searches propose trials in turn, up to `trials` each, and each
    learns from its own variant's trials only. A proposal carries its variant's fixed settings (the
    axes and the base's unsearched fields). The searches share the sampler's seed, so their first
    trials are the same points: a paired comparison. Pickled whole with its searches, for `--resume`."""

    def __init__(self, searches: dict[str, Searcher], fixed: dict[str, dict], trials: int):
        first = next(iter(searches.values()))
        super().__init__(metric=first.metric, mode=first.mode)
        self.searches, self.fixed, self.trials = searches, fixed, trials
        self.owner: dict[str, str] = {}  # Tune trial id -> its variant's label

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return all(s.set_search_properties(metric, mode, config, **spec) for s in self.searches.values())

    def suggest(self, trial_id: str) -> dict | str | None:
        counts = {v: list(self.owner.values()).count(v) for v in self.searches}
        open_ = [v for v, n in counts.items() if n < self.trials]
        if not open_:
            return Searcher.FINISHED
        variant = min(open_, key=counts.get)  # in turn: no variant's search waits for another's to end
        config = self.searches[variant].suggest(trial_id)
        if not isinstance(config, dict):
            return config  # None (nothing to propose yet) or FINISHED
        self.owner[trial_id] = variant
        return config | self.fixed[variant]

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.searches[self.owner[trial_id]].on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.searches[self.owner[trial_id]].on_trial_complete(trial_id, result, error)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__dict__, f)

    def restore(self, checkpoint_path: str) -> None:
        # the state file Tune keeps in the ablation's own experiment folder, as OptunaSearch keeps its own
        with open(checkpoint_path, "rb") as f:
            self.__dict__.update(pickle.load(f))


def run_ablation(cfg: SweepConfig, ablation: Ablation, prepared: Prepared, folder: Path, tracking_uri: str,
                 resume: bool = False, address: str | None = None) -> dict:
    """Runs (or, with `resume`, finishes) an ablation of `cfg.methods[0]` on `prepared`.

    Returns:
        `summarize`'s result, with the MLflow locations under "mlflow".

    Raises:
        SweepInterrupted: Tune stopped before every trial ended (the ablation can be resumed).
    """
    method = cfg.methods[0]
    anchored = cfg.family.references(prepared, cfg.split, cfg.dtype)  # checks the split; once, before any trial
    floors = cfg.family.floors(prepared, cfg.split)
    anchors = results.anchor_metrics(anchored, cfg.goal, floors)
    folder = folder.resolve()
    name = folder.name
    if not resume:
        folder.mkdir(parents=True, exist_ok=False)
        (folder / "sweep.json").write_text(json.dumps(asdict(cfg), indent=1))
        (folder / ABLATION_FILE).write_text(json.dumps(asdict(ablation), indent=1))
    client = mlflow_log.connect(tracking_uri)
    experiment = mlflow_log.experiment_id(client, f"ablate/{name}")
    tags = {"bench": cfg.bench, "profile": cfg.profile, "split": cfg.split, "model": prepared.model,
            "method": method, "world_size": str(cfg.workers), "dtype": cfg.dtype,
            "objectives": ",".join(cfg.goal.names()), "ofmu.sweep": name, "ofmu.ablation": name,
            "ofmu.mode": ablation.mode, "axes": ",".join(ablation.axes), "base": ablation.base_from}
    reference = {results.REFERENCE + cfg.goal.x + k: v for k, v in floors.items()} | anchors
    searched = _searched(cfg, ablation) if ablation.mode == "tuned" else {}
    storage = Path(cfg.storage_path).resolve() / name if cfg.storage_path else folder
    context = trial_context(cfg, method, prepared, storage / "runs" / ablation.mode)  # the run every trial varies
    trials = cfg.trials_for(len(searched))  # per variant, the same for each
    params = {k: getattr(cfg, k) for k in ("epochs", "batch_size", "workers", "sampler", "seed")}
    params |= {"steps": context.spec.steps}
    params |= {"mode": ablation.mode, "base": ablation.base_from, **{f"base.{k}": v for k, v in ablation.base.items()}}
    params |= {"trials": trials} if ablation.mode == "tuned" else {"seeds": ablation.seeds}
    params |= {f"space.{k}": f"{d.kind}{list(d.values)}" for k, d in searched.items()}
    parents = {}
    for variant in ablation.variants():
        own = tags | {"variant": label(variant)} | {f"axis.{a}": str(v) for a, v in variant.items()}
        parents[label(variant)] = (_variant_run(client, experiment, name, variant, own, params | {
            f"variant.{a}": v for a, v in variant.items()}, reference), own)
    start_ray(address)
    # one Tune experiment over every variant, so that all their trials share the cluster at once
    logger = VariantLogger(client.tracking_uri, experiment, parents, ablation.axes,
                           (*cfg.family.result_files, "history.json"))
    if ablation.mode == "held":
        from ray import tune

        points = [_full(method, ablation.base | variant) | {"seed": seed} for variant in ablation.variants()
                  for seed in range(ablation.seeds)]
        fit(cfg, "held", None, 1, {"point": tune.grid_search(points)}, context, logger, storage, resume, len(points))
    else:
        start = {k: ablation.base.get(k, v) for k, v in defaults_in(method, searched).items()}  # the base first
        searches = {label(v): searcher(cfg, method, searched, f"{name}-{metric_key(v)}", start=start)
                    for v in ablation.variants()}
        held = _held(cfg)
        fixed = {label(v): {k: x for k, x in _full(method, ablation.base | held | v).items() if k not in searched}
                 for v in ablation.variants()}
        expected = trials * len(searches)
        fit(cfg, "tuned", VariantSearch(searches, fixed, trials), expected,
            {k: tune_domain(d) for k, d in searched.items()}, context, logger, storage, resume, expected)
    budget = {"steps": context.spec.steps, "epochs": cfg.epochs, "batch_size": cfg.batch_size, "workers": cfg.workers}
    budget |= {"trials": trials, "sampler": cfg.sampler, "searched": list(searched)} if searched else {
        "seeds": ablation.seeds}
    region = {"targets": results.points_of(anchored["target"], cfg.goal, floors), "tau": cfg.utility_floor,
              **results.region_settings(cfg.family, cfg.goal)}
    summary = summarize(client, experiment, name, ablation, cfg.goal, floors, budget, region)
    _log_comparison(client, experiment, name, tags, summary, parents)
    return summary | {"mlflow": {"tracking_uri": client.tracking_uri, "experiment": f"ablate/{name}",
                                 "experiment_id": experiment, "ablation": name}}


def _full(method: str, overrides: dict) -> dict:
    """The method's whole configuration with `overrides`: what a trial runs and its run records, so
    that every trial names every setting it ran with, not only those that differ from the defaults."""
    return asdict(build_config(method, overrides))


def _variant_run(client, experiment: str, name: str, variant: dict, tags: dict, params: dict,
                 reference: dict) -> str:
    """A variant's run (its id); a resumed ablation finds the one it made."""
    found = mlflow_log.find_runs(client, experiment, ofmu__sweep=name, ofmu__kind="variant", variant=label(variant))
    if found:
        return found[0].info.run_id
    run = client.create_run(experiment, run_name=label(variant), tags=tags | {"ofmu.kind": "variant"})
    mlflow_log.log_values(client, run.info.run_id, params, reference)
    return run.info.run_id


def _trials(client, experiment: str, name: str) -> dict[str, list]:
    """Per variant label, its finished trial runs, in trial order."""
    out: dict[str, list] = {}
    for run in sorted(mlflow_log.find_runs(client, experiment, ofmu__sweep=name, ofmu__kind="trial"),
                      key=lambda r: (int(r.data.tags.get("trial_index", 0)), r.info.start_time)):
        if run.info.status == "FINISHED":
            out.setdefault(run.data.tags["variant"], []).append(run)
    return out


def _mean_std(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarize(client, experiment: str, name: str, ablation: Ablation, objectives: Objectives,
              floors: dict[str, float], budget: dict, region: dict | None = None) -> dict:
    """An ablation's results, read back from its trial runs.

    Returns:
        {"name", "mode", "axes", "base", "base_config", "budget", "objectives", "reference" (per split key,
        the reference point's x), "variants": {label: {"values", "trials", "diverged", "splits": {key: per
        mode}}}, "ratios"}: held gives `{objective: {"mean", "std"}}` per split; tuned gives the
        headline (forget quality at kept utility), the anchored and floor-anchored hypervolumes, the
        front's points and the headline's trial per split, and the fronts themselves ("fronts").
        `region`: `summarize_fronts`' targets, tau, ideal_x and measurable_below.
        "ratios" holds, per variant, each logged term ratio's mean over its runs (held) or its best
        trial's (tuned), per step.
    """
    by_variant = _trials(client, experiment, name)
    variants = {label(v): v for v in ablation.variants()}
    fronts = summarize_fronts({k: [r.data.metrics for r in by_variant.get(k, [])] for k in variants}, floors,
                              objectives, **(region or {})) if ablation.mode == "tuned" else {}
    out: dict = {"name": name, "mode": ablation.mode, "axes": list(ablation.axes), "base": ablation.base_from,
                 "base_config": ablation.base, "budget": budget, "objectives": list(objectives.names()),
                 "reference": floors, "fronts": fronts,
                 "variants": {}, "ratios": {}}
    for key, variant in variants.items():
        runs = by_variant.get(key, [])
        entry = {"values": variant, "trials": len(runs), "splits": {},
                 "diverged": sum(1 for r in runs if r.data.metrics.get("diverged"))}
        for split in floors:
            x, y = objectives.names(split)
            if ablation.mode == "held":
                entry["splits"][split] = {n: dict(zip(("mean", "std"), _mean_std(
                    [r.data.metrics.get(n, math.nan) for r in runs]), strict=True)) for n in (x, y)}
            else:
                front = fronts[split]["methods"][key]
                best = _headline_run(runs, front, x, y, floors[split])
                entry["splits"][split] = {name: front[name] for name in (
                    "fq_at_kept_utility", "hypervolume", "hypervolume_floor")} | {"front": front["points"],
                                          "best": None if best is None else {
                                              x: best.data.metrics.get(x), y: best.data.metrics.get(y),
                                              "trial": best.data.tags.get("ray_trial_id"),
                                              "config": {k[len("method."):]: v for k, v in best.data.params.items()
                                                         if k.startswith("method.")}}}
        out["variants"][key] = entry
        shown = runs if ablation.mode == "held" else [r for r in runs if r.data.tags.get("ray_trial_id") ==
                                                      (entry["splits"][""].get("best") or {}).get("trial")]
        out["ratios"][key] = _ratios(client, shown)
    return out


def _ratios(client, runs: list) -> dict[str, list[tuple[int, float]]]:
    """Each logged term ratio's mean over `runs`, per step."""
    names = sorted({k for r in runs for k in r.data.metrics if k.startswith(RATIOS)})
    out = {}
    for name in names:
        by_step: dict[int, list[float]] = {}
        for run in runs:
            for m in client.get_metric_history(run.info.run_id, name):
                by_step.setdefault(m.step, []).append(m.value)
        out[name[len(RATIOS):]] = [(s, statistics.fmean(v)) for s, v in sorted(by_step.items())]
    return out


def _log_comparison(client, experiment: str, name: str, tags: dict, summary: dict, parents: dict) -> None:
    """The comparison run (created once): per-variant metrics, the plots, a CSV, the summary as JSON
    and as markdown on its page; each variant's run gets its own numbers and is marked finished."""
    from ofmu_ray.tracking.plots import plot_bars, plot_curves, plot_effects, plot_png

    found = mlflow_log.find_runs(client, experiment, ofmu__sweep=name, ofmu__kind="comparison")
    run_id = found[0].info.run_id if found else client.create_run(
        experiment, run_name="comparison", tags=tags | {"ofmu.kind": "comparison"}).info.run_id
    variants, axes, held = summary["variants"], summary["axes"], summary["mode"] == "held"
    metrics, rows = {}, []
    for key, entry in variants.items():
        own = {}
        for split, values in entry["splits"].items():
            # held: <objective>/mean and /std; tuned: the headline and hypervolumes[/<hard split>]
            figures = ("fq_at_kept_utility", "hypervolume", "hypervolume_floor")
            numbers = ({f"{n}/{stat}": v for n, stats in values.items() for stat, v in stats.items()} if held
                       else {f"{n}{split}": values[n] for n in figures if values[n] is not None})
            own |= numbers
            rows.append({"variant": key, **entry["values"], "split": split.lstrip("/") or "forget",
                         "trials": entry["trials"], **{k.replace(split + "/", "_").removesuffix(split): v
                                                       for k, v in numbers.items()}})
        mlflow_log.finish(client, parents[key][0], own)
        metrics |= {f"{k}/{metric_key(entry['values'])}": v for k, v in own.items()}
    x, y = summary["objectives"]
    trials = _trials(client, experiment, name)
    with tempfile.TemporaryDirectory() as tmp:
        files: dict = {"variants.csv": rows}
        for split in summary["reference"]:
            where = split.lstrip("/") or "forget split"
            path = Path(tmp) / f"{'effects' if held else 'front'}{split.replace('/', '_')}.png"
            if held:
                panels = {}
                for objective in (x, y):
                    panels[objective + split] = lines = {}
                    for entry in variants.values():
                        values = entry["values"]
                        line = label({a: values[a] for a in axes[1:]})
                        stats = entry["splits"][split]
                        lines.setdefault(line, []).append((str(values[axes[0]]), stats[objective + split]["mean"],
                                                           stats[objective + split]["std"]))
                files[path.name] = plot_effects(panels, axes[0], f"{summary['name']}: {where} (held, mean ± std "
                                                f"over seeds)", path)
            else:
                fronts = summary["fronts"][split] | {"oracle": None}
                points = {k: [(r.data.metrics.get(x + split, math.nan), r.data.metrics.get(y + split, math.nan))
                              for r in runs] for k, runs in trials.items()}
                files[path.name] = plot_png(points, fronts, f"{summary['name']}: {where} (tuned)", path)
        if not held:
            shown = "fq_at_kept_utility" if summary["fronts"][""]["target"] else "hypervolume_floor"
            groups = {split.lstrip("/") or "forget": {k: math.nan if e["splits"][split][shown] is None
                                                      else e["splits"][split][shown] for k, e in variants.items()}
                      for split in summary["reference"]}
            path = Path(tmp) / "headline.png"
            files[path.name] = plot_bars(groups, f"{shown}, higher is better",
                                         f"{summary['name']}: each variant at its best (tuned)", path)
        panels = {}
        for key, ratios in summary["ratios"].items():
            for ratio, points in ratios.items():
                panels.setdefault(ratio, {})[key] = points
        if panels:
            path = Path(tmp) / "ratios.png"
            files[path.name] = plot_curves(panels, "step", f"{summary['name']}: term ratios per step "
                                           f"({'mean over seeds' if held else 'best trial'})", path)
        (Path(tmp) / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
        files["summary.json"] = Path(tmp) / "summary.json"
        note = markdown(summary)
        (Path(tmp) / "summary.md").write_text(note)
        files["summary.md"] = Path(tmp) / "summary.md"
        mlflow_log.log_files(client, run_id, files, "ablation")
    mlflow_log.finish(client, run_id, metrics, {"mlflow.note.content": note})  # the run page shows the note


def _short(value: str) -> str:
    """A logged parameter as people read it: floats to 3 significant digits (Optuna samples 17)."""
    try:
        return f"{float(value):.3g}" if any(c in value for c in ".e") else value
    except ValueError:
        return value


def markdown(summary: dict) -> str:
    """The summary as markdown: what ran (mode, base, budget) and its tables. The comparison run's page
    shows it, and the command prints it."""
    held, budget = summary["mode"] == "held", summary["budget"]
    x, y = summary["objectives"]
    base = summary["base"]
    if base.startswith("sweep:"):
        base += ": " + ", ".join(f"{k}={v}" for k, v in summary["base_config"].items())
    runs = f"{budget['steps']} forget batches of {budget['batch_size']} per run" + (
        f", {budget['epochs']:g} epochs" if budget.get("epochs") else "")
    lines = [f"# Ablation `{summary['name']}`: {', '.join(summary['axes'])}", "",
             f"Mode **held**: every variant at the base configuration, {budget['seeds']} seed(s) each ({runs}); "
             "mean ± std over the seeds." if held else
             f"Mode **tuned**: each variant its own Optuna search ({budget['sampler']}) of {budget['trials']} trials "
             f"({runs}) over {', '.join(budget['searched'])}, its first trial the base; variants compared at their "
             "best: the best forget quality among trials keeping the utility floor, and the anchored hypervolume.",
             "", f"Base: {base}.", ""]
    variants = summary["variants"]
    if held:
        for split in summary["reference"]:
            lines += [f"## {split.lstrip('/') or 'forget split'}", "",
                      f"| variant | runs | {x}{split} | {y}{split} |", "|---|---:|---:|---:|"]
            for key, entry in variants.items():
                cells = [f"{entry['splits'][split][n]['mean']:.3f} ± {entry['splits'][split][n]['std']:.3f}"
                         for n in (x + split, y + split)]
                lines.append(f"| {key} | {entry['trials']} | " + " | ".join(cells) + " |")
            lines.append("")
    else:
        names = [s.lstrip("/") or "forget" for s in summary["reference"]]
        lines += ["## Each variant's forget quality at kept utility / anchored hypervolume", "",
                  "| variant | trials | " + " | ".join(names) + " |", "|---|---:|" + "---:|" * len(names)]
        for key, entry in variants.items():
            lines.append(f"| {key} | {entry['trials']} | " + " | ".join(
                f"{headline(entry['splits'][s])} / {anchored(entry['splits'][s], summary['fronts'][s])}"
                for s in summary["reference"]) + " |")
        lines += ["", "## Each variant's headline trial (forget split)", "", f"| variant | {x} | {y} | configuration |",
                  "|---|---:|---:|---|"]
        for key, entry in variants.items():
            best = entry["splits"][""]["best"]
            if best:
                config = ", ".join(f"{k}={_short(v)}" for k, v in best["config"].items()
                                   if k in summary["budget"]["searched"])
                lines.append(f"| {key} | {best[x]:.3f} | {best[y]:.3f} | {config} |")
        lines.append("")
    diverged = {k: e["diverged"] for k, e in variants.items() if e["diverged"]}
    if diverged:
        lines += ["Diverged runs (not evaluated): " + ", ".join(f"{k} {n}" for k, n in diverged.items()), ""]
    return "\n".join(lines)
