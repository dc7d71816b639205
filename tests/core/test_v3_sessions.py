"""Engine.IO v3 sessions through the core (``allow_eio3``), in plain bytes and frames.

The expectations are v3 protocol facts (PROTOCOL.md's "v3 in full", the reference
server's behaviour): the client pings and the server answers; payloads are
``<length>:<packet>`` with UTF-16 lengths, or the XHR2 binary form for a client that
takes binary; JSONP clients get a script and POST a form; websocket binary frames carry
a type byte. Every event goes through the shared hub (``client_model.Hub``).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from engineio_sansio import CloseReason, Packet, PacketType, Request, ServerConfig
from engineio_sansio.v3 import decode_binary_payload, decode_text_payload

from .client_model import Hub, error_json

T = PacketType
V3_ON = ServerConfig(allow_eio3=True, ping_interval=0.3, ping_timeout=0.2)


def get(hub: Hub, **query: str) -> int:
    return hub.request(Request("GET", {"EIO": "3", "transport": "polling", **query}))


def post(hub: Hub, body: bytes, headers: dict[str, str] | None = None, **query: str) -> int:
    request = Request("POST", {"EIO": "3", "transport": "polling", **query}, headers or {})
    return hub.request(request, body=body)


def response(hub: Hub, rid: int) -> tuple[int, bytes | None, bytes]:
    resp = hub.response(rid)
    assert resp is not None, f"request {rid} has no answer"
    return resp.status, resp.header(b"content-type"), resp.body


def open_polling(hub: Hub, **query: str) -> tuple[str, dict[str, Any], bytes | None]:
    status, ctype, body = response(hub, get(hub, **query))
    assert status == 200, body
    if query.get("j") is not None:
        prefix = f"___eio[{query['j']}](".encode()
        assert body.startswith(prefix) and body.endswith(b");"), body
        body = json.loads(body[len(prefix) : -2]).encode()
    packets = decode_text_payload(body.decode())
    assert packets[0].type is T.OPEN
    handshake = json.loads(packets[0].data)  # type: ignore[arg-type]
    return handshake["sid"], handshake, ctype


# --- the option -----------------------------------------------------------------


@pytest.mark.parametrize("eio", ["3", "2", None])
def test_without_allow_eio3_anything_but_4_gets_code_5(eio: str | None) -> None:
    hub = Hub(ServerConfig())
    query = {"transport": "polling"} if eio is None else {"EIO": eio, "transport": "polling"}
    rid = hub.request(Request("GET", query))
    resp = hub.response(rid)
    assert resp is not None and resp.status == 400
    assert error_json(resp) == {"code": 5, "message": "Unsupported protocol version"}
    ws = hub.request(Request("GET", {"EIO": "3", "transport": "websocket"}), websocket=True)
    assert error_json(hub.response(ws))["code"] == 5  # type: ignore[arg-type]


def test_allow_eio3_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="allow_eio3"):
        ServerConfig(allow_eio3="yes")  # type: ignore[arg-type]


def test_v4_is_unchanged_next_to_v3() -> None:
    hub = Hub(V3_ON)
    rid = hub.request(Request("GET", {"EIO": "4", "transport": "polling"}))
    _, ctype, body = response(hub, rid)
    assert ctype == b"text/plain; charset=UTF-8" and body.startswith(b"0{")
    assert "maxPayload" in json.loads(body[1:])


# --- handshake and heartbeat ----------------------------------------------------------


def test_handshake_fields_and_payload_form() -> None:
    hub = Hub(V3_ON)
    sid, handshake, ctype = open_polling(hub)
    assert ctype == b"text/plain; charset=UTF-8"
    assert handshake == {"sid": sid, "upgrades": ["websocket"], "pingInterval": 300, "pingTimeout": 200}


def test_the_client_pings_and_the_server_answers_with_the_same_data() -> None:
    hub = Hub(V3_ON)
    sid, _, _ = open_polling(hub)
    poll = get(hub, sid=sid)
    assert hub.response(poll) is None  # the server never pings a v3 client
    hub.advance(0.29)
    assert hub.response(poll) is None
    assert response(hub, post(hub, b"1:2", sid=sid))[2] == b"ok"
    assert response(hub, poll)[2] == b"1:3"
    assert response(hub, post(hub, b"6:2hello", sid=sid))[2] == b"ok"
    assert response(hub, get(hub, sid=sid))[2] == b"6:3hello"


def test_the_session_times_out_interval_plus_timeout_after_the_last_ping() -> None:
    hub = Hub(V3_ON)
    sid, _, _ = open_polling(hub)
    hub.advance(0.45)
    post(hub, b"1:2", sid=sid)
    get(hub, sid=sid)  # takes the pong
    hub.advance(0.49)  # 0.5 s after the ping: still alive
    assert hub.closed[sid] == []
    hub.advance(0.02)
    assert hub.closed[sid] == [CloseReason.PING_TIMEOUT]


def test_monitor_clients_off_never_times_a_v3_session_out() -> None:
    hub = Hub(ServerConfig(allow_eio3=True, ping_interval=0.3, ping_timeout=0.2, monitor_clients=False))
    sid, _, _ = open_polling(hub)
    hub.advance(10)
    assert hub.closed[sid] == []


def test_a_pong_from_a_v3_client_is_a_protocol_error() -> None:
    hub = Hub(V3_ON)
    sid, _, _ = open_polling(hub)
    status, _, _ = response(hub, post(hub, b"1:3", sid=sid))
    assert status == 400
    assert hub.closed[sid] == [CloseReason.TRANSPORT_ERROR]


# --- payloads -------------------------------------------------------------------------


def test_lengths_count_utf16_code_units() -> None:
    hub = Hub(V3_ON)
    sid, _, _ = open_polling(hub)
    # "4€" is 2 units (3 UTF-8 bytes for the €), "4😀" is 3 units (one character)
    body = "2:4€3:4😀5:4a😀b".encode()
    assert response(hub, post(hub, body, sid=sid))[2] == b"ok"
    assert hub.delivered[sid] == ["€", "😀", "a😀b"]
    hub.app_send(sid, "€")
    hub.app_send(sid, "😀!")
    assert response(hub, get(hub, sid=sid))[2] == "2:4€4:4😀!".encode()


@pytest.mark.parametrize("body", ["3:4€", "1:4😀", "2:4😀", "x:4a", "2:4", "", "12345678901:4", "1:9", "2:b"])
def test_a_malformed_text_payload_is_a_400_and_ends_the_session(body: str) -> None:
    hub = Hub(V3_ON)
    sid, _, _ = open_polling(hub)
    status, _, _ = response(hub, post(hub, body.encode(), sid=sid))
    assert status == 400
    assert hub.closed[sid] == [CloseReason.TRANSPORT_ERROR]


def test_b64_client_gets_binary_as_base64_in_text() -> None:
    hub = Hub(V3_ON)
    sid, _, _ = open_polling(hub, b64="1")
    hub.app_send(sid, b"\x01\x02\x03")
    hub.app_send(sid, "x")
    status, ctype, body = response(hub, get(hub, sid=sid))
    assert (status, ctype, body) == (200, b"text/plain; charset=UTF-8", b"6:b4AQID2:4x")
    assert response(hub, post(hub, b"6:b4AQID", sid=sid))[2] == b"ok"
    assert hub.delivered[sid] == [b"\x01\x02\x03"]


def test_binary_client_gets_the_xhr2_binary_payload() -> None:
    hub = Hub(V3_ON)
    sid, _, _ = open_polling(hub)
    hub.app_send(sid, "€")
    hub.app_send(sid, b"\xff\x00")
    status, ctype, body = response(hub, get(hub, sid=sid))
    assert (status, ctype) == (200, b"application/octet-stream")
    # "4€" is 4 bytes in UTF-8; the binary packet is its type byte and 2 bytes
    assert body == b"\x00\x04\xff4\xe2\x82\xac" + b"\x01\x03\xff\x04\xff\x00"
    # text only: the text form, even for a client that takes binary
    hub.app_send(sid, "only text")
    assert response(hub, get(hub, sid=sid))[1:] == (b"text/plain; charset=UTF-8", b"10:4only text")


def test_binary_post_bodies_are_accepted() -> None:
    hub = Hub(V3_ON)
    sid, _, _ = open_polling(hub)
    body = b"\x01\x04\xff\x04abc" + b"\x00\x02\xff4z" + b"\x01\x01\x02\xff\x04" + bytes(11)
    headers = {"content-type": "application/octet-stream"}
    assert response(hub, post(hub, body, headers, sid=sid))[2] == b"ok"
    assert hub.delivered[sid] == [b"abc", "z", bytes(11)]


def test_jsonp_polling_answers_a_script_and_takes_a_form() -> None:
    hub = Hub(V3_ON)
    sid, handshake, ctype = open_polling(hub, j="0")
    assert ctype == b"text/javascript; charset=UTF-8"
    assert handshake["sid"] == sid
    hub.app_send(sid, 'say "\u2028" and \\ and\nbye')
    hub.app_send(sid, b"\x00")
    status, ctype, body = response(hub, get(hub, sid=sid, j="0"))
    assert (status, ctype) == (200, b"text/javascript; charset=UTF-8")
    assert b"\xe2\x80\xa8" not in body and b"\\u2028" in body  # raw U+2028 ends a JavaScript string
    assert body.startswith(b"___eio[0](") and body.endswith(b");")
    payload = json.loads(body[len(b"___eio[0](") : -2])
    assert decode_text_payload(payload) == [
        Packet(T.MESSAGE, 'say "\u2028" and \\ and\nbye'),
        Packet(T.MESSAGE, b"\x00"),
    ]
    # the client escapes a newline as \n and a \n as \\n, then form-encodes the field
    sent = "4a\nb\\nc€"
    escaped = sent.replace("\\n", "\\\n").replace("\n", "\\n")
    form = ("d=" + quote(f"{len(sent)}:{escaped}")).encode()
    headers = {"content-type": "application/x-www-form-urlencoded"}
    assert response(hub, post(hub, form, headers, sid=sid, j="0"))[2] == b"ok"
    assert hub.delivered[sid] == ["a\nb\\nc€"]


def test_jsonp_index_is_digits_only() -> None:
    hub = Hub(V3_ON)
    status, _, body = response(hub, get(hub, j="alert"))
    assert status == 400, body
    _, _, body = response(hub, get(hub, j="1);x(2"))
    assert body.startswith(b"___eio[12](")


def test_a_jsonp_post_that_is_no_form_is_a_400() -> None:
    hub = Hub(V3_ON)
    sid, _, _ = open_polling(hub, j="3")
    status, _, _ = response(hub, post(hub, b"1:2", sid=sid, j="3"))
    assert status == 400
    assert hub.closed[sid] == [CloseReason.TRANSPORT_ERROR]


# --- websocket --------------------------------------------------------------------------


def test_websocket_binary_frames_carry_a_type_byte() -> None:
    hub = Hub(V3_ON)
    rid = hub.request(Request("GET", {"EIO": "3", "transport": "websocket"}), websocket=True)
    sock = hub.sockets[rid]
    handshake = json.loads(sock.frames[0][1:])
    sid = handshake["sid"]
    assert set(handshake) == {"sid", "upgrades", "pingInterval", "pingTimeout"}
    hub.receive_frame(rid, b"\x04\x01\x02")
    hub.receive_frame(rid, "4text")
    hub.receive_frame(rid, "b4AQI=")
    assert hub.delivered[sid] == [b"\x01\x02", "text", b"\x01\x02"]
    hub.app_send(sid, b"\x09")
    hub.app_send(sid, "t")
    hub.receive_frame(rid, "2")
    assert sock.frames[1:] == [b"\x04\x09", "4t", "3"]
    hub.receive_frame(rid, b"\x02")  # binary data on a ping
    assert sock.close_codes == [1002] and hub.closed[sid] == [CloseReason.TRANSPORT_ERROR]


def test_websocket_b64_client_gets_base64_text_frames() -> None:
    hub = Hub(V3_ON)
    rid = hub.request(Request("GET", {"EIO": "3", "transport": "websocket", "b64": "1"}), websocket=True)
    sock = hub.sockets[rid]
    sid = json.loads(sock.frames[0][1:])["sid"]
    hub.app_send(sid, b"\x01\x02\x03")
    assert sock.frames[1:] == ["b4AQID"]


def test_jsonp_session_upgrades_to_binary_websocket_frames() -> None:
    hub = Hub(V3_ON)
    sid, _, _ = open_polling(hub, j="0")
    poll = get(hub, sid=sid, j="0")
    probe = hub.request(Request("GET", {"EIO": "3", "transport": "websocket", "sid": sid}), websocket=True)
    hub.receive_frame(probe, "2probe")
    assert hub.sockets[probe].frames == ["3probe"]
    assert response(hub, poll)[1:] == (b"text/javascript; charset=UTF-8", b'___eio[0]("1:6");')
    hub.receive_frame(probe, "5")
    hub.app_send(sid, b"\x07")
    hub.receive_frame(probe, "2")
    assert hub.sockets[probe].frames[1:] == [b"\x04\x07", "3"]
    assert hub.closed[sid] == []


def test_a_v3_session_refuses_v4_requests() -> None:
    hub = Hub(V3_ON)
    sid, _, _ = open_polling(hub)
    rid = hub.request(Request("GET", {"EIO": "4", "transport": "polling", "sid": sid}))
    assert response(hub, rid)[0] == 400


def test_decoders_agree_with_the_reference_examples() -> None:
    # engine.io-parser 2's own examples: "11:hello world2:hi" and 1 3 255 1 2 3
    assert decode_text_payload("12:4hello world3:4hi") == [
        Packet(T.MESSAGE, "hello world"),
        Packet(T.MESSAGE, "hi"),
    ]
    assert decode_text_payload("0:") == []
    assert decode_binary_payload(bytes([1, 3, 255, 4, 2, 3])) == [Packet(T.MESSAGE, b"\x02\x03")]
