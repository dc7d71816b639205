"""Whole sessions through the core: a client model and the core talking in plain bytes,
time advanced by hand, every event performed by the shared hub (``client_model.Hub``).

Every expectation here is a protocol fact (PROTOCOL.md, the Engine.IO v4 protocol
description, the official engine.io-protocol test suite, the Node reference server's
error codes); where the seed (python-engineio) is the oracle the test says so. What a
test knows of a session it knows from the events (``Client.view``) or from what a
client can observe, never from the core's insides.
"""

from __future__ import annotations

import gc
import json
from typing import Any

import pytest

from engineio_sansio import (
    CLIENT_CLOSE_GRACE,
    UNAUTHORIZED_BODY,
    UPGRADE_POLL_GRACE,
    CloseReason,
    CloseWebSocket,
    ConnectRequest,
    Packet,
    PacketType,
    Request,
    Respond,
    Response,
    SendFrames,
    ServerConfig,
    SessionClosed,
    SessionState,
    Transport,
    Upgraded,
)
from engineio_sansio.session import Session

from .client_model import (
    Client,
    Hub,
    client_payload,
    close_in_connect,
    decode_poll_body,
    defer_connect,
    error_json,
    msg,
)

T = PacketType
R = CloseReason
S = SessionState
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
    assert c.start_upgrade().open
    c.send_probe()
    c.complete_upgrade()
    assert c.view.transport is Transport.WEBSOCKET and c.upgraded
    return hub, c


def sid(c: Client) -> str:
    assert c.sid is not None
    return c.sid


def reasons(hub: Hub, c: Client) -> list[CloseReason]:
    return hub.closed.get(sid(c), [])


def assert_closed(hub: Hub, c: Client, reason: CloseReason) -> None:
    assert reasons(hub, c) == [reason], (
        f"expected exactly one SessionClosed({reason.value}), got {reasons(hub, c)}"
    )
    assert sid(c) not in hub.open_sids()
    assert not hub.server.send(sid(c), "after the end"), "send() to a closed session must be refused"


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


def err(resp: Response | None) -> dict[str, Any]:
    assert isinstance(resp, Response), f"expected an error response, got {resp!r}"
    assert resp.status == 400, resp
    return error_json(resp)


def answer(request: Request, *, websocket: bool = False, config: ServerConfig | None = None) -> Response:
    """What a fresh server answers ``request`` with at once (an error, here)."""
    hub = Hub(config)
    resp = hub.response(hub.request(request, websocket=websocket))
    assert resp is not None, f"{request!r} was not answered at once"
    return resp


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
    assert resp is not None and resp.status == 200
    assert resp.body == b"ok"
    assert resp.header(b"content-type") == b"text/html"
    assert hub.delivered[sid(c)] == ["hello", b"\x01\x02\x03\x04", "€"]


def test_post_body_in_parts() -> None:
    """A body arrives in as many parts as the server reads; it is decoded once whole."""
    hub, c = polling()
    body = b"4hello\x1e4w\xe2\x82\xacrld"
    resp = c.post(body, chunks=[body[:3], b"", body[3:10], body[10:]])
    assert resp is not None and resp.status == 200
    assert hub.delivered[sid(c)] == ["hello", "w€rld"], "a character split across parts is whole"


def test_get_batches_queued_packets() -> None:
    hub, c = polling()
    for data in ("test1", "test2", b"\x01\x02\x03\x04", "€"):
        assert hub.app_send(sid(c), data)
    resp = c.poll()
    assert resp is not None and resp.status == 200
    assert resp.body == "4test1\x1e4test2\x1ebAQIDBA==\x1e4€".encode()
    assert c.messages == ["test1", "test2", b"\x01\x02\x03\x04", "€"]


def test_get_answers_at_most_16_packets() -> None:
    """python-engineio's client refuses a payload of more than 16 packets."""
    hub, c = polling()
    sent = [f"m{i}" for i in range(40)]
    for s in sent:
        hub.app_send(sid(c), s)
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
    held = [e for e in hub.log if isinstance(e, Respond) and e.request_id == c.held]
    assert held == [], "a held GET gets no event until it is answered"
    assert hub.app_send(sid(c), "late")
    assert c.held is None
    assert last_poll(c) == [msg("late")]


