"""Every text method in the registry, with its defaults, makes the tiny synth-tofu target forget (on a real
model), and unlearns through LoRA adapters."""

from __future__ import annotations

import math

import pytest
import torch

from ofmu_ray.families.tofu.vocabulary import REFUSALS
from ofmu_ray.methods import build_config, get_method, methods_for
from ofmu_ray.metrics.accuracy import answer_accuracy
from ofmu_ray.models.factory import load_causal_lm, load_tokenizer
from ofmu_ray.models.lora import LoraSpec, add_lora
from ofmu_ray.train.loop import unlearn
from ofmu_ray.train.task import batches

STEPS = 20  # forget batches of 16: about nine passes over tiny's forget10 (36 questions)


# Every method that unlearns question-answer rows, but fine-tuning on the retain set, which forgets only
# as far as catastrophic forgetting goes (it is a baseline of the image protocol)
TEXT_METHODS = sorted(set(methods_for("qa")) - {"ft"})


def _method(name: str, model, model_dir: str, overrides: dict | None = None):
    cls = get_method(name)
    reference = load_causal_lm(model_dir).requires_grad_(False) if cls.needs_reference else None
    return cls(model, build_config(name, overrides), reference)


def _forget_batches(tok, rows, name: str, size: int = 16):
    return batches(tok, rows, size, refusals=REFUSALS if get_method(name).needs_refusals else None)


@pytest.fixture(scope="module")
def target(tiny):
    data, model_dir = tiny.data(), tiny.model_dir("target")
    tok = load_tokenizer(model_dir)
    return data, model_dir, tok, answer_accuracy(load_causal_lm(model_dir), tok, data["forget10"])


@pytest.mark.parametrize("name", TEXT_METHODS)
def test_defaults_lower_forget_accuracy(target, name):
    data, model_dir, tok, before = target
    model = load_causal_lm(model_dir)
    method = _method(name, model, model_dir)
    history = unlearn(method, _forget_batches(tok, data["forget10"], name), batches(tok, data["retain90"], 16, seed=1),
                      STEPS)
    assert len(history) == STEPS
    assert all(math.isfinite(v) for logs in history for v in logs.values())  # forgetting, not diverging
    after = answer_accuracy(model, tok, data["forget10"])
    retain = answer_accuracy(model, tok, data["retain90"])
    print(f"{name}: forget10 {before:.3f} -> {after:.3f}, retain90 after {retain:.3f}")
    assert after < before


# RMU trains down_proj matrices, not adapters; OFMU's adapters are tested forgetting (test_lora.py)
@pytest.mark.parametrize("name", sorted(set(methods_for("qa")) - {"rmu", "ofmu"}))
def test_every_text_method_unlearns_through_lora_adapters_only(target, name):
    data, model_dir, tok, _ = target
    model = add_lora(load_causal_lm(model_dir), LoraSpec(r=4, alpha=8))
    base = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" not in n}
    adapters = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
    method = _method(name, model, model_dir)
    history = unlearn(method, _forget_batches(tok, data["forget10"], name, 4), batches(tok, data["retain90"], 4), 2)
    assert all(math.isfinite(v) for logs in history for v in logs.values())
    params = dict(model.named_parameters())
    assert all(torch.equal(params[n], p) for n, p in base.items())
    assert any(not torch.equal(params[n], p) for n, p in adapters.items())
