"""Old Jaeger client libraries in a separate virtualenv, and a sender script that runs in it.

``opentelemetry-exporter-jaeger-thrift`` 1.21 (the last release) imports only with
``opentelemetry-sdk==1.21``, and ``jaeger-client`` (OpenTracing) pulls in tornado, threadloop and
the Apache thrift runtime; none of that belongs in the project's own environment. The venv is
built once under ``.venv-jaeger-client/`` (``client_venvs``).

``send(job)`` runs ``SENDER`` in that venv: it makes a small trace with the requested client,
exports it to the server, and prints what it sent (ids, names, times, kinds, status, tags) as
JSON, which the tests compare with what the server gives back.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from client_venvs import JAEGER_CLIENTS, ClientEnvError

__all__ = ["SENDER", "ClientEnvError", "python", "send"]


def python() -> Path:
    """The client venv's interpreter (built on first use)."""
    return JAEGER_CLIENTS.python()


def send(job: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
    """Run the sender with ``job`` in the client venv; returns what it reports it sent."""
    done = subprocess.run(
        [str(python()), "-c", SENDER],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"sender failed ({done.returncode}): {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# Runs inside the client venv (old libraries); reads the job as JSON on stdin.
SENDER = r'''
import json
import random
import sys
import time

job = json.load(sys.stdin)
report = {"spans": []}


def otel():
    from opentelemetry.exporter.jaeger.thrift import JaegerExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.id_generator import IdGenerator
    from opentelemetry.trace import SpanKind, Status, StatusCode

    class HighBitIds(IdGenerator):
        """Ids with the top bit set: negative as thrift's signed i64."""

        def generate_span_id(self):
            return random.getrandbits(64) | (1 << 63)

        def generate_trace_id(self):
            return random.getrandbits(128) | (1 << 127) | (1 << 63)

    if job["via"] == "agent":
        exporter = JaegerExporter(agent_host_name=job["host"], agent_port=job["port"])
    else:
        exporter = JaegerExporter(collector_endpoint=job["endpoint"])
    memory = InMemorySpanExporter()
    resource = Resource.create({"service.name": job["service"], "deployment.environment": "test"})
    provider = TracerProvider(resource=resource, id_generator=HighBitIds())
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests.jaeger", "2.0.1")
    with tracer.start_as_current_span("GET /checkout", kind=SpanKind.SERVER) as root:
        root.set_attribute("http.method", "GET")
        root.set_attribute("http.status_code", 200)
        root.set_attribute("sampled.ratio", 0.25)
        root.set_attribute("cache.hit", True)
        root.add_event("validated", {"items": 3, "note": "ok"})
        with tracer.start_as_current_span("db query", kind=SpanKind.CLIENT) as child:
            child.set_attribute("db.system", "postgresql")
            child.set_status(Status(StatusCode.ERROR, "timeout"))
        with tracer.start_as_current_span("publish", kind=SpanKind.PRODUCER) as p:
            p.set_attribute("messaging.system", "kafka")
    provider.shutdown()
    for s in memory.get_finished_spans():
        report["spans"].append({
            "trace_id": format(s.context.trace_id, "032x"),
            "span_id": format(s.context.span_id, "016x"),
            "parent_id": format(s.parent.span_id, "016x") if s.parent else None,
            "name": s.name,
            "kind": s.kind.name,
            "start_ns": s.start_time,
            "end_ns": s.end_time,
            "status": s.status.status_code.name,
            "status_message": s.status.description or "",
            "attributes": dict(s.attributes),
            "events": [
                {"name": e.name, "time_ns": e.timestamp, "attributes": dict(e.attributes)}
                for e in s.events
            ],
            "scope": [s.instrumentation_scope.name, s.instrumentation_scope.version],
        })


def opentracing():
    from jaeger_client import Config

    config = Config(
        config={
            "sampler": {"type": "const", "param": 1},
            "local_agent": {"reporting_host": job["host"], "reporting_port": job["port"]},
            "reporter_flush_interval": 0.05,
            "logging": False,
        },
        service_name=job["service"],
        validate=True,
    )
    tracer = config.initialize_tracer()
    root_tags = {"span.kind": "server", "http.status_code": 503}
    root = tracer.start_span("handle request", tags=root_tags)
    root.log_kv({"event": "cache miss", "key.count": 2})
    root.log_kv({"message": "retrying"})
    child = tracer.start_span("call backend", child_of=root, tags={"span.kind": "client"})
    child.set_tag("error", True)
    child.set_tag("retry.ratio", 0.5)
    child.finish()
    root.finish()
    spans = [child, root]
    time.sleep(0.5)
    tracer.close()
    time.sleep(1.0)
    for s in spans:
        report["spans"].append({
            "trace_id": format(s.trace_id, "032x"),
            "span_id": format(s.span_id, "016x"),
            "parent_id": format(s.parent_id, "016x") if s.parent_id else None,
            "name": s.operation_name,
            # as jaeger-client's thrift conversion computes them
            "start_us": int(s.start_time * 1000000),
            "duration_us": int((s.end_time - s.start_time) * 1000000),
            "tags": {t.key: t.vStr if t.vType == 0 else t.vLong if t.vType == 3
                     else t.vBool if t.vType == 2 else t.vDouble for t in s.tags},
        })
    report["process_tags"] = dict(tracer.tags)


otel() if job["client"] == "otel" else opentracing()
print(json.dumps(report))
'''
