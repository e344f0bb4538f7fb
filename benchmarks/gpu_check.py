"""The CUDA path checked on one device, as `--gpus-per-worker 1` runs it, without Ray, MLflow or Optuna.

    python benchmarks/gpu_check.py --out gpu_report.json                  # on a GPU machine
    python benchmarks/gpu_check.py --device cpu --small --out report.json # the suite's run: seconds

Three parts, each written to the report as soon as it is measured (an interruption keeps the rest):
- `agreement`: every registered text method takes 3 forget batches on the prepared `tiny` target,
  on the CPU and on the device, in fp32 (TF32 off); the device's weight update (final minus
  initial weights) against the CPU's, as a share of the update's size (`AGREEMENT`);
- `bf16`: the same runs under bf16 autocast with fp32 weights (`--dtype bf16-mixed`), each loss
  curve's largest distance from fp32's as a share of its size (`BF16_MIXED`); and bf16 weights
  (`--dtype bf16`), under which the finite-difference Hessians are refused;
- `scale`: each method's seconds per forget batch and peak memory at batch 8 and sequence 256, on
  randomly initialised Llamas of SmolLM2-135M's and Llama-3.2-1B's shapes (no weights needed), OFMU
  with each Hessian option, and each as a ratio to gradient ascent on the same model. An
  out-of-memory case is reported with the memory it asked for, and the run goes on.

`--small` swaps the shapes for a 2-layer Llama and one no machine can hold (what the suite checks
the out-of-memory report with), at batch 2 and sequence 16.
"""

from __future__ import annotations

import argparse
import copy
import ctypes
import functools
import gc
import json
import re
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ofmu_ray.methods import build_config, get_method, methods_for
from ofmu_ray.methods.base import QA
from ofmu_ray.methods.losses import REFUSAL
from ofmu_ray.methods.ofmu import HESSIANS
from ofmu_ray.models.prompt import IGNORE
from ofmu_ray.train.loop import unlearn

AGREEMENT = 1e-2  # the device's update against the CPU's, relative to the update (CPU against itself: 0)
BF16_MIXED = 0.1  # a bf16-mixed loss curve's largest distance from fp32's, relative to the fp32 loss
OFMU_PAPER = (2.85, 4.22)  # OFMU's time per update over gradient ascent's, as the paper reports it
OFMU_CPU = 7.4  # the same ratio on 2 CPU cores (benchmarks/method_cost.py, tiny target)
SHAPES = {  # from the models' config.json files
    "smollm2-135m": {"hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
                     "num_attention_heads": 9, "num_key_value_heads": 3, "vocab_size": 49152,
                     "tie_word_embeddings": True},
    "llama-3.2-1b": {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
                     "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
                     "tie_word_embeddings": True, "rope_theta": 500000.0},
}
SMALL_SHAPES = {
    "llama-2l": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
                 "num_key_value_heads": 2, "vocab_size": 2048},
    "impossible": {"hidden_size": 2**16, "intermediate_size": 2**18, "num_hidden_layers": 64,
                   "num_attention_heads": 2**8, "num_key_value_heads": 2**8, "vocab_size": 2**20},
}


class Report:
    """The JSON report, written again after every entry."""

    def __init__(self, path: Path, header: dict):
        self.path, self.content = path, header | {"agreement": {}, "bf16": {}, "scale": {}}
        self.write()

    def add(self, part: str, key: str, value) -> None:
        self.content[part][key] = value
        self.write()
        print(f"{part} {key}: {json.dumps(value)}", file=sys.stderr, flush=True)

    def write(self) -> None:
        self.path.write_text(json.dumps(self.content, indent=1) + "\n")


def entries() -> dict[str, tuple[str, dict]]:
    """Every registered text method at its defaults, and OFMU with each Hessian option."""
    out = {m: (m, {}) for m in methods_for(QA)}
    return out | {f"ofmu:{h}": ("ofmu", {"hessian": h}) for h in HESSIANS}


def run(method: str, overrides: dict, model, forget: list, retain: list, device: str, autocast: bool,
        reference=None) -> tuple[list[float], torch.nn.Module]:
    """`len(forget)` updates of `method` on `model` (moved to `device`); the losses and the model."""
    cls = get_method(method)
    torch.manual_seed(0)
    model = model.to(device)
    reference = reference.to(device).eval().requires_grad_(False) if cls.needs_reference else None
    instance = cls(model, build_config(method, overrides), reference, budget=len(forget))
    moved = [[{k: v.to(device) for k, v in b.items()} for b in batches] for batches in (forget, retain)]
    history = unlearn(instance, iter(moved[0]), iter(moved[1]), len(forget),
                      torch.device(device).type if autocast else None)
    return [h.get("loss", h.get("loss_f")) for h in history], model  # OFMU logs its terms, not their sum


