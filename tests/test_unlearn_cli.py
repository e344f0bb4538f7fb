"""`ofmu-ray unlearn`: one Ray Train run, evaluated, logged to a real SQLite MLflow store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from openunlearning import assert_openunlearning_reads

from ofmu_ray.cli import main


def test_unlearn_logs_one_evaluated_run(ray_session, tiny, cache_dir, mlflow_uri, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default artifact folder lands here
    argv = ["unlearn", "--profile", "tiny", "--cache-dir", cache_dir, "--method", "graddiff",
            "--set", "alpha=2", "--steps", "3", "--batch-size", "4", "--tracking-uri", mlflow_uri, "--json"]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    client = MlflowClient(mlflow_uri)
    experiment = client.get_experiment_by_name("synth-tofu/forget10")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_id == printed["mlflow_run_id"] and run.info.status == "FINISHED"
    assert run.data.tags["method"] == "graddiff" and run.data.tags["world_size"] == "1"
    assert run.data.params["method.alpha"] == "2.0" and run.data.params["steps"] == "3"
    for key in ("log10_forget_quality", "model_utility", "forget_quality/multihop", "privleak", "final/loss"):
        assert run.data.metrics[key] == printed[key]
    assert run.data.metrics["log10_forget_quality"] < 0
    assert_openunlearning_reads(Path(printed["model_dir"]) / "TOFU_EVAL.json")


def test_bad_hyper_parameter_fails_before_anything_runs(tmp_path, mlflow_uri, capsys):
    argv = ["unlearn", "--method", "ofmu", "--set", "betta=1", "--tracking-uri", mlflow_uri,
            "--cache-dir", str(tmp_path / "cache")]
    assert main(argv) == 2
    assert "did you mean 'beta'" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists() and not (tmp_path / "mlruns.db").exists()


def test_a_bad_space_file_names_file_and_key_before_anything_runs(tiny, cache_dir, mlflow_uri, tmp_path, capsys,
                                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)
    space = tmp_path / "mine.yaml"
    space.write_text("betta: {uniform: [0.1, 1.0]}\n")
    argv = ["sweep", "--cache-dir", cache_dir, "--methods", "ofmu,npo", "--space", f"ofmu={space}",
            "--tracking-uri", mlflow_uri]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert str(space) in err and "'betta' is not a ofmu hyper-parameter" in err
    assert not (tmp_path / "mlruns.db").exists() and not (tmp_path / "sweeps").exists()
    assert main([*argv[:-4], "--space", f"rmu={space}"]) == 2
    assert "--space for rmu, which this sweep does not run" in capsys.readouterr().err
    assert main([*argv[:-2], "--name", "my sweep"]) == 2
    assert "--name 'my sweep': use letters" in capsys.readouterr().err



def test_bf16_runs_the_method_and_the_evaluation_in_bf16(tiny, cache_dir, mlflow_uri, tmp_path, capsys,
                                                         monkeypatch):
    import math

    from safetensors import safe_open

    monkeypatch.chdir(tmp_path)
    argv = ["unlearn", "--profile", "tiny", "--cache-dir", cache_dir, "--method", "npo",
            "--steps", "2", "--batch-size", "4", "--dtype", "bf16", "--json", "--tracking-uri", mlflow_uri]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert math.isfinite(printed["log10_forget_quality"]) and 0 < printed["model_utility"] <= 1
    with safe_open(f"{printed['model_dir']}/model.safetensors", "pt") as f:
        assert {str(f.get_tensor(k).dtype) for k in f.keys()} == {"torch.bfloat16"}
    assert (tiny.root / "eval" / "oracle-forget10-forget10-bf16" / "TOFU_EVAL.json").is_file()


@pytest.mark.parametrize("method", ["ofmu", "npo"])
def test_bf16_mixed_keeps_fp32_weights_and_runs_each_step_in_bf16(tiny, method):
    """The GPU path's autocast, checked on CPU (torch autocasts to bf16 there too): OFMU's Hessian-vector
    products and NPO's reference pass run, the matmuls run in bf16, the weights stay fp32."""
    import math

    import torch

    from ofmu_ray.methods import build_config, get_method
    from ofmu_ray.models.factory import load_causal_lm, load_tokenizer
    from ofmu_ray.train.loop import unlearn
    from ofmu_ray.train.task import batches

    model, tok = load_causal_lm(tiny.model_dir("target"), "bf16-mixed"), load_tokenizer(tiny.model_dir("target"))
    data = tiny.data()
    cls, cfg = get_method(method), build_config(method)
    cls.prepare_model(model, cfg)
    reference = load_causal_lm(tiny.model_dir("target")).requires_grad_(False) if cls.needs_reference else None
    seen = set()
    model.lm_head.register_forward_hook(lambda module, args, out: seen.add(out.dtype))
    history = unlearn(cls(model, cfg, reference), batches(tok, data["forget10"], 4),
                      batches(tok, data["retain90"], 4, 1), 2, autocast="cpu")
    assert seen == {torch.bfloat16}
    assert all(math.isfinite(v) for logs in history for v in logs.values())
    assert {p.dtype for p in model.parameters()} == {torch.float32}
