"""SIGTERM to a real ASGI server: how every kind of session ends, seen from both sides.

Each run starts one server process (tests/servers.py) serving tests/apps/sigterm_app.py,
connects six clients -- python-engineio's ``AsyncClient`` and Node's engine.io-client,
each polling-only, websocket-only and polling upgraded to websocket -- sends SIGTERM to
the server's PID, and compares what happened with the table below: the reason the
app's disconnect handler got for every session, how the ASGI server ended each
websocket (the code of its ``websocket.disconnect``, or a cancellation), and what each
client reported. docs/deployment.md ("Shutdown and restarts") holds the same table.

The app reports its events over a TCP connection to the test, so the test waits on
events (no sleeps), and keeps what the app said after its process is gone. Graceful
shutdown is bounded to one second (uvicorn's ``--timeout-graceful-shutdown``,
hypercorn's ``--graceful-timeout``) so that held polls do not keep a run waiting.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from typing import Any, Callable

import anyio
import engineio
import pytest
import servers
from asgi_harness import http, start_websocket
from nodeclient import node_available, run_node_client

import engineio_asgi

TIMEOUT = 15.0  # bound on every wait of a run

SERVER_DISCONNECT = "server disconnect"
CLIENT_DISCONNECT = "client disconnect"
TRANSPORT_ERROR = "transport error"
TRANSPORT_CLOSE = "transport close"

CLIENTS = {  # name: transports
    "polling": ["polling"],
    "websocket": ["websocket"],
    "upgraded": ["polling", "websocket"],
}

# Node's engine.io-client reports "transport close" or "transport error"; the details
# tell what it saw: the websocket's close code, or how the last poll ended.
NODE_WS_CLOSED = "websocket connection closed"
NODE_POLL_ERROR = "xhr poll error"  # a poll failed (500, reset or refused)
NODE_POST_ERROR = "xhr post error"  # a POST failed (here: the pong, refused)


def _ws_close(code: int) -> tuple[str, str, int]:
    return (TRANSPORT_CLOSE, NODE_WS_CLOSED, code)


# What each server does on SIGTERM and what every party then sees.
#   extra:    command-line options added to tests/servers.py's command
#   env:      settings of the app
#   app:      the reason the app's disconnect handler got, per kind of session
#   ws_end:   how the ASGI server ended the Engine.IO websockets
#   python:   python-engineio's client disconnect reason, per client
#   node:     engine.io-client's (reason, description, websocket close code)
ALL_SERVER_DISCONNECT = {
    "polling": SERVER_DISCONNECT,
    "websocket": SERVER_DISCONNECT,
    "upgraded": SERVER_DISCONNECT,
}
# uvicorn closes every websocket itself at once with 1012, so nothing more can be
# sent on it; it waits for held polls, cancels them after its graceful timeout (the
# client gets a 500), then runs lifespan shutdown.
UVICORN = {
    "server": "uvicorn",
    "app": ALL_SERVER_DISCONNECT,
    "ws_end": {"code": 1012},
    "python": {"polling": TRANSPORT_ERROR, "websocket": TRANSPORT_ERROR, "upgraded": TRANSPORT_ERROR},
    "node": {
        "polling": (TRANSPORT_ERROR, NODE_POLL_ERROR, None),
        "websocket": _ws_close(1012),
        "upgraded": _ws_close(1012),
    },
}
# hypercorn leaves every connection open for its graceful timeout, then cancels their
# tasks and only then runs lifespan shutdown: a cancelled websocket still carries the
# CLOSE packet and a close frame; a cancelled poll gets a 500 (asyncio) or a reset (trio).
HYPERCORN = {
    "extra": ["--graceful-timeout", "1"],
    "app": ALL_SERVER_DISCONNECT,
    "ws_end": {"cancelled": True},
    "python": {"polling": TRANSPORT_ERROR, "websocket": SERVER_DISCONNECT, "upgraded": SERVER_DISCONNECT},
    "node": {
        "polling": (TRANSPORT_ERROR, NODE_POLL_ERROR, None),
        "websocket": _ws_close(1000),
        "upgraded": _ws_close(1000),
    },
}
RUNS: dict[str, dict[str, Any]] = {
    "uvicorn": {**UVICORN, "extra": ["--timeout-graceful-shutdown", "1"]},  # websockets-sansio
    "uvicorn-wsproto": {**UVICORN, "extra": ["--ws", "wsproto", "--timeout-graceful-shutdown", "1"]},
    "uvicorn-websockets-legacy": {
        **UVICORN,
        "extra": ["--ws", "websockets", "--timeout-graceful-shutdown", "1"],
    },
    "hypercorn-asyncio": {**HYPERCORN, "server": "hypercorn-asyncio"},
    "hypercorn-trio": {**HYPERCORN, "server": "hypercorn-trio"},
    # granian drops every websocket at once without a close frame and reports 1005,
    # what a client's close without a status code also gives: nothing tells the app
    # that its server is stopping, so those sessions end as a transport close. It
    # waits for held polls with no bound of its own (here the next ping answers
    # them, after one second; the client's pong is then refused), then runs
    # lifespan shutdown.
    "granian": {
        "server": "granian",
        "extra": [],
        "env": {"EIO_PING_INTERVAL": "1", "EIO_PING_TIMEOUT": "5"},
        "app": {"polling": SERVER_DISCONNECT, "websocket": TRANSPORT_CLOSE, "upgraded": TRANSPORT_CLOSE},
        "ws_end": {"code": 1005},
        "python": {"polling": TRANSPORT_ERROR, "websocket": TRANSPORT_ERROR, "upgraded": TRANSPORT_ERROR},
        "node": {
            "polling": (TRANSPORT_ERROR, NODE_POST_ERROR, None),
            "websocket": _ws_close(1006),
            "upgraded": _ws_close(1006),
        },
    },
}

needs_node = pytest.mark.skipif(
    not node_available(), reason="node or node_modules missing (run `npm ci` at the repo root)"
)


class EventChannel:
    """A TCP listener collecting the app's JSON event lines; wait on a condition over them."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> EventChannel:
        self._server = await asyncio.start_server(self._read, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._server is not None
        self._server.close()

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                self.events.append(json.loads(line))
                self._changed.set()
        finally:
            writer.close()

    async def wait_for(self, what: str, predicate: Callable[[list[dict[str, Any]]], bool]) -> None:
        try:
            async with asyncio.timeout(TIMEOUT):
                while not predicate(self.events):
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"{what}: not seen in {TIMEOUT}s; the app said {self.events}") from None

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == kind]


