"""A session's states, as tables keyed by (state, input), in the shape h11 uses.

A session runs three machines side by side:

* its life (:data:`SESSION`): opening, open, upgrading, closing, closed;
* its heartbeat (:data:`HEARTBEAT_V4`, or :data:`HEARTBEAT_V3` for a v3 client, which
  pings the server itself): waiting to ping, the pong outstanding, ...;
* its upgrade from polling (:data:`UPGRADE`): probing, the probe answered (waiting
  for ``5``), upgraded.

Each table maps ``state -> {input -> next state}``; the inputs are named after what
happens in the protocol (a packet, a deadline, a call of the application). A state
with a deadline owns it: the session keeps the deadline beside the state, and only
while it is in that state, so a session's next deadline is the earliest deadline of
its current states. Every state change goes through :meth:`Machine.step`; an input
a state has no entry for raises :class:`IllegalTransition` (the runtime's misuse, or
a bug of the core). A client's packet that has no entry is the protocol error it
always was: the caller asks :meth:`Machine.allows` first. Messages never touch the
tables.

What stays outside them is the bookkeeping of requests and connections, not states of
the session: a held poll's grace during an upgrade (``Session.poll_embargo``) and the
NOOP it owes (``noop_pending``), a handshake whose client left (``handshake_lost``), and
each websocket's writing and closing (``busy``, ``closed``, ``done``).
"""

from __future__ import annotations

import contextlib
import enum
from typing import Any, Callable, Generic, Iterator, Mapping, TypeVar

from .errors import LocalProtocolError

__all__ = [
    "HEARTBEAT_V3",
    "HEARTBEAT_V4",
    "MACHINES",
    "SESSION",
    "UPGRADE",
    "Heartbeat",
    "IllegalTransition",
    "Input",
    "Machine",
    "SessionState",
    "Upgrade",
    "observing",
]


class _State(enum.Enum):
    # Members are singletons compared by identity: hash them as objects (Enum's own
    # __hash__ is a Python-level call on 3.11).
    __hash__ = object.__hash__


class SessionState(_State):
    """Where a session is in its life."""

    OPENING = "opening"
    """The protocol accepted the handshake; the application has not decided yet."""
    OPEN = "open"
    UPGRADING = "upgrading"
    """A probe websocket is attached; polling still carries the session."""
    CLOSING = "closing"
    """Closed for the application; a CLOSE packet waits for its transport to carry it."""
    CLOSED = "closed"


class Heartbeat(_State):
    """Where a session's heartbeat is."""

    OFF = "off"
    """Not accepted yet, or closed (or closing)."""
    PING_SCHEDULED = "waiting to ping"
    """v4: the server pings at the deadline."""
    PONG_OUTSTANDING = "pong outstanding"
    """v4: a ping is out; the client's pong is due by the deadline (the ping timeout)."""
    PONG_LATE = "pong late"
    """v4: the pong did not come in time and clients are not monitored: no deadline;
    the next pong restarts the pings."""
    CLIENT_PING_AWAITED = "waiting for the client's ping"
    """v3: the client pings; its next ping is due by the deadline."""
    CLIENT_PING_LATE = "client's ping late"
    """v3: the ping did not come in time and clients are not monitored: no deadline."""


class Upgrade(_State):
    """Where a session's upgrade from polling is."""

    NONE = "none"
    PROBING = "probing"
    """A websocket (or WebTransport stream) arrived with the session's id; ``2probe`` is
    awaited on it. The deadline is the upgrade timeout."""
    PROBE_ANSWERED = "probe answered"
    """``3probe`` went out; ``5`` is awaited (the held poll gets a NOOP). Same deadline."""
    UPGRADED = "upgraded"
    """The websocket carries the session."""


