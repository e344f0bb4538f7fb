"""A sweep's results as MLflow holds them: the headline (forget quality at kept utility, `pareto`),
the fronts and hypervolumes, computed from the trial runs and the target's point logged on the method
runs (so `ofmu-ray pareto` can rebuild them anywhere), logged, and printed as a table.

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
from ofmu_ray.tune.config import UTILITY_FLOOR, Objectives
from ofmu_ray.tune.pareto import summarize_fronts

REFERENCE = "reference/"  # + the x objective + split key: the floor-anchored reference points' x, on every parent run
ANCHORS = ("target", "oracle")  # + "/" + a metric: the target's and the oracle's points, on every parent run


def anchor_metrics(points: dict[str, dict[str, float]], objectives: Objectives, keys) -> dict[str, float]:
    """What a sweep logs of `Family.references`' points: `target/<metric>` and `oracle/<metric>`, for
    both objectives of every split key."""
    names = {n for key in keys for n in objectives.names(key)}
    return {f"{who}/{n}": metrics[n] for who, metrics in points.items() if who in ANCHORS
            for n in sorted(names) if n in metrics}


def sweep_anchors(client, experiment: str, sweep: str, model: str | None = None) -> dict[str, dict[str, float]]:
    """The target's and the oracle's points a sweep logged on its method runs of `model` (`anchor_metrics`):
    `{"target": {metric: value}, "oracle": ...}`; empty for a sweep from before they were logged."""
    where = {"model": model} if model else {}
    for run in find_runs(client, experiment, ofmu__sweep=sweep, ofmu__kind="method", **where):
        found = {who: {k[len(who) + 1:]: v for k, v in run.data.metrics.items() if k.startswith(who + "/")}
                 for who in ANCHORS}
        if found["target"]:
            return {who: v for who, v in found.items() if v}
    return {}


def points_of(metrics: dict[str, float], objectives: Objectives, keys) -> dict[str, tuple[float, float]]:
    """Per split key, a model's (x, y) from its `metrics` (the target's or the oracle's), where both are there."""
    return {key: (metrics[x], metrics[y]) for key in keys for x, y in [objectives.names(key)]
            if x in metrics and y in metrics}


def region_settings(family: Family, objectives: Objectives) -> dict:
    """The family's `ideal_x` and `measurable_below` for the sweep's x objective (`summarize_fronts`)."""
    x = objectives.x.removeprefix("robust/")
    return {"ideal_x": family.ideal_x.get(x), "measurable_below": family.measurable_below.get(x)}


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
              model: str | None = None, tau: float = UTILITY_FLOOR) -> tuple[dict, dict]:
    """(the sweep's finished trial runs per method on `model`, `summarize_fronts` of them, read at the
    target's point the sweep logged and `tau`)."""
    runs = {m: rs for m, rs in trial_runs(client, experiment, sweep, model=model).items()
            if methods is None or m in methods}
    objectives, floors = sweep_reference(client, experiment, sweep)
    anchors = sweep_anchors(client, experiment, sweep, model)
    fronts = summarize_fronts({m: [r.data.metrics for r in rs] for m, rs in runs.items()}, floors, objectives,
                              points_of(anchors.get("target", {}), objectives, floors), tau,
                              **region_settings(sweep_family(client, experiment, sweep), objectives))
    oracle = points_of(anchors.get("oracle", {}), objectives, floors)
    for key, summary in fronts.items():  # marked on the plots
        summary["oracle"] = dict(zip(objectives.names(), oracle[key], strict=True)) if key in oracle else None
    return runs, fronts


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


def front_metrics(fronts: dict, several: bool) -> dict[str, float]:
    """The fronts' figures as MLflow metrics: `fq_at_kept_utility`, `hypervolume` (anchored) and
    `hypervolume_floor` per split key (and per method, with `several` methods; `/all` for the combined
    front), and the first two at equal compute. A headline no trial reached is not logged."""
    metrics = {}
    for key, summary in fronts.items():
        for method, entry in summary["methods"].items():
            if not several and method == "all":
                continue
            at = f"{key}/{method}" if several else key
            for name in ("fq_at_kept_utility", "hypervolume", "hypervolume_floor"):
                metrics[name + at] = entry[name]
            if several and method != "all":
                for name in ("fq_at_kept_utility_equal_compute", "hypervolume_equal_compute"):
                    metrics[name + at] = entry.get(name)
    return {k: v for k, v in metrics.items() if v is not None}


