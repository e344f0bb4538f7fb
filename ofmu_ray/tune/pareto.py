"""Pareto fronts of two maximised objectives, and their hypervolume.

For TOFU the objectives are (log10 forget quality, model utility); the hypervolume is the area a
front dominates above a fixed reference point: the split's log10 forget-quality floor (the
smallest p-value the KS test can give for that many forget questions: every truth ratio on one
side of the oracle's) and a model utility of 0. Image benchmarks use (closeness to the retrained
oracle, test accuracy), both in percent, above (0, 0). With the same point for every method,
hypervolumes compare across methods; a larger one means a better trade-off.

    >>> front([(-3.0, 0.5), (-1.0, 0.4), (-2.0, 0.3), (-1.0, 0.2)])
    [0, 1]
    >>> round(hypervolume([(-3.0, 0.5), (-1.0, 0.4)], (-4.0, 0.0)), 3)
    1.3
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ofmu_ray.tune.config import Objectives

Point = tuple[float, float]  # (x objective, y objective), e.g. (log10_forget_quality, model_utility)


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
    """Area dominated by `points` and bounded below by `reference` (points below it add nothing)."""
    inside = sorted((max(x, reference[0]), max(y, reference[1])) for x, y in points
                    if not (math.isnan(x) or math.isnan(y)))
    area, best_y = 0.0, reference[1]
    for x, y in reversed(inside):  # sweep from the best forget quality down
        if y > best_y:
            area += (x - reference[0]) * (y - best_y)
            best_y = y
    return area


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


def summarize_fronts(trials: dict[str, list[dict]], floors: dict[str, float],
                     objectives: Objectives) -> dict[str, dict]:
    """Per split key (`""` and `"/<hard split>"`, as `floors` names them) and method: the front's
    points, the hypervolume, and the hypervolume at equal compute (of the trials that fit in the
    least compute any method used, `equal_compute`); `"all"` is the combined front across methods.

    Args:
        trials: per method, each finished trial's metrics.
        floors: per split key, the reference point's x (TOFU: the log10 forget-quality floor); its y is 0.
        objectives: the two metrics the points are made of.
    """
    out: dict[str, dict] = {}
    compute, fits = equal_compute(trials)
    for key, floor in floors.items():
        fq, mu = objectives.names(key)
        table: dict[str, dict] = {}
        combined: list[tuple[str, int, Point]] = []
        for method, rows in trials.items():
            points = [(r[fq], r[mu]) for r in rows if fq in r and mu in r]
            index = [i for i, r in enumerate(rows) if fq in r and mu in r]
            chosen = front(points)
            within = [p for i, p in zip(index, points, strict=True) if i < fits.get(method, 0)]
            table[method] = {"front": [index[i] for i in chosen], "points": [points[i] for i in chosen],
                             "hypervolume": hypervolume(points, (floor, 0.0)), "trials": len(points),
                             "hypervolume_equal_compute": hypervolume(within, (floor, 0.0)) if fits else math.nan,
                             "trials_equal_compute": len(within) if fits else 0}
            combined += [(method, index[i], points[i]) for i in chosen]
        best = front([p for _, _, p in combined])
        table["all"] = {"front": [combined[i][:2] for i in best], "points": [combined[i][2] for i in best],
                        "hypervolume": hypervolume([p for _, _, p in combined], (floor, 0.0)),
                        "trials": sum(t["trials"] for t in table.values())}
        out[key] = {"reference": (floor, 0.0), "objectives": [fq, mu], "methods": table, "compute": compute}
    return out
