"""Every method, with its defaults, makes the tiny synth-tofu target forget (on a real model)."""

from __future__ import annotations

import math

import pytest

from ofmu_ray.families import FAMILIES
from ofmu_ray.methods import build_config, get_method
from ofmu_ray.metrics.accuracy import answer_accuracy
from ofmu_ray.models.factory import load_causal_lm, load_tokenizer
from ofmu_ray.train.loop import unlearn
from ofmu_ray.train.task import batches

STEPS = 20  # forget batches of 16: about nine passes over tiny's forget10 (36 questions)


@pytest.fixture(scope="module")
def target(tiny):
    data, model_dir = tiny.data(), tiny.model_dir("target")
    tok = load_tokenizer(model_dir)
    return data, model_dir, tok, answer_accuracy(load_causal_lm(model_dir), tok, data["forget10"])


@pytest.mark.parametrize("name", sorted(FAMILIES["synth-tofu"].default_methods))
def test_defaults_lower_forget_accuracy(target, name):
    data, model_dir, tok, before = target
    cls = get_method(name)
    model = load_causal_lm(model_dir)
    reference = load_causal_lm(model_dir).requires_grad_(False) if cls.needs_reference else None
    method = cls(model, build_config(name), reference)
    history = unlearn(method, batches(tok, data["forget10"], 16), batches(tok, data["retain90"], 16, seed=1), STEPS)
    assert len(history) == STEPS
    assert all(math.isfinite(v) for logs in history for v in logs.values())  # forgetting, not diverging
    after = answer_accuracy(model, tok, data["forget10"])
    retain = answer_accuracy(model, tok, data["retain90"])
    print(f"{name}: forget10 {before:.3f} -> {after:.3f}, retain90 after {retain:.3f}")
    assert after < before
