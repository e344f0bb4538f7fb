"""`ofmu-ray ablate` on the tiny benchmark: local Ray, Optuna and a SQLite MLflow store, in both modes,
the variants' metrics and plots read back; bad input stops it with one line and exit status 2."""

from __future__ import annotations

import json
import math

import pytest
from mlflow.tracking import MlflowClient

from ofmu_ray.cli import main
from ofmu_ray.errors import UsageError
from ofmu_ray.tune import ablate
from ofmu_ray.tune.config import SweepConfig

SPLITS = ("", "/paraphrase", "/multihop", "/crosslingual")
X, Y = "log10_forget_quality", "model_utility"
VARIANTS = {"decorrelation=signed": "signed", "decorrelation=none": "none"}
# an earlier sweep's two front trials, written as a sweep writes them: A alone dominates the larger
# area above the reference point (15 x 0.3 against 5 x 0.8), so `--base sweep:prior` is A
FLOOR = -20.0
PRIOR = {"A": ({X: -5.0, Y: 0.3}, {"lr": "0.0002", "beta": "0.05", "rho0": "0.02", "gamma_rho": "1.2",
                                   "inner_steps": "3", "descent_steps": "1"}),
         "B": ({X: -15.0, Y: 0.8}, {"lr": "0.0005", "beta": "0.5", "rho0": "1.0", "gamma_rho": "1.5",
                                    "inner_steps": "8", "descent_steps": "2"})}


def _ablate(cache_dir: str, uri: str, *extra: str) -> int:
    return main(["ablate", "--profile", "tiny", "--cache-dir", cache_dir, "--axis", "decorrelation",
                 "--values", "signed,none", "--steps", "2", "--batch-size", "4", "--tracking-uri", uri, *extra])


def _runs(client: MlflowClient, name: str, kind: str) -> list:
    experiment = client.get_experiment_by_name(f"ablate/{name}").experiment_id
    return client.search_runs([experiment], filter_string=f"tags.`ofmu.kind` = '{kind}'")


def _prior_sweep(client: MlflowClient, model: str, name: str = "prior", target: tuple | None = None) -> None:
    """A finished sweep `name` of ofmu on `model` (its parent run and two trial runs); with `target`,
    the target's point logged as a sweep logs it (without: a sweep from before it was)."""
    from ofmu_ray.tracking.mlflow_log import experiment_id

    experiment = experiment_id(client, "synth-tofu/forget10")
    tags = {"ofmu.sweep": name, "method": "ofmu", "model": model, "bench": "synth-tofu"}
    parent = client.create_run(experiment, tags=tags | {"ofmu.kind": "method"}).info.run_id
    client.log_metric(parent, f"reference/{X}", FLOOR)
    for key, value in zip((f"target/{X}", f"target/{Y}"), target or (), strict=False):
        client.log_metric(parent, key, value)
    for i, (trial, (metrics, params)) in enumerate(PRIOR.items()):
        run = client.create_run(experiment, tags=tags | {"ofmu.kind": "trial", "ray_trial_id": trial,
                                                         "trial_index": str(i), "mlflow.parentRunId": parent})
        for key, value in metrics.items():
            client.log_metric(run.info.run_id, key, value)
        for key, value in params.items():
            client.log_param(run.info.run_id, f"method.{key}", value)
        client.set_terminated(run.info.run_id)
    client.set_terminated(parent)


def _png(client: MlflowClient, run_id: str, path: str, where) -> None:
    local = client.download_artifacts(run_id, path, str(where))
    with open(local, "rb") as f:
        assert f.read(4) == b"\x89PNG", path


