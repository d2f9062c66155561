"""The arena API (bradley serve) through FastAPI's TestClient on a SQLite file.

Truths: votes posted here are counted and mapped to arena labels by hand in
the test; the leaderboard is compared with ``bradley.leaderboard`` run on the
export; tokens are checked against SHA-256 computed here; concurrency is a
real uvicorn server on loopback hit by simultaneous identical POSTs.
"""

from __future__ import annotations

import hashlib
import json
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")
pytest.importorskip("alembic")
httpx = pytest.importorskip("httpx")
sa = pytest.importorskip("sqlalchemy")

from fastapi.testclient import TestClient  # noqa: E402

import bradley  # noqa: E402
from bradley.serve import app as serve_app  # noqa: E402
from bradley.serve.app import create_app  # noqa: E402

ADMIN = "admin-token-for-tests-0123456789abcdef"
SYSTEMS = ["alpha", "beta", "gamma"]
PROMPTS = ["p1", "p2", "p3", "p4"]
ARENA = {"left": "model_a", "right": "model_b", "tie": "tie", "both_bad": "tie (bothbad)"}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(autouse=True)
def _fresh_leaderboard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serve_app, "LEADERBOARD_MIN_INTERVAL_S", 0.0)
    monkeypatch.setattr(serve_app, "SAMPLER_MIN_INTERVAL_S", 0.0)


def make_project(client: Any, slug: str = "demo", public: bool = True) -> None:
    r = client.post("/api/projects", json={"slug": slug, "name": "Demo", "public_leaderboard": public},
                    headers=auth(ADMIN))
    assert r.status_code == 201, r.text
    outputs = [{"system": s, "prompt": p, "text": f"{s} answers {p}"} for s in SYSTEMS for p in PROMPTS]
    r = client.post(f"/api/projects/{slug}/outputs", json={"outputs": outputs}, headers=auth(ADMIN))
    assert r.json() == {"added": len(outputs)}


def add_annotator(client: Any, slug: str, name: str, max_votes: int | None = None) -> str:
    r = client.post(f"/api/projects/{slug}/annotators", json={"name": name, "max_votes": max_votes},
                    headers=auth(ADMIN))
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "arena.db"


@pytest.fixture
def client(db_path: Path) -> TestClient:
    return TestClient(create_app(f"sqlite:///{db_path}", admin_token=ADMIN))


def vote_all(client: TestClient, slug: str, token: str, prefer: str = "alpha") -> list[dict]:
    """Vote until 204: ``prefer`` wins when shown; otherwise left/right/tie/both_bad in turn."""
    cycle = ["left", "right", "tie", "both_bad"]
    acked = []
    for i in range(200):
        nxt = client.get(f"/api/projects/{slug}/next", headers=auth(token))
        if nxt.status_code == 204:
            break
        assert nxt.status_code == 200, nxt.text
        pair = nxt.json()
        assert set(pair) == {"pair_id", "prompt", "left", "right"}  # systems hidden until the vote
        left_text = pair["left"]["text"]
        outcome = "left" if left_text.startswith(prefer) else "right" if pair["right"]["text"].startswith(prefer) \
            else cycle[i % 4]
        r = client.post(f"/api/projects/{slug}/votes", json={"pair_id": pair["pair_id"], "outcome": outcome},
                        headers=auth(token))
        assert r.status_code == 201, r.text
        body = r.json()
        assert left_text.startswith(body["left_system"])
        acked.append({**body, "prompt": pair["prompt"]})
    return acked


def test_full_flow_leaderboard_and_export(client: TestClient, tmp_path: Path) -> None:
    make_project(client)
    assert client.get("/api/projects").json()[0]["n_systems"] == 3
    board0 = client.get("/api/projects/demo/leaderboard").json()
    assert board0["n_votes"] == 0 and board0["rows"] == []

    ann1 = add_annotator(client, "demo", "ann1", max_votes=5)
    ann2 = add_annotator(client, "demo", "ann2")
    first = vote_all(client, "demo", ann1)
    assert len(first) == 5  # the budget, then 204
    assert client.get("/api/me", headers=auth(ann1)).json() == {"name": "ann1", "project": "demo", "n_votes": 5,
                                                                  "remaining": 0}
    board1 = client.get("/api/projects/demo/leaderboard").json()
    assert board1["n_votes"] == 5

    second = vote_all(client, "demo", ann2)
    # every (prompt, system pair) once for ann2: 4 prompts x 3 pairs, never the same one twice
    assert len(second) == len(PROMPTS) * 3
    seen = {(v["prompt"], frozenset((v["left_system"], v["right_system"]))) for v in second}
    assert len(seen) == len(second)
    board2 = client.get("/api/projects/demo/leaderboard").json()
    assert board2["n_votes"] == 5 + len(second)
    assert board2["rows"][0]["system"] == "alpha"  # alpha won every battle it was in
    assert {r["system"] for r in board2["rows"]} == set(SYSTEMS)

    csv = client.get("/api/projects/demo/export?format=csv", headers=auth(ADMIN))
    assert csv.status_code == 200
    path = tmp_path / "battles.csv"
    path.write_text(csv.text)
    data = bradley.read_comparisons(path)
    assert len(data.left) == len(first) + len(second)
    import pandas as pd

    frame = pd.read_csv(path)
    acked = {v["vote_id"]: v for v in first + second}
    assert sorted(frame["vote_id"]) == sorted(acked)
    for row in frame.itertuples():
        v = acked[row.vote_id]
        assert (row.model_a, row.model_b, row.winner) == (v["left_system"], v["right_system"], ARENA[v["outcome"]])
    assert set(frame["judge"]) == {"ann1", "ann2"}

    # the served board is bradley.leaderboard on the export
    expected = bradley.leaderboard(frame[["model_a", "model_b", "winner"]], model=bradley.BradleyTerry(
        bias_reduction=True)) if _mle_missing(frame) else bradley.leaderboard(frame[["model_a", "model_b", "winner"]])
    got = {r["system"]: r["score"] for r in board2["rows"]}
    for row in expected.table.itertuples():
        assert got[row.item] == pytest.approx(row.score, abs=1e-9)

    # bradley leaderboard reads the export unchanged
    from bradley.cli import main

    assert main(["leaderboard", str(path), "--bias-reduction"]) == 0

    jsonl = client.get("/api/projects/demo/export?format=jsonl", headers=auth(ADMIN))
    jpath = tmp_path / "battles.jsonl"
    jpath.write_text(jsonl.text)
    assert len(pd.read_json(jpath, lines=True)) == len(acked)
    bradley.read_comparisons(jpath)


