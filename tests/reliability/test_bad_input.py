"""Bad input over real servers (uvicorn and hypercorn on trio), next to healthy sessions.

Every test states what PROTOCOL.md (or the reference server) says the answer is: the
HTTP status and Engine.IO error code, or the websocket close code; what becomes of the
session; and, through :class:`Healthy`, that a websocket and a polling session running
alongside keep echoing numbered messages in order and on time throughout.
"""

from __future__ import annotations

import json
import select
import socket
import time
from typing import Any

import pytest

from .clients import (
    RS,
    Polling,
    RawWS,
    WSClosed,
    WSRejected,
    WSSession,
    chunked,
    connect,
    decode_payload,
    eio_path,
    raw_request,
    read_response,
    send_head,
    upgrade,
    ws_frame,
)
from .support import MAX_SIZE, Healthy, closed_with, events, still_open, wait_for

# --------------------------------------------------------------------------- helpers


def error_code(resp: Any) -> int:
    assert resp.header("content-type") == "application/json", resp.headers
    body = resp.json()
    assert set(body) == {"code", "message"}, body
    return int(body["code"])


def assert_refused(resp: Any, status: int, code: int) -> None:
    assert resp.status == status, f"expected HTTP {status} code {code}, got {resp!r}"
    assert error_code(resp) == code, resp.body


def ws_refusal(url: str, target: str, headers: Any = (), timeout: float = 5.0) -> tuple[int, bytes]:
    """Open a websocket that must be refused; return (HTTP status, body)."""
    try:
        ws = RawWS(url, target, headers, timeout=timeout)
    except WSRejected as exc:
        return exc.status, exc.body
    except WSClosed:
        return 0, b""  # closed without an answer: refused, but with no status
    ws.close()
    raise AssertionError(f"websocket {target} was accepted")


def hold_poll(url: str, sid: str) -> socket.socket:
    """A GET that the server holds (nothing queued); returns its socket once it is held."""
    sock = send_head(url, "GET", eio_path(sid))
    wait_for(url, lambda s: sid in s["held_polls"], 5, f"held poll of {sid}")
    return sock


def rss(url: str) -> int:
    return int(events(url)["rss_kib"])


# --------------------------------------------------------------------------- handshake and routing

SUPERSCRIPT_TWO = "%C2%B2"  # "²": str.isdigit() is True, int() refuses it

POLLING_ROUTING = [
    # (query, method, status, Engine.IO error code)
    ("transport=polling", "GET", 400, 5),
    ("EIO=3&transport=polling", "GET", 400, 5),
    ("EIO=5&transport=polling", "GET", 400, 5),
    ("EIO=abc&transport=polling", "GET", 400, 5),
    ("EIO=-4&transport=polling", "GET", 400, 5),
    ("EIO=4.0&transport=polling", "GET", 400, 5),
    (f"EIO={SUPERSCRIPT_TWO}&transport=polling", "GET", 400, 5),
    ("EIO=4", "GET", 400, 0),
    ("EIO=4&transport=", "GET", 400, 0),
    ("EIO=4&transport=flashsocket", "GET", 400, 0),
    ("EIO=4&transport=__proto__", "GET", 400, 0),
    ("EIO=4&transport=constructor", "GET", 400, 0),
    ("EIO=4&transport=hasOwnProperty", "GET", 400, 0),
    ("EIO=4&transport=toString", "GET", 400, 0),
    ("EIO=4&transport=POLLING", "GET", 400, 0),
    ("EIO=4&transport=websocket", "GET", 400, 3),  # websocket transport without an upgrade
    ("EIO=4&transport=polling", "POST", 400, 2),  # a handshake must be a GET
    ("EIO=4&transport=polling", "PUT", 400, 2),
    ("EIO=4&transport=polling&sid=nope", "GET", 400, 1),
    ("EIO=4&transport=polling&sid=nope", "POST", 400, 1),
    ("EIO=4&transport=polling&sid=", "GET", 400, 1),
    ("EIO=4&transport=polling&sid=__proto__", "GET", 400, 1),
]


