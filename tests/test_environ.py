"""The request views built from an ASGI scope: header lookups and the handlers' environ.

Both take shortcuts for the usual request (no header repeated); these properties
hold them to the plain definition, repeats and odd names included.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engineio_asgi.environ import ScopeHeaders, build_environ

NAMES = st.sampled_from(
    [b"host", b"origin", b"accept", b"content-length", b"content-type", b"x-a", b"x_a", b"cookie"]
)
VALUES = st.binary(max_size=6)
HEADERS = st.lists(st.tuples(NAMES, VALUES), max_size=8)


def joined(raw: list[tuple[bytes, bytes]], name: bytes, sep: str) -> str | None:
    """The plain definition: every value of ``name``, in order, joined by ``sep``."""
    values = [v.decode("latin-1") for k, v in raw if k == name]
    return sep.join(values) if values else None


@settings(max_examples=200, deadline=None)
@given(raw=HEADERS, kind=st.sampled_from([list, tuple]), asked=st.lists(NAMES, max_size=4))
def test_header_lookups_join_repeats_in_order(raw: list[tuple[bytes, bytes]], kind: Any, asked: list[bytes]) -> None:
    headers = ScopeHeaders(kind(raw))
    for name in asked:
        expected = joined(raw, name, ", ")
        assert headers.get(name.decode()) == expected
        assert headers.get(name.decode(), "-") == ("-" if expected is None else expected)


def environ_key(name: bytes) -> str:
    key = name.decode("latin-1").upper().replace("-", "_")
    return key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key


@settings(max_examples=200, deadline=None)
@given(raw=HEADERS)
def test_environ_headers_as_wsgi_does(raw: list[tuple[bytes, bytes]]) -> None:
    scope = {"type": "http", "method": "GET", "path": "/engine.io/", "query_string": b"EIO=4", "headers": raw}
    environ = build_environ(scope)
    expected: dict[str, str] = {}
    for name, value in raw:  # repeated HTTP_* headers joined with ",", CONTENT_* the last one
        key = environ_key(name)
        text = value.decode("latin-1")
        expected[key] = expected[key] + "," + text if key in expected and key[0] == "H" else text
    got = {k: v for k, v in environ.items() if k.startswith(("HTTP_", "CONTENT_"))}
    assert got == expected
    assert environ["REQUEST_METHOD"] == "GET" and environ["QUERY_STRING"] == "EIO=4"


def plain_environ(scope: dict[str, Any], receive: Any, send: Any) -> dict[str, Any]:
    """The plain definition of every non-header key, from the scope alone (nothing remembered)."""
    client = scope.get("client") or (None, None)
    server = scope.get("server") or (None, None)
    scheme = scope.get("scheme", "http")
    return {
        "REQUEST_METHOD": scope.get("method", "GET"),
        "SCRIPT_NAME": scope.get("root_path", ""),
        "PATH_INFO": scope.get("path", "/"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "RAW_URI": scope.get("raw_path", b"").decode("latin-1") or scope.get("path", "/"),
        "SERVER_PROTOCOL": "HTTP/" + scope.get("http_version", "1.1"),
        "REMOTE_ADDR": client[0] or "",
        "REMOTE_PORT": "" if client[1] is None else str(client[1]),
        "SERVER_NAME": server[0] or "",
        "SERVER_PORT": "" if server[1] is None else str(server[1]),
        "wsgi.url_scheme": {"ws": "http", "wss": "https"}.get(scheme, scheme),
        "asgi.scope": scope,
        "asgi.receive": receive,
        "asgi.send": send,
    }


def maybe(key: str, values: Any) -> Any:
    return st.one_of(st.just({}), values.map(lambda v: {key: v}))


ADDRESSES = st.one_of(
    st.none(),
    st.tuples(st.sampled_from(["127.0.0.1", "::1", ""]), st.one_of(st.none(), st.integers(0, 65535))),
    st.lists(st.sampled_from(["10.0.0.1", "h"]), min_size=1, max_size=1).map(lambda h: [h[0], 8000]),
)
SCOPES = st.tuples(
    maybe("method", st.sampled_from(["GET", "POST", "OPTIONS"])),
    maybe("root_path", st.sampled_from(["", "/app"])),
    maybe("path", st.sampled_from(["/engine.io/", "/engine.io/x", "/"])),
    maybe("raw_path", st.sampled_from([b"", b"/engine.io/", b"/engine.io/%78"])),
    maybe("http_version", st.sampled_from(["1.0", "1.1", "2"])),
    maybe("scheme", st.sampled_from(["http", "https", "ws", "wss"])),
    maybe("client", ADDRESSES),
    maybe("server", ADDRESSES),
    maybe("query_string", st.sampled_from([b"", b"EIO=4&transport=polling", b"sid=a%20b"])),
).map(lambda parts: {k: v for part in parts for k, v in part.items()})


@settings(max_examples=300, deadline=None)
@given(scopes=st.lists(SCOPES, min_size=1, max_size=6))
def test_environ_of_requests_that_share_a_shape_is_each_ones_own(scopes: list[dict[str, Any]]) -> None:
    # the parts that are the same for one URL of one server are remembered per shape and
    # copied: every environ must still be the plain one of its own scope, whichever came first
    for scope in scopes + scopes:
        scope = {"type": "http", **scope}
        receive, send = object(), object()
        environ = build_environ(scope, receive, send)
        assert environ == plain_environ(scope, receive, send)
        assert list(environ) == list(plain_environ(scope, receive, send))  # (and in that order)