def test_abandoned_poll_loses_nothing() -> None:
    hub, c = polling()
    assert c.poll() is None
    c.abandon_poll()
    hub.app_send(sid(c), "kept")
    assert c.messages == []
    resp = c.poll()
    assert resp is not None and c.messages == ["kept"]


def test_failed_poll_answer_closes_the_session_rather_than_losing_its_packets() -> None:
    """The runtime could not write a GET's answer that carried packets (``send_failed``):
    the session ends with ``transport error``, so the application knows they were lost."""
    hub, c = polling()
    assert c.poll() is None
    hub.slow_polls = True
    hub.app_send(sid(c), "lost")
    assert c.held is not None and hub.late, "the answer is on its way"
    hub.fail_late()
    assert c.messages == [] and c.failed
    assert_closed(hub, c, R.TRANSPORT_ERROR)


def test_failed_noop_answer_loses_nothing() -> None:
    """A failed NOOP (here: the poll ended by the probe) carried nothing: the session stays."""
    hub, c = polling(ServerConfig(ping_interval=100, ping_timeout=50))
    assert c.poll() is None
    c.start_upgrade()
    hub.slow_polls = True
    c.send_probe()
    assert len(hub.late) == 1
    hub.fail_late()
    assert reasons(hub, c) == []
    c.complete_upgrade()
    hub.app_send(sid(c), "on ws")
    assert c.messages == ["on ws"]


@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_closed_sessions_do_not_outlive_their_close(transport: str) -> None:
    # A closed session's timer entry is stale; if it stayed until its deadline the
    # session (and whatever it holds) would outlive its close by up to a heartbeat,
    # which after a burst of short sessions is most of RSS. The core drops stale
    # entries once they outnumber the live ones (at most 2 per live session + 64).
    gc.collect()
    before = sum(1 for o in gc.get_objects() if type(o) is Session)
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
    assert len(hub.open_sids()) == 10
    gc.collect()
    alive = sum(1 for o in gc.get_objects() if type(o) is Session) - before
    assert alive <= 2 * 10 + 64, f"{alive} Session objects alive for 10 open sessions"
    hub.advance(25.0)
    for c in clients[290:]:
        assert c.view.state is S.OPEN
        if transport == "polling":
            c.poll()
        assert c.pings == 1, "the heartbeat of the survivors still runs"
    hub.advance(25.0)
    assert all(c.view.state is S.CLOSED for c in clients[290:]), "unanswered pings time out"


def test_messages_queued_before_accept_follow_the_open_packet() -> None:
    hub = Hub()
    hub.on_connect = defer_connect
    c = Client(hub)
    rid = c.connect_polling()
    assert c.view.state is S.OPENING
    assert hub.response(rid) is None, "the handshake waits for the application"
    assert hub.app_send(sid(c), "welcome")
    hub.decide_deferred("accept")
    resp = hub.response(rid)
    assert resp is not None and resp.status == 200
    packets = decode_poll_body(resp.body)
    assert [p.type for p in packets] == [T.OPEN, T.MESSAGE] and packets[1].data == "welcome"


def test_sending_from_the_connect_handler() -> None:
    hub = Hub()

    def handler(h: Hub, ev: ConnectRequest) -> None:
        h.app_send(ev.sid, "hello from connect")
        h.accept(ev.sid)

    hub.on_connect = handler
    c = Client(hub)
    c.open_websocket()
    assert c.ws is not None and c.ws.frames[1:] == ["4hello from connect"]


@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_rejected_session_gets_401_and_no_close_event(transport: str) -> None:
    hub = Hub()
    hub.on_connect = lambda h, ev: h.reject(ev.sid, b'"nope"')
    c = Client(hub)
    if transport == "polling":
        resp = hub.response(c.connect_polling())
    else:
        sock = c.connect_websocket()
        resp = sock.refusal
        assert not sock.accepted
    assert resp is not None and resp.status == 401 and resp.body == b'"nope"'
    assert resp.header(b"content-type") == b"application/json"
    assert not hub.core_knows(sid(c))
    assert not [e for e in hub.log if isinstance(e, SessionClosed)], "the app never saw a connect"


def test_reject_without_a_body_says_unauthorized() -> None:
    hub = Hub()
    hub.on_connect = lambda h, ev: h.reject(ev.sid)
    resp = hub.response(Client(hub).connect_polling())
    assert resp is not None and resp.status == 401 and resp.body == UNAUTHORIZED_BODY
    assert json.loads(resp.body) == "Unauthorized"


