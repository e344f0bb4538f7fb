"""What the run loop unlearns (`Task`), and the two kinds of task the families build: a causal LM on
text rows, and an image classifier on image arrays.

A family's `make_task` picks the rows or images, the evaluation and the result files; the loop in
`loop.py` is the same for every task.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ofmu_ray.methods.losses import Batch

if TYPE_CHECKING:
    import numpy as np

    from ofmu_ray.train.spec import RunSpec

Evaluation = tuple[dict, dict]  # (summary metrics, per-item results)


@dataclass
class Task:
    """What differs between unlearning a language model and an image classifier; the loop is the same."""

    model: Any
    load_reference: Callable[[], Any]  # a frozen copy of the model before unlearning
    forget: Iterator[Batch]  # global batches, the same on every rank
    retain: Iterator[Batch]
    evaluate: Callable[[Any], Evaluation]  # on rank 0
    save: Callable[[Any, Path], None]  # safetensors, with what the model needs to load again
    result_files: tuple[str, str]  # where the per-item results and the summary are written
    attack: Callable[[Any, dict], dict] | None = None  # attacks on the final model, given its evaluation (rank 0)


def batches(tokenizer, rows: list[dict], batch_size: int, seed: int = 0,
            refusals: list[str] | tuple[str, ...] | None = None) -> Iterator[Batch]:
    """Endless batches of QA rows (answer-only labels) or corpus texts (`text`), reshuffled every pass.

    With `refusals`, each batch also holds its questions answered with a refusal reply drawn per row
    (`refusal_input_ids`, `refusal_attention_mask`, `refusal_labels`: what IdkDPO prefers). The draws
    come from a stream of their own, so the rows' order is the same as without them.

    Raises:
        ValueError: no rows, or refusals for rows that have no question (corpus texts).
    """
    from ofmu_ray.methods.losses import REFUSAL
    from ofmu_ray.models.batch import collate
    from ofmu_ray.models.prompt import encode_example, encode_row

    if not rows:
        raise ValueError("no rows to make batches from")
    if refusals is not None and (not refusals or any("question" not in r for r in rows)):
        raise ValueError("refusal answers need question-answer rows and at least one refusal reply")
    examples = [encode_row(tokenizer, r) for r in rows]
    rng, draws = random.Random(seed), random.Random(f"{seed}:refusals")
    refused: dict[tuple[int, int], tuple[list[int], list[int]]] = {}  # (row, reply) -> encoded, as drawn

    def refusal(i: int) -> tuple[list[int], list[int]]:
        key = (i, draws.randrange(len(refusals)))
        if key not in refused:
            refused[key] = encode_example(tokenizer, rows[i]["question"], refusals[key[1]])
        return refused[key]

    order = list(range(len(examples)))
    while True:
        rng.shuffle(order)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            if start and len(chunk) < batch_size:
                break  # a ragged tail would change the batch size mid-run
            batch = collate([examples[i] for i in chunk], tokenizer.pad_token_id)
            if refusals is not None:
                answered = collate([refusal(i) for i in chunk], tokenizer.pad_token_id)
                batch |= {REFUSAL + k: v for k, v in answered.items()}
            yield batch


def causal_lm_task(spec: RunSpec, model_dir: str, prompt: str, forget: list[dict], retain: list[dict], device,
                   evaluate: Callable[[Any, Any], Evaluation], result_files: tuple[str, str],
                   attack: Callable[[Any, Any], dict] | None = None,
                   refusals: list[str] | tuple[str, ...] | None = None) -> Task:
    """A causal LM (a folder or a hub id) unlearning `forget` rows while keeping `retain` rows;
    `evaluate(model, tokenizer)` scores it on rank 0, `attack(model, tokenizer)` attacks the final one;
    `refusals`: replies drawn per forget row into its batches (for methods that `needs_refusals`)."""
    from ofmu_ray.models.factory import load_causal_lm, load_tokenizer
    from ofmu_ray.models.lora import save_model

    tokenizer = load_tokenizer(model_dir, prompt)

    def save(model, out: Path) -> None:
        save_model(model, out, spec.lora_save)
        tokenizer.save_pretrained(out)

    return Task(load_causal_lm(model_dir, spec.dtype).to(device),
                lambda: load_causal_lm(model_dir, spec.dtype).to(device),
                batches(tokenizer, forget, spec.batch_size, spec.seed, refusals),
                batches(tokenizer, retain, spec.batch_size, spec.seed + 1),
                lambda model: evaluate(model, tokenizer), save, result_files,
                (lambda model, summary: attack(model, tokenizer)) if attack else None)


def classifier_task(spec: RunSpec, model_dir: str, x: np.ndarray, y: np.ndarray, forget: np.ndarray,
                    retain: np.ndarray, device, evaluate: Callable[[Any], Evaluation],
                    result_files: tuple[str, str], attack: Callable[[Any, dict], dict] | None = None) -> Task:
    """An image classifier (a `models.vision` folder) unlearning the `forget` images (indices into
    `x`, `y`) while keeping the `retain` ones; `attack(model, summary)` attacks the final one."""
    from ofmu_ray.models.vision import load_classifier, save_classifier
    from ofmu_ray.train.classifier import image_batches

    return Task(load_classifier(model_dir).to(device), lambda: load_classifier(model_dir).to(device),
                image_batches(x[forget], y[forget], spec.batch_size, spec.seed),
                image_batches(x[retain], y[retain], spec.batch_size, spec.seed + 1),
                evaluate, save_classifier, result_files, attack)
