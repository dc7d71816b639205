"""HTTP policy: query parsing, error bodies, CORS, the session cookie, compression.

Oracles: PROTOCOL.md for the error bodies; the seed (python-engineio's
``BaseServer``, installed in the venv) for ``cors_allowed_origins`` and the cookie
format, which this server must reproduce to be a drop-in; RFC 9110 for
``Accept-Encoding`` q-values.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from typing import Any

import pytest

from engineio_sansio import (
    ErrorCode,
    ProtocolError,
    Request,
    Response,
    ServerConfig,
)
from engineio_sansio.http import choose_encoding, compress_body, cookie_header, error_response, parse_query

from .client_model import Client, Hub, decode_poll_body, error_json, response_body

HS_QUERY = {"EIO": "4", "transport": "polling"}


def answer(config: ServerConfig, request: Request, *, websocket: bool = False) -> Response:
    """What a fresh server answers: the handshake's answer (the application accepts), an
    error, the preflight's; an accepted websocket as a 101 with its extra headers."""
    hub = Hub(config)
    rid = hub.request(request, websocket=websocket)
    if websocket and hub.sockets[rid].accepted:
        return Response(101, hub.sockets[rid].accept_headers)
    resp = hub.response(rid)
    assert resp is not None, f"{request!r} got no answer"
    return resp


def route(
    config: ServerConfig,
    headers: dict[str, str],
    *,
    method: str = "GET",
    scheme: str = "http",
    query: dict[str, str] | None = None,
    websocket: bool = False,
) -> Response:
    q = dict(query if query is not None else HS_QUERY)
    if websocket and query is None:
        q["transport"] = "websocket"
    return answer(config, Request(method, q, headers, scheme), websocket=websocket)


def served(r: Response) -> bool:
    """The request was served (a handshake answered or accepted, a preflight answered)."""
    return r.status in (101, 200, 204)


def cors(r: Response) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    for k, v in r.headers:
        assert k not in out or k == b"vary", f"header {k!r} twice"
        out[k] = v
    return {k: v for k, v in out.items() if k.startswith(b"access-control-")}


def assert_forbidden(r: Response) -> None:
    assert r.status == 403, r
    body = error_json(r)
    assert body["code"] == 4 and set(body) == {"code", "message"}
    # the reason, as Node's server gives it when it knows one: the refused origin
    assert re.fullmatch(r"origin '.*' not allowed", body["message"]), body


# --------------------------------------------------------------------------- query and errors


def test_parse_query_basic() -> None:
    assert parse_query(b"EIO=4&transport=polling&t=N8hyd6w") == {
        "EIO": "4",
        "transport": "polling",
        "t": "N8hyd6w",
    }
    assert parse_query("") == {}
    assert parse_query(b"") == {}


def test_parse_query_first_value_wins_and_decodes() -> None:
    assert parse_query("sid=a&sid=b") == {"sid": "a"}
    assert parse_query("sid=a%2Bb%3D&x=1+2") == {"sid": "a+b=", "x": "1 2"}
    assert parse_query("flag&&k=") == {"flag": "", "k": ""}


@pytest.mark.parametrize("code", list(ErrorCode))
def test_error_response_is_reference_json(code: ErrorCode) -> None:
    status = 403 if code is ErrorCode.FORBIDDEN else 400
    resp = error_response(ProtocolError(code, "detail that stays in logs", status))
    assert resp.status == status
    body = error_json(resp)
    assert body["code"] == int(code)
    assert isinstance(body["message"], str) and body["message"]
    assert "detail" not in body["message"]


def test_error_messages_are_the_reference_strings() -> None:
    # engine.io's Server.errorMessages
    expected = {
        0: "Transport unknown",
        1: "Session ID unknown",
        2: "Bad handshake method",
        3: "Bad request",
        4: "Forbidden",
        5: "Unsupported protocol version",
    }
    for code, text in expected.items():
        assert ProtocolError(ErrorCode(code)).message == text


# --------------------------------------------------------------------------- CORS


def test_no_origin_header_no_cors_headers() -> None:
    for allowed in (None, "*", ["https://a.example"], lambda o: False):
        r = route(ServerConfig(cors_allowed_origins=allowed), {"host": "h.example"})
        assert served(r), f"{allowed!r}: a request without Origin is not cross-origin"
        assert cors(r) == {}


