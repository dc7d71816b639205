"""The demo in a real browser: Debian's Chromium, headless, driven by playwright-core.

tests/browser/drive.js runs the browser side; this file starts and restarts the
servers (each in its own process on 127.0.0.1, stopped by PID) and checks what
the browser saw:

* the demo page connects over long polling, upgrades to websocket, exchanges
  text (seen by a second tab) and binary, and reconnects by itself after the
  server restarts; a screenshot goes to tests/artifacts/demo.png;
* a page served from another origin is refused (polling and websocket) by the
  demo, whose CORS policy is same-origin, and connects to a second instance
  started with that origin in ``CORS_ORIGINS`` (tests/artifacts/cross-origin.png).

Chromium comes from ``.ci/install-browser``; without it these tests skip, except
under CI (``CI=true``), where a missing browser fails.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from typing import Any

import httpx
import pytest
from exampleproc import REPO_ROOT, Proc, free_port, running

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
DRIVER = REPO_ROOT / "tests" / "browser" / "drive.js"
ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
PLAYWRIGHT = REPO_ROOT / "node_modules" / "playwright-core" / "package.json"
DEMO = [sys.executable, "examples/demo/app.py"]

_missing = [
    what
    for what, ok in (
        (CHROMIUM, os.access(CHROMIUM, os.X_OK)),
        ("node", shutil.which("node") is not None),
        ("playwright-core (npm ci)", PLAYWRIGHT.is_file()),
    )
    if not ok
]
if _missing and os.environ.get("CI"):
    raise RuntimeError(f"browser tests need {', '.join(_missing)}: run .ci/install-browser and npm ci")
pytestmark = pytest.mark.skipif(bool(_missing), reason=f"missing {', '.join(_missing)}")


class Driver:
    """tests/browser/drive.js as a subprocess: JSON lines out, command lines in."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [shutil.which("node") or "node", str(DRIVER), *args],
            cwd=str(REPO_ROOT),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._collect, args=(self.proc.stderr,), daemon=True).start()

    @staticmethod
    def _pump(stream: Any, lines: queue.Queue[str | None]) -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    def _collect(self, stream: Any) -> None:
        for line in stream:
            self.stderr.append(line)

    def next(self, timeout: float) -> dict[str, Any]:
        """The next JSON line from the driver (raises after ``timeout`` seconds)."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"the driver said nothing for {timeout}s; seen {self.seen}") from None
            if line is None:
                stderr = "".join(self.stderr)
                raise AssertionError(f"the driver exited; seen {self.seen}; stderr:\n{stderr}")
            line = line.strip()
            if line.startswith("{"):
                message: dict[str, Any] = json.loads(line)
                self.seen.append(message)
                return message

    def until(self, event: str, timeout: float) -> dict[str, Any]:
        while True:
            message = self.next(timeout)
            if message.get("event") == event:
                return message
            if "ok" in message:
                raise AssertionError(f"the browser driver finished before {event!r}: {message}")

    def result(self, timeout: float) -> dict[str, Any]:
        while True:
            message = self.next(timeout)
            if "ok" in message:
                return message

    def tell(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        """SIGTERM the driver (playwright then closes its browser), then SIGKILL its group."""
        proc = self.proc
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def test_demo_polling_upgrade_text_binary_and_restart() -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "demo.png"
    screenshot.unlink(missing_ok=True)
    port = free_port()
    server = Proc(DEMO, port, env={"PORT": str(port)})
    driver = None
    try:
        server.start()
        driver = Driver("demo", server.url + "/", str(screenshot))
        ready = driver.until("ready-for-restart", timeout=45)
        server.stop()  # SIGTERM: the sessions end, the page starts retrying
        server.start()  # the same port
        driver.tell("restarted")
        report = driver.result(timeout=45)
    finally:
        if driver is not None:
            driver.stop()
        server.cleanup()
    assert report["ok"], report.get("error")
    sid1, sid2 = report["sid1"], report["sid2"]
    assert ready["sid"] == sid1 and sid2 != sid1 and report["sidTab2"] not in (sid1, sid2)
    # the first Engine.IO request is the polling handshake; the websocket upgrades that session
    first = report["requests"][0]
    assert first.startswith("GET ") and "transport=polling" in first and "sid=" not in first
    assert any("transport=websocket" in u and f"sid={sid1}" in u for u in report["websockets"])
    assert any("transport=websocket" in u and f"sid={sid2}" in u for u in report["websockets"])
    log = report["log"]
    assert any(line.startswith("closed: ") for line in log), log
    assert report["pageErrors"] == []
    assert screenshot.is_file() and screenshot.stat().st_size > 5000


def test_cross_origin_page_refused_until_its_origin_is_allowed() -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "cross-origin.png"
    page_port, refused_port, allowed_port = free_port(), free_port(), free_port()
    page_origin = f"http://127.0.0.1:{page_port}"
    static = [sys.executable, "-m", "http.server", str(page_port), "--bind", "127.0.0.1"]
    static += ["--directory", str(REPO_ROOT / "tests" / "browser")]
    with (
        running(static, page_port) as pages,
        running(DEMO, refused_port, env={"PORT": str(refused_port)}) as refused,
        running(DEMO, allowed_port, env={"PORT": str(allowed_port), "CORS_ORIGINS": page_origin}) as allowed,
    ):
        driver = Driver("cors", pages.url + "/cross_origin.html", refused.url, allowed.url, str(screenshot))
        try:
            report = driver.result(timeout=45)
        finally:
            driver.stop()
        # what the browser could not show: the refusal is the server's 403, the allowance its header
        query = {"EIO": "4", "transport": "polling"}
        denied = httpx.get(refused.url + "/engine.io/", params=query, headers={"Origin": page_origin})
        granted = httpx.get(allowed.url + "/engine.io/", params=query, headers={"Origin": page_origin})
    assert denied.status_code == 403 and "access-control-allow-origin" not in denied.headers
    assert granted.status_code == 200 and granted.headers["access-control-allow-origin"] == page_origin
    assert report["ok"], report.get("error")
    assert report["origin"] == page_origin
    for attempt in (report["refusedPolling"], report["refusedWebsocket"]):
        assert not attempt["opened"], attempt
        assert attempt["finish"] == "closed", attempt
    # Chromium refused the polling handshake for want of CORS headers, and the websocket on a 403
    assert any(f["url"].startswith(refused.url) for f in report["failed"]), report["failed"]
    console = report["console"]
    assert any(
        f"at '{refused.url}/engine.io/" in m and f"from origin '{page_origin}'" in m and "CORS policy" in m
        for m in console
    ), console
    assert any(f"'ws://127.0.0.1:{refused_port}/engine.io/" in m and "403" in m for m in console), console
    ok = report["allowed"]
    assert ok["finish"] == "ok", ok
    assert ok["opened"] and ok["upgraded"] and ok["transport"] == "websocket"


ADMIN_UI_DRIVER = REPO_ROOT / "tests" / "browser" / "admin_ui.js"
ADMIN_UI = REPO_ROOT / "node_modules" / "@socket.io" / "admin-ui" / "ui" / "dist" / "index.html"


def test_socketio_admin_ui_lists_the_connected_clients() -> None:
    """The admin UI (npm's @socket.io/admin-ui, its built files) against ``instrument(auth=False)``."""
    from servers import running_server

    assert ADMIN_UI.is_file(), "the admin UI is missing: npm ci"
    ARTIFACTS.mkdir(exist_ok=True)
    with running_server("apps.socketio_app:app", "uvicorn", env={"SIO_ADMIN": "open"}) as srv:
        proc = subprocess.run(
            [shutil.which("node") or "node", str(ADMIN_UI_DRIVER), srv.url, str(ARTIFACTS)],
            capture_output=True,
            text=True,
            timeout=90,
            cwd=str(REPO_ROOT),
        )
        lines = proc.stdout.strip().splitlines()
        assert lines, f"no report from the driver: {proc.stderr[-2000:]}"
        report = json.loads(lines[-1])
        assert report["ok"], f"{report.get('error')}\n{srv.stderr_text()[-2000:]}"
    clients = {c["id"]: c["transport"] for c in report["clients"]}
    assert sorted(clients.values()) == ["polling", "websocket"]
    shown = {"HTTP long-polling": "polling", "WebSocket": "websocket"}
    rows = {}
    for row in report["rows"]:
        cells = [c.strip() for c in row.split("\t")]
        rows[cells[0]] = shown[cells[2]]
        assert cells[1] == "127.0.0.1"
    assert rows == clients
    assert (ARTIFACTS / "admin-ui-sockets.png").stat().st_size > 0
    assert (ARTIFACTS / "admin-ui-dashboard.png").stat().st_size > 0
