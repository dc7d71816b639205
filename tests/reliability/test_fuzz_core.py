"""Fuzzing the sans-IO core over its whole request/response surface.

A hypothesis state machine plays many clients at once (well-behaved and not) against
the core, through the one runtime the tests share (``tests/core/client_model.Hub``,
which performs every event the core hands out, reaches it only through its 14 public
names, and checks the event stream's contract on every event). The rules send random
requests (methods, queries, headers, origins), POST bodies (whole, or left unfinished),
websocket frames to sessions and probes, abandoned polls, dropped websockets,
application sends and closes, server shutdown, and clock steps (on time or late). The
harness records what each side sent; each client decodes what it gets with its own
small codec. After every step:

* no call into the core raises (errors are answers: 4xx responses, close codes);
* the event stream keeps its contract (one Respond per request, no write after a
  websocket's close, one SessionClosed per accepted session and none for a refused
  one, ...); an open session always has a deadline;
* a client told its session is gone (a CLOSE packet, a 400 "Session ID unknown", its
  websocket closed) means the application was told too: exactly one ``SessionClosed``;
* client -> application: the uniquely tagged messages the client sent in requests the
  core accepted arrive exactly once and in order; none arrive from refused requests;
* application -> client: what a client received is a prefix of what the application
  queued for it (no loss in the middle, no duplicate, no reordering);
* after a timer step no deadline is left in the past;
* at the end, with the clients gone silent, time alone ends every session, answers every
  request and disarms the timer.

Two sizes: a short run in the default suite, and a ``fuzz``-marked run for a fixed time
budget (``EIO_FUZZ_SECONDS``, default 60). Crashes it ever found are kept below as plain
regression tests.
"""

from __future__ import annotations

import base64
import itertools
import os
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from engineio_sansio import (
    CloseWebSocket,
    Packet,
    PacketType,
    ProtocolError,
    Request,
    Response,
    Server,
    ServerConfig,
    SessionClosed,
    SessionState,
    V4Codec,
)
from engineio_sansio.http import choose_encoding, cookie_header, cors_headers, parse_query

from ..core.client_model import Client, ClientSocket, Hub, accept_connect, error_json
from ..core.event_contract import PublicOnly

RS = "\x1e"
TAG = "\u2603m"  # prefix of the harness' uniquely numbered messages
MAX = 300
CONFIG_CHOICES = [
    ServerConfig(
        ping_interval=5,
        ping_timeout=3,
        upgrade_timeout=2,
        close_timeout=1.5,
        max_http_buffer_size=MAX,
        max_queued_bytes=4000,
    ),
    ServerConfig(
        ping_interval=5,
        ping_timeout=3,
        upgrade_timeout=2,
        close_timeout=1.5,
        max_http_buffer_size=MAX,
        cors_allowed_origins=["http://good.example"],
        compression_threshold=10,
        max_poll_packets=3,
        cookie="io",
    ),
    ServerConfig(
        ping_interval=5,
        ping_timeout=3,
        max_http_buffer_size=MAX,
        monitor_clients=False,
        transports=("polling",),
        allow_upgrades=False,
        cors_allowed_origins=[],
    ),
]
S = SessionState


def _event(name: str) -> None:
    """hypothesis.event() for the statistics, also usable outside a hypothesis run."""
    try:
        event(name)
    except InvalidArgument:
        pass


def tagged(data: Any) -> bool:
    return isinstance(data, str) and data.startswith(TAG)


@dataclass
class Rec:
    """What the harness knows of one session besides what its client and the hub keep
    (``client.messages``: what it received; ``hub.delivered``/``hub.closed``: what the
    application got)."""

    sid: str
    client: Client
    accepted: bool
    sent_by_client: list[str] = field(default_factory=list)  # tagged messages the core accepted
    sent_by_app: list[Any] = field(default_factory=list)  # what send() queued


# --------------------------------------------------------------------------- strategies

