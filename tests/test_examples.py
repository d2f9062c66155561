"""The examples in examples/ run and print what they promise."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run(name: str) -> str:
    result = subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_arena_leaderboard_example():
    out = run("arena_leaderboard.py")
    assert "dropped 10 of 135634" in out and "converged=True" in out and "gemini-2.5-pro" in out


def test_dpo_tiny_example_learns():
    pytest.importorskip("torch")
    out = run("dpo_tiny.py")
    last = out.strip().splitlines()[-1]
    assert "accuracy 1.00" in last


def test_relative_scoring_example():
    out = run("relative_scoring.py")
    tau = float(out.strip().splitlines()[-1].split(":")[-1])
    assert tau > 0.8
