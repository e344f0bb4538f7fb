"""What a person sees of a sweep in the MLflow UI: the addresses to open, the runs view they land on,
and the markdown a run's overview page shows.

Measured with MLflow 3.17.2 in Chromium: the UI opens an experiment in its GenAI layout (Traces,
Sessions, Judges, Prompts, ...) unless the address carries `workflowType=machine_learning`; the
experiment tag `mlflow.experimentKind` (set too, as MLflow's own clients do) does not switch it. The
runs table keeps its columns per browser, so the UI's own *shared view* carries them in an address: an
experiment tag `mlflow.sharedViewState.<key>` holding the view as JSON, opened with
`?viewStateShareKey=<key>`. Each sweep writes one, keyed by its name. The UI ignores a shared view
when the address also holds a filter or a sort of its own, so the view holds those as well.
"""

from __future__ import annotations

import json
import math
from urllib.parse import quote

from mlflow.tracking import MlflowClient

UI = "http://127.0.0.1:5000"  # where `ofmu-ray ui` serves by default
TRAINING_LAYOUT = "workflowType=machine_learning"  # the UI's "Model training" layout, not GenAI
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")  # the tag MLflow's UI writes for training
SHARED_VIEW = "mlflow.sharedViewState."  # + key: a runs-table view the UI opens from `viewStateShareKey`
DESCRIPTION = "mlflow.note.content"  # a run's description, rendered as markdown on its overview page


def at_equal_compute(entry: dict, unit: str, missing: str) -> str:
    """A front's hypervolume at equal compute with its trials; "none fits" where its first trial
    alone spent more than the budget (a hypervolume of 0 would read as a method that failed)."""
    hv = entry.get("hypervolume_equal_compute", math.nan)
    if math.isnan(hv):  # the combined front, or a sweep from before FLOPs were counted
        return missing
    return "none fits" if entry["trials_equal_compute"] == 0 else f"{hv:.4f} ({entry['trials_equal_compute']} {unit})"


def experiment_address(experiment_id: str, base: str = UI) -> str:
    """The experiment's runs page, in the training layout."""
    return f"{base}/#/experiments/{experiment_id}/runs?{TRAINING_LAYOUT}"


def sweep_address(experiment_id: str, sweep: str, base: str = UI) -> str:
    """The sweep's runs page (its shared view: `share_sweep_view`), in the training layout."""
    return f"{base}/#/experiments/{experiment_id}/runs?viewStateShareKey={quote(sweep)}&{TRAINING_LAYOUT}"


def run_address(experiment_id: str, run_id: str, base: str = UI) -> str:
    """A run's overview page, in the training layout."""
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}?{TRAINING_LAYOUT}"


def column(kind: str, name: str) -> str:
    """The runs table's key of a column (`kind`: metrics, params, tags or attributes)."""
    return f"{kind}.`{name}`"


def share_sweep_view(client: MlflowClient, experiment: str, sweep: str, objectives: tuple[str, str]) -> None:
    """Writes the sweep's runs view: its runs only, the method runs first, best hypervolume first (the
    UI lists runs flat when sorted on a metric, so the trials follow), with the columns a person
    compares them by (both objectives, the hypervolume, the method) in place of MLflow's defaults
    (source, models, dataset: all "-" here)."""
    shown = [column("metrics", objectives[0]), column("metrics", objectives[1]), column("metrics", "hypervolume"),
             column("tags", "method"), column("attributes", "Duration")]
    state = {"searchFilter": f"tags.`ofmu.sweep` = '{sweep}'",
             "orderByKey": column("metrics", "hypervolume"), "orderByAsc": False,
             "selectedColumns": shown}
    client.set_experiment_tag(experiment, SHARED_VIEW + sweep, json.dumps(state))


def describe(client: MlflowClient, run_id: str, markdown: str) -> None:
    """Sets the run's description (what its overview page shows first)."""
    client.set_tag(run_id, DESCRIPTION, markdown)


def fronts_markdown(fronts: dict, title: str, experiment_id: str, run_id: str, plots: dict[str, str],
                    links: dict[str, str]) -> str:
    """The fronts as a run's description: each method's hypervolume per split; then per split its
    reference point, each method's trials, front size, hypervolume (also at equal compute: the
    trials, in the order they ran, within the least compute any method spent) and front points, and
    the split's plot drawn under its table.

    Args:
        fronts: `summarize_fronts`' result (split key -> its summary).
        title: the first line.
        experiment_id, run_id: the run the plots are artifacts of.
        plots: split key -> the artifact path of its PNG.
        links: label -> artifact path, listed at the end (the interactive plot, the tables).
    """
    image = f"get-artifact?run_uuid={run_id}&path="  # relative to the UI's root, which serves artifacts there
    page = f"#/experiments/{experiment_id}/runs/{run_id}/artifacts/"
    lines = [f"**{title}**", ""]
    splits = {key: key.lstrip("/") or "forget" for key in fronts}
    methods = [m for m in fronts[""]["methods"] if m != "all" or len(fronts[""]["methods"]) > 2]
    lines += ["hypervolume per split (higher is better; each split's reference point below)", "",
              "| method | " + " | ".join(splits.values()) + " |", "|---|" + "---:|" * len(splits)]
    for method in methods:
        hv = " | ".join(f"{fronts[key]['methods'][method]['hypervolume']:.4f}" for key in splits)
        lines.append(f"| {'all methods' if method == 'all' else method} | {hv} |")
    lines.append("")
    for key, summary in fronts.items():
        (ref, _), (x, y) = summary["reference"], summary["objectives"]
        lines += [f"### {key.lstrip('/') or 'forget split'}", "",
                  f"reference point (`{x}` {ref:.2f}, `{y}` 0); higher is better on both", "",
                  f"| method | trials | front | hypervolume | at equal compute | front (`{x}`, `{y}`) |",
                  "|---|---:|---:|---:|---:|---|"]
        methods = {m: e for m, e in summary["methods"].items() if m != "all"}
        ranked = sorted(methods.items(), key=lambda kv: -kv[1]["hypervolume"])  # best first
        if len(methods) > 1:  # the combined front, last
            ranked.append(("all methods", summary["methods"]["all"]))
        for method, entry in ranked:
            points = ", ".join(f"({a:.2f}, {b:.3f})" for a, b in entry["points"])
            at_equal = at_equal_compute(entry, "trials", "-")  # the combined front has none
            lines.append(f"| {method} | {entry['trials']} | {len(entry['points'])} | {entry['hypervolume']:.4f} "
                         f"| {at_equal} | {points} |")
        if key in plots:
            lines += ["", f"[![{key.lstrip('/') or 'forget split'}]({image}{quote(plots[key])})]({page}{plots[key]})"]
        lines.append("")
    lines.append(" · ".join(f"[{label}]({page}{path})" for label, path in links.items()))
    return "\n".join(lines)