@pytest.mark.parametrize(("query", "method", "status", "code"), POLLING_ROUTING)
def test_polling_routing_errors(server: Any, query: str, method: str, status: int, code: int) -> None:
    with Healthy(server.url):
        body = b"4hello" if method in ("POST", "PUT") else b""
        resp = raw_request(server.url, method, "/engine.io/?" + query, body=body)
        assert_refused(resp, status, code)
        assert b"__proto__" not in resp.body and b"nope" not in resp.body, "the error body echoes input"


WEBSOCKET_ROUTING = [
    ("transport=websocket", 400, 5),
    ("EIO=3&transport=websocket", 400, 5),
    ("EIO=abc&transport=websocket", 400, 5),
    (f"EIO={SUPERSCRIPT_TWO}&transport=websocket", 400, 5),
    ("EIO=4", 400, 0),
    ("EIO=4&transport=__proto__", 400, 0),
    ("EIO=4&transport=constructor", 400, 0),
    ("EIO=4&transport=polling", 400, 3),  # a websocket request must say transport=websocket
    ("EIO=4&transport=websocket&sid=nope", 400, 1),
    ("EIO=4&transport=websocket&sid=__proto__", 400, 1),
]


@pytest.mark.parametrize(("query", "status", "code"), WEBSOCKET_ROUTING)
def test_websocket_routing_errors_are_refused_before_accept(
    server: Any, query: str, status: int, code: int
) -> None:
    with Healthy(server.url):
        got, body = ws_refusal(server.url, "/engine.io/?" + query)
        # both servers implement the websocket.http.response extension: the JSON error goes out
        assert got == status, (got, body)
        assert json.loads(body)["code"] == code, body


# --------------------------------------------------------------------------- polling payloads

MALFORMED_PAYLOADS = [
    pytest.param(b"", id="empty-body"),
    pytest.param(b"garbage", id="unknown-type-g"),
    pytest.param(b"7hello", id="unknown-type-7"),
    pytest.param(b"4hi\x1e9", id="unknown-type-after-a-message"),
    pytest.param(b"4ok\x1e", id="empty-trailing-packet"),
    pytest.param(b"\x1e", id="only-separator"),
    pytest.param(b"4\xff\xfe", id="invalid-utf8"),
    pytest.param(b"4\xed\xa0\x80", id="utf8-surrogate"),
    pytest.param(b"4\xc0\xaf", id="utf8-overlong"),
    pytest.param(b"b!!!", id="invalid-base64"),
    pytest.param(b"bAQ", id="base64-bad-padding"),
    pytest.param(b"bAQID\n", id="base64-newline"),
    pytest.param(b"0", id="open-from-client"),
    pytest.param(b'0{"sid":"x"}', id="open-with-data"),
    pytest.param(b"5", id="upgrade-on-polling"),
    pytest.param(b"\x00\x01\x02\xff", id="raw-binary-body"),
]


@pytest.mark.parametrize("body", MALFORMED_PAYLOADS)
def test_malformed_payload_is_400_and_closes_the_session(server: Any, body: bytes) -> None:
    url = server.url
    with Healthy(url):
        p = Polling(url)
        resp = p.post(body)
        assert_refused(resp, 400, 3)
        closed_with(url, p.sid, ("transport error",))
        assert_refused(p.get(), 400, 1)  # the sid is stale now


def test_valid_control_packets_on_polling_keep_the_session(server: Any) -> None:
    url = server.url
    with Healthy(url):
        p = Polling(url)
        assert p.post("6").status == 200  # noop
        assert p.post("4a" + RS + "6" + RS + "4b").status == 200
        assert p.receive(2) == ["a", "b"]
        assert p.post("b").status == 200  # an empty binary message is valid base64
        assert p.receive(1) == [b""]
        still_open(url, p.sid)
        assert p.post("1").status == 200
        closed_with(url, p.sid, ("client disconnect",))


# --------------------------------------------------------------------------- chunked bodies


