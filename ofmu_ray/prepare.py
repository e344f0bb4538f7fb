"""`prepare`: generate a benchmark, train its target and retain-oracle models, and cache them.

The cache folder is keyed by a hash of everything that shapes the result (profile sizes, model
shape, training settings, and the source of the modules that generate data and train models), so
equal arguments return at once, different ones never overwrite each other, and a changed
generator never serves stale models. A folder is built under a temporary name and renamed when complete:
an interrupted prepare leaves nothing that a later call would mistake for a finished one.

Layout of `<cache-dir>/synth-tofu/<profile>-<model>-<key>/`:
    data/<split>.json        every split in TOFU's schema (JSON lines), plus the training mix
    models/target/           the model trained on everything (safetensors + tokenizer)
    models/oracle-forgetXX/  one retain oracle per forget split, trained without its authors
    report.json              accuracies of target and oracle, chance levels, seconds taken

Real TOFU trains nothing (`prepare_tofu.py`); its cache folders are `Prepared` too, so every
command serves both kinds the same way.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ofmu_ray.config import MODELS, PROFILES, Profile
from ofmu_ray.data import FAMILIES, TofuData, generate, load_tofu, training_rows, write_tofu_dir
from ofmu_ray.data.tofu import retain_split

BENCHES = tuple(FAMILIES)
REPORT_SPLIT = "forget10"  # the split whose hard splits and oracle the report shows (as TOFU's headline)


class UsageError(ValueError):
    """A bad argument: the CLI prints it and exits with status 2."""


def slug(model: str) -> str:
    """A model's name as one path segment (hub ids and folders have slashes): for folder and metric names."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in model.strip("/"))


def default_cache_dir() -> Path:
    """`$OFMU_RAY_CACHE`, else `~/.cache/ofmu-ray`."""
    return Path(os.environ.get("OFMU_RAY_CACHE") or Path.home() / ".cache" / "ofmu-ray")


def hash_files(files: list[Path]) -> str:
    """Hash of source files (read as bytes: no import), for cache keys that change with the code."""
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()


def _source_fingerprint() -> str:
    """Hash of the code that generates data and trains the models."""
    package = Path(__file__).parent
    files = [package / "data" / name for name in ("synth_tofu.py", "vocabulary.py", "tofu.py")]
    files += [package / "models" / name for name in ("factory.py", "prompt.py", "tokenizer.py")]
    files += [package / "train" / "finetune.py", Path(__file__)]  # not the image benchmarks' modules
    return hash_files(files)


def progress_bar(total: int, progress: bool):
    """The one bar a prepare shows on stderr (every 15 s when stderr is not a terminal)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="prepare", unit="step", disable=not progress, file=sys.stderr,
                mininterval=1 if sys.stderr.isatty() else 15)


def cache_key(bench: str, profile: Profile, model: str) -> str:
    blob = json.dumps({"bench": bench, "source": _source_fingerprint(), **asdict(profile),
                       "model": asdict(MODELS[model])}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Prepared:
    """A finished cache folder: where the data and each model are."""

    root: Path

    @property
    def report(self) -> dict:
        return json.loads((self.root / "report.json").read_text())

    @property
    def sources(self) -> dict:
        """Real TOFU: the user's models (`models`), prompt format and retain logs; {} when trained here."""
        path = self.root / "sources.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    @property
    def model(self) -> str:
        """The target's name: an embedded model, or the user's hub id or folder."""
        return self.report["model"]

    @property
    def prompt(self) -> str:
        return self.sources.get("prompt", "auto")

    def data(self) -> TofuData:
        return load_tofu(self.root / "data")

    def model_dir(self, name: str) -> str:
        """Where `target` or `oracle-<forget split>` loads from: a folder, or a hub id."""
        path = self.root / "models" / name
        if path.is_dir():
            return str(path)
        named = self.sources.get("models", {})
        if name in named:
            return named[name]
        have = sorted(p.name for p in (self.root / "models").iterdir()) if (self.root / "models").is_dir() else []
        raise UsageError(f"no model {name!r} for this benchmark; it has: {', '.join(have + sorted(named)) or 'none'}")

    def retain_logs(self, split: str) -> Path | None:
        """An OpenUnlearning retain log given for `split` instead of an oracle model."""
        name = self.sources.get("retain_logs", {}).get(split)
        return self.root / name if name else None


def _check_writable(cache_dir: Path) -> None:
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=cache_dir):
            pass
    except OSError as e:
        raise UsageError(f"cache dir {cache_dir} is not writable ({e.strerror}); "
                         "pass --cache-dir DIR or set OFMU_RAY_CACHE") from e


def _corpus(data: TofuData) -> list[str]:
    from ofmu_ray.models.prompt import PROMPTS

    texts = [PROMPTS["plain"].text(None, "")]
    for rows in data.splits.values():
        for r in rows:
            texts += [r["question"], r["answer"], r.get("paraphrased_answer", "")]
            texts += r.get("perturbed_answer", [])
    return texts


