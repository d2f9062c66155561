"""Image uploads of ``bradley serve``: stored in the database, served back to those who may see the project.

Truths: the PNG is built here byte by byte (zlib + CRC32 chunks), its SHA-256 computed here with hashlib; the
bytes served back are compared with the bytes sent; the signed URL is recomputed here with HMAC-SHA256.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
import time
import zlib
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("alembic")
pytest.importorskip("httpx")
sa = pytest.importorskip("sqlalchemy")

from fastapi.testclient import TestClient  # noqa: E402

from bradley.serve import app as serve_app  # noqa: E402
from bradley.serve.app import create_app  # noqa: E402

ADMIN = "admin-token-for-tests-0123456789abcdef"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def png(width: int = 2, height: int = 1, rgb: tuple[int, int, int] = (255, 0, 0)) -> bytes:
    """A valid truecolour PNG of one colour."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(64) + b"\xff\xd9"


@pytest.fixture()
def client(tmp_path: Any) -> Any:
    app = create_app(f"sqlite:///{tmp_path / 'arena.db'}", admin_token=ADMIN)
    with TestClient(app) as c:
        for slug, public in (("open", True), ("closed", False), ("other", False)):
            r = c.post("/api/projects", json={"slug": slug, "name": slug, "public_leaderboard": public},
                       headers=auth(ADMIN))
            assert r.status_code == 201, r.text
        yield c


def upload(client: Any, slug: str, data: bytes, content_type: str = "image/png", name: str = "x.png") -> Any:
    return client.post(f"/api/projects/{slug}/files", params={"name": name}, content=data,
                       headers={**auth(ADMIN), "Content-Type": content_type})


def annotator(client: Any, slug: str) -> str:
    r = client.post(f"/api/projects/{slug}/annotators", json={"name": "ann"}, headers=auth(ADMIN))
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def test_upload_png_and_jpeg_round_trip(client: Any) -> None:
    data = png(3, 2)
    r = upload(client, "closed", data, name="alpha__p1.png")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["bytes"] == len(data) and body["content_type"] == "image/png" and body["name"] == "alpha__p1.png"
    assert body["url"] == f"/files/{body['file_id']}" and len(body["file_id"]) >= 32
    got = client.get(body["url"], headers=auth(ADMIN))
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-type"] == "image/png"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-disposition"] == "inline"
    assert "immutable" in got.headers["cache-control"] and "private" in got.headers["cache-control"]
    r = upload(client, "closed", JPEG, "image/jpeg", "b.jpg")
    assert r.status_code == 201 and r.json()["content_type"] == "image/jpeg"
    got = client.get(r.json()["url"], headers=auth(ADMIN))
    assert got.content == JPEG and got.headers["content-type"] == "image/jpeg"


def test_upload_dedup_per_project(client: Any) -> None:
    data = png()
    first = upload(client, "closed", data).json()
    again = upload(client, "closed", data, name="copy.png")
    assert again.status_code == 200 and again.json()["file_id"] == first["file_id"] and again.json()["deduplicated"]
    elsewhere = upload(client, "other", data)
    assert elsewhere.status_code == 201 and elsewhere.json()["file_id"] != first["file_id"]
    with client.app.state.arena.engine.connect() as conn:
        n = conn.execute(sa.text("select count(*) from files")).scalar()
    assert n == 2


