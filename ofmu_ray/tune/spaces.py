"""Search spaces: one human-editable YAML file per method (`tune_spaces/<method>.yaml`).

Each key is a field of the method's config; each value names one distribution:
`{uniform: [low, high]}`, `{loguniform: [low, high]}`, `{int: [low, high]}` (inclusive) or
`{choice: [a, b, ...]}`; or `{fixed: value}`, a setting held in every trial, the first included
(e.g. OFMU's `hessian: {fixed: finite_diff}` where the exact Hessian does not fit in memory).
Everything is checked on load against the config (the field exists, its type fits the distribution,
the range lies inside the field's own range, a choice is allowed and keeps the default, which every
sweep runs first), and an error names the file and the key.
"""

from __future__ import annotations

import difflib
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from ofmu_ray.errors import UsageError
from ofmu_ray.methods import get_method

SPACES_DIR = Path(__file__).resolve().parents[2] / "tune_spaces"
DISTRIBUTIONS = ("uniform", "loguniform", "int", "choice")
FIXED = "fixed"  # not searched: held at one value


class SpaceError(ValueError):
    """A search-space file that does not fit its method."""


@dataclass(frozen=True)
class Dimension:
    """One hyper-parameter of a space: searched, or held fixed."""

    kind: str  # one of DISTRIBUTIONS, or FIXED
    values: tuple  # (low, high), the choices, or (the held value,)


def searched_dims(space: dict[str, Dimension]) -> dict[str, Dimension]:
    """The dimensions Optuna searches: the space without its held settings."""
    return {k: d for k, d in space.items() if d.kind != FIXED}


def held_settings(space: dict[str, Dimension]) -> dict[str, Any]:
    """The settings the space holds fixed in every trial, by field."""
    return {k: d.values[0] for k, d in space.items() if d.kind == FIXED}


def _allowed(field, hint: Any, value: Any) -> bool:
    """Whether `value` is one the field takes: its type, its choices and its range."""
    meta = field.metadata
    if isinstance(value, bool) != (hint is bool) or not isinstance(value, (int, float) if hint is float else hint):
        return False
    if meta.get("choices") and value not in meta["choices"]:
        return False
    return not ((meta.get("low") is not None and value < meta["low"])
                or (meta.get("high") is not None and value > meta["high"]))


def _check(where: str, key: str, kind: str, values: Any, field, hint: Any) -> Dimension:
    if kind == FIXED:
        if not _allowed(field, hint, values):
            allowed = field.metadata.get("choices")
            raise SpaceError(f"{where}: {key}: {values!r} is not a value of this {hint.__name__} field"
                             + (f"; choose from {allowed}" if allowed else ""))
        return Dimension(FIXED, (hint(values) if hint is float else values,))
    if kind not in DISTRIBUTIONS:
        raise SpaceError(f"{where}: {key}: unknown distribution {kind!r}; use one of "
                         f"{', '.join(DISTRIBUTIONS)} (or {FIXED})")
    if not isinstance(values, list) or not values:
        raise SpaceError(f"{where}: {key}: {kind} needs a list, got {values!r}")
    meta = field.metadata
    if kind == "choice":
        allowed = meta.get("choices")
        bad = [v for v in values if (allowed and v not in allowed) or not isinstance(v, hint)]
        if bad:
            raise SpaceError(f"{where}: {key}: {bad} not allowed" + (f"; choose from {allowed}" if allowed else ""))
        if field.default not in values:  # Optuna would refuse the sweep's first trial, the defaults
            raise SpaceError(f"{where}: {key}: {values} leaves out the default {field.default!r}, which every "
                             f"sweep runs first; add it")
        return Dimension(kind, tuple(values))
    if len(values) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise SpaceError(f"{where}: {key}: {kind} needs [low, high] numbers, got {values!r}")
    low, high = values
    if (kind == "int") != (hint is int):
        raise SpaceError(f"{where}: {key} is a {hint.__name__} field; {kind} does not fit it")
    if not low < high or (kind == "loguniform" and low <= 0):
        raise SpaceError(f"{where}: {key}: bad range [{low}, {high}] for {kind}")
    if (meta.get("low") is not None and low < meta["low"]) or (meta.get("high") is not None and high > meta["high"]):
        raise SpaceError(f"{where}: {key}: [{low}, {high}] leaves the field's range "
                         f"[{meta.get('low')}, {meta.get('high')}]")
    return Dimension(kind, (low, high))


def load_space(method: str, path: str | Path | None = None) -> dict[str, Dimension]:
    """The search space of `method`, from `path` or `tune_spaces/<method>.yaml`.

    Raises:
        SpaceError: unreadable YAML, an unknown key (naming the closest field), an unknown
            distribution, or a range or choice the method's config does not allow.
    """
    config = get_method(method).Config
    path = Path(path) if path else SPACES_DIR / f"{method}.yaml"
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise SpaceError(f"{path}: cannot read it as YAML ({e})") from e
    if not isinstance(raw, dict):
        raise SpaceError(f"{path}: expected a mapping of hyper-parameters, got {type(raw).__name__}")
    known = {f.name: f for f in fields(config)}
    hints = typing.get_type_hints(config)
    space = {}
    for key, spec in raw.items():
        if key in config.removed:
            raise SpaceError(f"{path}: {key}: no longer a {method} hyper-parameter: {config.removed[key]}")
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            raise SpaceError(f"{path}: {key!r} is not a {method} hyper-parameter"
                             + (f"; did you mean {close[0]!r}?" if close else f"; fields: {', '.join(known)}"))
        if not isinstance(spec, dict) or len(spec) != 1:
            raise SpaceError(f"{path}: {key}: expected one distribution, e.g. {{loguniform: [0.01, 1.0]}}")
        (kind, values), = spec.items()
        space[key] = _check(str(path), key, kind, values, known[key], hints[key])
    return space


def load_spaces(methods: tuple[str, ...], files: dict[str, str]) -> dict[str, dict[str, Dimension]]:
    """Each method's search space: the user's file (`files`, from `--space`) or `tune_spaces/<method>.yaml`,
    every file checked before a sweep starts.

    Raises:
        UsageError: naming the file and key of a malformed or out-of-range space.
    """
    try:
        return {m: load_space(m, files.get(m)) for m in methods}
    except SpaceError as e:
        raise UsageError(str(e)) from e
