"""Token-weighted gradient ascent: WGA and SatImp ascend the forget NLL token by token, each token's
cross-entropy CE_t weighted by a function of its probability p_t = exp(-CE_t), held constant (no
gradient flows through the weight):

    L_f = -mean_t [ w(p_t) * CE_t ]           over the answer tokens of the (global) forget batch
    L   = gamma * L_f + alpha * NLL(retain)

WGA weights by p^beta, so tokens already forgotten (small p) stop pulling; SatImp multiplies by
(1 - p)^beta2 as well, so tokens the model is sure of wait until they are no longer saturated.
Formulas as in the papers and in OpenUnlearning (its `compute_wga_loss` / `compute_satimp_loss`);
OpenUnlearning also loads a reference model for both and never uses it: here neither holds one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ofmu_ray.config import param
from ofmu_ray.methods.base import TEXT, LossMethod, OptimizerConfig
from ofmu_ray.methods.losses import Batch, token_mean, token_nll


def weighted_ascent_loss(per_token_nll: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """-mean over the labelled tokens of `weight * per_token_nll`, the weight detached; all (B, T-1)."""
    return -token_mean(weight.detach() * per_token_nll, mask)


def wga_weight(per_token_nll: torch.Tensor, beta: float) -> torch.Tensor:
    """p^beta with p = exp(-CE), each token's probability (WGA)."""
    return torch.exp(-beta * per_token_nll.detach())


def satimp_weight(per_token_nll: torch.Tensor, beta1: float, beta2: float) -> torch.Tensor:
    """p^beta1 * (1 - p)^beta2 (SatImp: importance times saturation)."""
    p = torch.exp(-per_token_nll.detach())
    return p**beta1 * (1 - p) ** beta2


class _WeightedAscent(LossMethod):
    """gamma * L_f + alpha * NLL(retain), with the forget tokens weighted by `weight`."""

    modalities = TEXT  # token-level: QA answers and corpus texts alike

    def weight(self, per_token_nll: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, forget: Batch, retain: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        per_token, mask = token_nll(self.model, forget)
        return self.with_retain(weighted_ascent_loss(per_token, mask, self.weight(per_token)), "forget_loss", retain)


@dataclass(frozen=True)
class WGAConfig(OptimizerConfig):
    lr: float = param(1e-4, "AdamW learning rate for the tiny embedded models (OpenUnlearning's WGA: 1e-5 on "
                      "1B-7B models)", low=0.0, high=1.0)
    beta: float = param(1.0, "exponent of the token weight p^beta (OpenUnlearning: 1)", low=0.0)
    gamma: float = param(1.0, "weight of the forget term", low=0.0)
    alpha: float = param(1.0, "weight of the retain NLL (0: none)", low=0.0)


class WGA(_WeightedAscent):
    """Weighted gradient ascent: each forget token's ascent weighted by its probability p^beta."""

    name = "wga"
    paper = "Wang et al. 2025, Rethinking LLM Unlearning Objectives: A Gradient Perspective and Go Beyond (ICLR 2025)"
    Config = WGAConfig

    def weight(self, per_token_nll):
        return wga_weight(per_token_nll, self.cfg.beta)


@dataclass(frozen=True)
class SatImpConfig(OptimizerConfig):
    lr: float = param(1e-4, "AdamW learning rate for the tiny embedded models (OpenUnlearning's SatImp: 1e-5 on "
                      "1B-7B models)", low=0.0, high=1.0)
    beta1: float = param(5.0, "exponent of p, the importance term (paper: 5)", low=0.0)
    beta2: float = param(1.0, "exponent of 1 - p, the saturation term (paper: 1)", low=0.0)
    # OpenUnlearning's SatImp.yaml sets gamma 0.1 / alpha 1; its trainer's defaults and the authors'
    # README set gamma 1 / alpha 0.1: the paper's forget-to-retain ratio of 10, which is what we follow
    gamma: float = param(1.0, "weight of the forget term (paper: 1, ten times the retain weight)", low=0.0)
    alpha: float = param(0.1, "weight of the retain NLL (paper: 0.1)", low=0.0)


class SatImp(_WeightedAscent):
    """Saturation-importance reweighted ascent: forget tokens weighted by p^beta1 * (1 - p)^beta2."""

    name = "satimp"
    paper = "Yang et al. 2025, Exploring Criteria of Loss Reweighting to Enhance LLM Unlearning (ICML 2025, " \
            "arXiv 2505.11953)"
    Config = SatImpConfig

    def weight(self, per_token_nll):
        return satimp_weight(per_token_nll, self.cfg.beta1, self.cfg.beta2)
