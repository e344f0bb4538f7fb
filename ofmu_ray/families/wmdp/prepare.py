"""Preparing a WMDP-style benchmark: the generated `synth-wmdp` (a target and a retain oracle trained
here) or real WMDP (`wmdp`: the user's questions, corpora and model; nothing trained), cached.

Layout of `<cache-dir>/synth-wmdp/<profile>-<model>-<key>/` (`wmdp/<model>-<topic>-<key>/`):
    data/<split>.json     forget, utility (questions), forget_corpus, retain_corpus (texts)
    models/target/        synth-wmdp: trained on both corpora and both domains' questions
    models/oracle/        synth-wmdp: trained on the general half only (real WMDP has no oracle)
    sources.json          wmdp: the user's model (a hub id or a folder)
    report.json           `forget_acc` and `utility_acc` of the target (and oracle), and the reference
                          forget accuracy a method is measured against: chance, 0.25
    manifest.json         the size and sha256 of every file above (`cache.publish`)

The reference is chance, not the oracle's measured accuracy: the oracle never saw the topic and
every letter is right equally often, so chance is what it scores in expectation, and on 20 questions
its measurement is +-0.1 of noise that a sweep would otherwise chase. `prepare` reports the oracle's
measured accuracies as the check that it is at chance (and still answers the general questions).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path

from ofmu_ray.cache import Prepared, cache_key, cache_root, fingerprint, publish, slug
from ofmu_ray.config import MODELS, FinetuneConfig, Profile
from ofmu_ray.errors import UsageError
from ofmu_ray.families.base import embedded_model, in_processes, model_ref, prepare_command, progress_bar, train_job
from ofmu_ray.families.wmdp.generate import TOPIC, SynthWmdpConfig, generate_wmdp
from ofmu_ray.families.wmdp.load import SPLITS, TOPICS, load_wmdp
from ofmu_ray.splits import Splits, write_splits

# Bump when what a prepare makes changes: the generator (generate.py), the tokenizer, the model
# factory, fine-tuning (train/finetune.py), the letter scoring (evaluate.py) or the recipe below.
RECIPE_VERSION = 2  # 2: target and oracle trained at once, one thread each
# synth-wmdp: a tiny model learns to answer by letter only after many passes over every other option
# order (measured: 40 epochs leave it at 0.45, 80 reach 1.0), so its models train longer, on fewer facts.
TRAIN = FinetuneConfig(epochs=80, batch_size=64, lr=3e-3)
PROFILES: dict[str, Profile] = {
    # tests: 20 questions a domain. Four layers, not two: RMU steers layer l for the layers above it to
    # misread, and on two layers no point of a 48-point grid brought forget_acc below 0.4 with utility kept
    "tiny": Profile(SynthWmdpConfig(compounds=4, towns=4), train=TRAIN),
    "small": Profile(SynthWmdpConfig(compounds=8, towns=8), train=TRAIN),
    "full": Profile(SynthWmdpConfig(compounds=24, towns=24), train=TRAIN),
}
CHANCE = 0.25  # four options, every letter right equally often


def prepare_synth_wmdp(profile: str = "tiny", cache_dir: str | Path | None = None, model: str | None = None, *,
                       rebuild: bool = False, progress: bool = True) -> Prepared:
    """The prepared `synth-wmdp`: generated and its models trained once, cached.

    Args:
        profile, model: its size (`PROFILES`) and embedded model (default: the profile's).
        rebuild: train again and replace the cached folder.

    Raises:
        UsageError: an unknown profile or model.
        CacheError: the cached folder is damaged.
    """
    model = embedded_model(PROFILES, profile, model, "wmdp")
    spec, root = PROFILES[profile], cache_root(cache_dir)
    key = cache_key({"bench": "synth-wmdp", "recipe": RECIPE_VERSION, "profile": asdict(spec),
                     "model": asdict(MODELS[model])})
    return publish(root / "synth-wmdp" / f"{profile}-{model}-{key}",
                   lambda tmp: _build_synth(profile, spec, model, tmp, progress), rebuild=rebuild,
                   command=prepare_command("synth-wmdp", profile=profile, model=model, cache_dir=str(root)))


def prepare_wmdp(split: str, data: str | None, model: str | None, cache_dir: str | Path | None = None, *,
                 rebuild: bool = False) -> Prepared:
    """Real WMDP: the user's questions and corpora (`load.load_wmdp`), and their model scored once.

    Args:
        split: the topic to forget, `bio`, `cyber` or `chem`.
        data: `hf:cais/wmdp` or a folder of WMDP-schema files.
        model: the model to unlearn, a hub id or a folder.
        rebuild: read the data again, score the model again and replace the cached folder.

    Raises:
        UsageError / DataError: an unknown topic, or data outside WMDP's schema.
        CacheError: the cached folder is damaged.
    """
    if split not in TOPICS:
        raise UsageError(f"unknown WMDP topic {split!r}; choose from {', '.join(TOPICS)}")
    if not data or not model:
        raise UsageError("--bench wmdp needs --data (hf:cais/wmdp or a folder) and --model (a hub id or a folder)")
    root = cache_root(cache_dir)
    command = prepare_command("wmdp", split=split, data=data, model=model, cache_dir=str(root))
    model = model_ref("--model", model, cache_dir)
    found = load_wmdp(data, split)
    key = cache_key({"bench": "wmdp", "recipe": RECIPE_VERSION, "data": [(n, found[n]) for n in SPLITS],
                     "model": [model, fingerprint(model)]})

    def build(tmp: Path) -> dict:
        start = time.time()
        write_splits(found, tmp / "data")
        (tmp / "sources.json").write_text(json.dumps({"models": {"target": model}}, indent=2) + "\n")
        return {"bench": "wmdp", "split": split, "data": data, "model": model,
                "metrics": {"target": _accuracies(model, found)}, "reference_forget_acc": CHANCE,
                "sizes": {n: len(found[n]) for n in SPLITS}, "seconds": round(time.time() - start, 1)}

    return publish(root / "wmdp" / f"{slug(Path(model).name)}-{split}-{key}", build, rebuild=rebuild,
                   command=command)


def _accuracies(model_dir: str | Path, data: Splits) -> dict[str, float]:
    from ofmu_ray.families.wmdp.evaluate import mcq_accuracies
    from ofmu_ray.models.factory import load_causal_lm, load_tokenizer

    return mcq_accuracies(load_causal_lm(model_dir), load_tokenizer(model_dir), data)


def _build_synth(profile_name: str, profile: Profile, model_name: str, out: Path, progress: bool) -> dict:
    from transformers.utils import logging as hf_logging

    from ofmu_ray.models.tokenizer import train_word_tokenizer
    from ofmu_ray.train.finetune import steps_for

    hf_logging.disable_progress_bar()
    start = time.time()
    generated = generate_wmdp(profile.data)
    data = Splits({name: generated[name] for name in SPLITS})
    write_splits(data, out / "data")
    tokenizer_dir = out / "tokenizer"
    train_word_tokenizer(generated["train_target"]).save_pretrained(tokenizer_dir)
    target, oracle = generated["train_target"], generated["train_oracle"]
    # The oracle takes as many steps as the target (more epochs on its half of the texts): with the
    # target's epochs it never learns to answer by letter at all (measured: utility_acc 0.30).
    jobs = {"target": (target, profile.train),
            "oracle": (oracle, replace(profile.train, epochs=round(profile.train.epochs * len(target) / len(oracle))))}
    total = sum(steps_for(len(texts), train) for texts, train in jobs.values())
    with progress_bar(total, progress) as bar:
        bar.set_description(f"train {', '.join(jobs)} ({len(target)}, {len(oracle)} texts)")
        in_processes(train_job, [(out / "models" / name, tokenizer_dir, [{"text": t} for t in texts], train,
                                  MODELS[model_name], 1, None) for name, (texts, train) in jobs.items()], bar.update)
    shutil.rmtree(tokenizer_dir)
    metrics = {name: _accuracies(out / "models" / name, data) for name in jobs}
    return {"bench": "synth-wmdp", "split": TOPIC, "profile": profile_name, "model": model_name,
            "metrics": metrics, "reference_forget_acc": CHANCE, "sizes": {n: len(data[n]) for n in SPLITS},
            "seconds": round(time.time() - start, 1)}
