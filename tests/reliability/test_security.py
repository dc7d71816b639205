"""Security defaults: origins (polling and websocket), ``cors_allowed_origins=[]``,
session-id quality, cookie attributes, and no reflection of unvalidated headers."""

from __future__ import annotations

import collections
import itertools
import json
import math
import re
import string
from typing import Any, Iterator

import pytest
from servers import running_server

import engineio_sansio
from engineio_sansio import ConnectRequest, Request, ServerConfig

from ..core.client_model import Hub
from .clients import Polling, RawWS, WSRejected, WSSession, eio_path, raw_request
from .support import APP, BAD_INPUT_SERVERS, BASE_ENV, Healthy

EVIL = "http://evil.example"
GOOD = "http://good.example"


def start(name: str, **env: str) -> Any:
    return running_server(APP, name, env={**BASE_ENV, **env})


@pytest.fixture(scope="module", params=BAD_INPUT_SERVERS)
def default_server(request: pytest.FixtureRequest) -> Iterator[Any]:
    """cors_allowed_origins left at its default (None: same origin only)."""
    with start(request.param, EIO_CORS="none") as srv:
        yield srv


def ws_status(url: str, target: str, headers: list[tuple[str, str]]) -> int:
    try:
        ws = RawWS(url, target, headers)
    except WSRejected as exc:
        return exc.status
    ws.close()
    return 101


def acao(resp: Any) -> str | None:
    return resp.header("access-control-allow-origin")  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- origins


def test_default_refuses_cross_origin_polling(default_server: Any) -> None:
    url = default_server.url
    with Healthy(url):
        resp = raw_request(url, "GET", eio_path(), [("Origin", EVIL)])
        assert resp.status == 403, resp
        assert resp.json()["code"] == 4
        assert acao(resp) is None
        # ... also on an existing session: the attacker's page cannot read or write it
        p = Polling(url)
        assert raw_request(url, "GET", eio_path(p.sid), [("Origin", EVIL)]).status == 403
        assert raw_request(url, "POST", eio_path(p.sid), [("Origin", EVIL)], b"4injected").status == 403
        pre = raw_request(
            url, "OPTIONS", eio_path(), [("Origin", EVIL), ("Access-Control-Request-Method", "POST")]
        )
        assert pre.status == 403 and acao(pre) is None, pre
        p.echo("untouched")  # nothing injected arrived before this


@pytest.mark.parametrize(
    "origin",
    [
        EVIL,
        "null",
        "http://127.0.0.1",
        "https://127.0.0.1:{port}",
        "http://127.0.0.1:{port}.evil.example",
        "http://localhost:{port}",
    ],
)
def test_default_refuses_cross_origin_websocket(default_server: Any, origin: str) -> None:
    url = default_server.url
    origin = origin.format(port=url.rsplit(":", 1)[1])
    with Healthy(url):
        assert ws_status(url, eio_path(transport="websocket"), [("Origin", origin)]) == 403
        p = Polling(url)  # hijacking an existing session through an upgrade is refused too
        assert ws_status(url, eio_path(p.sid, "websocket"), [("Origin", origin)]) == 403
        p.echo("untouched")


def test_default_allows_same_origin_and_originless_requests(default_server: Any) -> None:
    url = default_server.url
    own = url  # http://127.0.0.1:<port>
    resp = raw_request(url, "GET", eio_path(), [("Origin", own)])
    assert resp.status == 200 and acao(resp) == own, (resp, resp.headers)
    assert raw_request(url, "GET", eio_path()).status == 200
    assert acao(raw_request(url, "GET", eio_path())) is None
    assert ws_status(url, eio_path(transport="websocket"), [("Origin", own)]) == 101
    assert ws_status(url, eio_path(transport="websocket"), []) == 101


@pytest.fixture(scope="module")
def listed_server() -> Iterator[Any]:
    with start("uvicorn", EIO_CORS=GOOD) as srv:
        yield srv


def test_allowed_origin_list(listed_server: Any) -> None:
    url = listed_server.url
    ok = raw_request(url, "GET", eio_path(), [("Origin", GOOD)])
    assert ok.status == 200 and acao(ok) == GOOD
    assert ok.header("access-control-allow-credentials") == "true"
    assert "origin" in (ok.header("vary") or "").lower()
    assert ws_status(url, eio_path(transport="websocket"), [("Origin", GOOD)]) == 101
    for bad in (EVIL, GOOD + ".evil.example", GOOD.upper(), GOOD + ":80", "null"):
        assert raw_request(url, "GET", eio_path(), [("Origin", bad)]).status == 403, bad
        assert ws_status(url, eio_path(transport="websocket"), [("Origin", bad)]) == 403, bad