class PyClient:
    """python-engineio's client, recording its disconnect reason."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.label = "label:py-" + name
        self.client = engineio.AsyncClient()
        self.reason: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._echoed = asyncio.Event()
        self.client.on("message", self._on_message)
        self.client.on("disconnect", self._on_disconnect)

    def _on_message(self, data: Any) -> None:
        if data == self.label:
            self._echoed.set()

    def _on_disconnect(self, reason: str) -> None:
        if not self.reason.done():
            self.reason.set_result(reason)

    async def start(self, url: str) -> None:
        await self.client.connect(url, transports=CLIENTS[self.name])
        if self.name != "polling":
            assert self.client.transport() == "websocket"
        await self.client.send(self.label)  # sent on the websocket once upgraded
        await asyncio.wait_for(self._echoed.wait(), TIMEOUT)


def _repolled(events: list[dict[str, Any]], sids: set[str]) -> bool:
    """Whether each of ``sids`` sent a long-polling GET after its label."""
    labelled: set[str] = set()
    repolled: set[str] = set()
    for e in events:
        if e["event"] == "label":
            labelled.add(e["sid"])
        elif e["event"] == "poll" and e["sid"] in labelled:
            repolled.add(e["sid"])
    return repolled >= sids


def _node_client(url: str, name: str) -> dict[str, Any]:
    return run_node_client(  # type: ignore[no-any-return]
        url,
        "wait-close",
        timeout=TIMEOUT,
        check=False,
        transports=CLIENTS[name],
        wait_upgrade=name == "upgraded",
        send=["label:node-" + name],
    )


def _node_view(report: dict[str, Any]) -> tuple[Any, Any, Any]:
    details = report.get("closeDescription")
    if not isinstance(details, dict):
        return (report.get("closeReason"), details, None)
    return (report.get("closeReason"), details.get("description"), details.get("code"))


async def _sigterm_run(run: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    command = servers.server_command
    monkeypatch.setattr(servers, "server_command", lambda *a: command(*a) + run["extra"])
    async with EventChannel() as channel:
        env = {"EIO_EVENT_PORT": str(channel.port), **run.get("env", {})}
        with servers.running_server("apps.sigterm_app:app", run["server"], env=env) as srv:
            py = {name: PyClient(name) for name in CLIENTS}
            node = {
                name: asyncio.create_task(asyncio.to_thread(_node_client, srv.url, name)) for name in CLIENTS
            }
            await asyncio.gather(*(c.start(srv.url) for c in py.values()))
            labels = {c.label[6:] for c in py.values()} | {"node-" + name for name in CLIENTS}
            await channel.wait_for(
                "every client labelled", lambda ev: {e["name"] for e in ev if e["event"] == "label"} >= labels
            )
            sids = {e["name"]: e["sid"] for e in channel.of("label")}
            transports = {e["name"]: e["transport"] for e in channel.of("label")}
            # The label's echo answers a polling client's held GET, and the client sends the
            # next one at once. A GET that reaches a stopping server is refused, where one
            # held already waits for the server's next word: stop once each polling client
            # has its next GET in, so the clients' view does not depend on that race.
            polling = {sids[name] for name, transport in transports.items() if transport == "polling"}
            await channel.wait_for(
                "a poll held again for every polling session", lambda ev: _repolled(ev, polling)
            )

            os.kill(srv.pid, signal.SIGTERM)  # the process we started, nothing else

            await channel.wait_for(
                "a disconnect for every session",
                lambda ev: {e["sid"] for e in ev if e["event"] == "disconnect"} >= set(sids.values()),
            )
            await channel.wait_for(
                "lifespan shutdown", lambda ev: any(e["event"] == "lifespan-shutdown" for e in ev)
            )
            python = {}
            for name, c in py.items():
                try:
                    python[name] = await asyncio.wait_for(asyncio.shield(c.reason), TIMEOUT)
                except TimeoutError:
                    python[name] = "<no disconnect event>"
            node_reports = {name: await asyncio.wait_for(t, TIMEOUT + 15) for name, t in node.items()}
            # the process exits by itself (waited on, not polled), before running_server's own stop
            exit_code = await asyncio.to_thread(srv._proc.wait, TIMEOUT)
            output = srv.stderr_text()
    reasons: dict[str, list[str]] = {}
    for e in channel.of("disconnect"):
        reasons.setdefault(e["sid"], []).append(e["reason"])
    labels_of = {sid: label for label, sid in sids.items()}
    order = [
        labels_of.get(e["sid"], e["sid"]) if e["event"] == "disconnect" else e["event"]
        for e in channel.events
        if e["event"] in ("disconnect", "lifespan-shutdown")
    ]
    return {
        "app": {label: reasons.get(sid) for label, sid in sids.items()},
        "transports": transports,
        "ws_end": [{k: v for k, v in e.items() if k in ("code", "cancelled")} for e in channel.of("ws-end")],
        "python": python,
        "node": {name: _node_view(r) for name, r in node_reports.items()},
        "node_reports": node_reports,
        "order": order,
        "exit_code": exit_code,
        "output": output[-3000:],
    }


@needs_node
@pytest.mark.parametrize("run_name", list(RUNS))
def test_sigterm_ends_sessions_as_the_server_allows(run_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    run = RUNS[run_name]
    seen = asyncio.run(_sigterm_run(run, monkeypatch))
    shown = json.dumps({k: v for k, v in seen.items() if k != "node_reports"}, indent=1)

    assert seen["transports"] == {
        "py-polling": "polling",
        "py-websocket": "websocket",
        "py-upgraded": "websocket",
        "node-polling": "polling",
        "node-websocket": "websocket",
        "node-upgraded": "websocket",
    }, shown
    # the app: every session ends once, with the reason the table gives
    expected = {f"{side}-{name}": [reason] for side in ("py", "node") for name, reason in run["app"].items()}
    assert seen["app"] == expected, shown
    # how the ASGI server ended the websockets (the four sessions' websockets: the
    # upgraded clients' probes became their sessions' websockets)
    assert seen["ws_end"] == [run["ws_end"]] * 4, shown
    # lifespan shutdown comes after the websockets ended, before the polling sessions did
    order = seen["order"]
    cut = order.index("lifespan-shutdown")
    assert sorted(order[:cut]) == ["node-upgraded", "node-websocket", "py-upgraded", "py-websocket"], shown
    assert sorted(order[cut + 1 :]) == ["node-polling", "py-polling"], shown
    # what the clients saw
    assert seen["python"] == run["python"], shown
    assert seen["node"] == run["node"], shown + json.dumps(seen["node_reports"], indent=1)
    # uvicorn ends by re-raising the SIGTERM it caught; hypercorn and granian exit with 0
    assert seen["exit_code"] in (0, -signal.SIGTERM), shown


# --- the rule, in-process, on asyncio and trio -------------------------------------------


def _app_recording_reasons() -> tuple[engineio_asgi.ASGIApp, list[str]]:
    eio = engineio_asgi.AsyncServer()
    reasons: list[str] = []
    eio.on("disconnect", lambda sid, reason: reasons.append(reason))
    return engineio_asgi.ASGIApp(eio), reasons


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (1000, TRANSPORT_CLOSE),
        (1001, TRANSPORT_CLOSE),  # a browser tab navigating away: the client's doing
        (1005, TRANSPORT_CLOSE),  # no status code: granian stopping, or any client
        (1006, TRANSPORT_CLOSE),
        (1012, SERVER_DISCONNECT),  # uvicorn stopping; browsers cannot send it
    ],
)
async def test_websocket_disconnect_code_decides_the_reason(code: int, reason: str) -> None:
    app, reasons = _app_recording_reasons()
    async with anyio.create_task_group() as tg:
        ws = await start_websocket(tg, app, "EIO=4&transport=websocket")
        assert (await ws.receive())[0] == "0"  # type: ignore[index]
        await ws.disconnect(code)
        with anyio.fail_after(5):
            await ws.finished.wait()
    assert reasons == [reason]
    with pytest.raises(anyio.WouldBlock):
        ws.from_app_recv.receive_nowait()  # nothing is sent on a websocket the server closed


@pytest.mark.anyio
async def test_cancelled_websocket_is_a_server_disconnect_and_still_gets_close() -> None:
    """What hypercorn does after its graceful timeout: the task serving the websocket is cancelled."""
    app, reasons = _app_recording_reasons()
    async with anyio.create_task_group() as tg:
        ws = await start_websocket(tg, app, "EIO=4&transport=websocket")
        assert (await ws.receive())[0] == "0"  # type: ignore[index]
        tg.cancel_scope.cancel()
    assert reasons == [SERVER_DISCONNECT]
    assert await ws.receive() == "1"
    assert await ws.receive() is None
    assert ws.closed is not None and ws.closed["code"] == 1000


@pytest.mark.anyio
async def test_client_close_packet_then_1012_stays_a_client_disconnect() -> None:
    app, reasons = _app_recording_reasons()
    async with anyio.create_task_group() as tg:
        ws = await start_websocket(tg, app, "EIO=4&transport=websocket")
        assert (await ws.receive())[0] == "0"  # type: ignore[index]
        await ws.send_text("1")
        await ws.disconnect(1012)
        with anyio.fail_after(5):
            await ws.finished.wait()
    assert reasons == [CLIENT_DISCONNECT]


@pytest.mark.anyio
async def test_probe_closed_with_1012_leaves_the_polling_session_alone() -> None:
    """A probe is not yet the session's transport: the session stays for shutdown() to end."""
    app, reasons = _app_recording_reasons()
    r = await http(app, "GET", query="EIO=4&transport=polling")
    sid = json.loads(r.text[1:])["sid"]
    async with anyio.create_task_group() as tg:
        ws = await start_websocket(tg, app, f"EIO=4&transport=websocket&sid={sid}")
        await ws.send_text("2probe")
        assert await ws.receive() == "3probe"
        await ws.disconnect(1012)
        with anyio.fail_after(5):
            await ws.finished.wait()
    assert reasons == []
    assert sid in app.engineio_server._sessions
    await app.engineio_server.shutdown()
    assert reasons == [SERVER_DISCONNECT]
