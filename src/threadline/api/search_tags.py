"""Tempo's tag discovery routes: ``/api/search/tags``, ``/api/v2/search/tags``,
``/api/search/tag/{name}/values`` and ``/api/v2/search/tag/{name}/values``."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from aiohttp import web

from threadline.api.common import Params, inspected_json, params, parse_unix_seconds, tenant_of
from threadline.api.trace_by_id import json_response
from threadline.querier.sources import Inspected
from threadline.querier.tags import INTRINSIC_TAGS, MAP_SCOPES, TagFinder
from threadline.traceql.plan import filter_condition

_SCOPES = ("resource", "span", "intrinsic", "event", "link", "instrumentation", "none", "")


def _window(request: Params) -> tuple[int | None, int | None]:
    start = parse_unix_seconds(request, "start")
    end = parse_unix_seconds(request, "end")
    if start is not None and end is not None and end <= start:
        raise web.HTTPBadRequest(text="invalid start/end: end must be after start")
    return (
        start * 10**9 if start is not None else None,
        end * 10**9 if end is not None else None,
    )


def _scope(request: Params) -> str:
    scope = params(request).get("scope", "")
    if scope not in _SCOPES:
        raise web.HTTPBadRequest(text=f"invalid scope: {scope}")
    return scope


def _tag_path(request: web.Request) -> str:
    """The tag name in the path; Grafana encodes it twice, so percent-escapes left after the
    router's decoding are decoded once more."""
    return unquote(request.match_info["name"])


def _narrowing(request: Params) -> str:
    """SQL condition of the ``q`` filter, "true" when absent or not a single filter."""
    q = params(request).get("q", "").strip()
    return (filter_condition(q) if q else None) or "true"


def parse_tag_name(text: str) -> tuple[str | None, str]:
    """(scope, name) of a TraceQL identifier: ``.a``, ``span.a``, ``resource."a b"``, ``name``,
    ``span:status`` ...; scope None means span or resource, "intrinsic" an intrinsic."""
    if text in INTRINSIC_TAGS or text in ("span:childCount", "event:timeSinceStart"):
        return "intrinsic", text
    scope: str | None = None
    rest = text
    if text.startswith("."):
        rest = text[1:]
    else:
        for s in MAP_SCOPES:
            if text.startswith(s + "."):
                scope, rest = s, text[len(s) + 1 :]
                break
        else:
            raise ValueError(f"please provide a valid tagName: {text}")
    if rest.startswith('"') and rest.endswith('"') and len(rest) >= 2:
        rest = rest[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if not rest:
        raise ValueError(f"please provide a valid tagName: {text}")
    return scope, rest


class SearchTagRoutes:
    def __init__(self, tags: TagFinder, multitenancy_enabled: bool) -> None:
        self.tags = tags
        self.multitenancy_enabled = multitenancy_enabled

    def routes(self, prefix: str) -> list[web.RouteDef]:
        return [
            web.get(prefix + "/api/search/tags", self.tags_v1),
            web.get(prefix + "/api/v2/search/tags", self.tags_v2),
            web.get(prefix + "/api/search/tag/{name:.*}/values", self.values_v1),
            web.get(prefix + "/api/v2/search/tag/{name:.*}/values", self.values_v2),
        ]

    async def tags_v1(self, request: web.Request) -> web.Response:
        tenant = tenant_of(request, self.multitenancy_enabled)
        return json_response(await self.names_v1(tenant, request))

    async def tags_v2(self, request: web.Request) -> web.Response:
        tenant = tenant_of(request, self.multitenancy_enabled)
        return json_response(await self.names_v2(tenant, request))

    async def values_v1(self, request: web.Request) -> web.Response:
        tenant = tenant_of(request, self.multitenancy_enabled)
        return json_response(await self.values_of_v1(tenant, _tag_path(request), request))

    async def values_v2(self, request: web.Request) -> web.Response:
        tenant = tenant_of(request, self.multitenancy_enabled)
        return json_response(await self.values_of_v2(tenant, _tag_path(request), request))

    # the answers as JSON documents, for the HTTP routes and the streaming gRPC service

    async def names_v1(self, tenant: str, request: Params) -> dict[str, Any]:
        scope = _scope(request)
        inspected = Inspected()
        if scope == "intrinsic":
            return {"tagNames": INTRINSIC_TAGS, "metrics": inspected_json(inspected)}
        names = await self.tags.names(tenant, *_window(request), inspected=inspected)
        wanted = MAP_SCOPES if scope in ("", "none") else (scope,)
        found = sorted({t for s in wanted for t in names.get(s, [])})
        return {"tagNames": found, "metrics": inspected_json(inspected)}

    async def names_v2(self, tenant: str, request: Params) -> dict[str, Any]:
        scope = _scope(request)
        scopes = []
        inspected = Inspected()
        if scope != "intrinsic":
            names = await self.tags.names(
                tenant, *_window(request), where=_narrowing(request), inspected=inspected
            )
            for s in MAP_SCOPES:
                if scope in ("", "none", s) and names[s]:
                    scopes.append({"name": s, "tags": names[s]})
        if scope in ("", "none", "intrinsic"):
            scopes.append({"name": "intrinsic", "tags": INTRINSIC_TAGS})
        return {"scopes": scopes, "metrics": inspected_json(inspected)}

    async def values_of_v1(self, tenant: str, name: str, request: Params) -> dict[str, Any]:
        inspected = Inspected()
        if name == "status.code":
            values = ["unset", "ok", "error"]
        else:
            found = await self.tags.values(
                tenant, None, name, *_window(request), inspected=inspected
            )
            values = sorted({v.value for v in found})
        return {"tagValues": values, "metrics": inspected_json(inspected)}

    async def values_of_v2(self, tenant: str, name: str, request: Params) -> dict[str, Any]:
        try:
            scope, tag = parse_tag_name(name)
        except ValueError as e:
            raise web.HTTPBadRequest(text=str(e)) from None
        inspected = Inspected()
        values = await self.tags.values(
            tenant, scope, tag, *_window(request), where=_narrowing(request), inspected=inspected
        )
        doc = [{"type": v.type, "value": v.value} for v in values]
        return {"tagValues": doc, "metrics": inspected_json(inspected)}
