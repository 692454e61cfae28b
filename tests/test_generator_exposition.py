"""Reading the generated series out: Prometheus text, OpenMetrics with exemplars, the
remote-write series (classic histograms as _bucket/_sum/_count, initial zero, exemplars once),
stale-series removal, the series limit; and the generator's config being refused clearly."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from threadline.config import ConfigError, MetricsGeneratorConfig, load_config
from threadline.generator import MetricsGenerator
from threadline.generator.registry import Groups, Registry, format_value
from threadline.generator.remote_write import HEADERS, decode, encode
from threadline.model.otlp_decode import decode_export_request
from traceql_dataset import ALL_KEYS, TRACE_IDS, request


def generator(**extra: object) -> MetricsGenerator:
    cfg = MetricsGeneratorConfig.model_validate(
        {"processors": ["span-metrics", "service-graphs"], **extra}
    )
    gen = MetricsGenerator(cfg, instance="gen-1")
    gen.consume("t", decode_export_request(request(ALL_KEYS)).batch)
    gen.flush()  # no event loop here: process the held batch now
    return gen


def test_prometheus_text_format_parses_with_the_reference_parser() -> None:
    text = generator().render("t")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    calls = families["traces_spanmetrics_calls"]
    assert calls.type == "counter"
    total = sum(s.value for s in calls.samples if s.name == "traces_spanmetrics_calls_total")
    assert total == 11
    latency = families["traces_spanmetrics_latency"]
    assert latency.type == "histogram"
    bucket = [
        s
        for s in latency.samples
        if s.name == "traces_spanmetrics_latency_bucket"
        and s.labels["service"] == "api-gateway"
        and s.labels["le"] in ("1.024", "2.048", "+Inf")
    ]
    assert [(s.labels["le"], s.value) for s in bucket] == [("1.024", 0), ("2.048", 1), ("+Inf", 1)]
    graph = families["traces_service_graph_request"]
    db = [s for s in graph.samples if s.labels["connection_type"] == "database"]
    assert {(s.labels["client"], s.labels["server"]) for s in db} == {
        ("checkout", "postgresql"),
        ("product-catalog", "redis"),
        ("payment", "postgresql"),
    }
    assert " # {" not in text  # exemplars only in OpenMetrics


def test_openmetrics_has_exemplars_with_trace_ids() -> None:
    text = generator().render("t", openmetrics=True)
    assert text.endswith("# EOF\n")
    families = {f.name: f for f in openmetrics_families(text)}
    assert families["traces_spanmetrics_calls"].type == "counter"
    latency = families["traces_spanmetrics_latency"].samples
    exemplars = [s for s in latency if s.exemplar is not None]
    assert exemplars and all(set(s.exemplar.labels) == {"traceID"} for s in exemplars)
    pay = [s for s in exemplars if s.labels["service"] == "api-gateway"]
    assert [(s.labels["le"], s.exemplar.labels["traceID"], s.exemplar.value) for s in pay] == [
        ("2.048", TRACE_IDS["T3"].hex(), 2.0)
    ]
    assert pay[0].exemplar.timestamp is not None


def test_empty_tenant_renders_empty_documents() -> None:
    gen = generator()
    assert gen.render("nobody") == ""
    assert gen.render("nobody", openmetrics=True) == "# EOF\n"


def test_remote_write_series_shape() -> None:
    gen = generator()
    registry = gen.tenants["t"].registry
    now = int(time.time() * 1000) + 1000
    series = registry.collect(now, gen.extra_labels)
    by_labels = {labels: (samples, exemplars) for labels, samples, exemplars in series}
    for labels in by_labels:
        names = [n for n, _ in labels]
        assert names == sorted(names) and "__metrics_gen_instance" in names
        assert all(v for _, v in labels)  # empty values are left out, as Prometheus does
    calls = (
        ("__metrics_gen_instance", "gen-1"),
        ("__name__", "traces_spanmetrics_calls_total"),
        ("service", "api-gateway"),
        ("span_kind", "SPAN_KIND_SERVER"),
        ("span_name", "POST /pay"),
        ("status_code", "STATUS_CODE_UNSET"),
    )
    # a new series starts with a 0 just before its first value
    assert by_labels[calls] == (((0.0, now - 1), (1.0, now)), ())
    bucket = (*calls[:1], ("__name__", "traces_spanmetrics_latency_bucket"), ("le", "2.048"),
              *calls[2:])  # fmt: skip
    samples, exemplars = by_labels[bucket]
    assert samples[-1] == (1.0, now)
    assert [(t, v) for t, v, _ in exemplars] == [(TRACE_IDS["T3"].hex(), 2.0)]
    base = calls[2:]
    for suffix, value in (("_sum", 2.0), ("_count", 1.0)):
        key = (*calls[:1], ("__name__", "traces_spanmetrics_latency" + suffix), *base)
        assert by_labels[key][0][-1] == (value, now)
    edge = (
        ("__metrics_gen_instance", "gen-1"),
        ("__name__", "traces_service_graph_request_total"),
        ("client", "checkout"),
        ("connection_type", "database"),
        ("server", "postgresql"),
    )
    assert by_labels[edge][0][-1] == (1.0, now)
    # the next collection: no initial zero, no exemplar sent twice
    again = registry.collect(now + 15_000, gen.extra_labels)
    assert all(len(s) == 1 and not e for _, s, e in again)


def test_write_request_encoding_round_trips() -> None:
    series = [
        ((("__name__", "x_total"), ("a", "1")), ((0.0, 999), (2.5, 1000)), ()),
        ((("__name__", "h_bucket"), ("le", "0.1")), ((3.0, 1000),), (("abc", 0.05, 1000),)),
    ]
    req = decode(encode(series))
    assert len(req.timeseries) == 2
    first, second = req.timeseries
    assert [(lb.name, lb.value) for lb in first.labels] == [("__name__", "x_total"), ("a", "1")]
    assert [(s.value, s.timestamp) for s in first.samples] == [(0.0, 999), (2.5, 1000)]
    ex = second.exemplars[0]
    assert (ex.labels[0].name, ex.labels[0].value, ex.value, ex.timestamp) == (
        "traceID",
        "abc",
        0.05,
        1000,
    )
    assert not decode(encode(series, send_exemplars=False)).timeseries[1].exemplars
    assert HEADERS["Content-Encoding"] == "snappy"
    assert HEADERS["X-Prometheus-Remote-Write-Version"] == "0.1.0"


def test_stale_series_are_removed() -> None:
    registry = Registry()
    counter = registry.counter("c_total", "help", ("k",))
    counter.add(Groups(np.zeros(1, np.int64), [("old",)]), np.ones(1), now=100.0)
    counter.add(Groups(np.zeros(1, np.int64), [("new",)]), np.ones(1), now=200.0)
    assert registry.purge(cutoff=150.0) == 1
    assert counter.keys == [("new",)] and counter.value(("new",)) == 1
    counter.add(Groups(np.zeros(1, np.int64), [("old",)]), np.ones(1) * 5, now=300.0)
    assert counter.value(("old",)) == 5 and counter.value(("new",)) == 1


def test_histograms_grow_and_purge_keep_their_buckets() -> None:
    registry = Registry()
    hist = registry.histogram("h", "help", ("k",), [0.1, 1.0])
    for i in range(40):  # past the initial capacity
        keys = [(f"s{i}",)]
        hist.observe(Groups(np.zeros(2, np.int64), keys), np.array([0.05, 0.5]), None, now=i)
    assert hist.snapshot(("s7",)) == ([1, 2, 2], 0.55, 2)
    assert registry.purge(cutoff=30) == 30
    assert hist.bounds.tolist() == [0.1, 1.0] and hist.le == ["0.1", "1", "+Inf"]
    assert hist.snapshot(("s7",)) is None and hist.snapshot(("s35",)) == ([1, 2, 2], 0.55, 2)
    keys = [("s35",), ("new",)]
    hist.observe(Groups(np.array([0, 1]), keys), np.array([2.0, 0.01]), None, now=50)
    assert hist.snapshot(("s35",)) == ([1, 2, 3], 2.55, 3)
    assert hist.snapshot(("new",)) == ([1, 1, 1], 0.01, 1)


def test_series_limit_refuses_new_series() -> None:
    registry = Registry(max_active_series=2)
    counter = registry.counter("c_total", "help", ("k",))
    keys = [("a",), ("b",), ("c",)]
    counter.add(Groups(np.arange(3), keys), np.ones(3), now=1.0)
    assert counter.keys == [("a",), ("b",)] and registry.refused_series == 1


def test_values_are_formatted_like_go() -> None:
    assert [format_value(v) for v in (3.0, 0.25, 1e21, float("inf"), 16.384)] == [
        "3",
        "0.25",
        "1e+21",
        "+Inf",
        "16.384",
    ]


@pytest.mark.parametrize(
    ("section", "needle"),
    [
        ({"processors": ["span-metrics", "local-blocks"]}, "metrics_generator.processors.1"),
        ({"processor": {"span_metrics": {"dimension": []}}}, "span_metrics.dimension"),
        ({"overrides": {"t": {"processors": ["nope"]}}}, "overrides.t.processors.0"),
        ({"storage": {"remote_write": [{"headers": {}}]}}, "remote_write.0.url"),
        ({"processor": {"service_graphs": {"histogram_buckets": [1, 0.5]}}}, "increasing"),
        ({"processor": {"service_graphs": {"wait": "soon"}}}, "service_graphs.wait"),
    ],
)
def test_bad_generator_config_is_refused_naming_the_key(
    section: dict[str, object], needle: str
) -> None:
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        load_config(None, {"metrics_generator": section})


def test_generator_config_defaults_and_tempo_shape(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "metrics_generator:\n"
        "  processors: [service-graphs, span-metrics]\n"
        "  processor:\n"
        "    service_graphs:\n"
        "      dimensions: [deployment.environment]\n"
        "      wait: 5s\n"
        "      max_items: 500\n"
        "    span_metrics:\n"
        "      histogram_buckets: [0.1, 1, 10]\n"
        "  storage:\n"
        "    remote_write:\n"
        "      - url: http://prometheus:9090/api/v1/write\n"
        "        headers: {Authorization: Bearer x}\n"
    )
    cfg = load_config(path).metrics_generator
    assert cfg.processor.service_graphs.wait == 5.0
    assert cfg.processor.span_metrics.histogram_buckets == [0.1, 1.0, 10.0]
    assert cfg.processor.service_graphs.histogram_buckets[-1] == 12.8
    assert cfg.storage.remote_write[0].headers == {"Authorization": "Bearer x"}
    assert load_config().metrics_generator.processors == []  # off unless asked for


def test_server_refuses_to_start_with_an_unknown_processor(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("metrics_generator:\n  processors: [service-graph]\n")
    proc = subprocess.run(
        [sys.executable, "-m", "threadline.cli", "serve", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "metrics_generator.processors.0" in proc.stderr
    assert "service-graph" in proc.stderr
