"""Protocol errors, each carrying the Engine.IO error code and the HTTP status to answer with."""

from __future__ import annotations

import enum
from typing import Any

__all__ = ["ErrorCode", "LocalProtocolError", "ProtocolError"]


class ErrorCode(enum.IntEnum):
    """The error codes the reference server puts in its JSON error bodies."""

    UNKNOWN_TRANSPORT = 0
    UNKNOWN_SID = 1
    BAD_HANDSHAKE_METHOD = 2
    BAD_REQUEST = 3
    FORBIDDEN = 4
    UNSUPPORTED_PROTOCOL_VERSION = 5


_MESSAGES = {
    ErrorCode.UNKNOWN_TRANSPORT: "Transport unknown",
    ErrorCode.UNKNOWN_SID: "Session ID unknown",
    ErrorCode.BAD_HANDSHAKE_METHOD: "Bad handshake method",
    ErrorCode.BAD_REQUEST: "Bad request",
    ErrorCode.FORBIDDEN: "Forbidden",
    ErrorCode.UNSUPPORTED_PROTOCOL_VERSION: "Unsupported protocol version",
}


class ProtocolError(Exception):
    """Raised for any input that breaks the protocol.

    ``code`` is the Engine.IO error code and ``status`` the HTTP status a
    server answers with, so a runtime maps an error to a response without
    guessing. ``detail`` says what exactly was wrong, for logs. The keyword
    arguments are the ``context`` of the refusal, as Node's engine.io reports it
    with its ``connection_error`` event (``sid=...``, ``transport=...``,
    ``name="TRANSPORT_MISMATCH"``); a ``message`` among them replaces the fixed
    message in the response body.
    """

    def __init__(self, code: ErrorCode, detail: str = "", status: int = 400, **context: Any) -> None:
        self.code = code
        self.status = status
        self.detail = detail or _MESSAGES[code]
        self.context = context
        super().__init__(f"{_MESSAGES[code]}: {self.detail}" if detail else _MESSAGES[code])

    @property
    def message(self) -> str:
        """The short, fixed message for the JSON body (never echoes client input)."""
        return _MESSAGES[self.code]


class LocalProtocolError(RuntimeError):
    """The runtime used the core wrongly: a call out of order, or with a request of the
    wrong kind. A bug in the caller, never caused by what a client sent."""
