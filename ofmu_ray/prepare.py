"""`prepare`: generate a benchmark, train its target and retain-oracle models, and cache them.

The cache folder is keyed by a hash of everything that shapes the result (profile sizes, model
shape, training settings, and the source of the modules that generate data and train models), so
equal arguments return at once, different ones never overwrite each other, and a changed
generator never serves stale models. A folder is built under a temporary name and renamed when complete:
an interrupted prepare leaves nothing that a later call would mistake for a finished one.

Layout of `<cache-dir>/<bench>/<profile>-<key>/`:
    data/<split>.json        every split in TOFU's schema (JSON lines), plus the training mix
    models/target/           the model trained on everything (safetensors + tokenizer)
    models/oracle-forgetXX/  one retain oracle per forget split, trained without its authors
    report.json              accuracies of target and oracle, chance levels, seconds taken
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

from ofmu_ray.config import PROFILES, Profile
from ofmu_ray.data import TofuData, generate, load_tofu, training_rows, write_tofu_dir
from ofmu_ray.data.tofu import retain_split

BENCHES = ("synth-tofu",)
REPORT_SPLIT = "forget10"  # the split whose hard splits and oracle the report shows (as TOFU's headline)


class UsageError(ValueError):
    """A bad argument: the CLI prints it and exits with status 2."""


def default_cache_dir() -> Path:
    """`$OFMU_RAY_CACHE`, else `~/.cache/ofmu-ray`."""
    return Path(os.environ.get("OFMU_RAY_CACHE") or Path.home() / ".cache" / "ofmu-ray")


def _source_fingerprint() -> str:
    """Hash of the code that generates data and trains the models (read as files: no torch import)."""
    package = Path(__file__).parent
    files = [*sorted((package / "data").glob("*.py")), *sorted((package / "models").glob("*.py")),
             package / "train" / "finetune.py"]
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()


def cache_key(bench: str, profile: Profile) -> str:
    blob = json.dumps({"bench": bench, "source": _source_fingerprint(), **asdict(profile)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Prepared:
    """A finished cache folder: where the data and each model are."""

    root: Path

    @property
    def report(self) -> dict:
        return json.loads((self.root / "report.json").read_text())

    def data(self) -> TofuData:
        return load_tofu(self.root / "data")

    def model_dir(self, name: str) -> Path:
        """`target` or `oracle-<forget split>`."""
        path = self.root / "models" / name
        if not path.is_dir():
            have = sorted(p.name for p in (self.root / "models").iterdir())
            raise UsageError(f"no prepared model {name!r}; this cache has: {', '.join(have)}")
        return path


def _check_writable(cache_dir: Path) -> None:
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=cache_dir):
            pass
    except OSError as e:
        raise UsageError(f"cache dir {cache_dir} is not writable ({e.strerror}); "
                         "pass --cache-dir DIR or set OFMU_RAY_CACHE") from e


def _corpus(data: TofuData) -> list[str]:
    from ofmu_ray.models import format_prompt

    texts = [format_prompt("")]
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

    model, tok = load_causal_lm(model_dir), load_tokenizer(model_dir)
    return {name: round(answer_accuracy(model, tok, data[split]), 4) for name, split in splits.items()}


def _build(bench: str, profile_name: str, profile: Profile, out: Path, progress: bool) -> dict:
    from tqdm.auto import tqdm
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
    with tqdm(total=total, desc="prepare", unit="step", disable=not progress, file=sys.stderr,
              mininterval=1 if sys.stderr.isatty() else 15) as bar:
        for name, rows in jobs.items():
            bar.set_description(f"train {name} ({len(rows)} rows)")
            model = build_tiny_llama(profile.model, tokenizer, seed=profile.train.seed)

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
        "seconds": round(time.time() - start, 1),
        "accuracy": {
            "target": _accuracies(out / "models" / "target", data, splits),
            "oracle": _accuracies(out / "models" / f"oracle-{REPORT_SPLIT}", data, splits),
        },
        "chance": {name: round(chance_accuracy(data[split]), 4) for name, split in splits.items()},
        "oracle_split": REPORT_SPLIT,
        "models": sorted(jobs),
    }


def prepare(bench: str = "synth-tofu", profile: str = "tiny", cache_dir: str | Path | None = None,
            progress: bool = True) -> Prepared:
    """Returns the prepared benchmark, building and caching it first if needed.

    Args:
        bench: benchmark name (`synth-tofu`).
        profile: `tiny` (tests), `small` (demo) or `full` (TOFU's 200 authors).
        cache_dir: where prepared folders live; default `default_cache_dir()`.
        progress: show a progress bar on stderr while training.

    Raises:
        UsageError: unknown bench or profile, or a cache dir that cannot be written.
    """
    if bench not in BENCHES:
        raise UsageError(f"unknown bench {bench!r}; choose from: {', '.join(BENCHES)}")
    if profile not in PROFILES:
        raise UsageError(f"unknown profile {profile!r}; choose from: {', '.join(PROFILES)}")
    cache_dir = (Path(cache_dir) if cache_dir else default_cache_dir()).resolve()  # Ray workers run elsewhere
    root = cache_dir / bench / f"{profile}-{cache_key(bench, PROFILES[profile])}"
    if (root / "report.json").is_file():
        return Prepared(root)
    _check_writable(cache_dir)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        report = _build(bench, profile, PROFILES[profile], tmp, progress)
        report["cache_key"] = root.name
        (tmp / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        try:
            tmp.rename(root)
        except OSError:  # another prepare finished the same folder first: keep theirs
            if not (root / "report.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Prepared(root)
