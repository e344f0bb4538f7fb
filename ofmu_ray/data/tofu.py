"""TOFU-schema data: the split container, and reading/writing it from the hub or a folder.

A split is a list of rows with TOFU's fields (`question`, `answer`, `paraphrased_answer`,
`perturbed_answer`); generated rows carry a few more (`author`, `attribute`, `value`, ...).
Split names are TOFU's, without the `_perturbed` suffix: the eval configs of TOFU
(`forget10_perturbed`, `real_authors_perturbed`, ...) hold every field, so they are what a split
here is read from when both exist (`retain_perturbed` keeps its name: it is a split of its own).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

HUB_PREFIX = "hf:"
FILE_SUFFIXES = (".json", ".jsonl", ".parquet")
_FORGET = re.compile(r"^forget\d\d$")


class DataError(ValueError):
    """Data that cannot be read, or a split that is not there."""


class TofuData:
    """Named TOFU-schema splits, e.g. `data["forget10"]`."""

    def __init__(self, splits: dict[str, list[dict]]):
        self.splits = splits

    def __getitem__(self, name: str) -> list[dict]:
        if name not in self.splits:
            raise DataError(f"no split {name!r}; this data has: {', '.join(sorted(self.splits))}")
        return self.splits[name]

    def __contains__(self, name: str) -> bool:
        return name in self.splits

    def __iter__(self) -> Iterator[str]:
        return iter(self.splits)

    @property
    def forget_splits(self) -> list[str]:
        return sorted(n for n in self.splits if _FORGET.match(n))

    def forget_authors(self, split: str) -> set[str]:
        """Authors whose rows make up a forget split (needs the generator's `author` field)."""
        rows = self[split]
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


def write_tofu_dir(data: TofuData, directory: str | Path) -> Path:
    """Writes every split as `<split>.json` (JSON lines, like the files of the TOFU hub repo)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in data.splits.items():
        with open(out / f"{name}.json", "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return out


def read_rows(path: Path) -> list[dict]:
    """Rows of a JSON-lines, JSON-array or parquet file (read directly: no datasets cache)."""
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path).to_pylist()
        text = path.read_text(encoding="utf-8")
        if text.lstrip().startswith("["):
            return json.loads(text)
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except Exception as e:  # json, pyarrow and OS errors alike: the user needs the file name
        raise DataError(f"cannot read {path}: {e}") from e


def _load_dir(directory: Path) -> TofuData:
    if not directory.is_dir():
        raise DataError(f"--data {directory}: no such folder")
    files = {p.stem: p for p in sorted(directory.iterdir()) if p.suffix in FILE_SUFFIXES}
    if not files:
        raise DataError(f"--data {directory}: no .json, .jsonl or .parquet files in it")
    # When both exist, TOFU's `_perturbed` eval file wins: it has every field of the plain one.
    chosen = {}
    for stem in sorted(files, key=lambda n: n.endswith("_perturbed")):
        chosen[_canonical(stem)] = files[stem]
    return TofuData({split: read_rows(path) for split, path in sorted(chosen.items())})


HUB_CONFIGS = ("forget01", "forget05", "forget10", "retain99", "retain95", "retain90",
               "retain_perturbed", "real_authors", "world_facts", "holdout01", "holdout05",
               "holdout10")


def _load_hub(repo: str) -> TofuData:
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
    return TofuData(splits)


def load_tofu(source: str | Path) -> TofuData:
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
