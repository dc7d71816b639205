"""A client that sends CLOSE and closes its websocket at once must not take the server down.

hypercorn's trio worker crashes (BusyResourceError) when the application sends a
websocket close while the peer's close frame is being answered; the server lets a
client that said CLOSE close the websocket itself.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
import websockets
from servers import running_server


@pytest.mark.parametrize("server_name", ["hypercorn-trio", "uvicorn"])
def test_close_packet_then_close_frame_many_times(server_name: str) -> None:
    with running_server("apps.full_app:app", server_name) as srv:

        async def churn() -> None:
            for _ in range(150):
                async with websockets.connect(srv.ws_url + "/engine.io/?EIO=4&transport=websocket") as ws:
                    await asyncio.wait_for(ws.recv(), 5)
                    await ws.send("1")

        asyncio.run(asyncio.wait_for(churn(), 60))
        assert srv.is_alive(), srv.stderr_text()[-2000:]
        seen = httpx.get(srv.url + "/control/events", timeout=5).json()
        reasons = {r for _, r in seen["disconnects"]}
        assert reasons == {"client disconnect"}, reasons
        assert "BusyResourceError" not in srv.stderr_text()


@pytest.mark.parametrize("server_name", ["hypercorn-trio"])
def test_server_close_then_client_close_many_times(server_name: str) -> None:
    """The server sends CLOSE ('close-me'); the client closes its websocket as soon as it sees it."""
    with running_server("apps.full_app:app", server_name) as srv:

        async def churn() -> None:
            for _ in range(100):
                async with websockets.connect(srv.ws_url + "/engine.io/?EIO=4&transport=websocket") as ws:
                    await asyncio.wait_for(ws.recv(), 5)
                    await ws.send("4close-me")
                    assert await asyncio.wait_for(ws.recv(), 5) == "1"

        asyncio.run(asyncio.wait_for(churn(), 60))
        assert srv.is_alive(), srv.stderr_text()[-2000:]
        seen = httpx.get(srv.url + "/control/events", timeout=5).json()
        assert {r for _, r in seen["disconnects"]} == {"server disconnect"}
        assert "BusyResourceError" not in srv.stderr_text()