def test_ablation_held_and_tuned_on_tiny(ray_session, tiny, cache_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the ablations folder and the artifacts land here
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    client = MlflowClient(uri)

    # held: every variant at OFMU's defaults, one seed each; both trials at once on the 2 CPUs
    assert _ablate(cache_dir, uri, "--seeds", "1", "--name", "held", "--json") == 0
    held = json.loads(capsys.readouterr().out)
    assert held["mode"] == "held" and held["base"] == "defaults" and list(held["variants"]) == list(VARIANTS)
    variants = {r.data.tags["variant"]: r for r in _runs(client, "held", "variant")}
    trials = _runs(client, "held", "trial")
    assert set(variants) == set(VARIANTS) and len(trials) == 2
    for name, value in VARIANTS.items():
        (trial,) = [t for t in trials if t.data.tags["mlflow.parentRunId"] == variants[name].info.run_id]
        assert trial.info.status == "FINISHED" and trial.data.params["method.decorrelation"] == value
        assert trial.data.params["method.inner_steps"] == "5"  # the default: nothing else varies
        for split in SPLITS:
            for objective in (X + split, Y + split):
                assert held["variants"][name]["splits"][split][objective] == {
                    "mean": trial.data.metrics[objective], "std": 0.0}
                assert variants[name].data.metrics[f"{objective}/mean"] == trial.data.metrics[objective]
    # the variant was applied: without a similarity term its cosine term is zero at every step
    assert all(v == 0 for _, v in held["ratios"]["decorrelation=none"]["cos_to_forget"])
    assert all(v > 0 for _, v in held["ratios"]["decorrelation=signed"]["cos_to_forget"])
    (comparison,) = _runs(client, "held", "comparison")
    assert comparison.data.metrics[f"{Y}/multihop/mean/decorrelation-none"] == \
        held["variants"]["decorrelation=none"]["splits"]["/multihop"][f"{Y}/multihop"]["mean"]
    assert "Mode **held**" in comparison.data.tags["mlflow.note.content"]
    for plot in ("effects.png", "effects_multihop.png", "ratios.png"):
        _png(client, comparison.info.run_id, f"ablation/{plot}", tmp_path)

    # resuming a finished ablation runs and records nothing again, and says which mode it was
    assert _ablate(cache_dir, uri, "--resume", "--name", "held") == 0
    assert "Mode **held**" in capsys.readouterr().out and len(_runs(client, "held", "trial")) == 2

    # tuned from an earlier sweep's best front configuration: one trial each, which is that configuration
    _prior_sweep(client, tiny.model)
    assert _ablate(cache_dir, uri, "--mode", "tuned", "--trials", "1", "--base", "sweep:prior", "--name", "tuned",
                   "--json") == 0
    tuned = json.loads(capsys.readouterr().out)
    assert tuned["mode"] == "tuned" and tuned["base"] == "sweep:prior (trial A)"
    assert tuned["budget"]["searched"] == ["lr", "beta", "rho0", "gamma_rho", "inner_steps", "descent_steps"]
    variants = {r.data.tags["variant"]: r for r in _runs(client, "tuned", "variant")}
    (comparison,) = _runs(client, "tuned", "comparison")
    for name, value in VARIANTS.items():
        (trial,) = [t for t in _runs(client, "tuned", "trial")
                    if t.data.tags["mlflow.parentRunId"] == variants[name].info.run_id]
        assert {k: float(trial.data.params[f"method.{k}"]) for k in PRIOR["A"][1]} == {
            k: float(v) for k, v in PRIOR["A"][1].items()}
        assert trial.data.params["method.decorrelation"] == value
        for split in SPLITS:
            floor = variants[name].data.metrics[f"reference/{X}{split}"]
            area = max(0.0, trial.data.metrics[X + split] - floor) * max(0.0, trial.data.metrics[Y + split])
            assert math.isclose(tuned["variants"][name]["splits"][split]["hypervolume_floor"], area)
            key = ablate.metric_key({"decorrelation": value})
            assert math.isclose(comparison.data.metrics[f"hypervolume_floor{split}/{key}"], area)
    assert "Mode **tuned**" in comparison.data.tags["mlflow.note.content"]
    for plot in ("headline.png", "front.png", "front_crosslingual.png", "ratios.png"):
        _png(client, comparison.info.run_id, f"ablation/{plot}", tmp_path)

    # a sweep that logged its target's point: the base is its headline trial (B keeps 0.9 x 0.85, A does not)
    _prior_sweep(client, tiny.model, "prior-target", (-20.0, 0.85))
    assert ablate.sweep_base(client, "synth-tofu", "forget10", "prior-target", "ofmu", tiny.model)[1] == (
        "sweep:prior-target (trial B)")
    with pytest.raises(UsageError, match="no trial of ofmu kept 0.99 x the target's utility"):
        ablate.sweep_base(client, "synth-tofu", "forget10", "prior-target", "ofmu", tiny.model, 0.99)

    # a sweep that is not there: one line, status 2, and nothing recorded is lost or added
    before = len(client.search_runs([e.experiment_id for e in client.search_experiments()], max_results=1000))
    assert _ablate(cache_dir, uri, "--base", "sweep:nope", "--name", "nope") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("ofmu-ray ablate: error: --base sweep:nope: no sweep 'nope' of ofmu")
    assert len(client.search_runs([e.experiment_id for e in client.search_experiments()], max_results=1000)) == before
    assert not (tmp_path / "ablations" / "nope").exists()


@pytest.mark.parametrize("argv, message", [
    (["--axis", "decorelation"], "--axis decorelation: not a ofmu hyper-parameter; did you mean 'decorrelation'?"),
    (["--axis", "eta_in"], "--axis eta_in: no longer a ofmu hyper-parameter: use lr"),
    (["--axis", "inner_steps", "--values", "0,5"], "--values inner_steps=0: OFMUConfig.inner_steps must be >= 1"),
    (["--axis", "beta", "--values", "0.1,lots"], "--values beta=lots: OFMUConfig.beta must be float"),
    (["--axis", "beta"], "--axis beta is numeric: give its values"),
    (["--axis", "hessian", "--values", "exact,exact"], "--values hessian: at least two different values"),
    (["--axis", "hessian", "--axis", "beta", "--values", "exact,no_third"], "--values: one comma-separated list"),
    (["--axis", "hessian", "--trials", "3"], "--seeds is for --mode held, --trials for --mode tuned"),
    (["--axis", "hessian", "--base", "defaults", "lr=2"], "--base defaults lr=2: defaults, sweep:NAME"),
    (["--axis", "hessian", "--base", "lr=20"], "--base: OFMUConfig.lr must be <= 10.0"),
])
def test_bad_input_is_one_line_and_status_2(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["ablate", "--profile", "tiny", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"ofmu-ray ablate: error: {message}"), err
    assert not any(tmp_path.iterdir())  # no store, no ablation folder


def test_two_axes_make_a_grid_and_its_effect_plot(tmp_path):
    from ofmu_ray.tracking.plots import plot_effects

    cfg = SweepConfig("synth-tofu", "tiny", "forget10", ("ofmu",))
    values = ablate.parse_axes("ofmu", ["decorrelation", "inner_steps"], ["signed,none", "2,5"])
    grid = ablate.make_ablation(cfg, ("decorrelation", "inner_steps"), values, {"lr": "3e-4"}, "lr=3e-4", "held", 2)
    assert [ablate.label(v) for v in grid.variants()] == [
        "decorrelation=signed,inner_steps=2", "decorrelation=signed,inner_steps=5",
        "decorrelation=none,inner_steps=2", "decorrelation=none,inner_steps=5"]
    assert grid.base == {"lr": 3e-4}  # typed as the field
    assert ablate.metric_key(grid.variants()[0]) == "decorrelation-signed_inner_steps-2"
    lines = {"inner_steps=2": [("signed", -3.0, 0.5), ("none", -4.0, 0.2)],
             "inner_steps=5": [("signed", -2.0, 0.1), ("none", -5.0, 0.3)]}
    path = plot_effects({X: lines, Y: lines}, "decorrelation", "grid", tmp_path / "effects.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
    space = tmp_path / "lr.yaml"  # a space with nothing besides the axis: a tuned ablation would search nothing
    space.write_text("lr: {loguniform: [1.0e-5, 1.0e-3]}\n")
    only_lr = SweepConfig("synth-tofu", "tiny", "forget10", ("ofmu",), spaces={"ofmu": str(space)})
    with pytest.raises(ValueError, match="no dimension besides lr to search"):
        ablate.make_ablation(only_lr, ("lr",), ((1e-4, 1e-3),), {}, "defaults", "tuned", 1)
    held = tmp_path / "held.yaml"  # the space holds the setting the ablation varies
    held.write_text("lr: {loguniform: [1.0e-5, 1.0e-3]}\nhessian: {fixed: finite_diff}\n")
    holds = SweepConfig("synth-tofu", "tiny", "forget10", ("ofmu",), spaces={"ofmu": str(held)})
    with pytest.raises(ValueError, match="the space holds hessian fixed, which the ablation varies"):
        ablate.make_ablation(holds, ("hessian",), (("exact", "finite_diff"),), {}, "defaults", "tuned", 1)
