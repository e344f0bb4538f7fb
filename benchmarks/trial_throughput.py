"""Trials per hour: a sweep of the demo's shape, timed end to end, and where a trial's time goes.

Runs one `ofmu-ray sweep` (in this process, a fresh local Ray, a throwaway MLflow store) on the
prepared profile (prepared first, not timed), then reads every trial's own timings from its MLflow
run: `load_seconds` (task and model), `unlearn_seconds`, `eval_seconds`, `attack_seconds` (with
`--attacks`), and `trial_seconds` (the trial function's wall time, which also holds saving the model
and results). What a trial costs beyond its function (process start-up, Tune's scheduling, the
MLflow logging in the driver) is the sweep's wall time times the trials at a time, divided by the
trials, minus the function's median.

The figure to watch is the **fixed cost per trial**: wall time per trial (at the concurrency used)
minus its unlearning, also as a ratio to the unlearning. With `--attacks`, the attacks' overhead is
also given relative to the run they attack (the trial function without them).

    python benchmarks/trial_throughput.py [--profile small] [--methods gradascent,graddiff,npo]
        [--trials 4] [--concurrency 2] [--attacks relearn,benign,quant4] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path


def measure(profile: str, methods: str, trials: int, concurrency: int, steps: int | None,
            attacks: str | None = None) -> dict:
    from mlflow.tracking import MlflowClient

    from ofmu_ray.cli import main
    from ofmu_ray.families.tofu.prepare import prepare_synth_tofu

    prepare_synth_tofu(profile)  # cached; preparing is not what a trial costs
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlruns.db'}"
        argv = ["sweep", "--profile", profile, "--methods", methods, "--trials", str(trials), "--concurrency",
                str(concurrency), "--tracking-uri", uri, "--sweeps-dir", str(Path(tmp) / "sweeps"),
                *(["--steps", str(steps)] if steps else []), *(["--attacks", attacks] if attacks else [])]
        start = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):  # the sweep's own tables; stdout keeps this report
            code = main(argv)
        if code != 0:
            raise SystemExit(f"the sweep failed: ofmu-ray {' '.join(argv)}")
        wall = time.perf_counter() - start
        client = MlflowClient(uri)
        experiment = client.get_experiment_by_name("synth-tofu/forget10").experiment_id
        runs = client.search_runs([experiment], "tags.`ofmu.kind` = 'trial'")
    n = len(runs)
    keys = ("load_seconds", "unlearn_seconds", "eval_seconds", "trial_seconds", *(("attack_seconds",) * bool(attacks)))
    median = {k: statistics.median(r.data.metrics[k] for r in runs) for k in keys}
    attack = median.get("attack_seconds", 0.0)
    per_trial = wall * concurrency / n
    breakdown = {"loading": median["load_seconds"], "unlearning": median["unlearn_seconds"],
                 "evaluation": median["eval_seconds"], **({"attacks": attack} if attacks else {}),
                 "saving_and_reporting": median["trial_seconds"] - median["load_seconds"]
                 - median["unlearn_seconds"] - median["eval_seconds"] - attack,
                 "start_up_scheduling_and_logging": per_trial - median["trial_seconds"]}
    fixed = per_trial - median["unlearn_seconds"]
    report = {"trials": n, "wall_seconds": wall, "concurrency": concurrency, "trials_per_hour": n / wall * 3600,
              "seconds_per_trial": per_trial, "unlearn_seconds_per_trial": median["unlearn_seconds"],
              "fixed_seconds_per_trial": fixed, "fixed_to_unlearn": fixed / median["unlearn_seconds"],
              "breakdown": breakdown}
    if attacks:  # against the trial without its attacks: what turning them on multiplies
        report["attack_to_run"] = attack / (median["trial_seconds"] - attack)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--profile", default="small")
    parser.add_argument("--methods", default="gradascent,graddiff,npo")
    parser.add_argument("--trials", type=int, default=4, help="per method")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--steps", type=int, default=None, help="forget batches per trial (default: 10 epochs)")
    parser.add_argument("--attacks", default=None, help="as sweep's --attacks: their cost joins the breakdown")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = measure(args.profile, args.methods, args.trials, args.concurrency, args.steps, args.attacks)
    if args.json:
        keys = ("trials_per_hour", "fixed_seconds_per_trial", "unlearn_seconds_per_trial", "breakdown", "attack_to_run")
        print(json.dumps({k: report[k] for k in keys if k in report}, indent=2))
        return 0
    print(f"{report['trials']} trials in {report['wall_seconds']:.0f} s at {report['concurrency']} at a time: "
          f"{report['trials_per_hour']:.0f} trials per hour, {report['seconds_per_trial']:.1f} s a trial")
    print(f"fixed cost per trial: {report['fixed_seconds_per_trial']:.1f} s "
          f"({report['fixed_to_unlearn']:.1f}x its {report['unlearn_seconds_per_trial']:.1f} s of unlearning)")
    if "attack_to_run" in report:
        print(f"attacks: {report['breakdown']['attacks']:.1f} s a trial, "
              f"{report['attack_to_run']:.2f}x the run they attack")
    print("median trial:")
    for part, seconds in report["breakdown"].items():
        print(f"  {part:<34}{seconds:8.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