def _report_splits(data: TofuData) -> dict[str, str]:
    """Report name -> split name."""
    retain = retain_split(REPORT_SPLIT)
    names = {REPORT_SPLIT: REPORT_SPLIT, retain: retain}
    names |= {hard: f"{REPORT_SPLIT}_{hard}" for hard in ("paraphrase", "multihop", "crosslingual")}
    return names | {"real_authors": "real_authors", "world_facts": "world_facts"}


def _accuracies(model_dir: Path, data: TofuData, splits: dict[str, str]) -> dict[str, float]:
    from ofmu_ray.eval import answer_accuracy
    from ofmu_ray.models import load_causal_lm, load_tokenizer

    model, tok = load_causal_lm(model_dir), load_tokenizer(model_dir, "plain")
    return {name: round(answer_accuracy(model, tok, data[split]), 4) for name, split in splits.items()}


def _build(bench: str, profile_name: str, profile: Profile, model_name: str, out: Path, progress: bool) -> dict:
    from transformers.utils import logging as hf_logging

    from ofmu_ray.eval import chance_accuracy
    from ofmu_ray.models import build_tiny_llama, train_word_tokenizer
    from ofmu_ray.train import finetune, steps_for

    hf_logging.disable_progress_bar()  # one bar for the whole prepare, not one per saved file

    start = time.time()
    data = generate(profile.data)
    write_tofu_dir(data, out / "data")
    tokenizer = train_word_tokenizer(_corpus(data))
    jobs = {"target": training_rows(data)}
    jobs |= {f"oracle-{s}": training_rows(data, s) for s in data.forget_splits}
    total = sum(steps_for(len(rows), profile.train) for rows in jobs.values())
    with progress_bar(total, progress) as bar:
        for name, rows in jobs.items():
            bar.set_description(f"train {name} ({len(rows)} rows)")
            model = build_tiny_llama(MODELS[model_name], tokenizer, seed=profile.train.seed)

            def step(loss: float) -> None:
                bar.update()
                bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

            finetune(model, tokenizer, rows, profile.train, on_step=step)
            model.save_pretrained(out / "models" / name)
            tokenizer.save_pretrained(out / "models" / name)
    splits = _report_splits(data)
    return {
        "bench": bench,
        "profile": profile_name,
        "model": model_name,
        "seconds": round(time.time() - start, 1),
        "accuracy": {
            "target": _accuracies(out / "models" / "target", data, splits),
            "oracle": _accuracies(out / "models" / f"oracle-{REPORT_SPLIT}", data, splits),
        },
        "chance": {name: round(chance_accuracy(data[split]), 4) for name, split in splits.items()},
        "oracle_split": REPORT_SPLIT,
        "models": sorted(jobs),
    }


def publish(root: Path, build) -> Prepared:
    """Builds a cache folder under a temporary name (`build(tmp) -> report`) and renames it when
    complete, so an interrupted prepare leaves nothing a later call would take for finished."""
    if (root / "report.json").is_file():
        return Prepared(root)
    _check_writable(root.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        report = build(tmp) | {"cache_key": root.name}
        (tmp / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        try:
            tmp.rename(root)
        except OSError:  # another prepare finished the same folder first: keep theirs
            if not (root / "report.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Prepared(root)


def cache_root(cache_dir: str | Path | None) -> Path:
    return (Path(cache_dir) if cache_dir else default_cache_dir()).resolve()  # Ray workers run elsewhere


def embedded_model(profiles: dict[str, Profile], profile: str, model: str | None, own_bench: str) -> str:
    """The embedded model a generated benchmark's `profile` is prepared with: `model`, else the profile's.

    Raises:
        UsageError: an unknown profile, or a model that is not embedded (pointing to `own_bench`,
            where the user's own models go).
    """
    if profile not in profiles:
        raise UsageError(f"unknown profile {profile!r}; choose from: {', '.join(profiles)}")
    model = model or profiles[profile].model
    if model not in MODELS:
        raise UsageError(f"--model {model!r} is not an embedded model; choose from: {', '.join(MODELS)} "
                         f"(your own model: --bench {own_bench} --data DIR --model PATH)")
    return model


def prepare(bench: str = "synth-tofu", profile: str = "tiny", cache_dir: str | Path | None = None,
            progress: bool = True, model: str | None = None) -> Prepared:
    """Returns the prepared embedded benchmark, building and caching it first if needed.

    Args:
        bench: benchmark name (`synth-tofu`; real TOFU is `prepare_tofu`).
        profile: `tiny` (tests), `small` (demo) or `full` (TOFU's 200 authors).
        cache_dir: where prepared folders live; default `default_cache_dir()`.
        progress: show a progress bar on stderr while training.
        model: an embedded model (`config.MODELS`); default the profile's.

    Raises:
        UsageError: unknown bench, profile or model, or a cache dir that cannot be written.
    """
    if bench != "synth-tofu":
        raise UsageError(f"unknown bench {bench!r} to generate; choose synth-tofu (tofu: bring --data and --model)")
    model = embedded_model(PROFILES, profile, model, "tofu")
    root = cache_root(cache_dir) / bench / f"{profile}-{model}-{cache_key(bench, PROFILES[profile], model)}"
    return publish(root, lambda tmp: _build(bench, profile, PROFILES[profile], model, tmp, progress))
