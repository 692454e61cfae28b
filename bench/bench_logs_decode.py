"""Throughput of OTLP logs decoding (``decode_logs_request``) on one core, without a server.

Requests as applications send them: 5 services x 200 records each (1,000 lines per request),
bodies of ~150 bytes from fifteen templates with varied ids, numbers and addresses, three
attributes (a string and two ints), trace and span ids, severity number and text. Prints one
JSON object. Run: .venv/bin/python bench/bench_logs_decode.py
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from threadline.model.otlp_logs import decode_logs_request

SERVICES = ("frontend", "checkout", "cart", "payment", "inventory")
TEMPLATES = (
    "GET /api/items/{id} 200 in {ms}ms",
    "POST /api/cart/{id}/items 201 in {ms}ms",
    "cache miss for key user:{id}, loading from primary store",
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
# what follows the message in structured application logs, to reach ~150 bytes
SUFFIX = (
    " request_id={rid} client=10.{m}.{k}.{n} region=eu-west-{n} pod={svc}-{m:x}"
    " thread=http-exec-{n}"
)


def requests(n_requests: int, rng: random.Random) -> list[bytes]:
    out = []
    t0 = time.time_ns() - 600 * 10**9
    for r in range(n_requests):
        req = ExportLogsServiceRequest()
        for svc in SERVICES:
            rl = req.resource_logs.add()
            rl.resource.attributes.add(key="service.name").value.string_value = svc
            rl.resource.attributes.add(key="host.name").value.string_value = f"{svc}-7d9f-{r % 3}"
            sl = rl.scope_logs.add()
            sl.scope.name = f"{svc}.handlers"
            for i in range(200):
                rec = sl.log_records.add(
                    time_unix_nano=t0 + (r * 1000 + i) * 1000,
                    observed_time_unix_nano=t0 + (r * 1000 + i) * 1000 + 5000,
                    severity_number=rng.choice((9, 9, 9, 13, 17)),
                    trace_id=os.urandom(16),
                    span_id=os.urandom(8),
                    flags=1,
                )
                rec.severity_text = {9: "INFO", 13: "WARN", 17: "ERROR"}[rec.severity_number]
                fields = {
                    "id": rng.randrange(10**6),
                    "ms": rng.randint(1, 900),
                    "n": rng.randint(1, 20),
                    "m": rng.randint(0, 255),
                    "k": rng.randint(0, 255),
                    "amount": f"{rng.randint(1, 500)}.{rng.randint(0, 99):02d}",
                    "flag": rng.choice(("true", "false")),
                    "rid": os.urandom(8).hex(),
                    "svc": svc,
                }
                rec.body.string_value = (rng.choice(TEMPLATES) + SUFFIX).format(**fields)
                route = rng.choice(("/api/items/{id}", "/api/cart/{id}", "/api/search"))
                rec.attributes.add(key="http.route").value.string_value = route
                rec.attributes.add(key="user.id").value.int_value = rng.randrange(10**5)
                rec.attributes.add(key="code.lineno").value.int_value = rng.randrange(900)
        out.append(req.SerializeToString())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=16, help="distinct requests")
    ap.add_argument("--seconds", type=float, default=3.0, help="measuring time")
    args = ap.parse_args()
    bodies = requests(args.requests, random.Random(7))
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
