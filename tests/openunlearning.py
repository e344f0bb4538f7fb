"""What OpenUnlearning's own code needs of a `TOFU_EVAL.json`, written out here (its code is not imported)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def perturbed_losses(path: Path) -> dict[str, np.ndarray]:
    """Each `*_PERT_Prob` entry's `avg_loss` lists stacked into one array, as OpenUnlearning's
    `truth_ratio` stacks them (`np.array(wrong_avg_losses)`): a question with fewer perturbed answers
    than the others makes a ragged list, and numpy raises ValueError here as it does there."""
    log = json.loads(path.read_text())
    return {key: np.array([v["avg_loss"] for v in entry["value_by_index"].values()], dtype=float)
            for key, entry in log.items() if key.endswith("_PERT_Prob")}


def assert_openunlearning_reads(path: Path) -> None:
    """Every perturbed-loss table of the file is a full 2-D array: 5 answers a question (TOFU's), 3 for
    the real-authors and world-facts sets (`ra_`, `wf_`)."""
    tables = perturbed_losses(path)
    assert tables, f"{path}: no *_PERT_Prob entry"
    for key, losses in tables.items():
        assert losses.ndim == 2 and losses.shape[1] == (3 if key.startswith(("ra_", "wf_")) else 5), (path, key)
        assert np.isfinite(losses).all(), (path, key)
