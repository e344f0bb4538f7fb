"""The `ofmu-ray` command. Each subcommand is a `_add_<name>` parser and a `_run_<name>` body.

What differs per benchmark is asked of its family (`families/`): the benches, the options each
takes and their help, defaults, reports. One run end to end is `runs.py`; a sweep is `tune/`.
Heavy imports (torch, transformers, Ray, MLflow) live inside the bodies, so that `--help` answers
at once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from collections.abc import Sequence

from ofmu_ray.config import check_budget, parse_sets
from ofmu_ray.errors import UsageError, UserError
from ofmu_ray.families import DEFAULT_BENCH, FAMILIES
from ofmu_ray.families.base import OPTIONS, Family, PrepareRequest

DEMO_TRIALS = 6  # sized so that `ofmu-ray demo` ends in minutes on 2 CPU cores
SWEEP_NAME = re.compile(r"[\w.-]+")  # a sweep's name becomes a folder name and an MLflow tag


def _families() -> list[Family]:
    """Every registered family once, in registry order."""
    return list(dict.fromkeys(FAMILIES.values()))


def _help(option: str) -> str:
    """An option's help: each family's part of it, in registry order."""
    return "; ".join(f.help[option] for f in _families() if option in f.help)


def _add_bench_args(p: argparse.ArgumentParser, split: bool = True, run: bool = True) -> None:
    """The options every command that works on a benchmark shares: which data, which models."""
    from ofmu_ray.models.prompt import PROMPTS

    p.add_argument("--bench", default=DEFAULT_BENCH, choices=list(FAMILIES), help=_help("--bench"))
    p.add_argument("--profile", default="tiny", choices=list(dict.fromkeys(n for f in _families() for n in f.profiles)),
                   help=_help("--profile"))
    p.add_argument("--model", default=None, help=_help("--model"))
    if split:
        p.add_argument("--split", default=None, help=_help("--split"))
    p.add_argument("--data", "--data-dir", dest="data", default=None, help=_help("--data"))
    p.add_argument("--oracle", default=None, help=_help("--oracle"))
    p.add_argument("--retain-logs", default=None, help=_help("--retain-logs"))
    p.add_argument("--prompt", default="auto", choices=["auto", *PROMPTS], help=_help("--prompt"))
    p.add_argument("--max-new-tokens", default=None, metavar="N|answer", help=_help("--max-new-tokens"))
    if run:
        p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "bf16-mixed"],
                       help="the models' weights: fp32, bf16, or fp32 with the unlearning passes under bf16 "
                            "autocast (bf16-mixed; GPUs with bf16 units)")
    p.add_argument("--cache-dir", default=None,
                   help="where prepared benchmarks live (default: $OFMU_RAY_CACHE or ~/.cache/ofmu-ray); "
                        "what the cache lacks is prepared first")


def _check_options(args: argparse.Namespace, model: str | None) -> None:
    """An option the bench does not take is an error naming the benches that do."""
    given = {"model": model, "data": args.data, "oracle": args.oracle, "retain_logs": args.retain_logs,
             "prompt": None if args.prompt == "auto" else args.prompt, "max_new_tokens": args.max_new_tokens}
    for option in OPTIONS:
        if given[option] is not None and not FAMILIES[args.bench].accepts(args.bench, option, args.command):
            takers = [b for b, f in FAMILIES.items() if f.accepts(b, option, args.command)]
            raise UsageError(f"--{option.replace('_', '-')}: for --bench {', '.join(takers)}, not {args.bench}")


def _request(args: argparse.Namespace) -> PrepareRequest:
    """The benchmark the arguments name, checked to take the options given."""
    _check_options(args, args.model)
    return PrepareRequest(bench=args.bench, split=args.split, profile=args.profile, model=args.model, data=args.data,
                          oracle=args.oracle, retain_logs=args.retain_logs, prompt=args.prompt,
                          max_new_tokens=args.max_new_tokens, cache_dir=args.cache_dir)


def _add_prepare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare", allow_abbrev=False,
                       help="generate a benchmark and train its target and retain-oracle models "
                            "(tofu: read your data and check your models)")
    _add_bench_args(p, run=False)
    p.add_argument("--rebuild", action="store_true",
                   help="build the prepared folder again and replace the cached one once the new one is complete")
    p.add_argument("--verify", action="store_true",
                   help="check every cached file's sha256 against the folder's manifest.json (sizes are "
                        "checked on every use)")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")


def _run_prepare(args: argparse.Namespace) -> int:
    from ofmu_ray import runs
    from ofmu_ray.cache import MANIFEST

    family, request = FAMILIES[args.bench], _request(args)
    summary = family.data_summary(request)
    if summary is not None:  # the user's data alone, nothing to prepare yet
        if args.json:
            print(json.dumps(summary, indent=2))
        else:
            print(f"{summary['bench']} data from {summary['data']}: "
                  + ", ".join(f"{n} ({k} rows)" for n, k in summary["splits"].items()))
        return 0
    prepared = runs.prepare(request, rebuild=args.rebuild)
    checked = prepared.check(hashes=True) if args.verify else 0
    if args.json:
        print(json.dumps(prepared.report, indent=2))
    else:
        family.print_report(prepared)
        print(f"cached in {prepared.root}")
    if args.verify:
        print(f"verified: {checked} files match {MANIFEST} (sizes and sha256)",
              file=sys.stderr if args.json else sys.stdout)
    return 0


def _add_methods(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("methods", allow_abbrev=False,
                       help="list the unlearning methods with their hyper-parameters, defaults and ranges")
    p.add_argument("--json", action="store_true")


def _run_methods(args: argparse.Namespace) -> int:
    from ofmu_ray.methods import describe_methods

    methods = describe_methods()
    if args.json:
        print(json.dumps(methods, indent=2))
        return 0
    for name, info in methods.items():
        print(f"{name}: {info['doc']}")
        print(f"  paper: {info['paper']}")
        for p in info["params"]:
            allowed = ("|".join(p["choices"]) if p["choices"] else
                       f"[{'' if p['low'] is None else p['low']}, {'' if p['high'] is None else p['high']}]")
            print(f"  {p['name']:<15} {p['type']:<6} default {p['default']!s:<10} {allowed:<28} {p['help']}")
    return 0


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", allow_abbrev=False,
                       help="TOFU metrics of a model against the retain oracle (prepares what the cache lacks)")
    _add_bench_args(p)
    p.add_argument("--evaluate", default="target",
                   help="which model: target, oracle, or a model folder (e.g. an unlearned one)")
    p.add_argument("--out", default=None, help="where TOFU_EVAL.json and TOFU_SUMMARY.json go "
                   "(default: evals/<model>-<split>)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")


def _run_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ofmu_ray import runs
    from ofmu_ray.cache import write_json

    family = FAMILIES[args.bench]
    prepared = runs.prepare(_request(args))
    out = Path(args.out or Path("evals") / f"{Path(args.evaluate).name}-{args.split}")
    summary, result = family.evaluate(prepared, args.evaluate, split=args.split, retain_logs=args.retain_logs,
                                      dtype=args.dtype)
    per_item, summary_file = family.result_files
    if result is not None:
        write_json(out / per_item, result)
    write_json(out / summary_file, summary)
    _print_metrics(summary, args.json, f"{family.results_label}: {out / per_item}" if result is not None
                   else f"written to {out / summary_file}")
    return 0


def _print_metrics(metrics: dict, as_json: bool, footer: str) -> None:
    """All of `metrics` as JSON on stdout, or one aligned line each and a footer for a person."""
    if as_json:
        print(json.dumps(metrics, indent=2))
        return
    for name, value in metrics.items():
        print(f"{name:<36} {value:.4g}")
    print(footer)


def _add_tracking_uri(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tracking-uri", default=None, help="MLflow store (default: sqlite:///mlruns.db here)")


def _add_run_args(p: argparse.ArgumentParser) -> None:
    """Options of one unlearning run, shared by `unlearn` and `sweep`."""
    default = "; ".join(f"{f.label}: " + (f"{f.default_epochs:g} epochs" if f.default_epochs else
                                          f"{f.default_steps} steps") for f in _families())
    p.add_argument("--steps", type=int, default=None,
                   help=f"forget batches (one a step, for every method), the same budget for every method "
                        f"(default: {default})")
    p.add_argument("--attacks", default="", metavar="relearn,benign,quant8,quant4",
                   help="also attack the unlearned model: relearning on half the forget split, fine-tuning on "
                        "retain data, int8/NF4 quantization; each scored on the other half (robust/...: the worst)")
    attack_defaults = "; ".join(f"{f.label}: epochs={a.epochs} lrs={'+'.join(f'{lr:g}' for lr in a.lrs)} "
                                f"batch_size={a.batch_size} share={a.share:g}"
                                for f in _families() if f.attacks for a in [f.attack_defaults])
    p.add_argument("--attack-set", action="append", default=[], metavar="KEY=VALUE",
                   help="how hard the attacks push: epochs, lrs (the attacker's grid), batch_size, share (of each "
                        f"author's, entity's or class's forget examples trained on); repeatable ({attack_defaults})")
    p.add_argument("--epochs", type=float, default=None,
                   help="or the budget in passes over the forget split: ceil(E * rows / batch size) forget batches")
    p.add_argument("--batch-size", type=int, default=16, help="global batch, split across workers")
    p.add_argument("--workers", type=int, default=1, help="data-parallel workers (1 runs in-process, no Ray Train)")
    p.add_argument("--cpus-per-worker", type=float, default=None,
                   help="default 1, or 0.99 with several workers (leaving room for the trial's driver)")
    p.add_argument("--gpus-per-worker", type=float, default=0.0, help="> 0: CUDA and the nccl backend")
    p.add_argument("--checkpoint-every", type=int, default=0,
                   help="also checkpoint the model and training state every N steps (0: at the end only)")
    p.add_argument("--max-failures", type=int, default=0,
                   help="restart a run's Ray Train workers up to N times when one dies, from its last checkpoint")
    p.add_argument("--lora", default=None, metavar="r=8,alpha=16,targets=q_proj+v_proj",
                   help="unlearn through LoRA adapters only (peft); targets joined by '+'")
    p.add_argument("--lora-save", default="merged", choices=["merged", "adapter"],
                   help="save the adapter merged into the base weights, or alone beside the base model")
    _add_tracking_uri(p)


def _lora(args: argparse.Namespace) -> dict:
    """--lora as a checked dict (empty without it)."""
    from dataclasses import asdict

    from ofmu_ray.models.lora import parse_lora

    if not args.lora:
        return {}
    try:
        return asdict(parse_lora(args.lora))
    except ValueError as e:
        raise UsageError(str(e)) from e


def _cpus(args: argparse.Namespace) -> float:
    return args.cpus_per_worker or (1.0 if args.workers == 1 else 0.99)


def _add_unlearn(sub: argparse._SubParsersAction) -> None:
    from ofmu_ray.methods import METHODS

    p = sub.add_parser("unlearn", allow_abbrev=False,
                       help="one unlearning run (through Ray Train with several workers), evaluated and "
                            "logged to MLflow")
    _add_bench_args(p)
    p.add_argument("--method", required=True, choices=list(METHODS))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a method hyper-parameter (see `ofmu-ray methods`); repeatable")
    _add_run_args(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=0, help="also evaluate every N steps (0: at the end only)")
    p.add_argument("--keep-best", default="", choices=["", *dict.fromkeys(m for f in _families() for m in f.keep_best)],
                   help="with --eval-every: also keep the evaluated model that maximises this metric")
    p.add_argument("--out", default=None, help="where checkpoints go (default: a new folder under runs/)")
    p.add_argument("--json", action="store_true", help="print the final metrics as JSON on stdout")


def _run_unlearn(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from ofmu_ray import runs

    overrides, lora = parse_sets(args.set), _lora(args)
    runs.check_settings(args.bench, args.method, overrides, args.keep_best)  # before anything starts
    check_budget(args.steps, args.epochs)
    FAMILIES[args.bench].check_attacks(_names(args.attacks), parse_sets(args.attack_set))
    if args.workers < 1 or args.batch_size % args.workers or min(args.checkpoint_every, args.max_failures) < 0:
        raise UsageError(f"need workers >= 1, batch size ({args.batch_size}) divisible by "
                         f"workers ({args.workers}), checkpoint-every and max-failures >= 0")
    if args.keep_best and not args.eval_every:
        raise UsageError("--keep-best needs --eval-every N")
    _check_uri(args)
    prepared = runs.prepare(_request(args))  # a damaged cache stops here, before the store is created
    args.tracking_uri = _store(args)
    steps = runs.budget_steps(prepared, args.split, args.batch_size, args.steps, args.epochs)
    spec = runs.run_spec(prepared, split=args.split, method=args.method, overrides=overrides, steps=steps,
                         batch_size=args.batch_size, seed=args.seed, eval_every=args.eval_every,
                         checkpoint_every=args.checkpoint_every, keep_best=args.keep_best, lora=lora,
                         lora_save=args.lora_save, dtype=args.dtype, attacks=_names(args.attacks),
                         attack_settings=parse_sets(args.attack_set))
    out = Path(args.out or Path("runs") / f"{args.method}-{args.split}-{time.strftime('%Y%m%d-%H%M%S')}")
    metrics, model_dir = runs.run(prepared, spec, workers=args.workers, cpus_per_worker=args.cpus_per_worker,
                                  gpus_per_worker=args.gpus_per_worker, max_failures=args.max_failures, storage=out)
    tags = {"bench": args.bench, "profile": args.profile, "split": args.split, "model": prepared.model,
            "method": args.method, "world_size": str(args.workers), "model_dir": str(model_dir),
            "ofmu.kind": "run"}
    run_id = runs.log(prepared, spec, metrics, model_dir, tags=tags, tracking_uri=args.tracking_uri)
    if args.json:
        metrics |= {"mlflow_run_id": run_id, "model_dir": str(model_dir)}
    _print_metrics(metrics, args.json, f"unlearned model: {model_dir}\nMLflow run {run_id}")
    return 0


def _add_utility_floor(p: argparse.ArgumentParser) -> None:
    from ofmu_ray.tune.config import UTILITY_FLOOR

    p.add_argument("--utility-floor", type=float, default=UTILITY_FLOOR, metavar="TAU",
                   help="the headline is each method's best forget quality among the trials that keep at least TAU x "
                        "the target's utility; the hypervolume is anchored at (the target's forget quality, TAU x its "
                        "utility) (default %(default)s)")


def _add_sweep(sub: argparse._SubParsersAction) -> None:
    from ofmu_ray.methods import METHODS
    from ofmu_ray.tune.config import RERUNS, SAMPLERS

    families = _families()
    methods = "; ".join(f"{f.label}: {', '.join(f.default_methods)}" for f in families)
    objectives = "; ".join(f"{f.label}: {','.join(f.objectives)}" + (
        f", or two of {', '.join(f.allowed_objectives)}" if set(f.allowed_objectives) - set(f.objectives) else "")
        for f in families)
    p = sub.add_parser("sweep", allow_abbrev=False,
                       help="Ray Tune + Optuna search of each method's space on two objectives "
                            "(TOFU: log10 FQ and MU); Pareto fronts in MLflow")
    _add_bench_args(p)
    p.add_argument("--methods", default=None, help=f"comma-separated, of {', '.join(METHODS)} (default: {methods})")
    p.add_argument("--objectives", default=None, metavar="X,Y",
                   help=f"the two maximised metrics (default: {objectives})")
    p.add_argument("--models", default=None,
                   help="comma-separated: sweep each model with the same budget (instead of --model; with "
                        "--bench tofu, --oracle or --retain-logs lists one per model, in the same order)")
    p.add_argument("--trials", type=int, default=8, help="per method, its default configuration included")
    p.add_argument("--trials-per-dim", type=int, default=0, metavar="K",
                   help="instead: K trials per dimension a method searches (at least 4), equal search effort")
    _add_run_args(p)
    p.add_argument("--concurrency", type=int, default=0, help="trials at once (0: as many as the CPUs hold)")
    p.add_argument("--seeds", type=int, default=0,
                   help="re-run each method's front configurations with K new seeds (mean and std)")
    p.add_argument("--rerun", default="front", choices=RERUNS,
                   help="what --seeds re-runs: every front configuration, or only the headline's trial (the best "
                        "forget quality at kept utility; none where no trial kept it), the selection a study reports")
    p.add_argument("--sampler", default="tpe", choices=SAMPLERS, help="Optuna's multi-objective sampler")
    p.add_argument("--sampler-seed", type=int, default=0)
    _add_utility_floor(p)
    p.add_argument("--space", action="append", default=[], metavar="METHOD=FILE",
                   help="search METHOD's space from your own YAML file (see tune_spaces/); repeatable")
    p.add_argument("--sweeps-dir", default="sweeps", help="where sweeps keep their configuration (sweep.json)")
    p.add_argument("--storage-path", default="", help="where trials keep their state and checkpoints: on a "
                   "cluster a folder every node sees (NFS, EFS); default: the sweep's folder in --sweeps-dir")
    p.add_argument("--optuna-storage", default="", metavar="URL",
                   help="where each method's Optuna study is kept (an SQLAlchemy URL, e.g. the MLflow server's "
                        "database); default: optuna.db in the sweep's folder. `ofmu-ray dashboard` shows them")
    p.add_argument("--name", default=None, help="the sweep's name (default: bench-profile-split-time)")
    p.add_argument("--resume", action="store_true",
                   help="finish an interrupted sweep (--name, or the latest in --sweeps-dir) as it was started")
    p.add_argument("--address", default=None, help="a Ray cluster to join (default: start Ray here)")
    p.add_argument("--json", action="store_true", help="print the fronts as JSON on stdout")


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(m.strip() for m in (text or "").split(",") if m.strip())


def _sweep_config(args: argparse.Namespace):
    from ofmu_ray.tune.config import SweepConfig

    if args.models and args.model:
        raise UsageError("--model or --models, not both")
    _check_options(args, args.models or args.model)
    return SweepConfig(
        bench=args.bench, profile=args.profile, split=args.split,
        methods=_names(args.methods) or FAMILIES[args.bench].default_methods, trials=args.trials, steps=args.steps,
        epochs=args.epochs, trials_per_dim=args.trials_per_dim, attacks=_names(args.attacks),
        attack_settings=parse_sets(args.attack_set),
        batch_size=args.batch_size, workers=args.workers, cpus_per_worker=_cpus(args),
        gpus_per_worker=args.gpus_per_worker, concurrency=args.concurrency, seeds=args.seeds, rerun=args.rerun,
        sampler=args.sampler,
        seed=args.sampler_seed, spaces=parse_sets(args.space), lora=_lora(args), lora_save=args.lora_save,
        models=_names(args.models or args.model), data=args.data, oracles=_names(args.oracle),
        retain_logs=_names(args.retain_logs), prompt=args.prompt, max_new_tokens=args.max_new_tokens,
        dtype=args.dtype, objectives=_names(args.objectives), storage_path=args.storage_path,
        checkpoint_every=args.checkpoint_every, utility_floor=args.utility_floor,
        max_failures=args.max_failures, optuna_storage=args.optuna_storage)


def _run_sweep(args: argparse.Namespace) -> int:
    from dataclasses import replace
    from pathlib import Path

    from ofmu_ray.tune.config import load_config, new_name

    root = Path(args.sweeps_dir)
    if args.name and not SWEEP_NAME.fullmatch(args.name):  # it becomes a folder name and an MLflow tag
        raise UsageError(f"--name {args.name!r}: use letters, digits, '.', '_' and '-' only")
    if args.resume:
        names = [args.name] if args.name else sorted(p.name for p in root.glob("*") if (p / "sweep.json").is_file())
        if not names:
            raise UsageError(f"--resume: no sweep in {root.resolve()}")
        sweep_dir = root / names[-1]
        cfg = replace(load_config(sweep_dir), utility_floor=args.utility_floor)  # how it is read, not what runs
        print(f"resuming sweep {sweep_dir.name} ({', '.join(cfg.methods)}; {cfg.search_effort})", file=sys.stderr)
    else:
        cfg = _sweep_config(args)
        sweep_dir = root / (args.name or new_name(cfg))
        if sweep_dir.exists():
            raise UsageError(f"sweep {sweep_dir} exists; --resume it or choose another --name")
    return _sweep(cfg, sweep_dir, args)


def _check_uri(args: argparse.Namespace) -> None:
    """A `--tracking-uri` that cannot name a store fails before anything is prepared (nothing is created)."""
    from ofmu_ray.tracking.mlflow_log import check_uri

    try:
        check_uri(args.tracking_uri)
    except ValueError as e:
        raise UsageError(str(e)) from e


def _store(args: argparse.Namespace) -> str:
    """The MLflow store of `--tracking-uri`, opened (a new SQLite file created) before anything runs."""
    from ofmu_ray.tracking.mlflow_log import open_store

    try:
        return open_store(args.tracking_uri)
    except ValueError as e:
        raise UsageError(str(e)) from e


def _sweep(cfg, sweep_dir, args: argparse.Namespace, timed: bool = False) -> int:
    """Runs the sweep `cfg` and prints its fronts; `timed`: also each stage's seconds, on stderr."""
    import time

    from ofmu_ray.train.launch import check_address
    from ofmu_ray.tune.spaces import load_spaces
    from ofmu_ray.tune.studies import open_storage
    from ofmu_ray.tune.sweep import prepare_models, run_sweep
    from ofmu_ray.tune.tuner import SweepInterrupted, TrialOutOfMemory

    load_spaces(cfg.methods, cfg.spaces)  # a bad space file: before anything is prepared or written
    _check_uri(args)
    if cfg.optuna_storage:  # a bad URL: before anything is prepared (the default file comes with the sweep)
        open_storage(cfg.optuna_storage)
    if args.address:  # before anything is prepared or written
        check_address(args.address)
    start = time.perf_counter()
    prepared = prepare_models(cfg, args.cache_dir)  # a damaged cache stops here, before the store is created
    swept = time.perf_counter()
    args.tracking_uri = _store(args)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # Tune's progress table: stdout keeps the results alone
            result = run_sweep(cfg, prepared, sweep_dir, args.tracking_uri, args.resume, args.address)
    except TrialOutOfMemory as e:
        print(f"ofmu-ray: out of memory: {e}; continue with ofmu-ray sweep --resume --name {sweep_dir.name} "
              f"(and the same --sweeps-dir)", file=sys.stderr)
        return 1
    except SweepInterrupted as e:
        print(f"ofmu-ray: sweep interrupted: {e}", file=sys.stderr)
        return 130
    reported = time.perf_counter()
    _print_fronts(result, args.json)
    if timed:
        print(f"elapsed: prepare {swept - start:.0f} s, sweep {reported - swept:.0f} s, "
              f"report {time.perf_counter() - reported:.0f} s", file=sys.stderr)
    return 0


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", allow_abbrev=False,
                       help="prepare the small benchmark, sweep all six methods on forget10, print the fronts")
    p.add_argument("--cache-dir", default=None, help="as for prepare")
    p.add_argument("--trials", type=int, default=DEMO_TRIALS, help="per method (the same for every method)")
    p.add_argument("--steps", type=int, default=None, help="forget batches per trial (default: 10 epochs)")
    p.add_argument("--epochs", type=float, default=None, help="or passes over the forget split per trial")
    _add_utility_floor(p)
    _add_tracking_uri(p)
    p.add_argument("--json", action="store_true")