def log_fronts(client, experiment: str, sweep: str, run_id: str, methods: list[str], title: str,
               html: bool, model: str | None = None, tau: float = UTILITY_FLOOR) -> dict:
    """Logs the fronts of `methods` on `model` to `run_id` (`front_metrics`; PNG, optional HTML, CSV and
    JSON artifacts under `pareto/`, every trial as the table `pareto/trials.json`), writes them as the
    run's description (the tables with their plots, on its overview page), marks it finished, and
    returns `summarize_fronts`' result."""
    from ofmu_ray.tracking.plots import plot_html, plot_png

    runs, fronts = fronts_of(client, experiment, sweep, methods, model, tau)
    points = {}
    with tempfile.TemporaryDirectory() as tmp:
        files: dict = {"fronts.csv": _front_rows(runs, fronts)}
        for key, summary in fronts.items():
            fq, mu = summary["objectives"]
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
    finish(client, run_id, front_metrics(fronts, len(methods) > 1))
    return fronts


def headline_table(client, experiment: str, sweep: str, models: list[str], tau: float = UTILITY_FLOOR) -> dict:
    """{split key: {method: {model: forget quality at kept utility}}} of a sweep over several models, from
    its runs: each model read at its own target's point (None where no trial kept its utility)."""
    table: dict = {}
    for model in models:
        for key, summary in fronts_of(client, experiment, sweep, model=model, tau=tau)[1].items():
            for method, entry in summary["methods"].items():
                if method != "all":
                    table.setdefault(key, {}).setdefault(method, {})[model] = entry["fq_at_kept_utility"]
    return table


def log_models(client, experiment: str, sweep: str, run_id: str, models: list[str], title: str,
               tau: float = UTILITY_FLOOR) -> dict:
    """How each method's headline moves across models: logs `fq_at_kept_utility[/<hard>]/<method>/<model>`,
    a plot of it per model for each split, each method's fronts per model in one plot, and a CSV to
    `run_id` (under `models/`); marks it finished and returns `headline_table`."""
    from ofmu_ray.tracking.plots import plot_by_model, plot_png

    table = headline_table(client, experiment, sweep, models, tau)
    rows = [{"split": key.lstrip("/") or "forget", "method": method, "model": model, "fq_at_kept_utility": value}
            for key, by_method in table.items() for method, by_model in by_method.items()
            for model, value in by_model.items()]
    metrics = {f"fq_at_kept_utility{key}/{method}/{slug(model)}": value for key, by_method in table.items()
               for method, by_model in by_method.items() for model, value in by_model.items() if value is not None}
    objectives, floors = sweep_reference(client, experiment, sweep)
    fq, mu = objectives.names()
    runs = {model: trial_runs(client, experiment, sweep, model=model) for model in models}
    with tempfile.TemporaryDirectory() as tmp:
        files: dict = {"headlines.csv": rows}
        for key, by_method in table.items():
            path = Path(tmp) / f"headline{key.replace('/', '_')}.png"
            shown = {m: {model: math.nan if v is None else v for model, v in by_model.items()}
                     for m, by_model in by_method.items()}
            files[path.name] = plot_by_model(shown, f"{title}: {key.lstrip('/') or 'forget split'}", path,
                                                 f"best {fq} at {tau:g} x the target's {mu}")
        for method in table[""]:
            by_model = {model: runs[model].get(method, []) for model in models}
            trials = {model: [(r.data.metrics.get(fq, math.nan), r.data.metrics.get(mu, math.nan)) for r in rs]
                      for model, rs in by_model.items()}
            # each model has its own target: the fronts side by side, above the floor-anchored reference
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


def _trial_name(entry: dict, method: str) -> str:
    trial = entry["fq_at_kept_utility_trial"]
    if trial is None:
        return "-"
    return f"{trial[0]} #{trial[1]}" if method == "all" else f"#{trial}"