def test_chunked_post_is_delivered_in_order(server: Any) -> None:
    url = server.url
    with Healthy(url):
        p = Polling(url)
        text = "héllo wörld €𝄞"
        payload = ("4" + text + RS + "bAAEC/w==" + RS + "4second").encode("utf-8")
        # split inside multi-byte characters, the separator and the base64 packet
        cuts = [1, 3, 4, 9, 10, 17, 20, 21, 26, 30, len(payload)]
        parts, start = [], 0
        for c in cuts:
            parts.append(payload[start:c])
            start = c
        resp = raw_request(url, "POST", eio_path(p.sid), [("Transfer-Encoding", "chunked")], chunked(parts))
        assert resp.status == 200 and resp.body == b"ok", resp
        assert p.receive(3) == [text, b"\x00\x01\x02\xff", "second"]
        still_open(url, p.sid)


def test_chunked_post_trickled_chunk_by_chunk_is_delivered(server: Any) -> None:
    url = server.url
    with Healthy(url):
        p = Polling(url)
        sock = send_head(url, "POST", eio_path(p.sid), [("Transfer-Encoding", "chunked")])
        body = chunked([b"4", b"pie", b"ces", RS.encode(), b"4two"])
        for i in range(0, len(body), 3):  # separate segments; the server sees them one by one
            sock.sendall(body[i : i + 3])
            select.select([], [], [], 0.002)
        resp = read_response(sock, method="POST")
        sock.close()
        assert resp.status == 200, resp
        assert p.receive(2) == ["pieces", "two"]


# --------------------------------------------------------------------------- size limits


def test_post_at_the_limit_is_accepted(server: Any) -> None:
    url = server.url
    with Healthy(url):
        p = Polling(url)
        text = "x" * (MAX_SIZE - 1)
        assert p.post("4" + text).status == 200
        assert p.receive(1) == [text]


def test_post_over_the_limit_by_content_length_is_413_and_the_session_is_kept(server: Any) -> None:
    url = server.url
    with Healthy(url):
        p = Polling(url)
        resp = p.post("4" + "x" * MAX_SIZE)
        assert resp.status == 413, resp
        # announced but never sent: the answer cannot depend on reading the body
        sock = send_head(url, "POST", eio_path(p.sid), [("Content-Length", "50000000")], b"4xxx")
        resp = read_response(sock, method="POST")
        sock.close()
        assert resp.status == 413, resp
        p.echo("still here")
        still_open(url, p.sid)


def test_chunked_50mb_post_is_refused_while_reading_with_bounded_memory(server: Any) -> None:
    url = server.url
    total = 50_000_000
    with Healthy(url):
        p = Polling(url)
        before = rss(url)
        sock = send_head(url, "POST", eio_path(p.sid), [("Transfer-Encoding", "chunked")])
        sock.setblocking(False)
        chunk = b"4" + b"x" * 65535
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        sent = 0
        answered = False
        deadline = time.monotonic() + 30
        try:
            while sent < total and not answered and time.monotonic() < deadline:
                view = memoryview(frame)
                while view:
                    readable, writable, _ = select.select([sock], [sock], [], 1.0)
                    if readable:
                        answered = True
                        break
                    if writable:
                        view = view[sock.send(view) :]
                sent += len(chunk)
        except OSError as exc:  # a reset after the answer is fine, the answer is what counts
            answered = True
            print(f"send stopped by {exc!r} after {sent} bytes")
        sock.setblocking(True)
        assert answered, f"no answer after sending {sent} bytes of a {total}-byte chunked body"
        assert sent < 10_000_000, f"the answer came after {sent} bytes: the body was not bounded while read"
        resp = read_response(sock, method="POST")
        sock.close()
        assert resp.status == 413, resp
        grown = rss(url) - before
        assert grown < 20_000, f"RSS grew by {grown} KiB while refusing a 50 MB body"
        p.echo("kept")
        still_open(url, p.sid)


