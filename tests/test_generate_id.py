"""A subclass's (or a patched) ``generate_id()`` makes the session ids, as in python-engineio."""

from __future__ import annotations

import itertools
import json
from typing import Any

import anyio
import pytest
from asgi_harness import http, start_websocket

import engineio_asgi

pytestmark = pytest.mark.anyio


class NumberedServer(engineio_asgi.AsyncServer):
    """An application's override: ids it can recognise in its logs."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._numbers = itertools.count(1)

    def generate_id(self) -> str:
        return f"app-id-{next(self._numbers)}"


def _handshake_sid(text: str) -> str:
    assert text[0] == "0", text
    return json.loads(text[1:].split("\x1e")[0])["sid"]  # type: ignore[no-any-return]


async def test_subclass_ids_reach_the_client_and_the_connect_handler() -> None:
    eio = NumberedServer()
    app = engineio_asgi.ASGIApp(eio)
    connected: list[str] = []
    eio.on("connect", lambda sid, environ: connected.append(sid))

    r = await http(app, "GET", query="EIO=4&transport=polling")
    assert r.status == 200, r.body
    assert _handshake_sid(r.text) == "app-id-1"

    async with anyio.create_task_group() as tg:
        ws = await start_websocket(tg, app, "EIO=4&transport=websocket")
        frame = await ws.receive()
        assert isinstance(frame, str)
        assert _handshake_sid(frame) == "app-id-2"
        await ws.disconnect()

    assert connected == ["app-id-1", "app-id-2"]
    assert eio.transport("app-id-1") == "polling"


async def test_generate_id_patched_on_the_instance_is_used() -> None:
    # python-engineio's own tests replace the method on the instance
    eio = engineio_asgi.AsyncServer()
    app = engineio_asgi.ASGIApp(eio)
    eio.generate_id = lambda: "patched-sid"  # type: ignore[method-assign]
    r = await http(app, "GET", query="EIO=4&transport=polling")
    assert _handshake_sid(r.text) == "patched-sid"


def test_default_generate_id_still_makes_fresh_unguessable_ids() -> None:
    eio = engineio_asgi.AsyncServer()
    ids = {eio.generate_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(isinstance(i, str) and len(i) >= 16 for i in ids)