def _run_demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ofmu_ray.tune.config import SweepConfig, new_name

    family = FAMILIES[DEFAULT_BENCH]
    cfg = SweepConfig(DEFAULT_BENCH, "small", family.default_splits[DEFAULT_BENCH], family.default_methods,
                      trials=args.trials, steps=args.steps, epochs=args.epochs, utility_floor=args.utility_floor)
    args.resume, args.address = False, None
    return _sweep(cfg, Path("sweeps") / ("demo-" + new_name(cfg)), args, timed=True)


def _print_fronts(result: dict, as_json: bool) -> None:
    from ofmu_ray.tracking.browse import sweep_address
    from ofmu_ray.tune.results import format_by_model, format_seeds, format_table

    if as_json:
        print(json.dumps(result, indent=1))
        return
    if result.get("search_effort"):
        print(f"search effort: {result['search_effort']}")
    for model, found in result["models"].items():
        print(f"=== model {model}")
        print(format_table(found["fronts"]))
        if found.get("seeds"):
            print("\nfront configurations re-run with new seeds (mean +- std):")
            print(format_seeds(found["seeds"], found["fronts"][""]["objectives"]))
        print()
    if result.get("headline_by_model"):
        print(format_by_model(result["headline_by_model"]) + "\n")
    where = result["mlflow"]
    print(f"MLflow: experiment {where['experiment']}, sweep {where['sweep']} in {where['tracking_uri']}")
    # MLflow 3 opens on a GenAI overview: point at this sweep's runs, in the training layout
    print("browse it: ofmu-ray ui" + ("" if where["tracking_uri"].endswith("/mlruns.db") else
                                       f" --tracking-uri {where['tracking_uri']}")
          + f"\nthen open {sweep_address(where['experiment_id'], where['sweep'])}")


