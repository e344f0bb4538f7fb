"""Image classification benchmarks: forgetting training images of a classifier, measured against a
classifier retrained without them (the Sparse and SalUn protocol: Jia et al. 2023, Fan et al. 2024).

`digits` is embedded (scikit-learn's 8x8 digits); `cifar10` and `cifar100` are read from the user's
binary archives. Modules: `load` (images and the protocol's splits), `prepare`, `evaluate`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ofmu_ray.cache import Prepared
from ofmu_ray.families.base import Family, PrepareRequest
from ofmu_ray.train.attacks import ATTACKS, AttackConfig, worst_case

if TYPE_CHECKING:
    from ofmu_ray.train.spec import RunSpec
    from ofmu_ray.train.task import Task


class VisionFamily(Family):
    """Images: `ua`, `ra`, `ta`, `mia_efficacy` and their gaps to the retrained oracle."""

    name = "vision"
    label = "images"
    benches = {"digits": (), "cifar10": ("data",), "cifar100": ("data",)}
    default_splits = {"digits": "random", "cifar10": "random", "cifar100": "random"}
    modality = "image"
    default_steps = 20
    default_methods = ("gradascent", "graddiff", "ofmu", "ft", "rl")  # every method that unlearns images
    # closeness to the retrained oracle (100 - the protocol's avg_gap), so that over-forgetting counts
    # against a method as under-forgetting does; and test accuracy, the utility axis
    objectives = ("oracle_closeness", "ta")
    ideal_x = {"oracle_closeness": 100.0, "ua": 100.0, "mia_efficacy": 100.0}  # percentages
    allowed_objectives = ("oracle_closeness", "ta", "ra", "ua", "mia_efficacy", "robust/oracle_closeness",
                          "robust/ua")  # the worst over `--attacks`
    attacks = ATTACKS
    keep_best = ("oracle_closeness", "ta")
    result_files = ("VISION_EVAL.json", "VISION_SUMMARY.json")
    # One pass at small SGD rates: measured on digits class3, the retrained oracle then learns nothing
    # of the class from half A (ua 100 -> 100) while gradient ascent and random labels come back to
    # ua 0; at 3 passes and lr 0.02 the oracle learns it too, and no recovery could be read
    attack_defaults = AttackConfig(epochs=1, lrs=(0.001, 0.002, 0.005), batch_size=16)
    help = {
        "--bench": "digits (embedded), cifar10, cifar100 (--data-dir): image classification",
        "--split": "images: random (default: a random 10 %% of the training images) or classK (all of class K)",
        "--data": "cifar10/100: the folder of the binary archive",
    }

    def prepare(self, request: PrepareRequest, *, rebuild: bool = False, progress: bool = True) -> Prepared:
        from ofmu_ray.families.vision.prepare import prepare_vision

        return prepare_vision(request.bench, request.split or self.default_splits[request.bench], request.cache_dir,
                              request.data, rebuild=rebuild, progress=progress)

    def references(self, prepared: Prepared, split: str, dtype: str, attacks: tuple[str, ...] = (),
                   attack_settings: dict | None = None) -> dict[str, dict[str, float]]:
        """The target's and the oracle's metrics, as prepared; with `attacks`, the attacked target's and
        oracle's (`attacks.reference`), cached, and the target's worst case."""
        from ofmu_ray.families.vision.evaluate import evaluate_prepared

        points = {who: evaluate_prepared(prepared, who) for who in ("target", "oracle")}
        if attacks:
            from ofmu_ray.families.vision.attacks import reference

            scores = reference(prepared, attacks, self.attack_config(attack_settings))["target"]
            points["target"] |= worst_case(scores, attacks, ("ua", "oracle_closeness"))
        return points

    def forget_rows(self, prepared: Prepared, split: str) -> int:
        from ofmu_ray.families.vision.load import vision_of

        return len(vision_of(prepared)[1].forget)

    def make_task(self, spec: RunSpec, device) -> Task:
        from ofmu_ray.families.vision.evaluate import evaluate_classifier, summarize_vision
        from ofmu_ray.families.vision.load import vision_of
        from ofmu_ray.train.task import classifier_task

        prepared = Prepared(Path(spec.prepared_root))
        data, splits = vision_of(prepared)
        report = prepared.report

        def evaluate(model) -> tuple[dict, dict]:
            summary = summarize_vision(evaluate_classifier(model, data, splits), report["metrics"]["oracle"])
            return summary, {"model": summary, "oracle": report["metrics"]["oracle"],
                             "target": report["metrics"]["target"]}

        def attack(model, summary: dict) -> dict:
            from ofmu_ray.families.vision.attacks import attack, reference

            cfg = self.attack_config(spec.attack_settings)
            attacks = tuple(spec.attacks.split(","))
            oracle_ua = reference(prepared, attacks, cfg)["oracle"]["none/ua"]
            return attack(model, data, splits, summary, oracle_ua, attacks, cfg)

        return classifier_task(spec, prepared.model_dir("target"), data.train_x, data.train_y, splits.forget,
                               splits.retain, device, evaluate, self.result_files, attack if spec.attacks else None)

    def evaluate(self, prepared: Prepared, which: str, *, split: str, retain_logs: str | None = None,
                 dtype: str = "fp32") -> tuple[dict, dict | None]:
        from ofmu_ray.families.vision.evaluate import evaluate_prepared

        return evaluate_prepared(prepared, which), None

    def print_report(self, prepared: Prepared) -> None:
        report = prepared.report
        print(f"{report['bench']} / {report['split']} ({report['model']}): prepared in {report['seconds']} s; "
              f"{', '.join(f'{k} {v}' for k, v in report['sizes'].items())} images")
        print(f"{'model':<8}" + "".join(f"{k:>14}" for k in report["metrics"]["target"]))
        for name, metrics in report["metrics"].items():
            print(f"{name:<8}" + "".join(f"{v:>14.2f}" for v in metrics.values()))


VISION = VisionFamily()
