"""Fronts and hypervolumes: what non-dominated means, and areas that can be checked by hand."""

from __future__ import annotations

import math

import pytest

from ofmu_ray.metrics.formulas import log10_fq_floor
from ofmu_ray.tune.config import Objectives
from ofmu_ray.tune.pareto import front, hypervolume, summarize_fronts


def test_front_keeps_the_non_dominated_once_and_skips_nan():
    points = [(-5.0, 0.9), (-5.0, 0.9), (-2.0, 0.5), (-3.0, 0.4), (math.nan, 1.0), (-1.0, 0.1)]
    assert front(points) == [0, 2, 5]


def test_hypervolume_is_the_union_of_boxes_above_the_reference():
    ref = (-10.0, 0.0)
    assert hypervolume([(-4.0, 0.5)], ref) == pytest.approx(6 * 0.5)
    two = hypervolume([(-4.0, 0.5), (-2.0, 0.25)], ref)
    assert two == pytest.approx(6 * 0.5 + 2 * 0.25)
    assert hypervolume([(-4.0, 0.5), (-2.0, 0.25), (-5.0, 0.2)], ref) == pytest.approx(two)  # dominated
    assert hypervolume([(-20.0, 0.5)], ref) == 0.0  # below the floor adds nothing


def test_the_floor_is_the_ks_p_value_of_fully_separated_samples():
    assert log10_fq_floor(40) == pytest.approx(-22.73, abs=0.01)
    assert log10_fq_floor(200) < log10_fq_floor(40)


def test_combined_front_spans_methods():
    trials = {"a": [{"log10_forget_quality": -4.0, "model_utility": 0.5}],
              "b": [{"log10_forget_quality": -2.0, "model_utility": 0.25},
                    {"log10_forget_quality": -6.0, "model_utility": 0.2}]}
    summary = summarize_fronts(trials, {"": -10.0}, Objectives("log10_forget_quality", "model_utility"))[""]["methods"]
    assert summary["a"]["hypervolume"] == pytest.approx(3.0) and summary["b"]["front"] == [0]  # (-6, 0.2) is dominated
    assert summary["all"]["front"] == [("a", 0), ("b", 0)]
    assert summary["all"]["hypervolume"] == pytest.approx(3.5) and summary["all"]["trials"] == 3


def test_a_robust_objective_names_its_fronts_without_a_second_prefix():
    robust = Objectives("robust/log10_forget_quality", "model_utility")  # --objectives robust/...
    assert robust.names() == ("robust/log10_forget_quality", "model_utility")
    assert robust.names("/robust") == ("robust/log10_forget_quality", "model_utility")
    assert robust.names("/multihop") == ("log10_forget_quality/multihop", "model_utility/multihop")
    assert Objectives("ua", "ta").names("/robust") == ("robust/ua", "ta")
