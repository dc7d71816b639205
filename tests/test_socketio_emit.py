"""python-socketio's emits through engineio_asgi's client manager (:class:`LocalManager`), in-process.

The manager hands each recipient's packets straight to its session (a task only
for a send that has to wait): every kind of emit must reach exactly the clients
python-socketio's own manager reaches, with the same frames, and a recipient
whose socket blocks must hold up neither the others nor the order of its own
packets. asyncio only: python-socketio needs it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import socketio
from asgi_harness import websocket_scope
from hypothesis import given, settings
from hypothesis import strategies as st

from engineio_asgi.socketio import ASGIApp, AsyncServer, LocalManager


class Client:
    """A websocket Socket.IO client as fake ASGI calls; ``send`` may be made to block."""

    def __init__(self, app: Any, name: str, namespace: str = "/") -> None:
        self.name = name
        self.frames: list[Any] = []
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.gate: asyncio.Event | None = None  # when set up, each send waits for it
        self.got = asyncio.Event()
        self.scope = websocket_scope("/socket.io/")
        self.incoming.put_nowait({"type": "websocket.connect"})
        prefix = "40" if namespace == "/" else "40" + namespace + ","
        self.incoming.put_nowait({"type": "websocket.receive", "text": prefix + '{"name":"' + name + '"}'})
        self.task = asyncio.create_task(app(self.scope, self.incoming.get, self.send))

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] != "websocket.send":
            return
        if self.gate is not None:
            await self.gate.wait()
        self.frames.append(message.get("text", message.get("bytes")))
        self.got.set()

    def events(self) -> list[Any]:
        """The frames after the handshake (the OPEN packet and the namespace CONNECT)."""
        return self.frames[2:]

    async def close(self) -> None:
        self.incoming.put_nowait({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(self.task, 5)


async def start(
    manager: Any, names: list[str], namespace: str = "/"
) -> tuple[Any, dict[str, Client], dict[str, str]]:
    sio = AsyncServer(client_manager=manager)
    sids: dict[str, str] = {}

    @sio.on("connect", namespace=namespace)
    async def connect(sid: str, environ: Any, auth: Any) -> None:
        sids[auth["name"]] = sid
        room = "even" if int(auth["name"][1:]) % 2 == 0 else "odd"
        await sio.enter_room(sid, room, namespace=namespace)

    app = ASGIApp(sio)
    clients = {name: Client(app, name, namespace) for name in names}
    for _ in range(500):
        if len(sids) == len(names) and all(len(c.frames) >= 2 for c in clients.values()):
            break
        await asyncio.sleep(0.01)
    assert len(sids) == len(names)
    return sio, clients, sids


async def run_emits(manager: Any) -> dict[str, list[Any]]:
    names = [f"c{i}" for i in range(6)]
    sio, clients, sids = await start(manager, names)
    await sio.emit("all", {"a": 1})
    await sio.emit("room", "x", to="even")
    await sio.emit("rooms", ("two", "args"), room=["even", "odd"], skip_sid=sids["c1"])
    await sio.emit("skip-list", None, to="odd", skip_sid=[sids["c1"], sids["c3"]])
    await sio.emit("bin", {"b": b"\x00\xff", "c": [b"\x01"]}, to="even")
    await sio.emit("one", [1, "é"], to=sids["c4"])
    await sio.emit("nobody", 1, to="no-such-room")
    await sio.emit("ns", 1, namespace="/unknown")
    # python-socketio's own path: one packet per recipient with its ack id
    await sio.emit("acked", 2, to=sids["c5"], callback=lambda *a: None)
    got = {name: c.events() for name, c in clients.items()}
    for c in clients.values():
        await c.close()
    return got


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_every_kind_of_emit_reaches_what_python_socketios_manager_reaches() -> None:
    ours = await run_emits(LocalManager())
    theirs = await run_emits(socketio.AsyncManager())
    assert ours == theirs
    binary = [
        '452-["bin",{"b":{"_placeholder":true,"num":0},"c":[{"_placeholder":true,"num":1}]}]',
        b"\x00\xff",
        b"\x01",
    ]
    everyone, to_even, to_both = '42["all",{"a":1}]', '42["room","x"]', '42["rooms","two","args"]'
    assert ours["c0"] == [everyone, to_even, to_both, *binary]
    assert ours["c1"] == [everyone]  # skipped by the rest
    assert ours["c3"] == [everyone, to_both]
    assert ours["c4"] == [everyone, to_even, to_both, *binary, '42["one",[1,"\\u00e9"]]']
    assert ours["c5"] == [everyone, to_both, '42["skip-list"]', '421["acked",2]']


def test_the_default_manager_is_ours_and_a_given_one_is_kept() -> None:
    assert isinstance(AsyncServer().manager, LocalManager)
    given = socketio.AsyncManager()
    assert AsyncServer(client_manager=given).manager is given


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_blocked_recipient_holds_up_neither_the_others_nor_its_own_order() -> None:
    sio, clients, _ = await start(LocalManager(), ["c0", "c1", "c2"])
    slow = clients["c1"]
    slow.gate = asyncio.Event()
    emit = asyncio.create_task(sio.emit("news", {"n": 1}))
    await asyncio.wait_for(asyncio.gather(clients["c0"].got.wait(), clients["c2"].got.wait()), 5)
    for name in ("c0", "c2"):
        assert clients[name].events() == ['42["news",{"n":1}]']
    assert not emit.done()  # an emit returns once every recipient has its packets, as python-socketio's does
    clients["c2"].got.clear()
    second = asyncio.create_task(sio.emit("bin", b"\x02"))  # the slow one's socket is busy: queued after
    await asyncio.wait_for(clients["c2"].got.wait(), 5)
    assert slow.events() == []
    slow.gate.set()
    await asyncio.wait_for(asyncio.gather(emit, second), 5)
    assert slow.events() == ['42["news",{"n":1}]', '451-["bin",{"_placeholder":true,"num":0}]', b"\x02"]
    for c in clients.values():
        await c.close()


async def run_namespace_emits(manager: Any) -> dict[str, list[Any]]:
    names = [f"c{i}" for i in range(4)]
    sio, clients, sids = await start(manager, names, namespace="/chat")
    await sio.emit("all", {"a": [1, 2.5, None, True]}, namespace="/chat")
    await sio.emit("room", "x", to="odd", namespace="/chat")
    await sio.emit("one", "y", to=sids["c2"], namespace="/chat")
    await sio.emit("bin", b"\x03", to=sids["c2"], namespace="/chat")
    await sio.emit("root", 1)  # nobody joined "/": nobody gets it
    got = {name: c.events() for name, c in clients.items()}
    for c in clients.values():
        await c.close()
    return got


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_emits_in_a_namespace_reach_what_python_socketios_manager_reaches() -> None:
    ours = await run_namespace_emits(LocalManager())
    assert ours == await run_namespace_emits(socketio.AsyncManager())
    assert ours["c2"] == [
        '42/chat,["all",{"a":[1,2.5,null,true]}]',
        '42/chat,["one","y"]',
        '451-/chat,["bin",{"_placeholder":true,"num":0}]',
        b"\x03",
    ]
    assert ours["c1"] == ['42/chat,["all",{"a":[1,2.5,null,true]}]', '42/chat,["room","x"]']


# What an emit's arguments may hold: JSON's values, sometimes bytes (a binary event)
# or a value JSON cannot write (the emit fails as python-socketio's does).
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
values = st.recursive(
    scalars | st.binary(max_size=4),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
)


def python_socketios_encoding(namespace: str, data: list[Any]) -> Any:
    try:
        encoded = socketio.packet.Packet(socketio.packet.EVENT, namespace=namespace, data=data).encode()
    except TypeError as exc:
        return TypeError, str(exc)
    return encoded if isinstance(encoded, list) else [encoded]


def our_encoding(manager: LocalManager, namespace: str, data: list[Any]) -> Any:
    try:
        return manager._encode_event(namespace, data)
    except TypeError as exc:
        return TypeError, str(exc)


@settings(max_examples=400, deadline=None)
@given(
    namespace=st.sampled_from(["/", "/chat", "/a,b"]),
    event=st.text(max_size=6),
    args=st.lists(values | st.sets(st.integers(), max_size=2), max_size=3),
)
def test_an_event_packet_is_written_as_python_socketios_packet_writes_it(
    namespace: str, event: str, args: list[Any]
) -> None:
    manager = AsyncServer().manager
    assert our_encoding(manager, namespace, [event, *args]) == python_socketios_encoding(
        namespace, [event, *args]
    )


def test_a_packet_class_or_json_module_of_the_application_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    class Sorted:  # a JSON module of the application's: keys sorted
        @staticmethod
        def dumps(data: Any, **kwargs: Any) -> str:
            import json

            return json.dumps(data, sort_keys=True, **kwargs)

    manager = AsyncServer().manager
    data = ["e", {"b": 1, "a": 2}]
    assert manager._encode_event("/", data) == ['2["e",{"b":1,"a":2}]']
    monkeypatch.setattr(socketio.packet.Packet, "json", Sorted)
    assert manager._encode_event("/", data) == ['2["e",{"a":2,"b":1}]']
    monkeypatch.undo()

    class Tagged(socketio.packet.Packet):  # a packet class of the application's
        def encode(self) -> Any:
            return "tagged:" + str(super().encode())

    manager.server.packet_class = Tagged
    assert manager._encode_event("/chat", data) == ['tagged:2/chat,["e",{"b":1,"a":2}]']
