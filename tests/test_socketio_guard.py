"""``engineio_asgi.socketio.ASGIApp`` refuses a server that would run on python-engineio."""

from __future__ import annotations

import pytest

socketio = pytest.importorskip("socketio")

from engineio_asgi.socketio import ASGIApp, AsyncServer  # noqa: E402


def test_plain_socketio_server_is_refused_with_the_fix() -> None:
    with pytest.raises(TypeError) as info:
        ASGIApp(socketio.AsyncServer())
    message = str(info.value)
    assert "engineio_asgi.socketio.AsyncServer" in message
    assert "python-engineio" in message


def test_sync_socketio_server_is_refused_too() -> None:
    with pytest.raises(TypeError, match=r"engineio_asgi\.socketio\.AsyncServer"):
        ASGIApp(socketio.Server())


def test_our_server_and_a_subclass_of_it_are_accepted() -> None:
    class MyServer(AsyncServer):  # type: ignore[misc]
        pass

    for server in (AsyncServer(), MyServer()):
        app = ASGIApp(server, socketio_path="rt")
        assert isinstance(app, ASGIApp)