def test_reject_after_the_app_closed_the_session_in_its_connect_handler() -> None:
    """A connect handler may call disconnect(sid) and then refuse; the runtime then
    calls reject() on a session the core already closed (engineio_asgi does exactly
    this). The answer is the one 401, not an error."""
    hub = Hub()
    hub.on_connect = close_in_connect
    c = Client(hub)
    resp = hub.response(c.connect_polling())
    assert resp is not None and resp.status == 401
    assert not hub.core_knows(sid(c))
    assert not [e for e in hub.log if isinstance(e, SessionClosed)]


@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_client_gone_while_the_application_decides(transport: str) -> None:
    """The client leaves before the connect decision: nothing is answered (nobody is
    there), and a session the application then accepts ends at once (transport close)."""
    hub = Hub()
    hub.on_connect = defer_connect
    c = Client(hub)
    if transport == "polling":
        rid = c.connect_polling()
        hub.connection_lost(rid)
    else:
        rid = c.connect_websocket().rid
        c.drop_websocket()
    assert [type(e) for e in hub.log] == [ConnectRequest]
    hub.decide_deferred("accept")
    assert [
        e for e in hub.log if getattr(e, "request_id", None) == rid and not isinstance(e, ConnectRequest)
    ] == []
    assert_closed(hub, c, R.TRANSPORT_CLOSE)
    hub.finish()


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
    assert c.view.transport is Transport.WEBSOCKET


def test_websocket_messages_both_ways() -> None:
    hub, c = websocket()
    assert c.ws is not None
    hub.app_send(sid(c), "hello")
    hub.app_send(sid(c), b"\x01\x02\x03\x04")
    assert c.ws.frames[1:] == ["4hello", b"\x01\x02\x03\x04"], "binary goes as a raw binary frame"
    assert c.send_frame("4hi") == "hi"
    assert c.send_frame(b"\x00\xff") == b"\x00\xff"
    assert c.send_frame("4") == ""
    assert hub.delivered[sid(c)] == ["hi", b"\x00\xff", ""]


def test_slow_websocket_writer_gets_one_write_at_a_time_in_order() -> None:
    """Until the runtime says a write is done, the core hands out nothing more for that
    websocket; what the app sends meanwhile goes out in order in the next write."""
    hub, c = websocket()
    assert c.ws is not None
    hub.slow_writes = True
    for i in range(5):
        assert hub.app_send(sid(c), f"m{i}")
    writes = [e for e in hub.log if isinstance(e, SendFrames)]
    assert writes[-1].frames == ("4m0",) and len(hub.late) == 1, "one write outstanding"
    hub.catch_up()
    writes = [e for e in hub.log if isinstance(e, SendFrames)]
    assert writes[-1].frames == ("4m1", "4m2", "4m3", "4m4"), "the rest in one write, in order"
    assert c.messages == [f"m{i}" for i in range(5)]


def test_failed_websocket_write_ends_the_session() -> None:
    hub, c = websocket()
    hub.slow_writes = True
    hub.app_send(sid(c), "never arrives")
    hub.fail_late()
    assert c.messages == []
    assert_closed(hub, c, R.TRANSPORT_CLOSE)


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
    probe = c.start_upgrade()
    assert probe.open and c.probe is probe
    assert c.view.state is S.UPGRADING
    c.send_probe()
    assert c.probe_answered, "2probe is answered with 3probe on the websocket"
    assert c.held is None and last_poll(c) == NOOP, "the pending GET ends with a NOOP"
    c.complete_upgrade()
    assert [e for e in hub.log if isinstance(e, Upgraded)] == [(sid(c), probe.rid)]
    assert c.view.transport is Transport.WEBSOCKET and c.view.state is S.OPEN
    hub.app_send(sid(c), "on ws")
    assert c.ws is probe and probe.frames[-1] == "4on ws"
    assert c.send_frame("4hello") == "hello"
    assert reasons(hub, c) == []


