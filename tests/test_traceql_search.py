"""TraceQL search over data whose answers are known: every operator and pipeline, with the
data all in memory, all in blocks, split across both, and each trace scattered over two
blocks and live data with some spans repeated (one tenant each): every answer is the same."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import grpc
import orjson
import pytest

from conftest import Server
from traceql_dataset import ALL_KEYS, BASE_NS, TRACE_IDS, key_of, request, span_id

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
MODES = ("memory", "blocks", "split", "scattered")


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("tql") / "data", {"multitenancy_enabled": True}).start()
    call = grpc.insecure_channel(server.grpc_target).unary_unary(EXPORT)

    def push(tenant: str, keys: list[str]) -> None:
        call(request(keys), metadata=(("x-scope-orgid", tenant),), timeout=10)

    push("memory", ALL_KEYS)
    push("blocks", ALL_KEYS)
    server.flush("blocks")
    first = [k for k in ALL_KEYS if k.startswith("T1") or k == "T3.A"]
    push("split", first)
    server.flush("split")
    push("split", [k for k in ALL_KEYS if k not in first])
    # every trace in three parts (its root, its second span, the rest), the root sent again
    roots = [k for k in ALL_KEYS if k.endswith(".A")]
    seconds = [k for k in ALL_KEYS if k.endswith(".B")]
    push("scattered", roots)
    server.flush("scattered")
    push("scattered", [*seconds, *roots])
    server.flush("scattered")
    push("scattered", [k for k in ALL_KEYS if k not in roots and k not in seconds])
    yield server
    server.stop()


def search(server: Server, tenant: str, q: str, extra: str = "") -> dict:
    r = server.get(f"/api/search?q={quote(q)}&spss=100{extra}", headers={"X-Scope-OrgID": tenant})
    assert r.status == 200, r.data
    return orjson.loads(r.data)


def matched(doc: dict) -> dict[str, set[str]]:
    """trace name -> keys of the returned spans (over all spansets)."""
    names = {tid.hex().lstrip("0"): t for t, tid in TRACE_IDS.items()}
    out: dict[str, set[str]] = {}
    for trace in doc.get("traces", []):
        keys = out.setdefault(names[trace["traceID"]], set())
        for ss in trace["spanSets"]:
            assert ss["matched"] == len(ss["spans"])
            keys |= {key_of(s["spanID"]) for s in ss["spans"]}
    return out


CASES = [
    ("{ status = error }", {"T1": {"T1.A", "T1.C"}}),
    ('{ resource.service.name = "payment" }', {"T1": {"T1.C"}, "T3": {"T3.B", "T3.C"}}),
    ("{ span.http.status_code >= 500 }", {"T1": {"T1.A"}}),
    ('{ span.http.status_code = "500" }', {}),  # a string never equals an int attribute
    ("{ duration > 1s }", {"T3": {"T3.A", "T3.B"}}),
    ("{ duration >= 200ms && duration < 1000ms }", {"T1": {"T1.A", "T1.B", "T1.C"}}),
    ('{ .db.system = "postgresql" }', {"T1": {"T1.D"}, "T3": {"T3.C"}}),
    ('{ name =~ "GET.*" }', {"T1": {"T1.A"}, "T2": {"T2.A"}}),
    ('{ name !~ ".*Charge.*" && kind = client }', {"T1": {"T1.D"}, "T2": {"T2.C"}, "T3": {"T3.C"}}),
    ("{ span.amount > 10 }", {"T3": {"T3.B"}}),
    ("{ span.amount > 10.5 * 2 }", {}),
    ("{ span.retry = true }", {"T3": {"T3.B"}}),
    ("{ span.retry }", {"T3": {"T3.B"}}),
    ('{ kind = client && resource.service.name = "payment" }', {"T1": {"T1.C"}, "T3": {"T3.C"}}),
    ('{ span.http.method != nil && span.http.method != "POST" }', {"T1": {"T1.A"}, "T2": {"T2.A"}}),
    ('{ .db.system = nil && name = "SELECT" }', {}),
    ('{ .db.system = nil && name = "GetCart" }', {"T1": {"T1.E"}}),
    ("{ span.http.status_code - 300 > 100 }", {"T1": {"T1.A"}}),
    ('{ event:name = "exception" }', {"T1": {"T1.C"}}),
    ('{ event.exception.type = "TimeoutError" }', {"T1": {"T1.C"}}),
    ("{ event.exception.type != nil && kind = server }", {}),
    ('{ instrumentation.team = "payments" }', {"T3": {"T3.A", "T3.B", "T3.C"}}),
    ('{ instrumentation:name = "shop.payments" && kind = client }', {"T3": {"T3.C"}}),
    # unscoped attributes are span, then resource attributes: never the scope's
    ('{ .team = "payments" && name = "Charge" }', {}),
    ('{ .service.name = "payment" && kind = server }', {"T3": {"T3.B"}}),
    # negation needs a value: spans without the attribute match neither it nor its negation
    ("{ !span.cached }", {"T2": {"T2.C"}}),
    ("{ !.cached }", {"T2": {"T2.C"}}),
    ("{ span.cached }", {"T1": {"T1.D"}}),
    ("{ !span.cached && kind = client }", {"T2": {"T2.C"}}),
    (
        "{ !(span.cached = true) && kind = client }",
        {"T1": {"T1.C"}, "T2": {"T2.C"}, "T3": {"T3.C"}},
    ),
    ("{ !span.retry }", {}),
    ('{ rootServiceName = "frontend" && kind = client }', {"T1": {"T1.C", "T1.D"}, "T2": {"T2.C"}}),
    ('{ span:id = "' + span_id("T2.B").hex() + '" }', {"T2": {"T2.B"}}),
    ("{ traceDuration > 1s && kind = client }", {"T3": {"T3.C"}}),
    ('{ rootName = "POST /pay" && kind = client }', {"T3": {"T3.C"}}),
    ("{ span:childCount = 2 }", {"T1": {"T1.A", "T1.B"}}),
    ("{ nestedSetParent = -1 }", {"T1": {"T1.A"}, "T2": {"T2.A"}, "T3": {"T3.A"}}),
    ('{ resource.service.name = "frontend" } >> { status = error }', {"T1": {"T1.C"}}),
    ('{ resource.service.name = "checkout" } > { kind = client }', {"T1": {"T1.C", "T1.D"}}),
    ("{ kind = client } < { }", {"T1": {"T1.B"}, "T2": {"T2.B"}, "T3": {"T3.B"}}),
    ('{ name = "Charge" } << { }', {"T1": {"T1.A", "T1.B"}, "T3": {"T3.A"}}),
    ('{ resource.service.name = "checkout" } ~ { }', {"T1": {"T1.C", "T1.E"}}),
    ('{ } !< { resource.service.name = "payment" }', {"T1": {"T1.C"}, "T3": {"T3.C"}}),
    ("{ status = error } &>> { kind = client }", {"T1": {"T1.A", "T1.C", "T1.D"}}),
    ('{ name = "PlaceOrder" } !>> { kind = client }', {"T2": {"T2.C"}, "T3": {"T3.C"}}),
    ("{ kind = server } !> { }", {"T1": {"T1.A"}, "T2": {"T2.A"}, "T3": {"T3.A"}}),
    (
        "{ kind = client } !~ { }",
        {
            "T1": {"T1.A", "T1.B", "T1.E"},
            "T2": {"T2.A", "T2.B", "T2.C"},
            "T3": {"T3.A", "T3.B", "T3.C"},
        },
    ),
    (
        "{ kind = client } &< { }",
        {"T1": {"T1.B", "T1.C", "T1.D"}, "T2": {"T2.B", "T2.C"}, "T3": {"T3.B", "T3.C"}},
    ),
    ('{ name = "db query" } &~ { }', {"T1": {"T1.C", "T1.D"}}),
    (
        '{ name = "Charge" } !<< { kind = server }',
        {"T1": {"T1.E"}, "T2": {"T2.A", "T2.B"}, "T3": {"T3.B"}},
    ),
    ('{ status = error } && { resource.service.name = "cart" }', {"T1": {"T1.A", "T1.C", "T1.E"}}),
    ("{ status = error } || { span.retry = true }", {"T1": {"T1.A", "T1.C"}, "T3": {"T3.B"}}),
    ("{ } | count() > 4", {"T1": {"T1.A", "T1.B", "T1.C", "T1.D", "T1.E"}}),
    ("{ kind = server } | avg(duration) > 500ms", {"T3": {"T3.A", "T3.B"}}),
    ("{ } | max(duration) < 150ms", {"T2": {"T2.A", "T2.B", "T2.C"}}),
    (
        "{ } | by(resource.service.name) | count() > 1",
        {"T1": {"T1.B", "T1.D"}, "T2": {"T2.B", "T2.C"}, "T3": {"T3.B", "T3.C"}},
    ),
    ("({ status = error } | count() > 1) && ({ kind = client })", {"T1": {"T1.A", "T1.C", "T1.D"}}),
    # a pipeline that starts with an aggregate returns the spans the aggregate read
    ("avg(span.amount) > 10", {"T3": {"T3.B"}}),
    ("{ } | avg(span.amount) > 10", {"T3": {"T3.A", "T3.B", "T3.C"}}),
    ("max(span.http.status_code) >= 500", {"T1": {"T1.A"}}),
    ("count() > 4", {"T1": {"T1.A", "T1.B", "T1.C", "T1.D", "T1.E"}}),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("query", "expected"), CASES, ids=[c[0] for c in CASES])
def test_exact_results(srv: Server, mode: str, query: str, expected: dict[str, set[str]]) -> None:
    assert matched(search(srv, mode, query)) == expected


@pytest.mark.parametrize("mode", MODES)
def test_trace_duration_window(srv: Server, mode: str) -> None:
    doc = search(srv, mode, "{ kind = client }", "&minDuration=1s")
    assert matched(doc) == {"T3": {"T3.C"}}
    doc = search(srv, mode, "{ kind = client }", "&maxDuration=150ms")
    assert matched(doc) == {"T2": {"T2.C"}}


@pytest.mark.parametrize("mode", MODES)
def test_result_shape_and_returned_attributes(srv: Server, mode: str) -> None:
    doc = search(srv, mode, "{ status = error } | select(span.http.method)")
    (trace,) = doc["traces"]
    assert trace["traceID"] == TRACE_IDS["T1"].hex()
    assert trace["rootServiceName"] == "frontend"
    assert trace["rootTraceName"] == "GET /checkout"
    assert trace["durationMs"] == 500
    assert trace["startTimeUnixNano"] == "1700000000000000000"
    spans = {key_of(s["spanID"]): s for s in trace["spanSet"]["spans"]}
    root = spans["T1.A"]
    attrs = {a["key"]: a["value"] for a in root["attributes"]}
    assert attrs == {"status": {"stringValue": "error"}, "http.method": {"stringValue": "GET"}}
    assert root["durationNanos"] == str(500 * 10**6)
    assert root["name"] == "GET /checkout"


def test_group_and_aggregate_labels(srv: Server) -> None:
    doc = search(srv, "memory", "{ } | by(resource.service.name) | count() > 1")
    labels = {
        (a["key"], orjson.dumps(a["value"]).decode())
        for t in doc["traces"]
        for ss in t["spanSets"]
        for a in ss["attributes"]
    }
    assert ("by(resource.service.name)", '{"stringValue":"checkout"}') in labels
    assert ("count()", '{"intValue":"2"}') in labels


def test_limit_and_spss(srv: Server) -> None:
    doc = search(srv, "memory", "{ }", "&limit=2")
    assert len(doc["traces"]) == 2
    r = srv.get(f"/api/search?q={quote('{ }')}&spss=1", headers={"X-Scope-OrgID": "memory"})
    for trace in orjson.loads(r.data)["traces"]:
        assert len(trace["spanSet"]["spans"]) == 1
        assert trace["spanSet"]["matched"] >= 1


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("{ status = }", "syntax error at line 1"),
        ('{ duration > "abc" }', "invalid query"),
        ("{ span.a = 1 } | rate()", "/api/metrics/query_range"),
    ],
)
def test_bad_queries_are_400(srv: Server, query: str, words: str) -> None:
    r = srv.get(f"/api/search?q={quote(query)}", headers={"X-Scope-OrgID": "memory"})
    assert r.status == 400
    assert words in r.data.decode()


def test_protobuf_search_response(srv: Server) -> None:
    from google.protobuf import json_format

    from threadline.api.tempopb import SearchResponse

    url = "/api/search?q=" + quote('{ resource.service.name = "payment" }')
    r = srv.get(url, headers={"X-Scope-OrgID": "blocks", "Accept": "application/protobuf"})
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("application/protobuf")
    message = SearchResponse.FromString(r.data)
    as_json = orjson.loads(srv.get(url, headers={"X-Scope-OrgID": "blocks"}).data)
    assert len(message.traces) == 2
    # the protobuf answer is the JSON answer, field for field
    assert json_format.MessageToDict(message.traces[0]) in as_json["traces"]
    assert json_format.MessageToDict(message.traces[1]) in as_json["traces"]
    assert message.metrics.totalBlocks == as_json["metrics"]["totalBlocks"]


# a 64-bit trace id (the upper half zero, as Zipkin and Jaeger clients send) with a leading
# zero in the lower half too, and a link to T1
SHORT_ID = bytes(8) + bytes.fromhex("00c0ffee00000001")
SHORT_SPAN = bytes.fromhex("000000000000beef")


def _short_id_request() -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "legacy"
    span = rs.scope_spans.add().spans.add(
        trace_id=SHORT_ID, span_id=SHORT_SPAN, name="poll", kind=2
    )
    span.start_time_unix_nano = 1_700_000_000_000_000_000
    span.end_time_unix_nano = span.start_time_unix_nano + 10**6
    span.links.add(trace_id=TRACE_IDS["T1"], span_id=span_id("T1.A"))
    return req.SerializeToString()


@pytest.mark.parametrize("mode", ["memory", "blocks"])
def test_ids_match_in_every_form(srv: Server, mode: str) -> None:
    tenant = f"ids-{mode}"
    call = grpc.insecure_channel(srv.grpc_target).unary_unary(EXPORT)
    call(_short_id_request(), metadata=(("x-scope-orgid", tenant),), timeout=10)
    call(request(["T1.A"]), metadata=(("x-scope-orgid", tenant),), timeout=10)
    if mode == "blocks":
        srv.flush(tenant)
    full = SHORT_ID.hex()
    forms = [full, full.lstrip("0"), full[16:], full[16:].lstrip("0"), full.upper()]
    for form in forms:
        doc = search(srv, tenant, f'{{ trace:id = "{form}" }}')
        assert [t["traceID"] for t in doc["traces"]] == [full.lstrip("0")], form
    t1 = TRACE_IDS["T1"].hex()
    for q, expected in [
        (f'{{ trace:id != "{full.lstrip("0")}" }}', {t1}),
        (f'{{ trace:id = "{"1" + full}" }}', set()),  # 33 digits: no trace id
        ('{ trace:id = "c0ffee" }', set()),
        ('{ span:id = "beef" }', {full.lstrip("0")}),
        (f'{{ link:traceID = "{t1}" }}', {full.lstrip("0")}),
        ('{ link:traceID = "a1a1" }', set()),
        (f'{{ link:spanID = "{span_id("T1.A").hex()}" }}', {full.lstrip("0")}),
        ('{ span:parentID = "0" }', set()),  # a root has no parent id, not a zero one
    ]:
        assert {t["traceID"] for t in search(srv, tenant, q).get("traces", [])} == expected, q


@pytest.mark.parametrize("mode", MODES)
def test_spans_are_listed_once(srv: Server, mode: str) -> None:
    for q in ("{ status = error }", "{ } >> { status = error }", "{ }"):
        for trace in search(srv, mode, q)["traces"]:
            ids = [s["spanID"] for ss in trace["spanSets"] for s in ss["spans"]]
            assert len(ids) == len(set(ids)), (q, trace)


def _orphan_request() -> bytes:
    """A trace whose span "B" never arrived: "C" (child of B) and "D" (child of C) hang from
    nothing; "A" is the root."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "orphans"
    spans = rs.scope_spans.add().spans
    for i, (name, parent) in enumerate([("A", None), ("C", "B"), ("D", "C")]):
        span = spans.add(trace_id=b"\x0b" * 16, span_id=name.encode() * 8, name=name, kind=2)
        if parent:
            span.parent_span_id = parent.encode() * 8
        span.start_time_unix_nano = 1_700_000_000_000_000_000 + i * 10**6
        span.end_time_unix_nano = span.start_time_unix_nano + 10**8
    return req.SerializeToString()


