"""The README and docs/ stay true to the code: every `ofmu-ray` command in their shell blocks parses,
the quick ones also run, docs/cli.md matches the argparse help, and no page holds measurement history.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from ofmu_ray.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
SHELL_BLOCK = re.compile(r"^```(?:bash|sh|shell|console)\n(.*?)^```", re.S | re.M)
OPERATORS = {"&&", "||", ";", "|", "&"}

# The commands that take seconds on the test fixtures, as the docs write them: each is run, with the
# fixture's cache or store added. Everything else (a demo, a sweep, a cluster job) is only parsed.
RUN_ON_FIXTURES = {
    "methods": "ofmu-ray methods",
    "prepare": "ofmu-ray prepare --bench synth-tofu --profile tiny",  # returns at once once `tiny` is cached
    "pareto": "ofmu-ray pareto --experiment synth-tofu/forget10",  # on the suite's sweep, `swept`
}


def _rel(page: Path) -> str:
    return str(page.relative_to(REPO))


def doc_commands() -> list[tuple[str, list[str]]]:
    """Every `ofmu-ray` command in a shell block of the README and docs/: (page, its arguments)."""
    found = []
    for page in PAGES:
        for block in SHELL_BLOCK.findall(page.read_text()):
            for line in block.replace("\\\n", " ").splitlines():
                lexer = shlex.shlex(line, posix=True, punctuation_chars=True)  # drops `# comments`
                lexer.whitespace_split = True
                command: list[str] = []
                for token in [*lexer, ";"]:
                    if token not in OPERATORS:
                        command.append(token)
                        continue
                    at = [i for i, t in enumerate(command) if Path(t).name == "ofmu-ray"]
                    if at:  # `.venv/bin/ofmu-ray`, or after `ray job submit --`, count as well
                        found.append((_rel(page), command[at[0] + 1:]))
                    command = []
    return found


COMMANDS = doc_commands()


def test_the_docs_show_commands():
    """The extraction finds the README's quickstart and every command the suite runs."""
    shown = {" ".join(["ofmu-ray", *argv]) for _, argv in COMMANDS}
    assert "ofmu-ray demo" in shown
    assert set(RUN_ON_FIXTURES.values()) <= shown


@pytest.mark.parametrize("page,argv", COMMANDS, ids=[f"{p}:{' '.join(a[:3])}" for p, a in COMMANDS])
def test_doc_command_parses(page, argv):
    """A renamed or removed flag, or a misspelt command, fails here with the page that shows it."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            build_parser().parse_args(argv)
        except SystemExit:
            pytest.fail(f"{page}: ofmu-ray {' '.join(argv)}\n{err.getvalue()}")


def _run(line: str, *extra: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main([*shlex.split(line)[1:], *extra]) == 0
    return out.getvalue()


def test_doc_methods_runs():
    assert "ofmu:" in _run(RUN_ON_FIXTURES["methods"])


def test_doc_prepare_runs(tiny, cache_dir):
    assert "geometry" in _run(RUN_ON_FIXTURES["prepare"], "--cache-dir", cache_dir)


def test_doc_pareto_runs(swept):
    assert "forget split" in _run(RUN_ON_FIXTURES["pareto"], "--tracking-uri", swept)


def test_cli_reference_is_fresh():
    """docs/cli.md is what `python scripts/cli_docs.py` writes from today's argparse help."""
    version = re.search(r"\(Python (\d+\.\d+),", (REPO / "docs" / "cli.md").read_text())
    if version and version[1] != f"{sys.version_info.major}.{sys.version_info.minor}":
        pytest.skip(f"docs/cli.md was generated under Python {version[1]}: argparse's layout differs between versions")
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "cli_docs.py"), "--check"],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr


LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_doc_links_resolve(page):
    """Every relative link of a page names a file of the repository, so moving a page breaks no guide."""
    targets = [t for t in LINK.findall(page.read_text()) if "://" not in t]
    missing = [t for t in targets if not (page.parent / t).exists()]
    assert not missing, f"{_rel(page)} links to missing files: {missing}"


# Measurement history belongs in git and in benchmarks/README.md's Timings table, not in a guide.
HISTORY = {
    "a commit hash": re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b"),
    "a date": re.compile(r"\b20\d\d-\d\d-\d\d\b"),
    "a machine's name": re.compile(r"AMD|EPYC|Xeon|Intel|'s machine|this machine|the machine before", re.I),
    # "I want to ..." is the reader's voice, in the README's table of jobs
    "the first person": re.compile(r"\bI\b(?! want to)|(?i:\b(?:we|our|us)\b)"),
    "a path outside the repository": re.compile(r"/work/|/tmp/|/home/|/root/|/Users/|~/(?!"
                                                r"\.cache/ofmu-|\.ray/|venv/|ofmu-ray\b)"),
}
# ~/ paths the docs may name: where ofmu-ray and cluster.yaml put things on the user's machines.


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_docs_hold_no_history(page):
    problems = [f"{_rel(page)}:{n}: {what}: {line.strip()}"
                for n, line in enumerate(page.read_text().splitlines(), 1)
                for what, pattern in HISTORY.items() if pattern.search(line)]
    assert not problems, "\n".join(problems)
