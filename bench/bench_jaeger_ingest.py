"""Jaeger ingest throughput: thrift over HTTP (``POST /api/traces``), ~1,000-span Batches.

The workload's OTLP templates (bench/workload.py) are converted once to Jaeger thrift Batches
the way Jaeger clients and the OpenTelemetry Jaeger exporters write them: one Batch per service
(``Process`` = service name + the other resource attributes as process tags), typed span tags,
``span.kind``, ``otel.scope.*``, ``otel.status_code``/``error``, events as logs with an
``event`` field, the parent as ``parentSpanId`` plus a CHILD_OF reference. Each Batch is
serialized once (TBinaryProtocol, thriftpy2 with our IDL); separate load processes then send
copies whose trace ids are XOR-ed with a fresh salt (patched in the bytes), many in flight at
once. A push counts once the server answered 202, which it does only after the spans are in
the fsynced WAL. The translation alone (thrift → OTLP bytes, one thread) is timed first.
Prints one JSON object.

    python bench/bench_jaeger_ingest.py --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import thriftpy2
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from thriftpy2.protocol import TBinaryProtocolFactory
from thriftpy2.transport import TMemoryBuffer

sys.path.insert(0, str(Path(__file__).parent))

from load import RECEIVED, http_load, run_clients, wait_for_start
from server import BenchServer
from threadline.model.jaeger import IDL_DIR, thrift_batch_to_otlp
from workload import build_request

J = thriftpy2.load(str(IDL_DIR / "jaeger.thrift"), module_name="bench_jaeger_thrift")
_KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def _tag(key: str, value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "string_value":
        return J.Tag(key=key, vType=J.TagType.STRING, vStr=value.string_value)
    if which == "bool_value":
        return J.Tag(key=key, vType=J.TagType.BOOL, vBool=value.bool_value)
    if which == "int_value":
        return J.Tag(key=key, vType=J.TagType.LONG, vLong=value.int_value)
    if which == "double_value":
        return J.Tag(key=key, vType=J.TagType.DOUBLE, vDouble=value.double_value)
    return J.Tag(key=key, vType=J.TagType.BINARY, vBinary=value.SerializeToString())


def _i64(raw: bytes) -> int:
    return int.from_bytes(raw, "big", signed=True)


def _jaeger_span(span: Span, scope: tuple[str, str]) -> Any:
    tags = [_tag(kv.key, kv.value) for kv in span.attributes]
    if span.kind in _KINDS:
        tags.append(J.Tag(key="span.kind", vType=J.TagType.STRING, vStr=_KINDS[span.kind]))
    tags.append(J.Tag(key="otel.scope.name", vType=J.TagType.STRING, vStr=scope[0]))
    tags.append(J.Tag(key="otel.scope.version", vType=J.TagType.STRING, vStr=scope[1]))
    if span.status.code == 2:
        tags.append(J.Tag(key="otel.status_code", vType=J.TagType.STRING, vStr="ERROR"))
        tags.append(
            J.Tag(key="otel.status_description", vType=J.TagType.STRING, vStr=span.status.message)
        )
        tags.append(J.Tag(key="error", vType=J.TagType.BOOL, vBool=True))
    high, low = _i64(span.trace_id[:8]), _i64(span.trace_id[8:])
    parent = _i64(span.parent_span_id) if span.parent_span_id else 0
    refs = None
    if parent:
        refs = [J.SpanRef(refType=0, traceIdLow=low, traceIdHigh=high, spanId=parent)]
    logs = [
        J.Log(
            timestamp=ev.time_unix_nano // 1000,
            fields=[J.Tag(key="event", vType=J.TagType.STRING, vStr=ev.name)]
            + [_tag(kv.key, kv.value) for kv in ev.attributes],
        )
        for ev in span.events
    ]
    return J.Span(
        traceIdLow=low,
        traceIdHigh=high,
        spanId=_i64(span.span_id),
        parentSpanId=parent,
        operationName=span.name,
        references=refs,
        flags=1,
        startTime=span.start_time_unix_nano // 1000,
        duration=(span.end_time_unix_nano - span.start_time_unix_nano) // 1000,
        tags=tags,
        logs=logs or None,
    )


class JaegerTemplate:
    """A serialized thrift ``Batch`` and where its trace id halves sit, for cheap copies."""

    def __init__(self, process: Any, spans: list[Any]) -> None:
        buf = TMemoryBuffer()
        TBinaryProtocolFactory().get_protocol(buf).write_struct(
            J.Batch(process=process, spans=spans)
        )
        raw = buf.getvalue()
        self.data = np.frombuffer(raw, dtype=np.uint8)
        self.spans = len(spans)
        halves: list[list[int]] = [[], []]
        for which, field in ((0, "traceIdHigh"), (1, "traceIdLow")):
            for value in {getattr(s, field) for s in spans}:
                needle = value.to_bytes(8, "big", signed=True)
                at = raw.find(needle)
                while at != -1:
                    halves[which].append(at)
                    at = raw.find(needle, at + 1)
        self.index = [
            (np.unique(np.array(h, dtype=np.int64))[:, None] + np.arange(8)[None, :]).ravel()
            for h in halves
        ]

    def fresh_copy(self) -> bytes:
        """The Batch with every trace id's halves XOR-ed by new salts (traces stay whole)."""
        out = self.data.copy()
        for index in self.index:
            salt = np.frombuffer(os.urandom(8), dtype=np.uint8)
            out[index] ^= np.tile(salt, len(index) // 8)
        return out.tobytes()


def jaeger_templates(seed: int, spans_per_batch: int = 1000, requests: int = 12) -> list[Any]:
    """Per-service Batches of ``spans_per_batch`` spans cut from the workload's traces."""
    rng = random.Random(seed)
    by_service: dict[str, tuple[Any, list[Any]]] = {}
    for _ in range(requests):
        req = build_request(rng, 1000)
        for rs in req.resource_spans:
            resource = {kv.key: kv.value for kv in rs.resource.attributes}
            service = resource.pop("service.name").string_value
            if service not in by_service:
                ptags = [_tag(k, v) for k, v in resource.items()]
                by_service[service] = (J.Process(serviceName=service, tags=ptags), [])
            for ss in rs.scope_spans:
                scope = (ss.scope.name, ss.scope.version)
                by_service[service][1].extend(_jaeger_span(s, scope) for s in ss.spans)
    out = []
    for process, spans in by_service.values():
        for at in range(0, len(spans) - spans_per_batch + 1, spans_per_batch):
            out.append(JaegerTemplate(process, spans[at : at + spans_per_batch]))
    return out


def translate_rate(tpls: list[JaegerTemplate], seconds: float = 3.0) -> int:
    """Spans per CPU-second of the thrift → OTLP translation alone, one thread."""
    bodies = [t.fresh_copy() for t in tpls]
    spans, i, t0 = 0, 0, time.process_time()
    while time.process_time() - t0 < seconds:
        thrift_batch_to_otlp(bodies[i % len(bodies)])
        spans += tpls[i % len(tpls)].spans
        i += 1
    return round(spans / (time.process_time() - t0))


def _load_process(
    url: str, inflight: int, seed: int, start_at: float, seconds: float, q: mp.Queue
) -> None:
    tpls = jaeger_templates(seed)
    until = wait_for_start(start_at, seconds)
    headers = {"Content-Type": "application/x-thrift"}
    q.put(asyncio.run(http_load(url, tpls, until, inflight, headers, 202)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--inflight", type=int, default=8)
    ap.add_argument("--data-dir", type=Path)
    args = ap.parse_args()

    sample = jaeger_templates(99)
    spans_per_batch = sample[0].spans
    batch_bytes = round(sum(len(t.data) for t in sample) / len(sample))
    translate = translate_rate(sample)

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="tl-bench-")) / "data"
    server = BenchServer(data_dir).start()  # every receiver port is a free one
    url = f"http://127.0.0.1:{server.jaeger_http_port}/api/traces"
    # warmup: time for the load processes to build their templates
    run = run_clients(
        server,
        _load_process,
        lambda seed: (url, args.inflight, seed),
        args.clients,
        args.seconds,
        warmup=20,
    )
    acked, rss, elapsed = run.acked, run.rss, run.elapsed
    received = server.metric(RECEIVED)
    server.stop()
    print(
        json.dumps(
            {
                "benchmark": "jaeger_ingest",
                "protocol": "jaeger_thrift_http",
                "seconds": round(elapsed, 1),
                "spans_acked": acked,
                "spans_per_s": round(acked / args.seconds),
                "spans_received_by_distributor": int(received),
                "server_cpu_percent": run.cpu_percent,
                "server_peak_rss_mb": round(max(rss) / 2**20) if rss else None,
                "translate_only_spans_per_s": translate,
                "spans_per_batch": spans_per_batch,
                "batch_bytes": batch_bytes,
                "client_processes": args.clients,
                "inflight_per_client": args.inflight,
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
