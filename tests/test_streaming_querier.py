"""Grafana's streaming search: Tempo's ``tempopb.StreamingQuerier`` gRPC service on the HTTP API
port, beside HTTP/1.1, called with a client compiled from Tempo's service definition.

Search streams the traces certain to be in its answer as rounds of sources (live data, then
blocks, newest first) finish, with the metrics so far; its last message is the whole answer,
the same as ``GET /api/search``. Tags, tag values and metrics answer as their HTTP routes do."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from urllib.parse import quote

import grpc
import orjson
import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

from conftest import HOST, Server
from otel_helpers import make_trace, send, trace_hex
from streaming_client import StreamingClient, messages

BATCHES = 5  # each cut into its own block; one more batch stays live
PER_BATCH = 3
QUERY = '{ resource.service.name = "streamed" }'


@pytest.fixture(scope="module")
def newest(server: Server) -> list[str]:
    """Every trace id, newest first: the last batch live, the others a block each."""
    exporter = OTLPSpanExporter(endpoint=server.grpc_target, insecure=True)
    ids: list[str] = []
    for batch in range(BATCHES + 1):
        for k in range(PER_BATCH):
            spans = make_trace("streamed", n_children=2, batch=batch, k=k)
            send(exporter, spans)
            ids.insert(0, trace_hex(spans).lstrip("0"))
        if batch < BATCHES:
            server.flush()
    exporter.shutdown()
    return ids


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[StreamingClient]:
    c = StreamingClient(f"{HOST}:{server.http_port}")
    yield c
    c.close()


def http_json(server: Server, path: str) -> dict:
    r = server.get(path)
    assert r.status == 200, r.data
    return orjson.loads(r.data)


def as_message(doc: dict, name: str) -> dict:
    return json_format.MessageToDict(json_format.ParseDict(doc, messages()[name]()))


def as_grafana_merges(messages: list[dict]) -> list[str]:
    """The trace list Grafana shows after the stream: every message's traces appended, the
    first of each id kept."""
    seen: list[str] = []
    for m in messages:
        seen += [t["traceID"] for t in m.get("traces", []) if t["traceID"] not in seen]
    return seen


def test_search_streams_rounds_and_ends_with_the_http_answer(
    server: Server, newest: list[str], client: StreamingClient
) -> None:
    messages = client.call_json("Search", Query=QUERY, Limit=100, SpansPerSpanSet=2)
    http = http_json(server, f"/api/search?q={quote(QUERY)}&limit=100&spss=2")
    assert [t["traceID"] for t in http["traces"]] == newest
    final = messages[-1]
    assert final["traces"] == http["traces"]
    # a message per round of sources before the last: the live data alone, then blocks
    assert len(messages) >= 3
    partial = messages[:-1]
    done = [m["metrics"]["completedJobs"] for m in partial]
    assert done == sorted(done) and done[0] >= 1
    total = final["metrics"]["totalJobs"]
    assert all(m["metrics"]["totalJobs"] == total for m in partial)
    assert total == final["metrics"]["completedJobs"] == BATCHES + 1
    assert done[-1] == total
    # what streams is certain: each trace once, newest first, as in the answer
    streamed = [t["traceID"] for m in partial for t in m.get("traces", [])]
    assert streamed == newest
    assert as_grafana_merges(messages) == newest
    # the first round (live data) already gives the newest batch
    assert [t["traceID"] for t in partial[0]["traces"]] == newest[:PER_BATCH]
    # streamed entries are the answer's entries, spans and all
    by_id = {t["traceID"]: t for t in http["traces"]}
    for m in partial:
        for t in m.get("traces", []):
            assert t == by_id[t["traceID"]]


def test_a_small_limit_streams_only_traces_of_the_answer(
    server: Server, newest: list[str], client: StreamingClient
) -> None:
    messages = client.call_json("Search", Query=QUERY, Limit=4)
    assert [t["traceID"] for t in messages[-1]["traces"]] == newest[:4]
    assert as_grafana_merges(messages) == newest[:4]
    # the search stopped once the newest four were certain: not every block was read
    assert messages[-1]["metrics"]["totalBlocks"] < BATCHES


def test_search_fields_are_read_as_the_http_parameters(
    server: Server, newest: list[str], client: StreamingClient
) -> None:
    now = int(time.time())
    http = http_json(
        server, f"/api/search?q={quote(QUERY)}&limit=5&start={now - 3600}&end={now + 60}"
    )
    got = client.call_json("Search", Query=QUERY, Limit=5, start=now - 3600, end=now + 60)
    assert got[-1]["traces"] == http["traces"]
    # a window before the data holds nothing
    got = client.call_json("Search", Query=QUERY, start=now - 7200, end=now - 3600)
    assert "traces" not in got[-1]
    # the traces last under a second: a one-second minimum leaves none
    assert "traces" not in client.call_json("Search", Query=QUERY, MinDurationMs=1000)[-1]


def test_bad_requests_are_invalid_argument_with_the_http_message(
    server: Server, client: StreamingClient
) -> None:
    bad = "{ .a = }"
    r = server.get(f"/api/search?q={quote(bad)}")
    assert r.status == 400
    with pytest.raises(grpc.RpcError) as e:
        client.call("Search", Query=bad)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details() == r.data.decode()
    with pytest.raises(grpc.RpcError) as e:
        client.call("Search", Query=QUERY, start=200, end=100)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "end must be after start" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        client.call("SearchTagValuesV2", tagName="nonsense")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "valid tagName" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        client.call("MetricsQueryRange", query="{ } | rate(", start=1, end=2)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # the server is unharmed
    assert server.get("/api/echo").status == 200


def test_tags_and_values_answer_as_the_http_routes(
    server: Server, newest: list[str], client: StreamingClient
) -> None:
    (v1,) = client.call_json("SearchTags")
    http_v1 = http_json(server, "/api/search/tags")
    assert v1 == as_message(http_v1, "SearchTagsResponse")
    # every source was read: the live data and each block
    metrics = v1["metrics"]
    assert metrics["totalJobs"] == metrics["completedJobs"] == BATCHES + 1
    assert metrics["totalBlocks"] == BATCHES
    assert 0 < int(metrics["totalBlockBytes"]) < int(metrics["inspectedBytes"])
    assert "batch" in v1["tagNames"] and "service.name" in v1["tagNames"]
    (v2,) = client.call_json("SearchTagsV2", scope="span")
    assert v2["scopes"] == http_json(server, "/api/v2/search/tags?scope=span")["scopes"]
    (values,) = client.call_json("SearchTagValues", tagName="service.name")
    assert "streamed" in values["tagValues"]
    narrowed = "{ span.batch = 2 }"
    (typed,) = client.call_json("SearchTagValuesV2", tagName="span.k", query=narrowed)
    http = http_json(server, f"/api/v2/search/tag/span.k/values?q={quote(narrowed)}")
    assert typed["tagValues"] == http["tagValues"]
    assert sorted(v["value"] for v in typed["tagValues"]) == ["0", "1", "2"]
    assert {v["type"] for v in typed["tagValues"]} == {"int"}


def test_metrics_answer_as_the_http_routes(
    server: Server, newest: list[str], client: StreamingClient
) -> None:
    end = time.time_ns() + 60 * 10**9
    start = end - 3600 * 10**9
    query = '{ resource.service.name = "streamed" } | count_over_time() by (span.batch)'
    messages = client.call_json(
        "MetricsQueryRange", query=query, start=start, end=end, step=60 * 10**9
    )
    got = messages[-1]
    # the series so far after each round of sources, each message whole, counts growing
    partial = messages[:-1]
    assert len(partial) >= 3
    done = [m["metrics"]["completedJobs"] for m in partial]
    assert done == sorted(done) and done[-1] == BATCHES + 1
    assert all(m["metrics"]["totalJobs"] == BATCHES + 1 for m in partial)

    def total(message: dict) -> float:
        return sum(p.get("value", 0) for s in message["series"] for p in s["samples"])

    totals = [total(m) for m in messages]
    assert totals == sorted(totals) and totals[0] < totals[-1]
    assert partial[-1]["series"] == got["series"]
    http = http_json(
        server,
        f"/api/metrics/query_range?q={quote(query)}&start={start}&end={end}&step=60s",
    )
    # as proto3 JSON (zero values left out), through Tempo's message
    assert got == as_message(http, "QueryRangeResponse")
    assert got["metrics"]["totalJobs"] == BATCHES + 1 and int(got["metrics"]["inspectedBytes"]) > 0
    counts = {
        str(s["labels"][0]["value"]): sum(p.get("value", 0) for p in s["samples"])
        for s in got["series"]
    }
    # each batch: three roots that carry span.batch; their children carry none
    spans = PER_BATCH * 3
    assert counts == {
        **{str({"intValue": str(b)}): PER_BATCH for b in range(BATCHES + 1)},
        str({}): spans * (BATCHES + 1) - PER_BATCH * (BATCHES + 1),
    }
    (instant,) = client.call_json("MetricsQueryInstant", query=query, start=start, end=end)
    http = http_json(server, f"/api/metrics/query?q={quote(query)}&start={start}&end={end}")
    assert instant["series"] == as_message(http, "QueryInstantResponse")["series"]
    assert sorted(s["value"] for s in instant["series"])[:-1] == [PER_BATCH] * (BATCHES + 1)


def test_http_still_answers_on_the_port_byte_by_byte(server: Server) -> None:
    """A request whose first bytes trickle in (a prefix of nothing, then of HTTP/1.1) is
    still HTTP; an HTTP/2 preface followed by garbage is dropped without harm."""
    with socket.create_connection((HOST, server.http_port), timeout=10) as s:
        for b in b"GET /api/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n":
            s.sendall(bytes([b]))
        reply = b""
        while chunk := s.recv(4096):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200") and reply.rstrip().endswith(b"\r\n\r\necho")
    with socket.create_connection((HOST, server.http_port), timeout=10) as s:
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\xff" * 64)
        while s.recv(4096):
            pass
    assert server.get("/api/echo").data.strip() == b"echo"


def test_the_answer_is_protobuf_tempo_clients_decode(client: StreamingClient) -> None:
    """Binary-compatible with Tempo's definition: a field's number and type, not its name."""
    (message,) = client.call("SearchTagsV2", scope="intrinsic")
    assert json_format.MessageToDict(message)["scopes"][0]["name"] == "intrinsic"
    assert "duration" in message.scopes[0].tags
