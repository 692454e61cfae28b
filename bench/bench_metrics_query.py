"""TraceQL metrics latency: ``query_range`` over one hour of stored spans.

Pushes ``--spans`` spans (default 5,000,000) whose traces start across the last hour, flushes
them into blocks, then times ``/api/metrics/query_range`` (default step: 15 s, 240 points) for a
few queries, ``--runs`` times each. Prints one JSON object.

    python bench/bench_metrics_query.py --spans 5000000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_trace_by_id import Reservoir, push, template_counts
from server import BenchServer
from workload import templates

QUERIES = (
    "{ } | rate() by (resource.service.name)",
    "{ status = error } | rate()",
    "{ kind = server } | quantile_over_time(duration, .5, .99) by (resource.service.name)",
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spans", type=int, default=5_000_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--data-dir", type=Path)
    args = ap.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="tl-bench-mq-")) / "data"
    server = BenchServer(data_dir).start()
    try:
        tpls = templates(64, spread_seconds=3600)
        counts = [template_counts(t) for t in tpls]
        requests = args.spans // tpls[0].spans
        t0 = time.monotonic()
        target = f"127.0.0.1:{server.grpc_port}"
        sample = Reservoir(1, random.Random(1))
        acked = asyncio.run(push(target, tpls, counts, requests, 16, sample))
        ingest_s = time.monotonic() - t0
        server.http.request("POST", server.api + "/flush")
        while server.metric("threadline_ingester_block_spans_written_total") < acked:
            time.sleep(0.5)
        end = int(time.time())
        start = end - 3600
        results = {}
        for q in QUERIES:
            url = (
                f"{server.api}/api/metrics/query_range?q={urllib.parse.quote(q)}"
                f"&start={start}&end={end}"
            )
            times, series = [], 0
            for _ in range(args.runs):
                t = time.perf_counter()
                r = server.http.request("GET", url)
                times.append(time.perf_counter() - t)
                assert r.status == 200, r.data[:300]
                series = len(json.loads(r.data)["series"])
            results[q] = {
                "p50_s": round(statistics.median(times), 3),
                "max_s": round(max(times), 3),
                "series": series,
            }
        print(
            json.dumps(
                {
                    "benchmark": "metrics_query_range",
                    "spans": acked,
                    "ingest_spans_per_s": round(acked / ingest_s),
                    "window_s": 3600,
                    "queries": results,
                }
            )
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
