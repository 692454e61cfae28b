"""Reading HTTP request bodies with a size limit and a time limit, gzip/deflate included (shared
by receivers). A body that trickles in slower than ``server.http_server_read_timeout`` allows is
answered 408 and its connection closed, so slow clients cannot hold the server's memory."""

from __future__ import annotations

import asyncio
import zlib

from aiohttp import web

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


async def read_body(request: web.Request, limit: int) -> bytes:
    """The decompressed body; raises BodyError (413 over ``limit``, 400/415 bad encoding)."""
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    timeout = request.config_dict.get(READ_TIMEOUT)
    chunks: list[bytes] = []
    try:
        async with asyncio.timeout(timeout):
            size = 0
            async for chunk in request.content.iter_chunked(1 << 16):
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
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
    body = b"".join(chunks)
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise BodyError(
            415, f"unsupported Content-Encoding {encoding!r}: use gzip or identity", "bad_encoding"
        )
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
