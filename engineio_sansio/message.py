"""The plain values of an HTTP exchange, as the core reads and writes them."""

from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import unquote_plus

__all__ = ["Headers", "Request", "Response", "parse_query"]

Headers = list[tuple[bytes, bytes]]


class Request:
    """An HTTP (or websocket handshake) request, reduced to what the protocol reads.

    ``headers`` maps lower-case names to values (repeated headers joined with
    ``", "``); ``scheme`` is the URL scheme the server saw (``http``, ``https``,
    ``ws`` or ``wss``).
    """

    __slots__ = ("method", "query", "headers", "scheme", "extra")

    def __init__(
        self,
        method: str,
        query: Mapping[str, str],
        headers: Mapping[str, str] | None = None,
        scheme: str = "http",
        extra: Any = None,
    ) -> None:
        self.method = method
        self.query = query
        self.headers = headers if headers is not None else {}
        self.scheme = scheme
        self.extra = extra
        """Whatever the runtime wants callbacks to see (the ASGI layer puts its scope here)."""

    def __repr__(self) -> str:
        return f"Request({self.method!r}, {dict(self.query)!r}, scheme={self.scheme!r})"


class Response:
    """An HTTP response for the runtime to write as it is."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: Headers, body: bytes = b"") -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: bytes) -> bytes | None:
        """The first value of header ``name`` (lower case), for tests and logs."""
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def __repr__(self) -> str:
        return f"Response({self.status}, body={self.body[:60]!r})"


def parse_query(query_string: bytes | str) -> dict[str, str]:
    """Parse a query string; the first value of a repeated key wins."""
    if isinstance(query_string, bytes):
        query_string = query_string.decode("latin-1")
    result: dict[str, str] = {}
    if not query_string:
        return result
    if "%" not in query_string and "+" not in query_string:
        # the usual Engine.IO query: nothing to unquote
        for part in query_string.split("&"):
            key, _, value = part.partition("=")
            if part and key not in result:
                result[key] = value
        return result
    for part in query_string.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        if "%" in key or "+" in key:
            key = unquote_plus(key)
        if "%" in value or "+" in value:
            value = unquote_plus(value)
        result.setdefault(key, value)
    return result
