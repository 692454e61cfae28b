"""The MCP server at /api/mcp, driven by the ``mcp`` package's own client over streamable HTTP:
its tools list with descriptions that teach TraceQL, each answers from the stored traces (the
same answers as the HTTP API), a large trace stays usable in summary mode, refusals are tool
errors with the HTTP API's message, and each tenant sees only its own traces."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import httpx2
import orjson
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from conftest import Server

TOOLS = {
    "search_traces",
    "query_metrics",
    "query_metrics_instant",
    "get_trace",
    "list_attribute_names",
    "list_attribute_values",
    "list_services",
    "service_graph",
    "service_operations",
    "compare_traces",
}


def _trace(spans: int, service: str, fail_every: int = 0) -> tuple[str, bytes]:
    """A trace of a server root with ``spans - 1`` client children, starting a minute ago."""
    trace_id = os.urandom(16)
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = service
    ss = rs.scope_spans.add()
    start = time.time_ns() - 60 * 10**9
    for i in range(spans):
        span = ss.spans.add(trace_id=trace_id, span_id=(i + 1).to_bytes(8, "big"))
        span.name = "GET /checkout" if i == 0 else f"query {i % 3}"
        span.kind = 2 if i == 0 else 3
        if i:
            span.parent_span_id = (1).to_bytes(8, "big")
            span.attributes.add(key="db.system").value.string_value = "postgresql"
            span.attributes.add(key="peer.service").value.string_value = "postgres"
        span.start_time_unix_nano = start + i * 1000
        span.end_time_unix_nano = span.start_time_unix_nano + (50_000_000 if i == 0 else 1_000_000)
        if fail_every and i and i % fail_every == 0:
            span.status.code = 2
            span.status.message = "deadlock"
    return trace_id.hex(), req.SerializeToString()


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("mcp") / "data", {"multitenancy_enabled": True}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def traces(srv: Server) -> dict[str, str]:
    out = {}
    for name, spans, fail, tenant in (
        ("small", 4, 3, "shop"),
        ("other", 6, 0, "shop"),
        ("big", 600, 0, "shop"),
        ("theirs", 3, 0, "elsewhere"),
    ):
        trace_id, body = _trace(spans, "checkout" if tenant == "shop" else "secret", fail)
        r = srv.request(
            "POST",
            srv.otlp_http + "/v1/traces",
            body=body,
            headers={"Content-Type": "application/x-protobuf", "X-Scope-OrgID": tenant},
        )
        assert r.status == 200, r.data
        out[name] = trace_id
    return out


@asynccontextmanager
async def session(server: Server, tenant: str | None = "shop") -> AsyncIterator[ClientSession]:
    headers = {"X-Scope-OrgID": tenant} if tenant else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        streamable_http_client(f"{server.api}/api/mcp", http_client=http) as streams,
        ClientSession(streams[0], streams[1]) as s,
    ):
        await s.initialize()
        yield s


def call(server: Server, tool: str, tenant: str | None = "shop", **args: Any) -> Any:
    """The tool's answer as JSON data; a tool error raises ``ToolFailed``."""

    async def run() -> Any:
        async with session(server, tenant) as s:
            return await s.call_tool(tool, args)

    result = asyncio.run(run())
    text = result.content[0].text
    if result.is_error:
        raise ToolFailed(text)
    return json.loads(text)


class ToolFailed(Exception):
    pass


def test_tools_are_listed_with_descriptions_that_teach_traceql(srv: Server) -> None:
    async def run() -> Any:
        async with session(srv) as s:
            return await s.list_tools()

    tools = {t.name: t for t in asyncio.run(run()).tools}
    assert set(tools) == TOOLS
    search = tools["search_traces"]
    assert "TraceQL" in (search.description or "") and "{ status = error }" in (
        search.description or ""
    )
    assert search.input_schema["required"] == ["query"]
    assert set(tools["get_trace"].input_schema["properties"]) == {"trace_id", "mode", "max_spans"}


def test_search_answers_as_the_http_api(srv: Server, traces: dict[str, str]) -> None:
    q = '{ resource.service.name = "checkout" && status = error }'
    found = call(srv, "search_traces", query=q)
    assert [t["traceID"] for t in found["traces"]] == [traces["small"].lstrip("0")]
    (trace,) = found["traces"]
    assert trace["rootService"] == "checkout" and trace["rootName"] == "GET /checkout"
    assert trace["durationMs"] == 50 and trace["matchedSpans"] == 1
    r = srv.get(f"/api/search?q={quote(q)}", headers={"X-Scope-OrgID": "shop"})
    http = orjson.loads(r.data)
    assert [t["traceID"] for t in http["traces"]] == [t["traceID"] for t in found["traces"]]
    everything = call(srv, "search_traces", query="{ }", limit=2)
    assert len(everything["traces"]) == 2