@pytest.mark.parametrize("kind", ["text", "binary"])
def test_websocket_message_over_the_limit_closes_1009(server: Any, kind: str) -> None:
    url = server.url
    with Healthy(url):
        s = WSSession(url)
        at_limit: str | bytes = "4" + "y" * (MAX_SIZE - 1) if kind == "text" else b"\x01" * MAX_SIZE
        s.ws.send(at_limit)
        assert s.receive() == (at_limit[1:] if kind == "text" else at_limit)
        over: str | bytes = "4" + "y" * MAX_SIZE if kind == "text" else b"\x01" * (MAX_SIZE + 1)
        s.ws.send(over)
        assert s.ws.wait_closed() == 1009
        closed_with(url, s.sid, ("transport error",))


def test_multibyte_text_frame_is_measured_in_bytes(server: Any) -> None:
    url = server.url
    with Healthy(url):
        s = WSSession(url)
        s.ws.send("4" + "€" * (MAX_SIZE // 3 + 1))  # fewer characters than the limit, more bytes
        assert s.ws.wait_closed() == 1009
        closed_with(url, s.sid, ("transport error",))


# --------------------------------------------------------------------------- websocket frames

BAD_FRAMES = [
    pytest.param("7", id="unknown-type-7"),
    pytest.param("9x", id="unknown-type-9"),
    pytest.param("x", id="letter"),
    pytest.param("", id="empty-text-frame"),
    pytest.param("0", id="open-from-client"),
    pytest.param("5", id="upgrade-on-websocket-session"),
    pytest.param("b" + "AQID", id="base64-on-websocket"),
]


@pytest.mark.parametrize("frame", BAD_FRAMES)
def test_bad_frame_closes_the_websocket_1002(server: Any, frame: str) -> None:
    url = server.url
    with Healthy(url):
        s = WSSession(url)
        s.echo("before")
        s.ws.send(frame)
        assert s.ws.wait_closed() == 1002
        closed_with(url, s.sid, ("transport error",))


def test_invalid_utf8_text_frame_closes_the_websocket(server: Any) -> None:
    """The ASGI server refuses it (uvicorn: 1007; hypercorn drops the connection)."""
    url = server.url
    with Healthy(url):
        s = WSSession(url)
        s.ws.sock.sendall(ws_frame(b"4\xff\xfe"))
        code = s.ws.wait_closed()
        assert code in (1007, 1002, 1006, None), code  # 1006: the connection was dropped
        closed_with(url, s.sid, ("transport close", "transport error"))


def test_binary_message_on_a_websocket_session_is_a_message(server: Any) -> None:
    url = server.url
    with Healthy(url):
        s = WSSession(url)
        s.ws.send(b"2probe")  # binary: raw bytes of a message, not a packet
        assert s.receive() == b"2probe"
        still_open(url, s.sid)


# --------------------------------------------------------------------------- upgrades


@pytest.mark.parametrize(
    "first",
    [
        pytest.param(b"2probe", id="binary-probe"),
        pytest.param("5", id="upgrade-before-probe"),
        pytest.param("4hello", id="message-before-probe"),
        pytest.param("2", id="ping-without-probe"),
        pytest.param("3probe", id="pong-probe"),
        pytest.param("x", id="garbage"),
    ],
)
def test_bad_first_probe_frame_closes_the_probe_and_keeps_polling(server: Any, first: str | bytes) -> None:
    url = server.url
    with Healthy(url):
        p = Polling(url)
        ws = RawWS(url, eio_path(p.sid, "websocket"))
        ws.send(first)
        assert ws.wait_closed() == 1002
        p.echo("still polling")
        assert events(url)["transports"][p.sid] == "polling"
        still_open(url, p.sid)
        # and a proper upgrade still works afterwards
        ws = upgrade(url, p)
        ws.send("4up")
        assert ws.recv_packet() == ("4", "up")
        ws.close()


def test_binary_upgrade_packet_after_probe_closes_the_probe(server: Any) -> None:
    url = server.url
    with Healthy(url):
        p = Polling(url)
        ws = RawWS(url, eio_path(p.sid, "websocket"))
        ws.send("2probe")
        assert ws.recv_packet() == ("3", "probe")
        ws.send(b"5")
        assert ws.wait_closed() == 1002
        p.echo("still polling")
        still_open(url, p.sid)


def test_probe_that_never_speaks_times_out_and_the_session_stays_on_polling(server: Any) -> None:
    url = server.url
    with Healthy(url):
        p = Polling(url)
        ws = RawWS(url, eio_path(p.sid, "websocket"))
        t0 = time.monotonic()
        code = ws.wait_closed(timeout=6)
        waited = time.monotonic() - t0
        assert code == 1000 and 1.0 < waited < 4.0, (code, waited)  # upgrade timeout is 1.5 s
        p.echo("polling")
        assert events(url)["transports"][p.sid] == "polling"


def test_probe_answered_but_no_upgrade_packet_times_out(server: Any) -> None:
    url = server.url
    with Healthy(url):
        p = Polling(url)
        ws = RawWS(url, eio_path(p.sid, "websocket"))
        ws.send("2probe")
        assert ws.recv_packet() == ("3", "probe")
        assert ws.wait_closed(timeout=6) == 1000
        p.echo("polling")


def ws_ignored(url: str, target: str) -> None:
    """A websocket the protocol ignores (the official suite's "ignores WebSocket connection
    with same sid"): accepted, then closed by the server at once, with no frame first."""
    ws = RawWS(url, target)
    try:
        first = ws.recv()
        assert first == ("close", 1000), f"expected an immediate close, got {first!r}"
    finally:
        ws.close()


def test_second_websocket_for_one_sid_is_ignored(server: Any) -> None:
    url = server.url
    with Healthy(url):
        p = Polling(url)
        probe = RawWS(url, eio_path(p.sid, "websocket"))
        ws_ignored(url, eio_path(p.sid, "websocket"))
        # the first probe is untouched and completes the upgrade
        probe.send("2probe")
        assert probe.recv_packet() == ("3", "probe")
        probe.send("5")
        probe.send("4on ws")
        assert probe.recv_packet() == ("4", "on ws")
        ws_ignored(url, eio_path(p.sid, "websocket"))
        probe.send("4still")
        assert probe.recv_packet() == ("4", "still")
        still_open(url, p.sid)
        probe.close()


def test_websocket_sid_used_on_polling_is_400_and_the_session_is_kept(server: Any) -> None:
    url = server.url
    with Healthy(url):
        s = WSSession(url)
        assert_refused(raw_request(url, "GET", eio_path(s.sid)), 400, 3)
        assert_refused(raw_request(url, "POST", eio_path(s.sid), body=b"4x"), 400, 3)
        s.echo("kept")
        p = Polling(url)
        ws = upgrade(url, p)
        assert_refused(p.get(), 400, 3)
        assert_refused(p.post("4late"), 400, 3)
        ws.send("4on ws")
        assert ws.recv_packet() == ("4", "on ws")
        still_open(url, s.sid)
        still_open(url, p.sid)
        ws.close()


def test_websocket_only_session_cannot_be_upgraded_again(server: Any) -> None:
    url = server.url
    with Healthy(url):
        s = WSSession(url)
        ws_ignored(url, eio_path(s.sid, "websocket"))
        s.echo("kept")


# --------------------------------------------------------------------------- unknown, stale sids


def test_stale_sid_is_unknown_everywhere(server: Any) -> None:
    url = server.url
    with Healthy(url):
        p = Polling(url)
        assert p.post("1").status == 200
        closed_with(url, p.sid, ("client disconnect",))
        assert_refused(p.get(), 400, 1)
        assert_refused(p.post("4late"), 400, 1)
        status, body = ws_refusal(url, eio_path(p.sid, "websocket"))
        assert status == 400 and json.loads(body)["code"] == 1
        s = WSSession(url)
        s.ws.send("1")  # a client that sends CLOSE closes its websocket itself
        s.ws.close()
        closed_with(url, s.sid, ("client disconnect",))
        status, body = ws_refusal(url, eio_path(s.sid, "websocket"))
        assert status == 400 and json.loads(body)["code"] == 1


# --------------------------------------------------------------------------- concurrency


def test_concurrent_gets_answer_400_and_close_the_session(server: Any) -> None:
    url = server.url
    with Healthy(url):
        p = Polling(url)
        first = hold_poll(url, p.sid)
        assert_refused(p.get(), 400, 3)
        resp = read_response(first)
        first.close()
        assert resp.status == 200, resp
        assert [t for t, _ in decode_payload(resp.body)] in (["1"], ["6"]), resp.body
        closed_with(url, p.sid, ("transport error",))


def test_concurrent_posts_answer_400_and_close_the_session(server: Any) -> None:
    url = server.url
    with Healthy(url):
        p = Polling(url)
        first = send_head(url, "POST", eio_path(p.sid), [("Content-Length", "10")], b"4hel")
        wait_for(url, lambda s: p.sid in s["active_posts"], 5, "first POST reading its body")
        assert_refused(p.post("4second"), 400, 3)
        closed_with(url, p.sid, ("transport error",))
        first.sendall(b"lo1234")
        resp = read_response(first, method="POST")
        first.close()
        assert_refused(resp, 400, 1)  # its session is gone; the message is not delivered


def test_get_and_post_at_once_are_fine(server: Any) -> None:
    """One GET and one POST in flight together is normal polling."""
    url = server.url
    with Healthy(url):
        p = Polling(url)
        held = hold_poll(url, p.sid)
        assert p.post("4crossing").status == 200
        resp = read_response(held)
        held.close()
        assert decode_payload(resp.body) == [("4", "crossing")]
        still_open(url, p.sid)


# --------------------------------------------------------------------------- garbage and slowness


@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64, id="tls-client-hello"),
        pytest.param(b"GARBAGE\r\n\r\n", id="no-request-line"),
        pytest.param(b"\x00" * 1000, id="nul-bytes"),
        pytest.param(b"GET /engine.io/?EIO=4&transport=polling HTTP/1.9\r\nHost: x\r\n\r\n", id="http-1.9"),
        pytest.param(b"GET /engine.io/?EIO=4&transport=polling HTTP/9.9\r\n\r\n", id="http-9.9-no-host"),
        pytest.param(
            b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
            id="bad-header",
        ),
        pytest.param(
            b"GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
            id="websocket-without-key",
        ),
    ],
)
def test_garbage_before_the_handshake_is_refused_and_harmless(server: Any, garbage: bytes) -> None:
    url = server.url
    with Healthy(url):
        connects = len(events(url)["connects"])
        sock = connect(url)
        sock.sendall(garbage)
        data = b""
        deadline = time.monotonic() + 5
        try:
            while time.monotonic() < deadline:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
                if b"\r\n\r\n" in data:
                    break
        except (TimeoutError, ConnectionResetError):
            pass
        sock.close()
        status = int(data.split(b" ", 2)[1]) if data else 0
        # an HTTP/1.x version the parser tolerates may be served as a normal handshake
        served = status == 200 and garbage.startswith(b"GET ")
        assert status == 0 or 400 <= status < 500 or served, data[:200]
        created = len(events(url)["connects"]) - connects
        assert created == (1 if status == 200 else 0), f"{created} sessions created by garbage"


