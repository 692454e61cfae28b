"""Request helpers shared by the HTTP API routes: tenant, query parameters, content negotiation.

Every number a route reads from its query string goes through one of the parsers here, which
refuse non-numbers, NaN, infinities and values outside what the stores can hold (int64
nanoseconds) with a 400 naming the parameter.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import pyarrow as pa
from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from threadline.config import QuerierConfig, parse_duration
from threadline.querier.dependencies import DependencyFinder
from threadline.querier.search import SearchEngine
from threadline.querier.sources import Inspected
from threadline.querier.tags import TagFinder
from threadline.querier.trace_by_id import TraceFinder
from threadline.tenancy import HEADER, TenantError, resolve_tenant


def tenant_of(request: web.Request, multitenancy_enabled: bool) -> str:
    try:
        return resolve_tenant(request.headers.getall(HEADER, []), multitenancy_enabled)
    except TenantError as e:
        cls = web.HTTPUnauthorized if e.status == 401 else web.HTTPBadRequest
        raise cls(text=e.message) from None


MAX_NS = 2**63 - 1  # stored times and durations are int64 nanoseconds
ErrorFactory = Callable[[str], web.HTTPException]


def bad_request(message: str) -> web.HTTPException:
    return web.HTTPBadRequest(text=message)


# a form POST's fields merged over its URL's parameters (see ``params``)
_FORM = "threadline.form_params"


def use_form(request: web.Request, form: Mapping[str, object]) -> None:
    """Make ``form``'s text fields, with the URL's parameters, the request's ``params``."""
    merged: MultiDict[str] = MultiDict(request.query)
    merged.extend((k, v) for k, v in form.items() if isinstance(v, str))
    request[_FORM] = MultiDictProxy(merged)


# what the parameter parsers read: a request, or parameters already taken from one (the
# streaming gRPC service hands its request's fields in as such)
Params = web.BaseRequest | Mapping[str, str]


def params(request: Params) -> Mapping[str, str]:
    """The request's parameters: the URL's, or those and a form body's (``use_form``)."""
    if isinstance(request, web.BaseRequest):
        return request.get(_FORM, request.query)
    return request


def _raw(request: Params, name: str) -> str | None:
    raw = params(request).get(name)
    return None if raw is None or raw.strip() == "" else raw


