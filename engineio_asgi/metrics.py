"""Prometheus metrics for an :class:`~engineio_asgi.AsyncServer` (extra: ``engineio-asgi[prometheus]``).

:class:`EngineIOCollector` reads :meth:`AsyncServer.stats() <engineio_asgi.AsyncServer.stats>`
when Prometheus scrapes, so serving messages never touches prometheus-client.
:func:`metrics_app` is an ASGI endpoint that answers every GET with the metrics
of one registry::

    from engineio_asgi.metrics import metrics_app

    eio = engineio_asgi.AsyncServer()
    metrics = metrics_app(eio)  # serve at /metrics (FastAPI: api.add_route("/metrics", metrics))

Or register the collector in a registry of your own:
``registry.register(EngineIOCollector(eio))``. The metric names (all ``engineio_*``)
and what each means are listed in the operations guide.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Iterator, MutableMapping

try:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily
    from prometheus_client.exposition import CONTENT_TYPE_LATEST
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "engineio_asgi.metrics needs prometheus-client (pip install 'engineio-asgi[prometheus]')"
    ) from exc

from engineio_sansio import CloseReason, ErrorCode

__all__ = ["EngineIOCollector", "metrics_app"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_TRANSPORTS = ("polling", "websocket")
"""Always exported (zero when unused); a transport the snapshot has beyond these
(``webtransport`` in the session gauge and the handshakes) is exported as well."""


def _transports(names: Any) -> tuple[str, ...]:
    return (*_TRANSPORTS, *sorted(set(names) - set(_TRANSPORTS)))


class EngineIOCollector:
    """A prometheus-client collector over one server's ``stats()``.

    ``server`` is anything with a ``stats()`` method returning a
    :class:`~engineio_sansio.StatsSnapshot` (an :class:`~engineio_asgi.AsyncServer`;
    for python-socketio, its ``sio.eio``). ``labels`` are added to every sample
    (to tell several servers of one process apart, for instance).
    """

    def __init__(self, server: Any, labels: dict[str, str] | None = None) -> None:
        self.server = server
        self.labels = dict(labels or {})

    def describe(self) -> list[Metric]:
        """Nothing to describe in advance: the registry calls :meth:`collect` at each scrape."""
        return []

    def collect(self) -> Iterator[Metric]:
        """The metric families, built from one snapshot."""
        s = self.server.stats()
        extra = list(self.labels)
        values = list(self.labels.values())

        def family(cls: Any, name: str, doc: str, *labels: str, unit: str = "") -> Any:
            return cls(name, doc, labels=[*extra, *labels], unit=unit)

        def by_transport(cls: Any, name: str, doc: str, counts: dict[str, int], unit: str = "") -> Any:
            m = family(cls, name, doc, "transport", unit=unit)
            for transport in _transports(counts):
                m.add_metric([*values, transport], counts.get(transport, 0))
            return m

        def single(cls: Any, name: str, doc: str, value: float, unit: str = "") -> Any:
            m = family(cls, name, doc, unit=unit)
            m.add_metric(values, value)
            return m

        yield by_transport(GaugeMetricFamily, "engineio_sessions", "Open sessions by transport.", s.sessions)
        yield single(
            GaugeMetricFamily,
            "engineio_sessions_opening",
            "Handshakes waiting for the application's connect handler.",
            s.sessions_opening,
        )
        yield single(
            GaugeMetricFamily,
            "engineio_sessions_closing",
            "Sessions closed by the server whose CLOSE packet waits for a poll.",
            s.sessions_closing,
        )
        yield single(GaugeMetricFamily, "engineio_polls_held", "Long-polling GETs held open.", s.polls_held)
        yield single(
            GaugeMetricFamily,
            "engineio_queued_bytes",
            "Message bytes queued for clients, not yet handed to a transport.",
            s.queued_bytes,
        )
        handshakes = family(
            CounterMetricFamily,
            "engineio_handshakes",
            "Handshakes accepted by the protocol, by transport and Engine.IO protocol version.",
            "transport",
            "protocol",
        )
        for transport in _transports(t for t, _ in s.handshakes):
            for version in (3, 4):
                count = s.handshakes.get((transport, version), 0)
                handshakes.add_metric([*values, transport, str(version)], count)
        yield handshakes
        yield single(
            CounterMetricFamily,
            "engineio_handshakes_rejected",
            "Handshakes the application's connect handler refused.",
            s.rejected,
        )
        refused = family(
            CounterMetricFamily,
            "engineio_requests_refused",
            "Requests answered with an Engine.IO protocol error, by error code.",
            "code",
        )
        for code in ErrorCode:
            refused.add_metric([*values, str(int(code))], s.refused.get(code, 0))
        yield refused
        yield single(
            CounterMetricFamily,
            "engineio_payloads_too_large",
            "POST bodies refused with 413 (over max_http_buffer_size).",
            s.too_large,
        )
        yield single(
            CounterMetricFamily,
            "engineio_upgrades",
            "Upgrades from polling completed (to websocket or WebTransport).",
            s.upgrades,
        )
        yield single(
            CounterMetricFamily,
            "engineio_upgrade_failures",
            "Upgrades from polling that did not complete.",
            s.upgrade_failures,
        )
        yield by_transport(
            CounterMetricFamily,
            "engineio_messages_received",
            "Messages from clients handed to the application.",
            s.messages_received,
        )
        yield by_transport(
            CounterMetricFamily, "engineio_messages_sent", "Messages the application sent.", s.messages_sent
        )
        yield by_transport(
            CounterMetricFamily,
            "engineio_received",
            "Bytes read: POST bodies and websocket frames.",
            s.bytes_received,
            unit="bytes",
        )
        yield by_transport(
            CounterMetricFamily,
            "engineio_sent",
            "Bytes written: poll responses and websocket frames.",
            s.bytes_sent,
            unit="bytes",
        )
        closed = family(
            CounterMetricFamily, "engineio_sessions_closed", "Sessions ended, by reason.", "reason"
        )
        for reason in CloseReason:
            closed.add_metric([*values, reason.value], s.closed.get(reason.value, 0))
        yield closed
        rtt = family(
            SummaryMetricFamily,
            "engineio_ping_round_trip",
            "Round trips from a ping to its pong.",
            unit="seconds",
        )
        rtt.add_metric(values, count_value=s.ping_round_trips, sum_value=s.ping_round_trip_seconds)
        yield rtt
        yield single(
            CounterMetricFamily,
            "engineio_timer_wakeups",
            "Wake-ups of the timer driver (pings, timeouts).",
            s.timer_wakeups,
        )
        yield single(
            GaugeMetricFamily,
            "engineio_timer_lag",
            "How late the timer driver's last wake-up ran: a blocked event loop shows here.",
            s.timer_lag_seconds,
            unit="seconds",
        )
        yield single(
            GaugeMetricFamily,
            "engineio_timer_lag_max",
            "The latest wake-up of the timer driver within about the last minute.",
            s.timer_lag_max_seconds,
            unit="seconds",
        )


class _MetricsApp:
    """The ASGI endpoint of :func:`metrics_app`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":  # served on its own: nothing to start or stop
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if kind == "websocket":
            await receive()
            await send({"type": "websocket.close", "code": 1000})
            return
        if scope.get("method") not in ("GET", "HEAD"):
            body, status = b"method not allowed\n", 405
            headers = [(b"content-type", b"text/plain"), (b"allow", b"GET, HEAD")]
        else:
            body, status = generate_latest(self.registry), 200
            headers = [(b"content-type", CONTENT_TYPE_LATEST.encode())]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope.get("method") == "HEAD" else body})


def metrics_app(server: Any = None, *, registry: CollectorRegistry | None = None) -> Any:
    """An ASGI app answering GET with the Prometheus text format.

    With ``server``, a new registry holding an :class:`EngineIOCollector` for it
    is served; with ``registry``, that registry (add the collector to it
    yourself, beside your application's own metrics); with both, the collector
    is added to ``registry``.
    """
    if registry is None:
        registry = CollectorRegistry()
    if server is not None:
        registry.register(EngineIOCollector(server))
    return _MetricsApp(registry)
