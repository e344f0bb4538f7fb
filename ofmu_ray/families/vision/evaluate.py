"""Image-classification unlearning metrics as the Sparse and SalUn code computes them (Jia et al. 2023,
"Model Sparsity Can Simplify Machine Unlearning"; Fan et al. 2024, "SalUn"), all in percent:

- `ua` = 100 - accuracy on the forget set (higher: more forgotten; compare with the oracle's);
- `ra`, `ta` = accuracy on the retain set and on the test set (without the forgotten class);
- `mia_efficacy` = the share of forget images that an SVM, trained on the unlearned model's
  true-class confidence of retain images (members) against test images (non-members), calls
  non-members;
- `avg_gap` = the mean absolute difference to the retrained oracle over (ua, mia_efficacy, ra, ta),
  and `oracle_closeness` = 100 - avg_gap, what a sweep maximises by default.
"""

from __future__ import annotations

import numpy as np
import torch

from ofmu_ray.errors import UsageError
from ofmu_ray.families.vision.load import VisionData, VisionSplits, vision_of

GAP_METRICS = ("ua", "mia_efficacy", "ra", "ta")
BATCH = 512


@torch.no_grad()
def true_class_confidence(model, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Softmax probability of the true class, and whether the prediction is right, per image."""
    model.eval()
    device = next(model.parameters()).device
    confidence, correct = [], []
    for start in range(0, len(y), BATCH):
        logits = model(torch.from_numpy(x[start:start + BATCH]).to(device)).float()
        labels = torch.from_numpy(y[start:start + BATCH]).to(device)
        probs = logits.softmax(-1)
        confidence.append(probs.gather(1, labels[:, None]).squeeze(1).cpu().numpy())
        correct.append((probs.argmax(-1) == labels).cpu().numpy())
    return np.concatenate(confidence), np.concatenate(correct)


def mia_efficacy(member: np.ndarray, nonmember: np.ndarray, target: np.ndarray) -> float:
    """Share (in %) of `target` confidences an RBF SVM (C=3, gamma="auto", as the released code)
    fitted on members (label 1) against non-members (label 0) predicts to be non-members."""
    from sklearn.svm import SVC

    features = np.concatenate([member, nonmember])[:, None]
    labels = np.concatenate([np.ones(len(member)), np.zeros(len(nonmember))])
    svm = SVC(C=3, gamma="auto", kernel="rbf").fit(features, labels)
    return float(100 * (1 - svm.predict(target[:, None]).mean()))


def evaluate_classifier(model, data: VisionData, splits: VisionSplits) -> dict[str, float]:
    """`ua`, `ra`, `ta` and `mia_efficacy` of a model on the protocol's splits."""
    conf, right = {}, {}
    for name, x, y in (("forget", data.train_x[splits.forget], data.train_y[splits.forget]),
                       ("retain", data.train_x[splits.retain], data.train_y[splits.retain]),
                       ("test", data.test_x[splits.test], data.test_y[splits.test])):
        conf[name], right[name] = true_class_confidence(model, x, y)
    shadow = min(len(conf["retain"]), len(conf["test"]))  # the released code: the first |test| retain images
    return {"ua": float(100 * (1 - right["forget"].mean())), "ra": float(100 * right["retain"].mean()),
            "ta": float(100 * right["test"].mean()),
            "mia_efficacy": mia_efficacy(conf["retain"][:shadow], conf["test"], conf["forget"])}


def summarize_vision(metrics: dict[str, float], oracle: dict[str, float]) -> dict[str, float]:
    """The model's metrics with each one's gap to the oracle, `avg_gap` and `oracle_closeness`."""
    gaps = {f"gap/{k}": abs(metrics[k] - oracle[k]) for k in GAP_METRICS}
    avg_gap = float(np.mean(list(gaps.values())))
    return metrics | gaps | {"avg_gap": avg_gap, "oracle_closeness": 100 - avg_gap}


def evaluate_prepared(prepared, which: str = "target") -> dict[str, float]:
    """A prepared image benchmark's `target`, `oracle` or a classifier folder, against its oracle."""
    from pathlib import Path

    from ofmu_ray.models.vision import load_classifier

    report = prepared.report
    if which in ("target", "oracle"):
        metrics = report["metrics"][which]
    elif (Path(which) / "config.json").is_file():
        metrics = evaluate_classifier(load_classifier(which), *vision_of(prepared))
    else:
        raise UsageError(f"--evaluate {which}: not 'target', 'oracle' or a classifier folder")
    return summarize_vision(metrics, report["metrics"]["oracle"])
