"""Ray Train data parallelism: two workers compute what one worker computes on the global batch."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from ofmu_ray.models import load_causal_lm
from ofmu_ray.train.distributed import RunSpec, load_train_state, run, run_worker


def _params(path) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in load_causal_lm(path).parameters()])


@pytest.mark.parametrize("method, overrides", [("graddiff", {}), ("ofmu", {"inner_steps": 2})])
def test_two_workers_equal_one_worker_on_the_global_batch(ray_session, tiny, tmp_path, method, overrides):
    spec = RunSpec(str(tiny.model_dir("target")), str(tiny.root / "data"), "forget10", "retain90", method,
                   overrides, steps=4, batch_size=4)
    one, one_dir = run(spec, workers=1, storage=tmp_path / "one")
    two, two_dir = run(spec, workers=2, storage=tmp_path / "two")
    start, p1, p2 = _params(tiny.model_dir("target")), _params(one_dir), _params(two_dir)
    update = (p1 - start).norm()
    assert update > 0.05  # the runs did move the model ...
    assert (p1 - p2).norm() < 1e-4 * update  # ... and the same way (float32 reduction order aside)
    assert one["step"] == two["step"] == 4
    for key in set(one) - {"unlearn_seconds"}:  # logged numbers are the global batch's, not rank 0's share
        assert two[key] == pytest.approx(one[key], rel=1e-3, abs=1e-6), key


def test_periodic_checkpoints_evaluation_and_the_best_model(tiny, tmp_path):
    spec = RunSpec(str(tiny.model_dir("target")), str(tiny.root / "data"), "forget10", "retain90", "gradascent",
                   {"lr": 1e-3}, steps=4, batch_size=4, prepared_root=str(tiny.root), eval_every=2,
                   checkpoint_every=1, keep_best="log10_forget_quality")
    metrics, final = run(spec, storage=tmp_path)
    assert sorted(p.name for p in (tmp_path / "unlearn").iterdir()) == [f"checkpoint_{s:06d}" for s in (1, 2, 3, 4)]
    assert (final / "model.safetensors").is_file() and final.name == "checkpoint_000004"
    best = json.loads((final / "best" / "best.json").read_text())
    assert best["step"] in (2, 4) and metrics["best/step"] == best["step"]
    assert best["log10_forget_quality"] >= metrics["log10_forget_quality"]  # the final one was a candidate
    assert (final / "best" / "model.safetensors").is_file()
    assert json.loads((final / "metrics.json").read_text()) == pytest.approx(metrics)
    assert len(json.loads((final / "history.json").read_text())) == 4


@pytest.mark.parametrize("method, overrides", [("npo", {}), ("ofmu", {"inner_steps": 2})])
def test_a_run_resumed_from_its_checkpoint_ends_as_the_uninterrupted_run(tiny, tmp_path, method, overrides):
    """What Ray Train does after a worker dies, in one process: the optimizer moments (NPO), OFMU's
    penalty schedule, the RNG and the data order all go on from the checkpoint."""
    spec = RunSpec(str(tiny.model_dir("target")), str(tiny.root / "data"), "forget10", "retain90", method,
                   overrides, steps=6, batch_size=4, checkpoint_every=4)

    def keep(reports: list, tag: str):
        def report(metrics: dict, folder) -> None:
            kept = shutil.copytree(folder, tmp_path / f"{tag}{metrics['step']}") if folder else None
            reports.append((metrics, kept))
        return report

    whole, resumed = [], []
    run_worker(spec, 0, 1, keep(whole, "whole"))
    (middle, checkpoint), (end, final) = whole[0], whole[-1]
    assert middle["step"] == 4 and (checkpoint / "train_state.pt").is_file()
    state = load_train_state(checkpoint)
    run_worker(spec, 0, 1, keep(resumed, "resumed"), resume=state)
    again, again_dir = resumed[-1]
    assert again["resumed_from_step"] == 4 and again["step"] == end["step"] == 6
    assert torch.equal(_params(final), _params(again_dir))
    assert json.loads((again_dir / "history.json").read_text()) == json.loads((final / "history.json").read_text())
    assert "resumed_from_step" not in end
    assert again["unlearn_seconds"] > state["seconds"] > 0  # the run's cost includes the steps before the restart


def test_bad_run_settings_are_refused():
    with pytest.raises(ValueError, match="keep_best 'mu'"):
        RunSpec("m", "d", "forget10", "retain90", "graddiff", prepared_root="p", keep_best="mu")
    with pytest.raises(ValueError, match="need a prepared benchmark"):
        RunSpec("m", "d", "forget10", "retain90", "graddiff", eval_every=2)
