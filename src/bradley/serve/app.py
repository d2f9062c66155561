"""The arena web application: JSON API, static pages, live leaderboard.

Build it with :func:`create_app` and run it with any ASGI server (``bradley
serve`` uses uvicorn). The API is described in ``docs/serve-api.md``.
"""

import csv
import hashlib
import hmac
import logging
import math
import os
import random
import re
import secrets
import sys
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
import sqlalchemy as sa
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from bradley.serve import db
from bradley.serve.security import bearer_token, check_admin_token, hash_token, new_token, token_matches

__all__ = ["create_app", "ARENA_WINNER", "MAX_BODY_BYTES", "MAX_FILE_BYTES", "MAX_OUTPUTS_PER_REQUEST",
           "MAX_TEXT_CHARS", "IMAGE_TYPES", "FILE_URL_TTL_S", "sniff_image"]

_log = logging.getLogger("bradley.serve")
STATIC_DIR = Path(__file__).parent / "static"
SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_OUTPUTS_PER_REQUEST = 1000
MAX_TEXT_CHARS = 50_000
MAX_PROMPT_CHARS = 20_000
MAX_NAME_CHARS = 200
LEADERBOARD_MIN_INTERVAL_S = 2.0
SAMPLER_MIN_INTERVAL_S = 1.0
SAMPLER_BATCH = 8
ADMIN_KEY = "admin_token_hash"
FILE_KEY = "file_url_key"  # the HMAC key of the signed file URLs handed to annotators (random, made on first start)
MAX_FILE_BYTES = 4 * 1024 * 1024  # an uploaded image (the request body limit is checked first, and is not lower)
FILE_URL_TTL_S = 3600  # a signed file URL is valid for 1 to 2 times this (its expiry is rounded up to a multiple)
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")
FILE_URL_PATTERN = re.compile(r"^/files/([A-Za-z0-9_-]{16,64})$")
TOKEN_CACHE_TTL_S = 10.0  # a cached annotator token is re-read after this (revocation through another process)
CSV_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' http: https: data:; frame-ancestors 'none'; "
                           "base-uri 'none'; form-action 'self'; object-src 'none'")

# uploaded files: opened directly (not through <img>) they are a sandboxed document that loads nothing
FILE_CONTENT_SECURITY_POLICY = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"

# vote outcome -> arena ``winner`` label (left = model_a)
ARENA_WINNER = {"left": "model_a", "right": "model_b", "tie": "tie", "both_bad": "tie (bothbad)"}
Outcome = Literal["left", "right", "tie", "both_bad"]


# ---------------------------------------------------------------------------- uploaded files

def sniff_image(data: bytes) -> str | None:
    """The image type of ``data`` read from its magic bytes: PNG, JPEG, WebP or GIF (else None).

    Examples
    --------
    >>> sniff_image(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(8))
    'image/png'
    >>> sniff_image(b"<svg xmlns='http://www.w3.org/2000/svg'/>") is None
    True
    """
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _file_signature(key: bytes, file_id: str, expires: int) -> str:
    return hmac.new(key, f"{file_id}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header (a list of entity tags, or ``*``) matches ``etag`` (weak comparison)."""
    if not if_none_match:
        return False
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def _signed_file_url(key: bytes, url: str | None, now: float | None = None) -> str | None:
    """``/files/<id>`` with ``?exp=&sig=`` appended (other URLs unchanged); the expiry is rounded up to the next
    ``FILE_URL_TTL_S`` boundary plus one, so that URLs repeat within a window and the browser cache is reused."""
    if url is None or FILE_URL_PATTERN.match(url) is None:
        return url
    expires = (int((time.time() if now is None else now) // FILE_URL_TTL_S) + 2) * FILE_URL_TTL_S
    return f"{url}?exp={expires}&sig={_file_signature(key, url[len('/files/'):], expires)}"


def _setup_file_key(engine: Engine) -> bytes:
    """The HMAC key of signed file URLs, shared by all processes through the settings table."""
    for _attempt in range(2):
        try:
            with db.transaction(engine, write=True) as conn:
                stored = conn.execute(sa.select(db.settings.c.value).where(db.settings.c.key == FILE_KEY)).scalar()
                if stored is None:
                    stored = secrets.token_hex(32)
                    conn.execute(db.settings.insert().values(key=FILE_KEY, value=stored))
                return bytes.fromhex(stored)
        except IntegrityError:  # another process made it at the same time: read theirs
            continue
    raise RuntimeError("could not set up the file URL key")


# ---------------------------------------------------------------------------- request bodies

class _Body(BaseModel):
    # no global str_strip_whitespace: prompts and output texts are stored byte-exact (code keeps its indentation)
    model_config = ConfigDict(extra="forbid")


# names (systems, projects, annotators) and slugs are stripped of surrounding whitespace; nothing else is
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME_CHARS)]
Slug = Annotated[str, StringConstraints(strip_whitespace=True, pattern=SLUG_PATTERN, max_length=64)]


class ProjectIn(_Body):
    slug: Slug
    name: Name
    description: str = Field(default="", max_length=5000)
    public_leaderboard: bool = True


class OutputIn(_Body):
    system: Name
    prompt: str = Field(default="", max_length=MAX_PROMPT_CHARS)
    text: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    image_url: str | None = Field(default=None, max_length=2048, pattern=r"^(https?://|/)\S+$")


class OutputsIn(_Body):
    outputs: list[OutputIn] = Field(min_length=1, max_length=MAX_OUTPUTS_PER_REQUEST)


class AnnotatorIn(_Body):
    name: Name
    max_votes: int | None = Field(default=None, ge=0, le=10_000_000)


class VoteIn(_Body):
    pair_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    outcome: Outcome


# ---------------------------------------------------------------------------- middleware

class BodySizeLimit:
    """ASGI middleware answering 413 to request bodies over ``limit`` bytes (declared or streamed).

    A declared ``Content-Length`` over the limit is refused before anything is read. Otherwise (e.g. a chunked
    upload) the body is read and counted here first: past the limit the answer is 413 and the application is
    never called; within it the buffered body is handed to the application in one message.
    """

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = self.limit + 1
                if declared > self.limit:
                    await _too_large(send, self.limit)
                    return
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let the application see it
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.limit:
                await _too_large(send, self.limit)
                return
            if chunk:
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}], receive), send)


