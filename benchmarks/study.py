"""The verdict study: OFMU against each baseline, with intervals, at equal data and equal compute.

    python benchmarks/study.py --split forget10 --searches 3 --trials 12 --seeds 5 --attacks relearn,quant4
    python benchmarks/study.py --split forget05 --searches 1 --trials 12 --seeds 5 --attacks none
    python benchmarks/study.py --report-only     # RESULTS.md again from the store, nothing run

One invocation runs one *cell* (a forget split, on one model) of the study `--name`:
- `--searches R` independent `ofmu-ray sweep`s of `--methods`, sampler seeds 0..R-1, each with
  `--trials` trials a method (the first at the method's defaults) and the same forget batches;
- in each search, each method's selected configuration (its headline trial: the best forget quality
  among the trials keeping `--utility-floor` x the target's utility) re-run on `--seeds K` fresh
  seeds (`sweep --seeds K --rerun headline`). The verdict reads those re-runs, not the trial that
  was picked for looking good (the winner's curse).

Everything goes to one MLflow store (`--tracking-uri`): the sweeps to `synth-tofu/<split>` (named
`<name>-<split>-search<r>`), and a record of the cell (its settings, the prepared build's manifest
hash, the processor) to the experiment `study/<name>`. Then the report is written from the store
alone, over every finished cell of the study (`study_report.py`): `benchmarks/RESULTS.md`, its
figures beside it in `results/`, and both logged to MLflow. A stopped cell goes on with `--resume`.
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import sys
from pathlib import Path

from study_report import write_report  # beside this file, which Python puts first on the path

HERE = Path(__file__).resolve().parent
CELL = "study-cell"  # the ofmu.kind of a cell's record in `study/<name>`


def processor() -> str:
    """The CPU's model name and core count (prepared builds differ between CPUs), or the GPU's."""
    import os

    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}, {torch.cuda.device_count()} GPU(s)"
    cpuinfo = Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
             if line.startswith("model name")] if cpuinfo.is_file() else []
    return f"{names[0] if names else platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def manifest_hash(args: argparse.Namespace) -> str:
    """The sha256 of the prepared build's `manifest.json` (which lists every file's hash)."""
    from ofmu_ray import runs
    from ofmu_ray.families.base import PrepareRequest

    prepared = runs.prepare(PrepareRequest(bench="synth-tofu", split=args.split, profile=args.profile,
                                           model=args.model, cache_dir=args.cache_dir))
    return hashlib.sha256((prepared.root / "manifest.json").read_bytes()).hexdigest()


def sweep_name(study: str, split: str, search: int) -> str:
    return f"{study}-{split}-search{search}"


def _sweep_argv(args: argparse.Namespace, search: int, resume: bool) -> list[str]:
    return ["sweep", "--bench", "synth-tofu", "--profile", args.profile, "--split", args.split, "--model", args.model,
            "--methods", ",".join(args.methods), "--trials", str(args.trials),
            *(["--steps", str(args.steps)] if args.steps else ["--epochs", str(args.epochs)]),
            "--seeds", str(args.seeds), "--rerun", "headline", "--sampler-seed", str(search - 1),
            "--utility-floor", str(args.utility_floor), "--tracking-uri", args.tracking_uri,
            "--sweeps-dir", args.sweeps_dir, "--name", sweep_name(args.name, args.split, search),
            *(["--attacks", args.attacks] if args.attacks != "none" else []),
            *(arg for space in args.space for arg in ("--space", space)),
            *(["--cache-dir", args.cache_dir] if args.cache_dir else []),
            *(["--address", args.address] if args.address else []),
            *(["--storage-path", args.storage_path] if args.storage_path else []),
            *(["--resume"] if resume else [])]


def run_cell(args: argparse.Namespace, command: str) -> None:
    """The cell's R searches, one after the other, then its record marked finished.

    Raises:
        SystemExit: a search failed, or the cell was started before and `--resume` was not given.
    """
    from ofmu_ray.cli import main
    from ofmu_ray.tracking import mlflow_log

    started = [r for r in range(1, args.searches + 1)
               if (Path(args.sweeps_dir) / sweep_name(args.name, args.split, r) / "sweep.json").is_file()]
    if started and not args.resume:
        raise SystemExit(f"study {args.name}: {args.split}'s searches {started} were started before; --resume them, "
                         "or choose another --name")
    client = mlflow_log.connect(mlflow_log.open_store(args.tracking_uri))
    experiment = mlflow_log.experiment_id(client, f"study/{args.name}")
    record = _cell_record(client, experiment, args, command)
    for search in range(1, args.searches + 1):
        print(f"study {args.name}, {args.split}: search {search} of {args.searches}", file=sys.stderr, flush=True)
        argv = _sweep_argv(args, search, resume=search in started)
        if main(argv) != 0:
            raise SystemExit(f"search {search} failed: ofmu-ray {' '.join(argv)}")
    client.set_terminated(record, "FINISHED")


def _cell_record(client, experiment: str, args: argparse.Namespace, command: str) -> str:
    """The cell's run in `study/<name>` (made once; a resumed cell keeps its own): what ran, on what."""
    from ofmu_ray.tracking.mlflow_log import find_runs

    found = find_runs(client, experiment, ofmu__kind=CELL, ofmu__study=args.name, split=args.split)
    if found:
        client.update_run(found[0].info.run_id, status="RUNNING")
        return found[0].info.run_id
    run = client.create_run(experiment, run_name=args.split,
                            tags={"ofmu.kind": CELL, "ofmu.study": args.name, "split": args.split})
    params = {"command": command, "profile": args.profile, "model": args.model, "methods": ",".join(args.methods),
              "searches": args.searches, "trials": args.trials, "seeds": args.seeds, "epochs": args.epochs,
              **({"steps": args.steps} if args.steps else {}),
              **({"spaces": ",".join(args.space)} if args.space else {}),
              "attacks": args.attacks, "utility_floor": args.utility_floor, "processor": processor(),
              "manifest_sha256": manifest_hash(args),
              "sweeps": ",".join(sweep_name(args.name, args.split, r) for r in range(1, args.searches + 1))}
    for key, value in params.items():
        client.log_param(run.info.run_id, key, value)
    return run.info.run_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--name", default="verdict", help="the study's name: its cells are recorded in study/NAME")
    parser.add_argument("--split", default="forget10", help="the cell's forget split")
    parser.add_argument("--profile", default="small")
    parser.add_argument("--model", default="tiny-llama-4l")
    parser.add_argument("--methods", default=None, help="any registered text methods, comma-separated (default: the "
                        "six of the OFMU paper's comparison); OFMU must be one")
    parser.add_argument("--searches", type=int, default=3, metavar="R", help="independent searches (sampler seeds)")
    parser.add_argument("--trials", type=int, default=12, help="per method and search, the defaults first")
    parser.add_argument("--seeds", type=int, default=5, metavar="K",
                        help="fresh-seed re-runs of each search's selected configuration per method")
    parser.add_argument("--epochs", type=float, default=10, help="passes over the forget split per run, every method")
    parser.add_argument("--steps", type=int, default=None, help="or forget batches per run (instead of --epochs)")
    parser.add_argument("--space", action="append", default=[], metavar="METHOD=FILE",
                        help="as sweep's --space: search METHOD's space from your own YAML file; repeatable")
    parser.add_argument("--attacks", default="relearn,quant4",
                        help="as sweep's --attacks, on every run: the robust split key (none: off)")
    parser.add_argument("--utility-floor", type=float, default=0.9, metavar="TAU",
                        help="a selected configuration keeps TAU x the target's utility")
    parser.add_argument("--resume", action="store_true", help="go on with a cell whose searches were started")
    parser.add_argument("--address", default=None, help="a Ray cluster to join (default: start Ray here)")
    parser.add_argument("--storage-path", default=None, help="where trials keep their state: on a cluster, a folder "
                        "every node sees")
    parser.add_argument("--tracking-uri", default=f"sqlite:///{HERE / 'study.db'}")
    parser.add_argument("--sweeps-dir", default=str(HERE / "sweeps"))
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--bootstrap-seed", type=int, default=0, help="the intervals' resampling seed")
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--report-only", action="store_true", help="only regenerate the report from the store")
    args = parser.parse_args(argv)
    from ofmu_ray.families import FAMILIES
    from ofmu_ray.methods import METHODS
    from ofmu_ray.tune.config import check_utility_floor

    args.methods = args.methods.split(",") if args.methods else list(FAMILIES["synth-tofu"].default_methods)
    if set(args.methods) - set(METHODS):
        parser.error(f"--methods: unknown {', '.join(sorted(set(args.methods) - set(METHODS)))}; choose from "
                     f"{', '.join(METHODS)}")
    if "ofmu" not in args.methods or len(args.methods) < 2:
        parser.error("--methods: the verdict compares OFMU with at least one baseline")
    if min(args.searches, args.trials, args.seeds) < 1:
        parser.error("--searches, --trials and --seeds must be at least 1")
    try:
        check_utility_floor(args.utility_floor)
    except ValueError as e:  # UsageError
        parser.error(str(e))
    command = "python benchmarks/study.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if not args.report_only:
        run_cell(args, command.strip())
    print(f"report: {write_report(args.tracking_uri, args.name, Path(args.out), args.bootstrap_seed)}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
