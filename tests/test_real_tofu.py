"""Real TOFU from local files: the user's data folder, target model and retain oracle, prepare-free.

The folder set is made the way a user would have it: TOFU-named files holding TOFU's columns only
(some JSON lines, one parquet), and two model folders, here the tiny synth-tofu target and its
forget10 oracle. Every number must then equal the synth-tofu path on the same models.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mlflow.tracking import MlflowClient

from ofmu_ray.cli import main

TOFU_COLUMNS = ("question", "answer", "paraphrased_answer", "perturbed_answer")
FILES = {"forget10": "forget10_perturbed.json", "retain90": "retain90.parquet", "holdout10": "holdout10.json",
         "retain_perturbed": "retain_perturbed.json", "real_authors": "real_authors_perturbed.jsonl",
         "world_facts": "world_facts_perturbed.json"}
HARD = ("paraphrase", "multihop", "crosslingual")


@dataclass
class TofuSet:
    data: Path
    model: Path
    oracle: Path
    cache: Path

    def args(self, *, oracle: bool = True, budget: str | None = "answer") -> list[str]:
        """The command line's benchmark options; `budget` the ROUGE generations' (`answer`, as synth-tofu's,
        so that numbers can equal its; None: OpenUnlearning's 200 tokens, the default)."""
        return ["--bench", "tofu", "--data", str(self.data), "--model", str(self.model), "--cache-dir", str(self.cache),
                *(["--oracle", str(self.oracle)] if oracle else []),
                *(["--max-new-tokens", budget] if budget else [])]


def _export(rows: list[dict], path: Path, columns=TOFU_COLUMNS) -> None:
    rows = [{c: r[c] for c in columns if c in r} for r in rows]
    if path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture(scope="module")
def tofu_set(tiny, tmp_path_factory) -> TofuSet:
    root = tmp_path_factory.mktemp("tofu")
    data, splits = root / "TOFU", tiny.data()
    data.mkdir()
    names = FILES | {f"forget10_{h}": f"forget10_{h}.json" for h in HARD}
    names |= {f"retain_perturbed_{h}": f"retain_perturbed_{h}.json" for h in HARD}
    for split, file in names.items():
        _export(splits[split], data / file)
    model, oracle = root / "tofu_ft_tiny", root / "tofu_tiny_retain90"
    shutil.copytree(tiny.model_dir("target"), model)
    shutil.copytree(tiny.model_dir("oracle-forget10"), oracle)
    return TofuSet(data, model, oracle, root / "cache")


def _same(mine: dict, theirs: dict) -> bool:
    """Equal keys and values; floats to 1e-9, as the two paths evaluate in processes with different
    torch thread counts (the prepare's cached evaluations run one thread each). Absolute as well as
    relative: `mu_degradation` is a difference of two utilities, so their last digits are its first
    (measured on one machine: 0.0058733262 against 0.0058733256)."""
    return mine.keys() == theirs.keys() and all(
        mine[k] == (pytest.approx(v, rel=1e-9, abs=1e-9) if isinstance(v, float) else v) for k, v in theirs.items())


def _json_of(argv: list[str], capsys) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_eval_equals_the_synth_tofu_path_with_the_oracle_or_its_retain_log(tiny, cache_dir, tofu_set, capsys):
    synth = _json_of(["eval", "--profile", "tiny", "--cache-dir", cache_dir, "--json"], capsys)
    real = _json_of(["eval", *tofu_set.args(), "--json"], capsys)
    assert _same(real, synth) and "forget_quality/multihop" in real
    logs = tiny.root / "eval" / "oracle-forget10-forget10" / "TOFU_EVAL.json"
    assert _same(_json_of(["eval", *tofu_set.args(oracle=False), "--retain-logs", str(logs), "--json"], capsys), synth)


def test_unlearn_equals_the_synth_tofu_path(tiny, cache_dir, tofu_set, mlflow_uri, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = ["unlearn", "--method", "graddiff", "--steps", "3", "--batch-size", "4", "--json",
           "--tracking-uri", mlflow_uri]
    synth = _json_of([*run, "--profile", "tiny", "--cache-dir", cache_dir], capsys)
    real = _json_of([*run, *tofu_set.args()], capsys)
    for key in ("mlflow_run_id", "model_dir", "unlearn_seconds", "load_seconds", "eval_seconds"):
        synth.pop(key), real.pop(key)
    assert _same(real, synth)
    client = MlflowClient(mlflow_uri)
    (logged,) = client.search_runs([client.get_experiment_by_name("tofu/forget10").experiment_id])
    assert logged.data.tags["model"] == str(tofu_set.model) and logged.data.tags["bench"] == "tofu"


def test_sweep_runs_on_the_users_models_end_to_end(ray_session, tofu_set, mlflow_uri, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = mlflow_uri
    printed = _json_of(["sweep", *tofu_set.args(budget=None), "--methods", "gradascent", "--trials", "2",
                        "--steps", "2", "--batch-size", "4", "--tracking-uri", uri, "--json"], capsys)
    assert list(printed["models"]) == [str(tofu_set.model)]
    assert printed["models"][str(tofu_set.model)]["fronts"][""]["methods"]["gradascent"]["trials"] == 2
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("tofu/forget10").experiment_id
    trials = client.search_runs([experiment], "tags.`ofmu.kind` = 'trial'")
    assert len(trials) == 2 and all(t.data.tags["model"] == str(tofu_set.model) for t in trials)
    assert all("log10_forget_quality/multihop" in t.data.metrics for t in trials)


def test_rouge_generates_openunlearnings_200_tokens_unless_told_otherwise(tofu_set, capsys):
    """`--bench tofu` generates up to 200 new tokens for ROUGE, as OpenUnlearning does; `answer` gives
    the longest gold answer + 4 (synth-tofu's), a number cuts the generations there."""
    assert _json_of(["prepare", *tofu_set.args(budget=None), "--json"], capsys)["max_new_tokens"] == 200
    answer = _json_of(["eval", *tofu_set.args(), "--json"], capsys)
    cut = _json_of(["eval", *tofu_set.args(budget="2"), "--json"], capsys)
    assert cut["forget_rouge"] < answer["forget_rouge"] - 0.3  # two tokens hold a name, not a sentence
    assert main(["eval", *tofu_set.args(budget="0")]) == 2
    assert "--max-new-tokens 0: a number of tokens >= 1, or 'answer'" in capsys.readouterr().err
    assert main(["eval", "--profile", "tiny", "--max-new-tokens", "200"]) == 2
    assert "--max-new-tokens: for --bench tofu, not synth-tofu" in capsys.readouterr().err


def _broken_set(tofu_set: TofuSet, tmp_path: Path, case: str) -> list[str]:
    args = tofu_set.args()
    if case == "column":
        data = tmp_path / "data"
        shutil.copytree(tofu_set.data, data)
        rows = [json.loads(line) for line in (data / FILES["forget10"]).read_text().splitlines()]
        _export(rows, data / FILES["forget10"], TOFU_COLUMNS[:3])
        args[args.index("--data") + 1] = str(data)
    elif case == "model":
        (tmp_path / "empty").mkdir()
        args[args.index("--model") + 1] = str(tmp_path / "empty")
    elif case == "hub":
        args[args.index("--oracle") + 1] = "open-unlearning/no-such-model"
    elif case == "oracle":
        args = tofu_set.args(oracle=False)
    elif case == "split":
        args += ["--split", "forget05"]
    return [*args[:args.index("--cache-dir")], "--cache-dir", str(tmp_path / "cache"),
            *args[args.index("--cache-dir") + 2:]]


@pytest.mark.parametrize("case, message", [
    ("column", "split 'forget10' lacks TOFU's column(s): perturbed_answer"),
    ("model", "not a model folder (no config.json"),
    ("hub", "--oracle open-unlearning/no-such-model: cannot load it from the hub or its cache"),
    ("oracle", "needs exactly one of --oracle"),
    ("split", "unknown split 'forget05'; this data has: forget10"),
])
def test_bad_tofu_input_exits_2_naming_the_problem_and_writes_nothing(tofu_set, tmp_path, case, message, capsys,
                                                                      monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # fail at once, not after retries
    assert main(["eval", *_broken_set(tofu_set, tmp_path, case)]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()
