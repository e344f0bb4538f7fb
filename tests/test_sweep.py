"""A real sweep: local Ray, Optuna, a SQLite MLflow store, read back and rebuilt by `ofmu-ray pareto`."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from ofmu_ray.cli import main
from ofmu_ray.families import FAMILIES
from ofmu_ray.methods import build_config
from ofmu_ray.methods.ofmu import OFMUConfig
from ofmu_ray.tune.config import Objectives
from ofmu_ray.tune.pareto import summarize_fronts

HARD = ("paraphrase", "multihop", "crosslingual")
# bench -> (its prepared benchmark's fixture, the methods swept, what every trial run logs); synth-tofu's
# is the session's shared sweep (`swept`), the others are run here with 2 trials of 5 batches a method,
# attacked (synth-tofu's attacked sweep: test_attacks.py)
FAMILY_SWEEPS = {
    "synth-tofu": ("tiny", ("graddiff", "ofmu"), {"log10_forget_quality", "model_utility", "privleak"}),
    "synth-wmdp": ("synth_wmdp", ("rmu", "ofmu"), {"forget_acc", "utility_acc", "forget_error"}),
    "digits": ("digits", ("ofmu", "gradascent"), {"ua", "ra", "ta", "mia_efficacy", "avg_gap"}),
}


def family_objectives(family, key: str) -> tuple[str, str]:
    return Objectives(*family.objectives).names(key)


def _runs(uri: str, kind: str, experiment: str = "synth-tofu/forget10") -> list:
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(experiment)
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], filter_string=f"tags.`ofmu.kind` = '{kind}'")


def test_sweep_records_parents_children_and_plots(swept, tmp_path):
    client = MlflowClient(swept)
    parents = _runs(swept, "method")
    assert sorted(r.data.tags["method"] for r in parents) == ["graddiff", "ofmu"]
    children = _runs(swept, "trial")
    assert len(children) == 4 and all(c.info.status == "FINISHED" for c in children)
    for parent in parents:
        mine = [c for c in children if c.data.tags["mlflow.parentRunId"] == parent.info.run_id]
        assert len(mine) == 2 and len({c.data.tags["ray_trial_id"] for c in mine}) == 2
        assert all(c.data.tags["method"] == parent.data.tags["method"] for c in mine)
        assert all(c.data.tags["world_size"] == "1" for c in mine)
        assert parent.info.status == "FINISHED" and "hypervolume_floor" in parent.data.metrics
        # the target's and the oracle's points, for every split key's two objectives
        assert {"target/log10_forget_quality", "target/model_utility", "target/model_utility/multihop",
                "oracle/log10_forget_quality"} <= set(parent.data.metrics)
    for child in children:
        metrics = child.data.metrics
        for name in ("log10_forget_quality", "model_utility", *(f"log10_forget_quality/{h}" for h in HARD),
                     *(f"model_utility/{h}" for h in HARD)):
            assert name in metrics, name
        assert client.get_metric_history(child.info.run_id, "step/loss_f" if child.data.tags["method"] == "ofmu"
                                         else "step/loss")[-1].step == 2
        assert {a.path for a in client.list_artifacts(child.info.run_id, "eval")} >= {"eval/TOFU_EVAL.json"}
        assert metrics["forget_batches"] == 2 and "ofmu.short_budget" not in child.data.tags  # the exact budget
        assert metrics["flops"] > 0 and metrics["grad_evals"] >= 1
    ofmu_children = [c for c in children if c.data.tags["method"] == "ofmu"]
    first = min(ofmu_children, key=lambda c: int(c.data.tags["trial_index"]))
    assert float(first.data.params["method.beta"]) == OFMUConfig().beta  # the default configuration first
    assert "method.decorrelation" not in first.data.params  # not searched (tune_spaces/ofmu.yaml): stays signed
    assert all(c.data.params["method.hessian"] == "finite_diff" for c in ofmu_children)  # held, the first too
    (comparison,) = _runs(swept, "comparison")
    files = {a.path for a in client.list_artifacts(comparison.info.run_id, "pareto")}
    assert {"pareto/front.png", "pareto/front_multihop.png", "pareto/fronts.html", "pareto/fronts.csv"} <= files
    assert "hypervolume_floor/all" in comparison.data.metrics and "hypervolume_floor/multihop/ofmu" in (
        comparison.data.metrics)
    assert "hypervolume/ofmu" in comparison.data.metrics and "hypervolume_equal_compute/ofmu" in comparison.data.metrics
    # what the UI shows of it: the training layout's experiment kind, the sweep's runs view, the fronts
    # as the comparison run's description, every trial as a table
    experiment = client.get_experiment(comparison.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    view = json.loads(experiment.tags["mlflow.sharedViewState.study-forget10"])
    assert view["searchFilter"] == "tags.`ofmu.sweep` = 'study-forget10'"
    assert {"metrics.`log10_forget_quality`", "metrics.`model_utility`", "metrics.`fq_at_kept_utility`"} <= set(
        view["selectedColumns"]) and view["orderByKey"] == "metrics.`fq_at_kept_utility`"
    description = comparison.data.tags["mlflow.note.content"]
    assert all(f"| {m} |" in description for m in ("graddiff", "ofmu")) and "pareto/front.png" in description
    table = json.loads(Path(client.download_artifacts(comparison.info.run_id, "pareto/trials.json", str(tmp_path)))
                       .read_text())
    assert len(table["data"]) == 4 and {"method", "on_front", "log10_forget_quality"} <= set(table["columns"])


def test_pareto_command_equals_a_recomputation_from_the_runs(swept, capsys):
    assert main(["pareto", "--tracking-uri", swept, "--experiment", "synth-tofu/forget10", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)["models"]["tiny-llama-4l"]["fronts"]
    children = sorted(_runs(swept, "trial"), key=lambda c: int(c.data.tags["trial_index"]))
    (parent, *_) = _runs(swept, "method")
    floors = {k[len("reference/log10_forget_quality"):]: v for k, v in parent.data.metrics.items()
              if k.startswith("reference/")}
    assert set(floors) == {"", *(f"/{h}" for h in HARD)}
    trials = {m: [c.data.metrics for c in children if c.data.tags["method"] == m] for m in ("graddiff", "ofmu")}
    metrics, objectives = parent.data.metrics, Objectives("log10_forget_quality", "model_utility")
    targets = {k: (metrics[f"target/{x}"], metrics[f"target/{y}"]) for k in floors for x, y in [objectives.names(k)]}
    expected = summarize_fronts(trials, floors, objectives, targets, 0.9, 0.0, math.log10(0.05))
    for key, summary in expected.items():
        x, y = objectives.names(key)
        summary["oracle"] = {"log10_forget_quality": metrics[f"oracle/{x}"], "model_utility": metrics[f"oracle/{y}"]}
    assert printed == json.loads(json.dumps(expected))
    # what scripts outside the project read, per split key
    for summary in printed.values():
        assert summary["utility_floor"] == 0.9 and set(summary["target"]) == {"log10_forget_quality", "model_utility"}
        for entry in summary["methods"].values():
            assert {"fq_at_kept_utility", "fq_at_kept_utility_trial", "hypervolume", "hypervolume_floor"} <= set(entry)
    assert printed[""]["methods"]["all"]["hypervolume_floor"] >= max(
        printed[""]["methods"][m]["hypervolume_floor"] for m in ("graddiff", "ofmu"))
    best = printed[""]["methods"]["all"]["fq_at_kept_utility"]
    assert best is None or best == max(printed[""]["methods"][m]["fq_at_kept_utility"] or -math.inf
                                       for m in ("graddiff", "ofmu"))


@pytest.mark.parametrize("bench", FAMILY_SWEEPS)
def test_a_sweep_of_each_family_logs_fronts_on_its_own_objectives(bench, request, cache_dir, mlflow_uri, tmp_path,
                                                                  capsys, monkeypatch):
    """Per family: Optuna's objectives and the fronts' reference point are the family's, every trial logs
    its metrics, the comparison run holds each method's hypervolume, and `pareto` rebuilds the fronts,
    the attacks' worst case among them."""
    fixture, methods, logged = FAMILY_SWEEPS[bench]
    prepared, family = request.getfixturevalue(fixture), FAMILIES[bench]
    split = family.default_splits[bench]
    attacks: tuple[str, ...] = ()
    if bench == "synth-tofu":
        uri = request.getfixturevalue("swept")
    else:
        request.getfixturevalue("ray_session")
        monkeypatch.chdir(tmp_path)
        uri, attacks = mlflow_uri, ("relearn", "quant4")
        assert main(["sweep", "--bench", bench, "--cache-dir", cache_dir, "--methods", ",".join(methods),
                     "--trials", "2", "--steps", "5", "--attacks", ",".join(attacks), "--tracking-uri", uri]) == 0
        capsys.readouterr()
    assert main(["pareto", "--tracking-uri", uri, "--experiment", f"{bench}/{split}", "--json"]) == 0
    (fronts,) = [found["fronts"] for found in json.loads(capsys.readouterr().out)["models"].values()]
    floors = family.floors(prepared, split, attacks)
    assert sorted(fronts) == sorted(floors) and fronts[""]["objectives"] == list(family.objectives)
    assert fronts[""]["reference"] == [floors[""], 0.0]
    trials = _runs(uri, "trial", f"{bench}/{split}")
    assert sorted(t.data.tags["method"] for t in trials) == sorted(methods * 2)
    assert all(logged <= set(t.data.metrics) for t in trials)
    if attacks:
        x, y = family.objectives
        assert fronts["/robust"]["objectives"] == [f"robust/{x}", y]
        for t in trials:
            assert t.data.metrics[f"robust/{x}"] == min(t.data.metrics[f"{a}/{x}"] for a in ("none", *attacks))
    (comparison,) = _runs(uri, "comparison", f"{bench}/{split}")
    for method in methods:
        entry = fronts[""]["methods"][method]
        assert comparison.data.metrics[f"hypervolume_floor/{method}"] == entry["hypervolume_floor"]
        assert comparison.data.metrics.get(f"fq_at_kept_utility/{method}") == entry["fq_at_kept_utility"]
    # every family's headline is read at its target's point, which its prepared benchmark gives
    target = family.references(prepared, split, "fp32", attacks)["target"]
    for key in fronts:
        assert list(fronts[key]["target"].values()) == [target[n] for n in family_objectives(family, key)], key


