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
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

__all__ = ["metadata", "settings", "projects", "outputs", "annotators", "assignments", "votes", "files",
           "make_engine", "transaction", "migrate", "GroupCommit", "WriterError", "RETRYABLE_SQLSTATES",
           "MIGRATIONS_DIR"]

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

# uploaded images, stored in the database itself (a backup of the database is a backup of everything);
# ``file_id`` is random (not the hash: knowing an image must not reveal its id), one row per project and content
files = sa.Table(
    "files", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("file_id", sa.String(64), nullable=False, unique=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("content_type", sa.String(32), nullable=False),
    sa.Column("bytes", sa.Integer, nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.UniqueConstraint("project_id", "sha256", name="uq_files_project_sha256"),
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
        cursor.execute("PRAGMA synchronous=FULL")  # fsync at each commit: an acknowledged vote survives power loss
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


#: SQLSTATEs of a transient conflict between transactions: deadlock detected, serialization failure
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})


class WriterError(RuntimeError):
    """The database writer could not run a write job (its thread died, or no answer within the timeout)."""


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a driver error (``exc`` itself, SQLAlchemy's ``.orig`` or the cause), if any."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        for attr in ("sqlstate", "pgcode"):  # psycopg 3, psycopg2
            code = getattr(current, attr, None)
            if isinstance(code, str):
                return code
        orig = getattr(current, "orig", None)
        todo += [orig if isinstance(orig, BaseException) else None, current.__cause__]
    return None


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

    A job that fails with a transient conflict (SQLSTATE ``40P01`` deadlock or
    ``40001`` serialization failure, e.g. two processes' batches locking the
    same annotator rows in different orders on PostgreSQL) is rolled back to
    its savepoint and run again, up to ``max_retries`` times, at the head of
    the *next* transaction: the locks its batch-mates hold are released by
    then, so the conflict cannot recur with the same partner. If the writer
    thread dies (a ``BaseException`` in a job), every job it had accepted
    gets a :class:`WriterError` and the next :meth:`run` starts a new thread;
    :meth:`run` never waits longer than ``result_timeout_s``.

    Examples
    --------
    >>> import os, tempfile
    >>> engine = make_engine("sqlite:///" + os.path.join(tempfile.mkdtemp(), "g.db"))
    >>> GroupCommit(engine).run(lambda conn: conn.exec_driver_sql("select 40 + 2").scalar())
    42
    """

    def __init__(self, engine: Engine, max_batch: int = 256, idle_s: float = 5.0, max_retries: int = 3,
                 result_timeout_s: float = 300.0) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.idle_s = idle_s
        self.max_retries = max_retries
        self.result_timeout_s = result_timeout_s
        self.n_commits = 0
        self.n_jobs = 0
        self.n_retries = 0
        # (job, its future, how many times it has been retried)
        self._pending: list[tuple[Callable[[Connection], Any], Future[Any], int]] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def run(self, job: Callable[[Connection], T]) -> T:
        """Run ``job(conn)`` in a write transaction; returns once that transaction is committed.

        Raises :class:`WriterError` if the writer thread died or no answer came within ``result_timeout_s``.
        """
        future: Future[T] = Future()
        entry = (job, future, 0)
        with self._cond:
            self._pending.append(entry)
            if self._thread is None:
                thread = threading.Thread(target=self._loop, name="bradley-group-commit", daemon=True)
                try:
                    thread.start()
                except BaseException:
                    self._pending.remove(entry)
                    raise
                self._thread = thread
            self._cond.notify()
        try:
            return future.result(timeout=self.result_timeout_s)
        except FutureTimeout:
            if future.cancel():  # still queued: it will never run
                raise WriterError(f"the database writer did not take this write within {self.result_timeout_s:g} s;"
                                  " it was not run") from None
            raise WriterError(f"the database writer did not finish this write within {self.result_timeout_s:g} s;"
                              " it may still be committed") from None

    def _loop(self) -> None:
        batch: list[tuple[Callable[[Connection], Any], Future[Any], int]] = []
        try:
            while True:
                with self._cond:
                    if not self._pending:
                        self._cond.wait(self.idle_s)
                        if not self._pending:
                            self._thread = None
                            return
                    batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch:]
                # a job whose caller gave up (timeout) is dropped; a retried one is already running
                batch = [e for e in batch if e[2] > 0 or e[1].set_running_or_notify_cancel()]
                self._run_batch(batch)
                batch = []
        except BaseException as exc:  # the thread dies: nobody may wait for it
            with self._cond:
                orphans, self._pending = batch + self._pending, []
                if self._thread is threading.current_thread():
                    self._thread = None
            error = WriterError(f"the database writer thread died ({type(exc).__name__}: {exc}); the write was "
                                "not committed, retry it")
            error.__cause__ = exc
            for _job, future, _n in orphans:
                if not future.done():
                    future.set_exception(error)
            raise

    def _run_batch(self, batch: list[tuple[Callable[[Connection], Any], Future[Any], int]]) -> None:
        done: list[tuple[Future[Any], bool, Any]] = []
        retry: list[tuple[Callable[[Connection], Any], Future[Any], int]] = []
        try:
            with transaction(self.engine, write=True) as conn:
                for job, future, n_retried in batch:
                    savepoint = conn.begin_nested()
                    try:
                        value = job(conn)
                    except Exception as exc:  # the job's own failure: undone, handed to its caller
                        savepoint.rollback()
                        if _sqlstate(exc) in RETRYABLE_SQLSTATES and n_retried < self.max_retries:
                            retry.append((job, future, n_retried + 1))
                        else:
                            done.append((future, False, exc))
                    else:
                        savepoint.commit()
                        done.append((future, True, value))
        except Exception as exc:  # begin or commit failed: no job of the batch is durable
            self._requeue(retry)
            for _job, future, _n in batch:
                if not future.done() and not any(future is f for _j, f, _r in retry):
                    future.set_exception(exc)
            return
        self._requeue(retry)
        self.n_commits += 1
        self.n_jobs += len(batch) - len(retry)
        for future, ok, value in done:
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def _requeue(self, retry: list[tuple[Callable[[Connection], Any], Future[Any], int]]) -> None:
        """Put jobs that met a transient conflict at the head of the queue: the next transaction runs them first."""
        if retry:
            with self._cond:
                self._pending[:0] = retry
            self.n_retries += len(retry)
