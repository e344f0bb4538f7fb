"""A sweep's results as MLflow holds them: the fronts and hypervolumes, computed from the trial
runs alone (so `ofmu-ray pareto` can rebuild them anywhere), logged, and printed as a table.

What a sweep's family measures (its default objectives, the metrics beside them in the seed
table) is looked up from the `bench` tag of its runs."""

from __future__ import annotations

import json
import math
import statistics
import tempfile
from pathlib import Path

from ofmu_ray.cache import slug
from ofmu_ray.errors import UsageError
from ofmu_ray.families import family_of
from ofmu_ray.families.base import Family
from ofmu_ray.tracking import browse
from ofmu_ray.tracking.mlflow_log import connect, find_runs, finish, log_files, log_table
from ofmu_ray.tune.config import Objectives
from ofmu_ray.tune.pareto import summarize_fronts

REFERENCE = "reference/"  # + the x objective + split key: the reference points' x, logged on every parent run


def latest_sweep(client, experiment: str) -> str:
    """The name of the experiment's most recently started sweep."""
    runs = find_runs(client, experiment, ofmu__kind="method")
    if not runs:
        raise UsageError("this experiment holds no sweep (no run tagged ofmu.kind=method)")
    return max(runs, key=lambda r: r.info.start_time).data.tags["ofmu.sweep"]


def sweep_reference(client, experiment: str, sweep: str) -> tuple[Objectives, dict[str, float]]:
    """The objectives (tag `objectives`) and reference points' x per split key a sweep recorded on
    its parent runs."""
    for run in find_runs(client, experiment, ofmu__sweep=sweep, ofmu__kind="method"):
        objectives = Objectives(*(run.data.tags["objectives"].split(",") if "objectives" in run.data.tags
                                  else family_of(run.data.tags["bench"]).objectives))  # sweeps before the tag
        prefix = REFERENCE + objectives.x
        found = {k[len(prefix):]: v for k, v in run.data.metrics.items() if k.startswith(prefix)}
        if found:
            return objectives, found
    raise UsageError(f"sweep {sweep!r} recorded no reference points ({REFERENCE}*) in this experiment")


def sweep_family(client, experiment: str, sweep: str) -> Family:
    """The family of the bench a sweep ran on (its runs' `bench` tag)."""
    runs = find_runs(client, experiment, ofmu__sweep=sweep, ofmu__kind="method")
    if not runs:
        raise UsageError(f"no sweep {sweep!r} in this experiment (no run tagged ofmu.kind=method)")
    return family_of(runs[0].data.tags["bench"])


def sweep_models(client, experiment: str, sweep: str) -> list[str]:
    """The models a sweep ran, in the order it ran them."""
    runs = find_runs(client, experiment, ofmu__sweep=sweep, ofmu__kind="method")
    runs.sort(key=lambda r: r.info.start_time)
    return list(dict.fromkeys(r.data.tags["model"] for r in runs))


def trial_runs(client, experiment: str, sweep: str, kind: str = "trial", model: str | None = None) -> dict[str, list]:
    """Per method, the sweep's finished runs of one kind (on one model, or all), in trial order."""
    where = {"model": model} if model else {}
    runs = [r for r in find_runs(client, experiment, ofmu__sweep=sweep, ofmu__kind=kind, **where)
            if r.info.status == "FINISHED"]
    out: dict[str, list] = {}
    for run in sorted(runs, key=lambda r: (int(r.data.tags.get("trial_index", 0)), r.info.start_time)):
        out.setdefault(run.data.tags["method"], []).append(run)
    return out


def fronts_of(client, experiment: str, sweep: str, methods: list[str] | None = None,
              model: str | None = None) -> tuple[dict, dict]:
    """(the sweep's finished trial runs per method on `model`, `summarize_fronts` of them)."""
    runs = {m: rs for m, rs in trial_runs(client, experiment, sweep, model=model).items()
            if methods is None or m in methods}
    objectives, floors = sweep_reference(client, experiment, sweep)
    return runs, summarize_fronts({m: [r.data.metrics for r in rs] for m, rs in runs.items()}, floors, objectives)


