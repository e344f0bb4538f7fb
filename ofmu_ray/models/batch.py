"""Encoded examples as padded tensors: right-padded training batches, left-padded prompts for generation."""

from __future__ import annotations

import torch

from ofmu_ray.models.prompt import IGNORE, prompt_of


def prompt_batch(tokenizer, questions: list[str]) -> dict[str, torch.Tensor]:
    """Left-padded prompts (`input_ids`, `attention_mask`), as batched generation needs them; tokens
    equal to the pad token are masked wherever they are (`collate`)."""
    fmt = prompt_of(tokenizer)
    rows = [fmt.prompt_ids(tokenizer, q) for q in questions]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r)
        mask[i, width - len(r):] = ids[i, width - len(r):] != tokenizer.pad_token_id
    return {"input_ids": ids, "attention_mask": mask}


def collate(examples: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pads a batch of (ids, labels) into `input_ids`, `attention_mask`, `labels` (B, T).

    A token equal to `pad_id` is masked out of attention inside the sequence too, as OpenUnlearning's
    collator masks `input_ids != pad`: where pad is EOS (Llama-3, SmolLM2), the turn ends of a chat
    prompt are not attended to in training, unlearning or evaluation. (Its label stays: a token's
    loss is predicted from the position before it.)"""
    width = max(len(ids) for ids, _ in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, (x, y) in enumerate(examples):
        ids[i, : len(x)] = torch.tensor(x)
        labels[i, : len(y)] = torch.tensor(y)
        mask[i, : len(x)] = ids[i, : len(x)] != pad_id
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
