"""Recording runs in MLflow: by default a SQLite store and an artifact folder in the working directory.

The layout of a sweep, in the experiment `<bench>/<split>`:
- a parent run per method (tag `ofmu.kind=method`): the search space, the budget, the method's
  front and hypervolume per split, its front plot and CSV;
- a child run per trial (`ofmu.kind=trial`, `mlflow.parentRunId`, `ray_trial_id`): the
  hyper-parameters, each step's logs, every final metric, the per-question evaluation JSON;
  seed re-runs of front configurations are children too (`ofmu.kind=seed`);
- a comparison run (`ofmu.kind=comparison`): the combined front, plots (PNG and HTML) and CSV.
Each of these is per model (tag `model`); a sweep over several models adds one run across them
(`ofmu.kind=models`): each method's hypervolume per model, and its fronts per model in one plot.
Every run of one sweep carries `ofmu.sweep=<name>`. Writing is idempotent by those tags, so a
resumed sweep neither loses nor duplicates a run.
"""

from __future__ import annotations

import csv
import math
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ofmu_ray.tracking import browse

DEFAULT_TRACKING_URI = "sqlite:///mlruns.db"
ARTIFACT_DIR = "mlartifacts"
METRICS_PER_BATCH, PARAMS_PER_BATCH = 1000, 100  # what one MLflow log_batch call accepts


def resolve_uri(uri: str | None) -> str:
    """The tracking URI with a relative SQLite path made absolute: Ray runs code in other folders."""
    uri = uri or DEFAULT_TRACKING_URI
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(Path(uri[len(prefix):]).resolve())
    return uri


def check_uri(uri: str | None) -> str:
    """The resolved tracking URI, if it can name a store (a SQLite file's folder exists); nothing is
    created or contacted, so commands check it before anything else.

    Raises:
        ValueError: naming the URI and the folder that is missing.
    """
    uri = resolve_uri(uri)
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).parent.is_dir():
        raise ValueError(f"--tracking-uri {uri}: the folder {Path(uri[len('sqlite:///'):]).parent} does not exist")
    return uri


