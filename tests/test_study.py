"""`benchmarks/study.py --report-only`: the report's numbers are those of the MLflow store it names, and
the same store gives the same report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ofmu_ray.cli import main

STUDY = Path(__file__).resolve().parents[1] / "benchmarks" / "study.py"
KEYS = ("forget", "paraphrase", "multihop", "crosslingual")


def _report(uri: str, out: Path) -> str:
    done = subprocess.run([sys.executable, str(STUDY), "--report-only", "--name", "study", "--splits", "forget10",
                           "--tracking-uri", uri, "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return out.read_text()


def _rows(text: str, header: str) -> dict[str, list[str]]:
    """The markdown table that starts with `header`, as {first cell: the other cells}."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        first, *cells = (c.strip() for c in line.strip("|").split("|"))
        rows[first] = cells
    return rows


def test_the_study_report_is_read_back_from_the_store(swept, tmp_path, capsys):
    report = _report(swept, tmp_path / "RESULTS.md")
    assert main(["pareto", "--tracking-uri", swept, "--experiment", "synth-tofu/forget10", "--json"]) == 0
    fronts = json.loads(capsys.readouterr().out)["models"]["tiny-llama-4l"]["fronts"]
    hv = {key: {m: fronts["" if key == "forget" else f"/{key}"]["methods"][m]["hypervolume_floor"]
                for m in ("graddiff", "ofmu")} for key in KEYS}

    table = _rows(report, "| method | tiny-llama-4l forget")
    assert set(table) == {"graddiff", "ofmu"}
    for method, cells in table.items():
        assert [float(c) for c in cells] == [round(hv[key][method], 3) for key in KEYS]
    trials = _rows(report, "| method | trials |")
    assert {m: int(cells[0]) for m, cells in trials.items()} == {
        m: fronts[""]["methods"][m]["trials"] for m in ("graddiff", "ofmu")}
    higher, lower, _ = _rows(report, "| baseline | OFMU higher")["graddiff"]
    assert int(higher) == sum(hv[k]["ofmu"] > hv[k]["graddiff"] for k in KEYS) and int(higher) + int(lower) == 4
    assert (tmp_path / "results" / "front_forget10_tiny-llama-4l.png").read_bytes()[:4] == b"\x89PNG"
    assert "![fronts](results/front_forget10_tiny-llama-4l.png)" in report
    assert ("every method had 2 trials (its defaults first) of 2 forget batches of 4. Dimensions each searched: "
            "graddiff 3 (lr, gamma, alpha), ofmu 6 (") in report  # the fixture's sweep settings and tune_spaces/
    assert "; held: hessian=finite_diff)." in report  # the fixture's OFMU space holds its Hessian

    assert _report(swept, tmp_path / "RESULTS.md") == report
