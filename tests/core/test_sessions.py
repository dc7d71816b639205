"""Whole sessions through the core: a client model and the core talking in plain bytes,
time advanced by hand.

Every expectation here is a protocol fact (PROTOCOL.md, the Engine.IO v4 protocol
description, the official engine.io-protocol test suite, the Node reference server's
error codes); where the seed (python-engineio) is the oracle the test says so.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from engineio_sansio import (
    CloseReason,
    CloseWebSocket,
    IllegalTransition,
    Packet,
    PacketType,
    Request,
    Response,
    Route,
    RouteKind,
    Server,
    ServerConfig,
    SessionClosed,
    SessionState,
    Transport,
    TransportWritable,
)
from engineio_sansio.server import UPGRADE_POLL_GRACE

from .client_model import Client, Hub, client_payload, decode_poll_body, error_json, msg

T = PacketType
R = CloseReason
FAST = ServerConfig(ping_interval=0.3, ping_timeout=0.2)  # the official test suite's 300/200 ms
NOOP = [Packet(T.NOOP)]


def polling(config: ServerConfig | None = None, **hub_kw: Any) -> tuple[Hub, Client]:
    hub = Hub(config, **hub_kw)
    c = Client(hub)
    c.open_polling()
    return hub, c


def websocket(config: ServerConfig | None = None) -> tuple[Hub, Client]:
    hub = Hub(config)
    c = Client(hub)
    c.open_websocket()
    return hub, c


def upgraded(config: ServerConfig | None = None) -> tuple[Hub, Client]:
    hub, c = polling(config)
    assert isinstance(c.start_upgrade(), Route)
    c.send_probe()
    c.complete_upgrade()
    assert c.session is not None and c.session.transport is Transport.WEBSOCKET
    return hub, c


def reasons(hub: Hub, c: Client) -> list[CloseReason]:
    assert c.sid is not None
    return hub.closed.get(c.sid, [])


def assert_closed(hub: Hub, c: Client, reason: CloseReason) -> None:
    assert reasons(hub, c) == [reason], (
        f"expected exactly one SessionClosed({reason.value}), got {reasons(hub, c)}"
    )
    assert c.sid not in list(hub.server.session_ids())


def assert_gone(hub: Hub, c: Client) -> None:
    """The session no longer exists for the protocol: a GET with its sid gets 400 code 1."""
    resp = c.poll()
    assert resp is not None and resp.status == 400, (
        f"a request for a closed session must be refused: {resp!r}"
    )
    assert error_json(resp)["code"] == 1


def last_poll(c: Client) -> list[Packet]:
    resp = c.poll_responses[-1]
    assert resp.status == 200, resp
    return decode_poll_body(resp.body)


def err(resp: Route | Response | None) -> dict[str, Any]:
    assert isinstance(resp, Response), f"expected an error response, got {resp!r}"
    assert resp.status == 400, resp
    return error_json(resp)


# =========================================================================== polling


def test_polling_handshake_body() -> None:
    _, c = polling(sids=["fixed-sid"])
    resp = c.handshake_response
    assert resp is not None and resp.status == 200
    assert resp.header(b"content-type") == b"text/plain; charset=UTF-8"
    packets = decode_poll_body(resp.body)
    assert len(packets) == 1 and packets[0].type is T.OPEN
    hs = json.loads(packets[0].data)  # type: ignore[arg-type]
    assert set(hs) == {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}
    assert hs["sid"] == "fixed-sid"
    assert hs["upgrades"] == ["websocket"]
    assert hs["pingInterval"] == 25000 and type(hs["pingInterval"]) is int, "milliseconds, integer"
    assert hs["pingTimeout"] == 20000 and type(hs["pingTimeout"]) is int
    assert hs["maxPayload"] == 1_000_000


def test_handshake_sub_second_intervals_and_max_payload() -> None:
    _, c = polling(ServerConfig(ping_interval=0.3, ping_timeout=0.2, max_http_buffer_size=12345))
    assert c.handshake is not None
    assert (c.handshake["pingInterval"], c.handshake["pingTimeout"]) == (300, 200)
    assert type(c.handshake["pingInterval"]) is int and type(c.handshake["pingTimeout"]) is int
    assert c.handshake["maxPayload"] == 12345


def test_handshake_interval_grace_form() -> None:
    """``ping_interval=(interval, grace)``: the seed advertises interval + grace and pings every interval."""
    cfg = ServerConfig.from_options(ping_interval=(10, 5), ping_timeout=3)
    hub, c = polling(cfg)
    assert c.handshake is not None and c.handshake["pingInterval"] == 15000
    assert c.handshake["pingTimeout"] == 3000
    c.poll()
    hub.advance(9.9)
    assert c.pings == 0
    hub.advance(0.2)
    assert c.pings == 1, "the server pings every `interval`, the grace is only advertised"


@pytest.mark.parametrize(
    "cfg",
    [ServerConfig(allow_upgrades=False), ServerConfig(transports=("polling",))],
    ids=["no-upgrades", "polling-only"],
)
def test_handshake_without_upgrades(cfg: ServerConfig) -> None:
    _, c = polling(cfg)
    assert c.handshake is not None and c.handshake["upgrades"] == []


def test_sid_generator_injected_and_collisions_retried() -> None:
    hub = Hub(sids=["a", "a", "b"])
    one, two = Client(hub), Client(hub)
    one.open_polling()
    two.open_polling()
    assert (one.sid, two.sid) == ("a", "b")


def test_post_answers_ok_and_delivers_in_order() -> None:
    hub, c = polling()
    resp = c.post(b"4hello\x1ebAQIDBA==\x1e4\xe2\x82\xac")
    assert resp.status == 200
    assert resp.body == b"ok"
    assert resp.header(b"content-type") == b"text/html"
    assert hub.delivered[c.sid] == ["hello", b"\x01\x02\x03\x04", "€"]  # type: ignore[index]


def test_get_batches_queued_packets() -> None:
    hub, c = polling()
    for data in ("test1", "test2", b"\x01\x02\x03\x04", "€"):
        assert hub.server.send(c.session, data)  # type: ignore[arg-type]
    resp = c.poll()
    assert resp is not None and resp.status == 200
    assert resp.body == "4test1\x1e4test2\x1ebAQIDBA==\x1e4€".encode()
    assert c.messages == ["test1", "test2", b"\x01\x02\x03\x04", "€"]


def test_get_answers_at_most_16_packets() -> None:
    """python-engineio's client refuses a payload of more than 16 packets."""
    hub, c = polling()
    sent = [f"m{i}" for i in range(40)]
    for s in sent:
        hub.server.send(c.session, s)  # type: ignore[arg-type]
    sizes = []
    while len(c.messages) < 40:
        before = len(c.messages)
        resp = c.poll()
        assert resp is not None, "packets are queued: the GET must be answered at once"
        sizes.append(len(c.messages) - before)
    assert sizes == [16, 16, 8]
    assert c.messages == sent