def test_same_origin_default_from_host_and_scheme() -> None:
    cfg = ServerConfig()
    r = route(cfg, {"host": "h.example:8000", "origin": "http://h.example:8000"})
    assert served(r)
    assert cors(r)[b"access-control-allow-origin"] == b"http://h.example:8000"
    assert cors(r)[b"access-control-allow-credentials"] == b"true"
    assert_forbidden(route(cfg, {"host": "h.example:8000", "origin": "http://evil.example"}))
    assert_forbidden(route(cfg, {"host": "h.example:8000", "origin": "https://h.example:8000"}))
    assert_forbidden(route(cfg, {"host": "h.example:8000", "origin": "http://h.example"}))


def test_same_origin_default_https_and_websocket_schemes() -> None:
    cfg = ServerConfig()
    h = {"host": "h.example"}
    assert served(route(cfg, {**h, "origin": "https://h.example"}, scheme="https"))
    assert_forbidden(route(cfg, {**h, "origin": "http://h.example"}, scheme="https"))
    # a websocket request's scheme is ws/wss while the browser's Origin is http/https
    assert served(route(cfg, {**h, "origin": "http://h.example"}, scheme="ws", websocket=True))
    assert served(route(cfg, {**h, "origin": "https://h.example"}, scheme="wss", websocket=True))
    assert_forbidden(route(cfg, {**h, "origin": "http://h.example"}, scheme="wss", websocket=True))


def test_same_origin_default_behind_a_proxy() -> None:
    cfg = ServerConfig()
    base = {"host": "10.0.0.5:8000"}
    ok = route(
        cfg,
        {
            **base,
            "x-forwarded-proto": "https",
            "x-forwarded-host": "app.example",
            "origin": "https://app.example",
        },
    )
    assert served(ok), "the forwarded scheme and host make the public origin"
    ok = route(cfg, {**base, "x-forwarded-proto": "https, http", "origin": "https://10.0.0.5:8000"})
    assert served(ok), "X-Forwarded-Proto alone, first value of a list"
    ok = route(cfg, {**base, "x-forwarded-host": "app.example, proxy2", "origin": "http://app.example"})
    assert served(ok), "X-Forwarded-Host alone, first value of a list"
    assert_forbidden(route(cfg, {**base, "x-forwarded-host": "app.example", "origin": "http://evil.example"}))


def test_same_origin_default_behind_a_proxy_also_accepts_the_direct_origin() -> None:
    """python-engineio (the seed, base_server._cors_allowed_origins) allows *both*
    ``scheme://Host`` and the forwarded origin when X-Forwarded-* is present."""
    r = route(
        ServerConfig(),
        {
            "host": "10.0.0.5:8000",
            "x-forwarded-host": "app.example",
            "x-forwarded-proto": "https",
            "origin": "http://10.0.0.5:8000",
        },
    )
    assert served(r), (
        "with X-Forwarded-* present the seed still accepts Origin == scheme://Host; the core refused it: "
        f"{r!r}"
    )


def test_star_allows_every_origin() -> None:
    r = route(ServerConfig(cors_allowed_origins="*"), {"host": "h", "origin": "https://anything.example"})
    assert served(r)
    # with credentials the browser refuses "*", so the origin itself is echoed
    assert cors(r)[b"access-control-allow-origin"] == b"https://anything.example"
    r = route(
        ServerConfig(cors_allowed_origins="*", cors_credentials=False),
        {"host": "h", "origin": "https://anything.example"},
    )
    assert served(r)
    value = cors(r)[b"access-control-allow-origin"]
    assert value in (b"*", b"https://anything.example")
    assert b"access-control-allow-credentials" not in cors(r)


def test_single_origin_string() -> None:
    cfg = ServerConfig(cors_allowed_origins="https://a.example")
    r = route(cfg, {"host": "h", "origin": "https://a.example"})
    assert served(r) and cors(r)[b"access-control-allow-origin"] == b"https://a.example"
    assert_forbidden(route(cfg, {"host": "h", "origin": "https://b.example"}))
    assert_forbidden(route(cfg, {"host": "h", "origin": "http://h"}))  # same origin is not implied


def test_origin_list() -> None:
    cfg = ServerConfig(cors_allowed_origins=["https://a.example", "https://b.example"])
    for o in ("https://a.example", "https://b.example"):
        r = route(cfg, {"host": "h", "origin": o})
        assert served(r) and cors(r)[b"access-control-allow-origin"] == o.encode()
    assert_forbidden(route(cfg, {"host": "h", "origin": "https://c.example"}))
    assert_forbidden(route(cfg, {"host": "h", "origin": "https://a.example.evil"}))
    star = ServerConfig(cors_allowed_origins=["https://a.example", "*"])
    assert served(route(star, {"host": "h", "origin": "https://z.example"}))


