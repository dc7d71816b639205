"""Everything the core asks of the runtime, as one ordered stream of small values.

Every input method of :class:`~engineio_sansio.Server` returns the events it
caused, and the runtime performs them in order. They name requests by the id
:meth:`~engineio_sansio.Server.receive_request` returned and sessions by their
id: no object of the core crosses the boundary.
A websocket is named by the id of the request that opened it.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Union

from .errors import ErrorCode
from .message import Headers
from .packet import Data
from .session import CloseReason, Transport

__all__ = [
    "AcceptWebSocket",
    "CloseWebSocket",
    "ConnectRequest",
    "Event",
    "MessageReceived",
    "RequestRefused",
    "Respond",
    "SendFrames",
    "SessionClosed",
    "Upgraded",
]


class ConnectRequest(NamedTuple):
    """A client asks to open session ``sid`` over request ``request_id``: the application
    decides, and the runtime answers with ``Server.accept(sid)`` or ``Server.reject(sid)``."""

    sid: str
    request_id: int
    transport: Transport


class Respond(NamedTuple):
    """Write this HTTP response to request ``request_id``; the request is then done.

    For a websocket request it is the refusal of the handshake (an ASGI runtime
    sends it with the ``websocket.http.response`` extension, or closes the
    websocket before accepting it with ``WS_CLOSE_POLICY``). A long-polling GET
    can get its ``Respond`` long after the request arrived.
    """

    request_id: int
    status: int
    headers: Headers
    body: bytes


class RequestRefused(NamedTuple):
    """Request ``request_id`` is refused: the :class:`Respond` that follows answers it
    with an error status and the JSON body ``{"code": code, "message": ...}``.

    Nothing is required of the runtime: it says why, for logs and for the
    application (Node's engine.io reports it with its ``connection_error`` event,
    with the same ``code``, ``message`` and ``context``). ``message`` is the fixed
    text of ``code``; ``context`` holds the facts, such as ``{"sid": ...}`` for an
    unknown session or ``{"name": "TRANSPORT_MISMATCH", ...}``. It comes only for
    refusals, never for an answered request.
    """

    request_id: int
    code: ErrorCode
    message: str
    context: Mapping[str, Any]


class AcceptWebSocket(NamedTuple):
    """Accept the websocket handshake of request ``request_id``, with these extra headers
    (for a WebTransport CONNECT: answer it with 200)."""

    request_id: int
    headers: Headers


class SendFrames(NamedTuple):
    """Write these frames, in order, on websocket ``request_id``, then call
    ``Server.frames_sent(request_id)`` (or ``Server.send_failed``). Until then the
    core hands out nothing more for this websocket: writes never overlap.

    On a WebTransport stream the frames are one ``bytes``, framed already: write it as it is."""

    request_id: int
    frames: tuple[Data, ...]


class CloseWebSocket(NamedTuple):
    """Close websocket ``request_id`` with ``code``: at once if ``grace`` is 0, else once
    the client has closed it or ``grace`` seconds have passed, whichever comes first.
    Every frame handed out before has been written (see :class:`SendFrames`).

    For a WebTransport session: end its stream and close the session with ``code``."""

    request_id: int
    code: int
    grace: float


class MessageReceived(NamedTuple):
    """Deliver ``data`` from session ``sid`` to the application."""

    sid: str
    data: Data


class Upgraded(NamedTuple):
    """Session ``sid`` moved from long polling to websocket ``request_id`` (its probe until now)."""

    sid: str
    request_id: int


class SessionClosed(NamedTuple):
    """Session ``sid`` ended, and why; said exactly once per session that was accepted."""

    sid: str
    reason: CloseReason


Event = Union[
    ConnectRequest,
    RequestRefused,
    Respond,
    AcceptWebSocket,
    SendFrames,
    CloseWebSocket,
    MessageReceived,
    Upgraded,
    SessionClosed,
]
