"""An in-memory Engine.IO v4 client paired with the sans-IO core.

No event loop, no sockets, no clock: a :class:`Hub` owns the core ``Server`` and a
hand-advanced ``now``, and plays the part of the runtime (it executes the core's
events: answers held polls, moves frames onto websockets, records closes and
delivered messages). A :class:`Client` plays an ``engine.io-client``: it does the
handshake, polls, posts, opens websockets, probes and upgrades.

The client decodes what it receives with its own small codec (below), written from
PROTOCOL.md rather than borrowed from ``engineio_sansio.packet``, so a codec bug in
the core cannot hide behind the same bug in the model. Protocol violations seen by
the client (a packet after CLOSE, a frame on a closed websocket, a non-NOOP answer
to a poll after the upgrade, ...) raise ``AssertionError`` right where they happen.
"""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from collections import defaultdict
from typing import Any, Iterable, Mapping

from engineio_sansio import (
    CloseReason,
    CloseWebSocket,
    MessageReceived,
    Packet,
    PacketType,
    Request,
    Response,
    Route,
    RouteKind,
    SendFrames,
    Server,
    ServerConfig,
    Session,
    SessionClosed,
    Transport,
    TransportWritable,
    WebSocket,
)

RS = "\x1e"
Data = str | bytes

# --------------------------------------------------------------------------- client codec


def encode_packet_text(packet: Packet) -> str:
    """One packet as text: ``b`` + base64 for binary, else type digit + data."""
    if isinstance(packet.data, bytes):
        return "b" + base64.b64encode(packet.data).decode("ascii")
    return str(int(packet.type)) + (packet.data or "")


def client_payload(*packets: Packet) -> bytes:
    """A POST body the way an Engine.IO v4 client builds it."""
    return RS.join(encode_packet_text(p) for p in packets).encode("utf-8")


def msg(data: Data) -> Packet:
    return Packet(PacketType.MESSAGE, data)


def decode_text_packet(text: str) -> Packet:
    assert text, "the server sent an empty packet"
    digit = text[0]
    assert digit in "0123456", f"the server sent an unknown packet type in {text[:40]!r}"
    t = PacketType(int(digit))
    if t is PacketType.MESSAGE:
        return Packet(t, text[1:])
    return Packet(t, text[1:] or None)


def decode_poll_body(body: bytes) -> list[Packet]:
    """Split a GET response body into packets (``\\x1e``-separated, ``b`` = base64 binary)."""
    text = body.decode("utf-8")
    packets = []
    for part in text.split(RS):
        if part.startswith("b"):
            packets.append(Packet(PacketType.MESSAGE, base64.b64decode(part[1:], validate=True)))
        else:
            packets.append(decode_text_packet(part))
    return packets


def decode_ws_frame(frame: Data) -> Packet:
    if isinstance(frame, (bytes, bytearray)):
        return Packet(PacketType.MESSAGE, bytes(frame))
    return decode_text_packet(frame)


def response_body(resp: Response) -> bytes:
    """The body with any content-encoding undone."""
    enc = resp.header(b"content-encoding")
    if enc == b"gzip":
        return gzip.decompress(resp.body)
    if enc == b"deflate":
        return zlib.decompress(resp.body)
    assert enc is None, f"unknown content-encoding {enc!r}"
    return resp.body


def error_json(resp: Response) -> dict[str, Any]:
    assert resp.header(b"content-type") == b"application/json", resp.headers
    value = json.loads(resp.body)
    assert isinstance(value, dict)
    return value


# --------------------------------------------------------------------------- the runtime side


class ClientSocket:
    """The client end of one websocket; the core's ``WebSocket.runtime`` points here."""

    def __init__(self, client: Client, ws: WebSocket, role: str) -> None:
        self.client = client
        self.ws = ws
        self.role = role  # "websocket" (carries a session) or "probe"
        ws.runtime = self
        self.frames: list[Data] = []  # every frame the server wrote, in order
        self.close_codes: list[int] = []  # every CloseWebSocket the core asked for
        self.client_closed = False

    @property
    def open(self) -> bool:
        return not self.close_codes and not self.client_closed

    def deliver(self, frames: Iterable[Data]) -> None:
        for frame in frames:
            assert not self.close_codes, (
                f"frame {frame!r} written on the {self.role} of {self.ws.session.sid} after the core "
                f"closed it with {self.close_codes}"
            )
            if self.client_closed:
                continue  # the peer has gone; a real runtime drops it too
            self.frames.append(frame)
            self.client.on_frame(self, frame)

    def __repr__(self) -> str:
        return f"<ClientSocket {self.role} {self.ws.session.sid} open={self.open}>"


