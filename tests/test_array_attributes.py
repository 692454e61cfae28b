"""Array-valued attributes (OTLP ``arrayValue``): split into typed element lists that queries
compare element by element, select returns whole, and tag values list — in live data and in
blocks, each answer pinned exactly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import grpc
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from conftest import Server
from threadline.config import BlockConfig
from threadline.model.dedicated import add_dedicated_columns
from threadline.model.otlp_decode import decode_export_request
from threadline.model.schema import ARRAY_ELEMENT_TYPES, ATTR_SCOPES
from threadline.storage.block_reader import DATA_FILE
from threadline.storage.block_writer import write_block
from traceql_dataset import set_any

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
START = 1_700_000_000_000_000_000
# span name -> (span attributes, resource attributes)
SPANS: dict[str, tuple[dict[str, object], dict[str, object]]] = {
    "A": ({"retry.delays_ms": [100, 200], "feature.flags": ["a", "b"]}, {"host.ips": ["10.0.0.1"]}),
    "B": ({"retry.delays_ms": [300], "feature.flags": ["c"], "mixed": [1, "1", 2.5, True]}, {}),
    "C": ({"retry.delays_ms": 150, "feature.flags": "a"}, {"host.ips": "10.0.0.2"}),
    "D": ({"nested": [[1, 2], {"k": "v"}, b"\x00"]}, {}),
}
# span name -> its events (name, attributes) and its links' attributes
EVENTS: dict[str, list[tuple[str, dict[str, object]]]] = {
    "A": [("retry", {"attempts": [1, 2], "codes": ["E1", "E2"]}), ("done", {"attempts": 9})],
    "B": [("retry", {"attempts": 3})],
}
LINKS: dict[str, list[dict[str, object]]] = {"B": [{"tags": ["x", "y"]}], "C": [{"tags": "x"}]}


def request() -> bytes:
    req = ExportTraceServiceRequest()
    for i, (name, (span_attrs, resource_attrs)) in enumerate(SPANS.items()):
        rs = req.resource_spans.add()
        rs.resource.attributes.add(key="service.name").value.string_value = "arrays"
        for k, v in resource_attrs.items():
            set_any(rs.resource.attributes.add(key=k).value, v)
        span = rs.scope_spans.add().spans.add(
            trace_id=bytes([0xC0 + i]) * 16, span_id=bytes([i + 1]) * 8, name=name, kind=2
        )
        span.start_time_unix_nano = START + i * 10**9
        span.end_time_unix_nano = span.start_time_unix_nano + 10**6
        for k, v in span_attrs.items():
            set_any(span.attributes.add(key=k).value, v)
        for n, (event_name, attrs) in enumerate(EVENTS.get(name, [])):
            event = span.events.add(name=event_name, time_unix_nano=span.start_time_unix_nano + n)
            for k, v in attrs.items():
                set_any(event.attributes.add(key=k).value, v)
        for attrs in LINKS.get(name, []):
            link = span.links.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8)
            for k, v in attrs.items():
                set_any(link.attributes.add(key=k).value, v)
    return req.SerializeToString()


def test_array_columns_hold_each_element_by_type() -> None:
    table = pa.Table.from_batches([decode_export_request(request()).batch])
    table = pa.concat_tables([table.slice(0, 1), table.slice(1)])  # two chunks
    for part in (table, table.slice(1, 2), table.combine_chunks().slice(2)):
        out = add_dedicated_columns(part)
        names = part.column("name").to_pylist()
        for scope in ATTR_SCOPES:
            for kind in ARRAY_ELEMENT_TYPES:
                got = out.column(f"{scope}_attrs_arr_{kind}").to_pylist()
                for name, maps in zip(names, got, strict=True):
                    attrs = SPANS[name][0 if scope == "span" else 1] if scope != "scope" else {}
                    want = {}
                    for key, value in attrs.items():
                        if not isinstance(value, list):
                            continue
                        elements = [e for e in value if _kind(e) == kind]
                        if elements:
                            want[key] = elements
                    assert dict(maps) == want, (scope, kind, name)


def _kind(v: object) -> str | None:
    if isinstance(v, bool):
        return "bool"
    return {int: "int", float: "float", str: "str"}.get(type(v))


def test_blocks_hold_the_array_columns_in_use(tmp_path: Path) -> None:
    table = pa.Table.from_batches([decode_export_request(request()).batch])
    meta = write_block(tmp_path, "t", table, BlockConfig())
    data = pq.ParquetFile(tmp_path / "t" / meta.block_id / DATA_FILE).schema_arrow
    held = {n for n in data.names if "_attrs_arr_" in n}
    assert held == {
        "span_attrs_arr_int",
        "span_attrs_arr_str",
        "span_attrs_arr_float",
        "span_attrs_arr_bool",
        "resource_attrs_arr_str",
    }
    assert meta.attribute_keys is not None
    assert meta.attribute_keys["span_attrs_arr_int"] == ["mixed", "retry.delays_ms"]


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("arr") / "data", {"multitenancy_enabled": True}).start()
    call = grpc.insecure_channel(server.grpc_target).unary_unary(EXPORT)
    for tenant in ("memory", "blocks"):
        call(request(), metadata=(("x-scope-orgid", tenant),), timeout=10)
    server.flush("blocks")
    yield server
    server.stop()


def get(server: Server, tenant: str, path: str) -> dict:
    r = server.get(path, headers={"X-Scope-OrgID": tenant})
    assert r.status == 200, r.data
    return orjson.loads(r.data)


def names(server: Server, tenant: str, q: str) -> set[str]:
    doc = get(server, tenant, f"/api/search?q={quote(q)}&spss=10")
    return {s["name"] for t in doc.get("traces", []) for ss in t["spanSets"] for s in ss["spans"]}


CASES = [
    ("{ span.retry.delays_ms = 200 }", {"A"}),
    ("{ span.retry.delays_ms = 200.0 }", {"A"}),
    ('{ span.retry.delays_ms = "200" }', set()),
    ("{ span.retry.delays_ms > 250 }", {"B"}),
    ("{ span.retry.delays_ms >= 150 }", {"A", "B", "C"}),
    ("{ span.retry.delays_ms < 150 }", {"A"}),
    ("{ span.retry.delays_ms <= 100 }", {"A"}),
    ("{ span.retry.delays_ms != 100 }", {"A", "B", "C"}),
    ("{ span.retry.delays_ms != 300 }", {"A", "C"}),
    ("{ 250 < span.retry.delays_ms }", {"B"}),
    ("{ 200 = span.retry.delays_ms }", {"A"}),
    ('{ span.feature.flags = "b" }', {"A"}),
    ('{ span.feature.flags =~ "[ab]" }', {"A", "C"}),
    ('{ span.feature.flags !~ "a" }', {"A", "B"}),
    ('{ span.feature.flags != "a" }', {"A", "B"}),
    ('{ .feature.flags = "c" }', {"B"}),
    ('{ resource.host.ips = "10.0.0.1" }', {"A"}),
    ('{ .host.ips =~ "10[.].*" }', {"A", "C"}),
    ("{ span.mixed = 1 }", {"B"}),
    ('{ span.mixed = "1" }', {"B"}),
    ("{ span.mixed = true }", {"B"}),
    ("{ span.mixed = 2.5 }", {"B"}),
    ('{ span.mixed = "2.5" }', set()),
    ("{ span.retry.delays_ms != nil }", {"A", "B", "C"}),
    ("{ span.retry.delays_ms = nil }", {"D"}),
    ("{ span.nested != nil }", {"D"}),
    ("{ span.nested = 1 }", set()),  # elements that are arrays themselves are not compared
    # event and link attributes: true when one event (link) has such an element
    ("{ event.attempts = 2 }", {"A"}),
    ("{ event.attempts > 2 }", {"A", "B"}),  # A's "done" event has 9
    ("{ event.attempts >= 1 && event.attempts <= 2 }", {"A"}),
    ('{ event.codes =~ "E2" }', {"A"}),
    ('{ event.codes != "E1" }', {"A"}),
    ('{ event.attempts = 2 && event:name = "retry" }', {"A"}),
    ('{ link.tags = "y" }', {"B"}),
    ('{ link.tags = "x" }', {"B", "C"}),
    ("{ link.tags != nil }", {"B", "C"}),
]


@pytest.mark.parametrize("tenant", ["memory", "blocks"])
@pytest.mark.parametrize(("query", "expected"), CASES, ids=[c[0] for c in CASES])
def test_array_comparisons(srv: Server, tenant: str, query: str, expected: set[str]) -> None:
    assert names(srv, tenant, query) == expected


@pytest.mark.parametrize("tenant", ["memory", "blocks"])
def test_select_returns_the_array(srv: Server, tenant: str) -> None:
    q = '{ name = "A" } | select(span.retry.delays_ms, span.feature.flags)'
    (trace,) = get(srv, tenant, f"/api/search?q={quote(q)}")["traces"]
    (span,) = trace["spanSet"]["spans"]
    attrs = {a["key"]: a["value"] for a in span["attributes"]}
    assert attrs["retry.delays_ms"] == {
        "arrayValue": {"values": [{"intValue": "100"}, {"intValue": "200"}]}
    }
    assert attrs["feature.flags"] == {
        "arrayValue": {"values": [{"stringValue": "a"}, {"stringValue": "b"}]}
    }


@pytest.mark.parametrize("tenant", ["memory", "blocks"])
def test_tag_values_list_the_elements(srv: Server, tenant: str) -> None:
    delays = get(srv, tenant, "/api/v2/search/tag/span.retry.delays_ms/values")["tagValues"]
    assert delays == [{"type": "int", "value": v} for v in ("100", "150", "200", "300")]
    flags = get(srv, tenant, "/api/v2/search/tag/.feature.flags/values")["tagValues"]
    assert flags == [{"type": "string", "value": v} for v in ("a", "b", "c")]
    ips = get(srv, tenant, "/api/v2/search/tag/resource.host.ips/values")["tagValues"]
    assert ips == [{"type": "string", "value": v} for v in ("10.0.0.1", "10.0.0.2")]
    codes = get(srv, tenant, "/api/v2/search/tag/event.codes/values")["tagValues"]
    assert codes == [{"type": "string", "value": v} for v in ("E1", "E2")]
    attempts = get(srv, tenant, "/api/v2/search/tag/event.attempts/values")["tagValues"]
    assert attempts == [{"type": "int", "value": v} for v in ("1", "2", "3", "9")]
    tags = get(srv, tenant, "/api/v2/search/tag/link.tags/values")["tagValues"]
    assert tags == [{"type": "string", "value": v} for v in ("x", "y")]
