"""What a sweep runs (`SweepConfig`), checked when built and saved as `sweep.json` so that `--resume`
runs the same sweep; and the two objectives it maximises (`Objectives`)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from ofmu_ray.config import check_budget
from ofmu_ray.errors import UsageError
from ofmu_ray.families import family_of
from ofmu_ray.families.base import Family
from ofmu_ray.train.attacks import ROBUST, ROBUST_KEY

SAMPLERS = ("tpe", "nsga2", "gp")  # Optuna's multi-objective samplers
MIN_TRIALS = 4  # the fewest trials `--trials-per-dim` gives a method: its defaults and three more
ABLATION_MODES = ("held", "tuned")  # `ofmu-ray ablate --mode`: see tune/ablate.py
UTILITY_FLOOR = 0.9  # tau: the share of the target's utility a trial must keep to count in the headline
RERUNS = ("front", "headline")  # what `--seeds` re-runs: every front configuration, or the headline's trial


@dataclass(frozen=True)
class Objectives:
    """The two maximised metrics a sweep searches and its fronts are drawn in."""

    x: str
    y: str

    def names(self, split_key: str = "") -> tuple[str, str]:
        """The metric names for the forget split (""), a hard split ("/multihop"), or the attacks'
        worst case ("/robust": `robust/<x>` beside the unattacked utility). A robust x
        (`--objectives robust/...`) is searched as it is; its hard splits are the unattacked x's."""
        if not split_key:
            return self.x, self.y
        unattacked = self.x.removeprefix(ROBUST)
        if split_key == ROBUST_KEY:
            return ROBUST + unattacked, self.y
        return f"{unattacked}{split_key}", f"{self.y}{split_key}"


