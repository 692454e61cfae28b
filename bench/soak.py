"""Soak: steady OTLP/gRPC ingest at 80% of the peak for minutes, with Grafana-like queries.

First a short flat-out run against a throwaway server measures the peak ingest rate (the
ingest benchmark's own load processes; ``--rate`` skips this). Then a fresh server (default
durable config, fsync on, temporary data directory) gets ``--minutes`` of paced load at
``--load-fraction`` of that peak while one more process sends, ``--qps`` per second in all,
what a Grafana user's panels send: trace by ID of just-acknowledged traces (span count checked),
TraceQL searches ``{ resource.service.name = "..." }`` and ``{ status = error }`` (limit 20),
the values of ``resource.service.name``, and a ``{ } | rate() by (resource.service.name)``
query_range, all over the last hour. Every query kind runs at its own pace, so a slow kind does
not starve the others.

Reported (one JSON object on stdout): the server's RSS every 10 s and whether it stays flat
(the last minute's median within 10% of the third minute's; needs ``--minutes`` >= 4), offered
vs achieved ingest rate and server CPU, p50/p99 (and per-minute p50) per query kind with
failures, and at the end, after ``POST /flush``: spans acknowledged vs spans found, exactly,
by ``{ } | count_over_time()`` and by the live blocks' span totals (``threadline blocks list
--json``), plus trace by ID over a uniform sample of acknowledged traces (span count of each).
A soak is long, so ``run_all.py`` does not run it.

    python bench/soak.py                       # 10 minutes, peak measured first
    python bench/soak.py --minutes 1 --rate 50000
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing as mp
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import psutil
import urllib3

sys.path.insert(0, str(Path(__file__).parent))

from bench_ingest import EXPORT
from bench_ingest import _load_process as flat_out_load
from bench_trace_by_id import Reservoir, query_pass, spans_in, template_counts
from load import WRITTEN, Pacer, run_clients, wait_for_start
from server import HOST, BenchServer
from workload import SERVICES, Template, templates

WINDOW_S = 3600  # queries look at the last hour, as Grafana's default time range does
SHOW = 5  # problems shown per query kind
SAMPLE_KEYS = ("requests", "p50_ms", "p99_ms", "unexpected_status", "span_count_mismatches")
Check = Callable[[bytes], str | None]  # a problem with a 200 answer, or None


async def _acked_load(
    target: str,
    tpls: list[Template],
    until: float,
    inflight: int,
    pacer: Pacer,
    ids_q: mp.Queue,
) -> int:
    """Paced gRPC pushes; after each acknowledgement its (trace id, spans) pairs go to ids_q;
    at the end, the number of pushes refused with UNAVAILABLE (backpressure, retried)."""
    import grpc

    counts = [template_counts(t) for t in tpls]
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
                await pacer.wait(tpl.spans)
                data, ids = tpl.fresh_copy_with_ids()
                try:
                    await call(data, timeout=60)
                except grpc.aio.AioRpcError as e:
                    if e.code() != grpc.StatusCode.UNAVAILABLE:
                        raise
                    refused += 1
                    await asyncio.sleep(0.2)  # backpressure: retry later, as exporters do
                    continue
                acked += tpl.spans
                ids_q.put(list(zip(ids, counts[i % len(tpls)], strict=True)))
                i += inflight

        await asyncio.gather(*(worker(k) for k in range(inflight)))
    ids_q.put(refused)
    return acked


def _soak_load(
    target: str,
    inflight: int,
    rate: float,
    ids_q: mp.Queue,
    seed: int,
    start_at: float,
    seconds: float,
    q: mp.Queue,
) -> None:
    try:
        tpls = templates(16, seed=seed)
        until = wait_for_start(start_at, seconds)
        q.put(asyncio.run(_acked_load(target, tpls, until, inflight, Pacer(rate), ids_q)))
    finally:
        ids_q.put(None)  # this loader is done (the query process counts these)


def _kinds(newest: deque[tuple[bytes, int]]) -> dict[str, Callable[[], tuple[str, Check]]]:
    """Per query kind: a function giving the next request's path and its answer check."""
    rng = random.Random(3)

    def window() -> str:
        now = int(time.time())
        return f"start={now - WINDOW_S}&end={now}"

    def search(q: str) -> tuple[str, Check]:
        def check(body: bytes) -> str | None:
            return None if orjson.loads(body).get("traces") else f"no traces for {q}"

        return f"/api/search?q={urllib.parse.quote(q)}&limit=20&{window()}", check

    def trace_by_id() -> tuple[str, Check]:
        trace_id, expected = rng.choice(newest)

        def check(body: bytes) -> str | None:
            got = spans_in(body, protobuf=True)
            return None if got == expected else f"{trace_id.hex()}: {got} of {expected} spans"

        return f"/api/traces/{trace_id.hex()}", check

    def metrics() -> tuple[str, Check]:
        q = urllib.parse.quote("{ } | rate() by (resource.service.name)")
        return f"/api/metrics/query_range?q={q}&{window()}", lambda body: None

    return {
        "trace_by_id": trace_by_id,
        "search_service": lambda: search(
            f'{{ resource.service.name = "{rng.choice(list(SERVICES))}" }}'
        ),
        "search_error": lambda: search("{ status = error }"),
        "tag_values": lambda: (
            f"/api/v2/search/tag/resource.service.name/values?{window()}",
            lambda body: None,
        ),
        "metrics_query_range": metrics,
    }


