"""python-socketio on engineio_asgi.

python-socketio (5.x) builds its Engine.IO layer through
``AsyncServer._engineio_server_class()``; this module's :class:`AsyncServer`
returns :class:`engineio_asgi.AsyncServer` there, and :class:`ASGIApp` serves
the result at ``/socket.io/``::

    from engineio_asgi.socketio import ASGIApp, AsyncServer

    sio = AsyncServer()  # python-socketio's options, Engine.IO ones included
    app = ASGIApp(sio)   # run with uvicorn, granian or hypercorn (asyncio)

Everything else is python-socketio's own ``AsyncServer``: namespaces, rooms,
acknowledgements, binary attachments and the message-queue managers
(``socketio.AsyncRedisManager`` and the others) work unchanged.

python-socketio calls asyncio directly (``asyncio.create_task`` for every
emit, ``asyncio.wait_for`` for ``call``), so it runs on asyncio servers only.
On trio the server refuses each request with a clear error (HTTP 500, or
websocket close 1011) instead of half-working: see
``SOCKETIO_NEEDS_ASYNCIO``.

python-socketio is an optional dependency: only importing this module needs
it (``pip install python-socketio``).
"""

from __future__ import annotations

import json
import logging
from typing import Any, Awaitable, Callable, Iterable, MutableMapping

import sniffio

try:
    import engineio.json as _engineio_json  # type: ignore[import-untyped]
    import socketio as _socketio  # type: ignore[import-untyped]
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "engineio_asgi.socketio needs python-socketio (pip install 'python-socketio>=5.11')"
    ) from exc

from .asgi import ASGIApp as _EngineIOApp
from .server import AsyncServer as _EngineIOServer