def test_empty_list_disables_cors_entirely() -> None:
    cfg = ServerConfig(cors_allowed_origins=[])
    r = route(cfg, {"host": "h", "origin": "https://evil.example"})
    assert served(r), "[] means: no origin check at all"
    assert cors(r) == {}, "[] means: no CORS headers at all"
    pre = route(cfg, {"host": "h", "origin": "https://x"}, method="OPTIONS")
    assert served(pre) and cors(pre) == {}


def test_callable_origin_predicate() -> None:
    seen: list[Any] = []

    def allowed(origin: str) -> bool:
        seen.append(origin)
        return origin.endswith(".good.example")

    cfg = ServerConfig(cors_allowed_origins=allowed)
    r = route(cfg, {"host": "h", "origin": "https://x.good.example"})
    assert served(r) and cors(r)[b"access-control-allow-origin"] == b"https://x.good.example"
    assert_forbidden(route(cfg, {"host": "h", "origin": "https://x.bad.example"}))
    assert seen == ["https://x.good.example", "https://x.bad.example"]


def test_callable_origin_predicate_taking_environ() -> None:
    """The seed (python-engineio base_server._cors_allowed_origins) calls
    ``cors_allowed_origins(origin, environ)`` first and falls back to ``(origin)`` on
    TypeError, so seed applications may pass a two-argument predicate. Whatever the
    core passes as the second argument, the request must not raise."""
    calls: list[str] = []

    def allowed(origin: str, environ: Any) -> bool:
        calls.append(origin)
        return origin == "https://ok.example"

    cfg = ServerConfig(cors_allowed_origins=allowed)
    try:
        ok = route(cfg, {"host": "h", "origin": "https://ok.example"})
        bad = route(cfg, {"host": "h", "origin": "https://no.example"})
    except TypeError as exc:
        pytest.fail(f"a two-argument cors_allowed_origins predicate made receive_request() raise: {exc!r}")
    assert served(ok)
    assert_forbidden(bad)
    assert calls == ["https://ok.example", "https://no.example"]


def test_cors_credentials_off() -> None:
    cfg = ServerConfig(cors_allowed_origins="https://a.example", cors_credentials=False)
    r = route(cfg, {"host": "h", "origin": "https://a.example"})
    assert served(r)
    assert b"access-control-allow-credentials" not in cors(r)


def test_preflight() -> None:
    cfg = ServerConfig(cors_allowed_origins="https://a.example")
    req = Request(
        "OPTIONS",
        {},
        {
            "host": "h",
            "origin": "https://a.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type, x-custom",
        },
    )
    resp = answer(cfg, req)
    assert resp.status in (200, 204)
    h = cors(resp)
    assert h[b"access-control-allow-origin"] == b"https://a.example"
    methods = {m.strip() for m in h[b"access-control-allow-methods"].decode().split(",")}
    assert {"GET", "POST", "OPTIONS"} <= methods
    assert h[b"access-control-allow-headers"].decode().lower() == "content-type, x-custom"
    assert h[b"access-control-allow-credentials"] == b"true"


def test_preflight_refused_origin() -> None:
    cfg = ServerConfig(cors_allowed_origins="https://a.example")
    assert_forbidden(route(cfg, {"host": "h", "origin": "https://b.example"}, method="OPTIONS", query={}))


def test_preflight_never_reflects_header_injection() -> None:
    cfg = ServerConfig(cors_allowed_origins="*")
    req = Request(
        "OPTIONS",
        {},
        {
            "host": "h",
            "origin": "https://a.example",
            "access-control-request-headers": "x\r\nSet-Cookie: evil=1",
        },
    )
    r = answer(cfg, req)
    assert served(r)
    for k, v in r.headers:
        assert b"\r" not in v and b"\n" not in v, (k, v)
        assert k != b"set-cookie"


def test_refused_origin_on_websocket_is_refused_before_accept() -> None:
    cfg = ServerConfig(cors_allowed_origins=["https://a.example"])
    assert_forbidden(route(cfg, {"host": "h", "origin": "https://evil.example"}, websocket=True))