def test_spans_without_their_parent_head_a_subtree(srv: Server) -> None:
    """Our rule (Tempo leaves such spans out of every structural relation instead): the top
    of a subtree whose parent never arrived acts as a root."""
    call = grpc.insecure_channel(srv.grpc_target).unary_unary(EXPORT)
    call(_orphan_request(), metadata=(("x-scope-orgid", "orphans"),), timeout=10)

    def names(q: str) -> set[str]:
        doc = search(srv, "orphans", q)
        return {
            s["name"] for t in doc.get("traces", []) for ss in t["spanSets"] for s in ss["spans"]
        }

    assert names('{ name = "C" } > { }') == {"D"}
    assert names('{ } >> { name = "D" }') == {"D"}
    assert names('{ name = "A" } >> { }') == set()
    assert names("{ nestedSetParent = -1 }") == {"A", "C"}
    assert names('{ rootName = "A" && name = "D" }') == {"D"}
    assert names('{ name = "A" } ~ { }') == set()  # two roots are no siblings


METRICS_CASES = [
    ("{ } >> { } | count_over_time()", {"": 8}),
    ("{ kind = server } > { kind = client } | count_over_time()", {"": 4}),
    ('{ rootServiceName = "frontend" } | count_over_time()', {"": 8}),
    ("{ } | count() > 3 | count_over_time()", {"": 5}),
    ("{ traceDuration > 1s } | count_over_time()", {"": 3}),
    ("{ } | count_over_time() by (rootServiceName)", {"frontend": 8, "api-gateway": 3}),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("query", "expected"), METRICS_CASES)
def test_metrics_see_traces_whole(
    srv: Server, mode: str, query: str, expected: dict[str, int]
) -> None:
    """A metrics query whose answer for a span depends on the rest of its trace counts a trace
    split across live data and blocks (a span stored twice once) as after compaction."""
    start = BASE_NS // 10**9 - 5
    q = quote(query)
    r = srv.get(
        f"/api/metrics/query?q={q}&start={start}&end={start + 10}", headers={"X-Scope-OrgID": mode}
    )
    assert r.status == 200, r.data
    got = {}
    for s in orjson.loads(r.data)["series"]:
        (label,) = s["labels"]
        value = label["value"].get("stringValue", "")
        got["" if label["key"] == "__name__" else value] = s["value"]
    assert got == expected
