"""Server configuration: python-engineio's constructor options, validated once."""

from __future__ import annotations

import inspect
import math
import numbers
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Mapping, Sequence, Union

from .cookie import CookieOption, validate_cookie
from .message import Request

__all__ = ["CookieOption", "CorsOrigins", "ServerConfig", "cors_callable_takes_request"]

CorsOrigins = Union[None, str, Sequence[str], Callable[..., Any]]
"""``None`` (same origin), ``'*'``, one origin, a list (``[]`` disables CORS), or a predicate."""


VALID_TRANSPORTS = ("polling", "websocket", "webtransport")
DEFAULT_TRANSPORTS = ("polling", "websocket")
"""WebTransport is off unless asked for, as in Node's engine.io (it needs an HTTP/3 listener)."""

_LABELS = {"ping_interval_grace": "the grace period of ping_interval=(interval, grace)"}


def cors_callable_takes_request(fn: Callable[..., Any]) -> bool:
    """Whether a ``cors_allowed_origins`` callable takes ``(origin, request)`` rather than ``(origin)``.

    Decided once, from the signature, when the configuration is made. A
    callable that takes neither form raises ``TypeError`` now rather than
    refusing every origin later.
    """
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False  # no signature to read (some builtins): the documented one-argument form
    try:
        sig.bind("origin", "request")
        return True
    except TypeError:
        pass
    try:
        sig.bind("origin")
    except TypeError:
        raise TypeError(
            f"cors_allowed_origins: a callable must take the origin, or (origin, environ); {fn!r} takes {sig}"
        ) from None
    return False


def _label(name: str) -> str:
    return _LABELS.get(name, name)


