"""TOFU-schema data from the hub or a folder, and the names TOFU gives its splits.

A split is a list of rows with TOFU's fields (`question`, `answer`, `paraphrased_answer`,
`perturbed_answer`); generated rows carry a few more (`author`, `attribute`, `value`, ...).
Split names are TOFU's, without the `_perturbed` suffix: the eval configs of TOFU
(`forget10_perturbed`, `real_authors_perturbed`, ...) hold every field, so they are what a split
here is read from when both exist (`retain_perturbed` keeps its name: it is a split of its own).
"""

from __future__ import annotations

import re
from pathlib import Path

from ofmu_ray.errors import DataError
from ofmu_ray.splits import FILE_SUFFIXES, HUB_PREFIX, Splits, read_rows

_FORGET = re.compile(r"^forget\d\d$")


def forget_splits(data: Splits) -> list[str]:
    """The forget splits the data has (`forget01`, `forget05`, `forget10`), sorted."""
    return sorted(n for n in data if _FORGET.match(n))


def forget_authors(data: Splits, split: str) -> set[str]:
    """Authors whose rows make up a forget split (needs the generator's `author` field)."""
    rows = data[split]
    if not rows or "author" not in rows[0]:
        raise DataError(f"split {split!r} does not name its authors (no 'author' field)")
    return {r["author"] for r in rows}


def retain_split(forget_split: str) -> str:
    """The retain split paired with a forget split, as TOFU pairs them (forget10 -> retain90)."""
    if not _FORGET.match(forget_split):
        raise DataError(f"{forget_split!r} is not a forget split (forget01, forget05, forget10)")
    return f"retain{100 - int(forget_split.removeprefix('forget'))}"


def _canonical(stem: str) -> str:
    """The split a TOFU file/config name holds (`forget10_perturbed` -> `forget10`)."""
    return stem if stem == "retain_perturbed" else stem.removesuffix("_perturbed")


def _load_dir(directory: Path) -> Splits:
    if not directory.is_dir():
        raise DataError(f"--data {directory}: no such folder")
    files = {p.stem: p for p in sorted(directory.iterdir()) if p.suffix in FILE_SUFFIXES}
    if not files:
        raise DataError(f"--data {directory}: no .json, .jsonl or .parquet files in it")
    # When both exist, TOFU's `_perturbed` eval file wins: it has every field of the plain one.
    chosen = {}
    for stem in sorted(files, key=lambda n: n.endswith("_perturbed")):
        chosen[_canonical(stem)] = files[stem]
    return Splits({split: read_rows(path) for split, path in sorted(chosen.items())})


HUB_CONFIGS = ("forget01", "forget05", "forget10", "retain99", "retain95", "retain90",
               "retain_perturbed", "real_authors", "world_facts", "holdout01", "holdout05",
               "holdout10")


def _load_hub(repo: str) -> Splits:
    import datasets

    splits = {}
    for split in HUB_CONFIGS:
        config = split if split.startswith(("retain", "holdout")) else f"{split}_perturbed"
        try:
            splits[split] = datasets.load_dataset(repo, config, split="train").to_list()
        except Exception as e:  # offline, unknown repo or config: one line, and what to do instead
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DataError(
                f"cannot load {config!r} of {repo!r} from the Hugging Face hub ({first}); "
                "without network use the embedded benchmark (--bench synth-tofu) or a local "
                "folder of TOFU-schema files (--data DIR)"
            ) from e
    return Splits(splits)


def load_tofu(source: str | Path) -> Splits:
    """Reads TOFU-schema splits from the hub (`hf:locuslab/TOFU`) or a local folder.

    Args:
        source: `hf:<repo>` for `datasets.load_dataset`, or a folder of `<split>.json|jsonl|parquet`
            files (TOFU's config names, `_perturbed` variants preferred).

    Returns:
        The splits, named as `generate` names them (`forget10`, `real_authors`, ...).

    Raises:
        DataError: the folder or the hub cannot be read; the message says what to do instead.
    """
    text = str(source)
    if text.startswith(HUB_PREFIX):
        return _load_hub(text.removeprefix(HUB_PREFIX))
    return _load_dir(Path(text))
