"""A POST whose body is one CLOSE packet (``1``) takes a shorter way through the core.

It must come out exactly as the general way does: the same events in the same
order (``SessionClosed`` with ``client disconnect``, the held poll's answer, the
``ok``), the same session transitions, the same counters. The general way is
reached with a body that means the same thing but is not the lone packet: a
NOOP first (``6`` + record separator + ``1``).
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engineio_sansio import ConnectRequest, Request, Server, ServerConfig, Stats
from engineio_sansio.machine import observing

ORIGIN = "http://example.com"
SHORT = b"1"
GENERAL = b"6\x1e1"  # a NOOP, then the same CLOSE packet: decoded packet by packet


def _ids() -> Any:
    counter = itertools.count()
    return lambda: f"sid{next(counter):04d}"


def _request(method: str, query: dict[str, str], origin: bool) -> Request:
    headers = {"host": "example.com"}
    if origin:
        headers["origin"] = ORIGIN
    return Request(method, query, headers)


def _run(body: bytes, *, origin: bool, held_poll: bool, queued: int, cookie: bool, in_parts: bool) -> Any:
    """A polling session opened and accepted, then closed by a POST of ``body``."""
    config = ServerConfig(
        cors_allowed_origins=[ORIGIN] if origin else None,
        cookie="io" if cookie else None,
    )
    stats = Stats()
    core = Server(config, sid_generator=_ids(), stats=stats)
    seen: list[Any] = []
    transitions: list[Any] = []
    with observing(lambda *t: transitions.append(t)):
        rid, events = core.receive_request(
            _request("GET", {"EIO": "4", "transport": "polling"}, origin), 1.0
        )
        seen.append(list(events))
        (connect,) = events
        assert type(connect) is ConnectRequest
        sid = connect.sid
        seen.append(list(core.accept(sid, 1.0)))
        query = {"EIO": "4", "transport": "polling", "sid": sid}
        if held_poll:
            _, events = core.receive_request(_request("GET", query, origin), 1.5)
            seen.append(list(events))
        for i in range(queued):
            seen.append(list(core.send(sid, f"m{i}") or ()))
        post, events = core.receive_request(_request("POST", query, origin), 2.0)
        seen.append(list(events))
        if in_parts and len(body) > 1:
            seen.append(list(core.receive_body(post, body[:1], True, 2.0)))
            seen.append(list(core.receive_body(post, body[1:], False, 2.0)))
        else:
            seen.append(list(core.receive_body(post, body, False, 2.0)))
        seen.append(core.next_deadline())
        seen.append(list(core.connection_lost(post, 2.5)))  # answered: nothing more
    counters = dataclasses.asdict(stats.snapshot())
    received = counters.pop("bytes_received")
    return seen, transitions, counters, received["polling"]


@pytest.mark.parametrize("origin", [False, True], ids=["same-origin", "cors"])
@pytest.mark.parametrize("held_poll", [False, True], ids=["no-poll", "held-poll"])
@pytest.mark.parametrize("queued", [0, 2])
@pytest.mark.parametrize("cookie", [False, True], ids=["no-cookie", "cookie"])
def test_lone_close_packet_matches_the_general_way(
    origin: bool, held_poll: bool, queued: int, cookie: bool
) -> None:
    opts = dict(origin=origin, held_poll=held_poll, queued=queued, cookie=cookie, in_parts=False)
    short = _run(SHORT, **opts)
    general = _run(GENERAL, **opts)
    assert short[:3] == general[:3]
    assert (short[3], general[3]) == (len(SHORT), len(GENERAL))
    events = short[0]
    assert any(type(e).__name__ == "SessionClosed" and e.reason == "client disconnect" for e in events[-3])
    assert events[-3][-1].body == b"ok"


@settings(max_examples=60, deadline=None)
@given(
    origin=st.booleans(),
    held_poll=st.booleans(),
    queued=st.integers(0, 3),
    cookie=st.booleans(),
    in_parts=st.booleans(),
)
def test_close_packet_bodies_agree(origin: bool, held_poll: bool, queued: int, cookie: bool, in_parts: bool) -> None:
    """Any split of the general body, any session around it: the same outcome as ``1``."""
    opts = dict(origin=origin, held_poll=held_poll, queued=queued, cookie=cookie)
    short = _run(SHORT, in_parts=False, **opts)
    general = _run(GENERAL, in_parts=in_parts, **opts)
    # (a body in parts adds one empty event list: the first part answers nothing)
    general_seen = [s for s in general[0] if s != []]
    assert [s for s in short[0] if s != []] == general_seen
    assert short[1:3] == general[1:3]
