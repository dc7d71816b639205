"""WebTransport with a Python client (aioquic's client side) against the real listener.

What a browser cannot easily do: a frame split across many stream chunks, an
oversized frame, a stream that ends mid-frame, a first packet that is not OPEN.
The server is an :class:`engineio_asgi.AsyncServer` with handlers, served by
:class:`engineio_asgi.webtransport.WebTransportListener` on 127.0.0.1 with a
development certificate; the client speaks HTTP/3 extended CONNECT and writes the
stream's bytes itself.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from typing import Any

import pytest

pytest.importorskip("aioquic")

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import QuicEvent, StreamDataReceived

import engineio_asgi
from engineio_asgi.webtransport import WebTransportListener, make_dev_certificate
from engineio_sansio.framing import StreamDecoder, encode_stream_frame

TIMEOUT = 10.0


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Client(QuicConnectionProtocol):
    """One WebTransport session and its one bidirectional stream, as engine.io-client opens them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic, enable_webtransport=True)
        self.session_id: int | None = None
        self.stream_id: int | None = None
        self.status: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.decoder = StreamDecoder(1 << 30)
        self.packets: asyncio.Queue[Any] = asyncio.Queue()
        self.session_data = b""  # what came on the CONNECT stream after the headers (the close capsule)
        self.session_closed = asyncio.Event()
        self.stream_ended = asyncio.Event()

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, StreamDataReceived) and event.stream_id == self.stream_id:
            # the server's side of our stream: raw Engine.IO frames
            for frame in self.decoder.feed(event.data):
                self.packets.put_nowait(frame)
            if event.end_stream:
                self.stream_ended.set()
            return
        for h3_event in self.h3.handle_event(event):
            if isinstance(h3_event, HeadersReceived) and h3_event.stream_id == self.session_id:
                status = dict(h3_event.headers)[b":status"]
                if not self.status.done():
                    self.status.set_result(int(status))
                if h3_event.stream_ended:
                    self.session_closed.set()
            elif isinstance(h3_event, DataReceived) and h3_event.stream_id == self.session_id:
                self.session_data += h3_event.data
                if h3_event.stream_ended:
                    self.session_closed.set()

    async def open_session(
        self, port: int, path: str = "/engine.io/", headers: list[tuple[bytes, bytes]] | None = None
    ) -> int:
        self.session_id = self._quic.get_next_available_stream_id()
        self.h3.send_headers(
            self.session_id,
            [
                (b":method", b"CONNECT"),
                (b":scheme", b"https"),
                (b":authority", f"127.0.0.1:{port}".encode()),
                (b":path", path.encode()),
                (b":protocol", b"webtransport"),
                (b"sec-webtransport-http3-draft02", b"1"),
                *(headers or []),
            ],
        )
        self.transmit()
        status = await asyncio.wait_for(self.status, TIMEOUT)
        if status == 200:
            self.stream_id = self.h3.create_webtransport_stream(self.session_id)
            self.transmit()
        return status

    def write(self, data: bytes, end: bool = False) -> None:
        assert self.stream_id is not None
        self._quic.send_stream_data(self.stream_id, data, end_stream=end)
        self.transmit()

    async def packet(self) -> Any:
        return await asyncio.wait_for(self.packets.get(), TIMEOUT)

    def close_code(self) -> int | None:
        """The code of the server's CLOSE_WEBTRANSPORT_SESSION capsule, if it sent one."""
        data = self.session_data
        # a DATA frame's payload: capsule type 0x2843 (2-byte varint 0x6843), length, code
        at = data.find(b"\x68\x43")
        if at < 0 or len(data) < at + 7:
            return None
        return int.from_bytes(data[at + 3 : at + 7], "big")


