"""The verdict study's report, `RESULTS.md` with its figures in `results/`, written from the MLflow
store alone (every finished cell of the study `study/<name>`) and logged there too.

    python benchmarks/study.py --report-only [--name verdict] [--tracking-uri ...]

How each number is made (`ofmu_ray.tune.verdict`):
- a search's selected configuration per method is its headline trial on the forget split (best
  log10 FQ among the trials keeping tau x the target's utility); "none" where no trial kept it;
- the headline per method and split key is the mean of the selected configurations' fresh-seed
  re-runs (every re-run counts, whether or not it kept the floor: the share that did is beside it),
  with a hierarchical bootstrap interval over searches and seeds;
- OFMU - baseline per split key is paired by search, over the searches where both selected
  something; win / loss / tie by whether its 95 % interval excludes 0;
- at equal compute, each method's trials in the order they ran, cut at the least total FLOPs any
  method spent in that search, selected the same way, without re-runs (the selected trial's own
  value): an interval over searches only.
"""

from __future__ import annotations

import json
import math
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPORT = "study-report"  # the ofmu.kind of the run the report is logged to
KEYS = ("", "/paraphrase", "/multihop", "/crosslingual", "/robust")
RATIOS = ("ratio/cos_to_forget", "ratio/penalty_to_retain")  # OFMU's term balance, logged per step


def key_name(key: str) -> str:
    return key.lstrip("/") or "forget"


@dataclass
class Search:
    """One search of a cell as the store holds it."""

    sweep: str
    trials: dict[str, list]  # per method, its trial runs in the order they ran
    reruns: dict[str, list]  # per method, the fresh-seed re-runs of its selected configuration
    fronts: dict  # `summarize_fronts` of its trials, per split key

    def selected(self, method: str) -> int | None:
        """The index of the method's selected trial (its forget-split headline), None: none kept the floor."""
        return self.fronts[""]["methods"][method]["fq_at_kept_utility_trial"]


@dataclass
class Cell:
    """One cell of the study: its settings (the record's params) and its searches."""

    split: str
    params: dict
    searches: list[Search]
    objectives: object  # `Objectives`
    keys: list[str]
    wall_hours: float
    methods: list[str]

    @property
    def tau(self) -> float:
        return float(self.params["utility_floor"])

    def target(self, key: str) -> tuple[float, float]:
        return tuple(self.searches[0].fronts[key]["target"].values())

    def groups(self, method: str, metric: str) -> list[list[float] | None]:
        """Per search, `metric` of the method's re-runs (None where the search selected nothing)."""
        return [None if s.selected(method) is None else
                [r.data.metrics.get(metric, math.nan) for r in s.reruns.get(method, [])] for s in self.searches]

    def equal_compute(self, method: str, key: str) -> list[list[float] | None]:
        """Per search, `key`'s x of the trial the method selects among those within the least compute any
        method spent, selected on the forget split as `groups`' are (None: none of them kept the floor)."""
        x = self.objectives.names(key)[0]
        chosen = [s.fronts[""]["methods"][method].get("fq_at_kept_utility_equal_compute_trial") for s in self.searches]
        return [None if i is None else [s.trials[method][i].data.metrics.get(x, math.nan)]
                for s, i in zip(self.searches, chosen, strict=True)]

    def values(self, method: str, key: str, compute: bool) -> list[list[float] | None]:
        """What the verdict compares on `key`: the re-runs' x (`groups`), or at equal compute the selected trial's."""
        return self.equal_compute(method, key) if compute else self.groups(method, self.objectives.names(key)[0])

    def kept(self, runs: list) -> int:
        """How many of `runs` kept tau x the target's utility on the forget split."""
        floor = self.tau * self.target("")[1]
        return sum(r.data.metrics.get(self.objectives.y, -math.inf) >= floor for r in runs)


