"""Reading HTTP request bodies with a size limit, a time limit and room in the distributor's
in-flight budget, gzip/deflate included (shared by receivers). A body that trickles in slower
than ``server.http_server_read_timeout`` allows is answered 408 and its connection closed, so
slow clients cannot hold the server's memory; a body is read only once the in-flight budget
(``distributor.max_inflight_bytes``) has room for it, so concurrent large uploads cannot either;
a chunked body (no length given) takes room step by step as it arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from threadline.distributor.distributor import Distributor

# of the in-flight budget, what a body without Content-Length (chunked) takes first; it takes
# more (doubling, waiting for room) as it arrives
CHUNKED_FIRST = 1 << 20

# seconds a whole request body may take to arrive; set on the app by the process's HTTP servers
READ_TIMEOUT = web.AppKey("read_timeout", float)


class BodyError(Exception):
    def __init__(self, status: int, message: str, reason: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason


def _too_large(limit: int) -> BodyError:
    return BodyError(413, f"request body is over the limit of {limit} bytes", "too_large")


@contextlib.asynccontextmanager
async def admitted_body(
    request: web.Request, limit: int, distributor: Distributor, protocol: str
) -> AsyncIterator[bytes]:
    """The decompressed body, its bytes held in ``distributor``'s in-flight budget while the
    caller decodes and pushes it (``push_otlp`` inside takes only what its bytes add).

    The declared ``Content-Length`` (``limit`` without one: the most the body may be) is taken
    before the body is read, so bodies waiting for room stay in the client; the decompressed
    size once it is known. Raises ``BodyError`` (413 over ``limit``, 408 too slow, 400/415 bad
    encoding) or ``Overloaded`` (no room within the distributor's wait)."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise _too_large(limit)
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity", "gzip", "deflate"):
        raise BodyError(
            415, f"unsupported Content-Encoding {encoding!r}: use gzip or identity", "bad_encoding"
        )
    async with contextlib.AsyncExitStack() as held:
        reserved = min(limit, CHUNKED_FIRST) if declared is None else declared
        await held.enter_async_context(distributor.admit(reserved, protocol))

        async def grow(size: int) -> int:
            nonlocal reserved
            reserved = min(limit, max(size, 2 * reserved))
            await held.enter_async_context(distributor.admit(reserved, protocol, wait=True))
            return reserved

        body = await _read(request, limit, reserved, grow)
        if encoding not in ("", "identity"):
            body = _decompress(body, encoding, limit)
        async with distributor.admit(len(body), protocol):
            yield body


async def _read(
    request: web.Request, limit: int, reserved: int, grow: Callable[[int], Awaitable[int]]
) -> bytes:
    """The body; ``grow(size)`` (the new reservation) is awaited whenever more than
    ``reserved`` bytes arrived."""
    timeout = request.config_dict.get(READ_TIMEOUT)
    chunks: list[bytes] = []
    try:
        async with asyncio.timeout(timeout):
            size = 0
            async for chunk in request.content.iter_chunked(1 << 16):
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                if size > reserved:
                    reserved = await grow(size)
                chunks.append(chunk)
    except TimeoutError:
        raise BodyError(
            408,
            f"request body not received within {timeout:g}s (server.http_server_read_timeout)",
            "read_timeout",
        ) from None
    except ConnectionError:
        raise BodyError(
            400, "the client closed the connection before sending the whole body", "aborted"
        ) from None
    return b"".join(chunks)


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as e:
        raise BodyError(400, f"invalid {encoding} body: {e}", "bad_encoding") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise _too_large(limit)
    if not inflater.eof:
        raise BodyError(400, f"invalid {encoding} body: truncated stream", "bad_encoding")
    return out