def test_packets_sent_during_the_upgrade_are_not_lost_or_reordered() -> None:
    hub, c = polling()
    s = sid(c)
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
    assert hub.delivered[sid(c)] == ["c1", "c2", "c3", "c4", b"c5"]


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
    assert c.view.state is S.OPEN and c.view.transport is Transport.POLLING
    assert reasons(hub, c) == []
    hub.app_send(sid(c), "still here")
    assert c.poll() is not None and c.messages[-1] == "still here"
    assert c.poll() is None, "after the timeout a GET is held again (no probe waiting)"
    assert c.post_messages("me too").status == 200
    # a frame of the dead probe that reaches the core anyway is ignored, and a new upgrade may start
    assert hub.receive_frame(probe.rid, "5") == []
    assert c.view.transport is Transport.POLLING
    c.abandon_poll()
    assert c.start_upgrade().open


def test_upgrade_timeout_without_probe_frame() -> None:
    hub, c = polling(ServerConfig(upgrade_timeout=1.0, ping_interval=100, ping_timeout=50))
    c.start_upgrade()
    probe = c.probe
    assert probe is not None
    hub.advance(1.1)
    assert probe.close_codes
    assert c.view.state is S.OPEN


def test_second_websocket_for_the_same_sid_is_ignored() -> None:
    """The official suite: "ignores WebSocket connection with same sid after upgrade":
    such a websocket is accepted and closed at once; the session does not notice."""
    hub, c = polling()
    c.start_upgrade()
    probe = c.probe
    second = c.open_socket()
    assert second.accepted and second.close_codes == [1000], "a second websocket while upgrading"
    assert probe is not None and probe.open, "it leaves the first probe alone"
    assert c.view.state is S.UPGRADING
    c.send_probe()
    assert c.probe_answered
    c.complete_upgrade()
    third = c.open_socket()
    assert third.accepted and third.close_codes == [1000], "a websocket after the upgrade"
    assert third.frames == []
    assert c.ws is not None and c.ws.open and reasons(hub, c) == []
    assert c.send_frame("4still") == "still"


def test_websocket_with_the_sid_of_a_closing_polling_session_is_refused() -> None:
    hub, c = polling()
    hub.app_close(sid(c))  # lingers in CLOSING until its next poll takes the CLOSE packet
    assert hub.core_knows(sid(c))
    r = c.open_socket()
    assert r.refusal is not None and r.refusal.status == 400 and not r.accepted


@pytest.mark.parametrize("read_after", ["attach", "2probe"])
def test_get_racing_the_upgrade_packet_gets_400(read_after: str) -> None:
    """The official suite sends ``2probe`` and ``5`` and at once a GET; the GET can be
    read before the probe's frames. Held during the upgrade, it gets 400 once ``5`` is
    read, and the websocket carries on."""
    hub, c = polling()
    c.start_upgrade()
    assert c.probe is not None
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
    assert c.poll() is None
    assert hub.server.next_deadline() == pytest.approx(hub.now + UPGRADE_POLL_GRACE)
    hub.app_send(sid(c), "later")
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
    assert probe is not None
    assert c.poll() is None
    hub.advance(UPGRADE_POLL_GRACE * 2)
    assert c.held is not None, "nothing to answer with: the GET stays held"
    hub.advance(1.0)  # the probe times out
    assert probe.close_codes
    hub.app_send(sid(c), "x")
    assert c.held is None and c.messages == ["x"]


def test_upgrade_packet_before_probe_is_refused() -> None:
    hub, c = polling()
    probe = c.start_upgrade()
    c.send_frame("5", probe)
    assert probe.close_codes, "5 before 2probe: the probe is closed"
    assert c.view.transport is Transport.POLLING and c.view.state is S.OPEN
    assert reasons(hub, c) == []
    hub.app_send(sid(c), "polling")
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
    assert r.refusal is not None and r.refusal.status == 400 and c.probe is None


def test_probe_dropped_by_the_client_keeps_polling() -> None:
    hub, c = polling()
    c.start_upgrade()
    c.send_probe()
    assert c.probe is not None
    c.drop_websocket(c.probe)
    assert c.view.state is S.OPEN and c.view.transport is Transport.POLLING
    assert reasons(hub, c) == []
    hub.app_send(sid(c), "x")
    assert c.poll() is not None and c.messages == ["x"]