def _front_rows(runs: dict[str, list], fronts: dict) -> list[dict]:
    rows = []
    for key, summary in fronts.items():
        fq, mu = summary["objectives"]
        for front_of, entry in summary["methods"].items():
            members = ([(front_of, i) for i in entry["front"]] if front_of != "all" else entry["front"])
            for method, i in members:
                run = runs[method][i]
                rows.append({"split": key.lstrip("/") or "forget", "front_of": front_of, "method": method,
                             "run_id": run.info.run_id, "ray_trial_id": run.data.tags.get("ray_trial_id"),
                             fq: run.data.metrics[fq], mu: run.data.metrics[mu],
                             **{k: v for k, v in run.data.params.items() if k.startswith("method.")}})
    return rows


def _trial_rows(runs: dict[str, list], fronts: dict) -> list[dict]:
    """One row per trial: its method, run, objectives, whether it is on its method's front of the
    forget split, and its hyper-parameters."""
    x, y = fronts[""]["objectives"]
    rows = []
    for method, method_runs in runs.items():
        on_front = set(fronts[""]["methods"][method]["front"])
        for i, run in enumerate(method_runs):
            rows.append({"method": method, "trial": run.info.run_name, "on_front": i in on_front,
                         x: run.data.metrics.get(x), y: run.data.metrics.get(y),
                         "ray_trial_id": run.data.tags.get("ray_trial_id"),
                         **{k: v for k, v in run.data.params.items() if k.startswith("method.")}})
    return rows


def log_fronts(client, experiment: str, sweep: str, run_id: str, methods: list[str], title: str,
               html: bool, model: str | None = None) -> dict:
    """Logs the fronts of `methods` on `model` to `run_id` (hypervolume metrics; PNG, optional HTML,
    CSV and JSON artifacts under `pareto/`, every trial as the table `pareto/trials.json`), writes them
    as the run's description (the tables with their plots, on its overview page), marks it finished,
    and returns `summarize_fronts`' result."""
    from ofmu_ray.tracking.plots import plot_html, plot_png

    runs, fronts = fronts_of(client, experiment, sweep, methods, model)
    metrics, points = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        files: dict = {"fronts.csv": _front_rows(runs, fronts)}
        for key, summary in fronts.items():
            fq, mu = summary["objectives"]
            for method, entry in summary["methods"].items():
                if len(methods) > 1:
                    metrics[f"hypervolume{key}/{method}"] = entry["hypervolume"]
                    if method != "all" and not math.isnan(entry["hypervolume_equal_compute"]):
                        metrics[f"hypervolume_equal_compute{key}/{method}"] = entry["hypervolume_equal_compute"]
                elif method != "all":
                    metrics[f"hypervolume{key}"] = entry["hypervolume"]
            points[key] = {m: [(r.data.metrics.get(fq, math.nan), r.data.metrics.get(mu, math.nan)) for r in rs]
                           for m, rs in runs.items()}
            name = "front" + key.replace("/", "_")
            files[f"{name}.png"] = plot_png(points[key], summary, f"{title}: {key.lstrip('/') or 'forget split'}",
                                            Path(tmp) / f"{name}.png")
        if html:
            files["fronts.html"] = plot_html(points, fronts, title, Path(tmp) / "fronts.html")
        (Path(tmp) / "fronts.json").write_text(json.dumps(fronts, indent=1))
        files["fronts.json"] = Path(tmp) / "fronts.json"
        log_files(client, run_id, files, "pareto")
    log_table(client, run_id, _trial_rows(runs, fronts), "pareto/trials.json")
    links = {"interactive plot": "pareto/fronts.html"} if html else {}
    links |= {"every trial": "pareto/trials.json", "front members (CSV)": "pareto/fronts.csv"}
    plots = {key: f"pareto/front{key.replace('/', '_')}.png" for key in fronts}
    browse.describe(client, run_id, browse.fronts_markdown(fronts, title, experiment, run_id, plots, links))
    finish(client, run_id, metrics)
    return fronts


