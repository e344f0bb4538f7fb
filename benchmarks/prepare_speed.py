"""How fast `prepare` trains: each stage's seconds, and its optimizer steps per second against the
matmul rate torch reaches on this machine in the same run.

Prepares a synth-tofu profile from scratch in a throwaway cache (the stages as `report.json` gives
them: the shared base model, the fine-tuning of the target and the oracles in parallel processes,
their evaluation), then times a square fp32 matmul in one thread and in all threads. A stage's
steps per second divided by the matmul rate (GFLOP/s) is the figure that carries across machines.

    python benchmarks/prepare_speed.py [--profile tiny] [--model tiny-llama-4l] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time


def matmul_gflops(threads: int, size: int = 512, seconds: float = 1.0) -> float:
    """GFLOP/s of repeated `size` x `size` fp32 matmuls in `threads` torch threads."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm-up
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    torch.set_num_threads(before)
    return 2 * size**3 * count / (time.perf_counter() - start) / 1e9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--model", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    import os

    from ofmu_ray.families.tofu.generate import generate, training_rows
    from ofmu_ray.families.tofu.load import forget_splits
    from ofmu_ray.families.tofu.prepare import PROFILES, prepare_synth_tofu
    from ofmu_ray.train.finetune import steps_for

    rates = {"one_thread": matmul_gflops(1), "all_threads": matmul_gflops(os.cpu_count() or 1)}
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        report = prepare_synth_tofu(args.profile, cache, args.model, progress=False).report
        wall = time.perf_counter() - start
    profile = PROFILES[args.profile]
    data = generate(profile.data)
    splits = forget_splits(data)
    base_steps = steps_for(len(training_rows(data, splits[-1])), profile.train)
    tune = profile.tune or profile.train
    tune_steps = sum(steps_for(len(training_rows(data, s)), tune) for s in (None, *splits))
    stages = report["stage_seconds"]
    out = {
        "profile": args.profile, "model": report["model"], "wall_seconds": wall, "stage_seconds": stages,
        "matmul_gflops": rates,
        "base": {"steps": base_steps, "steps_per_second": base_steps / stages["base"]},
        "tune": {"steps": tune_steps, "models": 1 + len(splits), "steps_per_second": tune_steps / stages["tune"]},
    }
    out["base"]["steps_per_second_per_gflops"] = out["base"]["steps_per_second"] / rates["all_threads"]
    out["tune"]["steps_per_second_per_gflops"] = out["tune"]["steps_per_second"] / rates["all_threads"]
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"prepare {args.profile} ({report['model']}): {wall:.0f} s from an empty cache")
    print(f"matmul: {rates['one_thread']:.1f} GFLOP/s in one thread, {rates['all_threads']:.1f} in all")
    for stage in ("base", "tune"):
        s = out[stage]
        print(f"  {stage:<5} {stages[stage]:7.1f} s  {s['steps']:5d} steps  {s['steps_per_second']:6.1f} steps/s  "
              f"({s['steps_per_second_per_gflops']:.3f} steps/s per GFLOP/s)")
    print(f"  evaluate {stages['evaluate']:5.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