def _mle_missing(frame) -> bool:
    try:
        bradley.leaderboard(frame[["model_a", "model_b", "winner"]], ci="none")
    except bradley.errors.MLEDoesNotExistError:
        return True
    return False


def test_next_repeats_unanswered_pair_and_hides_systems(client: TestClient) -> None:
    make_project(client)
    token = add_annotator(client, "demo", "a")
    one = client.get("/api/projects/demo/next", headers=auth(token)).json()
    two = client.get("/api/projects/demo/next", headers=auth(token)).json()
    assert one == two
    assert "alpha" not in str(set(one) - {"left", "right"})


def test_auth_and_isolation(client: TestClient, db_path: Path) -> None:
    make_project(client)
    make_project_other = client.post("/api/projects", json={"slug": "other", "name": "Other",
                                                            "public_leaderboard": False}, headers=auth(ADMIN))
    assert make_project_other.status_code == 201
    a1 = add_annotator(client, "demo", "a1")
    a2 = add_annotator(client, "demo", "a2")
    b1 = add_annotator(client, "other", "b1")

    # admin endpoints: 401 without or with a wrong token, 403 with an annotator token
    for method, url, body in [("post", "/api/projects", {"slug": "x", "name": "X"}),
                              ("post", "/api/projects/demo/outputs", {"outputs": [{"system": "s", "text": "t"}]}),
                              ("post", "/api/projects/demo/annotators", {"name": "evil"}),
                              ("get", "/api/projects/demo/export", None)]:
        kwargs = {"json": body} if body is not None else {}
        assert client.request(method, url, **kwargs).status_code == 401
        assert client.request(method, url, headers=auth("not-a-token"), **kwargs).status_code == 401
        assert client.request(method, url, headers=auth(a1), **kwargs).status_code == 403
        assert client.request(method, url, headers={"Authorization": f"Basic {ADMIN}"}, **kwargs).status_code == 401

    # annotator endpoints need an annotator token of that project
    assert client.get("/api/projects/demo/next").status_code == 401
    assert client.get("/api/projects/demo/next", headers=auth(ADMIN)).status_code == 401
    assert client.get("/api/projects/demo/next", headers=auth(b1)).status_code == 403
    pair = client.get("/api/projects/demo/next", headers=auth(a1)).json()
    # a2 can neither vote on nor learn about a1's pair; a1's pair cannot be changed through another project
    r = client.post("/api/projects/demo/votes", json={"pair_id": pair["pair_id"], "outcome": "left"}, headers=auth(a2))
    assert r.status_code == 404
    r = client.post("/api/projects/other/votes", json={"pair_id": pair["pair_id"], "outcome": "left"},
                    headers=auth(b1))
    assert r.status_code == 404
    r = client.post("/api/projects/demo/votes", json={"pair_id": pair["pair_id"], "outcome": "right"},
                    headers=auth(a1))
    assert r.status_code == 201
    r = client.post("/api/projects/demo/votes", json={"pair_id": pair["pair_id"], "outcome": "left"}, headers=auth(a2))
    assert r.status_code == 404  # still not a2's, and a1's vote is unchanged
    assert client.get("/api/me", headers=auth(a2)).json()["n_votes"] == 0
    # a private project's leaderboard and listing: admin only
    assert client.get("/api/projects/other/leaderboard").status_code == 401
    assert client.get("/api/projects/other/leaderboard", headers=auth(b1)).status_code == 403
    assert client.get("/api/projects/other/leaderboard", headers=auth(ADMIN)).status_code == 200
    assert [p["slug"] for p in client.get("/api/projects").json()] == ["demo"]
    assert [p["slug"] for p in client.get("/api/projects", headers=auth(ADMIN)).json()] == ["demo", "other"]

    # tokens are stored as SHA-256 digests only
    raw = db_path.read_bytes() + (db_path.with_name(db_path.name + "-wal").read_bytes()
                                  if db_path.with_name(db_path.name + "-wal").exists() else b"")
    for token in (a1, a2, b1, ADMIN):
        assert token.encode() not in raw
    with sqlite3.connect(db_path) as conn:
        hashes = {h for (h,) in conn.execute("select token_hash from annotators")}
        admin_hash = conn.execute("select value from settings where key='admin_token_hash'").fetchone()[0]
    assert hashes == {hashlib.sha256(t.encode()).hexdigest() for t in (a1, a2, b1)}
    assert admin_hash == hashlib.sha256(ADMIN.encode()).hexdigest()


