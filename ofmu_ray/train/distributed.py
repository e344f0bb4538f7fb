"""One unlearning run: the worker loop, run in this process (one worker) or on Ray Train workers.

Data parallelism: every step draws one *global* forget batch and one global retain batch (the
same on every rank, from the same seed) and rank r keeps rows r, r + W, ... of each, so ranks see
different samples and together exactly the batch one process would see. First-order methods run
under DDP (`prepare_model`); methods that take `torch.autograd.grad` (OFMU) average their own
gradient vectors. Losses are scaled to the global token count (`methods.distributed.global_mean`),
so a W-worker run computes the same updates as one worker on the global batch.

A one-worker run skips Ray Train altogether and runs the loop in the calling process (in a sweep,
the Tune trial's own process): starting a worker group costs seconds that one worker does not need.

The same loop unlearns an image classifier (`Task`: what differs is how the model, its batches,
its evaluation and its saving are made).

What a run leaves in its final checkpoint folder: the unlearned model (safetensors + tokenizer),
`history.json` (each step's logs), `metrics.json` (what the run reports), and, when it was
evaluated, `TOFU_EVAL.json` (per question) and `TOFU_SUMMARY.json` (WMDP-style: `MCQ_EVAL.json`, each
question's pick, and `MCQ_SUMMARY.json`; images: `VISION_EVAL.json` with the target's and oracle's
metrics, `VISION_SUMMARY.json`) and, with `keep_best`, the best
evaluated model in `best/`. The checkpoints taken every `checkpoint_every` steps also hold
`train_state.pt` (the trained weights, the method's optimizer state, the RNG and the logs so far):
what Ray Train resumes a run from when a worker dies (`max_failures`).
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ofmu_ray.methods.losses import Batch
from ofmu_ray.models.lora import SAVE_MODES, save_model

# (metrics, a finished checkpoint folder on rank 0 or None); every rank calls it at the same steps.
Report = Callable[[dict, "Path | None"], None]
TRAIN_STATE = "train_state.pt"
# what `keep_best` may maximise
BEST_METRICS = ("log10_forget_quality", "model_utility", "forget_closeness", "utility_acc", "oracle_closeness", "ta")


@dataclass(frozen=True)
class RunSpec:
    """Everything a worker needs; plain values so that Ray can ship it."""

    model_dir: str  # the model to unlearn: a folder (safetensors + tokenizer) or a hub id
    data_dir: str  # TOFU-schema splits (image benchmarks: read through `prepared_root`)
    forget_split: str
    retain_split: str
    method: str
    overrides: dict = field(default_factory=dict)
    steps: int = 20  # forget batches (the same budget for every method)
    batch_size: int = 16  # global batch, split across workers
    seed: int = 0
    prepared_root: str = ""  # a prepared benchmark: evaluate against its oracle at the end
    eval_every: int = 0  # also evaluate every N steps (needs prepared_root); 0 = at the end only
    checkpoint_every: int = 0  # also checkpoint the model every N steps; 0 = at the end only
    keep_best: str = ""  # keep the evaluated model that maximises this metric (one of BEST_METRICS)
    lora: dict = field(default_factory=dict)  # a `LoraSpec` as a dict: unlearn through adapters only
    lora_save: str = "merged"  # or "adapter": save the adapter alone, beside the base model it names
    prompt: str = "auto"  # the prompt format the model was trained with (`models.prompt`)
    dtype: str = "fp32"  # or "bf16" (the weights' type), or "bf16-mixed" (fp32 weights, bf16 autocast)
    bench: str = "synth-tofu"  # an image benchmark (`digits`, `cifar10`, ...) unlearns a classifier

    def __post_init__(self):
        if self.steps < 1 or self.batch_size < 1 or self.eval_every < 0 or self.checkpoint_every < 0:
            raise ValueError("steps and batch_size must be >= 1, eval_every and checkpoint_every >= 0")
        if (self.eval_every or self.keep_best) and not self.prepared_root:
            raise ValueError("eval_every and keep_best need a prepared benchmark to evaluate against")
        if self.keep_best and self.keep_best not in BEST_METRICS:
            raise ValueError(f"keep_best {self.keep_best!r}: choose from {', '.join(BEST_METRICS)}")
        if self.lora_save not in SAVE_MODES:
            raise ValueError(f"lora_save {self.lora_save!r}: choose from {', '.join(SAVE_MODES)}")


def shard(batches: Iterator[Batch], rank: int, world: int, device="cpu") -> Iterator[Batch]:
    """Rows rank, rank + world, ... of each global batch, on `device`."""
    for batch in batches:
        yield {k: v[rank::world].to(device) for k, v in batch.items()}


@dataclass
class Task:
    """What differs between unlearning a language model and an image classifier; the loop is the same."""

    model: Any
    load_reference: Callable[[], Any]  # a frozen copy of the model before unlearning
    forget: Iterator[Batch]  # global batches, the same on every rank
    retain: Iterator[Batch]
    evaluate: Callable[[Any], tuple[dict, dict]]  # (summary metrics, per-item results) on rank 0
    save: Callable[[Any, Path], None]  # safetensors, with what the model needs to load again
    result_files: tuple[str, str]  # where the per-item results and the summary are written


def _text_task(spec: RunSpec, device) -> Task:
    from ofmu_ray.data import family, load_tofu
    from ofmu_ray.models import load_causal_lm, load_tokenizer
    from ofmu_ray.train.unlearn import batches

    data = load_tofu(spec.data_dir)
    tokenizer = load_tokenizer(spec.model_dir, spec.prompt)

    def evaluate(model) -> tuple[dict, dict]:
        from ofmu_ray.eval.mcq import evaluate_loaded_mcq
        from ofmu_ray.eval.run import evaluate_loaded
        from ofmu_ray.prepare import Prepared

        prepared = Prepared(Path(spec.prepared_root))
        if family(spec.bench) == "mcq":
            return evaluate_loaded_mcq(prepared, model, tokenizer, data)
        return evaluate_loaded(prepared, spec.forget_split, model, tokenizer, data, spec.dtype)

    def save(model, out: Path) -> None:
        save_model(model, out, spec.lora_save)
        tokenizer.save_pretrained(out)

    return Task(load_causal_lm(spec.model_dir, spec.dtype).to(device),
                lambda: load_causal_lm(spec.model_dir, spec.dtype).to(device),
                batches(tokenizer, data[spec.forget_split], spec.batch_size, spec.seed),
                batches(tokenizer, data[spec.retain_split], spec.batch_size, spec.seed + 1),
                evaluate, save, (("MCQ_EVAL.json", "MCQ_SUMMARY.json") if family(spec.bench) == "mcq"
                                 else ("TOFU_EVAL.json", "TOFU_SUMMARY.json")))


def _image_task(spec: RunSpec, device) -> Task:
    from ofmu_ray.eval.vision import evaluate_classifier, summarize_vision
    from ofmu_ray.models.vision import load_classifier, save_classifier
    from ofmu_ray.prepare import Prepared
    from ofmu_ray.prepare_vision import vision_of
    from ofmu_ray.train.classifier import image_batches

    prepared = Prepared(Path(spec.prepared_root))
    data, splits = vision_of(prepared)

    def evaluate(model) -> tuple[dict, dict]:
        oracle = prepared.report["metrics"]["oracle"]
        summary = summarize_vision(evaluate_classifier(model, data, splits), oracle)
        return summary, {"model": summary, "oracle": oracle, "target": prepared.report["metrics"]["target"]}

    x, y = data.train_x, data.train_y
    return Task(load_classifier(spec.model_dir).to(device), lambda: load_classifier(spec.model_dir).to(device),
                image_batches(x[splits.forget], y[splits.forget], spec.batch_size, spec.seed),
                image_batches(x[splits.retain], y[splits.retain], spec.batch_size, spec.seed + 1),
                evaluate, save_classifier, ("VISION_EVAL.json", "VISION_SUMMARY.json"))


def _train_state(model, method, history: list[dict], seconds: float) -> dict:
    """What a resumed run needs: the weights training changes (trainable ones and buffers, e.g. batch
    norm statistics; the frozen rest is reloaded from the model folder), method state, RNG, logs, and
    the unlearning seconds so far (a resumed run reports what the whole run cost)."""
    import torch

    trained = {name for name, p in model.named_parameters() if p.requires_grad}
    trained |= {name for name, _ in model.named_buffers()}
    weights = {k: v.detach().cpu() for k, v in model.state_dict().items() if k in trained}
    return {"weights": weights, "method": method.state_dict(), "rng": torch.get_rng_state(), "history": history,
            "seconds": seconds}


def load_train_state(folder: Path) -> dict | None:
    """The `train_state.pt` of a checkpoint folder, if it has one (read with `weights_only`)."""
    import torch

    path = Path(folder) / TRAIN_STATE
    return torch.load(path, map_location="cpu", weights_only=True) if path.exists() else None


def _resume(model, method, state: dict) -> list[dict]:
    import torch

    unexpected = model.load_state_dict(state["weights"], strict=False).unexpected_keys
    if unexpected:
        raise ValueError(f"the checkpoint does not fit this model: unexpected weights {unexpected[:3]}")
    method.load_state_dict(state["method"])
    torch.set_rng_state(state["rng"])
    return state["history"]


def run_worker(spec: RunSpec, rank: int, world: int, report: Report, device="cpu", wrap=None,
               resume: dict | None = None) -> None:
    """The loop every worker runs: load, unlearn this rank's shard, checkpoint and evaluate on rank 0.

    Args:
        report: called by every rank at the same steps (under Ray Train it is a barrier).
        wrap: wraps the model for data parallelism (Ray Train's `prepare_model`); None in one process.
        resume: a checkpoint's train state (`load_train_state`): go on from its step.
    """
    import torch

    from ofmu_ray.data import modality
    from ofmu_ray.methods import build_config, get_method
    from ofmu_ray.train.unlearn import unlearn

    if spec.batch_size % world:
        raise ValueError(f"batch_size {spec.batch_size} must be divisible by the {world} workers")
    torch.manual_seed(spec.seed)  # the same on every rank: identical models, identical batch order
    task = (_image_task if modality(spec.bench) == "image" else _text_task)(spec, device)
    model = task.model
    cls = get_method(spec.method)
    cfg = build_config(spec.method, spec.overrides)
    cls.prepare_model(model, cfg)
    if spec.lora:
        from ofmu_ray.models.lora import LoraSpec, add_lora

        model = add_lora(model, LoraSpec(**spec.lora))
    reference = task.load_reference().requires_grad_(False) if cls.needs_reference else None
    if cls.ddp and wrap is not None:
        model = wrap(model)  # DDP when world > 1
    method = cls(model, cfg, reference)
    forget, retain = shard(task.forget, rank, world, device), shard(task.retain, rank, world, device)
    bare = getattr(model, "module", model)
    done = _resume(bare, method, resume) if resume else []
    seen = list(done)  # the logs a checkpoint carries
    seconds_before = resume.get("seconds", 0.0) if resume else 0.0
    evaluated = bool(spec.prepared_root) and rank == 0
    best_dir = Path(tempfile.mkdtemp(prefix="ofmu-ray-best-")) if spec.keep_best and rank == 0 else None
    best: dict = {}

    def evaluate(step: int) -> tuple[dict, dict]:
        summary, result = task.evaluate(bare)
        bare.train()
        value = summary.get(spec.keep_best, -math.inf)
        if best_dir is not None and (not best or value > best[spec.keep_best]):
            task.save(bare, best_dir)
            best.clear()
            best.update({"step": step, spec.keep_best: value})
        return summary, result

    last = min(spec.steps, method.max_steps or spec.steps)  # the final report covers the last step

    def on_step(step: int, logs: dict[str, float]) -> None:
        seen.append(logs)
        n = step + 1
        due_eval = bool(spec.eval_every) and n % spec.eval_every == 0 and n < last
        due_checkpoint = bool(spec.checkpoint_every) and n % spec.checkpoint_every == 0 and n < last
        if not (due_eval or due_checkpoint):
            return
        metrics = {"step": n} | logs
        with tempfile.TemporaryDirectory() as out:
            folder = None
            if rank == 0:
                if due_eval:
                    metrics |= evaluate(n)[0]
                if due_checkpoint:
                    task.save(bare, Path(out))
                    seconds = seconds_before + time.perf_counter() - started
                    torch.save(_train_state(bare, method, seen, seconds), Path(out) / TRAIN_STATE)
                    folder = Path(out)
            report(metrics, folder)

    autocast = torch.device(device).type if spec.dtype == "bf16-mixed" else None
    started = time.perf_counter()
    history = unlearn(method, forget, retain, spec.steps, on_step, autocast, done)
    # what the method cost: the unlearning loop alone (evaluations on the way included), not loading;
    # a resumed run adds the seconds up to its checkpoint (the work lost after it is not counted)
    seconds = seconds_before + time.perf_counter() - started
    metrics = {f"final/{k}": v for k, v in history[-1].items()} | {"step": len(history), "unlearn_seconds": seconds}
    if done:  # a worker died and Ray Train restarted the run from a checkpoint
        metrics["resumed_from_step"] = len(done)
    if history[-1].get("diverged"):  # nothing worth evaluating: a sweep gives it the worst objectives
        metrics["diverged"], evaluated = 1.0, False
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        folder = None
        if rank == 0:
            task.save(bare, out)
            (out / "history.json").write_text(json.dumps([{"step": i + 1} | h for i, h in enumerate(history)]))
            if evaluated:
                summary, result = evaluate(len(history))
                metrics |= summary
                for name, content in zip(task.result_files, (result, summary), strict=True):
                    (out / name).write_text(json.dumps(content))
            if best_dir is not None:
                shutil.move(best_dir, out / "best")
                (out / "best" / "best.json").write_text(json.dumps(best))
                metrics |= {f"best/{k}": v for k, v in best.items()}
            (out / "metrics.json").write_text(json.dumps(metrics))
            folder = out
        report(metrics, folder)


def worker_loop(config: dict) -> None:
    """Ray Train's entry point on every worker."""
    import ray.train
    import ray.train.torch

    ctx = ray.train.get_context()

    def report(metrics: dict, folder: Path | None) -> None:
        checkpoint = ray.train.Checkpoint.from_directory(folder) if folder else None
        ray.train.report(metrics, checkpoint=checkpoint)

    resume = None
    if checkpoint := ray.train.get_checkpoint():  # set when Ray Train restarts a failed run
        with checkpoint.as_directory() as folder:
            resume = load_train_state(Path(folder))
    run_worker(RunSpec(**config), ctx.get_world_rank(), ctx.get_world_size(), report,
               ray.train.torch.get_device(), ray.train.torch.prepare_model, resume)


def _run_here(spec: RunSpec, storage: Path, use_gpu: bool) -> tuple[dict, Path]:
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
    run_worker(spec, 0, 1, report, device)
    return reports[-1]


def on_ray_train(workers: int, max_failures: int) -> bool:
    """Whether a run goes through Ray Train: for several workers, or to be restarted when one dies."""
    return workers > 1 or max_failures > 0


def run(spec: RunSpec, workers: int = 1, cpus_per_worker: float = 1.0, gpus_per_worker: float = 0.0,
        storage: str | Path | None = None, name: str = "unlearn", max_failures: int = 0) -> tuple[dict, Path]:
    """One unlearning run: in this process for one worker, through Ray Train for more.

    Args:
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
        return _run_here(spec, storage / name, gpus_per_worker > 0)
    return run_on_ray(spec, workers, cpus_per_worker, gpus_per_worker, storage, name, max_failures)


def run_on_ray(spec: RunSpec, workers: int, cpus_per_worker: float, gpus_per_worker: float, storage: Path,
               name: str, max_failures: int = 0) -> tuple[dict, Path]:
    """The run through a Ray Train worker group (`run` uses it when `on_ray_train`)."""
    import ray.train
    import ray.train.torch

    use_gpu = gpus_per_worker > 0
    resources = {"CPU": cpus_per_worker} | ({"GPU": gpus_per_worker} if use_gpu else {})
    trainer = ray.train.torch.TorchTrainer(
        worker_loop,
        train_loop_config=asdict(spec),
        # a hung collective surfaces in minutes, not after torch's default 30
        torch_config=ray.train.torch.TorchConfig(backend="nccl" if use_gpu else "gloo", timeout_s=600),
        scaling_config=ray.train.ScalingConfig(num_workers=workers, use_gpu=use_gpu,
                                               resources_per_worker=resources),
        run_config=ray.train.RunConfig(name=name, storage_path=str(storage),
                                       failure_config=ray.train.FailureConfig(max_failures=max_failures)),
    )
    result = trainer.fit()
    return result.metrics, Path(result.checkpoint.path)
