"""LoRA unlearning: OFMU through adapters forgets, and touches nothing but the adapters."""

from __future__ import annotations

import pytest
import torch

from ofmu_ray import runs
from ofmu_ray.methods import build_config, get_method
from ofmu_ray.metrics.accuracy import answer_accuracy
from ofmu_ray.models.factory import load_causal_lm, load_tokenizer
from ofmu_ray.models.lora import LoraSpec, add_lora, parse_lora
from ofmu_ray.train.loop import unlearn
from ofmu_ray.train.task import batches

OFMU_FAST = {"lr": 1e-2}  # adapters start at zero: larger steps than the full model needs


def test_ofmu_through_adapters_forgets_and_updates_only_adapters(tiny):
    data, model_dir = tiny.data(), tiny.model_dir("target")
    tok = load_tokenizer(model_dir)
    model = add_lora(load_causal_lm(model_dir), LoraSpec(r=8, alpha=16))
    base = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" not in n}
    adapters = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
    assert adapters and all(not p.requires_grad for n, p in model.named_parameters() if n in base)
    before = answer_accuracy(model, tok, data["forget10"])
    method = get_method("ofmu")(model, build_config("ofmu", OFMU_FAST))
    unlearn(method, batches(tok, data["forget10"], 16), batches(tok, data["retain90"], 16, seed=1), 20)
    after = answer_accuracy(model, tok, data["forget10"])
    print(f"LoRA ofmu: forget10 {before:.3f} -> {after:.3f}")
    assert after < before
    params = dict(model.named_parameters())
    assert all(torch.equal(params[n], p) for n, p in base.items())
    assert any(not torch.equal(params[n], p) for n, p in adapters.items())


def test_an_adapter_run_saves_the_adapter_that_loads_onto_its_base(tiny, tmp_path):
    spec = runs.run_spec(tiny, split="forget10", method="graddiff", overrides={"lr": 1e-2}, steps=3, batch_size=4,
                         evaluate=False, lora=vars(parse_lora("r=4,targets=q_proj+v_proj")), lora_save="adapter")
    _, folder = runs.run(tiny, spec, storage=tmp_path)
    assert (folder / "adapter_model.safetensors").is_file() and not (folder / "model.safetensors").exists()
    merged = dict(load_causal_lm(folder).named_parameters())
    target = dict(load_causal_lm(tiny.model_dir("target")).named_parameters())
    changed = {n for n, p in target.items() if not torch.equal(merged[n], p)}
    assert changed and all(n.endswith(("q_proj.weight", "v_proj.weight")) for n in changed)


@pytest.mark.parametrize("text, message", [("r=0", "r must be >= 1"), ("rr=4", "did you mean 'r'"),
                                           ("r", "expected key=value")])
def test_bad_lora_specs_are_named(text, message):
    with pytest.raises(ValueError, match=message):
        parse_lora(text)