def _seconds(name: str, value: Any, *, zero_ok: bool = False) -> float:
    """A finite number of seconds, > 0 (or >= 0 with ``zero_ok``), as a float."""
    bound = ">= 0" if zero_ok else "> 0"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{_label(name)} must be a number of seconds {bound}, got {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        raise ValueError(f"{_label(name)} must be a finite number of seconds {bound}, got {value!r}")
    return float(value)


def _count(name: str, value: Any, *, zero_ok: bool = False) -> int:
    """A whole number, > 0 (or >= 0 with ``zero_ok``)."""
    bound = ">= 0" if zero_ok else "> 0"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int {bound}, got {value!r}")
    if value < 0 or (value == 0 and not zero_ok):
        raise ValueError(f"{name} must be an int {bound}, got {value!r}")
    return int(value)


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def _transports(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
        raise TypeError(f"transports must be a list of transport names {VALID_TRANSPORTS}, got {value!r}")
    names = tuple(value)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"transports must hold transport names {VALID_TRANSPORTS}, got {name!r}")
        if name not in VALID_TRANSPORTS:
            raise ValueError(f"transports: unknown transport {name!r}; valid: {VALID_TRANSPORTS}")
    if not names:
        raise ValueError(f"transports cannot be empty; valid: {VALID_TRANSPORTS}")
    return names


def _cookie(value: Any) -> CookieOption:
    if value is None:
        return None
    if isinstance(value, str):
        if not value:
            raise ValueError("cookie: the cookie name cannot be empty")
        attrs: Mapping[str, Any] = {"name": value}
    elif isinstance(value, Mapping):
        attrs = value
        if "name" not in attrs:
            raise ValueError(f"cookie: a cookie dict needs a 'name' key, got {value!r}")
    else:
        raise TypeError(
            f"cookie must be None (or False), a cookie name (str) or a dict of 'name' and attributes, "
            f"got {value!r}"
        )
    for key, attr in attrs.items():
        if not isinstance(key, str):
            raise TypeError(f"cookie: attribute names must be str, got {key!r}")
        if key == "name":
            if not isinstance(attr, str):
                raise TypeError(f"cookie: 'name' must be a str, got {attr!r}")
            if not attr:
                raise ValueError("cookie: 'name' cannot be empty")
        elif not (attr is None or isinstance(attr, (str, bool, int, float)) or callable(attr)):
            raise TypeError(
                f"cookie: attribute {key!r} must be a str, a number, a bool or a callable "
                f"returning one, got {attr!r}"
            )
    try:
        validate_cookie(value)
    except ValueError as exc:
        raise ValueError(f"cookie: {exc}") from None
    return value if isinstance(value, str) else attrs


def _cors_origins(value: Any) -> CorsOrigins:
    if value is None or isinstance(value, str) or callable(value):
        return value  # type: ignore[no-any-return]
    if not isinstance(value, (list, tuple, set, frozenset)):
        raise TypeError(
            "cors_allowed_origins must be None (same origin), '*', an origin such as "
            "'https://example.com', a list of origins, or a callable taking the origin "
            f"(or origin and environ), got {value!r}"
        )
    for entry in value:
        if not isinstance(entry, str):
            raise TypeError(f"cors_allowed_origins must hold origins as str, got {entry!r} in {value!r}")
    return tuple(value)


@dataclass(frozen=True)
class ServerConfig:
    """Everything the protocol core needs to know; times are in seconds.

    Build it with :meth:`from_options` to accept python-engineio's argument forms
    (``ping_interval`` as a number or an ``(interval, grace)`` pair, and so on).
    Every value is checked here: a value of the wrong kind raises ``TypeError``,
    an impossible one ``ValueError``, each naming the option and what it accepts.
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
    transports: tuple[str, ...] = DEFAULT_TRANSPORTS
    """The transports accepted: ``polling``, ``websocket``, ``webtransport`` (not by default)."""
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
    cors_request_adapter: Callable[[Request], Any] | None = field(default=None, repr=False, compare=False)
    """What a two-argument ``cors_allowed_origins`` callable gets after the origin, made from
    the request (the ASGI layer hands it python-engineio's environ); ``None``: the request."""
    cors_callable_takes_request: bool = field(default=False, init=False, repr=False, compare=False)
    """Derived: a callable ``cors_allowed_origins`` gets ``(origin, request)`` when it takes two arguments."""
    allow_request: Callable[..., Any] | None = field(default=None, repr=False, compare=False)
    """Asked, sync or async, whether a request that would open or upgrade a session may
    (the ASGI layer calls it with the environ). The core never calls it: a runtime asks
    it first and passes a refusal to ``Server.receive_request(refuse=...)``."""
    allow_eio3: bool = False
    """Also accept Engine.IO v3 clients (``EIO=3``: engine.io-client 3.x); otherwise they get code 5."""

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        # each value is checked (and normalised) here, so a bad one names its option now
        for name in ("ping_interval", "ping_timeout", "upgrade_timeout", "close_timeout"):
            put(name, _seconds(name, getattr(self, name)))
        put("ping_interval_grace", _seconds("ping_interval_grace", self.ping_interval_grace, zero_ok=True))
        for name in ("max_http_buffer_size", "max_queued_bytes", "max_poll_packets"):
            put(name, _count(name, getattr(self, name)))
        put(
            "compression_threshold", _count("compression_threshold", self.compression_threshold, zero_ok=True)
        )
        flags = ("allow_upgrades", "http_compression", "cors_credentials", "monitor_clients", "allow_eio3")
        for name in flags:
            _flag(name, getattr(self, name))
        put("transports", _transports(self.transports))
        put("cookie", _cookie(self.cookie))
        allowed = _cors_origins(self.cors_allowed_origins)
        put("cors_allowed_origins", allowed)
        if self.cors_request_adapter is not None and not callable(self.cors_request_adapter):
            raise TypeError(f"cors_request_adapter must be callable, got {self.cors_request_adapter!r}")
        put("cors_callable_takes_request", callable(allowed) and cors_callable_takes_request(allowed))
        if self.allow_request is not None and not callable(self.allow_request):
            raise TypeError(
                f"allow_request must be None or a callable taking the environ, got {self.allow_request!r}"
            )

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
        cookie: CookieOption | bool = None,
        cors_allowed_origins: CorsOrigins = None,
        cors_credentials: bool = True,
        transports: Sequence[str] | str | None = None,
        **extra: Any,
    ) -> ServerConfig:
        """Build a config from python-engineio's ``AsyncServer`` keyword arguments.

        Accepts its argument forms (``ping_interval`` as ``(interval, grace)``,
        one transport name as a str, ``cookie=False``); unknown keywords are ignored.
        """
        if isinstance(ping_interval, (tuple, list)):
            if len(ping_interval) != 2:
                raise ValueError(
                    f"ping_interval must be a number or an (interval, grace) pair, got {ping_interval!r}"
                )
            interval, grace = ping_interval
        else:
            interval, grace = ping_interval, 0.0
        if isinstance(transports, str):
            transports = [transports]
        if cookie is False or cookie == "" or (isinstance(cookie, Mapping) and not cookie):
            cookie = None  # python-engineio: a false cookie option (False, "", {}) sends no cookie
        known = {f.name for f in fields(cls) if f.init}
        kwargs = {k: v for k, v in extra.items() if k in known}
        return cls(
            ping_interval=interval,
            ping_interval_grace=grace,
            ping_timeout=ping_timeout,
            max_http_buffer_size=max_http_buffer_size,
            allow_upgrades=allow_upgrades,
            transports=DEFAULT_TRANSPORTS if transports is None else transports,  # type: ignore[arg-type]
            http_compression=http_compression,
            compression_threshold=compression_threshold,
            cookie=cookie,  # type: ignore[arg-type]
            cors_allowed_origins=cors_allowed_origins,
            cors_credentials=cors_credentials,
            **kwargs,
        )

    @property
    def upgrades_offered(self) -> list[str]:
        """What a polling handshake offers: websocket and webtransport, each when allowed and enabled."""
        if not self.allow_upgrades:
            return []
        return [name for name in ("websocket", "webtransport") if name in self.transports]
