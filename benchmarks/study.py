"""The OFMU-vs-baselines study: equal-budget sweeps of the OFMU paper's six methods (or `--methods`),
seed re-runs of every front, OFMU's ablations, and the report `benchmarks/RESULTS.md`, regenerated
from the MLflow store.

    python benchmarks/study.py                  # the issue's budget: small, forget01/05/10, 2 models
    python benchmarks/study.py --splits forget10 --models tiny-llama-2l --trials 4 --seeds 2
    python benchmarks/study.py --report-only    # RESULTS.md again from the store, nothing run

What it runs, all logged to one MLflow store (`--tracking-uri`, default `benchmarks/study.db`):
- per forget split, one `ofmu-ray sweep` over `--models` of the methods with the same
  trials and steps each, and `--seeds` re-runs of every front configuration (experiment
  `synth-tofu/<split>`, sweep `<name>-<split>`); an interrupted study resumes its sweeps;
- OFMU's ablations on the first model and the last split, one `ofmu-ray ablate` per axis
  (decorrelation, Hessian option, T, beta) from `--ablation-base`, over `--ablation-steps` forget
  batches: by default `--ablation-mode tuned`, each variant its own search of `--ablation-trials`
  trials, because a variant held at one base is measured at that base's step sizes, not at its own
  (held: `--ablation-seeds` runs each at the base). Experiments `ablate/<name>-<axis>`; a
  started ablation is resumed (a finished one runs no trial again);
- `benchmarks/method_cost.py`: each method's time per update relative to gradient ascent.

Every number in the report is read back from the store (the cost ratios from method_cost's JSON,
kept beside the report), and the report names the command that wrote it.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ABLATIONS = {  # axis -> the values each ablation compares
             "decorrelation": ("signed", "squared", "abs", "none"),
             "hessian": ("exact", "no_third", "forget_only", "finite_diff", "finite_diff_forget"),
             "inner_steps": (1, 3, 5, 10), "beta": (0.0, 0.25, 1.0, 4.0)}
SPLIT_KEYS = ("", "/paraphrase", "/multihop", "/crosslingual")


def run_sweeps(args: argparse.Namespace) -> None:
    from ofmu_ray.cli import main

    for split in args.splits:
        name = f"{args.name}-{split}"
        resume = (Path(args.sweeps_dir) / name / "sweep.json").is_file()
        argv = ["sweep", "--bench", "synth-tofu", "--profile", args.profile, "--split", split,
                "--models", ",".join(args.models), "--methods", ",".join(args.methods), "--trials", str(args.trials),
                *(["--steps", str(args.steps)] if args.steps else ["--epochs", str(args.epochs)]),
                "--seeds", str(args.seeds), "--tracking-uri", args.tracking_uri,
                "--utility-floor", str(args.utility_floor),
                *(["--attacks", args.attacks] if args.attacks != "none" else []),
                "--sweeps-dir", args.sweeps_dir, "--name", name, *(["--cache-dir", args.cache_dir] if args.cache_dir
                                                                   else []), *(["--resume"] if resume else [])]
        if main(argv) != 0:
            raise SystemExit(f"the sweep of {split} failed: ofmu-ray {' '.join(argv)}")


def run_ablations(args: argparse.Namespace) -> None:
    """One `ofmu-ray ablate` per axis, on the first model and the last split; a started one is resumed."""
    from ofmu_ray.cli import main
    from ofmu_ray.tune.ablate import ABLATION_FILE

    for axis in args.ablations:
        name = f"{args.name}-{axis}"
        folder = Path(args.ablations_dir) / name
        budget = (["--trials", str(args.ablation_trials)] if args.ablation_mode == "tuned"
                  else ["--seeds", str(args.ablation_seeds)])
        argv = ["ablate", "--bench", "synth-tofu", "--profile", args.profile, "--model", args.models[0],
                "--split", args.splits[-1], "--method", "ofmu", "--axis", axis,
                "--values", ",".join(map(str, ABLATIONS[axis])), "--mode", args.ablation_mode, *budget,
                "--base", *args.base, *(["--steps", str(args.ablation_steps)] if args.ablation_steps else
                                        ["--epochs", str(args.epochs)]), "--tracking-uri", args.tracking_uri,
                "--utility-floor", str(args.utility_floor), "--ablations-dir", args.ablations_dir, "--name", name,
                *(["--cache-dir", args.cache_dir] if args.cache_dir else []),
                *(["--resume"] if (folder / ABLATION_FILE).is_file() else [])]
        if main(argv) != 0:  # resuming a finished ablation runs no trial again
            raise SystemExit(f"the ablation of {axis} failed: ofmu-ray {' '.join(argv)}")


def measure_cost(results: Path) -> dict:
    out = subprocess.run([sys.executable, str(HERE / "method_cost.py"), "--json"], capture_output=True, text=True,
                         check=True)
    cost = json.loads(out.stdout)
    (results / "method_cost.json").write_text(json.dumps(cost, indent=1))
    return cost


def _metric(runs: list, name: str) -> list[float]:
    return [r.data.metrics.get(name, math.nan) for r in runs]


def _mean_std(values: list[float]) -> str:
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return "-"
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.3g} ± {spread:.2g}"


def _dimensions(params: dict) -> str:
    """A method's searched dimensions, as its parent run's `space.*` params hold them, and the
    settings its space held fixed (`{fixed: value}`, logged as `fixed[value]`)."""
    from ofmu_ray.tune.spaces import FIXED

    space = {k[len("space."):]: v for k, v in params.items() if k.startswith("space.")}
    searched = [k for k, v in space.items() if not v.startswith(FIXED)]
    held = [f"{k}={ast.literal_eval(v[len(FIXED):])[0]}" for k, v in space.items() if v.startswith(FIXED)]
    return f"{len(searched)} ({', '.join(searched)}" + (f"; held: {', '.join(held)})" if held else ")")


def _budget(client, experiment: str, sweep: str) -> str:
    """What each method of the sweep had to search with, read from its parent runs."""
    from ofmu_ray.tracking.mlflow_log import find_runs

    parents = {r.data.tags["method"]: r.data.params for r in sorted(
        find_runs(client, experiment, ofmu__sweep=sweep, ofmu__kind="method"), key=lambda r: r.info.start_time)}
    budgets = {m: (p["trials"], p["steps"], p["batch_size"]) for m, p in parents.items()}
    spaces = ", ".join(f"{m} {_dimensions(p)}" for m, p in parents.items())
    if len(set(budgets.values())) == 1:
        trials, steps, batch = next(iter(budgets.values()))
        said = (f"Equal budget: every method had {trials} trials (its defaults first) of {steps} forget batches "
                f"of {batch}")
    else:
        said = "Budgets (trials, forget batches, batch size): " + ", ".join(f"{m} {b}" for m, b in budgets.items())
    return f"{said}. Dimensions each searched: {spaces}."


def _sweep_section(client, split: str, sweep: str, lines: list[str], results: Path) -> dict:
    """The sweep's tables and plots; returns {(model, split key): {method: hypervolume}}."""
    from ofmu_ray.tracking.mlflow_log import find_runs
    from ofmu_ray.tracking.plots import plot_png
    from ofmu_ray.tune.results import fronts_of, seed_table, sweep_models

    experiment = client.get_experiment_by_name(f"synth-tofu/{split}").experiment_id
    short = [r.info.run_name for r in find_runs(client, experiment, ofmu__sweep=sweep, ofmu__kind="trial")
             if r.data.tags.get("ofmu.short_budget") and not r.data.tags.get("ofmu.diverged")]
    if short:  # a trial that stopped early is not a point at the budget every other method had
        raise SystemExit(f"sweep {sweep}: {len(short)} trial(s) consumed fewer forget batches than the budget "
                         f"({', '.join(short[:5])}); an equal-budget study cannot use them")
    models = sweep_models(client, experiment, sweep)
    table: dict = {key: {} for key in SPLIT_KEYS}  # the hypervolume above the KS floor, per model
    for model in models:
        for key, summary in fronts_of(client, experiment, sweep, model=model)[1].items():
            for method, entry in summary["methods"].items():
                if method != "all" and key in table:
                    table[key].setdefault(method, {})[model] = entry["hypervolume_floor"]
    methods = list(table[""])
    lines += [f"## {split} (sweep `{sweep}`)", "", _budget(client, experiment, sweep), "",
              "Hypervolume of each method's front (log10 FQ x MU; higher is better), on the forget split and on each "
              "hard in-scope split:", "",
              "| method | " + " | ".join(f"{m} {k.lstrip('/') or 'forget'}" for m in models for k in SPLIT_KEYS) + " |",
              "|---|" + "---:|" * (len(models) * len(SPLIT_KEYS))]
    for method in methods:
        lines.append(f"| {method} | " + " | ".join(f"{table[k][method][m]:.3f}" for m in models for k in SPLIT_KEYS)
                     + " |")
    verdicts = {(m, k): {method: table[k][method][m] for method in methods} for m in models for k in SPLIT_KEYS}
    for model in models:
        runs, fronts = fronts_of(client, experiment, sweep, model=model)
        x, y = fronts[""]["objectives"]
        trials = {m: [(r.data.metrics.get(x, math.nan), r.data.metrics.get(y, math.nan)) for r in rs]
                  for m, rs in runs.items()}
        plot = plot_png(trials, fronts[""], f"{model}, synth-tofu {split}", results / f"front_{split}_{model}.png")
        lines += ["", f"### {model}", "", f"![fronts]({plot.relative_to(results.parent)})", "",
                  "| method | trials | front (log10 FQ, MU) | hypervolume at equal compute (trials) | "
                  "grad evals/run | FQ variance across hard splits | MU degradation | unlearning s/run | s/update |",
                  "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
        for method, rs in runs.items():
            per_update = [r.data.metrics["unlearn_seconds"] / r.data.metrics["step"] for r in rs
                          if "unlearn_seconds" in r.data.metrics]
            entry = fronts[""]["methods"][method]
            points = ", ".join(f"({a:.2f}, {b:.3f})" for a, b in entry["points"])
            lines.append(f"| {method} | {len(rs)} | {points} | {entry['hypervolume_floor_equal_compute']:.3f} "
                         f"({entry['trials_equal_compute']}) | {_mean_std(_metric(rs, 'grad_evals'))} | "
                         f"{_mean_std(_metric(rs, 'fq_variance'))} | "
                         f"{_mean_std(_metric(rs, 'mu_degradation'))} | {_mean_std(_metric(rs, 'unlearn_seconds'))} | "
                         f"{_mean_std(per_update)} |")
        seeds = seed_table(client, experiment, sweep, model)
        if seeds:
            lines += ["", "Front configurations re-run with new seeds (mean ± std):", "",
                      f"| method | trial | seeds | {x} | {y} |", "|---|---:|---:|---:|---:|"]
            for row in seeds:
                lines.append(f"| {row['method']} | {row['source_trial']} | {row['seeds']} | "
                             f"{row[f'{x}_mean']:.2f} ± {row[f'{x}_std']:.2f} | "
                             f"{row[f'{y}_mean']:.3f} ± {row[f'{y}_std']:.3f} |")
    lines.append("")
    return verdicts


def _ablation_section(client, args: argparse.Namespace, lines: list[str]) -> None:
    """Each axis's ablation as its comparison run holds it: the summary's tables (computed from the
    ablation's trial runs when it ended) and its main plot, copied beside the report."""
    import shutil

    from ofmu_ray.tracking.mlflow_log import find_runs
    from ofmu_ray.tune.ablate import markdown

    found = []
    for axis in ABLATIONS:
        experiment = client.get_experiment_by_name(f"ablate/{args.name}-{axis}")
        runs = find_runs(client, experiment.experiment_id, ofmu__kind="comparison") if experiment else []
        if runs and runs[0].info.status == "FINISHED":
            found.append((axis, runs[0]))
    if not found:
        return
    lines += ["## OFMU ablations", "", f"One `ofmu-ray ablate` per axis on {args.models[0]} {args.splits[-1]} "
              "(experiments `ablate/<name>`; each comparison run's page holds these tables and the plots).", ""]
    with tempfile.TemporaryDirectory() as tmp:
        for axis, run in found:
            summary = json.loads(Path(client.download_artifacts(run.info.run_id, "ablation/summary.json",
                                                                tmp)).read_text())
            plot = "effects.png" if summary["mode"] == "held" else "headline.png"
            shutil.copyfile(client.download_artifacts(run.info.run_id, f"ablation/{plot}", tmp),
                            args.results / f"ablation_{axis}.png")
            lines += ["#" + line if line.startswith("#") else line for line in markdown(summary).splitlines()]
            lines += [f"![{axis}](results/ablation_{axis}.png)", ""]


def _verdict_section(verdicts: dict, lines: list[str]) -> None:
    lines += ["## Did OFMU beat each baseline?", "",
              "Counted over every (split, model, forget or hard split) front: OFMU's hypervolume against each "
              "baseline's.", "", "| baseline | OFMU higher | OFMU lower | where OFMU is lower |", "|---|---:|---:|---|"]
    baselines = sorted({m for v in verdicts.values() for m in v} - {"ofmu"})
    for baseline in baselines:
        wins, losses = [], []
        for (split, model, key), hv in verdicts.items():
            if "ofmu" in hv and baseline in hv:
                (wins if hv["ofmu"] > hv[baseline] else losses).append(f"{split} {model} {key.lstrip('/') or 'forget'}")
        lines.append(f"| {baseline} | {len(wins)} | {len(losses)} | {', '.join(losses) or '-'} |")
    lines.append("")


def write_report(args: argparse.Namespace, command: str) -> Path:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(args.tracking_uri)
    ran_file = args.results / "study.json"  # absent when the store was written by plain sweeps
    ran = json.loads(ran_file.read_text())["command"] if ran_file.exists() else command
    made = f"`{ran}`" if ran == command else f"`{ran}` (runs) and `{command}` (this report)"
    lines = ["# The OFMU-vs-baselines study", "",
             f"Made by {made} from the MLflow store `{args.tracking_uri}`: every number below is read back from "
             "its runs (cost ratios from `results/method_cost.json`). Do not edit: run it again.", ""]
    verdicts: dict = {}
    for split in args.splits:
        for (model, key), hv in _sweep_section(client, split, f"{args.name}-{split}", lines, args.results).items():
            verdicts[(split, model, key)] = hv
    _verdict_section(verdicts, lines)
    _ablation_section(client, args, lines)
    cost_file = args.results / "method_cost.json"
    if cost_file.exists():
        cost = json.loads(cost_file.read_text())
        lines += ["## Cost per update", "", "`benchmarks/method_cost.py` on the tiny target, batch "
                  f"{cost['batch_size']}: seconds per forget batch relative to gradient ascent.", "",
                  "| method | x gradascent |", "|---|---:|"]
        lines += [f"| {m} | {v:.2f} |" for m, v in cost["ratio_to_gradascent"].items()]
        lines.append("")
    out = Path(args.out)
    out.write_text("\n".join(lines))
    return out


def main(argv: list[str] | None = None) -> int:
    from ofmu_ray.tune.config import ABLATION_MODES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--profile", default="small")
    parser.add_argument("--splits", default="forget01,forget05,forget10")
    parser.add_argument("--models", default="tiny-llama-2l,tiny-llama-4l")
    parser.add_argument("--methods", default=None, help="any registered text methods, comma-separated (default: the "
                        "six of the OFMU paper's comparison)")
    parser.add_argument("--utility-floor", type=float, default=0.9, metavar="TAU",
                        help="the headline counts the trials keeping TAU x the target's utility")
    parser.add_argument("--trials", type=int, default=8, help="per method and model, the default included")
    parser.add_argument("--epochs", type=float, default=10, help="passes over the forget split per run, every method")
    parser.add_argument("--steps", type=int, default=None, help="or forget batches per run (instead of --epochs)")
    parser.add_argument("--seeds", type=int, default=3, help="new seeds for each front configuration")
    parser.add_argument("--attacks", default="relearn,benign,quant4",
                        help="as sweep's --attacks, on every trial: robust fronts beside the standard ones (none: off)")
    parser.add_argument("--ablations", default=",".join(ABLATIONS), help=f"OFMU's axes, of {', '.join(ABLATIONS)}")
    parser.add_argument("--ablation-mode", default="tuned", choices=ABLATION_MODES,
                        help="tuned: each variant its own search (the fair comparison); held: all at the base")
    parser.add_argument("--ablation-trials", type=int, default=None, help="tuned: per variant (default: --trials)")
    parser.add_argument("--ablation-seeds", type=int, default=3, help="held: runs per variant")
    parser.add_argument("--ablation-steps", type=int, default=None,
                        help="forget batches of every ablation run (default: the sweeps' budget, --steps or --epochs)")
    parser.add_argument("--ablation-base", default="defaults",
                        help="defaults, sweep:NAME or KEY=VALUE,...: the configuration each axis varies from")
    parser.add_argument("--ablations-dir", default=str(HERE / "ablations"))
    parser.add_argument("--name", default="study", help="prefix of the sweeps' and the ablations' names")
    parser.add_argument("--tracking-uri", default=f"sqlite:///{HERE / 'study.db'}")
    parser.add_argument("--sweeps-dir", default=str(HERE / "sweeps"))
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--report-only", action="store_true", help="only regenerate the report from the store")
    args = parser.parse_args(argv)
    args.splits, args.models, args.ablations = args.splits.split(","), args.models.split(","), args.ablations.split(",")
    from ofmu_ray.families import FAMILIES
    from ofmu_ray.methods import METHODS

    args.methods = args.methods.split(",") if args.methods else list(FAMILIES["synth-tofu"].default_methods)
    if set(args.methods) - set(METHODS):
        parser.error(f"--methods: unknown {', '.join(sorted(set(args.methods) - set(METHODS)))}; choose from "
                     f"{', '.join(METHODS)}")
    unknown = set(args.ablations) - set(ABLATIONS)
    if unknown:
        parser.error(f"--ablations: unknown {', '.join(sorted(unknown))}; choose from {', '.join(ABLATIONS)}")
    args.base = [item for item in args.ablation_base.split(",") if item]
    args.ablation_trials = args.ablation_trials or args.trials
    args.ablation_steps = args.ablation_steps or args.steps
    try:
        from ofmu_ray.methods import build_config
        from ofmu_ray.tune.ablate import parse_base

        build_config("ofmu", parse_base(args.base)[0])
    except ValueError as e:  # UsageError (a malformed pair) is one too
        parser.error(f"--ablation-base: {e}")
    command = "python benchmarks/study.py " + " ".join(argv if argv is not None else sys.argv[1:])
    args.results = Path(args.out).resolve().parent / "results"  # the plots and the cost measurement
    args.results.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        (args.results / "study.json").write_text(json.dumps({"command": command.strip()}))
        run_sweeps(args)
        run_ablations(args)
        measure_cost(args.results)
    print(f"report: {write_report(args, command.strip())}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
