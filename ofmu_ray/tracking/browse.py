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


def headline(entry: dict, suffix: str = "") -> str:
    """Forget quality at kept utility as a person reads it: the value, or "none" where no trial kept
    the utility (never a number that reads like a result)."""
    value = entry.get("fq_at_kept_utility" + suffix)
    return "none" if value is None else f"{value:.2f}"


def anchored(entry: dict, summary: dict, suffix: str = "") -> str:
    """The anchored hypervolume as a person reads it: "not measurable" where the target already passes
    for forgotten, "-" without the target's point."""
    if summary["target"] is None:
        return "-"
    if not summary["measurable"]:
        return "not measurable"
    value = entry.get("hypervolume" + suffix)
    return "-" if value is None else f"{value:.3f}"


def at_equal_compute(entry: dict, summary: dict, unit: str, missing: str) -> str:
    """A front's headline and anchored hypervolume at equal compute with its trials; "none fits" where
    its first trial alone spent more than the budget (a figure of 0 would read as a method that failed)."""
    if "trials_equal_compute" not in entry or math.isnan(summary.get("compute", math.nan)):
        return missing  # the combined front, or a sweep from before FLOPs were counted
    if entry["trials_equal_compute"] == 0:
        return "none fits"
    return (f"{headline(entry, '_equal_compute')} / {anchored(entry, summary, '_equal_compute')} "
            f"({entry['trials_equal_compute']} {unit})")


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
    """Writes the sweep's runs view: its runs only, the method runs first, best headline first (forget
    quality at kept utility; the UI lists runs flat when sorted on a metric, so the trials follow), with
    the columns a person compares them by (both objectives, the headline, the anchored hypervolume, the
    method) in place of MLflow's defaults (source, models, dataset: all "-" here)."""
    shown = [column("metrics", objectives[0]), column("metrics", objectives[1]),
             column("metrics", "fq_at_kept_utility"), column("metrics", "hypervolume"),
             column("tags", "method"), column("attributes", "Duration")]
    state = {"searchFilter": f"tags.`ofmu.sweep` = '{sweep}'",
             "orderByKey": column("metrics", "fq_at_kept_utility"), "orderByAsc": False,
             "selectedColumns": shown}
    client.set_experiment_tag(experiment, SHARED_VIEW + sweep, json.dumps(state))


def describe(client: MlflowClient, run_id: str, markdown: str) -> None:
    """Sets the run's description (what its overview page shows first)."""
    client.set_tag(run_id, DESCRIPTION, markdown)


def fronts_markdown(fronts: dict, title: str, experiment_id: str, run_id: str, plots: dict[str, str],
                    links: dict[str, str]) -> str:
    """The fronts as a run's description: each method's headline (forget quality at kept utility) per
    split; then per split the target's point, each method's trials, headline and the trial reaching
    it, anchored and floor-anchored hypervolumes (also at equal compute: the trials, in the order they
    ran, within the least compute any method spent), its rank at each tau and the split's plot.

    Args:
        fronts: `summarize_fronts`' result (split key -> its summary).
        title: the first line.
        experiment_id, run_id: the run the plots are artifacts of.
        plots: split key -> the artifact path of its PNG.
        links: label -> artifact path, listed at the end (the interactive plot, the tables).
    """
    image = f"get-artifact?run_uuid={run_id}&path="  # relative to the UI's root, which serves artifacts there
    page = f"#/experiments/{experiment_id}/runs/{run_id}/artifacts/"
    first = fronts[""]
    lines = [f"**{title}**", ""]
    splits = {key: key.lstrip("/") or "forget" for key in fronts}
    methods = [m for m in first["methods"] if m != "all" or len(first["methods"]) > 2]
    x = first["objectives"][0]
    lines += [f"best `{x}` among the trials that keep {first['utility_floor']:g} x the target's utility (higher "
              "is better; none: no trial kept it)", "",
              "| method | " + " | ".join(splits.values()) + " |", "|---|" + "---:|" * len(splits)]
    for method in methods:
        cells = " | ".join(headline(fronts[key]["methods"][method]) for key in splits)
        lines.append(f"| {'all methods' if method == 'all' else method} | {cells} |")
    lines.append("")
    for key, summary in fronts.items():
        (floor, _), (x, y) = summary["reference"], summary["objectives"]
        lines += [f"### {key.lstrip('/') or 'forget split'}", ""]
        if summary["target"]:
            tx, ty = summary["target"].values()
            lines += [f"target: `{x}` {tx:.2f}, `{y}` {ty:.3f}; a trial counts in the headline if its `{y}` is at "
                      f"least {summary['utility_floor']:g} x the target's. The hypervolume is anchored there: the "
                      "area above that point up to the best forget quality at the target's utility (0 to 1).", ""]
        else:
            lines += ["the sweep logged no target point: the headline needs it.", ""]
        lines += [f"| method | trials | headline | its trial's `{y}` | hypervolume | above (floor {floor:.2f}, 0) "
                  "| at equal compute (headline / hypervolume) |", "|---|---:|---:|---:|---:|---:|---:|"]
        for method in [*summary["order"], *(["all"] if len(summary["methods"]) > 2 else [])]:
            entry = summary["methods"][method]
            mu = entry["fq_at_kept_utility_mu"]
            lines.append(f"| {'all methods' if method == 'all' else method} | {entry['trials']} | {headline(entry)} "
                         f"| {'-' if mu is None else f'{mu:.3f}'} | {anchored(entry, summary)} "
                         f"| {entry['hypervolume_floor']:.4f} | {at_equal_compute(entry, summary, 'trials', '-')} |")
        if summary["ranks"]:
            order = "; ".join(f"tau {t}: {' > '.join(r)}" for t, r in summary["ranks"].items())
            lines += ["", f"rank by tau: {order}" + (" (the order changes with tau)" if summary["order_changes"]
                                                     else " (the same order)")]
        if key in plots:
            lines += ["", f"[![{key.lstrip('/') or 'forget split'}]({image}{quote(plots[key])})]({page}{plots[key]})"]
        lines.append("")
    lines.append(" · ".join(f"[{label}]({page}{path})" for label, path in links.items()))
    return "\n".join(lines)