def load(client, study: str) -> tuple[list[Cell], list[str]]:
    """The study's finished cells, and the splits of cells that are not finished."""
    from ofmu_ray.tracking.mlflow_log import find_runs
    from ofmu_ray.tune.results import fronts_of, sweep_reference, trial_runs

    found = client.get_experiment_by_name(f"study/{study}")
    records = find_runs(client, found.experiment_id, ofmu__kind="study-cell") if found else []
    cells, unfinished = [], []
    for record in sorted(records, key=lambda r: r.info.start_time):
        params, split = record.data.params, record.data.tags["split"]
        if record.info.status != "FINISHED":
            unfinished.append(split)
            continue
        experiment = client.get_experiment_by_name(f"synth-tofu/{split}").experiment_id
        tau, methods = float(params["utility_floor"]), params["methods"].split(",")
        searches = []
        for sweep in params["sweeps"].split(","):
            runs, fronts = fronts_of(client, experiment, sweep, model=params["model"], tau=tau)
            reruns = trial_runs(client, experiment, sweep, kind="seed", model=params["model"])
            searches.append(Search(sweep, runs, reruns, fronts))
        objectives = sweep_reference(client, experiment, searches[0].sweep)[0]
        keys = [k for k in KEYS if k in searches[0].fronts]
        hours = (record.info.end_time - record.info.start_time) / 3.6e6
        cells.append(Cell(split, params, searches, objectives, keys, hours, methods))
    return cells, unfinished


def headlines(cell: Cell, seed: int) -> dict[str, dict[str, object]]:
    """Per method and split key, the re-runs' mean x with its interval (None: no value)."""
    from ofmu_ray.tune.verdict import bootstrap

    return {m: {k: bootstrap(cell.groups(m, cell.objectives.names(k)[0]), seed) for k in cell.keys}
            for m in cell.methods}


def differences(cell: Cell, seed: int, compute: bool = False) -> dict[str, dict[str, object]]:
    """Per baseline and split key, OFMU - baseline (equal data: the re-runs; `compute`: the selected
    trials at equal compute)."""
    from ofmu_ray.tune.verdict import paired

    return {b: {k: paired(cell.values("ofmu", k, compute), cell.values(b, k, compute), seed) for k in cell.keys}
            for b in cell.methods if b != "ofmu"}


def numbers(cell: Cell, seed: int) -> dict:
    """Everything the report and `verdict.json` read of a cell, computed once: the headlines, the
    differences at equal data and equal compute, and the anytime curves (`anytime_curves`)."""
    return {"headlines": headlines(cell, seed), "equal_data": differences(cell, seed),
            "equal_compute": differences(cell, seed, True), "anytime": anytime_curves(cell)}


def claims(cell: Cell, seed: int) -> list[tuple[str, str, str]]:
    """The OFMU paper's claims, each (claim, holds / does not hold / cannot tell at this budget, the numbers)."""
    from ofmu_ray.tune.verdict import bootstrap, call, paired

    x, y = cell.objectives.names()
    rows = []

    def judge(metric: str, higher: bool, digits: int = 2) -> tuple[str, list[str]]:
        calls, said = {}, []
        for b in cell.methods:
            if b != "ofmu":
                iv = paired(cell.groups("ofmu", metric), cell.groups(b, metric), seed)
                calls[b] = call(iv, higher)
                said.append(f"vs {b} {iv.format(digits, sign=True) if iv else 'n/a'} ({calls[b]})")
        verdict = ("does not hold" if "loss" in calls.values() else
                   "holds" if calls and set(calls.values()) == {"win"} else "cannot tell at this budget")
        return verdict, said

    def mean(metric: str, digits: int) -> str:
        intervals = {m: bootstrap(cell.groups(m, metric), seed) for m in cell.methods}
        return ", ".join(f"{m} {iv.format(digits) if iv else 'n/a'}" for m, iv in intervals.items())

    fq, fq_said = judge(x, True)
    mu, mu_said = judge(y, True, 3)
    both = "does not hold" if "does not hold" in (fq, mu) else "holds" if fq == mu == "holds" else \
        "cannot tell at this budget"
    rows.append(("Highest forget quality and model utility", both,
                 f"{x} (OFMU - baseline): {'; '.join(fq_said)}. {y}: {'; '.join(mu_said)}."))
    for metric, claim, digits in (("fq_variance", "Lowest forget-quality variance across the hard splits", 2),
                                  ("mu_degradation", "Lowest model-utility degradation", 3)):
        verdict, said = judge(metric, False, digits)
        rows.append((claim, verdict, f"means: {mean(metric, digits)}. OFMU - baseline: {'; '.join(said)}."))
    if "/robust" in cell.keys:
        robust = cell.objectives.names("/robust")[0]
        verdict, said = judge(robust, True)
        rows.append(("Robust to relearning and quantisation (the worst case over the attacks)", verdict,
                     f"{robust} (OFMU - baseline): {'; '.join(said)}."))
    else:
        rows.append(("Robust to relearning and quantisation", "cannot tell at this budget",
                     "this cell ran no attacks."))
    return rows


