"""Typed configurations: what varies between runs, validated when built (a bad value names its field).

Only dataclasses and plain values live here, so that the CLI can list choices without importing torch.
"""

from __future__ import annotations

import difflib
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from ofmu_ray.errors import UsageError


def param(default: Any, help: str, low: float | None = None, high: float | None = None,
          choices: tuple[str, ...] | None = None) -> Any:
    """A config field whose meaning, range and choices are written once and enforced on build.

    `low`/`high` are inclusive bounds; `None` leaves that side open.
    """
    return field(default=default, metadata={"help": help, "low": low, "high": high, "choices": choices})


class Validated:
    """Base of the configs built from user input: checks every field's range and choices.

    Subclasses are dataclasses whose fields come from `param`; `removed` names fields that no longer
    exist and what replaced them, so that an old configuration fails with that rather than a guess.
    """

    removed: typing.ClassVar[dict[str, str]] = {}

    def __post_init__(self) -> None:
        name = type(self).__name__
        for f in fields(self):
            value, meta = getattr(self, f.name), f.metadata
            if meta.get("choices") and value not in meta["choices"]:
                raise ValueError(f"{name}.{f.name} must be one of {', '.join(meta['choices'])}; got {value!r}")
            if meta.get("low") is not None and value < meta["low"]:
                raise ValueError(f"{name}.{f.name} must be >= {meta['low']}; got {value!r}")
            if meta.get("high") is not None and value > meta["high"]:
                raise ValueError(f"{name}.{f.name} must be <= {meta['high']}; got {value!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]):
        """Builds the config from `values`, converting strings (`--set beta=0.5`) to each field's type.

        Raises:
            ValueError: an unknown key (naming the closest field), or a value of the wrong type or range.
        """
        known = {f.name: f for f in fields(cls)}
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for key, value in values.items():
            if key in cls.removed:
                raise ValueError(f"{cls.__name__}.{key} was removed: {cls.removed[key]}")
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; fields: {', '.join(known)}"
                raise ValueError(f"{cls.__name__} has no field {key!r}{hint}")
            kwargs[key] = _coerce(cls.__name__, key, value, hints[key])
        return cls(**kwargs)

    @classmethod
    def describe(cls) -> list[dict[str, Any]]:
        """One entry per field: name, type, default, range or choices, and help."""
        hints = typing.get_type_hints(cls)
        out = []
        for f in fields(cls):
            meta = f.metadata
            out.append({"name": f.name, "type": getattr(hints[f.name], "__name__", str(hints[f.name])),
                        "default": None if f.default is MISSING else f.default,
                        "low": meta.get("low"), "high": meta.get("high"), "choices": meta.get("choices"),
                        "help": meta.get("help", "")})
        return out


def _coerce(owner: str, key: str, value: Any, kind: Any) -> Any:
    target = kind if kind in (int, float, bool, str) else str
    if isinstance(value, target) and not (target is int and isinstance(value, bool)):
        return value
    if target is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            if target is bool:
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(value)
                return value.lower() in ("true", "1")
            return target(value)
        except ValueError:
            pass
    raise ValueError(f"{owner}.{key} must be {target.__name__}; got {value!r}")


@dataclass(frozen=True)
class TinyLlamaSpec:
    """Shape of a Llama-style model small enough to train from scratch on two CPU cores."""

    layers: int = 4
    hidden: int = 128
    intermediate: int = 384  # 3x hidden, SwiGLU
    heads: int = 4
    max_positions: int = 256  # longest sequence: a bio is about 130 words

    def __post_init__(self) -> None:
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be divisible by heads ({self.heads})")
        for name in ("layers", "hidden", "intermediate", "heads", "max_positions"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class FinetuneConfig:
    """Optimisation settings for training a model from scratch (or further) on QA rows."""

    epochs: int = 20
    batch_size: int = 32
    lr: float = 2e-3  # peak of the one-cycle schedule
    warmup: float = 0.1  # share of steps spent warming up
    weight_decay: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {self.epochs}, {self.batch_size}")
        if not 0 < self.lr < 1:
            raise ValueError(f"lr must be in (0, 1), got {self.lr}")
        if not 0 <= self.warmup < 1:
            raise ValueError(f"warmup must be in [0, 1), got {self.warmup}")


# The embedded models a benchmark can be prepared with: the models axis of a comparison.
MODELS: dict[str, TinyLlamaSpec] = {
    "tiny-llama-2l": TinyLlamaSpec(layers=2),
    "tiny-llama-4l": TinyLlamaSpec(),
    "tiny-llama-8l": TinyLlamaSpec(layers=8),
    "llama-6l-256": TinyLlamaSpec(layers=6, hidden=256, intermediate=768, heads=8),
}


@dataclass(frozen=True)
class Profile:
    """A named size of a generated benchmark: its generator's config, its default model (a `MODELS`
    name) and how its models are trained (`tune`: a second stage from the first stage's model, for
    families that train in two, such as synth-tofu; None: one stage)."""

    data: Any  # the family's generator config (`SynthTofuConfig`, `SynthWmdpConfig`)
    model: str = "tiny-llama-4l"
    train: FinetuneConfig = field(default_factory=FinetuneConfig)
    tune: FinetuneConfig | None = None


def check_budget(steps: int | None, epochs: float | None) -> None:
    """`--steps` or `--epochs`, not both, and positive (checked before anything is prepared)."""
    if steps is not None and epochs is not None:
        raise UsageError("--steps or --epochs, not both: one budget, in forget batches or in passes over the "
                         "forget split")
    if (steps is not None and steps < 1) or (epochs is not None and not 0 < epochs < float("inf")):
        raise UsageError(f"the budget must be positive: got steps {steps}, epochs {epochs}")


def parse_sets(pairs: list[str]) -> dict[str, str]:
    """`KEY=VALUE` pairs as a command line gives them (`--set`, `--space`, a study's base point).

    Raises:
        UsageError: a pair without `=` or without a key.

    Example:
        >>> parse_sets(["beta=0.5", "lr=1e-3"])
        {'beta': '0.5', 'lr': '1e-3'}
    """
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"expected KEY=VALUE, got {pair!r}")
        out[key] = value
    return out
