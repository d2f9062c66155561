"""Screenshots of ``bradley serve`` for docs/serve.md (docs/img/serve-vote.png, docs/img/serve-leaderboard.png).

Starts the app on a free loopback port with a throwaway SQLite database,
creates a project with six real arena model names and short outputs written
for this page, lets eight simulated annotators vote through the API (outcomes
drawn from a Bradley-Terry model with fixed strengths, seeded), then opens the
vote page and the leaderboard in headless Chromium and saves them.

Needs ``pip install 'bradley[serve]' selenium`` and Debian's ``chromium
chromium-driver``. Run from the repository root::

    python examples/serve_screenshots.py            # writes docs/img/serve-*.png
"""

from __future__ import annotations

import json
import math
import os
import random
import secrets
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ADMIN = secrets.token_urlsafe(32)  # the server wants a random admin token of 32+ characters
OUT = Path(__file__).resolve().parents[1] / "docs" / "img"

#: true log-strengths of the simulated annotators' judgments
STRENGTH = {
    "gemini-2.5-pro": 0.9,
    "o3-2025-04-16": 0.7,
    "claude-opus-4-20250514": 0.6,
    "chatgpt-4o-latest-20250326": 0.2,
    "qwen3-235b-a22b-no-thinking": 0.0,
    "gemma-3-27b-it": -0.5,
}

ANSWERS = {
    "Explain in two sentences why the sky is blue.": {
        "gemini-2.5-pro": "Sunlight is a mix of all colours, and the molecules of the air scatter short "
        "(blue) wavelengths far more strongly than long (red) ones - Rayleigh scattering goes as 1/wavelength^4.\n\n"
        "So wherever you look away from the Sun, you see that scattered blue light coming from every direction.",
        "o3-2025-04-16": "Air molecules scatter blue light much more than red light (Rayleigh scattering), so blue "
        "light reaches your eyes from all over the sky. At sunset the light crosses more air, the blue is scattered "
        "away, and the sky turns red and orange.",
        "claude-opus-4-20250514": "Sunlight contains every colour, but the nitrogen and oxygen molecules in the "
        "atmosphere scatter shorter, bluer wavelengths much more than longer, redder ones. That scattered blue light "
        "reaches us from every part of the sky, so the sky looks blue.",
        "chatgpt-4o-latest-20250326": "The sky is blue because of Rayleigh scattering: small particles in the "
        "atmosphere scatter shorter wavelengths of light more. Our eyes are also more sensitive to blue than violet.",
        "qwen3-235b-a22b-no-thinking": "Because the atmosphere scatters blue light. Blue light has a shorter "
        "wavelength so it is scattered more, making the sky appear blue during the day.",
        "gemma-3-27b-it": "The sky is blue because it reflects the colour of the oceans, which cover most of the "
        "planet. This reflected light is what we see when we look up.",
    },
    "Write a haiku about a code review.": {
        "gemini-2.5-pro": "Red lines bloom like frost -\none small comment on line nine\nteaches more than books.",
        "o3-2025-04-16": "Diff scrolls past midnight\n\"nit: rename this variable\"\nthe build turns green, dawn.",
        "claude-opus-4-20250514": "A stranger's kind eyes\nfind the bug I could not see -\napproved, with one change.",
        "chatgpt-4o-latest-20250326": "Pull request opens,\nreviewers leave their comments,\ncode gets better now.",
        "qwen3-235b-a22b-no-thinking": "Code review today\nmany comments on my code\nI will fix them all",
        "gemma-3-27b-it": "Code review is when\nother developers read code\nand give feedback.",
    },
    "What is 17 x 23? Answer with the number only.": {
        "gemini-2.5-pro": "391",
        "o3-2025-04-16": "391",
        "claude-opus-4-20250514": "391",
        "chatgpt-4o-latest-20250326": "391",
        "qwen3-235b-a22b-no-thinking": "17 x 23 = 391",
        "gemma-3-27b-it": "381",
    },
}


