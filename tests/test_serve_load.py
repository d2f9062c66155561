"""Bounded load on ``bradley serve`` over loopback: 50 concurrent voters, 10k votes (issue 16 item 4).

Runs ``benchmarks/bench_serve.py``'s ``run_load`` (a ``bradley serve``
subprocess on a fresh SQLite file; voters as asyncio tasks, one keep-alive
connection each), prints throughput and p50/p95/p99 latency, and checks from
the export that every acknowledged vote is stored and no pair twice.
``BRADLEY_SERVE_LOAD_VOTERS`` and ``BRADLEY_SERVE_LOAD_VOTES`` change the size
(default 50 and 10000); the load fails, naming how far it got, after
``BRADLEY_SERVE_LOAD_TIMEOUT`` seconds (default 600).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_serve.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_serve", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_load_50_voters_10k_votes_nothing_lost_or_duplicated() -> None:
    bench = _bench()
    voters = int(os.environ.get("BRADLEY_SERVE_LOAD_VOTERS", "50"))
    votes = int(os.environ.get("BRADLEY_SERVE_LOAD_VOTES", "10000"))
    timeout = float(os.environ.get("BRADLEY_SERVE_LOAD_TIMEOUT", "600"))
    result = bench.run_load(voters, votes, timeout=timeout)
    print("\n" + bench.report(result))
    assert result["n_errors"] == 0, result["errors"]
    assert result["votes_acked"] == votes
    assert result["stored"] == votes
    assert result["lost"] == 0 and result["duplicated"] == 0
    assert result["leaderboard_n_votes"] == votes
