"""Trace facts and nested sets, checked against a plain recursive walk of random span trees and
against the previous (level by level) implementation, and their cost on a deep trace."""

from __future__ import annotations

import math
import random
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from threadline.model.trace_structure import add_trace_columns, trace_groups


def random_spans(rng: random.Random, traces: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for t in range(traces):
        trace_id = t.to_bytes(16, "big")
        n = rng.randint(1, 30)
        ids = [rng.randbytes(8) for _ in range(n)]
        for i in range(n):
            if i == 0:
                parent = None if rng.random() < 0.9 else rng.randbytes(8)  # root or orphan
            elif rng.random() < 0.05:
                parent = rng.randbytes(8)  # parent never arrived: counts as a root
            else:
                parent = ids[rng.randrange(i)]
            rows.append(
                {
                    "trace_id": trace_id,
                    "span_id": ids[i],
                    "parent_span_id": parent,
                    "name": f"op{i}",
                    "service_name": f"svc{i % 3}",
                    "start_unix_nano": 1000 + rng.randint(0, 500),
                    "duration_nano": rng.randint(1, 300),
                }
            )
    rows.sort(key=lambda r: (r["trace_id"], r["start_unix_nano"]))
    return rows


def reference(rows: list[dict[str, object]]) -> list[tuple[int, ...]]:
    """left, right, parent-left, child count per row by a recursive walk."""
    out: dict[int, tuple[int, ...]] = {}
    by_trace: dict[object, list[int]] = {}
    for i, r in enumerate(rows):
        by_trace.setdefault(r["trace_id"], []).append(i)
    for idxs in by_trace.values():
        first_of = {}
        for i in idxs:
            first_of.setdefault(rows[i]["span_id"], i)
        kids: dict[int, list[int]] = {i: [] for i in idxs}
        roots = []
        for i in idxs:
            p = first_of.get(rows[i]["parent_span_id"])
            if p is None or p == i:
                roots.append(i)
            else:
                kids[p].append(i)
        counter = [0]
        for r in roots:
            _walk(r, -1, kids, counter, out)
    return [out[i] for i in range(len(rows))]


def _walk(
    i: int, parent_left: int, kids: dict[int, list[int]], counter: list[int], out: dict
) -> None:
    counter[0] += 1
    left = counter[0]
    for k in kids[i]:
        _walk(k, left, kids, counter, out)
    counter[0] += 1
    out[i] = (left, counter[0], parent_left, len(kids[i]))


def test_nested_sets_and_trace_facts_match_a_recursive_walk() -> None:
    rng = random.Random(5)
    rows = random_spans(rng, 300)
    table = pa.Table.from_pylist(
        rows,
        schema=pa.schema(
            [
                ("trace_id", pa.binary(16)),
                ("span_id", pa.binary(8)),
                ("parent_span_id", pa.binary(8)),
                ("name", pa.string()),
                ("service_name", pa.string()),
                ("start_unix_nano", pa.int64()),
                ("duration_nano", pa.int64()),
            ]
        ),
    )
    out = add_trace_columns(table).to_pylist()
    expected = reference(rows)
    got = [(r["nest_left"], r["nest_right"], r["nest_parent"], r["child_count"]) for r in out]
    assert got == expected
    for r in out:
        same = [x for x in rows if x["trace_id"] == r["trace_id"]]
        start = min(x["start_unix_nano"] for x in same)
        end = max(x["start_unix_nano"] + x["duration_nano"] for x in same)
        assert (r["trace_start_unix_nano"], r["trace_duration_nano"]) == (start, end - start)
        roots = [x for x in same if x["parent_span_id"] is None]
        if roots:
            assert (r["root_service_name"], r["root_span_name"]) == (
                roots[0]["service_name"],
                roots[0]["name"],
            )
        else:
            assert (r["root_service_name"], r["root_span_name"]) == ("", "")


def test_rows_in_any_order_with_their_sorting_permutation_get_the_same_columns() -> None:
    rng = np.random.default_rng(3)
    for round_ in range(20):
        n = int(rng.integers(1, 400))
        table = _random_forest(rng, n, int(rng.integers(1, 8)))
        want = add_trace_columns(table)
        shuffle = rng.permutation(n)
        shuffled = table.take(pa.array(shuffle))
        if round_ % 2:
            cut = int(rng.integers(0, n + 1))
            shuffled = pa.concat_tables([shuffled.slice(0, cut), shuffled.slice(cut)])
        # shuffled row shuffle[i] is sorted row i: the sorted order is the inverse permutation
        got = add_trace_columns(shuffled, np.argsort(shuffle))
        assert got.take(pa.array(np.argsort(shuffle))).equals(want.combine_chunks()), round_


# The previous implementation (an Arrow hash join for parents, then level by level, O(n * depth)):
# the oracle for random forests, cycles and repeated span ids included, where the recursive walk
# above does not apply.
def _old_parent_rows(table: pa.Table) -> np.ndarray:
    n = table.num_rows
    rows = pa.array(np.arange(n, dtype=np.int64))
    spans = pa.table(
        {"trace_id": table.column("trace_id"), "span_id": table.column("span_id"), "p": rows}
    )
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
    parent[parent == np.arange(n)] = -1
    return parent


def _old_nested_sets(parent: np.ndarray, trace_of: np.ndarray) -> tuple[np.ndarray, ...]:
    n = len(parent)
    parent = parent.copy()
    depth = np.full(n, -1, dtype=np.int64)
    depth[parent < 0] = 0
    level = 0
    while True:
        frontier = (depth < 0) & (depth[np.maximum(parent, 0)] == level) & (parent >= 0)
        if not frontier.any():
            break
        level += 1
        depth[frontier] = level
    depth[depth < 0] = 0
    parent[depth == 0] = -1
    order = np.argsort(depth, kind="stable")
    levels = np.split(order, np.flatnonzero(np.diff(depth[order])) + 1)
    size = np.ones(n, dtype=np.int64)
    for nodes in reversed(levels[1:]):
        np.add.at(size, parent[nodes], size[nodes])
    children = np.zeros(n, dtype=np.int64)
    if len(levels) > 1:
        np.add.at(children, parent[np.concatenate(levels[1:])], 1)
    pre = np.zeros(n, dtype=np.int64)
    roots = levels[0]
    pre[roots] = _old_group_cumsum(size[roots], trace_of[roots])
    for nodes in levels[1:]:
        by_parent = nodes[np.argsort(parent[nodes], kind="stable")]
        offsets = _old_group_cumsum(size[by_parent], parent[by_parent])
        pre[by_parent] = pre[parent[by_parent]] + 1 + offsets
    left = 2 * pre - depth + 1
    right = left + 2 * size - 1
    nest_parent = np.where(parent >= 0, left[np.maximum(parent, 0)], -1)
    return left, right, nest_parent, children


def _old_group_cumsum(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    if len(values) == 0:
        return values
    exclusive = np.cumsum(values) - values
    new_group = np.ones(len(values), dtype=bool)
    new_group[1:] = groups[1:] != groups[:-1]
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(len(values)), 0))
    return exclusive - exclusive[group_start]


