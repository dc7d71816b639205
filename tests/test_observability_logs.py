"""Handler errors are logged once per cause and interval, with the sid and the client's
address; the access logger writes one DEBUG line per response; ``stats()`` counts."""

from __future__ import annotations

import dataclasses
import json
import logging

import anyio
import pytest
from asgi_harness import http

import engineio_asgi
import engineio_asgi._handlers

pytestmark = pytest.mark.anyio

LOGGER = "test.engineio.handler_errors"
HS = "EIO=4&transport=polling"


async def _open(app: engineio_asgi.ASGIApp) -> str:
    r = await http(app, "GET", query=HS)
    assert r.status == 200
    return str(json.loads(r.body[1:])["sid"])


async def _post(app: engineio_asgi.ASGIApp, sid: str, body: bytes) -> None:
    r = await http(app, "POST", query=f"{HS}&sid={sid}", body=body)
    assert r.status == 200


async def test_a_failing_handler_is_logged_once_per_cause_with_sid_and_address(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engineio_asgi._handlers, "_ERROR_LOG_INTERVAL", 0.3)
    caplog.set_level(logging.INFO, logger=LOGGER)
    eio = engineio_asgi.AsyncServer(logger=logging.getLogger(LOGGER), async_handlers=False)

    @eio.on("message")
    async def message(sid: str, data: object) -> None:
        if data == "key":
            raise KeyError("boom")
        raise ValueError("bang")

    app = engineio_asgi.ASGIApp(eio)
    sid = await _open(app)
    burst = engineio_asgi._handlers._ERROR_LOG_BURST
    for _ in range(burst + 4):
        await _post(app, sid, b"4value")
    await _post(app, sid, b"4key")
    errors = [r for r in caplog.records if "handler error" in r.getMessage()]
    assert [r.exc_info[0] for r in errors if r.exc_info] == [ValueError] * burst + [KeyError]
    assert errors[0].getMessage() == f"sid {sid} (client 10.1.2.3:45678): message handler error"
    await anyio.sleep(0.35)  # the interval is over: the next one is logged, saying how many were not
    await _post(app, sid, b"4value")
    errors = [r for r in caplog.records if "handler error" in r.getMessage()]
    assert len(errors) == burst + 2
    assert errors[-1].getMessage().endswith("(4 more like it not logged in the last 0 s)")
    await eio.shutdown()


async def test_access_log_and_stats(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="engineio_asgi.server.access")
    eio = engineio_asgi.AsyncServer()
    app = engineio_asgi.ASGIApp(eio)
    sid = await _open(app)
    await _post(app, sid, b"4hello")
    r = await http(app, "GET", query="EIO=9&transport=polling")
    assert r.status == 400
    lines = [r.getMessage() for r in caplog.records if r.name == "engineio_asgi.server.access"]
    assert len(lines) == 3, lines
    assert lines[0].startswith("10.1.2.3:45678 GET /engine.io/?EIO=4&transport=polling 200 ")
    assert lines[2].startswith("10.1.2.3:45678 GET /engine.io/?EIO=9&transport=polling 400 ")
    s = eio.stats()
    assert s.sessions == {"polling": 1, "websocket": 0, "webtransport": 0}
    assert s.handshakes == {("polling", 4): 1}
    assert s.refused == {5: 1}
    assert s.messages_received == {"polling": 1, "websocket": 0}
    assert s.bytes_received["polling"] == len(b"4hello")
    await eio.disconnect(sid)
    s = eio.stats()
    assert s.sessions == {"polling": 0, "websocket": 0, "webtransport": 0} and s.sessions_closing == 1
    assert s.closed == {"server disconnect": 1}
    await eio.shutdown()


async def test_timer_lag_shows_a_blocked_event_loop() -> None:
    """A handler that blocks the loop makes the timer's next wake-up late, and stats() says by how much."""
    import time

    eio = engineio_asgi.AsyncServer(ping_interval=0.1, ping_timeout=5)
    app = engineio_asgi.ASGIApp(eio)
    await _open(app)  # its first ping is due in 0.1 s: the timer will wake then
    assert eio.stats().timer_wakeups == 0
    time.sleep(0.4)  # the event loop blocked, as by a handler doing blocking I/O
    with anyio.fail_after(5):
        while eio.stats().timer_wakeups == 0:
            await anyio.sleep(0.01)
    s = eio.stats()
    assert s.timer_lag_seconds >= 0.25 and s.timer_lag_max_seconds >= 0.25
    await eio.shutdown()


async def test_metrics_endpoint_serves_the_snapshot_in_prometheus_format() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from engineio_asgi.metrics import metrics_app

    eio = engineio_asgi.AsyncServer()
    app = engineio_asgi.ASGIApp(eio)
    metrics = metrics_app(eio)
    await _open(app)
    await http(app, "GET", query="transport=polling")  # refused: no EIO (code 5)
    r = await http(metrics, "GET", path="/metrics")
    assert r.status == 200 and r.headers["content-type"].startswith("text/plain; version=")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }
    assert samples[("engineio_sessions", (("transport", "polling"),))] == 1
    assert samples[("engineio_sessions", (("transport", "websocket"),))] == 0
    assert samples[("engineio_handshakes_total", (("protocol", "4"), ("transport", "polling")))] == 1
    assert samples[("engineio_requests_refused_total", (("code", "5"),))] == 1
    assert samples[("engineio_requests_refused_total", (("code", "1"),))] == 0
    assert (await http(metrics, "POST", path="/metrics")).status == 405
    await eio.shutdown()


def test_the_collector_exports_webtransport_sessions_and_handshakes() -> None:
    """A transport beyond polling and websocket (WebTransport, in the session gauge and
    the handshakes) is exported too, not dropped."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from engineio_asgi.metrics import EngineIOCollector

    eio = engineio_asgi.AsyncServer(transports=["polling", "websocket", "webtransport"])
    real = eio.stats()
    snapshot = dataclasses.replace(
        real,
        sessions={"polling": 1, "websocket": 0, "webtransport": 2},
        handshakes={("polling", 4): 1, ("webtransport", 4): 2},
    )

    class Fixed:
        def stats(self) -> object:
            return snapshot

    registry = CollectorRegistry()
    registry.register(EngineIOCollector(Fixed()))
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
    }
    assert samples[("engineio_sessions", (("transport", "webtransport"),))] == 2
    assert samples[("engineio_sessions", (("transport", "polling"),))] == 1
    assert samples[("engineio_handshakes_total", (("protocol", "4"), ("transport", "webtransport")))] == 2
    assert samples[("engineio_sessions", (("transport", "websocket"),))] == 0
