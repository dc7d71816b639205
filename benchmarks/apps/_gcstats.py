"""The server's garbage-collector pauses, for run.py's load scenarios (all apps alike).

With ``EIO_BENCH_GC=1`` in the environment, :func:`install` hooks ``gc.callbacks``
and wraps the app so that ``GET /_bench/gc`` answers what the collector did since
the last ``GET /_bench/gc?reset=1``: the number of collections, their total and
longest pause (ms, from the ``start`` to the ``stop`` callback) overall and per
generation, in wall time (what a client waits) and in the thread's CPU time (what the
collection itself costs; on a shared machine the wall time also holds the time the
process was not scheduled). Without the variable the app is returned as it is, untouched.

``GET /_bench/gc?objects=1`` adds how many objects the collector tracks (in all and
per generation): what a full collection walks; ``collect=1`` runs a full collection
first (not recorded), so that only live objects are counted. ``garbage=1`` collects
and answers the types of the objects found in unreachable cycles (a diagnosis: what
makes the collector run at all, since refcounting frees everything else); ``young=1``
the types of the objects in the youngest generation at that moment (what keeps it full);
``types=1`` the count of tracked objects of each type.

The harness reads it at the load generator's phase marks (the load is paused
there), so the request itself is not part of any measured window.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
import types
from collections import Counter

PATH = "/_bench/gc"


class Recorder:
    """Pauses of every collection of this process, per generation."""

    def __init__(self) -> None:
        self.started = 0.0
        self.started_cpu = 0.0
        self.paused = False  # a collection asked for by collect=1 is not recorded
        # EIO_BENCH_GC_PROMOTED=1: count the objects each generation-1 collection moves into
        # the oldest generation (what brings the next full collection nearer), and their
        # types; it lists the oldest generation twice at each such collection, so it is off
        # in timed runs
        self.count_promoted = os.environ.get("EIO_BENCH_GC_PROMOTED") == "1"
        self.old_size = 0
        self.reset()

    def reset(self) -> None:
        self.count = [0, 0, 0]
        self.total = [0.0, 0.0, 0.0]
        self.longest = [0.0, 0.0, 0.0]
        self.cpu_total = 0.0
        self.cpu_longest = 0.0
        self.collected = 0
        self.promoted = 0
        self.promoted_types: Counter[str] = Counter()
        self.young_alive = 0  # in the youngest generation when its collections started, summed
        self.young_types: Counter[str] = Counter()
        self.triggers: Counter[str] = Counter()  # the code whose allocation started each young one
        self.since = time.monotonic()

    def callback(self, phase: str, info: dict) -> None:
        if self.paused:
            return
        gen = min(2, info.get("generation", 0))
        if phase == "start":
            if self.count_promoted and gen == 0:  # what made this collection: the young alive now
                young = gc.get_objects(0)
                self.young_alive += len(young)
                self.young_types.update(type(o).__qualname__ for o in young)
                del young
                self.triggers[_where()] += 1
            if self.count_promoted and gen == 1:
                self.old_size = len(gc.get_objects(2))
            self.started_cpu = time.thread_time()
            self.started = time.perf_counter()
            return
        pause = time.perf_counter() - self.started
        cpu = time.thread_time() - self.started_cpu
        self.cpu_total += cpu
        self.cpu_longest = max(self.cpu_longest, cpu)
        if self.count_promoted and gen == 1:
            # a collection's survivors are appended to the next generation's list, which
            # gc.get_objects() lists in order: what this one promoted is the oldest's tail
            moved = gc.get_objects(2)[self.old_size :]
            self.promoted += len(moved)
            self.promoted_types.update(type(o).__qualname__ for o in moved)
            del moved
        self.count[gen] += 1
        self.total[gen] += pause
        self.longest[gen] = max(self.longest[gen], pause)
        self.collected += info.get("collected", 0)

    def report(self) -> dict:
        ms = 1000.0
        return {
            "gc_count": sum(self.count),
            "gc_total_ms": round(sum(self.total) * ms, 3),
            "gc_max_ms": round(max(self.longest) * ms, 3),
            "gc_count_by_gen": list(self.count),
            "gc_total_ms_by_gen": [round(t * ms, 3) for t in self.total],
            "gc_max_ms_by_gen": [round(t * ms, 3) for t in self.longest],
            "gc_cpu_total_ms": round(self.cpu_total * ms, 3),
            "gc_cpu_max_ms": round(self.cpu_longest * ms, 3),
            "gc_collected": self.collected,
            "gc_promoted": self.promoted if self.count_promoted else None,
            "gc_promoted_types": dict(self.promoted_types.most_common(30)) if self.count_promoted else None,
            "gc_young_alive": self.young_alive if self.count_promoted else None,
            "gc_young_alive_types": dict(self.young_types.most_common(30)) if self.count_promoted else None,
            "gc_triggers": dict(self.triggers.most_common(25)) if self.count_promoted else None,
            "gc_seconds": round(time.monotonic() - self.since, 3),
            # the collector's counters now: net allocations since the last young collection,
            # young collections since the last middle one, middle ones since the last full
            # one (a full collection needs the last above 10, CPython 3.11's threshold)
            "gc_get_count": list(gc.get_count()),
        }


def _where(depth: int = 4) -> str:
    """The innermost Python frames running when a collection started: the allocation that
    crossed the threshold (``file:function`` from the innermost out)."""
    frame = sys._getframe(2)  # (this function's caller is the callback)
    names = []
    while frame is not None and len(names) < depth:
        code = frame.f_code
        names.append(f"{os.path.basename(code.co_filename)}:{code.co_name}")
        frame = frame.f_back
    return " < ".join(names) or "(C)"


def garbage_types(top: int = 25) -> dict[str, int]:
    """The types of what the collector frees now (cycles only refcounting did not free)."""
    flags = gc.get_debug()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        counts = Counter(type(o).__qualname__ for o in gc.garbage)
    finally:
        gc.garbage.clear()
        gc.set_debug(flags)
    return dict(counts.most_common(top))


def tracked_types() -> dict[str, int]:
    """How many objects of each type the collector tracks now (all generations)."""
    return dict(Counter(map(_type_name, gc.get_objects())))


def _type_name(o: object) -> str:
    """An object's type, and for a bound method the function it binds (which one is kept)."""
    kind = type(o)
    if kind is types.MethodType:
        return f"method {o.__func__.__qualname__}"  # type: ignore[attr-defined]
    return kind.__qualname__


