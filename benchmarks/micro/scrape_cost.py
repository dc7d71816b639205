"""What one Prometheus scrape costs the event loop, with 10,000 sessions open.

A core holds SESSIONS accepted polling sessions; the collector of
``engineio_asgi.metrics`` is timed reading its snapshot and formatting the text
Prometheus receives. Medians of several runs::

    PYTHONPATH=. .venv/bin/python benchmarks/micro/scrape_cost.py
"""

from __future__ import annotations

import statistics
import timeit

from prometheus_client import CollectorRegistry, generate_latest

from engineio_asgi.metrics import EngineIOCollector
from engineio_sansio import ConnectRequest, Request, Server, ServerConfig, Stats, StatsSnapshot

SESSIONS = 10_000
RUNS, NUMBER = 7, 20


class _Source:
    """What the collector reads: anything with ``stats()``."""

    def __init__(self, stats: Stats) -> None:
        self._stats = stats

    def stats(self) -> StatsSnapshot:
        return self._stats.snapshot()


def main() -> None:
    stats = Stats()
    core = Server(ServerConfig(), stats=stats)
    for _ in range(SESSIONS):
        _, events = core.receive_request(Request("GET", {"EIO": "4", "transport": "polling"}), 0.0)
        (ev,) = [e for e in events if type(e) is ConnectRequest]
        core.accept(ev.sid, 0.0)
    registry = CollectorRegistry()
    registry.register(EngineIOCollector(_Source(stats)))
    print(f"{stats.snapshot().sessions} sessions")
    for name, fn in (
        ("snapshot()", stats.snapshot),
        ("one scrape (collect + format)", lambda: generate_latest(registry)),
    ):
        runs = [timeit.timeit(fn, number=NUMBER) / NUMBER for _ in range(RUNS)]
        print(f"{name}: median {statistics.median(runs) * 1e3:.2f} ms ({RUNS} runs of {NUMBER})")


if __name__ == "__main__":
    main()