def test_held_poll_answered_at_the_probe_but_written_late() -> None:
    """The GET held when ``2probe`` arrives is answered with a NOOP at once; a slow
    runtime writes it only after ``5`` (and what was queued meanwhile went on the
    websocket): the client still gets a NOOP and every message, once."""
    hub, c = polling()
    assert c.poll() is None
    probe = c.start_upgrade()
    hub.slow_polls = True
    c.send_probe()
    assert [type(e) for e in hub.late] == [Respond], "the held poll is answered at 2probe"
    assert c.held is not None, "... and the client does not have the answer yet"
    assert hub.app_send(sid(c), "after")
    c.complete_upgrade()
    assert probe.frames[-1] == "4after"
    hub.catch_up()
    assert c.held is None and last_poll(c) == NOOP
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
    assert resp is not None and resp.status == 400, "a pong after the deadline is too late"
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
    assert err(answer(hs_request(q), websocket=websocket_))["code"] == 5


@pytest.mark.parametrize("eio", ["04", "004", "\u0664", "4 "], ids=repr)
def test_eio_must_be_exactly_4(eio: str) -> None:
    """The reference: ``protocol = req._query.EIO === "4" ? 4 : 3`` and v3 is refused with
    code 5; only the exact string "4" selects v4."""
    r = answer(hs_request({"EIO": eio, "transport": "polling"}))
    assert err(r)["code"] == 5, f"EIO={eio!r} was accepted as protocol 4"


@pytest.mark.parametrize("eio", ["\u00b2", "\u2460", "\U0001d7dc\U0001d7dc"], ids=repr)
def test_request_survives_unicode_digit_eio(eio: str) -> None:
    """``str.isdigit()`` is true for these but ``int()`` refuses them; a query like
    ``EIO=%C2%B2`` reaches the core through parse_query."""
    try:
        r = answer(hs_request({"EIO": eio, "transport": "polling"}))
    except ValueError as exc:
        pytest.fail(f"receive_request() raised {exc!r} for EIO={eio!r}; it must answer 400 code 5")
    assert err(r)["code"] == 5


@pytest.mark.parametrize("transport", [None, "tobi", "constructor", "flashsocket", "", "POLLING"])
def test_bad_transport(transport: str | None) -> None:
    q = {"EIO": "4"}
    if transport is not None:
        q["transport"] = transport
    assert err(answer(hs_request(q)))["code"] == 0


def test_disabled_transport_is_unknown() -> None:
    ws_only = ServerConfig(transports=("websocket",))
    assert err(answer(hs_request({"EIO": "4", "transport": "polling"}), config=ws_only))["code"] == 0
    poll_only = ServerConfig(transports=("polling",))
    r = answer(hs_request({"EIO": "4", "transport": "websocket"}), websocket=True, config=poll_only)
    assert err(r)["code"] == 0


def test_transport_must_match_the_request_kind() -> None:
    r = answer(hs_request({"EIO": "4", "transport": "websocket"}), websocket=False)
    assert err(r)["code"] == 3, "transport=websocket on a plain HTTP request (reference: BAD_REQUEST)"
    r = answer(hs_request({"EIO": "4", "transport": "polling"}), websocket=True)
    assert r.status == 400, "a websocket request for polling is refused"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_unknown_sid(method: str) -> None:
    hub, c = polling()
    r = hub.response(hub.request(Request(method, {"EIO": "4", "transport": "polling", "sid": "nope"})))
    assert err(r)["code"] == 1
    ws = hub.response(
        hub.request(Request("GET", {"EIO": "4", "transport": "websocket", "sid": "nope"}), websocket=True)
    )
    assert err(ws)["code"] == 1
    assert reasons(hub, c) == []


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_handshake_must_be_get(method: str) -> None:
    assert err(answer(hs_request({"EIO": "4", "transport": "polling"}, method)))["code"] == 2


def test_unknown_method_on_a_session() -> None:
    hub, c = polling()
    r = hub.response(c.send(c.make_request("PUT")))
    assert r is not None and r.status == 400


@pytest.mark.parametrize("body", [b"abc", b"", b"4ok\x1e", b"4\xff", b"b***"], ids=repr)
def test_bad_payload_closes_the_session(body: bytes) -> None:
    hub, c = polling()
    resp = c.post(body)
    assert resp is not None and resp.status == 400
    assert error_json(resp)["code"] == 3
    assert_closed(hub, c, R.TRANSPORT_ERROR)
    assert_gone(hub, c)


