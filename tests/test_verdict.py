"""The study's statistics (`ofmu_ray.tune.verdict`) on numbers worked out by hand."""

from __future__ import annotations

import math

import pytest

from ofmu_ray.tune import verdict
from ofmu_ray.tune.pareto import Region


def test_every_search_weighs_the_same_and_none_is_left_out():
    # search 1 has 4 runs (mean -1.75), search 2 one (-1.0): pooled, -1.6; the searches' mean, -1.375
    assert verdict.mean_of_means([[-2.0, -2.0, -2.0, -1.0], [-1.0], None]) == pytest.approx(-1.375)
    assert math.isnan(verdict.mean_of_means([None, None]))


def test_the_bootstrap_is_reproducible_and_hierarchical():
    groups = [[-3.0, -2.8, -3.1], [-1.0, -1.2, -0.9], [-2.0, -2.1, -1.9]]
    a, b = verdict.bootstrap(groups, seed=7), verdict.bootstrap(groups, seed=7)
    assert a == b and a.searches == 3 and a.runs == 9
    assert a.low < a.mean < a.high
    # the spread between searches (about 2) is what the interval shows, not the seeds' (about 0.2)
    assert a.high - a.low > 1.0
    within = verdict.bootstrap([groups[0]], seed=7)  # one search: over its seeds only
    assert within.searches == 1 and within.high - within.low < 0.35
    assert verdict.bootstrap([[-1.0], None], seed=0) is None  # one value: nothing to resample
    assert verdict.bootstrap([[-1.0], [-1.0], [-1.0]], seed=0) is None  # one run repeated: no spread


def test_paired_differences_use_the_searches_where_both_selected_something():
    ofmu = [[-1.0, -1.1], [-2.0, -2.1], None]
    base = [[-3.0, -3.1], None, [-9.0]]
    difference = verdict.paired(ofmu, base, seed=0)
    assert difference.searches == 1 and difference.mean == pytest.approx(2.0)
    assert verdict.call(difference) == "win" and verdict.call(verdict.paired(base, ofmu, seed=0)) == "loss"
    assert verdict.paired([None, [-1.0]], [[-2.0], None]) is None  # no search holds both
    assert verdict.paired([[-1.0]], [[-2.0]]) is None  # one value a side in one search
    # at equal compute, the same two trials selected in both searches: one difference, measured once
    assert verdict.paired([[-1.0], [-1.0]], [[-2.0], [-2.0]]) is None


def test_the_call_reads_the_interval_in_the_direction_that_is_better():
    assert verdict.call(verdict.Interval(0.3, 0.1, 0.5, 3, 15)) == "win"
    assert verdict.call(verdict.Interval(0.3, -0.1, 0.5, 3, 15)) == "tie"
    assert verdict.call(verdict.Interval(-0.3, -0.5, -0.1, 3, 15)) == "loss"
    # lower is better, e.g. MU degradation
    assert verdict.call(verdict.Interval(-0.3, -0.5, -0.1, 3, 15), higher_is_better=False) == "win"
    assert verdict.call(None) == "n/a"


def test_the_anytime_headline_of_the_first_trials():
    region = Region(target=(-10.0, 0.8), tau=0.9)  # keeps MU >= 0.72
    points = [(-9.0, 0.5), (-6.0, 0.75), (-8.0, 0.8), (-2.0, 0.73)]
    assert verdict.anytime(points, region) == [None, -6.0, -6.0, -2.0]
    # trials cost 1, 2, 3, 4 (cumulative 1, 3, 6, 10): what had run by each budget
    assert verdict.anytime_flops(points, [1, 2, 3, 4], region, [0.5, 3, 9, 10]) == [None, -6.0, -6.0, -2.0]
    assert verdict.mean_curve([[None, -6.0], [-4.0, None]]) == [-4.0, -6.0]


def test_when_the_order_last_changed():
    assert verdict.last_change({"a": [-5.0, -3.0, -1.0], "b": [-4.0, -4.0, -4.0]}) == 2
    assert verdict.last_change({"a": [-1.0, -1.0], "b": [-2.0, -2.0]}) == 1
    assert verdict.last_change({"a": [math.nan, -1.0], "b": [-2.0, -2.0]}) == 2  # no value yet ranks last
