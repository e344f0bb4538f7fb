"""The interface every unlearning method implements.

A method is built from its typed config, receives the model (and a frozen reference model where it
needs one) and, one call at a time, a forget batch and a retain batch; it updates the model and
returns the scalars worth logging. Methods import nothing from Ray or MLflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ofmu_ray.config import Validated, param
from ofmu_ray.methods.distributed import all_reduce_mean
from ofmu_ray.methods.losses import Batch, nll

# What a method can unlearn from (a family's `modality`): question-answer rows (TOFU-style), text
# corpora (WMDP-style) or labelled images
QA, CORPUS, IMAGE = "qa", "corpus", "image"
TEXT = (QA, CORPUS)

MAX_GRAD_NORM = 1.0  # HF Trainer's default, so OpenUnlearning's baselines clip at 1.0 too
WEIGHT_DECAY = 0.01  # OpenUnlearning's TOFU setting


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DistributedDataParallel wrapper (or the model itself)."""
    return getattr(model, "module", model)


@dataclass(frozen=True)
class MethodConfig(Validated):
    """Base of every method's config."""


@dataclass(frozen=True)
class OptimizerConfig(MethodConfig):
    """Settings of the first-order methods, which all step AdamW."""

    lr: float = param(1e-4, "AdamW learning rate; published defaults are for 1B-7B models (TOFU: 1e-5), "
                      "the tiny embedded models need a larger one", low=0.0, high=1.0)


class Method:
    """Base class: subclasses set `name`, `Config` and implement `step`."""

    name: ClassVar[str]
    paper: ClassVar[str]  # where the method comes from, as `ofmu-ray methods` cites it
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    needs_reference: ClassVar[bool] = False
    # True: every forget batch also holds its questions answered with a refusal reply (`refusal_*` keys,
    # `train.task.batches`), which only question-answer rows can give
    needs_refusals: ClassVar[bool] = False
    ddp: ClassVar[bool] = True  # False: the method averages its own gradients (autograd.grad)
    modalities: ClassVar[tuple[str, ...]] = (*TEXT, IMAGE)  # what it can unlearn from

    def __init__(self, model: torch.nn.Module, cfg: MethodConfig, reference: torch.nn.Module | None = None,
                 budget: int | None = None):
        """`budget`: the forget batches the run will feed (`step` calls); None when open-ended."""
        if not isinstance(cfg, self.Config):
            raise TypeError(f"{self.name} needs a {self.Config.__name__}, got {type(cfg).__name__}")
        if self.needs_reference and reference is None:
            raise ValueError(f"{self.name} needs a frozen reference model (the model before unlearning)")
        self.model, self.cfg, self.reference, self.budget = model, cfg, reference, budget

    @staticmethod
    def prepare_model(model: torch.nn.Module, cfg: MethodConfig) -> None:
        """Adjusts the bare model before any data-parallel wrapping (e.g. freezes parameters)."""

    @property
    def cycle(self) -> int:
        """Steps after which the method's sequence of step kinds repeats (OFMU: one outer iteration)."""
        return 1

    def step(self, forget: Batch, retain: Batch) -> dict[str, float]:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """What a run resumed from a checkpoint needs besides the weights (optimizer moments, schedules)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restores what `state_dict` returned."""


class LossMethod(Method):
    """A first-order method: one loss, one AdamW step; DDP averages the gradients in `.backward()`."""

    Config: ClassVar[type[OptimizerConfig]] = OptimizerConfig

    def __init__(self, model, cfg, reference=None, budget=None):
        super().__init__(model, cfg, reference, budget)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=cfg.lr, weight_decay=WEIGHT_DECAY)

    def loss(self, forget: Batch, retain: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss to minimise, and the terms worth logging (this rank's shares, see `global_mean`)."""
        raise NotImplementedError

    def with_retain(self, forget_loss: torch.Tensor, name: str,
                    retain: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """`gamma * forget_loss + alpha * NLL(retain)` for a config with both weights, and both terms to
        log (`name`, `retain_nll`); with alpha 0 the retain batch is not even scored."""
        loss, logs = self.cfg.gamma * forget_loss, {name: forget_loss}
        if self.cfg.alpha > 0:
            retain_nll = nll(self.model, retain)
            loss = loss + self.cfg.alpha * retain_nll
            logs["retain_nll"] = retain_nll
        return loss, logs

    def step(self, forget: Batch, retain: Batch) -> dict[str, float]:
        self.model.train()
        loss, terms = self.loss(forget, retain)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, MAX_GRAD_NORM)
        self.optimizer.step()
        return global_logs({"loss": loss, **terms})

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])


def global_logs(terms: dict[str, torch.Tensor]) -> dict[str, float]:
    """Logged values of the global batch: the mean of the ranks' shares (identity in one process)."""
    return {name: all_reduce_mean(value.detach()).item() for name, value in terms.items()}