class Hub:
    """The core plus a hand-driven clock and an event executor (the runtime's part)."""

    def __init__(
        self,
        config: ServerConfig | None = None,
        *,
        now: float = 1000.0,
        sids: Iterable[str] | None = None,
    ) -> None:
        if sids is None:
            counter = iter(range(1, 1 << 30))
            sid_gen = lambda: f"sid{next(counter)}"  # noqa: E731
        else:
            it = iter(sids)
            sid_gen = lambda: next(it)  # noqa: E731
        self.server = Server(config, sid_generator=sid_gen)
        self.now = now
        self.delivered: dict[str, list[Data]] = defaultdict(list)  # what the app received
        self.closed: dict[str, list[CloseReason]] = defaultdict(list)  # SessionClosed per sid
        self.log: list[Any] = []  # every event, in order
        self.slow_polls = False  # the runtime is late to wake held polls (flush skips them)

    # --- time ---------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move the clock, firing every deadline on the way exactly when it is due."""
        target = self.now + seconds
        for _ in range(100_000):
            deadline = self.server.next_deadline()
            if deadline is None or deadline > target:
                break
            self.now = max(self.now, deadline)
            self.server.handle_timer(self.now)
            self.pump()
        else:
            raise AssertionError("the core keeps asking for the timer without making progress")
        self.now = target
        self.server.handle_timer(self.now)
        self.pump()

    def jump(self, seconds: float) -> None:
        """Move the clock without running the timer (a late timer driver)."""
        self.now += seconds

    # --- events -------------------------------------------------------------

    def pump(self) -> None:
        """Execute the core's events until there are none left."""
        for _ in range(10_000):
            events = self.server.take_events()
            if not events:
                return
            for ev in events:
                self.execute(ev)
        raise AssertionError("the core keeps producing events")

    def execute(self, ev: Any) -> None:
        self.log.append(ev)
        kind = type(ev)
        if kind is MessageReceived:
            self.delivered[ev.session.sid].append(ev.data)
        elif kind is SessionClosed:
            assert ev.reason is ev.session.reason, (ev.reason, ev.session.reason)
            self.closed[ev.session.sid].append(ev.reason)
        elif kind is TransportWritable:
            self.flush(ev.session)
        elif kind is SendFrames:
            sock = ev.ws.runtime
            assert sock is not None, f"frames for a websocket nobody opened: {ev}"
            sock.deliver(ev.frames)
        elif kind is CloseWebSocket:
            sock = ev.ws.runtime
            assert sock is not None, f"close for a websocket nobody opened: {ev}"
            sock.close_codes.append(ev.code)
            sock.client.on_socket_closed(sock)
        else:
            raise AssertionError(f"unknown event {ev!r}")

    def flush(self, session: Session) -> None:
        """What the runtime does on TransportWritable or after the app sends."""
        client = session.runtime
        if client is not None:
            client.flush()

    # --- the application side ----------------------------------------------

    def app_send(self, session: Session, data: Data, *, direct: bool = False) -> bool:
        """The app sends a message; with ``direct`` the runtime first tries the
        queue-skipping websocket path (``Server.direct_frame``), as engineio_asgi does."""
        if direct:
            frame = self.server.direct_frame(session, data)
            if frame is not None:
                assert session.ws is not None
                sock = session.ws.runtime
                assert isinstance(sock, ClientSocket)
                sock.deliver([frame])
                self.pump()
                return True
        ok = self.server.send(session, data)
        self.flush(session)
        self.pump()
        return ok

    def app_close(self, session: Session) -> None:
        self.server.close(session, self.now)
        self.pump()


# --------------------------------------------------------------------------- the client


