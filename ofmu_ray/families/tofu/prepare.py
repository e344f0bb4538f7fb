"""Preparing a TOFU-style benchmark: `synth-tofu` generated with its models trained here, or real TOFU
(`tofu`: the user's data and models, nothing trained), cached.

synth-tofu: `<cache-dir>/synth-tofu/<profile>-<model>-<key>/`, the key made of the profile (the
generator's config and the training config), the model's shape and `RECIPE_VERSION`:
    data/<split>.json        every split in TOFU's schema (JSON lines), plus the training mix
    models/target/           the model trained on everything (safetensors + tokenizer)
    models/oracle-forgetXX/  one retain oracle per forget split, trained without its authors
    eval/<model>-<split>/    TOFU_EVAL.json of the target on each split and of each oracle on its own
    report.json              accuracies of target and oracle, chance levels, geometry, seconds taken
    manifest.json            the size and sha256 of every file above (`cache.publish`)

tofu: `<cache-dir>/tofu/<model>-<split>-<key>/` holds the data (`data/`, read once from the hub or a
folder), `sources.json` (the models as the user named them, hub ids or folders, and their prompt
format), the retain log if one was given, and `report.json`; the key hashes the data, the models
(a folder's files, or the hub id), the prompt format and the split. Both kinds are `Prepared`
folders, so every command serves them the same way.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path

from ofmu_ray.cache import Prepared, cache_key, cache_root, fingerprint, publish, slug
from ofmu_ray.config import MODELS, FinetuneConfig, Profile
from ofmu_ray.errors import DataError, UsageError
from ofmu_ray.families.base import embedded_model, in_processes, model_ref, prepare_command, progress_bar, train_job
from ofmu_ray.families.tofu.generate import HARD_SPLITS, SynthTofuConfig, generate, rendered, training_rows
from ofmu_ray.families.tofu.load import forget_splits, load_tofu, retain_split
from ofmu_ray.models.lora import LoraSpec
from ofmu_ray.models.pretrained import PRETRAINED, pretrained_folder
from ofmu_ray.splits import Splits, write_splits

# Bump when what a prepare makes changes: the generator (generate.py, vocabulary.py), the tokenizer,
# the model factory, fine-tuning (train/finetune.py) or the recipe below. Cache keys are made of this
# number and the configs, not of source files, so a move or an unrelated edit retrains nothing.
# 3: gender is asked in no split (every question has five wrong answers); refusal replies in the vocabulary.
RECIPE_VERSION = 3
# The training recipe (since version 2), chosen by measurement (benchmarks/README.md, "synth-tofu's
# geometry"): a base model trained from scratch on everything but the largest forget split's authors,
# then the target and every retain oracle fine-tuned from it on their own training mix. All models so take the same
# steps and share what is not about the forget authors, as TOFU's target and retain model share a
# pretrained model: the oracles' utility matches the target's, and the forget authors are learnt in a
# short second stage, memorised about as firmly as TOFU's.
BASE = FinetuneConfig(epochs=12)
TUNE = FinetuneConfig(epochs=6, lr=1e-3)
# A pretrained model (`models.pretrained.PRETRAINED`) is the base itself, as TOFU's target and retain
# model are fine-tuned from one chat model: every model of the profile is fine-tuned from it as from
# a base (`Profile.tune`, or `train` where the profile has one stage), with adapters on all its
# projections, then merged. On two cores a LoRA step of SmolLM2 took 4.0-5.3 s against 5.6-9.4 s
# for full fine-tuning (16 x 53 tokens).
PRETRAINED_LORA = LoraSpec(r=16, alpha=32.0)
# smol: SmolLM2-135M-Instruct, sized to prepare on two cores in under 45 minutes (measured: 26.5, of
# which 20 fine-tuning and 6.6 evaluating). It asks no crosslingual questions: SmolLM2 named 0 of 4 capitals
# asked in French and in Spanish (3 of 4 in English). Its paraphrase split also rewords the questions.
SMOL = SynthTofuConfig(authors=10, languages=(), reworded=True, retain_eval_authors=5, retain_hard_authors=3)
PROFILES: dict[str, Profile] = {
    # tests: forget05 + forget10. It asks a third of its retain authors (6 of 18; 3 of 10 in the hard
    # forms), still 3x forget10's questions where TOFU asks as many: its evaluations take half the time,
    # its models are the same and MU moved by at most 0.006 (benchmarks/README.md).
    # Its base trains 16 epochs, not 12: with recipe 3's vocabulary, 12 left the target answering 0.52-0.80
    # of real_authors on the three draws measured (benchmarks/README.md, "synth-tofu's geometry").
    "tiny": Profile(SynthTofuConfig(authors=20, retain_eval_share=1 / 3), train=replace(BASE, epochs=16),
                    tune=TUNE),
    "small": Profile(SynthTofuConfig(authors=60), train=BASE, tune=TUNE),  # the demo: all three forget splits
    "full": Profile(SynthTofuConfig(authors=200), "llama-6l-256", BASE, TUNE),  # TOFU's size
    "smol": Profile(SMOL, "smollm2-135m", FinetuneConfig(epochs=3, batch_size=16, lr=2e-3)),  # forget10 only
}
# OpenUnlearning's ROUGE generations (configs/generation/default.yaml): what `--bench tofu` evaluates
# with unless `--max-new-tokens` says otherwise. synth-tofu keeps the longest gold answer + 4: its
# answers are one short sentence, and a collapsed model would otherwise generate to the limit.
MAX_NEW_TOKENS = 200
REPORT_SPLIT = "forget10"  # the split whose hard splits and oracle the report shows (as TOFU's headline)
TOFU_FIELDS = ("question", "answer", "paraphrased_answer", "perturbed_answer")  # what the metrics read


def synth_key(profile: Profile, model: str) -> str:
    """The cache key of a synth-tofu profile prepared with an embedded (or pretrained) model."""
    shape = asdict(MODELS[model]) if model in MODELS else {**asdict(PRETRAINED[model]), "lora": asdict(PRETRAINED_LORA)}
    return cache_key({"bench": "synth-tofu", "recipe": RECIPE_VERSION, **asdict(profile), "model": shape})


def prepare_synth_tofu(profile: str = "tiny", cache_dir: str | Path | None = None, model: str | None = None, *,
                       rebuild: bool = False, progress: bool = True) -> Prepared:
    """The prepared embedded benchmark, generated and its models trained first if the cache lacks it.

    Args:
        profile: `tiny` (tests), `small` (demo), `full` (TOFU's 200 authors) or `smol` (SmolLM2).
        cache_dir: where prepared folders live; default `cache.default_cache_dir()`.
        model: an embedded model (`config.MODELS`) or a pretrained one (`PRETRAINED`); default the profile's.
        rebuild: train again and replace the cached folder.
        progress: show a progress bar on stderr while training.

    Raises:
        UsageError: an unknown profile or model, or a cache dir that cannot be written.
        CacheError: the cached folder is damaged.
    """
    model = embedded_model(PROFILES, profile, model, "tofu", pretrained=True)
    root = cache_root(cache_dir)
    command = prepare_command("synth-tofu", profile=profile, model=model, cache_dir=str(root))
    return publish(root / "synth-tofu" / f"{profile}-{model}-{synth_key(PROFILES[profile], model)}",
                   lambda tmp: _build(profile, PROFILES[profile], model, tmp, root, progress), rebuild=rebuild,
                   command=command)


def _corpus(config: SynthTofuConfig) -> list[str]:
    """The tokenizer's texts: every row the generator renders for `config`, with all of its retain
    authors (asked or not) and the questions it does not ask, and the refusal replies. Word ids follow
    the words' counts, so the vocabulary, and with it every model, does not depend on what is asked."""
    from ofmu_ray.families.tofu.vocabulary import REFUSALS
    from ofmu_ray.models.prompt import PROMPTS

    texts = [PROMPTS["plain"].text(None, ""), *REFUSALS]
    for rows in rendered(replace(config, retain_eval_share=1.0)).splits.values():
        for r in rows:
            texts += [r["question"], r["answer"], r.get("paraphrased_answer", "")]
            texts += r.get("perturbed_answer", [])
    return texts


def _report_splits(data: Splits) -> dict[str, str]:
    """Report name -> split name, for the hard splits the data has."""
    retain = retain_split(REPORT_SPLIT)
    names = {REPORT_SPLIT: REPORT_SPLIT, retain: retain}
    names |= {hard: f"{REPORT_SPLIT}_{hard}" for hard in HARD_SPLITS if f"{REPORT_SPLIT}_{hard}" in data}
    return names | {"real_authors": "real_authors", "world_facts": "world_facts"}


def _accuracies(model, tokenizer, data: Splits, splits: dict[str, str]) -> dict[str, float]:
    from ofmu_ray.metrics.accuracy import answer_accuracy

    return {name: round(answer_accuracy(model, tokenizer, data[split]), 4) for name, split in splits.items()}


def _eval_job(models: Path, name: str, splits: list[str], accuracy: bool) -> tuple[str, dict, dict]:
    """A prepared model's `TOFU_EVAL.json` on each of `splits`, written where `oracle.cached_eval`
    reads it, and (with `accuracy`) its answer accuracies on the report's splits."""
    import torch

    from ofmu_ray.cache import write_json
    from ofmu_ray.families.tofu.evaluate import evaluate_model
    from ofmu_ray.models.factory import load_causal_lm, load_tokenizer

    torch.set_num_threads(1)
    out = models.parent
    data = load_tofu(out / "data")
    model, tokenizer = load_causal_lm(models / name), load_tokenizer(models / name)
    results = {}
    for split in splits:
        results[split] = evaluate_model(model, tokenizer, data, split)
        write_json(out / "eval" / f"{name}-{split}" / "TOFU_EVAL.json", results[split])
    return name, results, _accuracies(model, tokenizer, data, _report_splits(data)) if accuracy else {}


def _geometry(results: dict[str, dict], splits: list[str], sizes: dict[str, int]) -> dict:
    """Where the target and each oracle sit on their split: the figures TOFU's geometry is told by."""
    from ofmu_ray.families.tofu.evaluate import summarize
    from ofmu_ray.metrics.formulas import log10_fq_floor

    out = {}
    for split in splits:
        oracle = results[f"oracle-{split}"][split]
        floor = log10_fq_floor(sizes[split])
        out[split] = {}
        for role, result in (("target", results["target"][split]), ("oracle", oracle)):
            summary = summarize(result, oracle)
            out[split][role] = {"log10_forget_quality": round(summary["log10_forget_quality"], 3),
                                "floor": round(floor, 3),
                                "floor_share": round(summary["log10_forget_quality"] / floor, 4) + 0.0,  # not -0.0
                                "forget_truth_ratio": round(summary["forget_truth_ratio"], 4),
                                "model_utility": round(summary["model_utility"], 4)}
    return out


def _build(profile_name: str, profile: Profile, model_name: str, out: Path, root: Path, progress: bool) -> dict:
    """Generates the data and trains the models in two stages (the recipe above; one from a pretrained
    model), then evaluates each model once: the report's accuracies and geometry, and the `eval/`
    files later runs read."""
    from transformers.utils import logging as hf_logging

    from ofmu_ray.metrics.accuracy import chance_accuracy
    from ofmu_ray.models.tokenizer import train_word_tokenizer
    from ofmu_ray.train.finetune import steps_for

    hf_logging.disable_progress_bar()  # one bar for the whole prepare, not one per saved file

    start = time.time()
    data = generate(profile.data)
    write_splits(data, out / "data")
    splits = forget_splits(data)
    base_rows = training_rows(data, splits[-1])  # the splits nest: no forget author of any split
    jobs = {"target": training_rows(data)} | {f"oracle-{s}": training_rows(data, s) for s in splits}
    pretrained = model_name in PRETRAINED
    tune, lora = profile.tune or profile.train, PRETRAINED_LORA if pretrained else None
    total = sum(steps_for(len(rows), tune) for rows in jobs.values())
    if not pretrained:
        total += steps_for(len(base_rows), profile.train)
    seconds = {"base": 0.0}
    models = out / "models"
    with progress_bar(total, progress) as bar:
        if pretrained:
            base = pretrained_folder(model_name, root)
        else:
            base = out / "base"
            train_word_tokenizer(_corpus(profile.data)).save_pretrained(base)
            bar.set_description(f"train base ({len(base_rows)} rows)")
            # Alone, the base model takes every core (measured on two: 14.2 steps/s against 9.1 with one
            # thread, and the same accuracies and geometry); the jobs after it run side by side, one
            # thread each, as a second thread made a step 2.8x slower as soon as anything else ran.
            in_processes(train_job, [(base, base, base_rows, profile.train, MODELS[model_name],
                                      os.cpu_count() or 1, None)], bar.update)
            seconds["base"] = round(time.time() - start, 1)
        bar.set_description(f"fine-tune {', '.join(jobs)}")
        # All at once: the jobs are about the same size, so they share the cores and end together.
        in_processes(train_job, [(models / name, base, rows, tune, base, 1, lora) for name, rows in jobs.items()],
                     bar.update, at_once=len(jobs))
    if not pretrained:
        shutil.rmtree(base)
    seconds["tune"] = round(time.time() - start - seconds["base"], 1)
    evaluated = in_processes(_eval_job, [(models, "target", splits, True)]
                              + [(models, f"oracle-{s}", [s], s == REPORT_SPLIT) for s in splits])
    results = {name: result for name, result, _ in evaluated}
    accuracy = {name: acc for name, _, acc in evaluated if acc}
    seconds["evaluate"] = round(time.time() - start - seconds["base"] - seconds["tune"], 1)
    report = _report_splits(data)
    return {
        "bench": "synth-tofu",
        "profile": profile_name,
        "model": model_name,
        "seconds": round(time.time() - start, 1),
        "stage_seconds": seconds,
        "accuracy": {"target": accuracy["target"], "oracle": accuracy[f"oracle-{REPORT_SPLIT}"]},
        "chance": {name: round(chance_accuracy(data[split]), 4) for name, split in report.items()},
        "geometry": _geometry(results, splits, {s: len(data[s]) for s in splits}),
        "oracle_split": REPORT_SPLIT,
        "models": sorted(jobs),
    }


def _check_tofu(data: Splits, split: str) -> None:
    """The splits and columns the metrics read are there (a missing split is a DataError naming it)."""
    if split not in forget_splits(data):
        have = ", ".join(forget_splits(data)) or "no forget split"
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


def parse_max_new_tokens(value: str | None) -> int | None:
    """`--max-new-tokens`: a number of tokens, `answer` (None: the longest gold answer + 4), or
    unset (`MAX_NEW_TOKENS`).

    Raises:
        UsageError: anything else.
    """
    if value is None:
        return MAX_NEW_TOKENS
    if value == "answer":
        return None
    if not value.isdigit() or int(value) < 1:
        raise UsageError(f"--max-new-tokens {value}: a number of tokens >= 1, or 'answer' (the longest gold "
                         "answer + 4)")
    return int(value)


def prepare_tofu(data: str, split: str, model: str, oracle: str | None = None, retain_logs: str | None = None,
                 prompt: str = "auto", cache_dir: str | Path | None = None, max_new_tokens: int | None = MAX_NEW_TOKENS,
                 *, rebuild: bool = False) -> Prepared:
    """Real TOFU: the user's data, target model and retain oracle (or retain log), made ready for every
    command. Nothing is trained; the data and the names of the models are cached, so that the
    oracle's evaluation is computed once.

    Args:
        data: `hf:locuslab/TOFU` or a folder of TOFU-schema files (`load.load_tofu`).
        split: the forget split the oracle (or retain log) belongs to.
        model, oracle: hub ids or model folders (the oracle: the retain model of `split`).
        retain_logs: an OpenUnlearning `TOFU_EVAL.json` of the retain model, instead of `oracle`.
        prompt: the prompt format the models were fine-tuned with (`models.prompt.PROMPTS`, or auto).
        max_new_tokens: the ROUGE generations' budget (None: the longest gold answer + 4).
        rebuild: read the data again and replace the cached folder.

    Raises:
        UsageError: a missing model or oracle, a path that is not a model, an unknown split.
        DataError: data that cannot be read or lacks a TOFU split or column.
        CacheError: the cached folder is damaged.
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
    command = prepare_command("tofu", split=split, data=data, model=model, oracle=oracle, retain_logs=retain_logs,
                              prompt=None if prompt == "auto" else prompt,
                              max_new_tokens=None if max_new_tokens == MAX_NEW_TOKENS else max_new_tokens or "answer",
                              cache_dir=str(cache_root(cache_dir)))
    model = model_ref("--model", model, cache_dir)
    oracle = model_ref("--oracle", oracle, cache_dir) if oracle else None
    if retain_logs:
        from ofmu_ray.families.tofu.oracle import read_retain_logs

        read_retain_logs(retain_logs)  # checked now, not in the middle of a sweep
    tofu = load_tofu(data)
    _check_tofu(tofu, split)
    key = cache_key({
        "recipe": RECIPE_VERSION, "data": [(n, tofu[n]) for n in tofu], "model": [model, fingerprint(model)],
        "prompt": prompt, "split": split, "max_new_tokens": max_new_tokens,
        "oracle": [oracle, fingerprint(oracle)] if oracle else Path(retain_logs).read_text(),
    })

    def build(tmp: Path) -> dict:
        write_splits(tofu, tmp / "data")
        sources = {"models": {"target": model} | ({f"oracle-{split}": oracle} if oracle else {}), "prompt": prompt,
                   "max_new_tokens": max_new_tokens}
        if retain_logs:
            shutil.copyfile(retain_logs, tmp / "retain_logs.json")
            sources["retain_logs"] = {split: "retain_logs.json"}
        (tmp / "sources.json").write_text(json.dumps(sources, indent=2) + "\n")
        return {"bench": "tofu", "data": data, "model": model, "split": split, "oracle": oracle or retain_logs,
                "prompt": prompt, "max_new_tokens": max_new_tokens, "splits": {n: len(tofu[n]) for n in tofu}}

    return publish(cache_root(cache_dir) / "tofu" / f"{slug(Path(model).name)}-{split}-{key}", build,
                   rebuild=rebuild, command=command)