def test_held_poll_is_answered_when_the_app_sends() -> None:
    hub, c = polling()
    assert c.poll() is None, "nothing queued: the GET is held"
    assert c.held is not None
    assert hub.app_send(c.session, "late")  # type: ignore[arg-type]
    assert c.held is None
    assert last_poll(c) == [msg("late")]


def test_abandoned_poll_loses_nothing() -> None:
    hub, c = polling()
    assert c.poll() is None
    c.abandon_poll()
    hub.app_send(c.session, "kept")  # type: ignore[arg-type]
    assert c.messages == []
    resp = c.poll()
    assert resp is not None and c.messages == ["kept"]


@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_closed_sessions_do_not_stay_on_the_timer_heap(transport: str) -> None:
    # A closed session's timer entry is stale; if it stayed until its deadline
    # the session (and whatever the runtime hung on it) would outlive its close
    # by up to a heartbeat, which after a burst of short sessions is most of RSS.
    hub = Hub()
    clients = []
    for _ in range(300):
        c = Client(hub)
        if transport == "polling":
            c.open_polling()
        else:
            c.open_websocket()
        clients.append(c)
    for c in clients[:290]:  # the clients go: closed at once, not by a timer
        if transport == "polling":
            c.post_packets(Packet(T.CLOSE))
        else:
            c.drop_websocket()
        hub.pump()
    server = hub.server
    assert len(server.sessions) == 10
    heap = server._heap
    assert len(heap) <= 2 * len(server.sessions) + 64
    live = [entry for entry in heap if entry[2].heap_deadline == entry[0]]
    assert len(live) == 10  # every open session still has its deadline
    hub.advance(25.0)  # and the heartbeat of the survivors still runs
    assert all(c.session is not None and c.session.state is SessionState.OPEN for c in clients[290:])


def test_messages_queued_before_accept_follow_the_open_packet() -> None:
    hub = Hub()
    c = Client(hub)
    req = c.make_request("GET", with_sid=False)
    route = hub.server.route(req, hub.now)
    assert isinstance(route, Route)
    session = hub.server.open_session(route, hub.now)
    assert session.state is SessionState.OPENING
    assert hub.server.send(session, "welcome")
    hub.server.accept(session, hub.now)
    resp = hub.server.poll(route, req)
    assert resp is not None
    packets = decode_poll_body(resp.body)
    assert [p.type for p in packets] == [T.OPEN, T.MESSAGE] and packets[1].data == "welcome"


def test_rejected_session_gets_401_and_no_close_event() -> None:
    hub = Hub()
    c = Client(hub)
    req = c.make_request("GET", with_sid=False)
    route = hub.server.route(req, hub.now)
    assert isinstance(route, Route)
    session = hub.server.open_session(route, hub.now)
    resp = hub.server.reject(session, route, b'"nope"')
    hub.pump()
    assert resp.status == 401 and resp.body == b'"nope"'
    assert session.sid not in hub.server.sessions
    assert not [e for e in hub.log if isinstance(e, SessionClosed)], "the app never saw a connect"


def test_reject_after_the_app_closed_the_session_in_its_connect_handler() -> None:
    """A connect handler may call disconnect(sid) and then refuse; the runtime then
    calls reject() on a session the core already closed (engineio_asgi does exactly
    this). The answer must be the 401, not an IllegalTransition."""
    hub = Hub()
    c = Client(hub)
    req = c.make_request("GET", with_sid=False)
    route = hub.server.route(req, hub.now)
    assert isinstance(route, Route)
    session = hub.server.open_session(route, hub.now)
    hub.server.close(session, hub.now)
    hub.pump()
    try:
        resp = hub.server.reject(session, route, None)
    except IllegalTransition as exc:
        pytest.fail(f"reject() after close() during OPENING raised {exc!r}")
    assert resp.status == 401
    assert session.sid not in hub.server.sessions
    assert not [e for e in hub.log if isinstance(e, SessionClosed)]


# =========================================================================== websocket only


def test_websocket_only_session() -> None:
    _hub, c = websocket(ServerConfig(ping_interval=0.3, ping_timeout=0.2))
    assert c.ws is not None
    first = c.ws.frames[0]
    assert isinstance(first, str) and first.startswith("0"), "the open packet is the first frame"
    hs = json.loads(first[1:])
    assert set(hs) == {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}
    assert hs["upgrades"] == [], "a websocket session has nothing to upgrade to"
    assert (hs["pingInterval"], hs["pingTimeout"], hs["maxPayload"]) == (300, 200, 1_000_000)
    assert c.session is not None and c.session.transport is Transport.WEBSOCKET


