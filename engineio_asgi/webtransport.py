"""WebTransport for :class:`~engineio_asgi.AsyncServer`: an HTTP/3 listener on aioquic.

ASGI has no WebTransport, so the listener runs beside the ASGI server, on its
own UDP port, and feeds the same :class:`AsyncServer` object: the same
handlers, sessions, ``send`` and ``disconnect``. It accepts extended CONNECT
requests with ``:protocol = webtransport`` at the Engine.IO path, hands the
first bidirectional stream's bytes to the server, and writes back what the
server gives it. Start and stop it with the app's lifespan::

    listener = WebTransportListener(eio, port=5000, certfile="cert.pem", keyfile="key.pem")
    app = engineio_asgi.ASGIApp(eio, on_startup=listener.start, on_shutdown=listener.stop)

It needs the ``webtransport`` extra (``pip install engineio-asgi[webtransport]``,
which brings aioquic) and an asyncio event loop; aioquic is imported only when
the listener starts. :func:`make_dev_certificate` makes a short-lived
self-signed certificate that browsers accept through ``serverCertificateHashes``.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import ipaddress
import os
import tempfile
from typing import TYPE_CHECKING, Any, MutableMapping, NamedTuple, Sequence

from engineio_sansio import CLIENT_CLOSE_GRACE, Respond

from ._state import WSConn
from .environ import build_environ, request_from_scope

if TYPE_CHECKING:
    from .server import AsyncServer

__all__ = ["DevCertificate", "WebTransportListener", "make_dev_certificate"]

_MISSING = "WebTransport needs aioquic: install the extra with `pip install engineio-asgi[webtransport]`"
_CLOSE_SESSION_CAPSULE = 0x2843  # CLOSE_WEBTRANSPORT_SESSION
_MAX_REASON = 1024  # bytes of a close reason (the capsule's limit)
_END: Any = object()


class DevCertificate(NamedTuple):
    """A development certificate: its files and the SHA-256 of its DER form."""

    certfile: str
    keyfile: str
    sha256: bytes

    @property
    def fingerprint(self) -> str:
        """The SHA-256 as hex, as ``serverCertificateHashes`` and Chromium's flags take it."""
        return self.sha256.hex()


