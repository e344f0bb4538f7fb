"""A sweep's results as MLflow holds them: the fronts and hypervolumes, computed from the trial
runs alone (so `ofmu-ray pareto` can rebuild them anywhere), logged, and printed as a table."""

from __future__ import annotations

import json
import math
import statistics
import tempfile
from pathlib import Path

from ofmu_ray.data import TofuData
from ofmu_ray.prepare import UsageError
from ofmu_ray.tracking.mlflow_log import find_runs, finish, log_files
from ofmu_ray.tune.pareto import log10_fq_floor, metric_names, summarize_fronts

FLOOR = "reference/log10_forget_quality"  # + split key: the floors, logged on every parent run


def floors(data: TofuData, split: str) -> dict[str, float]:
    """The reference point's log10 FQ floor per split key: the forget split and each hard split."""
    from ofmu_ray.data.synth_tofu import HARD_SPLITS

    out = {"": log10_fq_floor(len(data[split]))}
    out |= {f"/{h}": log10_fq_floor(len(data[f"{split}_{h}"])) for h in HARD_SPLITS if f"{split}_{h}" in data}
    return out


def latest_sweep(client, experiment: str) -> str:
    """The name of the experiment's most recently started sweep."""
    runs = find_runs(client, experiment, ofmu__kind="method")
    if not runs:
        raise UsageError("this experiment holds no sweep (no run tagged ofmu.kind=method)")
    return max(runs, key=lambda r: r.info.start_time).data.tags["ofmu.sweep"]


def sweep_floors(client, experiment: str, sweep: str) -> dict[str, float]:
    """The reference floors a sweep recorded on its parent runs."""
    for run in find_runs(client, experiment, ofmu__sweep=sweep, ofmu__kind="method"):
        found = {k[len(FLOOR):]: v for k, v in run.data.metrics.items() if k.startswith(FLOOR)}
        if found:
            return found
    raise UsageError(f"sweep {sweep!r} recorded no reference floors ({FLOOR}*) in this experiment")


def trial_runs(client, experiment: str, sweep: str, kind: str = "trial") -> dict[str, list]:
    """Per method, the sweep's finished runs of one kind, in trial order."""
    runs = [r for r in find_runs(client, experiment, ofmu__sweep=sweep, ofmu__kind=kind)
            if r.info.status == "FINISHED"]
    out: dict[str, list] = {}
    for run in sorted(runs, key=lambda r: (int(r.data.tags.get("trial_index", 0)), r.info.start_time)):
        out.setdefault(run.data.tags["method"], []).append(run)
    return out


def fronts_of(client, experiment: str, sweep: str, methods: list[str] | None = None) -> tuple[dict, dict]:
    """(the sweep's finished trial runs per method, `summarize_fronts` of them)."""
    runs = {m: rs for m, rs in trial_runs(client, experiment, sweep).items() if methods is None or m in methods}
    fronts = summarize_fronts({m: [r.data.metrics for r in rs] for m, rs in runs.items()},
                              sweep_floors(client, experiment, sweep))
    return runs, fronts


def _front_rows(runs: dict[str, list], fronts: dict) -> list[dict]:
    rows = []
    for key, summary in fronts.items():
        fq, mu = metric_names(key)
        for front_of, entry in summary["methods"].items():
            members = ([(front_of, i) for i in entry["front"]] if front_of != "all" else entry["front"])
            for method, i in members:
                run = runs[method][i]
                rows.append({"split": key.lstrip("/") or "forget", "front_of": front_of, "method": method,
                             "run_id": run.info.run_id, "ray_trial_id": run.data.tags.get("ray_trial_id"),
                             fq: run.data.metrics[fq], mu: run.data.metrics[mu],
                             **{k: v for k, v in run.data.params.items() if k.startswith("method.")}})
    return rows