def test_websocket_messages_both_ways() -> None:
    hub, c = websocket()
    assert c.ws is not None
    hub.app_send(c.session, "hello")  # type: ignore[arg-type]
    hub.app_send(c.session, b"\x01\x02\x03\x04")  # type: ignore[arg-type]
    assert c.ws.frames[1:] == ["4hello", b"\x01\x02\x03\x04"], "binary goes as a raw binary frame"
    assert c.send_frame("4hi") == "hi"
    assert c.send_frame(b"\x00\xff") == b"\x00\xff"
    assert c.send_frame("4") == ""
    assert hub.delivered[c.sid] == ["hi", b"\x00\xff", ""]  # type: ignore[index]


def test_websocket_session_refuses_polling_requests() -> None:
    hub, c = websocket()
    # the reference: TRANSPORT_MISMATCH, a BAD_REQUEST (code 3)
    assert err(c.poll())["code"] == 3
    assert err(c.post(b"4x"))["code"] == 3
    assert c.ws is not None and c.ws.open, "a stray polling request does not kill the websocket session"
    assert reasons(hub, c) == []


def test_websocket_malformed_frame_closes_the_session() -> None:
    hub, c = websocket()
    c.send_frame("abc")
    assert c.ws is not None and c.ws.close_codes, "the official suite: the server closes the socket"
    assert_closed(hub, c, R.TRANSPORT_ERROR)


# =========================================================================== upgrade


def test_upgrade_sequence() -> None:
    hub, c = polling()
    assert c.poll() is None  # the poll a client keeps open while it probes
    route = c.start_upgrade()
    assert isinstance(route, Route) and route.kind is RouteKind.UPGRADE
    assert c.session is not None and c.session.state is SessionState.UPGRADING
    c.send_probe()
    assert c.probe_answered, "2probe is answered with 3probe on the websocket"
    assert c.held is None and last_poll(c) == NOOP, "the pending GET ends with a NOOP"
    c.complete_upgrade()
    session = hub.server.sessions[c.session.sid]
    assert session.transport is Transport.WEBSOCKET and session.state is SessionState.OPEN
    hub.app_send(session, "on ws")
    assert c.ws is not None and c.ws.frames[-1] == "4on ws"
    assert c.send_frame("4hello") == "hello"
    assert reasons(hub, c) == []


def test_packets_sent_during_the_upgrade_are_not_lost_or_reordered() -> None:
    hub, c = polling()
    s = c.session
    assert s is not None
    hub.app_send(s, "a1")
    hub.app_send(s, b"a2")
    c.start_upgrade()
    hub.app_send(s, "a3")  # queued while the probe is attached
    assert c.poll() is None  # a GET during an upgrade waits for the grace first
    hub.advance(UPGRADE_POLL_GRACE)
    assert c.held is None  # polling still carries the session: a1..a3
    assert c.poll() is None
    hub.app_send(s, "a4")
    hub.advance(UPGRADE_POLL_GRACE)  # the held poll takes it once its grace is over
    assert c.held is None
    c.send_probe()
    for i in range(5, 25):  # more than one poll's worth, none of it polled
        hub.app_send(s, f"a{i}")
    c.complete_upgrade()
    hub.app_send(s, "a25")
    expected: list[Any] = ["a1", b"a2", *[f"a{i}" for i in range(3, 26)]]
    assert c.messages == expected, f"lost or reordered across the upgrade: {c.messages}"
    ws_msgs = [p.data for t, p in c.packets if t == "websocket" and p.type is T.MESSAGE]
    assert ws_msgs == [f"a{i}" for i in range(5, 26)], "after 5, queued packets go on the websocket"


def test_client_messages_during_the_upgrade_are_delivered_in_order() -> None:
    hub, c = polling()
    c.post_messages("c1")
    c.start_upgrade()
    c.post_messages("c2")
    c.send_probe()
    c.post_messages("c3")
    c.complete_upgrade()
    c.ws_send_messages("c4", b"c5")
    assert hub.delivered[c.sid] == ["c1", "c2", "c3", "c4", b"c5"]  # type: ignore[index]


def test_upgrade_timeout_closes_the_probe_and_keeps_polling() -> None:
    hub, c = polling(ServerConfig(upgrade_timeout=2.0, ping_interval=100, ping_timeout=50))
    c.start_upgrade()
    c.send_probe()
    probe = c.probe
    assert probe is not None
    hub.advance(1.9)
    assert probe.open
    hub.advance(0.2)
    assert probe.close_codes, "the probe is closed once the upgrade times out"
    assert c.session is not None
    assert c.session.state is SessionState.OPEN and c.session.transport is Transport.POLLING
    assert reasons(hub, c) == []
    hub.app_send(c.session, "still here")
    assert c.poll() is not None and c.messages[-1] == "still here"
    assert c.poll() is None, "after the timeout a GET is held again (no probe waiting)"
    assert c.post_messages("me too").status == 200
    # the frames of the dead probe are ignored, and a new upgrade may start
    assert hub.server.receive_frame(probe.ws, "5", hub.now) is None
    assert c.session.transport is Transport.POLLING
    c.abandon_poll()
    assert isinstance(c.start_upgrade(), Route)


def test_upgrade_timeout_without_probe_frame() -> None:
    hub, c = polling(ServerConfig(upgrade_timeout=1.0, ping_interval=100, ping_timeout=50))
    c.start_upgrade()
    probe = c.probe
    assert probe is not None
    hub.advance(1.1)
    assert probe.close_codes
    assert c.session is not None and c.session.state is SessionState.OPEN


