"""Fuzzes the TraceQL front end and both planners on any text (bytes read as UTF-8).

Parsing and validation raise only ``TraceQLError``, the planners only their query errors, tag
narrowing nothing; an accepted query prints to text that parses back to the same tree.
"""

from __future__ import annotations

from collections.abc import Iterator

from test_hostile_traceql import _SEEDS, check


def test_one_input(data: bytes) -> None:
    check(data.decode("utf-8", errors="replace"), memory=False)


def seeds() -> Iterator[bytes]:
    for query in _SEEDS:
        yield query.encode()
