"""`benchmarks/gpu_check.py` on the CPU, with small shapes: what it reports on a GPU, checked for values."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ofmu_ray.methods import methods_for
from ofmu_ray.methods.base import QA
from ofmu_ray.methods.ofmu import HESSIANS

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def test_the_gpu_check_runs_on_the_cpu_without_ray_mlflow_or_optuna(tiny, cache_dir, tmp_path):
    out = tmp_path / "report.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--small", "--cache-dir", cache_dir,
                           "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["imported"] == []  # the GPU machine has none of them
    text = methods_for(QA)
    # the CPU against itself: the same update to the last bit, for every text method
    assert sorted(report["agreement"]) == sorted(text)
    assert all(a["relative_difference"] == 0.0 and a["update_norm"] > 0 for a in report["agreement"].values())
    for method in text:
        bf16 = report["bf16"][method]
        assert len(bf16["loss_bf16_mixed"]) == len(bf16["loss_fp32"]) == 3
        assert 0 < bf16["relative_distance"] <= bf16["tolerance"], method  # bf16 changes the sums, a little
    for hessian in ("finite_diff", "finite_diff_forget"):
        refused = report["bf16"][f"bf16 weights, ofmu:{hessian}"]
        assert refused["refused"] and "needs fp32 or fp64 weights" in refused["message"]
    entries = [*text, *(f"ofmu:{h}" for h in HESSIANS)]
    for name in entries:
        measured = report["scale"][f"llama-2l {name}"]
        assert measured["seconds_per_batch"] > 0 and measured["peak_mib"] > 0, name
        assert measured["ratio_to_gradascent"] > 0
        impossible = report["scale"][f"impossible {name}"]  # 256 GiB of embeddings: reported, and the run goes on
        assert impossible["out_of_memory"] and impossible["asked"].endswith("bytes"), name
    assert report["scale"]["llama-2l gradascent"]["ratio_to_gradascent"] == 1.0
    ofmu = report["scale"]["llama-2l ofmu against the paper"]
    assert ofmu["ratio"] > 1 and ofmu["paper"] == [2.85, 4.22]