def int_param(
    request: Params,
    name: str,
    default: int | None,
    *,
    minimum: int = 0,
    maximum: int = MAX_NS,
    unit: str = "",
    error: ErrorFactory = bad_request,
) -> int | None:
    """An integer query parameter within ``[minimum, maximum]``, ``default`` when absent."""
    raw = _raw(request, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise error(f"invalid {name} {raw[:64]!r}: expected an integer{unit}") from None
    if not minimum <= value <= maximum:
        raise error(f"invalid {name} {raw[:64]!r}: must be between {minimum} and {maximum}{unit}")
    return value


def finite_seconds(raw: str, name: str, error: ErrorFactory = bad_request) -> float:
    """A duration (``5s``, ``1m30s``, ``250ms`` or a number of seconds) that is finite, not
    negative and fits int64 nanoseconds."""
    try:
        seconds = parse_duration(raw)
    except ValueError:
        raise error(f"invalid {name} {raw[:64]!r}: use a duration like 100ms") from None
    if not math.isfinite(seconds) or seconds < 0 or seconds * 1e9 >= MAX_NS:
        raise error(
            f"invalid {name} {raw[:64]!r}: must be a finite duration from 0 to {MAX_NS // 10**9}s"
        )
    return seconds


def duration_param(request: Params, name: str, error: ErrorFactory = bad_request) -> int | None:
    """A duration query parameter in nanoseconds (see ``finite_seconds``), None when absent."""
    raw = _raw(request, name)
    return None if raw is None else int(finite_seconds(raw, name, error) * 1e9)


_DECIMAL_SECONDS = re.compile(r"\d{1,11}(\.\d{1,9})?")


def _exact_seconds_ns(text: str) -> int | None:
    """Decimal unix seconds (up to nine decimals) in nanoseconds, read exactly; None when
    ``text`` is not such a number."""
    if not _DECIMAL_SECONDS.fullmatch(text):
        return None
    whole, _, fraction = text.partition(".")
    return int(whole) * 10**9 + int(fraction.ljust(9, "0") or 0)


def unix_time_ns_param(request: Params, name: str) -> int | None:
    """Unix epoch seconds, whole or with up to nine decimals (read exactly, so a page of
    search results can end a nanosecond before the oldest trace of the last), in
    nanoseconds; None when absent."""
    raw = _raw(request, name)
    if raw is None:
        return None
    ns = _exact_seconds_ns(raw.strip())
    if ns is None:
        raise bad_request(f"invalid {name}: {raw!r} is not unix seconds")
    if ns > MAX_NS:
        raise bad_request(f"invalid {name}: {raw!r} is too far in the future")
    return ns


def parse_unix_seconds(request: Params, name: str) -> int | None:
    """Unix epoch seconds (an integer; within int64 nanoseconds), None when absent."""
    return int_param(request, name, None, maximum=MAX_NS // 10**9, unit=" (unix seconds)")


def parse_time_ns(raw: str, name: str) -> int:
    """Unix seconds (up to 10 digits, fractions allowed), unix nanoseconds, or RFC 3339; finite
    and within int64 nanoseconds."""
    text = raw.strip()
    value: float | int | None = None
    if text.isdigit() and len(text) > 10:
        value = int(text)
    elif (exact := _exact_seconds_ns(text)) is not None:
        value = exact
    else:
        try:
            value = float(text) * 1e9
        except ValueError:
            try:
                stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
                value = stamp.timestamp() * 1e9
            except (ValueError, OverflowError):
                pass
    if value is None:
        raise web.HTTPBadRequest(
            text=f"invalid {name} {raw[:64]!r}: use unix seconds, nanoseconds or RFC 3339"
        )
    if not (math.isfinite(value) and 0 <= value <= MAX_NS):
        raise web.HTTPBadRequest(
            text=f"invalid {name} {raw[:64]!r}: must be a finite time from 1970 to "
            f"{MAX_NS // 10**9} unix seconds"
        )
    return int(value)


def inspected_json(inspected: Inspected, total_jobs: int | None = None) -> dict[str, Any]:
    """What a query read, as the fields Tempo's SearchMetrics and MetadataMetrics share: its
    jobs (sources) done, of ``total_jobs`` (all of them, once it answers)."""
    return {
        "inspectedBytes": str(inspected.bytes),
        "totalJobs": inspected.jobs if total_jobs is None else total_jobs,
        "completedJobs": inspected.jobs,
        "totalBlocks": inspected.blocks,
        "totalBlockBytes": str(inspected.block_bytes),
    }


def go_duration(seconds: float) -> str:
    """Seconds as Go prints a duration (``168h0m0s``, ``1m30s``, ``45s``): Tempo's limit
    messages, which Grafana shows, read so."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{seconds:g}s"


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
        limits: QuerierConfig | None = None,
    ) -> None:
        # searches asking for more traces than ``max_result_limit`` get that many
        self.max_result_limit = (limits or QuerierConfig()).max_result_limit
        self.tag_finder = tags
        self.engine = search
        self.finder = finder
        self.dependency_finder = dependencies
        self.multitenancy_enabled = multitenancy_enabled

    def _tenant(self, request: web.Request) -> str:
        return tenant_of(request, self.multitenancy_enabled)

    async def _span_rows(self, tenant: str, trace_ids: list[bytes]) -> list[pa.Table | None]:
        """Each trace's span rows (None where it is gone), looked up at once."""
        return await asyncio.gather(*(self.finder.find(tenant, t) for t in trace_ids))
