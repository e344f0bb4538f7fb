"""Checkpoints of a run: the model, the training state a restarted run resumes from, and the run's
configuration (as nanoGPT's checkpoints carry theirs).

A checkpoint folder holds the model as its task saves it (safetensors), `run.json` (the `RunSpec`),
and, when taken on the way (every `checkpoint_every` steps), `train_state.pt`: the weights training
changes, the method's optimizer state, the RNG, the logs so far, the seconds so far and the
configuration again. Ray Train resumes a run from it when a worker dies (`max_failures`).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from ofmu_ray.methods.base import Method
    from ofmu_ray.train.spec import RunSpec
    from ofmu_ray.train.task import Task

TRAIN_STATE = "train_state.pt"
RUN_CONFIG = "run.json"


def config_of(spec: RunSpec) -> str:
    """The run's configuration as JSON (what a checkpoint records, and what a resume compares)."""
    return json.dumps(asdict(spec), sort_keys=True, default=str)


def write_config(folder: Path, spec: RunSpec) -> None:
    (folder / RUN_CONFIG).write_text(config_of(spec) + "\n")


def save_checkpoint(folder: Path, task: Task, model: torch.nn.Module, method: Method, spec: RunSpec,
                    history: list[dict], seconds: float) -> None:
    """The model, the run's configuration and `train_state.pt` into `folder`.

    The state holds the weights training changes (trainable ones and buffers, e.g. batch norm
    statistics; the frozen rest is reloaded from the model folder), the method's state, the RNG, the
    logs, and the unlearning seconds so far (a resumed run reports what the whole run cost).
    """
    task.save(model, folder)
    write_config(folder, spec)
    trained = {name for name, p in model.named_parameters() if p.requires_grad}
    trained |= {name for name, _ in model.named_buffers()}
    weights = {k: v.detach().cpu() for k, v in model.state_dict().items() if k in trained}
    torch.save({"weights": weights, "method": method.state_dict(), "rng": torch.get_rng_state(),
                "history": history, "seconds": seconds, "config": config_of(spec)}, folder / TRAIN_STATE)


def load_train_state(folder: Path) -> dict | None:
    """The `train_state.pt` of a checkpoint folder, if it has one (read with `weights_only`)."""
    path = Path(folder) / TRAIN_STATE
    return torch.load(path, map_location="cpu", weights_only=True) if path.exists() else None


def resume(model: torch.nn.Module, method: Method, state: dict, spec: RunSpec) -> list[dict]:
    """Puts the model, the method and the RNG back where the checkpoint left them; returns its logs.

    Raises:
        ValueError: the checkpoint belongs to another run (configuration or weights).
    """
    if state["config"] != config_of(spec):
        raise ValueError(f"the checkpoint was taken by another run: {state['config']} is not {config_of(spec)}")
    unexpected = model.load_state_dict(state["weights"], strict=False).unexpected_keys
    if unexpected:
        raise ValueError(f"the checkpoint does not fit this model: unexpected weights {unexpected[:3]}")
    method.load_state_dict(state["method"])
    torch.set_rng_state(state["rng"])
    return state["history"]
