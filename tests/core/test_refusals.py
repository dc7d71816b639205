"""Refused requests: why each one is refused (``RequestRefused``, before its ``Respond``), and
the application's own refusal of a handshake or an upgrade (``receive_request(refuse=...)``,
python-engineio's ``allow_request``).

The codes and the context of each refusal are those Node's engine.io reports with its
``connection_error`` event (its ``verify()``); the ones Node has no name for are ours and
say so in the docs. The event contract checks on every event of every hub that a
``RequestRefused`` is followed by its ``Respond``, whose JSON body has the same code and
message, and that no error response comes without one.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from engineio_sansio import (
    ConnectRequest,
    ErrorCode,
    Packet,
    PacketType,
    Request,
    RequestRefused,
    ServerConfig,
    Transport,
    asks_for_session,
)

from .client_model import Client, Hub, client_payload, error_json, msg

E = ErrorCode


def _refusal(hub: Hub, rid: int) -> tuple[RequestRefused, int, dict[str, Any]]:
    ev = hub.refusals[rid]
    resp = hub.response(rid)
    if resp is None:  # a websocket's refusal
        resp = hub.sockets[rid].refusal
    assert resp is not None, f"request {rid} was never answered"
    return ev, resp.status, error_json(resp)


def _connected(config: ServerConfig | None = None) -> tuple[Hub, Client]:
    hub = Hub(config)
    c = Client(hub)
    c.open_polling()
    return hub, c


# --- why a request is refused --------------------------------------------------------


def test_unsupported_protocol_version() -> None:
    hub = Hub()
    rid = hub.request(Request("GET", {"EIO": "3x", "transport": "polling"}))
    ev, status, body = _refusal(hub, rid)
    assert (ev.code, ev.message, dict(ev.context)) == (
        E.UNSUPPORTED_PROTOCOL_VERSION,
        "Unsupported protocol version",
        {"protocol": "3x"},
    )
    assert (status, body) == (400, {"code": 5, "message": "Unsupported protocol version"})


@pytest.mark.parametrize("transport", ["tobi", None])
def test_unknown_transport(transport: str | None) -> None:
    hub = Hub()
    query = {"EIO": "4"} if transport is None else {"EIO": "4", "transport": transport}
    rid = hub.request(Request("GET", query))
    ev, status, body = _refusal(hub, rid)
    assert (ev.code, dict(ev.context)) == (E.UNKNOWN_TRANSPORT, {"transport": transport})
    assert (status, body) == (400, {"code": 0, "message": "Transport unknown"})


def test_disabled_transport_is_unknown() -> None:
    hub = Hub(ServerConfig(transports=("polling",)))
    rid = hub.request(Request("GET", {"EIO": "4", "transport": "websocket"}), websocket=True)
    ev, status, _ = _refusal(hub, rid)
    assert (ev.code, dict(ev.context), status) == (E.UNKNOWN_TRANSPORT, {"transport": "websocket"}, 400)


def test_unknown_sid() -> None:
    hub = Hub()
    rid = hub.request(Request("GET", {"EIO": "4", "transport": "polling", "sid": "nope"}))
    ev, status, body = _refusal(hub, rid)
    assert (ev.code, ev.message, dict(ev.context)) == (E.UNKNOWN_SID, "Session ID unknown", {"sid": "nope"})
    assert (status, body) == (400, {"code": 1, "message": "Session ID unknown"})


def test_bad_handshake_method() -> None:
    hub = Hub()
    rid = hub.request(Request("POST", {"EIO": "4", "transport": "polling"}), body=b"4x")
    ev, status, body = _refusal(hub, rid)
    assert (ev.code, dict(ev.context)) == (E.BAD_HANDSHAKE_METHOD, {"method": "POST"})
    assert (status, body) == (400, {"code": 2, "message": "Bad handshake method"})


def test_polling_on_an_upgraded_session_is_a_transport_mismatch() -> None:
    hub, c = _connected()
    c.start_upgrade()
    c.send_probe()
    c.complete_upgrade()
    rid = c.send(c.make_request("GET"))
    ev, status, _ = _refusal(hub, rid)
    assert ev.code is E.BAD_REQUEST and status == 400
    assert dict(ev.context) == {
        "name": "TRANSPORT_MISMATCH",
        "transport": "polling",
        "previousTransport": "websocket",
    }


def test_refused_origin_says_so_in_context_and_body() -> None:
    hub = Hub(ServerConfig(cors_allowed_origins=["https://good.example"]))
    rid = hub.request(
        Request("GET", {"EIO": "4", "transport": "polling"}, {"origin": "https://evil.example"})
    )
    ev, status, body = _refusal(hub, rid)
    reason = "origin 'https://evil.example' not allowed"
    assert (ev.code, ev.message) == (E.FORBIDDEN, "Forbidden")
    assert dict(ev.context) == {
        "name": "ORIGIN_NOT_ALLOWED",
        "origin": "https://evil.example",
        "message": reason,
    }
    assert (status, body) == (403, {"code": 4, "message": reason})


@pytest.mark.parametrize("announced", [True, False])
def test_payload_too_large(announced: bool) -> None:
    hub, c = _connected(ServerConfig(max_http_buffer_size=100))
    body = client_payload(msg("x" * 200))
    headers = {"content-length": str(len(body))} if announced else None
    rid = c.send(c.make_request("POST", headers=headers), body=body)
    ev, status, payload = _refusal(hub, rid)
    assert (ev.code, dict(ev.context)) == (
        E.BAD_REQUEST,
        {"name": "PAYLOAD_TOO_LARGE", "message": "Payload too large"},
    )
    assert (status, payload) == (413, {"code": 3, "message": "Payload too large"})


def test_malformed_post_and_concurrent_poll() -> None:
    hub, c = _connected()
    rid = c.send(c.make_request("POST"), body=b"\xff not a payload")
    assert dict(hub.refusals[rid].context) == {"name": "BAD_PAYLOAD"}
    hub, c = _connected()
    first = c.send(c.make_request("GET"))
    second = c.send(c.make_request("GET"))
    assert first not in hub.refusals
    assert dict(hub.refusals[second].context) == {"name": "CONCURRENT_POLL"}


def test_answered_requests_and_the_applications_401_come_without_one() -> None:
    hub, c = _connected(ServerConfig(cors_allowed_origins="*"))
    c.post_messages("hello")
    c.poll()
    hub.request(Request("OPTIONS", {"EIO": "4", "transport": "polling"}, {"origin": "http://x"}))
    hub.on_connect = lambda hub, ev: hub.reject(ev.sid)
    Client(hub).connect_polling()
    assert hub.refusals == {}
    assert not any(type(ev) is RequestRefused for ev in hub.log)


# --- the application refuses (allow_request) -----------------------------------------


@pytest.mark.parametrize("message", ["", "go away"])
def test_refused_polling_handshake_opens_no_session(message: str) -> None:
    hub = Hub()
    c = Client(hub)
    rid = c.send(c.make_request("GET", with_sid=False), refuse=message)
    ev, status, body = _refusal(hub, rid)
    assert (ev.code, dict(ev.context)) == (E.FORBIDDEN, {"message": message} if message else {})
    assert (status, body) == (403, {"code": 4, "message": message or "Forbidden"})
    assert not any(type(e) is ConnectRequest for e in hub.log)
    assert hub.sessions == {}


def test_refused_websocket_handshake_opens_no_session() -> None:
    hub = Hub()
    c = Client(hub)
    rid = c.send(c.make_request("GET", transport="websocket", with_sid=False), websocket=True, refuse="no")
    ev, status, body = _refusal(hub, rid)
    assert (ev.code, status, body) == (E.FORBIDDEN, 403, {"code": 4, "message": "no"})
    assert not hub.sockets[rid].accepted
    assert hub.sessions == {}


def test_refused_upgrade_leaves_the_session_on_polling() -> None:
    hub, c = _connected()
    rid = c.send(c.make_request("GET", transport="websocket"), websocket=True, refuse="stay on polling")
    _, status, body = _refusal(hub, rid)
    assert (status, body) == (403, {"code": 4, "message": "stay on polling"})
    assert c.view.transport is Transport.POLLING
    c.post_messages("still here")
    assert hub.delivered[c.sid] == ["still here"]  # type: ignore[index]
    c.start_upgrade()  # a later upgrade, allowed, goes through
    c.send_probe()
    c.complete_upgrade()
    assert c.view.transport is Transport.WEBSOCKET


def test_refuse_does_not_touch_polls_posts_or_preflights() -> None:
    hub, c = _connected(ServerConfig(cors_allowed_origins="*"))
    rid = c.send(c.make_request("POST"), body=client_payload(msg("a")), refuse="no")
    assert hub.response(rid).status == 200  # type: ignore[union-attr]
    rid = c.send(c.make_request("GET"), refuse="no")
    hub.app_send(c.sid, "answer")  # type: ignore[arg-type]
    assert hub.response(rid).status == 200  # type: ignore[union-attr]
    preflight = Request("OPTIONS", {"EIO": "4", "transport": "polling"}, {"origin": "http://x"})
    rid = hub.request(preflight, refuse="no")
    assert hub.response(rid).status == 204  # type: ignore[union-attr]
    assert hub.refusals == {}


def test_protocol_errors_win_over_the_applications_refusal() -> None:
    hub = Hub()
    rid = hub.request(Request("GET", {"EIO": "5", "transport": "polling"}), refuse="no")
    assert hub.refusals[rid].code is E.UNSUPPORTED_PROTOCOL_VERSION
    rid = hub.request(
        Request("GET", {"EIO": "4", "transport": "websocket", "sid": "gone"}), websocket=True, refuse="no"
    )
    assert hub.refusals[rid].code is E.UNKNOWN_SID


def test_refused_requests_carry_cors_headers() -> None:
    hub = Hub(ServerConfig(cors_allowed_origins="https://app.example"))
    c = Client(hub, headers={"origin": "https://app.example"})
    rid = c.send(c.make_request("GET", with_sid=False), refuse="")
    resp = hub.response(rid)
    assert resp is not None and resp.status == 403
    assert resp.header(b"access-control-allow-origin") == b"https://app.example"


def test_which_requests_ask_for_a_session() -> None:
    q = {"EIO": "4", "transport": "polling"}
    assert asks_for_session(Request("GET", q), False)
    assert asks_for_session(Request("GET", {**q, "transport": "websocket"}), True)
    assert asks_for_session(Request("GET", {**q, "transport": "websocket", "sid": "s"}), True)
    assert not asks_for_session(Request("GET", {**q, "sid": "s"}), False)
    assert not asks_for_session(Request("POST", {**q, "sid": "s"}), False)
    assert not asks_for_session(Request("OPTIONS", q), False)


def test_packets_flow_after_a_refused_request_on_the_same_session() -> None:
    hub, c = _connected()
    c.send(c.make_request("PUT"))  # method not allowed: refused, the session is untouched
    refused = [ev for ev in hub.log if type(ev) is RequestRefused]
    assert [dict(ev.context) for ev in refused] == [{"name": "METHOD_NOT_ALLOWED", "method": "PUT"}]
    hub.app_send(c.sid, "after")  # type: ignore[arg-type]
    c.poll()
    assert c.messages[-1] == "after"
    assert json.loads(c.handshake_response.body[1:])["sid"] == c.sid  # type: ignore[union-attr]
    assert Packet(PacketType.MESSAGE, "after") in [p for _, p in c.packets]