def _replay(messages: list[Any], receive: Any) -> Any:
    """An ASGI ``receive`` giving ``messages`` first, then the server's own (e.g. ``http.disconnect``)."""
    queue = list(messages)

    async def replay() -> Any:
        if queue:
            return queue.pop(0)
        return await receive()

    return replay


class SecurityHeaders:
    """ASGI middleware adding ``X-Content-Type-Options``, ``Referrer-Policy`` and the CSP to every response
    (a header the response sets itself, like the stricter CSP of uploaded files, is kept instead)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.extra = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                      (b"content-security-policy", CONTENT_SECURITY_POLICY.encode())]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _value in headers}
                message = {**message, "headers": [*headers, *(h for h in self.extra if h[0] not in present)]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _too_large(send: Any, limit: int) -> None:
    body = f'{{"detail": "request body larger than {limit} bytes"}}'.encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


# ---------------------------------------------------------------------------- caches

@dataclass
class _Structure:
    """A project's outputs: prompt -> system -> output ids (cached while the output count is unchanged)."""

    n_outputs: int
    by_prompt: dict[str, dict[str, list[int]]]
    systems: list[str]
    shared: dict[frozenset[str], list[str]]  # system pair -> prompts where both have an output
    content: dict[int, tuple[str | None, str | None]]  # output id -> (text, image_url)
    checked_at: float = 0.0


@dataclass
class _Snapshot:
    """The sampler's view of a project's votes, refitted at most every ``SAMPLER_MIN_INTERVAL_S``."""

    n_votes: int
    at: float
    data: Any
    item_counts: dict[str, int]
    sampler: Any  # a fitted bradley.active.ActiveSampler, or None (a plain chooser function is used)
    batch: list[frozenset[str]]  # the sampler's greedy batch: requests between refits cycle through it
    fit_s: float = 0.0  # how long the fit took (refits are spaced by at least 20 times this)
    cursor: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class _Board:
    n_votes: int
    at: float
    payload: dict[str, Any]


@dataclass
class _State:
    engine: Engine
    choose: Callable[..., list[tuple[str, str]]]
    sampler_class: Any = None  # bradley.active.ActiveSampler when present and no chooser was given
    structures: dict[int, _Structure] = field(default_factory=dict)
    snapshots: dict[int, _Snapshot] = field(default_factory=dict)
    boards: dict[int, _Board] = field(default_factory=dict)
    locks: dict[tuple[str, int], threading.Lock] = field(default_factory=dict)
    guard: threading.Lock = field(default_factory=threading.Lock)
    writer: db.GroupCommit | None = None  # votes and assignments: group commit (one fsync per batch)
    annotators: dict[str, "_Annotator"] = field(default_factory=dict)  # token digest -> annotator (under guard)
    # token rotations in this process: a counter, and annotator id -> its value at the annotator's last rotation;
    # a lookup that began before an annotator's rotation does not cache what it read (guard held for both)
    n_forgets: int = 0
    forgotten_at: dict[int, int] = field(default_factory=dict)
    refitting: set[int] = field(default_factory=set)  # projects whose sampler is being refitted
    judged: dict[int, tuple[int, set[tuple[str, frozenset[str]]]]] = field(default_factory=dict)
    file_key: bytes = b""  # HMAC key of the signed file URLs (settings table)

    def lock(self, kind: str, project_id: int) -> threading.Lock:
        with self.guard:
            return self.locks.setdefault((kind, project_id), threading.Lock())


def _uniform_choose_pairs(data: Any, items: Any, n: int = 1, *, strategy: str = "uniform",
                          exclude: Any = None, item_counts: Any = None, max_per_item: Any = None,
                          rng: Any = None) -> list[tuple[str, str]]:
    """Uniform random pairs with the signature of ``bradley.active.choose_pairs`` (used when it is absent)."""
    names = list(items)
    excluded = set(exclude or ())
    counts = dict(item_counts or {})
    candidates = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]
                  if frozenset((a, b)) not in excluded
                  and (max_per_item is None or (counts.get(a, 0) < max_per_item and counts.get(b, 0) < max_per_item))]
    chooser = rng if isinstance(rng, random.Random) else random.Random(rng if isinstance(rng, int) else None)
    chooser.shuffle(candidates)
    return candidates[:n]


def _load_sampler() -> Any:
    try:
        from bradley.active import ActiveSampler
    except ImportError:
        return None
    return ActiveSampler


# ---------------------------------------------------------------------------- application

