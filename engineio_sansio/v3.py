"""Engine.IO v3, for older clients when ``allow_eio3`` is on: its wire format.

One :class:`V3Codec` per kind of client, chosen when a session opens (and
again when it upgrades to websocket), from the request's query:

* ``binary``: the client takes binary data, so a polling response that holds a
  binary message uses the XHR2 binary payload, and websocket frames carry binary
  as bytes. ``b64=1`` (a client that cannot take binary) turns it off, and so
  does JSONP; binary then travels as ``b4<base64>`` inside text.
* ``jsonp``: the callback index of a JSONP client (``j=<n>``): polling responses
  are a script calling ``___eio[n]("<payload>")``, POSTs a form field ``d``.

What v3 changes beyond the wire format (the client pings, the server answers)
is the core's, in ``server.py``.
"""

from __future__ import annotations

import binascii
import json
import re
from typing import Mapping, Sequence
from urllib.parse import parse_qs

from .errors import ErrorCode, ProtocolError
from .packet import TEXT_PLAIN, Data, Packet, PacketType

__all__ = ["V3", "V3Codec", "decode_binary_payload", "decode_text_payload", "utf16_length"]

_TYPES = tuple(PacketType)
_DIGITS = tuple(str(t.value) for t in PacketType)
_MESSAGE = PacketType.MESSAGE
_OCTET_STREAM = (b"content-type", b"application/octet-stream")
_JAVASCRIPT = (b"content-type", b"text/javascript; charset=UTF-8")
_MAX_LENGTH_DIGITS = 10  # a length prefix longer than this is no payload this server would take
_STRING_FLAG = 0
_BINARY_FLAG = 1
_LENGTH_END = 0xFF
_ESCAPED_NEWLINE = re.compile(r"(\\)?\\n")  # \\n was a \n, \n a newline


def _bad(detail: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_REQUEST, detail)


def utf16_length(text: str) -> int:
    """The length of ``text`` in UTF-16 code units (JavaScript's ``length``): a character
    beyond U+FFFF counts two."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _text_packet(text: str) -> Packet:
    """One packet in its text form: ``<type digit><data>``, or ``b<type digit><base64>``."""
    if not text:
        raise _bad("empty packet")
    if text[0] == "b":
        if text[1:2] != "4":
            raise _bad("binary data on a packet that is not a message")
        try:
            return Packet(_MESSAGE, binascii.a2b_base64(text[2:], strict_mode=True))
        except (binascii.Error, ValueError):
            raise _bad("invalid base64 in binary packet") from None
    t = ord(text[0]) - 48
    if t < 0 or t > 6:
        raise _bad("unknown packet type")
    if t == 4:
        return Packet(_MESSAGE, text[1:])
    return Packet(_TYPES[t], text[1:] or None)


def _packet_text(packet: Packet) -> str:
    """A packet's text form (binary as ``b4`` + base64)."""
    data = packet.data
    if data is None:
        return _DIGITS[packet.type]
    if isinstance(data, str):
        return _DIGITS[packet.type] + data
    if packet.type != _MESSAGE:
        raise ValueError("only message packets carry binary data")
    return "b4" + binascii.b2a_base64(data, newline=False).decode("ascii")


def _units_end(text: str, start: int, units: int) -> int:
    """Where the packet of ``units`` UTF-16 code units that starts at ``start`` ends."""
    end = start + units
    chunk = text[start:end]
    if len(chunk) == units and (chunk.isascii() or utf16_length(chunk) == units):
        return end
    count = 0
    end = start
    size = len(text)
    while count < units and end < size:
        count += 2 if ord(text[end]) > 0xFFFF else 1
        end += 1
    if count != units:
        raise _bad("packet length does not match the payload")
    return end


def decode_text_payload(text: str) -> list[Packet]:
    """Decode ``<length>:<packet>...`` (lengths in UTF-16 code units); ``0:`` holds nothing."""
    if not text:
        raise _bad("empty payload")
    packets = []
    i = 0
    size = len(text)
    while i < size:
        colon = text.find(":", i, i + _MAX_LENGTH_DIGITS + 1)
        digits = text[i:colon]
        if colon < 0 or not digits.isascii() or not digits.isdigit():
            raise _bad("invalid packet length")
        start = colon + 1
        end = _units_end(text, start, int(digits))
        if end > start:
            packets.append(_text_packet(text[start:end]))
        i = end
    return packets


def encode_text_payload(packets: Sequence[Packet]) -> str:
    """Encode packets as ``<length>:<packet>...``; no packets is ``0:``."""
    if not packets:
        return "0:"
    parts = []
    for p in packets:
        text = _packet_text(p)
        parts.append(f"{utf16_length(text)}:{text}")
    return "".join(parts)


def decode_binary_payload(body: bytes) -> list[Packet]:
    """Decode the XHR2 binary payload: per packet a flag byte (0 text, 1 binary), the
    length as one byte per decimal digit, ``0xFF``, then the packet."""
    packets = []
    i = 0
    size = len(body)
    while i < size:
        flag = body[i]
        if flag != _STRING_FLAG and flag != _BINARY_FLAG:
            raise _bad("invalid packet flag in binary payload")
        j = i + 1
        length = 0
        while True:
            if j >= size or j - i > _MAX_LENGTH_DIGITS + 1:
                raise _bad("invalid packet length in binary payload")
            digit = body[j]
            j += 1
            if digit == _LENGTH_END:
                break
            if digit > 9:
                raise _bad("invalid packet length in binary payload")
            length = length * 10 + digit
        if j == i + 2:
            raise _bad("missing packet length in binary payload")
        end = j + length
        if end > size or length == 0:
            raise _bad("packet length does not match the binary payload")
        chunk = body[j:end]
        if flag == _STRING_FLAG:
            try:
                packets.append(_text_packet(chunk.decode("utf-8")))
            except UnicodeDecodeError:
                raise _bad("text packet is not valid UTF-8") from None
        elif chunk[0] != _MESSAGE:
            raise _bad("binary data on a packet that is not a message")
        else:
            packets.append(Packet(_MESSAGE, chunk[1:]))
        i = end
    return packets


