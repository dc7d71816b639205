"""Requests from ASGI scopes: the core's :class:`Request`, and a WSGI-style environ for handlers."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Mapping, MutableMapping

from engineio_sansio import Request, parse_query

__all__ = ["ScopeHeaders", "build_environ", "request_from_scope"]

Scope = MutableMapping[str, Any]


class ScopeHeaders(Mapping[str, str]):
    """An ASGI scope's request headers as the core reads them, decoded only when asked.

    The core looks up one or two headers per request (``Origin``, sometimes
    ``Accept-Encoding``), so a lookup scans the raw list instead of decoding
    every header of every request into a dict. ``name`` is lower case, as ASGI
    servers give header names; repeated headers are joined with ``", "``.
    Iterating builds the dict once.
    """

    __slots__ = ("_raw", "_dict")

    def __init__(self, raw: Iterable[tuple[bytes, bytes]]) -> None:
        self._raw = raw
        self._dict: dict[str, str] | None = None

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        if self._dict is not None:
            return self._dict.get(name, default)
        key = _RAW_NAMES.get(name)
        if key is None:
            key = name.encode("latin-1")
            if len(_RAW_NAMES) < _RAW_NAMES_LIMIT:
                _RAW_NAMES[name] = key
        found: str | None = None
        for k, v in self._raw:
            if k == key:
                text = v.decode("latin-1")
                found = text if found is None else found + ", " + text
        return default if found is None else found

    def _decoded(self) -> dict[str, str]:
        if self._dict is None:
            result: dict[str, str] = {}
            for name, value in self._raw:
                key = name.decode("latin-1").lower()
                text = value.decode("latin-1")
                result[key] = result[key] + ", " + text if key in result else text
            self._dict = result
        return self._dict

    def __getitem__(self, name: str) -> str:
        return self._decoded()[name]

    def __contains__(self, name: object) -> bool:
        return name in self._decoded()

    def __iter__(self) -> Iterator[str]:
        return iter(self._decoded())

    def __len__(self) -> int:
        return len(self._decoded())

    def __repr__(self) -> str:
        return f"ScopeHeaders({self._decoded()!r})"


_RAW_NAMES: dict[str, bytes] = {}
"""Header names looked up, as ASGI gives them (``"origin"``: ``b"origin"``)."""
_RAW_NAMES_LIMIT = 64  # the core asks for a handful; callbacks may ask for others


def request_from_scope(scope: Scope) -> Request:
    """The core's view of an ASGI http or websocket scope."""
    return Request(
        scope.get("method", "GET"),
        parse_query(scope.get("query_string", b"")),
        ScopeHeaders(scope.get("headers") or ()),
        scope.get("scheme", "http"),
        scope,
    )


def build_environ(
    scope: Scope, receive: Callable[..., Any] | None = None, send: Callable[..., Any] | None = None
) -> dict[str, Any]:
    """A WSGI-style environ, as python-engineio handlers expect, from real scope values.

    ``REMOTE_ADDR``/``REMOTE_PORT`` come from the scope's client,
    ``wsgi.url_scheme`` from its scheme, ``SCRIPT_NAME`` from its root path.
    """
    get = scope.get
    # the part that is the same for every request to one URL of one server, copied
    server = get("server")
    shape = (
        get("method", "GET"),
        get("root_path", ""),
        get("path", "/"),
        get("raw_path", b""),
        get("http_version", "1.1"),
        tuple(server) if type(server) is list else server,  # (a list in some servers)
        get("scheme", "http"),
    )
    template = _TEMPLATES.get(shape)
    if template is None:
        template = _template(shape)
    environ = template.copy()
    client = get("client")
    query = get("query_string", b"")
    environ["QUERY_STRING"] = query.decode("latin-1") if isinstance(query, bytes) else query
    if client:
        environ["REMOTE_ADDR"] = client[0] or ""
        environ["REMOTE_PORT"] = str(client[1]) if client[1] is not None else ""
    environ["asgi.scope"] = scope
    environ["asgi.receive"] = receive
    environ["asgi.send"] = send
    keys = _ENVIRON_KEYS
    for name, value in get("headers") or ():
        key = keys.get(name)
        if key is None:
            key = _environ_key(name)
        text = value.decode("latin-1")
        if key in environ and key[0] == "H":  # a repeated header (CONTENT_* are not joined)
            environ[key] = environ[key] + "," + text
        else:
            environ[key] = text
    return environ


_TEMPLATES: dict[tuple[Any, ...], dict[str, Any]] = {}
"""The environ's keys that depend only on the URL and the server, per distinct request shape."""
_TEMPLATES_LIMIT = 64  # the paths are the client's choice (under engineio_path), so bounded


def _template(shape: tuple[Any, ...]) -> dict[str, Any]:
    method, root_path, path, raw_path, version, server, scheme = shape
    server = server or (None, None)
    if scheme == "ws":
        scheme = "http"
    elif scheme == "wss":
        scheme = "https"
    template: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": root_path,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "RAW_URI": (raw_path or b"").decode("latin-1") or path,
        "SERVER_PROTOCOL": "HTTP/" + version,
        "REMOTE_ADDR": "",
        "REMOTE_PORT": "",
        "SERVER_NAME": server[0] or "",
        "SERVER_PORT": str(server[1]) if server[1] is not None else "",
        "wsgi.url_scheme": scheme,
        "asgi.scope": None,
        "asgi.receive": None,
        "asgi.send": None,
    }
    if len(_TEMPLATES) < _TEMPLATES_LIMIT:
        _TEMPLATES[shape] = template
    return template


_ENVIRON_KEYS: dict[bytes, str] = {}
"""Header names seen, with their environ keys (``b"user-agent"``: ``HTTP_USER_AGENT``)."""
_ENVIRON_KEYS_LIMIT = 256  # distinct names remembered; clients choose the names, so bounded


def _environ_key(name: bytes) -> str:
    key = name.decode("latin-1").upper().replace("-", "_")
    if key != "CONTENT_TYPE" and key != "CONTENT_LENGTH":
        key = "HTTP_" + key
    if len(_ENVIRON_KEYS) < _ENVIRON_KEYS_LIMIT:
        _ENVIRON_KEYS[name] = key
    return key
