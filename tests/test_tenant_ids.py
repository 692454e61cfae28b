"""Tenant ids that cannot be used are refused by every read API and every push protocol with 400 /
INVALID_ARGUMENT (401 / UNAUTHENTICATED when missing or empty), never 500, and leave nothing on
disk; two ``X-Scope-OrgID`` values on one request are refused rather than one of them chosen."""

from __future__ import annotations

import http.client
from collections.abc import Iterator

import grpc
import orjson
import pytest

from conftest import HOST, Server
from otlp_requests import trace_request
from threadline.tenancy import TenantError, resolve_tenant

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
POST_SPANS = "/jaeger.api_v2.CollectorService/PostSpans"

# (what, raw header value, status)
BAD_IDS = [
    ("parent dir", b"../x", 400),
    ("slash", b"a/b", 400),
    ("empty", b"", 401),
    ("blank", b"   ", 401),
    ("too long", b"a" * 151, 400),
    ("non-ASCII", "tenant-\u00e9".encode(), 400),
    ("non-UTF-8", b"t\xff", 400),
    ("dots", b"...", 400),
    ("dot", b".", 400),
    ("hidden", b".hidden", 400),
    ("reserved wal", b"wal", 400),
    ("reserved, other case", b"Staging", 400),
    ("tenant index name", b"index.json.gz", 400),
]
GOOD = "acme-1_(x).y*'!"

READS = [
    "/api/traces/" + "1" * 32,
    "/api/v2/traces/" + "1" * 32,
    "/api/search?q=%7B%7D",
    "/api/search/tags",
    "/api/v2/search/tags",
    "/api/search/tag/service.name/values",
    "/api/v2/search/tag/resource.service.name/values",
    "/api/metrics/query_range?q=%7B%7D%20%7C%20rate()",
    "/api/metrics/query?q=%7B%7D%20%7C%20rate()",
    "/api/service-graph",
    "/generator/metrics",
    "/jaeger/api/services",
    "/jaeger/api/traces?service=x",
    "/jaeger/api/dependencies",
    "/zipkin/api/v2/services",
    "/zipkin/api/v2/traces",
    "/zipkin/api/v2/dependencies?endTs=1",
]


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(
        tmp_path_factory.mktemp("tenant-ids") / "data", {"multitenancy_enabled": True}
    ).start()
    yield server
    server.stop()


