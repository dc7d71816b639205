"""What the core asks the runtime to do, beyond the value a call returns.

The core appends these to ``Server.events`` as things happen; the runtime
drains them with ``Server.take_events()`` after each call and executes them.
"""

from __future__ import annotations

from typing import NamedTuple, Union

from .packet import Data
from .session import CloseReason, Session, WebSocket

__all__ = [
    "CloseWebSocket",
    "Event",
    "MessageReceived",
    "SendFrames",
    "SessionClosed",
    "TransportWritable",
]


class MessageReceived(NamedTuple):
    """Deliver ``data`` from ``session`` to the application's message handler."""

    session: Session
    data: Data


class SessionClosed(NamedTuple):
    """Tell the application, exactly once, that ``session`` ended, and why."""

    session: Session
    reason: CloseReason


class TransportWritable(NamedTuple):
    """The session has something for its transport: wake the held poll, or flush the websocket."""

    session: Session


class SendFrames(NamedTuple):
    """Write these frames on this websocket, outside the session's queue (the probe answer)."""

    ws: WebSocket
    frames: tuple[Data, ...]


class CloseWebSocket(NamedTuple):
    """Close this websocket with this close code, after any frames already handed out."""

    ws: WebSocket
    code: int


Event = Union[MessageReceived, SessionClosed, TransportWritable, SendFrames, CloseWebSocket]
