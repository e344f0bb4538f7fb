"""Pareto fronts of two maximised objectives, read where a user cares: forgetting gained at kept utility.

For TOFU the objectives are (log10 forget quality, model utility). A sweep's headline, per method
and split, is the best forget quality among the trials that keep at least tau (default 0.9) of the
target's utility: the field's way of comparing forgetting at a fixed cost in utility (UWC holds
retain performance at 90-95 % of the original, OpenUnlearning's meta-evaluation at 80 %).

The hypervolume is anchored at the same region: its reference point is (the target's forget quality,
tau x the target's utility), utility above the target's counts as the target's, and the area is
divided by the box up to (the best forget quality there is, the target's utility). So 0 means a
method never beats the target while keeping tau of its utility, and 1 that its front reaches
FQ p = 1 at full utility. The older figure, anchored at the split's log10 forget-quality floor and
zero utility (`hypervolume_floor`), counts area no user values: a model that changes nothing already
earns most of that box.

    >>> front([(-3.0, 0.5), (-1.0, 0.4), (-2.0, 0.3), (-1.0, 0.2)])
    [0, 1]
    >>> round(hypervolume([(-3.0, 0.5), (-1.0, 0.4)], (-4.0, 0.0)), 3)
    1.3
    >>> region = Region(target=(-10.0, 0.8), tau=0.9, ideal_x=0.0)
    >>> at_kept_utility([(-2.0, 0.5), (-6.0, 0.75), (-8.0, 0.9)], region)
    (-6.0, 1)
    >>> round(anchored_hypervolume([(-6.0, 0.75), (-8.0, 0.9)], region), 3)
    0.275
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ofmu_ray.tune.config import UTILITY_FLOOR, Objectives

Point = tuple[float, float]  # (x objective, y objective), e.g. (log10_forget_quality, model_utility)
RANK_FLOORS = (0.8, 0.9, 0.95)  # the taus at which the summary shows each method's rank


@dataclass(frozen=True)
class Region:
    """Where a split's front is read: the target's point, the share `tau` of its utility a trial must
    keep, the best x a model can reach (`ideal_x`; TOFU: log10 FQ 0, p = 1; None: no anchored
    hypervolume), and the target x above which the split cannot show forgetting (`measurable_below`;
    TOFU: log10 0.05, as NPO's bar for "forgotten"; None: always measurable)."""

    target: Point
    tau: float = UTILITY_FLOOR
    ideal_x: float | None = None
    measurable_below: float | None = None

    @property
    def kept_utility(self) -> float:
        return self.tau * self.target[1]

    @property
    def measurable(self) -> bool:
        return self.measurable_below is None or self.target[0] <= self.measurable_below


def dominates(a: Point, b: Point) -> bool:
    """a is at least as good as b on both objectives and better on one."""
    return a[0] >= b[0] and a[1] >= b[1] and (a[0] > b[0] or a[1] > b[1])


def front(points: Sequence[Point]) -> list[int]:
    """Indices of the non-dominated points (NaNs never are), sorted by rising forget quality;
    of identical points only the first is kept."""
    keep: list[int] = []
    for i, p in enumerate(points):
        if any(math.isnan(v) for v in p):
            continue
        if any(dominates(q, p) or (q == p and j < i) for j, q in enumerate(points)
               if j != i and not any(math.isnan(v) for v in q)):
            continue
        keep.append(i)
    return sorted(keep, key=lambda i: points[i][0])


def hypervolume(points: Sequence[Point], reference: Point) -> float:
    """Area dominated by `points` and bounded below by `reference` (points below it, and NaN points, add
    nothing), as moocore computes it for maximised objectives."""
    import moocore
    import numpy as np

    data = np.array([p for p in points if not any(math.isnan(v) for v in p)], dtype=float).reshape(-1, 2)
    return float(moocore.hypervolume(data, ref=reference, maximise=True)) if len(data) else 0.0


def at_kept_utility(points: Sequence[Point], region: Region) -> tuple[float, int] | None:
    """(the best x among the points whose y keeps `region.tau` of the target's, its index), or None
    when no point keeps it (NaN points never do)."""
    kept = [(x, i) for i, (x, y) in enumerate(points) if y >= region.kept_utility and not math.isnan(x)]
    return max(kept, key=lambda k: (k[0], -k[1])) if kept else None


def anchored_hypervolume(points: Sequence[Point], region: Region) -> float | None:
    """The area the points dominate above (the target's x, tau x its y), with y above the target's
    counted as the target's, as a share of the box up to (`ideal_x`, the target's y). None where the
    region has no `ideal_x` or the split cannot show forgetting (`Region.measurable`)."""
    if region.ideal_x is None or not region.measurable:
        return None
    (tx, ty), floor = region.target, region.kept_utility
    box = (region.ideal_x - tx) * (ty - floor)
    clipped = [(x, min(y, ty)) for x, y in points]
    return hypervolume(clipped, (tx, floor)) / box if box > 0 else 0.0


def equal_compute(trials: dict[str, list[dict]]) -> tuple[float, dict[str, int]]:
    """(C, per method how many of its first trials fit in C): C is the smallest total compute (the
    trials' `flops`) of any method, so each method's fronts can be compared within the same
    compute. Trials are taken in the order they ran, as a search with that budget would have run
    them; C is NaN when some trial has no `flops` (a sweep from before they were counted)."""
    flops = {m: [r.get("flops", math.nan) for r in rows] for m, rows in trials.items() if rows}
    if not flops or any(math.isnan(f) for fs in flops.values() for f in fs):
        return math.nan, {}
    budget = min(sum(fs) for fs in flops.values())
    fits = {}
    for method, fs in flops.items():
        spent, n = 0.0, 0
        while n < len(fs) and spent + fs[n] <= budget * (1 + 1e-9):
            spent, n = spent + fs[n], n + 1
        fits[method] = n
    return budget, fits


def _headline(points: Sequence[Point], trial_ids: Sequence, region: Region | None) -> dict:
    """The headline of some trials (`trial_ids[i]` names points[i]): forget quality at kept utility,
    the trial that reaches it and its utility, and the anchored hypervolume (None without a region)."""
    best = at_kept_utility(points, region) if region else None
    return {"fq_at_kept_utility": best[0] if best else None,
            "fq_at_kept_utility_trial": trial_ids[best[1]] if best else None,
            "fq_at_kept_utility_mu": points[best[1]][1] if best else None,
            "hypervolume": anchored_hypervolume(points, region) if region else None}


def rank(methods: dict[str, dict]) -> list[str]:
    """Methods best first: by forget quality at kept utility ("none" last), then anchored hypervolume."""
    def key(name: str) -> tuple:
        e = methods[name]
        fq, hv = e["fq_at_kept_utility"], e["hypervolume"]
        return (fq is None, -(fq if fq is not None else 0.0), -(hv if hv is not None else 0.0), name)

    return sorted(methods, key=key)


def summarize_fronts(trials: dict[str, list[dict]], floors: dict[str, float], objectives: Objectives,
                     targets: dict[str, Point] | None = None, tau: float = UTILITY_FLOOR,
                     ideal_x: float | None = None, measurable_below: float | None = None) -> dict[str, dict]:
    """Per split key (`""` and `"/<hard split>"`, as `floors` names them) and method: the front's
    points, the headline (`at_kept_utility`, `anchored_hypervolume`) and the floor-anchored
    hypervolume, each also at equal compute (of the trials that fit in the least compute any method
    used, `equal_compute`); `"all"` is the combined front across methods. Without the target's point
    for a key (a sweep from before it was logged), the headline is None there.

    Args:
        trials: per method, each finished trial's metrics.
        floors: per split key, the floor-anchored reference point's x (TOFU: the log10 forget-quality floor).
        objectives: the two metrics the points are made of.
        targets: per split key, the target's (x, y): where the headline is read from.
        tau: the share of the target's utility a trial must keep (`--utility-floor`).
        ideal_x, measurable_below: as `Region` says.
    """
    out: dict[str, dict] = {}
    compute, fits = equal_compute(trials)
    for key, floor in floors.items():
        fq, mu = objectives.names(key)
        target = (targets or {}).get(key)
        region = Region(target, tau, ideal_x, measurable_below) if target else None
        table: dict[str, dict] = {}
        combined: list[tuple[str, int, Point]] = []
        by_method: dict[str, list[Point]] = {}
        for method, rows in trials.items():
            index = [i for i, r in enumerate(rows) if fq in r and mu in r]
            points = by_method[method] = [(rows[i][fq], rows[i][mu]) for i in index]
            chosen = front(points)
            n = sum(1 for i in index if i < fits.get(method, 0))  # trials are in run order: the first n fit
            table[method] = {"front": [index[i] for i in chosen], "points": [points[i] for i in chosen],
                             "trials": len(points), **_headline(points, index, region),
                             "hypervolume_floor": hypervolume(points, (floor, 0.0)),
                             "trials_equal_compute": n if fits else 0}
            if fits:
                within = _headline(points[:n], index[:n], region)
                table[method] |= {"fq_at_kept_utility_equal_compute": within["fq_at_kept_utility"],
                                  "fq_at_kept_utility_equal_compute_trial": within["fq_at_kept_utility_trial"],
                                  "hypervolume_equal_compute": within["hypervolume"],
                                  "hypervolume_floor_equal_compute": hypervolume(points[:n], (floor, 0.0))}
            combined += [(method, i, p) for i, p in zip(index, points, strict=True)]
        points = [p for _, _, p in combined]
        best = front(points)
        table["all"] = {"front": [combined[i][:2] for i in best], "points": [points[i] for i in best],
                        "trials": len(points), **_headline(points, [c[:2] for c in combined], region),
                        "hypervolume_floor": hypervolume(points, (floor, 0.0))}
        ranks = {str(t): rank({m: _headline(ps, range(len(ps)), Region(target, t, ideal_x, measurable_below))
                               for m, ps in by_method.items()}) for t in RANK_FLOORS} if target else {}
        out[key] = {"reference": (floor, 0.0), "objectives": [fq, mu], "methods": table, "compute": compute,
                    "utility_floor": tau, "measurable": region.measurable if region else None,
                    "ideal_x": ideal_x, "measurable_below": measurable_below,
                    "target": dict(zip(objectives.names(), target, strict=True)) if target else None,
                    "order": rank({m: e for m, e in table.items() if m != "all"}),  # best first, at tau
                    "ranks": ranks, "order_changes": len({tuple(r) for r in ranks.values()}) > 1}
    return out
