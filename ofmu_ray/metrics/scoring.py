"""Model passes that turn QA rows into per-question numbers; everything after is `formulas.py`.

Batched: one forward pass per batch of (question, answer) pairs gives every answer's average loss
(and, for membership inference, its token log-probabilities); generation runs only for ROUGE.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ofmu_ray.models.batch import collate, prompt_batch
from ofmu_ray.models.factory import at_least_fp32
from ofmu_ray.models.prompt import IGNORE, encode_example

BATCH = 64


@dataclass
class AnswerScores:
    """Per answer: average token loss (EOS included, as OpenUnlearning); with `tokens`, the
    log-probability of each answer token and the mean/variance of log p over the vocabulary
    there (EOS excluded, as OpenUnlearning's MIA code)."""

    avg_loss: np.ndarray
    token_logprobs: list[np.ndarray] | None = None
    means: list[np.ndarray] | None = None
    variances: list[np.ndarray] | None = None


@torch.no_grad()
def score_answers(model, tokenizer, questions: list[str], answers: list[str], tokens: bool = False) -> AnswerScores:
    """Scores each (question, answer) pair under the model, answer tokens only."""
    model.eval()
    losses, logprobs, means, variances = [], [], [], []
    pairs = [encode_example(tokenizer, q, a) for q, a in zip(questions, answers, strict=True)]
    # Batches of similar lengths: padding is most of the work otherwise. Results go back in order.
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]))
    for start in range(0, len(pairs), BATCH):
        batch = collate([pairs[i] for i in order[start : start + BATCH]], tokenizer.pad_token_id)
        batch = {k: v.to(model.device) for k, v in batch.items()}
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        logp = torch.log_softmax(logits[:, :-1].to(at_least_fp32(logits.dtype)), -1)  # (B, T-1, V)
        labels = batch["labels"][:, 1:]
        mask = labels != IGNORE
        token_lp = logp.gather(-1, labels.clamp_min(0).unsqueeze(-1)).squeeze(-1) * mask
        losses.append((-token_lp.sum(1) / mask.sum(1)).cpu().numpy())
        if tokens:
            p = logp.exp()
            mu = (p * logp).sum(-1)
            var = (p * logp * logp).sum(-1) - mu * mu
            for i in range(len(labels)):
                where = mask[i].nonzero().squeeze(-1)[:-1]  # drop the EOS prediction
                logprobs.append(token_lp[i, where].cpu().numpy())
                means.append(mu[i, where].cpu().numpy())
                variances.append(var[i, where].cpu().numpy())
    back = np.argsort(order)  # position of item i in the sorted order
    avg = np.concatenate(losses)[back] if losses else np.zeros(0)
    if not tokens:
        return AnswerScores(avg)
    return AnswerScores(avg, *([values[i] for i in back] for values in (logprobs, means, variances)))


def score_options(model, tokenizer, questions: list[str], options: list[list[str]]) -> list[np.ndarray]:
    """Average loss of each option of each question (questions may have different numbers)."""
    flat_q = [q for q, opts in zip(questions, options, strict=True) for _ in opts]
    flat_a = [a for opts in options for a in opts]
    flat = score_answers(model, tokenizer, flat_q, flat_a).avg_loss
    ends = np.cumsum([len(o) for o in options])
    return np.split(flat, ends[:-1])


@torch.no_grad()
def pooled_hidden(model, tokenizer, questions: list[str]) -> np.ndarray:
    """Mean over the prompt's tokens of the last hidden state, one vector per question (N, d)."""
    model.eval()
    out = []
    for start in range(0, len(questions), BATCH):
        enc = {k: v.to(model.device) for k, v in prompt_batch(tokenizer, questions[start : start + BATCH]).items()}
        hidden = model(**enc, output_hidden_states=True).hidden_states[-1]
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        out.append(((hidden * mask).sum(1) / mask.sum(1)).float().cpu().numpy())
    return np.concatenate(out)
