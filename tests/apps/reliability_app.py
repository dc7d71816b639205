"""The app of the reliability battery (tests/reliability/): echo, faults on demand, counters.

Settings (environment, read at import):

``EIO_PING_INTERVAL`` / ``EIO_PING_TIMEOUT`` (seconds), ``EIO_MAX_SIZE`` (bytes),
``EIO_TRANSPORTS`` (comma list), ``EIO_CORS`` (``*``, ``none`` = same origin, ``[]``,
or a comma list), ``EIO_COOKIE_JSON`` (a JSON dict for the ``cookie`` option),
``EIO_UPGRADE_TIMEOUT`` (seconds), ``EIO_LOGGER`` (``1``: ``logger=True``),
``EIO_ASYNC_HANDLERS`` (``0``/``1``), ``EIO_SYNC_HANDLER`` (``1``: the message handler
is a plain function), ``EIO_EVENT_LOG`` (a file: one JSON line per connect and
disconnect, written and flushed at once, so a test can read it after the process died).

Messages (text) the handler understands; anything else is echoed back:

* ``boom`` -- the handler raises.
* ``sleep:S`` -- the handler awaits ``S`` seconds (async handler only), then answers ``slept``.
* ``block:S`` -- the handler blocks the loop with ``time.sleep(S)``, then answers ``blocked``.
* ``send-to:SID`` -- ``send()`` to another sid (closed or unknown), then answers ``sent``.
* ``close-me`` -- ``disconnect(sid)``.
* ``boom-on-disconnect`` -- the disconnect handler of this session will raise.
* ``c<n>`` -- a sequence-numbered message of the load tests: the app checks that ``n`` is
  the previous one plus one, and answers ``s<m>:<n>`` where ``m`` is its own counter for
  the session (1, 2, ...).

Query flags of the handshake: ``connect_boom=1`` (the connect handler raises),
``reject=1`` (it returns False).

Control endpoint (plain HTTP): ``/control/events`` (connects, disconnects with reasons,
open sessions, pid, RSS, task counts), ``/control/stats`` (the per-session sequence
counters), ``/control/trim`` (``gc.collect()`` and glibc ``malloc_trim`` before an RSS
reading), ``/control/shutdown`` (``await eio.shutdown()``).
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import time
from typing import Any

import anyio
import sniffio

import engineio_asgi

env = os.environ.get

cors_setting = env("EIO_CORS", "none")
cors: Any
if cors_setting == "none":
    cors = None
elif cors_setting == "*":
    cors = "*"
elif cors_setting == "[]":
    cors = []
else:
    cors = cors_setting.split(",")

options: dict[str, Any] = {}
if env("EIO_UPGRADE_TIMEOUT"):
    options["upgrade_timeout"] = float(env("EIO_UPGRADE_TIMEOUT", "10"))

eio = engineio_asgi.AsyncServer(
    ping_interval=float(env("EIO_PING_INTERVAL", "25")),
    ping_timeout=float(env("EIO_PING_TIMEOUT", "20")),
    max_http_buffer_size=int(env("EIO_MAX_SIZE", "1000000")),
    async_handlers=env("EIO_ASYNC_HANDLERS", "1") == "1",
    transports=env("EIO_TRANSPORTS", "polling,websocket").split(","),
    cors_allowed_origins=cors,
    cookie=json.loads(env("EIO_COOKIE_JSON", "null")),
    logger=env("EIO_LOGGER", "0") == "1",
    **options,
)

EVENT_LOG = env("EIO_EVENT_LOG")

connects: list[str] = []
disconnects: list[list[str]] = []
boom_on_disconnect: set[str] = set()
# sid -> [last number received, gaps, messages received (= answers sent), duplicates,
#         messages that arrived while the session was on a websocket]
stats: dict[str, list[int]] = {}


def log_event(kind: str, sid: str, detail: str = "") -> None:
    if not EVENT_LOG:
        return
    line = json.dumps({"event": kind, "sid": sid, "detail": detail, "pid": os.getpid()}) + "\n"
    with open(EVENT_LOG, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()


def connect(sid: str, environ: dict[str, Any]) -> Any:
    query = environ.get("QUERY_STRING", "")
    if "connect_boom=1" in query:
        raise RuntimeError("connect handler failure requested by the test")
    if "reject=1" in query:
        return False
    connects.append(sid)
    log_event("connect", sid)
    return None


def handle_sequence(sid: str, n: int) -> str:
    row = stats.get(sid)
    if row is None:
        row = stats[sid] = [0, 0, 0, 0, 0]
    if eio.transport(sid) == "websocket":
        row[4] += 1
    if n == row[0] + 1:
        row[0] = n
    elif n <= row[0]:
        row[3] += 1
    else:
        row[1] += 1
        row[0] = n
    row[2] += 1
    return f"s{row[2]}:{n}"


async def message(sid: str, data: Any) -> None:
    if isinstance(data, str):
        if data[:1] == "c" and data[1:].isdigit():
            # the answer is numbered before the first await, so numbers follow arrival order
            await eio.send(sid, handle_sequence(sid, int(data[1:])))
            return
        if data == "boom":
            raise RuntimeError("message handler failure requested by the test")
        if data.startswith("sleep:"):
            await anyio.sleep(float(data[6:]))
            await eio.send(sid, "slept")
            return
        if data.startswith("block:"):
            time.sleep(float(data[6:]))
            await eio.send(sid, "blocked")
            return
        if data.startswith("send-to:"):
            await eio.send(data[8:], "hello from " + sid)
            await eio.send(sid, "sent")
            return
        if data == "close-me":
            await eio.disconnect(sid)
            return
        if data == "boom-on-disconnect":
            boom_on_disconnect.add(sid)
            await eio.send(sid, "armed")
            return
    await eio.send(sid, data)


def sync_message(sid: str, data: Any) -> None:
    """The plain-function handler (EIO_SYNC_HANDLER=1): it may block the loop."""
    if isinstance(data, str) and data.startswith("block:"):
        time.sleep(float(data[6:]))
        data = "blocked"
    # a sync handler cannot await send(); the server's own task does it
    eio.start_background_task(eio.send, sid, data)


def disconnect(sid: str, reason: str) -> None:
    disconnects.append([sid, reason])
    log_event("disconnect", sid, reason)
    if sid in boom_on_disconnect:
        boom_on_disconnect.discard(sid)
        raise RuntimeError("disconnect handler failure requested by the test")


eio.on("connect", connect)
eio.on("message", sync_message if env("EIO_SYNC_HANDLER") == "1" else message)
eio.on("disconnect", disconnect)


def rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def task_count() -> int:
    lib = sniffio.current_async_library()
    if lib == "asyncio":
        import asyncio

        return len(asyncio.all_tasks())
    if lib == "trio":
        import trio

        return int(trio.lowlevel.current_statistics().tasks_living)
    return -1


def task_names() -> dict[str, int]:
    """What the loop's tasks are running (coroutine names), counted."""
    names: dict[str, int] = {}
    lib = sniffio.current_async_library()
    if lib == "asyncio":
        import asyncio

        for t in asyncio.all_tasks():
            coro = t.get_coro()
            key = getattr(coro, "__qualname__", type(coro).__name__)
            names[key] = names.get(key, 0) + 1
    elif lib == "trio":
        import trio

        stack = [trio.lowlevel.current_root_task()]
        for _ in range(100_000):
            if not stack:
                break
            task = stack.pop()
            names[task.name] = names.get(task.name, 0) + 1
            for nursery in task.child_nurseries:
                stack.extend(nursery.child_tasks)
    return names


