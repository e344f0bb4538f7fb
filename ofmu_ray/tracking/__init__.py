"""MLflow: receives finished numbers and files only."""

from ofmu_ray.tracking.mlflow_log import DEFAULT_TRACKING_URI, log_run

__all__ = ["DEFAULT_TRACKING_URI", "log_run"]
