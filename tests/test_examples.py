"""The examples in examples/ run and print what they promise."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run(name: str, *args: str) -> str:
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True, timeout=300,
                            check=False)
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


def test_temporal_protocol_example():
    """DynamicBT against a tuned Elo on real dated data (GenAI-Arena, football), paired differences."""
    pytest.importorskip("openskill")
    out = run("temporal_protocol.py", "--quick")
    assert "GenAI-Arena generation + edition pooled" in out
    last = out.strip().splitlines()[-1]
    difference = re.search(r": (-?\d+\.\d+) \(se ", last)
    assert difference is not None and float(difference.group(1)) < 0, last


@pytest.mark.slow
def test_climbing_grades_example_recovers_the_ratio():
    pytest.importorskip("numpyro")
    out = run("climbing_grades.py", "--quick")
    assert "inside the 95% credible interval: True" in out


def test_style_control_example_without_texts():
    out = run("style_control_vicuna.py")
    assert "No answer texts given" in out and "gpt4" in out
