"""The ``bradley serve`` pages in a real browser (headless Chromium driven by Selenium).

A server runs on a free loopback port with a throwaway SQLite database. The
admin page creates the project, adds outputs and makes a vote link; the vote
page is used with clicks, keys, a double click and a vote sent while the
browser is offline (then retried) until the vote budget is used up; the leaderboard page is watched while a
second annotator votes through the API. Every vote the page shows is checked
against the server's arena-format export.

Every response carries the Content-Security-Policy the server is meant to send
(added by a wrapper here, so the check holds whichever headers the backend
sets), and the browser's log must hold no CSP violation on any of the four
pages; a deliberate inline script at the end shows that a violation would be
caught. A request log checks that the vote link's token never reaches the
server in a URL (it travels in the fragment).

Needs Debian's Chromium and its driver (``apt-get install -y chromium
chromium-driver``) and ``selenium``; skipped with the reason otherwise.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import shutil
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="bradley[serve] is not installed")
uvicorn = pytest.importorskip("uvicorn", reason="bradley[serve] is not installed")
pytest.importorskip("bradley.serve.app", reason="the serve backend is not available")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")

from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="headless browser test needs Debian's Chromium: apt-get install -y chromium chromium-driver",
)

ADMIN = secrets.token_urlsafe(32)  # the server wants a random admin token of 32+ characters
SYSTEMS = ["gpt-4o-2024-05-13", "claude-3-5-sonnet-20240620", "gemini-1.5-pro-api-0514", "llama-3-70b-instruct"]
PROMPTS = ["Name a prime number larger than 10.", "Say hello in French."]
#: every output carries markup, which the page must show as text, never parse
HOSTILE = '<img src=x onerror="window.pwned=1"><b>bold?</b>'
#: the policy ``bradley serve`` sends with every page; the pages must work under it unchanged
CSP = (
    "default-src 'self'; img-src 'self' http: https: data:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'; object-src 'none'"
)
WAIT = 15  # seconds any single browser condition may take


# --------------------------------------------------------------------------- server and HTTP helpers


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(base: str, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read().decode()
            status = resp.status
    except urllib.error.HTTPError as err:
        raw, status = err.read().decode(), err.code
    if not raw:
        return status, None
    try:
        return status, json.loads(raw)
    except json.JSONDecodeError:
        return status, raw


#: every request target (path and query string) the server received, in order
REQUESTS: list[str] = []


def _with_csp(app: Any) -> Any:
    """Wrap an ASGI app: record each request target and add ``CSP`` to each response.

    The header is appended, not substituted: should the backend send a policy of
    its own, the browser enforces both.
    """

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        REQUESTS.append(scope["path"] + ("?" + query if query else ""))

        async def send_with_csp(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"content-security-policy", CSP.encode())]
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, send_with_csp)

    return wrapped


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from bradley.serve import create_app

    db = tmp_path_factory.mktemp("serve") / "arena.db"
    app = _with_csp(create_app(f"sqlite:///{db}", admin_token=ADMIN))
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if _call(base, "GET", "/healthz")[0] == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            srv.should_exit = True
            pytest.fail("the server did not answer /healthz within 20 s")
        time.sleep(0.1)
    yield base
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never download a driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console, including CSP reports
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(arg)
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(WAIT)
    driver.set_script_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: Any, condition: Any, what: str) -> Any:
    try:
        return WebDriverWait(driver, WAIT, poll_frequency=0.05).until(condition)
    except TimeoutException:
        message = driver.find_element(By.ID, "message").text if driver.find_elements(By.ID, "message") else ""
        pytest.fail(f"timed out waiting for {what}; page message: {message!r}")


def _visible(element_id: str) -> Any:
    return lambda d: d.find_element(By.ID, element_id).is_displayed()


def _csp_violations(driver: Any) -> list[str]:
    """The CSP reports in the browser's console since the last call."""
    return [e["message"] for e in driver.get_log("browser") if "Content Security Policy" in e["message"]]


def _pair_id(driver: Any) -> str:
    return driver.find_element(By.TAG_NAME, "body").get_attribute("data-pair-id") or ""