@pytest.fixture(scope="module")
def cors_off_server() -> Iterator[Any]:
    with start("uvicorn", EIO_CORS="[]") as srv:
        yield srv


def test_empty_origin_list_disables_cors_handling(cors_off_server: Any) -> None:
    url = cors_off_server.url
    resp = raw_request(url, "GET", eio_path(), [("Origin", EVIL)])
    assert resp.status == 200, resp
    assert not [h for h in resp.header_names() if h.startswith("access-control-")], resp.headers
    assert ws_status(url, eio_path(transport="websocket"), [("Origin", EVIL)]) == 101
    p = Polling(url, headers=[("Origin", EVIL)])
    post = p.post("4hi")
    assert post.status == 200 and not [h for h in post.header_names() if h.startswith("access-control-")]
    assert p.receive(1) == ["hi"]
    pre = raw_request(
        url,
        "OPTIONS",
        eio_path(),
        [
            ("Origin", EVIL),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "x-a"),
        ],
    )
    assert pre.status in (200, 204) and not [h for h in pre.header_names() if h.startswith("access-control-")]


# --------------------------------------------------------------------------- header reflection


@pytest.fixture(scope="module")
def wildcard_server() -> Iterator[Any]:
    with start("uvicorn", EIO_CORS="*") as srv:
        yield srv


def preflight(url: str, origin: str, request_headers: str) -> Any:
    return raw_request(
        url,
        "OPTIONS",
        eio_path(),
        [
            ("Origin", origin),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", request_headers),
        ],
    )


def test_preflight_reflects_only_well_formed_header_lists(wildcard_server: Any) -> None:
    url = wildcard_server.url
    resp = preflight(url, GOOD, "content-type, x-custom-header")
    assert resp.status in (200, 204), resp
    assert resp.header("access-control-allow-headers") == "content-type, x-custom-header"
    assert "POST" in (resp.header("access-control-allow-methods") or "")


@pytest.mark.parametrize(
    "value",
    [
        "x-a\r\nx-injected: 1",  # the CRLF splits it: the second line is a header of its own
        "x-a;evil=1",
        "x-a<script>alert(1)</script>",
        'x-a"quoted"',
        "x-a\tx-b",
        "x-\xe9",
        "x-a " + "b" * 5000,
        "x-a\\, x-b",
    ],
)
def test_preflight_does_not_reflect_odd_request_headers(wildcard_server: Any, value: str) -> None:
    url = wildcard_server.url
    resp = preflight(url, GOOD, value)
    assert resp.status in (200, 204, 400, 431), resp
    raw = b"\r\n".join(k + b": " + v for k, v in resp.headers)
    allow = resp.header("access-control-allow-headers")
    assert allow is None or re.fullmatch(r"[A-Za-z0-9_, -]*", allow), allow
    assert b"x-injected" not in raw.lower()
    for bad in ("<script>", ";evil", '"quoted"', "\\", "\xe9"):
        assert bad.encode("latin-1") not in raw, (bad, raw[:300])


def test_error_bodies_do_not_echo_the_request(wildcard_server: Any) -> None:
    url = wildcard_server.url
    probe = "%3Cscript%3Ealert(1)%3C%2Fscript%3E"
    for target in (
        f"/engine.io/?EIO=4&transport={probe}",
        f"/engine.io/?EIO={probe}&transport=polling",
        f"/engine.io/?EIO=4&transport=polling&sid={probe}",
    ):
        resp = raw_request(url, "GET", target)
        assert resp.status == 400 and b"script" not in resp.body.lower(), resp
        assert resp.header("content-type") == "application/json"


# --------------------------------------------------------------------------- cookies

COOKIE = {"name": "io", "path": "/", "httponly": True, "samesite": "Strict", "secure": True}


@pytest.fixture(scope="module")
def cookie_server() -> Iterator[Any]:
    with start("uvicorn", EIO_COOKIE_JSON=json.dumps(COOKIE)) as srv:
        yield srv


def cookie_attributes(value: str) -> tuple[str, dict[str, str | bool]]:
    first, *attrs = [part.strip() for part in value.split(";")]
    out: dict[str, str | bool] = {}
    for a in attrs:
        k, eq, v = a.partition("=")
        out[k.lower()] = v if eq else True
    return first, out


