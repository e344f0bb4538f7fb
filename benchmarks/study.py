"""The OFMU-vs-baselines study: equal-budget sweeps of all six methods, seed re-runs of every
front, OFMU's ablations, and the report `benchmarks/RESULTS.md`, regenerated from the MLflow store.

    python benchmarks/study.py                  # the issue's budget: small, forget01/05/10, 2 models
    python benchmarks/study.py --splits forget10 --models tiny-llama-2l --trials 4 --seeds 2
    python benchmarks/study.py --report-only    # RESULTS.md again from the store, nothing run

What it runs, all logged to one MLflow store (`--tracking-uri`, default `benchmarks/study.db`):
- per forget split, one `ofmu-ray sweep` over `--models` of the six TOFU methods with the same
  trials and steps each, and `--seeds` re-runs of every front configuration (experiment
  `synth-tofu/<split>`, sweep `<name>-<split>`); an interrupted study resumes its sweeps;
- OFMU's ablations on the first model and the last split, one axis at a time (decorrelation,
  Hessian option, T, beta) from `--ablation-base` over `--ablation-steps` forget batches,
  `--ablation-seeds` runs each (experiments `study-ablation/<axis>`); runs already in the store are
  not run again. The base is a point where OFMU unlearns: from its defaults over 20 batches on
  `small` forget10 every variant stayed at the forget-quality floor, so none could differ;
- `benchmarks/method_cost.py`: each method's time per update relative to gradient ascent.

Every number in the report is read back from the store (the cost ratios from method_cost's JSON,
kept beside the report), and the report names the command that wrote it.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ABLATIONS = {"decorrelation": ("signed", "squared", "abs", "none"),
             "hessian": ("exact", "no_third", "forget_only", "finite_diff", "finite_diff_forget"),
             "inner_steps": (1, 3, 5, 10), "beta": (0.0, 0.25, 1.0, 4.0)}
SPLIT_KEYS = ("", "/paraphrase", "/multihop", "/crosslingual")


def run_sweeps(args: argparse.Namespace) -> None:
    from ofmu_ray.cli import main
    from ofmu_ray.families import FAMILIES

    methods = FAMILIES["synth-tofu"].default_methods  # the six TOFU-style methods

    for split in args.splits:
        name = f"{args.name}-{split}"
        resume = (Path(args.sweeps_dir) / name / "sweep.json").is_file()
        argv = ["sweep", "--bench", "synth-tofu", "--profile", args.profile, "--split", split,
                "--models", ",".join(args.models), "--methods", ",".join(methods), "--trials", str(args.trials),
                *(["--steps", str(args.steps)] if args.steps else ["--epochs", str(args.epochs)]),
                "--seeds", str(args.seeds), "--tracking-uri", args.tracking_uri,
                "--sweeps-dir", args.sweeps_dir, "--name", name, *(["--cache-dir", args.cache_dir] if args.cache_dir
                                                                   else []), *(["--resume"] if resume else [])]
        if main(argv) != 0:
            raise SystemExit(f"the sweep of {split} failed: ofmu-ray {' '.join(argv)}")


def run_ablations(args: argparse.Namespace) -> None:
    from mlflow.tracking import MlflowClient

    from ofmu_ray import runs
    from ofmu_ray.families import FAMILIES
    from ofmu_ray.families.base import PrepareRequest
    from ofmu_ray.tracking.mlflow_log import experiment_id, find_runs, log_run

    model, split = args.models[0], args.splits[-1]
    logged = (*FAMILIES["synth-tofu"].result_files, "history.json")
    prepared = runs.prepare(PrepareRequest(bench="synth-tofu", split=split, profile=args.profile, model=model,
                                           cache_dir=args.cache_dir))
    client = MlflowClient(args.tracking_uri)
    for axis in args.ablations:
        experiment = f"study-ablation/{axis}"
        known = experiment_id(client, experiment)  # looked up (or created) once per axis
        for value in ABLATIONS[axis]:
            for seed in range(args.ablation_seeds):
                tags = _ablation_tags(args) | {"axis": axis, "value": str(value), "seed": str(seed), "model": model,
                                               "split": split, "method": "ofmu"}
                if any(r.info.status == "FINISHED" for r in find_runs(client, known, **tags)):
                    continue
                spec = runs.run_spec(prepared, split=split, method="ofmu", overrides=args.base | {axis: value},
                                     steps=args.ablation_steps, seed=seed)
                with tempfile.TemporaryDirectory() as tmp:
                    metrics, folder = runs.run(prepared, spec, storage=tmp)  # the oracle's reference: cached once
                    history = json.loads((folder / "history.json").read_text())
                    log_run(experiment, f"ofmu {axis}={value} seed {seed}",
                            args.base | {axis: value, "steps": args.ablation_steps},
                            metrics, tags, args.tracking_uri, history, folder, logged)
                print(f"ablation {axis}={value} seed {seed}: log10 FQ {metrics['log10_forget_quality']:.2f}, "
                      f"MU {metrics['model_utility']:.3f}", file=sys.stderr)


def _ablation_tags(args: argparse.Namespace) -> dict[str, str]:
    """What tells one ablation from another in the store: the study, its base and its budget."""
    return {"study": args.name, "base": args.ablation_base or "defaults", "steps": str(args.ablation_steps)}


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


def _budget(client, experiment: str, sweep: str) -> str:
    """What each method of the sweep had to search with, read from its parent runs."""
    from ofmu_ray.tracking.mlflow_log import find_runs

    parents = {r.data.tags["method"]: r.data.params for r in sorted(
        find_runs(client, experiment, ofmu__sweep=sweep, ofmu__kind="method"), key=lambda r: r.info.start_time)}
    budgets = {m: (p["trials"], p["steps"], p["batch_size"]) for m, p in parents.items()}
    spaces = ", ".join(f"{m} {len(keys)} ({', '.join(keys)})" for m, keys in
                       ((m, [k[len("space."):] for k in p if k.startswith("space.")]) for m, p in parents.items()))
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
    from ofmu_ray.tune.results import fronts_of, hypervolume_table, seed_table, sweep_models

    experiment = client.get_experiment_by_name(f"synth-tofu/{split}").experiment_id
    short = [r.info.run_name for r in find_runs(client, experiment, ofmu__sweep=sweep, ofmu__kind="trial")
             if r.data.tags.get("ofmu.short_budget") and not r.data.tags.get("ofmu.diverged")]
    if short:  # a trial that stopped early is not a point at the budget every other method had
        raise SystemExit(f"sweep {sweep}: {len(short)} trial(s) consumed fewer forget batches than the budget "
                         f"({', '.join(short[:5])}); an equal-budget study cannot use them")
    models = sweep_models(client, experiment, sweep)
    table = hypervolume_table(client, experiment, sweep, models)
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
            lines.append(f"| {method} | {len(rs)} | {points} | {entry['hypervolume_equal_compute']:.3f} "
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ofmu_ray.tracking.mlflow_log import find_runs

    base = f"OFMU's defaults with {args.ablation_base}" if args.ablation_base else "OFMU's defaults"
    lines += ["## OFMU ablations", "", f"One axis at a time from {base}, {args.ablation_steps} forget batches, on "
              f"{args.models[0]} {args.splits[-1]}; mean ± std over seeds. The last norm of grad Phi is the size of "
              "the inner ascent direction at the last step (with no similarity term, the forget gradient alone).", ""]
    for axis, values in ABLATIONS.items():
        experiment = client.get_experiment_by_name(f"study-ablation/{axis}")
        if experiment is None:
            continue
        runs = [r for r in find_runs(client, experiment.experiment_id, **_ablation_tags(args))
                if r.info.status == "FINISHED"]
        rows = {str(v): [r for r in runs if r.data.tags["value"] == str(v)] for v in values}
        lines += [f"### {axis}", "", f"![{axis}](results/ablation_{axis}.png)", "",
                  f"| {axis} | runs | log10 FQ | MU | FQ variance | last norm of grad Phi | s/run |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        figure, axes = plt.subplots(1, 2, figsize=(9, 3.2))
        for name, ax in zip(("log10_forget_quality", "model_utility"), axes, strict=True):
            means = [statistics.fmean(_metric(rs, name)) if rs else math.nan for rs in rows.values()]
            ax.bar(list(rows), means, color="tab:red")
            ax.set_title(name)
            ax.tick_params(axis="x", labelrotation=20)
        figure.suptitle(f"OFMU: {axis}")
        figure.tight_layout()
        figure.savefig(args.results / f"ablation_{axis}.png", dpi=110)
        plt.close(figure)
        for value, rs in rows.items():
            lines.append(f"| {value} | {len(rs)} | " + " | ".join(
                _mean_std(_metric(rs, name)) for name in ("log10_forget_quality", "model_utility", "fq_variance",
                                                          "final/grad_phi_norm", "unlearn_seconds")) + " |")
        lines.append("")


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--profile", default="small")
    parser.add_argument("--splits", default="forget01,forget05,forget10")
    parser.add_argument("--models", default="tiny-llama-2l,tiny-llama-4l")
    parser.add_argument("--trials", type=int, default=8, help="per method and model, the default included")
    parser.add_argument("--epochs", type=float, default=10, help="passes over the forget split per run, every method")
    parser.add_argument("--steps", type=int, default=None, help="or forget batches per run (instead of --epochs)")
    parser.add_argument("--seeds", type=int, default=3, help="new seeds for each front configuration")
    parser.add_argument("--ablations", default=",".join(ABLATIONS), help=f"OFMU's axes, of {', '.join(ABLATIONS)}")
    parser.add_argument("--ablation-seeds", type=int, default=3)
    parser.add_argument("--ablation-steps", type=int, default=80, help="forget batches of every ablation run")
    parser.add_argument("--ablation-base", default="eta_in=0.1",
                        help="KEY=VALUE,... over OFMU's defaults: the point each axis varies from ('' = defaults)")
    parser.add_argument("--name", default="study", help="prefix of the sweeps' names (and the ablations' tag)")
    parser.add_argument("--tracking-uri", default=f"sqlite:///{HERE / 'study.db'}")
    parser.add_argument("--sweeps-dir", default=str(HERE / "sweeps"))
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--report-only", action="store_true", help="only regenerate the report from the store")
    args = parser.parse_args(argv)
    args.splits, args.models, args.ablations = args.splits.split(","), args.models.split(","), args.ablations.split(",")
    unknown = set(args.ablations) - set(ABLATIONS)
    if unknown:
        parser.error(f"--ablations: unknown {', '.join(sorted(unknown))}; choose from {', '.join(ABLATIONS)}")
    try:
        from ofmu_ray.config import parse_sets
        from ofmu_ray.methods import build_config

        args.base = parse_sets([pair for pair in args.ablation_base.split(",") if pair])
        build_config("ofmu", args.base)
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
