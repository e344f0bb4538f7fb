"""Named splits of rows, and the JSON-lines files they are kept in (a prepared benchmark's `data/`).

A split is a list of dict rows: TOFU-schema questions, WMDP-schema questions, or `{"text"}` corpus
rows alike. Every family keeps its data in this one container and this one file format.

    >>> data = Splits({"forget10": [{"question": "Who?", "answer": "Ana."}]})
    >>> len(data["forget10"]), "retain90" in data
    (1, False)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from ofmu_ray.errors import DataError

HUB_PREFIX = "hf:"  # `--data hf:<repo>` reads from the Hugging Face hub
FILE_SUFFIXES = (".json", ".jsonl", ".parquet")  # what a user's data folder may hold


class Splits:
    """Named splits, e.g. `data["forget10"]`; a missing name is a DataError listing the ones there are."""

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


def write_splits(data: Splits, directory: str | Path) -> Path:
    """Writes every split as `<split>.json` (JSON lines, like the files of the TOFU hub repo)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in data.splits.items():
        with open(out / f"{name}.json", "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return out


def read_rows(path: Path) -> list[dict]:
    """Rows of a JSON-lines, JSON-array or parquet file (read directly: no datasets cache).

    Raises:
        DataError: naming the file that cannot be read.
    """
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


def read_splits(directory: str | Path) -> Splits:
    """What `write_splits` wrote: every `<split>.json` of the folder, by name."""
    files = sorted(Path(directory).glob("*.json"), key=lambda p: p.stem)
    return Splits({path.stem: read_rows(path) for path in files})
