"""Load on ``bradley serve`` over loopback: N concurrent voters, M votes, throughput and latency percentiles.

Starts ``bradley serve`` as a subprocess on a fresh database (SQLite file by
default, or ``--db URL``), creates a project (systems x prompts outputs) and
one annotator per voter, then runs the voters as asyncio tasks, each on its
own keep-alive HTTP/1.1 connection (a minimal client on asyncio streams, so
the client costs little of the CPU it shares with the server): each loops
GET next -> POST vote until the total is reached. Reports votes/s,
requests/s, p50/p95/p99 latency of each request kind, server and client CPU
per vote and the load average, and checks from the export that every
acknowledged vote is stored and no pair twice (two acknowledged vote ids of
one pair, or two export rows of one annotator, prompt and system pair). The
load stops itself after ``timeout`` seconds (an error naming how far it got).

    python benchmarks/bench_serve.py --voters 50 --votes 10000
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ADMIN = "bench-admin-token-0123456789abcdef0123456789"
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def call(port: int, method: str, path: str, body: Any = None, token: str = ADMIN, timeout: float = 120) -> Any:
    """One blocking JSON request (set-up and checks); raises on a status >= 400. Returns the parsed body or text."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {token}"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        r = conn.getresponse()
        text = r.read().decode()
        if r.status >= 400:
            raise RuntimeError(f"{method} {path}: {r.status} {text[:300]}")
        return json.loads(text) if r.getheader("content-type", "").startswith("application/json") else text
    finally:
        conn.close()


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
            if call(port, "GET", "/healthz", timeout=1) == {"status": "ok"}:
                return proc
        except (OSError, RuntimeError):
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