Runs = list[tuple[float, float, str | None]]  # per request: start, seconds, problem or None


def _query_loop(
    api: str, make: Callable[[], tuple[str, Check]], per_s: float, stop: threading.Event, out: Runs
) -> None:
    """Requests at ``per_s`` (no catch-up burst after a slow one) until ``stop``."""
    http = urllib3.PoolManager(retries=False, timeout=120)
    protobuf = {"Accept": "application/protobuf"}  # as Grafana asks for a trace
    next_at = time.monotonic()
    while not stop.wait(max(0.0, next_at - time.monotonic())):
        next_at = max(next_at + 1 / per_s, time.monotonic())
        path, check = make()
        t0 = time.monotonic()
        try:
            headers = protobuf if path.startswith("/api/traces/") else {}
            r = http.request("GET", api + path, headers=headers)
            problem = check(r.data) if r.status == 200 else f"{r.status}: {r.data[:120]!r}"
        except Exception as e:  # a failed request or answer is counted, never ends the soak
            problem = f"{type(e).__name__}: {e}"
        out.append((t0, time.monotonic() - t0, problem))


def _summary(runs: Runs, t_start: float) -> dict[str, Any]:
    ms = np.array([dt for _, dt, _ in runs] or [0.0]) * 1000
    by_minute: dict[int, list[float]] = {}
    for t0, dt, _ in runs:
        by_minute.setdefault(int((t0 - t_start) // 60), []).append(dt * 1000)
    problems = [p for _, _, p in runs if p]
    return {
        "requests": len(runs),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "max_ms": round(float(ms.max()), 1),
        "p50_ms_by_minute": [round(statistics.median(v), 1) for _, v in sorted(by_minute.items())],
        "failed": len(problems),
        "failure_examples": problems[:SHOW],
    }


def _query_process(
    api: str, clients: int, qps: float, samples: int, ids_q: mp.Queue, out_q: mp.Queue
) -> None:
    """Takes acknowledged traces from ids_q until every loader is done, querying meanwhile;
    puts (per-kind summaries, sample of acknowledged traces, traces acknowledged, pushes
    refused)."""
    newest: deque[tuple[bytes, int]] = deque(maxlen=2000)
    sample = Reservoir(samples, random.Random(1))
    kinds = _kinds(newest)
    stop = threading.Event()
    results: dict[str, Runs] = {k: [] for k in kinds} if qps > 0 else {}  # 0: ingest alone
    threads = [
        threading.Thread(target=_query_loop, args=(api, kinds[k], qps / len(kinds), stop, out))
        for k, out in results.items()
    ]
    done = refused = 0
    t_start = 0.0
    while done < clients:
        item = ids_q.get(timeout=600)
        if item is None:
            done += 1
            continue
        if isinstance(item, int):
            refused += item
            continue
        newest.extend(item)  # appends are atomic; the trace-by-ID thread only reads
        for pair in item:
            sample.add(pair)
        if not t_start:
            t_start = time.monotonic()
            for t in threads:
                t.start()
    stop.set()
    for t in threads:
        t.join()
    summaries = {k: _summary(results[k], t_start) for k in results}
    out_q.put((summaries, sample.items, sample.seen, refused))


def _measure_peak(seconds: float, clients: int, inflight: int) -> tuple[int, int]:
    """Spans/s acknowledged by a fresh server under flat-out gRPC load (the ingest bench's),
    and spans/s written to blocks meanwhile."""
    root = Path(tempfile.mkdtemp(prefix="tl-soak-peak-"))
    server = BenchServer(root / "data").start()
    try:
        target = f"{HOST}:{server.grpc_port}"
        run = run_clients(
            server,
            flat_out_load,
            lambda seed: ("grpc", target, inflight, 0, seed),
            clients,
            seconds,
        )
        (t0, _, w0), (t1, _, w1) = run.samples[0], run.samples[-1]
        return round(run.acked / seconds), round((w1 - w0) / (t1 - t0))
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _found(server: BenchServer, t_begin: float) -> dict[str, int]:
    """Spans the server holds: ``{ } | count_over_time()`` and the live blocks' span totals."""
    q = urllib.parse.quote("{ } | count_over_time()")
    start, end = int(t_begin) - WINDOW_S, int(time.time()) + 60
    r = server.http.request("GET", f"{server.api}/api/metrics/query?q={q}&start={start}&end={end}")
    if r.status != 200:
        raise RuntimeError(f"count query answered {r.status}: {r.data[:200]!r}")
    counted = sum(float(s["value"]) for s in orjson.loads(r.data)["series"])
    listing = subprocess.run(
        [
            sys.executable,
            "-m",
            "threadline.cli",
            "blocks",
            "list",
            "--json",
            "--data-dir",
            str(server.data_dir),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rows = [json.loads(line) for line in listing.splitlines() if line.strip()]
    return {
        "count_over_time": round(counted),
        "blocks_list": sum(row["spans"] for row in rows if row["state"] == "live"),
        "blocks": sum(row["state"] == "live" for row in rows),
    }


def _per_minute(samples: list[tuple[float, float, float]], col: int) -> list[int]:
    """Spans/s of a counter (1: received, 2: written to blocks) in each minute of the run."""
    minutes = samples[::60] + ([samples[-1]] if (len(samples) - 1) % 60 else [])
    return [round((b[col] - a[col]) / (b[0] - a[0])) for a, b in itertools.pairwise(minutes)]


def _median_mb(values: list[int]) -> float | None:
    return round(statistics.median(values) / 2**20, 1) if values else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--rate", type=float, default=0, help="spans/s offered (0: measure peak)")
    ap.add_argument("--load-fraction", type=float, default=0.8, help="of the measured peak")
    ap.add_argument("--peak-seconds", type=float, default=30, help="flat-out run for the peak")
    ap.add_argument("--clients", type=int, default=2, help="load processes")
    ap.add_argument("--inflight", type=int, default=8, help="gRPC requests in flight each")
    ap.add_argument("--qps", type=float, default=5, help="queries/s, all kinds (0: none)")
    ap.add_argument("--samples", type=int, default=2000, help="traces checked by ID at the end")
    args = ap.parse_args()

    peak, peak_blocks = (
        (None, None) if args.rate else _measure_peak(args.peak_seconds, args.clients, args.inflight)
    )
    rate = args.rate or args.load_fraction * peak
    seconds = args.minutes * 60

    root = Path(tempfile.mkdtemp(prefix="tl-soak-"))
    server = BenchServer(root / "data").start()
    try:
        t_begin = time.time()
        ids_q: mp.Queue = mp.Queue()
        out_q: mp.Queue = mp.Queue()
        querier = mp.Process(
            target=_query_process,
            args=(server.api, args.clients, args.qps, args.samples, ids_q, out_q),
        )
        querier.start()
        target = f"{HOST}:{server.grpc_port}"
        per_client = rate / args.clients
        load_avg = os.getloadavg()[0]  # other work on the machine, before the soak
        psutil.cpu_percent()
        run = run_clients(
            server,
            _soak_load,
            lambda seed: (target, args.inflight, per_client, ids_q, seed),
            args.clients,
            seconds,
        )
        machine_cpu = psutil.cpu_percent()  # all processes, all cores, during the soak
        queries, sample, traces_acked, refused = out_q.get()
        querier.join()

        t_flush = time.monotonic()
        r = urllib3.PoolManager(retries=False, timeout=3600).request("POST", server.api + "/flush")
        if r.status != 204:
            raise RuntimeError(f"flush answered {r.status}: {r.data[:200]!r}")
        while server.metric(WRITTEN) < run.acked and time.monotonic() - t_flush < 600:
            time.sleep(0.5)
        flush_s = time.monotonic() - t_flush
        found = _found(server, t_begin)
        by_id = query_pass(server.http_port, sample, protobuf=True, expect_status=200)
        rss_end = server.process().memory_info().rss
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)

    rss = run.rss  # one sample a second
    third, last = (rss[120:180], rss[-60:]) if args.minutes >= 4 else ([], [])
    third_mb, last_mb = _median_mb(third), _median_mb(last)
    flat = None
    if third_mb is not None and last_mb is not None:
        flat = abs(last_mb - third_mb) <= 0.1 * third_mb
    equal = run.acked == found["count_over_time"] == found["blocks_list"]
    result = {
        "benchmark": "soak",
        "minutes": args.minutes,
        "measured_peak_spans_per_s": peak,
        "peak_run_block_spans_per_s": peak_blocks,
        "offered_spans_per_s": round(rate),
        "achieved_spans_per_s": round(run.acked / seconds),
        "pushes_refused_unavailable": refused,
        "received_spans_per_s_by_minute": _per_minute(run.samples, 1),
        "block_spans_per_s_by_minute": _per_minute(run.samples, 2),
        "server_cpu_percent": run.cpu_percent,
        "machine_cpu_percent_of_all_cores": machine_cpu,
        "load_average_1m_before": round(load_avg, 2),
        "cpus": os.cpu_count(),
        "rss_mb_every_10s": [round(v / 2**20) for v in rss[9::10]],
        "rss_mb_median_minute_3": third_mb,
        "rss_mb_median_last_minute": last_mb,
        "rss_flat": flat,
        "rss_mb_after_flush_and_checks": round(rss_end / 2**20),
        "spans_acked": run.acked,
        "traces_acked": traces_acked,
        "spans_found": found,
        "acked_equals_found": equal,
        "flush_seconds": round(flush_s, 1),
        "trace_by_id_sample": {k: by_id[k] for k in SAMPLE_KEYS},
        "queries": queries,
        "queries_per_s_offered": args.qps,
        "client_processes": args.clients,
        "inflight_per_client": args.inflight,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
