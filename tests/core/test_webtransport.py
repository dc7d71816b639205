"""WebTransport in the core: the stream framing (properties and fuzzing), and whole
sessions over a stream in plain bytes, time advanced by hand.

The framing is PROTOCOL.md's (the Node reference's engine.io-parser stream codec):
a header whose top bit says binary, a 7-bit length or 126 + 16-bit or 127 + 64-bit
big-endian length, then ``<type><data>`` in UTF-8 or the raw bytes of a binary
message; a zero length or one over ``max_http_buffer_size`` is an error.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engineio_sansio import (
    AcceptWebSocket,
    CloseReason,
    CloseWebSocket,
    ConnectRequest,
    MessageReceived,
    ProtocolError,
    Request,
    RequestRefused,
    Respond,
    SendFrames,
    Server,
    ServerConfig,
    SessionClosed,
    Transport,
    Upgraded,
)
from engineio_sansio.framing import StreamDecoder, encode_stream_frame

from .event_contract import PublicOnly

_UTF8_CHARS = st.characters(blacklist_categories=("Cs",))  # text with a UTF-8 form
WT = ServerConfig(transports=["polling", "websocket", "webtransport"], ping_interval=1.0, ping_timeout=0.5)


def driven(config: ServerConfig | None = None) -> Any:
    """A core as these tests drive it: every input's events queued for ``take_events``."""
    return PublicOnly(Server(config or ServerConfig()))


# --- the framing --------------------------------------------------------------

# lengths that reach each of the three header forms, and their edges
_sizes = st.one_of(
    st.integers(1, 125), st.sampled_from([125, 126, 127, 65535, 65536]), st.integers(126, 70000)
)


@st.composite
def frames(draw: Any) -> Any:
    n = draw(_sizes)
    if draw(st.booleans()):
        return draw(st.binary(min_size=n, max_size=n))
    # text: a packet type digit, then ASCII filler to n bytes with some multi-byte text
    head = draw(st.text(st.characters(blacklist_categories=("Cs",)), max_size=8))
    text = draw(st.sampled_from("0123456")) + head
    pad = n - len(text.encode("utf-8"))
    return text + "x" * max(pad, 0)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in points:
        out.append(data[last:p])
        last = p
    out.append(data[last:])
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(frames(), min_size=1, max_size=4), st.lists(st.integers(0, 1 << 20), max_size=12))
def test_framing_round_trips_across_any_chunking(packets: list[Any], cuts: list[int]) -> None:
    wire = b"".join(encode_stream_frame(p) for p in packets)
    decoder = StreamDecoder(1 << 20)
    out: list[Any] = []
    for chunk in _split(wire, cuts):
        out.extend(decoder.feed(chunk))
    assert out == packets
    assert not decoder.mid_packet


@pytest.mark.parametrize(
    ("n", "header"),
    [
        (1, b"\x01"),
        (125, b"\x7d"),
        (126, b"\x7e\x00\x7e"),
        (65535, b"\x7e\xff\xff"),
        (65536, b"\x7f" + (65536).to_bytes(8, "big")),
    ],
)
def test_the_three_length_forms(n: int, header: bytes) -> None:
    assert encode_stream_frame("4" + "a" * (n - 1)).startswith(header)
    assert encode_stream_frame(b"\x00" * n)[: len(header)] == bytes([header[0] | 0x80]) + header[1:]


def test_binary_messages_are_raw_and_text_is_utf8() -> None:
    assert encode_stream_frame(b"\x01\x02") == b"\x82\x01\x02"
    assert encode_stream_frame("4é") == b"\x03" + "4é".encode()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64), st.lists(st.integers(0, 64), max_size=6))
def test_fuzzed_decoding_only_raises_the_protocol_error(data: bytes, cuts: list[int]) -> None:
    decoder = StreamDecoder(50)
    try:
        for chunk in _split(data, cuts):
            for frame in decoder.feed(chunk):
                assert isinstance(frame, (str, bytes)) and len(frame) > 0
    except ProtocolError:
        pass


def test_zero_length_and_oversize_are_errors() -> None:
    with pytest.raises(ProtocolError):
        StreamDecoder(100).feed(b"\x00")
    with pytest.raises(ProtocolError):
        StreamDecoder(100).feed(b"\x80")
    big = StreamDecoder(100)
    with pytest.raises(ProtocolError):
        big.feed(b"\x7e\x00\x65")  # 101: refused from the header, before the body
    assert big.too_big
    with pytest.raises(ProtocolError):
        StreamDecoder(100).feed(b"\x02\xff\xfe")  # not UTF-8


# --- sessions over a stream ------------------------------------------------------


