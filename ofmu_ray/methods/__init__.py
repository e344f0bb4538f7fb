"""Unlearning methods behind one interface, registered by name in one place.

    >>> sorted(METHODS)
    ['ft', 'gradascent', 'graddiff', 'npo', 'ofmu', 'rl', 'rmu', 'simnpo']
    >>> methods_for("image")
    ['gradascent', 'graddiff', 'ofmu', 'ft', 'rl']
    >>> build_config("npo", {"beta": "0.2"}).beta
    0.2
"""

from __future__ import annotations

from typing import Any

from ofmu_ray.methods.base import Method, MethodConfig
from ofmu_ray.methods.baselines import NPO, FineTune, GradAscent, GradDiff, RandomLabel, SimNPO
from ofmu_ray.methods.ofmu import OFMU
from ofmu_ray.methods.rmu import RMU

METHODS: dict[str, type[Method]] = {m.name: m for m in (GradAscent, GradDiff, NPO, SimNPO, RMU, OFMU, FineTune,
                                                         RandomLabel)}
TOFU_METHODS = ("gradascent", "graddiff", "npo", "simnpo", "rmu", "ofmu")  # what a TOFU sweep runs by default
WMDP_METHODS = ("rmu", "npo", "simnpo", "graddiff", "ofmu")  # WMDP's own baseline and those that retain


def methods_for(modality: str) -> list[str]:
    """The methods that can unlearn `text` or `image` models, in registry order."""
    return [name for name, cls in METHODS.items() if modality in cls.modalities]


def default_methods(family: str) -> tuple[str, ...]:
    """What a sweep runs on a benchmark family (`tofu`, `mcq`, `image`) when no methods are named."""
    return {"tofu": TOFU_METHODS, "mcq": WMDP_METHODS}.get(family) or tuple(methods_for("image"))


def check_applies(methods: list[str] | tuple[str, ...], modality: str, bench: str) -> None:
    """Raises ValueError naming the methods that cannot unlearn `modality` (`text` or `image`) models."""
    wrong = [m for m in methods if m not in methods_for(modality)]
    if wrong:
        raise ValueError(f"{', '.join(wrong)} cannot unlearn {modality} models ({bench}); choose from "
                         f"{', '.join(methods_for(modality))}")


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
                   "needs_reference": cls.needs_reference, "modalities": list(cls.modalities),
                   "params": cls.Config.describe()}
            for name, cls in METHODS.items()}


__all__ = ["METHODS", "TOFU_METHODS", "WMDP_METHODS", "Method", "MethodConfig", "build_config", "check_applies",
           "default_methods", "describe_methods", "get_method", "methods_for"]
