"""Dropping exact duplicate spans: same trace id, same span id and the same content.

Duplicates come from retried pushes (a client that did not see the acknowledgement) and from
replicated writes. Candidates are found with a vectorised group-by on (trace id, span id); only
the rows of groups with more than one row are compared field by field, in Python, so the cost
is proportional to the number of duplicates, not of spans. Two spans with one id but different
content (Zipkin's shared client/server spans) are both kept.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_KEYS = ["trace_id", "span_id"]


def drop_duplicate_spans(table: pa.Table) -> tuple[pa.Table, int]:
    """``table`` without exact duplicate rows (the first of each is kept) and how many went."""
    n = table.num_rows
    if n < 2:
        return table, 0
    rows = pa.array(np.arange(n, dtype=np.int64))
    keys = table.select(_KEYS).append_column("_row", rows)
    counts = keys.group_by(_KEYS).aggregate([("_row", "count")])
    repeated = counts.filter(pc.greater(counts.column("_row_count"), 1)).select(_KEYS)
    if repeated.num_rows == 0:
        return table, 0
    candidates = keys.join(repeated, keys=_KEYS, join_type="inner").column("_row")
    candidate_rows = np.sort(candidates.to_numpy())
    records = table.take(pa.array(candidate_rows)).to_pylist()
    seen: set[str] = set()
    drop = []
    for row, record in zip(candidate_rows.tolist(), records, strict=True):
        key = repr(record)  # every column, nested values included, in schema order
        if key in seen:
            drop.append(row)
        else:
            seen.add(key)
    if not drop:
        return table, 0
    keep = np.ones(n, dtype=bool)
    keep[drop] = False
    return table.filter(pa.array(keep)), len(drop)
