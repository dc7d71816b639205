"""The Socket.IO admin UI on engineio_asgi: python-socketio's admin namespace, fed from our counters.

python-socketio's ``InstrumentedAsyncServer`` serves the admin namespace
(authentication, ``config``, ``all_sockets``, the room and disconnect commands),
and we keep all of that. What it learns from python-engineio it gets by
replacing methods of python-engineio's private socket class and reading
``eio.sockets``; engineio_asgi has neither, so those parts are done here from
public state instead:

* clients and polling clients: :meth:`AsyncServer.stats() <engineio_asgi.AsyncServer.stats>`;
* packets and bytes in and out: the differences of its message and byte
  counters between two ``server_stats`` reports;
* each socket's transport: ``eio.transport(sid)``; the upgrade is reported
  (``socket_updated``) when it happens, not found by polling.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from socketio.async_admin import HOSTNAME, PID, InstrumentedAsyncServer  # type: ignore[import-untyped]

from engineio_sansio import StatsSnapshot

__all__ = ["AdminInstrumentation"]


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def _traffic(stats: StatsSnapshot) -> dict[str, int]:
    """The admin UI's four traffic counters, from ours (messages stand for its packets)."""
    return {
        "packetsIn": sum(stats.messages_received.values()),
        "packetsOut": sum(stats.messages_sent.values()),
        "bytesIn": sum(stats.bytes_received.values()),
        "bytesOut": sum(stats.bytes_sent.values()),
    }


