"""No cyclic garbage per session or per message in the core.

Objects that point at each other (a session and its websocket) are freed only
by the garbage collector, whose full collections traverse every live object:
with many sessions that is a pause in the tail. Here the collector is off while
N sessions open, carry messages and close, and the cycles it then finds must not
grow with N.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from typing import Callable

from engineio_sansio import Event, SendFrames, Server
from engineio_sansio.message import Request


def _written(core: Server, events: Sequence[Event] | None) -> None:
    for ev in events or ():
        if type(ev) is SendFrames:
            _written(core, core.frames_sent(ev.request_id))


def websocket_sessions(core: Server, n: int) -> None:
    for _ in range(n):
        rid, (ev,) = core.receive_request(
            Request("GET", {"EIO": "4", "transport": "websocket"}), 0.0, websocket=True
        )
        _written(core, core.accept(ev.sid, 0.0))  # type: ignore[union-attr]
        for _ in range(5):
            core.receive_frame(rid, "4hello", 0.0)
            _written(core, core.send(ev.sid, "hi"))  # type: ignore[union-attr]
        _written(core, core.receive_frame(rid, "1", 0.0))  # the client closes
        core.connection_lost(rid, 0.0)


def polling_sessions(core: Server, n: int) -> None:
    for _ in range(n):
        _, (ev,) = core.receive_request(Request("GET", {"EIO": "4", "transport": "polling"}), 0.0)
        sid = ev.sid  # type: ignore[union-attr]
        core.accept(sid, 0.0)
        query = {"EIO": "4", "transport": "polling", "sid": sid}
        post, _ = core.receive_request(Request("POST", query), 0.0)
        core.receive_body(post, b"4hello", False, 0.0)
        core.send(sid, b"\x00binary")
        core.receive_request(Request("GET", query), 0.0)
        core.close(sid, 0.0)


def cycles_found(run: Callable[[int], None], n: int) -> int:
    gc.collect()
    gc.disable()
    try:
        run(n)
        return gc.collect()
    finally:
        gc.enable()


def test_websocket_sessions_leave_no_cycles() -> None:
    core = Server()
    websocket_sessions(core, 5)  # warm up (caches, the timer heap's first trim)
    few = cycles_found(lambda n: websocket_sessions(core, n), 10)
    many = cycles_found(lambda n: websocket_sessions(core, n), 100)
    assert many <= few, f"{many} objects in cycles after 100 sessions, {few} after 10"


def test_polling_sessions_leave_no_cycles() -> None:
    core = Server()
    polling_sessions(core, 5)
    few = cycles_found(lambda n: polling_sessions(core, n), 10)
    many = cycles_found(lambda n: polling_sessions(core, n), 100)
    assert many <= few, f"{many} objects in cycles after 100 sessions, {few} after 10"


def test_an_open_websocket_session_keeps_two_tracked_objects() -> None:
    """A held websocket session is its Session and its WebSocket to the collector, and
    nothing else the core allocates: no queue while nothing waits in it, no tuple per
    timer entry. (With the collector off, even objects it would untrack at its next pass,
    such as a tuple of a float, an int and a str, stay tracked: each counted towards the
    next young collection when allocated.)"""
    core = Server()
    gc.collect()
    gc.disable()
    try:
        before = len(gc.get_objects())
        for _ in range(200):
            _, (ev,) = core.receive_request(
                Request("GET", {"EIO": "4", "transport": "websocket"}), 1.0, websocket=True
            )
            _written(core, core.accept(ev.sid, 1.0))  # type: ignore[union-attr]
        per = (len(gc.get_objects()) - before) / 200
    finally:
        gc.enable()
    assert per <= 2.05, f"{per:.2f} GC-tracked objects per open websocket session in the core"


def test_sessions_due_at_one_time_are_all_run_at_it() -> None:
    """Timer entries of one deadline (sessions opened at the same instant: their pings)
    are told apart without a tuple each; every one of them is still run at that very time."""
    core = Server()
    rids = []
    for _ in range(50):
        rid, (ev,) = core.receive_request(
            Request("GET", {"EIO": "4", "transport": "websocket"}), 1.0, websocket=True
        )
        _written(core, core.accept(ev.sid, 1.0))  # type: ignore[union-attr]
        rids.append(rid)
    due = core.next_deadline()
    assert due == 1.0 + core.config.ping_interval
    pings = [ev.request_id for ev in core.handle_timer(due) if type(ev) is SendFrames]  # type: ignore[union-attr]
    assert pings == rids  # all of them, in the order they were opened
    for rid in rids:
        core.frames_sent(rid)
    assert core.next_deadline() == due + core.config.ping_timeout
