"""The code stays `ruff` clean (CI runs only pytest, so the lint runs here), and never unpickles."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ruff_clean():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is a test dependency: pip install -e '.[test]'"
    paths = ["ofmu_ray", "tests", "benchmarks", "scripts"]
    result = subprocess.run([ruff, "check", *paths], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_torch_load_refuses_pickled_code():
    """A checkpoint or model file is read as tensors only: `torch.load(..., weights_only=True)`."""
    unsafe = []
    for path in sorted((REPO / "ofmu_ray").rglob("*.py")) + sorted((REPO / "benchmarks").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.load" and not any(
                    k.arg == "weights_only" and ast.unparse(k.value) == "True" for k in node.keywords):
                unsafe.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not unsafe, f"torch.load without weights_only=True: {unsafe}"
