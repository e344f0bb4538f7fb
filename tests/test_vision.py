"""Image benchmarks: CIFAR's binary format on small fixtures, the protocol's splits and metrics, the
embedded digits prepared (its sweep into MLflow: test_sweep.py, with every family's)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ofmu_ray.cli import main
from ofmu_ray.errors import DataError
from ofmu_ray.families.vision.evaluate import mia_efficacy, summarize_vision
from ofmu_ray.families.vision.load import load_vision, read_cifar, split_vision
from ofmu_ray.models.vision import build_classifier, load_classifier, save_classifier


def _write_cifar(folder, name: str, per_file: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A CIFAR binary archive in miniature: the real file names and record layout, random pixels."""
    rng = np.random.RandomState(seed)
    label_bytes = 1 if name == "cifar10" else 2
    files = ([f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"] if name == "cifar10"
             else ["train.bin", "test.bin"])
    written = {}
    folder.mkdir(parents=True)
    for file in files:
        labels = rng.randint(0, 10 if name == "cifar10" else 100, size=(per_file, label_bytes)).astype(np.uint8)
        pixels = rng.randint(0, 256, size=(per_file, 3072)).astype(np.uint8)
        (folder / file).write_bytes(np.concatenate([labels, pixels], 1).tobytes())
        written[file] = (labels[:, -1], pixels)
    return written


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_binary_records_are_read_exactly(tmp_path, name):
    written = _write_cifar(tmp_path / ("cifar-10-batches-bin" if name == "cifar10" else "cifar-100-binary"), name, 7)
    data = read_cifar(name, tmp_path)  # finds the extracted folder inside
    train_files = [f for f in written if "test" not in f]
    assert data.train_x.shape == (7 * len(train_files), 3, 32, 32) and data.test_x.shape == (7, 3, 32, 32)
    assert data.classes == (10 if name == "cifar10" else 100)
    first_labels, first_pixels = written[train_files[0]]
    assert data.train_y[:7].tolist() == first_labels.tolist()  # CIFAR-100: the fine label (second byte)
    np.testing.assert_allclose(data.train_x[0], first_pixels[0].reshape(3, 32, 32) / 255.0, rtol=1e-6)


def test_bad_cifar_folders_name_the_problem(tmp_path):
    _write_cifar(tmp_path / "c", "cifar10", 3)
    (tmp_path / "c" / "test_batch.bin").write_bytes(b"\0" * 100)
    with pytest.raises(DataError, match="not a whole number of 3073-byte CIFAR records"):
        read_cifar("cifar10", tmp_path / "c")
    (tmp_path / "c" / "data_batch_2.bin").unlink()
    with pytest.raises(DataError, match="no data_batch_2.bin"):
        read_cifar("cifar10", tmp_path / "c")


def test_protocol_splits():
    data = load_vision("digits")
    random = split_vision(data, "random", seed=2)
    train = len(data.train_y) - len(random.valid)
    assert len(random.forget) == int(0.1 * train) and len(random.forget) + len(random.retain) == train
    assert not set(random.forget) & set(random.retain) and not set(random.valid) & set(random.retain)
    assert np.array_equal(random.forget, split_vision(data, "random", seed=2).forget)  # seeded
    wise = split_vision(data, "class", seed=2, forget_class=3)
    assert set(data.train_y[wise.forget]) == {3} and 3 not in set(data.train_y[wise.retain])
    assert 3 not in set(data.test_y[wise.test]) and len(wise.test) < len(data.test_y)


def test_resnet18_for_32px_and_classifier_round_trip(tmp_path):
    net = build_classifier("resnet18", classes=10, channels=3)
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert 11.0e6 < sum(p.numel() for p in net.parameters()) < 11.3e6  # ResNet-18's 11.2M
    cnn = build_classifier("cnn", classes=10, channels=1, seed=1).eval()
    save_classifier(cnn, tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"model.safetensors", "config.json"}
    x = torch.rand(4, 1, 8, 8)
    assert torch.equal(load_classifier(tmp_path).eval()(x), cnn(x))


def test_mia_efficacy_and_gaps():
    member, nonmember = np.full(50, 0.99), np.full(50, 0.2)
    assert mia_efficacy(member, nonmember, np.full(10, 0.98)) == 0.0  # looks like training data
    assert mia_efficacy(member, nonmember, np.full(10, 0.25)) == 100.0  # looks unseen
    summary = summarize_vision({"ua": 10.0, "ra": 99.0, "ta": 95.0, "mia_efficacy": 20.0},
                               {"ua": 6.0, "ra": 100.0, "ta": 94.0, "mia_efficacy": 12.0})
    assert summary["avg_gap"] == pytest.approx((4 + 1 + 1 + 8) / 4)
    assert summary["oracle_closeness"] == pytest.approx(100 - summary["avg_gap"])


def test_digits_target_and_retrained_oracle_differ_on_the_forget_set(digits, capsys):
    target, oracle = digits.report["metrics"]["target"], digits.report["metrics"]["oracle"]
    print(f"target {target}\noracle {oracle}")
    assert target["ta"] > 90 and oracle["ta"] > 90 and target["ra"] > 95 and oracle["ra"] > 95
    assert oracle["ua"] > target["ua"] or oracle["mia_efficacy"] > target["mia_efficacy"]


def test_methods_that_do_not_apply_are_refused(digits, cache_dir, mlflow_uri, tmp_path, capsys):
    argv = ["sweep", "--bench", "digits", "--cache-dir", cache_dir, "--methods", "npo", "--tracking-uri", mlflow_uri]
    assert main(argv) == 2
    assert "npo cannot unlearn from images (digits); choose from gradascent, graddiff, ofmu, ft, rl" in \
        capsys.readouterr().err
    assert not (tmp_path / "mlruns.db").exists()
