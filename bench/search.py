"""Interactive search at scale: ingest a shop-like corpus, then time every everyday query.

One command (``python bench/search.py``, 5 million spans by default) does it all against a real
``threadline serve`` with default settings except that the compactor is off while it runs:

1. **Ingest**: about 500 k traces of 5-40 spans over ten services (http and db attributes, ~3%
   errors, a few slow requests) are pushed over OTLP/gRPC as fast as the server acknowledges
   them. The corpus lies on a timeline: request ``i`` of ``n`` is shifted to its place in the
   last ``--window`` seconds, as live traffic would be. Reported: acknowledged spans/s, server
   CPU seconds, spans per server CPU-second, peak RSS (sampled every 0.5 s).
2. **After ingest**: right away, with blocks as the ingester wrote them and the rest still live,
   every query below is timed through the Tempo HTTP API (sequential, one keep-alive
   connection): p50 / p99 wall time, traces answered, and bytes the server process read per
   query (``read_chars`` of ``/proc/<pid>/io``: every read() and pread(), cached or not).
3. **After compaction**: the server is stopped (writing its live traces to blocks),
   ``threadline blocks compact`` merges the blocks, the server is started again and the same
   queries are timed. Bytes per span on disk are reported before and after.

Prints one JSON object. ``--spans 200000`` makes a quick run.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

sys.path.insert(0, str(Path(__file__).parent))

from server import HOST, BenchServer
from workload import _set, field_positions, patched

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
WRITTEN = "threadline_ingester_block_spans_written_total"
SERVICES = (
    "frontend",
    "checkout",
    "cart",
    "payment",
    "product-catalog",
    "currency",
    "shipping",
    "auth",
    "recommendation",
    "email",
)
OPERATIONS = {
    s: tuple(f"{s.replace('-', '.')}.{op}" for op in ("get", "list", "update", "validate"))
    for s in SERVICES
}
ROUTES = ("/api/products", "/api/products/{id}", "/api/cart", "/api/checkout", "/api/login")
DB_SYSTEMS = ("postgresql", "postgresql", "redis", "mysql")
MS = 1_000_000

# (name, TraceQL, limit); all-match searches ask for 10,000
SEARCHES = [
    ("service", '{ resource.service.name = "checkout" }', 20),
    ("status_5xx", "{ span.http.status_code >= 500 }", 20),
    ("duration_1s", "{ duration > 1s }", 20),
    ("db_and_duration", '{ span.db.system = "postgresql" && duration > 100ms }', 20),
    ("db_and_duration_all", '{ span.db.system = "postgresql" && duration > 100ms }', 10_000),
    ("descendant", '{ kind = server } >> { span.db.system = "postgresql" }', 20),
    ("descendant_10k", '{ kind = server } >> { span.db.system = "postgresql" }', 10_000),
    ("count_gt_20", "{ } | count() > 20", 20),
    ("count_gt_20_10k", "{ } | count() > 20", 10_000),
    ("errors_by_service", "{ status = error } | by(resource.service.name)", 20),
]
METRICS = [
    ("rate_by_service", "{ } | rate() by (resource.service.name)"),
    ("p99_by_service", "{ } | quantile_over_time(duration, .99) by (resource.service.name)"),
]


# -- the corpus ----------------------------------------------------------------------------------


def _trace(rng: random.Random, trace_id: bytes, t0: int) -> list[tuple[str, Span]]:
    """One request: frontend (http server) -> services (rpc) -> databases; 5-40 spans."""
    spans: list[tuple[str, Span]] = []
    target = rng.choice((5, 5, 5, 6, 6, 7, 7, 8, 8, 9, 10, 11, 13, 16, 22, 40))
    failing = rng.random() < 0.03
    slow = rng.random() < 0.004

    def span(service: str, parent: Span | None, name: str, kind: int, start: int) -> Span:
        s = Span(
            trace_id=trace_id,
            span_id=rng.randbytes(8),
            parent_span_id=parent.span_id if parent is not None else b"",
            name=name,
            kind=kind,
            start_time_unix_nano=start,
        )
        spans.append((service, s))
        return s

    def db_call(service: str, parent: Span, start: int) -> int:
        system = rng.choice(DB_SYSTEMS)
        op = rng.choice(("SELECT", "SELECT", "UPDATE", "INSERT"))
        s = span(service, parent, f"{op} shop.{service.replace('-', '_')}", 3, start)
        a = s.attributes
        _set(a, "db.system", system)
        _set(a, "db.operation", op)
        _set(a, "db.name", "shop")
        _set(a, "server.address", f"{system}.shop.svc")
        dur = int(rng.lognormvariate(1.0, 0.9) * MS)
        if system == "postgresql" and rng.random() < 0.004:
            dur += rng.randint(100, 900) * MS
        s.end_time_unix_nano = start + dur
        return s.end_time_unix_nano

    def service_call(service: str, parent: Span, start: int, depth: int) -> int:
        # the caller's service is filled in by _owner_fix
        client = span("", parent, OPERATIONS[service][0], 3, start)
        server = span(service, client, rng.choice(OPERATIONS[service]), 2, start + 200_000)
        for a in (client.attributes, server.attributes):
            _set(a, "rpc.system", "grpc")
            _set(a, "rpc.service", f"shop.{service}")
        t = server.start_time_unix_nano + 100_000
        while len(spans) < target and rng.random() < 0.7:
            if depth < 2 and rng.random() < 0.5:
                t = service_call(rng.choice(SERVICES[1:]), server, t, depth + 1)
            else:
                t = db_call(service, server, t)
        t += int(rng.lognormvariate(0.5, 0.7) * MS)
        server.end_time_unix_nano = t
        client.end_time_unix_nano = t + 150_000
        return client.end_time_unix_nano

    root = span("frontend", None, "", 2, t0)
    route = rng.choice(ROUTES)
    method = "POST" if route in ("/api/cart", "/api/checkout", "/api/login") else "GET"
    root.name = f"{method} {route}"
    t = t0 + 300_000
    while len(spans) < target - 1:
        t = service_call(rng.choice(SERVICES[1:]), root, t, 0)
    if slow:
        t += rng.randint(1000, 3000) * MS
    root.end_time_unix_nano = t + int(rng.lognormvariate(0.3, 0.5) * MS)
    status = rng.choice((200, 200, 200, 200, 201, 204, 304, 404))
    if failing:
        status = rng.choice((500, 502, 503))
        culprit = rng.choice(spans)[1]
        culprit.status.code = Status.STATUS_CODE_ERROR
        culprit.status.message = "upstream request failed"
        ev = culprit.events.add(name="exception", time_unix_nano=culprit.start_time_unix_nano)
        _set(ev.attributes, "exception.type", "ConnectionError")
        _set(ev.attributes, "exception.message", "connection reset by peer")
        root.status.code = Status.STATUS_CODE_ERROR
    a = root.attributes
    _set(a, "http.request.method", method)
    _set(a, "http.method", method)
    _set(a, "http.route", route)
    _set(a, "http.status_code", status)
    _set(a, "http.response.status_code", status)
    _set(a, "url.path", route.replace("{id}", str(rng.randint(1, 5000))))
    _set(a, "user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)")
    return spans


def _owner_fix(spans: list[tuple[str, Span]]) -> list[tuple[str, Span]]:
    """Client spans belong to the calling service: the service of their parent span."""
    service_of = {s.span_id: svc for svc, s in spans}
    out = []
    for svc, s in spans:
        if s.kind == 3 and s.attributes and s.attributes[0].key == "rpc.system":
            svc = service_of.get(s.parent_span_id, svc)
        out.append((svc, s))
    return out


class Template:
    """A serialized ExportTraceServiceRequest whose trace ids and timestamps can be patched:
    every copy gets fresh ids (XOR with a salt) and is shifted in time (fixed64 fields)."""

    def __init__(self, rng: random.Random, spans: int, slot_ns: int) -> None:
        by_service: dict[str, list[Span]] = {}
        self.trace_ids: list[bytes] = []
        self.trace_spans: list[int] = []
        count = 0
        while count < spans:
            tid = rng.randbytes(16)
            trace = _owner_fix(_trace(rng, tid, rng.randint(0, slot_ns)))
            self.trace_ids.append(tid)
            self.trace_spans.append(len(trace))
            count += len(trace)
            for svc, s in trace:
                by_service.setdefault(svc, []).append(s)
        req = ExportTraceServiceRequest()
        for svc, svc_spans in by_service.items():
            rs = req.resource_spans.add()
            ra = rs.resource.attributes
            _set(ra, "service.name", svc)
            _set(ra, "service.version", "2.3.1")
            _set(ra, "deployment.environment", "production")
            _set(ra, "host.name", f"{svc}-5c8d7f-{rng.randint(0, 2)}")
            _set(ra, "k8s.namespace.name", "shop")
            _set(ra, "telemetry.sdk.language", "python")
            ss = rs.scope_spans.add()
            ss.scope.name = "opentelemetry.instrumentation.grpc"
            ss.scope.version = "0.48b0"
            ss.spans.extend(svc_spans)
        self.spans = count
        self.data = np.frombuffer(req.SerializeToString(), dtype=np.uint8)
        self.id_index, self.time_index = field_positions(req)

    def copy(self, salt: bytes, offset_ns: int) -> bytes:
        return patched(self.data, self.id_index, self.time_index, salt, offset_ns).tobytes()

    def ids(self, salt: bytes) -> list[bytes]:
        return [bytes(a ^ b for a, b in zip(t, salt, strict=True)) for t in self.trace_ids]


# -- ingest --------------------------------------------------------------------------------------


class Sampler(threading.Thread):
    """Peak RSS of the server process, every 0.5 s, while running."""

    def __init__(self, server: BenchServer) -> None:
        super().__init__(daemon=True)
        self.proc = server.process()
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            self.peak = max(self.peak, self.proc.memory_info().rss)


async def push(
    target: str,
    tpls: list[Template],
    requests: int,
    window_start_ns: int,
    slot_ns: int,
    inflight: int,
    sample: list[tuple[bytes, int]],
    rng: random.Random,
) -> int:
    import grpc

    acked = 0
    next_request = 0
    every = max(1, requests // 400)
    async with grpc.aio.insecure_channel(
        target, options=[("grpc.max_send_message_length", 64 * 2**20)]
    ) as channel:
        call = channel.unary_unary(EXPORT)

        async def worker() -> None:
            nonlocal acked, next_request
            while next_request < requests:
                i = next_request
                next_request += 1
                tpl = tpls[i % len(tpls)]
                salt = os.urandom(16)
                body = tpl.copy(salt, window_start_ns + i * slot_ns)
                while True:
                    try:
                        await call(body, timeout=300)
                        break
                    except grpc.aio.AioRpcError as e:
                        if e.code() not in (
                            grpc.StatusCode.UNAVAILABLE,
                            grpc.StatusCode.RESOURCE_EXHAUSTED,
                        ):
                            raise
                        await asyncio.sleep(0.2)
                acked += tpl.spans
                if i % every == 0:
                    k = rng.randrange(len(tpl.trace_ids))
                    sample.append((tpl.ids(salt)[k], tpl.trace_spans[k]))

        await asyncio.gather(*(worker() for _ in range(inflight)))
    return acked


# -- queries -------------------------------------------------------------------------------------


class Client:
    """Sequential GETs on one keep-alive connection, with the server's bytes read per request."""

    def __init__(self, server: BenchServer) -> None:
        self.conn = http.client.HTTPConnection(HOST, server.http_port, timeout=600)
        self.io = server.process()

    def get(self, path: str, **params: Any) -> tuple[int, bytes, float, int]:
        url = path + ("?" + urllib.parse.urlencode(params) if params else "")
        read0 = self.io.io_counters().read_chars
        t0 = time.perf_counter()
        self.conn.request("GET", url)
        resp = self.conn.getresponse()
        body = resp.read()
        elapsed = time.perf_counter() - t0
        return resp.status, body, elapsed, self.io.io_counters().read_chars - read0

    def timed(
        self, path: str, budget_s: float, runs: int, count: Any, **params: Any
    ) -> dict[str, Any]:
        """One unmeasured warm-up, then up to ``runs`` runs (at least 3) within ``budget_s``."""
        status, body, _, _ = self.get(path, **params)
        if status != 200:
            return {"status": status, "error": body[:300].decode(errors="replace")}
        times, reads = [], []
        t_end = time.monotonic() + budget_s
        while len(times) < runs and (len(times) < 3 or time.monotonic() < t_end):
            status, body, elapsed, read = self.get(path, **params)
            times.append(elapsed * 1000)
            reads.append(read)
        ms = np.array(times)
        return {
            "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "runs": len(times),
            "answered": count(orjson.loads(body)),
            "read_mb": round(float(np.median(reads)) / 2**20, 2),
        }


