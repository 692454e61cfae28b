"""Search: run a spanset plan over every source of a tenant and assemble Tempo's result shape.

A *plan* is SQL over the CTE ``base`` (the rows of one source, block schema plus a row number)
that returns ``trace_id, sset, rid, labels``: the matched spans, the spanset each belongs to
(``sset``, one per ``by()`` group, ``''`` otherwise), and the spanset's labels (JSON text for
``SpanSet.attributes``). The TraceQL compiler and the legacy tag search both produce plans.
Each source is searched on its own (newest first) for the newest ``limit`` matching traces;
traces found in several sources are merged, and the newest ``limit`` overall are answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from threadline.querier.progress import with_progress
from threadline.querier.sources import (
    ROW_NUMBER,
    DataSources,
    Source,
    SourceCursor,
    not_excluded,
)
from threadline.traceql.plan import Plan


@dataclass(slots=True)
class SearchWindow:
    start_ns: int | None = None
    end_ns: int | None = None
    min_duration_ns: int | None = None
    max_duration_ns: int | None = None


@dataclass(slots=True)
class SpanSet:
    spans: list[dict[str, Any]] = field(default_factory=list)
    matched: int = 0
    labels: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class TraceResult:
    trace_id: bytes
    root_service: str
    root_name: str
    start_ns: int
    duration_ns: int
    spansets: dict[str, SpanSet] = field(default_factory=dict)

    def merge(self, other: TraceResult) -> None:
        end = max(self.start_ns + self.duration_ns, other.start_ns + other.duration_ns)
        self.start_ns = min(self.start_ns, other.start_ns)
        self.duration_ns = end - self.start_ns
        self.root_service = self.root_service or other.root_service
        self.root_name = self.root_name or other.root_name
        for key, ss in other.spansets.items():
            mine = self.spansets.setdefault(key, SpanSet(labels=ss.labels))
            mine.matched += ss.matched
            # a span sent twice (a retried push) may sit in two sources: listed and counted once
            seen = {_span_key(s) for s in mine.spans}
            for span in ss.spans:
                if _span_key(span) in seen:
                    mine.matched -= 1
                else:
                    mine.spans.append(span)


def _span_key(span: dict[str, Any]) -> tuple[str, str, str, str]:
    return span["spanID"], span["startTimeUnixNano"], span["durationNanos"], span["name"]


@dataclass(slots=True)
class SearchResult:
    traces: list[TraceResult]
    inspected_bytes: int
    inspected_spans: int
    total_blocks: int
    total_jobs: int = 1  # sources in the window (the query's jobs), all done


class SearchQuery(NamedTuple):
    plan: Plan
    window: SearchWindow
    limit: int
    spss: int


@dataclass(slots=True)
class SearchProgress:
    """A search under way: the traces certain to be in its answer so far (newest first, as
    Tempo's SearchResponse entries) and how far it got."""

    traces: list[dict[str, Any]]
    completed_jobs: int
    total_jobs: int
    inspected_bytes: int
    inspected_spans: int
    total_blocks: int


def _window_sql(window: SearchWindow) -> str:
    cond = ["true"]
    end_col = "(trace_start_unix_nano + trace_duration_nano)"
    if window.start_ns is not None:
        cond.append(f"{end_col} >= {int(window.start_ns)}")
    if window.end_ns is not None:
        cond.append(f"trace_start_unix_nano <= {int(window.end_ns)}")
    if window.min_duration_ns is not None:
        cond.append(f"trace_duration_nano >= {int(window.min_duration_ns)}")
    if window.max_duration_ns is not None:
        cond.append(f"trace_duration_nano <= {int(window.max_duration_ns)}")
    return " AND ".join(cond)


# a window starts about this many traces wide (times the limit) and grows this much each time
_FIRST_WINDOW = 8
_GROWTH = 8
# a live-stage window spread over more pushes (record batches) than this is read in place
_MAX_LIVE_BATCHES = 64
# in-memory rows carry no trace count: spans per trace assumed for their first window
_SPANS_PER_TRACE = 16


def start_windows(source: Source, limit: int) -> list[tuple[int | None, int | None]]:
    """Trace-start ranges ``[since, before)`` to search a source in, newest first.

    Blocks from format tl2 on and cut in-memory entries (rows in trace-start order: a window
    is a range of row groups or rows) are searched in windows that start with about
    ``8 * limit`` traces' worth of time and grow eightfold, so a limit-20 search reads the
    newest rows only; tl1 blocks (rows by trace id) in one go. The live stage (push order) is
    searched in its newest window, then the rest.
    """
    if source.live is not None:
        rows = source.live.num_rows
        if rows <= _FIRST_WINDOW * limit * _SPANS_PER_TRACE:
            return [(None, None)]
        bounds = pc.min_max(source.live.column("trace_start_unix_nano"))
        lo, hi, traces = bounds["min"].as_py(), bounds["max"].as_py(), rows // _SPANS_PER_TRACE
    else:
        block = source.block
        if block is None or not block.indexed or block.meta.total_objects <= _FIRST_WINDOW * limit:
            return [(None, None)]
        lo, hi = block.meta.start_unix_nano, block.meta.end_unix_nano
        traces = block.meta.total_objects
    width = max(1, (hi - lo) * _FIRST_WINDOW * limit // traces)
    if source.live is not None and not source.time_ordered:
        # the live stage: its newest window's rows are taken from the last few pushes, but
        # a wider window's come from most of them, so the rest is read in one go
        since = hi - width
        return [(since, None), (None, since)] if since > lo else [(None, None)]
    out: list[tuple[int | None, int | None]] = []
    before: int | None = None
    while True:
        since = hi - width if before is None else before - width
        if since <= lo:
            out.append((None, before))
            return out
        out.append((since, before))
        before, width = since, width * _GROWTH


def _live_rows(source: Source, since: int | None, before: int | None) -> pa.Table | None:
    """The rows of an in-memory source whose trace starts in the window: a slice of rows in
    trace-start order; in the live stage (push order), the rows taken from the few batches
    (pushes) that hold them, or None (read it all) when they are spread over many."""
    table = source.live
    assert table is not None
    starts = table.column("trace_start_unix_nano").to_numpy()
    if source.time_ordered:
        a = 0 if since is None else int(np.searchsorted(starts, since, "left"))
        b = len(starts) if before is None else int(np.searchsorted(starts, before, "left"))
        return table.slice(a, b - a)
    inside = np.ones(len(starts), dtype=bool)
    if since is not None:
        inside &= starts >= since
    if before is not None:
        inside &= starts < before
    rows = np.flatnonzero(inside)
    batches = table.to_batches()
    lengths = np.array([b.num_rows for b in batches], dtype=np.int64)
    offsets = np.cumsum(lengths) - lengths
    which = np.searchsorted(offsets, rows, "right") - 1
    held = np.unique(which)
    if len(held) > _MAX_LIVE_BATCHES:
        return None
    taken = [batches[i].take(pa.array(rows[which == i] - offsets[i])) for i in held]
    return pa.Table.from_batches(taken, schema=table.schema)


def source_sql(
    source: Source,
    plan: Plan,
    window: SearchWindow,
    limit: int,
    spss: int,
    starts: tuple[int | None, int | None] = (None, None),
) -> str:
    extra = "".join(f', {a.sql} AS "a{i}"' for i, a in enumerate(plan.attributes))
    where = _window_sql(window)
    since, before = starts
    if since is not None:
        where += f" AND trace_start_unix_nano >= {int(since)}"
    if before is not None:
        where += f" AND trace_start_unix_nano < {int(before)}"
    where += f" AND {not_excluded(source)}"
    if source.time_ordered:
        # rows in trace-start order: a trace's last row number orders it like its start
        newest = f"""SELECT trace_id FROM matched GROUP BY trace_id
  ORDER BY max(rid) DESC LIMIT {int(limit)}"""
    else:
        newest = f"""SELECT m.trace_id FROM matched m JOIN base b ON b.rid = m.rid
  GROUP BY m.trace_id ORDER BY max(b.trace_start_unix_nano) DESC, m.trace_id DESC
  LIMIT {int(limit)}"""
    return f"""
WITH base AS NOT MATERIALIZED (
  SELECT *, {ROW_NUMBER} AS rid FROM {source.relation} WHERE {where}
),
matched AS MATERIALIZED ({plan.sql}),
newest AS ({newest}),
picked AS (
  SELECT m.*, count(*) OVER (PARTITION BY m.trace_id, m.sset) AS matched_count,
         row_number() OVER (PARTITION BY m.trace_id, m.sset ORDER BY m.rid) AS k
  FROM matched m WHERE m.trace_id IN (SELECT trace_id FROM newest)
)
SELECT p.trace_id, p.sset, p.labels, p.matched_count, b.span_id, b.name, b.start_unix_nano,
       b.duration_nano, b.trace_start_unix_nano, b.trace_duration_nano, b.root_service_name,
       b.root_span_name{extra}
FROM picked p JOIN base b ON b.rid = p.rid
WHERE p.k <= {int(spss)}
"""


def _rows_to_traces(rows: list[tuple[Any, ...]], n_attrs: int, plan: Plan) -> list[TraceResult]:
    traces: dict[bytes, TraceResult] = {}
    for row in rows:
        (
            tid,
            sset,
            labels,
            matched,
            span_id,
            name,
            start,
            dur,
            t_start,
            t_dur,
            root_svc,
            root_name,
        ) = row[:12]
        trace = traces.get(tid)
        if trace is None:
            trace = traces[tid] = TraceResult(tid, root_svc, root_name, t_start, t_dur)
        ss = trace.spansets.get(sset)
        if ss is None:
            ss = trace.spansets[sset] = SpanSet(
                matched=matched, labels=[orjson.loads(label) for label in labels or ()]
            )
        attrs = []
        for a, value in zip(plan.attributes, row[12 : 12 + n_attrs], strict=True):
            if value is not None:
                attrs.append({"key": a.key, "value": orjson.loads(value)})
        span: dict[str, Any] = {
            "spanID": span_id.hex(),
            "name": name,
            "startTimeUnixNano": str(start),
            "durationNanos": str(dur),
        }
        if attrs:
            span["attributes"] = attrs
        ss.spans.append(span)
    return list(traces.values())


class SearchEngine:
    def __init__(self, sources: DataSources) -> None:
        self.sources = sources

    def _search(
        self,
        tenant: str,
        plan: Plan,
        window: SearchWindow,
        limit: int,
        spss: int,
        progress: Callable[[SearchProgress], None] | None = None,
    ) -> SearchResult:
        def rows_of(con: SourceCursor, source: Source) -> list[tuple[Any, ...]]:
            """The source's rows of its newest ``limit`` matching traces, window by window
            (a trace lies in one window: its rows share one trace start)."""
            rows: list[tuple[Any, ...]] = []
            traces: set[bytes] = set()
            try:
                for starts in start_windows(source, limit):
                    if source.live is not None and starts != (None, None):
                        # the query reads only the window's rows where they are cheap to have
                        window_rows = _live_rows(source, *starts)
                        con.show_live(source.live if window_rows is None else window_rows)
                    got = con.sql(source_sql(source, plan, window, limit, spss, starts)).fetchall()
                    rows.extend(got)
                    traces.update(r[0] for r in got)
                    if len(traces) >= limit:
                        break
            except duckdb.Error as e:
                raise SearchError(f"query failed: {e}") from None
            return rows

        found: dict[bytes, TraceResult] = {}
        merged = 0
        jobs = 0

        def merge(done: list[tuple[Source, list[tuple[Any, ...]]]]) -> None:
            nonlocal merged
            for _, rows in done[merged:]:
                for trace in _rows_to_traces(rows, len(plan.attributes), plan):
                    if trace.trace_id in found:
                        found[trace.trace_id].merge(trace)
                    else:
                        found[trace.trace_id] = trace
            merged = len(done)

        def enough(done: list[tuple[Source, list[tuple[Any, ...]]]], upcoming: Source) -> bool:
            """Sources come newest first: once ``limit`` traces started after everything the
            next source holds, no source left can put a trace among the newest ``limit``."""
            merge(done)
            if len(found) < limit:
                return False
            starts = sorted((t.start_ns for t in found.values()), reverse=True)
            return starts[limit - 1] > upcoming.end_unix_nano

        def told(done: list[tuple[Source, list[tuple[Any, ...]]]], every: list[Source]) -> None:
            nonlocal jobs
            jobs = len(every)
            if progress is None:
                return
            merge(done)
            # a trace that started after all the next source holds cannot be pushed out
            cutoff = every[len(done)].end_unix_nano if len(done) < len(every) else None
            settled = [
                trace_entry(t, spss)
                for t in _newest(found, limit)
                if cutoff is None or t.start_ns > cutoff
            ]
            progress(SearchProgress(settled, len(done), len(every), *_inspected(done)))

        # a trace's duration is a fact about all of it, like its structure
        whole = plan.whole_traces or (
            window.min_duration_ns is not None or window.max_duration_ns is not None
        )
        visited = self.sources.each(
            tenant, window.start_ns, window.end_ns, rows_of, enough, whole_traces=whole,
            progress=told,
        )  # fmt: skip
        merge(visited)
        newest = _newest(found, limit)
        for trace in newest:
            for ss in trace.spansets.values():
                ss.spans.sort(key=lambda s: int(s["startTimeUnixNano"]))
                del ss.spans[spss:]
        return SearchResult(newest, *_inspected(visited), max(jobs, len(visited)))

    async def search(
        self, tenant: str, plan: Plan, window: SearchWindow, limit: int, spss: int
    ) -> SearchResult:
        return await asyncio.to_thread(self._search, tenant, plan, window, limit, spss)

    async def stream(
        self, tenant: str, plan: Plan, window: SearchWindow, limit: int, spss: int
    ) -> AsyncIterator[SearchProgress | SearchResult]:
        """The search's progress after each round of sources, then its result."""
        run = partial(self._search, tenant, plan, window, limit, spss)
        async for step in with_progress(run):
            yield step


def _newest(found: dict[bytes, TraceResult], limit: int) -> list[TraceResult]:
    """The newest ``limit`` traces; traces that started together by trace id, as blocks
    order them."""
    return sorted(found.values(), key=lambda t: (t.start_ns, t.trace_id), reverse=True)[:limit]


def _inspected(done: list[tuple[Source, Any]]) -> tuple[int, int, int]:
    """(bytes, spans in blocks, blocks) of the sources searched."""
    nbytes = spans = blocks = 0
    for source, _ in done:
        nbytes += source.nbytes
        if source.block is not None:
            blocks += 1
            spans += source.block.meta.total_spans
    return nbytes, spans, blocks


class SearchError(Exception):
    """A search that failed while running; the message says why."""


def trace_entry(t: TraceResult, spss: int | None = None) -> dict[str, Any]:
    """A trace's entry in Tempo's SearchResponse JSON; with ``spss``, each spanset's first
    ``spss`` spans in time order (``t`` unchanged)."""
    spansets = []
    for ss in t.spansets.values():
        spans = ss.spans
        if spss is not None:
            spans = sorted(spans, key=lambda s: int(s["startTimeUnixNano"]))[:spss]
        doc: dict[str, Any] = {"spans": spans, "matched": ss.matched}
        if ss.labels:
            doc["attributes"] = ss.labels
        spansets.append(doc)
    entry: dict[str, Any] = {
        "traceID": t.trace_id.hex().lstrip("0") or "0",
        "rootServiceName": t.root_service or "<root span not yet received>",
        "startTimeUnixNano": str(t.start_ns),
    }
    if t.root_name:
        entry["rootTraceName"] = t.root_name
    duration_ms = t.duration_ns // 10**6
    if duration_ms:
        entry["durationMs"] = duration_ms
    if spansets:
        entry["spanSet"] = spansets[0]
        entry["spanSets"] = spansets
    return entry


def search_metrics(
    inspected_bytes: int,
    inspected_spans: int,
    total_blocks: int,
    completed_jobs: int,
    total_jobs: int,
) -> dict[str, Any]:
    """Tempo's SearchMetrics JSON."""
    return {
        "inspectedBytes": str(inspected_bytes),
        "inspectedSpans": str(inspected_spans),
        "totalBlocks": total_blocks,
        "completedJobs": completed_jobs,
        "totalJobs": total_jobs,
    }


def search_response(result: SearchResult) -> dict[str, Any]:
    """Tempo's SearchResponse JSON."""
    out: dict[str, Any] = {}
    if result.traces:
        out["traces"] = [trace_entry(t) for t in result.traces]
    out["metrics"] = search_metrics(
        result.inspected_bytes,
        result.inspected_spans,
        result.total_blocks,
        result.total_jobs,
        result.total_jobs,
    )
    return out
