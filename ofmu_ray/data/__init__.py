"""Benchmarks as data: the generated synth-tofu benchmark and real TOFU from the hub or a folder."""

from ofmu_ray.data.synth_tofu import HARD_SPLITS, SynthTofuConfig, generate, training_rows
from ofmu_ray.data.tofu import DataError, TofuData, load_tofu, write_tofu_dir

__all__ = ["HARD_SPLITS", "DataError", "SynthTofuConfig", "TofuData", "generate", "load_tofu",
           "training_rows", "write_tofu_dir"]
