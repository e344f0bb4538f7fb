"""ofmu-ray: Ray-distributed benchmarking of machine unlearning (OFMU and its baselines)."""

__version__ = "0.1.0"
