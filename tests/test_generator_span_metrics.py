"""Span metrics as Tempo makes them: calls, latency histogram (default buckets, seconds) and
size per (service, span_name, span_kind, status_code, dimensions), with traceID exemplars."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from threadline.config import MetricsGeneratorConfig, SpanMetricsProcessorConfig
from threadline.generator import MetricsGenerator
from threadline.generator.registry import Registry, group_rows, trace_id_hex
from threadline.generator.span_metrics import SpanMetricsProcessor, span_sizes
from threadline.model.otlp_decode import decode_export_request
from traceql_dataset import ALL_KEYS, TRACE_IDS, request

sys.path.insert(0, str(Path(__file__).parent.parent / "bench"))
from workload import build_request

DEFAULT_LE = [
    "0.002", "0.004", "0.008", "0.016", "0.032", "0.064", "0.128", "0.256", "0.512", "1.024",
    "2.048", "4.096", "8.192", "16.384", "+Inf",
]  # fmt: skip


def processor(**cfg: object) -> SpanMetricsProcessor:
    return SpanMetricsProcessor(SpanMetricsProcessorConfig.model_validate(cfg), Registry())


def dataset() -> pa.RecordBatch:
    return decode_export_request(request(ALL_KEYS)).batch


def test_calls_latency_and_buckets_per_label_set() -> None:
    p = processor()
    p.consume(dataset(), 0.0)
    assert p.latency.le == DEFAULT_LE
    key = ("payment", "Charge", "SPAN_KIND_SERVER", "STATUS_CODE_UNSET")
    assert p.calls.value(key) == 1
    cum, total, count = p.latency.snapshot(key) or ([], 0.0, 0)
    assert (total, count) == (1.5, 1)
    assert cum == [0] * 10 + [1] * 5  # 1.5 s: first in le=2.048
    error = ("payment", "Charge", "SPAN_KIND_CLIENT", "STATUS_CODE_ERROR")
    assert p.calls.value(error) == 1
    assert (p.latency.snapshot(error) or [[]])[0] == [0] * 7 + [1] * 8  # 0.2 s → le=0.256
    assert len(p.calls.keys) == 11  # every span of the dataset is its own label set
    # a second batch adds up
    p.consume(dataset(), 0.0)
    assert p.calls.value(key) == 2
    assert sum(p.calls.value(k) for k in p.calls.keys) == 22


def test_bucket_bounds_are_inclusive_and_negative_durations_count_as_zero() -> None:
    p = processor(histogram_buckets=[0.1, 0.2])
    batch = dataset().slice(0, 3)  # durations 500 ms, 300 ms, 200 ms
    durations = pa.array([-5, 100_000_000, 200_000_000], pa.int64())
    batch = batch.set_column(
        batch.schema.get_field_index("duration_nano"), "duration_nano", durations
    )
    p.consume(batch, 0.0)
    got = {k: (p.latency.snapshot(k) or [[]])[0] for k in p.latency.keys}
    assert sorted(got.values()) == [[0, 1, 1], [1, 1, 1], [1, 1, 1]]


def test_dimensions_sanitized_resource_first_collisions_prefixed() -> None:
    p = processor(dimensions=["http.method", "status.code", "http.status_code", "service.name"])
    assert p.dimension_labels == [
        "http_method",
        "__status_code",
        "http_status_code",
        "service_name",
    ]
    p.consume(dataset(), 0.0)
    key = ("frontend", "GET /checkout", "SPAN_KIND_SERVER", "STATUS_CODE_ERROR", "GET", "", "500",
           "frontend")  # fmt: skip
    assert p.calls.value(key) == 1  # an int attribute becomes its decimal text


def test_dimension_found_in_resource_wins_over_span() -> None:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    for k, v in (("service.name", "svc"), ("env", "from-resource")):
        rs.resource.attributes.add(key=k).value.string_value = v
    span = rs.scope_spans.add().spans.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="op")
    span.attributes.add(key="env").value.string_value = "from-span"
    span.attributes.add(key="flag").value.bool_value = True
    span.start_time_unix_nano, span.end_time_unix_nano = 10, 20
    p = processor(dimensions=["env", "flag"])
    p.consume(decode_export_request(req.SerializeToString()).batch, 0.0)
    assert p.calls.keys == [
        ("svc", "op", "SPAN_KIND_UNSPECIFIED", "STATUS_CODE_UNSET", "from-resource", "true")
    ]


def test_size_matches_the_protobuf_size_of_the_span() -> None:
    """Exact for spans without events and links (those columns are not counted)."""
    req = build_request(random.Random(5), 300)
    for rs in req.resource_spans:
        for ss in rs.scope_spans:
            for s in ss.spans:
                del s.events[:]
                s.attributes.add(key="sql").value.string_value = "SELECT 1 " * 40  # long value
                s.attributes.add(key="neg").value.int_value = -3
                s.trace_state = "ot=th:8"
    spans = [s for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]
    batch = decode_export_request(req.SerializeToString()).batch
    assert span_sizes(batch).tolist() == [s.ByteSize() for s in spans]
    assert span_sizes(batch.slice(17, 40)).tolist() == [s.ByteSize() for s in spans[17:57]]
    p = processor()
    p.consume(batch, 0.0)
    assert sum(p.size.value(k) for k in p.size.keys) == sum(s.ByteSize() for s in spans)


def test_exemplar_is_the_trace_id_without_leading_zeros() -> None:
    assert trace_id_hex(bytes(16)) == "0"
    assert trace_id_hex(b"\x00\x0a" + b"\xff" * 14) == "a" + "ff" * 14
    p = processor()
    p.consume(dataset(), 0.0)
    key = ("api-gateway", "POST /pay", "SPAN_KIND_SERVER", "STATUS_CODE_UNSET")
    slot = p.latency.index[key]
    bucket = p.latency.le.index("2.048")  # 2 s
    assert p.latency.ex_ts[slot, bucket] > 0
    assert trace_id_hex(p.latency.ex_trace[slot, bucket].tobytes()) == TRACE_IDS["T3"].hex()
    assert p.latency.ex_value[slot, bucket] == 2.0
    assert (p.latency.ex_ts[slot] > 0).sum() == 1  # only the bucket observed has one


def test_group_rows_bincount_and_sort_paths_agree() -> None:
    rng = np.random.default_rng(3)
    a = pa.array([f"s{i}" for i in rng.integers(0, 50, 5000)])
    b = pa.array([None if i % 7 == 0 else f"n{i % 13}" for i in range(5000)])
    small = group_rows([a, b], 5000)
    wide = pa.array([f"u{i}" for i in range(5000)])  # forces the sort path (large code space)
    big = group_rows([a, b, wide, wide], 5000)
    for groups in (small, big):
        rows = list(zip(a.to_pylist(), b.to_pylist(), strict=True))
        got = [groups.keys[g][:2] for g in groups.gid.tolist()]
        assert got == [(x, y or "") for x, y in rows]
    assert small.count == len({(x, y) for x, y in zip(a.to_pylist(), b.to_pylist(), strict=True)})


def test_batches_are_held_then_processed_together() -> None:
    cfg = MetricsGeneratorConfig.model_validate({"processors": ["span-metrics"]})
    gen = MetricsGenerator(cfg, batch_rows=30)
    gen.consume("t", dataset())
    held = gen.tenants["t"]
    assert held.held_rows == 11 and held.span_metrics is not None
    assert not held.span_metrics.calls.keys  # not processed yet
    gen.consume("t", dataset())
    gen.consume("t", dataset())  # 33 rows ≥ 30: processed together
    assert held.held_rows == 0
    key = ("frontend", "GET /", "SPAN_KIND_SERVER", "STATUS_CODE_UNSET")
    assert held.span_metrics.calls.value(key) == 3
    gen.consume("t", dataset())
    assert "traces_spanmetrics_calls_total" in gen.render("t")  # render processes what is held
    assert held.span_metrics.calls.value(key) == 4


@pytest.mark.parametrize("tenant", ["a", "b"])
def test_overrides_pick_processors_per_tenant(tenant: str) -> None:
    cfg = MetricsGeneratorConfig.model_validate(
        {
            "processors": ["span-metrics"],
            "overrides": {"a": {"processors": ["service-graphs"]}, "b": {"processors": []}},
        }
    )
    gen = MetricsGenerator(cfg)
    assert gen.processors_for("other") == ["span-metrics"]
    gen.consume(tenant, dataset())
    if tenant == "a":
        assert "traces_service_graph_request_total" in gen.render("a")
        assert "traces_spanmetrics" not in gen.render("a")
    else:
        assert tenant not in gen.tenants and gen.render("b") == ""
