"""What Ray costs per unlearning run: the wall time of one run (load, unlearn, evaluate) in plain
Python, against `ofmu-ray unlearn` with 1 and 2 workers (each a fresh process, as a user runs it),
and, inside an already started Ray (what a sweep trial pays), one 2-worker run and one 1-worker
run through a Ray Train worker group (which sweeps avoid by running one worker in the trial's own
process), with the group's start-up (`worker_start_seconds`: from `fit()` to the workers' loop).
Ratios measured in one run.

    python benchmarks/ray_overhead.py [--profile tiny] [--method graddiff] [--steps 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time

PLAIN = """
import sys
from ofmu_ray.families.tofu.load import retain_split
from ofmu_ray.families.tofu.oracle import evaluate_loaded
from ofmu_ray.families.tofu.prepare import prepare_synth_tofu
from ofmu_ray.methods import build_config, get_method
from ofmu_ray.models.factory import load_causal_lm, load_tokenizer
from ofmu_ray.train.loop import unlearn
from ofmu_ray.train.task import batches

profile, cache, method, steps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
prepared = prepare_synth_tofu(profile, cache)
data, model_dir = prepared.data(), prepared.model_dir("target")
tok, model = load_tokenizer(model_dir), load_causal_lm(model_dir)
cls = get_method(method)
cfg = build_config(method)
cls.prepare_model(model, cfg)
reference = load_causal_lm(model_dir).requires_grad_(False) if cls.needs_reference else None
run = cls(model, cfg, reference)
unlearn(run, batches(tok, data["forget10"], 16), batches(tok, data[retain_split("forget10")], 16, 1), steps)
evaluate_loaded(prepared, "forget10", model, tok, data)
"""

IN_RAY = """
import sys, time
from ofmu_ray import runs
from ofmu_ray.families import FAMILIES
from ofmu_ray.families.tofu.prepare import prepare_synth_tofu
from ofmu_ray.train.launch import run_on_ray

profile, cache, method, steps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
prepared = prepare_synth_tofu(profile, cache)
spec = runs.run_spec(prepared, split="forget10", method=method, steps=steps, batch_size=16)
runs.run(prepared, spec, workers=2, name="warm-up")  # starts Ray; Ray's first worker processes and imports
storage = runs.run(prepared, spec, name="in-process")[1].parents[1]
for workers in (2, 1):
    start = time.perf_counter()
    metrics, _ = run_on_ray(spec, FAMILIES["synth-tofu"].make_task, workers, 0.99, 0.0, storage, f"measured-{workers}")
    print(time.perf_counter() - start, metrics["worker_start_seconds"])
"""


def _wall(command: list[str], cwd: str) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(command[:4])} ... failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start, done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--method", default="graddiff")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from ofmu_ray.families import FAMILIES
    from ofmu_ray.families.tofu.prepare import prepare_synth_tofu

    prepared = prepare_synth_tofu(args.profile, args.cache_dir)  # not timed: every path needs it
    FAMILIES["synth-tofu"].references(prepared, "forget10", "fp32")
    cache = str(prepared.root.parents[1])
    common = [args.profile, cache, args.method, str(args.steps)]
    cli = [sys.executable, "-m", "ofmu_ray.cli", "unlearn", "--profile", args.profile, "--cache-dir", cache,
           "--method", args.method, "--steps", str(args.steps), "--batch-size", "16", "--json"]
    with tempfile.TemporaryDirectory() as work:
        uri = ["--tracking-uri", f"sqlite:///{work}/mlruns.db"]
        plain, _ = _wall([sys.executable, "-c", PLAIN, *common], work)
        one, _ = _wall([*cli, "--workers", "1", *uri], work)
        two, _ = _wall([*cli, "--workers", "2", *uri], work)
        _, out = _wall([sys.executable, "-c", IN_RAY, *common], work)
        lines = out.strip().splitlines()[-2:]
        (warm_two, start_two), (warm_one, start_one) = (map(float, line.split()) for line in lines)
    result = {"profile": args.profile, "method": args.method, "steps": args.steps,
              "plain_python_s": round(plain, 2), "unlearn_1_worker_s": round(one, 2),
              "unlearn_2_workers_s": round(two, 2), "in_started_ray_2_workers_s": round(warm_two, 2),
              "in_started_ray_1_worker_group_s": round(warm_one, 2),
              # from fit() to the workers' loop: what a worker group adds to a run in a started Ray
              "worker_start_2_workers_s": round(start_two, 2), "worker_start_1_worker_group_s": round(start_one, 2),
              "ratio_unlearn_1_worker": round(one / plain, 2), "ratio_unlearn_2_workers": round(two / plain, 2),
              "ratio_in_started_ray_2_workers": round(warm_two / plain, 2),
              "ratio_in_started_ray_1_worker_group": round(warm_one / plain, 2)}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:<38} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
