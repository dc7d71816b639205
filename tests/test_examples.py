"""The examples, started exactly as their docstrings say, driven by real clients.

* ``examples/echo/app.py`` under uvicorn,
* ``examples/trio/app.py`` under hypercorn's trio worker,
* ``examples/embedding/server.py`` — the sans-IO core on anyio sockets with h11
  and wsproto, no ASGI server — on asyncio and on trio.

Each runs in its own process on a free 127.0.0.1 port and meets the same
clients: python-engineio's ``AsyncClient`` and Node's ``engine.io-client``
(tests/node/eio_client.js), over polling, websocket, and polling upgraded to
websocket. The embedding example is also checked for heartbeats (pings at the
configured interval, and a ping timeout when the client stops answering), which
its single timer task drives through ``next_deadline``/``handle_timer``.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, Iterator

import engineio
import httpx
import pytest
from exampleproc import Proc, docstring_command, free_port, running
from nodeclient import node_available, run_node_client

PING_INTERVAL = 0.5
PING_TIMEOUT = 0.4

EXAMPLES = {
    "echo-uvicorn": ("examples/echo/app.py", "uvicorn", []),
    "trio-hypercorn": ("examples/trio/app.py", "hypercorn", []),
    "embedding-asyncio": (
        "examples/embedding/server.py",
        "server.py",
        ["--ping-interval", str(PING_INTERVAL), "--ping-timeout", str(PING_TIMEOUT)],
    ),
    "embedding-trio": (
        "examples/embedding/server.py",
        "server.py",
        ["--backend", "trio", "--ping-interval", str(PING_INTERVAL), "--ping-timeout", str(PING_TIMEOUT)],
    ),
}

TRANSPORTS = {"polling": ["polling"], "websocket": ["websocket"], "upgrade": ["polling", "websocket"]}
NODE_MODES: dict[str, dict[str, Any]] = {
    "polling": {"transports": "polling"},
    "websocket": {"transports": "websocket"},
    "upgrade": {"transports": "polling,websocket", "wait_upgrade": True},
}

needs_node = pytest.mark.skipif(not node_available(), reason="node or node_modules missing (npm ci)")


@pytest.fixture(scope="module", params=list(EXAMPLES))
def example(request: pytest.FixtureRequest) -> Iterator[Proc]:
    path, marker, extra = EXAMPLES[request.param]
    port = free_port()
    with running(docstring_command(path, marker, port, extra), port) as proc:
        proc.name = request.param  # type: ignore[attr-defined]
        yield proc


async def _python_echo(url: str, transports: list[str], messages: list[Any]) -> tuple[list[Any], str]:
    client = engineio.AsyncClient()
    got: list[Any] = []
    enough = asyncio.Event()

    @client.on("message")
    def on_message(data: Any) -> None:
        got.append(data)
        if len(got) >= len(messages):
            enough.set()

    await client.connect(url, transports=transports)
    try:
        for m in messages:
            await client.send(m)
        await asyncio.wait_for(enough.wait(), 10)
        return got, client.transport()
    finally:
        await client.disconnect()


@pytest.mark.parametrize("mode", list(TRANSPORTS))
def test_python_client_echo(example: Proc, mode: str) -> None:
    messages: list[Any] = []
    for i in range(25):
        messages.append(f"text {i} é€𝄞")
        messages.append(bytes([i, 0, 255, 0x1E]) * (i % 4 + 1))
    expected = list(messages)
    if example.name == "trio-hypercorn":  # type: ignore[attr-defined]
        messages.append("which-loop")  # the handlers really run on trio
        expected.append("trio")
    got, transport = asyncio.run(_python_echo(example.url, TRANSPORTS[mode], messages))
    assert got == expected
    assert transport == ("polling" if mode == "polling" else "websocket")


@needs_node
@pytest.mark.parametrize("mode", list(NODE_MODES))
def test_node_client_echo(example: Proc, mode: str) -> None:
    result = run_node_client(example.url, "echo", text=15, binary=15, size=300, **NODE_MODES[mode])
    assert result["received"]["total"] == 30
    assert result["finalTransport"] == ("polling" if mode == "polling" else "websocket")
    if mode == "upgrade":
        assert result["initialTransport"] == "polling" and result["upgraded"]


@needs_node
def test_node_client_server_close(example: Proc) -> None:
    result = run_node_client(example.url, "wait-close", send=["close-me"], **NODE_MODES["upgrade"])
    assert result["closed"]
    assert result["closeReason"] in ("transport close", "forced close")


@pytest.mark.parametrize("path", ["examples/echo/app.py", "examples/trio/app.py"])
def test_example_run_as_a_script_listens_on_env_port(path: str) -> None:
    # `.venv/bin/python examples/.../app.py` serves on port 8000, or on PORT when it is set
    port = free_port()
    with running([sys.executable, path], port, env={"PORT": str(port)}) as proc:
        got, transport = asyncio.run(_python_echo(proc.url, TRANSPORTS["upgrade"], ["hello", b"\x00\x01"]))
    assert got == ["hello", b"\x00\x01"]
    assert transport == "websocket"


# --- the embedding example: heartbeats from one timer task, and the core's policy -----------


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def embedding(request: pytest.FixtureRequest) -> Iterator[Proc]:
    # the timer task and the held polls' wake-ups are the runtime's: check them on both backends
    port = free_port()
    extra = ["--backend", request.param, "--ping-interval", str(PING_INTERVAL)]
    extra += ["--ping-timeout", str(PING_TIMEOUT)]
    with running(docstring_command("examples/embedding/server.py", "server.py", port, extra), port) as proc:
        yield proc


@needs_node
@pytest.mark.parametrize("mode", ["polling", "upgrade"])
def test_embedding_heartbeat_keeps_session_alive(embedding: Proc, mode: str) -> None:
    result = run_node_client(embedding.url, "ping", duration=2500, **NODE_MODES[mode])
    assert result["survived"]
    assert result["handshake"]["pingInterval"] == int(PING_INTERVAL * 1000)
    assert result["pings"] >= 3
    assert all(200 <= gap <= 1500 for gap in result["pingIntervalsMs"]), result["pingIntervalsMs"]


@needs_node
@pytest.mark.parametrize("mode", ["polling", "websocket"])
def test_embedding_ping_timeout_closes_silent_client(embedding: Proc, mode: str) -> None:
    result = run_node_client(embedding.url, "wait-close", no_pong=True, timeout=10, **NODE_MODES[mode])
    assert result["closed"]
    # one interval until the ping, then the timeout: well under the client's own limit
    assert result["closeAfterOpenMs"] < (PING_INTERVAL + PING_TIMEOUT) * 1000 + 1500


def test_embedding_applies_core_policy(embedding: Proc) -> None:
    with httpx.Client(base_url=embedding.url, timeout=5) as http:
        refused = http.get(
            "/engine.io/",
            params={"EIO": "4", "transport": "polling"},
            headers={"Origin": "http://elsewhere.example"},
        )
        assert refused.status_code == 403
        bad = http.get("/engine.io/", params={"EIO": "3", "transport": "polling"})
        assert bad.status_code == 400 and bad.json()["code"] == 5
        opened = http.get("/engine.io/", params={"EIO": "4", "transport": "polling"})
        assert opened.status_code == 200 and opened.text.startswith("0{")
        assert http.get("/elsewhere").status_code == 404