def measure(
    server: BenchServer,
    window: tuple[int, int],
    sample: list[tuple[bytes, int]],
    budget_s: float,
    runs: int,
) -> dict[str, Any]:
    start_s, end_s = window[0] // 10**9, window[1] // 10**9 + 1
    client = Client(server)
    out: dict[str, Any] = {}
    rss_peak = 0
    proc = server.process()
    for name, q, limit in SEARCHES:
        out[name] = client.timed(
            "/api/search",
            budget_s,
            runs if limit <= 20 else max(3, runs // 3),
            lambda d: len(d.get("traces", [])),
            q=q,
            limit=limit,
            start=start_s,
            end=end_s,
        )
        rss_peak = max(rss_peak, proc.memory_info().rss)
    out["tag_values_service"] = client.timed(
        "/api/v2/search/tag/resource.service.name/values",
        budget_s,
        runs,
        lambda d: len(d.get("tagValues", [])),
        start=start_s,
        end=end_s,
    )
    out["tag_names"] = client.timed(
        "/api/v2/search/tags",
        budget_s,
        runs,
        lambda d: sum(len(s.get("tags", [])) for s in d.get("scopes", [])),
        start=start_s,
        end=end_s,
    )
    for name, q in METRICS:
        out[name] = client.timed(
            "/api/metrics/query_range",
            budget_s,
            max(3, runs // 3),
            lambda d: len(d.get("series", [])),
            q=q,
            start=start_s,
            end=end_s,
        )
        rss_peak = max(rss_peak, proc.memory_info().rss)
    times, wrong = [], 0
    for trace_id, spans in sample:
        status, body, elapsed, _ = client.get(
            f"/api/traces/{trace_id.hex()}", start=start_s, end=end_s
        )
        times.append(elapsed * 1000)
        doc = orjson.loads(body) if status == 200 else {}
        got = sum(
            len(ss.get("spans", [])) for b in doc.get("batches", []) for ss in b["scopeSpans"]
        )
        wrong += got != spans
    ms = np.array(times)
    out["trace_by_id"] = {
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "runs": len(times),
        "wrong_span_counts": wrong,
    }
    out["server_rss_mb_peak_during_queries"] = round(rss_peak / 2**20)
    return out


def blocks_on_disk(data_dir: Path) -> tuple[int, int]:
    n = size = 0
    for block in (data_dir / "blocks").glob("*/*"):
        if (block / "meta.json").exists():
            n += 1
            size += sum(f.stat().st_size for f in block.iterdir())
    return n, size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spans", type=int, default=5_000_000)
    ap.add_argument("--window", type=int, default=3600, help="seconds the corpus spans")
    ap.add_argument("--inflight", type=int, default=16)
    ap.add_argument("--runs", type=int, default=15, help="timed runs per query (at most)")
    ap.add_argument("--budget", type=float, default=20, help="seconds per query (past 3 runs)")
    ap.add_argument("--data-dir", type=Path, help="empty directory (default: a temp dir)")
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    spans_per_request = 1000
    requests = -(-args.spans // spans_per_request)
    slot_ns = args.window * 10**9 // requests
    tpls = [Template(rng, spans_per_request, slot_ns) for _ in range(48)]
    window_start = time.time_ns() - args.window * 10**9 - 60 * 10**9
    window = (window_start, window_start + requests * slot_ns + slot_ns + 10 * 10**9)

    temp_root = Path(tempfile.mkdtemp(prefix="tl-search-")) if args.data_dir is None else None
    data_dir = args.data_dir or temp_root / "data"  # type: ignore[operator]
    config: dict[str, Any] = {"compactor": {"enabled": False}}
    server = BenchServer(data_dir, config).start()
    result: dict[str, Any] = {"benchmark": "search", "cpus": os.cpu_count()}
    sample: list[tuple[bytes, int]] = []
    try:
        sampler = Sampler(server)
        sampler.start()
        cpu0 = server.process().cpu_times()
        t0 = time.monotonic()
        acked = asyncio.run(
            push(
                f"{HOST}:{server.grpc_port}",
                tpls,
                requests,
                window_start,
                slot_ns,
                args.inflight,
                sample,
                rng,
            )
        )
        ingest_s = time.monotonic() - t0
        cpu1 = server.process().cpu_times()
        sampler.done.set()
        sampler.peak = max(sampler.peak, server.process().memory_info().rss)
        cpu_s = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
        in_blocks = server.metric(WRITTEN)
        result["ingest"] = {
            "spans": acked,
            "traces": sum(len(t.trace_ids) for t in tpls) * requests // len(tpls),
            "seconds": round(ingest_s, 1),
            "spans_per_s": round(acked / ingest_s),
            "server_cpu_seconds": round(cpu_s, 1),
            "server_cores": round(cpu_s / ingest_s, 2),
            "spans_per_server_cpu_second": round(acked / cpu_s),
            "server_rss_mb_peak": round(sampler.peak / 2**20),
        }
        blocks, size = blocks_on_disk(data_dir)
        result["after_ingest"] = {
            "blocks": blocks,
            "spans_in_blocks": int(in_blocks),
            "spans_live": acked - int(in_blocks),
            "bytes_per_span_in_blocks": round(size / max(1, in_blocks), 1),
        } | measure(server, window, sample, args.budget, args.runs)
        server.stop()  # graceful: live traces go to blocks
        blocks, size = blocks_on_disk(data_dir)
        result["before_compaction"] = {"blocks": blocks, "bytes_per_span": round(size / acked, 1)}
        t0 = time.monotonic()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "threadline.cli",
                "blocks",
                "compact",
                "--data-dir",
                str(data_dir),
                "--retention",
            ],
            check=True,
            stdout=sys.stderr,
        )
        compact_s = time.monotonic() - t0
        blocks, size = blocks_on_disk(data_dir)
        server = BenchServer(data_dir, config).start()
        result["after_compaction"] = {
            "compaction_seconds": round(compact_s, 1),
            "blocks": blocks,
            "bytes_per_span": round(size / acked, 1),
        } | measure(server, window, sample, args.budget, args.runs)
    finally:
        server.stop()
        if temp_root is not None:
            shutil.rmtree(temp_root, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