def update(before: dict, model) -> torch.Tensor:
    """Every weight's change, flattened, on the CPU."""
    return torch.cat([(p.detach().cpu().double() - before[n]).flatten() for n, p in model.named_parameters()])


def agreement_and_bf16(report: Report, device: str, cache_dir: str | None, steps: int = 3) -> None:
    """The `agreement` and `bf16` parts, on the prepared tiny target (prepared here on first use)."""
    from ofmu_ray.families.tofu.prepare import prepare_synth_tofu
    from ofmu_ray.families.tofu.vocabulary import REFUSALS
    from ofmu_ray.models.factory import load_causal_lm, load_tokenizer
    from ofmu_ray.train.task import batches

    prepared = prepare_synth_tofu("tiny", cache_dir, progress=False)
    data, where = prepared.data(), prepared.model_dir("target")
    tok = load_tokenizer(where)
    for name, (method, overrides) in entries().items():
        if name.startswith("ofmu:"):
            continue  # OFMU's Hessian options are timed in `scale`; its default runs here
        refusals = REFUSALS if get_method(method).needs_refusals else None
        forget = [b for b, _ in zip(batches(tok, data["forget10"], 8, refusals=refusals), range(steps), strict=False)]
        retain = [b for b, _ in zip(batches(tok, data["retain90"], 8, seed=1), range(steps), strict=False)]
        before = {n: p.detach().double() for n, p in load_causal_lm(where).named_parameters()}
        curves, updates = {}, {}
        for label, on, autocast in (("cpu", "cpu", False), ("device", device, False), ("bf16-mixed", device, True)):
            losses, model = run(method, overrides, load_causal_lm(where), forget, retain, on, autocast,
                                load_causal_lm(where))
            curves[label], updates[label] = losses, update(before, model)
        size = updates["cpu"].norm().item()
        report.add("agreement", name, {"relative_difference": (updates["device"] - updates["cpu"]).norm().item() / size,
                                       "update_norm": size, "tolerance": AGREEMENT})
        distance = max(abs(a - b) / max(abs(b), 1e-6) for a, b in zip(curves["bf16-mixed"], curves["cpu"],
                                                                       strict=True))
        report.add("bf16", name, {"loss_fp32": curves["cpu"], "loss_bf16_mixed": curves["bf16-mixed"],
                                  "relative_distance": distance, "tolerance": BF16_MIXED})
    for hessian in ("finite_diff", "finite_diff_forget"):
        model = load_causal_lm(where).to(device, torch.bfloat16)
        try:
            get_method("ofmu")(model, build_config("ofmu", {"hessian": hessian}))
            report.add("bf16", f"bf16 weights, ofmu:{hessian}", {"refused": False})
        except ValueError as e:
            report.add("bf16", f"bf16 weights, ofmu:{hessian}", {"refused": True, "message": str(e)})