def log_fronts(client, experiment: str, sweep: str, run_id: str, methods: list[str], title: str,
               html: bool) -> dict:
    """Logs the fronts of `methods` to `run_id` (hypervolume metrics; PNG, optional HTML, CSV and
    JSON artifacts under `pareto/`), marks it finished, and returns `summarize_fronts`' result."""
    from ofmu_ray.tracking.plots import plot_html, plot_png

    runs, fronts = fronts_of(client, experiment, sweep, methods)
    metrics, points = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        files: dict = {"fronts.csv": _front_rows(runs, fronts)}
        for key, summary in fronts.items():
            fq, mu = metric_names(key)
            for method, entry in summary["methods"].items():
                if len(methods) > 1:
                    metrics[f"hypervolume{key}/{method}"] = entry["hypervolume"]
                elif method != "all":
                    metrics[f"hypervolume{key}"] = entry["hypervolume"]
            points[key] = {m: [(r.data.metrics.get(fq, math.nan), r.data.metrics.get(mu, math.nan)) for r in rs]
                           for m, rs in runs.items()}
            name = "front" + key.replace("/", "_")
            files[f"{name}.png"] = plot_png(points[key], summary, key, f"{title}: {key.lstrip('/') or 'forget split'}",
                                            Path(tmp) / f"{name}.png")
        if html:
            files["fronts.html"] = plot_html(points, fronts, title, Path(tmp) / "fronts.html")
        (Path(tmp) / "fronts.json").write_text(json.dumps(fronts, indent=1))
        files["fronts.json"] = Path(tmp) / "fronts.json"
        log_files(client, run_id, files, "pareto")
    finish(client, run_id, metrics)
    return fronts


def seed_table(client, experiment: str, sweep: str) -> list[dict]:
    """Mean and standard deviation over the seed re-runs of each front configuration."""
    rows = []
    for method, runs in trial_runs(client, experiment, sweep, kind="seed").items():
        by_source: dict[str, list] = {}
        for run in runs:
            by_source.setdefault(run.data.tags["ofmu.source_trial"], []).append(run)
        for source, group in by_source.items():
            row = {"method": method, "source_trial": source, "seeds": len(group)}
            for name in (*metric_names(""), "forget_quality/multihop", "model_utility/multihop"):
                values = [r.data.metrics[name] for r in group if name in r.data.metrics]
                if values:
                    row[f"{name}_mean"] = statistics.fmean(values)
                    row[f"{name}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
            rows.append(row)
    return rows


def format_table(fronts: dict) -> str:
    """Per split: each method's trials, front size, hypervolume and front points, as text."""
    lines = []
    for key, summary in fronts.items():
        ref = summary["reference"]
        lines.append(f"{key.lstrip('/') or 'forget split'}  (reference point: log10 FQ {ref[0]:.2f}, MU 0)")
        lines.append(f"  {'method':<12}{'trials':>7}{'front':>7}{'hypervolume':>13}  front (log10 FQ, MU)")
        for method, entry in summary["methods"].items():
            points = ", ".join(f"({x:.2f}, {y:.3f})" for x, y in entry["points"])
            lines.append(f"  {method:<12}{entry['trials']:>7}{len(entry['points']):>7}"
                         f"{entry['hypervolume']:>13.4f}  {points}")
    return "\n".join(lines)


def format_seeds(rows: list[dict]) -> str:
    """The seed re-runs as text: mean +- std of both objectives per front configuration."""
    fq, mu = metric_names("")
    lines = [f"  {'method':<12}{'trial':<16}{'seeds':>6}  {'log10 FQ':>18}  {'MU':>16}"]
    for r in rows:
        lines.append(f"  {r['method']:<12}{r['source_trial']:<16}{r['seeds']:>6}  "
                     f"{r[fq + '_mean']:>9.3f} +- {r[fq + '_std']:<6.3f}  "
                     f"{r[mu + '_mean']:>7.3f} +- {r[mu + '_std']:.3f}")
    return "\n".join(lines)
