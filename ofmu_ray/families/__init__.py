"""The benchmark families, registered in one place: `FAMILIES` maps each bench name to its family.

A new family is one folder under `families/` (its data, prepare, evaluation and a `Family`
subclass, see `base.py`) and one entry in `REGISTERED` below; every command, sweep and report
then knows its benches.

    >>> list(FAMILIES)
    ['synth-tofu', 'tofu', 'synth-wmdp', 'wmdp', 'digits', 'cifar10', 'cifar100']
    >>> FAMILIES["synth-wmdp"].name, FAMILIES["digits"].modality
    ('wmdp', 'image')
"""

from __future__ import annotations

from ofmu_ray.families.base import Family
from ofmu_ray.families.tofu import TOFU
from ofmu_ray.families.vision import VISION
from ofmu_ray.families.wmdp import WMDP

REGISTERED: tuple[Family, ...] = (TOFU, WMDP, VISION)  # in the order help texts and `--bench` list them
FAMILIES: dict[str, Family] = {bench: family for family in REGISTERED for bench in family.benches}
DEFAULT_BENCH = next(iter(FAMILIES))  # the embedded default, synth-tofu: every command works offline on it


def family_of(bench: str) -> Family:
    """The family of `bench`.

    Raises:
        KeyError: naming the registered benches.
    """
    if bench not in FAMILIES:
        raise KeyError(f"unknown bench {bench!r}; registered: {', '.join(FAMILIES)}")
    return FAMILIES[bench]