def create_app(db_url: str, admin_token: str | None = None, *, migrate: bool = True,
               sampler: Callable[..., list[tuple[str, str]]] | None = None,
               announce: Callable[[str], None] | None = None) -> FastAPI:
    """Build the arena application on the database at ``db_url``.

    Parameters
    ----------
    db_url : str
        SQLAlchemy URL: ``sqlite:///votes.db`` (a file) or
        ``postgresql+psycopg://user@host/dbname``.
    admin_token : str, optional
        The admin's bearer token; default the ``BRADLEY_ADMIN_TOKEN``
        environment variable, else the one stored (hashed) by an earlier
        start, else a new one printed once through ``announce`` (stderr).
        A given token must be 32 to 256 characters long (else ValueError).
    migrate : bool
        Apply the Alembic migrations (``upgrade head``) first.
    sampler : callable, optional
        Pair chooser with the signature of ``bradley.active.choose_pairs``,
        called per request. Default: ``bradley.active.ActiveSampler``
        ("information" strategy) refitted in a background thread at most once
        a second (and at most 5% of the time), requests cycling through its
        greedy batch of pairs; uniform random pairs if ``bradley.active`` is
        absent.

    Examples
    --------
    >>> import tempfile, os
    >>> from fastapi.testclient import TestClient
    >>> path = os.path.join(tempfile.mkdtemp(), "arena.db")
    >>> admin = "secret-admin-token-of-32-characters-or-more"
    >>> app = create_app(f"sqlite:///{path}", admin_token=admin)
    >>> client = TestClient(app)
    >>> client.get("/healthz").json()
    {'status': 'ok'}
    >>> client.post("/api/projects", json={"slug": "demo", "name": "Demo"},
    ...             headers={"Authorization": f"Bearer {admin}"}).status_code
    201
    """
    engine = db.make_engine(db_url)
    if migrate:
        db.migrate(engine)
    token = admin_token or os.environ.get("BRADLEY_ADMIN_TOKEN") or None
    if token is not None:
        check_admin_token(token)  # ValueError: too short to be a secret (or longer than a bearer token may be)
    generated = _setup_admin(engine, token)
    if generated is not None:
        (announce or _stderr)(f"bradley serve: admin token (shown once, stored hashed): {generated}")
    state = _State(engine=engine, choose=sampler or _uniform_choose_pairs,
                   sampler_class=None if sampler is not None else _load_sampler(), writer=db.GroupCommit(engine),
                   file_key=_setup_file_key(engine))

    # no /api/docs: Swagger UI loads scripts from a CDN, which the Content-Security-Policy forbids
    app = FastAPI(title="bradley arena", version="1", docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json")
    app.state.arena = state
    app.state.generated_admin_token = generated
    app.add_middleware(BodySizeLimit, limit=MAX_BODY_BYTES)
    app.add_middleware(SecurityHeaders)  # outermost of the two: the 413s carry the headers too

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg", "invalid")))
        return JSONResponse({"detail": "; ".join(parts) or "invalid request"}, status_code=422)

    _add_pages(app)
    _add_api(app, state)
    return app


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _setup_admin(engine: Engine, token: str | None) -> str | None:
    """Store the admin token's hash; returns a newly generated token (to show once) or None."""
    with db.transaction(engine, write=True) as conn:
        stored = conn.execute(sa.select(db.settings.c.value).where(db.settings.c.key == ADMIN_KEY)).scalar()
        generated = None
        if token is None:
            if stored is not None:
                return None
            token = generated = new_token()
        digest = hash_token(token)
        if stored is None:
            conn.execute(db.settings.insert().values(key=ADMIN_KEY, value=digest))
        elif stored != digest:
            conn.execute(db.settings.update().where(db.settings.c.key == ADMIN_KEY).values(value=digest))
    return generated


def _add_pages(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")

    def page(name: str) -> Callable[..., Any]:
        def serve_page() -> Response:
            path = STATIC_DIR / name
            if not path.is_file():
                raise HTTPException(404, f"page {name} is not installed")
            return FileResponse(path, media_type="text/html")
        return serve_page

    app.get("/", include_in_schema=False)(page("index.html"))
    app.get("/admin", include_in_schema=False)(page("admin.html"))
    app.get("/p/{slug}/vote", include_in_schema=False)(page("vote.html"))
    app.get("/p/{slug}/leaderboard", include_in_schema=False)(page("leaderboard.html"))


# ---------------------------------------------------------------------------- API

# the hot paths' statements, built once (SQLAlchemy then only looks up their compiled form)
_SELECT_ANNOTATOR = (
    sa.select(db.annotators.c.id, db.annotators.c.name, db.annotators.c.project_id, db.annotators.c.max_votes,
              db.annotators.c.token_hash, db.projects.c.slug)
    .join(db.projects, db.projects.c.id == db.annotators.c.project_id)
    .where(db.annotators.c.token_hash == sa.bindparam("digest")))
_SELECT_PENDING = (
    sa.select(db.assignments)
    .outerjoin(db.votes, db.votes.c.assignment_id == db.assignments.c.id)
    .where(db.assignments.c.annotator_id == sa.bindparam("annotator_id"), db.votes.c.id.is_(None))
    .order_by(db.assignments.c.id).limit(1))
_COUNT_MINE = (sa.select(sa.func.count()).select_from(db.assignments)
               .where(db.assignments.c.annotator_id == sa.bindparam("annotator_id")))
_SELECT_JUDGED = (sa.select(db.assignments.c.prompt, db.assignments.c.left_system, db.assignments.c.right_system)
                  .where(db.assignments.c.annotator_id == sa.bindparam("annotator_id")))
_SELECT_PAIR = (
    sa.select(db.assignments, db.votes.c.id.label("vote_id"))
    .outerjoin(db.votes, db.votes.c.assignment_id == db.assignments.c.id)
    .where(db.assignments.c.pair_id == sa.bindparam("pair_id")))
_SELECT_VOTE_OF = sa.select(db.votes).where(db.votes.c.assignment_id == sa.bindparam("assignment_id"))
_INSERT_ASSIGNMENT = db.assignments.insert()
_INSERT_VOTE = db.votes.insert().returning(db.votes.c.id)


@dataclass
class _Annotator:
    id: int
    name: str
    project_id: int
    slug: str
    max_votes: int | None
    digest: str  # SHA-256 of the token it was found by: a write job checks that it is still the annotator's
    at: float = 0.0  # when it was read from the database (cache entries older than TOKEN_CACHE_TTL_S are reread)


# the first statement of a vote or assignment job: locks the annotator's row (PostgreSQL; a no-op on SQLite,
# where BEGIN IMMEDIATE already serialises writers) and reads its current token digest (revocation)
_LOCK_ANNOTATOR = (sa.select(db.annotators.c.token_hash).where(db.annotators.c.id == sa.bindparam("annotator_id"))
                   .with_for_update())


def _add_api(app: FastAPI, state: _State) -> None:
    engine = state.engine

    def tx(write: bool = False) -> AbstractContextManager[Connection]:
        return db.transaction(engine, write)

    writer = state.writer or db.GroupCommit(engine)

    def write(job: Callable[[Connection], Any]) -> Any:
        """``job(conn)`` in a write transaction shared with concurrent requests; returns after the commit."""
        return writer.run(job)

    def admin_digest() -> str | None:
        with tx() as conn:
            return conn.execute(sa.select(db.settings.c.value).where(db.settings.c.key == ADMIN_KEY)).scalar()

    def is_admin(request: Request) -> bool:
        token = bearer_token(request.headers.get("authorization"))
        digest = admin_digest()
        return token is not None and digest is not None and token_matches(token, digest)

    def require_admin(request: Request) -> None:
        if is_admin(request):
            return
        token = bearer_token(request.headers.get("authorization"))
        if token is not None and _find_annotator(token) is not None:
            raise HTTPException(403, "this endpoint needs the admin token")
        raise HTTPException(401, "admin token required (Authorization: Bearer <token>)",
                            headers={"WWW-Authenticate": "Bearer"})

    def _find_annotator(token: str) -> _Annotator | None:
        # known digests are served from memory for TOKEN_CACHE_TTL_S (a revocation in this process evicts them at
        # once; one through another process is seen by every write job at once and by reads within the TTL);
        # unknown ones always ask the database (another process may have added them)
        digest = hash_token(token)
        cached = state.annotators.get(digest)
        now = time.time()
        if cached is not None and now - cached.at < TOKEN_CACHE_TTL_S:
            return cached
        with state.guard:
            started = state.n_forgets
        with tx() as conn:
            row = conn.execute(_SELECT_ANNOTATOR, {"digest": digest}).first()
        if row is None or not token_matches(token, row.token_hash):
            with state.guard:
                state.annotators.pop(digest, None)
            return None
        annotator = _Annotator(row.id, row.name, row.project_id, row.slug, row.max_votes, digest, now)
        with state.guard:
            # a rotation of this annotator since the read began may have made the row stale: served (the request
            # is ordered before the rotation; write jobs recheck the digest) but not cached
            if state.forgotten_at.get(annotator.id, -1) <= started:
                state.annotators[digest] = annotator
        return annotator

    def forget_annotator(annotator_id: int) -> None:
        with state.guard:
            state.n_forgets += 1
            state.forgotten_at[annotator_id] = state.n_forgets
            for digest in [d for d, a in state.annotators.items() if a.id == annotator_id]:
                del state.annotators[digest]

    def lock_annotator(conn: Connection, annotator: _Annotator) -> None:
        """First statement of a write job: lock the annotator's row; 401 if the token was revoked meanwhile."""
        current = conn.execute(_LOCK_ANNOTATOR, {"annotator_id": annotator.id}).scalar()
        if current is None or current != annotator.digest:
            with state.guard:
                state.annotators.pop(annotator.digest, None)
            raise HTTPException(401, "annotator token required (Authorization: Bearer <token>)",
                                headers={"WWW-Authenticate": "Bearer"})

    def require_annotator(slug: str, request: Request) -> _Annotator:
        token = bearer_token(request.headers.get("authorization"))
        annotator = _find_annotator(token) if token is not None else None
        if annotator is None:
            raise HTTPException(401, "annotator token required (Authorization: Bearer <token>)",
                                headers={"WWW-Authenticate": "Bearer"})
        if annotator.slug != slug:
            raise HTTPException(403, "this token belongs to another project")
        return annotator

    def annotator_me(request: Request) -> _Annotator:
        token = bearer_token(request.headers.get("authorization"))
        annotator = _find_annotator(token) if token is not None else None
        if annotator is None:
            raise HTTPException(401, "annotator token required (Authorization: Bearer <token>)",
                                headers={"WWW-Authenticate": "Bearer"})
        return annotator

    AnnotatorOf = Annotated[_Annotator, Depends(require_annotator)]
    Me = Annotated[_Annotator, Depends(annotator_me)]

    def project_row(conn: Connection, slug: str) -> Any:
        row = conn.execute(sa.select(db.projects).where(db.projects.c.slug == slug)).first()
        if row is None:
            raise HTTPException(404, f"no project {slug!r}")
        return row

    def n_votes_of(conn: Connection, *, project_id: int | None = None, annotator_id: int | None = None) -> int:
        q = sa.select(sa.func.count()).select_from(db.votes)
        if project_id is not None:
            q = q.where(db.votes.c.project_id == project_id)
        if annotator_id is not None:
            q = q.where(db.votes.c.annotator_id == annotator_id)
        return int(conn.execute(q).scalar_one())

    def project_json(row: Any, conn: Connection) -> dict[str, Any]:
        n_systems = conn.execute(sa.select(sa.func.count(sa.distinct(db.outputs.c.system)))
                                 .where(db.outputs.c.project_id == row.id)).scalar_one()
        return {"slug": row.slug, "name": row.name, "description": row.description,
                "public_leaderboard": bool(row.public_leaderboard), "n_systems": int(n_systems),
                "n_votes": n_votes_of(conn, project_id=row.id)}

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        with tx() as conn:
            conn.execute(sa.select(1))
        return {"status": "ok"}

    @app.post("/api/projects", status_code=201, dependencies=[Depends(require_admin)])
    def create_project(body: ProjectIn) -> dict[str, Any]:
        try:
            with tx(write=True) as conn:
                conn.execute(db.projects.insert().values(
                    slug=body.slug, name=body.name, description=body.description,
                    public_leaderboard=body.public_leaderboard, created_at=time.time()))
                return project_json(project_row(conn, body.slug), conn)
        except IntegrityError:
            raise HTTPException(409, f"project {body.slug!r} exists") from None

    @app.get("/api/projects")
    def list_projects(request: Request) -> list[dict[str, Any]]:
        admin = is_admin(request)
        with tx() as conn:
            rows = conn.execute(sa.select(db.projects).order_by(db.projects.c.id)).all()
            return [project_json(r, conn) for r in rows if admin or r.public_leaderboard]

    @app.post("/api/projects/{slug}/outputs", dependencies=[Depends(require_admin)])
    def add_outputs(slug: str, body: OutputsIn) -> dict[str, int]:
        for i, out in enumerate(body.outputs):
            if out.text is None and out.image_url is None:
                raise HTTPException(422, f"outputs.{i}: give text or image_url")
        with tx(write=True) as conn:
            project = project_row(conn, slug)
            check_file_urls(conn, project.id, body.outputs)
            conn.execute(db.outputs.insert(), [
                {"project_id": project.id, "system": o.system, "prompt": o.prompt, "text": o.text,
                 "image_url": o.image_url} for o in body.outputs])
        return {"added": len(body.outputs)}

    def check_file_urls(conn: Connection, project_id: int, items: list[OutputIn]) -> None:
        """422 for an ``image_url`` under ``/files/`` that is not a file uploaded to this project."""
        wanted: dict[str, int] = {}
        for i, out in enumerate(items):
            url = out.image_url
            if url is None or url.startswith(("http://", "https://")):
                continue
            # any other (relative) URL must be exactly /files/<file_id>: no percent-escapes, dot segments or
            # //host, which a browser would resolve to a file of another project after this check
            match = FILE_URL_PATTERN.match(url)
            if match is None:
                raise HTTPException(422, f"outputs.{i}.image_url: a relative URL must be exactly /files/<file_id> "
                                         "(an uploaded file); other images need an http(s):// URL")
            wanted.setdefault(match.group(1), i)
        if not wanted:
            return
        found = set(conn.execute(sa.select(db.files.c.file_id).where(
            db.files.c.file_id.in_(list(wanted)), db.files.c.project_id == project_id)).scalars())
        for file_id, i in wanted.items():
            if file_id not in found:
                raise HTTPException(422, f"outputs.{i}.image_url: no uploaded file {file_id} in this project")

    def present(url: str | None) -> str | None:
        return _signed_file_url(state.file_key, url)

    def store_file(slug: str, data: bytes, content_type: str, name: str) -> JSONResponse:
        digest = hashlib.sha256(data).hexdigest()
        f = db.files
        columns = (f.c.file_id, f.c.sha256, f.c.bytes, f.c.content_type, f.c.name)

        def payload(row: Any, created: bool) -> JSONResponse:
            return JSONResponse({"file_id": row.file_id, "url": f"/files/{row.file_id}", "sha256": row.sha256,
                                 "bytes": int(row.bytes), "content_type": row.content_type, "name": row.name,
                                 "deduplicated": not created}, status_code=201 if created else 200)

        for _attempt in range(2):
            try:
                with tx(write=True) as conn:
                    project = project_row(conn, slug)
                    row = conn.execute(sa.select(*columns).where(f.c.project_id == project.id,
                                                                 f.c.sha256 == digest)).first()
                    if row is not None:
                        return payload(row, False)
                    conn.execute(f.insert().values(
                        file_id=new_token()[:32], project_id=project.id, sha256=digest, content_type=content_type,
                        bytes=len(data), name=name, data=data, created_at=time.time()))
                    row = conn.execute(sa.select(*columns).where(f.c.project_id == project.id,
                                                                 f.c.sha256 == digest)).one()
                    return payload(row, True)
            except IntegrityError:  # the same content uploaded at the same time by another request: theirs is read
                continue
        raise HTTPException(409, "the same file is being uploaded concurrently; retry")

    @app.post("/api/projects/{slug}/files", status_code=201, dependencies=[Depends(require_admin)],
              response_model=None)
    async def upload_file(slug: str, request: Request,
                          name: Annotated[str, Query(max_length=MAX_NAME_CHARS)] = "") -> JSONResponse:
        declared = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if declared == "image/svg+xml":
            raise HTTPException(415, "SVG images are refused (they can carry script); upload PNG, JPEG, WebP or GIF")
        if declared not in IMAGE_TYPES:
            raise HTTPException(415, f"Content-Type {declared or '(none)'!r} is not accepted: send the raw image "
                                     f"bytes as one of {', '.join(IMAGE_TYPES)}")
        data = await request.body()
        if len(data) > MAX_FILE_BYTES:
            raise HTTPException(413, f"file larger than {MAX_FILE_BYTES} bytes")
        if not data:
            raise HTTPException(422, "empty file")
        sniffed = sniff_image(data)
        if sniffed != declared:
            raise HTTPException(415, f"the content is not {declared} (its first bytes are "
                                     f"{'those of ' + sniffed if sniffed else 'no PNG, JPEG, WebP or GIF'})")
        return await run_in_threadpool(store_file, slug, data, declared, name.strip())

    @app.get("/files/{file_id}", include_in_schema=False)
    def get_file(file_id: str, request: Request, exp: int | None = None, sig: str | None = None) -> Response:
        f, p = db.files, db.projects
        with tx() as conn:  # metadata only: the bytes are read once the request is allowed
            row = conn.execute(sa.select(f.c.content_type, f.c.sha256, p.c.slug)
                               .join(p, p.c.id == f.c.project_id).where(f.c.file_id == file_id)).first()
        if row is None:
            raise HTTPException(404, f"no file {file_id}")
        now = time.time()
        max_age = 3600
        if exp is not None or sig is not None:  # a signed URL (from /next): valid until its expiry, for anyone
            if exp is None or sig is None or not hmac.compare_digest(
                    sig.encode(), _file_signature(state.file_key, file_id, exp).encode()):
                raise HTTPException(403, "invalid file URL signature")
            if exp <= now:
                raise HTTPException(403, "this file URL has expired: reload the page for a fresh one")
            max_age = int(exp - now)
        elif not is_admin(request):  # a public leaderboard does not make the files public
            require_annotator(row.slug, request)  # 401 without a (live) token, 403 for another project's annotator
        etag = f'"{row.sha256}"'
        headers = {"Content-Disposition": "inline", "ETag": etag,
                   "Cache-Control": f"private, max-age={max_age}, immutable",
                   "Content-Security-Policy": FILE_CONTENT_SECURITY_POLICY,
                   "Cross-Origin-Resource-Policy": "same-origin"}
        if _etag_matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        with tx() as conn:
            data = conn.execute(sa.select(f.c.data).where(f.c.file_id == file_id)).scalar()
        if data is None:
            raise HTTPException(404, f"no file {file_id}")
        return Response(content=data, media_type=row.content_type, headers=headers)

    @app.post("/api/projects/{slug}/annotators", status_code=201, dependencies=[Depends(require_admin)])
    def add_annotator(slug: str, body: AnnotatorIn) -> dict[str, Any]:
        token = new_token()
        with tx(write=True) as conn:
            project = project_row(conn, slug)
            annotator_id = conn.execute(db.annotators.insert().values(
                project_id=project.id, name=body.name, token_hash=hash_token(token), max_votes=body.max_votes,
                created_at=time.time()).returning(db.annotators.c.id)).scalar_one()
        return {"id": int(annotator_id), "name": body.name, "token": token, "max_votes": body.max_votes}

    def replace_token(slug: str, annotator_id: int) -> dict[str, Any]:
        """Give the annotator a fresh random token: the old one stops working at once; votes are kept."""
        token = new_token()

        def job(conn: Connection) -> Any:
            project = project_row(conn, slug)
            found = conn.execute(db.annotators.update()
                                 .where(db.annotators.c.id == annotator_id,
                                        db.annotators.c.project_id == project.id)
                                 .values(token_hash=hash_token(token))
                                 .returning(db.annotators.c.name, db.annotators.c.max_votes)).first()
            if found is None:
                raise HTTPException(404, f"no annotator {annotator_id} in project {slug!r}")
            return found

        row = write(job)  # through the writer: serialised with the vote and assignment jobs that check the token
        forget_annotator(annotator_id)
        return {"id": annotator_id, "name": row.name, "token": token, "max_votes": row.max_votes}

    @app.post("/api/projects/{slug}/annotators/{annotator_id}/revoke", dependencies=[Depends(require_admin)])
    def revoke_annotator(slug: str, annotator_id: int) -> dict[str, Any]:
        row = replace_token(slug, annotator_id)  # the new token is discarded: nobody can use this annotator
        return {"id": row["id"], "name": row["name"], "revoked": True}

    @app.post("/api/projects/{slug}/annotators/{annotator_id}/rotate", dependencies=[Depends(require_admin)])
    def rotate_annotator(slug: str, annotator_id: int) -> dict[str, Any]:
        return replace_token(slug, annotator_id)

    @app.get("/api/me")
    def me(annotator: Me) -> dict[str, Any]:
        with tx() as conn:
            n = n_votes_of(conn, annotator_id=annotator.id)
        remaining = None if annotator.max_votes is None else max(annotator.max_votes - n, 0)
        return {"name": annotator.name, "project": annotator.slug, "n_votes": n, "remaining": remaining}

    def pair_json(a: Any, conn: Connection) -> dict[str, Any]:
        o = db.outputs
        rows = {r.id: r for r in conn.execute(sa.select(o.c.id, o.c.text, o.c.image_url)
                                              .where(o.c.id.in_([a.left_output_id, a.right_output_id])))}
        left, right = rows[a.left_output_id], rows[a.right_output_id]
        return {"pair_id": a.pair_id, "prompt": a.prompt,
                "left": {"text": left.text, "image_url": present(left.image_url)},
                "right": {"text": right.text, "image_url": present(right.image_url)}}

    @app.get("/api/projects/{slug}/next", response_model=None)
    def next_pair(slug: str, annotator: AnnotatorOf) -> dict[str, Any] | Response:
        with tx() as conn:
            if annotator.max_votes is not None and n_votes_of(conn, annotator_id=annotator.id) \
                    >= annotator.max_votes:
                return Response(status_code=204)
            pending = conn.execute(_SELECT_PENDING, {"annotator_id": annotator.id}).first()
            if pending is not None:  # the oldest unanswered pair is served again (a reload, a retry)
                return pair_json(pending, conn)
            n_mine = int(conn.execute(_COUNT_MINE, {"annotator_id": annotator.id}).scalar_one())
            # (prompt, system pair)s this annotator has been shown: kept in memory while the database's count of
            # their assignments agrees (assignments are never deleted), reread otherwise (e.g. another process)
            known = state.judged.get(annotator.id)
            if known is None or known[0] != n_mine:
                rows = conn.execute(_SELECT_JUDGED, {"annotator_id": annotator.id}).all()
                known = (len(rows), {(r.prompt, frozenset((r.left_system, r.right_system))) for r in rows})
                state.judged[annotator.id] = known
        judged = known[1]
        structure = _structure(state, annotator.project_id)
        open_prompts = {pair: [q for q in prompts if (q, pair) not in judged]
                        for pair, prompts in structure.shared.items()}
        available = {pair for pair, prompts in open_prompts.items() if prompts}
        if not available:
            return Response(status_code=204)
        rng = random.Random()
        pair = _choose(state, annotator.project_id, structure.systems, available, rng)
        prompt = rng.choice(open_prompts[pair])
        first, second = rng.sample(sorted(pair), 2)  # random sides: no position bias by system
        left_id = rng.choice(structure.by_prompt[prompt][first])
        right_id = rng.choice(structure.by_prompt[prompt][second])
        pair_id = new_token()[:32]
        row = {"pair_id": pair_id, "project_id": annotator.project_id, "annotator_id": annotator.id, "prompt": prompt,
               "left_output_id": left_id, "right_output_id": right_id, "left_system": first, "right_system": second,
               "created_at": time.time()}

        def assign(conn: Connection) -> dict[str, Any] | None:
            # the read above is only a fast path: concurrent /next calls of this annotator all got here, so under
            # the annotator's row lock (PostgreSQL; SQLite's writer is serial anyway) the pending pair is re-read
            # and, if one of them already assigned a pair, it is served to the others instead of a second one
            lock_annotator(conn, annotator)
            pending = conn.execute(_SELECT_PENDING, {"annotator_id": annotator.id}).first()
            if pending is not None:
                return pair_json(pending, conn)
            conn.execute(_INSERT_ASSIGNMENT, row)
            return None

        already = write(assign)
        if already is not None:
            return already
        with state.guard:
            count, shown = state.judged.get(annotator.id, (0, set()))
            shown.add((prompt, pair))
            state.judged[annotator.id] = (count + 1, shown)
        left, right = structure.content[left_id], structure.content[right_id]
        return {"pair_id": pair_id, "prompt": prompt, "left": {"text": left[0], "image_url": present(left[1])},
                "right": {"text": right[0], "image_url": present(right[1])}}

    def vote_json(vote: Any, a: Any) -> dict[str, Any]:
        return {"vote_id": vote.id, "pair_id": a.pair_id, "outcome": vote.outcome,
                "left_system": a.left_system, "right_system": a.right_system}

    def existing_vote(conn: Connection, a: Any, outcome: str) -> JSONResponse:
        vote = conn.execute(_SELECT_VOTE_OF, {"assignment_id": a.id}).one()
        if vote.outcome != outcome:
            raise HTTPException(409, f"pair {a.pair_id} was already voted {vote.outcome!r}")
        return JSONResponse(vote_json(vote, a), status_code=200)

    @app.post("/api/projects/{slug}/votes", status_code=201, response_model=None)
    def vote(slug: str, body: VoteIn, annotator: AnnotatorOf) -> Any:
        def assignment(conn: Connection) -> Any:
            a = conn.execute(_SELECT_PAIR, {"pair_id": body.pair_id}).first()
            if a is None or a.annotator_id != annotator.id:  # another annotator's pair looks like no pair
                raise HTTPException(404, f"no pair {body.pair_id} for this annotator")
            return a

        def store(conn: Connection) -> Any:
            # the annotator's row lock first: concurrent votes of one annotator (other processes on PostgreSQL,
            # READ COMMITTED) are serialised, so the budget count below sees the others' committed votes
            lock_annotator(conn, annotator)
            a = assignment(conn)
            if a.vote_id is not None:
                return existing_vote(conn, a, body.outcome)
            if annotator.max_votes is not None and n_votes_of(conn, annotator_id=annotator.id) \
                    >= annotator.max_votes:
                raise HTTPException(403, "this annotator's vote budget is used up")
            vote_id = conn.execute(_INSERT_VOTE, {
                "assignment_id": a.id, "project_id": annotator.project_id, "annotator_id": annotator.id,
                "outcome": body.outcome, "created_at": time.time()}).scalar_one()
            return {"vote_id": vote_id, "pair_id": a.pair_id, "outcome": body.outcome,
                    "left_system": a.left_system, "right_system": a.right_system}

        try:
            payload = write(store)  # returns once the vote is committed: before the response is sent
            if isinstance(payload, Response):
                return payload
        except IntegrityError:  # a simultaneous identical submission won the unique constraint
            with tx() as conn:
                return existing_vote(conn, assignment(conn), body.outcome)
        return JSONResponse(payload, status_code=201)

    def require_board_access(slug: str, request: Request) -> Any:
        with tx() as conn:
            project = conn.execute(sa.select(db.projects).where(db.projects.c.slug == slug)).first()
        if project is None or not project.public_leaderboard:
            require_admin(request)  # 401/403 alike for a private and a missing project: existence is not leaked
        if project is None:
            raise HTTPException(404, f"no project {slug!r}")
        return project

    @app.get("/api/projects/{slug}/leaderboard")
    def get_leaderboard(project: Annotated[Any, Depends(require_board_access)]) -> dict[str, Any]:
        return _leaderboard(state, project.id)

    @app.get("/api/projects/{slug}/export", dependencies=[Depends(require_admin)])
    def export(slug: str, format: Literal["csv", "jsonl"] = "csv") -> PlainTextResponse:
        with tx() as conn:
            project = project_row(conn, slug)
            frame = _battles(conn, project.id)
        if format == "csv":
            # strings quoted: pandas' minimal quoting leaves a bare carriage return in a cell, which splits the row
            text, media = _csv_safe(frame).to_csv(index=False, quoting=csv.QUOTE_NONNUMERIC), "text/csv"
        else:
            text = frame.to_json(orient="records", lines=True) if len(frame) else ""
            media = "application/x-ndjson"
        return PlainTextResponse(text, media_type=media, headers={
            "Content-Disposition": f'attachment; filename="{slug}-battles.{format}"'})


# ---------------------------------------------------------------------------- data for the sampler and leaderboard

def _battles(conn: Connection, project_id: int) -> pd.DataFrame:
    """The project's votes as arena battles: model_a, model_b, winner, judge, tstamp, prompt."""
    v, s, a = db.votes, db.assignments, db.annotators
    rows = conn.execute(
        sa.select(s.c.left_system, s.c.right_system, v.c.outcome, a.c.name, v.c.created_at, s.c.prompt, v.c.id)
        .join(s, s.c.id == v.c.assignment_id).join(a, a.c.id == v.c.annotator_id)
        .where(v.c.project_id == project_id).order_by(v.c.id)).all()
    frame = pd.DataFrame(rows, columns=["model_a", "model_b", "outcome", "judge", "tstamp", "prompt", "vote_id"])
    frame["winner"] = frame["outcome"].map(ARENA_WINNER)
    return frame[["model_a", "model_b", "winner", "judge", "tstamp", "prompt", "vote_id"]]


def _csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """The battles with free-text cells (``judge``, ``prompt``) that a spreadsheet would run as a formula quoted.

    A cell starting with ``= + - @``, tab or carriage return gets a leading apostrophe (CSV injection). System
    names are left verbatim so that ``bradley leaderboard`` on the export names the systems as they were uploaded.

    >>> _csv_safe(pd.DataFrame({"judge": ["=cmd()", "ann"], "prompt": ["-1", "ok"]})).values.tolist()
    [["'=cmd()", "'-1"], ['ann', 'ok']]
    """
    out = frame.copy()
    for column in ("judge", "prompt"):
        if column in out:
            values = out[column].astype(str)
            risky = values.str.startswith(CSV_FORMULA_PREFIXES)
            out[column] = values.where(~risky, "'" + values)
    return out


def _structure(state: _State, project_id: int) -> _Structure:
    o = db.outputs
    cached = state.structures.get(project_id)
    if cached is not None and time.time() - cached.checked_at < SAMPLER_MIN_INTERVAL_S:
        return cached
    with db.transaction(state.engine) as conn:
        n = int(conn.execute(sa.select(sa.func.count()).select_from(o).where(o.c.project_id == project_id))
                .scalar_one())
        cached = state.structures.get(project_id)
        if cached is not None and cached.n_outputs == n:
            cached.checked_at = time.time()
            return cached
        rows = conn.execute(sa.select(o.c.id, o.c.system, o.c.prompt, o.c.text, o.c.image_url)
                            .where(o.c.project_id == project_id)).all()
    by_prompt: dict[str, dict[str, list[int]]] = {}
    for r in rows:
        by_prompt.setdefault(r.prompt, {}).setdefault(r.system, []).append(r.id)
    systems = sorted({r.system for r in rows})
    shared: dict[frozenset[str], list[str]] = {}
    for prompt, by_system in by_prompt.items():
        names = sorted(by_system)
        for i, x in enumerate(names):
            for y in names[i + 1:]:
                shared.setdefault(frozenset((x, y)), []).append(prompt)
    content = {r.id: (r.text, r.image_url) for r in rows}
    structure = _Structure(n, by_prompt, systems, shared, content, time.time())
    state.structures[project_id] = structure
    return structure


def _snapshot(state: _State, project_id: int, systems: list[str]) -> _Snapshot:
    """The project's current sampler snapshot; a stale one is refitted in the background, off the request path.

    The first request of a project (and every request when ``SAMPLER_MIN_INTERVAL_S`` is 0) fits inline. A
    refit starts at most every ``SAMPLER_MIN_INTERVAL_S`` and at most every 20 times the last fit's duration,
    so refitting takes at most ~5% of the server's time however many votes arrive.
    """
    cached = state.snapshots.get(project_id)
    if cached is None or SAMPLER_MIN_INTERVAL_S <= 0:
        return _refit(state, project_id, systems)
    if time.time() - cached.at >= max(SAMPLER_MIN_INTERVAL_S, 20 * cached.fit_s):
        with state.guard:
            start = project_id not in state.refitting
            state.refitting.add(project_id)
        if start:
            def refit() -> None:
                try:
                    _refit(state, project_id, systems)
                except Exception as exc:  # keep serving the previous snapshot
                    _log.warning("sampler refit failed on project %d (%s: %s)", project_id, type(exc).__name__, exc)
                finally:
                    with state.guard:
                        state.refitting.discard(project_id)

            threading.Thread(target=refit, name="bradley-sampler-refit", daemon=True).start()
    return cached


def _refit(state: _State, project_id: int, systems: list[str]) -> _Snapshot:
    """Votes as weighted comparisons (one row per pair and outcome) and the sampler fitted on them."""
    with state.lock("snapshot", project_id):
        cached = state.snapshots.get(project_id)
        if cached is not None and SAMPLER_MIN_INTERVAL_S > 0 and time.time() - cached.at < SAMPLER_MIN_INTERVAL_S:
            return cached
        started = time.perf_counter()
        v, s = db.votes, db.assignments
        with db.transaction(state.engine) as conn:
            rows = conn.execute(
                sa.select(s.c.left_system, s.c.right_system, v.c.outcome, sa.func.count())
                .join(s, s.c.id == v.c.assignment_id).where(v.c.project_id == project_id)
                .group_by(s.c.left_system, s.c.right_system, v.c.outcome)).all()
        frame = pd.DataFrame([tuple(r) for r in rows], columns=["model_a", "model_b", "outcome", "weight"])
        frame["winner"] = frame["outcome"].map(ARENA_WINNER)
        counts = frame.groupby("model_a")["weight"].sum().add(frame.groupby("model_b")["weight"].sum(), fill_value=0)
        item_counts = {str(k): int(c) for k, c in counts.items()}
        names = sorted(set(systems) | set(item_counts))
        data = None
        if len(frame):
            from bradley.io import read_comparisons

            data = read_comparisons(frame[["model_a", "model_b", "winner", "weight"]], weight="weight", items=names)
        sampler, batch = None, []
        if state.sampler_class is not None and len(systems) >= 2:
            try:
                sampler = state.sampler_class("information").fit(data, systems)
                n_pairs = len(systems) * (len(systems) - 1) // 2
                batch = [frozenset(p) for p in sampler.next_pairs(min(n_pairs, SAMPLER_BATCH))]
            except Exception as exc:  # a sampler failure must not stop the voting: uniform pairs, logged
                _log.warning("active sampler failed on project %d (%s: %s); choosing uniform pairs",
                             project_id, type(exc).__name__, exc)
                sampler, batch = None, []
        snap = _Snapshot(int(frame["weight"].sum()) if len(frame) else 0, time.time(), data, item_counts,
                         sampler, batch, fit_s=time.perf_counter() - started)
        state.snapshots[project_id] = snap
        return snap


def _choose(state: _State, project_id: int, systems: list[str], available: set[frozenset[str]],
            rng: random.Random) -> frozenset[str]:
    """The pair of systems to show: the sampler's choice among ``available`` (uniform as the last resort)."""
    snap = _snapshot(state, project_id, systems)
    with snap.lock:
        n = len(snap.batch)
        for k in range(n):
            pair = snap.batch[(snap.cursor + k) % n]
            if pair in available:
                snap.cursor = (snap.cursor + k + 1) % n
                return pair
        exclude = {frozenset((x, y)) for i, x in enumerate(systems) for y in systems[i + 1:]} - available
        try:
            if snap.sampler is not None:
                chosen = snap.sampler.next_pairs(1, exclude=exclude)
            else:
                chosen = state.choose(snap.data, systems, 1, exclude=exclude, item_counts=snap.item_counts,
                                      rng=rng.randrange(2**32))
        except Exception as exc:  # a sampler failure must not stop the voting: a uniform pair, logged
            _log.warning("pair sampler failed on project %d (%s: %s); choosing a uniform pair",
                         project_id, type(exc).__name__, exc)
            chosen = []
    pairs = [frozenset(p) for p in chosen if frozenset(p) in available]
    return pairs[0] if pairs else rng.choice(sorted(available, key=sorted))


def _leaderboard(state: _State, project_id: int) -> dict[str, Any]:
    """The live leaderboard, recomputed when votes changed, at most every ``LEADERBOARD_MIN_INTERVAL_S``."""
    with db.transaction(state.engine) as conn:
        n = int(conn.execute(sa.select(sa.func.count()).select_from(db.votes)
                             .where(db.votes.c.project_id == project_id)).scalar_one())
    cached = state.boards.get(project_id)
    if cached is not None and (cached.n_votes == n or time.time() - cached.at < LEADERBOARD_MIN_INTERVAL_S):
        return cached.payload
    lock = state.lock("board", project_id)
    if not lock.acquire(blocking=cached is None):
        return cached.payload if cached is not None else _empty_board()
    try:
        cached = state.boards.get(project_id)
        if cached is not None and (cached.n_votes == n or time.time() - cached.at < LEADERBOARD_MIN_INTERVAL_S):
            return cached.payload
        with db.transaction(state.engine) as conn:
            frame = _battles(conn, project_id)
        payload = _board_payload(frame)
        state.boards[project_id] = _Board(len(frame), time.time(), payload)
        return payload
    finally:
        lock.release()


def _empty_board() -> dict[str, Any]:
    return {"n_votes": 0, "updated_at": time.time(), "ci_method": None, "rows": []}


def _board_payload(frame: pd.DataFrame) -> dict[str, Any]:
    payload = _empty_board()
    payload["n_votes"] = len(frame)
    decisive = frame[frame["model_a"] != frame["model_b"]]
    if decisive.empty:
        return payload
    import warnings

    from bradley.errors import BradleyError, MLEDoesNotExistError
    from bradley.leaderboard import leaderboard
    from bradley.models import BradleyTerry

    battles = decisive[["model_a", "model_b", "winner", "judge"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            board = leaderboard(battles)
        except MLEDoesNotExistError:  # early on, someone won every battle: Firth's finite, less biased scores
            try:
                board = leaderboard(battles, model=BradleyTerry(bias_reduction=True))
            except BradleyError:
                return payload
        except BradleyError:
            return payload
    payload["ci_method"] = board.ci.get("method")

    def num(x: Any) -> float | None:
        value = float(x)
        return value if math.isfinite(value) else None

    payload["rows"] = [
        {"rank": int(r["rank"]), "system": str(r["item"]), "score": num(r["score"]),
         "ci_low": num(r["ci_low"]), "ci_high": num(r["ci_high"]),
         "rank_low": int(r["rank_low"]) if pd.notna(r["rank_low"]) else None,
         "rank_high": int(r["rank_high"]) if pd.notna(r["rank_high"]) else None,
         "elo": num(r["elo"]), "n_votes": int(r["battles"]), "provisional": bool(r.get("provisional", False))}
        for r in board.table.to_dict("records")]
    return payload