def _by_model(client, experiment: str, sweep: str, models: list[str]) -> tuple[Objectives, dict, dict]:
    """(objectives, reference floors, {model: {method: finished trial runs}}) of a sweep."""
    objectives, floors = sweep_reference(client, experiment, sweep)
    return objectives, floors, {model: trial_runs(client, experiment, sweep, model=model) for model in models}


def _table(objectives: Objectives, floors: dict, runs: dict) -> dict:
    table: dict = {key: {} for key in floors}
    for model, by_method in runs.items():
        fronts = summarize_fronts({m: [r.data.metrics for r in rs] for m, rs in by_method.items()}, floors, objectives)
        for key, summary in fronts.items():
            for method in by_method:
                table[key].setdefault(method, {})[model] = summary["methods"][method]["hypervolume"]
    return table


def hypervolume_table(client, experiment: str, sweep: str, models: list[str]) -> dict:
    """{split key: {method: {model: hypervolume}}} of a sweep over several models, from its runs."""
    return _table(*_by_model(client, experiment, sweep, models))


def log_models(client, experiment: str, sweep: str, run_id: str, models: list[str], title: str) -> dict:
    """How each method's front moves across models: logs `hypervolume[/<hard>]/<method>/<model>`, a
    plot of hypervolume per model for each split, each method's fronts per model in one plot, and a
    CSV to `run_id` (under `models/`); marks it finished and returns `hypervolume_table`."""
    from ofmu_ray.tracking.plots import plot_hypervolumes, plot_png

    objectives, floors, runs = _by_model(client, experiment, sweep, models)
    table = _table(objectives, floors, runs)
    rows = [{"split": key.lstrip("/") or "forget", "method": method, "model": model, "hypervolume": hv}
            for key, by_method in table.items() for method, by_model in by_method.items()
            for model, hv in by_model.items()]
    metrics = {f"hypervolume{key}/{method}/{slug(model)}": hv for key, by_method in table.items()
               for method, by_model in by_method.items() for model, hv in by_model.items()}
    fq, mu = objectives.names()
    with tempfile.TemporaryDirectory() as tmp:
        files: dict = {"hypervolumes.csv": rows}
        for key, by_method in table.items():
            path = Path(tmp) / f"hypervolume{key.replace('/', '_')}.png"
            files[path.name] = plot_hypervolumes(by_method, f"{title}: {key.lstrip('/') or 'forget split'}", path)
        for method in table[""]:
            by_model = {model: runs[model].get(method, []) for model in models}
            trials = {model: [(r.data.metrics.get(fq, math.nan), r.data.metrics.get(mu, math.nan)) for r in rs]
                      for model, rs in by_model.items()}
            fronts = summarize_fronts({model: [r.data.metrics for r in rs] for model, rs in by_model.items()},
                                      floors, objectives)
            path = Path(tmp) / f"front_{method}.png"
            files[path.name] = plot_png(trials, fronts[""], f"{method} across models, {title}", path)
        log_files(client, run_id, files, "models")
    finish(client, run_id, metrics)
    return table


