"""The prepared-benchmark cache: every use checks the files against the manifest `publish` wrote, a
damaged file is one line naming it and the command that rebuilds it (exit 2, nothing written),
`prepare --verify` checks the hashes, `prepare --rebuild` replaces the folder; and the cache keys
do not change when code is edited or moved."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ofmu_ray.cache import write_json
from ofmu_ray.cli import main
from ofmu_ray.families.tofu.prepare import PROFILES, prepare_synth_tofu, synth_key

REPO = Path(__file__).resolve().parents[1]
DAMAGED = {  # each kind of file a prepared benchmark holds -> one such file of synth-tofu's
    "model weights": "models/target/model.safetensors",
    "tokenizer": "models/target/tokenizer.json",
    "data split": "data/forget10.json",
    "report": "report.json",
}


@pytest.fixture
def cache_copy(tiny, tmp_path) -> Path:
    """A cache holding a copy of the prepared tiny benchmark, to damage."""
    cache = tmp_path / "cache"
    shutil.copytree(tiny.root, cache / "synth-tofu" / tiny.root.name)
    return cache


@pytest.mark.parametrize("kind", DAMAGED)
def test_a_truncated_file_stops_the_run_before_anything_is_written(kind, tiny, cache_copy, mlflow_uri, tmp_path,
                                                                    capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = cache_copy / "synth-tofu" / tiny.root.name / DAMAGED[kind]
    path.write_bytes(path.read_bytes()[:-7])
    argv = ["unlearn", "--method", "npo", "--steps", "2", "--cache-dir", str(cache_copy), "--tracking-uri", mlflow_uri,
            "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"ofmu-ray unlearn: error: {path}: ")
    assert "(truncated or altered); rebuild it: ofmu-ray prepare --bench synth-tofu --profile tiny --model " \
           f"tiny-llama-4l --cache-dir {cache_copy} --rebuild" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]  # no MLflow store, no run folder


@pytest.mark.parametrize("command", ["eval", "sweep"])
def test_eval_and_sweep_stop_at_a_damaged_file_too(command, tiny, cache_copy, mlflow_uri, tmp_path, capsys,
                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = cache_copy / "synth-tofu" / tiny.root.name / DAMAGED["model weights"]
    path.write_bytes(b"")
    store = [] if command == "eval" else ["--tracking-uri", mlflow_uri]  # eval writes no MLflow run
    assert main([command, "--cache-dir", str(cache_copy), *store]) == 2
    assert f"{path}: 0 bytes where manifest.json says" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]  # no store, no sweeps/ or evals/ folder


def test_verify_finds_an_altered_file_and_rebuild_replaces_the_folder(micro, tmp_path, capsys):
    """A file of the right size but other bytes passes the size check of every use; `--verify` finds it,
    and the command its error names builds the folder again."""
    args = ["prepare", "--profile", micro, "--cache-dir", str(tmp_path)]
    assert main([*args, "--json"]) == 0
    root = prepare_synth_tofu(micro, tmp_path).root
    manifest = json.loads((root / "manifest.json").read_text())["files"]
    assert {"report.json", "data/forget10.json", "models/target/model.safetensors",
            "eval/oracle-forget10-forget10/TOFU_EVAL.json"} <= set(manifest)  # prepare evaluates each model once
    # what is cached later under eval/ (here a bf16 evaluation) is not in the manifest, and checks pass
    write_json(root / "eval" / "target-forget10-bf16" / "TOFU_EVAL.json", {"cached": "later"})
    assert main([*args, "--verify"]) == 0
    capsys.readouterr()
    split = root / "data" / "forget10.json"
    text = split.read_text()
    split.write_text(text.replace("a", "e", 1))  # same size, other bytes
    assert main(args) == 0  # sizes match: every use goes on
    assert main([*args, "--verify"]) == 2
    err = capsys.readouterr().err
    assert f"{split}: its sha256 is not the one manifest.json holds (altered); rebuild it: " in err
    rebuild = err.split("rebuild it: ")[1].split()
    assert rebuild[:2] == ["ofmu-ray", "prepare"] and rebuild[-1] == "--rebuild"
    assert main(rebuild[1:]) == 0
    assert split.read_text() == text and [p.name for p in root.parent.iterdir()] == [root.name]
    capsys.readouterr()
    assert main([*args, "--verify"]) == 0
    assert f"verified: {len(manifest)} files match manifest.json (sizes and sha256)" in capsys.readouterr().out
    (root / "manifest.json").unlink()
    assert main(args) == 2
    assert "no manifest.json, so its files cannot be checked" in capsys.readouterr().err


def test_cache_keys_survive_edited_and_moved_code(tmp_path):
    """The keys are made of configs and RECIPE_VERSION: a copy of the package with comments added to
    the modules that generate data and train models, one of them moved, computes the same keys."""
    package = shutil.copytree(REPO / "ofmu_ray", tmp_path / "ofmu_ray",
                              ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("families/tofu/generate.py", "families/tofu/vocabulary.py", "train/finetune.py",
                 "models/factory.py", "families/tofu/prepare.py"):
        (package / name).write_text((package / name).read_text() + "\n# an unrelated edit\n")
    (package / "train" / "finetune.py").rename(package / "train" / "fine_tuning.py")  # imported only when training
    probe = ("import ofmu_ray\nfrom ofmu_ray.families.tofu.prepare import PROFILES, synth_key\n"
             "print(ofmu_ray.__file__, synth_key(PROFILES['tiny'], 'tiny-llama-4l'), "
             "synth_key(PROFILES['small'], 'tiny-llama-2l'))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env=os.environ | {"PYTHONPATH": str(tmp_path)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == [str(package / "__init__.py"), synth_key(PROFILES["tiny"], "tiny-llama-4l"),
                                  synth_key(PROFILES["small"], "tiny-llama-2l")]
