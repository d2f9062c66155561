"""The arena on a throwaway PostgreSQL 15: migrations, the full flow, concurrent duplicate votes.

The server is made with ``initdb`` + ``pg_ctl`` from /usr/lib/postgresql/15/bin
in a temporary directory, listening on a free loopback port (and a socket in
that directory), and stopped in the fixture's teardown. PostgreSQL refuses to
run as root, so as root it runs as ``nobody`` through ``runuser``. Skipped,
with the reason, when the binaries or psycopg are missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("psycopg")
pytest.importorskip("alembic")
sa = pytest.importorskip("sqlalchemy")

from fastapi.testclient import TestClient  # noqa: E402
from test_serve_api import (  # noqa: E402
    ADMIN,
    PROMPTS,
    add_annotator,
    auth,
    concurrent_duplicates,
    concurrent_next,
    make_project,
    vote_all,
)

import bradley  # noqa: E402
from bradley.serve import app as serve_app  # noqa: E402
from bradley.serve.app import create_app  # noqa: E402

PG_BIN = Path(os.environ.get("BRADLEY_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def pg_server() -> Iterator[str]:
    """A PostgreSQL server for this module; yields a SQLAlchemy URL base (no database name)."""
    if not (PG_BIN / "initdb").exists() or not (PG_BIN / "pg_ctl").exists():
        pytest.skip(f"PostgreSQL binaries not found in {PG_BIN} (set BRADLEY_PG_BIN)")
    as_root = os.geteuid() == 0
    if as_root and shutil.which("runuser") is None:
        pytest.skip("running as root and runuser is missing: PostgreSQL will not run as root")
    prefix = ["runuser", "-u", "nobody", "--"] if as_root else []
    base = Path(tempfile.mkdtemp(prefix="bradley-pg-"))
    data, log = base / "data", base / "server.log"
    if as_root:
        os.chmod(base, 0o755)
        shutil.chown(base, user="nobody")
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    run = dict(check=True, capture_output=True, text=True, timeout=120, env=env, cwd=base)
    port = _free_port()
    started = False
    try:
        subprocess.run([*prefix, str(PG_BIN / "initdb"), "-D", str(data), "-U", "arena", "--auth=trust",
                        "--no-sync", "-E", "UTF8"], **run)
        opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
        subprocess.run([*prefix, str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", opts, "-w",
                        "-t", "60", "start"], **run)
        started = True
        yield f"postgresql+psycopg://arena@127.0.0.1:{port}"
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"could not start PostgreSQL: {exc.stderr.strip()[-300:]}")
    finally:
        if started:
            subprocess.run([*prefix, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, timeout=60, env=env, cwd=base)
        shutil.rmtree(base, ignore_errors=True)


def _database(server: str, name: str) -> str:
    engine = sa.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return f"{server}/{name}"


@pytest.fixture(autouse=True)
def _fresh_leaderboard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serve_app, "LEADERBOARD_MIN_INTERVAL_S", 0.0)


def test_migrations_create_schema_and_are_idempotent(pg_server: str) -> None:
    url = _database(pg_server, "mig")
    create_app(url, admin_token=ADMIN)
    create_app(url, admin_token=ADMIN)  # a restart: upgrade head is a no-op
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("select version_num from alembic_version").scalar() == "0002"
        tables = set(sa.inspect(conn).get_table_names())
        uniques = {tuple(u["column_names"]) for u in sa.inspect(conn).get_unique_constraints("votes")}
    engine.dispose()
    assert {"projects", "outputs", "annotators", "assignments", "votes", "settings", "files"} <= tables
    assert ("assignment_id",) in uniques


def test_full_flow_on_postgres(pg_server: str, tmp_path: Path) -> None:
    client = TestClient(create_app(_database(pg_server, "flow"), admin_token=ADMIN))
    make_project(client)
    a1 = add_annotator(client, "demo", "a1", max_votes=4)
    a2 = add_annotator(client, "demo", "a2")
    first, second = vote_all(client, "demo", a1), vote_all(client, "demo", a2)
    assert len(first) == 4 and len(second) == 3 * len(PROMPTS)
    board = client.get("/api/projects/demo/leaderboard").json()
    assert board["n_votes"] == 4 + 3 * len(PROMPTS) and board["rows"][0]["system"] == "alpha"
    # isolation holds on this backend too
    pair = client.get("/api/projects/demo/next", headers=auth(a1))
    assert pair.status_code == 204
    assert client.get("/api/projects/demo/export", headers=auth(a1)).status_code == 403
    path = tmp_path / "battles.csv"
    path.write_text(client.get("/api/projects/demo/export", headers=auth(ADMIN)).text)
    data = bradley.read_comparisons(path)
    assert len(data.left) == len(first) + len(second)
    from bradley.cli import main

    assert main(["leaderboard", str(path), "--bias-reduction"]) == 0


def test_concurrent_identical_votes_on_postgres(pg_server: str) -> None:
    """Here the unique constraint, not a database-wide write lock, decides the race."""
    url = _database(pg_server, "race")
    concurrent_duplicates(url, rounds=4, posters=8)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        n, distinct = conn.exec_driver_sql("select count(*), count(distinct assignment_id) from votes").one()
    engine.dispose()
    assert (n, distinct) == (4, 4)


def test_concurrent_next_on_postgres(pg_server: str) -> None:
    """Simultaneous /next calls of one annotator: the annotator row lock makes them share one assignment."""
    concurrent_next(_database(pg_server, "nextrace"))


def test_concurrent_votes_cannot_exceed_the_budget_on_postgres(pg_server: str) -> None:
    """Two processes (apps with their own connections) vote at once for one annotator with max_votes=1 on two
    pending pairs; the budget count is slowed down so that, without the row lock, both would count 0 votes under
    READ COMMITTED. With it: one 201, one 403, one vote stored."""
    url = _database(pg_server, "budget")
    apps = [create_app(url, admin_token=ADMIN), create_app(url, admin_token=ADMIN, migrate=False)]

    def slow_count(conn, cursor, statement, params, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().lower().startswith("select count(*)") and "from votes" in statement.lower():
            time.sleep(0.3)

    for app in apps:
        sa.event.listen(app.state.arena.engine, "after_cursor_execute", slow_count)
    a, b = TestClient(apps[0]), TestClient(apps[1])
    make_project(a)
    for round_ in range(2):
        token = add_annotator(a, "demo", f"ann{round_}", max_votes=1)
        first = a.get("/api/projects/demo/next", headers=auth(token)).json()
        engine = sa.create_engine(url)
        with engine.begin() as conn:  # a second pending pair (as an older server without the /next lock made)
            conn.exec_driver_sql(
                "insert into assignments (pair_id, project_id, annotator_id, prompt, left_output_id, right_output_id,"
                " left_system, right_system, created_at) select pair_id || 'b', project_id, annotator_id, prompt,"
                " left_output_id, right_output_id, left_system, right_system, created_at from assignments"
                " where pair_id = %(p)s", {"p": first["pair_id"]})
        engine.dispose()
        barrier = threading.Barrier(2)

        def post(k: int, token: str = token, pair_id: str = first["pair_id"],
                 barrier: threading.Barrier = barrier) -> int:
            client = (a, b)[k]
            barrier.wait()
            return client.post("/api/projects/demo/votes", json={"pair_id": pair_id + ("", "b")[k],
                                                                 "outcome": "left"}, headers=auth(token)).status_code

        with ThreadPoolExecutor(2) as pool:
            codes = sorted(pool.map(post, range(2)))
        assert codes == [201, 403]
        assert a.get("/api/me", headers=auth(token)).json()["n_votes"] == 1


def test_deadlocked_batches_are_retried_on_postgres(pg_server: str) -> None:
    """Two processes' writers (one engine each) run batches that lock rows 1 and 2 in opposite orders: PostgreSQL
    aborts one job with a deadlock (40P01); it is retried in its writer's next transaction, so every job succeeds
    exactly once (without the retry one caller gets the DeadlockDetected error, i.e. a 500)."""
    from bradley.serve import db

    url = _database(pg_server, "deadlock")
    setup = sa.create_engine(url)
    with setup.begin() as conn:
        conn.exec_driver_sql("create table t (id int primary key, n int not null)")
        conn.exec_driver_sql("insert into t values (1, 0), (2, 0)")
    writers = [db.GroupCommit(db.make_engine(url)), db.GroupCommit(db.make_engine(url))]

    def lock(row: int, pause: float) -> Any:
        def job(conn: Any) -> int:
            conn.exec_driver_sql(f"select n from t where id = {row} for update")
            time.sleep(pause)
            conn.exec_driver_sql(f"update t set n = n + 1 where id = {row}")
            return row
        return job

    with ThreadPoolExecutor(8) as pool:
        # each writer busy for 0.3 s, so that the next two jobs of each land in one batch
        busy = [pool.submit(w.run, lambda conn: time.sleep(0.3)) for w in writers]
        time.sleep(0.1)
        first = [pool.submit(writers[0].run, lock(1, 0.5)), pool.submit(writers[1].run, lock(2, 0.5))]
        time.sleep(0.05)
        second = [pool.submit(writers[0].run, lock(2, 0)), pool.submit(writers[1].run, lock(1, 0))]
        results = [f.result(timeout=30) for f in [*busy, *first, *second]]
    assert results[2:] == [1, 2, 2, 1]
    assert sum(w.n_retries for w in writers) >= 1, "no deadlock happened: the test did not exercise the retry"
    with setup.connect() as conn:
        assert conn.exec_driver_sql("select id, n from t order by id").all() == [(1, 2), (2, 2)]
    setup.dispose()
    for w in writers:
        w.engine.dispose()
