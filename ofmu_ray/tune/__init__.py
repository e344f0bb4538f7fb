"""Sweeps: search spaces (`spaces`), Ray Tune + Optuna runs (`sweep`, `logger`), Pareto fronts and
hypervolume (`pareto`), and a sweep's results read back from MLflow (`results`).

Only the light modules are imported here; `sweep` and `logger` pull in Ray when used.
"""

from ofmu_ray.tune.pareto import front, hypervolume, summarize_fronts
from ofmu_ray.tune.spaces import DISTRIBUTIONS, Dimension, SpaceError, load_space

__all__ = ["DISTRIBUTIONS", "Dimension", "SpaceError", "front", "hypervolume", "load_space", "summarize_fronts"]
