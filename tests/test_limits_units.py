"""The pieces of per-tenant limits on their own: attribute truncation over decoded rows, the
overrides file (merged over the defaults, re-read, a bad file ignored) and the byte rate
limiter."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest
import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from threadline.config import ConfigError, OverridesConfig
from threadline.distributor.limits import RateLimiter
from threadline.ingester.trace_sizes import TraceSizes
from threadline.model.otlp_decode import decode_export_request
from threadline.model.truncate import truncate_attributes
from threadline.overrides import Overrides


def request_with(values: dict[str, str | bytes]) -> bytes:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "svc"
    rs.resource.attributes.add(key="r" * 40).value.string_value = "é" * 30  # 60 bytes
    span = rs.scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = b"\x01" * 16, b"\x02" * 8, "n" * 100
    span.start_time_unix_nano, span.end_time_unix_nano = 1, 2
    for key, value in values.items():
        v = span.attributes.add(key=key).value
        if isinstance(value, bytes):
            v.bytes_value = value
        else:
            v.string_value = value
    event = span.events.add(name="exception", time_unix_nano=1)
    event.attributes.add(key="exception.stacktrace").value.string_value = "x" * 500
    return req.SerializeToString()


def test_long_keys_and_values_are_cut_everywhere_and_counted() -> None:
    batch = decode_export_request(
        request_with({"short": "ok", "long": "€" * 20, "k" * 50: "v"})
    ).batch
    cut, n = truncate_attributes(batch, 32)
    row = cut.to_pylist()[0]
    spans = dict(row["span_attrs_str"])
    assert spans["short"] == "ok"
    assert spans["long"] == "€" * 10  # 30 of 32 bytes: no character is split
    assert spans["k" * 32] == "v"
    resource = dict(row["resource_attrs_str"])
    assert resource["r" * 32] == "é" * 16
    assert dict(row["events"][0]["attrs_str"])["exception.stacktrace"] == "x" * 32
    assert row["name"] == "n" * 100  # names are not attributes
    assert n == 5
    # within the limit nothing is rebuilt
    same, none = truncate_attributes(batch, 1000)
    assert none == 0 and same is batch
    assert truncate_attributes(batch, 0) == (batch, 0)


def write_overrides(path: Path, doc: object) -> None:
    path.write_text(yaml.safe_dump(doc))
    st = path.stat()  # a new stamp even within the file system's time resolution
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))


def test_overrides_merge_over_defaults_and_are_reread(tmp_path: Path) -> None:
    path = tmp_path / "overrides.yaml"
    write_overrides(
        path,
        {
            "overrides": {
                "big": {"global": {"max_bytes_per_trace": "50MB"}},
                "*": {"ingestion": {"rate_limit_bytes": 1000}},
            }
        },
    )
    cfg = OverridesConfig.model_validate(
        {
            "defaults": {"ingestion": {"max_traces_per_user": 7}},
            "per_tenant_override_config": str(path),
        }
    )
    overrides = Overrides(cfg)
    big = overrides.limits("big")
    assert big.global_.max_bytes_per_trace == 50 * 10**6
    assert big.ingestion.max_traces_per_user == 7  # the default, merged under the entry
    assert big.ingestion.rate_limit_bytes == 128 * 2**20
    other = overrides.limits("anyone")
    assert other.ingestion.rate_limit_bytes == 1000  # the * entry
    assert other.global_.max_bytes_per_trace == 5 * 10**6

    write_overrides(path, {"overrides": {"big": {"ingestion": {"max_traces_per_user": 9}}}})
    assert overrides.reload()
    assert overrides.limits("big").ingestion.max_traces_per_user == 9
    assert overrides.limits("anyone").ingestion.rate_limit_bytes == 128 * 2**20
    assert not overrides.reload()  # unchanged file: nothing to do

    for bad in ("overrides: [1, 2]", "overrides: {big: {ingestion: {nope: 1}}}", ": : :"):
        path.write_text(bad)
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000))
        assert not overrides.reload()
        assert overrides.limits("big").ingestion.max_traces_per_user == 9  # kept
    assert overrides.reload_failures == 3
    with pytest.raises(ConfigError, match="per_tenant_override_config"):
        Overrides(cfg)  # at start a bad file is an error


def test_rate_limiter_allows_the_rate_and_the_burst() -> None:
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    assert limiter.allow("t", 1500, rate=1000, burst=2000)
    assert not limiter.allow("t", 600, rate=1000, burst=2000)  # 500 left
    assert limiter.allow("u", 2000, rate=1000, burst=2000)  # tenants are apart
    now[0] = 0.5
    assert limiter.allow("t", 1000, rate=1000, burst=2000)  # 500 + 500 refilled
    now[0] = 100.0
    assert limiter.allow("t", 2000, rate=1000, burst=2000)  # refilled up to the burst only
    assert not limiter.allow("t", 1, rate=1000, burst=2000)
    assert limiter.allow("t", 10**9, rate=0, burst=0)  # rate 0: no limit


def ids(*traces: int) -> pa.Array:
    return pa.array([t.to_bytes(16, "big") for t in traces], pa.binary(16))


def test_trace_sizes_keep_each_trace_within_its_bytes_in_arrival_order() -> None:
    sizes = TraceSizes()
    # 10 bytes a span, 35 bytes a trace: 3 spans of each trace fit
    got = sizes.admit(ids(1, 2, 1, 1, 2, 1, 1), 10, max_bytes=35, max_traces=0)
    assert got.keep is not None
    assert got.keep.tolist() == [True, True, True, True, True, False, False]
    assert (got.too_large, got.too_many_traces) == (2, 0)
    # trace 1 is full; trace 2 has room for one more
    got = sizes.admit(ids(2, 2, 1), 10, max_bytes=35, max_traces=0)
    assert got.keep.tolist() == [True, False, False]
    # within the limits: nothing to filter
    assert sizes.admit(ids(3, 3), 10, max_bytes=35, max_traces=0).keep is None
    sizes.forget(ids(1, 1))
    assert sizes.admit(ids(1), 10, max_bytes=35, max_traces=0).keep is None


def test_trace_sizes_refuse_new_traces_past_the_live_limit() -> None:
    sizes = TraceSizes()
    assert sizes.admit(ids(1, 2), 10, max_bytes=0, max_traces=2).keep is None
    got = sizes.admit(ids(3, 1, 3, 4), 10, max_bytes=0, max_traces=2)
    assert got.keep.tolist() == [False, True, False, False]  # 1 is live; 3 and 4 are new
    assert (got.too_large, got.too_many_traces) == (0, 3)
    assert len(sizes) == 2