def test_bad_payload_delivers_nothing_of_it() -> None:
    hub, c = polling()
    c.post(b"4first\x1ebnot base64!")
    assert hub.delivered.get(sid(c), []) == [], "a malformed payload is refused as a whole"


def test_concurrent_get() -> None:
    """The official suite: the first GET gets CLOSE, the second 400, the session is gone."""
    hub, c = polling()
    assert c.poll() is None
    second = c.poll()
    assert second is not None and second.status == 400
    assert c.held is None, "the first GET is answered"
    assert [r.status for r in c.poll_responses[-2:]] == [200, 400], "the first, then the second"
    assert decode_poll_body(c.poll_responses[-2].body) == [Packet(T.CLOSE)], (
        "the held poll gets exactly the CLOSE packet"
    )
    assert_closed(hub, c, R.TRANSPORT_ERROR)
    assert_gone(hub, c)


def test_concurrent_post() -> None:
    """A second POST while the first one's body is arriving: 400, the session ends, and
    the first POST is answered at once (400, its body not wanted)."""
    hub, c = polling()
    first = c.start_post()
    assert hub.response(first) is None, "the first POST waits for its body"
    busy = c.post(b"4second")
    assert busy is not None and busy.status == 400
    assert_closed(hub, c, R.TRANSPORT_ERROR)
    late = hub.response(first)
    assert late is not None and late.status == 400, "the first POST is refused as its session is gone"
    assert not hub.feed(first, b"4late"), "and its body is no longer read"
    assert hub.delivered.get(sid(c), []) == []


def test_post_cut_short_by_the_session_closing() -> None:
    """A body still arriving when the app closes the session: once whole it is refused
    with 400 code 1, and nothing of it is delivered."""
    hub, c = polling()
    rid = c.start_post()
    hub.app_close(sid(c))
    assert hub.feed(rid, b"4hel", more=True)
    assert hub.feed(rid, b"lo")
    resp = hub.response(rid)
    assert resp is not None and resp.status == 400
    assert json.loads(resp.body) == {"code": 1, "message": "Session ID unknown"}
    assert hub.delivered.get(sid(c), []) == []


def test_trickling_post_does_not_outlive_its_session() -> None:
    """A client trickling its body must not hold the connection once the session is gone."""
    hub, c = polling(ServerConfig(close_timeout=3.0, ping_interval=100, ping_timeout=50))
    rid = c.start_post()
    hub.feed(rid, b"4a", more=True)
    hub.app_close(sid(c))
    hub.advance(2.9)
    assert hub.response(rid) is None
    hub.advance(0.2)  # the closing session gives up waiting for a poll
    resp = hub.response(rid)
    assert resp is not None and resp.status == 400 and error_json(resp)["code"] == 1
    assert hub.delivered.get(sid(c), []) == []


def test_post_abandoned_by_the_client_delivers_nothing() -> None:
    hub, c = polling()
    resp = c.post(b"4lost\x1e4too", chunks=[b"4lost\x1e", b"4too"], lose_before_end=True)
    assert resp is None
    assert hub.delivered.get(sid(c), []) == [] and reasons(hub, c) == []
    assert c.post_messages("next").status == 200, "a later POST is not concurrent with the gone one"


def test_sequential_posts_are_fine() -> None:
    hub, c = polling()
    for i in range(5):
        assert c.post_messages(f"m{i}").status == 200
    assert hub.delivered[sid(c)] == [f"m{i}" for i in range(5)]


def test_post_packets_after_close_in_the_same_payload_are_ignored() -> None:
    hub, c = polling()
    resp = c.post(b"4a\x1e1\x1e4b")
    assert resp is not None and resp.status == 200
    assert hub.delivered[sid(c)] == ["a"]
    assert_closed(hub, c, R.CLIENT_DISCONNECT)


# =========================================================================== size limits


