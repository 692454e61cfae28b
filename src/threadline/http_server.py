"""The HTTP listeners of a process: aiohttp runners, the middleware every app shares (internal
errors answered 500 with context logged, requests counted for the drain), the body read timeout,
and the graceful stop. A client's mistake (bad HTTP, a wrong protocol on the port, a connection
dropped mid-request) is one WARNING/INFO line, never an ERROR with a traceback.

aiohttp's own shutdown drops the rest of a body that is still arriving; a stop here first closes
the listening sockets, then waits for the requests under way (bodies included) to finish, up to
``server.graceful_shutdown_timeout``, answering 503 to new requests on kept-alive connections;
only then are the connections closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import CIMultiDict

from threadline.auth import Access, Authenticator, AuthError, check_access
from threadline.config import ServerConfig
from threadline.querier.sources import QueryLimitError
from threadline.receivers.http_body import READ_TIMEOUT
from threadline.shared_port import SharedPortSite
from threadline.tenancy import HEADER, TenantError

log = logging.getLogger(__name__)

_H = TypeVar("_H", bound=Callable[..., Any])
_MAX_LINE = 64 * 2**10


class _ClientErrorFilter(logging.Filter):
    """aiohttp logs a request it cannot parse at ERROR with a traceback: make it one warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            said = record.getMessage()
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = "%s: not a valid HTTP/1.x request (%s)"
            detail = (exc.message.strip().splitlines() or [type(exc).__name__])[0].rstrip(":")
            record.args = (said, detail)
            record.exc_info, record.exc_text = None, None
        return True


_CLIENT_ERRORS = _ClientErrorFilter()


class HttpServers:
    """Every aiohttp listener of one process, stopped together."""

    def __init__(
        self,
        cfg: ServerConfig,
        ssl_context: ssl.SSLContext | None = None,
        auth: Authenticator | None = None,
    ) -> None:
        self.host = cfg.host
        self.auth = auth if auth is not None and auth.enabled else None
        self.api_prefix = cfg.http_api_prefix.rstrip("/")
        self.ssl_context = ssl_context
        self.scheme = "https" if ssl_context is not None else "http"
        self.shutdown_timeout = cfg.graceful_shutdown_timeout
        self.read_timeout = cfg.http_server_read_timeout
        self._runners: list[web.AppRunner] = []
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._draining = False
        logging.getLogger("aiohttp.server").addFilter(_CLIENT_ERRORS)  # a set: added once

    def application(self, access: Access | None = "read", **kwargs: object) -> web.Application:
        """A new app with the shared middleware (``kwargs`` as for ``web.Application``); with
        auth on, its requests need a credential allowed to ``access`` (``None``: any valid
        credential, for data that belongs to no tenant, such as sampling strategies)."""
        middlewares = [self._middleware]
        if self.auth is not None:
            middlewares.append(_auth_middleware(self.auth, access, self.api_prefix))
        app = web.Application(middlewares=middlewares, **kwargs)  # type: ignore[arg-type]
        app[READ_TIMEOUT] = self.read_timeout
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler):  # type: ignore[no-untyped-def]
        if self._draining:
            return web.Response(
                status=503, text="server is stopping; retry", headers={"Connection": "close"}
            )
        self._in_flight += 1
        self._idle.clear()
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except ConnectionError as e:
            log.info("%s %s: the client went away (%s)", request.method, request.path, e)
            return web.Response(status=400, text="connection lost")
        except QueryLimitError as e:
            log.info("%s %s: %s", request.method, request.path, e)
            return web.Response(status=400, text=str(e))
        except Exception:
            log.exception("internal error answering %s %s", request.method, request.path)
            return web.Response(status=500, text="internal error")
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    async def serve(
        self,
        app: web.Application,
        port: int,
        grpc_socket: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> int:
        """Listen on ``port`` (0: any free one); returns the bound port. With
        ``grpc_socket``, gRPC calls on the port are piped there (``shared_port``), over TLS
        with ``ssl_context`` (one offering h2 by ALPN)."""
        # bodies are decompressed by the receivers themselves, within the size limit
        # (the drain has waited already when aiohttp's own shutdown runs)
        # request lines and headers up to 64 KiB: a query with a long regex fits in the URL
        runner = web.AppRunner(
            app,
            auto_decompress=False,
            access_log=None,
            shutdown_timeout=1.0,
            max_line_size=_MAX_LINE,
            max_field_size=_MAX_LINE,
        )
        await runner.setup()
        site: web.BaseSite
        if grpc_socket is None:
            site = web.TCPSite(
                runner, self.host, port, reuse_address=True, ssl_context=self.ssl_context
            )
        else:
            context = ssl_context or self.ssl_context
            site = SharedPortSite(runner, self.host, port, grpc_socket, ssl_context=context)
        await site.start()
        self._runners.append(runner)
        return runner.addresses[0][1]

    async def stop_listening(self) -> None:
        """Close every listening socket; connections already open stay."""
        for runner in self._runners:
            for site in list(runner.sites):
                await site.stop()

    async def drain(self) -> None:
        """Wait (at most ``shutdown_timeout``) for the requests under way, then close."""
        started = time.monotonic()
        self._draining = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), self.shutdown_timeout)
        if self._in_flight:
            log.warning(
                "%d HTTP requests still under way after %.0fs; closing them",
                self._in_flight,
                time.monotonic() - started,
            )
        for runner in self._runners:
            await runner.cleanup()
        self._runners = []


