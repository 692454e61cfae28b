"""The incrementally updated live stage equals a build from scratch, whatever the entries do:
arrive, leave (cut), get split, with traces spread over many of them."""

from __future__ import annotations

import random

import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from threadline.ingester.ingester import Entry
from threadline.model.dedicated import attribute_keys
from threadline.model.otlp_decode import decode_export_request
from threadline.querier.live_stage import LiveStage, build_live_table


def push_entry(rng: random.Random, traces: int, spans: int) -> Entry:
    """A push of ``spans`` spans of traces numbered below ``traces`` (so traces spread over
    pushes), parents anywhere among a trace's possible span ids (some never arrive)."""
    req = ExportTraceServiceRequest()
    for service in ("api", "db"):
        rs = req.resource_spans.add()
        rs.resource.attributes.add(key="service.name").value.string_value = service
        ss = rs.scope_spans.add()
        for _ in range(spans // 2):
            span = ss.spans.add()
            span.trace_id = rng.randrange(traces).to_bytes(16, "big")
            span.span_id = rng.randrange(1, 40).to_bytes(8, "big")
            if rng.random() < 0.8:
                span.parent_span_id = rng.randrange(1, 40).to_bytes(8, "big")
            span.name = f"op{rng.randrange(5)}"
            span.start_time_unix_nano = 1_700_000_000_000_000_000 + rng.randrange(10**9)
            span.end_time_unix_nano = span.start_time_unix_nano + rng.randrange(1, 10**6)
            span.attributes.add(key=f"k{rng.randrange(4)}").value.string_value = "v"
            if rng.random() < 0.3:
                span.attributes.add(key="http.response.status_code").value.int_value = 500
    batch = decode_export_request(req.SerializeToString()).batch
    return Entry(pa.Table.from_batches([batch]), 0, 0.0)


def split(entry: Entry, rng: random.Random) -> list[Entry]:
    """The entry's rows in two new entries (as a cut does with traces still active)."""
    keep = pa.array([rng.random() < 0.5 for _ in range(entry.table.num_rows)])
    return [
        Entry(entry.table.filter(keep), 0, 0.0),
        Entry(entry.table.filter(pa.compute.invert(keep)), 0, 0.0),
    ]


def test_updates_equal_a_build_from_scratch() -> None:
    rng = random.Random(8)
    stage = LiveStage()
    live: list[Entry] = []
    for step in range(60):
        action = rng.random()
        if action < 0.5 or not live:
            live += [push_entry(rng, 30, rng.randrange(2, 40)) for _ in range(rng.randrange(1, 4))]
        elif action < 0.75:
            del live[: rng.randrange(1, len(live) + 1)]  # the oldest cut
        elif action < 0.9:
            at = rng.randrange(len(live))
            live[at : at + 1] = [e for e in split(live[at], rng) if e.table.num_rows]
        # else: nothing changed
        with stage.lock:
            table, keys, changed = stage.update(live)
        want = build_live_table(live)
        assert table.equals(want), step
        assert keys == attribute_keys(want), step
        if action >= 0.9 and step:
            assert not changed


def test_an_unchanged_stage_is_answered_without_work() -> None:
    rng = random.Random(2)
    stage = LiveStage()
    live = [push_entry(rng, 5, 10) for _ in range(3)]
    first, _, changed = stage.update(live)
    assert changed
    again, _, changed = stage.update(list(live))
    assert again is first and not changed
    empty, keys, changed = stage.update([])
    assert changed and empty.num_rows == 0
    assert keys and all(names == [] for names in keys.values())
