"""IdkDPO: direct preference optimisation with a refusal as the preferred answer and the true answer as
the rejected one, against the frozen target (Rafailov et al. 2023, DPO; the refusal targets of TOFU,
Maini et al. 2024; OpenUnlearning's `IdkDPO` experiment):

    margin_i = [log pi(y_w|x) - log pi_ref(y_w|x)] - [log pi(y_l|x) - log pi_ref(y_l|x)]
    L_f      = -mean_i log sigmoid(beta * margin_i)          y_w: a refusal, y_l: the forget answer
    L        = gamma * L_f + alpha * NLL(retain)

The refusal is drawn per forget row, in the task's batches (`train.task.batches`): each forget batch
then also holds its questions answered with refusals, under `refusal_*` keys. Only question-answer
rows can be answered with a refusal, so IdkDPO unlearns TOFU-style benchmarks, not text corpora.

Departure from OpenUnlearning's code, following the DPO paper: OpenUnlearning scales L_f by 2/beta
(its NPO helper's scale, reused for DPO), i.e. 20 at beta = 0.1; the paper's loss has no such factor.
With AdamW the scale of the whole loss barely matters, but it weighs the forget term 20 times more
against the retain NLL: OpenUnlearning's IdkDPO is this one at gamma = 2 / beta.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ofmu_ray.config import param
from ofmu_ray.methods.base import QA, LossMethod, OptimizerConfig
from ofmu_ray.methods.distributed import global_mean
from ofmu_ray.methods.losses import REFUSAL, Batch, nll, sequence_nll


def read_refusals(path: str | Path) -> list[str]:
    """The refusal replies in a text file, one per line (blank lines skipped).

    Raises:
        ValueError: the file cannot be read or holds no reply.
    """
    try:
        replies = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError as e:
        raise ValueError(f"refusals {path}: cannot read it ({e.strerror})") from e
    if not replies:
        raise ValueError(f"refusals {path}: no reply in it (one refusal per line)")
    return replies


def dpo_loss(s_win: torch.Tensor, s_win_ref: torch.Tensor, s_lose: torch.Tensor, s_lose_ref: torch.Tensor,
             beta: float) -> torch.Tensor:
    """DPO's loss from summed answer NLLs S = -log pi(y|x), all (B,): -mean log sigmoid(beta * margin),
    margin = (S_ref(y_w) - S(y_w)) - (S_ref(y_l) - S(y_l)) (Rafailov et al. 2023, eq. 7)."""
    margin = (s_win_ref - s_win) - (s_lose_ref - s_lose)
    return global_mean(-F.logsigmoid(beta * margin).sum(), len(margin))


@dataclass(frozen=True)
class IdkDPOConfig(OptimizerConfig):
    lr: float = param(1e-4, "AdamW learning rate for the tiny embedded models (OpenUnlearning's IdkDPO: 1e-5 on "
                      "1B-7B models)", low=0.0, high=1.0)
    beta: float = param(0.1, "DPO's inverse temperature (OpenUnlearning: 0.1)", low=1e-6)
    gamma: float = param(1.0, "weight of the forget (DPO) term (OpenUnlearning's 2/beta scale: gamma = 2/beta)",
                         low=0.0)
    alpha: float = param(1.0, "weight of the retain NLL", low=0.0)
    refusals: str = param("", "a text file of refusal replies, one per line, drawn per forget row (empty: "
                          "synth-tofu's 24 replies, on real TOFU data too)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.refusals:
            read_refusals(self.refusals)  # now, not on a worker in the middle of a sweep


class IdkDPO(LossMethod):
    """DPO with a refusal reply preferred over the forget answer, against the frozen target."""

    name = "idkdpo"
    paper = ("Rafailov et al. 2023, Direct Preference Optimization (NeurIPS 2023, arXiv 2305.18290), with "
             "TOFU's refusals (Maini et al. 2024, arXiv 2401.06121)")
    Config = IdkDPOConfig
    needs_reference = True
    needs_refusals = True
    modalities = (QA,)  # a refusal answers a question: text corpora have none

    def loss(self, forget: Batch, retain: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        refusal = {k[len(REFUSAL):]: v for k, v in forget.items() if k.startswith(REFUSAL)}
        if not refusal:
            raise ValueError("idkdpo needs forget batches that hold refusal answers (`refusal_*` keys): "
                             "batches(..., refusals=...) builds them")
        answer = {k: v for k, v in forget.items() if not k.startswith(REFUSAL)}
        s_win, _ = sequence_nll(self.model, refusal)
        s_lose, _ = sequence_nll(self.model, answer)
        with torch.no_grad():
            s_win_ref, _ = sequence_nll(self.reference, refusal)
            s_lose_ref, _ = sequence_nll(self.reference, answer)
        forget_loss = dpo_loss(s_win, s_win_ref, s_lose, s_lose_ref, self.cfg.beta)
        retain_nll = nll(self.model, retain)
        loss = self.cfg.gamma * forget_loss + self.cfg.alpha * retain_nll
        return loss, {"dpo_loss": forget_loss, "retain_nll": retain_nll}