# health checks answer without credentials; self-metrics and /flush of every tenant need a
# credential for every tenant (``*``): they are the operator's
_OPEN = ("/ready", "/api/echo", "/api/status/buildinfo")
_OPERATOR = ("/metrics", "/flush")
# one header per scheme, Basic first: browsers (the web UI) answer the first challenge they
# can, and do not find Basic after Bearer in one comma-separated header
_CHALLENGE = CIMultiDict(
    [
        ("WWW-Authenticate", 'Basic realm="threadline"'),
        ("WWW-Authenticate", 'Bearer realm="threadline"'),
    ]
)


def tenantless(handler: _H) -> _H:
    """Marks a route that needs a valid credential (with auth on) but no tenant: the web UI's
    pages and files are the same for every tenant, and a credential for several tenants must
    load them before its user can pick one."""
    handler.needs_tenant = False  # type: ignore[attr-defined]
    return handler


def writes(handler: _H) -> _H:
    """Marks a route on a read port that takes data (Loki's push API on the HTTP API port):
    with auth on, it needs a credential allowed to write."""
    handler.access = "write"  # type: ignore[attr-defined]
    return handler


def _auth_middleware(auth: Authenticator, access: Access | None, prefix: str):  # type: ignore[no-untyped-def]
    open_paths = {p for path in _OPEN for p in (path, prefix + path)}
    operator_paths = {p for path in _OPERATOR for p in (path, prefix + path)}

    @web.middleware
    async def check(request: web.Request, handler):  # type: ignore[no-untyped-def]
        path = request.path
        if path in open_paths:
            return await handler(request)
        try:
            principal = auth.authenticate(request.headers.get("Authorization"))
            if access is None or not getattr(request.match_info.handler, "needs_tenant", True):
                return await handler(request)
            if path in operator_paths:
                wanted = request.query.get("tenant")
                needs: Access = "write" if path.endswith("/flush") else "read"
                check_access(principal, needs)
                if not (principal.allows(wanted) if wanted else principal.operator):
                    raise AuthError(
                        403, f"credential {principal.name!r} may not use {path} for every tenant"
                    )
                return await handler(request)
            wanted_access = getattr(request.match_info.handler, "access", access)
            tenant = auth.tenant_for(principal, request.headers.getall(HEADER, []), wanted_access)
        except AuthError as e:
            headers = _CHALLENGE if e.status == 401 else None
            return web.Response(status=e.status, text=e.message, headers=headers)
        except TenantError as e:
            return web.Response(status=e.status, text=e.message)
        # the handlers resolve the tenant from the header as without auth: it now names the one
        # the credential acts for
        headers = request.headers.copy()
        headers.popall(HEADER, None)
        headers[HEADER] = tenant
        return await handler(request.clone(headers=headers))

    return check
