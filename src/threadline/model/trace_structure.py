"""Per-trace facts and the span tree as columns, computed vectorised over many traces at once.

``add_trace_columns`` takes span rows sorted by trace id (then start time), or in any order
together with the permutation that sorts them so, and appends:

- ``trace_start_unix_nano``, ``trace_duration_nano``: the trace's first start and its extent;
- ``root_service_name``, ``root_span_name``: of the trace's root span (the earliest span with
  no parent), or ``""`` when the root has not arrived;
- ``nest_left``, ``nest_right``, ``nest_parent``: nested-set numbers of the span tree (per trace,
  from 1; a span's descendants are exactly the spans whose ``nest_left`` lies inside its
  ``(nest_left, nest_right)``; ``nest_parent`` is the parent's ``nest_left``, -1 for roots);
- ``child_count``: number of direct children.

A span whose parent is not in the trace counts as a root. Siblings are ordered by start time.
The work is done with numpy over all rows at once, never span by span in Python, and in
O(n log n) whatever the shape of the trees (a 200 k-span chain costs what a flat trace does).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from threadline.model.ids import run_starts, trace_id_words
from threadline.model.schema import TRACE_COLUMNS


def trace_groups(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """For rows sorted by trace id: each row's trace number and each trace's first row."""
    return _trace_numbers(trace_id_words(table.column("trace_id")))


def _trace_numbers(words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``trace_groups`` of ``trace_id_words`` in trace order."""
    starts = run_starts(words)
    trace_of = np.zeros(len(words), dtype=np.int64)
    trace_of[starts[1:]] = 1
    return np.cumsum(trace_of), starts


