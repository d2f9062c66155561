"""Database layer of the arena service: tables, engine set-up, migrations.

SQLAlchemy Core tables mirror the Alembic migrations in
``bradley/serve/migrations`` (applied by :func:`migrate` on start). SQLite
files run in WAL mode with a busy timeout; transactions opened with the
execution option ``write=True`` (see :func:`transaction`) start with ``BEGIN
IMMEDIATE`` so concurrent writers queue on the lock instead of failing when a
read transaction tries to upgrade, while readers never wait; PostgreSQL is used
through psycopg 3.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

__all__ = ["metadata", "settings", "projects", "outputs", "annotators", "assignments", "votes",
           "make_engine", "transaction", "migrate", "GroupCommit", "MIGRATIONS_DIR"]

T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000

metadata = sa.MetaData()

settings = sa.Table(
    "settings", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(256), nullable=False),
)

projects = sa.Table(
    "projects", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("slug", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("public_leaderboard", sa.Boolean, nullable=False, default=True),
    sa.Column("created_at", sa.Float, nullable=False),
)

outputs = sa.Table(
    "outputs", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False, index=True),
    sa.Column("system", sa.String(200), nullable=False),
    sa.Column("prompt", sa.Text, nullable=False, default=""),
    sa.Column("text", sa.Text, nullable=True),
    sa.Column("image_url", sa.String(2048), nullable=True),
)

annotators = sa.Table(
    "annotators", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("max_votes", sa.Integer, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
)

assignments = sa.Table(
    "assignments", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("pair_id", sa.String(64), nullable=False, unique=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("annotator_id", sa.Integer, sa.ForeignKey("annotators.id"), nullable=False, index=True),
    sa.Column("prompt", sa.Text, nullable=False),
    sa.Column("left_output_id", sa.Integer, sa.ForeignKey("outputs.id"), nullable=False),
    sa.Column("right_output_id", sa.Integer, sa.ForeignKey("outputs.id"), nullable=False),
    sa.Column("left_system", sa.String(200), nullable=False),
    sa.Column("right_system", sa.String(200), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

votes = sa.Table(
    "votes", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    # one vote per assignment: the database itself makes a duplicate submission idempotent
    sa.Column("assignment_id", sa.Integer, sa.ForeignKey("assignments.id"), nullable=False, unique=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False, index=True),
    sa.Column("annotator_id", sa.Integer, sa.ForeignKey("annotators.id"), nullable=False, index=True),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)


def make_engine(url: str) -> Engine:
    """An engine for ``url``: SQLite (WAL, busy timeout, ``BEGIN IMMEDIATE``) or any SQLAlchemy URL."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    if parsed.database in (None, "", ":memory:"):
        raise ValueError("bradley serve needs a SQLite file (sqlite:///path.db), not an in-memory database")
    engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                                                 "check_same_thread": False},
                              pool_size=20, max_overflow=20)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # transactions are begun explicitly below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=FULL")  # an acknowledged vote survives a crash of the process or machine
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")

    return engine


@contextmanager
def transaction(engine: Engine, write: bool = False) -> Iterator[Connection]:
    """A connection inside a transaction, committed on exit (rolled back on an exception).

    ``write=True`` takes SQLite's write lock up front (``BEGIN IMMEDIATE``).
    """
    with engine.connect() as conn:
        if write:
            conn.execution_options(write=True)
        with conn.begin():
            yield conn


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (``alembic upgrade head``)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with transaction(engine, write=True) as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class GroupCommit:
    """Write jobs run on one thread, many to a transaction (group commit): one ``fsync`` for a whole batch.

    :meth:`run` queues ``job(conn)`` and blocks until the transaction that
    ran it has been *committed*, then returns the job's result (or raises
    its exception). Each job runs inside a savepoint, so a job that raises
    (an HTTP error, an ``IntegrityError``) leaves no trace and does not
    disturb the other jobs of its batch. If the commit itself fails, every
    job of the batch gets that exception: nothing is acknowledged that is
    not durable. With ``synchronous=FULL`` a commit costs one ``fsync`` under
    SQLite's write lock; under concurrent load the jobs queued meanwhile share
    the next one. The thread exits after ``idle_s`` without work and is
    restarted on demand.

    Examples
    --------
    >>> import os, tempfile
    >>> engine = make_engine("sqlite:///" + os.path.join(tempfile.mkdtemp(), "g.db"))
    >>> GroupCommit(engine).run(lambda conn: conn.exec_driver_sql("select 40 + 2").scalar())
    42
    """

    def __init__(self, engine: Engine, max_batch: int = 256, idle_s: float = 5.0) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.idle_s = idle_s
        self.n_commits = 0
        self.n_jobs = 0
        self._pending: list[tuple[Callable[[Connection], Any], Future[Any]]] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def run(self, job: Callable[[Connection], T]) -> T:
        """Run ``job(conn)`` in a write transaction; returns once that transaction is committed."""
        future: Future[T] = Future()
        with self._cond:
            self._pending.append((job, future))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="bradley-group-commit", daemon=True)
                self._thread.start()
            self._cond.notify()
        return future.result()

    def _loop(self) -> None:
        while True:
            with self._cond:
                if not self._pending:
                    self._cond.wait(self.idle_s)
                    if not self._pending:
                        self._thread = None
                        return
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch:]
            done: list[tuple[Future[Any], bool, Any]] = []
            try:
                with transaction(self.engine, write=True) as conn:
                    for job, future in batch:
                        savepoint = conn.begin_nested()
                        try:
                            value = job(conn)
                        except Exception as exc:  # the job's own failure: undone, handed to its caller
                            savepoint.rollback()
                            done.append((future, False, exc))
                        else:
                            savepoint.commit()
                            done.append((future, True, value))
            except Exception as exc:  # begin or commit failed: no job of the batch is durable
                for _job, future in batch:
                    future.set_exception(exc)
                continue
            self.n_commits += 1
            self.n_jobs += len(batch)
            for future, ok, value in done:
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