def young_types(top: int = 25) -> dict[str, int]:
    """The types of the objects in the youngest generation now (what the next collection walks)."""
    return dict(Counter(type(o).__qualname__ for o in gc.get_objects(0)).most_common(top))


recorder: Recorder | None = None


def install(app):
    """app, answering ``GET /_bench/gc`` first when ``EIO_BENCH_GC=1`` (else app itself)."""
    global recorder
    if os.environ.get("EIO_BENCH_GC") != "1":
        return app
    if recorder is None:
        recorder = Recorder()
        gc.callbacks.append(recorder.callback)
    rec = recorder

    async def with_gc_report(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == PATH:
            qs = scope.get("query_string", b"")
            if b"collect=1" in qs:  # a full collection first (not counted): live objects only
                rec.paused = True
                gc.collect()
                rec.paused = False
            report = rec.report()
            if b"types=1" in qs:
                report["gc_types"] = tracked_types()
            if b"young=1" in qs:
                report["gc_young_types"] = young_types()
            if b"garbage=1" in qs:
                report["gc_garbage_types"] = garbage_types()
            if b"objects=1" in qs:  # slow: walks every tracked object
                report["gc_tracked"] = len(gc.get_objects())
                report["gc_tracked_by_gen"] = [len(gc.get_objects(g)) for g in range(3)]
            body = json.dumps(report).encode()
            if b"reset=1" in qs:
                rec.reset()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return with_gc_report
