"""The verdict of a study: a method's headline with its uncertainty over independent searches and
fresh seeds, OFMU against each baseline as a paired difference, and how the headline grows with the
trials and the compute a search spends.

A study's numbers come in *groups*: per search, the values of the runs that search produced (the K
fresh-seed re-runs of its selected configuration), or None where the search selected nothing (no
trial kept the utility floor: "none"). The interval is a hierarchical bootstrap: resample the searches,
then the runs within each resampled search, and take the mean of the searches' means; the 2.5th and
97.5th percentiles of `DRAWS` such means, from a fixed seed, so that the same store gives the same
report.

    >>> groups = [[-2.0, -2.2], [-1.8, -2.0], None]
    >>> round(mean_of_means(groups), 3)
    -2.0
    >>> iv = bootstrap(groups, seed=0)
    >>> iv.searches, iv.runs, iv.low <= iv.mean <= iv.high
    (2, 4, True)
    >>> call(Interval(0.5, 0.1, 0.9, 3, 15))
    'win'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ofmu_ray.tune.pareto import Point, Region, at_kept_utility

DRAWS = 4000  # bootstrap resamples per interval
LEVEL = 0.95

Groups = Sequence[Sequence[float] | None]  # per search, its runs' values (None: the search selected nothing)


@dataclass(frozen=True)
class Interval:
    """A mean with its bootstrap interval, over `searches` searches holding `runs` values in all."""

    mean: float
    low: float
    high: float
    searches: int
    runs: int

    def __str__(self) -> str:
        return self.format()

    def format(self, digits: int = 2, sign: bool = False) -> str:
        """'mean [low, high]' at `digits` decimals (`sign`: always signed, as differences are)."""
        f = f"{'+' if sign else ''}.{digits}f"
        return f"{self.mean:{f}} [{self.low:{f}}, {self.high:{f}}]"


def _present(groups: Groups) -> list[list[float]]:
    return [[v for v in g if math.isfinite(v)] for g in groups if g is not None and any(map(math.isfinite, g))]


def mean_of_means(groups: Groups) -> float:
    """The mean over searches of each search's mean (every search weighs the same); NaN if none has a value."""
    present = _present(groups)
    return sum(sum(g) / len(g) for g in present) / len(present) if present else math.nan


def bootstrap(groups: Groups, seed: int = 0, draws: int = DRAWS) -> Interval | None:
    """`mean_of_means` with its hierarchical bootstrap interval; None with fewer than two values, or
    values that are all the same (no spread to resample). With one search the interval is over its
    runs only."""
    import numpy as np

    present = [np.array(g) for g in _present(groups)]
    runs = sum(len(g) for g in present)
    if runs < 2:
        return None
    rng = np.random.default_rng(seed)
    means = np.empty(draws)
    for d in range(draws):
        picked = rng.integers(len(present), size=len(present))
        means[d] = np.mean([rng.choice(present[i], size=len(present[i])).mean() for i in picked])
    if np.ptp(means) == 0:  # every value the same: one run repeated (the same trial in every search), no spread
        return None
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Interval(mean_of_means(groups), float(low), float(high), len(present), runs)


def paired(a: Groups, b: Groups, seed: int = 0, draws: int = DRAWS) -> Interval | None:
    """a - b over the searches where both have a value: the mean over those searches of (a's mean -
    b's mean), resampling the searches together and each side's runs within them; None with no such
    search, with one search holding one value a side, or where the difference never varies (at equal
    compute, the same two trials selected in every search)."""
    import numpy as np

    pairs = [(np.array(x), np.array(y)) for x, y in zip(_kept(a), _kept(b), strict=True) if x and y]
    if not pairs or (len(pairs) == 1 and len(pairs[0][0]) == len(pairs[0][1]) == 1):
        return None  # one difference of two single values: nothing to resample
    mean = float(np.mean([x.mean() - y.mean() for x, y in pairs]))
    rng = np.random.default_rng(seed)
    diffs = np.empty(draws)
    for d in range(draws):
        picked = rng.integers(len(pairs), size=len(pairs))
        diffs[d] = np.mean([rng.choice(pairs[i][0], size=len(pairs[i][0])).mean()
                            - rng.choice(pairs[i][1], size=len(pairs[i][1])).mean() for i in picked])
    if np.ptp(diffs) == 0:  # as in `bootstrap`: nothing varies, so nothing to give an interval of
        return None
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(diffs, [tail, 100 - tail])
    return Interval(mean, float(low), float(high), len(pairs), sum(len(x) + len(y) for x, y in pairs))


def _kept(groups: Groups) -> list[list[float]]:
    """Each search's finite values, [] where it has none (aligned with the searches)."""
    return [[v for v in g if math.isfinite(v)] if g is not None else [] for g in groups]


def call(difference: Interval | None, higher_is_better: bool = True) -> str:
    """'win' when the interval of (OFMU - baseline) excludes 0 in OFMU's favour, 'loss' when it excludes 0
    against it, 'tie' otherwise, 'n/a' without an interval."""
    if difference is None:
        return "n/a"
    low, high = (difference.low, difference.high) if higher_is_better else (-difference.high, -difference.low)
    return "win" if low > 0 else "loss" if high < 0 else "tie"


def anytime(points: Sequence[Point], region: Region) -> list[float | None]:
    """The headline of a search's first n trials (n = 1..len(points)), trials in the order they ran."""
    found = [at_kept_utility(points[:n], region) for n in range(1, len(points) + 1)]
    return [f[0] if f else None for f in found]


def anytime_flops(points: Sequence[Point], flops: Sequence[float], region: Region,
                  grid: Sequence[float]) -> list[float | None]:
    """The headline of the trials a search had run by each cumulative compute in `grid` (FLOPs)."""
    curve, spent = anytime(points, region), 0.0
    done = []
    for f in flops:
        spent += f
        done.append(spent)
    out = []
    for budget in grid:
        n = sum(1 for c in done if c <= budget * (1 + 1e-9))
        out.append(curve[n - 1] if n else None)
    return out


def mean_curve(curves: Sequence[Sequence[float | None]]) -> list[float]:
    """The mean over searches at each point of their curves, over the searches with a value there (NaN: none)."""
    out = []
    for values in zip(*curves, strict=True):
        present = [v for v in values if v is not None]
        out.append(sum(present) / len(present) if present else math.nan)
    return out


def order(values: dict[str, float]) -> tuple[str, ...]:
    """Methods best first (highest value; NaN last)."""
    return tuple(sorted(values, key=lambda m: (math.isnan(values[m]), -values[m] if not math.isnan(values[m])
                                                else 0.0, m)))


def last_change(curves: dict[str, Sequence[float]]) -> int:
    """The last n (1-based) at which the methods' order by their mean curves differs from the order at
    n - 1; 1 if it never changed."""
    length = min(len(c) for c in curves.values())
    orders = [order({m: c[n] for m, c in curves.items()}) for n in range(length)]
    return max([n + 1 for n in range(1, length) if orders[n] != orders[n - 1]], default=1)
