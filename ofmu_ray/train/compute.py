"""What a run's unlearning costs in compute, so that methods can be compared at equal compute.

The FLOPs of a method's steps are counted by torch's FLOP counter (`FlopCounterMode`: every matmul,
convolution and attention kernel of the forward, backward and double-backward passes) over its
first `Method.cycle` steps, the shortest stretch after which its sequence of step kinds repeats
(OFMU: one outer iteration; the baselines: one step), and scaled to the run's steps. The unit of
`grad_evals` is measured in the same run, on the counted steps' own forget batches (FLOPs grow with
their padded length): one forward and backward pass of the model on the batch, so a gradient-ascent
step costs about 1 and the figure reads "gradient-equivalent passes".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
from torch.utils.flop_counter import FlopCounterMode

from ofmu_ray.methods.losses import Batch, nll

T = TypeVar("T")


def counted(fn: Callable[[], T]) -> tuple[T, int]:
    """(fn(), the FLOPs it took)."""
    with FlopCounterMode(display=False) as counter:
        out = fn()
    return out, counter.get_total_flops()


def gradient_flops(model: torch.nn.Module, batch: Batch) -> int:
    """FLOPs of one forward and backward pass of `model` on `batch`: the unit of `grad_evals`.
    The gradients are returned to nobody (`autograd.grad`), so no `.grad` is touched, and the pass
    runs in eval mode, so no BatchNorm statistics move (the FLOPs are the same)."""
    params = [p for p in model.parameters() if p.requires_grad]
    training = model.training
    model.eval()
    try:
        return counted(lambda: torch.autograd.grad(nll(model, batch), params))[1]
    finally:
        model.train(training)


def run_compute(history: list[dict]) -> dict[str, float]:
    """`flops` (the counted steps' mean times the steps taken) and `grad_evals` (that in units of
    the counted steps' own batches: `flops_unit`, logged beside `flops`)."""
    counted_steps = [h for h in history if "flops" in h]
    if not counted_steps:
        return {"flops": float("nan"), "grad_evals": float("nan")}
    flops = sum(h["flops"] for h in counted_steps)
    units = sum(h["flops_unit"] for h in counted_steps)
    scale = len(history) / len(counted_steps)
    return {"flops": flops * scale, "grad_evals": flops / units * len(history) if units else float("nan")}