def anytime_curves(cell: Cell) -> tuple[dict, dict, int, int]:
    """(per method the mean headline over searches against trials used, and against cumulative FLOPs
    (one grid for all methods), the trials N, and the last n at which the methods' order changed)."""
    from ofmu_ray.tune.pareto import Region
    from ofmu_ray.tune.verdict import anytime, anytime_flops, last_change, mean_curve

    x, y = cell.objectives.names()
    region = Region(cell.target(""), cell.tau)
    by_trials, by_flops, spent = {}, {}, []
    for s in cell.searches:
        for runs in s.trials.values():
            total = 0.0
            for r in runs:
                total += r.data.metrics.get("flops", math.nan)
                spent.append(total)
    grid = sorted({c for c in spent if math.isfinite(c)})
    for m in cell.methods:
        points = [[(r.data.metrics.get(x, math.nan), r.data.metrics.get(y, math.nan)) for r in s.trials[m]]
                  for s in cell.searches]
        by_trials[m] = mean_curve([anytime(p, region) for p in points])
        flops = [[r.data.metrics.get("flops", math.nan) for r in s.trials[m]] for s in cell.searches]
        by_flops[m] = (grid, mean_curve([anytime_flops(p, f, region, grid) for p, f in zip(points, flops,
                                                                                          strict=True)]))
    n = min(len(c) for c in by_trials.values())
    return by_trials, by_flops, n, last_change(by_trials)


def attainment(cell: Cell, key: str) -> dict[str, dict[float, list[tuple[float, float]]]]:
    """Per method, the empirical attainment surfaces of its searches' trials on `key` (moocore, maximised),
    per percentile of searches."""
    import moocore
    import numpy as np

    x, y = cell.objectives.names(key)
    out = {}
    for m in cell.methods:
        rows, sets = [], []
        for i, s in enumerate(cell.searches):
            for r in s.trials[m]:
                p = (r.data.metrics.get(x, math.nan), r.data.metrics.get(y, math.nan))
                if all(map(math.isfinite, p)):
                    rows.append(p)
                    sets.append(i + 1)
        if not rows:
            continue
        eaf = moocore.eaf(-np.array(rows), sets)  # moocore minimises
        out[m] = {}
        for px, py, level in eaf:
            out[m].setdefault(float(level), []).append((-float(px), -float(py)))
    return out


def term_ratios(client, cell: Cell) -> dict[str, tuple[float, float, float]]:
    """OFMU's term ratios at its selected configurations: per ratio, (min, median, max) over the
    re-runs of each run's median over its steps."""
    medians: dict[str, list[float]] = {r: [] for r in RATIOS}
    for s in cell.searches:
        for run in s.reruns.get("ofmu", []):
            for ratio in RATIOS:
                history = [h.value for h in client.get_metric_history(run.info.run_id, f"step/{ratio}")]
                if history:
                    medians[ratio].append(statistics.median(history))
    return {r: (min(v), statistics.median(v), max(v)) for r, v in medians.items() if v}


