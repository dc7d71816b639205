"""The session's state machines as tables (``engineio_sansio.machine``): complete and
consistent, every missing entry refused, the core's code paths going through them, and
the tables in ``docs/sansio.md`` the same as the code's.

The hypothesis machines of ``test_properties.py`` check every transition they cause
against the tables (``transitions.TransitionWatch``); the scenarios here reach the
entries those machines do not (a v3 client's heartbeat, clients not monitored, a
session closed before the application decided).
"""

from __future__ import annotations

import re
from collections import deque
from pathlib import Path
from typing import Any

import pytest

from engineio_sansio import (
    CloseReason,
    CloseWebSocket,
    ConnectRequest,
    IllegalTransition,
    LocalProtocolError,
    Request,
    Respond,
    Server,
    ServerConfig,
    SessionClosed,
)
from engineio_sansio.machine import (
    HEARTBEAT_V3,
    HEARTBEAT_V4,
    MACHINES,
    SESSION,
    UPGRADE,
    Heartbeat,
    Input,
    Machine,
    SessionState,
    Upgrade,
)

from .client_model import Client, Hub, defer_connect
from .transitions import TransitionWatch

DOCS = Path(__file__).resolve().parents[2] / "docs" / "sansio.md"
H = Heartbeat
S = SessionState
U = Upgrade


def reachable(machine: Machine[Any]) -> set[Any]:
    seen = {machine.initial}
    todo = deque([machine.initial])
    while todo:
        for new in machine.table[todo.popleft()].values():
            if new not in seen:
                seen.add(new)
                todo.append(new)
    return seen


def leads_to(machine: Machine[Any], state: Any, targets: set[Any]) -> bool:
    seen = {state}
    todo = deque([state])
    while todo:
        current = todo.popleft()
        if current in targets:
            return True
        for new in machine.table[current].values():
            if new not in seen:
                seen.add(new)
                todo.append(new)
    return False


class Stub:
    """The attributes a machine keeps its state and deadline in, and nothing else."""

    def __init__(self, **states: Any) -> None:
        self.sid = "stub"
        self.__dict__.update(states)


def stub_for(machine: Machine[Any], state: Any) -> Stub:
    return Stub(**{machine._state: state, machine._deadline: None})


# --------------------------------------------------------------------------- the tables


@pytest.mark.parametrize("machine", MACHINES, ids=lambda m: m.name)
def test_every_state_is_reachable_and_every_entry_names_a_state(machine: Machine[Any]) -> None:
    states = set(machine.table)
    assert machine.initial in states
    for entries in machine.table.values():
        assert set(entries.values()) <= states, "an entry leads to a state with no row"
        assert all(isinstance(cause, Input) for cause in entries)
    assert reachable(machine) == states, f"unreachable: {states - reachable(machine)}"
    assert machine.timed <= states


def test_closed_is_terminal_and_every_state_can_close() -> None:
    assert SESSION.table[S.CLOSED] == {}
    assert set(SESSION.table) == set(SessionState)
    terminals = {state for state, entries in SESSION.table.items() if not entries}
    assert terminals == {S.CLOSED}
    for state in SessionState:
        assert leads_to(SESSION, state, {S.CLOSED}), f"{state.value} never closes"


@pytest.mark.parametrize("machine", [HEARTBEAT_V4, HEARTBEAT_V3], ids=["v4", "v3"])
def test_every_heartbeat_stops_when_the_session_ends(machine: Machine[Heartbeat]) -> None:
    for state, entries in machine.table.items():
        if state is not H.OFF:
            for cause in (
                Input.SERVER_CLOSE,
                Input.CLOSE_PACKET,
                Input.TRANSPORT_LOST,
                Input.TRANSPORT_ERROR,
            ):
                assert entries[cause] is H.OFF, f"{state.value} on {cause.value}"
    # only a state with a ping deadline times out; a ping is sent only where one is scheduled
    for state, entries in machine.table.items():
        assert (Input.PING_TIMEOUT in entries) == (state in machine.timed and state is not H.PING_SCHEDULED)
        assert (Input.PING_DUE in entries) == (state is H.PING_SCHEDULED)


