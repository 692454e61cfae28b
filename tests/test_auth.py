"""Authentication: bearer tokens and basic auth mapped to tenants, on every port that takes or
answers data. Every read API refuses a missing or wrong credential and never answers with
another tenant's data; ``X-Scope-OrgID`` can only narrow; write-only and read-only credentials
keep to their side; the users file is re-read while the server runs."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import grpc
import orjson
import pytest
import yaml
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from conftest import HOST, Server
from otel_helpers import make_trace, send, trace_hex
from streaming_client import StreamingClient
from threadline.auth import hash_password, hash_token

TOKENS = {"a": "token-of-team-a", "b": "token-of-team-b", "w": "write-only-a", "ops": "ops-all"}
GRAFANA = ("grafana", "correct horse battery staple")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(user: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


@pytest.fixture(scope="module")
def users_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "users.yaml"
    path.write_text(yaml.safe_dump([]))
    return path


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, users_file: Path) -> Iterator[Server]:
    users = [
        {"name": "team-a", "token_hash": hash_token(TOKENS["a"]), "tenants": ["team-a"]},
        {"name": "team-b", "token": TOKENS["b"], "tenants": ["team-b"]},
        {"name": "writer", "token": TOKENS["w"], "tenants": ["team-a"], "access": "write"},
        {"name": "ops", "token": TOKENS["ops"], "tenants": ["*"]},
        {
            "name": "grafana",
            "username": GRAFANA[0],
            "password_hash": hash_password(GRAFANA[1], iterations=1000),
            "tenants": ["team-a", "team-b"],
            "access": "read",
        },
    ]
    cfg = {
        "multitenancy_enabled": True,
        "auth": {
            "enabled": True,
            "users": users,
            "users_file": str(users_file),
            "reload_period": "100ms",
        },
    }
    server = Server(tmp_path_factory.mktemp("auth-srv") / "data", cfg).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pushed(srv: Server) -> dict[str, str]:
    """One trace per tenant: team-a over OTLP/HTTP, team-b over OTLP/gRPC (real exporters)."""
    a = make_trace("service-of-a")
    send(HttpExporter(endpoint=f"{srv.otlp_http}/v1/traces", headers=bearer(TOKENS["a"])), a)
    b = make_trace("service-of-b")
    # gRPC metadata keys are lower case (as OTEL_EXPORTER_OTLP_HEADERS=authorization=... gives)
    metadata = {"authorization": f"Bearer {TOKENS['b']}"}
    send(GrpcExporter(endpoint=srv.grpc_target, insecure=True, headers=metadata), b)
    return {"a": trace_hex(a), "b": trace_hex(b)}


def read_paths(trace: str) -> list[str]:
    now = int(time.time())
    window = f"start={now - 3600}&end={now + 60}"
    rate = quote("{ } | rate()")
    return [
        f"/api/traces/{trace}",
        f"/api/v2/traces/{trace}",
        "/api/search?q=" + quote("{ }"),
        "/api/search?tags=" + quote("service.name=service-of-b"),
        "/api/search/tags",
        "/api/v2/search/tags",
        "/api/search/tag/service.name/values",
        "/api/v2/search/tag/resource.service.name/values",
        f"/api/metrics/query_range?q={rate}&{window}&step=60",
        f"/api/metrics/query?q={rate}&{window}",
        f"/api/service-graph?{window}",
        "/generator/metrics",
        "/jaeger/api/services",
        "/jaeger/api/traces?service=service-of-b",
        f"/jaeger/api/traces/{trace}",
        f"/jaeger/api/dependencies?endTs={now * 1000}&lookback=3600000",
        "/zipkin/api/v2/services",
        "/zipkin/api/v2/traces?serviceName=service-of-b",
        f"/zipkin/api/v2/trace/{trace}",
    ]


def test_every_read_api_refuses_missing_or_wrong_credentials(
    srv: Server, pushed: dict[str, str]
) -> None:
    for path in read_paths(pushed["b"]):
        for headers in (
            {},
            bearer("not-a-token"),
            basic(GRAFANA[0], "wrong"),
            {"Authorization": "Digest x"},
        ):
            r = srv.get(path, headers={**headers, "X-Scope-OrgID": "team-b"})
            assert r.status == 401, (path, headers, r.status, r.data)
            assert "Bearer" in r.headers["WWW-Authenticate"]
            assert b"service-of-b" not in r.data and pushed["b"].encode() not in r.data


def test_no_read_api_answers_with_another_tenants_data(srv: Server, pushed: dict[str, str]) -> None:
    theirs = (b"service-of-b", pushed["b"].encode())
    for path in read_paths(pushed["b"]):
        # asking for the other tenant is refused ...
        r = srv.get(path, headers={**bearer(TOKENS["a"]), "X-Scope-OrgID": "team-b"})
        assert r.status == 403, (path, r.status, r.data)
        assert b"may not use tenant 'team-b'" in r.data
        # ... and without X-Scope-OrgID the token's only tenant is used
        r = srv.get(path, headers=bearer(TOKENS["a"]))
        assert r.status in (200, 404), (path, r.status, r.data)
        # (a 404 may repeat the id that was asked for)
        assert not any(t in r.data for t in theirs[: 2 if r.status == 200 else 1]), (path, r.data)
    # team-b's own credential sees its trace; team-a's trace is not one of them
    r = srv.get(f"/api/traces/{pushed['b']}", headers=bearer(TOKENS["b"]))
    assert r.status == 200 and b"service-of-b" in r.data
    r = srv.get(f"/api/traces/{pushed['a']}", headers=bearer(TOKENS["b"]))
    assert r.status == 404


def test_basic_auth_reads_the_tenants_it_is_given(srv: Server, pushed: dict[str, str]) -> None:
    for tenant, trace in (("team-a", pushed["a"]), ("team-b", pushed["b"])):
        r = srv.get(f"/api/traces/{trace}", headers={**basic(*GRAFANA), "X-Scope-OrgID": tenant})
        assert r.status == 200, r.data
    # several tenants: the request must say which
    r = srv.get(f"/api/traces/{pushed['a']}", headers=basic(*GRAFANA))
    assert r.status == 401 and b"X-Scope-OrgID must name one" in r.data
    r = srv.get("/api/search/tags", headers={**basic(*GRAFANA), "X-Scope-OrgID": "team-c"})
    assert r.status == 403


def test_grafanas_streaming_search_takes_the_same_credentials(
    srv: Server, pushed: dict[str, str]
) -> None:
    """The StreamingQuerier gRPC service on the HTTP port: metadata as Grafana sends it."""
    target = f"{HOST}:{srv.http_port}"
    q = "{ }"
    for metadata in ((), (("authorization", "Bearer not-a-token"),)):
        client = StreamingClient(target, metadata=(*metadata, ("x-scope-orgid", "team-b")))
        with pytest.raises(grpc.RpcError) as e:
            client.call("Search", Query=q)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        client.close()
    client = StreamingClient(
        target, metadata=(("authorization", basic(*GRAFANA)["Authorization"]),)
    )
    with pytest.raises(grpc.RpcError) as e:  # several tenants: it must say which
        client.call("SearchTagsV2")
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "X-Scope-OrgID must name one" in e.value.details()
    client.close()
    theirs = StreamingClient(
        target,
        metadata=(("authorization", f"Bearer {TOKENS['a']}"), ("x-scope-orgid", "team-b")),
    )
    with pytest.raises(grpc.RpcError) as e:
        theirs.call("Search", Query=q)
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "may not use tenant 'team-b'" in e.value.details()
    theirs.close()
    for tenant, trace in (("team-a", pushed["a"]), ("team-b", pushed["b"])):
        grafana = StreamingClient(
            target,
            metadata=(
                ("authorization", basic(*GRAFANA)["Authorization"]),
                ("x-scope-orgid", tenant),
            ),
        )
        found = grafana.call_json("Search", Query=q)[-1]
        assert [t["traceID"] for t in found["traces"]] == [trace.lstrip("0")]
        grafana.close()


def test_read_only_and_write_only_credentials_keep_to_their_side(
    srv: Server, pushed: dict[str, str]
) -> None:
    r = srv.get(f"/api/traces/{pushed['a']}", headers=bearer(TOKENS["w"]))
    assert r.status == 403 and b"may not read" in r.data
    spans = make_trace("service-of-a")
    send(HttpExporter(endpoint=f"{srv.otlp_http}/v1/traces", headers=bearer(TOKENS["w"])), spans)
    # grafana's password may read, not push: over HTTP and gRPC
    headers = {**basic(*GRAFANA), "X-Scope-OrgID": "team-a"}
    http = HttpExporter(endpoint=f"{srv.otlp_http}/v1/traces", headers=headers)
    assert http.export(make_trace("nope")) is SpanExportResult.FAILURE
    call = grpc.insecure_channel(srv.grpc_target).unary_unary(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
    )
    with pytest.raises(grpc.RpcError) as refused:
        call(b"", metadata=[(k.lower(), v) for k, v in headers.items()], timeout=10)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as refused:
        call(b"", timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_every_push_port_refuses_a_missing_token(srv: Server) -> None:
    for url in (
        f"{srv.otlp_http}/v1/traces",
        f"http://{HOST}:{srv.zipkin_port}/api/v2/spans",
        f"http://{HOST}:{srv.jaeger_http_port}/api/traces",
        f"http://{HOST}:{srv.sampling_port}/sampling?service=x",
    ):
        r = srv.request("POST" if "sampling" not in url else "GET", url, body=b"{}")
        assert r.status == 401, (url, r.status, r.data)
    r = srv.request(
        "GET", f"http://{HOST}:{srv.sampling_port}/sampling?service=x", headers=bearer(TOKENS["w"])
    )
    assert r.status == 200  # strategies belong to no tenant: any valid credential
    # the Jaeger agent's UDP ports carry no credentials: they are off with auth
    assert "Jaeger agent" not in srv.log()


def test_health_is_open_and_self_metrics_are_the_operators(
    srv: Server, pushed: dict[str, str]
) -> None:
    assert srv.get("/ready").status == 200
    assert srv.get("/metrics").status == 401
    assert srv.get("/metrics", headers=bearer(TOKENS["a"])).status == 403
    r = srv.get("/metrics", headers=bearer(TOKENS["ops"]))
    assert r.status == 200 and b"threadline_" in r.data
    flush = srv.request("POST", srv.api + "/flush", headers=bearer(TOKENS["a"]))
    assert flush.status == 403
    flush = srv.request("POST", srv.api + "/flush?tenant=team-a", headers=bearer(TOKENS["a"]))
    assert flush.status == 204


def test_the_users_file_is_reread_while_running(
    srv: Server, users_file: Path, pushed: dict[str, str]
) -> None:
    late = "a-token-added-later"
    url = f"/api/traces/{pushed['a']}"
    assert srv.get(url, headers=bearer(late)).status == 401
    users_file.write_text(
        yaml.safe_dump([{"name": "late", "token_hash": hash_token(late), "tenants": ["team-a"]}])
    )
    deadline = time.monotonic() + 30
    while srv.get(url, headers=bearer(late)).status != 200:
        assert time.monotonic() < deadline, srv.log()
        time.sleep(0.05)
    users_file.write_text("- this is: [not a user list")  # a broken file keeps what was in force
    deadline = time.monotonic() + 30
    while "cannot be used" not in srv.log():
        assert time.monotonic() < deadline, srv.log()
        time.sleep(0.05)
    assert srv.get(url, headers=bearer(late)).status == 200
    users_file.write_text(yaml.safe_dump([]))
    deadline = time.monotonic() + 30
    while srv.get(url, headers=bearer(late)).status != 401:
        assert time.monotonic() < deadline, srv.log()
        time.sleep(0.05)


def test_the_mcp_server_takes_the_same_credentials(srv: Server, pushed: dict[str, str]) -> None:
    body = orjson.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
         "params": {"name": "list_services", "arguments": {}}}
    )  # fmt: skip
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    r = srv.http.request("POST", srv.api + "/api/mcp", body=body, headers=headers)
    assert r.status == 401 and b"service-of" not in r.data
    r = srv.http.request(
        "POST", srv.api + "/api/mcp", body=body, headers={**headers, **bearer(TOKENS["b"])}
    )
    assert r.status == 200, r.data
    assert b"service-of-b" in r.data and b"service-of-a" not in r.data
