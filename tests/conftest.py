"""Shared fixtures. Prepared benchmarks are cached across test sessions in `.cache/tests`
(or `$OFMU_RAY_TEST_CACHE`): a fresh clone trains the tiny models once (about 3 minutes)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ofmu_ray.config import MODELS, PROFILES, FinetuneConfig, Profile, TinyLlamaSpec
from ofmu_ray.data import SynthTofuConfig
from ofmu_ray.prepare import prepare

REPO = Path(__file__).resolve().parents[1]

# A profile that trains in seconds: for testing prepare's mechanics, not what models learn.
MICRO = Profile(SynthTofuConfig(authors=10), "micro-llama", FinetuneConfig(epochs=1))


@pytest.fixture(scope="session")
def test_cache() -> Path:
    return Path(os.environ.get("OFMU_RAY_TEST_CACHE") or REPO / ".cache" / "tests")


@pytest.fixture(scope="session")
def tiny(test_cache):
    """The real `tiny` profile, prepared once per cache."""
    return prepare("synth-tofu", "tiny", test_cache, progress=False)


@pytest.fixture
def micro(monkeypatch):
    monkeypatch.setitem(PROFILES, "micro", MICRO)
    monkeypatch.setitem(MODELS, "micro-llama", TinyLlamaSpec(layers=1, hidden=32, intermediate=64, heads=2))
    return "micro"


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole test session (2 CPUs, no dashboard)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()
