"""A TraceQL metrics answer's series, and the refusal of an answer with too many of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Series:
    labels: list[dict[str, Any]]
    points: dict[int, float]  # bucket end (unix ms) → value
    exemplars: list[dict[str, Any]] = field(default_factory=list)


class TooManySeries(Exception):
    """A metrics query that would answer with more series than the limit allows."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the query would produce more than {limit} series (querier.max_metrics_series): "
            f"group by fewer or coarser attributes, or select fewer spans"
        )
        self.limit = limit
