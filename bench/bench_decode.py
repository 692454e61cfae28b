"""Throughput of the compiled OTLP decoder on realistic 1000-span requests, on one core.

Prints one JSON object. Run: .venv/bin/python bench/bench_decode.py
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from threadline.model.otlp_decode import decode_export_request
from workload import templates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--spans", type=int, default=1000, help="spans per request")
    ap.add_argument("--requests", type=int, default=16, help="distinct requests")
    ap.add_argument("--seconds", type=float, default=3.0, help="measuring time")
    args = ap.parse_args()
    bodies = [t.fresh_copy() for t in templates(args.requests, args.spans)]
    for body in bodies:  # warm up
        decode_export_request(body)
    spans = 0
    start = time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        for body in bodies:
            spans += decode_export_request(body).batch.num_rows
    elapsed = time.perf_counter() - start
    print(
        json.dumps(
            {
                "benchmark": "decode",
                "spans_per_request": args.spans,
                "bytes_per_span_on_wire": round(sum(map(len, bodies)) / (len(bodies) * args.spans)),
                "spans_per_s": round(spans / elapsed),
            }
        )
    )


if __name__ == "__main__":
    main()
