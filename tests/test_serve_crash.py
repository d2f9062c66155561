"""Kill ``bradley serve`` (SIGKILL) while voters post, restart it on the same database:
every acknowledged vote is there, none twice, and retried in-flight votes are idempotent."""

from __future__ import annotations

import csv
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("alembic")
httpx = pytest.importorskip("httpx")

ADMIN = "crash-test-admin-token-0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(db: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BRADLEY_ADMIN_TOKEN": ADMIN}
    proc = subprocess.Popen([sys.executable, "-m", "bradley", "serve", "--db", f"sqlite:///{db}", "--host",
                             "127.0.0.1", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start within 60 s")


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def export_rows(text: str) -> list[dict[str, Any]]:
    return list(csv.DictReader(io.StringIO(text)))


def assert_no_duplicate_pairs(rows: list[dict[str, Any]]) -> None:
    """Each stored vote is a distinct (annotator, prompt, system pair): the server never shows one twice."""
    keys = [(r["judge"], r["prompt"], frozenset((r["model_a"], r["model_b"]))) for r in rows]
    assert len(keys) == len(set(keys)), f"{len(keys) - len(set(keys))} pairs stored twice"


def test_sigkill_mid_load_loses_no_acknowledged_vote(tmp_path: Path) -> None:
    db, port = tmp_path / "crash.db", _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_server(db, port)
    try:
        with httpx.Client(base_url=base, timeout=10, headers=auth(ADMIN)) as admin:
            assert admin.post("/api/projects", json={"slug": "c", "name": "Crash"}).status_code == 201
            outputs = [{"system": f"s{i}", "prompt": f"q{j}", "text": f"s{i} on q{j}"}
                       for i in range(6) for j in range(30)]
            assert admin.post("/api/projects/c/outputs", json={"outputs": outputs}).status_code == 200
            tokens = [admin.post("/api/projects/c/annotators", json={"name": f"v{k}"}).json()["token"]
                      for k in range(8)]

        acked: dict[str, tuple[str, int]] = {}  # pair_id -> (outcome, vote_id)
        in_flight: dict[str, tuple[str, str]] = {}  # pair_id -> (token, outcome) whose answer was lost
        lock = threading.Lock()
        stop = threading.Event()

        def voter(k: int, token: str) -> None:
            with httpx.Client(base_url=base, timeout=10, headers=auth(token)) as c:
                i = 0
                while not stop.is_set():
                    try:
                        r = c.get("/api/projects/c/next")
                    except httpx.HTTPError:
                        return
                    if r.status_code != 200:
                        return
                    pair_id = r.json()["pair_id"]
                    outcome = ["left", "right", "tie", "both_bad"][(i + k) % 4]
                    i += 1
                    try:
                        v = c.post("/api/projects/c/votes", json={"pair_id": pair_id, "outcome": outcome})
                    except httpx.HTTPError:
                        with lock:
                            in_flight[pair_id] = (token, outcome)
                        return
                    assert v.status_code == 201, v.text
                    with lock:
                        acked[pair_id] = (outcome, v.json()["vote_id"])

        threads = [threading.Thread(target=voter, args=(k, t), daemon=True) for k, t in enumerate(tokens)]
        for t in threads:
            t.start()
        deadline = time.time() + 30
        while len(acked) < 150 and time.time() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)  # mid-load: no shutdown hooks, no flush
        proc.wait(timeout=10)
        stop.set()
        for t in threads:
            t.join(timeout=20)
        n_acked = len(acked)
        assert n_acked >= 50, "the load did not get going before the kill"

        # a vote id is the primary key, so ids never repeat: a duplicate is one pair stored twice, i.e. two
        # acknowledged pairs with one id, or two export rows of one annotator, prompt and system pair
        assert len({vid for _, vid in acked.values()}) == n_acked
        proc = start_server(db, port)
        with httpx.Client(base_url=base, timeout=10, headers=auth(ADMIN)) as admin:
            rows = export_rows(admin.get("/api/projects/c/export").text)
        assert_no_duplicate_pairs(rows)
        stored = {int(r["vote_id"]) for r in rows}
        missing = [pid for pid, (_, vid) in acked.items() if vid not in stored]
        assert not missing, f"{len(missing)} acknowledged votes lost"
        # at most the requests in flight at the kill were committed without an answer
        assert len(stored) - n_acked <= len(in_flight)

        # a client retrying its lost request gets its vote exactly once (200 if it had been committed)
        for pair_id, (token, outcome) in in_flight.items():
            r = httpx.post(f"{base}/api/projects/c/votes", json={"pair_id": pair_id, "outcome": outcome},
                           headers=auth(token), timeout=10)
            assert r.status_code in (200, 201), r.text
        with httpx.Client(base_url=base, timeout=10, headers=auth(ADMIN)) as admin:
            final = export_rows(admin.get("/api/projects/c/export").text)
        assert_no_duplicate_pairs(final)
        assert len(final) == n_acked + len(in_flight)
        assert stored <= {int(r["vote_id"]) for r in final}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
