"""A python-engineio example app runs on engineio_asgi with only its import changed."""

from __future__ import annotations

import asyncio
from typing import Any

import engineio
import httpx
import pytest
from servers import running_server


@pytest.mark.parametrize("server_name", ["uvicorn", "hypercorn-trio"])
def test_ported_example(server_name: str) -> None:
    with running_server("apps.ported_example:app", server_name) as srv:
        assert httpx.get(srv.url + "/", timeout=5).text.startswith('"""A python-engineio application')

        async def scenario() -> None:
            client = engineio.AsyncClient()
            got: list[Any] = []
            three = asyncio.Event()

            @client.on("message")
            def on_message(data: Any) -> None:
                got.append(data)
                if len(got) == 3:
                    three.set()

            await client.connect(srv.url, transports=["polling", "websocket"])
            await client.send("hi")
            await client.send({"x": 1})
            await client.send(b"abc")
            await asyncio.wait_for(three.wait(), 5)
            username = "user-" + client.sid[:4]
            assert got == [
                {"echo": "hi", "from": username, "count": 1},
                {"echo": {"x": 1}, "from": username, "count": 2},
                b"cba",
            ]
            await client.disconnect()

            rejected = engineio.AsyncClient()
            # python-engineio's client closes its HTTP session before reading the 401 body, so
            # on servers that write the body separately (hypercorn) it fails with RuntimeError
            with pytest.raises((engineio.exceptions.ConnectionError, RuntimeError)):
                await rejected.connect(srv.url + "?token=bad", transports=["polling"])

        asyncio.run(scenario())