class Connection:
    """One keep-alive HTTP/1.1 connection on asyncio streams: just enough for bradley serve's JSON answers."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.auth = f"Authorization: Bearer {token}\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        assert self.reader is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\n{self.auth}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + (body or b""))
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        status, length, close = int(status_line.split()[1]), 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
            elif name == b"transfer-encoding":
                raise ConnectionError("chunked answers are not expected from these endpoints")
        data = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, data


async def _voters(port: int, tokens: list[str], total: int, timeout: float) -> dict[str, Any]:
    remaining = total
    acked: dict[int, str] = {}
    lat: dict[str, list[float]] = {"next": [], "vote": []}
    errors: list[str] = []
    retries = 0

    async def request(conn: Connection, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """One request, retried on a new connection after a transport error (a vote retry is idempotent)."""
        nonlocal retries
        for attempt in range(5):
            try:
                return await asyncio.wait_for(conn.request(method, path, body), 60)
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError):
                conn.close()
                if attempt == 4:
                    raise
                retries += 1
                await asyncio.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    async def voter(k: int, token: str) -> None:
        nonlocal remaining
        conn = Connection(port, token)
        i = 0
        try:
            while remaining > 0:
                remaining -= 1
                t0 = time.perf_counter()
                status, data = await request(conn, "GET", "/api/projects/load/next")
                lat["next"].append((time.perf_counter() - t0) * 1e3)
                if status != 200:
                    errors.append(f"next {status}: {data[:100]!r}")
                    return
                pair_id = json.loads(data)["pair_id"]
                outcome = ["left", "right", "tie", "both_bad"][(i + k) % 4]
                i += 1
                body = json.dumps({"pair_id": pair_id, "outcome": outcome}).encode()
                t0 = time.perf_counter()
                status, data = await request(conn, "POST", "/api/projects/load/votes", body)
                lat["vote"].append((time.perf_counter() - t0) * 1e3)
                if status not in (200, 201):  # 200: a retried vote that had been committed
                    errors.append(f"vote {status}: {data[:100]!r}")
                    continue
                acked[json.loads(data)["vote_id"]] = pair_id
        finally:
            conn.close()

    start = time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.gather(*(voter(k, t) for k, t in enumerate(tokens))), timeout)
    except asyncio.TimeoutError:
        raise RuntimeError(f"the load did not finish within {timeout:.0f} s: {len(acked)} of {total} votes "
                           f"acknowledged") from None
    wall = time.perf_counter() - start
    return {"acked": acked, "lat": lat, "errors": errors, "wall": wall, "retries": retries}


def _run_async(coro: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def run_load(n_voters: int = 50, n_votes: int = 10_000, db_url: str | None = None, n_systems: int = 8,
             n_prompts: int = 40, timeout: float = 900.0) -> dict[str, Any]:
    """Run the load; returns the figures and the consistency checks (``lost``, ``duplicated``).

    Raises RuntimeError (with the server's log) when the voters have not finished within ``timeout`` s.
    """
    tmp = tempfile.mkdtemp(prefix="bradley-bench-serve-")
    db_url = db_url or f"sqlite:///{Path(tmp) / 'load.db'}"
    port = free_port()
    log = Path(tmp) / "server.log"
    proc = start_server(db_url, port, log)
    try:
        call(port, "POST", "/api/projects", {"slug": "load", "name": "Load"})
        outputs = [{"system": f"m{i}", "prompt": f"q{j}", "text": f"answer of m{i} to q{j}"}
                   for i in range(n_systems) for j in range(n_prompts)]
        call(port, "POST", "/api/projects/load/outputs", {"outputs": outputs})
        tokens = [call(port, "POST", "/api/projects/load/annotators", {"name": f"voter{k}"})["token"]
                  for k in range(n_voters)]
        cpu0, client0, load0 = process_cpu_seconds(proc.pid), time.process_time(), os.getloadavg()[0]
        try:
            result = _run_async(_voters(port, tokens, n_votes, timeout))
        except (OSError, RuntimeError, asyncio.IncompleteReadError) as exc:
            raise RuntimeError(f"{type(exc).__name__} {exc}; server log: {log.read_text()[-3000:]}") from exc
        server_cpu_s = process_cpu_seconds(proc.pid) - cpu0
        client_cpu_s = time.process_time() - client0
        load1 = os.getloadavg()[0]
        export = call(port, "GET", "/api/projects/load/export")
        t0 = time.perf_counter()
        board = call(port, "GET", "/api/projects/load/leaderboard")
        board_ms = (time.perf_counter() - t0) * 1e3
    finally:
        stop_server(proc)
    rows = list(csv.DictReader(io.StringIO(export)))
    stored = {int(r["vote_id"]) for r in rows}
    acked = result["acked"]  # vote id -> pair id
    n_acked = len(acked)
    # vote ids are primary keys and never repeat: a duplicate is a pair stored twice, seen as two acknowledged
    # vote ids of one pair, or as two export rows of one (annotator, prompt, system pair), which the server never
    # shows an annotator twice
    keys = [(r["judge"], r["prompt"], frozenset((r["model_a"], r["model_b"]))) for r in rows]
    duplicated = (n_acked - len(set(acked.values()))) + (len(keys) - len(set(keys)))
    return {
        "voters": n_voters, "votes_acked": n_acked, "errors": result["errors"][:5], "n_errors": len(result["errors"]),
        "retries": result["retries"],
        "wall_s": result["wall"], "votes_per_s": n_acked / result["wall"],
        "requests_per_s": (len(result["lat"]["next"]) + len(result["lat"]["vote"])) / result["wall"],
        "next_ms": percentiles(result["lat"]["next"]), "vote_ms": percentiles(result["lat"]["vote"]),
        "stored": len(rows), "lost": len(set(acked) - set(stored)), "duplicated": duplicated,
        "leaderboard_ms": board_ms, "leaderboard_n_votes": board["n_votes"],
        "server_cpu_ms_per_vote": server_cpu_s / max(n_acked, 1) * 1e3,
        "client_cpu_ms_per_vote": client_cpu_s / max(n_acked, 1) * 1e3,
        "loadavg_before": load0, "loadavg_after": load1,
    }


def report(r: dict[str, Any]) -> str:
    return (f"{r['voters']} voters, {r['votes_acked']} votes acknowledged in {r['wall_s']:.1f} s: "
            f"{r['votes_per_s']:.0f} votes/s ({r['requests_per_s']:.0f} requests/s); "
            f"next p50/p95/p99 {r['next_ms']['p50']:.0f}/{r['next_ms']['p95']:.0f}/{r['next_ms']['p99']:.0f} ms; "
            f"vote p50/p95/p99 {r['vote_ms']['p50']:.0f}/{r['vote_ms']['p95']:.0f}/{r['vote_ms']['p99']:.0f} ms; "
            f"stored {r['stored']}, lost {r['lost']}, duplicated {r['duplicated']}, errors {r['n_errors']}, "
            f"transport retries {r['retries']}; "
            f"leaderboard on {r['leaderboard_n_votes']} votes {r['leaderboard_ms']:.0f} ms; "
            f"CPU per vote (next + vote): server {r['server_cpu_ms_per_vote']:.2f} ms, "
            f"client {r['client_cpu_ms_per_vote']:.2f} ms; "
            f"load average {r['loadavg_before']:.1f} -> {r['loadavg_after']:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voters", type=int, default=50)
    parser.add_argument("--votes", type=int, default=10_000)
    parser.add_argument("--db", default=None, help="database URL (default a fresh SQLite file)")
    parser.add_argument("--timeout", type=float, default=900.0, help="stop the load after this many seconds")
    args = parser.parse_args()
    print(report(run_load(args.voters, args.votes, args.db, timeout=args.timeout)))


if __name__ == "__main__":
    main()