def _add_ablate(sub: argparse._SubParsersAction) -> None:
    from ofmu_ray.methods import METHODS
    from ofmu_ray.tune.config import ABLATION_MODES, SAMPLERS

    p = sub.add_parser("ablate", allow_abbrev=False,
                       help="vary one or two of a method's settings, each variant held at a base or tuned on its "
                            "own; effect plots in MLflow")
    _add_bench_args(p)
    p.add_argument("--method", default="ofmu", choices=list(METHODS))
    p.add_argument("--axis", action="append", default=[], metavar="FIELD",
                   help="a field of the method's config (see `ofmu-ray methods`); twice for a grid")
    p.add_argument("--values", action="append", default=[], metavar="A,B,...",
                   help="the axis's values, once per --axis in order (default: every choice of a categorical axis)")
    p.add_argument("--base", nargs="+", default=["defaults"], metavar="defaults|sweep:NAME|KEY=VALUE",
                   help="the configuration the variants start from: the method's defaults, the best front "
                        "configuration of an earlier sweep (of the same bench and split), or settings (over a sweep's)")
    p.add_argument("--mode", default="held", choices=ABLATION_MODES,
                   help="held: every variant at the base, --seeds runs each; tuned: each variant its own "
                        "equal-budget search over the method's other dimensions (the fair comparison)")
    p.add_argument("--seeds", type=int, default=None, help="held: runs per variant (default 3)")
    p.add_argument("--trials", type=int, default=None, help="tuned: trials per variant, its base first (default 8)")
    p.add_argument("--objectives", default=None, metavar="X,Y", help="the two maximised metrics (as in sweep)")
    _add_run_args(p)
    p.add_argument("--concurrency", type=int, default=0, help="trials at once (0: as many as the CPUs hold)")
    p.add_argument("--sampler", default="tpe", choices=SAMPLERS, help="tuned: Optuna's multi-objective sampler")
    p.add_argument("--sampler-seed", type=int, default=0)
    _add_utility_floor(p)
    p.add_argument("--space", default=None, metavar="FILE", help="tuned: search this YAML space instead of "
                   "tune_spaces/<method>.yaml (the axes are left out of it)")
    p.add_argument("--ablations-dir", default="ablations", help="where ablations keep their configuration")
    p.add_argument("--storage-path", default="", help="as in sweep: where trials keep their state, seen by every node")
    p.add_argument("--name", default=None, help="the ablation's name (default: method-axes-mode-bench-...-time)")
    p.add_argument("--resume", action="store_true",
                   help="finish an interrupted ablation (--name, or the latest in --ablations-dir)")
    p.add_argument("--address", default=None, help="a Ray cluster to join (default: start Ray here)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")