def test_the_upgrade_and_the_session_agree() -> None:
    """Every input that starts or ends an upgrade moves both machines: upgrading is probing."""
    for cause in Input:
        upgrade = {state: entries[cause] for state, entries in UPGRADE.table.items() if cause in entries}
        session = {state: entries[cause] for state, entries in SESSION.table.items() if cause in entries}
        if any(new is U.PROBING for new in upgrade.values()):
            assert session == {S.OPEN: S.UPGRADING}, cause
        if any(state in UPGRADE.timed and new not in UPGRADE.timed for state, new in upgrade.items()):
            assert session.get(S.UPGRADING) is S.OPEN, cause


@pytest.mark.parametrize("machine", MACHINES, ids=lambda m: m.name)
def test_every_missing_entry_is_refused(machine: Machine[Any]) -> None:
    refused = 0
    for state, entries in machine.table.items():
        for cause in Input:
            stub = stub_for(machine, state)
            if cause in entries:
                assert machine.allows(state, cause)
                continue
            assert not machine.allows(state, cause)
            message = re.escape(f"{state.value!r} has no entry for {cause.value!r}")
            with pytest.raises(IllegalTransition, match=message):
                machine.step(stub, cause, 1.0)
            assert getattr(stub, machine._state) is state, "a refused input changed the state"
            refused += 1
    assert refused > 0


@pytest.mark.parametrize("machine", MACHINES, ids=lambda m: m.name)
def test_a_state_with_a_deadline_owns_it(machine: Machine[Any]) -> None:
    """Entering a state with a deadline takes one; entering one without drops the old one."""
    for state, entries in machine.table.items():
        for cause, new in entries.items():
            stub = stub_for(machine, state)
            wrong = None if new in machine.timed else 5.0
            with pytest.raises(LocalProtocolError, match="deadline"):
                machine.step(stub, cause, wrong)
            right = 5.0 if new in machine.timed else None
            assert machine.step(stub, cause, right) is new
            assert getattr(stub, machine._deadline) == right


# --------------------------------------------------------------------------- misuse


def polling_handshake(server: Server, now: float = 0.0) -> tuple[int, str]:
    rid, events = server.receive_request(Request("GET", {"EIO": "4", "transport": "polling"}), now)
    (connect,) = [ev for ev in events if isinstance(ev, ConnectRequest)]
    return rid, connect.sid


def test_accepting_twice_raises() -> None:
    server = Server()
    _, sid = polling_handshake(server)
    server.accept(sid, 0.0)
    deadline = server.next_deadline()
    with pytest.raises(IllegalTransition, match="'open' has no entry for 'accept\\(\\)'"):
        server.accept(sid, 1.0)
    assert server.next_deadline() == deadline, "the refused call moved the timer"
    assert server.close(sid, 1.0)[0] == SessionClosed(sid, CloseReason.SERVER_DISCONNECT), (
        "the refused call left events behind"
    )


def test_rejecting_an_accepted_session_raises() -> None:
    server = Server()
    _, sid = polling_handshake(server)
    server.accept(sid, 0.0)
    with pytest.raises(IllegalTransition, match="'open' has no entry for 'reject\\(\\)'"):
        server.reject(sid)
    assert server.send(sid, "still open") == (), "the refused call left events behind, or closed it"


def without(machine: Machine[Any], state: Any, cause: Input) -> dict[Any, Any]:
    table = {s: dict(entries) for s, entries in machine.table.items()}
    del table[state][cause]
    return table