def test_garbage_frames_before_anything_else_on_a_websocket_session(server: Any) -> None:
    url = server.url
    with Healthy(url):
        ws = RawWS(url, eio_path(transport="websocket"))
        ws.send("\x00\x01garbage")
        packets = []
        with pytest.raises(WSClosed) as closed:
            for _ in range(5):
                packets.append(ws.recv_packet())
        assert closed.value.code == 1002
        assert packets and packets[0][0] == "0", packets  # the open packet went out first
        closed_with(url, json.loads(packets[0][1])["sid"], ("transport error",))


def test_slow_loris_post_short_of_the_heartbeat_is_delivered(server: Any) -> None:
    url = server.url
    with Healthy(url):
        p = Polling(url)
        body = b"4" + b"s" * 14
        sock = send_head(url, "POST", eio_path(p.sid), [("Content-Length", str(len(body)))])
        for i in range(len(body)):  # ~1.2 s for the whole body, byte by byte
            sock.sendall(body[i : i + 1])
            select.select([], [], [], 0.08)
        resp = read_response(sock, method="POST")
        sock.close()
        assert resp.status == 200, resp
        assert p.receive(1) == ["s" * 14]


def test_slow_loris_post_outliving_the_heartbeat_is_cut_off_with_its_session(server: Any) -> None:
    """A body trickled for longer than pingInterval + pingTimeout: the client cannot
    answer pings (a second POST would be a concurrent POST), so the session ends by
    ping timeout, and at that moment the server stops reading the body and answers
    400 (unknown sid) while the client is still trickling: the heartbeat bounds how
    long such a connection lives, max_http_buffer_size bounds its memory."""
    url = server.url
    with Healthy(url):
        p = Polling(url)
        body = b"4" + b"t" * 199  # at 10 bytes/s: 20 s, far past the heartbeat
        sock = send_head(url, "POST", eio_path(p.sid), [("Content-Length", str(len(body)))])
        sent = 0
        answered = False
        while sent < len(body):
            sock.sendall(body[sent : sent + 1])
            sent += 1
            readable, _, _ = select.select([sock], [], [], 0.1)
            if readable:
                answered = True
                break
        assert answered, "the server read the whole trickled body of a closed session"
        resp = read_response(sock, method="POST")
        sock.close()
        closed_with(url, p.sid, ("ping timeout",), timeout=1)
        assert sent < len(body) // 2, sent
        assert_refused(resp, 400, 1)


