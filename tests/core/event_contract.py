"""The contract between the core and any runtime, checked event by event.

:class:`PublicOnly` is the core as a runtime may see it: its 13 public names and
nothing else. :class:`EventContract` checks, as a runtime performs the events, every
rule a runtime relies on to need nothing but the event stream (the shared hub in
``client_model`` runs it on every event of every test that drives a server).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from engineio_sansio import (
    AcceptWebSocket,
    CloseReason,
    CloseWebSocket,
    ConnectRequest,
    Event,
    MessageReceived,
    Request,
    RequestRefused,
    Respond,
    SendFrames,
    SessionClosed,
    Transport,
    Upgraded,
)

INPUTS = (
    "receive_request",
    "receive_body",
    "receive_frame",
    "connection_lost",
    "frames_sent",
    "send_failed",
    "accept",
    "reject",
    "send",
    "close",
    "handle_timer",
)
"""The core's input methods: each returns the events it caused (``receive_request``
with the request's id, ``send`` None when the session takes no more messages)."""
SERVER_API = (*INPUTS, "next_deadline", "config")
"""The 13 public names of ``engineio_sansio.Server``: all a runtime may use."""


def _events_of(name: str, result: Any) -> Sequence[Event]:
    if name == "receive_request":
        return result[1]  # type: ignore[no-any-return]
    return () if result is None else result  # type: ignore[no-any-return]


class PublicOnly:
    """A ``Server`` with nothing but its public names: any other attribute is an ``AttributeError``.

    Every hub drives the core through one, so no test helper can lean on the core's
    insides without it showing. It is also the test runtime's worklist: each input
    returns its events as the core's do, and they are queued, in order, for
    :meth:`take_events` (which is the adapter's, not the core's).

    ``overrides`` replace public names (a test's faulty core); ``tamper`` rewrites
    the events of every input before they are queued (a faulty core's stream).
    """

    __slots__ = (*SERVER_API, "take_events", "_queue")

    def __init__(
        self, core: Any, tamper: Callable[[Sequence[Event]], Sequence[Event]] | None = None, **overrides: Any
    ) -> None:
        unknown = set(overrides) - set(SERVER_API)
        if unknown:
            raise AttributeError(f"not public names of the core: {sorted(unknown)}")
        queue: list[Event] = []
        object.__setattr__(self, "_queue", queue)
        for name in SERVER_API:
            method = overrides[name] if name in overrides else getattr(core, name)
            if name in INPUTS:
                method = _queueing(name, method, queue, tamper)
            object.__setattr__(self, name, method)

        def take_events() -> list[Event]:
            events = queue[:]
            queue.clear()
            return events

        object.__setattr__(self, "take_events", take_events)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"the core's public API is read-only ({name!r})")

    def __repr__(self) -> str:
        return "<PublicOnly Server>"