def seed_table(client, experiment: str, sweep: str, model: str | None = None) -> list[dict]:
    """Mean and standard deviation over the seed re-runs of each front configuration (on `model`)."""
    objectives, _ = sweep_reference(client, experiment, sweep)
    shown = (*objectives.names(), *sweep_family(client, experiment, sweep).seed_metrics)
    rows = []
    for method, runs in trial_runs(client, experiment, sweep, kind="seed", model=model).items():
        by_source: dict[str, list] = {}
        for run in runs:
            by_source.setdefault(run.data.tags["ofmu.source_trial"], []).append(run)
        for source, group in by_source.items():
            row = {"method": method, "source_trial": source, "seeds": len(group)}
            for name in shown:
                values = [r.data.metrics[name] for r in group if name in r.data.metrics]
                if values:
                    row[f"{name}_mean"] = statistics.fmean(values)
                    row[f"{name}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
            rows.append(row)
    return rows


def format_table(fronts: dict) -> str:
    """Per split: each method's trials, front size, hypervolume and front points, as text."""
    from ofmu_ray.tracking.browse import at_equal_compute

    lines = []
    for key, summary in fronts.items():
        (ref, _), (x, y) = summary["reference"], summary["objectives"]
        lines.append(f"{key.lstrip('/') or 'forget split'}  (reference point: {x} {ref:.2f}, {y} 0)")
        lines.append(f"  {'method':<12}{'trials':>7}{'front':>7}{'hypervolume':>13}{'at equal compute':>20}"
                     f"  front ({x}, {y})")
        for method, entry in summary["methods"].items():
            points = ", ".join(f"({x:.2f}, {y:.3f})" for x, y in entry["points"])
            equal = at_equal_compute(entry, "tr", "")  # the combined front ("all") has none
            lines.append(f"  {method:<12}{entry['trials']:>7}{len(entry['points']):>7}"
                         f"{entry['hypervolume']:>13.4f}{equal:>20}  {points}")
        if not math.isnan(summary.get("compute", math.nan)):
            lines.append(f"  equal compute: {summary['compute']:.3g} FLOPs, the least any method spent on its "
                         "trials; each method's trials in the order they ran, up to it")
    return "\n".join(lines)


def format_hypervolumes(table: dict) -> str:
    """Each method's hypervolume per model, per split, as text."""
    lines = []
    for key, by_method in table.items():
        models = list(dict.fromkeys(m for by_model in by_method.values() for m in by_model))
        width = max(12, *(len(m) + 2 for m in models))
        lines.append(f"{key.lstrip('/') or 'forget split'}: hypervolume by model")
        lines.append(f"  {'method':<12}" + "".join(f"{m:>{width}}" for m in models))
        for method, by_model in by_method.items():
            lines.append(f"  {method:<12}" + "".join(f"{by_model.get(m, math.nan):>{width}.4f}" for m in models))
    return "\n".join(lines)


def format_seeds(rows: list[dict], objectives: tuple[str, str]) -> str:
    """The seed re-runs as text: mean +- std of both objectives per front configuration."""
    fq, mu = objectives
    lines = [f"  {'method':<12}{'trial':<16}{'seeds':>6}  {fq:>18}  {mu:>16}"]
    for r in rows:
        lines.append(f"  {r['method']:<12}{r['source_trial']:<16}{r['seeds']:>6}  "
                     f"{r[fq + '_mean']:>9.3f} +- {r[fq + '_std']:<6.3f}  "
                     f"{r[mu + '_mean']:>7.3f} +- {r[mu + '_std']:.3f}")
    return "\n".join(lines)


def from_store(tracking_uri: str, experiment: str, sweep: str | None = None) -> dict:
    """A sweep's fronts, seed re-runs and (with several models) hypervolume table, rebuilt from the
    store alone, in `run_sweep`'s result layout (what `ofmu-ray pareto` prints).

    Raises:
        UsageError: no such experiment (naming those there are), or no sweep in it.
    """
    client = connect(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = [e.name for e in client.search_experiments()]
        raise UsageError(f"no experiment {experiment!r} in {tracking_uri}; it has: {', '.join(names) or 'none'}")
    exp = found.experiment_id
    sweep = sweep or latest_sweep(client, exp)
    models = sweep_models(client, exp, sweep)
    result = {"models": {m: {"fronts": fronts_of(client, exp, sweep, model=m)[1],
                             "seeds": seed_table(client, exp, sweep, m)} for m in models},
              "mlflow": {"tracking_uri": tracking_uri, "experiment": experiment, "experiment_id": exp, "sweep": sweep}}
    parents = find_runs(client, exp, ofmu__sweep=sweep, ofmu__kind="method")
    if parents and "search_effort" in parents[0].data.params:
        result["search_effort"] = parents[0].data.params["search_effort"]
    if len(models) > 1:
        result["hypervolumes"] = hypervolume_table(client, exp, sweep, models)
    return result
