"""Service dependencies: calls between services, counted from parent/child span pairs whose
services differ (what Jaeger's and Zipkin's dependency views show)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from threadline.querier.sources import DataSources


@dataclass(slots=True)
class Edge:
    calls: int = 0
    errors: int = 0  # calls whose child span failed


class DependencyFinder:
    def __init__(self, sources: DataSources) -> None:
        self.sources = sources

    def _edges(self, tenant: str, start_ns: int, end_ns: int) -> dict[tuple[str, str], Edge]:
        con = self.sources.connect()
        try:
            edges: dict[tuple[str, str], Edge] = {}
            for source in self.sources.open(con, tenant, start_ns, end_ns):
                rows = con.sql(
                    f"""
                    WITH s AS NOT MATERIALIZED (
                      SELECT trace_id, span_id, parent_span_id, service_name, status_code,
                             start_unix_nano
                      FROM {source.relation}
                      WHERE start_unix_nano BETWEEN {int(start_ns)} AND {int(end_ns)}
                    )
                    SELECT p.service_name, c.service_name, count(*),
                           count(*) FILTER (WHERE c.status_code = 2)
                    FROM s c JOIN s p ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id
                    WHERE p.service_name <> c.service_name
                    GROUP BY 1, 2
                    """
                ).fetchall()
                for parent, child, calls, errors in rows:
                    edge = edges.setdefault((parent, child), Edge())
                    edge.calls += calls
                    edge.errors += errors
            return edges
        finally:
            con.close()

    async def edges(self, tenant: str, start_ns: int, end_ns: int) -> dict[tuple[str, str], Edge]:
        """(parent service, child service) → calls (and failed calls) in the window."""
        return await asyncio.to_thread(self._edges, tenant, start_ns, end_ns)