def format_table(fronts: dict) -> str:
    """Per split: first the headline (each method's forget quality at kept utility, the trial reaching it
    and its utility, the anchored hypervolume, the rank at each tau), with tau and the target's point
    stated; then the fronts (floor-anchored hypervolume and points), as text."""
    from ofmu_ray.tracking.browse import anchored, at_equal_compute, headline

    lines = []
    for key, summary in fronts.items():
        (floor, _), (x, y) = summary["reference"], summary["objectives"]
        name = key.lstrip("/") or "forget split"
        if summary["target"]:
            tx, ty = summary["target"].values()
            lines.append(f"{name}: best {x} among trials keeping {summary['utility_floor']:g} x the target's {y} "
                         f"(target: {x} {tx:.2f}, {y} {ty:.3f}; floor {summary['utility_floor'] * ty:.3f})")
        else:
            lines.append(f"{name}: the headline needs the target's point, which this sweep did not log "
                         "(swept before it was); the fronts above the floor-anchored reference follow")
        lines.append(f"  {'method':<12}{'trials':>7}{'headline':>10}{'trial':>14}{'its utility':>13}{'hypervolume':>16}"
                     f"{'at equal compute':>30}")
        for method in [*summary["order"], "all"]:
            entry = summary["methods"][method]
            mu = entry["fq_at_kept_utility_mu"]
            equal = at_equal_compute(entry, summary, "tr", "")
            lines.append(f"  {method:<12}{entry['trials']:>7}{headline(entry):>10}{_trial_name(entry, method):>14}"
                         f"{'-' if mu is None else f'{mu:.3f}':>13}{anchored(entry, summary):>16}{equal:>30}")
        if summary["ranks"]:
            lines.append("  rank by tau: " + "; ".join(f"{t}: {' > '.join(r)}" for t, r in summary["ranks"].items())
                         + ("  (the order changes with tau)" if summary["order_changes"] else "  (the same order)"))
        if not math.isnan(summary.get("compute", math.nan)):
            lines.append(f"  equal compute: {summary['compute']:.3g} FLOPs, the least any method spent on its "
                         "trials; each method's trials in the order they ran, up to it")
        lines.append(f"  fronts (reference point: {x} {floor:.2f}, {y} 0)")
        lines.append(f"  {'method':<12}{'front':>7}{'hypervolume_floor':>19}  front ({x}, {y})")
        for method, entry in summary["methods"].items():
            points = ", ".join(f"({a:.2f}, {b:.3f})" for a, b in entry["points"])
            lines.append(f"  {method:<12}{len(entry['points']):>7}{entry['hypervolume_floor']:>19.4f}  {points}")
    return "\n".join(lines)


def format_by_model(table: dict) -> str:
    """Each method's forget quality at kept utility per model, per split, as text."""
    lines = []
    for key, by_method in table.items():
        models = list(dict.fromkeys(m for by_model in by_method.values() for m in by_model))
        width = max(12, *(len(m) + 2 for m in models))
        lines.append(f"{key.lstrip('/') or 'forget split'}: forget quality at kept utility by model (none: no trial "
                     "kept it)")
        lines.append(f"  {'method':<12}" + "".join(f"{m:>{width}}" for m in models))
        for method, by_model in by_method.items():
            cells = ("none" if by_model.get(m) is None else f"{by_model[m]:.2f}" for m in models)
            lines.append(f"  {method:<12}" + "".join(f"{c:>{width}}" for c in cells))
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


def from_store(tracking_uri: str, experiment: str, sweep: str | None = None, tau: float = UTILITY_FLOOR) -> dict:
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
    result = {"models": {m: {"fronts": fronts_of(client, exp, sweep, model=m, tau=tau)[1],
                             "seeds": seed_table(client, exp, sweep, m)} for m in models},
              "mlflow": {"tracking_uri": tracking_uri, "experiment": experiment, "experiment_id": exp, "sweep": sweep}}
    parents = find_runs(client, exp, ofmu__sweep=sweep, ofmu__kind="method")
    if parents and "search_effort" in parents[0].data.params:
        result["search_effort"] = parents[0].data.params["search_effort"]
    if len(models) > 1:
        result["headline_by_model"] = headline_table(client, exp, sweep, models, tau)
    return result
