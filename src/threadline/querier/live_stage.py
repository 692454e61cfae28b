"""The live stage of one tenant made queryable, kept up to date incrementally.

The live stage is the ingester's newest entries (one per push, until their traces go idle and
are cut), so every push changes it. Building it from scratch for a query (concatenate, work
out the trace columns, the dedicated columns and the attribute keys of every row) cost a
second of CPU per 500 k spans, paid again whenever a query found a push it had not seen. Here
each entry is prepared once (dedicated columns, block types, attribute keys), and an update
from one set of entries to the next recomputes the trace columns only of the traces that
changed: those with spans in the new entries or in entries that left the stage. The answer is
the same table a build from scratch gives (``build_live_table``, which also prepares the cut
entries that never change, sorted as blocks are), rows in entry order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, partial

import pyarrow as pa
import pyarrow.compute as pc

from threadline.ingester.ingester import Entry
from threadline.model.dedicated import add_dedicated_columns, attribute_keys
from threadline.model.schema import BLOCK_SCHEMA, DERIVED_COLUMNS, SPAN_SCHEMA, TRACE_COLUMNS
from threadline.model.trace_structure import add_trace_columns
from threadline.storage.block_writer import sort_spans, span_order

# what the trace columns are worked out from
_KEYS = [
    "trace_id",
    "span_id",
    "parent_span_id",
    "start_unix_nano",
    "duration_nano",
    "service_name",
    "name",
]
_PLAIN = pa.schema([*SPAN_SCHEMA, *DERIVED_COLUMNS])  # an entry's rows without trace columns
_SPAN_COLUMNS = len(SPAN_SCHEMA)
_NO_KEYS = attribute_keys(BLOCK_SCHEMA.empty_table())


def _plain(entry: Entry) -> pa.Table:
    return add_dedicated_columns(entry.table.select(SPAN_SCHEMA.names)).cast(_PLAIN)


def _with_trace(plain: pa.Table, trace: Sequence[pa.Array | pa.ChunkedArray]) -> pa.Table:
    columns = plain.columns
    return pa.Table.from_arrays(
        [*columns[:_SPAN_COLUMNS], *trace, *columns[_SPAN_COLUMNS:]], schema=BLOCK_SCHEMA
    )


def _traced(plain: pa.Table, ordered: bool) -> pa.Table:
    if ordered:
        plain = sort_spans(plain)
        traced = add_trace_columns(plain.select(_KEYS))
    else:
        traced = add_trace_columns(plain.select(_KEYS), span_order(plain))
    return _with_trace(plain, traced.columns[len(_KEYS) :])


def build_live_table(entries: Sequence[Entry], ordered: bool = False) -> pa.Table:
    """The entries' rows with the block columns, built from scratch: in entry order, or with
    ``ordered`` in a block's order (``sort_spans``: worth it for entries that never change)."""
    if not entries:
        return BLOCK_SCHEMA.empty_table()
    return _traced(pa.concat_tables([_plain(e) for e in entries]), ordered)


def block_rows(spans: pa.Table) -> pa.Table:
    """Span rows (``SPAN_SCHEMA``) with the block columns, in a block's order."""
    return _traced(add_dedicated_columns(spans).cast(_PLAIN), ordered=True)


def unique_trace_ids(table: pa.Table) -> pa.Array:
    """The distinct trace ids of a table's rows."""
    return pc.unique(table.column("trace_id").combine_chunks())


@dataclass(slots=True)
class _Part:
    """One entry made queryable: its rows with every block column, and its attribute keys."""

    plain: pa.Table
    table: pa.Table
    keys: dict[str, list[str]]
    ids: pa.Array | None = None  # its distinct trace ids, once asked for

    def trace_ids(self) -> pa.Array:
        if self.ids is None:
            self.ids = unique_trace_ids(self.plain)
        return self.ids


def _stage_ids(parts: Sequence[_Part]) -> pa.Array:
    if not parts:
        return pa.array([], pa.binary(16))
    return pc.unique(pa.chunked_array([p.trace_ids() for p in parts]).combine_chunks())


