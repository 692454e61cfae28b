"""Reading HTTP request bodies with a size limit, gzip/deflate included (shared by receivers)."""

from __future__ import annotations

import zlib

from aiohttp import web


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
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
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
