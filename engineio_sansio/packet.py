"""Engine.IO packets and their codecs: websocket frames and long-polling payloads.

A codec object exists per protocol version (``CODECS[4]``), so another version
plugs in here without the session state machine knowing about it.
"""

from __future__ import annotations

import binascii
import enum
from typing import NamedTuple, Protocol, Sequence, Union

from .errors import ErrorCode, ProtocolError

__all__ = [
    "CODECS",
    "SHARED_FRAME_MIN",
    "Codec",
    "Data",
    "Packet",
    "PacketType",
    "V4Codec",
    "shared_text_frame",
]

Data = Union[str, bytes]
"""What a message carries: text or binary."""

RECORD_SEPARATOR = "\x1e"
TEXT_PLAIN = (b"content-type", b"text/plain; charset=UTF-8")


class PacketType(enum.IntEnum):
    """The seven packet types of Engine.IO."""

    OPEN = 0
    CLOSE = 1
    PING = 2
    PONG = 3
    MESSAGE = 4
    UPGRADE = 5
    NOOP = 6


_TYPES = tuple(PacketType)
_DIGITS = tuple(str(t.value) for t in PacketType)
_MESSAGE = PacketType.MESSAGE  # a global read is cheaper than the Enum class attribute on 3.10/3.11


class Packet(NamedTuple):
    """One packet: its type and optional data (text, or bytes for binary messages)."""

    type: PacketType
    data: Data | None = None


class Codec(Protocol):
    """What the core needs from a protocol version's wire format."""

    version: int

    def decode_frame(self, frame: Data) -> Packet:
        """Decode one websocket frame into one packet."""
        ...

    def encode_frame(self, packet: Packet) -> Data:
        """Encode one packet as one websocket frame."""
        ...

    def decode_payload(self, body: bytes) -> list[Packet]:
        """Decode a long-polling request body into packets."""
        ...

    def encode_payload(self, packets: Sequence[Packet]) -> bytes:
        """Encode packets into one long-polling response body."""
        ...

    def encode_message_frame(self, data: Data) -> Data:
        """The websocket frame of one message packet (the hot path of every send)."""
        ...

    def encode_response(self, packets: Sequence[Packet]) -> tuple[tuple[bytes, bytes], bytes]:
        """A long-polling response: its ``content-type`` header and its body."""
        ...


def _bad(detail: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_REQUEST, detail)


class V4Codec:
    """Engine.IO v4: binary frames are raw bytes; payloads are joined by ``\\x1e``."""

    version = 4
    __slots__ = ()

    def decode_frame(self, frame: Data) -> Packet:
        """Decode a websocket frame; a binary frame is a binary message."""
        if isinstance(frame, str):
            return self._decode_text(frame)
        return Packet(_MESSAGE, bytes(frame))

    @staticmethod
    def _decode_text(text: str) -> Packet:
        if not text:
            raise _bad("empty packet")
        t = ord(text[0]) - 48
        if t < 0 or t > 6:
            raise _bad("unknown packet type")
        if t == 4:
            return Packet(_MESSAGE, text[1:])
        return Packet(_TYPES[t], text[1:] or None)

    def encode_frame(self, packet: Packet) -> Data:
        """Encode a packet for a websocket frame (binary messages stay raw bytes)."""
        data = packet.data
        if data is None:
            return _DIGITS[packet.type]
        if type(data) is str:
            if packet.type is _MESSAGE and len(data) >= SHARED_FRAME_MIN:
                return shared_text_frame(data)
            return _DIGITS[packet.type] + data
        if packet.type != _MESSAGE:
            raise ValueError("only message packets carry binary data")
        return data

    def encode_message_frame(self, data: Data) -> Data:
        """A message as a frame: ``4`` + text, or the raw bytes."""
        if type(data) is str:
            return "4" + data if len(data) < SHARED_FRAME_MIN else shared_text_frame(data)
        return data

    def decode_payload(self, body: bytes) -> list[Packet]:
        """Decode a POST body; any malformed byte raises ``ProtocolError``."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise _bad("payload is not valid UTF-8") from None
        packets = []
        for part in text.split(RECORD_SEPARATOR):
            if part[:1] == "b":
                try:
                    raw = binascii.a2b_base64(part[1:], strict_mode=True)
                except (binascii.Error, ValueError):
                    raise _bad("invalid base64 in binary packet") from None
                packets.append(Packet(_MESSAGE, raw))
            else:
                packets.append(self._decode_text(part))
        return packets

    def encode_payload(self, packets: Sequence[Packet]) -> bytes:
        """Encode packets for a GET response, binary as ``b`` + base64."""
        return self.encode_response(packets)[1]

    def encode_response(self, packets: Sequence[Packet]) -> tuple[tuple[bytes, bytes], bytes]:
        """A GET response: always text (``text/plain; charset=UTF-8``), packets joined by
        the record separator (U+001E), binary as ``b`` + base64. (The server calls this
        one: one call per poll.)"""
        global _last_body
        if len(packets) == 1 and packets[0].type is _MESSAGE:
            # one message: what each recipient of a broadcast polls for
            data = packets[0].data
            last = _last_body
            if last[0] is data:
                return TEXT_PLAIN, last[1]
            if type(data) is str:
                body = ("4" + data).encode("utf-8")
            else:
                body = self._join(packets)
            _last_body = (data, body)
            return TEXT_PLAIN, body
        if len(packets) == 1 and type(packets[0].data) is str:
            # one packet of another type with text: a handshake's OPEN packet
            return TEXT_PLAIN, (_DIGITS[packets[0].type] + packets[0].data).encode("utf-8")
        return TEXT_PLAIN, self._join(packets)

    @staticmethod
    def _join(packets: Sequence[Packet]) -> bytes:
        global _last_piece
        parts = []
        for p in packets:
            data = p.data
            if isinstance(data, bytes):
                last = _last_piece
                if last[0] is data:
                    parts.append(last[1])
                    continue
                piece = "b" + binascii.b2a_base64(data, newline=False).decode("ascii")
                _last_piece = (data, piece)
                parts.append(piece)
            elif data is None:
                parts.append(_DIGITS[p.type])
            else:
                parts.append(_DIGITS[p.type] + data)
        return RECORD_SEPARATOR.join(parts).encode("utf-8")


# --- one message's wire forms, shared by the recipients of a broadcast ----------
#
# python-socketio (and any application broadcasting) hands every recipient the same
# data object. str and bytes cannot change, so a wire form found by the identity of
# the data it was made from is always the right one, whichever packet carries it and
# whoever receives it. One entry per form: nothing grows, and the forms of at most
# one message stay alive after it was sent (until the next message replaces them).
SHARED_FRAME_MIN = 1024
"""Text this long (characters) or longer is framed once per broadcast; shorter text
costs less to frame again than to look up."""
_last_frame: tuple[object, str] = (None, "")  # a long text message's websocket frame
_last_body: tuple[object, bytes] = (object(), b"")  # a long-polling body of one message
_last_piece: tuple[object, str] = (None, "")  # a binary message's base64 payload piece


def shared_text_frame(data: str) -> str:
    """The websocket frame of text message ``data``, made once for the same object."""
    global _last_frame
    last = _last_frame
    if last[0] is data:
        return last[1]
    frame = "4" + data
    _last_frame = (data, frame)
    return frame


CODECS: dict[int, Codec] = {4: V4Codec()}
"""Codecs by protocol version (the ``EIO`` query parameter)."""