def raw_request(
    port: int,
    method: str,
    path: str,
    org_ids: list[bytes],
    body: bytes = b"",
    content_type: str | None = None,
) -> tuple[int, bytes]:
    """A request whose X-Scope-OrgID headers are sent byte for byte (any number of them)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for value in org_ids:
            conn.putheader("X-Scope-OrgID", value)
        if content_type:
            conn.putheader("Content-Type", content_type)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _pushes(srv: Server) -> list[tuple[str, int, str, bytes, str]]:
    """(name, port, path, body, content type) of a valid push on every HTTP receiver."""
    otlp, _ = trace_request(1)
    zipkin = orjson.dumps(
        [
            {
                "traceId": "5" * 32,
                "id": "6" * 16,
                "name": "z",
                "timestamp": 1_700_000_000_000_000,
                "duration": 10,
                "localEndpoint": {"serviceName": "zipkin-svc"},
            }
        ]
    )
    return [
        ("otlp http", srv.otlp_http_port, "/v1/traces", otlp, "application/x-protobuf"),
        ("zipkin", srv.zipkin_port, "/api/v2/spans", zipkin, "application/json"),
        ("jaeger http", srv.jaeger_http_port, "/api/traces", b"", "application/x-thrift"),
    ]


@pytest.mark.parametrize(("what", "value", "status"), BAD_IDS, ids=[b[0] for b in BAD_IDS])
def test_read_apis_refuse_the_id(srv: Server, what: str, value: bytes, status: int) -> None:
    for path in READS:
        got, body = raw_request(srv.http_port, "GET", path, [value])
        assert got == status, (path, got, body[:300])


@pytest.mark.parametrize(("what", "value", "status"), BAD_IDS, ids=[b[0] for b in BAD_IDS])
def test_http_pushes_refuse_the_id(srv: Server, what: str, value: bytes, status: int) -> None:
    for name, port, path, body, ctype in _pushes(srv):
        got, answer = raw_request(port, "POST", path, [value], body, ctype)
        assert got == status, (name, got, answer[:300])


GRPC_BAD = [(w, v.decode(), s) for w, v, s in BAD_IDS if v.isascii()]


@pytest.mark.parametrize(("what", "value", "status"), GRPC_BAD, ids=[b[0] for b in GRPC_BAD])
def test_grpc_pushes_refuse_the_id(srv: Server, what: str, value: str, status: int) -> None:
    code = grpc.StatusCode.UNAUTHENTICATED if status == 401 else grpc.StatusCode.INVALID_ARGUMENT
    otlp, _ = trace_request(2)
    for port, method, body in (
        (srv.grpc_port, EXPORT, otlp),
        (srv.jaeger_grpc_port, POST_SPANS, b""),
    ):
        with (
            grpc.insecure_channel(f"{HOST}:{port}") as channel,
            pytest.raises(grpc.RpcError) as err,
        ):
            channel.unary_unary(method)(body, metadata=[("x-scope-orgid", value)], timeout=10)
        assert err.value.code() == code, (method, err.value.details())


def test_ids_grpc_hands_over_undecodable_are_refused() -> None:
    # gRPC clients refuse to send non-ASCII metadata themselves; grpc-python gives a server
    # bytes that are not UTF-8 as Latin-1 text, which is refused like any other bad id
    for value in ("tenant-\u00e9", b"t\xff".decode("latin-1"), b"t\xff", "t\udcff"):
        with pytest.raises(TenantError) as err:
            resolve_tenant(value, True)
        assert err.value.status == 400


def test_two_org_ids_are_refused(srv: Server) -> None:
    two = [b"acme", b"globex"]
    for path in ("/api/search/tags", "/jaeger/api/services", "/zipkin/api/v2/services"):
        status, body = raw_request(srv.http_port, "GET", path, two)
        assert (status, b"more than one X-Scope-OrgID" in body) == (400, True), path
    for name, port, path, body, ctype in _pushes(srv):
        status, answer = raw_request(port, "POST", path, two, body, ctype)
        assert (status, b"more than one X-Scope-OrgID" in answer) == (400, True), name
    otlp, _ = trace_request(3)
    for port, method, body in (
        (srv.grpc_port, EXPORT, otlp),
        (srv.jaeger_grpc_port, POST_SPANS, b""),
    ):
        with (
            grpc.insecure_channel(f"{HOST}:{port}") as channel,
            pytest.raises(grpc.RpcError) as err,
        ):
            metadata = [("x-scope-orgid", "acme"), ("x-scope-orgid", "b")]
            channel.unary_unary(method)(body, metadata=metadata, timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "more than one X-Scope-OrgID" in err.value.details()


def test_a_valid_id_works_and_only_it_reaches_the_disk(srv: Server) -> None:
    for _, value, _ in BAD_IDS:
        for _, port, path, body, ctype in _pushes(srv):
            raw_request(port, "POST", path, [value], body, ctype)
    otlp, trace_hex = trace_request(4)
    status, _ = raw_request(
        srv.otlp_http_port, "POST", "/v1/traces", [GOOD.encode()], otlp, "application/x-protobuf"
    )
    assert status == 200
    srv.flush()
    status, _ = raw_request(srv.http_port, "GET", f"/api/traces/{trace_hex}", [GOOD.encode()])
    assert status == 200
    # dot-entries are the server's own (its lock file), never tenants
    tenants = [p.name for p in (srv.data_dir / "blocks").iterdir() if not p.name.startswith(".")]
    assert tenants == [GOOD]
    assert not (srv.data_dir / "x").exists() and not (srv.data_dir / "a").exists()
    assert srv.metric("threadline_distributor_spans_received_total", tenant="wal") == 0


def test_flush_of_a_tenant_does_not_say_whether_it_exists(srv: Server) -> None:
    for tenant in (GOOD, "nobody-here"):
        r = srv.request("POST", srv.api + f"/flush?tenant={tenant}")
        assert r.status == 204, r.data
    r = srv.request("POST", srv.api + "/flush?tenant=..")
    assert r.status == 400