def test_second_websocket_for_the_same_sid_is_ignored() -> None:
    """The official suite: "ignores WebSocket connection with same sid after upgrade":
    such a websocket is accepted and closed at once; the session does not notice."""
    hub, c = polling()
    c.start_upgrade()
    probe = c.probe
    second = c.route(c.make_request("GET", transport="websocket"), websocket=True)
    assert isinstance(second, Route) and second.kind is RouteKind.IGNORE, "a second websocket while upgrading"
    assert probe is not None and probe.open, "it leaves the first probe alone"
    c.send_probe()
    assert c.probe_answered
    c.complete_upgrade()
    third = c.route(c.make_request("GET", transport="websocket"), websocket=True)
    assert isinstance(third, Route) and third.kind is RouteKind.IGNORE, "a websocket after the upgrade"
    assert c.ws is not None and c.ws.open and reasons(hub, c) == []
    assert c.send_frame("4still") == "still"


def test_websocket_with_the_sid_of_a_closing_polling_session_is_refused() -> None:
    hub, c = polling()
    assert c.session is not None
    hub.app_close(c.session)  # lingers in CLOSING until its next poll takes the CLOSE packet
    r = c.route(c.make_request("GET", transport="websocket"), websocket=True)
    assert isinstance(r, Response) and r.status == 400


@pytest.mark.parametrize("read_after", ["attach", "2probe"])
def test_get_racing_the_upgrade_packet_gets_400(read_after: str) -> None:
    """The official suite sends ``2probe`` and ``5`` and at once a GET; the GET can be
    read before the probe's frames. Held during the upgrade, it gets 400 once ``5`` is
    read, and the websocket carries on."""
    hub, c = polling()
    c.start_upgrade()
    assert c.probe is not None and c.session is not None
    if read_after == "2probe":
        c.send_probe()
    assert c.poll() is None, "a GET during an upgrade is held"
    if read_after == "attach":
        c.send_probe()
    assert c.held is not None, "answering 2probe does not end a GET that arrived during the upgrade"
    c.complete_upgrade()
    assert c.held is None and c.poll_responses[-1].status == 400
    assert err(c.poll_responses[-1])["code"] == 3
    assert c.send_frame("4hello") == "hello" and reasons(hub, c) == []


def test_get_after_3probe_is_answered_with_noop_after_the_grace() -> None:
    """A GET that crossed ``3probe`` on the wire: held for UPGRADE_POLL_GRACE, then a
    NOOP (the client will send ``5`` only once it has its answer); a packet queued
    meanwhile waits for the websocket."""
    hub, c = polling(ServerConfig(ping_interval=100, ping_timeout=50))
    c.start_upgrade()
    c.send_probe()
    assert c.session is not None
    assert c.poll() is None
    hub.app_send(c.session, "later")
    hub.advance(UPGRADE_POLL_GRACE * 0.9)
    assert c.held is not None, "answered before the grace"
    hub.advance(UPGRADE_POLL_GRACE * 0.2)
    assert c.held is None and last_poll(c) == NOOP
    c.complete_upgrade()
    assert c.messages == ["later"], "the packet queued during the upgrade went on the websocket"


def test_get_during_upgrade_when_the_probe_fails_becomes_an_ordinary_poll() -> None:
    hub, c = polling(ServerConfig(ping_interval=100, ping_timeout=50, upgrade_timeout=1.0))
    c.start_upgrade()
    probe = c.probe
    assert c.session is not None and probe is not None
    assert c.poll() is None
    hub.advance(UPGRADE_POLL_GRACE * 2)
    assert c.held is not None, "nothing to answer with: the GET stays held"
    hub.advance(1.0)  # the probe times out
    assert probe.close_codes
    hub.app_send(c.session, "x")
    assert c.held is None and c.messages == ["x"]


def test_upgrade_packet_before_probe_is_refused() -> None:
    hub, c = polling()
    c.start_upgrade()
    probe = c.probe
    assert probe is not None
    hub.server.receive_frame(probe.ws, "5", hub.now)
    hub.pump()
    assert probe.close_codes, "5 before 2probe: the probe is closed"
    assert c.session is not None
    assert c.session.transport is Transport.POLLING and c.session.state is SessionState.OPEN
    assert reasons(hub, c) == []
    hub.app_send(c.session, "polling")
    assert c.poll() is not None and c.messages == ["polling"]


def test_polling_after_upgrade_is_refused() -> None:
    """The official suite: "ignores HTTP requests with same sid after upgrade" - 400, and
    the websocket keeps working."""
    hub, c = upgraded()
    c.upgraded = False  # let the model issue the stray requests
    get = c.poll()
    assert err(get)["code"] == 3, "the reference: TRANSPORT_MISMATCH (BAD_REQUEST)"
    post = c.post(b"4x")
    assert err(post)["code"] == 3
    c.upgraded = True
    c.refused = False
    assert c.send_frame("4hello") == "hello"
    assert reasons(hub, c) == []


def test_upgrade_refused_when_upgrades_are_off() -> None:
    _, c = polling(ServerConfig(allow_upgrades=False))
    r = c.start_upgrade()
    assert isinstance(r, Response) and r.status == 400


def test_probe_dropped_by_the_client_keeps_polling() -> None:
    hub, c = polling()
    c.start_upgrade()
    c.send_probe()
    assert c.probe is not None
    c.drop_websocket(c.probe)
    assert c.session is not None and c.session.state is SessionState.OPEN
    assert c.session.transport is Transport.POLLING and reasons(hub, c) == []
    hub.app_send(c.session, "x")
    assert c.poll() is not None and c.messages == ["x"]


