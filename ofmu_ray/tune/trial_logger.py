"""The Tune callback that records each finished (or failed) trial as an MLflow child run.

It runs in the sweep's driver process (one SQLite writer) and reads everything it logs from the
trial's final checkpoint folder. Tune pickles it with the experiment, and a resumed sweep gets it
back as it was: it holds only plain settings of the sweep, which do not change on resume.
"""

from __future__ import annotations

import json
from pathlib import Path

from ray.tune import Callback

from ofmu_ray.tracking import mlflow_log
from ofmu_ray.tune.tuner import NOT_HYPER_PARAMETERS


def _read(folder: Path | None, name: str, empty):
    return json.loads((folder / name).read_text()) if folder else empty


class TrialLogger(Callback):
    """Writes each trial of one method's Tune experiment under the method's parent run."""

    def __init__(self, uri: str, experiment: str, parent: str, tags: dict[str, str], kind: str,
                 result_files: tuple[str, ...]):
        self.uri, self.experiment, self.parent, self.tags, self.kind = uri, experiment, parent, tags, kind
        self.result_files = result_files  # what of a trial's folder is logged (its family's files, its history)

    def _log(self, trial, index: int, failed: str = "") -> None:
        result = trial.last_result or {}
        folder = Path(result["checkpoint_dir"]) if "checkpoint_dir" in result else None
        point = trial.config.get("point", trial.config)  # seed re-runs pass a whole configuration
        parent, own = self.target(point)
        params = {f"method.{k}": v for k, v in point.items() if k not in NOT_HYPER_PARAMETERS}
        tags = own | {"ofmu.kind": self.kind, "trial_index": str(index), "ray.node_id": result.get("node_id", "")}
        if result.get("diverged"):
            tags["ofmu.diverged"] = "true"
        if result.get("forget_batches", 0) < result.get("budget", 0):  # it stopped early: not an equal-budget point
            tags["ofmu.short_budget"] = "true"
        if "source" in point:
            tags["ofmu.source_trial"] = point["source"]
        timing = {k: result[k] for k in ("trial_seconds",) if k in result}  # the trial function's wall time
        mlflow_log.log_trial(mlflow_log.connect(self.uri), self.experiment, parent, trial.trial_id,
                             f"{own['method']}-{self.kind}-{index}", tags,
                             params | {"seed": point.get("seed", 0)}, _read(folder, "metrics.json", {}) | timing,
                             _read(folder, "history.json", []), folder, self.result_files, failed)

    def target(self, point: dict) -> tuple[str, dict[str, str]]:
        """The parent run and tags of the trial that ran `point`: here one parent for every trial; an
        ablation's logger picks its variant's."""
        return self.parent, self.tags

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._log(trial, trials.index(trial))

    def on_trial_error(self, iteration, trials, trial, **info):
        self._log(trial, trials.index(trial), failed=f"Ray Tune trial {trial.trial_id} failed; see {trial.local_path}")