def encode_binary_payload(packets: Sequence[Packet]) -> bytes:
    """Encode packets in the XHR2 binary payload (text packets as UTF-8, lengths in bytes)."""
    out = bytearray()
    for p in packets:
        data = p.data
        if isinstance(data, bytes):
            if p.type != _MESSAGE:
                raise ValueError("only message packets carry binary data")
            out.append(_BINARY_FLAG)
            raw = b"\x04" + data
        else:
            out.append(_STRING_FLAG)
            raw = (_DIGITS[p.type] if data is None else _DIGITS[p.type] + data).encode("utf-8")
        out.extend(int(c) for c in str(len(raw)))
        out.append(_LENGTH_END)
        out.extend(raw)
    return bytes(out)


def _form_payload(body: bytes) -> str:
    """The payload of a JSONP POST: the form field ``d``, its newlines unescaped.

    The client writes each newline as ``\\n`` and each ``\\n`` it had as ``\\\\n``
    (a form field would turn a newline into CRLF); this undoes both.
    """
    try:
        fields = parse_qs(body.decode("ascii"), keep_blank_values=True, errors="strict", max_num_fields=16)
    except ValueError:  # UnicodeDecodeError, or too many fields
        raise _bad("JSONP body is not a form") from None
    values = fields.get("d")
    if not values:
        raise _bad("JSONP body has no d field")
    return _ESCAPED_NEWLINE.sub(_unescape_newline, values[0])


def _unescape_newline(match: re.Match[str]) -> str:
    return "\\n" if match.group(1) else "\n"


def _jsonp_script(index: bytes, payload: str) -> bytes:
    """``___eio[n]("<payload>");``: the payload as a JavaScript string (JSON, with
    U+2028 and U+2029 escaped: JSON allows them raw, JavaScript strings before ES2019 do not)."""
    js = json.dumps(payload, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return b"___eio[" + index + b"](" + js.encode("utf-8") + b");"


class V3Codec:
    """Engine.IO v3 for one kind of client (see the module's docstring)."""

    version = 3
    __slots__ = ("binary", "jsonp")

    def __init__(self, binary: bool = True, jsonp: bytes | None = None) -> None:
        self.binary = binary
        self.jsonp = jsonp

    def for_request(self, query: Mapping[str, str], websocket: bool) -> V3Codec:
        """The codec for a client that opens a session (or upgrades) with this query."""
        binary = not query.get("b64")  # any value asks for base64, as in Node's server
        if websocket:
            return _BINARY if binary else _BASE64
        j = query.get("j")
        if j is None:
            return _BINARY if binary else _BASE64
        index = "".join(c for c in j[:10] if "0" <= c <= "9")
        if not index:
            raise _bad("invalid JSONP index")
        return V3Codec(binary=False, jsonp=index.encode("ascii"))

    # --- websocket frames ---------------------------------------------------

    def decode_frame(self, frame: Data) -> Packet:
        """A text frame is a packet in its text form; a binary frame a type byte and bytes."""
        if isinstance(frame, str):
            return _text_packet(frame)
        if not frame:
            raise _bad("empty packet")
        if frame[0] != _MESSAGE:
            raise _bad("binary data on a packet that is not a message")
        return Packet(_MESSAGE, bytes(frame[1:]))

    def encode_frame(self, packet: Packet) -> Data:
        """A packet as a websocket frame."""
        data = packet.data
        if data is None or type(data) is str:
            return _packet_text(packet)
        if packet.type != _MESSAGE:
            raise ValueError("only message packets carry binary data")
        return self.encode_message_frame(data)

    def encode_message_frame(self, data: Data) -> Data:
        """A message as a frame: ``4`` + text; binary as ``0x04`` + bytes, or ``b4`` + base64."""
        if type(data) is str:
            return "4" + data
        if self.binary:
            return b"\x04" + data  # type: ignore[operator]
        return "b4" + binascii.b2a_base64(data, newline=False).decode("ascii")  # type: ignore[arg-type]

    # --- polling payloads ---------------------------------------------------

    def decode_payload(self, body: bytes) -> list[Packet]:
        """A POST body: text, the XHR2 binary form (it starts with byte 0 or 1), or a JSONP form."""
        if self.jsonp is not None:
            return decode_text_payload(_form_payload(body))
        if body[:1] in (b"\x00", b"\x01"):
            return decode_binary_payload(body)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise _bad("payload is not valid UTF-8") from None
        return decode_text_payload(text)

    def encode_payload(self, packets: Sequence[Packet]) -> bytes:
        """A GET response body (see :meth:`encode_response` for its content type)."""
        return self.encode_response(packets)[1]

    def encode_response(self, packets: Sequence[Packet]) -> tuple[tuple[bytes, bytes], bytes]:
        """A GET response: its content-type header and body."""
        if self.jsonp is not None:
            return _JAVASCRIPT, _jsonp_script(self.jsonp, encode_text_payload(packets))
        if self.binary and any(type(p.data) is bytes for p in packets):
            return _OCTET_STREAM, encode_binary_payload(packets)
        return TEXT_PLAIN, encode_text_payload(packets).encode("utf-8")


_BINARY = V3Codec(binary=True)
_BASE64 = V3Codec(binary=False)
V3 = _BINARY
"""The v3 codec for a client that takes binary; :meth:`V3Codec.for_request` picks the others."""
