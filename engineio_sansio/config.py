"""Server configuration: the seed's constructor options, validated once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence, Union

__all__ = ["CookieOption", "CorsOrigins", "ServerConfig"]

CorsOrigins = Union[None, str, Sequence[str], Callable[..., Any]]
"""``None`` (same origin), ``'*'``, one origin, a list (``[]`` disables CORS), or a predicate."""

CookieOption = Union[None, str, Mapping[str, Any]]
"""``None``, a cookie name, or a dict with ``name`` and attributes."""

VALID_TRANSPORTS = ("polling", "websocket")


def _takes_two(fn: Callable[..., Any]) -> bool:
    import inspect

    try:
        inspect.signature(fn).bind("origin", "request")
    except TypeError:
        return False
    except ValueError:  # no signature (some builtins): assume the documented one-argument form
        return False
    return True


@dataclass(frozen=True)
class ServerConfig:
    """Everything the protocol core needs to know; times are in seconds.

    Build it with :meth:`from_options` to accept the seed's argument forms
    (``ping_interval`` as a number or an ``(interval, grace)`` pair, and so on).
    """

    ping_interval: float = 25.0
    """Seconds between the server's pings."""
    ping_interval_grace: float = 0.0
    """Added to the advertised ``pingInterval``, so clients wait that much longer for a ping."""
    ping_timeout: float = 20.0
    """Seconds the client has to answer a ping with a pong before the session closes."""
    max_http_buffer_size: int = 1_000_000
    """Largest accepted POST body or websocket message, in bytes (advertised as ``maxPayload``)."""
    allow_upgrades: bool = True
    """Whether a polling session may upgrade to websocket."""
    transports: tuple[str, ...] = VALID_TRANSPORTS
    """The transports accepted: ``polling``, ``websocket`` or both."""
    http_compression: bool = True
    """Compress polling responses (gzip or deflate, as ``Accept-Encoding`` prefers)."""
    compression_threshold: int = 1024
    """Only bodies larger than this many bytes are compressed."""
    cookie: CookieOption = None
    """The session cookie: ``None``, a name, or a dict of ``name`` and attributes."""
    cors_allowed_origins: CorsOrigins = None
    """``None`` (same origin), ``'*'``, one origin, a list (``[]``: no CORS handling), or a callable."""
    cors_credentials: bool = True
    """Send ``Access-Control-Allow-Credentials: true``."""
    upgrade_timeout: float = 10.0
    """Seconds a probe websocket has to complete the upgrade before it is dropped."""
    close_timeout: float = 5.0
    """Seconds a server-closed session waits for a poll (or write) to carry its CLOSE packet."""
    max_queued_bytes: int = 16 * 1024 * 1024
    """Bound on one session's outgoing queue; past it the session closes (transport error)."""
    monitor_clients: bool = True
    """Close sessions whose client stops answering pings (``False``: keep pinging, never time out)."""
    max_poll_packets: int = 16
    """Packets per long-polling response: python-engineio's client refuses payloads of more than 16."""
    cors_callable_takes_request: bool = field(default=False, init=False, repr=False, compare=False)
    """Derived: a callable ``cors_allowed_origins`` gets ``(origin, request)`` when it takes two arguments."""

    def __post_init__(self) -> None:
        if self.ping_interval <= 0 or self.ping_timeout <= 0:
            raise ValueError("ping_interval and ping_timeout must be positive")
        if self.ping_interval_grace < 0:
            raise ValueError("the ping interval grace period cannot be negative")
        if self.max_http_buffer_size <= 0:
            raise ValueError("max_http_buffer_size must be positive")
        if not self.transports:
            raise ValueError("at least one transport is needed")
        for t in self.transports:
            if t not in VALID_TRANSPORTS:
                raise ValueError(f"unknown transport {t!r}; valid: {VALID_TRANSPORTS}")
        if isinstance(self.cookie, Mapping) and "name" not in self.cookie:
            raise ValueError("a cookie dict needs a 'name' key")
        from .http import validate_cookie

        validate_cookie(self.cookie)

        takes_request = callable(self.cors_allowed_origins) and _takes_two(self.cors_allowed_origins)
        object.__setattr__(self, "cors_callable_takes_request", takes_request)

    @classmethod
    def from_options(
        cls,
        *,
        ping_interval: float | tuple[float, float] | list[float] = 25,
        ping_timeout: float = 20,
        max_http_buffer_size: int = 1_000_000,
        allow_upgrades: bool = True,
        http_compression: bool = True,
        compression_threshold: int = 1024,
        cookie: CookieOption = None,
        cors_allowed_origins: CorsOrigins = None,
        cors_credentials: bool = True,
        transports: Sequence[str] | None = None,
        **extra: Any,
    ) -> ServerConfig:
        """Build a config from the seed's ``AsyncServer`` keyword arguments."""
        if isinstance(ping_interval, (tuple, list)):
            if len(ping_interval) != 2:
                raise ValueError("ping_interval must be a number or an (interval, grace) pair")
            interval, grace = float(ping_interval[0]), float(ping_interval[1])
        else:
            interval, grace = float(ping_interval), 0.0
        if isinstance(transports, str):
            transports = [transports]
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in extra.items() if k in known}
        return cls(
            ping_interval=interval,
            ping_interval_grace=grace,
            ping_timeout=float(ping_timeout),
            max_http_buffer_size=int(max_http_buffer_size),
            allow_upgrades=bool(allow_upgrades),
            transports=tuple(transports) if transports else VALID_TRANSPORTS,
            http_compression=bool(http_compression),
            compression_threshold=int(compression_threshold),
            cookie=cookie,
            cors_allowed_origins=cors_allowed_origins,
            cors_credentials=bool(cors_credentials),
            **kwargs,
        )

    @property
    def upgrades_offered(self) -> list[str]:
        """What a polling handshake offers: websocket only when it is allowed and enabled."""
        if self.allow_upgrades and "websocket" in self.transports:
            return ["websocket"]
        return []
