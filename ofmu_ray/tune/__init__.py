"""Sweeps: search spaces (and, to come, Ray Tune + Optuna runs and Pareto fronts)."""

from ofmu_ray.tune.spaces import DISTRIBUTIONS, Dimension, SpaceError, load_space

__all__ = ["DISTRIBUTIONS", "Dimension", "SpaceError", "load_space"]