def test_cookie_carries_httponly_samesite_secure_when_configured(cookie_server: Any) -> None:
    url = cookie_server.url
    p = Polling(url)
    value = p.handshake_response.header("set-cookie")
    assert value is not None, p.handshake_response.headers
    first, attrs = cookie_attributes(value)
    assert first == f"io={p.sid}"
    assert attrs.get("httponly") is True and attrs.get("secure") is True, value
    assert str(attrs.get("samesite")).lower() == "strict" and attrs.get("path") == "/", value
    ws = RawWS(url, eio_path(transport="websocket"))
    cookies = [v.decode("latin-1") for k, v in ws.accept_headers if k.lower() == b"set-cookie"]
    ws.close()
    assert len(cookies) == 1, ws.accept_headers
    _, attrs = cookie_attributes(cookies[0])
    assert attrs.get("httponly") is True and attrs.get("secure") is True, cookies
    # only the handshake sets it
    p.send("x")
    assert p.get().header("set-cookie") is None


def test_no_cookie_by_default(default_server: Any) -> None:
    p = Polling(default_server.url)
    assert p.handshake_response.header("set-cookie") is None


def test_string_cookie_gets_path_and_samesite() -> None:
    header = engineio_sansio.http.cookie_header("io", "SID")
    assert header is not None
    first, attrs = cookie_attributes(header[1].decode())
    assert first == "io=SID" and attrs.get("path") == "/" and str(attrs.get("samesite")).lower() == "lax"


# --------------------------------------------------------------------------- session ids

URLSAFE = set(string.ascii_letters + string.digits + "-_")


def test_session_ids_are_unguessable_and_never_reused() -> None:
    """10,000 handshakes (each closed again) through the core, with its own id generator:
    ids are unique, 20 URL-safe characters (120 random bits), with no structure:
    per-position and overall character frequencies pass a chi-square test, and no id
    shares a long prefix with another."""
    hub = Hub(ServerConfig(), core_sids=True)
    hub.on_connect = lambda h, ev: None  # decided below, one way or the other
    seen: list[str] = []
    for i in range(10_000):
        rid = hub.request(Request("GET", {"EIO": "4", "transport": "polling"}))
        connect = hub.log[-1]
        assert isinstance(connect, ConnectRequest) and connect.request_id == rid
        sid = connect.sid
        seen.append(sid)
        if i % 2:
            hub.accept(sid)
            hub.app_close(sid)
        else:
            hub.reject(sid)
        resp = hub.response(rid)
        assert resp is not None and resp.status == (200 if i % 2 else 401)
        if i % 1000 == 999:
            hub.log.clear()  # the check reads only the last event; keep memory flat
    assert len(set(seen)) == len(seen), "a session id was issued twice"
    assert all(len(s) == 20 and set(s) <= URLSAFE for s in seen)
    # overall frequency of the 64 symbols: chi-square with 63 degrees of freedom
    counts = collections.Counter("".join(seen))
    n = 20 * len(seen)
    expected = n / 64
    chi2 = sum((counts.get(c, 0) - expected) ** 2 / expected for c in URLSAFE)
    assert chi2 < 130, f"symbol frequencies are skewed (chi2={chi2:.1f}, df=63)"
    # per position (the last symbol of a 120-bit token is uniform too: 20*6 = 120)
    for pos in range(20):
        col = collections.Counter(s[pos] for s in seen)
        exp = len(seen) / 64
        chi = sum((col.get(c, 0) - exp) ** 2 / exp for c in URLSAFE)
        assert chi < 130, f"position {pos} is skewed (chi2={chi:.1f})"
    # no shared structure: the longest common prefix of neighbours in sorted order is short
    ordered = sorted(seen)
    longest = max(len(_common_prefix(a, b)) for a, b in itertools.pairwise(ordered))
    assert longest <= 6, f"two ids share a {longest}-character prefix"
    bits = 20 * math.log2(64)
    assert bits >= 120


def _common_prefix(a: str, b: str) -> str:
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    return a[:i]


def test_session_ids_come_from_the_systems_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    """15 bytes of os.urandom (what secrets.token_urlsafe(15) reads), URL-safe base64."""
    calls = []

    def fake(n: int) -> bytes:
        calls.append(n)
        return bytes([0xFB, 0xFF]) + bytes(13)  # base64 "+/": URL-safe "-_"

    monkeypatch.setattr(engineio_sansio.routing, "urandom", fake)
    hub = Hub(core_sids=True)
    hub.request(Request("GET", {"EIO": "4", "transport": "polling"}))
    connects = [ev for ev in hub.log if isinstance(ev, ConnectRequest)]
    assert [ev.sid for ev in connects] == ["-_8AAAAAAAAAAAAAAAAA"], "the default generator is os.urandom"
    assert calls == [15]


def test_session_ids_over_a_real_server_are_distinct(default_server: Any) -> None:
    ids = {Polling(default_server.url).sid for _ in range(50)}
    ids |= {WSSession(default_server.url).sid for _ in range(50)}
    assert len(ids) == 100 and all(len(s) == 20 for s in ids)
