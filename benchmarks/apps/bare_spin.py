"""``bare.py`` plus a fixed amount of CPU per HTTP request: a control for the polling handshake.

It answers the question "how fast would a layer be that does ours' extra work per
request, but as one tight loop?". Each HTTP request first runs an empty loop for about
``EIO_BENCH_SPIN_US`` microseconds (default 10: half of what ours' polling handshake,
a GET and a POST, costs over bare's in-process, ``benchmarks/micro/handshake_split.py``),
calibrated once at start-up on the core the server is pinned to. The loop's code and data
stay in the CPU's caches and it makes no system call, so the difference between this app
and ``bare`` through a real server is what that much CPU costs there, with the cost of
the load generator's wake-ups that a slower server brings (docs/benchmarks.md, "What the
polling handshake's time holds"). The loop is calibrated by time, so under valgrind
(``instructions.py``) it is about fifty times shorter: count its instructions as bare's.
"""

from __future__ import annotations

import os
import time

import bare

SPIN_US = float(os.environ.get("EIO_BENCH_SPIN_US", "10"))


def _calibrate(target_s: float) -> range:
    """A range whose empty loop takes about ``target_s`` (best of five trials)."""
    trial = range(10_000)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in trial:
            pass
        best = min(best, time.perf_counter() - start)
    return range(max(0, round(target_s / (best / len(trial)))))


_LOOP = _calibrate(SPIN_US / 1e6)
_plain_http = bare.http


async def http(scope, receive, send) -> None:
    for _ in _LOOP:
        pass
    await _plain_http(scope, receive, send)


bare.http = http  # bare.asgi looks it up at each request
app = bare.app
