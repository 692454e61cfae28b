"""``threadline blocks``: list, inspect, verify and compact the blocks of a backend.

The tool reads the backend as it is right now (a listing, not the tenant index) and is safe to
run next to a server: it never touches the WAL, and ``compact`` follows the same protocol as the
compactor inside a server (output complete before inputs are marked).
"""

from __future__ import annotations

import atexit
import hashlib
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from threadline.config import Config
from threadline.storage.backend import META_FILE
from threadline.storage.block_reader import BLOOM_FILE, DATA_FILE, Block
from threadline.storage.blocklist import Blocklist
from threadline.storage.factory import make_backend, make_caches
from threadline.storage.trace_index import INDEX_FILE, build_trace_index


def open_blocklist(cfg: Config, *, builder: bool = False) -> Blocklist:
    backend = make_backend(cfg)
    cache_dir = Path(tempfile.mkdtemp(prefix="threadline-blocks-"))
    atexit.register(shutil.rmtree, cache_dir, True)
    caches = make_caches(cfg, backend, cache_dir)
    blocklist = Blocklist(backend, caches, index_builder=builder, use_index=False)
    blocklist.load(remove_unfinished=False)
    return blocklist


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return f"{n:.1f}TiB"


def block_rows(blocklist: Blocklist, tenant: str | None, compacted: bool) -> list[dict[str, Any]]:
    """One dict per block: tenant, id, state, level, time range, spans, traces, bytes."""
    rows = []
    tenants = [tenant] if tenant else blocklist.tenants_in_backend()
    for t in sorted(tenants):
        hidden = blocklist.hidden(t)
        metas = [(b.meta, "hidden" if b.id in hidden else "live") for b in blocklist.all_live(t)]
        if compacted:
            metas += [(m, "compacted") for m in blocklist.compacted(t)]
        for meta, state in sorted(metas, key=lambda x: (x[0].start_unix_nano, x[0].block_id)):
            rows.append(
                {
                    "tenant": t,
                    "blockID": meta.block_id,
                    "state": state,
                    "compactionLevel": meta.compaction_level,
                    "startTime": meta.start_time,
                    "endTime": meta.end_time,
                    "spans": meta.total_spans,
                    "traces": meta.total_objects,
                    "size": meta.size,
                }
            )
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    header = ("TENANT", "BLOCK ID", "STATE", "LVL", "START", "END", "SPANS", "TRACES", "SIZE")
    table = [header]
    for r in rows:
        table.append(
            (
                r["tenant"],
                r["blockID"],
                r["state"],
                str(r["compactionLevel"]),
                r["startTime"],
                r["endTime"],
                str(r["spans"]),
                str(r["traces"]),
                human_bytes(r["size"]),
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in table]
    total_spans = sum(r["spans"] for r in rows)
    total_size = sum(r["size"] for r in rows)
    lines.append(f"{len(rows)} blocks, {total_spans} spans, {human_bytes(total_size)}")
    return "\n".join(line.rstrip() for line in lines)


def find_block(blocklist: Blocklist, block_id: str, tenant: str | None) -> Block:
    for t in [tenant] if tenant else blocklist.tenants_in_backend():
        for b in blocklist.all_live(t):
            if b.id == block_id or b.id.startswith(block_id):
                return b
        for m in blocklist.compacted(t):
            if m.block_id == block_id or m.block_id.startswith(block_id):
                return Block(blocklist.backend, m, blocklist.caches)
    raise LookupError(f"no block {block_id!r}" + (f" for tenant {tenant!r}" if tenant else ""))


def inspect_block(block: Block) -> dict[str, Any]:
    pf = block.parquet()
    md = pf.metadata
    return {
        "meta": block.meta.to_dict(),
        "parquet": {
            "rows": md.num_rows,
            "rowGroups": md.num_row_groups,
            "columns": md.num_columns,
            "createdBy": md.created_by,
            "footerBytes": md.serialized_size,
        },
        "schema": [
            {"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in pf.schema_arrow
        ],
    }


@dataclass(slots=True)
class Verdict:
    tenant: str
    block_id: str
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify_block(block: Block) -> Verdict:
    """Checksums, Parquet readability, counts, the trace index (or, in tl1 blocks, row-group
    ranges and trace-id order), and every trace id in the bloom filter."""
    v = Verdict(block.tenant, block.id)
    meta = block.meta
    backend = block.backend
    files = {DATA_FILE: None, BLOOM_FILE: None}
    if block.indexed:
        files[INDEX_FILE] = None
    for name in files:
        try:
            files[name] = backend.read(block.key(name))  # type: ignore[assignment]
        except FileNotFoundError:
            v.problems.append(f"{name} is missing")
    if not v.ok:
        return v
    if not meta.checksums:
        v.checked.append("no checksums recorded (block written before they were)")
    for name, raw in files.items():
        want = meta.checksums.get(name)
        if want is None:
            continue
        got = _sha256(raw)  # type: ignore[arg-type]
        if got != want:
            v.problems.append(f"{name}: sha256 {got} does not match meta ({want})")
        else:
            v.checked.append(f"{name} sha256")
    data = files[DATA_FILE]
    assert data is not None
    if len(data) != meta.size:
        v.problems.append(f"{DATA_FILE} has {len(data)} bytes, meta says {meta.size}")
    try:
        import pyarrow as pa

        pf = pq.ParquetFile(pa.BufferReader(data))
        ids = pf.read(columns=["trace_id"]).column("trace_id")
    except Exception as e:  # any corruption pyarrow reports
        v.problems.append(f"{DATA_FILE} is not readable Parquet: {e}")
        return v
    v.checked.append("parquet readable")
    if ids.length() != meta.total_spans:
        v.problems.append(f"{ids.length()} rows, meta says {meta.total_spans} spans")
    if pf.metadata.num_row_groups != len(meta.row_groups):
        v.problems.append(
            f"{pf.metadata.num_row_groups} row groups, meta lists {len(meta.row_groups)}"
        )
    elif block.indexed:
        if build_trace_index(ids) != files[INDEX_FILE]:
            v.problems.append(f"{INDEX_FILE} does not match the rows' trace ids")
        else:
            v.checked.append("trace index")
        starts = pf.read(columns=["trace_start_unix_nano"]).column(0).to_numpy()
        if len(starts) > 1 and bool((starts[1:] < starts[:-1]).any()):
            v.problems.append("rows are not in trace-start order")
    else:
        offset = 0
        for i, rg in enumerate(meta.row_groups):
            first = ids[offset].as_py().hex()
            last = ids[offset + rg.rows - 1].as_py().hex()
            if (first, last) != (rg.min_trace_id, rg.max_trace_id):
                v.problems.append(f"row group {i}: trace-id range differs from meta")
            offset += rg.rows
        v.checked.append("row-group index")
        sorted_ok = ids.length() < 2 or bool(
            all(a <= b for a, b in zip(ids[:-1].to_pylist(), ids[1:].to_pylist(), strict=True))
        )
        if not sorted_ok:
            v.problems.append("rows are not sorted by trace id")
    missing = int((~block.bloom.contains_all(ids)).sum())
    if missing:
        v.problems.append(f"{missing} rows have a trace id the bloom filter does not hold")
    else:
        v.checked.append("every trace id in the bloom filter")
    if not backend.exists(block.key(META_FILE)):
        v.checked.append("block is compacted (meta.compacted.json)")
    return v
