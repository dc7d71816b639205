"""Refused origins are logged (rate-limited) and explained in the 403 body; unmatchable
entries of ``cors_allowed_origins`` are pointed out when the server is made."""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import pytest
from asgi_harness import http, start_websocket

import engineio_asgi
import engineio_asgi.server

pytestmark = pytest.mark.anyio

HS = "EIO=4&transport=polling"
LOGGER = "test.engineio.origins"


def _refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "is not an accepted origin" in r.getMessage()]


async def _get(app: Any, origin: str) -> Any:
    return await http(app, "GET", query=HS, headers=[("Origin", origin), ("Host", "srv.example")])


async def test_refused_origin_is_logged_once_per_interval_and_403_says_why(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engineio_asgi.server, "_REFUSED_ORIGIN_LOG_INTERVAL", 0.2)
    caplog.set_level(logging.INFO, logger=LOGGER)
    eio = engineio_asgi.AsyncServer(
        cors_allowed_origins=["https://good.example"], logger=logging.getLogger(LOGGER)
    )
    app = engineio_asgi.ASGIApp(eio)

    r = await _get(app, "https://evil.example")
    assert r.status == 403
    assert r.headers["content-type"] == "application/json"
    body = json.loads(r.body)
    assert body["code"] == 4
    assert "https://evil.example" in body["message"] and "not allowed" in body["message"]

    for _ in range(5):
        assert (await _get(app, "https://evil.example")).status == 403
    assert (await _get(app, "https://other.example")).status == 403
    assert (await _get(app, "https://good.example")).status == 200
    logged = _refusals(caplog)
    assert len(logged) == 2, logged
    assert logged[0].startswith("https://evil.example is not an accepted origin.")
    assert logged[1].startswith("https://other.example is not an accepted origin.")
    assert all(r.levelno == logging.WARNING for r in caplog.records if "accepted origin" in r.getMessage())

    await anyio.sleep(0.3)  # the interval is over: the next refusal is logged again
    assert (await _get(app, "https://evil.example")).status == 403
    assert len(_refusals(caplog)) == 3


async def test_refused_websocket_origin_is_logged_too(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    eio = engineio_asgi.AsyncServer(
        cors_allowed_origins="https://good.example", logger=logging.getLogger(LOGGER)
    )
    app = engineio_asgi.ASGIApp(eio)
    async with anyio.create_task_group() as tg:
        ws = await start_websocket(
            tg, app, "EIO=4&transport=websocket", headers=[("Origin", "https://evil.example")]
        )
        assert await ws.receive() is None
        assert ws.denied is not None and ws.denied["status"] == 403
    assert _refusals(caplog) == [_refusals(caplog)[0]]
    assert _refusals(caplog)[0].startswith("https://evil.example is not an accepted origin.")


async def test_logger_true_logs_refusals_on_the_default_logger(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="engineio_asgi.server")
    app = engineio_asgi.ASGIApp(engineio_asgi.AsyncServer(logger=True))
    assert (await _get(app, "https://evil.example")).status == 403
    assert len(_refusals(caplog)) == 1


async def test_many_distinct_refused_origins_do_not_flood_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    app = engineio_asgi.ASGIApp(
        engineio_asgi.AsyncServer(
            cors_allowed_origins=["https://good.example"], logger=logging.getLogger(LOGGER)
        )
    )
    for i in range(300):
        assert (await _get(app, f"https://evil{i}.example")).status == 403
    assert len(_refusals(caplog)) <= engineio_asgi.server._REFUSED_ORIGIN_LOG_LIMIT
    assert any("not logged" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("entry", "hint"),
    [
        ("example.com", "scheme"),
        ("https://example.com/", "slash"),
        ("https://example.com/app", "path"),
        ("https://Example.com", "lower"),
        ("https://example.com:443", "port"),
        (" https://example.com", "space"),
    ],
)
def test_unmatchable_origin_entries_are_pointed_out_at_construction(
    caplog: pytest.LogCaptureFixture, entry: str, hint: str
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    logger = logging.getLogger(LOGGER)
    for option in (entry, [entry, "https://fine.example"]):
        caplog.clear()
        engineio_asgi.AsyncServer(cors_allowed_origins=option, logger=logger)
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
        message = warnings[0].getMessage()
        assert repr(entry) in message and "cors_allowed_origins" in message
        assert hint in message.lower()


def test_matchable_origin_entries_give_no_hint(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    logger = logging.getLogger(LOGGER)
    for option in (
        None,
        "*",
        [],
        ["*"],
        "null",
        [
            "https://a.example",
            "http://localhost:5000",
            "http://127.0.0.1:8080",
            "https://xn--bcher-kva.example",
        ],
        lambda origin: True,
    ):
        engineio_asgi.AsyncServer(cors_allowed_origins=option, logger=logger)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
