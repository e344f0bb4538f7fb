"""What one unlearning run is (`RunSpec`): plain values, so that Ray can ship it to its workers and a
checkpoint can record it. `runs.run_spec` builds it from a prepared benchmark."""

from __future__ import annotations

from dataclasses import dataclass, field

from ofmu_ray.models.lora import SAVE_MODES


@dataclass(frozen=True, kw_only=True)
class RunSpec:
    """Everything a worker needs to run and evaluate one unlearning run."""

    prepared_root: str  # the prepared benchmark (absolute): its models, data and references
    split: str  # the benchmark's split as the user names it (forget10, hazard, random); its task reads it
    method: str
    overrides: dict = field(default_factory=dict)  # the method's hyper-parameters that differ from its defaults
    steps: int = 20  # forget batches (the same budget for every method)
    batch_size: int = 16  # global batch, split across workers
    seed: int = 0
    evaluate: bool = True  # evaluate the final model against the benchmark's references
    eval_every: int = 0  # also evaluate every N steps; 0 = at the end only
    checkpoint_every: int = 0  # also checkpoint every N steps; 0 = at the end only
    keep_best: str = ""  # keep the evaluated model that maximises this metric (its family's `keep_best`)
    lora: dict = field(default_factory=dict)  # a `LoraSpec` as a dict: unlearn through adapters only
    lora_save: str = "merged"  # or "adapter": save the adapter alone, beside the base model it names
    dtype: str = "fp32"  # or "bf16" (the weights' type), or "bf16-mixed" (fp32 weights, bf16 autocast)
    attacks: str = ""  # comma-separated attacks on the final model (its family's `attacks`), evaluated too
    attack_settings: dict = field(default_factory=dict)  # how hard they push (`--attack-set`; TOFU: `AttackConfig`)

    def __post_init__(self):
        if self.steps < 1 or self.batch_size < 1 or self.eval_every < 0 or self.checkpoint_every < 0:
            raise ValueError("steps and batch_size must be >= 1, eval_every and checkpoint_every >= 0")
        if (self.eval_every or self.keep_best) and not self.evaluate:
            raise ValueError("eval_every and keep_best evaluate the run: they need evaluate=True")
        if self.lora_save not in SAVE_MODES:
            raise ValueError(f"lora_save {self.lora_save!r}: choose from {', '.join(SAVE_MODES)}")