OPENUNLEARNING = ("idkdpo", "undial", "ceu", "wga", "satimp", "pdu")  # issue 48's methods


def test_a_sweep_tunes_openunlearnings_methods_in_their_spaces(ray_session, tiny, cache_dir, mlflow_uri, tmp_path,
                                                               monkeypatch):
    """Two trials of each: its defaults first, then a point of its `tune_spaces/` file."""
    from ofmu_ray.tune.spaces import load_space

    monkeypatch.chdir(tmp_path)
    assert main(["sweep", "--profile", "tiny", "--cache-dir", cache_dir, "--methods", ",".join(OPENUNLEARNING),
                 "--trials", "2", "--steps", "2", "--batch-size", "4", "--tracking-uri", mlflow_uri]) == 0
    trials = _runs(mlflow_uri, "trial")
    assert sorted(t.data.tags["method"] for t in trials) == sorted(OPENUNLEARNING * 2)
    assert all(t.info.status == "FINISHED" and math.isfinite(t.data.metrics["model_utility"]) for t in trials)
    for method in OPENUNLEARNING:
        first, second = sorted((t for t in trials if t.data.tags["method"] == method),
                               key=lambda t: int(t.data.tags["trial_index"]))
        space, defaults = load_space(method), build_config(method)
        for key, dim in space.items():
            assert float(first.data.params[f"method.{key}"]) == getattr(defaults, key), (method, key)
            low, high = dim.values
            assert low <= float(second.data.params[f"method.{key}"]) <= high, (method, key)
        assert any(float(second.data.params[f"method.{k}"]) != getattr(defaults, k) for k in space), method