class Stream:
    """One WebTransport session as a runtime would drive it: bytes in, events out."""

    def __init__(self, server: Server, query: str = "", now: float = 0.0) -> None:
        # engine.io-client sends no query on the CONNECT (the first packet says the rest)
        self.server = server
        self.events: list[Any] = []
        params = dict(p.split("=", 1) for p in query.split("&") if p)
        self.rid, _ = server.receive_request(Request("CONNECT", params, {}, "https"), now, webtransport=True)
        self.take()

    def take(self) -> list[Any]:
        evs = list(self.server.take_events())
        for ev in evs:
            if isinstance(ev, SendFrames):
                self.server.frames_sent(ev.request_id)
                evs.extend(self.server.take_events())
        self.events.extend(evs)
        return evs

    def feed(self, data: bytes, now: float = 0.0, more: bool = True) -> list[Any]:
        self.server.receive_body(self.rid, data, more, now)
        return self.take()

    def written(self) -> list[Any]:
        decoder = StreamDecoder(1 << 30)
        out: list[Any] = []
        for ev in self.events:
            if isinstance(ev, SendFrames) and ev.request_id == self.rid:
                assert len(ev.frames) == 1 and isinstance(ev.frames[0], bytes)
                out.extend(decoder.feed(ev.frames[0]))
        return out

    def of(self, kind: type) -> list[Any]:
        return [ev for ev in self.events if isinstance(ev, kind)]


def upgrade_open(sid: str) -> bytes:
    """An upgrading client's first packet: OPEN carrying the session's id."""
    return encode_stream_frame("0" + json.dumps({"sid": sid}))


def opened(config: ServerConfig = WT) -> tuple[Server, Stream, str]:
    server = driven(config)
    s = Stream(server)
    assert s.of(AcceptWebSocket) == [AcceptWebSocket(s.rid, [])]
    (req,) = s.feed(encode_stream_frame("0"))
    assert isinstance(req, ConnectRequest) and req.transport is Transport.WEBTRANSPORT
    server.accept(req.sid, 0.0)
    s.take()
    return server, s, req.sid


def test_new_session_over_a_stream() -> None:
    _server, s, sid = opened()
    (open_frame,) = s.written()
    assert open_frame[0] == "0"
    handshake = json.loads(open_frame[1:])
    assert handshake["sid"] == sid and handshake["upgrades"] == [] and handshake["maxPayload"] == 1_000_000


def test_messages_both_ways_split_and_batched() -> None:
    server, s, sid = opened()
    wire = b"".join(encode_stream_frame(f) for f in ("4hello", b"\x00\x01", "4" + "é" * 200))
    for i in range(len(wire)):  # one byte at a time: every cut of every header form
        s.feed(wire[i : i + 1])
    assert [ev.data for ev in s.of(MessageReceived)] == ["hello", b"\x00\x01", "é" * 200]
    assert server.send(sid, "out") is not None and server.send(sid, b"\xff") is not None
    s.take()
    assert s.written()[1:] == ["4out", b"\xff"]


def test_heartbeat_and_ping_timeout() -> None:
    server, s, sid = opened()
    server.handle_timer(1.0)
    s.take()
    assert s.written()[-1] == "2"
    s.feed(encode_stream_frame("3"), now=1.1)
    server.handle_timer(2.1)
    s.take()
    assert s.written()[-1] == "2"
    server.handle_timer(2.7)  # no pong within ping_timeout
    s.take()
    assert s.of(SessionClosed) == [SessionClosed(sid, CloseReason.PING_TIMEOUT)]
    assert s.written()[-1] == "1"
    assert s.of(CloseWebSocket)[-1].code == 1000


def test_client_close_packet_and_server_close() -> None:
    _server, s, sid = opened()
    s.feed(encode_stream_frame("1"))
    assert s.of(SessionClosed) == [SessionClosed(sid, CloseReason.CLIENT_DISCONNECT)]
    assert s.of(CloseWebSocket)
    server2, s2, sid2 = opened()
    server2.close(sid2, 0.0)
    s2.take()
    assert s2.written()[-1] == "1"
    assert s2.of(SessionClosed) == [SessionClosed(sid2, CloseReason.SERVER_DISCONNECT)]


def test_oversized_frame_closes_with_1009_and_transport_error() -> None:
    _server, s, sid = opened(ServerConfig(transports=["webtransport"], max_http_buffer_size=100))
    s.feed(b"\x7e\x00\x65")  # a 101-byte packet announced: refused before it is read
    assert s.of(CloseWebSocket)[-1].code == 1009
    assert s.of(SessionClosed) == [SessionClosed(sid, CloseReason.TRANSPORT_ERROR)]
    assert not s.feed(encode_stream_frame("4late"))  # nothing more is read


def test_stream_ending_mid_frame_is_a_protocol_error() -> None:
    _server, s, sid = opened()
    s.feed(encode_stream_frame("4hello")[:3], more=False)
    assert s.of(CloseWebSocket)[-1].code == 1002
    assert s.of(SessionClosed) == [SessionClosed(sid, CloseReason.TRANSPORT_ERROR)]