class Served:
    """An AsyncServer with recording handlers behind a WebTransport listener."""

    def __init__(self, refuse: bool = False, **options: Any) -> None:
        self.eio = engineio_asgi.AsyncServer(transports=["polling", "webtransport"], **options)
        self.log: list[tuple[Any, ...]] = []
        self.disconnected = asyncio.Event()
        self.port = _free_udp_port()
        cert = make_dev_certificate()
        self.listener = WebTransportListener(
            self.eio, port=self.port, certfile=cert.certfile, keyfile=cert.keyfile
        )

        @self.eio.on("connect")
        async def on_connect(sid: str, environ: dict[str, Any]) -> bool:
            self.log.append(("connect", sid, self.eio.transport(sid), environ["REQUEST_METHOD"]))
            return not refuse

        @self.eio.on("message")
        async def on_message(sid: str, data: Any) -> None:
            self.log.append(("message", data))
            await self.eio.send(sid, data)

        @self.eio.on("disconnect")
        async def on_disconnect(sid: str, reason: str) -> None:
            self.log.append(("disconnect", reason))
            self.disconnected.set()

    async def __aenter__(self) -> Served:
        await self.listener.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.eio.shutdown()
        await self.listener.stop()

    def client(self) -> Any:
        config = QuicConfiguration(alpn_protocols=H3_ALPN, is_client=True, max_datagram_frame_size=65536)
        config.verify_mode = ssl.CERT_NONE
        return connect("127.0.0.1", self.port, configuration=config, create_protocol=Client)


async def _opened(client: Client, served: Served) -> str:
    assert await client.open_session(served.port) == 200
    client.write(encode_stream_frame("0"))
    first = await client.packet()
    assert first[0] == "0"
    return str(json.loads(first[1:])["sid"])


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_frames_split_across_many_chunks_both_ways() -> None:
    async def main() -> None:
        async with Served() as served, served.client() as client:
            sid = await _opened(client, served)
            assert served.log == [("connect", sid, "webtransport", "CONNECT")]
            big = "4" + "é" * 40000  # 80 001 bytes: the 64-bit length form
            wire = encode_stream_frame(big) + encode_stream_frame(b"\x00" * 300) + encode_stream_frame("4hi")
            for i in range(0, len(wire), 7):  # 7-byte writes: headers cut everywhere
                client.write(wire[i : i + 7])
            assert await client.packet() == big
            assert await client.packet() == b"\x00" * 300
            assert await client.packet() == "4hi"
            assert [m for m in served.log if m[0] == "message"] == [
                ("message", big[1:]),
                ("message", b"\x00" * 300),
                ("message", "hi"),
            ]

    run(main())


def test_oversized_frame_closes_the_session() -> None:
    async def main() -> None:
        async with Served(max_http_buffer_size=1000) as served, served.client() as client:
            await _opened(client, served)
            client.write(b"\x7e\x07\xd0")  # announces 2000 bytes: refused from the header alone
            await asyncio.wait_for(served.disconnected.wait(), TIMEOUT)
            await asyncio.wait_for(client.session_closed.wait(), TIMEOUT)
            assert served.log[-1] == ("disconnect", "transport error")
            assert client.close_code() == 1009

    run(main())


def test_stream_ending_mid_frame_closes_the_session() -> None:
    async def main() -> None:
        async with Served() as served, served.client() as client:
            await _opened(client, served)
            client.write(encode_stream_frame("4hello")[:4], end=True)
            await asyncio.wait_for(served.disconnected.wait(), TIMEOUT)
            await asyncio.wait_for(client.session_closed.wait(), TIMEOUT)
            assert served.log[-1] == ("disconnect", "transport error")
            assert client.close_code() == 1002
            assert not [m for m in served.log if m[0] == "message"]

    run(main())


def test_stream_ended_between_frames_is_a_transport_close() -> None:
    async def main() -> None:
        async with Served() as served, served.client() as client:
            await _opened(client, served)
            client.write(encode_stream_frame("4bye"), end=True)
            await asyncio.wait_for(served.disconnected.wait(), TIMEOUT)
            assert served.log[-2:] == [("message", "bye"), ("disconnect", "transport close")]

    run(main())