def test_oversized_post_is_413_and_the_session_stays() -> None:
    hub, c = polling(ServerConfig(max_http_buffer_size=100))
    rid = c.start_post()
    assert hub.feed(rid, b"4" + b"x" * 59, more=True)
    assert hub.feed(rid, b"x" * 50, more=True)  # byte 110: the core answers 413 at once
    resp = hub.response(rid)
    assert resp is not None and resp.status == 413
    assert not hub.feed(rid, b"rest"), "the rest is not wanted"
    assert reasons(hub, c) == []
    assert c.post_messages("x" * 50).status == 200, "the session is kept and a later POST works"
    big = c.post(b"4" + b"y" * 100)  # its Content-Length says too much: refused before it is read
    assert big is not None and big.status == 413
    chunked = c.post(b"4" + b"z" * 100, chunks=[b"4" + b"z" * 50, b"z" * 50])  # no Content-Length
    assert chunked is not None and chunked.status == 413
    assert c.post_messages("z").status == 200
    hub.app_send(sid(c), "alive")
    assert c.poll() is not None and c.messages == ["alive"]
    assert hub.delivered[sid(c)] == ["x" * 50, "z"]


def test_post_of_exactly_max_size_is_accepted() -> None:
    hub, c = polling(ServerConfig(max_http_buffer_size=100))
    resp = c.post(b"4" + b"a" * 99)
    assert resp is not None and resp.status == 200
    resp = c.post(b"4" + b"b" * 99, chunks=[b"4" + b"b" * 9] + [b"b" * 10] * 9)
    assert resp is not None and resp.status == 200
    assert hub.delivered[sid(c)] == ["a" * 99, "b" * 99]


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
    assert hub.delivered.get(sid(c), []) == []


def test_websocket_frame_of_exactly_max_size_is_accepted() -> None:
    _hub, c = websocket(ServerConfig(max_http_buffer_size=100))
    assert c.send_frame(b"\x01" * 100) == b"\x01" * 100
    assert c.send_frame("4" + "é" * 49 + "a") is not None  # 1 + 98 + 1 = 100 bytes
    assert c.ws is not None and c.ws.open


def test_oversized_frame_on_the_probe_keeps_the_session() -> None:
    hub, c = polling(ServerConfig(max_http_buffer_size=100))
    probe = c.start_upgrade()
    c.send_frame("2" + "p" * 200, probe)
    assert probe.close_codes == [1009]
    assert c.view.state is S.OPEN
    assert reasons(hub, c) == []


# =========================================================================== close


def test_client_close_on_polling_ends_the_held_poll_with_noop() -> None:
    """The official suite: "forcefully closes the session" - the pending GET gets ``6``."""
    hub, c = polling()
    assert c.poll() is None
    resp = c.post(b"1")
    assert resp is not None and resp.status == 200
    assert last_poll(c) == NOOP
    assert_closed(hub, c, R.CLIENT_DISCONNECT)
    assert_gone(hub, c)


def test_client_close_on_polling_without_held_poll() -> None:
    hub, c = polling()
    resp = c.post(b"1")
    assert resp is not None and resp.status == 200
    assert_closed(hub, c, R.CLIENT_DISCONNECT)
    assert_gone(hub, c)


def test_client_close_on_websocket() -> None:
    hub, c = websocket()
    c.send_frame("1")
    assert c.ws is not None and c.ws.close_codes == [1000], "the server closes the websocket"
    assert c.ws.close_graces == [CLIENT_CLOSE_GRACE], "after the client's CLOSE, it may close first"
    assert_closed(hub, c, R.CLIENT_DISCONNECT)


def test_server_close_reaches_the_held_poll() -> None:
    hub, c = polling()
    assert c.poll() is None
    hub.app_send(sid(c), "last words")  # answers the held poll
    assert c.poll() is None
    hub.app_close(sid(c))
    assert_closed(hub, c, R.SERVER_DISCONNECT)
    assert c.held is None and last_poll(c) == [Packet(T.CLOSE)], "the held poll carries the CLOSE at once"
    assert c.messages == ["last words"] and c.got_close
    assert_gone(hub, c)


def test_server_close_is_delivered_to_the_next_poll() -> None:
    hub, c = polling()
    for i in range(20):
        hub.app_send(sid(c), f"m{i}")
    hub.app_close(sid(c))
    assert_closed(hub, c, R.SERVER_DISCONNECT)  # the app is told at once
    assert not hub.app_send(sid(c), "too late"), "send() after close() must be refused"
    post = c.post(b"4x")
    assert post is not None and post.status == 400, "a closing session takes no more input"
    while not c.got_close:
        assert c.poll() is not None, "a closing session answers polls at once"
    assert c.messages == [f"m{i}" for i in range(20)], "queued packets are delivered before CLOSE"
    assert reasons(hub, c) == [R.SERVER_DISCONNECT]
    assert_gone(hub, c)


