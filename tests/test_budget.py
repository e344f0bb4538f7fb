"""Budgets: in forget batches or in epochs, consumed exactly, and what they cost in compute."""

from __future__ import annotations

import math

import pytest

from ofmu_ray import runs
from ofmu_ray.cli import main
from ofmu_ray.errors import UsageError
from ofmu_ray.tune.config import Objectives
from ofmu_ray.tune.pareto import equal_compute, summarize_fronts
from ofmu_ray.tune.results import format_table


def test_a_budget_is_in_steps_or_in_epochs_not_both(capsys):
    assert main(["unlearn", "--profile", "tiny", "--method", "gradascent", "--steps", "2", "--epochs", "1"]) == 2
    assert "--steps or --epochs, not both" in capsys.readouterr().err
    with pytest.raises(UsageError, match="must be positive"):
        runs.check_budget(None, 0.0)


def test_epochs_are_passes_over_the_forget_split(tiny):
    rows = len(tiny.data()["forget10"])
    assert runs.budget_steps(tiny, "forget10", 16, epochs=1) == math.ceil(rows / 16)
    assert runs.budget_steps(tiny, "forget10", 16) == math.ceil(10 * rows / 16)  # OpenUnlearning's 10 epochs
    assert runs.budget_steps(tiny, "forget05", 4, epochs=2.5) == math.ceil(2.5 * len(tiny.data()["forget05"]) / 4)
    assert runs.budget_steps(tiny, "forget10", 16, steps=7) == 7


@pytest.mark.parametrize(("method", "low", "high"), [("gradascent", 0.9, 1.5), ("ofmu", 4.0, 40.0)])
def test_a_run_counts_its_forget_batches_and_gradient_equivalent_passes(tiny, method, low, high):
    """Gradient ascent costs one forward and backward pass a step, the unit; OFMU's steps (one
    ascent, one descent here), with a retain gradient and Hessian-vector products, several."""
    overrides = {"inner_steps": "1"} if method == "ofmu" else {}
    spec = runs.run_spec(tiny, split="forget10", method=method, overrides=overrides, steps=2, batch_size=4,
                         evaluate=False)
    metrics, _ = runs.run(tiny, spec)
    assert metrics["forget_batches"] == 2
    assert low <= metrics["grad_evals"] / 2 <= high, metrics["grad_evals"]


def test_equal_compute_takes_each_methods_trials_in_order_up_to_the_least_total():
    trials = {"cheap": [{"flops": 1.0, "x": -5.0, "y": 0.5}, {"flops": 1.0, "x": -1.0, "y": 0.5}] * 2,
              "dear": [{"flops": 3.0, "x": -4.0, "y": 0.5}, {"flops": 3.0, "x": -2.0, "y": 0.5}]}
    budget, fits = equal_compute(trials)
    assert budget == 4.0 and fits == {"cheap": 4, "dear": 1}
    # target (-10, 0.5): the utility floor is 0.45, and the anchored box 10 x 0.05
    fronts = summarize_fronts(trials, {"": -10.0}, Objectives("x", "y"), {"": (-10.0, 0.5)}, 0.9, 0.0)[""]["methods"]
    assert fronts["dear"]["hypervolume_floor"] == pytest.approx(8 * 0.5)  # both trials
    assert fronts["dear"]["hypervolume_floor_equal_compute"] == pytest.approx(6 * 0.5)  # the first alone
    assert fronts["dear"]["fq_at_kept_utility"] == -2.0 and fronts["dear"]["fq_at_kept_utility_equal_compute"] == -4.0
    # the trial that gives each headline: the study reads the other split keys from it
    dear = fronts["dear"]
    assert dear["fq_at_kept_utility_trial"] == 1 and dear["fq_at_kept_utility_equal_compute_trial"] == 0
    assert fronts["dear"]["hypervolume"] == pytest.approx(0.8) and fronts["dear"]["hypervolume_equal_compute"] == (
        pytest.approx(0.6))
    assert fronts["cheap"]["hypervolume_equal_compute"] == fronts["cheap"]["hypervolume"]
    assert math.isnan(equal_compute({"old": [{"x": 1.0}]})[0])  # a sweep from before FLOPs were counted


def test_a_method_whose_first_trial_exceeds_the_equal_compute_budget_shows_none_fits():
    """Not a hypervolume of 0, which reads as a method that failed (the demo's OFMU: each trial
    spent more than the least any method spent on all its trials)."""
    trials = {"cheap": [{"flops": 1.0, "x": -1.0, "y": 0.5}] * 2, "dear": [{"flops": 5.0, "x": -1.0, "y": 0.5}]}
    summary = summarize_fronts(trials, {"": -10.0}, Objectives("x", "y"), {"": (-10.0, 0.5)}, 0.9, 0.0)
    assert summary[""]["methods"]["dear"]["trials_equal_compute"] == 0
    rows = {line.split()[0]: line for line in format_table(summary).splitlines()[2:5]}
    assert "none fits" in rows["dear"] and "0.000" not in rows["dear"].split("-1.00")[-1]
    assert "-1.00 / 0.900 (2 tr)" in rows["cheap"]
