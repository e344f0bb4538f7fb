"""Fronts and hypervolumes: what non-dominated means, and areas that can be checked by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ofmu_ray.metrics.formulas import log10_fq_floor
from ofmu_ray.tune.config import Objectives
from ofmu_ray.tune.pareto import front, hypervolume, rank, summarize_fronts
from ofmu_ray.tune.results import format_table


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
    assert summary["a"]["hypervolume_floor"] == pytest.approx(3.0)
    assert summary["b"]["front"] == [0]  # (-6, 0.2) is dominated
    assert summary["all"]["front"] == [("a", 0), ("b", 0)]
    assert summary["all"]["hypervolume_floor"] == pytest.approx(3.5) and summary["all"]["trials"] == 3


def test_a_robust_objective_names_its_fronts_without_a_second_prefix():
    robust = Objectives("robust/log10_forget_quality", "model_utility")  # --objectives robust/...
    assert robust.names() == ("robust/log10_forget_quality", "model_utility")
    assert robust.names("/robust") == ("robust/log10_forget_quality", "model_utility")
    assert robust.names("/multihop") == ("log10_forget_quality/multihop", "model_utility/multihop")
    assert Objectives("ua", "ta").names("/robust") == ("robust/ua", "ta")


FQ_MU = Objectives("log10_forget_quality", "model_utility")
TARGET = {"": (-15.0, 0.84)}  # tau 0.9: a trial keeps the utility at MU >= 0.756


def _trials(points: dict[str, list[tuple[float, float]]]) -> dict[str, list[dict]]:
    return {m: [{"log10_forget_quality": x, "model_utility": y} for x, y in ps] for m, ps in points.items()}


def test_the_headline_tells_apart_what_the_floor_anchored_hypervolume_cannot():
    """Within 1 % of each other above the KS floor (the floor ranks b first), 2.5 apart in log10 FQ
    among the trials that keep 0.9 of the target's utility: the headline ranks a first."""
    trials = _trials({"a": [(-3.0, 0.80)], "b": [(-5.5, 0.80), (-1.0, 0.46)]})
    summary = summarize_fronts(trials, {"": -70.0}, FQ_MU, TARGET, 0.9, 0.0, math.log10(0.05))[""]
    a, b = summary["methods"]["a"], summary["methods"]["b"]
    assert b["hypervolume_floor"] > a["hypervolume_floor"]
    assert abs(a["hypervolume_floor"] - b["hypervolume_floor"]) < 0.01 * a["hypervolume_floor"]
    assert (a["fq_at_kept_utility"], b["fq_at_kept_utility"]) == (-3.0, -5.5)
    assert b["fq_at_kept_utility_trial"] == 0 and b["fq_at_kept_utility_mu"] == 0.80
    assert summary["ranks"]["0.9"] == ["a", "b"] == rank({m: summary["methods"][m] for m in "ab"})
    # anchored at (-15, 0.756), the box up to (0, 0.84): a's point covers 12 x 0.044 of 15 x 0.084
    assert a["hypervolume"] == pytest.approx(12 * 0.044 / (15 * 0.084))
    assert summary["methods"]["all"]["fq_at_kept_utility_trial"] == ("a", 0)
    assert summary["target"] == {"log10_forget_quality": -15.0, "model_utility": 0.84}
    assert summary["utility_floor"] == 0.9


def test_a_method_that_never_keeps_the_utility_says_none():
    trials = _trials({"keeps": [(-4.0, 0.79)], "breaks": [(-0.5, 0.70), (-2.0, 0.60)]})
    summary = summarize_fronts(trials, {"": -70.0}, FQ_MU, TARGET, 0.9, 0.0, math.log10(0.05))
    breaks = json.loads(json.dumps(summary))[""]["methods"]["breaks"]
    assert breaks["fq_at_kept_utility"] is None and breaks["fq_at_kept_utility_trial"] is None
    assert breaks["hypervolume"] == 0.0 and breaks["hypervolume_floor"] > 0
    row = next(line for line in format_table(summary).splitlines() if line.split()[:1] == ["breaks"])
    assert row.split()[2] == "none"
    assert "target: log10_forget_quality -15.00, model_utility 0.840" in format_table(summary)


def test_utility_above_the_target_counts_as_the_targets_and_a_target_already_forgotten_is_not_measurable():
    better = summarize_fronts(_trials({"m": [(-5.0, 0.95)]}), {"": -70.0}, FQ_MU, TARGET, 0.9, 0.0)
    same = summarize_fronts(_trials({"m": [(-5.0, 0.84)]}), {"": -70.0}, FQ_MU, TARGET, 0.9, 0.0)
    assert better[""]["methods"]["m"]["hypervolume"] == same[""]["methods"]["m"]["hypervolume"] == pytest.approx(
        10 / 15)
    forgotten = {"": (-1.0, 0.84)}  # p = 0.1: above NPO's 0.05 bar already
    summary = summarize_fronts(_trials({"m": [(-0.5, 0.84)]}), {"": -70.0}, FQ_MU, forgotten, 0.9, 0.0,
                               math.log10(0.05))[""]
    assert summary["measurable"] is False and summary["methods"]["m"]["hypervolume"] is None
    assert summary["methods"]["m"]["fq_at_kept_utility"] == -0.5  # the headline still reads
    assert "not measurable" in format_table({"": summary})


def test_the_rank_is_shown_at_each_tau_and_says_when_the_order_changes():
    # a forgets more at MU 0.70 (kept at tau 0.8 only); b keeps 0.80 with less forgetting
    trials = _trials({"a": [(-1.0, 0.70), (-9.0, 0.83)], "b": [(-4.0, 0.80)]})
    summary = summarize_fronts(trials, {"": -70.0}, FQ_MU, TARGET, 0.9, 0.0)[""]
    assert summary["ranks"] == {"0.8": ["a", "b"], "0.9": ["b", "a"], "0.95": ["b", "a"]}
    assert summary["order_changes"] is True
    assert "the order changes with tau" in format_table({"": summary})


def test_without_the_targets_point_the_headline_says_it_needs_it():
    summary = summarize_fronts(_trials({"m": [(-5.0, 0.8)]}), {"": -70.0}, FQ_MU)
    entry = summary[""]["methods"]["m"]
    assert summary[""]["target"] is None and entry["fq_at_kept_utility"] is None and entry["hypervolume"] is None
    assert entry["hypervolume_floor"] == pytest.approx(65 * 0.8)
    assert "the headline needs the target's point" in format_table(summary)


def _area_by_strips(points, reference) -> float:
    """The dominated area summed strip by strip between the points' x values (written out here)."""
    pts = [(x, y) for x, y in points if not (math.isnan(x) or math.isnan(y))]
    edges = sorted({reference[0], *(x for x, _ in pts if x > reference[0])})
    area = 0.0
    for left, right in zip(edges, edges[1:], strict=False):
        top = max((y for x, y in pts if x >= right), default=reference[1])
        area += (right - left) * max(0.0, top - reference[1])
    return area


def test_moocore_gives_the_hypervolume_with_nan_trials_and_points_below_the_reference():
    rng = np.random.default_rng(0)
    for _ in range(200):
        points = [(float(x), float(y)) for x, y in zip(rng.uniform(-20, 0, 8), rng.uniform(0, 1, 8), strict=True)]
        points[0] = (math.nan, 0.9)  # a trial that diverged
        assert hypervolume(points, (-10.0, 0.3)) == pytest.approx(_area_by_strips(points, (-10.0, 0.3)), abs=1e-12)
    assert hypervolume([(math.nan, math.nan)], (-10.0, 0.3)) == 0.0