def test_the_heartbeat_goes_through_its_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """A table without 'ping due' makes the timer's ping a refused transition."""
    server = Server(ServerConfig(ping_interval=1.0))
    _, sid = polling_handshake(server)
    server.accept(sid, 0.0)
    monkeypatch.setattr(HEARTBEAT_V4, "table", without(HEARTBEAT_V4, H.PING_SCHEDULED, Input.PING_DUE))
    with pytest.raises(IllegalTransition, match="'waiting to ping' has no entry for 'ping due'"):
        server.handle_timer(1.0)


def test_the_upgrade_goes_through_its_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """A table without 'upgrade timeout' makes the upgrade's timeout a refused transition."""
    server = Server(ServerConfig(upgrade_timeout=1.0))
    _, sid = polling_handshake(server)
    server.accept(sid, 0.0)
    server.receive_request(
        Request("GET", {"EIO": "4", "transport": "websocket", "sid": sid}), 0.0, websocket=True
    )
    monkeypatch.setattr(UPGRADE, "table", without(UPGRADE, U.PROBING, Input.UPGRADE_TIMEOUT))
    with pytest.raises(IllegalTransition, match="'probing' has no entry for 'upgrade timeout'"):
        server.handle_timer(1.0)


def test_closing_goes_through_its_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """A table without 'close timeout' makes a closing session's timeout a refused transition."""
    server = Server(ServerConfig(close_timeout=1.0))
    _, sid = polling_handshake(server)
    server.accept(sid, 0.0)
    server.close(sid, 0.5)  # no poll held: the CLOSE packet waits for the next one
    monkeypatch.setattr(SESSION, "table", without(SESSION, S.CLOSING, Input.CLOSE_TIMEOUT))
    with pytest.raises(IllegalTransition, match="'closing' has no entry for 'close timeout'"):
        server.handle_timer(1.5)


# --------------------------------------------------------------------------- a client's packets


def test_a_packet_the_upgrade_has_no_entry_for_fails_the_probe() -> None:
    """A client's packet with no entry is its protocol error, as before: ``5`` before
    ``2probe`` closes the probe with 1002, and polling carries on."""
    hub = Hub()
    c = Client(hub)
    with TransitionWatch() as watch:
        c.open_polling()
        probe = c.start_upgrade()
        c.send_frame("5", probe)
    assert probe.close_codes == [1002]
    assert watch.seen[("upgrade", U.PROBING, Input.PROBE_ERROR)] == 1
    assert c.view.state is S.OPEN
    assert hub.app_send(c.sid or "", "still polling")


def test_a_pong_with_no_ping_outstanding_is_ignored() -> None:
    hub = Hub(ServerConfig(ping_interval=1.0))
    c = Client(hub)
    with TransitionWatch() as watch:
        c.open_websocket()
        deadline = hub.server.next_deadline()
        before = dict(watch.seen)
        c.send_frame("3")
        assert watch.seen == before and hub.server.next_deadline() == deadline


# --------------------------------------------------------------------------- entries the machines miss


def test_unmonitored_heartbeat_goes_late_and_a_pong_restarts_it() -> None:
    hub = Hub(ServerConfig(ping_interval=1.0, ping_timeout=0.5, monitor_clients=False))
    c = Client(hub)
    with TransitionWatch() as watch:
        c.open_websocket()
        hub.advance(1.01)  # ping
        hub.advance(0.6)  # no pong in time: late, no deadline
        assert hub.server.next_deadline() is None
        c.send_frame("3")
        assert hub.server.next_deadline() == pytest.approx(hub.now + 1.0)
    assert watch.seen[("heartbeat", H.PONG_OUTSTANDING, Input.PING_TIMEOUT_IGNORED)] == 1
    assert watch.seen[("heartbeat", H.PONG_LATE, Input.PONG)] == 1


