"""Enum members and fixed packets as plain module globals, for the hot paths.

On Python 3.11 reading an Enum member through its class goes through
``EnumType.__getattr__``, several times the cost of reading a global; the
functions that run per message or per request import these instead.
"""

from __future__ import annotations

from .machine import Upgrade
from .packet import Packet, PacketType
from .session import SessionState, Transport

PING = Packet(PacketType.PING)
CLOSE = Packet(PacketType.CLOSE)
NOOP = Packet(PacketType.NOOP)

MESSAGE = PacketType.MESSAGE
PING_TYPE = PacketType.PING
PONG_TYPE = PacketType.PONG
OPEN_TYPE = PacketType.OPEN
CLOSE_TYPE = PacketType.CLOSE
NOOP_TYPE = PacketType.NOOP
UPGRADE_TYPE = PacketType.UPGRADE

OPENING = SessionState.OPENING
OPEN = SessionState.OPEN
UPGRADING = SessionState.UPGRADING
CLOSING = SessionState.CLOSING
CLOSED = SessionState.CLOSED

WEBSOCKET = Transport.WEBSOCKET
POLLING = Transport.POLLING
WEBTRANSPORT = Transport.WEBTRANSPORT

PROBE_ANSWERED = Upgrade.PROBE_ANSWERED
