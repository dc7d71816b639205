"""The one runtime the core tests share, and an in-memory Engine.IO v4 client on top of it.

No event loop, no sockets, no clock. A :class:`Hub` owns the core ``Server`` and a
hand-advanced ``now``, and is the runtime: it feeds requests, bodies, frames, lost
connections and write results in, and performs every event the core hands back, in
order (a ``Respond`` goes to the client that made the request; ``SendFrames`` is
delivered to the client socket, then ``frames_sent``; ``ConnectRequest`` gets the
application's decision; ``MessageReceived``, ``Upgraded``, ``SessionClosed`` and
``RequestRefused`` are recorded). It reaches the core only through its 14 public names
(``event_contract.PublicOnly``: anything else is an ``AttributeError``), knows about
sessions only what the events said (:class:`SessionView`), and checks as it goes the
contract every runtime relies on (``event_contract.EventContract``).

A :class:`Client` plays an ``engine.io-client``: it does the handshake, polls, posts,
opens websockets, probes and upgrades. It decodes what it receives with its own small
codec (below), written from PROTOCOL.md rather than borrowed from
``engineio_sansio.packet``, so a codec bug in the core cannot hide behind the same bug
in the model. Protocol violations seen by the client (a packet after CLOSE, a frame on
a closed websocket, a non-NOOP answer to a poll after the upgrade, ...) raise
``AssertionError`` right where they happen.
"""

from __future__ import annotations

import base64
import gzip
import itertools
import json
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from engineio_sansio import (
    AcceptWebSocket,
    CloseReason,
    CloseWebSocket,
    ConnectRequest,
    Event,
    MessageReceived,
    Packet,
    PacketType,
    Request,
    RequestRefused,
    Respond,
    Response,
    SendFrames,
    Server,
    ServerConfig,
    SessionClosed,
    SessionState,
    Stats,
    Transport,
    Upgraded,
)

from .event_contract import EventContract, PublicOnly

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


# --------------------------------------------------------------------------- the runtime


@dataclass
class SessionView:
    """A session as the events told it: no more than a runtime knows."""

    sid: str
    transport: Transport
    request_id: int  # the handshake
    decision: str | None = None  # "accept", "reject", "close"
    refused: bool = False  # the handshake was answered 401
    reason: CloseReason | None = None  # from SessionClosed
    probes: set[int] = field(default_factory=set)  # accepted upgrade websockets, still open

    @property
    def closed(self) -> bool:
        """The application has been told the session ended (or it never began)."""
        return self.reason is not None or self.refused

    @property
    def state(self) -> SessionState:
        """OPENING, OPEN, UPGRADING or CLOSED (closing and closed are one for the application)."""
        if self.closed:
            return SessionState.CLOSED
        if self.decision is None:
            return SessionState.OPENING
        return SessionState.UPGRADING if self.probes else SessionState.OPEN


@dataclass
class Req:
    """One request the hub made, and who made it."""

    rid: int
    request: Request
    websocket: bool
    owner: Client | None
    tag: str  # "handshake", "poll", "post", "socket" or "other" (the client's reason)
    held: bool = False  # not answered by the call that made it


def accept_connect(hub: Hub, ev: ConnectRequest) -> None:
    """The default application: every connection is welcome."""
    hub.accept(ev.sid)


