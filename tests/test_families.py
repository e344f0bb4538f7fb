"""The family registry: what each family declares fits the methods, options and objectives it names."""

from __future__ import annotations

import pytest

from ofmu_ray.families import FAMILIES
from ofmu_ray.families.base import OPTIONS
from ofmu_ray.methods import check_applies, methods_for


@pytest.mark.parametrize("bench", FAMILIES)
def test_each_family_declares_what_fits(bench):
    family = FAMILIES[bench]
    check_applies(family.default_methods, family.modality, bench)  # its default sweep can run
    assert set(family.benches[bench]) <= set(OPTIONS) and bench in family.default_splits
    assert set(family.objectives) <= set(family.allowed_objectives) and len(family.objectives) == 2
    assert family.default_steps >= 1 and len(family.result_files) == 2


def test_image_sweeps_run_every_method_that_unlearns_images():
    assert list(FAMILIES["digits"].default_methods) == methods_for("image")