def _run_ablate(args: argparse.Namespace) -> int:
    import re
    from dataclasses import replace
    from pathlib import Path

    from ofmu_ray.train.launch import check_address
    from ofmu_ray.tune import ablate
    from ofmu_ray.tune.config import SweepConfig, load_config
    from ofmu_ray.tune.spaces import load_spaces
    from ofmu_ray.tune.sweep import prepare_models
    from ofmu_ray.tune.tuner import SweepInterrupted, TrialOutOfMemory

    if args.attacks:
        raise UsageError("ablate does not run --attacks yet: sweep the variants with `ofmu-ray sweep --attacks`")
    root = Path(args.ablations_dir)
    if args.name and not re.fullmatch(r"[\w.-]+", args.name):  # it becomes a folder, an experiment and a tag
        raise UsageError(f"--name {args.name!r}: use letters, digits, '.', '_' and '-' only")
    if args.resume:
        names = [args.name] if args.name else sorted(
            p.name for p in root.glob("*") if (p / ablate.ABLATION_FILE).is_file())
        if not names:
            raise UsageError(f"--resume: no ablation in {root.resolve()}")
        folder = root / names[-1]
        ablation, cfg = ablate.load(folder), load_config(folder)
        args.cache_dir = args.cache_dir or ablation.cache_dir
        print(f"resuming ablation {folder.name} ({ablation.mode})", file=sys.stderr)
    else:
        held = args.mode == "held"
        if (args.trials is not None and held) or (args.seeds is not None and not held):
            raise UsageError("--seeds is for --mode held, --trials for --mode tuned")
        _check_options(args, args.model)
        cfg = SweepConfig(
            bench=args.bench, profile=args.profile, split=args.split, methods=(args.method,),
            trials=1 if held else (8 if args.trials is None else args.trials), steps=args.steps, epochs=args.epochs,
            batch_size=args.batch_size, workers=args.workers, cpus_per_worker=_cpus(args),
            gpus_per_worker=args.gpus_per_worker, concurrency=args.concurrency, sampler=args.sampler,
            seed=args.sampler_seed, spaces={args.method: args.space} if args.space else {}, lora=_lora(args),
            lora_save=args.lora_save, models=_names(args.model), data=args.data, oracles=_names(args.oracle),
            retain_logs=_names(args.retain_logs), prompt=args.prompt, max_new_tokens=args.max_new_tokens,
            dtype=args.dtype, objectives=_names(args.objectives), storage_path=args.storage_path,
            checkpoint_every=args.checkpoint_every, max_failures=args.max_failures, utility_floor=args.utility_floor)
        values = ablate.parse_axes(args.method, args.axis, args.values)
        settings, sweep = ablate.parse_base(args.base)
        seeds = 3 if args.seeds is None else args.seeds
        # checked before anything is prepared; a sweep's base is checked again once it is read
        checked = ablate.make_ablation(cfg, tuple(args.axis), values, settings, " ".join(args.base), args.mode, seeds)
        folder = root / (args.name or ablate.new_name(cfg, checked))
        if folder.exists():
            raise UsageError(f"ablation {folder} exists; --resume it or choose another --name")
    load_spaces(cfg.methods, cfg.spaces)
    _check_uri(args)
    if args.address:
        check_address(args.address)
    (prepared,) = prepare_models(cfg, args.cache_dir).values()  # a damaged cache stops here
    args.tracking_uri = _store(args)
    if not args.resume:
        if sweep:
            from ofmu_ray.tracking.mlflow_log import connect

            found, where = ablate.sweep_base(connect(args.tracking_uri), cfg.bench, cfg.split, sweep, args.method,
                                             prepared.model, cfg.utility_floor)
            settings, text = found | settings, " ".join([where, *(b for b in args.base if "=" in b)])
        else:
            text = " ".join(args.base)
        ablation = replace(ablate.make_ablation(cfg, tuple(args.axis), values, settings, text, args.mode, seeds),
                           cache_dir=args.cache_dir and str(Path(args.cache_dir).resolve()))
    try:
        with contextlib.redirect_stdout(sys.stderr):  # Tune's progress table: stdout keeps the results alone
            summary = ablate.run_ablation(cfg, ablation, prepared, folder, args.tracking_uri, args.resume,
                                          args.address)
    except SweepInterrupted as e:
        why = f"out of memory: {e}" if isinstance(e, TrialOutOfMemory) else "interrupted"
        print(f"ofmu-ray: ablation {why}; continue with ofmu-ray ablate --resume --name {folder.name} "
              f"--ablations-dir {root}", file=sys.stderr)
        return 1 if isinstance(e, TrialOutOfMemory) else 130
    if args.json:
        print(json.dumps(summary, indent=1, default=str))
        return 0
    print(ablate.markdown(summary))
    where = summary["mlflow"]
    print(f"MLflow: experiment {where['experiment']} (id {where['experiment_id']}) in {where['tracking_uri']}; "
          "the comparison run holds the plots")
    return 0


