"""Ray Train data parallelism: two workers compute what one worker computes on the global batch."""

from __future__ import annotations

import json

import pytest
import torch

from ofmu_ray.models import load_causal_lm
from ofmu_ray.train.distributed import RunSpec, run


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
    for key in one:  # logged numbers are the global batch's, not rank 0's share
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


def test_bad_run_settings_are_refused():
    with pytest.raises(ValueError, match="keep_best 'mu'"):
        RunSpec("m", "d", "forget10", "retain90", "graddiff", prepared_root="p", keep_best="mu")
    with pytest.raises(ValueError, match="need a prepared benchmark"):
        RunSpec("m", "d", "forget10", "retain90", "graddiff", eval_every=2)
