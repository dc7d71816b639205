"""The WebTransport listener next to each ASGI server, started and stopped by the app's lifespan.

examples/webtransport/app.py is served by uvicorn, hypercorn (asyncio) and granian
as the WebTransport docs say; a Python WebTransport client (aioquic's client side)
opens a session on the UDP port of the same number, gets the handshake and an echo,
and the HTTP side answers on TCP. Stopping the server (SIGTERM) runs the lifespan
shutdown, which stops the listener: the process exits by itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import httpx
import pytest
from exampleproc import REPO_ROOT, Proc, free_port

pytest.importorskip("aioquic")

from aioquic.asyncio.client import connect
from aioquic.h3.connection import H3_ALPN
from aioquic.quic.configuration import QuicConfiguration
from test_webtransport_client import TIMEOUT, Client, run

from engineio_sansio.framing import encode_stream_frame

BIN = os.path.dirname(sys.executable)
SERVERS = {
    "uvicorn": ["{bin}/uvicorn", "app:app", "--host", "127.0.0.1", "--port", "{port}"],
    "hypercorn": ["{bin}/hypercorn", "app:app", "--bind", "127.0.0.1:{port}"],
    "granian": ["{bin}/granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", "{port}", "app:app"],
}


async def _session(port: int) -> tuple[str, str]:
    import ssl

    config = QuicConfiguration(alpn_protocols=H3_ALPN, is_client=True, max_datagram_frame_size=65536)
    config.verify_mode = ssl.CERT_NONE
    async with connect("127.0.0.1", port, configuration=config, create_protocol=Client) as client:
        assert isinstance(client, Client)
        assert await client.open_session(port) == 200
        client.write(encode_stream_frame("0"))
        handshake = json.loads((await client.packet())[1:])
        client.write(encode_stream_frame("4ping?"))
        echo = await client.packet()
        return handshake["sid"], echo


@pytest.mark.parametrize("name", list(SERVERS))
def test_listener_next_to_each_asgi_server(name: str) -> None:
    port = free_port()
    cmd = [a.format(bin=BIN, port=port) for a in SERVERS[name]]
    pythonpath = os.pathsep.join([str(REPO_ROOT / "examples" / "webtransport"), str(REPO_ROOT)])
    proc = Proc(cmd, port, env={"PORT": str(port), "PYTHONPATH": pythonpath})
    try:
        proc.start()
        sid, echo = run(asyncio.wait_for(_session(port), TIMEOUT * 2))
        assert echo == "4ping?"
        log = httpx.get(f"{proc.url}/log.json").json()
        assert log[0] == {"event": "connect", "sid": sid, "transport": "webtransport", "refused": False}
        assert proc.proc is not None
        proc.proc.terminate()
        assert proc.proc.wait(timeout=15) is not None  # the lifespan shutdown stopped the listener
        output = proc.output()
        assert "Traceback" not in output, output
    finally:
        proc.cleanup()
