"""Request helpers shared by the HTTP API routes: tenant, time parameters, content negotiation."""

from __future__ import annotations

from aiohttp import web

from threadline.querier.dependencies import DependencyFinder
from threadline.querier.search import SearchEngine
from threadline.querier.tags import TagFinder
from threadline.querier.trace_by_id import TraceFinder
from threadline.tenancy import HEADER, TenantError, resolve_tenant


def tenant_of(request: web.Request, multitenancy_enabled: bool) -> str:
    try:
        return resolve_tenant(request.headers.get(HEADER), multitenancy_enabled)
    except TenantError as e:
        cls = web.HTTPUnauthorized if e.status == 401 else web.HTTPBadRequest
        raise cls(text=e.message) from None


def parse_unix_seconds(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise web.HTTPBadRequest(
            text=f"invalid {name} {raw!r}: expected unix epoch seconds"
        ) from None
    if value < 0:
        raise web.HTTPBadRequest(text=f"invalid {name} {raw!r}: must not be negative")
    return value


def wants_protobuf(request: web.Request) -> bool:
    """Tempo's negotiation: a substring match on Accept, protobuf first; anything else is JSON."""
    return "application/protobuf" in request.headers.get("Accept", "")


class ForeignQueryRoutes:
    """What the Jaeger and Zipkin query APIs read through: tags, search, traces, dependencies."""

    def __init__(
        self,
        tags: TagFinder,
        search: SearchEngine,
        finder: TraceFinder,
        dependencies: DependencyFinder,
        multitenancy_enabled: bool,
    ) -> None:
        self.tag_finder = tags
        self.engine = search
        self.finder = finder
        self.dependency_finder = dependencies
        self.multitenancy_enabled = multitenancy_enabled

    def _tenant(self, request: web.Request) -> str:
        return tenant_of(request, self.multitenancy_enabled)
