"""The prepared-benchmark cache: one folder per benchmark, keyed by what made it, checked when used.

A family's `prepare` builds a folder with `publish`: under a temporary name, renamed when complete,
so an interrupted prepare leaves nothing a later call would mistake for a finished one. Its name
ends in a key (`cache_key`) of what makes the data and the models: the generator's config, the
model spec, the training config and the family's declared `RECIPE_VERSION`, never the bytes or
paths of source files, so moving or editing unrelated code retrains nothing.

`publish` also writes `manifest.json`: the size and sha256 of every file it wrote (data, models,
tokenizer, `report.json`, ...). Every later use checks the sizes (cheap: a truncated file is found
before a model is loaded from it); `Prepared.check(hashes=True)` (`ofmu-ray prepare --verify`) also
checks the hashes. Files added after publishing are not in the manifest: the evaluations cached
under `eval/` (the oracle's reference) are written atomically by `write_json` and recomputed when
deleted.

    >>> slug("open-unlearning/tofu_Llama-3.2-1B")
    'open-unlearning_tofu_Llama-3.2-1B'
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ofmu_ray.errors import CacheError, UsageError
from ofmu_ray.splits import Splits, read_splits

MANIFEST = "manifest.json"
HASH_CHUNK = 1 << 20  # bytes read at a time when hashing: model files can be GBs


def slug(model: str) -> str:
    """A model's name as one path segment (hub ids and folders have slashes): for folder and metric names."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in model.strip("/"))


def default_cache_dir() -> Path:
    """`$OFMU_RAY_CACHE`, else `~/.cache/ofmu-ray`."""
    return Path(os.environ.get("OFMU_RAY_CACHE") or Path.home() / ".cache" / "ofmu-ray")


def cache_root(cache_dir: str | Path | None) -> Path:
    """The cache folder, absolute: Ray workers run in other working directories."""
    return (Path(cache_dir) if cache_dir else default_cache_dir()).resolve()


def cache_key(parts: dict) -> str:
    """16 hex digits of a hash of `parts` (JSON values: configs as dicts, version numbers, names)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def fingerprint(ref: str) -> str:
    """What identifies the user's model in a cache key: a folder's file names, sizes and times, or a hub
    id as it is."""
    path = Path(ref)
    if not path.exists():
        return ref
    return json.dumps([(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(path.iterdir())])


def write_json(path: Path, content: dict) -> None:
    """Writes atomically: a reader never sees half a file, a crash never leaves one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        json.dump(content, f)
    os.replace(tmp, path)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(folder: Path) -> None:
    """`manifest.json`: the size and sha256 of every file under `folder` (itself excepted)."""
    files = {str(p.relative_to(folder)): {"size": p.stat().st_size, "sha256": _sha256(p)}
             for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}
    (folder / MANIFEST).write_text(json.dumps({"files": files}, indent=1) + "\n")


@dataclass(frozen=True)
class Prepared:
    """A finished cache folder: where the data and each model are.

    `rebuild` is the command that rebuilds the folder, for the message of a damaged one.
    """

    root: Path
    rebuild: str = ""

    @property
    def report(self) -> dict:
        return json.loads((self.root / "report.json").read_text())

    @property
    def bench(self) -> str:
        return self.report["bench"]

    @property
    def sources(self) -> dict:
        """The user's models (`models`), prompt format and retain logs; {} when everything was trained here."""
        path = self.root / "sources.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    @property
    def model(self) -> str:
        """The target's name: an embedded model, or the user's hub id or folder."""
        return self.report["model"]

    @property
    def prompt(self) -> str:
        return self.sources.get("prompt", "auto")

    def data(self) -> Splits:
        return read_splits(self.root / "data")

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

    def check(self, hashes: bool = False) -> int:
        """Checks every file `manifest.json` lists: its size, and with `hashes` its sha256.

        Returns:
            How many files were checked.

        Raises:
            CacheError: naming the first file that is missing, truncated or altered, and the command
                that rebuilds the folder.
        """
        fix = f"; rebuild it: {self.rebuild or 'ofmu-ray prepare ... --rebuild'}"
        manifest = self.root / MANIFEST
        if not manifest.is_file():
            raise CacheError(f"{self.root}: no {MANIFEST}, so its files cannot be checked (prepared by an older "
                             f"ofmu-ray, or damaged){fix}")
        try:
            files = json.loads(manifest.read_text())["files"]
        except (ValueError, KeyError) as e:
            raise CacheError(f"{manifest}: unreadable ({e}){fix}") from e
        for name, expected in files.items():
            path = self.root / name
            if not path.is_file():
                raise CacheError(f"{path}: missing from the prepared benchmark{fix}")
            if path.stat().st_size != expected["size"]:
                raise CacheError(f"{path}: {path.stat().st_size} bytes where {MANIFEST} says {expected['size']} "
                                 f"(truncated or altered){fix}")
            if hashes and _sha256(path) != expected["sha256"]:
                raise CacheError(f"{path}: its sha256 is not the one {MANIFEST} holds (altered){fix}")
        return len(files)


def _check_writable(cache_dir: Path) -> None:
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=cache_dir):
            pass
    except OSError as e:
        raise UsageError(f"cache dir {cache_dir} is not writable ({e.strerror}); "
                         "pass --cache-dir DIR or set OFMU_RAY_CACHE") from e


def publish(root: Path, build: Callable[[Path], dict], *, rebuild: bool = False, command: str = "") -> Prepared:
    """The prepared folder `root`: checked (sizes) if it exists, else built.

    `build(tmp)` writes the folder's files under a temporary name and returns its report; `publish`
    adds `report.json` and `manifest.json` and renames the folder into place when complete.

    Args:
        rebuild: build it again even if it exists; the new folder replaces the old one only once it
            is complete (two renames, in immediate succession).
        command: the prepare command that rebuilds `root` (named by a damaged folder's error).

    Raises:
        CacheError: the existing folder's files are not those of its manifest.
        UsageError: the cache folder cannot be written.
    """
    if root.is_dir() and not rebuild:
        prepared = Prepared(root, command)
        prepared.check()
        return prepared
    _check_writable(root.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        report = build(tmp) | {"cache_key": root.name}
        (tmp / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        write_manifest(tmp)
        if rebuild and root.is_dir():  # move the old folder aside, the new one in, then delete the old
            old = Path(tempfile.mkdtemp(prefix=f".{root.name}.replaced.", dir=root.parent))
            root.rename(old / root.name)
            tmp.rename(root)
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                tmp.rename(root)
            except OSError:  # another prepare finished the same folder first: keep theirs
                if not root.is_dir():
                    raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Prepared(root, command)