def test_held_poll_gets_noop_when_upgrade_completes() -> None:
    """A GET still held when ``5`` arrives (the runtime had not yet woken it after the
    probe) ends with a NOOP only; what was queued goes on the websocket."""
    hub, c = polling()
    assert c.poll() is None
    c.start_upgrade()
    probe = c.probe
    assert probe is not None and c.session is not None
    hub.server.receive_frame(probe.ws, "2probe", hub.now)
    woken = hub.server.take_events()  # the runtime is slow: the held poll is not answered yet
    assert any(isinstance(e, TransportWritable) for e in woken), "the held poll must be woken"
    assert hub.server.send(c.session, "after")
    c.upgraded = True
    c.ws, c.probe, probe.role = probe, None, "websocket"
    c.send_frame("5", probe)
    assert c.held is None and last_poll(c) == NOOP
    assert probe.frames[-1] == "4after"
    assert c.messages == ["after"]


# =========================================================================== heartbeat


def test_ping_every_interval_and_pong_resets() -> None:
    hub, c = polling(FAST)
    assert hub.server.next_deadline() == pytest.approx(hub.now + 0.3)
    assert c.poll() is None
    hub.advance(0.29)
    assert c.pings == 0, "no ping before pingInterval"
    for round_ in range(3):
        hub.advance(0.02 if round_ == 0 else 0.3)
        assert c.pings == 1, f"round {round_}: one ping per interval"
        assert last_poll(c) == [Packet(T.PING)]
        hub.advance(0.15)
        assert c.pong() is not None
        assert c.poll() is None
    assert reasons(hub, c) == []


def test_pong_moves_the_next_ping() -> None:
    hub, c = polling(FAST)
    c.poll()
    hub.advance(0.31)  # ping at +0.3
    assert c.pings == 1
    hub.advance(0.15)
    c.pong()  # at +0.46: the next ping is due at +0.76
    c.poll()
    hub.advance(0.25)
    assert c.pings == 0 and reasons(hub, c) == []
    hub.advance(0.1)
    assert c.pings == 1


def test_ping_timeout_closes_and_close_reaches_the_held_poll() -> None:
    hub, c = polling(FAST)
    c.poll()
    hub.advance(0.31)
    assert c.pings == 1
    assert c.poll() is None  # the client keeps a GET open but never answers the ping
    hub.advance(0.15)
    assert reasons(hub, c) == []
    hub.advance(0.1)
    assert_closed(hub, c, R.PING_TIMEOUT)
    assert c.held is None and last_poll(c)[-1] == Packet(T.CLOSE), "the held poll carries the CLOSE"
    assert_gone(hub, c)


def test_ping_timeout_without_a_poll() -> None:
    hub, c = polling(FAST)
    hub.advance(0.3 + 0.2 + 0.05)
    assert_closed(hub, c, R.PING_TIMEOUT)
    assert_gone(hub, c)


def test_ping_timeout_is_checked_lazily_when_a_request_comes_late() -> None:
    """The official suite: after pingInterval + pingTimeout without a pong, a POST gets 400.
    Here the timer driver is late: the request itself must find the session expired."""
    hub, c = polling(FAST)
    hub.advance(0.31)  # the ping is queued
    hub.jump(0.3)  # past the pong deadline, no timer
    resp = c.post(b"3")
    assert resp.status == 400, "a pong after the deadline is too late"
    assert error_json(resp)["code"] == 1
    assert_closed(hub, c, R.PING_TIMEOUT)
    hub.advance(5)
    assert reasons(hub, c) == [R.PING_TIMEOUT], "the timer must not close it a second time"


def test_early_timer_call_is_harmless() -> None:
    hub, c = polling(FAST)
    c.poll()
    hub.server.handle_timer(hub.now + 0.1)
    hub.pump()
    assert c.pings == 0


def test_websocket_heartbeat_and_timeout() -> None:
    hub, c = websocket(FAST)
    assert c.ws is not None
    hub.advance(0.31)
    assert c.ws.frames[-1] == "2"
    c.pong()
    hub.advance(0.3)
    assert c.ws.frames[-1] == "2" and c.ws.frames.count("2") == 2
    hub.advance(0.25)
    assert_closed(hub, c, R.PING_TIMEOUT)
    assert c.ws.close_codes, "the websocket is closed on ping timeout"


def test_upgraded_session_heartbeat() -> None:
    hub, c = upgraded(FAST)
    hub.advance(0.31)
    assert c.pings == 1 and c.ws is not None and c.ws.frames[-1] == "2"
    c.pong()
    hub.advance(0.25)
    assert reasons(hub, c) == []


# =========================================================================== errors


def hs_request(query: dict[str, str], method: str = "GET") -> Request:
    return Request(method, query, {})


@pytest.mark.parametrize("websocket_", [False, True], ids=["polling", "websocket"])
@pytest.mark.parametrize("eio", [None, "abc", "3", "5", "", "-4", "4.0"])
def test_bad_eio(eio: str | None, websocket_: bool) -> None:
    q = {"transport": "websocket" if websocket_ else "polling"}
    if eio is not None:
        q["EIO"] = eio
    r = Server().route(hs_request(q), 0.0, websocket=websocket_)
    assert err(r)["code"] == 5


@pytest.mark.parametrize("eio", ["04", "004", "\u0664", "4 "], ids=repr)
def test_eio_must_be_exactly_4(eio: str) -> None:
    """The reference: ``protocol = req._query.EIO === "4" ? 4 : 3`` and v3 is refused with
    code 5; only the exact string "4" selects v4."""
    r = Server().route(hs_request({"EIO": eio, "transport": "polling"}), 0.0)
    assert isinstance(r, Response), f"EIO={eio!r} was accepted as protocol 4"
    assert err(r)["code"] == 5


