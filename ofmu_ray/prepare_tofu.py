"""Real TOFU, prepare-free: the user's data, TOFU-finetuned target and retain oracle (or retain log).

Nothing is trained. `<cache-dir>/tofu/<model>-<split>-<key>/` holds the data (`data/`, read once
from the hub or a folder), `sources.json` (the models as the user named them, hub ids or
folders, and their prompt format), the retain log if one was given, and `report.json`; the
oracle's and target's evaluations are cached there on first use. The key hashes the data, the
models (a folder's files, or the hub id), the prompt format and the split.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from ofmu_ray.data import DataError, TofuData, load_tofu, write_tofu_dir
from ofmu_ray.prepare import Prepared, UsageError, cache_root, publish, slug

TOFU_FIELDS = ("question", "answer", "paraphrased_answer", "perturbed_answer")  # what the metrics read


def fingerprint(ref: str) -> str:
    """What identifies a model: a folder's file names, sizes and times, or a hub id as it is."""
    path = Path(ref)
    if not path.exists():
        return ref
    return json.dumps([(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(path.iterdir())])


def model_ref(option: str, ref: str) -> str:
    """A model folder made absolute (checked to hold a model), or a hub id (checked to load) as it is."""
    path = Path(ref).expanduser()
    if not path.exists():
        if ref.startswith((".", "/", "~")) or ref.count("/") > 1:
            raise UsageError(f"{option} {ref}: no such folder (and not a hub id such as org/name)")
        from transformers import AutoConfig

        try:  # now, not in the middle of a sweep
            AutoConfig.from_pretrained(ref)
        except OSError as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UsageError(f"{option} {ref}: cannot load it from the hub or its cache ({first}); "
                             "download it first or pass a model folder") from e
        return ref
    if not ((path / "config.json").is_file() or (path / "adapter_config.json").is_file()):
        raise UsageError(f"{option} {ref}: not a model folder (no config.json or adapter_config.json)")
    return str(path.resolve())


def _check_tofu(data: TofuData, split: str) -> None:
    """The splits and columns the metrics read are there (a missing split is a DataError naming it)."""
    from ofmu_ray.data.tofu import retain_split

    if split not in data.forget_splits:
        have = ", ".join(data.forget_splits) or "no forget split"
        raise UsageError(f"unknown split {split!r}; this data has: {have}")
    qa = ("question", "answer")
    needs = {split: TOFU_FIELDS, "retain_perturbed": TOFU_FIELDS, retain_split(split): qa,
             "real_authors": (*qa, "perturbed_answer"), "world_facts": (*qa, "perturbed_answer")}
    for name, columns in needs.items():
        rows = data[name]
        if not rows:
            raise DataError(f"split {name!r} is empty")
        missing = [c for c in columns if c not in rows[0]]
        if missing:
            raise DataError(f"split {name!r} lacks TOFU's column(s): {', '.join(missing)}")


def prepare_tofu(data: str, split: str, model: str, oracle: str | None = None, retain_logs: str | None = None,
                 prompt: str = "auto", cache_dir: str | Path | None = None) -> Prepared:
    """Real TOFU: the user's data, target model and retain oracle (or retain log), made ready for every
    command. Nothing is trained; the data and the names of the models are cached, so that the
    oracle's evaluation is computed once.

    Args:
        data: `hf:locuslab/TOFU` or a folder of TOFU-schema files (`data.load_tofu`).
        split: the forget split the oracle (or retain log) belongs to.
        model, oracle: hub ids or model folders (the oracle: the retain model of `split`).
        retain_logs: an OpenUnlearning `TOFU_EVAL.json` of the retain model, instead of `oracle`.
        prompt: the prompt format the models were fine-tuned with (`models.prompt.PROMPTS`, or auto).

    Raises:
        UsageError: a missing model or oracle, a path that is not a model, an unknown split.
        DataError: data that cannot be read or lacks a TOFU split or column.
    """
    from ofmu_ray.models.prompt import PROMPTS

    if not data:
        raise UsageError("--bench tofu needs --data hf:locuslab/TOFU or --data DIR")
    if not model:
        raise UsageError("--bench tofu needs --model (the TOFU-finetuned target: a hub id or a folder)")
    if bool(oracle) == bool(retain_logs):
        raise UsageError("--bench tofu needs exactly one of --oracle (the retain model) and --retain-logs "
                         "(its OpenUnlearning TOFU_EVAL.json)")
    if prompt != "auto" and prompt not in PROMPTS:
        raise UsageError(f"unknown --prompt {prompt!r}; choose from auto, {', '.join(PROMPTS)}")
    model = model_ref("--model", model)
    oracle = model_ref("--oracle", oracle) if oracle else None
    if retain_logs:
        from ofmu_ray.eval.run import read_retain_logs

        read_retain_logs(retain_logs)  # checked now, not in the middle of a sweep
    tofu = load_tofu(data)
    _check_tofu(tofu, split)
    digest = hashlib.sha256(json.dumps({
        "data": [(n, tofu[n]) for n in tofu], "model": [model, fingerprint(model)], "prompt": prompt,
        "oracle": [oracle, fingerprint(oracle)] if oracle else Path(retain_logs).read_text(), "split": split,
    }, sort_keys=True).encode()).hexdigest()[:16]

    def build(tmp: Path) -> dict:
        write_tofu_dir(tofu, tmp / "data")
        sources = {"models": {"target": model} | ({f"oracle-{split}": oracle} if oracle else {}), "prompt": prompt}
        if retain_logs:
            shutil.copyfile(retain_logs, tmp / "retain_logs.json")
            sources["retain_logs"] = {split: "retain_logs.json"}
        (tmp / "sources.json").write_text(json.dumps(sources, indent=2) + "\n")
        return {"bench": "tofu", "data": data, "model": model, "split": split, "oracle": oracle or retain_logs,
                "prompt": prompt, "splits": {n: len(tofu[n]) for n in tofu}}

    return publish(cache_root(cache_dir) / "tofu" / f"{slug(Path(model).name)}-{split}-{digest}", build)
