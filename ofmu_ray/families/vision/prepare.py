"""Preparing an image benchmark: the original classifier and the retrained oracle of one forget split, cached.

A forget split is `random` (a random 10 % of the training images) or `classK` (every image of class
K; the test set then drops K). Layout of `<cache-dir>/<bench>/<split>-<key>/`:
    models/target/            trained on every training image (the validation hold-out excepted)
    models/oracle-<split>/    retrained on the retain set only ("Retrain", the protocol's anchor)
    splits.npz                the index arrays of the split
    sources.json              where the images come from (`--data-dir` for CIFAR)
    report.json               both models' `ua`, `ra`, `ta`, `mia_efficacy`; the oracle's metrics are
                              what every unlearned model's gaps are measured against
    manifest.json             the size and sha256 of every file above (`cache.publish`)
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ofmu_ray.cache import Prepared, cache_key, cache_root, publish
from ofmu_ray.errors import UsageError
from ofmu_ray.families.base import prepare_command, progress_bar
from ofmu_ray.families.vision.load import (
    CIFAR_FILES,
    CLASSES,
    VisionData,
    VisionSplits,
    cifar_folder,
    load_vision,
    split_vision,
)

# Bump when what a prepare makes changes: the images' splits (load.py), the classifiers (models/vision.py),
# their training (train/classifier.py), their evaluation (evaluate.py) or the recipes below.
RECIPE_VERSION = 1


@dataclass(frozen=True)
class VisionRecipe:
    """How a benchmark's classifiers are trained (the protocol's ResNet-18 recipe for CIFAR)."""

    arch: str
    epochs: int
    lr: float
    batch_size: int
    seed: int = 2  # SalUn's default: validation from RandomState(2), forget indices from RandomState(1)


RECIPES = {"digits": VisionRecipe("cnn", 30, 0.05, 64),
           "cifar10": VisionRecipe("resnet18", 182, 0.1, 256),
           "cifar100": VisionRecipe("resnet18", 182, 0.1, 256)}


def parse_split(split: str, classes: int) -> tuple[str, int]:
    """`random` -> ("random", 0); `class3` -> ("class", 3)."""
    if split == "random":
        return "random", 0
    found = re.fullmatch(r"class(\d+)", split)
    if not found or int(found[1]) >= classes:
        raise UsageError(f"unknown split {split!r} for images; use random or class0..class{classes - 1}")
    return "class", int(found[1])


def prepare_vision(bench: str, split: str = "random", cache_dir: str | Path | None = None,
                   data_dir: str | Path | None = None, *, rebuild: bool = False, progress: bool = True) -> Prepared:
    """The prepared image benchmark: trains and caches the original model and the retrained oracle
    (the images are read only when there is something to train).

    Raises:
        UsageError / DataError: an unknown split, or CIFAR files that are missing or malformed.
    """
    if bench not in RECIPES:
        raise UsageError(f"unknown image benchmark {bench!r}; choose from: {', '.join(RECIPES)}")
    scenario, forget_class = parse_split(split, CLASSES[bench])
    recipe = RECIPES[bench]
    data_dir = str(Path(data_dir).resolve()) if data_dir else None
    files = []
    if bench in CIFAR_FILES:  # checked now: a missing archive file is an error before anything is written
        files = sorted((p.name, p.stat().st_size) for p in cifar_folder(bench, data_dir).glob("*.bin"))
    key = cache_key({"bench": bench, "split": split, "recipe": asdict(recipe), "files": files,
                     "version": RECIPE_VERSION})
    root = cache_root(cache_dir)

    def build(tmp: Path) -> dict:
        data = load_vision(bench, data_dir)
        splits = split_vision(data, scenario, recipe.seed, forget_class)
        return _build(bench, split, recipe, data, splits, data_dir, tmp, progress)

    return publish(root / bench / f"{split}-{key}", build, rebuild=rebuild,
                   command=prepare_command(bench, split=split, data_dir=data_dir, cache_dir=str(root)))


def _build(bench: str, split: str, recipe: VisionRecipe, data: VisionData, splits: VisionSplits,
           data_dir: str | None, out: Path, progress: bool) -> dict:
    from ofmu_ray.families.vision.evaluate import evaluate_classifier
    from ofmu_ray.models.vision import build_classifier, save_classifier
    from ofmu_ray.train.classifier import train_classifier

    start = time.time()
    np.savez(out / "splits.npz", **asdict(splits))
    (out / "sources.json").write_text(json.dumps({"data_dir": data_dir, "split": split}) + "\n")
    jobs = {"target": np.concatenate([splits.forget, splits.retain]), f"oracle-{split}": splits.retain}
    total = sum(recipe.epochs * (len(rows) // recipe.batch_size) for rows in jobs.values())
    accuracy = {}
    with progress_bar(total, progress) as bar:
        for name, rows in jobs.items():
            bar.set_description(f"train {name} ({len(rows)} images)")
            model = build_classifier(recipe.arch, data.classes, data.train_x.shape[1], seed=recipe.seed)
            train_classifier(model, data.train_x[rows], data.train_y[rows], recipe.epochs, recipe.lr,
                             recipe.batch_size, recipe.seed, on_step=lambda loss: bar.update())
            save_classifier(model, out / "models" / name)
            accuracy["target" if name == "target" else "oracle"] = evaluate_classifier(model, data, splits)
    return {"bench": bench, "split": split, "model": recipe.arch, "seconds": round(time.time() - start, 1),
            "metrics": accuracy, "sizes": {k: len(v) for k, v in asdict(splits).items()}}