def _call(base: str, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw, status = resp.read().decode(), resp.status
    except urllib.error.HTTPError as err:
        raw, status = err.read().decode(), err.code
    return status, (json.loads(raw) if raw else None)


def _start_server(db_path: Path) -> tuple[str, Any, threading.Thread]:
    import uvicorn

    from bradley.serve import create_app

    app = create_app(f"sqlite:///{db_path}", admin_token=ADMIN)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if _call(base, "GET", "/healthz")[0] == 200:
                return base, server, thread
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the server did not start")


def _populate(base: str, slug: str, rng: random.Random) -> None:
    status, _ = _call(base, "POST", "/api/projects", {
        "slug": slug, "name": "Assistant answers, November",
        "description": "Six chat models on short everyday prompts"}, ADMIN)
    assert status == 201, status
    outputs = [{"system": system, "prompt": prompt, "text": text}
               for prompt, answers in ANSWERS.items() for system, text in answers.items()]
    assert _call(base, "POST", f"/api/projects/{slug}/outputs", {"outputs": outputs}, ADMIN)[0] == 200
    for name in ("ana", "ben", "chen", "dara", "eli", "fay", "gus", "hana"):
        status, annotator = _call(base, "POST", f"/api/projects/{slug}/annotators", {"name": name}, ADMIN)
        assert status == 201, status
        while True:
            status, pair = _call(base, "GET", f"/api/projects/{slug}/next", token=annotator["token"])
            if status == 204:
                break
            # the systems are hidden until the vote: the simulated judge looks them up from its own record
            left = next(s for s, t in ANSWERS[pair["prompt"]].items() if t == pair["left"]["text"])
            right = next(s for s, t in ANSWERS[pair["prompt"]].items() if t == pair["right"]["text"] and s != left)
            p_left = 1 / (1 + math.exp(STRENGTH[right] - STRENGTH[left]))
            u = rng.random()
            if u < 0.15:
                outcome = "tie" if u < 0.12 else "both_bad"
            else:
                outcome = "left" if rng.random() < p_left else "right"
            body = {"pair_id": pair["pair_id"], "outcome": outcome}
            assert _call(base, "POST", f"/api/projects/{slug}/votes", body, annotator["token"])[0] == 201


def main() -> int:
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    os.environ.setdefault("SE_OFFLINE", "true")
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        base, server, thread = _start_server(Path(tmp) / "arena.db")
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--hide-scrollbars",
                    "--window-size=1280,820", "--force-device-scale-factor=1"):
            options.add_argument(arg)
        driver = webdriver.Chrome(options=options, service=webdriver.ChromeService("/usr/bin/chromedriver"))
        try:
            slug = "assistants"
            _populate(base, slug, random.Random(7))
            print("votes:", _call(base, "GET", f"/api/projects/{slug}/leaderboard")[1]["n_votes"])

            status, annotator = _call(base, "POST", f"/api/projects/{slug}/annotators",
                                      {"name": "iris", "max_votes": 40}, ADMIN)
            # a few votes first so the progress line has something to show
            for _ in range(7):
                status, pair = _call(base, "GET", f"/api/projects/{slug}/next", token=annotator["token"])
                _call(base, "POST", f"/api/projects/{slug}/votes", {"pair_id": pair["pair_id"], "outcome": "tie"},
                      annotator["token"])
            driver.get(f"{base}/p/{slug}/vote#token={annotator['token']}")
            wait = WebDriverWait(driver, 15)
            # the screenshot shows the haiku prompt: skip (by voting) pairs on other prompts
            for _ in range(30):
                wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-pair-id"))
                if "haiku" in driver.find_element(By.ID, "prompt").text:
                    break
                before = driver.find_element(By.TAG_NAME, "body").get_attribute("data-pair-id")
                driver.find_element(By.CSS_SELECTOR, '.choices button[data-outcome="tie"]').click()
                wait.until(lambda d: d.find_element(By.ID, "reveal").is_displayed())
                driver.find_element(By.ID, "next").click()
                wait.until(lambda d, old=before: d.find_element(By.TAG_NAME, "body").get_attribute("data-pair-id")
                           != old)
            driver.find_element(By.CSS_SELECTOR, '.choices button[data-outcome="left"]').click()
            wait.until(lambda d: d.find_element(By.ID, "reveal").is_displayed())
            driver.execute_script("document.activeElement.blur()")
            driver.save_screenshot(str(OUT / "serve-vote.png"))

            driver.get(f"{base}/p/{slug}/leaderboard")
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#rows tr[data-system]"))
            driver.save_screenshot(str(OUT / "serve-leaderboard.png"))
            print("wrote", OUT / "serve-vote.png", OUT / "serve-leaderboard.png")
        finally:
            driver.quit()
            server.should_exit = True
            thread.join(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
