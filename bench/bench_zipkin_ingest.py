"""Zipkin ingest throughput: ``POST /api/v2/spans`` (JSON or proto3), 1,000-span requests.

The workload's OTLP templates (bench/workload.py) are converted once to Zipkin v2 spans the way
the OpenTelemetry Zipkin exporters write them (attributes and resource attributes as string
tags, status as ``otel.status_code``/``error``, events as annotations, scope as
``otel.library.*``). Separate load processes then send copies with fresh trace ids, many in
flight at once; a push counts once the server answered 202, which it does only after the spans
are in the fsynced WAL. Before the load starts, the translation alone (Zipkin → OTLP bytes, in
this process) is timed too. Prints one JSON object.

    python bench/bench_zipkin_ingest.py --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

sys.path.insert(0, str(Path(__file__).parent))

from load import RECEIVED, http_load, run_clients, wait_for_start
from server import BenchServer
from threadline.model.zipkin import (
    ListOfSpans,
    zipkin_v2_json_to_otlp,
    zipkin_v2_proto_to_otlp,
)
from workload import Template, templates

_KINDS = {2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


def _tag(value: AnyValue) -> str:
    which = value.WhichOneof("value")
    if which == "bool_value":
        return "true" if value.bool_value else "false"
    if which in ("int_value", "double_value", "string_value"):
        return str(getattr(value, which))
    return ""


def zipkin_spans(req: ExportTraceServiceRequest) -> list[dict[str, Any]]:
    """The request's spans as Zipkin v2 JSON objects."""
    out = []
    for rs in req.resource_spans:
        resource = {kv.key: _tag(kv.value) for kv in rs.resource.attributes}
        service = resource.get("service.name", "")
        for ss in rs.scope_spans:
            for span in ss.spans:
                tags = {kv.key: _tag(kv.value) for kv in span.attributes}
                tags.update(resource)
                tags["otel.library.name"] = ss.scope.name
                tags["otel.library.version"] = ss.scope.version
                if span.status.code == 2:
                    tags["otel.status_code"] = "ERROR"
                    tags["error"] = span.status.message
                zspan: dict[str, Any] = {
                    "traceId": span.trace_id.hex(),
                    "id": span.span_id.hex(),
                    "name": span.name,
                    "timestamp": span.start_time_unix_nano // 1000,
                    "duration": (span.end_time_unix_nano - span.start_time_unix_nano) // 1000,
                    "localEndpoint": {"serviceName": service, "ipv4": "10.0.0.7"},
                    "tags": tags,
                }
                if span.parent_span_id:
                    zspan["parentId"] = span.parent_span_id.hex()
                if span.kind in _KINDS:
                    zspan["kind"] = _KINDS[span.kind]
                if span.events:
                    zspan["annotations"] = [
                        {"timestamp": ev.time_unix_nano // 1000, "value": ev.name}
                        for ev in span.events
                    ]
                out.append(zspan)
    return out


def to_proto(spans: list[dict[str, Any]]) -> bytes:
    msg = ListOfSpans()
    for s in spans:
        p = msg.spans.add(
            trace_id=bytes.fromhex(s["traceId"]),
            id=bytes.fromhex(s["id"]),
            parent_id=bytes.fromhex(s.get("parentId", "")),
            name=s["name"],
            kind={"CLIENT": 1, "SERVER": 2, "PRODUCER": 3, "CONSUMER": 4}.get(s.get("kind"), 0),
            timestamp=s["timestamp"],
            duration=s["duration"],
        )
        p.local_endpoint.service_name = s["localEndpoint"]["serviceName"]
        p.local_endpoint.ipv4 = socket.inet_aton(s["localEndpoint"]["ipv4"])
        p.tags.update(s["tags"])
        for a in s.get("annotations", ()):
            p.annotations.add(timestamp=a["timestamp"], value=a["value"])
    return msg.SerializeToString()


class ZipkinTemplate:
    """A serialized Zipkin request cut at its trace ids, for cheap copies with fresh ids."""

    def __init__(self, tpl: Template, fmt: str) -> None:
        req = ExportTraceServiceRequest.FromString(tpl.data.tobytes())
        spans = zipkin_spans(req)
        self.spans = len(spans)
        ids = list(dict.fromkeys(s["traceId"] for s in spans))
        if fmt == "json":
            self.body = orjson.dumps(spans)
            needles = [i.encode() for i in ids]
        else:
            self.body = to_proto(spans)
            needles = [bytes.fromhex(i) for i in ids]
        self.width = len(needles[0])
        cuts = []
        for slot, needle in enumerate(needles):
            at = self.body.find(needle)
            while at != -1:
                cuts.append((at, slot))
                at = self.body.find(needle, at + 1)
        cuts.sort()
        self.chunks, self.slots, pos = [], [], 0
        for at, slot in cuts:
            self.chunks.append(self.body[pos:at])
            self.slots.append(slot)
            pos = at + self.width
        self.tail = self.body[pos:]
        self.fmt = fmt
        self.distinct = len(needles)

    def fresh_copy(self) -> bytes:
        raw = [os.urandom(16) for _ in range(self.distinct)]
        new = [r.hex().encode() for r in raw] if self.fmt == "json" else raw
        parts = []
        for chunk, slot in zip(self.chunks, self.slots, strict=True):
            parts.append(chunk)
            parts.append(new[slot])
        parts.append(self.tail)
        return b"".join(parts)


def zipkin_templates(count: int, seed: int, fmt: str) -> list[ZipkinTemplate]:
    return [ZipkinTemplate(t, fmt) for t in templates(count, seed=seed)]


def translate_rate(tpls: list[ZipkinTemplate], fmt: str, seconds: float = 3.0) -> int:
    """Spans per CPU-second of the Zipkin → OTLP translation alone, one thread."""
    translate = zipkin_v2_json_to_otlp if fmt == "json" else zipkin_v2_proto_to_otlp
    bodies = [t.fresh_copy() for t in tpls]
    spans, i, t0 = 0, 0, time.process_time()
    while time.process_time() - t0 < seconds:
        translate(bodies[i % len(bodies)])
        spans += tpls[i % len(tpls)].spans
        i += 1
    return round(spans / (time.process_time() - t0))


def _load_process(
    url: str, fmt: str, inflight: int, seed: int, start_at: float, seconds: float, q: mp.Queue
) -> None:
    tpls = zipkin_templates(8, seed, fmt)
    until = wait_for_start(start_at, seconds)
    content_type = "application/json" if fmt == "json" else "application/x-protobuf"
    headers = {"Content-Type": content_type}
    q.put(asyncio.run(http_load(url, tpls, until, inflight, headers, 202)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--format", choices=["json", "proto"], default="json")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--inflight", type=int, default=8)
    ap.add_argument("--data-dir", type=Path)
    args = ap.parse_args()

    translate = translate_rate(zipkin_templates(4, 99, args.format), args.format)

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="tl-bench-")) / "data"
    server = BenchServer(data_dir).start()  # every receiver port is a free one
    url = f"http://127.0.0.1:{server.zipkin_port}/api/v2/spans"
    # warmup: time for the load processes to build their templates
    run = run_clients(
        server,
        _load_process,
        lambda seed: (url, args.format, args.inflight, seed),
        args.clients,
        args.seconds,
        warmup=15,
    )
    acked, rss, elapsed = run.acked, run.rss, run.elapsed
    received = server.metric(RECEIVED)
    server.stop()
    print(
        json.dumps(
            {
                "benchmark": "zipkin_ingest",
                "protocol": f"zipkin_{args.format}",
                "seconds": round(elapsed, 1),
                "spans_acked": acked,
                "spans_per_s": round(acked / args.seconds),
                "spans_received_by_distributor": int(received),
                "server_cpu_percent": run.cpu_percent,
                "server_peak_rss_mb": round(max(rss) / 2**20) if rss else None,
                "translate_only_spans_per_s": translate,
                "client_processes": args.clients,
                "inflight_per_client": args.inflight,
            }
        )
    )


if __name__ == "__main__":
    main()
