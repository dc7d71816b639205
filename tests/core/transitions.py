"""Watching the core's state machines from the tests (see ``engineio_sansio.machine``).

The core makes every state change through ``Machine.step``, which tells the
observers registered with ``machine.observing``. A :class:`TransitionWatch` checks
each one: it is an entry of its machine's table, and it starts where the session's
previous transition of that machine ended (from the machine's first state for a new
session), so a state set anywhere but through the table breaks the chain and is
caught at the next transition.
"""

from __future__ import annotations

import collections
from typing import Any

from hypothesis import event
from hypothesis.control import currently_in_test_context

from engineio_sansio.machine import MACHINES, Input, SessionState, observing

BY_NAME = {m.name: m for m in MACHINES}


class TransitionWatch:
    """Checks and counts the transitions of the sessions of one server (sids are unique there)."""

    def __init__(self) -> None:
        self.last: dict[tuple[str, str], Any] = {}
        self.seen: collections.Counter[tuple[str, Any, Input]] = collections.Counter()
        self._context = observing(self)

    def __call__(self, sid: str, name: str, current: Any, cause: Input, new: Any) -> None:
        machine = BY_NAME[name]
        assert machine.table.get(current, {}).get(cause) is new, (
            f"session {sid}: {name} {current.value} --{cause.value}--> {new.value} is not in the table"
        )
        before = self.last.get((sid, name), machine.initial)
        assert before is current, (
            f"session {sid}: the {name} machine was left in {before.value!r} and moved on from "
            f"{current.value!r}: a state changed outside the table"
        )
        self.last[(sid, name)] = new
        self.seen[(name, current, cause)] += 1
        if currently_in_test_context():  # each entry a hypothesis event: its statistics
            event(f"{name}: {current.value} --{cause.value}--> {new.value}")

    def start(self) -> TransitionWatch:
        self._context.__enter__()
        return self

    def stop(self) -> None:
        self._context.__exit__(None, None, None)

    def __enter__(self) -> TransitionWatch:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def states(self, name: str) -> dict[str, Any]:
        """The state each session was last seen in by machine ``name`` (by sid)."""
        return {sid: state for (sid, n), state in self.last.items() if n == name}

    def check_all_closed(self) -> None:
        """Every session seen has closed, its heartbeat off and no upgrade in progress."""
        for sid, state in self.states("session").items():
            assert state is SessionState.CLOSED, f"session {sid} ended in {state.value}"
        for name in ("heartbeat", "heartbeat (v3)"):
            for sid, state in self.states(name).items():
                assert state.value == "off", f"session {sid}: its {name} is {state.value} once closed"
        for sid, state in self.states("upgrade").items():
            assert state.value in ("none", "upgraded"), f"session {sid}: upgrade {state.value} once closed"
