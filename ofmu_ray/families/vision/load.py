"""Image classification data: the embedded 8x8 digits, and CIFAR-10/100 from their binary archives.

Splits follow the Sparse/SalUn protocol (the OPTML-Group Unlearn-Sparse and Unlearn-Saliency code): 10 % of
each class of the training images is held out for validation (`RandomState(seed)`); the forget set
is either a random 10 % of the remaining training images (`RandomState(seed - 1)`) or every image
of one class, which is then dropped from the test set too. The retain set is the rest.

CIFAR is read from the official *binary* archives (`cifar-10-batches-bin/`, `cifar-100-binary/`):
fixed-size records of label bytes and 3072 pixel bytes, so nothing is unpickled.

    >>> data = load_vision("digits")
    >>> data.train_x.shape[1:], data.classes
    ((1, 8, 8), 10)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ofmu_ray.cache import Prepared
from ofmu_ray.errors import DataError

CLASSES = {"digits": 10, "cifar10": 10, "cifar100": 100}
VISION_BENCHES = tuple(CLASSES)
SCENARIOS = ("random", "class")
PIXELS = 32 * 32 * 3
CIFAR_FILES = {
    "cifar10": ([f"data_batch_{i}.bin" for i in range(1, 6)], ["test_batch.bin"], 1),  # label bytes
    "cifar100": (["train.bin"], ["test.bin"], 2),  # coarse label, then the fine one (used)
}


@dataclass(frozen=True)
class VisionData:
    """Images as float32 in [0, 1], (N, C, H, W), with int64 labels."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    classes: int


def _digits() -> VisionData:
    from sklearn.datasets import load_digits

    digits = load_digits()  # bundled with scikit-learn: offline
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    y = digits.target.astype(np.int64)
    test = np.zeros(len(y), dtype=bool)  # no official test split: a fixed 20 % of each class
    rng = np.random.RandomState(0)
    for c in range(10):
        where = np.flatnonzero(y == c)
        test[rng.choice(where, len(where) // 5, replace=False)] = True
    return VisionData(x[~test], y[~test], x[test], y[test], CLASSES["digits"])


def _read_records(path: Path, label_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    raw = np.fromfile(path, dtype=np.uint8)
    size = label_bytes + PIXELS
    if raw.size % size:
        raise DataError(f"{path}: {raw.size} bytes is not a whole number of {size}-byte CIFAR records")
    records = raw.reshape(-1, size)
    images = records[:, label_bytes:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0
    return images, records[:, label_bytes - 1].astype(np.int64)


def cifar_folder(name: str, directory: str | Path | None) -> Path:
    """The folder holding CIFAR's binary files: `directory` or the archive's extracted folder in it.

    Raises:
        DataError: no `directory`, or a file of the archive is missing.
    """
    if directory is None:
        raise DataError(f"--bench {name} needs --data-dir DIR with the binary CIFAR archive (no download here)")
    train_files, test_files, _ = CIFAR_FILES[name]
    folder = Path(directory)
    for sub in ("cifar-10-batches-bin", "cifar-100-binary"):
        if (folder / sub).is_dir():
            folder = folder / sub
    missing = [f for f in train_files + test_files if not (folder / f).is_file()]
    if missing:
        raise DataError(f"--data-dir {directory}: no {', '.join(missing)} (the *binary* CIFAR archive, "
                        f"{'cifar-10-binary.tar.gz' if name == 'cifar10' else 'cifar-100-binary.tar.gz'}, extracted)")
    return folder


def read_cifar(name: str, directory: str | Path) -> VisionData:
    """CIFAR-10 or CIFAR-100 from a folder holding the binary archive's files (or its extracted folder).

    Raises:
        DataError: a file is missing or is not made of whole records.
    """
    train_files, test_files, label_bytes = CIFAR_FILES[name]
    folder = cifar_folder(name, directory)

    def read(files: list[str]) -> tuple[np.ndarray, np.ndarray]:
        parts = [_read_records(folder / f, label_bytes) for f in files]
        return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])

    return VisionData(*read(train_files), *read(test_files), CLASSES[name])


def load_vision(name: str, data_dir: str | Path | None = None) -> VisionData:
    """`digits` (embedded) or `cifar10`/`cifar100` read from `data_dir`."""
    if name == "digits":
        return _digits()
    if name not in CIFAR_FILES:
        raise DataError(f"unknown image benchmark {name!r}; choose from: {', '.join(VISION_BENCHES)}")
    return read_cifar(name, data_dir)


@dataclass(frozen=True)
class VisionSplits:
    """Index arrays into the training images (forget, retain, validation) and the test images kept."""

    forget: np.ndarray
    retain: np.ndarray
    valid: np.ndarray
    test: np.ndarray


def split_vision(data: VisionData, scenario: str = "random", seed: int = 2, forget_class: int = 0,
                 forget_share: float = 0.1) -> VisionSplits:
    """The protocol's splits (SalUn's default seed is 2: validation from `RandomState(2)`, forget
    indices from `RandomState(1)`).

    Args:
        scenario: `random` (a random `forget_share` of the training images) or `class` (all of
            `forget_class`, also dropped from the test set).
    """
    if scenario not in SCENARIOS:
        raise DataError(f"unknown scenario {scenario!r}; choose from: {', '.join(SCENARIOS)}")
    if not 0 <= forget_class < data.classes:
        raise DataError(f"forget class {forget_class} is not one of the {data.classes} classes")
    rng = np.random.RandomState(seed)
    valid = np.concatenate([rng.choice(np.flatnonzero(data.train_y == c), int(0.1 * (data.train_y == c).sum()),
                                       replace=False) for c in range(data.classes)])
    train = np.setdiff1d(np.arange(len(data.train_y)), valid)
    if scenario == "random":
        forget = np.sort(np.random.RandomState(seed - 1).choice(train, int(forget_share * len(train)), replace=False))
        test = np.arange(len(data.test_y))
    else:
        forget = train[data.train_y[train] == forget_class]
        test = np.flatnonzero(data.test_y != forget_class)
    return VisionSplits(forget, np.setdiff1d(train, forget), np.sort(valid), test)


def vision_of(prepared: Prepared) -> tuple[VisionData, VisionSplits]:
    """The images and the split of a prepared image benchmark."""
    data = load_vision(prepared.bench, prepared.sources.get("data_dir"))
    with np.load(prepared.root / "splits.npz") as saved:
        return data, VisionSplits(**{k: saved[k] for k in ("forget", "retain", "valid", "test")})
