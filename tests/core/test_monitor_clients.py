"""monitor_clients=False: no ping timeout, and pings resume only after a pong."""

from __future__ import annotations

from engineio_sansio import ServerConfig, SessionClosed

from .client_model import Client, Hub


def test_unmonitored_session_outlives_unanswered_pings() -> None:
    hub = Hub(ServerConfig(ping_interval=1, ping_timeout=0.5, monitor_clients=False))
    c = Client(hub)
    c.open_websocket()
    assert c.ws is not None
    hub.advance(1.01)
    assert c.ws.frames[-1] == "2"
    sent_before = len(c.ws.frames)
    hub.advance(30)  # far past any ping timeout
    assert not [e for e in hub.log if isinstance(e, SessionClosed)], "an unmonitored session timed out"
    assert len(c.ws.frames) == sent_before, "pings kept coming while the first was unanswered"
    c.send_frame("3")
    hub.advance(1.01)
    assert c.ws.frames[-1] == "2", "a pong restarts the heartbeat"


def test_monitored_session_times_out() -> None:
    hub = Hub(ServerConfig(ping_interval=1, ping_timeout=0.5))
    c = Client(hub)
    c.open_websocket()
    hub.advance(1.01)
    hub.advance(0.6)
    closed = [e for e in hub.log if isinstance(e, SessionClosed)]
    assert [e.reason.value for e in closed] == ["ping timeout"]