def cost(cell: Cell) -> dict[str, float]:
    """What the cell spent: trials, re-runs, their FLOPs, the trials' own hours and the wall-clock hours."""
    runs = [r for s in cell.searches for rs in (*s.trials.values(), *s.reruns.values()) for r in rs]
    return {"trials": sum(len(rs) for s in cell.searches for rs in s.trials.values()),
            "reruns": sum(len(rs) for s in cell.searches for rs in s.reruns.values()),
            "flops": sum(r.data.metrics.get("flops", 0.0) for r in runs),
            "run_hours": sum(r.data.metrics.get("trial_seconds", 0.0) for r in runs) / 3600,
            "wall_hours": cell.wall_hours}


def _figures(cell: Cell, folder: Path, found: dict) -> dict[str, Path]:
    """The cell's figures: the fronts of every search's trials, the anytime curves, the standard
    against the robust headline, the attainment surfaces."""
    from ofmu_ray.families import family_of
    from ofmu_ray.tracking.plots import plot_anytime, plot_attainment, plot_intervals, plot_png
    from ofmu_ray.tune.pareto import summarize_fronts
    from ofmu_ray.tune.results import region_settings

    x, y = cell.objectives.names()
    pooled = {m: [r.data.metrics for s in cell.searches for r in s.trials[m]] for m in cell.methods}
    floors = {"": cell.searches[0].fronts[""]["reference"][0]}
    fronts = summarize_fronts(pooled, floors, cell.objectives, {"": cell.target("")}, cell.tau,
                              **region_settings(family_of("synth-tofu"), cell.objectives))[""]
    split = cell.split
    out = {"fronts": plot_png({m: [(t.get(x, math.nan), t.get(y, math.nan)) for t in ts] for m, ts in pooled.items()},
                              fronts, f"synth-tofu {split}: every trial of the {len(cell.searches)} search(es)",
                              folder / f"{split}_fronts.png")}
    by_trials, by_flops, _, _ = found["anytime"]
    out["anytime"] = plot_anytime(
        {"trials used": {m: (list(range(1, len(c) + 1)), c) for m, c in by_trials.items()},
         "cumulative FLOPs": by_flops}, f"best {x} at kept utility",
        f"synth-tofu {split}: the headline as a search spends more (mean over searches)",
        folder / f"{split}_anytime.png")
    if "/robust" in cell.keys:
        robust = cell.objectives.names("/robust")[0]
        points = {}
        for m in cell.methods:
            a, b = found["headlines"][m][""], found["headlines"][m]["/robust"]
            if a and b:
                points[m] = ((a.mean, a.low, a.high), (b.mean, b.low, b.high))
        out["robust"] = plot_intervals(points, (x, robust), f"synth-tofu {split}: the selected configurations' "
                                       "re-runs, standard against after the attacks", folder / f"{split}_robust.png")
    out["attainment"] = plot_attainment(attainment(cell, ""), fronts, f"synth-tofu {split}: attainment surfaces of "
                                        f"the {len(cell.searches)} search(es) (thin: one, thick: half, dashed: all)",
                                        folder / f"{split}_attainment.png")
    return out


