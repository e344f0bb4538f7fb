"""Typed configurations: what varies between runs, validated when built (a bad value names its field).

Only dataclasses live here, so that the CLI can list choices without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ofmu_ray.data.synth_tofu import SynthTofuConfig


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


@dataclass(frozen=True)
class Profile:
    """A named size of the embedded benchmark: data, model shape and training together."""

    data: SynthTofuConfig
    model: TinyLlamaSpec = field(default_factory=TinyLlamaSpec)
    train: FinetuneConfig = field(default_factory=FinetuneConfig)


PROFILES: dict[str, Profile] = {
    "tiny": Profile(SynthTofuConfig(authors=20)),  # tests: forget05 + forget10
    "small": Profile(SynthTofuConfig(authors=60)),  # the demo: all three forget splits
    "full": Profile(SynthTofuConfig(authors=200), TinyLlamaSpec(layers=6, hidden=256, intermediate=768,
                                                                heads=8)),  # TOFU's size
}


