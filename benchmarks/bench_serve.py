"""Load on ``bradley serve`` over loopback: N concurrent voters, M votes, throughput and latency percentiles.

Starts ``bradley serve`` as a subprocess on a fresh database (SQLite file by
default, or ``--db URL``), creates a project (systems x prompts outputs) and
one annotator per voter, then runs the voters as asyncio tasks with httpx:
each loops GET next -> POST vote until the total is reached. Reports votes/s,
requests/s and p50/p95/p99 latency of each request kind, and checks from the
export that every acknowledged vote is stored exactly once.

    python benchmarks/bench_serve.py --voters 50 --votes 10000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ADMIN = "bench-admin-token-0123456789abcdef0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(db_url: str, port: int, log: Path, timeout: float = 60.0) -> subprocess.Popen[bytes]:
    """``bradley serve`` in a subprocess (stderr to ``log``), once /healthz answers."""
    env = {**os.environ, "BRADLEY_ADMIN_TOKEN": ADMIN}
    with open(log, "ab") as err:
        proc = subprocess.Popen([sys.executable, "-m", "bradley", "serve", "--db", db_url, "--host", "127.0.0.1",
                                 "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server did not start within {timeout} s")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentiles(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
            "p99": float(np.percentile(a, 99))}


async def _voters(base: str, tokens: list[str], total: int) -> dict[str, Any]:
    remaining = total
    acked: dict[int, str] = {}
    lat: dict[str, list[float]] = {"next": [], "vote": []}
    errors: list[str] = []
    limits = httpx.Limits(max_connections=len(tokens) + 5, max_keepalive_connections=len(tokens) + 5)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:

        retries = 0

        async def request(method: str, url: str, **kwargs: Any) -> httpx.Response:
            """One request, retried on a transport error (a vote retry is idempotent)."""
            nonlocal retries
            for attempt in range(5):
                try:
                    return await client.request(method, url, **kwargs)
                except httpx.TransportError:
                    if attempt == 4:
                        raise
                    retries += 1
                    await asyncio.sleep(0.05 * (attempt + 1))
            raise AssertionError("unreachable")

        async def voter(k: int, token: str) -> None:
            nonlocal remaining
            headers = {"Authorization": f"Bearer {token}"}
            i = 0
            while remaining > 0:
                remaining -= 1
                t0 = time.perf_counter()
                r = await request("GET", "/api/projects/load/next", headers=headers)
                lat["next"].append((time.perf_counter() - t0) * 1e3)
                if r.status_code != 200:
                    errors.append(f"next {r.status_code}")
                    return
                pair_id = r.json()["pair_id"]
                outcome = ["left", "right", "tie", "both_bad"][(i + k) % 4]
                i += 1
                t0 = time.perf_counter()
                v = await request("POST", "/api/projects/load/votes", headers=headers,
                                  json={"pair_id": pair_id, "outcome": outcome})
                lat["vote"].append((time.perf_counter() - t0) * 1e3)
                if v.status_code not in (200, 201):  # 200: a retried vote that had been committed
                    errors.append(f"vote {v.status_code}: {v.text[:100]}")
                    continue
                acked[v.json()["vote_id"]] = pair_id

        start = time.perf_counter()
        await asyncio.gather(*(voter(k, t) for k, t in enumerate(tokens)))
        wall = time.perf_counter() - start
    return {"acked": acked, "lat": lat, "errors": errors, "wall": wall, "retries": retries}


def run_load(n_voters: int = 50, n_votes: int = 10_000, db_url: str | None = None, n_systems: int = 8,
             n_prompts: int = 40) -> dict[str, Any]:
    """Run the load; returns the figures and the consistency checks (``lost``, ``duplicated``)."""
    tmp = tempfile.mkdtemp(prefix="bradley-bench-serve-")
    db_url = db_url or f"sqlite:///{Path(tmp) / 'load.db'}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = Path(tmp) / "server.log"
    proc = start_server(db_url, port, log)
    try:
        with httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {ADMIN}"}) as admin:
            admin.post("/api/projects", json={"slug": "load", "name": "Load"}).raise_for_status()
            outputs = [{"system": f"m{i}", "prompt": f"q{j}", "text": f"answer of m{i} to q{j}"}
                       for i in range(n_systems) for j in range(n_prompts)]
            admin.post("/api/projects/load/outputs", json={"outputs": outputs}).raise_for_status()
            tokens = [admin.post("/api/projects/load/annotators", json={"name": f"voter{k}"}).json()["token"]
                      for k in range(n_voters)]
        try:
            result = asyncio.run(_voters(base, tokens, n_votes))
        except httpx.HTTPError as exc:
            raise RuntimeError(f"{type(exc).__name__} {exc}; server log: {log.read_text()[-3000:]}") from exc
        with httpx.Client(base_url=base, timeout=120, headers={"Authorization": f"Bearer {ADMIN}"}) as admin:
            export = admin.get("/api/projects/load/export").text
            t0 = time.perf_counter()
            board = admin.get("/api/projects/load/leaderboard").json()
            board_ms = (time.perf_counter() - t0) * 1e3
        server_cpu_s = process_cpu_seconds(proc.pid)
    finally:
        stop_server(proc)
    stored = [int(line.rsplit(",", 1)[1]) for line in export.splitlines()[1:]]
    acked = result["acked"]
    n_acked = len(acked)
    return {
        "voters": n_voters, "votes_acked": n_acked, "errors": result["errors"][:5], "n_errors": len(result["errors"]),
        "retries": result["retries"],
        "wall_s": result["wall"], "votes_per_s": n_acked / result["wall"],
        "requests_per_s": (len(result["lat"]["next"]) + len(result["lat"]["vote"])) / result["wall"],
        "next_ms": percentiles(result["lat"]["next"]), "vote_ms": percentiles(result["lat"]["vote"]),
        "stored": len(stored), "lost": len(set(acked) - set(stored)), "duplicated": len(stored) - len(set(stored)),
        "leaderboard_ms": board_ms, "server_cpu_ms_per_vote": server_cpu_s / max(n_acked, 1) * 1e3, "leaderboard_n_votes": board["n_votes"],
    }


def report(r: dict[str, Any]) -> str:
    return (f"{r['voters']} voters, {r['votes_acked']} votes acknowledged in {r['wall_s']:.1f} s: "
            f"{r['votes_per_s']:.0f} votes/s ({r['requests_per_s']:.0f} requests/s); "
            f"next p50/p95/p99 {r['next_ms']['p50']:.0f}/{r['next_ms']['p95']:.0f}/{r['next_ms']['p99']:.0f} ms; "
            f"vote p50/p95/p99 {r['vote_ms']['p50']:.0f}/{r['vote_ms']['p95']:.0f}/{r['vote_ms']['p99']:.0f} ms; "
            f"stored {r['stored']}, lost {r['lost']}, duplicated {r['duplicated']}, errors {r['n_errors']}, transport retries {r['retries']}; "
            f"leaderboard on {r['leaderboard_n_votes']} votes {r['leaderboard_ms']:.0f} ms; "
            f"server CPU {r['server_cpu_ms_per_vote']:.1f} ms per vote (next + vote, startup included)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voters", type=int, default=50)
    parser.add_argument("--votes", type=int, default=10_000)
    parser.add_argument("--db", default=None, help="database URL (default a fresh SQLite file)")
    args = parser.parse_args()
    print(report(run_load(args.voters, args.votes, args.db)))


if __name__ == "__main__":
    main()
