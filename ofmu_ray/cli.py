"""The `ofmu-ray` command. Each subcommand is a `_add_<name>` parser and a `_run_<name>` body.

Heavy imports (torch, transformers) live inside the bodies so that `--help` answers at once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence

DEMO_TRIALS, DEMO_STEPS = 6, 20  # sized so that `ofmu-ray demo` ends in under 30 minutes on 2 CPU cores


def _add_bench_args(p: argparse.ArgumentParser, split: bool = True, run: bool = True) -> None:
    """The options every command that works on a benchmark shares: which data, which models."""
    from ofmu_ray.config import MODELS, PROFILES
    from ofmu_ray.models.prompt import PROMPTS
    from ofmu_ray.prepare import BENCHES

    p.add_argument("--bench", default="synth-tofu", choices=BENCHES,
                   help="synth-tofu: generated, models trained here; tofu: your data and models (--data, --model); "
                        "synth-wmdp (generated), wmdp (--data, --model): hazardous-knowledge removal scored by "
                        "four-choice accuracy; digits (embedded), cifar10, cifar100 (--data-dir): image classification")
    p.add_argument("--profile", default="tiny", choices=list(PROFILES),
                   help="synth-tofu: tiny ~20 authors (tests); small 60 (demo); full 200 (TOFU's size); "
                        "synth-wmdp: 4, 8 or 24 compounds and as many towns")
    p.add_argument("--model", default=None,
                   help=f"synth-tofu, synth-wmdp: an embedded model ({', '.join(MODELS)}; default: the profile's); "
                        "tofu: the TOFU-finetuned target, wmdp: the model to unlearn (a hub id or a folder)")
    if split:
        p.add_argument("--split", default=None, help="forget split: forget01, forget05 or forget10 (default); images: "
                       "random (default: a random 10 %% of the training images) or classK (all of class K); "
                       "wmdp: the topic, bio (default), cyber or chem (synth-wmdp: hazard)")
    p.add_argument("--data", "--data-dir", dest="data", default=None,
                   help="tofu: hf:locuslab/TOFU or a folder of TOFU-schema files; wmdp: hf:cais/wmdp or a folder "
                        "(see README); cifar10/100: the folder of the binary archive")
    p.add_argument("--oracle", default=None, help="tofu: the retain model of --split (hub id or folder)")
    p.add_argument("--retain-logs", default=None,
                   help="an OpenUnlearning TOFU_EVAL.json of the retain model, instead of the oracle")
    p.add_argument("--prompt", default="auto", choices=["auto", *PROMPTS],
                   help="tofu: the prompt format the models were fine-tuned with (auto: the tokenizer's chat "
                        "template if it has one, else plain 'Question: ... Answer:'; OpenUnlearning's TOFU "
                        "models: llama3 or llama2)")
    if run:
        p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "bf16-mixed"],
                       help="the models' weights: fp32, bf16, or fp32 with the unlearning passes under bf16 "
                            "autocast (bf16-mixed; GPUs with bf16 units)")
    p.add_argument("--cache-dir", default=None,
                   help="where prepared benchmarks live (default: $OFMU_RAY_CACHE or ~/.cache/ofmu-ray); "
                        "what the cache lacks is prepared first")


def _tofu_only(args: argparse.Namespace) -> None:
    """Options that only mean something for --bench tofu are an error elsewhere (eval keeps --retain-logs:
    a published retain log can stand in for a synth-tofu oracle too)."""
    from ofmu_ray.prepare import UsageError

    given = [o for o, v in (("--data", args.data and args.bench not in ("wmdp", "cifar10", "cifar100")),
                            ("--oracle", args.oracle), ("--prompt", args.prompt != "auto"),
                            ("--retain-logs", args.retain_logs and (args.command != "eval" or _family(args) != "tofu")))
             if v]
    if args.bench != "tofu" and given:
        raise UsageError(f"{', '.join(given)}: for --bench tofu; {args.bench} trains its own models")


def _family(args: argparse.Namespace) -> str:
    from ofmu_ray.data import family

    return family(args.bench)


def _is_image(args: argparse.Namespace) -> bool:
    return _family(args) == "image"


def _prepared(args: argparse.Namespace):
    """The benchmark the arguments name, prepared (synth-tofu and images: trained if the cache lacks it)."""
    from ofmu_ray.prepare import UsageError
    from ofmu_ray.prepare_bench import prepare_bench

    _tofu_only(args)
    if _is_image(args) and args.model:
        raise UsageError(f"--model: {args.bench} trains its own classifier (see README, image classification)")
    return prepare_bench(args.bench, args.split, args.profile, args.model, args.data, args.oracle, args.retain_logs,
                         args.prompt, args.cache_dir)


def _add_prepare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare", allow_abbrev=False,
                       help="generate a benchmark and train its target and retain-oracle models "
                            "(tofu: read your data and check your models)")
    _add_bench_args(p, run=False)
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")


def _print_report(report: dict) -> None:
    acc, chance = report["accuracy"], report["chance"]
    print(f"{report['bench']} / {report['profile']} / {report['model']}: prepared in {report['seconds']} s "
          f"(oracle = retain model of {report['oracle_split']})")
    print(f"{'split':<14}{'target':>8}{'oracle':>8}{'chance':>8}")
    for split in chance:
        print(f"{split:<14}{acc['target'][split]:>8.3f}{acc['oracle'][split]:>8.3f}{chance[split]:>8.3f}")


def _run_prepare(args: argparse.Namespace) -> int:
    if args.bench == "tofu" and args.model is None:
        return _check_tofu_data(args)
    prepared = _prepared(args)
    report = prepared.report
    if args.json:
        print(json.dumps(report, indent=2))
    elif args.bench == "tofu":
        print(f"tofu: {report['model']} (oracle {report['oracle']}, prompt {report['prompt']}), "
              f"{len(report['splits'])} splits from {report['data']}")
        print(f"cached in {prepared.root}")
    elif _is_image(args):
        print(f"{report['bench']} / {report['split']} ({report['model']}): prepared in {report['seconds']} s; "
              f"{', '.join(f'{k} {v}' for k, v in report['sizes'].items())} images")
        print(f"{'model':<8}" + "".join(f"{k:>14}" for k in report["metrics"]["target"]))
        for name, metrics in report["metrics"].items():
            print(f"{name:<8}" + "".join(f"{v:>14.2f}" for v in metrics.values()))
        print(f"cached in {prepared.root}")
    elif _family(args) == "mcq":
        _print_mcq_report(report)
        print(f"cached in {prepared.root}")
    else:
        _print_report(report)
        print(f"cached in {prepared.root}")
    return 0


def _print_mcq_report(report: dict) -> None:
    sizes = ", ".join(f"{k} {v}" for k, v in report["sizes"].items())
    print(f"{report['bench']} / {report['split']} / {report['model']}: prepared in {report['seconds']} s ({sizes})")
    print(f"{'model':<8}{'forget_acc':>12}{'utility_acc':>13}")
    for name, acc in report["metrics"].items():
        print(f"{name:<8}{acc['forget_acc']:>12.3f}{acc['utility_acc']:>13.3f}")
    print(f"chance: {report['reference_forget_acc']:.3f} (the forget_acc a method is measured against)")


def _check_tofu_data(args: argparse.Namespace) -> int:
    """Real TOFU data alone (no --model yet): read and summarise it."""
    from ofmu_ray.data import load_tofu
    from ofmu_ray.prepare import UsageError

    if args.data is None:
        raise UsageError("--bench tofu needs --data hf:locuslab/TOFU or --data DIR")
    data = load_tofu(args.data)
    sizes = {name: len(data[name]) for name in data}
    if args.json:
        print(json.dumps({"bench": "tofu", "data": args.data, "splits": sizes}, indent=2))
    else:
        print(f"tofu data from {args.data}: " + ", ".join(f"{n} ({k} rows)" for n, k in sizes.items()))
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

    from ofmu_ray.eval.run import evaluate, write_json

    prepared = _prepared(args)
    out = Path(args.out or Path("evals") / f"{Path(args.evaluate).name}-{args.split}")
    if _is_image(args):
        from ofmu_ray.eval.vision import evaluate_prepared

        summary = evaluate_prepared(prepared, args.evaluate)
        write_json(out / "VISION_SUMMARY.json", summary)
        _print_metrics(summary, args.json, f"written to {out / 'VISION_SUMMARY.json'}")
        return 0
    if _family(args) == "mcq":
        from ofmu_ray.eval.mcq import evaluate_prepared_mcq

        summary, result = evaluate_prepared_mcq(prepared, args.evaluate, args.dtype)
        write_json(out / "MCQ_EVAL.json", result)
        write_json(out / "MCQ_SUMMARY.json", summary)
        _print_metrics(summary, args.json, f"per-question picks: {out / 'MCQ_EVAL.json'}")
        return 0
    summary, result = evaluate(prepared, args.split, args.evaluate, args.retain_logs, args.dtype)
    write_json(out / "TOFU_EVAL.json", result)
    write_json(out / "TOFU_SUMMARY.json", summary)
    _print_metrics(summary, args.json, f"per-question results: {out / 'TOFU_EVAL.json'}")
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
    p.add_argument("--steps", type=int, default=None,
                   help="forget batches, the same budget for every method (default: 20; WMDP-style: 80)")
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
    from ofmu_ray.prepare import UsageError

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
    from ofmu_ray.train.distributed import BEST_METRICS

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
    p.add_argument("--keep-best", default="", choices=["", *BEST_METRICS],
                   help="with --eval-every: also keep the evaluated model that maximises this metric")
    p.add_argument("--out", default=None, help="where checkpoints go (default: a new folder under runs/)")
    p.add_argument("--json", action="store_true", help="print the final metrics as JSON on stdout")


def _parse_sets(pairs: list[str]) -> dict[str, str]:
    from ofmu_ray.prepare import UsageError

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"expected KEY=VALUE, got {pair!r}")
        out[key] = value
    return out


def _run_unlearn(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from ofmu_ray.data import modality, unlearning_splits
    from ofmu_ray.methods import build_config, check_applies
    from ofmu_ray.prepare import UsageError
    from ofmu_ray.train.distributed import RunSpec

    overrides, lora = _parse_sets(args.set), _lora(args)
    try:
        cfg = build_config(args.method, overrides)  # fail before anything starts
        check_applies([args.method], modality(args.bench), args.bench)
    except ValueError as e:
        raise UsageError(str(e)) from e
    if args.steps < 1 or args.workers < 1 or args.batch_size % args.workers or min(
            args.checkpoint_every, args.max_failures) < 0:
        raise UsageError(f"need steps >= 1, workers >= 1, batch size ({args.batch_size}) divisible by "
                         f"workers ({args.workers}), checkpoint-every and max-failures >= 0")
    if args.keep_best and not args.eval_every:
        raise UsageError("--keep-best needs --eval-every N")
    args.tracking_uri = _store(args)
    prepared = _prepared(args)

    from ofmu_ray.eval.run import references
    from ofmu_ray.tracking import log_run
    from ofmu_ray.train.distributed import on_ray_train, run

    if _family(args) == "tofu":  # checks the split, and caches the references once, not in a worker
        references(prepared, args.split, prepared.data(), None, args.dtype)
    spec = RunSpec(prepared.model_dir("target"), str(prepared.root / "data"),
                   *unlearning_splits(args.bench, args.split), args.method, overrides, args.steps,
                   args.batch_size, args.seed, str(prepared.root), args.eval_every, args.checkpoint_every,
                   args.keep_best, lora, args.lora_save, prepared.prompt, args.dtype, args.bench)
    if on_ray_train(args.workers, args.max_failures):
        from ofmu_ray.tune.sweep import start_ray

        start_ray()
    out = Path(args.out or Path("runs") / f"{args.method}-{args.split}-{time.strftime('%Y%m%d-%H%M%S')}")
    metrics, model_dir = run(spec, args.workers, _cpus(args), args.gpus_per_worker, out,
                             max_failures=args.max_failures)
    history = json.loads((model_dir / "history.json").read_text())
    params = {f"method.{f['name']}": getattr(cfg, f["name"]) for f in type(cfg).describe()}
    params |= {"steps": args.steps, "batch_size": args.batch_size, "seed": args.seed, "dtype": args.dtype}
    params |= {f"lora.{k}": v for k, v in lora.items()}
    tags = {"bench": args.bench, "profile": args.profile, "split": args.split, "model": prepared.model,
            "method": args.method, "world_size": str(args.workers), "model_dir": str(model_dir),
            "ofmu.kind": "run"}
    run_id = log_run(f"{args.bench}/{args.split}", args.method, params, metrics, tags, args.tracking_uri,
                     history, model_dir)
    if args.json:
        metrics |= {"mlflow_run_id": run_id, "model_dir": str(model_dir)}
    _print_metrics(metrics, args.json, f"unlearned model: {model_dir}\nMLflow run {run_id}")
    return 0


def _add_sweep(sub: argparse._SubParsersAction) -> None:
    from ofmu_ray.methods import METHODS
    from ofmu_ray.tune.sweep import SAMPLERS

    p = sub.add_parser("sweep", allow_abbrev=False,
                       help="Ray Tune + Optuna search of each method's space on two objectives "
                            "(TOFU: log10 FQ and MU); Pareto fronts in MLflow")
    _add_bench_args(p)
    p.add_argument("--methods", default=None,
                   help=f"comma-separated, of {', '.join(METHODS)} (default: the six of TOFU; WMDP-style: rmu, "
                        "npo, simnpo, graddiff, ofmu; images: gradascent, graddiff, ofmu, ft, rl)")
    p.add_argument("--objectives", default=None, metavar="X,Y",
                   help="the two maximised metrics (default: log10_forget_quality,model_utility; WMDP-style: "
                        "forget_closeness,utility_acc, or forget_error for 1 - forget_acc; images: "
                        "oracle_closeness,ta, or two of oracle_closeness, ta, ra, ua, mia_efficacy)")
    p.add_argument("--models", default=None,
                   help="comma-separated: sweep each model with the same budget (instead of --model; with "
                        "--bench tofu, --oracle or --retain-logs lists one per model, in the same order)")
    p.add_argument("--trials", type=int, default=8, help="per method, its default configuration included")
    _add_run_args(p)
    p.add_argument("--concurrency", type=int, default=0, help="trials at once (0: as many as the CPUs hold)")
    p.add_argument("--seeds", type=int, default=0,
                   help="re-run each method's front configurations with K new seeds (mean and std)")
    p.add_argument("--sampler", default="tpe", choices=SAMPLERS, help="Optuna's multi-objective sampler")
    p.add_argument("--sampler-seed", type=int, default=0)
    p.add_argument("--space", action="append", default=[], metavar="METHOD=FILE",
                   help="search METHOD's space from your own YAML file (see tune_spaces/); repeatable")
    p.add_argument("--sweeps-dir", default="sweeps", help="where sweeps keep their configuration (sweep.json)")
    p.add_argument("--storage-path", default="", help="where trials keep their state and checkpoints: on a "
                   "cluster a folder every node sees (NFS, EFS); default: the sweep's folder in --sweeps-dir")
    p.add_argument("--name", default=None, help="the sweep's name (default: bench-profile-split-time)")
    p.add_argument("--resume", action="store_true",
                   help="finish an interrupted sweep (--name, or the latest in --sweeps-dir) as it was started")
    p.add_argument("--address", default=None, help="a Ray cluster to join (default: start Ray here)")
    p.add_argument("--json", action="store_true", help="print the fronts as JSON on stdout")


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(m.strip() for m in (text or "").split(",") if m.strip())


def _sweep_config(args: argparse.Namespace):
    from ofmu_ray.prepare import UsageError
    from ofmu_ray.tune.sweep import SweepConfig

    if args.models and args.model:
        raise UsageError("--model or --models, not both")
    _tofu_only(args)
    from ofmu_ray.methods import default_methods

    methods = _names(args.methods) or default_methods(_family(args))
    return SweepConfig(args.bench, args.profile, args.split, methods, args.trials, args.steps,
                       args.batch_size, args.workers, _cpus(args), args.gpus_per_worker, args.concurrency, args.seeds,
                       args.sampler, args.sampler_seed, _parse_sets(args.space), _lora(args), args.lora_save,
                       _names(args.models or args.model), args.data, _names(args.oracle), _names(args.retain_logs),
                       args.prompt, args.dtype, _names(args.objectives), args.storage_path, args.checkpoint_every,
                       args.max_failures)


def _run_sweep(args: argparse.Namespace) -> int:
    import re
    from pathlib import Path

    from ofmu_ray.prepare import UsageError
    from ofmu_ray.tune.sweep import load_config, new_name

    root = Path(args.sweeps_dir)
    if args.name and not re.fullmatch(r"[\w.-]+", args.name):  # it becomes a folder name and an MLflow tag
        raise UsageError(f"--name {args.name!r}: use letters, digits, '.', '_' and '-' only")
    if args.resume:
        names = [args.name] if args.name else sorted(p.name for p in root.glob("*") if (p / "sweep.json").is_file())
        if not names:
            raise UsageError(f"--resume: no sweep in {root.resolve()}")
        sweep_dir = root / names[-1]
        cfg = load_config(sweep_dir)
        print(f"resuming sweep {sweep_dir.name} ({', '.join(cfg.methods)}; {cfg.trials} trials each)", file=sys.stderr)
    else:
        cfg = _sweep_config(args)
        sweep_dir = root / (args.name or new_name(cfg))
        if sweep_dir.exists():
            raise UsageError(f"sweep {sweep_dir} exists; --resume it or choose another --name")
    return _sweep(cfg, sweep_dir, args)


def _store(args: argparse.Namespace) -> str:
    """The MLflow store of `--tracking-uri`, checked to open before anything runs."""
    from ofmu_ray.prepare import UsageError
    from ofmu_ray.tracking.mlflow_log import open_store

    try:
        return open_store(args.tracking_uri)
    except ValueError as e:
        raise UsageError(str(e)) from e


def _sweep(cfg, sweep_dir, args: argparse.Namespace) -> int:
    from ofmu_ray.tune.sweep import SweepInterrupted, check_address, load_spaces, prepare_models, run_sweep

    load_spaces(cfg)  # a bad space file: before the store is opened (and created)
    args.tracking_uri = _store(args)
    if args.address:  # before anything is prepared or written
        check_address(args.address)
    prepared = prepare_models(cfg, args.cache_dir)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # Tune's progress table: stdout keeps the results alone
            result = run_sweep(cfg, prepared, sweep_dir, args.tracking_uri, args.resume, args.address)
    except SweepInterrupted as e:
        print(f"ofmu-ray: sweep interrupted: {e}", file=sys.stderr)
        return 130
    _print_fronts(result, args.json)
    return 0


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", allow_abbrev=False,
                       help="prepare the small benchmark, sweep all six methods on forget10, print the fronts")
    p.add_argument("--cache-dir", default=None, help="as for prepare")
    p.add_argument("--trials", type=int, default=DEMO_TRIALS, help="per method (the same for every method)")
    p.add_argument("--steps", type=int, default=DEMO_STEPS, help="forget batches per trial")
    _add_tracking_uri(p)
    p.add_argument("--json", action="store_true")


def _run_demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ofmu_ray.methods import TOFU_METHODS
    from ofmu_ray.tune.sweep import SweepConfig, new_name

    cfg = SweepConfig("synth-tofu", "small", "forget10", TOFU_METHODS, trials=args.trials, steps=args.steps)
    args.resume, args.address = False, None
    return _sweep(cfg, Path("sweeps") / ("demo-" + new_name(cfg)), args)


def _print_fronts(result: dict, as_json: bool) -> None:
    from urllib.parse import quote

    from ofmu_ray.tune.results import format_hypervolumes, format_seeds, format_table

    if as_json:
        print(json.dumps(result, indent=1))
        return
    for model, found in result["models"].items():
        print(f"=== model {model}")
        print(format_table(found["fronts"]))
        if found.get("seeds"):
            print("\nfront configurations re-run with new seeds (mean +- std):")
            print(format_seeds(found["seeds"], found["fronts"][""]["objectives"]))
        print()
    if result.get("hypervolumes"):
        print(format_hypervolumes(result["hypervolumes"]) + "\n")
    where = result["mlflow"]
    print(f"MLflow: experiment {where['experiment']}, sweep {where['sweep']} in {where['tracking_uri']}")
    # MLflow 3 opens on a GenAI overview: point at this sweep's runs instead
    runs = quote(f"tags.`ofmu.sweep` = '{where['sweep']}'")
    print("browse it: ofmu-ray ui" + ("" if where["tracking_uri"].endswith("/mlruns.db") else
                                       f" --tracking-uri {where['tracking_uri']}")
          + f"\nthen open http://127.0.0.1:5000/#/experiments/{where['experiment_id']}/runs?searchFilter={runs}")


def _add_pareto(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pareto", allow_abbrev=False, help="rebuild a sweep's fronts and hypervolumes from MLflow")
    _add_tracking_uri(p)
    p.add_argument("--experiment", required=True, help="e.g. synth-tofu/forget10")
    p.add_argument("--sweep", default=None, help="which sweep (default: the latest in the experiment)")
    p.add_argument("--json", action="store_true")


def _run_pareto(args: argparse.Namespace) -> int:
    from mlflow.tracking import MlflowClient

    from ofmu_ray.prepare import UsageError
    from ofmu_ray.tune.results import fronts_of, hypervolume_table, latest_sweep, seed_table, sweep_models

    uri = _store(args)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(args.experiment)
    if experiment is None:
        names = [e.name for e in client.search_experiments()]
        raise UsageError(f"no experiment {args.experiment!r} in {uri}; it has: {', '.join(names) or 'none'}")
    exp = experiment.experiment_id
    sweep = args.sweep or latest_sweep(client, exp)
    models = sweep_models(client, exp, sweep)
    result = {"models": {m: {"fronts": fronts_of(client, exp, sweep, model=m)[1],
                             "seeds": seed_table(client, exp, sweep, m)} for m in models},
              "mlflow": {"tracking_uri": uri, "experiment": args.experiment, "experiment_id": exp, "sweep": sweep}}
    if len(models) > 1:
        result["hypervolumes"] = hypervolume_table(client, exp, sweep, models)
    _print_fronts(result, args.json)
    return 0


def _add_ui(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ui", allow_abbrev=False, help="serve the MLflow UI of the store (on 127.0.0.1)")
    _add_tracking_uri(p)
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--host", default="127.0.0.1", help="the address to listen on; anything but 127.0.0.1 "
                   "exposes your runs to the network")


def _run_ui(args: argparse.Namespace) -> int:
    import subprocess
    from pathlib import Path

    from ofmu_ray.tracking.mlflow_log import ARTIFACT_DIR, resolve_uri

    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", resolve_uri(args.tracking_uri),
               "--default-artifact-root", Path(ARTIFACT_DIR).resolve().as_uri(),
               "--host", args.host, "--port", str(args.port)]
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"ofmu-ray ui: warning: --host {args.host} serves every run, metric and artifact to the network, "
              "without authentication; use an SSH tunnel to 127.0.0.1 instead unless you mean it",
              file=sys.stderr)
    print(f"MLflow UI on http://{args.host}:{args.port} (Ctrl-C stops it)", file=sys.stderr, flush=True)
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0


COMMANDS = {"prepare": (_add_prepare, _run_prepare), "methods": (_add_methods, _run_methods),
            "eval": (_add_eval, _run_eval), "unlearn": (_add_unlearn, _run_unlearn),
            "sweep": (_add_sweep, _run_sweep), "pareto": (_add_pareto, _run_pareto), "ui": (_add_ui, _run_ui),
            "demo": (_add_demo, _run_demo)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ofmu-ray", allow_abbrev=False,
        description="Benchmark machine-unlearning methods (OFMU and baselines) with Ray, Optuna and MLflow.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for add, _ in COMMANDS.values():
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one `ofmu-ray` command; returns the exit status (2 for bad arguments)."""
    from ofmu_ray.data import DataError, default_split, default_steps
    from ofmu_ray.prepare import UsageError

    args = build_parser().parse_args(argv)
    if getattr(args, "split", "") is None:
        args.split = default_split(args.bench)
    if getattr(args, "steps", "") is None:
        args.steps = default_steps(args.bench)
    try:
        return COMMANDS[args.command][1](args)
    except (UsageError, DataError) as e:
        print(f"ofmu-ray {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
