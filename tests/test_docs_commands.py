"""Every command in the README and docs runs as written.

The fenced ``bash`` blocks of README.md and docs/*.md are run in order, block
by block, in a fresh temporary directory: ``bradley ...`` lines through
``bradley.cli.main`` (in-process, so they are fast and their errors are
readable), any other line (``python -c ...`` that writes the shipped data to a
file, ``printf ... > games.csv``) through the shell with this interpreter as
``python``. A command passes when it exits with 0. Lines that cannot run in a
test are listed in ``SKIP`` with the reason.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from bradley.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: commands that are not run, with why
SKIP = {
    "make demo": "builds the virtual environment; the leaderboard it prints is run here as a bradley command",
    "make test": "runs this test suite",
}

_FENCE = re.compile(r"^```(?:bash|sh|shell|console)\s*\n(.*?)^```", re.S | re.M)


def _blocks(path: Path) -> list[list[str]]:
    """The command lines of each fenced bash block (comments and blank lines removed)."""
    blocks = []
    for match in _FENCE.finditer(path.read_text(encoding="utf-8")):
        lines = []
        for raw in match.group(1).splitlines():
            line = raw.strip()
            if line.startswith("$ "):
                line = line[2:]
            if line and not line.startswith("#"):
                lines.append(line)
        if lines:
            blocks.append(lines)
    return blocks


def _cases() -> list:
    cases = []
    for path in DOC_FILES:
        for k, block in enumerate(_blocks(path)):
            if any(line.startswith("bradley ") for line in block):
                cases.append(pytest.param(path, block, id=f"{path.name}-block{k + 1}"))
    return cases


def test_docs_have_bradley_commands():
    """The extraction finds the README's command-line examples (a guard against a silently empty test)."""
    commands = [line for path in DOC_FILES for block in _blocks(path) for line in block if line.startswith("bradley ")]
    assert len(commands) >= 5
    assert any(c.startswith("bradley leaderboard ") for c in commands)


def _run_line(line: str, cwd: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    if line in SKIP:
        return
    if line.startswith("bradley "):
        argv = shlex.split(line, comments=True)[1:]
        monkeypatch.chdir(cwd)
        code = main(argv)
        captured = capsys.readouterr()
        assert code == 0, f"`{line}` exited with {code}: {captured.err.strip()}"
        assert captured.out.strip(), f"`{line}` printed nothing"
        return
    command = re.sub(r"^python3?\b", shlex.quote(sys.executable), line)
    result = subprocess.run(command, shell=True, cwd=cwd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"`{line}` exited with {result.returncode}: {result.stderr.strip()}"


@pytest.mark.parametrize(("path", "block"), _cases())
def test_documented_commands_run_as_written(path, block, tmp_path, capsys, monkeypatch):
    for line in block:
        _run_line(line, tmp_path, capsys, monkeypatch)