def _id_words(ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A fixed_size_binary(8) array as uint64 (nulls: any value; mask them)."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    buf = ids.buffers()[1]
    if buf is None:
        return np.zeros(len(ids), dtype=np.uint64)
    return np.frombuffer(buf, dtype=np.uint64, count=ids.offset + len(ids))[ids.offset :]


def _parent_rows(
    span_ids: np.ndarray, parent_ids: np.ndarray, has_parent: np.ndarray, trace_of: np.ndarray
) -> np.ndarray:
    """Row index of each span's parent within its trace, or -1 (ids as ``_id_words``).

    A sort-based join in numpy: (trace, span id) keys are made dense integers, sorted once,
    and every parent id is looked up by binary search (a hash join on ids is at the mercy of
    how the ids hash: sequential ids made Arrow's take a minute for 200 k spans)."""
    n = len(span_ids)
    words, dense = np.unique(np.concatenate([span_ids, parent_ids]), return_inverse=True)
    width = len(words)
    span_key = trace_of * width + dense[:n]
    parent_key = trace_of * width + dense[n:]
    # stable: of a span id used twice in a trace (Zipkin shared spans), the first row is the
    # parent
    order = np.argsort(span_key, kind="stable")
    sorted_keys = span_key[order]
    at = np.minimum(np.searchsorted(sorted_keys, parent_key), n - 1)
    found = has_parent & (sorted_keys[at] == parent_key)
    parent = np.where(found, order[at], -1)
    parent[parent == np.arange(n)] = -1  # a span that names itself as parent is a root
    return parent


def _jump_rounds(n: int) -> int:
    """Pointer-jumping rounds that cover a path of ``n`` steps."""
    return max(1, int(n).bit_length())


def _reachable(parent: np.ndarray) -> np.ndarray:
    """Which spans reach a root by following parents (the others hang in or off a cycle).

    Pointer jumping: every round doubles the distance looked up, so O(n log n) work in
    O(log n) numpy passes whatever the depth of the trees."""
    n = len(parent)
    up = np.append(np.where(parent >= 0, parent, n), n)  # n: "past a root"
    for _ in range(_jump_rounds(n)):
        nxt = up[up]
        if np.array_equal(nxt, up):
            break
        up = nxt
    return up[:n] == n


def _list_positions(succ: np.ndarray) -> np.ndarray:
    """Position of every element of one linked list ending in the sentinel ``len(succ) - 1``
    (which points to itself), by pointer jumping (list ranking)."""
    end = len(succ) - 1
    left = np.ones(len(succ), dtype=np.int64)  # elements from here to the end, so far
    left[end] = 0
    for _ in range(_jump_rounds(end)):
        if np.all(succ == end):
            break
        left = left + left[succ]
        succ = succ[succ]
    return end - left[:end]


def _nested_sets(
    parent: np.ndarray, trace_of: np.ndarray, first_row: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``nest_left``, ``nest_right``, ``nest_parent`` and child counts of the span forest.

    The nested-set numbers are the positions of the enter and exit events in an Euler tour
    (children and roots in row order, that is by start time); the tour is built as a linked
    list of 2n events and ranked by pointer jumping, so the cost does not depend on depth."""
    n = len(parent)
    parent = np.where(_reachable(parent), parent, -1)  # a cycle's spans become roots
    is_child = parent >= 0
    children = np.bincount(parent[is_child], minlength=n).astype(np.int64)

    # children grouped by parent, in row order: first child and next sibling links
    kids = np.flatnonzero(is_child)
    kids = kids[np.argsort(parent[kids], kind="stable")]
    first_child = np.full(n, -1, dtype=np.int64)
    next_sibling = np.full(n, -1, dtype=np.int64)
    if len(kids):
        same = parent[kids[1:]] == parent[kids[:-1]]
        next_sibling[kids[:-1][same]] = kids[1:][same]
        head = np.ones(len(kids), dtype=bool)
        head[1:] = ~same
        first_child[parent[kids[head]]] = kids[head]
    roots = np.flatnonzero(~is_child)
    next_root = np.full(n, -1, dtype=np.int64)
    next_root[roots[:-1]] = roots[1:]

    # events: enter v = v, exit v = n + v; 2n is the end of the tour
    end = 2 * n
    rows = np.arange(n)
    succ = np.empty(end + 1, dtype=np.int64)
    succ[:n] = np.where(first_child >= 0, first_child, n + rows)
    after_exit = np.where(is_child, n + parent, np.where(next_root >= 0, next_root, end))
    succ[n:end] = np.where(next_sibling >= 0, next_sibling, after_exit)
    succ[end] = end
    position = _list_positions(succ)
    base = np.minimum.reduceat(position[:n], first_row)[trace_of]
    left = position[:n] - base + 1
    right = position[n:] - base + 1
    nest_parent = np.where(is_child, left[np.maximum(parent, 0)], -1)
    return left, right, nest_parent, children


def add_trace_columns(table: pa.Table, order: np.ndarray | None = None) -> pa.Table:
    """``table`` with the ``TRACE_COLUMNS`` appended: its rows sorted by trace id, then start,
    or in any order when ``order`` is the permutation that sorts them so (the work is done on
    the key columns in that order and the results put back in the table's, so the wide columns
    are never moved)."""
    n = table.num_rows
    if n == 0:
        return pa.Table.from_arrays(
            [*table.columns, *(pa.array([], f.type) for f in TRACE_COLUMNS)],
            schema=pa.schema([*table.schema, *TRACE_COLUMNS]),
        )

    def sorted_(values: np.ndarray) -> np.ndarray:
        return values if order is None else values[order]

    def unsorted(values: np.ndarray) -> np.ndarray:
        if order is None:
            return values
        out = np.empty_like(values)
        out[order] = values
        return out

    trace_of, first_row = _trace_numbers(sorted_(trace_id_words(table.column("trace_id"))))
    parent_col = table.column("parent_span_id")
    has_parent = sorted_(pc.is_valid(parent_col).to_numpy(zero_copy_only=False))
    parent = _parent_rows(
        sorted_(_id_words(table.column("span_id"))),
        sorted_(_id_words(parent_col)),
        has_parent,
        trace_of,
    )
    left, right, nest_parent, children = _nested_sets(parent, trace_of, first_row)

    starts = sorted_(table.column("start_unix_nano").to_numpy())
    ends = starts + sorted_(table.column("duration_nano").to_numpy())
    trace_start = np.minimum.reduceat(starts, first_row)
    trace_end = np.maximum.reduceat(ends, first_row)
    candidate = np.where(has_parent, n, np.arange(n))
    root_row = np.minimum.reduceat(candidate, first_row)
    has_root = root_row < n
    root_take = pa.array(sorted_(np.arange(n))[np.where(has_root, root_row, 0)])
    root_service = pc.if_else(
        pa.array(has_root), pc.take(table.column("service_name"), root_take), ""
    )
    root_name = pc.if_else(pa.array(has_root), pc.take(table.column("name"), root_take), "")
    trace_of = unsorted(trace_of)
    per_row = pa.array(trace_of)
    columns = [
        pa.array(trace_start[trace_of]),
        pa.array((trace_end - trace_start)[trace_of]),
        pc.take(root_service, per_row),
        pc.take(root_name, per_row),
        pa.array(unsorted(left.astype(np.int32))),
        pa.array(unsorted(right.astype(np.int32))),
        pa.array(unsorted(nest_parent.astype(np.int32))),
        pa.array(unsorted(children.astype(np.int32))),
    ]
    columns = [c.cast(f.type) for c, f in zip(columns, TRACE_COLUMNS, strict=True)]
    return pa.Table.from_arrays(
        [*table.columns, *columns], schema=pa.schema([*table.schema, *TRACE_COLUMNS])
    )
