"""Hot attributes in columns of their own, and attribute lookups resolved per source: the same
answers as reading the maps, over new blocks, blocks written before either existed, and live
data; keys a source lacks are never looked up in it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from threadline.config import BlockConfig
from threadline.model.dedicated import add_dedicated_columns, attribute_keys
from threadline.model.otlp_decode import decode_export_request
from threadline.model.schema import DEDICATED, SPAN_SCHEMA
from threadline.querier.attribute_columns import AttributeColumns, resolve_attributes
from threadline.querier.search import SearchEngine, SearchWindow
from threadline.querier.sources import DataSources
from threadline.storage.backend import LocalBackend
from threadline.storage.block_reader import DATA_FILE
from threadline.storage.block_writer import write_block
from threadline.storage.blocklist import Blocklist
from threadline.traceql import sql
from threadline.traceql.plan import compile_search

START = 1_700_000_000_000_000_000


def request(first: int, traces: int, status: object, db: str | None, route: str) -> bytes:
    """``traces`` two-span traces numbered from ``first``: an http server span with the given
    ``http.status_code`` (int or string typed) and route, and a client span with ``db``."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "shop"
    ss = rs.scope_spans.add()
    for n in range(first, first + traces):
        tid = (n + 1).to_bytes(16, "big")  # trace n has id n + 1: an all-zero id is invalid
        root = ss.spans.add(trace_id=tid, span_id=b"\x00" * 7 + b"\x01", name="GET", kind=2)
        root.start_time_unix_nano = START + n * 10**9
        root.end_time_unix_nano = root.start_time_unix_nano + 10**6
        code = root.attributes.add(key="http.status_code")
        if isinstance(status, int):
            code.value.int_value = status + n % 3
        else:
            code.value.string_value = str(status)
        root.attributes.add(key="http.route").value.string_value = route
        root.attributes.add(key="http.method").value.string_value = "GET"
        child = ss.spans.add(trace_id=tid, span_id=b"\x00" * 7 + b"\x02", name="query", kind=3)
        child.parent_span_id = root.span_id
        child.start_time_unix_nano = root.start_time_unix_nano + 1000
        child.end_time_unix_nano = child.start_time_unix_nano + 1000
        if db is not None:
            child.attributes.add(key="db.system").value.string_value = db
            # a repeated key: the first one counts, as in a map lookup
            child.attributes.add(key="db.system").value.string_value = "other"
    return req.SerializeToString()


def rows(body: bytes) -> pa.Table:
    return pa.Table.from_batches([decode_export_request(body).batch])


def test_dedicated_columns_equal_the_map_lookups() -> None:
    parts = [
        rows(request(0, 40, 200, "postgresql", "/a")),
        rows(request(40, 30, "500", None, "/b")),
        rows(request(70, 20, 500, "redis", "/c")),
    ]
    chunked = pa.concat_tables(parts)  # several chunks
    for table in (chunked, chunked.slice(25, 50), chunked.combine_chunks(), chunked.slice(0, 0)):
        out = add_dedicated_columns(table)
        assert out.num_rows == table.num_rows
        for column, scope, kind, key in DEDICATED:
            maps = table.column(f"{scope}_attrs_{kind}")
            expected = pc.map_lookup(maps, pa.scalar(key), "first") if len(table) else []
            assert out.column(column).to_pylist() == list(
                expected.to_pylist() if len(table) else []
            )
    keys = attribute_keys(chunked)
    assert keys["span_attrs_int"] == ["http.status_code"]
    assert keys["span_attrs_str"] == ["db.system", "http.method", "http.route", "http.status_code"]
    assert keys["resource_attrs_str"] == ["service.name"]
    assert keys["span_attrs_float"] == []


def test_placeholders_resolve_per_source() -> None:
    text = (
        f"{sql.attr('span', 'int', 'http.status_code')} >= 500 AND {sql.attr('span', 'float', 'x')}"
    )
    cols = AttributeColumns(
        {"span_attrs_int": frozenset({"http.status_code"}), "span_attrs_float": frozenset()},
        {("span_attrs_int", "http.status_code"): "span_http_status_code"},
    )
    assert resolve_attributes(text, cols) == (
        "span_http_status_code >= 500 AND CAST(NULL AS DOUBLE)"
    )
    unknown = resolve_attributes(text, AttributeColumns())
    assert unknown == "span_attrs_int['http.status_code'] >= 500 AND span_attrs_float['x']"
    # a literal cannot pose as a placeholder
    sneaky = sql.string(sql.attr("span", "str", "k"))
    assert resolve_attributes(sneaky, cols) == sneaky
    assert sql.MARK not in sneaky


