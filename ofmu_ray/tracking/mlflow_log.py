"""Recording runs in MLflow: by default a SQLite store and an artifact folder in the working directory."""

from __future__ import annotations

from pathlib import Path

DEFAULT_TRACKING_URI = "sqlite:///mlruns.db"
ARTIFACT_DIR = "mlartifacts"


def _experiment(client, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    return client.create_experiment(name, artifact_location=Path(ARTIFACT_DIR).resolve().as_uri())


def log_run(experiment: str, run_name: str, params: dict, metrics: dict[str, float], tags: dict[str, str],
            tracking_uri: str | None = None) -> str:
    """Logs one finished run; returns its MLflow run id."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri or DEFAULT_TRACKING_URI)
    run = client.create_run(_experiment(client, experiment), run_name=run_name, tags=tags)
    for key, value in params.items():
        client.log_param(run.info.run_id, key, value)
    for key, value in metrics.items():
        client.log_metric(run.info.run_id, key, float(value))
    client.set_terminated(run.info.run_id)
    return run.info.run_id
