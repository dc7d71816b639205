"""Shared pieces of the reliability battery: the control endpoint, bounded waits, and
the healthy bystander sessions every hostile test runs next to."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from .clients import Polling, WSSession, raw_request

APP = "apps.reliability_app:app"
BAD_INPUT_SERVERS = ["uvicorn", "hypercorn-trio"]

# heartbeat short enough that an abandoned session is reaped within a test
PING_INTERVAL = 1.0
PING_TIMEOUT = 1.0
REAP_TIME = PING_INTERVAL + PING_TIMEOUT + 3.0  # bound on waiting for a ping timeout
MAX_SIZE = 100_000

BASE_ENV = {
    "EIO_PING_INTERVAL": str(PING_INTERVAL),
    "EIO_PING_TIMEOUT": str(PING_TIMEOUT),
    "EIO_MAX_SIZE": str(MAX_SIZE),
    "EIO_UPGRADE_TIMEOUT": "1.5",
}


def events(url: str) -> dict[str, Any]:
    resp = raw_request(url, "GET", "/control/events")
    assert resp.status == 200, resp
    return resp.json()  # type: ignore[no-any-return]


def control(url: str, path: str) -> Any:
    resp = raw_request(url, "GET", path, timeout=30)
    assert resp.status == 200, resp
    return resp.json()


def wait_for(
    url: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5.0, what: str = "condition"
) -> dict[str, Any]:
    """Poll the control endpoint until ``predicate`` holds; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    seen = events(url)
    while not predicate(seen):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout}s; server saw {summary(seen)}")
        time.sleep(0.02)
        seen = events(url)
    return seen


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout}s")
        time.sleep(0.01)


def summary(seen: dict[str, Any]) -> dict[str, Any]:
    return {**seen, "connects": len(seen["connects"]), "disconnects": seen["disconnects"][-10:]}


def reasons(seen: dict[str, Any], sid: str) -> list[str]:
    return [r for s, r in seen["disconnects"] if s == sid]


def closed_with(url: str, sid: str, allowed: tuple[str, ...], timeout: float = REAP_TIME) -> str:
    """Wait until ``sid`` got its disconnect; it must be exactly one, with an allowed reason."""
    seen = wait_for(url, lambda s: bool(reasons(s, sid)), timeout, f"disconnect of {sid}")
    got = reasons(seen, sid)
    assert len(got) == 1 and got[0] in allowed, f"{sid}: disconnect reasons {got}, expected one of {allowed}"
    return got[0]


def still_open(url: str, sid: str) -> None:
    seen = events(url)
    assert sid in seen["connects"], f"{sid} never connected"
    assert not reasons(seen, sid), f"{sid} was closed: {reasons(seen, sid)}"


class Healthy:
    """Two bystander sessions (a websocket and a polling one) echoing numbered messages
    in threads while a test misbehaves next to them.

    On exit it waits (bounded) for a few more round trips, stops, and asserts that
    every round trip came back in order, none took longer than ``max_latency``, and
    neither session was closed by the server.
    """

    def __init__(self, url: str, max_latency: float = 2.0, polling: bool = True) -> None:
        self.url = url
        self.max_latency = max_latency
        self.kinds = ["websocket", "polling"] if polling else ["websocket"]
        self.rounds = dict.fromkeys(self.kinds, 0)
        self.worst = dict.fromkeys(self.kinds, 0.0)
        self.errors: list[str] = []
        self.sids: dict[str, str] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._ready = threading.Barrier(len(self.kinds) + 1, timeout=10)

    def __enter__(self) -> Healthy:
        for kind in self.kinds:
            t = threading.Thread(target=self._run, args=(kind,), daemon=True, name=f"healthy-{kind}")
            t.start()
            self._threads.append(t)
        self._ready.wait()
        if self.errors:
            raise AssertionError(f"bystander sessions failed to start: {self.errors}")
        return self

    def _run(self, kind: str) -> None:
        session: Any = None
        try:
            session = WSSession(self.url) if kind == "websocket" else Polling(self.url)
            self.sids[kind] = session.sid
        except Exception as exc:
            self.errors.append(f"{kind} handshake: {exc!r}")
        try:
            self._ready.wait()
        except threading.BrokenBarrierError:
            return
        if session is None:
            return
        i = 0
        try:
            while not self._stop.is_set() and i < 100_000:
                i += 1
                t0 = time.monotonic()
                session.echo(f"{kind[0]}{i}", timeout=self.max_latency + 3)
                dt = time.monotonic() - t0
                self.worst[kind] = max(self.worst[kind], dt)
                self.rounds[kind] += 1
        except Exception as exc:
            self.errors.append(f"{kind} session {self.sids.get(kind)} round {i}: {exc!r}")
        finally:
            try:
                if kind == "websocket":
                    session.ws.close()
                else:
                    session.post("1")
            except Exception:
                pass

    def wait_rounds(self, more: int = 3, timeout: float = 10.0) -> None:
        target = {k: self.rounds[k] + more for k in self.kinds}
        wait_until(
            lambda: bool(self.errors) or all(self.rounds[k] >= target[k] for k in self.kinds),
            timeout,
            f"{more} more bystander round trips (have {self.rounds})",
        )

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        try:
            if exc_type is None:
                self.wait_rounds()
        finally:
            self._stop.set()
            for t in self._threads:
                t.join(timeout=10)
        if exc_type is not None:
            return
        assert not self.errors, f"a bystander session suffered: {self.errors}"
        assert all(not t.is_alive() for t in self._threads), "a bystander thread did not stop"
        for kind in self.kinds:
            assert self.worst[kind] <= self.max_latency, (
                f"the {kind} bystander waited {self.worst[kind]:.2f}s for an echo (bound {self.max_latency}s)"
            )
        seen = events(self.url)
        for kind, sid in self.sids.items():
            bad = [r for r in reasons(seen, sid) if r != "client disconnect" and r != "transport close"]
            assert not bad, f"the {kind} bystander {sid} was closed by the server: {bad}"