@pytest.mark.parametrize("content_type, data", [
    ("image/svg+xml", b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"),
    ("image/png", b"<html><script>alert(1)</script></html>"),  # HTML disguised as PNG
    ("image/png", JPEG),  # a real image of another type than declared
    ("text/html", b"<html></html>"),
    ("application/octet-stream", png()),
])
def test_upload_refuses_non_images(client: Any, content_type: str, data: bytes) -> None:
    r = upload(client, "closed", data, content_type)
    assert r.status_code == 415, r.text


def test_upload_limits_and_auth(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    big = png() + bytes(serve_app.MAX_BODY_BYTES)
    assert upload(client, "closed", big).status_code == 413
    monkeypatch.setattr(serve_app, "MAX_FILE_BYTES", 100)
    assert upload(client, "closed", png() + bytes(200)).status_code == 413
    assert upload(client, "closed", b"", "image/png").status_code in (415, 422)
    token = annotator(client, "closed")
    r = client.post("/api/projects/closed/files", content=png(), headers={**auth(token), "Content-Type": "image/png"})
    assert r.status_code == 403
    r = client.post("/api/projects/closed/files", content=png(), headers={"Content-Type": "image/png"})
    assert r.status_code == 401
    assert upload(client, "nope", png()).status_code == 404


def test_file_access_control(client: Any) -> None:
    private = upload(client, "closed", png(rgb=(1, 2, 3))).json()["url"]
    public = upload(client, "open", png(rgb=(4, 5, 6))).json()["url"]
    mine, theirs = annotator(client, "closed"), annotator(client, "other")
    assert client.get(private).status_code == 401  # anonymous, private project
    assert client.get(private, headers=auth(theirs)).status_code == 403  # another project's annotator
    assert client.get(private, headers=auth(mine)).status_code == 200
    assert client.get(private, headers=auth(ADMIN)).status_code == 200
    # a public leaderboard does not make the files public: unsigned requests need a token of the project
    assert client.get(public).status_code == 401
    assert client.get(public, headers=auth(mine)).status_code == 403
    assert client.get(public, headers=auth(ADMIN)).status_code == 200
    opener = client.post("/api/projects/open/annotators", json={"name": "o"}, headers=auth(ADMIN)).json()
    assert client.get(public, headers=auth(opener["token"])).status_code == 200
    r = client.post(f"/api/projects/open/annotators/{opener['id']}/revoke", headers=auth(ADMIN))
    assert r.status_code == 200
    assert client.get(public, headers=auth(opener["token"])).status_code == 401  # revoked: no access any more
    assert client.get("/files/" + "A" * 32).status_code == 404


def test_file_blob_read_only_after_access_check(client: Any) -> None:
    url = upload(client, "closed", png(rgb=(3, 3, 3))).json()["url"]
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = client.app.state.arena.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        assert client.get(url).status_code == 401
        assert client.get(f"{url}?exp=9999999999&sig={'0' * 32}").status_code == 403
        denied = [s for s in statements if "files" in s]
        assert denied and not any("files.data" in s for s in denied), denied
        statements.clear()
        assert client.get(url, headers=auth(ADMIN)).status_code == 200
        assert any("files.data" in s for s in statements)  # the recorder does see the blob read when allowed
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def test_file_etag_if_none_match_and_headers(client: Any) -> None:
    data = png(rgb=(5, 5, 5))
    url = upload(client, "closed", data).json()["url"]
    got = client.get(url, headers=auth(ADMIN))
    etag = f'"{hashlib.sha256(data).hexdigest()}"'
    assert got.status_code == 200 and got.headers["etag"] == etag
    assert got.headers["content-security-policy"].split(";")[0].strip() == "sandbox"
    assert got.headers.get_list("content-security-policy") == [got.headers["content-security-policy"]]
    assert got.headers["cross-origin-resource-policy"] == "same-origin"
    assert got.headers["x-content-type-options"] == "nosniff"
    for header in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
        again = client.get(url, headers={**auth(ADMIN), "If-None-Match": header})
        assert again.status_code == 304 and again.content == b"", header
        assert again.headers["etag"] == etag
    assert client.get(url, headers={**auth(ADMIN), "If-None-Match": '"nope"'}).content == data
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 401  # the check comes first
    page = client.get("/healthz")  # other responses keep the page CSP
    assert "sandbox" not in page.headers["content-security-policy"]
    assert "cross-origin-resource-policy" not in page.headers


def test_outputs_reference_files_of_their_project_only(client: Any) -> None:
    here = upload(client, "closed", png(rgb=(7, 7, 7))).json()["url"]
    there = upload(client, "other", png(rgb=(8, 8, 8))).json()["url"]
    r = client.post("/api/projects/closed/outputs", json={"outputs": [
        {"system": "a", "image_url": here}, {"system": "b", "image_url": there}]}, headers=auth(ADMIN))
    assert r.status_code == 422 and "outputs.1.image_url" in r.json()["detail"]
    r = client.post("/api/projects/closed/outputs", json={"outputs": [{"system": "a", "image_url": "/files/x"}]},
                    headers=auth(ADMIN))
    assert r.status_code == 422
    # a browser resolves these to /files/<there>: the check must not be bypassed by another spelling
    there_id = there[len("/files/"):]
    for bad in (f"/%66iles/{there_id}", f"/./files/{there_id}", f"/files/../files/{there_id}",
                f"//evil.example/files/{there_id}", f"/files/{there_id}/", f"/static/../files/{there_id}"):
        r = client.post("/api/projects/closed/outputs", json={"outputs": [{"system": "a", "image_url": bad}]},
                        headers=auth(ADMIN))
        assert r.status_code == 422, bad
    r = client.post("/api/projects/closed/outputs", json={"outputs": [
        {"system": "a", "image_url": here}, {"system": "b", "image_url": "https://example.org/%66iles/x.png"}]},
        headers=auth(ADMIN))
    assert r.json() == {"added": 2}


def test_next_hands_out_signed_urls(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # the signing clock is pinned mid-window, so two /next calls cannot straddle an expiry-window boundary
    ttl = serve_app.FILE_URL_TTL_S
    signing_now = (time.time() // ttl) * ttl + ttl / 2
    sign = serve_app._signed_file_url
    monkeypatch.setattr(serve_app, "_signed_file_url", lambda key, url, now=None: sign(key, url, signing_now))
    a, b = png(rgb=(10, 0, 0)), png(rgb=(0, 10, 0))
    urls = [upload(client, "closed", d).json()["url"] for d in (a, b)]
    r = client.post("/api/projects/closed/outputs", json={"outputs": [
        {"system": "s1", "prompt": "q", "image_url": urls[0]}, {"system": "s2", "prompt": "q", "image_url": urls[1]}]},
        headers=auth(ADMIN))
    assert r.status_code == 200, r.text
    token = annotator(client, "closed")
    pair = client.get("/api/projects/closed/next", headers=auth(token)).json()
    again = client.get("/api/projects/closed/next", headers=auth(token)).json()  # the pending pair, re-served
    key = client.app.state.arena.file_key
    served = set()
    for side in ("left", "right"):
        url = pair[side]["image_url"]
        assert url == again[side]["image_url"]
        path, query = url.split("?")
        params = dict(p.split("=") for p in query.split("&"))
        exp = int(params["exp"])
        assert exp % ttl == 0 and signing_now + ttl <= exp <= signing_now + 2 * ttl
        assert exp > time.time()  # the window pinned is the current one, so the URL is live
        # the HMAC recomputed here, independently of the server's helper
        expected = hmac.new(key, f"{path[len('/files/'):]}:{exp}".encode(), hashlib.sha256).hexdigest()[:32]
        assert params["sig"] == expected
        got = client.get(url)  # no bearer header: an <img> tag
        assert got.status_code == 200
        served.add(got.content)
        assert client.get(f"{path}?exp={exp}&sig={'0' * 32}").status_code == 403
        assert client.get(f"{path}?exp={exp + 3600}&sig={params['sig']}").status_code == 403
    assert served == {a, b}
    stale = int(time.time()) - 10
    sig = hmac.new(key, f"{urls[0][len('/files/'):]}:{stale}".encode(), hashlib.sha256).hexdigest()[:32]
    assert client.get(f"{urls[0]}?exp={stale}&sig={sig}").status_code == 403  # expired


def test_migration_adds_files_to_an_existing_database(tmp_path: Any) -> None:
    from alembic import command
    from alembic.config import Config

    from bradley.serve import db

    engine = db.make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    config = Config()
    config.set_main_option("script_location", str(db.MIGRATIONS_DIR))
    with db.transaction(engine, write=True) as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
    assert "files" not in sa.inspect(engine).get_table_names()
    app = create_app(f"sqlite:///{tmp_path / 'old.db'}", admin_token=ADMIN)
    assert "files" in sa.inspect(app.state.arena.engine).get_table_names()
