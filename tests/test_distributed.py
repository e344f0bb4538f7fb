"""Ray Train data parallelism: two workers compute what one worker computes on the global batch; the
run's checkpoints (the model, the training state and the run's configuration) and its resumption."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from ofmu_ray import runs
from ofmu_ray.errors import UsageError
from ofmu_ray.families import FAMILIES
from ofmu_ray.models.factory import load_causal_lm
from ofmu_ray.train.checkpoint import config_of, load_train_state
from ofmu_ray.train.loop import run_worker
from ofmu_ray.train.spec import RunSpec

TOFU = FAMILIES["synth-tofu"]


def _params(path) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in load_causal_lm(path).parameters()])


# PDU: its dual variable, moved every step from the global retain loss; UNDIAL: the reference's logits on each
# rank's shard
@pytest.mark.parametrize("method, overrides", [("graddiff", {}), ("ofmu", {"inner_steps": 2}),
                                               ("pdu", {"dual_warmup": 0.0, "dual_lr": 5.0}), ("undial", {})])
def test_two_workers_equal_one_worker_on_the_global_batch(ray_session, tiny, tmp_path, method, overrides):
    spec = runs.run_spec(tiny, split="forget10", method=method, overrides=overrides, steps=4, batch_size=4,
                         evaluate=False)
    one, one_dir = runs.run(tiny, spec, workers=1, storage=tmp_path / "one")
    two, two_dir = runs.run(tiny, spec, workers=2, storage=tmp_path / "two")
    start, p1, p2 = _params(tiny.model_dir("target")), _params(one_dir), _params(two_dir)
    update = (p1 - start).norm()
    assert update > 0.05  # the runs did move the model ...
    assert (p1 - p2).norm() < 1e-4 * update  # ... and the same way (float32 reduction order aside)
    assert one["step"] == two["step"] == 4
    assert "worker_start_seconds" not in one and two["worker_start_seconds"] > 0  # a group's start-up, measured
    for key in set(one) - {"unlearn_seconds", "load_seconds"}:  # the global batch's numbers, not rank 0's share
        assert two[key] == pytest.approx(one[key], rel=1e-3, abs=1e-6), key
    if method == "pdu":  # lambda moved, and by the same steps on two workers (rank 0's) as in one process
        assert one["final/dual"] != 1.0 and two["final/dual"] == pytest.approx(one["final/dual"], rel=1e-4)


def test_periodic_checkpoints_evaluation_and_the_best_model(tiny, tmp_path):
    spec = runs.run_spec(tiny, split="forget10", method="gradascent", overrides={"lr": 1e-3}, steps=4, batch_size=4,
                         eval_every=2, checkpoint_every=1, keep_best="log10_forget_quality")
    metrics, final = runs.run(tiny, spec, storage=tmp_path)
    assert sorted(p.name for p in (tmp_path / "unlearn").iterdir()) == [f"checkpoint_{s:06d}" for s in (1, 2, 3, 4)]
    assert (final / "model.safetensors").is_file() and final.name == "checkpoint_000004"
    best = json.loads((final / "best" / "best.json").read_text())
    assert best["step"] in (2, 4) and metrics["best/step"] == best["step"]
    assert best["log10_forget_quality"] >= metrics["log10_forget_quality"]  # the final one was a candidate
    assert (final / "best" / "model.safetensors").is_file()
    assert json.loads((final / "metrics.json").read_text()) == pytest.approx(metrics)
    assert len(json.loads((final / "history.json").read_text())) == 4
    # every checkpoint records the run it belongs to, as nanoGPT's do
    assert json.loads((final / "run.json").read_text()) == json.loads(config_of(spec))
    assert load_train_state(tmp_path / "unlearn" / "checkpoint_000002")["config"] == config_of(spec)


@pytest.mark.parametrize("method, overrides", [("npo", {}), ("ofmu", {"inner_steps": 2})])
def test_a_run_resumed_from_its_checkpoint_ends_as_the_uninterrupted_run(tiny, tmp_path, method, overrides):
    """What Ray Train does after a worker dies, in one process: the optimizer moments (NPO), OFMU's
    penalty schedule, the RNG and the data order all go on from the checkpoint."""
    spec = runs.run_spec(tiny, split="forget10", method=method, overrides=overrides, steps=6, batch_size=4,
                         checkpoint_every=4, evaluate=False)

    def keep(reports: list, tag: str):
        def report(metrics: dict, folder) -> None:
            kept = shutil.copytree(folder, tmp_path / f"{tag}{metrics['step']}") if folder else None
            reports.append((metrics, kept))
        return report

    whole, resumed = [], []
    run_worker(spec, TOFU.make_task, 0, 1, keep(whole, "whole"))
    (middle, checkpoint), (end, final) = whole[0], whole[-1]
    assert middle["step"] == 4 and (checkpoint / "train_state.pt").is_file()
    state = load_train_state(checkpoint)
    run_worker(spec, TOFU.make_task, 0, 1, keep(resumed, "resumed"), resume_from=state)
    again, again_dir = resumed[-1]
    assert again["resumed_from_step"] == 4 and again["step"] == end["step"] == 6
    assert torch.equal(_params(final), _params(again_dir))
    assert json.loads((again_dir / "history.json").read_text()) == json.loads((final / "history.json").read_text())
    assert "resumed_from_step" not in end
    assert again["unlearn_seconds"] > state["seconds"] > 0  # the run's cost includes the steps before the restart
    other = runs.run_spec(tiny, split="forget10", method=method, overrides=overrides, steps=6, batch_size=4,
                          checkpoint_every=4, evaluate=False, seed=1)
    with pytest.raises(ValueError, match="the checkpoint was taken by another run"):
        run_worker(other, TOFU.make_task, 0, 1, keep([], "other"), resume_from=state)


def test_bad_run_settings_are_refused(tiny):
    with pytest.raises(UsageError, match="keep_best 'mu': TOFU-style benchmarks evaluate log10_forget_quality"):
        runs.run_spec(tiny, split="forget10", method="graddiff", steps=2, eval_every=1, keep_best="mu")
    with pytest.raises(UsageError, match=r"rl cannot unlearn from question-answer rows \(synth-tofu\)"):
        runs.run_spec(tiny, split="forget10", method="rl", steps=2)
    with pytest.raises(ValueError, match="need evaluate=True"):
        RunSpec(prepared_root=str(tiny.root), split="forget10", method="graddiff", evaluate=False, eval_every=2)
