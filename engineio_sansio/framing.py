"""The WebTransport stream framing of Engine.IO v4: one header per packet.

A header's top bit says the packet is binary; its 7 low bits hold the length
when it is under 126, else 126 (a 16-bit big-endian length follows) or 127 (a
64-bit one). The packet follows: ``<type digit><data>`` in UTF-8 for a text
packet, the raw bytes of a binary message. A zero length, or one over the size
limit, is a protocol error.

Decoded packets come out as the websocket frames they would be (``str`` for
text, ``bytes`` for a binary message), so both transports share one codec.
"""

from __future__ import annotations

from .errors import ErrorCode, ProtocolError
from .packet import Data

__all__ = ["BINARY_FLAG", "StreamDecoder", "encode_stream_frame"]

BINARY_FLAG = 0x80
_LENGTH_16 = 126
_LENGTH_64 = 127


def encode_stream_frame(frame: Data) -> bytes:
    """One packet as it goes on a WebTransport stream: header, then the packet."""
    if isinstance(frame, str):
        payload = frame.encode("utf-8")
        flag = 0
    else:
        payload = frame
        flag = BINARY_FLAG
    n = len(payload)
    if n < _LENGTH_16:
        return bytes((flag | n,)) + payload
    if n < 0x10000:
        return bytes((flag | _LENGTH_16,)) + n.to_bytes(2, "big") + payload
    return bytes((flag | _LENGTH_64,)) + n.to_bytes(8, "big") + payload


class StreamDecoder:
    """Cuts the bytes of a WebTransport stream into packets, chunk by chunk.

    A packet may be split across any number of chunks and a chunk may hold
    several packets. :meth:`feed` raises :class:`ProtocolError` on a zero
    length, a length over ``limit`` (as soon as the header says so, before
    the packet is read) or text that is not UTF-8; the stream is then of no
    further use.
    """

    __slots__ = ("_buf", "_limit", "too_big")

    def __init__(self, limit: int) -> None:
        self._buf = bytearray()
        self._limit = limit
        self.too_big = False
        """True once :meth:`feed` failed on a length over the limit (not a malformed stream)."""

    @property
    def mid_packet(self) -> bool:
        """Whether bytes of an unfinished packet are waiting (a stream ending now is cut short)."""
        return bool(self._buf)

    def feed(self, chunk: bytes) -> list[Data]:
        """The packets ``chunk`` completes, in order (text as ``str``, binary as ``bytes``)."""
        buf = self._buf
        buf += chunk
        out: list[Data] = []
        pos = 0
        end = len(buf)
        limit = self._limit
        while pos < end:
            first = buf[pos]
            n = first & 0x7F
            start = pos + 1
            if n == _LENGTH_16:
                start = pos + 3
                if start > end:
                    break
                n = int.from_bytes(buf[pos + 1 : start], "big")
            elif n == _LENGTH_64:
                start = pos + 9
                if start > end:
                    break
                n = int.from_bytes(buf[pos + 1 : start], "big")
            if n == 0:
                raise ProtocolError(ErrorCode.BAD_REQUEST, "empty packet on the stream")
            if n > limit:
                self.too_big = True
                raise ProtocolError(ErrorCode.BAD_REQUEST, "packet over max_http_buffer_size", 413)
            stop = start + n
            if stop > end:
                break
            payload = bytes(buf[start:stop])
            if first & BINARY_FLAG:
                out.append(payload)
            else:
                try:
                    out.append(payload.decode("utf-8"))
                except UnicodeDecodeError:
                    raise ProtocolError(ErrorCode.BAD_REQUEST, "text packet is not UTF-8") from None
            pos = stop
        if pos:
            del buf[:pos]
        return out