lag = {"max": 0.0, "at": 0.0, "started": False}
gc_pause = {"max": 0.0, "total": 0.0, "start": 0.0, "gen2": 0}


def _gc_timer(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        gc_pause["start"] = time.perf_counter()
    else:
        took = time.perf_counter() - gc_pause["start"]
        gc_pause["total"] += took
        gc_pause["max"] = max(gc_pause["max"], took)
        if info.get("generation") == 2:
            gc_pause["gen2"] += 1


gc.callbacks.append(_gc_timer)


async def lag_monitor() -> None:
    """How late the loop wakes a 50 ms sleep (EIO_LAG_MONITOR=1): stalls show up here."""
    clock = anyio.current_time
    for _ in range(10**9):
        t = clock()
        await anyio.sleep(0.05)
        late = clock() - t - 0.05
        if late > lag["max"]:
            lag["max"], lag["at"] = late, t


def snapshot() -> dict[str, Any]:
    if env("EIO_LAG_MONITOR") == "1" and not lag["started"]:
        lag["started"] = True
        eio.start_background_task(lag_monitor)
    core = eio._core
    core.next_deadline()  # drops superseded heap entries, so the count below is the live one
    backend = eio._backend
    return {
        "connects": connects,
        "disconnects": disconnects,
        "open": len(core._sessions),
        "pid": os.getpid(),
        "rss_kib": rss_kib(),
        "tasks": task_count(),
        # tasks the server owns, besides its one timer driver (which lives as long as the server)
        "server_tasks": len([t for t in backend.tasks if t is not eio._timer_task])
        if backend is not None
        else 0,
        "timer_driver": eio._timer_task is not None,
        "timer_heap": len(core._heap),
        "queued_packets": sum(len(s.outbox) for s in core._sessions.values()),
        "held_polls": sorted(s.sid for s in core._sessions.values() if s.poll is not None),
        "active_posts": sorted(s.sid for s in core._sessions.values() if s.post is not None),
        "probes": sorted(s.sid for s in core._sessions.values() if s.probe is not None),
        "transports": {s.sid: s.transport.value for s in core._sessions.values()},
        "core_events": len(core._events),
        # requests and websockets the runtime and the core still track
        "pending_requests": len(eio._http) + len(core._requests),
        "websockets": len(eio._ws) + len(core._sockets),
        "loop_lag_max": lag["max"],
        "gc_pause_max": gc_pause["max"],
        "gc_pause_total": gc_pause["total"],
        "gc_gen2_runs": gc_pause["gen2"],
    }


PROTOCOL_TYPES = ("Session", "WebSocket", "PendingRequest", "SessionRT", "WSConn", "PendingHTTP")


def protocol_objects() -> dict[str, int]:
    """Live objects of the server's per-session classes (the collector sees them all)."""
    counts = dict.fromkeys(PROTOCOL_TYPES, 0)
    for obj in gc.get_objects():
        name = type(obj).__name__
        if name in counts and type(obj).__module__.startswith(("engineio_sansio", "engineio_asgi")):
            counts[name] += 1
    return counts


def malloc_trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


async def control(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    status = 200
    if path == "/control/events":
        body = json.dumps(snapshot()).encode()
    elif path == "/control/objects":
        gc.collect()
        counts: dict[str, int] = {}
        for obj in gc.get_objects():
            name = type(obj).__qualname__
            counts[name] = counts.get(name, 0) + 1
        top = sorted(counts.items(), key=lambda kv: -kv[1])[:25]
        body = json.dumps(dict(top)).encode()
    elif path == "/control/tasks":
        body = json.dumps(task_names()).encode()
    elif path == "/control/stats":
        body = json.dumps(stats).encode()
    elif path == "/control/trim":
        gc.collect()
        malloc_trim()
        body = json.dumps({**snapshot(), "protocol_objects": protocol_objects()}).encode()
    elif path == "/control/forget":
        # drop this app's own per-session records (kept for the checks), so that what
        # memory stays after a load is the server's, not the instrumentation's
        connects.clear()
        disconnects.clear()
        stats.clear()
        boom_on_disconnect.clear()
        body = b'"forgotten"'
    elif path == "/control/shutdown":
        await eio.shutdown()
        body = b'"done"'
    else:
        body, status = b'"not found"', 404
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


app = engineio_asgi.ASGIApp(eio, other_asgi_app=control)