def synthetic_batch(vocab: int, size: int, length: int, refusals: bool, generator) -> dict[str, torch.Tensor]:
    """Random tokens, the second half of each sequence labelled (the answer)."""
    ids = torch.randint(1, vocab, (size, length), generator=generator)
    labels = ids.clone()
    labels[:, : length // 2] = IGNORE
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    return batch | ({REFUSAL + k: v.clone() for k, v in batch.items()} if refusals else {})


class PeakMemory:
    """Peak memory (MiB) of what runs inside: CUDA's own counter, or on the CPU the process's resident set
    sampled every millisecond, above what it held on entry once freed memory went back to the system
    (else the heap's free pages would hold the entry's tensors and nothing would seem to grow)."""

    def __init__(self, device: str):
        self.cuda, self.peak, self.base = torch.device(device).type == "cuda", 0, 0
        self.stop = threading.Event()

    @staticmethod
    def _resident() -> int:
        return int(Path("/proc/self/statm").read_text().split()[1]) * 4096

    def _sample(self) -> None:
        while not self.stop.wait(0.001):
            self.peak = max(self.peak, self._resident())

    def __enter__(self):
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            gc.collect()
            ctypes.CDLL("libc.so.6").malloc_trim(0)
            self.base = self.peak = self._resident()
            self.thread = threading.Thread(target=self._sample, daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc):
        if self.cuda:
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated()
        else:
            self.stop.set()
            self.thread.join()
        return False

    @property
    def mib(self) -> float:
        return (self.peak - self.base) / 2**20


def out_of_memory(error: BaseException) -> str | None:
    """What an out-of-memory error asked for ("20.00 GiB", "274877906944 bytes"), or None if it is another error."""
    text = str(error)
    if not isinstance(error, torch.cuda.OutOfMemoryError) and "can't allocate memory" not in text:
        return None
    found = re.search(r"[Tt]ried to allocate ([\d.]+ ?[KMGT]?i?B|\d+ bytes)", text)
    return found.group(1) if found else "unknown"


def timed(make: Callable[[], torch.nn.Module], method: str, overrides: dict, shape: dict, device: str, size: int,
          length: int, steps: int) -> dict:
    """Seconds per forget batch and peak memory of `method` on a fresh model from `make`, after one warm-up
    cycle; the model, its reference and its batches are inside the memory measured."""
    cls = get_method(method)
    generator = torch.Generator().manual_seed(0)
    cuda = torch.device(device).type == "cuda"

    def stream(refusals: bool, n: int):
        return iter([{k: v.to(device) for k, v in synthetic_batch(shape["vocab_size"], size, length, refusals,
                                                                  generator).items()} for _ in range(n)])

    with PeakMemory(device) as memory:
        model = make().to(device)
        reference = copy.deepcopy(model).eval().requires_grad_(False) if cls.needs_reference else None
        instance = cls(model, build_config(method, overrides), reference)
        forget, retain = stream(cls.needs_refusals, instance.cycle + steps), stream(False, instance.cycle + steps)
        unlearn(instance, forget, retain, instance.cycle)  # warm-up: allocations and kernel choice
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        unlearn(instance, forget, retain, steps)
        if cuda:
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - start) / steps
    return {"seconds_per_batch": seconds, "peak_mib": memory.mib}


def scale(report: Report, device: str, shapes: dict[str, dict], size: int, length: int, steps: int) -> None:
    """The `scale` part: every entry on a fresh model of each shape, its ratio to gradient ascent."""
    from transformers import LlamaConfig, LlamaForCausalLM

    for shape_name, shape in shapes.items():
        config = LlamaConfig(**shape, max_position_embeddings=max(length, 256))
        results = {}
        for name, (method, overrides) in entries().items():
            torch.manual_seed(0)
            try:
                results[name] = timed(functools.partial(LlamaForCausalLM, config), method, overrides, shape,
                                      device, size, length, steps)
            except (RuntimeError, MemoryError) as e:
                asked = out_of_memory(e) if isinstance(e, RuntimeError) else "unknown"
                if asked is None:
                    raise
                results[name] = {"out_of_memory": True, "asked": asked}
                if torch.device(device).type == "cuda":
                    torch.cuda.empty_cache()
            base = results.get("gradascent", {}).get("seconds_per_batch")
            if base and "seconds_per_batch" in results[name]:
                results[name]["ratio_to_gradascent"] = results[name]["seconds_per_batch"] / base
            report.add("scale", f"{shape_name} {name}", results[name])
        report.content["scale"][f"{shape_name} ofmu against the paper"] = {
            "ratio": results["ofmu"].get("ratio_to_gradascent"), "paper": OFMU_PAPER, "cpu_tiny": OFMU_CPU}
        report.write()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--small", action="store_true", help="small shapes and batches: seconds on a CPU")
    parser.add_argument("--steps", type=int, default=None, help="timed forget batches per entry (default 2; 1 small)")
    parser.add_argument("--out", default="gpu_report.json")
    parser.add_argument("--cache-dir", default=None, help="where the tiny benchmark is prepared (as for prepare)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: this machine has no CUDA device; use --device cpu")
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # fp32 means fp32
    report = Report(Path(args.out), {
        "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu", "torch": torch.__version__,
        "small": args.small})
    agreement_and_bf16(report, args.device, args.cache_dir)
    shapes, size, length = (SMALL_SHAPES, 2, 16) if args.small else (SHAPES, 8, 256)
    scale(report, args.device, shapes, size, length, args.steps or (1 if args.small else 2))
    report.content["imported"] = sorted(m for m in sys.modules if m.split(".")[0] in ("ray", "mlflow", "optuna"))
    report.write()
    print(f"report: {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
