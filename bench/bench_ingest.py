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

from server import BenchServer
from workload import Template, templates

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class Pacer:
    """Spreads requests evenly at ``rate`` spans per second (no pacing when ``rate`` is 0)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.next_at = time.monotonic()

    async def wait(self, spans: int) -> None:
        if not self.rate:
            return
        now = time.monotonic()
        slot = self.next_at = max(self.next_at, now - 1.0)  # no bursts after a stall
        self.next_at += spans / self.rate
        if slot > now:
            await asyncio.sleep(slot - now)


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


async def _http_load(
    url: str, tpls: list[Template], until: float, inflight: int, pacer: Pacer
) -> int:
    import aiohttp

    acked = 0
    headers = {"Content-Type": "application/x-protobuf"}
    async with aiohttp.ClientSession() as session:

        async def worker(k: int) -> None:
            nonlocal acked
            i = k
            while time.monotonic() < until:
                tpl = tpls[i % len(tpls)]
                await pacer.wait(tpl.spans)
                async with session.post(url, data=tpl.fresh_copy(), headers=headers) as r:
                    if r.status == 503:  # backpressure: retry later, as exporters do
                        await asyncio.sleep(0.2)
                        continue
                    if r.status != 200:
                        raise RuntimeError(f"push failed: {r.status} {await r.text()}")
                acked += tpl.spans
                i += inflight

        await asyncio.gather(*(worker(k) for k in range(inflight)))
    return acked


def _load_process(
    protocol: str,
    target: str,
    seed: int,
    start_at: float,
    seconds: float,
    inflight: int,
    rate: float,
    q: mp.Queue,
) -> None:
    tpls = templates(16, seed=seed)
    while time.time() < start_at:
        time.sleep(0.01)
    until = time.monotonic() + seconds
    run = _grpc_load if protocol == "grpc" else _http_load
    q.put(asyncio.run(run(target, tpls, until, inflight, Pacer(rate))))


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
    proc = server.process()
    target = (
        f"127.0.0.1:{server.grpc_port}"
        if args.protocol == "grpc"
        else f"http://127.0.0.1:{server.otlp_http_port}/v1/traces"
    )
    q: mp.Queue = mp.Queue()
    start_at = time.time() + 15  # time for the load processes to build their templates
    loaders = [
        mp.Process(
            target=_load_process,
            args=(
                args.protocol,
                target,
                seed,
                start_at,
                args.seconds,
                args.inflight,
                args.rate / args.clients,
                q,
            ),
        )
        for seed in range(args.clients)
    ]
    for p in loaders:
        p.start()
    while time.time() < start_at:
        time.sleep(0.01)
    cpu0 = proc.cpu_times()
    t0 = time.monotonic()
    rss: list[int] = []
    samples: list[tuple[float, float, float]] = []  # (time, spans received, spans in blocks)
    while any(p.is_alive() for p in loaders) and time.monotonic() - t0 < args.seconds + 60:
        time.sleep(1.0)
        rss.append(proc.memory_info().rss)
        samples.append(
            (
                time.monotonic(),
                server.metric("threadline_distributor_spans_received_total"),
                server.metric("threadline_ingester_block_spans_written_total"),
            )
        )
    elapsed = time.monotonic() - t0
    cpu1 = proc.cpu_times()
    acked = sum(q.get() for _ in loaders)
    for p in loaders:
        p.join()
    in_blocks_at_end = server.metric("threadline_ingester_block_spans_written_total")
    live_bytes_at_end = server.metric("threadline_ingester_live_bytes")
    # how long until every acknowledged span is in a block, with no more load
    t_drain = time.monotonic()
    while server.metric("threadline_ingester_block_spans_written_total") < acked:
        if time.monotonic() - t_drain > 600:
            break
        time.sleep(0.5)
    drain_s = time.monotonic() - t_drain
    half = len(rss) // 2
    (ta, ra, wa), (tb, rb, wb) = samples[half], samples[-1]
    result = {
        "benchmark": "ingest",
        "protocol": f"otlp_{args.protocol}",
        "seconds": round(elapsed, 1),
        "spans_acked": acked,
        "spans_per_s": round(acked / args.seconds),
        "server_cpu_percent": round(
            100 * ((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)) / elapsed
        ),
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
