"""One TCP port for HTTP/1.1 and gRPC, as Tempo's HTTP port with ``stream_over_http_enabled``:
Grafana's Tempo data source dials its URL's host and port for the streaming search.

Each connection is told apart by its first bytes: the HTTP/2 client preface (what a gRPC
client sends first; over TLS, the ``h2`` protocol chosen by ALPN) is piped to the process's own
gRPC server on a private Unix socket; anything else is handed, bytes and all, to the aiohttp
protocol that would have served it anyway, so HTTP/1.1 pays nothing but the first look.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable

from aiohttp import web

log = logging.getLogger(__name__)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
# a connection that has not said what it speaks by then is closed (aiohttp's keep-alive time)
_FIRST_BYTES_TIMEOUT = 75.0
ALPN = ["http/1.1", "h2"]  # the server's preference: browsers get HTTP/1.1, gRPC (h2 only) h2


class _Pipe(asyncio.Protocol):
    """The gRPC server's side of a piped connection: what it sends goes to the client."""

    def __init__(self, client: asyncio.Transport) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.client.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.close()

    # the client reads slowly: stop reading from the gRPC server until it catches up
    def pause_writing(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None:
            self.transport.resume_reading()


class _FirstBytes(asyncio.Protocol):
    """A new connection until its first bytes say what it is."""

    def __init__(self, http: Callable[[], asyncio.Protocol], grpc_socket: str) -> None:
        self.http = http
        self.grpc_socket = grpc_socket
        self.transport: asyncio.Transport | None = None
        self.seen = b""
        self.pipe: _Pipe | None = None
        self.pending: list[bytes] = []  # bytes for the gRPC server before its socket is open
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2":
            self._to_grpc(b"")
            return
        if ssl_object is not None:  # TLS without h2: HTTP/1.x
            self._to_http(b"")
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(_FIRST_BYTES_TIMEOUT, transport.close)

    def data_received(self, data: bytes) -> None:
        if self.pipe is not None or self.pending:
            self._forward(data)
            return
        self.seen += data
        if self.seen.startswith(PREFACE):
            self._to_grpc(self.seen)
        elif not PREFACE.startswith(self.seen):
            self._to_http(self.seen)
        # else a prefix of the preface so far: wait for more

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _to_http(self, first: bytes) -> None:
        self._cancel_timer()
        assert self.transport is not None
        protocol = self.http()
        self.transport.set_protocol(protocol)
        protocol.connection_made(self.transport)
        if first:
            protocol.data_received(first)

    def _to_grpc(self, first: bytes) -> None:
        self._cancel_timer()
        self.pending.append(first)
        asyncio.get_running_loop().create_task(self._open_pipe())

    def _forward(self, data: bytes) -> None:
        if self.pipe is not None and self.pipe.transport is not None:
            self.pipe.transport.write(data)
        else:
            self.pending.append(data)

    async def _open_pipe(self) -> None:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        try:
            _, pipe = await loop.create_unix_connection(
                lambda: _Pipe(self.transport),  # type: ignore[arg-type]
                self.grpc_socket,
            )
        except OSError as e:
            log.warning("cannot reach the gRPC server for a streaming call: %s", e)
            self.transport.close()
            return
        self.pipe = pipe
        assert pipe.transport is not None
        for data in self.pending:
            if data:
                pipe.transport.write(data)
        self.pending = []

    def eof_received(self) -> bool | None:
        if self.pipe is not None and self.pipe.transport is not None:
            with contextlib.suppress(OSError, RuntimeError):
                self.pipe.transport.write_eof()
            return True
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        if self.pipe is not None and self.pipe.transport is not None:
            self.pipe.transport.close()

    # the gRPC server sends faster than the client reads
    def pause_writing(self) -> None:
        if self.pipe is not None and self.pipe.transport is not None:
            self.pipe.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.pipe is not None and self.pipe.transport is not None:
            self.pipe.transport.resume_reading()


class SharedPortSite(web.BaseSite):
    """An aiohttp site whose port also carries gRPC, piped to ``grpc_socket``."""

    __slots__ = ("_bound", "_grpc_socket", "_host", "_port")

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        grpc_socket: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._host = host
        self._port = port
        self._grpc_socket = grpc_socket
        self._bound = port

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self._bound}"

    async def start(self) -> None:
        await super().start()
        http = self._runner.server
        assert http is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _FirstBytes(http, self._grpc_socket),
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=True,
        )
        if self._server.sockets:
            self._bound = self._server.sockets[0].getsockname()[1]
