"""Each method's Optuna study, kept in an RDB storage beside the sweep (`<sweep>/optuna.db`, or any
SQLAlchemy URL on a cluster), so that Optuna's own dashboard shows what the search did (fronts,
parallel coordinates, importances, history) and a resumed sweep goes on with the same study.

Only the sweep's driver writes a study (Tune's searcher runs there), so a SQLite file on the head node
serves a cluster as well; a server URL is for browsing the studies from elsewhere.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from ofmu_ray.cache import slug
from ofmu_ray.errors import UsageError

STORAGE_FILE = "optuna.db"  # in the sweep's folder, by default


def storage_url(configured: str, sweep_dir: Path) -> str:
    """The sweep's storage: its `--optuna-storage` URL, or the SQLite file in its folder."""
    return configured or f"sqlite:///{(sweep_dir / STORAGE_FILE).resolve()}"


def study_name(sweep: str, model: str, method: str) -> str:
    """One study per sweep, model and method (the Tune experiment's name after the sweep's)."""
    return f"{sweep}-{slug(model)}.{method}"


def open_storage(url: str):
    """The storage at `url`, its tables created if new.

    Raises:
        UsageError: naming the URL and why it cannot be opened.
    """
    import optuna

    try:
        return optuna.storages.RDBStorage(url)
    except Exception as e:  # SQLAlchemy's errors for bad URLs, missing drivers, unreachable servers
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UsageError(f"--optuna-storage {url}: cannot open it as an Optuna RDB storage ({first[:300]})") from e


def check_new(storage, names: list[str]) -> None:
    """A new sweep's studies must not exist yet: Tune's searcher would quietly add their old trials.

    Raises:
        UsageError: naming the studies found.
    """
    taken = sorted(set(names) & {s.study_name for s in storage.get_all_studies()})
    if taken:
        raise UsageError(f"the Optuna storage already holds the studies {', '.join(taken)}: "
                         "--resume that sweep or choose another --name")


def finish(storage, name: str, objectives: tuple[str, str]) -> None:
    """Once a method's Tune experiment has ended: names the study's objectives (the dashboard shows
    them instead of 0 and 1), and marks FAIL the trials left RUNNING, points Optuna proposed just
    before a driver was killed, which Tune never saved and so never ran (the resumed search proposed
    others)."""
    import optuna

    study = optuna.load_study(study_name=name, storage=storage)
    with warnings.catch_warnings():  # "experimental" since Optuna 3.2, and what the dashboard reads
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(list(objectives))
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        storage.set_trial_system_attr(t._trial_id, "ofmu.unrun", "proposed before the driver stopped; never run")
        storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)


def sweep_studies(url: str, sweep: str) -> list[tuple[int, str, int]]:
    """(study id, name, finished trials) of each of the sweep's studies in the storage at `url`."""
    import optuna

    storage = open_storage(url)
    done = optuna.trial.TrialState.COMPLETE
    return [(s._study_id, s.study_name, sum(1 for t in storage.get_all_trials(s._study_id, states=(done,))))
            for s in storage.get_all_studies() if s.study_name.startswith(f"{sweep}-")]
