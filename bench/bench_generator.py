"""What the metrics generator costs ingest: OTLP/gRPC throughput with both processors on vs off.

Runs the ingest load of bench_ingest.py (separate load processes sending the shared workload's
1,000-span requests over OTLP/gRPC, many in flight, durable acks) against two fresh servers:
one with the default config (generator off), one with ``processors: [service-graphs,
span-metrics]``, for ``--seconds`` each. Prints one JSON object: spans/s and server CPU for
both, the throughput overhead in %, and the CPU the generator itself spent (its
``threadline_generator_consume_seconds``) per acknowledged span. A push refused for
backpressure (the ingester's backlog limit) is counted, waited on briefly and not counted as
throughput, so both runs measure what the server sustains. With ``--rounds N`` the two configs
alternate N times and each reports its best round (the one least disturbed by other load on
the machine); server CPU per span is the steadier measure on a busy machine.

    python bench/bench_generator.py --seconds 20 --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from server import BenchServer
from workload import Template, templates

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

GENERATOR_ON: dict[str, Any] = {
    "metrics_generator": {"processors": ["service-graphs", "span-metrics"]},
}


async def _grpc_load(
    target: str, tpls: list[Template], until: float, inflight: int
) -> tuple[int, int]:
    import grpc

    acked = refused = 0
    async with grpc.aio.insecure_channel(
        target, options=[("grpc.max_send_message_length", 64 * 2**20)]
    ) as channel:
        call = channel.unary_unary(EXPORT)

        async def worker(k: int) -> None:
            nonlocal acked, refused
            i = k
            while time.monotonic() < until:
                tpl = tpls[i % len(tpls)]
                try:
                    await call(tpl.fresh_copy(), timeout=60)
                except grpc.aio.AioRpcError as e:
                    if e.code() not in (
                        grpc.StatusCode.UNAVAILABLE,
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                    ):
                        raise
                    refused += 1
                    await asyncio.sleep(0.05)
                    continue
                acked += tpl.spans
                i += inflight

        await asyncio.gather(*(worker(k) for k in range(inflight)))
    return acked, refused


def _load_process(
    target: str, seed: int, start_at: float, seconds: float, inflight: int, q: mp.Queue
) -> None:
    tpls = templates(16, seed=seed)
    while time.time() < start_at:
        time.sleep(0.01)
    until = time.monotonic() + seconds
    try:
        q.put(asyncio.run(_grpc_load(target, tpls, until, inflight)))
    except Exception as e:  # never leave the parent waiting
        print(f"load process failed: {e}", file=sys.stderr)
        q.put((0, 0))


def run(config: dict[str, Any], seconds: float, clients: int, inflight: int) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="tl-bench-gen-")) / "data"
    server = BenchServer(data_dir, config).start()
    try:
        proc = server.process()
        target = f"127.0.0.1:{server.grpc_port}"
        q: mp.Queue = mp.Queue()
        start_at = time.time() + 15  # time for the load processes to build their templates
        loaders = [
            mp.Process(
                target=_load_process,
                args=(target, seed, start_at, seconds, inflight, q),
            )
            for seed in range(clients)
        ]
        for p in loaders:
            p.start()
        while time.time() < start_at:
            time.sleep(0.01)
        cpu0 = proc.cpu_times()
        t0 = time.monotonic()
        while any(p.is_alive() for p in loaders) and time.monotonic() - t0 < seconds + 60:
            time.sleep(0.5)
            if q.qsize() >= clients:
                break
        elapsed = time.monotonic() - t0
        cpu1 = proc.cpu_times()
        results = [q.get(timeout=120) for _ in loaders]
        acked = sum(a for a, _ in results)
        refused = sum(r for _, r in results)
        for p in loaders:
            p.join()
        cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
        generator_s = server.metric("threadline_generator_consume_seconds_total")
        return {
            "spans_acked": acked,
            "pushes_refused_backpressure": refused,
            "spans_per_s": round(acked / seconds),
            "server_cpu_percent": round(100 * cpu / elapsed),
            "server_cpu_us_per_span": round(1e6 * cpu / max(acked, 1), 2),
            "generator_cpu_us_per_span": round(1e6 * generator_s / max(acked, 1), 2),
        }
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--inflight", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    offs, ons = [], []
    for _ in range(args.rounds):
        offs.append(run({}, args.seconds, args.clients, args.inflight))
        ons.append(run(GENERATOR_ON, args.seconds, args.clients, args.inflight))
    off = max(offs, key=lambda r: r["spans_per_s"])
    on = max(ons, key=lambda r: r["spans_per_s"])
    off_cpu = min(r["server_cpu_us_per_span"] for r in offs)
    on_cpu = min(r["server_cpu_us_per_span"] for r in ons)
    overhead = 100 * (off["spans_per_s"] - on["spans_per_s"]) / max(off["spans_per_s"], 1)
    cpu_overhead = 100 * (on_cpu / max(off_cpu, 1e-9) - 1)
    print(
        json.dumps(
            {
                "benchmark": "generator_ingest_overhead",
                "protocol": "otlp_grpc",
                "seconds": args.seconds,
                "rounds": args.rounds,
                "spans_per_s_all_rounds": {
                    "off": [r["spans_per_s"] for r in offs],
                    "on": [r["spans_per_s"] for r in ons],
                },
                "generator_off": off,
                "generator_on": on,
                "throughput_overhead_percent": round(overhead, 1),
                "server_cpu_per_span_overhead_percent": round(cpu_overhead, 1),
                "target_overhead_percent": 25,
            }
        )
    )


if __name__ == "__main__":
    main()
