"""The losses the methods share, as plain functions of a model and a batch.

A text batch is what `ofmu_ray.models.batch.collate` returns: `input_ids`, `attention_mask` and
`labels` (answer tokens labelled, question and padding set to -100); an image batch holds `pixels`
and class `labels`. Formulas follow OpenUnlearning's code (its `src/trainer/utils.py` and the
trainers in `src/trainer/unlearn/`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ofmu_ray.methods.distributed import global_mean
from ofmu_ray.models.factory import at_least_fp32
from ofmu_ray.models.prompt import IGNORE

Batch = dict[str, torch.Tensor]
# A forget batch's questions answered with refusal replies ride along under these keys
# (`refusal_input_ids`, ...): what IdkDPO prefers to the true answers
REFUSAL = "refusal_"


def answer_logits(model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The logits that predict each next token (B, T-1, V, in at least fp32), the tokens they predict
    (B, T-1; unlabelled ones set to 0, a valid index) and the mask of the labelled ones (B, T-1)."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    labels = batch["labels"][:, 1:]
    mask = labels != IGNORE
    return logits[:, :-1].to(at_least_fp32(logits.dtype)), labels.clamp_min(0), mask


def token_nll(model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token NLL of the labelled tokens and their mask, both (B, T-1)."""
    logits, labels, mask = answer_logits(model, batch)
    nll = F.cross_entropy(logits.transpose(1, 2), labels, reduction="none")
    return nll * mask, mask


def token_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of per-token `values` (B, T-1) over the labelled tokens of the global batch (`global_mean`)."""
    return global_mean((values * mask).sum(), mask.sum())


def nll(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """Mean NLL over every answer token of the (global) batch (HF's `outputs.loss`), or over its
    images' class labels (cross-entropy): what gradient ascent, GradDiff and OFMU descend or ascend."""
    if "pixels" in batch:
        logits = model(batch["pixels"])
        total = F.cross_entropy(logits.to(at_least_fp32(logits.dtype)), batch["labels"], reduction="sum")
        return global_mean(total, len(batch["labels"]))
    per_token, mask = token_nll(model, batch)
    return token_mean(per_token, mask)


def sequence_nll(model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed answer NLL of each sequence, S(x, y) = -log p(y|x), and its answer length; both (B,)."""
    per_token, mask = token_nll(model, batch)
    return per_token.sum(1), mask.sum(1)


def npo_loss(s_model: torch.Tensor, s_ref: torch.Tensor, beta: float) -> torch.Tensor:
    """NPO: (2/beta) * mean log(1 + (p/p_ref)^beta) = -(2/beta) * mean log sigmoid(-beta * r),
    with r = log p - log p_ref = s_ref - s_model (Zhang et al. 2024, eq. 3; OpenUnlearning npo.py)."""
    r = s_ref - s_model
    return global_mean(-(2 / beta) * F.logsigmoid(-beta * r).sum(), len(r))


def simnpo_loss(s_model: torch.Tensor, lengths: torch.Tensor, beta: float, delta: float) -> torch.Tensor:
    """SimNPO: -(2/beta) * mean log sigmoid(beta * (S/|y| - delta)); reference-free and
    length-normalised (Fan et al. 2024; the paper's margin gamma is beta * delta here)."""
    x = beta * (s_model / lengths.clamp_min(1) - delta)
    return global_mean(-(2 / beta) * F.logsigmoid(x).sum(), len(x))