fragments = st.sampled_from(
    ["0", "1", "2", "3", "4", "5", "6", "7", "b", "probe", RS, "=", "AQID", "/+", "\x00", "é", "€", "\ud800"]
)
garbage_text = st.lists(fragments | st.text(max_size=4), max_size=10).map("".join)
garbage_bytes = st.one_of(
    st.binary(max_size=60),
    garbage_text.map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.integers(MAX - 2, MAX + 3).map(lambda n: b"4" + b"x" * (n - 1)),
)
frames = st.one_of(
    garbage_text,
    st.binary(max_size=40),
    st.sampled_from(
        ["2probe", "5", "3", "3probe", "1", "2", "6", "4", "", "0", "4" + "y" * MAX, "4" + "€" * 120]
    ),
    st.integers(MAX - 2, MAX + 2).map(lambda n: b"z" * n),
)
methods = st.sampled_from(["GET", "POST", "OPTIONS", "PUT", "HEAD", "DELETE"]) | st.text(max_size=4)
# "²" is left out here: it crashes route() (test_regression_eio_digit_that_int_refuses), and
# the machine would find nothing else while it does
eio_values = st.sampled_from(["4", "3", "5", "04", "٤", "", "4 ", "-1", "x"])
transport_values = st.sampled_from(["polling", "websocket", "__proto__", "constructor", "", "POLLING"])
header_values = st.text(st.characters(max_codepoint=255), max_size=20) | st.sampled_from(
    ["http://good.example", "http://evil.example", "null", "gzip", "deflate;q=0.5, gzip;q=0", "*", "br"]
)
header_names = st.sampled_from(
    [
        "origin",
        "host",
        "accept-encoding",
        "access-control-request-headers",
        "x-forwarded-host",
        "x-forwarded-proto",
        "content-type",
    ]
)
headers = st.dictionaries(header_names, header_values, max_size=4)
schemes = st.sampled_from(["http", "https", "ws", "wss"])
picks = st.integers(0, 10_000)


