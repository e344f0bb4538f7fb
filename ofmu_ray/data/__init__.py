"""Benchmarks as data: generated and real TOFU, WMDP-style questions and corpora, and images.

Every benchmark belongs to a family that decides how it is evaluated: `tofu` (question answering
against a retain oracle), `mcq` (WMDP-style four-choice accuracy) or `image` (classification).

    >>> family("synth-wmdp"), modality("synth-wmdp"), modality("digits")
    ('mcq', 'text', 'image')
"""

from ofmu_ray.data.synth_tofu import HARD_SPLITS, SynthTofuConfig, generate, training_rows
from ofmu_ray.data.tofu import DataError, TofuData, load_tofu, write_tofu_dir

FAMILIES = {"synth-tofu": "tofu", "tofu": "tofu", "synth-wmdp": "mcq", "wmdp": "mcq",
            "digits": "image", "cifar10": "image", "cifar100": "image"}
DEFAULT_SPLITS = {"tofu": "forget10", "synth-wmdp": "hazard", "wmdp": "bio", "image": "random"}
# WMDP-style unlearning reads whole corpora, not one forget split: the RMU release runs 150 batches of 4;
# measured on synth-wmdp, RMU needs 50-60 batches of 16 to leave the topic and no method moves it in 20
DEFAULT_STEPS = {"tofu": 20, "mcq": 80, "image": 20}


def family(bench: str) -> str:
    """`tofu`, `mcq` or `image`: how the benchmark is evaluated."""
    return FAMILIES[bench]


def modality(bench: str) -> str:
    """`image` for the image-classification benchmarks, `text` for the rest: which methods apply."""
    return "image" if family(bench) == "image" else "text"


def default_split(bench: str) -> str:
    """What `--split` means when not given: TOFU's forget10, a WMDP topic, or random image forgetting."""
    return DEFAULT_SPLITS.get(bench) or DEFAULT_SPLITS[family(bench)]


def default_steps(bench: str) -> int:
    """What `--steps` means when not given: forget batches per run, the same for every method."""
    return DEFAULT_STEPS[family(bench)]


def unlearning_splits(bench: str, split: str) -> tuple[str, str]:
    """The prepared splits a method forgets and retains with (WMDP: the corpora, not the questions)."""
    from ofmu_ray.data.tofu import retain_split

    kind = family(bench)
    if kind == "image":
        return split, "retain"
    if kind == "mcq":
        return "forget_corpus", "retain_corpus"
    return split, retain_split(split)


__all__ = ["FAMILIES", "HARD_SPLITS", "DataError", "SynthTofuConfig", "TofuData", "default_split", "default_steps",
           "family", "generate", "load_tofu", "modality", "training_rows", "unlearning_splits", "write_tofu_dir"]
