"""Training an image classifier (the original model and the retrained oracle), and image batches."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F


def image_batches(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int = 0) -> Iterator[dict[str, torch.Tensor]]:
    """Endless shuffled batches of `pixels` and `labels`, reshuffled every pass (no ragged tail)."""
    if len(y) < batch_size:
        raise ValueError(f"{len(y)} images cannot fill a batch of {batch_size}")
    rng = np.random.RandomState(seed)
    while True:
        order = rng.permutation(len(y))
        for start in range(0, len(order) - batch_size + 1, batch_size):
            chunk = order[start:start + batch_size]
            yield {"pixels": torch.from_numpy(x[chunk]), "labels": torch.from_numpy(y[chunk])}


def train_classifier(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, lr: float,
                     batch_size: int, seed: int = 0, on_step: Callable[[float], None] | None = None) -> None:
    """SGD with momentum 0.9 and weight decay 5e-4 (the protocol's), cosine-annealed from `lr`."""
    torch.manual_seed(seed)
    steps_per_epoch = len(y) // batch_size
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * steps_per_epoch)
    batches = image_batches(x, y, batch_size, seed)
    device = next(model.parameters()).device  # a GPU worker's model (the attacks fine-tune one)
    model.train()
    for _ in range(epochs * steps_per_epoch):
        batch = {k: v.to(device) for k, v in next(batches).items()}
        loss = F.cross_entropy(model(batch["pixels"]), batch["labels"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if on_step:
            on_step(loss.item())
