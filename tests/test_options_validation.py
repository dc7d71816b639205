"""Every constructor option is checked when the server is made, not at the first request.

A bad value raises ``TypeError`` (wrong kind of value) or ``ValueError`` (right kind,
impossible value) whose message names the option, so the traceback points at the
line that configured it.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import pytest

import engineio_asgi
from engineio_sansio import ServerConfig


class _NoJSON:
    dumps = staticmethod(json.dumps)  # loads missing


def _three_args(origin: str, environ: Any, extra: Any) -> bool:
    return True


def _option_id(kwargs: dict[str, Any]) -> str:
    """A stable test id: reprs of plain values, the type's name for the others."""
    parts = []
    for key, value in kwargs.items():
        plain = value is None or isinstance(
            value, (bool, int, float, str, bytes, tuple, list, set, frozenset, dict)
        )
        parts.append(
            f"{key}={value!r}"[:50]
            if plain and "object at" not in repr(value)
            else f"{key}=<{type(value).__name__}>"
        )
    return ",".join(parts)


BAD_OPTIONS: list[tuple[str, dict[str, Any], type[Exception]]] = [
    # from the issue
    ("cors_allowed_origins", {"cors_allowed_origins": 123}, TypeError),
    ("cookie", {"cookie": True}, TypeError),
    ("ping_timeout", {"ping_timeout": None}, TypeError),
    ("compression_threshold", {"compression_threshold": -5}, ValueError),
    ("max_queued_bytes", {"max_queued_bytes": 0}, ValueError),
    ("logger", {"logger": "yes"}, TypeError),
    # ping_interval: a number > 0, or (interval, grace)
    ("ping_interval", {"ping_interval": None}, TypeError),
    ("ping_interval", {"ping_interval": "25"}, TypeError),
    ("ping_interval", {"ping_interval": 0}, ValueError),
    ("ping_interval", {"ping_interval": math.nan}, ValueError),
    ("ping_interval", {"ping_interval": math.inf}, ValueError),
    ("ping_interval", {"ping_interval": (25,)}, ValueError),
    ("ping_interval", {"ping_interval": (25, 5, 1)}, ValueError),
    ("ping_interval", {"ping_interval": (25, "5")}, TypeError),
    ("ping_interval", {"ping_interval": (25, -1)}, ValueError),
    ("ping_interval", {"ping_interval": True}, TypeError),
    # ping_timeout
    ("ping_timeout", {"ping_timeout": "20"}, TypeError),
    ("ping_timeout", {"ping_timeout": -1}, ValueError),
    ("ping_timeout", {"ping_timeout": 0}, ValueError),
    # max_http_buffer_size: a positive int
    ("max_http_buffer_size", {"max_http_buffer_size": 0}, ValueError),
    ("max_http_buffer_size", {"max_http_buffer_size": 1.5}, TypeError),
    ("max_http_buffer_size", {"max_http_buffer_size": None}, TypeError),
    ("max_http_buffer_size", {"max_http_buffer_size": "1e6"}, TypeError),
    # the flags: True or False, not "a truthy string"
    ("allow_upgrades", {"allow_upgrades": "false"}, TypeError),
    ("http_compression", {"http_compression": "no"}, TypeError),
    ("cors_credentials", {"cors_credentials": None}, TypeError),
    ("async_handlers", {"async_handlers": "yes"}, TypeError),
    ("monitor_clients", {"monitor_clients": "off"}, TypeError),
    # compression_threshold: an int >= 0
    ("compression_threshold", {"compression_threshold": "1024"}, TypeError),
    ("compression_threshold", {"compression_threshold": 10.5}, TypeError),
    # cookie: None/False, a name, or a dict of attributes with a name
    ("cookie", {"cookie": 1}, TypeError),
    ("cookie", {"cookie": ["io"]}, TypeError),
    ("cookie", {"cookie": {"name": 5}}, TypeError),
    ("cookie", {"cookie": {"name": "io", "Max-Age": [3600]}}, TypeError),
    ("cookie", {"cookie": {"path": "/"}}, ValueError),
    ("cookie", {"cookie": {"name": ""}}, ValueError),
    ("cookie", {"cookie": "io;evil"}, ValueError),
    # cors_allowed_origins: None, '*', an origin, a collection of origins, a callable
    ("cors_allowed_origins", {"cors_allowed_origins": b"https://a.example"}, TypeError),
    ("cors_allowed_origins", {"cors_allowed_origins": ["https://a.example", 5]}, TypeError),
    ("cors_allowed_origins", {"cors_allowed_origins": {"https://a.example": True}}, TypeError),
    ("cors_allowed_origins", {"cors_allowed_origins": lambda: True}, TypeError),
    ("cors_allowed_origins", {"cors_allowed_origins": _three_args}, TypeError),
    # transports: a non-empty subset of polling/websocket
    ("transports", {"transports": []}, ValueError),
    ("transports", {"transports": ["xhr-polling"]}, ValueError),
    ("transports", {"transports": 5}, TypeError),
    ("transports", {"transports": [5]}, TypeError),
    # json: an object with dumps and loads
    ("json", {"json": "json"}, TypeError),
    ("json", {"json": _NoJSON()}, TypeError),
    # async_mode
    ("async_mode", {"async_mode": "aiohttp"}, ValueError),
    ("async_mode", {"async_mode": 5}, ValueError),
    # logger: a bool or a logging.Logger-like object
    ("logger", {"logger": None}, TypeError),
    ("logger", {"logger": 1}, TypeError),
    ("logger", {"logger": object()}, TypeError),
    # the project's own options
    ("max_queued_bytes", {"max_queued_bytes": -1}, ValueError),
    ("max_queued_bytes", {"max_queued_bytes": "16M"}, TypeError),
    ("max_queued_bytes", {"max_queued_bytes": 1.5}, TypeError),
    ("upgrade_timeout", {"upgrade_timeout": 0}, ValueError),
    ("upgrade_timeout", {"upgrade_timeout": None}, TypeError),
    ("close_timeout", {"close_timeout": -1}, ValueError),
    ("close_timeout", {"close_timeout": "5"}, TypeError),
    # allow_request: None or a callable taking the environ
    ("allow_request", {"allow_request": True}, TypeError),
    ("allow_request", {"allow_request": "deny"}, TypeError),
    ("allow_eio3", {"allow_eio3": "yes"}, TypeError),
    ("allow_eio3", {"allow_eio3": 1}, TypeError),
]