def test_generated_admin_token_is_printed_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gen.db'}"
    said: list[str] = []
    app = create_app(url, announce=said.append)
    token = app.state.generated_admin_token
    assert token and len(said) == 1 and token in said[0]
    again: list[str] = []
    app2 = create_app(url, announce=again.append)  # restart: the stored hash is kept, nothing printed
    assert again == [] and app2.state.generated_admin_token is None
    r = TestClient(app2).post("/api/projects", json={"slug": "s", "name": "S"}, headers=auth(token))
    assert r.status_code == 201


def test_validation_and_size_limits(client: TestClient) -> None:
    make_project(client)
    bad = [
        ("/api/projects", {"slug": "Bad Slug", "name": "x"}),
        ("/api/projects", {"slug": "-x", "name": "x"}),
        ("/api/projects", {"slug": "ok", "name": ""}),
        ("/api/projects", {"slug": "ok", "name": "x", "surprise": 1}),
        ("/api/projects/demo/outputs", {"outputs": []}),
        ("/api/projects/demo/outputs", {"outputs": [{"system": "s"}]}),  # neither text nor image
        ("/api/projects/demo/outputs", {"outputs": [{"system": "s", "text": "x" * (serve_app.MAX_TEXT_CHARS + 1)}]}),
        ("/api/projects/demo/outputs", {"outputs": [{"system": "s", "image_url": "javascript:alert(1)"}]}),
        ("/api/projects/demo/outputs",
         {"outputs": [{"system": "s", "text": "t"}] * (serve_app.MAX_OUTPUTS_PER_REQUEST + 1)}),
        ("/api/projects/demo/annotators", {"name": "a", "max_votes": -1}),
    ]
    for url, body in bad:
        r = client.post(url, json=body, headers=auth(ADMIN))
        assert r.status_code == 422, (url, r.text)
        assert isinstance(r.json()["detail"], str)
    big = {"outputs": [{"system": "s", "text": "x" * 40_000}] * 120}  # ~4.8 MB
    r = client.post("/api/projects/demo/outputs", json=big, headers=auth(ADMIN))
    assert r.status_code == 413
    token = add_annotator(client, "demo", "a")
    for body in [{"pair_id": "x", "outcome": "maybe"}, {"pair_id": "", "outcome": "left"},
                 {"pair_id": "../../etc", "outcome": "left"}, {"outcome": "left"}]:
        assert client.post("/api/projects/demo/votes", json=body, headers=auth(token)).status_code == 422
    assert client.post("/api/projects", json={"slug": "demo", "name": "again"}, headers=auth(ADMIN)).status_code == 409
    # a missing project looks like a private one to a non-admin (401): existence is not leaked; the admin gets 404
    assert client.get("/api/projects/nope/leaderboard").status_code == 401
    assert client.get("/api/projects/nope/leaderboard", headers=auth(token)).status_code == 403
    assert client.get("/api/projects/nope/leaderboard", headers=auth(ADMIN)).status_code == 404


def test_duplicate_vote_is_idempotent(client: TestClient) -> None:
    make_project(client)
    token = add_annotator(client, "demo", "a")
    pair = client.get("/api/projects/demo/next", headers=auth(token)).json()
    body = {"pair_id": pair["pair_id"], "outcome": "tie"}
    r1 = client.post("/api/projects/demo/votes", json=body, headers=auth(token))
    r2 = client.post("/api/projects/demo/votes", json=body, headers=auth(token))
    assert (r1.status_code, r2.status_code) == (201, 200)
    assert r1.json() == r2.json()
    r3 = client.post("/api/projects/demo/votes", json={**body, "outcome": "left"}, headers=auth(token))
    assert r3.status_code == 409
    assert client.get("/api/me", headers=auth(token)).json()["n_votes"] == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_concurrent_identical_votes_store_one(db_path: Path) -> None:
    """Simultaneous identical POSTs on a real loopback server: one 201, the rest 200 with the same vote."""
    concurrent_duplicates(f"sqlite:///{db_path}")
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("select count(*), count(distinct assignment_id) from votes").fetchone() == (3, 3)


