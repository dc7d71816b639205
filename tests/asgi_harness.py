"""Drive an ASGI app in-process on the current anyio backend: HTTP requests and websockets.

No server and no sockets: the app's ``receive``/``send`` are memory streams, so a
test can hold a poll open, disconnect a client, or read websocket frames one by
one, on asyncio and on trio alike.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import anyio
from anyio.abc import TaskGroup

Message = dict[str, Any]


def _scope(kind: str, path: str, query: str, headers: list[tuple[str, str]], method: str) -> Message:
    scope: Message = {
        "type": kind,
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
        "client": ("10.1.2.3", 45678),
        "server": ("127.0.0.1", 8000),
        "scheme": "http" if kind == "http" else "ws",
    }
    if kind == "http":
        scope["method"] = method
    else:
        scope["extensions"] = {"websocket.http.response": {}}
    return scope


def websocket_scope(path: str, query: str = "EIO=4&transport=websocket") -> Message:
    """A websocket connection's scope, for tests that drive an app's receive/send themselves."""
    return _scope("websocket", path, query, [("host", "x")], "GET")


class HTTPResult:
    def __init__(self) -> None:
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.body = b""
        self.done = anyio.Event()

    @property
    def text(self) -> str:
        return self.body.decode()


async def http(
    app: Callable[..., Any],
    method: str,
    path: str = "/engine.io/",
    query: str = "",
    body: bytes | list[bytes] = b"",
    headers: list[tuple[str, str]] | None = None,
    timeout: float = 5,
) -> HTTPResult:
    """One HTTP request, completed; ``body`` may be a list of chunks (sent as several messages)."""
    async with anyio.create_task_group() as tg:
        result = await start_http(tg, app, method, path, query, body, headers)
        with anyio.fail_after(timeout):
            await result.done.wait()
    return result


async def start_http(
    tg: TaskGroup,
    app: Callable[..., Any],
    method: str,
    path: str = "/engine.io/",
    query: str = "",
    body: bytes | list[bytes] = b"",
    headers: list[tuple[str, str]] | None = None,
    disconnect: anyio.Event | None = None,
) -> HTTPResult:
    """Start a request in ``tg``; the result's ``done`` is set when the response is complete.

    Set ``disconnect`` to make the client leave (``http.disconnect``) while its request is held.
    """
    chunks = body if isinstance(body, list) else [body]
    scope = _scope("http", path, query, headers or [], method)
    result = HTTPResult()
    pending = list(chunks)

    async def receive() -> Message:
        if pending:
            chunk = pending.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(pending)}
        if disconnect is not None:
            await disconnect.wait()
        else:
            await result.done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            result.status = message["status"]
            result.headers = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            result.body += message.get("body", b"")
            if not message.get("more_body", False):
                result.done.set()

    async def run() -> None:
        await app(scope, receive, send)
        result.done.set()

    tg.start_soon(run)
    return result


class WSClient:
    """The client side of an in-process websocket."""

    def __init__(self) -> None:
        self.to_app_send, self.to_app_recv = anyio.create_memory_object_stream[Message](math.inf)
        self.from_app_send, self.from_app_recv = anyio.create_memory_object_stream[Message](math.inf)
        self.accepted = anyio.Event()
        self.closed: Message | None = None
        self.denied: Message | None = None
        self.finished = anyio.Event()

    async def send_text(self, text: str) -> None:
        await self.to_app_send.send({"type": "websocket.receive", "text": text})

    async def send_bytes(self, data: bytes) -> None:
        await self.to_app_send.send({"type": "websocket.receive", "bytes": data})

    async def receive(self, timeout: float = 5) -> str | bytes | None:
        """The next frame; None once the app closed the websocket."""
        with anyio.fail_after(timeout):
            while True:
                message = await self.from_app_recv.receive()
                kind = message["type"]
                if kind == "websocket.send":
                    return message.get("text") if message.get("text") is not None else message["bytes"]
                if kind == "websocket.close":
                    self.closed = message
                    return None
                if kind == "websocket.http.response.start":
                    self.denied = message
                    return None

    async def disconnect(self, code: int = 1001) -> None:
        await self.to_app_send.send({"type": "websocket.disconnect", "code": code})


async def start_websocket(
    tg: TaskGroup,
    app: Callable[..., Any],
    query: str,
    path: str = "/engine.io/",
    headers: list[tuple[str, str]] | None = None,
) -> WSClient:
    client = WSClient()
    scope = _scope("websocket", path, query, headers or [], "GET")
    await client.to_app_send.send({"type": "websocket.connect"})

    async def receive() -> Message:
        return await client.to_app_recv.receive()

    async def send(message: Message) -> None:
        if message["type"] == "websocket.accept":
            client.accepted.set()
        await client.from_app_send.send(message)

    async def run() -> None:
        try:
            await app(scope, receive, send)
        finally:
            client.finished.set()

    tg.start_soon(run)
    return client
