"""A large model's run gives its freed gradient-sized tensors back to the system (`train.memory`),
where glibc's raised mmap threshold would keep them resident in a fragmented heap; an embedded-size
model's run keeps glibc's own threshold."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ofmu_ray.train.memory import GLIBC

PROBE = """
import os, sys, torch
from ofmu_ray.train.memory import hold_mmap_threshold_for
large = sys.argv[1] == "large"  # 144 MB of parameters, against tiny-llama-4l's 0.8 MB
assert hold_mmap_threshold_for(torch.nn.Linear(6000 if large else 128, 6000 if large else 384)) == large
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
torch.empty(4 << 20, dtype=torch.uint8).fill_(1)  # a freed 4 MiB block: glibc raises its threshold to it
# 1 MiB, as a gradient of one of SmolLM2's projections (1-4 MiB); every other one outlives the rest,
# so that those freed lie between live blocks, as in a long run's heap, and cannot be trimmed off it.
blocks = [torch.ones(1 << 18) for _ in range(200)]
before = rss()
del blocks[::2]
print(before - rss())
"""


def _given_back(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return float(out.stdout)


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt: Linux with glibc only")
def test_freed_gradient_sized_tensors_leave_the_process():
    held, plain = _given_back("large"), _given_back("small")
    assert held > 90 and plain < 10, (held, plain)  # MiB of 100 MiB freed
