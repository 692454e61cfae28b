"""What the metrics generator costs ingest: OTLP/gRPC throughput with both processors on vs off.

Runs the ingest load of bench_ingest.py (separate load processes, 1,000-span requests, durable
acks) against two fresh servers, one with the default config (generator off) and one with
``processors: [service-graphs, span-metrics]``, for ``--seconds`` each, and prints one JSON
object: spans/s and server CPU for both, the throughput overhead in %, and the CPU the
generator itself spent (its ``threadline_generator_consume_seconds``) per acknowledged span.

    python bench/bench_generator.py --seconds 20
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from bench_ingest import _load_process
from server import BenchServer

GENERATOR_ON: dict[str, Any] = {
    "metrics_generator": {"processors": ["service-graphs", "span-metrics"]},
}


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
                args=("grpc", target, seed, start_at, seconds, inflight, q),
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
        acked = sum(q.get() for _ in loaders)
        for p in loaders:
            p.join()
        cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
        generator_s = server.metric("threadline_generator_consume_seconds_total")
        return {
            "spans_acked": acked,
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
    args = ap.parse_args()
    off = run({}, args.seconds, args.clients, args.inflight)
    on = run(GENERATOR_ON, args.seconds, args.clients, args.inflight)
    overhead = 100 * (off["spans_per_s"] - on["spans_per_s"]) / max(off["spans_per_s"], 1)
    cpu_overhead = 100 * (
        on["server_cpu_us_per_span"] / max(off["server_cpu_us_per_span"], 1e-9) - 1
    )
    print(
        json.dumps(
            {
                "benchmark": "generator_ingest_overhead",
                "protocol": "otlp_grpc",
                "seconds": args.seconds,
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
