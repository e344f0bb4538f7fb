"""The package's shape, read from its imports with `ast` (module-level and function-level, and those
under `if TYPE_CHECKING`): no import cycle, no import of a higher layer, Ray only in `train/` and
`tune/`, MLflow only in `tracking/`, a family's folder never importing another's; and `--help`
without torch. Each check is also shown to fail on a graph built to break it.

Layers, lowest first; a module imports only from its own unit or from lower layers. Data flows
`models -> methods -> train -> families/metrics -> tune`, and `tracking` receives finished numbers
and files: it imports nothing but the bottom, and `runs`, `tune` and the CLI hand it their results.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
P = "ofmu_ray"
RANKS = {  # unit (a module, or a package and everything under it) -> layer
    P: 0, f"{P}.errors": 0,
    f"{P}.config": 1, f"{P}.splits": 1,
    f"{P}.cache": 2,
    f"{P}.models": 3, f"{P}.tracking": 3,
    f"{P}.methods": 4, f"{P}.metrics": 4,
    f"{P}.train": 5,
    f"{P}.families.base": 6,
    # 7: each family's folder, families/<name>/, a unit of its own (see `unit`): families import no other family
    f"{P}.families": 8,  # the registry
    f"{P}.runs": 9,
    f"{P}.tune": 10,
    f"{P}.cli": 11,
}
ONLY_IN = {"ray": (f"{P}.train", f"{P}.tune"), "mlflow": (f"{P}.tracking",)}  # third-party imports, where allowed


def modules(root: Path = REPO / P) -> dict[str, Path]:
    """Module name -> file, for every module of the package under `root`."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imported(name: str, path: Path) -> set[str]:
    """What each import statement of the file names, absolute (relative ones resolved): `import a.b`
    names `a.b`, `from a import b` names `a.b` (a module, or a name in `a`)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            found |= {f"{base}.{a.name}" for a in node.names}
    return found


def graph(known: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (a name that is not a module is its module's)."""
    out = {}
    for name, path in known.items():
        targets = set()
        for target in imported(name, path):
            while target not in known and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in known and target != name:
                targets.add(target)
        out[name] = targets
    return out


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out = []
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        out.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                work.append((child, iter(sorted(edges.get(child, ())))))
            elif child in stack:
                low[node] = min(low[node], index[child])
    return out


FAMILY_LAYER = 7


def unit(name: str, ranks: dict[str, int]) -> str:
    """A family's folder (`ofmu_ray.families.<name>`, layer 7), else the longest `ranks` key that is
    `name` or a package above it."""
    parts = name.split(".")
    if parts[:2] == [P, "families"] and len(parts) > 2 and parts[2] != "base":
        return ".".join(parts[:3])
    while name not in ranks:
        if "." not in name:
            raise KeyError(f"{name} is in no layer: add it to RANKS")
        name = name.rsplit(".", 1)[0]
    return name


def violations(edges: dict[str, set[str]], ranks: dict[str, int]) -> list[str]:
    """Imports of another unit of the same or a higher layer."""
    out = []
    for source, targets in sorted(edges.items()):
        for target in sorted(targets):
            a, b = unit(source, ranks), unit(target, ranks)
            layer_a, layer_b = ranks.get(a, FAMILY_LAYER), ranks.get(b, FAMILY_LAYER)
            if a != b and layer_b >= layer_a:
                out.append(f"{source} (layer {layer_a}) imports {target} (layer {layer_b})")
    return out


def test_no_import_cycles_and_no_upward_imports():
    known = modules()
    edges = graph(known)
    assert not cycles(edges), cycles(edges)
    assert not violations(edges, RANKS), "\n".join(violations(edges, RANKS))
    assert {unit(name, RANKS) for name in known} >= set(RANKS)  # every unit named exists
    assert {f"{P}.families.tofu", f"{P}.families.wmdp", f"{P}.families.vision"} <= {unit(n, RANKS) for n in known}


def test_ray_and_mlflow_are_imported_only_where_they_belong():
    wrong = [f"{name} imports {library}" for name, path in modules().items() for library, homes in ONLY_IN.items()
             if any(t == library or t.startswith(library + ".") for t in imported(name, path))
             and not name.startswith(homes)]
    assert not wrong, wrong


def test_the_checks_fail_on_a_cycle_and_on_an_upward_import(tmp_path):
    """A temporary package with a cycle (a -> b -> c -> a) and a bottom module importing the top; a
    family importing another family's module."""
    package = tmp_path / "toy"
    (package / "low").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "low" / "__init__.py").write_text("")
    (package / "low" / "a.py").write_text("from toy.low import b\n")
    (package / "low" / "b.py").write_text("def f():\n    import toy.low.c\n")  # function-level counts too
    (package / "low" / "c.py").write_text("from toy.low.a import thing\n")
    (package / "top.py").write_text("from toy.low import a\n")
    (package / "low" / "d.py").write_text("from . import a\nfrom ..top import x\n")  # relative imports resolve
    edges = graph(modules(package))
    assert cycles(edges) == [["toy.low.a", "toy.low.b", "toy.low.c"]]
    layers = {"toy": 0, "toy.low": 1, "toy.top": 2}
    assert violations(edges, layers) == ["toy.low.d (layer 1) imports toy.top (layer 2)"]
    assert not cycles({"x": {"y"}, "y": set()})
    one_family_imports_another = {f"{P}.families.toy.prepare": {f"{P}.families.tofu.load", f"{P}.families.base"}}
    assert violations(one_family_imports_another, RANKS) == [
        f"{P}.families.toy.prepare (layer 7) imports {P}.families.tofu.load (layer 7)"]


def test_help_imports_neither_torch_nor_ray_nor_mlflow():
    probe = ("import sys\nfrom ofmu_ray.cli import build_parser\nbuild_parser()\n"
             "print([m for m in ('torch', 'transformers', 'ray', 'mlflow') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
