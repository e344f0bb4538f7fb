"""Image classifiers: a small CNN for the 8x8 digits, ResNet-18 adapted to 32x32 CIFAR images.

Both normalise their input inside the model (as the Sparse/SalUn code does), take `pixels` in
[0, 1] and return logits. A saved classifier is a folder with `model.safetensors` and
`config.json` (its architecture and class count), so it loads without unpickling anything.

    >>> build_classifier("cnn", classes=10, channels=1)(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

ARCHS = ("cnn", "resnet18")


class Normalize(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("mean", torch.full((1, channels, 1, 1), 0.5))
        self.register_buffer("std", torch.full((1, channels, 1, 1), 0.25))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _cnn(classes: int, channels: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, classes))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                         if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


def _resnet18(classes: int, channels: int) -> nn.Module:
    """ResNet-18 for 32x32 inputs: a 3x3 stem and no max-pool (the CIFAR variant of the protocol)."""
    layers: list[nn.Module] = [nn.Conv2d(channels, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU()]
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
        cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, classes))


def build_classifier(arch: str, classes: int, channels: int, seed: int = 0) -> nn.Module:
    """A freshly initialised classifier (`cnn` or `resnet18`) with its input normalisation."""
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; choose from: {', '.join(ARCHS)}")
    torch.manual_seed(seed)
    body = _cnn(classes, channels) if arch == "cnn" else _resnet18(classes, channels)
    model = nn.Sequential(Normalize(channels), body)
    model.config = {"arch": arch, "classes": classes, "channels": channels}
    return model


def save_classifier(model: nn.Module, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out / "model.safetensors")
    (out / "config.json").write_text(json.dumps(model.config))


def load_classifier(folder: str | Path) -> nn.Module:
    """A classifier saved by `save_classifier` (safetensors only)."""
    config = json.loads((Path(folder) / "config.json").read_text())
    model = build_classifier(config["arch"], config["classes"], config["channels"])
    model.load_state_dict(load_file(Path(folder) / "model.safetensors"))
    return model
