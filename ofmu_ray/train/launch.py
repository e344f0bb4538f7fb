"""Where a run's loop runs: in this process (one worker), or on a Ray Train worker group; and starting Ray.

A one-worker run skips Ray Train altogether and runs the loop in the calling process (in a sweep,
the Tune trial's own process): starting a worker group costs seconds that one worker does not need.
With several workers (or `max_failures`, which needs Ray Train to restart them) the loop runs on
Ray Train workers, gloo on CPU and nccl with GPUs.

The task factory travels to the workers with the run: a family's bound `make_task` pickles as its
family's class (by reference: the worker imports it) and the method's name, so this module never
imports a family.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from ofmu_ray.errors import UsageError
from ofmu_ray.train.checkpoint import load_train_state
from ofmu_ray.train.loop import TaskFactory, run_worker
from ofmu_ray.train.spec import RunSpec


def on_ray_train(workers: int, max_failures: int) -> bool:
    """Whether a run goes through Ray Train: for several workers, or to be restarted when one dies."""
    return workers > 1 or max_failures > 0


def run(spec: RunSpec, make_task: TaskFactory, workers: int = 1, cpus_per_worker: float = 1.0,
        gpus_per_worker: float = 0.0, storage: str | Path | None = None, name: str = "unlearn",
        max_failures: int = 0) -> tuple[dict, Path]:
    """One unlearning run: in this process for one worker, through Ray Train for more.

    Args:
        make_task: the family's `make_task(spec, device)`, called on every worker.
        storage: where checkpoints go (absolute; shared storage on a multi-node cluster).
        name: the run's folder under `storage`; under Ray Train a stable name lets a restarted
            run find its checkpoints.
        max_failures: how often Ray Train restarts the workers after one dies, each time from the
            last checkpoint (`spec.checkpoint_every`; from the start without one).

    Returns:
        (rank 0's final metrics, the final checkpoint folder: the unlearned model and its results).
    """
    storage = Path(storage or tempfile.mkdtemp(prefix="ofmu-ray-run-")).resolve()
    if not on_ray_train(workers, max_failures):
        storage.mkdir(parents=True, exist_ok=True)
        return _run_here(spec, make_task, storage / name, gpus_per_worker > 0)
    return run_on_ray(spec, make_task, workers, cpus_per_worker, gpus_per_worker, storage, name, max_failures)


def _run_here(spec: RunSpec, make_task: TaskFactory, storage: Path, use_gpu: bool) -> tuple[dict, Path]:
    import torch

    reports: list[tuple[dict, Path | None]] = []

    def report(metrics: dict, folder: Path | None) -> None:
        kept = None
        if folder is not None:  # as Ray Train would: a copy under the storage folder
            kept = storage / f"checkpoint_{metrics['step']:06d}"
            shutil.copytree(folder, kept, dirs_exist_ok=True)
        reports.append((metrics, kept))

    device = "cuda" if use_gpu and torch.cuda.is_available() else "cpu"
    if use_gpu and device == "cpu":
        raise RuntimeError("--gpus-per-worker > 0 but torch sees no CUDA device")
    run_worker(spec, make_task, 0, 1, report, device)
    return reports[-1]


def worker_loop(config: dict) -> None:
    """Ray Train's entry point on every worker: `config` holds the run (`spec`) and its `make_task`."""
    import ray.train
    import ray.train.torch

    ctx = ray.train.get_context()
    # from the driver's fit() to this line: the controller's and workers' processes, their imports and
    # the process group (same-machine clocks; across nodes, as close as theirs)
    start_up = time.time() - config["fit_at"]

    def report(metrics: dict, folder: Path | None) -> None:
        checkpoint = ray.train.Checkpoint.from_directory(folder) if folder else None
        ray.train.report(metrics | {"worker_start_seconds": start_up}, checkpoint=checkpoint)

    resume_from = None
    if checkpoint := ray.train.get_checkpoint():  # set when Ray Train restarts a failed run
        with checkpoint.as_directory() as folder:
            resume_from = load_train_state(Path(folder))
    run_worker(RunSpec(**config["spec"]), config["make_task"], ctx.get_world_rank(), ctx.get_world_size(), report,
               ray.train.torch.get_device(), ray.train.torch.prepare_model, resume_from)


def run_on_ray(spec: RunSpec, make_task: TaskFactory, workers: int, cpus_per_worker: float, gpus_per_worker: float,
               storage: Path, name: str, max_failures: int = 0) -> tuple[dict, Path]:
    """The run through a Ray Train worker group (`run` uses it when `on_ray_train`)."""
    import ray.train
    import ray.train.torch

    use_gpu = gpus_per_worker > 0
    resources = {"CPU": cpus_per_worker} | ({"GPU": gpus_per_worker} if use_gpu else {})
    trainer = ray.train.torch.TorchTrainer(
        worker_loop,
        train_loop_config={"spec": asdict(spec), "make_task": make_task, "fit_at": time.time()},
        # a hung collective surfaces in minutes, not after torch's default 30
        torch_config=ray.train.torch.TorchConfig(backend="nccl" if use_gpu else "gloo", timeout_s=600),
        scaling_config=ray.train.ScalingConfig(num_workers=workers, use_gpu=use_gpu,
                                               resources_per_worker=resources),
        run_config=ray.train.RunConfig(name=name, storage_path=str(storage),
                                       failure_config=ray.train.FailureConfig(max_failures=max_failures)),
    )
    result = trainer.fit()
    return result.metrics, Path(result.checkpoint.path)


def _ray_defaults() -> None:
    """Ray's settings here: its own noise off, its polls quicker (set before Ray starts; a user's own wins)."""
    os.environ.setdefault("RAY_TRAIN_ENABLE_PRINT_PATCH", "0")  # each worker print would show twice
    os.environ.setdefault("RAY_TRAIN_ENABLE_V2_MIGRATION_WARNINGS", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # no TensorBoard/CSV files (JSON is added)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's classic progress table
    # Ray Train's controller polls its workers every 2 s by default, so a run's end was noticed 2-5 s
    # late (measured: a 2-worker tiny run 3-5 s shorter at 0.25 s); a poll is one small call a worker
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.5")


def start_ray(address: str | None = None) -> None:
    """Connects to `address` (a cluster), or starts a local Ray once for the whole process."""
    import ray

    _ray_defaults()
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)


def check_address(address: str) -> None:
    """Raises UsageError unless something listens at a `host:port` or `ray://host:port` address
    (`auto` and `local` are left to Ray): `ray.init` would wait minutes for a cluster that is not there."""
    import socket

    if address in ("auto", "local"):  # Ray's own: the cluster this machine runs, or a new local one
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--address {address}: expected host:port, ray://host:port or auto")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise UsageError(f"--address {address}: no Ray cluster answers there ({e.strerror or e})") from e
