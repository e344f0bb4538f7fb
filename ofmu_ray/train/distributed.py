"""One unlearning run on Ray Train workers: the worker loop and the `TorchTrainer` around it.

Data parallelism: every step draws one *global* forget batch and one global retain batch (the
same on every rank, from the same seed) and rank r keeps rows r, r + W, ... of each, so ranks see
different samples and together exactly the batch one process would see. First-order methods run
under DDP (`prepare_model`); methods that take `torch.autograd.grad` (OFMU) average their own
gradient vectors. Losses are scaled to the global token count (`methods.distributed.global_mean`),
so a W-worker run computes the same updates as one worker on the global batch.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ofmu_ray.methods.losses import Batch


@dataclass(frozen=True)
class RunSpec:
    """Everything a worker needs; plain values so that Ray can ship it."""

    model_dir: str  # the model to unlearn (safetensors + tokenizer)
    data_dir: str  # TOFU-schema splits
    forget_split: str
    retain_split: str
    method: str
    overrides: dict = field(default_factory=dict)
    steps: int = 20  # forget batches (the same budget for every method)
    batch_size: int = 16  # global batch, split across workers
    seed: int = 0


def shard(batches: Iterator[Batch], rank: int, world: int) -> Iterator[Batch]:
    """Rows rank, rank + world, ... of each global batch."""
    for batch in batches:
        yield {k: v[rank::world] for k, v in batch.items()}


def worker_loop(config: dict) -> None:
    """Runs in every Ray Train worker: load, unlearn on this rank's shard, rank 0 saves the model."""
    import ray.train
    import ray.train.torch
    import torch

    from ofmu_ray.data import load_tofu
    from ofmu_ray.methods import build_config, get_method
    from ofmu_ray.models import load_causal_lm, load_tokenizer
    from ofmu_ray.train.unlearn import batches, unlearn

    spec = RunSpec(**config)
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    if spec.batch_size % world:
        raise ValueError(f"batch_size {spec.batch_size} must be divisible by the {world} workers")
    torch.manual_seed(spec.seed)  # the same on every rank: identical models, identical batch order
    data = load_tofu(spec.data_dir)
    tokenizer, model = load_tokenizer(spec.model_dir), load_causal_lm(spec.model_dir)
    cls = get_method(spec.method)
    cfg = build_config(spec.method, spec.overrides)
    cls.prepare_model(model, cfg)
    reference = load_causal_lm(spec.model_dir).requires_grad_(False) if cls.needs_reference else None
    if cls.ddp:
        model = ray.train.torch.prepare_model(model)  # DDP when world > 1
    method = cls(model, cfg, reference)
    forget = shard(batches(tokenizer, data[spec.forget_split], spec.batch_size, spec.seed), rank, world)
    retain = shard(batches(tokenizer, data[spec.retain_split], spec.batch_size, spec.seed + 1), rank, world)
    history = unlearn(method, forget, retain, spec.steps)
    metrics = {f"final/{k}": v for k, v in history[-1].items()} | {"steps": len(history)}
    with tempfile.TemporaryDirectory() as out:
        checkpoint = None
        if rank == 0:
            getattr(model, "module", model).save_pretrained(out)
            tokenizer.save_pretrained(out)
            checkpoint = ray.train.Checkpoint.from_directory(out)
        ray.train.report(metrics, checkpoint=checkpoint)  # every rank reports: it is a barrier


def run(spec: RunSpec, workers: int = 1, cpus_per_worker: float = 1.0, gpus_per_worker: float = 0.0,
        storage: str | Path | None = None) -> tuple[dict, Path]:
    """One unlearning run through Ray Train.

    Returns:
        (rank 0's final metrics, the folder of the unlearned model).
    """
    import ray.train
    import ray.train.torch

    use_gpu = gpus_per_worker > 0
    resources = {"CPU": cpus_per_worker} | ({"GPU": gpus_per_worker} if use_gpu else {})
    storage = Path(storage or tempfile.mkdtemp(prefix="ofmu-ray-train-")).resolve()
    trainer = ray.train.torch.TorchTrainer(
        worker_loop,
        train_loop_config=asdict(spec),
        torch_config=ray.train.torch.TorchConfig(backend="nccl" if use_gpu else "gloo"),
        scaling_config=ray.train.ScalingConfig(num_workers=workers, use_gpu=use_gpu,
                                               resources_per_worker=resources),
        run_config=ray.train.RunConfig(storage_path=str(storage)),
    )
    result = trainer.fit()
    return result.metrics, Path(result.checkpoint.path)