def test_resume_after_the_driver_is_killed(tiny, cache_dir, mlflow_uri, tmp_path):
    uri = mlflow_uri
    argv = ["sweep", "--profile", "tiny", "--cache-dir", cache_dir, "--methods", "gradascent",
            "--trials", "3", "--steps", "2", "--batch-size", "4", "--concurrency", "1", "--tracking-uri", uri,
            "--name", "interrupted", "--address", "local", "--seeds", "1"]
    driver = subprocess.Popen([sys.executable, "-m", "ofmu_ray.cli", *argv], cwd=tmp_path, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not [r for r in _runs(uri, "trial") if r.info.status == "FINISHED"]:
        assert driver.poll() is None and time.time() < deadline, "the sweep ended before a trial finished"
        time.sleep(0.5)
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray it started, mid-sweep
    driver.wait()
    before = len(_runs(uri, "trial"))
    assert 1 <= before < 3
    resumed = subprocess.run([sys.executable, "-m", "ofmu_ray.cli", "sweep", "--resume", "--name", "interrupted",
                              "--cache-dir", cache_dir, "--tracking-uri", uri, "--address", "local",
                              "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    children = _runs(uri, "trial")
    assert len(children) == 3 and all(c.info.status == "FINISHED" for c in children)
    assert len({c.data.tags["ray_trial_id"] for c in children}) == 3
    printed = json.loads(resumed.stdout)["models"]["tiny-llama-4l"]
    assert printed["fronts"][""]["methods"]["gradascent"]["trials"] == 3
    # the method's Optuna study went on in its storage: each trial told once, none left running
    study = optuna.load_study(study_name="interrupted-tiny-llama-4l.gradascent",
                              storage=f"sqlite:///{tmp_path / 'sweeps' / 'interrupted' / 'optuna.db'}")
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 3 and optuna.trial.TrialState.RUNNING not in states
    told = sorted(tuple(t.values) for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE)
    assert told == sorted((c.data.metrics["log10_forget_quality"], c.data.metrics["model_utility"]) for c in children)
    assert study.metric_names == ["log10_forget_quality", "model_utility"]
    # --seeds 1 (kept in the sweep's settings): every front configuration re-run with a new seed
    ordered = sorted(children, key=lambda c: int(c.data.tags["trial_index"]))
    front = {ordered[i].data.tags["ray_trial_id"] for i in printed["fronts"][""]["methods"]["gradascent"]["front"]}
    reruns = _runs(uri, "seed")
    assert len(reruns) == len(front) and {r.data.tags["ofmu.source_trial"] for r in reruns} == front
    assert [r.data.params["seed"] for r in reruns] == ["1"] * len(front)
    assert {row["source_trial"] for row in printed["seeds"]} == front
    assert all(row["seeds"] == 1 and "model_utility_mean" in row for row in printed["seeds"])


def test_a_trial_killed_for_memory_names_the_fix_and_keeps_the_store(tiny, cache_dir, mlflow_uri, tmp_path):
    """Ray's memory monitor, its threshold set below what the node already uses, kills the first
    trial's process: the sweep stops (not a finished sweep with fewer trials) with a last line naming
    the remedies, and what it recorded stays readable and resumable (its parent run is left open)."""
    env = os.environ | {"RAY_memory_usage_threshold": "0.01", "RAY_memory_monitor_refresh_ms": "100"}
    argv = ["sweep", "--profile", "tiny", "--cache-dir", cache_dir, "--methods", "gradascent", "--trials", "2",
            "--steps", "2", "--batch-size", "4", "--concurrency", "1", "--tracking-uri", mlflow_uri,
            "--name", "too-big", "--address", "local"]
    done = subprocess.run([sys.executable, "-m", "ofmu_ray.cli", *argv], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 1, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ofmu-ray: out of memory: tiny-llama-4l.gradascent: Ray's memory monitor killed a trial")
    assert "--concurrency 1" in last and "ofmu-ray sweep --resume --name too-big" in last
    assert [r.info.status for r in _runs(mlflow_uri, "method")] == ["RUNNING"]
    assert not [r for r in _runs(mlflow_uri, "trial") if r.info.status == "FINISHED"]


def test_models_axis_sweeps_each_model_with_the_same_budget(ray_session, micro, mlflow_uri, tmp_path, capsys,
                                                           monkeypatch):
    """Two model sizes of the micro profile (trained in seconds: the trials only read the folders that
    `prepare` wrote here, so the registered test models need not exist in Ray's workers)."""
    from ofmu_ray.config import MODELS, TinyLlamaSpec

    monkeypatch.setitem(MODELS, "micro-llama-2l", TinyLlamaSpec(layers=2, hidden=32, intermediate=64, heads=2))
    monkeypatch.chdir(tmp_path)
    uri = mlflow_uri
    models = ["micro-llama", "micro-llama-2l"]
    argv = ["sweep", "--profile", micro, "--cache-dir", str(tmp_path / "cache"), "--models", ",".join(models),
            "--methods", "gradascent", "--trials", "2", "--steps", "2", "--batch-size", "4", "--tracking-uri", uri]
    assert main([*argv, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert list(printed["models"]) == models
    parents = _runs(uri, "method")
    assert sorted(r.data.tags["model"] for r in parents) == models
    children = _runs(uri, "trial")
    assert sorted(c.data.tags["model"] for c in children) == sorted(models * 2)
    for parent in parents:  # each model's trials under its own parent
        mine = [c for c in children if c.data.tags["mlflow.parentRunId"] == parent.info.run_id]
        assert len(mine) == 2 and {c.data.tags["model"] for c in mine} == {parent.data.tags["model"]}
    assert sorted(r.data.tags["model"] for r in _runs(uri, "comparison")) == models
    (across,) = _runs(uri, "models")
    for model in models:  # each model read at its own target's point
        value = printed["headline_by_model"][""]["gradascent"][model]
        assert value == printed["models"][model]["fronts"][""]["methods"]["gradascent"]["fq_at_kept_utility"]
        assert across.data.metrics.get(f"fq_at_kept_utility/gradascent/{model}") == value
    targets = [printed["models"][m]["fronts"][""]["target"] for m in models]
    assert all(targets) and targets[0] != targets[1]
    files = {a.path for a in MlflowClient(uri).list_artifacts(across.info.run_id, "models")}
    assert {"models/headline.png", "models/front_gradascent.png", "models/headlines.csv"} <= files
    assert main(["pareto", "--tracking-uri", uri, "--experiment", "synth-tofu/forget10", "--json"]) == 0
    rebuilt = json.loads(capsys.readouterr().out)
    assert rebuilt["headline_by_model"] == printed["headline_by_model"] and rebuilt["models"] == printed["models"]
    assert main(["pareto", "--tracking-uri", uri, "--experiment", "synth-tofu/forget10"]) == 0
    table = capsys.readouterr().out
    assert "=== model micro-llama-2l" in table and "forget quality at kept utility by model" in table


def test_a_diverging_trial_stops_early_is_marked_and_the_sweep_goes_on(ray_session, tiny, cache_dir, mlflow_uri,
                                                                      tmp_path, capsys, monkeypatch):
    """A forget weight of 1e39 overflows float32 at the first step: that trial stops there, is tagged
    `ofmu.diverged` with metric `diverged`, has no objectives to draw on the front (Optuna got the worst
    values), and the default trial beside it finishes normally."""
    monkeypatch.chdir(tmp_path)
    space = tmp_path / "graddiff.yaml"
    space.write_text("gamma: {uniform: [1.0e+39, 2.0e+39]}\n")
    uri = mlflow_uri
    argv = ["sweep", "--profile", "tiny", "--cache-dir", cache_dir, "--methods", "graddiff",
            "--space", f"graddiff={space}", "--trials", "2", "--steps", "3", "--batch-size", "4",
            "--tracking-uri", uri, "--json"]
    assert main(argv) == 0
    front = json.loads(capsys.readouterr().out)["models"]["tiny-llama-4l"]["fronts"][""]["methods"]["graddiff"]
    trials = {r.data.tags["trial_index"]: r for r in _runs(uri, "trial")}
    assert sorted(trials) == ["0", "1"] and all(r.info.status == "FINISHED" for r in trials.values())
    default, wild = trials["0"], trials["1"]
    assert "ofmu.diverged" not in default.data.tags and default.data.metrics["step"] == 3
    assert "ofmu.short_budget" not in default.data.tags and wild.data.tags["ofmu.short_budget"] == "true"
    assert wild.data.tags["ofmu.diverged"] == "true" and wild.data.metrics["diverged"] == 1
    assert wild.data.metrics["step"] == 1 and "model_utility" not in wild.data.metrics
    assert front["front"] == [0]  # only the default trial has objectives


def test_two_sweeps_write_one_sqlite_store_at_once(tiny, cache_dir, mlflow_uri, tmp_path):
    """Two sweep processes (two drivers, two local Rays) on the same SQLite store at the same time:
    both finish, with every trial run of each."""
    uri = mlflow_uri
    drivers = [subprocess.Popen([sys.executable, "-m", "ofmu_ray.cli", "sweep", "--profile", "tiny", "--cache-dir",
                                 cache_dir, "--methods", "gradascent", "--trials", "2", "--steps", "2",
                                 "--batch-size", "4", "--concurrency", "1", "--tracking-uri", uri, "--name", name,
                                 "--address", "local"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True) for name in ("first", "second")]
    for driver in drivers:
        _, err = driver.communicate(timeout=600)
        assert driver.returncode == 0, err[-3000:]
    trials = _runs(uri, "trial")
    assert sorted(t.data.tags["ofmu.sweep"] for t in trials) == ["first", "first", "second", "second"]
    assert all(t.info.status == "FINISHED" and "model_utility" in t.data.metrics for t in trials)
    assert len(_runs(uri, "comparison")) == 2


def _registered_checkpoints(where) -> int:
    """Checkpoints Ray Train has registered (it polls workers every 2 s; one written but not yet
    registered when a worker dies is not resumed from)."""
    count = 0
    for snapshot in where.glob("sweeps/*/runs/*/*/checkpoint_manager_snapshot.json"):
        with contextlib.suppress(ValueError, OSError):  # being rewritten
            count += len(json.loads(snapshot.read_text())["checkpoint_results"])
    return count


def _kill_a_train_worker_after_a_checkpoint(where, killed: list, timeout_s: float = 300) -> None:
    """SIGKILLs one Ray Train worker process once a trial has a registered checkpoint."""
    import psutil

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _registered_checkpoints(where):
            for proc in psutil.process_iter(["pid", "cmdline"]):
                if "RayTrainWorker" in " ".join(proc.info["cmdline"] or []):
                    proc.kill()
                    killed.append(proc.pid)
                    return
        time.sleep(0.05)


def test_a_killed_worker_is_restarted_from_its_checkpoint(ray_session, tiny, cache_dir, mlflow_uri, tmp_path, capsys,
                                                          monkeypatch):
    """A Ray Train worker SIGKILLed mid-trial: Ray Train starts the workers again (`--max-failures 1`),
    they resume from the trial's last checkpoint, and MLflow gets exactly one finished run per trial."""
    import threading

    monkeypatch.chdir(tmp_path)
    uri = mlflow_uri
    killed: list[int] = []
    killer = threading.Thread(target=_kill_a_train_worker_after_a_checkpoint, args=(tmp_path, killed), daemon=True)
    killer.start()
    argv = ["sweep", "--profile", "tiny", "--cache-dir", cache_dir, "--methods", "gradascent",
            "--trials", "1", "--steps", "20", "--batch-size", "4", "--workers", "2", "--checkpoint-every", "5",
            "--max-failures", "1", "--tracking-uri", uri, "--json"]
    assert main(argv) == 0
    killer.join()
    assert killed, "no Ray Train worker was found to kill"
    (run,) = _runs(uri, "trial")
    assert run.info.status == "FINISHED" and run.data.metrics["step"] == 20
    assert run.data.metrics["resumed_from_step"] in (5, 10, 15)  # went on from a checkpoint, not step 0
    assert run.data.tags["world_size"] == "2"
    assert "model_utility" in run.data.metrics
