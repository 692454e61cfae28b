"""Service dependencies and the service graph, computed from stored spans over a window.

An edge is a parent/child span pair whose services differ (what Jaeger's and Zipkin's
dependency views show); its latency is the child span's. A client or producer span with no
child span called something that sends no spans (a database, a third-party API): its edge goes
to the peer its first peer attribute names (``peer.service``, which holds Zipkin's remote
service, then the database attributes, as for the generator's virtual nodes), with the client
span's latency. A node's requests are its server and consumer spans plus its root spans.
Latencies are kept as log2 histograms so that blocks and live data merge before quantiles are
estimated.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from threadline.querier.sources import DataSources, Source, SourceCursor
from threadline.traceql.sql import attr, bucket_sql


@dataclass(slots=True)
class Stats:
    calls: int = 0
    errors: int = 0  # calls whose (child) span failed
    latency: Counter[int] = field(default_factory=Counter)  # log2 buckets of nanoseconds

    def add(self, calls: int, errors: int, bucket: int) -> None:
        self.calls += calls
        self.errors += errors
        self.latency[bucket] += calls


@dataclass(slots=True)
class ServiceGraph:
    nodes: dict[str, Stats]
    edges: dict[tuple[str, str], Stats]


def _window(start_ns: int, end_ns: int) -> str:
    return f"start_unix_nano BETWEEN {int(start_ns)} AND {int(end_ns)}"


_DEFAULT_PEERS = ("peer.service", "db.name", "db.system", "db.system.name")


class DependencyFinder:
    def __init__(
        self, sources: DataSources, peer_attributes: Sequence[str] = _DEFAULT_PEERS
    ) -> None:
        self.sources = sources
        peers = [f"nullif({attr('span', 'str', key)}, '')" for key in peer_attributes]
        self._peer_sql = f"coalesce({', '.join(peers)})" if peers else "NULL"

    def _graph(self, tenant: str, start_ns: int, end_ns: int, nodes: bool) -> ServiceGraph:
        def rows_of(con: SourceCursor, source: Source) -> tuple[list[Any], list[Any]]:
            spans = (
                "SELECT trace_id, span_id, parent_span_id, service_name, status_code, kind, "
                f"duration_nano, {self._peer_sql} AS peer "
                f"FROM {source.relation} WHERE {_window(start_ns, end_ns)}"
            )
            edge_rows = con.sql(
                f"""
                WITH s AS ({spans})
                SELECT p.service_name, c.service_name, {bucket_sql("c.duration_nano")},
                       count(*), count(*) FILTER (WHERE c.status_code = 2)
                FROM s c JOIN s p ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id
                WHERE p.service_name <> c.service_name
                GROUP BY ALL
                UNION ALL
                SELECT c.service_name, c.peer, {bucket_sql("c.duration_nano")},
                       count(*), count(*) FILTER (WHERE c.status_code = 2)
                FROM s c ANTI JOIN s k ON k.trace_id = c.trace_id AND k.parent_span_id = c.span_id
                WHERE c.kind IN (3, 4) AND c.peer IS NOT NULL AND c.peer <> c.service_name
                GROUP BY ALL
                """
            ).fetchall()
            if not nodes:
                return edge_rows, []
            node_rows = con.sql(
                f"""
                SELECT service_name, {bucket_sql("duration_nano")}, count(*),
                       count(*) FILTER (WHERE status_code = 2)
                FROM ({spans}) WHERE kind IN (2, 5) OR parent_span_id IS NULL
                GROUP BY ALL
                """
            ).fetchall()
            return edge_rows, node_rows

        graph = ServiceGraph({}, {})
        for _, (edge_rows, node_rows) in self.sources.each(tenant, start_ns, end_ns, rows_of):
            for parent, child, bucket, calls, errors in edge_rows:
                graph.edges.setdefault((parent, child), Stats()).add(calls, errors, bucket)
            for service, bucket, calls, errors in node_rows:
                graph.nodes.setdefault(service, Stats()).add(calls, errors, bucket)
        if nodes:
            for parent, child in graph.edges:  # every service on an edge is a node
                graph.nodes.setdefault(parent, Stats())
                graph.nodes.setdefault(child, Stats())
        return graph

    async def edges(self, tenant: str, start_ns: int, end_ns: int) -> dict[tuple[str, str], Stats]:
        """(parent service, child service) → calls, failed calls and latency in the window."""
        graph = await asyncio.to_thread(self._graph, tenant, start_ns, end_ns, False)
        return graph.edges

    async def graph(self, tenant: str, start_ns: int, end_ns: int) -> ServiceGraph:
        """Nodes (services) and edges with their request counts, errors and latencies."""
        return await asyncio.to_thread(self._graph, tenant, start_ns, end_ns, True)
