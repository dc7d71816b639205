"""Small, deliberately dumb clients for hostile tests: raw HTTP and raw websockets.

Everything talks to 127.0.0.1 over plain sockets, so a test can send what no
well-behaved client library would: half a frame, a chunked body trickled byte by
byte, garbage before the request line, a reset instead of a close. Every wait is
bounded (socket timeouts, ``select`` with a deadline).
"""

from __future__ import annotations

import base64
import json
import socket
import struct
import time
from typing import Any, Iterable
from urllib.parse import urlsplit

import h11
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError

RS = "\x1e"
DEFAULT_TIMEOUT = 5.0


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1", f"tests only talk to loopback, not {url}"
    return parts.hostname, parts.port or 80


def connect(url: str, timeout: float = DEFAULT_TIMEOUT) -> socket.socket:
    sock = socket.create_connection(host_port(url), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the kernel sends a TCP RST instead of a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


# --------------------------------------------------------------------------- HTTP


class HTTPResponse:
    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        key = name.lower().encode()
        for k, v in self.headers:
            if k.lower() == key:
                return v.decode("latin-1")
        return None

    def header_names(self) -> list[str]:
        return [k.decode("latin-1").lower() for k, _ in self.headers]

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<HTTPResponse {self.status} {self.body[:80]!r}>"


def read_response(sock: socket.socket, timeout: float = DEFAULT_TIMEOUT, method: str = "GET") -> HTTPResponse:
    """Read one HTTP/1.1 response from ``sock`` (bounded by ``timeout``)."""
    conn = h11.Connection(h11.CLIENT)
    # h11 needs to know a request went out to parse the response that follows
    conn.send(h11.Request(method=method, target="/", headers=[("host", "x")]))
    deadline = time.monotonic() + timeout
    status = 0
    headers: list[tuple[bytes, bytes]] = []
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no complete response within {timeout}s (status so far {status})")
            sock.settimeout(left)
            data = sock.recv(65536)
            conn.receive_data(data)
            continue
        if isinstance(event, h11.Response):
            status = event.status_code
            headers = list(event.headers)
        elif isinstance(event, h11.InformationalResponse):
            continue
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
            return HTTPResponse(status, headers, bytes(body))


def raw_request(
    url: str,
    method: str,
    target: str,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    timeout: float = DEFAULT_TIMEOUT,
) -> HTTPResponse:
    """One request on a fresh connection, written by hand (no validation of our input)."""
    host, port = host_port(url)
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    names = {k.lower() for k, _ in headers}
    lines += [f"{k}: {v}" for k, v in headers]
    if body and "content-length" not in names and "transfer-encoding" not in names:
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    with connect(url, timeout) as sock:
        sock.sendall(head + body)
        return read_response(sock, timeout, method)


def chunked(parts: Iterable[bytes]) -> bytes:
    out = bytearray()
    for p in parts:
        if p:
            out += f"{len(p):x}\r\n".encode() + p + b"\r\n"
    out += b"0\r\n\r\n"
    return bytes(out)


def eio_path(sid: str | None = None, transport: str = "polling", extra: str = "") -> str:
    q = f"/engine.io/?EIO=4&transport={transport}"
    if sid:
        q += f"&sid={sid}"
    return q + extra


def decode_payload(body: bytes) -> list[tuple[str, Any]]:
    """A v4 polling payload as (type digit, data) pairs; binary is ("b", bytes)."""
    out: list[tuple[str, Any]] = []
    if not body:
        return out
    for part in body.decode("utf-8").split(RS):
        if part.startswith("b"):
            out.append(("b", base64.b64decode(part[1:])))
        else:
            out.append((part[:1], part[1:]))
    return out


class Polling:
    """A polling Engine.IO session over raw HTTP requests (one connection per request)."""

    def __init__(self, url: str, query: str = "", headers: Iterable[tuple[str, str]] = ()) -> None:
        self.url = url
        self.headers = list(headers)
        resp = raw_request(url, "GET", eio_path(extra=query), self.headers)
        assert resp.status == 200, f"polling handshake failed: {resp!r}"
        packets = decode_payload(resp.body)
        assert packets and packets[0][0] == "0", packets
        self.handshake = json.loads(packets[0][1])
        self.sid: str = self.handshake["sid"]
        self.handshake_response = resp
        self.pending: list[tuple[str, Any]] = packets[1:]

    def get(self, timeout: float = DEFAULT_TIMEOUT) -> HTTPResponse:
        return raw_request(self.url, "GET", eio_path(self.sid), self.headers, timeout=timeout)

    def post(self, body: bytes | str, timeout: float = DEFAULT_TIMEOUT) -> HTTPResponse:
        if isinstance(body, str):
            body = body.encode("utf-8")
        return raw_request(
            self.url,
            "POST",
            eio_path(self.sid),
            [*self.headers, ("Content-Type", "text/plain")],
            body,
            timeout,
        )

    def send(self, *messages: str) -> None:
        resp = self.post(RS.join("4" + m for m in messages))
        assert resp.status == 200 and resp.body == b"ok", resp

    def receive(self, want: int = 1, timeout: float = DEFAULT_TIMEOUT) -> list[Any]:
        """Poll until ``want`` messages arrived; answers pings on the way."""
        got: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(got) < want:
            packets, self.pending = self.pending, []
            if not packets:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self.sid}: {len(got)}/{want} messages in {timeout}s: {got}")
                resp = self.get(timeout=left)
                assert resp.status == 200, f"{self.sid}: poll failed {resp!r}"
                packets = decode_payload(resp.body)
            for t, d in packets:
                if t == "4" or t == "b":
                    got.append(d)
                elif t == "2":
                    r = self.post("3")
                    assert r.status == 200, r
                elif t == "1":
                    raise ConnectionError(f"{self.sid}: the server closed the session (got {got})")
        return got

    def echo(self, text: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.send(text)
        got = self.receive(1, timeout)
        assert got == [text], got


# --------------------------------------------------------------------------- websocket


class WSClosed(Exception):
    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(f"websocket closed with code {code} {reason!r}")
        self.code = code
        self.reason = reason


class WSRejected(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"websocket handshake refused with HTTP {status}: {body[:100]!r}")
        self.status = status
        self.body = body


class RawWS:
    """A websocket client on wsproto: exact frames, half frames, resets, no retries.

    The constructor performs the opening handshake; a refusal raises
    :class:`WSRejected` (an HTTP answer) or :class:`WSClosed` (the server closed
    the TCP connection without answering).
    """

    def __init__(
        self,
        url: str,
        target: str,
        headers: Iterable[tuple[str, str]] = (),
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        host, port = host_port(url)
        self.sock = connect(url, timeout)
        self.conn = WSConnection(ConnectionType.CLIENT)
        self.timeout = timeout
        self.inbox: list[tuple[str, Any]] = []
        self.close_code: int | None = None
        self._text: list[str] = []
        self._bytes: list[bytes] = []
        self._reject: tuple[int, bytearray] | None = None
        self.accepted = False
        self.accept_headers: list[tuple[bytes, bytes]] = []
        self.sock.sendall(
            self.conn.send(Request(host=f"{host}:{port}", target=target, extra_headers=list(headers)))
        )
        deadline = time.monotonic() + timeout
        try:
            while not self.accepted:
                if not self._pump(deadline):
                    if self._reject is not None:
                        raise WSRejected(self._reject[0], bytes(self._reject[1]))
                    raise WSClosed(None, "connection closed during the opening handshake")
        except BaseException:
            self.sock.close()
            raise

    def _pump(self, deadline: float) -> bool:
        """Read once (bounded) and process events; False on EOF/reset."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("websocket: nothing received in time")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(1 << 20)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        except TimeoutError:
            raise TimeoutError("websocket: nothing received in time") from None
        if not data:
            try:
                self.conn.receive_data(None)
            except LocalProtocolError:
                pass
            self._events()
            return False
        self.conn.receive_data(data)
        self._events()
        return True

    def _events(self) -> None:
        for ev in self.conn.events():
            if isinstance(ev, AcceptConnection):
                self.accepted = True
                self.accept_headers = [(bytes(k), bytes(v)) for k, v in ev.extra_headers]
            elif isinstance(ev, RejectConnection):
                self._reject = (ev.status_code, bytearray())
            elif isinstance(ev, RejectData):
                if self._reject is not None:
                    self._reject[1].extend(ev.data)
            elif isinstance(ev, TextMessage):
                self._text.append(ev.data)
                if ev.message_finished:
                    self.inbox.append(("text", "".join(self._text)))
                    self._text = []
            elif isinstance(ev, BytesMessage):
                self._bytes.append(bytes(ev.data))
                if ev.message_finished:
                    self.inbox.append(("bytes", b"".join(self._bytes)))
                    self._bytes = []
            elif isinstance(ev, Ping):
                self._write(self.conn.send(ev.response()))
            elif isinstance(ev, CloseConnection):
                if self.close_code is None:
                    self.close_code = ev.code
                    try:
                        self._write(self.conn.send(ev.response()))
                    except LocalProtocolError:
                        pass
                self.inbox.append(("close", ev.code))

    def _write(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError:
            pass

    def send(self, data: str | bytes) -> None:
        self.sock.sendall(self.conn.send(TextMessage(data) if isinstance(data, str) else BytesMessage(data)))

    def recv(self, timeout: float | None = None) -> tuple[str, Any]:
        """The next message: ("text", str), ("bytes", bytes) or ("close", code); EOF gives ("eof", None)."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while not self.inbox:
            if not self._pump(deadline) and not self.inbox:
                return ("eof", None)
        return self.inbox.pop(0)

    def recv_packet(self, timeout: float | None = None, answer_pings: bool = True) -> tuple[str, Any]:
        """The next Engine.IO packet (type digit, data), answering server pings; close raises."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while True:
            kind, data = self.recv(max(0.0, deadline - time.monotonic()))
            if kind == "text":
                if answer_pings and data == "2":
                    self.send("3")
                    continue
                return data[:1], data[1:]
            if kind == "bytes":
                return "b", data
            raise WSClosed(data if kind == "close" else None, kind)

    def wait_closed(self, timeout: float | None = None) -> int | None:
        """Read (discarding packets, answering pings) until the server closes; return its close code."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while True:
            try:
                self.recv_packet(max(0.0, deadline - time.monotonic()))
            except WSClosed as exc:
                return exc.code

    def close(self, code: int = 1000) -> None:
        try:
            self._write(self.conn.send(CloseConnection(code=code)))
        except LocalProtocolError:
            pass
        self.sock.close()

    def reset(self) -> None:
        reset(self.sock)


def ws_frame(payload: bytes, opcode: int = 0x1, fin: bool = True, mask: bytes = b"\x01\x02\x03\x04") -> bytes:
    """A masked client frame, built by hand (to send part of it)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


class WSSession:
    """A websocket-only Engine.IO session on :class:`RawWS`."""

    def __init__(self, url: str, query: str = "", headers: Iterable[tuple[str, str]] = ()) -> None:
        self.ws = RawWS(url, eio_path(transport="websocket", extra=query), headers)
        t, data = self.ws.recv_packet()
        assert t == "0", (t, data)
        self.handshake = json.loads(data)
        self.sid: str = self.handshake["sid"]

    def echo(self, text: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.ws.send("4" + text)
        t, data = self.ws.recv_packet(timeout)
        assert (t, data) == ("4", text), (t, data)

    def receive(self, timeout: float = DEFAULT_TIMEOUT) -> Any:
        t, data = self.ws.recv_packet(timeout)
        assert t in ("4", "b"), (t, data)
        return data


def upgrade(url: str, session: Polling) -> RawWS:
    """Upgrade a polling session to a websocket (probe, then ``5``)."""
    ws = RawWS(url, eio_path(session.sid, "websocket"))
    ws.send("2probe")
    assert ws.recv_packet() == ("3", "probe")
    ws.send("5")
    return ws


def send_head(
    url: str, method: str, target: str, headers: Iterable[tuple[str, str]] = (), body: bytes = b""
) -> socket.socket:
    """Open a connection and write a request head (and the start of a body); the caller
    finishes it, reads the answer with :func:`read_response`, or drops it."""
    host, port = host_port(url)
    sock = connect(url)
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}:{port}"] + [f"{k}: {v}" for k, v in headers]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    return sock