@pytest.mark.parametrize("eio", ["\u00b2", "\u2460", "\U0001d7dc\U0001d7dc"], ids=repr)
def test_route_survives_unicode_digit_eio(eio: str) -> None:
    """``str.isdigit()`` is true for these but ``int()`` refuses them; a query like
    ``EIO=%C2%B2`` reaches route() through parse_query."""
    try:
        r = Server().route(hs_request({"EIO": eio, "transport": "polling"}), 0.0)
    except ValueError as exc:
        pytest.fail(f"route() raised {exc!r} for EIO={eio!r}; it must answer 400 code 5")
    assert err(r)["code"] == 5


@pytest.mark.parametrize("transport", [None, "tobi", "constructor", "flashsocket", "", "POLLING"])
def test_bad_transport(transport: str | None) -> None:
    q = {"EIO": "4"}
    if transport is not None:
        q["transport"] = transport
    assert err(Server().route(hs_request(q), 0.0))["code"] == 0


def test_disabled_transport_is_unknown() -> None:
    ws_only = Server(ServerConfig(transports=("websocket",)))
    assert err(ws_only.route(hs_request({"EIO": "4", "transport": "polling"}), 0.0))["code"] == 0
    poll_only = Server(ServerConfig(transports=("polling",)))
    r = poll_only.route(hs_request({"EIO": "4", "transport": "websocket"}), 0.0, websocket=True)
    assert err(r)["code"] == 0


def test_transport_must_match_the_request_kind() -> None:
    s = Server()
    r = s.route(hs_request({"EIO": "4", "transport": "websocket"}), 0.0, websocket=False)
    assert err(r)["code"] == 3, "transport=websocket on a plain HTTP request (reference: BAD_REQUEST)"
    r = s.route(hs_request({"EIO": "4", "transport": "polling"}), 0.0, websocket=True)
    assert isinstance(r, Response) and r.status == 400, "a websocket request for polling is refused"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_unknown_sid(method: str) -> None:
    hub, c = polling()
    r = hub.server.route(Request(method, {"EIO": "4", "transport": "polling", "sid": "nope"}), hub.now)
    assert err(r)["code"] == 1
    ws = hub.server.route(
        Request("GET", {"EIO": "4", "transport": "websocket", "sid": "nope"}), hub.now, websocket=True
    )
    assert err(ws)["code"] == 1
    assert reasons(hub, c) == []


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_handshake_must_be_get(method: str) -> None:
    assert err(Server().route(hs_request({"EIO": "4", "transport": "polling"}, method), 0.0))["code"] == 2


def test_unknown_method_on_a_session() -> None:
    hub, c = polling()
    r = hub.server.route(c.make_request("PUT"), hub.now)
    assert isinstance(r, Response) and r.status == 400


@pytest.mark.parametrize("body", [b"abc", b"", b"4ok\x1e", b"4\xff", b"b***"], ids=repr)
def test_bad_payload_closes_the_session(body: bytes) -> None:
    hub, c = polling()
    resp = c.post(body)
    assert resp.status == 400
    assert error_json(resp)["code"] == 3
    assert_closed(hub, c, R.TRANSPORT_ERROR)
    assert_gone(hub, c)


def test_bad_payload_delivers_nothing_of_it() -> None:
    hub, c = polling()
    c.post(b"4first\x1ebnot base64!")
    assert hub.delivered.get(c.sid, []) == [], "a malformed payload is refused as a whole"  # type: ignore[arg-type]


def test_concurrent_get() -> None:
    """The official suite: the first GET gets CLOSE, the second 400, the session is gone."""
    hub, c = polling()
    assert c.poll() is None
    second = c.poll()
    assert second is not None and second.status == 400
    assert c.held is None, "the first GET is answered"
    assert last_poll(c) == [Packet(T.CLOSE)], "the held poll gets exactly the CLOSE packet"
    assert_closed(hub, c, R.TRANSPORT_ERROR)
    assert_gone(hub, c)


def test_concurrent_post() -> None:
    hub, c = polling()
    req = c.make_request("POST")
    first = hub.server.route(req, hub.now)
    assert isinstance(first, Route)
    assert hub.server.begin_post(first) is None
    second = hub.server.route(req, hub.now)
    assert isinstance(second, Route)
    busy = hub.server.begin_post(second)
    hub.pump()
    assert busy is not None and busy.status == 400
    assert_closed(hub, c, R.TRANSPORT_ERROR)
    late = hub.server.post(first, b"4late", hub.now)
    hub.pump()
    assert late.status == 400, "the first POST finishing after the session closed is refused"
    assert hub.delivered.get(c.sid, []) == []  # type: ignore[arg-type]


def test_post_cut_short_by_the_session_closing() -> None:
    """A body still arriving when the session closes (here: the app closes it): the
    runtime stops reading and answers what post_cut_short says, and nothing of the
    unread body is delivered."""
    hub, c = polling()
    req = c.make_request("POST")
    route = hub.server.route(req, hub.now)
    assert isinstance(route, Route)
    assert hub.server.begin_post(route) is None
    hub.server.close(c.session, hub.now)  # type: ignore[arg-type]
    hub.pump()
    resp = hub.server.post_cut_short(route)
    hub.pump()
    assert resp.status == 400
    assert json.loads(resp.body) == {"code": 1, "message": "Session ID unknown"}
    assert hub.delivered.get(c.sid, []) == []  # type: ignore[arg-type]
    assert c.session.post_active is False  # type: ignore[union-attr]


