"""One unlearning run, read top to bottom: the loop every worker runs (`run_worker`).

In order: check the settings, seed, build the task (model, batches, evaluation, saving) and the
method, wrap the model for data parallelism, resume from a checkpoint if there is one; then one
step per forget batch, evaluating and checkpointing on rank 0 when due; then save, evaluate and
report. `launch.py` runs it in this process (one worker) or on Ray Train workers (more).

Data parallelism: every step draws one *global* forget batch and one global retain batch (the
same on every rank, from the same seed) and rank r keeps rows r, r + W, ... of each, so ranks see
different samples and together exactly the batch one process would see. First-order methods run
under DDP (`wrap`); methods that take `torch.autograd.grad` (OFMU) average their own gradient
vectors. Losses are scaled to the global token count (`methods.distributed.global_mean`), so a
W-worker run computes the same updates as one worker on the global batch.

A run reports what it consumed and cost: `forget_batches` (steps taken: one forget batch each, for
every method), `unlearn_seconds`, and `flops` and `grad_evals` (`compute`).

What a run leaves in its final checkpoint folder: the unlearned model, `run.json` (its
configuration), `history.json` (each step's logs), `metrics.json` (what the run reports), and, when
it was evaluated, its task's result files (TOFU-style: `TOFU_EVAL.json` per question and
`TOFU_SUMMARY.json`) and, with `keep_best`, the best evaluated model in `best/`.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import torch

from ofmu_ray.methods import build_config, get_method
from ofmu_ray.methods.base import Method
from ofmu_ray.methods.losses import Batch
from ofmu_ray.train.checkpoint import resume, save_checkpoint, write_config
from ofmu_ray.train.compute import counted, gradient_flops, run_compute
from ofmu_ray.train.memory import hold_mmap_threshold_for
from ofmu_ray.train.spec import RunSpec
from ofmu_ray.train.task import Evaluation, Task

# (metrics, a finished checkpoint folder on rank 0 or None); every rank calls it at the same steps.
Report = Callable[[dict, "Path | None"], None]
TaskFactory = Callable[[RunSpec, str], Task]  # a family's `make_task(spec, device)`


def run_worker(spec: RunSpec, make_task: TaskFactory, rank: int, world: int, report: Report, device="cpu",
               wrap=None, resume_from: dict | None = None) -> None:
    """The loop every worker runs: load, unlearn this rank's shard, checkpoint and evaluate on rank 0.

    Args:
        make_task: builds the model, batches, evaluation and saving of the run (a family's `make_task`).
        report: called by every rank at the same steps (under Ray Train it is a barrier).
        wrap: wraps the model for data parallelism (Ray Train's `prepare_model`); None in one process.
        resume_from: a checkpoint's train state (`load_train_state`): go on from its step.
    """
    if spec.batch_size % world:
        raise ValueError(f"batch_size {spec.batch_size} must be divisible by the {world} workers")
    torch.manual_seed(spec.seed)  # the same on every rank: identical models, identical batch order
    loading = time.perf_counter()
    task = make_task(spec, device)
    model = task.model
    hold_mmap_threshold_for(model)  # before the run's steps allocate: freed gradients go back to the system
    cls = get_method(spec.method)
    cfg = build_config(spec.method, spec.overrides)
    cls.prepare_model(model, cfg)
    if spec.lora:
        from ofmu_ray.models.lora import LoraSpec, add_lora

        model = add_lora(model, LoraSpec(**spec.lora))
    reference = task.load_reference().requires_grad_(False) if cls.needs_reference else None
    if cls.ddp and wrap is not None:
        model = wrap(model)  # DDP when world > 1
    method = cls(model, cfg, reference, budget=spec.steps)
    forget, retain = shard(task.forget, rank, world, device), shard(task.retain, rank, world, device)
    bare = getattr(model, "module", model)  # what is saved and evaluated
    history = resume(bare, method, resume_from, spec) if resume_from else []
    resumed_at, seconds_before = len(history), resume_from["seconds"] if resume_from else 0.0
    best_dir = Path(tempfile.mkdtemp(prefix="ofmu-ray-best-")) if spec.keep_best and rank == 0 else None
    best: dict = {}
    autocast = torch.device(device).type if spec.dtype == "bf16-mixed" else None

    # The loop: one update per forget batch; every rank evaluates and checkpoints at the same steps.
    last = spec.steps
    for _ in history:  # a resumed run draws and drops the batches it took before its checkpoint
        next(forget), next(retain)
    started = time.perf_counter()
    load_seconds = started - loading
    for step in range(len(history) + 1, last + 1):  # `step` forget batches taken after this one
        batch = next(forget), next(retain)
        if step <= method.cycle:  # the method's compute, counted once per kind of step (`compute`)
            logs, flops = counted(partial(train_step, method, *batch, autocast))
            # each rank counts its own shard of the global batch: the run's compute is W times that
            logs |= {"flops": float(flops * world), "flops_unit": float(gradient_flops(bare, batch[0]) * world)}
        else:
            logs = train_step(method, *batch, autocast)
        history.append(logs)
        if logs.get("diverged"):  # every rank sees the same global logs and weights: all stop here
            break
        due_eval = bool(spec.eval_every) and step % spec.eval_every == 0 and step < last
        due_checkpoint = bool(spec.checkpoint_every) and step % spec.checkpoint_every == 0 and step < last
        if not (due_eval or due_checkpoint):
            continue
        metrics = {"step": step} | logs
        with tempfile.TemporaryDirectory() as tmp:
            folder = None
            if rank == 0:
                if due_eval:
                    metrics |= _evaluate(task, bare, spec, best_dir, best, step)[0]
                if due_checkpoint:
                    folder = Path(tmp)
                    save_checkpoint(folder, task, bare, method, spec, history,
                                    seconds_before + time.perf_counter() - started)
            report(metrics, folder)

    # The end: what the method cost (the unlearning loop alone, evaluations on the way included; a
    # resumed run adds the seconds before its checkpoint, not the work lost after it), the final
    # model saved and evaluated on rank 0, one last report from every rank.
    seconds = seconds_before + time.perf_counter() - started
    metrics = {f"final/{k}": v for k, v in history[-1].items() if not k.startswith("flops")}
    metrics |= {"step": len(history), "forget_batches": len(history), "unlearn_seconds": seconds,
                "load_seconds": load_seconds}
    metrics |= run_compute(history)
    if resumed_at:  # a worker died and Ray Train restarted the run from a checkpoint
        metrics["resumed_from_step"] = resumed_at
    evaluated = spec.evaluate and rank == 0
    if history[-1].get("diverged"):  # nothing worth evaluating: a sweep gives it the worst objectives
        metrics["diverged"], evaluated = 1.0, False
    with tempfile.TemporaryDirectory() as tmp:
        out, folder = Path(tmp), None
        if rank == 0:
            task.save(bare, out)
            write_config(out, spec)
            (out / "history.json").write_text(json.dumps([{"step": i + 1} | h for i, h in enumerate(history)]))
            if evaluated:
                evaluating = time.perf_counter()
                summary, result = _evaluate(task, bare, spec, best_dir, best, len(history))
                metrics |= summary | {"eval_seconds": time.perf_counter() - evaluating}
                if task.attack:  # the final model only; fine-tuning copies must not move this rank's RNG
                    with torch.random.fork_rng():
                        metrics |= task.attack(bare, summary)
                for name, content in zip(task.result_files, (result, summary), strict=True):
                    (out / name).write_text(json.dumps(content))
            if best_dir is not None:
                shutil.move(best_dir, out / "best")
                (out / "best" / "best.json").write_text(json.dumps(best))
                metrics |= {f"best/{k}": v for k, v in best.items()}
            (out / "metrics.json").write_text(json.dumps(metrics))
            folder = out
        report(metrics, folder)


def train_step(method: Method, forget: Batch, retain: Batch, autocast: str | None = None) -> dict[str, float]:
    """One update of `method` on a forget and a retain batch; its logs, with `diverged: 1.0` when a
    logged value or a weight is not finite.

    `autocast` (a device type, `cuda` or `cpu`) runs the update under bf16 autocast.
    """
    with torch.autocast(autocast or "cpu", dtype=torch.bfloat16, enabled=autocast is not None):
        logs = method.step(forget, retain)
    finite = all(math.isfinite(v) for v in logs.values()) and all(torch.isfinite(p).all()
                                                                   for p in method.model.parameters())
    return logs if finite else logs | {"diverged": 1.0}


def unlearn(method: Method, forget: Iterator[Batch], retain: Iterator[Batch], steps: int,
            autocast: str | None = None) -> list[dict[str, float]]:
    """`train_step` on one forget and one retain batch at a time, for `steps` forget batches (fewer if
    it diverges), in this process and without checkpoints or evaluation: what tests and benchmarks
    call. Returns each step's logs."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    history: list[dict[str, float]] = []
    for _ in range(steps):
        history.append(train_step(method, next(forget), next(retain), autocast))
        if history[-1].get("diverged"):
            break
    return history


def shard(batches: Iterator[Batch], rank: int, world: int, device="cpu") -> Iterator[Batch]:
    """Rows rank, rank + world, ... of each global batch, on `device`."""
    for batch in batches:
        yield {k: v[rank::world].to(device) for k, v in batch.items()}


def _evaluate(task: Task, model, spec: RunSpec, best_dir: Path | None, best: dict, step: int) -> Evaluation:
    """The task's evaluation of `model` on rank 0; with `keep_best`, the model is saved to `best_dir`
    when it beats the best so far (`best` holds that step and value)."""
    summary, result = task.evaluate(model)
    model.train()
    value = summary.get(spec.keep_best, -math.inf)
    if best_dir is not None and (not best or value > best[spec.keep_best]):
        task.save(model, best_dir)
        best.clear()
        best.update({"step": step, spec.keep_best: value})
    return summary, result
