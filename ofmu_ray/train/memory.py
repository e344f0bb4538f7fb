"""Keeps a long run's resident memory from creeping up with the heap: glibc's mmap threshold, fixed.

glibc serves an allocation of at least its mmap threshold (128 KiB at start) with its own mapping,
returned to the system when freed. After each such free it raises the threshold to that block's
size, up to 32 MiB, so a run whose tensors are a few MiB (SmolLM2's projection weights and their
gradients) soon takes them from the heap instead, where freed blocks fragment and stay resident.
Measured on an OFMU trial on `smol` (finite_diff, T=5, S=3, batch 8; a Tune trial's process): its
resident memory grew from step to step, to 20.7 GB, until Ray's memory monitor killed it; the same
trial with the threshold held at 128 KiB (there through `MALLOC_MMAP_THRESHOLD_`, the same setting)
peaked at 13.0 GB, fell back to 3.3-4.7 GB between steps, and evaluated in 3.5 GB instead of 7.6.
At 1 MiB it peaked at 15.3 GB, fell back to only 6-14 GB and evaluated in 7.1 GB: SmolLM2's blocks
under 1 MiB (activations) fragment the heap as well, so the threshold stays at 128 KiB. Held by the
run itself once its model is loaded (`hold_mmap_threshold_for`), the same trial peaked at 13.8 GB
and evaluated in 3.4-4.4 GB.

Held, every allocation of 128 KiB or more is a fresh mapping, and on the embedded models, whose
whole heap is tens of MB, that only costs time: an evaluation of `small` took 14.4-17.9 s held
against 9.7 s not, and its sweeps ran a third fewer trials an hour. So it is held only for a model
of `HOLD_FROM_BYTES` or more.
"""

from __future__ import annotations

import ctypes
import os
import platform

M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h); setting it also stops the raising
MMAP_THRESHOLD = 128 * 1024  # glibc's initial value
ENV = "MALLOC_MMAP_THRESHOLD_"  # glibc's own setting, read at process start: a user's value wins
GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
# Parameter bytes from which a run holds the threshold: SmolLM2-135M has 540 MB, the largest
# embedded model (llama-6l-256) about 20 MB.
HOLD_FROM_BYTES = 100 << 20


def hold_mmap_threshold() -> bool:
    """Fixes this process's mmap threshold at `MMAP_THRESHOLD` (glibc only; elsewhere, or where the
    user set `MALLOC_MMAP_THRESHOLD_`, nothing changes). Returns whether it was set."""
    if ENV in os.environ or not GLIBC:
        return False
    return ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1


def hold_mmap_threshold_for(model) -> bool:
    """`hold_mmap_threshold` for a model (a torch module) of `HOLD_FROM_BYTES` or more in parameters;
    smaller ones keep glibc's own threshold. Returns whether it was set."""
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    return size >= HOLD_FROM_BYTES and hold_mmap_threshold()
