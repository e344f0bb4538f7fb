"""A minimal benchmark family, written as a new one is: one module (a folder under `families/` in the
package) and one registry line (`REGISTERED` in `families/__init__.py`; a test sets `FAMILIES["toy"]`).

The toy: 64 generated 8x8 images of two classes (dark and bright), a small CNN trained on all of
them, and every fourth image to forget. It is scored by its error on the forgotten images and its
accuracy on the rest; there is no oracle.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ofmu_ray.cache import Prepared, cache_key, cache_root, publish
from ofmu_ray.families.base import Family, PrepareRequest, prepare_command

RECIPE_VERSION = 1


def _images() -> tuple[np.ndarray, np.ndarray]:
    labels = np.arange(64) % 2
    pixels = np.random.RandomState(0).rand(64, 1, 8, 8) * 0.5 + labels[:, None, None, None] * 0.5
    return pixels.astype(np.float32), labels.astype(np.int64)


def _scores(model, x: np.ndarray, y: np.ndarray, forget: np.ndarray) -> dict[str, float]:
    model.eval()
    with torch.no_grad():
        right = model(torch.from_numpy(x)).argmax(-1).numpy() == y
    retain = np.setdiff1d(np.arange(len(y)), forget)
    return {"forget_error": float(1 - right[forget].mean()), "retain_acc": float(right[retain].mean())}


class ToyFamily(Family):
    """The toy: forget every fourth image of a two-class CNN."""

    name = "toy"
    label = "toy"
    benches = {"toy": ()}
    default_splits = {"toy": "quarter"}
    modality = "image"
    default_steps = 3
    default_methods = ("gradascent", "ft")
    objectives = ("forget_error", "retain_acc")
    allowed_objectives = objectives
    keep_best = objectives
    result_files = ("TOY_EVAL.json", "TOY_SUMMARY.json")
    help = {"--bench": "toy: two classes of 8x8 images"}

    def prepare(self, request: PrepareRequest, *, rebuild: bool = False, progress: bool = True) -> Prepared:
        root = cache_root(request.cache_dir)
        key = cache_key({"bench": "toy", "recipe": RECIPE_VERSION})
        return publish(root / "toy" / f"quarter-{key}", self._build, rebuild=rebuild,
                       command=prepare_command("toy", cache_dir=str(root)))

    @staticmethod
    def _build(out: Path) -> dict:
        from ofmu_ray.models.vision import build_classifier, save_classifier
        from ofmu_ray.train.classifier import train_classifier

        x, y = _images()
        model = build_classifier("cnn", classes=2, channels=1)
        train_classifier(model, x, y, epochs=3, lr=0.05, batch_size=16)
        save_classifier(model, out / "models" / "target")
        forget = np.arange(0, len(y), 4)
        np.save(out / "forget.npy", forget)
        return {"bench": "toy", "model": "cnn", "metrics": {"target": _scores(model, x, y, forget)}}

    def make_task(self, spec, device):
        from ofmu_ray.train.task import classifier_task

        prepared = Prepared(Path(spec.prepared_root))
        (x, y), forget = _images(), np.load(prepared.root / "forget.npy")
        retain = np.setdiff1d(np.arange(len(y)), forget)

        def evaluate(model) -> tuple[dict, dict]:
            summary = _scores(model, x, y, forget)
            return summary, {"model": summary, "target": prepared.report["metrics"]["target"]}

        return classifier_task(spec, prepared.model_dir("target"), x, y, forget, retain, device, evaluate,
                               self.result_files)

    def evaluate(self, prepared: Prepared, which: str, *, split: str, retain_logs: str | None = None,
                 dtype: str = "fp32") -> tuple[dict, dict | None]:
        from ofmu_ray.models.vision import load_classifier

        model = load_classifier(prepared.model_dir("target") if which == "target" else which)
        summary = _scores(model, *_images(), np.load(prepared.root / "forget.npy"))
        return summary, {"model": summary, "target": prepared.report["metrics"]["target"]}

    def print_report(self, prepared: Prepared) -> None:
        print(f"toy: target {prepared.report['metrics']['target']}")


TOY = ToyFamily()