class Input(enum.Enum):
    """What happens to a session: a packet, a deadline passing, a call of the application."""

    ACCEPT = "accept()"
    REJECT = "reject()"
    UPGRADE_REQUEST = "upgrade request"
    """A websocket (or WebTransport stream) with the session's id: the probe."""
    PROBE_PING = "probe ping (2probe)"
    UPGRADE_PACKET = "upgrade (5)"
    UPGRADE_TIMEOUT = "upgrade timeout"
    PROBE_ERROR = "bad frame on the probe"
    PROBE_LOST = "probe closed"
    UPGRADE_CANCELLED = "session ends while upgrading"
    """The session closes (for any reason) with a probe attached."""
    PING_DUE = "ping due"
    PONG = "pong (3)"
    CLIENT_PING = "ping (2) from a v3 client"
    PING_TIMEOUT = "ping timeout"
    PING_TIMEOUT_IGNORED = "ping timeout, clients not monitored"
    SERVER_CLOSE = "close()"
    CLOSE_QUEUED = "CLOSE packet queued"
    """The server ends the session (``close()``, a ping timeout on a websocket) and its
    CLOSE packet waits for the transport to carry it."""
    CLOSE_PACKET = "close (1) from the client"
    TRANSPORT_LOST = "transport closed"
    TRANSPORT_ERROR = "transport error"
    CLOSE_SENT = "CLOSE packet carried"
    CLOSE_TIMEOUT = "close timeout"

    __hash__ = object.__hash__


E = TypeVar("E", bound=_State)
Table = Mapping[E, Mapping[Input, E]]

_observers: list[Callable[[str, str, Any, Input, Any], None]] = []


class IllegalTransition(LocalProtocolError):
    """A bug in the caller or the core: an input the session's current state has no entry for."""


class Machine(Generic[E]):
    """One of a session's machines: its table, its first state, the states with a
    deadline, and the session's attributes that hold its state and that deadline."""

    __slots__ = ("name", "table", "initial", "timed", "_state", "_deadline")

    def __init__(
        self, name: str, table: Table[E], initial: E, timed: frozenset[E], state: str, deadline: str
    ) -> None:
        self.name = name
        self.table = table
        self.initial = initial
        self.timed = timed
        self._state = state
        self._deadline = deadline

    def allows(self, state: E, event: Input) -> bool:
        """Whether ``state`` has an entry for ``event``."""
        return event in self.table[state]

    def step(self, session: Any, event: Input, deadline: float | None = None) -> E:
        """Move ``session`` on ``event``; ``deadline`` is the next state's, if it has one."""
        current = getattr(session, self._state)
        new = self.table[current].get(event)
        if new is None or (deadline is None) is (new in self.timed):
            self._refuse(session, current, event, new, deadline)
        setattr(session, self._state, new)
        setattr(session, self._deadline, deadline)
        if _observers:
            for observer in _observers:
                observer(session.sid, self.name, current, event, new)
        return new  # type: ignore[return-value]

    def _refuse(self, session: Any, current: E, event: Input, new: E | None, deadline: float | None) -> None:
        """Raise for a step that has no entry, or whose deadline does not fit its next state."""
        if new is None:
            raise IllegalTransition(
                f"session {session.sid}: {self.name} {current.value!r} has no entry for {event.value!r}"
            )
        need = "needs a deadline" if deadline is None else "has no deadline"
        raise LocalProtocolError(f"session {session.sid}: {self.name} {new.value!r} {need}")


@contextlib.contextmanager
def observing(observer: Callable[[str, str, Any, Input, Any], None]) -> Iterator[None]:
    """Call ``observer(sid, machine name, state, input, next state)`` on every transition
    made inside the block (for tests: the one place transitions happen)."""
    _observers.append(observer)
    try:
        yield
    finally:
        _observers.remove(observer)


S = SessionState
H = Heartbeat
U = Upgrade
In = Input

_CLOSES = (In.SERVER_CLOSE, In.CLOSE_PACKET, In.TRANSPORT_LOST, In.TRANSPORT_ERROR)
"""Why a session ends, except a ping timeout (only a state with a ping deadline has that)."""
_PROBE_FAILS = (In.UPGRADE_TIMEOUT, In.PROBE_ERROR, In.PROBE_LOST, In.UPGRADE_CANCELLED)