def _ids(values: np.ndarray, width: int) -> pa.Array:
    """fixed_size_binary(width) ids from non-negative integers (big-endian)."""
    raw = np.zeros((len(values), width), dtype=np.uint8)
    raw[:, -8:] = values.astype(">u8").view(np.uint8).reshape(-1, 8)
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), len(values), [None, pa.py_buffer(raw.tobytes())]
    )


def _forest(trace_of: np.ndarray, span: np.ndarray, parent: np.ndarray) -> pa.Table:
    """Rows (already in trace, start order) with span ids ``span`` and parent ids ``parent``
    (negative: no parent)."""
    n = len(span)
    parent_ids = _ids(np.maximum(parent, 0), 8)
    mask = pa.array(parent < 0)
    return pa.table(
        {
            "trace_id": _ids(trace_of, 16),
            "span_id": _ids(span, 8),
            "parent_span_id": pc.if_else(mask, pa.scalar(None, pa.binary(8)), parent_ids),
            "name": pa.array([f"op{i}" for i in range(n)]),
            "service_name": pa.array([f"svc{i % 5}" for i in range(n)]),
            "start_unix_nano": pa.array(np.arange(n, dtype=np.int64)),
            "duration_nano": pa.array(np.ones(n, dtype=np.int64)),
        }
    )


def _random_forest(rng: np.random.Generator, n: int, traces: int) -> pa.Table:
    trace_of = np.sort(rng.integers(0, traces, n))
    # span ids from a small range so that some repeat within a trace; parents point anywhere
    # in the range (earlier, later, themselves, missing), so cycles and orphans occur
    span = rng.integers(1, n // 2 + 2, n)
    parent = rng.integers(1, n // 2 + 2, n)
    parent[rng.random(n) < 0.1] = -1
    return _forest(trace_of, span, parent)


def test_nested_sets_match_the_previous_implementation_on_random_forests() -> None:
    rng = np.random.default_rng(11)
    for round_ in range(60):
        n = int(rng.integers(1, 400))
        table = _random_forest(rng, n, int(rng.integers(1, 8)))
        if round_ % 2:  # chunked columns, slices with offsets (as live data comes)
            cut = int(rng.integers(0, n + 1))
            table = pa.concat_tables([table.slice(0, cut), table.slice(cut)])
        out = add_trace_columns(table)
        trace_of, _ = trace_groups(table)
        want = _old_nested_sets(_old_parent_rows(table), trace_of)
        for name, expected in zip(
            ("nest_left", "nest_right", "nest_parent", "child_count"), want, strict=True
        ):
            got = out.column(name).to_numpy()
            assert np.array_equal(got, expected), (round_, name)


def test_deep_chain_and_wide_trace_match_the_previous_implementation() -> None:
    n = 3000
    rows = np.arange(1, n + 1)
    for parent in (rows - 1, np.where(rows == 1, 0, 1)):  # a chain, then one root's fan-out
        parent = np.where(parent == 0, -1, parent)
        table = _forest(np.zeros(n, dtype=np.int64), rows, parent)
        out = add_trace_columns(table)
        want = _old_nested_sets(_old_parent_rows(table), np.zeros(n, dtype=np.int64))
        assert np.array_equal(out.column("nest_left").to_numpy(), want[0])
        assert np.array_equal(out.column("nest_right").to_numpy(), want[1])


def _build_seconds(table: pa.Table) -> float:
    best = math.inf
    for _ in range(3):
        t0 = time.process_time()
        add_trace_columns(table)
        best = min(best, time.process_time() - t0)
    return best


def test_columns_of_a_deep_trace_cost_about_linear_time() -> None:
    # a 200 k-span chain (the worst shape: depth = size) against a 10 k one; quadratic work
    # made this ratio ~500, O(n log n) keeps it near the 20x of the sizes
    def chain(n: int) -> pa.Table:
        rows = np.arange(1, n + 1)
        return _forest(np.zeros(n, dtype=np.int64), rows, np.where(rows == 1, -1, rows - 1))

    small, big = chain(10_000), chain(200_000)
    out = add_trace_columns(big)
    assert out.column("nest_left")[199_999].as_py() == 200_000
    assert out.column("nest_right")[0].as_py() == 400_000
    ratio = _build_seconds(big) / max(_build_seconds(small), 1e-3)
    assert ratio < 100, ratio
