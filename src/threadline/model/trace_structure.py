"""Per-trace facts and the span tree as columns, computed vectorised over many traces at once.

``add_trace_columns`` takes span rows sorted by trace id (then start time) and appends:

- ``trace_start_unix_nano``, ``trace_duration_nano``: the trace's first start and its extent;
- ``root_service_name``, ``root_span_name``: of the trace's root span (the earliest span with
  no parent), or ``""`` when the root has not arrived;
- ``nest_left``, ``nest_right``, ``nest_parent``: nested-set numbers of the span tree (per trace,
  from 1; a span's descendants are exactly the spans whose ``nest_left`` lies inside its
  ``(nest_left, nest_right)``; ``nest_parent`` is the parent's ``nest_left``, -1 for roots);
- ``child_count``: number of direct children.

A span whose parent is not in the trace counts as a root. Siblings are ordered by start time.
The work is done level by level of the trees with numpy, never span by span in Python.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from threadline.model.ids import trace_id_words
from threadline.model.schema import TRACE_COLUMNS


def trace_groups(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """For rows sorted by trace id: each row's trace number and each trace's first row."""
    words = trace_id_words(table.column("trace_id"))
    changed = np.ones(len(words), dtype=bool)
    if len(words) > 1:
        changed[1:] = np.any(words[1:] != words[:-1], axis=1)
    starts = np.flatnonzero(changed)
    return np.cumsum(changed) - 1, starts


def _parent_rows(table: pa.Table) -> np.ndarray:
    """Row index of each span's parent within its trace, or -1."""
    n = table.num_rows
    rows = pa.array(np.arange(n, dtype=np.int64))
    spans = pa.table(
        {"trace_id": table.column("trace_id"), "span_id": table.column("span_id"), "p": rows}
    )
    # a span id used twice in a trace (Zipkin shared spans): the first row is the parent
    spans = spans.group_by(["trace_id", "span_id"]).aggregate([("p", "min")])
    children = pa.table(
        {
            "trace_id": table.column("trace_id"),
            "span_id": table.column("parent_span_id"),
            "c": rows,
        }
    ).filter(pc.is_valid(table.column("parent_span_id")))
    joined = children.join(spans, keys=["trace_id", "span_id"], join_type="inner")
    parent = np.full(n, -1, dtype=np.int64)
    parent[joined.column("c").to_numpy()] = joined.column("p_min").to_numpy()
    parent[parent == np.arange(n)] = -1  # a span that names itself as parent is a root
    return parent


def _depths(parent: np.ndarray) -> np.ndarray:
    n = len(parent)
    depth = np.full(n, -1, dtype=np.int64)
    depth[parent < 0] = 0
    level = 0
    while True:
        frontier = (depth < 0) & (depth[np.maximum(parent, 0)] == level) & (parent >= 0)
        if not frontier.any():
            break
        level += 1
        depth[frontier] = level
    depth[depth < 0] = 0  # spans in a parent cycle: treated as roots
    return depth


def add_trace_columns(table: pa.Table) -> pa.Table:
    """``table`` (sorted by trace id, then start) with the ``TRACE_COLUMNS`` appended."""
    n = table.num_rows
    if n == 0:
        return pa.Table.from_arrays(
            [*table.columns, *(pa.array([], f.type) for f in TRACE_COLUMNS)],
            schema=pa.schema([*table.schema, *TRACE_COLUMNS]),
        )
    trace_of, first_row = trace_groups(table)
    parent = _parent_rows(table)
    depth = _depths(parent)
    # a parent inside a cycle was made a root above; cut that link too
    parent[depth == 0] = -1

    order = np.argsort(depth, kind="stable")  # by depth, rows (= start order) kept in order
    by_depth = depth[order]
    bounds = np.flatnonzero(np.diff(by_depth)) + 1
    levels = np.split(order, bounds)

    size = np.ones(n, dtype=np.int64)
    for nodes in reversed(levels[1:]):
        np.add.at(size, parent[nodes], size[nodes])
    children = np.zeros(n, dtype=np.int64)
    if len(levels) > 1:
        np.add.at(children, parent[np.concatenate(levels[1:])], 1)

    pre = np.zeros(n, dtype=np.int64)
    # roots: consecutive blocks of preorder numbers in each trace, in start order
    roots = levels[0]
    group_of = trace_of[roots] if len(levels) else roots
    pre[roots] = _exclusive_group_cumsum(size[roots], group_of)
    for nodes in levels[1:]:
        par = parent[nodes]
        by_parent = nodes[np.argsort(par, kind="stable")]
        offsets = _exclusive_group_cumsum(size[by_parent], parent[by_parent])
        pre[by_parent] = pre[parent[by_parent]] + 1 + offsets

    left = 2 * pre - depth + 1
    right = left + 2 * size - 1
    nest_parent = np.where(parent >= 0, left[np.maximum(parent, 0)], -1)

    starts = table.column("start_unix_nano").to_numpy()
    ends = starts + table.column("duration_nano").to_numpy()
    trace_start = np.minimum.reduceat(starts, first_row)
    trace_end = np.maximum.reduceat(ends, first_row)
    is_root = pc.is_null(table.column("parent_span_id")).to_numpy(zero_copy_only=False)
    candidate = np.where(is_root, np.arange(n), n)
    root_row = np.minimum.reduceat(candidate, first_row)
    has_root = root_row < n
    root_take = pa.array(np.where(has_root, root_row, 0))
    root_service = pc.if_else(
        pa.array(has_root), pc.take(table.column("service_name"), root_take), ""
    )
    root_name = pc.if_else(pa.array(has_root), pc.take(table.column("name"), root_take), "")
    per_row = pa.array(trace_of)
    columns = [
        pa.array(trace_start[trace_of]),
        pa.array((trace_end - trace_start)[trace_of]),
        pc.take(root_service, per_row),
        pc.take(root_name, per_row),
        pa.array(left.astype(np.int32)),
        pa.array(right.astype(np.int32)),
        pa.array(nest_parent.astype(np.int32)),
        pa.array(children.astype(np.int32)),
    ]
    columns = [c.cast(f.type) for c, f in zip(columns, TRACE_COLUMNS, strict=True)]
    return pa.Table.from_arrays(
        [*table.columns, *columns], schema=pa.schema([*table.schema, *TRACE_COLUMNS])
    )


def _exclusive_group_cumsum(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Running sum of ``values`` before each element, restarting where ``groups`` changes
    (``groups`` must be grouped: equal values adjacent)."""
    if len(values) == 0:
        return values
    total = np.cumsum(values)
    exclusive = total - values
    new_group = np.ones(len(values), dtype=bool)
    new_group[1:] = groups[1:] != groups[:-1]
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(len(values)), 0))
    return exclusive - exclusive[group_start]
