"""Trace facts and nested sets, checked against a plain recursive walk of random span trees."""

from __future__ import annotations

import random

import pyarrow as pa

from threadline.model.trace_structure import add_trace_columns


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
