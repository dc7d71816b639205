"""``ASGIApp``: routes Engine.IO requests, static files, another app, and lifespan."""

from __future__ import annotations

import inspect
import os
from typing import Any, Awaitable, Callable, Mapping, MutableMapping

import anyio

__all__ = ["ASGIApp", "get_static_file"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

CONTENT_TYPES = {
    "css": "text/css",
    "gif": "image/gif",
    "html": "text/html",
    "jpg": "image/jpeg",
    "js": "application/javascript",
    "mjs": "application/javascript",
    "json": "application/json",
    "map": "application/json",
    "png": "image/png",
    "svg": "image/svg+xml",
    "txt": "text/plain",
    "ico": "image/x-icon",
}


def get_static_file(path: str, static_files: Mapping[str, Any]) -> dict[str, str] | None:
    """Map a URL path to ``{'filename', 'content_type'}`` under python-engineio's format.

    Keys are URL paths or prefixes; values are a filename (or directory, for a
    prefix) or a dict with ``filename`` and optional ``content_type``. The ``''``
    key names the index file of directories (``index.html`` when absent).
    Paths that climb out with ``..`` are refused.
    """
    extra = ""
    entry = static_files.get(path)
    if entry is None:
        rest = path
        while rest:
            rest, last = rest.rsplit("/", 1)
            extra = "/" + last + extra
            if rest in static_files:
                entry = static_files[rest]
                break
            if rest + "/" in static_files:
                entry = static_files[rest + "/"]
                break
    if entry is None:
        return None
    if ".." in extra.split("/"):
        return None
    info = {"filename": entry} if isinstance(entry, str) else dict(entry)
    filename = info["filename"]
    if filename.endswith("/") and extra.startswith("/"):
        extra = extra[1:]
    filename += extra
    if filename.endswith("/") or os.path.isdir(filename):
        index = static_files.get("", "index.html")
        if isinstance(index, str):
            filename = os.path.join(filename, index)
        else:
            filename = os.path.join(filename, index["filename"])
            if "content_type" in index:
                info["content_type"] = index["content_type"]
    info["filename"] = filename
    if "content_type" not in info:
        ext = filename.rsplit(".", 1)[-1].lower()
        info["content_type"] = CONTENT_TYPES.get(ext, "application/octet-stream")
    return info


class ASGIApp:
    """The ASGI application: Engine.IO at ``/<engineio_path>/``, then static files, then the rest.

    ``engineio_server`` is anything with ``handle_request(scope, receive,
    send)`` (our :class:`AsyncServer`, or python-socketio's server built on
    it). ``engineio_path=None`` sends every http and websocket request to
    it. ``static_files`` uses python-engineio's mapping format (see
    :func:`get_static_file`); paths are taken relative to the scope's
    ``root_path``. Requests that match neither go to ``other_asgi_app``, or
    get a 404 (a websocket is closed before it is accepted).

    ``on_startup`` and ``on_shutdown`` (plain or async callables) run on the
    ASGI lifespan events; without them, lifespan goes to ``other_asgi_app``
    when there is one (and is answered here if that app ignores it). Either
    way a lifespan shutdown shuts the Engine.IO server down, so every session
    gets its disconnect handler.
    """

    def __init__(
        self,
        engineio_server: Any,
        other_asgi_app: Callable[..., Awaitable[None]] | None = None,
        static_files: Mapping[str, Any] | None = None,
        engineio_path: str | None = "engine.io",
        on_startup: Callable[[], Any] | None = None,
        on_shutdown: Callable[[], Any] | None = None,
    ) -> None:
        self.engineio_server = engineio_server
        self.other_asgi_app = other_asgi_app
        if engineio_path is not None:
            engineio_path = "/" + engineio_path.strip("/") + "/"
        self.engineio_path = engineio_path
        self.static_files = dict(static_files or {})
        self.on_startup = on_startup
        self.on_shutdown = on_shutdown

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http" or kind == "websocket":
            prefix = self.engineio_path
            # the usual request decided here, the rest by _is_engineio
            if prefix is None or (scope.get("path", "").startswith(prefix) and not scope.get("root_path")):
                ours = True
            else:
                ours = self._is_engineio(scope)
        elif kind == "lifespan":
            await self.lifespan(scope, receive, send)
            return
        else:
            ours = False
        if ours:
            server = self.engineio_server
            # ours: one coroutine frame less per connection (and no bound method kept in a
            # local for as long as the connection lives)
            if getattr(server, "_serve", None) is not None:
                await server._serve(scope, receive, send)
            else:
                await server.handle_request(scope, receive, send)
            return
        if kind == "http" and self.static_files:
            path: str = scope["path"]
            root: str = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :] or "/"
            info = get_static_file(path, self.static_files)
            if info is not None and os.path.isfile(info["filename"]):
                await self.serve_static_file(info, receive, send)
                return
        if self.other_asgi_app is not None:
            await self.other_asgi_app(scope, receive, send)
        elif kind == "websocket":
            await receive()
            await send({"type": "websocket.close", "code": 1000})
        elif kind == "http":
            await self.not_found(receive, send)

    def _is_engineio(self, scope: Scope) -> bool:
        prefix = self.engineio_path
        if prefix is None:
            return True
        path: str = scope.get("path", "")
        root: str = scope.get("root_path", "")
        if not root and path.startswith(prefix):
            return True  # the usual case, decided without building strings
        if root and path.startswith(root) and not (path + "/").startswith(prefix):
            path = path[len(root) :]
        if not path.endswith("/"):
            path += "/"
        return path.startswith(prefix)

    async def serve_static_file(self, info: Mapping[str, str], receive: Receive, send: Send) -> None:
        """Send one static file."""
        payload = await anyio.Path(info["filename"]).read_bytes()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", info["content_type"].encode()),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def not_found(self, receive: Receive, send: Send) -> None:
        """Answer 404."""
        await send(
            {"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": b"Not Found"})

    async def lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run startup/shutdown callbacks (or the other app's lifespan); shut the server down at the end."""
        if self.other_asgi_app is not None and self.on_startup is None and self.on_shutdown is None:
            await self._forward_lifespan(scope, receive, send)
            return
        await self._own_lifespan(receive, send, startup_pending=False)

    async def _forward_lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Let the other app run lifespan; take over if it returns without answering it.

        An app that does not implement lifespan should raise, but many just
        return, which some servers (hypercorn on trio) do not survive.
        """
        assert self.other_asgi_app is not None
        startup_received = False
        startup_answered = False

        async def receive_and_watch() -> MutableMapping[str, Any]:
            nonlocal startup_received
            message = await receive()
            if message["type"] == "lifespan.startup":
                startup_received = True
            elif message["type"] == "lifespan.shutdown":
                await self._shutdown_server()
            return message

        async def send_and_watch(message: MutableMapping[str, Any]) -> None:
            nonlocal startup_answered
            if message["type"].startswith("lifespan.startup."):
                startup_answered = True
            await send(message)

        try:
            await self.other_asgi_app(scope, receive_and_watch, send_and_watch)
        except Exception:
            if startup_answered:
                raise
        if not startup_answered:
            await self._own_lifespan(receive, send, startup_pending=startup_received)

    async def _own_lifespan(self, receive: Receive, send: Send, startup_pending: bool) -> None:
        while True:
            if startup_pending:
                message: MutableMapping[str, Any] = {"type": "lifespan.startup"}
                startup_pending = False
            else:
                message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await _call(self.on_startup)
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self._shutdown_server()
                    await _call(self.on_shutdown)
                except Exception as exc:
                    await send({"type": "lifespan.shutdown.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _shutdown_server(self) -> None:
        shutdown = getattr(self.engineio_server, "shutdown", None)
        if shutdown is not None:
            await shutdown()


async def _call(fn: Callable[[], Any] | None) -> None:
    if fn is None:
        return
    result = fn()
    if inspect.isawaitable(result):
        await result