@dataclass(frozen=True)
class SweepConfig:
    """What a sweep runs; saved as `sweep.json` so that `--resume` runs the same sweep."""

    bench: str  # the benchmark's name (its family: `family`); the prepared folders are `run_sweep`'s
    profile: str
    split: str
    methods: tuple[str, ...]
    trials: int = 8  # per method, the default configuration included
    trials_per_dim: int = 0  # > 0: instead, this many per searched dimension (at least MIN_TRIALS)
    steps: int | None = None  # forget batches per trial, the same for every method; or
    epochs: float | None = None  # passes over the forget split; neither: the family's default (`runs.budget_steps`)
    batch_size: int = 16
    workers: int = 1
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    concurrency: int = 0  # trials at once; 0 = as many as the cluster's CPUs hold
    seeds: int = 0  # re-run each method's front configurations (or its headline's, `rerun`) with this many new seeds
    rerun: str = "front"  # which configurations `seeds` re-runs (`RERUNS`)
    sampler: str = "tpe"
    seed: int = 0  # the sampler's seed
    spaces: dict = field(default_factory=dict)  # method -> the user's YAML file
    lora: dict = field(default_factory=dict)  # unlearn through LoRA adapters (a `LoraSpec` as a dict)
    lora_save: str = "merged"
    models: tuple[str, ...] = ()  # the models axis: embedded names, or (tofu) hub ids / folders; () = default
    data: str | None = None  # tofu: hf:locuslab/TOFU or a folder
    oracles: tuple[str, ...] = ()  # tofu: the retain model of each model, in the same order
    retain_logs: tuple[str, ...] = ()  # tofu: or each model's OpenUnlearning retain log
    prompt: str = "auto"
    max_new_tokens: str | None = None  # tofu: the ROUGE generations' budget (`--max-new-tokens`)
    dtype: str = "fp32"
    objectives: tuple[str, ...] = ()  # the two maximised metrics; () = the family's `objectives`
    storage_path: str = ""  # where trials keep checkpoints and results, seen by every node; "" = the sweep folder
    optuna_storage: str = ""  # the methods' Optuna studies: an SQLAlchemy URL; "" = optuna.db in the sweep folder
    checkpoint_every: int = 0  # trials checkpoint every N steps, what a restarted trial resumes from
    max_failures: int = 0  # Ray Train restarts a trial's workers this often when one dies
    attacks: tuple[str, ...] = ()  # attacks on every trial's final model (its family's `attacks`)
    attack_settings: dict = field(default_factory=dict)  # how hard they push (`--attack-set`)
    utility_floor: float = UTILITY_FLOOR  # tau: the headline counts trials keeping tau of the target's utility

    def __post_init__(self):
        from ofmu_ray.methods import METHODS, check_applies

        unknown = [m for m in self.methods if m not in METHODS]
        if not self.methods or unknown:
            raise UsageError(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
        try:
            check_applies(self.methods, self.family.modality, self.bench)
        except ValueError as e:
            raise UsageError(str(e)) from e
        allowed = self.family.allowed_objectives
        if self.objectives and (len(self.objectives) != 2 or not set(self.objectives) <= set(allowed)):
            raise UsageError(f"--objectives {','.join(self.objectives)}: two of {', '.join(allowed)}")
        check_budget(self.steps, self.epochs)
        self.family.check_attacks(self.attacks, self.attack_settings)
        if any(o.startswith("robust/") for o in self.objectives) and not self.attacks:
            raise UsageError("--objectives robust/...: the worst case over --attacks, which this sweep does not run")
        if self.trials < 1 or self.workers < 1 or min(
                self.trials_per_dim, self.seeds, self.concurrency, self.checkpoint_every, self.max_failures) < 0:
            raise UsageError("need trials and workers >= 1; seeds, concurrency, checkpoint-every and "
                             "max-failures >= 0")
        check_utility_floor(self.utility_floor)
        if self.batch_size % self.workers:
            raise UsageError(f"batch size {self.batch_size} is not divisible by {self.workers} workers")
        if self.rerun not in RERUNS:
            raise UsageError(f"unknown --rerun {self.rerun!r}; choose from {', '.join(RERUNS)}")
        if self.sampler not in SAMPLERS:
            raise UsageError(f"unknown sampler {self.sampler!r}; choose from {', '.join(SAMPLERS)}")
        extra = set(self.spaces) - set(self.methods)
        if extra:
            raise UsageError(f"--space for {', '.join(sorted(extra))}, which this sweep does not run")
        if len(set(self.models)) < len(self.models):
            raise UsageError(f"--models names a model twice: {', '.join(self.models)}")
        for option, values in (("--oracle", self.oracles), ("--retain-logs", self.retain_logs)):
            if values and len(values) != len(self.models or (None,)):
                raise UsageError(f"{option} gives {len(values)} but the sweep has {len(self.models or (None,))} "
                                 "models: one per model, in the same order")

    def trials_for(self, dimensions: int) -> int:
        """A method's trials: `trials` for every method (equal trials), or with `trials_per_dim` K,
        K per searched dimension and at least `MIN_TRIALS` (equal search effort)."""
        return max(MIN_TRIALS, self.trials_per_dim * dimensions) if self.trials_per_dim else self.trials

    @property
    def search_effort(self) -> str:
        """How the trials were shared out, as the report says it."""
        return (f"{self.trials_per_dim} trials per searched dimension (at least {MIN_TRIALS})" if self.trials_per_dim
                else f"{self.trials} trials for every method")

    @property
    def family(self) -> Family:
        return family_of(self.bench)

    @property
    def goal(self) -> Objectives:
        return Objectives(*(self.objectives or self.family.objectives))


def check_utility_floor(tau: float) -> None:
    """`--utility-floor` is a share of the target's utility, strictly between 0 and 1.

    Raises:
        UsageError: anything else.
    """
    if not 0 < tau < 1:
        raise UsageError(f"--utility-floor {tau}: the share of the target's utility a trial must keep, in (0, 1); "
                         f"default {UTILITY_FLOOR}")


def new_name(cfg: SweepConfig) -> str:
    """A sweep name that sorts by start time."""
    return f"{cfg.bench}-{cfg.profile}-{cfg.split}-{time.strftime('%Y%m%d-%H%M%S')}"


def load_config(sweep_dir: Path) -> SweepConfig:
    """The settings a sweep was started with (its `sweep.json`)."""
    path = sweep_dir / "sweep.json"
    if not path.is_file():
        raise UsageError(f"{sweep_dir} is not a sweep folder (no sweep.json)")
    raw = json.loads(path.read_text())
    lists = ("methods", "models", "oracles", "retain_logs", "objectives", "attacks")  # JSON has no tuples
    return SweepConfig(**raw | {k: tuple(raw[k]) for k in lists if k in raw})