# --------------------------------------------------------------------------- the test


def test_admin_vote_and_live_leaderboard(server: str, browser: Any) -> None:
    d = browser
    slug = "browser-arena"

    # ---- admin page: token, project, outputs (pasted JSONL), annotator link
    d.get(server + "/admin")
    d.find_element(By.ID, "admin-token").send_keys(ADMIN)
    d.find_element(By.CSS_SELECTOR, "#token-form button[type=submit]").click()
    d.find_element(By.ID, "project-slug").send_keys(slug)
    d.find_element(By.ID, "project-name").send_keys("Browser arena")
    d.find_element(By.CSS_SELECTOR, "#project-form button[type=submit]").click()
    _wait(d, lambda d: "created" in d.find_element(By.ID, "message").text, "the project to be created")

    outputs = []
    for p, prompt in enumerate(PROMPTS):
        for s, system in enumerate(SYSTEMS):
            text = f"{system} answers: {prompt.lower()} ({p}{s}) {HOSTILE}"
            outputs.append({"system": system, "prompt": prompt, "text": text})
    box = d.find_element(By.ID, "outputs-text")
    d.execute_script("arguments[0].value = arguments[1];", box, "\n".join(json.dumps(o) for o in outputs))
    d.find_element(By.CSS_SELECTOR, "#outputs-form button[type=submit]").click()
    added = f"Added {len(outputs)} outputs"
    _wait(d, lambda d: added in d.find_element(By.ID, "message").text, "the outputs to be added")

    d.find_element(By.ID, "annotator-name").send_keys("alice")
    d.find_element(By.ID, "annotator-max").send_keys("6")
    d.find_element(By.CSS_SELECTOR, "#annotator-form button[type=submit]").click()
    link = _wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, ".annotator-link"), "the vote link")[0].text
    assert link.startswith(f"{server}/p/{slug}/vote#token=")
    alice_token = urllib.parse.unquote(link.split("#token=", 1)[1])

    # the CSV reader of the admin page agrees with Python's csv module on quotes, commas and newlines
    sample = 'system,prompt,text\nm1,"a, b","line1\nline2 ""quoted"""\nm2,,plain\n'
    parsed = d.execute_script("return window.bradleyServe.parseOutputs(arguments[0]);", sample)
    expected = [{k: v for k, v in row.items() if v} for row in csv.DictReader(io.StringIO(sample))]
    assert parsed == expected

    # ---- a wrong token (in an old-style ?token= link, still read) shows a visible error instead of a pair
    d.get(f"{server}/p/{slug}/vote?token=not-a-token")
    _wait(
        d,
        lambda d: "not valid (mistyped or revoked)" in d.find_element(By.ID, "message").text,
        "the invalid-link message",
    )
    assert not d.find_element(By.ID, "arena").is_displayed()
    assert d.current_url == f"{server}/p/{slug}/vote"  # the query-string token is cleared too

    # ---- vote page: opened in the same tab, so only the fragment changes and the page must reload itself;
    # the token leaves the address bar, progress shows the budget
    d.get(link)
    _wait(d, lambda d: _pair_id(d), "the first pair")
    assert "token=" not in d.current_url and "#" not in d.current_url
    _wait(d, lambda d: "6 left" in d.find_element(By.ID, "progress-text").text, "the progress line")

    shown: list[tuple[str, str, str]] = []  # (left system, right system, outcome) as the page revealed them

    def vote(action: Any, outcome: str) -> None:
        assert _pair_id(d) and d.find_element(By.ID, "arena").is_displayed()
        for side in ("left", "right"):  # the markup in the outputs is shown as text, not parsed
            assert d.find_element(By.ID, f"{side}-text").text.endswith(HOSTILE)
        assert not d.find_elements(By.CSS_SELECTOR, ".output .text *")
        action()
        _wait(d, _visible("reveal"), f"the reveal after voting {outcome}")
        left = d.find_element(By.ID, "left-system").text
        right = d.find_element(By.ID, "right-system").text
        assert left in SYSTEMS and right in SYSTEMS and left != right
        shown.append((left, right, outcome))

    def next_pair(by_key: bool) -> None:
        before = _pair_id(d)
        if by_key:
            d.find_element(By.TAG_NAME, "body").send_keys(Keys.ENTER)
        else:
            d.find_element(By.ID, "next").click()
        _wait(d, lambda d: _pair_id(d) != before, "the next pair")

    def button(outcome: str) -> Any:
        return d.find_element(By.CSS_SELECTOR, f'.choices button[data-outcome="{outcome}"]')

    def key(k: str) -> Any:
        return lambda: d.find_element(By.TAG_NAME, "body").send_keys(k)

    vote(lambda: button("left").click(), "left")
    next_pair(by_key=False)
    vote(key(Keys.ARROW_RIGHT), "right")
    next_pair(by_key=True)
    vote(key(Keys.ARROW_UP), "tie")
    next_pair(by_key=True)

    def double_click() -> None:  # two clicks in a row send one vote
        b = button("both_bad")
        d.execute_script("arguments[0].click(); arguments[0].click();", b)

    vote(double_click, "both_bad")
    next_pair(by_key=True)

    # ---- offline: the vote fails visibly, stays on screen, and Retry sends it once
    d.execute_cdp_cmd("Network.enable", {})
    d.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    pair_before = _pair_id(d)
    d.find_element(By.TAG_NAME, "body").send_keys("1")
    retry = _wait(
        d, lambda d: d.find_elements(By.XPATH, '//div[@id="message"]//button[text()="Retry"]'), "the retry button"
    )[0]
    assert "not confirmed" in d.find_element(By.ID, "message").text
    assert _pair_id(d) == pair_before and not d.find_element(By.ID, "reveal").is_displayed()
    d.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    vote(retry.click, "left")
    assert _pair_id(d) == pair_before
    _wait(d, lambda d: "5 votes" in d.find_element(By.ID, "progress-text").text, "the vote count")

    # ---- the last vote of the budget, then the server answers 204 and the page says it is done
    next_pair(by_key=True)
    vote(key("4"), "right")
    d.find_element(By.TAG_NAME, "body").send_keys(Keys.ENTER)
    _wait(d, _visible("done"), "the done panel after the budget of 6")
    assert not d.find_element(By.ID, "arena").is_displayed()
    assert "6 votes" in d.find_element(By.ID, "done-text").text

    # ---- the server holds exactly the votes the page showed
    status, board = _call(server, "GET", f"/api/projects/{slug}/leaderboard")
    assert status == 200 and board["n_votes"] == len(shown) == 6
    req = urllib.request.Request(f"{server}/api/projects/{slug}/export?format=csv")
    req.add_header("Authorization", f"Bearer {ADMIN}")
    with urllib.request.urlopen(req, timeout=10) as resp:
        battles = list(csv.DictReader(io.StringIO(resp.read().decode())))
    winner = {"left": "model_a", "right": "model_b", "tie": "tie", "both_bad": "tie (bothbad)"}
    assert sorted((b["model_a"], b["model_b"], b["winner"]) for b in battles) == sorted(
        (left, right, winner[o]) for left, right, o in shown
    )

    # ---- leaderboard page: shows the votes, then changes by itself while another annotator votes
    d.get(f"{server}/p/{slug}/leaderboard?refresh=1")
    _wait(d, lambda d: d.find_element(By.ID, "n-votes").text == "6", "the leaderboard to show 6 votes")
    rows = d.find_elements(By.CSS_SELECTOR, "#rows tr[data-system]")
    assert [r.get_attribute("data-system") for r in rows] == [r["system"] for r in board["rows"]]

    status, bob = _call(server, "POST", f"/api/projects/{slug}/annotators", {"name": "bob"}, ADMIN)
    assert status == 201
    for _ in range(3):
        status, pair = _call(server, "GET", f"/api/projects/{slug}/next", token=bob["token"])
        assert status == 200
        status, _ = _call(
            server, "POST", f"/api/projects/{slug}/votes", {"pair_id": pair["pair_id"], "outcome": "left"}, bob["token"]
        )
        assert status == 201
    _wait(d, lambda d: d.find_element(By.ID, "n-votes").text == "9", "the leaderboard to refresh to 9 votes")
    status, board = _call(server, "GET", f"/api/projects/{slug}/leaderboard")
    rows = d.find_elements(By.CSS_SELECTOR, "#rows tr[data-system]")
    assert [r.get_attribute("data-system") for r in rows] == [r["system"] for r in board["rows"]]
    cells = rows[0].find_elements(By.TAG_NAME, "td")
    assert cells[0].text == str(board["rows"][0]["rank"])

    # ---- the index lists the public project with its counts
    d.get(server + "/")
    _wait(d, lambda d: "Browser arena" in d.find_element(By.ID, "projects").text, "the project on the index")
    assert "9 votes" in d.find_element(By.ID, "projects").text
    assert d.execute_script("return window.pwned === undefined;")

    # ---- the token never reached the server in a URL (only in Authorization headers)
    assert any(r.startswith(f"/p/{slug}/vote") for r in REQUESTS)
    assert not [r for r in REQUESTS if alice_token in r]

    # ---- no page broke the CSP; an inline script here is refused and reported, so the check can fail
    assert _csp_violations(d) == []
    d.execute_script(
        "var s = document.createElement('script'); s.textContent = 'window.inlineRan = 1;';"
        "document.body.appendChild(s);"
    )
    assert d.execute_script("return window.inlineRan === undefined;")
    _wait(d, lambda d: _csp_violations(d), "the CSP report of the inline script")


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid one-colour truecolour PNG, built here (chunks with their CRC32)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_admin_uploads_images_and_vote_page_shows_them(server: str, browser: Any,
                                                       tmp_path: Any) -> None:
    d = browser
    slug = "browser-images"
    status, _ = _call(server, "POST", "/api/projects", {"slug": slug, "name": "Images", "public_leaderboard": False},
                      ADMIN)
    assert status == 201
    paths = []
    for name, size, rgb in (("painter-a__a red square.png", (5, 3), (200, 0, 0)),
                            ("painter-b__a red square.png", (7, 4), (0, 0, 200))):
        path = tmp_path / name
        path.write_bytes(_png(*size, rgb))
        paths.append(str(path))

    d.get(server + "/admin")
    _csp_violations(d)
    d.find_element(By.ID, "admin-token").send_keys(ADMIN)
    d.find_element(By.CSS_SELECTOR, "#token-form button[type=submit]").click()
    d.find_element(By.ID, "slug").send_keys(slug)
    d.find_element(By.ID, "images-files").send_keys("\n".join(paths))
    _wait(d, lambda d: d.find_elements(By.ID, "image-system-1"), "the per-file rows")
    assert d.find_element(By.ID, "image-system-0").get_attribute("value") == "painter-a"
    assert d.find_element(By.ID, "image-prompt-1").get_attribute("value") == "a red square"
    d.find_element(By.CSS_SELECTOR, "#images-form button[type=submit]").click()
    _wait(d, lambda d: "Uploaded 2 images and added 2 outputs" in d.find_element(By.ID, "message").text,
          "the images to be uploaded")

    status, body = _call(server, "POST", f"/api/projects/{slug}/annotators", {"name": "iris"}, ADMIN)
    assert status == 201
    d.get(f"{server}/p/{slug}/vote#token={urllib.parse.quote(body['token'])}")
    _wait(d, lambda d: _pair_id(d), "the image pair")
    natural = ("return ['left', 'right'].map(function (s) { var i = document.getElementById(s + '-image');"
               " return i.complete ? i.naturalWidth : 0; });")
    widths = _wait(d, lambda d: (lambda w: w if all(x > 0 for x in w) else None)(d.execute_script(natural)),
                   "both images to load")
    assert sorted(widths) == [5, 7]  # the uploaded images, decoded by the browser
    srcs = [d.find_element(By.ID, f"{s}-image").get_attribute("src") for s in ("left", "right")]
    assert all("/files/" in s and "sig=" in s for s in srcs)
    assert _csp_violations(d) == []