def _cell_lines(client, cell: Cell, seed: int, found: dict, figures: dict[str, Path], base: Path) -> list[str]:
    from ofmu_ray.tune.verdict import call

    p, x, y = cell.params, *cell.objectives.names()
    tx, ty = cell.target("")
    spent = cost(cell)
    r = len(cell.searches)
    batches = int(cell.searches[0].trials[cell.methods[0]][0].data.metrics["forget_batches"])
    span = "`--steps`" if "steps" in p else f"{float(p['epochs']):g} epochs of the forget split"
    short = sum(1 for s in cell.searches for rs in (*s.trials.values(), *s.reruns.values()) for q in rs
                if q.data.tags.get("ofmu.short_budget"))
    lines = [f"## {cell.split}", "",
             f"- **Command:** `{p['command']}`",
             f"- **Benchmark:** synth-tofu `{p['profile']}` {cell.split}, model `{p['model']}`; the prepared build's "
             f"`manifest.json` has sha256 `{p['manifest_sha256']}`. Processor: {p['processor']}.",
             f"- **Budget:** {r} search(es) (sampler seeds 0..{r - 1}) of {p['trials']} trials per method, the first "
             f"at its defaults, every run {batches} forget batches ({span}) for every method; each search's selected "
             f"configuration re-run on {p['seeds']} fresh seeds. Attacks: "
             f"{p['attacks']}." + (f" Own search spaces: {p['spaces']}." if "spaces" in p else "")
             + f" Runs that stopped short of the budget (diverged): {short}.",
             f"- **Target:** {x} {tx:.2f}, {y} {ty:.3f}; utility floor {cell.tau:g} x {ty:.3f} = {cell.tau * ty:.3f}.",
             f"- **Cost:** {spent['trials']} trials and {spent['reruns']} re-runs, {spent['flops']:.3g} FLOPs, "
             f"{spent['run_hours']:.2f} h of runs ({spent['wall_hours']:.2f} h wall clock).",
             ""]
    if r == 1:
        lines += ["One search: every interval below is over the seeds only, and nothing is said about how much "
                  "another search would move it. At equal compute there is one value per method, so no interval.", ""]
    lines += ["### Selected configurations", "",
              "Per search, each method's headline trial (best forget quality at kept utility) and its re-runs "
              "(mean, and how many kept the floor).", "",
              f"| method | search | trial | its {x} | its {y} | re-runs: mean {x} | kept floor | configuration |",
              "|---|---:|---|---:|---:|---:|---:|---|"]
    for m in cell.methods:
        for i, s in enumerate(cell.searches, 1):
            chosen = s.selected(m)
            if chosen is None:
                lines.append(f"| {m} | {i} | none | | | | | no trial kept the floor |")
                continue
            run, reruns = s.trials[m][chosen], s.reruns.get(m, [])
            values = [q.data.metrics.get(x, math.nan) for q in reruns]
            kept = cell.kept(reruns)
            config = ", ".join(f"{k[7:]}={_short(v)}" for k, v in sorted(run.data.params.items())
                               if k.startswith("method."))
            lines.append(f"| {m} | {i} | {run.info.run_name} | {run.data.metrics[x]:.2f} | {run.data.metrics[y]:.3f} "
                         f"| {statistics.fmean(values):.2f} | {kept}/{len(reruns)} | {config} |")
    heads = found["headlines"]
    lines += ["", "### Headline per method", "",
              f"Mean {x} of the re-runs, 95 % interval (hierarchical bootstrap over searches, then seeds), per split "
              "key; 'none': searches that selected nothing.", "",
              "| method | none | " + " | ".join(key_name(k) for k in cell.keys) + " | kept floor |",
              "|---|---:|" + "---:|" * len(cell.keys) + "---:|"]
    for m in cell.methods:
        none = sum(s.selected(m) is None for s in cell.searches)
        reruns = [q for s in cell.searches if s.selected(m) is not None for q in s.reruns.get(m, [])]
        share = f"{cell.kept(reruns)}/{len(reruns)}" if reruns else "-"
        lines.append(f"| {m} | {none}/{r} | " + " | ".join(str(heads[m][k] or "n/a") for k in cell.keys) +
                     f" | {share} |")
    for title, compute in (("equal data (each method its trials; the re-runs)", False),
                           ("equal compute (each method's trials in order, cut at the least FLOPs any method spent in "
                            "the search; the selected trial's own value, no re-runs)", True)):
        lines += ["", f"### OFMU - baseline, at {title}", "",
                  "Paired by search, over the searches where both selected something; 95 % interval; win / loss / "
                  "tie: the interval excludes 0 in OFMU's favour / against it / neither. Where a side selected nothing "
                  "in any search ('none'), it ranks last, as in the headline: OFMU none is a loss. 'No interval': "
                  "nothing varies (one value a side, or the same values in every search, as when only a method's "
                  "defaults fit in the compute): the difference is shown and not called.", "",
                  *([_fits(cell), ""] if compute else []),
                  "| baseline | " + " | ".join(key_name(k) for k in cell.keys) + " | wins-losses-ties |",
                  "|---|" + "---:|" * len(cell.keys) + "---:|"]
        for b, by_key in found["equal_compute" if compute else "equal_data"].items():
            calls, cells = [], []
            for k in cell.keys:
                iv = by_key[k]
                calls.append(call(iv) if iv else _unpaired(cell, b, k, compute))
                cells.append(f"{iv.format(sign=True)} {calls[-1]}" if iv else _no_interval(cell, b, k, compute))
            lines.append(f"| {b} | " + " | ".join(cells) + f" | {calls.count('win')}-{calls.count('loss')}-"
                         f"{calls.count('tie')} |")
    by_trials, _, n, changed = found["anytime"]
    final = " > ".join(m for m in sorted(by_trials, key=lambda m: -by_trials[m][-1] if math.isfinite(by_trials[m][-1])
                                         else math.inf))
    lines += ["", "### Does the ranking settle?", "",
              "Mean headline over searches (the best trial's own value, before any re-run) against the trials used "
              f"and the compute spent. At N = {n} trials the "
              f"order is {final}; it last changed at n = {changed}"
              + (", so it was still changing at N." if changed == n else f", and held for the last {n - changed} "
                 "trials."), "",
              f"![anytime]({figures['anytime'].relative_to(base)})", "",
              "### The paper's claims", "", "| claim | at this budget | numbers |", "|---|---|---|"]
    lines += [f"| {c} | {v} | {d} |" for c, v, d in claims(cell, seed)]
    ratios = term_ratios(client, cell)
    if ratios:
        lines += ["", "OFMU's term balance at its selected configurations (each re-run's median over its steps; "
                  "min / median / max over the re-runs): " + "; ".join(
                      f"`{k}` {a:.3g} / {b:.3g} / {c:.3g}" for k, (a, b, c) in ratios.items()) + "."]
    lines += ["", "### Figures", ""] + [f"![{name}]({path.relative_to(base)})" for name, path in figures.items()
                                        if name != "anytime"] + [""]
    return lines


