"""Logs: durable OTLP/gRPC logs ingest, bytes per line on disk, and a trace's lines by id.

Against a real ``threadline serve`` (default settings, fsync on): ``--lines`` realistic
application log records (five services; bodies from fifteen templates with varied ids,
numbers and addresses; three attributes; the trace and span ids of one of ~20,000 traces per
million lines) are pushed as ``LogsService/Export`` requests of 1,000 records, ``--inflight``
at a time, as fast as the server acknowledges them. Reported: acknowledged lines/s, server CPU
seconds per million lines, bytes per line on disk after ``POST /flush`` (log blocks) against
the OTLP bytes per line, ``GET /api/traces/{id}/logs`` p50/p99 over sampled traces (each
answer's line count checked), and then ``--sustain`` seconds of steady push of the same
requests: lines/s per 10 s, the server's RSS every 5 s and how long the closing flush takes
(short when block writing kept up).

Issue 15's targets (this 2-core machine): ingest >= 200,000 lines/s sustained for 60 s; disk
<= 1/8 of the OTLP bytes; a trace's lines at 20 million stored lines p50 <= 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

sys.path.insert(0, str(Path(__file__).parent))

from server import HOST, BenchServer

EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
SERVICES = ("frontend", "checkout", "cart", "payment", "inventory")
# what services log: a few dozen templates with variable fields, as real applications do
TEMPLATES = (
    "GET /api/items/{id} 200 in {ms}ms",
    "POST /api/cart/{id}/items 201 in {ms}ms",
    "cache miss for key user:{id}",
    "cache hit for key item:{id}",
    "payment {id} declined: insufficient funds",
    "payment {id} authorised amount={amount} currency=EUR",
    "retrying request to inventory (attempt {n}/3) after {ms}ms",
    "timeout after {ms}ms calling shipping-quote for order {id}",
    "user {id} logged in from 10.{n}.{m}.{k}",
    "db query SELECT * FROM items WHERE id = ? took {ms}ms rows={n}",
    "order {id} placed with {n} items total={amount}",
    "slow request: GET /api/search?q=item{n} took {ms}ms",
    "connection pool exhausted: {n} waiting, {m} active",
    "feature flag new-checkout evaluated to {flag} for user {id}",
    "published event order.created id={id} partition={n}",
)


def requests(n_lines: int, rng: random.Random) -> tuple[list[bytes], dict[bytes, int]]:
    traces = [os.urandom(16) for _ in range(max(1, n_lines // 50))]
    counts: dict[bytes, int] = {}
    out = []
    t0 = time.time_ns() - 600 * 10**9
    for r in range(-(-n_lines // 1000)):
        req = ExportLogsServiceRequest()
        for svc in SERVICES:
            rl = req.resource_logs.add()
            rl.resource.attributes.add(key="service.name").value.string_value = svc
            rl.resource.attributes.add(key="host.name").value.string_value = f"{svc}-7d9f-{r % 3}"
            sl = rl.scope_logs.add()
            sl.scope.name = f"{svc}.handlers"
            for i in range(200):
                trace = traces[rng.randrange(len(traces))]
                counts[trace] = counts.get(trace, 0) + 1
                rec = sl.log_records.add(
                    time_unix_nano=t0 + (r * 1000 + i) * 1000,
                    severity_number=rng.choice((9, 9, 9, 13, 17)),
                    trace_id=trace,
                    span_id=os.urandom(8),
                )
                rec.severity_text = {9: "INFO", 13: "WARN", 17: "ERROR"}[rec.severity_number]
                rec.body.string_value = rng.choice(TEMPLATES).format(
                    id=rng.randrange(10**6),
                    ms=rng.randint(1, 900),
                    n=rng.randint(1, 20),
                    m=rng.randint(0, 255),
                    k=rng.randint(0, 255),
                    amount=f"{rng.randint(1, 500)}.{rng.randint(0, 99):02d}",
                    flag=rng.choice(("true", "false")),
                )
                route = rng.choice(("/api/items/{id}", "/api/cart/{id}", "/api/search"))
                rec.attributes.add(key="http.route").value.string_value = route
                rec.attributes.add(key="user.id").value.int_value = rng.randrange(10**5)
                rec.attributes.add(key="code.lineno").value.int_value = rng.randrange(900)
        out.append(req.SerializeToString())
    return out, counts


async def push(target: str, bodies: list[bytes], inflight: int) -> None:
    async with grpc.aio.insecure_channel(
        target, options=[("grpc.max_send_message_length", 64 * 2**20)]
    ) as channel:
        call = channel.unary_unary(EXPORT)
        todo = iter(bodies)

        async def worker() -> None:
            for body in todo:
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

        await asyncio.gather(*(worker() for _ in range(inflight)))


def sustain(
    server: BenchServer, bodies: list[bytes], inflight: int, seconds: float
) -> dict[str, Any]:
    """Steady push for ``seconds`` (the same requests again), RSS every 5 s, then how long a
    flush takes: short when block writing kept up with the pushes."""
    proc = server.process()
    rss: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(5):
            rss.append(proc.memory_info().rss // 2**20)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    lines_each = 1000
    windows = asyncio.run(
        push_for(f"{HOST}:{server.grpc_port}", bodies, inflight, seconds, lines_each)
    )
    done.set()
    t0 = time.monotonic()
    assert server.http.request("POST", server.api + "/flush").status == 204
    return {
        "seconds": seconds,
        "lines_per_s": round(sum(windows) / (10 * len(windows))),
        "lines_per_s_by_10s": [w // 10 for w in windows],
        "rss_mb_every_5s": rss,
        "flush_after_seconds": round(time.monotonic() - t0, 2),
    }


async def push_for(
    target: str, bodies: list[bytes], inflight: int, seconds: float, lines_each: int
) -> list[int]:
    """Push ``bodies`` round and round for ``seconds``; lines acknowledged per 10 s."""
    per_window: list[int] = [0]
    t0 = time.monotonic()
    async with grpc.aio.insecure_channel(
        target, options=[("grpc.max_send_message_length", 64 * 2**20)]
    ) as channel:
        call = channel.unary_unary(EXPORT)
        turn = 0

        async def worker() -> None:
            nonlocal turn
            while time.monotonic() - t0 < seconds:
                body = bodies[turn % len(bodies)]
                turn += 1
                try:
                    await call(body, timeout=300)
                except grpc.aio.AioRpcError as e:
                    if e.code() not in (
                        grpc.StatusCode.UNAVAILABLE,
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                    ):
                        raise
                    await asyncio.sleep(0.2)
                    continue
                window = int((time.monotonic() - t0) // 10)
                while len(per_window) <= window:
                    per_window.append(0)
                per_window[window] += lines_each

        await asyncio.gather(*(worker() for _ in range(inflight)))
    return per_window[: max(1, int(seconds // 10))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--inflight", type=int, default=8)
    ap.add_argument("--lookups", type=int, default=300)
    ap.add_argument("--sustain", type=float, default=60, help="seconds of steady push after")
    args = ap.parse_args()
    rng = random.Random(9)
    bodies, counts = requests(args.lines, rng)
    lines = sum(counts.values())
    otlp_bytes = sum(len(b) for b in bodies)
    with tempfile.TemporaryDirectory(prefix="tl-logs-") as tmp:
        data_dir = Path(tmp) / "data"
        server = BenchServer(data_dir, {"compactor": {"enabled": False}}).start()
        result: dict[str, Any] = {"benchmark": "logs", "cpus": os.cpu_count(), "lines": lines}
        try:
            cpu0 = server.process().cpu_times()
            t0 = time.monotonic()
            asyncio.run(push(f"{HOST}:{server.grpc_port}", bodies, args.inflight))
            seconds = time.monotonic() - t0
            cpu1 = server.process().cpu_times()
            cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
            result["ingest"] = {
                "seconds": round(seconds, 1),
                "lines_per_s": round(lines / seconds),
                "server_cpu_s_per_million_lines": round(cpu / lines * 1e6, 2),
            }
            assert server.http.request("POST", server.api + "/flush").status == 204
            on_disk = sum(p.stat().st_size for p in (data_dir / "blocks" / ".logs").rglob("*"))
            result["disk"] = {
                "otlp_bytes_per_line": round(otlp_bytes / lines, 1),
                "bytes_per_line": round(on_disk / lines, 1),
                "ratio_to_otlp": round(on_disk / otlp_bytes, 3),
            }
            sample = rng.sample(sorted(counts), min(args.lookups, len(counts)))
            times, wrong = [], 0
            for trace in sample:
                t = time.perf_counter()
                r = server.http.request("GET", f"{server.api}/api/traces/{trace.hex()}/logs")
                times.append((time.perf_counter() - t) * 1000)
                wrong += len(json.loads(r.data)["logs"]) != counts[trace]
            ms = np.array(times)
            result["trace_logs"] = {
                "p50_ms": round(float(np.percentile(ms, 50)), 1),
                "p99_ms": round(float(np.percentile(ms, 99)), 1),
                "lookups": len(sample),
                "wrong_counts": wrong,
            }
            if args.sustain > 0:
                result["sustained"] = sustain(server, bodies, args.inflight, args.sustain)
        finally:
            server.stop()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
