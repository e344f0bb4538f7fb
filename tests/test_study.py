"""`benchmarks/study.py`, run for real on a tiny study (2 searches of 2 trials, 2 fresh seeds, OFMU,
gradient ascent and a GradDiff held at a learning rate that wrecks the model, so that it never keeps
the utility floor), and its report checked against what the store holds."""

from __future__ import annotations

import importlib
import os
import statistics
import sys
from pathlib import Path

import pytest

from ofmu_ray.tracking.mlflow_log import connect, find_runs
from ofmu_ray.tune import verdict
from ofmu_ray.tune.spaces import SPACES_DIR

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
METHODS = ("ofmu", "gradascent", "graddiff")
SEEDS = 2


def _study_module():
    """benchmarks/study.py (scripts, not a package: imported from their folder, then cached)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module("study")
    finally:
        sys.path.remove(str(BENCHMARKS))


@pytest.fixture(scope="module")
def study(ray_session, tiny, cache_dir, tmp_path_factory) -> tuple[str, Path]:
    """(the store's URI, the report) of the tiny study's one cell."""
    where = tmp_path_factory.mktemp("study")
    wrecking = where / "graddiff.yaml"  # AdamW at 0.05: every weight moves by about that each step
    wrecking.write_text("lr: {fixed: 0.05}\ngamma: {uniform: [0.1, 2.0]}\nalpha: {loguniform: [0.1, 10.0]}\n")
    uri = f"sqlite:///{where / 'mlruns.db'}"
    old = os.getcwd()
    os.chdir(where)
    try:
        argv = ["--profile", "tiny", "--split", "forget10", "--methods", ",".join(METHODS), "--searches", "2",
                "--trials", "2", "--seeds", str(SEEDS), "--steps", "2", "--attacks", "none", "--cache-dir", cache_dir,
                "--space", f"ofmu={SPACES_DIR / 'smol' / 'ofmu.yaml'}", "--space", f"graddiff={wrecking}",
                "--tracking-uri", uri, "--sweeps-dir", str(where / "sweeps"), "--out", str(where / "RESULTS.md")]
        assert _study_module().main(argv) == 0
    finally:
        os.chdir(old)
    return uri, where / "RESULTS.md"


def _table(text: str, header: str) -> list[list[str]]:
    """The rows of the first markdown table after the line `header`, as lists of cells."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    table = next(i for i in range(start, len(lines)) if lines[i].startswith("|"))
    rows = []
    for line in lines[table + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def _store(uri: str) -> dict:
    """Per search (its sweep) and method: the trial runs in order and the re-runs, read straight from MLflow."""
    client = connect(uri)
    experiment = client.get_experiment_by_name("synth-tofu/forget10").experiment_id
    out = {}
    for search in (1, 2):
        sweep = f"verdict-forget10-search{search}"
        runs = find_runs(client, experiment, ofmu__sweep=sweep)
        parent = next(r for r in runs if r.data.tags["ofmu.kind"] == "method")
        target = (parent.data.metrics["target/log10_forget_quality"], parent.data.metrics["target/model_utility"])
        of = {(kind, m): [r for r in runs if r.data.tags["ofmu.kind"] == kind and r.data.tags["method"] == m]
              for kind in ("trial", "seed") for m in METHODS}
        by = {m: {"trials": sorted(of["trial", m], key=lambda r: int(r.data.tags["trial_index"])),
                  "reruns": of["seed", m]} for m in METHODS}
        out[search] = {"target": target, "methods": by}
    return out


def _selected(trials: list, target: tuple[float, float], tau: float = 0.9):
    kept = [r for r in trials if r.data.metrics["model_utility"] >= tau * target[1]]
    return max(kept, key=lambda r: r.data.metrics["log10_forget_quality"]) if kept else None


def test_each_search_reruns_its_headline_trial_on_fresh_seeds(study):
    uri, report = study
    store, text = _store(uri), report.read_text()
    rows = _table(text, "### Selected configurations")
    for search, found in store.items():
        for method, runs in found["methods"].items():
            chosen = _selected(runs["trials"], found["target"])
            row = next(r for r in rows if r[0] == method and r[1] == str(search))
            if chosen is None:  # the wrecked GradDiff: nothing to re-run
                assert method == "graddiff" and row[2] == "none" and not runs["reruns"]
                continue
            assert row[2] == chosen.info.run_name
            assert {r.data.tags["ofmu.source_trial"] for r in runs["reruns"]} == {chosen.data.tags["ray_trial_id"]}
            # sampler seed s re-runs on seeds s*K+1..s*K+K: the two searches share none
            assert sorted(int(r.data.params["seed"]) for r in runs["reruns"]) == [
                (search - 1) * SEEDS + k for k in range(1, SEEDS + 1)]
            mean = statistics.fmean(r.data.metrics["log10_forget_quality"] for r in runs["reruns"])
            assert row[5] == f"{mean:.2f}"


def test_the_headline_intervals_and_the_none_case(study):
    uri, report = study
    store, text = _store(uri), report.read_text()
    rows = {r[0]: r for r in _table(text, "### Headline per method")}
    assert rows["graddiff"][1] == "2/2" and rows["graddiff"][2] == "n/a"  # no search kept its utility
    for method in ("ofmu", "gradascent"):
        groups = [[r.data.metrics["log10_forget_quality"] for r in s["methods"][method]["reruns"]]
                  for s in store.values()]
        interval = verdict.bootstrap(groups, seed=0)  # None only if every re-run scored the same
        assert rows[method][1] == "0/2" and rows[method][2] == str(interval or "n/a")
        if interval:
            assert interval.mean == pytest.approx(statistics.fmean(statistics.fmean(g) for g in groups))
            assert interval.low <= interval.mean <= interval.high and interval.runs == 2 * SEEDS


def test_the_verdict_tables(study):
    uri, report = study
    store, text = _store(uri), report.read_text()

    def groups(method: str) -> list:
        return [[r.data.metrics["log10_forget_quality"] for r in s["methods"][method]["reruns"]] or None
                for s in store.values()]

    equal_data = {r[0]: r for r in _table(text, "### OFMU - baseline, at equal data")}
    assert set(equal_data) == {"gradascent", "graddiff"}
    difference = verdict.paired(groups("ofmu"), groups("gradascent"), seed=0)
    expected = statistics.fmean(statistics.fmean(a) - statistics.fmean(b)
                                for a, b in zip(groups("ofmu"), groups("gradascent"), strict=True))
    if difference is None:  # the differences never varied: shown, not called
        assert equal_data["gradascent"][1] == f"{expected:+.2f} (no interval)"
    else:
        assert difference.mean == pytest.approx(expected)
        assert equal_data["gradascent"][1] == (f"{difference.mean:+.2f} [{difference.low:+.2f}, "
                                               f"{difference.high:+.2f}] {verdict.call(difference)}")
    # the wrecked GradDiff selected nothing: it ranks last, so OFMU wins without a difference
    assert equal_data["graddiff"][1:5] == ["win (graddiff none)"] * 4 and equal_data["graddiff"][5] == "4-0-0"
    calls = [c.rsplit(" ", 1)[-1] for c in equal_data["gradascent"][1:5] if not c.endswith("(no interval)")]
    assert equal_data["gradascent"][5] == f"{calls.count('win')}-{calls.count('loss')}-{calls.count('tie')}"
    assert _table(text, "### OFMU - baseline, at equal compute")  # one row per baseline, read from the fronts


def test_the_report_is_logged_and_made_again_the_same(study):
    uri, report = study
    text = report.read_text()
    assert "Do not edit: run it again" in text and "manifest.json` has sha256 `" in text and "Processor: " in text
    for name in ("fronts", "anytime", "attainment"):
        assert (report.parent / "results" / f"forget10_{name}.png").read_bytes()[:4] == b"\x89PNG"
    client = connect(uri)
    experiment = client.get_experiment_by_name("study/verdict").experiment_id
    (run,) = find_runs(client, experiment, ofmu__kind="study-report")
    logged = {f.path for f in client.list_artifacts(run.info.run_id, "report")}
    assert {"report/RESULTS.md", "report/verdict.json", "report/forget10_anytime.png"} <= logged
    assert _study_module().main(["--report-only", "--tracking-uri", uri, "--out", str(report)]) == 0
    assert report.read_text() == text