def strip_to_legacy(block_dir: Path) -> None:
    """Make a block look written before dedicated columns and attribute keys existed."""
    data = block_dir / DATA_FILE
    table = pq.read_table(data)
    keep = [n for n in table.schema.names if n not in {c for c, *_ in DEDICATED}]
    pq.write_table(table.select(keep), data)
    meta_path = block_dir / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["attributeKeys"], meta["dedicatedColumns"]
    meta["size"] = data.stat().st_size
    meta["checksums"] = {}
    meta_path.write_text(json.dumps(meta))


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> SearchEngine:
    root = tmp_path_factory.mktemp("dedicated")
    cfg = BlockConfig(row_group_spans=256)
    # traces 0-39: int statuses 200-202, postgresql; 40-69: status "500" as a string, no db;
    # 70-89: int 500-502, redis, in a block from before dedicated columns
    write_block(root, "t", rows(request(0, 40, 200, "postgresql", "/a")), cfg)
    write_block(root, "t", rows(request(40, 30, "500", None, "/b")), cfg)
    legacy = write_block(root, "t", rows(request(70, 20, 500, "redis", "/c")), cfg)
    strip_to_legacy(root / "t" / legacy.block_id)
    blocklist = Blocklist(LocalBackend(root))
    blocklist.load()
    assert len(blocklist.blocks("t")) == 3
    return SearchEngine(DataSources(None, blocklist))


def found(engine: SearchEngine, query: str) -> list[int]:
    result = asyncio.run(engine.search("t", compile_search(query), SearchWindow(), 1000, 3))
    return sorted(int.from_bytes(t.trace_id, "big") - 1 for t in result.traces)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("{ span.http.status_code >= 500 }", list(range(70, 90))),
        ("{ span.http.status_code = 201 }", [n for n in range(90) if n < 40 and n % 3 == 1]),
        ('{ span.http.status_code = "500" }', list(range(40, 70))),
        ('{ span.db.system = "postgresql" }', list(range(40))),
        ('{ .db.system = "redis" }', list(range(70, 90))),
        ('{ span.db.system = "other" }', []),
        ('{ span.http.route =~ "/[bc]" && span.http.method = "GET" }', list(range(40, 90))),
        ("{ span.db.system = nil && kind = client }", list(range(40, 70))),
        ('{ span.no.such.key = "x" }', []),
        ("{ span.no.such.key != nil }", []),
    ],
)
def test_searches_agree_over_new_and_legacy_blocks(
    engine: SearchEngine, query: str, expected: list[int]
) -> None:
    assert found(engine, query) == expected


def test_returned_attributes_come_from_whatever_holds_them(engine: SearchEngine) -> None:
    plan = compile_search("{ span.http.status_code >= 202 }")
    result = asyncio.run(engine.search("t", plan, SearchWindow(), 1000, 3))
    values = {}
    for t in result.traces:
        for span in next(iter(t.spansets.values())).spans:
            values[int.from_bytes(t.trace_id, "big") - 1] = span["attributes"][0]["value"]
    assert values[2] == {"intValue": "202"}  # a new block: the dedicated column
    assert values[71] == {"intValue": "502"}  # the legacy block: the map
    assert 40 not in values  # "500" is a string: no numeric comparison


def test_span_schema_keeps_the_maps_whole() -> None:
    assert not {c for c, *_ in DEDICATED} & set(SPAN_SCHEMA.names)


def test_terms_on_absent_attributes_fold_to_false() -> None:
    term = sql.if_present(f"len({sql.attr('span', 'arr_int', 'retry')}) > 0")
    text = f"x = 1 OR {term} OR name = {sql.string('a' + sql.TERM + 'b')}"
    without = AttributeColumns({"span_attrs_arr_int": frozenset()})
    assert resolve_attributes(text, without) == "x = 1 OR false OR name = ('a' || chr(2) || 'b')"
    held = AttributeColumns({"span_attrs_arr_int": frozenset(["retry"])})
    assert resolve_attributes(text, held) == (
        "x = 1 OR len(span_attrs_arr_int['retry']) > 0 OR name = ('a' || chr(2) || 'b')"
    )
