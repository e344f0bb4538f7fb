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


@pytest.fixture(scope="session")
def swept(ray_session, tiny, tmp_path_factory) -> str:
    """A finished sweep's MLflow store (its URI): 2 methods x 2 trials on the tiny profile, 2 Ray Train
    workers per trial."""
    from ofmu_ray.cli import main

    where = tmp_path_factory.mktemp("sweep")
    uri = f"sqlite:///{where / 'mlruns.db'}"
    old = os.getcwd()
    os.chdir(where)  # the default artifact and sweeps folders land here
    try:
        argv = ["sweep", "--profile", "tiny", "--cache-dir", str(tiny.root.parents[1]), "--methods", "graddiff,ofmu",
                "--trials", "2", "--steps", "2", "--batch-size", "4", "--workers", "2", "--tracking-uri", uri,
                "--sampler", "tpe", "--name", "study-forget10"]  # as benchmarks/study.py names its sweeps
        assert main(argv) == 0
    finally:
        os.chdir(old)
    return uri
