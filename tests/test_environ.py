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