class Hub:
    """The core, a hand-driven clock, and the runtime: the one executor of the event stream.

    Session ids are ``sid1``, ``sid2``, ... (or ``sids``; ``core_sids``: the core's own).
    ``on_connect`` is the application's connect handler (it accepts by default; it
    may call :meth:`accept`, :meth:`reject`, :meth:`app_close`, :meth:`app_send`, or
    leave the decision for later: :data:`defer_connect` keeps it in ``deferred``).
    ``slow_polls`` holds the answers of held GETs back and ``slow_writes`` holds
    websocket writes back (frames not yet delivered, ``frames_sent`` not yet called)
    until :meth:`catch_up` (or :meth:`fail_late`: the writes fail).
    """

    def __init__(
        self,
        config: ServerConfig | None = None,
        *,
        now: float = 1000.0,
        sids: Iterable[str] | None = None,
        core_sids: bool = False,
        wrap: Callable[[Server], Any] = PublicOnly,
        stats: Stats | None = None,
    ) -> None:
        if core_sids:  # the core's own unguessable ids
            core = Server(config, stats=stats)
        else:  # readable ids: sid1, sid2, ... or the ones given
            it = iter(sids) if sids is not None else (f"sid{i}" for i in itertools.count(1))
            core = Server(config, sid_generator=lambda: next(it), stats=stats)
        self.server = wrap(core)
        self.config: ServerConfig = self.server.config
        self.now = now
        self.contract = EventContract()
        self.requests: dict[int, Req] = {}
        self.responses: dict[int, Response] = {}  # every Respond delivered, by request id
        self.refusals: dict[int, RequestRefused] = {}  # why each refused request was refused
        self.sockets: dict[int, ClientSocket] = {}
        self.sessions: dict[str, SessionView] = {}
        self.delivered: dict[str, list[Data]] = defaultdict(list)  # what the app received
        self.closed: dict[str, list[CloseReason]] = defaultdict(list)  # SessionClosed per sid
        self.log: list[Event] = []  # every event, in order
        self.on_connect: Callable[[Hub, ConnectRequest], None] = accept_connect
        self.deferred: list[ConnectRequest] = []
        self.slow_polls = False
        self.slow_writes = False
        self.late: list[Respond | SendFrames] = []  # held back by a slow runtime, in order
        self._pumping = False

    # --- time ---------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move the clock, firing every deadline on the way exactly when it is due."""
        target = self.now + seconds
        server = self.server
        for _ in range(100_000):
            deadline = server.next_deadline()
            if deadline is None or deadline > target:
                break
            self.now = max(self.now, deadline)
            server.handle_timer(self.now)
            self.pump()
        else:
            raise AssertionError("the core keeps asking for the timer without making progress")
        self.now = target
        server.handle_timer(self.now)
        self.pump()
        deadline = server.next_deadline()
        assert deadline is None or deadline > self.now, (
            f"a deadline ({deadline}) in the past after handle_timer"
        )

    def jump(self, seconds: float) -> None:
        """Move the clock without running the timer (a late timer driver)."""
        self.now += seconds

    # --- requests in ------------------------------------------------------------

    def request(
        self,
        request: Request,
        *,
        websocket: bool = False,
        owner: Client | None = None,
        tag: str = "other",
        body: bytes = b"",
        chunks: Iterable[bytes] | None = None,
        lose_before_end: bool = False,
        refuse: str | None = None,
    ) -> int:
        """A request arrives; an HTTP one's body is read (``chunks``: in parts; ``[]``:
        not yet, see :meth:`feed`; ``lose_before_end``: the client leaves before the
        last part; ``refuse``: the application's ``allow_request`` refused it). Returns
        its request id."""
        if refuse is None:
            rid, _ = self.server.receive_request(request, self.now, websocket=websocket)
        else:
            rid, _ = self.server.receive_request(request, self.now, websocket=websocket, refuse=refuse)
        req = self.requests[rid] = Req(rid, request, websocket, owner, tag)
        self.contract.request(rid, request, websocket)
        if websocket:
            role = "probe" if request.query.get("sid") is not None else "websocket"
            self.sockets[rid] = ClientSocket(self, owner, rid, role)
        self.pump()
        if not websocket:
            parts = list(chunks) if chunks is not None else [body]
            for i, part in enumerate(parts):
                last = i == len(parts) - 1
                if last and lose_before_end:
                    self.connection_lost(rid)
                    break
                if not self.feed(rid, part, more=not last):
                    break
        req.held = request.method == "GET" and not websocket and not self.answered(rid)
        return rid

    def feed(self, rid: int, data: bytes, *, more: bool = False) -> bool:
        """Part of request ``rid``'s body; False (nothing fed) once the request has its answer."""
        if self.answered(rid) or rid in self.contract.lost:
            return False  # a runtime stops reading once it has the answer
        self.server.receive_body(rid, data, more, self.now)
        self.pump()
        return True

    def answered(self, rid: int) -> bool:
        """The core has answered request ``rid`` (the answer may not be delivered yet)."""
        return rid in self.contract.responded

    def response(self, rid: int) -> Response | None:
        """The answer delivered to request ``rid``, if any yet."""
        return self.responses.get(rid)

    def outstanding(self, owner: Client) -> list[int]:
        """``owner``'s HTTP requests the core has not answered and the client has not left."""
        lost = self.contract.lost
        return [
            rid
            for rid, req in self.requests.items()
            if req.owner is owner and not req.websocket and not self.answered(rid) and rid not in lost
        ]

    def receive_frame(self, rid: int, frame: Data) -> list[Data]:
        """A frame from websocket ``rid``; returns what it delivered to the application."""
        before = len(self.log)
        self.server.receive_frame(rid, frame, self.now)
        self.pump()
        return [ev.data for ev in self.log[before:] if type(ev) is MessageReceived]

    def connection_lost(self, rid: int) -> None:
        """The client of request ``rid`` left (or its websocket closed)."""
        late = [ev for ev in self.late if ev.request_id == rid]
        if late:
            # its answer was on its way: the write fails
            self.late = [ev for ev in self.late if ev.request_id != rid]
            self._late_write(late[0], fail=True)
            self.pump()
        if rid in self.contract.lost:
            return
        self.contract.gone(rid)
        sock = self.sockets.get(rid)
        if sock is not None:
            sock.reported_gone = True
            if sock.owner is not None:
                sock.owner.on_socket_gone(sock)
        view = self._probe_view(rid)
        if view is not None:
            view.probes.discard(rid)
        self.server.connection_lost(rid, self.now)
        self.pump()

    # --- the application ------------------------------------------------------

    def accept(self, sid: str) -> None:
        self._decide(sid, "accept")
        self.server.accept(sid, self.now)
        self._settle()

    def reject(self, sid: str, body: bytes | None = None) -> None:
        self._decide(sid, "reject")
        self.server.reject(sid, body)
        self._settle()

    def app_send(self, sid: str, data: Data) -> bool:
        events = self.server.send(sid, data)  # (queued by the hub's PublicOnly)
        self._settle()
        return events is not None

    def app_close(self, sid: str) -> None:
        self._decide(sid, "close")
        self.server.close(sid, self.now)
        self._settle()

    def close_all(self) -> None:
        for sid, view in self.sessions.items():
            if view.decision is None:
                self._decide(sid, "close")
        self.server.close(None, self.now)
        self._settle()

    def decide_deferred(self, how: str = "accept") -> None:
        """Decide every connection left for later (see :func:`defer_connect`)."""
        pending, self.deferred = self.deferred, []
        for ev in pending:
            if how == "accept":
                self.accept(ev.sid)
            elif how == "reject":
                self.reject(ev.sid)
            else:
                self.app_close(ev.sid)

    def _decide(self, sid: str, how: str) -> None:
        view = self.sessions.get(sid)
        if view is not None and view.decision is None:
            view.decision = how
        self.contract.decided(sid, how)

    def _settle(self) -> None:
        if not self._pumping:
            self.pump()

    # --- what the application sees -------------------------------------------------

    def open_sids(self) -> list[str]:
        """Sessions accepted and not closed, as the events told it."""
        return [sid for sid, v in self.sessions.items() if v.decision == "accept" and not v.closed]

    def core_knows(self, sid: str) -> bool:
        """Whether the core still has session ``sid`` (open, or closing with its CLOSE
        packet undelivered), as any HTTP client can tell: a ``PUT`` with the sid is
        refused with code 1 (unknown session) or code 3 (bad method on a known one)."""
        rid = self.request(Request("PUT", {"EIO": "4", "transport": "polling", "sid": sid}))
        resp = self.response(rid)
        assert resp is not None and resp.status == 400, resp
        code = error_json(resp)["code"]
        assert code in (1, 3), f"this probe needs polling enabled: {resp.body!r}"
        return bool(code == 3)

    # --- events out -----------------------------------------------------------

    def pump(self) -> None:
        """Perform the core's events, in order, until there are none left."""
        if self._pumping:
            return
        self._pumping = True
        try:
            for _ in range(10_000):
                events = self.server.take_events()
                if not events:
                    self.contract.settled()
                    return
                for ev in events:
                    self.perform(ev)
            raise AssertionError("the core keeps producing events")
        finally:
            self._pumping = False

    def perform(self, ev: Event) -> None:
        self.log.append(ev)
        self.contract.on(ev)
        kind = type(ev)
        if kind is MessageReceived:
            self.delivered[ev.sid].append(ev.data)  # type: ignore[union-attr]
        elif kind is SendFrames:
            if self.slow_writes:
                self.late.append(ev)  # type: ignore[arg-type]
            else:
                self._write_frames(ev)  # type: ignore[arg-type]
        elif kind is Respond:
            sid = self.contract.connect_sid.get(ev.request_id)  # type: ignore[union-attr]
            if sid is not None and ev.status == 401:  # type: ignore[union-attr]
                self.sessions[sid].refused = True
            if self.slow_polls and self.requests[ev.request_id].held:  # type: ignore[union-attr]
                self.late.append(ev)  # type: ignore[arg-type]
            else:
                self._deliver(ev)  # type: ignore[arg-type]
        elif kind is SessionClosed:
            self.closed[ev.sid].append(ev.reason)  # type: ignore[union-attr]
            self.sessions[ev.sid].reason = ev.reason  # type: ignore[union-attr]
        elif kind is CloseWebSocket:
            self._close_websocket(ev)  # type: ignore[arg-type]
        elif kind is AcceptWebSocket:
            sock = self.sockets[ev.request_id]  # type: ignore[union-attr]
            sock.accepted = True
            sock.accept_headers = list(ev.headers)  # type: ignore[union-attr]
            view = self._probe_view(sock.rid)
            if view is not None:
                view.probes.add(sock.rid)
        elif kind is ConnectRequest:
            self._connect(ev)  # type: ignore[arg-type]
        elif kind is RequestRefused:
            self.refusals[ev.request_id] = ev  # type: ignore[union-attr,assignment]
        elif kind is Upgraded:
            view = self.sessions[ev.sid]  # type: ignore[union-attr]
            view.transport = Transport.WEBSOCKET
            view.probes.discard(ev.request_id)  # type: ignore[union-attr]
            sock = self.sockets[ev.request_id]  # type: ignore[union-attr]
            sock.role = "websocket"
            if sock.owner is not None:
                sock.owner.on_upgraded(sock)
        else:
            raise AssertionError(f"unknown event {ev!r}")

    def _connect(self, ev: ConnectRequest) -> None:
        self.sessions[ev.sid] = SessionView(ev.sid, ev.transport, ev.request_id)
        owner = self.requests[ev.request_id].owner
        if owner is not None:
            owner.on_connect_request(ev)
        self.on_connect(self, ev)

    def _deliver(self, ev: Respond) -> None:
        rid = ev.request_id
        resp = Response(ev.status, list(ev.headers), ev.body)
        self.responses[rid] = resp
        req = self.requests[rid]
        if req.websocket:
            self.sockets[rid].refusal = resp
        if req.owner is not None:
            req.owner.on_response(req, resp)

    def _write_frames(self, ev: SendFrames) -> None:
        sock = self.sockets[ev.request_id]
        if sock.client_closed:  # the peer is gone: the write fails, and the websocket with it
            self.contract.written(sock.rid)
            self.contract.gone(sock.rid)
            sock.reported_gone = True
            self.server.send_failed(sock.rid, self.now)
            return
        sock.deliver(ev.frames)
        self.contract.written(sock.rid)
        self.server.frames_sent(sock.rid)

    def _close_websocket(self, ev: CloseWebSocket) -> None:
        sock = self.sockets[ev.request_id]
        sock.close_codes.append(ev.code)
        sock.close_graces.append(ev.grace)
        view = self._probe_view(sock.rid)
        if view is not None:
            view.probes.discard(sock.rid)
        if sock.owner is not None:
            sock.owner.on_socket_closed(sock)
        # closed (the client closes its end at once after a CLOSE packet, so a grace
        # never runs out here): the runtime reports it gone
        if sock.rid not in self.contract.lost:
            self.contract.gone(sock.rid)
            sock.reported_gone = True
            self.server.connection_lost(sock.rid, self.now)

    def _probe_view(self, rid: int) -> SessionView | None:
        """The session websocket ``rid`` tries to upgrade (it has the session's sid)."""
        req = self.requests.get(rid)
        if req is None or not req.websocket:
            return None
        sid = req.request.query.get("sid")
        return self.sessions.get(sid) if sid is not None else None

    # --- a slow runtime ----------------------------------------------------------

    def catch_up(self) -> None:
        """Perform what a slow runtime held back, in order (and whatever that causes)."""
        slow = self.slow_polls, self.slow_writes
        self.slow_polls = self.slow_writes = False
        try:
            while self.late:
                self._late_write(self.late.pop(0), fail=False)
                self.pump()
        finally:
            self.slow_polls, self.slow_writes = slow

    def fail_late(self) -> None:
        """Every write held back fails: the clients never get them."""
        while self.late:
            self._late_write(self.late.pop(0), fail=True)
            self.pump()

    def late_for(self, client: Client) -> bool:
        """Whether something for ``client`` is held back."""
        return any(self.requests[ev.request_id].owner is client for ev in self.late)

    def _late_write(self, ev: Respond | SendFrames, *, fail: bool) -> None:
        rid = ev.request_id
        if not fail:
            if type(ev) is Respond:
                self._deliver(ev)
            else:
                self._write_frames(ev)  # type: ignore[arg-type]
            return
        req = self.requests[rid]
        if type(ev) is SendFrames:
            sock = self.sockets[rid]
            sock.client_closed = True  # the connection broke under the write: the websocket is gone
            self.contract.written(rid)
            self.contract.gone(rid)
            sock.reported_gone = True
            if req.owner is not None:
                req.owner.on_socket_gone(sock)
        elif req.owner is not None:
            req.owner.on_request_failed(req)
        self.server.send_failed(rid, self.now)

    # --- the end ---------------------------------------------------------------------

    def finish(self, *, seconds: float = 200.0) -> None:
        """The application closes everything, time runs out, and the contract must hold:
        everything ended, each accepted session with exactly one SessionClosed."""
        self.slow_polls = self.slow_writes = False
        self.catch_up()
        self.decide_deferred("accept")
        self.close_all()
        for _ in range(int(seconds // 20) + 1):
            self.advance(20)
        self.contract.finish()
        assert self.server.next_deadline() is None, "the timer is still armed with no session left"


def defer_connect(hub: Hub, ev: ConnectRequest) -> None:
    """An application that decides later (``hub.deferred``, :meth:`Hub.decide_deferred`)."""
    hub.deferred.append(ev)


def reject_connect(hub: Hub, ev: ConnectRequest) -> None:
    hub.reject(ev.sid)


def close_in_connect(hub: Hub, ev: ConnectRequest) -> None:
    """A connect handler that closes the session and then refuses it (as engineio_asgi
    does when the handler calls ``disconnect(sid)`` and returns False)."""
    hub.app_close(ev.sid)
    hub.reject(ev.sid)


# --------------------------------------------------------------------------- the client


class ClientSocket:
    """The client end of one websocket: a session's transport, or a probe."""

    def __init__(self, hub: Hub, owner: Client | None, rid: int, role: str) -> None:
        self.hub = hub
        self.owner = owner
        self.rid = rid
        self.role = role  # "websocket" (carries a session) or "probe"
        self.accepted = False
        self.accept_headers: list[tuple[bytes, bytes]] = []
        self.refusal: Response | None = None
        self.frames: list[Data] = []  # every frame the server wrote, in order
        self.close_codes: list[int] = []  # every CloseWebSocket the core asked for
        self.close_graces: list[float] = []
        self.probed = False  # a probe that got its 3probe
        self.client_closed = False
        self.reported_gone = False

    @property
    def open(self) -> bool:
        return self.accepted and not self.close_codes and not self.client_closed

    def deliver(self, frames: Iterable[Data]) -> None:
        for frame in frames:
            assert not self.close_codes, (
                f"frame {frame!r} written on websocket {self.rid} "
                f"after the core closed it with {self.close_codes}"
            )
            assert self.accepted, f"frame {frame!r} on websocket {self.rid} before it was accepted"
            if self.client_closed:
                continue  # the peer has gone
            self.frames.append(frame)
            if self.owner is not None:
                self.owner.on_frame(self, frame)

    def __repr__(self) -> str:
        return f"<ClientSocket {self.rid} {self.role} open={self.open}>"


class Client:
    """One Engine.IO v4 client, speaking to the core through the hub."""

    def __init__(self, hub: Hub, *, headers: Mapping[str, str] | None = None, scheme: str = "http") -> None:
        self.hub = hub
        self.headers = dict(headers or {})
        self.scheme = scheme
        self.sid: str | None = None
        self.connect: ConnectRequest | None = None
        self.handshake: dict[str, Any] | None = None
        self.handshake_response: Response | None = None
        self.packets: list[tuple[str, Packet]] = []  # (transport, packet) as received
        self.messages: list[Data] = []  # message data received, in order
        self.pings = 0  # pings received and not answered yet
        self.got_close = False
        self.gets: list[int] = []  # GETs sent and not answered yet (the first is the held one)
        self.gets_in_upgrade: set[int] = set()  # ... of which those sent during an upgrade
        self.poll_responses: list[Response] = []  # every answer to a GET, in order
        self.ws: ClientSocket | None = None
        self.probe: ClientSocket | None = None
        self.upgraded = False
        self.sent: list[Data] = []  # messages the server accepted from us (POST 200 / live ws)
        self.refused = False  # a request with our sid got "400 Session ID unknown"
        self.failed = False  # an answer to us was lost on its way: the client gave up
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
        scheme = self.scheme
        if transport == "websocket":
            scheme = {"http": "ws", "https": "wss"}.get(scheme, scheme)
        return Request(method, q, h, scheme)

    def send(self, request: Request, *, websocket: bool = False, tag: str = "other", **kw: Any) -> int:
        """Send ``request`` through the hub; its answer comes to :meth:`on_response`."""
        if request.method == "POST":
            chunks = kw.get("chunks")
            body = b"".join(chunks) if chunks is not None else kw.get("body", b"")
            self.pongs_expected += sum(1 for part in body.split(RS.encode()) if part.startswith(b"2"))
        return self.hub.request(request, websocket=websocket, owner=self, tag=tag, **kw)

    def note_refusal(self, resp: Response) -> None:
        if resp.status == 400 and error_json(resp)["code"] == 1:
            self.refused = True  # the server no longer knows our session

    @property
    def view(self) -> SessionView:
        """The session as the events told the runtime."""
        assert self.sid is not None, "no session"
        return self.hub.sessions[self.sid]

    @property
    def probe_answered(self) -> bool:
        """The current probe got its ``3probe``."""
        return self.probe is not None and self.probe.probed

    @property
    def held(self) -> int | None:
        """The GET the client waits on (held by the core, or its answer on its way)."""
        return self.gets[0] if self.gets else None

    @property
    def on_websocket(self) -> bool:
        """The session lives on a websocket (websocket-only, or upgraded)."""
        return self.ws is not None and self.ws.role == "websocket"

    @property
    def alive(self) -> bool:
        """The client still believes its session is up."""
        if self.handshake is None or self.got_close or self.refused or self.failed:
            return False
        if self.on_websocket:
            assert self.ws is not None
            return self.ws.open
        return True

    # --- handshake ----------------------------------------------------------

    def connect_polling(self) -> int:
        """The handshake GET; its answer comes when the application decides."""
        return self.send(self.make_request("GET", with_sid=False), tag="handshake")

    def connect_websocket(self) -> ClientSocket:
        """A websocket handshake; accepted (or refused) when the application decides."""
        rid = self.send(
            self.make_request("GET", transport="websocket", with_sid=False), websocket=True, tag="handshake"
        )
        sock = self.hub.sockets[rid]
        self.ws = sock
        return sock

    def open_polling(self) -> Response:
        rid = self.connect_polling()
        resp = self.hub.response(rid)
        assert resp is not None, "the handshake GET was not answered"
        assert resp.status == 200, f"handshake refused: {resp!r} {resp.body!r}"
        assert self.handshake is not None, "the handshake response carried no OPEN packet"
        return resp

    def open_websocket(self) -> list[Data]:
        sock = self.connect_websocket()
        assert sock.refusal is None, f"websocket handshake refused: {sock.refusal!r}"
        assert sock.accepted, "the websocket handshake was not accepted"
        assert self.handshake is not None, "no OPEN packet on the websocket"
        return sock.frames

    # --- receiving ----------------------------------------------------------

    def on_connect_request(self, ev: ConnectRequest) -> None:
        self.connect = ev
        self.sid = ev.sid
        if ev.transport is Transport.WEBSOCKET and self.ws is None:
            self.ws = self.hub.sockets[ev.request_id]

    def on_response(self, req: Req, resp: Response) -> None:
        if req.websocket:
            sock = self.hub.sockets[req.rid]
            if sock is self.probe:
                self.probe = None
            if req.request.query.get("sid") == self.sid and resp.status == 400:
                self.note_refusal(resp)
            return
        if req.tag == "handshake":
            self.handshake_response = resp
        if req.rid in self.gets:
            self.gets.remove(req.rid)
            self.gets_in_upgrade.discard(req.rid)
        if req.request.method == "GET" and req.tag in ("handshake", "poll"):
            self.on_poll_response(resp)
        if resp.status == 400 and self.sid is not None and req.request.query.get("sid") == self.sid:
            self.note_refusal(resp)

    def on_request_failed(self, req: Req) -> None:
        """An answer to us was lost (its write failed): the client gives the session up."""
        if req.rid in self.gets:
            self.gets.remove(req.rid)
            self.gets_in_upgrade.discard(req.rid)
        self.failed = True

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
            assert not sock.probed, "3probe twice"
            sock.probed = True
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
            assert self.sid is None or self.handshake["sid"] == self.sid, "OPEN names another session"
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

    def on_upgraded(self, sock: ClientSocket) -> None:
        """The core moved the session to ``sock`` (it saw our ``5``)."""
        self.upgraded = True
        self.ws = sock
        if self.probe is sock:
            self.probe = None

    def on_socket_closed(self, sock: ClientSocket) -> None:
        if sock is self.probe:
            self.probe = None

    def on_socket_gone(self, sock: ClientSocket) -> None:
        sock.client_closed = True
        if sock is self.probe:
            self.probe = None

    # --- long polling -------------------------------------------------------

    def poll(self, **kw: Any) -> Response | None:
        """One GET; None while it is held (its answer comes later)."""
        upgrading = self.sid is not None and self.view.state is SessionState.UPGRADING
        rid = self.send(self.make_request("GET", **kw), tag="poll")
        resp = self.hub.response(rid)
        if resp is None and not self.failed:
            self.gets.append(rid)
            if upgrading:
                self.gets_in_upgrade.add(rid)
        return resp

    def abandon_poll(self) -> None:
        """The client gives up its held GET (the connection goes)."""
        rid = self.held
        assert rid is not None
        self.gets.remove(rid)
        self.gets_in_upgrade.discard(rid)
        self.hub.connection_lost(rid)

    def held_since_upgrade(self) -> bool:
        """The held GET was sent during an upgrade (the core holds it for UPGRADE_POLL_GRACE)."""
        rid = self.held
        return rid is not None and rid in self.gets_in_upgrade and not self.hub.answered(rid)

    def start_post(self, **kw: Any) -> int:
        """A POST whose body has not arrived yet (see :meth:`Hub.feed`)."""
        return self.send(self.make_request("POST", **kw), tag="post", chunks=[])

    def post(
        self,
        body: bytes,
        *,
        chunks: Iterable[bytes] | None = None,
        lose_before_end: bool = False,
        **kw: Any,
    ) -> Response | None:
        """One POST: whole (with its Content-Length), or in ``chunks`` (without).
        None when the client left before its answer."""
        if chunks is None:
            headers = dict(kw.pop("headers", None) or {})
            headers.setdefault("content-length", str(len(body)))
            kw["headers"] = headers
        req = self.make_request("POST", **kw)
        rid = self.send(req, tag="post", body=body, chunks=chunks, lose_before_end=lose_before_end)
        return self.hub.response(rid)

    def post_messages(self, *data: Data) -> Response:
        resp = self.post(client_payload(*(msg(d) for d in data)))
        assert resp is not None
        if resp.status == 200:
            self.sent.extend(data)
        return resp

    def post_packets(self, *packets: Packet) -> Response:
        resp = self.post(client_payload(*packets))
        assert resp is not None
        return resp

    # --- websockets ---------------------------------------------------------

    def send_frame(self, frame: Data, sock: ClientSocket | None = None) -> Data | None:
        """One frame on ``sock`` (the session's websocket by default); returns what it
        delivered to the application. A closed websocket carries nothing."""
        sock = sock or self.ws
        assert sock is not None and sock.accepted, "frames go on an accepted websocket"
        if not sock.open:
            return None
        if isinstance(frame, str) and frame.startswith("2") and sock.role == "websocket":
            self.pongs_expected += 1
        got = self.hub.receive_frame(sock.rid, frame)
        assert len(got) <= 1, f"one frame delivered {got!r}"
        return got[0] if got else None

    def ws_send_messages(self, *data: Data) -> None:
        assert self.ws is not None
        for d in data:
            frame = d if isinstance(d, bytes) else "4" + d
            # a message that crosses the server's close on the wire is not delivered
            live = self.ws.open and not self.view.closed
            self.send_frame(frame)
            if live:
                self.sent.append(d)

    def open_socket(self, *, with_sid: bool = True) -> ClientSocket:
        """A websocket request with our sid (an upgrade); the model does not adopt it."""
        req = self.make_request("GET", transport="websocket", with_sid=with_sid)
        rid = self.send(req, websocket=True, tag="socket")
        return self.hub.sockets[rid]

    def start_upgrade(self) -> ClientSocket:
        """Open ``transport=websocket&sid=...``; if the core keeps it open, it is the probe."""
        sock = self.open_socket()
        if sock.open:
            self.probe = sock
        return sock

    def send_probe(self) -> None:
        assert self.probe is not None
        self.send_frame("2probe", self.probe)

    def complete_upgrade(self) -> None:
        """Send ``5`` on the probe; the core's ``Upgraded`` moves the client to it."""
        probe = self.probe
        assert probe is not None
        self.send_frame("5", probe)

    def drop_websocket(self, sock: ClientSocket | None = None) -> None:
        """The client end goes away without a CLOSE packet."""
        sock = sock or self.ws
        assert sock is not None
        sock.client_closed = True
        if sock is self.probe:
            self.probe = None
        self.hub.connection_lost(sock.rid)

    # --- heartbeat ------------------------------------------------------------

    def pong(self) -> Response | None:
        """Answer the pings received so far, on the current transport."""
        self.pings = 0
        if self.on_websocket:
            self.send_frame("3")
            return None
        return self.post_packets(Packet(PacketType.PONG))
