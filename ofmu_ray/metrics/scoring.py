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
    """Scores each (question, answer) pair under the model, answer tokens only.

    Pairs that share a prompt share its forward pass: the prompt runs once and each of its answers
    continues from a copy of its key/value cache. A question is asked with its answer, paraphrase and
    perturbed answers, so most of the tokens an evaluation would run are prompts run again.
    """
    model.eval()
    pairs = [encode_example(tokenizer, q, a) for q, a in zip(questions, answers, strict=True)]
    # The prompt's last token predicts the answer's first, so it begins the answer's pass.
    starts = [labels.index(next(t for t in labels if t != IGNORE)) - 1 for _, labels in pairs]
    if min(starts, default=1) < 1:
        raise ValueError("an answer needs a prompt of at least two tokens before it to be scored")
    by_prompt: dict[tuple[int, ...], list[int]] = {}
    for i, ((ids, _), start) in enumerate(zip(pairs, starts, strict=True)):
        by_prompt.setdefault(tuple(ids[:start]), []).append(i)
    losses = np.zeros(len(pairs))
    logprobs, means, variances = [None] * len(pairs), [None] * len(pairs), [None] * len(pairs)
    for prompts in _prompt_batches(by_prompt):
        members = [i for p in prompts for i in by_prompt[p]]
        cache, seen = _prompt_cache(model, prompts, [len(by_prompt[p]) for p in prompts], tokenizer.pad_token_id)
        rest = collate([(pairs[i][0][starts[i]:], pairs[i][0][starts[i]:]) for i in members], tokenizer.pad_token_id)
        # Answers are right-padded and attention is causal: no real token sees a pad. Only pad-valued
        # tokens inside a prompt or an answer (a chat template's turn ends: `collate`) need a mask.
        inside = any(tokenizer.pad_token_id in pairs[i][0][starts[i]:] for i in members)
        attention = None if seen.all() and not inside else torch.cat([seen, rest["attention_mask"].to(model.device)], 1)
        logits = model(input_ids=rest["input_ids"].to(model.device), attention_mask=attention, cache=cache).logits
        logp = torch.log_softmax(logits[:, :-1].to(at_least_fp32(logits.dtype)), -1)  # (B, T-1, V)
        labels = rest["labels"][:, 1:].to(model.device)
        mask = (rest["labels"][:, 1:] != IGNORE).to(model.device)  # every answer token, pad-valued ones too
        token_lp = logp.gather(-1, labels.clamp_min(0).unsqueeze(-1)).squeeze(-1) * mask
        losses[members] = (-token_lp.sum(1) / mask.sum(1)).cpu().numpy()
        if tokens:
            p = logp.exp()
            mu = (p * logp).sum(-1)
            var = (p * logp * logp).sum(-1) - mu * mu
            for row, i in enumerate(members):
                where = mask[row].nonzero().squeeze(-1)[:-1]  # drop the EOS prediction
                logprobs[i] = token_lp[row, where].cpu().numpy()
                means[i] = mu[row, where].cpu().numpy()
                variances[i] = var[row, where].cpu().numpy()
    return AnswerScores(losses, logprobs, means, variances) if tokens else AnswerScores(losses)


def _prompt_batches(by_prompt: dict[tuple[int, ...], list[int]]):
    """Prompts of one length (no padding, so positions need no care), about BATCH answers a batch."""
    batch: list[tuple[int, ...]] = []
    answers = 0
    for prompt in sorted(by_prompt, key=len):
        if batch and (len(prompt) != len(batch[0]) or answers + len(by_prompt[prompt]) > BATCH):
            yield batch
            batch, answers = [], 0
        batch.append(prompt)
        answers += len(by_prompt[prompt])
    if batch:
        yield batch


def _prompt_cache(model, prompts: list[tuple[int, ...]], repeats: list[int], pad_id: int):
    """The prompts' key/value cache and attention mask (pad-valued tokens masked, as `collate` does),
    each prompt's row repeated once per answer it has."""
    ids = torch.tensor(prompts, dtype=torch.long, device=model.device)
    seen = (ids != pad_id).long()
    cache = model(input_ids=ids, attention_mask=None if seen.all() else seen, use_cache=True, logits_to_keep=1).cache
    rows = torch.repeat_interleave(torch.arange(len(prompts), device=model.device),
                                   torch.tensor(repeats, device=model.device))
    cache.reorder_cache(rows)
    return cache, seen[rows]


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