def _short(value: str) -> str:
    """A hyper-parameter as MLflow holds it (text), numbers to 3 significant digits."""
    try:
        return f"{float(value):.3g}"
    except ValueError:
        return value


def _missing(cell: Cell, baseline: str, key: str, compute: bool) -> str:
    """Which of OFMU and `baseline` selected nothing on `key` in any search ('n/a': both did, in
    different searches, or one value each: no interval)."""
    missing = [m for m in ("ofmu", baseline) if not any(cell.values(m, key, compute))]
    return " and ".join(f"{'OFMU' if m == 'ofmu' else m} none" for m in missing) or "n/a"


def _no_interval(cell: Cell, baseline: str, key: str, compute: bool) -> str:
    """A table cell without an interval: the call and which side selected nothing, or the bare
    difference where nothing varies (at equal compute: one search, or the same two trials selected
    in every search, e.g. the defaults when only the first trial fits)."""
    from ofmu_ray.tune.verdict import mean_of_means

    missing = _missing(cell, baseline, key, compute)
    if missing != "n/a":
        return f"{_unpaired(cell, baseline, key, compute)} ({missing})"
    pairs = [(a, b) for a, b in zip(cell.values("ofmu", key, compute), cell.values(baseline, key, compute),
                                    strict=True) if a and b]
    if not pairs:
        return "n/a (no search where both selected something)"
    difference = mean_of_means([a for a, _ in pairs]) - mean_of_means([b for _, b in pairs])
    return f"{difference:+.2f} (no interval)"


