"""Throughput of OTLP logs decoding (``decode_logs_request``) on one core, without a server.

The requests ``bench_logs.py`` pushes (5 services x 200 records, templated bodies, three
attributes, trace and span ids, severity). Prints one JSON object.
Run: .venv/bin/python bench/bench_logs_decode.py
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from threadline.model.otlp_logs import decode_logs_request

sys.path.insert(0, str(Path(__file__).parent))

from bench_logs import requests


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=16, help="distinct requests")
    ap.add_argument("--seconds", type=float, default=3.0, help="measuring time")
    args = ap.parse_args()
    bodies, _ = requests(args.requests * 1000, random.Random(7))
    for body in bodies:  # warm up
        decode_logs_request(body)
    lines = 0
    start = time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        for body in bodies:
            lines += decode_logs_request(body).batch.num_rows
    elapsed = time.perf_counter() - start
    sample = ExportLogsServiceRequest.FromString(bodies[0])
    records = [r for rl in sample.resource_logs for sl in rl.scope_logs for r in sl.log_records]
    print(
        json.dumps(
            {
                "benchmark": "logs_decode",
                "lines_per_request": len(records),
                "body_bytes_per_line": round(
                    sum(len(r.body.string_value) for r in records) / len(records)
                ),
                "bytes_per_line_on_wire": round(sum(map(len, bodies)) / (len(bodies) * 1000)),
                "lines_per_s": round(lines / elapsed),
            }
        )
    )


if __name__ == "__main__":
    main()