def test_sequential_posts_are_fine() -> None:
    hub, c = polling()
    for i in range(5):
        assert c.post_messages(f"m{i}").status == 200
    assert hub.delivered[c.sid] == [f"m{i}" for i in range(5)]  # type: ignore[index]


def test_post_packets_after_close_in_the_same_payload_are_ignored() -> None:
    hub, c = polling()
    resp = c.post(b"4a\x1e1\x1e4b")
    assert resp.status == 200
    assert hub.delivered[c.sid] == ["a"]  # type: ignore[index]
    assert_closed(hub, c, R.CLIENT_DISCONNECT)


# =========================================================================== size limits


def test_oversized_post_is_413_and_the_session_stays() -> None:
    hub, c = polling(ServerConfig(max_http_buffer_size=100))
    req = c.make_request("POST")
    route = hub.server.route(req, hub.now)
    assert isinstance(route, Route)
    assert hub.server.begin_post(route) is None
    resp = hub.server.post_too_large(route)  # the runtime saw byte 101 arrive
    hub.pump()
    assert resp.status == 413
    assert reasons(hub, c) == []
    assert c.post_messages("x" * 50).status == 200, "the session is kept and a later POST works"
    big = c.post(b"4" + b"y" * 100)  # the core checks a whole body too
    assert big.status == 413
    assert c.post_messages("z").status == 200
    hub.app_send(c.session, "alive")  # type: ignore[arg-type]
    assert c.poll() is not None and c.messages == ["alive"]
    assert hub.delivered[c.sid] == ["x" * 50, "z"]  # type: ignore[index]


def test_post_of_exactly_max_size_is_accepted() -> None:
    hub, c = polling(ServerConfig(max_http_buffer_size=100))
    assert c.post(b"4" + b"a" * 99).status == 200
    assert hub.delivered[c.sid] == ["a" * 99]  # type: ignore[index]


@pytest.mark.parametrize(
    "frame",
    ["4" + "x" * 100, b"\x00" * 101, "4" + "€" * 40],  # the last: 41 characters, 121 bytes
    ids=["text", "binary", "utf8-bytes"],
)
def test_oversized_websocket_frame_closes_with_1009(frame: str | bytes) -> None:
    hub, c = websocket(ServerConfig(max_http_buffer_size=100))
    assert c.send_frame(frame) is None
    assert c.ws is not None and c.ws.close_codes == [1009]
    assert_closed(hub, c, R.TRANSPORT_ERROR)
    assert hub.delivered.get(c.sid, []) == []  # type: ignore[arg-type]


def test_websocket_frame_of_exactly_max_size_is_accepted() -> None:
    _hub, c = websocket(ServerConfig(max_http_buffer_size=100))
    assert c.send_frame(b"\x01" * 100) == b"\x01" * 100
    assert c.send_frame("4" + "é" * 49 + "a") is not None  # 1 + 98 + 1 = 100 bytes
    assert c.ws is not None and c.ws.open


def test_oversized_frame_on_the_probe_keeps_the_session() -> None:
    hub, c = polling(ServerConfig(max_http_buffer_size=100))
    c.start_upgrade()
    probe = c.probe
    assert probe is not None
    c.send_frame("2" + "p" * 200, probe)
    assert probe.close_codes == [1009]
    assert c.session is not None and c.session.state is SessionState.OPEN
    assert reasons(hub, c) == []


# =========================================================================== close


def test_client_close_on_polling_ends_the_held_poll_with_noop() -> None:
    """The official suite: "forcefully closes the session" - the pending GET gets ``6``."""
    hub, c = polling()
    assert c.poll() is None
    resp = c.post(b"1")
    assert resp.status == 200
    assert last_poll(c) == NOOP
    assert_closed(hub, c, R.CLIENT_DISCONNECT)
    assert_gone(hub, c)


def test_client_close_on_polling_without_held_poll() -> None:
    hub, c = polling()
    assert c.post(b"1").status == 200
    assert_closed(hub, c, R.CLIENT_DISCONNECT)
    assert_gone(hub, c)


def test_client_close_on_websocket() -> None:
    hub, c = websocket()
    c.send_frame("1")
    assert c.ws is not None and c.ws.close_codes, "the server closes the websocket"
    assert_closed(hub, c, R.CLIENT_DISCONNECT)


def test_server_close_reaches_the_held_poll() -> None:
    hub, c = polling()
    assert c.poll() is None
    assert c.session is not None
    hub.server.send(c.session, "last words")
    hub.app_close(c.session)
    assert_closed(hub, c, R.SERVER_DISCONNECT)
    assert c.held is None
    assert c.messages == ["last words"] and c.got_close, "queued packets, then CLOSE"
    assert_gone(hub, c)


def test_server_close_is_delivered_to_the_next_poll() -> None:
    hub, c = polling()
    s = c.session
    assert s is not None
    for i in range(20):
        hub.server.send(s, f"m{i}")
    hub.app_close(s)
    assert_closed(hub, c, R.SERVER_DISCONNECT)  # the app is told at once
    assert not hub.server.send(s, "too late"), "send() after close() must be refused"
    assert c.post(b"4x").status == 400, "a closing session takes no more input"
    while not c.got_close:
        assert c.poll() is not None, "a closing session answers polls at once"
    assert c.messages == [f"m{i}" for i in range(20)], "queued packets are delivered before CLOSE"
    assert reasons(hub, c) == [R.SERVER_DISCONNECT]
    assert_gone(hub, c)


def test_server_close_without_any_poll_expires() -> None:
    hub, c = polling(ServerConfig(close_timeout=3.0, ping_interval=100, ping_timeout=50))
    s = c.session
    assert s is not None
    hub.app_close(s)
    assert s.sid in hub.server.sessions
    hub.advance(3.1)
    assert s.sid not in hub.server.sessions, "a closing session is dropped after close_timeout"
    assert reasons(hub, c) == [R.SERVER_DISCONNECT]