@pytest.mark.parametrize("size", [4_000, 12_000])
def test_long_query_string_and_header_within_server_limits_work(server: Any, size: int) -> None:
    url = server.url
    with Healthy(url):
        p = Polling(url, query="&t=" + "q" * size, headers=[("X-Junk", "h" * size)])
        p.echo("long")


@pytest.mark.parametrize("size", [100_000, 1_000_000])
def test_very_long_query_string_and_headers_are_refused_or_handled(server: Any, size: int) -> None:
    """The ASGI server's HTTP parser sets the limit (hypercorn: 431; uvicorn/httptools: 400
    for the request line, no limit on a header). Whatever passes must work normally."""
    url = server.url
    with Healthy(url):
        before = rss(url)
        for target, headers in (
            (eio_path(extra="&t=" + "q" * size), []),
            (eio_path(), [("X-Junk", "h" * size)]),
            (eio_path(), [(f"X-J{i}", "v" * 100) for i in range(size // 110)]),
        ):
            try:
                resp = raw_request(url, "GET", target, headers, timeout=10)
            except (ConnectionResetError, BrokenPipeError):
                continue  # refused by closing: fine
            assert resp.status in (200, 400, 413, 414, 431), resp
            if resp.status == 200:
                assert decode_payload(resp.body)[0][0] == "0"
            try:
                status, _ = ws_refusal(url, target.replace("polling", "websocket"), headers, timeout=1)
            except AssertionError:
                status = 101  # accepted: a websocket-only handshake; the socket is closed again
            except (ConnectionResetError, BrokenPipeError):
                status = 0
            except TimeoutError:
                # uvicorn 0.54 (websockets-sansio) never answers a websocket handshake whose
                # request line or a header exceeds 8 KiB: the connection just hangs (seen with a
                # bare ASGI app too). Not ours to fix; recorded, and only tolerated there.
                assert server.name == "uvicorn", f"{server.name} did not answer a long websocket handshake"
                status = -1
            assert status in (-1, 0, 101, 400, 413, 414, 431), status
        assert rss(url) - before < 50_000, "RSS grew by more than 50 MB on a few long requests"
