"""Faults over real servers: clients that vanish at awkward moments, resets, shutdowns,
handlers that fail or block, sends to sessions that are gone.

The server's own view (disconnect reasons, held polls, open sessions) comes from the
app's control endpoint; the error log from the server's captured stderr.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import signal
import tempfile
import time
from typing import Any, Iterator

import pytest
from servers import running_server

from .clients import (
    Polling,
    RawWS,
    WSClosed,
    WSRejected,
    WSSession,
    decode_payload,
    eio_path,
    raw_request,
    read_response,
    reset,
    send_head,
    upgrade,
    ws_frame,
)
from .support import (
    APP,
    BAD_INPUT_SERVERS,
    BASE_ENV,
    Healthy,
    closed_with,
    events,
    reasons,
    still_open,
    wait_for,
    wait_until,
)

LOG_ENV = {**BASE_ENV, "EIO_LOGGER": "1"}


@pytest.fixture(scope="module", params=BAD_INPUT_SERVERS)
def server(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Like the package fixture, with ``logger=True`` so warnings reach stderr."""
    with running_server(APP, request.param, env=LOG_ENV) as srv:
        yield srv
        assert srv.is_alive(), f"{srv.name} died:\n{srv.stderr_text()[-3000:]}"


def drop(sock: Any, how: str) -> None:
    if how == "reset":
        reset(sock)
    else:
        sock.close()


HOW = ["close", "reset"]

# --------------------------------------------------------------------------- vanishing clients


@pytest.mark.parametrize("how", HOW)
def test_client_vanishes_mid_poll(server: Any, how: str) -> None:
    url = server.url
    with Healthy(url):
        p = Polling(url)
        sock = send_head(url, "GET", eio_path(p.sid))
        wait_for(url, lambda s: p.sid in s["held_polls"], 5, "held poll")
        drop(sock, how)
        wait_for(url, lambda s: p.sid not in s["held_polls"], 5, "the server noticing the vanished poll")
        still_open(url, p.sid)  # the client may come back, as over a flaky link
        p.echo("back again")
        # now it vanishes for good: the heartbeat reaps the session
        sock = send_head(url, "GET", eio_path(p.sid))
        wait_for(url, lambda s: p.sid in s["held_polls"], 5, "held poll")
        drop(sock, how)
        closed_with(url, p.sid, ("ping timeout",))


@pytest.mark.parametrize("how", HOW)
def test_client_vanishes_mid_post_body(server: Any, how: str) -> None:
    url = server.url
    with Healthy(url):
        p = Polling(url)
        sock = send_head(url, "POST", eio_path(p.sid), [("Content-Length", "100")], b"4half a body")
        wait_for(url, lambda s: p.sid in s["active_posts"], 5, "POST reading its body")
        drop(sock, how)
        wait_for(url, lambda s: p.sid not in s["active_posts"], 5, "the server dropping the POST")
        p.echo("next post works")  # nothing of the half body was delivered: the echo is the first message
        still_open(url, p.sid)


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("stage", ["before-probe", "after-probe", "probe-with-held-poll"])
def test_client_vanishes_mid_upgrade(server: Any, stage: str, how: str) -> None:
    url = server.url
    with Healthy(url):
        p = Polling(url)
        held = None
        if stage == "probe-with-held-poll":
            held = send_head(url, "GET", eio_path(p.sid))
            wait_for(url, lambda s: p.sid in s["held_polls"], 5, "held poll")
        ws = RawWS(url, eio_path(p.sid, "websocket"))
        wait_for(url, lambda s: p.sid in s["probes"], 5, "probe attached")
        if stage != "before-probe":
            ws.send("2probe")
            assert ws.recv_packet() == ("3", "probe")
        if held is not None:
            resp = read_response(held)  # the probe ends the held poll with a noop
            held.close()
            assert decode_payload(resp.body) == [("6", "")], resp.body
        drop(ws.sock, how)
        wait_for(url, lambda s: p.sid not in s["probes"], 5, "the probe dropped")
        assert events(url)["transports"][p.sid] == "polling"
        p.echo("still polling")
        still_open(url, p.sid)
        ws = upgrade(url, p)  # and the upgrade can be tried again
        ws.send("4upgraded")
        assert ws.recv_packet() == ("4", "upgraded")
        ws.close()


