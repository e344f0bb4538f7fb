"""PDU (Entesari et al. 2025): constrained unlearning solved by a primal-dual method.

    minimise  L_f(theta)   subject to   L_r(theta) <= epsilon

L_f flattens the forget answers' output distributions: the squared margin between the largest logit
and the mean logit, averaged over the answer tokens, is zero exactly when the distribution is uniform.
L_r is the retain NLL. Each step descends the Lagrangian in theta, then ascends it in the dual variable:

    L(theta, lambda) = gamma * L_f + lambda * (L_r - epsilon)
    lambda <- max(0, lambda + eta * (L_r - epsilon))        after the first `dual_warmup` of the run

epsilon has no default upstream (OpenUnlearning's `retain_loss_eps` must be set; the authors advise "a
value appropriately larger than the retain loss of the pretrained model"). Here it follows that advice
on every model without a number to look up: epsilon = the retain NLL measured on the run's first retain
batch, before any update (the target's), plus `epsilon_margin` nats per token. An additive margin, not
a multiple, because targets differ most in how well they have memorised their retain set: synth-tofu's
targets (recipe 3) sit at 0.004 (tiny) and 0.001 (small) nats per token on retain90, measured on
batches of 16, where a multiple would leave no room at all. The default 0.1 lets the retain tokens'
geometric-mean probability fall by at most 1 - e^-0.1 ~ 10 % before lambda grows.

Data parallelism: lambda and epsilon are updated from the *global* retain NLL (the ranks' shares
averaged), so every rank holds the same values at every step, as one process would.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ofmu_ray.config import param
from ofmu_ray.methods.base import TEXT, LossMethod, OptimizerConfig
from ofmu_ray.methods.distributed import all_reduce_mean
from ofmu_ray.methods.losses import Batch, answer_logits, nll, token_mean


def logit_margin_loss(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """mean over the labelled tokens of (max_v z_v - mean_v z_v)^2; `logits` (B, T, V), `mask` (B, T)."""
    margin = logits.max(-1).values - logits.mean(-1)
    return token_mean(margin**2, mask)


def dual_update(dual: float, retain_loss: float, epsilon: float, step_size: float) -> float:
    """Projected dual ascent: max(0, lambda + eta * (L_r - epsilon))."""
    return max(0.0, dual + step_size * (retain_loss - epsilon))


@dataclass(frozen=True)
class PDUConfig(OptimizerConfig):
    lr: float = param(1e-4, "AdamW learning rate for the tiny embedded models (OpenUnlearning's PDU: 1e-5 on "
                      "1B-7B models)", low=0.0, high=1.0)
    gamma: float = param(1.0, "weight of the forget (logit-margin) term", low=0.0)
    alpha: float = param(1.0, "lambda's starting value, the retain weight (OpenUnlearning: 1; the authors' "
                         "TOFU runs: 100)", low=0.0)
    epsilon_margin: float = param(0.1, "epsilon, the retain-loss bound, minus the target's retain NLL (measured on "
                                  "the run's first retain batch), in nats per token", low=0.0)
    dual_lr: float = param(1.0, "eta, the dual variable's step size (OpenUnlearning's dual_step_size: 1)", low=0.0)
    dual_warmup: float = param(0.5, "share of the run's forget batches before lambda moves (OpenUnlearning: 5 of "
                               "10 epochs; a run without a budget starts at once)", low=0.0, high=1.0)


class PDU(LossMethod):
    """Primal-dual unlearning: flatten the forget logits subject to a retain-loss bound, by dual ascent."""

    name = "pdu"
    paper = ("Entesari et al. 2025, Constrained Entropic Unlearning: A Primal-Dual Framework for Large Language "
             "Models (arXiv 2506.05314)")
    Config = PDUConfig
    modalities = TEXT  # token-level: QA answers and corpus texts alike

    def __init__(self, model, cfg, reference=None, budget=None):
        super().__init__(model, cfg, reference, budget)
        self.dual = cfg.alpha
        self.epsilon: float | None = None  # measured at the first step
        self.steps = 0
        self.retain_measured = 0.0  # the global retain NLL of the latest step
        self.warmup = round(cfg.dual_warmup * budget) if budget else 0

    def loss(self, forget: Batch, retain: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits, _, mask = answer_logits(self.model, forget)
        forget_loss = logit_margin_loss(logits, mask)
        retain_nll = nll(self.model, retain)
        self.retain_measured = all_reduce_mean(retain_nll.detach()).item()  # the same number on every rank
        if self.epsilon is None:
            self.epsilon = self.retain_measured + self.cfg.epsilon_margin
        # the constant -lambda * epsilon moves no gradient; it makes the logged loss the Lagrangian
        loss = self.cfg.gamma * forget_loss + self.dual * (retain_nll - self.epsilon)
        as_tensor = lambda x: torch.tensor(x, dtype=retain_nll.dtype, device=retain_nll.device)  # noqa: E731
        return loss, {"margin_loss": forget_loss, "retain_nll": retain_nll, "dual": as_tensor(self.dual),
                      "epsilon": as_tensor(self.epsilon)}

    def step(self, forget: Batch, retain: Batch) -> dict[str, float]:
        logs = super().step(forget, retain)  # the primal step, at the current lambda
        self.steps += 1
        if self.steps > self.warmup:  # then the dual step, from the retain loss that primal step measured
            self.dual = dual_update(self.dual, self.retain_measured, self.epsilon, self.cfg.dual_lr)
        return logs

    def state_dict(self) -> dict:
        return super().state_dict() | {"dual": self.dual, "epsilon": self.epsilon, "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.dual, self.epsilon, self.steps = state["dual"], state["epsilon"], state["steps"]