class Client:
    """One Engine.IO v4 client, speaking to the core through the hub."""

    def __init__(
        self,
        hub: Hub,
        *,
        headers: Mapping[str, str] | None = None,
        scheme: str = "http",
    ) -> None:
        self.hub = hub
        self.server = hub.server
        self.headers = dict(headers or {})
        self.scheme = scheme
        self.sid: str | None = None
        self.session: Session | None = None
        self.handshake: dict[str, Any] | None = None
        self.handshake_response: Response | None = None
        self.packets: list[tuple[str, Packet]] = []  # (transport, packet) as received
        self.messages: list[Data] = []  # message data received, in order
        self.pings = 0  # pings received and not answered yet
        self.got_close = False
        self.held: tuple[Route, Request] | None = None
        self.poll_responses: list[Response] = []  # every answer to a GET, in order
        self.ws: ClientSocket | None = None
        self.probe: ClientSocket | None = None
        self.probe_answered = False
        self.upgraded = False
        self.sent: list[Data] = []  # messages the server accepted from us (POST 200 / live ws)
        self.refused = False  # a request with our sid got "400 Session ID unknown"
        self.pongs_expected = 0  # PING packets we sent (a v4 server only pongs those)

    # --- plumbing -----------------------------------------------------------

    def make_request(
        self,
        method: str = "GET",
        *,
        transport: str = "polling",
        with_sid: bool = True,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Request:
        q: dict[str, str] = {"EIO": "4", "transport": transport, "t": "x1"}
        if with_sid and self.sid is not None:
            q["sid"] = self.sid
        if query:
            q.update(query)
        h = dict(self.headers)
        if headers:
            h.update(headers)
        return Request(method, q, h, self.scheme)

    def route(self, request: Request, *, websocket: bool = False) -> Route | Response:
        result = self.server.route(request, self.hub.now, websocket=websocket)
        self.hub.pump()
        if isinstance(result, Response) and request.query.get("sid") == self.sid:
            self.note_refusal(result)
        return result

    def note_refusal(self, resp: Response) -> None:
        if resp.status == 400 and error_json(resp)["code"] == 1:
            self.refused = True  # the server no longer knows our session

    @property
    def on_websocket(self) -> bool:
        """The session lives on a websocket (websocket-only, or upgraded)."""
        return self.ws is not None and self.ws.role == "websocket"

    @property
    def alive(self) -> bool:
        """The client still believes its session is up."""
        if self.session is None or self.got_close or self.refused:
            return False
        if self.on_websocket:
            assert self.ws is not None
            return self.ws.open
        return True

    # --- handshake ----------------------------------------------------------

    def open_polling(self) -> Response:
        req = self.make_request("GET", with_sid=False)
        route = self.route(req)
        assert isinstance(route, Route), f"handshake refused: {route!r} {getattr(route, 'body', b'')!r}"
        assert route.kind is RouteKind.HANDSHAKE, route
        session = self.server.open_session(route, self.hub.now)
        session.runtime = self
        self.session = session
        self.server.accept(session, self.hub.now)
        resp = self.server.poll(route, req)
        assert resp is not None, "the handshake GET was held instead of answered"
        self.handshake_response = resp
        self.on_poll_response(resp)
        self.hub.pump()
        assert self.handshake is not None, "the handshake response carried no OPEN packet"
        return resp

    def open_websocket(self) -> list[Data]:
        req = self.make_request("GET", transport="websocket", with_sid=False)
        route = self.route(req, websocket=True)
        assert isinstance(route, Route), f"websocket handshake refused: {route!r}"
        assert route.kind is RouteKind.HANDSHAKE, route
        session = self.server.open_session(route, self.hub.now)
        session.runtime = self
        self.session = session
        assert session.ws is not None, "a websocket session without its websocket"
        self.ws = ClientSocket(self, session.ws, "websocket")
        self.server.accept(session, self.hub.now)
        self.flush()
        self.hub.pump()
        assert self.handshake is not None, "no OPEN packet on the websocket"
        return self.ws.frames

    # --- receiving ----------------------------------------------------------

    def flush(self) -> None:
        """Answer a held poll if it has something, and move queued frames to the websocket."""
        session = self.session
        if session is None:
            return
        if self.held is not None and not self.hub.slow_polls and self.server.poll_ready(session):
            route, req = self.held
            self.held = None
            self.on_poll_response(self.server.poll_response(route, req))
        if session.transport is Transport.WEBSOCKET and session.ws is not None:
            sock = session.ws.runtime
            if isinstance(sock, ClientSocket) and sock.open:
                frames = self.server.take_frames(session)
                sock.deliver(frames)

    def on_poll_response(self, resp: Response) -> None:
        self.poll_responses.append(resp)
        if resp.status != 200:
            return
        assert resp.header(b"content-type") == b"text/plain; charset=UTF-8", resp.headers
        packets = decode_poll_body(response_body(resp))
        if self.upgraded:
            assert packets == [Packet(PacketType.NOOP)], (
                f"a poll answered after the upgrade must carry only NOOP, got {packets!r}"
            )
        for p in packets:
            self.on_packet("polling", p)

    def on_frame(self, sock: ClientSocket, frame: Data) -> None:
        packet = decode_ws_frame(frame)
        if sock.role == "probe":
            assert packet == Packet(PacketType.PONG, "probe"), f"probe got {packet!r}"
            assert not self.probe_answered, "3probe twice"
            self.probe_answered = True
            return
        self.on_packet("websocket", packet)

    def on_packet(self, transport: str, packet: Packet) -> None:
        if self.upgraded and transport == "polling" and packet.type is PacketType.NOOP:
            return  # the end of a GET left over from before the upgrade: no news, any time
        assert not self.got_close, f"{packet!r} received on {transport} after CLOSE"
        self.packets.append((transport, packet))
        t = packet.type
        if t is PacketType.OPEN:
            assert self.handshake is None, "a second OPEN packet"
            assert isinstance(packet.data, str)
            self.handshake = json.loads(packet.data)
            self.sid = self.handshake["sid"]
        elif t is PacketType.MESSAGE:
            assert self.handshake is not None, "a message before OPEN"
            assert packet.data is not None
            self.messages.append(packet.data)
        elif t is PacketType.PING:
            self.pings += 1
        elif t is PacketType.CLOSE:
            self.got_close = True
        elif t is PacketType.NOOP:
            pass
        elif t is PacketType.PONG:
            assert self.pongs_expected > 0, f"{packet!r} answers no ping of ours"
            self.pongs_expected -= 1
        else:
            raise AssertionError(f"a v4 server has no reason to send {packet!r}")

    def on_socket_closed(self, sock: ClientSocket) -> None:
        if sock is self.probe:
            self.probe = None

    # --- long polling -------------------------------------------------------

    def poll(self, **kw: Any) -> Response | None:
        """One GET; None when the core holds it (answered later through flush)."""
        req = self.make_request("GET", **kw)
        route = self.route(req)
        if isinstance(route, Response):
            self.poll_responses.append(route)
            return route
        assert route.kind is RouteKind.POLL, route
        resp = self.server.poll(route, req)
        if resp is not None and resp.status != 200:
            self.note_refusal(resp)
        if resp is None:
            assert self.held is None or self.held[0].session is not route.session, (
                "the core held a second concurrent GET"
            )
            self.held = (route, req)
        else:
            self.on_poll_response(resp)
        self.hub.pump()
        return resp

    def abandon_poll(self) -> None:
        assert self.held is not None and self.session is not None
        self.held = None
        self.server.poll_abandoned(self.session)
        self.hub.pump()

    def post(self, body: bytes, **kw: Any) -> Response:
        """One whole POST, the way the runtime drives it."""
        self.pongs_expected += sum(1 for part in body.split(RS.encode()) if part.startswith(b"2"))
        req = self.make_request("POST", **kw)
        route = self.route(req)
        if isinstance(route, Response):
            return route
        assert route.kind is RouteKind.POST, route
        busy = self.server.begin_post(route)
        if busy is not None:
            self.hub.pump()
            return busy
        if len(body) > self.server.config.max_http_buffer_size:
            resp = self.server.post_too_large(route)  # what a runtime does while reading
        else:
            resp = self.server.post(route, body, self.hub.now)
        self.hub.pump()
        if resp.status == 400:
            self.note_refusal(resp)
        return resp

    def post_messages(self, *data: Data) -> Response:
        resp = self.post(client_payload(*(msg(d) for d in data)))
        if resp.status == 200:
            self.sent.extend(data)
        return resp

    def post_packets(self, *packets: Packet) -> Response:
        return self.post(client_payload(*packets))

    # --- websockets ---------------------------------------------------------

    def send_frame(self, frame: Data, sock: ClientSocket | None = None) -> Data | None:
        sock = sock or self.ws
        assert sock is not None
        if isinstance(frame, str) and frame.startswith("2") and sock.role == "websocket":
            self.pongs_expected += 1
        data = self.server.receive_frame(sock.ws, frame, self.hub.now)
        if data is not None:
            assert self.session is not None
            self.hub.delivered[self.session.sid].append(data)
        self.hub.pump()
        return data

    def ws_send_messages(self, *data: Data) -> None:
        assert self.ws is not None
        for d in data:
            frame = d if isinstance(d, bytes) else "4" + d
            live = self.ws.open
            self.send_frame(frame)
            if live:
                self.sent.append(d)

    def start_upgrade(self) -> Route | Response:
        """Open ``transport=websocket&sid=...``; on success it becomes the probe."""
        req = self.make_request("GET", transport="websocket")
        route = self.route(req, websocket=True)
        if isinstance(route, Response):
            return route
        assert route.kind is RouteKind.UPGRADE, route
        ws = self.server.attach_probe(route, self.hub.now)
        self.probe = ClientSocket(self, ws, "probe")
        self.probe_answered = False
        self.hub.pump()
        return route

    def send_probe(self) -> None:
        assert self.probe is not None
        self.send_frame("2probe", self.probe)

    def complete_upgrade(self) -> None:
        """Send ``5`` on the probe; from now on the client lives on the websocket."""
        probe = self.probe
        assert probe is not None
        self.upgraded = True
        self.ws = probe
        probe.role = "websocket"
        self.probe = None
        self.send_frame("5", probe)

    def drop_websocket(self, sock: ClientSocket | None = None) -> None:
        """The client end goes away without a CLOSE packet."""
        sock = sock or self.ws
        assert sock is not None
        sock.client_closed = True
        if sock is self.probe:
            self.probe = None
        self.server.websocket_closed(sock.ws, self.hub.now)
        self.hub.pump()

    # --- heartbeat ------------------------------------------------------------

    def pong(self) -> Response | None:
        """Answer the pings received so far, on the current transport."""
        self.pings = 0
        if self.on_websocket:
            self.send_frame("3")
            return None
        return self.post_packets(Packet(PacketType.PONG))