class LiveStage:
    """One tenant's live stage as last built; ``update`` brings it to another set of entries
    (callers hold ``lock`` around it and around what they derive from its answer). The parts of
    entries that left are dropped by the next update."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._parts: dict[int, _Part] = {}
        self._seqs: tuple[int, ...] | None = None
        self._table = BLOCK_SCHEMA.empty_table()
        self._keys: dict[str, list[str]] = dict(_NO_KEYS)
        self._ordered: list[_Part] = []

    def trace_ids(self) -> Callable[[], pa.Array]:
        """The distinct trace ids of the stage as last updated, worked out when first called
        (from each entry's, which are kept)."""
        return cache(partial(_stage_ids, list(self._ordered)))

    def update(self, entries: Sequence[Entry]) -> tuple[pa.Table, dict[str, list[str]], bool]:
        """The stage for ``entries`` (in this order): its table, the distinct keys of each
        attribute map column, and whether it differs from the last update's."""
        seqs = tuple(e.seq for e in entries)
        if seqs == self._seqs:
            return self._table, self._keys, False
        self._apply(entries)
        self._seqs = seqs
        return self._table, self._keys, True

    def _apply(self, entries: Sequence[Entry]) -> None:
        wanted = {e.seq for e in entries}
        old = self._parts
        kept = {seq: part for seq, part in old.items() if seq in wanted}
        gone = [part for seq, part in old.items() if seq not in wanted]
        new = [e for e in entries if e.seq not in kept]
        fresh = {e.seq: _plain(e) for e in new}

        # traces whose rows changed: their trace columns are worked out again, wherever their
        # rows are; the other kept entries keep theirs
        changed = [p.column("trace_id") for p in fresh.values()]
        changed += [p.plain.column("trace_id") for p in gone]
        touched: dict[int, pa.Array] = {}
        if changed and kept:
            ids = pc.unique(pa.chunked_array([c for col in changed for c in col.chunks]))
            order = list(kept)
            mask = pc.is_in(
                pa.chunked_array([c for s in order for c in kept[s].plain["trace_id"].chunks]),
                value_set=ids,
            )
            offset = 0
            for seq in order:
                n = kept[seq].plain.num_rows
                part_mask = mask.slice(offset, n)
                offset += n
                if pc.any(part_mask).as_py():
                    touched[seq] = part_mask.combine_chunks()

        pieces = [p.select(_KEYS) for p in fresh.values()]
        pieces += [kept[s].plain.select(_KEYS).filter(m) for s, m in touched.items()]
        parts = dict(kept)
        if pieces:
            keys = pa.concat_tables(pieces)
            traced = add_trace_columns(keys, span_order(keys)).columns[len(_KEYS) :]
            offset = 0
            for seq, plain in fresh.items():
                n = plain.num_rows
                trace = [c.slice(offset, n) for c in traced]
                offset += n
                parts[seq] = _Part(plain, _with_trace(plain, trace), attribute_keys(plain))
            for seq, mask in touched.items():
                part = kept[seq]
                n = pc.sum(mask).as_py()
                trace = [
                    pc.replace_with_mask(
                        part.table.column(f.name).combine_chunks(),
                        mask,
                        c.slice(offset, n).combine_chunks(),
                    )
                    for f, c in zip(TRACE_COLUMNS, traced, strict=True)
                ]
                offset += n
                parts[seq] = _Part(part.plain, _with_trace(part.plain, trace), part.keys, part.ids)
        self._parts = parts
        ordered = self._ordered = [parts[e.seq] for e in entries]
        self._table = (
            pa.concat_tables([p.table for p in ordered]) if ordered else BLOCK_SCHEMA.empty_table()
        )
        merged: dict[str, set[str]] = {column: set() for column in _NO_KEYS}
        for p in ordered:
            for column, names in p.keys.items():
                merged.setdefault(column, set()).update(names)
        self._keys = {column: sorted(names) for column, names in merged.items()}