def _add_pareto(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pareto", allow_abbrev=False, help="rebuild a sweep's headline and fronts from MLflow")
    _add_tracking_uri(p)
    p.add_argument("--experiment", required=True, help="e.g. synth-tofu/forget10")
    p.add_argument("--sweep", default=None, help="which sweep (default: the latest in the experiment)")
    _add_utility_floor(p)
    p.add_argument("--json", action="store_true")


def _run_pareto(args: argparse.Namespace) -> int:
    from ofmu_ray.tune.config import check_utility_floor
    from ofmu_ray.tune.results import from_store

    check_utility_floor(args.utility_floor)
    _print_fronts(from_store(_store(args), args.experiment, args.sweep, args.utility_floor), args.json)
    return 0


def _add_ui(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ui", allow_abbrev=False, help="serve the MLflow UI of the store (on 127.0.0.1)")
    _add_tracking_uri(p)
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--host", default="127.0.0.1", help="the address to listen on; anything but 127.0.0.1 "
                   "exposes your runs to the network")
    p.add_argument("--sweep", default=None, help="print the address of this sweep's runs (default: the latest "
                   "sweep in the store)")


def _run_ui(args: argparse.Namespace) -> int:
    import subprocess
    from pathlib import Path

    from ofmu_ray.tracking.browse import sweep_address
    from ofmu_ray.tracking.mlflow_log import ARTIFACT_DIR, find_sweep

    if args.sweep and not SWEEP_NAME.fullmatch(args.sweep):
        raise UsageError(f"--sweep {args.sweep!r}: a sweep's name has letters, digits, '.', '_' and '-' only")
    uri = _store(args)
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri,
               "--default-artifact-root", Path(ARTIFACT_DIR).resolve().as_uri(),
               "--host", args.host, "--port", str(args.port)]
    found = find_sweep(uri, args.sweep)  # (experiment id, sweep), or None in a store without sweeps
    if args.sweep and found is None:
        raise UsageError(f"--sweep {args.sweep}: no run of {uri} is tagged ofmu.sweep={args.sweep}")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"ofmu-ray ui: warning: --host {args.host} serves every run, metric and artifact to the network, "
              "without authentication; use an SSH tunnel to 127.0.0.1 instead unless you mean it",
              file=sys.stderr)
    base = f"http://{args.host}:{args.port}"
    print(f"MLflow UI on {base} (Ctrl-C stops it)" + (f"; sweep {found[1]}: {sweep_address(*found, base=base)}"
                                                       if found else ""), file=sys.stderr, flush=True)
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0


