"""Compaction: merge throughput, and query latency over many small blocks before and after.

``--blocks`` small blocks (``--spans-per-block`` spans each, realistic traces from
``workload.py``) are written to a local backend the way an ingester that cuts idle traces often
would: every trace is split over two consecutive blocks, and ``--duplicates`` of the spans are
written twice (retried pushes). Then, in process (no server, no network):

* trace by ID (``TraceFinder`` over the block list: bloom filter, row-group index, Parquet
  point read) for ``--samples`` known trace ids, every answer checked for its span count;
* TraceQL search (``SearchEngine``: one DuckDB query per block) for a few queries, each run
  ``--searches`` times;
* compaction of everything (``Compactor.run_cycle`` until no job is left: level 0 -> 1 -> 2 ...),
  reported as spans merged per second (every span read by a compaction job counts, at each
  level) and the spans and bytes that result;
* the same latencies again over the compacted blocks.

Prints one JSON object. Latencies are wall-clock milliseconds on this machine.

    python bench/bench_compaction.py --blocks 200 --spans-per-block 500
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).parent))

from threadline.compactor.compactor import Compactor
from threadline.config import Config
from threadline.model.otlp_decode import decode_export_request
from threadline.querier.admission import QueryResources
from threadline.querier.search import SearchEngine, SearchWindow
from threadline.querier.sources import DataSources
from threadline.querier.trace_by_id import TraceFinder
from threadline.storage.backend import LocalBackend
from threadline.storage.block_writer import write_block
from threadline.storage.blocklist import Blocklist
from threadline.traceql.plan import compile_search
from workload import templates

TENANT = "bench"
QUERIES = [
    "{ }",
    '{ resource.service.name = "payment" && duration > 1ms }',
    "{ status = error }",
]


def stats(ms: list[float]) -> dict[str, float]:
    a = np.array(ms)
    return {
        "n": len(ms),
        "p50_ms": round(float(np.percentile(a, 50)), 2),
        "p99_ms": round(float(np.percentile(a, 99)), 2),
        "max_ms": round(float(a.max()), 2),
    }


def make_blocks(
    backend: LocalBackend, cfg: Config, blocks: int, spans_per_block: int, duplicates: float
) -> tuple[dict[bytes, int], int]:
    """Write the blocks; returns {trace id: span count} and the spans written."""
    rng = random.Random(11)
    tpls = templates(8, spans_per_request=spans_per_block, seed=5)
    counts: dict[bytes, int] = {}
    written = 0
    for pair in range(blocks // 2):
        table = pa.Table.from_batches([decode_export_request(tpls[pair % 8].fresh_copy()).batch])
        for tid, n in zip(*np.unique(table.column("trace_id").to_numpy(zero_copy_only=False),
                                     return_counts=True), strict=True):  # fmt: skip
            counts[tid] = int(n)
        rows = np.arange(table.num_rows)
        halves = [table.take(pa.array(rows[rows % 2 == k])) for k in (0, 1)]
        for half in halves:
            dup = rng.sample(range(half.num_rows), int(half.num_rows * duplicates))
            data = pa.concat_tables([half, half.take(pa.array(dup, pa.int64()))])
            write_block(backend, TENANT, data, cfg.storage.block)
            written += data.num_rows
    return counts, written


async def trace_latency(finder: TraceFinder, sample: list[tuple[bytes, int]]) -> dict[str, Any]:
    """The querier's whole lookup (blocks, merge, de-duplication), and its block reads alone
    (bloom filters, row-group index, Parquet point reads: what compaction changes)."""
    ms, block_ms, wrong = [], [], 0
    for tid, n in sample:
        t0 = time.perf_counter()
        table = await finder.find(TENANT, tid)
        ms.append((time.perf_counter() - t0) * 1000)
        if table is None or table.num_rows != n:
            wrong += 1
        t0 = time.perf_counter()
        finder._from_blocks(TENANT, tid, None, None)
        block_ms.append((time.perf_counter() - t0) * 1000)
    return {**stats(ms), "wrong_answers": wrong, "block_reads": stats(block_ms)}


async def search_latency(engine: SearchEngine, repeats: int) -> dict[str, Any]:
    per_query, every = {}, []
    for q in QUERIES:
        plan = compile_search(q)
        ms = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            result = await engine.search(TENANT, plan, SearchWindow(), 20, 3)
            ms.append((time.perf_counter() - t0) * 1000)
        per_query[q] = {**stats(ms), "traces": len(result.traces)}
        every += ms
    return {**stats(every), "queries": per_query}


def measure(blocklist: Blocklist, sample: list[tuple[bytes, int]], repeats: int) -> dict:
    finder = TraceFinder(None, blocklist)
    engine = SearchEngine(DataSources(None, blocklist, QueryResources(threads=1)))
    blocks = blocklist.blocks(TENANT)
    return {
        "blocks": len(blocks),
        "spans": sum(b.meta.total_spans for b in blocks),
        "bytes": sum(b.meta.size for b in blocks),
        "trace_by_id": asyncio.run(trace_latency(finder, sample)),
        "search": asyncio.run(search_latency(engine, repeats)),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--blocks", type=int, default=200)
    ap.add_argument("--spans-per-block", type=int, default=500)
    ap.add_argument("--duplicates", type=float, default=0.02)
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--searches", type=int, default=5)
    ap.add_argument("--max-input-blocks", type=int, default=32)
    ap.add_argument("--data-dir", type=Path, help="Keep the blocks here (default: temporary).")
    args = ap.parse_args()
    data = args.data_dir or Path(tempfile.mkdtemp(prefix="bench-compaction-"))
    try:
        cfg = Config.model_validate(
            {
                "data_dir": str(data),
                "compactor": {"compaction": {"max_input_blocks": args.max_input_blocks}},
            }
        )
        backend = LocalBackend(data / "blocks")
        t0 = time.perf_counter()
        counts, written = make_blocks(
            backend, cfg, args.blocks, args.spans_per_block, args.duplicates
        )
        write_seconds = time.perf_counter() - t0
        blocklist = Blocklist(backend, index_builder=True)
        blocklist.load()
        sample = random.Random(3).sample(sorted(counts.items()), min(args.samples, len(counts)))
        before = measure(blocklist, sample, args.searches)

        compactor = Compactor(cfg, blocklist)
        t0 = time.perf_counter()
        reports = []
        while True:
            report = compactor.run_cycle(retention=False, cleanup=False)
            if not report.compactions:
                break
            reports.append(report)
        seconds = time.perf_counter() - t0
        spans_in = sum(r.spans_in for r in reports)
        after = measure(blocklist, sample, args.searches)
        result = {
            "bench": "compaction",
            "blocks_written": args.blocks,
            "spans_written": written,
            "traces": len(counts),
            "write_spans_per_s": round(written / write_seconds),
            "compaction": {
                "jobs": sum(r.compactions for r in reports),
                "cycles": len(reports),
                "seconds": round(seconds, 2),
                "spans_merged": spans_in,
                "spans_merged_per_s": round(spans_in / seconds) if seconds else None,
                "duplicates_dropped": written - after["spans"],
            },
            "before": before,
            "after": after,
            "speedup_p50": {
                "trace_by_id": round(
                    before["trace_by_id"]["p50_ms"] / after["trace_by_id"]["p50_ms"], 1
                ),
                "trace_by_id_block_reads": round(
                    before["trace_by_id"]["block_reads"]["p50_ms"]
                    / after["trace_by_id"]["block_reads"]["p50_ms"],
                    1,
                ),
                "search": round(before["search"]["p50_ms"] / after["search"]["p50_ms"], 1),
            },
        }
        print(json.dumps(result))
    finally:
        if args.data_dir is None:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