@pytest.mark.parametrize(
    ("option", "kwargs", "error"),
    BAD_OPTIONS,
    ids=[_option_id(kw) for _, kw, _ in BAD_OPTIONS],
)
def test_bad_option_fails_at_construction_naming_it(
    option: str, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(Exception) as info:
        engineio_asgi.AsyncServer(**kwargs)
    assert type(info.value) is error, f"{type(info.value).__name__}: {info.value}"
    assert option in str(info.value), str(info.value)


GOOD_OPTIONS: list[dict[str, Any]] = [
    {"ping_interval": 25, "ping_timeout": 20},
    {"ping_interval": 0.3, "ping_timeout": 0.2},
    {"ping_interval": (25, 5)},
    {"ping_interval": [25, 5]},
    {"ping_interval": (0.5, 0)},
    {"max_http_buffer_size": 10},
    {"allow_upgrades": False, "http_compression": False, "cors_credentials": False},
    {"compression_threshold": 0},
    {"cookie": None},
    {"cookie": False},
    {"cookie": ""},
    {"cookie": {}},
    {"cookie": "io"},
    {"cookie": {"name": "io", "path": "/", "Secure": True, "HttpOnly": False, "Max-Age": 3600}},
    {"cookie": {"name": "io", "Expires": lambda: "Wed, 21 Oct 2037 07:28:00 GMT"}},
    {"cors_allowed_origins": None},
    {"cors_allowed_origins": "*"},
    {"cors_allowed_origins": ["*"]},
    {"cors_allowed_origins": []},
    {"cors_allowed_origins": "https://a.example"},
    {"cors_allowed_origins": ["https://a.example", "https://b.example"]},
    {"cors_allowed_origins": ("https://a.example",)},
    {"cors_allowed_origins": {"https://a.example"}},
    {"cors_allowed_origins": frozenset({"https://a.example"})},
    {"cors_allowed_origins": lambda origin: True},
    {"cors_allowed_origins": lambda origin, environ: True},
    {"cors_allowed_origins": {"https://a.example"}.__contains__},
    {"transports": "websocket"},
    {"transports": ["polling"]},
    {"transports": ("websocket", "polling")},
    {"json": json},
    {"async_mode": None},
    {"async_mode": "asgi"},
    {"async_handlers": False},
    {"monitor_clients": None},
    {"monitor_clients": False},
    {"allow_request": None},
    {"allow_request": lambda environ: True},
    {"logger": True},
    {"logger": False},
    {"logger": logging.getLogger("some.app")},
    {"logger": logging.LoggerAdapter(logging.getLogger("some.app"), {})},
    {"max_queued_bytes": 1},
    {"upgrade_timeout": 1, "close_timeout": 0.5},
    {"allow_eio3": True},
    {"something_python_engineio_might_add": object()},
]


@pytest.mark.parametrize("kwargs", GOOD_OPTIONS, ids=[_option_id(kw) for kw in GOOD_OPTIONS])
def test_valid_options_are_accepted(kwargs: dict[str, Any]) -> None:
    engineio_asgi.AsyncServer(**kwargs)


def test_a_false_cookie_option_means_no_cookie_as_in_python_engineio() -> None:
    for off in (None, False, "", {}):
        assert engineio_asgi.AsyncServer(cookie=off).config.cookie is None


def test_core_config_checks_protocol_values_itself() -> None:
    # the sans-IO core, used directly, gives the same named errors
    with pytest.raises(TypeError, match="ping_timeout"):
        ServerConfig(ping_timeout=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_queued_bytes"):
        ServerConfig(max_queued_bytes=0)
    with pytest.raises(ValueError, match="compression_threshold"):
        ServerConfig(compression_threshold=-5)
    with pytest.raises(TypeError, match="cors_allowed_origins"):
        ServerConfig(cors_allowed_origins=123)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_poll_packets"):
        ServerConfig(max_poll_packets=0)


def test_cors_callable_arity_is_decided_once_by_the_config() -> None:
    def two(origin: str, environ: Any) -> bool:
        return True

    one = engineio_asgi.AsyncServer(cors_allowed_origins=lambda origin: True)
    both = engineio_asgi.AsyncServer(cors_allowed_origins=two)
    assert one.config.cors_callable_takes_request is False
    assert both.config.cors_callable_takes_request is True
    # the server keeps the application's own callable, not a wrapper
    assert both.cors_allowed_origins is two
    assert both.config.cors_allowed_origins is two
    # no signature to read (some builtins): the documented one-argument form
    builtin = engineio_asgi.AsyncServer(cors_allowed_origins={"https://a.example"}.__contains__)
    assert builtin.config.cors_callable_takes_request is False


@pytest.mark.anyio
async def test_cors_callables_of_each_arity_answer_as_configured() -> None:
    from asgi_harness import http

    environs: list[Any] = []

    def two(origin: str, environ: Any) -> bool:
        environs.append(environ)
        return origin == "https://a.example"

    checks: list[Any] = [
        two,
        lambda origin: origin == "https://a.example",
        {"https://a.example"}.__contains__,
    ]
    for check in checks:
        app = engineio_asgi.ASGIApp(engineio_asgi.AsyncServer(cors_allowed_origins=check))
        for origin, status in (("https://a.example", 200), ("https://b.example", 403)):
            r = await http(app, "GET", query="EIO=4&transport=polling", headers=[("Origin", origin)])
            assert r.status == status, (check, origin, r.body)
    # a two-argument callable gets python-engineio's WSGI-style environ
    assert [e["REQUEST_METHOD"] for e in environs] == ["GET", "GET"]