def _unpaired(cell: Cell, baseline: str, key: str, compute: bool) -> str:
    """The call without a difference: "none" ranks last, so OFMU none against a baseline's value is
    a loss, the other way round a win, both none a tie; 'n/a' when neither side is none."""
    missing = _missing(cell, baseline, key, compute)
    return {"OFMU none": "loss", f"{baseline} none": "win", f"OFMU none and {baseline} none": "tie"}.get(missing, "n/a")


def _fits(cell: Cell) -> str:
    """How many of its trials each method had within each search's equal compute."""
    said = []
    for i, s in enumerate(cell.searches, 1):
        fits = ", ".join(f"{m} {s.fronts['']['methods'][m]['trials_equal_compute']}" for m in cell.methods)
        said.append(f"search {i}: {s.fronts['']['compute']:.3g} FLOPs ({fits} trials)")
    return "The compute, and the trials that fit in it: " + "; ".join(said) + "."


def write_report(tracking_uri: str, study: str, out: Path, seed: int = 0) -> Path:
    """Writes `out` and its figures (in `results/` beside it) from the store, logs both to the study's
    report run, and returns `out`.

    Raises:
        SystemExit: the store holds no finished cell of the study.
    """
    from ofmu_ray.tracking import browse, mlflow_log

    client = mlflow_log.connect(tracking_uri)
    cells, unfinished = load(client, study)
    if not cells:
        raise SystemExit(f"study {study!r}: no finished cell in {tracking_uri}"
                         + (f" (unfinished: {', '.join(unfinished)})" if unfinished else ""))
    out = out.resolve()
    folder = out.parent / "results"
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["# The verdict: OFMU against each baseline", "",
             f"Do not edit: run it again (`python benchmarks/study.py --report-only --name {study}`). Every number "
             f"below is read back from the MLflow store the study wrote (experiment `study/{study}` and the sweeps "
             "it names). Intervals: hierarchical bootstrap (searches, then seeds within them), 95 % percentile "
             f"interval of 4000 resamples, bootstrap seed {seed}.", ""]
    if unfinished:
        lines += [f"Cells started and not finished, left out: {', '.join(unfinished)}.", ""]
    figures, computed = {}, {}
    for cell in cells:
        computed[cell.split] = numbers(cell, seed)
        figures[cell.split] = _figures(cell, folder, computed[cell.split])
        lines += _cell_lines(client, cell, seed, computed[cell.split], figures[cell.split], out.parent)
    out.write_text("\n".join(lines))
    experiment = mlflow_log.experiment_id(client, f"study/{study}")
    found = mlflow_log.find_runs(client, experiment, ofmu__kind=REPORT, ofmu__study=study)
    run = found[0].info.run_id if found else client.create_run(
        experiment, run_name="report", tags={"ofmu.kind": REPORT, "ofmu.study": study}).info.run_id
    with tempfile.TemporaryDirectory() as tmp:
        summary = Path(tmp) / "verdict.json"
        summary.write_text(json.dumps({c.split: {**{k: _plain(computed[c.split][k])
                                                    for k in ("headlines", "equal_data", "equal_compute")},
                                                 "cost": cost(c)} for c in cells}, indent=1))
        mlflow_log.log_files(client, run, {"RESULTS.md": out, "verdict.json": summary} |
                             {p.name: p for f in figures.values() for p in f.values()}, "report")
    browse.describe(client, run, _description(out.read_text()))
    client.set_terminated(run, "FINISHED")
    return out


def _description(report: str, limit: int = 7500) -> str:
    """The report as the run's description, cut at a line before MLflow's 8000-character limit."""
    if len(report) <= limit:
        return report
    kept, size = [], 0
    for line in report.splitlines():
        if size + len(line) + 1 > limit:
            break
        kept.append(line)
        size += len(line) + 1
    return "\n".join(kept + ["", "(cut here: the whole report is this run's artifact `report/RESULTS.md`)"])


def _plain(table: dict) -> dict:
    """Intervals as plain dicts (None stays None), for the JSON beside the report."""
    return {a: {key_name(k): (vars(v) if v else None) for k, v in row.items()} for a, row in table.items()}