def _add_dashboard(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dashboard", allow_abbrev=False,
                       help="serve optuna-dashboard on a sweep's Optuna studies (on 127.0.0.1): each method's "
                            "Pareto front, parallel coordinates, hyper-parameter importance and history")
    p.add_argument("--sweep", default=None, help="which sweep (default: the latest started in --sweeps-dir)")
    p.add_argument("--sweeps-dir", default="sweeps", help="where sweeps keep their configuration (as for sweep)")
    p.add_argument("--port", type=int, default=8080)


def _run_dashboard(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ofmu_ray.tune.config import load_config
    from ofmu_ray.tune.studies import STORAGE_FILE, storage_url, sweep_studies

    root = Path(args.sweeps_dir)
    if args.sweep and not SWEEP_NAME.fullmatch(args.sweep):
        raise UsageError(f"--sweep {args.sweep!r}: a sweep's name has letters, digits, '.', '_' and '-' only")
    started = sorted((p for p in root.glob("*") if (p / "sweep.json").is_file()),
                     key=lambda p: (p / "sweep.json").stat().st_mtime)
    if not args.sweep and not started:
        raise UsageError(f"no sweep in {root.resolve()} (--sweeps-dir)")
    sweep_dir = root / args.sweep if args.sweep else started[-1]
    cfg = load_config(sweep_dir)
    if not cfg.optuna_storage and not (sweep_dir / STORAGE_FILE).is_file():
        raise UsageError(f"sweep {sweep_dir.name} has no {STORAGE_FILE}: it ran before sweeps kept their "
                         "Optuna studies")
    url = storage_url(cfg.optuna_storage, sweep_dir)
    found = sweep_studies(url, sweep_dir.name)
    if not found:
        raise UsageError(f"sweep {sweep_dir.name}: no study of it in {url} yet")
    base = f"http://127.0.0.1:{args.port}"
    print(f"optuna-dashboard on {base} (Ctrl-C stops it); sweep {sweep_dir.name}:", file=sys.stderr)
    for study_id, name, done in found:
        print(f"  {name}: {done} trials  {base}/dashboard/studies/{study_id}", file=sys.stderr, flush=True)
    from optuna_dashboard import run_server

    run_server(url, host="127.0.0.1", port=args.port)  # loopback only: the dashboard has no authentication
    return 0


COMMANDS = {"prepare": (_add_prepare, _run_prepare), "methods": (_add_methods, _run_methods),
            "eval": (_add_eval, _run_eval), "unlearn": (_add_unlearn, _run_unlearn),
            "sweep": (_add_sweep, _run_sweep), "ablate": (_add_ablate, _run_ablate),
            "pareto": (_add_pareto, _run_pareto), "ui": (_add_ui, _run_ui),
            "demo": (_add_demo, _run_demo), "dashboard": (_add_dashboard, _run_dashboard)}


def build_parser() -> argparse.ArgumentParser:
    """Every command's parser; imports nothing heavy (torch, Ray, MLflow), so `--help` answers at once."""
    parser = argparse.ArgumentParser(
        prog="ofmu-ray", allow_abbrev=False,
        description="Benchmark machine-unlearning methods (OFMU and baselines) with Ray, Optuna and MLflow.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for add, _ in COMMANDS.values():
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one `ofmu-ray` command; returns the exit status (2 for bad arguments, data or caches)."""
    args = build_parser().parse_args(argv)
    if getattr(args, "split", "") is None:
        args.split = FAMILIES[args.bench].default_splits[args.bench]
    try:
        return COMMANDS[args.command][1](args)
    except UserError as e:
        print(f"ofmu-ray {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
