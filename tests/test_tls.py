"""TLS on every TCP listener from ``server.tls``: the OpenTelemetry SDK's exporters push over
TLS (gRPC and HTTP), queries answer over HTTPS, plain text is refused, and with
``client_ca_file`` only clients with a certificate from that CA get in (mutual TLS)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import orjson
import pytest
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from conftest import HOST, Server
from otel_helpers import make_trace, send, trace_hex
from streaming_client import StreamingClient


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(
    subject: str, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None, ca: bool
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    issuer_name, issuer_key = issuer or (_name(subject), key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        san = [x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost")]
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(issuer_key, hashes.SHA256()), key


def _write(directory: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey):  # type: ignore[no-untyped-def]
    crt, pem = directory / f"{name}.crt", directory / f"{name}.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return crt, pem


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pki")
    ca, ca_key = _issue("threadline test CA", None, ca=True)
    server, server_key = _issue("threadline server", (ca.subject, ca_key), ca=False)
    client, client_key = _issue("a client", (ca.subject, ca_key), ca=False)
    other_ca, other_key = _issue("someone else's CA", None, ca=True)
    stranger, stranger_key = _issue("a stranger", (other_ca.subject, other_key), ca=False)
    paths = {}
    paths["ca"], _ = _write(d, "ca", ca, ca_key)
    paths["server_crt"], paths["server_key"] = _write(d, "server", server, server_key)
    paths["client_crt"], paths["client_key"] = _write(d, "client", client, client_key)
    paths["stranger_crt"], paths["stranger_key"] = _write(d, "stranger", stranger, stranger_key)
    return paths


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory, pki: dict[str, Path]) -> Iterator[Server]:
    tls = {"cert_file": str(pki["server_crt"]), "key_file": str(pki["server_key"])}
    srv = Server(tmp_path_factory.mktemp("tls") / "data", {"server": {"tls": tls}}).start()
    yield srv
    srv.stop()


def https(pki: dict[str, Path], **client: str) -> urllib3.PoolManager:
    return urllib3.PoolManager(ca_certs=str(pki["ca"]), retries=False, timeout=30, **client)


def spans_of(http: urllib3.PoolManager, server: Server, trace: str) -> int:
    r = http.request("GET", f"https://{HOST}:{server.http_port}/api/traces/{trace}")
    assert r.status == 200, r.data
    doc = orjson.loads(r.data)
    return sum(len(ss["spans"]) for b in doc["batches"] for ss in b["scopeSpans"])


def test_sdk_exporters_push_over_tls_and_queries_answer_over_https(
    tls_server: Server, pki: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # requests lets these override the exporter's own certificate_file (requests issue 3829)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    creds = grpc.ssl_channel_credentials(pki["ca"].read_bytes())
    over_grpc = make_trace("tls-grpc")
    send(GrpcExporter(endpoint=tls_server.grpc_target, credentials=creds), over_grpc)
    over_http = make_trace("tls-http")
    endpoint = f"https://{HOST}:{tls_server.otlp_http_port}/v1/traces"
    send(HttpExporter(endpoint=endpoint, certificate_file=str(pki["ca"])), over_http)
    http = https(pki)
    assert spans_of(http, tls_server, trace_hex(over_grpc)) == len(over_grpc)
    assert spans_of(http, tls_server, trace_hex(over_http)) == len(over_http)
    r = http.request("GET", f"https://{HOST}:{tls_server.zipkin_port}/api/v2/spans")
    assert r.status == 405  # the Zipkin receiver speaks TLS too (and takes only POST)
    assert "OTLP gRPC" in tls_server.log() and f"https://{HOST}:{tls_server.http_port}" in (
        tls_server.log()
    )


def test_streaming_search_and_https_share_the_port(
    tls_server: Server, pki: dict[str, Path]
) -> None:
    """gRPC picks h2 by ALPN, browsers and HTTP clients (offering both) get HTTP/1.1."""
    spans = make_trace("tls-streamed")
    creds = grpc.ssl_channel_credentials(pki["ca"].read_bytes())
    send(GrpcExporter(endpoint=tls_server.grpc_target, credentials=creds), spans)
    client = StreamingClient(f"localhost:{tls_server.http_port}", credentials=creds)
    found = client.call_json("Search", Query='{ resource.service.name = "tls-streamed" }')
    assert [t["traceID"] for t in found[-1]["traces"]] == [trace_hex(spans).lstrip("0")]
    client.close()
    context = ssl.create_default_context(cafile=str(pki["ca"]))
    context.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection((HOST, tls_server.http_port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as s,
    ):
        assert s.selected_alpn_protocol() == "http/1.1"
        s.sendall(b"GET /api/echo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        reply = b""
        while chunk := s.recv(4096):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200")


def test_plain_text_is_refused(tls_server: Server) -> None:
    plain = urllib3.PoolManager(retries=False, timeout=10)
    with pytest.raises(urllib3.exceptions.HTTPError):  # the handshake fails: closed
        plain.request("GET", f"http://{HOST}:{tls_server.http_port}/ready")
    exporter = GrpcExporter(endpoint=tls_server.grpc_target, insecure=True, timeout=5)
    assert exporter.export(make_trace("plain")) is SpanExportResult.FAILURE


def test_mutual_tls_lets_in_only_clients_of_the_ca(tmp_path: Path, pki: dict[str, Path]) -> None:
    tls = {
        "cert_file": str(pki["server_crt"]),
        "key_file": str(pki["server_key"]),
        "client_ca_file": str(pki["ca"]),
    }
    server = Server(tmp_path / "data", {"server": {"tls": tls}}).start()
    try:
        url = f"https://{HOST}:{server.http_port}/ready"
        client = https(pki, cert_file=str(pki["client_crt"]), key_file=str(pki["client_key"]))
        assert client.request("GET", url).status == 200
        for anonymous in (
            https(pki),
            https(pki, cert_file=str(pki["stranger_crt"]), key_file=str(pki["stranger_key"])),
        ):
            with pytest.raises((urllib3.exceptions.HTTPError, ssl.SSLError)):
                anonymous.request("GET", url)
        ca = pki["ca"].read_bytes()
        with_cert = grpc.ssl_channel_credentials(
            ca, pki["client_key"].read_bytes(), pki["client_crt"].read_bytes()
        )
        spans = make_trace("mtls")
        send(GrpcExporter(endpoint=server.grpc_target, credentials=with_cert), spans)
        without = GrpcExporter(
            endpoint=server.grpc_target, credentials=grpc.ssl_channel_credentials(ca), timeout=5
        )
        assert without.export(make_trace("no-cert")) is SpanExportResult.FAILURE
        assert spans_of(client, server, trace_hex(spans)) == len(spans)
    finally:
        server.stop()


def test_unreadable_tls_files_fail_the_start_naming_the_key(
    tmp_path: Path, pki: dict[str, Path]
) -> None:
    tls = {"cert_file": str(tmp_path / "missing.crt"), "key_file": str(pki["server_key"])}
    server = Server(tmp_path / "data", {"server": {"tls": tls}})
    run = subprocess.run(server.command(), capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "server.tls.cert_file" in run.stderr and "missing.crt" in run.stderr
    assert not (tmp_path / "data").exists()
    # a key that does not belong to the certificate
    tls = {"cert_file": str(pki["server_crt"]), "key_file": str(pki["client_key"])}
    run = subprocess.run(
        Server(tmp_path / "data", {"server": {"tls": tls}}).command(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1 and "unusable" in run.stderr