def open_store(uri: str | None) -> str:
    """The resolved tracking URI, once the store has answered: checked before a run or a sweep starts,
    so that a bad `--tracking-uri` fails in a second instead of after it (a server gets one try).

    A new SQLite store is created here, one process at a time: MLflow's table creation and
    migrations are not safe against a second process doing the same at once.

    Raises:
        ValueError: naming the URI and why it cannot be opened.
    """
    import fcntl
    import hashlib
    import os

    uri = check_uri(uri)
    lock_name = "ofmu-ray-mlflow-" + hashlib.sha256(uri.encode()).hexdigest()[:16] + ".lock"
    saved = {k: os.environ.get(k) for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")}
    os.environ.update({"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"})
    try:
        with open(Path(tempfile.gettempdir()) / lock_name, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            MlflowClient(uri).search_experiments(max_results=1)
    except Exception as e:  # sqlalchemy, requests and MLflow errors alike: the user needs the URI
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"--tracking-uri {uri}: cannot open the MLflow store ({first[:300]})") from e
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return uri


def experiment_id(client: MlflowClient, name: str) -> str:
    """The experiment's id, created (artifacts under ./mlartifacts) if it does not exist, and tagged as
    a training experiment (`mlflow.experimentKind`) as MLflow's UI tags those it is told about."""
    kind, training = browse.EXPERIMENT_KIND
    found = client.get_experiment_by_name(name)
    if found is None:
        try:
            return client.create_experiment(name, artifact_location=Path(ARTIFACT_DIR).resolve().as_uri(),
                                            tags={kind: training})
        except MlflowException:  # another sweep on the same store created it since we looked
            found = client.get_experiment_by_name(name)
            if found is None:
                raise
    if kind not in found.tags:  # made before the tag was set here
        client.set_experiment_tag(found.experiment_id, kind, training)
    return found.experiment_id


def _finite(metrics: dict) -> dict[str, float]:
    """The numeric metrics MLflow can store (it rejects NaN only on some backends: drop them)."""
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def log_values(client: MlflowClient, run_id: str, params: dict | None = None, metrics: dict | None = None,
               history: list[dict] | None = None) -> None:
    """Params, final metrics (step 0) and each history row's values as `step/<name>` at its step."""
    now = int(time.time() * 1000)
    entries = [Metric(k, v, now, 0) for k, v in _finite(metrics or {}).items()]
    for row in history or []:
        step = int(row["step"])
        entries += [Metric(f"step/{k}", v, now, step) for k, v in _finite(row).items() if k != "step"]
    values = [Param(k, str(v)[:6000]) for k, v in (params or {}).items()]
    for start in range(0, len(entries), METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=entries[start:start + METRICS_PER_BATCH])
    for start in range(0, len(values), PARAMS_PER_BATCH):
        client.log_batch(run_id, params=values[start:start + PARAMS_PER_BATCH])


def connect(uri: str | None) -> MlflowClient:
    """A client of the store at `uri` (relative SQLite paths made absolute)."""
    return MlflowClient(resolve_uri(uri))


def _log_results(client: MlflowClient, run_id: str, folder: Path | None, names: Sequence[str]) -> None:
    """The named result files of a run's folder that exist (per-item evaluation, summary, step
    history) under `eval/`; never its model."""
    for name in names:
        if folder is not None and (folder / name).is_file():
            client.log_artifact(run_id, str(folder / name), "eval")


def find_runs(client: MlflowClient, experiment: str, **tags: str) -> list:
    """Runs of `experiment` (its id) whose tags equal `tags` (dots in tag names spelled as `__`)."""
    query = " and ".join(f"tags.`{k.replace('__', '.')}` = '{v}'" for k, v in tags.items())
    return client.search_runs([experiment], filter_string=query, max_results=50000)


def find_sweep(uri: str, sweep: str | None = None) -> tuple[str, str] | None:
    """(experiment id, name) of the sweep named `sweep` (its names are letters, digits, `.`, `_` and
    `-`), or of the store's latest; None if the store holds no such sweep. A sweep made before sweeps
    wrote their runs view gets it here, so that its address opens."""
    client = connect(uri)
    experiments = {e.experiment_id: e for e in client.search_experiments(max_results=50000)}
    query = "tags.`ofmu.kind` = 'method'" + (f" and tags.`ofmu.sweep` = '{sweep}'" if sweep else "")
    found = client.search_runs(list(experiments), query, max_results=1, order_by=["attributes.start_time DESC"]) \
        if experiments else []
    if not found:
        return None
    run = found[0]
    name, experiment = run.data.tags["ofmu.sweep"], run.info.experiment_id
    if browse.SHARED_VIEW + name not in experiments[experiment].tags and "objectives" in run.data.tags:
        browse.share_sweep_view(client, experiment, name, tuple(run.data.tags["objectives"].split(",")))
    return experiment, name


def log_run(experiment: str, run_name: str, params: dict, metrics: dict[str, float], tags: dict[str, str],
            tracking_uri: str | None = None, history: list[dict] | None = None,
            results: Path | None = None, result_files: Sequence[str] = ()) -> str:
    """Logs one finished run (with the `result_files` of its `results` folder); returns its id."""
    store = connect(tracking_uri)
    run = store.create_run(experiment_id(store, experiment), run_name=run_name, tags=tags)
    log_values(store, run.info.run_id, params, metrics, history)
    _log_results(store, run.info.run_id, results, result_files)
    store.set_terminated(run.info.run_id)
    return run.info.run_id


def parent_run(client: MlflowClient, experiment: str, sweep: str, method: str, tags: dict[str, str],
               params: dict) -> tuple[str, bool]:
    """The method's parent run in this sweep, for the model `tags` name: (its id, whether it is
    finished). A resumed sweep finds the one it made before; a first run makes it (and the sweep's
    runs view, `browse.share_sweep_view`)."""
    found = find_runs(client, experiment, ofmu__sweep=sweep, ofmu__kind="method", method=method, model=tags["model"])
    if found:
        return found[0].info.run_id, found[0].info.status == "FINISHED"
    run = client.create_run(experiment, run_name=f"{method} ({Path(tags['model']).name})",
                            tags=tags | {"ofmu.sweep": sweep, "ofmu.kind": "method", "method": method})
    log_values(client, run.info.run_id, params)
    browse.share_sweep_view(client, experiment, sweep, tuple(tags["objectives"].split(",")))
    return run.info.run_id, False


def log_trial(client: MlflowClient, experiment: str, parent: str, trial_id: str, run_name: str, tags: dict[str, str],
              params: dict, metrics: dict, history: list[dict], artifacts: Path | None, result_files: Sequence[str],
              failed: str = "") -> str:
    """One trial's child run. A trial already recorded as finished is left alone (a resumed sweep
    may report it again); one recorded as failed is completed in place."""
    found = find_runs(client, experiment, ofmu__sweep=tags["ofmu.sweep"], ray_trial_id=trial_id)
    if found and found[0].info.status == "FINISHED":
        return found[0].info.run_id
    if found:
        run_id = found[0].info.run_id
    else:
        run_id = client.create_run(experiment, run_name=run_name,
                                   tags=tags | {"mlflow.parentRunId": parent, "ray_trial_id": trial_id}).info.run_id
        log_values(client, run_id, params)
    log_values(client, run_id, metrics=metrics, history=history)
    _log_results(client, run_id, artifacts, result_files)
    if failed:
        client.set_tag(run_id, "error", failed[:5000])
    elif found and "error" in found[0].data.tags:  # a retried trial that now finished
        client.delete_tag(run_id, "error")
    client.set_terminated(run_id, status="FAILED" if failed else "FINISHED")
    return run_id


def write_csv(path: Path, rows: list[dict]) -> None:
    """`rows` as a CSV with the union of their keys as header."""
    header = list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)