def test_server_close_on_websocket_sends_close_then_closes() -> None:
    hub, c = websocket()
    s = c.session
    assert s is not None and c.ws is not None
    hub.server.send(s, "bye")
    hub.app_close(s)
    assert c.ws.frames[-2:] == ["4bye", "1"]
    assert c.ws.close_codes == [1000]
    assert_closed(hub, c, R.SERVER_DISCONNECT)
    assert s.sid not in hub.server.sessions


def test_server_close_during_upgrade() -> None:
    hub, c = polling()
    c.start_upgrade()
    c.send_probe()
    probe = c.probe
    assert probe is not None and c.session is not None
    hub.app_close(c.session)
    assert probe.close_codes, "the probe goes with the session"
    assert_closed(hub, c, R.SERVER_DISCONNECT)
    c.poll()
    assert c.got_close


def test_websocket_dropped_by_the_client() -> None:
    hub, c = websocket()
    c.drop_websocket()
    assert_closed(hub, c, R.TRANSPORT_CLOSE)


def test_upgraded_websocket_dropped_by_the_client() -> None:
    hub, c = upgraded()
    c.drop_websocket()
    assert_closed(hub, c, R.TRANSPORT_CLOSE)


def test_close_twice_one_event() -> None:
    hub, c = polling()
    assert c.session is not None
    hub.app_close(c.session)
    hub.app_close(c.session)
    c.post(b"1")
    hub.advance(100)
    assert reasons(hub, c) == [R.SERVER_DISCONNECT]


def test_close_all() -> None:
    hub = Hub()
    clients = [Client(hub) for _ in range(4)]
    clients[0].open_polling()
    clients[1].open_websocket()
    clients[2].open_polling()
    clients[2].start_upgrade()
    clients[3].open_polling()
    clients[3].poll()
    hub.server.close_all(hub.now)
    hub.pump()
    for c in clients:
        assert_closed(hub, c, R.SERVER_DISCONNECT)
    assert clients[1].ws is not None and clients[1].ws.frames[-1] == "1"
    assert clients[3].got_close
    hub.advance(60)
    assert hub.server.sessions == {}
    assert all(len(v) == 1 for v in hub.closed.values())


def test_session_closed_exactly_once_for_each_reason() -> None:
    made: list[tuple[Hub, Client, CloseReason]] = []

    hub, c = polling()
    c.post(b"1")
    made.append((hub, c, R.CLIENT_DISCONNECT))
    hub, c = websocket()
    hub.app_close(c.session)  # type: ignore[arg-type]
    made.append((hub, c, R.SERVER_DISCONNECT))
    hub, c = polling(FAST)
    hub.advance(1)
    made.append((hub, c, R.PING_TIMEOUT))
    hub, c = websocket()
    c.drop_websocket()
    made.append((hub, c, R.TRANSPORT_CLOSE))
    hub, c = polling()
    c.post(b"xyz")
    made.append((hub, c, R.TRANSPORT_ERROR))
    for hub, c, reason in made:
        hub.advance(100)
        c.post(b"1")
        c.poll()
        hub.advance(100)
        events = [e for e in hub.log if isinstance(e, SessionClosed)]
        assert [e.reason for e in events] == [reason], f"{reason}: {events}"
        assert str(reason) == reason.value


def test_bounded_outbound_queue_ends_the_session_once() -> None:
    hub, c = polling(ServerConfig(max_queued_bytes=100))
    s = c.session
    assert s is not None
    assert hub.server.send(s, "x" * 60)
    assert not hub.server.send(s, "y" * 60), "a message past the queue bound is refused"
    hub.pump()
    assert s.closed and len(reasons(hub, c)) == 1
    assert not hub.server.send(s, "z")
    hub.advance(100)
    assert len(reasons(hub, c)) == 1


def test_unencodable_app_text_does_not_take_other_messages_down() -> None:
    """A str with a lone surrogate is not Unicode text and has no UTF-8 form. The core
    may refuse it when the app sends it (False or a ValueError then), but a poll must
    not blow up after it has taken the well-formed messages around it off the queue."""
    hub, c = polling()
    s = c.session
    assert s is not None
    hub.server.send(s, "ok1")
    try:
        hub.server.send(s, "bad\ud800")
    except ValueError:
        pass  # refused up front: fine (UnicodeError is a ValueError)
    hub.server.send(s, "ok2")
    try:
        resp = c.poll()
    except UnicodeError as exc:
        pytest.fail(f"poll() raised {exc!r}; ok1 and ok2 are gone with it (queue: {s.outbox})")
    assert resp is not None
    assert [m for m in c.messages if m != "bad\ud800"] == ["ok1", "ok2"]


def test_close_reason_strings_are_the_seeds() -> None:
    assert {r.value for r in CloseReason} == {
        "client disconnect",
        "server disconnect",
        "ping timeout",
        "transport close",
        "transport error",
    }


def test_close_websocket_event_names_the_socket() -> None:
    hub, c = websocket()
    c.send_frame("x")
    closes = [e for e in hub.log if isinstance(e, CloseWebSocket)]
    assert len(closes) == 1 and c.ws is not None and closes[0].ws is c.ws.ws
    assert closes[0].code != 1000, "a protocol violation is not a normal closure"


def test_payload_helper_matches_protocol_example() -> None:
    # sanity check of the model's own encoder against the protocol README example
    assert client_payload(msg("hello"), msg(b"\x01\x02\x03\x04")) == b"4hello\x1ebAQIDBA=="