class CoreFuzz(RuleBasedStateMachine):
    wrap: Any = PublicOnly

    def __init__(self) -> None:
        super().__init__()
        self._hub: Hub | None = None
        self.recs: dict[str, Rec] = {}
        self.order: list[str] = []
        self.counter = 0
        self.seen = 0  # events of hub.log looked at so far

    # --- plumbing --------------------------------------------------------------

    @property
    def hub(self) -> Hub:
        if self._hub is None:
            self._hub = Hub(CONFIG_CHOICES[0], now=100.0, wrap=type(self).wrap)
        return self._hub

    @rule(choice=st.integers(0, len(CONFIG_CHOICES) - 1))
    def configure(self, choice: int) -> None:
        """Pick the configuration (only before the first request)."""
        if self._hub is None:
            self._hub = Hub(CONFIG_CHOICES[choice], now=100.0, wrap=type(self).wrap)

    def rec(self, pick: int) -> Rec | None:
        """Mostly a live session; one pick in five may be any session (stale ones too)."""
        if not self.order:
            return None
        if pick % 5:
            live = [sid for sid in self.order if not self.hub.sessions[sid].closed]
            if live:
                return self.recs[live[(pick // 5) % len(live)]]
        return self.recs[self.order[pick % len(self.order)]]

    def sock(self, pick: int) -> ClientSocket | None:
        socks = [s for s in self.hub.sockets.values() if s.accepted and s.owner is not None]
        if not socks:
            return None
        if pick % 5:
            live = [s for s in socks if s.open]
            if live:
                return live[(pick // 5) % len(live)]
        return socks[pick % len(socks)]

    def token(self) -> str:
        self.counter += 1
        return f"{TAG}{self.counter}"

    def adopt(self, c: Client, accepted: bool = True) -> None:
        """A client whose request opened a session: the harness follows that session."""
        if c.sid is not None and c.sid not in self.recs:
            self.recs[c.sid] = Rec(c.sid, c, accepted)
            self.order.append(c.sid)

    # --- requests ----------------------------------------------------------------

    def request(
        self,
        c: Client,
        request: Request,
        websocket: bool,
        body: bytes = b"",
        frame_list: tuple[Any, ...] = (),
        finish: str = "whole",
    ) -> Response | None:
        """Send a request as client ``c``; returns its answer, if it has one yet."""
        hub = self.hub
        method = request.method
        sid = request.query.get("sid")
        rec = self.recs.get(sid) if sid is not None else None
        state_before = hub.sessions[sid].state if rec is not None else None
        before = len(hub.delivered[sid]) if rec is not None else 0
        kw: dict[str, Any] = {}
        if not websocket:
            if finish == "abandon":  # the client goes before its last part
                kw = {"chunks": [body[: len(body) // 2], body[len(body) // 2 :]], "lose_before_end": True}
            else:
                kw = {"body": body}
        if websocket:
            tag = "socket"
        elif method == "GET":
            tag = "poll" if sid is not None else "handshake"
        else:
            tag = "post" if method == "POST" else "other"
        rid = c.send(request, websocket=websocket, tag=tag, **kw)
        self.adopt(c)
        resp = hub.response(rid)
        if resp is not None and resp.status >= 400:
            assert 400 <= resp.status < 500, resp
            assert resp.header(b"content-type") == b"application/json", resp.headers
            _event(f"refused {resp.status}")
        if method == "POST" and not websocket and rec is not None:
            self.check_post(rec, body, resp, state_before, hub.delivered[rec.sid][before:])
        sock = hub.sockets.get(rid)
        if sock is not None and sock.accepted:
            for f in frame_list:
                self.ws_frame(sock, f)
        return resp

    def check_post(
        self, rec: Rec, body: bytes, resp: Response | None, state: SessionState | None, new: list[Any]
    ) -> None:
        if resp is None:  # abandoned before its end: nothing of it is delivered
            assert not new, f"an abandoned POST delivered {new[:3]}"
            return
        _event(f"POST answered {resp.status}")
        if resp.status != 200:
            assert resp.status in (400, 403, 413), resp
            if resp.status != 400:  # an origin refused, a body too large: nothing of it is read
                assert not new
            return
        assert state in (S.OPEN, S.UPGRADING), state
        expect = expected_messages(body.decode("utf-8"))
        assert new == expect, f"POST {body[:80]!r} delivered {new[:5]} expected {expect[:5]}"
        rec.sent_by_client.extend(m for m in expect if tagged(m))

    def ws_frame(self, sock: ClientSocket, frame: Any) -> None:
        c = sock.owner
        assert c is not None
        view = self.hub.sessions.get(c.sid) if c.sid is not None else None
        carrying = sock.role == "websocket" and sock.open and view is not None and view.state is S.OPEN
        was = view.transport if view is not None else None
        data = c.send_frame(frame, sock)
        if view is not None and view.transport is not was:
            _event("upgrade completed")
        if data is not None:
            assert carrying, f"a message {data!r} delivered from a websocket not carrying an open session"
            if tagged(data):
                assert c.sid is not None
                self.recs[c.sid].sent_by_client.append(data)

    # --- rules: clients ----------------------------------------------------------

    @rule(
        ws=st.sampled_from([False, False, True]),
        accept=st.sampled_from([True, True, True, False]),
        hdrs=headers,
        frame_list=st.lists(frames, max_size=2),
    )
    def handshake(self, ws: bool, accept: bool, hdrs: dict[str, str], frame_list: list[Any]) -> None:
        hub = self.hub
        c = Client(hub, headers=hdrs)
        q = {"EIO": "4", "transport": "websocket" if ws else "polling", "t": "abc"}
        if not accept:
            hub.on_connect = lambda h, ev: h.reject(ev.sid, b'"no"')
        try:
            resp = self.request(c, Request("GET", q, hdrs, "http"), ws, frame_list=tuple(frame_list))
        finally:
            hub.on_connect = accept_connect
        if c.sid is None:
            return  # refused before it began (an origin, a disabled transport)
        self.recs[c.sid].accepted = accept
        if not accept:
            refusal = c.ws.refusal if ws and c.ws is not None else resp
            assert refusal is not None and refusal.status == 401, refusal
            assert refusal.body == b'"no"'
        elif ws:
            assert c.ws is not None and c.ws.frames and str(c.ws.frames[0]).startswith("0{"), c.ws
        else:
            assert resp is not None and resp.status == 200 and c.handshake is not None, resp

    @rule(
        method=methods,
        eio=eio_values,
        transport=transport_values,
        pick=picks,
        use_sid=st.sampled_from([0, 1, 2]),
        hdrs=headers,
        scheme=schemes,
        websocket=st.booleans(),
        body=garbage_bytes,
        frame_list=st.lists(frames, max_size=3),
        finish=st.sampled_from(["whole", "abandon"]),
    )
    def random_request(
        self,
        method: str,
        eio: str,
        transport: str,
        pick: int,
        use_sid: int,
        hdrs: dict[str, str],
        scheme: str,
        websocket: bool,
        body: bytes,
        frame_list: list[Any],
        finish: str,
    ) -> None:
        q = {"EIO": eio, "transport": transport}
        rec = self.rec(pick)
        if use_sid == 1 and rec is not None:
            q["sid"] = rec.sid
            owner = rec.client  # whoever made the session
        else:
            owner = Client(self.hub, headers=hdrs)  # a stranger (who may open a session)
            if use_sid == 2:
                q["sid"] = "no-such-sid"
        self.request(owner, Request(method, q, hdrs, scheme), websocket, body, tuple(frame_list), finish)

    @rule(pick=picks, hdrs=headers | st.just({"accept-encoding": "gzip"}))
    def poll(self, pick: int, hdrs: dict[str, str]) -> None:
        rec = self.rec(pick)
        if rec is not None:
            q = {"EIO": "4", "transport": "polling", "sid": rec.sid}
            resp = self.request(rec.client, Request("GET", q, hdrs, "http"), False)
            if resp is not None and resp.header(b"content-encoding"):
                _event("compressed poll")

    @rule(
        pick=picks,
        n=st.integers(1, 4),
        extra=st.sampled_from(["", "2", "3", "6", "1", "2probe"]),
        binary=st.booleans(),
        finish=st.sampled_from(["whole", "whole", "abandon"]),
    )
    def post_messages(self, pick: int, n: int, extra: str, binary: bool, finish: str) -> None:
        rec = self.rec(pick)
        if rec is None:
            return
        parts = ["4" + self.token() for _ in range(n)]
        if binary:
            parts.insert(1, "b" + base64.b64encode(b"\x00\x1e\xff").decode())
        if extra:
            parts.insert(len(parts) // 2, extra)
        body = RS.join(parts).encode("utf-8")
        hdrs = {"content-length": str(len(body))} if finish == "whole" else {}
        q = {"EIO": "4", "transport": "polling", "sid": rec.sid}
        self.request(rec.client, Request("POST", q, hdrs, "http"), False, body, finish=finish)

    @rule(pick=picks, body=garbage_bytes)
    def post_garbage(self, pick: int, body: bytes) -> None:
        rec = self.rec(pick)
        if rec is not None:
            q = {"EIO": "4", "transport": "polling", "sid": rec.sid}
            self.request(rec.client, Request("POST", q, {}, "http"), False, body)

    @rule(pick=picks)
    def abandon_poll(self, pick: int) -> None:
        rec = self.rec(pick)
        if rec is None:
            return
        hub = self.hub
        gets = [rid for rid in hub.outstanding(rec.client) if hub.requests[rid].request.method == "GET"]
        if gets:
            rid = gets[-1]
            if rid in rec.client.gets:
                rec.client.gets.remove(rid)
            hub.connection_lost(rid)

    @rule(pick=picks, frame=frames)
    def frame(self, pick: int, frame: Any) -> None:
        sock = self.sock(pick)
        if sock is not None and sock.open:
            self.ws_frame(sock, frame)

    @rule(pick=picks, n=st.integers(1, 3), binary=st.booleans())
    def ws_messages(self, pick: int, n: int, binary: bool) -> None:
        sock = self.sock(pick)
        if sock is None or not sock.open:
            return
        for _ in range(n):
            self.ws_frame(sock, "4" + self.token())
        if binary:
            self.ws_frame(sock, b"\x00\x1e\xff")

    @rule(pick=picks)
    def upgrade_steps(self, pick: int) -> None:
        """A well-behaved upgrade of a polling session: probe, 3probe, 5."""
        rec = self.rec(pick)
        if rec is None:
            return
        q = {"EIO": "4", "transport": "websocket", "sid": rec.sid}
        self.request(rec.client, Request("GET", q, {}, "ws"), True, frame_list=("2probe", "5"))

    @rule(pick=picks)
    def drop_websocket(self, pick: int) -> None:
        sock = self.sock(pick)
        if sock is not None and not sock.reported_gone and sock.owner is not None:
            sock.owner.drop_websocket(sock)

    @rule(pick=picks)
    def pong(self, pick: int) -> None:
        rec = self.rec(pick)
        if rec is None:
            return
        c = rec.client
        if c.on_websocket and c.ws is not None:
            if c.ws.open:
                self.ws_frame(c.ws, "3")
        else:
            q = {"EIO": "4", "transport": "polling", "sid": rec.sid}
            self.request(c, Request("POST", q, {}, "http"), False, b"3")

    # --- rules: application --------------------------------------------------------

    @rule(pick=picks, n=st.integers(1, 6), size=st.sampled_from([1, 30, 400]), binary=st.booleans())
    def app_send(self, pick: int, n: int, size: int, binary: bool) -> None:
        rec = self.rec(pick)
        if rec is None:
            return
        for i in range(n):
            data: Any = (self.token() + "p" * size) if not (binary and i % 2) else (b"\x1e" * size)
            _event("app send")
            if self.hub.app_send(rec.sid, data):
                rec.sent_by_app.append(data)
            else:
                assert self.hub.sessions[rec.sid].closed, "send() refused on a session not closed for the app"

    @rule(pick=picks)
    def app_close(self, pick: int) -> None:
        rec = self.rec(pick)
        if rec is not None and self.hub.sessions[rec.sid].state in (S.OPEN, S.UPGRADING):
            self.hub.app_close(rec.sid)

    @rule()
    def shutdown(self) -> None:
        self.hub.close_all()

    # --- rules: time ---------------------------------------------------------------

    @rule(dt=st.sampled_from([0.1, 1.0, 1.6, 2.1, 3.1, 5.0, 8.1]) | st.floats(0, 6))
    def advance(self, dt: float) -> None:
        self.hub.advance(dt)  # (it checks that no deadline is left in the past)

    @rule(dt=st.floats(0, 3))
    def late_clock(self, dt: float) -> None:
        """Time passes but the timer driver is late: requests see the new time first."""
        self.hub.jump(dt)

    # --- invariants ----------------------------------------------------------------

    @invariant()
    def events_are_known_and_counted(self) -> None:
        if self._hub is None:
            return
        log = self._hub.log
        for ev in log[self.seen :]:
            if type(ev) is CloseWebSocket:
                assert ev.code in (1000, 1002, 1008, 1009), ev
            elif type(ev) is SessionClosed:
                _event(f"closed: {ev.reason.value}")
        self.seen = len(log)
        if self._hub.open_sids() and self._hub.config.monitor_clients:
            # (unmonitored, a session waiting for its pong needs no timer)
            assert self._hub.server.next_deadline() is not None, "an open session without a deadline"

    @invariant()
    def one_close_per_ended_session(self) -> None:
        for rec in self.recs.values():
            closed = self.hub.closed.get(rec.sid, [])
            c = rec.client
            if not rec.accepted:
                assert closed == [], f"a refused session {rec.sid} got a disconnect"
                continue
            assert len(closed) <= 1, f"{rec.sid} closes {closed}"
            ws_closed = c.on_websocket and c.ws is not None and bool(c.ws.close_codes)
            if c.got_close or c.refused or ws_closed:
                assert len(closed) == 1, f"{rec.sid}: the client was told it ended; closes {closed}"

    @invariant()
    def client_messages_exactly_once_in_order(self) -> None:
        for rec in self.recs.values():
            got = [d for d in self.hub.delivered.get(rec.sid, []) if tagged(d)]
            assert got == rec.sent_by_client, (
                f"{rec.sid}: application got {got[-5:]} expected {rec.sent_by_client[-5:]}"
            )

    @invariant()
    def app_messages_prefix_in_order(self) -> None:
        for rec in self.recs.values():
            received = rec.client.messages
            n = len(received)
            assert received == rec.sent_by_app[:n], (
                f"{rec.sid}: client got {[str(x)[:12] for x in received[-4:]]}, "
                f"app sent {[str(x)[:12] for x in rec.sent_by_app[: n + 1][-4:]]}"
            )

    def teardown(self) -> None:
        if self._hub is None:
            return
        hub = self._hub
        if not hub.config.monitor_clients:
            # nothing times out without monitoring: the application ends the sessions
            hub.close_all()
        for _ in range(20):
            self.advance(30.0)
        assert hub.open_sids() == [], f"sessions left with silent clients: {hub.open_sids()}"
        assert hub.server.next_deadline() is None, "the timer is still armed with no session"
        for rec in self.recs.values():
            if rec.accepted:
                assert len(hub.closed[rec.sid]) == 1, (rec.sid, hub.closed[rec.sid])
        hub.contract.finish()


def expected_messages(text: str) -> list[Any]:
    """What a POST body accepted with 200 must deliver: its messages up to a CLOSE packet."""
    out: list[Any] = []
    for part in text.split(RS):
        if part.startswith("b"):
            out.append(base64.b64decode(part[1:], validate=True))
        elif part[0] == "4":
            out.append(part[1:])
        elif part[0] == "1":
            break
    return out


SHORT = settings(
    max_examples=150, stateful_step_count=50, deadline=None, suppress_health_check=list(HealthCheck)
)


def test_core_fuzz_short() -> None:
    run_state_machine_as_test(CoreFuzz, settings=SHORT)


def lossy(core: Server) -> PublicOnly:
    """A core that loses the first message the application sends (and says it sent it)."""
    count = itertools.count()

    def send(sid: str, data: Any) -> Any:
        return () if next(count) == 0 else core.send(sid, data)

    return PublicOnly(core, send=send)


def silent_close(core: Server) -> PublicOnly:
    """A core that closes sessions behind the application's back (no SessionClosed)."""

    return PublicOnly(core, lambda events: [ev for ev in events if type(ev) is not SessionClosed])


def test_the_machine_can_fail() -> None:
    """The checks are live: a lost packet, a duplicate delivery and a missing disconnect are caught."""

    class Lossy(CoreFuzz):
        wrap = lossy

    fz = Lossy()
    fz.handshake(False, True, {}, [])
    rec = fz.recs[fz.order[0]]
    fz.app_send(1, 2, 1, False)  # the core "loses" the first
    fz.poll(1, {})
    with pytest.raises(AssertionError, match="client got"):
        fz.app_messages_prefix_in_order()

    fz = CoreFuzz()
    fz.handshake(False, True, {}, [])
    rec = fz.recs[fz.order[0]]
    fz.post_messages(1, 2, "", False, "whole")
    delivered = fz.hub.delivered[rec.sid]
    delivered.append(delivered[-1])  # delivered twice
    with pytest.raises(AssertionError, match="application got"):
        fz.client_messages_exactly_once_in_order()

    class Silent(CoreFuzz):
        wrap = silent_close

    fz = Silent()
    fz.handshake(False, True, {}, [])
    fz.post_garbage(1, b"garbage")  # the session ends (transport error) and nobody is told
    fz.poll(1, {})  # the client learns it is gone: 400 Session ID unknown
    with pytest.raises(AssertionError, match="told it ended"):
        fz.one_close_per_ended_session()


@pytest.mark.fuzz
def test_core_fuzz_for_a_fixed_budget() -> None:
    budget = float(os.environ.get("EIO_FUZZ_SECONDS", "60"))
    deadline = time.monotonic() + budget
    batches = 0
    while time.monotonic() < deadline and batches < 100_000:
        batches += 1
        run_state_machine_as_test(
            CoreFuzz,
            settings=settings(
                max_examples=50,
                stateful_step_count=80,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            ),
        )
    print(f"core fuzz: {batches} batches of 50 runs in {budget:.0f}s")


# --------------------------------------------------------------------------- decoders and policy functions

C = V4Codec()


def check_decoders(raw: bytes, text: str, query: str, hdrs: dict[str, str], method: str) -> None:
    try:
        packets = C.decode_payload(raw)
        assert packets and all(isinstance(p, Packet) for p in packets)
        # whatever decodes re-encodes into something that decodes the same
        assert C.decode_payload(C.encode_payload(packets)) == packets or any(
            isinstance(p.data, str) and RS in p.data for p in packets
        )
    except ProtocolError as exc:
        assert exc.status == 400
    for frame in (text, raw):
        try:
            p = C.decode_frame(frame)
            assert isinstance(p.type, PacketType)
        except ProtocolError as exc:
            assert exc.status == 400
    parsed = parse_query(query)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in parsed.items())
    choose_encoding(text)
    for cfg in CONFIG_CHOICES:
        result = cors_headers(cfg, Request(method, parsed, hdrs))
        assert result is None or all(isinstance(k, bytes) and isinstance(v, bytes) for k, v in result)
        for _, v in result or ():
            assert b"\r" not in v and b"\n" not in v
    try:
        cookie_header({"name": "io", "path": text}, text)
    except ValueError:
        pass  # documented: a cookie text that would break the header


DECODER_ARGS = (
    st.binary(max_size=200) | garbage_text.map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.text(max_size=60) | garbage_text,
    st.text(max_size=60) | st.sampled_from(["EIO=%C2%B2", "a=%ZZ&b=%", "sid=%00", "x=%F0%9F%98%80", "&&=&"]),
    headers,
    methods,
)


@settings(max_examples=400, deadline=None)
@given(*DECODER_ARGS)
def test_decoders_raise_only_protocol_errors_short(
    raw: bytes, text: str, query: str, hdrs: dict[str, str], method: str
) -> None:
    check_decoders(raw, text, query, hdrs, method)


@pytest.mark.fuzz
def test_decoders_for_a_fixed_budget() -> None:
    budget = float(os.environ.get("EIO_FUZZ_SECONDS", "60")) / 3
    deadline = time.monotonic() + budget

    @settings(max_examples=2000, deadline=None, database=None)
    @given(*DECODER_ARGS)
    def batch(raw: bytes, text: str, query: str, hdrs: dict[str, str], method: str) -> None:
        check_decoders(raw, text, query, hdrs, method)

    n = 0
    while time.monotonic() < deadline and n < 100_000:
        n += 1
        batch()


def answer(
    request: Request, *, websocket: bool = False, config: ServerConfig | None = None
) -> Response | None:
    """What a fresh server answers (None: a websocket it accepted, or a GET it holds)."""
    hub = Hub(config)
    return hub.response(hub.request(request, websocket=websocket))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=6), st.text(max_size=12), headers, methods, st.booleans())
def test_requests_never_raise_on_any_query_value(
    eio: str, transport: str, hdrs: dict[str, str], method: str, websocket: bool
) -> None:
    request = Request(method, {"EIO": eio, "transport": transport}, hdrs)
    resp = answer(request, websocket=websocket, config=CONFIG_CHOICES[1])
    assert resp is None or 200 <= resp.status < 500, resp


# --------------------------------------------------------------------------- regressions found by fuzzing


@pytest.mark.parametrize("eio", ["²", "³", "¹", "①"])
def test_regression_eio_digit_that_int_refuses(eio: str) -> None:
    """Found by fuzzing: ``EIO=²`` (``%C2%B2`` in a URL) passes ``str.isdigit()`` but
    ``int()`` refuses it; the core raised ValueError (a 500 over a real server)
    instead of answering 400 with code 5."""
    resp = answer(Request("GET", {"EIO": eio, "transport": "polling"}))
    assert resp is not None and resp.status == 400, resp
    assert resp.body == b'{"code": 5, "message": "Unsupported protocol version"}'


# the last three: 4 in Arabic-Indic, mathematical double-struck and Devanagari digits
@pytest.mark.parametrize("eio", ["04", "004", "\u0664", "\U0001d7dc", "\u096a"])
def test_eio_other_than_ascii_4_is_refused(eio: str) -> None:
    """Found by fuzzing: the core takes any string of Unicode digits whose int() is 4 as
    protocol 4. The reference (engine.io: ``EIO === "4"``) and python-engineio
    (``query.get('EIO') != ['4']``) refuse anything but the exact text ``4``."""
    resp = answer(Request("GET", {"EIO": eio, "transport": "polling"}))
    assert resp is not None and resp.status == 400 and error_json(resp)["code"] == 5, resp
