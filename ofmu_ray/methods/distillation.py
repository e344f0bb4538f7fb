"""Unlearning by descent towards a target distribution over the vocabulary, token by token: UNDIAL
and CE-U. Both take an ordinary cross-entropy step, CE(q_t, p_theta,t) = -sum_v q_t,v log p_theta,t,v,
towards a target q_t that moves probability off the answer's token y_t; neither ascends, so neither
explodes the way gradient ascent does.

    UNDIAL  q_t = softmax(z_ref,t - beta * onehot(y_t))        the frozen target's logits, y_t lowered by beta
    CE-U    q_t = softmax(z_t with z_t,y_t = -inf)             the model's own logits (detached), y_t removed

Both average over the answer tokens of the (global) forget batch. Where OpenUnlearning's code departs
from the papers, the papers are followed: its UNDIAL averages over every position, question and
padding included, and indexes the one-hot of an unlabelled position (-100) at vocabulary slot V - 100.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ofmu_ray.config import param
from ofmu_ray.methods.base import TEXT, LossMethod, OptimizerConfig
from ofmu_ray.methods.losses import Batch, answer_logits, token_mean


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-sum_v target_v log softmax(logits)_v per position: (B, T, V) -> (B, T); `target` is a distribution."""
    return -(target * F.log_softmax(logits, -1)).sum(-1)


def undial_target(ref_logits: torch.Tensor, labels: torch.Tensor, beta: float) -> torch.Tensor:
    """softmax(z_ref - beta * onehot(y)): the target's distribution with the answer token's logit lowered."""
    lowered = ref_logits.detach().clone()
    lowered.scatter_add_(-1, labels.unsqueeze(-1), torch.full_like(lowered[..., :1], -beta))
    return F.softmax(lowered, -1)


def ceu_target(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """softmax(z) with the answer token's logit set to -inf (so its probability is 0), detached."""
    removed = logits.detach().clone()
    removed.scatter_(-1, labels.unsqueeze(-1), float("-inf"))
    return F.softmax(removed, -1)


def skip_first(mask: torch.Tensor, n: int) -> torch.Tensor:
    """`mask` (B, T) without the first `n` labelled tokens of each sequence."""
    return mask & (mask.cumsum(1) > n)


@dataclass(frozen=True)
class UNDIALConfig(OptimizerConfig):
    lr: float = param(1e-3, "AdamW learning rate for the tiny embedded models (OpenUnlearning's UNDIAL: 1e-4 on "
                      "1B-7B models, the paper's LoRA rate)", low=0.0, high=1.0)
    beta: float = param(10.0, "how far the answer token's logit is lowered in the target (paper: 3-30; "
                        "OpenUnlearning: 10)", low=0.0)
    gamma: float = param(1.0, "weight of the forget (distillation) term", low=0.0)
    alpha: float = param(0.0, "weight of the retain NLL (the paper uses no retain data: 0)", low=0.0)


class UNDIAL(LossMethod):
    """Self-distillation towards the frozen target's logits with the answer token's logit lowered by beta."""

    name = "undial"
    paper = ("Dong et al. 2025, UNDIAL: Self-Distillation with Adjusted Logits for Robust Unlearning in Large "
             "Language Models (NAACL 2025, arXiv 2402.10052)")
    Config = UNDIALConfig
    needs_reference = True
    modalities = TEXT  # token-level: QA answers and corpus texts alike

    def loss(self, forget: Batch, retain: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits, labels, mask = answer_logits(self.model, forget)
        with torch.no_grad():
            ref_logits, _, _ = answer_logits(self.reference, forget)
        forget_loss = token_mean(soft_cross_entropy(logits, undial_target(ref_logits, labels, self.cfg.beta)), mask)
        return self.with_retain(forget_loss, "undial_loss", retain)


@dataclass(frozen=True)
class CEUConfig(OptimizerConfig):
    lr: float = param(1e-4, "AdamW learning rate for the tiny embedded models (OpenUnlearning's CE-U: 1e-5 on "
                      "1B-7B models)", low=0.0, high=1.0)
    skip_tokens: int = param(1, "the first answer tokens of each sequence left out of the loss (OpenUnlearning's "
                             "ignore_first_n_answer_tokens: 1; often a template word, not the fact)", low=0)


class CEU(LossMethod):
    """Cross-entropy unlearning: descent towards the model's own distribution with the answer token removed."""

    name = "ceu"
    paper = "Yang 2025, CE-U: Cross Entropy Unlearning (arXiv 2503.01224)"
    Config = CEUConfig
    modalities = TEXT  # token-level: QA answers and corpus texts alike

    def loss(self, forget: Batch, retain: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits, labels, mask = answer_logits(self.model, forget)
        forget_loss = token_mean(soft_cross_entropy(logits, ceu_target(logits, labels)),
                                 skip_first(mask, self.cfg.skip_tokens))
        return forget_loss, {"ceu_loss": forget_loss}
