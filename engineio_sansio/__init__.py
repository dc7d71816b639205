"""engineio_sansio: the Engine.IO protocol as a sans-IO core.

Tell a :class:`Server` what happened (requests, bodies, websocket frames,
connections gone, writes done, the application's decisions, the time) and
perform the events it hands back, in order. It does no I/O and reads no clock.
"""

from .config import ServerConfig
from .errors import ErrorCode, LocalProtocolError, ProtocolError
from .events import (
    AcceptWebSocket,
    CloseWebSocket,
    ConnectRequest,
    Event,
    MessageReceived,
    RequestRefused,
    Respond,
    SendFrames,
    SessionClosed,
    Upgraded,
)
from .framing import StreamDecoder, encode_stream_frame
from .message import Headers, Request, Response, parse_query
from .packet import CODECS, Codec, Data, Packet, PacketType, V4Codec
from .routing import asks_for_session
from .server import (
    CLIENT_CLOSE_GRACE,
    UNAUTHORIZED_BODY,
    UPGRADE_POLL_GRACE,
    WS_CLOSE_NORMAL,
    WS_CLOSE_POLICY,
    Server,
)
from .session import CloseReason, IllegalTransition, SessionState, Transport
from .stats import Stats, StatsSnapshot

__all__ = [
    "CLIENT_CLOSE_GRACE",
    "CODECS",
    "UNAUTHORIZED_BODY",
    "UPGRADE_POLL_GRACE",
    "WS_CLOSE_NORMAL",
    "WS_CLOSE_POLICY",
    "AcceptWebSocket",
    "CloseReason",
    "CloseWebSocket",
    "Codec",
    "ConnectRequest",
    "Data",
    "ErrorCode",
    "Event",
    "Headers",
    "IllegalTransition",
    "LocalProtocolError",
    "MessageReceived",
    "Packet",
    "PacketType",
    "ProtocolError",
    "Request",
    "RequestRefused",
    "Respond",
    "Response",
    "SendFrames",
    "Server",
    "ServerConfig",
    "SessionClosed",
    "SessionState",
    "Stats",
    "StatsSnapshot",
    "StreamDecoder",
    "Transport",
    "Upgraded",
    "V4Codec",
    "asks_for_session",
    "encode_stream_frame",
    "parse_query",
]
