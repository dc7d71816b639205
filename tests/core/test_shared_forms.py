"""The wire forms a broadcast shares: whatever the order of packets and recipients,
an encoding is byte for byte what encoding from scratch gives.

The codec keeps the last long text frame, the last one-message polling body and
the last binary payload piece, found by the identity of the data (see
``engineio_sansio.packet``). Here the same data objects come back in every mix:
alone and in payloads, as messages and inside control packets, text and binary.
"""

from __future__ import annotations

import binascii

from hypothesis import example, given
from hypothesis import strategies as st

from engineio_sansio import Packet, PacketType, V4Codec
from engineio_sansio.packet import SHARED_FRAME_MIN

CODEC = V4Codec()
POOL: list[str | bytes] = [
    "short",
    "é" * SHARED_FRAME_MIN,  # long text, shared
    "x" * (SHARED_FRAME_MIN + 7),
    b"\x00\x01" * 700,
    b"\xff",
    "",
]


def reference_payload(packets: list[Packet]) -> bytes:
    parts = []
    for p in packets:
        if isinstance(p.data, bytes):
            parts.append("b" + binascii.b2a_base64(p.data, newline=False).decode())
        else:
            parts.append(str(int(p.type)) + (p.data or ""))
    return "\x1e".join(parts).encode()


def reference_frame(p: Packet) -> str | bytes:
    return p.data if isinstance(p.data, bytes) else str(int(p.type)) + (p.data or "")


packet = st.one_of(
    st.builds(lambda i: Packet(PacketType.MESSAGE, POOL[i]), st.integers(0, len(POOL) - 1)),
    st.builds(
        lambda i, t: Packet(t, POOL[i]),
        st.sampled_from([0, 1, 2, 5]),  # text pool entries only: control packets carry text
        st.sampled_from([PacketType.PING, PacketType.PONG, PacketType.OPEN]),
    ),
    st.just(Packet(PacketType.NOOP)),
)


@given(
    st.lists(
        st.tuples(st.sampled_from(["payload", "frame", "message"]), st.lists(packet, min_size=1, max_size=4)),
        max_size=30,
    )
)
@example(
    [("payload", [Packet(PacketType.MESSAGE, POOL[0])]), ("payload", [Packet(PacketType.PING, POOL[0])])]
)
@example([("message", [Packet(PacketType.MESSAGE, POOL[1])]), ("frame", [Packet(PacketType.PONG, POOL[1])])])
def test_shared_forms_equal_fresh_encodings(steps: list[tuple[str, list[Packet]]]) -> None:
    for how, packets in steps:
        if how == "payload":
            assert CODEC.encode_payload(packets) == reference_payload(packets)
        elif how == "frame":
            for p in packets:
                assert CODEC.encode_frame(p) == reference_frame(p)
        else:
            for p in packets:
                if p.type is PacketType.MESSAGE and p.data is not None:
                    assert CODEC.encode_message_frame(p.data) == reference_frame(p)


def test_a_long_text_message_is_framed_once_for_its_recipients() -> None:
    data = "y" * SHARED_FRAME_MIN
    first = CODEC.encode_message_frame(data)
    assert CODEC.encode_frame(Packet(PacketType.MESSAGE, data)) is first
    assert CODEC.encode_message_frame(data) is first
    other = "y" * SHARED_FRAME_MIN  # equal, another object: framed anew
    assert CODEC.encode_message_frame(other) == first and CODEC.encode_message_frame(other) is not first


def test_a_one_message_payload_is_encoded_once_for_its_recipients() -> None:
    data = b"\x00" * 100
    body = CODEC.encode_payload([Packet(PacketType.MESSAGE, data)])
    assert CODEC.encode_payload([Packet(PacketType.MESSAGE, data)]) is body
    assert CODEC.encode_payload([Packet(PacketType.MESSAGE, bytes(data))]) == body
