"""A new benchmark family is one module and one registry line: the toy family (`toy_family.py`),
registered, is prepared, unlearned, logged and evaluated by the commands that know nothing of it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from toy_family import TOY

from ofmu_ray.cli import main
from ofmu_ray.families import FAMILIES


def test_prepare_unlearn_and_evaluate_a_registered_toy_family(monkeypatch, mlflow_uri, tmp_path, capsys):
    monkeypatch.setitem(FAMILIES, "toy", TOY)  # the registry line
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        main(["unlearn", "--help"])
    assert "synth-wmdp,wmdp,digits,cifar10,cifar100,toy}" in capsys.readouterr().out  # listed, with its help
    cache = ["--bench", "toy", "--cache-dir", str(tmp_path / "cache")]

    assert main(["prepare", *cache, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["bench"] == "toy" and set(report["metrics"]["target"]) == {"forget_error", "retain_acc"}

    argv = ["unlearn", *cache, "--method", "gradascent", "--set", "lr=0.01", "--batch-size", "8",
            "--tracking-uri", mlflow_uri, "--json"]
    assert main(argv) == 0
    run = json.loads(capsys.readouterr().out)
    assert run["step"] == TOY.default_steps and {"forget_error", "retain_acc"} <= set(run)
    model_dir = Path(run["model_dir"])
    assert {"TOY_EVAL.json", "TOY_SUMMARY.json", "history.json", "run.json"} <= {p.name for p in model_dir.iterdir()}
    client = MlflowClient(mlflow_uri)
    (logged,) = client.search_runs([client.get_experiment_by_name("toy/quarter").experiment_id])
    assert logged.data.metrics["forget_error"] == run["forget_error"] and logged.data.tags["bench"] == "toy"
    assert {a.path for a in client.list_artifacts(logged.info.run_id, "eval")} == {
        "eval/TOY_EVAL.json", "eval/TOY_SUMMARY.json", "eval/history.json"}

    assert main(["eval", *cache, "--evaluate", str(model_dir), "--out", str(tmp_path / "eval"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == {k: run[k] for k in summary}  # the saved model scores what the run's evaluation did
    assert json.loads((tmp_path / "eval" / "TOY_SUMMARY.json").read_text()) == summary

    assert main(["unlearn", *cache, "--method", "npo"]) == 2  # what the family's modality rules out
    assert "npo cannot unlearn from images (toy)" in capsys.readouterr().err
    assert main(["prepare", *cache, "--model", "x"]) == 2  # an option its bench does not take
    assert "--model: for --bench synth-tofu, tofu, synth-wmdp, wmdp, not toy" in capsys.readouterr().err
