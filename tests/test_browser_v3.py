"""Engine.IO v3 in a real browser: the engine.io-client 3.x bundle in headless Chromium.

tests/apps/v3_browser_app.py (``allow_eio3=True``) serves tests/browser/v3.html and the
bundle from ``npm ci`` (``node_modules/engine.io-client-v3/engine.io.js``); the page,
driven by tests/browser/drive.js, connects four times: XHR polling (binary travels in
XHR2 binary payloads), JSONP forced (``___eio[n](...)`` scripts and form POSTs), websocket
only, and polling upgraded to websocket. Each run echoes text (a €, an emoji, U+2028, a
newline and a backslash-n) and binary, and sees one of its pings answered.
"""

from __future__ import annotations

import sys
from urllib.parse import parse_qs, urlsplit

import pytest
from exampleproc import REPO_ROOT, free_port, running

from tests.test_browser import ARTIFACTS, Driver, pytestmark  # noqa: F401 - the same skip rule

APP = [sys.executable, "-m", "uvicorn", "--app-dir", "tests", "apps.v3_browser_app:app"]
BUNDLE = REPO_ROOT / "node_modules" / "engine.io-client-v3" / "engine.io.js"


def _sid_of(url: str) -> str | None:
    return parse_qs(urlsplit(url).query).get("sid", [None])[0]


def test_v3_bundle_over_polling_jsonp_websocket_and_upgrade() -> None:
    if not BUNDLE.is_file():
        pytest.skip("engine.io-client-v3 missing: run npm ci")
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "v3.png"
    screenshot.unlink(missing_ok=True)
    port = free_port()
    with running([*APP, "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"], port) as app:
        driver = Driver("v3", app.url + "/", str(screenshot))
        try:
            report = driver.result(timeout=60)
        finally:
            driver.stop()
    assert report["ok"], report.get("error")
    runs = report["runs"]
    for run in runs.values():
        assert run["finish"] == "ok", run
        assert run["echoed"] == ["text ok", "binary ok"], run
        assert run["pongs"] >= 1 and not run["errors"], run
    assert runs["polling"]["transport"] == "polling" and runs["polling"]["supportsBinary"]
    assert runs["jsonp"]["transport"] == "polling" and not runs["jsonp"]["supportsBinary"]
    assert runs["websocket"]["handshakeTransport"] == "websocket"
    assert runs["upgrade"]["handshakeTransport"] == "polling" and runs["upgrade"]["upgraded"]
    assert runs["upgrade"]["transport"] == "websocket"

    def types(run: str) -> set[str]:
        sid = runs[run]["sid"]
        return {r["type"] for r in report["responses"] if _sid_of(r["url"]) == sid and r["status"] == 200}

    # XHR: binary came back in an XHR2 binary payload; JSONP: only scripts, every request with j=
    assert "application/octet-stream" in types("polling"), report["responses"]
    assert types("jsonp") == {"text/javascript; charset=UTF-8"}, report["responses"]
    jsonp_requests = [u for u in report["requests"] if _sid_of(u.split(" ", 1)[1]) == runs["jsonp"]["sid"]]
    assert jsonp_requests and all("j=" in u for u in jsonp_requests)
    assert any(u.startswith("POST ") for u in jsonp_requests)
    assert any(f"sid={runs['upgrade']['sid']}" in u for u in report["websockets"])
    assert report["pageErrors"] == []
    assert screenshot.is_file()