SESSION_TABLE: Table[SessionState] = {
    S.OPENING: {
        In.ACCEPT: S.OPEN,
        In.REJECT: S.CLOSED,
        In.SERVER_CLOSE: S.CLOSED,
        In.CLOSE_PACKET: S.CLOSED,
        In.TRANSPORT_ERROR: S.CLOSED,
    },
    S.OPEN: {
        In.UPGRADE_REQUEST: S.UPGRADING,
        In.CLOSE_QUEUED: S.CLOSING,
        In.PING_TIMEOUT: S.CLOSED,
        **{i: S.CLOSED for i in _CLOSES},
    },
    S.UPGRADING: {In.UPGRADE_PACKET: S.OPEN, **{i: S.OPEN for i in _PROBE_FAILS}},
    S.CLOSING: {
        In.CLOSE_SENT: S.CLOSED,
        In.CLOSE_TIMEOUT: S.CLOSED,
        In.SERVER_CLOSE: S.CLOSED,
        In.TRANSPORT_LOST: S.CLOSED,
    },
    S.CLOSED: {},
}

HEARTBEAT_V4_TABLE: Table[Heartbeat] = {
    H.OFF: {In.ACCEPT: H.PING_SCHEDULED},
    H.PING_SCHEDULED: {In.PING_DUE: H.PONG_OUTSTANDING, **{i: H.OFF for i in _CLOSES}},
    H.PONG_OUTSTANDING: {
        In.PONG: H.PING_SCHEDULED,
        In.PING_TIMEOUT: H.OFF,
        In.PING_TIMEOUT_IGNORED: H.PONG_LATE,
        **{i: H.OFF for i in _CLOSES},
    },
    H.PONG_LATE: {In.PONG: H.PING_SCHEDULED, **{i: H.OFF for i in _CLOSES}},
}

HEARTBEAT_V3_TABLE: Table[Heartbeat] = {
    H.OFF: {In.ACCEPT: H.CLIENT_PING_AWAITED},
    H.CLIENT_PING_AWAITED: {
        In.CLIENT_PING: H.CLIENT_PING_AWAITED,
        In.PING_TIMEOUT: H.OFF,
        In.PING_TIMEOUT_IGNORED: H.CLIENT_PING_LATE,
        **{i: H.OFF for i in _CLOSES},
    },
    H.CLIENT_PING_LATE: {i: H.OFF for i in _CLOSES},
}

UPGRADE_TABLE: Table[Upgrade] = {
    U.NONE: {In.UPGRADE_REQUEST: U.PROBING},
    U.PROBING: {In.PROBE_PING: U.PROBE_ANSWERED, **{i: U.NONE for i in _PROBE_FAILS}},
    U.PROBE_ANSWERED: {In.UPGRADE_PACKET: U.UPGRADED, **{i: U.NONE for i in _PROBE_FAILS}},
    U.UPGRADED: {},
}

SESSION: Machine[SessionState] = Machine(
    "session", SESSION_TABLE, S.OPENING, frozenset({S.CLOSING}), "state", "close_at"
)
HEARTBEAT_V4: Machine[Heartbeat] = Machine(
    "heartbeat",
    HEARTBEAT_V4_TABLE,
    H.OFF,
    frozenset({H.PING_SCHEDULED, H.PONG_OUTSTANDING}),
    "heartbeat",
    "heartbeat_at",
)
HEARTBEAT_V3: Machine[Heartbeat] = Machine(
    "heartbeat (v3)",
    HEARTBEAT_V3_TABLE,
    H.OFF,
    frozenset({H.CLIENT_PING_AWAITED}),
    "heartbeat",
    "heartbeat_at",
)
UPGRADE: Machine[Upgrade] = Machine(
    "upgrade", UPGRADE_TABLE, U.NONE, frozenset({U.PROBING, U.PROBE_ANSWERED}), "upgrade", "upgrade_at"
)
MACHINES: tuple[Machine[Any], ...] = (SESSION, HEARTBEAT_V4, HEARTBEAT_V3, UPGRADE)
