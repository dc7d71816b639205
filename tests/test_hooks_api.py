"""The server hooks in process, on asyncio and trio: what ``on()`` takes, how refused
requests are logged, and what happens when a hook misbehaves. (Their behaviour with
real servers and clients is tests/test_hooks.py.)"""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import pytest
from asgi_harness import http, start_websocket

import engineio_asgi
from engineio_asgi.exceptions import ConnectionRefusedError

pytestmark = pytest.mark.anyio

LOGGER = "test.engineio.hooks"
HS = "EIO=4&transport=polling"


def make(**kwargs: Any) -> tuple[engineio_asgi.AsyncServer, engineio_asgi.ASGIApp]:
    eio = engineio_asgi.AsyncServer(logger=logging.getLogger(LOGGER), **kwargs)
    return eio, engineio_asgi.ASGIApp(eio)


async def handshake(app: Any, query: str = HS) -> str:
    r = await http(app, "GET", query=query)
    assert r.status == 200, r.body
    return json.loads(r.text[1:].split("\x1e")[0])["sid"]  # type: ignore[no-any-return]


def lines(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if text in r.getMessage()]


async def test_on_takes_the_hooks_and_refuses_unknown_names() -> None:
    eio, _ = make()
    for name in ("connect", "message", "disconnect", "connection_error", "initial_headers", "headers"):
        eio.on(name, print)

    @eio.on("upgrade")
    def upgrade(sid: str, transport: str) -> None:
        pass

    assert eio.handlers["upgrade"] is upgrade and eio.handlers["headers"] is print
    for bad in ("bogus", "connection-error", "upgrading", "Headers"):
        with pytest.raises(ValueError, match="invalid event"):
            eio.on(bad, print)


async def test_refused_requests_are_logged_once_per_cause_and_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    eio, app = make()
    assert (await http(app, "GET", query=HS + "&sid=gone0")).status == 400
    now = [eio._clock()]
    eio._clock = lambda: now[0]  # the log's interval is read from the server's clock
    for i in range(1, 5):
        assert (await http(app, "GET", query=f"{HS}&sid=gone{i}")).status == 400
    assert (await http(app, "GET", query="EIO=7&transport=polling")).status == 400
    logged = lines(caplog, "refused request")
    assert len(logged) == 2, [r.getMessage() for r in logged]
    first, other = (r.getMessage() for r in logged)
    assert first.startswith("refused request from 10.1.2.3:45678 for sid gone0: code 1 (Session ID unknown)")
    assert "code 5 (Unsupported protocol version)" in other and "'protocol': '7'" in other
    assert all(r.levelno == logging.WARNING for r in logged)

    now[0] += engineio_asgi._hooks.REFUSAL_LOG_INTERVAL  # the interval is over
    assert (await http(app, "GET", query=f"{HS}&sid=gone5")).status == 400
    last = lines(caplog, "refused request")[-1].getMessage()
    assert "for sid gone5" in last and "; 4 more like it since the last line were not logged" in last


async def test_refusals_by_allow_request_are_logged_at_info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    _, app = make(allow_request=lambda environ: False)
    assert (await http(app, "GET", query=HS)).status == 403
    (record,) = lines(caplog, "refused request")
    assert record.levelno == logging.INFO and "code 4 (Forbidden)" in record.getMessage()


@pytest.mark.parametrize(
    ("verdict", "status", "message"),
    [
        (True, 200, None),
        (None, 200, None),
        (False, 403, "Forbidden"),
        ("banned here", 403, "banned here"),
        (ConnectionRefusedError(), 403, "Forbidden"),
        (ConnectionRefusedError({"why": "banned"}), 403, '{"why": "banned"}'),
        (RuntimeError("bug"), 403, "Forbidden"),
    ],
    ids=["true", "none", "false", "str", "refused", "refused-json", "bug"],
)
async def test_what_allow_request_returns_or_raises(
    verdict: Any, status: int, message: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)

    async def allow(environ: dict[str, Any]) -> Any:
        assert environ["REMOTE_ADDR"] == "10.1.2.3" and environ["QUERY_STRING"] == HS
        if isinstance(verdict, Exception):
            raise verdict
        return verdict

    _, app = make(allow_request=allow)
    r = await http(app, "GET", query=HS)
    assert r.status == status
    if message is not None:
        assert json.loads(r.body) == {"code": 4, "message": message}
    assert bool(lines(caplog, "allow_request raised")) == isinstance(verdict, RuntimeError)


async def test_header_hooks_cannot_break_a_response(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    eio, app = make()

    @eio.on("initial_headers")
    def initial(headers: dict[str, Any], environ: dict[str, Any]) -> None:
        headers["X-Good"] = "kept"
        headers["Bad Name"] = "x"
        headers["X-Split"] = "a\r\nSet-Cookie: evil=1"
        headers["Content-Length"] = "0"
        headers["X-Number"] = 5
        headers["X-Object"] = object()
        raise RuntimeError("after adding")

    r = await http(app, "GET", query=HS)
    assert r.status == 200 and r.text.startswith("0{")
    assert r.headers["x-good"] == "kept" and r.headers["x-number"] == "5"
    assert "x-split" not in r.headers and "set-cookie" not in r.headers
    assert int(r.headers["content-length"]) == len(r.body)
    problems = lines(caplog, "from a headers hook is not sent")
    assert sorted(p.args[0] for p in problems) == ["Bad Name", "Content-Length", "X-Object", "X-Split"]  # type: ignore[index]
    assert lines(caplog, "initial_headers handler error")


async def test_a_failing_connection_error_handler_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    eio, app = make()
    got: list[Any] = []

    @eio.on("connection_error")
    def broken(error: Any) -> None:
        got.append(error)
        raise RuntimeError("handler bug")

    r = await http(app, "GET", query=HS + "&sid=gone")
    assert r.status == 400 and json.loads(r.body)["code"] == 1
    (error,) = got
    assert (error.code, error.message, error.context) == (1, "Session ID unknown", {"sid": "gone"})
    assert error.environ["REMOTE_ADDR"] == "10.1.2.3"
    assert "code=1" in repr(error)
    assert lines(caplog, "connection_error handler error")


@pytest.mark.parametrize("async_handlers", [True, False])
async def test_upgrade_handler_runs_like_a_message_handler(async_handlers: bool) -> None:
    eio, app = make(async_handlers=async_handlers)
    order: list[str] = []

    @eio.on("upgrade")
    async def upgrade(sid: str, transport: str) -> None:
        order.append(f"upgrade {transport}")
        await anyio.sleep(0.05)  # the handler's own work
        order.append("upgrade done")

    @eio.on("message")
    async def message(sid: str, data: Any) -> None:
        order.append(f"message {data}")
        await eio.send(sid, data)

    sid = await handshake(app)
    async with anyio.create_task_group() as tg:
        ws = await start_websocket(tg, app, f"EIO=4&transport=websocket&sid={sid}")
        await ws.send_text("2probe")
        assert await ws.receive() == "3probe"
        await ws.send_text("5")
        await ws.send_text("4after")
        assert await ws.receive() == "4after"
        with anyio.fail_after(5):
            while "upgrade done" not in order:
                await anyio.sleep(0.01)
        await eio.disconnect(sid)
    if async_handlers:  # the message handler does not wait for the upgrade handler to finish
        assert order == ["upgrade websocket", "message after", "upgrade done"]
    else:
        assert order == ["upgrade websocket", "upgrade done", "message after"]
