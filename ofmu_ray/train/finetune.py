"""Fine-tuning a causal LM on QA rows: how the target and the retain oracles are made.

One loop, top to bottom: encode, then per epoch shuffle length-grouped batches, step AdamW under a
one-cycle learning rate. Loss is on answer tokens only (question tokens masked), as in TOFU.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import torch

from ofmu_ray.config import FinetuneConfig
from ofmu_ray.models.batch import collate
from ofmu_ray.models.prompt import encode_row

GROUP = 50  # batches per length group: long bios share batches instead of padding short QA rows


def _batches(n_items: int, lengths: list[int], batch: int, rng: random.Random) -> list[list[int]]:
    order = list(range(n_items))
    rng.shuffle(order)
    batches = []
    for start in range(0, n_items, batch * GROUP):
        group = sorted(order[start : start + batch * GROUP], key=lengths.__getitem__)
        batches += [group[i : i + batch] for i in range(0, len(group), batch)]
    rng.shuffle(batches)
    return batches


def steps_for(n_rows: int, cfg: FinetuneConfig) -> int:
    """Optimizer steps `finetune` takes on `n_rows` rows (for progress bars)."""
    return cfg.epochs * math.ceil(n_rows / cfg.batch_size)


def finetune(model: torch.nn.Module, tokenizer, rows: list[dict], cfg: FinetuneConfig,
             on_step: Callable[[float], None] | None = None) -> list[float]:
    """Trains `model` in place on QA rows (`question`, `answer`; empty question: free text) or `text` rows.

    Args:
        model: a causal LM returning `.loss` when given `labels`.
        tokenizer: the model's tokenizer.
        rows: training rows.
        cfg: optimisation settings.
        on_step: called with the loss after every optimizer step (progress bars).

    Returns:
        The mean training loss of each epoch.
    """
    examples = [encode_row(tokenizer, r) for r in rows]
    lengths = [len(ids) for ids, _ in examples]
    rng = random.Random(cfg.seed)
    torch.manual_seed(cfg.seed)
    total = steps_for(len(examples), cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    # At least two warm-up steps: OneCycleLR divides by the warm-up's length minus one
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total,
                                                pct_start=max(cfg.warmup, 2 / total))
    device = next(model.parameters()).device  # a GPU worker's model (the attacks fine-tune one)
    model.train()
    epoch_losses = []
    for _ in range(cfg.epochs):
        losses = []
        for idx in _batches(len(examples), lengths, cfg.batch_size, rng):
            batch = {k: v.to(device) for k, v in collate([examples[i] for i in idx], tokenizer.pad_token_id).items()}
            loss = model(**batch).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
            if on_step:
                on_step(losses[-1])
        epoch_losses.append(sum(losses) / len(losses))
    model.eval()
    return epoch_losses
