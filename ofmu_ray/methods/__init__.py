"""Unlearning methods behind one interface, registered by name in one place.

The registry names each method's class by its module; the class is imported when first asked for,
so that listing the names (`ofmu-ray --help`) needs no torch.

    >>> " ".join(sorted(METHODS))
    'ceu ft gradascent graddiff idkdpo npo ofmu pdu rl rmu satimp simnpo undial wga'
    >>> methods_for("image")
    ['gradascent', 'graddiff', 'ofmu', 'ft', 'rl']
    >>> sorted(set(methods_for("qa")) - set(methods_for("corpus")))
    ['idkdpo']
    >>> build_config("npo", {"beta": "0.2"}).beta
    0.2
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ofmu_ray.methods.base import Method, MethodConfig

# name -> "module:Class" under ofmu_ray.methods; a new method is a class, a line here and a search space
METHODS: dict[str, str] = {
    "gradascent": "baselines:GradAscent",
    "graddiff": "baselines:GradDiff",
    "npo": "baselines:NPO",
    "simnpo": "baselines:SimNPO",
    "rmu": "rmu:RMU",
    "ofmu": "ofmu:OFMU",
    "ft": "baselines:FineTune",
    "rl": "baselines:RandomLabel",
    # OpenUnlearning's further methods
    "idkdpo": "preference:IdkDPO",
    "undial": "distillation:UNDIAL",
    "ceu": "distillation:CEU",
    "wga": "token_weighted:WGA",
    "satimp": "token_weighted:SatImp",
    "pdu": "pdu:PDU",
}

# What each `modality` a family names holds (`methods.base`): the words of the error that refuses a method
MODALITIES = {"qa": "question-answer rows", "corpus": "text corpora", "image": "images"}


def get_method(name: str) -> type[Method]:
    """The method class registered under `name`.

    Raises:
        ValueError: no such method; the message lists the registered ones.
    """
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from: {', '.join(METHODS)}")
    module, cls = METHODS[name].split(":")
    return getattr(importlib.import_module(f"ofmu_ray.methods.{module}"), cls)


def methods_for(modality: str) -> list[str]:
    """The methods that can unlearn from `modality` (one of `MODALITIES`), in registry order."""
    return [name for name in METHODS if modality in get_method(name).modalities]


def check_applies(methods: list[str] | tuple[str, ...], modality: str, bench: str) -> None:
    """Raises ValueError naming the methods that cannot unlearn from `modality` (one of `MODALITIES`)."""
    wrong = [m for m in methods if m not in methods_for(modality)]
    if wrong:
        raise ValueError(f"{', '.join(wrong)} cannot unlearn from {MODALITIES[modality]} ({bench}); choose from "
                         f"{', '.join(methods_for(modality))}")


def build_config(name: str, overrides: dict[str, Any] | None = None) -> MethodConfig:
    """The method's config: its defaults, with `overrides` (strings are converted) applied."""
    return get_method(name).Config.from_dict(overrides or {})


def describe_methods() -> dict[str, dict[str, Any]]:
    """Every method with its description, paper, hyper-parameters, defaults and ranges (what `ofmu-ray
    methods` prints)."""
    return {name: {"doc": (cls.__doc__ or "").strip().splitlines()[0], "paper": cls.paper,
                   "needs_reference": cls.needs_reference, "modalities": list(cls.modalities),
                   "params": cls.Config.describe()}
            for name, cls in ((n, get_method(n)) for n in METHODS)}


__all__ = ["METHODS", "MODALITIES", "build_config", "check_applies", "describe_methods", "get_method", "methods_for"]
