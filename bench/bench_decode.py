"""Throughput of the OTLP decoder on realistic 1000-span export requests (one CPU core).

Prints one JSON object: {"spans_per_s": ..., ...}. Run: .venv/bin/python bench/bench_decode.py
"""

from __future__ import annotations

import argparse
import json
import random
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from threadline.model.otlp_decode import decode_export_request


def _kv(key: str, value: str | int | float | bool) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def realistic_request(n_spans: int, seed: int = 1) -> bytes:
    """One service, two scopes; spans with ~10 attributes, 0-4 events, some links."""
    rnd = random.Random(seed)
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    for key, value in {
        "service.name": "checkout",
        "service.version": "2.14.1",
        "service.namespace": "shop",
        "deployment.environment": "production",
        "host.name": "ip-10-0-12-34.ec2.internal",
        "k8s.pod.name": "checkout-7d9f8c6b5-x2k4j",
        "k8s.namespace.name": "shop",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.language": "python",
        "telemetry.sdk.version": "1.25.0",
        "process.pid": 4242,
    }.items():
        rs.resource.attributes.append(_kv(key, value))
    scopes = [rs.scope_spans.add() for _ in range(2)]
    scopes[0].scope.name = "opentelemetry.instrumentation.flask"
    scopes[0].scope.version = "0.46b0"
    scopes[1].scope.name = "opentelemetry.instrumentation.sqlalchemy"
    scopes[1].scope.version = "0.46b0"
    trace_id = rnd.randbytes(16)
    parent = rnd.randbytes(8)
    for i in range(n_spans):
        if i % 20 == 0:
            trace_id = rnd.randbytes(16)
            parent = b""
        start = 1_700_000_000_000_000_000 + i * 1_000_000
        span = Span(
            trace_id=trace_id,
            span_id=rnd.randbytes(8),
            parent_span_id=parent,
            name=rnd.choice(["GET /api/cart", "SELECT orders", "POST /api/checkout", "redis GET"]),
            kind=rnd.choice([1, 2, 3]),
            start_time_unix_nano=start,
            end_time_unix_nano=start + rnd.randrange(10_000, 50_000_000),
            flags=0x100,
            status=Status(code=rnd.choice([0, 0, 1, 2]), message=""),
        )
        span.attributes.extend(
            [
                _kv("http.request.method", "GET"),
                _kv("http.route", "/api/cart/{id}"),
                _kv("url.full", f"https://shop.example.com/api/cart/{rnd.randrange(10**6)}"),
                _kv("http.response.status_code", rnd.choice([200, 200, 404, 500])),
                _kv("server.address", "shop.example.com"),
                _kv("server.port", 443),
                _kv("network.protocol.version", "1.1"),
                _kv("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0"),
                _kv("db.system", "postgresql"),
                _kv("app.cache_hit", rnd.random() < 0.5),
                _kv("app.latency_ratio", rnd.random()),
            ]
        )
        for _ in range(rnd.randrange(0, 5)):
            ev = span.events.add(time_unix_nano=start + 5_000, name="log")
            ev.attributes.extend([_kv("message", "cache miss for key"), _kv("level", "info")])
        if rnd.random() < 0.1:
            span.links.add(trace_id=rnd.randbytes(16), span_id=rnd.randbytes(8))
        scopes[i % 2].spans.append(span)
        parent = span.span_id
    return req.SerializeToString()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--spans", type=int, default=1000, help="spans per request")
    ap.add_argument("--requests", type=int, default=16, help="distinct requests")
    ap.add_argument("--seconds", type=float, default=3.0, help="measuring time")
    args = ap.parse_args()

    payloads = [realistic_request(args.spans, seed) for seed in range(args.requests)]
    for data in payloads:  # warm-up
        decode_export_request(data)
    spans = 0
    n_bytes = 0
    t0 = time.process_time()
    deadline = time.perf_counter() + args.seconds
    while time.perf_counter() < deadline:
        for data in payloads:
            spans += decode_export_request(data).batch.num_rows
            n_bytes += len(data)
    cpu = time.process_time() - t0
    print(
        json.dumps(
            {
                "spans_per_s": round(spans / cpu),
                "mb_per_s": round(n_bytes / cpu / 1e6, 1),
                "spans_per_request": args.spans,
                "bytes_per_span": round(n_bytes / spans),
            }
        )
    )


if __name__ == "__main__":
    main()