def make_dev_certificate(
    directory: str | None = None,
    hosts: Sequence[str] = ("localhost", "127.0.0.1", "::1"),
    days: int = 10,
) -> DevCertificate:
    """Make a self-signed ECDSA P-256 certificate valid for ``days`` (at most 14), for development.

    Browsers accept such a certificate without a certificate authority when the
    page passes its hash in ``serverCertificateHashes`` (the rules: ECDSA, at most
    two weeks of validity). Files go to ``directory`` (a new temporary one if
    ``None``). Never use it in production: make a new one at each start.
    """
    if not 1 <= days <= 14:
        raise ValueError(f"days must be between 1 and 14 (browsers refuse longer), got {days!r}")
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        raise RuntimeError(_MISSING) from None
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0] if hosts else "localhost")])
    alt: list[x509.GeneralName] = []
    for host in hosts:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now - datetime.timedelta(minutes=1) + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory = directory or tempfile.mkdtemp(prefix="engineio-wt-")
    certfile = os.path.join(directory, "cert.pem")
    keyfile = os.path.join(directory, "key.pem")
    with open(certfile, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()
    return DevCertificate(certfile, keyfile, digest)


class WebTransportListener:
    """An HTTP/3 server on ``host``:``port`` (UDP) serving WebTransport for ``server``.

    ``certfile`` and ``keyfile`` are PEM files (a certificate chain and its
    key). ``engineio_path`` is the Engine.IO path, as given to
    :class:`~engineio_asgi.ASGIApp`. :meth:`start` and :meth:`stop` are
    coroutines for the app's lifespan (``on_startup``/``on_shutdown``).
    """

    def __init__(
        self,
        server: AsyncServer,
        *,
        port: int,
        certfile: str,
        keyfile: str,
        host: str = "127.0.0.1",
        engineio_path: str = "engine.io",
    ) -> None:
        if "webtransport" not in server.transports:
            raise ValueError(
                "the server does not accept WebTransport: add 'webtransport' to its transports option"
            )
        self.server = server
        self.host = host
        self.port = port
        self.certfile = certfile
        self.keyfile = keyfile
        self.engineio_path = "/" + engineio_path.strip("/") + "/"
        self._quic_server: Any = None
        self._sessions: set[_Session] = set()

    async def start(self) -> None:
        """Listen (on the running asyncio loop)."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is None:
            raise RuntimeError(
                "WebTransportListener.start() needs a running asyncio loop (aioquic is asyncio-only)"
            )
        try:
            from aioquic.asyncio.server import serve
            from aioquic.h3.connection import H3_ALPN
            from aioquic.quic.configuration import QuicConfiguration
        except ImportError:
            raise RuntimeError(_MISSING) from None
        self.server._ensure_backend()
        config = QuicConfiguration(alpn_protocols=H3_ALPN, is_client=False, max_datagram_frame_size=65536)
        config.load_cert_chain(self.certfile, self.keyfile)
        from ._h3 import make_protocol

        protocol = make_protocol(self.engineio_path, (self.host, self.port), self._new_session)
        self._quic_server = await serve(self.host, self.port, configuration=config, create_protocol=protocol)

    def _new_session(self, conn: Any, session_id: int, scope: dict[str, Any]) -> _Session:
        session = _Session(self, conn, session_id, scope)
        self._sessions.add(session)
        session.task = asyncio.get_running_loop().create_task(session.run())
        return session

    async def stop(self) -> None:
        """Close every WebTransport session still open, then stop listening."""
        for session in list(self._sessions):
            session.close_now(0, b"")
        tasks = [s.task for s in self._sessions if s.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=CLIENT_CLOSE_GRACE)
        if self._quic_server is not None:
            self._quic_server.close()
            self._quic_server = None


class _Session:
    """One WebTransport session, from its CONNECT to its end: what the server reads and writes.

    To the server it is a websocket-shaped connection (a :class:`WSConn` whose
    ``send`` takes the ASGI websocket messages the server sends); the bytes
    it writes are already framed by the core.
    """

    def __init__(
        self, listener: WebTransportListener, conn: Any, session_id: int, scope: dict[str, Any]
    ) -> None:
        self.listener = listener
        self.conn = conn  # the QUIC connection's protocol (see _h3)
        self.session_id = session_id
        self.scope = scope
        self.stream_id: int | None = None  # the first bidirectional stream: it carries the session
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self.answered = False  # the CONNECT got its response
        self.closed = False
        self.stream_ended = False
        self.gone = asyncio.Event()
        self._close_timer: asyncio.TimerHandle | None = None

    # --- from the QUIC connection ------------------------------------------------

    def stream_data(self, stream_id: int, data: bytes, ended: bool) -> None:
        if self.stream_id is None:
            self.stream_id = stream_id
        elif stream_id != self.stream_id:
            return  # Engine.IO uses one stream; others are not read
        self.queue.put_nowait((data, not ended))

    def peer_gone(self) -> None:
        """The client closed the session, or the connection is gone."""
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        self.closed = True
        self.gone.set()
        self.queue.put_nowait(_END)

    # --- what the server sends -------------------------------------------------------

    async def send(self, message: MutableMapping[str, Any]) -> None:
        kind = message["type"]
        if kind == "websocket.send":
            data = message.get("bytes")
            if data is None:
                data = message.get("text")  # the server's one-frame path names the key by the data
            self.write(data)  # type: ignore[arg-type]
        elif kind == "websocket.accept":
            self.accept()
        elif kind == "websocket.close":
            code = message.get("code", 1000)
            self.end(code)

    async def receive(self) -> MutableMapping[str, Any]:
        await self.gone.wait()
        return {"type": "websocket.disconnect", "code": 1000}

    def accept(self) -> None:
        if self.answered or self.closed:
            return
        self.answered = True
        self.conn.send_headers(
            self.session_id, [(b":status", b"200"), (b"sec-webtransport-http3-draft", b"draft02")]
        )

    def refuse(self, response: Respond) -> None:
        """The core refused it: an HTTP status on the CONNECT, or after it, a session close."""
        if not self.answered:
            self.answered = True
            headers = [(b":status", str(response.status).encode())]
            headers.extend(response.headers)
            self.conn.send_headers(self.session_id, headers, end_stream=False)
            self.conn.send_data(self.session_id, response.body, end_stream=True)
            self.closed = True
            return
        self.close_now(response.status, response.body)

    def write(self, data: bytes) -> None:
        if self.closed or self.stream_id is None or self.stream_ended:
            raise ConnectionError("the WebTransport session is closed")
        self.conn.send_stream_data(self.stream_id, data, end_stream=False)

    def end(self, code: int) -> None:
        """The server closes it: the stream ends at once; after a normal close (1000) the
        session itself once the client closes it or ``CLIENT_CLOSE_GRACE`` has passed, so
        the CLOSE packet is read before the session ends, else at once with ``code``."""
        if self.closed:
            self.queue.put_nowait(_END)
            return
        if self.stream_id is not None and not self.stream_ended:
            self.stream_ended = True
            self.conn.send_stream_data(self.stream_id, b"", end_stream=True)
        if code == 1000 and self.stream_id is not None:
            if self._close_timer is None:
                loop = asyncio.get_running_loop()
                self._close_timer = loop.call_later(CLIENT_CLOSE_GRACE, self.close_now, 0, b"")
        else:
            self.close_now(code, b"")
        self.queue.put_nowait(_END)

    def close_now(self, code: int, reason: bytes) -> None:
        """Close the session (CLOSE_WEBTRANSPORT_SESSION with ``code``), unless it is closed."""
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        if self.closed:
            return
        self.closed = True
        if not self.answered:
            self.answered = True
            self.conn.send_headers(self.session_id, [(b":status", b"404")], end_stream=True)
        else:
            reason = reason[:_MAX_REASON]
            payload = (code & 0xFFFFFFFF).to_bytes(4, "big") + reason
            capsule = _varint(_CLOSE_SESSION_CAPSULE) + _varint(len(payload)) + payload
            self.conn.send_data(self.session_id, capsule, end_stream=True)
        self.conn.forget(self.session_id)
        self.gone.set()
        self.queue.put_nowait(_END)

    # --- the task that feeds the server -------------------------------------------------

    async def run(self) -> None:
        listener = self.listener
        server = listener.server
        core = server._core
        clock = server._clock
        refuse = None
        if server._allow_request is not None:  # a CONNECT opens or upgrades a session
            refuse = await server._ask_allow_request(build_environ(self.scope, self.receive, self.send))
        rid, events = core.receive_request(
            request_from_scope(self.scope), clock(), webtransport=True, refuse=refuse
        )
        wsconn = WSConn(rid, self.scope, self.receive, self.send)
        server._ws[rid] = wsconn
        try:
            await self._perform(events, wsconn)
            del events
            if wsconn.denied is not None or not wsconn.accepted:
                return
            # Until the session is known (a new one asked the application, or a probe
            # completed its upgrade) the client has upgrade_timeout: a stream never
            # opened, or a first packet never finished, does not hold the session open.
            loop = asyncio.get_running_loop()
            deadline = loop.time() + server.config.upgrade_timeout
            while not self.closed or not self.queue.empty():
                wait = None if wsconn.sid is not None else max(0.0, deadline - loop.time())
                try:
                    item = await asyncio.wait_for(self.queue.get(), wait)
                except TimeoutError:
                    self.close_now(0, b"no Engine.IO session began in time")
                    return
                if item is _END:
                    break
                data, more = item
                await self._perform(core.receive_body(rid, data, more, clock()), wsconn)
                if wsconn.close_sent or wsconn.denied is not None:
                    break
        finally:
            try:
                events = core.connection_lost(rid, clock())
                if events:
                    await server._perform(events)
            finally:
                del server._ws[rid]
                listener._sessions.discard(self)
                if self._close_timer is None:
                    self.close_now(0, b"")

    async def _perform(self, events: Sequence[Any], wsconn: WSConn) -> None:
        server = self.listener.server
        if events:
            await server._perform(events)
        if wsconn.denied is not None:
            self.refuse(wsconn.denied)
        server._timer_changed()


def _varint(n: int) -> bytes:
    """A QUIC variable-length integer."""
    if n < 0x40:
        return n.to_bytes(1, "big")
    if n < 0x4000:
        return (n | 0x4000).to_bytes(2, "big")
    if n < 0x40000000:
        return (n | 0x80000000).to_bytes(4, "big")
    return (n | 0xC000000000000000).to_bytes(8, "big")
