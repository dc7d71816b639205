"""examples/webtransport in a real browser: Debian's Chromium, headless, QUIC on.

tests/browser/webtransport.js drives the page (the official engine.io-client bundle
with ``transports: ["webtransport"]``, the certificate accepted through
``serverCertificateHashes``); this file starts the example with short heartbeats
and checks what the browser saw against what the server saw (``/log.json``):

* ``webtransport`` reached directly, and by upgrade from polling;
* text and binary messages both ways (echoed);
* a server disconnect, a client close, a ping timeout, a refusal by the connect handler
  (``MAX_CLIENTS=1``: a second page is refused while the first is open).

Skipped without Chromium, node or playwright-core (failing under CI, as test_browser.py).
"""

from __future__ import annotations

import sys
from typing import Any

import httpx
import pytest
from exampleproc import REPO_ROOT, free_port, running
from test_browser import ARTIFACTS, Driver, pytestmark  # noqa: F401 - the same skip

pytest.importorskip("aioquic")

DRIVER = REPO_ROOT / "tests" / "browser" / "webtransport.js"
APP = [sys.executable, "examples/webtransport/app.py"]


class WTDriver(Driver):
    def __init__(self, *args: str) -> None:
        import test_browser

        saved = test_browser.DRIVER
        test_browser.DRIVER = DRIVER
        try:
            super().__init__(*args)
        finally:
            test_browser.DRIVER = saved


def _events(log: list[dict[str, Any]], sid: str) -> list[dict[str, Any]]:
    return [e for e in log if e.get("sid") == sid]


def test_webtransport_in_chromium() -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "webtransport.png"
    screenshot.unlink(missing_ok=True)
    port = free_port()
    env = {"PORT": str(port), "PING_INTERVAL": "1", "PING_TIMEOUT": "1", "MAX_CLIENTS": "1"}
    with running(APP, port, env=env) as server:
        driver = WTDriver(server.url, str(screenshot))
        try:
            scenarios: dict[str, dict[str, Any]] = {}
            while True:
                message = driver.next(timeout=60)
                if "scenario" in message:
                    scenarios[message["scenario"]] = message
                if "ok" in message:
                    report = message
                    break
        finally:
            driver.stop()
        log = httpx.get(server.url + "/log.json").json()
        output = server.output()
    assert report["ok"], (report.get("error"), scenarios, output)

    sent_back = ["héllo", {"binary": [0, 1, 2, 255]}]
    direct = scenarios["direct"]
    assert direct["received"] == sent_back
    assert direct["closed"] == "closed: transport close", direct  # the server's CLOSE packet
    assert [(e["event"], e.get("transport"), e.get("reason")) for e in _events(log, direct["sid"])] == [
        ("connect", "webtransport", None),
        ("message", "webtransport", None),
        ("message", "webtransport", None),
        ("disconnect", None, "server disconnect"),
    ]

    upgrade = scenarios["upgrade"]
    assert upgrade["first"] == "polling" and upgrade["received"] == sent_back
    events = _events(log, upgrade["sid"])
    assert events[0]["transport"] == "polling"  # the handshake
    assert [e["transport"] for e in events if e["event"] == "message"] == ["webtransport"] * 2
    # engine.io-client's close() closes the WebTransport session without a CLOSE packet
    assert (events[-1]["event"], events[-1]["reason"]) == ("disconnect", "transport close")

    timeout = scenarios["timeout"]
    last = _events(log, timeout["sid"])[-1]
    assert last == {"event": "disconnect", "sid": timeout["sid"], "reason": "ping timeout"}

    refused = scenarios["refused"]
    assert not refused["opened"] and refused["closed"].startswith("closed")
    assert any(e["event"] == "connect" and e["refused"] for e in log)
    for s in scenarios.values():
        # engine.io-client leaves the promise of its stream's pipeTo() unhandled, which
        # rejects when the session closes: the only page error there may be
        assert set(s["pageErrors"]) <= {"WebTransportError: The session is closed."}, s
    assert screenshot.is_file() and screenshot.stat().st_size > 5000