def test_server_close_without_any_poll_expires() -> None:
    hub, c = polling(ServerConfig(close_timeout=3.0, ping_interval=100, ping_timeout=50))
    hub.app_close(sid(c))
    hub.advance(2.9)
    assert hub.core_knows(sid(c)), "a closing session waits for a poll to take its CLOSE"
    hub.advance(0.2)
    assert not hub.core_knows(sid(c)), "a closing session is dropped after close_timeout"
    assert reasons(hub, c) == [R.SERVER_DISCONNECT]
    assert hub.server.next_deadline() is None


def test_server_close_on_websocket_sends_close_then_closes() -> None:
    hub, c = websocket()
    assert c.ws is not None
    hub.app_send(sid(c), "bye")
    hub.app_close(sid(c))
    assert c.ws.frames[-2:] == ["4bye", "1"]
    assert c.ws.close_codes == [1000]
    assert_closed(hub, c, R.SERVER_DISCONNECT)
    assert not hub.core_knows(sid(c))


def test_server_close_during_upgrade() -> None:
    hub, c = polling()
    c.start_upgrade()
    c.send_probe()
    probe = c.probe
    assert probe is not None
    hub.app_close(sid(c))
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
    hub.app_close(sid(c))
    hub.app_close(sid(c))
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
    hub.close_all()
    for c in clients:
        assert_closed(hub, c, R.SERVER_DISCONNECT)
    assert clients[1].ws is not None and clients[1].ws.frames[-1] == "1"
    assert clients[3].got_close
    hub.advance(60)
    assert not any(hub.core_knows(sid(c)) for c in clients)
    assert all(len(v) == 1 for v in hub.closed.values())
    hub.finish()


def test_close_all_refuses_a_handshake_waiting_for_the_application() -> None:
    hub = Hub()
    hub.on_connect = defer_connect
    c = Client(hub)
    rid = c.connect_polling()
    hub.close_all()
    resp = hub.response(rid)
    assert resp is not None and resp.status == 401
    assert reasons(hub, c) == []
    hub.finish()


def test_session_closed_exactly_once_for_each_reason() -> None:
    made: list[tuple[Hub, Client, CloseReason]] = []

    hub, c = polling()
    c.post(b"1")
    made.append((hub, c, R.CLIENT_DISCONNECT))
    hub, c = websocket()
    hub.app_close(sid(c))
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
        hub.finish()


def test_bounded_outbound_queue_ends_the_session_once() -> None:
    hub, c = polling(ServerConfig(max_queued_bytes=100))
    assert hub.app_send(sid(c), "x" * 60)
    # a message past the queue bound ends the session: the send's events say so
    hub.app_send(sid(c), "y" * 60)
    assert c.view.closed and reasons(hub, c) == [CloseReason.TRANSPORT_ERROR]
    assert not hub.app_send(sid(c), "z"), "a closed session takes no more messages"

    hub.advance(100)
    assert len(reasons(hub, c)) == 1


def test_unencodable_app_text_does_not_take_other_messages_down() -> None:
    """A str with a lone surrogate is not Unicode text and has no UTF-8 form. The core
    may refuse it when the app sends it (False or a ValueError then), but a poll must
    not blow up after it has taken the well-formed messages around it off the queue."""
    hub, c = polling()
    hub.app_send(sid(c), "ok1")
    try:
        hub.app_send(sid(c), "bad\ud800")
    except ValueError:
        pass  # refused up front: fine (UnicodeError is a ValueError)
    hub.app_send(sid(c), "ok2")
    try:
        resp = c.poll()
    except UnicodeError as exc:
        pytest.fail(f"poll() raised {exc!r}; ok1 and ok2 are gone with it")
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
    assert len(closes) == 1 and c.ws is not None and closes[0].request_id == c.ws.rid
    assert closes[0].code != 1000, "a protocol violation is not a normal closure"
    assert closes[0].grace == 0, "nothing to wait for: the client sent no CLOSE"


def test_payload_helper_matches_protocol_example() -> None:
    # sanity check of the model's own encoder against the protocol README example
    assert client_payload(msg("hello"), msg(b"\x01\x02\x03\x04")) == b"4hello\x1ebAQIDBA=="