def test_stream_ended_by_the_client_is_a_transport_close() -> None:
    server, s, sid = opened()
    s.feed(b"", more=False)
    assert s.of(SessionClosed) == [SessionClosed(sid, CloseReason.TRANSPORT_CLOSE)]
    assert s.of(CloseWebSocket)[-1] == CloseWebSocket(s.rid, 1000, 0.0)
    server.connection_lost(s.rid, 0.0)  # the runtime's report afterwards is harmless
    assert not server.take_events()


@pytest.mark.parametrize("first", [b"\x024x", b"\x011", b"\x82\x00\x01", b"\x02\xc3\x28", b"\x00"])
def test_a_first_packet_that_is_not_open_is_refused(first: bytes) -> None:
    server = driven(WT)
    s = Stream(server)
    s.feed(first)
    assert s.of(CloseWebSocket) == [CloseWebSocket(s.rid, 1002, 0.0)]
    assert not s.of(ConnectRequest)
    server.connection_lost(s.rid, 0.0)
    assert not server.take_events()


def test_refused_by_the_application() -> None:
    server = driven(WT)
    s = Stream(server)
    (req,) = s.feed(encode_stream_frame("0"))
    server.reject(req.sid)
    (resp,) = s.take()
    assert isinstance(resp, Respond) and resp.request_id == s.rid and resp.status == 401
    assert not s.written()


def test_connect_with_the_query_in_order_is_accepted() -> None:
    s = Stream(driven(WT), "EIO=4&transport=webtransport")
    assert s.events == [AcceptWebSocket(s.rid, [])]


@pytest.mark.parametrize(
    ("config", "query"),
    [
        (ServerConfig(), ""),  # off by default
        (ServerConfig(), "EIO=4&transport=webtransport"),
        (WT, "EIO=3&transport=webtransport"),
        (WT, "EIO=4&transport=websocket"),
    ],
)
def test_connect_refused_before_any_stream(config: ServerConfig, query: str) -> None:
    server = driven(config)
    s = Stream(server, query)
    why, resp = s.events
    assert isinstance(why, RequestRefused) and why.request_id == s.rid
    assert isinstance(resp, Respond) and resp.status == 400


def _poll(server: Server, sid: str | None = None) -> list[Any]:
    q = {"EIO": "4", "transport": "polling"}
    if sid:
        q["sid"] = sid
    server.receive_request(Request("GET", q), 0.0)
    return list(server.take_events())


def test_upgrade_from_polling() -> None:
    server = driven(WT)
    (req,) = _poll(server)
    server.accept(req.sid, 0.0)
    (resp,) = server.take_events()
    assert json.loads(resp.body[1:])["upgrades"] == ["websocket", "webtransport"]
    sid = req.sid
    s = Stream(server)
    s.feed(upgrade_open(sid))
    assert not s.written()
    held = _poll(server, sid)  # a poll held during the upgrade
    s.feed(encode_stream_frame("2probe"))
    assert s.written() == ["3probe"]
    s.feed(encode_stream_frame("5"))
    assert s.of(Upgraded) == [Upgraded(sid, s.rid)]
    assert server.send(sid, "after") is not None
    s.take()
    assert s.written()[-1] == "4after"
    assert held == [] or all(isinstance(e, Respond) for e in held)


def test_upgrade_of_an_unknown_session_or_a_second_stream() -> None:
    server = driven(WT)
    s = Stream(server)
    s.feed(encode_stream_frame('0{"sid":"nope"}'))
    assert s.of(CloseWebSocket) == [CloseWebSocket(s.rid, 1002, 0.0)]
    (req,) = _poll(server)
    server.accept(req.sid, 0.0)
    server.take_events()
    first = Stream(server)
    first.feed(upgrade_open(req.sid))
    second = Stream(server)
    second.feed(upgrade_open(req.sid))
    assert second.of(CloseWebSocket) == [CloseWebSocket(second.rid, 1000, 0.0)]
    assert not first.of(CloseWebSocket)


def test_upgrade_timeout_drops_the_probe_stream() -> None:
    server = driven(ServerConfig(transports=["polling", "webtransport"], upgrade_timeout=0.5))
    (req,) = _poll(server)
    server.accept(req.sid, 0.0)
    server.take_events()
    s = Stream(server)
    s.feed(upgrade_open(req.sid))
    server.handle_timer(0.6)
    s.take()
    assert s.of(CloseWebSocket) == [CloseWebSocket(s.rid, 1000, 0.0)]
    assert not s.of(SessionClosed)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.one_of(st.text(_UTF8_CHARS, min_size=1), st.binary(min_size=1)), max_size=6),
    st.lists(st.integers(0, 1 << 16), max_size=10),
)
def test_messages_through_the_server_survive_any_chunking(messages: list[Any], cuts: list[int]) -> None:
    _server, s, _sid = opened()
    wire = b"".join(encode_stream_frame("4" + m if isinstance(m, str) else m) for m in messages)
    for chunk in _split(wire, cuts):
        s.feed(chunk)
    assert [ev.data for ev in s.of(MessageReceived)] == messages
    assert not s.of(CloseWebSocket)