def _queueing(
    name: str,
    method: Callable[..., Any],
    queue: list[Event],
    tamper: Callable[[Sequence[Event]], Sequence[Event]] | None,
) -> Callable[..., Any]:
    """``method``, with the events it returns also queued (after ``tamper``)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        result = method(*args, **kwargs)
        events = _events_of(name, result)
        queue.extend(tamper(events) if tamper is not None else events)
        return result

    call.__name__ = name
    return call


class ContractViolation(AssertionError):
    """The event stream broke a rule a runtime relies on."""


class EventContract:
    """What every runtime relies on, checked on each event as it is performed.

    Per request id: at most one ``Respond``; none for a websocket after its
    ``AcceptWebSocket``; ``SendFrames`` and ``CloseWebSocket`` only on an accepted
    websocket, never a second ``SendFrames`` before ``frames_sent``/``send_failed``,
    ``CloseWebSocket`` only once every write is done and nothing at all after it;
    nothing for a request the runtime reported gone. Per session: a ``ConnectRequest``
    is answered (``Respond`` or ``AcceptWebSocket``) once, and only after the
    application decided; messages, ``Upgraded`` and ``SessionClosed`` only for a session
    the application accepted, ``SessionClosed`` once. Per sid, at most one GET held at a
    time. A ``RequestRefused`` is followed at once by its request's ``Respond``, whose
    status is an error and whose JSON body has the event's code (and the message of
    its context, if it has one); every error ``Respond`` but the application's 401
    comes after one. :meth:`finish` checks that everything ended.
    """

    def __init__(self) -> None:
        self.websocket: dict[int, bool] = {}  # every request id issued: is it a websocket?
        self.responded: set[int] = set()
        self.accepted_ws: set[int] = set()
        self.closed_ws: set[int] = set()
        self.writing: set[int] = set()  # SendFrames out, not reported written yet
        self.lost: set[int] = set()
        self.connects: dict[str, ConnectRequest] = {}
        self.connect_sid: dict[int, str] = {}
        self.decisions: dict[str, str] = {}
        self.refused: set[str] = set()  # handshake answered 401
        self.ended: dict[str, CloseReason] = {}
        self.upgraded: set[str] = set()
        self.gets: dict[str, set[int]] = defaultdict(set)  # GETs on a sid the core has not answered
        self.refusing: RequestRefused | None = None  # its Respond must be the next event

    def fail(self, why: str) -> None:
        raise ContractViolation(why)

    # --- what the runtime did ------------------------------------------------

    def request(self, rid: int, request: Request, websocket: bool) -> None:
        if rid in self.websocket:
            self.fail(f"request id {rid} issued twice")
        self.websocket[rid] = websocket
        sid = request.query.get("sid")
        if not websocket and request.method == "GET" and sid is not None:
            self.gets[sid].add(rid)

    def decided(self, sid: str, how: str) -> None:
        if sid in self.connects:
            self.decisions.setdefault(sid, how)

    def written(self, rid: int) -> None:
        if rid not in self.writing:
            self.fail(f"the runtime reported a write on {rid} that it was never given")
        self.writing.discard(rid)

    def gone(self, rid: int) -> None:
        self.lost.add(rid)
        self.writing.discard(rid)
        for rids in self.gets.values():
            rids.discard(rid)

    # --- what the core said --------------------------------------------------

    def on(self, ev: Event) -> None:
        kind = type(ev)
        refusing = self.refusing
        if refusing is not None:
            self.refusing = None
            self.check_refusal(refusing, ev)
        elif kind is Respond and ev.status >= 400 and ev.status != 401:  # type: ignore[union-attr]
            self.fail(f"{ev!r}: an error response without its RequestRefused")
        if kind is MessageReceived or kind is Upgraded or kind is SessionClosed:
            self.on_session_event(ev)
            return
        if kind is ConnectRequest:
            self.on_connect(ev)  # type: ignore[arg-type]
            return
        rid: int = ev.request_id  # type: ignore[union-attr]
        if rid not in self.websocket:
            self.fail(f"{ev!r} names a request id the runtime never had")
        if rid in self.lost:
            self.fail(f"{ev!r} for a request the runtime reported gone")
        if rid in self.closed_ws:
            self.fail(f"{ev!r} after CloseWebSocket({rid})")
        if kind is Respond:
            if rid in self.responded:
                self.fail(f"a second Respond for request {rid}: {ev!r}")
            if rid in self.accepted_ws:
                self.fail(f"Respond for websocket {rid} after its AcceptWebSocket: {ev!r}")
            self.check_decided(rid, ev)
            self.responded.add(rid)
            sid = self.connect_sid.get(rid)
            if sid is not None and ev.status == 401:  # type: ignore[union-attr]
                self.refused.add(sid)
            for rids in self.gets.values():
                rids.discard(rid)
        elif kind is AcceptWebSocket:
            if not self.websocket[rid]:
                self.fail(f"AcceptWebSocket for an HTTP request: {ev!r}")
            if rid in self.responded or rid in self.accepted_ws:
                self.fail(f"AcceptWebSocket for websocket {rid} answered already")
            self.check_decided(rid, ev)
            if rid in self.connect_sid and self.decisions.get(self.connect_sid[rid]) != "accept":
                self.fail(f"websocket {rid} accepted for a session the application did not accept")
            self.accepted_ws.add(rid)
        elif kind is SendFrames:
            if rid not in self.accepted_ws:
                self.fail(f"SendFrames on websocket {rid} before its AcceptWebSocket")
            if rid in self.writing:
                self.fail(f"a second SendFrames on websocket {rid} before frames_sent: {ev!r}")
            frames = ev.frames  # type: ignore[union-attr]
            if not frames or not all(type(f) in (str, bytes) for f in frames):
                self.fail(f"SendFrames without frames, or with frames of another type: {ev!r}")
            self.writing.add(rid)
        elif kind is RequestRefused:
            if rid in self.responded or rid in self.accepted_ws:
                self.fail(f"{ev!r} for a request answered already")
            self.refusing = ev  # type: ignore[assignment]
        elif kind is CloseWebSocket:
            if rid not in self.accepted_ws:
                self.fail(f"CloseWebSocket for websocket {rid} before its AcceptWebSocket")
            if rid in self.writing:
                self.fail(f"CloseWebSocket for websocket {rid} while its frames are being written")
            self.closed_ws.add(rid)
        else:
            self.fail(f"unknown event {ev!r}")

    def on_connect(self, ev: ConnectRequest) -> None:
        rid, sid = ev.request_id, ev.sid
        if rid not in self.websocket or rid in self.responded or rid in self.lost:
            self.fail(f"{ev!r} for a request that is unknown, answered or gone")
        if sid in self.connects:
            self.fail(f"session id {sid!r} handed out twice")
        if (ev.transport is Transport.WEBSOCKET) != self.websocket[rid]:
            self.fail(f"{ev!r}: the transport does not match the request")
        self.connects[sid] = ev
        self.connect_sid[rid] = sid

    def check_refusal(self, refused: RequestRefused, ev: Event) -> None:
        if type(ev) is not Respond or ev.request_id != refused.request_id:
            self.fail(f"{refused!r} is followed by {ev!r}, not by its Respond")
            return
        if ev.status < 400:
            self.fail(f"{refused!r} is answered with status {ev.status}")
        body = json.loads(ev.body)
        message = refused.context.get("message", refused.message)
        if body != {"code": int(refused.code), "message": message}:
            self.fail(f"{refused!r} is answered with the body {ev.body!r}")

    def check_decided(self, rid: int, ev: Event) -> None:
        sid = self.connect_sid.get(rid)
        if sid is not None and sid not in self.decisions:
            self.fail(f"{ev!r} answers the handshake of {sid} before the application decided")

    def on_session_event(self, ev: Any) -> None:
        sid = ev.sid
        if self.decisions.get(sid) != "accept" or sid in self.refused:
            self.fail(f"{ev!r} for a session the application never accepted")
        if sid in self.ended:
            self.fail(f"{ev!r} after SessionClosed({sid}, {self.ended[sid].value})")
        if type(ev) is SessionClosed:
            self.ended[sid] = ev.reason
        elif type(ev) is Upgraded:
            if sid in self.upgraded or self.connects[sid].transport is not Transport.POLLING:
                self.fail(f"{ev!r}: only a polling session upgrades, once")
            if ev.request_id not in self.accepted_ws:
                self.fail(f"{ev!r} names a websocket that was never accepted")
            self.upgraded.add(sid)

    # --- checks ------------------------------------------------------------------

    def settled(self) -> None:
        """After the events of one call: at most one GET held per session."""
        for sid, rids in self.gets.items():
            if len(rids) > 1:
                self.fail(f"the core holds {len(rids)} GETs for {sid} at once: {sorted(rids)}")

    def finish(self) -> None:
        """Once the application closed everything and time ran out: everything ended."""
        for sid, ev in self.connects.items():
            rid = ev.request_id
            if sid not in self.decisions:
                self.fail(f"{sid}: its ConnectRequest was never decided")
            if rid not in self.lost and rid not in self.responded and rid not in self.accepted_ws:
                self.fail(f"{sid}: the handshake request {rid} never got its answer")
            if self.decisions[sid] == "accept" and sid not in self.refused and sid not in self.ended:
                self.fail(f"{sid} was accepted and never got its SessionClosed")
        for rid, ws in self.websocket.items():
            if rid in self.lost:
                continue
            if not ws and rid not in self.responded:
                self.fail(f"HTTP request {rid} never got its Respond")
            if ws and rid in self.accepted_ws and rid not in self.closed_ws:
                self.fail(f"websocket {rid} was never closed")
            if ws and rid not in self.accepted_ws and rid not in self.responded:
                self.fail(f"websocket {rid} was never answered")
        if self.refusing is not None:
            self.fail(f"{self.refusing!r} never got its Respond")
        if self.writing:
            self.fail(f"writes never reported done: {sorted(self.writing)}")
