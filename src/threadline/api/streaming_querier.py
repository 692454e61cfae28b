"""Tempo's ``tempopb.StreamingQuerier`` gRPC service: what Grafana's Tempo data source calls
for its streaming search and metrics, on the HTTP API port (``threadline.shared_port`` pipes the
gRPC connections to the server here, on a private Unix socket).

``Search`` streams as rounds of sources finish: each message holds the traces now certain to be
in the answer that are new or changed since the last one, with the metrics so far (completed
and total jobs: the sources); the last message is the whole answer. A metrics range query of
one pipeline sends its series so far after each round (each message whole: Grafana shows the
latest), then the answer; tag, tag value and instant calls answer in one message. A request's
fields are read into the HTTP routes' parameters, so both check them alike; their refusals
become INVALID_ARGUMENT, UNAUTHENTICATED, PERMISSION_DENIED or RESOURCE_EXHAUSTED with the
same message.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
from aiohttp import web
from google.protobuf import json_format

from threadline.api.metrics import MetricsRoutes
from threadline.api.search import SearchRoutes
from threadline.api.search_tags import SearchTagRoutes
from threadline.api.tempopb import CLASSES
from threadline.auth import Authenticator, AuthError, call_tenant
from threadline.querier.search import SearchError, SearchProgress, search_metrics, search_response
from threadline.querier.series import TooManySeries
from threadline.querier.sources import QueryLimitError
from threadline.tenancy import TenantError

log = logging.getLogger(__name__)

SERVICE = "tempopb.StreamingQuerier"
_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
}
Stream = AsyncIterator[Any]


def _set(out: dict[str, str], name: str, value: object, unit: str = "") -> None:
    """A parameter from a request field; proto3's zero (unset) leaves it out."""
    if value:
        out[name] = f"{value}{unit}"