class AdminInstrumentation(InstrumentedAsyncServer):  # type: ignore[misc]
    """python-socketio's admin instrumentation, reading engineio_asgi's public state."""

    def instrument(self) -> None:
        sio = self.sio
        ns = self.admin_namespace
        sio.on("connect", self.admin_connect, namespace=ns)
        self._originals: dict[str, Any] = {}
        if self.mode == "development":
            if not self.read_only:
                sio.on("emit", self.admin_emit, namespace=ns)
                sio.on("join", self.admin_enter_room, namespace=ns)
                sio.on("leave", self.admin_leave_room, namespace=ns)
                sio.on("_disconnect", self.admin_disconnect, namespace=ns)
            manager = sio.manager
            manager._timestamps = {}
            self._originals = {
                "trigger": sio._trigger_event,
                "enter": manager.basic_enter_room,
                "leave": manager.basic_leave_room,
                "emit": manager.emit,
            }
            sio._trigger_event = self._trigger_event
            manager.basic_enter_room = self._basic_enter_room
            manager.basic_leave_room = self._basic_leave_room
            manager.emit = self._emit
        eio = sio.eio
        eio.on("connect", self._handle_eio_connect)
        eio.on("disconnect", self._handle_eio_disconnect)
        eio._upgrade_listeners.append(self._eio_upgraded)
        self._last_traffic = _traffic(eio.stats())

    def uninstrument(self) -> None:
        sio = self.sio
        if self._originals:
            sio._trigger_event = self._originals["trigger"]
            sio.manager.basic_enter_room = self._originals["enter"]
            sio.manager.basic_leave_room = self._originals["leave"]
            sio.manager.emit = self._originals["emit"]
        sio.eio.on("connect", sio._handle_eio_connect)
        sio.eio.on("disconnect", sio._handle_eio_disconnect)
        if self._eio_upgraded in sio.eio._upgrade_listeners:
            sio.eio._upgrade_listeners.remove(self._eio_upgraded)

    # --- what the admin namespace is told --------------------------------------

    async def _trigger_event(self, event: str, namespace: str, *args: Any) -> Any:
        now = time.time()
        sid = args[0]
        admin = self.admin_namespace
        manager = self.sio.manager
        if event == "connect":
            manager._timestamps[sid] = now
            eio_sid = manager.eio_sid_from_sid(sid, namespace)
            socket = self.serialize_socket(sid, namespace, eio_sid)
            await self.sio.emit("socket_connected", (socket, _iso(now)), namespace=admin)
        elif event == "disconnect":
            manager._timestamps.pop(sid, None)
            reason = args[1] if len(args) > 1 else ""
            await self.sio.emit("socket_disconnected", (namespace, sid, reason, _iso(now)), namespace=admin)
        else:
            await self.sio.emit(
                "event_received", (namespace, sid, (event, *args[1:]), _iso(now)), namespace=admin
            )
        return await self._originals["trigger"](event, namespace, *args)

    def _eio_upgraded(self, eio_sid: str) -> None:
        """An Engine.IO session moved to websocket: its sockets' transport changed."""
        manager = self.sio.manager
        for namespace in list(manager.get_namespaces()):
            sid = manager.sid_from_eio_sid(eio_sid, namespace)
            if sid:
                update = {"id": sid, "nsp": namespace, "transport": "websocket"}
                self.sio.start_background_task(
                    self.sio.emit, "socket_updated", update, namespace=self.admin_namespace
                )

    def _basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: Any = None) -> Any:
        result = self._originals["enter"](sid, namespace, room, eio_sid)
        if room:
            when = datetime.now(UTC).isoformat()
            self.admin_queue.append(("room_joined", (namespace, room, sid, when)))
        return result

    def _basic_leave_room(self, sid: str, namespace: str, room: Any) -> Any:
        if room:
            when = datetime.now(UTC).isoformat()
            self.admin_queue.append(("room_left", (namespace, room, sid, when)))
        return self._originals["leave"](sid, namespace, room)

    async def _emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        **kwargs: Any,
    ) -> Any:
        result = await self._originals["emit"](
            event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, **kwargs
        )
        if namespace != self.admin_namespace:
            sent = [event, *data] if isinstance(data, tuple) else [event, data]
            skipped = skip_sid if isinstance(skip_sid, list) else [skip_sid]
            when = datetime.now(UTC).isoformat()
            for sid, _ in self.sio.manager.get_participants(namespace, room):
                if sid not in skipped:
                    await self.sio.emit(
                        "event_sent", (namespace, sid, sent, when), namespace=self.admin_namespace
                    )
        return result

    async def _emit_server_stats(self) -> None:
        started = time.time()
        namespaces = sorted(self.sio.handlers)
        eio = self.sio.eio
        while not self.stop_stats_event.is_set():
            await self.sio.sleep(self.server_stats_interval)
            stats = eio.stats()
            traffic = _traffic(stats)
            for kind, count in traffic.items():
                delta = count - self._last_traffic[kind]
                if delta:
                    self.event_buffer.push(kind, delta)
            self._last_traffic = traffic
            rooms = self.sio.manager.rooms
            report = {
                "serverId": self.server_id,
                "hostname": HOSTNAME,
                "pid": PID,
                "uptime": time.time() - started,
                "clientsCount": sum(stats.sessions.values()),
                "pollingClientsCount": stats.sessions["polling"],
                "aggregatedEvents": self.event_buffer.get_and_clear(),
                "namespaces": [
                    {"name": nsp, "socketsCount": len(rooms.get(nsp, {}).get(None, ()))} for nsp in namespaces
                ],
            }
            await self.sio.emit("server_stats", report, namespace=self.admin_namespace)
            while self.admin_queue:
                event, args = self.admin_queue.pop(0)
                await self.sio.emit(event, args, namespace=self.admin_namespace)

    def serialize_socket(self, sid: str, namespace: str, eio_sid: str | None = None) -> dict[str, Any]:
        manager = self.sio.manager
        if eio_sid is None:
            eio_sid = manager.eio_sid_from_sid(sid, namespace)
        try:
            transport = self.sio.eio.transport(eio_sid)
        except KeyError:  # gone meanwhile
            transport = "polling"
        environ = self.sio.environ.get(eio_sid, {})
        issued = manager._timestamps.get(sid, 0)
        query = parse_qs(environ.get("QUERY_STRING", ""))
        return {
            "id": sid,
            "clientId": eio_sid,
            "transport": transport,
            "nsp": namespace,
            "data": {},
            "handshake": {
                "address": environ.get("REMOTE_ADDR", ""),
                "headers": {k[5:].lower(): v for k, v in environ.items() if k.startswith("HTTP_")},
                "query": {k: v[0] if len(v) == 1 else v for k, v in query.items()},
                "secure": environ.get("wsgi.url_scheme", "") == "https",
                "url": environ.get("PATH_INFO", ""),
                "issued": issued * 1000,
                "time": _iso(issued) if issued else "",
            },
            "rooms": manager.get_rooms(sid, namespace),
        }