def test_cors_headers_on_errors_and_on_every_polling_answer() -> None:
    origin = "https://a.example"
    hub = Hub(ServerConfig(cors_allowed_origins=[origin]))
    c = Client(hub, headers={"host": "h", "origin": origin})
    hs = c.open_polling()
    assert hs.header(b"access-control-allow-origin") == origin.encode()
    post = c.post_messages("x")
    assert post.status == 200 and post.header(b"access-control-allow-origin") == origin.encode()
    hub.app_send(c.sid, "y")  # type: ignore[arg-type]
    get = c.poll()
    assert get is not None and get.status == 200
    assert get.header(b"access-control-allow-origin") == origin.encode()
    err = c.poll(query={"sid": "nope"})
    assert err is not None and err.status == 400
    assert err.header(b"access-control-allow-origin") == origin.encode(), (
        "the reference answers errors with CORS headers too, so the browser can read them"
    )


# --------------------------------------------------------------------------- cookie


def _seed_cookie(sid: str, attributes: dict[str, Any]) -> str:
    from engineio.base_server import BaseServer

    return str(BaseServer._generate_sid_cookie(None, sid, attributes))


def test_cookie_none() -> None:
    assert cookie_header(None, "abc") is None
    hub = Hub(ServerConfig(cookie=None))
    hs = Client(hub).open_polling()
    assert hs.header(b"set-cookie") is None


def test_cookie_string_matches_seed() -> None:
    h = cookie_header("io", "SID123")
    assert h is not None and h[0] == b"set-cookie"
    assert h[1].decode() == _seed_cookie("SID123", {"name": "io", "path": "/", "SameSite": "Lax"})
    assert h[1] == b"io=SID123; path=/; SameSite=Lax"


def test_cookie_dict_with_strings_callables_and_true_matches_seed() -> None:
    attrs = {
        "name": "sess",
        "path": "/app",
        "httpOnly": True,
        "SameSite": "Strict",
        "Max-Age": lambda: "3600",
        "Expires": "Thu, 01 Jan 2099 00:00:00 GMT",
    }
    h = cookie_header(attrs, "S1")
    assert h is not None
    assert h[1].decode() == _seed_cookie("S1", attrs)
    assert h[1] == (
        b"sess=S1; path=/app; httpOnly; SameSite=Strict; Max-Age=3600; Expires=Thu, 01 Jan 2099 00:00:00 GMT"
    )


def test_cookie_false_attribute_is_left_out() -> None:
    h = cookie_header({"name": "io", "secure": False, "httpOnly": True, "x": lambda: False}, "S")
    assert h is not None and h[1] == b"io=S; httpOnly"


@pytest.mark.parametrize(
    "cookie",
    [
        {"name": "io;Domain=evil"},
        {"name": "io", "path": "/\r\nSet-Cookie: evil=1"},
        {"name": "io", "path": lambda: "/;Domain=evil.example"},
        {"name": "io", "a\nb": True},
        {"name": "io\x00"},
    ],
    ids=["name-semicolon", "crlf-value", "callable-semicolon", "newline-key", "nul-name"],
)
def test_cookie_header_injection_refused(cookie: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        cookie_header(cookie, "S")


@pytest.mark.parametrize(
    "cookie",
    [
        {"name": "io", "path": "/\r\nSet-Cookie: evil=1"},
        {"name": "io", "path": lambda: "/\r\nSet-Cookie: evil=1"},
        {"name": "io", "Domain": lambda: "a;Domain=evil.example"},
        "io;Domain=evil.example",
    ],
    ids=["static-crlf", "callable-crlf", "callable-semicolon", "name-semicolon"],
)
def test_handshake_never_writes_an_injected_cookie(cookie: Any) -> None:
    """Refused either when the config is built or when the handshake is answered;
    never written into a header."""
    try:
        hub = Hub(ServerConfig(cookie=cookie))
        resp = Client(hub).open_polling()
    except ValueError:
        return
    value = resp.header(b"set-cookie") or b""
    assert b"\r" not in value and b"\n" not in value and b"evil" not in value, value


def test_cookie_on_handshake_only() -> None:
    hub = Hub(ServerConfig(cookie="io"))
    c = Client(hub)
    hs = c.open_polling()
    assert hs.header(b"set-cookie") == f"io={c.sid}; path=/; SameSite=Lax".encode()
    hub.app_send(c.sid, "x")  # type: ignore[arg-type]
    later = c.poll()
    assert later is not None and later.status == 200
    assert later.header(b"set-cookie") is None, "only the handshake response sets the cookie"


def test_cookie_on_websocket_handshake() -> None:
    hub = Hub(ServerConfig(cookie={"name": "io", "path": "/"}))
    c = Client(hub)
    c.open_websocket()
    assert c.ws is not None
    assert c.ws.accept_headers == [(b"set-cookie", f"io={c.sid}; path=/".encode())], "AcceptWebSocket sets it"


# --------------------------------------------------------------------------- compression


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        ("gzip", "gzip"),
        ("deflate", "deflate"),
        ("GZip", "gzip"),
        ("gzip, deflate, br", "gzip"),
        ("br, deflate", "deflate"),
        ("gzip;q=0, deflate", "deflate"),
        ("gzip;q=0.2, deflate;q=0.8", "deflate"),
        ("gzip; q=0.9 , deflate ; q=0.1", "gzip"),
        ("deflate;q=1.0, gzip;q=0.5", "deflate"),
        ("br", None),
        ("identity", None),
        ("", None),
        ("gzip;q=0", None),
        ("gzip;q=0, deflate;q=0", None),
        ("*;q=0", None),
        ("*;q=0, deflate", "deflate"),
        ("gzip;q=bogus, deflate", "deflate"),
    ],
)
def test_choose_encoding(accept: str, chosen: str | None) -> None:
    assert choose_encoding(accept) == chosen