class StreamingQuerier:
    def __init__(
        self,
        search: SearchRoutes,
        tags: SearchTagRoutes,
        metrics: MetricsRoutes,
        auth: Authenticator | None,
        multitenancy_enabled: bool,
    ) -> None:
        self.search = search
        self.tags = tags
        self.metrics = metrics
        self.auth = auth
        self.multitenancy_enabled = multitenancy_enabled
        self.server: grpc.aio.Server | None = None
        self._dir: str | None = None
        self.socket = ""

    async def start(self) -> str:
        """Listen on a Unix socket in a directory only this user can enter; returns its path."""
        self._dir = tempfile.mkdtemp(prefix="threadline-grpc-")
        self.socket = str(Path(self._dir) / "streaming.sock")
        self.server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        methods: dict[str, tuple[str, str, Callable[[Any, Any], Stream]]] = {
            "Search": ("SearchRequest", "SearchResponse", self._search),
            "SearchTags": ("SearchTagsRequest", "SearchTagsResponse", self._tags_v1),
            "SearchTagsV2": ("SearchTagsRequest", "SearchTagsV2Response", self._tags_v2),
            "SearchTagValues": (
                "SearchTagValuesRequest",
                "SearchTagValuesResponse",
                self._values_v1,
            ),
            "SearchTagValuesV2": (
                "SearchTagValuesRequest",
                "SearchTagValuesV2Response",
                self._values_v2,
            ),
            "MetricsQueryRange": ("QueryRangeRequest", "QueryRangeResponse", self._range),
            "MetricsQueryInstant": ("QueryInstantRequest", "QueryInstantResponse", self._instant),
        }
        handlers = {
            name: grpc.unary_stream_rpc_method_handler(
                self._answering(name, CLASSES[reply], call),
                request_deserializer=CLASSES[request].FromString,
                response_serializer=lambda m: m.SerializeToString(),
            )
            for name, (request, reply, call) in methods.items()
        }
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, handlers),)
        )
        if not self.server.add_insecure_port(f"unix:{self.socket}"):
            raise OSError(f"cannot listen for {SERVICE} on {self.socket}")
        await self.server.start()
        return self.socket

    async def stop(self, grace: float) -> None:
        """Calls under way get ``grace`` seconds to finish."""
        if self.server is not None:
            await self.server.stop(grace=grace)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)

    def _answering(
        self, name: str, reply: Any, call: Callable[[Any, str], Stream]
    ) -> Callable[[Any, grpc.aio.ServicerContext], Stream]:
        """``call(request, tenant)``'s JSON documents as ``reply`` messages, its refusals as
        gRPC status codes."""

        async def run(request: Any, context: grpc.aio.ServicerContext) -> Stream:
            code, message = None, ""
            try:
                metadata = context.invocation_metadata() or ()
                tenant = call_tenant(metadata, self.auth, self.multitenancy_enabled, "read")
                async for doc in call(request, tenant):
                    yield json_format.ParseDict(doc, reply())
            except web.HTTPException as e:
                code, message = _CODES.get(e.status, grpc.StatusCode.INVALID_ARGUMENT), e.text
            except (AuthError, TenantError) as e:
                code, message = _CODES.get(e.status, grpc.StatusCode.INVALID_ARGUMENT), e.message
            except (SearchError, TooManySeries) as e:
                code, message = grpc.StatusCode.INVALID_ARGUMENT, str(e)
            except QueryLimitError as e:
                code, message = grpc.StatusCode.RESOURCE_EXHAUSTED, str(e)
            except Exception:
                log.exception("internal error answering %s/%s", SERVICE, name)
                code, message = grpc.StatusCode.INTERNAL, "internal error"
            if code is not None:
                log.info("%s/%s refused: %s", SERVICE, name, message)
                await context.abort(code, message or code.name)

        return run

    async def _search(self, request: Any, tenant: str) -> Stream:
        p: dict[str, str] = {"q": request.Query}
        _set(p, "limit", request.Limit)
        _set(p, "spss", request.SpansPerSpanSet)
        _set(p, "start", request.start)
        _set(p, "end", request.end)
        _set(p, "minDuration", request.MinDurationMs, "ms")
        _set(p, "maxDuration", request.MaxDurationMs, "ms")
        query = self.search.parse(p)
        sent: dict[str, dict[str, Any]] = {}
        async for step in self.search.engine.stream(tenant, *query):
            if not isinstance(step, SearchProgress):
                yield search_response(step)
                continue
            fresh = [e for e in step.traces if sent.get(e["traceID"]) != e]
            sent.update((e["traceID"], e) for e in fresh)
            metrics = search_metrics(
                step.inspected_bytes,
                step.inspected_spans,
                step.total_blocks,
                step.completed_jobs,
                step.total_jobs,
            )
            yield {"traces": fresh, "metrics": metrics}

    @staticmethod
    def _tag_params(request: Any) -> dict[str, str]:
        p: dict[str, str] = {}
        _set(p, "q", request.query)
        _set(p, "start", request.start)
        _set(p, "end", request.end)
        return p

    async def _one(self, answer: Awaitable[dict[str, Any]]) -> Stream:
        yield await answer

    def _tags_v1(self, request: Any, tenant: str) -> Stream:
        p = {**self._tag_params(request), "scope": request.scope}
        return self._one(self.tags.names_v1(tenant, p))

    def _tags_v2(self, request: Any, tenant: str) -> Stream:
        p = {**self._tag_params(request), "scope": request.scope}
        return self._one(self.tags.names_v2(tenant, p))

    def _values_v1(self, request: Any, tenant: str) -> Stream:
        p = self._tag_params(request)
        return self._one(self.tags.values_of_v1(tenant, request.tagName, p))

    def _values_v2(self, request: Any, tenant: str) -> Stream:
        p = self._tag_params(request)
        return self._one(self.tags.values_of_v2(tenant, request.tagName, p))

    @staticmethod
    def _metrics_params(request: Any) -> dict[str, str]:
        p: dict[str, str] = {"q": request.query}
        _set(p, "start", request.start)  # nanoseconds
        _set(p, "end", request.end)
        return p

    def _range(self, request: Any, tenant: str) -> Stream:
        p = self._metrics_params(request)
        _set(p, "step", request.step, "ns")
        return self.metrics.range_stream(tenant, p)

    def _instant(self, request: Any, tenant: str) -> Stream:
        return self._one(self.metrics.instant_answer(tenant, self._metrics_params(request)))
