"""Running a method over forget and retain batches in one process: the loop the Ray Train worker
runs on each rank, and what tests and benchmarks call directly."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator

import torch

from ofmu_ray.methods.base import Method
from ofmu_ray.methods.losses import Batch
from ofmu_ray.models.prompt import collate, encode_row


def batches(tokenizer, rows: list[dict], batch_size: int, seed: int = 0) -> Iterator[Batch]:
    """Endless batches of QA rows (answer-only labels) or corpus texts (`text`), reshuffled every pass."""
    if not rows:
        raise ValueError("no rows to make batches from")
    examples = [encode_row(tokenizer, r) for r in rows]
    rng = random.Random(seed)
    order = list(range(len(examples)))
    while True:
        rng.shuffle(order)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            if start and len(chunk) < batch_size:
                break  # a ragged tail would change the batch size mid-run
            yield collate([examples[i] for i in chunk], tokenizer.pad_token_id)


def unlearn(method: Method, forget: Iterator[Batch], retain: Iterator[Batch], steps: int,
            on_step: Callable[[int, dict[str, float]], None] | None = None,
            autocast: str | None = None, done: list[dict[str, float]] | None = None) -> list[dict[str, float]]:
    """Feeds `method` one forget and one retain batch per step, for `steps` forget batches (fewer if
    the method finishes first, e.g. OFMU after K outer iterations); returns each step's logs.

    `done` holds the logs of the steps a run resumed from a checkpoint has already taken: their
    batches are drawn and dropped, so the run goes on with the batches it would have seen.

    `autocast` (a device type, `cuda` or `cpu`) runs each step under bf16 autocast; `on_step` (which
    may evaluate) runs outside it. A step whose logged losses or whose weights are not finite ends
    the run: its logs get `diverged: 1.0` (every rank sees the same global logs and weights, so all
    ranks stop at the same step)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    limit = min(steps, method.max_steps or steps)
    history = list(done or [])
    for _ in history:
        next(forget), next(retain)
    for step in range(len(history), limit):
        with torch.autocast(autocast or "cpu", dtype=torch.bfloat16, enabled=autocast is not None):
            logs = method.step(next(forget), next(retain))
        if diverged(method.model, logs):
            return [*history, logs | {"diverged": 1.0}]
        history.append(logs)
        if on_step:
            on_step(step, logs)
    return history


def diverged(model: torch.nn.Module, logs: dict[str, float]) -> bool:
    """A non-finite logged value, or a non-finite weight."""
    return (not all(math.isfinite(v) for v in logs.values())
            or not all(torch.isfinite(p).all() for p in model.parameters()))
