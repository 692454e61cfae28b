"""Trace by ID from blocks: request latency, and bytes per span on disk.

A real ``threadline serve`` (default config, durable acks) is loaded with ``--spans`` spans over
OTLP/gRPC (1,000-span requests, each copy with fresh trace ids, 16 in flight); a uniform random
sample of the pushed traces is remembered with the number of spans each has. ``POST /flush``
then writes every live trace into blocks, and once all spans are in blocks the benchmark
measures:

* the size of the blocks (``data.parquet`` alone, and with ``bloom`` and ``meta.json``) per span;
* the server's RSS;
* sequential ``GET /api/traces/{id}`` on one keep-alive connection, wall time per request as the
  client sees it: ``Accept: application/protobuf`` over the sample (after an unmeasured warm-up
  over 200 other sampled traces), the default JSON over 500 of them, and 500 unknown ids (404).
  Every answer is checked: status, and the span count against the pushed one (mismatches are
  counted and a few shown, never dropped).

Ingest throughput is reported on the side. Prints one JSON object; a temporary data directory
(no ``--data-dir``) is deleted at the end.

    python bench/bench_trace_by_id.py --spans 5000000 --samples 2000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import http.client
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import urllib3
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

sys.path.insert(0, str(Path(__file__).parent))

from server import HOST, BenchServer
from workload import Template, templates

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
SPANS_METRIC = "threadline_ingester_block_spans_written_total"
WARMUP = 200
JSON_SAMPLES = 500
UNKNOWN_SAMPLES = 500
SHOW_PROBLEMS = 5
LATENCY = ("requests", "p50_ms", "p99_ms", "max_ms")


def template_counts(tpl: Template) -> list[int]:
    """Spans per trace of ``tpl``, in the order ``Template.fresh_copy_with_ids`` gives ids."""
    req = ExportTraceServiceRequest.FromString(tpl.data.tobytes())
    counts = Counter(
        span.trace_id for rs in req.resource_spans for ss in rs.scope_spans for span in ss.spans
    )
    # the copy's ids must be the template's (same order) XOR one salt, or the counts are wrong
    _, ids = tpl.fresh_copy_with_ids()
    if len(ids) != len(counts):
        raise RuntimeError("fresh_copy_with_ids does not match the template's trace ids")
    salts = {
        bytes(x ^ y for x, y in zip(c, t, strict=True)) for c, t in zip(ids, counts, strict=True)
    }
    if len(salts) != 1:
        raise RuntimeError("fresh_copy_with_ids does not match the template's trace ids")
    return list(counts.values())


class Reservoir:
    """A uniform random sample of fixed size from a stream (Algorithm R)."""

    def __init__(self, size: int, rng: random.Random) -> None:
        self.size, self.rng, self.seen = size, rng, 0
        self.items: list[tuple[bytes, int]] = []

    def add(self, item: tuple[bytes, int]) -> None:
        self.seen += 1
        if len(self.items) < self.size:
            self.items.append(item)
        elif (j := self.rng.randrange(self.seen)) < self.size:
            self.items[j] = item


async def push(
    target: str,
    tpls: list[Template],
    counts: list[list[int]],
    requests: int,
    inflight: int,
    sample: Reservoir,
) -> int:
    """Send ``requests`` requests, ``inflight`` at a time; returns the spans acknowledged."""
    import grpc

    acked = 0
    next_request = 0
    async with grpc.aio.insecure_channel(
        target, options=[("grpc.max_send_message_length", 64 * 2**20)]
    ) as channel:
        call = channel.unary_unary(EXPORT)

        async def worker() -> None:
            nonlocal acked, next_request
            while next_request < requests:
                k = next_request % len(tpls)
                next_request += 1
                data, ids = tpls[k].fresh_copy_with_ids()
                await call(data, timeout=300)
                acked += tpls[k].spans
                for item in zip(ids, counts[k], strict=True):
                    sample.add(item)

        await asyncio.gather(*(worker() for _ in range(inflight)))
    return acked


def block_files(data_dir: Path) -> dict[str, int]:
    """Bytes of each kind of block file, and the number of blocks (visible blocks only)."""
    sizes = {"data.parquet": 0, "bloom": 0, "meta.json": 0, "other": 0, "blocks": 0}
    for block in (data_dir / "blocks").glob("*/*"):
        # visible blocks only: compacted inputs wait for deletion without a meta.json
        if not block.is_dir() or not (block / "meta.json").exists():
            continue
        sizes["blocks"] += 1
        for f in block.iterdir():
            sizes[f.name if f.name in sizes else "other"] += f.stat().st_size
    return sizes


def spans_in(body: bytes, protobuf: bool) -> int:
    if protobuf:
        traces = TracesData.FromString(body)
        return sum(len(ss.spans) for rs in traces.resource_spans for ss in rs.scope_spans)
    doc = orjson.loads(body)
    return sum(len(ss.get("spans", [])) for b in doc["batches"] for ss in b.get("scopeSpans", []))


def query_pass(
    port: int, ids: list[tuple[bytes, int]], protobuf: bool, expect_status: int
) -> dict[str, Any]:
    """Sequential GETs on one keep-alive connection; per request wall times and any problems."""
    headers = {"Accept": "application/protobuf"} if protobuf else {}
    conn = http.client.HTTPConnection(HOST, port, timeout=300)
    times: list[float] = []
    statuses: Counter[int] = Counter()
    mismatches: list[dict[str, Any]] = []
    slowest = (0.0, "")
    gc.collect()
    gc.disable()
    t_pass = time.perf_counter()
    try:
        for trace_id, expected in ids:
            t0 = time.perf_counter()
            conn.request("GET", f"/api/traces/{trace_id.hex()}", headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            elapsed = time.perf_counter() - t0
            times.append(elapsed)
            statuses[resp.status] += 1
            slowest = max(slowest, (elapsed, trace_id.hex()))
            if resp.status != 200 or expect_status != 200:
                continue  # a 404 has no spans to count; a wrong status is counted above
            got = spans_in(body, protobuf)
            if got != expected:
                mismatches.append({"trace_id": trace_id.hex(), "expected": expected, "got": got})
    finally:
        pass_s = time.perf_counter() - t_pass
        gc.enable()
        conn.close()
    ms = np.array(times) * 1000
    return {
        "requests": len(times),
        "per_s": round(len(times) / pass_s, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p90_ms": round(float(np.percentile(ms, 90)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "max_ms": round(float(ms.max()), 2),
        "slowest_trace_id": slowest[1],
        "unexpected_status": {str(s): n for s, n in sorted(statuses.items()) if s != expect_status},
        "span_count_mismatches": len(mismatches),
        "mismatch_examples": mismatches[:SHOW_PROBLEMS],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spans", type=int, default=5_000_000, help="spans to push (whole requests)")
    ap.add_argument("--data-dir", type=Path, help="empty data directory (default: a temp dir)")
    ap.add_argument("--samples", type=int, default=2000, help="traces to fetch, protobuf pass")
    ap.add_argument("--inflight", type=int, default=16, help="gRPC requests in flight")
    ap.add_argument("--seed", type=int, default=1, help="seed for sampling and unknown ids")
    ap.add_argument("--no-compactor", action="store_true")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    tpls = templates(16)
    counts = [template_counts(t) for t in tpls]
    requests = -(-args.spans // tpls[0].spans)
    sample = Reservoir(args.samples + WARMUP, rng)

    temp_root = None
    if args.data_dir is None:
        temp_root = Path(tempfile.mkdtemp(prefix="tl-bench-"))
        data_dir = temp_root / "data"
    else:
        data_dir = args.data_dir
        if (data_dir / "blocks").exists() and any((data_dir / "blocks").iterdir()):
            sys.exit(f"{data_dir} already holds blocks: bytes per span would be wrong")
    # --no-compactor: measure lookups alone, not while the compactor merges the new blocks
    config = {"compactor": {"enabled": False}} if args.no_compactor else {}
    server = BenchServer(data_dir, config).start()
    try:
        t0 = time.monotonic()
        acked = asyncio.run(
            push(f"{HOST}:{server.grpc_port}", tpls, counts, requests, args.inflight, sample)
        )
        ingest_s = time.monotonic() - t0

        slow = urllib3.PoolManager(retries=False, timeout=3600)
        t0 = time.monotonic()
        r = slow.request("POST", server.api + "/flush")
        if r.status != 204:
            raise RuntimeError(f"flush answered {r.status}: {r.data[:200]!r}")
        flush_s = time.monotonic() - t0
        while (in_blocks := server.metric(SPANS_METRIC)) < acked:
            if time.monotonic() - t0 > 3600:
                raise RuntimeError(f"only {in_blocks:.0f} of {acked} spans in blocks after 1h")
            time.sleep(0.5)
        all_in_blocks_s = time.monotonic() - t0
        rss = server.process().memory_info().rss
        files = block_files(data_dir)

        sampled = sample.items[:]
        rng.shuffle(sampled)
        warm, measured = sampled[:WARMUP], sampled[WARMUP:]
        query_pass(server.http_port, warm, protobuf=True, expect_status=200)
        proto = query_pass(server.http_port, measured, protobuf=True, expect_status=200)
        as_json = query_pass(
            server.http_port, measured[:JSON_SAMPLES], protobuf=False, expect_status=200
        )
        unknown = [(rng.randbytes(16), 0) for _ in range(UNKNOWN_SAMPLES)]
        missing = query_pass(server.http_port, unknown, protobuf=True, expect_status=404)
        rss_after_queries = server.process().memory_info().rss
    finally:
        server.stop()
        if temp_root is not None:
            shutil.rmtree(temp_root, ignore_errors=True)

    block_bytes = files["data.parquet"] + files["bloom"] + files["meta.json"] + files["other"]
    result = {
        "benchmark": "trace_by_id",
        "spans_pushed": acked,
        "traces_pushed": sample.seen,
        "ingest_seconds": round(ingest_s, 1),
        "ingest_spans_per_s": round(acked / ingest_s),
        "flush_request_seconds": round(flush_s, 1),
        "seconds_until_all_in_blocks": round(all_in_blocks_s, 1),
        "spans_in_blocks": int(in_blocks),
        "blocks": files["blocks"],
        "parquet_mb": round(files["data.parquet"] / 2**20, 1),
        "bloom_mb": round(files["bloom"] / 2**20, 2),
        "meta_kb": round(files["meta.json"] / 2**10, 1),
        "other_block_file_bytes": files["other"],
        "bytes_per_span_parquet": round(files["data.parquet"] / acked, 1),
        "bytes_per_span_with_bloom_and_meta": round(block_bytes / acked, 1),
        "server_rss_mb_after_flush": round(rss / 2**20),
        "server_rss_mb_after_queries": round(rss_after_queries / 2**20),
        "spans_per_sampled_trace_mean": round(sum(n for _, n in measured) / len(measured), 1),
        "protobuf": proto,
        "json": {k: as_json[k] for k in (*LATENCY, "unexpected_status")}
        | {k: as_json[k] for k in ("span_count_mismatches", "mismatch_examples")},
        "unknown_id": {k: missing[k] for k in (*LATENCY, "unexpected_status")},
        "inflight": args.inflight,
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