def concurrent_duplicates(url: str, rounds: int = 3, posters: int = 8) -> None:
    uvicorn = pytest.importorskip("uvicorn")
    app = create_app(url, admin_token=ADMIN)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 20
        while not server.started and time.time() < deadline:
            time.sleep(0.05)
        with httpx.Client(base_url=base, timeout=30) as client:
            make_project(client)
            token = add_annotator(client, "demo", "a")
            for _ in range(rounds):
                pair = client.get("/api/projects/demo/next", headers=auth(token)).json()
                body = {"pair_id": pair["pair_id"], "outcome": "left"}
                barrier = threading.Barrier(posters)

                def post(_: int, body: dict = body, barrier: threading.Barrier = barrier) -> tuple[int, int]:
                    with httpx.Client(base_url=base, timeout=30) as c:
                        barrier.wait()
                        r = c.post("/api/projects/demo/votes", json=body, headers=auth(token))
                        return r.status_code, r.json()["vote_id"]

                with ThreadPoolExecutor(posters) as pool:
                    results = list(pool.map(post, range(posters)))
                codes = sorted(code for code, _ in results)
                assert codes == [200] * (posters - 1) + [201]
                assert len({vid for _, vid in results}) == 1
            assert client.get("/api/me", headers=auth(token)).json()["n_votes"] == rounds
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_cli_serve_parses_and_reports_bad_databases(capsys: pytest.CaptureFixture[str]) -> None:
    from bradley.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["serve", "--help"])
    assert exc.value.code == 0
    assert "--admin-token" in capsys.readouterr().out
    assert main(["serve", "--db", "sqlite://"]) == 2  # in-memory: votes would vanish
    assert "SQLite file" in capsys.readouterr().err
    assert main(["serve", "--db", "postgresql+psycopg://u:hunter2@127.0.0.1:1/x"]) == 2
    err = capsys.readouterr().err
    assert "hunter2" not in err and "***" in err  # no secrets in messages


