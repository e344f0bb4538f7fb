"""WMDP-style data: four-choice questions in WMDP's schema and the unlearning corpora, from the hub or a folder.

A question row is `{"question": str, "choices": [4 str], "answer": 0..3}` (the schema of `cais/wmdp`
and `cais/mmlu`); a corpus row is `{"text": str}` (`cais/wmdp-corpora`). A prepared WMDP-style
benchmark has four splits: `forget` (questions on the topic to remove: `forget_acc`), `utility`
(general questions, MMLU: `utility_acc`), and the corpora the methods unlearn from and retain with,
`forget_corpus` and `retain_corpus`.

From a folder (`--data DIR`), for a topic such as `bio`:
    wmdp-bio.{json,jsonl,parquet}                     the questions
    mmlu.*                                            the utility questions
    bio-forget-corpus.*                               the forget corpus
    bio-retain-corpus.* (or wikitext.*, as RMU)       the retain corpus
From the hub (`--data hf:cais/wmdp`): the questions from that repository (config `wmdp-bio`, split
`test`), the corpora from `cais/wmdp-corpora` and the utility questions from `cais/mmlu` (`all`,
`test`). The bio forget corpus is gated on the hub: request it, then pass a folder.
"""

from __future__ import annotations

from pathlib import Path

from ofmu_ray.errors import DataError
from ofmu_ray.splits import FILE_SUFFIXES, HUB_PREFIX, Splits, read_rows

TOPICS = ("bio", "cyber", "chem")
SPLITS = ("forget", "utility", "forget_corpus", "retain_corpus")


def check_questions(rows: list[dict], where: str) -> list[dict]:
    """The rows, if every one has a question, four choices and an answer index in 0..3.

    Raises:
        DataError: naming `where` and the first bad row.
    """
    if not rows:
        raise DataError(f"{where}: no questions")
    for i, row in enumerate(rows):
        choices, answer = row.get("choices"), row.get("answer")
        if not isinstance(row.get("question"), str):
            raise DataError(f"{where}, row {i}: no 'question' text (WMDP schema: question, choices, answer)")
        if not isinstance(choices, list | tuple) or len(choices) != 4 or not all(isinstance(c, str) for c in choices):
            raise DataError(f"{where}, row {i}: 'choices' must be four strings, got {choices!r}")
        if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < 4:
            raise DataError(f"{where}, row {i}: 'answer' must be an index 0..3, got {answer!r}")
    return [{"question": r["question"], "choices": list(r["choices"]), "answer": r["answer"]} for r in rows]


def check_corpus(rows: list[dict], where: str) -> list[dict]:
    """The corpus as `{"text"}` rows, empty texts dropped (WikiText has many blank lines).

    Raises:
        DataError: no `text` field, or nothing left.
    """
    if rows and "text" not in rows[0]:
        raise DataError(f"{where}: corpus rows need a 'text' field; got {', '.join(rows[0]) or 'none'}")
    kept = [{"text": r["text"]} for r in rows if isinstance(r.get("text"), str) and r["text"].strip()]
    if not kept:
        raise DataError(f"{where}: no text")
    return kept


def _file(directory: Path, *stems: str) -> Path:
    for stem in stems:
        for suffix in FILE_SUFFIXES:
            if (directory / f"{stem}{suffix}").is_file():
                return directory / f"{stem}{suffix}"
    raise DataError(f"--data {directory}: no {' or '.join(stems)} file (.json, .jsonl or .parquet)")


def _load_dir(directory: Path, topic: str) -> Splits:
    if not directory.is_dir():
        raise DataError(f"--data {directory}: no such folder")
    files = {"forget": _file(directory, f"wmdp-{topic}"), "utility": _file(directory, "mmlu"),
             "forget_corpus": _file(directory, f"{topic}-forget-corpus"),
             "retain_corpus": _file(directory, f"{topic}-retain-corpus", "wikitext")}
    return _checked({name: (read_rows(path), str(path)) for name, path in files.items()})


def _load_hub(repo: str, topic: str) -> Splits:
    import datasets

    wanted = {"forget": (repo, f"wmdp-{topic}", "test"), "utility": ("cais/mmlu", "all", "test"),
              "forget_corpus": ("cais/wmdp-corpora", f"{topic}-forget-corpus", "train"),
              "retain_corpus": ("cais/wmdp-corpora", f"{topic}-retain-corpus", "train")}
    found = {}
    for name, (where, config, split) in wanted.items():
        try:
            found[name] = (datasets.load_dataset(where, config, split=split).to_list(), f"{where}/{config}")
        except Exception as e:  # offline, gated or unknown: one line, and what to do instead
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DataError(f"cannot load {config!r} of {where!r} from the Hugging Face hub ({first}); pass a "
                            "folder of WMDP-schema files instead (--data DIR, see docs/benchmarks/wmdp.md)") from e
    return _checked(found)


def _checked(found: dict[str, tuple[list[dict], str]]) -> Splits:
    return Splits({name: (check_questions if name in ("forget", "utility") else check_corpus)(rows, where)
                     for name, (rows, where) in found.items()})


def load_wmdp(source: str | Path, topic: str) -> Splits:
    """The four splits of a WMDP topic (`SPLITS`), from the hub (`hf:cais/wmdp`) or a folder.

    Raises:
        DataError: an unknown topic, a missing file, or rows outside the schema (naming the file).
    """
    if topic not in TOPICS:
        raise DataError(f"unknown WMDP topic {topic!r}; choose from {', '.join(TOPICS)}")
    text = str(source)
    if text.startswith(HUB_PREFIX):
        return _load_hub(text.removeprefix(HUB_PREFIX), topic)
    return _load_dir(Path(text).expanduser(), topic)
