"""How a question and its answer become model input: one place, used by training and evaluation."""

from __future__ import annotations

import torch

IGNORE = -100  # label value that cross-entropy skips: question tokens carry no loss (as in TOFU)


def format_prompt(question: str) -> str:
    """The prompt a question is asked with (TOFU's plain question/answer format)."""
    return f"Question: {question}\nAnswer:"


def encode_example(tokenizer, question: str, answer: str) -> tuple[list[int], list[int]]:
    """Token ids and labels for one example; only answer tokens (and EOS) are labelled.

    An empty question means free text (a bio): every token after BOS is labelled.
    """
    prompt = tokenizer(format_prompt(question) if question else "")["input_ids"]
    completion = tokenizer(" " + answer if question else answer, add_special_tokens=False)["input_ids"]
    completion = completion + [tokenizer.eos_token_id]
    return prompt + completion, [IGNORE] * len(prompt) + completion


def collate(examples: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pads a batch of (ids, labels) into `input_ids`, `attention_mask`, `labels` (B, T)."""
    width = max(len(ids) for ids, _ in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, (x, y) in enumerate(examples):
        ids[i, : len(x)] = torch.tensor(x)
        labels[i, : len(y)] = torch.tensor(y)
        mask[i, : len(x)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
