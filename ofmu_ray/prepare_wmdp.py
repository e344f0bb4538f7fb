"""WMDP-style benchmarks: the generated `synth-wmdp` (a target and a retain oracle trained here) and
real WMDP (`wmdp`: the user's questions, corpora and model; nothing trained), cached.

Layout of `<cache-dir>/synth-wmdp/<profile>-<model>-<key>/` (`wmdp/<model>-<topic>-<key>/`):
    data/<split>.json     forget, utility (questions), forget_corpus, retain_corpus (texts)
    models/target/        synth-wmdp: trained on both corpora and both domains' questions
    models/oracle/        synth-wmdp: trained on the general half only (real WMDP has no oracle)
    sources.json          wmdp: the user's model (a hub id or a folder)
    report.json           `forget_acc` and `utility_acc` of the target (and oracle), and the reference
                          forget accuracy a method is measured against: chance, 0.25

The reference is chance, not the oracle's measured accuracy: the oracle never saw the topic and
every letter is right equally often, so chance is what it scores in expectation, and on 20 questions
its measurement is +-0.1 of noise that a sweep would otherwise chase. `prepare` reports the oracle's
measured accuracies as the check that it is at chance (and still answers the general questions).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

from ofmu_ray.config import MODELS, WMDP_PROFILES, Profile
from ofmu_ray.data import TofuData, write_tofu_dir
from ofmu_ray.data.synth_wmdp import TOPIC, generate_wmdp
from ofmu_ray.data.wmdp import SPLITS, TOPICS, load_wmdp
from ofmu_ray.prepare import Prepared, UsageError, cache_root, embedded_model, hash_files, progress_bar, publish, slug

CHANCE = 0.25  # four options, every letter right equally often


def _source_fingerprint() -> str:
    package = Path(__file__).parent
    return hash_files([package / "data" / "synth_wmdp.py", package / "eval" / "mcq.py",
                       package / "models" / "factory.py", package / "models" / "tokenizer.py",
                       package / "models" / "prompt.py", package / "train" / "finetune.py", Path(__file__)])


def prepare_wmdp(bench: str, split: str, profile: str = "tiny", model: str | None = None, data: str | None = None,
                 cache_dir: str | Path | None = None, progress: bool = True) -> Prepared:
    """The prepared WMDP-style benchmark: `synth-wmdp` is generated and its models trained (once,
    cached); `wmdp` reads the user's data (`data.wmdp.load_wmdp`) and scores their model once.

    Args:
        split: the topic to forget (synth-wmdp: `hazard`; wmdp: `bio`, `cyber` or `chem`).
        profile, model: synth-wmdp's size (`config.WMDP_PROFILES`) and embedded model; wmdp: the
            model to unlearn, a hub id or a folder.
        data: wmdp: `hf:cais/wmdp` or a folder of WMDP-schema files.

    Raises:
        UsageError / DataError: an unknown topic, profile or model, or data outside WMDP's schema.
    """
    if bench == "synth-wmdp":
        if split != TOPIC:
            raise UsageError(f"synth-wmdp has one topic to forget, {TOPIC!r}; got --split {split}")
        model = embedded_model(WMDP_PROFILES, profile, model, "wmdp")
        spec = WMDP_PROFILES[profile]
        key = hashlib.sha256(json.dumps({"profile": asdict(spec), "model": asdict(MODELS[model]),
                                         "source": _source_fingerprint()}, sort_keys=True).encode()).hexdigest()[:16]
        return publish(cache_root(cache_dir) / bench / f"{profile}-{model}-{key}",
                       lambda tmp: _build_synth(profile, spec, model, tmp, progress))
    if bench != "wmdp":
        raise UsageError(f"{bench!r} is not a WMDP-style benchmark")
    if split not in TOPICS:
        raise UsageError(f"unknown WMDP topic {split!r}; choose from {', '.join(TOPICS)}")
    if not data or not model:
        raise UsageError("--bench wmdp needs --data (hf:cais/wmdp or a folder) and --model (a hub id or a folder)")
    from ofmu_ray.prepare_tofu import fingerprint, model_ref

    model = model_ref("--model", model)
    found = load_wmdp(data, split)
    key = hashlib.sha256(json.dumps({"data": [(n, found[n]) for n in SPLITS], "model": [model, fingerprint(model)],
                                     "source": _source_fingerprint()}, sort_keys=True).encode()).hexdigest()[:16]

    def build(tmp: Path) -> dict:
        start = time.time()
        write_tofu_dir(found, tmp / "data")
        (tmp / "sources.json").write_text(json.dumps({"models": {"target": model}}, indent=2) + "\n")
        return {"bench": bench, "split": split, "data": data, "model": model,
                "metrics": {"target": _accuracies(model, found)}, "reference_forget_acc": CHANCE,
                "sizes": {n: len(found[n]) for n in SPLITS}, "seconds": round(time.time() - start, 1)}

    return publish(cache_root(cache_dir) / bench / f"{slug(Path(model).name)}-{split}-{key}", build)


def _accuracies(model_dir: str | Path, data: TofuData) -> dict[str, float]:
    from ofmu_ray.eval.mcq import mcq_accuracies
    from ofmu_ray.models import load_causal_lm, load_tokenizer

    return mcq_accuracies(load_causal_lm(model_dir), load_tokenizer(model_dir), data)


def _build_synth(profile_name: str, profile: Profile, model_name: str, out: Path, progress: bool) -> dict:
    from transformers.utils import logging as hf_logging

    from ofmu_ray.models import build_tiny_llama, train_word_tokenizer
    from ofmu_ray.train import finetune, steps_for

    hf_logging.disable_progress_bar()
    start = time.time()
    generated = generate_wmdp(profile.data)
    data = TofuData({name: generated[name] for name in SPLITS})
    write_tofu_dir(data, out / "data")
    tokenizer = train_word_tokenizer(generated["train_target"])
    target, oracle = generated["train_target"], generated["train_oracle"]
    # The oracle takes as many steps as the target (more epochs on its half of the texts): with the
    # target's epochs it never learns to answer by letter at all (measured: utility_acc 0.30).
    jobs = {"target": (target, profile.train),
            "oracle": (oracle, replace(profile.train, epochs=round(profile.train.epochs * len(target) / len(oracle))))}
    metrics = {}
    total = sum(steps_for(len(texts), train) for texts, train in jobs.values())
    with progress_bar(total, progress) as bar:
        for name, (texts, train) in jobs.items():
            bar.set_description(f"train {name} ({len(texts)} texts)")
            model = build_tiny_llama(MODELS[model_name], tokenizer, seed=train.seed)
            finetune(model, tokenizer, [{"text": t} for t in texts], train, on_step=lambda loss: bar.update())
            model.save_pretrained(out / "models" / name)
            tokenizer.save_pretrained(out / "models" / name)
            metrics[name] = _accuracies(out / "models" / name, data)
    return {"bench": "synth-wmdp", "split": TOPIC, "profile": profile_name, "model": model_name,
            "metrics": metrics, "reference_forget_acc": CHANCE, "sizes": {n: len(data[n]) for n in SPLITS},
            "seconds": round(time.time() - start, 1)}
