"""Greedy answers and answer accuracy: the share of questions whose greedy answer names the fact.

`prepare` reports it for the target and the oracles, because a split the target model cannot
answer measures nothing.
"""

from __future__ import annotations

import re

import torch

from ofmu_ray.models.batch import prompt_batch

_WORD = re.compile(r"\w+", re.UNICODE)
EXTRA_TOKENS = 4  # generation budget beyond the longest gold answer of the batch


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def contains_value(answer: str, value: str) -> bool:
    """True when the words of `value` occur consecutively in `answer` (case-insensitive).

    Word-level, so "female" does not contain "male" and "1967" does not contain "196".
    """
    hay, needle = words(answer), words(value)
    if not needle:
        raise ValueError("gold value has no words")
    return any(hay[i : i + len(needle)] == needle for i in range(len(hay) - len(needle) + 1))


@torch.no_grad()
def greedy_answers(model, tokenizer, questions: list[str], max_new_tokens: int,
                   batch_size: int = 128) -> list[str]:
    """Greedy decoding of each question's answer, batched with left padding; decoded text only."""
    model.eval()
    out = []
    for start in range(0, len(questions), batch_size):
        enc = {k: v.to(model.device) for k, v in prompt_batch(tokenizer, questions[start : start + batch_size]).items()}
        gen = model.generate(
            **enc, max_new_tokens=max_new_tokens, do_sample=False,
            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        )
        out += tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    return out


def greedy_for_rows(model, tokenizer, rows: list[dict], max_new_tokens: int | None = None) -> list[str]:
    """Greedy answers to the rows' questions: `max_new_tokens` new tokens at most (OpenUnlearning's
    ROUGE: 200), or None for room for the longest gold answer among them."""
    if max_new_tokens is None:
        max_new_tokens = EXTRA_TOKENS + max(len(tokenizer(r["answer"], add_special_tokens=False)["input_ids"])
                                            for r in rows)
    return greedy_answers(model, tokenizer, [r["question"] for r in rows], max_new_tokens)


def answer_accuracy(model, tokenizer, rows: list[dict]) -> float:
    """Share of rows whose greedy answer contains the row's gold `value`.

    Raises:
        ValueError: a row has no `value` field (real TOFU rows do not name the fact they ask).
    """
    if not rows:
        raise ValueError("answer_accuracy needs at least one row")
    if any("value" not in r for r in rows):
        raise ValueError("answer accuracy needs the gold 'value' of each row (generated data has it)")
    answers = greedy_for_rows(model, tokenizer, rows)
    return sum(contains_value(a, r["value"]) for a, r in zip(answers, rows, strict=True)) / len(rows)


def chance_accuracy(rows: list[dict]) -> float:
    """Accuracy of guessing each value uniformly from its attribute's pool (the `chance` field)."""
    return sum(r["chance"] for r in rows) / len(rows)