@pytest.mark.parametrize("monitor", [True, False])
def test_v3_heartbeat_waits_for_the_clients_ping(monitor: bool) -> None:
    config = ServerConfig(allow_eio3=True, ping_interval=1.0, ping_timeout=0.5, monitor_clients=monitor)
    hub = Hub(config)
    with TransitionWatch() as watch:
        rid = hub.request(Request("GET", {"EIO": "3", "transport": "websocket"}), websocket=True)
        first = hub.server.next_deadline()
        assert first == pytest.approx(hub.now + 1.0 + config.ping_interval_grace + 0.5)
        hub.advance(0.5)
        hub.receive_frame(rid, "2")
        hub.advance(first - hub.now + 0.1)  # past the first deadline: the ping moved it (if monitored)
        assert not hub.closed[next(iter(hub.sessions))]
        hub.advance(10)
    (sid,) = hub.sessions
    expected = {("heartbeat (v3)", H.OFF, Input.ACCEPT)}
    if monitor:
        expected |= {
            ("heartbeat (v3)", H.CLIENT_PING_AWAITED, Input.CLIENT_PING),
            ("heartbeat (v3)", H.CLIENT_PING_AWAITED, Input.PING_TIMEOUT),
        }
        assert hub.closed[sid][0].value == "ping timeout"
    else:
        expected.add(("heartbeat (v3)", H.CLIENT_PING_AWAITED, Input.PING_TIMEOUT_IGNORED))
        assert not hub.closed[sid]
    assert expected <= set(watch.seen)


@pytest.mark.parametrize(
    ("frame", "cause"), [("1", Input.CLOSE_PACKET), ("x", Input.TRANSPORT_ERROR)], ids=["close", "bad-frame"]
)
def test_a_websocket_that_ends_before_the_decision_refuses_the_handshake(frame: str, cause: Input) -> None:
    server = Server()
    with TransitionWatch() as watch:
        rid, _ = server.receive_request(
            Request("GET", {"EIO": "4", "transport": "websocket"}), 0.0, websocket=True
        )
        events = server.receive_frame(rid, frame, 0.0)
    assert [type(ev) for ev in events] == [Respond] and events[0].status == 401  # type: ignore[union-attr]
    assert set(watch.seen) == {("session", S.OPENING, cause)}


def test_closing_in_the_connect_handler_refuses_the_handshake() -> None:
    hub = Hub()
    hub.on_connect = defer_connect
    c = Client(hub)
    with TransitionWatch() as watch:
        c.connect_polling()
        hub.app_close(hub.deferred[0].sid)
    assert set(watch.seen) == {("session", S.OPENING, Input.SERVER_CLOSE)}
    assert not [ev for ev in hub.log if isinstance(ev, (SessionClosed, CloseWebSocket))]


# --------------------------------------------------------------------------- the docs


def docs_tables(machine: Machine[Any]) -> str:
    """The table of ``machine`` as docs/sansio.md shows it: one row per state and next
    state, the inputs that lead there together."""
    rows = ["| State | On | Goes to |", "| --- | --- | --- |"]
    for state, entries in machine.table.items():
        by_next: dict[Any, list[str]] = {}
        for cause, new in entries.items():
            by_next.setdefault(new, []).append(f"`{cause.value}`")
        name = f"**{state.value}**" + (" ⏱" if state in machine.timed else "")
        if not by_next:
            rows.append(f"| {name} | (nothing: final) | |")
        for new, causes in by_next.items():
            rows.append(f"| {name} | {', '.join(causes)} | {new.value} |")
    return "\n".join(rows)


@pytest.mark.parametrize("machine", MACHINES, ids=lambda m: m.name)
def test_the_docs_show_the_tables_of_the_code(machine: Machine[Any]) -> None:
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index("## The session's states") :]
    section = section[: section.index("\n## ", 1)]
    table = docs_tables(machine)
    assert table in section, f"docs/sansio.md lacks (or has an old) {machine.name} table; it is now:\n{table}"


def test_the_docs_tables_are_all_there_is() -> None:
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index("## The session's states") :]
    section = section[: section.index("\n## ", 1)]
    shown = sum(1 for line in section.splitlines() if re.match(r"\| \*\*", line))
    assert shown == sum(len(docs_tables(m).splitlines()) - 2 for m in MACHINES)
