"""The service-graphs processor: Tempo's ``traces_service_graph_*`` edges from span rows.

Owns: pairing client/producer spans (key: trace id + span id) with server/consumer spans (key:
trace id + parent span id) as Tempo does, but batch-wise: database client spans (any of
``database_name_attributes``) are complete edges at once; the rest of a batch is first paired
within itself with a numpy join on the 24-byte keys; only the leftovers are looked up in (and
otherwise added to) the bounded store of pending halves, which ``expire`` sweeps after ``wait``.
An expired half becomes a virtual-node edge when Tempo would make one (a root server span: the
client is its peer attribute or ``user``; a client span with a peer attribute: that is the
server), else it is dropped; every expired half counts in
``traces_service_graph_unpaired_spans_total{client,server}`` (the side that never came is "").
A span that finds the store full is dropped and counted in
``traces_service_graph_dropped_spans_total{client,server}``.

Completed edges of a batch (or a sweep) are grouped by their labels with Arrow/numpy and added
to ``traces_service_graph_request_total``, ``..._request_failed_total`` (only when failed) and
the ``..._request_server_seconds`` / ``..._request_client_seconds`` histograms, with the trace id
as exemplar. Dimensions take the client span's value, or the server span's when it has one.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from threadline.config import ServiceGraphsProcessorConfig
from threadline.generator.attributes import Found, dimension_label, first_of, lookup
from threadline.generator.registry import Groups, Registry, fixed_width_bytes, group_rows

REQUEST_TOTAL = "traces_service_graph_request_total"
REQUEST_FAILED_TOTAL = "traces_service_graph_request_failed_total"
REQUEST_SERVER_SECONDS = "traces_service_graph_request_server_seconds"
REQUEST_CLIENT_SECONDS = "traces_service_graph_request_client_seconds"
UNPAIRED_SPANS_TOTAL = "traces_service_graph_unpaired_spans_total"
DROPPED_SPANS_TOTAL = "traces_service_graph_dropped_spans_total"
EDGE_LABELS = ("client", "server", "connection_type")

DATABASE = "database"
MESSAGING = "messaging_system"
VIRTUAL_NODE = "virtual_node"
USER = "user"

KIND_SERVER, KIND_CLIENT, KIND_PRODUCER, KIND_CONSUMER = 2, 3, 4, 5
# a database edge's server is the first of these found (then host:port, then the db name)
PEER_SERVICE, SERVER_ADDRESS = "peer.service", "server.address"
NET_PEER_ADDRESS, NET_PEER_PORT = "network.peer.address", "network.peer.port"


class Incrementable(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class _Uncounted:
    def inc(self, amount: float = 1) -> None:
        pass


@dataclass
class GraphStats:
    """Self-metrics hooks (prometheus_client counter children in the server)."""

    edges: Incrementable = field(default_factory=_Uncounted)
    expired_client: Incrementable = field(default_factory=_Uncounted)
    expired_server: Incrementable = field(default_factory=_Uncounted)
    dropped_spans: Incrementable = field(default_factory=_Uncounted)


@dataclass(slots=True)
class Half:
    """One side of an edge waiting for the other."""

    is_client: bool
    service: str
    latency: float
    failed: bool
    messaging: bool
    dims: tuple[str | None, ...]
    peer: str | None
    trace_id: bytes
    root: bool
    deadline: float


@dataclass(slots=True)
class _EdgeRows:
    """Completed edges built one by one (store hits, virtual nodes)."""

    client: list[str] = field(default_factory=list)
    server: list[str] = field(default_factory=list)
    conn: list[str] = field(default_factory=list)
    dims: list[tuple[str | None, ...]] = field(default_factory=list)
    failed: list[bool] = field(default_factory=list)
    client_latency: list[float] = field(default_factory=list)
    server_latency: list[float] = field(default_factory=list)
    trace_id: list[bytes] = field(default_factory=list)

    def add(
        self,
        client: Half | None,
        server: Half | None,
        client_name: str,
        server_name: str,
        conn: str,
    ) -> None:
        ref = client if client is not None else server
        assert ref is not None
        self.client.append(client_name)
        self.server.append(server_name)
        self.conn.append(conn)
        if client is not None and server is not None:
            dims = tuple(
                s if s is not None else c for c, s in zip(client.dims, server.dims, strict=True)
            )
        else:
            dims = ref.dims
        self.dims.append(dims)
        self.failed.append(bool((client and client.failed) or (server and server.failed)))
        self.client_latency.append(client.latency if client is not None else 0.0)
        self.server_latency.append(server.latency if server is not None else 0.0)
        self.trace_id.append(ref.trace_id)


@dataclass(slots=True)
class _EdgeArrays:
    client: pa.Array
    server: pa.Array
    conn: pa.Array
    dims: list[pa.Array]
    failed: np.ndarray
    client_latency: np.ndarray
    server_latency: np.ndarray
    trace_id: np.ndarray  # (n, 16) uint8

    @staticmethod
    def from_rows(rows: _EdgeRows, ndims: int) -> _EdgeArrays:
        dims = list(zip(*rows.dims, strict=True)) if ndims else []
        return _EdgeArrays(
            pa.array(rows.client, pa.string()),
            pa.array(rows.server, pa.string()),
            pa.array(rows.conn, pa.string()),
            [pa.array(list(d), pa.string()) for d in dims],
            np.asarray(rows.failed, dtype=bool),
            np.asarray(rows.client_latency, dtype=np.float64),
            np.asarray(rows.server_latency, dtype=np.float64),
            np.frombuffer(b"".join(rows.trace_id), dtype=np.uint8).reshape(-1, 16),
        )

    @staticmethod
    def concat(parts: Sequence[_EdgeArrays], ndims: int) -> _EdgeArrays:
        if len(parts) == 1:
            return parts[0]
        return _EdgeArrays(
            pa.concat_arrays([p.client for p in parts]),
            pa.concat_arrays([p.server for p in parts]),
            pa.concat_arrays([p.conn for p in parts]),
            [pa.concat_arrays([p.dims[i] for p in parts]) for i in range(ndims)],
            np.concatenate([p.failed for p in parts]),
            np.concatenate([p.client_latency for p in parts]),
            np.concatenate([p.server_latency for p in parts]),
            np.concatenate([p.trace_id for p in parts]),
        )


_MIX_A = np.uint64(0x9E3779B97F4A7C15)
_MIX_B = np.uint64(0xC2B2AE3D27D4EB4F)


class _Side:
    """The client (or server) spans of a batch with what pairing needs, column-wise. ``ids``
    holds each span's own id (clients) or its parent's id (servers); ``hashes`` mixes them with
    the trace id into one uint64 for the in-batch join."""

    def __init__(
        self,
        batch: pa.RecordBatch,
        trace: np.ndarray,
        rows: np.ndarray,
        ids: np.ndarray,
        dims: Sequence[pa.Array],
        peer: pa.Array,
        messaging: np.ndarray,
    ) -> None:
        self.rows = rows
        self.trace_id = trace[rows]
        self.ids = np.ascontiguousarray(ids)
        words = np.ascontiguousarray(self.trace_id).view(np.uint64)
        with np.errstate(over="ignore"):
            self.hashes = (
                self.ids.view(np.uint64).reshape(-1)
                ^ (words[:, 0] * _MIX_A)
                ^ (words[:, 1] * _MIX_B)
            )
        take = pa.array(rows)
        self.service = batch.column("service_name").take(take)
        durations = batch.column("duration_nano").to_numpy(zero_copy_only=False)[rows]
        self.latency = np.maximum(durations, 0) / 1e9
        self.failed = batch.column("status_code").to_numpy(zero_copy_only=False)[rows] == 2
        self.dims = list(dims)
        self.peer = peer
        self.messaging = messaging
        self.root = ~batch.column("parent_span_id").is_valid().to_numpy(zero_copy_only=False)[rows]

    def __len__(self) -> int:
        return len(self.rows)

    def keys(self, positions: np.ndarray) -> list[bytes]:
        """The store keys (trace id + span or parent id) of some rows. Made through numpy's
        fixed-width bytes, which drop trailing zero bytes: still one key per 24-byte value."""
        joined = np.concatenate([self.trace_id[positions], self.ids[positions]], axis=1)
        keys: list[bytes] = np.ascontiguousarray(joined).view("S24").reshape(-1).tolist()
        return keys

    def halves(self, positions: np.ndarray, is_client: bool, deadline: float) -> list[Half]:
        """Python objects for a few rows (store inserts and store hits only)."""
        sel = pa.array(positions)
        services = self.service.take(sel).to_pylist()
        traces = [self.trace_id[i].tobytes() for i in positions.tolist()]
        peers = self.peer.take(sel).to_pylist()
        dims = [d.take(sel).to_pylist() for d in self.dims]
        dim_rows = list(zip(*dims, strict=True)) if dims else [()] * len(positions)
        latency = self.latency[positions].tolist()
        failed = self.failed[positions].tolist()
        messaging = self.messaging[positions].tolist()
        root = self.root[positions].tolist()
        return [
            Half(is_client, *fields, deadline)
            for fields in zip(
                services, latency, failed, messaging, dim_rows, peers, traces, root, strict=True
            )
        ]


def _pair_within(clients: _Side, servers: _Side) -> tuple[np.ndarray, np.ndarray]:
    """Positions (client, server) of the pairs inside one batch: a server whose parent is the
    client (same trace). A client pairs once, with the first such server; the first of
    repeated client keys is the one that pairs."""
    if len(clients) == 0 or len(servers) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    order = np.argsort(clients.hashes, kind="stable")
    ordered = clients.hashes[order]
    at = np.minimum(np.searchsorted(ordered, servers.hashes), len(ordered) - 1)
    si = np.flatnonzero(ordered[at] == servers.hashes)
    ci = order[at[si]]
    same = (clients.trace_id[ci] == servers.trace_id[si]).all(axis=1) & (
        clients.ids[ci] == servers.ids[si]
    ).all(axis=1)
    ci, si = ci[same], si[same]
    if len(ci) > 1:
        ci, first = np.unique(ci, return_index=True)  # servers come in order: first one wins
        si = si[first]
    return ci, si


class ServiceGraphsProcessor:
    def __init__(
        self,
        cfg: ServiceGraphsProcessorConfig,
        registry: Registry,
        stats: GraphStats | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = cfg
        self.stats = stats or GraphStats()
        self.clock = clock
        self.dimensions = list(cfg.dimensions)
        self.dimension_labels = [dimension_label(d, EDGE_LABELS) for d in self.dimensions]
        labels = (*EDGE_LABELS, *self.dimension_labels)
        buckets = cfg.histogram_buckets
        self.request_total = registry.counter(REQUEST_TOTAL, "Requests between services.", labels)
        self.request_failed_total = registry.counter(
            REQUEST_FAILED_TOTAL, "Failed requests between services.", labels
        )
        self.server_seconds = registry.histogram(
            REQUEST_SERVER_SECONDS, "Server-side request durations in seconds.", labels, buckets
        )
        self.client_seconds = registry.histogram(
            REQUEST_CLIENT_SECONDS, "Client-side request durations in seconds.", labels, buckets
        )
        self.unpaired = registry.counter(
            UNPAIRED_SPANS_TOTAL, "Spans whose counterpart never arrived.", ("client", "server")
        )
        self.dropped = registry.counter(
            DROPPED_SPANS_TOTAL,
            "Spans dropped because the edge store was full.",
            ("client", "server"),
        )
        self.pending: dict[bytes, Half] = {}
        self._deadlines: deque[tuple[float, bytes]] = deque()
        self._db_keys = list(dict.fromkeys(cfg.database_name_attributes))
        server_names = [PEER_SERVICE, SERVER_ADDRESS, NET_PEER_ADDRESS, NET_PEER_PORT]
        self._lookup_keys = [*self.dimensions, *self._db_keys, *server_names, *cfg.peer_attributes]

    # -- one batch -------------------------------------------------------------------------

    def consume(self, batch: pa.RecordBatch, now: float) -> None:
        n = batch.num_rows
        if n == 0:
            return
        kind = batch.column("kind").to_numpy(zero_copy_only=False)
        named = pc.not_equal(batch.column("service_name"), "").to_numpy(zero_copy_only=False)
        client_rows = np.flatnonzero(((kind == KIND_CLIENT) | (kind == KIND_PRODUCER)) & named)
        server_rows = np.flatnonzero(((kind == KIND_SERVER) | (kind == KIND_CONSUMER)) & named)
        if len(client_rows) == 0 and len(server_rows) == 0:
            return
        trace = fixed_width_bytes(batch.column("trace_id"), 16)
        found = lookup(batch, self._lookup_keys)
        peer = first_of([found.get(k, ("span",)) for k in self.cfg.peer_attributes], n)
        dims = [found.get(d) for d in self.dimensions]
        parts: list[_EdgeArrays] = []

        clients = self._clients(batch, client_rows, trace, kind, found, peer, dims, parts)
        take = pa.array(server_rows)
        servers = _Side(
            batch,
            trace,
            server_rows,
            fixed_width_bytes(batch.column("parent_span_id"), 8)[server_rows],
            [d.take(take) for d in dims],
            peer.take(take),
            kind[server_rows] == KIND_CONSUMER,
        )

        ci, si = _pair_within(clients, servers)
        if len(ci):
            parts.append(self._pairs(clients, servers, ci, si))
        left_c = np.setdiff1d(np.arange(len(clients)), ci, assume_unique=True)
        left_s = np.setdiff1d(np.arange(len(servers)), si, assume_unique=True)

        rows = _EdgeRows()
        deadline = self.clock() + self.cfg.wait
        for side, left, is_client in ((clients, left_c, True), (servers, left_s, False)):
            if len(left):
                self._against_store(side, left, is_client, deadline, rows, now)
        if rows.client:
            parts.append(_EdgeArrays.from_rows(rows, len(self.dimensions)))
        if parts:
            self._observe(_EdgeArrays.concat(parts, len(self.dimensions)), now)

    def _clients(
        self,
        batch: pa.RecordBatch,
        rows: np.ndarray,
        trace: np.ndarray,
        kind: np.ndarray,
        found: Found,
        peer_all: pa.Array,
        dims_all: list[pa.Array],
        parts: list[_EdgeArrays],
    ) -> _Side:
        """The batch's client/producer spans; database ones become edges in ``parts`` at once
        and are left out of the returned side."""
        n = len(rows)
        take = pa.array(rows)
        peer = peer_all.take(take)
        dims = [d.take(take) for d in dims_all]
        db_name = first_of([found.get(k) for k in self._db_keys], batch.num_rows).take(take)
        is_db = db_name.is_valid().to_numpy(zero_copy_only=False)
        span_ids = fixed_width_bytes(batch.column("span_id"), 8)[rows]
        messaging = kind[rows] == KIND_PRODUCER
        if is_db.any():
            address = found.get(NET_PEER_ADDRESS).take(take)
            port = found.get(NET_PEER_PORT).take(take)
            host_port = pc.binary_join_element_wise(address, port, ":")
            names = [found.get(PEER_SERVICE).take(take), found.get(SERVER_ADDRESS).take(take)]
            server = first_of([*names, host_port, address, db_name], n)
            db = _Side(batch, trace, rows, span_ids, dims, peer, messaging)
            pick = pa.array(np.flatnonzero(is_db))
            latency = db.latency[is_db]
            parts.append(
                _EdgeArrays(
                    db.service.take(pick),
                    server.take(pick),
                    pa.array([DATABASE] * len(pick), pa.string()),
                    [d.take(pick) for d in dims],
                    db.failed[is_db],
                    latency,
                    latency,
                    db.trace_id[is_db],
                )
            )
            keep = np.flatnonzero(~is_db)
            rows = rows[keep]
            take = pa.array(keep)
            dims = [d.take(take) for d in dims]
            peer = peer.take(take)
            span_ids = span_ids[keep]
            messaging = messaging[keep]
        return _Side(batch, trace, rows, span_ids, dims, peer, messaging)

    def _pairs(self, clients: _Side, servers: _Side, ci: np.ndarray, si: np.ndarray) -> _EdgeArrays:
        c, s = pa.array(ci), pa.array(si)
        messaging = clients.messaging[ci] | servers.messaging[si]
        conn = np.where(messaging, MESSAGING, "").astype(object)
        dims = [
            pc.coalesce(sd.take(s), cd.take(c))
            for cd, sd in zip(clients.dims, servers.dims, strict=True)
        ]
        return _EdgeArrays(
            clients.service.take(c),
            servers.service.take(s),
            pa.array(conn, pa.string()),
            dims,
            clients.failed[ci] | servers.failed[si],
            clients.latency[ci],
            servers.latency[si],
            clients.trace_id[ci],
        )

    def _against_store(
        self,
        side: _Side,
        left: np.ndarray,
        is_client: bool,
        deadline: float,
        rows: _EdgeRows,
        now: float,
    ) -> None:
        """Pair the leftovers of one side with pending halves of the other side; add the rest
        to the store while it has room, and drop (count) what does not fit."""
        pending = self.pending
        keys = side.keys(left)
        hits = pending.keys() & set(keys) if pending else set()
        if hits:
            hit_at = np.array([k in hits for k in keys], dtype=bool)
            pos = left[hit_at]
            new_halves = side.halves(pos, is_client, deadline)
            unmatched: list[int] = []
            for i, (key, half) in enumerate(zip(side.keys(pos), new_halves, strict=True)):
                stored = pending[key]
                if stored.is_client == is_client:  # the same side again: it replaces the old
                    unmatched.append(i)
                    continue
                del pending[key]
                client, server = (half, stored) if is_client else (stored, half)
                conn = MESSAGING if client.messaging or server.messaging else ""
                rows.add(client, server, client.service, server.service, conn)
            left = np.concatenate([left[~hit_at], pos[unmatched]])
        if len(left) == 0:
            return
        room = max(self.cfg.max_items - len(pending), 0)
        admitted, refused = left[:room], left[room:]
        if len(admitted):
            admitted_keys = keys[: len(admitted)] if not hits else side.keys(admitted)
            opened = len(set(admitted_keys) - pending.keys())
            pending.update(
                zip(admitted_keys, side.halves(admitted, is_client, deadline), strict=True)
            )
            self._deadlines.extend((deadline, key) for key in admitted_keys)
            self.stats.edges.inc(opened)
        if len(refused):
            self.stats.dropped_spans.inc(len(refused))
            services = side.service.take(pa.array(refused))
            groups = group_rows([services], len(refused))
            counts = np.bincount(groups.gid, minlength=groups.count).astype(np.float64)
            keys_ = [(s, "") if is_client else ("", s) for (s,) in groups.keys]
            self.dropped.add(Groups(groups.gid, keys_), counts, now)

    def _observe(self, edges: _EdgeArrays, now: float) -> None:
        m = len(edges.client)
        groups = group_rows([edges.client, edges.server, edges.conn, *edges.dims], m)
        total = np.bincount(groups.gid, minlength=groups.count).astype(np.float64)
        self.request_total.add(groups, total, now)
        if edges.failed.any():
            failed = np.bincount(groups.gid, weights=edges.failed, minlength=groups.count)
            some = np.flatnonzero(failed > 0)
            remap = np.full(groups.count, -1, dtype=np.int64)
            remap[some] = np.arange(len(some))
            sub = Groups(remap[groups.gid[edges.failed]], [groups.keys[g] for g in some])
            self.request_failed_total.add(sub, failed[some], now)
        self.server_seconds.observe(groups, edges.server_latency, edges.trace_id, now)
        self.client_seconds.observe(groups, edges.client_latency, edges.trace_id, now)

    # -- expiry ----------------------------------------------------------------------------

    def expire(self, now: float, at: float | None = None) -> int:
        """Sweep halves whose wait is over (monotonic time ``at``, default the clock):
        virtual-node edges where Tempo makes them, the others dropped. Returns how many."""
        at = self.clock() if at is None else at
        deadlines, pending = self._deadlines, self.pending
        rows = _EdgeRows()
        unpaired: Tally[tuple[str, str]] = Tally()
        expired_client = expired_server = 0
        while deadlines and deadlines[0][0] <= at:
            deadline, key = deadlines.popleft()
            half = pending.get(key)
            if half is None or half.deadline != deadline:
                continue  # paired, or replaced by a newer half with its own deadline
            del pending[key]
            if half.is_client:
                expired_client += 1
                unpaired[(half.service, "")] += 1
                if half.peer:
                    rows.add(half, None, half.service, half.peer, VIRTUAL_NODE)
            else:
                expired_server += 1
                unpaired[("", half.service)] += 1
                if half.root:
                    rows.add(None, half, half.peer or USER, half.service, VIRTUAL_NODE)
        if expired_client:
            self.stats.expired_client.inc(expired_client)
        if expired_server:
            self.stats.expired_server.inc(expired_server)
        if unpaired:
            keys = list(unpaired)
            groups = Groups(np.arange(len(keys)), keys)
            self.unpaired.add(groups, np.array([unpaired[k] for k in keys], np.float64), now)
        if rows.client:
            self._observe(_EdgeArrays.from_rows(rows, len(self.dimensions)), now)
        return expired_client + expired_server
