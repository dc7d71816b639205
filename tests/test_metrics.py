"""The metrics, as a real Prometheus server scrapes them from the demo app.

The demo (examples/demo/app.py) runs on a free 127.0.0.1 port; Debian's
``prometheus`` (installed by .ci/install-system-deps) is started here on another,
scraping it every second, and stopped by its PID. Node engine.io-clients
(tests/node/eio_hold.js) connect over polling and upgrade to websocket, then
some close themselves; the test asks Prometheus's HTTP API, not the app, what it
saw.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any, Iterator

import httpx
import pytest
from exampleproc import REPO_ROOT, Proc, free_port, running
from nodeclient import node_available

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
HOLD_SCRIPT = REPO_ROOT / "tests" / "node" / "eio_hold.js"
QUERY_TIMEOUT = 30.0  # seconds for Prometheus to have scraped what the clients did

pytestmark = pytest.mark.skipif(not node_available(), reason="node and npm dependencies needed (npm ci)")


@contextlib.contextmanager
def prometheus(target_port: int) -> Iterator[str]:
    """A Prometheus server on 127.0.0.1 scraping ``/metrics`` on ``target_port`` every second."""
    if not os.path.exists(PROMETHEUS):
        pytest.fail("prometheus is missing: run .ci/install-system-deps")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="eio-prometheus-") as tmp:
        config = Path(tmp) / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: demo\n    metrics_path: /metrics\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"
        )
        log = open(Path(tmp) / "prometheus.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={Path(tmp) / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"prometheus exited: {(Path(tmp) / 'prometheus.log').read_text()[-2000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    pytest.fail("prometheus did not become ready within 30 s")
                time.sleep(0.1)
            yield url
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
            log.close()


def query(url: str, promql: str) -> dict[str, float]:
    """The instant vector of ``promql``, as {label values joined by ',': value}."""
    r = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=5)
    r.raise_for_status()
    out = {}
    for sample in r.json()["data"]["result"]:
        labels = {k: v for k, v in sample["metric"].items() if k not in ("__name__", "job", "instance")}
        out[",".join(f"{k}={v}" for k, v in sorted(labels.items()))] = float(sample["value"][1])
    return out


def wait_for(url: str, expected: dict[str, dict[str, float]]) -> None:
    """Ask Prometheus until every query returns (at least) the expected samples, or fail."""
    deadline = time.monotonic() + QUERY_TIMEOUT
    seen: dict[str, dict[str, float]] = {}
    while True:
        seen = {promql: query(url, promql) for promql in expected}
        if all({k: seen[q].get(k) for k in want} == want for q, want in expected.items()):
            return
        if time.monotonic() > deadline:
            closed = query(url, "engineio_sessions_closed_total")
            pytest.fail(f"Prometheus never saw {expected}; last answers: {seen}; closes: {closed}")
        time.sleep(0.5)  # the next scrape is at most 1 s away: there is no event to wait on


class Holder:
    """tests/node/eio_hold.js: Node clients held open, closed on command."""

    def __init__(self, url: str, polling: int, upgraded: int) -> None:
        self.proc = subprocess.Popen(
            ["node", str(HOLD_SCRIPT), url, f"--polling={polling}", f"--upgraded={upgraded}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=str(REPO_ROOT),
        )

    def line(self) -> dict[str, Any]:
        out: IO[str] = self.proc.stdout  # type: ignore[assignment]
        text = out.readline()
        if not text:
            raise AssertionError(f"the Node clients ended: {self.proc.stderr.read()}")  # type: ignore[union-attr]
        result: dict[str, Any] = json.loads(text)
        if "error" in result:
            raise AssertionError(f"Node clients: {result['error']}")
        return result

    def command(self, text: str) -> dict[str, Any]:
        self.proc.stdin.write(text + "\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        return self.line()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.stdin.close()  # type: ignore[union-attr]
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


@pytest.fixture
def demo() -> Iterator[Proc]:
    port = free_port()
    cmd = [sys.executable, "examples/demo/app.py"]
    with running(cmd, port, env={"PORT": str(port)}) as proc:
        yield proc


def test_prometheus_sees_sessions_upgrades_and_closes(demo: Proc) -> None:
    polling, upgraded = 3, 2
    with prometheus(demo.port) as prom:
        holder = Holder(f"{demo.url}", polling, upgraded)
        try:
            ready = holder.line()
            assert ready["open"] == {"polling": polling, "websocket": upgraded}
            assert ready["transports"] == ["websocket"] * upgraded
            wait_for(
                prom,
                {
                    "engineio_sessions": {"transport=polling": polling, "transport=websocket": upgraded},
                    "engineio_upgrades_total": {"": upgraded},
                    "engineio_upgrade_failures_total": {"": 0},
                    "engineio_handshakes_total": {
                        "protocol=4,transport=polling": polling + upgraded,
                        "protocol=4,transport=websocket": 0,
                    },
                    'engineio_sessions_closed_total{reason="client disconnect"}': {
                        "reason=client disconnect": 0
                    },
                },
            )
            assert holder.command("close-polling 1")["open"] == {
                "polling": polling - 1,
                "websocket": upgraded,
            }
            assert holder.command("close-websocket 1")["open"] == {"polling": polling - 1, "websocket": 1}
            wait_for(
                prom,
                {
                    "engineio_sessions": {"transport=polling": polling - 1, "transport=websocket": 1},
                    # engine.io-client closes polling with a CLOSE packet, but a websocket
                    # by closing it (no packet): the server sees a transport close
                    "engineio_sessions_closed_total": {
                        "reason=client disconnect": 1,
                        "reason=transport close": 1,
                        "reason=transport error": 0,
                        "reason=ping timeout": 0,
                    },
                    "engineio_upgrades_total": {"": upgraded},
                },
            )
            # the demo broadcasts each join and leave: messages went out on both transports
            sent = query(prom, "engineio_messages_sent_total")
            assert sent["transport=polling"] > 0 and sent["transport=websocket"] > 0
            up = query(prom, 'up{job="demo"}')
            assert up == {"": 1.0}
        finally:
            holder.stop()