def log_files(client: MlflowClient, run_id: str, files: dict[str, Path | list[dict]], where: str = "") -> None:
    """Artifacts of a run: existing files, or rows written as CSV under the given name."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, content in files.items():
            path = content if isinstance(content, Path) else Path(tmp) / name
            if not isinstance(content, Path):
                write_csv(path, content)
            client.log_artifact(run_id, str(path), where or None)


def log_table(client: MlflowClient, run_id: str, rows: list[dict], path: str) -> None:
    """`rows` as an MLflow table artifact (`path` ends in .json): the UI shows it as a table that
    sorts and filters, where a CSV shows as text."""
    folder = path.rpartition("/")[0] or None
    if any(a.path == path for a in client.list_artifacts(run_id, folder)):
        return  # logged before a resumed sweep stopped: log_table would append the rows a second time
    header = list(dict.fromkeys(k for row in rows for k in row))
    client.log_table(run_id, data={k: [row.get(k) for row in rows] for k in header}, artifact_file=path)


def finish(client: MlflowClient, run_id: str, metrics: dict, tags: dict[str, str] | None = None) -> None:
    """Final metrics and tags of a parent or comparison run, then marks it finished."""
    log_values(client, run_id, metrics=metrics)
    for key, value in (tags or {}).items():
        client.set_tag(run_id, key, value)
    client.set_terminated(run_id)


def comparison_run(client: MlflowClient, experiment: str, sweep: str, tags: dict[str, str],
                   kind: str = "comparison") -> str:
    """The sweep's comparison run of the model `tags` name, or (`kind="models"`) across its models;
    created once."""
    where = {"model": tags["model"]} if "model" in tags else {}
    found = find_runs(client, experiment, ofmu__sweep=sweep, ofmu__kind=kind, **where)
    if found:
        return found[0].info.run_id
    name = f"comparison ({Path(tags['model']).name})" if kind == "comparison" else "models"
    tags = tags | {"ofmu.sweep": sweep, "ofmu.kind": kind}
    return client.create_run(experiment, run_name=name, tags=tags).info.run_id
