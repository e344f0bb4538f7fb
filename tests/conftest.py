"""Shared fixtures. Prepared benchmarks are cached across test sessions in `.cache/tests`
(or `$OFMU_RAY_TEST_CACHE`): a fresh clone trains the tiny models once (about 3 minutes)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ofmu_ray.config import MODELS, FinetuneConfig, Profile, TinyLlamaSpec
from ofmu_ray.families.tofu.generate import SynthTofuConfig
from ofmu_ray.families.tofu.prepare import PROFILES, prepare_synth_tofu
from ofmu_ray.tune.spaces import SPACES_DIR

REPO = Path(__file__).resolve().parents[1]

# A profile that trains in seconds: for testing prepare's mechanics, not what models learn.
MICRO = Profile(SynthTofuConfig(authors=10, retain_eval_share=1 / 3), "micro-llama", FinetuneConfig(epochs=1))


@pytest.fixture(scope="session")
def test_cache() -> Path:
    return Path(os.environ.get("OFMU_RAY_TEST_CACHE") or REPO / ".cache" / "tests").resolve()


@pytest.fixture(scope="session")
def cache_dir(test_cache) -> str:
    """`--cache-dir` of the session's prepared benchmarks (`tiny`, `synth_wmdp`, `digits`)."""
    return str(test_cache)


@pytest.fixture
def mlflow_uri(tmp_path) -> str:
    """A fresh SQLite MLflow store of this test (created by the first command that opens it)."""
    return f"sqlite:///{tmp_path / 'mlruns.db'}"


@pytest.fixture(scope="session")
def tiny(test_cache):
    """The real `tiny` profile, prepared once per cache."""
    return prepare_synth_tofu("tiny", test_cache, progress=False)


@pytest.fixture(scope="session")
def synth_wmdp(test_cache):
    """The `tiny` synth-wmdp profile, prepared once per cache."""
    from ofmu_ray.families.wmdp.prepare import prepare_synth_wmdp

    return prepare_synth_wmdp("tiny", test_cache, progress=False)


@pytest.fixture(scope="session")
def digits(test_cache):
    """The embedded digits, random forgetting, prepared once per cache."""
    from ofmu_ray.families.vision.prepare import prepare_vision

    return prepare_vision("digits", "random", test_cache, progress=False)


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
def swept(ray_session, tiny, cache_dir, tmp_path_factory) -> str:
    """A finished sweep's MLflow store (its URI): 2 methods x 2 trials on the tiny profile, two at a
    time, each in its trial's own process (a sweep through Ray Train workers: test_sweep's killed-worker
    test). OFMU searches tune_spaces/smol/ofmu.yaml, its Hessian held at finite_diff."""
    from ofmu_ray.cli import main

    where = tmp_path_factory.mktemp("sweep")
    uri = f"sqlite:///{where / 'mlruns.db'}"  # session-wide: the per-test `mlflow_uri` would not outlive a test
    old = os.getcwd()
    os.chdir(where)  # the default artifact and sweeps folders land here
    try:
        argv = ["sweep", "--profile", "tiny", "--cache-dir", cache_dir, "--methods", "graddiff,ofmu",
                "--trials", "2", "--steps", "2", "--batch-size", "4", "--tracking-uri", uri,
                "--sampler", "tpe", "--name", "study-forget10",  # as benchmarks/study.py names its sweeps
                "--space", f"ofmu={SPACES_DIR / 'smol' / 'ofmu.yaml'}"]  # OFMU's, its Hessian held
        assert main(argv) == 0
    finally:
        os.chdir(old)
    return uri
