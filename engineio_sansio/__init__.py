"""engineio_sansio: the Engine.IO protocol as a sans-IO core.

Feed it requests, bodies, websocket frames and the time; execute what it
returns and the events it raises. It does no I/O and reads no clock.
"""

from .config import ServerConfig
from .errors import ErrorCode, ProtocolError
from .events import (
    CloseWebSocket,
    Event,
    MessageReceived,
    SendFrames,
    SessionClosed,
    TransportWritable,
)
from .message import Request, Response, parse_query
from .packet import CODECS, Codec, Data, Packet, PacketType, V4Codec
from .server import Route, RouteKind, Server
from .session import CloseReason, IllegalTransition, Session, SessionState, Transport, WebSocket

__all__ = [
    "CODECS",
    "CloseReason",
    "CloseWebSocket",
    "Codec",
    "Data",
    "ErrorCode",
    "Event",
    "IllegalTransition",
    "MessageReceived",
    "Packet",
    "PacketType",
    "ProtocolError",
    "Request",
    "Response",
    "Route",
    "RouteKind",
    "SendFrames",
    "Server",
    "ServerConfig",
    "Session",
    "SessionClosed",
    "SessionState",
    "Transport",
    "TransportWritable",
    "V4Codec",
    "WebSocket",
    "parse_query",
]
