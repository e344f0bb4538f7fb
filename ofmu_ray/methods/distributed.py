"""Data-parallel helpers for methods that take gradients with `torch.autograd.grad`.

DDP averages only what `.backward()` accumulates into `.grad`; a gradient returned by
`torch.autograd.grad` is each rank's local one. These helpers make such vectors global, and are
no-ops in a single process, so one code path serves both.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of `tensor` over ranks (a new tensor; the input itself in one process)."""
    if world_size() == 1:
        return tensor
    out = tensor.detach().clone()
    dist.all_reduce(out)
    return out / world_size()


def global_mean(total: torch.Tensor, count: int | torch.Tensor) -> torch.Tensor:
    """`total / count` over the *global* batch, written as this rank's share.

    Each rank returns `total_r * world / count_global`; averaging the ranks' gradients (what DDP and
    `all_reduce_mean` do) then gives exactly the gradient of `sum_r total_r / count_global`, the
    same number one process computes on the whole batch, even when ranks hold different token counts.
    """
    world = world_size()
    count = torch.as_tensor(count, dtype=total.dtype, device=total.device)
    if world == 1:
        return total / count
    count = count.detach().clone()
    dist.all_reduce(count)
    return total * world / count
