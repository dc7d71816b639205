"""HTTP policy as pure functions: error responses, CORS, compression (and the cookie, from cookie.py)."""

from __future__ import annotations

import json
import zlib
from typing import Callable, Iterable, Sequence

from .config import ServerConfig
from .cookie import cookie_header
from .errors import ProtocolError
from .message import Headers, Request, Response, parse_query

__all__ = [
    "Headers",
    "Request",
    "Response",
    "choose_encoding",
    "compress_body",
    "cookie_header",
    "cors_headers",
    "error_response",
    "origin_allowed",
    "origin_entry_problem",
    "own_origins",
    "parse_query",
]

JSON_TYPE = (b"content-type", b"application/json")


def error_response(
    error: ProtocolError, extra_headers: Headers | None = None, message: str | None = None
) -> Response:
    """The reference server's JSON error body for a protocol error.

    ``message`` replaces the fixed text of the error code, as Node's server
    does when it knows the reason (a refused origin).
    """
    text = error.message if message is None else message
    body = json.dumps({"code": int(error.code), "message": text}).encode()
    headers = [JSON_TYPE]
    if extra_headers:
        headers.extend(extra_headers)
    return Response(error.status, headers, body)


# --- CORS -------------------------------------------------------------------


_HTTP_SCHEME = {"ws": "http", "wss": "https"}


def own_origins(request: Request) -> tuple[str, ...]:
    """The origins a request's own page may have: as the server saw it, and as forwarded.

    A reverse proxy that sets ``X-Forwarded-Proto``/``X-Forwarded-Host`` adds
    the public origin; the direct one (scheme and ``Host``) stays valid.
    """
    h = request.headers
    scheme = _HTTP_SCHEME.get(request.scheme, request.scheme)
    host = h.get("host", "")
    direct = f"{scheme}://{host}"
    fwd_proto = h.get("x-forwarded-proto", "").split(",")[0].strip()
    fwd_host = h.get("x-forwarded-host", "").split(",")[0].strip()
    if not fwd_proto and not fwd_host:
        return (direct,)
    fwd_proto = _HTTP_SCHEME.get(fwd_proto, fwd_proto) or scheme
    return (direct, f"{fwd_proto}://{fwd_host or host}")


def origin_allowed(config: ServerConfig, request: Request, origin: str) -> bool:
    """Whether ``origin`` may talk to this server under ``cors_allowed_origins``.

    A callable gets ``(origin)``, or ``(origin, request)`` if it takes two
    arguments (the request as ``config.cors_request_adapter`` makes it); one
    that raises refuses the origin.
    """
    allowed = config.cors_allowed_origins
    if allowed is None:
        return origin in own_origins(request)
    if isinstance(allowed, str):
        return allowed == "*" or origin == allowed
    if callable(allowed):
        try:
            if config.cors_callable_takes_request:
                adapter = config.cors_request_adapter
                return bool(allowed(origin, request if adapter is None else adapter(request)))
            return bool(allowed(origin))
        except Exception:
            return False
    if "*" in allowed:
        return True
    return origin in allowed


_DEFAULT_PORTS = {"http": ":80", "https": ":443"}


def origin_entry_problem(entry: str) -> str | None:
    """Why an allowed-origin entry can never equal a browser's ``Origin`` header, or ``None``.

    Browsers send ``scheme://host[:port]`` in lower case, without a path, a
    trailing slash or a default port (or ``null``); an entry of another shape
    refuses every browser without a word, so servers point it out once.
    """
    if entry in ("*", "null"):
        return None
    if entry != entry.strip() or any(c.isspace() for c in entry):
        return f"it has spaces (browsers send {entry.strip()!r})"
    scheme, sep, rest = entry.partition("://")
    if not sep:
        return f"it has no scheme (browsers send e.g. 'https://{entry.rstrip('/')}')"
    host, slash, path = rest.partition("/")
    if slash and not path:
        return f"it ends with a slash (browsers send {entry.rstrip('/')!r})"
    if slash or "?" in host or "#" in host:
        return f"it has a path (an origin is only scheme://host[:port]: {scheme}://{host})"
    if entry != entry.lower():
        return f"it has upper-case letters (browsers send origins in lower case: {entry.lower()!r})"
    default_port = _DEFAULT_PORTS.get(scheme)
    if default_port is not None and host.endswith(default_port):
        return f"it names the default port (browsers leave it out: '{scheme}://{host.rsplit(':', 1)[0]}')"
    return None


_NO_HEADERS: Headers = []  # shared: callers extend their own lists with it, never append to it


def cors_headers(config: ServerConfig, request: Request) -> Headers | None:
    """CORS response headers for ``request``, or ``None`` when its origin is refused.

    A request without an ``Origin`` header is not a cross-origin browser
    request and gets no headers. ``cors_allowed_origins=[]`` turns CORS
    handling off entirely: nothing is checked and nothing is added.
    """
    origin = request.headers.get("origin")
    if origin is None:
        return _NO_HEADERS
    allowed = config.cors_allowed_origins
    if isinstance(allowed, Sequence) and not isinstance(allowed, str) and len(allowed) == 0:
        return _NO_HEADERS
    if not origin_allowed(config, request, origin):
        return None
    headers: Headers = []
    if allowed == "*" or (isinstance(allowed, (list, tuple)) and "*" in allowed):
        value = origin if config.cors_credentials else "*"
    else:
        value = origin
    headers.append((b"access-control-allow-origin", value.encode("latin-1")))
    if value != "*":
        headers.append((b"vary", b"Origin"))
    if config.cors_credentials:
        headers.append((b"access-control-allow-credentials", b"true"))
    if request.method == "OPTIONS":
        headers.append((b"access-control-allow-methods", b"OPTIONS, GET, POST"))
        req_headers = request.headers.get("access-control-request-headers")
        if req_headers and _safe_token_list(req_headers):
            headers.append((b"access-control-allow-headers", req_headers.encode("latin-1")))
    return headers


def _safe_token_list(value: str) -> bool:
    # Only header-name characters, commas and spaces are echoed back.
    return value.isascii() and all(c.isalnum() or c in "-_, " for c in value) and len(value) < 1024


# --- compression ------------------------------------------------------------

_ENCODERS: dict[str, Callable[[bytes], bytes]] = {}


def _gzip(body: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    return c.compress(body) + c.flush()


def _deflate(body: bytes) -> bytes:
    return zlib.compress(body, 6)


_ENCODERS["gzip"] = _gzip
_ENCODERS["deflate"] = _deflate


def choose_encoding(accept_encoding: str, offered: Iterable[str] = ("gzip", "deflate")) -> str | None:
    """Pick the best of ``offered`` under an ``Accept-Encoding`` value, honouring ``q=``."""
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        name, _, params = item.strip().partition(";")
        name = name.strip().lower()
        if not name:
            continue
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        weights[name] = q
    best, best_q = None, 0.0
    for enc in offered:
        q = weights.get(enc, weights.get("*", 0.0))
        if q > best_q:
            best, best_q = enc, q
    return best


def compress_body(config: ServerConfig, request: Request, body: bytes, headers: Headers) -> bytes:
    """Compress a polling response body when allowed, adding the headers it needs."""
    if not config.http_compression or len(body) <= config.compression_threshold:
        return body
    accept = request.headers.get("accept-encoding")
    if not accept:
        return body
    enc = choose_encoding(accept)
    if enc is None:
        return body
    headers.append((b"content-encoding", enc.encode()))
    headers.append((b"vary", b"Accept-Encoding"))
    return _ENCODERS[enc](body)
