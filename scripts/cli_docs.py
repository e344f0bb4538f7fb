"""Writes docs/cli.md, the reference of every `ofmu-ray` command, from the argparse help itself.

    python scripts/cli_docs.py            # write docs/cli.md
    python scripts/cli_docs.py --check    # exit 1 if docs/cli.md differs from a fresh generation

The help is rendered at a fixed width (COLUMNS), so the file does not change with the terminal.
argparse's layout does change between Python versions, so the file names the version it was made with.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLI_MD = REPO / "docs" / "cli.md"
WIDTH = 100  # columns of the rendered help


def python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def _help(argv: list[str]) -> str:
    from ofmu_ray.cli import build_parser

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):  # --help exits after printing
        build_parser().parse_args(argv)
    return out.getvalue().rstrip()


def render() -> str:
    """The text of docs/cli.md: the top-level help, then each command's."""
    from ofmu_ray.cli import COMMANDS

    os.environ["COLUMNS"] = str(WIDTH)  # read by argparse's formatter when it renders
    parts = [
        "# Command reference",
        "",
        "Generated from the argparse help by `python scripts/cli_docs.py` "
        f"(Python {python_version()}, {WIDTH} columns):",
        "do not edit, run it again. The guides beside this page say when to use each flag.",
        "",
        "```text",
        _help(["--help"]),
        "```",
    ]
    for command in COMMANDS:
        parts += ["", f"## ofmu-ray {command}", "", "```text", _help([command, "--help"]), "```"]
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write docs/cli.md from the argparse help.")
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/cli.md is stale, writing nothing")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not CLI_MD.exists() or CLI_MD.read_text() != text:
            print(f"{CLI_MD.relative_to(REPO)} is stale: run python scripts/cli_docs.py", file=sys.stderr)
            return 1
        return 0
    CLI_MD.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