def test_pairs_come_from_the_active_sampler_with_exclusions(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in sampler that always prefers alpha-gamma: served until this annotator has judged it on
    every prompt, then the batch/next_pairs are asked with that pair excluded."""
    calls: list[set] = []

    class Preferring:
        def __init__(self, strategy: str) -> None:
            assert strategy == "information"

        def fit(self, data: Any, items: list[str]) -> Preferring:
            assert sorted(items) == SYSTEMS
            return self

        def next_pairs(self, n: int, exclude: Any = None) -> list[tuple[str, str]]:
            calls.append(set(exclude or ()))
            pairs = [("alpha", "gamma"), ("beta", "gamma"), ("alpha", "beta")]
            return [p for p in pairs if frozenset(p) not in (exclude or set())][:n]

    monkeypatch.setattr(serve_app, "_load_sampler", lambda: Preferring)
    client = TestClient(create_app(f"sqlite:///{db_path}", admin_token=ADMIN))
    make_project(client)
    token = add_annotator(client, "demo", "a")
    served = []
    for _ in range(len(PROMPTS) + 1):
        pair = client.get("/api/projects/demo/next", headers=auth(token)).json()
        r = client.post("/api/projects/demo/votes", json={"pair_id": pair["pair_id"], "outcome": "left"},
                        headers=auth(token)).json()
        served.append(frozenset((r["left_system"], r["right_system"])))
    # the batch is [alpha-gamma, beta-gamma, alpha-beta] and requests take turns through it while it is fresh;
    # with a refit per request (interval 0) alpha-gamma is always first until it is used up on all prompts
    assert served[: len(PROMPTS)] == [frozenset(("alpha", "gamma"))] * len(PROMPTS)
    assert served[len(PROMPTS)] == frozenset(("beta", "gamma"))


# ---------------------------------------------------------------------------- performance paths (issue 16 item 4)

def test_group_commit_isolates_failing_jobs_and_shares_commits(db_path: Path) -> None:
    """Concurrent jobs share transactions (fewer commits than jobs); a job that raises leaves no row and does not
    disturb the others; each caller returns only after its rows are visible to a fresh connection."""
    from bradley.serve import db as serve_db

    engine = serve_db.make_engine(f"sqlite:///{db_path}")
    serve_db.migrate(engine)
    writer = serve_db.GroupCommit(engine)
    first = threading.Lock()

    def job(k: int) -> int:
        def run(conn: Any) -> int:
            if first.acquire(blocking=False):
                time.sleep(0.3)  # the first job holds its transaction open while the others queue behind it
            conn.execute(serve_db.settings.insert(), {"key": f"k{k}", "value": str(k)})
            if k % 5 == 0:
                raise ValueError(f"job {k} fails after its insert")
            return k
        try:
            result = writer.run(run)
        except ValueError:
            return -1
        with sqlite3.connect(db_path) as check:  # committed before run() returned
            assert check.execute("select value from settings where key = ?", (f"k{k}",)).fetchone() == (str(k),)
        return result

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(job, range(40)))
    assert results == [-1 if k % 5 == 0 else k for k in range(40)]
    with sqlite3.connect(db_path) as check:
        keys = {r[0] for r in check.execute("select key from settings where key like 'k%'")}
    assert keys == {f"k{k}" for k in range(40) if k % 5}
    assert writer.n_jobs == 40 and writer.n_commits < 40


def test_two_apps_on_one_database_share_annotators_and_history(db_path: Path) -> None:
    """The in-memory token and shown-pair caches of one process do not hide what another process wrote: an
    annotator added through app B is accepted by app A, and alternating A/B never shows a (prompt, pair) twice."""
    a = TestClient(create_app(f"sqlite:///{db_path}", admin_token=ADMIN))
    b = TestClient(create_app(f"sqlite:///{db_path}", admin_token=ADMIN))
    make_project(a)
    assert a.get("/api/me", headers=auth("not-a-token")).status_code == 401
    token = add_annotator(b, "demo", "ann")
    seen = []
    for i in range(len(PROMPTS) * 3 + 1):
        client = (a, b)[i % 2]
        nxt = client.get("/api/projects/demo/next", headers=auth(token))
        if nxt.status_code == 204:
            break
        r = client.post("/api/projects/demo/votes", json={"pair_id": nxt.json()["pair_id"], "outcome": "tie"},
                        headers=auth(token))
        assert r.status_code == 201, r.text
        seen.append((nxt.json()["prompt"], frozenset((r.json()["left_system"], r.json()["right_system"]))))
    assert len(seen) == len(PROMPTS) * 3 == len(set(seen))


def test_sampler_refit_runs_in_the_background(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a refit interval, a stale snapshot is served at once while a background thread refits it."""
    monkeypatch.setattr(serve_app, "SAMPLER_MIN_INTERVAL_S", 0.05)
    release, fits = threading.Event(), []

    class Slow:
        def __init__(self, strategy: str) -> None:
            pass

        def fit(self, data: Any, items: list[str]) -> Slow:
            fits.append(threading.current_thread().name)
            if len(fits) > 1:
                assert release.wait(10)
            return self

        def next_pairs(self, n: int, exclude: Any = None) -> list[tuple[str, str]]:
            pairs = [("alpha", "beta"), ("alpha", "gamma"), ("beta", "gamma")]
            return [p for p in pairs if frozenset(p) not in (exclude or set())][:n]

    monkeypatch.setattr(serve_app, "_load_sampler", lambda: Slow)
    client = TestClient(create_app(f"sqlite:///{db_path}", admin_token=ADMIN))
    make_project(client)
    token = add_annotator(client, "demo", "ann")
    pair = client.get("/api/projects/demo/next", headers=auth(token)).json()  # the first fit: inline
    r = client.post("/api/projects/demo/votes", json={"pair_id": pair["pair_id"], "outcome": "left"},
                    headers=auth(token))
    assert r.status_code == 201, r.text
    (snapshot,) = client.app.state.arena.snapshots.values()
    time.sleep(max(0.1, 20 * snapshot.fit_s + 0.05))  # stale: refits are spaced by 20 times the last fit's time
    t0 = time.perf_counter()
    assert client.get("/api/projects/demo/next", headers=auth(token)).status_code == 200
    assert time.perf_counter() - t0 < 5  # not blocked by the refit, which waits for `release`
    deadline = time.time() + 5
    while len(fits) < 2 and time.time() < deadline:
        time.sleep(0.01)
    assert len(fits) >= 2, fits
    assert fits[1] == "bradley-sampler-refit" and fits[0] != fits[1]
    release.set()


# ---------------------------------------------------------------------------- security and integrity (issue 16 item 3)

@contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` on a real uvicorn on loopback (requests run concurrently in its thread pool); yields the base URL."""
    uvicorn = pytest.importorskip("uvicorn")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.time() + 20
        while not server.started and time.time() < deadline:
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def slow_sampler(*args: Any, **kwargs: Any) -> list[tuple[str, str]]:
    time.sleep(0.3)  # every concurrent /next is past its read of the pending pair before any of them writes
    return serve_app._uniform_choose_pairs(*args, **kwargs)


def concurrent_next(url: str, callers: int = 6) -> None:
    """Simultaneous /next calls of one annotator (slow pair choice) all get the same, single assignment."""
    app = create_app(url, admin_token=ADMIN, sampler=slow_sampler)
    with serving(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        make_project(client)
        token = add_annotator(client, "demo", "a")
        for _ in range(2):
            barrier = threading.Barrier(callers)

            def call(_: int, barrier: threading.Barrier = barrier) -> str:
                with httpx.Client(base_url=base, timeout=30) as c:
                    barrier.wait()
                    r = c.get("/api/projects/demo/next", headers=auth(token))
                    assert r.status_code == 200, r.text
                    return str(r.json()["pair_id"])

            with ThreadPoolExecutor(callers) as pool:
                ids = set(pool.map(call, range(callers)))
            assert len(ids) == 1, ids
            r = client.post("/api/projects/demo/votes", json={"pair_id": ids.pop(), "outcome": "left"},
                            headers=auth(token))
            assert r.status_code == 201
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        n, pending = conn.execute(sa.text(
            "select count(*), count(*) - (select count(*) from votes) from assignments")).one()
    engine.dispose()
    assert (n, pending) == (2, 0)


def test_concurrent_next_of_one_annotator_assigns_one_pair(db_path: Path) -> None:
    concurrent_next(f"sqlite:///{db_path}")


def test_security_headers_and_no_swagger(client: TestClient) -> None:
    make_project(client)
    responses = [client.get("/api/projects"), client.get("/healthz"), client.get("/p/demo/vote"),
                 client.get("/api/projects/demo/next"),  # 401
                 client.post("/api/projects/demo/outputs", content=b"x" * (serve_app.MAX_BODY_BYTES + 1),
                             headers={**auth(ADMIN), "content-type": "application/json"}),  # 413
                 client.get("/api/openapi.json")]
    assert [r.status_code for r in responses][3:] == [401, 413, 200]
    for r in responses:
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        csp = {d.split()[0]: d.split()[1:] for d in r.headers["content-security-policy"].split("; ")}
        assert csp["default-src"] == ["'self'"] and csp["frame-ancestors"] == ["'none'"]
        assert csp["img-src"] == ["'self'", "http:", "https:", "data:"]
        assert csp["base-uri"] == ["'none'"] and csp["form-action"] == ["'self'"] and csp["object-src"] == ["'none'"]
    assert client.get("/api/docs").status_code == 404  # Swagger UI would need a CDN script: dropped


JSON_ADMIN = {**auth(ADMIN), "content-type": "application/json"}


def test_chunked_body_over_the_limit_is_413_and_never_reaches_the_app(client: TestClient) -> None:
    make_project(client)
    item = (json.dumps({"system": "zeta", "prompt": "p1", "text": "x" * 2000}) + ",").encode()

    def body(n: int) -> Iterator[bytes]:  # no Content-Length: sent chunked
        yield b'{"outputs": ['
        for _ in range(n):
            yield item
        yield b'{"system": "zeta", "text": "y"}]}'

    r = client.post("/api/projects/demo/outputs", content=body(3000), headers=JSON_ADMIN)  # ~6 MB
    assert r.status_code == 413, r.text
    assert "larger than" in r.json()["detail"]
    assert client.get("/api/projects").json()[0]["n_systems"] == len(SYSTEMS)  # nothing stored
    r = client.post("/api/projects/demo/outputs", content=body(5), headers=JSON_ADMIN)  # small: replayed whole
    assert r.status_code == 200 and r.json() == {"added": 6}, r.text
    assert client.get("/api/projects").json()[0]["n_systems"] == len(SYSTEMS) + 1


def test_admin_token_length_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    from bradley.cli import main

    url = f"sqlite:///{tmp_path / 'a.db'}"
    for bad in ("adm", "x" * 31, "x" * 257):
        with pytest.raises(ValueError, match="32 to 256 characters"):
            create_app(url, admin_token=bad)
        assert main(["serve", "--db", url, "--admin-token", bad]) == 2
        err = capsys.readouterr().err
        assert "32 to 256 characters" in err and err.count("\n") == 1
    monkeypatch.setenv("BRADLEY_ADMIN_TOKEN", "short")
    with pytest.raises(ValueError, match="32 to 256"):
        create_app(url)
    assert main(["serve", "--db", url]) == 2
    create_app(url, admin_token="x" * 32)  # the bounds themselves are fine
    create_app(url, admin_token="x" * 256)


def test_revoke_and_rotate_annotator_tokens(db_path: Path) -> None:
    url = f"sqlite:///{db_path}"
    client = TestClient(create_app(url, admin_token=ADMIN))
    other = TestClient(create_app(url, admin_token=ADMIN))  # another process: its token cache must not outlive it
    make_project(client)
    r = client.post("/api/projects/demo/annotators", json={"name": "ann"}, headers=auth(ADMIN))
    ann_id, token = r.json()["id"], r.json()["token"]
    assert isinstance(ann_id, int)
    for c in (client, other):  # both processes cache the token
        pair = c.get("/api/projects/demo/next", headers=auth(token)).json()
        assert c.post("/api/projects/demo/votes", json={"pair_id": pair["pair_id"], "outcome": "left"},
                      headers=auth(token)).status_code == 201
    pending = other.get("/api/projects/demo/next", headers=auth(token)).json()
    # only the admin may revoke; an unknown id or another project's annotator is 404
    assert client.post(f"/api/projects/demo/annotators/{ann_id}/revoke", headers=auth(token)).status_code == 403
    assert client.post(f"/api/projects/demo/annotators/{ann_id}/revoke").status_code == 401
    assert client.post("/api/projects/demo/annotators/999/revoke", headers=auth(ADMIN)).status_code == 404
    client.post("/api/projects", json={"slug": "two", "name": "Two"}, headers=auth(ADMIN))
    assert client.post(f"/api/projects/two/annotators/{ann_id}/revoke", headers=auth(ADMIN)).status_code == 404
    r = client.post(f"/api/projects/demo/annotators/{ann_id}/revoke", headers=auth(ADMIN))
    assert r.status_code == 200 and r.json() == {"id": ann_id, "name": "ann", "revoked": True}
    # the old token stops working at once in this process (cache evicted), and for writes in the other one
    assert client.get("/api/me", headers=auth(token)).status_code == 401
    assert client.get("/api/projects/demo/next", headers=auth(token)).status_code == 401
    r = other.post("/api/projects/demo/votes", json={"pair_id": pending["pair_id"], "outcome": "left"},
                   headers=auth(token))
    assert r.status_code == 401
    # votes are kept
    export = client.get("/api/projects/demo/export?format=jsonl", headers=auth(ADMIN)).text.splitlines()
    assert len(export) == 2 and all(json.loads(line)["judge"] == "ann" for line in export)
    # rotate: a new token for the same annotator (votes, budget and history kept); the previous one fails
    r = client.post(f"/api/projects/demo/annotators/{ann_id}/rotate", headers=auth(ADMIN))
    assert r.status_code == 200
    fresh = r.json()["token"]
    assert r.json()["id"] == ann_id and fresh != token
    assert client.get("/api/me", headers=auth(fresh)).json()["n_votes"] == 2
    assert client.get("/api/projects/demo/next", headers=auth(fresh)).json()["pair_id"] == pending["pair_id"]
    assert other.post("/api/projects/demo/votes", json={"pair_id": pending["pair_id"], "outcome": "right"},
                      headers=auth(fresh)).status_code == 201
    assert client.get("/api/me", headers=auth(token)).status_code == 401
    with sqlite3.connect(db_path) as conn:
        (digest,) = conn.execute("select token_hash from annotators where id = ?", (ann_id,)).fetchone()
    assert digest == hashlib.sha256(fresh.encode()).hexdigest()


def test_texts_round_trip_byte_exact_and_names_are_stripped(client: TestClient) -> None:
    client.post("/api/projects", json={"slug": " demo ", "name": "  Demo  "}, headers=auth(ADMIN))
    assert client.get("/api/projects").json()[0]["name"] == "Demo"
    code = "  def f():\n\tif x:\n        return 1  \n"
    prompt = "\n  Complete:\t "
    outputs = [{"system": "  alpha ", "prompt": prompt, "text": code},
               {"system": "beta\n", "prompt": prompt, "text": " plain \r\n"}]
    assert client.post("/api/projects/demo/outputs", json={"outputs": outputs}, headers=auth(ADMIN)).status_code == 200
    assert client.post("/api/projects/demo/outputs", json={"outputs": [{"system": "   ", "text": "t"}]},
                       headers=auth(ADMIN)).status_code == 422
    token = add_annotator(client, "demo", " ann ")
    pair = client.get("/api/projects/demo/next", headers=auth(token)).json()
    assert pair["prompt"] == prompt
    assert sorted([pair["left"]["text"], pair["right"]["text"]]) == sorted([code, " plain \r\n"])
    vote = client.post("/api/projects/demo/votes", json={"pair_id": pair["pair_id"], "outcome": "tie"},
                       headers=auth(token)).json()
    assert {vote["left_system"], vote["right_system"]} == {"alpha", "beta"}
    row = json.loads(client.get("/api/projects/demo/export?format=jsonl", headers=auth(ADMIN)).text)
    assert row["prompt"] == prompt and row["judge"] == "ann"


def test_csv_export_quotes_formula_cells_and_reads_back_to_the_same_board(client: TestClient, tmp_path: Path) -> None:
    import pandas as pd

    from bradley.cli import main

    client.post("/api/projects", json={"slug": "demo", "name": "Demo"}, headers=auth(ADMIN))
    prompts = ["=1+1", "+cmd", "-2", "@SUM(A1)", "\tx", "\rx", "plain"]
    outputs = [{"system": s, "prompt": p, "text": f"{s}: {p}"} for s in SYSTEMS for p in prompts]
    client.post("/api/projects/demo/outputs", json={"outputs": outputs}, headers=auth(ADMIN))
    judges = ['=HYPERLINK("http://e")', "ann"]
    for judge in judges:
        vote_all(client, "demo", add_annotator(client, "demo", judge))
    csv_path, jsonl_path = tmp_path / "b.csv", tmp_path / "b.jsonl"
    csv_path.write_text(client.get("/api/projects/demo/export?format=csv", headers=auth(ADMIN)).text)
    jsonl_path.write_text(client.get("/api/projects/demo/export?format=jsonl", headers=auth(ADMIN)).text)
    frame_csv = pd.read_csv(csv_path, keep_default_na=False)
    frame_json = pd.read_json(jsonl_path, lines=True)
    assert len(frame_csv) == len(frame_json) == 2 * 3 * len(prompts)
    risky = ("=", "+", "-", "@", "\t", "\r")
    for col in ("judge", "prompt"):
        expected = ["'" + v if v.startswith(risky) else v for v in frame_json[col]]
        assert list(frame_csv[col]) == expected
    assert set(frame_json["judge"]) == set(judges) and set(frame_json["prompt"]) == set(prompts)  # JSONL verbatim
    cols = ["model_a", "model_b", "winner"]
    board_csv = bradley.leaderboard(frame_csv[cols], model=bradley.BradleyTerry(bias_reduction=True))
    board_json = bradley.leaderboard(frame_json[cols], model=bradley.BradleyTerry(bias_reduction=True))
    assert list(board_csv.table["item"]) == list(board_json.table["item"])
    assert list(board_csv.table["score"]) == pytest.approx(list(board_json.table["score"]), abs=1e-12)
    assert main(["leaderboard", str(csv_path), "--bias-reduction"]) == 0


def _writer(db_path: Path, **kwargs: Any) -> Any:
    from bradley.serve import db as serve_db

    engine = serve_db.make_engine(f"sqlite:///{db_path}")
    serve_db.migrate(engine)
    return serve_db.GroupCommit(engine, **kwargs)


def _settings_keys(db_path: Path) -> set[str]:
    with sqlite3.connect(db_path) as check:
        return {r[0] for r in check.execute("select key from settings where key like 'g%'")}


def test_group_commit_failure_fails_every_job_of_the_batch(db_path: Path) -> None:
    """A job whose deferred foreign-key violation only surfaces at COMMIT shares a batch with two good jobs: the
    commit fails, so all three callers get the error and none of their rows is stored; the writer keeps working."""
    from bradley.serve import db as serve_db

    writer = _writer(db_path)
    gate = threading.Event()

    def blocker(conn: Any) -> str:  # holds the writer while the three jobs queue into one batch
        gate.wait(5)
        return "blocker"

    def good(k: int) -> Any:
        def job(conn: Any) -> int:
            conn.execute(serve_db.settings.insert(), {"key": f"g{k}", "value": "1"})
            return k
        return job

    def bad(conn: Any) -> str:
        conn.exec_driver_sql("PRAGMA defer_foreign_keys=ON")
        conn.exec_driver_sql("insert into votes (assignment_id, project_id, annotator_id, outcome, created_at)"
                             " values (999, 999, 999, 'left', 0)")  # no such rows: fails at COMMIT, not here
        return "bad"

    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(writer.run, blocker)
        time.sleep(0.2)
        batch = [pool.submit(writer.run, job) for job in (good(1), bad, good(2))]
        time.sleep(0.2)
        gate.set()
        assert first.result(timeout=10) == "blocker"
        for future in batch:
            with pytest.raises(sa.exc.IntegrityError, match="FOREIGN KEY"):
                future.result(timeout=10)
    assert _settings_keys(db_path) == set()
    with sqlite3.connect(db_path) as check:
        assert check.execute("select count(*) from votes").fetchone() == (0,)
    assert writer.run(good(3)) == 3 and _settings_keys(db_path) == {"g3"}


def test_group_commit_writer_death_fails_waiting_jobs_and_recovers(db_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A BaseException in a job kills the writer thread: its caller and the jobs queued behind it get a WriterError
    (before the fix they waited forever), nothing of the batch is stored, and the next write starts a new thread.
    A thread that cannot be started raises in run() and leaves no job behind; a caller never waits past the
    result timeout."""
    from bradley.serve import db as serve_db

    writer = _writer(db_path)
    gate = threading.Event()

    def boom(conn: Any) -> None:
        conn.execute(serve_db.settings.insert(), {"key": "g-boom", "value": "1"})
        gate.wait(5)
        raise KeyboardInterrupt

    def insert(key: str) -> Any:
        return lambda conn: conn.execute(serve_db.settings.insert(), {"key": key, "value": "1"}).rowcount

    monkeypatch.setattr(threading, "excepthook", lambda args: None)  # the dying thread's traceback
    with ThreadPoolExecutor(3) as pool:
        dying = pool.submit(writer.run, boom)
        time.sleep(0.2)
        queued = [pool.submit(writer.run, insert("g-queued")), pool.submit(writer.run, insert("g-queued2"))]
        time.sleep(0.1)
        gate.set()
        for future in [dying, *queued]:
            with pytest.raises(serve_db.WriterError, match="KeyboardInterrupt"):
                future.result(timeout=10)
    assert _settings_keys(db_path) == set()
    assert writer.run(insert("g-after")) == 1 and _settings_keys(db_path) == {"g-after"}

    # Thread.start failing: the error reaches the caller, the job is not left queued, the next run works
    writer._thread = None  # (as after the idle exit)
    real_start = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda self: (_ for _ in ()).throw(RuntimeError("no thread")))
    with pytest.raises(RuntimeError, match="no thread"):
        writer.run(insert("g-never"))
    assert writer._pending == [] and writer._thread is None
    monkeypatch.setattr(threading.Thread, "start", real_start)
    assert writer.run(insert("g-next")) == 1
    assert _settings_keys(db_path) == {"g-after", "g-next"}

    # no caller waits past result_timeout_s: a job still queued then never runs; a running one may still commit
    slow = _writer(db_path, result_timeout_s=0.3)
    release = threading.Event()

    def hold(conn: Any) -> None:
        release.wait(5)
        insert("g-held")(conn)

    with ThreadPoolExecutor(1) as pool:
        holder = pool.submit(slow.run, hold)
        time.sleep(0.1)
        with pytest.raises(serve_db.WriterError, match="not run"):
            slow.run(insert("g-late"))
        with pytest.raises(serve_db.WriterError, match="may still be committed"):
            holder.result(timeout=10)
        release.set()
    assert slow.run(insert("g-last")) == 1
    assert _settings_keys(db_path) == {"g-after", "g-next", "g-held", "g-last"}


def test_lookup_read_before_a_rotation_does_not_cache_the_old_token(db_path: Path) -> None:
    """A token lookup that read the annotator row before a rotation finishes after it: the old token is not put
    back in the cache, so it is refused at once (it was served for the TTL before the fix)."""
    app = create_app(f"sqlite:///{db_path}", admin_token=ADMIN)
    client = TestClient(app)
    make_project(client)
    r = client.post("/api/projects/demo/annotators", json={"name": "ann"}, headers=auth(ADMIN))
    ann_id, token = r.json()["id"], r.json()["token"]
    armed, read_done, go = threading.Event(), threading.Event(), threading.Event()

    def pause_lookup(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if armed.is_set() and "annotators.token_hash =" in statement and "JOIN projects" in statement:
            armed.clear()
            read_done.set()
            go.wait(10)

    sa.event.listen(app.state.arena.engine, "after_cursor_execute", pause_lookup)
    armed.set()
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(TestClient(app).get, "/api/me", headers=auth(token))
        assert read_done.wait(10)  # the lookup has read the row with the old token's digest
        rotated = client.post(f"/api/projects/demo/annotators/{ann_id}/rotate", headers=auth(ADMIN))
        assert rotated.status_code == 200
        go.set()
        assert slow.result(timeout=10).status_code == 200  # ordered before the rotation
    assert client.get("/api/me", headers=auth(token)).status_code == 401
    assert client.get("/api/me", headers=auth(rotated.json()["token"])).status_code == 200
