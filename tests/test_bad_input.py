"""Bad input, table-driven: each case exits with status 2 and one message naming the problem, and
leaves the MLflow store (with a finished run in it) and the prepared cache exactly as they were."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from ofmu_ray.cli import main


def _snapshot(*roots: Path) -> dict[str, str]:
    """Every file under `roots` with a hash of its bytes."""
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for root in roots if root.exists() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def world(tiny, cache_dir, mlflow_uri, tmp_path, monkeypatch):
    """A working folder with an MLflow store holding one finished run, and the tiny prepared benchmark."""
    monkeypatch.chdir(tmp_path)
    client = MlflowClient(mlflow_uri)
    run = client.create_run(client.create_experiment("kept"))
    client.log_metric(run.info.run_id, "model_utility", 0.5)
    client.set_terminated(run.info.run_id)
    (tmp_path / "bad.yaml").write_text("lr: {loguniform: [1.0e-5\n")
    (tmp_path / "wide.yaml").write_text("beta: {uniform: [-1.0, 2.0]}\n")
    (tmp_path / "not-a-model").mkdir()
    (tmp_path / "not-a-model" / "weights.txt").write_text("no config here")
    data = tmp_path / "TOFU"
    data.mkdir()
    rows = [{k: v for k, v in r.items() if k != "perturbed_answer"} for r in tiny.data()["forget10"]]
    (data / "forget10.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"uri": mlflow_uri, "cache": cache_dir, "tiny": tiny, "root": tmp_path}


CASES = [  # (case, arguments after the command, the message)
    ("bench", ["unlearn", "--bench", "muse", "--method", "npo"], "argument --bench: invalid choice: 'muse'"),
    ("split", ["unlearn", "--split", "forget07", "--method", "npo"], "unknown split 'forget07'"),
    ("method", ["unlearn", "--method", "dpo"], "argument --method: invalid choice: 'dpo'"),
    ("hyper-parameter", ["unlearn", "--method", "npo", "--set", "betta=0.2"],
     "NPOConfig has no field 'betta'; did you mean 'beta'?"),
    ("range", ["unlearn", "--method", "npo", "--set", "lr=2"], "NPOConfig.lr must be <= 1.0; got 2.0"),
    ("yaml", ["sweep", "--methods", "npo", "--space", "npo={root}/bad.yaml"], "bad.yaml: cannot read it as YAML"),
    ("yaml-range", ["sweep", "--methods", "ofmu", "--space", "ofmu={root}/wide.yaml"],
     "wide.yaml: beta: [-1.0, 2.0] leaves the field's range"),
    ("model", ["eval", "--evaluate", "{root}/not-a-model"],
     "not-a-model: not a model folder (no config.json or adapter_config.json)"),
    ("column", ["eval", "--bench", "tofu", "--data", "{root}/TOFU", "--model", "{target}", "--oracle", "{target}"],
     "split 'forget10' lacks TOFU's column(s): perturbed_answer"),
    ("store", ["unlearn", "--method", "npo", "--tracking-uri", "sqlite:///{root}/missing/mlruns.db"],
     "missing does not exist"),
    ("server", ["sweep", "--methods", "npo", "--tracking-uri", "http://127.0.0.1:9"],
     "--tracking-uri http://127.0.0.1:9: cannot open the MLflow store"),
    ("cluster", ["sweep", "--methods", "npo", "--address", "127.0.0.1:9"],
     "--address 127.0.0.1:9: no Ray cluster answers there"),
    ("retries", ["unlearn", "--method", "npo", "--max-failures", "-1"], "checkpoint-every and max-failures >= 0"),
    ("sweep-retries", ["sweep", "--methods", "npo", "--checkpoint-every", "-2"],
     "checkpoint-every and max-failures >= 0"),
    ("optuna-storage", ["sweep", "--methods", "npo", "--optuna-storage", "nosuchdb://x"],
     "--optuna-storage nosuchdb://x: cannot open it as an Optuna RDB storage"),
]


@pytest.mark.parametrize("case, argv, message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_exits_2_naming_the_problem_and_changes_nothing(world, case, argv, message, capsys):
    root = world["root"]
    fill = {"root": str(root), "target": world["tiny"].model_dir("target")}
    argv = [a.format(**fill) for a in argv]
    if argv[0] != "eval" and "--tracking-uri" not in argv:  # eval writes no MLflow run
        argv += ["--tracking-uri", world["uri"]]
    if argv[0] != "eval" or "--bench" not in argv:
        argv += ["--cache-dir", world["cache"]]
    else:
        argv += ["--cache-dir", str(root / "tofu-cache")]
    cache = Path(world["cache"])
    before = _snapshot(root, world["tiny"].root), sorted(p.name for p in cache.glob("*/*"))
    with pytest.raises(SystemExit) as exited:
        raise SystemExit(main(argv))
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
    assert (_snapshot(root, world["tiny"].root), sorted(p.name for p in cache.glob("*/*"))) == before
