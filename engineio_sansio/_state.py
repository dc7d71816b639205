"""What the parts of the server core share, declared once for the type checker.

:class:`~engineio_sansio.server.Server` is assembled from one mixin per job
(routing and handshake, long polling, websocket and upgrade, closing); each
reads and writes the state declared here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterator

from .config import ServerConfig
from .events import Event
from .session import CloseReason, Session

if TYPE_CHECKING:
    from .packet import Packet


class CoreState:
    """The server core's shared state (set up by ``Server.__init__``)."""

    config: ServerConfig
    sid_generator: Callable[[], str]
    sessions: dict[str, Session]
    events: list[Event]
    _heap: list[tuple[float, int, Session]]
    _seq: Iterator[int]
    _ping_interval: float
    _pong_wait: float
    _max_size: int
    _quarter_size: int
    _last_now: float
    _polling_enabled: bool
    _websocket_enabled: bool

    if TYPE_CHECKING:  # each is defined by one part and called by others

        def _schedule(self, session: Session) -> None:
            raise NotImplementedError

        def _run_due(self, session: Session, now: float) -> None:
            raise NotImplementedError

        def _queue(self, session: Session, packet: Packet, *, event: bool = True) -> bool:
            raise NotImplementedError

        def _control(self, session: Session, packet: Packet, now: float) -> bool:
            raise NotImplementedError

        def _close(self, session: Session, reason: CloseReason, now: float | None) -> None:
            raise NotImplementedError

        def _finish(self, session: Session) -> None:
            raise NotImplementedError

        def _abort_upgrade(self, session: Session, code: int = 1000) -> None:
            raise NotImplementedError

        def handshake_headers(self, session: Session) -> list[tuple[bytes, bytes]]:
            raise NotImplementedError