__all__ = ["SOCKETIO_NEEDS_ASYNCIO", "ASGIApp", "AsyncServer", "LocalManager"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

SOCKETIO_NEEDS_ASYNCIO = (
    "python-socketio needs asyncio: it calls asyncio.create_task() for every emit and "
    "asyncio.wait_for() for call(), which fail under {library}. Serve this app with an "
    "asyncio server (uvicorn, granian, hypercorn --worker-class asyncio); engineio_asgi's "
    "own AsyncServer, without python-socketio, runs on trio."
)
"""The message of the refusal on a loop other than asyncio (``{library}`` is its name)."""

logger = logging.getLogger("engineio_asgi.socketio")

_Packet = _socketio.packet.Packet
_DEFAULT_JSON = _engineio_json  # python-socketio's default JSON: the standard module's dumps
_dumps = json.dumps


class AsyncServer(_socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's ``AsyncServer`` with ``engineio_asgi.AsyncServer`` as its Engine.IO layer.

    Takes python-socketio's arguments; the Engine.IO options among them
    (``ping_interval``, ``ping_timeout``, ``max_http_buffer_size``,
    ``cors_allowed_origins``, ``transports``, ``engineio_logger``...) go to
    :class:`engineio_asgi.AsyncServer`. Serve it with :class:`ASGIApp`.
    """

    def __init__(self, client_manager: Any = None, *args: Any, **kwargs: Any) -> None:
        if client_manager is None:
            client_manager = LocalManager()
        super().__init__(client_manager, *args, **kwargs)
        self._loop_checked = False

    def _engineio_server_class(self) -> type[_EngineIOServer]:
        return _EngineIOServer

    def attach(self, app: Any, socketio_path: str = "socket.io") -> ASGIApp:
        """Return an ASGI app serving Socket.IO at ``socketio_path`` and ``app`` elsewhere.

        python-socketio's ``attach`` changes a framework app in place; ASGI
        apps cannot be changed, so the combined app is returned.
        """
        return ASGIApp(self, other_asgi_app=app, socketio_path=socketio_path)

    def instrument(
        self,
        auth: Any = None,
        mode: str = "development",
        read_only: bool = False,
        server_id: str | None = None,
        namespace: str = "/admin",
        server_stats_interval: float = 2,
    ) -> Any:
        """Serve the `Socket.IO admin UI <https://socket.io/docs/v4/admin-ui/>`_'s namespace.

        python-socketio's ``instrument()``, with the same arguments (``auth``: a
        dict of credentials, a list of them, a callable, or ``False`` for none).
        Its admin namespace runs unchanged; what it would read from
        python-engineio's internals (clients, polling clients, packets and bytes
        in and out, each socket's transport and upgrade) comes from
        :meth:`engineio_asgi.AsyncServer.stats` and ``transport()``.
        """
        from ._sio_admin import AdminInstrumentation

        return AdminInstrumentation(
            self,
            auth=auth,
            mode=mode,
            read_only=read_only,
            server_id=server_id,
            namespace=namespace,
            server_stats_interval=server_stats_interval,
        )

    async def handle_request(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI ``http`` or ``websocket`` connection (asyncio only)."""
        if not self._loop_checked:
            try:
                library = sniffio.current_async_library()
            except sniffio.AsyncLibraryNotFoundError:
                library = "an unknown event loop"
            if library != "asyncio":
                await _refuse(scope, receive, send, SOCKETIO_NEEDS_ASYNCIO.format(library=library))
                return
            self._loop_checked = True
        await self.eio.handle_request(scope, receive, send)


class LocalManager(_socketio.AsyncManager):  # type: ignore[misc]
    """python-socketio's in-process client manager, with emits delivered without a task each.

    The default client manager of :class:`AsyncServer`. python-socketio starts one
    asyncio task per recipient of an emit and waits for them all; here an emit
    without a callback is encoded once and each recipient's write starts at
    once: a write that completes at once (uvicorn: the socket took the frame) or
    is queued (the session's websocket is still writing) costs nothing more; one
    that waits (granian's ``send()`` always does, until granian has written the
    frame) goes on from the done callback of what ``send()`` returned, with no
    task, and the emit returns when every one of those has ended, as
    python-socketio's does. A recipient that reads slowly holds up no other: its
    packets wait in its session's queue. Each recipient's packets keep their
    order. An emit with a callback, or on an Engine.IO layer that is not
    engineio_asgi's, is python-socketio's own.
    """

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        eio = getattr(self.server, "eio", None)
        if callback is not None or not isinstance(eio, _EngineIOServer):
            await super().emit(
                event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, to=to, **kwargs
            )
            return
        if namespace not in self.rooms:
            return
        if isinstance(data, tuple):
            args = list(data)  # a tuple is several arguments
        else:
            args = [] if data is None else [data]
        items = self._encode_event(namespace, [event, *args])
        recipients = self._recipients(namespace, to or room, skip_sid)
        if len(recipients) == 1 and len(items) == 1:
            # one packet to one client (an emit to a sid, the usual reply): the send
            # itself, without a coroutine around it
            await eio.send(recipients[0], items[0])
            return
        await deliver(eio, recipients, items)

    def _encode_event(self, namespace: str, data: list[Any]) -> list[str | bytes]:
        """An EVENT packet as its Engine.IO messages: the packet, then any binary attachments."""
        packet_class = self.server.packet_class
        if packet_class is _Packet and packet_class.json is _DEFAULT_JSON:
            # python-socketio's own packet and JSON (the defaults): the text written
            # here, as its encode() writes it, without first walking the data for
            # bytes (json.dumps raises TypeError on bytes: a binary event is the
            # packet's own below)
            try:
                body = _dumps(data, separators=(",", ":"))
            except TypeError:
                pass
            else:
                return ["2" + body if namespace == "/" or namespace is None else "2" + namespace + "," + body]
        encoded = packet_class(_socketio.packet.EVENT, namespace=namespace, data=data).encode()
        return encoded if isinstance(encoded, list) else [encoded]  # type: ignore[no-any-return]

    def _recipients(self, namespace: str, room: Any, skip_sid: Any) -> list[str]:
        """The Engine.IO sids an emit reaches (python-socketio's ``get_participants``, minus the skipped).

        A list, taken before the first send, as python-socketio copies the room: a
        send that changes rooms does not change who this emit reaches.
        """
        if skip_sid is None and (room is None or isinstance(room, str)):
            # one room, nobody skipped (the usual broadcast): its members' Engine.IO
            # sids straight from the room's bidict (sid -> eio_sid), without a
            # generator step per member
            members = self.rooms[namespace].get(room)
            if members is None:
                return []
            forward = getattr(members, "_fwdm", None)  # the bidict's dict, as python-socketio reads it
            return list(members.values() if forward is None else forward.values())
        skipped = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        return [eio_sid for sid, eio_sid in self.get_participants(namespace, room) if sid not in skipped]


async def deliver(eio: _EngineIOServer, sids: Iterable[str], items: list[str | bytes]) -> None:
    """Send ``items`` to each session of ``sids`` concurrently, and return once each send has ended.

    No task per recipient: each websocket write goes on by itself (see
    ``engineio_asgi._writes``), and a slow recipient holds up no other.
    """
    broadcast = eio._broadcast(sids, items)
    if broadcast is not None:
        await broadcast.wait()


class ASGIApp(_EngineIOApp):
    """The ASGI application for a Socket.IO server: ``socket.io`` path, static files, another app.

    The arguments are python-socketio's ``socketio.ASGIApp`` ones. Requests
    under ``/<socketio_path>/`` go to ``socketio_server.handle_request``;
    the lifespan shutdown runs ``socketio_server.shutdown()``. A python-socketio
    server whose Engine.IO layer is python-engineio's (a plain
    ``socketio.AsyncServer``) raises ``TypeError``: create it from this module.
    """

    def __init__(
        self,
        socketio_server: Any,
        other_asgi_app: Callable[..., Awaitable[None]] | None = None,
        static_files: Any = None,
        socketio_path: str | None = "socket.io",
        on_startup: Callable[[], Any] | None = None,
        on_shutdown: Callable[[], Any] | None = None,
    ) -> None:
        eio = getattr(socketio_server, "eio", None)
        if eio is not None and not isinstance(eio, _EngineIOServer):
            # a python-socketio server built its Engine.IO layer on python-engineio:
            # served here, it would keep running there without a word
            raise TypeError(
                f"this {type(socketio_server).__name__} runs on python-engineio "
                f"({type(eio).__module__}.{type(eio).__qualname__}), not on engineio_asgi: "
                "create the server as engineio_asgi.socketio.AsyncServer (same arguments as "
                "socketio.AsyncServer: `from engineio_asgi.socketio import AsyncServer`)"
            )
        super().__init__(
            socketio_server,
            other_asgi_app,
            static_files=static_files,
            engineio_path=socketio_path,
            on_startup=on_startup,
            on_shutdown=on_shutdown,
        )


_refused_once = False


async def _refuse(scope: Scope, receive: Receive, send: Send, message: str) -> None:
    global _refused_once
    if not _refused_once:
        _refused_once = True
        logger.error("%s", message)
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.close", "code": 1011, "reason": message[:120]})
        return
    body = message.encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
