"""The v4 packet and payload codecs, driven with literal frames and bytes.

Expected encodings come from the Engine.IO protocol description (v4): a packet is
its type digit followed by its data; websocket binary frames are the raw bytes; a
polling payload joins packets with ``\\x1e`` and writes binary as ``b`` + base64
(the protocol README's own example: ``4hello\\x1ebAQIDBA==``).
"""

from __future__ import annotations

import pytest

from engineio_sansio import CODECS, ErrorCode, Packet, PacketType, ProtocolError, V4Codec

C = V4Codec()
T = PacketType


def test_codec_table_has_v4() -> None:
    assert isinstance(CODECS[4], V4Codec)
    assert CODECS[4].version == 4


# --------------------------------------------------------------------------- frames

FRAME_CASES = [
    (Packet(T.OPEN, '{"sid":"abc"}'), '0{"sid":"abc"}'),
    (Packet(T.CLOSE), "1"),
    (Packet(T.PING), "2"),
    (Packet(T.PING, "probe"), "2probe"),
    (Packet(T.PONG), "3"),
    (Packet(T.PONG, "probe"), "3probe"),
    (Packet(T.MESSAGE, "hello"), "4hello"),
    (Packet(T.MESSAGE, "€ \x1e 😀"), "4€ \x1e 😀"),
    (Packet(T.MESSAGE, ""), "4"),
    (Packet(T.UPGRADE), "5"),
    (Packet(T.NOOP), "6"),
    (Packet(T.MESSAGE, b"\x01\x02\x03\x04"), b"\x01\x02\x03\x04"),
    (Packet(T.MESSAGE, b""), b""),
]


@pytest.mark.parametrize(("packet", "frame"), FRAME_CASES)
def test_encode_frame(packet: Packet, frame: str | bytes) -> None:
    out = C.encode_frame(packet)
    assert type(out) is type(frame), f"{packet} must be a {type(frame).__name__} frame, got {out!r}"
    assert out == frame


@pytest.mark.parametrize(("packet", "frame"), FRAME_CASES)
def test_decode_frame(packet: Packet, frame: str | bytes) -> None:
    assert C.decode_frame(frame) == packet


def test_binary_frame_is_a_message_whatever_its_first_byte() -> None:
    # a binary frame has no type digit: b"4x" is the two bytes, b"1" is not a CLOSE
    assert C.decode_frame(b"4x") == Packet(T.MESSAGE, b"4x")
    assert C.decode_frame(b"1") == Packet(T.MESSAGE, b"1")


def test_decode_frame_accepts_bytearray_and_memoryview() -> None:
    # a runtime may hand over a bytearray or memoryview from its websocket library
    assert C.decode_frame(bytearray(b"\x00\xff")) == Packet(T.MESSAGE, b"\x00\xff")  # type: ignore[arg-type]
    assert C.decode_frame(memoryview(b"ab")) == Packet(T.MESSAGE, b"ab")  # type: ignore[arg-type]
    assert type(C.decode_frame(bytearray(b"x")).data) is bytes  # type: ignore[arg-type]


def test_encode_frame_refuses_binary_control_packet() -> None:
    with pytest.raises(ValueError):
        C.encode_frame(Packet(T.PING, b"x"))


@pytest.mark.parametrize(
    "frame",
    ["", "7", "9x", "a", "abc", "b", "bAQID", "/", "\x00", "-1", "\u0664hello", "\u00b2", " 4x"],
    ids=repr,
)
def test_decode_frame_rejects_malformed_text(frame: str) -> None:
    with pytest.raises(ProtocolError) as info:
        C.decode_frame(frame)
    assert info.value.code is ErrorCode.BAD_REQUEST
    assert info.value.status == 400


# --------------------------------------------------------------------------- payloads


PAYLOAD_CASES = [
    ([Packet(T.MESSAGE, "hello")], b"4hello"),
    ([Packet(T.MESSAGE, "hello"), Packet(T.MESSAGE, b"\x01\x02\x03\x04")], b"4hello\x1ebAQIDBA=="),
    (
        [Packet(T.MESSAGE, "test1"), Packet(T.MESSAGE, "test2"), Packet(T.MESSAGE, "test3")],
        b"4test1\x1e4test2\x1e4test3",
    ),
    ([Packet(T.PING), Packet(T.NOOP)], b"2\x1e6"),
    ([Packet(T.CLOSE)], b"1"),
    ([Packet(T.PONG)], b"3"),
    ([Packet(T.MESSAGE, "€")], "4€".encode()),
    ([Packet(T.MESSAGE, b"")], b"b"),
    ([Packet(T.MESSAGE, b"\xff" * 3)], b"b////"),
    ([Packet(T.MESSAGE, ""), Packet(T.MESSAGE, "")], b"4\x1e4"),
]


@pytest.mark.parametrize(("packets", "body"), PAYLOAD_CASES)
def test_encode_payload(packets: list[Packet], body: bytes) -> None:
    assert C.encode_payload(packets) == body


@pytest.mark.parametrize(("packets", "body"), PAYLOAD_CASES)
def test_decode_payload(packets: list[Packet], body: bytes) -> None:
    assert C.decode_payload(body) == packets


def test_payload_binary_is_base64_not_raw() -> None:
    body = C.encode_payload([Packet(T.MESSAGE, b"\x1e\x00\xff")])
    assert b"\x1e" not in body, "a record separator inside binary data must not reach the payload"
    assert body == b"bHgD/"


@pytest.mark.parametrize(
    "body",
    [
        b"",  # no packet at all
        b"abc",  # the official suite's "invalid packet format"
        b"4a\x1e",  # trailing separator: an empty packet
        b"\x1e4a",
        b"4a\x1e\x1e4b",
        b"7",
        b"4\xff",  # not UTF-8
        b"\xc3",  # truncated UTF-8
        b"b!!!!",  # not base64
        b"b\xc3\xa9",  # non-ASCII in base64
        b"4ok\x1eb@@@@",  # one bad packet spoils the payload
    ],
    ids=repr,
)
def test_decode_payload_rejects_malformed(body: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        C.decode_payload(body)
    assert info.value.code is ErrorCode.BAD_REQUEST
    assert info.value.status == 400


def test_protocol_error_message_never_echoes_input() -> None:
    evil = b"<script>alert(1)</script>"
    with pytest.raises(ProtocolError) as info:
        C.decode_payload(evil)
    assert "script" not in info.value.message
    assert info.value.message == "Bad request"