def test_a_first_packet_that_is_not_open_is_refused() -> None:
    async def main() -> None:
        async with Served() as served, served.client() as client:
            assert await client.open_session(served.port) == 200
            client.write(encode_stream_frame("4hello"))
            await asyncio.wait_for(client.session_closed.wait(), TIMEOUT)
            assert client.close_code() == 1002
            assert served.log == []

    run(main())


def test_wrong_path_gets_404() -> None:
    async def main() -> None:
        async with Served() as served, served.client() as client:
            assert await client.open_session(served.port, "/elsewhere/") == 404

    run(main())


def test_refused_by_the_connect_handler() -> None:
    async def main() -> None:
        async with Served(refuse=True) as served, served.client() as client:
            assert await client.open_session(served.port) == 200
            client.write(encode_stream_frame("0"))
            await asyncio.wait_for(client.session_closed.wait(), TIMEOUT)
            assert client.close_code() == 401  # the refusal's status, its body as the reason
            assert b'"Unauthorized"' in client.session_data
            assert client.packets.empty()  # no OPEN packet
            assert [m[0] for m in served.log] == ["connect"]

    run(main())


def test_server_disconnect_sends_close_then_ends_the_stream() -> None:
    async def main() -> None:
        async with Served(ping_interval=0.2, ping_timeout=5) as served, served.client() as client:
            sid = await _opened(client, served)
            assert await client.packet() == "2"  # a heartbeat
            client.write(encode_stream_frame("3"))
            await served.eio.disconnect(sid)
            assert await client.packet() == "1"
            await asyncio.wait_for(client.stream_ended.wait(), TIMEOUT)
            assert served.log[-1] == ("disconnect", "server disconnect")

    run(main())


def test_a_first_packet_never_finished_does_not_hold_the_session() -> None:
    async def main() -> None:
        async with Served(upgrade_timeout=0.5) as served, served.client() as client:
            assert await client.open_session(served.port) == 200
            client.write(b"\x05" + b"0")  # a header for 5 bytes, then 1 of them
            await asyncio.wait_for(client.session_closed.wait(), TIMEOUT)
            assert served.log == []

    run(main())


def test_origin_refused_with_403_and_allowed_origin_accepted() -> None:
    async def main() -> None:
        served = Served(cors_allowed_origins=["http://allowed.example"])
        async with served:
            async with served.client() as client:
                status = await client.open_session(served.port, headers=[(b"origin", b"http://evil.example")])
                assert status == 403
            async with served.client() as client:
                status = await client.open_session(served.port, headers=[(b"origin", b"http://allowed.example")])
                assert status == 200
        assert served.log == []

    run(main())


def test_allow_request_refuses_a_connect_with_403_and_no_connect_handler() -> None:
    """``allow_request`` is asked about a WebTransport CONNECT as about any handshake:
    a refusal answers the CONNECT 403, tells ``connection_error``, and no session begins."""

    async def main() -> None:
        asked: list[str] = []
        errors: list[Any] = []

        async def allow(environ: dict[str, Any]) -> bool:
            asked.append(environ["REQUEST_METHOD"])
            return environ.get("HTTP_X_LET_IN") == "yes"

        async with Served(allow_request=allow) as served:
            served.eio.on("connection_error", errors.append)
            async with served.client() as client:
                assert await client.open_session(served.port) == 403
            async with served.client() as client:
                status = await client.open_session(served.port, headers=[(b"x-let-in", b"yes")])
                assert status == 200
                client.write(encode_stream_frame("0"))
                assert (await client.packet())[0] == "0"
            assert asked == ["CONNECT", "CONNECT"]
            assert [e.code for e in errors] == [4]
            assert [m[0] for m in served.log if m[0] == "connect"] == ["connect"]  # only the one let in

    run(main())