def test_star_picks_an_offered_encoding() -> None:
    assert choose_encoding("*") in ("gzip", "deflate")
    assert choose_encoding("*, gzip;q=0") == "deflate"


def _big_poll(config: ServerConfig, accept: str | None, size: int) -> tuple[Response, bytes]:
    hub = Hub(config)
    c = Client(hub)
    c.open_polling()
    text = "x" * size
    assert hub.app_send(c.sid, text)  # type: ignore[arg-type]
    headers = {"accept-encoding": accept} if accept else {}
    resp = c.poll(headers=headers)
    assert resp is not None and resp.status == 200
    assert c.messages == [text]
    return resp, response_body(resp)


@pytest.mark.parametrize("enc", ["gzip", "deflate"])
def test_poll_compressed_above_threshold(enc: str) -> None:
    resp, plain = _big_poll(ServerConfig(), enc, 5000)
    assert resp.header(b"content-encoding") == enc.encode()
    assert len(resp.body) < len(plain)
    if enc == "gzip":
        assert gzip.decompress(resp.body) == plain
    else:
        assert zlib.decompress(resp.body) == plain  # HTTP "deflate" is the zlib format
    assert decode_poll_body(plain)[0].data == "x" * 5000


def test_poll_not_compressed_below_threshold() -> None:
    resp, _ = _big_poll(ServerConfig(), "gzip", 100)
    assert resp.header(b"content-encoding") is None


def test_poll_not_compressed_without_accept_encoding() -> None:
    resp, _ = _big_poll(ServerConfig(), None, 5000)
    assert resp.header(b"content-encoding") is None


def test_poll_not_compressed_when_disabled() -> None:
    resp, _ = _big_poll(ServerConfig(http_compression=False), "gzip", 5000)
    assert resp.header(b"content-encoding") is None


def test_compression_threshold_is_configurable() -> None:
    resp, _ = _big_poll(ServerConfig(compression_threshold=10), "gzip", 100)
    assert resp.header(b"content-encoding") == b"gzip"
    resp, _ = _big_poll(ServerConfig(compression_threshold=100_000), "gzip", 5000)
    assert resp.header(b"content-encoding") is None


def test_compress_body_is_pure() -> None:
    cfg = ServerConfig(compression_threshold=0)
    req = Request("GET", {}, {"accept-encoding": "deflate"})
    headers: list[tuple[bytes, bytes]] = []
    out = compress_body(cfg, req, b"hello hello hello", headers)
    assert (b"content-encoding", b"deflate") in headers
    assert zlib.decompress(out) == b"hello hello hello"
    headers2: list[tuple[bytes, bytes]] = []
    assert compress_body(cfg, Request("GET", {}, {}), b"abc", headers2) == b"abc" and headers2 == []


def test_error_bodies_are_json_not_compressed() -> None:
    hub = Hub(ServerConfig(compression_threshold=0))
    c = Client(hub)
    c.open_polling()
    resp = c.poll(query={"sid": "unknown"}, headers={"accept-encoding": "gzip"})
    assert resp is not None and resp.status == 400
    assert json.loads(resp.body)["code"] == 1