@pytest.mark.parametrize("how", HOW)
def test_client_vanishes_mid_websocket_frame(server: Any, how: str) -> None:
    url = server.url
    with Healthy(url):
        s = WSSession(url)
        s.echo("whole")
        frame = ws_frame(b"4" + b"z" * 5000)
        s.ws.sock.sendall(frame[: len(frame) // 2])
        drop(s.ws.sock, how)
        closed_with(url, s.sid, ("transport close", "transport error"), timeout=1.5)


def test_client_stalls_mid_websocket_frame(server: Any) -> None:
    """Half a frame, then silence: pings go unanswered, the session ends by ping timeout."""
    url = server.url
    with Healthy(url):
        s = WSSession(url)
        frame = ws_frame(b"4" + b"z" * 5000)
        s.ws.sock.sendall(frame[:100])
        closed_with(url, s.sid, ("ping timeout",))
        s.ws.sock.close()


@pytest.mark.parametrize("kind", ["websocket-only", "upgraded"])
def test_tcp_reset_on_a_websocket_session(server: Any, kind: str) -> None:
    url = server.url
    with Healthy(url):
        if kind == "websocket-only":
            s = WSSession(url)
            sid, ws = s.sid, s.ws
        else:
            p = Polling(url)
            sid, ws = p.sid, upgrade(url, p)
        ws.send("4x")
        assert ws.recv_packet() == ("4", "x")
        t0 = time.monotonic()
        ws.reset()
        # a reset is seen at once: transport close, well before a ping timeout could fire
        assert closed_with(url, sid, ("transport close", "transport error"), timeout=1.5)
        assert time.monotonic() - t0 < 1.5


def test_reset_while_the_server_writes(server: Any) -> None:
    """The app queues a burst for a websocket whose client resets: no error escapes."""
    url = server.url
    with Healthy(url):
        s = WSSession(url)
        for i in range(200):
            s.ws.send(f"4burst {i} " + "w" * 2000)
        s.ws.reset()
        closed_with(url, s.sid, ("transport close", "transport error"), timeout=3)
        assert "Traceback" not in server.stderr_text().split(s.sid, 1)[-1]


# --------------------------------------------------------------------------- handler failures


def count(text: str, needle: str) -> int:
    return text.count(needle)


def handler_errors(log: str, sid: str, where: str) -> int:
    """Lines logging a ``where`` handler's exception for ``sid`` (with the client's address)."""
    return len(re.findall(rf"sid {re.escape(sid)} \(client [^)]*\): {where} handler error", log))


def test_exception_in_message_handler_is_logged_once_and_the_session_survives(server: Any) -> None:
    url = server.url
    with Healthy(url):
        s = WSSession(url)
        p = Polling(url)
        s.ws.send("4boom")
        p.send("boom")
        s.echo("after boom")
        p.echo("after boom")
        still_open(url, s.sid)
        still_open(url, p.sid)
        wait_until(lambda: handler_errors(server.stderr_text(), p.sid, "message"), 5, "error logged")
        log = server.stderr_text()
        for sid in (s.sid, p.sid):
            assert handler_errors(log, sid, "message") == 1, log[-3000:]
        assert count(log, "RuntimeError: message handler failure requested by the test") >= 2


def test_exception_in_connect_handler_rejects_with_401_and_is_logged_once(server: Any) -> None:
    url = server.url
    with Healthy(url):
        before = server.stderr_text()
        n_before = count(before, "connect handler error")
        resp = raw_request(url, "GET", eio_path(extra="&connect_boom=1"))
        assert resp.status == 401, resp
        with pytest.raises(WSRejected) as refused:
            RawWS(url, eio_path(transport="websocket", extra="&connect_boom=1"))
        assert refused.value.status == 401
        wait_until(
            lambda: count(server.stderr_text(), "connect handler error") >= n_before + 2, 5, "errors logged"
        )
        log = server.stderr_text()[len(before) :]
        lines = [ln for ln in log.splitlines() if "connect handler error" in ln]
        assert len(lines) == 2, lines
        sids = []
        for ln in lines:
            found = re.search(r"sid ([A-Za-z0-9_-]{20}) \(client [^)]*\): connect handler error", ln)
            assert found, ln
            sids.append(found.group(1))
        assert count(log, "RuntimeError: connect handler failure requested by the test") == 2
        seen = events(url)
        for sid in sids:  # refused: never connected, nothing left behind, no disconnect either
            assert sid not in seen["connects"] and sid not in seen["transports"] and not reasons(seen, sid)


def test_exception_in_disconnect_handler_is_logged_once_and_the_server_survives(server: Any) -> None:
    url = server.url
    with Healthy(url):
        s = WSSession(url)
        s.ws.send("4boom-on-disconnect")
        assert s.receive() == "armed"
        s.ws.send("1")
        s.ws.close()
        closed_with(url, s.sid, ("client disconnect",))
        p = Polling(url)
        p.send("boom-on-disconnect")
        assert p.receive(1) == ["armed"]
        p.send("close-me")  # a server disconnect, through the same failing handler
        closed_with(url, p.sid, ("server disconnect",))
        for sid in (s.sid, p.sid):
            wait_until(
                lambda sid=sid: handler_errors(server.stderr_text(), sid, "disconnect") == 1, 5, "log"
            )
            assert handler_errors(server.stderr_text(), sid, "disconnect") == 1
        WSSession(url).echo("server fine")


def test_handler_that_sleeps_long_does_not_stall_heartbeats(server: Any) -> None:
    """An async handler awaiting 4 s (pingInterval + pingTimeout is 2 s): its own session
    and every other keep their heartbeat; later messages of that session are handled
    meanwhile (async_handlers=True)."""
    url = server.url
    with Healthy(url, max_latency=1.5):
        s = WSSession(url)
        p = Polling(url)
        t0 = time.monotonic()
        s.ws.send("4sleep:4")
        p.send("sleep:4")
        s.echo("not blocked")
        p.echo("not blocked")
        assert time.monotonic() - t0 < 2
        # a polling client must keep polling (and answering pings) while it waits
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            polled = pool.submit(p.receive, 1, 8)
            assert s.receive(timeout=8) == "slept"
            assert polled.result(timeout=10) == ["slept"]
        assert time.monotonic() - t0 > 3.5
        still_open(url, s.sid)
        still_open(url, p.sid)


@pytest.fixture(scope="module", params=BAD_INPUT_SERVERS)
def sync_server(request: pytest.FixtureRequest) -> Iterator[Any]:
    env = {**LOG_ENV, "EIO_SYNC_HANDLER": "1"}
    with running_server(APP, request.param, env=env) as srv:
        yield srv


def test_sync_handler_that_blocks_briefly_does_not_cost_anyone_their_session(sync_server: Any) -> None:
    """A plain-function handler blocking the loop for 0.6 s (< pingTimeout 1 s), three
    times in a row: everyone's heartbeat survives (it runs late, not never)."""
    url = sync_server.url
    with Healthy(url, max_latency=2.5):
        s = WSSession(url)
        for _ in range(3):
            s.ws.send("4block:0.6")
            assert s.receive(timeout=5) == "blocked"
        s.echo("fine")
        still_open(url, s.sid)
        assert not [r for _, r in events(url)["disconnects"] if r == "ping timeout"]


def test_send_to_a_closed_or_unknown_sid_warns_and_raises_nothing(server: Any) -> None:
    url = server.url
    with Healthy(url):
        gone = WSSession(url)
        gone.ws.send("1")
        gone.ws.close()
        closed_with(url, gone.sid, ("client disconnect",))
        s = WSSession(url)
        s.ws.send("4send-to:" + gone.sid)
        assert s.receive() == "sent"  # the handler went on after send(): nothing was raised
        s.ws.send("4send-to:no-such-sid")
        assert s.receive() == "sent"
        wait_until(lambda: "no-such-sid" in sync_text(server), 5, "warning logged")
        log = server.stderr_text()
        assert count(log, f"cannot send to sid {gone.sid}") == 1, log[-2000:]
        assert count(log, "cannot send to sid no-such-sid") == 1
        assert handler_errors(log, s.sid, "message") == 0


def sync_text(server: Any) -> str:
    return server.stderr_text()  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- shutdowns


def open_live_sessions(url: str) -> dict[str, Any]:
    """One session of every shape: websocket-only, upgraded, polling with a held GET,
    idle polling, and polling with a probe half-way."""
    live: dict[str, Any] = {}
    live["ws"] = WSSession(url)
    up = Polling(url)
    live["upgraded"] = (up, upgrade(url, up))
    held = Polling(url)
    live["held"] = (held, send_head(url, "GET", eio_path(held.sid)))
    live["idle"] = Polling(url)
    probing = Polling(url)
    probe = RawWS(url, eio_path(probing.sid, "websocket"))
    probe.send("2probe")
    assert probe.recv_packet() == ("3", "probe")
    live["probing"] = (probing, probe)
    wait_for(url, lambda s: held.sid in s["held_polls"] and probing.sid in s["probes"], 5, "sessions settled")
    return live


def live_sids(live: dict[str, Any]) -> dict[str, str]:
    out = {}
    for name, v in live.items():
        out[name] = v.sid if hasattr(v, "sid") else v[0].sid
    return out


@pytest.mark.parametrize("name", BAD_INPUT_SERVERS)
def test_server_shutdown_closes_every_live_session(name: str) -> None:
    with running_server(APP, name, env=LOG_ENV) as srv:
        url = srv.url
        live = open_live_sessions(url)
        sids = live_sids(live)
        assert control_get(url, "/control/shutdown") == "done"
        seen = wait_for(url, lambda s: all(reasons(s, sid) for sid in sids.values()), 8, "every disconnect")
        for kind, sid in sids.items():
            assert reasons(seen, sid) == ["server disconnect"], (kind, reasons(seen, sid))
        # what each client saw
        assert live["ws"].ws.recv_packet() == ("1", "")
        assert live["ws"].ws.wait_closed() == 1000
        assert live["upgraded"][1].recv_packet() == ("1", "")
        resp = read_response(live["held"][1])
        assert [t for t, _ in decode_payload(resp.body)] == ["1"], resp.body
        idle = live["idle"].get()  # the idle poller comes back and learns the session ended
        assert idle.status == 400 or [t for t, _ in decode_payload(idle.body)] == ["1"], idle
        # a session still waiting to hand out its CLOSE is dropped after close_timeout (5 s)
        left = wait_for_or_last(url, lambda s: s["open"] == 0, 8)
        kinds = {sid: k for k, sid in sids.items()}
        assert left["open"] == 0, (
            f"sessions left 8 s after shutdown(): {[kinds.get(sid, sid) for sid in left['transports']]}"
        )
        # the server still takes new sessions afterwards
        WSSession(url).echo("after shutdown")
        Polling(url).echo("after shutdown")


def wait_for_or_last(url: str, predicate: Any, timeout: float) -> dict[str, Any]:
    try:
        return wait_for(url, predicate, timeout)
    except AssertionError:
        return events(url)


def control_get(url: str, path: str) -> Any:
    resp = raw_request(url, "GET", path, timeout=15)
    assert resp.status == 200, resp
    return resp.json()


def pid_alive(pid: int) -> bool:
    """Whether a process still runs (read from /proc, nothing is signalled); zombies count as gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def read_event_log(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


@pytest.mark.parametrize("name", BAD_INPUT_SERVERS)
def test_lifespan_shutdown_on_sigterm_disconnects_every_live_session(name: str) -> None:
    fd, log_path = tempfile.mkstemp(prefix="eio-events-", suffix=".jsonl")
    os.close(fd)
    try:
        with running_server(APP, name, env={**LOG_ENV, "EIO_EVENT_LOG": log_path}) as srv:
            url = srv.url
            live = open_live_sessions(url)
            sids = live_sids(live)
            app_pid = events(url)["pid"]  # hypercorn runs the app in a worker process
            os.kill(srv.pid, signal.SIGTERM)  # the PID we started, nothing else
            wait_until(lambda: not srv.is_alive(), 15, f"{name} exiting after SIGTERM")
            wait_until(lambda: not pid_alive(app_pid), 15, f"{name}'s worker exiting after SIGTERM")
            output = srv.stderr_text()
        records = read_event_log(log_path)
    finally:
        os.unlink(log_path)
    disconnects: dict[str, list[str]] = {}
    for r in records:
        if r["event"] == "disconnect":
            disconnects.setdefault(r["sid"], []).append(r["detail"])
    problems = {k: disconnects.get(sid) for k, sid in sids.items() if len(disconnects.get(sid, [])) != 1}
    assert not problems, f"sessions without exactly one disconnect: {problems}\n{output[-3000:]}"
    print({k: disconnects[sid] for k, sid in sids.items()})
    for v in live.values():
        for part in v if isinstance(v, tuple) else (v,):
            sock = getattr(part, "sock", None) or getattr(getattr(part, "ws", None), "sock", None)
            if sock is not None:
                sock.close()
    assert "Traceback" not in output, output[-3000:]


def test_stale_sid_after_server_disconnect(server: Any) -> None:
    url = server.url
    with Healthy(url):
        s = WSSession(url)
        s.ws.send("4close-me")
        assert s.ws.recv_packet() == ("1", "")
        assert s.ws.wait_closed() == 1000
        closed_with(url, s.sid, ("server disconnect",))
        with pytest.raises(WSClosed):
            s.ws.recv_packet(timeout=0.5)
