"""Unlearning methods behind one interface, registered by name in one place.

    >>> sorted(METHODS)
    ['gradascent', 'graddiff', 'npo', 'ofmu', 'rmu', 'simnpo']
    >>> build_config("npo", {"beta": "0.2"}).beta
    0.2
"""

from __future__ import annotations

from typing import Any

from ofmu_ray.methods.base import Method, MethodConfig
from ofmu_ray.methods.baselines import NPO, GradAscent, GradDiff, SimNPO
from ofmu_ray.methods.ofmu import OFMU
from ofmu_ray.methods.rmu import RMU

METHODS: dict[str, type[Method]] = {m.name: m for m in (GradAscent, GradDiff, NPO, SimNPO, RMU, OFMU)}


def get_method(name: str) -> type[Method]:
    """The method class registered under `name`.

    Raises:
        ValueError: no such method; the message lists the registered ones.
    """
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from: {', '.join(METHODS)}")
    return METHODS[name]


def build_config(name: str, overrides: dict[str, Any] | None = None) -> MethodConfig:
    """The method's config: its defaults, with `overrides` (strings are converted) applied."""
    return get_method(name).Config.from_dict(overrides or {})


def describe_methods() -> dict[str, dict[str, Any]]:
    """Every method with its hyper-parameters, defaults and ranges (what `ofmu-ray methods` prints)."""
    return {name: {"doc": (cls.__doc__ or "").strip().splitlines()[0],
                   "needs_reference": cls.needs_reference, "params": cls.Config.describe()}
            for name, cls in METHODS.items()}


__all__ = ["METHODS", "Method", "MethodConfig", "build_config", "describe_methods", "get_method"]
