"""Ingest throughput: OTLP/gRPC or OTLP/HTTP, 1,000-span requests, durable acks.

Load comes from separate processes sending pre-serialized requests (each copy with fresh trace
ids), many in flight at once, so the client is not the bottleneck; with ``--rate`` the load is
paced to that many spans per second in all (an offered load, to see whether the server keeps up
with it). The server's CPU, RSS, spans received and spans written to blocks are sampled every
second; the rates over the second half of the run show whether blocks are written as fast as
spans arrive, and at the end the spans in blocks are compared with those acknowledged. Prints
one JSON object.

    python bench/bench_ingest.py --protocol grpc --seconds 60 [--rate 150000]
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

sys.path.insert(0, str(Path(__file__).parent))

from load import WRITTEN, Pacer, http_load, run_clients, wait_for_start
from server import BenchServer
from workload import Template, templates

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


async def _grpc_load(
    target: str, tpls: list[Template], until: float, inflight: int, pacer: Pacer
) -> int:
    import grpc

    acked = 0
    async with grpc.aio.insecure_channel(
        target, options=[("grpc.max_send_message_length", 64 * 2**20)]
    ) as channel:
        call = channel.unary_unary(EXPORT)

        async def worker(k: int) -> None:
            nonlocal acked
            i = k
            while time.monotonic() < until:
                tpl = tpls[i % len(tpls)]
                await pacer.wait(tpl.spans)
                try:
                    await call(tpl.fresh_copy(), timeout=60)
                except grpc.aio.AioRpcError as e:
                    if e.code() != grpc.StatusCode.UNAVAILABLE:
                        raise
                    await asyncio.sleep(0.2)  # backpressure: retry later, as exporters do
                    continue
                acked += tpl.spans
                i += inflight

        await asyncio.gather(*(worker(k) for k in range(inflight)))
    return acked


def _load_process(
    protocol: str,
    target: str,
    inflight: int,
    rate: float,
    seed: int,
    start_at: float,
    seconds: float,
    q: mp.Queue,
) -> None:
    tpls = templates(16, seed=seed)
    until = wait_for_start(start_at, seconds)
    pacer = Pacer(rate)
    if protocol == "grpc":
        load = _grpc_load(target, tpls, until, inflight, pacer)
    else:
        headers = {"Content-Type": "application/x-protobuf"}
        load = http_load(target, tpls, until, inflight, headers, 200, pacer)
    q.put(asyncio.run(load))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--protocol", choices=["grpc", "http"], default="grpc")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--inflight", type=int, default=8)
    ap.add_argument("--data-dir", type=Path)
    ap.add_argument("--rate", type=float, default=0, help="offered spans/s in all (0: flat out)")
    # the compactor as its own process elsewhere (--target compactor), not in the monolith
    ap.add_argument("--no-compactor", action="store_true")
    args = ap.parse_args()

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="tl-bench-")) / "data"
    config = {"compactor": {"enabled": False}} if args.no_compactor else {}
    server = BenchServer(data_dir, config).start()
    target = (
        f"127.0.0.1:{server.grpc_port}"
        if args.protocol == "grpc"
        else f"http://127.0.0.1:{server.otlp_http_port}/v1/traces"
    )
    rate = args.rate / args.clients
    run = run_clients(
        server,
        _load_process,
        lambda seed: (args.protocol, target, args.inflight, rate, seed),
        args.clients,
        args.seconds,
    )
    acked, rss = run.acked, run.rss
    in_blocks_at_end = server.metric(WRITTEN)
    live_bytes_at_end = server.metric("threadline_ingester_live_bytes")
    # how long until every acknowledged span is in a block, with no more load
    t_drain = time.monotonic()
    while server.metric(WRITTEN) < acked:
        if time.monotonic() - t_drain > 600:
            break
        time.sleep(0.5)
    drain_s = time.monotonic() - t_drain
    half = len(rss) // 2
    (ta, ra, wa), (tb, rb, wb) = run.samples[half], run.samples[-1]
    result = {
        "benchmark": "ingest",
        "protocol": f"otlp_{args.protocol}",
        "seconds": round(run.elapsed, 1),
        "spans_acked": acked,
        "spans_per_s": round(acked / args.seconds),
        "server_cpu_percent": run.cpu_percent,
        "server_peak_rss_mb": round(max(rss) / 2**20),
        "server_rss_mb_first_half_max": round(max(rss[:half] or rss) / 2**20),
        "server_rss_mb_second_half_max": round(max(rss[half:] or rss) / 2**20),
        "offered_spans_per_s": args.rate or None,
        "compactor": not args.no_compactor,
        "second_half_received_spans_per_s": round((rb - ra) / (tb - ta)),
        "second_half_block_spans_per_s": round((wb - wa) / (tb - ta)),
        "spans_in_blocks_when_load_stopped": int(in_blocks_at_end),
        "live_mb_when_load_stopped": round(live_bytes_at_end / 2**20),
        "seconds_until_all_in_blocks": round(drain_s, 1),
        "client_processes": args.clients,
        "inflight_per_client": args.inflight,
    }
    server.stop()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