def test_a_trace_in_summary_and_in_full(srv: Server, traces: dict[str, str]) -> None:
    summary = call(srv, "get_trace", trace_id=traces["small"])
    assert summary["spans"] == 4 and summary["services"] == {"checkout": 4}
    assert summary["errors"] == [
        {
            "spanID": (4).to_bytes(8, "big").hex(),
            "service": "checkout",
            "name": "query 0",
            "message": "deadlock",
        }
    ]
    assert summary["tree"][0].startswith("checkout: GET /checkout [server] +0.0ms 50.0ms")
    assert all(line.startswith("  checkout: query") for line in summary["tree"][1:])
    assert summary["tree"][3].endswith(f"ERROR ({(4).to_bytes(8, 'big').hex()})")
    full = call(srv, "get_trace", trace_id=traces["small"], mode="full")
    child = full["spanList"][1]
    assert child["attributes"] == {"db.system": "postgresql", "peer.service": "postgres"}
    assert child["depth"] == 1 and child["parentSpanID"] == (1).to_bytes(8, "big").hex()


def test_a_large_trace_stays_small_in_summary(srv: Server, traces: dict[str, str]) -> None:
    summary = call(srv, "get_trace", trace_id=traces["big"])
    assert summary["spans"] == 600 and len(summary["tree"]) == 200
    assert "400 more spans not shown" in summary["leftOut"]
    assert len(json.dumps(summary)) < 40_000
    few = call(srv, "get_trace", trace_id=traces["big"], mode="full", max_spans=5)
    assert len(few["spanList"]) == 5 and "595 more" in few["leftOut"]


def test_metrics_operations_graph_and_attributes(srv: Server, traces: dict[str, str]) -> None:
    q = "{ } | count_over_time() by (name)"
    instant = call(srv, "query_metrics_instant", query=q, start="1h")
    counts = {s["labels"][0]["value"]["stringValue"]: s["value"] for s in instant["series"]}
    # roots of three traces; 3 + 5 + 599 children spread over three names
    assert counts["GET /checkout"] == 3
    assert sum(counts.values()) == 4 + 6 + 600
    ranged = call(srv, "query_metrics", query="{ } | rate()", start="1h", step="60s")
    assert sum(p["value"] for p in ranged["series"][0]["samples"]) * 60 == pytest.approx(610)
    ops = call(srv, "service_operations", service="checkout", start="1h")
    assert ops["slowest"][0]["operation"] == "GET /checkout"
    (failing,) = ops["failing"]
    assert failing["operation"] == "query 0" and failing["errors"] == 1
    graph = call(srv, "service_graph")
    assert [(e["source"], e["target"]) for e in graph["edges"]] == [("checkout", "postgres")]
    assert call(srv, "list_services") == {"services": ["checkout"]}
    names = call(srv, "list_attribute_names", scope="span")
    assert names["scopes"][0] == {"name": "span", "tags": ["db.system", "peer.service"]}
    values = call(srv, "list_attribute_values", name="span.peer.service")
    assert values == {"values": [{"type": "string", "value": "postgres"}]}


def test_two_traces_compared(srv: Server, traces: dict[str, str]) -> None:
    diff = call(srv, "compare_traces", trace_a=traces["small"], trace_b=traces["other"])
    rows = {(r["service"], r["operation"]): r for r in diff["operations"]}
    assert rows[("checkout", "query 1")]["spansA"] == 1
    assert rows[("checkout", "query 1")]["spansB"] == 2
    assert rows[("checkout", "query 0")]["errorsA"] == 1
    assert diff["onlyInA"] == [] and diff["onlyInB"] == []


def test_refusals_are_tool_errors_with_the_http_message(srv: Server) -> None:
    r = srv.get(f"/api/search?q={quote('{ .a = }')}", headers={"X-Scope-OrgID": "shop"})
    with pytest.raises(ToolFailed) as e:
        call(srv, "search_traces", query="{ .a = }")
    assert str(e.value).endswith(r.data.decode())
    with pytest.raises(ToolFailed, match="not found"):
        call(srv, "get_trace", trace_id="ab" * 16)
    with pytest.raises(ToolFailed, match="hex"):
        call(srv, "get_trace", trace_id="not-an-id")
    with pytest.raises(ToolFailed, match="not a metrics query"):
        call(srv, "query_metrics", query="{ }")
    with pytest.raises(ToolFailed, match="mode"):
        call(srv, "get_trace", trace_id="ab" * 16, mode="everything")


def test_each_tenant_sees_its_own(srv: Server, traces: dict[str, str]) -> None:
    with pytest.raises(ToolFailed, match="no org id"):
        call(srv, "list_services", tenant=None)
    assert call(srv, "list_services", tenant="elsewhere") == {"services": ["secret"]}
    with pytest.raises(ToolFailed, match="not found"):
        call(srv, "get_trace", tenant="elsewhere", trace_id=traces["small"])
    found = call(srv, "search_traces", tenant="elsewhere", query="{ }")
    assert [t["traceID"] for t in found["traces"]] == [traces["theirs"].lstrip("0")]
